/* sql_sqlite.c - the embedded SQL backend: one SQLite connection (WAL, busy timeout, foreign
 * keys on), used by one job at a time on libuv's work queue so the loop never waits on disk.
 * Each job binds its own copies of the parameters, steps the statement and materialises every
 * row into a result handed back on the loop. Prepared statements are cached per connection by
 * SQL text. Queues, transactions and cancellation are sql.c's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "store/sql_internal.h"

#define SQ_CACHE_MAX 128   /* statements kept prepared; past it they are prepared per call */

typedef struct sq_stmt {
    char *sql;
    size_t len;
    sqlite3_stmt *st;
} sq_stmt_t;

typedef struct sq_db {
    fv__sql_conn_t conn;       /* first: sql.c sees the connection */
    fv__sql_conn_t *connp;
    fv_sql_t *db;
    sqlite3 *h;
    sq_stmt_t cache[SQ_CACHE_MAX];
    size_t ncache;
    uv_timer_t timeout;        /* per-job deadline: interrupts the statement */
    uv_work_t close_work;
    bool closing;
    bool close_started;
} sq_db_t;

/* ---- errors -------------------------------------------------------------------------------- */

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return FV_ECONFLICT;
        return FV_EINVAL;
    case SQLITE_ERROR:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return FV_EINVAL;
    case SQLITE_TOOBIG:
        return FV_ETOOBIG;
    case SQLITE_NOMEM:
        return FV_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_INTERRUPT:
        return FV_ETIMEDOUT;
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return FV_EIO;
    default:
        return FV_EINTERNAL;
    }
}

static int sq_fail(sq_db_t *s, fv__sql_job_t *job, int rc)
{
    int code = map_rc(rc);
    return fv_error_set(&job->err, code, "%s", sqlite3_errmsg(s->h));
}

/* ---- the worker side (one job at a time, any pool thread) --------------------------------- */

static sqlite3_stmt *cache_get(sq_db_t *s, const char *sql, size_t len)
{
    for (size_t i = 0; i < s->ncache; i++)
        if (s->cache[i].len == len && memcmp(s->cache[i].sql, sql, len) == 0)
            return s->cache[i].st;
    return NULL;
}

static int bind_params(sq_db_t *s, fv__sql_job_t *job, sqlite3_stmt *st)
{
    int count = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= count; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        char *end = NULL;
        long n = name && name[0] == '$' ? strtol(name + 1, &end, 10) : 0;
        if (n < 1 || (size_t)n > job->nparams || !end || *end)
            return fv_error_set(&job->err, FV_EINVAL,
                                "placeholder %s: write parameters as $1, $2, ...",
                                name ? name : "?");
        const fv_sql_param_t *p = &job->params[n - 1];
        int rc;
        switch (p->type) {
        case FV_SQL_INT64:
            rc = sqlite3_bind_int64(st, i, p->i);
            break;
        case FV_SQL_DOUBLE:
            rc = sqlite3_bind_double(st, i, p->d);
            break;
        case FV_SQL_TEXT:
            rc = sqlite3_bind_text(st, i, p->ptr, (int)p->len, SQLITE_STATIC);
            break;
        case FV_SQL_BLOB:
            rc = sqlite3_bind_blob(st, i, p->len ? p->ptr : "", (int)p->len, SQLITE_STATIC);
            break;
        default:
            rc = sqlite3_bind_null(st, i);
            break;
        }
        if (rc != SQLITE_OK)
            return sq_fail(s, job, rc);
    }
    return 0;
}

