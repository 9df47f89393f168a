/* world_rules.h - the world engine's game rules (DESIGN.md section 13: Space, Time, Ecosystem,
 * Weather, Players) as pure functions over plain structs: the state of regions and cells, the
 * ecosystem and harmony step, the weather chain, movement validation, and the binary form a
 * region is saved in. No sockets, no store, no clock, no logging, no allocation: time and
 * randomness come in as arguments, so every rule is deterministic given the world seed.
 *
 * Levels: harmony, corruption, flora and fauna are all 0..100. Flora is plant cover (the prey
 * of the predator-prey model), fauna the animal population (the predator), both as a share of
 * what the best cell could hold. */
#ifndef FV_WORLD_RULES_H
#define FV_WORLD_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world3d/grid.h"

#define WORLD_LEVEL_MAX 100.0
#define WORLD_CELLS (FV_REGION_CELLS * FV_REGION_CELLS)

/* ---- randomness: a counter-based generator, so no state needs saving ---- */

/* A 64-bit hash of (seed, a, b) with good mixing (splitmix64's finaliser, chained). */
uint64_t world_rng_hash(uint64_t seed, uint64_t a, uint64_t b);
/* A uniform double in [0, 1) from the same inputs. */
double world_rng_unit(uint64_t seed, uint64_t a, uint64_t b);

/* ---- state ---- */

typedef enum world_weather {
    WORLD_WEATHER_CLEAR = 0,
    WORLD_WEATHER_RAIN,
    WORLD_WEATHER_STORM,
    WORLD_WEATHER_FOG,
    WORLD_WEATHER_AURORA,
    WORLD_WEATHER_COUNT,
} world_weather_t;

/* "clear", "rain", "storm", "fog", "aurora"; NULL for anything else. */
const char *world_weather_name(int w);

typedef struct world_cell {
    double harmony;             /* 0..100 */
    double corruption;          /* 0..100: the silence service moves it; the engine reads it */
    double flora;               /* 0..100 */
    double fauna;               /* 0..100 */
    uint64_t warded_until_ms;   /* wall clock; 0 = never warded */
    int biome;                  /* the terrain generator's biome (see world_biome.c) */
} world_cell_t;

typedef struct world_region {
    world_cell_t cells[WORLD_CELLS];   /* index cy * FV_REGION_CELLS + cx */
    world_weather_t weather;
    uint64_t weather_epoch;     /* how many times the chain has been evaluated */
} world_region_t;

typedef struct world_state {
    uint64_t seed;
    uint64_t sim_step;          /* simulation steps since the world was made */
    world_region_t regions[FV_WORLD_REGIONS];
} world_state_t;

/* The cell (cx, cy) of a region, or NULL out of range. */
world_cell_t *world_cell(world_state_t *w, int region, int cx, int cy);
const world_cell_t *world_cell_c(const world_state_t *w, int region, int cx, int cy);

/* A fresh region from the seed: harmony, corruption, flora and fauna seeded around the region's
 * character (the Silent Expanse starts low, Terra Nova high), weather clear. biome_of(seed,
 * region, cx, cy) gives each cell's biome (NULL: 0). */
typedef int (*world_biome_fn)(uint64_t seed, int region, int cx, int cy);
void world_region_init(world_region_t *r, uint64_t seed, int region, world_biome_fn biome_of);
void world_state_init(world_state_t *w, uint64_t seed, world_biome_fn biome_of);

typedef struct world_region_sums {
    double harmony, corruption, flora, fauna;   /* means over the 256 cells */
    unsigned warded;            /* cells warded at now_ms */
    unsigned corrupted;         /* cells with corruption >= 50 */
    unsigned flourishing;       /* cells with harmony >= 75 */
} world_region_sums_t;

/* Region harmony (and the rest) is the mean of its cells. */
void world_region_sums(const world_region_t *r, uint64_t now_ms, world_region_sums_t *out);
bool world_cell_warded(const world_cell_t *c, uint64_t now_ms);

/* ---- ecosystem and harmony (the 1 Hz simulation step) ---- */

typedef struct world_eco_params {
    double dt_s;                /* length of one step */
    double flora_growth;        /* r: logistic growth of flora per second */
    double graze;               /* a: flora eaten per unit fauna per second (per 100) */
    double convert;             /* b: share of eaten flora that becomes fauna */
    double fauna_death;         /* m: fauna lost per second */
    double capacity_min;        /* flora's carrying capacity at harmony 0 ... */
    double capacity_max;        /* ... and at harmony 100 */
    double corruption_blight;   /* share of capacity corruption 100 takes away */
    double harmony_rest;        /* harmony drifts towards this ... */
    double harmony_drift;       /* ... at this rate per second */
    double corruption_erosion;  /* harmony lost per second at corruption 100 (not warded) */
} world_eco_params_t;

