/* world_terrain.c - the world engine's two seams to the terrain generator (src/world3d/terrain
 * and biome, written beside this module): the ground under a point, and a cell's biome. Until
 * those land the ground is flat at 0 and every cell is meadow; replacing the three bodies below
 * with fv_terrain_height_at(), fv_cell_biome() and fv_biome_name() is the whole merge. */
#include "services/world-engine/world.h"

double world_ground_height(void *data, int region, double x, double z)
{
    (void)data;     /* the world_t: its state's seed, for fv_terrain_height_at(seed, ...) */
    (void)region;
    (void)x;
    (void)z;
    return 0.0;     /* replaced by fv_terrain_height_at when world3d/terrain lands */
}

int world_cell_biome(uint64_t seed, int region, int cx, int cy)
{
    (void)seed;
    (void)region;
    (void)cx;
    (void)cy;
    return 0;       /* replaced by fv_cell_biome when world3d/biome lands */
}

const char *world_biome_name(int biome)
{
    (void)biome;
    return "meadow"; /* replaced by fv_biome_name when world3d/biome lands */
}
