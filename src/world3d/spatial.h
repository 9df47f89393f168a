/* spatial.h - who is where: a bucket per world cell (the 64 m cells of grid.h, across every
 * region), each an array of the entities filed under it. "Who is within R of P" visits only the
 * cells the circle touches, and "what is in this cell" is the cell's array, so both cost what
 * they find, never the world's size.
 *
 * The index borrows entities: it keeps pointers and writes only their sp_cell/sp_slot fields
 * (entity.h), which make a move or a removal O(1). An entity must be removed before it is
 * freed. Positions are region-local (grid.h); queries run on across region borders, in the
 * world's coordinates (a region's place in the grid * 1024 m + the local position). */
#ifndef FV_WORLD3D_SPATIAL_H
#define FV_WORLD3D_SPATIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world3d/entity.h"
#include "world3d/grid.h"

/* World cells: FV_WORLD_SIDE * FV_REGION_CELLS on each side. A world cell's index is
 * region * 256 + cy * 16 + cx; its world coordinates are (gx * 16 + cx, gy * 16 + cy). */
#define FV_WORLD_CELLS_SIDE (FV_WORLD_SIDE * FV_REGION_CELLS)
#define FV_WORLD_CELLS (FV_WORLD_REGIONS * FV_REGION_CELLS * FV_REGION_CELLS)

typedef struct fv_spatial_cell {
    fv_entity_t **ents;
    uint64_t *stamps;           /* beside each entity, a number its owner keeps (the streaming
                                   code: the tick of its last change), read without touching
                                   the entity */
    uint32_t count;
    uint32_t cap;
} fv_spatial_cell_t;

typedef struct fv_spatial {
    fv_spatial_cell_t cells[FV_WORLD_CELLS];
    size_t total;
} fv_spatial_t;

/* The world cell index of c, or -1 when c is not a cell of the world. */
int32_t fv_world_cell_index(const fv_cell_t *c);
/* The cell of a world cell index (which must be valid). */
fv_cell_t fv_world_cell(int32_t index);
/* World cell coordinates of an index. */
void fv_world_cell_xy(int32_t index, int *wx, int *wy);
/* The index at world cell coordinates, or -1 outside the world. */
int32_t fv_world_cell_at(int wx, int wy);

void fv_spatial_init(fv_spatial_t *s);
/* Frees the buckets; the entities are the caller's. */
void fv_spatial_dispose(fv_spatial_t *s);

/* The world cell e is filed under, or -1. */
static inline int32_t fv_spatial_cell_of(const fv_entity_t *e)
{
    return e->sp_cell - 1;
}

/* Files e under the cell of its position (a zeroed entity is in none), or moves it there
 * after its position changed; an entity whose position is in no cell is removed. Returns the
 * cell it was under before (-1: none); the new one is fv_spatial_cell_of(e). */
int32_t fv_spatial_place(fv_spatial_t *s, fv_entity_t *e);
/* Sets the stamp kept beside e in its cell (nothing when e is in none). */
static inline void fv_spatial_stamp(fv_spatial_t *s, const fv_entity_t *e, uint64_t v)
{
    if (e->sp_cell > 0)
        s->cells[e->sp_cell - 1].stamps[e->sp_slot] = v;
}

/* Takes e out of the index (nothing when it is not in). Returns the cell it was under. */
int32_t fv_spatial_remove(fv_spatial_t *s, fv_entity_t *e);

/* The entities within radius metres (horizontally) of region-local (x, z), this region's and
 * its neighbours', up to max of them written to out (any max of them when more are in reach).
 * Returns how many are in reach in all (which may exceed max). */
size_t fv_spatial_near(const fv_spatial_t *s, int region, double x, double z, double radius,
                       fv_entity_t **out, size_t max);

#endif
