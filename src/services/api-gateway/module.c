/* module.c - the api-gateway module: the HTTP entry point on 8080. It forwards
 * /api/<module>/... to the module through the registry (proxy.c). At shutdown it keeps
 * forwarding what it holds through the drain, so a request in flight at SIGTERM gets its whole
 * answer; only close() lets go of the upstream client. Accounts and access tokens are its own
 * /api/auth routes (auth.c); the CORS policy is cors.c, rate limits ratelimit.c. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/token.h"
#include "runtime/module_list.h"
#include "runtime/modules.h"
#include "store/stores.h"

static const char *const deps[] = {"service-registry", NULL};

static double in_flight_gauge(void *data)
{
    return (double)((gateway_t *)data)->in_flight;
}

static const fv_cfg_field_t gateway_settings[] = {
    FV_CFG_MS("upstream_timeout_ms", gateway_settings_t, upstream_timeout_ms, 1, 86400000, 10000,
              "deadline for a proxied request to a module"),
    FV_CFG_STR("routes", gateway_settings_t, routes, "",
               "more forwarded prefixes: \"<prefix>=<service>[,strip][,timeout_ms=N]"
               "[,max_body_bytes=N][,public|authenticated];...\" (docs/gateway.md)"),
    FV_CFG_BOOL("access_log", gateway_settings_t, access_log, 0,
                "one info log line per forwarded request"),
    FV_CFG_U32("pipeline_depth", gateway_settings_t, pipeline_depth, 1, 128, 32,
               "bodyless GETs to one instance in the same loop turn share a connection, up to "
               "this many, in one write; 1 = one request per connection at a time"),
    FV_CFG_U32("rate_limit_per_minute", gateway_settings_t, rate_limit_per_minute, 0, 100000000,
               6000, "forwarded requests a minute per player (per IP without a token); 0: no "
               "limit"),
    FV_CFG_U32("rate_limit_burst", gateway_settings_t, rate_limit_burst, 1, 100000000, 600,
               "forwarded requests a client may make at once before the rate applies"),
    FV_CFG_U32("auth_rate_limit_per_minute", gateway_settings_t, auth_rate_limit_per_minute, 0,
               100000000, 60, "register, login and guest requests a minute per IP; 0: no limit"),
    FV_CFG_U32("auth_rate_limit_burst", gateway_settings_t, auth_rate_limit_burst, 1, 100000000,
               20, "sign-in requests an IP may make at once before the rate applies"),
    FV_CFG_STR("cors_origins", gateway_settings_t, cors_origins, "",
               "origins allowed to call the gateway from a browser: \"\" none, \"*\" any, or "
               "\"https://a.example, https://b.example\""),
    FV_CFG_STR("cors_methods", gateway_settings_t, cors_methods,
               "GET, POST, PUT, PATCH, DELETE, OPTIONS", "methods allowed across origins"),
    FV_CFG_STR("cors_headers", gateway_settings_t, cors_headers,
               "Authorization, Content-Type, X-Request-Id",
               "request headers allowed across origins"),
    FV_CFG_STR("cors_expose_headers", gateway_settings_t, cors_expose_headers,
               "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After",
               "answer headers a page on another origin may read"),
    FV_CFG_BOOL("cors_credentials", gateway_settings_t, cors_credentials, 0,
                "allow credentials (cookies, HTTP auth) across origins"),
    FV_CFG_U32("cors_max_age_s", gateway_settings_t, cors_max_age_s, 0, 86400, 600,
               "how long a browser may keep a preflight's answer"),
};

#define MAX_CONFIGURED_ROUTES 64

static void routes_handler(fv_http_req_t *req, void *data)
{
    fv_http_reply_json(req, 200, gw_routes_json(data));
}

/* The route table: the configured prefixes, then /api/<module> for every module; each watched
 * in the registry from now on. */
static int gateway_routes_setup(gateway_t *gw, const gateway_settings_t *set, size_t upload,
                                fv_error_t *err)
{
    gw_route_t parsed[MAX_CONFIGURED_ROUTES];
    int n = gw_routes_parse(set->routes, parsed, MAX_CONFIGURED_ROUTES, err);
    if (n < 0)
        return n;
    int rc = gw_upstreams_new(gw);
    if (rc < 0)
        return fv_error_set(err, rc, "api-gateway: %s", fv_strerror(rc));
    gw->route_count = (size_t)n + FV_MOD_COUNT;
    gw->routes = fv_calloc(gw->route_count, sizeof(*gw->routes));
    memcpy(gw->routes, parsed, (size_t)n * sizeof(*parsed));
    gw->module_route0 = (size_t)n;
    for (size_t i = 0; i < FV_MOD_COUNT; i++) {
        gw_route_t *r = &gw->routes[(size_t)n + i];
        snprintf(r->prefix, sizeof(r->prefix), "/api/%s", fv_components[i].name);
        snprintf(r->service, sizeof(r->service), "%s", fv_components[i].name);
        r->strip = true;
        r->max_body_bytes = upload;
    }
    fv_router_t *router = fv_module_router(gw->ctx);
    for (size_t k = 0; k < gw->route_count; k++) {
        gw_route_t *r = &gw->routes[k];
        r->gw = gw;
        r->up = gw_upstream_get(gw, r->service);
        if (k >= (size_t)n)
            continue;
        char pattern[sizeof(r->prefix) + 8];
        size_t limit = r->max_body_bytes ? r->max_body_bytes : upload;
        snprintf(pattern, sizeof(pattern), "%s/*rest", r->prefix);
        if ((rc = fv_router_add_streaming(router, "*", r->prefix, gateway_route_proxy, r,
                                          limit)) < 0 ||
            (rc = fv_router_add_streaming(router, "*", pattern, gateway_route_proxy, r,
                                          limit)) < 0)
            return fv_error_set(err, rc, "api-gateway: cannot route %s: %s", r->prefix,
                                fv_strerror(rc));
    }
    if ((rc = gateway_ws_routes(gw, router)) < 0)
        return fv_error_set(err, rc, "api-gateway: cannot add /ws: %s", fv_strerror(rc));
    if ((rc = fv_router_add(router, "GET", "/gateway/routes", routes_handler, gw)) < 0)
        return fv_error_set(err, rc, "api-gateway: cannot add /gateway/routes: %s",
                            fv_strerror(rc));
    return 0;
}

