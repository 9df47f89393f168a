/* test_vector.c - the vector store's conformance suite: one set of tests run unchanged against
 * embedded: (memory-only), against a real Qdrant when one is reachable (env
 * FV_TEST_QDRANT_URL or $FV_TEST_SERVERS/qdrant.url), and against tests/support/fake_qdrant.py,
 * a stand-in speaking Qdrant's documented REST shapes, which also lets the fault tests kill,
 * stop and restart "the server". Every callback is counted, must never run inside the call
 * that started it, and every wait is bounded by a watchdog timer.
 * fv-test-needs: servers (PostgreSQL, Redis, S3 started once per suite by CTest fixtures) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/alloc.h"
#include "store/sql.h"
#include "store/vector.h"
#include "test_servers.h"

#define WAIT_MS 20000
#define MAX_HITS 64

typedef struct ctx {
    uv_loop_t loop;
    const char *url;
    char sql_url[600];     /* embedded: persisted through this sql store; "" = memory only */
    char sql_file[256];    /* sqlite: the temp file to remove */
    fv_sql_t *sql;
    fv_vector_t *v;
    char coll[64];
    int in_call;           /* set while an fv_vector_* call runs: callbacks must not see it */
    int pending;           /* callbacks still expected */
    int rc;
    fv_error_t err;
    size_t nhits;
    char ids[MAX_HITS][FV_VECTOR_MAX_ID_LEN + 1];
    float scores[MAX_HITS];
    json_t *payloads[MAX_HITS];
} ctx_t;

static char qdrant_url[512];
static char postgres_url[512];
static char fake_url[128];
static char fake_dir[64];
static pid_t fake_pid;
static int fake_port;
static int seq;

static void on_watchdog(uv_timer_t *t)
{
    fail_msg("watchdog: a vector store callback did not run within %d ms", WAIT_MS);
}

