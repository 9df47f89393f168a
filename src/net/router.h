/* router.h - method + path routing with parameters.
 *
 * Patterns are literal segments, ":name" segments (one segment, any text but '/') and a final
 * "*name" segment that takes the rest of the path (possibly empty, possibly with '/'). A literal
 * segment beats a parameter at the same depth. A path that matches no pattern gets 404; one
 * that matches a pattern but not its method gets 405 with an Allow header. HEAD is served by a
 * GET route when no HEAD route exists. Dispatch percent-decodes ":name" values (a decoded NUL is
 * refused with 400) and hands "*name" over as sent, so a proxy forwards the path unchanged. */
#ifndef FV_NET_ROUTER_H
#define FV_NET_ROUTER_H

#include <stdbool.h>

#include "core/err.h"
#include "net/http_server.h"

typedef struct fv_router fv_router_t;

fv_router_t *fv_router_new(void);
void fv_router_free(fv_router_t *r);   /* NULL-safe */

/* Adds a route. method is "GET", "POST", ... or "*" for any. pattern must start with '/' and
 * is copied. A duplicate (same method, same pattern) is FV_EEXIST; a malformed pattern is
 * FV_EINVAL. */
FV_MUST_USE int fv_router_add(fv_router_t *r, const char *method, const char *pattern,
                              fv_http_handler_cb handler, void *data);

/* As fv_router_add, with the route's own request body limit in bytes (0: no body at all),
 * instead of the server's max_body_bytes. */
FV_MUST_USE int fv_router_add_limited(fv_router_t *r, const char *method, const char *pattern,
                                      fv_http_handler_cb handler, void *data,
                                      size_t max_body_bytes);

/* As fv_router_add_limited, and the handler reads the request body as it arrives
 * (fv_http_req_read_body) instead of getting it whole: for uploads and proxies. */
FV_MUST_USE int fv_router_add_streaming(fv_router_t *r, const char *method, const char *pattern,
                                        fv_http_handler_cb handler, void *data,
                                        size_t max_body_bytes);

/* The body policy of the route req's head matches (its limit, whether it streams); left as
 * given when the route has none. The fv_http_body_policy_cb shape, with data = the router
 * (fv_http_server_set_body_policy). */
void fv_router_body_policy(const fv_http_req_t *req, void *router, fv_http_body_policy_t *pol);

/* Dispatches req: sets its params and route, then calls the handler, or replies 404/405.
 * Has the fv_http_handler_cb shape, with data = the router. */
void fv_router_dispatch(fv_http_req_t *req, void *router);

/* Pure lookup for tests and tools: 0 when found (and fills handler/data/route pattern), or
 * FV_ENOENT, or FV_ENOTALLOWED with *allow set to a static-lifetime "GET, POST" list owned by
 * the router. params receives up to max_params name/value pairs written into scratch. */
typedef struct fv_route_param {
    const char *name;
    fv_slice_t value;   /* as in the path, not decoded */
    bool rest;          /* the final "*name" segment */
} fv_route_param_t;

int fv_router_match(const fv_router_t *r, fv_slice_t method, fv_slice_t path,
                    fv_http_handler_cb *handler, void **data, const char **route,
                    fv_route_param_t *params, size_t max_params, size_t *param_count,
                    const char **allow);

#endif
