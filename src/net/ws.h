/* ws.h - WebSocket connections (RFC 6455) on the HTTP server's upgrade seam.
 *
 * A handler that gets an upgrade request calls fv_ws_accept(): the handshake is checked
 * (GET, HTTP/1.1, Upgrade: websocket, Connection: upgrade, version 13, a 16-byte key), the
 * 101 goes out and the socket runs the WebSocket driver from then on. The driver reassembles
 * fragmented messages (control frames may come between fragments), validates text as UTF-8
 * (also across fragments), answers pings, runs the close handshake and keeps the connection
 * alive with pings of its own; what breaks the protocol closes the connection with the RFC's
 * code and a reason (1002 protocol, 1007 invalid UTF-8, 1009 too big).
 *
 * Sending: fv_ws_send() copies; fv_ws_send_shared() sends a frame whose body is shared by
 * reference among many connections (one event to 10,000 clients is encoded once), with a small
 * per-connection prefix in front of it. Output is bounded by the socket's ceiling: while
 * fv_ws_output_full(), hold back and wait for on_writable; the driver also stops reading then.
 *
 * Lifetime: the fv_ws_t belongs to the socket. on_close runs once, when the connection ends for
 * any reason; after it returns ws must not be used. Everything runs on the loop thread. */
#ifndef FV_NET_WS_H
#define FV_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/shared.h"
#include "net/http_server.h"
#include "net/ws_frame.h"

typedef struct fv_ws fv_ws_t;

typedef struct fv_ws_limits {
    size_t max_frame_bytes;      /* one frame's payload; past it: 1009. Default 64 KiB */
    size_t max_message_bytes;    /* a reassembled message; past it: 1009. Default 64 KiB */
    uint32_t ping_interval_ms;   /* quiet this long: we ping. Default 25 s; 0 = never */
    uint32_t pong_timeout_ms;    /* after our ping, no byte this long: closed. Default 20 s */
    uint32_t close_timeout_ms;   /* after our close frame, the peer's answer; default 5 s */
} fv_ws_limits_t;

void fv_ws_limits_default(fv_ws_limits_t *lim);

typedef struct fv_ws_handler {
    /* A whole message: text (UTF-8, checked) or binary. msg is valid during the call. */
    void (*on_message)(fv_ws_t *ws, void *data, bool text, const uint8_t *msg, size_t len);
    /* Output fell below the ceiling after fv_ws_output_full() was true. May be NULL. */
    void (*on_writable)(fv_ws_t *ws, void *data);
    /* The connection ended: code is the close code received or sent (1006 when the
     * connection dropped without one). ws is gone after this returns. */
    void (*on_close)(fv_ws_t *ws, void *data, unsigned code, const char *reason);
} fv_ws_handler_t;

/* Checks req as a WebSocket handshake and accepts it: 0 and *out (out may be NULL); req is
 * answered (101) and gone. Extra response headers may be added with fv_http_resp_header
 * first. A request that is no valid handshake is answered here too, with a JSON error: 400 (what
 * is wrong in err), or 426 and Sec-WebSocket-Version: 13 for another protocol version; the
 * code is returned (FV_EINVAL). lim (NULL for the defaults) is kept, not copied: it must
 * outlive the connection. */
FV_MUST_USE int fv_ws_accept(fv_http_req_t *req, const fv_ws_limits_t *lim,
                             const fv_ws_handler_t *h, void *data, fv_ws_t **out,
                             fv_error_t *err);

/* Sends a text or binary message (copied). FV_ECANCELED once the connection is closing. */
FV_MUST_USE int fv_ws_send(fv_ws_t *ws, bool text, const void *msg, size_t len);

/* Sends one text message: prefix (copied, may be empty) followed by body, shared by
 * reference among many connections (core/shared.h: one event to 10,000 clients is encoded
 * once); a reference is held until it is written. */
FV_MUST_USE int fv_ws_send_shared(fv_ws_t *ws, const void *prefix, size_t prefix_len,
                                  fv_shared_t *body);

/* Bytes queued and not yet taken by the kernel; whether that is over the socket's ceiling. */
size_t fv_ws_output_bytes(const fv_ws_t *ws);
bool fv_ws_output_full(const fv_ws_t *ws);

/* Starts the close handshake with code and reason (cut to fit a control frame): nothing more
 * is delivered or sent; the connection ends when the peer answers or close_timeout_ms passes.
 * Idempotent. */
void fv_ws_close(fv_ws_t *ws, unsigned code, const char *reason);

/* Hands the callbacks' data pointer over to another owner (a session taking over a
 * connection). */
void fv_ws_set_data(fv_ws_t *ws, void *data);

/* Peer address "ip:port". */
const char *fv_ws_peer(fv_ws_t *ws);
uv_loop_t *fv_ws_loop(const fv_ws_t *ws);

/* Open WebSocket connections of the process, for /metrics. */
size_t fv_ws_open_count(void);

#endif
