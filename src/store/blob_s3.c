/* blob_s3.c - the blob store's S3 backend (s3://bucket?endpoint=...&region=...): AWS, MinIO or
 * any S3-compatible server over libcurl on the loop (net/curl_loop.c), signed by libcurl's
 * CURLOPT_AWS_SIGV4, path-style URLs (endpoint/bucket/key).
 *
 * A streaming put is buffered (up to max_object_bytes) while its SHA-256 is computed, then sent as
 * one PUT carrying that hash in x-amz-content-sha256 (which SigV4 signs) and in x-amz-meta-sha256
 * (so head and get can report it). No multipart upload: objects are bounded by max_object_bytes
 * anyway. The bucket is created at open in the background, and again when a request finds it
 * missing (a fresh server), after which that request is sent once more. Nothing is retried
 * otherwise: a server that is down gives FV_EBACKEND, and the next request simply tries again. */
#define _GNU_SOURCE            /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/curl_loop.h"
#include "store/blob_internal.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MAX_LIST_BYTES (4u * 1024 * 1024)

typedef struct s3_store {
    fv_curl_loop_t *cl;
    char *bucket;
    char *endpoint;              /* "http://127.0.0.1:9000", no trailing '/' */
    char *scheme;                /* "http" */
    char *host;                  /* "127.0.0.1:9000", as the Host header carries it */
    char *region;
    char *sigv4;                 /* "aws:amz:REGION:s3" */
    char *userpwd;               /* "ACCESS:SECRET" */
    char *access_key, *secret_key;
    uint32_t timeout_ms;
} s3_store_t;

typedef struct s3_writer {
    fv_blob_writer_t base;
    fv_buf_t body;
    int rc;
} s3_writer_t;

enum { S3_PUT, S3_GET, S3_HEAD, S3_DEL, S3_LIST, S3_MKBUCKET };

typedef struct s3_op {
    fv_blob_t *bs;
    int kind;
    int retried;
    char *url;
    char *hdr[5];
    size_t hdr_count;
    const void *body;
    size_t body_len;
    size_t max_response;
    s3_writer_t *w;              /* S3_PUT */
    void *cb;
    void *data;
} s3_op_t;

static s3_store_t *store_of(fv_blob_t *bs)
{
    return bs->impl;
}

static void store_free(s3_store_t *s)
{
    fv_free(s->bucket);
    fv_free(s->endpoint);
    fv_free(s->scheme);
    fv_free(s->host);
    fv_free(s->region);
    fv_free(s->sigv4);
    if (s->userpwd)
        sodium_memzero(s->userpwd, strlen(s->userpwd));
    fv_free(s->userpwd);
    fv_free(s->access_key);
    if (s->secret_key)
        sodium_memzero(s->secret_key, strlen(s->secret_key));
    fv_free(s->secret_key);
    fv_free(s);
}

/* ---- URL ---- */

static char *pct_decode(const char *s, size_t len)
{
    char *out = fv_malloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len + 1 && s[i + 1] && s[i + 2]) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(h, &end, 16);
            if (*end == '\0' && v > 0) {
                out[k++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[k++] = s[i];
    }
    out[k] = '\0';
    return out;
}

static int bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

static void send_op(s3_op_t *op);

