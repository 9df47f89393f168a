/* buf.c - growable buffer: doubling growth, a ceiling, a trailing NUL. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void fv_buf_init(fv_buf_t *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fv_buf_dispose(fv_buf_t *b)
{
    fv_free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void fv_buf_reset(fv_buf_t *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

int fv_buf_reserve(fv_buf_t *b, size_t extra)
{
    if (extra > ((size_t)-1) / 2 - b->len)
        return FV_ETOOBIG;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return FV_ETOOBIG;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    char *p = fv_try_realloc(b->ptr, cap);
    if (!p)
        return FV_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int fv__buf_append_slow(fv_buf_t *b, const void *data, size_t len)
{
    int rc = fv_buf_reserve(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int fv_buf_printf(fv_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return FV_EINVAL;
    if ((size_t)n < sizeof(small))
        return fv_buf_append(b, small, (size_t)n);
    int rc = fv_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void fv_buf_consume(fv_buf_t *b, size_t n)
{
    if (n >= b->len) {
        fv_buf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *fv_buf_steal(fv_buf_t *b, size_t *len)
{
    char *p = b->ptr;
    if (len)
        *len = b->len;
    if (!p)
        p = fv_calloc(1, 1);
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

size_t fv_fmt_u64(char out[20], uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + sizeof(tmp) - n, n);
    return n;
}

int fv_buf_append_u64(fv_buf_t *b, uint64_t v)
{
    char digits[20];
    return fv_buf_append(b, digits, fv_fmt_u64(digits, v));
}