/* Steps st to the end, materialising rows into a new result (*out). */
static int run_stmt(sq_db_t *s, fv__sql_job_t *job, sqlite3_stmt *st, fv_sql_result_t **out)
{
    size_t max = s->db->opts.max_result_bytes;
    int cols = sqlite3_column_count(st);
    fv_sql_result_t *r = fv__sql_result_new_mat((size_t)cols);
    for (int c = 0; c < cols; c++) {
        const char *n = sqlite3_column_name(st, c);
        r->names[c] = fv_strdup(n ? n : "");
    }
    fv_buf_t vals;
    fv_buf_init(&vals, max);
    size_t cap_cells = 0;
    int rc, out_rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r->rows + 1) * (size_t)cols > cap_cells) {
            size_t want = cap_cells ? cap_cells * 2 : (size_t)cols * 16;
            if (want * sizeof(fv__sql_cell_t) + vals.len > max) {
                out_rc = fv_error_set(&job->err, FV_ETOOBIG,
                                      "result is over the %zu-byte limit", max);
                break;
            }
            fv__sql_cell_t *cells = fv_try_realloc(r->cells, want * sizeof(*cells));
            if (!cells) {
                out_rc = fv_error_set(&job->err, FV_ENOMEM, "out of memory reading rows");
                break;
            }
            r->cells = cells;
            cap_cells = want;
        }
        fv__sql_cell_t *row = &r->cells[r->rows * (size_t)cols];
        for (int c = 0; c < cols && out_rc == 0; c++) {
            fv__sql_cell_t *cell = &row[c];
            memset(cell, 0, sizeof(*cell));
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                cell->type = FV_SQL_INT64;
                cell->i = sqlite3_column_int64(st, c);
                break;
            case SQLITE_FLOAT:
                cell->type = FV_SQL_DOUBLE;
                cell->d = sqlite3_column_double(st, c);
                break;
            case SQLITE_TEXT:
            case SQLITE_BLOB: {
                int is_text = sqlite3_column_type(st, c) == SQLITE_TEXT;
                const void *p = is_text ? (const void *)sqlite3_column_text(st, c)
                                        : sqlite3_column_blob(st, c);
                size_t len = (size_t)sqlite3_column_bytes(st, c);
                cell->type = is_text ? FV_SQL_TEXT : FV_SQL_BLOB;
                cell->len = len;
                cell->i = (int64_t)vals.len;     /* offset until the buffer stops moving */
                int brc = fv_buf_append(&vals, p ? p : "", len);
                if (brc == 0)
                    brc = fv_buf_append(&vals, "", 1);
                if (brc < 0)
                    out_rc = fv_error_set(&job->err, brc,
                                          brc == FV_ETOOBIG ? "result is over the %zu-byte limit"
                                                            : "out of memory reading rows (%zu)",
                                          max);
                break;
            }
            default:
                cell->type = FV_SQL_NULL;
                break;
            }
        }
        if (out_rc < 0)
            break;
        r->rows++;
    }
    if (out_rc == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        out_rc = sq_fail(s, job, sqlite3_extended_errcode(s->h));
    if (out_rc < 0) {
        fv_buf_dispose(&vals);
        r->rows = 0;
        fv__sql_result_free(r);
        return out_rc;
    }
    size_t n = r->rows * (size_t)cols;
    for (size_t i = 0; i < n; i++) {
        fv__sql_cell_t *cell = &r->cells[i];
        if (cell->type == FV_SQL_TEXT || cell->type == FV_SQL_BLOB) {
            cell->ptr = vals.ptr + cell->i;
            cell->i = 0;
        }
    }
    r->backend = fv_buf_steal(&vals, NULL);
    r->changes = cols == 0 ? (uint64_t)sqlite3_changes64(s->h) : 0;
    *out = r;
    return 0;
}

static bool only_space(const char *p)
{
    for (; p && *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';')
            return false;
    return true;
}

static int do_exec(sq_db_t *s, fv__sql_job_t *job)
{
    sqlite3_stmt *st = cache_get(s, job->sql, job->sql_len);
    bool cached = st != NULL;
    if (!st) {
        const char *tail = NULL;
        unsigned flags = s->ncache < SQ_CACHE_MAX ? SQLITE_PREPARE_PERSISTENT : 0;
        int rc = sqlite3_prepare_v3(s->h, job->sql, (int)job->sql_len + 1, flags, &st, &tail);
        if (rc != SQLITE_OK)
            return sq_fail(s, job, sqlite3_extended_errcode(s->h));
        if (!st)
            return fv_error_set(&job->err, FV_EINVAL, "no statement in the SQL text");
        if (!only_space(tail)) {
            sqlite3_finalize(st);
            return fv_error_set(&job->err, FV_EINVAL,
                                "several statements in one exec: use a script for that");
        }
        if (s->ncache < SQ_CACHE_MAX) {
            s->cache[s->ncache] = (sq_stmt_t){fv_strndup(job->sql, job->sql_len), job->sql_len,
                                              st};
            s->ncache++;
            cached = true;
        }
    }
    int rc = bind_params(s, job, st);
    if (rc == 0)
        rc = run_stmt(s, job, st, &job->res);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!cached)
        sqlite3_finalize(st);
    return rc;
}

