/* vector.c - the vector store's interface: the URL switch, validation of everything that
 * does not need the collection, copying inputs into requests, and deferred delivery of every
 * callback through one fv_defer_queue_t. The backends (vector_embedded.c, vector_qdrant.c) do
 * the work; the in-memory search itself is vector_index.c. */
#include "store/vector.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/vector_internal.h"

void fv_vector_opts_default(fv_vector_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 10000;
    o->max_batch = 1024;
    o->max_payload_bytes = 65536;
    o->offload_floats = 65536;
}

const char *fv_vector_backend(const fv_vector_t *v)
{
    return v->ops->name;
}

/* --- delivery -------------------------------------------------------------------------- */

static void req_free(fv__vector_req_t *req)
{
    for (size_t i = 0; req->ids && i < req->count; i++)
        fv_free(req->ids[i]);
    for (size_t i = 0; req->payloads && i < req->count; i++)
        json_decref(req->payloads[i]);
    fv_free(req->ids);
    fv_free(req->payloads);
    fv_free(req->vectors);
    json_decref(req->filter);
    for (size_t i = 0; i < req->nhits; i++) {
        fv_free((char *)req->hits[i].id);
        json_decref((json_t *)req->hits[i].payload);
    }
    fv_free(req->hits);
    fv_free(req);
}

static void on_defer_closed(fv_defer_queue_t *q)
{
    fv_vector_t *v = q->data;
    fv_vector_close_cb cb = v->close_cb;
    void *data = v->close_data;
    fv_free((char *)v->opts.api_key);
    fv_free(v);
    if (cb)
        cb(data);
}

static void deliver(fv__vector_req_t *req)
{
    const fv_error_t *err = req->rc < 0 ? &req->err : NULL;
    if (req->op == FV__VECTOR_SEARCH)
        req->search_cb(req->rc, req->rc < 0 ? NULL : req->hits, req->rc < 0 ? 0 : req->nhits,
                       err, req->data);
    else
        req->done_cb(req->rc, err, req->data);
    req_free(req);
}

/* After every turn of the queue, which runs only what was queued when the turn started:
 * callbacks may submit more, which go to the next turn. */
static void maybe_finish_close(fv_defer_queue_t *q)
{
    fv_vector_t *v = q->data;
    if (v->state == FV__VECTOR_CLOSING && v->backend_closed && fv_defer_queue_empty(q))
        fv_defer_queue_close(q, on_defer_closed);
}

static void on_delivery(fv_defer_t *d)
{
    deliver(FV_DEFER_OWNER(d, fv__vector_req_t, defer));
}

static void on_open_delivery(fv_defer_t *d)
{
    fv_vector_t *v = FV_DEFER_OWNER(d, fv_vector_t, open_defer);
    if (v->open_rc < 0) {
        /* The caller never gets the handle: close it ourselves, quietly. */
        v->open_cb(v->open_rc, NULL, &v->open_err, v->open_data);
        fv_vector_close(v, NULL, NULL);
    } else {
        v->state = FV__VECTOR_OPEN;
        v->open_cb(0, v, NULL, v->open_data);
    }
}

void fv__vector_opened(fv_vector_t *v, int rc, const fv_error_t *err)
{
    v->open_rc = rc;
    if (rc < 0) {
        if (err)
            v->open_err = *err;
        else
            fv_error_set(&v->open_err, rc, "vector store failed to open: %s", fv_strerror(rc));
    }
    fv_defer_push(&v->defer, &v->open_defer, on_open_delivery);
}

void fv__vector_finish(fv__vector_req_t *req)
{
    fv_vector_t *v = req->v;
    if (req->rc < 0 && req->err.code == 0)
        fv_error_set(&req->err, req->rc, "%s", fv_strerror(req->rc));
    if (req->rc < 0)
        req->err.code = req->rc;
    fv_defer_push(&v->defer, &req->defer, on_delivery);
}

void fv__vector_fail(fv__vector_req_t *req, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fv_error_setv(&req->err, rc, fmt, ap);
    va_end(ap);
    req->rc = rc;
    fv__vector_finish(req);
}

