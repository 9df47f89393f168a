/* test_hash.c - FNV-1a against the published 64-bit test vectors, and a hash continued over
 * pieces equal to the hash of the whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/hash.h"

static void vectors(void **state)
{
    (void)state;
    assert_true(fv_fnv1a(FV_FNV1A_SEED, "", 0) == 0xcbf29ce484222325ull);
    assert_true(fv_fnv1a(FV_FNV1A_SEED, "a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(fv_fnv1a(FV_FNV1A_SEED, "foobar", 6) == 0x85944171f73967e8ull);
}

static void pieces(void **state)
{
    (void)state;
    uint64_t whole = fv_fnv1a(FV_FNV1A_SEED, "terra-nova", 10);
    assert_true(fv_fnv1a(fv_fnv1a(FV_FNV1A_SEED, "terra", 5), "-nova", 5) == whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors),
        cmocka_unit_test(pieces),
    };
    return cmocka_run_group_tests_name("core/hash", tests, NULL, NULL);
}
