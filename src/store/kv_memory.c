/* kv_memory.c - the embedded kv backend (URL "memory:"): a hash table of strings, hashes and
 * sorted sets with TTLs, pub/sub within the process, and an optional snapshot file.
 *
 * Every request is copied into a job and executed from the loop in submission order, so the
 * reply can point straight into the store: nothing else runs while its callback does, and any
 * request the callback makes runs after it. Expiry is lazy (a key past its deadline is deleted
 * when touched) plus a sweep timer that visits a bounded number of buckets per tick.
 * The snapshot is written synchronously on the loop thread (temp file + fsync + rename), which
 * is a pause proportional to the data; fine for the embedded default, not meant for gigabytes.
 * Not here: the Redis protocol (kv_redis.c), validation and the job queue (kv.c). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"
#include "store/kv_dict.h"
#include "store/kv_internal.h"
#include "store/kv_zset.h"

enum { OBJ_STR = 1, OBJ_HASH = 2, OBJ_ZSET = 3 };

/* A key's value. Strings keep their bytes inline; a SET replaces the whole object. */
typedef struct mobj {
    int type;
    uint64_t expire_ms;           /* loop time (uv_now) deadline; 0 = none */
    union {
        fv__kv_dict_t *hash;      /* field -> entry, entry->v.ptr = blob_t */
        fv__kv_zset_t *zset;
    } u;
    size_t len;                   /* OBJ_STR */
    char bytes[];
} mobj_t;

typedef struct blob {
    size_t len;
    char bytes[];
} blob_t;

#define SWEEP_INTERVAL_MS 100
#define SWEEP_BUCKETS 1024

typedef struct kv_mem {
    fv_kv_t *kv;
    fv__kv_dict_t keys;
    uv_timer_t sweep;
    size_t sweep_cursor;
    uv_timer_t snap_timer;
    bool dirty;
    size_t max_keys;              /* new keys past it are refused (FV_ENOMEM), as Redis's
                                     maxmemory with noeviction: memory has a ceiling */
    uint64_t full_logged_ms;      /* when "full" was last logged */
    int open_handles;
    void (*done)(fv_kv_t *kv);
} kv_mem_t;

typedef struct mjob {
    fv__kv_job_t job;
    fv__kv_args_t args;           /* slices point into bytes */
    bool has_expected;
    fv_kv_cb cb;
    void *data;
    char bytes[];
} mjob_t;

/* ---- objects ------------------------------------------------------------------------------- */

static void hash_free(fv__kv_dict_t *h)
{
    size_t i;
    for (fv__kv_dent_t *e = fv__kv_dict_first(h, &i); e; e = fv__kv_dict_next(h, &i, e))
        fv_free(e->v.ptr);
    fv__kv_dict_dispose(h);
    fv_free(h);
}

static void obj_free(mobj_t *o)
{
    if (!o)
        return;
    if (o->type == OBJ_HASH)
        hash_free(o->u.hash);
    else if (o->type == OBJ_ZSET)
        fv__kv_zset_free(o->u.zset);
    fv_free(o);
}

static mobj_t *str_new(fv_slice_t v, uint64_t expire_ms)
{
    mobj_t *o = fv_try_malloc(sizeof(*o) + v.len + 1);
    if (!o)
        return NULL;
    memset(o, 0, sizeof(*o));
    o->type = OBJ_STR;
    o->expire_ms = expire_ms;
    o->len = v.len;
    if (v.len)
        memcpy(o->bytes, v.ptr, v.len);
    o->bytes[v.len] = '\0';
    return o;
}

static blob_t *blob_new(fv_slice_t v)
{
    blob_t *b = fv_try_malloc(sizeof(*b) + v.len + 1);
    if (b) {
        b->len = v.len;
        if (v.len)
            memcpy(b->bytes, v.ptr, v.len);
        b->bytes[v.len] = '\0';
    }
    return b;
}

static uint64_t now_ms(kv_mem_t *m)
{
    return uv_now(m->kv->loop);
}

static void key_delete(kv_mem_t *m, fv__kv_dent_t *e)
{
    obj_free(e->v.ptr);
    fv__kv_dict_remove(&m->keys, e);
    m->dirty = true;
}

static bool expired(kv_mem_t *m, const mobj_t *o)
{
    return o->expire_ms && o->expire_ms <= now_ms(m);
}

/* The live entry for key, or NULL (an expired one is deleted on the way). */
static fv__kv_dent_t *lookup(kv_mem_t *m, fv_slice_t key)
{
    fv__kv_dent_t *e = fv__kv_dict_find(&m->keys, key);
    if (e && expired(m, e->v.ptr)) {
        key_delete(m, e);
        return NULL;
    }
    return e;
}

