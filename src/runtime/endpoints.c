/* endpoints.c - the three operator endpoints every module serves: /health (readiness of its
 * dependencies, 503 when any check fails), /info (identity and build) and /metrics (Prometheus
 * text). /health and /info carry CORS "*" so a browser page can probe them. */
#include "runtime/runtime_internal.h"

#include <stdio.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"

static const char *const check_status_names[] = {"pass", "warn", "fail"};

static double uptime_seconds(const fv_module_ctx_t *ctx)
{
    return (double)(fv_now_ms() - ctx->started_ms) / 1000.0;
}

static void allow_any_origin(fv_http_req_t *req)
{
    fv_http_resp_header(req, "Access-Control-Allow-Origin", "*");
}

static void on_health(fv_http_req_t *req, void *data)
{
    fv_module_ctx_t *ctx = data;
    fv_check_status_t worst = FV_CHECK_PASS;
    json_t *checks = json_array();

    for (size_t i = 0; i < ctx->check_count; i++) {
        fv_check_status_t st = FV_CHECK_PASS;
        char msg[256] = "";
        ctx->checks[i].fn(ctx->checks[i].data, &st, msg, sizeof(msg));
        if (st > worst)
            worst = st;
        json_array_append_new(checks, json_pack("{s:s, s:s, s:s}", "name", ctx->checks[i].name,
                                                "status", check_status_names[st], "message",
                                                msg));
    }
    static const char *const overall[] = {"healthy", "degraded", "unhealthy"};
    json_t *body = json_pack("{s:s, s:s, s:s, s:f, s:o}", "service", ctx->mod->name, "version",
                             FV_VERSION, "status", overall[worst], "uptime_seconds",
                             uptime_seconds(ctx), "checks", checks);
    allow_any_origin(req);
    fv_http_resp_header(req, "Cache-Control", "no-store");
    fv_http_reply_json(req, worst == FV_CHECK_FAIL ? 503 : 200, body);
}

static void on_info(fv_http_req_t *req, void *data)
{
    fv_module_ctx_t *ctx = data;
    json_t *body = json_pack("{s:s, s:s, s:s, s:f, s:i, s:s, s:s}", "name", ctx->mod->name,
                             "version", FV_VERSION, "status", "running", "uptime_seconds",
                             uptime_seconds(ctx), "port", ctx->port, "build", FV_GIT_REV,
                             "instance_id", ctx->instance_id);
    allow_any_origin(req);
    fv_http_reply_json(req, 200, body);
}

static void on_metrics(fv_http_req_t *req, void *data)
{
    fv_module_ctx_t *ctx = data;
    fv_buf_t out;
    fv_buf_init(&out, 0);
    size_t conns = ctx->server ? fv_http_server_connections(ctx->server) : 0;
    if (fv_metrics_render(ctx->metrics, uptime_seconds(ctx), conns, &out) < 0) {
        fv_buf_dispose(&out);
        fv_http_reply_errorf(req, FV_ENOMEM, "cannot render metrics");
        return;
    }
    size_t len;
    char *text = fv_buf_steal(&out, &len);
    fv_http_reply_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* Preflight for the two CORS-open endpoints. */
static void on_preflight(fv_http_req_t *req, void *data)
{
    allow_any_origin(req);
    fv_http_resp_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    fv_http_resp_header(req, "Access-Control-Max-Age", "86400");
    fv_http_reply(req, 204, NULL, NULL, 0);
}

int fv__endpoints_add(fv_module_ctx_t *ctx)
{
    int rc;
    if ((rc = fv_router_add(ctx->router, "GET", "/health", on_health, ctx)) < 0 ||
        (rc = fv_router_add(ctx->router, "GET", "/info", on_info, ctx)) < 0 ||
        (rc = fv_router_add(ctx->router, "GET", "/metrics", on_metrics, ctx)) < 0 ||
        (rc = fv_router_add(ctx->router, "OPTIONS", "/health", on_preflight, ctx)) < 0 ||
        (rc = fv_router_add(ctx->router, "OPTIONS", "/info", on_preflight, ctx)) < 0)
        return rc;
    return 0;
}

void fv__endpoints_observe(const fv_http_req_t *req, int status, uint64_t duration_ns,
                           void *data)
{
    fv_module_ctx_t *ctx = data;
    fv_metrics_observe(ctx->metrics, fv_http_req_route(req), fv_http_req_method(req), status,
                       duration_ns);
}
