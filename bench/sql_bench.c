/* sql_bench.c - inserts/s and point selects/s through fv_sql against the same statements sent
 * with raw libpq (prepared, non-blocking, one query in flight per connection, the same number
 * of connections), on the same PostgreSQL server in one run; then fv_sql on SQLite. Built and
 * run by bench/sql.sh. Not a test: it prints numbers and the ratio. */
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <uv.h>

#include "core/err.h"
#include "store/sql.h"

#define INS_SQL "INSERT INTO bench_kv (id, v) VALUES ($1, $2)"
#define SEL_SQL "SELECT id, v FROM bench_kv WHERE id = $1"
#define MAX_CONC 64
#define ROUNDS 5

static const char *payload = "a point in the world with a little text beside it";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, ROUNDS, sizeof(double), cmp_double);
    return v[ROUNDS / 2];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 88172645463325252ull;
static int64_t key_range = 1;    /* selects draw keys from the inserted 0..key_range-1 */

static int64_t next_key(int64_t n)
{
    rng_state ^= rng_state << 13;      /* xorshift: cheap and the same for both sides */
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (int64_t)(rng_state % (uint64_t)n);
}

/* ---- ours ---------------------------------------------------------------------------------- */

typedef struct ours {
    uv_loop_t *loop;
    fv_sql_t *db;
    fv_sql_req_t req[MAX_CONC];
    int64_t issued, done, total;
    int select;
    int failed;
} ours_t;

static void ours_next(ours_t *o, fv_sql_req_t *req);

static void on_ours(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    ours_t *o = req->data;
    if (rc < 0 || (o->select && fv_sql_result_rows(res) != 1)) {
        if (!o->failed)
            fprintf(stderr, "fv_sql: %d %s\n", rc, req->err.msg);
        o->failed = 1;
    }
    o->done++;
    if (o->issued < o->total)
        ours_next(o, req);
}

static void ours_next(ours_t *o, fv_sql_req_t *req)
{
    int64_t i = o->issued++;
    int rc;
    if (o->select) {
        fv_sql_param_t p = FV_SQL_INT(next_key(key_range));
        rc = fv_sql_exec(o->db, req, SEL_SQL, &p, 1, on_ours);
    } else {
        fv_sql_param_t p[2] = {FV_SQL_INT(i), FV_SQL_TEXT(payload)};
        rc = fv_sql_exec(o->db, req, INS_SQL, p, 2, on_ours);
    }
    if (rc < 0) {
        fprintf(stderr, "fv_sql_exec: %s\n", req->err.msg);
        exit(1);
    }
}

static double ours_run(ours_t *o, int select, int64_t n, int conc)
{
    o->select = select;
    o->issued = o->done = 0;
    o->total = n;
    double t0 = now_s();
    for (int c = 0; c < conc && o->issued < n; c++) {
        o->req[c].data = o;
        ours_next(o, &o->req[c]);
    }
    while (o->done < n)
        uv_run(o->loop, UV_RUN_ONCE);
    double dt = now_s() - t0;
    if (o->failed)
        exit(1);
    return n / dt;
}

static void on_script(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    if (rc < 0) {
        fprintf(stderr, "script: %s\n", req->err.msg);
        exit(1);
    }
    *(int *)req->data = 1;
}

static void ours_script(ours_t *o, const char *sql)
{
    int done = 0;
    fv_sql_req_t req = {.data = &done};
    if (fv_sql_exec_script(o->db, &req, sql, on_script) < 0)
        exit(1);
    while (!done)
        uv_run(o->loop, UV_RUN_ONCE);
}

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static void ours_open(ours_t *o, uv_loop_t *loop, const char *url, int conc)
{
    memset(o, 0, sizeof(*o));
    o->loop = loop;
    fv_sql_opts_t opts = {.pool_size = (uint32_t)conc};
    fv_error_t err;
    if (fv_sql_open(loop, url, &opts, &o->db, &err) < 0) {
        fprintf(stderr, "open %s: %s\n", url, err.msg);
        exit(1);
    }
}

static void ours_close(ours_t *o)
{
    int closed = 0;
    fv_sql_close(o->db, on_closed, &closed);
    while (!closed)
        uv_run(o->loop, UV_RUN_ONCE);
}

/* ---- raw libpq ----------------------------------------------------------------------------- */

static PGconn *raw_conn[MAX_CONC];

