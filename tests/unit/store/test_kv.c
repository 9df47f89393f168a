/* test_kv.c - the kv store: one conformance suite run unchanged against memory: and Redis
 * (every operation, TTL expiry, NX/XX, counters, compare-and-set, hashes, sorted-set order with
 * ties, pub/sub order and unsubscribe, size ceilings, binary values, cancellation on close),
 * then a Redis fault test (server stopped -> timeouts, killed -> FV_EBACKEND, restarted on the
 * same port -> requests and the subscription work again without reopening) and the memory
 * snapshot round trip. Every wait is bounded by a watchdog timer; every loop closes cleanly.
 * fv-test-needs: servers (PostgreSQL, Redis, S3 started once per suite by CTest fixtures) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "core/alloc.h"
#include "store/kv.h"
#include "store/kv_internal.h"
#include "test_servers.h"

#define MAX_VALUE 4096
#define WAIT_MS 5000

typedef struct fixture {
    uv_loop_t loop;
    fv_kv_t *kv;
    char url[512];
    char prefix[32];
    char keybuf[8][256];
    int keyi;
} fixture_t;

typedef struct result {
    int done;
    int status;
    fv_kv_reply_type_t type;
    int64_t integer;
    double score;
    char str[MAX_VALUE + 1];
    size_t len;
    size_t count;
    struct {
        char s[64];
        char v[64];
        double score;
    } el[16];
} result_t;

/* ---- loop helpers -------------------------------------------------------------------------- */

static void on_watchdog(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is set or timeout_ms pass; returns whether *flag got set. */
static int run_until(uv_loop_t *loop, const int *flag, uint64_t timeout_ms)
{
    uv_timer_t wd;
    int fired = 0;
    uv_timer_init(loop, &wd);
    wd.data = &fired;
    uv_timer_start(&wd, on_watchdog, timeout_ms, 0);
    while (!*flag && !fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static void sleep_ms(uv_loop_t *loop, uint64_t ms)
{
    int never = 0;
    run_until(loop, &never, ms);
}

static void on_result(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    result_t *res = data;
    assert_int_equal(res->done, 0);   /* exactly once */
    res->done = 1;
    res->status = status;
    if (status < 0) {
        assert_null(r);
        return;
    }
    assert_non_null(r);
    res->type = r->type;
    res->integer = r->integer;
    res->score = r->score;
    if (r->type == FV_KV_STR) {
        assert_true(r->str.len <= MAX_VALUE);
        if (r->str.len)
            memcpy(res->str, r->str.ptr, r->str.len);
        res->len = r->str.len;
    }
    if (r->type == FV_KV_ARRAY) {
        res->count = r->count;
        for (size_t i = 0; i < r->count && i < 16; i++) {
            assert_true(r->elems[i].str.len < 64 && r->elems[i].val.len < 64);
            snprintf(res->el[i].s, 64, "%.*s", (int)r->elems[i].str.len, r->elems[i].str.ptr);
            snprintf(res->el[i].v, 64, "%.*s", (int)r->elems[i].val.len,
                     r->elems[i].val.ptr ? r->elems[i].val.ptr : "");
            res->el[i].score = r->elems[i].score;
        }
    }
}

/* Issue one request, check it did not complete inside the call, and wait for it. */
#define DO(f, res, call)                                                                   \
    do {                                                                                   \
        memset(&(res), 0, sizeof(res));                                                    \
        assert_int_equal((call), 0);                                                       \
        assert_int_equal((res).done, 0);                                                   \
        assert_true(run_until(&(f)->loop, &(res).done, WAIT_MS));                          \
    } while (0)

static fv_slice_t key(fixture_t *f, const char *name)
{
    char *b = f->keybuf[f->keyi++ % 8];
    int n = snprintf(b, 256, "%s%s", f->prefix, name);
    return fv_slice(b, (size_t)n);
}

#define S(lit) FV_SLICE_LIT(lit)

static void expect_str(const result_t *r, const char *want, size_t len)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->type, FV_KV_STR);
    assert_int_equal(r->len, len);
    assert_memory_equal(r->str, want, len);
}

static void expect_int(const result_t *r, int64_t want)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->type, FV_KV_INT);
    assert_int_equal(r->integer, want);
}

static void expect_nil(const result_t *r)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->type, FV_KV_NIL);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static void close_kv(uv_loop_t *loop, fv_kv_t *kv)
{
    int closed = 0;
    fv_kv_close(kv, on_closed, &closed);
    assert_int_equal(closed, 0);
    assert_true(run_until(loop, &closed, WAIT_MS));
}

static fv_kv_opts_t test_opts(void)
{
    return (fv_kv_opts_t){.command_timeout_ms = 2000, .max_value_bytes = MAX_VALUE};
}

static int open_fixture(void **state, const char *url)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->url, sizeof(f->url), "%s", url);
    /* A fresh prefix per run: reruns against the same server start clean. */
    snprintf(f->prefix, sizeof(f->prefix), "t%d.%u:", (int)getpid(), (unsigned)uv_hrtime());
    fv_kv_opts_t o = test_opts();
    fv_error_t err = {0};
    int rc = fv_kv_open(&f->loop, url, &o, &f->kv, &err);
    if (rc < 0)
        fprintf(stderr, "open %s: %s\n", url, err.msg);
    assert_int_equal(rc, 0);
    *state = f;
    return 0;
}

static int setup_memory(void **state)
{
    return open_fixture(state, "memory:");
}

