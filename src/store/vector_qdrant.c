/* vector_qdrant.c - the Qdrant backend of the vector store ("qdrant://host:6333",
 * "http(s)://host:6333[/prefix]"): each operation is one or two calls to Qdrant's REST API
 * through net/curl_loop.c, following Qdrant's documented shapes:
 *   PUT    /collections/{c}                       {"vectors":{"size":N,"distance":"Cosine"}}
 *   GET    /collections/{c}                       (dimension and distance, cached per handle)
 *   DELETE /collections/{c}
 *   PUT    /collections/{c}/points?wait=true      {"points":[{"id","vector","payload"}]}
 *   POST   /collections/{c}/points/delete?wait=true {"points":[ids]}
 *   POST   /collections/{c}/points/search         {"vector","limit","filter","with_payload"}
 * Qdrant ids are unsigned integers or UUIDs: a decimal id up to 2^63-1 and a lowercase UUID
 * pass through, any other string maps to a UUID (BLAKE2b of the id, shaped as version 5), and
 * the original id rides in the payload as "_id", removed again from search results.
 *
 * Requests keep their order as in the embedded store: a mutation starts when nothing else of
 * this handle is in flight and a search when no mutation is, so a search sees every mutation
 * submitted before it while searches still overlap each other.
 *
 * Nothing is kept open between calls but curl's connection cache, so a server that went away
 * makes calls fail with FV_EBACKEND and the next call after it is back simply works. */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "net/curl_loop.h"
#include "store/vector_internal.h"

#define QDRANT_MAX_RESPONSE (64u * 1024 * 1024)
#define QDRANT_BASE_MAX 400

typedef struct qcoll {
    char name[FV_VECTOR_MAX_NAME_LEN + 1];
    uint32_t dim;
    fv_vector_metric_t metric;
} qcoll_t;

typedef struct qreq qreq_t;

typedef struct qdrant {
    fv_vector_t *v;
    fv_curl_loop_t *cl;
    char base[QDRANT_BASE_MAX];
    char *auth_header;             /* "api-key: ..." or NULL */
    qcoll_t *colls;                /* what we know of each collection's shape */
    size_t ncolls;
    size_t cap;
    qreq_t *inflight;              /* started, in no particular order */
    size_t nreads;                 /* searches in flight */
    size_t nwrites;                /* anything else in flight (at most 1) */
    qreq_t *wait_head;             /* not yet started, in arrival order */
    qreq_t *wait_tail;
    bool closing;
} qdrant_t;

typedef enum qstage {
    Q_INFO,                        /* GET the collection's shape first */
    Q_MAIN,
    Q_CREATE_CHECK,                /* PUT said "exists": GET and compare */
} qstage_t;

struct qreq {
    qreq_t *next;
    qreq_t *prev;
    qdrant_t *q;
    fv__vector_req_t *req;
    qstage_t stage;
    int attempts;                  /* create: PUT / GET rounds, bounded */
    fv_buf_t body;
    char url[QDRANT_BASE_MAX + 160];
};

static void start(qreq_t *r);
static void begin(qreq_t *r);
static void pump(qdrant_t *q);

/* --- collection shapes ------------------------------------------------------------------ */

static qcoll_t *coll_find(qdrant_t *q, const char *name)
{
    for (size_t i = 0; i < q->ncolls; i++)
        if (strcmp(q->colls[i].name, name) == 0)
            return &q->colls[i];
    return NULL;
}

static void coll_set(qdrant_t *q, const char *name, uint32_t dim, fv_vector_metric_t metric)
{
    qcoll_t *c = coll_find(q, name);
    if (!c) {
        if (q->ncolls == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 8;
            q->colls = fv_realloc(q->colls, q->cap * sizeof(*q->colls));
        }
        c = &q->colls[q->ncolls++];
        snprintf(c->name, sizeof(c->name), "%s", name);
    }
    c->dim = dim;
    c->metric = metric;
}

static void coll_forget(qdrant_t *q, const char *name)
{
    qcoll_t *c = coll_find(q, name);
    if (c)
        *c = q->colls[--q->ncolls];
}

/* --- ids -------------------------------------------------------------------------------- */

static bool is_uint_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 19 || (n > 1 && id[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] < '0' || id[i] > '9')
            return false;
    return n < 19 || strcmp(id, "9223372036854775807") <= 0;   /* jansson integers are int64 */
}