/* The defaults documented in docs/world.md. */
void world_eco_params_default(world_eco_params_t *p);

/* The carrying capacity of flora in a cell (rises with harmony, falls with corruption). */
double world_flora_capacity(const world_eco_params_t *p, double harmony, double corruption);

/* One step of one cell: predator-prey (Lotka-Volterra with logistic prey, explicit Euler,
 * clamped to 0..100), then harmony's drift and corruption's erosion of harmony. Levels stay in
 * 0..100 and finite whatever the input (NaN becomes 0). */
void world_cell_step(world_cell_t *c, const world_eco_params_t *p, uint64_t now_ms);

/* One step of the whole world: every cell, then sim_step + 1. */
void world_state_step(world_state_t *w, const world_eco_params_t *p, uint64_t now_ms);

/* ---- weather: a Markov chain per region ---- */

/* The transition probabilities out of `from` for a region of mean harmony h and corruption c
 * (0..100): row[0..WORLD_WEATHER_COUNT) sums to 1. Aurora grows likelier with high harmony,
 * storms with corruption. */
void world_weather_row(world_weather_t from, double h, double c, double row[WORLD_WEATHER_COUNT]);
/* The next weather for a uniform u in [0, 1). */
world_weather_t world_weather_next(world_weather_t from, double h, double c, double u);
/* Evaluates a region's chain once (epoch + 1), with its randomness from (seed, region, epoch).
 * Returns whether the weather changed; *previous gets the old one. */
bool world_region_weather_step(world_region_t *r, uint64_t seed, int region, uint64_t now_ms,
                               world_weather_t *previous);

/* ---- movement validation ---- */

typedef enum world_move_status {
    WORLD_MOVE_ACCEPTED = 0,    /* where the client asked */
    WORLD_MOVE_CORRECTED,       /* moved, but not all the way, or lifted to the ground */
    WORLD_MOVE_REFUSED,         /* not moved: the answer is the last accepted place */
} world_move_status_t;

typedef struct world_place {
    int region;
    double x, y, z;             /* region-local metres */
    double yaw;                 /* radians, [0, 2 pi) */
} world_place_t;

typedef struct world_move_limits {
    double max_speed_mps;       /* 3D speed cap */
    double slack_m;             /* added to every allowance (jitter, rounding) */
    double max_interval_s;      /* time beyond this since the last move earns no more distance */
    double max_above_ground_m;  /* how high over the ground a player may be */
} world_move_limits_t;

/* Ground height at a region-local (x, z); the terrain generator's, behind a pointer. */
typedef double (*world_ground_fn)(void *data, int region, double x, double z);

typedef struct world_move_result {
    world_move_status_t status;
    world_place_t place;        /* where the player is now */
    const char *reason;         /* "ok", "non_finite", "unknown_region", "not_adjacent",
                                   "too_fast", "out_of_world", "below_ground", "too_high" */
} world_move_result_t;

/* Validates a move from `last` (accepted at last_ms) to `want` at now_ms. want.region may be
 * -1 for "the region the player is in"; a neighbouring region (sides and corners) is allowed
 * and want's coordinates are in its frame; positions past a region's edge carry over into the
 * neighbour there. NaN or infinite values, an unknown or non-adjacent region are refused; a
 * move farther than the limits allow is cut along its direction; a position past the world's
 * edge is clamped inside it; y is lifted to the ground and lowered to max_above_ground_m over
 * it. ground may be NULL (flat ground at 0). */
void world_move_validate(const world_place_t *last, uint64_t last_ms, const world_place_t *want,
                         uint64_t now_ms, const world_move_limits_t *lim, world_ground_fn ground,
                         void *ground_data, world_move_result_t *out);

/* ---- the saved form of a region ---- */

#define WORLD_REGION_CODEC_VERSION 1
/* 4-byte magic "FVWR", u16 version, u16 cell count, u8 weather, u64 epoch, then per cell four
 * f64 levels, u64 warded_until_ms, i32 biome; little-endian. */
#define WORLD_REGION_BLOB_BYTES (4 + 2 + 2 + 1 + 8 + WORLD_CELLS * (4 * 8 + 8 + 4))

/* Writes r into out (WORLD_REGION_BLOB_BYTES). */
void world_region_encode(const world_region_t *r, uint8_t out[WORLD_REGION_BLOB_BYTES]);
/* Reads a region back: 0, or FV_EINVAL for a wrong length, magic, version, a weather out of
 * range or a level that is not a number in 0..100 (r is then untouched). */
int world_region_decode(const uint8_t *in, size_t len, world_region_t *r);

#endif
