/* http_client.c - a non-blocking HTTP/1.1 client: a pool of idle keep-alive connections per
 * host:port, name lookup through uv_getaddrinfo (IP literals skip it), connect and request
 * timeouts, response parsing with llhttp (Content-Length, chunked, read-until-close), one retry
 * of an idempotent request whose reused connection turned out dead. No TLS, no redirects, no
 * request pipelining: one request per connection at a time. */
#include "net/http_client.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/http_internal.h"

#define CLIENT_RBUF_LEN 16384

typedef struct fv_http_call creq_t;
typedef struct cconn cconn_t;

/* The connections to one host:port waiting in the pool, most recently used first, so a
 * request finds one without looking at the others. */
typedef struct cpool {
    struct cpool *next;
    cconn_t *open;                 /* a connection whose batch is not written yet */
    cconn_t *idle;
    size_t idle_count;
    char key[];                    /* "host:port" */
} cpool_t;

typedef enum cconn_state {
    CCONN_CONNECTING,
    CCONN_ACTIVE,       /* a request is on it */
    CCONN_IDLE,         /* in the pool */
    CCONN_CLOSING,
} cconn_state_t;

struct cconn {
    uv_tcp_t tcp;
    uv_timer_t timer;              /* connect timeout, then idle lifetime in the pool */
    uv_connect_t connect;
    uv_write_t write;
    fv_http_client_t *client;
    cconn_t *prev;
    cconn_t *next;
    cpool_t *pool;                 /* its host:port */
    cconn_t *idle_prev;            /* in pool->idle while CCONN_IDLE */
    cconn_t *idle_next;
    /* pipelining: requests after c->req wait for their answers in order (pipe_next); those
     * made in one loop turn leave in one write at its end */
    fv_buf_t batch;
    bool batch_open;
    cconn_t *batch_next;           /* in client->batches while batch_open */
    size_t depth;                  /* requests on the connection */
    llhttp_t parser;
    creq_t *req;
    char *wbuf;                    /* bytes being written; owned until the write callback */
    size_t wlen;
    char *rbuf;
    cconn_state_t state;
    int handles_open;
    bool reused;
    bool no_reuse;                 /* requests pipelined on it moved away: closed after */
    bool got_bytes;
    size_t fed_used;               /* bytes the last whole answer took of the fed input */
    bool msg_done;
};

typedef struct hdr_off {
    size_t name;
    size_t value;
} hdr_off_t;

struct fv_http_call {
    fv_http_client_t *client;
    creq_t *prev;
    creq_t *next;
    uv_timer_t timer;              /* request timeout; also delivers deferred results */
    uv_getaddrinfo_t gai;
    cconn_t *conn;
    char *host;
    cpool_t *pool;
    int port;
    fv_buf_t out;                  /* the serialised request */
    fv_http_client_cb cb;
    void *data;
    int pending_rc;                /* a result waiting for the timer to deliver it */
    int status;
    fv_buf_t head;                 /* "name\0value\0..." of the response */
    hdr_off_t *hdrs;
    size_t hdr_count;
    size_t hdr_cap;
    int last_cb;
    fv_buf_t body;
    bool idempotent;
    bool is_head;
    bool retried;
    bool done;
    bool gai_pending;
    bool timer_closed;
    /* streaming */
    uint32_t timeout_ms;
    fv_buf_t bodyq;                /* request body bytes, framed, not yet given to the socket */
    bool body_stream;
    bool body_chunked;
    bool body_ended;               /* fv_http_call_end ran */
    bool body_flushed;             /* a body byte went to a socket: no retry */
    int (*on_head)(const fv_http_response_t *resp, void *data);
    void (*on_body)(const char *piece, size_t len, void *data);
    bool streaming_resp;           /* on_head chose pieces */
    bool paused;
    bool cancelled;
    void (*drain_cb)(void *data);
    void *drain_data;
    creq_t *pipe_next;             /* the next request on the same connection */
    bool pipelinable;              /* GET or HEAD without a body */
};

/* An answer larger than this (or unsized) takes the requests pipelined behind it off its
 * connection. */
#define PIPELINE_SMALL_ANSWER (64 * 1024)

/* A streamed request body above this, queued and not yet taken by the kernel, is "full". */
#define BODY_HIGH_WATER (64 * 1024)

struct fv_http_client {
    uv_loop_t *loop;
    fv_http_client_opts_t opts;
    cconn_t *conns;
    cpool_t *pools;
    creq_t *reqs;
    uv_check_t flush;              /* writes the batches at the end of each loop turn */
    cconn_t *batches;
    size_t live;                   /* connections and requests not yet freed */
    bool freeing;
};

static llhttp_settings_t settings;
static bool settings_ready;

static void conn_close(cconn_t *c);
static void resp_view(creq_t *r, fv_http_header_t *hdrs, fv_http_response_t *resp);
static void conn_flush(cconn_t *c);
static void conn_send(cconn_t *c, creq_t *r);
static void req_start(creq_t *r, bool may_reuse);
static void req_finish(creq_t *r, int rc, const fv_http_response_t *resp);

