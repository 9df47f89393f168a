/* sql_migrate.c - applies the migrations compiled into the binary, in version order, each in
 * its own transaction that also records it in schema_migrations. For every version the file
 * written for the backend's dialect wins over the common one. On PostgreSQL each transaction
 * first takes an advisory lock, so two processes migrating at once apply each step once. The
 * migrations themselves are generated into the build (see the block in CMakeLists.txt). */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "store/sql_internal.h"

/* Arbitrary but fixed: every Finalverse migrator takes the same lock. */
#define MIGRATE_LOCK_KEY "7061626172766500"

typedef enum mstep {
    M_BEGIN,
    M_LOCK,
    M_CREATE,
    M_CHECK,
    M_APPLY,
    M_RECORD,
    M_COMMIT,
} mstep_t;

typedef struct migrator {
    fv_sql_t *db;
    fv_sql_req_t *user;
    fv_sql_done_cb cb;
    const fv__sql_migration_t **list;
    size_t count;
    long idx;                  /* -1: the set-up round (lock, create schema_migrations) */
    mstep_t step;
    fv_sql_tx_t *tx;
    fv_sql_req_t req;
    int rc;
    fv_error_t err;
    bool postgres;
} migrator_t;

static const fv__sql_migration_t *pick(const char *backend, int64_t version)
{
    const fv__sql_migration_t *common = NULL;
    for (size_t i = 0; i < fv__sql_migrations_count; i++) {
        const fv__sql_migration_t *m = &fv__sql_migrations[i];
        if (m->version != version)
            continue;
        if (strcmp(m->dialect, backend) == 0)
            return m;
        if (!m->dialect[0])
            common = m;
    }
    return common;
}

/* The migrations for backend in order; the caller frees the array. */
static const fv__sql_migration_t **plan(const char *backend, size_t *count)
{
    const fv__sql_migration_t **out =
        fv_calloc(fv__sql_migrations_count + 1, sizeof(*out));
    size_t n = 0;
    int64_t last = -1;
    /* The generated table is sorted by file name, so versions come in ascending order. */
    for (size_t i = 0; i < fv__sql_migrations_count; i++) {
        int64_t v = fv__sql_migrations[i].version;
        if (v == last)
            continue;
        last = v;
        const fv__sql_migration_t *m = pick(backend, v);
        if (m)
            out[n++] = m;
    }
    *count = n;
    return out;
}

size_t fv_sql_migration_count(const char *backend)
{
    size_t n;
    fv_free(plan(backend, &n));
    return n;
}

int fv_sql_migration_info(const char *backend, size_t i, int64_t *version, const char **name)
{
    size_t n;
    const fv__sql_migration_t **list = plan(backend, &n);
    int rc = FV_ENOENT;
    if (i < n) {
        *version = list[i]->version;
        *name = list[i]->name;
        rc = 0;
    }
    fv_free(list);
    return rc;
}

static void advance(migrator_t *m);

static void finish(migrator_t *m)
{
    fv_sql_req_t *user = m->user;
    user->err = m->err;
    if (m->rc == 0)
        fv_error_clear(&user->err);
    else
        fv_log_error("sql", "migrate: %s", m->err.msg);
    fv_sql_done_cb cb = m->cb;
    int rc = m->rc;
    fv_free(m->list);
    fv_free(m);
    cb(user, rc);
}

static const char *current_name(const migrator_t *m)
{
    return m->idx < 0 ? "schema_migrations" : m->list[m->idx]->name;
}

static void fail(migrator_t *m, int rc, const fv_error_t *err)
{
    if (m->rc == 0) {
        m->rc = rc;
        if (m->idx >= 0)
            fv_error_set(&m->err, rc, "migration %04lld_%s: %s",
                         (long long)m->list[m->idx]->version, current_name(m), err->msg);
        else
            fv_error_set(&m->err, rc, "migration set-up: %s", err->msg);
    }
}

static void on_rolled_back(fv_sql_req_t *req, int rc)
{
    finish(req->data);
}

static void abort_round(migrator_t *m, int rc, const fv_error_t *err)
{
    fail(m, rc, err);
    fv_sql_tx_t *tx = m->tx;
    m->tx = NULL;
    if (tx && fv_sql_tx_rollback(tx, &m->req, on_rolled_back) == 0)
        return;
    finish(m);
}

