/* world_rpc.c - finalverse.world.v1.WorldService (proto/world.proto): Move for the WebSocket
 * gateway (and any gRPC client), and the region and position reads that REST serves too. */
#include "services/world-engine/world.h"

#include <string.h>

#include "core/alloc.h"
#include "world.pb-c.h"
#include "world3d/stream.h"

static void fill_position(Finalverse__Common__V1__Position *pos, Finalverse__Common__V1__Vec3 *at,
                          int region, double x, double y, double z, double yaw)
{
    at->x = x;
    at->y = y;
    at->z = z;
    pos->region = (char *)fv_region_at(region)->id;
    pos->at = at;
    pos->yaw = (float)yaw;
}

/* A move waiting for a newcomer's place to be read from the store. */
typedef struct move_wait {
    fv_rpc_call_t *call;                /* NULL once the caller went */
    const Finalverse__World__V1__MoveRequest *req;   /* the call's, valid while it is */
} move_wait_t;

static void move_now(world_t *w, fv_rpc_call_t *call,
                     const Finalverse__World__V1__MoveRequest *req, const world_place_t *from);

static void on_move_cancel(fv_rpc_call_t *call, void *data)
{
    ((move_wait_t *)data)->call = NULL;
}

static void on_place_known(world_t *w, const world_place_t *at, void *data)
{
    move_wait_t *mw = data;
    if (mw->call)
        move_now(w, mw->call, mw->req, at);
    fv_free(mw);
}

static void on_move(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    world_t *w = data;
    const Finalverse__World__V1__MoveRequest *req = (const void *)in;
    size_t idl = strlen(req->player_id);
    if (idl == 0 || idl >= sizeof(((world_player_t *)0)->id)) {
        fv_rpc_fail(call, FV_EINVAL, "player_id must be 1..63 characters");
        return;
    }
    if (!req->position || !req->position->at) {
        fv_rpc_fail(call, FV_EINVAL, "position with at {x, y, z} is required");
        return;
    }
    /* a newcomer to the world whose place the table may have let go: ask the store first */
    if (w->places_partial && !world_player_find(w, req->player_id) &&
        !world_places_known(w, req->player_id)) {
        move_wait_t *mw = fv_calloc(1, sizeof(*mw));
        mw->call = call;
        mw->req = req;
        if (world_store_lookup(w, req->player_id, on_place_known, mw) == 0) {
            fv_rpc_call_on_cancel(call, on_move_cancel, mw);
            return;
        }
        fv_free(mw);                    /* cannot ask: the spawn it is */
    }
    move_now(w, call, req, NULL);
}

/* from: where the store says a newcomer stood, or NULL. */
static void move_now(world_t *w, fv_rpc_call_t *call,
                     const Finalverse__World__V1__MoveRequest *req, const world_place_t *from)
{
    uint64_t now = world_mono_ms();
    world_player_t *p = world_player_get(w, req->player_id, from, now);
    if (!p) {
        fv_rpc_fail(call, FV_ERATELIMIT, "the world holds %u players: no room",
                    w->set->max_players);
        return;
    }
    world_place_t want = {.region = -1, .x = req->position->at->x, .y = req->position->at->y,
                          .z = req->position->at->z, .yaw = req->position->yaw};
    if (req->position->region[0]) {
        int r = fv_region_index(req->position->region);
        want.region = r >= 0 ? r : FV_WORLD_REGIONS;    /* refused as unknown_region */
    }
    world_move_result_t res;
    world_player_move(w, p, &want, now, &res);
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    fill_position(&pos, &at, res.place.region, res.place.x, res.place.y, res.place.z,
                  res.place.yaw);
    Finalverse__World__V1__MoveReply out = FINALVERSE__WORLD__V1__MOVE_REPLY__INIT;
    out.position = &pos;
    out.corrected = res.status == WORLD_MOVE_CORRECTED;
    out.refused = res.status == WORLD_MOVE_REFUSED;
    out.reason = (char *)res.reason;
    fv_cell_t cell;
    if (fv_cell_of(res.place.region, res.place.x, res.place.z, &cell)) {
        out.cell_x = (uint32_t)cell.cx;
        out.cell_y = (uint32_t)cell.cy;
    }
    fv_rpc_reply(call, &out.base);
}

