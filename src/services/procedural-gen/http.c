/* http.c - the procedural-gen REST routes (served without the /api/procedural-gen prefix the
 * API gateway strips):
 *   GET /regions/:id/cells/:x/:y/terrain[?format=json|bin]   the cell's patch (docs/world.md)
 *   GET /regions/:id/cells/:x/:y                             biome and heights summary
 *   GET /regions/:id/pois                                    points of interest
 * Terrain answers carry a strong ETag (seed, cell, format and FV_TERRAIN_VERSION: the bytes are
 * a pure function of those) and honour If-None-Match with 304. Renderings are kept with the
 * cached patch and shared by reference with every answer that sends them. */
#include "services/procedural-gen/procgen.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http_server.h"
#include "net/router.h"
#include "world3d/noise.h"
#include "world3d/poi.h"
#include "world3d/terrain_json.h"

/* Past any patch's JSON (4225 numbers of at most 15 characters and the head). */
#define JSON_MAX_BYTES (80u * FV_PATCH_SAMPLES)

enum { FORMAT_JSON = 1, FORMAT_BIN = 2 };

static int region_or_reply(fv_http_req_t *req, int *region)
{
    const char *id = fv_http_req_param(req, "id");
    *region = fv_region_index(id);
    if (*region < 0) {
        fv_http_reply_errorf(req, FV_ENOENT, "no region \"%.64s\"", id ? id : "");
        return FV_ENOENT;
    }
    return 0;
}

/* A cell coordinate: decimal digits only, 0..15. */
static int coord_or_reply(fv_http_req_t *req, const char *name, int *out)
{
    const char *s = fv_http_req_param(req, name);
    int v = 0;
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= 2;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (s[i] - '0');
    }
    if (!ok || v >= FV_REGION_CELLS) {
        fv_http_reply_errorf(req, FV_EINVAL, "cell %s \"%.32s\" is not an integer in 0..%d", name,
                             s ? s : "", FV_REGION_CELLS - 1);
        return FV_EINVAL;
    }
    *out = v;
    return 0;
}

static int cell_or_reply(fv_http_req_t *req, fv_cell_t *c)
{
    int rc;
    if ((rc = region_or_reply(req, &c->region)) < 0 || (rc = coord_or_reply(req, "x", &c->cx)) < 0 ||
        (rc = coord_or_reply(req, "y", &c->cy)) < 0)
        return rc;
    return 0;
}

static void etag_of(const procgen_t *pg, const fv_cell_t *c, int format, char *out, size_t len)
{
    uint64_t h = fv_noise_mix(pg->seed, FV_TERRAIN_VERSION);
    h = fv_noise_mix(h, (uint64_t)c->region);
    h = fv_noise_mix(h, (uint64_t)(c->cy * FV_REGION_CELLS + c->cx));
    h = fv_noise_mix(h, (uint64_t)format);
    snprintf(out, len, "\"t%d-%016" PRIx64 "-%s\"", FV_TERRAIN_VERSION, h,
             format == FORMAT_BIN ? "bin" : "json");
}

/* If-None-Match: a comma-separated list of entity tags, or "*". It uses the weak comparison
 * (RFC 9110 sec. 13.1.2), so a W/ prefix is ignored. */
static bool none_match_hits(fv_slice_t v, const char *etag)
{
    size_t pos = 0;
    fv_slice_t t;
    while (fv_slice_list_next(v, &pos, &t)) {
        if (t.len == 1 && t.ptr[0] == '*')
            return true;
        if (t.len > 2 && t.ptr[0] == 'W' && t.ptr[1] == '/')
            t = fv_slice(t.ptr + 2, t.len - 2);
        if (fv_slice_eq_cstr(t, etag))
            return true;
    }
    return false;
}

static fv_shared_t *render_json(const procgen_entry_t *e)
{
    fv_buf_t b;
    fv_buf_init(&b, JSON_MAX_BYTES);
    if (fv_terrain_json(&e->patch, e->biome, &b) < 0) {
        fv_buf_dispose(&b);
        return NULL;
    }
    size_t len;
    char *body = fv_buf_steal(&b, &len);
    return fv_shared_adopt(body, len);
}

static fv_shared_t *render_bin(const procgen_entry_t *e)
{
    uint8_t wire[FV_TERRAIN_WIRE_BYTES];
    size_t len = fv_terrain_encode(&e->patch, wire);
    return fv_shared_new(wire, len);
}

