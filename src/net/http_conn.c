/* http_conn.c - the HTTP/1 driver on a socket (sock.c): llhttp parsing with the size and time
 * limits, the request object, responses, keep-alive and pipelining (one request in the
 * handler at a time, answers in order), drain, upgrades to another driver, the HTTP/2
 * preface sniff and the HTTP/1.1 Upgrade: h2c path. The socket itself (reading, the write
 * queue, linger) is sock.c; listening and the connection set are http_server.c; response
 * bytes are formatted in http_reply.c. */
#include "net/http_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/log.h"
#include "core/time.h"
#include "net/h2.h"

static llhttp_settings_t settings;
static bool settings_ready;

static void conn_fail(fv__http_conn_t *c, int status, int code, const char *msg);
static fv_http_req_t *req_get(fv__http_conn_t *c);
static size_t parse(fv__http_conn_t *c, const char *data, size_t len);

static const char *state_name(fv__http_conn_state_t s)
{
    switch (s) {
    case FV_HTTP_CONN_OPEN: return "open";
    case FV_HTTP_CONN_DRAINING: return "draining";
    case FV_HTTP_CONN_ENDED: return "ended";
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

/* ---- the process's buffered request bodies ----
 *
 * Every connection's body buffer has its own ceiling, but 300 clients each sending most of a
 * large body slowly would still hold 300 of them at once; this total, across every server of
 * the process, bounds that. A body is counted while it is buffered: until the next request on
 * its connection begins, or the connection goes. */
static size_t bodies_total;

static void body_uncount(fv__http_conn_t *c)
{
    bodies_total -= c->body_counted;
    c->body_counted = 0;
}

size_t fv__http_buffered_bodies(void)
{
    return bodies_total;
}

/* ---- streamed request bodies ---- */

static bool body_flowing(const fv__http_conn_t *c)
{
    return c->body_streams && c->body_cb && !c->body_paused;
}

/* The request no longer streams its body (ended, answered or aborted). */
static void body_stop(fv__http_conn_t *c)
{
    c->body_streams = false;
    c->body_paused = false;
    c->body_cb = NULL;
    c->body_cb_data = NULL;
}

static void send_continue(fv__http_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->expect_continue = false;
    fv_sock_write(c->sock, cont, sizeof(cont) - 1);
}

/* ---- parser callbacks ---- */

static int on_message_begin(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    if (!c->req)
        c->req = req_get(c);
    c->phase = FV_HTTP_PHASE_HEAD;
    fv_buf_reset(&c->head);
    fv_buf_reset(&c->body);
    body_uncount(c);
    c->url_len = 0;
    c->hdr_count = 0;
    c->last_cb = 0;
    c->head_done = false;
    c->body_seen = 0;
    fv_sock_deadline(c->sock, c->server->lim.header_timeout_ms);
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
    if (c->hdr_count == 0 || c->last_cb == 3) {
        /* a value with no name before it (": b"): llhttp 8 lets it through */
        c->err_status = 400;
        c->err_msg = "empty header name";
        return -1;
    }
    fv__http_hdr_rec_t *h = &c->hdr_rec[c->hdr_count - 1];
    if (c->last_cb != 2) {
        h->value_off = c->head.len;
        c->last_cb = 2;
    } else if (c->value_seq == c->exec_seq || !c->value_at_exec_end || at != c->exec_start) {
        /* more of the same value, not where a read had cut it: llhttp resumes a value after
         * CRLF + whitespace, the obsolete line folding a proxy must not pass on (RFC 9112
         * sec. 5.2) */
        c->err_status = 400;
        c->err_msg = "obsolete line folding in a header value";
        return -1;
    }
    c->value_seq = c->exec_seq;
    c->value_at_exec_end = at + len == c->exec_end;
    h->value_len += len;
    return head_append(c, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    c->last_cb = 3;
    return 0;
}

/* A Transfer-Encoding value other than "chunked" alone (OWS around it allowed). */
static bool te_is_chunked(const char *v, size_t len)
{
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    return len == 7 && strncasecmp(v, "chunked", 7) == 0;
}

/* What llhttp lets through and nginx refuses: HTTP/0.9 (which llhttp parses as a request line
 * without a version), any major version but 1 (505), HTTP/1.1 without Host, a second Host, an
 * empty header name, a value holding CR, LF or NUL (how a folded line, obs-fold, reaches us),
 * a transfer coding other than chunked (501: a proxy would pass on a body it cannot frame),
 * Transfer-Encoding on HTTP/1.0 (which has none). Returns the status to refuse with, or 0. */
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
        const char *v = base + h->value_off;
        for (size_t k = 0; k < h->value_len; k++) {
            if (v[k] == '\r' || v[k] == '\n' || v[k] == '\0') {
                c->err_msg = v[k] == '\0' ? "NUL in a header value"
                                          : "line folding or a line break in a header value";
                return 400;
            }
        }
        if (h->name_len == 17 && strncasecmp(base + h->name_off, "transfer-encoding", 17) == 0) {
            if (p->http_minor == 0) {
                c->err_msg = "Transfer-Encoding in an HTTP/1.0 request";
                return 400;
            }
            if (!te_is_chunked(v, h->value_len)) {
                c->err_msg = "unsupported transfer coding (only chunked is)";
                return 501;
            }
        }
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
    fv_http_req_t *r = c->req;
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
    if (c->url_len && base[0] != '/' && !(c->url_len == 1 && base[0] == '*')) {
        /* absolute-form (RFC 9112 sec. 3.2.2): served only for our own Host, as origin-form */
        size_t skip = c->url_len > 7 && strncasecmp(base, "http://", 7) == 0 ? 7 : 0;
        const char *auth = base + skip;
        const char *slash = skip ? memchr(auth, '/', c->url_len - skip) : NULL;
        fv_slice_t host = fv_http_req_header(r, "host");
        size_t alen = slash ? (size_t)(slash - auth) : 0;
        if (!slash || alen != host.len || strncasecmp(auth, host.ptr, alen) != 0) {
            c->err_status = 400;
            c->err_msg = skip ? "absolute-form target for another host"
                              : "request target is not a path";
            return -1;
        }
        r->target = fv_slice(slash, c->url_len - (size_t)(slash - base));
    }
    const char *tb = r->target.ptr;
    const char *q = memchr(tb, '?', r->target.len);
    if (q) {
        r->path = fv_slice(tb, (size_t)(q - tb));
        r->query = fv_slice(q + 1, r->target.len - (size_t)(q - tb) - 1);
    } else {
        r->path = r->target;
        r->query = fv_slice("", 0);
    }
    r->minor = p->http_minor;
    r->keep_alive = llhttp_should_keep_alive(p) != 0;
    /* llhttp would stop parsing after an upgrade request; whether the socket changes protocol
     * is the handler's call (fv_http_upgrade), else the request is a plain one */
    r->upgrade = p->upgrade != 0;
    p->upgrade = 0;

    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    /* The route may allow more (uploads) or less (/health: none) than the server's default,
     * or stream the body; asked only when a body comes, so a plain GET costs no second route
     * lookup. */
    fv_http_body_policy_t pol = {.max_bytes = c->server->lim.max_body_bytes, .stream = false};
    if (has_body && c->server->body_policy_cb)
        c->server->body_policy_cb(r, c->server->body_policy_data, &pol);
    c->body_limit = pol.max_bytes;
    c->body.max = c->body_limit ? c->body_limit : 1;   /* a buffer max of 0 means "none" */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->body_limit) {
        c->err_status = 413;
        return -1;
    }
    if (!has_body)
        return 0;
    c->phase = FV_HTTP_PHASE_BODY;
    fv_slice_t expect = fv_http_req_header(r, "expect");
    c->expect_continue = expect.len == 12 && strncasecmp(expect.ptr, "100-continue", 12) == 0 &&
                         p->http_minor >= 1;
    if (pol.stream) {
        /* the handler gets the request now and reads the body at its own pace */
        c->body_streams = true;
        c->head_ready = true;
        fv_sock_deadline_clear(c->sock);
        return HPE_PAUSED;
    }
    fv_sock_deadline(c->sock, c->server->lim.body_timeout_ms);
    if (c->expect_continue)
        send_continue(c);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    fv__http_conn_t *c = p->data;
    if (c->body_streams) {
        /* straight from the read buffer to the handler; it may pause, or answer, in there.
         * llhttp reports an empty span when run on no input in the middle of a body. */
        if (len == 0)
            return 0;
        c->body_seen += len;
        c->body_cb(c->req, c->body_cb_data, at, len, false);
        return body_flowing(c) ? 0 : HPE_PAUSED;
    }
    if (len > c->server->lim.max_buffered_body_bytes - bodies_total ||
        bodies_total > c->server->lim.max_buffered_body_bytes) {
        c->err_status = 503;
        c->err_msg = "too much request data in flight on this server; try again";
        return -1;
    }
    int rc = fv_buf_append(&c->body, at, len);
    if (rc < 0)
        return refuse_for(c, rc, 413);
    c->body_counted += len;
    bodies_total += len;
    return 0;
}

/* A chunk that cannot fit under the body limit is refused from its size line, before any of
 * its bytes are read (llhttp puts the chunk size in content_length here). */
static int on_chunk_header(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    size_t max = c->body_limit;
    uint64_t seen = c->body_streams ? c->body_seen : c->body.len;
    if (seen > max || p->content_length > max - seen) {
        c->err_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    fv__http_conn_t *c = p->data;
    if (c->body_streams) {
        /* the request is with its handler already: tell it the body is whole */
        fv_http_body_cb cb = c->body_cb;
        void *data = c->body_cb_data;
        body_stop(c);
        c->phase = FV_HTTP_PHASE_HANDLER;
        fv_sock_deadline_clear(c->sock);
        cb(c->req, data, NULL, 0, true);
        return HPE_PAUSED;
    }
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
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_chunk_header = on_chunk_header;
    settings.on_message_complete = on_message_complete;
    settings_ready = true;
}

/* ---- lifecycle ---- */

fv__http_conn_t *fv__http1_new(fv_http_server_t *s, fv_sock_t *sock)
{
    settings_setup();
    fv__http_conn_t *c = fv_calloc(1, sizeof(*c));
    c->sock = sock;
    c->server = s;
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    /* strict parsing, whatever a future llhttp defaults to: each lenient mode lets a request
     * smuggling or splitting trick through */
    llhttp_set_lenient_headers(&c->parser, 0);
    llhttp_set_lenient_chunked_length(&c->parser, 0);
    llhttp_set_lenient_keep_alive(&c->parser, 0);
    llhttp_set_lenient_transfer_encoding(&c->parser, 0);
    c->parser.data = c;
    fv_buf_init(&c->head, s->lim.max_header_bytes);
    fv_buf_init(&c->body, s->lim.max_body_bytes);
    c->phase = FV_HTTP_PHASE_IDLE;
    c->sniffing = true;
    return c;
}

/* ---- request objects ---- */

static void req_free(fv_http_req_t *r)
{
    fv_arena_dispose(&r->arena);
    fv_buf_dispose(&r->resp_headers);
    fv_free(r);
}

/* A retired object is reused only when it was retired during a handler call that has
 * returned (nothing else can hold it then), or in an earlier loop callback of a socket (the
 * server's epoch moved on, so the call that answered it has returned). Otherwise a caller
 * that answered asynchronously and then read or answered req again, while that very answer
 * parsed and dispatched the next pipelined request, would touch someone else's request. */
static fv_http_req_t *req_get(fv__http_conn_t *c)
{
    fv_http_req_t *r = c->free_reqs;
    if (r && (r->retired_epoch == 0 || r->retired_epoch != c->server->epoch)) {
        c->free_reqs = r->next_free;
        c->free_req_count--;
        fv_buf_t resp_headers = r->resp_headers;
        memset(r, 0, sizeof(*r));
        r->resp_headers = resp_headers;
        fv_buf_reset(&r->resp_headers);     /* an aborted request leaves its headers here */
    } else {
        r = fv_calloc(1, sizeof(*r));
        fv_buf_init(&r->resp_headers, 64 * 1024);
    }
    r->conn = c;
    r->server = c->server;
    r->loop = c->server->loop;
    return r;
}

/* The request is answered: what it pointed into (the head and body buffers) now belongs to
 * the next request, so a late read sees an empty request, never another one. */
static void req_retire(fv__http_conn_t *c, fv_http_req_t *r, uint64_t epoch)
{
    if (c->req == r)
        c->req = NULL;
    r->method = r->target = r->path = r->query = r->body = fv_slice("", 0);
    r->headers = NULL;
    r->header_count = 0;
    if (c->free_req_count >= 4) {
        req_free(r);
        return;
    }
    r->retired_epoch = epoch;
    r->next_free = c->free_reqs;
    c->free_reqs = r;
    c->free_req_count++;
}

static bool req_busy(const fv__http_conn_t *c)
{
    return c->req && c->req->active;
}

static void http1_free(fv_sock_t *s, void *state)
{
    fv__http_conn_t *c = state;
    if (c->req)
        req_free(c->req);
    while (c->free_reqs) {
        fv_http_req_t *r = c->free_reqs;
        c->free_reqs = r->next_free;
        req_free(r);
    }
    fv_buf_dispose(&c->head);
    body_uncount(c);
    fv_buf_dispose(&c->body);
    fv_free(c->hdr_off);
    fv_free(c->hdr_rec);
    fv_free(c);
}

/* Ends the request in the handler without an answer (connection gone). With an abort callback
 * the handler lets go of req in it; without one req stays valid, orphaned, until the handler
 * answers it (a no-op that frees it), as the API promises. */
static void req_abort(fv__http_conn_t *c)
{
    fv_http_req_t *r = c->req;
    if (!r || !r->active)
        return;
    r->active = false;
    c->server->busy--;
    body_stop(c);
    fv_http_req_abort_cb cb = r->abort_cb;
    r->abort_cb = NULL;
    if (cb) {
        cb(r, r->abort_data);
        fv_arena_dispose(&r->arena);
        req_retire(c, r, c->server->epoch);
        return;
    }
    c->req = NULL;
    r->conn = NULL;
    r->orphan = true;
    fv_http_server_t *s = c->server;
    r->prev_orphan = NULL;
    r->next_free = s->orphans;
    if (s->orphans)
        s->orphans->prev_orphan = r;
    s->orphans = r;
}

static void orphan_unlink(fv_http_req_t *r)
{
    if (r->prev_orphan)
        r->prev_orphan->next_free = r->next_free;
    else
        r->server->orphans = r->next_free;
    if (r->next_free)
        r->next_free->prev_orphan = r->prev_orphan;
}

/* A handler that neither answered nor took the abort callback: its requests go with the
 * server (answering one after this is a use after free, as for any request after close). */
void fv__http_free_orphans(fv_http_server_t *s)
{
    while (s->orphans) {
        fv_http_req_t *r = s->orphans;
        s->orphans = r->next_free;
        fv_log_debug("http", "request=%" PRIu64 " never answered", r->id);
        req_free(r);
    }
}

static void http1_close(fv_sock_t *s, void *state)
{
    fv__http_conn_t *c = state;
    if (c->state >= FV_HTTP_CONN_CLOSING)
        return;
    conn_set_state(c, FV_HTTP_CONN_CLOSING);
    req_abort(c);
}

/* The last response is queued: the socket ends once it is written. */
static void conn_end(fv__http_conn_t *c)
{
    if (c->state >= FV_HTTP_CONN_ENDED)
        return;
    conn_set_state(c, FV_HTTP_CONN_ENDED);
    fv_sock_end(c->sock);
}

static void http1_timeout(fv_sock_t *s, void *state)
{
    fv__http_conn_t *c = state;
    switch (c->phase) {
    case FV_HTTP_PHASE_IDLE:
        fv_sock_close(s);
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

/* A drain stops a connection: at once when idle, else after its current response. */
static void http1_drain(fv_sock_t *s, void *state)
{
    fv__http_conn_t *c = state;
    if (c->state != FV_HTTP_CONN_OPEN)
        return;
    if (!req_busy(c) && c->phase == FV_HTTP_PHASE_IDLE) {
        if (fv_sock_output_bytes(s) == 0) {
            fv_sock_close(s);
            return;
        }
        conn_end(c);
        return;
    }
    conn_set_state(c, FV_HTTP_CONN_DRAINING);
}

/* ---- responses ---- */

/* An answer from the server itself (parse error, limit, timeout): then the connection ends. */
static void conn_fail(fv__http_conn_t *c, int status, int code, const char *msg)
{
    if (c->state >= FV_HTTP_CONN_ENDED)
        return;
    fv_sock_deadline_clear(c->sock);
    c->phase = FV_HTTP_PHASE_IDLE;
    size_t len;
    char *body = fv__http_error_body(code, msg, &len);
    fv_sock_write_t *w = fv_sock_write_get(c->sock);
    if (fv__http_write_head(fv_sock_write_head(w), status, len, false, "application/json",
                            NULL) < 0) {
        fv_free(body);
        fv_sock_write_drop(c->sock, w);
        fv_sock_close(c->sock);
        return;
    }
    fv_sock_write_send(c->sock, w, body, len, body);
    conn_end(c);
    /* a request already with its handler (its body streaming) cannot complete now */
    req_abort(c);
}

/* The request leaves the handler's hands (answered or upgraded). */
static void req_finish(fv__http_conn_t *c, fv_http_req_t *r, int status)
{
    fv_http_server_t *s = c->server;
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
    body_stop(c);
    /* answered inside the handler call: reusable once that call returns; else not before
     * the next loop callback */
    req_retire(c, r, c->dispatching ? 0 : s->epoch);
}

/* A response is queued and its request finished: the connection ends, or waits idle for the
 * next request and parses what is already buffered (when answered outside the handler call). */
static void after_answer(fv__http_conn_t *c, bool keep)
{
    if (c->state >= FV_HTTP_CONN_ENDED)
        return;
    if (!keep) {
        conn_end(c);
        return;
    }
    fv_sock_deadline(c->sock, c->server->lim.idle_timeout_ms);
    if (!c->dispatching)
        fv_sock_process(c->sock);
}

void fv__http_conn_respond(fv_http_req_t *r, int status, const char *content_type,
                           const void *body, size_t len, char *owned, fv_shared_t *shared)
{
    if (!r || !r->active) {
        fv_free(owned);
        fv_shared_unref(shared);
        if (r && r->orphan) {
            fv_log_debug("http", "request=%" PRIu64 " answered after its connection closed",
                         r->id);
            orphan_unlink(r);
            req_free(r);
        } else if (r) {
            fv_log_debug("http", "request=%" PRIu64 " answered twice; answer dropped", r->id);
        }
        return;
    }
    fv__http_conn_t *c = r->conn;
    fv_http_server_t *s = c->server;
    /* answered before its body ended: the rest is not read, the connection ends */
    bool keep = r->keep_alive && c->state == FV_HTTP_CONN_OPEN && !s->stopping &&
                !c->body_streams;
    fv_sock_write_t *w = fv_sock_write_get(c->sock);
    bool inline_body = !owned && !shared && len && !r->is_head && len <= FV_HTTP_INLINE_BODY;
    if (!owned && !shared && len && !r->is_head && !inline_body) {
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
    if (r->is_head && (owned || shared)) {
        fv_free(owned);
        owned = NULL;
        fv_shared_unref(shared);
        shared = NULL;
    }
    fv_buf_t *head = fv_sock_write_head(w);
    int rc = fv__http_write_head(head, status, len, keep, content_type, &r->resp_headers);
    if (rc == 0 && inline_body) {
        /* a small borrowed body rides in the head buffer: no allocation, one iovec */
        rc = fv_buf_append(head, body, len);
    }

    req_finish(c, r, status);

    if (rc < 0) {
        fv_free(owned);
        fv_shared_unref(shared);
        fv_sock_write_drop(c->sock, w);
        fv_sock_close(c->sock);
        return;
    }
    if (shared)
        fv_sock_write_send_shared(c->sock, w, (const char *)fv_shared_data(shared),
                                  fv_shared_len(shared), fv_shared_release, shared);
    else
        fv_sock_write_send(c->sock, w, owned, owned ? len : 0, owned);
    after_answer(c, keep);
}

/* ---- streaming responses ---- */

/* The request as a stream the caller may still write to, or NULL. */
static fv__http_conn_t *stream_conn(const fv_http_req_t *r)
{
    if (!r || !r->active || !r->streaming)
        return NULL;
    fv__http_conn_t *c = r->conn;
    return c->state >= FV_HTTP_CONN_ENDED ? NULL : c;
}

int fv_http_reply_start(fv_http_req_t *r, int status, const char *content_type)
{
    if (!r || !r->active || r->streaming || status < 200)
        return !r || !r->active ? FV_ECANCELED : FV_EINVAL;
    fv__http_conn_t *c = r->conn;
    fv_http_server_t *s = c->server;
    r->stream_chunked = r->minor >= 1;
    r->stream_keep = r->stream_chunked && r->keep_alive && c->state == FV_HTTP_CONN_OPEN &&
                     !s->stopping;
    fv_sock_write_t *w = fv_sock_write_get(c->sock);
    size_t len = r->is_head ? 0 : r->stream_chunked ? FV_HTTP_LEN_CHUNKED : FV_HTTP_LEN_NONE;
    int rc = fv__http_write_head(fv_sock_write_head(w), status, len, r->stream_keep,
                                 content_type, &r->resp_headers);
    if (rc < 0) {
        fv_sock_write_drop(c->sock, w);
        return rc;
    }
    r->streaming = true;
    r->stream_status = status;
    fv_sock_write_send(c->sock, w, NULL, 0, NULL);
    return 0;
}

int fv_http_reply_write(fv_http_req_t *r, const void *data, size_t len)
{
    fv__http_conn_t *c = stream_conn(r);
    if (!c)
        return r && r->active ? FV_EINVAL : FV_ECANCELED;
    if (len == 0 || r->is_head)
        return 0;
    /* the piece is copied (with the chunk's closing CRLF), the size line rides in the head */
    size_t extra = r->stream_chunked ? 2 : 0;
    char *copy = fv_try_malloc(len + extra);
    if (!copy)
        return FV_ENOMEM;
    memcpy(copy, data, len);
    fv_sock_write_t *w = fv_sock_write_get(c->sock);
    if (r->stream_chunked) {
        memcpy(copy + len, "\r\n", 2);
        if (fv_buf_printf(fv_sock_write_head(w), "%zx\r\n", len) < 0) {
            fv_free(copy);
            fv_sock_write_drop(c->sock, w);
            return FV_ENOMEM;
        }
    }
    fv_sock_write_send(c->sock, w, copy, len + extra, copy);
    return 0;
}

bool fv_http_reply_full(const fv_http_req_t *r)
{
    const fv__http_conn_t *c = stream_conn(r);
    return c && fv_sock_output_full(c->sock);
}

int fv_http_reply_on_writable(fv_http_req_t *r, fv_http_writable_cb cb, void *data)
{
    fv__http_conn_t *c = stream_conn(r);
    if (!c || !cb || !fv_sock_output_full(c->sock))
        return FV_EINVAL;
    c->writable_req = r;
    c->writable_cb = cb;
    c->writable_data = data;
    return 0;
}

/* The output drained below the ceiling: a waiting stream writes on. */
static void http1_writable(fv_sock_t *s, void *state)
{
    fv__http_conn_t *c = state;
    fv_http_writable_cb cb = c->writable_cb;
    fv_http_req_t *r = c->writable_req;
    c->writable_cb = NULL;
    c->writable_req = NULL;
    /* the socket's pump resumes parsing right after this returns */
    if (cb && r && r->active && r->streaming)
        cb(r, c->writable_data);
}

void fv_http_reply_end(fv_http_req_t *r)
{
    if (!r || !r->active || !r->streaming)
        return;
    fv__http_conn_t *c = r->conn;
    fv_http_server_t *s = c->server;
    bool keep = r->stream_keep && c->state == FV_HTTP_CONN_OPEN && !s->stopping &&
                !c->body_streams;
    if (r->stream_chunked && !r->is_head && c->state < FV_HTTP_CONN_ENDED)
        fv_sock_write(c->sock, "0\r\n\r\n", 5);
    if (c->writable_req == r) {
        c->writable_req = NULL;
        c->writable_cb = NULL;
    }
    r->streaming = false;
    req_finish(c, r, r->stream_status);
    after_answer(c, keep);
}

void fv_http_reply_abort(fv_http_req_t *r)
{
    if (!r || !r->active || !r->streaming)
        return;
    fv__http_conn_t *c = r->conn;
    if (c->writable_req == r) {
        c->writable_req = NULL;
        c->writable_cb = NULL;
    }
    r->streaming = false;
    req_finish(c, r, r->stream_status);
    /* no last chunk: the connection ends after what is queued, and the client sees the
     * answer cut short instead of complete */
    after_answer(c, false);
}

/* ---- streaming request bodies ---- */

/* The connection whose streaming body r is, or NULL. */
static fv__http_conn_t *body_conn(const fv_http_req_t *r)
{
    if (!r || !r->active)
        return NULL;
    fv__http_conn_t *c = r->conn;
    return c->req == r && c->body_streams ? c : NULL;
}

bool fv_http_req_body_streaming(const fv_http_req_t *r)
{
    return body_conn(r) != NULL;
}

/* Pieces flow again (or for the first time): the parser runs now, or, when called from inside
 * the socket's own data callback, as soon as that returns. */
static void body_kick(fv__http_conn_t *c)
{
    fv_sock_deadline(c->sock, c->server->lim.body_timeout_ms);
    if (c->parsing)
        return;                      /* called from a body callback: the parser goes on */
    (void)parse(c, "", 0);           /* paused after the last byte: reach the end now */
    fv_sock_process(c->sock);
}

int fv_http_req_read_body(fv_http_req_t *r, fv_http_body_cb cb, void *data)
{
    if (!r || !r->active)
        return FV_ECANCELED;
    if (!cb || r->body_read)
        return FV_EINVAL;
    r->body_read = true;
    fv__http_conn_t *c = body_conn(r);
    if (!c) {
        /* buffered whole (or none): all of it now */
        cb(r, data, r->body.ptr, r->body.len, true);
        return 0;
    }
    c->body_cb = cb;
    c->body_cb_data = data;
    if (c->expect_continue)
        send_continue(c);
    if (!c->body_paused)
        body_kick(c);
    return 0;
}

void fv_http_req_pause_body(fv_http_req_t *r)
{
    fv__http_conn_t *c = body_conn(r);
    if (!c || c->body_paused)
        return;
    c->body_paused = true;
    fv_sock_deadline_clear(c->sock);
}

void fv_http_req_resume_body(fv_http_req_t *r)
{
    fv__http_conn_t *c = body_conn(r);
    if (!c || !c->body_paused)
        return;
    c->body_paused = false;
    if (c->body_cb)
        body_kick(c);
}

fv_sock_t *fv_http_req_sock(const fv_http_req_t *r)
{
    return r && r->active && r->conn ? r->conn->sock : NULL;
}

int fv_http_upgrade(fv_http_req_t *r, const char *extra_headers, const fv_sock_driver_t *d,
                    void *state)
{
    if (!r || !r->active || !r->upgrade || !d || !d->on_data)
        return FV_EINVAL;
    fv__http_conn_t *c = r->conn;
    if (c->state != FV_HTTP_CONN_OPEN || c->server->stopping)
        return FV_EINVAL;
    fv_sock_t *s = c->sock;
    fv_sock_write_t *w = fv_sock_write_get(s);
    fv_buf_t *head = fv_sock_write_head(w);
    static const char status[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n";
    int rc = fv_buf_append(head, status, sizeof(status) - 1);
    if (rc == 0 && r->resp_headers.len)
        rc = fv_buf_append(head, r->resp_headers.ptr, r->resp_headers.len);
    if (rc == 0 && extra_headers)
        rc = fv_buf_append(head, extra_headers, strlen(extra_headers));
    if (rc == 0)
        rc = fv_buf_append(head, "\r\n", 2);
    if (rc < 0) {
        fv_sock_write_drop(s, w);
        return FV_ENOMEM;
    }
    req_finish(c, r, 101);
    /* parse nothing more: the bytes after this request's head belong to the new driver */
    c->upgraded = true;
    conn_set_state(c, FV_HTTP_CONN_CLOSING);
    fv_sock_write_send(s, w, NULL, 0, NULL);
    /* c may be freed from here on */
    return fv_sock_set_driver(s, d, state);
}

/* ---- HTTP/1.1 Upgrade: h2c (RFC 7540 sec. 3.2) ---- */

/* A gRPC request (content-type application/grpc...) asking for h2c with HTTP2-Settings and no
 * body, on a server with an h2 driver, is answered 101 and goes on as HTTP/2, the request
 * itself as stream 1. True when the socket went to the h2 driver (r is gone); false to serve r
 * as HTTP/1.1. The upgrade is the server's choice: HTTP/2 on our ports serves gRPC only, so
 * anything else (GET /health from curl --http2, say) stays HTTP/1.1, as does a request with a
 * body (it would have to be read before the switch), bad settings, or a stopping server.
 * Clients that upgrade before a request with a body send a bodiless one first (nghttp -u
 * sends OPTIONS with the request's headers), then the real one on a new stream. */
static bool upgrade_h2c(fv__http_conn_t *c, fv_http_req_t *r)
{
    fv_http_server_t *srv = c->server;
    fv_slice_t h2_settings = fv_http_req_header(r, "http2-settings");
    if (!r->upgrade || !srv->h2_factory || srv->stopping || !h2_settings.ptr ||
        !fv_slice_list_has(fv_http_req_header(r, "upgrade"), FV_SLICE_LIT("h2c"), true) ||
        c->body_streams || r->body.len)
        return false;
    fv_slice_t type = fv_http_req_header(r, "content-type");
    if (type.len < 16 || strncasecmp(type.ptr, "application/grpc", 16) != 0)
        return false;
    fv_http_req_t *req = r;
    size_t count = fv_http_req_header_count(req);
    fv_h2_header_t *hs = fv_try_malloc((count ? count : 1) * sizeof(*hs));
    if (!hs)
        return false;
    for (size_t i = 0; i < count; i++)
        fv_http_req_header_at(req, i, &hs[i].name, &hs[i].value);
    const fv_sock_driver_t *d = NULL;
    void *state = NULL;
    if (srv->h2_factory(c->sock, srv->h2_data, &d, &state) != 0 || !d) {
        fv_free(hs);
        return false;
    }
    int rc = fv_h2_conn_upgrade(state, h2_settings, fv_http_req_method(req),
                                fv_http_req_target(req), fv_http_req_header(req, "host"), hs,
                                count);
    fv_free(hs);
    fv_sock_t *sock = c->sock;
    uint32_t preface_ms = srv->lim.header_timeout_ms;
    if (rc == 0)
        rc = fv_http_upgrade(req, "Upgrade: h2c\r\n", d, state);
    if (rc < 0) {
        if (d->on_free)
            d->on_free(sock, state);
        return false;
    }
    /* c is gone; the socket is the h2 driver's, whose idle deadline starts with the client's
     * preface: until then the client has as long as a request's head had, not for ever */
    fv_sock_deadline(sock, preface_ms);
    return true;
}

/* ---- parsing ---- */

static void dispatch(fv__http_conn_t *c)
{
    fv_http_req_t *r = c->req;
    fv_http_server_t *s = c->server;
    r->body = c->body_streams ? fv_slice("", 0) : fv_buf_slice(&c->body);
    r->id = fv_id_next();
    r->start_ns = fv_now_ns();
    fv_arena_init(&r->arena, 4096);
    r->active = true;
    s->busy++;
    /* a streaming body stays in phase BODY until its end is parsed */
    if (!c->body_streams)
        c->phase = FV_HTTP_PHASE_HANDLER;
    fv_sock_deadline_clear(c->sock);
    c->dispatching = true;
    if (!upgrade_h2c(c, r))
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

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof(preface) - 1)

int fv__http_sniff_preface(const char *data, size_t len)
{
    size_t n = len < PREFACE_LEN ? len : PREFACE_LEN;
    if (memcmp(data, preface, n) != 0)
        return -1;
    return n == PREFACE_LEN ? 1 : 0;
}

/* The first bytes of a connection: an HTTP/2 preface goes to the h2 driver, never to llhttp.
 * Returns false when the socket is no longer ours. */
static bool sniff(fv__http_conn_t *c, const char *data, size_t len)
{
    int r = fv__http_sniff_preface(data, len);
    if (r <= 0) {
        c->sniffing = r == 0;
        return true;
    }
    c->sniffing = false;
    fv_http_server_t *srv = c->server;
    const fv_sock_driver_t *d = NULL;
    void *state = NULL;
    if (srv->h2_factory && !srv->stopping &&
        srv->h2_factory(c->sock, srv->h2_data, &d, &state) == 0 && d) {
        c->upgraded = true;
        conn_set_state(c, FV_HTTP_CONN_CLOSING);
        if (fv_sock_set_driver(c->sock, d, state) == 0)
            return false;
        if (d->on_free)
            d->on_free(c->sock, state);
        fv_sock_close(c->sock);
        return false;
    }
    srv->refused_h2++;
    fv_log_info("http", "%s: HTTP/2 preface on port %d and %s: closing",
                fv_sock_peer(c->sock), srv->port,
                srv->stopping ? "the server is stopping"
                : srv->h2_factory ? "the h2 driver refused it" : "no h2 driver");
    fv_sock_close(c->sock);
    return false;
}

/* Runs the parser over data while it may, dispatching each request; returns the bytes used.
 * With len 0 it runs once when a streamed body flows, so that a parser paused right after a
 * body's last byte reaches the end of the message without waiting for another byte. */
static size_t parse(fv__http_conn_t *c, const char *data, size_t len)
{
    fv_sock_t *s = c->sock;
    size_t off = 0;
    bool flush = len == 0;
    c->parsing = true;
    while (conn_may_parse(c) && (!req_busy(c) || body_flowing(c)) && (off < len || flush) &&
           !fv_sock_output_full(s)) {
        flush = false;
        c->err_status = 0;
        c->err_msg = NULL;
        c->exec_start = data + off;
        c->exec_end = data + len;
        c->exec_seq++;
        llhttp_errno_t e = llhttp_execute(&c->parser, data + off, len - off);
        size_t used = len - off;
        if (e == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - (data + off));
            llhttp_resume(&c->parser);
        } else if (e != HPE_OK) {
            int st = c->err_status ? c->err_status : 400;
            if (st == 431)
                conn_fail(c, 431, FV_EHDRTOOBIG, "request headers too large");
            else if (st == 413)
                conn_fail(c, 413, FV_ETOOBIG, "request body too large");
            else if (st == 503 && c->err_msg)
                conn_fail(c, 503, FV_EUNAVAILABLE, c->err_msg);
            else if (st == 503)
                conn_fail(c, 503, FV_ENOMEM, "out of memory");
            else if (st == 501)
                conn_fail(c, 501, FV_EUNIMPLEMENTED, c->err_msg);
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
            c->parsing = false;
            return len;
        }
        off += used;
        if (c->head_ready) {
            c->head_ready = false;
            dispatch(c);             /* the body streams: the handler reads it (or not) */
        } else if (c->msg_ready) {
            c->msg_ready = false;
            dispatch(c);             /* may upgrade or close: conn_may_parse then stops */
        }
        if (body_flowing(c) && used)
            fv_sock_deadline(s, c->server->lim.body_timeout_ms);
    }
    c->parsing = false;
    return off;
}

static size_t http1_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    fv__http_conn_t *c = state;
    (void)s;
    if (c->sniffing) {
        if (!sniff(c, data, len))
            return 0;
        if (c->sniffing)
            return 0;                /* a prefix of the preface: wait for more */
    }
    return len ? parse(c, data, len) : 0;
}

const fv_sock_driver_t fv__http1_driver = {
    .name = "http1",
    .on_data = http1_data,
    .on_writable = http1_writable,
    .on_timeout = http1_timeout,
    .on_drain = http1_drain,
    .on_close = http1_close,
    .on_free = http1_free,
};

/* ---- detached connections (fuzzing, tests) ---- */

fv_sock_t *fv__http_conn_new_detached(fv_http_server_t *s, fv_buf_t *sink)
{
    return fv__sock_new_detached(s, sink);
}

void fv__http_conn_feed(fv_sock_t *s, const char *data, size_t len)
{
    fv__sock_feed(s, data, len);
}

void fv__http_conn_free_detached(fv_sock_t *s)
{
    fv__sock_free_detached(s);
}