/* Runs the loop until every expected callback ran. */
static void wait_all(ctx_t *c)
{
    uv_timer_t dog;
    uv_timer_init(&c->loop, &dog);
    uv_timer_start(&dog, on_watchdog, WAIT_MS, 0);
    while (c->pending > 0)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_timer_stop(&dog);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

static void clear_hits(ctx_t *c)
{
    for (size_t i = 0; i < c->nhits; i++)
        json_decref(c->payloads[i]);
    c->nhits = 0;
}

static void on_done(int rc, const fv_error_t *err, void *data)
{
    ctx_t *c = data;
    assert_false(c->in_call);
    assert_true(c->pending > 0);
    c->pending--;
    c->rc = rc;
    if (rc < 0) {
        assert_non_null(err);
        assert_int_equal(err->code, rc);
        c->err = *err;
    } else {
        assert_null(err);
    }
}

static void on_search(int rc, const fv_vector_hit_t *hits, size_t count, const fv_error_t *err,
                      void *data)
{
    ctx_t *c = data;
    on_done(rc, err, data);
    clear_hits(c);
    assert_true(count <= MAX_HITS);
    for (size_t i = 0; i < count; i++) {
        snprintf(c->ids[i], sizeof(c->ids[i]), "%s", hits[i].id);
        c->scores[i] = hits[i].score;
        assert_non_null(hits[i].payload);
        c->payloads[i] = json_incref((json_t *)hits[i].payload);
    }
    c->nhits = count;
}

#define CALL(c, expr)                                                   \
    do {                                                                \
        (c)->in_call = 1;                                               \
        int call_rc_ = (expr);                                          \
        (c)->in_call = 0;                                               \
        assert_int_equal(call_rc_, 0);                                  \
        (c)->pending++;                                                 \
        wait_all(c);                                                    \
    } while (0)

static int do_create(ctx_t *c, const char *coll, uint32_t dim, fv_vector_metric_t m)
{
    CALL(c, fv_vector_create(c->v, coll, dim, m, on_done, c));
    return c->rc;
}

static int do_upsert(ctx_t *c, const fv_vector_point_t *p, size_t n)
{
    CALL(c, fv_vector_upsert(c->v, c->coll, p, n, on_done, c));
    return c->rc;
}

static int do_delete(ctx_t *c, const char *const *ids, size_t n)
{
    CALL(c, fv_vector_delete(c->v, c->coll, ids, n, on_done, c));
    return c->rc;
}

static int do_search(ctx_t *c, const float *q, uint32_t dim, size_t k, const char *filter)
{
    json_t *f = NULL;
    if (filter) {
        json_error_t je;
        f = json_loads(filter, 0, &je);
        assert_non_null(f);
    }
    CALL(c, fv_vector_search(c->v, c->coll, q, dim, k, f, on_search, c));
    json_decref(f);
    return c->rc;
}

static void assert_msg(const ctx_t *c, const char *part)
{
    if (!strstr(c->err.msg, part))
        fail_msg("error message '%s' lacks '%s'", c->err.msg, part);
}

static void on_opened(int rc, fv_vector_t *v, const fv_error_t *err, void *data)
{
    ctx_t *c = data;
    assert_false(c->in_call);
    c->pending--;
    c->rc = rc;
    c->v = v;
    if (rc < 0)
        c->err = *err;
}

static void on_closed(void *data)
{
    ctx_t *c = data;
    c->pending--;
    c->v = NULL;
}

static int open_ctx(ctx_t *c)
{
    fv_error_t err;
    fv_vector_opts_t o;
    fv_vector_opts_default(&o);
    if (c->sql_url[0] && !c->sql) {
        if (fv_sql_open(&c->loop, c->sql_url, NULL, &c->sql, &err) < 0)
            fail_msg("sql open %s: %s", c->sql_url, err.msg);
    }
    o.sql = c->sql;
    c->in_call = 1;
    int rc = fv_vector_open(&c->loop, c->url, &o, on_opened, c, &err);
    c->in_call = 0;
    if (rc < 0)
        fail_msg("open %s: %s", c->url, err.msg);
    c->pending++;
    wait_all(c);
    return c->rc;
}

static void on_sql_closed(void *data)
{
    ctx_t *c = data;
    c->pending--;
    c->sql = NULL;
}

static void close_ctx(ctx_t *c)
{
    if (c->v) {
        fv_vector_close(c->v, on_closed, c);
        c->pending++;
        wait_all(c);
    }
}

static void close_sql(ctx_t *c)
{
    if (c->sql) {
        fv_sql_close(c->sql, on_sql_closed, c);
        c->pending++;
        wait_all(c);
    }
}

static int setup_url_sql(void **state, const char *url, const char *sql_url)
{
    ctx_t *c = calloc(1, sizeof(*c));
    uv_loop_init(&c->loop);
    c->url = url;
    snprintf(c->coll, sizeof(c->coll), "fvtest_%d_%d", (int)getpid(), ++seq);
    if (sql_url && strcmp(sql_url, "sqlite:") == 0) {
        snprintf(c->sql_file, sizeof(c->sql_file), "/tmp/fv_vector_test_%d_%d.db",
                 (int)getpid(), seq);
        snprintf(c->sql_url, sizeof(c->sql_url), "sqlite:%s", c->sql_file);
    } else if (sql_url) {
        snprintf(c->sql_url, sizeof(c->sql_url), "%s", sql_url);
    }
    if (open_ctx(c) < 0)
        fail_msg("open %s: %s", url, c->err.msg);
    *state = c;
    return 0;
}

static int setup_url(void **state, const char *url)
{
    return setup_url_sql(state, url, NULL);
}

static int setup_embedded(void **state)
{
    return setup_url(state, "embedded:");
}

static int setup_sqlite(void **state)
{
    return setup_url_sql(state, "embedded:", "sqlite:");
}

static int setup_postgres(void **state)
{
    if (!postgres_url[0]) {
        *state = NULL;
        return 0;
    }
    return setup_url_sql(state, "embedded:", postgres_url);
}

static int setup_qdrant(void **state)
{
    if (!qdrant_url[0]) {
        *state = NULL;
        return 0;
    }
    return setup_url(state, qdrant_url);
}

static int setup_fake(void **state)
{
    if (!fake_url[0]) {
        *state = NULL;
        return 0;
    }
    return setup_url(state, fake_url);
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    if (!c)
        return 0;
    clear_hits(c);
    if (c->v) {
        CALL(c, fv_vector_drop(c->v, c->coll, on_done, c));
        close_ctx(c);
    }
    close_sql(c);
    if (c->sql_file[0]) {
        char path[300];
        unlink(c->sql_file);
        snprintf(path, sizeof(path), "%s-wal", c->sql_file);
        unlink(path);
        snprintf(path, sizeof(path), "%s-shm", c->sql_file);
        unlink(path);
    }
    assert_int_equal(uv_loop_close(&c->loop), 0);
    free(c);
    return 0;
}

#define NEED_BACKEND(state)                                                               \
    ctx_t *c = *(state);                                                                  \
    if (!c) {                                                                             \
        skip();                                                                           \
        return;                                                                           \
    }

/* --- the conformance tests --------------------------------------------------------------- */

static void create_is_idempotent(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 4, FV_VECTOR_COSINE), 0);
    assert_int_equal(do_create(c, c->coll, 4, FV_VECTOR_COSINE), 0);
    assert_int_equal(do_create(c, c->coll, 5, FV_VECTOR_COSINE), FV_ECONFLICT);
    assert_int_equal(do_create(c, c->coll, 4, FV_VECTOR_DOT), FV_ECONFLICT);
    assert_int_equal(do_create(c, "bad name!", 4, FV_VECTOR_DOT), FV_EINVAL);
    assert_msg(c, "collection name");
    assert_int_equal(do_create(c, c->coll, 0, FV_VECTOR_DOT), FV_EINVAL);
    assert_int_equal(do_create(c, c->coll, 4097, FV_VECTOR_DOT), FV_EINVAL);
    assert_msg(c, "4097");
}