static bool is_uuid(const char *id)
{
    if (strlen(id) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
        if (dash ? id[i] != '-' : !hex)
            return false;
    }
    return true;
}

/* Deterministic: the same id always maps to the same UUID, in every process. */
static void id_to_uuid(const char *id, char out[37])
{
    static const unsigned char key[] = "finalverse vector id namespace";
    unsigned char h[16];
    crypto_generichash(h, sizeof(h), (const unsigned char *)id, strlen(id), key,
                       sizeof(key) - 1);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

/* The JSON for id as Qdrant takes it; *mapped tells whether "_id" must carry the original. */
static int append_id(fv_buf_t *b, const char *id, bool *mapped)
{
    *mapped = false;
    if (is_uint_id(id))
        return fv_buf_append_str(b, id);
    if (is_uuid(id))
        return fv_buf_printf(b, "\"%s\"", id);
    char uuid[37];
    id_to_uuid(id, uuid);
    *mapped = true;
    return fv_buf_printf(b, "\"%s\"", uuid);
}

static int append_json(fv_buf_t *b, const json_t *j)
{
    int rc = fv_json_dump(j, b);
    return rc;
}

static int append_vector(fv_buf_t *b, const float *v, uint32_t dim)
{
    int rc = fv_buf_append(b, "[", 1);
    for (uint32_t i = 0; i < dim && rc == 0; i++)
        rc = fv_buf_printf(b, i ? ",%.9g" : "%.9g", (double)v[i]);
    return rc ? rc : fv_buf_append(b, "]", 1);
}

/* Our filters allow a single condition where Qdrant's schema wants a list: wrap them, at
 * every level, so the server sees its documented shape. */
static json_t *normalise_filter(const json_t *f)
{
    json_t *out = json_object();
    const char *clause;
    json_t *list;
    json_object_foreach((json_t *)f, clause, list) {
        json_t *arr = json_array();
        json_t *one = json_is_object(list) ? list : NULL;
        size_t n = one ? 1 : json_array_size(list);
        for (size_t i = 0; i < n; i++) {
            json_t *c = one ? one : json_array_get(list, i);
            if (json_object_get(c, "key"))
                json_array_append(arr, c);
            else
                json_array_append_new(arr, normalise_filter(c));
        }
        json_object_set_new(out, clause, arr);
    }
    return out;
}

static int append_filter(fv_buf_t *b, const json_t *f)
{
    json_t *n = normalise_filter(f);
    int rc = fv_json_dump(n, b);
    json_decref(n);
    return rc;
}

/* --- bodies ----------------------------------------------------------------------------- */

static int body_create(qreq_t *r)
{
    fv__vector_req_t *req = r->req;
    return fv_buf_printf(&r->body, "{\"vectors\":{\"size\":%u,\"distance\":\"%s\"}}", req->dim,
                         req->metric == FV_VECTOR_DOT ? "Dot" : "Cosine");
}

static int body_upsert(qreq_t *r)
{
    fv__vector_req_t *req = r->req;
    fv_buf_t *b = &r->body;
    int rc = fv_buf_append_str(b, "{\"points\":[");
    for (size_t i = 0; i < req->count && rc == 0; i++) {
        bool mapped;
        rc = fv_buf_append_str(b, i ? ",{\"id\":" : "{\"id\":");
        if (!rc)
            rc = append_id(b, req->ids[i], &mapped);
        if (!rc)
            rc = fv_buf_append_str(b, ",\"vector\":");
        if (!rc)
            rc = append_vector(b, req->vectors + i * req->dim, req->dim);
        if (rc)
            break;
        json_t *payload = req->payloads[i] ? json_incref(req->payloads[i]) : json_object();
        if (mapped)
            json_object_set_new(payload, "_id", json_string(req->ids[i]));
        rc = fv_buf_append_str(b, ",\"payload\":");
        if (!rc)
            rc = append_json(b, payload);
        json_decref(payload);
        if (!rc)
            rc = fv_buf_append(b, "}", 1);
    }
    return rc ? rc : fv_buf_append_str(b, "]}");
}

static int body_delete(qreq_t *r)
{
    fv__vector_req_t *req = r->req;
    int rc = fv_buf_append_str(&r->body, "{\"points\":[");
    for (size_t i = 0; i < req->count && rc == 0; i++) {
        bool mapped;
        if (i)
            rc = fv_buf_append(&r->body, ",", 1);
        if (!rc)
            rc = append_id(&r->body, req->ids[i], &mapped);
    }
    return rc ? rc : fv_buf_append_str(&r->body, "]}");
}

static int body_search(qreq_t *r)
{
    fv__vector_req_t *req = r->req;
    int rc = fv_buf_append_str(&r->body, "{\"vector\":");
    if (!rc)
        rc = append_vector(&r->body, req->vectors, req->dim);
    if (!rc)
        rc = fv_buf_printf(&r->body, ",\"limit\":%zu,\"with_payload\":true", req->k);
    if (!rc && req->filter) {
        rc = fv_buf_append_str(&r->body, ",\"filter\":");
        if (!rc)
            rc = append_filter(&r->body, req->filter);
    }
    return rc ? rc : fv_buf_append(&r->body, "}", 1);
}

/* --- responses -------------------------------------------------------------------------- */

static void qreq_done(qreq_t *r)
{
    qdrant_t *q = r->q;
    if (r->prev)
        r->prev->next = r->next;
    else
        q->inflight = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->req->op == FV__VECTOR_SEARCH)
        q->nreads--;
    else
        q->nwrites--;
    fv_buf_dispose(&r->body);
    fv_free(r);
    if (!q->closing)
        pump(q);
}

