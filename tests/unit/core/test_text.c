/* test_text.c - the small text helpers: fv_str_copy, fv_fmt_u64 / fv_buf_append_u64,
 * fv_json_put_str (checked by parsing its output back with jansson), fv_json_parse errors, and
 * comma-separated lists (fv_slice_list_next / _has). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/slice.h"
#include "core/str.h"

static void str_copy_truncates_and_terminates(void **state)
{
    char out[4];
    assert_int_equal(fv_str_copy(out, sizeof(out), "ab"), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(fv_str_copy(out, sizeof(out), "abcdef"), 6);
    assert_string_equal(out, "abc");
    assert_int_equal(fv_str_copy(out, 1, "x"), 1);
    assert_string_equal(out, "");
}

static void lists_split_trim_and_skip_empties(void **state)
{
    fv_slice_t list = FV_SLICE_LIT(" , keep-alive ,\tUpgrade\t,,a b , ");
    const char *want[] = {"keep-alive", "Upgrade", "a b"};
    size_t pos = 0, n = 0;
    fv_slice_t e;
    while (fv_slice_list_next(list, &pos, &e)) {
        assert_true(n < 3);
        assert_true(fv_slice_eq_cstr(e, want[n]));
        n++;
    }
    assert_int_equal(n, 3);
    assert_false(fv_slice_list_next(list, &pos, &e));       /* stays at the end */
    assert_true(fv_slice_list_has(list, FV_SLICE_LIT("upgrade"), true));
    assert_false(fv_slice_list_has(list, FV_SLICE_LIT("upgrade"), false));
    assert_false(fv_slice_list_has(list, FV_SLICE_LIT("a"), true));
    assert_false(fv_slice_list_has(FV_SLICE_NULL, FV_SLICE_LIT("x"), true));
    assert_false(fv_slice_list_has(FV_SLICE_LIT(" ,, "), FV_SLICE_LIT(""), true));
}

static void u64_formatting(void **state)
{
    static const uint64_t values[] = {0, 7, 10, 99, 100, 65535, 4294967296ull, UINT64_MAX};
    static const char *const texts[] = {"0", "7", "10", "99", "100", "65535", "4294967296",
                                        "18446744073709551615"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        fv_buf_t b;
        fv_buf_init(&b, 0);
        assert_int_equal(fv_buf_append_u64(&b, values[i]), 0);
        assert_string_equal(b.ptr, texts[i]);
        fv_buf_dispose(&b);
    }
}

static void json_put_str_round_trips(void **state)
{
    static const char *const inputs[] = {"", "plain", "quote \" backslash \\ slash /",
                                         "ctl \x01\x1f\n\t\r end", "utf-8 \xc3\xa9\xe2\x82\xac"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        fv_buf_t b;
        fv_buf_init(&b, 0);
        assert_int_equal(fv_json_put_str(&b, inputs[i]), 0);
        fv_error_t err;
        json_t *j = fv_json_parse(fv_buf_slice(&b), &err);
        assert_non_null(j);
        assert_true(json_is_string(j));
        assert_string_equal(json_string_value(j), inputs[i]);
        json_decref(j);
        fv_buf_dispose(&b);
    }
}

static void json_put_str_respects_the_ceiling(void **state)
{
    fv_buf_t b;
    fv_buf_init(&b, 8);
    assert_int_equal(fv_json_put_str(&b, "0123456789"), FV_ETOOBIG);
    fv_buf_dispose(&b);
}

static void json_parse_errors_say_where(void **state)
{
    fv_error_t err;
    assert_null(fv_json_parse(FV_SLICE_LIT("{\"a\":\n  nope}"), &err));
    assert_int_equal(err.code, FV_EINVAL);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_null(fv_json_parse_object(FV_SLICE_LIT("[1]"), &err));
    assert_string_equal(err.msg, "expected a JSON object");
    assert_null(fv_json_parse(FV_SLICE_LIT("{\"a\":1,\"a\":2}"), &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(str_copy_truncates_and_terminates),
        cmocka_unit_test(u64_formatting),
        cmocka_unit_test(lists_split_trim_and_skip_empties),
        cmocka_unit_test(json_put_str_round_trips),
        cmocka_unit_test(json_put_str_respects_the_ceiling),
        cmocka_unit_test(json_parse_errors_say_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
