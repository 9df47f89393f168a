/* terrain_bench.c - terrain patches generated per second (fv_terrain_patch_generate over the
 * default world's cells) against the cost floor: a plain loop written here that evaluates the
 * same number of octaves of 2D gradient noise for the same 65 x 65 samples, with nothing else
 * (no per-sample seed derivation, no shaping, no min/max, no function boundaries). Also the
 * rates of fv_terrain_height_at, the wire encoding and the JSON rendering, for scale.
 *   terrain_bench [SECONDS_PER_SIDE=2]   (best of 3 rounds per side) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/buf.h"
#include "world3d/terrain.h"
#include "world3d/terrain_json.h"

#define OCTAVES 6                     /* as terrain.c's height field */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the reference: gradient noise in its plainest form ---- */

static const double G[8][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1},
                               {0.7071067811865476, 0.7071067811865476},
                               {0.7071067811865476, -0.7071067811865476},
                               {-0.7071067811865476, 0.7071067811865476},
                               {-0.7071067811865476, -0.7071067811865476}};

static inline const double *ref_grad(uint64_t s, int64_t x, int64_t y)
{
    uint64_t h = s ^ ((uint64_t)x * 0x9e3779b97f4a7c15u) ^ ((uint64_t)y * 0xc2b2ae3d27d4eb4fu);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
    return G[(h ^ (h >> 31)) >> 61];
}

static inline double ref_noise(uint64_t s, double x, double y)
{
    int64_t ix = (int64_t)x - (x < (double)(int64_t)x);
    int64_t iy = (int64_t)y - (y < (double)(int64_t)y);
    double fx = x - (double)ix, fy = y - (double)iy;
    const double *a = ref_grad(s, ix, iy), *b = ref_grad(s, ix + 1, iy);
    const double *c = ref_grad(s, ix, iy + 1), *d = ref_grad(s, ix + 1, iy + 1);
    double na = a[0] * fx + a[1] * fy, nb = b[0] * (fx - 1) + b[1] * fy;
    double nc = c[0] * fx + c[1] * (fy - 1), nd = d[0] * (fx - 1) + d[1] * (fy - 1);
    double u = fx * fx * fx * (fx * (fx * 6 - 15) + 10);
    double v = fy * fy * fy * (fy * (fy * 6 - 15) + 10);
    double p = na + (nb - na) * u, q = nc + (nd - nc) * u;
    return p + (q - p) * v;
}

static float ref_out[FV_PATCH_SAMPLES];

/* One patch's worth of samples at world offset (x0, z0). */
static void ref_patch(int64_t x0, int64_t z0)
{
    for (int j = 0; j < FV_PATCH_SIDE; j++) {
        for (int i = 0; i < FV_PATCH_SIDE; i++) {
            double x = (double)(x0 + i), y = (double)(z0 + j), f = 1.0 / 1024, amp = 1, sum = 0;
            for (int k = 0; k < OCTAVES; k++) {
                sum += amp * ref_noise(0x1234u + (uint64_t)k, x * f, y * f);
                f *= 2;
                amp *= 0.5;
            }
            ref_out[j * FV_PATCH_SIDE + i] = (float)sum;
        }
    }
}

/* ---- the sides ---- */

static fv_terrain_patch_t patch;
static volatile double sink;

typedef enum { SIDE_REF, SIDE_PATCH, SIDE_HEIGHT_AT, SIDE_ENCODE, SIDE_JSON } side_t;

/* Runs a side for about secs; returns operations per second. */
static double run(side_t side, double secs)
{
    uint64_t ops = 0;
    uint8_t wire[FV_TERRAIN_WIRE_BYTES];
    fv_buf_t json;
    fv_buf_init(&json, 0);
    double t0 = now_s(), t;
    unsigned cell = 0;
    do {
        for (int rep = 0; rep < 16; rep++, cell++) {
            fv_cell_t c = {(int)(cell / 256 % FV_WORLD_REGIONS), (int)(cell % 16),
                           (int)(cell / 16 % 16)};
            switch (side) {
            case SIDE_REF:
                ref_patch((int64_t)c.cx * 64 + 1024 * (c.region % 3),
                          (int64_t)c.cy * 64 + 1024 * (c.region / 3));
                sink = ref_out[cell % FV_PATCH_SAMPLES];
                break;
            case SIDE_PATCH:
                fv_terrain_patch_generate(42, &c, &patch);
                sink = patch.h[cell % FV_PATCH_SAMPLES];
                break;
            case SIDE_HEIGHT_AT:
                for (int k = 0; k < 256; k++)
                    sink = fv_terrain_height_at(42, c.region, c.cx * 64 + k * 0.25,
                                                c.cy * 64 + k * 0.125);
                break;
            case SIDE_ENCODE:
                sink = fv_terrain_encode(&patch, wire);
                break;
            case SIDE_JSON:
                fv_buf_reset(&json);
                if (fv_terrain_json(&patch, FV_BIOME_FOREST, &json) < 0)
                    abort();
                sink = (double)json.len;
                break;
            }
            ops += side == SIDE_HEIGHT_AT ? 256 : 1;
        }
        t = now_s() - t0;
    } while (t < secs);
    fv_buf_dispose(&json);
    return (double)ops / t;
}

static double best_of(side_t side, double secs, int rounds)
{
    double best = 0;
    for (int r = 0; r < rounds; r++) {
        double v = run(side, secs);
        best = v > best ? v : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (!(secs > 0))
        secs = 2.0;
    fv_cell_t c0 = {4, 3, 5};
    fv_terrain_patch_generate(42, &c0, &patch);
    /* alternate the two compared sides, so drift on a shared machine hits both */
    double ref = 0, ours = 0;
    for (int r = 0; r < 3; r++) {
        double a = run(SIDE_REF, secs), b = run(SIDE_PATCH, secs);
        printf("  round %d: reference %.0f patches/s, fv_terrain_patch_generate %.0f patches/s\n",
               r + 1, a, b);
        ref = a > ref ? a : ref;
        ours = b > ours ? b : ours;
    }
    printf("terrain, %d octaves, 65 x 65 samples per patch, one core, best of 3 rounds of %.1f s\n",
           OCTAVES, secs);
    printf("reference loop           %10.0f patches/s (%.0f samples/s)\n", ref,
           ref * FV_PATCH_SAMPLES);
    printf("fv_terrain_patch_generate%10.0f patches/s (%.0f samples/s)\n", ours,
           ours * FV_PATCH_SAMPLES);
    printf("ratio generate/reference: %.2f x (target >= 0.8)\n", ours / ref);
    printf("fv_terrain_height_at     %10.0f calls/s\n", best_of(SIDE_HEIGHT_AT, secs / 2, 2));
    printf("fv_terrain_encode        %10.0f patches/s\n", best_of(SIDE_ENCODE, secs / 2, 2));
    printf("fv_terrain_json          %10.0f patches/s\n", best_of(SIDE_JSON, secs / 2, 2));
    return 0;
}
