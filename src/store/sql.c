/* sql.c - the SQL store's interface: URL switch to a backend, input checks (placeholder count,
 * value ceiling, UTF-8) before anything reaches a server, request queues (one FIFO for any
 * connection, one per transaction), deferred callbacks, close with cancellation, and the result
 * accessors. Talking to SQLite or PostgreSQL lives in sql_sqlite.c / sql_postgres.c; the
 * migration runner in sql_migrate.c. */
#include "store/sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/sql_internal.h"

#define SQL_MAX_TEXT_BYTES (16u * 1024 * 1024) /* statement text; migrations stay far below */

/* ---- deferred callbacks ------------------------------------------------------------------ */

static void on_defer(fv_defer_t *d);

static void defer_push(fv_sql_t *db, fv__sql_job_t *job)
{
    fv_defer_push(&db->defer, &job->defer, on_defer);
}

static void tx_free(fv_sql_tx_t *tx)
{
    fv_sql_t *db = tx->db;
    if (tx->prev_live)
        tx->prev_live->next_live = tx->next_live;
    else
        db->txs = tx->next_live;
    if (tx->next_live)
        tx->next_live->prev_live = tx->prev_live;
    fv_free(tx);
}

static void job_free(fv__sql_job_t *job)
{
    if (job->res)
        fv__sql_result_free(job->res);
    fv_free(job->sql);
    fv_free(job->params);
    fv_free(job);
}

static void job_callback(fv__sql_job_t *job)
{
    fv_sql_req_t *req = job->req;
    int rc = job->rc;
    req->job_ = NULL;
    if (rc < 0) {
        req->err = job->err;
        if (req->err.code == 0)
            fv_error_set(&req->err, rc, "%s", fv_strerror(rc));
        req->err.code = rc;
    } else {
        fv_error_clear(&req->err);
    }
    switch (job->kind) {
    case FV__SQL_EXEC:
    case FV__SQL_SCRIPT:
        job->cb.exec(req, rc, rc < 0 ? NULL : job->res);
        break;
    case FV__SQL_BEGIN: {
        fv_sql_tx_t *tx = rc < 0 ? NULL : job->tx;
        job->cb.tx(req, rc, tx);
        break;
    }
    case FV__SQL_COMMIT:
    case FV__SQL_ROLLBACK:
        job->cb.done(req, rc);
        tx_free(job->tx);     /* the user was told the pointer dies with this callback */
        break;
    }
    job_free(job);
}

static void on_db_closed(fv_defer_queue_t *q)
{
    fv_sql_t *db = q->data;
    while (db->txs)
        tx_free(db->txs);
    fv_sql_close_cb cb = db->close_cb;
    void *data = db->close_data;
    fv_free(db);
    if (cb)
        cb(data);
}

/* After every turn of the deferred queue (which runs only what was queued when the turn
 * started, so a caller that retries from its callback cannot starve the loop). */
static void maybe_finish_close(fv_defer_queue_t *q)
{
    fv_sql_t *db = q->data;
    if (db->closing && db->backend_closed && fv_defer_queue_empty(q))
        fv_defer_queue_close(q, on_db_closed);
}

static void on_defer(fv_defer_t *d)
{
    job_callback(FV_DEFER_OWNER(d, fv__sql_job_t, defer));
}

static void fail_later(fv__sql_job_t *job, int rc, const char *msg)
{
    job->rc = rc;
    if (job->res) {
        fv__sql_result_free(job->res);
        job->res = NULL;
    }
    if (msg)
        fv_error_set(&job->err, rc, "%s", msg);
    if (job->kind == FV__SQL_ROLLBACK && rc == FV_EBACKEND) {
        job->rc = 0;      /* a lost connection has rolled the transaction back already */
        fv_error_clear(&job->err);
    }
    defer_push(job->db, job);
}

/* ---- queues and connections --------------------------------------------------------------- */

