/* peers.h - where the modules served by other processes are, for the gRPC transport's resolver
 * (see peers.c). Runtime-internal. */
#ifndef FV_RUNTIME_PEERS_H
#define FV_RUNTIME_PEERS_H

#include <uv.h>

#include "registry/registry.h"
#include "rpc/grpc_transport.h"

typedef struct fv__peers fv__peers_t;

/* Peers found through reg (borrowed; it must outlive the peers' close). */
FV_MUST_USE int fv__peers_new(uv_loop_t *loop, fv_registry_client_t *reg, fv__peers_t **out);

/* A fv_grpc_resolve_fn (rdata: the peers): cb runs once, later, with an instance of module. */
int fv__peers_resolve(void *peers, const char *module, fv_grpc_resolved_cb cb, void *data);

/* Stops the watches, answers every resolution still owed with FV_ECANCELED (from the loop),
 * then frees the peers and runs done(data). NULL-safe. */
void fv__peers_close(fv__peers_t *p, void (*done)(void *data), void *data);

#endif
