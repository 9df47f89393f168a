/* biome.h - what grows on a cell: from its height (terrain.h) and two slow noise fields,
 * temperature and moisture, each with its own seed derived from the world seed (DESIGN.md
 * section 13, "Procedural generation"). A third field marks the rare crystal fields where the
 * Song runs close to the surface.
 *
 * The rules, in order (t and m about -1..1, h in metres at the cell's centre):
 *   h < 0                 ocean
 *   h < 3                 beach
 *   crystal field > 0.5   crystal
 *   h > 90                snow when t < -0.45 (after the altitude chill), else mountain
 *   t < -0.5              tundra
 *   t < -0.25             taiga when m > 0, else tundra
 *   t > 0.3               desert when m < -0.15, savanna when m < 0.15, else forest
 *   m > 0.3 and h < 20    swamp
 *   m > 0                 forest
 *   otherwise             grassland
 * where t is the temperature field minus h / 600 (it is colder up high). Pure functions; the
 * same on every machine (noise.h). */
#ifndef FV_WORLD3D_BIOME_H
#define FV_WORLD3D_BIOME_H

#include <stdint.h>

#include "world3d/grid.h"

typedef enum fv_biome {
    FV_BIOME_OCEAN,
    FV_BIOME_BEACH,
    FV_BIOME_GRASSLAND,
    FV_BIOME_FOREST,
    FV_BIOME_SWAMP,
    FV_BIOME_DESERT,
    FV_BIOME_SAVANNA,
    FV_BIOME_TAIGA,
    FV_BIOME_TUNDRA,
    FV_BIOME_MOUNTAIN,
    FV_BIOME_SNOW,
    FV_BIOME_CRYSTAL,
    FV_BIOME_COUNT
} fv_biome_t;

/* The climate at one place, region-local metres: what the rules above read. */
typedef struct fv_climate {
    double height;                 /* metres, fv_terrain_height_at */
    double temperature;            /* about -1..1, altitude chill included */
    double moisture;               /* about -1..1 */
    double crystal;                /* about -1..1 */
} fv_climate_t;

/* The climate at region-local (x, z) of region; NaN height for an unknown region or a
 * position fv_terrain_height_at refuses. */
void fv_climate_at(uint64_t seed, int region, double x, double z, fv_climate_t *out);

/* The biome the rules give a climate (ocean for a NaN height). */
fv_biome_t fv_biome_of(const fv_climate_t *cl);

/* The biome of a cell: the rules at its centre. FV_BIOME_OCEAN for an invalid cell. */
fv_biome_t fv_cell_biome(uint64_t seed, const fv_cell_t *c);

/* "ocean", "beach", ...: the lower-case name used on the wire; "unknown" out of range. */
const char *fv_biome_name(fv_biome_t b);

/* The biome with that name, or -1. */
int fv_biome_from_name(const char *name);

#endif
