/* runtime.c - one process's modules: start in dependency order, listen, register, and the
 * graceful shutdown sequence.
 *
 * Shutdown order matters: stop the ticks and deregister first (so discovery stops sending
 * traffic while we can still answer it; in `up` the registry itself is still accepting then),
 * then quiesce the modules (they stop making new work and answer what they hold open, such as
 * the registry's blocking queries) and stop accepting on every listener, then wait for
 * in-flight requests until the drain deadline, then close the modules (each reports when its
 * handles are gone, under a deadline of its own), then every listener, connection and store.
 * A deadline that cuts work off makes the exit status non-zero. */
#include "runtime/runtime.h"

#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"
#include "core/time.h"
#include "registry/registry.h"
#include "runtime/modules.h"
#include "runtime/peers.h"
#include "runtime/runtime_internal.h"
#include "store/stores.h"
#include "bus/bus.h"
#include "net/grpc_interop.h"
#include "net/grpc_reflection.h"
#include "rpc/grpc_transport.h"
#include "rpc/rpc.h"

typedef enum rt_state {
    RT_NEW,
    RT_RUNNING,
    RT_DEREGISTERING,
    RT_DRAINING,
    RT_CLOSING_MODULES,    /* modules' close() called, waiting for their done */
    RT_CLOSING,
    RT_DONE,
} rt_state_t;

struct fv_runtime {
    uv_loop_t *loop;
    const fv_config_t *cfg;
    rt_state_t state;
    fv_module_ctx_t *mods[FV_MOD_COUNT];   /* in start order */
    size_t mod_count;
    fv_registry_client_t *registry;
    char registry_host[200];               /* where registry lives, from the config once */
    int registry_port;
    fv_stores_t *stores;                   /* the data layer, NULL when no module needs it */
    fv_bus_t *bus;                         /* the process's event bus (over Redis when kv is) */
    fv_rpc_t *rpc;                         /* calls between the modules */
    fv_grpc_transport_t *grpc_transport;   /* its calls to modules in other processes */
    fv__peers_t *peers;                    /* where those are: registry watches */
    bool stores_done;                      /* its open callback has run */
    int stores_rc;
    fv_error_t stores_err;
    struct store_check {
        fv_runtime_t *rt;
        unsigned kind;
        const char *name;
    } store_checks[4];
    uv_signal_t sigint;
    uv_signal_t sigterm;
    bool signals_on;
    int signal_count;
    uv_timer_t drain_timer;
    bool drain_timer_on;
    uint64_t drain_deadline_ms;
    size_t modules_closing;                /* close() called, done not yet reported */
    size_t closing;                        /* handles whose close callback is pending */
    bool cut_off;                          /* a deadline ended work early: exit non-zero */
};

fv_stores_t *fv__runtime_stores(fv_runtime_t *rt)
{
    return rt->stores;
}

fv_bus_t *fv__runtime_bus(fv_runtime_t *rt)
{
    return rt->bus;
}

fv_rpc_t *fv__runtime_rpc(fv_runtime_t *rt)
{
    return rt->rpc;
}

fv_registry_client_t *fv__runtime_registry(fv_runtime_t *rt)
{
    return rt->registry;
}

const fv_config_t *fv__runtime_config(fv_runtime_t *rt)
{
    return rt->cfg;
}

uv_loop_t *fv__runtime_loop(fv_runtime_t *rt)
{
    return rt->loop;
}

int fv_runtime_new(uv_loop_t *loop, const fv_config_t *cfg, fv_runtime_t **out)
{
    fv_runtime_t *rt = fv_calloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->cfg = cfg;
    rt->state = RT_NEW;
    *out = rt;
    return 0;
}

/* Orders the chosen modules so that each comes after the chosen modules it depends on.
 * Dependencies that are not chosen live in another process and are reached over the network. */
static int order_modules(const int *which, size_t count, int *order, fv_error_t *err)
{
    bool chosen[FV_MOD_COUNT] = {0};
    bool placed[FV_MOD_COUNT] = {0};
    size_t n = 0;

    for (size_t i = 0; i < count; i++) {
        if (which[i] < 0 || which[i] >= FV_MOD_COUNT)
            return fv_error_set(err, FV_EINVAL, "unknown module index %d", which[i]);
        if (chosen[which[i]])
            return fv_error_set(err, FV_EINVAL, "module %s named twice",
                                fv_components[which[i]].name);
        chosen[which[i]] = true;
    }
    while (n < count) {
        size_t before = n;
        for (size_t i = 0; i < count; i++) {
            int idx = which[i];
            if (placed[idx])
                continue;
            const fv_module_t *m = fv_modules_get(idx);
            bool ready = true;
            for (const char *const *d = m->deps; d && *d; d++) {
                int di = fv_component_index(*d);
                if (di >= 0 && chosen[di] && !placed[di])
                    ready = false;
            }
            if (ready) {
                placed[idx] = true;
                order[n++] = idx;
            }
        }
        if (n == before)
            return fv_error_set(err, FV_EINVAL, "module dependencies form a cycle");
    }
    return 0;
}

