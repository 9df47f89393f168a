/* terrain.c - heights of the world from fBm noise, a cell's 65 x 65 patch of them, the
 * bilinear ground between samples, normals, and the patch's quantized wire encoding. Biomes
 * are biome.c's; who caches patches is the caller's business.
 *
 * Every sample, whether made for a patch or for fv_terrain_height_at(), goes through
 * height_sample() with integer world coordinates and is rounded to float the same way, which
 * is what makes the two agree to the bit. */
#include "world3d/terrain.h"

#include <math.h>
#include <string.h>

#include "world3d/noise.h"

/* Salts deriving the height field's seed from the world seed (biome.c uses others). */
#define SALT_HEIGHT 1

/* Six octaves from a 1024 m wavelength down to 32 m: hills a region wide with detail a cell
 * can see. The frequency is a power of two so world coordinates scale exactly. */
static const fv_fbm_t HEIGHT_FBM = {
    .octaves = 6, .frequency = 1.0 / 1024.0, .lacunarity = 2.0, .gain = 0.5};

/* Sea level is 0. The mean sits a little above it so land outweighs sea; above e = 0.2 a
 * quadratic term raises mountains out of the hills (a square, not pow(), to stay exact). */
#define BASE_M 12.0
#define RELIEF_M 150.0
#define MOUNTAIN_FROM 0.2
#define MOUNTAIN_M 900.0

#define WORLD_LIMIT 1048576.0         /* 2^20 m: far beyond any world, well inside noise's */

static float height_sample(uint64_t hseed, int64_t wx, int64_t wz)
{
    double e = fv_fbm2(hseed, &HEIGHT_FBM, (double)wx, (double)wz);
    double h = BASE_M + RELIEF_M * e;
    if (e > MOUNTAIN_FROM) {
        double m = e - MOUNTAIN_FROM;
        h += MOUNTAIN_M * m * m;
    }
    return (float)h;
}

void fv_terrain_patch_generate(uint64_t seed, const fv_cell_t *c, fv_terrain_patch_t *out)
{
    const fv_region_info_t *r = fv_region_at(c->region);
    int64_t x0 = 0, z0 = 0;
    if (r) {
        x0 = (int64_t)r->gx * (int64_t)FV_REGION_SIZE_M + (int64_t)c->cx * (int64_t)FV_CELL_SIZE_M;
        z0 = (int64_t)r->gy * (int64_t)FV_REGION_SIZE_M + (int64_t)c->cy * (int64_t)FV_CELL_SIZE_M;
    }
    uint64_t hs = fv_noise_mix(seed, SALT_HEIGHT);
    out->cell = *c;
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < FV_PATCH_SIDE; j++) {
        for (int i = 0; i < FV_PATCH_SIDE; i++) {
            float h = height_sample(hs, x0 + i, z0 + j);
            FV_PATCH_AT(out, i, j) = h;
            lo = h < lo ? h : lo;
            hi = h > hi ? h : hi;
        }
    }
    out->min = lo;
    out->max = hi;
}

/* floor() for |v| < 2^20 by integer conversion, as noise.c does. */
static int64_t floor_i(double v)
{
    int64_t i = (int64_t)v;
    return (double)i > v ? i - 1 : i;
}

double fv_terrain_height_at(uint64_t seed, int region, double x, double z)
{
    const fv_region_info_t *r = fv_region_at(region);
    if (!r || !(x > -WORLD_LIMIT && x < WORLD_LIMIT && z > -WORLD_LIMIT && z < WORLD_LIMIT))
        return NAN;
    /* fractions from the region-local position (exact), corners in world integers, so the
     * region's offset never rounds the position */
    int64_t ix = floor_i(x), iz = floor_i(z);
    double fx = x - (double)ix, fz = z - (double)iz;
    int64_t wx = (int64_t)r->gx * (int64_t)FV_REGION_SIZE_M + ix;
    int64_t wz = (int64_t)r->gy * (int64_t)FV_REGION_SIZE_M + iz;
    uint64_t hs = fv_noise_mix(seed, SALT_HEIGHT);
    double h00 = height_sample(hs, wx, wz);
    if (fx == 0.0 && fz == 0.0)
        return h00;
    double h10 = height_sample(hs, wx + 1, wz);
    double h01 = height_sample(hs, wx, wz + 1);
    double h11 = height_sample(hs, wx + 1, wz + 1);
    double a = h00 + (h10 - h00) * fx;
    double b = h01 + (h11 - h01) * fx;
    return a + (b - a) * fz;
}

