/* proxy.c - forwards a route's requests to an instance of its service.
 *
 * The instance comes from upstream.c (watched lists, least outstanding, passive health). The
 * path below the route's prefix is normalised and may not climb above it (400). Headers: the
 * hop-by-hop ones and those named in Connection are dropped both ways (RFC 9110 sec. 7.6.1);
 * X-Forwarded-For gets the peer appended to what the client sent, X-Forwarded-Proto and
 * X-Forwarded-Host are the gateway's own; X-Request-Id is the client's when it is a safe
 * token, else generated, and goes back in the answer. A request without a body and with an
 * idempotent method is tried once more on another instance when the first refused or reset
 * the connection. Failures answer with the JSON error body and no internals: 503 when no
 * instance is known, 504 on timeout, 502 when the instance refused, reset or garbled. A client
 * that disconnects while its request is upstream is remembered as aborted, and the upstream
 * answer is then dropped. */
#include "services/api-gateway/gateway.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/str.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"
#include "core/token.h"
#include "runtime/module_list.h"

#define MAX_CONNECTION_TOKENS 16
/* Answers up to this size (by Content-Length) are forwarded whole, in one write with a
 * Content-Length; larger or unsized ones stream through with back-pressure. */
#define WHOLE_ANSWER_MAX (64 * 1024)
#define TARGET_MAX 8192

typedef struct proxy_call {
    gateway_t *gw;
    gw_route_t *route;
    fv_http_req_t *req;          /* NULL once the client went away */
    gw_instance_t *inst;         /* the instance picked, outstanding counted */
    gw_wait_t wait;              /* queued for the service's first instance list */
    bool waiting;
    bool retried;
    bool retryable;              /* idempotent and no body */
    bool has_body;               /* the client's body streams through */
    bool reading_body;
    bool streaming_out;          /* the answer streams to the client (reply_start sent) */
    bool limiting;               /* waiting for the rate limiter's answer */
    fv_http_call_t *up_call;     /* the upstream request, until on_upstream */
    uint64_t started_ns;
    int status;                  /* what the client got, for the access log */
    char *target;                /* in the request arena */
    char request_id[GW_REQUEST_ID_MAX];
    char player[FV_TOKEN_ID_MAX];    /* from a valid access token: X-Finalverse-Player */
    char jti[33];                    /* that token's id, checked against revocations */
} proxy_call_t;

/* Names dropped on the way in whatever Connection says; some of them the gateway replaces. */
static bool dropped_request_header(const char *n, size_t len)
{
    switch (len) {
    case 2: return strncasecmp(n, "te", 2) == 0;
    case 4: return strncasecmp(n, "host", 4) == 0;
    case 7: return strncasecmp(n, "trailer", 7) == 0 || strncasecmp(n, "upgrade", 7) == 0;
    case 10: return strncasecmp(n, "connection", 10) == 0 || strncasecmp(n, "keep-alive", 10) == 0;
    case 12: return strncasecmp(n, "x-request-id", 12) == 0;
    case 14: return strncasecmp(n, "content-length", 14) == 0;
    case 15: return strncasecmp(n, "x-forwarded-for", 15) == 0;
    case 16: return strncasecmp(n, "proxy-connection", 16) == 0 ||
                    strncasecmp(n, "x-forwarded-host", 16) == 0;
    case 17: return strncasecmp(n, "transfer-encoding", 17) == 0 ||
                    strncasecmp(n, "x-forwarded-proto", 17) == 0;
    case 18: return strncasecmp(n, "proxy-authenticate", 18) == 0;
    case 19: return strncasecmp(n, "proxy-authorization", 19) == 0 ||
                    strncasecmp(n, "x-finalverse-player", 19) == 0;
    default: return false;
    }
}

