/* test_poi.c - points of interest: the minimum distance between any two points of a region
 * (for many seeds), bounds and the ceiling, determinism, golden first points, kinds that fit
 * their biome, and an unknown region. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "world3d/poi.h"
#include "world3d/terrain.h"

static fv_poi_t a[FV_POI_MAX], b[FV_POI_MAX];

static void min_distance_and_bounds(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        for (int r = 0; r < FV_WORLD_REGIONS; r++) {
            size_t n = fv_region_pois(seed * 7919, r, a);
            assert_true(n >= 20 && n <= FV_POI_MAX);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(a[i].id, i);
                assert_true(a[i].x >= 0 && a[i].x < FV_REGION_SIZE_M);
                assert_true(a[i].z >= 0 && a[i].z < FV_REGION_SIZE_M);
                assert_true(a[i].x * 8 == floor(a[i].x * 8));     /* multiples of 1/8 m */
                assert_true(a[i].kind >= 0 && a[i].kind < FV_POI_KIND_COUNT);
                for (size_t j = i + 1; j < n; j++) {
                    double dx = a[i].x - a[j].x, dz = a[i].z - a[j].z;
                    assert_true(dx * dx + dz * dz >= FV_POI_MIN_DIST_M * FV_POI_MIN_DIST_M);
                }
            }
        }
    }
}

static void deterministic(void **state)
{
    (void)state;
    for (int r = 0; r < FV_WORLD_REGIONS; r++) {
        size_t n = fv_region_pois(42, r, a);
        assert_int_equal(fv_region_pois(42, r, b), n);
        assert_memory_equal(a, b, n * sizeof(a[0]));
        for (size_t i = 0; i < n; i++) {
            fv_cell_t c;
            assert_true(fv_cell_of(r, a[i].x, a[i].z, &c));
            assert_memory_equal(&c, &a[i].cell, sizeof(c));
            assert_int_equal(a[i].biome, fv_cell_biome(42, &c));
            assert_true(a[i].y == fv_terrain_height_at(42, r, a[i].x, a[i].z));
            if (a[i].biome == FV_BIOME_OCEAN)
                assert_int_equal(a[i].kind, FV_POI_WRECK);
            if (a[i].biome == FV_BIOME_CRYSTAL)
                assert_int_equal(a[i].kind, FV_POI_CRYSTAL_SPIRE);
        }
    }
    size_t n = fv_region_pois(42, 0, a);
    assert_true(fv_region_pois(43, 0, b) != n || memcmp(a, b, n * sizeof(a[0])) != 0);
}

static void golden_first_points(void **state)
{
    (void)state;
    assert_int_equal(fv_region_pois(42, 0, a), 43);
    assert_true(a[0].x == 453.625 && a[0].z == 455.0);
    assert_string_equal(fv_poi_kind_name(a[0].kind), "ruin");
    assert_true(a[1].x == 0x1.4d2p+8 && a[1].z == 0x1.261p+9);
    assert_string_equal(fv_poi_kind_name(a[1].kind), "wreck");
    assert_int_equal(fv_region_pois(42, 8, a), 41);
    assert_true(a[0].x == 525.625 && a[0].z == 638.375);
    assert_string_equal(fv_poi_kind_name(a[0].kind), "echo_stone");
}

static void unknown_region_and_names(void **state)
{
    (void)state;
    assert_int_equal(fv_region_pois(42, -1, a), 0);
    assert_int_equal(fv_region_pois(42, FV_WORLD_REGIONS, a), 0);
    assert_string_equal(fv_poi_kind_name(FV_POI_CRYSTAL_SPIRE), "crystal_spire");
    assert_string_equal(fv_poi_kind_name(FV_POI_KIND_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(min_distance_and_bounds),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(golden_first_points),
        cmocka_unit_test(unknown_region_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