static void upsert_and_search(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 3, FV_VECTOR_COSINE), 0);
    float a[3] = {1, 0, 0}, b[3] = {0, 2, 0}, d[3] = {1, 1, 0};
    json_t *pa = json_pack("{ss si}", "kind", "lore", "level", 1);
    json_t *pb = json_pack("{ss si}", "kind", "memory", "level", 5);
    fv_vector_point_t pts[] = {
        {"alpha", a, 3, pa},
        {"42", b, 3, pb},
        {"c-3", d, 3, NULL},
    };
    assert_int_equal(do_upsert(c, pts, 3), 0);
    json_decref(pa);
    json_decref(pb);
    float q[3] = {2, 0.1f, 0};
    assert_int_equal(do_search(c, q, 3, 10, NULL), 0);
    assert_int_equal(c->nhits, 3);
    assert_string_equal(c->ids[0], "alpha");
    assert_string_equal(c->ids[1], "c-3");
    assert_string_equal(c->ids[2], "42");
    double n = sqrt(4 + 0.01);
    assert_true(fabs(c->scores[0] - 2 / n) < 1e-4);
    assert_true(fabs(c->scores[1] - 2.1 / n / sqrt(2)) < 1e-4);
    assert_string_equal(json_string_value(json_object_get(c->payloads[0], "kind")), "lore");
    assert_int_equal(json_integer_value(json_object_get(c->payloads[2], "level")), 5);
    assert_int_equal(json_object_size(c->payloads[1]), 0);   /* no payload: {} */
    assert_int_equal(do_search(c, q, 3, 1, NULL), 0);
    assert_int_equal(c->nhits, 1);
    assert_string_equal(c->ids[0], "alpha");
}

static void dot_metric(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_DOT), 0);
    float a[2] = {1, 0}, b[2] = {3, 3};
    fv_vector_point_t pts[] = {{"a", a, 2, NULL}, {"b", b, 2, NULL}};
    assert_int_equal(do_upsert(c, pts, 2), 0);
    float q[2] = {2, -1};
    assert_int_equal(do_search(c, q, 2, 5, NULL), 0);
    assert_int_equal(c->nhits, 2);
    assert_string_equal(c->ids[0], "b");
    assert_true(fabs(c->scores[0] - 3.0) < 1e-5);
    assert_true(fabs(c->scores[1] - 2.0) < 1e-5);
}

static void replace_and_delete(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_COSINE), 0);
    float x[2] = {1, 0}, y[2] = {0, 1};
    json_t *p1 = json_pack("{si}", "v", 1), *p2 = json_pack("{si}", "v", 2);
    fv_vector_point_t pts[] = {{"p", x, 2, p1}, {"q", y, 2, NULL}};
    assert_int_equal(do_upsert(c, pts, 2), 0);
    fv_vector_point_t again = {"p", y, 2, p2};
    assert_int_equal(do_upsert(c, &again, 1), 0);
    json_decref(p1);
    json_decref(p2);
    assert_int_equal(do_search(c, x, 2, 10, NULL), 0);
    assert_int_equal(c->nhits, 2);               /* replaced, not added */
    assert_true(fabs(c->scores[0]) < 1e-5);      /* p now points along y */
    const char *gone[] = {"p", "never-existed"};
    assert_int_equal(do_delete(c, gone, 2), 0);
    assert_int_equal(do_search(c, y, 2, 10, NULL), 0);
    assert_int_equal(c->nhits, 1);
    assert_string_equal(c->ids[0], "q");
}

static void filtered_search(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_COSINE), 0);
    fv_vector_point_t pts[6];
    float vecs[6][2];
    char ids[6][8];
    json_t *pl[6];
    for (int i = 0; i < 6; i++) {
        vecs[i][0] = 1;
        vecs[i][1] = (float)i * 0.1f;          /* "0" is nearest to (1,0), then "1" ... */
        snprintf(ids[i], sizeof(ids[i]), "%d", i);
        pl[i] = json_pack("{ss si}", "kind", i % 2 ? "odd" : "even", "n", i);
        pts[i] = (fv_vector_point_t){ids[i], vecs[i], 2, pl[i]};
    }
    assert_int_equal(do_upsert(c, pts, 6), 0);
    for (int i = 0; i < 6; i++)
        json_decref(pl[i]);
    float q[2] = {1, 0};
    assert_int_equal(do_search(c, q, 2, 10,
                               "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":\"odd\"}}]}"),
                     0);
    assert_int_equal(c->nhits, 3);
    assert_string_equal(c->ids[0], "1");
    assert_string_equal(c->ids[1], "3");
    assert_string_equal(c->ids[2], "5");
    assert_int_equal(do_search(c, q, 2, 10,
                               "{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":2,\"lt\":5}}],"
                               "\"must_not\":[{\"key\":\"n\",\"match\":{\"value\":3}}]}"), 0);
    assert_int_equal(c->nhits, 2);
    assert_string_equal(c->ids[0], "2");
    assert_string_equal(c->ids[1], "4");
    assert_int_equal(do_search(c, q, 2, 10,
                               "{\"should\":[{\"key\":\"n\",\"match\":{\"value\":5}},"
                               "{\"key\":\"n\",\"match\":{\"value\":0}}]}"), 0);
    assert_int_equal(c->nhits, 2);
    assert_string_equal(c->ids[0], "0");
    assert_string_equal(c->ids[1], "5");
}

