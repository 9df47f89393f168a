/* wsproxy.c - GET /ws with an upgrade goes to the websocket-gateway as a tunnel, so a browser
 * needs one port.
 *
 * The gateway connects to an instance (least outstanding, as for HTTP), sends the client's
 * request head there (hop-by-hop headers dropped except the upgrade's own, X-Forwarded-* and
 * X-Request-Id added), and reads the instance's answer head. A 101 is passed on to the client
 * (fv_http_upgrade, with the instance's headers: Sec-WebSocket-Accept and the rest), and from
 * then on bytes go both ways unread, with back-pressure each way: the client's socket stops
 * being read while the instance's write queue holds more than TUNNEL_HIGH_WATER, and the
 * instance's while the client's output is over its ceiling. Either side closing ends the other
 * (the client's after its queued bytes are out). A refusal (4xx, 503: a bad handshake, an
 * Origin not allowed, too many connections) reaches the client as it was sent, status, type,
 * Retry-After and body; anything else but a 101 is a 502.
 *
 * Lifetime: before the upgrade the tunnel belongs to the request (its abort callback); after,
 * its state is the client socket's driver state, freed by on_free. Either way it is freed only
 * once the upstream handles are closed too. It counts in gw->in_flight throughout, so the
 * gateway's memory outlives every tunnel. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

#define TUNNEL_HIGH_WATER (256 * 1024)
#define TUNNEL_RBUF 65536
#define HANDSHAKE_MS 5000
#define ANSWER_HEAD_MAX 16384

typedef struct ws_tunnel {
    gateway_t *gw;
    fv_http_req_t *req;          /* until the upgrade, or the client went away */
    fv_sock_t *client;           /* after the upgrade, until its on_close */
    gw_instance_t *inst;
    uv_tcp_t up;
    uv_connect_t connect;
    uv_timer_t timer;            /* connect and handshake deadline */
    fv_buf_t head_in;            /* the instance's answer head, until complete */
    char *rbuf;
    size_t up_queued;            /* bytes in the instance's write queue */
    int handles;                 /* open uv handles */
    int inst_rc;                 /* what the instance did, for passive health */
    bool upgraded;
    bool up_closing;
    bool sock_freed;             /* the client socket let go of the state */
    bool client_paused;          /* on_data took nothing: the instance's queue is full */
    char request_id[GW_REQUEST_ID_MAX];
} ws_tunnel_t;

typedef struct ws_write {
    uv_write_t w;
    ws_tunnel_t *t;
    size_t len;
    char data[];
} ws_write_t;

static void tunnel_maybe_free(ws_tunnel_t *t)
{
    if (t->handles > 0 || (t->upgraded && !t->sock_freed) || (!t->upgraded && t->req))
        return;
    gateway_t *gw = t->gw;
    if (t->inst)
        gw_instance_done(t->inst, t->inst_rc);
    fv_buf_dispose(&t->head_in);
    fv_free(t->rbuf);
    fv_free(t);
    gw->in_flight--;
    gateway_release(gw);
}

static void on_handle_closed(uv_handle_t *h)
{
    ws_tunnel_t *t = h->data;
    t->handles--;
    tunnel_maybe_free(t);
}

static void up_close(ws_tunnel_t *t)
{
    if (t->up_closing)
        return;
    t->up_closing = true;
    uv_close((uv_handle_t *)&t->up, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
}

/* Before the upgrade: the client gets an error and the tunnel ends. */
static void fail_before(ws_tunnel_t *t, int code, const char *msg)
{
    fv_http_req_t *req = t->req;
    up_close(t);
    if (!req)
        return;
    t->req = NULL;
    fv_http_req_on_abort(req, NULL, NULL);
    fv_http_resp_header(req, "X-Request-Id", t->request_id);
    fv_http_reply_json(req, fv_err_http_status(code),
                       json_pack("{s:{s:s,s:s}}", "error", "code", fv_err_name(code),
                                 "message", msg));
    tunnel_maybe_free(t);
}

/* ---- instance to client ---- */

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ws_tunnel_t *t = h->data;
    (void)suggested;
    *buf = uv_buf_init(t->rbuf, TUNNEL_RBUF);
}

static const fv_sock_driver_t tunnel_driver;

/* The value of header name ("content-type:", lower case) in the answer head h[0..end), copied
 * into out (cap bytes, NUL-terminated, surrounding blanks dropped); false when absent or too
 * long. */
static bool head_value(const char *h, size_t end, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *line = memchr(h, '\n', end);
    while (line && ++line < h + end) {
        const char *eol = memchr(line, '\n', (size_t)(h + end - line));
        if (!eol)
            return false;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if ((size_t)(ve - v) >= cap)
                return false;
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            return true;
        }
        line = eol;
    }
    return false;
}

