/* module.c - the world-engine module (:3002): it owns the regions and cells (harmony,
 * corruption, flora, fauna, wards), their weather, and players' positions. Two ticks drive it:
 * the movement tick ([world] tick_hz, 10 Hz) tells the bus who moved; the simulation step
 * ([world] sim_hz, 1 Hz) runs the ecosystem and harmony rules, the weather chains every
 * weather_interval_ms, tells the bus which cells changed, and saves the regions every
 * save_interval_ms. Start waits for the saved regions to load; shutdown saves them once more
 * and close waits for that save. The rules are world_rules.h; docs/world.md is the user's view. */
#include "services/world-engine/world.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "runtime/modules.h"
#include "store/stores.h"

static const fv_cfg_field_t world_settings_fields[] = {
    FV_CFG_MS("save_interval_ms", world_settings_t, save_interval_ms, 100, 86400000, 30000,
              "region state is saved to the sql store this often (and at shutdown)"),
    FV_CFG_MS("weather_interval_ms", world_settings_t, weather_interval_ms, 1000, 86400000,
              180000, "each region's weather chain is evaluated this often"),
    FV_CFG_U32("max_speed_mps", world_settings_t, max_speed_mps, 1, 10000, 12,
               "speed cap of a player in metres per second; a farther move is cut short"),
    FV_CFG_U32("move_slack_m", world_settings_t, move_slack_m, 0, 1000, 2,
               "metres every move may add to the speed cap (jitter, rounding)"),
    FV_CFG_MS("max_move_interval_ms", world_settings_t, max_move_interval_ms, 100, 600000, 2000,
              "idle time past this earns a player no more distance for the next move"),
    FV_CFG_U32("max_above_ground_m", world_settings_t, max_above_ground_m, 1, 100000, 100,
               "how high over the ground a player may be"),
    FV_CFG_U32("max_players", world_settings_t, max_players, 1, 10000000, 100000,
               "players placed in the world at once; past it a new player's move is refused"),
    FV_CFG_MS("player_idle_ms", world_settings_t, player_idle_ms, 1000, 86400000, 600000,
              "a player who has not moved in this long leaves the world"),
    FV_CFG_U32("remembered_places", world_settings_t, remembered_places, 0, 10000000, 100000,
               "places of players out of the world kept, so they come back where they left "
               "(the newest are loaded at start); 0: everyone comes back at the spawn"),
    FV_CFG_U32("max_cell_events", world_settings_t, max_cell_events, 0, 100000, 512,
               "cell.changed events per simulation step; the rest wait for the next step"),
    FV_CFG_U32("max_entities", world_settings_t, max_entities, 1, 10000, 500,
               "most entities one nearby query may ask for"),
    FV_CFG_U32("view_radius", world_settings_t, view_radius, 0, 8, 3,
               "cells around a player's own that it sees (streamed to it as they change)"),
    FV_CFG_U32("stream_budget_bytes_per_s", world_settings_t, stream_budget_bytes_per_s, 1024,
               100000000, 32768,
               "bytes a second of entity updates each player's view may send; far cells wait "
               "when it is spent"),
    FV_CFG_U32("stream_enter_bytes_per_s", world_settings_t, stream_enter_bytes_per_s, 1024,
               100000000, 262144,
               "bytes a second of cell_enter (terrain, cell state, whole cells) each player's "
               "view may send"),
    FV_CFG_U32("stream_max_message_bytes", world_settings_t, stream_max_message_bytes, 4096,
               49152, 40960,
               "an entities_delta stops growing past this (below the bus's 64 KiB event)"),
    FV_CFG_U32("stream_baseline_ticks", world_settings_t, stream_baseline_ticks, 1, 100000, 50,
               "a view more ticks behind a cell than this gets the cell whole"),
    FV_CFG_U32("stream_enters_per_tick", world_settings_t, stream_enters_per_tick, 1, 1000, 4,
               "cell_enter messages (with terrain) a player gets in one tick"),
    FV_CFG_U32("terrain_per_tick", world_settings_t, terrain_per_tick, 1, 10000, 8,
               "terrain patches encoded for cell_enter in one tick (each is ~0.2 ms of loop)"),
    FV_CFG_BOOL("simulate", world_settings_t, simulate, 1,
                "false: the simulation step leaves regions as they are (maintenance, tests)"),
};

uint64_t world_mono_ms(void)
{
    return fv_now_ms();
}