void fv_http_client_opts_default(fv_http_client_opts_t *o)
{
    o->connect_timeout_ms = 2000;
    o->request_timeout_ms = 10000;
    o->max_idle_per_host = 16;
    o->max_response_bytes = 16 * 1024 * 1024;
    o->idle_timeout_ms = 30000;
    o->max_pipeline = 1;
}

static void client_maybe_free(fv_http_client_t *c)
{
    if (!c->freeing || c->live != 0)
        return;
    while (c->pools) {
        cpool_t *p = c->pools;
        c->pools = p->next;
        fv_free(p);
    }
    fv_free(c);
}

static void on_flush_closed(uv_handle_t *h)
{
    fv_http_client_t *c = h->data;
    c->live--;
    client_maybe_free(c);
}

static cpool_t *pool_get(fv_http_client_t *c, const char *host, int port)
{
    /* "host:port" without printf: this runs for every request */
    char key[300];
    size_t hl = strnlen(host, sizeof(key) - 24);
    memcpy(key, host, hl);
    key[hl] = ':';
    key[hl + 1 + fv_fmt_u64(key + hl + 1, (uint64_t)(port > 0 ? port : 0))] = '\0';
    cpool_t *prev = NULL;
    for (cpool_t *p = c->pools; p; prev = p, p = p->next) {
        if (strcmp(p->key, key) != 0)
            continue;
        if (prev) {                /* the busiest hosts stay in front */
            prev->next = p->next;
            p->next = c->pools;
            c->pools = p;
        }
        return p;
    }
    size_t len = strlen(key);
    cpool_t *p = fv_calloc(1, sizeof(*p) + len + 1);
    memcpy(p->key, key, len + 1);
    p->next = c->pools;
    c->pools = p;
    return p;
}

static void idle_push(cconn_t *c)
{
    cpool_t *p = c->pool;
    c->idle_prev = NULL;
    c->idle_next = p->idle;
    if (p->idle)
        p->idle->idle_prev = c;
    p->idle = c;
    p->idle_count++;
}

static void idle_remove(cconn_t *c)
{
    cpool_t *p = c->pool;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        p->idle = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    p->idle_count--;
}

/* ---- requests ---- */

static void req_free_maybe(creq_t *r)
{
    if (!r->timer_closed || r->gai_pending)
        return;
    fv_http_client_t *c = r->client;
    fv_buf_dispose(&r->out);
    fv_buf_dispose(&r->bodyq);
    fv_buf_dispose(&r->head);
    fv_buf_dispose(&r->body);
    fv_free(r->hdrs);
    fv_free(r->host);
    fv_free(r);
    c->live--;
    client_maybe_free(c);
}

static void on_req_timer_closed(uv_handle_t *h)
{
    creq_t *r = h->data;
    r->timer_closed = true;
    req_free_maybe(r);
}

/* Runs the callback once, then lets the request go. */
static void req_finish(creq_t *r, int rc, const fv_http_response_t *resp)
{
    if (r->done)
        return;
    r->done = true;
    fv_http_client_t *c = r->client;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    uv_timer_stop(&r->timer);
    if (r->gai_pending)
        uv_cancel((uv_req_t *)&r->gai);
    r->cb(rc, rc == 0 ? resp : NULL, r->data);
    uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
}

/* Fails the request from the loop, never from inside the caller's call. */
static void req_fail_later(creq_t *r, int rc)
{
    r->pending_rc = rc;
    uv_timer_start(&r->timer, r->timer.timer_cb, 0, 0);
}

/* Takes r off its connection's queue (wherever it is in it). */
static void req_detach(creq_t *r)
{
    cconn_t *c = r->conn;
    if (!c)
        return;
    for (creq_t **p = &c->req; *p; p = &(*p)->pipe_next) {
        if (*p == r) {
            *p = r->pipe_next;
            c->depth--;
            break;
        }
    }
    r->conn = NULL;
    r->pipe_next = NULL;
}

/* Every request on c, in order, taken off it. */
static creq_t *conn_take_all(cconn_t *c)
{
    creq_t *list = c->req;
    for (creq_t *r = list; r; r = r->pipe_next)
        r->conn = NULL;
    c->req = NULL;
    c->depth = 0;
    return list;
}

/* A request whose connection went away before its answer began: tried again on a fresh
 * connection when that is safe, else failed with rc. */
static void req_retry_or_fail(creq_t *r, int rc, bool may_retry)
{
    r->pipe_next = NULL;
    if (may_retry && r->idempotent && !r->retried && !r->body_flushed &&
        !r->client->freeing) {
        r->retried = true;
        req_start(r, false);
        return;
    }
    req_finish(r, rc, NULL);
}

static void on_req_timer(uv_timer_t *t)
{
    creq_t *r = t->data;
    int rc = r->cancelled ? FV_ECANCELED : r->pending_rc ? r->pending_rc : FV_ETIMEDOUT;
    cconn_t *conn = r->conn;
    req_detach(r);
    creq_t *others = conn ? conn_take_all(conn) : NULL;
    if (conn)
        conn_close(conn);
    /* requests pipelined with r lose their connection with it */
    while (others) {
        creq_t *next = others->pipe_next;
        req_retry_or_fail(others, FV_ECONNRESET, true);
        others = next;
    }
    req_finish(r, rc, NULL);
}