static void registry_check(void *data, fv_check_status_t *status, char *msg, size_t msg_len)
{
    fv_module_ctx_t *ctx = data;
    bool registered = ctx->rt->registry &&
                      fv_registry_client_registered(ctx->rt->registry, ctx->instance_id);
    /* Serving without registration is degraded, not down: the client retries meanwhile. */
    *status = registered ? FV_CHECK_PASS : FV_CHECK_WARN;
    fv_str_copy(msg, msg_len, registered ? ctx->registry_pass_msg : ctx->registry_warn_msg);
}

/* A store's /health check reads the data layer's last probe of it. */
static void store_check(void *data, fv_check_status_t *status, char *msg, size_t msg_len)
{
    const struct store_check *c = data;
    int rc = fv_stores_check(c->rt->stores, c->kind, msg, msg_len);
    *status = rc == 0 ? FV_CHECK_PASS : rc == FV_EAGAIN ? FV_CHECK_WARN : FV_CHECK_FAIL;
}

static void on_stores_open(fv_stores_t *s, int rc, const fv_error_t *err, void *data)
{
    fv_runtime_t *rt = data;
    rt->stores_done = true;
    rt->stores_rc = rc;
    if (rc < 0)
        rt->stores_err = *err;
}

/* Opens the union of the stores the chosen modules need, before any of them starts. The loop
 * runs here only until the stores answer: nothing else is on it yet. */
static int open_stores(fv_runtime_t *rt, const int *which, size_t count, fv_error_t *err)
{
    static const struct {
        unsigned kind;
        const char *name;
    } names[4] = {{FV_STORE_SQL, "database"}, {FV_STORE_KV, "kv"},
                  {FV_STORE_VECTOR, "vector"}, {FV_STORE_BLOB, "blob"}};
    unsigned kinds = 0;
    int rc;

    for (size_t i = 0; i < count; i++)
        kinds |= fv_modules_get(which[i])->stores;
    if (!kinds)
        return 0;
    for (int i = 0; i < 4; i++)
        rt->store_checks[i] = (struct store_check){rt, names[i].kind, names[i].name};
    if ((rc = fv_stores_open(rt->loop, rt->cfg, kinds, &rt->stores, on_stores_open, rt)) < 0)
        return fv_error_set(err, rc, "cannot open the data layer: %s (see the log above)",
                            fv_strerror(rc));
    while (!rt->stores_done && rt->state < RT_DEREGISTERING)
        uv_run(rt->loop, UV_RUN_ONCE);
    if (!rt->stores_done)
        return fv_error_set(err, FV_ECANCELED, "interrupted while opening the data layer");
    if (rt->stores_rc < 0)
        return fv_error_set(err, rt->stores_rc, "%s", rt->stores_err.msg);
    return 0;
}

static fv_http_limits_t limits_from_config(const fv_config_t *cfg)
{
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_header_bytes = cfg->http.max_header_bytes;
    lim.max_body_bytes = cfg->http.max_body_bytes;
    lim.header_timeout_ms = cfg->http.header_timeout_ms;
    lim.body_timeout_ms = cfg->http.body_timeout_ms;
    lim.idle_timeout_ms = cfg->http.idle_timeout_ms;
    lim.max_connections = cfg->http.max_connections;
    lim.max_output_bytes = cfg->http.max_output_bytes;
    lim.max_connections_per_client = cfg->http.max_connections_per_client;
    lim.max_buffered_body_bytes = cfg->http.max_buffered_body_bytes;
    return lim;
}

/* Every module's port speaks gRPC too (h2c with prior knowledge, next to HTTP/1.1): calls to
 * the service the module serves go to its method table. */
