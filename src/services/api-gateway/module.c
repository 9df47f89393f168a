/* module.c - the api-gateway module: the HTTP entry point on 8080. It forwards
 * /api/<module>/... to the module through the registry (proxy.c). Accounts, CORS policy and
 * rate limiting arrive with the gateway's own issue. */
#include "services/api-gateway/gateway.h"

#include "core/alloc.h"
#include "runtime/modules.h"
#include "store/stores.h"

static const char *const deps[] = {"service-registry", NULL};

static double in_flight_gauge(void *data)
{
    return (double)((gateway_t *)data)->in_flight;
}

static int gateway_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_config_t *cfg = fv_module_config(ctx);
    gateway_t *gw = fv_calloc(1, sizeof(*gw));
    fv_http_client_opts_t opts;
    int rc;

    gw->ctx = ctx;
    gw->upstream_timeout_ms = cfg->gateway.upstream_timeout_ms;
    fv_http_client_opts_default(&opts);
    opts.request_timeout_ms = cfg->gateway.upstream_timeout_ms;
    opts.max_response_bytes = cfg->http.max_body_bytes * 16;
    if ((rc = fv_http_client_new(fv_module_loop(ctx), &opts, &gw->upstream)) < 0) {
        fv_free(gw);
        return fv_error_set(err, rc, "api-gateway: cannot create the upstream client: %s",
                            fv_strerror(rc));
    }
    fv_module_set_data(ctx, gw);
    if ((rc = fv_router_add(fv_module_router(ctx), "*", "/api/:service/*rest", gateway_proxy,
                            gw)) < 0 ||
        (rc = fv_router_add(fv_module_router(ctx), "*", "/api/:service", gateway_proxy, gw)) < 0)
        return fv_error_set(err, rc, "api-gateway: cannot add routes: %s", fv_strerror(rc));
    fv_module_add_gauge(ctx, "finalverse_gateway_upstream_in_flight",
                        "Requests the gateway is forwarding right now.", in_flight_gauge, gw);
    return 0;
}

static void gateway_stop(fv_module_ctx_t *ctx)
{
    gateway_t *gw = fv_module_data(ctx);
    if (!gw)
        return;
    /* Cancels what is in flight: each proxied request then gets its 503 from a callback that
     * still needs gw, so the last of them frees it (gateway_release). */
    gw->stopping = true;
    fv_module_set_data(ctx, NULL);
    fv_http_client_free(gw->upstream);
    gw->upstream = NULL;
    gateway_release(gw);
}

void gateway_release(gateway_t *gw)
{
    if (gw->stopping && gw->in_flight == 0)
        fv_free(gw);
}

const fv_module_t fv_module_api_gateway = {
    .name = "api-gateway",
    .deps = deps,
    .start = gateway_start,
    .stop = gateway_stop,
    .stores = FV_STORE_SQL | FV_STORE_KV,   /* accounts; sessions and rate-limit buckets */
};
