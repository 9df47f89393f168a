/* world_http.c - the world engine's REST routes on its own port (the API gateway forwards
 * /api/world-engine/<rest> here as /<rest>): regions with their means and weather, cells one by
 * one or a region's 256, entities near a point, a player's position. Read-only: the world
 * changes through moves (calls and the WebSocket gateway) and the simulation. */
#include "services/world-engine/world.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "world3d/stream.h"

#define MAX_RADIUS_M 512.0
#define DEFAULT_RADIUS_M 64.0
#define DEFAULT_ENTITIES 100

/* The region named by the route's :id, or -1 after a 404. */
static int region_or_reply(fv_http_req_t *req)
{
    const char *id = fv_http_req_param(req, "id");
    int r = fv_region_index(id);
    if (r < 0)
        fv_http_reply_errorf(req, FV_ENOENT, "no region '%.64s'", id ? id : "");
    return r;
}

json_t *world_region_json(const world_t *w, int region, uint64_t now_ms)
{
    const fv_region_info_t *info = fv_region_at(region);
    const world_region_t *r = &w->state->regions[region];
    world_region_sums_t s;
    world_region_sums(r, now_ms, &s);
    return json_pack("{s:s,s:s,s:f,s:f,s:s,s:I,s:f,s:f}", "id", info->id, "name", info->name,
                     "harmony", s.harmony, "corruption", s.corruption, "weather",
                     world_weather_name(r->weather), "players",
                     (json_int_t)w->players_in[region], "flora", s.flora, "fauna", s.fauna);
}

json_t *world_cell_json(const world_cell_t *c, int cx, int cy, uint64_t now_ms)
{
    return json_pack("{s:i,s:i,s:s,s:f,s:f,s:f,s:f,s:b}", "x", cx, "y", cy, "biome",
                     world_biome_name(c->biome), "harmony", c->harmony, "corruption",
                     c->corruption, "flora", c->flora, "fauna", c->fauna, "warded",
                     world_cell_warded(c, now_ms));
}

static void on_regions(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    uint64_t now = world_wall_ms();
    json_t *list = json_array();
    for (int i = 0; list && i < FV_WORLD_REGIONS; i++)
        json_array_append_new(list, world_region_json(w, i, now));
    fv_http_reply_json(req, 200, json_pack("{s:o,s:I,s:I}", "regions", list, "sim_step",
                                           (json_int_t)w->state->sim_step, "saved_step",
                                           (json_int_t)w->saved_step));
}

static void on_region(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    int r = region_or_reply(req);
    if (r < 0)
        return;
    uint64_t now = world_wall_ms();
    json_t *j = world_region_json(w, r, now);
    world_region_sums_t s;
    world_region_sums(&w->state->regions[r], now, &s);
    if (j)
        json_object_set_new(j, "cells",
                            json_pack("{s:i,s:i,s:i,s:i,s:i}", "total", WORLD_CELLS, "warded",
                                      (int)s.warded, "corrupted", (int)s.corrupted,
                                      "flourishing", (int)s.flourishing, "side",
                                      FV_REGION_CELLS));
    fv_http_reply_json(req, 200, j);
}

static void on_cells(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    int r = region_or_reply(req);
    if (r < 0)
        return;
    uint64_t now = world_wall_ms();
    json_t *cells = json_array();
    for (int cy = 0; cells && cy < FV_REGION_CELLS; cy++)
        for (int cx = 0; cx < FV_REGION_CELLS; cx++)
            json_array_append_new(cells, world_cell_json(world_cell(w->state, r, cx, cy), cx, cy, now));
    fv_http_reply_json(req, 200, json_pack("{s:s,s:o}", "region", fv_region_at(r)->id, "cells",
                                           cells));
}

/* A cell coordinate: decimal digits only, 0..15. */
static bool cell_coord(const char *s, int *out)
{
    if (!s || !*s || strlen(s) > 2)
        return false;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v >= FV_REGION_CELLS)
        return false;
    *out = v;
    return true;
}

static void on_cell(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    int r = region_or_reply(req);
    if (r < 0)
        return;
    int cx, cy;
    const char *xs = fv_http_req_param(req, "x"), *ys = fv_http_req_param(req, "y");
    if (!cell_coord(xs, &cx) || !cell_coord(ys, &cy)) {
        fv_http_reply_errorf(req, FV_EINVAL,
                             "cell coordinates are integers 0..%d; got x='%.16s' y='%.16s'",
                             FV_REGION_CELLS - 1, xs ? xs : "", ys ? ys : "");
        return;
    }
    json_t *j = world_cell_json(world_cell(w->state, r, cx, cy), cx, cy, world_wall_ms());
    if (j)
        json_object_set_new(j, "region", json_string(fv_region_at(r)->id));
    fv_http_reply_json(req, 200, j);
}

