/* spatial.c - the cell-bucket index of spatial.h. A bucket grows by doubling and never
 * shrinks below what it once held: entities come back to the cells they left. */
#include "world3d/spatial.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

#define CELLS_PER_REGION (FV_REGION_CELLS * FV_REGION_CELLS)

int32_t fv_world_cell_index(const fv_cell_t *c)
{
    if (!fv_cell_valid(c))
        return -1;
    return (int32_t)(c->region * CELLS_PER_REGION + c->cy * FV_REGION_CELLS + c->cx);
}

fv_cell_t fv_world_cell(int32_t index)
{
    fv_cell_t c = {.region = index / CELLS_PER_REGION,
                   .cx = index % FV_REGION_CELLS,
                   .cy = (index % CELLS_PER_REGION) / FV_REGION_CELLS};
    return c;
}

void fv_world_cell_xy(int32_t index, int *wx, int *wy)
{
    fv_cell_t c = fv_world_cell(index);
    const fv_region_info_t *r = fv_region_at(c.region);
    *wx = r->gx * FV_REGION_CELLS + c.cx;
    *wy = r->gy * FV_REGION_CELLS + c.cy;
}

int32_t fv_world_cell_at(int wx, int wy)
{
    if (wx < 0 || wy < 0 || wx >= FV_WORLD_CELLS_SIDE || wy >= FV_WORLD_CELLS_SIDE)
        return -1;
    int region = fv_region_at_grid(wx / FV_REGION_CELLS, wy / FV_REGION_CELLS);
    if (region < 0)
        return -1;
    fv_cell_t c = {region, wx % FV_REGION_CELLS, wy % FV_REGION_CELLS};
    return fv_world_cell_index(&c);
}

void fv_spatial_init(fv_spatial_t *s)
{
    memset(s, 0, sizeof(*s));
}

void fv_spatial_dispose(fv_spatial_t *s)
{
    for (size_t i = 0; i < FV_WORLD_CELLS; i++) {
        fv_free(s->cells[i].ents);
        fv_free(s->cells[i].stamps);
    }
    memset(s, 0, sizeof(*s));
}

int32_t fv_spatial_remove(fv_spatial_t *s, fv_entity_t *e)
{
    int32_t was = fv_spatial_cell_of(e);
    if (was < 0 || was >= FV_WORLD_CELLS)
        return -1;
    fv_spatial_cell_t *c = &s->cells[was];
    uint32_t i = e->sp_slot;
    /* the last one takes the leaver's slot */
    fv_entity_t *last = c->ents[--c->count];
    c->ents[i] = last;
    c->stamps[i] = c->stamps[c->count];
    last->sp_slot = i;
    e->sp_cell = 0;
    e->sp_slot = 0;
    s->total--;
    return was;
}

int32_t fv_spatial_place(fv_spatial_t *s, fv_entity_t *e)
{
    fv_cell_t cell;
    int32_t now = fv_cell_of(e->region, e->x, e->z, &cell) ? fv_world_cell_index(&cell) : -1;
    int32_t was = fv_spatial_cell_of(e);
    if (now == was)
        return was;
    if (was >= 0)
        fv_spatial_remove(s, e);
    if (now < 0)
        return was;
    fv_spatial_cell_t *c = &s->cells[now];
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->ents = fv_realloc(c->ents, c->cap * sizeof(*c->ents));
        c->stamps = fv_realloc(c->stamps, c->cap * sizeof(*c->stamps));
    }
    e->sp_cell = now + 1;
    e->sp_slot = c->count;
    c->stamps[c->count] = 0;
    c->ents[c->count++] = e;
    s->total++;
    return was;
}

/* A position in the world's metres. */
static void world_xz(int region, double x, double z, double *wx, double *wz)
{
    const fv_region_info_t *r = fv_region_at(region);
    *wx = r->gx * FV_REGION_SIZE_M + x;
    *wz = r->gy * FV_REGION_SIZE_M + z;
}

size_t fv_spatial_near(const fv_spatial_t *s, int region, double x, double z, double radius,
                       fv_entity_t **out, size_t max)
{
    if (!fv_region_at(region) || !isfinite(x) || !isfinite(z) || !(radius >= 0) ||
        !isfinite(radius))
        return 0;
    double px, pz;
    world_xz(region, x, z, &px, &pz);
    double side = FV_WORLD_SIDE * FV_REGION_SIZE_M;
    /* the cells the circle's bounding square touches, clipped to the world */
    int x0 = (int)floor(fmax(px - radius, 0) / FV_CELL_SIZE_M);
    int x1 = (int)floor(fmin(px + radius, side - 1e-9) / FV_CELL_SIZE_M);
    int z0 = (int)floor(fmax(pz - radius, 0) / FV_CELL_SIZE_M);
    int z1 = (int)floor(fmin(pz + radius, side - 1e-9) / FV_CELL_SIZE_M);
    double r2 = radius * radius;
    size_t n = 0;
    for (int wy = z0; wy <= z1; wy++) {
        for (int wx = x0; wx <= x1; wx++) {
            int32_t ci = fv_world_cell_at(wx, wy);
            if (ci < 0)
                continue;
            const fv_spatial_cell_t *c = &s->cells[ci];
            for (uint32_t i = 0; i < c->count; i++) {
                fv_entity_t *e = c->ents[i];
                double ex, ez;
                world_xz(e->region, e->x, e->z, &ex, &ez);
                double dx = ex - px, dz = ez - pz;
                if (dx * dx + dz * dz > r2)
                    continue;
                if (n < max)
                    out[n] = e;
                n++;
            }
        }
    }
    return n;
}
