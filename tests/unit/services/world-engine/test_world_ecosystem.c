/* test_world_ecosystem.c - the simulation step: levels stay in 0..100 and finite over 10,000
 * steps from any start (extremes and NaN included), the same start gives the same world to the
 * bit, capacity rises with harmony and falls with corruption, fauna does better where harmony
 * is high, harmony drifts to rest and corruption erodes it except in a warded cell. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "services/world-engine/world_rules.h"

static bool in_range(double v)
{
    return isfinite(v) && v >= 0 && v <= 100;
}

static void assert_cell_ok(const world_cell_t *c)
{
    assert_true(in_range(c->harmony));
    assert_true(in_range(c->corruption));
    assert_true(in_range(c->flora));
    assert_true(in_range(c->fauna));
}

static void levels_stay_in_range(void **state)
{
    (void)state;
    world_eco_params_t p;
    world_eco_params_default(&p);
    const double starts[] = {0, 0.001, 1, 30, 50, 99.9, 100, 1e9, -5, NAN, INFINITY};
    size_t n = sizeof(starts) / sizeof(starts[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            world_cell_t c = {.harmony = starts[i], .corruption = starts[(i + j) % n],
                              .flora = starts[j], .fauna = starts[(i * 3 + j) % n]};
            for (int s = 0; s < 10000; s++) {
                world_cell_step(&c, &p, 0);
                if (s % 997 == 0)
                    assert_cell_ok(&c);
            }
            assert_cell_ok(&c);
        }
    }
}

static void whole_world_10000_steps(void **state)
{
    (void)state;
    world_eco_params_t p;
    world_eco_params_default(&p);
    world_state_t *a = fv_malloc(sizeof(*a)), *b = fv_malloc(sizeof(*b));
    world_state_init(a, 42, NULL);
    world_state_init(b, 42, NULL);
    for (int s = 0; s < 10000; s++) {
        world_state_step(a, &p, 1000);
        world_state_step(b, &p, 1000);
    }
    assert_int_equal(a->sim_step, 10000);
    for (int r = 0; r < FV_WORLD_REGIONS; r++)
        for (int i = 0; i < WORLD_CELLS; i++)
            assert_cell_ok(&a->regions[r].cells[i]);
    /* deterministic to the bit */
    assert_memory_equal(a, b, sizeof(*a));
    /* another seed is another world */
    world_state_init(b, 43, NULL);
    assert_true(memcmp(a->regions, b->regions, sizeof(a->regions)) != 0);
    fv_free(a);
    fv_free(b);
}

static void capacity_follows_harmony(void **state)
{
    (void)state;
    world_eco_params_t p;
    world_eco_params_default(&p);
    assert_true(world_flora_capacity(&p, 0, 0) < world_flora_capacity(&p, 50, 0));
    assert_true(world_flora_capacity(&p, 50, 0) < world_flora_capacity(&p, 100, 0));
    assert_true(world_flora_capacity(&p, 100, 80) < world_flora_capacity(&p, 100, 0));
    assert_true(world_flora_capacity(&p, NAN, NAN) >= 1);
    /* held at a harmony (drift off), fauna settles higher where harmony is high */
    p.harmony_drift = 0;
    p.corruption_erosion = 0;
    world_cell_t lo = {.harmony = 20, .flora = 40, .fauna = 20};
    world_cell_t hi = {.harmony = 95, .flora = 40, .fauna = 20};
    for (int s = 0; s < 20000; s++) {
        world_cell_step(&lo, &p, 0);
        world_cell_step(&hi, &p, 0);
    }
    assert_true(hi.fauna > lo.fauna + 10);
    assert_true(hi.flora <= world_flora_capacity(&p, 95, 0) + 1e-9);
    assert_true(lo.flora <= world_flora_capacity(&p, 20, 0) + 1e-9);
}

static void life_comes_back(void **state)
{
    (void)state;
    world_eco_params_t p;
    world_eco_params_default(&p);
    world_cell_t c = {.harmony = 80, .flora = 0, .fauna = 0};
    for (int s = 0; s < 5000; s++)
        world_cell_step(&c, &p, 0);
    assert_true(c.flora > 10);
    assert_true(c.fauna > 1);
}

static void harmony_drift_and_erosion(void **state)
{
    (void)state;
    world_eco_params_t p;
    world_eco_params_default(&p);
    world_cell_t hi = {.harmony = 90}, lo = {.harmony = 10};
    world_cell_step(&hi, &p, 0);
    world_cell_step(&lo, &p, 0);
    assert_true(hi.harmony < 90 && hi.harmony > 89.9);      /* modest */
    assert_true(lo.harmony > 10 && lo.harmony < 10.1);
    world_cell_t bare = {.harmony = 50, .corruption = 100};
    world_cell_t ward = {.harmony = 50, .corruption = 100, .warded_until_ms = 5000};
    world_cell_step(&bare, &p, 1000);
    world_cell_step(&ward, &p, 1000);
    assert_true(bare.harmony < 50);
    assert_true(ward.harmony == 50);
    assert_true(ward.corruption == 100);                     /* the silence service's */
    /* the ward ran out */
    world_cell_step(&ward, &p, 6000);
    assert_true(ward.harmony < 50);
}

static void region_means(void **state)
{
    (void)state;
    world_region_t *r = fv_calloc(1, sizeof(*r));
    for (int i = 0; i < WORLD_CELLS; i++) {
        r->cells[i].harmony = i < 128 ? 100 : 0;
        r->cells[i].corruption = i < 64 ? 60 : 0;
        r->cells[i].warded_until_ms = i < 10 ? 100 : 0;
    }
    world_region_sums_t s;
    world_region_sums(r, 50, &s);
    assert_true(fabs(s.harmony - 50) < 1e-9);
    assert_true(fabs(s.corruption - 15) < 1e-9);
    assert_int_equal(s.warded, 10);
    assert_int_equal(s.corrupted, 64);
    assert_int_equal(s.flourishing, 128);
    world_region_sums(r, 100, &s);
    assert_int_equal(s.warded, 0);
    fv_free(r);
}

static void fresh_world(void **state)
{
    (void)state;
    world_state_t *w = fv_malloc(sizeof(*w));
    world_state_init(w, 7, NULL);
    world_region_sums_t tn, se;
    world_region_sums(&w->regions[fv_region_index("terra-nova")], 0, &tn);
    world_region_sums(&w->regions[fv_region_index("silent-expanse")], 0, &se);
    assert_true(tn.harmony > se.harmony);
    assert_true(tn.corruption < se.corruption);
    for (int r = 0; r < FV_WORLD_REGIONS; r++) {
        assert_int_equal(w->regions[r].weather, WORLD_WEATHER_CLEAR);
        for (int i = 0; i < WORLD_CELLS; i++)
            assert_cell_ok(&w->regions[r].cells[i]);
    }
    assert_non_null(world_cell(w, 0, 15, 15));
    assert_null(world_cell(w, 0, 16, 0));
    assert_null(world_cell(w, 0, 0, -1));
    assert_null(world_cell(w, FV_WORLD_REGIONS, 0, 0));
    fv_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_stay_in_range),
        cmocka_unit_test(whole_world_10000_steps),
        cmocka_unit_test(capacity_follows_harmony),
        cmocka_unit_test(life_comes_back),
        cmocka_unit_test(harmony_drift_and_erosion),
        cmocka_unit_test(region_means),
        cmocka_unit_test(fresh_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
