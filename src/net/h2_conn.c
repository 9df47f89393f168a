/* h2_conn.c - the h2 driver: one nghttp2 server session per socket, its streams, and the pump
 * between them (see h2.h). What a request means (gRPC, for one) is the handler's business. A
 * connection begins with the preface, or with an HTTP/1.1 request that asked for h2c (the
 * HTTP server answers 101; fv_h2_conn_upgrade makes that request stream 1).
 *
 * Output: nghttp2 produces frames as the peer's windows allow; we copy them into the socket's
 * write queue only while it is under its ceiling and go on from on_writable, so a peer that
 * does not read leaves at most the answers of its open streams (each bounded by the handler)
 * in memory. nghttp2 is never re-entered: frames are pulled only outside mem_recv, which is
 * also why a stream is freed only from nghttp2's close callback and never by us. */
#include "net/h2.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

/* Frames are gathered into one socket write up to this size: fewer syscalls than one write per
 * frame, and little over the ceiling when the queue fills. */
#define H2_WRITE_BATCH (64u * 1024u)
/* RFC 9113 sec. 6.5.2: the size of a header field counts its name, value and 32 bytes. */
#define H2_HEADER_OVERHEAD 32u
#define H2_NV_INLINE 16

typedef struct h2_conn h2_conn_t;

struct fv_h2_stream {
    h2_conn_t *conn;
    int32_t id;
    fv_h2_stream_t *prev, *next;
    fv_buf_t hdrs;                  /* "name\0value\0" for each request header */
    size_t hdr_bytes;               /* the list's size as RFC 9113 counts it */
    void *data;                     /* the handler's */
    char *body;                     /* the answer's body, owned, sent as windows allow */
    size_t body_len;
    size_t body_off;
    fv_buf_t trailers;              /* "name\0value\0", sent after the body */
    size_t trailer_count;
    fv_buf_t out;                   /* a streaming answer's queued body bytes */
    size_t out_off;                 /* of them, handed to nghttp2 */
    bool streaming;                 /* begun with fv_h2_stream_begin */
    bool ending;                    /* fv_h2_stream_end: trailers after the queued bytes */
    bool deferred;                  /* read_body said DEFERRED: resume on the next write */
    bool want_writable;             /* a write was refused: on_writable is owed */
    bool writable_due;              /* the queue drained since: deliver on_writable */
    bool requested;                 /* on_request ran: on_close is owed */
    bool answered;                  /* respond or reset was called */
    bool reset;                     /* reset was called: no more request bytes either */
    bool hold;                      /* fv_h2_stream_hold: the receive window stays shut */
    size_t held_bytes;              /* delivered while held, reopened on release */
    bool told_closed;               /* on_close ran */
};

struct h2_conn {
    fv_sock_t *sock;
    nghttp2_session *session;
    fv_h2_limits_t lim;
    const fv_h2_handler_t *h;
    void *hdata;
    fv_h2_stream_t *streams;        /* every stream object not yet freed */
    size_t open;
    uint64_t resets_since;          /* loop time the reset count started */
    uint32_t resets;                /* RST_STREAM frames from the peer since then */
    bool started;                   /* the first bytes arrived (the idle deadline is on) */
    bool in_recv;                   /* inside nghttp2_session_mem_recv: do not pull frames */
    bool in_flush;
    bool draining;                  /* GOAWAY sent for the drain */
    bool closed;                    /* the socket is closing: nghttp2 no longer runs */
    fv_h2_stream_t *upgraded;       /* stream 1 of an h2c upgrade, to hand over on first run */
};

void fv_h2_limits_default(fv_h2_limits_t *lim)
{
    lim->max_concurrent_streams = 100;
    lim->max_frame_bytes = 16384;
    lim->max_header_list_bytes = 16 * 1024;
    lim->stream_window_bytes = 1024 * 1024;
    lim->conn_window_bytes = 16 * 1024 * 1024;
    lim->max_resets = 200;
    lim->idle_timeout_ms = 60000;
}

/* ---- header lists ---- */

