/* h2.h - HTTP/2 server connections (h2c) on the socket seam (net/sock.h), over nghttp2.
 *
 * A connection whose first bytes are the HTTP/2 preface is handed (by the HTTP server's h2
 * factory) to the h2 driver; each request stream reaches a handler as an fv_h2_stream_t. The
 * handler answers once, at once or later, with fv_h2_stream_respond() (head, a body, trailers),
 * or streams an answer produced over time (fv_h2_stream_begin, _write, _end), or resets the
 * stream. The driver keeps the protocol's limits:
 *
 * - SETTINGS: max_concurrent_streams, max_frame_bytes, max_header_list_bytes and the initial
 *   windows are advertised and enforced (a header list over its limit resets its stream; a
 *   frame over the frame size, or a header block that never ends, ends the connection).
 * - Flow control: answers leave only as the peer's windows allow, and the socket is fed only
 *   while its output is under the server's max_output_bytes, so a reader that does not read
 *   costs at most the answers of its open streams; our receive windows are reopened as the
 *   handler is given the bytes (the handler bounds what it keeps).
 * - PING is answered, RST_STREAM reaches the handler (on_close with the error code), and more
 *   than max_resets resets from the peer in a burst (refilled at max_resets per second) end
 *   the connection with GOAWAY ENHANCE_YOUR_CALM.
 * - Drain (the server stopping): GOAWAY with the last stream taken; streams in flight finish,
 *   then the connection ends. A connection without streams for idle_timeout_ms is ended with
 *   GOAWAY too.
 *
 * Everything runs on the socket's loop thread. */
#ifndef FV_NET_H2_H
#define FV_NET_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "core/slice.h"
#include "net/sock.h"

typedef struct fv_h2_stream fv_h2_stream_t;

typedef struct fv_h2_limits {
    uint32_t max_concurrent_streams;   /* streams open at once per connection; 100 */
    uint32_t max_frame_bytes;          /* largest frame payload accepted; 16384 (RFC minimum) */
    uint32_t max_header_list_bytes;    /* request header list (RFC 9113 size); 16 KiB */
    uint32_t stream_window_bytes;      /* initial receive window of a stream; 1 MiB */
    uint32_t conn_window_bytes;        /* receive window of the connection; 16 MiB */
    uint32_t max_resets;               /* RST_STREAM burst from the peer; 200 */
    uint32_t idle_timeout_ms;          /* no stream open this long: GOAWAY; 60 s */
} fv_h2_limits_t;

void fv_h2_limits_default(fv_h2_limits_t *lim);

/* A header for an answer; both parts are copied. */
typedef struct fv_h2_header {
    fv_slice_t name;     /* lower case */
    fv_slice_t value;
} fv_h2_header_t;

/* What the driver tells its user. Every callback may answer or reset the stream. */
typedef struct fv_h2_handler {
    /* A request's header block is complete (pseudo-headers checked by nghttp2). */
    void (*on_request)(fv_h2_stream_t *st, void *data);
    /* Request body bytes (valid during the call only); end set on the last call, which may
     * carry no bytes. Not called after the stream was answered or reset, except that a
     * streaming answer (fv_h2_stream_begin) keeps hearing them until fv_h2_stream_end. */
    void (*on_body)(fv_h2_stream_t *st, const uint8_t *p, size_t len, bool end, void *data);
    /* The stream is gone: answered and sent (error_code 0), reset by the peer, or the
     * connection closed. Runs once for every stream on_request saw; drop st after it. */
    void (*on_close)(fv_h2_stream_t *st, uint32_t error_code, void *data);
    /* A streaming answer's queue drained after fv_h2_stream_write refused bytes (FV_EAGAIN):
     * write again. Once per refusal; may be NULL. */
    void (*on_writable)(fv_h2_stream_t *st, void *data);
} fv_h2_handler_t;

/* A driver for socket s (from an fv_http_h2_factory_cb): lim (copied; NULL for the defaults),
 * handler and data borrowed, and must outlive the socket. Fills *driver and *state for the
 * factory. 0 or FV_ENOMEM. */
FV_MUST_USE int fv_h2_conn_new(fv_sock_t *s, const fv_h2_limits_t *lim,
                               const fv_h2_handler_t *handler, void *data,
                               const fv_sock_driver_t **driver, void **state);