/* The websocket-gateway refused the upgrade with status: the client gets that answer, once its
 * body (Content-Length, within what head_in holds) is all here; false while it is not. */
static bool pass_refusal(ws_tunnel_t *t, int status, size_t end)
{
    const char *h = t->head_in.ptr;
    char type[128] = "text/plain", len[24] = "0", retry[24];
    head_value(h, end, "content-type:", type, sizeof(type));
    head_value(h, end, "content-length:", len, sizeof(len));
    char *stop;
    unsigned long body = strtoul(len, &stop, 10);
    if (*stop || body > ANSWER_HEAD_MAX) {
        fail_before(t, FV_EPROTO, "websocket-gateway sent a malformed answer");
        return true;
    }
    if (t->head_in.len - end < body)
        return false;
    fv_http_req_t *req = t->req;
    up_close(t);
    t->inst_rc = 0;                     /* the instance answered; it is not failing */
    t->req = NULL;
    fv_http_req_on_abort(req, NULL, NULL);
    fv_http_resp_header(req, "X-Request-Id", t->request_id);
    if (head_value(h, end, "retry-after:", retry, sizeof(retry)))
        fv_http_resp_header(req, "Retry-After", retry);
    fv_http_reply(req, status, type, h + end, body);
    tunnel_maybe_free(t);
    return true;
}

/* The instance's answer head is complete in t->head_in (end: its length): a 101 becomes the
 * client's, a refusal is passed on, other answers are a 502. Bytes after the head go to the
 * client after the upgrade. */
static void answer_head(ws_tunnel_t *t, size_t end)
{
    const char *h = t->head_in.ptr;
    int status = 0;
    bool parsed = end >= 12 && strncmp(h, "HTTP/1.1 ", 9) == 0 &&
                  sscanf(h + 9, "%3d", &status) == 1;
    if (parsed && ((status >= 400 && status < 500) || status == 503)) {
        pass_refusal(t, status, end);   /* or, its body not all here, wait for more */
        return;
    }
    if (!parsed || status != 101) {
        t->inst_rc = 0;
        fv_log_warn("gateway", "websocket-gateway at %s:%d did not upgrade (status %d, id=%s)",
                    t->inst->host, t->inst->port, status, t->request_id);
        fail_before(t, FV_EPROTO, "websocket-gateway refused the upgrade");
        return;
    }
    /* its headers, less those fv_http_upgrade writes itself */
    fv_buf_t extra;
    fv_buf_init(&extra, ANSWER_HEAD_MAX);
    const char *line = memchr(h, '\n', end) + 1;
    int rc = 0;
    while (rc == 0 && line < h + end) {
        const char *eol = memchr(line, '\n', (size_t)(h + end - line));
        if (!eol)
            break;
        size_t len = (size_t)(eol - line) + 1;
        if (len > 2 && strncasecmp(line, "connection:", 11) != 0 &&
            strncasecmp(line, "date:", 5) != 0 && strncasecmp(line, "server:", 7) != 0 &&
            strncasecmp(line, "x-request-id:", 13) != 0)
            rc = fv_buf_append(&extra, line, len);
        line = eol + 1;
    }
    fv_http_req_t *req = t->req;
    fv_sock_t *client = fv_http_req_sock(req);
    fv_http_resp_header(req, "X-Request-Id", t->request_id);
    fv_http_req_on_abort(req, NULL, NULL);
    if (rc == 0)
        rc = fv_buf_append(&extra, "", 1);
    if (rc < 0 || !client || fv_http_upgrade(req, extra.ptr, &tunnel_driver, t) < 0) {
        fv_buf_dispose(&extra);
        fv_http_req_on_abort(req, NULL, NULL);
        fail_before(t, FV_EUNAVAILABLE, "the connection cannot be upgraded");
        return;
    }
    fv_buf_dispose(&extra);
    t->req = NULL;
    t->upgraded = true;
    t->client = client;
    uv_timer_stop(&t->timer);
    if (t->head_in.len > end)
        fv_sock_write(client, t->head_in.ptr + end, t->head_in.len - end);
    fv_buf_dispose(&t->head_in);
    fv_buf_init(&t->head_in, 0);
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ws_tunnel_t *t = s->data;
    if (n == 0 || t->up_closing)
        return;
    if (n < 0) {
        if (!t->upgraded) {
            t->inst_rc = n == UV_EOF ? FV_ECONNRESET : (int)n;
            fail_before(t, FV_ECONNRESET, "websocket-gateway closed the connection");
            return;
        }
        if (t->client)
            fv_sock_end(t->client);     /* after what is queued for it */
        up_close(t);
        return;
    }
    if (t->upgraded) {
        if (!t->client)
            return;
        fv_sock_write(t->client, buf->base, (size_t)n);
        if (fv_sock_output_full(t->client))
            uv_read_stop(s);            /* on_writable reads on */
        return;
    }
    if (fv_buf_append(&t->head_in, buf->base, (size_t)n) < 0) {
        fail_before(t, FV_EPROTO, "websocket-gateway sent a malformed answer");
        return;
    }
    const char *h = t->head_in.ptr;
    for (size_t i = 3; i < t->head_in.len; i++)
        if (h[i] == '\n' && h[i - 1] == '\r' && h[i - 2] == '\n' && h[i - 3] == '\r') {
            answer_head(t, i + 1);
            return;
        }
}