static void queue_push(fv__sql_job_t **head, fv__sql_job_t **tail, fv__sql_job_t *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static fv__sql_job_t *queue_pop(fv__sql_job_t **head, fv__sql_job_t **tail)
{
    fv__sql_job_t *job = *head;
    if (job) {
        *head = job->next;
        if (!*head)
            *tail = NULL;
        job->next = NULL;
    }
    return job;
}

size_t fv__sql_waiting(const fv_sql_t *db)
{
    size_t n = 0;
    for (const fv__sql_job_t *j = db->wait_head; j; j = j->next)
        n++;
    return n;
}

void fv__sql_pump(fv_sql_t *db)
{
    if (db->closing || db->pumping)   /* a backend may finish a job inside run() */
        return;
    db->pumping = true;
    bool again = true;
    while (again) {
        again = false;
        bool idle_free = false;
        for (size_t i = 0; i < db->nconns && !db->closing; i++) {
            fv__sql_conn_t *c = db->conns[i];
            if (!c->ready || c->cur)
                continue;
            fv__sql_job_t *job = c->tx ? queue_pop(&c->tx->head, &c->tx->tail)
                                       : queue_pop(&db->wait_head, &db->wait_tail);
            if (!job) {
                if (!c->tx)
                    idle_free = true;
                continue;
            }
            c->cur = job;
            job->conn = c;
            db->ops->run(c, job);
            again = true;
        }
        if (!again && !idle_free && db->wait_head && !db->closing)
            db->ops->want_conn(db);
    }
    db->pumping = false;
}

void fv__sql_job_done(fv__sql_job_t *job, int rc)
{
    fv_sql_t *db = job->db;
    fv__sql_conn_t *conn = job->conn;
    if (conn && conn->cur == job)
        conn->cur = NULL;
    job->conn = NULL;
    job->rc = rc;
    if (db->closing) {
        job->rc = FV_ECANCELED;
        fv_error_set(&job->err, FV_ECANCELED, "the database handle was closed");
    }
    if (job->rc < 0 && job->res) {
        fv__sql_result_free(job->res);
        job->res = NULL;
    }
    if (job->kind == FV__SQL_BEGIN && job->rc == 0 && conn) {
        fv_sql_tx_t *tx = fv_calloc(1, sizeof(*tx));
        tx->db = db;
        tx->conn = conn;
        tx->next_live = db->txs;
        if (db->txs)
            db->txs->prev_live = tx;
        db->txs = tx;
        conn->tx = tx;
        job->tx = tx;
    } else if ((job->kind == FV__SQL_COMMIT || job->kind == FV__SQL_ROLLBACK) && job->tx) {
        if (job->tx->conn) {
            job->tx->conn->tx = NULL;
            job->tx->conn = NULL;
        }
        if (job->kind == FV__SQL_ROLLBACK && job->rc == FV_EBACKEND) {
            job->rc = 0;
            fv_error_clear(&job->err);
        }
    }
    /* Start waiting work first (the connection is free now), then answer. Inside one of our
     * own calls (a backend failing synchronously) the answer waits for the next tick, so no
     * callback ever runs inside the call that started it; otherwise it runs right here, which
     * lets a caller's next request go out in the same loop iteration. */
    fv__sql_pump(db);
    if (db->in_api > 0 || db->closing)
        defer_push(db, job);
    else
        job_callback(job);
}

static void tx_fail_queued(fv_sql_tx_t *tx, int rc, const char *msg)
{
    fv__sql_job_t *job;
    while ((job = queue_pop(&tx->head, &tx->tail)))
        fail_later(job, rc, msg);
}

void fv__sql_conn_lost(fv__sql_conn_t *conn)
{
    conn->ready = false;
    fv_sql_tx_t *tx = conn->tx;
    if (!tx)
        return;
    conn->tx = NULL;
    tx->conn = NULL;
    tx->broken = true;
    tx_fail_queued(tx, FV_EBACKEND, "the connection of this transaction was lost");
}

void fv__sql_fail_waiting(fv_sql_t *db, int rc, const char *msg)
{
    fv__sql_job_t *job;
    while ((job = queue_pop(&db->wait_head, &db->wait_tail)))
        fail_later(job, rc, msg);
}

void fv__sql_backend_closed(fv_sql_t *db)
{
    db->backend_closed = true;
    fv_defer_queue_kick(&db->defer);     /* finish the close from the loop */
}

/* ---- input checks -------------------------------------------------------------------------- */

/* Returns the index of the first byte that is not part of valid UTF-8, or len. Overlong forms,
 * surrogates and code points past U+10FFFF are invalid, as PostgreSQL would judge them. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2; cp = c & 0x1f; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3; cp = c & 0x0f; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4; cp = c & 0x07; min = 0x10000;
        } else {
            return i;
        }
        if (i + n > len)
            return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return len;
}

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || (unsigned char)c >= 0x80;
}

/* The highest $N placeholder outside strings, quoted identifiers, comments and PostgreSQL
 * dollar-quoted bodies. -1 when a number is absurd. */
long fv__sql_max_placeholder(const char *s, size_t len)
{
    long max = 0;
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < len && s[j] != c)
                j++;
            i = j + 1;
        } else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < len && !(s[j] == '*' && s[j + 1] == '/'))
                j++;
            i = j + 2;
        } else if (c == '$' && (i == 0 || !is_ident(s[i - 1]))) {
            size_t j = i + 1;
            if (j < len && s[j] >= '0' && s[j] <= '9') {
                long n = 0;
                while (j < len && s[j] >= '0' && s[j] <= '9') {
                    n = n * 10 + (s[j] - '0');
                    if (n > 65535)
                        return -1;
                    j++;
                }
                if (n > max)
                    max = n;
                i = j;
                continue;
            }
            while (j < len && is_ident(s[j]))
                j++;
            if (j < len && s[j] == '$') {          /* $tag$ ... $tag$ */
                size_t tag_len = j - i + 1;
                size_t k = j + 1;
                while (k + tag_len <= len && memcmp(s + k, s + i, tag_len) != 0)
                    k++;
                i = k + tag_len;
            } else {
                i = j;
            }
        } else {
            i++;
        }
    }
    return max;
}