/* A finite number from the query, or def when absent: false for anything else. */
static bool query_number(fv_http_req_t *req, const char *name, double def, double *out)
{
    const char *s = fv_http_req_query_param(req, name);
    if (!s) {
        *out = def;
        return true;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return false;
    *out = v;
    return true;
}

typedef struct near {
    const world_player_t *p;
    double d2;
} near_t;

static int by_distance(const void *a, const void *b)
{
    double x = ((const near_t *)a)->d2, y = ((const near_t *)b)->d2;
    return x < y ? -1 : x > y;
}

static json_t *entity_json(const world_player_t *p)
{
    return json_pack("{s:I,s:s,s:s,s:{s:f,s:f,s:f},s:f,s:{s:f,s:f,s:f}}", "id",
                     (json_int_t)p->ent.id, "kind", "player", "player_id", p->id, "position",
                     "x", p->ent.x, "y", p->ent.y, "z", p->ent.z, "yaw", (double)p->ent.yaw,
                     "velocity", "x", (double)p->ent.vx, "y", (double)p->ent.vy, "z",
                     (double)p->ent.vz);
}

/* GET /regions/{id}/entities?x=&z=&radius=&limit=: nearest first. A scan of the players: the
 * spatial index (world3d) replaces it when it lands. */
static void on_entities(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    int r = region_or_reply(req);
    if (r < 0)
        return;
    double x, z, radius, limit;
    if (!query_number(req, "x", FV_REGION_SIZE_M / 2, &x) ||
        !query_number(req, "z", FV_REGION_SIZE_M / 2, &z) ||
        !query_number(req, "radius", DEFAULT_RADIUS_M, &radius) || radius < 0 ||
        radius > MAX_RADIUS_M || !query_number(req, "limit", DEFAULT_ENTITIES, &limit) ||
        limit < 1 || limit > w->set->max_entities || limit != floor(limit)) {
        fv_http_reply_errorf(req, FV_EINVAL,
                             "x and z are finite metres, radius 0..%g, limit an integer 1..%u",
                             MAX_RADIUS_M, w->set->max_entities);
        return;
    }
    /* the spatial index visits only the cells the circle touches; across region borders too,
     * so a player just over the border counts */
    const fv_spatial_t *sp = fv_stream_spatial(w->stream);
    size_t reach = fv_spatial_near(sp, r, x, z, radius, NULL, 0);
    fv_entity_t **ents = reach ? fv_malloc(reach * sizeof(*ents)) : NULL;
    reach = fv_spatial_near(sp, r, x, z, radius, ents, reach);
    near_t *found = reach ? fv_malloc(reach * sizeof(*found)) : NULL;
    size_t n = 0;
    for (size_t i = 0; i < reach; i++) {
        const world_player_t *p = world_player_of(ents[i]);
        if (!p || p->ent.region != r)
            continue;
        double dx = p->ent.x - x, dz = p->ent.z - z;
        found[n++] = (near_t){p, dx * dx + dz * dz};
    }
    fv_free(ents);
    if (n > 1)
        qsort(found, n, sizeof(*found), by_distance);
    json_t *list = json_array();
    size_t shown = n < (size_t)limit ? n : (size_t)limit;
    for (size_t i = 0; list && i < shown; i++)
        json_array_append_new(list, entity_json(found[i].p));
    fv_free(found);
    fv_http_reply_json(req, 200, json_pack("{s:s,s:{s:f,s:f},s:f,s:o,s:b}", "region",
                                           fv_region_at(r)->id, "center", "x", x, "z", z,
                                           "radius", radius, "entities", list, "truncated",
                                           n > shown));
}

static void on_position(fv_http_req_t *req, void *data)
{
    world_t *w = data;
    const char *id = fv_http_req_param(req, "id");
    const world_player_t *p = id ? world_player_find(w, id) : NULL;
    if (!p) {
        fv_http_reply_errorf(req, FV_ENOENT, "player '%.64s' is not in the world",
                             id ? id : "");
        return;
    }
    fv_cell_t cell = {0};
    (void)fv_cell_of(p->ent.region, p->ent.x, p->ent.z, &cell);
    fv_http_reply_json(req, 200,
                       json_pack("{s:s,s:{s:s,s:{s:f,s:f,s:f},s:f},s:{s:i,s:i}}", "player_id",
                                 p->id, "position", "region", fv_region_at(p->ent.region)->id,
                                 "at", "x", p->ent.x, "y", p->ent.y, "z", p->ent.z, "yaw",
                                 (double)p->ent.yaw, "cell", "x", cell.cx, "y", cell.cy));
}

int world_http_routes(world_t *w, fv_error_t *err)
{
    static const struct {
        const char *pattern;
        fv_http_handler_cb fn;
    } routes[] = {
        {"/regions", on_regions},
        {"/regions/:id", on_region},
        {"/regions/:id/cells", on_cells},
        {"/regions/:id/cells/:x/:y", on_cell},
        {"/regions/:id/entities", on_entities},
        {"/players/:id/position", on_position},
    };
    fv_router_t *router = fv_module_router(w->ctx);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = fv_router_add_limited(router, "GET", routes[i].pattern, routes[i].fn, w, 0);
        if (rc < 0)
            return fv_error_set(err, rc, "world-engine: cannot add route %s: %s",
                                routes[i].pattern, fv_strerror(rc));
    }
    return 0;
}