/* Appends name\0value\0; the caller has bounded the sizes. */
static int nv_put(fv_buf_t *b, fv_slice_t name, fv_slice_t value)
{
    static const char nul = '\0';
    int rc = fv_buf_append(b, name.ptr, name.len);
    rc = rc ? rc : fv_buf_append(b, &nul, 1);
    rc = rc ? rc : fv_buf_append(b, value.ptr, value.len);
    return rc ? rc : fv_buf_append(b, &nul, 1);
}

/* Fills nv[0..count) from count "name\0value\0" records of b. */
static void nv_from_buf(const fv_buf_t *b, nghttp2_nv *nv, size_t count)
{
    const char *p = b->ptr;
    for (size_t i = 0; i < count; i++) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        size_t vl = strlen(v);
        nv[i] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)v, nl, vl, NGHTTP2_NV_FLAG_NONE};
        p = v + vl + 1;
    }
}

/* ---- streams ---- */

static void stream_free(fv_h2_stream_t *st)
{
    h2_conn_t *c = st->conn;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    fv_buf_dispose(&st->hdrs);
    fv_buf_dispose(&st->trailers);
    fv_buf_dispose(&st->out);
    fv_free(st->body);
    fv_free(st);
}

static void tell_closed(fv_h2_stream_t *st, uint32_t code)
{
    if (!st->requested || st->told_closed)
        return;
    st->told_closed = true;
    st->conn->h->on_close(st, code, st->conn->hdata);
}

static fv_h2_stream_t *stream_of(h2_conn_t *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->session, id);
}

fv_slice_t fv_h2_stream_header(const fv_h2_stream_t *st, const char *name)
{
    const char *p = st->hdrs.ptr, *end = p ? p + st->hdrs.len : NULL;
    while (p && p < end) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        size_t vl = strlen(v);
        if (strcmp(p, name) == 0)
            return fv_slice(v, vl);
        p = v + vl + 1;
    }
    return FV_SLICE_NULL;
}

bool fv_h2_stream_header_next(const fv_h2_stream_t *st, size_t *pos, fv_slice_t *name,
                              fv_slice_t *value)
{
    if (!st->hdrs.ptr || *pos >= st->hdrs.len)
        return false;
    const char *p = st->hdrs.ptr + *pos;
    size_t nl = strlen(p);
    const char *v = p + nl + 1;
    size_t vl = strlen(v);
    *name = fv_slice(p, nl);
    *value = fv_slice(v, vl);
    *pos = (size_t)(v + vl + 1 - st->hdrs.ptr);
    return true;
}

fv_slice_t fv_h2_stream_method(const fv_h2_stream_t *st)
{
    return fv_h2_stream_header(st, ":method");
}

fv_slice_t fv_h2_stream_path(const fv_h2_stream_t *st)
{
    return fv_h2_stream_header(st, ":path");
}

uint32_t fv_h2_stream_id(const fv_h2_stream_t *st)
{
    return (uint32_t)st->id;
}

uv_loop_t *fv_h2_stream_loop(const fv_h2_stream_t *st)
{
    return fv_sock_loop(st->conn->sock);
}

void fv_h2_stream_set_data(fv_h2_stream_t *st, void *data)
{
    st->data = data;
}

void *fv_h2_stream_data(const fv_h2_stream_t *st)
{
    return st->data;
}

/* ---- output ---- */

static void conn_maybe_end(h2_conn_t *c)
{
    if (c->closed || !fv_sock_is_open(c->sock))
        return;
    bool want_write = nghttp2_session_want_write(c->session);
    if ((!nghttp2_session_want_read(c->session) && !want_write) ||
        (c->draining && c->open == 0 && !want_write))
        fv_sock_end(c->sock);
}

/* Streams whose queue drained after a refused write hear it now, outside nghttp2's callbacks.
 * A callback may write (flushing again) or end streams, so the list is walked afresh after
 * each one; the flag is cleared first, so each drain is told once. */
static void deliver_writable(h2_conn_t *c)
{
    if (!c->h->on_writable)
        return;
    for (;;) {
        fv_h2_stream_t *st = c->streams;
        while (st && !st->writable_due)
            st = st->next;
        if (!st || c->closed)
            return;
        st->writable_due = false;
        if (!st->told_closed)
            c->h->on_writable(st, c->hdata);
    }
}

