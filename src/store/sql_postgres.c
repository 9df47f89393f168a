/* sql_postgres.c - the PostgreSQL backend: a pool of libpq connections in non-blocking mode,
 * each driven by a uv_poll on its socket (PQconnectStart/PQconnectPoll to connect, then
 * PQsendPrepare/PQsendQueryPrepared, PQflush, PQconsumeInput, PQgetResult). One job at a time
 * per connection; prepared statements cached per connection by SQL text. A broken connection
 * fails the job on it with FV_EBACKEND and reconnects in the background with backoff; a new
 * request that finds no connection starts one at once. A request past its deadline drops its
 * connection (the server then abandons the query), rather than a blocking PQcancel. Queues,
 * transactions and cancellation are sql.c's. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/log.h"
#include "store/sql_internal.h"

#define PG_STMT_MAX 256            /* prepared statements kept per connection */
#define PG_BACKOFF_MIN_MS 50
#define PG_BACKOFF_MAX_MS 5000
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17

enum { PHASE_RUN = 0, PHASE_PREPARE = 1 };

typedef enum pg_state {
    PG_DOWN,
    PG_CONNECTING,
    PG_READY,
} pg_state_t;

/* A statement is prepared per parameter-type signature ("it" = int64, text), so that
 * "SELECT $1 + $2" knows its types and a later call with other types gets its own plan. */
typedef struct pg_stmt {
    char *sql;
    size_t len;
    char *sig;
    uint64_t hash;
    char name[24];
} pg_stmt_t;

typedef struct pg_db pg_db_t;

typedef struct pg_conn {
    fv__sql_conn_t base;       /* first: sql.c sees the connection */
    pg_db_t *p;
    PGconn *pg;
    uv_poll_t *poll;           /* heap: may outlive a reconnect while it closes */
    int poll_fd;
    int poll_events;
    pg_state_t state;
    uv_timer_t timer;          /* connect deadline, request deadline or reconnect backoff */
    uint32_t backoff_ms;
    bool auto_reconnect;       /* broke after being ready: keep trying in the background */
    pg_stmt_t *stmts;
    size_t nstmts;
    uint32_t next_stmt_id;
    pg_stmt_t pending;         /* statement being prepared for the current job */
    PGresult *last;            /* last good result of the current job */
    int fail_rc;               /* first error result of the current job */
} pg_conn_t;

struct pg_db {
    fv_sql_t *db;
    char *conninfo;
    pg_conn_t *conns;
    fv__sql_conn_t **connps;
    size_t n;
    size_t open_handles;
    bool closing;
};

static void conn_start(pg_conn_t *c);
static void on_poll(uv_poll_t *h, int status, int events);

/* ---- errors -------------------------------------------------------------------------------- */

static int map_sqlstate(const char *st)
{
    if (!st || strlen(st) != 5)
        return FV_EBACKEND;
    if (strcmp(st, "23505") == 0 || strncmp(st, "40", 2) == 0)
        return FV_ECONFLICT;          /* unique violation, serialisation failure, deadlock */
    if (strcmp(st, "57014") == 0)
        return FV_ETIMEDOUT;          /* cancelled by statement_timeout */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "53", 2) == 0)
        return FV_EBACKEND;           /* connection, shutdown, out of resources */
    if (strncmp(st, "54", 2) == 0)
        return FV_ETOOBIG;            /* program limit exceeded */
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 || strncmp(st, "42", 2) == 0 ||
        strncmp(st, "25", 2) == 0 || strncmp(st, "0A", 2) == 0 || strncmp(st, "2B", 2) == 0)
        return FV_EINVAL;             /* data, constraint, syntax, transaction state */
    return FV_EINTERNAL;
}

/* libpq's messages end with a newline; a person reads them in one line. */
static void set_err(fv_error_t *err, int rc, const char *prefix, const char *msg)
{
    char tmp[FV_ERROR_MSG_LEN];
    snprintf(tmp, sizeof(tmp), "%s%s", prefix, msg ? msg : "");
    size_t n = strlen(tmp);
    while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
        tmp[--n] = '\0';
    for (char *q = tmp; *q; q++)
        if (*q == '\n')
            *q = ' ';
    fv_error_set(err, rc, "%s", tmp);
}

/* ---- results ------------------------------------------------------------------------------- */

static int pgr_is_null(const fv_sql_result_t *r, size_t row, size_t col)
{
    return PQgetisnull(r->backend, (int)row, (int)col);
}