void fv__vector_closed(fv_vector_t *v)
{
    v->backend_closed = true;
    v->backend = NULL;
    fv_defer_queue_kick(&v->defer);     /* finish the close from the loop */
}

int fv__vector_alloc_hits(fv__vector_req_t *req, size_t n)
{
    req->hits = fv_try_malloc((n ? n : 1) * sizeof(*req->hits));
    if (!req->hits)
        return FV_ENOMEM;
    memset(req->hits, 0, (n ? n : 1) * sizeof(*req->hits));
    return 0;
}

/* --- open and close -------------------------------------------------------------------- */

static const fv__vector_ops_t *pick_backend(const char *url)
{
    if (strncmp(url, "embedded:", 9) == 0)
        return &fv__vector_embedded_ops;
    if (strncmp(url, "qdrant://", 9) == 0 || strncmp(url, "http://", 7) == 0
        || strncmp(url, "https://", 8) == 0)
        return &fv__vector_qdrant_ops;
    return NULL;
}

int fv_vector_open(uv_loop_t *loop, const char *url, const fv_vector_opts_t *opts,
                   fv_vector_open_cb cb, void *data, fv_error_t *err)
{
    if (!loop || !url || !cb)
        return fv_error_set(err, FV_EINVAL, "vector store: loop, url and callback are needed");
    const fv__vector_ops_t *ops = pick_backend(url);
    if (!ops)
        return fv_error_set(err, FV_EINVAL, "vector.url '%.100s': expected embedded:, "
                            "qdrant://host:port or http(s)://host:port", url);
    fv_vector_t *v = fv_calloc(1, sizeof(*v));
    if (opts)
        v->opts = *opts;
    else
        fv_vector_opts_default(&v->opts);
    fv_vector_opts_t d;
    fv_vector_opts_default(&d);
    if (!v->opts.timeout_ms)
        v->opts.timeout_ms = d.timeout_ms;
    if (!v->opts.max_batch)
        v->opts.max_batch = d.max_batch;
    if (!v->opts.max_payload_bytes)
        v->opts.max_payload_bytes = d.max_payload_bytes;
    v->opts.api_key = v->opts.api_key ? fv_strdup(v->opts.api_key) : NULL;
    v->loop = loop;
    v->ops = ops;
    v->state = FV__VECTOR_OPENING;
    v->open_cb = cb;
    v->open_data = data;
    fv_defer_queue_init(loop, &v->defer, maybe_finish_close);
    v->defer.data = v;
    int rc = ops->open(v, url, err);
    if (rc < 0) {                      /* nothing of the backend's to undo */
        v->state = FV__VECTOR_CLOSING;
        v->backend_closed = true;
        fv_defer_queue_close(&v->defer, on_defer_closed);
        return rc;
    }
    return 0;
}

void fv_vector_close(fv_vector_t *v, fv_vector_close_cb cb, void *data)
{
    if (!v || v->state == FV__VECTOR_CLOSING)
        return;
    v->state = FV__VECTOR_CLOSING;
    v->close_cb = cb;
    v->close_data = data;
    v->ops->close(v);                  /* calls fv__vector_closed(), now or later */
}

/* --- requests -------------------------------------------------------------------------- */

static fv__vector_req_t *req_new(fv_vector_t *v, fv__vector_op_t op, const char *collection)
{
    fv__vector_req_t *req = fv_calloc(1, sizeof(*req));
    req->v = v;
    req->op = op;
    if (collection)
        snprintf(req->collection, sizeof(req->collection), "%s", collection);
    return req;
}

/* Refused input still gets its callback (from the loop), so callers have one error path. */
static int submit(fv__vector_req_t *req)
{
    if (req->rc < 0)
        fv__vector_finish(req);
    else
        req->v->ops->submit(req->v, req);
    return 0;
}

static int usable(const fv_vector_t *v, const void *cb)
{
    if (!v || !cb)
        return FV_EINVAL;
    if (v->state != FV__VECTOR_OPEN)
        return FV_ECANCELED;
    return 0;
}

