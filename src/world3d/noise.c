/* noise.c - 2D gradient noise (Perlin's construction: a pseudo-random unit gradient at each
 * lattice point, dot products with the offsets, blended by a quintic fade) and fBm over it.
 * The gradients come from hashing (seed, lattice point), not from a permutation table, so any
 * 64-bit seed gives its own field without set-up and the lattice never repeats.
 *
 * Why it is the same on every machine: every operation is an IEEE-754 double + - * on exact
 * constants, rounded once each (FLT_EVAL_METHOD 0 is checked below, contraction is off in the
 * build), floor() is done with an integer conversion, and the hash is integer arithmetic. */
#include "world3d/noise.h"

#include <float.h>
#include <stdbool.h>

/* x87 arithmetic keeps intermediates in 80 bits and would round differently from SSE2 or
 * ARM: refuse to build where double arithmetic is not plain double. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "noise.c needs FLT_EVAL_METHOD 0 (e.g. SSE2 on x86) for byte-identical results"
#endif

/* 1/sqrt(2) rounded to double, written out so no libm call decides it. */
#define INV_SQRT2 0.70710678118654752440
/* Unit-gradient 2D noise peaks at sqrt(2)/2; scaling by sqrt(2) makes the range about -1..1. */
#define SQRT2 1.41421356237309504880

#define LIMIT 2147483648.0            /* 2^31 */

/* Eight unit gradients: the axes and the diagonals. */
static const double GRAD[8][2] = {
    {1.0, 0.0},   {-1.0, 0.0},        {0.0, 1.0},        {0.0, -1.0},
    {INV_SQRT2, INV_SQRT2},   {INV_SQRT2, -INV_SQRT2},
    {-INV_SQRT2, INV_SQRT2},  {-INV_SQRT2, -INV_SQRT2},
};

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t fv_noise_mix(uint64_t seed, uint64_t salt)
{
    return mix64(seed + UINT64_C(0x9e3779b97f4a7c15) * (salt + 1));
}

/* The gradient at lattice point (ix, iy): the top three bits of a mix of the point and seed. */
static inline const double *gradient(uint64_t seed, int64_t ix, int64_t iy)
{
    uint64_t h = mix64(seed ^ ((uint64_t)ix * UINT64_C(0x9e3779b97f4a7c15)) ^
                       ((uint64_t)iy * UINT64_C(0xc2b2ae3d27d4eb4f)));
    return GRAD[h >> 61];
}

/* floor for |v| < 2^31 without libm: truncation, one step down for negative fractions. */
static inline int64_t floor_i(double v)
{
    int64_t i = (int64_t)v;
    return (double)i > v ? i - 1 : i;
}

/* 6t^5 - 15t^4 + 10t^3, Horner's form: first and second derivatives vanish at 0 and 1. */
static inline double fade(double t)
{
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
}

double fv_noise2(uint64_t seed, double x, double y)
{
    /* written so a NaN fails the test too */
    if (!(x > -LIMIT && x < LIMIT && y > -LIMIT && y < LIMIT))
        return 0.0;
    int64_t ix = floor_i(x), iy = floor_i(y);
    double fx = x - (double)ix, fy = y - (double)iy;      /* exact: both below 2^31 */
    const double *g00 = gradient(seed, ix, iy);
    const double *g10 = gradient(seed, ix + 1, iy);
    const double *g01 = gradient(seed, ix, iy + 1);
    const double *g11 = gradient(seed, ix + 1, iy + 1);
    double n00 = g00[0] * fx + g00[1] * fy;
    double n10 = g10[0] * (fx - 1.0) + g10[1] * fy;
    double n01 = g01[0] * fx + g01[1] * (fy - 1.0);
    double n11 = g11[0] * (fx - 1.0) + g11[1] * (fy - 1.0);
    double u = fade(fx), v = fade(fy);
    double a = n00 + (n10 - n00) * u;
    double b = n01 + (n11 - n01) * u;
    return (a + (b - a) * v) * SQRT2;
}

double fv_fbm2(uint64_t seed, const fv_fbm_t *p, double x, double y)
{
    uint32_t n = p->octaves < 1 ? 1 : p->octaves > FV_NOISE_MAX_OCTAVES ? FV_NOISE_MAX_OCTAVES
                                                                        : p->octaves;
    double f = p->frequency, amp = 1.0, sum = 0.0, norm = 0.0;
    for (uint32_t k = 0; k < n; k++) {
        sum += amp * fv_noise2(fv_noise_mix(seed, k), x * f, y * f);
        norm += amp;
        f *= p->lacunarity;
        amp *= p->gain;
    }
    return norm > 0.0 ? sum / norm : 0.0;
}