/* Names dropped on the way out: hop-by-hop, and what the server writes itself. */
static bool dropped_response_header(const char *n, size_t len)
{
    switch (len) {
    case 2: return strncasecmp(n, "te", 2) == 0;
    case 4: return strncasecmp(n, "date", 4) == 0;
    case 6: return strncasecmp(n, "server", 6) == 0;
    case 7: return strncasecmp(n, "trailer", 7) == 0 || strncasecmp(n, "upgrade", 7) == 0;
    case 10: return strncasecmp(n, "connection", 10) == 0 || strncasecmp(n, "keep-alive", 10) == 0;
    case 12: return strncasecmp(n, "content-type", 12) == 0 ||
                    strncasecmp(n, "x-request-id", 12) == 0;
    case 14: return strncasecmp(n, "content-length", 14) == 0;
    case 16: return strncasecmp(n, "proxy-connection", 16) == 0;
    case 17: return strncasecmp(n, "transfer-encoding", 17) == 0;
    case 18: return strncasecmp(n, "proxy-authenticate", 18) == 0;
    case 19: return strncasecmp(n, "proxy-authorization", 19) == 0;
    default: return false;
    }
}

/* The comma-separated tokens of a Connection value, appended to toks (at most max). */
static size_t connection_tokens(fv_slice_t v, fv_slice_t *toks, size_t n, size_t max)
{
    size_t i = 0;
    while (i < v.len && n < max) {
        while (i < v.len && (v.ptr[i] == ',' || v.ptr[i] == ' ' || v.ptr[i] == '\t'))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',' && v.ptr[i] != ' ' && v.ptr[i] != '\t')
            i++;
        if (i > start)
            toks[n++] = fv_slice(v.ptr + start, i - start);
    }
    return n;
}

static bool named_in(const fv_slice_t *toks, size_t n, const char *name, size_t len)
{
    for (size_t k = 0; k < n; k++)
        if (toks[k].len == len && strncasecmp(toks[k].ptr, name, len) == 0)
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

static void access_log(proxy_call_t *call, int status)
{
    call->status = status;
    gw_route_t *r = call->route;
    r->requests++;
    if (status >= 500)
        r->answers_5xx++;
    if (!call->gw->access_log || !call->req)
        return;
    fv_slice_t m = fv_http_req_method(call->req);
    fv_slice_t t = fv_http_req_target(call->req);
    uint64_t us = (fv_now_ns() - call->started_ns) / 1000;
    if (call->inst)
        fv_log_info("gateway", "%s %.*s %.*s -> %s %s:%d%s %d %" PRIu64 "us id=%s",
                    fv_http_req_peer(call->req), (int)m.len, m.ptr, (int)t.len, t.ptr,
                    r->service, call->inst->host, call->inst->port, call->target, status, us,
                    call->request_id);
    else
        fv_log_info("gateway", "%s %.*s %.*s -> %s %d %" PRIu64 "us id=%s",
                    fv_http_req_peer(call->req), (int)m.len, m.ptr, (int)t.len, t.ptr,
                    r->service, status, us, call->request_id);
}

/* An error answer in the project's JSON shape; msg names the service, never an address. */
static void reply_fail(proxy_call_t *call, int code, const char *fmt, ...) FV_PRINTF(3, 4);
static void reply_fail(proxy_call_t *call, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fv_http_req_t *req = call->req;
    int status = fv_err_http_status(code);
    access_log(call, status);
    fv_http_req_on_abort(req, NULL, NULL);
    fv_http_resp_header(req, "X-Request-Id", call->request_id);
    fv_http_reply_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "code",
                                              fv_err_name(code), "message", msg));
}

static void on_client_abort(fv_http_req_t *req, void *data)
{
    proxy_call_t *call = data;
    (void)req;
    call->req = NULL;
    if (call->up_call)
        fv_http_call_cancel(call->up_call);   /* on_upstream follows, with FV_ECANCELED */
    if (call->waiting) {
        gw_upstream_unwait(call->route->up, &call->wait);
        call_finish(call);
    }
}

static void send_upstream(proxy_call_t *call);

/* The answer's headers onto the client's answer, less the hop-by-hop ones, those its
 * Connection names and, under a CORS policy, its Access-Control-* ones; returns its
 * Content-Type (NULL when none). */
