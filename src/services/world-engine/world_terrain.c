/* world_terrain.c - the world engine's two seams to the terrain generator (src/world3d): the
 * ground under a point, from the same seeded function procedural-gen serves its patches from, so
 * a player stands on what clients draw; and a cell's biome. */
#include "services/world-engine/world.h"

#include <math.h>

#include "world3d/biome.h"
#include "world3d/terrain.h"

double world_ground_height(void *data, int region, double x, double z)
{
    const world_t *w = data;
    double h = fv_terrain_height_at(w->state->seed, region, x, z);
    /* under water the ground is the sea floor; players swim at the surface */
    return isnan(h) ? 0.0 : h < 0.0 ? 0.0 : h;
}

int world_cell_biome(uint64_t seed, int region, int cx, int cy)
{
    fv_cell_t c = {.region = region, .cx = cx, .cy = cy};
    return (int)fv_cell_biome(seed, &c);
}

const char *world_biome_name(int biome)
{
    return fv_biome_name((fv_biome_t)biome);
}