static int64_t pgr_int64(const fv_sql_result_t *r, size_t row, size_t col)
{
    const char *v = PQgetvalue(r->backend, (int)row, (int)col);
    if (PQftype(r->backend, (int)col) == PG_OID_BOOL)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static double pgr_double(const fv_sql_result_t *r, size_t row, size_t col)
{
    return strtod(PQgetvalue(r->backend, (int)row, (int)col), NULL);
}

static const char *pgr_text(const fv_sql_result_t *r, size_t row, size_t col, size_t *len)
{
    if (len)
        *len = (size_t)PQgetlength(r->backend, (int)row, (int)col);
    return PQgetvalue(r->backend, (int)row, (int)col);
}

static const void *pgr_blob(const fv_sql_result_t *cr, size_t row, size_t col, size_t *len)
{
    if (PQftype(cr->backend, (int)col) != PG_OID_BYTEA)
        return pgr_text(cr, row, col, len);
    fv_sql_result_t *r = (fv_sql_result_t *)cr;   /* decoded bytes are cached in the result */
    if (!r->conv) {
        r->conv = fv_calloc(r->rows * r->cols, sizeof(char *));
        r->conv_len = fv_calloc(r->rows * r->cols, sizeof(size_t));
    }
    size_t k = row * r->cols + col;
    if (!r->conv[k]) {
        size_t n = 0;
        unsigned char *raw =
            PQunescapeBytea((const unsigned char *)PQgetvalue(r->backend, (int)row, (int)col),
                            &n);
        if (!raw)
            return NULL;
        r->conv[k] = fv_malloc(n + 1);
        if (n)
            memcpy(r->conv[k], raw, n);
        r->conv[k][n] = '\0';
        r->conv_len[k] = n;
        PQfreemem(raw);
    }
    if (len)
        *len = r->conv_len[k];
    return r->conv[k];
}

static void pg_result_free(fv_sql_result_t *r)
{
    fv_free(r->names);     /* the strings belong to the PGresult */
    PQclear(r->backend);
}

static const fv__sql_result_vt_t pg_vt = {
    pgr_is_null, pgr_int64, pgr_double, pgr_text, pgr_blob, pg_result_free,
};

static fv_sql_result_t *wrap_result(PGresult *pr)
{
    fv_sql_result_t *r = fv_calloc(1, sizeof(*r));
    r->vt = &pg_vt;
    r->backend = pr;
    r->rows = pr ? (size_t)PQntuples(pr) : 0;
    r->cols = pr ? (size_t)PQnfields(pr) : 0;
    if (r->cols) {
        r->names = fv_calloc(r->cols, sizeof(char *));
        for (size_t i = 0; i < r->cols; i++)
            r->names[i] = PQfname(pr, (int)i);
    }
    const char *t = pr ? PQcmdTuples(pr) : "";
    r->changes = r->cols == 0 && t[0] ? strtoull(t, NULL, 10) : 0;
    return r;
}

/* ---- the socket ---------------------------------------------------------------------------- */

static void maybe_closed(pg_db_t *p);

static void on_poll_closed(uv_handle_t *h)
{
    pg_db_t *p = ((pg_conn_t *)h->data)->p;
    fv_free(h);
    p->open_handles--;
    maybe_closed(p);
}

static void poll_drop(pg_conn_t *c)
{
    if (!c->poll)
        return;
    /* uv_close takes the fd out of epoll now, so PQfinish may close it right after. */
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    c->poll = NULL;
    c->poll_events = 0;
}

static int poll_set(pg_conn_t *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return FV_EBACKEND;
    if (c->poll && c->poll_fd != fd)
        poll_drop(c);      /* libpq moved to another address of the host: a new socket */
    if (!c->poll) {
        c->poll = fv_malloc(sizeof(*c->poll));
        if (uv_poll_init_socket(c->p->db->loop, c->poll, fd) < 0) {
            fv_free(c->poll);
            c->poll = NULL;
            return FV_EBACKEND;
        }
        c->poll->data = c;
        c->poll_fd = fd;
        c->poll_events = 0;
        c->p->open_handles++;
    }
    if (events != c->poll_events) {
        if (uv_poll_start(c->poll, events, on_poll) < 0)
            return FV_EBACKEND;
        c->poll_events = events;
    }
    return 0;
}

static void stmts_clear(pg_conn_t *c)
{
    for (size_t i = 0; i < c->nstmts; i++) {
        fv_free(c->stmts[i].sql);
        fv_free(c->stmts[i].sig);
    }
    c->nstmts = 0;
    fv_free(c->pending.sql);
    fv_free(c->pending.sig);
    c->pending.sql = NULL;
    c->pending.sig = NULL;
}

/* Forgets the server connection; the slot can connect again. */
static void conn_drop(pg_conn_t *c)
{
    uv_timer_stop(&c->timer);
    poll_drop(c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = PG_DOWN;
    c->base.ready = false;
    if (c->last)
        PQclear(c->last);
    c->last = NULL;
    stmts_clear(c);
}

static void on_backoff(uv_timer_t *t)
{
    pg_conn_t *c = t->data;
    if (c->state == PG_DOWN && !c->p->closing)
        conn_start(c);
}

static void schedule_reconnect(pg_conn_t *c)
{
    if (c->p->closing)
        return;
    c->auto_reconnect = true;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
    if (c->backoff_ms > PG_BACKOFF_MAX_MS)
        c->backoff_ms = PG_BACKOFF_MAX_MS;
    uv_timer_start(&c->timer, on_backoff, c->backoff_ms, 0);
}

static bool any_alive(const pg_db_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->conns[i].state != PG_DOWN)
            return true;
    return false;
}

/* The connection broke (or timed out) under a job or while idle. */
static void conn_broken(pg_conn_t *c, int rc, const char *prefix, const char *msg)
{
    fv__sql_job_t *job = c->base.cur;
    bool was_ready = c->state == PG_READY;
    if (was_ready)
        fv_log_warn("sql", "postgres connection lost: %s", msg ? msg : "");
    conn_drop(c);
    if (job) {
        if (msg || !job->err.code)
            set_err(&job->err, rc, prefix, msg);
        fv__sql_job_done(job, rc);
    }
    fv__sql_conn_lost(&c->base);
    schedule_reconnect(c);
    if (!any_alive(c->p))
        fv__sql_fail_waiting(c->p->db, FV_EBACKEND, "PostgreSQL is unreachable");
    else
        fv__sql_pump(c->p->db);
}

/* ---- connecting ---------------------------------------------------------------------------- */

static void connect_failed(pg_conn_t *c, const char *msg)
{
    char text[FV_ERROR_MSG_LEN];
    snprintf(text, sizeof(text), "cannot connect to PostgreSQL: %s", msg ? msg : "");
    fv_error_t e;
    set_err(&e, FV_EBACKEND, "", text);
    fv_log_debug("sql", "%s", e.msg);
    conn_drop(c);
    if (c->auto_reconnect)
        schedule_reconnect(c);
    if (!any_alive(c->p))
        fv__sql_fail_waiting(c->p->db, FV_EBACKEND, e.msg);
}

static void on_connect_timeout(uv_timer_t *t)
{
    pg_conn_t *c = t->data;
    connect_failed(c, "connection timed out");
}

/* Server notices ("table does not exist, skipping") are for a person at psql, not our log. */
static void on_notice(void *arg, const char *msg)
{
    fv_log_debug("sql", "postgres notice: %s", msg);
}

static void connected(pg_conn_t *c)
{
    uv_timer_stop(&c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0 || poll_set(c, UV_READABLE) < 0) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    c->state = PG_READY;
    c->backoff_ms = 0;
    c->auto_reconnect = false;
    c->base.ready = true;
    fv__sql_pump(c->p->db);
}

static void connect_step(pg_conn_t *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (poll_set(c, UV_READABLE) < 0)
            connect_failed(c, "socket");
        break;
    case PGRES_POLLING_WRITING:
        if (poll_set(c, UV_WRITABLE) < 0)
            connect_failed(c, "socket");
        break;
    case PGRES_POLLING_OK:
        connected(c);
        break;
    default:
        connect_failed(c, PQerrorMessage(c->pg));
        break;
    }
}