static void bad_input_is_refused(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 4, FV_VECTOR_COSINE), 0);
    float v3[3] = {1, 2, 3}, v4[4] = {1, 2, 3, 4};
    fv_vector_point_t p = {"a", v3, 3, NULL};
    assert_int_equal(do_upsert(c, &p, 1), FV_EINVAL);
    assert_msg(c, "dimension");
    assert_int_equal(do_search(c, v3, 3, 5, NULL), FV_EINVAL);
    assert_msg(c, "dimension");
    float bad[4] = {1, NAN, 0, 0};
    p = (fv_vector_point_t){"a", bad, 4, NULL};
    assert_int_equal(do_upsert(c, &p, 1), FV_EINVAL);
    assert_msg(c, "point 0 ('a'): vector component 1 is not a finite number");
    bad[1] = INFINITY;
    assert_int_equal(do_search(c, bad, 4, 5, NULL), FV_EINVAL);
    assert_msg(c, "query vector component 1");
    p = (fv_vector_point_t){"", v4, 4, NULL};
    assert_int_equal(do_upsert(c, &p, 1), FV_EINVAL);
    assert_msg(c, "point 0: point id must have 1..128 bytes");
    json_t *arr = json_array();
    p = (fv_vector_point_t){"a", v4, 4, arr};
    assert_int_equal(do_upsert(c, &p, 1), FV_EINVAL);
    assert_msg(c, "payload must be a JSON object");
    json_decref(arr);
    json_t *reserved = json_pack("{ss}", "_id", "x");
    p = (fv_vector_point_t){"a", v4, 4, reserved};
    assert_int_equal(do_upsert(c, &p, 1), FV_EINVAL);
    assert_msg(c, "'_id' is reserved");
    json_decref(reserved);
    json_t *big = json_pack("{s:s%}", "text", "", (size_t)0);
    char *blob = malloc(70000);
    memset(blob, 'x', 69999);
    blob[69999] = '\0';
    json_object_set_new(big, "text", json_string(blob));
    free(blob);
    p = (fv_vector_point_t){"a", v4, 4, big};
    assert_int_equal(do_upsert(c, &p, 1), FV_ETOOBIG);
    json_decref(big);
    /* a batch with one bad point stores none of it */
    fv_vector_point_t two[] = {{"good", v4, 4, NULL}, {"bad", v3, 3, NULL}};
    assert_int_equal(do_upsert(c, two, 2), FV_EINVAL);
    assert_msg(c, "point 1 ('bad')");
    assert_int_equal(do_upsert(c, two, 0), FV_EINVAL);
    assert_int_equal(do_search(c, v4, 4, 0, NULL), FV_EINVAL);
    assert_msg(c, "limit 0");
    assert_int_equal(do_search(c, v4, 4, 5, "{\"must\":[{\"key\":\"a\"}]}"), FV_EINVAL);
    assert_msg(c, "filter.must[0]");
    assert_int_equal(do_search(c, v4, 4, 5, NULL), 0);
    assert_int_equal(c->nhits, 0);
}

static void unknown_collection(void **state)
{
    NEED_BACKEND(state);
    float v[2] = {1, 0};
    fv_vector_point_t p = {"a", v, 2, NULL};
    strcat(c->coll, "_none");          /* fvtest_<pid>_<n>: far below the 64 bytes */
    assert_int_equal(do_upsert(c, &p, 1), FV_ENOENT);
    assert_int_equal(do_search(c, v, 2, 3, NULL), FV_ENOENT);
    const char *ids[] = {"a"};
    assert_int_equal(do_delete(c, ids, 1), FV_ENOENT);
}

static void many_points_in_order(void **state)
{
    NEED_BACKEND(state);
    enum { N = 6000, DIM = 16, BATCH = 500 };
    assert_int_equal(do_create(c, c->coll, DIM, FV_VECTOR_DOT), 0);
    static float vecs[N][DIM];
    static char ids[N][12];
    uint32_t s = 99;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++) {
            s = s * 1664525u + 1013904223u;
            vecs[i][j] = (float)(s >> 8) / 16777216.0f - 0.5f;
        }
        snprintf(ids[i], sizeof(ids[i]), "%d", i);
    }
    fv_vector_point_t pts[BATCH];
    for (int b = 0; b < N; b += BATCH) {
        for (int i = 0; i < BATCH; i++)
            pts[i] = (fv_vector_point_t){ids[b + i], vecs[b + i], DIM, NULL};
        assert_int_equal(do_upsert(c, pts, BATCH), 0);
    }
    /* Brute force the expected best for vecs[17] as query. */
    const float *q = vecs[17];
    int best = -1;
    double bs = -1e30;
    for (int i = 0; i < N; i++) {
        double d = 0;
        for (int j = 0; j < DIM; j++)
            d += (double)vecs[i][j] * q[j];
        if (d > bs) {
            bs = d;
            best = i;
        }
    }
    /* A search, a mutation and a search submitted together run in that order: the first
     * search cannot see the new point, the second must. */
    float huge[DIM];
    for (int j = 0; j < DIM; j++)
        huge[j] = q[j] * 100;
    fv_vector_point_t hp = {"huge", huge, DIM, NULL};
    ctx_t *cc = c;
    cc->in_call = 1;
    assert_int_equal(fv_vector_search(c->v, c->coll, q, DIM, 1, NULL, on_search, c), 0);
    cc->in_call = 0;
    c->pending++;
    wait_all(c);
    assert_int_equal(c->nhits, 1);
    assert_string_equal(c->ids[0], ids[best]);
    assert_int_equal(do_upsert(c, &hp, 1), 0);
    assert_int_equal(do_search(c, q, DIM, 3, NULL), 0);
    assert_int_equal(c->nhits, 3);
    assert_string_equal(c->ids[0], "huge");
    assert_string_equal(c->ids[1], ids[best]);
}

