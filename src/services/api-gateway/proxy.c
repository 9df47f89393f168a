/* proxy.c - forwards /api/<module>/<rest> to a healthy instance of <module>.
 *
 * The instance comes from the registry client's lookup (cached there for a second, so the
 * registry is not asked per request). Hop-by-hop headers are dropped both ways (RFC 9110
 * sec. 7.6.1); X-Forwarded-For and X-Request-Id are added. A client that disconnects while its
 * request is upstream is remembered as aborted, and the upstream answer is then dropped. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/log.h"
#include "runtime/module_list.h"
#include "registry/registry.h"

/* Most request headers a client sends fit this; more are forwarded from the heap. */
#define PROXY_INLINE_HEADERS 32

typedef struct proxy_call {
    gateway_t *gw;
    fv_http_req_t *req;     /* NULL once the client went away */
    const char *service;    /* from the request arena: valid while req is */
    char service_copy[64];  /* for logging after req is gone */
} proxy_call_t;

static bool is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "te", "trailer", "upgrade",
                                      "proxy-authenticate", "proxy-authorization",
                                      "host", "content-length"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return true;
    return false;
}

static void call_finish(proxy_call_t *call)
{
    gateway_t *gw = call->gw;
    gw->in_flight--;
    fv_free(call);
    gateway_release(gw);
}

static void on_client_abort(fv_http_req_t *req, void *data)
{
    proxy_call_t *call = data;
    call->req = NULL;
}

static void on_upstream(int rc, const fv_http_response_t *resp, void *data)
{
    proxy_call_t *call = data;
    fv_http_req_t *req = call->req;

    if (!req) {
        call_finish(call);
        return;
    }
    fv_http_req_on_abort(req, NULL, NULL);
    if (rc < 0) {
        fv_log_warn("gateway", "upstream %s failed: %s (request %llu)", call->service_copy,
                    fv_strerror(rc), (unsigned long long)fv_http_req_id(req));
        int code = rc == FV_ETIMEDOUT ? FV_ETIMEDOUT
                   : rc == FV_ECANCELED ? FV_EUNAVAILABLE
                                        : FV_ECONNREFUSED;
        fv_http_reply_errorf(req, code, "upstream %s %s", call->service_copy,
                             rc == FV_ETIMEDOUT ? "timed out" : "is unavailable");
        call_finish(call);
        return;
    }
    const char *content_type = NULL;
    for (size_t i = 0; i < resp->header_count; i++) {
        const fv_http_header_t *h = &resp->headers[i];
        if (strcasecmp(h->name, "content-type") == 0) {
            content_type = h->value;
            continue;
        }
        if (strcasecmp(h->name, "date") == 0 || strcasecmp(h->name, "server") == 0 ||
            is_hop_by_hop(h->name, strlen(h->name)))
            continue;
        fv_http_resp_header(req, h->name, h->value);
    }
    fv_http_reply(req, resp->status, content_type, resp->body.ptr, resp->body.len);
    call_finish(call);
}

static void forward(proxy_call_t *call, const char *host, int port)
{
    fv_http_req_t *req = call->req;
    fv_arena_t *arena = fv_http_req_arena(req);
    const char *rest = fv_http_req_param(req, "rest");
    fv_slice_t query = fv_http_req_query(req);
    fv_http_header_t inline_headers[PROXY_INLINE_HEADERS];
    fv_http_header_t *headers = inline_headers;
    size_t count = fv_http_req_header_count(req);
    size_t n = 0;

    if (count + 2 > PROXY_INLINE_HEADERS)
        headers = fv_arena_alloc(arena, (count + 2) * sizeof(*headers));
    for (size_t i = 0; i < count; i++) {
        fv_slice_t name, value;
        fv_http_req_header_at(req, i, &name, &value);
        if (is_hop_by_hop(name.ptr, name.len))
            continue;
        headers[n].name = fv_arena_slice_dup(arena, name);
        headers[n].value = fv_arena_slice_dup(arena, value);
        n++;
    }
    const char *peer = fv_http_req_peer(req);
    const char *colon = strrchr(peer, ':');
    headers[n].name = "X-Forwarded-For";
    headers[n++].value = colon ? fv_arena_strndup(arena, peer, (size_t)(colon - peer)) : peer;
    headers[n].name = "X-Request-Id";
    headers[n++].value = fv_arena_printf(arena, "%llu", (unsigned long long)fv_http_req_id(req));

    fv_slice_t method = fv_http_req_method(req);
    fv_slice_t body = fv_http_req_body(req);
    fv_http_client_req_t up = {
        .method = fv_arena_slice_dup(arena, method),
        .host = host,
        .port = port,
        .target = query.len ? fv_arena_printf(arena, "/%s?%.*s", rest ? rest : "",
                                              (int)query.len, query.ptr)
                            : fv_arena_printf(arena, "/%s", rest ? rest : ""),
        .headers = headers,
        .header_count = n,
        .body = body.ptr,
        .body_len = body.len,
        .timeout_ms = call->gw->upstream_timeout_ms,
    };
    int rc = call->gw->upstream ? fv_http_client_request(call->gw->upstream, &up, on_upstream,
                                                         call)
                                : FV_EUNAVAILABLE;
    if (rc < 0) {
        fv_http_req_on_abort(req, NULL, NULL);
        fv_http_reply_errorf(req, FV_EUNAVAILABLE, "cannot forward to %s: %s", call->service,
                             fv_strerror(rc));
        call_finish(call);
    }
}

static void on_lookup(int rc, const char *host, int port, void *data)
{
    proxy_call_t *call = data;
    fv_http_req_t *req = call->req;
    if (!req) {
        call_finish(call);
        return;
    }
    if (rc < 0) {
        fv_http_req_on_abort(req, NULL, NULL);
        if (rc == FV_ENOENT)
            fv_http_reply_errorf(req, FV_EBACKEND, "no healthy instance of %s", call->service);
        else
            fv_http_reply_errorf(req, FV_EBACKEND, "cannot find %s: service registry %s",
                                 call->service, rc == FV_ECANCELED ? "is shutting down"
                                                                   : "is unreachable");
        call_finish(call);
        return;
    }
    forward(call, host, port);
}

void gateway_proxy(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    const char *service = fv_http_req_param(req, "service");
    fv_registry_client_t *registry = fv_module_registry(gw->ctx);

    if (!service || fv_component_index(service) < 0) {
        fv_http_reply_errorf(req, FV_ENOENT, "no service '%s'", service ? service : "");
        return;
    }
    if (gw->stopping || !registry) {
        fv_http_reply_errorf(req, FV_EUNAVAILABLE, "the gateway is shutting down");
        return;
    }
    proxy_call_t *call = fv_calloc(1, sizeof(*call));
    call->gw = gw;
    call->req = req;
    call->service = service;
    snprintf(call->service_copy, sizeof(call->service_copy), "%s", service);
    gw->in_flight++;
    fv_http_req_on_abort(req, on_client_abort, call);
    int rc = fv_registry_client_lookup(registry, service, on_lookup, call);
    if (rc < 0) {
        fv_http_req_on_abort(req, NULL, NULL);
        fv_http_reply_errorf(req, FV_EBACKEND, "cannot look up %s: %s", service,
                             fv_strerror(rc));
        call_finish(call);
    }
}
