/* gateway.h - what the api-gateway files share. */
#ifndef FV_SERVICES_API_GATEWAY_GATEWAY_H
#define FV_SERVICES_API_GATEWAY_GATEWAY_H

#include <stdbool.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/token.h"
#include "net/http_client.h"
#include "runtime/module.h"

/* [gateway] in finalverse.toml: the module's own settings (module.c declares the keys). */
typedef struct gateway_settings {
    uint32_t upstream_timeout_ms;
    const char *routes;           /* extra prefixes (routes.c) */
    bool access_log;              /* one info line per proxied request */
    uint32_t pipeline_depth;      /* requests pipelined on one upstream connection */
    /* rate limits (ratelimit.c): requests a minute and burst, per player (per IP without a
     * token) on forwarded routes, and per IP on /api/auth; 0 a minute: off */
    uint32_t rate_limit_per_minute;
    uint32_t rate_limit_burst;
    uint32_t auth_rate_limit_per_minute;
    uint32_t auth_rate_limit_burst;
    /* CORS (cors.c) */
    const char *cors_origins;     /* "" none, "*" any, or a comma-separated list */
    const char *cors_methods;
    const char *cors_headers;
    const char *cors_expose_headers;
    bool cors_credentials;
    uint32_t cors_max_age_s;
} gateway_settings_t;

typedef struct gw_upstream gw_upstream_t;
typedef struct gw_upstreams gw_upstreams_t;

/* A prefix forwarded to a service: /api/<module> (built in) or one of [gateway] routes. */
typedef struct gateway gateway_t;

typedef struct gw_route {
    gateway_t *gw;
    char prefix[128];             /* "/api/song-engine", "/assets" */
    char service[64];             /* registry name */
    bool strip;                   /* forward /<rest> (true) or the whole path */
    bool authenticated;           /* needs an access token (checked by auth) */
    uint32_t timeout_ms;          /* 0: the gateway's upstream_timeout_ms */
    size_t max_body_bytes;        /* 0: the gateway's upload limit */
    gw_upstream_t *up;            /* resolved at start */
    uint64_t requests;            /* answered, by class, for /metrics */
    uint64_t answers_5xx;
} gw_route_t;

typedef struct fv_sql fv_sql_t;

/* The /api/auth routes (auth.c), each behind a gate (CORS, rate limit). */
#define AUTH_ROUTES 6
struct auth_gate {
    gateway_t *gw;
    void (*fn)(fv_http_req_t *req, void *data);
    bool limited;
};

struct gateway {
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
    gw_upstreams_t *ups;          /* instances per service, watched (upstream.c) */
    gw_route_t *routes;           /* configured prefixes then one per module (routes.c) */
    size_t route_count;
    bool access_log;
    char id_prefix[17];           /* generated X-Request-Id: <this>-<counter> */
    bool stopping;                /* close() ran: free when in_flight reaches 0 */
    fv_module_closed_cb closed_cb;/* reported then */
    size_t module_route0;         /* routes[module_route0 + i]: /api/<module i> */
    fv_buf_t scratch;             /* request heads being built (proxy.c) */
    const gateway_settings_t *set;
    struct auth_gate auth_gates[AUTH_ROUTES];
    struct fv_kv *kv;             /* rate-limit buckets (memory: this process; redis: shared) */
    struct gw_tokens *tokens;     /* checked access tokens (tokens.c) */
    uint64_t limited;             /* answers 429 (for /metrics) */
    uint64_t limit_errors;        /* the kv store failed: let through */
    uint64_t cors_refused;        /* preflights refused */
    uint64_t token_refused;       /* forwarded requests with a bad token (401) */
};

/* Frees gw, and reports the module closed, once it is closing and nothing is in flight. */
void gateway_release(gateway_t *gw);

/* Routes /api/<module>/<rest> to a healthy instance of <module> found in the registry. */
void gateway_proxy(fv_http_req_t *req, void *gateway);
/* GET /ws with an upgrade: a tunnel to the websocket-gateway (wsproxy.c). 0 or <0. */
FV_MUST_USE int gateway_ws_routes(gateway_t *gw, fv_router_t *router);
/* Routes <prefix>[/<rest>] of a configured route (data: its gw_route_t). */
void gateway_route_proxy(fv_http_req_t *req, void *route);

/* ---- upstream.c: instances per service, from registry watches ---- */

typedef struct gw_instance {
    struct gw_instance *next;     /* in its upstream's list */
    gw_upstream_t *up;
    char host[64];
    int port;
    uint32_t outstanding;         /* requests on it now */
    uint32_t failures;            /* connection failures in a row */
    uint64_t skip_until_ms;       /* passive health: not chosen before (loop ms) */
    uint64_t requests, errors;    /* since it appeared */
    bool present;                 /* in the registry's last answer */
} gw_instance_t;

