/* str.h - C string helpers that the C library lacks in a safe form. */
#ifndef FV_CORE_STR_H
#define FV_CORE_STR_H

#include <stddef.h>

/* Copies src into dst (cap bytes, cap > 0), truncating, always NUL-terminated. Returns the length
 * of src, so a result >= cap means truncated (as BSD strlcpy). Cheaper than snprintf("%s"). */
size_t fv_str_copy(char *dst, size_t cap, const char *src);

#endif
