/* test_metadata.c - a call's metadata list: names the transport reserves are refused, text
 * values must be printable ASCII while -bin values hold any bytes, the byte ceiling holds
 * without leaving half a pair, and lookups find the first of repeated names. On the wire:
 * -bin values go out as unpadded base64 and come back whole, padded or not, several joined by
 * commas; bad base64 is refused, reserved names and non-ASCII text values are skipped, and every
 * cut of a base64 value either decodes or is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rpc/metadata.h"

static int add(fv_md_t *md, const char *name, const char *value)
{
    return fv_md_add(md, fv_slice_cstr(name), value, strlen(value));
}

static void reserved_and_malformed_names(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "", ":path", "grpc-status", "grpc-foo", "content-type", "content-length", "te",
        "user-agent", "connection", "transfer-encoding", "host", "X-Upper", "a b", "caf\xc3\xa9",
    };
    fv_md_t md;
    fv_md_init(&md, 0);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(add(&md, refused[i], "v"), FV_EINVAL);
    assert_int_equal(md.count, 0);
    assert_int_equal(add(&md, "x-request-id", "abc-123"), 0);
    assert_int_equal(add(&md, "grpcx", "v"), 0);          /* only the grpc- prefix is theirs */
    assert_int_equal(md.count, 2);
    fv_md_dispose(&md);
}

static void text_and_binary_values(void **state)
{
    (void)state;
    fv_md_t md;
    fv_md_init(&md, 0);
    assert_int_equal(add(&md, "x-text", "line\nbreak"), FV_EINVAL);
    assert_int_equal(add(&md, "x-text", "caf\xc3\xa9"), FV_EINVAL);
    uint8_t raw[256];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)i;
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("x-raw-bin"), raw, sizeof(raw)), 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("x-none-bin"), NULL, 0), 0);
    fv_slice_t v = fv_md_get(&md, "x-raw-bin");
    assert_int_equal(v.len, sizeof(raw));
    assert_memory_equal(v.ptr, raw, sizeof(raw));
    v = fv_md_get(&md, "x-none-bin");
    assert_non_null(v.ptr);
    assert_int_equal(v.len, 0);
    assert_null(fv_md_get(&md, "x-absent").ptr);
    fv_md_dispose(&md);
}

static void ceiling_repeats_and_copy(void **state)
{
    (void)state;
    fv_md_t md, copy;
    fv_md_init(&md, 16);
    assert_int_equal(add(&md, "a", "first"), 0);           /* 6 of 16 bytes */
    assert_int_equal(add(&md, "a", "second"), 0);          /* 13 */
    assert_int_equal(add(&md, "bb", "xy"), FV_ETOOBIG);    /* 17 would be over */
    assert_int_equal(md.count, 2);
    assert_int_equal(add(&md, "c", "xy"), 0);              /* exactly 16 */
    fv_slice_t v = fv_md_get(&md, "a");
    assert_true(fv_slice_eq_cstr(v, "first"));
    fv_slice_t name;
    fv_md_at(&md, 1, &name, &v);
    assert_true(fv_slice_eq_cstr(name, "a") && fv_slice_eq_cstr(v, "second"));
    fv_md_at(&md, 2, &name, &v);
    assert_true(fv_slice_eq_cstr(name, "c") && fv_slice_eq_cstr(v, "xy"));

    fv_md_init(&copy, 0);
    assert_int_equal(fv_md_copy(&copy, &md), 0);
    assert_int_equal(copy.count, 3);
    fv_md_at(&copy, 2, &name, &v);
    assert_true(fv_slice_eq_cstr(name, "c") && fv_slice_eq_cstr(v, "xy"));
    fv_md_dispose(&copy);
    fv_md_dispose(&md);
}

static int add_wire(fv_md_t *md, const char *name, const char *value)
{
    return fv_md_add_wire(md, fv_slice_cstr(name), fv_slice_cstr(value));
}

static void on_the_wire(void **state)
{
    (void)state;
    static const uint8_t bin[] = {0x00, 0xff, ',', '=', 0x80};
    fv_md_t out, in;
    fv_md_init(&out, 0);
    fv_md_init(&in, 0);
    assert_int_equal(add(&out, "x-text", "plain"), 0);
    assert_int_equal(fv_md_add(&out, fv_slice_cstr("x-bin"), bin, sizeof(bin)), 0);
    fv_buf_t enc;
    fv_buf_init(&enc, 0);
    assert_int_equal(fv_buf_reserve(&enc, fv_md_wire_bytes(&out)), 0);
    for (size_t i = 0; i < out.count; i++) {
        fv_slice_t name, value;
        fv_md_wire_at(&out, i, &enc, &name, &value);
        if (i == 1) {
            assert_int_equal(value.len, 7);           /* "AP8sPYA": 5 bytes, unpadded */
            assert_null(memchr(value.ptr, '=', value.len));
        }
        char v[64];
        snprintf(v, sizeof(v), "%.*s", (int)value.len, value.ptr);
        char n[32];
        snprintf(n, sizeof(n), "%.*s", (int)name.len, name.ptr);
        assert_int_equal(add_wire(&in, n, v), 0);
    }
    fv_buf_dispose(&enc);
    assert_int_equal(fv_md_get(&in, "x-text").len, 5);
    assert_int_equal(fv_md_get(&in, "x-bin").len, sizeof(bin));
    assert_memory_equal(fv_md_get(&in, "x-bin").ptr, bin, sizeof(bin));

    /* padded, and two values in one header */
    assert_int_equal(add_wire(&in, "y-bin", "AQ==,AgM="), 0);
    assert_int_equal(in.count, 4);
    assert_memory_equal(fv_md_get(&in, "y-bin").ptr, "\x01", 1);
    fv_slice_t name, second;
    fv_md_at(&in, 3, &name, &second);
    assert_int_equal(second.len, 2);
    assert_memory_equal(second.ptr, "\x02\x03", 2);

    /* skipped: reserved names and text that is not printable ASCII; refused: bad base64 */
    assert_int_equal(add_wire(&in, "grpc-status", "0"), 0);
    assert_int_equal(add_wire(&in, "x-text2", "caf\xc3\xa9"), 0);
    assert_int_equal(in.count, 4);
    assert_int_equal(add_wire(&in, "z-bin", "!!!"), FV_EINVAL);
    assert_int_equal(add_wire(&in, "z-bin", "AQ==,*"), FV_EINVAL);
    fv_md_dispose(&out);
    fv_md_dispose(&in);
}

/* Every prefix of a base64 value decodes or is refused; none crashes or adds half a value. */
static void every_cut_of_a_value(void **state)
{
    (void)state;
    static const char full[] = "AP8sPYAAP8sPYA==";
    for (size_t len = 0; len <= sizeof(full) - 1; len++) {
        fv_md_t md;
        fv_md_init(&md, 0);
        char cut[sizeof(full)];
        memcpy(cut, full, len);
        cut[len] = '\0';
        int rc = add_wire(&md, "c-bin", cut);
        assert_true(rc == 0 || rc == FV_EINVAL);
        assert_int_equal(md.count, rc == 0 ? 1u : 0u);
        fv_md_dispose(&md);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reserved_and_malformed_names),
        cmocka_unit_test(text_and_binary_values),
        cmocka_unit_test(ceiling_repeats_and_copy),
        cmocka_unit_test(on_the_wire),
        cmocka_unit_test(every_cut_of_a_value),
    };
    return cmocka_run_group_tests_name("rpc/metadata", tests, NULL, NULL);
}
