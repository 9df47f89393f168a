/* biome.c - temperature and moisture vary over tens of kilometres, slower than the land, so a
 * biome spans many cells and changes at believable borders. */
#include "world3d/biome.h"

#include "world3d/noise.h"
#include "world3d/terrain.h"

static const fv_fbm_t CLIMATE_FBM = {
    .octaves = 4, .frequency = 1.0 / 2048.0, .lacunarity = 2.0, .gain = 0.5,
};
#define SEED_TEMPERATURE 0x74656d7065726174ull   /* "temperat" */
#define SEED_MOISTURE 0x6d6f697374757265ull      /* "moisture" */

double fv_temperature_at(uint64_t seed, double wx, double wz)
{
    return fv_fbm2(seed ^ SEED_TEMPERATURE, &CLIMATE_FBM, wx, wz);
}

double fv_moisture_at(uint64_t seed, double wx, double wz)
{
    return fv_fbm2(seed ^ SEED_MOISTURE, &CLIMATE_FBM, wx, wz);
}

fv_biome_t fv_biome_classify(double height, double temperature, double moisture)
{
    if (height < 0.0)
        return FV_BIOME_OCEAN;
    if (height < 3.0)
        return FV_BIOME_BEACH;
    /* higher is colder: about the drop of a few hundred metres of real mountain */
    double t = temperature - height / 400.0;
    if (height > 85.0)
        return FV_BIOME_MOUNTAIN;
    if (t < -0.3)
        return FV_BIOME_TUNDRA;
    if (t > 0.2 && moisture < -0.05)
        return FV_BIOME_DESERT;
    if (moisture > 0.25 && height < 15.0)
        return FV_BIOME_SWAMP;
    if (moisture > 0.0)
        return FV_BIOME_FOREST;
    return FV_BIOME_GRASSLAND;
}

fv_biome_t fv_cell_biome(uint64_t seed, const fv_cell_t *c)
{
    const fv_region_info_t *r = fv_region_at(c->region);
    if (!r || !fv_cell_valid(c))
        return FV_BIOME_OCEAN;
    double x, z;
    fv_cell_center(c, &x, &z);
    double wx = (double)r->gx * FV_REGION_SIZE_M + x, wz = (double)r->gy * FV_REGION_SIZE_M + z;
    double h = fv_terrain_height_at(seed, c->region, x, z);
    return fv_biome_classify(h, fv_temperature_at(seed, wx, wz), fv_moisture_at(seed, wx, wz));
}

const char *fv_biome_name(fv_biome_t b)
{
    static const char *const names[FV_BIOME_COUNT] = {
        "ocean", "beach", "grassland", "forest", "swamp", "desert", "tundra", "mountain",
    };
    return (unsigned)b < FV_BIOME_COUNT ? names[b] : "unknown";
}