static int s3_open(fv_blob_t *bs, const char *rest, const fv_blob_opts_t *opts, fv_error_t *err)
{
    s3_store_t *s = fv_calloc(1, sizeof(*s));
    const char *q = strchr(rest, '?');
    s->bucket = q ? fv_strndup(rest, (size_t)(q - rest)) : fv_strdup(rest);
    size_t bl = strlen(s->bucket);
    if (bl && s->bucket[bl - 1] == '/')
        s->bucket[bl - 1] = '\0';
    int rc = 0;
    if (!bucket_ok(s->bucket)) {
        rc = fv_error_set(err, FV_ECONFIG, "storage.url s3://%s: the bucket name must be 3..63 "
                          "of a-z 0-9 . - (not starting or ending with . or -)", s->bucket);
        goto fail;
    }
    char *endpoint = NULL, *region = NULL;
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t nlen = (size_t)(eq - p);
            char *val = pct_decode(eq + 1, len - nlen - 1);
            if (nlen == 8 && strncmp(p, "endpoint", 8) == 0) {
                fv_free(endpoint);
                endpoint = val;
            } else if (nlen == 6 && strncmp(p, "region", 6) == 0) {
                fv_free(region);
                region = val;
            } else {
                fv_free(val);
                fv_free(endpoint);
                fv_free(region);
                rc = fv_error_set(err, FV_ECONFIG, "storage.url: unknown s3 parameter \"%.*s\"; "
                                  "known: endpoint, region", (int)nlen, p);
                goto fail;
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    const char *env_region = getenv("AWS_REGION");
    s->region = fv_strdup(opts->region ? opts->region
                          : region       ? region
                          : env_region && *env_region ? env_region
                                                      : "us-east-1");
    fv_free(region);
    if (!endpoint) {
        size_t n = strlen(s->region) + 40;
        endpoint = fv_malloc(n);
        snprintf(endpoint, n, "https://s3.%s.amazonaws.com", s->region);
    }
    size_t el = strlen(endpoint);
    while (el && endpoint[el - 1] == '/')
        endpoint[--el] = '\0';
    s->endpoint = endpoint;
    const char *sep = strstr(endpoint, "://");
    if (!sep || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) ||
        !sep[3] || strchr(sep + 3, '/')) {
        rc = fv_error_set(err, FV_ECONFIG, "storage.url: s3 endpoint \"%s\" is not "
                          "http(s)://host[:port]", endpoint);
        goto fail;
    }
    s->scheme = fv_strndup(endpoint, (size_t)(sep - endpoint));
    s->host = fv_strdup(sep + 3);
    const char *ak = opts->access_key ? opts->access_key : getenv("AWS_ACCESS_KEY_ID");
    const char *sk = opts->secret_key ? opts->secret_key : getenv("AWS_SECRET_ACCESS_KEY");
    if (!ak || !*ak || !sk || !*sk) {
        rc = fv_error_set(err, FV_ECONFIG, "storage: s3 needs access_key and secret_key (or "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
        goto fail;
    }
    s->access_key = fv_strdup(ak);
    s->secret_key = fv_strdup(sk);
    size_t n = strlen(ak) + strlen(sk) + 2;
    s->userpwd = fv_malloc(n);
    snprintf(s->userpwd, n, "%s:%s", ak, sk);
    n = strlen(s->region) + 16;
    s->sigv4 = fv_malloc(n);
    snprintf(s->sigv4, n, "aws:amz:%s:s3", s->region);
    s->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
    rc = fv_curl_loop_new(bs->loop, &s->cl);
    if (rc < 0) {
        fv_error_set(err, rc, "storage: cannot start libcurl: %s", fv_strerror(rc));
        goto fail;
    }
    bs->impl = s;

    /* Make the bucket now, in the background; requests that still find it missing make it. */
    s3_op_t *op = fv_calloc(1, sizeof(*op));
    op->bs = bs;
    op->kind = S3_MKBUCKET;
    send_op(op);
    return 0;
fail:
    store_free(s);
    return rc;
}

static void on_curl_closed(void *data)
{
    fv_blob_t *bs = data;
    store_free(store_of(bs));
    bs->impl = NULL;
    fv__blob_backend_closed(bs);
}

static void s3_close(fv_blob_t *bs)
{
    fv_curl_loop_close(store_of(bs)->cl, on_curl_closed, bs);
}

/* ---- requests ---- */

static char *object_url(s3_store_t *s, const char *key)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    int rc = fv_buf_printf(&b, "%s/%s/", s->endpoint, s->bucket);
    if (rc == 0 && key)
        rc = fv__blob_uri_encode(&b, key, strlen(key), 1);
    if (rc < 0) {
        fv_buf_dispose(&b);
        return NULL;
    }
    return fv_buf_steal(&b, NULL);
}