/* A caller waiting for a service's first instance list (embedded in the proxy's call). */
typedef struct gw_wait {
    struct gw_wait *next;
    void (*ready)(struct gw_wait *w, int rc);   /* 0, or FV_EBACKEND: no answer */
} gw_wait_t;

FV_MUST_USE int gw_upstreams_new(gateway_t *gw);
/* Stops the watches (close); the memory goes with gw_upstreams_free (release). */
void gw_upstreams_stop(gateway_t *gw);
void gw_upstreams_free(gateway_t *gw);
/* The service's upstream, watched from the first call on; NULL when out of room. */
gw_upstream_t *gw_upstream_get(gateway_t *gw, const char *service);
const char *gw_upstream_name(const gw_upstream_t *u);
/* 0 and *out (its outstanding count taken), FV_ENOENT: no instance; FV_EAGAIN: the list is
 * not known yet (wait with gw_upstream_wait); FV_EBACKEND: the registry was unreachable and no
 * list is known. avoid (may be NULL) is not chosen: the instance that just failed. */
FV_MUST_USE int gw_upstream_pick(gw_upstream_t *u, const gw_instance_t *avoid,
                                 gw_instance_t **out);
/* Queues w until the list is known; FV_ETOOBIG when too many wait. */
FV_MUST_USE int gw_upstream_wait(gw_upstream_t *u, gw_wait_t *w);
/* Drops w if queued (its caller went away). */
void gw_upstream_unwait(gw_upstream_t *u, gw_wait_t *w);
/* The request picked on i ended: rc 0 (an answer), or the upstream's failure; a connection
 * failure marks i to be skipped for a while. */
void gw_instance_done(gw_instance_t *i, int rc);
/* /metrics series per route and per instance (the fv_metrics_fn shape, data = gw). */
int gw_metrics(void *gateway, const char *module, fv_buf_t *out);
/* The effective table: routes with their instances and health. */
json_t *gw_routes_json(gateway_t *gw);

/* ---- routes.c: the table of forwarded prefixes ---- */

/* Parses [gateway] routes ("<prefix>=<service>[,strip][,timeout_ms=N][,max_body_bytes=N]
 * [,authenticated];...") into out (at most max). Count or FV_EINVAL with err. Pure. */
FV_MUST_USE int gw_routes_parse(const char *spec, gw_route_t *out, size_t max,
                                fv_error_t *err);
/* Normalises the path below a route's prefix (rest, raw as sent): "//" and "/./" collapse,
 * "/x/../" goes back, percent-encoded dots count as dots. "/" + result into out (NUL-ended).
 * 0, FV_EINVAL when ".." climbs above the prefix, FV_ETOOBIG when out is too small. Pure. */
FV_MUST_USE int gw_path_normalise(const char *rest, size_t len, char *out, size_t cap,
                                  size_t *out_len);
/* X-Request-Id a client may choose: 1-128 characters of A-Z a-z 0-9 . _ - */
bool gw_request_id_ok(const char *s, size_t len);

/* The request's id, as the gateway passes it upstream and answers it in X-Request-Id: the
 * client's own when gw_request_id_ok, else "<instance prefix>-<n>". */
#define GW_REQUEST_ID_MAX 130
void gw_request_id(const gateway_t *gw, fv_http_req_t *req, char out[GW_REQUEST_ID_MAX]);

/* ---- ratelimit.c: token buckets per client ---- */

typedef enum gw_limit_class {
    GW_LIMIT_API,                 /* forwarded routes: per player, else per IP */
    GW_LIMIT_AUTH,                /* /api/auth: per IP */
} gw_limit_class_t;

typedef struct gw_limit_result {
    bool allowed;
    bool revoked;                 /* refused: the request's access token is revoked */
    bool unlimited;               /* no limit applies (only the revocation was checked) */
    bool known;                   /* the store answered (headers to add) */
    uint64_t burst;
    uint64_t left;                /* whole tokens left */
    uint64_t wait_ms;             /* refused: until a token is there */
    double rate;                  /* tokens a second */
} gw_limit_result_t;

/* Takes a token for who (a player id, or NULL: the peer's IP) in cls, and in the same step
 * (one round trip) refuses the request when jti (NULL: none) names a revoked access token.
 * GW_LIMIT_GO: nothing to wait for (no limit and no token, or the kv store refused at once):
 * go on, allowed. GW_LIMIT_ANSWERED: *now holds the verdict already (the embedded store
 * answers within the call) and done will not run. GW_LIMIT_WAIT: done(data, res) runs later,
 * from the loop, whatever became of the client (the caller knows whether its request is still
 * there). A kv store that fails lets the request through. */
