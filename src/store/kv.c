/* kv.c - the key-value interface: URL switch to a backend, input validation (sizes, flags,
 * scores), the deferred-job queue that keeps callbacks out of the calls that start them, the
 * subscription registry and the close sequence. The data structures and the wire protocol
 * live in the backends (kv_memory.c, kv_redis.c). */
#include "store/kv.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/kv_internal.h"

/* ---- jobs ---------------------------------------------------------------------------------- */

static void on_job(fv_defer_t *d)
{
    fv__kv_job_t *job = FV_DEFER_OWNER(d, fv__kv_job_t, defer);
    fv_kv_t *kv = job->kv;
    job->run(kv, job, kv->closing);
}

void fv__kv_defer(fv_kv_t *kv, fv__kv_job_t *job)
{
    job->kv = kv;
    fv_defer_push(&kv->jobs, &job->defer, on_job);
}

typedef struct fail_job {
    fv__kv_job_t job;
    int status;
    fv_kv_cb cb;
    void *data;
} fail_job_t;

static void run_fail(fv_kv_t *kv, fv__kv_job_t *job, bool canceled)
{
    fail_job_t *f = (fail_job_t *)job;
    f->cb(kv, canceled ? FV_ECANCELED : f->status, NULL, f->data);
    fv_free(f);
}

void fv__kv_fail_later(fv_kv_t *kv, int status, fv_kv_cb cb, void *data)
{
    fail_job_t *f = fv_malloc(sizeof(*f));
    f->job.run = run_fail;
    f->status = status;
    f->cb = cb;
    f->data = data;
    fv__kv_defer(kv, &f->job);
}

static void subs_sweep(fv_kv_t *kv);
static void on_backend_closed(fv_kv_t *kv);

/* After each batch (the queue runs one per loop turn: jobs queued by the callbacks of this
 * batch wait for the next turn, so a callback that always issues another request cannot starve
 * I/O). A closing store's batch ran canceled; now the backend goes. */
static void on_jobs_turn(fv_defer_queue_t *q)
{
    fv_kv_t *kv = q->data;
    if (kv->closing && kv->ops) {
        const fv__kv_ops_t *ops = kv->ops;
        kv->ops = NULL;           /* close the backend once */
        ops->close(kv, on_backend_closed);
    }
}

/* ---- open / close ------------------------------------------------------------------------- */

int fv_kv_open(uv_loop_t *loop, const char *url, const fv_kv_opts_t *opts, fv_kv_t **out,
               fv_error_t *err)
{
    *out = NULL;
    if (!loop || !url)
        return fv_error_set(err, FV_EINVAL, "kv: no loop or URL");
    const fv__kv_ops_t *ops;
    if (strncmp(url, "memory:", 7) == 0)
        ops = &fv__kv_memory_ops;
    else if (strncmp(url, "redis://", 8) == 0)
        ops = &fv__kv_redis_ops;
    else
        return fv_error_set(err, FV_EINVAL,
                            "kv: URL '%.64s' is neither memory: nor redis://host:port/db", url);

    fv_kv_t *kv = fv_calloc(1, sizeof(*kv));
    kv->loop = loop;
    kv->ops = ops;
    if (opts)
        kv->opts = *opts;
    if (!kv->opts.command_timeout_ms)
        kv->opts.command_timeout_ms = FV_KV_DEFAULT_TIMEOUT_MS;
    if (!kv->opts.max_value_bytes)
        kv->opts.max_value_bytes = FV_KV_DEFAULT_MAX_VALUE;
    if (!kv->opts.snapshot_interval_ms)
        kv->opts.snapshot_interval_ms = FV_KV_DEFAULT_SNAPSHOT_MS;
    kv->opts.snapshot_path = opts && opts->snapshot_path ? fv_strdup(opts->snapshot_path) : NULL;

    int rc = ops->open(kv, url, err);
    if (rc < 0) {
        fv_free((char *)kv->opts.snapshot_path);
        fv_free(kv);
        return rc;
    }
    fv_defer_queue_init(loop, &kv->jobs, on_jobs_turn);
    kv->jobs.data = kv;
    *out = kv;
    return 0;
}

const char *fv_kv_backend_name(const fv_kv_t *kv)
{
    return kv->ops ? kv->ops->name : "closed";
}

