/* hash.c - FNV-1a (see hash.h). */
#include "core/hash.h"

uint64_t fv_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;      /* the 64-bit FNV prime */
    return h;
}
