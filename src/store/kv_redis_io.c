/* kv_redis_io.c - the I/O glue under kv_redis.c: a libuv adapter for hiredis's async context
 * and a pool of reply objects for its reader.
 *
 * hiredis's own libuv adapter (adapters/libuv.h in 0.14) drops poll errors on the floor, so a
 * connect() refused asynchronously (EPOLLERR) leaves the context waiting forever, and it waits
 * a poll round before every write. This one hands errors to hiredis as I/O events (hiredis
 * then sees the socket error and reports it) and flushes writes just before the loop polls.
 * Not here: commands, replies, reconnects (kv_redis.c). */
#include "store/kv_redis_io.h"

#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"

/* ---- reply objects ------------------------------------------------------------------------- */

/* hiredis lets the caller build reply objects; ours come from a per-store free list and keep
 * short strings inline, so a reply costs no malloc in the steady state. Objects still have
 * redisReply's layout (it is their first member), so hiredis and deliver() read them as usual;
 * hiredis releases every object through freeObject below. */
#define POOL_MAX 1024
#define POOL_INLINE 48

typedef struct pobj pobj_t;
struct pobj {
    redisReply r;
    pobj_t *next;
    struct fv__kv_rpool *pool;
    char small[POOL_INLINE];
};

struct fv__kv_rpool {
    pobj_t *free;
    size_t nfree;
};

static pobj_t *pobj_get(fv__kv_rpool_t *pool, const redisReadTask *task)
{
    pobj_t *o = pool->free;
    if (o) {
        pool->free = o->next;
        pool->nfree--;
    } else if (!(o = fv_try_malloc(sizeof(*o)))) {
        return NULL;
    }
    memset(&o->r, 0, sizeof(o->r));
    o->pool = pool;
    o->r.type = task->type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &o->r;
    }
    return o;
}

static void pobj_free(void *p)
{
    if (!p)
        return;
    pobj_t *o = p;
    if (o->r.type == REDIS_REPLY_ARRAY && o->r.element) {
        for (size_t i = 0; i < o->r.elements; i++)
            pobj_free(o->r.element[i]);
        fv_free(o->r.element);
    }
    if (o->r.str && o->r.str != o->small)
        fv_free(o->r.str);
    fv__kv_rpool_t *pool = o->pool;
    if (pool->nfree < POOL_MAX) {
        o->next = pool->free;
        pool->free = o;
        pool->nfree++;
    } else {
        fv_free(o);
    }
}

static void *pobj_string(const redisReadTask *task, char *str, size_t len)
{
    char *buf = len < POOL_INLINE ? NULL : fv_try_malloc(len + 1);
    if (len >= POOL_INLINE && !buf)
        return NULL;
    pobj_t *o = pobj_get(task->privdata, task);
    if (!o) {
        fv_free(buf);
        return NULL;
    }
    o->r.str = buf ? buf : o->small;
    memcpy(o->r.str, str, len);
    o->r.str[len] = '\0';
    o->r.len = len;
    return o;
}

static void *pobj_array(const redisReadTask *task, int elements)
{
    redisReply **el = NULL;
    if (elements > 0 && !(el = fv_try_malloc((size_t)elements * sizeof(*el))))
        return NULL;
    if (el)
        memset(el, 0, (size_t)elements * sizeof(*el));
    pobj_t *o = pobj_get(task->privdata, task);
    if (!o) {
        fv_free(el);
        return NULL;
    }
    o->r.element = el;
    o->r.elements = elements > 0 ? (size_t)elements : 0;
    return o;
}

static void *pobj_integer(const redisReadTask *task, long long v)
{
    pobj_t *o = pobj_get(task->privdata, task);
    if (o)
        o->r.integer = v;
    return o;
}

static void *pobj_nil(const redisReadTask *task)
{
    /* The task carries the type of the nil bulk or array ($-1, *-1), not NIL. */
    pobj_t *o = pobj_get(task->privdata, task);
    if (o)
        o->r.type = REDIS_REPLY_NIL;
    return o;
}

static redisReplyObjectFunctions pobj_fns = {
    .createString = pobj_string,
    .createArray = pobj_array,
    .createInteger = pobj_integer,
    .createNil = pobj_nil,
    .freeObject = pobj_free,
};

fv__kv_rpool_t *fv__kv_rpool_new(void)
{
    return fv_calloc(1, sizeof(fv__kv_rpool_t));
}

void fv__kv_rpool_free(fv__kv_rpool_t *pool)
{
    if (!pool)
        return;
    while (pool->free) {
        pobj_t *o = pool->free;
        pool->free = o->next;
        fv_free(o);
    }
    fv_free(pool);
}

void fv__kv_rpool_use(redisAsyncContext *ac, fv__kv_rpool_t *pool)
{
    ac->c.reader->fn = &pobj_fns;
    ac->c.reader->privdata = pool;
}

/* ---- libuv adapter ------------------------------------------------------------------------- */

/* Writes are flushed from a prepare handle, just before the loop next polls: every command
 * issued by the callbacks of one batch of replies (or by timers, or from outside the loop)
 * leaves in one write(), without first waiting a poll round for the socket to report
 * writable (hiredis's own adapter waits, which costs an epoll round trip per request at low
 * concurrency). The socket is polled for writability only while connecting and when a flush
 * could not empty the buffer. */
typedef struct uvev {
    redisAsyncContext *ac;        /* NULL once hiredis let go (cleanup) */
    uv_poll_t poll;
    uv_prepare_t flush;
    int events;                   /* what the poll watches */
    bool flushing;
    int open;                     /* handles not yet closed */
} uvev_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    uvev_t *e = h->data;
    /* An error means "look at the socket": both handlers notice it and tear down. */
    if (status < 0)
        events = e->events ? e->events : UV_READABLE;
    if (e->ac && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void ev_update(uvev_t *e, int events)
{
    if (events == e->events)
        return;
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void on_flush(uv_prepare_t *h)
{
    uvev_t *e = h->data;
    uv_prepare_stop(&e->flush);
    if (!e->ac)
        return;
    e->flushing = true;
    redisAsyncHandleWrite(e->ac);   /* may free the context (write error): e->ac goes NULL */
    e->flushing = false;
}

static void ev_add_read(void *p)
{
    uvev_t *e = p;
    ev_update(e, e->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    uvev_t *e = p;
    ev_update(e, e->events & ~UV_READABLE);
}

static void ev_add_write(void *p)
{
    uvev_t *e = p;
    /* Not connected yet, or the kernel buffer is full: wait for the socket. */
    if (!(e->ac->c.flags & REDIS_CONNECTED) || e->flushing)
        ev_update(e, e->events | UV_WRITABLE);
    else if (!(e->events & UV_WRITABLE))
        uv_prepare_start(&e->flush, on_flush);
}

static void ev_del_write(void *p)
{
    uvev_t *e = p;
    ev_update(e, e->events & ~UV_WRITABLE);
}

static void on_ev_closed(uv_handle_t *h)
{
    uvev_t *e = h->data;
    if (--e->open == 0)
        fv_free(e);
}

static void ev_cleanup(void *p)
{
    uvev_t *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, on_ev_closed);
    uv_close((uv_handle_t *)&e->flush, on_ev_closed);
}

int fv__kv_redis_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    uvev_t *e = fv_calloc(1, sizeof(*e));
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        fv_free(e);
        return REDIS_ERR;
    }
    uv_prepare_init(loop, &e->flush);
    e->open = 2;
    e->ac = ac;
    e->poll.data = e;
    e->flush.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return REDIS_OK;
}