int fv__sql_check_text(const char *sql, fv_error_t *err)
{
    if (!sql)
        return fv_error_set(err, FV_EINVAL, "no SQL text");
    size_t len = strlen(sql);
    if (len == 0)
        return fv_error_set(err, FV_EINVAL, "empty SQL text");
    if (len > SQL_MAX_TEXT_BYTES)
        return fv_error_set(err, FV_ETOOBIG, "SQL text is %zu bytes, over the %u-byte limit",
                            len, SQL_MAX_TEXT_BYTES);
    size_t bad = utf8_invalid_at((const unsigned char *)sql, len);
    if (bad < len)
        return fv_error_set(err, FV_EINVAL, "SQL text is not valid UTF-8 (byte %zu)", bad);
    return 0;
}

int fv__sql_check_params(size_t max_value_bytes, const char *sql, const fv_sql_param_t *params,
                         size_t n, fv_error_t *err)
{
    long want = fv__sql_max_placeholder(sql, strlen(sql));
    if (want < 0)
        return fv_error_set(err, FV_EINVAL, "placeholder number out of range in SQL text");
    if ((size_t)want != n)
        return fv_error_set(err, FV_EINVAL, "statement expects %ld parameters, got %zu", want,
                            n);
    if (n > 0 && !params)
        return fv_error_set(err, FV_EINVAL, "%zu parameters announced but none given", n);
    for (size_t i = 0; i < n; i++) {
        const fv_sql_param_t *p = &params[i];
        switch (p->type) {
        case FV_SQL_NULL:
        case FV_SQL_INT64:
        case FV_SQL_DOUBLE:
            break;
        case FV_SQL_TEXT:
        case FV_SQL_BLOB:
            if (p->len > max_value_bytes)
                return fv_error_set(err, FV_ETOOBIG,
                                    "parameter $%zu is %zu bytes, over the %zu-byte limit", i + 1,
                                    p->len, max_value_bytes);
            if (p->len > 0 && !p->ptr)
                return fv_error_set(err, FV_EINVAL, "parameter $%zu has no bytes", i + 1);
            if (p->type == FV_SQL_TEXT) {
                if (p->len && memchr(p->ptr, '\0', p->len))
                    return fv_error_set(err, FV_EINVAL, "parameter $%zu contains a NUL byte",
                                        i + 1);
                if (utf8_invalid_at(p->ptr, p->len) < p->len)
                    return fv_error_set(err, FV_EINVAL, "parameter $%zu is not valid UTF-8",
                                        i + 1);
            }
            break;
        default:
            return fv_error_set(err, FV_EINVAL, "parameter $%zu has unknown type %d", i + 1,
                                (int)p->type);
        }
    }
    return 0;
}

