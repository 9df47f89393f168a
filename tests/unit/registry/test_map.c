/* test_map.c - the catalog's hash map against a plain reference array: random puts, gets and
 * deletes (deletion shifts probe runs back, which is where such maps go wrong), growth, and
 * replacement of an equal key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "registry/map.h"

#define KEYS 5000

static char keys[KEYS][16];
static int present[KEYS];

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void against_reference(void **state)
{
    registry_map_t m;
    registry_map_init(&m);
    assert_null(registry_map_get(&m, "nothing"));
    assert_null(registry_map_del(&m, "nothing"));
    for (int i = 0; i < KEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
    size_t count = 0;
    for (int round = 0; round < 200000; round++) {
        int k = (int)(next_rand() % KEYS);
        switch (next_rand() % 3) {
        case 0:
            registry_map_put(&m, keys[k], &present[k]);
            count += !present[k];
            present[k] = 1;
            break;
        case 1:
            assert_ptr_equal(registry_map_del(&m, keys[k]), present[k] ? &present[k] : NULL);
            count -= present[k];
            present[k] = 0;
            break;
        default:
            assert_ptr_equal(registry_map_get(&m, keys[k]), present[k] ? &present[k] : NULL);
        }
        assert_int_equal(m.count, count);
    }
    for (int i = 0; i < KEYS; i++)
        assert_ptr_equal(registry_map_get(&m, keys[i]), present[i] ? &present[i] : NULL);

    /* an equal key in other memory replaces, not adds */
    char copy[16];
    snprintf(copy, sizeof(copy), "%s", keys[0]);
    registry_map_put(&m, keys[0], &present[0]);
    size_t before = m.count;
    int other;
    registry_map_put(&m, copy, &other);
    assert_int_equal(m.count, before);
    assert_ptr_equal(registry_map_get(&m, keys[0]), &other);
    registry_map_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