/* A streaming body moved: its deadline starts again (none while paused). */
static void req_progress(creq_t *r)
{
    if (r->done || r->cancelled || r->paused)
        return;
    uv_timer_start(&r->timer, on_req_timer, r->timeout_ms, 0);
}

/* The requests behind r on c start over elsewhere; c is not reused after r's answer. */
static void unpipeline(cconn_t *c, creq_t *r)
{
    creq_t *rest = r->pipe_next;
    r->pipe_next = NULL;
    c->depth = 1;
    c->no_reuse = true;
    while (rest) {
        creq_t *next = rest->pipe_next;
        rest->pipe_next = NULL;
        rest->conn = NULL;
        rest->pipelinable = false;   /* once is enough: alone on a connection now */
        req_start(rest, true);
        rest = next;
    }
}

/* ---- response parsing ---- */

static int resp_append(creq_t *r, fv_buf_t *b, const char *at, size_t len)
{
    /* over the ceiling (FV_ETOOBIG) or out of memory (FV_ENOMEM): the caller hears which */
    int rc = fv_buf_append(b, at, len);
    if (rc < 0) {
        r->pending_rc = rc;
        return -1;
    }
    return 0;
}

static int on_resp_begin(llhttp_t *p)
{
    cconn_t *c = p->data;
    creq_t *r = c->req;
    fv_buf_reset(&r->head);
    fv_buf_reset(&r->body);
    r->hdr_count = 0;
    r->last_cb = 0;
    return 0;
}

static int on_resp_field(llhttp_t *p, const char *at, size_t len)
{
    cconn_t *c = p->data;
    creq_t *r = c->req;
    if (r->last_cb != 1) {
        if (r->last_cb == 2 && resp_append(r, &r->head, "", 1) < 0)
            return -1;
        /* a typical head in one allocation; under a tighter ceiling, appends grow it */
        if (r->hdr_count == 0 && r->head.cap == 0 && fv_buf_reserve(&r->head, 512) < 0)
            r->head.cap = 0;
        if (r->hdr_count == r->hdr_cap) {
            r->hdr_cap = r->hdr_cap ? r->hdr_cap * 2 : 16;
            r->hdrs = fv_realloc(r->hdrs, r->hdr_cap * sizeof(*r->hdrs));
        }
        r->hdrs[r->hdr_count].name = r->head.len;
        r->hdrs[r->hdr_count].value = (size_t)-1;
        r->hdr_count++;
        r->last_cb = 1;
    }
    return resp_append(r, &r->head, at, len);
}

static int on_resp_value(llhttp_t *p, const char *at, size_t len)
{
    cconn_t *c = p->data;
    creq_t *r = c->req;
    if (r->hdr_count == 0)
        return -1;
    if (r->last_cb != 2) {
        if (resp_append(r, &r->head, "", 1) < 0)
            return -1;
        r->hdrs[r->hdr_count - 1].value = r->head.len;
        r->last_cb = 2;
    }
    return resp_append(r, &r->head, at, len);
}

static int on_resp_headers_complete(llhttp_t *p)
{
    cconn_t *c = p->data;
    creq_t *r = c->req;
    if (resp_append(r, &r->head, "", 1) < 0)
        return -1;
    /* a name without a value gets an empty value at the final NUL */
    if (r->hdr_count && r->hdrs[r->hdr_count - 1].value == (size_t)-1)
        r->hdrs[r->hdr_count - 1].value = r->head.len - 1;
    /* llhttp takes any number as the status; one that is not three digits is no HTTP answer */
    if (p->status_code < 100 || p->status_code > 999) {
        r->pending_rc = FV_EPROTO;
        return -1;
    }
    r->status = p->status_code;
    /* a large or unsized answer would hold the requests pipelined behind it for as long as it
     * takes to pass (a slow client pausing it included): they go to other connections now,
     * and this one is closed once its answer is whole (the peer's answers to them, behind
     * it, are never read) */
    if (r->pipe_next && !r->is_head && p->status_code != 204 && p->status_code != 304 &&
        (!(p->flags & F_CONTENT_LENGTH) || p->content_length > PIPELINE_SMALL_ANSWER))
        unpipeline(c, r);
    if (r->on_head && !r->is_head && p->status_code >= 200) {
        fv_http_header_t stack_hdrs[32];
        fv_http_header_t *hdrs = r->hdr_count <= 32 ? stack_hdrs
                                                    : fv_malloc(r->hdr_count * sizeof(*hdrs));
        fv_http_response_t resp;
        resp_view(r, hdrs, &resp);
        r->streaming_resp = r->on_head(&resp, r->data) == 1;
        if (hdrs != stack_hdrs)
            fv_free(hdrs);
        if (r->cancelled)
            return -1;
        if (r->streaming_resp)
            return 0;
    }
    size_t max = r->client->opts.max_response_bytes;
    r->body.max = max > r->head.len ? max - r->head.len : 1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->body.max) {
        r->pending_rc = FV_ETOOBIG;
        return -1;
    }
    return r->is_head ? 1 : 0;
}

static void req_progress(creq_t *r);

static int on_resp_body(llhttp_t *p, const char *at, size_t len)
{
    cconn_t *c = p->data;
    creq_t *r = c->req;
    if (!r->streaming_resp)
        return resp_append(r, &r->body, at, len);
    if (r->cancelled)
        return -1;
    req_progress(r);
    r->on_body(at, len, r->data);
    return r->cancelled ? -1 : 0;
}