static void sweep_some(kv_mem_t *m);

/* Replace (or create) key's object with o (taken: freed on failure). A new key past max_keys
 * is refused with FV_ENOMEM; keys that exist are still written, and expiry makes room. */
static int key_put(kv_mem_t *m, fv_slice_t key, mobj_t *o)
{
    int created;
    fv__kv_dent_t *e = fv__kv_dict_upsert(&m->keys, key, &created);
    if (!e) {
        obj_free(o);
        return FV_ENOMEM;
    }
    if (created && m->keys.count > m->max_keys) {
        fv__kv_dict_remove(&m->keys, e);
        sweep_some(m);                /* expired keys still counted make room first */
        if (m->keys.count < m->max_keys)
            return key_put(m, key, o);
        obj_free(o);
        uint64_t now = now_ms(m);
        if (!m->full_logged_ms || now - m->full_logged_ms >= 60000) {
            m->full_logged_ms = now;
            fv_log_warn("kv", "memory store full (%zu keys, max_keys): new keys refused until "
                        "some expire", m->max_keys);
        }
        return FV_ENOMEM;
    }
    obj_free(e->v.ptr);
    e->v.ptr = o;
    m->dirty = true;
    return 0;
}

/* Strict decimal int64 as Redis parses it: no spaces, no '+', no leading zeros, no "-0". */
static bool parse_i64(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    size_t i = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return false;
    }
    if (p[i] == '0' && (len - i > 1 || neg))
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

/* ---- operations ---------------------------------------------------------------------------- */

static void reply_int(fv_kv_reply_t *r, int64_t v)
{
    r->type = FV_KV_INT;
    r->integer = v;
}

/* The object of the wanted type at key: 0 and *out (NULL when missing), or FV_EINVAL when the
 * key holds another type. */
static int typed(kv_mem_t *m, fv_slice_t key, int type, fv__kv_dent_t **ent, mobj_t **out)
{
    fv__kv_dent_t *e = lookup(m, key);
    *out = NULL;
    if (ent)
        *ent = e;
    if (!e)
        return 0;
    mobj_t *o = e->v.ptr;
    if (o->type != type)
        return FV_EINVAL;
    *out = o;
    return 0;
}

static int op_set(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r)
{
    fv__kv_dent_t *e = lookup(m, a->key);
    if (((a->flags & FV_KV_NX) && e) || ((a->flags & FV_KV_XX) && !e)) {
        reply_int(r, 0);
        return 0;
    }
    mobj_t *o = str_new(a->b, a->n1 ? now_ms(m) + (uint64_t)a->n1 : 0);
    if (!o)
        return FV_ENOMEM;
    int rc = key_put(m, a->key, o);
    reply_int(r, 1);
    return rc;
}

static int op_incrby(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r)
{
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_STR, &e, &o);
    if (rc < 0)
        return rc;
    int64_t v = 0, sum;
    if (o && !parse_i64(o->bytes, o->len, &v))
        return FV_EINVAL;
    if (__builtin_add_overflow(v, a->n1, &sum))
        return FV_EINVAL;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, sum);
    mobj_t *no = str_new(fv_slice(buf, (size_t)n), o ? o->expire_ms : 0);
    if (!no)
        return FV_ENOMEM;
    if ((rc = key_put(m, a->key, no)) < 0)
        return rc;
    reply_int(r, sum);
    return 0;
}

static int op_cas(kv_mem_t *m, const mjob_t *j, fv_kv_reply_t *r)
{
    const fv__kv_args_t *a = &j->args;
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_STR, NULL, &o);
    if (rc < 0)
        return rc;
    bool match = j->has_expected ? o && fv_slice_eq(fv_slice(o->bytes, o->len), a->a) : !o;
    if (!match)
        return FV_ECONFLICT;
    mobj_t *no = str_new(a->b, a->n1 ? now_ms(m) + (uint64_t)a->n1 : 0);
    if (!no)
        return FV_ENOMEM;
    if ((rc = key_put(m, a->key, no)) < 0)
        return rc;
    reply_int(r, 1);
    return 0;
}

/* A bucket is a string "<tokens> <ms>", so that a snapshot keeps it: tokens in fixed point to
 * the millionth (older snapshots wrote %.17g, which parses the same), written without printf
 * and into the bucket's own bytes when they fit: a take runs on every forwarded request. */
