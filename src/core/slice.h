/* slice.h - a borrowed view of bytes. Not a C string: never assume a NUL after len. */
#ifndef FV_CORE_SLICE_H
#define FV_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct fv_slice {
    const char *ptr;
    size_t len;
} fv_slice_t;

#define FV_SLICE_LIT(s) ((fv_slice_t){(s), sizeof(s) - 1})
#define FV_SLICE_NULL ((fv_slice_t){NULL, 0})

static inline fv_slice_t fv_slice(const char *ptr, size_t len)
{
    return (fv_slice_t){ptr, len};
}

static inline fv_slice_t fv_slice_cstr(const char *s)
{
    return (fv_slice_t){s, s ? strlen(s) : 0};
}

static inline bool fv_slice_eq(fv_slice_t a, fv_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool fv_slice_eq_cstr(fv_slice_t a, const char *s)
{
    return fv_slice_eq(a, fv_slice_cstr(s));
}

static inline bool fv_slice_caseeq(fv_slice_t a, fv_slice_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool fv_slice_starts_with(fv_slice_t a, fv_slice_t prefix)
{
    return a.len >= prefix.len && memcmp(a.ptr, prefix.ptr, prefix.len) == 0;
}

#endif
