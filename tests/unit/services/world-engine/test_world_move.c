/* test_world_move.c - movement validation: a walk within the cap is accepted as asked; NaN and
 * infinities are refused (the answer is where the player was); a teleport is cut along its
 * direction to what the time allows (and no more after a long idle); borders are crossed into
 * the neighbour (named, or past the edge) but not into a far region; the world's edge clamps;
 * y goes onto the ground and under the ceiling; yaw is normalised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "services/world-engine/world_rules.h"

static const world_move_limits_t lim = {
    .max_speed_mps = 12, .slack_m = 2, .max_interval_s = 2, .max_above_ground_m = 100};

static double hill(void *data, int region, double x, double z)
{
    (void)region;
    (void)z;
    *(int *)data += 1;
    return x > 600 ? 30 : 5;
}

static world_place_t at(const char *region, double x, double y, double z)
{
    world_place_t p = {.region = region ? fv_region_index(region) : -1, .x = x, .y = y, .z = z};
    return p;
}

static void walk_is_accepted(void **state)
{
    (void)state;
    world_place_t last = at("terra-nova", 512, 0, 512), want = at(NULL, 515, 3, 516);
    world_move_result_t r;
    world_move_validate(&last, 1000, &want, 2000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
    assert_string_equal(r.reason, "ok");
    assert_int_equal(r.place.region, fv_region_index("terra-nova"));
    assert_true(r.place.x == 515 && r.place.y == 3 && r.place.z == 516);
    /* the ground is asked where the player ends up */
    int asked = 0;
    world_move_validate(&last, 1000, &want, 2000, &lim, hill, &asked, &r);
    assert_int_equal(asked, 1);
    assert_int_equal(r.status, WORLD_MOVE_CORRECTED);
    assert_string_equal(r.reason, "below_ground");
    assert_true(r.place.y == 5);
    /* a ground height read rounded (a float, JSON's decimals): on the ground, not corrected */
    want.y = 5 - 0.005;
    world_move_validate(&last, 1000, &want, 2000, &lim, hill, &asked, &r);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
    assert_true(r.place.y == 5);
}

static void non_finite_is_refused(void **state)
{
    (void)state;
    world_place_t last = at("terra-nova", 512, 7, 512);
    last.yaw = 1;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        for (int field = 0; field < 4; field++) {
            world_place_t want = at(NULL, 513, 7, 513);
            double *f[] = {&want.x, &want.y, &want.z, &want.yaw};
            *f[field] = bad[i];
            world_move_result_t r;
            world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
            assert_int_equal(r.status, WORLD_MOVE_REFUSED);
            assert_string_equal(r.reason, "non_finite");
            assert_true(r.place.x == 512 && r.place.y == 7 && r.place.z == 512 &&
                        r.place.yaw == 1);
        }
    }
}

static void teleport_is_cut(void **state)
{
    (void)state;
    /* the first viewer's default: (100, 50, 200) from the spawn, a second after */
    world_place_t last = at("terra-nova", 512, 0, 512), want = at(NULL, 100, 50, 200);
    world_move_result_t r;
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_CORRECTED);
    assert_string_equal(r.reason, "too_fast");
    double dx = r.place.x - 512, dz = r.place.z - 512;
    assert_true(fabs(sqrt(dx * dx + dz * dz) - 14) < 1e-9);      /* 12 m/s * 1 s + 2 m */
    /* along the line towards the target */
    assert_true(fabs(dx / dz - (100.0 - 512) / (200.0 - 512)) < 1e-9);
    assert_true(r.place.y == 50);
    /* an hour idle earns only max_interval_s */
    world_move_validate(&last, 0, &want, 3600000, &lim, NULL, NULL, &r);
    dx = r.place.x - 512;
    dz = r.place.z - 512;
    assert_true(fabs(sqrt(dx * dx + dz * dz) - 26) < 1e-9);
    /* a clock that went backwards earns only the slack */
    world_move_validate(&last, 5000, &want, 1000, &lim, NULL, NULL, &r);
    dx = r.place.x - 512;
    dz = r.place.z - 512;
    assert_true(fabs(sqrt(dx * dx + dz * dz) - 2) < 1e-9);
    /* height is not counted against the cap, but has a ceiling */
    want = at(NULL, 512, 5000, 512);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_CORRECTED);
    assert_string_equal(r.reason, "too_high");
    assert_true(r.place.y == 100);
}

