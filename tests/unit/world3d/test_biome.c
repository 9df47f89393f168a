/* test_biome.c - biomes: the rules on hand-made climates (each threshold), a golden row of
 * the default world, determinism, variety over the default world, names both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "world3d/biome.h"

static fv_biome_t rule(double h, double t, double m, double crystal)
{
    fv_climate_t cl = {.height = h, .temperature = t, .moisture = m, .crystal = crystal};
    return fv_biome_of(&cl);
}

static void the_rules(void **state)
{
    (void)state;
    assert_int_equal(rule(NAN, 0, 0, 0), FV_BIOME_OCEAN);
    assert_int_equal(rule(-0.01, 0, 0, 0), FV_BIOME_OCEAN);
    assert_int_equal(rule(0, 0, 0, 0), FV_BIOME_BEACH);
    assert_int_equal(rule(2.9, 0, 0, 0.9), FV_BIOME_BEACH);      /* shore before crystal */
    assert_int_equal(rule(3, 0, 0, 0.51), FV_BIOME_CRYSTAL);
    assert_int_equal(rule(91, 0, 0, 0), FV_BIOME_MOUNTAIN);
    assert_int_equal(rule(91, -0.46, 0, 0), FV_BIOME_SNOW);
    assert_int_equal(rule(50, -0.51, 0.9, 0), FV_BIOME_TUNDRA);
    assert_int_equal(rule(50, -0.3, 0.1, 0), FV_BIOME_TAIGA);
    assert_int_equal(rule(50, -0.3, -0.1, 0), FV_BIOME_TUNDRA);
    assert_int_equal(rule(50, 0.31, -0.2, 0), FV_BIOME_DESERT);
    assert_int_equal(rule(50, 0.31, 0, 0), FV_BIOME_SAVANNA);
    assert_int_equal(rule(50, 0.31, 0.2, 0), FV_BIOME_FOREST);
    assert_int_equal(rule(19, 0, 0.31, 0), FV_BIOME_SWAMP);
    assert_int_equal(rule(21, 0, 0.31, 0), FV_BIOME_FOREST);
    assert_int_equal(rule(21, 0, -0.01, 0), FV_BIOME_GRASSLAND);
}

static void golden_row(void **state)
{
    (void)state;
    /* seed 42, the middle region, row 8 */
    const char *want = "forest savanna savanna savanna savanna forest forest savanna savanna "
                       "ocean ocean beach grassland grassland ocean ocean ";
    char got[256] = "";
    for (int cx = 0; cx < FV_REGION_CELLS; cx++) {
        fv_cell_t c = {4, cx, 8};
        strcat(got, fv_biome_name(fv_cell_biome(42, &c)));
        strcat(got, " ");
    }
    assert_string_equal(got, want);
}

static void deterministic_and_varied(void **state)
{
    (void)state;
    int seen[FV_BIOME_COUNT] = {0};
    for (int r = 0; r < FV_WORLD_REGIONS; r++) {
        for (int cy = 0; cy < FV_REGION_CELLS; cy++) {
            for (int cx = 0; cx < FV_REGION_CELLS; cx++) {
                fv_cell_t c = {r, cx, cy};
                fv_biome_t b = fv_cell_biome(42, &c);
                assert_int_equal(b, fv_cell_biome(42, &c));
                assert_true(b >= 0 && b < FV_BIOME_COUNT);
                seen[b]++;
            }
        }
    }
    for (int b = 0; b < FV_BIOME_COUNT; b++)
        assert_true(seen[b] > 0);             /* the default world has every biome */
    int differ = 0;
    for (int cx = 0; cx < FV_REGION_CELLS; cx++) {
        fv_cell_t c = {0, cx, cx};
        differ += fv_cell_biome(42, &c) != fv_cell_biome(43, &c);
    }
    assert_true(differ > 0);
    fv_cell_t bad = {0, 16, 0}, nowhere = {FV_WORLD_REGIONS, 0, 0};
    assert_int_equal(fv_cell_biome(42, &bad), FV_BIOME_OCEAN);
    assert_int_equal(fv_cell_biome(42, &nowhere), FV_BIOME_OCEAN);
    fv_climate_t cl;
    fv_climate_at(42, -1, 1, 1, &cl);
    assert_true(isnan(cl.height));
}

static void names(void **state)
{
    (void)state;
    for (int a = 0; a < FV_BIOME_COUNT; a++) {
        assert_int_equal(fv_biome_from_name(fv_biome_name(a)), a);
        for (int b = a + 1; b < FV_BIOME_COUNT; b++)
            assert_string_not_equal(fv_biome_name(a), fv_biome_name(b));
    }
    assert_string_equal(fv_biome_name(FV_BIOME_CRYSTAL), "crystal");
    assert_string_equal(fv_biome_name(FV_BIOME_COUNT), "unknown");
    assert_string_equal(fv_biome_name((fv_biome_t)-1), "unknown");
    assert_int_equal(fv_biome_from_name("lava"), -1);
    assert_int_equal(fv_biome_from_name(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_rules),
        cmocka_unit_test(golden_row),
        cmocka_unit_test(deterministic_and_varied),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