static const char *copy_answer_headers(proxy_call_t *call, const fv_http_response_t *resp)
{
    fv_http_req_t *req = call->req;
    fv_slice_t toks[MAX_CONNECTION_TOKENS];
    size_t ntok = 0;
    const char *content_type = NULL;
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, "connection") == 0)
            ntok = connection_tokens(fv_slice_cstr(resp->headers[i].value), toks, ntok,
                                     MAX_CONNECTION_TOKENS);
    for (size_t i = 0; i < resp->header_count; i++) {
        const fv_http_header_t *h = &resp->headers[i];
        size_t len = strlen(h->name);
        if (dropped_response_header(h->name, len)) {
            if (len == 12 && strcasecmp(h->name, "content-type") == 0)
                content_type = h->value;
            continue;
        }
        if (ntok && named_in(toks, ntok, h->name, len))
            continue;
        if (len > 15 && strncasecmp(h->name, "access-control-", 15) == 0 &&
            gw_cors_policy_set(call->gw))
            continue;                   /* the gateway's policy answers for CORS */
        fv_http_resp_header(req, h->name, h->value);
    }
    fv_http_resp_header(req, "X-Request-Id", call->request_id);
    return content_type;
}

static void on_upstream(int rc, const fv_http_response_t *resp, void *data)
{
    proxy_call_t *call = data;
    fv_http_req_t *req = call->req;
    gw_instance_t *inst = call->inst;
    call->up_call = NULL;
    gw_instance_done(inst, rc == FV_ECANCELED && !req ? 0 : rc);
    if (!req) {
        call_finish(call);
        return;
    }
    if (call->streaming_out) {
        fv_http_req_on_abort(req, NULL, NULL);
        if (rc == 0) {
            fv_http_reply_end(req);
        } else {
            fv_log_warn("gateway", "%s at %s:%d: %s half way through the answer (id=%s)",
                        call->route->service, inst->host, inst->port, fv_strerror(rc),
                        call->request_id);
            fv_http_reply_abort(req);
        }
        call_finish(call);
        return;
    }
    const char *svc = call->route->service;
    if (rc < 0) {
        fv_log_warn("gateway", "%s at %s:%d: %s (id=%s)", svc, inst->host, inst->port,
                    fv_strerror(rc), call->request_id);
        if ((rc == FV_ECONNREFUSED || rc == FV_ECONNRESET) && call->retryable &&
            !call->retried && !call->gw->stopping) {
            call->retried = true;
            gw_instance_t *next;
            if (gw_upstream_pick(call->route->up, inst, &next) == 0) {
                if (next != inst) {
                    call->inst = next;
                    send_upstream(call);
                    return;
                }
                gw_instance_done(next, FV_ECANCELED);
            }
        }
        call->inst = NULL;
        if (rc == FV_ETIMEDOUT)
            reply_fail(call, FV_ETIMEDOUT, "%s did not answer in time", svc);
        else if (rc == FV_ECANCELED)
            reply_fail(call, FV_EUNAVAILABLE, "the gateway is shutting down");
        else if (rc == FV_ECONNREFUSED)
            reply_fail(call, FV_ECONNREFUSED, "%s refused the connection", svc);
        else if (rc == FV_ECONNRESET)
            reply_fail(call, FV_ECONNRESET, "%s closed the connection", svc);
        else if (rc == FV_ETOOBIG)
            reply_fail(call, FV_EPROTO, "the answer of %s is too large", svc);
        else
            reply_fail(call, FV_EPROTO, "%s sent a malformed answer", svc);
        call_finish(call);
        return;
    }
    const char *content_type = copy_answer_headers(call, resp);
    access_log(call, resp->status);
    fv_http_req_on_abort(req, NULL, NULL);
    fv_http_reply(req, resp->status, content_type, resp->body.ptr, resp->body.len);
    call_finish(call);
}

static void on_client_writable(fv_http_req_t *req, void *data)
{
    proxy_call_t *call = data;
    (void)req;
    if (call->up_call)
        fv_http_call_resume(call->up_call);
}

/* A piece of a streamed answer: on to the client, pausing the upstream while the client's
 * connection holds more than its ceiling. */