static size_t bucket_format(char buf[64], double tokens, uint64_t ts)
{
    size_t n;
    if (tokens < 1e12) {
        uint64_t micro = (uint64_t)(tokens * 1e6 + 0.5);
        n = fv_fmt_u64(buf, micro / 1000000);
        buf[n++] = '.';
        uint64_t frac = micro % 1000000;
        for (int i = 5; i >= 0; i--, frac /= 10)
            buf[n + (size_t)i] = (char)('0' + frac % 10);
        n += 6;
    } else {
        n = (size_t)snprintf(buf, 40, "%.17g", tokens);
    }
    buf[n++] = ' ';
    n += fv_fmt_u64(buf + n, ts);
    return n;
}

static int op_take(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r)
{
    if (a->a.len && lookup(m, a->a)) {
        r->type = FV_KV_NIL;            /* `unless` exists: refused, nothing taken */
        return 0;
    }
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_STR, NULL, &o);
    if (rc < 0)
        return rc;
    uint64_t now = now_ms(m), ts = now, ttl;
    double tokens = (double)a->n1;
    if (o) {
        char *end, *tail;
        double t = strtod(o->bytes, &end);
        if (end == o->bytes || *end != ' ' || !(t >= 0) || end[1] < '0' || end[1] > '9')
            return FV_EINVAL;           /* the key holds something else */
        errno = 0;
        unsigned long long when = strtoull(end + 1, &tail, 10);
        if (*tail || errno)
            return FV_EINVAL;
        tokens = t;
        ts = when;
    }
    int64_t v = fv__kv_bucket_take(&tokens, &ts, now, a->score, a->n1, a->n2, &ttl);
    char buf[64];
    size_t n = bucket_format(buf, tokens, ts);
    if (o && n <= o->len) {
        memcpy(o->bytes, buf, n);
        o->bytes[n] = '\0';
        o->len = n;
        o->expire_ms = now + ttl;
        m->dirty = true;
    } else {
        mobj_t *no = str_new(fv_slice(buf, n), now + ttl);
        if (!no)
            return FV_ENOMEM;
        if ((rc = key_put(m, a->key, no)) < 0)
            return rc;
    }
    reply_int(r, v);
    return 0;
}

static int op_hset(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r)
{
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_HASH, &e, &o);
    if (rc < 0)
        return rc;
    if (!o) {
        o = fv_try_malloc(sizeof(*o));
        fv__kv_dict_t *h = fv_try_malloc(sizeof(*h));
        if (!o || !h) {
            fv_free(o);
            fv_free(h);
            return FV_ENOMEM;
        }
        memset(o, 0, sizeof(*o));
        o->type = OBJ_HASH;
        fv__kv_dict_init(h);
        o->u.hash = h;
        if ((rc = key_put(m, a->key, o)) < 0)
            return rc;
    }
    blob_t *b = blob_new(a->b);
    if (!b)
        return FV_ENOMEM;
    int created;
    fv__kv_dent_t *f = fv__kv_dict_upsert(o->u.hash, a->a, &created);
    if (!f) {
        fv_free(b);
        return FV_ENOMEM;
    }
    fv_free(f->v.ptr);
    f->v.ptr = b;
    m->dirty = true;
    reply_int(r, created);
    return 0;
}

static int op_hdel(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r)
{
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_HASH, &e, &o);
    if (rc < 0)
        return rc;
    fv__kv_dent_t *f = o ? fv__kv_dict_find(o->u.hash, a->a) : NULL;
    reply_int(r, f != NULL);
    if (f) {
        fv_free(f->v.ptr);
        fv__kv_dict_remove(o->u.hash, f);
        if (!o->u.hash->count)
            key_delete(m, e);
        m->dirty = true;
    }
    return 0;
}

static int zset_get(kv_mem_t *m, fv_slice_t key, bool create, fv__kv_dent_t **e, mobj_t **o)
{
    int rc = typed(m, key, OBJ_ZSET, e, o);
    if (rc < 0 || *o || !create)
        return rc;
    mobj_t *no = fv_try_malloc(sizeof(*no));
    fv__kv_zset_t *z = fv__kv_zset_new();
    if (!no || !z) {
        fv_free(no);
        fv__kv_zset_free(z);
        return FV_ENOMEM;
    }
    memset(no, 0, sizeof(*no));
    no->type = OBJ_ZSET;
    no->u.zset = z;
    if ((rc = key_put(m, key, no)) < 0)
        return rc;
    *e = fv__kv_dict_find(&m->keys, key);
    *o = no;
    return 0;
}