static int grpc_attach(fv_runtime_t *rt, fv_module_ctx_t *ctx, const fv_http_limits_t *lim)
{
    const fv_config_t *cfg = rt->cfg;
    fv_h2_limits_t h2;
    fv_h2_limits_default(&h2);
    h2.idle_timeout_ms = lim->idle_timeout_ms;
    h2.max_concurrent_streams = cfg->grpc.max_concurrent_streams;
    h2.max_resets = cfg->grpc.max_resets_per_second;
    fv_grpc_opts_t opts = {.max_message_bytes = cfg->grpc.max_message_bytes,
                           .max_buffered_bytes = lim->max_buffered_body_bytes,
                           .h2 = &h2};
    int rc = fv_grpc_server_new(rt->rpc, ctx->mod->name, &opts, &ctx->grpc);
    if (rc < 0)
        return rc;
    if ((rc = fv__grpc_health_serve(ctx)) < 0)
        return rc;
    if (cfg->grpc.probe_service && (rc = fv__grpc_probe_serve(ctx)) < 0)
        return rc;
    if (cfg->grpc.interop_service && (rc = fv_grpc_interop_serve(ctx->grpc)) < 0)
        return rc;
    if ((rc = fv_grpc_reflection_serve(ctx->grpc)) < 0)   /* last: it lists the others */
        return rc;
    fv_grpc_server_attach(ctx->grpc, ctx->server);
    return 0;
}

/* The bus is the process's: every module's /metrics shows the same process-wide counts. */
static double bus_stat(const fv_runtime_t *rt, size_t offset)
{
    fv_bus_stats_t st;
    if (!rt->bus)
        return 0;
    fv_bus_stats(rt->bus, &st);
    return (double)*(const uint64_t *)((const char *)&st + offset);
}

static double gauge_bus_published(void *rt)
{
    return bus_stat(rt, offsetof(fv_bus_stats_t, published));
}

static double gauge_bus_delivered(void *rt)
{
    return bus_stat(rt, offsetof(fv_bus_stats_t, delivered));
}

static double gauge_bus_dropped(void *rt)
{
    return bus_stat(rt, offsetof(fv_bus_stats_t, dropped));
}

static double gauge_bus_remote_in(void *rt)
{
    return bus_stat(rt, offsetof(fv_bus_stats_t, remote_in));
}

static double rpc_stat(const fv_runtime_t *rt, size_t offset)
{
    fv_rpc_stats_t st;
    if (!rt->rpc)
        return 0;
    fv_rpc_stats(rt->rpc, &st);
    return (double)*(const uint64_t *)((const char *)&st + offset);
}

static double gauge_rpc_calls(void *rt)
{
    return rpc_stat(rt, offsetof(fv_rpc_stats_t, calls));
}

static double gauge_rpc_failed(void *rt)
{
    return rpc_stat(rt, offsetof(fv_rpc_stats_t, failed));
}

static double gauge_rpc_in_flight(void *rt)
{
    return (double)fv_rpc_in_flight(((fv_runtime_t *)rt)->rpc);
}

static double refusal(const fv_module_ctx_t *ctx, size_t offset)
{
    fv_http_server_refusals_t r;
    if (!ctx->server)
        return 0;
    fv_http_server_refusals(ctx->server, &r);
    return (double)*(const uint64_t *)((const char *)&r + offset);
}

static double gauge_refused_full(void *ctx)
{
    return refusal(ctx, offsetof(fv_http_server_refusals_t, full));
}

static double gauge_accept_errors(void *ctx)
{
    return refusal(ctx, offsetof(fv_http_server_refusals_t, accept_errors));
}

static double gauge_refused_h2(void *ctx)
{
    return refusal(ctx, offsetof(fv_http_server_refusals_t, h2_prefaces));
}

/* The module's gRPC server; 0 before it exists. */
static double grpc_stat(const fv_module_ctx_t *ctx, size_t offset, bool is_size)
{
    fv_grpc_stats_t st;
    if (!ctx->grpc)
        return 0;
    fv_grpc_server_stats(ctx->grpc, &st);
    return is_size ? (double)*(const size_t *)((const char *)&st + offset)
                   : (double)*(const uint64_t *)((const char *)&st + offset);
}

static double gauge_grpc_calls(void *ctx)
{
    return grpc_stat(ctx, offsetof(fv_grpc_stats_t, calls), false);
}

static double gauge_grpc_failed(void *ctx)
{
    return grpc_stat(ctx, offsetof(fv_grpc_stats_t, failed), false);
}

static double gauge_grpc_in_flight(void *ctx)
{
    return grpc_stat(ctx, offsetof(fv_grpc_stats_t, in_flight), true);
}

