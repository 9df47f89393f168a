/* test_sql.c - the SQL store's conformance suite: one set of tests run unchanged against SQLite
 * (a temporary file) and PostgreSQL (the server the CTest fixture started), plus the
 * PostgreSQL fault test on a private server that is halted and restarted mid-run. Every wait
 * is bounded by a watchdog timer; every loop must close cleanly.
 * fv-test-needs: servers (PostgreSQL, Redis, S3 started once per suite by CTest fixtures) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/alloc.h"
#include "store/sql.h"

#define WAIT_MS 20000

typedef struct ctx {
    uv_loop_t loop;
    fv_sql_t *db;
    char url[512];
    char tmpdir[256];
    char fault_dir[256];     /* the private server of the fault test, stopped by teardown */
    fv_sql_t *fault_keep;    /* the suite's handle while the fault test uses its own in db */
    bool pg;
} ctx_t;

/* ---- waiting on the loop ------------------------------------------------------------------- */

static void on_watchdog(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void on_watchdog_closed(uv_handle_t *h)
{
}

/* Runs the loop until *flag is set; fails the test past ms. */
static void run_until(uv_loop_t *loop, const int *flag, uint64_t ms)
{
    int expired = 0;
    uv_timer_t wd;
    uv_timer_init(loop, &wd);
    wd.data = &expired;
    uv_timer_start(&wd, on_watchdog, ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, on_watchdog_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(expired);
}

static void on_sleep(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void sleep_ms(uv_loop_t *loop, uint64_t ms)
{
    int done = 0;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_sleep, ms, 0);
    run_until(loop, &done, ms + WAIT_MS);
    uv_close((uv_handle_t *)&t, on_watchdog_closed);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- one call, captured ---------------------------------------------------------------------- */

#define CAP_COLS 8

typedef struct call {
    fv_sql_req_t req;
    int done;
    int rc;
    fv_error_t err;
    size_t rows, cols;
    uint64_t changes;
    int is_null[CAP_COLS];
    int64_t i64[CAP_COLS];
    double d[CAP_COLS];
    char text[CAP_COLS][256];
    size_t text_len[CAP_COLS];
    unsigned char blob[CAP_COLS][64];
    size_t blob_len[CAP_COLS];
    char name0[64];
    int64_t col0[128];       /* column 0 of the first 128 rows */
} call_t;

static void on_exec(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    call_t *c = req->data;
    assert_int_equal(c->done, 0);       /* exactly once */
    c->done = 1;
    c->rc = rc;
    c->err = req->err;
    if (rc < 0) {
        assert_null(res);
        return;
    }
    c->rows = fv_sql_result_rows(res);
    c->cols = fv_sql_result_columns(res);
    c->changes = fv_sql_result_changes(res);
    const char *n0 = fv_sql_result_column_name(res, 0);
    snprintf(c->name0, sizeof(c->name0), "%s", n0 ? n0 : "");
    for (size_t i = 0; i < c->rows && i < 128; i++)
        c->col0[i] = fv_sql_result_int64(res, i, 0);
    for (size_t k = 0; k < c->cols && k < CAP_COLS && c->rows > 0; k++) {
        c->is_null[k] = fv_sql_result_is_null(res, 0, k);
        c->i64[k] = fv_sql_result_int64(res, 0, k);
        c->d[k] = fv_sql_result_double(res, 0, k);
        size_t len = 0;
        const char *t = fv_sql_result_text(res, 0, k, &len);
        if (t && len < sizeof(c->text[k])) {
            memcpy(c->text[k], t, len);
            c->text_len[k] = len;
        }
        const void *b = fv_sql_result_blob(res, 0, k, &len);
        if (b && len <= sizeof(c->blob[k])) {
            memcpy(c->blob[k], b, len);
            c->blob_len[k] = len;
        }
    }
}

static void call_init(call_t *c)
{
    memset(c, 0, sizeof(*c));
    c->req.data = c;
}

/* Runs one statement and waits for it; returns the callback's rc. */
static int q(ctx_t *x, call_t *c, const char *sql, const fv_sql_param_t *p, size_t n)
{
    call_init(c);
    int rc = fv_sql_exec(x->db, &c->req, sql, p, n, on_exec);
    if (rc < 0) {
        c->err = c->req.err;
        return rc;
    }
    run_until(&x->loop, &c->done, WAIT_MS);
    return c->rc;
}

static int qs(ctx_t *x, const char *sql)
{
    call_t c;
    call_init(&c);
    int rc = fv_sql_exec_script(x->db, &c.req, sql, on_exec);
    if (rc < 0)
        return rc;
    run_until(&x->loop, &c.done, WAIT_MS);
    if (c.rc < 0)
        fprintf(stderr, "script failed: %s\n", c.err.msg);
    return c.rc;
}

/* ---- groups -------------------------------------------------------------------------------- */

static void on_db_closed(void *data)
{
    (*(int *)data)++;
}

static void db_close(ctx_t *x)
{
    int closed = 0;
    fv_sql_close(x->db, on_db_closed, &closed);
    run_until(&x->loop, &closed, WAIT_MS);
    assert_int_equal(closed, 1);
    x->db = NULL;
}

static int open_url(ctx_t *x, const char *url, const fv_sql_opts_t *opts, fv_sql_t **db)
{
    fv_error_t err;
    int rc = fv_sql_open(&x->loop, url, opts, db, &err);
    if (rc < 0)
        fprintf(stderr, "open %s: %s\n", url, err.msg);
    return rc;
}

static int setup_sqlite(void **state)
{
    ctx_t *x = fv_calloc(1, sizeof(*x));
    uv_loop_init(&x->loop);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(x->tmpdir, sizeof(x->tmpdir), "%s/fv_sql_XXXXXX", tmp);
    if (!mkdtemp(x->tmpdir))
        return -1;
    /* a folder that does not exist yet: open must create it */
    snprintf(x->url, sizeof(x->url), "sqlite:%s/data/test.db", x->tmpdir);
    if (open_url(x, x->url, NULL, &x->db) < 0)
        return -1;
    *state = x;
    return 0;
}

static int setup_postgres(void **state)
{
    ctx_t *x = fv_calloc(1, sizeof(*x));
    uv_loop_init(&x->loop);
    x->pg = true;
    const char *dir = getenv("FV_TEST_SERVERS");
    char path[512];
    snprintf(path, sizeof(path), "%s/postgres.url", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "no PostgreSQL URL at %s\n", path);
        return -1;
    }
    if (!fgets(x->url, sizeof(x->url), f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    x->url[strcspn(x->url, "\r\n")] = '\0';
    if (open_url(x, x->url, NULL, &x->db) < 0)
        return -1;
    *state = x;
    return 0;
}

static int server_cmd(ctx_t *x, const char *cmd, const char *dir);

static int teardown(void **state)
{
    ctx_t *x = *state;
    if (x->fault_dir[0]) {          /* a failed fault test leaves its server running */
        if (server_cmd(x, "stop", x->fault_dir) != 0)
            fprintf(stderr, "could not stop the server in %s\n", x->fault_dir);
        rmdir(x->fault_dir);
    }
    if (x->db)
        db_close(x);
    if (x->fault_keep) {            /* ... and, had it swapped handles, the suite's one too */
        x->db = x->fault_keep;
        x->fault_keep = NULL;
        db_close(x);
    }
    uv_run(&x->loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&x->loop);
    if (x->tmpdir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", x->tmpdir);
    }
    fv_free(x);
    return rc == 0 ? 0 : -1;
}

static const char *blob_type(const ctx_t *x)
{
    return x->pg ? "BYTEA" : "BLOB";
}

/* ---- conformance tests --------------------------------------------------------------------- */

static void typed_round_trips(void **state)
{
    ctx_t *x = *state;
    char ddl[512];
    snprintf(ddl, sizeof(ddl),
             "DROP TABLE IF EXISTS t_rt; CREATE TABLE t_rt (id BIGINT PRIMARY KEY, n BIGINT, "
             "d DOUBLE PRECISION, s TEXT, b %s)",
             blob_type(x));
    assert_int_equal(qs(x, ddl), 0);

    call_t c;
    const char *uni = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e";   /* é, check mark, clef */
    const unsigned char bin[] = {0, 1, 0, 255, 0, 'x', 0};
    const char *ins = "INSERT INTO t_rt (id, n, d, s, b) VALUES ($1, $2, $3, $4, $5)";
    fv_sql_param_t p1[] = {FV_SQL_INT(1), FV_SQL_NULLV, FV_SQL_NULLV, FV_SQL_NULLV,
                           FV_SQL_NULLV};
    assert_int_equal(q(x, &c, ins, p1, 5), 0);
    assert_int_equal(c.changes, 1);
    fv_sql_param_t p2[] = {FV_SQL_INT(2), FV_SQL_INT(INT64_MAX), FV_SQL_DOUBLE(1.5e300),
                           FV_SQL_TEXT(uni), FV_SQL_BLOB(bin, sizeof(bin))};
    assert_int_equal(q(x, &c, ins, p2, 5), 0);
    fv_sql_param_t p3[] = {FV_SQL_INT(3), FV_SQL_INT(INT64_MIN), FV_SQL_DOUBLE(-0.1),
                           FV_SQL_TEXT(""), FV_SQL_BLOB(NULL, 0)};
    assert_int_equal(q(x, &c, ins, p3, 5), 0);

    const char *sel = "SELECT id, n, d, s, b FROM t_rt WHERE id = $1";
    fv_sql_param_t k = FV_SQL_INT(1);
    assert_int_equal(q(x, &c, sel, &k, 1), 0);
    assert_int_equal(c.rows, 1);
    assert_int_equal(c.cols, 5);
    assert_string_equal(c.name0, "id");
    assert_false(c.is_null[0]);
    for (int i = 1; i < 5; i++)
        assert_true(c.is_null[i]);

    k = FV_SQL_INT(2);
    assert_int_equal(q(x, &c, sel, &k, 1), 0);
    assert_int_equal(c.i64[0], 2);
    assert_true(c.i64[1] == INT64_MAX);
    assert_true(c.d[2] == 1.5e300);
    assert_int_equal(c.text_len[3], strlen(uni));
    assert_memory_equal(c.text[3], uni, strlen(uni));
    assert_int_equal(c.blob_len[4], sizeof(bin));
    assert_memory_equal(c.blob[4], bin, sizeof(bin));

    k = FV_SQL_INT(3);
    assert_int_equal(q(x, &c, sel, &k, 1), 0);
    assert_true(c.i64[1] == INT64_MIN);
    assert_true(c.d[2] == -0.1);
    assert_false(c.is_null[3]);
    assert_int_equal(c.text_len[3], 0);
    assert_false(c.is_null[4]);
    assert_int_equal(c.blob_len[4], 0);

    /* the same placeholder twice, and out of order */
    fv_sql_param_t two[] = {FV_SQL_INT(10), FV_SQL_INT(3)};
    assert_int_equal(q(x, &c, "SELECT $2 + $1 + $2 AS v", two, 2), 0);
    assert_int_equal(c.i64[0], 16);

    assert_int_equal(q(x, &c, "UPDATE t_rt SET n = 7 WHERE id >= $1", &k, 1), 0);
    assert_int_equal(c.changes, 1);
    assert_int_equal(q(x, &c, "SELECT id FROM t_rt ORDER BY id", NULL, 0), 0);
    assert_int_equal(c.rows, 3);
    assert_int_equal(c.col0[2], 3);
}

static void parameter_count_mismatch(void **state)
{
    ctx_t *x = *state;
    call_t c;
    fv_sql_param_t one = FV_SQL_INT(1);
    assert_int_equal(q(x, &c, "SELECT $1, $2", &one, 1), FV_EINVAL);
    assert_non_null(strstr(c.err.msg, "expects 2 parameters, got 1"));
    assert_int_equal(q(x, &c, "SELECT 1", &one, 1), FV_EINVAL);
    /* placeholders inside strings and comments are not counted */
    assert_int_equal(q(x, &c, "SELECT '$2', $1 -- $3", &one, 1), 0);
    assert_string_equal(c.text[0], "$2");
}

static void syntax_error_has_message(void **state)
{
    ctx_t *x = *state;
    call_t c;
    assert_int_equal(q(x, &c, "SELEC 1", NULL, 0), FV_EINVAL);
    assert_non_null(strstr(c.err.msg, "syntax error"));
    assert_int_equal(c.err.code, FV_EINVAL);
    assert_int_equal(q(x, &c, "SELECT * FROM no_such_table", NULL, 0), FV_EINVAL);
    assert_non_null(strstr(c.err.msg, "no_such_table"));
    /* the connection still works */
    assert_int_equal(q(x, &c, "SELECT 41 + 1", NULL, 0), 0);
    assert_int_equal(c.i64[0], 42);
}

static void unique_violation_is_conflict(void **state)
{
    ctx_t *x = *state;
    call_t c;
    assert_int_equal(qs(x, "DROP TABLE IF EXISTS t_u; CREATE TABLE t_u (k TEXT PRIMARY KEY, "
                           "e TEXT UNIQUE, n BIGINT NOT NULL)"), 0);
    fv_sql_param_t p[] = {FV_SQL_TEXT("a"), FV_SQL_TEXT("a@x"), FV_SQL_INT(1)};
    const char *ins = "INSERT INTO t_u (k, e, n) VALUES ($1, $2, $3)";
    assert_int_equal(q(x, &c, ins, p, 3), 0);
    assert_int_equal(q(x, &c, ins, p, 3), FV_ECONFLICT);
    p[0] = FV_SQL_TEXT("b");
    assert_int_equal(q(x, &c, ins, p, 3), FV_ECONFLICT);       /* the UNIQUE column */
    p[1] = FV_SQL_TEXT("b@x");
    p[2] = FV_SQL_NULLV;
    assert_int_equal(q(x, &c, ins, p, 3), FV_EINVAL);          /* NOT NULL */
}

static void bad_input_refused(void **state)
{
    ctx_t *x = *state;
    call_t c;
    assert_int_equal(qs(x, "DROP TABLE IF EXISTS t_bad; CREATE TABLE t_bad (k BIGINT, s TEXT)"),
                     0);
    size_t big = 1024 * 1024 + 1;
    char *huge = fv_malloc(big);
    memset(huge, 'a', big);
    fv_sql_param_t p[] = {FV_SQL_INT(1), FV_SQL_TEXTN(huge, big)};
    const char *ins = "INSERT INTO t_bad (k, s) VALUES ($1, $2)";
    assert_int_equal(q(x, &c, ins, p, 2), FV_ETOOBIG);
    assert_non_null(strstr(c.err.msg, "parameter $2"));
    p[1] = FV_SQL_BLOB(huge, big);
    assert_int_equal(q(x, &c, ins, p, 2), FV_ETOOBIG);
    fv_free(huge);

    const char bad_utf8[] = "ok\xc3\x28";
    p[1] = FV_SQL_TEXT(bad_utf8);
    assert_int_equal(q(x, &c, ins, p, 2), FV_EINVAL);
    assert_string_equal(c.err.msg, "parameter $2 is not valid UTF-8");
    p[1] = FV_SQL_TEXT("\xed\xa0\x80");      /* a surrogate */
    assert_int_equal(q(x, &c, ins, p, 2), FV_EINVAL);
    p[1] = FV_SQL_TEXT("\xc0\xaf");          /* overlong '/' */
    assert_int_equal(q(x, &c, ins, p, 2), FV_EINVAL);
    p[1] = FV_SQL_TEXTN("a\0b", 3);
    assert_int_equal(q(x, &c, ins, p, 2), FV_EINVAL);
    assert_non_null(strstr(c.err.msg, "NUL"));
    assert_int_equal(q(x, &c, "SELECT '\xff'", NULL, 0), FV_EINVAL);
    assert_int_equal(q(x, &c, "", NULL, 0), FV_EINVAL);

    /* nothing of that reached the table */
    assert_int_equal(q(x, &c, "SELECT count(*) FROM t_bad", NULL, 0), 0);
    assert_int_equal(c.i64[0], 0);
}

/* A transaction driven step by step from callbacks. */
typedef struct txrun {
    fv_sql_req_t req;
    int done;
    int rc;
    fv_sql_tx_t *tx;
} txrun_t;

static void on_tx(fv_sql_req_t *req, int rc, fv_sql_tx_t *tx)
{
    txrun_t *t = req->data;
    t->done = 1;
    t->rc = rc;
    t->tx = tx;
}

static void on_tx_done(fv_sql_req_t *req, int rc)
{
    txrun_t *t = req->data;
    t->done = 1;
    t->rc = rc;
}

static fv_sql_tx_t *tx_begin(ctx_t *x)
{
    txrun_t t = {.req.data = &t};
    t.req.data = &t;
    assert_int_equal(fv_sql_tx_begin(x->db, &t.req, on_tx), 0);
    run_until(&x->loop, &t.done, WAIT_MS);
    assert_int_equal(t.rc, 0);
    assert_non_null(t.tx);
    return t.tx;
}

static int tx_end(ctx_t *x, fv_sql_tx_t *tx, bool commit)
{
    txrun_t t;
    memset(&t, 0, sizeof(t));
    t.req.data = &t;
    int rc = commit ? fv_sql_tx_commit(tx, &t.req, on_tx_done)
                    : fv_sql_tx_rollback(tx, &t.req, on_tx_done);
    if (rc < 0)
        return rc;
    run_until(&x->loop, &t.done, WAIT_MS);
    return t.rc;
}

static int tq(ctx_t *x, fv_sql_tx_t *tx, call_t *c, const char *sql, const fv_sql_param_t *p,
              size_t n)
{
    call_init(c);
    int rc = fv_sql_tx_exec(tx, &c->req, sql, p, n, on_exec);
    if (rc < 0)
        return rc;
    run_until(&x->loop, &c->done, WAIT_MS);
    return c->rc;
}

static void transactions_commit_and_rollback(void **state)
{
    ctx_t *x = *state;
    call_t c;
    assert_int_equal(qs(x, "DROP TABLE IF EXISTS t_tx; CREATE TABLE t_tx (k BIGINT PRIMARY KEY)"),
                     0);
    fv_sql_param_t k = FV_SQL_INT(1);

    fv_sql_tx_t *tx = tx_begin(x);
    assert_int_equal(tq(x, tx, &c, "INSERT INTO t_tx (k) VALUES ($1)", &k, 1), 0);
    assert_int_equal(tq(x, tx, &c, "SELECT count(*) FROM t_tx", NULL, 0), 0);
    assert_int_equal(c.i64[0], 1);
    if (x->pg) {
        /* another connection does not see it before the commit */
        assert_int_equal(q(x, &c, "SELECT count(*) FROM t_tx", NULL, 0), 0);
        assert_int_equal(c.i64[0], 0);
    }
    assert_int_equal(tx_end(x, tx, false), 0);
    assert_int_equal(q(x, &c, "SELECT count(*) FROM t_tx", NULL, 0), 0);
    assert_int_equal(c.i64[0], 0);

    tx = tx_begin(x);
    assert_int_equal(tq(x, tx, &c, "INSERT INTO t_tx (k) VALUES ($1)", &k, 1), 0);
    assert_int_equal(tx_end(x, tx, true), 0);
    assert_int_equal(q(x, &c, "SELECT count(*) FROM t_tx", NULL, 0), 0);
    assert_int_equal(c.i64[0], 1);

    /* an error inside the transaction, then rollback: nothing stays */
    tx = tx_begin(x);
    fv_sql_param_t k2 = FV_SQL_INT(2);
    assert_int_equal(tq(x, tx, &c, "INSERT INTO t_tx (k) VALUES ($1)", &k2, 1), 0);
    assert_int_equal(tq(x, tx, &c, "INSERT INTO t_tx (k) VALUES ($1)", &k, 1), FV_ECONFLICT);
    assert_int_equal(tx_end(x, tx, false), 0);
    assert_int_equal(q(x, &c, "SELECT count(*) FROM t_tx", NULL, 0), 0);
    assert_int_equal(c.i64[0], 1);
}

typedef struct many {
    fv_sql_req_t req[100];
    int order[100];
    int rcs[100];
    int answered;
    int all;
} many_t;

static void on_many(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    many_t *m = req->data;
    int i = (int)(req - m->req);
    m->rcs[i] = rc;
    m->order[m->answered++] = i;
    m->all = m->answered == 100;
}

static void hundred_concurrent_requests(void **state)
{
    ctx_t *x = *state;
    assert_int_equal(qs(x, "DROP TABLE IF EXISTS t_many; CREATE TABLE t_many (k BIGINT)"), 0);
    many_t *m = fv_calloc(1, sizeof(*m));
    for (int i = 0; i < 100; i++) {
        m->req[i].data = m;
        fv_sql_param_t p = FV_SQL_INT(i);
        assert_int_equal(fv_sql_exec(x->db, &m->req[i], "INSERT INTO t_many (k) VALUES ($1)",
                                     &p, 1, on_many), 0);
    }
    assert_int_equal(m->answered, 0);          /* never inside the call */
    run_until(&x->loop, &m->all, WAIT_MS);
    for (int i = 0; i < 100; i++)
        assert_int_equal(m->rcs[i], 0);
    if (!x->pg)                                 /* one connection: strictly in order */
        for (int i = 0; i < 100; i++)
            assert_int_equal(m->order[i], i);

    /* on one connection (a transaction) every backend answers in order */
    fv_sql_tx_t *tx = tx_begin(x);
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < 100; i++) {
        m->req[i].data = m;
        fv_sql_param_t p = FV_SQL_INT(i);
        assert_int_equal(fv_sql_tx_exec(tx, &m->req[i], "SELECT $1", &p, 1, on_many), 0);
    }
    run_until(&x->loop, &m->all, WAIT_MS);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(m->rcs[i], 0);
        assert_int_equal(m->order[i], i);
    }
    assert_int_equal(tx_end(x, tx, true), 0);
    call_t c;
    assert_int_equal(q(x, &c, "SELECT count(*), sum(k) FROM t_many", NULL, 0), 0);
    assert_int_equal(c.i64[0], 100);
    assert_int_equal(c.i64[1], 4950);
    fv_free(m);
}

static void on_migrated(fv_sql_req_t *req, int rc)
{
    call_t *c = req->data;
    c->done = 1;
    c->rc = rc;
    c->err = req->err;
}

static void migrations_apply_once(void **state)
{
    ctx_t *x = *state;
    size_t n = fv_sql_migration_count(fv_sql_backend(x->db));
    assert_true(n >= 2);
    int64_t v1;
    const char *name1;
    assert_int_equal(fv_sql_migration_info(fv_sql_backend(x->db), 0, &v1, &name1), 0);
    assert_int_equal(v1, 1);
    assert_string_equal(name1, "initial");

    for (int round = 0; round < 2; round++) {
        call_t c;
        call_init(&c);
        assert_int_equal(fv_sql_migrate(x->db, &c.req, on_migrated), 0);
        run_until(&x->loop, &c.done, WAIT_MS);
        if (c.rc < 0)
            fprintf(stderr, "migrate: %s\n", c.err.msg);
        assert_int_equal(c.rc, 0);
        assert_int_equal(q(x, &c, "SELECT count(*), max(version) FROM schema_migrations", NULL,
                           0), 0);
        assert_int_equal(c.i64[0], (int64_t)n);
    }
    static const char *tables[] = {
        "accounts", "players", "regions", "cells", "melodies", "performances", "echoes",
        "bonds", "quests", "objectives", "player_quests", "objective_progress",
        "player_groups", "group_members", "chat_messages", "assets", "chronicle_entries",
        "vectors",
    };
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
        call_t c;
        assert_int_equal(q(x, &c, sql, NULL, 0), 0);
    }
    /* the schema is usable: foreign keys hold, generated ids work, vectors take bytes */
    call_t c;
    assert_int_equal(qs(x, "DELETE FROM chat_messages; DELETE FROM vectors; DELETE FROM players; "
                           "DELETE FROM regions"), 0);
    fv_sql_param_t r[] = {FV_SQL_TEXT("r1"), FV_SQL_TEXT("Meadow"), FV_SQL_INT(1)};
    assert_int_equal(q(x, &c, "INSERT INTO regions (id, name, created_at, updated_at) "
                              "VALUES ($1, $2, $3, $3)", r, 3), 0);
    fv_sql_param_t pl[] = {FV_SQL_TEXT("p1"), FV_SQL_TEXT("nowhere"), FV_SQL_INT(1)};
    assert_int_equal(q(x, &c, "INSERT INTO players (id, name, region_id, created_at, updated_at)"
                              " VALUES ($1, 'ann', $2, $3, $3)", pl, 3), FV_EINVAL);
    pl[1] = FV_SQL_TEXT("r1");
    assert_int_equal(q(x, &c, "INSERT INTO players (id, name, region_id, created_at, updated_at)"
                              " VALUES ($1, 'ann', $2, $3, $3)", pl, 3), 0);
    fv_sql_param_t ch[] = {FV_SQL_TEXT("region:r1"), FV_SQL_TEXT("p1"), FV_SQL_TEXT("hi")};
    for (int i = 0; i < 2; i++)
        assert_int_equal(q(x, &c, "INSERT INTO chat_messages (channel, sender_id, body, sent_at)"
                                  " VALUES ($1, $2, $3, 5)", ch, 3), 0);
    assert_int_equal(q(x, &c, "SELECT id FROM chat_messages WHERE channel = $1 ORDER BY id", ch,
                       1), 0);
    assert_int_equal(c.rows, 2);
    assert_true(c.col0[1] > c.col0[0]);
    float vec[3] = {1.0f, 0.0f, -2.5f};
    fv_sql_param_t vp[] = {FV_SQL_TEXT("lore"), FV_SQL_TEXT("v1"),
                           FV_SQL_BLOB(vec, sizeof(vec))};
    assert_int_equal(q(x, &c, "INSERT INTO vectors (collection, id, dim, vector, updated_at) "
                              "VALUES ($1, $2, 3, $3, 0)", vp, 3), 0);
    assert_int_equal(q(x, &c, "SELECT vector FROM vectors WHERE collection = $1 AND id = $2", vp,
                       2), 0);
    assert_int_equal(c.blob_len[0], sizeof(vec));
    assert_memory_equal(c.blob[0], vec, sizeof(vec));
}

/* Two handles migrate one empty database at once: each migration is applied exactly once. */
static void concurrent_migrators(void **state)
{
    ctx_t *x = *state;
    char url[600];
    call_t c;
    if (x->pg) {
        assert_int_equal(qs(x, "DROP DATABASE IF EXISTS fv_migrate_race"), 0);
        assert_int_equal(qs(x, "CREATE DATABASE fv_migrate_race"), 0);
        const char *slash = strrchr(x->url, '/');
        snprintf(url, sizeof(url), "%.*s/fv_migrate_race", (int)(slash - x->url), x->url);
    } else {
        snprintf(url, sizeof(url), "sqlite:%s/race/race.db", x->tmpdir);
    }
    fv_sql_t *a, *b;
    assert_int_equal(open_url(x, url, NULL, &a), 0);
    assert_int_equal(open_url(x, url, NULL, &b), 0);
    call_t ca, cb;
    call_init(&ca);
    call_init(&cb);
    assert_int_equal(fv_sql_migrate(a, &ca.req, on_migrated), 0);
    assert_int_equal(fv_sql_migrate(b, &cb.req, on_migrated), 0);
    run_until(&x->loop, &ca.done, WAIT_MS);
    run_until(&x->loop, &cb.done, WAIT_MS);
    if (ca.rc || cb.rc)
        fprintf(stderr, "migrate: %s / %s\n", ca.err.msg, cb.err.msg);
    assert_int_equal(ca.rc, 0);
    assert_int_equal(cb.rc, 0);
    fv_sql_t *keep = x->db;
    x->db = a;
    assert_int_equal(q(x, &c, "SELECT count(*), count(DISTINCT version) FROM schema_migrations",
                       NULL, 0), 0);
    assert_int_equal(c.i64[0], (int64_t)fv_sql_migration_count(fv_sql_backend(a)));
    assert_int_equal(c.i64[1], c.i64[0]);
    db_close(x);
    x->db = b;
    db_close(x);
    x->db = keep;
    if (x->pg)
        assert_int_equal(qs(x, "DROP DATABASE fv_migrate_race"), 0);
}

typedef struct cancel_run {
    fv_sql_req_t req[10];
    int rcs[10];
    int answered;
    int closed;
    int order_ok;
} cancel_run_t;

static void on_cancelled(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    cancel_run_t *r = req->data;
    r->rcs[req - r->req] = rc;
    r->answered++;
    if (r->closed)
        r->order_ok = 0;            /* every request is answered before the close callback */
}

static void on_cancel_closed(void *data)
{
    cancel_run_t *r = data;
    r->closed = 1;
}

static void close_cancels_pending(void **state)
{
    ctx_t *x = *state;
    fv_sql_t *db;
    assert_int_equal(open_url(x, x->url, NULL, &db), 0);
    cancel_run_t r = {.order_ok = 1};
    for (int i = 0; i < 10; i++) {
        r.req[i].data = &r;
        assert_int_equal(fv_sql_exec(db, &r.req[i], "SELECT 1", NULL, 0, on_cancelled), 0);
    }
    fv_sql_close(db, on_cancel_closed, &r);
    fv_sql_close(db, on_cancel_closed, &r);     /* the second call does nothing */
    call_t c;
    call_init(&c);
    run_until(&x->loop, &r.closed, WAIT_MS);
    assert_int_equal(r.answered, 10);
    assert_true(r.order_ok);
    for (int i = 0; i < 10; i++)
        assert_int_equal(r.rcs[i], FV_ECANCELED);
}

typedef struct reenter {
    fv_sql_t *db;
    fv_sql_req_t req[5];
    int rcs[5];
    int answered;
    int closed;
    int late;
} reenter_t;

static void on_reenter_closed(void *data)
{
    reenter_t *r = data;
    r->closed = 1;
}

static void on_reenter(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    reenter_t *r = req->data;
    r->rcs[req - r->req] = rc;
    if (r->closed)
        r->late = 1;
    if (r->answered++ == 0)
        fv_sql_close(r->db, on_reenter_closed, r);    /* from inside a callback */
}

static void close_from_callback(void **state)
{
    ctx_t *x = *state;
    reenter_t r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(open_url(x, x->url, NULL, &r.db), 0);
    for (int i = 0; i < 5; i++) {
        r.req[i].data = &r;
        assert_int_equal(fv_sql_exec(r.db, &r.req[i], "SELECT 1", NULL, 0, on_reenter), 0);
    }
    run_until(&x->loop, &r.closed, WAIT_MS);
    assert_int_equal(r.answered, 5);
    assert_false(r.late);
    int ok = 0;
    for (int i = 0; i < 5; i++) {
        assert_true(r.rcs[i] == 0 || r.rcs[i] == FV_ECANCELED);
        ok += r.rcs[i] == 0;
    }
    assert_int_equal(ok, 1);          /* only the one that closed saw success */
}

/* The Nth allocation of a call fails: the call refuses cleanly, nothing is queued. */
static void allocation_failure_is_clean(void **state)
{
    ctx_t *x = *state;
    fv_sql_param_t p[] = {FV_SQL_INT(5), FV_SQL_TEXT("five")};
    for (unsigned long n = 1; n <= 3; n++) {
        call_t c;
        call_init(&c);
        fv_alloc_fail_at(n);
        int rc = fv_sql_exec(x->db, &c.req, "SELECT $1, $2", p, 2, on_exec);
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        assert_true(fired);
        assert_int_equal(rc, FV_ENOMEM);
        assert_int_equal(c.req.err.code, FV_ENOMEM);
    }
    call_t c;
    assert_int_equal(q(x, &c, "SELECT $1, $2", p, 2), 0);
    assert_int_equal(c.i64[0], 5);
    assert_string_equal(c.text[1], "five");
}

static void on_tx_cancelled(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    call_t *c = req->data;
    c->done = 1;
    c->rc = rc;
}

static void close_ends_transactions(void **state)
{
    ctx_t *x = *state;
    fv_sql_t *db;
    assert_int_equal(open_url(x, x->url, NULL, &db), 0);
    txrun_t t;
    memset(&t, 0, sizeof(t));
    t.req.data = &t;
    assert_int_equal(fv_sql_tx_begin(db, &t.req, on_tx), 0);
    run_until(&x->loop, &t.done, WAIT_MS);
    assert_int_equal(t.rc, 0);
    call_t c;
    call_init(&c);
    assert_int_equal(fv_sql_tx_exec(t.tx, &c.req, "SELECT 1", NULL, 0, on_tx_cancelled), 0);
    int closed = 0;
    fv_sql_close(db, on_db_closed, &closed);
    run_until(&x->loop, &closed, WAIT_MS);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.rc, FV_ECANCELED);
}

