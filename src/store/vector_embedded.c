/* vector_embedded.c - the in-process backend of the vector store ("embedded:"): collections
 * are vector_index.c indexes in memory. Big searches run on the libuv work queue so the loop
 * never blocks; small ones run inline. Requests run in arrival order through one queue: a
 * mutation waits until the searches running on worker threads are done, so a worker only
 * ever reads an index nobody changes (no locks), and a search sees every mutation submitted
 * before it.
 *
 * With opts.sql the store is written through to two tables. `vectors` is the one the sql
 * store's migration 0002 defines (collection, id, dim, vector: float32 little-endian blob,
 * payload: JSON text, '{}' when none, updated_at: ms since the epoch); `vector_collections`
 * (name, dim, metric) is ours. Both are also created here with CREATE TABLE IF NOT EXISTS in
 * the same shape, so a database that has not been migrated works too.
 * Everything is loaded at open (page by page, so no result grows past the sql store's
 * ceiling); each mutation is written first and applied in memory only once the database took
 * it, so memory never holds what the database refused. Vectors are stored as given (cosine
 * normalisation happens in memory), so a reload rebuilds exactly the same index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "store/sql.h"
#include "store/vector_internal.h"

#define LOAD_PAGE 1000

typedef struct emb_work emb_work_t;

typedef struct emb {
    fv_vector_t *v;
    fv_vector_index_t **colls;
    size_t ncolls;
    size_t cap;
    fv__vector_req_t *head;        /* waiting requests, in arrival order */
    fv__vector_req_t *tail;
    emb_work_t *running;           /* searches on the work queue */
    size_t nrunning;
    bool closing;
    fv_sql_t *sql;                 /* borrowed; NULL = memory only */
    fv_sql_req_t sreq;             /* the one sql request in flight */
    bool busy;                     /* a write (or the load) is in flight */
    fv__vector_req_t *writing;     /* the request whose write is in flight */
    size_t load_coll;              /* loading: which collection, and the last id read */
    char load_after[FV_VECTOR_MAX_ID_LEN + 1];
} emb_t;

struct emb_work {
    uv_work_t work;
    emb_work_t *next;
    emb_t *e;
    fv__vector_req_t *req;
    const fv_vector_index_t *ix;
    fv_vector_index_hit_t *hits;
    size_t found;
    int rc;
    fv_error_t err;
};

static void pump(emb_t *e);
static void emb_release(emb_t *e);

static ssize_t coll_find(const emb_t *e, const char *name)
{
    for (size_t i = 0; i < e->ncolls; i++)
        if (strcmp(fv_vector_index_name(e->colls[i]), name) == 0)
            return (ssize_t)i;
    return -1;
}

static fv_vector_index_t *coll_get(emb_t *e, fv__vector_req_t *req)
{
    ssize_t i = coll_find(e, req->collection);
    if (i < 0) {
        fv__vector_fail(req, FV_ENOENT, "collection '%s' does not exist", req->collection);
        return NULL;
    }
    return e->colls[i];
}

/* --- mutations (loop thread, no search running) ----------------------------------------- */

/* Each mutation is checked (may finish the request: returns false), written to sql when there
 * is one, then applied in memory. */

static bool check_create(emb_t *e, fv__vector_req_t *req, bool *exists)
{
    ssize_t i = coll_find(e, req->collection);
    *exists = i >= 0;
    if (i < 0)
        return true;
    fv_vector_index_t *ix = e->colls[i];
    if (fv_vector_index_dim(ix) == req->dim && fv_vector_index_metric(ix) == req->metric) {
        fv__vector_finish(req);        /* nothing to do */
        return false;
    }
    fv__vector_fail(req, FV_ECONFLICT, "collection '%s' exists with %u dimensions and %s "
                    "distance, not %u and %s", req->collection, fv_vector_index_dim(ix),
                    fv_vector_metric_name(fv_vector_index_metric(ix)), req->dim,
                    fv_vector_metric_name(req->metric));
    return false;
}

static int add_collection(emb_t *e, const char *name, uint32_t dim, fv_vector_metric_t metric,
                          fv_error_t *err)
{
    fv_vector_index_t *ix;
    int rc = fv_vector_index_new(name, dim, metric, &ix, err);
    if (rc < 0)
        return rc;
    if (e->ncolls == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->colls = fv_realloc(e->colls, e->cap * sizeof(*e->colls));
    }
    e->colls[e->ncolls++] = ix;
    return 0;
}

