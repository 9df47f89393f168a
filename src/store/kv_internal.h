/* kv_internal.h - what kv.c (the interface) and the backends (kv_memory.c, kv_redis.c) share:
 * the handle, the validated request arguments, the ops table, the deferred-job queue and the
 * subscription registry. Not for use outside src/store/kv*. */
#ifndef FV_STORE_KV_INTERNAL_H
#define FV_STORE_KV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/defer.h"
#include "store/kv.h"

typedef enum fv__kv_op {
    FV__KV_GET,
    FV__KV_SET,
    FV__KV_DEL,
    FV__KV_INCRBY,
    FV__KV_CAS,
    FV__KV_EXPIRE,
    FV__KV_TTL,
    FV__KV_HSET,
    FV__KV_HGET,
    FV__KV_HGETALL,
    FV__KV_HDEL,
    FV__KV_ZADD,
    FV__KV_ZINCRBY,
    FV__KV_ZSCORE,
    FV__KV_ZREM,
    FV__KV_ZRANGE,
    FV__KV_PUBLISH,
    FV__KV_TAKE,
} fv__kv_op_t;

/* Arguments after validation; slices are borrowed for the duration of submit(). */
typedef struct fv__kv_args {
    fv__kv_op_t op;
    fv_slice_t key;      /* key, or channel for publish */
    fv_slice_t a;        /* field, member, expected (cas; ptr NULL = must not exist), message,
                            take's `unless` key */
    fv_slice_t b;        /* value */
    int64_t n1;          /* ttl_ms, delta, start, burst */
    int64_t n2;          /* stop, cost */
    double score;        /* zadd score, zincrby delta, take rate */
    unsigned flags;      /* FV_KV_NX/XX, FV_KV_REV */
} fv__kv_args_t;

struct fv_kv_sub {
    fv_kv_sub_t *next;
    fv_kv_t *kv;
    uint64_t id;
    char *name;          /* channel or pattern, owned, NUL-terminated for convenience */
    size_t len;
    bool pattern;
    bool dead;           /* unsubscribed: no more callbacks, freed when nobody iterates */
    bool ready;          /* READY delivered since the last LOST */
    fv_kv_message_cb cb;
    void *data;
};

/* A unit of deferred work: run() is called once from the loop with canceled = true when the
 * store closed first; run() frees the job. */
typedef struct fv__kv_job fv__kv_job_t;
struct fv__kv_job {
    fv_defer_t defer;             /* set by fv__kv_defer() */
    fv_kv_t *kv;                  /* set by fv__kv_defer() */
    void (*run)(fv_kv_t *kv, fv__kv_job_t *job, bool canceled);
};

typedef struct fv__kv_ops {
    const char *name;
    /* Fill kv->backend; kv->opts is already resolved. */
    int (*open)(fv_kv_t *kv, const char *url, fv_error_t *err);
    /* 0: cb will run later exactly once; <0: never. */
    int (*submit)(fv_kv_t *kv, const fv__kv_args_t *args, fv_kv_cb cb, void *data);
    /* NULL, or runs args within the call (a store in this process): 0 with *reply (whose
     * slices live until the next request), or < 0. */
    int (*run_now)(fv_kv_t *kv, const fv__kv_args_t *args, fv_kv_reply_t *reply);
    /* A new subscription (sub is linked already). */
    void (*sub_add)(fv_kv_t *kv, fv_kv_sub_t *sub);
    /* The last live subscription to (name, pattern) went away. */
    void (*sub_remove)(fv_kv_t *kv, fv_slice_t name, bool pattern);
    /* Cancel everything in flight (callbacks get FV_ECANCELED), close handles, free the
     * backend, then call done(kv) from the loop. Queued jobs are canceled by kv.c before. */
    void (*close)(fv_kv_t *kv, void (*done)(fv_kv_t *kv));
} fv__kv_ops_t;

struct fv_kv {
    uv_loop_t *loop;
    const fv__kv_ops_t *ops;
    void *backend;
    fv_kv_opts_t opts;            /* resolved; snapshot_path owned (or NULL) */
    bool closing;
    fv_kv_close_cb close_cb;
    void *close_data;
    fv_defer_queue_t jobs;        /* one batch of jobs per loop turn; its close ends ours */
    fv_kv_sub_t *subs;
    uint64_t next_sub_id;
    int dispatching;              /* depth of sub-list iteration; frees wait for 0 */
};

extern const fv__kv_ops_t fv__kv_memory_ops;
extern const fv__kv_ops_t fv__kv_redis_ops;

/* Queue a job to run from the loop. */
void fv__kv_defer(fv_kv_t *kv, fv__kv_job_t *job);
/* Queue cb(kv, status, NULL, data) from the loop (an immediate error). */
void fv__kv_fail_later(fv_kv_t *kv, int status, fv_kv_cb cb, void *data);

/* The token bucket of fv_kv_take(), for the memory backend (the Redis script does the same in
 * Lua): *tokens and *ts_ms are the bucket's state (a fresh bucket: burst, now); returns the
 * reply value and updates the state. *ttl_ms is how long until the bucket is full again. */
int64_t fv__kv_bucket_take(double *tokens, uint64_t *ts_ms, uint64_t now_ms, double rate,
                           int64_t burst, int64_t cost, uint64_t *ttl_ms);

/* Subscription registry, for the backends. */
/* Deliver to live subscriptions whose (name, pattern) is exactly this; returns how many. */
size_t fv__kv_dispatch(fv_kv_t *kv, bool pattern, fv_slice_t name, fv_slice_t channel,
                       fv_slice_t message);
/* Deliver to every live subscription matching channel (exactly or by glob); returns how many. */
size_t fv__kv_deliver(fv_kv_t *kv, fv_slice_t channel, fv_slice_t message);
/* READY to live subs on (name, pattern) that are not ready. */
void fv__kv_subs_ready(fv_kv_t *kv, bool pattern, fv_slice_t name);
/* READY to one sub by id, if still live and not ready. */
void fv__kv_sub_ready_id(fv_kv_t *kv, uint64_t id);
/* LOST to every ready live sub. */
void fv__kv_subs_lost(fv_kv_t *kv);
/* Glob match as Redis's PSUBSCRIBE: * ? [set] [^set] [a-z] \x. */
bool fv__kv_glob_match(fv_slice_t pattern, fv_slice_t str);

#endif