static void on_terrain(fv_http_req_t *req, void *data)
{
    procgen_t *pg = data;
    fv_cell_t c;
    if (cell_or_reply(req, &c) < 0)
        return;
    const char *fmt = fv_http_req_query_param(req, "format");
    int format = FORMAT_JSON;
    if (fmt && strcmp(fmt, "bin") == 0) {
        format = FORMAT_BIN;
    } else if (fmt && strcmp(fmt, "json") != 0) {
        fv_http_reply_errorf(req, FV_EINVAL, "format \"%.32s\" is not json or bin", fmt);
        return;
    }
    char etag[64];
    etag_of(pg, &c, format, etag, sizeof(etag));
    fv_http_resp_header(req, "ETag", etag);
    fv_http_resp_header(req, "Cache-Control", "no-cache");   /* revalidate: 304 is cheap */
    fv_slice_t inm = fv_http_req_header(req, "If-None-Match");
    if (inm.ptr && none_match_hits(inm, etag)) {
        fv_http_reply(req, 304, NULL, NULL, 0);
        return;
    }
    procgen_entry_t *e = procgen_cache_get(&pg->cache, pg->seed, &c);
    fv_shared_t **slot = format == FORMAT_BIN ? &e->bin : &e->json;
    if (!*slot)
        *slot = format == FORMAT_BIN ? render_bin(e) : render_json(e);
    if (!*slot) {
        fv_http_reply_errorf(req, FV_ENOMEM, "cannot render the terrain of cell (%d, %d)", c.cx,
                             c.cy);
        return;
    }
    fv_shared_ref(*slot);                 /* the answer's reference; the cache keeps its own */
    fv_http_reply_shared(req, 200,
                         format == FORMAT_BIN ? "application/octet-stream" : "application/json",
                         *slot);
}

static void on_cell(fv_http_req_t *req, void *data)
{
    procgen_t *pg = data;
    fv_cell_t c;
    if (cell_or_reply(req, &c) < 0)
        return;
    procgen_entry_t *e = procgen_cache_get(&pg->cache, pg->seed, &c);
    double cx, cz;
    fv_cell_center(&c, &cx, &cz);
    json_t *j = json_pack("{s:s, s:{s:i, s:i}, s:s, s:{s:f, s:f}, s:f, s:f, s:f}", "region",
                          fv_region_at(c.region)->id, "cell", "x", c.cx, "y", c.cy, "biome",
                          fv_biome_name(e->biome), "center", "x", cx, "z", cz, "height",
                          fv_terrain_height_at(pg->seed, c.region, cx, cz), "min",
                          (double)e->patch.min, "max", (double)e->patch.max);
    fv_http_reply_json(req, 200, j);
}

static void on_pois(fv_http_req_t *req, void *data)
{
    procgen_t *pg = data;
    int region;
    if (region_or_reply(req, &region) < 0)
        return;
    fv_poi_t pois[FV_POI_MAX];
    size_t n = fv_region_pois(pg->seed, region, pois);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const fv_poi_t *p = &pois[i];
        json_array_append_new(arr, json_pack("{s:I, s:s, s:f, s:f, s:f, s:{s:i, s:i}, s:s}",
                                             "id", (json_int_t)p->id, "kind",
                                             fv_poi_kind_name(p->kind), "x", p->x, "y", p->y,
                                             "z", p->z, "cell", "x", p->cell.cx, "y",
                                             p->cell.cy, "biome", fv_biome_name(p->biome)));
    }
    fv_http_reply_json(req, 200, json_pack("{s:s, s:f, s:o}", "region",
                                           fv_region_at(region)->id, "min_distance",
                                           FV_POI_MIN_DIST_M, "pois", arr));
}

int procgen_routes(procgen_t *pg, fv_router_t *r)
{
    int rc;
    if ((rc = fv_router_add_limited(r, "GET", "/regions/:id/cells/:x/:y/terrain", on_terrain, pg,
                                    0)) < 0 ||
        (rc = fv_router_add_limited(r, "GET", "/regions/:id/cells/:x/:y", on_cell, pg, 0)) < 0 ||
        (rc = fv_router_add_limited(r, "GET", "/regions/:id/pois", on_pois, pg, 0)) < 0)
        return rc;
    return 0;
}
