/* http_server.h - an HTTP/1.1 server on libuv + llhttp.
 *
 * A server owns a listening socket and its connections. Each parsed request becomes an
 * fv_http_req_t handed to the server's handler. The handler answers at once or later (a proxy,
 * a blocking query): the request stays valid until it is answered with one of the
 * fv_http_reply*() calls, or until its abort callback runs when the connection dies first.
 *
 * Keep-alive and pipelining: a connection reads ahead, but requests are handled one at a time
 * in order, so responses always leave in request order. Chunked request bodies are decoded.
 *
 * Limits (fv_http_limits_t): headers over max_header_bytes get 431, bodies over max_body_bytes
 * get 413 (a chunk is refused from its size line), a client that sends its headers slower
 * than header_timeout_ms gets 408, an idle keep-alive connection is closed after
 * idle_timeout_ms. Malformed requests get 400 (HTTP/0.9, no Host on HTTP/1.1, two Hosts, a
 * header name that is not a token), a version other than 1.x gets 505. A connection with more
 * than max_output_bytes of answers queued stops reading until they drain. Errors always carry
 * the JSON body {"error":{"code","message"}}.
 *
 * Other protocols share the port: a handler may accept an upgrade (fv_http_upgrade), and an
 * HTTP/2 preface goes to the h2 driver (fv_http_server_set_h2); both run on the connection's
 * socket (net/sock.h) under another driver.
 *
 * Threading: everything runs on the loop thread the server was created on. */
#ifndef FV_NET_HTTP_SERVER_H
#define FV_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/shared.h"
#include "core/slice.h"
#include "net/sock.h"

typedef struct fv_http_server fv_http_server_t;
typedef struct fv_http_req fv_http_req_t;

typedef struct fv_http_limits {
    size_t max_header_bytes;     /* request line + headers; default 16 KiB */
    size_t max_body_bytes;       /* default 1 MiB */
    uint32_t header_timeout_ms;  /* whole head must arrive within this; default 10 s */
    uint32_t body_timeout_ms;    /* whole body must arrive within this; default 30 s */
    uint32_t idle_timeout_ms;    /* keep-alive idle; default 60 s */
    uint32_t max_connections;    /* accepted beyond this are closed at once; default 10000 */
    size_t max_output_bytes;     /* response bytes queued (written but not yet taken by the
                                  * kernel) on one connection above which it stops reading
                                  * and parsing requests until the queue drains; 1 MiB */
    size_t max_buffered_body_bytes; /* request body bytes buffered by the whole process (all
                                     * servers, all connections); a body that would go past it
                                     * gets 503 and its connection ends; default 256 MiB */
    uint32_t max_connections_per_client; /* open connections from one IP address; more are
                                          * closed at once; 0 (default) = no such limit */
} fv_http_limits_t;

/* Fills the defaults listed above. */
void fv_http_limits_default(fv_http_limits_t *lim);

/* Called on the loop thread for every complete request. */
typedef void (*fv_http_handler_cb)(fv_http_req_t *req, void *data);

/* Called after a response has been queued (status is the one sent), for metrics and access
 * logs. route is the router pattern that matched, or NULL. */
typedef void (*fv_http_observer_cb)(const fv_http_req_t *req, int status, uint64_t duration_ns,
                                    void *data);

/* Called when the server has closed everything (fv_http_server_close). */
typedef void (*fv_http_server_closed_cb)(fv_http_server_t *s, void *data);

/* Creates a server (not yet listening). lim may be NULL for defaults. The handler and data are
 * borrowed and must outlive the server. Returns 0 and *out, or a negative code. */
FV_MUST_USE int fv_http_server_new(uv_loop_t *loop, const fv_http_limits_t *lim,
                                   fv_http_handler_cb handler, void *data,
                                   fv_http_server_t **out);

void fv_http_server_set_observer(fv_http_server_t *s, fv_http_observer_cb cb, void *data);

/* Binds and listens. Port 0 picks a free port (see fv_http_server_port). On failure err says
 * what and where ("127.0.0.1:8080: address already in use"). */
FV_MUST_USE int fv_http_server_listen(fv_http_server_t *s, const char *host, int port,
                                      fv_error_t *err);