/* HTTP/1.1 "Upgrade: h2c" (RFC 7540 sec. 3.2) on a driver fresh from fv_h2_conn_new (state):
 * settings is the request's HTTP2-Settings value (base64url), method, path, authority and the
 * other headers (connection-specific ones are left out here) become stream 1, which the
 * handler is given, complete, once the driver runs on the socket. Call before handing the
 * socket over with the 101 answer. 0; FV_EINVAL (settings not base64url or not a SETTINGS
 * payload: answer the request as HTTP/1.1 instead); FV_ENOMEM. */
FV_MUST_USE int fv_h2_conn_upgrade(void *state, fv_slice_t settings, fv_slice_t method,
                                   fv_slice_t path, fv_slice_t authority,
                                   const fv_h2_header_t *headers, size_t count);

/* ---- a stream, as the handler sees it ---- */

/* The request's :method, :path and a header by (lower-case) name; FV_SLICE_NULL when absent.
 * Valid until on_close. */
fv_slice_t fv_h2_stream_method(const fv_h2_stream_t *st);
fv_slice_t fv_h2_stream_path(const fv_h2_stream_t *st);
fv_slice_t fv_h2_stream_header(const fv_h2_stream_t *st, const char *name);
/* The request headers in order, pseudo-headers included: *pos starts at 0; false after the
 * last. Valid until on_close. */
bool fv_h2_stream_header_next(const fv_h2_stream_t *st, size_t *pos, fv_slice_t *name,
                              fv_slice_t *value);
uint32_t fv_h2_stream_id(const fv_h2_stream_t *st);
uv_loop_t *fv_h2_stream_loop(const fv_h2_stream_t *st);

/* The handler's own pointer on the stream. */
void fv_h2_stream_set_data(fv_h2_stream_t *st, void *data);
void *fv_h2_stream_data(const fv_h2_stream_t *st);

/* Answers: head (":status" first), then body[0..len) when len > 0, then the trailers when
 * trailer_count > 0 (without body and trailers the head ends the stream). Everything is copied.
 * on_close may run before this returns (the answer went out at once): drop st after calling.
 * 0, FV_EINVAL (answered already, or no head), FV_ECANCELED (the stream or the connection is
 * gone), FV_ENOMEM. */
FV_MUST_USE int fv_h2_stream_respond(fv_h2_stream_t *st, const fv_h2_header_t *head,
                                     size_t head_count, const void *body, size_t len,
                                     const fv_h2_header_t *trailers, size_t trailer_count);

/* Streaming answers, for a body produced over time: fv_h2_stream_begin sends the head and
 * keeps the stream open; fv_h2_stream_write queues body bytes (copied), sent as the peer's
 * windows allow; fv_h2_stream_end sends the trailers (none: END_STREAM on the last DATA) after
 * what is queued. A stream holds at most FV_H2_STREAM_MAX_QUEUED unsent bytes (one write may
 * pass it): past that write refuses with FV_EAGAIN and on_writable runs once the queue has
 * drained, so a peer that does not read costs a bounded amount. All three: 0, FV_ECANCELED
 * (the stream or the connection is gone), FV_EINVAL (answered already / not begun, or ended),
 * FV_ENOMEM; write also FV_EAGAIN. on_close may run before they return. */
#define FV_H2_STREAM_MAX_QUEUED (64u * 1024u)
FV_MUST_USE int fv_h2_stream_begin(fv_h2_stream_t *st, const fv_h2_header_t *head,
                                   size_t head_count);
FV_MUST_USE int fv_h2_stream_write(fv_h2_stream_t *st, const void *p, size_t len);
FV_MUST_USE int fv_h2_stream_end(fv_h2_stream_t *st, const fv_h2_header_t *trailers,
                                 size_t trailer_count);
/* Back-pressure on the request body: while held, bytes still arrive (on_body) but the
 * stream's receive window is not reopened, so the peer stops after at most one window
 * (stream_window_bytes) more; releasing reopens it for what came meanwhile. The connection's
 * window is reopened regardless, so other streams go on. */
void fv_h2_stream_hold(fv_h2_stream_t *st, bool hold);

/* Bytes written and not yet handed to the connection. */
size_t fv_h2_stream_queued(const fv_h2_stream_t *st);

/* Ends the stream with RST_STREAM error_code (an RFC 9113 code). on_close follows (perhaps
 * before this returns). */
void fv_h2_stream_reset(fv_h2_stream_t *st, uint32_t error_code);

#endif
