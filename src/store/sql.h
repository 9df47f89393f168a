/* sql.h - the SQL store: one asynchronous interface over SQLite (embedded) and PostgreSQL.
 *
 * A database handle is opened from a URL:
 *     sqlite:./data/finalverse.db     a file (its folder is created), WAL mode
 *     sqlite::memory:                 a private in-memory database (tests)
 *     postgres://user@host:port/db    PostgreSQL through libpq, non-blocking on the loop
 *     postgresql://...                the same
 * Statements are written with PostgreSQL-style placeholders $1, $2, ... for both backends and
 * take a typed parameter array. Every call is asynchronous on the loop given to fv_sql_open():
 * its callback runs exactly once, from the loop, never inside the call that started it, also on
 * error or cancellation (rc < 0). A call returns 0 when its callback will run, or a negative
 * FV_E code when it never will (nothing to undo then).
 *
 * Errors: FV_EINVAL (bad SQL, bad parameter, constraint other than uniqueness), FV_ECONFLICT
 * (unique violation, serialisation failure), FV_ETOOBIG (a value over max_value_bytes or a
 * result over max_result_bytes), FV_EBACKEND (server unreachable or gone), FV_ETIMEDOUT (the
 * request ran past timeout_ms), FV_ECANCELED (the handle was closed first). The request's err
 * holds a sentence for a person whenever rc < 0. */
#ifndef FV_STORE_SQL_H
#define FV_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "core/err.h"

typedef struct fv_sql fv_sql_t;
typedef struct fv_sql_tx fv_sql_tx_t;
typedef struct fv_sql_result fv_sql_result_t;
typedef struct fv__sql_job fv__sql_job_t;

typedef enum fv_sql_type {
    FV_SQL_NULL = 0,
    FV_SQL_INT64,
    FV_SQL_DOUBLE,
    FV_SQL_TEXT,     /* UTF-8, no NUL bytes; checked before anything is sent */
    FV_SQL_BLOB,     /* any bytes: BLOB in SQLite, bytea in PostgreSQL */
} fv_sql_type_t;

/* One parameter. Text and blob bytes are borrowed: they are copied before the call returns,
 * so the caller's memory may go as soon as fv_sql_exec() returns. */
typedef struct fv_sql_param {
    fv_sql_type_t type;
    int64_t i;
    double d;
    const void *ptr;
    size_t len;
} fv_sql_param_t;

#define FV_SQL_NULLV ((fv_sql_param_t){.type = FV_SQL_NULL})
#define FV_SQL_INT(x) ((fv_sql_param_t){.type = FV_SQL_INT64, .i = (int64_t)(x)})
#define FV_SQL_DOUBLE(x) ((fv_sql_param_t){.type = FV_SQL_DOUBLE, .d = (double)(x)})
#define FV_SQL_TEXT(s) ((fv_sql_param_t){.type = FV_SQL_TEXT, .ptr = (s), .len = strlen(s)})
#define FV_SQL_TEXTN(s, n) ((fv_sql_param_t){.type = FV_SQL_TEXT, .ptr = (s), .len = (n)})
#define FV_SQL_BLOB(p, n) ((fv_sql_param_t){.type = FV_SQL_BLOB, .ptr = (p), .len = (n)})

typedef struct fv_sql_opts {
    uint32_t pool_size;          /* PostgreSQL connections; 0 = 4 (SQLite always uses one) */
    size_t max_value_bytes;      /* ceiling on one text/blob parameter; 0 = 1 MiB */
    size_t max_result_bytes;     /* ceiling on a materialised SQLite result; 0 = 64 MiB */
    uint32_t timeout_ms;         /* per request, from the moment it starts running; 0 = 30 s */
    uint32_t connect_timeout_ms; /* PostgreSQL connection set-up; 0 = 5 s */
    uint32_t busy_timeout_ms;    /* SQLite lock wait; 0 = 5 s */
} fv_sql_opts_t;

/* A request: caller storage that must stay valid until its callback has run. data is the
 * caller's; err is filled when the callback gets rc < 0. The rest is private. */
typedef struct fv_sql_req {
    void *data;
    fv_error_t err;
    fv__sql_job_t *job_;
} fv_sql_req_t;

/* res is valid during the callback only and is NULL when rc < 0. */
typedef void (*fv_sql_exec_cb)(fv_sql_req_t *req, int rc, const fv_sql_result_t *res);
/* tx is the open transaction when rc == 0, NULL otherwise. */
typedef void (*fv_sql_tx_cb)(fv_sql_req_t *req, int rc, fv_sql_tx_t *tx);
typedef void (*fv_sql_done_cb)(fv_sql_req_t *req, int rc);
typedef void (*fv_sql_close_cb)(void *data);

