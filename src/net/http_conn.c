/* http_conn.c - one server connection: read buffer, llhttp parsing with the size and time
 * limits, the request object, the write queue, keep-alive and pipelining (one request in the
 * handler at a time, answers in order), lingering close. Listening, accepting and the
 * connection set live in http_server.c; response bytes are formatted in http_reply.c. */
#include "net/http_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/log.h"
#include "core/time.h"

static llhttp_settings_t settings;
static bool settings_ready;

static void conn_process(fv__http_conn_t *c);
static void conn_fail(fv__http_conn_t *c, int status, int code, const char *msg);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static int conn_read_start(fv__http_conn_t *c);

static const char *state_name(fv__http_conn_state_t s)
{
    switch (s) {
    case FV_HTTP_CONN_OPEN: return "open";
    case FV_HTTP_CONN_DRAINING: return "draining";
    case FV_HTTP_CONN_LINGER: return "linger";
    case FV_HTTP_CONN_CLOSING: return "closing";
    }
    return "?";
}

static void conn_set_state(fv__http_conn_t *c, fv__http_conn_state_t to)
{
    assert(to > c->state);
    fv_log_debug("http", "conn=%p %s -> %s", (void *)c, state_name(c->state), state_name(to));
    c->state = to;
}

/* Output of a detached connection; a full sink just loses bytes. */
static void sink_put(fv__http_conn_t *c, const char *data, size_t len)
{
    if (len && fv_buf_append(c->sink, data, len) < 0)
        fv_log_debug("http", "detached output dropped");
}

/* ---- timers ----
 *
 * Each connection has one deadline (header, body, idle or linger, by phase) but the uv timer
 * behind it is moved lazily: arming only records the deadline, and touches the timer heap only
 * when the new deadline is earlier than the one the timer is set for; stopping only clears the
 * deadline. A timer that fires early re-arms for what is left (nginx keeps its timers the same
 * way). Under keep-alive load that takes two heap operations per request off the hot path. */

static void on_timer(uv_timer_t *t)
{
    fv__http_conn_t *c = t->data;
    uint64_t now = uv_now(t->loop);
    c->timer_due = 0;
    if (c->deadline == 0)
        return;
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    if (c->state == FV_HTTP_CONN_LINGER) {
        fv__http_conn_close(c);
        return;
    }
    switch (c->phase) {
    case FV_HTTP_PHASE_IDLE:
        fv__http_conn_close(c);
        break;
    case FV_HTTP_PHASE_HEAD:
        conn_fail(c, 408, FV_ETIMEDOUT, "request headers not received in time");
        break;
    case FV_HTTP_PHASE_BODY:
        conn_fail(c, 408, FV_ETIMEDOUT, "request body not received in time");
        break;
    case FV_HTTP_PHASE_HANDLER:
        break;
    }
}