static int op_zadd(kv_mem_t *m, const fv__kv_args_t *a, bool incr, fv_kv_reply_t *r)
{
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc = zset_get(m, a->key, true, &e, &o);
    if (rc < 0)
        return rc;
    double score = a->score, old;
    if (incr && fv__kv_zset_score(o->u.zset, a->a, &old) == 0)
        score += old;
    if (isnan(score))
        return FV_EINVAL;
    int created;
    if ((rc = fv__kv_zset_add(o->u.zset, a->a, score, &created)) < 0) {
        if (!fv__kv_zset_count(o->u.zset))
            key_delete(m, e);
        return rc;
    }
    m->dirty = true;
    if (incr) {
        r->type = FV_KV_SCORE;
        r->score = score;
    } else {
        reply_int(r, created);
    }
    return 0;
}

static int op_zrange(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r, fv_kv_elem_t **elems)
{
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc = zset_get(m, a->key, false, &e, &o);
    r->type = FV_KV_ARRAY;
    if (rc < 0 || !o)
        return rc;
    int64_t n = (int64_t)fv__kv_zset_count(o->u.zset);
    int64_t start = a->n1 < 0 ? n + a->n1 : a->n1, stop = a->n2 < 0 ? n + a->n2 : a->n2;
    if (start < 0)
        start = 0;
    if (stop >= n)
        stop = n - 1;
    if (start > stop || start >= n)
        return 0;
    size_t count = (size_t)(stop - start + 1);
    fv_kv_elem_t *out = fv_try_malloc(count * sizeof(*out));
    if (!out)
        return FV_ENOMEM;
    bool rev = a->flags & FV_KV_REV;
    const fv__kv_znode_t *z = fv__kv_zset_at(o->u.zset, (size_t)start, rev);
    for (size_t i = 0; i < count && z; i++) {
        out[i] = (fv_kv_elem_t){.str = fv__kv_dent_key(z->member), .score = z->score};
        z = rev ? z->back : z->fwd[0];
    }
    r->elems = out;
    r->count = count;
    *elems = out;
    return 0;
}

static int op_hgetall(kv_mem_t *m, const fv__kv_args_t *a, fv_kv_reply_t *r,
                      fv_kv_elem_t **elems)
{
    mobj_t *o;
    int rc = typed(m, a->key, OBJ_HASH, NULL, &o);
    r->type = FV_KV_ARRAY;
    if (rc < 0 || !o)
        return rc;
    fv_kv_elem_t *out = fv_try_malloc(o->u.hash->count * sizeof(*out));
    if (!out)
        return FV_ENOMEM;
    size_t i, n = 0;
    for (fv__kv_dent_t *f = fv__kv_dict_first(o->u.hash, &i); f;
         f = fv__kv_dict_next(o->u.hash, &i, f)) {
        blob_t *b = f->v.ptr;
        out[n++] = (fv_kv_elem_t){.str = fv__kv_dent_key(f), .val = fv_slice(b->bytes, b->len)};
    }
    r->elems = out;
    r->count = n;
    *elems = out;
    return 0;
}

static int execute(kv_mem_t *m, const mjob_t *j, fv_kv_reply_t *r, fv_kv_elem_t **elems)
{
    const fv__kv_args_t *a = &j->args;
    fv__kv_dent_t *e;
    mobj_t *o;
    int rc;
    switch (a->op) {
    case FV__KV_GET:
        if ((rc = typed(m, a->key, OBJ_STR, NULL, &o)) < 0 || !o)
            return rc;
        if (o->len > m->kv->opts.max_value_bytes)
            return FV_ETOOBIG;   /* stored under a larger ceiling (an old snapshot) */
        r->type = FV_KV_STR;
        r->str = fv_slice(o->bytes, o->len);
        return 0;
    case FV__KV_SET:
        return op_set(m, a, r);
    case FV__KV_DEL:
        e = lookup(m, a->key);
        reply_int(r, e != NULL);
        if (e)
            key_delete(m, e);
        return 0;
    case FV__KV_INCRBY:
        return op_incrby(m, a, r);
    case FV__KV_CAS:
        return op_cas(m, j, r);
    case FV__KV_TAKE:
        return op_take(m, a, r);
    case FV__KV_EXPIRE:
        e = lookup(m, a->key);
        reply_int(r, e != NULL);
        if (e) {
            ((mobj_t *)e->v.ptr)->expire_ms = now_ms(m) + (uint64_t)a->n1;
            m->dirty = true;
        }
        return 0;
    case FV__KV_TTL:
        e = lookup(m, a->key);
        if (!e)
            reply_int(r, -2);
        else if (!((mobj_t *)e->v.ptr)->expire_ms)
            reply_int(r, -1);
        else
            reply_int(r, (int64_t)(((mobj_t *)e->v.ptr)->expire_ms - now_ms(m)));
        return 0;
    case FV__KV_HSET:
        return op_hset(m, a, r);
    case FV__KV_HGET: {
        if ((rc = typed(m, a->key, OBJ_HASH, NULL, &o)) < 0 || !o)
            return rc;
        fv__kv_dent_t *f = fv__kv_dict_find(o->u.hash, a->a);
        if (f) {
            blob_t *b = f->v.ptr;
            r->type = FV_KV_STR;
            r->str = fv_slice(b->bytes, b->len);
        }
        return 0;
    }
    case FV__KV_HGETALL:
        return op_hgetall(m, a, r, elems);
    case FV__KV_HDEL:
        return op_hdel(m, a, r);
    case FV__KV_ZADD:
        return op_zadd(m, a, false, r);
    case FV__KV_ZINCRBY:
        return op_zadd(m, a, true, r);
    case FV__KV_ZSCORE:
        if ((rc = zset_get(m, a->key, false, &e, &o)) < 0 || !o)
            return rc;
        if (fv__kv_zset_score(o->u.zset, a->a, &r->score) == 0)
            r->type = FV_KV_SCORE;
        return 0;
    case FV__KV_ZREM:
        if ((rc = zset_get(m, a->key, false, &e, &o)) < 0)
            return rc;
        reply_int(r, o ? fv__kv_zset_rem(o->u.zset, a->a) : 0);
        if (o && r->integer)
            m->dirty = true;
        if (o && !fv__kv_zset_count(o->u.zset))
            key_delete(m, e);
        return 0;
    case FV__KV_ZRANGE:
        return op_zrange(m, a, r, elems);
    case FV__KV_PUBLISH:
        /* From the job queue, so subscribers never run inside fv_kv_publish(). */
        reply_int(r, (int64_t)fv__kv_deliver(m->kv, a->key, a->a));
        return 0;
    }
    return FV_EINVAL;
}