static void add_runtime_gauges(fv_module_ctx_t *ctx)
{
    fv_module_add_gauge(ctx, "finalverse_grpc_calls", "gRPC requests on this module's port "
                        "since start.", gauge_grpc_calls, ctx);
    fv_module_add_gauge(ctx, "finalverse_grpc_failed", "gRPC requests on this module's port "
                        "answered with a status other than OK since start.",
                        gauge_grpc_failed, ctx);
    fv_module_add_gauge(ctx, "finalverse_grpc_in_flight", "gRPC calls on this module's port "
                        "with a handler now.", gauge_grpc_in_flight, ctx);
    fv_module_add_gauge(ctx, "finalverse_http_refused_full_connections",
                        "Connections answered 503 because the process held its connection "
                        "budget, since start.", gauge_refused_full, ctx);
    fv_module_add_gauge(ctx, "finalverse_http_accept_errors",
                        "Failed accepts on this module's port since start.",
                        gauge_accept_errors, ctx);
    fv_module_add_gauge(ctx, "finalverse_http_refused_h2_connections",
                        "HTTP/2 connections closed since start: no h2 driver on this port.",
                        gauge_refused_h2, ctx);
    fv_runtime_t *rt = ctx->rt;
    fv_module_add_gauge(ctx, "finalverse_bus_published_events",
                        "Events published on this process's bus since start.",
                        gauge_bus_published, rt);
    fv_module_add_gauge(ctx, "finalverse_bus_delivered_events",
                        "Event deliveries to subscribers of this process's bus since start.",
                        gauge_bus_delivered, rt);
    fv_module_add_gauge(ctx, "finalverse_bus_dropped_events",
                        "Events dropped by full subscriber queues of this process since start.",
                        gauge_bus_dropped, rt);
    fv_module_add_gauge(ctx, "finalverse_bus_remote_events",
                        "Events received from other processes over Redis since start.",
                        gauge_bus_remote_in, rt);
    fv_module_add_gauge(ctx, "finalverse_calls_made", "Calls between modules made in this "
                        "process since start.", gauge_rpc_calls, rt);
    fv_module_add_gauge(ctx, "finalverse_calls_failed", "Calls between modules of this process "
                        "that failed since start (timeouts included).", gauge_rpc_failed, rt);
    fv_module_add_gauge(ctx, "finalverse_calls_in_flight", "Calls between modules of this "
                        "process under way.", gauge_rpc_in_flight, rt);
}

void fv_module_ready(fv_module_ctx_t *ctx, int status, const fv_error_t *err)
{
    if (ctx->state != MODULE_STARTING) {
        fv_log_debug("runtime", "%s: fv_module_ready after start finished: ignored",
                     ctx->mod->name);
        return;
    }
    ctx->ready_rc = status;
    if (status < 0) {
        if (err)
            ctx->ready_err = *err;
        else
            fv_error_set(&ctx->ready_err, status, "%s: start failed: %s", ctx->mod->name,
                         fv_strerror(status));
    }
    ctx->state = status < 0 ? MODULE_FAILED : MODULE_READY;
}

/* Runs the module's start(); when it answers later, runs the loop until it does (nothing else
 * of this process depends on the loop yet but the stores and the modules already started). */
static int start_module(fv_runtime_t *rt, fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_module_t *m = ctx->mod;
    if (!m->start) {
        ctx->state = MODULE_READY;
        return 0;
    }
    ctx->start_called = true;
    ctx->state = MODULE_STARTING;
    int rc = m->start(ctx, err);
    if (rc != FV_EAGAIN) {
        if (ctx->state == MODULE_STARTING)
            ctx->state = rc < 0 ? MODULE_FAILED : MODULE_READY;
        return rc;   /* on failure err names the module's own reason */
    }
    while (ctx->state == MODULE_STARTING && rt->state < RT_DEREGISTERING) {
        if (uv_run(rt->loop, UV_RUN_ONCE) == 0 && ctx->state == MODULE_STARTING)
            break;   /* nothing left that could ever call fv_module_ready */
    }
    if (ctx->state == MODULE_STARTING) {
        ctx->state = MODULE_FAILED;
        return fv_error_set(err, FV_ECANCELED, "%s: %s", m->name,
                            rt->state >= RT_DEREGISTERING ? "interrupted while starting"
                                                          : "start never finished");
    }
    if (ctx->ready_rc < 0) {
        *err = ctx->ready_err;
        return ctx->ready_rc;
    }
    return 0;
}

