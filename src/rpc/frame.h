/* frame.h - gRPC's length-prefixed message framing: one byte "compressed" flag, four bytes of
 * big-endian length, then the message. Calls between modules carry their messages this way in
 * one process exactly as gRPC carries them over HTTP/2, so one encoder and one decoder serve
 * both. Pure functions: no allocation, no I/O. */
#ifndef FV_RPC_FRAME_H
#define FV_RPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define FV_RPC_FRAME_HEADER 5

/* Writes the prefix of an uncompressed message of len bytes into out[0..5). */
void fv_rpc_frame_header(uint8_t out[FV_RPC_FRAME_HEADER], uint32_t len);

/* Reads one frame at the start of data[0..len): 0 with *msg (a view into data) and *used (the
 * frame's bytes); FV_EAGAIN when data holds only part of a frame (nothing consumed);
 * FV_EPROTO for a flag other than 0 or 1; FV_EINVAL for a compressed frame (we negotiate no
 * compression, so a peer must not send one); FV_ETOOBIG when the announced
 * length is over max_msg (told from the header alone, before the body arrives). */
FV_MUST_USE int fv_rpc_frame_parse(const uint8_t *data, size_t len, size_t max_msg,
                                   fv_slice_t *msg, size_t *used);

/* The same, for a peer that negotiated a grpc-encoding: a compressed frame is 0 too, with
 * *compressed set (max_msg then bounds the compressed bytes; the caller bounds what they
 * inflate to). */
FV_MUST_USE int fv_rpc_frame_parse_any(const uint8_t *data, size_t len, size_t max_msg,
                                       fv_slice_t *msg, size_t *used, bool *compressed);

#endif
