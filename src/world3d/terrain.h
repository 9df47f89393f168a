/* terrain.h - a cell's terrain patch: 65 x 65 heights from seeded fractal noise, so any cell
 * can be regenerated from the world seed alone (DESIGN.md section 13, "Space").
 *
 * Sample (i, j) of a cell's patch lies at the cell's origin + (i, j) metres along (x, z), so
 * the last row and column of one patch are the first of its neighbour's, exactly. Heights are
 * sampled in world coordinates (the region's place in the world's grid * 1024 m + the
 * region-local position), so they run on across region borders too. Between samples the
 * ground is the bilinear interpolation of the four around the point: fv_terrain_height_at()
 * computes it without a patch and agrees with the patch to the bit.
 *
 * Pure functions: no allocation, no I/O; the same seed gives the same bits on every machine
 * (see noise.h). */
#ifndef FV_WORLD3D_TERRAIN_H
#define FV_WORLD3D_TERRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "world3d/grid.h"

#define FV_PATCH_SIDE 65
#define FV_PATCH_SAMPLES (FV_PATCH_SIDE * FV_PATCH_SIDE)

/* Bumped whenever the same seed would give different heights: it is part of the wire header
 * and of HTTP ETags, so caches never mix generations. */
#define FV_TERRAIN_VERSION 1

typedef struct fv_terrain_patch {
    fv_cell_t cell;
    float min, max;                     /* of h[] */
    float h[FV_PATCH_SAMPLES];          /* metres above sea level; row-major: h[j * 65 + i] */
} fv_terrain_patch_t;

/* Sample (i, j) of p, i along x, j along z, both 0..64. */
#define FV_PATCH_AT(p, i, j) ((p)->h[(size_t)(j) * FV_PATCH_SIDE + (size_t)(i)])

/* Fills out with the patch of cell c (a valid cell: fv_cell_valid). */
void fv_terrain_patch_generate(uint64_t seed, const fv_cell_t *c, fv_terrain_patch_t *out);

/* The ground height at region-local position (x, z) of region: the bilinear interpolation of
 * the four patch samples around it (at a sample point, the sample itself, as a double). Any
 * finite x and z with |x|, |z| < 2^20 are answered (beyond the region's 0..1024 the ground
 * goes on as the neighbouring regions' does); NaN for an unknown region or a position outside
 * that. */
double fv_terrain_height_at(uint64_t seed, int region, double x, double z);

/* The unit surface normal (y up) at region-local (x, z), from central differences of
 * fv_terrain_height_at one metre either side, so normals are continuous across patch and
 * region borders too. 0, or FV_EINVAL (out untouched) where fv_terrain_height_at is NaN. */
FV_MUST_USE int fv_terrain_normal(uint64_t seed, int region, double x, double z,
                                  double out[3]);

/* ---- the wire encoding ----
 * Little-endian, FV_TERRAIN_WIRE_BYTES (8470) bytes:
 *   0  4  magic "FVTP"
 *   4  1  version (FV_TERRAIN_VERSION)
 *   5  1  side (65)
 *   6  2  region index (u16)
 *   8  1  cell x (0..15)
 *   9  1  cell y (0..15)
 *  10  2  reserved, 0
 *  12  4  min height (IEEE-754 binary32)
 *  16  4  max height (IEEE-754 binary32)
 *  20  8450  65 * 65 u16 q, row-major like h[]; height = min + q * (max - min) / 65535
 * so a decoded height is within (max - min) / 131070 (plus float rounding) of the original. */
#define FV_TERRAIN_WIRE_HEADER 20
#define FV_TERRAIN_WIRE_BYTES (FV_TERRAIN_WIRE_HEADER + 2 * FV_PATCH_SAMPLES)

/* Writes p's encoding into out (FV_TERRAIN_WIRE_BYTES bytes); returns that count. */
size_t fv_terrain_encode(const fv_terrain_patch_t *p, uint8_t out[FV_TERRAIN_WIRE_BYTES]);

/* Decodes len bytes at in into out: 0, or FV_EINVAL with err (may be NULL) saying what is
 * wrong (length, magic, version, side, cell, min/max); out is then unspecified. */
FV_MUST_USE int fv_terrain_decode(const uint8_t *in, size_t len, fv_terrain_patch_t *out,
                                  fv_error_t *err);

#endif
