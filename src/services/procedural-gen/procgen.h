/* procgen.h - what the procedural-gen files share: the module's settings, its state and the
 * cache of generated patches. The generation itself is src/world3d's (pure functions). */
#ifndef FV_SERVICES_PROCEDURAL_GEN_PROCGEN_H
#define FV_SERVICES_PROCEDURAL_GEN_PROCGEN_H

#include <stdint.h>

#include "core/shared.h"
#include "runtime/module.h"
#include "world3d/biome.h"
#include "world3d/terrain.h"

/* [procgen] in finalverse.toml (module.c declares the keys). */
typedef struct procgen_settings {
    uint32_t cache_patches;
} procgen_settings_t;

/* One generated cell: its patch, biome and, once asked for, its two renderings, shared with
 * the answers that are still being written. */
typedef struct procgen_entry {
    struct procgen_entry *prev, *next;   /* recency: head is the most recent */
    size_t slot;
    fv_biome_t biome;
    fv_shared_t *json;                   /* NULL until first rendered */
    fv_shared_t *bin;
    fv_terrain_patch_t patch;
} procgen_entry_t;

#define PROCGEN_SLOTS ((size_t)FV_WORLD_REGIONS * FV_REGION_CELLS * FV_REGION_CELLS)

/* Least recently used patches, at most max of them; a table by cell finds them. */
typedef struct procgen_cache {
    procgen_entry_t *by_slot[PROCGEN_SLOTS];
    procgen_entry_t *head, *tail;
    size_t count, max;
    uint64_t hits, misses;
} procgen_cache_t;

void procgen_cache_init(procgen_cache_t *pc, size_t max);
void procgen_cache_dispose(procgen_cache_t *pc);
/* The entry of cell c (valid), generated on a miss (evicting the least recently used entry
 * when full). Valid until the next procgen_cache_get: keep a rendering with fv_shared_ref. */
procgen_entry_t *procgen_cache_get(procgen_cache_t *pc, uint64_t seed, const fv_cell_t *c);

typedef struct procgen {
    fv_module_ctx_t *ctx;
    uint64_t seed;                       /* [world] seed */
    procgen_cache_t cache;
} procgen_t;

/* Adds the REST routes (http.c). 0 or a negative code. */
FV_MUST_USE int procgen_routes(procgen_t *pg, fv_router_t *r);
/* Serves finalverse.procgen.v1.ProceduralGenService (grpc.c). 0 or a negative code. */
FV_MUST_USE int procgen_serve(procgen_t *pg);

#endif