/* The bound port, after a successful listen. */
int fv_http_server_port(const fv_http_server_t *s);

/* Per-request body policy: when a request announces a body, cb(req, data, policy) may change
 * the policy, which arrives filled with the server's: how many bytes this request may send
 * (its route's limit; 0 allows none) and whether its handler reads the body as it arrives
 * (see "streaming a request body") instead of getting it whole. The request head is parsed.
 * A Content-Length over the limit is refused with 413 before a body byte is read, a chunked
 * body when its chunk sizes pass it. */
typedef struct fv_http_body_policy {
    size_t max_bytes;
    bool stream;
} fv_http_body_policy_t;
typedef void (*fv_http_body_policy_cb)(const fv_http_req_t *req, void *data,
                                       fv_http_body_policy_t *policy);
void fv_http_server_set_body_policy(fv_http_server_t *s, fv_http_body_policy_cb cb, void *data);

/* ---- other protocols on the same port ----
 *
 * A connection whose first bytes are the HTTP/2 client preface goes to the driver the factory
 * gives (it is offered every byte, the preface included). The factory returns 0 with *driver
 * and *state (then owned by the socket: state is freed by driver->on_free), or <0 to refuse;
 * without a factory, or on refusal, the connection is closed. */
typedef int (*fv_http_h2_factory_cb)(fv_sock_t *s, void *data, const fv_sock_driver_t **driver,
                                     void **state);
void fv_http_server_set_h2(fv_http_server_t *s, fv_http_h2_factory_cb factory, void *data);

/* Connections now run by another driver (upgraded or h2). They count in
 * fv_http_server_connections(), get on_drain from fv_http_server_stop_accepting() and are
 * closed by fv_http_server_close(). */
size_t fv_http_server_upgraded(const fv_http_server_t *s);

/* Graceful drain, step one: stop accepting, close idle keep-alive connections, and close each
 * busy one after its current response. fv_http_server_busy() reaches 0 when drained. */
void fv_http_server_stop_accepting(fv_http_server_t *s);

/* Open connections. */
size_t fv_http_server_connections(const fv_http_server_t *s);
/* Requests received and not yet answered. */
size_t fv_http_server_busy(const fv_http_server_t *s);
/* Response bytes queued on all connections and not yet taken by the kernel, now and at the
 * most since the server was created (for tests and metrics). */
size_t fv_http_server_output_bytes(const fv_http_server_t *s);
size_t fv_http_server_output_bytes_peak(const fv_http_server_t *s);
/* Connections holding a read buffer now: only those with unconsumed input do; idle
 * keep-alive connections hold none (for tests and metrics). */
size_t fv_http_server_read_buffers(const fv_http_server_t *s);

/* Connections turned away since the server was created, for /metrics. */
typedef struct fv_http_server_refusals {
    uint64_t full;              /* answered 503: the process held its connection budget */
    uint64_t accept_errors;     /* accept(2) failed (descriptor table full, ...) */
    uint64_t h2_prefaces;       /* HTTP/2 prefaces closed: no h2 driver took them */
} fv_http_server_refusals_t;
void fv_http_server_refusals(const fv_http_server_t *s, fv_http_server_refusals_t *out);

/* Closes the listener and every connection (pending requests get their abort callback), then
 * runs cb and frees the server. NULL-safe; cb may be NULL. */
void fv_http_server_close(fv_http_server_t *s, fv_http_server_closed_cb cb, void *data);

/* ---- the request ---- */

/* Method as sent ("GET"). */
fv_slice_t fv_http_req_method(const fv_http_req_t *req);
/* Path without the query string, percent-decoding NOT applied. */
fv_slice_t fv_http_req_path(const fv_http_req_t *req);
/* Query string without '?', empty when absent. */
fv_slice_t fv_http_req_query(const fv_http_req_t *req);
/* The raw request target (path and query) as sent. */
fv_slice_t fv_http_req_target(const fv_http_req_t *req);
/* First header with that name (case-insensitive); FV_SLICE_NULL (ptr NULL) when absent. */
fv_slice_t fv_http_req_header(const fv_http_req_t *req, const char *name);
/* Header count and the i-th header. */
size_t fv_http_req_header_count(const fv_http_req_t *req);
void fv_http_req_header_at(const fv_http_req_t *req, size_t i, fv_slice_t *name,
                           fv_slice_t *value);
