/* sql_internal.h - what sql.c (interface, queues, transactions) shares with its backends
 * (sql_sqlite.c, sql_postgres.c) and the migration runner (sql_migrate.c). Not for services. */
#ifndef FV_STORE_SQL_INTERNAL_H
#define FV_STORE_SQL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/defer.h"
#include "core/err.h"
#include "store/sql.h"

typedef enum fv__sql_kind {
    FV__SQL_EXEC,       /* one statement with parameters, prepared and cached */
    FV__SQL_SCRIPT,     /* several statements, no parameters */
    FV__SQL_BEGIN,
    FV__SQL_COMMIT,
    FV__SQL_ROLLBACK,
} fv__sql_kind_t;

/* A result: SQLite's are materialised into cells, PostgreSQL's wrap the PGresult. The vtable
 * lets the accessors in sql.c serve both. */
typedef struct fv__sql_result_vt {
    int (*is_null)(const fv_sql_result_t *r, size_t row, size_t col);
    int64_t (*int64)(const fv_sql_result_t *r, size_t row, size_t col);
    double (*dbl)(const fv_sql_result_t *r, size_t row, size_t col);
    const char *(*text)(const fv_sql_result_t *r, size_t row, size_t col, size_t *len);
    const void *(*blob)(const fv_sql_result_t *r, size_t row, size_t col, size_t *len);
    void (*free)(fv_sql_result_t *r);
} fv__sql_result_vt_t;

typedef struct fv__sql_cell {
    fv_sql_type_t type;
    int64_t i;
    double d;
    char *ptr;          /* text (NUL-terminated) or blob bytes, inside the result's storage */
    size_t len;
} fv__sql_cell_t;

struct fv_sql_result {
    const fv__sql_result_vt_t *vt;
    size_t rows, cols;
    uint64_t changes;
    char **names;            /* cols column names (materialised form) */
    fv__sql_cell_t *cells;   /* rows * cols (materialised form) */
    void *backend;           /* PGresult * (PostgreSQL form) */
    char **conv;             /* lazily: per-cell converted text or decoded bytes */
    size_t *conv_len;
};

/* The materialised form, built by the SQLite worker (any thread). */
fv_sql_result_t *fv__sql_result_new_mat(size_t cols);
void fv__sql_result_free(fv_sql_result_t *r);

typedef struct fv__sql_conn fv__sql_conn_t;

/* One request's life, owned by sql.c. The backend may use the scratch fields while it runs. */
struct fv__sql_job {
    fv__sql_job_t *next;        /* in the wait or transaction queue */
    fv_defer_t defer;           /* finished: its callback runs from db->defer */
    fv_sql_t *db;
    fv_sql_tx_t *tx;            /* bound transaction, or NULL: any connection */
    fv__sql_kind_t kind;
    fv_sql_req_t *req;
    union {
        fv_sql_exec_cb exec;
        fv_sql_tx_cb tx;
        fv_sql_done_cb done;
    } cb;
    char *sql;                  /* owned copy */
    size_t sql_len;
    fv_sql_param_t *params;     /* owned copies; text/blob bytes follow in the same block */
    size_t nparams;
    fv_sql_result_t *res;       /* set by the backend on success */
    int rc;
    fv_error_t err;             /* the backend writes here (any thread); copied to req */
    fv__sql_conn_t *conn;       /* the connection running it */
    /* backend scratch */
    uv_work_t work;
    int phase;
    bool timed_out;
};

/* The part of a connection sql.c manages; backends embed it first in their own struct. */
struct fv__sql_conn {
    fv_sql_t *db;
    fv_sql_tx_t *tx;            /* reserved by this transaction, or NULL */
    fv__sql_job_t *cur;         /* running job, or NULL */
    bool ready;                 /* connected and able to take a job */
};

typedef struct fv__sql_ops {
    const char *name;
    /* Start job on conn (ready, idle). The backend later calls fv__sql_job_done(). */
    void (*run)(fv__sql_conn_t *conn, fv__sql_job_t *job);
    /* Jobs are waiting and no ready connection is idle: connect more if possible. */
    void (*want_conn)(fv_sql_t *db);
    /* Close everything; in-flight jobs end through fv__sql_job_done() (sql.c turns them into
     * FV_ECANCELED); call fv__sql_backend_closed() when all is released. */
    void (*close)(fv_sql_t *db);
} fv__sql_ops_t;

struct fv_sql {
    uv_loop_t *loop;
    const fv__sql_ops_t *ops;
    void *backend;
    fv_sql_opts_t opts;
    bool closing;
    fv_sql_close_cb close_cb;
    void *close_data;
    fv__sql_job_t *wait_head, *wait_tail;   /* jobs for any connection, FIFO */
    fv_defer_queue_t defer;                 /* finished jobs whose callback runs next tick */
    fv_sql_tx_t *txs;                       /* live transactions */
    fv__sql_conn_t **conns;
    size_t nconns;
    bool backend_closed;
    bool pumping;
    int in_api;                             /* depth of our own public calls */
};

struct fv_sql_tx {
    fv_sql_tx_t *next_live, *prev_live;
    fv_sql_t *db;
    fv__sql_conn_t *conn;       /* NULL once broken */
    fv__sql_job_t *head, *tail; /* jobs waiting for this transaction's connection */
    bool ending;                /* commit or rollback submitted */
    bool broken;
};

/* Backends report a finished job (rc, job->err, job->res). On the loop thread only. */
void fv__sql_job_done(fv__sql_job_t *job, int rc);
/* The connection was lost or closed: its transaction is broken. Jobs it ran are reported by
 * the backend through fv__sql_job_done() before this. */
void fv__sql_conn_lost(fv__sql_conn_t *conn);
/* A connection became ready (or idle again): hand it waiting work. */
void fv__sql_pump(fv_sql_t *db);
/* No connection can be had now: every job waiting for any connection fails with rc. */
void fv__sql_fail_waiting(fv_sql_t *db, int rc, const char *msg);
size_t fv__sql_waiting(const fv_sql_t *db);
void fv__sql_backend_closed(fv_sql_t *db);

/* Backends' constructors: fill db->backend, db->conns, db->nconns. */
int fv__sql_sqlite_open(fv_sql_t *db, const char *url, fv_error_t *err);
int fv__sql_postgres_open(fv_sql_t *db, const char *url, fv_error_t *err);
extern const fv__sql_ops_t fv__sql_sqlite_ops;
extern const fv__sql_ops_t fv__sql_postgres_ops;

/* The checks every statement passes before it is queued (sql.c), exposed for the fuzz target
 * and tests. check_text: non-empty, within the size limit, valid UTF-8. max_placeholder: the
 * highest $N outside strings, quoted identifiers, comments and dollar-quoted bodies, -1 when a
 * number is absurd. check_params: n equals that, each parameter's type, size and bytes fit. */
int fv__sql_check_text(const char *sql, fv_error_t *err);
long fv__sql_max_placeholder(const char *s, size_t len);
int fv__sql_check_params(size_t max_value_bytes, const char *sql, const fv_sql_param_t *params,
                         size_t n, fv_error_t *err);

/* Embedded migrations, generated at configure time from src/store/migrations/. */
typedef struct fv__sql_migration {
    int64_t version;
    const char *name;
    const char *dialect;    /* "" (common), "sqlite" or "postgres" */
    const char *sql;
} fv__sql_migration_t;
extern const fv__sql_migration_t fv__sql_migrations[];
extern const size_t fv__sql_migrations_count;

#endif
