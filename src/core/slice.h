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

/* HTTP's comma-separated lists (RFC 9110 sec. 5.6.1), and config values written the same way:
 * the next element of list from *pos, without the optional white space around it; empty
 * elements are skipped. true and *item, or false at the end. */
static inline bool fv_slice_list_next(fv_slice_t list, size_t *pos, fv_slice_t *item)
{
    size_t i = *pos;
    for (;;) {
        while (i < list.len && (list.ptr[i] == ' ' || list.ptr[i] == '\t' || list.ptr[i] == ','))
            i++;
        if (i >= list.len) {
            *pos = i;
            return false;
        }
        size_t start = i;
        while (i < list.len && list.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list.ptr[end - 1] == ' ' || list.ptr[end - 1] == '\t'))
            end--;
        if (end > start) {
            *pos = i;
            *item = fv_slice(list.ptr + start, end - start);
            return true;
        }
    }
}

/* Whether list holds item, compared exactly or without case. */
static inline bool fv_slice_list_has(fv_slice_t list, fv_slice_t item, bool nocase)
{
    size_t pos = 0;
    fv_slice_t e;
    while (fv_slice_list_next(list, &pos, &e))
        if (nocase ? fv_slice_caseeq(e, item) : fv_slice_eq(e, item))
            return true;
    return false;
}

#endif
