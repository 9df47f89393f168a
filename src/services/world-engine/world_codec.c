/* world_codec.c - the saved form of a region (what world_store.c writes into one row): a fixed
 * little-endian layout with a magic and a version, so a row from another build or a damaged
 * one is refused as a whole instead of half-loaded. */
#include "services/world-engine/world_rules.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t *put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return put_u64(p, v);
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = get_u64(p);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

void world_region_encode(const world_region_t *r, uint8_t out[WORLD_REGION_BLOB_BYTES])
{
    uint8_t *p = out;
    memcpy(p, "FVWR", 4);
    p += 4;
    *p++ = WORLD_REGION_CODEC_VERSION & 0xff;
    *p++ = WORLD_REGION_CODEC_VERSION >> 8;
    *p++ = WORLD_CELLS & 0xff;
    *p++ = WORLD_CELLS >> 8;
    *p++ = (uint8_t)r->weather;
    p = put_u64(p, r->weather_epoch);
    for (int i = 0; i < WORLD_CELLS; i++) {
        const world_cell_t *c = &r->cells[i];
        p = put_f64(p, c->harmony);
        p = put_f64(p, c->corruption);
        p = put_f64(p, c->flora);
        p = put_f64(p, c->fauna);
        p = put_u64(p, c->warded_until_ms);
        uint32_t b = (uint32_t)c->biome;
        for (int k = 0; k < 4; k++)
            *p++ = (uint8_t)(b >> (8 * k));
    }
}

static bool level_ok(double v)
{
    return v >= 0 && v <= WORLD_LEVEL_MAX;      /* false for NaN */
}

int world_region_decode(const uint8_t *in, size_t len, world_region_t *r)
{
    if (!in || len != WORLD_REGION_BLOB_BYTES || memcmp(in, "FVWR", 4) != 0)
        return FV_EINVAL;
    const uint8_t *p = in + 4;
    if ((p[0] | p[1] << 8) != WORLD_REGION_CODEC_VERSION || (p[2] | p[3] << 8) != WORLD_CELLS ||
        p[4] >= WORLD_WEATHER_COUNT)
        return FV_EINVAL;
    /* checked whole before anything is written, so a bad row leaves r as it was */
    const uint8_t *cells = p + 5 + 8;
    for (int i = 0; i < WORLD_CELLS; i++) {
        const uint8_t *c = cells + (size_t)i * (4 * 8 + 8 + 4);
        for (int k = 0; k < 4; k++)
            if (!level_ok(get_f64(c + 8 * k)))
                return FV_EINVAL;
    }
    r->weather = (world_weather_t)p[4];
    r->weather_epoch = get_u64(p + 5);
    for (int i = 0; i < WORLD_CELLS; i++) {
        const uint8_t *c = cells + (size_t)i * (4 * 8 + 8 + 4);
        world_cell_t *cell = &r->cells[i];
        cell->harmony = get_f64(c);
        cell->corruption = get_f64(c + 8);
        cell->flora = get_f64(c + 16);
        cell->fauna = get_f64(c + 24);
        cell->warded_until_ms = get_u64(c + 32);
        uint32_t b = (uint32_t)c[40] | (uint32_t)c[41] << 8 | (uint32_t)c[42] << 16 |
                     (uint32_t)c[43] << 24;
        cell->biome = (int)b;
    }
    return 0;
}