static void timer_arm(fv__http_conn_t *c, uint32_t ms)
{
    if (c->detached || c->state >= FV_HTTP_CONN_CLOSING)
        return;
    c->deadline = uv_now(c->timer.loop) + ms;
    if (c->timer_due == 0 || c->timer_due > c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

static void timer_stop(fv__http_conn_t *c)
{
    c->deadline = 0;   /* the uv timer may still fire; it then finds nothing to do */
}

/* ---- parser callbacks ---- */

static int on_message_begin(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    c->phase = FV_HTTP_PHASE_HEAD;
    fv_buf_reset(&c->head);
    fv_buf_reset(&c->body);
    c->url_len = 0;
    c->hdr_count = 0;
    c->last_cb = 0;
    c->head_done = false;
    timer_arm(c, c->server->lim.header_timeout_ms);
    return 0;
}

/* A buffer that cannot grow is over its ceiling (the client's fault: 431/413) or out of
 * memory (ours: 503); the two must not be confused. */
static int refuse_for(fv__http_conn_t *c, int rc, int over_status)
{
    c->err_status = rc == FV_ENOMEM ? 503 : over_status;
    return -1;
}

static int head_append(fv__http_conn_t *c, const char *at, size_t len)
{
    int rc = fv_buf_append(&c->head, at, len);
    return rc < 0 ? refuse_for(c, rc, 431) : 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    fv__http_conn_t *c = p->data;
    c->url_len += len;
    return head_append(c, at, len);
}

/* RFC 9110 token characters, the only ones allowed in a header name. llhttp 8 lets a space
 * before the colon through, so the name is checked here as it arrives. */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Header names and values arrive in pieces across reads; they are copied into c->head, so
 * the read buffer can be reused, and recorded as offsets until the head is complete (the head
 * buffer may move as it grows). */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    fv__http_conn_t *c = p->data;
    if (c->head_done)
        return 0;                    /* chunked trailers: dropped, the head must not move */
    if (c->last_cb != 1) {
        if (c->hdr_count == FV_HTTP_MAX_HEADERS) {
            c->err_status = 431;
            return -1;
        }
        if (c->hdr_count == c->hdr_cap) {
            c->hdr_cap = c->hdr_cap ? c->hdr_cap * 2 : 16;
            c->hdr_rec = fv_realloc(c->hdr_rec, c->hdr_cap * sizeof(*c->hdr_rec));
            c->hdr_off = fv_realloc(c->hdr_off, c->hdr_cap * sizeof(*c->hdr_off));
        }
        fv__http_hdr_rec_t *h = &c->hdr_rec[c->hdr_count++];
        h->name_off = c->head.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        c->last_cb = 1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char)at[i])) {
            c->err_status = 400;
            c->err_msg = "invalid character in a header name";
            return -1;
        }
    }
    c->hdr_rec[c->hdr_count - 1].name_len += len;
    return head_append(c, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    fv__http_conn_t *c = p->data;
    if (c->head_done)
        return 0;
    if (c->hdr_count == 0)
        return -1;
    fv__http_hdr_rec_t *h = &c->hdr_rec[c->hdr_count - 1];
    if (c->last_cb != 2) {
        h->value_off = c->head.len;
        c->last_cb = 2;
    }
    h->value_len += len;
    return head_append(c, at, len);
}

/* What llhttp lets through and nginx refuses: HTTP/0.9 (which llhttp parses as a request line
 * without a version), any major version but 1 (505), HTTP/1.1 without Host, a second Host, an
 * empty header name. Returns the status to refuse with, or 0. */
static int head_check(fv__http_conn_t *c, const llhttp_t *p, const char *base)
{
    if (p->http_major == 0 && p->http_minor == 9) {
        c->err_msg = "HTTP/0.9 requests are not supported";
        return 400;
    }
    if (p->http_major != 1) {
        c->err_msg = "HTTP version not supported";
        return 505;
    }
    int hosts = 0;
    for (size_t i = 0; i < c->hdr_count; i++) {
        const fv__http_hdr_rec_t *h = &c->hdr_rec[i];
        if (h->name_len == 0) {
            c->err_msg = "empty header name";
            return 400;
        }
        if (h->name_len == 4 && strncasecmp(base + h->name_off, "host", 4) == 0)
            hosts++;
    }
    if (hosts > 1) {
        c->err_msg = "more than one Host header";
        return 400;
    }
    if (hosts == 0 && p->http_minor >= 1) {
        c->err_msg = "HTTP/1.1 request without a Host header";
        return 400;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    fv_http_req_t *r = &c->req;
    const char *base = c->head.ptr ? c->head.ptr : "";
    int bad = head_check(c, p, base);
    if (bad) {
        c->err_status = bad;
        return -1;
    }
    for (size_t i = 0; i < c->hdr_count; i++) {
        const fv__http_hdr_rec_t *h = &c->hdr_rec[i];
        fv_slice_t v = fv_slice(base + h->value_off, h->value_len);
        if (h->value_len == 0)
            v = fv_slice("", 0);
        /* llhttp leaves trailing whitespace of a value in place */
        while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
            v.len--;
        c->hdr_off[i].name = fv_slice(base + h->name_off, h->name_len);
        c->hdr_off[i].value = v;
    }
    r->headers = c->hdr_off;
    r->header_count = c->hdr_count;
    c->head_done = true;
    const char *m = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    r->method = fv_slice_cstr(m);
    r->is_head = p->method == HTTP_HEAD;
    r->target = fv_slice(base, c->url_len);
    const char *q = memchr(base, '?', c->url_len);
    if (q) {
        r->path = fv_slice(base, (size_t)(q - base));
        r->query = fv_slice(q + 1, c->url_len - (size_t)(q - base) - 1);
    } else {
        r->path = r->target;
        r->query = fv_slice("", 0);
    }
    r->minor = p->http_minor;
    r->keep_alive = llhttp_should_keep_alive(p) != 0;
    if (p->upgrade) {
        /* no upgrades on this server: answer the request as a plain one */
        p->upgrade = 0;
    }

    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->server->lim.max_body_bytes) {
        c->err_status = 413;
        return -1;
    }
    if (has_body) {
        c->phase = FV_HTTP_PHASE_BODY;
        timer_arm(c, c->server->lim.body_timeout_ms);
        fv_slice_t expect = fv_http_req_header(r, "expect");
        if (expect.len == 12 && strncasecmp(expect.ptr, "100-continue", 12) == 0 &&
            p->http_minor >= 1) {
            static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (c->detached) {
                sink_put(c, cont, sizeof(cont) - 1);
            } else {
                /* a static buffer needs no write record; uv_try_write first, as this is tiny */
                uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
                if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)b.len)
                    fv_log_debug("http", "100-continue not sent in one piece");
            }
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    fv__http_conn_t *c = p->data;
    int rc = fv_buf_append(&c->body, at, len);
    return rc < 0 ? refuse_for(c, rc, 413) : 0;
}

