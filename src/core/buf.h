/* buf.h - a growable byte buffer with a ceiling.
 *
 * Every buffer that grows with outside input has a maximum (from config); appending past it
 * fails with FV_ETOOBIG and leaves the contents untouched. The bytes are always followed by a
 * NUL that is not counted in len, so a buffer of text can be used as a C string. */
#ifndef FV_CORE_BUF_H
#define FV_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/slice.h"

typedef struct fv_buf {
    char *ptr;     /* NULL until the first append; owned */
    size_t len;
    size_t cap;
    size_t max;    /* ceiling on len; 0 = none (only for sizes we choose) */
} fv_buf_t;

void fv_buf_init(fv_buf_t *b, size_t max);
void fv_buf_dispose(fv_buf_t *b);
void fv_buf_reset(fv_buf_t *b);   /* len = 0, keeps the memory */

/* 0, FV_ETOOBIG (over max) or FV_ENOMEM. */
FV_MUST_USE int fv_buf_reserve(fv_buf_t *b, size_t extra);
FV_MUST_USE int fv__buf_append_slow(fv_buf_t *b, const void *data, size_t len);

/* Appends len bytes. Inline for the common case that they fit (responses are built from many
 * small pieces); growing and the ceiling are handled out of line. */
FV_MUST_USE static inline int fv_buf_append(fv_buf_t *b, const void *data, size_t len)
{
    if (b->ptr && len < b->cap - b->len && (b->max == 0 || len <= b->max - b->len)) {
        if (len)
            memcpy(b->ptr + b->len, data, len);
        b->len += len;
        b->ptr[b->len] = '\0';
        return 0;
    }
    return fv__buf_append_slow(b, data, len);
}

FV_MUST_USE static inline int fv_buf_append_str(fv_buf_t *b, const char *s)
{
    return fv_buf_append(b, s, strlen(s));
}
FV_MUST_USE int fv_buf_printf(fv_buf_t *b, const char *fmt, ...) FV_PRINTF(2, 3);

/* Writes the decimal digits of v at out (no NUL) and returns how many (1..20). */
size_t fv_fmt_u64(char out[20], uint64_t v);

/* Decimal text of v, without printf (hot paths: status lines, lengths, JSON numbers). */
FV_MUST_USE int fv_buf_append_u64(fv_buf_t *b, uint64_t v);

/* Removes the first n bytes. */
void fv_buf_consume(fv_buf_t *b, size_t n);

/* Hands the memory to the caller (who fv_free()s it) and leaves b empty. */
char *fv_buf_steal(fv_buf_t *b, size_t *len);

static inline fv_slice_t fv_buf_slice(const fv_buf_t *b)
{
    return (fv_slice_t){b->ptr ? b->ptr : "", b->len};
}

#endif