/* The whole (de-chunked) body; empty for a request that streams its body. */
fv_slice_t fv_http_req_body(const fv_http_req_t *req);
/* Value of query parameter name, percent-decoded, from the request arena; NULL when absent. */
const char *fv_http_req_query_param(fv_http_req_t *req, const char *name);
/* Process-unique request id, for logs and 5xx bodies. */
uint64_t fv_http_req_id(const fv_http_req_t *req);
/* Peer address "ip:port". */
const char *fv_http_req_peer(const fv_http_req_t *req);
/* Memory that lives exactly as long as the request. */
fv_arena_t *fv_http_req_arena(fv_http_req_t *req);
/* The loop the request runs on. */
uv_loop_t *fv_http_req_loop(const fv_http_req_t *req);
/* HTTP minor version (0 or 1) of the request. */
int fv_http_req_minor(const fv_http_req_t *req);

/* Route parameters, set by the router (":name" segments); NULL when absent. */
void fv_http_req_set_param(fv_http_req_t *req, const char *name, const char *value);
const char *fv_http_req_param(const fv_http_req_t *req, const char *name);
/* The matched route pattern (a string with static lifetime), for metrics. */
void fv_http_req_set_route(fv_http_req_t *req, const char *route);
const char *fv_http_req_route(const fv_http_req_t *req);

/* Abort callback: runs (once) if the connection closes before the request is answered. After
 * it returns the request is gone; the handler must drop every pointer to it. Without one, a
 * request whose connection closed stays valid until it is answered (the answer is then
 * dropped) or the server is closed. */
typedef void (*fv_http_req_abort_cb)(fv_http_req_t *req, void *data);
void fv_http_req_on_abort(fv_http_req_t *req, fv_http_req_abort_cb cb, void *data);

/* ---- the response: exactly one fv_http_reply* per request ----
 * Each request is its own object: a second answer within the same callback, or an answer
 * after the connection closed (without an abort callback), is dropped with a debug log and
 * never reaches another request. Reading req after answering it gives an empty request. */

/* Adds a response header (copied). Before the reply call only. */
void fv_http_resp_header(fv_http_req_t *req, const char *name, const char *value);

/* Sends status, the added headers, Content-Type (when not NULL) and a copy of body. The server
 * adds Content-Length, Date, Connection. After this call req is invalid. */
void fv_http_reply(fv_http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len);

/* As fv_http_reply but takes ownership of body (malloc'd via fv_malloc; freed by the server
 * once written), so a large response is not copied. */
void fv_http_reply_owned(fv_http_req_t *req, int status, const char *content_type, char *body,
                         size_t len);

/* As fv_http_reply for a body that many answers share (one rendering for thousands of
 * waiters): not copied; the call takes over one reference of body (core/shared.h), dropped
 * once this answer is written or dropped. Take a reference first to keep one. */
void fv_http_reply_shared(fv_http_req_t *req, int status, const char *content_type,
                          fv_shared_t *body);

/* ---- streaming a response ----
 * fv_http_reply_start() sends the status line and headers (Transfer-Encoding: chunked for
 * HTTP/1.1; for HTTP/1.0 the body ends with the connection); fv_http_reply_write() sends
 * pieces, copying them; fv_http_reply_end() finishes the request. Pace by the connection: while
 * fv_http_reply_full() is true, stop writing and wait for fv_http_reply_on_writable(), so a slow
 * reader never makes us buffer without bound. A client that goes away before the end is the
 * abort callback's business, as for any request; writes to a request that is gone return
 * FV_ECANCELED. */
typedef void (*fv_http_writable_cb)(fv_http_req_t *req, void *data);
FV_MUST_USE int fv_http_reply_start(fv_http_req_t *req, int status, const char *content_type);
FV_MUST_USE int fv_http_reply_write(fv_http_req_t *req, const void *data, size_t len);
bool fv_http_reply_full(const fv_http_req_t *req);
/* While fv_http_reply_full(): cb runs once, from the loop, when the connection's queued output
 * has fallen below its ceiling. Replaces an earlier one. FV_EINVAL when there is room already
 * (write on) or the request is not streaming. */