/* A chunk that cannot fit under the body limit is refused from its size line, before any of
 * its bytes are read (llhttp puts the chunk size in content_length here). */
static int on_chunk_header(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    size_t max = c->server->lim.max_body_bytes;
    if (p->content_length > max - c->body.len) {
        c->err_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    c->msg_ready = true;
    /* one request at a time: stop here, the rest of the buffer waits for the answer */
    return HPE_PAUSED;
}

static void settings_setup(void)
{
    if (settings_ready)
        return;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_chunk_header = on_chunk_header;
    settings.on_message_complete = on_message_complete;
    settings_ready = true;
}

/* ---- lifecycle ---- */

static void conn_init(fv__http_conn_t *c, fv_http_server_t *s)
{
    settings_setup();
    c->server = s;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    fv_buf_init(&c->head, s->lim.max_header_bytes);
    fv_buf_init(&c->body, s->lim.max_body_bytes);
    fv_buf_init(&c->req.resp_headers, 64 * 1024);
    c->req.conn = c;
    c->phase = FV_HTTP_PHASE_IDLE;
}

static void conn_free(fv__http_conn_t *c)
{
    fv_buf_dispose(&c->head);
    fv_buf_dispose(&c->body);
    fv_buf_dispose(&c->req.resp_headers);
    fv_free(c->hdr_off);
    fv_free(c->hdr_rec);
    fv_free(c->rbuf);
    while (c->free_writes) {
        fv__http_write_t *w = c->free_writes;
        c->free_writes = w->next;
        fv_buf_dispose(&w->head);
        fv_free(w);
    }
    fv_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    fv__http_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    fv_http_server_t *s = c->server;
    conn_free(c);
    fv__http_server_conn_gone(s);
}

/* Ends the request in the handler without an answer (connection gone). */
static void req_abort(fv__http_conn_t *c)
{
    fv_http_req_t *r = &c->req;
    if (!r->active)
        return;
    r->active = false;
    c->server->busy--;
    fv_http_req_abort_cb cb = r->abort_cb;
    r->abort_cb = NULL;
    if (cb)
        cb(r, r->abort_data);
    fv_arena_dispose(&r->arena);
}

static void conn_unlink(fv__http_conn_t *c)
{
    fv_http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->conn_count--;
}

void fv__http_conn_close(fv__http_conn_t *c)
{
    if (c->state >= FV_HTTP_CONN_CLOSING)
        return;                       /* many paths end here; only the first counts */
    conn_set_state(c, FV_HTTP_CONN_CLOSING);
    req_abort(c);
    if (c->detached)
        return;
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* nothing to do: the linger timer or the peer's EOF closes the connection */
}

/* The last response is out: send FIN, then read and drop what the peer still sends for a
 * moment, so a peer still sending (a refused body) reads our answer instead of a reset. */
static void conn_linger(fv__http_conn_t *c)
{
    if (c->state >= FV_HTTP_CONN_LINGER)
        return;
    conn_set_state(c, FV_HTTP_CONN_LINGER);
    if (c->detached)
        return;
    c->rlen = 0;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        fv__http_conn_close(c);
        return;
    }
    if (!c->reading)
        (void)conn_read_start(c);
    timer_arm(c, FV_HTTP_LINGER_MS);
}

/* ---- writing ---- */

/* Back-pressure: a client that pipelines requests and never reads must not make us queue all
 * the answers. Over the ceiling the connection stops parsing (and reading) until libuv has
 * written enough; so at most one response more than the ceiling is queued. */
