/* grpc_server.c - gRPC calls from h2 streams to the module's method table, and the streaming
 * methods served here (see grpc_server.h). The message bytes of a unary call travel as they
 * came: the length-prefixed frame of the wire is exactly what fv_rpc_dispatch takes and gives
 * back, so nothing is decoded here.
 *
 * One call object serves every kind: a unary call, and a streaming one handed to its handler
 * as the fv_grpc_stream_t (one send path, one end path). It lives while anyone holds it: the
 * stream (until the h2 driver's on_close), the rpc (from fv_rpc_dispatch until its done
 * callback), the stream handler (until finish or on_cancel), our own code on the stack.
 * Compression is not here yet. */
#include "net/grpc_server.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/grpc_gzip.h"
#include "net/grpc_wire.h"
#include "rpc/frame.h"

#define GRPC_NAME_MAX 192
#define GRPC_DEFAULT_BUFFERED (256u * 1024u * 1024u)
#define GRPC_MAX_REQUEST_MD (64u * 1024u)   /* above the h2 header list limit: never the cap */
#define GRPC_H2_DEFAULT_WINDOW 65535u      /* RFC 9113 sec. 6.9.2 */

/* Request bytes buffered now by every gRPC server of the process (all on one loop thread):
 * each call's buffer has the message ceiling, but a thousand streams each holding most of a
 * large message would still add up; this total bounds that. */
static size_t buffered_total;

typedef struct grpc_route {
    char service[GRPC_NAME_MAX];
    char module[GRPC_NAME_MAX];
    struct grpc_route *next;
} grpc_route_t;

/* What a streaming method reads: one request message (server-streaming) or a stream of them
 * (client-streaming, bidirectional; the handler opens on the headers). */
typedef enum { SM_SERVER, SM_CLIENT, SM_BIDI } sm_kind_t;

typedef struct grpc_smethod {
    char service[GRPC_NAME_MAX];
    char method[GRPC_NAME_MAX];
    sm_kind_t kind;
    fv_grpc_stream_fn fn;           /* SM_SERVER */
    fv_grpc_open_fn open;           /* SM_CLIENT, SM_BIDI */
    void *data;
    struct grpc_smethod *next;
} grpc_smethod_t;

struct fv_grpc_server {
    fv_rpc_t *rpc;
    char module[GRPC_NAME_MAX];
    size_t max_msg;
    size_t max_buffered;
    fv_h2_limits_t h2;
    grpc_route_t *routes;
    grpc_smethod_t *smethods;
    fv_grpc_stats_t stats;
    size_t live;                    /* call objects not yet freed */
    bool freed;                     /* fv_grpc_server_free ran; the last call frees us */
};

/* A call; a server-streaming one is handed to its handler as the fv_grpc_stream_t. */
typedef struct fv_grpc_stream grpc_call_t;
struct fv_grpc_stream {
    fv_grpc_server_t *g;
    fv_h2_stream_t *st;             /* NULL once the stream is gone */
    fv_rpc_req_t *req;              /* while dispatched */
    char module[GRPC_NAME_MAX];
    char method[GRPC_NAME_MAX];
    uint32_t deadline_ms;
    fv_buf_t in;                    /* the request body, ceiling one frame of max_msg (plus
                                     * one stream window on a reading stream) */
    size_t in_off;                  /* of in, messages handed to on_message already */
    fv_md_t md;                     /* the request's custom metadata, until dispatched */
    size_t counted;                 /* of it, counted in buffered_total */
    bool dispatched;                /* the rpc's done callback is owed */
    bool answered;
    bool gzip;                      /* grpc-encoding: gzip, so messages may come compressed */
    fv_buf_t unz;                   /* one inflated message with its prefix, while handed on */
    bool busy;                      /* inside our own code that may lose the stream */
    /* server-streaming */
    const grpc_smethod_t *sm;
    const fv_grpc_stream_cbs_t *cbs;
    void *cbs_data;
    bool held;                      /* the stream handler holds it: finish or cancel owed */
    bool begun;                     /* the head went out: the end goes as trailers */
    int in_fn;                      /* inside the stream handler's fn */
    fv_md_t head_md, trail_md;      /* the stream handler's answer metadata */
    size_t sent;                    /* messages sent on the stream */
    /* client-streaming and bidirectional */
    bool paused;                    /* fv_grpc_stream_pause: no on_message */
    bool half_closed;               /* the client ended its side (END_STREAM seen) */
    bool told_half;                 /* on_half_close ran */
    bool delivering;                /* inside deliver_messages */
    struct grpc_deadline *dl;       /* grpc-timeout of a held stream, while it runs */
};

/* A streaming call's deadline. The timer outlives the call when the call ends first (a libuv
 * handle closes on a later turn), so it is its own allocation: c is cleared then, and the
 * close callback frees it. */
typedef struct grpc_deadline {
    uv_timer_t timer;
    grpc_call_t *c;
} grpc_deadline_t;

static void on_deadline_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void deadline_stop(grpc_call_t *c)
{
    grpc_deadline_t *dl = c->dl;
    if (!dl)
        return;
    c->dl = NULL;
    dl->c = NULL;
    uv_timer_stop(&dl->timer);
    uv_close((uv_handle_t *)&dl->timer, on_deadline_closed);
}