static int on_resp_complete(llhttp_t *p)
{
    cconn_t *c = p->data;
    if (p->status_code >= 100 && p->status_code < 200)
        return 0;                              /* an interim answer; the real one follows */
    c->msg_done = true;
    return HPE_PAUSED;
}

static void settings_setup(void)
{
    if (settings_ready)
        return;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_resp_begin;
    settings.on_header_field = on_resp_field;
    settings.on_header_value = on_resp_value;
    settings.on_headers_complete = on_resp_headers_complete;
    settings.on_body = on_resp_body;
    settings.on_message_complete = on_resp_complete;
    settings_ready = true;
}

/* Bytes from the peer into the parser of c's request. 0: more wanted; 1: a whole response and
 * every byte used; 2: a whole response with bytes left over (the connection is out of step);
 * <0: FV_EPROTO, FV_ETOOBIG. */
static int resp_feed(cconn_t *c, const char *data, size_t len)
{
    creq_t *r = c->req;
    r->pending_rc = 0;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_PAUSED && c->msg_done) {
        c->msg_done = false;
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        c->fed_used = used;
        return used == len ? 1 : 2;
    }
    if (e != HPE_OK)
        return r->pending_rc ? r->pending_rc : FV_EPROTO;
    return 0;
}

/* The peer closed after sending something: 2 when that ends a read-until-close response (the
 * connection is finished too), else FV_ECONNRESET (nothing pending) or FV_EPROTO. */
static int resp_eof(cconn_t *c)
{
    c->msg_done = false;
    c->req->pending_rc = 0;
    llhttp_errno_t e = llhttp_finish(&c->parser);
    if (c->msg_done) {
        c->msg_done = false;
        return 2;
    }
    return e == HPE_OK ? FV_ECONNRESET : FV_EPROTO;
}

/* The response as the callback sees it; hdrs has room for r->hdr_count entries. */
static void resp_view(creq_t *r, fv_http_header_t *hdrs, fv_http_response_t *resp)
{
    for (size_t i = 0; i < r->hdr_count; i++) {
        hdrs[i].name = r->head.ptr + r->hdrs[i].name;
        hdrs[i].value = r->head.ptr + r->hdrs[i].value;
    }
    *resp = (fv_http_response_t){
        .status = r->status,
        .headers = hdrs,
        .header_count = r->hdr_count,
        .body = fv_buf_slice(&r->body),
    };
}

/* Ready c (with r on it) for the next response. */
static void resp_start(cconn_t *c, creq_t *r)
{
    c->req = r;
    r->conn = c;
    c->got_bytes = false;
    c->msg_done = false;
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
}

/* ---- connections ---- */