static int check_floats(const float *vec, uint32_t dim, const char *what, fv_error_t *err)
{
    if (dim < 1 || dim > FV_VECTOR_MAX_DIM)
        return fv_error_set(err, FV_EINVAL, "%s has %u dimensions, not in 1..%d", what, dim,
                            FV_VECTOR_MAX_DIM);
    if (!vec)
        return fv_error_set(err, FV_EINVAL, "%s is missing", what);
    for (uint32_t i = 0; i < dim; i++)
        if (!isfinite(vec[i]))
            return fv_error_set(err, FV_EINVAL, "%s component %u is not a finite number",
                                what, i);
    return 0;
}

int fv_vector_create(fv_vector_t *v, const char *collection, uint32_t dim,
                     fv_vector_metric_t metric, fv_vector_done_cb cb, void *data)
{
    int rc = usable(v, cb);
    if (rc < 0)
        return rc;
    fv__vector_req_t *req = req_new(v, FV__VECTOR_CREATE, collection);
    req->done_cb = cb;
    req->data = data;
    req->dim = dim;
    req->metric = metric;
    if ((rc = fv_vector_check_name(collection, &req->err)) < 0
        || (rc = fv_vector_check_dim(dim, &req->err)) < 0)
        req->rc = rc;
    else if (metric != FV_VECTOR_COSINE && metric != FV_VECTOR_DOT)
        req->rc = fv_error_set(&req->err, FV_EINVAL, "unknown distance metric %d", (int)metric);
    return submit(req);
}

int fv_vector_drop(fv_vector_t *v, const char *collection, fv_vector_done_cb cb, void *data)
{
    int rc = usable(v, cb);
    if (rc < 0)
        return rc;
    fv__vector_req_t *req = req_new(v, FV__VECTOR_DROP, collection);
    req->done_cb = cb;
    req->data = data;
    req->rc = fv_vector_check_name(collection, &req->err);
    return submit(req);
}

static int check_batch(fv__vector_req_t *req, const char *collection, size_t count,
                       const void *list)
{
    int rc = fv_vector_check_name(collection, &req->err);
    if (rc < 0)
        return rc;
    if (count < 1 || count > req->v->opts.max_batch || !list)
        return fv_error_set(&req->err, FV_EINVAL, "a batch holds 1..%zu points, not %zu",
                            req->v->opts.max_batch, count);
    return 0;
}

static int copy_point(fv__vector_req_t *req, size_t i, const fv_vector_point_t *p)
{
    fv_error_t *err = &req->err;
    fv_error_t e;
    int rc = fv_vector_check_id(p->id, &e);
    if (rc < 0)
        return fv_error_set(err, rc, "point %zu: %s", i, e.msg);
    char what[160];
    snprintf(what, sizeof(what), "point %zu ('%s'): vector", i, p->id);
    if (p->dim != req->dim)
        return fv_error_set(err, FV_EINVAL, "%s has %u dimensions, point 0 of the batch has %u",
                            what, p->dim, req->dim);
    if ((rc = check_floats(p->vector, p->dim, what, err)) < 0)
        return rc;
    if (p->payload && !json_is_null(p->payload)) {
        if (!json_is_object(p->payload))
            return fv_error_set(err, FV_EINVAL, "point %zu ('%s'): payload must be a JSON "
                                "object", i, p->id);
        if (json_object_get(p->payload, "_id"))
            return fv_error_set(err, FV_EINVAL, "point %zu ('%s'): payload key '_id' is "
                                "reserved", i, p->id);
        char *text = json_dumps(p->payload, JSON_COMPACT);
        size_t len = text ? strlen(text) : 0;
        free(text);                    /* jansson's allocation, not ours */
        if (len > req->v->opts.max_payload_bytes)
            return fv_error_set(err, FV_ETOOBIG, "point %zu ('%s'): payload is %zu bytes, "
                                "over the limit of %zu", i, p->id, len,
                                req->v->opts.max_payload_bytes);
        req->payloads[i] = json_deep_copy(p->payload);
        if (!req->payloads[i])
            return fv_error_set(err, FV_ENOMEM, "out of memory copying a payload");
    }
    req->ids[i] = fv_strdup(p->id);
    memcpy(req->vectors + i * req->dim, p->vector, req->dim * sizeof(float));
    return 0;
}

