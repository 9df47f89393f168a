/* str.c - C string helpers. */
#include "core/str.h"

#include <string.h>

size_t fv_str_copy(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    size_t n = len < cap ? len : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return len;
}