static int job_new(fv_sql_t *db, fv_sql_req_t *req, fv__sql_kind_t kind, const char *sql,
                   const fv_sql_param_t *params, size_t n, fv__sql_job_t **out)
{
    if (!req)
        return FV_EINVAL;
    fv_error_clear(&req->err);
    if (db->closing)
        return fv_error_set(&req->err, FV_ECANCELED, "the database handle is closing");
    int rc;
    if ((rc = fv__sql_check_text(sql, &req->err)) < 0)
        return rc;
    if (kind == FV__SQL_EXEC &&
        (rc = fv__sql_check_params(db->opts.max_value_bytes, sql, params, n, &req->err)) < 0)
        return rc;
    size_t bytes = n * sizeof(fv_sql_param_t);
    for (size_t i = 0; i < n; i++)
        if (params[i].type == FV_SQL_TEXT || params[i].type == FV_SQL_BLOB)
            bytes += params[i].len + 1;
    size_t sql_len = strlen(sql);
    fv__sql_job_t *job = fv_try_malloc(sizeof(*job));
    char *sql_copy = fv_try_malloc(sql_len + 1);
    fv_sql_param_t *pcopy = n ? fv_try_malloc(bytes) : NULL;
    if (!job || !sql_copy || (n && !pcopy)) {
        fv_free(job);
        fv_free(sql_copy);
        fv_free(pcopy);
        return fv_error_set(&req->err, FV_ENOMEM, "out of memory queueing a statement");
    }
    memset(job, 0, sizeof(*job));
    memcpy(sql_copy, sql, sql_len + 1);
    char *bytes_at = (char *)(pcopy + n);
    for (size_t i = 0; i < n; i++) {
        pcopy[i] = params[i];
        if (params[i].type == FV_SQL_TEXT || params[i].type == FV_SQL_BLOB) {
            if (params[i].len)
                memcpy(bytes_at, params[i].ptr, params[i].len);
            bytes_at[params[i].len] = '\0';
            pcopy[i].ptr = bytes_at;
            bytes_at += params[i].len + 1;
        }
    }
    job->db = db;
    job->kind = kind;
    job->req = req;
    job->sql = sql_copy;
    job->sql_len = sql_len;
    job->params = pcopy;
    job->nparams = n;
    req->job_ = job;
    *out = job;
    return 0;
}

static void submit_any(fv_sql_t *db, fv__sql_job_t *job)
{
    queue_push(&db->wait_head, &db->wait_tail, job);
    db->in_api++;
    fv__sql_pump(db);
    db->in_api--;
}

static int submit_tx(fv_sql_tx_t *tx, fv__sql_job_t *job)
{
    job->tx = tx;
    if (tx->broken || !tx->conn) {
        fail_later(job, FV_EBACKEND, "the connection of this transaction was lost");
        return 0;
    }
    queue_push(&tx->head, &tx->tail, job);
    tx->db->in_api++;
    fv__sql_pump(tx->db);
    tx->db->in_api--;
    return 0;
}

