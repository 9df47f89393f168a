/* stores.h - the data layer of one process: the four stores opened from the configuration.
 *
 * This is the one place that turns database.url, redis.url, vector.url and storage.url into
 * open handles; every module reaches storage through the handles it gives out. Relative paths
 * in the embedded URLs (sqlite:finalverse.db, file:blobs, memory:?snapshot=kv.snap) are taken
 * under general.data_dir, so moving the data is one setting. The embedded vector store
 * persists in the sql store. Migrations are applied to the sql store when it opens.
 *
 * A probe timer asks each open store a cheap question every few seconds; fv_stores_check()
 * reports the last answer, which is what /health shows for each store. */
#ifndef FV_STORE_STORES_H
#define FV_STORE_STORES_H

#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "store/blob.h"
#include "store/kv.h"
#include "store/sql.h"
#include "store/vector.h"

enum {
    FV_STORE_SQL = 1u << 0,
    FV_STORE_KV = 1u << 1,
    FV_STORE_VECTOR = 1u << 2,
    FV_STORE_BLOB = 1u << 3,
};

typedef struct fv_stores fv_stores_t;

/* rc 0: everything asked for is open and migrated. rc < 0: err says which store and why; the
 * handle still has to be closed. */
typedef void (*fv_stores_open_cb)(fv_stores_t *s, int rc, const fv_error_t *err, void *data);

/* Opens the stores in kinds (FV_STORE_* bits; an embedded vector store brings the sql store
 * with it). cfg is borrowed for the handle's life. 0: cb runs once, later. <0: cb never runs,
 * *out is NULL. */
FV_MUST_USE int fv_stores_open(uv_loop_t *loop, const fv_config_t *cfg, unsigned kinds,
                               fv_stores_t **out, fv_stores_open_cb cb, void *data);

/* Open handles, or NULL for a store that was not asked for. Owned by s. */
fv_sql_t *fv_stores_sql(const fv_stores_t *s);
fv_kv_t *fv_stores_kv(const fv_stores_t *s);
fv_vector_t *fv_stores_vector(const fv_stores_t *s);
fv_blob_t *fv_stores_blob(const fv_stores_t *s);

/* The last probe of one store (a single FV_STORE_* bit): 0 when it answered, else its error
 * code; msg gets a sentence either way ("sqlite: ok", "postgres: backend unavailable ..."). */
int fv_stores_check(const fv_stores_t *s, unsigned kind, char *msg, size_t msg_len);

/* Resolves an embedded URL's relative path under data_dir into out ("sqlite:x.db" ->
 * "sqlite:./data/x.db"); other URLs are copied as they are. FV_ETOOBIG when out is short. */
FV_MUST_USE int fv_stores_resolve_url(const char *url, const char *data_dir, char *out,
                                      size_t out_len);

/* Closes every open store (pending requests end with FV_ECANCELED), then cb(data) from the
 * loop; the handle is freed after. NULL-safe; only the first call counts. */
void fv_stores_close(fv_stores_t *s, void (*cb)(void *data), void *data);

#endif