static void add_hdr(s3_op_t *op, const char *name, const char *v)
{
    size_t n = strlen(name) + strlen(v) + 3;
    char *h = fv_malloc(n);
    snprintf(h, n, "%s: %s", name, v);
    op->hdr[op->hdr_count++] = h;
}

static void op_free(s3_op_t *op)
{
    fv_free(op->url);
    for (size_t i = 0; i < op->hdr_count; i++)
        fv_free(op->hdr[i]);
    fv_free(op);
}

static int status_rc(long status, fv_slice_t body)
{
    if (status >= 200 && status < 300)
        return 0;
    if (status == 404)
        return FV_ENOENT;
    if (status == 416)
        return FV_EINVAL;
    if (status == 401)
        return FV_EUNAUTH;
    if (status == 403)
        return FV_EFORBIDDEN;
    if (status == 400 && body.ptr && memmem(body.ptr, body.len, "EntityTooLarge", 14))
        return FV_ETOOBIG;
    if (status == 409)
        return FV_ECONFLICT;
    if (status >= 500)
        return FV_EBACKEND;
    return FV_EPROTO;
}

static void copy_hdr(const fv_curl_resp_t *resp, const char *name, char *out, size_t cap)
{
    fv_slice_t v = fv_curl_resp_header(resp, name);
    if (!v.ptr)
        return;
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
        v.ptr++;
        v.len -= 2;
    }
    if (v.len >= cap)
        v.len = cap - 1;
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
}

static void meta_from(const fv_curl_resp_t *resp, fv_blob_meta_t *m)
{
    char num[32] = "";
    copy_hdr(resp, "ETag", m->etag, sizeof(m->etag));
    copy_hdr(resp, "Content-Type", m->content_type, sizeof(m->content_type));
    copy_hdr(resp, "x-amz-meta-sha256", m->sha256, sizeof(m->sha256));
    if (strlen(m->sha256) != 64)
        m->sha256[0] = '\0';
    copy_hdr(resp, "Content-Length", num, sizeof(num));
    m->size = strtoull(num, NULL, 10);
    fv_slice_t cr = fv_curl_resp_header(resp, "Content-Range");
    if (cr.ptr) {
        const char *slash = memchr(cr.ptr, '/', cr.len);
        if (slash) {
            size_t n = cr.len - (size_t)(slash + 1 - cr.ptr);
            if (n < sizeof(num)) {
                memcpy(num, slash + 1, n);
                num[n] = '\0';
                m->size = strtoull(num, NULL, 10);
            }
        }
    }
}

/* ---- ListObjectsV2 XML: a careful scan for the few elements we need ---- */

/* Next <tag>...</tag> between *p and end; the element text decoded into out. */
static int xml_next(const char **p, const char *end, const char *tag, fv_buf_t *out)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *s = memmem(*p, (size_t)(end - *p), open, strlen(open));
    if (!s)
        return 0;
    s += strlen(open);
    const char *e = memmem(s, (size_t)(end - s), close, strlen(close));
    if (!e)
        return 0;
    *p = e + strlen(close);
    fv_buf_reset(out);
    /* callers read out as a C string: an empty element must give "", and a buffer never
     * appended to has no storage yet */
    if (fv_buf_reserve(out, 1) < 0)
        return -1;
    out->ptr[0] = '\0';
    for (const char *c = s; c < e;) {
        char ch = *c;
        size_t adv = 1;
        if (*c == '&') {
            static const struct { const char *ent; char ch; } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
            };
            int found = 0;
            for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
                size_t n = strlen(ents[i].ent);
                if ((size_t)(e - c) >= n && memcmp(c, ents[i].ent, n) == 0) {
                    ch = ents[i].ch;
                    adv = n;
                    found = 1;
                    break;
                }
            }
            if (!found && e - c > 3 && c[1] == '#') {
                const char *semi = memchr(c, ';', (size_t)(e - c));
                if (semi && semi - c < 10) {
                    char num[12];
                    memcpy(num, c + 2, (size_t)(semi - c - 2));
                    num[semi - c - 2] = '\0';
                    long v = num[0] == 'x' ? strtol(num + 1, NULL, 16) : strtol(num, NULL, 10);
                    if (v > 0 && v < 128) {
                        ch = (char)v;
                        adv = (size_t)(semi - c + 1);
                    }
                }
            }
        }
        if (fv_buf_append(out, &ch, 1) < 0)
            return -1;
        c += adv;
    }
    return 1;
}