static void on_up_body(const char *piece, size_t len, void *data)
{
    proxy_call_t *call = data;
    fv_http_req_t *req = call->req;
    if (!req || fv_http_reply_write(req, piece, len) < 0) {
        fv_http_call_cancel(call->up_call);
        return;
    }
    if (fv_http_reply_full(req)) {
        fv_http_call_pause(call->up_call);
        if (fv_http_reply_on_writable(req, on_client_writable, call) < 0)
            fv_http_call_resume(call->up_call);
    }
}

/* The answer's head: small sized answers come whole (one write, Content-Length), the others
 * stream. */
static int on_up_head(const fv_http_response_t *resp, void *data)
{
    proxy_call_t *call = data;
    fv_http_req_t *req = call->req;
    if (!req || resp->status == 204 || resp->status == 304)
        return 0;
    const char *cl = fv_http_response_header(resp, "content-length");
    if (cl && strtoull(cl, NULL, 10) <= WHOLE_ANSWER_MAX)
        return 0;
    const char *content_type = copy_answer_headers(call, resp);
    if (fv_http_reply_start(req, resp->status, content_type) < 0) {
        fv_http_call_cancel(call->up_call);
        return 0;
    }
    access_log(call, resp->status);
    call->streaming_out = true;
    return 1;
}

/* The peer's address without its port ("1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1"). */
static fv_slice_t peer_ip(const char *peer)
{
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (len >= 2 && peer[0] == '[' && peer[len - 1] == ']')
        return fv_slice(peer + 1, len - 2);
    return fv_slice(peer, len);
}

static int put(fv_buf_t *b, const char *s, size_t len)
{
    return fv_buf_append(b, s, len);
}

/* The request's header lines as the upstream gets them, into b. */
static int build_headers(proxy_call_t *call, fv_buf_t *b)
{
    fv_http_req_t *req = call->req;
    size_t count = fv_http_req_header_count(req);
    fv_slice_t toks[MAX_CONNECTION_TOKENS];
    size_t ntok = 0;
    fv_slice_t host = FV_SLICE_NULL;
    bool xff = false;
    int rc = 0;

    for (size_t i = 0; i < count; i++) {
        fv_slice_t name, value;
        fv_http_req_header_at(req, i, &name, &value);
        if (name.len == 10 && strncasecmp(name.ptr, "connection", 10) == 0)
            ntok = connection_tokens(value, toks, ntok, MAX_CONNECTION_TOKENS);
        else if (name.len == 4 && strncasecmp(name.ptr, "host", 4) == 0)
            host = value;
        else if (name.len == 15 && strncasecmp(name.ptr, "x-forwarded-for", 15) == 0)
            xff = true;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        fv_slice_t name, value;
        fv_http_req_header_at(req, i, &name, &value);
        if (dropped_request_header(name.ptr, name.len) ||
            (ntok && named_in(toks, ntok, name.ptr, name.len)))
            continue;
        rc = put(b, name.ptr, name.len);
        if (rc == 0)
            rc = put(b, ": ", 2);
        if (rc == 0)
            rc = put(b, value.ptr, value.len);
        if (rc == 0)
            rc = put(b, "\r\n", 2);
    }
    /* the client's chain first, then the peer, as common proxies append */
    if (rc == 0)
        rc = put(b, "X-Forwarded-For: ", 17);
    for (size_t i = 0; xff && i < count && rc == 0; i++) {
        fv_slice_t name, value;
        fv_http_req_header_at(req, i, &name, &value);
        if (name.len == 15 && strncasecmp(name.ptr, "x-forwarded-for", 15) == 0 && value.len) {
            rc = put(b, value.ptr, value.len);
            if (rc == 0)
                rc = put(b, ", ", 2);
        }
    }
    fv_slice_t ip = peer_ip(fv_http_req_peer(req));
    if (rc == 0)
        rc = put(b, ip.ptr, ip.len);
    if (rc == 0)
        rc = put(b, "\r\nX-Forwarded-Proto: http\r\n", 27);
    if (rc == 0 && host.len) {
        rc = put(b, "X-Forwarded-Host: ", 18);
        if (rc == 0)
            rc = put(b, host.ptr, host.len);
        if (rc == 0)
            rc = put(b, "\r\n", 2);
    }
    /* who the services see: only ever from a token the gateway checked (a client's own
     * X-Finalverse-Player was dropped above) */
    if (rc == 0 && call->player[0]) {
        rc = put(b, "X-Finalverse-Player: ", 21);
        if (rc == 0)
            rc = put(b, call->player, strlen(call->player));
        if (rc == 0)
            rc = put(b, "\r\n", 2);
    }
    if (rc == 0)
        rc = put(b, "X-Request-Id: ", 14);
    if (rc == 0)
        rc = put(b, call->request_id, strlen(call->request_id));
    if (rc == 0)
        rc = put(b, "\r\n", 2);
    return rc;
}