static void run_job(fv_kv_t *kv, fv__kv_job_t *job, bool canceled)
{
    mjob_t *j = (mjob_t *)job;
    if (canceled) {
        j->cb(kv, FV_ECANCELED, NULL, j->data);
        fv_free(j);
        return;
    }
    fv_kv_reply_t r = {.type = FV_KV_NIL};
    fv_kv_elem_t *elems = NULL;
    int rc = execute(kv->backend, j, &r, &elems);
    j->cb(kv, rc, rc < 0 ? NULL : &r, j->data);
    fv_free(elems);
    fv_free(j);
}

/* Only take runs within the call (see fv_kv_take_now): it replies with an integer or NIL, so
 * nothing of the reply points into the store. */
static int mem_run_now(fv_kv_t *kv, const fv__kv_args_t *a, fv_kv_reply_t *reply)
{
    if (a->op != FV__KV_TAKE)
        return FV_EAGAIN;
    *reply = (fv_kv_reply_t){.type = FV_KV_NIL};
    return op_take(kv->backend, a, reply);
}

static int mem_submit(fv_kv_t *kv, const fv__kv_args_t *a, fv_kv_cb cb, void *data)
{
    size_t total = a->key.len + a->a.len + a->b.len;
    mjob_t *j = fv_try_malloc(sizeof(*j) + total + 1);
    if (!j)
        return FV_ENOMEM;
    j->args = *a;
    j->has_expected = a->a.ptr != NULL;
    j->cb = cb;
    j->data = data;
    char *p = j->bytes;
    fv_slice_t *parts[3] = {&j->args.key, &j->args.a, &j->args.b};
    for (int i = 0; i < 3; i++) {
        if (parts[i]->len)
            memcpy(p, parts[i]->ptr, parts[i]->len);
        parts[i]->ptr = p;
        p += parts[i]->len;
    }
    j->job.run = run_job;
    fv__kv_defer(kv, &j->job);
    return 0;
}

/* ---- subscriptions ------------------------------------------------------------------------- */

typedef struct ready_job {
    fv__kv_job_t job;
    uint64_t id;
} ready_job_t;

static void run_ready(fv_kv_t *kv, fv__kv_job_t *job, bool canceled)
{
    ready_job_t *rj = (ready_job_t *)job;
    if (!canceled)
        fv__kv_sub_ready_id(kv, rj->id);
    fv_free(rj);
}

static void mem_sub_add(fv_kv_t *kv, fv_kv_sub_t *sub)
{
    ready_job_t *rj = fv_malloc(sizeof(*rj));
    rj->id = sub->id;
    rj->job.run = run_ready;
    fv__kv_defer(kv, &rj->job);
}

static void mem_sub_remove(fv_kv_t *kv, fv_slice_t name, bool pattern)
{
}

/* ---- expiry sweep -------------------------------------------------------------------------- */