static void deadline_start(grpc_call_t *c);

static bool reads_stream(const grpc_call_t *c)
{
    return c->sm && c->sm->kind != SM_SERVER;
}

static void server_release(fv_grpc_server_t *g)
{
    while (g->routes) {
        grpc_route_t *r = g->routes;
        g->routes = r->next;
        fv_free(r);
    }
    while (g->smethods) {
        grpc_smethod_t *m = g->smethods;
        g->smethods = m->next;
        fv_free(m);
    }
    fv_free(g);
}

/* The request bytes are no longer needed (dispatched, answered or gone). */
static void body_release(grpc_call_t *c)
{
    buffered_total -= c->counted;
    c->counted = 0;
    c->in_off = 0;
    fv_buf_dispose(&c->in);
    fv_buf_init(&c->in, 0);
    fv_buf_dispose(&c->unz);
    fv_buf_init(&c->unz, 0);
}

/* ... and the request metadata too (the call ends, or the rpc took its own copy). */
static void in_release(grpc_call_t *c)
{
    body_release(c);
    fv_md_dispose(&c->md);
}

static void call_maybe_free(grpc_call_t *c)
{
    if (c->st || c->dispatched || c->busy || c->held || c->in_fn)
        return;
    fv_grpc_server_t *g = c->g;
    deadline_stop(c);
    in_release(c);
    fv_md_dispose(&c->head_md);
    fv_md_dispose(&c->trail_md);
    fv_free(c);
    if (--g->live == 0 && g->freed)
        server_release(g);
}

/* ---- answers ---- */

static const fv_h2_header_t ok_head[] = {
    {FV_SLICE_LIT(":status"), FV_SLICE_LIT("200")},
    {FV_SLICE_LIT("content-type"), FV_SLICE_LIT("application/grpc")},
    {FV_SLICE_LIT("grpc-accept-encoding"), FV_SLICE_LIT("identity,gzip")},
};

/* The answer's metadata (the handler's headers and trailers; none before a handler ran). */
typedef struct answer_md {
    const fv_md_t *head, *trail;
} answer_md_t;

static size_t md_count(const fv_md_t *md)
{
    return md ? md->count : 0;
}

/* Appends md's pairs to h[*n..] as header fields; -bin values are base64-encoded into enc,
 * which the caller reserved (fv_md_wire_bytes) so that earlier slices into it stay put. */
static void md_headers(const fv_md_t *md, fv_buf_t *enc, fv_h2_header_t *h, size_t *n)
{
    for (size_t i = 0; i < md_count(md); i++) {
        fv_slice_t name, value;
        fv_md_wire_at(md, i, enc, &name, &value);
        h[(*n)++] = (fv_h2_header_t){name, value};
    }
}

/* head[0..fixed) then the pairs of a and b, with their base64 in *enc (disposed by the
 * caller). NULL out of memory. */
static fv_h2_header_t *headers_with_md(const fv_h2_header_t *fixed, size_t nfixed,
                                       const fv_md_t *a, const fv_md_t *b, fv_buf_t *enc,
                                       size_t *n)
{
    fv_buf_init(enc, 0);
    size_t b64 = fv_md_wire_bytes(a) + fv_md_wire_bytes(b);
    if (b64 && fv_buf_reserve(enc, b64) < 0)
        return NULL;
    fv_h2_header_t *h = fv_calloc(nfixed + md_count(a) + md_count(b), sizeof(*h));
    memcpy(h, fixed, nfixed * sizeof(*h));
    *n = nfixed;
    md_headers(a, enc, h, n);
    md_headers(b, enc, h, n);
    return h;
}

/* Trailers-only: the whole answer is one header block ending the stream, so the handler's
 * headers and trailers both go in it. */
static void answer_status(grpc_call_t *c, int grpc_status, const char *msg, answer_md_t md)
{
    if (c->answered || !c->st)
        return;
    c->answered = true;
    c->g->stats.failed++;
    in_release(c);
    char num[12];
    snprintf(num, sizeof(num), "%d", grpc_status);
    fv_buf_t enc;
    fv_buf_init(&enc, 4096);
    if (fv_grpc_message_encode(&enc, msg ? msg : "") < 0)
        fv_buf_reset(&enc);       /* too long or no memory: the status alone still tells */
    fv_h2_header_t fixed[] = {
        ok_head[0], ok_head[1], ok_head[2],
        {FV_SLICE_LIT("grpc-status"), fv_slice_cstr(num)},
        {FV_SLICE_LIT("grpc-message"), fv_buf_slice(&enc)},
    };
    fv_buf_t b64;
    size_t n = 0;
    fv_h2_header_t *head = headers_with_md(fixed, enc.len ? 5 : 4, md.head, md.trail, &b64, &n);
    c->busy = true;
    if ((!head || fv_h2_stream_respond(c->st, head, n, NULL, 0, NULL, 0) < 0) && c->st)
        fv_h2_stream_reset(c->st, 2);   /* INTERNAL_ERROR: no memory for the answer */
    c->busy = false;
    fv_free(head);
    fv_buf_dispose(&b64);
    fv_buf_dispose(&enc);
}

