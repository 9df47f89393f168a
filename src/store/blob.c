/* blob.c - the blob store interface: URL switch, key validation shared by every backend,
 * request accounting and close, the writer state machine (begin/write/finish/abort), one-shot
 * put on top of it, and small helpers (hex, URI encoding, deferred calls). The storage itself is
 * in blob_fs.c and blob_s3.c. */
#include "store/blob.h"

#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "store/blob_internal.h"

/* One fv__blob_defer() call. Heap-allocated, as one writer may have several answers queued. */
typedef struct defer_call {
    fv_defer_t d;
    void (*fn)(void *arg);
    void *arg;
} defer_call_t;

/* ---- keys ---- */

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not well-formed (overlong forms,
 * surrogates and code points past U+10FFFF are refused, as RFC 3629 says). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int fv_blob_key_check(fv_slice_t key, fv_error_t *err)
{
    if (!key.ptr || key.len == 0)
        return fv_error_set(err, FV_EINVAL, "blob key is empty");
    if (key.len > FV_BLOB_MAX_KEY_LEN)
        return fv_error_set(err, FV_EINVAL, "blob key is %zu bytes; the limit is %d", key.len,
                            FV_BLOB_MAX_KEY_LEN);
    const unsigned char *s = (const unsigned char *)key.ptr;
    for (size_t i = 0; i < key.len;) {
        if (s[i] == 0)
            return fv_error_set(err, FV_EINVAL, "blob key has a NUL byte at offset %zu", i);
        if (s[i] < 0x20 || s[i] == 0x7f)
            return fv_error_set(err, FV_EINVAL,
                                "blob key has control character 0x%02x at offset %zu", s[i], i);
        if (s[i] == '\\')
            return fv_error_set(err, FV_EINVAL, "blob key has a backslash at offset %zu", i);
        size_t n = utf8_seq(s + i, key.len - i);
        if (n == 0)
            return fv_error_set(err, FV_EINVAL, "blob key is not valid UTF-8 at offset %zu", i);
        i += n;
    }
    if (s[0] == '/')
        return fv_error_set(err, FV_EINVAL, "blob key \"%.*s\" starts with '/'",
                            (int)(key.len > 200 ? 200 : key.len), key.ptr);
    size_t start = 0;
    for (size_t i = 0; i <= key.len; i++) {
        if (i < key.len && s[i] != '/')
            continue;
        size_t seg = i - start;
        const char *p = key.ptr + start;
        int shown = (int)(key.len > 200 ? 200 : key.len);
        if (seg == 0)
            return fv_error_set(err, FV_EINVAL, "blob key \"%.*s\" has an empty segment at "
                                "offset %zu", shown, key.ptr, start);
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return fv_error_set(err, FV_EINVAL, "blob key \"%.*s\" has a '..' segment at offset "
                                "%zu (path traversal)", shown, key.ptr, start);
        if (seg == 1 && p[0] == '.')
            return fv_error_set(err, FV_EINVAL, "blob key \"%.*s\" has a '.' segment at offset "
                                "%zu", shown, key.ptr, start);
        start = i + 1;
    }
    return 0;
}

/* ---- helpers ---- */