static int setup_redis(void **state)
{
    char url[512];
    if (fv_test_server_url("redis", url, sizeof(url)) < 0) {
        fprintf(stderr, "no redis URL in $FV_TEST_SERVERS/redis.url\n");
        return -1;
    }
    return open_fixture(state, url);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    close_kv(&f->loop, f->kv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* ---- conformance --------------------------------------------------------------------------- */

static void get_set_del(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_set(f->kv, key(f, "a"), S("hello"), 0, 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    expect_str(&r, "hello", 5);
    /* Binary-safe: NULs inside keys and values. */
    static const char bin[] = {'x', 0, 'y', 0, 0, (char)0xff};
    fv_slice_t bkey = fv_slice("k\0ey", 5);
    char kb[64];
    memcpy(kb, f->prefix, strlen(f->prefix));
    memcpy(kb + strlen(f->prefix), bkey.ptr, bkey.len);
    bkey = fv_slice(kb, strlen(f->prefix) + 5);
    DO(f, r, fv_kv_set(f->kv, bkey, fv_slice(bin, sizeof(bin)), 0, 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_get(f->kv, bkey, on_result, &r));
    expect_str(&r, bin, sizeof(bin));
    /* Empty value is a value, not a missing key. */
    DO(f, r, fv_kv_set(f->kv, key(f, "empty"), S(""), 0, 0, on_result, &r));
    DO(f, r, fv_kv_get(f->kv, key(f, "empty"), on_result, &r));
    expect_str(&r, "", 0);
    DO(f, r, fv_kv_del(f->kv, key(f, "a"), on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_del(f->kv, key(f, "a"), on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    expect_nil(&r);
}

static void set_nx_xx(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_set(f->kv, key(f, "n"), S("1"), 0, FV_KV_XX, on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_get(f->kv, key(f, "n"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_set(f->kv, key(f, "n"), S("1"), 0, FV_KV_NX, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_set(f->kv, key(f, "n"), S("2"), 0, FV_KV_NX, on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_get(f->kv, key(f, "n"), on_result, &r));
    expect_str(&r, "1", 1);
    DO(f, r, fv_kv_set(f->kv, key(f, "n"), S("3"), 0, FV_KV_XX, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_get(f->kv, key(f, "n"), on_result, &r));
    expect_str(&r, "3", 1);
    assert_int_equal(fv_kv_set(f->kv, key(f, "n"), S("4"), 0, FV_KV_NX | FV_KV_XX, on_result,
                               &r), FV_EINVAL);
}

/* Polls get until the key is gone; no assertion on when, beyond "within 2 s". */
static void expect_expires(fixture_t *f, fv_slice_t k)
{
    result_t r;
    uint64_t start = uv_now(&f->loop);
    for (;;) {
        char kb[256];
        memcpy(kb, k.ptr, k.len);
        DO(f, r, fv_kv_get(f->kv, fv_slice(kb, k.len), on_result, &r));
        assert_int_equal(r.status, 0);
        if (r.type == FV_KV_NIL)
            return;
        assert_true(uv_now(&f->loop) - start < 2000);
        sleep_ms(&f->loop, 20);
    }
}

static void ttl_and_expiry(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_set(f->kv, key(f, "t"), S("v"), 100, 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_ttl(f->kv, key(f, "t"), on_result, &r));
    assert_int_equal(r.status, 0);
    assert_true(r.integer >= -2 && r.integer <= 100);
    DO(f, r, fv_kv_set(f->kv, key(f, "p"), S("v"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_ttl(f->kv, key(f, "p"), on_result, &r));
    expect_int(&r, -1);
    DO(f, r, fv_kv_ttl(f->kv, key(f, "missing"), on_result, &r));
    expect_int(&r, -2);
    expect_expires(f, key(f, "t"));
    DO(f, r, fv_kv_expire(f->kv, key(f, "missing"), 100, on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_expire(f->kv, key(f, "p"), 100, on_result, &r));
    expect_int(&r, 1);
    expect_expires(f, key(f, "p"));
    /* A plain set clears an earlier TTL. */
    DO(f, r, fv_kv_set(f->kv, key(f, "c"), S("v"), 60000, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, key(f, "c"), S("w"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_ttl(f->kv, key(f, "c"), on_result, &r));
    expect_int(&r, -1);
    assert_int_equal(fv_kv_expire(f->kv, key(f, "c"), 0, on_result, &r), FV_EINVAL);
}

static void incr(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_incrby(f->kv, key(f, "ctr"), 5, on_result, &r));
    expect_int(&r, 5);
    DO(f, r, fv_kv_incrby(f->kv, key(f, "ctr"), -7, on_result, &r));
    expect_int(&r, -2);
    DO(f, r, fv_kv_get(f->kv, key(f, "ctr"), on_result, &r));
    expect_str(&r, "-2", 2);
    DO(f, r, fv_kv_set(f->kv, key(f, "word"), S("abc"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_incrby(f->kv, key(f, "word"), 1, on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
    DO(f, r, fv_kv_get(f->kv, key(f, "word"), on_result, &r));
    expect_str(&r, "abc", 3);
    DO(f, r, fv_kv_set(f->kv, key(f, "big"), S("9223372036854775807"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_incrby(f->kv, key(f, "big"), 1, on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
    DO(f, r, fv_kv_hset(f->kv, key(f, "h"), S("f"), S("1"), on_result, &r));
    DO(f, r, fv_kv_incrby(f->kv, key(f, "h"), 1, on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
}

static void cas(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_cas(f->kv, key(f, "c"), FV_SLICE_NULL, S("one"), 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_cas(f->kv, key(f, "c"), FV_SLICE_NULL, S("again"), 0, on_result, &r));
    assert_int_equal(r.status, FV_ECONFLICT);
    DO(f, r, fv_kv_cas(f->kv, key(f, "c"), S("wrong"), S("two"), 0, on_result, &r));
    assert_int_equal(r.status, FV_ECONFLICT);
    DO(f, r, fv_kv_get(f->kv, key(f, "c"), on_result, &r));
    expect_str(&r, "one", 3);
    DO(f, r, fv_kv_cas(f->kv, key(f, "c"), S("one"), fv_slice("t\0o", 3), 60000, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_get(f->kv, key(f, "c"), on_result, &r));
    expect_str(&r, "t\0o", 3);
    DO(f, r, fv_kv_ttl(f->kv, key(f, "c"), on_result, &r));
    assert_true(r.integer > 0 && r.integer <= 60000);
    /* The empty string is a value: it does not match a missing key. */
    DO(f, r, fv_kv_cas(f->kv, key(f, "none"), S(""), S("x"), 0, on_result, &r));
    assert_int_equal(r.status, FV_ECONFLICT);
    DO(f, r, fv_kv_zadd(f->kv, key(f, "z"), S("m"), 1, on_result, &r));
    DO(f, r, fv_kv_cas(f->kv, key(f, "z"), S("m"), S("x"), 0, on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
}

/* Token buckets: a fresh one is full, takes drain it, a refusal says how long to wait, a
 * slow rate refills nothing in a few milliseconds; bad arguments are refused up front, and a
 * key of another type is an error, not a bucket. */
static void take(void **state)
{
    fixture_t *f = *state;
    result_t r;
    for (int i = 4; i >= 0; i--) {
        DO(f, r, fv_kv_take(f->kv, key(f, "b"), FV_SLICE_NULL, 0.001, 5, 1, on_result, &r));
        expect_int(&r, i);
    }
    DO(f, r, fv_kv_take(f->kv, key(f, "b"), FV_SLICE_NULL, 0.001, 5, 1, on_result, &r));
    assert_int_equal(r.status, 0);
    /* 1 token at 0.001 a second: about 1,000,000 ms away */
    assert_true(r.integer < -990000 && r.integer > -1000002);
    DO(f, r, fv_kv_ttl(f->kv, key(f, "b"), on_result, &r));
    assert_true(r.integer > 1000000);            /* until full again, and a second more */
    /* a cost of 0 only looks */
    DO(f, r, fv_kv_take(f->kv, key(f, "b"), FV_SLICE_NULL, 0.001, 5, 0, on_result, &r));
    expect_int(&r, 0);
    /* a fast rate: refilled at once */
    DO(f, r, fv_kv_take(f->kv, key(f, "fast"), FV_SLICE_NULL, 1e6, 3, 3, on_result, &r));
    expect_int(&r, 0);
    assert_int_equal(fv_kv_take(f->kv, key(f, "x"), FV_SLICE_NULL, 0, 5, 1, on_result, &r), FV_EINVAL);
    assert_int_equal(fv_kv_take(f->kv, key(f, "x"), FV_SLICE_NULL, NAN, 5, 1, on_result, &r), FV_EINVAL);
    assert_int_equal(fv_kv_take(f->kv, key(f, "x"), FV_SLICE_NULL, 1, 0, 0, on_result, &r), FV_EINVAL);
    assert_int_equal(fv_kv_take(f->kv, key(f, "x"), FV_SLICE_NULL, 1, 5, 6, on_result, &r), FV_EINVAL);
    assert_int_equal(fv_kv_take(f->kv, key(f, "x"), FV_SLICE_NULL, 1, 5, -1, on_result, &r), FV_EINVAL);
    DO(f, r, fv_kv_set(f->kv, key(f, "s"), S("abc"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_take(f->kv, key(f, "s"), FV_SLICE_NULL, 1, 5, 1, on_result, &r));
    assert_true(r.status < 0);
    /* `unless`: while that key exists nothing is taken and the answer is NIL */
    fv_slice_t deny = key(f, "revoked");
    char dk[128];
    memcpy(dk, deny.ptr, deny.len);
    deny.ptr = dk;
    DO(f, r, fv_kv_take(f->kv, key(f, "u"), deny, 1, 5, 1, on_result, &r));
    expect_int(&r, 4);
    DO(f, r, fv_kv_set(f->kv, deny, S("1"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_take(f->kv, key(f, "u"), deny, 1, 5, 1, on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_take(f->kv, key(f, "u"), FV_SLICE_NULL, 1, 5, 1, on_result, &r));
    expect_int(&r, 3);                           /* the refused one took nothing */
}

/* fv_kv_take_now: the embedded store answers within the call, sharing buckets with
 * fv_kv_take, and waits its turn behind a queued request; Redis always says FV_EAGAIN. */
static void take_now(void **state)
{
    fixture_t *f = *state;
    result_t r;
    fv_kv_reply_t now;
    int rc = fv_kv_take_now(f->kv, key(f, "n"), FV_SLICE_NULL, 0.001, 3, 1, &now);
    if (rc == FV_EAGAIN) {
        DO(f, r, fv_kv_take(f->kv, key(f, "n"), FV_SLICE_NULL, 0.001, 3, 1, on_result, &r));
        expect_int(&r, 2);                       /* the store that said "later" took nothing */
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(now.type, FV_KV_INT);
    assert_int_equal(now.integer, 2);
    DO(f, r, fv_kv_take(f->kv, key(f, "n"), FV_SLICE_NULL, 0.001, 3, 1, on_result, &r));
    expect_int(&r, 1);                           /* one bucket for both ways */
    assert_int_equal(fv_kv_take_now(f->kv, key(f, "n"), FV_SLICE_NULL, 0.001, 3, 1, &now), 0);
    assert_int_equal(now.integer, 0);
    assert_int_equal(fv_kv_take_now(f->kv, key(f, "n"), FV_SLICE_NULL, 0.001, 3, 1, &now), 0);
    assert_true(now.integer < -990000);          /* refused, with the wait */
    /* a revocation queued ahead is seen: take_now defers to the queue rather than overtake */
    fv_slice_t deny = key(f, "deny");
    char dk[128];
    memcpy(dk, deny.ptr, deny.len);
    deny.ptr = dk;
    memset(&r, 0, sizeof(r));
    assert_int_equal(fv_kv_set(f->kv, deny, S("1"), 0, 0, on_result, &r), 0);
    assert_int_equal(fv_kv_take_now(f->kv, key(f, "m"), deny, 1, 5, 1, &now), FV_EAGAIN);
    assert_true(run_until(&f->loop, &r.done, WAIT_MS));
    assert_int_equal(fv_kv_take_now(f->kv, key(f, "m"), deny, 1, 5, 1, &now), 0);
    assert_int_equal(now.type, FV_KV_NIL);
    assert_int_equal(fv_kv_take_now(f->kv, key(f, "m"), FV_SLICE_NULL, 0, 5, 1, &now), FV_EINVAL);
    DO(f, r, fv_kv_set(f->kv, key(f, "str"), S("abc"), 0, 0, on_result, &r));
    assert_true(fv_kv_take_now(f->kv, key(f, "str"), FV_SLICE_NULL, 1, 5, 1, &now) < 0);
}

/* Elements start with their name (the s member), so strcmp orders them by it. */
static int cmp_el(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void hashes(void **state)
{
    fixture_t *f = *state;
    result_t r;
    DO(f, r, fv_kv_hset(f->kv, key(f, "h"), S("name"), S("ada"), on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_hset(f->kv, key(f, "h"), S("name"), S("bea"), on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_hset(f->kv, key(f, "h"), S("lvl"), S("7"), on_result, &r));
    DO(f, r, fv_kv_hget(f->kv, key(f, "h"), S("name"), on_result, &r));
    expect_str(&r, "bea", 3);
    DO(f, r, fv_kv_hget(f->kv, key(f, "h"), S("none"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_hget(f->kv, key(f, "nohash"), S("x"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_hgetall(f->kv, key(f, "h"), on_result, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, FV_KV_ARRAY);
    assert_int_equal(r.count, 2);
    qsort(r.el, 2, sizeof(r.el[0]), cmp_el);
    assert_string_equal(r.el[0].s, "lvl");
    assert_string_equal(r.el[0].v, "7");
    assert_string_equal(r.el[1].s, "name");
    assert_string_equal(r.el[1].v, "bea");
    DO(f, r, fv_kv_hdel(f->kv, key(f, "h"), S("name"), on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_hdel(f->kv, key(f, "h"), S("name"), on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_hdel(f->kv, key(f, "h"), S("lvl"), on_result, &r));
    DO(f, r, fv_kv_hgetall(f->kv, key(f, "h"), on_result, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.count, 0);
    DO(f, r, fv_kv_del(f->kv, key(f, "h"), on_result, &r));
    expect_int(&r, 0);   /* the last field took the key with it */
    /* Wrong types are refused, and nothing is damaged. */
    DO(f, r, fv_kv_set(f->kv, key(f, "s"), S("str"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_hset(f->kv, key(f, "s"), S("f"), S("v"), on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
    DO(f, r, fv_kv_hset(f->kv, key(f, "h2"), S("f"), S("v"), on_result, &r));
    DO(f, r, fv_kv_get(f->kv, key(f, "h2"), on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
    DO(f, r, fv_kv_get(f->kv, key(f, "s"), on_result, &r));
    expect_str(&r, "str", 3);
}

static void expect_members(const result_t *r, const char *const *want, size_t n)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->type, FV_KV_ARRAY);
    assert_int_equal(r->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(r->el[i].s, want[i]);
}

static void sorted_sets(void **state)
{
    fixture_t *f = *state;
    result_t r;
    fv_slice_t z = key(f, "lb");
    char zk[256];
    memcpy(zk, z.ptr, z.len);
    z = fv_slice(zk, z.len);
    DO(f, r, fv_kv_zadd(f->kv, z, S("bob"), 10, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_zadd(f->kv, z, S("cyd"), 20, on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, z, S("amy"), 10, on_result, &r));   /* tie with bob */
    DO(f, r, fv_kv_zadd(f->kv, z, S("dan"), -5.5, on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, z, S("dan"), 5, on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_zrange(f->kv, z, 0, -1, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"dan", "amy", "bob", "cyd"}, 4);
    assert_true(r.el[0].score == 5 && r.el[1].score == 10 && r.el[3].score == 20);
    DO(f, r, fv_kv_zrange(f->kv, z, 0, -1, FV_KV_REV, on_result, &r));
    expect_members(&r, (const char *const[]){"cyd", "bob", "amy", "dan"}, 4);
    DO(f, r, fv_kv_zrange(f->kv, z, 0, 1, FV_KV_REV, on_result, &r));
    expect_members(&r, (const char *const[]){"cyd", "bob"}, 2);
    DO(f, r, fv_kv_zrange(f->kv, z, 1, 2, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"amy", "bob"}, 2);
    DO(f, r, fv_kv_zrange(f->kv, z, -2, -1, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"bob", "cyd"}, 2);
    DO(f, r, fv_kv_zrange(f->kv, z, -100, 0, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"dan"}, 1);
    DO(f, r, fv_kv_zrange(f->kv, z, 5, 10, 0, on_result, &r));
    expect_members(&r, NULL, 0);
    DO(f, r, fv_kv_zrange(f->kv, z, 3, 1, 0, on_result, &r));
    expect_members(&r, NULL, 0);
    DO(f, r, fv_kv_zscore(f->kv, z, S("amy"), on_result, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, FV_KV_SCORE);
    assert_true(r.score == 10);
    DO(f, r, fv_kv_zscore(f->kv, z, S("zed"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_zincrby(f->kv, z, S("amy"), 15.5, on_result, &r));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, FV_KV_SCORE);
    assert_true(r.score == 25.5);
    DO(f, r, fv_kv_zincrby(f->kv, z, S("eve"), 1, on_result, &r));
    assert_true(r.score == 1);
    DO(f, r, fv_kv_zrange(f->kv, z, 0, -1, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"eve", "dan", "bob", "cyd", "amy"}, 5);
    DO(f, r, fv_kv_zrem(f->kv, z, S("bob"), on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_zrem(f->kv, z, S("bob"), on_result, &r));
    expect_int(&r, 0);
    DO(f, r, fv_kv_zrange(f->kv, key(f, "nozset"), 0, -1, 0, on_result, &r));
    expect_members(&r, NULL, 0);
    assert_int_equal(fv_kv_zadd(f->kv, z, S("x"), NAN, on_result, &r), FV_EINVAL);
    assert_int_equal(fv_kv_zadd(f->kv, z, S("x"), INFINITY, on_result, &r), FV_EINVAL);
    DO(f, r, fv_kv_set(f->kv, key(f, "str"), S("v"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, key(f, "str"), S("m"), 1, on_result, &r));
    assert_int_equal(r.status, FV_EINVAL);
}

typedef struct subrec {
    int ready;
    int lost;
    int count;
    char msgs[16][64];
    char chans[16][64];
} subrec_t;

static void on_msg(fv_kv_sub_t *sub, fv_kv_sub_event_t ev, fv_slice_t ch, fv_slice_t msg,
                   void *data)
{
    subrec_t *s = data;
    if (ev == FV_KV_SUB_READY) {
        s->ready++;
        return;
    }
    if (ev == FV_KV_SUB_LOST) {
        s->lost++;
        return;
    }
    assert_true(s->count < 16);
    snprintf(s->msgs[s->count], 64, "%.*s", (int)msg.len, msg.ptr);
    snprintf(s->chans[s->count], 64, "%.*s", (int)ch.len, ch.ptr);
    s->count++;
}

static void pubsub(void **state)
{
    fixture_t *f = *state;
    result_t r;
    subrec_t a = {0}, p = {0};
    fv_kv_sub_t *sa, *sp;
    char ch[128], pat[128], other[128];
    snprintf(ch, sizeof(ch), "%schat", f->prefix);
    snprintf(pat, sizeof(pat), "%sroom.*", f->prefix);
    snprintf(other, sizeof(other), "%sroom.7", f->prefix);
    assert_int_equal(fv_kv_subscribe(f->kv, fv_slice_cstr(ch), on_msg, &a, &sa), 0);
    assert_int_equal(fv_kv_psubscribe(f->kv, fv_slice_cstr(pat), on_msg, &p, &sp), 0);
    assert_int_equal(a.ready, 0);   /* never inside the call */
    assert_true(run_until(&f->loop, &a.ready, WAIT_MS));
    assert_true(run_until(&f->loop, &p.ready, WAIT_MS));
    const char *msgs[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        int before = a.count;
        memset(&r, 0, sizeof(r));
        assert_int_equal(fv_kv_publish(f->kv, fv_slice_cstr(ch), fv_slice_cstr(msgs[i]),
                                       on_result, &r), 0);
        assert_int_equal(a.count, before);   /* never delivered inside publish */
        assert_true(run_until(&f->loop, &r.done, WAIT_MS));
        expect_int(&r, 1);
    }
    DO(f, r, fv_kv_publish(f->kv, fv_slice_cstr(other), S("hi"), on_result, &r));
    expect_int(&r, 1);
    int three = 0;
    while (a.count < 3 || p.count < 1) {
        sleep_ms(&f->loop, 10);
        assert_true(++three < 500);
    }
    assert_int_equal(a.count, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(a.msgs[i], msgs[i]);
        assert_string_equal(a.chans[i], ch);
    }
    assert_string_equal(p.msgs[0], "hi");
    assert_string_equal(p.chans[0], other);
    fv_kv_unsubscribe(sa);
    fv_kv_unsubscribe(sp);
    DO(f, r, fv_kv_publish(f->kv, fv_slice_cstr(ch), S("late"), on_result, &r));
    assert_int_equal(r.status, 0);
    DO(f, r, fv_kv_publish(f->kv, fv_slice_cstr(other), S("late"), on_result, &r));
    DO(f, r, fv_kv_get(f->kv, key(f, "x"), on_result, &r));   /* one more round trip */
    sleep_ms(&f->loop, 50);
    assert_int_equal(a.count, 3);
    assert_int_equal(p.count, 1);
}

typedef struct once {
    fv_kv_sub_t *sub;
    int ready;
    int count;
} once_t;

static void on_msg_once(fv_kv_sub_t *sub, fv_kv_sub_event_t ev, fv_slice_t ch, fv_slice_t msg,
                        void *data)
{
    once_t *o = data;
    assert_ptr_equal(sub, o->sub);
    if (ev == FV_KV_SUB_READY) {
        o->ready = 1;
    } else if (ev == FV_KV_SUB_MESSAGE) {
        o->count++;
        fv_kv_unsubscribe(sub);   /* from its own callback */
    }
}

static void unsubscribe_inside_callback(void **state)
{
    fixture_t *f = *state;
    result_t r;
    once_t o = {0}, o2 = {0};
    char ch[128];
    snprintf(ch, sizeof(ch), "%sonce", f->prefix);
    assert_int_equal(fv_kv_subscribe(f->kv, fv_slice_cstr(ch), on_msg_once, &o, &o.sub), 0);
    assert_int_equal(fv_kv_subscribe(f->kv, fv_slice_cstr(ch), on_msg_once, &o2, &o2.sub), 0);
    assert_true(run_until(&f->loop, &o.ready, WAIT_MS));
    assert_true(run_until(&f->loop, &o2.ready, WAIT_MS));
    for (int i = 0; i < 3; i++)
        DO(f, r, fv_kv_publish(f->kv, fv_slice_cstr(ch), S("m"), on_result, &r));
    DO(f, r, fv_kv_get(f->kv, key(f, "x"), on_result, &r));
    int spins = 0;
    while ((o.count < 1 || o2.count < 1) && spins++ < 100)
        sleep_ms(&f->loop, 10);
    sleep_ms(&f->loop, 30);
    assert_int_equal(o.count, 1);
    assert_int_equal(o2.count, 1);
    fv_kv_unsubscribe(NULL);
}

static void sizes_refused_precisely(void **state)
{
    fixture_t *f = *state;
    result_t r;
    char *big = malloc(FV_KV_MAX_KEY_BYTES + 2);
    memset(big, 'v', FV_KV_MAX_KEY_BYTES + 2);
    DO(f, r, fv_kv_set(f->kv, key(f, "s"), fv_slice(big, MAX_VALUE), 0, 0, on_result, &r));
    expect_int(&r, 1);   /* exactly the ceiling is fine */
    assert_int_equal(fv_kv_set(f->kv, key(f, "s"), fv_slice(big, MAX_VALUE + 1), 0, 0, on_result,
                               &r), FV_ETOOBIG);
    assert_int_equal(fv_kv_cas(f->kv, key(f, "s"), S("x"), fv_slice(big, MAX_VALUE + 1), 0,
                               on_result, &r), FV_ETOOBIG);
    assert_int_equal(fv_kv_hset(f->kv, key(f, "h"), S("f"), fv_slice(big, MAX_VALUE + 1),
                                on_result, &r), FV_ETOOBIG);
    assert_int_equal(fv_kv_hset(f->kv, key(f, "h"), fv_slice(big, MAX_VALUE + 1), S("v"),
                                on_result, &r), FV_ETOOBIG);
    assert_int_equal(fv_kv_zadd(f->kv, key(f, "z"), fv_slice(big, MAX_VALUE + 1), 1, on_result,
                                &r), FV_ETOOBIG);
    assert_int_equal(fv_kv_publish(f->kv, S("c"), fv_slice(big, MAX_VALUE + 1), on_result, &r),
                     FV_ETOOBIG);
    assert_int_equal(fv_kv_get(f->kv, fv_slice(big, FV_KV_MAX_KEY_BYTES + 1), on_result, &r),
                     FV_ETOOBIG);
    assert_int_equal(fv_kv_get(f->kv, fv_slice(NULL, 3), on_result, &r), FV_EINVAL);
    /* The stored value is untouched by the refusals. */
    DO(f, r, fv_kv_get(f->kv, key(f, "s"), on_result, &r));
    expect_str(&r, big, MAX_VALUE);
    DO(f, r, fv_kv_hgetall(f->kv, key(f, "h"), on_result, &r));
    assert_int_equal(r.count, 0);
    free(big);
}

typedef struct counter {
    int n;
    int canceled;
} counter_t;

static void on_count(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    counter_t *c = data;
    c->n++;
    if (status == FV_ECANCELED)
        c->canceled++;
}

static void close_cancels_pending(void **state)
{
    fixture_t *f = *state;
    fv_kv_t *kv;
    fv_kv_opts_t o = test_opts();
    assert_int_equal(fv_kv_open(&f->loop, f->url, &o, &kv, NULL), 0);
    counter_t c = {0};
    subrec_t s = {0};
    fv_kv_sub_t *sub;
    assert_int_equal(fv_kv_subscribe(kv, S("chan"), on_msg, &s, &sub), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fv_kv_get(kv, key(f, "x"), on_count, &c), 0);
    assert_int_equal(fv_kv_set(kv, key(f, "x"), S("1"), 0, 0, on_count, &c), 0);
    int closed = 0;
    fv_kv_close(kv, on_closed, &closed);
    assert_int_equal(fv_kv_get(kv, key(f, "x"), on_count, &c), FV_EUNAVAILABLE);
    assert_int_equal(c.n, 0);
    assert_true(run_until(&f->loop, &closed, WAIT_MS));
    assert_int_equal(c.n, 6);
    assert_int_equal(c.canceled, 6);
    assert_int_equal(s.count, 0);
}

/* ---- redis faults -------------------------------------------------------------------------- */

static int script(const char *verb, const char *dir)
{
    const char *src = getenv("FV_SRC");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "bash %s/tests/support/server_redis.sh %s %s >/dev/null",
             src ? src : ".", verb, dir);
    return system(cmd);
}

static pid_t read_pid(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/redis.pid", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int pid = 0;
    assert_int_equal(fscanf(fp, "%d", &pid), 1);
    fclose(fp);
    return (pid_t)pid;
}

static char private_dir[256];

/* A failed assertion leaves the test early: the private server must not outlive the program. */
static void stop_private_server(void)
{
    if (private_dir[0])
        (void)script("stop", private_dir);
}

static void redis_server_goes_away(void **state)
{
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fv-kv-fault-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(private_dir, sizeof(private_dir), "%s", dir);
    atexit(stop_private_server);
    assert_int_equal(script("start", dir), 0);
    char path[512], url[256];
    snprintf(path, sizeof(path), "%s/redis.url", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(url, sizeof(url), fp));
    fclose(fp);
    url[strcspn(url, "\n")] = '\0';

    fixture_t fx = {0}, *f = &fx;
    uv_loop_init(&f->loop);
    snprintf(f->prefix, sizeof(f->prefix), "fault:");
    fv_kv_opts_t o = test_opts();
    o.command_timeout_ms = 300;
    assert_int_equal(fv_kv_open(&f->loop, url, &o, &f->kv, NULL), 0);
    result_t r;
    DO(f, r, fv_kv_set(f->kv, key(f, "a"), S("1"), 0, 0, on_result, &r));
    expect_int(&r, 1);
    subrec_t s = {0};
    fv_kv_sub_t *sub;
    assert_int_equal(fv_kv_subscribe(f->kv, S("fault-chan"), on_msg, &s, &sub), 0);
    assert_true(run_until(&f->loop, &s.ready, WAIT_MS));

    /* Frozen server: the request times out; the late answer is dropped. */
    pid_t pid = read_pid(dir);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    assert_int_equal(r.status, FV_ETIMEDOUT);
    assert_int_equal(kill(pid, SIGCONT), 0);
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    expect_str(&r, "1", 1);

    /* Killed server: a clean FV_EBACKEND, promptly, and the subscription hears LOST. */
    assert_int_equal(kill(pid, SIGKILL), 0);
    int gone = 0;
    for (int i = 0; i < 100 && !gone; i++) {
        DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
        if (r.status == FV_EBACKEND)
            gone = 1;
        else
            sleep_ms(&f->loop, 20);
    }
    assert_true(gone);
    assert_true(run_until(&f->loop, &s.lost, WAIT_MS));
    DO(f, r, fv_kv_set(f->kv, key(f, "a"), S("2"), 0, 0, on_result, &r));
    assert_int_equal(r.status, FV_EBACKEND);

    /* Same port again: the store finds it by itself, the subscription comes back. */
    assert_int_equal(script("start", dir), 0);
    int back = 0;
    for (int i = 0; i < 200 && !back; i++) {
        DO(f, r, fv_kv_set(f->kv, key(f, "a"), S("3"), 0, 0, on_result, &r));
        if (r.status == 0)
            back = 1;
        else
            sleep_ms(&f->loop, 50);
    }
    assert_true(back);
    DO(f, r, fv_kv_get(f->kv, key(f, "a"), on_result, &r));
    expect_str(&r, "3", 1);
    DO(f, r, fv_kv_cas(f->kv, key(f, "a"), S("3"), S("4"), 0, on_result, &r));
    expect_int(&r, 1);
    /* An emptied script cache: EVALSHA answers NOSCRIPT, the store falls back to EVAL. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "redis-cli -u %s script flush >/dev/null", url);
    assert_int_equal(system(cmd), 0);
    DO(f, r, fv_kv_cas(f->kv, key(f, "a"), S("4"), S("5"), 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_cas(f->kv, key(f, "a"), S("4"), S("6"), 0, on_result, &r));
    assert_int_equal(r.status, FV_ECONFLICT);
    int spins = 0;
    while (s.ready < 2) {
        sleep_ms(&f->loop, 20);
        assert_true(++spins < 250);
    }
    DO(f, r, fv_kv_publish(f->kv, S("fault-chan"), S("again"), on_result, &r));
    expect_int(&r, 1);
    spins = 0;
    while (s.count < 1) {
        sleep_ms(&f->loop, 10);
        assert_true(++spins < 500);
    }
    assert_string_equal(s.msgs[0], "again");

    close_kv(&f->loop, f->kv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(script("stop", dir), 0);
    private_dir[0] = '\0';
    rmdir(dir);
}

/* The URL's database and credentials reach the server before any request does, and a refused
 * handshake or an unreachable server gives clean errors, not hangs. */
static void redis_url_db_auth(void **state)
{
    char url[256], base[256], u[600];
    assert_int_equal(fv_test_server_url("redis", url, sizeof(url)), 0);
    snprintf(base, sizeof(base), "%s", url);
    char *slash = strrchr(base, '/');
    assert_non_null(slash);
    *slash = '\0';                             /* redis://127.0.0.1:PORT */
    const char *hostport = base + strlen("redis://");
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "redis-cli -u %s ACL SETUSER fvkvtest on '>s3cr%%t' '~*' '&*' '+@all' >/dev/null",
             url);
    assert_int_equal(system(cmd), 0);

    fixture_t fx = {0}, *f = &fx;
    uv_loop_init(&f->loop);
    snprintf(f->prefix, sizeof(f->prefix), "db%d:", (int)getpid());
    fv_kv_opts_t o = test_opts();
    result_t r;
    fv_kv_t *db5, *db0, *bad;

    /* User, percent-encoded password, database 5. */
    snprintf(u, sizeof(u), "redis://fvkvtest:s3cr%%25t@%s/5", hostport);
    assert_int_equal(fv_kv_open(&f->loop, u, &o, &db5, NULL), 0);
    snprintf(u, sizeof(u), "redis://%s/0", hostport);
    assert_int_equal(fv_kv_open(&f->loop, u, &o, &db0, NULL), 0);
    f->kv = db5;
    DO(f, r, fv_kv_set(db5, key(f, "k"), S("five"), 60000, 0, on_result, &r));
    expect_int(&r, 1);
    DO(f, r, fv_kv_get(db0, key(f, "k"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_get(db5, key(f, "k"), on_result, &r));
    expect_str(&r, "five", 4);
    /* The pub/sub connection authenticates too. */
    subrec_t sr = {0};
    fv_kv_sub_t *sub;
    assert_int_equal(fv_kv_subscribe(db5, S("auth-chan"), on_msg, &sr, &sub), 0);
    assert_true(run_until(&f->loop, &sr.ready, WAIT_MS));
    DO(f, r, fv_kv_publish(db0, S("auth-chan"), S("hello"), on_result, &r));
    expect_int(&r, 1);
    int spins = 0;
    while (sr.count < 1 && spins++ < 500)
        sleep_ms(&f->loop, 10);
    assert_string_equal(sr.msgs[0], "hello");
    close_kv(&f->loop, db5);
    close_kv(&f->loop, db0);

    /* Wrong password, a database the server does not have, nobody listening: FV_EBACKEND. */
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(u, sizeof(u), "redis://fvkvtest:wrong@%s/0", hostport);
        else if (i == 1)
            snprintf(u, sizeof(u), "redis://%s/99999", hostport);
        else
            snprintf(u, sizeof(u), "redis://127.0.0.1:1/0");
        assert_int_equal(fv_kv_open(&f->loop, u, &o, &bad, NULL), 0);
        DO(f, r, fv_kv_get(bad, S("k"), on_result, &r));
        assert_int_equal(r.status, FV_EBACKEND);
        close_kv(&f->loop, bad);
    }
    snprintf(cmd, sizeof(cmd), "redis-cli -u %s ACL DELUSER fvkvtest >/dev/null", url);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- memory snapshot ----------------------------------------------------------------------- */

static void snapshot_round_trip(void **state)
{
    char dir[256], url[640], path[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fv-kv-snap-%d", tmp ? tmp : "/tmp", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/kv.snap", dir);
    unlink(path);
    snprintf(url, sizeof(url), "memory:?snapshot=%s&interval_ms=60000", path);

    fixture_t fx = {0}, *f = &fx;
    uv_loop_init(&f->loop);
    fv_kv_opts_t o = test_opts();
    fv_error_t err = {0};
    assert_int_equal(fv_kv_open(&f->loop, url, &o, &f->kv, &err), 0);
    result_t r;
    DO(f, r, fv_kv_set(f->kv, S("plain"), fv_slice("a\0b", 3), 0, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("ttl"), S("soon"), 3600000, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("gone"), S("x"), 1, 0, on_result, &r));
    DO(f, r, fv_kv_hset(f->kv, S("h"), S("f1"), S("v1"), on_result, &r));
    DO(f, r, fv_kv_hset(f->kv, S("h"), S("f2"), S("v2"), on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, S("z"), S("b"), 2.5, on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, S("z"), S("a"), -1, on_result, &r));
    sleep_ms(&f->loop, 5);
    close_kv(&f->loop, f->kv);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(fv_kv_open(&f->loop, url, &o, &f->kv, &err), 0);
    DO(f, r, fv_kv_get(f->kv, S("plain"), on_result, &r));
    expect_str(&r, "a\0b", 3);
    DO(f, r, fv_kv_ttl(f->kv, S("ttl"), on_result, &r));
    assert_true(r.integer > 3000000 && r.integer <= 3600000);
    DO(f, r, fv_kv_get(f->kv, S("gone"), on_result, &r));
    expect_nil(&r);
    DO(f, r, fv_kv_hget(f->kv, S("h"), S("f2"), on_result, &r));
    expect_str(&r, "v2", 2);
    DO(f, r, fv_kv_zrange(f->kv, S("z"), 0, -1, 0, on_result, &r));
    expect_members(&r, (const char *const[]){"a", "b"}, 2);
    assert_true(r.el[1].score == 2.5);
    close_kv(&f->loop, f->kv);

    /* A truncated or foreign file is refused with a sentence, not loaded halfway. */
    assert_int_equal(truncate(path, st.st_size - 3), 0);
    assert_int_equal(fv_kv_open(&f->loop, url, &o, &f->kv, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "corrupt"));
    FILE *fp = fopen(path, "wb");
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(fv_kv_open(&f->loop, url, &o, &f->kv, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "not a kv snapshot"));
    unlink(path);
    rmdir(dir);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

typedef struct multi {
    int n;
    int bad;
} multi_t;

static void on_multi(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    multi_t *m = data;
    m->n++;
    /* FV_ECONFLICT: the compare-and-set whose key's set ran out of memory. */
    if (status != 0 && status != FV_ENOMEM && status != FV_ECONFLICT)
        m->bad++;
}

/* Fail the Nth allocation for N = 1, 2, ... until none fails: every request ends in its answer
 * or FV_ENOMEM, what was stored stays readable, nothing leaks (under ASan). */
static void memory_allocation_failures(void **state)
{
    for (unsigned long n = 1; n < 100000; n++) {
        fixture_t fx = {0}, *f = &fx;
        uv_loop_init(&f->loop);
        assert_int_equal(fv_kv_open(&f->loop, "memory:", NULL, &f->kv, NULL), 0);
        multi_t m = {0};
        int issued = 0;
        fv_alloc_fail_at(n);
        int rcs[] = {
            fv_kv_set(f->kv, S("a"), S("1"), 0, 0, on_multi, &m),
            fv_kv_set(f->kv, S("t"), S("x"), 60000, 0, on_multi, &m),
            fv_kv_hset(f->kv, S("h"), S("f"), S("v"), on_multi, &m),
            fv_kv_hset(f->kv, S("h"), S("g"), S("w"), on_multi, &m),
            fv_kv_zadd(f->kv, S("z"), S("m1"), 1, on_multi, &m),
            fv_kv_zadd(f->kv, S("z"), S("m2"), 2, on_multi, &m),
            fv_kv_zincrby(f->kv, S("z"), S("m3"), 3, on_multi, &m),
            fv_kv_incrby(f->kv, S("c"), 1, on_multi, &m),
            fv_kv_cas(f->kv, S("a"), S("1"), S("2"), 0, on_multi, &m),
            fv_kv_get(f->kv, S("a"), on_multi, &m),
            fv_kv_hgetall(f->kv, S("h"), on_multi, &m),
            fv_kv_zrange(f->kv, S("z"), 0, -1, 0, on_multi, &m),
        };
        for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
            assert_true(rcs[i] == 0 || rcs[i] == FV_ENOMEM);
            issued += rcs[i] == 0;
        }
        assert_int_equal(m.n, 0);
        for (int spins = 0; m.n < issued; spins++) {
            assert_true(spins < 1000);
            uv_run(&f->loop, UV_RUN_NOWAIT);
        }
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        assert_int_equal(m.n, issued);
        assert_int_equal(m.bad, 0);
        result_t r;
        DO(f, r, fv_kv_get(f->kv, S("a"), on_result, &r));
        assert_int_equal(r.status, 0);
        assert_true(r.type == FV_KV_NIL || (r.len == 1 && (r.str[0] == '1' || r.str[0] == '2')));
        DO(f, r, fv_kv_hgetall(f->kv, S("h"), on_result, &r));
        assert_int_equal(r.status, 0);
        assert_true(r.count <= 2);
        DO(f, r, fv_kv_zrange(f->kv, S("z"), 0, -1, 0, on_result, &r));
        assert_int_equal(r.status, 0);
        for (size_t i = 1; i < r.count; i++)
            assert_true(r.el[i - 1].score <= r.el[i].score);
        close_kv(&f->loop, f->kv);
        assert_int_equal(uv_loop_close(&f->loop), 0);
        if (!fired)
            break;
    }
}

/* Every truncation and a corrupted byte at every offset of a small snapshot: open either
 * loads it or refuses it with FV_EINVAL, never crashes or leaks (ASan). */
static void snapshot_damage_refused(void **state)
{
    char dir[256], url[640], path[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fv-kv-dmg-%d", tmp ? tmp : "/tmp", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/kv.snap", dir);
    unlink(path);
    snprintf(url, sizeof(url), "memory:?snapshot=%s", path);
    fixture_t fx = {0}, *f = &fx;
    uv_loop_init(&f->loop);
    fv_error_t err;
    result_t r;
    assert_int_equal(fv_kv_open(&f->loop, url, NULL, &f->kv, &err), 0);
    DO(f, r, fv_kv_set(f->kv, S("s"), S("val"), 60000, 0, on_result, &r));
    DO(f, r, fv_kv_hset(f->kv, S("h"), S("f"), S("v"), on_result, &r));
    DO(f, r, fv_kv_zadd(f->kv, S("z"), S("m"), 1.5, on_result, &r));
    close_kv(&f->loop, f->kv);

    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char good[4096];
    size_t n = fread(good, 1, sizeof(good), fp);
    fclose(fp);
    assert_true(n > 10 && n < sizeof(good));
    for (size_t len = 0; len <= n; len++) {
        for (int flip = -1; flip < (int)len; flip++) {
            unsigned char bad[4096];
            memcpy(bad, good, len);
            if (flip >= 0)
                bad[flip] ^= 0xA5;
            else if (len == n)
                continue;   /* the intact file */
            fp = fopen(path, "wb");
            fwrite(bad, 1, len, fp);
            fclose(fp);
            int rc = fv_kv_open(&f->loop, url, NULL, &f->kv, &err);
            if (rc == 0) {
                unlink(path);   /* keep close from rewriting it mid-sweep */
                close_kv(&f->loop, f->kv);
            } else {
                assert_int_equal(rc, FV_EINVAL);
            }
            if (flip >= 0 && len < n)
                break;   /* flips only on the full file; truncations once each */
        }
    }
    unlink(path);
    rmdir(dir);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void urls_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_kv_t *kv;
    fv_error_t err;
    const char *bad[] = {"", "mem:", "memory:x", "memory:?bogus=1", "redis://",
                         "redis://h:0", "redis://h:99999", "redis://h:12/x", "redis://h:x",
                         "redis://[::1", "memory:?interval_ms=0", "memory:?max_keys=0",
                         "memory:?max_keys=x", "memory:?max_keys=2000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fv_kv_open(&loop, bad[i], NULL, &kv, &err), FV_EINVAL);
        assert_true(err.msg[0] != '\0');
        assert_null(kv);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* memory:?max_keys=N: new keys past N are refused (FV_ENOMEM), keys that exist are still
 * written, and a key that goes (deleted, expired) makes room; nothing else is lost. */
static void key_ceiling(void **state)
{
    (void)state;
    fixture_t *f;
    open_fixture((void **)&f, "memory:?max_keys=3");
    result_t r;
    DO(f, r, fv_kv_set(f->kv, S("a"), S("1"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("b"), S("2"), 0, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("c"), S("3"), 30, 0, on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("d"), S("4"), 0, 0, on_result, &r));
    assert_int_equal(r.status, FV_ENOMEM);
    DO(f, r, fv_kv_take(f->kv, S("bucket"), FV_SLICE_NULL, 1, 5, 1, on_result, &r));
    assert_int_equal(r.status, FV_ENOMEM);
    DO(f, r, fv_kv_hset(f->kv, S("h"), S("f"), S("v"), on_result, &r));
    assert_int_equal(r.status, FV_ENOMEM);
    DO(f, r, fv_kv_set(f->kv, S("a"), S("again"), 0, 0, on_result, &r));
    assert_int_equal(r.status, 0);
    DO(f, r, fv_kv_get(f->kv, S("a"), on_result, &r));
    expect_str(&r, "again", 5);
    DO(f, r, fv_kv_del(f->kv, S("b"), on_result, &r));
    DO(f, r, fv_kv_set(f->kv, S("d"), S("4"), 0, 0, on_result, &r));
    assert_int_equal(r.status, 0);
    sleep_ms(&f->loop, 60);                     /* c expires: room for one more */
    DO(f, r, fv_kv_take(f->kv, S("bucket"), FV_SLICE_NULL, 1, 5, 1, on_result, &r));
    expect_int(&r, 4);
    teardown((void **)&f);
}

static void glob(void **state)
{
#define G(p, s) fv__kv_glob_match(fv_slice_cstr(p), fv_slice_cstr(s))
    assert_true(G("*", ""));
    assert_true(G("room.*", "room.7"));
    assert_false(G("room.*", "roomx7"));
    assert_true(G("r?om", "room"));
    assert_true(G("[a-c]x", "bx"));
    assert_false(G("[^a-c]x", "bx"));
    assert_true(G("a\\*", "a*"));
    assert_false(G("a\\*", "ab"));
    assert_true(G("*a*b*c*", "xxaxxbxxc"));
    assert_false(G("*a*b*c*d", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbc"));
#undef G
}

#define CONFORMANCE(setup)                                                                 \
    {                                                                                      \
        cmocka_unit_test_setup_teardown(get_set_del, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(set_nx_xx, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(ttl_and_expiry, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(incr, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(cas, setup, teardown),                             \
        cmocka_unit_test_setup_teardown(take, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(take_now, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(hashes, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(sorted_sets, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(pubsub, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(unsubscribe_inside_callback, setup, teardown),     \
        cmocka_unit_test_setup_teardown(sizes_refused_precisely, setup, teardown),         \
        cmocka_unit_test_setup_teardown(close_cancels_pending, setup, teardown),           \
    }

int main(void)
{
    const struct CMUnitTest memory[] = CONFORMANCE(setup_memory);
    const struct CMUnitTest redis[] = CONFORMANCE(setup_redis);
    const struct CMUnitTest redis_faults[] = {
        cmocka_unit_test(redis_server_goes_away),
        cmocka_unit_test(redis_url_db_auth),
    };
    const struct CMUnitTest memory_only[] = {
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(memory_allocation_failures),
        cmocka_unit_test(snapshot_damage_refused),
        cmocka_unit_test(urls_refused),
        cmocka_unit_test(key_ceiling),
        cmocka_unit_test(glob),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("kv_memory", memory, NULL, NULL);
    failed += cmocka_run_group_tests_name("kv_redis", redis, NULL, NULL);
    failed += cmocka_run_group_tests_name("kv_redis_faults", redis_faults, NULL, NULL);
    failed += cmocka_run_group_tests_name("kv_memory_only", memory_only, NULL, NULL);
    return failed;
}
