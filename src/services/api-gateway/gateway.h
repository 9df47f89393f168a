/* gateway.h - what the api-gateway files share. */
#ifndef FV_SERVICES_API_GATEWAY_GATEWAY_H
#define FV_SERVICES_API_GATEWAY_GATEWAY_H

#include <stdbool.h>

#include "net/http_client.h"
#include "runtime/module.h"

/* [gateway] in finalverse.toml: the module's own settings (module.c declares the keys). */
typedef struct gateway_settings {
    uint32_t upstream_timeout_ms;
} gateway_settings_t;

typedef struct fv_sql fv_sql_t;

typedef struct gateway {
    fv_module_ctx_t *ctx;
    const fv_config_t *cfg;       /* [auth] settings among others */
    fv_sql_t *sql;                /* accounts (auth.c) */
    size_t hashing;               /* password hashes queued or running (auth.c) */
    size_t hashes_running;        /* of those, on the thread pool */
    struct auth_call *hash_wait;  /* the queued ones, oldest first */
    struct auth_call *hash_wait_tail;
    fv_http_client_t *upstream;   /* pooled connections to the services */
    uint32_t upstream_timeout_ms;
    size_t in_flight;             /* proxied requests not finished, lookups included */
    bool stopping;                /* close() ran: free when in_flight reaches 0 */
    fv_module_closed_cb closed_cb;/* reported then */
} gateway_t;

/* Frees gw, and reports the module closed, once it is closing and nothing is in flight. */
void gateway_release(gateway_t *gw);

/* Routes /api/<module>/<rest> to a healthy instance of <module> found in the registry. */
void gateway_proxy(fv_http_req_t *req, void *gateway);

/* Adds the /api/auth/... routes (auth.c): register, login, guest and me. Literal, so they win
 * over /api/:service/... . 0 or a negative code. */
FV_MUST_USE int gateway_auth_routes(gateway_t *gw, fv_router_t *router);

#endif