/* Deletes the expired keys of the next SWEEP_BUCKETS buckets (bounded work a call). */
static void sweep_some(kv_mem_t *m)
{
    fv__kv_dict_t *d = &m->keys;
    if (!d->nbuckets)
        return;
    for (size_t n = 0; n < SWEEP_BUCKETS && n < d->nbuckets; n++) {
        size_t b = m->sweep_cursor++ & (d->nbuckets - 1);
        fv__kv_dent_t *e = d->buckets[b];
        while (e) {
            fv__kv_dent_t *next = e->next;
            if (expired(m, e->v.ptr))
                key_delete(m, e);
            e = next;
        }
    }
}

static void on_sweep(uv_timer_t *t)
{
    sweep_some(t->data);
}

/* ---- snapshot ------------------------------------------------------------------------------ */

/* Format, all integers little-endian:
 *   "FVKV" 0x01
 *   records: u8 type, i64 expire (wall-clock ms, 0 = none), u32 key len, key, then
 *     string: u32 len, bytes | hash: u32 n, n x (u32 len, field, u32 len, value)
 *     | zset: u32 n, n x (u32 len, member, f64 score)
 *   0xFF, u64 record count (a truncated file is noticed) */
static const char SNAP_MAGIC[5] = {'F', 'V', 'K', 'V', 1};

static bool w_bytes(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n;
}

static bool w_u64(FILE *f, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return w_bytes(f, b, 8);
}

static bool w_u32(FILE *f, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return w_bytes(f, b, 4);
}

static bool w_str(FILE *f, const char *p, size_t n)
{
    return n <= UINT32_MAX && w_u32(f, (uint32_t)n) && w_bytes(f, p, n);
}

static bool write_obj(FILE *f, const fv__kv_dent_t *e, const mobj_t *o, uint64_t wall,
                      uint64_t now)
{
    uint64_t expire = o->expire_ms ? wall + (o->expire_ms - now) : 0;
    unsigned char type = (unsigned char)o->type;
    if (!w_bytes(f, &type, 1) || !w_u64(f, expire) || !w_str(f, e->key, e->klen))
        return false;
    size_t i;
    switch (o->type) {
    case OBJ_STR:
        return w_str(f, o->bytes, o->len);
    case OBJ_HASH:
        if (!w_u32(f, (uint32_t)o->u.hash->count))
            return false;
        for (fv__kv_dent_t *x = fv__kv_dict_first(o->u.hash, &i); x;
             x = fv__kv_dict_next(o->u.hash, &i, x)) {
            blob_t *b = x->v.ptr;
            if (!w_str(f, x->key, x->klen) || !w_str(f, b->bytes, b->len))
                return false;
        }
        return true;
    case OBJ_ZSET:
        if (!w_u32(f, (uint32_t)fv__kv_zset_count(o->u.zset)))
            return false;
        for (const fv__kv_znode_t *z = o->u.zset->head->fwd[0]; z; z = z->fwd[0]) {
            uint64_t bits;
            memcpy(&bits, &z->score, sizeof(bits));
            if (!w_str(f, z->member->key, z->member->klen) || !w_u64(f, bits))
                return false;
        }
        return true;
    }
    return false;
}

static int snapshot_write(kv_mem_t *m)
{
    const char *path = m->kv->opts.snapshot_path;
    size_t plen = strlen(path);
    char *tmp = fv_malloc(plen + 8);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fv_log_warn("kv", "snapshot %s: %s", tmp, strerror(errno));
        fv_free(tmp);
        return -errno;
    }
    uint64_t wall = fv_wall_ms(), now = now_ms(m), records = 0;
    bool ok = w_bytes(f, SNAP_MAGIC, sizeof(SNAP_MAGIC));
    size_t i;
    for (fv__kv_dent_t *e = fv__kv_dict_first(&m->keys, &i); e && ok;
         e = fv__kv_dict_next(&m->keys, &i, e)) {
        if (expired(m, e->v.ptr))
            continue;
        ok = write_obj(f, e, e->v.ptr, wall, now);
        records++;
    }
    unsigned char end = 0xFF;
    ok = ok && w_bytes(f, &end, 1) && w_u64(f, records) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        fv_log_warn("kv", "snapshot %s not written: %s", path, strerror(saved));
        unlink(tmp);
        fv_free(tmp);
        return FV_EIO;
    }
    fv_free(tmp);
    m->dirty = false;
    return 0;
}

static void on_snap_timer(uv_timer_t *t)
{
    kv_mem_t *m = t->data;
    if (m->dirty)
        (void)snapshot_write(m);
}

typedef struct reader {
    const unsigned char *p, *end, *start;
} reader_t;

static bool r_u64(reader_t *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return false;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return true;
}

static bool r_u32(reader_t *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = 0;
    for (int i = 0; i < 4; i++)
        *v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return true;
}

