/* blob.h - the blob store: named byte objects (assets: meshes, textures, audio) in a directory
 * tree or an S3-compatible server, chosen by URL.
 *
 *   file:./data/blobs                                    directory tree (embedded default)
 *   s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1    S3, MinIO (path-style)
 *   s3://bucket?region=eu-west-1                         AWS (https://s3.REGION.amazonaws.com)
 *
 * Every request is asynchronous on the handle's libuv loop: its callback runs exactly once, from
 * the loop, never inside the call that started it, also on error (rc < 0) and when the handle is
 * closed first (FV_ECANCELED). A request call returns 0 when its callback will run, or a negative
 * code when it never will (bad key: FV_EINVAL with err filled for a person).
 *
 * Keys: 1..1024 bytes of UTF-8, no NUL or control characters, no backslash, no leading '/', no
 * empty, "." or ".." segment. Errors in callbacks: FV_ENOENT (no such key), FV_ETOOBIG (over
 * max_object_bytes), FV_EINVAL (range past the end), FV_EBACKEND (server unreachable or 5xx),
 * FV_ETIMEDOUT, FV_EUNAUTH / FV_EFORBIDDEN (credentials refused), FV_EPROTO (answer not
 * understood), FV_ECONFLICT (fs: a key's directory part is an object, or the reverse). */
#ifndef FV_STORE_BLOB_H
#define FV_STORE_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/slice.h"

#define FV_BLOB_MAX_KEY_LEN 1024
#define FV_BLOB_DEFAULT_MAX_OBJECT_BYTES (64u * 1024 * 1024)

typedef struct fv_blob fv_blob_t;
typedef struct fv_blob_writer fv_blob_writer_t;

typedef struct fv_blob_opts {
    size_t max_object_bytes;     /* 0 = FV_BLOB_DEFAULT_MAX_OBJECT_BYTES */
    const char *access_key;      /* s3; NULL = $AWS_ACCESS_KEY_ID read at open */
    const char *secret_key;      /* s3; NULL = $AWS_SECRET_ACCESS_KEY read at open */
    const char *region;          /* s3; NULL = the URL's region=, else $AWS_REGION, else
                                  * us-east-1 */
    const char *presign_secret;  /* file: key for presigned tokens; NULL = random per open (tokens
                                  * then die with the handle) */
    uint32_t timeout_ms;         /* s3: per HTTP request; 0 = 30000 */
} fv_blob_opts_t;

/* What a put, head or get learns about an object. Valid only during the callback. */
typedef struct fv_blob_meta {
    uint64_t size;               /* whole object, also for a range get */
    char sha256[65];             /* lowercase hex; "" when the backend does not know it */
    char etag[80];               /* without quotes */
    char content_type[128];      /* "" when none was given */
} fv_blob_meta_t;

typedef void (*fv_blob_close_cb)(void *data);
/* put, head, delete: meta is NULL when rc < 0 (and for delete). */
typedef void (*fv_blob_done_cb)(int rc, const fv_blob_meta_t *meta, void *data);
/* get: body holds the requested bytes (borrowed: copy what must outlive the callback). */
typedef void (*fv_blob_get_cb)(int rc, const fv_blob_meta_t *meta, fv_slice_t body, void *data);
typedef void (*fv_blob_write_cb)(int rc, void *data);

typedef struct fv_blob_entry {
    const char *key;
    uint64_t size;
    const char *etag;            /* "" when unknown */
} fv_blob_entry_t;

/* A page of a listing, valid only during the callback. next_cursor is NULL on the last page. */
typedef struct fv_blob_list {
    const fv_blob_entry_t *entries;
    size_t count;
    const char *next_cursor;
} fv_blob_list_t;
typedef void (*fv_blob_list_cb)(int rc, const fv_blob_list_t *page, void *data);

/* Opens a store from its URL (see the top of this file). Synchronous: nothing is contacted yet
 * (the s3 backend creates its bucket in the background and again whenever a request finds it
 * missing). 0 and *out, or FV_EINVAL / FV_ECONFIG with err filled. opts may be NULL; its strings
 * are copied. */
FV_MUST_USE int fv_blob_open(uv_loop_t *loop, const char *url, const fv_blob_opts_t *opts,
                             fv_blob_t **out, fv_error_t *err);