/* Opens a handle on loop from url. SQLite opens the file here (creating its folder); PostgreSQL
 * only checks the URL and connects in the background, so a server that is down shows up as
 * FV_EBACKEND on requests, not here. opts may be NULL (defaults). On success *out is the
 * handle, owned by the caller until fv_sql_close(). FV_EINVAL for an unknown or malformed URL,
 * FV_EIO when the SQLite file cannot be opened; err says which. */
FV_MUST_USE int fv_sql_open(uv_loop_t *loop, const char *url, const fv_sql_opts_t *opts,
                            fv_sql_t **out, fv_error_t *err);

/* Cancels every request not yet answered (FV_ECANCELED), ends open transactions, closes the
 * connections, then runs cb(data) from the loop; the handle's memory goes after cb. Calling it
 * twice is harmless (the second call does nothing). */
void fv_sql_close(fv_sql_t *db, fv_sql_close_cb cb, void *data);

/* "sqlite" or "postgres". */
const char *fv_sql_backend(const fv_sql_t *db);

/* Runs one statement with params[0..n) bound to $1..$n. sql and params are copied. The number
 * of parameters must equal the highest $N in sql. */
FV_MUST_USE int fv_sql_exec(fv_sql_t *db, fv_sql_req_t *req, const char *sql,
                            const fv_sql_param_t *params, size_t n, fv_sql_exec_cb cb);

/* Runs several ;-separated statements without parameters (DDL, migrations); the result is the
 * last statement's. */
FV_MUST_USE int fv_sql_exec_script(fv_sql_t *db, fv_sql_req_t *req, const char *sql,
                                   fv_sql_exec_cb cb);

/* Transactions. fv_sql_tx_begin() reserves one connection and runs BEGIN; the callback gets the
 * transaction. Statements on it run on that connection in the order they were submitted. After
 * fv_sql_tx_commit() or fv_sql_tx_rollback() has been called no more statements may be added;
 * the tx pointer is released when that call's callback has returned. A transaction whose
 * connection broke answers FV_EBACKEND to everything except rollback, which succeeds (the
 * server has rolled it back). Closing the database ends its transactions. */
FV_MUST_USE int fv_sql_tx_begin(fv_sql_t *db, fv_sql_req_t *req, fv_sql_tx_cb cb);
FV_MUST_USE int fv_sql_tx_exec(fv_sql_tx_t *tx, fv_sql_req_t *req, const char *sql,
                               const fv_sql_param_t *params, size_t n, fv_sql_exec_cb cb);
FV_MUST_USE int fv_sql_tx_exec_script(fv_sql_tx_t *tx, fv_sql_req_t *req, const char *sql,
                                      fv_sql_exec_cb cb);
FV_MUST_USE int fv_sql_tx_commit(fv_sql_tx_t *tx, fv_sql_req_t *req, fv_sql_done_cb cb);
FV_MUST_USE int fv_sql_tx_rollback(fv_sql_tx_t *tx, fv_sql_req_t *req, fv_sql_done_cb cb);

/* Migrations compiled into the binary (src/store/migrations/NNNN_name[.sqlite|.postgres].sql):
 * applies the pending ones in version order, each in its own transaction, and records each in
 * schema_migrations (version, name, applied_at ms). Running it again is a no-op; concurrent
 * migrators on PostgreSQL are serialised by an advisory lock. cb gets 0 or the first failure
 * (err names the migration). */
FV_MUST_USE int fv_sql_migrate(fv_sql_t *db, fv_sql_req_t *req, fv_sql_done_cb cb);

/* The migrations built in, in order, for a backend ("sqlite" or "postgres"): count, and the
 * version and name of the i-th. */
size_t fv_sql_migration_count(const char *backend);
int fv_sql_migration_info(const char *backend, size_t i, int64_t *version, const char **name);

/* Result accessors; row and col count from 0. Out-of-range cells read as NULL. Values convert
 * as SQL would show them: _int64 of a PostgreSQL boolean is 0/1, _text of a number is its
 * decimal text. _text and _blob point into the result (valid during the callback); _text is
 * NUL-terminated; both return NULL for a NULL cell, and set *len when len is not NULL. */
size_t fv_sql_result_rows(const fv_sql_result_t *res);
size_t fv_sql_result_columns(const fv_sql_result_t *res);
const char *fv_sql_result_column_name(const fv_sql_result_t *res, size_t col);
/* Rows inserted, updated or deleted by the statement (0 for a query). */
uint64_t fv_sql_result_changes(const fv_sql_result_t *res);
int fv_sql_result_is_null(const fv_sql_result_t *res, size_t row, size_t col);
int64_t fv_sql_result_int64(const fv_sql_result_t *res, size_t row, size_t col);
double fv_sql_result_double(const fv_sql_result_t *res, size_t row, size_t col);
const char *fv_sql_result_text(const fv_sql_result_t *res, size_t row, size_t col, size_t *len);
const void *fv_sql_result_blob(const fv_sql_result_t *res, size_t row, size_t col, size_t *len);

#endif
