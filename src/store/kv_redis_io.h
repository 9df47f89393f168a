/* kv_redis_io.h - libuv adapter and reply-object pool for hiredis, used by kv_redis.c only. */
#ifndef FV_STORE_KV_REDIS_IO_H
#define FV_STORE_KV_REDIS_IO_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <uv.h>

/* Attach ac to loop (REDIS_OK / REDIS_ERR). The adapter's memory goes when hiredis frees ac
 * and the loop has run the close callbacks. */
int fv__kv_redis_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* Reply objects for a store's connections, recycled through a free list. The pool must outlive
 * every context that uses it. */
typedef struct fv__kv_rpool fv__kv_rpool_t;
fv__kv_rpool_t *fv__kv_rpool_new(void);
void fv__kv_rpool_free(fv__kv_rpool_t *pool);
/* Make ac's reader build its replies from pool. */
void fv__kv_rpool_use(redisAsyncContext *ac, fv__kv_rpool_t *pool);

#endif