static void apply_create(emb_t *e, fv__vector_req_t *req)
{
    req->rc = add_collection(e, req->collection, req->dim, req->metric, &req->err);
    fv__vector_finish(req);
}

static void apply_drop(emb_t *e, fv__vector_req_t *req)
{
    ssize_t i = coll_find(e, req->collection);
    if (i >= 0) {
        fv_vector_index_free(e->colls[i]);
        e->colls[i] = e->colls[--e->ncolls];
    }
    fv__vector_finish(req);
}

/* The whole batch is checked first: all or none. */
static bool check_upsert(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return false;
    for (size_t i = 0; i < req->count; i++) {
        fv_error_t pe;
        int rc = fv_vector_index_check_point(ix, req->ids[i], req->vectors + i * req->dim,
                                             req->dim, req->payloads[i], &pe);
        if (rc < 0) {
            fv__vector_fail(req, rc, "point %zu ('%s'): %s", i, req->ids[i], pe.msg);
            return false;
        }
    }
    return true;
}

static void apply_upsert(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return;
    for (size_t i = 0; i < req->count; i++) {
        int rc = fv_vector_index_upsert(ix, req->ids[i], req->vectors + i * req->dim, req->dim,
                                        req->payloads[i], &req->err);
        if (rc < 0) {
            req->rc = rc;              /* only out of memory gets here, after the checks */
            break;
        }
    }
    fv__vector_finish(req);
}

static void apply_delete(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return;
    for (size_t i = 0; i < req->count; i++)
        (void)fv_vector_index_delete(ix, req->ids[i]);   /* absent ids are fine */
    fv__vector_finish(req);
}

/* --- write-through ---------------------------------------------------------------------- */

static void apply(emb_t *e, fv__vector_req_t *req)
{
    switch (req->op) {
    case FV__VECTOR_CREATE: apply_create(e, req); break;
    case FV__VECTOR_DROP: apply_drop(e, req); break;
    case FV__VECTOR_UPSERT: apply_upsert(e, req); break;
    case FV__VECTOR_DELETE: apply_delete(e, req); break;
    case FV__VECTOR_SEARCH: break;
    }
}

static void write_done(emb_t *e, int rc, const fv_error_t *err)
{
    fv__vector_req_t *req = e->writing;
    e->writing = NULL;
    e->busy = false;
    if (rc < 0) {
        fv__vector_fail(req, rc, "vector store: the sql store refused the write: %s",
                        err->msg);
    } else if (e->closing) {
        req->rc = 0;                   /* stored; memory is going away anyway */
        fv__vector_finish(req);
    } else {
        apply(e, req);
    }
    if (!e->closing)
        pump(e);
    else if (e->nrunning == 0)
        emb_release(e);
}

static void on_written(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    write_done(sreq->data, rc, &sreq->err);
}

static void on_drop_vectors(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    emb_t *e = sreq->data;
    if (rc < 0 || e->closing) {
        write_done(e, rc, &sreq->err);
        return;
    }
    fv_sql_param_t p = FV_SQL_TEXT(e->writing->collection);
    rc = fv_sql_exec(e->sql, &e->sreq, "DELETE FROM vector_collections WHERE name = $1", &p, 1,
                     on_written);
    if (rc < 0) {
        fv_error_set(&sreq->err, rc, "%s", fv_strerror(rc));
        write_done(e, rc, &sreq->err);
    }
}

/* Later points of a batch replace earlier ones with the same id; the database must see each
 * id once (PostgreSQL refuses to update a row twice in one statement). */
static bool last_of_id(const fv__vector_req_t *req, size_t i)
{
    for (size_t j = i + 1; j < req->count; j++)
        if (strcmp(req->ids[i], req->ids[j]) == 0)
            return false;
    return true;
}