uint64_t world_wall_ms(void)
{
    return fv_wall_ms();
}

static void move_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    (void)ctx;
    (void)tick;
    world_t *w = data;
    world_events_players(w);
    world_stream_tick(w, world_mono_ms());
}

static void sim_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    (void)ctx;
    (void)tick;
    world_t *w = data;
    uint64_t wall = world_wall_ms(), mono = world_mono_ms();
    /* time dilation: while ticks overrun, a step is owed only every 1/dilation seconds */
    w->sim_credit += w->dilation;
    bool step = w->sim_credit >= 1.0;
    if (step)
        w->sim_credit -= 1.0;
    if (w->set->simulate && step) {
        world_state_step(w->state, &w->eco, wall);
        if (w->state->sim_step % w->weather_every == 0) {
            for (int r = 0; r < FV_WORLD_REGIONS; r++) {
                world_weather_t from;
                if (world_region_weather_step(&w->state->regions[r], w->state->seed, r, wall,
                                              &from))
                    world_events_weather(w, r, from, w->state->regions[r].weather);
            }
        }
        world_events_cells(w, wall);
    }
    world_players_expire(w, mono);
    if (mono - w->last_save_ms >= w->set->save_interval_ms)
        (void)world_store_save(w);
}

static void save_check(void *data, fv_check_status_t *status, char *msg, size_t msg_len)
{
    world_t *w = data;
    if (w->saves == 0 && w->save_failures == 0) {
        *status = FV_CHECK_PASS;
        snprintf(msg, msg_len, "no save yet (every %u ms)", w->set->save_interval_ms);
    } else if (w->last_save_failed) {
        *status = FV_CHECK_WARN;
        snprintf(msg, msg_len, "the last save failed (%llu failures)",
                 (unsigned long long)w->save_failures);
    } else {
        *status = FV_CHECK_PASS;
        snprintf(msg, msg_len, "saved at step %llu", (unsigned long long)w->saved_step);
    }
}

static void free_world(world_t *w);

bool world_close_if_idle(world_t *w)
{
    if (!w->closed_cb || w->saving || w->loading || w->lookups)
        return false;
    fv_module_closed_cb done = w->closed_cb;
    fv_module_ctx_t *ctx = w->ctx;
    free_world(w);
    done(ctx);
    return true;
}

static void on_loaded(world_t *w, int status)
{
    w->loading = false;
    if (world_close_if_idle(w))     /* shut down before the load answered */
        return;
    if (status < 0) {
        fv_error_t err;
        fv_error_set(&err, status, "world-engine: cannot load the saved regions: %s",
                     fv_strerror(status));
        fv_module_ready(w->ctx, status, &err);
        return;
    }
    memcpy(w->published, w->state->regions, sizeof(w->state->regions));
    w->loaded = true;
    w->last_save_ms = world_mono_ms();
    fv_module_ready(w->ctx, 0, NULL);
}