static void conn_start(pg_conn_t *c)
{
    uv_timer_stop(&c->timer);
    c->pg = PQconnectStart(c->p->conninfo);
    c->state = PG_CONNECTING;
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    /* The deadline counts from now, not from the loop's cached time: the loop may have been
     * busy or blocked before this (PQconnectStart itself resolves host names synchronously),
     * and a stale start would cut the connect short, after milliseconds instead of seconds. */
    uv_update_time(c->p->db->loop);
    uv_timer_start(&c->timer, on_connect_timeout, c->p->db->opts.connect_timeout_ms, 0);
    /* libpq: behave as if PQconnectPoll had said "writing" before the first call. */
    if (poll_set(c, UV_WRITABLE) < 0)
        connect_failed(c, "socket");
}

static void pg_want_conn(fv_sql_t *db)
{
    pg_db_t *p = db->backend;
    size_t waiting = fv__sql_waiting(db);
    size_t connecting = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->conns[i].state == PG_CONNECTING)
            connecting++;
    for (size_t i = 0; i < p->n && connecting < waiting; i++) {
        pg_conn_t *c = &p->conns[i];
        if (c->state != PG_DOWN)
            continue;
        connecting++;
        conn_start(c);      /* a request is waiting: skip whatever backoff is left */
    }
}