static int write_upsert(emb_t *e, fv__vector_req_t *req)
{
    fv_buf_t q;
    fv_buf_init(&q, 0);
    fv_sql_param_t *params = fv_calloc(req->count * 6 + 1, sizeof(*params));
    char **texts = fv_calloc(req->count, sizeof(*texts));
    int rc = fv_buf_append_str(&q, "INSERT INTO vectors (collection, id, dim, vector, payload, "
                                   "updated_at) VALUES ");
    int64_t now = (int64_t)fv_wall_ms();
    size_t n = 0;
    for (size_t i = 0; i < req->count && rc == 0; i++) {
        if (!last_of_id(req, i))
            continue;
        rc = fv_buf_printf(&q, "%s($%zu, $%zu, $%zu, $%zu, $%zu, $%zu)", n ? ", " : "", n + 1,
                           n + 2, n + 3, n + 4, n + 5, n + 6);
        params[n++] = FV_SQL_TEXT(req->collection);
        params[n++] = FV_SQL_TEXT(req->ids[i]);
        params[n++] = FV_SQL_INT(req->dim);
        params[n++] = FV_SQL_BLOB(req->vectors + i * req->dim, req->dim * sizeof(float));
        texts[i] = req->payloads[i] ? json_dumps(req->payloads[i], JSON_COMPACT) : NULL;
        params[n++] = FV_SQL_TEXT(texts[i] ? texts[i] : "{}");
        params[n++] = FV_SQL_INT(now);
    }
    if (rc == 0)
        rc = fv_buf_append_str(&q, " ON CONFLICT (collection, id) DO UPDATE SET dim = "
                                   "excluded.dim, vector = excluded.vector, payload = "
                                   "excluded.payload, updated_at = excluded.updated_at");
    if (rc == 0)
        rc = fv_sql_exec(e->sql, &e->sreq, q.ptr, params, n, on_written);
    for (size_t i = 0; i < req->count; i++)
        free(texts[i]);                /* jansson's allocation */
    fv_free(texts);
    fv_free(params);
    fv_buf_dispose(&q);
    return rc;
}

static int write_delete(emb_t *e, fv__vector_req_t *req)
{
    fv_buf_t q;
    fv_buf_init(&q, 0);
    fv_sql_param_t *params = fv_calloc(req->count + 1, sizeof(*params));
    int rc = fv_buf_append_str(&q, "DELETE FROM vectors WHERE collection = $1 AND id IN (");
    params[0] = FV_SQL_TEXT(req->collection);
    for (size_t i = 0; i < req->count && rc == 0; i++) {
        rc = fv_buf_printf(&q, "%s$%zu", i ? ", " : "", i + 2);
        params[i + 1] = FV_SQL_TEXT(req->ids[i]);
    }
    if (rc == 0)
        rc = fv_buf_append(&q, ")", 1);
    if (rc == 0)
        rc = fv_sql_exec(e->sql, &e->sreq, q.ptr, params, req->count + 1, on_written);
    fv_free(params);
    fv_buf_dispose(&q);
    return rc;
}

/* Starts the write for a checked mutation; memory follows in write_done(). */
static void write_through(emb_t *e, fv__vector_req_t *req)
{
    if (!e->sql) {
        apply(e, req);
        return;
    }
    int rc = 0;
    e->busy = true;
    e->writing = req;
    e->sreq.data = e;
    switch (req->op) {
    case FV__VECTOR_CREATE: {
        fv_sql_param_t p[3] = {FV_SQL_TEXT(req->collection), FV_SQL_INT(req->dim),
                               FV_SQL_TEXT(fv_vector_metric_name(req->metric))};
        rc = fv_sql_exec(e->sql, &e->sreq, "INSERT INTO vector_collections (name, dim, metric) "
                         "VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING", p, 3, on_written);
        break;
    }
    case FV__VECTOR_DROP: {
        fv_sql_param_t p = FV_SQL_TEXT(req->collection);
        rc = fv_sql_exec(e->sql, &e->sreq, "DELETE FROM vectors WHERE collection = $1", &p, 1,
                         on_drop_vectors);
        break;
    }
    case FV__VECTOR_UPSERT: rc = write_upsert(e, req); break;
    case FV__VECTOR_DELETE: rc = write_delete(e, req); break;
    case FV__VECTOR_SEARCH: break;
    }
    if (rc < 0) {                      /* the sql store refused at once: no callback coming */
        e->busy = false;
        e->writing = NULL;
        fv__vector_fail(req, rc, "vector store: the sql store refused the write: %s",
                        fv_strerror(rc));
    }
}

static void do_create(emb_t *e, fv__vector_req_t *req)
{
    bool exists;
    if (check_create(e, req, &exists))
        write_through(e, req);
}

static void do_drop(emb_t *e, fv__vector_req_t *req)
{
    write_through(e, req);
}

static void do_upsert(emb_t *e, fv__vector_req_t *req)
{
    if (check_upsert(e, req))
        write_through(e, req);
}

