/* grid.c - regions and cells of the default world. The names come from the first Finalverse
 * clients (terra-nova, whispering-wilds, aethelgard, technos-prime), so the first viewer's
 * region subscriptions find them; the rest fill the 3 x 3 square. */
#include "world3d/grid.h"

#include <math.h>
#include <string.h>

static const fv_region_info_t regions[FV_WORLD_REGIONS] = {
    {"aethelgard", "Aethelgard", 0, 0},
    {"crystal-peaks", "Crystal Peaks", 1, 0},
    {"technos-prime", "Technos Prime", 2, 0},
    {"whispering-wilds", "Whispering Wilds", 0, 1},
    {"terra-nova", "Terra Nova", 1, 1},
    {"ember-reach", "Ember Reach", 2, 1},
    {"mistveil-marsh", "Mistveil Marsh", 0, 2},
    {"sunken-choir", "Sunken Choir", 1, 2},
    {"silent-expanse", "Silent Expanse", 2, 2},
};

const fv_region_info_t *fv_region_at(int index)
{
    return index >= 0 && index < FV_WORLD_REGIONS ? &regions[index] : NULL;
}

int fv_region_index(const char *id)
{
    for (int i = 0; id && i < FV_WORLD_REGIONS; i++)
        if (strcmp(regions[i].id, id) == 0)
            return i;
    return -1;
}

int fv_region_at_grid(int gx, int gy)
{
    if (gx < 0 || gy < 0 || gx >= FV_WORLD_SIDE || gy >= FV_WORLD_SIDE)
        return -1;
    return gy * FV_WORLD_SIDE + gx;
}

bool fv_cell_of(int region, double x, double z, fv_cell_t *out)
{
    if (!fv_region_at(region) || !isfinite(x) || !isfinite(z))
        return false;
    if (x < 0 || z < 0 || x >= FV_REGION_SIZE_M || z >= FV_REGION_SIZE_M)
        return false;
    out->region = region;
    out->cx = (int)(x / FV_CELL_SIZE_M);
    out->cy = (int)(z / FV_CELL_SIZE_M);
    return true;
}

void fv_cell_center(const fv_cell_t *c, double *x, double *z)
{
    *x = (c->cx + 0.5) * FV_CELL_SIZE_M;
    *z = (c->cy + 0.5) * FV_CELL_SIZE_M;
}

bool fv_cell_valid(const fv_cell_t *c)
{
    return fv_region_at(c->region) && c->cx >= 0 && c->cy >= 0 && c->cx < FV_REGION_CELLS &&
           c->cy < FV_REGION_CELLS;
}

size_t fv_cell_neighbours(const fv_cell_t *c, fv_cell_t out[8])
{
    if (!fv_cell_valid(c))
        return 0;
    const fv_region_info_t *r = &regions[c->region];
    size_t n = 0;
    for (int dy = -1; dy <= 1; dy++) {
        for (int dx = -1; dx <= 1; dx++) {
            if (!dx && !dy)
                continue;
            /* world cell coordinates, then back to (region, cell) */
            int wx = r->gx * FV_REGION_CELLS + c->cx + dx;
            int wy = r->gy * FV_REGION_CELLS + c->cy + dy;
            if (wx < 0 || wy < 0)
                continue;
            int reg = fv_region_at_grid(wx / FV_REGION_CELLS, wy / FV_REGION_CELLS);
            if (reg < 0)
                continue;
            out[n].region = reg;
            out[n].cx = wx % FV_REGION_CELLS;
            out[n].cy = wy % FV_REGION_CELLS;
            n++;
        }
    }
    return n;
}