/* Moves nghttp2's pending frames into the socket while it has room. Pulling frames can close
 * streams (their on_close runs from here), which may answer others: the loop takes those too. */
static void conn_flush(h2_conn_t *c)
{
    if (c->in_recv || c->in_flush || c->closed)
        return;
    c->in_flush = true;
    fv_sock_write_t *w = NULL;
    while (!c->closed && fv_sock_is_open(c->sock) && !fv_sock_output_full(c->sock)) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->session, &p);
        if (n < 0) {
            fv_log_info("h2", "%s: %s; closing", fv_sock_peer(c->sock), nghttp2_strerror((int)n));
            if (w)
                fv_sock_write_drop(c->sock, w);
            w = NULL;
            fv_sock_close(c->sock);
            break;
        }
        if (n == 0)
            break;
        if (!w)
            w = fv_sock_write_get(c->sock);
        if (fv_buf_append(fv_sock_write_head(w), p, (size_t)n) < 0) {
            fv_sock_write_drop(c->sock, w);
            w = NULL;
            fv_sock_close(c->sock);
            break;
        }
        if (fv_sock_write_head(w)->len >= H2_WRITE_BATCH) {
            fv_sock_write_send(c->sock, w, NULL, 0, NULL);
            w = NULL;
        }
    }
    if (w)
        fv_sock_write_send(c->sock, w, NULL, 0, NULL);
    c->in_flush = false;
    conn_maybe_end(c);
    deliver_writable(c);
}

static ssize_t read_trailers(nghttp2_session *session, fv_h2_stream_t *st, uint32_t *flags);

/* A streaming answer: what is queued, DEFERRED while nothing is (until the next write), and
 * the end (trailers) once fv_h2_stream_end was called and the queue is empty. */
static ssize_t read_stream(nghttp2_session *session, fv_h2_stream_t *st, uint8_t *buf,
                           size_t length, uint32_t *flags)
{
    size_t n = st->out.len - st->out_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(buf, st->out.ptr + st->out_off, n);
    st->out_off += n;
    if (st->out_off < st->out.len)
        return (ssize_t)n;
    fv_buf_reset(&st->out);
    st->out_off = 0;
    if (st->want_writable) {
        st->want_writable = false;
        st->writable_due = true;
    }
    if (st->ending)
        return read_trailers(session, st, flags) < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
                                                     : (ssize_t)n;
    if (n)
        return (ssize_t)n;
    st->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    fv_h2_stream_t *st = src->ptr;
    if (st->streaming)
        return read_stream(session, st, buf, length, flags);
    size_t n = st->body_len - st->body_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(buf, st->body + st->body_off, n);
    st->body_off += n;
    if (st->body_off < st->body_len)
        return (ssize_t)n;
    return read_trailers(session, st, flags) < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
                                                 : (ssize_t)n;
}

/* The body has ended: EOF, and the trailers when there are any. -1 out of memory. */
static ssize_t read_trailers(nghttp2_session *session, fv_h2_stream_t *st, uint32_t *flags)
{
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailer_count) {
        nghttp2_nv inline_nv[H2_NV_INLINE];
        nghttp2_nv *nv = inline_nv;
        if (st->trailer_count > H2_NV_INLINE &&
            !(nv = fv_try_malloc(st->trailer_count * sizeof(*nv))))
            return -1;
        nv_from_buf(&st->trailers, nv, st->trailer_count);
        /* nghttp2 copies the trailers; without them the stream still ends (END_STREAM on the
         * last DATA), which a client reads as a missing status rather than a hang */
        if (nghttp2_submit_trailer(session, st->id, nv, st->trailer_count) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nv != inline_nv)
            fv_free(nv);
    }
    return 0;
}