static int do_script(sq_db_t *s, fv__sql_job_t *job, const char *sql)
{
    const char *p = sql;
    while (p && *p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        if (sqlite3_prepare_v2(s->h, p, -1, &st, &tail) != SQLITE_OK)
            return sq_fail(s, job, sqlite3_extended_errcode(s->h));
        p = tail;
        if (!st)
            continue;        /* whitespace or a comment */
        fv_sql_result_t *r = NULL;
        int rc = run_stmt(s, job, st, &r);
        sqlite3_finalize(st);
        if (rc < 0)
            return rc;
        fv__sql_result_free(job->res);
        job->res = r;
    }
    if (!job->res)
        job->res = fv__sql_result_new_mat(0);
    return 0;
}

static void on_work(uv_work_t *w)
{
    fv__sql_job_t *job = w->data;
    sq_db_t *s = (sq_db_t *)job->conn;
    int rc;
    switch (job->kind) {
    case FV__SQL_EXEC:
        rc = do_exec(s, job);
        break;
    case FV__SQL_BEGIN:
        /* IMMEDIATE takes the write lock now, so another process cannot make this transaction
         * fail half-way with SQLITE_BUSY when it first writes. */
        rc = do_script(s, job, "BEGIN IMMEDIATE");
        break;
    case FV__SQL_COMMIT:
        rc = do_script(s, job, "COMMIT");
        if (rc < 0 && !sqlite3_get_autocommit(s->h))
            sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);   /* never leave it open */
        break;
    case FV__SQL_ROLLBACK:
        rc = sqlite3_get_autocommit(s->h) ? 0 : do_script(s, job, "ROLLBACK");
        break;
    default:
        rc = do_script(s, job, job->sql);
        break;
    }
    job->rc = rc;
}

/* ---- the loop side ------------------------------------------------------------------------- */

static void sq_close_now(sq_db_t *s);

static void on_after_work(uv_work_t *w, int status)
{
    fv__sql_job_t *job = w->data;
    sq_db_t *s = (sq_db_t *)job->conn;
    uv_timer_stop(&s->timeout);
    int rc = status < 0 ? FV_ECANCELED : job->rc;
    if (job->timed_out && rc < 0)
        rc = fv_error_set(&job->err, FV_ETIMEDOUT, "statement ran past %u ms",
                          s->db->opts.timeout_ms);
    fv__sql_job_done(job, rc);
    if (s->closing && !s->conn.cur)
        sq_close_now(s);
}

static void on_timeout(uv_timer_t *t)
{
    sq_db_t *s = t->data;
    if (s->conn.cur) {
        s->conn.cur->timed_out = true;
        sqlite3_interrupt(s->h);   /* safe from another thread; the step returns INTERRUPT */
    }
}

static void sq_run(fv__sql_conn_t *conn, fv__sql_job_t *job)
{
    sq_db_t *s = (sq_db_t *)conn;
    job->work.data = job;
    uv_timer_start(&s->timeout, on_timeout, s->db->opts.timeout_ms, 0);
    int rc = uv_queue_work(s->db->loop, &job->work, on_work, on_after_work);
    if (rc < 0) {
        uv_timer_stop(&s->timeout);
        fv__sql_job_done(job, fv_error_set(&job->err, FV_EINTERNAL, "work queue: %s",
                                           uv_strerror(rc)));
    }
}

static void sq_want_conn(fv_sql_t *db)
{
    /* The one connection exists from open to close: jobs just wait their turn. */
}