void fv_kv_close(fv_kv_t *kv, fv_kv_close_cb cb, void *data)
{
    if (!kv || kv->closing)
        return;
    kv->closing = true;
    kv->close_cb = cb;
    kv->close_data = data;
    /* Subscriptions end now: no callback after close. */
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next)
        s->dead = true;
    /* The real work happens from the loop, so canceled callbacks never run inside this call. */
    fv_defer_queue_kick(&kv->jobs);
}

static void on_jobs_closed(fv_defer_queue_t *q)
{
    fv_kv_t *kv = q->data;
    fv_kv_close_cb cb = kv->close_cb;
    void *data = kv->close_data;
    fv_free((char *)kv->opts.snapshot_path);
    fv_free(kv);
    if (cb)
        cb(data);
}

static void on_backend_closed(fv_kv_t *kv)
{
    kv->dispatching = 0;
    subs_sweep(kv);
    fv_defer_queue_close(&kv->jobs, on_jobs_closed);
}

/* ---- validation ---------------------------------------------------------------------------- */

static int check_key(const fv_kv_t *kv, fv_slice_t key)
{
    if (!key.ptr && key.len)
        return FV_EINVAL;
    return key.len > FV_KV_MAX_KEY_BYTES ? FV_ETOOBIG : 0;
}

static int check_val(const fv_kv_t *kv, fv_slice_t v)
{
    if (!v.ptr && v.len)
        return FV_EINVAL;
    return v.len > kv->opts.max_value_bytes ? FV_ETOOBIG : 0;
}

/* A hundred years: far past any real TTL, and safely inside int64 milliseconds. */
#define MAX_TTL_MS (100ull * 366 * 24 * 3600 * 1000)

static int submit(fv_kv_t *kv, const fv__kv_args_t *a, fv_kv_cb cb, void *data)
{
    if (!kv || !cb)
        return FV_EINVAL;
    if (kv->closing || !kv->ops)
        return FV_EUNAVAILABLE;
    int rc;
    if ((rc = check_key(kv, a->key)) < 0 || (rc = check_val(kv, a->a)) < 0 ||
        (rc = check_val(kv, a->b)) < 0) {
        fv_log_debug("kv", "%s refused: %s (key %zu bytes, max value %zu)", kv->ops->name,
                     fv_err_name(rc), a->key.len, kv->opts.max_value_bytes);
        return rc;
    }
    return kv->ops->submit(kv, a, cb, data);
}

static fv_slice_t nonnull(fv_slice_t s)
{
    return s.ptr ? s : fv_slice("", 0);
}

int fv_kv_get(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a = {.op = FV__KV_GET, .key = key};
    return submit(kv, &a, cb, data);
}

int fv_kv_set(fv_kv_t *kv, fv_slice_t key, fv_slice_t val, uint64_t ttl_ms, unsigned flags,
              fv_kv_cb cb, void *data)
{
    if ((flags & FV_KV_NX) && (flags & FV_KV_XX))
        return FV_EINVAL;
    if (flags & ~(FV_KV_NX | FV_KV_XX) || ttl_ms > MAX_TTL_MS)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_SET, .key = key, .b = nonnull(val), .n1 = (int64_t)ttl_ms,
                       .flags = flags};
    if (!val.ptr && val.len)
        return FV_EINVAL;
    return submit(kv, &a, cb, data);
}

int fv_kv_del(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a = {.op = FV__KV_DEL, .key = key};
    return submit(kv, &a, cb, data);
}

int fv_kv_incrby(fv_kv_t *kv, fv_slice_t key, int64_t delta, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a = {.op = FV__KV_INCRBY, .key = key, .n1 = delta};
    return submit(kv, &a, cb, data);
}

int fv_kv_cas(fv_kv_t *kv, fv_slice_t key, fv_slice_t expected, fv_slice_t val,
              uint64_t ttl_ms, fv_kv_cb cb, void *data)
{
    if (ttl_ms > MAX_TTL_MS || (!val.ptr && val.len))
        return FV_EINVAL;
    /* expected keeps ptr == NULL as "must not exist". */
    fv__kv_args_t a = {.op = FV__KV_CAS, .key = key, .a = expected, .b = nonnull(val),
                       .n1 = (int64_t)ttl_ms};
    return submit(kv, &a, cb, data);
}

