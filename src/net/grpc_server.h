/* grpc_server.h - gRPC on a module's own port: HTTP/2 streams from the h2 driver (net/h2.h)
 * become calls on the module's method table through fv_rpc_dispatch (rpc/rpc.h).
 *
 * A request is POST /<service>/<method> with content-type application/grpc (or +proto) and one
 * length-prefixed message. A streaming method (server-, client- or bidirectional, below)
 * is served here; any other <service> picks the rpc module (a unary call): a route
 * added with fv_grpc_server_route(), else the service the server's own module serves
 * (fv_rpc_serve), or
 * the module's own name as an alias of it (what rpc/grpc_transport.h sends);
 * anything else is UNIMPLEMENTED, as is a method the table lacks. grpc-timeout becomes the
 * call's deadline (DEADLINE_EXCEEDED when it passes); a message over max_message_bytes is
 * RESOURCE_EXHAUSTED, told from its prefix before the body arrives. With grpc-encoding: gzip
 * a message with the compressed flag is inflated (net/grpc_gzip.h) into at most
 * max_message_bytes (past that RESOURCE_EXHAUSTED; not gzip INTERNAL); a compressed message
 * without that encoding or a body that is not exactly one message is INTERNAL; an encoding
 * other than identity and gzip is UNIMPLEMENTED. Answers are never compressed and say
 * grpc-accept-encoding: identity,gzip. Request bytes waiting for
 * their message to complete count against one budget for the process (max_buffered_bytes), so
 * many clients each sending most of a large message cannot hold memory without bound. An answer goes as headers,
 * one message and trailers (grpc-status 0); an error as trailers-only (grpc-status and the
 * percent-encoded grpc-message, FV_E codes mapped by fv_err_grpc_status). A client that resets
 * the stream or goes away cancels the call (the handler's cancel callback runs). Custom
 * request metadata (rpc/metadata.h: reserved names left out, -bin values base64-decoded) reaches
 * the handler, and the handler's answer headers and trailers go back (in the one header block
 * of an error).
 *
 * Everything runs on the loop thread of the rpc. */
#ifndef FV_NET_GRPC_SERVER_H
#define FV_NET_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/h2.h"
#include "net/http_server.h"
#include "rpc/metadata.h"
#include "rpc/rpc.h"

typedef struct fv_grpc_server fv_grpc_server_t;

typedef struct fv_grpc_opts {
    size_t max_message_bytes;      /* a request message; 0: FV_RPC_DEFAULT_MAX_MESSAGE */
    size_t max_buffered_bytes;     /* request bytes buffered by every gRPC server of the process
                                    * together, past which a call is RESOURCE_EXHAUSTED; 0:
                                    * 256 MiB */
    const fv_h2_limits_t *h2;      /* copied; NULL: fv_h2_limits_default() */
} fv_grpc_opts_t;

/* A gRPC server for module's calls on rpc (borrowed; must outlive it). 0 or FV_EINVAL. */
FV_MUST_USE int fv_grpc_server_new(fv_rpc_t *rpc, const char *module, const fv_grpc_opts_t *opts,
                                   fv_grpc_server_t **out);

/* Calls to service go to rpc module rpc_module (the health service of a module, say). Both
 * copied. 0, FV_EINVAL, FV_EEXIST. */
FV_MUST_USE int fv_grpc_server_route(fv_grpc_server_t *g, const char *service,
                                     const char *rpc_module);

/* ---- streaming methods ----
 *
 * Methods served by the gRPC server itself rather than a method table (the rpc layer's calls
 * are unary), each call handed to its handler as an fv_grpc_stream_t:
 *
 * - server-streaming (fv_grpc_server_stream_method): fn gets the one request message (the
 *   protobuf bytes, valid during the call) once it is complete;
 * - client-streaming and bidirectional (fv_grpc_server_client_stream_method, _bidi_method):
 *   open runs when the request headers arrive; the handler sets its callbacks there and gets
 *   each request message in on_message (valid during the call), then on_half_close when the
 *   client has ended its side. A client-streaming call answers at most one message.
 *
 * The handler sends messages with fv_grpc_stream_send (each a protobuf, framed here), at any
 * time, and ends with fv_grpc_stream_finish (an FV code) or _finish_status (a gRPC status);
 * an end before any message is a trailers-only answer. A stream queues at most
 * FV_H2_STREAM_MAX_QUEUED unsent bytes: past that send is FV_EAGAIN and on_writable runs once
 * the client has read them. Reading has back-pressure too: after fv_grpc_stream_pause(s, true)
 * no on_message runs and the client can send at most one stream window more (the HTTP/2
 * window is not reopened); the request bytes a stream buffers are at most one message plus
 * that window, and count against the server's max_buffered_bytes. A request message over
 * max_message_bytes (inflated or not), a compressed one without gzip, a truncated one ends
 * the call (RESOURCE_EXHAUSTED / INTERNAL) and the handler hears on_cancel, as when the
 * request's grpc-timeout passes (DEADLINE_EXCEEDED). When the client cancels, resets or goes
 * away, on_cancel runs and the stream is gone after it returns; after finish it is gone at once.
 * Callbacks may run from inside fv_grpc_stream_pause(s, false) and _send (the stream may be
 * gone when they return, after on_cancel). */
