/* grpc_transport.c - calls to modules in other processes as unary gRPC calls over nghttp2
 * client sessions (see grpc_transport.h).
 *
 * A call object lives from start() until the call layer has heard its outcome and nothing
 * refers to it: an nghttp2 stream holds it as user data until its close callback, a connection
 * waiting to connect holds it in its queue, a resolver holds it until its callback. Outcomes
 * are reported once (report()); the object is freed apart from that. A connection is one TCP
 * socket and one session; it is dropped (its calls fail FV_EUNAVAILABLE) on any I/O or protocol
 * error, and no longer used for new calls after the peer's GOAWAY.
 *
 * Retries. An attempt that failed is made again, on another instance when there is one, when
 * it certainly never reached a handler (the connection was refused or never carried it, the
 * peer refused the stream: any call), or when the call is idempotent (FV_RPC_IDEMPOTENT) and
 * the instance answered UNAVAILABLE or the connection dropped under it. At most T_ATTEMPTS
 * attempts, the second at once when the first never left, the others after a backoff that
 * doubles from T_BACKOFF_MS with jitter, never past the deadline (the last failure is reported
 * then). An address whose connection failed is passed over by later calls for T_BAD_MS
 * (passive health), unless nothing else is offered.
 *
 * Balancing. The resolver names every healthy instance; a call goes to the one with the fewest
 * of our calls under way on its connection (least outstanding), so a slow instance gets fewer
 * calls and a fast one more, and equals share them in turn. */
#include "rpc/grpc_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "rpc/frame.h"

#define T_NAME_MAX 96
#define T_READ_BYTES 65536
#define T_ATTEMPTS 4
#define T_BACKOFF_MS 25
#define T_BAD_MS 3000
#define T_BAD_MAX 16              /* addresses remembered as failing */
#define T_CONNECT_MS 3000         /* a connection not made by then is given up */
#define T_PING_IDLE_MS 5000       /* calls under way and nothing heard this long: a PING */
#define T_PING_ACK_MS 5000        /* ... which unanswered this long fails the connection */
#define T_SWEEP_MS 250            /* how often those are looked at, while connections exist */

typedef struct tconn tconn_t;

typedef struct tcall {
    fv_grpc_transport_t *t;
    fv_rpc_req_t *req;
    tconn_t *conn;                  /* queued on it, or a stream of it */
    struct tcall *prev, *next;      /* every call object of the transport */
    struct tcall *qnext;            /* the connection's queue */
    char module[T_NAME_MAX];
    char method[T_NAME_MAX];
    uint8_t *frame;                 /* the request frame, owned */
    size_t len;
    size_t sent;
    uint32_t deadline_ms;
    uint64_t deadline_at;           /* loop time (uv_now) */
    unsigned flags;                 /* FV_RPC_IDEMPOTENT */
    int attempts;                   /* begun so far */
    char last_host[64];             /* the instance of the last attempt: a retry goes
                                     * elsewhere when it can */
    int last_port;
    uint64_t retry_at;              /* loop time of the next attempt, while waiting */
    struct tcall *rnext;            /* the transport's list of calls waiting to retry */
    int32_t stream_id;              /* 0 until submitted */
    fv_buf_t answer;                /* the answer frame, ceiling max_msg + 5; for a stream, the
                                     * part of a message not yet whole */
    fv_md_t md;                     /* the request metadata, copied */
    fv_md_t head, trail;            /* the answer's custom metadata, from this attempt */
    size_t delivered;               /* stream messages handed over: no retry after one */
    int grpc_status;                /* -1 until seen */
    int http_status;                /* :status of the answer, 0 until seen */
    char message[FV_ERROR_MSG_LEN];
    bool resolving;                 /* the resolver still holds it */
    bool waiting;                   /* on the retry list */
    bool canceled;                  /* the caller stopped waiting: no more attempts */
    bool queued;
    bool reported;                  /* fv_rpc_remote_done ran */
    bool too_big;
    bool malformed;                 /* a stream message that does not parse */
} tcall_t;

struct tconn {
    fv_grpc_transport_t *t;
    uv_tcp_t tcp;
    uv_connect_t connect;
    char host[64];
    int port;
    nghttp2_session *session;
    tconn_t *next;
    tcall_t *qhead, *qtail;
    bool connected;
    size_t active;                  /* calls on it: queued or streams (least outstanding) */
    uint64_t started_at;            /* loop time: the connect began */
    uint64_t heard_at;              /* loop time: bytes last came */
    uint64_t ping_at;               /* loop time: our PING went unanswered since; 0 none */
    bool goaway;                    /* the peer is going: no new calls here */
    bool receiving;                 /* inside nghttp2_session_mem_recv: no sending now */
    bool closing;
};