FV_MUST_USE int fv_http_reply_on_writable(fv_http_req_t *req, fv_http_writable_cb cb,
                                          void *data);
void fv_http_reply_end(fv_http_req_t *req);
/* Ends a streaming answer that cannot be completed (its source failed half way): no closing
 * chunk is sent and the connection ends once what is queued has gone, so the client knows the
 * answer is cut short (a proxy whose upstream died mid-body). */
void fv_http_reply_abort(fv_http_req_t *req);

/* ---- streaming a request body ----
 * A request whose route streams its body (fv_router_add_streaming, or a body policy with
 * stream set) reaches the handler as soon as its head is parsed, and the body stays unread
 * until the handler asks for it with fv_http_req_read_body(): then cb gets each piece as it
 * is parsed (de-chunked), straight from the read buffer, valid during the call only; the last
 * call has end set (and len 0). A client that sent "Expect: 100-continue" gets its 100 at that
 * moment, so a handler that refuses on the head alone (401, 404) never has the body sent.
 *
 * Back-pressure: fv_http_req_pause_body() stops the pieces (the socket then reads until its
 * buffer is full and stops: TCP slows the client), fv_http_req_resume_body() goes on; both may
 * be called from cb. While pieces flow, the connection must make progress every
 * body_timeout_ms (else 408); while paused, no timer runs: the handler has the body's pace.
 *
 * The handler may answer at any time, from cb too; answered before the end, the rest of the
 * body is not read and the connection ends after the answer. A streaming answer
 * (fv_http_reply_start) may run alongside the body. A body that does not arrive whole (over
 * the route's limit: 413, too slow: 408, malformed: 400, client gone) ends the request
 * through its abort callback; the server has answered the client itself. For a request whose
 * body was not streamed (buffered whole, or none), cb runs once, at once, with the whole body
 * and end set, so a handler may use fv_http_req_read_body() for both. */
typedef void (*fv_http_body_cb)(fv_http_req_t *req, void *data, const char *piece, size_t len,
                                bool end);
/* 0, or FV_ECANCELED (answered or aborted), FV_EINVAL (no cb, or reading already). */
FV_MUST_USE int fv_http_req_read_body(fv_http_req_t *req, fv_http_body_cb cb, void *data);
/* Whether the body of this request comes by fv_http_req_read_body() pieces, not whole: true
 * from the head until the end has been delivered. */
bool fv_http_req_body_streaming(const fv_http_req_t *req);
void fv_http_req_pause_body(fv_http_req_t *req);
void fv_http_req_resume_body(fv_http_req_t *req);

/* Whether the request asks for a protocol upgrade (Connection: upgrade and Upgrade:). */
bool fv_http_req_is_upgrade(const fv_http_req_t *req);

/* The socket carrying req (NULL once its connection is gone), for a driver that needs it
 * before fv_http_upgrade hands the socket over. */
fv_sock_t *fv_http_req_sock(const fv_http_req_t *req);

/* Accepts the upgrade the request asks for: sends "101 Switching Protocols" with
 * Connection: Upgrade, the headers added with fv_http_resp_header and extra_headers (raw
 * "Name: value\r\n" lines, may be NULL), finishes the request and hands the socket to driver
 * with state; bytes the client sent after the request head go to driver->on_data. Returns 0:
 * req is invalid, state belongs to the socket (freed by driver->on_free). FV_EINVAL: not an
 * upgrade request, or the connection is ending; nothing happened, reply as usual. */
FV_MUST_USE int fv_http_upgrade(fv_http_req_t *req, const char *extra_headers,
                                const fv_sock_driver_t *driver, void *state);

/* Serialises j compactly as application/json and steals the reference. */
void fv_http_reply_json(fv_http_req_t *req, int status, json_t *j);

/* {"error":{"code":name,"message":msg}} with the code's HTTP status. For 5xx the message sent is
 * generic with the request id, and the detail goes to the log. */
void fv_http_reply_error(fv_http_req_t *req, const fv_error_t *err);
void fv_http_reply_errorf(fv_http_req_t *req, int code, const char *fmt, ...) FV_PRINTF(3, 4);

#endif
