/* vector_internal.h - what vector.c shares with its backends (vector_embedded.c,
 * vector_qdrant.c): the handle, the request every operation becomes, and the ops table.
 *
 * vector.c validates what it can without the collection (names, ids, finite numbers,
 * payload shape and size, k, the filter), copies the inputs into a request and hands it to
 * the backend's submit(). The backend finishes every request it was handed exactly once with
 * fv__vector_finish() (from the loop thread, even inside submit(): delivery is deferred to the
 * next loop turn, so no callback ever runs inside the call that started it). */
#ifndef FV_STORE_VECTOR_INTERNAL_H
#define FV_STORE_VECTOR_INTERNAL_H

#include <stdbool.h>

#include "core/defer.h"
#include "store/vector.h"

typedef enum fv__vector_op {
    FV__VECTOR_CREATE,
    FV__VECTOR_DROP,
    FV__VECTOR_UPSERT,
    FV__VECTOR_DELETE,
    FV__VECTOR_SEARCH,
} fv__vector_op_t;

typedef struct fv__vector_req fv__vector_req_t;

struct fv__vector_req {
    fv__vector_req_t *next;        /* in whichever one backend queue holds it */
    fv_defer_t defer;              /* finished: delivered from v->defer */
    fv_vector_t *v;
    fv__vector_op_t op;
    char collection[FV_VECTOR_MAX_NAME_LEN + 1];
    uint32_t dim;                  /* create; upsert and search: of every vector given */
    fv_vector_metric_t metric;     /* create */
    size_t count;                  /* upsert, delete: points */
    char **ids;                    /* upsert, delete: count owned strings */
    float *vectors;                /* upsert: count * dim; search: the query (dim) */
    json_t **payloads;             /* upsert: count owned copies, NULL entries = none */
    size_t k;                      /* search */
    json_t *filter;                /* search: owned copy or NULL */

    int rc;                        /* outcome, set before fv__vector_finish() */
    fv_error_t err;
    fv_vector_hit_t *hits;         /* search: nhits results; ids and payloads owned */
    size_t nhits;

    fv_vector_done_cb done_cb;
    fv_vector_search_cb search_cb;
    void *data;
    void *backend;                 /* the backend's per-request state */
};

typedef struct fv__vector_ops {
    const char *name;
    /* Parses the URL and sets v->backend; finishes opening with fv__vector_opened() now or
     * later. <0 with err: nothing to undo, the open fails at once. */
    int (*open)(fv_vector_t *v, const char *url, fv_error_t *err);
    /* Takes the request; finishes it exactly once. */
    void (*submit)(fv_vector_t *v, fv__vector_req_t *req);
    /* Finishes every pending request with FV_ECANCELED, releases v->backend, then calls
     * fv__vector_closed() (now or later). */
    void (*close)(fv_vector_t *v);
} fv__vector_ops_t;

extern const fv__vector_ops_t fv__vector_embedded_ops;
extern const fv__vector_ops_t fv__vector_qdrant_ops;

typedef enum fv__vector_state {
    FV__VECTOR_OPENING,
    FV__VECTOR_OPEN,
    FV__VECTOR_CLOSING,
} fv__vector_state_t;

struct fv_vector {
    uv_loop_t *loop;
    const fv__vector_ops_t *ops;
    void *backend;
    fv_vector_opts_t opts;         /* api_key points at our own copy */
    fv__vector_state_t state;
    fv_defer_queue_t defer;        /* delivers finished requests and the open result */
    fv_defer_t open_defer;         /* queued when the backend reports the open */
    int open_rc;
    fv_error_t open_err;
    fv_vector_open_cb open_cb;
    void *open_data;
    bool backend_closed;
    fv_vector_close_cb close_cb;
    void *close_data;
};

/* The backend's verdict on opening. */
void fv__vector_opened(fv_vector_t *v, int rc, const fv_error_t *err);
/* Queues req's callback (req->rc, req->err, req->hits set); req is freed after it runs. */
void fv__vector_finish(fv__vector_req_t *req);
/* Shorthand: sets rc and a message and finishes. */
void fv__vector_fail(fv__vector_req_t *req, int rc, const char *fmt, ...) FV_PRINTF(3, 4);
/* The backend has released everything. */
void fv__vector_closed(fv_vector_t *v);
/* Sizes req->hits for n results (zeroed); 0 or FV_ENOMEM. */
int fv__vector_alloc_hits(fv__vector_req_t *req, size_t n);

#endif