static int gateway_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_config_t *cfg = fv_module_config(ctx);
    const gateway_settings_t *set = fv_module_settings(ctx);
    fv_http_client_opts_t opts;
    int rc;

    /* the gateway issues and checks access tokens: a secret anyone can read must not sign
     * them where anyone can reach the gateway */
    if ((rc = fv_token_secret_check(cfg->auth.jwt_secret, cfg->general.bind, err)) < 0)
        return rc;
    gateway_t *gw = fv_calloc(1, sizeof(*gw));

    gw->ctx = ctx;
    gw->cfg = cfg;
    gw->sql = fv_stores_sql(fv_module_stores(ctx));
    gw->kv = fv_stores_kv(fv_module_stores(ctx));
    gw->tokens = gw_tokens_new();
    gw->set = set;
    gw->upstream_timeout_ms = set->upstream_timeout_ms;
    gw->access_log = set->access_log;
    fv_id_random_hex(gw->id_prefix, 8);
    fv_buf_init(&gw->scratch, 0);
    fv_http_client_opts_default(&opts);
    opts.request_timeout_ms = set->upstream_timeout_ms;
    opts.max_response_bytes = cfg->http.max_body_bytes * 16;
    /* as many idle connections per instance as a busy gateway keeps in use: fewer would close
     * and reopen connections under load (nginx's upstream keepalive plays the same part) */
    opts.max_idle_per_host = 256;
    opts.max_pipeline = set->pipeline_depth;
    if ((rc = fv_http_client_new(fv_module_loop(ctx), &opts, &gw->upstream)) < 0) {
        gw_tokens_free(gw->tokens);
        fv_free(gw);
        return fv_error_set(err, rc, "api-gateway: cannot create the upstream client: %s",
                            fv_strerror(rc));
    }
    fv_module_set_data(ctx, gw);
    /* uploads pass through the gateway on their way to the asset service: its object limit,
     * not the default request body limit, bounds them */
    size_t upload = cfg->storage.max_object_bytes;
    if ((rc = gateway_routes_setup(gw, set, upload, err)) < 0)
        return rc;
    if ((rc = gateway_auth_routes(gw, fv_module_router(ctx))) < 0 ||
        (rc = fv_router_add_streaming(fv_module_router(ctx), "*", "/api/:service/*rest",
                                      gateway_proxy, gw, upload)) < 0 ||
        (rc = fv_router_add_streaming(fv_module_router(ctx), "*", "/api/:service",
                                      gateway_proxy, gw, upload)) < 0)
        return fv_error_set(err, rc, "api-gateway: cannot add routes: %s", fv_strerror(rc));
    fv_module_add_gauge(ctx, "finalverse_gateway_upstream_in_flight",
                        "Requests the gateway is forwarding right now.", in_flight_gauge, gw);
    fv_module_add_metrics(ctx, gw_metrics, gw);
    const struct {
        const char *name, *help;
        uint64_t *field;
    } counters[] = {
        {"finalverse_gateway_rate_limited_total", "Requests answered 429.", &gw->limited},
        {"finalverse_gateway_rate_limit_errors_total",
         "Requests let through because the rate limiter's store failed.", &gw->limit_errors},
        {"finalverse_gateway_cors_refused_total", "CORS preflights refused.", &gw->cors_refused},
        {"finalverse_gateway_token_refused_total",
         "Forwarded requests refused for a missing or bad access token.", &gw->token_refused},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        fv_module_add_gauge(ctx, counters[i].name, counters[i].help, fv_gauge_read_u64,
                            counters[i].field);
    return 0;
}

/* After the drain: every request the gateway was forwarding has had its answer (or the drain
 * deadline passed). Freeing the upstream client cancels whatever is left, each of those gets
 * its 503 from a callback that still needs gw, and the last of them reports the close. */
static void gateway_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    gateway_t *gw = fv_module_data(ctx);
    if (!gw) {
        done(ctx);
        return;
    }
    gw->stopping = true;
    gw->closed_cb = done;
    fv_module_set_data(ctx, NULL);
    gw_upstreams_stop(gw);
    fv_http_client_free(gw->upstream);
    gw->upstream = NULL;
    gateway_release(gw);
}

void gateway_release(gateway_t *gw)
{
    if (!gw->stopping || gw->in_flight > 0)
        return;
    fv_module_closed_cb done = gw->closed_cb;
    fv_module_ctx_t *ctx = gw->ctx;
    gw_upstreams_free(gw);
    fv_free(gw->routes);
    gw_tokens_free(gw->tokens);
    fv_buf_dispose(&gw->scratch);
    fv_free(gw);
    if (done)
        done(ctx);
}

const fv_module_t fv_module_api_gateway = {
    .name = "api-gateway",
    .deps = deps,
    .start = gateway_start,
    .close = gateway_close,
    .stores = FV_STORE_SQL | FV_STORE_KV,   /* accounts; sessions and rate-limit buckets */
    .settings_section = "gateway",
    .settings = gateway_settings,
    .settings_count = sizeof(gateway_settings) / sizeof(gateway_settings[0]),
    .settings_size = sizeof(gateway_settings_t),
};