static bool out_full(const fv__http_conn_t *c)
{
    return c->out_bytes > c->server->lim.max_output_bytes;
}

static void out_add(fv__http_conn_t *c, fv__http_write_t *w, size_t len)
{
    fv_http_server_t *s = c->server;
    w->queued = len;
    c->out_bytes += len;
    s->out_bytes += len;
    if (s->out_bytes > s->out_bytes_peak)
        s->out_bytes_peak = s->out_bytes;
}

static void write_done(fv__http_conn_t *c, fv__http_write_t *w, int status)
{
    c->out_bytes -= w->queued;
    c->server->out_bytes -= w->queued;
    w->queued = 0;
    fv_free(w->owned);
    w->owned = NULL;
    bool close_after = w->close_after;
    fv_buf_reset(&w->head);
    if (w->head.cap > 4 * FV_HTTP_INLINE_BODY) {
        fv_buf_dispose(&w->head);
        fv_buf_init(&w->head, 0);
    }
    w->next = c->free_writes;
    c->free_writes = w;
    c->writes_pending--;
    if (status < 0) {
        fv__http_conn_close(c);
        return;
    }
    bool drained = c->state == FV_HTTP_CONN_DRAINING && !c->req.active &&
                   c->phase == FV_HTTP_PHASE_IDLE;
    if ((close_after || drained) && c->writes_pending == 0)
        conn_linger(c);
}

static void on_write(uv_write_t *req, int status)
{
    fv__http_write_t *w = req->data;
    fv__http_conn_t *c = w->conn;
    bool was_full = out_full(c);
    write_done(c, w, status);
    if (was_full && !out_full(c) && c->state < FV_HTTP_CONN_LINGER && !c->dispatching)
        conn_process(c);             /* drained below the ceiling: parse and read again */
}

static fv__http_write_t *write_get(fv__http_conn_t *c)
{
    fv__http_write_t *w = c->free_writes;
    if (w) {
        c->free_writes = w->next;
    } else {
        w = fv_calloc(1, sizeof(*w));
        w->conn = c;
        w->req.data = w;
        fv_buf_init(&w->head, 0);
    }
    w->next = NULL;
    w->owned = NULL;
    w->queued = 0;
    w->close_after = false;
    c->writes_pending++;
    return w;
}

/* Sends head (already in w->head) and body in one write. */
static void write_send(fv__http_conn_t *c, fv__http_write_t *w, const char *body, size_t len)
{
    if (c->detached) {
        sink_put(c, w->head.ptr, w->head.len);
        sink_put(c, body, len);
        write_done(c, w, 0);
        return;
    }
    uv_buf_t iov[2];
    unsigned nbufs = len ? 2 : 1;
    iov[0] = uv_buf_init(w->head.ptr, (unsigned)w->head.len);
    iov[1] = uv_buf_init((char *)body, (unsigned)len);
    /* Try the write now: a response that fits the socket buffer (nearly all) then costs one
     * writev and no write request, no POLLOUT round trip and no epoll_ctl. libuv refuses the
     * try (UV_EAGAIN) while earlier writes are queued, so order is kept. */
    size_t total = w->head.len + len;
    int tried = uv_try_write((uv_stream_t *)&c->tcp, iov, nbufs);
    if (tried >= 0 && (size_t)tried == total) {
        write_done(c, w, 0);
        return;
    }
    if (tried < 0 && tried != UV_EAGAIN) {
        write_done(c, w, tried);
        return;
    }
    if (tried > 0) {
        size_t done = (size_t)tried;
        if (done >= iov[0].len) {
            iov[1].base += done - iov[0].len;
            iov[1].len -= done - iov[0].len;
            iov[0] = iov[1];
            nbufs = 1;
        } else {
            iov[0].base += done;
            iov[0].len -= done;
        }
    }
    out_add(c, w, iov[0].len + (nbufs > 1 ? iov[1].len : 0));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, iov, nbufs, on_write);
    if (rc < 0) {
        fv_log_debug("http", "write failed: %s", uv_strerror(rc));
        write_done(c, w, rc);
    }
}