static int take_args(fv_slice_t key, fv_slice_t unless, double rate, int64_t burst,
                     int64_t cost, fv__kv_args_t *a)
{
    if (!(rate > 0 && rate <= 1e9) || burst < 1 || burst > 1000000000 || cost < 0 ||
        cost > burst || (!unless.ptr && unless.len))
        return FV_EINVAL;
    *a = (fv__kv_args_t){.op = FV__KV_TAKE, .key = key, .a = nonnull(unless), .score = rate,
                         .n1 = burst, .n2 = cost};
    return 0;
}

int fv_kv_take(fv_kv_t *kv, fv_slice_t key, fv_slice_t unless, double rate, int64_t burst,
               int64_t cost, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a;
    int rc = take_args(key, unless, rate, burst, cost, &a);
    return rc < 0 ? rc : submit(kv, &a, cb, data);
}

int fv_kv_take_now(fv_kv_t *kv, fv_slice_t key, fv_slice_t unless, double rate, int64_t burst,
                   int64_t cost, fv_kv_reply_t *reply)
{
    fv__kv_args_t a;
    int rc = take_args(key, unless, rate, burst, cost, &a);
    if (rc < 0)
        return rc;
    if (!kv || !reply)
        return FV_EINVAL;
    if (kv->closing || !kv->ops)
        return FV_EUNAVAILABLE;
    /* a request queued earlier must not be overtaken (a revocation set just before) */
    if (!kv->ops->run_now || fv_defer_queue_pending(&kv->jobs))
        return FV_EAGAIN;
    if ((rc = check_key(kv, a.key)) < 0 || (rc = check_val(kv, a.a)) < 0)
        return rc;
    return kv->ops->run_now(kv, &a, reply);
}

int64_t fv__kv_bucket_take(double *tokens, uint64_t *ts_ms, uint64_t now_ms, double rate,
                           int64_t burst, int64_t cost, uint64_t *ttl_ms)
{
    double t = *tokens;
    if (now_ms > *ts_ms)
        t += (double)(now_ms - *ts_ms) * rate / 1000.0;
    if (t > (double)burst)
        t = (double)burst;
    int64_t out;
    if (t >= (double)cost) {
        t -= (double)cost;
        out = (int64_t)t;
    } else {
        out = -1 - (int64_t)ceil(((double)cost - t) * 1000.0 / rate);
    }
    *tokens = t;
    *ts_ms = now_ms;
    *ttl_ms = (uint64_t)ceil(((double)burst - t) * 1000.0 / rate) + 1000;
    return out;
}

int fv_kv_expire(fv_kv_t *kv, fv_slice_t key, uint64_t ttl_ms, fv_kv_cb cb, void *data)
{
    if (ttl_ms == 0 || ttl_ms > MAX_TTL_MS)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_EXPIRE, .key = key, .n1 = (int64_t)ttl_ms};
    return submit(kv, &a, cb, data);
}

int fv_kv_ttl(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a = {.op = FV__KV_TTL, .key = key};
    return submit(kv, &a, cb, data);
}

int fv_kv_hset(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_slice_t val, fv_kv_cb cb,
               void *data)
{
    if ((!field.ptr && field.len) || (!val.ptr && val.len))
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_HSET, .key = key, .a = nonnull(field), .b = nonnull(val)};
    return submit(kv, &a, cb, data);
}

int fv_kv_hget(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_kv_cb cb, void *data)
{
    if (!field.ptr && field.len)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_HGET, .key = key, .a = nonnull(field)};
    return submit(kv, &a, cb, data);
}

int fv_kv_hgetall(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data)
{
    fv__kv_args_t a = {.op = FV__KV_HGETALL, .key = key};
    return submit(kv, &a, cb, data);
}

int fv_kv_hdel(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_kv_cb cb, void *data)
{
    if (!field.ptr && field.len)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_HDEL, .key = key, .a = nonnull(field)};
    return submit(kv, &a, cb, data);
}

int fv_kv_zadd(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, double score, fv_kv_cb cb,
               void *data)
{
    if (!isfinite(score) || (!member.ptr && member.len))
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_ZADD, .key = key, .a = nonnull(member), .score = score};
    return submit(kv, &a, cb, data);
}

int fv_kv_zincrby(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, double delta, fv_kv_cb cb,
                  void *data)
{
    if (!isfinite(delta) || (!member.ptr && member.len))
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_ZINCRBY, .key = key, .a = nonnull(member), .score = delta};
    return submit(kv, &a, cb, data);
}

