/* vector_qdrant.c - placeholder until the Qdrant backend lands. */
#include "store/vector_internal.h"

static int q_open(fv_vector_t *v, const char *url, fv_error_t *err)
{
    return fv_error_set(err, FV_EINVAL, "qdrant backend not built");
}
static void q_submit(fv_vector_t *v, fv__vector_req_t *req) {}
static void q_close(fv_vector_t *v) {}
const fv__vector_ops_t fv__vector_qdrant_ops = {"qdrant", q_open, q_submit, q_close};
