/* noise.c - gradient noise in Perlin's improved form (quintic fade, eight gradients), with a
 * hashed lattice instead of a permutation table so that the seed is any 64-bit number and the
 * plane has no period. */
#include "world3d/noise.h"

#include <math.h>

uint64_t fv_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned lattice(uint64_t seed, int64_t ix, int64_t iy)
{
    uint64_t h = fv_mix64(seed ^ ((uint64_t)ix * 0x632be59bd9b4e019ull));
    return (unsigned)fv_mix64(h ^ ((uint64_t)iy * 0x85157af5ull)) & 7u;
}

/* The dot product of one of eight gradients with (dx, dy): the four diagonals and the four
 * axes, scaled so that the noise stays within [-1, 1]. */
static double grad(unsigned g, double dx, double dy)
{
    switch (g) {
    case 0: return dx + dy;
    case 1: return -dx + dy;
    case 2: return dx - dy;
    case 3: return -dx - dy;
    case 4: return dx;
    case 5: return -dx;
    case 6: return dy;
    default: return -dy;
    }
}

static double fade(double t)
{
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
}

static double lerp(double a, double b, double t)
{
    return a + t * (b - a);
}

double fv_noise2(uint64_t seed, double x, double y)
{
    double x0 = floor(x), y0 = floor(y);
    double fx = x - x0, fy = y - y0;
    int64_t ix = (int64_t)x0, iy = (int64_t)y0;
    double n00 = grad(lattice(seed, ix, iy), fx, fy);
    double n10 = grad(lattice(seed, ix + 1, iy), fx - 1.0, fy);
    double n01 = grad(lattice(seed, ix, iy + 1), fx, fy - 1.0);
    double n11 = grad(lattice(seed, ix + 1, iy + 1), fx - 1.0, fy - 1.0);
    double u = fade(fx), v = fade(fy);
    /* a diagonal gradient reaches 1 at the cell's centre at most: scaled, within [-1, 1] */
    double n = lerp(lerp(n00, n10, u), lerp(n01, n11, u), v);
    return n > 1.0 ? 1.0 : n < -1.0 ? -1.0 : n;
}

double fv_fbm2(uint64_t seed, const fv_fbm_t *p, double x, double y)
{
    int octaves = p->octaves < 1 ? 1 : p->octaves > 16 ? 16 : p->octaves;
    double sum = 0.0, norm = 0.0, amp = 1.0, freq = p->frequency;
    for (int o = 0; o < octaves; o++) {
        uint64_t os = fv_mix64(seed + (uint64_t)o);
        /* each octave's lattice shifted by a fraction from its seed: otherwise round places
         * (the origin, multiples of a period) sit on every octave's lattice at once and come
         * out flat */
        double shift = (double)(os >> 48) / 65536.0;
        sum += amp * fv_noise2(os, x * freq + shift, y * freq + shift);
        norm += amp;
        amp *= p->gain;
        freq *= p->lacunarity;
    }
    return sum / norm;
}