int fv_h2_stream_respond(fv_h2_stream_t *st, const fv_h2_header_t *head, size_t head_count,
                         const void *body, size_t len, const fv_h2_header_t *trailers,
                         size_t trailer_count)
{
    h2_conn_t *c = st->conn;
    if (st->told_closed || c->closed)
        return FV_ECANCELED;
    if (st->answered || head_count == 0)
        return FV_EINVAL;
    nghttp2_nv inline_nv[H2_NV_INLINE];
    nghttp2_nv *nv = inline_nv;
    if (head_count > H2_NV_INLINE && !(nv = fv_try_malloc(head_count * sizeof(*nv))))
        return FV_ENOMEM;
    for (size_t i = 0; i < head_count; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)head[i].name.ptr, (uint8_t *)head[i].value.ptr,
                             head[i].name.len, head[i].value.len, NGHTTP2_NV_FLAG_NONE};
    int rc = 0;
    for (size_t i = 0; i < trailer_count && rc == 0; i++)
        rc = nv_put(&st->trailers, trailers[i].name, trailers[i].value);
    st->trailer_count = trailer_count;
    if (rc == 0 && len) {
        if (!(st->body = fv_try_malloc(len)))
            rc = FV_ENOMEM;
        else
            memcpy(st->body, body, len);
        st->body_len = len;
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    if (rc == 0 && nghttp2_submit_response(c->session, st->id, nv, head_count,
                                           len || trailer_count ? &prd : NULL) != 0)
        rc = FV_ENOMEM;
    if (nv != inline_nv)
        fv_free(nv);
    if (rc < 0) {
        fv_buf_reset(&st->trailers);
        st->trailer_count = 0;
        return rc;
    }
    st->answered = true;
    conn_flush(c);
    return 0;
}

int fv_h2_stream_begin(fv_h2_stream_t *st, const fv_h2_header_t *head, size_t head_count)
{
    h2_conn_t *c = st->conn;
    if (st->told_closed || c->closed)
        return FV_ECANCELED;
    if (st->answered || head_count == 0)
        return FV_EINVAL;
    nghttp2_nv inline_nv[H2_NV_INLINE];
    nghttp2_nv *nv = inline_nv;
    if (head_count > H2_NV_INLINE && !(nv = fv_try_malloc(head_count * sizeof(*nv))))
        return FV_ENOMEM;
    for (size_t i = 0; i < head_count; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)head[i].name.ptr, (uint8_t *)head[i].value.ptr,
                             head[i].name.len, head[i].value.len, NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(c->session, st->id, nv, head_count, &prd) == 0 ? 0
                                                                                 : FV_ENOMEM;
    if (nv != inline_nv)
        fv_free(nv);
    if (rc < 0)
        return rc;
    st->answered = true;
    st->streaming = true;
    conn_flush(c);
    return 0;
}

/* The queued bytes changed or the end was asked for: a provider that said DEFERRED runs
 * again. */
static void stream_resume(fv_h2_stream_t *st)
{
    h2_conn_t *c = st->conn;
    if (st->deferred) {
        st->deferred = false;
        if (nghttp2_session_resume_data(c->session, st->id) != 0) {
            fv_h2_stream_reset(st, 2);
            return;
        }
    }
    conn_flush(c);
}

int fv_h2_stream_write(fv_h2_stream_t *st, const void *p, size_t len)
{
    if (st->told_closed || st->conn->closed)
        return FV_ECANCELED;
    if (!st->streaming || st->ending)
        return FV_EINVAL;
    if (st->out.len - st->out_off >= FV_H2_STREAM_MAX_QUEUED) {
        st->want_writable = true;
        return FV_EAGAIN;
    }
    int rc = fv_buf_append(&st->out, p, len);
    if (rc < 0)
        return rc;
    stream_resume(st);
    return 0;
}

void fv_h2_stream_hold(fv_h2_stream_t *st, bool hold)
{
    h2_conn_t *c = st->conn;
    st->hold = hold;
    if (hold || !st->held_bytes || st->told_closed || c->closed)
        return;
    size_t n = st->held_bytes;
    st->held_bytes = 0;
    /* the stream may have closed inside nghttp2 without on_close yet: nothing to reopen */
    if (nghttp2_session_consume_stream(c->session, st->id, n) != 0 &&
        nghttp2_session_get_stream_user_data(c->session, st->id) == st) {
        fv_h2_stream_reset(st, 2);
        return;
    }
    conn_flush(c);
}

size_t fv_h2_stream_queued(const fv_h2_stream_t *st)
{
    return st->out.len - st->out_off;
}