static int order_log[8];
static int order_n;

static void on_ordered(int rc, const fv_error_t *err, void *data)
{
    order_log[order_n++] = (int)(intptr_t)data;
}

static void on_ordered_search(int rc, const fv_vector_hit_t *hits, size_t count,
                              const fv_error_t *err, void *data)
{
    assert_int_equal(rc, 0);
    order_log[order_n++] = (int)(intptr_t)data * 100 + (int)count;
}

static void queued_requests_keep_order(void **state)
{
    NEED_BACKEND(state);
    enum { DIM = 64 };
    assert_int_equal(do_create(c, c->coll, DIM, FV_VECTOR_COSINE), 0);
    static float v[2000][DIM];
    static char ids[2000][8];
    static fv_vector_point_t pts[2000];
    for (int i = 0; i < 2000; i++) {
        for (int j = 0; j < DIM; j++)
            v[i][j] = (float)((i * 31 + j * 7) % 13) - 6.0f + (j == 0);
        snprintf(ids[i], sizeof(ids[i]), "%d", i);
        pts[i] = (fv_vector_point_t){ids[i], v[i], DIM, NULL};
    }
    order_n = 0;
    /* Submitted without waiting: upsert, search (offloaded on embedded: 2000*64 floats), delete
     * and search again. Callbacks must come back in submission order with consistent counts. */
    assert_int_equal(fv_vector_upsert(c->v, c->coll, pts, 1000, on_ordered, (void *)1), 0);
    assert_int_equal(fv_vector_upsert(c->v, c->coll, pts + 1000, 1000, on_ordered, (void *)2),
                     0);
    assert_int_equal(fv_vector_search(c->v, c->coll, v[0], DIM, 50, NULL, on_ordered_search,
                                      (void *)3), 0);
    const char *del[] = {"0", "1", "2"};
    assert_int_equal(fv_vector_delete(c->v, c->coll, del, 3, on_ordered, (void *)4), 0);
    assert_int_equal(fv_vector_search(c->v, c->coll, v[0], DIM, 50, NULL, on_ordered_search,
                                      (void *)5), 0);
    c->pending = 0;
    uv_timer_t dog;
    uv_timer_init(&c->loop, &dog);
    uv_timer_start(&dog, on_watchdog, WAIT_MS, 0);
    while (order_n < 5)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    assert_int_equal(order_log[0], 1);
    assert_int_equal(order_log[1], 2);
    assert_int_equal(order_log[2], 350);
    assert_int_equal(order_log[3], 4);
    assert_int_equal(order_log[4], 550);
}

static int cancelled;

/* A request the backend already carried out reports its real outcome; one still waiting is
 * cancelled. */
static void on_cancelled(int rc, const fv_error_t *err, void *data)
{
    assert_true(rc == FV_ECANCELED || rc == 0);
    cancelled++;
}

static void on_cancelled_search(int rc, const fv_vector_hit_t *hits, size_t count,
                                const fv_error_t *err, void *data)
{
    assert_true(rc == FV_ECANCELED || rc == 0);
    cancelled++;
}

static void close_cancels_pending(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_COSINE), 0);
    float v[2] = {1, 0};
    fv_vector_point_t p = {"a", v, 2, NULL};
    cancelled = 0;
    assert_int_equal(fv_vector_upsert(c->v, c->coll, &p, 1, on_cancelled, c), 0);
    assert_int_equal(fv_vector_search(c->v, c->coll, v, 2, 1, NULL, on_cancelled_search, c),
                     0);
    fv_vector_close(c->v, on_closed, c);
    /* a closing handle refuses new work at once */
    assert_int_equal(fv_vector_search(c->v, c->coll, v, 2, 1, NULL, on_cancelled_search, c),
                     FV_ECANCELED);
    c->pending = 1;
    wait_all(c);
    assert_int_equal(cancelled, 2);
    assert_null(c->v);
    /* reopen for teardown's drop */
    assert_int_equal(open_ctx(c), 0);
}

/* --- the stand-in server ---------------------------------------------------------------- */

/* Starts fake_qdrant.py on port (0 = any) and waits, bounded, until it listens. */
static int fake_start(int port)
{
    const char *src = getenv("FV_SRC");
    if (!src)
        return -1;
    char script[512], portfile[128], portarg[16];
    snprintf(script, sizeof(script), "%s/tests/support/fake_qdrant.py", src);
    snprintf(portfile, sizeof(portfile), "%s/port", fake_dir);
    snprintf(portarg, sizeof(portarg), "%d", port);
    unlink(portfile);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("python3", "python3", script, portfile, portarg, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    for (int i = 0; i < 200; i++) {              /* 10 s at most */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &fake_port) == 1;
            fclose(f);
            if (ok) {
                fake_pid = pid;
                snprintf(fake_url, sizeof(fake_url), "qdrant://127.0.0.1:%d", fake_port);
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, NULL, 0);
        fake_pid = 0;
    }
}

/* The server dies mid-run: calls fail cleanly with FV_EBACKEND; once it is back (same port)
 * the same handle works again without being reopened. */
