/* test_blob_fault.c - allocation-fault tests for the blob store's directory-tree backend
 * (file: on a temp dir; STYLE.md sec. 12): put (one-shot and streamed), get (whole and range),
 * list (more keys than the first key-array growth), delete and presign, each with the Nth
 * checked allocation failing for N = 1, 2, ... until none fails. Every run ends in the right
 * answer or a clean error; a failed put leaves no object and no temp file; ASan checks leaks.
 * The S3 backend is not covered here. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "store/blob.h"

#define OBJ_LEN 5000
#define LIST_KEYS 70   /* over the 64 the key array starts with */

static char obj_data[OBJ_LEN];

typedef struct env {
    uv_loop_t loop;
    uv_timer_t watchdog;
    fv_blob_t *bs;
    char dir[64];
    char root[128];
    bool timed_out;
    int calls;
    int rc;
    fv_blob_meta_t meta;
    char *body;
    size_t body_len;
    size_t list_count;
    bool list_sorted;
    char first_key[64];
    char next_cursor[64];
    bool closed;
} env_t;

static void on_watchdog(uv_timer_t *t)
{
    env_t *e = t->data;
    e->timed_out = true;
    uv_stop(&e->loop);
}

static void env_init(env_t *e)
{
    memset(e, 0, sizeof(*e));
    memset(obj_data, 'o', sizeof(obj_data));
    for (size_t i = 0; i < sizeof(obj_data); i += 97)
        obj_data[i] = (char)('a' + i % 26);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->watchdog);
    e->watchdog.data = e;
    uv_timer_start(&e->watchdog, on_watchdog, 60000, 0);
    uv_unref((uv_handle_t *)&e->watchdog);
    snprintf(e->dir, sizeof(e->dir), "/tmp/fv-blobfault-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->root, sizeof(e->root), "%s/blobs", e->dir);
    char url[160];
    snprintf(url, sizeof(url), "file:%s", e->root);
    fv_blob_opts_t o = {.presign_secret = "fault-secret"};
    fv_error_t err = {0};
    assert_int_equal(fv_blob_open(&e->loop, url, &o, &e->bs, &err), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void on_closed(void *data)
{
    *(bool *)data = true;
}

static void env_finish(env_t *e)
{
    fv_blob_close(e->bs, on_closed, &e->closed);
    uv_close((uv_handle_t *)&e->watchdog, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(e->closed);
    assert_false(e->timed_out);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e->body);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs the loop until the operation's callback; the watchdog bounds it. */
static void wait_cb(env_t *e)
{
    uv_ref((uv_handle_t *)&e->watchdog);
    while (e->calls == 0 && !e->timed_out)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_unref((uv_handle_t *)&e->watchdog);
    assert_false(e->timed_out);
    /* nothing more may arrive for this operation */
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(e->calls, 1);
}

static size_t count_dir(const char *path)
{
    DIR *d = opendir(path);
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

static size_t tmp_files(const env_t *e)
{
    char p[192];
    snprintf(p, sizeof(p), "%s/.fv-tmp", e->root);
    return count_dir(p);
}

static void on_done(int rc, const fv_blob_meta_t *meta, void *data)
{
    env_t *e = data;
    e->calls++;
    e->rc = rc;
    if (rc == 0 && meta)
        e->meta = *meta;
}

static void on_get(int rc, const fv_blob_meta_t *meta, fv_slice_t body, void *data)
{
    env_t *e = data;
    e->calls++;
    e->rc = rc;
    free(e->body);
    e->body = NULL;
    e->body_len = 0;
    if (rc == 0) {
        e->meta = *meta;
        e->body = malloc(body.len ? body.len : 1);
        memcpy(e->body, body.ptr, body.len);
        e->body_len = body.len;
    }
}

static void on_list(int rc, const fv_blob_list_t *page, void *data)
{
    env_t *e = data;
    e->calls++;
    e->rc = rc;
    e->list_count = 0;
    e->first_key[0] = e->next_cursor[0] = '\0';
    if (rc == 0) {
        e->list_count = page->count;
        e->list_sorted = true;
        for (size_t i = 1; i < page->count; i++)
            if (strcmp(page->entries[i - 1].key, page->entries[i].key) >= 0)
                e->list_sorted = false;
        if (page->count)
            snprintf(e->first_key, sizeof(e->first_key), "%s", page->entries[0].key);
        if (page->next_cursor)
            snprintf(e->next_cursor, sizeof(e->next_cursor), "%s", page->next_cursor);
    }
}

static void on_written(int rc, void *data)
{
    env_t *e = data;
    e->calls++;
    e->rc = rc;
}

static void put_ok(env_t *e, const char *key)
{
    e->calls = 0;
    assert_int_equal(fv_blob_put(e->bs, key, obj_data, sizeof(obj_data), "text/plain", on_done,
                                 e, NULL), 0);
    wait_cb(e);
    assert_int_equal(e->rc, 0);
}

/* 1 when the object is there with the right bytes, 0 when it is not there. */
static int object_state(env_t *e, const char *key)
{
    e->calls = 0;
    assert_int_equal(fv_blob_get(e->bs, key, 0, 0, on_get, e, NULL), 0);
    wait_cb(e);
    if (e->rc == FV_ENOENT)
        return 0;
    assert_int_equal(e->rc, 0);
    assert_int_equal(e->body_len, sizeof(obj_data));
    assert_memory_equal(e->body, obj_data, sizeof(obj_data));
    return 1;
}

/* Arms the failure, runs start (which returns the call's rc) and waits for its callback. */
typedef int (*start_fn)(env_t *e, void *arg);

static int run_faulted(env_t *e, unsigned long n, start_fn start, void *arg, int *call_rc)
{
    e->calls = 0;
    e->rc = 1;
    fv_alloc_fail_at(n);
    *call_rc = start(e, arg);
    if (*call_rc == 0) {
        uv_ref((uv_handle_t *)&e->watchdog);
        while (e->calls == 0 && !e->timed_out)
            uv_run(&e->loop, UV_RUN_ONCE);
        uv_unref((uv_handle_t *)&e->watchdog);
        assert_false(e->timed_out);
    }
    int fired = fv_alloc_failed();
    fv_alloc_fail_at(0);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(e->calls, *call_rc == 0 ? 1 : 0);
    return fired;
}

static int start_put(env_t *e, void *arg)
{
    return fv_blob_put(e->bs, arg, obj_data, sizeof(obj_data), "text/plain", on_done, e, NULL);
}

static void put_oneshot(void **state)
{
    env_t e;
    env_init(&e);
    unsigned long n;
    for (n = 1;; n++) {
        char key[64];
        snprintf(key, sizeof(key), "p/%lu/obj.txt", n);
        int call_rc;
        int fired = run_faulted(&e, n, start_put, key, &call_rc);
        int rc = call_rc < 0 ? call_rc : e.rc;
        assert_int_equal(tmp_files(&e), 0);
        if (rc == 0) {
            assert_int_equal(e.meta.size, sizeof(obj_data));
            assert_string_equal(e.meta.content_type, "text/plain");
            assert_int_equal(object_state(&e, key), 1);
        } else {
            assert_true(fired);
            assert_int_equal(rc, FV_ENOMEM);
            assert_int_equal(object_state(&e, key), 0);
        }
        if (!fired)
            break;
    }
    env_finish(&e);
}

/* The streamed put: begin, two writes, finish; a failure anywhere aborts the writer. */
static int streamed_put(env_t *e, const char *key)
{
    fv_blob_writer_t *w = NULL;
    int rc = fv_blob_put_begin(e->bs, key, "application/x-test", &w, NULL);
    if (rc < 0)
        return rc;
    size_t half = sizeof(obj_data) / 2;
    const char *parts[2] = {obj_data, obj_data + half};
    size_t lens[2] = {half, sizeof(obj_data) - half};
    for (int i = 0; i < 2; i++) {
        e->calls = 0;
        rc = fv_blob_put_write(w, parts[i], lens[i], on_written, e);
        if (rc == 0) {
            wait_cb(e);
            rc = e->rc;
        }
        if (rc < 0) {
            fv_blob_put_abort(w);
            return rc;
        }
    }
    e->calls = 0;
    rc = fv_blob_put_finish(w, on_done, e);
    if (rc < 0) {
        fv_blob_put_abort(w);
        return rc;
    }
    wait_cb(e);
    return e->rc;
}

static void put_streamed(void **state)
{
    env_t e;
    env_init(&e);
    for (unsigned long n = 1;; n++) {
        char key[64];
        snprintf(key, sizeof(key), "s/%lu.bin", n);
        fv_alloc_fail_at(n);
        int rc = streamed_put(&e, key);
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        /* let an aborted writer's clean-up run */
        for (int i = 0; i < 50 && tmp_files(&e) > 0; i++) {
            uv_run(&e.loop, UV_RUN_NOWAIT);
            usleep(1000);
        }
        assert_int_equal(tmp_files(&e), 0);
        if (rc == 0) {
            assert_int_equal(e.meta.size, sizeof(obj_data));
            assert_int_equal(object_state(&e, key), 1);
        } else {
            assert_true(fired);
            assert_int_equal(rc, FV_ENOMEM);
            assert_int_equal(object_state(&e, key), 0);
        }
        if (!fired)
            break;
    }
    env_finish(&e);
}

typedef struct range {
    uint64_t start, len;
} range_t;

static int start_get(env_t *e, void *arg)
{
    const range_t *r = arg;
    return fv_blob_get(e->bs, "g/obj", r->start, r->len, on_get, e, NULL);
}

static void get_whole_and_range(void **state)
{
    env_t e;
    env_init(&e);
    put_ok(&e, "g/obj");
    range_t ranges[] = {{0, 0}, {100, 1000}};
    for (int k = 0; k < 2; k++) {
        unsigned long n;
        for (n = 1;; n++) {
            int call_rc;
            int fired = run_faulted(&e, n, start_get, &ranges[k], &call_rc);
            int rc = call_rc < 0 ? call_rc : e.rc;
            if (rc == 0) {
                size_t want = ranges[k].len ? ranges[k].len : sizeof(obj_data);
                assert_int_equal(e.body_len, want);
                assert_memory_equal(e.body, obj_data + ranges[k].start, want);
                assert_int_equal(e.meta.size, sizeof(obj_data));
            } else {
                assert_true(fired);
                assert_int_equal(rc, FV_ENOMEM);
            }
            if (!fired)
                break;
        }
        assert_true(n >= 2);
    }
    env_finish(&e);
}

typedef struct listq {
    const char *prefix;
    size_t max;
    const char *cursor;
} listq_t;

static int start_list(env_t *e, void *arg)
{
    const listq_t *q = arg;
    return fv_blob_list(e->bs, q->prefix, q->max, q->cursor, on_list, e, NULL);
}

static void list_pages(void **state)
{
    env_t e;
    env_init(&e);
    for (int i = 0; i < LIST_KEYS; i++) {
        char key[64];
        snprintf(key, sizeof(key), "l/%s/k%03d", i % 2 ? "odd" : "even", i);
        put_ok(&e, key);
    }
    put_ok(&e, "other/x");
    listq_t qs[] = {{"l/", 100, NULL}, {"l/", 10, "l/even/k010"}, {"l/odd/", 5, NULL}};
    size_t want_count[] = {LIST_KEYS, 10, 5};
    const char *want_first[] = {"l/even/k000", "l/even/k012", "l/odd/k001"};
    const char *want_next[] = {"", "l/even/k030", "l/odd/k009"};
    for (int k = 0; k < 3; k++) {
        unsigned long n;
        for (n = 1;; n++) {
            int call_rc;
            int fired = run_faulted(&e, n, start_list, &qs[k], &call_rc);
            int rc = call_rc < 0 ? call_rc : e.rc;
            if (rc == 0) {
                assert_int_equal(e.list_count, want_count[k]);
                assert_true(e.list_sorted);
                assert_string_equal(e.first_key, want_first[k]);
                assert_string_equal(e.next_cursor, want_next[k]);
            } else {
                assert_true(fired);
                assert_int_equal(rc, FV_ENOMEM);
            }
            if (!fired)
                break;
        }
        assert_true(n >= 2);
    }
    env_finish(&e);
}

static int start_delete(env_t *e, void *arg)
{
    return fv_blob_delete(e->bs, arg, on_done, e, NULL);
}

static void delete_object(void **state)
{
    env_t e;
    env_init(&e);
    for (unsigned long n = 1;; n++) {
        put_ok(&e, "d/a/obj");
        int call_rc;
        int fired = run_faulted(&e, n, start_delete, "d/a/obj", &call_rc);
        int rc = call_rc < 0 ? call_rc : e.rc;
        if (rc == 0) {
            assert_int_equal(object_state(&e, "d/a/obj"), 0);
        } else {
            assert_true(fired);
            assert_int_equal(rc, FV_ENOMEM);
            assert_int_equal(object_state(&e, "d/a/obj"), 1);
        }
        if (!fired)
            break;
    }
    env_finish(&e);
}

static void presign(void **state)
{
    env_t e;
    env_init(&e);
    put_ok(&e, "ps/obj");
    unsigned long n;
    for (n = 1;; n++) {
        char *url = NULL;
        fv_error_t err = {0};
        fv_alloc_fail_at(n);
        int rc = fv_blob_presign_get(e.bs, "ps/obj", 60, &url, &err);
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        if (rc == 0) {
            assert_non_null(url);
            char *key = NULL;
            assert_int_equal(fv_blob_presign_verify(e.bs, url, 0, &key, NULL), 0);
            assert_string_equal(key, "ps/obj");
            fv_free(key);
            fv_free(url);
        } else {
            assert_true(fired);
            assert_int_equal(rc, FV_ENOMEM);
            assert_null(url);
        }
        if (!fired)
            break;
    }
    assert_true(n >= 2);
    env_finish(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_oneshot),
        cmocka_unit_test(put_streamed),
        cmocka_unit_test(get_whole_and_range),
        cmocka_unit_test(list_pages),
        cmocka_unit_test(delete_object),
        cmocka_unit_test(presign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