int fv_terrain_normal(uint64_t seed, int region, double x, double z, double out[3])
{
    double e = fv_terrain_height_at(seed, region, x + 1.0, z);
    double w = fv_terrain_height_at(seed, region, x - 1.0, z);
    double s = fv_terrain_height_at(seed, region, x, z + 1.0);
    double n = fv_terrain_height_at(seed, region, x, z - 1.0);
    if (isnan(e) || isnan(w) || isnan(s) || isnan(n))
        return FV_EINVAL;
    /* the surface y = h(x, z) has normal (-dh/dx, 1, -dh/dz) */
    double nx = -(e - w) * 0.5, nz = -(s - n) * 0.5;
    double len = sqrt(nx * nx + 1.0 + nz * nz);     /* sqrt is correctly rounded by IEEE-754 */
    out[0] = nx / len;
    out[1] = 1.0 / len;
    out[2] = nz / len;
    return 0;
}

/* ---- wire encoding ---- */

static const uint8_t MAGIC[4] = {'F', 'V', 'T', 'P'};

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static float get_f32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

size_t fv_terrain_encode(const fv_terrain_patch_t *p, uint8_t out[FV_TERRAIN_WIRE_BYTES])
{
    memcpy(out, MAGIC, 4);
    out[4] = FV_TERRAIN_VERSION;
    out[5] = FV_PATCH_SIDE;
    put_u16(out + 6, (uint16_t)p->cell.region);
    out[8] = (uint8_t)p->cell.cx;
    out[9] = (uint8_t)p->cell.cy;
    out[10] = out[11] = 0;
    put_f32(out + 12, p->min);
    put_f32(out + 16, p->max);
    double lo = p->min, range = (double)p->max - lo;
    double scale = range > 0.0 ? 65535.0 / range : 0.0;
    uint8_t *q = out + FV_TERRAIN_WIRE_HEADER;
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++) {
        /* round to nearest; the clamps only guard a patch whose min/max were not its own */
        double v = ((double)p->h[k] - lo) * scale + 0.5;
        uint16_t u = v <= 0.0 ? 0 : v >= 65535.0 ? 65535 : (uint16_t)v;
        put_u16(q + 2 * k, u);
    }
    return FV_TERRAIN_WIRE_BYTES;
}

int fv_terrain_decode(const uint8_t *in, size_t len, fv_terrain_patch_t *out, fv_error_t *err)
{
    if (len != FV_TERRAIN_WIRE_BYTES)
        return fv_error_set(err, FV_EINVAL, "terrain patch: %zu bytes, expected %d", len,
                            FV_TERRAIN_WIRE_BYTES);
    if (memcmp(in, MAGIC, 4) != 0)
        return fv_error_set(err, FV_EINVAL, "terrain patch: bad magic");
    if (in[4] != FV_TERRAIN_VERSION)
        return fv_error_set(err, FV_EINVAL, "terrain patch: version %u, expected %d", in[4],
                            FV_TERRAIN_VERSION);
    if (in[5] != FV_PATCH_SIDE || in[10] != 0 || in[11] != 0)
        return fv_error_set(err, FV_EINVAL, "terrain patch: side %u or reserved bytes wrong",
                            in[5]);
    fv_cell_t c = {.region = get_u16(in + 6), .cx = in[8], .cy = in[9]};
    if (!fv_cell_valid(&c))
        return fv_error_set(err, FV_EINVAL, "terrain patch: no cell (%d, %d) in region %d",
                            c.cx, c.cy, c.region);
    float lo = get_f32(in + 12), hi = get_f32(in + 16);
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return fv_error_set(err, FV_EINVAL, "terrain patch: bad height range");
    out->cell = c;
    out->min = lo;
    out->max = hi;
    double range = (double)hi - (double)lo;
    const uint8_t *q = in + FV_TERRAIN_WIRE_HEADER;
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
        out->h[k] = (float)((double)lo + (double)get_u16(q + 2 * k) * range / 65535.0);
    return 0;
}
