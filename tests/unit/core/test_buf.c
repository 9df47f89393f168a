/* test_buf.c - fv_buf_t: growth, the ceiling, consume, steal, injected allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"

static void append_and_grow(void **state)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fv_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(b.ptr[b.len], '\0');
    assert_int_equal(fv_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.ptr + 3000, "42-x");
    fv_buf_dispose(&b);
}

static void ceiling_refuses_and_keeps_contents(void **state)
{
    fv_buf_t b;
    fv_buf_init(&b, 8);
    assert_int_equal(fv_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(fv_buf_append(&b, "9", 1), FV_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.ptr, "12345678", 8);
    fv_buf_dispose(&b);
}

static void consume_and_steal(void **state)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    assert_int_equal(fv_buf_append_str(&b, "hello world"), 0);
    fv_buf_consume(&b, 6);
    assert_string_equal(b.ptr, "world");
    size_t len;
    char *p = fv_buf_steal(&b, &len);
    assert_int_equal(len, 5);
    assert_string_equal(p, "world");
    assert_null(b.ptr);
    fv_free(p);
}

static void allocation_failure_is_clean(void **state)
{
    for (unsigned long n = 1;; n++) {
        fv_buf_t b;
        fv_buf_init(&b, 0);
        fv_alloc_fail_at(n);
        int rc = 0;
        for (int i = 0; i < 100 && rc == 0; i++)
            rc = fv_buf_append(&b, "0123456789", 10);
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        if (fired)
            assert_int_equal(rc, FV_ENOMEM);
        else
            assert_int_equal(b.len, 1000);
        fv_buf_dispose(&b);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_grow),
        cmocka_unit_test(ceiling_refuses_and_keeps_contents),
        cmocka_unit_test(consume_and_steal),
        cmocka_unit_test(allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
