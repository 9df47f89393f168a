/* grpc_health.c - grpc.health.v1.Health Check and Watch on every module's port. Check is
 * a method table of its own in the call layer, under the rpc module "<module>.health", which
 * the module's gRPC server routes the health service to: so a health call is an ordinary call
 * (deadline, cancel, metrics), and it still answers while the module itself is quiesced,
 * saying NOT_SERVING. The verdict comes from the same checks as GET /health.
 *
 * Watch is a server-streaming method of the module's gRPC server: the status now, then the
 * status again each time it changes, until the client cancels. The checks only read state that
 * probes keep current, so a watch looks again every HEALTH_WATCH_MS rather than hooking every
 * place that state changes; a change reaches watchers within that. */
#include "runtime/runtime_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "health.pb-c.h"
#include "net/grpc_server.h"

/* The rpc module name has room for the suffix: module names are short and fixed. */
#define HEALTH_SUFFIX ".health"
#define HEALTH_WATCH_MS 1000u

static bool names_module(const fv_module_ctx_t *ctx, const char *service)
{
    const char *own = fv_rpc_service_of(fv__runtime_rpc(ctx->rt), ctx->mod->name);
    return !*service || strcmp(service, ctx->mod->name) == 0 || (own && strcmp(service, own) == 0);
}

static int status_of(fv_module_ctx_t *ctx, const char *service)
{
    if (!names_module(ctx, service))
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    bool serving = ctx->state == MODULE_READY && fv__module_health_worst(ctx) != FV_CHECK_FAIL;
    return serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void on_check(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_module_ctx_t *ctx = data;
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)in;
    const char *service = req->service ? req->service : "";
    if (!names_module(ctx, service)) {
        fv_rpc_fail(call, FV_ENOENT, "%s serves no service %s", ctx->mod->name, service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = status_of(ctx, service);
    fv_rpc_reply(call, &out.base);
}

/* ---- Watch ---- */

typedef struct health_watch {
    fv_module_ctx_t *ctx;
    fv_grpc_stream_t *stream;          /* NULL once cancelled */
    uv_timer_t timer;
    char service[128];
    int sent;                          /* the status last queued; -1 before the first */
} health_watch_t;

static void on_watch_timer_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

/* Queues the status when it differs from the last one queued. A full queue (a client that does
 * not read) keeps sent as it was, so the latest status goes when on_writable says there is
 * room: a slow client sees fewer changes, never unbounded memory. */
static void watch_send(health_watch_t *w)
{
    if (!w->stream)
        return;
    int status = status_of(w->ctx, w->service);
    if (status != w->sent) {
        uint8_t msg[8];
        Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        out.status = status;
        size_t len = grpc__health__v1__health_check_response__pack(&out, msg);
        if (fv_grpc_stream_send(w->stream, msg, len) == 0)
            w->sent = status;
    }
    /* The drain waits for every open stream, and a watch never ends by itself: once shutdown
     * began (NOT_SERVING just went out) the watch ends, so the process can stop. */
    if (w->stream && w->ctx->state >= MODULE_QUIESCED) {
        fv_grpc_stream_t *s = w->stream;
        w->stream = NULL;
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, on_watch_timer_closed);
        fv_grpc_stream_finish(s, FV_EUNAVAILABLE, "the module is shutting down");
    }
}

static void on_watch_timer(uv_timer_t *t)
{
    watch_send(t->data);
}

static void on_watch_cancel(fv_grpc_stream_t *s, void *data)
{
    health_watch_t *w = data;
    w->stream = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_watch_timer_closed);
}

static void on_watch_writable(fv_grpc_stream_t *s, void *data)
{
    watch_send(data);
}

static const fv_grpc_stream_cbs_t watch_cbs = {.on_cancel = on_watch_cancel,
                                               .on_writable = on_watch_writable};

static void on_watch(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    fv_module_ctx_t *ctx = data;
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(NULL, len, msg);
    if (!req) {
        fv_grpc_stream_finish(s, FV_EINVAL, "the request is not a HealthCheckRequest");
        return;
    }
    const char *service = req->service ? req->service : "";
    if (strlen(service) >= sizeof(((health_watch_t *)0)->service)) {
        grpc__health__v1__health_check_request__free_unpacked(req, NULL);
        fv_grpc_stream_finish(s, FV_EINVAL, "the service name is too long");
        return;
    }
    health_watch_t *w = fv_calloc(1, sizeof(*w));
    w->ctx = ctx;
    w->stream = s;
    w->sent = -1;
    snprintf(w->service, sizeof(w->service), "%s", service);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    uv_timer_init(fv__runtime_loop(ctx->rt), &w->timer);
    w->timer.data = w;
    fv_grpc_stream_set_cbs(s, &watch_cbs, w);
    uv_timer_start(&w->timer, on_watch_timer, HEALTH_WATCH_MS, HEALTH_WATCH_MS);
    watch_send(w);
}

static const fv_rpc_method_t health_methods[] = {
    {"Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, on_check, true},
};

int fv__grpc_health_serve(fv_module_ctx_t *ctx)
{
    char name[128];
    int n = snprintf(name, sizeof(name), "%s" HEALTH_SUFFIX, ctx->mod->name);
    if (n < 0 || (size_t)n >= sizeof(name))
        return FV_EINVAL;
    int rc = fv_rpc_serve(fv__runtime_rpc(ctx->rt), name, "grpc.health.v1.Health", health_methods,
                          1, ctx);
    if (rc < 0)
        return rc;
    rc = fv_grpc_server_stream_method(ctx->grpc, "grpc.health.v1.Health", "Watch", on_watch, ctx);
    if (rc < 0)
        return rc;
    return fv_grpc_server_route(ctx->grpc, "grpc.health.v1.Health", name);
}
