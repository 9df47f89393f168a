/* biome.c - climate fields and the biome rules of biome.h. The fields are low-frequency
 * (kilometres), so neighbouring cells mostly share a biome and borders wander across regions;
 * the crystal field is finer, so its patches are small. */
#include "world3d/biome.h"

#include <math.h>
#include <string.h>

#include "world3d/noise.h"
#include "world3d/terrain.h"

/* Salts for the world seed; terrain.c's height field uses 1. */
#define SALT_TEMPERATURE 2
#define SALT_MOISTURE 3
#define SALT_CRYSTAL 4

static const fv_fbm_t TEMPERATURE_FBM = {
    .octaves = 3, .frequency = 1.0 / 2048.0, .lacunarity = 2.0, .gain = 0.5};
static const fv_fbm_t MOISTURE_FBM = {
    .octaves = 3, .frequency = 1.0 / 1024.0, .lacunarity = 2.0, .gain = 0.5};
static const fv_fbm_t CRYSTAL_FBM = {
    .octaves = 2, .frequency = 1.0 / 256.0, .lacunarity = 2.0, .gain = 0.5};

/* fBm rarely strays beyond +-0.6; stretching it makes the thresholds above reachable. */
#define STRETCH 1.6
/* degrees of the temperature field lost per metre of height */
#define CHILL_PER_M (1.0 / 600.0)

static const char *const NAMES[FV_BIOME_COUNT] = {
    [FV_BIOME_OCEAN] = "ocean",       [FV_BIOME_BEACH] = "beach",
    [FV_BIOME_GRASSLAND] = "grassland", [FV_BIOME_FOREST] = "forest",
    [FV_BIOME_SWAMP] = "swamp",       [FV_BIOME_DESERT] = "desert",
    [FV_BIOME_SAVANNA] = "savanna",   [FV_BIOME_TAIGA] = "taiga",
    [FV_BIOME_TUNDRA] = "tundra",     [FV_BIOME_MOUNTAIN] = "mountain",
    [FV_BIOME_SNOW] = "snow",         [FV_BIOME_CRYSTAL] = "crystal",
};

void fv_climate_at(uint64_t seed, int region, double x, double z, fv_climate_t *out)
{
    memset(out, 0, sizeof(*out));
    out->height = fv_terrain_height_at(seed, region, x, z);
    const fv_region_info_t *r = fv_region_at(region);
    if (!r || isnan(out->height))
        return;
    /* the fields are smooth, so world coordinates in double (inexact past 2^53 only) do */
    double wx = r->gx * FV_REGION_SIZE_M + x, wz = r->gy * FV_REGION_SIZE_M + z;
    double t = STRETCH * fv_fbm2(fv_noise_mix(seed, SALT_TEMPERATURE), &TEMPERATURE_FBM, wx, wz);
    double above = out->height > 0.0 ? out->height : 0.0;
    out->temperature = t - above * CHILL_PER_M;
    out->moisture = STRETCH * fv_fbm2(fv_noise_mix(seed, SALT_MOISTURE), &MOISTURE_FBM, wx, wz);
    out->crystal = STRETCH * fv_fbm2(fv_noise_mix(seed, SALT_CRYSTAL), &CRYSTAL_FBM, wx, wz);
}

fv_biome_t fv_biome_of(const fv_climate_t *cl)
{
    double h = cl->height, t = cl->temperature, m = cl->moisture;
    if (!(h >= 0.0))
        return FV_BIOME_OCEAN;          /* NaN too */
    if (h < 3.0)
        return FV_BIOME_BEACH;
    if (cl->crystal > 0.5)
        return FV_BIOME_CRYSTAL;
    if (h > 90.0)
        return t < -0.45 ? FV_BIOME_SNOW : FV_BIOME_MOUNTAIN;
    if (t < -0.5)
        return FV_BIOME_TUNDRA;
    if (t < -0.25)
        return m > 0.0 ? FV_BIOME_TAIGA : FV_BIOME_TUNDRA;
    if (t > 0.3)
        return m < -0.15 ? FV_BIOME_DESERT : m < 0.15 ? FV_BIOME_SAVANNA : FV_BIOME_FOREST;
    if (m > 0.3 && h < 20.0)
        return FV_BIOME_SWAMP;
    return m > 0.0 ? FV_BIOME_FOREST : FV_BIOME_GRASSLAND;
}

fv_biome_t fv_cell_biome(uint64_t seed, const fv_cell_t *c)
{
    if (!fv_cell_valid(c))
        return FV_BIOME_OCEAN;
    double x, z;
    fv_cell_center(c, &x, &z);
    fv_climate_t cl;
    fv_climate_at(seed, c->region, x, z, &cl);
    return fv_biome_of(&cl);
}

const char *fv_biome_name(fv_biome_t b)
{
    return (unsigned)b < FV_BIOME_COUNT ? NAMES[b] : "unknown";
}

int fv_biome_from_name(const char *name)
{
    for (int b = 0; name && b < FV_BIOME_COUNT; b++) {
        if (strcmp(NAMES[b], name) == 0)
            return b;
    }
    return -1;
}
