/* world_events.c - what the world engine tells the bus (proto/events.proto), always on the
 * channel of the region it happened in ("region.terra-nova"), which the WebSocket gateway
 * forwards to clients subscribed to "region:terra-nova":
 *   player.moved     once per movement tick for each player who moved (coalesced per player);
 *   cell.changed     once per simulation step for cells whose levels moved a unit or more since
 *                    last told, or whose ward began or ended (at most max_cell_events a step;
 *                    the rest wait for a later step, coalesced per cell);
 *   weather.changed  when a region's chain moves to another weather. */
#include "services/world-engine/world.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bus/bus.h"
#include "core/log.h"
#include "events.pb-c.h"

/* A cell is told again once a level moved this much: finer is noise to a client. */
#define CELL_EVENT_DELTA 1.0

static void publish(world_t *w, int region, const char *type, const ProtobufCMessage *m,
                    const char *key)
{
    uint8_t buf[512];
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > sizeof(buf)) {        /* the world's events are small; a bug if not */
        w->events_refused++;
        return;
    }
    protobuf_c_message_pack(m, buf);
    char channel[96];
    snprintf(channel, sizeof(channel), "region.%s", fv_region_at(region)->id);
    int rc = fv_bus_publish(fv_module_bus(w->ctx), channel, type, buf, len, key);
    if (rc < 0) {
        w->events_refused++;
        fv_log_debug("world-engine", "%s on %s refused: %s", type, channel, fv_strerror(rc));
        return;
    }
    w->events_published++;
}

void world_events_players(world_t *w)
{
    world_player_t *list = w->dirty;
    w->dirty = NULL;
    for (world_player_t *p = list, *next; p; p = next) {
        next = p->dirty_next;
        p->dirty_next = NULL;
        p->dirty = false;
        Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
        at.x = p->ent.x;
        at.y = p->ent.y;
        at.z = p->ent.z;
        Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
        pos.region = (char *)fv_region_at(p->ent.region)->id;
        pos.at = &at;
        pos.yaw = p->ent.yaw;
        Finalverse__Events__V1__PlayerMoved m = FINALVERSE__EVENTS__V1__PLAYER_MOVED__INIT;
        m.player_id = p->id;
        m.position = &pos;
        fv_cell_t cell;
        if (fv_cell_of(p->ent.region, p->ent.x, p->ent.z, &cell)) {
            m.cell_x = (uint32_t)cell.cx;
            m.cell_y = (uint32_t)cell.cy;
        }
        publish(w, p->ent.region, "player.moved", &m.base, p->id);
    }
}

static bool worth_telling(const world_cell_t *now, const world_cell_t *told, uint64_t now_ms,
                          bool *warded)
{
    *warded = world_cell_warded(now, now_ms);
    return fabs(now->harmony - told->harmony) >= CELL_EVENT_DELTA ||
           fabs(now->corruption - told->corruption) >= CELL_EVENT_DELTA ||
           fabs(now->flora - told->flora) >= CELL_EVENT_DELTA ||
           fabs(now->fauna - told->fauna) >= CELL_EVENT_DELTA ||
           *warded != (told->warded_until_ms != 0) ||
           (*warded && now->warded_until_ms != told->warded_until_ms);
}

void world_events_cells(world_t *w, uint64_t now_ms)
{
    uint32_t budget = w->set->max_cell_events;
    /* start where the last step's budget ran out, so no region waits behind another */
    for (int k = 0; k < FV_WORLD_REGIONS && budget; k++) {
        int r = (int)((w->state->sim_step + (uint64_t)k) % FV_WORLD_REGIONS);
        for (int i = 0; i < WORLD_CELLS && budget; i++) {
            world_cell_t *now = &w->state->regions[r].cells[i];
            world_cell_t *told = &w->published[r].cells[i];
            bool warded;
            if (!worth_telling(now, told, now_ms, &warded))
                continue;
            *told = *now;
            /* what was told: warded until then, or 0 for not warded (an expired ward too) */
            told->warded_until_ms = warded ? now->warded_until_ms : 0;
            budget--;
            Finalverse__Events__V1__CellRef ref = FINALVERSE__EVENTS__V1__CELL_REF__INIT;
            ref.region = (char *)fv_region_at(r)->id;
            ref.x = (uint32_t)(i % FV_REGION_CELLS);
            ref.y = (uint32_t)(i / FV_REGION_CELLS);
            Finalverse__Events__V1__CellChanged m = FINALVERSE__EVENTS__V1__CELL_CHANGED__INIT;
            m.cell = &ref;
            m.harmony = now->harmony;
            m.corruption = now->corruption;
            m.flora = now->flora;
            m.fauna = now->fauna;
            m.warded = warded;
            char key[96];
            snprintf(key, sizeof(key), "%s/%u/%u", ref.region, ref.x, ref.y);
            publish(w, r, "cell.changed", &m.base, key);
        }
    }
}

void world_events_weather(world_t *w, int region, world_weather_t from, world_weather_t to)
{
    Finalverse__Events__V1__WeatherChanged m = FINALVERSE__EVENTS__V1__WEATHER_CHANGED__INIT;
    m.region = (char *)fv_region_at(region)->id;
    /* the contract's enum counts from 1 (0 is unspecified) */
    m.weather = (Finalverse__Events__V1__Weather)(to + 1);
    m.previous = (Finalverse__Events__V1__Weather)(from + 1);
    char key[96];
    snprintf(key, sizeof(key), "weather/%s", m.region);
    publish(w, region, "weather.changed", &m.base, key);
}
