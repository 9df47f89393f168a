/* grpc.c - finalverse.procgen.v1.ProceduralGenService (proto/procgen.proto): GetTerrain, the
 * call twin of the terrain route, answered from the same cache. */
#include "services/procedural-gen/procgen.h"

#include "procgen.pb-c.h"

static void on_get_terrain(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    procgen_t *pg = data;
    const Finalverse__Procgen__V1__GetTerrainRequest *req = (const void *)in;
    fv_cell_t c = {.region = fv_region_index(req->region)};
    if (c.region < 0) {
        fv_rpc_fail(call, FV_ENOENT, "no region \"%.64s\"", req->region);
        return;
    }
    if (req->x >= FV_REGION_CELLS || req->y >= FV_REGION_CELLS) {
        fv_rpc_fail(call, FV_EINVAL, "cell (%u, %u) is not in 0..%d", req->x, req->y,
                    FV_REGION_CELLS - 1);
        return;
    }
    c.cx = (int)req->x;
    c.cy = (int)req->y;
    procgen_entry_t *e = procgen_cache_get(&pg->cache, pg->seed, &c);
    Finalverse__Procgen__V1__Terrain out = FINALVERSE__PROCGEN__V1__TERRAIN__INIT;
    out.region = (char *)fv_region_at(c.region)->id;
    out.x = req->x;
    out.y = req->y;
    out.biome = (char *)fv_biome_name(e->biome);
    out.version = FV_TERRAIN_VERSION;
    out.min = e->patch.min;
    out.max = e->patch.max;
    uint8_t wire[FV_TERRAIN_WIRE_BYTES];
    if (req->quantized) {
        out.encoded.len = fv_terrain_encode(&e->patch, wire);
        out.encoded.data = wire;
    } else {
        out.n_heights = FV_PATCH_SAMPLES;
        out.heights = e->patch.h;                /* encoded before fv_rpc_reply returns */
    }
    fv_rpc_reply(call, &out.base);
}

static const fv_rpc_method_t procgen_methods[] = {
    {"GetTerrain", &finalverse__procgen__v1__get_terrain_request__descriptor,
     &finalverse__procgen__v1__terrain__descriptor, on_get_terrain, true},
};

int procgen_serve(procgen_t *pg)
{
    return fv_module_serve(pg->ctx, "finalverse.procgen.v1.ProceduralGenService",
                           procgen_methods, sizeof(procgen_methods) / sizeof(procgen_methods[0]),
                           pg);
}