static void timeout_ends_request(void **state)
{
    ctx_t *x = *state;
    fv_sql_t *db;
    fv_sql_opts_t o = {.timeout_ms = 200};
    assert_int_equal(open_url(x, x->url, &o, &db), 0);
    fv_sql_t *keep = x->db;
    x->db = db;
    call_t c;
    const char *slow = x->pg ? "SELECT pg_sleep(10)"
                             : "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) "
                               "SELECT count(*) FROM c";
    assert_int_equal(q(x, &c, slow, NULL, 0), FV_ETIMEDOUT);
    /* the handle goes on working */
    assert_int_equal(q(x, &c, "SELECT 7", NULL, 0), 0);
    assert_int_equal(c.i64[0], 7);
    db_close(x);
    x->db = keep;
}

static void bad_urls(void **state)
{
    ctx_t *x = *state;
    fv_sql_t *db = NULL;
    fv_error_t err;
    assert_int_equal(fv_sql_open(&x->loop, "mysql://x", NULL, &db, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "unknown scheme"));
    assert_int_equal(fv_sql_open(&x->loop, "postgres://a:b:c@[x/", NULL, &db, &err), FV_EINVAL);
    assert_int_equal(fv_sql_open(&x->loop, "sqlite:", NULL, &db, &err), FV_EINVAL);
    assert_int_equal(fv_sql_open(&x->loop, "sqlite:/proc/no/such/dir/x.db", NULL, &db, &err),
                     FV_EIO);
    assert_null(db);
}