/* ---- running a job ------------------------------------------------------------------------- */

static char type_char(fv_sql_type_t t)
{
    static const char map[] = "nidtb";
    return (unsigned)t < sizeof(map) - 1 ? map[t] : 'n';
}

static Oid type_oid(fv_sql_type_t t)
{
    switch (t) {
    case FV_SQL_INT64:
        return 20;     /* int8 */
    case FV_SQL_DOUBLE:
        return 701;    /* float8 */
    case FV_SQL_BLOB:
        return 17;     /* bytea */
    default:
        return 0;      /* text and NULL: let the server infer from the statement */
    }
}

static const pg_stmt_t *stmt_find(const pg_conn_t *c, const fv__sql_job_t *job,
                                  const char *sig, uint64_t h)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (c->stmts[i].hash == h && c->stmts[i].len == job->sql_len &&
            memcmp(c->stmts[i].sql, job->sql, job->sql_len) == 0 &&
            strcmp(c->stmts[i].sig, sig) == 0)
            return &c->stmts[i];
    return NULL;
}

static void finish_job(pg_conn_t *c, int rc)
{
    fv__sql_job_t *job = c->base.cur;
    uv_timer_stop(&c->timer);
    PGresult *last = c->last;
    c->last = NULL;
    bool bad = PQstatus(c->pg) == CONNECTION_BAD || PQsocket(c->pg) != c->poll_fd;
    if (bad && rc == 0)
        rc = FV_EBACKEND;
    if (rc == 0)
        job->res = wrap_result(last);
    else if (last)
        PQclear(last);
    if (bad) {
        /* The error text is already in job->err when a result carried it. */
        if (!job->err.code)
            set_err(&job->err, FV_EBACKEND, "PostgreSQL connection lost: ",
                    PQerrorMessage(c->pg));
        conn_broken(c, rc, "", NULL);   /* reports job with the message set above */
        return;
    }
    fv__sql_job_done(job, rc);
}

