/* kv_redis.c - the Redis kv backend (URL "redis://..."): hiredis's async client on its libuv
 * adapter. Two connections: one for commands, one (opened at the first subscription) for
 * SUBSCRIBE/PSUBSCRIBE, because a subscribed Redis connection accepts no other commands.
 *
 * Each connection reconnects by itself with a capped backoff. While a connection is down,
 * requests fail at once with FV_EBACKEND (from the loop) instead of piling up; requests in
 * flight when it drops get FV_EBACKEND from hiredis's teardown. After a reconnect the
 * subscription connection re-subscribes every live channel and pattern, and each subscription
 * hears READY again.
 *
 * Command timeouts use one timer per store, not one per request: requests sit in a list in
 * submission order, the timer is armed for the oldest deadline and on firing fails every
 * request past its deadline with FV_ETIMEDOUT. Such a request stays in the list (hiredis still
 * holds it) and its late reply is dropped.
 *
 * Not here: validation and the job queue (kv.c), the embedded store (kv_memory.c), the libuv
 * adapter and reply objects (kv_redis_io.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/alloc.h>
#include <hiredis/sds.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/sha1.h"
#include "store/kv_internal.h"
#include "store/kv_redis_io.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000

/* Compare-and-set in one step on the server. ARGV: has-expected ("1"/"0"), expected, new
 * value, ttl ms ("0" = none). */