static void do_delete(emb_t *e, fv__vector_req_t *req)
{
    if (coll_get(e, req))
        write_through(e, req);
}

/* --- searches --------------------------------------------------------------------------- */

/* Copies ids and payload references out of the index (loop thread: refcounts are not
 * touched anywhere else), so results outlive later mutations. */
static void materialise(fv__vector_req_t *req, const fv_vector_index_t *ix,
                        const fv_vector_index_hit_t *hits, size_t found)
{
    if (fv__vector_alloc_hits(req, found) < 0) {
        fv__vector_fail(req, FV_ENOMEM, "out of memory for %zu results", found);
        return;
    }
    for (size_t i = 0; i < found; i++) {
        json_t *p = fv_vector_index_payload(ix, hits[i].slot);
        req->hits[i].id = fv_strdup(fv_vector_index_id(ix, hits[i].slot));
        req->hits[i].score = hits[i].score;
        req->hits[i].payload = p ? json_incref(p) : json_object();
        req->nhits = i + 1;
    }
    req->rc = 0;
    fv__vector_finish(req);
}

static void search_inline(fv__vector_req_t *req, const fv_vector_index_t *ix)
{
    /* Never more room than points, but at least 1 so the index still checks the query. */
    size_t k = req->k < fv_vector_index_count(ix) ? req->k : fv_vector_index_count(ix);
    if (k == 0)
        k = 1;
    fv_vector_index_hit_t *hits = fv_try_malloc(k * sizeof(*hits));
    if (!hits) {
        fv__vector_fail(req, FV_ENOMEM, "out of memory for %zu results", k);
        return;
    }
    size_t found = 0;
    int rc = fv_vector_index_search(ix, req->vectors, req->dim, k, req->filter, hits, &found,
                                    &req->err);
    if (rc < 0) {
        req->rc = rc;
        fv__vector_finish(req);
    } else {
        materialise(req, ix, hits, found);
    }
    fv_free(hits);
}

static void on_work(uv_work_t *w)
{
    emb_work_t *job = w->data;
    job->rc = fv_vector_index_search(job->ix, job->req->vectors, job->req->dim, job->req->k,
                                     job->req->filter, job->hits, &job->found, &job->err);
}

static void on_work_done(uv_work_t *w, int status)
{
    emb_work_t *job = w->data;
    emb_t *e = job->e;
    for (emb_work_t **pp = &e->running; *pp; pp = &(*pp)->next)
        if (*pp == job) {
            *pp = job->next;
            break;
        }
    e->nrunning--;
    fv__vector_req_t *req = job->req;
    if (e->closing || status == UV_ECANCELED) {
        fv__vector_fail(req, FV_ECANCELED, "vector store closed");
    } else if (job->rc < 0) {
        req->rc = job->rc;
        req->err = job->err;
        fv__vector_finish(req);
    } else {
        /* No mutation ran meanwhile (they wait for nrunning == 0): slots are still valid. */
        materialise(req, job->ix, job->hits, job->found);
    }
    fv_free(job->hits);
    fv_free(job);
    if (!e->closing)
        pump(e);
    else if (e->nrunning == 0)
        emb_release(e);               /* the last search back after close */
}

static void do_search(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return;
    size_t scan = fv_vector_index_count(ix) * fv_vector_index_dim(ix);
    if (scan <= e->v->opts.offload_floats || fv_vector_index_count(ix) == 0) {
        search_inline(req, ix);
        return;
    }
    emb_work_t *job = fv_calloc(1, sizeof(*job));
    size_t k = req->k < fv_vector_index_count(ix) ? req->k : fv_vector_index_count(ix);
    job->hits = fv_try_malloc(k * sizeof(*job->hits));
    if (!job->hits) {
        fv_free(job);
        fv__vector_fail(req, FV_ENOMEM, "out of memory for %zu results", k);
        return;
    }
    req->k = k;
    job->e = e;
    job->req = req;
    job->ix = ix;
    job->work.data = job;
    job->next = e->running;
    e->running = job;
    e->nrunning++;
    int rc = uv_queue_work(e->v->loop, &job->work, on_work, on_work_done);
    if (rc < 0) {                      /* cannot happen with a valid loop; stay correct */
        e->running = job->next;
        e->nrunning--;
        fv_free(job->hits);
        fv_free(job);
        search_inline(req, ix);
    }
}

/* --- the queue -------------------------------------------------------------------------- */