int fv__s3_list_parse(fv_slice_t body, fv_blob_list_t *page)
{
    fv_blob_entry_t *entries = NULL;
    size_t count = 0, cap = 0;
    char *next = NULL;
    int rc = 0;
    fv_buf_t tmp;
    fv_buf_init(&tmp, FV_BLOB_MAX_KEY_LEN * 4);
    const char *p = body.ptr ? body.ptr : "";
    const char *end = p + body.len;
    const char *c = p;
    for (;;) {
        const char *raw = memmem(c, (size_t)(end - c), "<Contents>", 10);
        if (!raw)
            break;
        const char *raw_end = memmem(raw, (size_t)(end - raw), "</Contents>", 11);
        if (!raw_end) {
            rc = FV_EPROTO;
            break;
        }
        c = raw_end + 11;
        const char *q = raw;
        if (xml_next(&q, raw_end, "Key", &tmp) != 1) {
            rc = FV_EPROTO;
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            entries = fv_realloc(entries, cap * sizeof(*entries));
        }
        fv_blob_entry_t *en = &entries[count++];
        en->key = fv_strndup(tmp.ptr, tmp.len);
        q = raw;
        en->size = xml_next(&q, raw_end, "Size", &tmp) == 1 ? strtoull(tmp.ptr, NULL, 10) : 0;
        q = raw;
        char *etag = xml_next(&q, raw_end, "ETag", &tmp) == 1 ? fv_strndup(tmp.ptr, tmp.len)
                                                              : fv_strdup("");
        size_t el = strlen(etag);
        if (el >= 2 && etag[0] == '"' && etag[el - 1] == '"') {
            memmove(etag, etag + 1, el - 2);
            etag[el - 2] = '\0';
        }
        en->etag = etag;
    }
    c = p;
    int truncated = xml_next(&c, end, "IsTruncated", &tmp) == 1 &&
                    strcmp(tmp.ptr, "true") == 0;
    c = p;
    if (rc == 0 && truncated && xml_next(&c, end, "NextContinuationToken", &tmp) == 1)
        next = fv_strndup(tmp.ptr, tmp.len);
    fv_buf_dispose(&tmp);
    *page = (fv_blob_list_t){entries, count, next};
    if (rc < 0)
        fv__s3_list_free(page);
    return rc;
}

void fv__s3_list_free(fv_blob_list_t *page)
{
    for (size_t i = 0; i < page->count; i++) {
        fv_free((char *)page->entries[i].key);
        fv_free((char *)page->entries[i].etag);
    }
    fv_free((fv_blob_entry_t *)page->entries);
    fv_free((char *)page->next_cursor);
    *page = (fv_blob_list_t){NULL, 0, NULL};
}

static void finish_list(s3_op_t *op, int rc, const fv_curl_resp_t *resp)
{
    fv_blob_list_t page = {NULL, 0, NULL};
    if (rc == 0)
        rc = fv__s3_list_parse(fv_buf_slice(&resp->body), &page);
    ((fv_blob_list_cb)op->cb)(rc, rc == 0 ? &page : NULL, op->data);
    fv__s3_list_free(&page);
}