typedef enum gw_limit_state { GW_LIMIT_GO, GW_LIMIT_ANSWERED, GW_LIMIT_WAIT } gw_limit_state_t;
typedef void (*gw_limit_cb)(void *data, const gw_limit_result_t *res);
FV_MUST_USE gw_limit_state_t gw_limit_take(gateway_t *gw, fv_http_req_t *req,
                                           gw_limit_class_t cls, const char *who,
                                           const char *jti, gw_limit_result_t *now,
                                           gw_limit_cb done, void *data);
/* The kv key that marks access token jti revoked: FV_TOKEN_REVOKED_KEY_FMT (core/token.h). */
/* RateLimit-Limit, -Remaining, -Reset (and Retry-After when refused) onto req's answer. */
void gw_limit_headers(fv_http_req_t *req, const gw_limit_result_t *res);
/* The 429 answer, with the JSON error body. */
void gw_limit_reply(fv_http_req_t *req);

/* ---- cors.c: the CORS policy of [gateway] cors_* (Fetch standard) ---- */

/* Adds the CORS headers an actual request's answer carries (none without Origin, or for an
 * origin not allowed; Vary: Origin whenever a policy is set). */
void gw_cors_headers(gateway_t *gw, fv_http_req_t *req);
/* Whether [gateway] cors_origins sets a policy: then the gateway alone answers for CORS, and a
 * module's own Access-Control-* headers are not forwarded (two Allow-Origin values, or a
 * module's "*" where the policy names origins, would make browsers refuse the answer or let
 * in what the policy keeps out). */
bool gw_cors_policy_set(const gateway_t *gw);
/* A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here: 204
 * when origin, method and headers are allowed, else 403. Returns whether req was one. */
bool gw_cors_preflight(gateway_t *gw, fv_http_req_t *req);

/* Whether the comma-separated list holds item ("*" in it holds any, when !nocase): origins
 * compare exactly (browsers serialize them in lower case), methods and header names without
 * case. Pure. */
bool gw_cors_list_has(const char *list, fv_slice_t item, bool nocase);
/* Whether every name of a comma-separated Access-Control-Request-Headers value is in the
 * allowed list. Pure. */
bool gw_cors_headers_allowed(const char *allowed, fv_slice_t asked);

/* ---- tokens.c: access tokens checked once, then remembered until they expire ---- */

#define GW_TOKEN_CACHE 4096
typedef struct gw_tokens gw_tokens_t;
gw_tokens_t *gw_tokens_new(void);
void gw_tokens_free(gw_tokens_t *t);
/* fv_token_verify(secret, token, now_s, out), answered from the table for a token that
 * checked out before and has not expired. */
FV_MUST_USE int gw_token_check(gw_tokens_t *t, const char *secret, const char *token,
                               int64_t now_s, fv_token_claims_t *out);

/* The Bearer token of the Authorization header, in the request's arena, or NULL. */
const char *gw_bearer_token(fv_http_req_t *req);

/* ---- lockout.c: failed logins per account and per IP ---- */

/* Reads the counters: true and done(data, locked, retry_after_s) later, or false when there
 * is nothing to check (lockout off, no store, or the store refused at once: not locked). */
typedef void (*gw_lockout_cb)(void *data, bool locked, uint64_t retry_after_s);
FV_MUST_USE bool gw_lockout_check(gateway_t *gw, const char *name_key, const char *ip,
                                  gw_lockout_cb done, void *data);
/* A wrong name or password (counted for both); a success (clears the account's count). */
void gw_lockout_failed(gateway_t *gw, const char *name_key, const char *ip);
void gw_lockout_cleared(gateway_t *gw, const char *name_key);
/* The peer's address without its port, into out. */
void gw_peer_ip(fv_http_req_t *req, char *out, size_t cap);

/* ---- sessions.c: refresh tokens and logout ---- */

/* Stores a new refresh token (a new family) for the player; done(data, 0, token) once stored
 * (token valid during the call), or done(data, rc, NULL) - inside this call when the store
 * refuses at once. */
typedef void (*gw_session_cb)(void *data, int rc, const char *refresh_token);
void gw_session_issue(gateway_t *gw, const char *player, const char *name, bool guest,
                      gw_session_cb done, void *data);
/* POST /api/auth/refresh {refresh_token} and POST /api/auth/logout (Bearer access token,
 * optional {refresh_token}). */
void gw_auth_refresh(fv_http_req_t *req, void *data);
void gw_auth_logout(fv_http_req_t *req, void *data);

/* Adds the /api/auth/... routes (auth.c): register, login, guest and me. Literal, so they win
 * over /api/:service/... . 0 or a negative code. */
FV_MUST_USE int gateway_auth_routes(gateway_t *gw, fv_router_t *router);

#endif