static void conn_unlink(cconn_t *c)
{
    fv_http_client_t *cl = c->client;
    if (c->prev)
        c->prev->next = c->next;
    else if (cl->conns == c)
        cl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_conn_closed(uv_handle_t *h)
{
    cconn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    fv_http_client_t *cl = c->client;
    fv_free(c->wbuf);
    fv_free(c->rbuf);
    fv_buf_dispose(&c->batch);
    fv_free(c);
    cl->live--;
    client_maybe_free(cl);
}

static void conn_close(cconn_t *c)
{
    if (c->state == CCONN_CLOSING)
        return;
    if (c->state == CCONN_IDLE)
        idle_remove(c);
    c->state = CCONN_CLOSING;
    (void)conn_take_all(c);        /* callers dealt with them */
    if (c->batch_open) {
        fv_http_client_t *cl = c->client;
        for (cconn_t **p = &cl->batches; *p; p = &(*p)->batch_next)
            if (*p == c) {
                *p = c->batch_next;
                break;
            }
        if (c->pool->open == c)
            c->pool->open = NULL;
        c->batch_open = false;
    }
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

/* The connection failed under its request: retry once on a fresh connection when that is
 * safe (a reused connection the peer had closed, nothing received, idempotent method). */
static void conn_fail(cconn_t *c, int rc)
{
    bool first_may_retry = c->reused && !c->got_bytes;
    creq_t *r = conn_take_all(c);
    conn_close(c);
    /* the first request retries only when nothing of its answer came; the ones pipelined
     * behind it had no answer at all */
    for (bool first = true; r; first = false) {
        creq_t *next = r->pipe_next;
        req_retry_or_fail(r, rc, !first || first_may_retry);
        r = next;
    }
}

static void on_idle_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* Finishes r with the answer it holds (headers viewed in place: no copy of a header). */
static void req_answer(creq_t *r)
{
    fv_http_header_t stack_hdrs[32];
    fv_http_header_t *hdrs = r->hdr_count <= 32 ? stack_hdrs
                                                : fv_malloc(r->hdr_count * sizeof(*hdrs));
    fv_http_response_t resp;
    resp_view(r, hdrs, &resp);
    req_finish(r, 0, &resp);
    if (hdrs != stack_hdrs)
        fv_free(hdrs);
}

/* A whole response arrived: the connection goes back to the pool (when it may) before the
 * callback runs, so a request made from the callback can take it. */
static void conn_complete(cconn_t *c, bool reusable)
{
    creq_t *r = c->req;
    fv_http_client_t *cl = c->client;
    if (r->pipe_next) {
        /* more answers to come on c: it stays busy with the next request */
        bool go_on = llhttp_should_keep_alive(&c->parser) && !cl->freeing;
        creq_t *rest = NULL;
        req_detach(r);
        if (go_on) {
            creq_t *next = c->req;
            resp_start(c, next);
        } else {
            rest = conn_take_all(c);
            conn_close(c);
        }
        req_answer(r);
        while (rest) {
            creq_t *next = rest->pipe_next;
            req_retry_or_fail(rest, FV_ECONNRESET, true);
            rest = next;
        }
        return;
    }
    /* a write still queued (the peer answered before taking the whole request) holds c->write:
     * such a connection is not reused */
    bool keep = reusable && llhttp_should_keep_alive(&c->parser) && !cl->freeing && !c->wbuf &&
                !c->no_reuse &&
                (!r->body_stream || (r->body_ended && r->bodyq.len == 0)) && !r->paused &&
                c->pool->idle_count < cl->opts.max_idle_per_host;
    req_detach(r);
    if (keep) {
        c->state = CCONN_IDLE;
        idle_push(c);
        uv_timer_start(&c->timer, on_idle_timeout, cl->opts.idle_timeout_ms, 0);
    } else {
        conn_close(c);
    }
    req_answer(r);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cconn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, CLIENT_RBUF_LEN);
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cconn_t *c = s->data;
    if (c->state == CCONN_CLOSING)
        return;
    if (nread == 0)
        return;
    if (!c->req) {
        conn_close(c);                 /* the peer closed (or chatted on) an idle connection */
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && c->got_bytes) {
            int rc = resp_eof(c);
            if (rc > 0)
                conn_complete(c, false);   /* a read-until-close body ends the connection */
            else
                conn_fail(c, rc);
            return;
        }
        conn_fail(c, nread == UV_EOF ? FV_ECONNRESET : (int)nread);
        return;
    }
    const char *p = buf->base;
    size_t left = (size_t)nread;
    while (left > 0) {
        c->got_bytes = true;
        int rc = resp_feed(c, p, left);
        if (rc < 0) {
            conn_fail(c, rc);
            return;
        }
        if (rc == 0)
            return;
        size_t used = c->fed_used;
        bool pipelined = c->req->pipe_next != NULL;
        /* bytes after the last answer expected: out of step, not reused */
        conn_complete(c, rc == 1 || pipelined);
        if (rc == 1 || !pipelined || c->state != CCONN_ACTIVE || !c->req)
            return;
        p += used;
        left -= used;
    }
}

static void on_conn_write(uv_write_t *w, int status)
{
    cconn_t *c = w->data;
    fv_free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    if (c->state == CCONN_CLOSING)
        return;
    if (status < 0) {
        conn_fail(c, status);
        return;
    }
    creq_t *r = c->req;
    if (!r || !r->body_stream)
        return;
    req_progress(r);
    conn_flush(c);
    if (r->drain_cb && !fv_http_call_full(r)) {
        void (*cb)(void *) = r->drain_cb;
        r->drain_cb = NULL;
        cb(r->drain_data);
    }
}

/* Hands len bytes to the socket: what the kernel does not take at once is copied and queued
 * (one write at a time). 0 or a libuv error. */
static int conn_write(cconn_t *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    size_t sent = n > 0 ? (size_t)n : 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (sent == len)
        return 0;
    c->wlen = len - sent;
    c->wbuf = fv_malloc(c->wlen);
    memcpy(c->wbuf, data + sent, c->wlen);
    b = uv_buf_init(c->wbuf, (unsigned)c->wlen);
    c->write.data = c;
    int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_conn_write);
    if (rc < 0) {
        fv_free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = 0;
    }
    return rc;
}

/* The streamed body queued so far goes to the socket, unless a write is still under way (its
 * callback comes back here). */
static void conn_flush(cconn_t *c)
{
    creq_t *r = c->req;
    if (!r || c->state != CCONN_ACTIVE || c->wbuf || r->bodyq.len == 0)
        return;
    r->body_flushed = true;
    int rc = conn_write(c, r->bodyq.ptr, r->bodyq.len);
    fv_buf_reset(&r->bodyq);
    if (rc < 0)
        conn_fail(c, rc);
}

/* End of a loop turn: each connection's batch of pipelined requests leaves in one write. */
static void on_flush(uv_check_t *h)
{
    fv_http_client_t *cl = h->data;
    cconn_t *list = cl->batches;
    cl->batches = NULL;
    uv_check_stop(h);
    while (list) {
        cconn_t *c = list;
        list = c->batch_next;
        c->batch_next = NULL;
        if (!c->batch_open || c->state != CCONN_ACTIVE)
            continue;                  /* closed meanwhile */
        c->batch_open = false;
        if (c->pool->open == c)
            c->pool->open = NULL;
        int rc = conn_write(c, c->batch.ptr, c->batch.len);
        fv_buf_reset(&c->batch);
        if (rc < 0)
            conn_fail(c, rc);
    }
}

