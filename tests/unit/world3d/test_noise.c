/* test_noise.c - the noise every machine must make alike: golden values to the bit (printed
 * with %a when they were fixed), its range, its zeros on the lattice and its continuity. A
 * change to noise.c that moves a golden value changes every world made from a seed, so it is
 * a change of the world format, not a refactoring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "world3d/noise.h"
#include "world3d/terrain.h"

static void golden_values(void **state)
{
    (void)state;
    assert_true(fv_noise2(42, 0.5, 0.5) == 0x1p-1);
    assert_true(fv_noise2(42, 1.25, -3.75) == 0x1.abf2p-3);
    assert_true(fv_noise2(42, 100.1, 200.7) == -0x1.3df569e918c4p-3);
    assert_true(fv_noise2(42, -1234.5, 987.25) == -0x1.96p-4);
    fv_fbm_t f = {.octaves = 5, .frequency = 1.0 / 64, .lacunarity = 2, .gain = 0.5};
    assert_true(fv_fbm2(7, &f, 0.5, 0.5) == 0x1.77e151b29fe15p-3);
    assert_true(fv_fbm2(7, &f, 1.25, -3.75) == 0x1.88d37e8cce74dp-4);
    assert_true(fv_fbm2(7, &f, 100.1, 200.7) == -0x1.db1e9079b4d8cp-3);
    assert_true(fv_fbm2(7, &f, -1234.5, 987.25) == -0x1.15061b28d08eep-5);
    assert_true(fv_terrain_sample(42, 0, 0) == 0x1.89711p+3f);
    assert_true(fv_terrain_sample(42, 1536, 1536) == 0x1.653f2ep+4f);
    assert_true(fv_terrain_sample(42, -5, 3000) == -0x1.7ce9c8p-1f);
}

static uint64_t rng = 12345;
static double uniform(double lo, double hi)
{
    rng = fv_mix64(rng);
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static void range_zeros_and_continuity(void **state)
{
    (void)state;
    fv_fbm_t f = {.octaves = 6, .frequency = 0.01, .lacunarity = 2, .gain = 0.5};
    for (int k = 0; k < 100000; k++) {
        double x = uniform(-1e5, 1e5), y = uniform(-1e5, 1e5);
        double n = fv_noise2(99, x, y);
        assert_true(n >= -1.0 && n <= 1.0);
        double b = fv_fbm2(99, &f, x, y);
        assert_true(b >= -1.0 && b <= 1.0);
        /* a step of a millimetre moves the noise by little: no seams, no jumps */
        assert_true(fabs(fv_noise2(99, x + 1e-3, y) - n) < 0.01);
    }
    for (int i = -50; i < 50; i++)
        for (int j = -50; j < 50; j++)
            assert_true(fv_noise2(99, i, j) == 0.0);
    /* other seeds, other noise */
    int same = 0;
    for (int k = 0; k < 1000; k++) {
        double x = uniform(-100, 100), y = uniform(-100, 100);
        if (fv_noise2(1, x, y) == fv_noise2(2, x, y))
            same++;
    }
    assert_true(same < 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_values),
        cmocka_unit_test(range_zeros_and_continuity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