static void on_up_drain(void *data)
{
    proxy_call_t *call = data;
    if (call->req)
        fv_http_req_resume_body(call->req);
}

/* A piece of the client's body: on to the upstream, pausing the client while the upstream
 * connection holds more than its ceiling. */
static void on_client_piece(fv_http_req_t *req, void *data, const char *piece, size_t len,
                            bool end)
{
    proxy_call_t *call = data;
    if (!call->up_call)
        return;                  /* answered already: the server reads no more */
    int rc = fv_http_call_write(call->up_call, piece, len);
    if (rc == 0 && end)
        rc = fv_http_call_end(call->up_call);
    if (rc < 0) {
        fv_http_call_cancel(call->up_call);
        return;
    }
    if (!end && fv_http_call_full(call->up_call)) {
        fv_http_req_pause_body(req);
        fv_http_call_on_drain(call->up_call, on_up_drain, call);
    }
}

static void send_upstream(proxy_call_t *call)
{
    gateway_t *gw = call->gw;
    fv_http_req_t *req = call->req;
    fv_buf_t *head = &gw->scratch;
    fv_buf_reset(head);
    int rc = build_headers(call, head);
    fv_slice_t method = fv_http_req_method(req);
    char m[32];
    if (method.len >= sizeof(m))
        rc = FV_EINVAL;
    else
        memcpy(m, method.ptr, method.len), m[method.len] = '\0';
    fv_slice_t body = fv_http_req_body(req);
    gw_route_t *r = call->route;
    fv_http_client_req_t up = {
        .method = m,
        .host = call->inst->host,
        .port = call->inst->port,
        .target = call->target,
        .raw_headers = head->ptr,
        .raw_headers_len = head->len,
        .body = body.ptr,
        .body_len = body.len,
        .timeout_ms = r->timeout_ms ? r->timeout_ms : gw->upstream_timeout_ms,
        .on_head = on_up_head,
        .on_body = on_up_body,
        .call = &call->up_call,
    };
    if (call->has_body) {
        fv_slice_t cl = fv_http_req_header(req, "content-length");
        up.body = NULL;
        up.body_len = 0;
        up.body_stream = true;
        up.body_length = -1;
        if (cl.len && cl.len < 20) {
            char num[24];
            memcpy(num, cl.ptr, cl.len);
            num[cl.len] = '\0';
            up.body_length = (int64_t)strtoll(num, NULL, 10);
        }
    }
    if (rc == 0)
        rc = gw->upstream ? fv_http_client_request(gw->upstream, &up, on_upstream, call)
                          : FV_ECANCELED;
    if (rc == 0 && call->has_body && !call->reading_body) {
        call->reading_body = true;
        if (fv_http_req_read_body(req, on_client_piece, call) < 0)
            fv_http_call_cancel(call->up_call);
        return;
    }
    if (rc < 0) {
        call->up_call = NULL;
        gw_instance_done(call->inst, FV_ECANCELED);
        call->inst = NULL;
        if (rc == FV_ECANCELED)
            reply_fail(call, FV_EUNAVAILABLE, "the gateway is shutting down");
        else
            reply_fail(call, FV_EINVAL, "the request cannot be forwarded to %s", r->service);
        call_finish(call);
    }
}

