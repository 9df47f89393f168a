/* grpc_interop.h - the standard interop service, grpc.testing.TestService (the .proto files of
 * the grpc-proto package), on a gRPC server: what any gRPC implementation's interop client
 * checks a server with. Served only when grpc.interop_service is on; never in production.
 *
 * EmptyCall, UnaryCall (a payload of response_size zero bytes, response_status sent back as
 * the call's status), StreamingOutputCall (one payload per response_parameters entry),
 * StreamingInputCall (the sum of the payload sizes), FullDuplexCall (each request's payloads
 * as it comes), HalfDuplexCall (all of them after the client's end). x-grpc-test-echo-initial
 * comes back as an answer header and x-grpc-test-echo-trailing-bin as a trailer. Not served:
 * compression (a request that expects it is INVALID_ARGUMENT), interval_us (answers go at
 * once), CacheableUnaryCall and UnimplementedCall (UNIMPLEMENTED, as the interop cases want of
 * the latter). */
#ifndef FV_NET_GRPC_INTEROP_H
#define FV_NET_GRPC_INTEROP_H

#include "core/err.h"
#include "net/grpc_server.h"

/* Adds TestService's methods to g. 0, FV_EEXIST. */
FV_MUST_USE int fv_grpc_interop_serve(fv_grpc_server_t *g);

#endif