static int start_one(fv_runtime_t *rt, int idx, fv_error_t *err)
{
    const fv_config_t *cfg = rt->cfg;
    const fv_module_t *m = fv_modules_get(idx);
    fv_module_ctx_t *ctx = fv_calloc(1, sizeof(*ctx));
    int rc;

    ctx->rt = rt;
    ctx->mod = m;
    ctx->index = idx;
    ctx->port = fv_config_port(cfg, idx);
    ctx->started_ms = fv_now_ms();
    snprintf(ctx->instance_id, sizeof(ctx->instance_id), "%s-%s-%d", m->name,
             cfg->general.advertise, ctx->port);
    for (char *p = ctx->instance_id; *p; p++)
        if (*p == '.' || *p == ':')
            *p = '-';
    ctx->router = fv_router_new();
    ctx->metrics = fv_metrics_new(m->name);
    fv_buf_init(&ctx->scratch, 0);
    fv_buf_init(&ctx->health, 0);
    rt->mods[rt->mod_count++] = ctx;

    if ((rc = fv__endpoints_add(ctx)) < 0)
        return fv_error_set(err, rc, "%s: cannot add operator routes: %s", m->name,
                            fv_strerror(rc));
    fv_module_add_check(ctx, "registry", registry_check, ctx);
    add_runtime_gauges(ctx);
    for (int i = 0; i < 4; i++)
        if (m->stores & rt->store_checks[i].kind)
            fv_module_add_check(ctx, rt->store_checks[i].name, store_check,
                                &rt->store_checks[i]);
    if ((rc = start_module(rt, ctx, err)) < 0)
        return rc;

    fv_http_limits_t lim = limits_from_config(cfg);
    if ((rc = fv_http_server_new(rt->loop, &lim, fv_router_dispatch, ctx->router, &ctx->server))
        < 0)
        return fv_error_set(err, rc, "%s: cannot create HTTP server: %s", m->name,
                            fv_strerror(rc));
    fv_http_server_set_observer(ctx->server, fv__endpoints_observe, ctx);
    if ((rc = grpc_attach(rt, ctx, &lim)) < 0)
        return fv_error_set(err, rc, "%s: cannot serve gRPC: %s", m->name, fv_strerror(rc));
    fv_http_server_set_body_policy(ctx->server, fv_router_body_policy, ctx->router);
    fv_error_t lerr;
    if ((rc = fv_http_server_listen(ctx->server, cfg->general.bind, ctx->port, &lerr)) < 0)
        return fv_error_set(err, rc, "%s: cannot listen on %s", m->name, lerr.msg);
    ctx->port = fv_http_server_port(ctx->server);
    snprintf(ctx->registry_pass_msg, sizeof(ctx->registry_pass_msg),
             "registered with %s:%d as %s", rt->registry_host, rt->registry_port,
             ctx->instance_id);
    snprintf(ctx->registry_warn_msg, sizeof(ctx->registry_warn_msg),
             "not registered with %s:%d (retrying)", rt->registry_host, rt->registry_port);
    fv_log_info("runtime", "%s listening on http://%s:%d", m->name, cfg->general.bind, ctx->port);
    fv__ticks_start(ctx);
    return 0;
}