/* An answer from the server itself (parse error, limit, timeout): then the connection ends. */
static void conn_fail(fv__http_conn_t *c, int status, int code, const char *msg)
{
    if (c->state >= FV_HTTP_CONN_LINGER)
        return;
    if (c->state == FV_HTTP_CONN_OPEN)
        conn_set_state(c, FV_HTTP_CONN_DRAINING);
    timer_stop(c);
    c->phase = FV_HTTP_PHASE_IDLE;
    size_t len;
    char *body = fv__http_error_body(code, msg, &len);
    fv__http_write_t *w = write_get(c);
    w->close_after = true;
    w->owned = body;
    if (fv__http_write_head(&w->head, status, len, false, "application/json", NULL) < 0) {
        write_done(c, w, FV_ENOMEM);
        return;
    }
    write_send(c, w, body, len);
}

void fv__http_conn_respond(fv_http_req_t *r, int status, const char *content_type,
                           const void *body, size_t len, char *owned)
{
    if (!r || !r->active) {
        fv_free(owned);
        return;
    }
    fv__http_conn_t *c = r->conn;
    fv_http_server_t *s = c->server;
    bool keep = r->keep_alive && c->state == FV_HTTP_CONN_OPEN && !s->stopping;
    fv__http_write_t *w = write_get(c);
    w->close_after = !keep;
    bool inline_body = !owned && len && !r->is_head && len <= FV_HTTP_INLINE_BODY;
    if (!owned && len && !r->is_head && !inline_body) {
        /* a borrowed body is copied once; owned bodies go out as they are */
        owned = fv_try_malloc(len);
        if (!owned) {
            /* no room for the copy: a JSON error like every other, small enough to go inline */
            static const char oom[] =
                "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
            status = 503;
            content_type = "application/json";
            body = oom;
            len = sizeof(oom) - 1;
            inline_body = true;
        } else {
            memcpy(owned, body, len);
        }
    }
    if (r->is_head && owned) {
        fv_free(owned);
        owned = NULL;
    }
    w->owned = owned;
    int rc = fv__http_write_head(&w->head, status, len, keep, content_type, &r->resp_headers);
    if (rc == 0 && inline_body) {
        /* a small borrowed body rides in the head buffer: no allocation, one iovec */
        rc = fv_buf_append(&w->head, body, len);
    }

    r->active = false;
    s->busy--;
    if (s->observer)
        s->observer(r, status, fv_now_ns() - r->start_ns, s->observer_data);
    fv_arena_dispose(&r->arena);
    fv_buf_reset(&r->resp_headers);
    r->abort_cb = NULL;
    r->params = NULL;
    r->param_count = r->param_cap = 0;
    r->route = NULL;
    c->phase = FV_HTTP_PHASE_IDLE;

    if (rc < 0)
        write_done(c, w, rc);
    else
        write_send(c, w, owned, owned ? len : 0);
    if (c->state >= FV_HTTP_CONN_LINGER)
        return;
    if (!keep) {
        if (c->state == FV_HTTP_CONN_OPEN)
            conn_set_state(c, FV_HTTP_CONN_DRAINING);
        return;
    }
    timer_arm(c, s->lim.idle_timeout_ms);
    if (!c->dispatching)
        conn_process(c);
}

/* ---- reading and parsing ---- */

static void dispatch(fv__http_conn_t *c)
{
    fv_http_req_t *r = &c->req;
    fv_http_server_t *s = c->server;
    r->body = fv_buf_slice(&c->body);
    r->id = fv_id_next();
    r->start_ns = fv_now_ns();
    fv_arena_init(&r->arena, 4096);
    r->active = true;
    s->busy++;
    c->phase = FV_HTTP_PHASE_HANDLER;
    timer_stop(c);
    c->dispatching = true;
    s->handler(r, s->handler_data);
    c->dispatching = false;
}

/* Parsing goes on while OPEN, and while DRAINING only to finish the request under way. */
static bool conn_may_parse(const fv__http_conn_t *c)
{
    if (c->state == FV_HTTP_CONN_OPEN)
        return true;
    return c->state == FV_HTTP_CONN_DRAINING && c->phase != FV_HTTP_PHASE_IDLE &&
           c->phase != FV_HTTP_PHASE_HANDLER;
}

