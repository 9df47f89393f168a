/* world_stream.c - the world engine's side of spatial streaming (world3d/stream.h): every
 * player in the world has a view that follows it, and what the view owes it goes out on the
 * bus channel "player.<id>", which the WebSocket gateway forwards to that player's session as
 * events cell_enter, cell_leave and entities_delta (docs/world.md). The stream's spatial index
 * is also the world's answer to "who is near".
 *
 * cell_enter carries the cell's terrain (the bytes of GET .../terrain?format=bin, base64) and
 * its state (as GET .../cells/{x}/{y}). A patch is encoded once and kept for the life of the
 * process (every cell of the default world is 26 MB at most); encoding is bounded per tick
 * (terrain_per_tick), and a cell whose patch waits is entered on a later tick, so a player
 * arriving never stalls the loop.
 *
 * Time dilation: a movement tick that takes more than half its interval slows the simulation
 * by the factor it overran (down to 0.1) and tells clients in every entities_delta. */
#include "services/world-engine/world.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "bus/bus.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "world3d/stream.h"
#include "world3d/terrain.h"

#define TERRAIN_B64_BYTES \
    sodium_base64_ENCODED_LEN(FV_TERRAIN_WIRE_BYTES, sodium_base64_VARIANT_ORIGINAL)

world_player_t *world_player_of(fv_entity_t *e)
{
    if (!e || e->kind != FV_ENTITY_PLAYER)
        return NULL;
    return (world_player_t *)(void *)((char *)e - offsetof(world_player_t, ent));
}

static void on_send(void *data, fv_stream_client_t *c, const char *type, const char *json,
                    size_t len)
{
    world_t *w = data;
    const world_player_t *p = fv_stream_client_data(c);
    char channel[96];
    snprintf(channel, sizeof(channel), "player.%s", p->id);
    int rc = fv_bus_publish(fv_module_bus(w->ctx), channel, type, json, len, NULL);
    if (rc < 0) {
        w->events_refused++;
        fv_log_debug("world-engine", "%s for %s refused (%zu bytes): %s", type, p->id, len,
                     fv_strerror(rc));
        return;
    }
    w->events_published++;
}

static int entity_extra(void *data, const fv_entity_t *e, fv_buf_t *out)
{
    (void)data;
    const world_player_t *p = world_player_of((fv_entity_t *)e);
    if (!p)
        return 0;
    /* ids are the gateway's (guest-<hex>, or an account's): JSON-safe, but escape anyway */
    json_t *s = json_string(p->id);
    char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    if (!text)
        return FV_ENOMEM;
    int rc = fv_buf_printf(out, ",\"player_id\":%s", text);
    free(text);
    return rc;
}

static const char *terrain_member(world_t *w, int32_t ci)
{
    if (w->terrain[ci])
        return w->terrain[ci];
    if (w->terrain_made >= w->set->terrain_per_tick)
        return NULL;
    w->terrain_made++;
    fv_cell_t cell = fv_world_cell(ci);
    fv_terrain_patch_t *patch = fv_malloc(sizeof(*patch));
    fv_terrain_patch_generate(w->state->seed, &cell, patch);
    uint8_t *wire = fv_malloc(FV_TERRAIN_WIRE_BYTES);
    size_t n = fv_terrain_encode(patch, wire);
    fv_free(patch);
    size_t cap = 64 + TERRAIN_B64_BYTES;
    char *m = fv_malloc(cap);
    int head = snprintf(m, cap, ",\"terrain\":{\"encoding\":\"fvt%d\",\"data\":\"",
                        FV_TERRAIN_VERSION);
    sodium_bin2base64(m + head, cap - (size_t)head, wire, n, sodium_base64_VARIANT_ORIGINAL);
    fv_free(wire);
    size_t len = strlen(m);
    memcpy(m + len, "\"}", 3);
    w->terrain[ci] = m;
    return m;
}

static int cell_extra(void *data, int32_t ci, fv_buf_t *out)
{
    world_t *w = data;
    const char *terrain = terrain_member(w, ci);
    if (!terrain)
        return FV_EAGAIN;
    fv_cell_t c = fv_world_cell(ci);
    json_t *state = world_cell_json(world_cell(w->state, c.region, c.cx, c.cy), c.cx, c.cy,
                                    world_wall_ms());
    char *text = state ? json_dumps(state, JSON_COMPACT) : NULL;
    json_decref(state);
    if (!text)
        return FV_ENOMEM;
    int rc = fv_buf_append_str(out, terrain);
    if (rc == 0)
        rc = fv_buf_printf(out, ",\"state\":%s", text);
    free(text);
    return rc;
}

void world_stream_init(world_t *w)
{
    fv_stream_opts_t o = {
        .view_radius = (int)w->set->view_radius,
        .budget_bytes_per_s = w->set->stream_budget_bytes_per_s,
        .enter_budget_bytes_per_s = w->set->stream_enter_bytes_per_s,
        .max_message_bytes = w->set->stream_max_message_bytes,
        .baseline_ticks = w->set->stream_baseline_ticks,
        .enters_per_tick = w->set->stream_enters_per_tick,
    };
    fv_stream_hooks_t h = {
        .data = w, .cell_extra = cell_extra, .entity_extra = entity_extra, .send = on_send};
    w->stream = fv_stream_new(&o, &h);
    w->terrain = fv_calloc(FV_WORLD_CELLS, sizeof(*w->terrain));
    w->dilation = 1.0;
    w->last_move_tick_ms = world_mono_ms();
}

void world_stream_dispose(world_t *w)
{
    fv_stream_free(w->stream);      /* the players' views with it */
    w->stream = NULL;
    for (size_t i = 0; w->terrain && i < FV_WORLD_CELLS; i++)
        fv_free(w->terrain[i]);
    fv_free(w->terrain);
    w->terrain = NULL;
}

void world_stream_player_joined(world_t *w, world_player_t *p)
{
    fv_stream_entity_changed(w->stream, &p->ent);
    p->stream = fv_stream_client_new(w->stream, &p->ent, -1, p);
}

void world_stream_player_moved(world_t *w, world_player_t *p)
{
    fv_stream_entity_changed(w->stream, &p->ent);
}

void world_stream_player_left(world_t *w, world_player_t *p)
{
    fv_stream_client_free(w->stream, p->stream);
    p->stream = NULL;
    fv_stream_entity_removed(w->stream, &p->ent);
}

void world_stream_tick(world_t *w, uint64_t now_ms)
{
    uint64_t t0 = fv_now_ns();
    double dt = now_ms > w->last_move_tick_ms ? (double)(now_ms - w->last_move_tick_ms) / 1000.0
                                              : 0.0;
    w->last_move_tick_ms = now_ms;
    w->terrain_made = 0;
    fv_stream_tick(w->stream, dt, w->dilation);
    uint64_t us = (fv_now_ns() - t0) / 1000;
    if (us > w->tick_max_us)
        w->tick_max_us = us;
    /* a tick that takes more than half its interval slows the world by as much */
    double interval_us = 1e6 / fv_module_config(w->ctx)->world.tick_hz;
    double busy = (double)us / (interval_us / 2);
    double want = busy > 1.0 ? 1.0 / busy : 1.0;
    if (want < 0.1)
        want = 0.1;
    /* down at once, back up gently */
    w->dilation = want < w->dilation ? want : w->dilation + (want - w->dilation) * 0.2;
    if (w->dilation > 0.999)
        w->dilation = 1.0;
}