/* ---- client to instance ---- */

static void on_up_write(uv_write_t *w, int status)
{
    ws_write_t *ww = (ws_write_t *)w;
    ws_tunnel_t *t = ww->t;
    t->up_queued -= ww->len;
    fv_free(ww);
    if (status < 0 || t->up_closing) {
        if (status < 0 && !t->up_closing) {
            if (t->client)
                fv_sock_end(t->client);
            up_close(t);
        }
        return;
    }
    if (t->client_paused && t->up_queued < TUNNEL_HIGH_WATER / 2 && t->client) {
        t->client_paused = false;
        fv_sock_process(t->client);
    }
}

/* Bytes to the instance: straight to the kernel when it takes them, the rest copied and
 * queued. 0 or a libuv error. */
static int up_write(ws_tunnel_t *t, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = t->up_queued ? UV_EAGAIN : uv_try_write((uv_stream_t *)&t->up, &b, 1);
    size_t sent = n > 0 ? (size_t)n : 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (sent == len)
        return 0;
    ws_write_t *w = fv_malloc(sizeof(*w) + len - sent);
    w->t = t;
    w->len = len - sent;
    memcpy(w->data, data + sent, w->len);
    b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->w, (uv_stream_t *)&t->up, &b, 1, on_up_write);
    if (rc < 0) {
        fv_free(w);
        return rc;
    }
    t->up_queued += w->len;
    return 0;
}

static size_t tunnel_on_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    ws_tunnel_t *t = state;
    if (t->up_closing)
        return len;
    if (t->up_queued >= TUNNEL_HIGH_WATER) {
        t->client_paused = true;        /* on_up_write offers the bytes again */
        return 0;
    }
    if (up_write(t, data, len) < 0) {
        fv_sock_end(s);
        up_close(t);
    }
    return len;
}

static void tunnel_on_writable(fv_sock_t *s, void *state)
{
    ws_tunnel_t *t = state;
    (void)s;
    if (!t->up_closing)
        (void)uv_read_start((uv_stream_t *)&t->up, on_up_alloc, on_up_read);
}

static void tunnel_on_drain(fv_sock_t *s, void *state)
{
    /* the gateway stops: both ends close; the websocket-gateway sees its peer go */
    fv_sock_end(s);
    up_close(state);
}

static void tunnel_on_close(fv_sock_t *s, void *state)
{
    ws_tunnel_t *t = state;
    (void)s;
    t->client = NULL;
    up_close(t);
}

static void tunnel_on_free(fv_sock_t *s, void *state)
{
    ws_tunnel_t *t = state;
    (void)s;
    t->sock_freed = true;
    tunnel_maybe_free(t);
}

static const fv_sock_driver_t tunnel_driver = {
    .name = "ws-tunnel",
    .on_data = tunnel_on_data,
    .on_writable = tunnel_on_writable,
    .on_drain = tunnel_on_drain,
    .on_close = tunnel_on_close,
    .on_free = tunnel_on_free,
};

/* ---- the handshake ---- */

static bool tunnel_header_dropped(fv_slice_t n)
{
    static const char *const names[] = {"host", "keep-alive", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "content-length",
                                        "proxy-authorization", "x-forwarded-for",
                                        "x-forwarded-proto", "x-forwarded-host", "x-request-id",
                                        "connection"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n.len == strlen(names[i]) && strncasecmp(n.ptr, names[i], n.len) == 0)
            return true;
    return false;
}

static int handshake_head(ws_tunnel_t *t, fv_buf_t *b)
{
    fv_http_req_t *req = t->req;
    fv_slice_t q = fv_http_req_query(req);
    int rc = fv_buf_printf(b, "GET /ws%s%.*s HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade\r\n",
                           q.len ? "?" : "", (int)q.len, q.ptr, t->inst->host, t->inst->port);
    fv_slice_t host = FV_SLICE_NULL;
    size_t count = fv_http_req_header_count(req);
    for (size_t i = 0; i < count && rc == 0; i++) {
        fv_slice_t name, value;
        fv_http_req_header_at(req, i, &name, &value);
        if (name.len == 4 && strncasecmp(name.ptr, "host", 4) == 0)
            host = value;
        if (tunnel_header_dropped(name))
            continue;
        rc = fv_buf_printf(b, "%.*s: %.*s\r\n", (int)name.len, name.ptr, (int)value.len,
                           value.ptr);
    }
    const char *peer = fv_http_req_peer(req);
    const char *colon = strrchr(peer, ':');
    int plen = colon ? (int)(colon - peer) : (int)strlen(peer);
    if (rc == 0)
        rc = fv_buf_printf(b, "X-Forwarded-For: %.*s\r\nX-Forwarded-Proto: http\r\n"
                           "X-Forwarded-Host: %.*s\r\nX-Request-Id: %s\r\n\r\n", plen, peer,
                           (int)host.len, host.ptr ? host.ptr : "", t->request_id);
    return rc;
}

