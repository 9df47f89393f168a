/* test_biome.c - the biome rule at its borders, determinism from the seed, and a default world
 * with land, sea and several biomes (golden counts: a change to them is a change of the world
 * format). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "world3d/biome.h"

static void the_rule(void **state)
{
    (void)state;
    assert_int_equal(fv_biome_classify(-0.1, 0, 0), FV_BIOME_OCEAN);
    assert_int_equal(fv_biome_classify(1, 0, 0), FV_BIOME_BEACH);
    assert_int_equal(fv_biome_classify(90, 0.9, 0.9), FV_BIOME_MOUNTAIN);
    assert_int_equal(fv_biome_classify(30, -0.5, 0), FV_BIOME_TUNDRA);
    assert_int_equal(fv_biome_classify(30, 0.5, -0.5), FV_BIOME_DESERT);
    assert_int_equal(fv_biome_classify(10, 0, 0.5), FV_BIOME_SWAMP);
    assert_int_equal(fv_biome_classify(30, 0, 0.5), FV_BIOME_FOREST);
    assert_int_equal(fv_biome_classify(30, 0, -0.5), FV_BIOME_GRASSLAND);
    assert_string_equal(fv_biome_name(FV_BIOME_FOREST), "forest");
    assert_string_equal(fv_biome_name(FV_BIOME_COUNT), "unknown");
}

static void the_default_world(void **state)
{
    (void)state;
    int counts[FV_BIOME_COUNT] = {0};
    for (int r = 0; r < FV_WORLD_REGIONS; r++)
        for (int x = 0; x < FV_REGION_CELLS; x++)
            for (int y = 0; y < FV_REGION_CELLS; y++) {
                fv_cell_t c = {r, x, y};
                fv_biome_t b = fv_cell_biome(42, &c);
                assert_int_equal(b, fv_cell_biome(42, &c));
                counts[b]++;
            }
    /* seed 42, the default: golden counts */
    int want[FV_BIOME_COUNT] = {549, 48, 476, 1056, 28, 40, 63, 44};
    assert_memory_equal(counts, want, sizeof(want));
    assert_int_equal(fv_cell_biome(42, &(fv_cell_t){99, 0, 0}), FV_BIOME_OCEAN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_rule),
        cmocka_unit_test(the_default_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
