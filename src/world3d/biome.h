/* biome.h - what grows where: a cell's biome from the ground's height at its centre and two
 * more noise fields over the world's plane, temperature and moisture (DESIGN.md section 13,
 * "Procedural generation"). Pure and seeded like the terrain. */
#ifndef FV_WORLD3D_BIOME_H
#define FV_WORLD3D_BIOME_H

#include <stdint.h>

#include "world3d/grid.h"

typedef enum fv_biome {
    FV_BIOME_OCEAN = 0,         /* ground below sea level */
    FV_BIOME_BEACH,             /* the first metres above it */
    FV_BIOME_GRASSLAND,
    FV_BIOME_FOREST,            /* moist */
    FV_BIOME_SWAMP,             /* wet and low */
    FV_BIOME_DESERT,            /* hot and dry */
    FV_BIOME_TUNDRA,            /* cold */
    FV_BIOME_MOUNTAIN,          /* high ground */
    FV_BIOME_COUNT
} fv_biome_t;

/* Temperature and moisture in [-1, 1] at world-plane metres (wx, wz). */
double fv_temperature_at(uint64_t seed, double wx, double wz);
double fv_moisture_at(uint64_t seed, double wx, double wz);

/* The biome of a height with a temperature and a moisture: the rule, alone. */
fv_biome_t fv_biome_classify(double height, double temperature, double moisture);

/* The biome of a cell: the rule at its centre. FV_BIOME_OCEAN for a cell outside the world. */
fv_biome_t fv_cell_biome(uint64_t seed, const fv_cell_t *c);

/* "ocean", "beach", "grassland", ...; "unknown" past the enum. */
const char *fv_biome_name(fv_biome_t b);

#endif
