/* id.c - request ids from an atomic counter; random ids from libsodium. */
#include "core/id.h"

#include <sodium.h>
#include <stdatomic.h>

static _Atomic uint64_t next_id = 1;

uint64_t fv_id_next(void)
{
    return atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
}

void fv_id_random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (bytes > sizeof(raw))
        bytes = sizeof(raw);
    /* sodium_init() is idempotent and thread-safe; randombytes works after it. */
    if (sodium_init() < 0) {
        for (size_t i = 0; i < bytes; i++)
            raw[i] = (unsigned char)(fv_id_next() * 2654435761u >> (i % 4 * 8));
    } else {
        randombytes_buf(raw, bytes);
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
}