static const char CAS_SCRIPT[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if ARGV[1] == '1' then\n"
    "  if v ~= ARGV[2] then return 0 end\n"
    "elseif v then return 0 end\n"
    "if ARGV[4] ~= '0' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])\n"
    "else redis.call('SET', KEYS[1], ARGV[3]) end\n"
    "return 1\n";

/* fv_kv_take()'s token bucket, as fv__kv_bucket_take() computes it, on the server's clock (so
 * gateways on machines whose clocks differ share one bucket). KEYS: the bucket, and the
 * `unless` key when there is one (its existence answers nil). ARGV: rate a second, burst,
 * cost. The bucket is a hash {t: tokens, ts: ms}. */
static const char TAKE_SCRIPT[] =
    "if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return false end\n"
    "local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
    "local t, ts = tonumber(b[1]), tonumber(b[2])\n"
    "if not t or not ts then t, ts = burst, now end\n"
    "if now > ts then t = t + (now - ts) * rate / 1000 end\n"
    "if t > burst then t = burst end\n"
    "local out\n"
    "if t >= cost then t = t - cost; out = math.floor(t)\n"
    "else out = -1 - math.ceil((cost - t) * 1000 / rate) end\n"
    "redis.call('HSET', KEYS[1], 't', string.format('%.17g', t), 'ts', now)\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil((burst - t) * 1000 / rate) + 1000)\n"
    "return out\n";

typedef struct kv_redis kv_redis_t;

typedef struct rconn {
    kv_redis_t *r;
    redisAsyncContext *ac;        /* NULL while down (waiting for the retry timer) */
    bool is_sub;
    bool started;                 /* the sub connection opens at the first subscription */
    bool ready;                   /* command connection: handshake (AUTH, SELECT) answered */
    bool hs_failed;               /* the server refused AUTH or SELECT on this attempt */
    bool down_logged;             /* one warning per outage, not one per retry */
    uint32_t backoff_ms;
    uv_timer_t retry;
} rconn_t;

/* A script's arguments after the script or its SHA (cas: numkeys, key, has-expected,
 * expected, value, ttl; take: numkeys, key, rate, burst, cost); lengths, then the bytes back
 * to back. */
#define SCRIPT_MAX_ARGC 6
typedef struct script_args {
    int argc;
    size_t len[SCRIPT_MAX_ARGC];
    char bytes[];
} script_args_t;

typedef struct rreq rreq_t;
struct rreq {
    rreq_t *prev, *next;
    kv_redis_t *r;
    fv__kv_op_t op;
    fv_kv_cb cb;
    void *data;
    uint64_t deadline;
    bool finished;                /* the callback ran already (timed out) */
    bool sent;                    /* handed to hiredis; else held until the handshake is done */
    char *held;                   /* the encoded command while held */
    size_t held_len;
    struct script_args *script;   /* a script's call keeps its arguments for an EVAL retry */
};

struct kv_redis {
    fv_kv_t *kv;
    char *host;
    int port;
    int db;
    char *user;
    char *password;
    rconn_t cmd, sub;
    uv_timer_t tmo;
    rreq_t *head, *tail;          /* in flight, oldest first */
    rreq_t *cache;                /* finished requests for reuse */
    fv__kv_rpool_t *pool;         /* reply objects, shared by both connections */
    size_t ncache;
    char sha[41];
    bool have_sha;
    char take_sha[41];            /* TAKE_SCRIPT's SHA1, computed here: EVALSHA from the start */
    bool closing;
    int open_handles;
    void (*done)(fv_kv_t *kv);
};

static void conn_start(rconn_t *c);

/* ---- request list and timeouts ------------------------------------------------------------ */

static void list_add(kv_redis_t *r, rreq_t *q)
{
    q->next = NULL;
    q->prev = r->tail;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
}

static void list_remove(kv_redis_t *r, rreq_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
    q->prev = q->next = NULL;
}

/* Finished requests are kept for reuse, up to a bound: at a million requests a second the
 * allocator shows up in profiles. */
#define REQ_CACHE_MAX 256

static void req_free(rreq_t *q)
{
    kv_redis_t *r = q->r;
    fv_free(q->script);
    fv_free(q->held);
    q->script = NULL;
    q->held = NULL;
    if (r->ncache < REQ_CACHE_MAX) {
        q->next = r->cache;
        r->cache = q;
        r->ncache++;
        return;
    }
    fv_free(q);
}

static rreq_t *req_new(kv_redis_t *r)
{
    rreq_t *q = r->cache;
    if (q) {
        r->cache = q->next;
        r->ncache--;
        memset(q, 0, sizeof(*q));
    } else {
        q = fv_calloc(1, sizeof(*q));
    }
    q->r = r;
    return q;
}

static void on_tmo(uv_timer_t *t)
{
    kv_redis_t *r = t->data;
    uint64_t now = uv_now(r->kv->loop), next = 0;
    rreq_t *q = r->head;
    while (q) {
        rreq_t *following = q->next;
        if (!q->finished && q->deadline <= now) {
            fv_log_debug("kv", "redis request timed out after %" PRIu32 " ms",
                         r->kv->opts.command_timeout_ms);
            q->finished = true;
            /* A held request is ours alone; a sent one waits for hiredis to let go. */
            if (!q->sent)
                list_remove(r, q);
            q->cb(r->kv, FV_ETIMEDOUT, NULL, q->data);
            if (!q->sent)
                req_free(q);
        } else if (!q->finished && (!next || q->deadline < next)) {
            next = q->deadline;
        }
        q = following;
    }
    if (next && !r->closing)
        uv_timer_start(&r->tmo, on_tmo, next - now, 0);
}

/* ---- replies ------------------------------------------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int map_error(const redisReply *rep)
{
    const char *s = rep->str ? rep->str : "";
    if (starts(s, "WRONGTYPE") || starts(s, "ERR value is not") ||
        starts(s, "ERR increment or decrement would overflow") ||
        starts(s, "ERR resulting score is not a number") || strstr(s, "WRONGTYPE"))
        return FV_EINVAL;
    fv_log_warn("kv", "redis error: %.200s", s);
    return FV_EBACKEND;
}

static bool parse_score(const redisReply *e, double *out)
{
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 64)
        return false;
    char buf[65];
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return end == buf + e->len;
}

/* Turn a reply into our shape and run the callback. */
static void deliver(kv_redis_t *r, rreq_t *q, const redisReply *rep)
{
    fv_kv_t *kv = r->kv;
    if (!rep) {
        q->cb(kv, r->closing ? FV_ECANCELED : FV_EBACKEND, NULL, q->data);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        q->cb(kv, map_error(rep), NULL, q->data);
        return;
    }
    fv_kv_reply_t out = {.type = FV_KV_NIL};
    fv_kv_elem_t *elems = NULL;
    int rc = 0;
    switch (q->op) {
    case FV__KV_GET:
    case FV__KV_HGET:
        if (rep->type == REDIS_REPLY_STRING) {
            if (rep->len > kv->opts.max_value_bytes)
                rc = FV_ETOOBIG;   /* written by someone with a larger ceiling */
            out.type = FV_KV_STR;
            out.str = fv_slice(rep->str, rep->len);
        } else if (rep->type != REDIS_REPLY_NIL) {
            rc = FV_EPROTO;
        }
        break;
    case FV__KV_SET:
        out.type = FV_KV_INT;
        out.integer = rep->type == REDIS_REPLY_STATUS;
        if (rep->type != REDIS_REPLY_STATUS && rep->type != REDIS_REPLY_NIL)
            rc = FV_EPROTO;
        break;
    case FV__KV_TAKE:
        if (rep->type == REDIS_REPLY_INTEGER) {
            out.type = FV_KV_INT;
            out.integer = rep->integer;
        } else if (rep->type != REDIS_REPLY_NIL) {
            rc = FV_EPROTO;
        }
        break;
    case FV__KV_CAS:
        if (rep->type != REDIS_REPLY_INTEGER)
            rc = FV_EPROTO;
        else if (rep->integer != 1)
            rc = FV_ECONFLICT;
        out.type = FV_KV_INT;
        out.integer = 1;
        break;
    case FV__KV_ZINCRBY:
    case FV__KV_ZSCORE:
        if (rep->type == REDIS_REPLY_STRING) {
            out.type = FV_KV_SCORE;
            if (!parse_score(rep, &out.score))
                rc = FV_EPROTO;
        } else if (rep->type != REDIS_REPLY_NIL) {
            rc = FV_EPROTO;
        }
        break;
    case FV__KV_HGETALL:
    case FV__KV_ZRANGE:
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
            rc = FV_EPROTO;
            break;
        }
        out.type = FV_KV_ARRAY;
        out.count = rep->elements / 2;
        if (out.count && !(elems = fv_try_malloc(out.count * sizeof(*elems)))) {
            rc = FV_ENOMEM;
            break;
        }
        for (size_t i = 0; i < out.count && rc == 0; i++) {
            const redisReply *a = rep->element[2 * i], *b = rep->element[2 * i + 1];
            if (a->type != REDIS_REPLY_STRING) {
                rc = FV_EPROTO;
                break;
            }
            elems[i] = (fv_kv_elem_t){.str = fv_slice(a->str, a->len)};
            if (q->op == FV__KV_HGETALL) {
                if (b->type != REDIS_REPLY_STRING)
                    rc = FV_EPROTO;
                else
                    elems[i].val = fv_slice(b->str, b->len);
            } else if (!parse_score(b, &elems[i].score)) {
                rc = FV_EPROTO;
            }
        }
        out.elems = elems;
        break;
    default:   /* the integer replies */
        if (rep->type != REDIS_REPLY_INTEGER)
            rc = FV_EPROTO;
        out.type = FV_KV_INT;
        out.integer = rep->integer;
        break;
    }
    if (rc == FV_EPROTO)
        fv_log_warn("kv", "redis: unexpected reply type %d", rep->type);
    q->cb(kv, rc, rc < 0 ? NULL : &out, q->data);
    fv_free(elems);
}