/* Cancels pending requests (their callbacks run with FV_ECANCELED; an fs write already running
 * on a worker thread finishes first, and a put reported cancelled may or may not have been
 * stored), then runs cb and frees the handle. Open writers must have been finished or aborted
 * first or get FV_ECANCELED on their next call. NULL-safe; only the first call counts. */
void fv_blob_close(fv_blob_t *bs, fv_blob_close_cb cb, void *data);

/* "fs" or "s3". */
const char *fv_blob_backend(const fv_blob_t *bs);

/* 0 when key is valid, else FV_EINVAL with err naming the problem. */
FV_MUST_USE int fv_blob_key_check(fv_slice_t key, fv_error_t *err);

/* ---- streaming put ----
 * begin (sync) -> write* -> finish, or abort at any point. One write at a time: data is borrowed
 * until its callback. SHA-256 is computed on the way. Nothing is visible under key until finish
 * succeeds; a failed or aborted put leaves nothing behind (fs: the temp file is removed). Past
 * max_object_bytes the write's callback gets FV_ETOOBIG and the writer is dead: finish then
 * reports FV_ETOOBIG too. The writer is freed after finish's callback, or by abort. */
FV_MUST_USE int fv_blob_put_begin(fv_blob_t *bs, const char *key, const char *content_type,
                                  fv_blob_writer_t **out, fv_error_t *err);
/* 0: cb runs once. <0: never (FV_EAGAIN: a write is still pending; FV_EINVAL: finished). */
FV_MUST_USE int fv_blob_put_write(fv_blob_writer_t *w, const void *data, size_t len,
                                  fv_blob_write_cb cb, void *cb_data);
/* Commits the object; cb gets its meta (size, sha256, etag). 0: cb runs once. <0: never. */
FV_MUST_USE int fv_blob_put_finish(fv_blob_writer_t *w, fv_blob_done_cb cb, void *cb_data);
/* Drops the object; a pending write's callback gets FV_ECANCELED. Frees w (later). */
void fv_blob_put_abort(fv_blob_writer_t *w);

/* One-shot put of len bytes (borrowed until cb). */
FV_MUST_USE int fv_blob_put(fv_blob_t *bs, const char *key, const void *data, size_t len,
                            const char *content_type, fv_blob_done_cb cb, void *cb_data,
                            fv_error_t *err);

/* Whole object (range_start 0, range_len 0) or a byte range: range_len 0 = to the end; a range
 * reaching past the end is clamped, one starting at or past the end of a non-empty object fails
 * with FV_EINVAL (as S3 answers 416). */
FV_MUST_USE int fv_blob_get(fv_blob_t *bs, const char *key, uint64_t range_start,
                            uint64_t range_len, fv_blob_get_cb cb, void *cb_data,
                            fv_error_t *err);
FV_MUST_USE int fv_blob_head(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *cb_data,
                             fv_error_t *err);
/* Deleting a missing key succeeds (as S3 does). */
FV_MUST_USE int fv_blob_delete(fv_blob_t *bs, const char *key, fv_blob_done_cb cb,
                               void *cb_data, fv_error_t *err);
/* Keys starting with prefix ("" = all), in byte order, at most max (0 = 1000) per page; cursor
 * is NULL for the first page, else a previous page's next_cursor (opaque). */
FV_MUST_USE int fv_blob_list(fv_blob_t *bs, const char *prefix, size_t max, const char *cursor,
                             fv_blob_list_cb cb, void *cb_data, fv_error_t *err);

/* A URL that lets its holder GET key until now + expires_s (1..604800). s3: a SigV4
 * query-string presigned URL for the endpoint. file: "fvblob:/KEY?X-Fv-Expires=T&X-Fv-Signature=H",
 * an HMAC-SHA256 token only fv_blob_presign_verify() on a handle with the same presign_secret
 * accepts. Synchronous; *url_out is the caller's (fv_free). */
FV_MUST_USE int fv_blob_presign_get(fv_blob_t *bs, const char *key, uint32_t expires_s,
                                    char **url_out, fv_error_t *err);
/* file backend: checks a token from fv_blob_presign_get at unix time now_s; 0 and the key
 * (caller's, fv_free) when valid, FV_EFORBIDDEN when expired or forged, FV_EINVAL when
 * malformed or on an s3 handle. */
FV_MUST_USE int fv_blob_presign_verify(fv_blob_t *bs, const char *url, int64_t now_s,
                                       char **key_out, fv_error_t *err);

#endif
