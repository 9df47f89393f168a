/* alloc.h - the one place memory comes from.
 *
 * fv_malloc() and friends never return NULL: out of memory they log and abort, so use them for
 * small sizes we choose. Sizes that come from outside go through the fv_try_*() family after a
 * cap check, and the caller handles NULL. Every allocation passes through here so that tests can
 * make the Nth one fail (fv_alloc_fail_at()). */
#ifndef FV_CORE_ALLOC_H
#define FV_CORE_ALLOC_H

#include <stddef.h>

void *fv_malloc(size_t len);
void *fv_calloc(size_t count, size_t len);
void *fv_realloc(void *p, size_t len);
char *fv_strdup(const char *s);
char *fv_strndup(const char *s, size_t len);

/* NULL on failure (real or injected). */
void *fv_try_malloc(size_t len);
void *fv_try_realloc(void *p, size_t len);

/* NULL-safe. */
void fv_free(void *p);

/* Fault injection for tests: the nth fv_try_* call from now fails (1 = the next one); 0 turns
 * it off. fv_alloc_failed() tells whether the injected failure has fired. */
void fv_alloc_fail_at(unsigned long nth);
int fv_alloc_failed(void);

#endif
