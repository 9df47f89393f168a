/* module.h - what a module is, and what the runtime hands it.
 *
 * Every component (the registry, both gateways, the eleven game services) is one fv_module_t.
 * The runtime gives each running module its own listener on its own port with a router that
 * already serves GET /health, /info and /metrics; start() adds the module's routes and health
 * checks. Modules never reach into each other's memory, even in one process: they talk through
 * HTTP/gRPC, the event bus and the data layer, so `up` and `serve` are the same program. */
#ifndef FV_RUNTIME_MODULE_H
#define FV_RUNTIME_MODULE_H

#include <uv.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/buf.h"
#include "core/err.h"
#include "net/router.h"
#include "rpc/rpc.h"

typedef struct fv_module_ctx fv_module_ctx_t;

/* close() reports with this once the module's handles are all closed. */
typedef void (*fv_module_closed_cb)(fv_module_ctx_t *ctx);

/* The lifecycle, in libuv's terms (every hook may be NULL):
 *
 *   start    once, on the loop, before the listener opens: add routes, checks, ticks, methods.
 *            0: ready now. FV_EAGAIN: the module finishes later with fv_module_ready(), and
 *            modules that depend on it start only then. Another negative code, with err saying
 *            why: the process exits non-zero (after closing what did start).
 *   quiesce  once, when shutdown begins (after deregistration, before the drain): stop taking
 *            new work of the module's own making. Ticks have already been stopped by the
 *            runtime; requests and calls in flight go on and are drained.
 *   close    once, after the drain (or its deadline): release everything start took and call
 *            done(ctx) when the last of the module's handles has closed, from a callback, never
 *            before its close callbacks ran. Called for a module whose start failed too. */
typedef struct fv_module {
    const char *name;              /* one of fv_components[].name */
    const char *const *deps;       /* names started before this one; NULL-terminated or NULL */
    int (*start)(fv_module_ctx_t *ctx, fv_error_t *err);
    void (*quiesce)(fv_module_ctx_t *ctx);
    void (*close)(fv_module_ctx_t *ctx, fv_module_closed_cb done);
    /* The stores (FV_STORE_* bits of src/store/stores.h) it works on: the runtime opens the
     * union for the modules of a process before any start(), and adds a /health check for
     * each. */
    unsigned stores;
    /* Its own settings: a section of finalverse.toml (settings_section, e.g. "gateway") whose
     * keys (settings[0..settings_count), made with FV_CFG_* of config/schema.h, offsets into a
     * struct of settings_size bytes) load, validate, show and override from the environment
     * like every other key. fv_module_settings() hands start() the typed struct. */
    const char *settings_section;
    const fv_cfg_field_t *settings;
    size_t settings_count;
    size_t settings_size;
} fv_module_t;

/* The module's typed settings (its settings_size struct, filled from the config), or NULL when
 * it declares none. Valid for the life of the process. */
const void *fv_module_settings(fv_module_ctx_t *ctx);

/* Finishes a start() that returned FV_EAGAIN: status 0 (ready) or a negative code with err
 * (may be NULL) saying why. Only once; later calls are ignored. */
void fv_module_ready(fv_module_ctx_t *ctx, int status, const fv_error_t *err);

/* ---- ticks ----
 *
 * A tick runs fn at a fixed rate on the loop from the module's readiness until shutdown begins
 * (before quiesce). Tick k runs at start + k * period, measured on the monotonic clock, so
 * there is no drift; a handler that overruns its period is counted (finalverse_tick_overruns_
 * total), and when the loop falls far behind at most a few due ticks run back to back and the
 * rest are skipped and counted, never replayed as a burst. Duration and lateness histograms are
 * on /metrics with the tick's name. */
typedef struct fv_tick_info {
    uint64_t seq;                  /* 1, 2, ... per tick */
    uint64_t scheduled_ns;         /* monotonic time it was due (uv_hrtime's clock) */
    uint64_t lateness_ns;          /* how late it started */
    uint64_t period_ns;
} fv_tick_info_t;

typedef void (*fv_tick_fn)(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data);

/* Adds a tick of rate_hz (1..1000) runs a second. name ([a-z0-9_], copied) labels its metrics.
 * Call from start(). 0, or FV_EINVAL for a bad name or rate, or FV_EEXIST for a second tick of
 * that name. */
FV_MUST_USE int fv_module_add_tick(fv_module_ctx_t *ctx, const char *name, uint32_t rate_hz,
                                   fv_tick_fn fn, void *data);

/* A health check fills status and a short message. Runs on the loop; must not block. */
typedef enum fv_check_status {
    FV_CHECK_PASS = 0,
    FV_CHECK_WARN = 1,
    FV_CHECK_FAIL = 2,
} fv_check_status_t;

typedef void (*fv_check_fn)(void *data, fv_check_status_t *status, char *msg, size_t msg_len);

uv_loop_t *fv_module_loop(fv_module_ctx_t *ctx);
const fv_config_t *fv_module_config(fv_module_ctx_t *ctx);
fv_router_t *fv_module_router(fv_module_ctx_t *ctx);
const char *fv_module_name(fv_module_ctx_t *ctx);
int fv_module_port(fv_module_ctx_t *ctx);
int fv_module_index(fv_module_ctx_t *ctx);