static void send_flush(pg_conn_t *c)
{
    int f = PQflush(c->pg);
    if (f < 0)
        conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", PQerrorMessage(c->pg));
    else if (poll_set(c, f ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
        conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", "socket");
}

static int send_exec(pg_conn_t *c, fv__sql_job_t *job, const char *stmt_name)
{
    size_t n = job->nparams;
    const char *inline_vals[8];
    int inline_lens[8], inline_fmts[8];
    char inline_num[8][32];
    const char **vals = n <= 8 ? inline_vals : fv_malloc(n * sizeof(char *));
    int *lens = n <= 8 ? inline_lens : fv_malloc(n * sizeof(int));
    int *fmts = n <= 8 ? inline_fmts : fv_malloc(n * sizeof(int));
    char (*num)[32] = n <= 8 ? inline_num : fv_malloc(n * sizeof(*num));
    for (size_t i = 0; i < n; i++) {
        const fv_sql_param_t *pa = &job->params[i];
        lens[i] = 0;
        fmts[i] = 0;
        switch (pa->type) {
        case FV_SQL_INT64:
            snprintf(num[i], sizeof(num[i]), "%" PRId64, pa->i);
            vals[i] = num[i];
            break;
        case FV_SQL_DOUBLE:
            if (isnan(pa->d))
                snprintf(num[i], sizeof(num[i]), "NaN");
            else if (isinf(pa->d))
                snprintf(num[i], sizeof(num[i]), "%sInfinity", pa->d < 0 ? "-" : "");
            else
                snprintf(num[i], sizeof(num[i]), "%.17g", pa->d);
            vals[i] = num[i];
            break;
        case FV_SQL_TEXT:
            vals[i] = pa->ptr;      /* NUL-terminated copy made by sql.c */
            break;
        case FV_SQL_BLOB:
            vals[i] = pa->ptr;
            lens[i] = (int)pa->len;
            fmts[i] = 1;            /* binary: bytea takes the raw bytes */
            break;
        default:
            vals[i] = NULL;
            break;
        }
    }
    int ok = stmt_name ? PQsendQueryPrepared(c->pg, stmt_name, (int)n, vals, lens, fmts, 0)
                       : PQsendQueryParams(c->pg, job->sql, (int)n, NULL, vals, lens, fmts, 0);
    if (n > 8) {
        fv_free(vals);
        fv_free(lens);
        fv_free(fmts);
        fv_free(num);
    }
    return ok;
}

static void on_req_timeout(uv_timer_t *t)
{
    pg_conn_t *c = t->data;
    fv__sql_job_t *job = c->base.cur;
    if (!job)
        return;
    job->timed_out = true;
    char msg[64];
    snprintf(msg, sizeof(msg), "statement ran past %u ms", c->p->db->opts.timeout_ms);
    conn_broken(c, FV_ETIMEDOUT, "", msg);
}

static void pg_run(fv__sql_conn_t *conn, fv__sql_job_t *job)
{
    pg_conn_t *c = (pg_conn_t *)conn;
    c->fail_rc = 0;
    c->last = NULL;
    job->phase = PHASE_RUN;
    uv_timer_start(&c->timer, on_req_timeout, c->p->db->opts.timeout_ms, 0);
    int ok;
    if (job->kind == FV__SQL_EXEC) {
        char sig_inline[32];
        size_t n = job->nparams;
        char *sig = n < sizeof(sig_inline) ? sig_inline : fv_malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            sig[i] = type_char(job->params[i].type);
        sig[n] = '\0';
        uint64_t h = fv_fnv1a(fv_fnv1a(FV_FNV1A_SEED, job->sql, job->sql_len), sig, n);
        const pg_stmt_t *st = stmt_find(c, job, sig, h);
        if (st) {
            ok = send_exec(c, job, st->name);
        } else if (c->nstmts < PG_STMT_MAX) {
            c->pending.sql = fv_strndup(job->sql, job->sql_len);
            c->pending.len = job->sql_len;
            c->pending.sig = fv_strdup(sig);
            c->pending.hash = h;
            snprintf(c->pending.name, sizeof(c->pending.name), "fv%" PRIu32, c->next_stmt_id++);
            job->phase = PHASE_PREPARE;
            Oid types_inline[16];
            Oid *types = n <= 16 ? types_inline : fv_malloc(n * sizeof(Oid));
            for (size_t i = 0; i < n; i++)
                types[i] = type_oid(job->params[i].type);
            ok = PQsendPrepare(c->pg, c->pending.name, job->sql, (int)n, types);
            if (types != types_inline)
                fv_free(types);
        } else {
            ok = send_exec(c, job, NULL);
        }
        if (sig != sig_inline)
            fv_free(sig);
    } else {
        /* Scripts, BEGIN, COMMIT, ROLLBACK: the simple protocol takes several statements. */
        ok = PQsendQuery(c->pg, job->sql);
    }
    if (!ok) {
        conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", PQerrorMessage(c->pg));
        return;
    }
    send_flush(c);
}

/* All results of one sent command are in: move on to the execute step or finish. */
static void phase_done(pg_conn_t *c)
{
    fv__sql_job_t *job = c->base.cur;
    if (job->phase == PHASE_PREPARE) {
        if (c->fail_rc < 0) {
            fv_free(c->pending.sql);
            fv_free(c->pending.sig);
            c->pending.sql = NULL;
            c->pending.sig = NULL;
            finish_job(c, c->fail_rc);
            return;
        }
        if (!c->stmts)
            c->stmts = fv_calloc(PG_STMT_MAX, sizeof(*c->stmts));
        c->stmts[c->nstmts++] = c->pending;
        c->pending.sql = NULL;
        c->pending.sig = NULL;
        if (c->last)
            PQclear(c->last);
        c->last = NULL;
        job->phase = PHASE_RUN;
        if (!send_exec(c, job, c->stmts[c->nstmts - 1].name)) {
            conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", PQerrorMessage(c->pg));
            return;
        }
        send_flush(c);
        return;
    }
    finish_job(c, c->fail_rc);
}

static void collect(pg_conn_t *c)
{
    fv__sql_job_t *job = c->base.cur;
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            phase_done(c);
            return;
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            if (c->last)
                PQclear(c->last);
            c->last = r;
            break;
        case PGRES_FATAL_ERROR:
        case PGRES_NONFATAL_ERROR:
            if (c->fail_rc == 0) {
                const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                c->fail_rc = PQstatus(c->pg) == CONNECTION_BAD ? FV_EBACKEND
                                                               : map_sqlstate(state);
                set_err(&job->err, c->fail_rc, "", msg ? msg : PQresultErrorMessage(r));
            }
            PQclear(r);
            break;
        default:
            if (c->fail_rc == 0) {
                c->fail_rc = FV_EINVAL;
                fv_error_set(&job->err, FV_EINVAL, "unsupported result (%s)",
                             PQresStatus(PQresultStatus(r)));
            }
            PQclear(r);
            break;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_conn_t *c = h->data;
    if (c->poll != h)
        return;          /* a stale event from a socket being closed */
    if (c->state == PG_CONNECTING) {
        connect_step(c);
        return;
    }
    if (c->state != PG_READY)
        return;
    if (status < 0) {
        /* libpq may have closed the socket itself after reading the server's goodbye */
        const char *m = PQerrorMessage(c->pg);
        conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ",
                    m && *m ? m
                    : status == UV_EBADF ? "the socket reported an error (closed by the server?)"
                                         : uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        send_flush(c);
        if (c->state != PG_READY)
            return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pg)) {
            conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", PQerrorMessage(c->pg));
            return;
        }
        PGnotify *nt;
        while ((nt = PQnotifies(c->pg)))
            PQfreemem(nt);
        if (c->base.cur)
            collect(c);
        else if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_broken(c, FV_EBACKEND, "PostgreSQL connection lost: ", PQerrorMessage(c->pg));
    }
}