static void region_message(const world_t *w, int region, uint64_t now_ms,
                           Finalverse__World__V1__Region *m)
{
    const fv_region_info_t *info = fv_region_at(region);
    const world_region_t *r = &w->state->regions[region];
    world_region_sums_t s;
    world_region_sums(r, now_ms, &s);
    m->id = (char *)info->id;
    m->name = (char *)info->name;
    m->harmony = s.harmony;
    m->corruption = s.corruption;
    m->weather = (char *)world_weather_name(r->weather);
    m->players = (uint32_t)w->players_in[region];
    m->flora = s.flora;
    m->fauna = s.fauna;
    m->warded_cells = s.warded;
    m->corrupted_cells = s.corrupted;
    m->flourishing_cells = s.flourishing;
}

static void on_get_region(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    world_t *w = data;
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    int r = fv_region_index(req->id);
    if (r < 0) {
        fv_rpc_fail(call, FV_ENOENT, "no region '%.64s'", req->id);
        return;
    }
    Finalverse__World__V1__Region out = FINALVERSE__WORLD__V1__REGION__INIT;
    region_message(w, r, world_wall_ms(), &out);
    fv_rpc_reply(call, &out.base);
}

static void on_list_regions(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    (void)in;
    world_t *w = data;
    Finalverse__World__V1__Region regions[FV_WORLD_REGIONS];
    Finalverse__World__V1__Region *ptrs[FV_WORLD_REGIONS];
    uint64_t now = world_wall_ms();
    for (int i = 0; i < FV_WORLD_REGIONS; i++) {
        finalverse__world__v1__region__init(&regions[i]);
        region_message(w, i, now, &regions[i]);
        ptrs[i] = &regions[i];
    }
    Finalverse__World__V1__ListRegionsReply out = FINALVERSE__WORLD__V1__LIST_REGIONS_REPLY__INIT;
    out.n_regions = FV_WORLD_REGIONS;
    out.regions = ptrs;
    out.sim_step = w->state->sim_step;
    fv_rpc_reply(call, &out.base);
}

static void on_get_position(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    world_t *w = data;
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    const world_player_t *p = world_player_find(w, req->id);
    if (!p) {
        fv_rpc_fail(call, FV_ENOENT, "player '%.64s' is not in the world", req->id);
        return;
    }
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    fill_position(&pos, &at, p->ent.region, p->ent.x, p->ent.y, p->ent.z, p->ent.yaw);
    Finalverse__World__V1__PlayerPosition out = FINALVERSE__WORLD__V1__PLAYER_POSITION__INIT;
    out.player_id = (char *)p->id;
    out.position = &pos;
    fv_cell_t cell;
    if (fv_cell_of(p->ent.region, p->ent.x, p->ent.z, &cell)) {
        out.cell_x = (uint32_t)cell.cx;
        out.cell_y = (uint32_t)cell.cy;
    }
    fv_rpc_reply(call, &out.base);
}

static void on_leave(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    if (!world_player_leave(data, req->id)) {
        fv_rpc_fail(call, FV_ENOENT, "player '%.64s' is not in the world", req->id);
        return;
    }
    Finalverse__Common__V1__Empty out = FINALVERSE__COMMON__V1__EMPTY__INIT;
    fv_rpc_reply(call, &out.base);
}

static void on_resync(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    world_player_t *p = world_player_find(data, req->id);
    if (!p) {
        fv_rpc_fail(call, FV_ENOENT, "player '%.64s' is not in the world", req->id);
        return;
    }
    fv_stream_client_resync(p->stream);
    Finalverse__Common__V1__Empty out = FINALVERSE__COMMON__V1__EMPTY__INIT;
    fv_rpc_reply(call, &out.base);
}

static const fv_rpc_method_t methods[] = {
    {"Move", &finalverse__world__v1__move_request__descriptor,
     &finalverse__world__v1__move_reply__descriptor, on_move, false},
    {"GetRegion", &finalverse__common__v1__id_request__descriptor,
     &finalverse__world__v1__region__descriptor, on_get_region, true},
    {"ListRegions", &finalverse__common__v1__empty__descriptor,
     &finalverse__world__v1__list_regions_reply__descriptor, on_list_regions, true},
    {"GetPosition", &finalverse__common__v1__id_request__descriptor,
     &finalverse__world__v1__player_position__descriptor, on_get_position, true},
    {"Leave", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__empty__descriptor, on_leave, true},
    {"Resync", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__empty__descriptor, on_resync, true},
};

int world_rpc_serve(world_t *w, fv_error_t *err)
{
    int rc = fv_module_serve(w->ctx, "finalverse.world.v1.WorldService", methods,
                             sizeof(methods) / sizeof(methods[0]), w);
    if (rc < 0)
        return fv_error_set(err, rc, "world-engine: cannot serve WorldService: %s",
                            fv_strerror(rc));
    return 0;
}