static void finish_op(s3_op_t *op, int rc, const fv_curl_resp_t *resp)
{
    fv_blob_t *bs = op->bs;
    fv_blob_meta_t meta = {0};
    if (rc == 0 && resp)
        meta_from(resp, &meta);
    switch (op->kind) {
    case S3_MKBUCKET:
        op_free(op);
        return;                  /* not a user request */
    case S3_PUT: {
        s3_writer_t *w = op->w;
        if (rc == 0) {
            /* Size and hash are what we sent; the server only answers an ETag. */
            const char *h = op->hdr[0] + strlen("x-amz-content-sha256: ");
            meta.size = w->base.size;
            snprintf(meta.content_type, sizeof(meta.content_type), "%s", w->base.content_type);
            memcpy(meta.sha256, h, 64);
            meta.sha256[64] = '\0';
        }
        op_free(op);
        fv__blob_finish_done(&w->base, rc, &meta);
        return;                  /* finish_done ends the request */
    }
    case S3_GET: {
        fv_slice_t body = rc == 0 ? fv_buf_slice(&resp->body) : FV_SLICE_NULL;
        if (rc == 0 && !fv_curl_resp_header(resp, "Content-Range").ptr)
            meta.size = body.len;
        ((fv_blob_get_cb)op->cb)(rc, rc == 0 ? &meta : NULL, body, op->data);
        break;
    }
    case S3_HEAD:
        ((fv_blob_done_cb)op->cb)(rc, rc == 0 ? &meta : NULL, op->data);
        break;
    case S3_DEL:
        ((fv_blob_done_cb)op->cb)(rc, NULL, op->data);
        break;
    case S3_LIST:
        finish_list(op, rc, resp);
        break;
    }
    op_free(op);
    fv__blob_req_end(bs);
}

static void on_bucket_made(int rc, const fv_curl_resp_t *resp, void *data)
{
    s3_op_t *op = data;
    /* Made, already ours, or someone else's: in every case the retry tells the truth. */
    if (rc < 0)
        finish_op(op, rc, NULL);
    else
        send_op(op);
}

static void make_bucket_then(s3_op_t *op)
{
    s3_store_t *s = store_of(op->bs);
    char *url = object_url(s, NULL);
    const char *hdr[] = {"x-amz-content-sha256: " S3_EMPTY_SHA256};
    fv_curl_req_t q = {
        .method = "PUT", .url = url, .headers = hdr, .header_count = 1, .body = "",
        .body_len = 0, .timeout_ms = s->timeout_ms, .aws_sigv4 = s->sigv4,
        .userpwd = s->userpwd,
    };
    int rc = fv_curl_request(s->cl, &q, on_bucket_made, op);
    fv_free(url);
    if (rc < 0)
        finish_op(op, rc, NULL);
}

static void on_op_done(int rc, const fv_curl_resp_t *resp, void *data)
{
    s3_op_t *op = data;
    if (rc == 0) {
        fv_slice_t body = fv_buf_slice(&resp->body);
        if (resp->status == 404 && !op->retried && op->kind != S3_MKBUCKET &&
            memmem(body.ptr, body.len, "NoSuchBucket", 12)) {
            op->retried = 1;
            make_bucket_then(op);
            return;
        }
        rc = status_rc(resp->status, body);
        if (op->kind == S3_MKBUCKET && rc < 0 && !memmem(body.ptr, body.len, "BucketAlready", 13))
            fv_log_write(FV_LOG_WARN, "blob", "s3 bucket %s: create answered HTTP %ld",
                         store_of(op->bs)->bucket, resp->status);
        if (op->kind == S3_DEL && rc == FV_ENOENT)
            rc = 0;
        if (rc < 0 && resp->status >= 400 && op->kind != S3_MKBUCKET)
            fv_log_write(FV_LOG_DEBUG, "blob", "s3 HTTP %ld: %.*s", resp->status,
                         (int)(body.len > 300 ? 300 : body.len), body.ptr);
    }
    finish_op(op, rc, resp);
}