static bool r_str(reader_t *r, fv_slice_t *s)
{
    uint32_t n;
    if (!r_u32(r, &n) || (size_t)(r->end - r->p) < n)
        return false;
    *s = fv_slice((const char *)r->p, n);
    r->p += n;
    return true;
}

/* One record into the store; false when the bytes do not parse (or out of memory). */
static bool load_record(kv_mem_t *m, reader_t *r, int type, uint64_t wall, uint64_t now)
{
    uint64_t expire;
    fv_slice_t key;
    if (!r_u64(r, &expire) || !r_str(r, &key))
        return false;
    bool gone = expire && expire <= wall;
    uint64_t deadline = expire ? now + (expire - wall) : 0;
    fv__kv_args_t a = {.key = key};
    fv_kv_reply_t rep;
    fv_slice_t v, f;
    uint32_t n;
    switch (type) {
    case OBJ_STR:
        if (!r_str(r, &v))
            return false;
        if (gone)
            return true;
        mobj_t *o = str_new(v, deadline);
        return o && key_put(m, key, o) == 0;
    case OBJ_HASH:
        if (!r_u32(r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            if (!r_str(r, &f) || !r_str(r, &v))
                return false;
            a.a = f;
            a.b = v;
            if (!gone && op_hset(m, &a, &rep) < 0)
                return false;
        }
        break;
    case OBJ_ZSET:
        if (!r_u32(r, &n))
            return false;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t bits;
            if (!r_str(r, &f) || !r_u64(r, &bits))
                return false;
            memcpy(&a.score, &bits, sizeof(a.score));
            a.a = f;
            if (!isfinite(a.score))
                return false;
            if (!gone && op_zadd(m, &a, false, &rep) < 0)
                return false;
        }
        break;
    default:
        return false;
    }
    fv__kv_dent_t *e = gone ? NULL : fv__kv_dict_find(&m->keys, key);
    if (e)
        ((mobj_t *)e->v.ptr)->expire_ms = deadline;
    return true;
}

/* The snapshot's directory must exist and be writable now, not at the first save an hour
 * later. */
static int snapshot_dir_ok(const char *path, fv_error_t *err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? fv_strndup(path, (size_t)(slash - path)) : fv_strdup(".");
    if (!*dir) {
        fv_free(dir);
        dir = fv_strdup("/");
    }
    int ok = access(dir, W_OK | X_OK) == 0;
    int saved = errno;
    int rc = ok ? 0
                : fv_error_set(err, FV_ECONFIG, "kv: snapshot directory %s: %s", dir,
                               strerror(saved));
    fv_free(dir);
    return rc;
}

static int snapshot_load(kv_mem_t *m, const char *path, fv_error_t *err)
{
    int rc0 = snapshot_dir_ok(path, err);
    if (rc0 < 0)
        return rc0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;   /* first run */
        return fv_error_set(err, FV_ECONFIG, "kv: snapshot %s: %s", path, strerror(errno));
    }
    int rc = 0;
    unsigned char *buf = NULL;
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = fv_error_set(err, FV_ECONFIG, "kv: snapshot %s: cannot size it", path);
        goto out;
    }
    buf = fv_try_malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = fv_error_set(err, buf ? FV_ECONFIG : FV_ENOMEM,
                          "kv: snapshot %s: cannot read %ld bytes", path, size);
        goto out;
    }
    reader_t r = {buf, buf + size, buf};
    if (size < (long)sizeof(SNAP_MAGIC) || memcmp(buf, SNAP_MAGIC, sizeof(SNAP_MAGIC)) != 0) {
        rc = fv_error_set(err, FV_EINVAL, "kv: snapshot %s: not a kv snapshot (bad header)",
                          path);
        goto out;
    }
    r.p += sizeof(SNAP_MAGIC);
    uint64_t wall = fv_wall_ms(), now = now_ms(m), records = 0, want;
    for (;;) {
        if (r.p >= r.end)
            goto corrupt;
        int type = *r.p++;
        if (type == 0xFF)
            break;
        if (!load_record(m, &r, type, wall, now))
            goto corrupt;
        records++;
    }
    if (!r_u64(&r, &want) || want != records || r.p != r.end)
        goto corrupt;
    m->dirty = false;
    goto out;
corrupt:
    rc = fv_error_set(err, FV_EINVAL,
                      "kv: snapshot %s: corrupt or truncated near byte %zu of %ld (or out of "
                      "memory)", path, (size_t)(r.p - r.start), size);
out:
    fv_free(buf);
    fclose(f);
    return rc;
}

/* ---- open / close -------------------------------------------------------------------------- */

