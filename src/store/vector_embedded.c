/* vector_embedded.c - the in-process backend of the vector store ("embedded:"): collections
 * are vector_index.c indexes in memory. Big searches run on the libuv work queue so the loop
 * never blocks; small ones run inline. Requests run in arrival order through one queue: a
 * mutation waits until the searches running on worker threads are done, so a worker only
 * ever reads an index nobody changes (no locks), and a search sees every mutation submitted
 * before it.
 *
 * Persistence through the sql store is not here: without opts.sql the store is memory-only. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/vector_internal.h"

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

static void do_create(emb_t *e, fv__vector_req_t *req)
{
    ssize_t i = coll_find(e, req->collection);
    if (i >= 0) {
        fv_vector_index_t *ix = e->colls[i];
        if (fv_vector_index_dim(ix) == req->dim && fv_vector_index_metric(ix) == req->metric)
            req->rc = 0;
        else
            req->rc = fv_error_set(&req->err, FV_ECONFLICT, "collection '%s' exists with %u "
                                   "dimensions and %s distance, not %u and %s",
                                   req->collection, fv_vector_index_dim(ix),
                                   fv_vector_metric_name(fv_vector_index_metric(ix)), req->dim,
                                   fv_vector_metric_name(req->metric));
        fv__vector_finish(req);
        return;
    }
    fv_vector_index_t *ix;
    if ((req->rc = fv_vector_index_new(req->collection, req->dim, req->metric, &ix,
                                       &req->err)) < 0) {
        fv__vector_finish(req);
        return;
    }
    if (e->ncolls == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->colls = fv_realloc(e->colls, e->cap * sizeof(*e->colls));
    }
    e->colls[e->ncolls++] = ix;
    fv__vector_finish(req);
}

static void do_drop(emb_t *e, fv__vector_req_t *req)
{
    ssize_t i = coll_find(e, req->collection);
    if (i >= 0) {
        fv_vector_index_free(e->colls[i]);
        e->colls[i] = e->colls[--e->ncolls];
    }
    fv__vector_finish(req);
}

static void do_upsert(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return;
    /* Check the whole batch first: all or none. */
    for (size_t i = 0; i < req->count; i++) {
        fv_error_t pe;
        int rc = fv_vector_index_check_point(ix, req->ids[i], req->vectors + i * req->dim,
                                             req->dim, req->payloads[i], &pe);
        if (rc < 0) {
            fv__vector_fail(req, rc, "point %zu ('%s'): %s", i, req->ids[i], pe.msg);
            return;
        }
    }
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

static void do_delete(emb_t *e, fv__vector_req_t *req)
{
    fv_vector_index_t *ix = coll_get(e, req);
    if (!ix)
        return;
    for (size_t i = 0; i < req->count; i++)
        (void)fv_vector_index_delete(ix, req->ids[i]);   /* absent ids are fine */
    fv__vector_finish(req);
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
    while (e->head && !e->closing) {
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

static int emb_open(fv_vector_t *v, const char *url, fv_error_t *err)
{
    if (strcmp(url, "embedded:") != 0 && strcmp(url, "embedded://") != 0)
        return fv_error_set(err, FV_EINVAL, "vector.url '%.100s': the embedded store takes "
                            "no address, write 'embedded:'", url);
    if (v->opts.sql)
        return fv_error_set(err, FV_EINVAL, "vector store: persistence through the sql store "
                            "is not available in this build");
    emb_t *e = fv_calloc(1, sizeof(*e));
    e->v = v;
    v->backend = e;
    fv__vector_opened(v, 0, NULL);
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