static void pump(emb_t *e)
{
    while (e->head && !e->closing && !e->busy) {
        fv__vector_req_t *req = e->head;
        if (req->op != FV__VECTOR_SEARCH && e->nrunning > 0)
            return;                    /* the searches on workers finish first */
        e->head = req->next;
        if (!e->head)
            e->tail = NULL;
        req->next = NULL;
        switch (req->op) {
        case FV__VECTOR_CREATE: do_create(e, req); break;
        case FV__VECTOR_DROP: do_drop(e, req); break;
        case FV__VECTOR_UPSERT: do_upsert(e, req); break;
        case FV__VECTOR_DELETE: do_delete(e, req); break;
        case FV__VECTOR_SEARCH: do_search(e, req); break;
        }
    }
}

static void emb_submit(fv_vector_t *v, fv__vector_req_t *req)
{
    emb_t *e = v->backend;
    req->next = NULL;
    if (e->tail)
        e->tail->next = req;
    else
        e->head = req;
    e->tail = req;
    pump(e);
}

/* --- loading from sql ------------------------------------------------------------------- */

static void load_failed(emb_t *e, int rc, const fv_error_t *err)
{
    fv_error_t out;
    fv_error_set(&out, rc, "vector store: loading from the sql store failed: %s",
                 err ? err->msg : fv_strerror(rc));
    e->busy = false;
    fv__vector_opened(e->v, rc, &out);
}

static void load_page(emb_t *e);

static void on_page(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    emb_t *e = sreq->data;
    if (rc < 0) {
        load_failed(e, rc, &sreq->err);
        return;
    }
    fv_vector_index_t *ix = e->colls[e->load_coll];
    size_t rows = fv_sql_result_rows(res);
    uint32_t dim = fv_vector_index_dim(ix);
    for (size_t r = 0; r < rows; r++) {
        const char *id = fv_sql_result_text(res, r, 0, NULL);
        size_t blen = 0, plen = 0;
        const void *blob = fv_sql_result_blob(res, r, 1, &blen);
        const char *ptext = fv_sql_result_text(res, r, 2, &plen);
        if (id)
            snprintf(e->load_after, sizeof(e->load_after), "%s", id);
        /* A damaged row is skipped with a warning, never trusted. */
        json_t *payload = NULL;
        fv_error_t perr;
        if (ptext && !(payload = fv_json_parse_object(fv_slice(ptext, plen), &perr))) {
            fv_log_warn("vector", "collection '%s' point '%s': stored payload unreadable: %s",
                        fv_vector_index_name(ix), id ? id : "?", perr.msg);
            continue;
        }
        if (payload && json_object_size(payload) == 0) {
            json_decref(payload);      /* '{}' is "no payload": keep memory for vectors */
            payload = NULL;
        }
        float *vec = blob && blen == dim * sizeof(float) ? fv_try_malloc(blen) : NULL;
        if (vec)
            memcpy(vec, blob, blen);   /* the blob need not be aligned */
        int urc = vec ? fv_vector_index_upsert(ix, id, vec, dim, payload, &perr)
                      : fv_error_set(&perr, FV_EINVAL, "vector of %zu bytes, expected %zu",
                                     blen, dim * sizeof(float));
        if (urc == FV_ENOMEM) {
            fv_free(vec);
            json_decref(payload);
            load_failed(e, urc, &perr);
            return;
        }
        if (urc < 0)
            fv_log_warn("vector", "collection '%s' point '%s': skipped: %s",
                        fv_vector_index_name(ix), id ? id : "?", perr.msg);
        fv_free(vec);
        json_decref(payload);
    }
    if (rows < LOAD_PAGE) {            /* this collection is done */
        e->load_coll++;
        e->load_after[0] = '\0';
    }
    load_page(e);
}

/* Keyset pages ("id > last ORDER BY id") keep every result small, whatever the count. */
static void load_page(emb_t *e)
{
    if (e->load_coll >= e->ncolls) {
        e->busy = false;
        fv__vector_opened(e->v, 0, NULL);
        return;
    }
    fv_sql_param_t p[3] = {FV_SQL_TEXT(fv_vector_index_name(e->colls[e->load_coll])),
                           FV_SQL_TEXT(e->load_after), FV_SQL_INT(LOAD_PAGE)};
    int rc = fv_sql_exec(e->sql, &e->sreq, "SELECT id, vector, payload FROM vectors WHERE "
                         "collection = $1 AND id > $2 ORDER BY id LIMIT $3", p, 3, on_page);
    if (rc < 0)
        load_failed(e, rc, NULL);
}