typedef struct fv_grpc_stream fv_grpc_stream_t;

typedef struct fv_grpc_stream_cbs {
    void (*on_cancel)(fv_grpc_stream_t *s, void *data);
    void (*on_writable)(fv_grpc_stream_t *s, void *data);   /* may be NULL */
    /* client-streaming and bidirectional methods; either may be NULL */
    void (*on_message)(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data);
    void (*on_half_close)(fv_grpc_stream_t *s, void *data);
} fv_grpc_stream_cbs_t;

typedef void (*fv_grpc_stream_fn)(fv_grpc_stream_t *s, const uint8_t *msg, size_t len,
                                  void *data);
typedef void (*fv_grpc_open_fn)(fv_grpc_stream_t *s, void *data);

/* Serves service/method (copied) as a server-streaming method: fn(data) runs once the request
 * message is complete. 0, FV_EINVAL, FV_EEXIST. */
FV_MUST_USE int fv_grpc_server_stream_method(fv_grpc_server_t *g, const char *service,
                                             const char *method, fv_grpc_stream_fn fn,
                                             void *data);
/* ... as a client-streaming or a bidirectional method: fn(data) runs on the request headers.
 * 0, FV_EINVAL, FV_EEXIST. */
FV_MUST_USE int fv_grpc_server_client_stream_method(fv_grpc_server_t *g, const char *service,
                                                    const char *method, fv_grpc_open_fn fn,
                                                    void *data);
FV_MUST_USE int fv_grpc_server_bidi_method(fv_grpc_server_t *g, const char *service,
                                           const char *method, fv_grpc_open_fn fn, void *data);

/* The stream's callbacks and their data (set once, in fn, before returning). */
void fv_grpc_stream_set_cbs(fv_grpc_stream_t *s, const fv_grpc_stream_cbs_t *cbs, void *data);

/* Stops (true) or restarts (false) on_message; restarting hands over what came meanwhile, and
 * on_half_close when it is due, before it returns. */
void fv_grpc_stream_pause(fv_grpc_stream_t *s, bool paused);

/* The request's custom metadata (as for unary calls, rpc/metadata.h), while the stream is
 * held. */
const fv_md_t *fv_grpc_stream_metadata(const fv_grpc_stream_t *s);

/* Answer metadata: headers before the first message is sent (or with a trailers-only end),
 * trailers until the end. 0, FV_EINVAL (a reserved name, or headers after the first message),
 * FV_ETOOBIG (over 8 KiB), FV_ENOMEM. */
FV_MUST_USE int fv_grpc_stream_add_header(fv_grpc_stream_t *s, const char *name,
                                          const void *value, size_t len);
FV_MUST_USE int fv_grpc_stream_add_trailer(fv_grpc_stream_t *s, const char *name,
                                           const void *value, size_t len);

/* Sends one message. 0, FV_EAGAIN (queue full: wait for on_writable), FV_ETOOBIG (over the
 * server's max_message_bytes), FV_ECANCELED (the client is gone; on_cancel has run or runs),
 * FV_EINVAL (a second answer on a client-streaming call, or ended), FV_ENOMEM. */
FV_MUST_USE int fv_grpc_stream_send(fv_grpc_stream_t *s, const uint8_t *msg, size_t len);

/* Ends with an FV_E code (0 for OK) and, for an error, a sentence; the stream is gone after. */
void fv_grpc_stream_finish(fv_grpc_stream_t *s, int code, const char *message);
/* Ends with a gRPC status number (FV_GRPC_*, net/grpc_wire.h) and its message. */
void fv_grpc_stream_finish_status(fv_grpc_stream_t *s, int grpc_status, const char *message);

/* The services served on this server's port, each once, in no set order: the module's own,
 * every routed one, and those of the streaming methods. Calls fn for each. */
void fv_grpc_server_services(const fv_grpc_server_t *g,
                             void (*fn)(const char *service, void *data), void *data);

/* Serves gRPC on http's port: connections opening with the HTTP/2 preface go to the h2 driver
 * with this server's calls. */
void fv_grpc_server_attach(fv_grpc_server_t *g, fv_http_server_t *http);

typedef struct fv_grpc_stats {
    uint64_t calls;        /* requests that reached a decision */
    uint64_t ok;
    uint64_t failed;
    size_t in_flight;      /* calls with the module's handler now */
} fv_grpc_stats_t;
void fv_grpc_server_stats(const fv_grpc_server_t *g, fv_grpc_stats_t *out);

/* After the HTTP servers it is attached to have closed. Calls still with a handler keep the
 * memory until they end (the rpc's close ends them). NULL-safe. */
void fv_grpc_server_free(fv_grpc_server_t *g);

#endif
