/* sha1.h - SHA-1 (FIPS 180-4), for the one place a protocol still asks for it: the WebSocket
 * handshake's Sec-WebSocket-Accept (RFC 6455 section 4.2.2). Not for anything secret. */
#ifndef FV_CORE_SHA1_H
#define FV_CORE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define FV_SHA1_LEN 20

typedef struct fv_sha1 {
    uint32_t h[5];
    uint64_t total;             /* bytes hashed so far */
    uint8_t block[64];
    size_t used;                /* bytes waiting in block */
} fv_sha1_t;

void fv_sha1_init(fv_sha1_t *c);
void fv_sha1_update(fv_sha1_t *c, const void *data, size_t len);
void fv_sha1_final(fv_sha1_t *c, uint8_t out[FV_SHA1_LEN]);

#endif
