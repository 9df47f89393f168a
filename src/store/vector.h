/* vector.h - the vector store: named collections of fixed-dimension float vectors, each point
 * with a string id and a JSON object payload; upsert, delete and exact k-nearest search by
 * cosine or dot product with a Qdrant-like payload filter (see vector_index.h for the filter
 * subset and the id rules).
 *
 * One URL picks the backend:
 *   embedded:                     in-process exact search; persisted through opts.sql when
 *                                 given (a "vectors" table), memory-only otherwise
 *   qdrant://host:6333            Qdrant's REST API over plain HTTP
 *   http://host:6333, https://... Qdrant's REST API at that base URL
 *
 * Everything is asynchronous on one libuv loop. Every request's callback runs exactly once,
 * from the loop, never inside the call that started it: with rc 0 on success or a negative
 * FV_E code and an fv_error_t a person can read (bad input is FV_EINVAL with a precise
 * message, e.g. "vector has 3 dimensions, collection 'lore' expects 384"; an unknown
 * collection FV_ENOENT; a server that is down FV_EBACKEND; a timeout FV_ETIMEDOUT; a closed
 * handle FV_ECANCELED). A call returns 0 when its callback will run, or a negative code when it
 * never will (NULL arguments, handle closing). Inputs are copied at the call. */
#ifndef FV_STORE_VECTOR_H
#define FV_STORE_VECTOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "store/vector_index.h"

typedef struct fv_vector fv_vector_t;
struct fv_sql;

typedef struct fv_vector_opts {
    struct fv_sql *sql;            /* embedded: open sql store to persist in; NULL = memory
                                      only. Borrowed: it must outlive the vector handle */
    uint32_t timeout_ms;           /* qdrant: per request; default 10000 */
    size_t max_batch;              /* points per upsert or delete; default 1024 */
    size_t max_payload_bytes;      /* one point's payload as compact JSON; default 65536 */
    size_t offload_floats;         /* embedded: searches scanning more floats than this run on
                                      the libuv work queue; default 65536 */
    const char *api_key;           /* qdrant: sent as "api-key" when set; copied */
} fv_vector_opts_t;

void fv_vector_opts_default(fv_vector_opts_t *o);

/* v is the open handle (rc 0) or NULL (rc < 0, err says why). */
typedef void (*fv_vector_open_cb)(int rc, fv_vector_t *v, const fv_error_t *err, void *data);
typedef void (*fv_vector_done_cb)(int rc, const fv_error_t *err, void *data);
typedef void (*fv_vector_close_cb)(void *data);

/* One point to upsert; everything is copied at the call. payload NULL = none. */
typedef struct fv_vector_point {
    const char *id;
    const float *vector;
    uint32_t dim;
    const json_t *payload;
} fv_vector_point_t;

/* One search result, valid only during the callback (take a json_incref() to keep the
 * payload). payload is an object, never NULL ({} when the point has none). */
typedef struct fv_vector_hit {
    const char *id;
    float score;
    const json_t *payload;
} fv_vector_hit_t;

/* hits[0..count) best first; NULL/0 on error. */
typedef void (*fv_vector_search_cb)(int rc, const fv_vector_hit_t *hits, size_t count,
                                    const fv_error_t *err, void *data);

/* Opens the store named by url. 0: cb runs once, later, with the handle or an error (an
 * embedded store that cannot load from sql fails here). <0: a malformed URL or options (err
 * says which); cb never runs. opts NULL = defaults. */
FV_MUST_USE int fv_vector_open(uv_loop_t *loop, const char *url, const fv_vector_opts_t *opts,
                               fv_vector_open_cb cb, void *data, fv_error_t *err);

/* Cancels pending requests (their callbacks get FV_ECANCELED) and releases everything; cb
 * runs from the loop once the memory is gone. Only the first call counts. */
void fv_vector_close(fv_vector_t *v, fv_vector_close_cb cb, void *data);

/* "embedded" or "qdrant". */
const char *fv_vector_backend(const fv_vector_t *v);

/* Creates a collection. Idempotent when one exists with the same dim and metric; FV_ECONFLICT
 * when it exists with others. */
FV_MUST_USE int fv_vector_create(fv_vector_t *v, const char *collection, uint32_t dim,
                                 fv_vector_metric_t metric, fv_vector_done_cb cb, void *data);

/* Removes a collection and its points; 0 also when it did not exist. */
FV_MUST_USE int fv_vector_drop(fv_vector_t *v, const char *collection, fv_vector_done_cb cb,
                               void *data);

/* Inserts or replaces 1..max_batch points, all or none: one bad point refuses the batch with
 * a message naming it. */
FV_MUST_USE int fv_vector_upsert(fv_vector_t *v, const char *collection,
                                 const fv_vector_point_t *points, size_t count,
                                 fv_vector_done_cb cb, void *data);

/* Deletes 1..max_batch points by id; ids that do not exist are not an error. */
FV_MUST_USE int fv_vector_delete(fv_vector_t *v, const char *collection,
                                 const char *const *ids, size_t count, fv_vector_done_cb cb,
                                 void *data);

/* The k (1..FV_VECTOR_MAX_K) points nearest to query among those matching filter (NULL = no
 * filter). Scores: cosine similarity, or the dot product. */
FV_MUST_USE int fv_vector_search(fv_vector_t *v, const char *collection, const float *query,
                                 uint32_t dim, size_t k, const json_t *filter,
                                 fv_vector_search_cb cb, void *data);

#endif
