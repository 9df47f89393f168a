/* world_state.c - the state of regions and cells: a fresh world from the seed, lookups, and the
 * region figures that are means of its cells. The steps that change it are world_ecosystem.c
 * and world_weather.c. */
#include "services/world-engine/world_rules.h"

#include <string.h>

/* Each region's starting character (by grid.h's index): mean harmony and corruption. The
 * Silent Expanse is where the Silence is strongest; Terra Nova, where players arrive, is calm. */
static const struct {
    double harmony, corruption;
} character[FV_WORLD_REGIONS] = {
    {60, 8},   /* aethelgard */
    {55, 10},  /* crystal-peaks */
    {45, 18},  /* technos-prime */
    {65, 6},   /* whispering-wilds */
    {70, 4},   /* terra-nova */
    {45, 20},  /* ember-reach */
    {50, 15},  /* mistveil-marsh */
    {50, 12},  /* sunken-choir */
    {30, 40},  /* silent-expanse */
};

static const char *const weather_names[WORLD_WEATHER_COUNT] = {"clear", "rain", "storm", "fog",
                                                               "aurora"};

const char *world_weather_name(int w)
{
    return w >= 0 && w < WORLD_WEATHER_COUNT ? weather_names[w] : NULL;
}

world_cell_t *world_cell(world_state_t *w, int region, int cx, int cy)
{
    if (region < 0 || region >= FV_WORLD_REGIONS || cx < 0 || cy < 0 || cx >= FV_REGION_CELLS ||
        cy >= FV_REGION_CELLS)
        return NULL;
    return &w->regions[region].cells[cy * FV_REGION_CELLS + cx];
}

const world_cell_t *world_cell_c(const world_state_t *w, int region, int cx, int cy)
{
    return world_cell((world_state_t *)w, region, cx, cy);
}

static double clamp_level(double v)
{
    return v < 0 ? 0 : v > WORLD_LEVEL_MAX ? WORLD_LEVEL_MAX : v;
}

void world_region_init(world_region_t *r, uint64_t seed, int region, world_biome_fn biome_of)
{
    memset(r, 0, sizeof(*r));
    int ch = region >= 0 && region < FV_WORLD_REGIONS ? region : 0;
    for (int cy = 0; cy < FV_REGION_CELLS; cy++) {
        for (int cx = 0; cx < FV_REGION_CELLS; cx++) {
            world_cell_t *c = &r->cells[cy * FV_REGION_CELLS + cx];
            uint64_t k = ((uint64_t)(unsigned)region << 16) | (uint64_t)(cy * FV_REGION_CELLS + cx);
            /* +-15 around the region's character; each level its own draw */
            c->harmony = clamp_level(character[ch].harmony +
                                     30 * (world_rng_unit(seed, k, 1) - 0.5));
            c->corruption = clamp_level(character[ch].corruption *
                                        (0.5 + world_rng_unit(seed, k, 2)));
            c->flora = clamp_level(20 + 50 * world_rng_unit(seed, k, 3));
            c->fauna = clamp_level(5 + 25 * world_rng_unit(seed, k, 4));
            c->biome = biome_of ? biome_of(seed, region, cx, cy) : 0;
        }
    }
    r->weather = WORLD_WEATHER_CLEAR;
}

void world_state_init(world_state_t *w, uint64_t seed, world_biome_fn biome_of)
{
    w->seed = seed;
    w->sim_step = 0;
    for (int i = 0; i < FV_WORLD_REGIONS; i++)
        world_region_init(&w->regions[i], seed, i, biome_of);
}

bool world_cell_warded(const world_cell_t *c, uint64_t now_ms)
{
    return c->warded_until_ms > now_ms;
}

void world_region_sums(const world_region_t *r, uint64_t now_ms, world_region_sums_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < WORLD_CELLS; i++) {
        const world_cell_t *c = &r->cells[i];
        out->harmony += c->harmony;
        out->corruption += c->corruption;
        out->flora += c->flora;
        out->fauna += c->fauna;
        out->warded += world_cell_warded(c, now_ms);
        out->corrupted += c->corruption >= 50;
        out->flourishing += c->harmony >= 75;
    }
    out->harmony /= WORLD_CELLS;
    out->corruption /= WORLD_CELLS;
    out->flora /= WORLD_CELLS;
    out->fauna /= WORLD_CELLS;
}
