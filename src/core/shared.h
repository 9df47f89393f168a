/* shared.h - bytes shared by reference: one buffer that many writers queue at once (one event
 * sent to thousands of WebSocket clients, one registry answer to thousands of waiters), freed
 * when the last reference goes. Single-threaded: references are taken and dropped on the loop
 * thread. */
#ifndef FV_CORE_SHARED_H
#define FV_CORE_SHARED_H

#include <stddef.h>
#include <stdint.h>

typedef struct fv_shared fv_shared_t;

/* A copy of data[0..len) with one reference, the caller's; NULL when out of memory. */
fv_shared_t *fv_shared_new(const void *data, size_t len);
/* Takes over a buffer allocated with fv_malloc (no copy): one reference. NULL when out of
 * memory (data is then freed). */
fv_shared_t *fv_shared_adopt(char *data, size_t len);
void fv_shared_ref(fv_shared_t *sh);
void fv_shared_unref(fv_shared_t *sh);           /* NULL-safe */
/* fv_shared_unref with a void * argument, for release callbacks. */
void fv_shared_release(void *sh);
size_t fv_shared_len(const fv_shared_t *sh);
const uint8_t *fv_shared_data(const fv_shared_t *sh);

#endif