static void free_all(kv_mem_t *m)
{
    size_t i;
    for (fv__kv_dent_t *e = fv__kv_dict_first(&m->keys, &i); e;
         e = fv__kv_dict_next(&m->keys, &i, e))
        obj_free(e->v.ptr);
    fv__kv_dict_dispose(&m->keys);
}

/* memory: or memory:?snapshot=PATH&interval_ms=N&max_keys=N */
static int parse_url(fv_kv_t *kv, const char *url, size_t *max_keys, fv_error_t *err)
{
    const char *q = url + strlen("memory:");
    if (*q == '\0')
        return 0;
    if (*q != '?')
        return fv_error_set(err, FV_EINVAL,
                            "kv: URL '%.64s': expected memory: or memory:?snapshot=PATH", url);
    q++;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 9 && strncmp(q, "snapshot=", 9) == 0) {
            fv_free((char *)kv->opts.snapshot_path);
            kv->opts.snapshot_path = fv_strndup(q + 9, len - 9);
        } else if (len > 12 && strncmp(q, "interval_ms=", 12) == 0) {
            char *end;
            unsigned long v = strtoul(q + 12, &end, 10);
            if (end != q + len || v == 0 || v > 86400000ul)
                return fv_error_set(err, FV_EINVAL,
                                    "kv: URL '%.64s': interval_ms must be 1..86400000", url);
            kv->opts.snapshot_interval_ms = (uint32_t)v;
        } else if (len > 9 && strncmp(q, "max_keys=", 9) == 0) {
            char *end;
            unsigned long v = strtoul(q + 9, &end, 10);
            if (end != q + len || v == 0 || v > 1000000000ul)
                return fv_error_set(err, FV_EINVAL,
                                    "kv: URL '%.64s': max_keys must be 1..1000000000", url);
            *max_keys = v;
        } else {
            return fv_error_set(err, FV_EINVAL, "kv: URL '%.64s': unknown parameter '%.*s'", url,
                                (int)len, q);
        }
        q += len + (amp ? 1 : 0);
    }
    return 0;
}

static int mem_open(fv_kv_t *kv, const char *url, fv_error_t *err)
{
    size_t max_keys = FV_KV_DEFAULT_MAX_KEYS;
    int rc = parse_url(kv, url, &max_keys, err);
    if (rc < 0)
        return rc;
    kv_mem_t *m = fv_calloc(1, sizeof(*m));
    m->kv = kv;
    kv->backend = m;
    m->max_keys = SIZE_MAX;       /* a snapshot comes back whole, even over a lowered ceiling */
    fv__kv_dict_init(&m->keys);
    if (kv->opts.snapshot_path && (rc = snapshot_load(m, kv->opts.snapshot_path, err)) < 0) {
        free_all(m);
        fv_free(m);
        kv->backend = NULL;
        return rc;
    }
    m->max_keys = max_keys;
    uv_timer_init(kv->loop, &m->sweep);
    m->sweep.data = m;
    uv_timer_start(&m->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *)&m->sweep);   /* housekeeping must not keep a loop alive */
    m->open_handles = 1;
    if (kv->opts.snapshot_path) {
        uv_timer_init(kv->loop, &m->snap_timer);
        m->snap_timer.data = m;
        uv_timer_start(&m->snap_timer, on_snap_timer, kv->opts.snapshot_interval_ms,
                       kv->opts.snapshot_interval_ms);
        uv_unref((uv_handle_t *)&m->snap_timer);
        m->open_handles++;
        fv_log_info("kv", "memory store: %zu keys from snapshot %s", m->keys.count,
                    kv->opts.snapshot_path);
    }
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    kv_mem_t *m = h->data;
    if (--m->open_handles > 0)
        return;
    fv_kv_t *kv = m->kv;
    void (*done)(fv_kv_t *) = m->done;
    free_all(m);
    fv_free(m);
    kv->backend = NULL;
    done(kv);
}

static void mem_close(fv_kv_t *kv, void (*done)(fv_kv_t *kv))
{
    kv_mem_t *m = kv->backend;
    m->done = done;
    if (kv->opts.snapshot_path && m->dirty)
        (void)snapshot_write(m);
    uv_close((uv_handle_t *)&m->sweep, on_timer_closed);
    if (kv->opts.snapshot_path)
        uv_close((uv_handle_t *)&m->snap_timer, on_timer_closed);
}

const fv__kv_ops_t fv__kv_memory_ops = {
    .name = "memory",
    .open = mem_open,
    .submit = mem_submit,
    .run_now = mem_run_now,
    .sub_add = mem_sub_add,
    .sub_remove = mem_sub_remove,
    .close = mem_close,
};