static void on_collections(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    emb_t *e = sreq->data;
    if (rc < 0) {
        load_failed(e, rc, &sreq->err);
        return;
    }
    for (size_t r = 0; r < fv_sql_result_rows(res); r++) {
        const char *name = fv_sql_result_text(res, r, 0, NULL);
        int64_t dim = fv_sql_result_int64(res, r, 1);
        const char *metric = fv_sql_result_text(res, r, 2, NULL);
        fv_error_t err;
        fv_vector_metric_t m = metric && strcmp(metric, "dot") == 0 ? FV_VECTOR_DOT
                                                                    : FV_VECTOR_COSINE;
        if (!name || dim < 1 || dim > FV_VECTOR_MAX_DIM
            || add_collection(e, name, (uint32_t)dim, m, &err) < 0)
            fv_log_warn("vector", "stored collection '%s' skipped: unusable definition",
                        name ? name : "?");
    }
    e->load_coll = 0;
    e->load_after[0] = '\0';
    load_page(e);
}

static void on_tables(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    emb_t *e = sreq->data;
    if (rc < 0) {
        load_failed(e, rc, &sreq->err);
        return;
    }
    rc = fv_sql_exec(e->sql, &e->sreq, "SELECT name, dim, metric FROM vector_collections "
                     "ORDER BY name", NULL, 0, on_collections);
    if (rc < 0)
        load_failed(e, rc, NULL);
}

static int emb_open(fv_vector_t *v, const char *url, fv_error_t *err)
{
    if (strcmp(url, "embedded:") != 0 && strcmp(url, "embedded://") != 0)
        return fv_error_set(err, FV_EINVAL, "vector.url '%.100s': the embedded store takes "
                            "no address, write 'embedded:'", url);
    emb_t *e = fv_calloc(1, sizeof(*e));
    e->v = v;
    e->sql = v->opts.sql;
    v->backend = e;
    if (!e->sql) {
        fv__vector_opened(v, 0, NULL);
        return 0;
    }
    /* Binary columns are spelled differently; everything else is common SQL. */
    bool pg = strcmp(fv_sql_backend(e->sql), "postgres") == 0;
    char ddl[700];
    snprintf(ddl, sizeof(ddl),
             "CREATE TABLE IF NOT EXISTS vector_collections (name TEXT PRIMARY KEY, "
             "dim INTEGER NOT NULL, metric TEXT NOT NULL); "
             "CREATE TABLE IF NOT EXISTS vectors (collection TEXT NOT NULL, id TEXT NOT NULL, "
             "dim INTEGER NOT NULL CHECK (dim > 0), vector %s NOT NULL, "
             "payload TEXT NOT NULL DEFAULT '{}', updated_at BIGINT NOT NULL, "
             "PRIMARY KEY (collection, id))", pg ? "BYTEA" : "BLOB");
    e->busy = true;
    e->sreq.data = e;
    int rc = fv_sql_exec_script(e->sql, &e->sreq, ddl, on_tables);
    if (rc < 0) {
        fv_free(e);
        v->backend = NULL;
        return fv_error_set(err, rc, "vector store: the sql store refused: %s",
                            fv_strerror(rc));
    }
    return 0;
}

static void emb_release(emb_t *e)
{
    fv_vector_t *v = e->v;
    for (size_t i = 0; i < e->ncolls; i++)
        fv_vector_index_free(e->colls[i]);
    fv_free(e->colls);
    fv_free(e);
    fv__vector_closed(v);
}

static void emb_close(fv_vector_t *v)
{
    emb_t *e = v->backend;
    e->closing = true;
    while (e->head) {
        fv__vector_req_t *req = e->head;
        e->head = req->next;
        fv__vector_fail(req, FV_ECANCELED, "vector store closed");
    }
    e->tail = NULL;
    if (e->busy)
        return;                        /* the sql callback comes back and releases */
    if (e->nrunning == 0) {
        emb_release(e);
        return;
    }
    /* Searches not yet started are withdrawn; running ones finish and see e->closing. The
     * last one's completion releases the store. */
    for (emb_work_t *job = e->running; job; job = job->next)
        uv_cancel((uv_req_t *)&job->work);
}

const fv__vector_ops_t fv__vector_embedded_ops = {
    .name = "embedded",
    .open = emb_open,
    .submit = emb_submit,
    .close = emb_close,
};
