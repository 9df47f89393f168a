/* grpc_gzip.c - inflating gzip messages within a ceiling (see grpc_gzip.h). */
#include "net/grpc_gzip.h"

#include <limits.h>

#include <zlib.h>

/* Inflated in pieces of this size on the stack, so a bomb is caught before it is stored. */
#define GUNZIP_CHUNK 16384

int fv_grpc_gunzip(const uint8_t *z, size_t len, fv_buf_t *out)
{
    if (len > UINT_MAX)
        return FV_ETOOBIG;
    z_stream s = {0};
    /* 16 + window bits: a gzip header and trailer (CRC and length checked), not zlib's */
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
        return FV_ENOMEM;
    s.next_in = (Bytef *)(uintptr_t)z;   /* zlib's API is not const; it only reads input */
    s.avail_in = (uInt)len;
    uint8_t chunk[GUNZIP_CHUNK];
    int rc = 0;
    for (;;) {
        s.next_out = chunk;
        s.avail_out = sizeof(chunk);
        int zr = inflate(&s, Z_NO_FLUSH);
        size_t got = sizeof(chunk) - s.avail_out;
        if (got && (rc = fv_buf_append(out, chunk, got)) < 0)
            break;
        if (zr == Z_STREAM_END) {
            rc = s.avail_in ? FV_EPROTO : 0;   /* one member, nothing after it */
            break;
        }
        if (zr == Z_MEM_ERROR) {
            rc = FV_ENOMEM;
            break;
        }
        /* each round starts with a free chunk, so Z_BUF_ERROR (no progress) means the
         * input ended before the member did */
        if (zr != Z_OK) {
            rc = FV_EPROTO;
            break;
        }
    }
    inflateEnd(&s);
    return rc;
}