static void finish(qreq_t *r, int rc)
{
    r->req->rc = rc;
    fv__vector_finish(r->req);
    qreq_done(r);
}

static void fail(qreq_t *r, int rc, const char *fmt, ...) FV_PRINTF(3, 4);
static void fail(qreq_t *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fv_error_setv(&r->req->err, rc, fmt, ap);
    va_end(ap);
    finish(r, rc);
}

/* Qdrant's error bodies are {"status":{"error":"..."},"time":...}. */
static void fail_http(qreq_t *r, long status, json_t *body)
{
    const char *msg = NULL;
    json_t *st = body ? json_object_get(body, "status") : NULL;
    if (st && json_is_object(st))
        msg = json_string_value(json_object_get(st, "error"));
    int rc = status == 404 ? FV_ENOENT
             : status == 409 ? FV_ECONFLICT
             : status == 401 ? FV_EUNAUTH
             : status == 403 ? FV_EFORBIDDEN
             : status == 400 || status == 422 ? FV_EINVAL
             : status == 413 ? FV_ETOOBIG
             : status >= 500 ? FV_EBACKEND
                             : FV_EPROTO;
    fail(r, rc, "qdrant: collection '%s': HTTP %ld: %s", r->req->collection, status,
         msg ? msg : "no error message");
}

static bool says_exists(json_t *body)
{
    const char *m = json_string_value(json_object_get(json_object_get(body, "status"), "error"));
    return m && strstr(m, "already exists");
}

static int parse_shape(json_t *body, uint32_t *dim, fv_vector_metric_t *metric,
                       const char **dist)
{
    json_t *vec = json_object_get(json_object_get(json_object_get(json_object_get(
        json_object_get(body, "result"), "config"), "params"), "vectors"), "size");
    json_t *d = json_object_get(json_object_get(json_object_get(json_object_get(
        json_object_get(body, "result"), "config"), "params"), "vectors"), "distance");
    if (!json_is_integer(vec) || !json_is_string(d))
        return FV_EPROTO;              /* e.g. named vectors: not ours to use */
    *dim = (uint32_t)json_integer_value(vec);
    *dist = json_string_value(d);
    if (strcmp(*dist, "Cosine") == 0)
        *metric = FV_VECTOR_COSINE;
    else if (strcmp(*dist, "Dot") == 0)
        *metric = FV_VECTOR_DOT;
    else
        return FV_EINVAL;
    return 0;
}