int fv_runtime_start(fv_runtime_t *rt, const int *which, size_t count, fv_error_t *err)
{
    int order[FV_MOD_COUNT];
    int rc;

    if (count == 0 || count > FV_MOD_COUNT)
        return fv_error_set(err, FV_EINVAL, "no modules to start");
    if ((rc = order_modules(which, count, order, err)) < 0)
        return rc;
    rt->state = RT_RUNNING;
    if ((rc = open_stores(rt, which, count, err)) < 0)
        return rc;
    /* One bus per process: in-process only, unless the kv store is Redis, which then carries
     * events between processes. */
    fv_bus_opts_t bus_opts = {.kv = rt->stores ? fv_stores_kv(rt->stores) : NULL};
    if ((rc = fv_bus_new(rt->loop, &bus_opts, &rt->bus)) < 0)
        return fv_error_set(err, rc, "cannot create the event bus: %s", fv_strerror(rc));
    /* one message limit for calls in process and over gRPC */
    fv_rpc_opts_t rpc_opts = {.max_message_bytes = rt->cfg->grpc.max_message_bytes};
    if ((rc = fv_rpc_new(rt->loop, &rpc_opts, &rt->rpc)) < 0)
        return fv_error_set(err, rc, "cannot create the call layer: %s", fv_strerror(rc));

    fv_config_registry_addr(rt->cfg, rt->registry_host, sizeof(rt->registry_host),
                            &rt->registry_port);
    if ((rc = fv_registry_client_new(rt->loop, rt->registry_host, rt->registry_port, rt->cfg,
                                     &rt->registry)) < 0)
        return fv_error_set(err, rc, "cannot create the registry client: %s", fv_strerror(rc));
    /* calls to modules this process does not serve: gRPC to an instance the registry names,
     * from a watched list of each module called */
    if ((rc = fv__peers_new(rt->loop, rt->registry, &rt->peers)) < 0)
        return fv_error_set(err, rc, "cannot watch the registry: %s", fv_strerror(rc));
    if ((rc = fv_grpc_transport_new(rt->loop, rt->rpc, fv__peers_resolve, rt->peers,
                                    rt->cfg->grpc.max_message_bytes, &rt->grpc_transport)) < 0)
        return fv_error_set(err, rc, "cannot create the gRPC transport: %s", fv_strerror(rc));
    fv_grpc_transport_set_timeouts(rt->grpc_transport, rt->cfg->grpc.connect_timeout_ms,
                                   rt->cfg->grpc.keepalive_ms, rt->cfg->grpc.keepalive_ms);

    for (size_t i = 0; i < count; i++)
        if ((rc = start_one(rt, order[i], err)) < 0)
            return rc;

    for (size_t i = 0; i < rt->mod_count; i++) {
        fv_module_ctx_t *ctx = rt->mods[i];
        char port_meta[16];
        snprintf(port_meta, sizeof(port_meta), "%d", ctx->port);
        const char *tags[] = {"finalverse", FV_VERSION};
        const char *meta[] = {"version", FV_VERSION, "revision", FV_GIT_REV};
        fv_registry_instance_t inst = {
            .name = ctx->mod->name,
            .id = ctx->instance_id,
            .address = rt->cfg->general.advertise,
            .port = ctx->port,
            .tags = tags,
            .tag_count = 2,
            .meta = meta,
            .meta_count = 2,
        };
        if ((rc = fv_registry_client_add(rt->registry, &inst)) < 0)
            return fv_error_set(err, rc, "%s: cannot start registration: %s", ctx->mod->name,
                                fv_strerror(rc));
    }
    return 0;
}

void fv_runtime_print_table(const fv_runtime_t *rt, FILE *out)
{
    fprintf(out, "Finalverse %s (%s): %zu component%s on %s, data in %s\n\n", FV_VERSION,
            FV_GIT_REV, rt->mod_count, rt->mod_count == 1 ? "" : "s", rt->cfg->general.bind,
            rt->cfg->general.data_dir);
    fprintf(out, "  %-18s %-28s %s\n", "COMPONENT", "URL", "ROLE");
    /* The doors first (registry, gateway), then the rest in list order. */
    int display_order[FV_MOD_COUNT];
    int n = 0;
    display_order[n++] = FV_MOD_SERVICE_REGISTRY;
    display_order[n++] = FV_MOD_API_GATEWAY;
    for (int i = 0; i < FV_MOD_COUNT; i++)
        if (i != FV_MOD_SERVICE_REGISTRY && i != FV_MOD_API_GATEWAY)
            display_order[n++] = i;
    const char *host = rt->cfg->general.advertise;
    for (int k = 0; k < FV_MOD_COUNT; k++) {
        for (size_t i = 0; i < rt->mod_count; i++) {
            const fv_module_ctx_t *ctx = rt->mods[i];
            if (ctx->index != display_order[k])
                continue;
            char url[300];
            snprintf(url, sizeof(url), "%s://%s:%d",
                     ctx->index == FV_MOD_WEBSOCKET_GATEWAY ? "ws" : "http", host, ctx->port);
            fprintf(out, "  %-18s %-28s %s\n", ctx->mod->name, url,
                    fv_components[ctx->index].role);
        }
    }
    fprintf(out, "\nCtrl-C stops it gracefully.\n");
    fflush(out);
}

/* ---- shutdown ---- */

static void finish_if_closed(fv_runtime_t *rt)
{
    if (rt->state == RT_CLOSING && rt->closing == 0) {
        rt->state = RT_DONE;
        fv_log_info("runtime", "stopped");
    }
}

void fv__runtime_handle_closed(fv_runtime_t *rt)
{
    rt->closing--;
    finish_if_closed(rt);
}

static void on_server_closed(fv_http_server_t *s, void *data)
{
    fv__runtime_handle_closed(data);
}

/* The stores, the call layer: a part of the runtime whose close was counted has finished. */
static void on_part_closed(void *data)
{
    fv__runtime_handle_closed(data);
}

/* The bus borrows the kv store: the stores close only after the bus has. */
static void on_bus_closed(void *data)
{
    fv_runtime_t *rt = data;
    if (rt->stores) {
        rt->closing++;
        fv_stores_close(rt->stores, on_part_closed, rt);
        rt->stores = NULL;
    }
    fv__runtime_handle_closed(rt);
}

