/* alloc.c - allocation with abort-on-OOM for fixed sizes and checked allocation for outside
 * sizes, plus the fault-injection counter the fault tests drive. */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plain globals: fault injection is a single-threaded test facility. */
static unsigned long fail_countdown;
static int fail_fired;

static void oom(size_t len)
{
    /* No logger here: it may itself need memory. */
    fprintf(stderr, "finalverse: out of memory allocating %zu bytes\n", len);
    abort();
}

static int inject_failure(void)
{
    if (fail_countdown == 0)
        return 0;
    if (--fail_countdown == 0) {
        fail_fired = 1;
        return 1;
    }
    return 0;
}

void fv_alloc_fail_at(unsigned long nth)
{
    fail_countdown = nth;
    fail_fired = 0;
}

int fv_alloc_failed(void)
{
    return fail_fired;
}

void *fv_malloc(size_t len)
{
    void *p = malloc(len ? len : 1);
    if (!p)
        oom(len);
    return p;
}

void *fv_calloc(size_t count, size_t len)
{
    void *p = calloc(count ? count : 1, len ? len : 1);
    if (!p)
        oom(count * len);
    return p;
}

void *fv_realloc(void *p, size_t len)
{
    void *q = realloc(p, len ? len : 1);
    if (!q)
        oom(len);
    return q;
}

char *fv_strdup(const char *s)
{
    return fv_strndup(s, strlen(s));
}

char *fv_strndup(const char *s, size_t len)
{
    char *p = fv_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *fv_try_malloc(size_t len)
{
    if (inject_failure())
        return NULL;
    return malloc(len ? len : 1);
}

void *fv_try_realloc(void *p, size_t len)
{
    if (inject_failure())
        return NULL;
    return realloc(p, len ? len : 1);
}

void fv_free(void *p)
{
    free(p);
}