void fv__blob_hex(const unsigned char *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

int fv__blob_uri_encode(fv_buf_t *out, const char *s, size_t len, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        int rc;
        if (plain) {
            rc = fv_buf_append(out, &s[i], 1);
        } else {
            char enc[3] = {'%', digits[c >> 4], digits[c & 15]};
            rc = fv_buf_append(out, enc, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- handle lifetime ---- */

static void on_defer_closed(fv_defer_queue_t *q)
{
    fv_blob_t *bs = q->data;
    fv_blob_close_cb cb = bs->close_cb;
    void *data = bs->close_data;
    fv_free(bs);
    if (cb)
        cb(data);
}

static void maybe_closed(fv_blob_t *bs)
{
    if (!bs->closing || bs->pending || bs->writers || !bs->backend_closed
        || fv_defer_queue_closing(&bs->defer))
        return;
    fv_defer_queue_close(&bs->defer, on_defer_closed);
}

void fv__blob_req_begin(fv_blob_t *bs)
{
    bs->pending++;
}

void fv__blob_req_end(fv_blob_t *bs)
{
    bs->pending--;
    maybe_closed(bs);
}

void fv__blob_backend_closed(fv_blob_t *bs)
{
    bs->backend_closed = 1;
    maybe_closed(bs);
}

static void on_defer(fv_defer_t *d)
{
    defer_call_t *c = FV_DEFER_OWNER(d, defer_call_t, d);
    c->fn(c->arg);       /* may defer more: those run on the next turn */
    fv_free(c);
}

void fv__blob_defer(fv_blob_t *bs, void (*fn)(void *arg), void *arg)
{
    defer_call_t *c = fv_calloc(1, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    fv_defer_push(&bs->defer, &c->d, on_defer);
}

int fv_blob_open(uv_loop_t *loop, const char *url, const fv_blob_opts_t *opts, fv_blob_t **out,
                 fv_error_t *err)
{
    fv_blob_opts_t none = {0};
    if (!opts)
        opts = &none;
    if (!url)
        return fv_error_set(err, FV_ECONFIG, "storage.url is not set");
    const fv_blob_ops_t *ops;
    const char *rest;
    if (strncmp(url, "file:", 5) == 0) {
        ops = &fv__blob_fs_ops;
        rest = url + 5;
    } else if (strncmp(url, "s3://", 5) == 0) {
        ops = &fv__blob_s3_ops;
        rest = url + 5;
    } else {
        return fv_error_set(err, FV_ECONFIG, "storage.url \"%s\": unknown scheme; expected "
                            "file:PATH or s3://BUCKET?endpoint=URL&region=REGION", url);
    }
    if (sodium_init() < 0)
        return fv_error_set(err, FV_EINTERNAL, "libsodium failed to initialise");
    fv_blob_t *bs = fv_calloc(1, sizeof(*bs));
    bs->loop = loop;
    bs->ops = ops;
    bs->max_object_bytes = opts->max_object_bytes ? opts->max_object_bytes
                                                  : FV_BLOB_DEFAULT_MAX_OBJECT_BYTES;
    int rc = ops->open(bs, rest, opts, err);
    if (rc < 0) {
        fv_free(bs);
        return rc;
    }
    fv_defer_queue_init(loop, &bs->defer, NULL);
    bs->defer.data = bs;
    *out = bs;
    return 0;
}

void fv_blob_close(fv_blob_t *bs, fv_blob_close_cb cb, void *data)
{
    if (!bs || bs->closing)
        return;
    bs->closing = 1;
    bs->close_cb = cb;
    bs->close_data = data;
    bs->ops->close(bs);
}

const char *fv_blob_backend(const fv_blob_t *bs)
{
    return bs->ops->name;
}

static int check_key(const char *key, fv_error_t *err)
{
    return fv_blob_key_check(fv_slice_cstr(key), err);
}

/* ---- writer ---- */

int fv_blob_put_begin(fv_blob_t *bs, const char *key, const char *content_type,
                      fv_blob_writer_t **out, fv_error_t *err)
{
    if (bs->closing)
        return fv_error_set(err, FV_ECANCELED, "blob store is closing");
    int rc = check_key(key, err);
    if (rc < 0)
        return rc;
    if (content_type && strlen(content_type) >= sizeof(((fv_blob_meta_t *)0)->content_type))
        return fv_error_set(err, FV_EINVAL, "content type is longer than %zu bytes",
                            sizeof(((fv_blob_meta_t *)0)->content_type) - 1);
    for (const char *p = content_type; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fv_error_set(err, FV_EINVAL, "content type has a control character");
    fv_blob_writer_t *w = NULL;
    rc = bs->ops->put_begin(bs, key, &w, err);
    if (rc < 0)
        return rc;
    w->bs = bs;
    w->key = fv_strdup(key);
    w->content_type = fv_strdup(content_type ? content_type : "");
    w->state = FV__BLOB_W_OPEN;
    crypto_hash_sha256_init(&w->sha);
    bs->writers++;
    *out = w;
    return 0;
}

void fv__blob_writer_release(fv_blob_writer_t *w)
{
    fv_blob_t *bs = w->bs;
    fv_free(w->key);
    fv_free(w->content_type);
    fv_free(w);
    bs->writers--;
    maybe_closed(bs);
}

void fv__blob_write_done(fv_blob_writer_t *w, int rc)
{
    fv_blob_t *bs = w->bs;
    fv_blob_write_cb cb = w->write_cb;
    void *data = w->write_data;
    if (w->aborted) {
        w->state = FV__BLOB_W_DEAD;
        cb(FV_ECANCELED, data);
        fv__blob_req_end(bs);           /* the writer still counts: bs stays */
        bs->ops->put_abort(w);
        return;
    }
    if (rc < 0) {
        w->state = FV__BLOB_W_DEAD;
        w->dead_rc = rc;
    } else {
        w->state = FV__BLOB_W_OPEN;
    }
    cb(rc, data);                       /* may abort or finish w */
    fv__blob_req_end(bs);
}

static void report_dead_write(void *arg)
{
    fv_blob_writer_t *w = arg;
    fv__blob_write_done(w, w->dead_rc);
}

int fv_blob_put_write(fv_blob_writer_t *w, const void *data, size_t len, fv_blob_write_cb cb,
                      void *cb_data)
{
    if (!cb)
        return FV_EINVAL;
    if (w->state == FV__BLOB_W_WRITING)
        return FV_EAGAIN;
    if (w->state == FV__BLOB_W_FINISHING || w->aborted)
        return FV_EINVAL;
    fv_blob_t *bs = w->bs;
    w->write_cb = cb;
    w->write_data = cb_data;
    fv__blob_req_begin(bs);
    if (w->state != FV__BLOB_W_DEAD && bs->closing) {
        w->state = FV__BLOB_W_DEAD;
        w->dead_rc = FV_ECANCELED;
    }
    if (w->state == FV__BLOB_W_DEAD) {
        fv__blob_defer(bs, report_dead_write, w);
        w->state = FV__BLOB_W_WRITING;
        return 0;
    }
    w->state = FV__BLOB_W_WRITING;
    int rc = bs->ops->put_write(w, data, len);
    if (rc < 0) {
        w->state = FV__BLOB_W_OPEN;
        fv__blob_req_end(bs);
    }
    return rc;
}

void fv__blob_finish_done(fv_blob_writer_t *w, int rc, const fv_blob_meta_t *meta)
{
    fv_blob_t *bs = w->bs;
    w->finish_cb(rc, rc == 0 ? meta : NULL, w->finish_data);
    bs->ops->put_abort(w);              /* releases: nothing uncommitted is left */
    fv__blob_req_end(bs);
}

static void report_dead_finish(void *arg)
{
    fv_blob_writer_t *w = arg;
    fv__blob_finish_done(w, w->dead_rc, NULL);
}

int fv_blob_put_finish(fv_blob_writer_t *w, fv_blob_done_cb cb, void *cb_data)
{
    if (!cb)
        return FV_EINVAL;
    if (w->state == FV__BLOB_W_WRITING)
        return FV_EAGAIN;
    if (w->state == FV__BLOB_W_FINISHING || w->aborted)
        return FV_EINVAL;
    fv_blob_t *bs = w->bs;
    w->finish_cb = cb;
    w->finish_data = cb_data;
    fv__blob_req_begin(bs);
    int dead = w->state == FV__BLOB_W_DEAD;
    if (!dead && bs->closing) {
        dead = 1;
        w->dead_rc = FV_ECANCELED;
    }
    w->state = FV__BLOB_W_FINISHING;
    if (dead) {
        fv__blob_defer(bs, report_dead_finish, w);
        return 0;
    }
    int rc = bs->ops->put_finish(w);
    if (rc < 0) {
        w->state = FV__BLOB_W_OPEN;
        fv__blob_req_end(bs);
    }
    return rc;
}

void fv_blob_put_abort(fv_blob_writer_t *w)
{
    if (!w || w->aborted || w->state == FV__BLOB_W_FINISHING)
        return;
    w->aborted = 1;
    if (w->state == FV__BLOB_W_WRITING)
        return;                         /* released when the pending write reports */
    w->bs->ops->put_abort(w);
}

/* ---- one-shot put: begin, one write, finish ---- */

typedef struct oneshot {
    fv_blob_t *bs;
    fv_blob_writer_t *w;
    fv_blob_done_cb cb;
    void *data;
} oneshot_t;

static void oneshot_end(oneshot_t *os, int rc, const fv_blob_meta_t *meta)
{
    fv_blob_t *bs = os->bs;
    os->cb(rc, meta, os->data);
    fv_free(os);
    fv__blob_req_end(bs);
}

static void on_oneshot_finish(int rc, const fv_blob_meta_t *meta, void *data)
{
    oneshot_end(data, rc, meta);
}

static void on_oneshot_write(int rc, void *data)
{
    oneshot_t *os = data;
    if (rc == 0)
        rc = fv_blob_put_finish(os->w, on_oneshot_finish, os);
    if (rc < 0) {
        fv_blob_put_abort(os->w);
        oneshot_end(os, rc, NULL);
    }
}

int fv_blob_put(fv_blob_t *bs, const char *key, const void *data, size_t len,
                const char *content_type, fv_blob_done_cb cb, void *cb_data, fv_error_t *err)
{
    if (!cb)
        return fv_error_set(err, FV_EINVAL, "no callback");
    oneshot_t *os = fv_calloc(1, sizeof(*os));
    int rc = fv_blob_put_begin(bs, key, content_type, &os->w, err);
    if (rc < 0) {
        fv_free(os);
        return rc;
    }
    os->bs = bs;
    os->cb = cb;
    os->data = cb_data;
    fv__blob_req_begin(bs);
    rc = len ? fv_blob_put_write(os->w, data, len, on_oneshot_write, os)
             : fv_blob_put_finish(os->w, on_oneshot_finish, os);
    if (rc < 0) {
        fv_blob_put_abort(os->w);
        fv_free(os);
        bs->pending--;
        return fv_error_set(err, rc, "blob put could not start: %s", fv_strerror(rc));
    }
    return 0;
}

/* ---- the other requests ---- */

#define START_REQUEST(bs, key, err)                                                      \
    do {                                                                                 \
        if ((bs)->closing)                                                               \
            return fv_error_set(err, FV_ECANCELED, "blob store is closing");             \
        int krc_ = check_key(key, err);                                                  \
        if (krc_ < 0)                                                                    \
            return krc_;                                                                 \
        if (!cb)                                                                         \
            return fv_error_set(err, FV_EINVAL, "no callback");                          \
    } while (0)

static int started(fv_blob_t *bs, int rc, fv_error_t *err)
{
    if (rc < 0) {
        bs->pending--;
        return fv_error_set(err, rc, "blob request could not start: %s", fv_strerror(rc));
    }
    return 0;
}

int fv_blob_get(fv_blob_t *bs, const char *key, uint64_t range_start, uint64_t range_len,
                fv_blob_get_cb cb, void *cb_data, fv_error_t *err)
{
    START_REQUEST(bs, key, err);
    fv__blob_req_begin(bs);
    return started(bs, bs->ops->get(bs, key, range_start, range_len, cb, cb_data), err);
}

int fv_blob_head(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *cb_data,
                 fv_error_t *err)
{
    START_REQUEST(bs, key, err);
    fv__blob_req_begin(bs);
    return started(bs, bs->ops->head(bs, key, cb, cb_data), err);
}

int fv_blob_delete(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *cb_data,
                   fv_error_t *err)
{
    START_REQUEST(bs, key, err);
    fv__blob_req_begin(bs);
    return started(bs, bs->ops->del(bs, key, cb, cb_data), err);
}

int fv_blob_list(fv_blob_t *bs, const char *prefix, size_t max, const char *cursor,
                 fv_blob_list_cb cb, void *cb_data, fv_error_t *err)
{
    if (bs->closing)
        return fv_error_set(err, FV_ECANCELED, "blob store is closing");
    if (!cb)
        return fv_error_set(err, FV_EINVAL, "no callback");
    if (!prefix)
        prefix = "";
    if (strlen(prefix) > FV_BLOB_MAX_KEY_LEN)
        return fv_error_set(err, FV_EINVAL, "list prefix is longer than %d bytes",
                            FV_BLOB_MAX_KEY_LEN);
    for (const char *p = prefix; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fv_error_set(err, FV_EINVAL, "list prefix has a control character");
    if (max == 0 || max > 1000)
        max = 1000;
    fv__blob_req_begin(bs);
    return started(bs, bs->ops->list(bs, prefix, max, cursor, cb, cb_data), err);
}

int fv_blob_presign_get(fv_blob_t *bs, const char *key, uint32_t expires_s, char **url_out,
                        fv_error_t *err)
{
    if (bs->closing)
        return fv_error_set(err, FV_ECANCELED, "blob store is closing");
    int rc = check_key(key, err);
    if (rc < 0)
        return rc;
    if (expires_s < 1 || expires_s > 604800)
        return fv_error_set(err, FV_EINVAL, "presign expiry %u s is not in 1..604800 (7 days)",
                            expires_s);
    return bs->ops->presign_get(bs, key, expires_s, (int64_t)time(NULL), url_out, err);
}

int fv_blob_presign_verify(fv_blob_t *bs, const char *url, int64_t now_s, char **key_out,
                           fv_error_t *err)
{
    if (bs->closing)
        return fv_error_set(err, FV_ECANCELED, "blob store is closing");
    if (!bs->ops->presign_verify)
        return fv_error_set(err, FV_EINVAL, "the %s blob backend does not verify presigned "
                            "URLs: the server does", bs->ops->name);
    return bs->ops->presign_verify(bs, url, now_s, key_out, err);
}