int fv_vector_upsert(fv_vector_t *v, const char *collection, const fv_vector_point_t *points,
                     size_t count, fv_vector_done_cb cb, void *data)
{
    int rc = usable(v, cb);
    if (rc < 0)
        return rc;
    fv__vector_req_t *req = req_new(v, FV__VECTOR_UPSERT, collection);
    req->done_cb = cb;
    req->data = data;
    if ((rc = check_batch(req, collection, count, points)) < 0) {
        req->rc = rc;
        return submit(req);
    }
    req->dim = points[0].dim;
    if (req->dim < 1 || req->dim > FV_VECTOR_MAX_DIM) {
        req->rc = fv_error_set(&req->err, FV_EINVAL, "point 0: vector has %u dimensions, not "
                               "in 1..%d", req->dim, FV_VECTOR_MAX_DIM);
        return submit(req);
    }
    req->count = count;
    req->ids = fv_calloc(count, sizeof(*req->ids));
    req->payloads = fv_calloc(count, sizeof(*req->payloads));
    req->vectors = fv_try_malloc(count * req->dim * sizeof(float));
    if (!req->vectors) {
        req->rc = fv_error_set(&req->err, FV_ENOMEM, "out of memory copying %zu vectors",
                               count);
        return submit(req);
    }
    for (size_t i = 0; i < count && req->rc == 0; i++)
        req->rc = copy_point(req, i, &points[i]);
    return submit(req);
}

int fv_vector_delete(fv_vector_t *v, const char *collection, const char *const *ids,
                     size_t count, fv_vector_done_cb cb, void *data)
{
    int rc = usable(v, cb);
    if (rc < 0)
        return rc;
    fv__vector_req_t *req = req_new(v, FV__VECTOR_DELETE, collection);
    req->done_cb = cb;
    req->data = data;
    if ((rc = check_batch(req, collection, count, ids)) < 0) {
        req->rc = rc;
        return submit(req);
    }
    req->count = count;
    req->ids = fv_calloc(count, sizeof(*req->ids));
    for (size_t i = 0; i < count; i++) {
        fv_error_t e;
        if ((rc = fv_vector_check_id(ids[i], &e)) < 0) {
            req->rc = fv_error_set(&req->err, rc, "id %zu: %s", i, e.msg);
            break;
        }
        req->ids[i] = fv_strdup(ids[i]);
    }
    return submit(req);
}

int fv_vector_search(fv_vector_t *v, const char *collection, const float *query, uint32_t dim,
                     size_t k, const json_t *filter, fv_vector_search_cb cb, void *data)
{
    int rc = usable(v, cb);
    if (rc < 0)
        return rc;
    fv__vector_req_t *req = req_new(v, FV__VECTOR_SEARCH, collection);
    req->search_cb = cb;
    req->data = data;
    req->dim = dim;
    req->k = k;
    if ((rc = fv_vector_check_name(collection, &req->err)) < 0
        || (rc = check_floats(query, dim, "query vector", &req->err)) < 0
        || (rc = fv_vector_filter_check(filter, &req->err)) < 0) {
        req->rc = rc;
        return submit(req);
    }
    if (k < 1 || k > FV_VECTOR_MAX_K) {
        req->rc = fv_error_set(&req->err, FV_EINVAL, "limit %zu is not in 1..%d", k,
                               FV_VECTOR_MAX_K);
        return submit(req);
    }
    req->vectors = fv_malloc(dim * sizeof(float));
    memcpy(req->vectors, query, dim * sizeof(float));
    if (filter && !json_is_null(filter) && !(req->filter = json_deep_copy(filter)))
        req->rc = fv_error_set(&req->err, FV_ENOMEM, "out of memory copying the filter");
    return submit(req);
}