struct fv_grpc_transport {
    uv_loop_t *loop;
    fv_rpc_t *rpc;
    fv_grpc_resolve_fn resolve;
    void *rdata;
    size_t max_msg;
    tcall_t *calls;
    tconn_t *conns;
    tcall_t *retries;               /* calls waiting for their next attempt */
    size_t rr;                      /* where the next choice starts among equals */
    uv_timer_t retry_timer;
    uv_timer_t sweep_timer;         /* connect deadlines and keepalive PINGs */
    uint32_t connect_ms, ping_idle_ms, ping_ack_ms;
    struct {
        char host[64];
        int port;
        uint64_t until;
    } bad[T_BAD_MAX];               /* addresses that failed lately */
    size_t handles;                 /* connections and the timer, not yet closed */
    size_t resolving;               /* resolver callbacks still owed */
    bool closing;
    void (*closed_cb)(void *);
    void *closed_data;
};

typedef struct twrite {
    uv_write_t req;
    char *buf;
} twrite_t;

static void conn_flush(tconn_t *conn);
static void conn_fail(tconn_t *conn, const char *why);

/* ---- the transport's end ---- */

static void maybe_finish_close(fv_grpc_transport_t *t)
{
    if (!t->closing || t->handles || t->resolving || t->calls)
        return;
    void (*cb)(void *) = t->closed_cb;
    void *data = t->closed_data;
    fv_free(t);
    if (cb)
        cb(data);
}

/* ---- calls ---- */

static int fv_code_of(int grpc_status)
{
    switch (grpc_status) {
    case 1: return FV_ECANCELED;
    case 3: return FV_EINVAL;
    case 4: return FV_ETIMEDOUT;
    case 5: return FV_ENOENT;
    case 6: return FV_EEXIST;
    case 7: return FV_EFORBIDDEN;
    case 8: return FV_ETOOBIG;
    case 10: return FV_ECONFLICT;
    case 12: return FV_EUNIMPLEMENTED;
    case 14: return FV_EUNAVAILABLE;
    case 16: return FV_EUNAUTH;
    default: return FV_EINTERNAL;
    }
}

static void report(tcall_t *c, int status, const uint8_t *frame, size_t len, const char *msg)
{
    if (c->reported)
        return;
    c->reported = true;
    fv_rpc_remote_answer_metadata(c->req, &c->head, &c->trail);
    fv_rpc_remote_done(c->req, status, frame, len, msg);
}

static void answer_md_reset(tcall_t *c)
{
    fv_md_dispose(&c->head);
    fv_md_dispose(&c->trail);
    fv_md_init(&c->head, 0);
    fv_md_init(&c->trail, 0);
}

static void retry_unlink(tcall_t *c)
{
    for (tcall_t **p = &c->t->retries; *p; p = &(*p)->rnext)
        if (*p == c) {
            *p = c->rnext;
            break;
        }
    c->waiting = false;
}

static void sweep_start(fv_grpc_transport_t *t);

static void call_attach(tcall_t *c, tconn_t *conn)
{
    c->conn = conn;
    if (conn->active++ == 0) {
        conn->heard_at = uv_now(c->t->loop);   /* silence counts from the first call on */
        sweep_start(c->t);
    }
}

static void call_detach(tcall_t *c)
{
    if (c->conn) {
        c->conn->active--;
        c->conn = NULL;
    }
}

static void call_free(tcall_t *c)
{
    fv_grpc_transport_t *t = c->t;
    call_detach(c);
    if (c->waiting)
        retry_unlink(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fv_buf_dispose(&c->answer);
    fv_md_dispose(&c->md);
    fv_md_dispose(&c->head);
    fv_md_dispose(&c->trail);
    fv_free(c->frame);
    fv_free(c);
    maybe_finish_close(t);
}

static tcall_t *call_of(fv_grpc_transport_t *t, fv_rpc_req_t *req)
{
    for (tcall_t *c = t->calls; c; c = c->next)
        if (c->req == req)
            return c;
    return NULL;
}

/* ---- retries ---- */

static int start_attempt(tcall_t *c);

static void mark_bad(fv_grpc_transport_t *t, const char *host, int port)
{
    uint64_t now = uv_now(t->loop);
    size_t slot = 0;
    for (size_t i = 0; i < T_BAD_MAX; i++) {
        if (t->bad[i].port == port && strcmp(t->bad[i].host, host) == 0) {
            slot = i;
            break;
        }
        if (t->bad[i].until < t->bad[slot].until)
            slot = i;                   /* else the one that expires first goes */
    }
    snprintf(t->bad[slot].host, sizeof(t->bad[slot].host), "%s", host);
    t->bad[slot].port = port;
    t->bad[slot].until = now + T_BAD_MS;
}

static bool is_bad(fv_grpc_transport_t *t, const char *host, int port)
{
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < T_BAD_MAX; i++)
        if (t->bad[i].until > now && t->bad[i].port == port && strcmp(t->bad[i].host, host) == 0)
            return true;
    return false;
}

