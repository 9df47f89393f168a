/* blob_internal.h - what blob.c shares with its backends (blob_fs.c, blob_s3.c) and the SigV4
 * presigner (blob_sigv4.c): the handle and writer layouts and the ops table. Not for services. */
#ifndef FV_STORE_BLOB_INTERNAL_H
#define FV_STORE_BLOB_INTERNAL_H

#include <sodium.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/defer.h"
#include "store/blob.h"

typedef struct fv_blob_ops {
    const char *name;
    /* rest: the URL after "file:" or "s3://". Sets bs->impl. */
    int (*open)(fv_blob_t *bs, const char *rest, const fv_blob_opts_t *opts, fv_error_t *err);
    /* Starts cancelling; calls fv__blob_backend_closed(bs) from the loop when the backend holds
     * no more libuv handles. */
    void (*close)(fv_blob_t *bs);
    /* Allocates a writer of the backend's size with the common part zeroed; blob.c fills it. */
    int (*put_begin)(fv_blob_t *bs, const char *key, fv_blob_writer_t **out, fv_error_t *err);
    int (*put_write)(fv_blob_writer_t *w, const void *data, size_t len);
    int (*put_finish)(fv_blob_writer_t *w);
    void (*put_abort)(fv_blob_writer_t *w);
    int (*get)(fv_blob_t *bs, const char *key, uint64_t start, uint64_t len, fv_blob_get_cb cb,
               void *data);
    int (*head)(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data);
    int (*del)(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data);
    int (*list)(fv_blob_t *bs, const char *prefix, size_t max, const char *cursor,
                fv_blob_list_cb cb, void *data);
    int (*presign_get)(fv_blob_t *bs, const char *key, uint32_t expires_s, int64_t now_s,
                       char **url_out, fv_error_t *err);
    int (*presign_verify)(fv_blob_t *bs, const char *url, int64_t now_s, char **key_out,
                          fv_error_t *err);
} fv_blob_ops_t;

struct fv_blob {
    uv_loop_t *loop;
    const fv_blob_ops_t *ops;
    void *impl;
    size_t max_object_bytes;
    int closing;
    int backend_closed;
    unsigned pending;            /* requests whose callback has not run yet */
    unsigned writers;            /* writers not yet released */
    fv_defer_queue_t defer;      /* fv__blob_defer() calls; its close ends the handle's */
    fv_blob_close_cb close_cb;
    void *close_data;
};

enum {
    FV__BLOB_W_OPEN,
    FV__BLOB_W_WRITING,          /* a write is pending */
    FV__BLOB_W_FINISHING,
    FV__BLOB_W_DEAD,             /* failed (dead_rc): only finish or abort are left */
};

/* The common head of every backend's writer. Backends report through the fv__blob_writer_*
 * helpers, which run the user's callback. */
struct fv_blob_writer {
    fv_blob_t *bs;
    char *key;
    char *content_type;          /* "" when none */
    uint64_t size;
    crypto_hash_sha256_state sha;
    int state;
    int dead_rc;
    int aborted;                 /* abort called while a backend step was running */
    fv_blob_write_cb write_cb;
    void *write_data;
    fv_blob_done_cb finish_cb;
    void *finish_data;
};

/* Request accounting: begin when a request is accepted, end after its callback returned. The
 * last end of a closing handle frees it. */
void fv__blob_req_begin(fv_blob_t *bs);
void fv__blob_req_end(fv_blob_t *bs);
void fv__blob_backend_closed(fv_blob_t *bs);

/* Runs fn(arg) from the loop on a later turn (for answers known at once). */
void fv__blob_defer(fv_blob_t *bs, void (*fn)(void *arg), void *arg);

/* Backend reports for a writer. write_done: the pending write ended with rc (the writer turns
 * DEAD when rc < 0). finish_done: the commit ended; meta when rc == 0; after the callback
 * blob.c calls the backend's put_abort to release the writer. put_abort must work in every
 * state: drop uncommitted data (off the loop if it must), then call fv__blob_writer_release. */
void fv__blob_write_done(fv_blob_writer_t *w, int rc);
void fv__blob_finish_done(fv_blob_writer_t *w, int rc, const fv_blob_meta_t *meta);
/* Frees the common part; backends call it from their release path. */
void fv__blob_writer_release(fv_blob_writer_t *w);

/* Hex of a 32-byte digest into out[65]. */
void fv__blob_hex(const unsigned char *bin, size_t len, char *out);

/* Percent-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash) into out. */
int fv__blob_uri_encode(fv_buf_t *out, const char *s, size_t len, int keep_slash);

/* SigV4 query-string presigning of a GET (blob_sigv4.c). host is "name[:port]" exactly as the
 * Host header will carry it; path is the already URI-encoded absolute path; t is the signing
 * time. Appends "scheme://host/path?X-Amz-...&X-Amz-Signature=..." to out. */
int fv__s3_presign(fv_buf_t *out, const char *scheme, const char *host, const char *path,
                   const char *access_key, const char *secret_key, const char *region,
                   time_t t, uint32_t expires_s);

/* The ListObjectsV2 answer body scanned into a page (blob_s3.c): Key, Size, ETag of each
 * <Contents>, NextContinuationToken when IsTruncated. 0 and *page (release with
 * fv__s3_list_free), or FV_EPROTO with *page empty. For the fuzz target too. */
int fv__s3_list_parse(fv_slice_t body, fv_blob_list_t *page);
void fv__s3_list_free(fv_blob_list_t *page);

extern const fv_blob_ops_t fv__blob_fs_ops;
extern const fv_blob_ops_t fv__blob_s3_ops;

#endif