/* SQLite materialises results: past max_result_bytes the request fails, the handle lives. */
static void sqlite_result_ceiling(void **state)
{
    ctx_t *x = *state;
    fv_sql_t *db;
    fv_sql_opts_t o = {.max_result_bytes = 4096};
    char url[600];
    snprintf(url, sizeof(url), "sqlite:%s/other/ceiling.db", x->tmpdir);
    assert_int_equal(open_url(x, url, &o, &db), 0);
    fv_sql_t *keep = x->db;
    x->db = db;
    call_t c;
    assert_int_equal(q(x, &c, "SELECT zeroblob(8000)", NULL, 0), FV_ETOOBIG);
    assert_non_null(strstr(c.err.msg, "4096"));
    assert_int_equal(q(x, &c, "SELECT length(zeroblob(8000))", NULL, 0), 0);
    assert_int_equal(c.i64[0], 8000);
    db_close(x);
    x->db = keep;
}

/* ---- PostgreSQL fault test ----------------------------------------------------------------- */

/* Runs the server script, which blocks this thread (and so the loop) for seconds: a first start
 * runs initdb. Timers start from the loop's cached clock (uv_now), which does not move while
 * the loop is blocked, so refresh it afterwards. Otherwise the next deadline (connect_timeout_ms,
 * the run_until watchdog) counts from before the script ran and fires at once once the script
 * took longer than it: a "connection timed out" without a single connect attempt. */