int fv_h2_stream_end(fv_h2_stream_t *st, const fv_h2_header_t *trailers, size_t trailer_count)
{
    if (st->told_closed || st->conn->closed)
        return FV_ECANCELED;
    if (!st->streaming || st->ending)
        return FV_EINVAL;
    int rc = 0;
    for (size_t i = 0; i < trailer_count && rc == 0; i++)
        rc = nv_put(&st->trailers, trailers[i].name, trailers[i].value);
    if (rc < 0) {
        fv_buf_reset(&st->trailers);
        return rc;
    }
    st->trailer_count = trailer_count;
    st->ending = true;
    stream_resume(st);
    return 0;
}

void fv_h2_stream_reset(fv_h2_stream_t *st, uint32_t error_code)
{
    h2_conn_t *c = st->conn;
    if (st->told_closed || c->closed)
        return;
    st->answered = true;
    st->reset = true;
    if (nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id, error_code) != 0) {
        fv_sock_close(c->sock);
        return;
    }
    conn_flush(c);
}

/* ---- nghttp2's callbacks (all inside mem_recv or mem_send) ---- */

/* A stream object for request stream id, linked in and known to nghttp2; NULL on failure. */
static fv_h2_stream_t *stream_open(h2_conn_t *c, int32_t id)
{
    fv_h2_stream_t *st = fv_calloc(1, sizeof(*st));
    st->conn = c;
    st->id = id;
    fv_buf_init(&st->hdrs, 0);      /* bounded by max_header_list_bytes in on_header */
    fv_buf_init(&st->trailers, 0);  /* bounded by what our own handler sends */
    fv_buf_init(&st->out, 0);       /* bounded by FV_H2_STREAM_MAX_QUEUED in write */
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    if (nghttp2_session_set_stream_user_data(c->session, st->id, st) != 0) {
        stream_free(st);
        return NULL;
    }
    if (c->open++ == 0)
        fv_sock_deadline_clear(c->sock);
    return st;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_conn_t *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    return stream_open(c, frame->hd.stream_id) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    h2_conn_t *c = user;
    fv_h2_stream_t *st = stream_of(c, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;                    /* request trailers: nothing we read */
    st->hdr_bytes += namelen + valuelen + H2_HEADER_OVERHEAD;
    /* over the list size: nghttp2 resets the stream; HPACK decoding itself goes on, bounded by
     * the dynamic table size we advertise */
    if (st->hdr_bytes > c->lim.max_header_list_bytes)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nv_put(&st->hdrs, fv_slice((const char *)name, namelen),
               fv_slice((const char *)value, valuelen)) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* Request bytes go to the handler until it answered, or, for a streaming answer, until it
 * ended or reset the stream: a bidirectional call reads while it writes. */
static bool wants_body(const h2_conn_t *c, const fv_h2_stream_t *st)
{
    return st->requested && c->h->on_body && !st->reset &&
           (!st->answered || (st->streaming && !st->ending));
}

static void deliver_end(h2_conn_t *c, fv_h2_stream_t *st)
{
    if (wants_body(c, st))
        c->h->on_body(st, NULL, 0, true, c->hdata);
}

/* The "rapid reset" attack: a reset is free for the client and each stream it opened cost us
 * a handler call. More than max_resets in one second ends the connection. */
static int count_reset(h2_conn_t *c)
{
    uint64_t now = uv_now(fv_sock_loop(c->sock));
    if (now - c->resets_since >= 1000) {
        c->resets_since = now;
        c->resets = 0;
    }
    if (++c->resets <= c->lim.max_resets)
        return 0;
    fv_log_info("h2", "%s: over %u stream resets in a second; ending the connection",
                fv_sock_peer(c->sock), c->lim.max_resets);
    return nghttp2_session_terminate_session(c->session, NGHTTP2_ENHANCE_YOUR_CALM) == 0
               ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_conn_t *c = user;
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        return count_reset(c);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    fv_h2_stream_t *st = stream_of(c, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        !st->requested) {
        if (st->hdr_bytes > c->lim.max_header_list_bytes)
            return 0;                /* being reset */
        st->requested = true;
        c->h->on_request(st, c->hdata);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        deliver_end(c, st);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *user)
{
    h2_conn_t *c = user;
    fv_h2_stream_t *st = stream_of(c, id);
    /* windows are ours to reopen (no automatic WINDOW_UPDATE): the connection's at once, so
     * one held stream never stalls the others; a held stream's own when it is let go, so its
     * peer can send at most one window more (what the handler must be ready to keep) */
    if (nghttp2_session_consume_connection(session, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st && st->hold)
        st->held_bytes += len;
    else if (nghttp2_session_consume_stream(session, id, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st && wants_body(c, st))
        c->h->on_body(st, data, len, false, c->hdata);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    h2_conn_t *c = user;
    fv_h2_stream_t *st = stream_of(c, id);
    if (!st)
        return 0;
    tell_closed(st, code);
    stream_free(st);
    if (--c->open == 0 && !c->draining)
        fv_sock_deadline(c->sock, c->lim.idle_timeout_ms);
    return 0;
}

/* ---- the driver ---- */

static size_t drv_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    h2_conn_t *c = state;
    if (c->closed)
        return len;
    if (!c->started) {
        /* not from fv_h2_conn_new: the switch of drivers clears the socket's deadline */
        c->started = true;
        fv_sock_deadline(s, c->lim.idle_timeout_ms);
    }
    if (c->upgraded) {
        /* the request that asked for h2c, complete (it had no body), now that the answer
         * can go out after the 101 */
        fv_h2_stream_t *st = c->upgraded;
        c->upgraded = NULL;
        st->requested = true;
        c->h->on_request(st, c->hdata);
        if (stream_of(c, 1) == st)
            deliver_end(c, st);
        conn_flush(c);
        if (c->closed)
            return len;
    }
    c->in_recv = true;
    ssize_t n = nghttp2_session_mem_recv(c->session, (const uint8_t *)data, len);
    c->in_recv = false;
    if (n < 0) {
        /* bad client magic, a flood, a callback failure: the connection is beyond repair;
         * tell the peer why when nghttp2 still can, then end */
        fv_log_info("h2", "%s: %s; ending the connection", fv_sock_peer(s),
                    nghttp2_strerror((int)n));
        if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC &&
            nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR) == 0)
            conn_flush(c);
        fv_sock_end(s);
        return len;
    }
    conn_flush(c);
    return len;
}

static void drv_writable(fv_sock_t *s, void *state)
{
    conn_flush(state);
}

static void drv_timeout(fv_sock_t *s, void *state)
{
    h2_conn_t *c = state;
    if (nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR) != 0) {
        fv_sock_close(s);
        return;
    }
    conn_flush(c);
    fv_sock_end(s);
}

static void drv_drain(fv_sock_t *s, void *state)
{
    h2_conn_t *c = state;
    if (c->draining || c->closed)
        return;
    c->draining = true;
    fv_sock_deadline_clear(s);
    if (nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session),
                              NGHTTP2_NO_ERROR, NULL, 0) != 0) {
        fv_sock_end(s);
        return;
    }
    conn_flush(c);
}

