/* terrain.h - a cell's ground: a patch of 65 x 65 heights, one a metre over the cell's 64 m,
 * made from the world seed alone (DESIGN.md section 13), so any cell can be made again anywhere
 * and two neighbouring patches share their edge samples exactly, across region borders too.
 *
 * Sample (i, j) of the cell (region, cx, cy) stands at region-local (cx * 64 + i, cy * 64 + j)
 * metres, i along x (east) and j along z (south); heights are metres above sea level (below 0
 * is water). Heights between samples are the bilinear blend of the four around. Pure. */
#ifndef FV_WORLD3D_TERRAIN_H
#define FV_WORLD3D_TERRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world3d/grid.h"

#define FV_PATCH_SIDE 65
#define FV_PATCH_SAMPLES (FV_PATCH_SIDE * FV_PATCH_SIDE)

typedef struct fv_terrain_patch {
    fv_cell_t cell;
    float h[FV_PATCH_SAMPLES];   /* row-major: h[j * FV_PATCH_SIDE + i] */
    float min, max;
} fv_terrain_patch_t;

/* The height of the world's ground at integer metres (wx, wz) of the whole world's plane
 * (region grid place * 1024 + region-local): what every patch samples. */
float fv_terrain_sample(uint64_t seed, int64_t wx, int64_t wz);

/* Fills out with the patch of cell c (fv_cell_valid(c) is the caller's to check). */
void fv_terrain_patch_generate(uint64_t seed, const fv_cell_t *c, fv_terrain_patch_t *out);

/* The ground's height at region-local (x, z) of region: the bilinear blend of the four samples
 * around, equal to the patch's sample at integer positions. NaN for an unknown region or a
 * position that is not finite. Positions outside the region continue into the world's plane. */
double fv_terrain_height_at(uint64_t seed, int region, double x, double z);

/* The unit normal at sample (i, j) of p, from the samples beside it (one-sided at the edges). */
void fv_terrain_normal(const fv_terrain_patch_t *p, int i, int j, float out[3]);

/* ---- the wire encoding ----
 * FV_TERRAIN_WIRE_BYTES bytes, little-endian:
 *   0  4  magic "FVT1"
 *   4  1  region index
 *   5  1  cx
 *   6  1  cy
 *   7  1  reserved, 0
 *   8  4  min height (IEEE float)
 *  12  4  max height (IEEE float)
 *  16  2 * 65 * 65  heights as u16, row-major like h[]: min + q * (max - min) / 65535
 * A height comes back within (max - min) / 131070 of the original (under 2 mm for a 250 m
 * range). */
#define FV_TERRAIN_WIRE_HEADER 16
#define FV_TERRAIN_WIRE_BYTES (FV_TERRAIN_WIRE_HEADER + 2 * FV_PATCH_SAMPLES)

/* Writes p's encoding into out (FV_TERRAIN_WIRE_BYTES). */
void fv_terrain_encode(const fv_terrain_patch_t *p, uint8_t out[FV_TERRAIN_WIRE_BYTES]);
/* Reads an encoding: 0 and *out, or FV_EINVAL for a length other than FV_TERRAIN_WIRE_BYTES,
 * another magic, a cell outside the world, a reserved byte not 0, or min/max not finite or
 * min > max. */
int fv_terrain_decode(const uint8_t *data, size_t len, fv_terrain_patch_t *out);

#endif
