/* test_noise.c - gradient noise and fBm: golden values to the bit (the same on every machine,
 * or terrain would differ between a client and the server), zero on the lattice, the range,
 * continuity, seeds that differ, and inputs outside the domain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "world3d/noise.h"

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static const fv_fbm_t TERRAIN_LIKE = {
    .octaves = 6, .frequency = 1.0 / 1024.0, .lacunarity = 2.0, .gain = 0.5};

static void golden_values(void **state)
{
    (void)state;
    assert_int_equal(fv_noise_mix(0, 0), UINT64_C(0xe220a8397b1dcdaf));
    assert_int_equal(fv_noise_mix(42, 7), UINT64_C(0xccf635ee9e9e2fa4));
    /* -0x1.ac23d9e56f9ddp-4 and so on, as bit patterns */
    assert_int_equal(bits_of(fv_noise2(42, 0.5, 0.25)), UINT64_C(0xbfbac23d9e56f9dd));
    assert_int_equal(bits_of(fv_noise2(42, -3.7, 12.9)), UINT64_C(0x3fd6497fa23c6ea2));
    assert_int_equal(bits_of(fv_noise2(42, 1000.125, -77.5)), UINT64_C(0xbfb7317957f1931b));
    assert_int_equal(bits_of(fv_noise2(42, 0.999, 0.001)), UINT64_C(0xbf606240e10b9765));
    assert_int_equal(bits_of(fv_fbm2(42, &TERRAIN_LIKE, 1500, 2700)),
                     UINT64_C(0xbfc5d568d5508181));
    assert_int_equal(bits_of(fv_fbm2(0xdeadbeef, &TERRAIN_LIKE, -123.25, 88.5)),
                     UINT64_C(0xbf9578b90f21e25a));
}

static void zero_on_the_lattice(void **state)
{
    (void)state;
    for (int y = -5; y <= 5; y++)
        for (int x = -5; x <= 5; x++)
            assert_true(fv_noise2(7, x, y) == 0.0);
}

static void range_and_continuity(void **state)
{
    (void)state;
    uint64_t s = 1;
    double peak = 0.0;
    for (int k = 0; k < 200000; k++) {
        s = fv_noise_mix(s, (uint64_t)k);
        double x = (double)(s >> 40) / 1000.0 - 8000.0;
        double y = (double)((s >> 16) & 0xffffff) / 1000.0 - 8000.0;
        double v = fv_noise2(s, x, y);
        peak = fabs(v) > peak ? fabs(v) : peak;
        /* a 1 mm step moves the value by at most the gradient's bound (about 2.5 per unit) */
        assert_true(fabs(fv_noise2(s, x + 0.001, y) - v) < 0.005);
        double f = fv_fbm2(s, &TERRAIN_LIKE, x * 100.0, y * 100.0);
        assert_true(f >= -1.01 && f <= 1.01);
    }
    assert_true(peak <= 1.01);
    assert_true(peak > 0.5);            /* and it does use its range */
}

static void seeds_differ(void **state)
{
    (void)state;
    int same = 0;
    for (int k = 0; k < 100; k++) {
        double x = k * 0.37 + 0.1, y = k * 0.11 + 0.2;
        same += fv_noise2(1, x, y) == fv_noise2(2, x, y);
    }
    assert_true(same < 5);
}

static void outside_the_domain(void **state)
{
    (void)state;
    assert_true(fv_noise2(1, NAN, 0.5) == 0.0);
    assert_true(fv_noise2(1, 0.5, INFINITY) == 0.0);
    assert_true(fv_noise2(1, 3e9, 0.5) == 0.0);
    assert_true(fv_noise2(1, 0.5, -3e9) == 0.0);
    fv_fbm_t none = TERRAIN_LIKE;
    none.octaves = 0;                   /* clamped to one octave */
    fv_fbm_t one = TERRAIN_LIKE;
    one.octaves = 1;
    assert_true(fv_fbm2(3, &none, 100.5, 7.25) == fv_fbm2(3, &one, 100.5, 7.25));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_values),
        cmocka_unit_test(zero_on_the_lattice),
        cmocka_unit_test(range_and_continuity),
        cmocka_unit_test(seeds_differ),
        cmocka_unit_test(outside_the_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
