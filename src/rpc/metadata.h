/* metadata.h - a call's custom metadata: a bounded list of (name, value) pairs, as gRPC
 * carries them in request headers and in answer headers and trailers.
 *
 * Names are lower case, of [0-9a-z_.-]; names ending in "-bin" hold any bytes (base64 on the
 * wire, raw here), other values printable ASCII (0x20..0x7e). The names the transport itself
 * uses (pseudo-headers, grpc-*, content-type, te, user-agent, the HTTP framing and encoding
 * headers content-length, content-encoding, accept-encoding, trailer, and the
 * connection-specific headers HTTP/2 forbids) are reserved: fv_md_add refuses them, and the
 * gRPC server does not pass them on as metadata. A name may repeat; lookups find the first. */
#ifndef FV_RPC_METADATA_H
#define FV_RPC_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

#define FV_MD_DEFAULT_MAX_BYTES (8u * 1024u)   /* names and values of one list together */

typedef struct fv_md {
    fv_buf_t buf;      /* records of: name length (1 byte), name, value length (4), value */
    size_t count;
    size_t bytes;      /* names and values, counted against max_bytes */
    size_t max_bytes;
} fv_md_t;

/* max_bytes 0: FV_MD_DEFAULT_MAX_BYTES. Nothing is allocated until the first add. */
void fv_md_init(fv_md_t *md, size_t max_bytes);
void fv_md_dispose(fv_md_t *md);

/* Whether name may be used for custom metadata (well formed and not reserved). */
bool fv_md_name_ok(fv_slice_t name);
/* Whether name is binary metadata (ends in "-bin"). */
bool fv_md_name_is_bin(fv_slice_t name);

/* Appends a copy of (name, value[0..len)). 0, FV_EINVAL (a reserved or malformed name, or a
 * text value with a byte outside 0x20..0x7e), FV_ETOOBIG (over max_bytes), FV_ENOMEM. */
FV_MUST_USE int fv_md_add(fv_md_t *md, fv_slice_t name, const void *value, size_t len);

/* The i-th pair, i < count; slices valid until the next add or dispose. */
void fv_md_at(const fv_md_t *md, size_t i, fv_slice_t *name, fv_slice_t *value);

/* The first value under name, FV_SLICE_NULL when there is none. */
fv_slice_t fv_md_get(const fv_md_t *md, const char *name);

/* Appends every pair of src to dst. 0 or fv_md_add's codes. */
FV_MUST_USE int fv_md_copy(fv_md_t *dst, const fv_md_t *src);

/* ---- on the wire (gRPC over HTTP/2) ---- */

/* Base64 bytes the -bin values of md take on the wire (reserve them in enc before
 * fv_md_wire_at, so that slices into enc stay put). */
size_t fv_md_wire_bytes(const fv_md_t *md);

/* The i-th pair as a header field: a -bin value is base64-encoded (unpadded) into enc, which
 * holds the room (fv_md_wire_bytes); *value then points into it. */
void fv_md_wire_at(const fv_md_t *md, size_t i, fv_buf_t *enc, fv_slice_t *name,
                   fv_slice_t *value);

/* Adds a header field as received: names that are not custom metadata (fv_md_name_ok) are
 * skipped (0), a -bin value is base64, padded or not, perhaps several joined by commas; a text
 * value outside printable ASCII is skipped (0). 0, FV_EINVAL (not base64), FV_ETOOBIG,
 * FV_ENOMEM. */
FV_MUST_USE int fv_md_add_wire(fv_md_t *md, fv_slice_t name, fv_slice_t value);

#endif