static void conn_send(cconn_t *c, creq_t *r)
{
    fv_http_client_t *cl = c->client;
    c->state = CCONN_ACTIVE;
    uv_timer_stop(&c->timer);
    resp_start(c, r);
    c->depth = 1;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read);
    if (rc != 0 && rc != UV_EALREADY) {
        conn_fail(c, rc);
        return;
    }
    cconn_t *open = c->pool->open;
    if (r->pipelinable && cl->opts.max_pipeline > 1 && !cl->freeing &&
        (!open || open->depth >= cl->opts.max_pipeline)) {
        /* the head of a batch: requests to this host made before the loop turn ends join it */
        fv_buf_reset(&c->batch);
        if (fv_buf_append(&c->batch, r->out.ptr, r->out.len) < 0) {
            conn_fail(c, FV_ENOMEM);
            return;
        }
        c->batch_open = true;
        c->batch_next = cl->batches;
        cl->batches = c;
        c->pool->open = c;
        uv_check_start(&cl->flush, on_flush);
        return;
    }
    /* most requests fit the socket buffer at once: no write request, no POLLOUT round trip
     * and no epoll_ctl for it; only what is left is copied and queued */
    rc = conn_write(c, r->out.ptr, r->out.len);
    if (rc < 0) {
        conn_fail(c, rc);
        return;
    }
    if (r->body_stream)
        conn_flush(c);
}

static void on_connect_timeout(uv_timer_t *t)
{
    cconn_t *c = t->data;
    conn_fail(c, FV_ETIMEDOUT);
}