/* The same checks the embedded store makes, so both refuse bad input with one message. */
static int check_against(qreq_t *r, const qcoll_t *c)
{
    fv__vector_req_t *req = r->req;
    const char *what = req->op == FV__VECTOR_SEARCH ? "query vector" : "vector";
    if (req->op == FV__VECTOR_DELETE)
        return 0;
    if (req->dim != c->dim) {
        if (req->op == FV__VECTOR_SEARCH)
            return fv_error_set(&req->err, FV_EINVAL, "%s has %u dimensions, collection '%s' "
                                "expects %u", what, req->dim, c->name, c->dim);
        return fv_error_set(&req->err, FV_EINVAL, "point 0 ('%s'): %s has %u dimensions, "
                            "collection '%s' expects %u", req->ids[0], what, req->dim, c->name,
                            c->dim);
    }
    if (c->metric != FV_VECTOR_COSINE)
        return 0;
    size_t n = req->op == FV__VECTOR_SEARCH ? 1 : req->count;
    for (size_t i = 0; i < n; i++) {
        const float *v = req->vectors + i * req->dim;
        uint32_t j = 0;
        while (j < req->dim && v[j] == 0)
            j++;
        if (j == req->dim)
            return req->op == FV__VECTOR_SEARCH
                       ? fv_error_set(&req->err, FV_EINVAL, "%s is all zeros: no direction "
                                      "for cosine", what)
                       : fv_error_set(&req->err, FV_EINVAL, "point %zu ('%s'): %s is all "
                                      "zeros: no direction for cosine", i, req->ids[i], what);
    }
    return 0;
}

static void on_info(qreq_t *r, long status, json_t *body)
{
    fv__vector_req_t *req = r->req;
    qdrant_t *q = r->q;
    if (status == 404 && req->op == FV__VECTOR_CREATE && r->attempts < 3) {
        r->stage = Q_MAIN;             /* gone again since the PUT: try once more */
        start(r);
        return;
    }
    if (status == 404) {
        fail(r, FV_ENOENT, "collection '%s' does not exist", req->collection);
        return;
    }
    if (status != 200) {
        fail_http(r, status, body);
        return;
    }
    uint32_t dim;
    fv_vector_metric_t metric;
    const char *dist = "";
    int rc = parse_shape(body, &dim, &metric, &dist);
    if (rc == FV_EINVAL) {
        fail(r, FV_EINVAL, "collection '%s' uses %s distance: this store handles Cosine and "
             "Dot", req->collection, dist);
        return;
    }
    if (rc < 0) {
        fail(r, FV_EPROTO, "qdrant: collection '%s': unexpected collection info (named "
             "vectors are not supported)", req->collection);
        return;
    }
    coll_set(q, req->collection, dim, metric);
    if (req->op == FV__VECTOR_CREATE) {
        if (dim == req->dim && metric == req->metric)
            finish(r, 0);
        else
            fail(r, FV_ECONFLICT, "collection '%s' exists with %u dimensions and %s distance, "
                 "not %u and %s", req->collection, dim, fv_vector_metric_name(metric), req->dim,
                 fv_vector_metric_name(req->metric));
        return;
    }
    if ((rc = check_against(r, coll_find(q, req->collection))) < 0) {
        finish(r, rc);
        return;
    }
    r->stage = Q_MAIN;
    start(r);
}