int fv_kv_zscore(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, fv_kv_cb cb, void *data)
{
    if (!member.ptr && member.len)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_ZSCORE, .key = key, .a = nonnull(member)};
    return submit(kv, &a, cb, data);
}

int fv_kv_zrem(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, fv_kv_cb cb, void *data)
{
    if (!member.ptr && member.len)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_ZREM, .key = key, .a = nonnull(member)};
    return submit(kv, &a, cb, data);
}

int fv_kv_zrange(fv_kv_t *kv, fv_slice_t key, int64_t start, int64_t stop, unsigned flags,
                 fv_kv_cb cb, void *data)
{
    if (flags & ~FV_KV_REV)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_ZRANGE, .key = key, .n1 = start, .n2 = stop,
                       .flags = flags};
    return submit(kv, &a, cb, data);
}

int fv_kv_publish(fv_kv_t *kv, fv_slice_t channel, fv_slice_t message, fv_kv_cb cb,
                  void *data)
{
    if (!message.ptr && message.len)
        return FV_EINVAL;
    fv__kv_args_t a = {.op = FV__KV_PUBLISH, .key = channel, .a = nonnull(message)};
    return submit(kv, &a, cb, data);
}

/* ---- subscriptions ------------------------------------------------------------------------- */

static int subscribe(fv_kv_t *kv, fv_slice_t name, bool pattern, fv_kv_message_cb cb,
                     void *data, fv_kv_sub_t **out)
{
    if (!kv || !cb || !out || (!name.ptr && name.len))
        return FV_EINVAL;
    *out = NULL;
    if (kv->closing || !kv->ops)
        return FV_EUNAVAILABLE;
    if (name.len > FV_KV_MAX_KEY_BYTES)
        return FV_ETOOBIG;
    fv_kv_sub_t *s = fv_calloc(1, sizeof(*s));
    s->kv = kv;
    s->id = ++kv->next_sub_id;
    s->name = fv_malloc(name.len + 1);
    if (name.len)
        memcpy(s->name, name.ptr, name.len);
    s->name[name.len] = '\0';
    s->len = name.len;
    s->pattern = pattern;
    s->cb = cb;
    s->data = data;
    s->next = kv->subs;
    kv->subs = s;
    kv->ops->sub_add(kv, s);
    *out = s;
    return 0;
}

int fv_kv_subscribe(fv_kv_t *kv, fv_slice_t channel, fv_kv_message_cb cb, void *data,
                    fv_kv_sub_t **out)
{
    return subscribe(kv, channel, false, cb, data, out);
}

int fv_kv_psubscribe(fv_kv_t *kv, fv_slice_t pattern, fv_kv_message_cb cb, void *data,
                     fv_kv_sub_t **out)
{
    return subscribe(kv, pattern, true, cb, data, out);
}

static bool same_name(const fv_kv_sub_t *s, bool pattern, fv_slice_t name)
{
    return s->pattern == pattern && fv_slice_eq(fv_slice(s->name, s->len), name);
}

static void subs_sweep(fv_kv_t *kv)
{
    if (kv->dispatching)
        return;
    fv_kv_sub_t **pp = &kv->subs;
    while (*pp) {
        fv_kv_sub_t *s = *pp;
        if (s->dead) {
            *pp = s->next;
            fv_free(s->name);
            fv_free(s);
        } else {
            pp = &s->next;
        }
    }
}

void fv_kv_unsubscribe(fv_kv_sub_t *sub)
{
    if (!sub || sub->dead)
        return;
    fv_kv_t *kv = sub->kv;
    sub->dead = true;
    fv_slice_t name = fv_slice(sub->name, sub->len);
    bool others = false;
    for (fv_kv_sub_t *s = kv->subs; s && !others; s = s->next)
        others = !s->dead && same_name(s, sub->pattern, name);
    if (!others && kv->ops && !kv->closing)
        kv->ops->sub_remove(kv, name, sub->pattern);
    subs_sweep(kv);
}

static void emit(fv_kv_sub_t *s, fv_kv_sub_event_t ev, fv_slice_t channel, fv_slice_t msg)
{
    s->cb(s, ev, channel, msg, s->data);
}

