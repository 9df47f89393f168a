/* vector_index.h - one in-memory collection of fixed-dimension float vectors with JSON
 * payloads: upsert, delete, get and exact top-k search (cosine or dot) with a Qdrant-like
 * payload filter. Pure: no I/O, no loop, no locking; the caller serialises mutations against
 * searches (a search only reads, so several may run at once on different threads as long as
 * nothing mutates meanwhile).
 *
 * Ids are strings of 1..FV_VECTOR_MAX_ID_LEN bytes without control characters; an unsigned
 * integer id is its decimal string. Cosine collections store normalised vectors so the score
 * is a plain dot product; scores are returned best (largest) first, ties broken by id. */
#ifndef FV_STORE_VECTOR_INDEX_H
#define FV_STORE_VECTOR_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define FV_VECTOR_MAX_DIM 4096
#define FV_VECTOR_MAX_ID_LEN 128
#define FV_VECTOR_MAX_NAME_LEN 64   /* collection names: [A-Za-z0-9_-], 1..64 bytes */
#define FV_VECTOR_MAX_K 10000
#define FV_VECTOR_MAX_FILTER_DEPTH 8

typedef enum fv_vector_metric {
    FV_VECTOR_COSINE = 0,
    FV_VECTOR_DOT = 1,
} fv_vector_metric_t;

/* "cosine" / "dot". */
const char *fv_vector_metric_name(fv_vector_metric_t m);

typedef struct fv_vector_index fv_vector_index_t;

/* One search result: slot is the point's position, valid until the next mutation. */
typedef struct fv_vector_index_hit {
    uint32_t slot;
    float score;
} fv_vector_index_hit_t;

/* Checks a collection name (1..64 bytes of [A-Za-z0-9_-]); FV_EINVAL with a message. */
int fv_vector_check_name(const char *name, fv_error_t *err);
/* Checks an id; FV_EINVAL with a message naming the problem. */
int fv_vector_check_id(const char *id, fv_error_t *err);
/* Checks a dimension against 1..FV_VECTOR_MAX_DIM; FV_EINVAL with a message. */
int fv_vector_check_dim(uint32_t dim, fv_error_t *err);
/* Checks a filter's shape (must / must_not / should of conditions: {"key", "match": {"value"
 * | "any"}}, {"key", "range": {gt, gte, lt, lte}} or a nested filter). NULL and JSON null
 * mean "no filter" and pass. FV_EINVAL with a message saying where the problem is. */
int fv_vector_filter_check(const json_t *filter, fv_error_t *err);
/* True when payload (an object or NULL) satisfies a filter that passed the check. */
bool fv_vector_filter_match(const json_t *filter, const json_t *payload);

/* A new empty collection. name is copied (used in messages); FV_EINVAL for a bad name or dim. */
FV_MUST_USE int fv_vector_index_new(const char *name, uint32_t dim, fv_vector_metric_t metric,
                                    fv_vector_index_t **out, fv_error_t *err);
/* NULL-safe; drops the payload references. */
void fv_vector_index_free(fv_vector_index_t *ix);

const char *fv_vector_index_name(const fv_vector_index_t *ix);
uint32_t fv_vector_index_dim(const fv_vector_index_t *ix);
fv_vector_metric_t fv_vector_index_metric(const fv_vector_index_t *ix);
size_t fv_vector_index_count(const fv_vector_index_t *ix);

/* Validates one point without storing it: id, dim == the collection's (the message reads
 * "vector has 3 dimensions, collection 'x' expects 384"), finite components, non-zero for
 * cosine, payload an object or NULL. */
int fv_vector_index_check_point(const fv_vector_index_t *ix, const char *id, const float *vec,
                                uint32_t dim, const json_t *payload, fv_error_t *err);

/* Inserts or replaces the point with this id. The vector is copied (normalised for cosine);
 * the index takes its own reference to payload (NULL = no payload), which nobody may modify
 * afterwards. 0, FV_EINVAL (message in err, nothing changed) or FV_ENOMEM. */
FV_MUST_USE int fv_vector_index_upsert(fv_vector_index_t *ix, const char *id, const float *vec,
                                       uint32_t dim, json_t *payload, fv_error_t *err);

/* 0 when removed, FV_ENOENT when no point has this id. Moves the last point into the hole. */
int fv_vector_index_delete(fv_vector_index_t *ix, const char *id);

/* Slot of id, or -1. */
int64_t fv_vector_index_find(const fv_vector_index_t *ix, const char *id);
/* Accessors by slot (slot < count): the id, the stored (normalised for cosine) vector of dim
 * floats, and the payload (NULL when none). Borrowed until the next mutation. */
const char *fv_vector_index_id(const fv_vector_index_t *ix, uint32_t slot);
const float *fv_vector_index_vector(const fv_vector_index_t *ix, uint32_t slot);
json_t *fv_vector_index_payload(const fv_vector_index_t *ix, uint32_t slot);

/* Exact top-k: fills out[0..*found) best first (score descending, then id ascending) with at
 * most k hits among points whose payload matches filter (NULL = all). The query is
 * normalised for cosine. out holds k entries. FV_EINVAL (message in err) for a wrong
 * dimension, non-finite query, k outside 1..FV_VECTOR_MAX_K or a bad filter; FV_ENOMEM. */
FV_MUST_USE int fv_vector_index_search(const fv_vector_index_t *ix, const float *query,
                                       uint32_t dim, size_t k, const json_t *filter,
                                       fv_vector_index_hit_t *out, size_t *found,
                                       fv_error_t *err);

/* The dot product kernel the search uses (AVX2+FMA where the CPU has it), exposed for tests
 * and benchmarks: n is any length. */
float fv_vector_dot(const float *a, const float *b, size_t n);

#endif
