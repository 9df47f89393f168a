/* module.c - the websocket-gateway module: realtime client traffic on :3000. Every path but
 * /health, /info, /metrics (and /presence later) upgrades to a WebSocket; the client protocol
 * is docs/protocol.md. Events reach clients from the bus, whichever process published them. */
#include "services/websocket-gateway/gateway.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/token.h"
#include "runtime/modules.h"
#include "store/stores.h"

static const fv_cfg_field_t wsg_settings_fields[] = {
    FV_CFG_BOOL("allow_guests", wsg_settings_t, allow_guests, 1,
                "a client without a token plays as a guest"),
    FV_CFG_STR("dev_token", wsg_settings_t, dev_token, "",
               "until accounts exist: a token that signs in as the developer player"),
    FV_CFG_STR("allowed_origins", wsg_settings_t, allowed_origins, "",
               "comma-separated Origins allowed to connect; empty allows any, null included"),
    FV_CFG_MS("heartbeat_ms", wsg_settings_t, heartbeat_ms, 1000, 3600000, 25000,
              "quiet this long, the server pings; no answer in as long again, it closes"),
    FV_CFG_SIZE("max_message_bytes", wsg_settings_t, max_message_bytes, 125, 16777216, 65536,
                "largest client message; larger ones close the connection with 1009"),
    FV_CFG_U32("max_subscriptions", wsg_settings_t, max_subscriptions, 1, 100000, 256,
               "channels one session may subscribe to"),
    FV_CFG_U32("max_pending", wsg_settings_t, max_pending, 1, 1000000, 4096,
               "events held for a client that reads too slowly; past it, close 1013"),
    FV_CFG_U32("history_events", wsg_settings_t, history_events, 0, 100000, 512,
               "events kept per session for resume"),
    FV_CFG_MS("history_ms", wsg_settings_t, history_ms, 1000, 86400000, 120000,
              "how long history, and a session whose client left, are kept"),
    FV_CFG_U32("max_kept_sessions", wsg_settings_t, max_kept_sessions, 0, 10000000, 100000,
               "sessions kept for resume at once; past it the oldest are dropped"),
};

/* Every second; every PRESENCE_REFRESH_S-th writes the presence records again. */
static void presence_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    (void)ctx;
    (void)tick;
    wsg_t *gw = data;
    if (++gw->presence_ticks % PRESENCE_REFRESH_S == 0)
        wsg_presence_refresh(gw);
}

static void on_sweep(uv_timer_t *t)
{
    wsg_sessions_sweep(t->data, wsg_mono_ms());
}

/* The bus channels that feed client channels: one prefix subscription per kind. */
static const char *const bus_patterns[] = {"region.*", "player.*", "group.*", "chat.*"};