/* ---- open and close ------------------------------------------------------------------------ */

static void maybe_closed(pg_db_t *p)
{
    if (!p->closing || p->open_handles > 0)
        return;
    fv_sql_t *db = p->db;
    for (size_t i = 0; i < p->n; i++)
        fv_free(p->conns[i].stmts);
    fv_free(p->conns);
    fv_free(p->connps);
    fv_free(p->conninfo);
    fv_free(p);
    db->backend = NULL;
    db->conns = NULL;
    db->nconns = 0;
    fv__sql_backend_closed(db);
}

static void on_timer_closed(uv_handle_t *h)
{
    pg_db_t *p = ((pg_conn_t *)h->data)->p;
    p->open_handles--;
    maybe_closed(p);
}

static void pg_close(fv_sql_t *db)
{
    pg_db_t *p = db->backend;
    p->closing = true;
    for (size_t i = 0; i < p->n; i++) {
        pg_conn_t *c = &p->conns[i];
        fv__sql_job_t *job = c->base.cur;
        conn_drop(c);
        if (job)
            fv__sql_job_done(job, FV_ECANCELED);
        fv__sql_conn_lost(&c->base);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    }
}

int fv__sql_postgres_open(fv_sql_t *db, const char *url, fv_error_t *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        fv_error_t e;
        set_err(&e, FV_EINVAL, "database.url: ", perr ? perr : "cannot parse");
        PQfreemem(perr);
        return fv_error_set(err, FV_EINVAL, "%s", e.msg);
    }
    PQconninfoFree(opts);
    pg_db_t *p = fv_calloc(1, sizeof(*p));
    p->db = db;
    p->conninfo = fv_strdup(url);
    p->n = db->opts.pool_size;
    p->conns = fv_calloc(p->n, sizeof(*p->conns));
    p->connps = fv_calloc(p->n, sizeof(*p->connps));
    for (size_t i = 0; i < p->n; i++) {
        pg_conn_t *c = &p->conns[i];
        c->p = p;
        c->base.db = db;
        c->state = PG_DOWN;
        uv_timer_init(db->loop, &c->timer);
        c->timer.data = c;
        p->open_handles++;
        p->connps[i] = &c->base;
    }
    db->backend = p;
    db->conns = p->connps;
    db->nconns = p->n;
    return 0;
}

const fv__sql_ops_t fv__sql_postgres_ops = {
    .name = "postgres",
    .run = pg_run,
    .want_conn = pg_want_conn,
    .close = pg_close,
};