/* ---- public API ---------------------------------------------------------------------------- */

int fv_sql_open(uv_loop_t *loop, const char *url, const fv_sql_opts_t *opts, fv_sql_t **out,
                fv_error_t *err)
{
    *out = NULL;
    if (!url)
        return fv_error_set(err, FV_EINVAL, "database.url is empty");
    const fv__sql_ops_t *ops;
    if (strncmp(url, "sqlite:", 7) == 0)
        ops = &fv__sql_sqlite_ops;
    else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        ops = &fv__sql_postgres_ops;
    else
        return fv_error_set(err, FV_EINVAL,
                            "database.url \"%.64s\": unknown scheme (sqlite: or postgres://)",
                            url);
    fv_sql_t *db = fv_calloc(1, sizeof(*db));
    db->loop = loop;
    db->ops = ops;
    if (opts)
        db->opts = *opts;
    if (!db->opts.pool_size)
        db->opts.pool_size = 4;
    if (!db->opts.max_value_bytes)
        db->opts.max_value_bytes = 1024 * 1024;
    if (!db->opts.max_result_bytes)
        db->opts.max_result_bytes = 64u * 1024 * 1024;
    if (!db->opts.timeout_ms)
        db->opts.timeout_ms = 30000;
    if (!db->opts.connect_timeout_ms)
        db->opts.connect_timeout_ms = 5000;
    if (!db->opts.busy_timeout_ms)
        db->opts.busy_timeout_ms = 5000;
    int rc = ops == &fv__sql_sqlite_ops ? fv__sql_sqlite_open(db, url, err)
                                        : fv__sql_postgres_open(db, url, err);
    if (rc < 0) {
        fv_free(db);
        return rc;
    }
    fv_defer_queue_init(loop, &db->defer, maybe_finish_close);
    db->defer.data = db;
    *out = db;
    return 0;
}

void fv_sql_close(fv_sql_t *db, fv_sql_close_cb cb, void *data)
{
    if (!db || db->closing)
        return;
    db->closing = true;
    db->close_cb = cb;
    db->close_data = data;
    fv__sql_fail_waiting(db, FV_ECANCELED, "the database handle was closed");
    for (fv_sql_tx_t *tx = db->txs; tx; tx = tx->next_live)
        tx_fail_queued(tx, FV_ECANCELED, "the database handle was closed");
    db->in_api++;
    db->ops->close(db);
    db->in_api--;
}

const char *fv_sql_backend(const fv_sql_t *db)
{
    return db->ops->name;
}

int fv_sql_exec(fv_sql_t *db, fv_sql_req_t *req, const char *sql, const fv_sql_param_t *params,
                size_t n, fv_sql_exec_cb cb)
{
    fv__sql_job_t *job;
    int rc = job_new(db, req, FV__SQL_EXEC, sql, params, n, &job);
    if (rc < 0)
        return rc;
    job->cb.exec = cb;
    submit_any(db, job);
    return 0;
}

int fv_sql_exec_script(fv_sql_t *db, fv_sql_req_t *req, const char *sql, fv_sql_exec_cb cb)
{
    fv__sql_job_t *job;
    int rc = job_new(db, req, FV__SQL_SCRIPT, sql, NULL, 0, &job);
    if (rc < 0)
        return rc;
    job->cb.exec = cb;
    submit_any(db, job);
    return 0;
}

int fv_sql_tx_begin(fv_sql_t *db, fv_sql_req_t *req, fv_sql_tx_cb cb)
{
    fv__sql_job_t *job;
    int rc = job_new(db, req, FV__SQL_BEGIN, "BEGIN", NULL, 0, &job);
    if (rc < 0)
        return rc;
    job->cb.tx = cb;
    submit_any(db, job);
    return 0;
}

static int tx_check(fv_sql_tx_t *tx, fv_sql_req_t *req)
{
    if (!tx || !req)
        return FV_EINVAL;
    if (tx->ending)
        return fv_error_set(&req->err, FV_EINVAL, "the transaction is already committed or "
                                                  "rolled back");
    return 0;
}