static int send_script(rconn_t *c, rreq_t *q, bool eval);

static bool is_noscript(const redisReply *rep)
{
    return rep && rep->type == REDIS_REPLY_ERROR && rep->str && starts(rep->str, "NOSCRIPT");
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rreq_t *q = priv;
    kv_redis_t *r = q->r;
    const redisReply *rep = reply;
    /* The script cache was flushed (or the server restarted): send the script itself. */
    if (q->script && !q->finished && !r->closing && is_noscript(rep)) {
        if (q->op == FV__KV_CAS)
            r->have_sha = false;
        if (send_script(&r->cmd, q, true) == 0)
            return;
        rep = NULL;
    }
    list_remove(r, q);
    if (!q->finished)
        deliver(r, q, rep);
    req_free(q);
}

/* ---- commands ------------------------------------------------------------------------------ */

/* Queue an encoded command with on_reply(q). With hiredis 0.14 this does what
 * redisAsyncFormattedCommand() does for a plain command on an unsubscribed connection (push
 * the callback, append to the output buffer, ask for a write) minus its three case-insensitive
 * compares of the command name per call, measurable when pipelining. The callback node is
 * allocated with hiredis's allocator because hiredis frees it. Other versions take the public
 * call. */
static int append_command(redisAsyncContext *ac, rreq_t *q, const char *cmd, size_t len)
{
#if HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14
    redisContext *c = &ac->c;
    if (c->flags & (REDIS_DISCONNECTING | REDIS_FREEING | REDIS_SUBSCRIBED | REDIS_MONITORING))
        return REDIS_ERR;
    redisCallback *cb = hi_malloc(sizeof(*cb));
    if (!cb)
        return REDIS_ERR;
    memset(cb, 0, sizeof(*cb));
    cb->fn = on_reply;
    cb->privdata = q;
    sds obuf = sdscatlen(c->obuf, cmd, len);
    if (!obuf) {
        free(cb);
        return REDIS_ERR;
    }
    c->obuf = obuf;
    if (!ac->replies.head)
        ac->replies.head = cb;
    if (ac->replies.tail)
        ac->replies.tail->next = cb;
    ac->replies.tail = cb;
    if (ac->ev.addWrite)
        ac->ev.addWrite(ac->ev.data);
    return REDIS_OK;
#else
    return redisAsyncFormattedCommand(ac, on_reply, q, cmd, len);
#endif
}

