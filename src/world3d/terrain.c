/* terrain.c - heights from fractal noise over the whole world's plane, so patches meet without
 * seams wherever they are cut. */
#include "world3d/terrain.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "world3d/noise.h"

/* The shape of the land: broad hills of a few kilometres with detail down to a few metres,
 * lifted so that most of the Verse is above water, with seas and peaks of 100 m and more. */
static const fv_fbm_t HEIGHT_FBM = {
    .octaves = 7, .frequency = 1.0 / 768.0, .lacunarity = 2.0, .gain = 0.5,
};
#define HEIGHT_BASE 20.0
#define HEIGHT_RANGE 220.0
#define SEED_HEIGHT 0x68656967687473ull   /* "heights" */

float fv_terrain_sample(uint64_t seed, int64_t wx, int64_t wz)
{
    double f = fv_fbm2(seed ^ SEED_HEIGHT, &HEIGHT_FBM, (double)wx, (double)wz);
    return (float)(HEIGHT_BASE + HEIGHT_RANGE * f);
}

static void cell_origin(const fv_cell_t *c, int64_t *wx, int64_t *wz)
{
    const fv_region_info_t *r = fv_region_at(c->region);
    int gx = r ? r->gx : 0, gy = r ? r->gy : 0;
    *wx = (int64_t)gx * (int64_t)FV_REGION_SIZE_M + (int64_t)c->cx * (int64_t)FV_CELL_SIZE_M;
    *wz = (int64_t)gy * (int64_t)FV_REGION_SIZE_M + (int64_t)c->cy * (int64_t)FV_CELL_SIZE_M;
}

void fv_terrain_patch_generate(uint64_t seed, const fv_cell_t *c, fv_terrain_patch_t *out)
{
    int64_t ox, oz;
    cell_origin(c, &ox, &oz);
    out->cell = *c;
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < FV_PATCH_SIDE; j++)
        for (int i = 0; i < FV_PATCH_SIDE; i++) {
            float h = fv_terrain_sample(seed, ox + i, oz + j);
            out->h[j * FV_PATCH_SIDE + i] = h;
            if (h < lo)
                lo = h;
            if (h > hi)
                hi = h;
        }
    out->min = lo;
    out->max = hi;
}

double fv_terrain_height_at(uint64_t seed, int region, double x, double z)
{
    const fv_region_info_t *r = fv_region_at(region);
    if (!r || !isfinite(x) || !isfinite(z) || fabs(x) > 1e9 || fabs(z) > 1e9)
        return NAN;
    double wx = (double)r->gx * FV_REGION_SIZE_M + x;
    double wz = (double)r->gy * FV_REGION_SIZE_M + z;
    double x0 = floor(wx), z0 = floor(wz);
    double fx = wx - x0, fz = wz - z0;
    int64_t ix = (int64_t)x0, iz = (int64_t)z0;
    double h00 = fv_terrain_sample(seed, ix, iz);
    if (fx == 0.0 && fz == 0.0)
        return h00;     /* exactly the patch's sample */
    double h10 = fv_terrain_sample(seed, ix + 1, iz);
    double h01 = fv_terrain_sample(seed, ix, iz + 1);
    double h11 = fv_terrain_sample(seed, ix + 1, iz + 1);
    double a = h00 + fx * (h10 - h00), b = h01 + fx * (h11 - h01);
    return a + fz * (b - a);
}

void fv_terrain_normal(const fv_terrain_patch_t *p, int i, int j, float out[3])
{
    int il = i > 0 ? i - 1 : i, ir = i < FV_PATCH_SIDE - 1 ? i + 1 : i;
    int jt = j > 0 ? j - 1 : j, jb = j < FV_PATCH_SIDE - 1 ? j + 1 : j;
    double dx = (double)(p->h[j * FV_PATCH_SIDE + ir] - p->h[j * FV_PATCH_SIDE + il]) / (ir - il);
    double dz = (double)(p->h[jb * FV_PATCH_SIDE + i] - p->h[jt * FV_PATCH_SIDE + i]) / (jb - jt);
    double nx = -dx, ny = 1.0, nz = -dz;
    double len = sqrt(nx * nx + ny * ny + nz * nz);
    out[0] = (float)(nx / len);
    out[1] = (float)(ny / len);
    out[2] = (float)(nz / len);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(u >> (8 * k));
}

static float get_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void fv_terrain_encode(const fv_terrain_patch_t *p, uint8_t out[FV_TERRAIN_WIRE_BYTES])
{
    memcpy(out, "FVT1", 4);
    out[4] = (uint8_t)p->cell.region;
    out[5] = (uint8_t)p->cell.cx;
    out[6] = (uint8_t)p->cell.cy;
    out[7] = 0;
    put_f32(out + 8, p->min);
    put_f32(out + 12, p->max);
    double range = (double)p->max - (double)p->min;
    uint8_t *q = out + FV_TERRAIN_WIRE_HEADER;
    for (int k = 0; k < FV_PATCH_SAMPLES; k++) {
        double t = range > 0 ? ((double)p->h[k] - (double)p->min) / range : 0.0;
        long v = lround(t * 65535.0);
        uint16_t u = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
        q[2 * k] = (uint8_t)u;
        q[2 * k + 1] = (uint8_t)(u >> 8);
    }
}

int fv_terrain_decode(const uint8_t *data, size_t len, fv_terrain_patch_t *out)
{
    if (len != FV_TERRAIN_WIRE_BYTES || memcmp(data, "FVT1", 4) != 0 || data[7] != 0)
        return FV_EINVAL;
    fv_cell_t c = {.region = data[4], .cx = data[5], .cy = data[6]};
    if (!fv_cell_valid(&c))
        return FV_EINVAL;
    float lo = get_f32(data + 8), hi = get_f32(data + 12);
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return FV_EINVAL;
    out->cell = c;
    out->min = lo;
    out->max = hi;
    double range = (double)hi - (double)lo;
    const uint8_t *q = data + FV_TERRAIN_WIRE_HEADER;
    for (int k = 0; k < FV_PATCH_SAMPLES; k++) {
        unsigned u = (unsigned)q[2 * k] | (unsigned)q[2 * k + 1] << 8;
        out->h[k] = (float)((double)lo + range * (double)u / 65535.0);
    }
    return 0;
}