static void on_retry_due(uv_timer_t *timer);

static void arm_retry_timer(fv_grpc_transport_t *t)
{
    if (!t->retries) {
        uv_timer_stop(&t->retry_timer);
        return;
    }
    uint64_t first = t->retries->retry_at, now = uv_now(t->loop);
    for (tcall_t *c = t->retries->rnext; c; c = c->rnext)
        if (c->retry_at < first)
            first = c->retry_at;
    uv_timer_start(&t->retry_timer, on_retry_due, first > now ? first - now : 0, 0);
}

/* Whether c gets another attempt after this one failed: then its state is back to a fresh
 * call's and it waits on the retry list (true; the caller neither reports nor frees it).
 * unprocessed: the attempt certainly never reached a handler. */
static bool retry(tcall_t *c, bool unprocessed)
{
    fv_grpc_transport_t *t = c->t;
    if (t->closing || c->reported || c->canceled || c->attempts >= T_ATTEMPTS ||
        c->delivered || !(unprocessed || (c->flags & FV_RPC_IDEMPOTENT)))
        return false;
    uint64_t now = uv_now(t->loop), delay = 0;
    if (!(unprocessed && c->attempts == 1)) {
        uint64_t d = (uint64_t)T_BACKOFF_MS << (c->attempts - 1);
        delay = d / 2 + uv_hrtime() % (d / 2 + 1);   /* jitter: callers do not march */
    }
    if (now + delay + 1 >= c->deadline_at)
        return false;
    fv_buf_reset(&c->answer);
    answer_md_reset(c);
    c->grpc_status = -1;
    c->http_status = 0;
    c->message[0] = '\0';
    c->sent = 0;
    c->stream_id = 0;
    c->too_big = false;
    call_detach(c);
    c->queued = false;
    c->retry_at = now + delay;
    c->rnext = t->retries;
    t->retries = c;
    c->waiting = true;
    arm_retry_timer(t);
    return true;
}

static void on_retry_due(uv_timer_t *timer)
{
    fv_grpc_transport_t *t = timer->data;
    uint64_t now = uv_now(t->loop);
    tcall_t **p = &t->retries;
    while (*p) {
        tcall_t *c = *p;
        if (c->retry_at > now) {
            p = &c->rnext;
            continue;
        }
        *p = c->rnext;
        c->waiting = false;
        int rc = start_attempt(c);
        if (rc < 0) {
            report(c, FV_EUNAVAILABLE, NULL, 0, "cannot find an instance again");
            call_free(c);
        }
    }
    arm_retry_timer(t);
}

/* The stream ended: what it carried decides the outcome; true when c goes on to another
 * attempt instead. */
/* The gRPC status an answer without grpc-status stands for, by its HTTP status (the gRPC
 * spec's mapping, for what a proxy in between may answer). */
static int grpc_status_of_http(int http_status)
{
    switch (http_status) {
    case 400: return 13;            /* INTERNAL */
    case 401: return 16;            /* UNAUTHENTICATED */
    case 403: return 7;             /* PERMISSION_DENIED */
    case 404: return 12;            /* UNIMPLEMENTED */
    case 429: case 502: case 503: case 504: return 14;   /* UNAVAILABLE */
    default: return 2;              /* UNKNOWN */
    }
}

