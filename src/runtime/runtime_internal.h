/* runtime_internal.h - what runtime.c, context.c and endpoints.c share: the module context. */
#ifndef FV_RUNTIME_RUNTIME_INTERNAL_H
#define FV_RUNTIME_RUNTIME_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "net/http_server.h"
#include "runtime/metrics.h"
#include "runtime/module.h"
#include "runtime/runtime.h"

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
    bool started;                /* start() returned 0: stop() is owed */
};

/* The runtime's registry client (NULL before start). */
fv_registry_client_t *fv__runtime_registry(fv_runtime_t *rt);
const fv_config_t *fv__runtime_config(fv_runtime_t *rt);
fv_stores_t *fv__runtime_stores(fv_runtime_t *rt);
uv_loop_t *fv__runtime_loop(fv_runtime_t *rt);

/* Adds GET /health, /info, /metrics (and their OPTIONS) to ctx's router. */
int fv__endpoints_add(fv_module_ctx_t *ctx);

/* The HTTP observer that feeds ctx's metrics. */
void fv__endpoints_observe(const fv_http_req_t *req, int status, uint64_t duration_ns,
                           void *ctx);

void fv__module_ctx_dispose(fv_module_ctx_t *ctx);

#endif