static void send_op(s3_op_t *op)
{
    s3_store_t *s = store_of(op->bs);
    const char *method = "GET";
    switch (op->kind) {
    case S3_PUT:
    case S3_MKBUCKET:
        method = "PUT";
        break;
    case S3_HEAD:
        method = "HEAD";
        break;
    case S3_DEL:
        method = "DELETE";
        break;
    default:
        break;
    }
    if (op->kind == S3_MKBUCKET && !op->url) {
        op->url = object_url(s, NULL);
        add_hdr(op, "x-amz-content-sha256", S3_EMPTY_SHA256);
        op->body = "";
    }
    fv_curl_req_t q = {
        .method = method, .url = op->url, .headers = (const char *const *)op->hdr,
        .header_count = op->hdr_count, .body = op->body, .body_len = op->body_len,
        .max_response_bytes = op->max_response ? op->max_response : 64 * 1024,
        .timeout_ms = s->timeout_ms, .aws_sigv4 = s->sigv4, .userpwd = s->userpwd,
    };
    int rc = op->url ? fv_curl_request(s->cl, &q, on_op_done, op) : FV_ENOMEM;
    if (rc < 0)
        finish_op(op, rc, NULL);
}

static s3_op_t *op_new(fv_blob_t *bs, int kind, const char *key, void *cb, void *data)
{
    s3_op_t *op = fv_calloc(1, sizeof(*op));
    op->bs = bs;
    op->kind = kind;
    op->cb = cb;
    op->data = data;
    op->url = object_url(store_of(bs), key);
    return op;
}

/* The ops' callbacks must not run inside the call: send_op failures are reported through
 * finish_op at once, so the public calls report a failed start by returning it instead. */
static int start_op(s3_op_t *op)
{
    s3_store_t *s = store_of(op->bs);
    const char *method = op->kind == S3_HEAD ? "HEAD" : op->kind == S3_DEL ? "DELETE" : "GET";
    if (!op->url) {
        op_free(op);
        return FV_ENOMEM;
    }
    fv_curl_req_t q = {
        .method = method, .url = op->url, .headers = (const char *const *)op->hdr,
        .header_count = op->hdr_count, .max_response_bytes = op->max_response,
        .timeout_ms = s->timeout_ms, .aws_sigv4 = s->sigv4, .userpwd = s->userpwd,
    };
    int rc = fv_curl_request(s->cl, &q, on_op_done, op);
    if (rc < 0)
        op_free(op);
    return rc;
}

static int s3_get(fv_blob_t *bs, const char *key, uint64_t start, uint64_t len,
                  fv_blob_get_cb cb, void *data)
{
    s3_op_t *op = op_new(bs, S3_GET, key, (void *)cb, data);
    add_hdr(op, "x-amz-content-sha256", S3_EMPTY_SHA256);
    if (start > 0 || len > 0) {
        char range[64];
        if (len)
            snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)start,
                     (unsigned long long)(start + len - 1));
        else
            snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)start);
        add_hdr(op, "Range", range);
    }
    op->max_response = bs->max_object_bytes;
    return start_op(op);
}

static int s3_head(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data)
{
    s3_op_t *op = op_new(bs, S3_HEAD, key, (void *)cb, data);
    add_hdr(op, "x-amz-content-sha256", S3_EMPTY_SHA256);
    return start_op(op);
}

static int s3_del(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data)
{
    s3_op_t *op = op_new(bs, S3_DEL, key, (void *)cb, data);
    add_hdr(op, "x-amz-content-sha256", S3_EMPTY_SHA256);
    return start_op(op);
}

static int s3_list(fv_blob_t *bs, const char *prefix, size_t max, const char *cursor,
                   fv_blob_list_cb cb, void *data)
{
    s3_store_t *s = store_of(bs);
    fv_buf_t u;
    fv_buf_init(&u, 0);
    int rc = fv_buf_printf(&u, "%s/%s?list-type=2&max-keys=%zu&prefix=", s->endpoint, s->bucket,
                           max);
    if (rc == 0)
        rc = fv__blob_uri_encode(&u, prefix, strlen(prefix), 0);
    if (rc == 0 && cursor) {
        rc = fv_buf_append_str(&u, "&continuation-token=");
        if (rc == 0)
            rc = fv__blob_uri_encode(&u, cursor, strlen(cursor), 0);
    }
    if (rc < 0) {
        fv_buf_dispose(&u);
        return rc;
    }
    s3_op_t *op = op_new(bs, S3_LIST, NULL, (void *)cb, data);
    fv_free(op->url);
    op->url = fv_buf_steal(&u, NULL);
    add_hdr(op, "x-amz-content-sha256", S3_EMPTY_SHA256);
    op->max_response = S3_MAX_LIST_BYTES;
    return start_op(op);
}