static void conn_process(fv__http_conn_t *c)
{
    while (conn_may_parse(c) && !c->req.active && c->rlen > 0 && !out_full(c)) {
        c->err_status = 0;
        c->err_msg = NULL;
        llhttp_errno_t e = llhttp_execute(&c->parser, c->rbuf, c->rlen);
        size_t used = c->rlen;
        if (e == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
            llhttp_resume(&c->parser);
        } else if (e != HPE_OK) {
            int st = c->err_status ? c->err_status : 400;
            if (st == 431)
                conn_fail(c, 431, FV_EHDRTOOBIG, "request headers too large");
            else if (st == 413)
                conn_fail(c, 413, FV_ETOOBIG, "request body too large");
            else if (st == 503)
                conn_fail(c, 503, FV_ENOMEM, "out of memory");
            else if (st == 505 || e == HPE_INVALID_VERSION)
                conn_fail(c, 505, FV_EINVAL, "HTTP version not supported");
            else if (c->err_msg)
                conn_fail(c, 400, FV_EINVAL, c->err_msg);
            else {
                char msg[160];
                snprintf(msg, sizeof(msg), "malformed request: %s",
                         llhttp_get_error_reason(&c->parser));
                conn_fail(c, 400, FV_EINVAL, msg);
            }
            c->rlen = 0;
            return;
        }
        if (used < c->rlen)
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        if (c->msg_ready) {
            c->msg_ready = false;
            dispatch(c);
        }
    }
    if (c->detached || c->state >= FV_HTTP_CONN_LINGER)
        return;
    if (out_full(c)) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        return;
    }
    if (!c->reading && c->rlen < c->rcap)
        (void)conn_read_start(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fv__http_conn_t *c = h->data;
    if (c->state == FV_HTTP_CONN_LINGER)
        c->rlen = 0;                        /* dropping input */
    if (c->rcap - c->rlen < 4096 && c->rcap < FV_HTTP_RBUF_MAX) {
        size_t cap = c->rcap ? c->rcap * 2 : FV_HTTP_RBUF_MIN;
        if (cap > FV_HTTP_RBUF_MAX)
            cap = FV_HTTP_RBUF_MAX;
        c->rbuf = fv_realloc(c->rbuf, cap);
        c->rcap = cap;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    fv__http_conn_t *c = stream->data;
    if (nread == UV_ENOBUFS) {
        /* read buffer full while a request is in the handler: wait for its answer */
        uv_read_stop(stream);
        c->reading = false;
        return;
    }
    if (nread < 0) {
        fv__http_conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->state == FV_HTTP_CONN_LINGER) {
        c->rlen = 0;
        return;
    }
    c->rlen += (size_t)nread;
    if (!conn_may_parse(c))
        return;
    conn_process(c);
}

static int conn_read_start(fv__http_conn_t *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = rc == 0;
    return rc;
}

void fv__http_conn_accept(fv_http_server_t *s)
{
    fv__http_conn_t *c = fv_calloc(1, sizeof(*c));
    conn_init(c, s);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    s->handles_open++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) < 0) {
        fv__http_conn_close(c);
        return;
    }
    if (s->conn_count > s->lim.max_connections || s->stopping) {
        fv__http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (conn_read_start(c) < 0) {
        fv__http_conn_close(c);
        return;
    }
    /* a new connection should send a request soon; silence until then is closed quietly */
    timer_arm(c, s->lim.header_timeout_ms);
}

void fv__http_conn_drain(fv__http_conn_t *c)
{
    if (c->state != FV_HTTP_CONN_OPEN)
        return;
    if (!c->req.active && c->phase == FV_HTTP_PHASE_IDLE && c->writes_pending == 0) {
        fv__http_conn_close(c);
        return;
    }
    conn_set_state(c, FV_HTTP_CONN_DRAINING);
}

/* ---- detached connections (fuzzing) ---- */

fv__http_conn_t *fv__http_conn_new_detached(fv_http_server_t *s, fv_buf_t *sink)
{
    fv__http_conn_t *c = fv_calloc(1, sizeof(*c));
    conn_init(c, s);
    c->detached = true;
    c->sink = sink;
    return c;
}

void fv__http_conn_feed(fv__http_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && c->state == FV_HTTP_CONN_OPEN) {
        if (c->rcap == 0) {
            c->rcap = FV_HTTP_RBUF_MIN;
            c->rbuf = fv_malloc(c->rcap);
        }
        size_t n = c->rcap - c->rlen;
        if (n == 0)
            return;                  /* a request is still in the handler and the buffer is full */
        if (n > len)
            n = len;
        memcpy(c->rbuf + c->rlen, data, n);
        c->rlen += n;
        data += n;
        len -= n;
        conn_process(c);
    }
}

void fv__http_conn_free_detached(fv__http_conn_t *c)
{
    if (!c)
        return;
    if (c->state < FV_HTTP_CONN_CLOSING)
        fv__http_conn_close(c);
    conn_free(c);
}