static void server_gone_and_back(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_COSINE), 0);
    float v[2] = {1, 0};
    fv_vector_point_t p = {"a", v, 2, NULL};
    assert_int_equal(do_upsert(c, &p, 1), 0);
    int port = fake_port;
    fake_stop();
    assert_int_equal(do_search(c, v, 2, 1, NULL), FV_EBACKEND);
    assert_msg(c, "unreachable");
    assert_int_equal(do_upsert(c, &p, 1), FV_EBACKEND);
    if (fake_start(port) < 0)
        fail_msg("could not restart the stand-in server on port %d", port);
    /* the stand-in keeps nothing across restarts: the collection is gone */
    assert_int_equal(do_search(c, v, 2, 1, NULL), FV_ENOENT);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_COSINE), 0);
    assert_int_equal(do_upsert(c, &p, 1), 0);
    assert_int_equal(do_search(c, v, 2, 1, NULL), 0);
    assert_int_equal(c->nhits, 1);
    assert_string_equal(c->ids[0], "a");
}

/* A server that stops answering: the request times out with FV_ETIMEDOUT. */
static void server_stalls(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_DOT), 0);
    close_ctx(c);
    fv_vector_opts_t o;
    fv_vector_opts_default(&o);
    o.timeout_ms = 500;
    fv_error_t err;
    assert_int_equal(fv_vector_open(&c->loop, fake_url, &o, on_opened, c, &err), 0);
    c->pending++;
    wait_all(c);
    assert_int_equal(c->rc, 0);
    kill(fake_pid, SIGSTOP);
    float v[2] = {1, 0};
    int rc = do_search(c, v, 2, 1, NULL);
    kill(fake_pid, SIGCONT);
    assert_int_equal(rc, FV_ETIMEDOUT);
    assert_msg(c, "timed out");
    /* Answers again once it runs; the short timeout may still bite on a loaded machine. */
    for (int i = 0; i < 10 && (rc = do_search(c, v, 2, 1, NULL)) == FV_ETIMEDOUT; i++)
        ;
    assert_int_equal(rc, 0);
}

/* String ids travel as UUIDs with the original in "_id"; numeric and UUID ids as they are. */
static void qdrant_id_mapping(void **state)
{
    NEED_BACKEND(state);
    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_DOT), 0);
    float a[2] = {3, 0}, b[2] = {2, 0}, d[2] = {1, 0};
    json_t *pl = json_pack("{ss}", "k", "v");
    fv_vector_point_t pts[] = {
        {"player:7/echo", a, 2, pl},
        {"123456789", b, 2, NULL},
        {"0b8a4a0e-5a4b-4c43-9e0d-5f6b1d2c3e4f", d, 2, NULL},
    };
    assert_int_equal(do_upsert(c, pts, 3), 0);
    json_decref(pl);
    float q[2] = {1, 0};
    assert_int_equal(do_search(c, q, 2, 3, NULL), 0);
    assert_int_equal(c->nhits, 3);
    assert_string_equal(c->ids[0], "player:7/echo");
    assert_null(json_object_get(c->payloads[0], "_id"));
    assert_string_equal(json_string_value(json_object_get(c->payloads[0], "k")), "v");
    assert_string_equal(c->ids[1], "123456789");
    assert_string_equal(c->ids[2], "0b8a4a0e-5a4b-4c43-9e0d-5f6b1d2c3e4f");
    const char *del[] = {"player:7/echo"};
    assert_int_equal(do_delete(c, del, 1), 0);
    assert_int_equal(do_search(c, q, 2, 3, NULL), 0);
    assert_int_equal(c->nhits, 2);
}

/* --- persistence (embedded: over sql) ---------------------------------------------------- */

/* Everything written survives closing both the vector store and the sql store. */
static void survives_reopen(void **state)
{
    NEED_BACKEND(state);
    if (!c->sql_url[0]) {
        skip();
        return;
    }
    assert_int_equal(do_create(c, c->coll, 3, FV_VECTOR_COSINE), 0);
    char other[64];
    snprintf(other, sizeof(other), "%.50s_dot", c->coll);
    assert_int_equal(do_create(c, other, 2, FV_VECTOR_DOT), 0);
    float a[3] = {1, 0, 0}, b[3] = {0, 3, 0}, d[3] = {1, 1, 1}, e2[2] = {2, 5};
    json_t *pa = json_pack("{ss s[ii]}", "name", "Ëlda \"the\" bard", "xs", 1, 2);
    fv_vector_point_t pts[] = {{"player:1", a, 3, pa}, {"2", b, 3, NULL}, {"gone", d, 3, NULL},
                               {"2", b, 3, NULL}};
    assert_int_equal(do_upsert(c, pts, 4), 0);     /* a repeated id in a batch is fine */
    json_decref(pa);
    const char *del[] = {"gone"};
    assert_int_equal(do_delete(c, del, 1), 0);
    char keep[64];
    snprintf(keep, sizeof(keep), "%s", c->coll);
    snprintf(c->coll, sizeof(c->coll), "%s", other);
    fv_vector_point_t pe = {"e", e2, 2, NULL};
    assert_int_equal(do_upsert(c, &pe, 1), 0);
    snprintf(c->coll, sizeof(c->coll), "%s", keep);

    close_ctx(c);
    close_sql(c);
    assert_int_equal(open_ctx(c), 0);

    float q[3] = {2, 0, 0};
    assert_int_equal(do_search(c, q, 3, 10, NULL), 0);
    assert_int_equal(c->nhits, 2);
    assert_string_equal(c->ids[0], "player:1");
    assert_true(fabs(c->scores[0] - 1) < 1e-5);
    assert_string_equal(json_string_value(json_object_get(c->payloads[0], "name")),
                        "Ëlda \"the\" bard");
    assert_int_equal(json_array_size(json_object_get(c->payloads[0], "xs")), 2);
    assert_string_equal(c->ids[1], "2");
    assert_int_equal(do_create(c, c->coll, 3, FV_VECTOR_DOT), FV_ECONFLICT);   /* kept */
    snprintf(c->coll, sizeof(c->coll), "%s", other);
    assert_int_equal(do_search(c, e2, 2, 10, NULL), 0);
    assert_int_equal(c->nhits, 1);
    assert_true(fabs(c->scores[0] - 29) < 1e-4);
    CALL(c, fv_vector_drop(c->v, c->coll, on_done, c));
    assert_int_equal(c->rc, 0);
    snprintf(c->coll, sizeof(c->coll), "%s", keep);
    /* a dropped collection stays dropped */
    close_ctx(c);
    assert_int_equal(open_ctx(c), 0);
    snprintf(c->coll, sizeof(c->coll), "%s", other);
    assert_int_equal(do_search(c, e2, 2, 10, NULL), FV_ENOENT);
    snprintf(c->coll, sizeof(c->coll), "%s", keep);
}