static int server_cmd(ctx_t *x, const char *cmd, const char *dir)
{
    const char *src = getenv("FV_SRC");
    char line[1024];
    snprintf(line, sizeof(line), "bash '%s/tests/support/server_postgres.sh' %s '%s'",
             src ? src : ".", cmd, dir);
    int rc = system(line);
    uv_update_time(&x->loop);
    return rc;
}

static void server_restart_reconnects(void **state)
{
    ctx_t *x = *state;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/fv_pgfault_XXXXXX", tmp);
    assert_non_null(mkdtemp(dir));
    snprintf(x->fault_dir, sizeof(x->fault_dir), "%s", dir);
    assert_int_equal(server_cmd(x, "start", dir), 0);
    char path[300], url[256];
    snprintf(path, sizeof(path), "%s/postgres.url", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(url, sizeof(url), f));
    fclose(f);
    url[strcspn(url, "\r\n")] = '\0';

    x->fault_keep = x->db;
    fv_sql_opts_t o = {.pool_size = 2, .connect_timeout_ms = 2000};
    assert_int_equal(open_url(x, url, &o, &x->db), 0);
    call_t c;
    int first = q(x, &c, "SELECT 1", NULL, 0);
    if (first != 0)
        fprintf(stderr, "first query on %s: %s\n", url, c.err.msg);
    assert_int_equal(first, 0);
    fv_sql_tx_t *open_tx = tx_begin(x);

    assert_int_equal(server_cmd(x, "halt", dir), 0);
    /* the transaction's connection is gone: its statements fail, rollback still succeeds */
    assert_int_equal(tq(x, open_tx, &c, "SELECT 1", NULL, 0), FV_EBACKEND);
    assert_int_equal(tq(x, open_tx, &c, "SELECT 1", NULL, 0), FV_EBACKEND);
    assert_int_equal(tx_end(x, open_tx, false), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(q(x, &c, "SELECT 2", NULL, 0), FV_EBACKEND);
        assert_true(strlen(c.err.msg) > 0);
    }
    /* a transaction cannot start either */
    txrun_t t;
    memset(&t, 0, sizeof(t));
    t.req.data = &t;
    assert_int_equal(fv_sql_tx_begin(x->db, &t.req, on_tx), 0);
    run_until(&x->loop, &t.done, WAIT_MS);
    assert_int_equal(t.rc, FV_EBACKEND);

    assert_int_equal(server_cmd(x, "start", dir), 0);
    int rc = -1;
    for (int i = 0; i < 100 && rc != 0; i++) {
        rc = q(x, &c, "SELECT 3", NULL, 0);
        if (rc != 0) {
            assert_int_equal(rc, FV_EBACKEND);
            sleep_ms(&x->loop, 100);
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(c.i64[0], 3);
    db_close(x);
    x->db = x->fault_keep;
    x->fault_keep = NULL;
    assert_int_equal(server_cmd(x, "stop", dir), 0);
    rmdir(dir);
    x->fault_dir[0] = '\0';
}

#define CONFORMANCE(setup)                                                                   \
    cmocka_unit_test(typed_round_trips), cmocka_unit_test(parameter_count_mismatch),        \
        cmocka_unit_test(syntax_error_has_message),                                          \
        cmocka_unit_test(unique_violation_is_conflict), cmocka_unit_test(bad_input_refused), \
        cmocka_unit_test(transactions_commit_and_rollback),                                  \
        cmocka_unit_test(hundred_concurrent_requests),                                       \
        cmocka_unit_test(migrations_apply_once), cmocka_unit_test(concurrent_migrators),     \
        cmocka_unit_test(close_cancels_pending),                                             \
        cmocka_unit_test(close_ends_transactions), cmocka_unit_test(timeout_ends_request),   \
        cmocka_unit_test(close_from_callback), cmocka_unit_test(allocation_failure_is_clean), \
        cmocka_unit_test(bad_urls)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        CONFORMANCE(setup_sqlite),
        cmocka_unit_test(sqlite_result_ceiling),
    };
    const struct CMUnitTest postgres_tests[] = {
        CONFORMANCE(setup_postgres),
        cmocka_unit_test(server_restart_reconnects),
    };
    int failed = cmocka_run_group_tests_name("sql/sqlite", sqlite_tests, setup_sqlite, teardown);
    failed += cmocka_run_group_tests_name("sql/postgres", postgres_tests, setup_postgres,
                                          teardown);
    return failed;
}
