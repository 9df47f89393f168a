/* shared.c - reference-counted byte buffers; small ones inline after the header, adopted ones
 * by pointer. */
#include "core/shared.h"

#include <string.h>

#include "core/alloc.h"

struct fv_shared {
    uint32_t refs;
    size_t len;
    char *adopted;              /* the buffer when adopted; NULL when the bytes follow */
    uint8_t inline_data[];
};

fv_shared_t *fv_shared_new(const void *data, size_t len)
{
    fv_shared_t *sh = fv_try_malloc(sizeof(*sh) + len);
    if (!sh)
        return NULL;
    sh->refs = 1;
    sh->len = len;
    sh->adopted = NULL;
    if (len)
        memcpy(sh->inline_data, data, len);
    return sh;
}

fv_shared_t *fv_shared_adopt(char *data, size_t len)
{
    fv_shared_t *sh = fv_try_malloc(sizeof(*sh));
    if (!sh) {
        fv_free(data);
        return NULL;
    }
    sh->refs = 1;
    sh->len = len;
    sh->adopted = data;
    return sh;
}

void fv_shared_ref(fv_shared_t *sh)
{
    sh->refs++;
}

void fv_shared_unref(fv_shared_t *sh)
{
    if (!sh || --sh->refs > 0)
        return;
    fv_free(sh->adopted);
    fv_free(sh);
}

void fv_shared_release(void *sh)
{
    fv_shared_unref(sh);
}

size_t fv_shared_len(const fv_shared_t *sh)
{
    return sh->len;
}

const uint8_t *fv_shared_data(const fv_shared_t *sh)
{
    return sh->adopted ? (const uint8_t *)sh->adopted : sh->inline_data;
}