static void on_committed(fv_sql_req_t *req, int rc)
{
    migrator_t *m = req->data;
    m->tx = NULL;
    if (rc < 0) {
        fail(m, rc, &req->err);
        finish(m);
        return;
    }
    m->idx++;
    if ((size_t)m->idx >= m->count) {
        finish(m);
        return;
    }
    m->step = M_BEGIN;
    advance(m);
}

static void on_exec(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    migrator_t *m = req->data;
    if (rc < 0) {
        abort_round(m, rc, &req->err);
        return;
    }
    if (m->step == M_RECORD)
        fv_log_info("sql", "applying migration %04lld_%s", (long long)m->list[m->idx]->version,
                    m->list[m->idx]->name);
    if (m->step == M_CHECK && fv_sql_result_int64(res, 0, 0) > 0)
        m->step = M_COMMIT;        /* already applied (by us earlier or by another process) */
    else if (m->step == M_CREATE && m->idx < 0)
        m->step = M_COMMIT;        /* the set-up round ends here */
    else
        m->step++;
    advance(m);
}

static void on_begun(fv_sql_req_t *req, int rc, fv_sql_tx_t *tx)
{
    migrator_t *m = req->data;
    if (rc < 0) {
        fail(m, rc, &req->err);
        finish(m);
        return;
    }
    m->tx = tx;
    m->step = m->postgres ? M_LOCK : M_CREATE;
    advance(m);
}

static void advance(migrator_t *m)
{
    int rc = 0;
    m->req.data = m;
    switch (m->step) {
    case M_BEGIN:
        rc = fv_sql_tx_begin(m->db, &m->req, on_begun);
        if (rc < 0) {
            fail(m, rc, &m->req.err);
            finish(m);      /* only reached from a callback, so this is not re-entrant */
        }
        return;
    case M_LOCK:
        rc = fv_sql_tx_exec(m->tx, &m->req, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")",
                            NULL, 0, on_exec);
        break;
    case M_CREATE:
        rc = fv_sql_tx_exec_script(m->tx, &m->req,
                                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                   " version BIGINT PRIMARY KEY,"
                                   " name TEXT NOT NULL,"
                                   " applied_at BIGINT NOT NULL)",
                                   on_exec);
        break;
    case M_CHECK: {
        fv_sql_param_t p = FV_SQL_INT(m->list[m->idx]->version);
        rc = fv_sql_tx_exec(m->tx, &m->req,
                            "SELECT count(*) FROM schema_migrations WHERE version = $1", &p, 1,
                            on_exec);
        break;
    }
    case M_APPLY:
        rc = fv_sql_tx_exec_script(m->tx, &m->req, m->list[m->idx]->sql, on_exec);
        break;
    case M_RECORD: {
        const fv__sql_migration_t *mg = m->list[m->idx];
        fv_sql_param_t p[3] = {FV_SQL_INT(mg->version), FV_SQL_TEXT(mg->name),
                               FV_SQL_INT(fv_wall_ms())};
        rc = fv_sql_tx_exec(m->tx, &m->req,
                            "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES ($1, $2, $3)",
                            p, 3, on_exec);
        break;
    }
    case M_COMMIT:
    default: {
        fv_sql_tx_t *tx = m->tx;
        rc = fv_sql_tx_commit(tx, &m->req, on_committed);
        break;
    }
    }
    if (rc < 0)
        abort_round(m, rc, &m->req.err);
}

int fv_sql_migrate(fv_sql_t *db, fv_sql_req_t *req, fv_sql_done_cb cb)
{
    if (!db || !req || !cb)
        return FV_EINVAL;
    fv_error_clear(&req->err);
    if (db->closing)
        return fv_error_set(&req->err, FV_ECANCELED, "the database handle is closing");
    migrator_t *m = fv_calloc(1, sizeof(*m));
    m->db = db;
    m->user = req;
    m->cb = cb;
    m->postgres = strcmp(fv_sql_backend(db), "postgres") == 0;
    m->list = plan(fv_sql_backend(db), &m->count);
    m->idx = -1;
    m->step = M_BEGIN;
    m->req.data = m;
    int rc = fv_sql_tx_begin(db, &m->req, on_begun);
    if (rc < 0) {
        fv_error_set(&req->err, rc, "migrate: %s", m->req.err.msg);
        fv_free(m->list);
        fv_free(m);
    }
    return rc;
}
