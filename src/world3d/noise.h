/* noise.h - seeded gradient noise and its fractal sum, for terrain, temperature and moisture.
 *
 * Written here so that every machine makes the same world from the same seed, to the bit: the
 * arithmetic is IEEE double with + - * / and floor only (no libm transcendental function whose
 * last bit may differ between libraries) and the world3d files build with -ffp-contract=off, so
 * no compiler fuses a multiply and an add where another does not. Golden values in
 * tests/unit/world3d/test_noise.c hold the line. */
#ifndef FV_WORLD3D_NOISE_H
#define FV_WORLD3D_NOISE_H

#include <stdint.h>

/* Gradient noise at (x, y): continuous, 0 at every integer lattice point, within [-1, 1].
 * Lattice gradients come from a hash of the point and the seed. */
double fv_noise2(uint64_t seed, double x, double y);

/* A fractal sum: octaves of fv_noise2 at frequency, frequency * lacunarity, ..., with
 * amplitudes 1, gain, gain^2, ..., each octave with its own seed; divided by the sum of the
 * amplitudes, so within [-1, 1]. */
typedef struct fv_fbm {
    int octaves;                /* 1..16 */
    double frequency;           /* of the first octave, cycles per unit */
    double lacunarity;          /* frequency step between octaves, usually 2 */
    double gain;                /* amplitude step between octaves, usually 0.5 */
} fv_fbm_t;

double fv_fbm2(uint64_t seed, const fv_fbm_t *p, double x, double y);

/* A 64-bit mix of z (splitmix64's finaliser): the one hash the world's seeded choices use. */
uint64_t fv_mix64(uint64_t z);

#endif