static void answer_ok(grpc_call_t *c, const uint8_t *frame, size_t len, answer_md_t md)
{
    static const fv_h2_header_t ok_trailer[] = {
        {FV_SLICE_LIT("grpc-status"), FV_SLICE_LIT("0")},
    };
    if (c->answered || !c->st)
        return;
    c->answered = true;
    c->g->stats.ok++;
    fv_buf_t hb64, tb64;
    size_t nh = 0, nt = 0;
    fv_h2_header_t *head = headers_with_md(ok_head, 3, md.head, NULL, &hb64, &nh);
    fv_h2_header_t *trail = headers_with_md(ok_trailer, 1, md.trail, NULL, &tb64, &nt);
    c->busy = true;
    if ((!head || !trail ||
         fv_h2_stream_respond(c->st, head, nh, frame, len, trail, nt) < 0) && c->st)
        fv_h2_stream_reset(c->st, 2);
    c->busy = false;
    fv_free(head);
    fv_free(trail);
    fv_buf_dispose(&hb64);
    fv_buf_dispose(&tb64);
}

static const answer_md_t no_md = {NULL, NULL};

static void answer_error(grpc_call_t *c, int grpc_status, const char *msg)
{
    answer_status(c, grpc_status, msg, no_md);
}

static void answer_fv(grpc_call_t *c, int code, const char *msg, answer_md_t md)
{
    answer_status(c, fv_err_grpc_status(code), msg && *msg ? msg : fv_strerror(code), md);
}

/* ---- the rpc side ---- */

static void on_done(int status, const uint8_t *frame, size_t len, const char *message,
                    void *data)
{
    grpc_call_t *c = data;
    answer_md_t md;
    fv_rpc_req_answer_metadata(c->req, &md.head, &md.trail);
    c->dispatched = false;
    c->g->stats.in_flight--;
    if (status == 0)
        answer_ok(c, frame, len, md);
    else
        answer_fv(c, status, message, md);
    c->req = NULL;
    call_maybe_free(c);
}

/* Inflates the compressed message z into c->unz as an uncompressed frame (the prefix, then the
 * message, at most max_msg bytes): 0 with *frame, or < 0 with the gRPC status and message to
 * end the call with in *status and m[0..msize). */
static int inflate_message(grpc_call_t *c, fv_slice_t z, fv_slice_t *frame, int *status, char *m,
                           size_t msize)
{
    fv_buf_dispose(&c->unz);
    fv_buf_init(&c->unz, FV_RPC_FRAME_HEADER + c->g->max_msg);
    uint8_t prefix[FV_RPC_FRAME_HEADER] = {0};
    int rc = fv_buf_append(&c->unz, prefix, sizeof(prefix));
    if (rc == 0)
        rc = fv_grpc_gunzip((const uint8_t *)z.ptr, z.len, &c->unz);
    if (rc < 0) {
        *status = rc == FV_EPROTO ? FV_GRPC_INTERNAL : FV_GRPC_RESOURCE_EXHAUSTED;
        if (rc == FV_ETOOBIG)
            snprintf(m, msize, "the request message is over %zu bytes once inflated",
                     c->g->max_msg);
        else
            snprintf(m, msize, "%s", rc == FV_EPROTO ? "the request message is not valid gzip"
                                                     : "no memory to inflate the request message");
        fv_buf_dispose(&c->unz);
        fv_buf_init(&c->unz, 0);
        return rc;
    }
    fv_rpc_frame_header((uint8_t *)c->unz.ptr, (uint32_t)(c->unz.len - FV_RPC_FRAME_HEADER));
    *frame = fv_buf_slice(&c->unz);
    return 0;
}

/* The whole body is here: exactly one message, then the call goes to the module. */
static void dispatch(grpc_call_t *c)
{
    fv_slice_t msg;
    size_t used = 0;
    bool compressed = false;
    int rc = fv_rpc_frame_parse_any((const uint8_t *)c->in.ptr, c->in.len, c->g->max_msg, &msg,
                                    &used, &compressed);
    if (rc == FV_EAGAIN) {
        answer_error(c, FV_GRPC_INTERNAL, c->in.len ? "the request message is truncated"
                                                    : "a unary call needs one request message");
        return;
    }
    if (rc == 0 && used != c->in.len) {
        answer_error(c, FV_GRPC_INTERNAL, "a unary call takes exactly one request message");
        return;
    }
    if (rc < 0)
        return;                          /* told already when its prefix arrived */
    fv_slice_t frame = fv_buf_slice(&c->in);
    if (compressed) {
        int status;
        char m[96];
        if (inflate_message(c, msg, &frame, &status, m, sizeof(m)) < 0) {
            answer_error(c, status, m);
            return;
        }
        msg = fv_slice(frame.ptr + FV_RPC_FRAME_HEADER, frame.len - FV_RPC_FRAME_HEADER);
    }
    if (c->sm) {
        c->held = true;
        c->g->stats.in_flight++;
        deadline_start(c);
        c->in_fn++;
        c->sm->fn(c, (const uint8_t *)msg.ptr, msg.len, c->sm->data);
        c->in_fn--;
        body_release(c);                 /* the metadata stays while the stream is held */
        call_maybe_free(c);              /* finished and gone inside fn */
        return;
    }
    rc = fv_rpc_dispatch(c->g->rpc, c->module, c->method, (const uint8_t *)frame.ptr, frame.len,
                         &c->md, c->deadline_ms, on_done, c, &c->req);
    if (rc < 0) {
        answer_fv(c, rc, NULL, no_md);
        return;
    }
    c->dispatched = true;
    c->g->stats.in_flight++;
    in_release(c);                       /* the rpc holds its own copy */
}

