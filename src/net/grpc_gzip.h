/* grpc_gzip.h - inflating a gRPC message sent with grpc-encoding: gzip. The ceiling is the
 * output buffer's: a message that inflates past it stops there (a small "zip bomb" never
 * makes us hold more than one maximal message). Pure: no I/O; memory only in out. */
#ifndef FV_NET_GRPC_GZIP_H
#define FV_NET_GRPC_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Appends the inflated bytes of the one gzip member z[0..len) to out. 0; FV_ETOOBIG when they
 * pass out's ceiling; FV_EPROTO when z is not exactly one whole gzip member (corrupt,
 * truncated, or bytes after it); FV_ENOMEM. On an error out holds a part: reset it. */
FV_MUST_USE int fv_grpc_gunzip(const uint8_t *z, size_t len, fv_buf_t *out);

#endif