static char *put_num(char *p, char tag, size_t v)
{
    if (v < 10) {   /* argument counts and most lengths */
        p[0] = tag;
        p[1] = (char)('0' + v);
        p[2] = '\r';
        p[3] = '\n';
        return p + 4;
    }
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    *p++ = tag;
    while (n)
        *p++ = tmp[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* RESP encoding done here rather than by redisAsyncCommandArgv(): hiredis formats with
 * sdscatfmt, which was the largest single cost in a pipelined profile. Small commands are
 * encoded on the stack. */
static int send_argv(rconn_t *c, rreq_t *q, int argc, const char **argv, const size_t *lens)
{
    if (!c->ac)
        return FV_EBACKEND;
    size_t total = 24;
    for (int i = 0; i < argc; i++)
        total += lens[i] + 24 + 2;
    char stack[512], *buf = total <= sizeof(stack) ? stack : fv_try_malloc(total);
    if (!buf)
        return FV_ENOMEM;
    char *p = put_num(buf, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p = put_num(p, '$', lens[i]);
        if (lens[i])
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    size_t len = (size_t)(p - buf);
    int rc = 0;
    if (c->ready) {
        rc = append_command(c->ac, q, buf, len) == REDIS_OK ? 0 : FV_EBACKEND;
        q->sent = rc == 0;
    } else if (!(q->held = fv_try_malloc(len))) {
        rc = FV_ENOMEM;
    } else {
        /* AUTH/SELECT not answered yet: a command sent now could run as the wrong user or on
         * the wrong database. */
        memcpy(q->held, buf, len);
        q->held_len = len;
    }
    if (buf != stack)
        fv_free(buf);
    return rc;
}

/* The handshake was answered: send what waited for it, in order. */
static void send_held(kv_redis_t *r)
{
    for (rreq_t *q = r->head; q && r->cmd.ac; q = q->next) {
        if (q->sent)
            continue;
        if (append_command(r->cmd.ac, q, q->held, q->held_len) != REDIS_OK)
            return;   /* the connection is going down; conn_lost() fails the rest */
        q->sent = true;
        fv_free(q->held);
        q->held = NULL;
    }
}

/* Requests hiredis never saw get status now (those it holds come back through on_reply). */
static void fail_held(kv_redis_t *r, int status)
{
    rreq_t *q = r->head;
    while (q) {
        rreq_t *following = q->next;
        if (!q->sent) {
            list_remove(r, q);
            if (!q->finished)
                q->cb(r->kv, status, NULL, q->data);
            req_free(q);
        }
        q = following;
    }
}

static int send_script(rconn_t *c, rreq_t *q, bool eval)
{
    kv_redis_t *r = c->r;
    const char *argv[2 + SCRIPT_MAX_ARGC];
    size_t lens[2 + SCRIPT_MAX_ARGC];
    bool take = q->op == FV__KV_TAKE;
    if (eval || (!take && !r->have_sha)) {
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = take ? TAKE_SCRIPT : CAS_SCRIPT;
        lens[1] = take ? sizeof(TAKE_SCRIPT) - 1 : sizeof(CAS_SCRIPT) - 1;
    } else {
        argv[0] = "EVALSHA";
        lens[0] = 7;
        argv[1] = take ? r->take_sha : r->sha;
        lens[1] = 40;
    }
    const char *b = q->script->bytes;
    for (int i = 0; i < q->script->argc; i++) {
        argv[2 + i] = b;
        lens[2 + i] = q->script->len[i];
        b += q->script->len[i];
    }
    return send_argv(c, q, 2 + q->script->argc, argv, lens);
}

/* Keeps a script's arguments with q (a NOSCRIPT answer means sending them again as EVAL). */
static int script_args(rreq_t *q, const fv_slice_t *parts, int argc)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += parts[i].len;
    if (!(q->script = fv_try_malloc(sizeof(*q->script) + total)))
        return FV_ENOMEM;
    q->script->argc = argc;
    char *b = q->script->bytes;
    for (int i = 0; i < argc; i++) {
        if (parts[i].len)
            memcpy(b, parts[i].ptr, parts[i].len);
        q->script->len[i] = parts[i].len;
        b += parts[i].len;
    }
    return 0;
}

static const char *fmt_num(char *buf, size_t cap, size_t *len, int64_t v)
{
    *len = (size_t)snprintf(buf, cap, "%" PRId64, v);
    return buf;
}

static const char *fmt_score(char *buf, size_t cap, size_t *len, double v)
{
    *len = (size_t)snprintf(buf, cap, "%.17g", v);
    return buf;
}

static int redis_submit(fv_kv_t *kv, const fv__kv_args_t *a, fv_kv_cb cb, void *data)
{
    kv_redis_t *r = kv->backend;
    if (!r->cmd.ac) {
        fv__kv_fail_later(kv, FV_EBACKEND, cb, data);
        return 0;
    }
    rreq_t *q = req_new(r);
    q->op = a->op;
    q->cb = cb;
    q->data = data;
    const char *argv[8];
    size_t lens[8];
    int argc = 0;
    char n1[32], n2[32];
    size_t l1, l2;
#define ARG(p, l) (argv[argc] = (p), lens[argc] = (l), argc++)
#define ARGS(s) ARG((s).ptr, (s).len)
#define ARGC(lit) ARG(lit, sizeof(lit) - 1)
    int rc;
    switch (a->op) {
    case FV__KV_GET: ARGC("GET"); ARGS(a->key); break;
    case FV__KV_SET:
        ARGC("SET"); ARGS(a->key); ARGS(a->b);
        if (a->n1) {
            ARGC("PX");
            ARG(fmt_num(n1, sizeof(n1), &l1, a->n1), l1);
        }
        if (a->flags & FV_KV_NX)
            ARGC("NX");
        if (a->flags & FV_KV_XX)
            ARGC("XX");
        break;
    case FV__KV_DEL: ARGC("DEL"); ARGS(a->key); break;
    case FV__KV_INCRBY:
        ARGC("INCRBY"); ARGS(a->key); ARG(fmt_num(n1, sizeof(n1), &l1, a->n1), l1);
        break;
    case FV__KV_EXPIRE:
        ARGC("PEXPIRE"); ARGS(a->key); ARG(fmt_num(n1, sizeof(n1), &l1, a->n1), l1);
        break;
    case FV__KV_TTL: ARGC("PTTL"); ARGS(a->key); break;
    case FV__KV_HSET: ARGC("HSET"); ARGS(a->key); ARGS(a->a); ARGS(a->b); break;
    case FV__KV_HGET: ARGC("HGET"); ARGS(a->key); ARGS(a->a); break;
    case FV__KV_HGETALL: ARGC("HGETALL"); ARGS(a->key); break;
    case FV__KV_HDEL: ARGC("HDEL"); ARGS(a->key); ARGS(a->a); break;
    case FV__KV_ZADD:
        ARGC("ZADD"); ARGS(a->key); ARG(fmt_score(n1, sizeof(n1), &l1, a->score), l1);
        ARGS(a->a);
        break;
    case FV__KV_ZINCRBY:
        ARGC("ZINCRBY"); ARGS(a->key); ARG(fmt_score(n1, sizeof(n1), &l1, a->score), l1);
        ARGS(a->a);
        break;
    case FV__KV_ZSCORE: ARGC("ZSCORE"); ARGS(a->key); ARGS(a->a); break;
    case FV__KV_ZREM: ARGC("ZREM"); ARGS(a->key); ARGS(a->a); break;
    case FV__KV_ZRANGE:
        /* ZREVRANGE rather than ZRANGE ... REV: servers before 6.2 know only the former. */
        if (a->flags & FV_KV_REV)
            ARGC("ZREVRANGE");
        else
            ARGC("ZRANGE");
        ARGS(a->key);
        ARG(fmt_num(n1, sizeof(n1), &l1, a->n1), l1);
        ARG(fmt_num(n2, sizeof(n2), &l2, a->n2), l2);
        ARGC("WITHSCORES");
        break;
    case FV__KV_PUBLISH: ARGC("PUBLISH"); ARGS(a->key); ARGS(a->a); break;
    case FV__KV_CAS: {
        char ttl[32];
        size_t tl;
        fmt_num(ttl, sizeof(ttl), &tl, a->n1);
        fv_slice_t parts[6] = {FV_SLICE_LIT("1"), a->key,
                               a->a.ptr ? FV_SLICE_LIT("1") : FV_SLICE_LIT("0"),
                               a->a, a->b, fv_slice(ttl, tl)};
        if (script_args(q, parts, 6) < 0) {
            req_free(q);
            return FV_ENOMEM;
        }
        rc = send_script(&r->cmd, q, false);
        goto sent;
    }
    case FV__KV_TAKE: {
        char rate[32], burst[32], cost[32];
        size_t rl, bl, cl;
        fmt_score(rate, sizeof(rate), &rl, a->score);
        fmt_num(burst, sizeof(burst), &bl, a->n1);
        fmt_num(cost, sizeof(cost), &cl, a->n2);
        fv_slice_t parts[6] = {FV_SLICE_LIT("1"), a->key, a->a, fv_slice(rate, rl),
                               fv_slice(burst, bl), fv_slice(cost, cl)};
        int n = 6;
        if (a->a.len) {
            parts[0] = FV_SLICE_LIT("2");
        } else {
            memmove(&parts[2], &parts[3], 3 * sizeof(parts[0]));
            n = 5;
        }
        if (script_args(q, parts, n) < 0) {
            req_free(q);
            return FV_ENOMEM;
        }
        rc = send_script(&r->cmd, q, false);
        goto sent;
    }
    }
#undef ARG
#undef ARGS
#undef ARGC
    rc = send_argv(&r->cmd, q, argc, argv, lens);
sent:
    if (rc < 0) {
        req_free(q);
        fv__kv_fail_later(kv, rc, cb, data);
        return 0;
    }
    q->deadline = uv_now(kv->loop) + kv->opts.command_timeout_ms;
    list_add(r, q);
    if (!uv_is_active((uv_handle_t *)&r->tmo))
        uv_timer_start(&r->tmo, on_tmo, kv->opts.command_timeout_ms, 0);
    return 0;
}

/* ---- connections --------------------------------------------------------------------------- */

static bool has_live_subs(const kv_redis_t *r)
{
    for (const fv_kv_sub_t *s = r->kv->subs; s; s = s->next)
        if (!s->dead)
            return true;
    return false;
}

static void on_retry(uv_timer_t *t)
{
    rconn_t *c = t->data;
    if (!c->r->closing && !c->ac)
        conn_start(c);
}

static void schedule_retry(rconn_t *c)
{
    if (c->r->closing)
        return;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uv_timer_start(&c->retry, on_retry, c->backoff_ms, 0);
}

static const char *conn_name(const rconn_t *c)
{
    return c->is_sub ? "pub/sub" : "command";
}

/* The connection is gone (ac already detached from c): fail what waited for it, tell the
 * subscriptions, and try again later. */
static void conn_lost(rconn_t *c, const char *why)
{
    kv_redis_t *r = c->r;
    c->ready = false;
    if (!c->is_sub) {
        r->have_sha = false;
        fail_held(r, r->closing ? FV_ECANCELED : FV_EBACKEND);
    } else if (!r->closing) {
        fv__kv_subs_lost(r->kv);
    }
    if (r->closing)
        return;
    if (!c->down_logged)
        fv_log_warn("kv", "redis %s:%d (%s connection): %s; reconnecting", r->host, r->port,
                    conn_name(c), why);
    c->down_logged = true;
    schedule_retry(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    if (c->ac != ac)
        return;   /* abandoned by on_connect_timeout() */
    if (status != REDIS_OK) {
        c->ac = NULL;   /* hiredis frees ac after this returns */
        conn_lost(c, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    if (c->is_sub) {
        /* Subscriptions need no gate: their confirmations say when they are live. */
        c->ready = true;
        uv_timer_stop(&c->retry);
        c->backoff_ms = 0;
        if (c->down_logged)
            fv_log_info("kv", "redis %s:%d (pub/sub connection): connected again", c->r->host,
                        c->r->port);
        c->down_logged = false;
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    if (c->ac != ac)
        return;   /* we let go of it ourselves */
    c->ac = NULL;
    conn_lost(c, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* Connecting (or the handshake) took longer than a command may: give up on this attempt, as a
 * server that does not answer a SYN would otherwise hold requests for minutes. */
static void on_connect_timeout(uv_timer_t *t)
{
    rconn_t *c = t->data;
    if (!c->ac || c->ready)
        return;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    redisAsyncFree(ac);   /* from a timer, never inside hiredis: immediate */
    conn_lost(c, "no answer within the command timeout");
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
    rconn_t *c = priv;
    const redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        c->hs_failed = true;
        if (!c->down_logged)
            fv_log_error("kv", "redis %s:%d (%s connection) refused the handshake: %.200s",
                         c->r->host, c->r->port, conn_name(c), rep->str);
    }
}

/* The last answer of the command connection's handshake. */
static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    rconn_t *c = priv;
    kv_redis_t *r = c->r;
    const redisReply *rep = reply;
    if (!rep || c->ac != ac)
        return;   /* the connection went away; conn_lost() ran or will */
    if (c->hs_failed) {
        /* Wrong password or database: not usable; keep retrying, quietly after the first. */
        c->down_logged = true;
        c->ac = NULL;
        redisAsyncFree(ac);   /* inside a hiredis callback: hiredis frees it on return */
        conn_lost(c, "handshake refused");
        return;
    }
    if (rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(r->sha, rep->str, 40);
        r->sha[40] = '\0';
        r->have_sha = true;
    }
    c->ready = true;
    uv_timer_stop(&c->retry);
    c->backoff_ms = 0;
    if (c->down_logged)
        fv_log_info("kv", "redis %s:%d (command connection): connected again", r->host,
                    r->port);
    c->down_logged = false;
    send_held(r);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rconn_t *c = priv;
    const redisReply *rep = reply;
    if (!rep || c->r->closing || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
        return;
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type != REDIS_REPLY_STRING && i + 1 < rep->elements)
            return;
    fv_slice_t kind = fv_slice(rep->element[0]->str, rep->element[0]->len);
#define EL(i) fv_slice(rep->element[i]->str, rep->element[i]->len)
    if (fv_slice_eq_cstr(kind, "message")) {
        fv__kv_dispatch(c->r->kv, false, EL(1), EL(1), EL(2));
    } else if (fv_slice_eq_cstr(kind, "pmessage") && rep->elements >= 4) {
        fv__kv_dispatch(c->r->kv, true, EL(1), EL(2), EL(3));
    } else if (fv_slice_eq_cstr(kind, "subscribe")) {
        fv__kv_subs_ready(c->r->kv, false, EL(1));
    } else if (fv_slice_eq_cstr(kind, "psubscribe")) {
        fv__kv_subs_ready(c->r->kv, true, EL(1));
    }
#undef EL
}

static void send_subscribe(rconn_t *c, fv_slice_t name, bool pattern, bool unsub)
{
    if (!c->ac)
        return;
    const char *cmd = unsub ? (pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE")
                            : (pattern ? "PSUBSCRIBE" : "SUBSCRIBE");
    const char *argv[2] = {cmd, name.ptr ? name.ptr : ""};
    size_t lens[2] = {strlen(cmd), name.len};
    /* (P)UNSUBSCRIBE takes no callback in hiredis: the confirmation goes to the channel's. */
    if (redisAsyncCommandArgv(c->ac, unsub ? NULL : on_sub_reply, c, 2, argv, lens) != REDIS_OK)
        fv_log_debug("kv", "redis: %s not sent (connection going down)", cmd);
}

static void conn_start(rconn_t *c)
{
    kv_redis_t *r = c->r;
    /* A subscription connection with nothing to subscribe would never finish connecting
     * (hiredis notices the connect only when it has something to write): wait for one. */
    c->started = !c->is_sub || has_live_subs(r);
    if (!c->started)
        return;
    c->ready = false;
    c->hs_failed = false;
    /* Resolves the host name synchronously (getaddrinfo); use an address where that matters. */
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        conn_lost(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_lost(c, why);
        return;
    }
    ac->data = c;
    if (fv__kv_redis_attach(ac, r->kv->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_lost(c, "cannot watch the socket");
        return;
    }
    fv__kv_rpool_use(ac, r->pool);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    /* from now, not the loop's cached time: redisAsyncConnect resolves names synchronously */
    uv_update_time(r->kv->loop);
    uv_timer_start(&c->retry, on_connect_timeout, r->kv->opts.command_timeout_ms, 0);
    /* The handshake goes first in the output buffer; requests wait for its last answer. */
    if (r->password) {
        const char *argv[3] = {"AUTH", r->user ? r->user : r->password, r->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(r->password)};
        redisAsyncCommandArgv(ac, on_handshake, c, r->user ? 3 : 2, argv, lens);
    }
    if (c->is_sub) {
        /* Once per distinct name; kv.c holds the list, newest first. */
        for (fv_kv_sub_t *s = r->kv->subs; s; s = s->next) {
            if (s->dead)
                continue;
            bool dup = false;
            for (fv_kv_sub_t *t = r->kv->subs; t != s && !dup; t = t->next)
                dup = !t->dead && t->pattern == s->pattern && t->len == s->len &&
                      memcmp(t->name, s->name, s->len) == 0;
            if (!dup)
                send_subscribe(c, fv_slice(s->name, s->len), s->pattern, false);
        }
        return;
    }
    if (r->db) {
        char db[16];
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)snprintf(db, sizeof(db), "%d", r->db)};
        redisAsyncCommandArgv(ac, on_handshake, c, 2, argv, lens);
    }
    const char *argv[3] = {"SCRIPT", "LOAD", CAS_SCRIPT};
    size_t lens[3] = {6, 4, sizeof(CAS_SCRIPT) - 1};
    redisAsyncCommandArgv(ac, on_script_loaded, c, 3, argv, lens);
}

static void redis_sub_add(fv_kv_t *kv, fv_kv_sub_t *sub)
{
    kv_redis_t *r = kv->backend;
    if (!r->sub.started)
        conn_start(&r->sub);   /* subscribes everything live, this one included */
    else
        send_subscribe(&r->sub, fv_slice(sub->name, sub->len), sub->pattern, false);
}

static void redis_sub_remove(fv_kv_t *kv, fv_slice_t name, bool pattern)
{
    kv_redis_t *r = kv->backend;
    send_subscribe(&r->sub, name, pattern, true);
}

/* ---- URL, open, close ---------------------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decoded copy of [p, p+len), or NULL when malformed. */
static char *decode(const char *p, size_t len)
{
    char *out = fv_malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            int h, l;
            if (i + 2 >= len) {
                fv_free(out);
                return NULL;
            }
            if ((h = hexval(p[i + 1])) < 0 || (l = hexval(p[i + 2])) < 0 || h * 16 + l == 0) {
                fv_free(out);
                return NULL;
            }
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(kv_redis_t *r, const char *url, fv_error_t *err)
{
    const char *p = url + strlen("redis://");
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (colon && colon > p && !(r->user = decode(p, (size_t)(colon - p))))
            goto bad;
        if (!(r->password = decode(pw, (size_t)(at - pw))))
            goto bad;
        if (!*r->password) {
            fv_free(r->password);
            r->password = NULL;
        }
        p = at + 1;
    }
    const char *host = p, *host_end;
    const char *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            goto bad;
        if (host_end + 1 < end && host_end[1] == ':')
            port = host_end + 2;
        else if (host_end + 1 != end)
            goto bad;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
    }
    if (host_end == host)
        goto bad;
    r->host = fv_strndup(host, (size_t)(host_end - host));
    r->port = 6379;
    if (port) {
        char *e;
        long v = strtol(port, &e, 10);
        if (e != end || port == end || v < 1 || v > 65535)
            return fv_error_set(err, FV_EINVAL, "kv: redis URL: port must be 1..65535");
        r->port = (int)v;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long v = strtol(end + 1, &e, 10);
        if (*e || e == end + 1 || v < 0 || v > 100000)
            return fv_error_set(err, FV_EINVAL,
                                "kv: redis URL: the path must be a database number 0..100000");
        r->db = (int)v;
    } else if (*end && !(*end == '/' && !end[1])) {
        goto bad;
    }
    return 0;
bad:
    /* The URL may hold a password: none of it goes into the message. */
    return fv_error_set(err, FV_EINVAL,
                        "kv: redis URL: expected redis://[[user]:password@]host[:port][/db]");
}

static void redis_free(kv_redis_t *r)
{
    fv__kv_rpool_free(r->pool);
    while (r->cache) {
        rreq_t *q = r->cache;
        r->cache = q->next;
        fv_free(q);
    }
    fv_free(r->host);
    fv_free(r->user);
    if (r->password)
        memset(r->password, 0, strlen(r->password));
    fv_free(r->password);
    fv_free(r);
}

static int redis_open(fv_kv_t *kv, const char *url, fv_error_t *err)
{
    kv_redis_t *r = fv_calloc(1, sizeof(*r));
    r->kv = kv;
    uint8_t digest[FV_SHA1_LEN];
    fv_sha1_t h;
    fv_sha1_init(&h);
    fv_sha1_update(&h, TAKE_SCRIPT, sizeof(TAKE_SCRIPT) - 1);
    fv_sha1_final(&h, digest);
    for (int i = 0; i < FV_SHA1_LEN; i++)
        snprintf(r->take_sha + 2 * i, 3, "%02x", digest[i]);
    r->pool = fv__kv_rpool_new();
    int rc = parse_url(r, url, err);
    if (rc < 0) {
        redis_free(r);
        return rc;
    }
    kv->backend = r;
    rconn_t *conns[2] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        conns[i]->r = r;
        conns[i]->is_sub = i == 1;
        uv_timer_init(kv->loop, &conns[i]->retry);
        conns[i]->retry.data = conns[i];
    }
    uv_timer_init(kv->loop, &r->tmo);
    r->tmo.data = r;
    r->open_handles = 3;
    conn_start(&r->cmd);
    return 0;
}

static void handle_closed(kv_redis_t *r)
{
    if (--r->open_handles > 0)
        return;
    fv_kv_t *kv = r->kv;
    void (*done)(fv_kv_t *) = r->done;
    redis_free(r);
    kv->backend = NULL;
    done(kv);
}

static void on_tmo_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_retry_closed(uv_handle_t *h)
{
    handle_closed(((rconn_t *)h->data)->r);
}

static void redis_close(fv_kv_t *kv, void (*done)(fv_kv_t *kv))
{
    kv_redis_t *r = kv->backend;
    r->closing = true;
    r->done = done;
    /* Runs from kv.c's idle callback, never inside hiredis, so the free is immediate: pending
     * requests get a NULL reply now and report FV_ECANCELED. */
    redisAsyncContext *cmd = r->cmd.ac, *sub = r->sub.ac;
    r->cmd.ac = r->sub.ac = NULL;
    if (cmd)
        redisAsyncFree(cmd);
    fail_held(r, FV_ECANCELED);   /* after the sent ones: callbacks in submission order */
    if (sub)
        redisAsyncFree(sub);
    /* Requests that timed out were answered; hiredis released the rest above. */
    uv_close((uv_handle_t *)&r->cmd.retry, on_retry_closed);
    uv_close((uv_handle_t *)&r->sub.retry, on_retry_closed);
    uv_close((uv_handle_t *)&r->tmo, on_tmo_closed);
}

const fv__kv_ops_t fv__kv_redis_ops = {
    .name = "redis",
    .open = redis_open,
    .submit = redis_submit,
    .sub_add = redis_sub_add,
    .sub_remove = redis_sub_remove,
    .close = redis_close,
};