static int world_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_config_t *cfg = fv_module_config(ctx);
    world_t *w = fv_calloc(1, sizeof(*w));
    w->ctx = ctx;
    w->set = fv_module_settings(ctx);
    fv_module_set_data(ctx, w);
    w->state = fv_malloc(sizeof(*w->state));
    world_state_init(w->state, cfg->world.seed, world_cell_biome);
    w->published = fv_malloc(sizeof(w->state->regions));
    memcpy(w->published, w->state->regions, sizeof(w->state->regions));
    world_eco_params_default(&w->eco);
    w->eco.dt_s = 1.0 / cfg->world.sim_hz;
    w->limits.max_speed_mps = w->set->max_speed_mps;
    w->limits.slack_m = w->set->move_slack_m;
    w->limits.max_interval_s = w->set->max_move_interval_ms / 1000.0;
    w->limits.max_above_ground_m = w->set->max_above_ground_m;
    uint64_t every = (uint64_t)w->set->weather_interval_ms * cfg->world.sim_hz / 1000;
    w->weather_every = every ? every : 1;
    world_players_init(w);
    world_places_init(w);
    world_stream_init(w);
    fv_stores_t *stores = fv_module_stores(ctx);
    w->db = stores ? fv_stores_sql(stores) : NULL;

    int rc;
    if ((rc = world_http_routes(w, err)) < 0 || (rc = world_rpc_serve(w, err)) < 0)
        return rc;
    if ((rc = fv_module_add_tick(ctx, "movement", cfg->world.tick_hz, move_tick, w)) < 0 ||
        (rc = fv_module_add_tick(ctx, "simulation", cfg->world.sim_hz, sim_tick, w)) < 0)
        return fv_error_set(err, rc, "world-engine: cannot add its ticks: %s", fv_strerror(rc));
    fv_module_add_check(ctx, "world_save", save_check, w);
    const struct {
        const char *name;
        const char *help;
        fv_gauge_fn read;
        void *field;
    } gauges[] = {
        {"finalverse_world_players", "Players placed in the world.", fv_gauge_read_size,
         &w->player_count},
        {"finalverse_world_places_remembered", "Places of players out of the world kept.",
         fv_gauge_read_size, &w->places_count},
        {"finalverse_world_places_unsaved", "Of those, not written to the store yet.",
         fv_gauge_read_size, &w->places_unsaved},
        {"finalverse_world_places_dropped_total",
         "Leaving players' places not kept (the table full of unsaved ones).",
         fv_gauge_read_u64, &w->places_dropped},
        {"finalverse_world_moves_total", "Moves validated.", fv_gauge_read_u64, &w->moves},
        {"finalverse_world_moves_corrected_total", "Moves cut short or lifted to the ground.",
         fv_gauge_read_u64, &w->moves_corrected},
        {"finalverse_world_moves_refused_total", "Moves refused (NaN, far or unknown region).",
         fv_gauge_read_u64, &w->moves_refused},
        {"finalverse_world_sim_step", "Simulation steps since the world was made.",
         fv_gauge_read_u64, &w->state->sim_step},
        {"finalverse_world_saves_total", "Saves of the regions that committed.", fv_gauge_read_u64,
         &w->saves},
        {"finalverse_world_save_failures_total", "Saves of the regions that failed.",
         fv_gauge_read_u64, &w->save_failures},
        {"finalverse_world_events_total", "Events published on the bus.", fv_gauge_read_u64,
         &w->events_published},
        {"finalverse_world_tick_max_microseconds", "The longest movement tick (streaming).",
         fv_gauge_read_u64, &w->tick_max_us},
        {"finalverse_world_dilation", "The factor the world runs at (1: real time).",
         fv_gauge_read_double, &w->dilation},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        fv_module_add_gauge(ctx, gauges[i].name, gauges[i].help, gauges[i].read,
                            gauges[i].field);

    if (!w->db) {               /* a test runtime without stores: a fresh world, never saved */
        w->loaded = false;
        return 0;
    }
    if ((rc = world_store_load(w, on_loaded)) < 0)
        return fv_error_set(err, rc, "world-engine: cannot load the saved regions: %s",
                            fv_strerror(rc));
    w->loading = true;
    return FV_EAGAIN;
}

static void free_world(world_t *w)
{
    world_stream_dispose(w);        /* the views borrow the players' entities */
    world_players_dispose(w);
    world_places_dispose(w);
    fv_free(w->published);
    fv_free(w->state);
    fv_free(w);
}

void world_saved(world_t *w, int rc, bool final)
{
    w->last_save_failed = rc < 0;
    /* shutdown began while a periodic save was writing: that one may miss the last moves */
    if (w->stopping && !final && world_store_save(w))
        return;
    (void)world_close_if_idle(w);
}

/* Ticks have stopped: the regions are what they will be; save them now, while the drain runs. */
static void world_quiesce(fv_module_ctx_t *ctx)
{
    world_t *w = fv_module_data(ctx);
    if (!w)
        return;
    w->stopping = true;
    if (!w->saving)
        (void)world_store_save(w);
}

static void world_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    world_t *w = fv_module_data(ctx);
    if (!w) {
        done(ctx);
        return;
    }
    fv_module_set_data(ctx, NULL);
    w->closed_cb = done;        /* now, or when the save, load or lookups in flight end */
    (void)world_close_if_idle(w);
}

const fv_module_t fv_module_world_engine = {
    .name = "world-engine",
    .start = world_start,
    .quiesce = world_quiesce,
    .close = world_close,
    .stores = FV_STORE_SQL,
    .settings_section = "services.world-engine",
    .settings = world_settings_fields,
    .settings_count = sizeof(world_settings_fields) / sizeof(world_settings_fields[0]),
    .settings_size = sizeof(world_settings_t),
};
