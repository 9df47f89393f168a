/* poi.h - a region's points of interest, placed by Poisson-disk sampling (Bridson's
 * algorithm) from a PRNG seeded with the world seed and the region, so every machine places the
 * same points (DESIGN.md section 13, "Procedural generation"; exploration songs reveal them).
 *
 * No two points of a region are closer than FV_POI_MIN_DIST_M; a region holds at most
 * FV_POI_MAX (the sampling of a 1024 m region at this distance gives about 45, so the ceiling
 * only guards against a change of numbers). Positions are multiples of 1/8 m, so they print
 * short and exact. A point's kind follows the biome of its cell. Pure functions. */
#ifndef FV_WORLD3D_POI_H
#define FV_WORLD3D_POI_H

#include <stddef.h>
#include <stdint.h>

#include "world3d/biome.h"

#define FV_POI_MAX 64
#define FV_POI_MIN_DIST_M 128.0

typedef enum fv_poi_kind {
    FV_POI_SHRINE,
    FV_POI_RUIN,
    FV_POI_GROVE,
    FV_POI_CAMP,
    FV_POI_CAVE,
    FV_POI_ECHO_STONE,
    FV_POI_CRYSTAL_SPIRE,
    FV_POI_WRECK,
    FV_POI_KIND_COUNT
} fv_poi_kind_t;

typedef struct fv_poi {
    uint32_t id;                   /* 0, 1, ... in placement order within the region */
    fv_poi_kind_t kind;
    fv_cell_t cell;                /* the cell holding it */
    fv_biome_t biome;              /* of that cell */
    double x, z;                   /* region-local metres, 0 <= x, z < 1024 */
    double y;                      /* ground height there (fv_terrain_height_at) */
} fv_poi_t;

/* Writes region's points to out (room for FV_POI_MAX) and returns how many; 0 for an unknown
 * region. */
size_t fv_region_pois(uint64_t seed, int region, fv_poi_t out[FV_POI_MAX]);

/* "shrine", "ruin", ...; "unknown" out of range. */
const char *fv_poi_kind_name(fv_poi_kind_t k);

#endif