static void borders(void **state)
{
    (void)state;
    int tn = fv_region_index("terra-nova");           /* (1, 1): the middle */
    int ww = fv_region_index("whispering-wilds");     /* (0, 1): west of it */
    world_move_result_t r;
    /* walking past the west edge carries over */
    world_place_t last = at("terra-nova", 1, 0, 300), want = at(NULL, -3, 0, 300);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
    assert_int_equal(r.place.region, ww);
    assert_true(fabs(r.place.x - 1021) < 1e-9 && r.place.z == 300);
    /* the same step, named in the neighbour's frame */
    want = at("whispering-wilds", 1021, 0, 300);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
    assert_int_equal(r.place.region, ww);
    /* diagonal neighbour: aethelgard (0, 0) from terra-nova's north-west corner */
    last = at("terra-nova", 0.5, 0, 0.5);
    want = at("aethelgard", 1023, 0, 1023);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
    assert_int_equal(r.place.region, fv_region_index("aethelgard"));
    /* exactly on the east edge belongs to the next region */
    last = at("terra-nova", 1020, 0, 10);
    want = at(NULL, 1024, 0, 10);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.place.region, fv_region_index("ember-reach"));
    assert_true(r.place.x == 0);
    /* a region two away, an unknown one */
    last = at("whispering-wilds", 5, 0, 5);
    want = at("ember-reach", 5, 0, 5);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_REFUSED);
    assert_string_equal(r.reason, "not_adjacent");
    assert_int_equal(r.place.region, ww);
    want.region = 99;
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_REFUSED);
    assert_string_equal(r.reason, "unknown_region");
    (void)tn;
}

static void world_edge(void **state)
{
    (void)state;
    world_move_result_t r;
    /* whispering-wilds is on the west edge: nothing past x < 0 */
    world_place_t last = at("whispering-wilds", 1, 0, 500), want = at(NULL, -5, 0, 500);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_CORRECTED);
    assert_string_equal(r.reason, "out_of_world");
    assert_int_equal(r.place.region, fv_region_index("whispering-wilds"));
    assert_true(r.place.x == 0 && r.place.z == 500);
    /* huge finite coordinates neither overflow nor escape */
    want = at(NULL, 1e308, 0, -1e308);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.status, WORLD_MOVE_CORRECTED);
    assert_true(isfinite(r.place.x) && isfinite(r.place.z));
    assert_true(r.place.x >= 0 && r.place.x < 1024 && r.place.z >= 0 && r.place.z < 1024);
    /* the south-east corner of the world */
    last = at("silent-expanse", 1023, 0, 1023);
    want = at(NULL, 1030, 0, 1030);
    world_move_validate(&last, 0, &want, 1000, &lim, NULL, NULL, &r);
    assert_int_equal(r.place.region, fv_region_index("silent-expanse"));
    assert_true(r.place.x < 1024 && r.place.z < 1024);
}

static void yaw_is_normalised(void **state)
{
    (void)state;
    world_place_t last = at("terra-nova", 512, 0, 512), want = at(NULL, 512, 0, 512);
    world_move_result_t r;
    want.yaw = -M_PI / 2;
    world_move_validate(&last, 0, &want, 0, &lim, NULL, NULL, &r);
    assert_true(fabs(r.place.yaw - 1.5 * M_PI) < 1e-12);
    want.yaw = 7 * M_PI;
    world_move_validate(&last, 0, &want, 0, &lim, NULL, NULL, &r);
    assert_true(fabs(r.place.yaw - M_PI) < 1e-9);
    assert_int_equal(r.status, WORLD_MOVE_ACCEPTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(walk_is_accepted),
        cmocka_unit_test(non_finite_is_refused),
        cmocka_unit_test(teleport_is_cut),
        cmocka_unit_test(borders),
        cmocka_unit_test(world_edge),
        cmocka_unit_test(yaw_is_normalised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
