/* test_world_weather.c - the weather chain: rows are distributions, aurora needs harmony and
 * grows with it, storms grow with corruption, a long run visits every weather of a calm region
 * in sane shares, the same seed gives the same history, the draw is uniform enough. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "services/world-engine/world_rules.h"

static void rows_are_distributions(void **state)
{
    (void)state;
    const double lv[] = {0, 30, 60, 61, 80, 100, -3, 1000, NAN};
    for (int f = 0; f < WORLD_WEATHER_COUNT; f++) {
        for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
            for (size_t j = 0; j < sizeof(lv) / sizeof(lv[0]); j++) {
                double row[WORLD_WEATHER_COUNT], sum = 0;
                world_weather_row((world_weather_t)f, lv[i], lv[j], row);
                for (int t = 0; t < WORLD_WEATHER_COUNT; t++) {
                    assert_true(row[t] >= 0 && row[t] <= 1);
                    sum += row[t];
                }
                assert_true(fabs(sum - 1) < 1e-12);
            }
        }
    }
    assert_string_equal(world_weather_name(WORLD_WEATHER_AURORA), "aurora");
    assert_null(world_weather_name(WORLD_WEATHER_COUNT));
    assert_null(world_weather_name(-1));
}

static void harmony_and_corruption_tilt(void **state)
{
    (void)state;
    double lo[WORLD_WEATHER_COUNT], hi[WORLD_WEATHER_COUNT];
    world_weather_row(WORLD_WEATHER_CLEAR, 40, 0, lo);
    world_weather_row(WORLD_WEATHER_CLEAR, 95, 0, hi);
    assert_true(lo[WORLD_WEATHER_AURORA] == 0);
    assert_true(hi[WORLD_WEATHER_AURORA] > 0.1);
    world_weather_row(WORLD_WEATHER_CLEAR, 50, 0, lo);
    world_weather_row(WORLD_WEATHER_CLEAR, 50, 90, hi);
    assert_true(hi[WORLD_WEATHER_STORM] > 3 * lo[WORLD_WEATHER_STORM]);
    /* u at the ends */
    assert_int_equal(world_weather_next(WORLD_WEATHER_CLEAR, 50, 0, 0), WORLD_WEATHER_CLEAR);
    assert_true(world_weather_next(WORLD_WEATHER_CLEAR, 50, 0, 0.999999999) !=
                WORLD_WEATHER_AURORA);     /* no weight, never picked */
    assert_int_equal(world_weather_next(WORLD_WEATHER_CLEAR, 50, 0, NAN), WORLD_WEATHER_CLEAR);
}

static void distribution_over_a_long_run(void **state)
{
    (void)state;
    world_region_t *r = fv_calloc(1, sizeof(*r));
    world_region_t *r2 = fv_calloc(1, sizeof(*r2));
    for (int i = 0; i < WORLD_CELLS; i++)
        r->cells[i].harmony = 90;
    memcpy(r2, r, sizeof(*r));
    unsigned count[WORLD_WEATHER_COUNT] = {0}, changes = 0;
    const int n = 20000;
    for (int k = 0; k < n; k++) {
        world_weather_t prev;
        bool changed = world_region_weather_step(r, 42, 4, 0, &prev);
        assert_int_equal(changed, prev != r->weather);
        changes += changed;
        count[r->weather]++;
        (void)world_region_weather_step(r2, 42, 4, 0, NULL);
        assert_int_equal(r->weather, r2->weather);        /* same seed, same history */
    }
    assert_int_equal(r->weather_epoch, n);
    for (int t = 0; t < WORLD_WEATHER_COUNT; t++)
        assert_true(count[t] > (unsigned)n / 50);           /* every weather comes */
    assert_true(count[WORLD_WEATHER_CLEAR] > count[WORLD_WEATHER_STORM]);
    assert_true(changes > (unsigned)n / 5 && changes < (unsigned)n * 4 / 5);
    /* a corrupted region storms more, a middling one sees no aurora */
    world_region_t *c = fv_calloc(1, sizeof(*c));
    for (int i = 0; i < WORLD_CELLS; i++) {
        c->cells[i].harmony = 50;
        c->cells[i].corruption = 90;
    }
    unsigned storms = 0, auroras = 0;
    for (int k = 0; k < n; k++) {
        (void)world_region_weather_step(c, 42, 8, 0, NULL);
        storms += c->weather == WORLD_WEATHER_STORM;
        auroras += c->weather == WORLD_WEATHER_AURORA;
    }
    assert_true(storms > count[WORLD_WEATHER_STORM] * 2);
    assert_int_equal(auroras, 0);
    fv_free(r);
    fv_free(r2);
    fv_free(c);
}

static void rng_is_uniform_enough(void **state)
{
    (void)state;
    unsigned bins[10] = {0};
    for (uint64_t i = 0; i < 100000; i++) {
        double u = world_rng_unit(1, 2, i);
        assert_true(u >= 0 && u < 1);
        bins[(int)(u * 10)]++;
    }
    for (int b = 0; b < 10; b++)
        assert_true(bins[b] > 9500 && bins[b] < 10500);
    assert_true(world_rng_hash(1, 2, 3) == world_rng_hash(1, 2, 3));
    assert_true(world_rng_hash(1, 2, 3) != world_rng_hash(1, 3, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_are_distributions),
        cmocka_unit_test(harmony_and_corruption_tilt),
        cmocka_unit_test(distribution_over_a_long_run),
        cmocka_unit_test(rng_is_uniform_enough),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