static bool call_end(tcall_t *c, uint32_t h2_error)
{
    if (c->grpc_status < 0 && c->http_status && c->http_status != 200) {
        c->grpc_status = grpc_status_of_http(c->http_status);
        snprintf(c->message, sizeof(c->message), "%s: HTTP status %d, not gRPC", c->module,
                 c->http_status);
    }
    if (c->too_big) {
        report(c, FV_ETOOBIG, NULL, 0, "the answer is over the size limit");
    } else if (c->malformed) {
        report(c, FV_EPROTO, NULL, 0, "a message of the answer is malformed");
    } else if (c->grpc_status == 0 && (c->flags & FV_RPC_SERVER_STREAM)) {
        if (c->answer.len)
            report(c, FV_EPROTO, NULL, 0, "the answer ends inside a message");
        else
            report(c, 0, NULL, 0, NULL);      /* the messages went as they came */
    } else if (c->grpc_status == 0) {
        fv_slice_t msg;
        size_t used;
        int rc = fv_rpc_frame_parse((const uint8_t *)c->answer.ptr, c->answer.len,
                                    c->t->max_msg, &msg, &used);
        if (rc == 0 && used == c->answer.len)
            report(c, 0, (const uint8_t *)c->answer.ptr, c->answer.len, NULL);
        else if (rc == FV_ETOOBIG)
            report(c, FV_ETOOBIG, NULL, 0, "the answer is over the size limit");
        else
            report(c, FV_EPROTO, NULL, 0, "the answer is not one message");
    } else if (c->grpc_status > 0) {
        if (c->grpc_status == 14 && retry(c, false))
            return true;                /* UNAVAILABLE: another instance may do */
        report(c, fv_code_of(c->grpc_status), NULL, 0, c->message);
    } else if (h2_error == NGHTTP2_NO_ERROR && c->http_status == 200) {
        /* the peer ended its answer cleanly but without trailers: a broken server */
        report(c, FV_EPROTO, NULL, 0, "the answer ended without a grpc-status");
    } else {
        /* a stream the peer refused never reached a handler (RFC 9113 8.7) */
        if (h2_error != NGHTTP2_CANCEL && retry(c, h2_error == NGHTTP2_REFUSED_STREAM))
            return true;
        char why[FV_ERROR_MSG_LEN];
        snprintf(why, sizeof(why), "%s: the stream ended without a status (HTTP/2 error %u)",
                 c->module, h2_error);
        report(c, h2_error == NGHTTP2_CANCEL ? FV_ECANCELED : FV_EUNAVAILABLE, NULL, 0, why);
    }
    return false;
}

static ssize_t read_frame(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *user)
{
    tcall_t *c = src->ptr;
    size_t n = c->len - c->sent;
    if (n > length)
        n = length;
    memcpy(buf, c->frame + c->sent, n);
    c->sent += n;
    if (c->sent == c->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void submit(tconn_t *conn, tcall_t *c)
{
    char path[2 * T_NAME_MAX + 4], authority[80], timeout[16];
    snprintf(path, sizeof(path), "/%s/%s", c->module, c->method);
    snprintf(authority, sizeof(authority), "%s:%d", conn->host, conn->port);
    uint64_t now = uv_now(c->t->loop);
    uint64_t left = c->deadline_at > now ? c->deadline_at - now : 1;
    snprintf(timeout, sizeof(timeout), "%um", (unsigned)(left < 99999999 ? left : 99999999));
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    const nghttp2_nv fixed[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", path),
        NV(":authority", authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("grpc-timeout", timeout),
    };
#undef NV
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), n = nfixed;
    nghttp2_nv *nv = fv_calloc(nfixed + c->md.count, sizeof(*nv));
    fv_buf_t enc;                       /* the -bin values in base64 */
    fv_buf_init(&enc, 0);
    size_t b64 = fv_md_wire_bytes(&c->md);
    int32_t id = -1;
    if (!b64 || fv_buf_reserve(&enc, b64) == 0) {
        memcpy(nv, fixed, sizeof(fixed));
        for (size_t i = 0; i < c->md.count; i++) {
            fv_slice_t name, value;
            fv_md_wire_at(&c->md, i, &enc, &name, &value);
            nv[n++] = (nghttp2_nv){(uint8_t *)name.ptr, (uint8_t *)value.ptr, name.len,
                                   value.len, NGHTTP2_NV_FLAG_NONE};
        }
        nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_frame};
        id = nghttp2_submit_request(conn->session, NULL, nv, n, &prd, c);
    }
    fv_free(nv);
    fv_buf_dispose(&enc);
    if (id < 0) {
        report(c, FV_ENOMEM, NULL, 0, "cannot start the call");
        call_free(c);
        return;
    }
    c->stream_id = id;
}

/* ---- nghttp2's callbacks ---- */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    tcall_t *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!c || c->reported)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        c->http_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            c->http_status = c->http_status * 10 + (value[i] - '0');   /* nghttp2 checked it */
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            st = value[i] >= '0' && value[i] <= '9' ? st * 10 + (value[i] - '0') : 2;
        c->grpc_status = valuelen ? st : 2;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t o = 0;
        for (size_t i = 0; i < valuelen && o + 1 < sizeof(c->message); i++) {
            if (value[i] == '%' && i + 2 < valuelen) {
                char hex[3] = {(char)value[i + 1], (char)value[i + 2], 0};
                c->message[o++] = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                c->message[o++] = (char)value[i];
            }
        }
        c->message[o] = '\0';
    } else {
        /* custom metadata: the first block is the headers unless it ends the stream (a
         * trailers-only answer), what comes after the message the trailers */
        bool head = frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
                    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        if (fv_md_add_wire(head ? &c->head : &c->trail, fv_slice((const char *)name, namelen),
                           fv_slice((const char *)value, valuelen)) < 0)
            fv_log_debug("rpc", "%s: answer metadata %.*s dropped", c->module, (int)namelen,
                         (const char *)name);
    }
    return 0;
}

