/* grid.h - the Verse's space (DESIGN.md section 13): a square of regions, each 1024 m x 1024 m
 * and cut into 16 x 16 cells of 64 m. Positions are region-local metres (x east, z south, y
 * up); a cell is (region, cx, cy) with cx along x and cy along z. Pure functions over plain
 * structs: no allocation, no I/O. */
#ifndef FV_WORLD3D_GRID_H
#define FV_WORLD3D_GRID_H

#include <stdbool.h>
#include <stddef.h>

#define FV_REGION_SIZE_M 1024.0
#define FV_REGION_CELLS 16
#define FV_CELL_SIZE_M (FV_REGION_SIZE_M / FV_REGION_CELLS)
/* The default world: 3 x 3 regions. */
#define FV_WORLD_SIDE 3
#define FV_WORLD_REGIONS (FV_WORLD_SIDE * FV_WORLD_SIDE)

typedef struct fv_region_info {
    const char *id;             /* slug: "terra-nova" */
    const char *name;           /* "Terra Nova" */
    int gx, gy;                 /* place in the world's grid of regions */
} fv_region_info_t;

typedef struct fv_cell {
    int region;                 /* index into the world's regions */
    int cx, cy;                 /* 0..FV_REGION_CELLS-1 */
} fv_cell_t;

/* The default world's regions, by index (0..FV_WORLD_REGIONS-1), or NULL. */
const fv_region_info_t *fv_region_at(int index);
/* The index of the region with this slug, or -1. */
int fv_region_index(const char *id);
/* The region at grid place (gx, gy), or -1 outside the world. */
int fv_region_at_grid(int gx, int gy);

/* The cell holding region-local position (x, z) of region: true and *out; false (nothing
 * written) for NaN, infinities, a position outside the region (x or z < 0 or >= 1024) or an
 * unknown region. The east and south edges belong to the next region. */
bool fv_cell_of(int region, double x, double z, fv_cell_t *out);
/* The centre of a cell in region-local metres. */
void fv_cell_center(const fv_cell_t *c, double *x, double *z);
/* Whether c names a cell of the world. */
bool fv_cell_valid(const fv_cell_t *c);

/* The up to 8 cells around c, across region borders where a neighbouring region exists (the
 * world's edge has fewer); returns how many were written to out[8]. In a fixed order: rows
 * north to south, west to east within a row. */
size_t fv_cell_neighbours(const fv_cell_t *c, fv_cell_t out[8]);

#endif
