/* sock.h - one accepted TCP connection of the HTTP server with a swappable protocol driver.
 *
 * The socket owns what every protocol needs: the uv_tcp_t, the read buffer, a write queue with
 * a byte ceiling (back-pressure), one lazily moved deadline timer, the graceful end (shutdown,
 * then a short linger that drops input) and the server's bookkeeping (the connection set,
 * drain and close). A driver (HTTP/1, an upgraded protocol, h2) owns the protocol state and
 * sees bytes through on_data; it can be replaced once the socket is running, and the bytes it
 * left unconsumed go to the next driver.
 *
 * Lifetime (libuv style): the socket is a handle. fv_sock_close() starts closing; the driver's
 * on_close runs at once, on_free runs from the close callback after every write has finished
 * (so driver state stays valid while writes are pending); then the memory goes.
 *
 * Everything runs on the server's loop thread. */
#ifndef FV_NET_SOCK_H
#define FV_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

typedef struct fv_sock fv_sock_t;
typedef struct fv_sock_write fv_sock_write_t;
struct fv_http_server;

/* The read buffer starts small and grows to this while a driver leaves bytes unconsumed; full,
 * the socket stops reading until the driver takes some. */
#define FV_SOCK_RBUF_MIN 8192
#define FV_SOCK_RBUF_MAX 65536
/* After fv_sock_end() and the last write we read and drop input this long, so the peer sees
 * our last bytes instead of a reset. */
#define FV_SOCK_LINGER_MS 2000

/* A protocol on a socket. state is the driver's own, given to fv_sock_set_driver. Only on_data
 * is required. None of them may free s; fv_sock_close() it instead. */
typedef struct fv_sock_driver {
    const char *name;
    /* Bytes read (or left over by the previous driver). Returns how many were consumed; the
     * rest stays buffered and is offered again with more bytes after the next read, or at once
     * after fv_sock_process(). Not called while output is over the ceiling. */
    size_t (*on_data)(fv_sock_t *s, void *state, const char *data, size_t len);
    /* Output fell back below the ceiling. */
    void (*on_writable)(fv_sock_t *s, void *state);
    /* The deadline set with fv_sock_deadline() passed. NULL: the socket is closed. */
    void (*on_timeout)(fv_sock_t *s, void *state);
    /* The server began a graceful stop. NULL: fv_sock_end(). */
    void (*on_drain)(fv_sock_t *s, void *state);
    /* The socket is closing (any cause): stop work, write nothing more. */
    void (*on_close)(fv_sock_t *s, void *state);
    /* The socket is gone, every write finished: free state. Also runs for a driver replaced
     * by fv_sock_set_driver (after its on_close). */
    void (*on_free)(fv_sock_t *s, void *state);
} fv_sock_driver_t;

/* Hands the socket to driver d with state. Takes effect once the running on_data (if any)
 * returns, else at once; the old driver's on_close and on_free then run, and the new one's
 * on_data gets whatever bytes are buffered. Returns 0: the socket (and state, freed by
 * d->on_free) belong to d, even if the socket is already closing. FV_EINVAL: d has no on_data;
 * FV_EEXIST: another switch is pending. Nothing changed on error. */
int fv_sock_set_driver(fv_sock_t *s, const fv_sock_driver_t *d, void *state);

/* ---- writing ----
 * A write record holds a head buffer the caller fills and at most one body. The bytes leave
 * in the order the records are sent. Output still queued in libuv counts against the ceiling
 * (max_output_bytes of the server's limits); over it, on_data is not called and the socket
 * stops reading until the queue drains. */

/* A record with an empty head buffer; send it or drop it. */
fv_sock_write_t *fv_sock_write_get(fv_sock_t *s);
fv_buf_t *fv_sock_write_head(fv_sock_write_t *w);
/* Returns an unused record. */
void fv_sock_write_drop(fv_sock_t *s, fv_sock_write_t *w);
/* Sends the head then body[0..len). owned (may be NULL, may equal body) is fv_free()d once
 * written or failed. A failed write closes the socket; on a socket that is ending or closing
 * the bytes are dropped. */
void fv_sock_write_send(fv_sock_t *s, fv_sock_write_t *w, const char *body, size_t len,
                        char *owned);
/* As fv_sock_write_send for a body that many writes share (one event to many clients):
 * release(release_data) runs once this write is done with body (written, failed or dropped),
 * instead of a free. */
void fv_sock_write_send_shared(fv_sock_t *s, fv_sock_write_t *w, const char *body, size_t len,
                               void (*release)(void *), void *release_data);
/* Copies data and sends it. */
void fv_sock_write(fv_sock_t *s, const void *data, size_t len);
/* Bytes queued in libuv and not yet taken by the kernel; whether that is over the ceiling. */
size_t fv_sock_output_bytes(const fv_sock_t *s);
bool fv_sock_output_full(const fv_sock_t *s);

/* ---- timing and ending ---- */

/* Sets the one deadline to now + ms (replacing the previous); clear removes it. */
void fv_sock_deadline(fv_sock_t *s, uint32_t ms);
void fv_sock_deadline_clear(fv_sock_t *s);
/* Offers the buffered bytes to the driver again (it can take more now). */
void fv_sock_process(fv_sock_t *s);
/* Graceful end: once the queued writes are out, shut down the write side, drop input for
 * FV_SOCK_LINGER_MS (or until the peer closes), then close. on_data is no longer called. If
 * the writes are not out within the server's idle_timeout_ms the socket is closed. */
void fv_sock_end(fv_sock_t *s);
/* Closes now; queued writes are cancelled. Idempotent. */
void fv_sock_close(fv_sock_t *s);
/* Not ending or closing. */
bool fv_sock_is_open(const fv_sock_t *s);

/* ---- facts ---- */

/* Peer address "ip:port" ("-" without a socket), formatted on first use. */
const char *fv_sock_peer(fv_sock_t *s);
uv_loop_t *fv_sock_loop(const fv_sock_t *s);
struct fv_http_server *fv_sock_server(const fv_sock_t *s);
/* The driver now in charge (its name says which protocol). */
const fv_sock_driver_t *fv_sock_driver(const fv_sock_t *s);

#endif