size_t fv__kv_dispatch(fv_kv_t *kv, bool pattern, fv_slice_t name, fv_slice_t channel,
                       fv_slice_t message)
{
    size_t n = 0;
    kv->dispatching++;
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next) {
        if (s->dead || !same_name(s, pattern, name))
            continue;
        n++;
        emit(s, FV_KV_SUB_MESSAGE, channel, message);
    }
    kv->dispatching--;
    subs_sweep(kv);
    return n;
}

size_t fv__kv_deliver(fv_kv_t *kv, fv_slice_t channel, fv_slice_t message)
{
    size_t n = 0;
    kv->dispatching++;
    /* Safe against callbacks: new subscriptions go in at the head (behind us) and dead ones
     * stay linked until dispatching is back to 0. */
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next) {
        if (s->dead)
            continue;
        fv_slice_t name = fv_slice(s->name, s->len);
        bool hit = s->pattern ? fv__kv_glob_match(name, channel) : fv_slice_eq(name, channel);
        if (!hit)
            continue;
        n++;
        emit(s, FV_KV_SUB_MESSAGE, channel, message);
    }
    kv->dispatching--;
    subs_sweep(kv);
    return n;
}

void fv__kv_subs_ready(fv_kv_t *kv, bool pattern, fv_slice_t name)
{
    kv->dispatching++;
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next) {
        if (s->dead || s->ready || !same_name(s, pattern, name))
            continue;
        s->ready = true;
        emit(s, FV_KV_SUB_READY, name, FV_SLICE_NULL);
    }
    kv->dispatching--;
    subs_sweep(kv);
}

void fv__kv_sub_ready_id(fv_kv_t *kv, uint64_t id)
{
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next) {
        if (s->id != id)
            continue;
        if (!s->dead && !s->ready) {
            s->ready = true;
            kv->dispatching++;
            emit(s, FV_KV_SUB_READY, fv_slice(s->name, s->len), FV_SLICE_NULL);
            kv->dispatching--;
            subs_sweep(kv);
        }
        return;
    }
}

void fv__kv_subs_lost(fv_kv_t *kv)
{
    kv->dispatching++;
    for (fv_kv_sub_t *s = kv->subs; s; s = s->next) {
        if (s->dead || !s->ready)
            continue;
        s->ready = false;
        emit(s, FV_KV_SUB_LOST, fv_slice(s->name, s->len), FV_SLICE_NULL);
    }
    kv->dispatching--;
    subs_sweep(kv);
}

/* Iterative with one backtrack point for '*', so a hostile pattern costs O(n*m), not
 * exponential time. */
static bool class_match(const char **pp, const char *pend, char c)
{
    const char *p = *pp + 1;   /* past '[' */
    bool negate = false, hit = false;
    if (p < pend && *p == '^') {
        negate = true;
        p++;
    }
    while (p < pend && *p != ']') {
        if (*p == '\\' && p + 1 < pend) {
            p++;
            if (*p == c)
                hit = true;
        } else if (p + 2 < pend && p[1] == '-' && p[2] != ']') {
            unsigned char lo = (unsigned char)p[0], hi = (unsigned char)p[2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if ((unsigned char)c >= lo && (unsigned char)c <= hi)
                hit = true;
            p += 2;
        } else if (*p == c) {
            hit = true;
        }
        p++;
    }
    *pp = p < pend ? p + 1 : p;   /* past ']' (an unclosed class ends the pattern) */
    return negate ? !hit : hit;
}

bool fv__kv_glob_match(fv_slice_t pattern, fv_slice_t str)
{
    const char *p = pattern.ptr ? pattern.ptr : "", *pend = p + pattern.len;
    const char *s = str.ptr ? str.ptr : "", *send = s + str.len;
    const char *star_p = NULL, *star_s = NULL;
    while (s < send) {
        if (p < pend && *p == '*') {
            while (p < pend && *p == '*')
                p++;
            if (p == pend)
                return true;
            star_p = p;
            star_s = s;
            continue;
        }
        if (p < pend) {
            const char *q = p;
            bool ok;
            if (*q == '?') {
                ok = true;
                q++;
            } else if (*q == '[') {
                ok = class_match(&q, pend, *s);
            } else if (*q == '\\' && q + 1 < pend) {
                ok = q[1] == *s;
                q += 2;
            } else {
                ok = *q == *s;
                q++;
            }
            if (ok) {
                p = q;
                s++;
                continue;
            }
        }
        if (!star_p)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (p < pend && *p == '*')
        p++;
    return p == pend;
}