/* The process's registry client (src/registry/registry.h), for lookups of other services. */
typedef struct fv_registry_client fv_registry_client_t;
fv_registry_client_t *fv_module_registry(fv_module_ctx_t *ctx);

/* The process's data layer (src/store/stores.h): the stores this module asked for are open. */
typedef struct fv_stores fv_stores_t;
fv_stores_t *fv_module_stores(fv_module_ctx_t *ctx);

/* The process's event bus (src/bus/bus.h): publish with fv_bus_publish(fv_module_bus(ctx),
 * ...). In one process events are delivered without a round trip; when redis.url is Redis they
 * also reach the modules of every other process. */
typedef struct fv_bus fv_bus_t;
fv_bus_t *fv_module_bus(fv_module_ctx_t *ctx);

/* Subscribes the module (fv_bus_subscribe's arguments): the runtime ends the subscription
 * right before the module's close(), so no event reaches a module that has let go of its
 * state. *out (may be NULL) allows an earlier fv_module_unsubscribe(). */
typedef struct fv_bus_sub fv_bus_sub_t;
typedef struct fv_bus_sub_opts fv_bus_sub_opts_t;
typedef struct fv_bus_event fv_bus_event_t;
typedef void (*fv_bus_event_cb)(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data);
FV_MUST_USE int fv_module_subscribe(fv_module_ctx_t *ctx, const char *pattern,
                                    const fv_bus_sub_opts_t *opts, fv_bus_event_cb cb,
                                    void *data, fv_bus_sub_t **out);
void fv_module_unsubscribe(fv_module_ctx_t *ctx, fv_bus_sub_t *sub);

/* ---- calls between modules (src/rpc/rpc.h) ----
 *
 * A module serves its methods with fv_module_serve() from start(); any module calls any other
 * with fv_call(): in one process the call is encoded, delivered on a later loop turn and
 * decoded, exactly as it would cross the wire. A module that is not running here fails the call
 * with FV_EUNAVAILABLE (through the callback, never a hang). When shutdown begins the module
 * takes no new calls; calls in flight are drained with the requests. */
FV_MUST_USE int fv_module_serve(fv_module_ctx_t *ctx, const char *service,
                                const fv_rpc_method_t *methods, size_t count, void *data);
FV_MUST_USE int fv_call(fv_module_ctx_t *ctx, const char *module, const char *method,
                        const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                        uint32_t deadline_ms, fv_rpc_done_cb cb, void *data);
/* fv_call for a method that may run twice with the same effect (reads, "leave"): across
 * processes it is retried on another instance, with backoff within the deadline, when an
 * instance is unavailable (FV_RPC_IDEMPOTENT). */
FV_MUST_USE int fv_call_idempotent(fv_module_ctx_t *ctx, const char *module, const char *method,
                                   const ProtobufCMessage *in,
                                   const ProtobufCMessageDescriptor *out_type,
                                   uint32_t deadline_ms, fv_rpc_done_cb cb, void *data);

/* fv_call with options (rpc.h): request metadata, FV_RPC_IDEMPOTENT, a server-streaming
 * answer's messages one by one. *out (may be NULL) is the call's handle for fv_rpc_cancel and,
 * during cb, fv_rpc_req_answer_metadata. */
FV_MUST_USE int fv_call_with(fv_module_ctx_t *ctx, const char *module, const char *method,
                             const ProtobufCMessage *in,
                             const ProtobufCMessageDescriptor *out_type,
                             const fv_rpc_call_opts_t *opts, fv_rpc_done_cb cb, void *data,
                             fv_rpc_req_t **out);

/* Module-private state, owned by the module (free it in close). */
void fv_module_set_data(fv_module_ctx_t *ctx, void *data);
void *fv_module_data(fv_module_ctx_t *ctx);

/* Adds a check reported by GET /health; name is copied. */
void fv_module_add_check(fv_module_ctx_t *ctx, const char *name, fv_check_fn fn, void *data);

/* Adds a gauge to GET /metrics: fn returns its current value. name must be a valid Prometheus
 * metric name (finalverse_... ); help is one line. Both copied. A name ending in _total is a
 * count that only grows, and is typed counter. */
typedef double (*fv_gauge_fn)(void *data);
void fv_module_add_gauge(fv_module_ctx_t *ctx, const char *name, const char *help,
                         fv_gauge_fn fn, void *data);
/* Gauge functions for a module's own counters, read where they live: data points at a
 * uint64_t, a size_t or a double. */
double fv_gauge_read_u64(void *field);
double fv_gauge_read_size(void *field);
double fv_gauge_read_double(void *field);

/* Adds series with labels of the module's own (per route, per upstream) to GET /metrics: fn
 * appends them, whole (HELP, TYPE, samples with module="<module>"), at render time. */
typedef int (*fv_metrics_fn)(void *data, const char *module, fv_buf_t *out);
void fv_module_add_metrics(fv_module_ctx_t *ctx, fv_metrics_fn fn, void *data);

#endif