static void on_connect(uv_connect_t *cr, int status)
{
    cconn_t *c = cr->data;
    if (c->state == CCONN_CLOSING)
        return;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        conn_fail(c, status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (!c->req) {
        conn_close(c);
        return;
    }
    conn_send(c, c->req);
}

static void conn_connect(creq_t *r, const struct sockaddr *addr)
{
    fv_http_client_t *cl = r->client;
    cconn_t *c = fv_calloc(1, sizeof(*c));
    c->client = cl;
    c->pool = r->pool;
    c->rbuf = fv_malloc(CLIENT_RBUF_LEN);
    c->state = CCONN_CONNECTING;
    uv_tcp_init(cl->loop, &c->tcp);
    uv_timer_init(cl->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->connect.data = c;
    c->handles_open = 2;
    cl->live++;
    c->next = cl->conns;
    if (cl->conns)
        cl->conns->prev = c;
    cl->conns = c;
    c->req = r;
    r->conn = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, addr, on_connect);
    if (rc < 0) {
        req_detach(r);
        conn_close(c);
        req_fail_later(r, rc);
        return;
    }
    uv_timer_start(&c->timer, on_connect_timeout, cl->opts.connect_timeout_ms, 0);
}

static void on_gai(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    creq_t *r = g->data;
    r->gai_pending = false;
    if (r->done) {
        uv_freeaddrinfo(res);
        req_free_maybe(r);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        req_finish(r, status == UV_EAI_CANCELED ? FV_ECANCELED : FV_EBACKEND, NULL);
        return;
    }
    conn_connect(r, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void req_start(creq_t *r, bool may_reuse)
{
    fv_http_client_t *cl = r->client;
    cconn_t *open = r->pool->open;
    if (r->pipelinable && open && open->depth < cl->opts.max_pipeline &&
        fv_buf_append(&open->batch, r->out.ptr, r->out.len) == 0) {
        /* another request to the same host in the same loop turn: behind the first, in the
         * same write */
        creq_t **tail = &open->req;
        while (*tail)
            tail = &(*tail)->pipe_next;
        *tail = r;
        r->conn = open;
        open->depth++;
        return;
    }
    if (may_reuse) {
        cconn_t *c = r->pool->idle;
        if (c) {
            idle_remove(c);
            c->reused = true;
            conn_send(c, r);
            return;
        }
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(r->host, r->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(r->host, r->port, (struct sockaddr_in6 *)&ss) == 0) {
        conn_connect(r, (const struct sockaddr *)&ss);
        return;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->gai.data = r;
    int rc = uv_getaddrinfo(cl->loop, &r->gai, on_gai, r->host, port, &hints);
    if (rc < 0) {
        req_fail_later(r, FV_EBACKEND);
        return;
    }
    r->gai_pending = true;
}

/* ---- public ---- */

int fv_http_client_new(uv_loop_t *loop, const fv_http_client_opts_t *opts,
                       fv_http_client_t **out)
{
    if (!loop || !out)
        return FV_EINVAL;
    settings_setup();
    fv_http_client_t *c = fv_calloc(1, sizeof(*c));
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    else
        fv_http_client_opts_default(&c->opts);
    uv_check_init(loop, &c->flush);
    c->flush.data = c;
    uv_unref((uv_handle_t *)&c->flush);
    c->live++;
    *out = c;
    return 0;
}

void fv_http_client_free(fv_http_client_t *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    for (creq_t *r = c->reqs; r; r = r->next) {
        req_detach(r);
        if (r->gai_pending)
            uv_cancel((uv_req_t *)&r->gai);
        req_fail_later(r, FV_ECANCELED);
    }
    while (c->conns)
        conn_close(c->conns);
    uv_close((uv_handle_t *)&c->flush, on_flush_closed);
}

static bool token_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == 127)
            return false;
    return true;
}

static bool value_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int fv_http_client_request(fv_http_client_t *c, const fv_http_client_req_t *q,
                           fv_http_client_cb cb, void *data)
{
    if (!c || !q || !cb || c->freeing || !token_ok(q->method) || !q->host || !*q->host ||
        q->port < 1 || q->port > 65535 || !q->target || q->target[0] == '\0' ||
        strpbrk(q->target, " \r\n") || strpbrk(q->host, " \r\n/") ||
        (q->body_len && !q->body) || (q->raw_headers_len && !q->raw_headers) ||
        (q->body_stream && q->body_len) || (q->on_head && !q->on_body))
        return FV_EINVAL;
    for (size_t i = 0; i < q->header_count; i++)
        if (!token_ok(q->headers[i].name) || !value_ok(q->headers[i].value))
            return FV_EINVAL;
    creq_t *r = fv_calloc(1, sizeof(*r));
    r->client = c;
    r->cb = cb;
    r->data = data;
    r->host = fv_strdup(q->host);
    r->port = q->port;
    fv_buf_init(&r->out, 0);
    fv_buf_init(&r->head, c->opts.max_response_bytes);
    fv_buf_init(&r->body, c->opts.max_response_bytes);
    /* the head in one allocation, built without printf: a proxy sends one per request */
    size_t method_len = strlen(q->method), target_len = strlen(q->target);
    size_t host_len = strlen(q->host), need = method_len + target_len + host_len + 64;
    for (size_t i = 0; i < q->header_count; i++)
        need += strlen(q->headers[i].name) + strlen(q->headers[i].value) + 4;
    need += q->raw_headers_len + 48 + q->body_len;
    bool v6 = strchr(q->host, ':') != NULL;
    char port[24];
    size_t port_len = fv_fmt_u64(port, (uint64_t)(q->port > 0 ? q->port : 0));
    int rc = fv_buf_reserve(&r->out, need);
    if (rc == 0 && (rc = fv_buf_append(&r->out, q->method, method_len)) == 0 &&
        (rc = fv_buf_append(&r->out, " ", 1)) == 0 &&
        (rc = fv_buf_append(&r->out, q->target, target_len)) == 0 &&
        (rc = fv_buf_append_str(&r->out, v6 ? " HTTP/1.1\r\nHost: ["
                                             : " HTTP/1.1\r\nHost: ")) == 0 &&
        (rc = fv_buf_append(&r->out, q->host, host_len)) == 0 &&
        (rc = fv_buf_append_str(&r->out, v6 ? "]:" : ":")) == 0 &&
        (rc = fv_buf_append(&r->out, port, port_len)) == 0)
        rc = fv_buf_append(&r->out, "\r\n", 2);
    for (size_t i = 0; rc == 0 && i < q->header_count; i++)
        if ((rc = fv_buf_append_str(&r->out, q->headers[i].name)) == 0 &&
            (rc = fv_buf_append(&r->out, ": ", 2)) == 0 &&
            (rc = fv_buf_append_str(&r->out, q->headers[i].value)) == 0)
            rc = fv_buf_append(&r->out, "\r\n", 2);
    if (rc == 0 && q->raw_headers_len)
        rc = fv_buf_append(&r->out, q->raw_headers, q->raw_headers_len);
    bool has_body = q->body_len > 0 || strcmp(q->method, "POST") == 0 ||
                    strcmp(q->method, "PUT") == 0 || strcmp(q->method, "PATCH") == 0;
    if (rc == 0 && q->body_stream && q->body_length >= 0)
        rc = fv_buf_printf(&r->out, "Content-Length: %lld\r\n", (long long)q->body_length);
    else if (rc == 0 && q->body_stream)
        rc = fv_buf_append_str(&r->out, "Transfer-Encoding: chunked\r\n");
    else if (rc == 0 && has_body && (rc = fv_buf_append_str(&r->out, "Content-Length: ")) == 0 &&
             (rc = fv_buf_append_u64(&r->out, q->body_len)) == 0)
        rc = fv_buf_append(&r->out, "\r\n", 2);
    if (rc == 0)
        rc = fv_buf_append(&r->out, "\r\n", 2);
    if (rc == 0 && q->body_len)
        rc = fv_buf_append(&r->out, q->body, q->body_len);
    if (rc < 0) {
        fv_buf_dispose(&r->out);
        fv_buf_dispose(&r->head);
        fv_buf_dispose(&r->body);
        fv_free(r->host);
        fv_free(r);
        return rc;
    }
    r->pool = pool_get(c, q->host, q->port);
    fv_buf_init(&r->bodyq, 0);
    r->body_stream = q->body_stream;
    r->body_chunked = q->body_stream && q->body_length < 0;
    r->on_head = q->on_head;
    r->on_body = q->on_body;
    r->timeout_ms = q->timeout_ms ? q->timeout_ms : c->opts.request_timeout_ms;
    if (q->call)
        *q->call = r;
    r->idempotent = !strcmp(q->method, "GET") || !strcmp(q->method, "HEAD") ||
                    !strcmp(q->method, "PUT") || !strcmp(q->method, "DELETE");
    r->is_head = strcmp(q->method, "HEAD") == 0;
    r->pipelinable = (r->is_head || strcmp(q->method, "GET") == 0) && !q->body_stream &&
                     q->body_len == 0;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    c->live++;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    uv_timer_start(&r->timer, on_req_timer, r->timeout_ms, 0);
    req_start(r, true);
    return 0;
}

/* ---- streaming calls ---- */

int fv_http_call_write(fv_http_call_t *r, const void *data, size_t len)
{
    if (!r || r->done || r->cancelled)
        return FV_ECANCELED;
    if (!r->body_stream || r->body_ended)
        return FV_EINVAL;
    if (len == 0)
        return 0;
    int rc = 0;
    if (r->body_chunked)
        rc = fv_buf_printf(&r->bodyq, "%zx\r\n", len);
    if (rc == 0)
        rc = fv_buf_append(&r->bodyq, data, len);
    if (rc == 0 && r->body_chunked)
        rc = fv_buf_append(&r->bodyq, "\r\n", 2);
    if (rc < 0)
        return rc;
    if (r->conn)
        conn_flush(r->conn);
    return 0;
}

int fv_http_call_end(fv_http_call_t *r)
{
    if (!r || r->done || r->cancelled)
        return FV_ECANCELED;
    if (!r->body_stream || r->body_ended)
        return FV_EINVAL;
    r->body_ended = true;
    if (r->body_chunked) {
        int rc = fv_buf_append(&r->bodyq, "0\r\n\r\n", 5);
        if (rc < 0)
            return rc;
    }
    if (r->conn)
        conn_flush(r->conn);
    return 0;
}

bool fv_http_call_full(const fv_http_call_t *r)
{
    if (!r || r->done)
        return false;
    size_t queued = r->bodyq.len + (r->conn ? r->conn->wlen : 0);
    return queued > BODY_HIGH_WATER;
}

void fv_http_call_on_drain(fv_http_call_t *r, void (*cb)(void *data), void *data)
{
    if (!r || r->done)
        return;
    r->drain_cb = cb;
    r->drain_data = data;
}

void fv_http_call_pause(fv_http_call_t *r)
{
    if (!r || r->done || r->paused)
        return;
    r->paused = true;
    uv_timer_stop(&r->timer);
    if (r->conn && r->conn->state == CCONN_ACTIVE)
        uv_read_stop((uv_stream_t *)&r->conn->tcp);
}

void fv_http_call_resume(fv_http_call_t *r)
{
    if (!r || r->done || !r->paused)
        return;
    r->paused = false;
    req_progress(r);
    if (r->conn && r->conn->state == CCONN_ACTIVE &&
        uv_read_start((uv_stream_t *)&r->conn->tcp, on_conn_alloc, on_conn_read) < 0)
        req_fail_later(r, FV_ECONNRESET);
}

void fv_http_call_cancel(fv_http_call_t *r)
{
    if (!r || r->done || r->cancelled)
        return;
    r->cancelled = true;
    r->pending_rc = FV_ECANCELED;
    uv_timer_start(&r->timer, on_req_timer, 0, 0);
}

const char *fv_http_response_header(const fv_http_response_t *resp, const char *name)
{
    if (!resp)
        return NULL;
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

/* ---- a response parser without a socket (fuzzing, tests) ---- */

struct fv__http_resp_parser {
    fv_http_client_t client;       /* only opts is used */
    cconn_t conn;                  /* only the parser fields are used: no handles */
    creq_t req;
    fv_http_header_t *view;
};

fv__http_resp_parser_t *fv__http_resp_parser_new(size_t max_response_bytes, bool is_head)
{
    settings_setup();
    fv__http_resp_parser_t *p = fv_calloc(1, sizeof(*p));
    fv_http_client_opts_default(&p->client.opts);
    p->client.opts.max_response_bytes = max_response_bytes;
    p->conn.client = &p->client;
    p->req.client = &p->client;
    p->req.is_head = is_head;
    fv_buf_init(&p->req.head, max_response_bytes);
    fv_buf_init(&p->req.body, max_response_bytes);
    resp_start(&p->conn, &p->req);
    return p;
}

static int parser_result(fv__http_resp_parser_t *p, int rc, fv_http_response_t *resp)
{
    if (rc <= 0)
        return rc;
    creq_t *r = &p->req;
    fv_free(p->view);
    p->view = fv_malloc((r->hdr_count ? r->hdr_count : 1) * sizeof(*p->view));
    resp_view(r, p->view, resp);
    /* the next response starts afresh, as on a reused connection */
    resp_start(&p->conn, r);
    p->conn.got_bytes = true;
    return rc;
}

int fv__http_resp_parser_feed(fv__http_resp_parser_t *p, const char *data, size_t len,
                              fv_http_response_t *resp)
{
    p->conn.got_bytes = true;
    return parser_result(p, resp_feed(&p->conn, data, len), resp);
}

int fv__http_resp_parser_eof(fv__http_resp_parser_t *p, fv_http_response_t *resp)
{
    return parser_result(p, resp_eof(&p->conn), resp);
}

void fv__http_resp_parser_free(fv__http_resp_parser_t *p)
{
    if (!p)
        return;
    fv_buf_dispose(&p->req.head);
    fv_buf_dispose(&p->req.body);
    fv_free(p->req.hdrs);
    fv_free(p->view);
    fv_free(p);
}