/* Hands a stream's whole messages to the caller as they complete; the part of one not yet
 * whole stays. A message that does not parse, or a caller gone, ends the stream. */
static void stream_deliver(nghttp2_session *session, tcall_t *c)
{
    size_t off = 0;
    const uint8_t *p = (const uint8_t *)c->answer.ptr;
    while (!c->canceled && !c->reported) {
        fv_slice_t msg;
        size_t used;
        int rc = fv_rpc_frame_parse(p + off, c->answer.len - off, c->t->max_msg, &msg, &used);
        if (rc == FV_EAGAIN)
            break;
        if (rc < 0) {
            c->too_big = rc == FV_ETOOBIG;
            c->malformed = rc != FV_ETOOBIG;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
            break;
        }
        c->delivered++;
        /* < 0: the caller cancelled (its transport cancel reset the stream already) */
        if (fv_rpc_remote_message(c->req, p + off, used) < 0)
            break;
        off += used;
    }
    fv_buf_consume(&c->answer, off);
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *user)
{
    tcall_t *c = nghttp2_session_get_stream_user_data(session, id);
    if (!c || c->too_big || c->malformed || c->canceled)
        return 0;
    if (fv_buf_append(&c->answer, data, len) < 0) {
        c->too_big = true;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        return 0;
    }
    if (c->flags & FV_RPC_SERVER_STREAM)
        stream_deliver(session, c);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type == NGHTTP2_GOAWAY)
        ((tconn_t *)user)->goaway = true;
    else if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        ((tconn_t *)user)->ping_at = 0;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    tcall_t *c = nghttp2_session_get_stream_user_data(session, id);
    if (!c)
        return 0;
    if (call_end(c, code))
        return 0;                       /* waiting for its next attempt */
    call_free(c);
    return 0;
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    tconn_t *conn = h->data;
    fv_grpc_transport_t *t = conn->t;
    fv_free(conn);
    t->handles--;
    maybe_finish_close(t);
}

static void conn_unlink(tconn_t *conn)
{
    for (tconn_t **p = &conn->t->conns; *p; p = &(*p)->next)
        if (*p == conn) {
            *p = conn->next;
            return;
        }
}

/* Every call on conn fails with why (FV_EUNAVAILABLE, or FV_ECANCELED at close), and conn
 * goes. nghttp2_session_del calls none of our callbacks, so the calls are ended here. */
