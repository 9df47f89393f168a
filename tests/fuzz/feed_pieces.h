/* feed_pieces.h - for fuzz targets that drive a socketless connection: the input's first byte
 * picks how the rest is cut into reads (1 to 64 bytes, or whole from 128 on), so one corpus
 * covers both a fast client and one whose bytes trickle in. */
#ifndef FV_FUZZ_FEED_PIECES_H
#define FV_FUZZ_FEED_PIECES_H

#include <stddef.h>
#include <stdint.h>

#include "net/http_internal.h"

/* Feeds data[1..size) to c in pieces chosen by data[0]. */
static inline void fuzz_feed_pieces(fv_sock_t *c, const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t piece = data[0] >= 128 ? size : (size_t)data[0] % 64 + 1;
    for (size_t off = 1; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        fv__http_conn_feed(c, (const char *)data + off, n);
        off += n;
    }
}

#endif
