/* runtime_internal.h - what runtime.c, context.c and endpoints.c share: the module context. */
#ifndef FV_RUNTIME_RUNTIME_INTERNAL_H
#define FV_RUNTIME_RUNTIME_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "net/grpc_server.h"
#include "net/http_server.h"
#include "runtime/metrics.h"
#include "runtime/module.h"
#include "runtime/runtime.h"
#include "runtime/tick_clock.h"

typedef struct module_tick module_tick_t;

/* Where a module is in its lifecycle; forward only. */
typedef enum module_state {
    MODULE_NEW,          /* not started */
    MODULE_STARTING,     /* start() returned FV_EAGAIN; waiting for fv_module_ready() */
    MODULE_READY,        /* started; listener open, ticks running */
    MODULE_FAILED,       /* start() failed: close() is still owed */
    MODULE_QUIESCED,     /* shutdown began */
    MODULE_CLOSING,      /* close() called, done not yet reported */
    MODULE_CLOSED,
} module_state_t;

typedef struct module_check {
    char *name;
    fv_check_fn fn;
    void *data;
} module_check_t;

struct fv_module_ctx {
    fv_runtime_t *rt;
    const fv_module_t *mod;
    int index;                   /* FV_MOD_* */
    int port;
    char instance_id[128];       /* the registry ID */
    fv_router_t *router;
    fv_http_server_t *server;
    fv_grpc_server_t *grpc;      /* gRPC (h2c) on the same port; freed with the context */
    fv_metrics_t *metrics;
    void *data;
    module_check_t *checks;
    size_t check_count;
    uint64_t started_ms;
    fv_buf_t scratch;            /* /info body (loop thread only) */
    fv_buf_t health;             /* the last /health body, rendered at loop time health_at */
    uint64_t health_at;
    int health_status;           /* its HTTP status; 0 = none rendered */
    char registry_pass_msg[512]; /* the registry check's two answers, made once at start */
    char registry_warn_msg[512];
    module_state_t state;
    bool start_called;           /* start() ran: close() is owed, whatever it returned */
    int ready_rc;                /* fv_module_ready()'s status */
    fv_error_t ready_err;
    module_tick_t **ticks;
    size_t tick_count;
    fv_bus_sub_t **subs;         /* its bus subscriptions, ended before its close() */
    size_t sub_count;
};

/* The runtime's registry client (NULL before start). */
fv_registry_client_t *fv__runtime_registry(fv_runtime_t *rt);
const fv_config_t *fv__runtime_config(fv_runtime_t *rt);
fv_stores_t *fv__runtime_stores(fv_runtime_t *rt);
fv_bus_t *fv__runtime_bus(fv_runtime_t *rt);
fv_rpc_t *fv__runtime_rpc(fv_runtime_t *rt);
uv_loop_t *fv__runtime_loop(fv_runtime_t *rt);

/* Adds GET /health, /info, /metrics (and their OPTIONS) to ctx's router. */
int fv__endpoints_add(fv_module_ctx_t *ctx);

/* The worst of ctx's health checks, run now (what GET /health reports). */
fv_check_status_t fv__module_health_worst(fv_module_ctx_t *ctx);

/* grpc_health.c: serves grpc.health.v1.Health for ctx on its gRPC server (ctx->grpc set). */
int fv__grpc_health_serve(fv_module_ctx_t *ctx);
/* grpc_probe.c: serves finalverse.testing.v1.Probe for ctx (grpc.probe_service). */
int fv__grpc_probe_serve(fv_module_ctx_t *ctx);

/* The HTTP observer that feeds ctx's metrics. */
void fv__endpoints_observe(const fv_http_req_t *req, int status, uint64_t duration_ns,
                           void *ctx);

void fv__module_ctx_dispose(fv_module_ctx_t *ctx);

/* Ends every bus subscription the module holds (before its close). */
void fv__module_unsubscribe_all(fv_module_ctx_t *ctx);

/* A handle the runtime counts in its shutdown has closed (ticker.c's timers). */
void fv__runtime_handle_closed(fv_runtime_t *rt);

/* ticker.c: start a ready module's ticks; stop them (shutdown began); close their timers,
 * returning how many close callbacks will reach fv__runtime_handle_closed; free them. */
void fv__ticks_start(fv_module_ctx_t *ctx);
void fv__ticks_stop(fv_module_ctx_t *ctx);
size_t fv__ticks_close(fv_module_ctx_t *ctx);
void fv__ticks_dispose(fv_module_ctx_t *ctx);

#endif