/* Whether len more request bytes fit the process's budget. */
static bool budget_ok(const fv_grpc_server_t *g, size_t len)
{
    return buffered_total <= g->max_buffered && len <= g->max_buffered - buffered_total;
}

/* ---- streaming calls: the end, and reading a stream of request messages ---- */

/* Ends a held stream with a gRPC status: a trailers-only answer when nothing was sent, else
 * the trailers after what is queued. The caller frees (call_maybe_free). */
static void stream_end(grpc_call_t *s, int grpc_status, const char *message)
{
    if (!s->held)
        return;
    deadline_stop(s);
    s->held = false;
    s->g->stats.in_flight--;
    answer_md_t md = {&s->head_md, &s->trail_md};
    if (!s->begun) {
        if (grpc_status == FV_GRPC_OK)
            answer_ok(s, NULL, 0, md);
        else
            answer_status(s, grpc_status, message && *message ? message : "", md);
        return;
    }
    if (!s->st)
        return;
    char num[12];
    snprintf(num, sizeof(num), "%d", grpc_status);
    fv_buf_t enc;
    fv_buf_init(&enc, 4096);
    if (grpc_status && message && fv_grpc_message_encode(&enc, message) < 0)
        fv_buf_reset(&enc);
    fv_h2_header_t fixed[] = {
        {FV_SLICE_LIT("grpc-status"), fv_slice_cstr(num)},
        {FV_SLICE_LIT("grpc-message"), fv_buf_slice(&enc)},
    };
    fv_buf_t b64;
    size_t n = 0;
    fv_h2_header_t *trail = headers_with_md(fixed, enc.len ? 2 : 1, &s->trail_md, NULL, &b64,
                                            &n);
    if (grpc_status)
        s->g->stats.failed++;
    else
        s->g->stats.ok++;
    s->busy = true;
    if ((!trail || fv_h2_stream_end(s->st, trail, n) < 0) && s->st)
        fv_h2_stream_reset(s->st, 2);
    s->busy = false;
    fv_free(trail);
    fv_buf_dispose(&b64);
    fv_buf_dispose(&enc);
}

/* The request side failed a held stream (a bad message, over a limit): the client gets the
 * status and the handler on_cancel, as if the client had gone. */
static void stream_fail(grpc_call_t *c, int grpc_status, const char *message)
{
    if (!c->held)
        return;
    c->in_fn++;
    stream_end(c, grpc_status, message);
    if (c->cbs && c->cbs->on_cancel)
        c->cbs->on_cancel(c, c->cbs_data);
    c->in_fn--;
    call_maybe_free(c);
}

/* Hands the complete messages in c->in to on_message, one by one while the handler neither
 * pauses nor ends, then on_half_close once the client's side has ended and everything before
 * it was read. Any handler call may pause, resume (which lands here again: the outer loop
 * goes on), send, finish, or lose the stream. Frees c when nothing holds it after. */