int fv_sql_tx_exec(fv_sql_tx_t *tx, fv_sql_req_t *req, const char *sql,
                   const fv_sql_param_t *params, size_t n, fv_sql_exec_cb cb)
{
    fv__sql_job_t *job;
    int rc = tx_check(tx, req);
    if (rc < 0 || (rc = job_new(tx->db, req, FV__SQL_EXEC, sql, params, n, &job)) < 0)
        return rc;
    job->cb.exec = cb;
    return submit_tx(tx, job);
}

int fv_sql_tx_exec_script(fv_sql_tx_t *tx, fv_sql_req_t *req, const char *sql, fv_sql_exec_cb cb)
{
    fv__sql_job_t *job;
    int rc = tx_check(tx, req);
    if (rc < 0 || (rc = job_new(tx->db, req, FV__SQL_SCRIPT, sql, NULL, 0, &job)) < 0)
        return rc;
    job->cb.exec = cb;
    return submit_tx(tx, job);
}

static int tx_end(fv_sql_tx_t *tx, fv_sql_req_t *req, fv_sql_done_cb cb, fv__sql_kind_t kind)
{
    fv__sql_job_t *job;
    int rc = tx_check(tx, req);
    if (rc < 0 || (rc = job_new(tx->db, req, kind,
                                kind == FV__SQL_COMMIT ? "COMMIT" : "ROLLBACK", NULL, 0, &job)) < 0)
        return rc;
    job->cb.done = cb;
    tx->ending = true;
    return submit_tx(tx, job);
}

int fv_sql_tx_commit(fv_sql_tx_t *tx, fv_sql_req_t *req, fv_sql_done_cb cb)
{
    return tx_end(tx, req, cb, FV__SQL_COMMIT);
}

int fv_sql_tx_rollback(fv_sql_tx_t *tx, fv_sql_req_t *req, fv_sql_done_cb cb)
{
    return tx_end(tx, req, cb, FV__SQL_ROLLBACK);
}

/* ---- results ------------------------------------------------------------------------------- */

static const fv__sql_cell_t *mat_cell(const fv_sql_result_t *r, size_t row, size_t col)
{
    if (row >= r->rows || col >= r->cols)
        return NULL;
    return &r->cells[row * r->cols + col];
}

static int mat_is_null(const fv_sql_result_t *r, size_t row, size_t col)
{
    const fv__sql_cell_t *c = mat_cell(r, row, col);
    return !c || c->type == FV_SQL_NULL;
}

static int64_t mat_int64(const fv_sql_result_t *r, size_t row, size_t col)
{
    const fv__sql_cell_t *c = mat_cell(r, row, col);
    if (!c)
        return 0;
    switch (c->type) {
    case FV_SQL_INT64:
        return c->i;
    case FV_SQL_DOUBLE:
        return (int64_t)c->d;
    case FV_SQL_TEXT:
        return strtoll(c->ptr, NULL, 10);
    default:
        return 0;
    }
}

static double mat_double(const fv_sql_result_t *r, size_t row, size_t col)
{
    const fv__sql_cell_t *c = mat_cell(r, row, col);
    if (!c)
        return 0;
    switch (c->type) {
    case FV_SQL_INT64:
        return (double)c->i;
    case FV_SQL_DOUBLE:
        return c->d;
    case FV_SQL_TEXT:
        return strtod(c->ptr, NULL);
    default:
        return 0;
    }
}

static char **conv_slot(fv_sql_result_t *r, size_t row, size_t col, size_t **len_slot)
{
    if (!r->conv) {
        r->conv = fv_calloc(r->rows * r->cols, sizeof(char *));
        r->conv_len = fv_calloc(r->rows * r->cols, sizeof(size_t));
    }
    *len_slot = &r->conv_len[row * r->cols + col];
    return &r->conv[row * r->cols + col];
}