/* Picks an instance and sends, or answers why not. */
static void dispatch(proxy_call_t *call)
{
    gw_route_t *r = call->route;
    int rc = gw_upstream_pick(r->up, NULL, &call->inst);
    if (rc == FV_EAGAIN) {
        if (gw_upstream_wait(r->up, &call->wait) == 0) {
            call->waiting = true;
            return;
        }
        reply_fail(call, FV_EBACKEND, "too many requests wait for %s", r->service);
    } else if (rc == FV_ENOENT) {
        reply_fail(call, FV_EBACKEND, "no healthy instance of %s", r->service);
    } else if (rc < 0) {
        reply_fail(call, FV_EBACKEND, "cannot find %s: the service registry is unreachable",
                   r->service);
    } else {
        send_upstream(call);
        return;
    }
    call_finish(call);
}

static void on_list_ready(gw_wait_t *w, int rc)
{
    proxy_call_t *call = (proxy_call_t *)((char *)w - offsetof(proxy_call_t, wait));
    (void)rc;
    call->waiting = false;
    if (!call->req) {
        call_finish(call);
        return;
    }
    if (call->gw->stopping && !call->gw->upstream) {
        reply_fail(call, FV_EUNAVAILABLE, "the gateway is shutting down");
        call_finish(call);
        return;
    }
    dispatch(call);
}

