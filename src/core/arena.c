/* arena.c - bump allocation over a list of chunks; large requests get a chunk of their own so
 * they do not waste the current one. */
#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct fv_arena_chunk {
    fv_arena_chunk_t *next;
    size_t used;
    size_t cap;
    _Alignas(16) char data[];
};

struct fv_arena_cleanup {
    fv_arena_cleanup_t *next;
    void (*fn)(void *);
    void *data;
};

void fv_arena_init(fv_arena_t *a, size_t chunk_len)
{
    a->chunks = NULL;
    a->cleanups = NULL;
    a->chunk_len = chunk_len ? chunk_len : 4096;
}

void fv_arena_dispose(fv_arena_t *a)
{
    /* Cleanups first: they may read memory that lives in the chunks. */
    while (a->cleanups) {
        fv_arena_cleanup_t *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->data);
    }
    while (a->chunks) {
        fv_arena_chunk_t *c = a->chunks;
        a->chunks = c->next;
        fv_free(c);
    }
}

void *fv_arena_alloc(fv_arena_t *a, size_t len)
{
    len = (len + 15) & ~(size_t)15;
    fv_arena_chunk_t *c = a->chunks;
    if (c && c->cap - c->used >= len) {
        void *p = c->data + c->used;
        c->used += len;
        return p;
    }
    if (len > a->chunk_len / 4) {
        /* Big: its own chunk, linked behind the current one so bumping continues there. */
        fv_arena_chunk_t *big = fv_malloc(sizeof(*big) + len);
        big->used = big->cap = len;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            big->next = NULL;
            a->chunks = big;
        }
        return big->data;
    }
    c = fv_malloc(sizeof(*c) + a->chunk_len);
    c->cap = a->chunk_len;
    c->used = len;
    c->next = a->chunks;
    a->chunks = c;
    return c->data;
}

char *fv_arena_strndup(fv_arena_t *a, const char *s, size_t len)
{
    char *p = fv_arena_alloc(a, len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *fv_arena_slice_dup(fv_arena_t *a, fv_slice_t s)
{
    return fv_arena_strndup(a, s.ptr, s.len);
}

char *fv_arena_printf(fv_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = fv_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void fv_arena_on_dispose(fv_arena_t *a, void (*fn)(void *data), void *data)
{
    fv_arena_cleanup_t *c = fv_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}