static void drv_close(fv_sock_t *s, void *state)
{
    h2_conn_t *c = state;
    c->closed = true;
    for (fv_h2_stream_t *st = c->streams; st; st = st->next)
        tell_closed(st, NGHTTP2_CANCEL);
}

static void drv_free(fv_sock_t *s, void *state)
{
    h2_conn_t *c = state;
    nghttp2_session_del(c->session);   /* calls none of our callbacks */
    while (c->streams)
        stream_free(c->streams);
    fv_free(c);
}

static const fv_sock_driver_t h2_driver = {
    .name = "h2",
    .on_data = drv_data,
    .on_writable = drv_writable,
    .on_timeout = drv_timeout,
    .on_drain = drv_drain,
    .on_close = drv_close,
    .on_free = drv_free,
};

/* Connection-specific HTTP/1.1 headers, which HTTP/2 forbids (RFC 9113 sec. 8.2.2), and host
 * (it becomes :authority). */
static bool h1_only(fv_slice_t name)
{
    static const char *const names[] = {"connection", "upgrade", "http2-settings", "keep-alive",
                                        "proxy-connection", "transfer-encoding", "host", "te"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (name.len == strlen(names[i]) && strncasecmp(name.ptr, names[i], name.len) == 0)
            return true;
    return false;
}

int fv_h2_conn_upgrade(void *state, fv_slice_t settings, fv_slice_t method, fv_slice_t path,
                       fv_slice_t authority, const fv_h2_header_t *headers, size_t count)
{
    h2_conn_t *c = state;
    if (!c || c->upgraded || c->started || !settings.ptr || !method.len || !path.len)
        return FV_EINVAL;
    /* a SETTINGS payload is 6 bytes a setting; nghttp2 takes at most its own limit of them */
    uint8_t payload[6 * 64];
    size_t n = 0;
    if (settings.len > 4 * sizeof(payload) / 3 ||
        sodium_base642bin(payload, sizeof(payload), settings.ptr, settings.len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return FV_EINVAL;
    int rc = nghttp2_session_upgrade2(c->session, payload, n, fv_slice_eq_cstr(method, "HEAD"),
                                      NULL);
    if (rc != 0)
        return rc == NGHTTP2_ERR_NOMEM ? FV_ENOMEM : FV_EINVAL;
    fv_h2_stream_t *st = stream_open(c, 1);
    if (!st)
        return FV_ENOMEM;
    rc = nv_put(&st->hdrs, fv_slice_cstr(":method"), method);
    if (rc == 0)
        rc = nv_put(&st->hdrs, fv_slice_cstr(":path"), path);
    if (rc == 0)
        rc = nv_put(&st->hdrs, fv_slice_cstr(":scheme"), fv_slice_cstr("http"));
    if (rc == 0 && authority.len)
        rc = nv_put(&st->hdrs, fv_slice_cstr(":authority"), authority);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (h1_only(headers[i].name) && !(fv_slice_eq_cstr(headers[i].name, "te") &&
                                           fv_slice_eq_cstr(headers[i].value, "trailers")))
            continue;
        size_t at = st->hdrs.len;
        rc = nv_put(&st->hdrs, headers[i].name, headers[i].value);
        for (size_t k = 0; rc == 0 && k < headers[i].name.len; k++) {
            char *ch = st->hdrs.ptr + at + k;   /* HTTP/2 names are lower case */
            if (*ch >= 'A' && *ch <= 'Z')
                *ch = (char)(*ch - 'A' + 'a');
        }
    }
    if (rc < 0)
        return rc;                      /* the stream goes with the connection */
    c->upgraded = st;
    return 0;
}

int fv_h2_conn_new(fv_sock_t *s, const fv_h2_limits_t *lim, const fv_h2_handler_t *handler,
                   void *data, const fv_sock_driver_t **driver, void **state)
{
    h2_conn_t *c = fv_calloc(1, sizeof(*c));
    c->sock = s;
    c->h = handler;
    c->hdata = data;
    if (lim)
        c->lim = *lim;
    else
        fv_h2_limits_default(&c->lim);

    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rc = nghttp2_session_callbacks_new(&cbs);
    if (rc == 0)
        rc = nghttp2_option_new(&opt);
    if (rc != 0) {
        nghttp2_session_callbacks_del(cbs);
        fv_free(c);
        return FV_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    /* nghttp2's own reset limiter stays behind ours (count_reset), which answers with the
     * code RFC 9113 suggests for this, ENHANCE_YOUR_CALM */
    nghttp2_option_set_stream_reset_rate_limit(opt, 2ull * c->lim.max_resets + 1,
                                               2ull * c->lim.max_resets + 1);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    rc = nghttp2_session_server_new2(&c->session, cbs, c, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0) {
        fv_free(c);
        return FV_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->lim.max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, c->lim.max_frame_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->lim.max_header_list_bytes},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->lim.stream_window_bytes},
    };
    rc = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)c->lim.conn_window_bytes);
    if (rc != 0) {
        nghttp2_session_del(c->session);
        fv_free(c);
        return rc == NGHTTP2_ERR_NOMEM ? FV_ENOMEM : FV_EINVAL;
    }
    *driver = &h2_driver;
    *state = c;
    return 0;
}
