/* poi.c - Bridson's Poisson-disk sampling over one region, with a PRNG written here
 * (xoshiro256** seeded through splitmix64) so the sequence is ours on every machine.
 *
 * Two changes from the textbook, both for determinism without libm: candidates around an
 * active point are drawn uniformly in the square of side 4r and kept only when they fall in
 * the annulus r..2r (no sin/cos for an angle; a draw outside counts as one of the k tries), and
 * the background grid's cells are r/2 wide (not r/sqrt(2)), which still holds at most one point
 * per cell and needs a 5 x 5 neighbourhood check. */
#include "world3d/poi.h"

#include <string.h>

#include "world3d/noise.h"
#include "world3d/terrain.h"

#define SALT_POI 16                   /* + region: each region its own sequence */
#define TRIES 30                      /* Bridson's k */
#define GRID_CELL (FV_POI_MIN_DIST_M / 2.0)
#define GRID_SIDE 16                  /* 1024 / 64 */
#define QUANTUM 8.0                   /* positions are multiples of 1/8 m */

typedef struct rng {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int k = 0; k < 4; k++)
        r->s[k] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1): the top 53 bits, exact. */
static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53;
}

/* Uniform in 0..n-1 (n small: the bias of a modulo of 64 bits is negligible). */
static uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

/* floor(v * QUANTUM) / QUANTUM for 0 <= v < 2^20, by integer conversion. */
static double quantize(double v)
{
    return (double)(int64_t)(v * QUANTUM) / QUANTUM;
}

static const char *const KIND_NAMES[FV_POI_KIND_COUNT] = {
    [FV_POI_SHRINE] = "shrine",         [FV_POI_RUIN] = "ruin",
    [FV_POI_GROVE] = "grove",           [FV_POI_CAMP] = "camp",
    [FV_POI_CAVE] = "cave",             [FV_POI_ECHO_STONE] = "echo_stone",
    [FV_POI_CRYSTAL_SPIRE] = "crystal_spire", [FV_POI_WRECK] = "wreck",
};

/* What a biome offers; the PRNG picks among the first n. */
static fv_poi_kind_t pick_kind(fv_biome_t b, rng_t *r)
{
    static const fv_poi_kind_t any[] = {FV_POI_SHRINE, FV_POI_RUIN, FV_POI_CAMP,
                                        FV_POI_ECHO_STONE};
    static const fv_poi_kind_t wooded[] = {FV_POI_GROVE, FV_POI_RUIN, FV_POI_SHRINE};
    static const fv_poi_kind_t dry[] = {FV_POI_RUIN, FV_POI_CAMP};
    static const fv_poi_kind_t high[] = {FV_POI_CAVE, FV_POI_SHRINE, FV_POI_ECHO_STONE};
    switch (b) {
    case FV_BIOME_OCEAN:
        return FV_POI_WRECK;
    case FV_BIOME_CRYSTAL:
        return FV_POI_CRYSTAL_SPIRE;
    case FV_BIOME_FOREST:
    case FV_BIOME_SWAMP:
    case FV_BIOME_TAIGA:
        return wooded[rng_below(r, 3)];
    case FV_BIOME_DESERT:
    case FV_BIOME_SAVANNA:
        return dry[rng_below(r, 2)];
    case FV_BIOME_MOUNTAIN:
    case FV_BIOME_SNOW:
    case FV_BIOME_TUNDRA:
        return high[rng_below(r, 3)];
    default:
        return any[rng_below(r, 4)];
    }
}

/* Whether (x, z) keeps the minimum distance to every point in the grid around it. */
static bool far_enough(const int16_t grid[GRID_SIDE][GRID_SIDE], const fv_poi_t *pts, double x,
                       double z)
{
    int gx = (int)(x / GRID_CELL), gz = (int)(z / GRID_CELL);
    for (int j = gz - 2; j <= gz + 2; j++) {
        for (int i = gx - 2; i <= gx + 2; i++) {
            if (i < 0 || j < 0 || i >= GRID_SIDE || j >= GRID_SIDE || grid[j][i] < 0)
                continue;
            const fv_poi_t *p = &pts[grid[j][i]];
            double dx = p->x - x, dz = p->z - z;
            if (dx * dx + dz * dz < FV_POI_MIN_DIST_M * FV_POI_MIN_DIST_M)
                return false;
        }
    }
    return true;
}

static void place(uint64_t seed, int region, int16_t grid[GRID_SIDE][GRID_SIDE], fv_poi_t *pts,
                  size_t n, double x, double z)
{
    fv_poi_t *p = &pts[n];
    memset(p, 0, sizeof(*p));
    p->id = (uint32_t)n;
    p->x = x;
    p->z = z;
    grid[(int)(z / GRID_CELL)][(int)(x / GRID_CELL)] = (int16_t)n;
    (void)fv_cell_of(region, x, z, &p->cell);      /* 0 <= x, z < 1024: always a cell */
    p->biome = fv_cell_biome(seed, &p->cell);
    p->y = fv_terrain_height_at(seed, region, x, z);
}

size_t fv_region_pois(uint64_t seed, int region, fv_poi_t out[FV_POI_MAX])
{
    if (!fv_region_at(region))
        return 0;
    rng_t rng;
    rng_seed(&rng, fv_noise_mix(seed, SALT_POI + (uint64_t)region));
    int16_t grid[GRID_SIDE][GRID_SIDE];
    memset(grid, 0xff, sizeof(grid));               /* -1: empty */
    uint8_t active[FV_POI_MAX];
    size_t n = 0, n_active = 0;

    place(seed, region, grid, out, n, quantize(rng_unit(&rng) * FV_REGION_SIZE_M),
          quantize(rng_unit(&rng) * FV_REGION_SIZE_M));
    active[n_active++] = (uint8_t)n++;
    const double r = FV_POI_MIN_DIST_M;
    while (n_active > 0 && n < FV_POI_MAX) {
        uint32_t a = rng_below(&rng, (uint32_t)n_active);
        const fv_poi_t *from = &out[active[a]];
        bool placed = false;
        for (int t = 0; t < TRIES && !placed; t++) {
            double dx = (rng_unit(&rng) * 4.0 - 2.0) * r;
            double dz = (rng_unit(&rng) * 4.0 - 2.0) * r;
            double d2 = dx * dx + dz * dz;
            if (d2 < r * r || d2 >= 4.0 * r * r)
                continue;
            double x = from->x + dx, z = from->z + dz;
            if (!(x >= 0.0 && x < FV_REGION_SIZE_M && z >= 0.0 && z < FV_REGION_SIZE_M))
                continue;
            x = quantize(x);
            z = quantize(z);
            if (!far_enough(grid, out, x, z))
                continue;
            place(seed, region, grid, out, n, x, z);
            active[n_active++] = (uint8_t)n++;
            placed = true;
        }
        if (!placed)
            active[a] = active[--n_active];         /* order is the PRNG's, so this is too */
    }
    /* kinds last, in id order, from their own draws: adding a kind never moves a point */
    for (size_t k = 0; k < n; k++)
        out[k].kind = pick_kind(out[k].biome, &rng);
    return n;
}

const char *fv_poi_kind_name(fv_poi_kind_t k)
{
    return (unsigned)k < FV_POI_KIND_COUNT ? KIND_NAMES[k] : "unknown";
}
