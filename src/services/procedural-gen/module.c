/* module.c - the procedural-gen module on :3010: terrain patches, biomes and points of
 * interest of any cell, generated from the world seed on demand (src/world3d) and cached
 * (cache.c); the routes are http.c's, the calls (gRPC too) grpc.c's. Nothing is stored:
 * everything can be made again. */
#include "services/procedural-gen/procgen.h"

#include "core/alloc.h"
#include "runtime/modules.h"

static const fv_cfg_field_t procgen_settings_fields[] = {
    FV_CFG_U32("cache_patches", procgen_settings_t, cache_patches, 1, PROCGEN_SLOTS, 256,
               "generated terrain patches kept in memory (about 60 KB each with renderings)"),
};

static int procgen_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const procgen_settings_t *set = fv_module_settings(ctx);
    procgen_t *pg = fv_calloc(1, sizeof(*pg));
    pg->ctx = ctx;
    pg->seed = fv_module_config(ctx)->world.seed;
    procgen_cache_init(&pg->cache, set->cache_patches);
    fv_module_set_data(ctx, pg);
    int rc = procgen_routes(pg, fv_module_router(ctx));
    if (rc < 0)
        return fv_error_set(err, rc, "procedural-gen: cannot add routes: %s", fv_strerror(rc));
    if ((rc = procgen_serve(pg)) < 0)
        return fv_error_set(err, rc, "procedural-gen: cannot serve its calls: %s",
                            fv_strerror(rc));
    fv_module_add_gauge(ctx, "finalverse_procgen_cache_patches",
                        "Terrain patches held in the cache.", fv_gauge_read_size,
                        &pg->cache.count);
    fv_module_add_gauge(ctx, "finalverse_procgen_cache_hits_total",
                        "Terrain requests answered from the cache.", fv_gauge_read_u64,
                        &pg->cache.hits);
    fv_module_add_gauge(ctx, "finalverse_procgen_cache_misses_total",
                        "Terrain patches generated.", fv_gauge_read_u64, &pg->cache.misses);
    return 0;
}

/* No handles of its own: answers in flight hold their own references to the renderings. */
static void procgen_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    procgen_t *pg = fv_module_data(ctx);
    if (pg) {
        fv_module_set_data(ctx, NULL);
        procgen_cache_dispose(&pg->cache);
        fv_free(pg);
    }
    done(ctx);
}

const fv_module_t fv_module_procedural_gen = {
    .name = "procedural-gen",
    .start = procgen_start,
    .close = procgen_close,
    .settings_section = "procgen",
    .settings = procgen_settings_fields,
    .settings_count = sizeof(procgen_settings_fields) / sizeof(procgen_settings_fields[0]),
    .settings_size = sizeof(procgen_settings_t),
};