static void on_limited(void *data, const gw_limit_result_t *res)
{
    proxy_call_t *call = data;
    call->limiting = false;
    if (!call->req) {
        call_finish(call);
        return;
    }
    gw_limit_headers(call->req, res);
    if (res->revoked) {
        call->gw->token_refused++;
        fv_http_resp_header(call->req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        reply_fail(call, FV_EUNAUTH, "the access token was revoked (logged out)");
        call_finish(call);
        return;
    }
    if (!res->allowed) {
        reply_fail(call, FV_ERATELIMIT, "too many requests: wait for Retry-After seconds");
        call_finish(call);
        return;
    }
    dispatch(call);
}

/* The caller's identity: a valid access token names the player the service sees; a token
 * that does not verify is refused here rather than passed on as if absent. false: answered. */
static bool check_token(proxy_call_t *call)
{
    gateway_t *gw = call->gw;
    fv_http_req_t *req = call->req;
    const char *token = gw_bearer_token(req);
    if (!token) {
        if (!call->route->authenticated)
            return true;
        gw->token_refused++;
        fv_http_resp_header(req, "WWW-Authenticate", "Bearer");
        reply_fail(call, FV_EUNAUTH, "%s needs an access token", call->route->prefix);
        return false;
    }
    fv_token_claims_t claims;
    if (gw_token_check(gw->tokens, gw->cfg->auth.jwt_secret, token,
                       (int64_t)(fv_wall_ms() / 1000), &claims) < 0) {
        gw->token_refused++;
        fv_http_resp_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        reply_fail(call, FV_EUNAUTH, "the access token is invalid or expired");
        return false;
    }
    (void)fv_str_copy(call->player, sizeof(call->player), claims.sub);
    (void)fv_str_copy(call->jti, sizeof(call->jti), claims.jti);
    return true;
}

static bool idempotent(fv_slice_t m)
{
    return fv_slice_eq_cstr(m, "GET") || fv_slice_eq_cstr(m, "HEAD") ||
           fv_slice_eq_cstr(m, "OPTIONS") || fv_slice_eq_cstr(m, "PUT") ||
           fv_slice_eq_cstr(m, "DELETE");
}

/* Forwards req along route r: rest is the path below the prefix as sent (NULL: none). */
static void proxy(gateway_t *gw, gw_route_t *r, fv_http_req_t *req, const char *rest)
{
    fv_arena_t *arena = fv_http_req_arena(req);
    proxy_call_t *call = fv_calloc(1, sizeof(*call));
    call->gw = gw;
    call->route = r;
    call->req = req;
    call->started_ns = gw->access_log ? fv_now_ns() : 0;
    call->wait.ready = on_list_ready;
    gw->in_flight++;

    gw_request_id(gw, req, call->request_id);
    if (gw->stopping || !gw->upstream || !r->up) {
        reply_fail(call, FV_EUNAVAILABLE, gw->stopping ? "the gateway is shutting down"
                                                       : "%s cannot be reached", r->service);
        call_finish(call);
        return;
    }

    char path[TARGET_MAX];
    size_t plen = 0;
    size_t prefix_len = r->strip ? 0 : strlen(r->prefix);
    if (prefix_len)
        memcpy(path, r->prefix, prefix_len);
    int rc = gw_path_normalise(rest ? rest : "", rest ? strlen(rest) : 0, path + prefix_len,
                               sizeof(path) - prefix_len, &plen);
    if (rc < 0) {
        reply_fail(call, rc == FV_EINVAL ? FV_EINVAL : FV_ETOOBIG,
                   rc == FV_EINVAL ? "the path leaves %s" : "the path is too long", r->prefix);
        call_finish(call);
        return;
    }
    plen += prefix_len;
    if (prefix_len && plen == prefix_len + 1 && (!rest || !*rest))
        plen--;                                   /* "/assets", not "/assets/" */
    fv_slice_t query = fv_http_req_query(req);
    call->target = fv_arena_alloc(arena, plen + query.len + 2);
    memcpy(call->target, path, plen);
    if (query.len) {
        call->target[plen] = '?';
        memcpy(call->target + plen + 1, query.ptr, query.len);
        plen += query.len + 1;
    }
    call->target[plen] = '\0';
    call->has_body = fv_http_req_body_streaming(req);
    call->retryable = idempotent(fv_http_req_method(req)) && !call->has_body;
    if (!check_token(call)) {
        call_finish(call);
        return;
    }
    fv_http_req_on_abort(req, on_client_abort, call);
    gw_limit_result_t now;
    switch (gw_limit_take(gw, req, GW_LIMIT_API, call->player[0] ? call->player : NULL,
                          call->jti[0] ? call->jti : NULL, &now, on_limited, call)) {
    case GW_LIMIT_WAIT:
        call->limiting = true;
        return;
    case GW_LIMIT_ANSWERED:
        call->limiting = true;          /* as on_limited expects */
        on_limited(call, &now);
        return;
    case GW_LIMIT_GO:
        break;
    }
    dispatch(call);
}

void gateway_proxy(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    if (gw_cors_preflight(gw, req))
        return;
    gw_cors_headers(gw, req);
    const char *service = fv_http_req_param(req, "service");
    int idx = service ? fv_component_index(service) : -1;
    if (idx < 0 || !gw->routes) {
        fv_http_reply_errorf(req, FV_ENOENT, "no service '%s'", service ? service : "");
        return;
    }
    proxy(gw, &gw->routes[gw->module_route0 + (size_t)idx], req, fv_http_req_param(req, "rest"));
}

void gateway_route_proxy(fv_http_req_t *req, void *data)
{
    gw_route_t *r = data;
    if (gw_cors_preflight(r->gw, req))
        return;
    gw_cors_headers(r->gw, req);
    proxy(r->gw, r, req, fv_http_req_param(req, "rest"));
}

void gw_request_id(const gateway_t *gw, fv_http_req_t *req, char out[GW_REQUEST_ID_MAX])
{
    fv_slice_t rid = fv_http_req_header(req, "x-request-id");
    if (gw_request_id_ok(rid.ptr, rid.len)) {
        memcpy(out, rid.ptr, rid.len);
        out[rid.len] = '\0';
        return;
    }
    /* "<prefix>-<n>" without printf (most requests come without an id) */
    size_t n = fv_str_copy(out, GW_REQUEST_ID_MAX - 22, gw->id_prefix);
    if (n > GW_REQUEST_ID_MAX - 23)
        n = GW_REQUEST_ID_MAX - 23;
    out[n++] = '-';
    out[n + fv_fmt_u64(out + n, fv_http_req_id(req))] = '\0';
}