/* ---- writer: buffered, hashed on the way, one PUT at finish ---- */

static int s3_put_begin(fv_blob_t *bs, const char *key, fv_blob_writer_t **out, fv_error_t *err)
{
    s3_writer_t *w = fv_calloc(1, sizeof(*w));
    fv_buf_init(&w->body, bs->max_object_bytes);
    *out = &w->base;
    return 0;
}

static void report_write(void *arg)
{
    s3_writer_t *w = arg;
    fv__blob_write_done(&w->base, w->rc);
}

static int s3_put_write(fv_blob_writer_t *base, const void *data, size_t len)
{
    s3_writer_t *w = (s3_writer_t *)base;
    w->rc = fv_buf_append(&w->body, data, len);
    if (w->rc == 0) {
        crypto_hash_sha256_update(&base->sha, data, len);
        base->size += len;
    } else {
        fv_buf_dispose(&w->body);   /* dead now: drop what we held */
    }
    fv__blob_defer(base->bs, report_write, w);
    return 0;
}

static int s3_put_finish(fv_blob_writer_t *base)
{
    s3_writer_t *w = (s3_writer_t *)base;
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256_final(&base->sha, digest);
    fv__blob_hex(digest, sizeof(digest), hex);
    s3_op_t *op = op_new(base->bs, S3_PUT, base->key, NULL, NULL);
    op->w = w;
    add_hdr(op, "x-amz-content-sha256", hex);    /* hdr[0]: finish_op reads it back */
    add_hdr(op, "x-amz-meta-sha256", hex);
    if (base->content_type[0])
        add_hdr(op, "Content-Type", base->content_type);
    op->body = w->body.ptr ? w->body.ptr : "";
    op->body_len = w->body.len;
    if (!op->url) {
        op_free(op);
        return FV_ENOMEM;
    }
    s3_store_t *s = store_of(base->bs);
    fv_curl_req_t q = {
        .method = "PUT", .url = op->url, .headers = (const char *const *)op->hdr,
        .header_count = op->hdr_count, .body = op->body, .body_len = op->body_len,
        .max_response_bytes = 64 * 1024, .timeout_ms = s->timeout_ms, .aws_sigv4 = s->sigv4,
        .userpwd = s->userpwd,
    };
    int rc = fv_curl_request(s->cl, &q, on_op_done, op);
    if (rc < 0)
        op_free(op);
    return rc;
}

static void s3_put_abort(fv_blob_writer_t *base)
{
    s3_writer_t *w = (s3_writer_t *)base;
    fv_buf_dispose(&w->body);
    fv__blob_writer_release(base);
}

/* ---- presign ---- */

static int s3_presign_get(fv_blob_t *bs, const char *key, uint32_t expires_s, int64_t now_s,
                          char **url_out, fv_error_t *err)
{
    s3_store_t *s = store_of(bs);
    fv_buf_t path, out;
    fv_buf_init(&path, 0);
    fv_buf_init(&out, 0);
    int rc = fv_buf_printf(&path, "/%s/", s->bucket);
    if (rc == 0)
        rc = fv__blob_uri_encode(&path, key, strlen(key), 1);
    if (rc == 0)
        rc = fv__s3_presign(&out, s->scheme, s->host, path.ptr, s->access_key, s->secret_key,
                            s->region, (time_t)now_s, expires_s);
    fv_buf_dispose(&path);
    if (rc < 0) {
        fv_buf_dispose(&out);
        return fv_error_set(err, rc, "presign: %s", fv_strerror(rc));
    }
    *url_out = fv_buf_steal(&out, NULL);
    return 0;
}

const fv_blob_ops_t fv__blob_s3_ops = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .put_begin = s3_put_begin,
    .put_write = s3_put_write,
    .put_finish = s3_put_finish,
    .put_abort = s3_put_abort,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
    .presign_get = s3_presign_get,
    .presign_verify = NULL,
};