static const char *mat_text(const fv_sql_result_t *cr, size_t row, size_t col, size_t *len)
{
    fv_sql_result_t *r = (fv_sql_result_t *)cr;  /* conversions are cached in the result */
    const fv__sql_cell_t *c = mat_cell(r, row, col);
    if (!c || c->type == FV_SQL_NULL)
        return NULL;
    if (c->type == FV_SQL_TEXT || c->type == FV_SQL_BLOB) {
        if (len)
            *len = c->len;
        return c->ptr;
    }
    size_t *lslot;
    char **slot = conv_slot(r, row, col, &lslot);
    if (!*slot) {
        char tmp[64];
        int n = c->type == FV_SQL_INT64 ? snprintf(tmp, sizeof(tmp), "%" PRId64, c->i)
                                        : snprintf(tmp, sizeof(tmp), "%.17g", c->d);
        *slot = fv_strndup(tmp, (size_t)n);
        *lslot = (size_t)n;
    }
    if (len)
        *len = *lslot;
    return *slot;
}

static const void *mat_blob(const fv_sql_result_t *r, size_t row, size_t col, size_t *len)
{
    return mat_text(r, row, col, len);
}

static void mat_free(fv_sql_result_t *r)
{
    if (r->names)
        for (size_t i = 0; i < r->cols; i++)
            fv_free(r->names[i]);
    fv_free(r->names);
    fv_free(r->cells);
    fv_free(r->backend);     /* the value bytes */
}

static const fv__sql_result_vt_t mat_vt = {
    mat_is_null, mat_int64, mat_double, mat_text, mat_blob, mat_free,
};

fv_sql_result_t *fv__sql_result_new_mat(size_t cols)
{
    fv_sql_result_t *r = fv_calloc(1, sizeof(*r));
    r->vt = &mat_vt;
    r->cols = cols;
    r->names = cols ? fv_calloc(cols, sizeof(char *)) : NULL;
    return r;
}

void fv__sql_result_free(fv_sql_result_t *r)
{
    if (!r)
        return;
    r->vt->free(r);
    if (r->conv)
        for (size_t i = 0; i < r->rows * r->cols; i++)
            fv_free(r->conv[i]);
    fv_free(r->conv);
    fv_free(r->conv_len);
    fv_free(r);
}

size_t fv_sql_result_rows(const fv_sql_result_t *res)
{
    return res ? res->rows : 0;
}

size_t fv_sql_result_columns(const fv_sql_result_t *res)
{
    return res ? res->cols : 0;
}

const char *fv_sql_result_column_name(const fv_sql_result_t *res, size_t col)
{
    return res && col < res->cols && res->names ? res->names[col] : NULL;
}

uint64_t fv_sql_result_changes(const fv_sql_result_t *res)
{
    return res ? res->changes : 0;
}

int fv_sql_result_is_null(const fv_sql_result_t *res, size_t row, size_t col)
{
    return !res || row >= res->rows || col >= res->cols || res->vt->is_null(res, row, col);
}

int64_t fv_sql_result_int64(const fv_sql_result_t *res, size_t row, size_t col)
{
    return fv_sql_result_is_null(res, row, col) ? 0 : res->vt->int64(res, row, col);
}

double fv_sql_result_double(const fv_sql_result_t *res, size_t row, size_t col)
{
    return fv_sql_result_is_null(res, row, col) ? 0 : res->vt->dbl(res, row, col);
}

const char *fv_sql_result_text(const fv_sql_result_t *res, size_t row, size_t col, size_t *len)
{
    if (len)
        *len = 0;
    return fv_sql_result_is_null(res, row, col) ? NULL : res->vt->text(res, row, col, len);
}

const void *fv_sql_result_blob(const fv_sql_result_t *res, size_t row, size_t col, size_t *len)
{
    if (len)
        *len = 0;
    return fv_sql_result_is_null(res, row, col) ? NULL : res->vt->blob(res, row, col, len);
}