static void on_handshake_timeout(uv_timer_t *timer)
{
    ws_tunnel_t *t = timer->data;
    t->inst_rc = FV_ETIMEDOUT;
    fail_before(t, FV_ETIMEDOUT, "websocket-gateway did not answer in time");
}

static void on_up_connect(uv_connect_t *c, int status)
{
    ws_tunnel_t *t = c->data;
    if (t->up_closing)
        return;
    if (status < 0) {
        t->inst_rc = status;
        fail_before(t, status == UV_ECONNREFUSED ? FV_ECONNREFUSED : FV_ECONNRESET,
                    "websocket-gateway refused the connection");
        return;
    }
    if (!t->req) {
        up_close(t);
        return;
    }
    uv_tcp_nodelay(&t->up, 1);
    fv_buf_t head;
    fv_buf_init(&head, ANSWER_HEAD_MAX * 2);
    int rc = handshake_head(t, &head);
    if (rc == 0)
        rc = up_write(t, head.ptr, head.len);
    fv_buf_dispose(&head);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&t->up, on_up_alloc, on_up_read);
    if (rc < 0)
        fail_before(t, FV_ECONNRESET, "websocket-gateway closed the connection");
}

static void on_client_abort(fv_http_req_t *req, void *data)
{
    ws_tunnel_t *t = data;
    (void)req;
    t->req = NULL;
    up_close(t);
    tunnel_maybe_free(t);
}

static void ws_handler(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    fv_slice_t upgrade = fv_http_req_header(req, "upgrade");
    if (!fv_http_req_is_upgrade(req) || upgrade.len != 9 ||
        strncasecmp(upgrade.ptr, "websocket", 9) != 0) {
        fv_http_reply_errorf(req, FV_EINVAL, "GET /ws is a WebSocket: it needs "
                             "Connection: Upgrade and Upgrade: websocket");
        return;
    }
    if (gw->stopping || !gw->ups) {
        fv_http_reply_errorf(req, FV_EUNAVAILABLE, "the gateway is shutting down");
        return;
    }
    gw_upstream_t *u = gw_upstream_get(gw, "websocket-gateway");
    gw_instance_t *inst = NULL;
    int rc = u ? gw_upstream_pick(u, NULL, &inst) : FV_EBACKEND;
    if (rc < 0) {
        fv_http_reply_json(req, 503, json_pack("{s:{s:s,s:s}}", "error", "code",
                                               fv_err_name(FV_EBACKEND), "message",
                                               "no healthy instance of websocket-gateway"));
        return;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(inst->host, inst->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(inst->host, inst->port, (struct sockaddr_in6 *)&ss) != 0) {
        gw_instance_done(inst, 0);
        fv_http_reply_errorf(req, FV_EBACKEND, "websocket-gateway is not at an IP address");
        return;
    }
    ws_tunnel_t *t = fv_calloc(1, sizeof(*t));
    t->gw = gw;
    t->req = req;
    t->inst = inst;
    t->rbuf = fv_malloc(TUNNEL_RBUF);
    fv_buf_init(&t->head_in, ANSWER_HEAD_MAX);
    gw_request_id(gw, req, t->request_id);
    gw->in_flight++;
    uv_loop_t *loop = fv_module_loop(gw->ctx);
    uv_tcp_init(loop, &t->up);
    uv_timer_init(loop, &t->timer);
    t->up.data = t;
    t->timer.data = t;
    t->connect.data = t;
    t->handles = 2;
    fv_http_req_on_abort(req, on_client_abort, t);
    uv_timer_start(&t->timer, on_handshake_timeout, HANDSHAKE_MS, 0);
    rc = uv_tcp_connect(&t->connect, &t->up, (const struct sockaddr *)&ss, on_up_connect);
    if (rc < 0) {
        t->inst_rc = rc;
        fail_before(t, FV_ECONNREFUSED, "websocket-gateway cannot be reached");
    }
}

int gateway_ws_routes(gateway_t *gw, fv_router_t *router)
{
    return fv_router_add_limited(router, "GET", "/ws", ws_handler, gw, 0);
}