static void on_search_result(qreq_t *r, json_t *body)
{
    fv__vector_req_t *req = r->req;
    json_t *res = json_object_get(body, "result");
    if (!json_is_array(res)) {
        fail(r, FV_EPROTO, "qdrant: search in '%s': response has no result list",
             req->collection);
        return;
    }
    size_t n = json_array_size(res);
    if (fv__vector_alloc_hits(req, n) < 0) {
        fail(r, FV_ENOMEM, "out of memory for %zu results", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *h = json_array_get(res, i);
        json_t *id = json_object_get(h, "id");
        json_t *score = json_object_get(h, "score");
        json_t *payload = json_object_get(h, "payload");
        if (!json_is_number(score) || !(json_is_integer(id) || json_is_string(id))) {
            fail(r, FV_EPROTO, "qdrant: search in '%s': result %zu lacks an id or score",
                 req->collection, i);
            return;
        }
        json_t *p = json_is_object(payload) ? json_copy(payload) : json_object();
        json_t *orig = json_object_get(p, "_id");
        char idbuf[32];
        const char *ids;
        if (json_is_string(orig)) {
            ids = json_string_value(orig);
        } else if (json_is_integer(id)) {
            snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
            ids = idbuf;
        } else {
            ids = json_string_value(id);
        }
        req->hits[i].id = fv_strdup(ids);
        req->hits[i].score = (float)json_number_value(score);
        json_object_del(p, "_id");
        req->hits[i].payload = p;
        req->nhits = i + 1;
    }
    finish(r, 0);
}

static void on_response(int rc, const fv_curl_resp_t *resp, void *data)
{
    qreq_t *r = data;
    fv__vector_req_t *req = r->req;
    qdrant_t *q = r->q;
    if (rc == FV_ECANCELED || q->closing) {
        fail(r, FV_ECANCELED, "vector store closed");
        return;
    }
    if (rc < 0) {
        fail(r, rc, "qdrant at %s: %s", q->base,
             rc == FV_ETIMEDOUT ? "request timed out"
             : rc == FV_EBACKEND ? "server unreachable or connection lost"
                                 : fv_strerror(rc));
        return;
    }
    fv_error_t perr;
    json_t *body = resp->body.len ? fv_json_parse(fv_buf_slice(&resp->body), &perr) : NULL;
    long status = resp->status;
    if (r->stage == Q_INFO || r->stage == Q_CREATE_CHECK) {
        on_info(r, status, body);
        json_decref(body);
        return;
    }
    bool ok = status >= 200 && status < 300;
    switch (req->op) {
    case FV__VECTOR_CREATE:
        if (ok) {
            coll_set(q, req->collection, req->dim, req->metric);
            finish(r, 0);
        } else if ((status == 409 || (status == 400 && body
                    && says_exists(body))) && r->attempts < 3) {
            /* "already exists" (409 on current Qdrant, 400 on older): compare shapes. */
            r->stage = Q_CREATE_CHECK;
            start(r);
        } else {
            fail_http(r, status, body);
        }
        break;
    case FV__VECTOR_DROP:
        coll_forget(q, req->collection);
        if (ok || status == 404)
            finish(r, 0);
        else
            fail_http(r, status, body);
        break;
    case FV__VECTOR_UPSERT:
    case FV__VECTOR_DELETE:
        if (status == 404)
            coll_forget(q, req->collection);
        if (ok)
            finish(r, 0);
        else
            fail_http(r, status, body);
        break;
    case FV__VECTOR_SEARCH:
        if (status == 404)
            coll_forget(q, req->collection);
        if (!ok)
            fail_http(r, status, body);
        else if (!body)
            fail(r, FV_EPROTO, "qdrant: search in '%s': response is not JSON",
                 req->collection);
        else
            on_search_result(r, body);
        break;
    }
    json_decref(body);
}

/* --- requests --------------------------------------------------------------------------- */

static void start(qreq_t *r)
{
    qdrant_t *q = r->q;
    fv__vector_req_t *req = r->req;
    const char *method = "GET";
    const char *path = "";
    int rc = 0;
    r->attempts++;
    fv_buf_reset(&r->body);
    if (r->stage == Q_MAIN) {
        switch (req->op) {
        case FV__VECTOR_CREATE: method = "PUT"; rc = body_create(r); break;
        case FV__VECTOR_DROP: method = "DELETE"; break;
        case FV__VECTOR_UPSERT: method = "PUT"; path = "/points?wait=true";
            rc = body_upsert(r); break;
        case FV__VECTOR_DELETE: method = "POST"; path = "/points/delete?wait=true";
            rc = body_delete(r); break;
        case FV__VECTOR_SEARCH: method = "POST"; path = "/points/search";
            rc = body_search(r); break;
        }
    }
    if (rc < 0) {
        fail(r, rc, "request for collection '%s' too large to build", req->collection);
        return;
    }
    snprintf(r->url, sizeof(r->url), "%s/collections/%s%s", q->base, req->collection, path);
    const char *headers[2] = {"Content-Type: application/json", q->auth_header};
    fv_curl_req_t cr = {
        .method = method,
        .url = r->url,
        .headers = headers,
        .header_count = q->auth_header ? 2 : 1,
        .body = r->body.ptr,
        .body_len = r->body.len,
        .max_response_bytes = QDRANT_MAX_RESPONSE,
        .timeout_ms = q->v->opts.timeout_ms,
        .connect_timeout_ms = q->v->opts.timeout_ms < 5000 ? q->v->opts.timeout_ms : 5000,
    };
    if ((rc = fv_curl_request(q->cl, &cr, on_response, r)) < 0)
        fail(r, rc, "qdrant at %s: request not started: %s", q->base, fv_strerror(rc));
}

static void pump(qdrant_t *q)
{
    while (q->wait_head) {
        qreq_t *r = q->wait_head;
        bool read = r->req->op == FV__VECTOR_SEARCH;
        if (q->nwrites || (!read && q->nreads))
            return;
        q->wait_head = r->next;
        if (!q->wait_head)
            q->wait_tail = NULL;
        r->next = q->inflight;
        r->prev = NULL;
        if (q->inflight)
            q->inflight->prev = r;
        q->inflight = r;
        if (read)
            q->nreads++;
        else
            q->nwrites++;
        begin(r);
    }
}

static void q_submit(fv_vector_t *v, fv__vector_req_t *req)
{
    qdrant_t *q = v->backend;
    qreq_t *r = fv_calloc(1, sizeof(*r));
    r->q = q;
    r->req = req;
    fv_buf_init(&r->body, 0);          /* bounded by max_batch * (max dim + max payload) */
    if (q->wait_tail)
        q->wait_tail->next = r;
    else
        q->wait_head = r;
    q->wait_tail = r;
    pump(q);
}

/* The first call of a request: learn the collection's shape first when the request needs it
 * and it is not known yet. */
static void begin(qreq_t *r)
{
    qdrant_t *q = r->q;
    fv__vector_req_t *req = r->req;
    r->stage = Q_MAIN;
    if (req->op == FV__VECTOR_UPSERT || req->op == FV__VECTOR_SEARCH) {
        qcoll_t *c = coll_find(q, req->collection);
        if (!c) {
            r->stage = Q_INFO;         /* learn the shape once, then check locally */
        } else {
            int rc = check_against(r, c);
            if (rc < 0) {
                finish(r, rc);
                return;
            }
        }
    }
    start(r);
}

/* qdrant://host:port[/prefix] is http://; http(s):// is taken as it is. */
static int q_open(fv_vector_t *v, const char *url, fv_error_t *err)
{
    const char *rest;
    const char *scheme;
    if (strncmp(url, "qdrant://", 9) == 0) {
        scheme = "http://";
        rest = url + 9;
    } else if (strncmp(url, "http://", 7) == 0) {
        scheme = "http://";
        rest = url + 7;
    } else {
        scheme = "https://";
        rest = url + 8;
    }
    size_t n = strlen(rest);
    while (n && rest[n - 1] == '/')
        n--;
    if (n == 0 || rest[0] == '/' || rest[0] == ':')
        return fv_error_set(err, FV_EINVAL, "vector.url '%.100s': no host", url);
    if (n + strlen(scheme) >= QDRANT_BASE_MAX)
        return fv_error_set(err, FV_EINVAL, "vector.url: longer than %d bytes",
                            QDRANT_BASE_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)rest[i]) || rest[i] == '?' || rest[i] == '#')
            return fv_error_set(err, FV_EINVAL, "vector.url '%.100s': unexpected '%c'", url,
                                rest[i]);
    if (sodium_init() < 0)
        return fv_error_set(err, FV_EINTERNAL, "libsodium failed to initialise");
    qdrant_t *q = fv_calloc(1, sizeof(*q));
    q->v = v;
    snprintf(q->base, sizeof(q->base), "%s%.*s", scheme, (int)n, rest);
    /* Only the address part is logged; an api key never is. */
    if (v->opts.api_key) {
        size_t len = strlen(v->opts.api_key) + 10;
        q->auth_header = fv_malloc(len);
        snprintf(q->auth_header, len, "api-key: %s", v->opts.api_key);
    }
    int rc = fv_curl_loop_new(v->loop, &q->cl);
    if (rc < 0) {
        fv_free(q->auth_header);
        fv_free(q);
        return fv_error_set(err, rc, "vector store: cannot start libcurl");
    }
    v->backend = q;
    fv__vector_opened(v, 0, NULL);
    return 0;
}

static void on_curl_closed(void *data)
{
    qdrant_t *q = data;
    fv_vector_t *v = q->v;
    fv_free(q->colls);
    fv_free(q->auth_header);
    fv_free(q);
    fv__vector_closed(v);
}

/* Every transfer in flight comes back through on_response with FV_ECANCELED first. */
static void q_close(fv_vector_t *v)
{
    qdrant_t *q = v->backend;
    q->closing = true;
    while (q->wait_head) {
        qreq_t *r = q->wait_head;
        q->wait_head = r->next;
        fv__vector_fail(r->req, FV_ECANCELED, "vector store closed");
        fv_buf_dispose(&r->body);
        fv_free(r);
    }
    q->wait_tail = NULL;
    fv_curl_loop_close(q->cl, on_curl_closed, q);
}

const fv__vector_ops_t fv__vector_qdrant_ops = {
    .name = "qdrant",
    .open = q_open,
    .submit = q_submit,
    .close = q_close,
};
