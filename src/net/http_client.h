/* http_client.h - a non-blocking HTTP/1.1 client with a keep-alive connection pool.
 *
 * One client keeps up to max_idle_per_host idle connections per host:port and reuses them.
 * Each request is one-shot: its callback runs exactly once, on the loop, never inside
 * fv_http_client_request(), also on error, timeout or when the client is freed (status < 0).
 * A request sent on a reused connection that turns out to be closed by the peer is retried
 * once on a fresh connection when it is idempotent (GET, HEAD, PUT, DELETE). */
#ifndef FV_NET_HTTP_CLIENT_H
#define FV_NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/slice.h"

typedef struct fv_http_client fv_http_client_t;
typedef struct fv_http_call fv_http_call_t;   /* one request in flight (streaming) */
struct fv_http_response;

typedef struct fv_http_client_opts {
    uint32_t connect_timeout_ms;   /* default 2000 */
    uint32_t request_timeout_ms;   /* whole exchange; default 10000; per request overrides */
    size_t max_idle_per_host;      /* default 16 */
    size_t max_response_bytes;     /* headers + body ceiling; default 16 MiB */
    uint32_t idle_timeout_ms;      /* pooled connection lifetime when unused; default 30000 */
    size_t max_pipeline;           /* bodyless GET/HEAD requests to one host made in the same
                                    * loop turn share a connection, up to this many, and leave
                                    * in one write (HTTP/1.1 pipelining: one slow answer delays
                                    * those behind it); default 1 (off) */
} fv_http_client_opts_t;

void fv_http_client_opts_default(fv_http_client_opts_t *o);

typedef struct fv_http_header {
    const char *name;
    const char *value;
} fv_http_header_t;

typedef struct fv_http_client_req {
    const char *method;              /* "GET" */
    const char *host;                /* "127.0.0.1" (IPv4/IPv6 literal or name) */
    int port;
    const char *target;              /* "/v1/catalog/services?index=3" */
    const fv_http_header_t *headers; /* extra headers; Host and Content-Length are added */
    size_t header_count;
    const char *raw_headers;         /* more, already as "Name: value\r\n" lines (a proxy
                                      * builds them once); copied at the call, not checked */
    size_t raw_headers_len;
    const void *body;                /* copied at the call */
    size_t body_len;
    uint32_t timeout_ms;             /* 0 = the client's request_timeout_ms */

    /* ---- streaming (see below); all optional ---- */
    bool body_stream;                /* the body comes by fv_http_call_write() (body must be
                                      * empty); never retried once a byte of it has gone */
    int64_t body_length;             /* with body_stream: Content-Length, or -1 for chunked */
    /* The response head arrived (resp->body empty): return 1 to have the body handed to
     * on_body piece by piece, 0 to get it whole in cb as usual. */
    int (*on_head)(const struct fv_http_response *resp, void *data);
    void (*on_body)(const char *piece, size_t len, void *data);
    fv_http_call_t **call;           /* set at the call: the handle, valid until cb runs */
} fv_http_client_req_t;

/* A response, valid only during the callback. */
typedef struct fv_http_response {
    int status;
    const fv_http_header_t *headers; /* header_count entries, NUL-terminated strings */
    size_t header_count;
    fv_slice_t body;                 /* de-chunked */
} fv_http_response_t;

/* rc is 0 with resp set, or a negative code with resp NULL (FV_ETIMEDOUT, FV_ECONNREFUSED,
 * FV_EPROTO for a malformed response, FV_ETOOBIG, FV_ECANCELED when the client was freed). */
typedef void (*fv_http_client_cb)(int rc, const fv_http_response_t *resp, void *data);

FV_MUST_USE int fv_http_client_new(uv_loop_t *loop, const fv_http_client_opts_t *opts,
                                   fv_http_client_t **out);

/* Cancels every request in flight (their callbacks run with FV_ECANCELED, from the loop) and
 * closes every connection; the memory goes once libuv is done. NULL-safe. */
void fv_http_client_free(fv_http_client_t *c);

/* 0: cb will run once, later. <0: cb will never run (bad arguments); nothing to undo. */
FV_MUST_USE int fv_http_client_request(fv_http_client_t *c, const fv_http_client_req_t *r,
                                       fv_http_client_cb cb, void *data);

/* ---- streaming ----
 * A request with body_stream set sends its head at once (Content-Length: body_length, or
 * Transfer-Encoding: chunked) and its body as the caller writes it: fv_http_call_write() copies
 * a piece, fv_http_call_end() ends the body. While fv_http_call_full() (more than 64 KiB queued
 * and not yet taken by the kernel), stop writing until on_drain runs. An answer that comes
 * before the body is whole ends the call as usual (the connection is then not reused), and
 * the handle is gone with cb.
 * A response that on_head chose to stream comes through on_body; fv_http_call_pause() stops
 * reading the connection (what the last read brought is still delivered, at most 16 KiB) and
 * fv_http_call_resume() goes on. While a body streams either way, timeout_ms bounds the time
 * without progress instead of the whole exchange; a paused response has no deadline.
 * fv_http_call_cancel() ends the call: cb runs with FV_ECANCELED (from the loop) and the
 * connection is closed. None of these may be called after cb ran. */
FV_MUST_USE int fv_http_call_write(fv_http_call_t *call, const void *data, size_t len);
FV_MUST_USE int fv_http_call_end(fv_http_call_t *call);
bool fv_http_call_full(const fv_http_call_t *call);
void fv_http_call_on_drain(fv_http_call_t *call, void (*cb)(void *data), void *data);
void fv_http_call_pause(fv_http_call_t *call);
void fv_http_call_resume(fv_http_call_t *call);
void fv_http_call_cancel(fv_http_call_t *call);

/* First header of that name in a response (case-insensitive), or NULL. */
const char *fv_http_response_header(const fv_http_response_t *resp, const char *name);

#endif
