/* world_weather.c - each region's weather as a Markov chain over clear, rain, storm, fog and
 * aurora (DESIGN.md section 13, Weather). A base table says how weather usually follows
 * weather; harmony scales the weight of aurora up (from nothing below harmony 60) and
 * corruption the weight of storms, then the row is normalised. The draw comes from
 * world_rng_unit(seed, region, epoch), so a region's weather history is a function of the seed
 * and its harmony and corruption at each evaluation. */
#include "services/world-engine/world_rules.h"

#include <math.h>

/* Rows: from; columns: to (clear, rain, storm, fog, aurora). Weather tends to stay. */
static const double base[WORLD_WEATHER_COUNT][WORLD_WEATHER_COUNT] = {
    {0.60, 0.18, 0.04, 0.12, 0.06},   /* clear */
    {0.30, 0.45, 0.12, 0.10, 0.03},   /* rain */
    {0.20, 0.40, 0.30, 0.08, 0.02},   /* storm */
    {0.40, 0.15, 0.05, 0.35, 0.05},   /* fog */
    {0.55, 0.05, 0.02, 0.08, 0.30},   /* aurora */
};

static double unit(double v)
{
    if (!(v > 0))
        return 0;
    return v >= 100 ? 1 : v / 100;
}

void world_weather_row(world_weather_t from, double h, double c, double row[WORLD_WEATHER_COUNT])
{
    int f = from >= 0 && from < WORLD_WEATHER_COUNT ? (int)from : 0;
    /* aurora: x0 at harmony <= 60 rising to x4 at 100; storm: x1 at no corruption to x5 */
    double hu = unit(h), cu = unit(c);
    double aurora = hu <= 0.6 ? 0 : (hu - 0.6) / 0.4 * 4.0;
    double storm = 1.0 + 4.0 * cu;
    double sum = 0;
    for (int t = 0; t < WORLD_WEATHER_COUNT; t++) {
        double wgt = base[f][t];
        if (t == WORLD_WEATHER_AURORA)
            wgt *= aurora;
        else if (t == WORLD_WEATHER_STORM)
            wgt *= storm;
        row[t] = wgt;
        sum += wgt;
    }
    for (int t = 0; t < WORLD_WEATHER_COUNT; t++)
        row[t] /= sum;              /* sum > 0: clear's weight is never scaled */
}

world_weather_t world_weather_next(world_weather_t from, double h, double c, double u)
{
    double row[WORLD_WEATHER_COUNT];
    world_weather_row(from, h, c, row);
    if (!(u >= 0))
        u = 0;
    double acc = 0;
    for (int t = 0; t < WORLD_WEATHER_COUNT - 1; t++) {
        acc += row[t];
        if (u < acc)
            return (world_weather_t)t;
    }
    /* the last with any weight (rounding may leave u just past the sum) */
    for (int t = WORLD_WEATHER_COUNT - 1; t > 0; t--)
        if (row[t] > 0)
            return (world_weather_t)t;
    return WORLD_WEATHER_CLEAR;
}

bool world_region_weather_step(world_region_t *r, uint64_t seed, int region, uint64_t now_ms,
                               world_weather_t *previous)
{
    world_region_sums_t s;
    world_region_sums(r, now_ms, &s);
    world_weather_t old = r->weather;
    double u = world_rng_unit(seed ^ 0x5745415448455231ull, (uint64_t)(unsigned)region,
                              r->weather_epoch);
    r->weather = world_weather_next(old, s.harmony, s.corruption, u);
    r->weather_epoch++;
    if (previous)
        *previous = old;
    return r->weather != old;
}
