/* noise.h - seeded 2D gradient noise and its fractal sum (fBm), the source of every generated
 * height, temperature and moisture in the world (DESIGN.md section 13, "Procedural
 * generation").
 *
 * Deterministic to the byte on every machine: the same seed and coordinates give the same bits
 * whatever the compiler or C library. The code uses only IEEE-754 double + - * / and integer
 * hashing (no libm transcendental, no table filled at start), and the build turns off
 * floating-point contraction (see CMakeLists.txt), so a fused multiply-add cannot round
 * differently on one machine than on another. Pure functions: no allocation, no state. */
#ifndef FV_WORLD3D_NOISE_H
#define FV_WORLD3D_NOISE_H

#include <stdint.h>

#define FV_NOISE_MAX_OCTAVES 16

/* The splitmix64 finaliser: a bijective 64-bit mix. Derives independent seeds from one
 * (fv_noise_mix(world_seed, salt)) and hashes lattice points. */
uint64_t fv_noise_mix(uint64_t seed, uint64_t salt);

/* Gradient noise at (x, y): continuous, 0 on every integer lattice point, about -1..1 (never
 * beyond +-1.01). Coordinates must be finite with |x|, |y| < 2^31; outside that it returns 0. */
double fv_noise2(uint64_t seed, double x, double y);

/* A fractal sum of octaves of fv_noise2: octave k samples at frequency * lacunarity^k with
 * amplitude gain^k and its own seed, and the sum is divided by the sum of the amplitudes so
 * the result stays about -1..1. */
typedef struct fv_fbm {
    uint32_t octaves;              /* 1..FV_NOISE_MAX_OCTAVES (clamped) */
    double frequency;              /* of the first octave, in cycles per unit of x and y */
    double lacunarity;             /* frequency ratio between octaves, usually 2 */
    double gain;                   /* amplitude ratio between octaves, usually 0.5 */
} fv_fbm_t;

double fv_fbm2(uint64_t seed, const fv_fbm_t *p, double x, double y);

#endif