static void on_handle_closed(uv_handle_t *h)
{
    fv__runtime_handle_closed(h->data);
}

/* Requests on every listener, and calls between modules, still under way. */
static size_t busy_requests(const fv_runtime_t *rt)
{
    size_t busy = fv_rpc_in_flight(rt->rpc);
    for (size_t i = 0; i < rt->mod_count; i++)
        if (rt->mods[i]->server)
            busy += fv_http_server_busy(rt->mods[i]->server);
    return busy;
}

static void close_everything(fv_runtime_t *rt)
{
    rt->state = RT_CLOSING;
    /* Held while handing out closes, so a close callback that runs early cannot finish us
     * before every close has been requested. */
    rt->closing++;
    for (size_t i = rt->mod_count; i-- > 0;) {
        fv_module_ctx_t *ctx = rt->mods[i];
        rt->closing += fv__ticks_close(ctx);
        if (ctx->server) {
            rt->closing++;
            fv_http_server_close(ctx->server, on_server_closed, rt);
            ctx->server = NULL;
        }
    }
    if (rt->grpc_transport) {
        /* before the call layer: its calls must hear their end while the rpc is there */
        rt->closing++;
        fv_grpc_transport_close(rt->grpc_transport, on_part_closed, rt);
        rt->grpc_transport = NULL;
    }
    if (rt->peers) {
        /* before the registry client: its watches stop here; what the transport's resolutions
         * are still owed is answered (cancelled) so that it can finish closing */
        rt->closing++;
        fv__peers_close(rt->peers, on_part_closed, rt);
        rt->peers = NULL;
    }
    if (rt->rpc) {
        rt->closing++;
        fv_rpc_close(rt->rpc, on_part_closed, rt);
        rt->rpc = NULL;
    }
    if (rt->registry) {
        rt->closing++;
        fv_registry_client_close(rt->registry, on_part_closed, rt);
        rt->registry = NULL;
    }
    if (rt->bus) {
        rt->closing++;
        fv_bus_close(rt->bus, on_bus_closed, rt);
        rt->bus = NULL;
    } else if (rt->stores) {
        rt->closing++;
        fv_stores_close(rt->stores, on_part_closed, rt);
        rt->stores = NULL;
    }
    if (rt->drain_timer_on) {
        rt->closing++;
        uv_close((uv_handle_t *)&rt->drain_timer, on_handle_closed);
        rt->drain_timer_on = false;
    }
    if (rt->signals_on) {
        rt->closing += 2;
        uv_close((uv_handle_t *)&rt->sigint, on_handle_closed);
        uv_close((uv_handle_t *)&rt->sigterm, on_handle_closed);
        rt->signals_on = false;
    }
    fv__runtime_handle_closed(rt);
}

static void on_module_closed(fv_module_ctx_t *ctx)
{
    fv_runtime_t *rt = ctx->rt;
    if (ctx->state != MODULE_CLOSING) {
        fv_log_warn("runtime", "%s: close reported twice: ignored", ctx->mod->name);
        return;
    }
    ctx->state = MODULE_CLOSED;
    fv_log_debug("runtime", "%s closed", ctx->mod->name);
    if (--rt->modules_closing == 0 && rt->state == RT_CLOSING_MODULES)
        close_everything(rt);
}

/* After the drain: every module whose start() ran is closed, in reverse start order, and
 * reports back; the listeners and stores close only then, so a module's last callbacks still
 * find them. */
static void close_modules(fv_runtime_t *rt)
{
    rt->state = RT_CLOSING_MODULES;
    rt->drain_deadline_ms = fv_now_ms() + rt->cfg->general.drain_timeout_ms;
    rt->modules_closing = 1;     /* held while handing out closes */
    for (size_t i = rt->mod_count; i-- > 0;) {
        fv_module_ctx_t *ctx = rt->mods[i];
        fv__ticks_stop(ctx);
        if (!ctx->start_called || ctx->state >= MODULE_CLOSING) {
            ctx->state = MODULE_CLOSED;
            continue;
        }
        ctx->state = MODULE_CLOSING;
        fv__module_unsubscribe_all(ctx);
        if (!ctx->mod->close) {
            ctx->state = MODULE_CLOSED;
            continue;
        }
        rt->modules_closing++;
        ctx->mod->close(ctx, on_module_closed);
    }
    if (--rt->modules_closing == 0)
        close_everything(rt);
}

