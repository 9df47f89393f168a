/* interest.h - the cells a client sees: every world cell within `radius` cells (Chebyshev
 * distance, across region borders) of the cell it stands in. A cell already seen stays seen
 * until it is `radius + 1` away, so a client pacing on a cell border does not make the cells
 * at the edge of its view enter and leave with every step (hysteresis of one cell).
 *
 * Pure: a plain struct, no allocation. The radius is bounded, so one client's set is at most
 * (2 * (FV_INTEREST_MAX_RADIUS + 1) + 1)^2 cells, whatever it asks for. */
#ifndef FV_WORLD3D_INTEREST_H
#define FV_WORLD3D_INTEREST_H

#include <stddef.h>
#include <stdint.h>

#include "world3d/spatial.h"

#define FV_INTEREST_MAX_RADIUS 8
#define FV_INTEREST_MAX_CELLS ((2 * (FV_INTEREST_MAX_RADIUS + 1) + 1) * \
                               (2 * (FV_INTEREST_MAX_RADIUS + 1) + 1))

typedef struct fv_interest {
    int radius;                 /* 0..FV_INTEREST_MAX_RADIUS */
    int32_t center;             /* world cell index the set was last built around; -1: none */
    uint32_t count;
    int32_t cells[FV_INTEREST_MAX_CELLS];   /* world cell indexes, ascending */
} fv_interest_t;

/* An empty set for this radius (clamped to 0..FV_INTEREST_MAX_RADIUS). */
void fv_interest_init(fv_interest_t *in, int radius);

/* Re-centres the set on world cell `center` (-1: the client is nowhere, so every cell
 * leaves): cells newly within radius are written to entered, cells now farther than radius + 1
 * to left (each array must hold FV_INTEREST_MAX_CELLS), ascending. */
void fv_interest_update(fv_interest_t *in, int32_t center, int32_t *entered, uint32_t *nentered,
                        int32_t *left, uint32_t *nleft);

/* The Chebyshev distance in cells between two world cells. */
int fv_cell_distance(int32_t a, int32_t b);

/* Whether the set holds cell (binary search). */
int fv_interest_find(const fv_interest_t *in, int32_t cell);

#endif
