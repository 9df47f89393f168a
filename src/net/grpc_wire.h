/* grpc_wire.h - the text parts of gRPC over HTTP/2 that are not framing (rpc/frame.h has the
 * length prefix): the grpc-timeout header, the percent-encoded grpc-message, the request path.
 * Pure functions: no allocation beyond the caller's buffer, no I/O. */
#ifndef FV_NET_GRPC_WIRE_H
#define FV_NET_GRPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

/* gRPC status codes (the wire numbers). */
enum {
    FV_GRPC_OK = 0,
    FV_GRPC_CANCELLED = 1,
    FV_GRPC_UNKNOWN = 2,
    FV_GRPC_INVALID_ARGUMENT = 3,
    FV_GRPC_DEADLINE_EXCEEDED = 4,
    FV_GRPC_NOT_FOUND = 5,
    FV_GRPC_RESOURCE_EXHAUSTED = 8,
    FV_GRPC_UNIMPLEMENTED = 12,
    FV_GRPC_INTERNAL = 13,
    FV_GRPC_UNAVAILABLE = 14,
};

/* grpc-timeout ("1-8 digits" then H, M, S, m, u or n) as milliseconds, rounded up so a timeout
 * never grows shorter, at least 1 and at most max_ms. 0 with *ms, or FV_EINVAL. */
FV_MUST_USE int fv_grpc_timeout_parse(fv_slice_t v, uint32_t max_ms, uint32_t *ms);

/* Appends msg percent-encoded as grpc-message wants it: printable ASCII except '%' as is,
 * every other byte as %XX. 0, FV_ETOOBIG, FV_ENOMEM. */
FV_MUST_USE int fv_grpc_message_encode(fv_buf_t *out, const char *msg);

/* Splits "/<service>/<method>": 0 with both (views into path, neither empty), or FV_EINVAL. */
FV_MUST_USE int fv_grpc_path_split(fv_slice_t path, fv_slice_t *service, fv_slice_t *method);

#endif