static void on_drain_tick(uv_timer_t *t)
{
    fv_runtime_t *rt = t->data;
    if (rt->state == RT_CLOSING_MODULES) {
        if (fv_now_ms() < rt->drain_deadline_ms)
            return;
        for (size_t i = 0; i < rt->mod_count; i++)
            if (rt->mods[i]->state == MODULE_CLOSING)
                fv_log_error("runtime", "%s did not finish closing in time; exiting anyway",
                             rt->mods[i]->mod->name);
        rt->cut_off = true;
        close_everything(rt);
        return;
    }
    if (rt->state != RT_DRAINING)
        return;
    size_t busy = busy_requests(rt);
    if (busy == 0) {
        fv_log_info("runtime", "drained");
        close_modules(rt);
    } else if (fv_now_ms() >= rt->drain_deadline_ms) {
        fv_log_warn("runtime", "drain deadline passed with %zu request%s in flight; closing", busy,
                    busy == 1 ? "" : "s");
        rt->cut_off = true;
        close_modules(rt);
    }
}

static void on_deregistered(void *data)
{
    fv_runtime_t *rt = data;
    rt->state = RT_DRAINING;
    for (size_t i = rt->mod_count; i-- > 0;) {
        fv_module_ctx_t *ctx = rt->mods[i];
        if (ctx->state != MODULE_READY)
            continue;
        ctx->state = MODULE_QUIESCED;
        if (ctx->mod->quiesce)
            ctx->mod->quiesce(ctx);
        fv_rpc_quiesce(rt->rpc, ctx->mod->name);
    }
    for (size_t i = rt->mod_count; i-- > 0;)
        if (rt->mods[i]->server)
            fv_http_server_stop_accepting(rt->mods[i]->server);
    rt->drain_deadline_ms = fv_now_ms() + rt->cfg->general.drain_timeout_ms;
    uv_timer_init(rt->loop, &rt->drain_timer);
    rt->drain_timer.data = rt;
    rt->drain_timer_on = true;
    /* Polling every 20 ms keeps the drain simple; it runs only during shutdown. */
    uv_timer_start(&rt->drain_timer, on_drain_tick, 0, 20);
}

void fv_runtime_shutdown(fv_runtime_t *rt)
{
    if (rt->state >= RT_DEREGISTERING)
        return;
    fv_log_info("runtime", "shutting down: deregistering, then draining (deadline %u ms)",
                rt->cfg->general.drain_timeout_ms);
    rt->state = RT_DEREGISTERING;
    /* No tick starts new work once shutdown has begun. */
    for (size_t i = 0; i < rt->mod_count; i++)
        fv__ticks_stop(rt->mods[i]);
    /* Deregister now, but keep the client until the end: the gateway still looks up the
     * instances it forwards to while it drains. */
    if (rt->registry) {
        fv_registry_client_leave(rt->registry, on_deregistered, rt);
    } else {
        on_deregistered(rt);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    fv_runtime_t *rt = s->data;
    if (++rt->signal_count > 1) {
        fv_log_warn("runtime", "second signal (%s): exiting now", strsignal(signum));
        _exit(1);
    }
    fv_log_info("runtime", "%s received", strsignal(signum));
    fv_runtime_shutdown(rt);
}

int fv_runtime_handle_signals(fv_runtime_t *rt)
{
    int rc;
    signal(SIGPIPE, SIG_IGN);
    if ((rc = uv_signal_init(rt->loop, &rt->sigint)) < 0)
        return rc;
    if ((rc = uv_signal_init(rt->loop, &rt->sigterm)) < 0) {
        uv_close((uv_handle_t *)&rt->sigint, NULL);
        return rc;
    }
    rt->sigint.data = rt->sigterm.data = rt;
    rt->signals_on = true;
    if ((rc = uv_signal_start(&rt->sigint, on_signal, SIGINT)) < 0 ||
        (rc = uv_signal_start(&rt->sigterm, on_signal, SIGTERM)) < 0)
        return rc;
    return 0;
}

int fv_runtime_run(fv_runtime_t *rt)
{
    if (rt->state == RT_NEW)
        rt->state = RT_RUNNING;
    while (rt->state != RT_DONE) {
        if (uv_run(rt->loop, UV_RUN_ONCE) == 0 && rt->state < RT_DEREGISTERING) {
            /* Nothing left to wait on while still "running": shut down. */
            fv_runtime_shutdown(rt);
        }
    }
    return rt->cut_off ? 1 : 0;
}

void fv_runtime_free(fv_runtime_t *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->mod_count; i++) {
        fv__module_ctx_dispose(rt->mods[i]);
        fv_free(rt->mods[i]);
    }
    fv_free(rt);
}
