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
#include "core/err.h"
#include "net/router.h"

typedef struct fv_module_ctx fv_module_ctx_t;

typedef struct fv_module {
    const char *name;              /* one of fv_components[].name */
    const char *const *deps;       /* names started before this one; NULL-terminated or NULL */
    /* Called once on the loop before the listener opens; register routes and checks here.
     * 0, or a negative code with err saying why (the process then exits non-zero). */
    int (*start)(fv_module_ctx_t *ctx, fv_error_t *err);
    /* Called once at shutdown after the listener stopped accepting; release what start took.
     * May be NULL. */
    void (*stop)(fv_module_ctx_t *ctx);
    /* The stores (FV_STORE_* bits of src/store/stores.h) it works on: the runtime opens the
     * union for the modules of a process before any start(), and adds a /health check for
     * each. */
    unsigned stores;
} fv_module_t;

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

/* Module-private state, owned by the module (free it in stop). */
void fv_module_set_data(fv_module_ctx_t *ctx, void *data);
void *fv_module_data(fv_module_ctx_t *ctx);

/* Adds a check reported by GET /health; name is copied. */
void fv_module_add_check(fv_module_ctx_t *ctx, const char *name, fv_check_fn fn, void *data);

/* Adds a gauge to GET /metrics: fn returns its current value. name must be a valid Prometheus
 * metric name (finalverse_... ); help is one line. Both copied. */
typedef double (*fv_gauge_fn)(void *data);
void fv_module_add_gauge(fv_module_ctx_t *ctx, const char *name, const char *help,
                         fv_gauge_fn fn, void *data);

#endif