static void raw_must(PGresult *r, const char *what)
{
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", what, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static void raw_open(const char *url, int conc)
{
    for (int c = 0; c < conc; c++) {
        raw_conn[c] = PQconnectdb(url);
        if (PQstatus(raw_conn[c]) != CONNECTION_OK) {
            fprintf(stderr, "raw connect: %s", PQerrorMessage(raw_conn[c]));
            exit(1);
        }
        Oid ins_types[2] = {20, 0}, sel_types[1] = {20};
        raw_must(PQprepare(raw_conn[c], "ins", INS_SQL, 2, ins_types), "prepare");
        raw_must(PQprepare(raw_conn[c], "sel", SEL_SQL, 1, sel_types), "prepare");
        PQsetnonblocking(raw_conn[c], 1);
    }
}

static void raw_send(int c, int select, int64_t i, int64_t n)
{
    char num[32];
    const char *vals[2];
    if (select) {
        snprintf(num, sizeof(num), "%" PRId64, next_key(key_range));
        vals[0] = num;
        if (!PQsendQueryPrepared(raw_conn[c], "sel", 1, vals, NULL, NULL, 0))
            exit(1);
    } else {
        snprintf(num, sizeof(num), "%" PRId64, i);
        vals[0] = num;
        vals[1] = payload;
        if (!PQsendQueryPrepared(raw_conn[c], "ins", 2, vals, NULL, NULL, 0))
            exit(1);
    }
    PQflush(raw_conn[c]);
}

static double raw_run(int select, int64_t n, int conc)
{
    struct pollfd pfd[MAX_CONC];
    int64_t issued = 0, done = 0;
    double t0 = now_s();
    for (int c = 0; c < conc && issued < n; c++) {
        pfd[c].fd = PQsocket(raw_conn[c]);
        pfd[c].events = POLLIN;
        raw_send(c, select, issued++, n);
    }
    while (done < n) {
        if (poll(pfd, (nfds_t)conc, -1) < 0)
            exit(1);
        for (int c = 0; c < conc; c++) {
            if (!(pfd[c].revents & POLLIN))
                continue;
            PGconn *pc = raw_conn[c];
            if (!PQconsumeInput(pc))
                exit(1);
            bool finished = false;
            while (!PQisBusy(pc)) {
                PGresult *r = PQgetResult(pc);
                if (!r) {
                    finished = true;
                    break;
                }
                ExecStatusType s = PQresultStatus(r);
                if ((s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) ||
                    (select && PQntuples(r) != 1)) {
                    fprintf(stderr, "raw: %s", PQresultErrorMessage(r));
                    exit(1);
                }
                PQclear(r);
            }
            if (finished) {
                done++;
                if (issued < n)
                    raw_send(c, select, issued++, n);
            }
        }
    }
    return n / (now_s() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s POSTGRES_URL SQLITE_URL [inserts] [selects] [conc]\n", argv[0]);
        return 2;
    }
    const char *pg_url = argv[1], *sqlite_url = argv[2];
    int64_t n_ins = argc > 3 ? atoll(argv[3]) : 20000;
    int64_t n_sel = argc > 4 ? atoll(argv[4]) : 50000;
    int conc = argc > 5 ? atoi(argv[5]) : 4;
    if (conc < 1 || conc > MAX_CONC)
        return 2;
    uv_loop_t loop;
    uv_loop_init(&loop);

    ours_t o;
    ours_open(&o, &loop, pg_url, conc);
    const char *reset = "DROP TABLE IF EXISTS bench_kv; "
                        "CREATE TABLE bench_kv (id BIGINT PRIMARY KEY, v TEXT NOT NULL)";
    ours_script(&o, reset);
    raw_open(pg_url, conc);

    /* The machine is shared and noisy: ROUNDS rounds, the two sides alternating which goes
     * first, each insert pass on a fresh table, each select pass with the same key sequence;
     * the median of each is printed. */
    key_range = n_ins;
    double raw_ins[ROUNDS], our_ins[ROUNDS], raw_sel[ROUNDS], our_sel[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 2; k++) {
            ours_script(&o, reset);
            if ((k + r) % 2 == 0)
                raw_ins[r] = raw_run(0, n_ins, conc);
            else
                our_ins[r] = ours_run(&o, 0, n_ins, conc);
        }
        ours_script(&o, "VACUUM ANALYZE bench_kv");
        for (int k = 0; k < 2; k++) {
            rng_state = 1234567ull + (uint64_t)r;
            if ((k + r) % 2 == 0)
                raw_sel[r] = raw_run(1, n_sel, conc);
            else
                our_sel[r] = ours_run(&o, 1, n_sel, conc);
        }
    }
    double ri = median(raw_ins), oi = median(our_ins), rs = median(raw_sel),
           os = median(our_sel);
    ours_script(&o, "DROP TABLE bench_kv");
    ours_close(&o);
    for (int c = 0; c < conc; c++)
        PQfinish(raw_conn[c]);

    ours_t s;
    ours_open(&s, &loop, sqlite_url, 1);
    ours_script(&s, "DROP TABLE IF EXISTS bench_kv; "
                    "CREATE TABLE bench_kv (id BIGINT PRIMARY KEY, v TEXT NOT NULL)");
    double sq_ins = ours_run(&s, 0, n_ins, conc);
    rng_state = 1234567ull;
    double sq_sel = ours_run(&s, 1, n_sel, conc);
    ours_close(&s);
    uv_loop_close(&loop);

    printf("sql bench: %" PRId64 " inserts, %" PRId64 " point selects, %d in flight, "
           "median of %d rounds\n", n_ins,
           n_sel, conc, ROUNDS);
    printf("%-28s %12s %12s\n", "", "inserts/s", "selects/s");
    printf("%-28s %12.0f %12.0f\n", "postgres raw libpq", ri, rs);
    printf("%-28s %12.0f %12.0f\n", "postgres fv_sql", oi, os);
    printf("%-28s %12.2f %12.2f\n", "ratio fv_sql / raw", oi / ri, os / rs);
    printf("%-28s %12.0f %12.0f\n", "sqlite fv_sql (WAL file)", sq_ins, sq_sel);
    return 0;
}