static void deliver_messages(grpc_call_t *c)
{
    if (c->delivering)
        return;
    c->delivering = true;
    c->in_fn++;
    while (c->held && c->st && !c->paused) {
        fv_slice_t msg;
        size_t used = 0;
        static const uint8_t none[1];    /* an empty buffer may have no memory yet */
        const uint8_t *at = c->in.ptr ? (const uint8_t *)c->in.ptr + c->in_off : none;
        bool compressed = false;
        int rc = fv_rpc_frame_parse_any(at, c->in.len - c->in_off, c->g->max_msg, &msg, &used,
                                        &compressed);
        if (rc == 0 && compressed && !c->gzip)
            rc = FV_EINVAL;
        if (rc == FV_EAGAIN) {
            if (!c->half_closed || c->told_half)
                break;
            if (c->in.len > c->in_off) {
                stream_fail(c, FV_GRPC_INTERNAL, "the last request message is truncated");
                break;
            }
            c->told_half = true;
            if (c->cbs && c->cbs->on_half_close)
                c->cbs->on_half_close(c, c->cbs_data);
            break;
        }
        if (rc < 0) {
            char m[96];
            if (rc == FV_ETOOBIG)
                snprintf(m, sizeof(m), "a request message is over %zu bytes", c->g->max_msg);
            stream_fail(c, rc == FV_ETOOBIG ? FV_GRPC_RESOURCE_EXHAUSTED : FV_GRPC_INTERNAL,
                        rc == FV_ETOOBIG ? m
                        : rc == FV_EINVAL ? "a compressed message without grpc-encoding"
                                          : "the message flag is neither 0 nor 1");
            break;
        }
        c->in_off += used;
        if (compressed) {
            fv_slice_t frame;
            int status;
            char m[96];
            if (inflate_message(c, msg, &frame, &status, m, sizeof(m)) < 0) {
                stream_fail(c, status, m);
                break;
            }
            msg = fv_slice(frame.ptr + FV_RPC_FRAME_HEADER, frame.len - FV_RPC_FRAME_HEADER);
        }
        if (c->cbs && c->cbs->on_message)
            c->cbs->on_message(c, (const uint8_t *)msg.ptr, msg.len, c->cbs_data);
    }
    fv_buf_dispose(&c->unz);             /* an inflated message lives only while handed on */
    fv_buf_init(&c->unz, 0);
    /* what was read leaves the buffer (and the budget); the rest is under one message */
    if (c->in_off >= c->in.len) {
        fv_buf_reset(&c->in);
        c->in_off = 0;
    } else if (c->in_off) {
        fv_buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    buffered_total -= c->counted - c->in.len;
    c->counted = c->in.len;
    c->delivering = false;
    c->in_fn--;
    call_maybe_free(c);
}

/* Request bytes of a client-streaming or bidirectional call. */
static void stream_body(grpc_call_t *c, const uint8_t *p, size_t len, bool end)
{
    if (!c->held || !c->st || c->half_closed)
        return;
    if (!budget_ok(c->g, len)) {
        stream_fail(c, FV_GRPC_RESOURCE_EXHAUSTED,
                    "too much request data in flight on this server; try again");
        return;
    }
    if (len && fv_buf_append(&c->in, p, len) < 0) {
        /* past one message and one window: the client ignored flow control, or memory ran
         * out */
        stream_fail(c, FV_GRPC_RESOURCE_EXHAUSTED, "too much request data on this stream");
        return;
    }
    c->counted += len;
    buffered_total += len;
    if (end)
        c->half_closed = true;
    deliver_messages(c);
}

static void on_deadline(uv_timer_t *t)
{
    grpc_deadline_t *dl = t->data;
    grpc_call_t *c = dl->c;
    if (c)
        stream_fail(c, FV_GRPC_DEADLINE_EXCEEDED, "the deadline passed");
}

/* A held stream with a grpc-timeout ends DEADLINE_EXCEEDED when it passes (the handler hears
 * on_cancel), as a unary call does in the call layer. */
static void deadline_start(grpc_call_t *c)
{
    if (!c->deadline_ms || !c->st || !c->held)
        return;
    grpc_deadline_t *dl = fv_calloc(1, sizeof(*dl));
    uv_timer_init(fv_h2_stream_loop(c->st), &dl->timer);
    dl->timer.data = dl;
    dl->c = c;
    c->dl = dl;
    uv_timer_start(&dl->timer, on_deadline, c->deadline_ms, 0);
}

/* ---- the stream side ---- */

static const char *route_of(fv_grpc_server_t *g, fv_slice_t service)
{
    for (grpc_route_t *r = g->routes; r; r = r->next)
        if (fv_slice_eq_cstr(service, r->service))
            return r->module;
    /* the module's own name is an alias of its service: our own transport calls modules by
     * name (rpc/grpc_transport.h), not knowing their service names */
    const char *own = fv_rpc_service_of(g->rpc, g->module);
    if ((own && fv_slice_eq_cstr(service, own)) || fv_slice_eq_cstr(service, g->module))
        return g->module;
    return NULL;
}

static bool is_grpc_type(fv_slice_t ct)
{
    static const fv_slice_t base = FV_SLICE_LIT("application/grpc");
    if (!ct.ptr || !fv_slice_starts_with(ct, base))
        return false;
    return ct.len == base.len || ct.ptr[base.len] == '+' || ct.ptr[base.len] == ';';
}

/* The request's custom metadata for the handler. Reserved names are the transport's and are
 * not passed on; a -bin header may hold several values joined by commas. */
static void request_metadata(grpc_call_t *c)
{
    size_t pos = 0;
    fv_slice_t name, value;
    while (fv_h2_stream_header_next(c->st, &pos, &name, &value)) {
        int rc = fv_md_add_wire(&c->md, name, value);
        if (rc == FV_EINVAL) {
            char m[GRPC_NAME_MAX + 64];
            snprintf(m, sizeof(m), "metadata %.*s is not base64", (int)name.len, name.ptr);
            answer_error(c, FV_GRPC_INTERNAL, m);
            return;
        }
        if (rc < 0) {
            answer_error(c, FV_GRPC_RESOURCE_EXHAUSTED, "too much request metadata");
            return;
        }
    }
}

static void h2_on_request(fv_h2_stream_t *st, void *data)
{
    fv_grpc_server_t *g = data;
    grpc_call_t *c = fv_calloc(1, sizeof(*c));
    c->g = g;
    c->st = st;
    fv_buf_init(&c->in, g->max_msg + FV_RPC_FRAME_HEADER);
    fv_md_init(&c->md, GRPC_MAX_REQUEST_MD);
    fv_md_init(&c->head_md, 0);
    fv_md_init(&c->trail_md, 0);
    g->live++;
    g->stats.calls++;
    fv_h2_stream_set_data(st, c);

    /* not gRPC at all: an HTTP answer, as the spec asks */
    if (!fv_slice_eq_cstr(fv_h2_stream_method(st), "POST") ||
        !is_grpc_type(fv_h2_stream_header(st, "content-type"))) {
        static const fv_h2_header_t h415[] = {{FV_SLICE_LIT(":status"), FV_SLICE_LIT("415")}};
        c->answered = true;
        g->stats.failed++;
        if (fv_h2_stream_respond(st, h415, 1, NULL, 0, NULL, 0) < 0)
            fv_h2_stream_reset(st, 2);
        return;
    }
    fv_slice_t service, method;
    char svc[GRPC_NAME_MAX];
    if (fv_grpc_path_split(fv_h2_stream_path(st), &service, &method) < 0 ||
        service.len >= sizeof(svc) || method.len >= sizeof(c->method)) {
        answer_error(c, FV_GRPC_UNIMPLEMENTED, "the path is not /<service>/<method>");
        return;
    }
    snprintf(svc, sizeof(svc), "%.*s", (int)service.len, service.ptr);
    snprintf(c->method, sizeof(c->method), "%.*s", (int)method.len, method.ptr);
    for (const grpc_smethod_t *m = g->smethods; m; m = m->next)
        if (fv_slice_eq_cstr(service, m->service) && fv_slice_eq_cstr(method, m->method))
            c->sm = m;
    const char *module = c->sm ? g->module : route_of(g, service);
    if (!module) {
        char msg[GRPC_NAME_MAX + 64];
        snprintf(msg, sizeof(msg), "unknown service %s", svc);
        answer_error(c, FV_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    snprintf(c->module, sizeof(c->module), "%s", module);
    if (reads_stream(c)) {
        /* a message being read, and what one window lets come meanwhile (before our
         * SETTINGS arrive a client may use the protocol's default window) */
        size_t window = g->h2.stream_window_bytes > GRPC_H2_DEFAULT_WINDOW
                            ? g->h2.stream_window_bytes : GRPC_H2_DEFAULT_WINDOW;
        fv_buf_init(&c->in, g->max_msg + FV_RPC_FRAME_HEADER + window);
    }
    fv_slice_t enc = fv_h2_stream_header(st, "grpc-encoding");
    c->gzip = enc.ptr && fv_slice_eq_cstr(enc, "gzip");
    if (enc.ptr && !c->gzip && !fv_slice_eq_cstr(enc, "identity")) {
        answer_error(c, FV_GRPC_UNIMPLEMENTED,
                     "grpc-encoding is not supported (identity and gzip are)");
        return;
    }
    fv_slice_t timeout = fv_h2_stream_header(st, "grpc-timeout");
    if (timeout.ptr &&
        fv_grpc_timeout_parse(timeout, FV_RPC_MAX_DEADLINE_MS, &c->deadline_ms) < 0) {
        answer_error(c, FV_GRPC_INTERNAL, "grpc-timeout is malformed");
        return;
    }
    request_metadata(c);
    if (c->answered || !reads_stream(c))
        return;
    /* client-streaming and bidirectional calls open on the headers: the handler reads the
     * messages as they come */
    c->held = true;
    g->stats.in_flight++;
    deadline_start(c);
    c->in_fn++;
    c->sm->open(c, c->sm->data);
    c->in_fn--;
    call_maybe_free(c);
}

static void h2_on_body(fv_h2_stream_t *st, const uint8_t *p, size_t len, bool end, void *data)
{
    grpc_call_t *c = fv_h2_stream_data(st);
    if (c && reads_stream(c)) {
        stream_body(c, p, len, end);
        return;
    }
    if (!c || c->answered || c->dispatched || c->held)
        return;
    if (!budget_ok(c->g, len)) {
        answer_error(c, FV_GRPC_RESOURCE_EXHAUSTED,
                     "too much request data in flight on this server; try again");
        return;
    }
    if (len && fv_buf_append(&c->in, p, len) < 0) {
        /* over one frame of the largest message: a second message on a unary call (the
         * first's own length was checked from its prefix) */
        answer_error(c, FV_GRPC_INTERNAL, "a unary call takes exactly one request message");
        return;
    }
    c->counted += len;
    buffered_total += len;
    if (c->in.len >= FV_RPC_FRAME_HEADER && c->in.len - len < FV_RPC_FRAME_HEADER) {
        /* the prefix just arrived: refuse what it announces before the body comes */
        fv_slice_t msg;
        size_t used;
        bool compressed = false;
        int rc = fv_rpc_frame_parse_any((const uint8_t *)c->in.ptr, c->in.len, c->g->max_msg,
                                        &msg, &used, &compressed);
        if (rc == 0 && compressed && !c->gzip)
            rc = FV_EINVAL;
        if (rc == FV_ETOOBIG) {
            char m[96];
            snprintf(m, sizeof(m), "the request message is over %zu bytes", c->g->max_msg);
            answer_error(c, FV_GRPC_RESOURCE_EXHAUSTED, m);
            return;
        }
        if (rc == FV_EINVAL) {
            answer_error(c, FV_GRPC_INTERNAL, "a compressed message without grpc-encoding");
            return;
        }
        if (rc == FV_EPROTO) {
            answer_error(c, FV_GRPC_INTERNAL, "the message flag is neither 0 nor 1");
            return;
        }
    }
    if (end)
        dispatch(c);
}

static void h2_on_close(fv_h2_stream_t *st, uint32_t code, void *data)
{
    grpc_call_t *c = fv_h2_stream_data(st);
    if (!c)
        return;
    c->st = NULL;
    if (c->dispatched && c->req)
        fv_rpc_cancel(c->req);           /* the handler hears it; on_done follows */
    if (c->held) {
        deadline_stop(c);
        c->held = false;
        c->g->stats.in_flight--;
        c->g->stats.failed++;
        c->in_fn++;                      /* the stream stays valid through on_cancel */
        if (c->cbs && c->cbs->on_cancel)
            c->cbs->on_cancel(c, c->cbs_data);
        c->in_fn--;
    }
    call_maybe_free(c);
}

static void h2_on_writable(fv_h2_stream_t *st, void *data)
{
    grpc_call_t *c = fv_h2_stream_data(st);
    if (c && c->held && c->cbs && c->cbs->on_writable)
        c->cbs->on_writable(c, c->cbs_data);
}

static const fv_h2_handler_t grpc_h2_handler = {
    .on_request = h2_on_request,
    .on_body = h2_on_body,
    .on_close = h2_on_close,
    .on_writable = h2_on_writable,
};

static int h2_factory(fv_sock_t *s, void *data, const fv_sock_driver_t **driver, void **state)
{
    fv_grpc_server_t *g = data;
    return fv_h2_conn_new(s, &g->h2, &grpc_h2_handler, g, driver, state);
}

/* ---- setup ---- */

int fv_grpc_server_new(fv_rpc_t *rpc, const char *module, const fv_grpc_opts_t *opts,
                       fv_grpc_server_t **out)
{
    if (!rpc || !module || !*module || strlen(module) >= GRPC_NAME_MAX || !out)
        return FV_EINVAL;
    fv_grpc_server_t *g = fv_calloc(1, sizeof(*g));
    g->rpc = rpc;
    snprintf(g->module, sizeof(g->module), "%s", module);
    g->max_msg = opts && opts->max_message_bytes ? opts->max_message_bytes
                                                 : FV_RPC_DEFAULT_MAX_MESSAGE;
    g->max_buffered = opts && opts->max_buffered_bytes ? opts->max_buffered_bytes
                                                       : GRPC_DEFAULT_BUFFERED;
    if (opts && opts->h2)
        g->h2 = *opts->h2;
    else
        fv_h2_limits_default(&g->h2);
    *out = g;
    return 0;
}

int fv_grpc_server_route(fv_grpc_server_t *g, const char *service, const char *rpc_module)
{
    if (!g || !service || !*service || !rpc_module || !*rpc_module ||
        strlen(service) >= GRPC_NAME_MAX || strlen(rpc_module) >= GRPC_NAME_MAX)
        return FV_EINVAL;
    for (grpc_route_t *r = g->routes; r; r = r->next)
        if (strcmp(r->service, service) == 0)
            return FV_EEXIST;
    grpc_route_t *r = fv_calloc(1, sizeof(*r));
    snprintf(r->service, sizeof(r->service), "%s", service);
    snprintf(r->module, sizeof(r->module), "%s", rpc_module);
    r->next = g->routes;
    g->routes = r;
    return 0;
}

static int smethod_add(fv_grpc_server_t *g, const char *service, const char *method,
                       sm_kind_t kind, fv_grpc_stream_fn fn, fv_grpc_open_fn open, void *data)
{
    if (!g || !service || !*service || !method || !*method || (!fn && !open) ||
        strlen(service) >= GRPC_NAME_MAX || strlen(method) >= GRPC_NAME_MAX)
        return FV_EINVAL;
    for (grpc_smethod_t *m = g->smethods; m; m = m->next)
        if (strcmp(m->service, service) == 0 && strcmp(m->method, method) == 0)
            return FV_EEXIST;
    grpc_smethod_t *m = fv_calloc(1, sizeof(*m));
    snprintf(m->service, sizeof(m->service), "%s", service);
    snprintf(m->method, sizeof(m->method), "%s", method);
    m->kind = kind;
    m->fn = fn;
    m->open = open;
    m->data = data;
    m->next = g->smethods;
    g->smethods = m;
    return 0;
}

int fv_grpc_server_stream_method(fv_grpc_server_t *g, const char *service, const char *method,
                                 fv_grpc_stream_fn fn, void *data)
{
    return fn ? smethod_add(g, service, method, SM_SERVER, fn, NULL, data) : FV_EINVAL;
}

int fv_grpc_server_client_stream_method(fv_grpc_server_t *g, const char *service,
                                        const char *method, fv_grpc_open_fn fn, void *data)
{
    return fn ? smethod_add(g, service, method, SM_CLIENT, NULL, fn, data) : FV_EINVAL;
}

int fv_grpc_server_bidi_method(fv_grpc_server_t *g, const char *service, const char *method,
                               fv_grpc_open_fn fn, void *data)
{
    return fn ? smethod_add(g, service, method, SM_BIDI, NULL, fn, data) : FV_EINVAL;
}

void fv_grpc_stream_set_cbs(fv_grpc_stream_t *s, const fv_grpc_stream_cbs_t *cbs, void *data)
{
    s->cbs = cbs;
    s->cbs_data = data;
}

void fv_grpc_stream_pause(fv_grpc_stream_t *s, bool paused)
{
    if (!s->held || s->paused == paused)
        return;
    s->paused = paused;
    s->in_fn++;
    if (s->st)
        fv_h2_stream_hold(s->st, paused);
    if (!paused && s->st)
        deliver_messages(s);
    s->in_fn--;
    call_maybe_free(s);
}

const fv_md_t *fv_grpc_stream_metadata(const fv_grpc_stream_t *s)
{
    return &s->md;
}

int fv_grpc_stream_add_header(fv_grpc_stream_t *s, const char *name, const void *value,
                              size_t len)
{
    if (!s->held || s->begun || !name)
        return FV_EINVAL;
    return fv_md_add(&s->head_md, fv_slice_cstr(name), value, len);
}

int fv_grpc_stream_add_trailer(fv_grpc_stream_t *s, const char *name, const void *value,
                               size_t len)
{
    if (!s->held || !name)
        return FV_EINVAL;
    return fv_md_add(&s->trail_md, fv_slice_cstr(name), value, len);
}

static int stream_send(fv_grpc_stream_t *s, const uint8_t *msg, size_t len)
{
    if (!s->st)
        return FV_ECANCELED;
    if (len > s->g->max_msg)
        return FV_ETOOBIG;
    if (!s->begun) {
        fv_buf_t b64;
        size_t n = 0;
        fv_h2_header_t *head = headers_with_md(ok_head, 3, &s->head_md, NULL, &b64, &n);
        int rc = head ? fv_h2_stream_begin(s->st, head, n) : FV_ENOMEM;
        fv_free(head);
        fv_buf_dispose(&b64);
        if (rc < 0)
            return rc;
        s->begun = true;
        s->answered = true;
        if (!s->st)
            return FV_ECANCELED;
    }
    /* one write for prefix and message: a refusal must not leave half a frame queued */
    uint8_t *frame = fv_try_malloc(FV_RPC_FRAME_HEADER + len);
    if (!frame)
        return FV_ENOMEM;
    fv_rpc_frame_header(frame, (uint32_t)len);
    if (len)
        memcpy(frame + FV_RPC_FRAME_HEADER, msg, len);
    int rc = fv_h2_stream_write(s->st, frame, FV_RPC_FRAME_HEADER + len);
    fv_free(frame);
    if (rc == 0)
        s->sent++;
    return rc;
}

int fv_grpc_stream_send(fv_grpc_stream_t *s, const uint8_t *msg, size_t len)
{
    if (!s->held || (s->sm->kind == SM_CLIENT && s->sent))
        return FV_EINVAL;
    /* writing flushes the connection, which can lose it (a fatal error closes the socket):
     * on_cancel then runs inside, and the stream must stay valid until we are out */
    s->in_fn++;
    int rc = stream_send(s, msg, len);
    s->in_fn--;
    if (!s->st && rc == 0)
        rc = FV_ECANCELED;
    call_maybe_free(s);
    return rc;
}

void fv_grpc_stream_finish(fv_grpc_stream_t *s, int code, const char *message)
{
    if (!s->held)
        return;
    stream_end(s, code ? fv_err_grpc_status(code) : FV_GRPC_OK,
               code ? (message && *message ? message : fv_strerror(code)) : NULL);
    call_maybe_free(s);
}

void fv_grpc_stream_finish_status(fv_grpc_stream_t *s, int grpc_status, const char *message)
{
    if (!s->held)
        return;
    stream_end(s, grpc_status, message);
    call_maybe_free(s);
}

void fv_grpc_server_services(const fv_grpc_server_t *g,
                             void (*fn)(const char *service, void *data), void *data)
{
    const char *own = fv_rpc_service_of(g->rpc, g->module);
    if (own)
        fn(own, data);
    for (const grpc_route_t *r = g->routes; r; r = r->next)
        if (!own || strcmp(r->service, own) != 0)
            fn(r->service, data);
    for (const grpc_smethod_t *m = g->smethods; m; m = m->next) {
        bool seen = own && strcmp(m->service, own) == 0;
        for (const grpc_route_t *r = g->routes; r && !seen; r = r->next)
            seen = strcmp(r->service, m->service) == 0;
        for (const grpc_smethod_t *e = g->smethods; e != m && !seen; e = e->next)
            seen = strcmp(e->service, m->service) == 0;
        if (!seen)
            fn(m->service, data);
    }
}

void fv_grpc_server_attach(fv_grpc_server_t *g, fv_http_server_t *http)
{
    fv_http_server_set_h2(http, h2_factory, g);
}

void fv_grpc_server_stats(const fv_grpc_server_t *g, fv_grpc_stats_t *out)
{
    *out = g->stats;
}

void fv_grpc_server_free(fv_grpc_server_t *g)
{
    if (!g)
        return;
    g->freed = true;
    if (g->live == 0)
        server_release(g);
}
