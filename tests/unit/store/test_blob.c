/* test_blob.c - the blob store conformance suite: one set of tests run unchanged against the
 * directory-tree backend (file:TMPDIR) and a real S3-compatible server (s3rver, URL from
 * $FV_TEST_SERVERS/s3.url; each test gets a fresh bucket, which also exercises bucket creation).
 * Plus the SigV4 presigning test vector, key validation, and a fault test that kills a private
 * s3rver and starts it again. Every wait is bounded by a watchdog timer.
 * fv-test-needs: servers (PostgreSQL, Redis, S3 started once per suite by CTest fixtures) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop_wait.h"

#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "store/blob.h"
#include "store/blob_internal.h"

/* ---- harness ---- */

typedef struct env {
    uv_loop_t loop;
    fv_blob_t *bs;
    int is_s3;
    char dir[256];
    char url[512];
    int closed;
} env_t;

static void run_until(uv_loop_t *loop, const int *counter, int want)
{
    fv_test_run_until(loop, counter, want, 30000);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[512];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static unsigned bucket_seq;

/* s3://finalverse-test?endpoint=... becomes s3://fvt-PID-N?endpoint=... */
static void fresh_bucket_url(char *out, size_t cap, const char *url)
{
    const char *q = strchr(url, '?');
    assert_non_null(q);
    snprintf(out, cap, "s3://fvt-%d-%u%s", (int)getpid(), ++bucket_seq, q);
}

static fv_blob_opts_t s3_opts(size_t max)
{
    fv_blob_opts_t o = {.max_object_bytes = max, .access_key = "S3RVER",
                        .secret_key = "S3RVER", .presign_secret = "test-secret"};
    return o;
}

static void open_env(env_t *e, size_t max)
{
    fv_error_t err = {0};
    fv_blob_opts_t o = s3_opts(max);
    int rc = fv_blob_open(&e->loop, e->url, &o, &e->bs, &err);
    if (rc < 0)
        fail_msg("open %s: %s", e->url, err.msg);
}

static int setup_fs(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    uv_loop_init(&e->loop);
    snprintf(e->dir, sizeof(e->dir), "/tmp/fv-blob-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->url, sizeof(e->url), "file:%s/blobs", e->dir);
    open_env(e, 0);
    *state = e;
    return 0;
}

static int setup_s3(void **state)
{
    const char *servers = getenv("FV_TEST_SERVERS");
    if (!servers)
        fail_msg("FV_TEST_SERVERS is not set: run under ctest");
    char path[512];
    snprintf(path, sizeof(path), "%s/s3.url", servers);
    char *url = read_text(path);
    if (!url)
        fail_msg("no %s: the s3 fixture did not start", path);
    env_t *e = calloc(1, sizeof(*e));
    uv_loop_init(&e->loop);
    e->is_s3 = 1;
    fresh_bucket_url(e->url, sizeof(e->url), url);
    open_env(e, 0);
    *state = e;
    return 0;
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

static void close_env(env_t *e)
{
    if (e->bs) {
        fv_blob_close(e->bs, on_closed, &e->closed);
        run_until(&e->loop, &e->closed, 1);
        e->bs = NULL;
    }
}

static int teardown(void **state)
{
    env_t *e = *state;
    close_env(e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    if (e->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        assert_int_equal(system(cmd), 0);
    }
    free(e);
    return 0;
}

/* ---- synchronous wrappers over the async API, for the tests ---- */

typedef struct res {
    int calls;
    int rc;
    fv_blob_meta_t meta;
    fv_buf_t body;
    char *keys[64];
    uint64_t sizes[64];
    size_t count;
    char next[2048];
    int has_next;
} res_t;

static void res_init(res_t *r)
{
    memset(r, 0, sizeof(*r));
    fv_buf_init(&r->body, 0);
}

static void res_dispose(res_t *r)
{
    fv_buf_dispose(&r->body);
    for (size_t i = 0; i < r->count; i++)
        free(r->keys[i]);
}

static void on_done(int rc, const fv_blob_meta_t *meta, void *data)
{
    res_t *r = data;
    r->calls++;
    r->rc = rc;
    if (meta)
        r->meta = *meta;
}

static void on_get(int rc, const fv_blob_meta_t *meta, fv_slice_t body, void *data)
{
    res_t *r = data;
    r->calls++;
    r->rc = rc;
    if (meta)
        r->meta = *meta;
    if (rc == 0)
        assert_int_equal(fv_buf_append(&r->body, body.ptr, body.len), 0);
}

static void on_list(int rc, const fv_blob_list_t *page, void *data)
{
    res_t *r = data;
    r->calls++;
    r->rc = rc;
    if (rc < 0)
        return;
    assert_true(page->count <= 64);
    for (size_t i = 0; i < page->count; i++) {
        r->keys[i] = strdup(page->entries[i].key);
        r->sizes[i] = page->entries[i].size;
    }
    r->count = page->count;
    r->has_next = page->next_cursor != NULL;
    if (page->next_cursor)
        snprintf(r->next, sizeof(r->next), "%s", page->next_cursor);
}

static int put(env_t *e, const char *key, const void *data, size_t len, const char *ct,
               fv_blob_meta_t *meta)
{
    res_t r;
    res_init(&r);
    fv_error_t err = {0};
    int rc = fv_blob_put(e->bs, key, data, len, ct, on_done, &r, &err);
    if (rc < 0)
        return rc;
    assert_int_equal(r.calls, 0);
    run_until(&e->loop, &r.calls, 1);
    if (meta)
        *meta = r.meta;
    return r.rc;
}

static int get(env_t *e, const char *key, uint64_t start, uint64_t len, res_t *r)
{
    res_init(r);
    fv_error_t err = {0};
    int rc = fv_blob_get(e->bs, key, start, len, on_get, r, &err);
    if (rc < 0)
        return rc;
    run_until(&e->loop, &r->calls, 1);
    assert_int_equal(r->calls, 1);
    return r->rc;
}

static int head(env_t *e, const char *key, fv_blob_meta_t *meta)
{
    res_t r;
    res_init(&r);
    int rc = fv_blob_head(e->bs, key, on_done, &r, NULL);
    if (rc < 0)
        return rc;
    run_until(&e->loop, &r.calls, 1);
    if (meta)
        *meta = r.meta;
    return r.rc;
}

static int del(env_t *e, const char *key)
{
    res_t r;
    res_init(&r);
    int rc = fv_blob_delete(e->bs, key, on_done, &r, NULL);
    if (rc < 0)
        return rc;
    run_until(&e->loop, &r.calls, 1);
    return r.rc;
}

static int list(env_t *e, const char *prefix, size_t max, const char *cursor, res_t *r)
{
    res_init(r);
    int rc = fv_blob_list(e->bs, prefix, max, cursor, on_list, r, NULL);
    if (rc < 0)
        return rc;
    run_until(&e->loop, &r->calls, 1);
    return r->rc;
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    crypto_hash_sha256(d, data, len);
    fv__blob_hex(d, 32, out);
}

/* ---- the conformance tests ---- */

static void roundtrip_binary(void **state)
{
    env_t *e = *state;
    unsigned char data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (unsigned char)i;
    char want[65];
    sha_hex(data, sizeof(data), want);
    fv_blob_meta_t m;
    assert_int_equal(put(e, "meshes/tree one.bin", data, sizeof(data), "application/x-test", &m),
                     0);
    assert_int_equal(m.size, 256);
    assert_string_equal(m.sha256, want);
    assert_true(m.etag[0] != '\0');
    res_t r;
    assert_int_equal(get(e, "meshes/tree one.bin", 0, 0, &r), 0);
    assert_int_equal(r.body.len, 256);
    assert_memory_equal(r.body.ptr, data, 256);
    assert_int_equal(r.meta.size, 256);
    assert_string_equal(r.meta.sha256, want);
    assert_string_equal(r.meta.content_type, "application/x-test");
    res_dispose(&r);
    assert_int_equal(head(e, "meshes/tree one.bin", &m), 0);
    assert_int_equal(m.size, 256);
    assert_string_equal(m.sha256, want);
    assert_string_equal(m.content_type, "application/x-test");
    /* Overwrite replaces. */
    assert_int_equal(put(e, "meshes/tree one.bin", "xyz", 3, NULL, &m), 0);
    assert_int_equal(get(e, "meshes/tree one.bin", 0, 0, &r), 0);
    assert_int_equal(r.body.len, 3);
    assert_memory_equal(r.body.ptr, "xyz", 3);
    res_dispose(&r);
    /* UTF-8 keys are fine. */
    assert_int_equal(put(e, "audio/chanson-\xc3\xa9t\xc3\xa9.ogg", "la", 2, NULL, NULL), 0);
    assert_int_equal(head(e, "audio/chanson-\xc3\xa9t\xc3\xa9.ogg", &m), 0);
    assert_int_equal(m.size, 2);
}

static void empty_object(void **state)
{
    env_t *e = *state;
    char want[65];
    sha_hex("", 0, want);
    fv_blob_meta_t m;
    assert_int_equal(put(e, "empty", "", 0, NULL, &m), 0);
    assert_int_equal(m.size, 0);
    assert_string_equal(m.sha256, want);
    res_t r;
    assert_int_equal(get(e, "empty", 0, 0, &r), 0);
    assert_int_equal(r.body.len, 0);
    res_dispose(&r);
    assert_int_equal(head(e, "empty", &m), 0);
    assert_int_equal(m.size, 0);
}

typedef struct stream {
    env_t *e;
    fv_blob_writer_t *w;
    const unsigned char *data;
    size_t len, off, chunk;
    int writes, finished, rc;
    fv_blob_meta_t meta;
} stream_t;

static void on_stream_finish(int rc, const fv_blob_meta_t *meta, void *data)
{
    stream_t *s = data;
    s->finished++;
    s->rc = rc;
    if (meta)
        s->meta = *meta;
}

static void on_stream_write(int rc, void *data)
{
    stream_t *s = data;
    s->writes++;
    if (rc < 0) {
        s->rc = rc;
        s->finished++;
        fv_blob_put_abort(s->w);
        return;
    }
    if (s->off == s->len) {
        assert_int_equal(fv_blob_put_finish(s->w, on_stream_finish, s), 0);
        return;
    }
    size_t n = s->len - s->off < s->chunk ? s->len - s->off : s->chunk;
    const unsigned char *p = s->data + s->off;
    s->off += n;
    assert_int_equal(fv_blob_put_write(s->w, p, n, on_stream_write, s), 0);
    assert_int_equal(fv_blob_put_write(s->w, p, n, on_stream_write, s), FV_EAGAIN);
}

static int put_streamed(env_t *e, fv_blob_t *bs, const char *key, const unsigned char *data,
                        size_t len, size_t chunk, stream_t *s)
{
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->data = data;
    s->len = len;
    s->chunk = chunk;
    fv_error_t err = {0};
    int rc = fv_blob_put_begin(bs, key, "application/octet-stream", &s->w, &err);
    if (rc < 0)
        return rc;
    size_t n = len < chunk ? len : chunk;
    s->off = n;
    assert_int_equal(fv_blob_put_write(s->w, data, n, on_stream_write, s), 0);
    run_until(&e->loop, &s->finished, 1);
    return s->rc;
}

static void streamed_5mib(void **state)
{
    env_t *e = *state;
    size_t len = 5u * 1024 * 1024 + 123;
    unsigned char *data = malloc(len);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    char want[65];
    sha_hex(data, len, want);
    stream_t s;
    assert_int_equal(put_streamed(e, e->bs, "big/stream.bin", data, len, 64 * 1024, &s), 0);
    assert_true(s.writes > 80);
    assert_int_equal(s.meta.size, len);
    assert_string_equal(s.meta.sha256, want);
    res_t r;
    assert_int_equal(get(e, "big/stream.bin", 0, 0, &r), 0);
    assert_int_equal(r.body.len, len);
    assert_memory_equal(r.body.ptr, data, len);
    char got[65];
    sha_hex(r.body.ptr, r.body.len, got);
    assert_string_equal(got, want);
    res_dispose(&r);
    free(data);
}

static void range_gets(void **state)
{
    env_t *e = *state;
    char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(put(e, "r", data, sizeof(data), NULL, NULL), 0);
    res_t r;
    assert_int_equal(get(e, "r", 0, 10, &r), 0);         /* start */
    assert_int_equal(r.body.len, 10);
    assert_memory_equal(r.body.ptr, data, 10);
    assert_int_equal(r.meta.size, 1000);
    res_dispose(&r);
    assert_int_equal(get(e, "r", 500, 100, &r), 0);      /* middle */
    assert_int_equal(r.body.len, 100);
    assert_memory_equal(r.body.ptr, data + 500, 100);
    assert_int_equal(r.meta.size, 1000);
    res_dispose(&r);
    assert_int_equal(get(e, "r", 990, 100, &r), 0);      /* clamped at the end */
    assert_int_equal(r.body.len, 10);
    assert_memory_equal(r.body.ptr, data + 990, 10);
    res_dispose(&r);
    assert_int_equal(get(e, "r", 700, 0, &r), 0);        /* to the end */
    assert_int_equal(r.body.len, 300);
    assert_memory_equal(r.body.ptr, data + 700, 300);
    res_dispose(&r);
    assert_int_equal(get(e, "r", 1000, 0, &r), FV_EINVAL);   /* past the end */
    res_dispose(&r);
    assert_int_equal(get(e, "r", 5000, 10, &r), FV_EINVAL);
    res_dispose(&r);
    assert_int_equal(get(e, "missing", 0, 10, &r), FV_ENOENT);
    res_dispose(&r);
}

static void head_and_delete(void **state)
{
    env_t *e = *state;
    assert_int_equal(head(e, "d/x", NULL), FV_ENOENT);
    assert_int_equal(put(e, "d/x", "hello", 5, "text/plain", NULL), 0);
    fv_blob_meta_t m;
    assert_int_equal(head(e, "d/x", &m), 0);
    assert_int_equal(m.size, 5);
    assert_string_equal(m.content_type, "text/plain");
    assert_int_equal(del(e, "d/x"), 0);
    res_t r;
    assert_int_equal(get(e, "d/x", 0, 0, &r), FV_ENOENT);
    res_dispose(&r);
    assert_int_equal(head(e, "d/x", NULL), FV_ENOENT);
    assert_int_equal(del(e, "d/x"), 0);                  /* deleting nothing is fine */
    assert_int_equal(del(e, "never/was"), 0);
}

static void list_by_prefix(void **state)
{
    env_t *e = *state;
    char key[64];
    for (int i = 24; i >= 0; i--) {                      /* out of order on purpose */
        snprintf(key, sizeof(key), "a/k%02d", i);
        assert_int_equal(put(e, key, key, strlen(key), NULL, NULL), 0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "b/deep/x%d", i);
        assert_int_equal(put(e, key, "1", 1, NULL, NULL), 0);
    }
    assert_int_equal(put(e, "a-top", "t", 1, NULL, NULL), 0);

    /* Pages of 10 over "a/": 10, 10, 5, in byte order, cursors chaining. */
    res_t r;
    char cursor[2048] = "";
    int seen = 0;
    for (int page = 0; page < 3; page++) {
        assert_int_equal(list(e, "a/", 10, page ? cursor : NULL, &r), 0);
        assert_int_equal(r.count, page < 2 ? 10 : 5);
        for (size_t i = 0; i < r.count; i++) {
            snprintf(key, sizeof(key), "a/k%02d", seen++);
            assert_string_equal(r.keys[i], key);
            assert_int_equal(r.sizes[i], strlen(key));
        }
        assert_int_equal(r.has_next, page < 2);
        snprintf(cursor, sizeof(cursor), "%s", r.next);
        res_dispose(&r);
    }
    assert_int_equal(list(e, "b/", 0, NULL, &r), 0);
    assert_int_equal(r.count, 5);
    assert_string_equal(r.keys[0], "b/deep/x0");
    assert_false(r.has_next);
    res_dispose(&r);
    assert_int_equal(list(e, "a", 0, NULL, &r), 0);     /* a prefix, not a directory */
    assert_int_equal(r.count, 26);
    /* S3 and the fs backend sort by bytes ('-' before '/'); s3rver lists in the order of its
     * directory walk, so only the set is checked against it. */
    if (!e->is_s3)
        assert_string_equal(r.keys[0], "a-top");
    int found = 0;
    for (size_t i = 0; i < r.count; i++)
        found += strcmp(r.keys[i], "a-top") == 0;
    assert_int_equal(found, 1);
    res_dispose(&r);
    assert_int_equal(list(e, "", 64, NULL, &r), 0);
    assert_int_equal(r.count, 31);
    res_dispose(&r);
    assert_int_equal(list(e, "zzz", 0, NULL, &r), 0);
    assert_int_equal(r.count, 0);
    assert_false(r.has_next);
    res_dispose(&r);
}

static void bad_keys_refused(void **state)
{
    env_t *e = *state;
    static const struct {
        const char *key;
        const char *says;
    } bad[] = {
        {"../etc/passwd", "path traversal"},
        {"a/../../b", "path traversal"},
        {"a/..", "'..'"},
        {"/abs", "starts with '/'"},
        {"", "empty"},
        {"a//b", "empty segment"},
        {"a/", "empty segment"},
        {"./a", "'.' segment"},
        {"a\\..\\b", "backslash"},
        {"a\x01z", "control character"},
        {"a\x7fz", "control character"},
        {"bad\xff", "UTF-8"},
        {"over\xc0\xaflong", "UTF-8"},
        {"sur\xed\xa0\x80", "UTF-8"},
    };
    res_t r;
    res_init(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fv_error_t err = {0};
        assert_int_equal(fv_blob_put(e->bs, bad[i].key, "x", 1, NULL, on_done, &r, &err),
                         FV_EINVAL);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("key %zu: \"%s\" does not say \"%s\"", i, err.msg, bad[i].says);
        assert_int_equal(fv_blob_get(e->bs, bad[i].key, 0, 0, on_get, &r, NULL), FV_EINVAL);
        assert_int_equal(fv_blob_head(e->bs, bad[i].key, on_done, &r, NULL), FV_EINVAL);
        assert_int_equal(fv_blob_delete(e->bs, bad[i].key, on_done, &r, NULL), FV_EINVAL);
        char *u = NULL;
        assert_int_equal(fv_blob_presign_get(e->bs, bad[i].key, 60, &u, NULL), FV_EINVAL);
        assert_null(u);
    }
    char longkey[FV_BLOB_MAX_KEY_LEN + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    fv_error_t err = {0};
    assert_int_equal(fv_blob_put(e->bs, longkey, "x", 1, NULL, on_done, &r, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "1025 bytes"));
    longkey[FV_BLOB_MAX_KEY_LEN] = '\0';                 /* exactly the limit is fine */
    assert_int_equal(fv_blob_key_check(fv_slice_cstr(longkey), NULL), 0);
    /* An embedded NUL in a sized key. */
    assert_int_equal(fv_blob_key_check(fv_slice("a\0b", 3), &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
    assert_int_equal(r.calls, 0);                        /* refused calls never call back */
    res_t l;
    assert_int_equal(list(e, "", 0, NULL, &l), 0);
    assert_int_equal(l.count, 0);                        /* and nothing was stored */
    res_dispose(&l);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void oversize_refused(void **state)
{
    env_t *e = *state;
    /* A second handle on the same store with a small ceiling. */
    fv_blob_t *small = NULL;
    fv_blob_opts_t o = s3_opts(1000);
    assert_int_equal(fv_blob_open(&e->loop, e->url, &o, &small, NULL), 0);
    fv_blob_t *big = e->bs;
    e->bs = small;
    char data[2500];
    memset(data, 'z', sizeof(data));
    assert_int_equal(put(e, "too/big", data, 1001, NULL, NULL), FV_ETOOBIG);
    assert_int_equal(put(e, "ok/fits", data, 1000, NULL, NULL), 0);
    stream_t s;
    assert_int_equal(put_streamed(e, small, "too/streamed", (unsigned char *)data, 2500, 600,
                                  &s), FV_ETOOBIG);
    assert_int_equal(s.writes, 2);                       /* 600 fits, 1200 does not */
    /* A get over the ceiling is refused too. */
    e->bs = big;
    assert_int_equal(put(e, "big/one", data, 2500, NULL, NULL), 0);
    e->bs = small;
    res_t r;
    assert_int_equal(get(e, "big/one", 0, 0, &r), FV_ETOOBIG);
    res_dispose(&r);
    assert_int_equal(get(e, "big/one", 0, 500, &r), 0);     /* a range that fits is fine */
    assert_int_equal(r.body.len, 500);
    res_dispose(&r);
    /* Nothing left behind. */
    assert_int_equal(list(e, "too", 0, NULL, &r), 0);
    assert_int_equal(r.count, 0);
    res_dispose(&r);
    assert_int_equal(head(e, "too/big", NULL), FV_ENOENT);
    assert_int_equal(head(e, "too/streamed", NULL), FV_ENOENT);
    if (!e->is_s3) {
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s/blobs/.fv-tmp", e->dir);
        assert_int_equal(count_files(tmp), 0);
    }
    int closed = 0;
    fv_blob_close(small, on_closed, &closed);
    run_until(&e->loop, &closed, 1);
    e->bs = big;
}

static void on_write_count(int rc, void *data)
{
    res_t *r = data;
    r->calls++;
    r->rc = rc;
}

static void abort_leaves_nothing(void **state)
{
    env_t *e = *state;
    fv_blob_writer_t *w;
    assert_int_equal(fv_blob_put_begin(e->bs, "aborted/one", NULL, &w, NULL), 0);
    res_t r;
    res_init(&r);
    /* A write, then abort while it is pending: its callback says cancelled. */
    assert_int_equal(fv_blob_put_write(w, "abc", 3, on_write_count, &r), 0);
    fv_blob_put_abort(w);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, FV_ECANCELED);
    assert_int_equal(head(e, "aborted/one", NULL), FV_ENOENT);
    if (!e->is_s3) {
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s/blobs/.fv-tmp", e->dir);
        for (int i = 0; i < 100 && count_files(tmp); i++)
            uv_run(&e->loop, UV_RUN_ONCE);               /* the release job removes it */
        assert_int_equal(count_files(tmp), 0);
    }
    res_dispose(&r);
}

static void presigned_get(void **state)
{
    env_t *e = *state;
    assert_int_equal(put(e, "pub/hello world.txt", "presigned!", 10, "text/plain", NULL), 0);
    char *url = NULL;
    fv_error_t err = {0};
    assert_int_equal(fv_blob_presign_get(e->bs, "pub/hello world.txt", 300, &url, &err), 0);
    assert_non_null(url);
    assert_int_equal(fv_blob_presign_get(e->bs, "pub/x", 0, &url, &err), FV_EINVAL);
    assert_int_equal(fv_blob_presign_get(e->bs, "pub/x", 700000, &url, &err), FV_EINVAL);
    if (e->is_s3) {
        assert_non_null(strstr(url, "X-Amz-Signature="));
        assert_non_null(strstr(url, "/pub/hello%20world.txt?"));
        CURL *c = curl_easy_init();
        fv_buf_t body;
        fv_buf_init(&body, 1 << 20);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        FILE *f = tmpfile();
        curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 200);
        rewind(f);
        char got[64] = "";
        size_t n = fread(got, 1, sizeof(got) - 1, f);
        assert_int_equal(n, 10);
        assert_memory_equal(got, "presigned!", 10);
        fclose(f);
        curl_easy_cleanup(c);
        fv_buf_dispose(&body);
        char *key = NULL;
        assert_int_equal(fv_blob_presign_verify(e->bs, url, time(NULL), &key, &err),
                         FV_EINVAL);
    } else {
        char *key = NULL;
        assert_int_equal(fv_blob_presign_verify(e->bs, url, time(NULL), &key, &err), 0);
        assert_string_equal(key, "pub/hello world.txt");
        fv_free(key);
        key = NULL;
        assert_int_equal(fv_blob_presign_verify(e->bs, url, time(NULL) + 301, &key, &err),
                         FV_EFORBIDDEN);
        assert_non_null(strstr(err.msg, "expired"));
        /* Tampering with the key or the expiry breaks the signature. */
        char *forged = strdup(url);
        char *p = strstr(forged, "hello");
        p[0] = 'j';
        assert_int_equal(fv_blob_presign_verify(e->bs, forged, time(NULL), &key, &err),
                         FV_EFORBIDDEN);
        free(forged);
        forged = strdup(url);
        p = strstr(forged, "X-Fv-Expires=") + 13;
        p[0] = p[0] == '9' ? '8' : (char)(p[0] + 1);
        assert_int_equal(fv_blob_presign_verify(e->bs, forged, time(NULL), &key, &err),
                         FV_EFORBIDDEN);
        free(forged);
        assert_int_equal(fv_blob_presign_verify(e->bs, "fvblob:/..%2Fetc?X-Fv-Expires=1&"
                                                "X-Fv-Signature=00", time(NULL), &key, &err),
                         FV_EINVAL);
        assert_int_equal(fv_blob_presign_verify(e->bs, "http://x/", time(NULL), &key, &err),
                         FV_EINVAL);
        assert_null(key);
    }
    fv_free(url);
}

static void close_cancels_pending(void **state)
{
    env_t *e = *state;
    res_t p, g, h;
    res_init(&p);
    res_init(&g);
    res_init(&h);
    assert_int_equal(fv_blob_put(e->bs, "c/x", "data", 4, NULL, on_done, &p, NULL), 0);
    assert_int_equal(fv_blob_get(e->bs, "c/y", 0, 0, on_get, &g, NULL), 0);
    assert_int_equal(fv_blob_head(e->bs, "c/z", on_done, &h, NULL), 0);
    fv_blob_close(e->bs, on_closed, &e->closed);
    assert_int_equal(p.calls + g.calls + h.calls, 0);
    res_t late;
    res_init(&late);
    assert_int_equal(fv_blob_head(e->bs, "c/z", on_done, &late, NULL), FV_ECANCELED);
    run_until(&e->loop, &e->closed, 1);
    e->bs = NULL;
    assert_int_equal(p.calls, 1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(h.calls, 1);
    assert_int_equal(p.rc, FV_ECANCELED);
    assert_int_equal(g.rc, FV_ECANCELED);
    assert_int_equal(h.rc, FV_ECANCELED);
    assert_int_equal(late.calls, 0);
}

/* ---- not per backend ---- */

static void sigv4_presign_vector(void **state)
{
    /* The example of AWS's "Authenticating Requests: Using Query Parameters" page. */
    fv_buf_t out;
    fv_buf_init(&out, 0);
    assert_int_equal(fv__s3_presign(&out, "https", "examplebucket.s3.amazonaws.com", "/test.txt",
                                    "AKIAIOSFODNN7EXAMPLE",
                                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
                                    (time_t)1369353600, 86400),
                     0);
    assert_non_null(strstr(out.ptr, "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                                     "us-east-1%2Fs3%2Faws4_request"));
    assert_non_null(strstr(out.ptr, "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330d"
                                     "a4c265957d157751f604d404"));
    fv_buf_dispose(&out);
}

static void bad_urls_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const struct {
        const char *url;
        const char *says;
    } bad[] = {
        {"ftp://x", "unknown scheme"},
        {"file:", "no directory"},
        {"s3://Bad_Bucket?endpoint=http://127.0.0.1:1", "bucket name"},
        {"s3://bucket?endpoint=ftp://127.0.0.1:1", "endpoint"},
        {"s3://bucket?endpoint=http://127.0.0.1:1/path", "endpoint"},
        {"s3://bucket?colour=blue", "unknown s3 parameter"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fv_blob_t *bs = NULL;
        fv_error_t err = {0};
        fv_blob_opts_t o = s3_opts(0);
        int rc = fv_blob_open(&loop, bad[i].url, &o, &bs, &err);
        assert_true(rc < 0);
        assert_null(bs);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].url, err.msg, bad[i].says);
    }
    /* s3 without credentials anywhere. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    fv_blob_t *bs = NULL;
    fv_error_t err = {0};
    assert_int_equal(fv_blob_open(&loop, "s3://bucket?endpoint=http://127.0.0.1:1", NULL, &bs,
                                  &err), FV_ECONFIG);
    assert_non_null(strstr(err.msg, "AWS_ACCESS_KEY_ID"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void fs_reserved_names(void **state)
{
    env_t *e = *state;
    fv_error_t err = {0};
    res_t r;
    res_init(&r);
    assert_int_equal(fv_blob_put(e->bs, ".fv-tmp/x", "x", 1, NULL, on_done, &r, &err),
                     FV_EINVAL);
    assert_non_null(strstr(err.msg, "reserved"));
    assert_int_equal(r.calls, 0);
    /* A key below an object's name conflicts in a directory tree. */
    assert_int_equal(put(e, "obj", "1", 1, NULL, NULL), 0);
    assert_int_equal(put(e, "obj/child", "2", 1, NULL, NULL), FV_ECONFLICT);
    assert_int_equal(put(e, "dir/child", "2", 1, NULL, NULL), 0);
    assert_int_equal(put(e, "dir", "3", 1, NULL, NULL), FV_ECONFLICT);
    res_t l;
    assert_int_equal(list(e, "", 0, NULL, &l), 0);
    assert_int_equal(l.count, 2);
    res_dispose(&l);
}

/* Kill a private s3rver: requests fail with FV_EBACKEND; start it again on the same port:
 * the same handle works again, without being reopened. */
static void s3_server_goes_away(void **state)
{
    const char *src = getenv("FV_SRC");
    if (!src)
        fail_msg("FV_SRC is not set: run under ctest");
    env_t *e = calloc(1, sizeof(*e));
    *state = e;
    uv_loop_init(&e->loop);
    snprintf(e->dir, sizeof(e->dir), "/tmp/fv-s3fault-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/support/server_s3.sh' start '%s'", src, e->dir);
    assert_int_equal(system(cmd), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/s3.url", e->dir);
    char *url = read_text(path);
    assert_non_null(url);
    snprintf(e->url, sizeof(e->url), "%s", url);
    e->is_s3 = 1;
    open_env(e, 0);
    assert_int_equal(put(e, "before", "1", 1, NULL, NULL), 0);

    snprintf(path, sizeof(path), "%s/s3.pid", e->dir);
    int pid = atoi(read_text(path));
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
        usleep(20000);

    assert_int_equal(head(e, "before", NULL), FV_EBACKEND);
    assert_int_equal(put(e, "during", "2", 1, NULL, NULL), FV_EBACKEND);
    res_t r;
    assert_int_equal(list(e, "", 0, NULL, &r), FV_EBACKEND);
    res_dispose(&r);

    assert_int_equal(system(cmd), 0);                    /* same DIR: same port, same data */
    assert_int_equal(head(e, "before", NULL), 0);
    assert_int_equal(put(e, "after", "3", 1, NULL, NULL), 0);
    assert_int_equal(get(e, "after", 0, 0, &r), 0);
    assert_memory_equal(r.body.ptr, "3", 1);
    res_dispose(&r);

    /* Its data wiped as well (a fresh server): the bucket is made again on demand. */
    pid = atoi(read_text(path));
    assert_int_equal(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
        usleep(20000);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/s3' && bash '%s/tests/support/server_s3.sh' start '%s'",
             e->dir, src, e->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(put(e, "fresh", "4", 1, NULL, NULL), 0);
    assert_int_equal(head(e, "fresh", NULL), 0);

    close_env(e);
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/support/server_s3.sh' stop '%s'", src, e->dir);
    assert_int_equal(system(cmd), 0);
}

/* Requests are signed: s3rver refuses an access key it does not know (403), which it can only
 * do when an Authorization header arrived. */
static void s3_wrong_credentials(void **state)
{
    env_t *e = *state;
    fv_blob_t *bad = NULL;
    fv_blob_opts_t o = s3_opts(0);
    o.access_key = "NOT-A-KEY";
    assert_int_equal(fv_blob_open(&e->loop, e->url, &o, &bad, NULL), 0);
    fv_blob_t *good = e->bs;
    e->bs = bad;
    assert_int_equal(put(e, "x", "1", 1, NULL, NULL), FV_EFORBIDDEN);
    assert_int_equal(head(e, "x", NULL), FV_EFORBIDDEN);
    int closed = 0;
    fv_blob_close(bad, on_closed, &closed);
    run_until(&e->loop, &closed, 1);
    e->bs = good;
}

static int teardown_plain(void **state)
{
    return 0;
}

/* Found by fuzz_s3_list: an empty element (<IsTruncated></IsTruncated>, <Size></Size>) left
 * the scan's buffer without storage, and it was then read as a C string (NULL). */
static void test_issue_s3_list_empty_element(void **state)
{
    static const char body[] = "<ListBucketResult><IsTruncated></IsTruncated>"
                               "<Contents><Key>k</Key><Size></Size><ETag></ETag></Contents>"
                               "<NextContinuationToken></NextContinuationToken>"
                               "</ListBucketResult>";
    fv_blob_list_t page;
    assert_int_equal(fv__s3_list_parse(fv_slice(body, sizeof(body) - 1), &page), 0);
    assert_int_equal(page.count, 1);
    assert_string_equal(page.entries[0].key, "k");
    assert_int_equal(page.entries[0].size, 0);
    assert_string_equal(page.entries[0].etag, "");
    assert_null(page.next_cursor);
    fv__s3_list_free(&page);
    static const char only[] = "<IsTruncated></IsTruncated>";
    assert_int_equal(fv__s3_list_parse(fv_slice(only, sizeof(only) - 1), &page), 0);
    assert_int_equal(page.count, 0);
    fv__s3_list_free(&page);
}

#define CONFORMANCE(setup)                                                   \
    cmocka_unit_test_setup_teardown(roundtrip_binary, setup, teardown),      \
    cmocka_unit_test_setup_teardown(empty_object, setup, teardown),          \
    cmocka_unit_test_setup_teardown(streamed_5mib, setup, teardown),         \
    cmocka_unit_test_setup_teardown(range_gets, setup, teardown),            \
    cmocka_unit_test_setup_teardown(head_and_delete, setup, teardown),       \
    cmocka_unit_test_setup_teardown(list_by_prefix, setup, teardown),        \
    cmocka_unit_test_setup_teardown(bad_keys_refused, setup, teardown),      \
    cmocka_unit_test_setup_teardown(oversize_refused, setup, teardown),      \
    cmocka_unit_test_setup_teardown(abort_leaves_nothing, setup, teardown),  \
    cmocka_unit_test_setup_teardown(presigned_get, setup, teardown),         \
    cmocka_unit_test_setup_teardown(close_cancels_pending, setup, teardown)

int main(void)
{
    const struct CMUnitTest fs_tests[] = {
        CONFORMANCE(setup_fs),
        cmocka_unit_test_setup_teardown(fs_reserved_names, setup_fs, teardown),
    };
    const struct CMUnitTest s3_tests[] = {
        CONFORMANCE(setup_s3),
        cmocka_unit_test_setup_teardown(s3_wrong_credentials, setup_s3, teardown),
        cmocka_unit_test_teardown(s3_server_goes_away, teardown),
    };
    const struct CMUnitTest other_tests[] = {
        cmocka_unit_test_teardown(sigv4_presign_vector, teardown_plain),
        cmocka_unit_test_teardown(bad_urls_refused, teardown_plain),
        cmocka_unit_test_teardown(test_issue_s3_list_empty_element, teardown_plain),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int failed = cmocka_run_group_tests_name("blob_other", other_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("blob_fs", fs_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("blob_s3", s3_tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