static int wsg_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_config_t *cfg = fv_module_config(ctx);
    /* hello takes access tokens signed with this secret: one anyone can read must not be
     * trusted where anyone can connect */
    int src = fv_token_secret_check(cfg->auth.jwt_secret, cfg->general.bind, err);
    if (src < 0)
        return src;
    wsg_t *gw = fv_calloc(1, sizeof(*gw));
    gw->ctx = ctx;
    gw->set = fv_module_settings(ctx);
    gw->jwt_secret = cfg->auth.jwt_secret;
    fv_ws_limits_default(&gw->limits);
    gw->limits.max_message_bytes = gw->set->max_message_bytes;
    gw->limits.max_frame_bytes = gw->set->max_message_bytes;
    gw->limits.ping_interval_ms = gw->set->heartbeat_ms;
    gw->limits.pong_timeout_ms = gw->set->heartbeat_ms;
    gw->session_buckets = 1024;
    gw->sessions = fv_calloc(gw->session_buckets, sizeof(*gw->sessions));
    gw->channel_buckets = 1024;
    gw->channels = fv_calloc(gw->channel_buckets, sizeof(*gw->channels));
    fv_module_set_data(ctx, gw);

    int rc;
    fv_router_t *r = fv_module_router(ctx);
    /* any path upgrades; the runtime's literal routes (/health, ...) win over these */
    if ((rc = fv_router_add_limited(r, "GET", "/presence", wsg_on_presence, gw, 0)) < 0 ||
        (rc = fv_router_add_limited(r, "GET", "/", wsg_on_upgrade, gw, 0)) < 0 ||
        (rc = fv_router_add_limited(r, "GET", "/*path", wsg_on_upgrade, gw, 0)) < 0)
        return fv_error_set(err, rc, "websocket-gateway: cannot add routes: %s",
                            fv_strerror(rc));
    fv_bus_sub_opts_t so = {.queue_count = 65536, .policy = FV_BUS_COALESCE};
    for (size_t i = 0; i < sizeof(bus_patterns) / sizeof(bus_patterns[0]); i++) {
        if ((rc = fv_module_subscribe(ctx, bus_patterns[i], &so, wsg_on_bus_event, gw, NULL)) <
            0)
            return fv_error_set(err, rc, "websocket-gateway: cannot subscribe to %s: %s",
                                bus_patterns[i], fv_strerror(rc));
    }
    if ((rc = fv_module_add_tick(ctx, "presence", 1, presence_tick, gw)) < 0)
        return fv_error_set(err, rc, "websocket-gateway: cannot add its tick: %s",
                            fv_strerror(rc));
    uv_timer_init(fv_module_loop(ctx), &gw->sweep);
    gw->sweep.data = gw;
    gw->sweep_open = true;
    uint64_t every = gw->set->history_ms / 4 ? gw->set->history_ms / 4 : 250;
    uv_timer_start(&gw->sweep, on_sweep, every, every);
    uv_unref((uv_handle_t *)&gw->sweep);

    const struct {
        const char *name;
        const char *help;
        fv_gauge_fn read;
        void *field;
    } gauges[] = {
        {"finalverse_ws_connections", "Open WebSocket client connections.", fv_gauge_read_size,
         &gw->connected},
        {"finalverse_ws_sessions", "Sessions, connected or kept for resume.", fv_gauge_read_size,
         &gw->session_count},
        {"finalverse_ws_channels", "Channels with local subscribers.", fv_gauge_read_size,
         &gw->channel_count},
        {"finalverse_ws_events_sent_total", "Events handed to clients.", fv_gauge_read_u64,
         &gw->events_sent},
        {"finalverse_ws_events_coalesced_total",
         "Events replaced by a newer one while a client was behind.", fv_gauge_read_u64,
         &gw->events_coalesced},
        {"finalverse_ws_slow_closed_total", "Clients closed with 1013 for falling too far behind.",
         fv_gauge_read_u64, &gw->slow_closed},
        {"finalverse_ws_stream_dropped_total",
         "Binary stream frames dropped for slow sockets (the view is sent anew after).",
         fv_gauge_read_u64, &gw->stream_dropped},
        {"finalverse_ws_resumed_total", "Sessions resumed without a gap.", fv_gauge_read_u64,
         &gw->resumed},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        fv_module_add_gauge(ctx, gauges[i].name, gauges[i].help, gauges[i].read,
                            gauges[i].field);
    return 0;
}

static void quiesce(fv_module_ctx_t *ctx)
{
    wsg_t *gw = fv_module_data(ctx);
    if (gw)
        gw->stopping = true;
}

static void free_all(wsg_t *gw)
{
    wsg_moves_orphan(gw);
    /* a client still connected (the drain deadline cut it short) is closed first, so its
     * socket never calls back into a freed session; that may free the session itself */
    for (size_t i = 0; i < gw->session_buckets; i++) {
        for (wsg_session_t *s = gw->sessions[i], *next; s; s = next) {
            next = s->next;
            if (s->ws)
                fv_ws_close(s->ws, FV_WS_CLOSE_GOING_AWAY, "server shutting down");
        }
    }
    for (size_t i = 0; i < gw->session_buckets; i++) {
        while (gw->sessions[i])
            wsg_session_free(gw->sessions[i]);
    }
    fv_free(gw->sessions);
    fv_free(gw->channels);
    fv_module_closed_cb done = gw->closed_cb;
    fv_module_ctx_t *ctx = gw->ctx;
    fv_free(gw);
    if (done)
        done(ctx);
}

static void on_sweep_closed(uv_handle_t *h)
{
    free_all(h->data);
}

/* After the drain the HTTP server has sent every client 1001 and the sockets are gone, so
 * every session is away; what is left is memory and the sweep timer. */
static void wsg_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    wsg_t *gw = fv_module_data(ctx);
    if (!gw) {
        done(ctx);
        return;
    }
    fv_module_set_data(ctx, NULL);
    gw->closed_cb = done;
    if (gw->sweep_open)
        uv_close((uv_handle_t *)&gw->sweep, on_sweep_closed);
    else
        free_all(gw);
}

const fv_module_t fv_module_websocket_gateway = {
    .name = "websocket-gateway",
    .start = wsg_start,
    .quiesce = quiesce,
    .close = wsg_close,
    .stores = FV_STORE_KV,
    .settings_section = "websocket",
    .settings = wsg_settings_fields,
    .settings_count = sizeof(wsg_settings_fields) / sizeof(wsg_settings_fields[0]),
    .settings_size = sizeof(wsg_settings_t),
};