static void conn_end(tconn_t *conn, int code, const char *why)
{
    if (conn->closing)
        return;
    conn->closing = true;
    fv_grpc_transport_t *t = conn->t;
    conn_unlink(conn);
    tcall_t *c = t->calls;
    while (c) {
        tcall_t *next = c->next;
        /* a call still queued, or on a connection that never connected, never left */
        if (c->conn == conn &&
            !(code == FV_EUNAVAILABLE && retry(c, c->queued || !conn->connected))) {
            report(c, code, NULL, 0, why);
            call_free(c);
        }
        c = next;
    }
    conn->qhead = conn->qtail = NULL;
    if (conn->session)
        nghttp2_session_del(conn->session);
    conn->session = NULL;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void conn_fail(tconn_t *conn, const char *why)
{
    char msg[FV_ERROR_MSG_LEN];
    snprintf(msg, sizeof(msg), "%s:%d: %s", conn->host, conn->port, why);
    fv_log_info("rpc", "gRPC connection to %s", msg);
    mark_bad(conn->t, conn->host, conn->port);
    conn_end(conn, FV_EUNAVAILABLE, msg);
}

static void on_write(uv_write_t *req, int status)
{
    twrite_t *w = req->data;
    tconn_t *conn = w->req.handle->data;
    fv_free(w->buf);
    fv_free(w);
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(conn, uv_strerror(status));
}

static void conn_flush(tconn_t *conn)
{
    if (conn->closing || !conn->session)
        return;
    fv_buf_t out;
    fv_buf_init(&out, 0);
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(conn->session, &p);
        if (n < 0) {
            fv_buf_dispose(&out);
            conn_fail(conn, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (fv_buf_append(&out, p, (size_t)n) < 0) {
            fv_buf_dispose(&out);
            conn_fail(conn, "out of memory");
            return;
        }
    }
    if (out.len) {
        size_t len;
        twrite_t *w = fv_calloc(1, sizeof(*w));
        w->buf = fv_buf_steal(&out, &len);
        w->req.data = w;
        uv_buf_t b = uv_buf_init(w->buf, (unsigned)len);
        int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
        if (rc < 0) {
            fv_free(w->buf);
            fv_free(w);
            conn_fail(conn, uv_strerror(rc));
            return;
        }
    }
    fv_buf_dispose(&out);
    if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
        conn_end(conn, FV_EUNAVAILABLE, "connection ended");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(fv_malloc(T_READ_BYTES), T_READ_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tconn_t *conn = s->data;
    if (nread < 0) {
        fv_free(buf->base);
        conn_fail(conn, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        return;
    }
    conn->heard_at = uv_now(conn->t->loop);
    conn->receiving = true;
    ssize_t rc = nread ? nghttp2_session_mem_recv(conn->session, (const uint8_t *)buf->base,
                                                  (size_t)nread)
                       : 0;
    conn->receiving = false;
    fv_free(buf->base);
    if (rc < 0) {
        conn_fail(conn, nghttp2_strerror((int)rc));
        return;
    }
    conn_flush(conn);
}

static void on_connect(uv_connect_t *req, int status)
{
    tconn_t *conn = req->data;
    if (conn->closing)
        return;
    if (status < 0) {
        conn_fail(conn, uv_strerror(status));
        return;
    }
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        conn_fail(conn, "out of memory");
        return;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_session_client_new(&conn->session, cbs, conn);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0 || nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) < 0) {
        conn_fail(conn, "cannot start the HTTP/2 session");
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->connected = true;
    tcall_t *c = conn->qhead;
    conn->qhead = conn->qtail = NULL;
    while (c) {
        tcall_t *next = c->qnext;
        c->queued = false;
        submit(conn, c);
        c = next;
    }
    conn_flush(conn);
}

/* A peer that does not answer, without closing: a connect that hangs (a machine gone, its
 * SYNs dropped) is given up after connect_ms; a connection with calls under way that has been
 * silent for ping_idle_ms gets a PING, and fails if the PING is not answered in ping_ack_ms.
 * Either way its calls go elsewhere when they may (a connect that never finished carried no
 * call) instead of waiting out their deadlines. */
static void on_sweep(uv_timer_t *timer)
{
    fv_grpc_transport_t *t = timer->data;
    uint64_t now = uv_now(t->loop);
    tconn_t *next;
    bool needed = false;
    for (tconn_t *conn = t->conns; conn; conn = next) {
        next = conn->next;
        if (conn->closing)
            continue;
        needed |= !conn->connected || conn->active || conn->ping_at;
        if (!conn->connected) {
            if (now - conn->started_at >= t->connect_ms)
                conn_fail(conn, "the connection was not made in time");
        } else if (conn->ping_at) {
            if (now - conn->ping_at >= t->ping_ack_ms)
                conn_fail(conn, "no answer to a PING");
        } else if (conn->active && now - conn->heard_at >= t->ping_idle_ms &&
                   nghttp2_submit_ping(conn->session, NGHTTP2_FLAG_NONE, NULL) == 0) {
            conn->ping_at = now;
            conn_flush(conn);
        }
    }
    if (!needed)                        /* idle connections: nothing to watch until a call */
        uv_timer_stop(&t->sweep_timer);
}

static void sweep_start(fv_grpc_transport_t *t)
{
    if (!t->closing && !uv_is_active((uv_handle_t *)&t->sweep_timer))
        uv_timer_start(&t->sweep_timer, on_sweep, T_SWEEP_MS, T_SWEEP_MS);
}

/* The live connection to host:port, or a new one (connecting). NULL with *why on failure. */
static tconn_t *conn_get(fv_grpc_transport_t *t, const char *host, int port, const char **why)
{
    for (tconn_t *c = t->conns; c; c = c->next)
        if (!c->goaway && !c->closing && c->port == port && strcmp(c->host, host) == 0)
            return c;
    struct sockaddr_in sa;
    if (strlen(host) >= sizeof(((tconn_t *)0)->host) || uv_ip4_addr(host, port, &sa) < 0) {
        *why = "the instance's address is not an IPv4 address";
        return NULL;
    }
    tconn_t *conn = fv_calloc(1, sizeof(*conn));
    conn->t = t;
    conn->started_at = conn->heard_at = uv_now(t->loop);
    sweep_start(t);
    snprintf(conn->host, sizeof(conn->host), "%s", host);
    conn->port = port;
    uv_tcp_init(t->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->connect.data = conn;
    t->handles++;
    conn->next = t->conns;
    t->conns = conn;
    int rc = uv_tcp_connect(&conn->connect, &conn->tcp, (const struct sockaddr *)&sa, on_connect);
    if (rc < 0) {
        *why = uv_strerror(rc);
        conn_end(conn, FV_EUNAVAILABLE, *why);
        return NULL;
    }
    return conn;
}

/* ---- the rpc's side ---- */

/* The calls under way on our live connection to host:port (0 without one). */
static size_t conn_load(fv_grpc_transport_t *t, const char *host, int port)
{
    for (tconn_t *c = t->conns; c; c = c->next)
        if (!c->goaway && !c->closing && c->port == port && strcmp(c->host, host) == 0)
            return c->active;
    return 0;
}

/* Least outstanding: the instance with the fewest of our calls under way, among those that
 * did not fail lately and (for a retry) are not the one that just failed it; every instance
 * when that leaves none. Equals are taken in turn, so that idle instances share the calls. */
static const fv_grpc_addr_t *pick(fv_grpc_transport_t *t, tcall_t *c,
                                  const fv_grpc_addr_t *addrs, size_t n)
{
    size_t start = t->rr++ % n, best = n, best_load = SIZE_MAX;
    for (int strict = 1; strict >= 0 && best == n; strict--) {
        for (size_t k = 0; k < n; k++) {
            const fv_grpc_addr_t *a = &addrs[(start + k) % n];
            if (strict && (is_bad(t, a->host, a->port) ||
                           (a->port == c->last_port && strcmp(a->host, c->last_host) == 0)))
                continue;
            size_t load = conn_load(t, a->host, a->port);
            if (load < best_load) {
                best = (start + k) % n;
                best_load = load;
            }
        }
    }
    return &addrs[best];
}

static void on_resolved(int rc, const fv_grpc_addr_t *addrs, size_t n, void *data)
{
    tcall_t *c = data;
    fv_grpc_transport_t *t = c->t;
    c->resolving = false;
    t->resolving--;
    if (c->reported) {                /* cancelled, or the transport closed, meanwhile */
        call_free(c);
        return;
    }
    if (rc == 0 && n == 0)
        rc = FV_ENOENT;
    if (rc < 0) {
        char why[FV_ERROR_MSG_LEN];
        snprintf(why, sizeof(why), "no instance of %s: %s", c->module, fv_strerror(rc));
        report(c, FV_EUNAVAILABLE, NULL, 0, why);
        call_free(c);
        return;
    }
    const fv_grpc_addr_t *a = pick(t, c, addrs, n);
    snprintf(c->last_host, sizeof(c->last_host), "%s", a->host);
    c->last_port = a->port;
    const char *why = NULL;
    tconn_t *conn = conn_get(t, a->host, a->port, &why);
    if (!conn) {
        char msg[FV_ERROR_MSG_LEN];
        snprintf(msg, sizeof(msg), "%s at %s:%d: %s", c->module, a->host, a->port, why);
        report(c, FV_EUNAVAILABLE, NULL, 0, msg);
        call_free(c);
        return;
    }
    call_attach(c, conn);
    if (!conn->connected) {
        c->queued = true;
        c->qnext = NULL;
        if (conn->qtail)
            conn->qtail->qnext = c;
        else
            conn->qhead = c;
        conn->qtail = c;
        return;
    }
    submit(conn, c);
    conn_flush(conn);
}

/* One more attempt at c: find an instance (on_resolved goes on). 0, or < 0 from the resolver
 * (c is left to the caller). */
static int start_attempt(tcall_t *c)
{
    fv_grpc_transport_t *t = c->t;
    c->attempts++;
    c->resolving = true;
    t->resolving++;
    int rc = t->resolve(t->rdata, c->module, on_resolved, c);
    if (rc < 0) {
        c->resolving = false;
        t->resolving--;
    }
    return rc;
}

static int t_start(void *data, fv_rpc_req_t *req, const char *module, const char *method,
                   const uint8_t *frame, size_t len, uint32_t deadline_ms, unsigned flags)
{
    fv_grpc_transport_t *t = data;
    if (t->closing)
        return FV_EUNAVAILABLE;
    if (strlen(module) >= T_NAME_MAX || strlen(method) >= T_NAME_MAX)
        return FV_EINVAL;
    const fv_md_t *md = fv_rpc_req_metadata(req);
    tcall_t *c = fv_calloc(1, sizeof(*c));
    c->frame = fv_try_malloc(len ? len : 1);
    fv_md_init(&c->md, md->max_bytes);
    if (!c->frame || fv_md_copy(&c->md, md) < 0) {
        fv_md_dispose(&c->md);
        fv_free(c->frame);
        fv_free(c);
        return FV_ENOMEM;
    }
    memcpy(c->frame, frame, len);
    c->len = len;
    c->t = t;
    c->req = req;
    c->deadline_ms = deadline_ms;
    c->deadline_at = uv_now(t->loop) + (deadline_ms ? deadline_ms : 1);
    c->flags = flags;
    c->grpc_status = -1;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->method, sizeof(c->method), "%s", method);
    /* a stream's buffer holds the part of a message not yet whole plus one DATA frame (at
     * most nghttp2's default 16 KiB, the size we advertise) */
    fv_buf_init(&c->answer, t->max_msg + FV_RPC_FRAME_HEADER +
                                (flags & FV_RPC_SERVER_STREAM ? 16384 : 0));
    fv_md_init(&c->head, 0);
    fv_md_init(&c->trail, 0);
    c->next = t->calls;
    if (t->calls)
        t->calls->prev = c;
    t->calls = c;
    int rc = start_attempt(c);
    if (rc < 0) {
        c->reported = true;          /* the rpc reports the start failure itself */
        call_free(c);
        return rc;
    }
    return 0;
}

static void t_cancel(void *data, fv_rpc_req_t *req)
{
    fv_grpc_transport_t *t = data;
    tcall_t *c = call_of(t, req);
    if (!c || c->reported)
        return;
    c->canceled = true;
    if (c->waiting) {
        report(c, FV_ECANCELED, NULL, 0, "cancelled");
        call_free(c);
        return;
    }
    if (c->resolving) {
        report(c, FV_ECANCELED, NULL, 0, "cancelled");   /* freed when the resolver answers */
        return;
    }
    tconn_t *conn = c->conn;
    if (c->queued) {
        tcall_t **p = &conn->qhead;
        while (*p && *p != c)
            p = &(*p)->qnext;
        if (*p)
            *p = c->qnext;
        conn->qtail = NULL;
        for (tcall_t *q = conn->qhead; q; q = q->qnext)
            conn->qtail = q;
        report(c, FV_ECANCELED, NULL, 0, "cancelled");
        call_free(c);
        return;
    }
    if (conn && conn->session && c->stream_id > 0) {
        /* the stream's close callback reports and frees */
        nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, c->stream_id,
                                  NGHTTP2_CANCEL);
        if (!conn->receiving)           /* else on_read sends it when nghttp2 returns */
            conn_flush(conn);
    }
}

static const fv_rpc_transport_t grpc_transport = {.start = t_start, .cancel = t_cancel};

static void on_timer_closed(uv_handle_t *h)
{
    fv_grpc_transport_t *t = h->data;
    t->handles--;
    maybe_finish_close(t);
}

int fv_grpc_transport_new(uv_loop_t *loop, fv_rpc_t *rpc, fv_grpc_resolve_fn resolve,
                          void *rdata, size_t max_message_bytes, fv_grpc_transport_t **out)
{
    if (!loop || !rpc || !resolve || !out)
        return FV_EINVAL;
    fv_grpc_transport_t *t = fv_calloc(1, sizeof(*t));
    t->loop = loop;
    t->rpc = rpc;
    t->resolve = resolve;
    t->rdata = rdata;
    t->max_msg = max_message_bytes ? max_message_bytes : FV_RPC_DEFAULT_MAX_MESSAGE;
    uv_timer_init(loop, &t->retry_timer);
    t->retry_timer.data = t;
    uv_timer_init(loop, &t->sweep_timer);
    t->sweep_timer.data = t;
    t->handles += 2;
    t->connect_ms = T_CONNECT_MS;
    t->ping_idle_ms = T_PING_IDLE_MS;
    t->ping_ack_ms = T_PING_ACK_MS;
    fv_rpc_set_remote(rpc, &grpc_transport, t);
    *out = t;
    return 0;
}

void fv_grpc_transport_close(fv_grpc_transport_t *t, void (*cb)(void *data), void *data)
{
    if (!t || t->closing)
        return;
    t->closing = true;
    t->closed_cb = cb;
    t->closed_data = data;
    fv_rpc_set_remote(t->rpc, NULL, NULL);
    while (t->retries) {
        tcall_t *c = t->retries;
        report(c, FV_ECANCELED, NULL, 0, "shutting down");
        call_free(c);
    }
    uv_close((uv_handle_t *)&t->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&t->sweep_timer, on_timer_closed);
    while (t->conns)
        conn_end(t->conns, FV_ECANCELED, "shutting down");
    /* what is left waits for its resolver: told now, freed when the resolver answers */
    for (tcall_t *c = t->calls; c; c = c->next)
        report(c, FV_ECANCELED, NULL, 0, "shutting down");
    maybe_finish_close(t);
}

void fv_grpc_transport_set_timeouts(fv_grpc_transport_t *t, uint32_t connect_ms,
                                    uint32_t ping_idle_ms, uint32_t ping_ack_ms)
{
    t->connect_ms = connect_ms ? connect_ms : T_CONNECT_MS;
    t->ping_idle_ms = ping_idle_ms ? ping_idle_ms : T_PING_IDLE_MS;
    t->ping_ack_ms = ping_ack_ms ? ping_ack_ms : T_PING_ACK_MS;
}
