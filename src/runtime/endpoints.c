/* endpoints.c - the three operator endpoints every module serves: /health (readiness of its
 * dependencies, 503 when any check fails), /info (identity and build) and /metrics (Prometheus
 * text). /health and /info carry CORS "*" so a browser page can probe them. */
#include "runtime/runtime_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
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

/* "12.345": seconds with millisecond precision, without printf's float path. */
static int put_uptime(fv_buf_t *b, const fv_module_ctx_t *ctx)
{
    uint64_t ms = fv_now_ms() - ctx->started_ms;
    char frac[4] = {'.', (char)('0' + ms / 100 % 10), (char)('0' + ms / 10 % 10),
                    (char)('0' + ms % 10)};
    int rc = fv_buf_append_u64(b, ms / 1000);
    return rc ? rc : fv_buf_append(b, frac, sizeof(frac));
}

#define PUT_LIT(b, lit) fv_buf_append((b), lit, sizeof(lit) - 1)

/* Renders the /health body into ctx->health and returns its HTTP status. Written straight into
 * a buffer, without a jansson tree: /health is what probes and load balancers hit hardest. */
static int render_health(fv_module_ctx_t *ctx)
{
    static const char *const overall[] = {"healthy", "degraded", "unhealthy"};
    fv_check_status_t worst = FV_CHECK_PASS;
    fv_buf_t *b = &ctx->health;
    int rc = 0;

    fv_buf_reset(b);
    rc |= PUT_LIT(b, "{\"service\":");
    rc |= fv_json_put_str(b, ctx->mod->name);
    rc |= PUT_LIT(b, ",\"version\":\"" FV_VERSION "\",\"status\":\"");
    size_t status_at = b->len;   /* patched below, once the checks have run */
    rc |= PUT_LIT(b, "unhealthy\",\"uptime_seconds\":");
    rc |= put_uptime(b, ctx);
    rc |= PUT_LIT(b, ",\"checks\":[");
    for (size_t i = 0; i < ctx->check_count; i++) {
        fv_check_status_t st = FV_CHECK_PASS;
        char msg[256] = "";
        ctx->checks[i].fn(ctx->checks[i].data, &st, msg, sizeof(msg));
        if (st > worst)
            worst = st;
        rc |= fv_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
        rc |= fv_json_put_str(b, ctx->checks[i].name);
        rc |= PUT_LIT(b, ",\"status\":\"");
        rc |= fv_buf_append_str(b, check_status_names[st]);
        rc |= PUT_LIT(b, "\",\"message\":");
        rc |= fv_json_put_str(b, msg);
        rc |= PUT_LIT(b, "}");
    }
    rc |= PUT_LIT(b, "]}");
    if (rc) {
        fv_buf_reset(b);
        return 0;
    }
    /* "unhealthy" is the longest word; shorter ones are padded by moving the tail left. */
    const char *word = overall[worst];
    size_t wlen = strlen(word), gap = strlen("unhealthy") - wlen;
    memcpy(b->ptr + status_at, word, wlen);
    memmove(b->ptr + status_at + wlen, b->ptr + status_at + wlen + gap,
            b->len - (status_at + wlen + gap));
    b->len -= gap;
    return worst == FV_CHECK_FAIL ? 503 : 200;
}

fv_check_status_t fv__module_health_worst(fv_module_ctx_t *ctx)
{
    fv_check_status_t worst = FV_CHECK_PASS;
    for (size_t i = 0; i < ctx->check_count; i++) {
        fv_check_status_t st = FV_CHECK_PASS;
        char msg[256] = "";
        ctx->checks[i].fn(ctx->checks[i].data, &st, msg, sizeof(msg));
        if (st > worst)
            worst = st;
    }
    return worst;
}

/* One rendering serves every /health request of the same loop iteration (uv_now does not move
 * within one): the answer is a snapshot either way, and under load hundreds of requests arrive
 * per iteration. The checks themselves only read state that probes keep up to date. */
static void on_health(fv_http_req_t *req, void *data)
{
    fv_module_ctx_t *ctx = data;
    uint64_t now = uv_now(fv_http_req_loop(req));
    if (ctx->health_status == 0 || ctx->health_at != now) {
        ctx->health_status = render_health(ctx);
        ctx->health_at = now;
    }
    if (ctx->health_status == 0) {
        fv_http_reply_errorf(req, FV_ENOMEM, "cannot render health");
        return;
    }
    allow_any_origin(req);
    fv_http_reply(req, ctx->health_status, "application/json", ctx->health.ptr,
                  ctx->health.len);
}

static void on_info(fv_http_req_t *req, void *data)
{
    fv_module_ctx_t *ctx = data;
    fv_buf_t *b = &ctx->scratch;
    int rc = 0;

    fv_buf_reset(b);
    rc |= PUT_LIT(b, "{\"name\":");
    rc |= fv_json_put_str(b, ctx->mod->name);
    rc |= PUT_LIT(b, ",\"version\":\"" FV_VERSION "\",\"status\":\"running\",\"uptime_seconds\":");
    rc |= put_uptime(b, ctx);
    rc |= PUT_LIT(b, ",\"port\":");
    rc |= fv_buf_append_u64(b, (uint64_t)ctx->port);
    rc |= PUT_LIT(b, ",\"build\":\"" FV_GIT_REV "\",\"instance_id\":");
    rc |= fv_json_put_str(b, ctx->instance_id);
    rc |= PUT_LIT(b, "}");
    if (rc) {
        fv_http_reply_errorf(req, FV_ENOMEM, "cannot render info");
        return;
    }
    allow_any_origin(req);
    fv_http_reply(req, 200, "application/json", b->ptr, b->len);
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
    /* none of them takes a body: one sent is refused (413) before it is read */
    if ((rc = fv_router_add_limited(ctx->router, "GET", "/health", on_health, ctx, 0)) < 0 ||
        (rc = fv_router_add_limited(ctx->router, "GET", "/info", on_info, ctx, 0)) < 0 ||
        (rc = fv_router_add_limited(ctx->router, "GET", "/metrics", on_metrics, ctx, 0)) < 0 ||
        (rc = fv_router_add_limited(ctx->router, "OPTIONS", "/health", on_preflight, ctx, 0)) <
            0 ||
        (rc = fv_router_add_limited(ctx->router, "OPTIONS", "/info", on_preflight, ctx, 0)) < 0)
        return rc;
    return 0;
}

void fv__endpoints_observe(const fv_http_req_t *req, int status, uint64_t duration_ns,
                           void *data)
{
    fv_module_ctx_t *ctx = data;
    fv_slice_t method = fv_http_req_method(req);
    fv_metrics_observe(ctx->metrics, fv_http_req_route(req), method, status, duration_ns);
    /* The access log: off by default (debug), one line per request with its id, so a 5xx body's
     * "request N" can be found here. */
    if (fv_log_current_level >= FV_LOG_DEBUG) {
        fv_slice_t target = fv_http_req_target(req);
        fv_log_debug(ctx->mod->name, "req=%llu %s %.*s %.*s -> %d in %.3f ms",
                     (unsigned long long)fv_http_req_id(req), fv_http_req_peer(req),
                     (int)method.len, method.ptr, (int)target.len, target.ptr, status,
                     (double)duration_ns / 1e6);
    }
}