/* --- the sql server goes away under embedded: ------------------------------------------- */

static int pg_cmd(const char *cmd, const char *dir)
{
    char line[700];
    snprintf(line, sizeof(line), "bash '%s/tests/support/server_postgres.sh' %s '%s' "
             ">/dev/null 2>&1", getenv("FV_SRC"), cmd, dir);
    return system(line);
}

static void on_nap(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void nap(ctx_t *c, uint64_t ms)
{
    uv_timer_t t;
    int done = 0;
    uv_timer_init(&c->loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_nap, ms, 0);
    while (!done)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* A private PostgreSQL is halted mid-run: writes fail with FV_EBACKEND and change nothing in
 * memory, searches keep answering from memory; once it is back, writes work again on the same
 * handle and everything written is there after a reopen. */
static void sql_server_gone_and_back(void **state)
{
    if (!postgres_url[0] || !getenv("FV_SRC")) {
        skip();
        return;
    }
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/fv_vecpg_XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pg_cmd("start", dir), 0);
    char path[128], url[512];
    snprintf(path, sizeof(path), "%s/postgres.url", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(url, sizeof(url), f));
    fclose(f);
    url[strcspn(url, "\r\n")] = '\0';
    setup_url_sql(state, "embedded:", url);
    ctx_t *c = *state;

    assert_int_equal(do_create(c, c->coll, 2, FV_VECTOR_DOT), 0);
    float a[2] = {1, 0}, b[2] = {5, 0};
    fv_vector_point_t pa = {"a", a, 2, NULL}, pb = {"b", b, 2, NULL};
    assert_int_equal(do_upsert(c, &pa, 1), 0);

    assert_int_equal(pg_cmd("halt", dir), 0);
    assert_int_equal(do_upsert(c, &pb, 1), FV_EBACKEND);
    assert_msg(c, "sql store");
    assert_int_equal(do_search(c, a, 2, 5, NULL), 0);   /* memory still answers */
    assert_int_equal(c->nhits, 1);                       /* and holds no half write */
    assert_string_equal(c->ids[0], "a");

    assert_int_equal(pg_cmd("start", dir), 0);
    int rc = -1;
    for (int i = 0; i < 100 && rc != 0; i++) {
        rc = do_upsert(c, &pb, 1);
        if (rc != 0) {
            assert_int_equal(rc, FV_EBACKEND);
            nap(c, 100);
        }
    }
    assert_int_equal(rc, 0);
    close_ctx(c);
    close_sql(c);
    assert_int_equal(open_ctx(c), 0);
    assert_int_equal(do_search(c, a, 2, 5, NULL), 0);
    assert_int_equal(c->nhits, 2);
    assert_string_equal(c->ids[0], "b");
    teardown(state);
    *state = NULL;
    assert_int_equal(pg_cmd("stop", dir), 0);
    rmdir(dir);
}

/* --- backend-specific ------------------------------------------------------------------- */

static void bad_urls(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_error_t err;
    assert_int_equal(fv_vector_open(&loop, "redis://x", NULL, on_opened, NULL, &err),
                     FV_EINVAL);
    assert_non_null(strstr(err.msg, "expected embedded:"));
    assert_int_equal(fv_vector_open(&loop, "embedded:/tmp/x", NULL, on_opened, NULL, &err),
                     FV_EINVAL);
    assert_int_equal(fv_vector_open(&loop, "qdrant://", NULL, on_opened, NULL, &err),
                     FV_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static size_t discard(char *ptr, size_t size, size_t n, void *data)
{
    return size * n;
}

/* A configured server that does not answer GET /collections within 3 s is "not reachable". */
static bool qdrant_reachable(const char *url)
{
    char probe[600];
    const char *rest = strncmp(url, "qdrant://", 9) == 0 ? url + 9 : NULL;
    snprintf(probe, sizeof(probe), "%s%s/collections", rest ? "http://" : "", rest ? rest : url);
    CURL *h = curl_easy_init();
    if (!h)
        return false;
    curl_easy_setopt(h, CURLOPT_URL, probe);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    const char *key = getenv("FV_TEST_QDRANT_API_KEY");
    struct curl_slist *hdrs = NULL;
    char line[300];
    if (key) {
        snprintf(line, sizeof(line), "api-key: %s", key);
        hdrs = curl_slist_append(NULL, line);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    long status = 0;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc == CURLE_OK && status == 200;
}

static void find_qdrant(void)
{
    const char *env = getenv("FV_TEST_QDRANT_URL");
    if (env && *env) {
        snprintf(qdrant_url, sizeof(qdrant_url), "%s", env);
        if (!qdrant_reachable(qdrant_url)) {
            printf("qdrant: %s does not answer\n", qdrant_url);
            qdrant_url[0] = '\0';
        }
        return;
    }
    const char *dir = getenv("FV_TEST_SERVERS");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/qdrant.url", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(qdrant_url, sizeof(qdrant_url), f))
        qdrant_url[strcspn(qdrant_url, "\r\n")] = '\0';
    fclose(f);
    if (qdrant_url[0] && !qdrant_reachable(qdrant_url))
        qdrant_url[0] = '\0';
}

int main(void)
{
    find_qdrant();
    (void)fv_test_server_url("postgres", postgres_url, sizeof(postgres_url));
    /* A database of our own on the shared server: the sql suite migrates and drops tables in
     * finalverse_test, and must not find ours there. */
    if (postgres_url[0] && strlen(postgres_url) + 8 < sizeof(postgres_url))
        strcat(postgres_url, "_vector");
    const struct CMUnitTest common[] = {
        cmocka_unit_test(bad_urls),
    };
    const struct CMUnitTest sql_faults[] = {
        cmocka_unit_test(sql_server_gone_and_back),
    };
#define CONFORMANCE(setup)                                                              \
    {                                                                                   \
        cmocka_unit_test_setup_teardown(create_is_idempotent, setup, teardown),         \
        cmocka_unit_test_setup_teardown(upsert_and_search, setup, teardown),            \
        cmocka_unit_test_setup_teardown(dot_metric, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(replace_and_delete, setup, teardown),           \
        cmocka_unit_test_setup_teardown(filtered_search, setup, teardown),              \
        cmocka_unit_test_setup_teardown(bad_input_is_refused, setup, teardown),         \
        cmocka_unit_test_setup_teardown(unknown_collection, setup, teardown),           \
        cmocka_unit_test_setup_teardown(many_points_in_order, setup, teardown),         \
        cmocka_unit_test_setup_teardown(queued_requests_keep_order, setup, teardown),   \
        cmocka_unit_test_setup_teardown(close_cancels_pending, setup, teardown),        \
        cmocka_unit_test_setup_teardown(survives_reopen, setup, teardown),              \
    }
    const struct CMUnitTest embedded[] = CONFORMANCE(setup_embedded);
    const struct CMUnitTest sqlite[] = CONFORMANCE(setup_sqlite);
    const struct CMUnitTest postgres[] = CONFORMANCE(setup_postgres);
    const struct CMUnitTest qdrant[] = CONFORMANCE(setup_qdrant);
    const struct CMUnitTest fake[] = CONFORMANCE(setup_fake);
    const struct CMUnitTest fake_only[] = {
        cmocka_unit_test_setup_teardown(qdrant_id_mapping, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(server_gone_and_back, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(server_stalls, setup_fake, teardown),
    };
    int failed = cmocka_run_group_tests_name("vector common", common, NULL, NULL);
    failed += cmocka_run_group_tests_name("vector embedded:", embedded, NULL, NULL);
    failed += cmocka_run_group_tests_name("vector embedded: over sqlite:", sqlite, NULL, NULL);
    if (!postgres_url[0])
        printf("embedded: over postgres: skipped: no $FV_TEST_SERVERS/postgres.url\n");
    failed += cmocka_run_group_tests_name("vector embedded: over postgres", postgres, NULL,
                                          NULL);
    failed += cmocka_run_group_tests_name("vector embedded: sql faults", sql_faults, NULL,
                                          NULL);
    if (!qdrant_url[0])
        printf("qdrant: skipped: no Qdrant server reachable (set FV_TEST_QDRANT_URL)\n");
    failed += cmocka_run_group_tests_name("vector qdrant", qdrant, NULL, NULL);

    snprintf(fake_dir, sizeof(fake_dir), "/tmp/fv_fake_qdrant_XXXXXX");
    if (!mkdtemp(fake_dir) || fake_start(0) < 0) {
        printf("qdrant stand-in: skipped: could not start tests/support/fake_qdrant.py "
               "(python3 and FV_SRC needed)\n");
        fake_url[0] = '\0';
    }
    failed += cmocka_run_group_tests_name("vector qdrant protocol (stand-in server)", fake,
                                          NULL, NULL);
    failed += cmocka_run_group_tests_name("vector qdrant faults (stand-in server)", fake_only,
                                          NULL, NULL);
    fake_stop();
    char portfile[128];
    snprintf(portfile, sizeof(portfile), "%s/port", fake_dir);
    unlink(portfile);
    rmdir(fake_dir);
    return failed;
}
