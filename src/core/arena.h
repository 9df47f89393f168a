/* arena.h - request-scoped memory that dies in one go.
 *
 * Parsed headers, temporary strings and JSON for one request come from its arena; disposing
 * the arena frees them all and runs the registered cleanups (for non-memory resources such as
 * jansson values), newest first. */
#ifndef FV_CORE_ARENA_H
#define FV_CORE_ARENA_H

#include <stddef.h>

#include "core/slice.h"

typedef struct fv_arena_chunk fv_arena_chunk_t;
typedef struct fv_arena_cleanup fv_arena_cleanup_t;

typedef struct fv_arena {
    fv_arena_chunk_t *chunks;      /* newest first */
    fv_arena_cleanup_t *cleanups;  /* newest first */
    size_t chunk_len;              /* size of ordinary chunks */
} fv_arena_t;

void fv_arena_init(fv_arena_t *a, size_t chunk_len);
/* Runs the cleanups, frees every chunk; a is ready for reuse after. */
void fv_arena_dispose(fv_arena_t *a);

/* 16-byte aligned; never NULL (fixed-size callers) */
void *fv_arena_alloc(fv_arena_t *a, size_t len);
char *fv_arena_strndup(fv_arena_t *a, const char *s, size_t len);
char *fv_arena_slice_dup(fv_arena_t *a, fv_slice_t s);
char *fv_arena_printf(fv_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fn(data) runs when the arena is disposed. */
void fv_arena_on_dispose(fv_arena_t *a, void (*fn)(void *data), void *data);

#endif