static void on_close_work(uv_work_t *w)
{
    sq_db_t *s = w->data;
    for (size_t i = 0; i < s->ncache; i++) {
        sqlite3_finalize(s->cache[i].st);
        fv_free(s->cache[i].sql);
    }
    s->ncache = 0;
    sqlite3_close_v2(s->h);     /* may checkpoint the WAL: disk work, hence off the loop */
    s->h = NULL;
}

static void on_timeout_closed(uv_handle_t *h)
{
    sq_db_t *s = h->data;
    fv_sql_t *db = s->db;
    fv_free(s);
    fv__sql_backend_closed(db);
}

static void on_after_close_work(uv_work_t *w, int status)
{
    sq_db_t *s = w->data;
    if (s->h)               /* not run (cannot happen unless cancelled): close here */
        on_close_work(w);
    uv_close((uv_handle_t *)&s->timeout, on_timeout_closed);
}

static void sq_close_now(sq_db_t *s)
{
    if (s->close_started)
        return;
    s->close_started = true;
    s->close_work.data = s;
    if (uv_queue_work(s->db->loop, &s->close_work, on_close_work, on_after_close_work) < 0) {
        on_close_work(&s->close_work);
        uv_close((uv_handle_t *)&s->timeout, on_timeout_closed);
    }
}

static void sq_close(fv_sql_t *db)
{
    sq_db_t *s = db->backend;
    s->closing = true;
    s->conn.ready = false;
    if (s->conn.cur)
        uv_cancel((uv_req_t *)&s->conn.cur->work);   /* if it has not started; else wait */
    else
        sq_close_now(s);
}

/* ---- open ---------------------------------------------------------------------------------- */

static int make_parent_dirs(const char *path, fv_error_t *err)
{
    char *p = fv_strdup(path);
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            int e = errno;
            int rc = fv_error_set(err, FV_EIO, "database.url: cannot create folder %s: %s", p,
                                  strerror(e));
            fv_free(p);
            return rc;
        }
        *q = '/';
    }
    fv_free(p);
    return 0;
}

int fv__sql_sqlite_open(fv_sql_t *db, const char *url, fv_error_t *err)
{
    const char *path = url + strlen("sqlite:");
    if (strncmp(path, "//", 2) == 0)
        path += 2;                       /* sqlite:///abs/path and sqlite://rel/path */
    bool memory = strcmp(path, ":memory:") == 0;
    if (!*path)
        return fv_error_set(err, FV_EINVAL, "database.url \"%s\": no file name", url);
    int rc;
    if (!memory && (rc = make_parent_dirs(path, err)) < 0)
        return rc;
    sqlite3 *h = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                SQLITE_OPEN_EXRESCODE;
    if (sqlite3_open_v2(path, &h, flags, NULL) != SQLITE_OK) {
        rc = fv_error_set(err, FV_EIO, "database.url \"%s\": %s", url,
                          h ? sqlite3_errmsg(h) : "cannot open");
        sqlite3_close_v2(h);
        return rc;
    }
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA busy_timeout=%u; PRAGMA foreign_keys=ON; %s", db->opts.busy_timeout_ms,
             memory ? "" : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    char *msg = NULL;
    if (sqlite3_exec(h, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        rc = fv_error_set(err, FV_EIO, "database.url \"%s\": %s", url, msg ? msg : "pragmas");
        sqlite3_free(msg);
        sqlite3_close_v2(h);
        return rc;
    }
    sqlite3_limit(h, SQLITE_LIMIT_LENGTH, 1 << 30);
    sq_db_t *s = fv_calloc(1, sizeof(*s));
    s->db = db;
    s->h = h;
    s->conn.db = db;
    s->conn.ready = true;
    s->connp = &s->conn;
    uv_timer_init(db->loop, &s->timeout);
    s->timeout.data = s;
    db->backend = s;
    db->conns = &s->connp;
    db->nconns = 1;
    return 0;
}

const fv__sql_ops_t fv__sql_sqlite_ops = {
    .name = "sqlite",
    .run = sq_run,
    .want_conn = sq_want_conn,
    .close = sq_close,
};
