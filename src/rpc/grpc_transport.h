/* grpc_transport.h - the call layer's remote transport (fv_rpc_set_remote) over gRPC: a call
 * to a module this process does not serve goes, as one gRPC call, to an instance of that
 * module found by a resolver (the runtime's watches of the registry): the one with the fewest
 * of our calls under way (least outstanding), over one HTTP/2 connection per instance
 * address, kept and reused. The call's metadata goes as request headers and the peer's custom
 * headers and trailers come back to the caller; a call with FV_RPC_SERVER_STREAM hands each
 * answer message over as soon as it is whole (fv_rpc_remote_message) and is not retried once
 * one went.
 *
 * The request path names the module, "/<module>/<method>", which every module's gRPC server
 * takes as an alias of its own service (the caller knows modules, not service names). The
 * deadline travels as grpc-timeout; a cancel (the caller's, or its deadline) resets the
 * stream. Answers map back to FV codes (grpc status 4 FV_ETIMEDOUT, 5 FV_ENOENT, 12
 * FV_EUNIMPLEMENTED, 14 FV_EUNAVAILABLE, ...); an instance that cannot be reached or a
 * connection that drops is FV_EUNAVAILABLE, after the retries: an attempt that never reached
 * a handler (refused connection or stream) is made again on another instance, and so is an
 * idempotent call (FV_RPC_IDEMPOTENT) that met UNAVAILABLE or a dropped connection, with
 * backoff, within the deadline; addresses that failed are passed over for a few seconds (see
 * grpc_transport.c).
 *
 * Everything runs on the loop thread of the rpc. */
#ifndef FV_RPC_GRPC_TRANSPORT_H
#define FV_RPC_GRPC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/addr.h"
#include "core/err.h"
#include "rpc/rpc.h"

typedef struct fv_grpc_transport fv_grpc_transport_t;

/* Where the instances of module are: cb(rc, addrs, n, data) exactly once, later, with every
 * healthy instance (addrs valid during the callback only); rc < 0, or n 0, when none. Returns
 * 0, or < 0 (cb will not run). */
typedef fv_host_port_t fv_grpc_addr_t;
typedef void (*fv_grpc_resolved_cb)(int rc, const fv_grpc_addr_t *addrs, size_t n, void *data);
typedef int (*fv_grpc_resolve_fn)(void *rdata, const char *module, fv_grpc_resolved_cb cb,
                                  void *data);

/* A transport for rpc (borrowed) that finds modules with resolve(rdata, ...); answers over
 * max_message_bytes (0: FV_RPC_DEFAULT_MAX_MESSAGE) fail FV_ETOOBIG. Sets itself as rpc's
 * remote. 0 or FV_EINVAL. */
FV_MUST_USE int fv_grpc_transport_new(uv_loop_t *loop, fv_rpc_t *rpc, fv_grpc_resolve_fn resolve,
                                      void *rdata, size_t max_message_bytes,
                                      fv_grpc_transport_t **out);

/* How long a connect may take (3 s), how long a connection with calls under way may be silent
 * before it gets a PING (5 s), and how long that PING may go unanswered before the connection
 * is given up (5 s); 0 keeps a default. A connection given up this way fails its calls as a
 * dropped one does (retried elsewhere when they may be). */
void fv_grpc_transport_set_timeouts(fv_grpc_transport_t *t, uint32_t connect_ms,
                                    uint32_t ping_idle_ms, uint32_t ping_ack_ms);

/* Calls under way end with FV_ECANCELED, connections close, then cb(data) runs from the loop
 * and the memory is gone. Call before closing the rpc. NULL-safe; cb may be NULL. */
void fv_grpc_transport_close(fv_grpc_transport_t *t, void (*cb)(void *data), void *data);

#endif
