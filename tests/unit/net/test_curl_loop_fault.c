/* test_curl_loop_fault.c - allocation-fault tests for the libcurl-on-libuv requests against our
 * own HTTP server on one loop (STYLE.md sec. 12): a GET with a large body, a PUT with a body and
 * a HEAD, each with the Nth checked allocation failing for N = 1, 2, ... until none fails. The
 * failure may land in the curl side (response buffers) or in the server. Every run must end with
 * the callback exactly once: 0 and the right response (or the server's clean 503), or a
 * negative code that is not a time-out. libcurl's own allocations are not injected. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "net/curl_loop.h"
#include "net/http_server.h"

#define BIG_LEN 50000   /* several curl write callbacks: the body buffer grows */

static char big_body[BIG_LEN];
static char put_body[3000];

typedef struct env {
    uv_loop_t loop;
    uv_timer_t watchdog;
    fv_http_server_t *srv;
    fv_curl_loop_t *cl;
    char url[128];
    int calls;
    int rc;
    long status;
    bool body_ok;
    bool x_test;
    bool is_oom_error;
    bool timed_out;
    bool closed;
    const char *want_body;
    size_t want_len;
} env_t;

static void on_watchdog(uv_timer_t *t)
{
    env_t *e = t->data;
    e->timed_out = true;
    uv_stop(&e->loop);
}

static void handler(fv_http_req_t *req, void *data)
{
    fv_slice_t p = fv_http_req_path(req);
    fv_http_resp_header(req, "X-Test", "yes");
    if (fv_slice_eq_cstr(p, "/echo")) {
        fv_slice_t body = fv_http_req_body(req);
        fv_http_reply(req, 200, "application/octet-stream", body.ptr, body.len);
    } else {
        fv_http_reply(req, 200, "text/plain", big_body, sizeof(big_body));
    }
}

static void on_closed(void *data)
{
    *(bool *)data = true;
}

static void env_init(env_t *e)
{
    memset(e, 0, sizeof(*e));
    memset(big_body, 'c', sizeof(big_body));
    memset(put_body, 'u', sizeof(put_body));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->watchdog);
    e->watchdog.data = e;
    uv_timer_start(&e->watchdog, on_watchdog, 60000, 0);
    assert_int_equal(fv_http_server_new(&e->loop, NULL, handler, e, &e->srv), 0);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(e->srv, "127.0.0.1", 0, &err), 0);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", fv_http_server_port(e->srv));
    assert_int_equal(fv_curl_loop_new(&e->loop, &e->cl), 0);
}

static void env_finish(env_t *e)
{
    fv_curl_loop_close(e->cl, on_closed, &e->closed);
    fv_http_server_close(e->srv, NULL, NULL);
    uv_close((uv_handle_t *)&e->watchdog, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_false(e->timed_out);
    assert_true(e->closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void on_done(int rc, const fv_curl_resp_t *resp, void *data)
{
    env_t *e = data;
    e->calls++;
    e->rc = rc;
    if (rc == 0) {
        assert_non_null(resp);
        e->status = resp->status;
        e->body_ok = resp->body.len == e->want_len &&
                     (e->want_len == 0 || memcmp(resp->body.ptr, e->want_body, e->want_len) == 0);
        fv_slice_t h = fv_curl_resp_header(resp, "x-test");
        e->x_test = fv_slice_eq_cstr(h, "yes");
        fv_slice_t body = fv_buf_slice(&resp->body);   /* an empty body has no buffer */
        e->is_oom_error = memmem(body.ptr, body.len, "\"out_of_memory\"", 15) != NULL;
    }
    uv_stop(&e->loop);
}

typedef struct kcase {
    const char *method;
    const char *path;
    const void *body;
    size_t body_len;
    const char *want_body;
    size_t want_len;
} kcase_t;

static int run_once(env_t *e, const kcase_t *kc, unsigned long n, int *call_rc)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", e->url, kc->path);
    fv_curl_req_t q = {
        .method = kc->method,
        .url = url,
        .body = kc->body,
        .body_len = kc->body_len,
        .timeout_ms = 10000,
    };
    e->want_body = kc->want_body;
    e->want_len = kc->want_len;
    e->calls = 0;
    e->rc = 1;
    fv_alloc_fail_at(n);
    *call_rc = fv_curl_request(e->cl, &q, on_done, e);
    if (*call_rc == 0) {
        uv_run(&e->loop, UV_RUN_DEFAULT);
        assert_false(e->timed_out);
    }
    int fired = fv_alloc_failed();
    fv_alloc_fail_at(0);
    for (int i = 0; i < 4; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(e->calls, *call_rc == 0 ? 1 : 0);
    return fired;
}

static void check_right(const env_t *e, bool may_lose_header)
{
    assert_int_equal(e->rc, 0);
    assert_int_equal(e->status, 200);
    assert_true(e->body_ok);
    if (!may_lose_header)
        assert_true(e->x_test);
}

static unsigned long fault_loop(const kcase_t *kc)
{
    env_t e;
    env_init(&e);
    int call_rc;
    assert_int_equal(run_once(&e, kc, 0, &call_rc), 0);
    check_right(&e, false);
    unsigned long n;
    for (n = 1;; n++) {
        int fired = run_once(&e, kc, n, &call_rc);
        if (!fired) {
            assert_int_equal(call_rc, 0);
            check_right(&e, false);
            break;
        }
        if (call_rc < 0) {
            assert_int_equal(call_rc, FV_ENOMEM);
        } else if (e.rc < 0) {
            assert_int_not_equal(e.rc, FV_ETIMEDOUT);
            assert_int_not_equal(e.rc, FV_ETOOBIG);
            assert_int_not_equal(e.rc, FV_EHDRTOOBIG);
        } else if (e.status == 503) {
            assert_true(e.is_oom_error);
        } else {
            check_right(&e, true);
        }
    }
    env_finish(&e);
    return n - 1;
}

static void get_large(void **state)
{
    kcase_t kc = {.method = "GET", .path = "/big", .want_body = big_body,
                  .want_len = sizeof(big_body)};
    assert_true(fault_loop(&kc) >= 3);
}

static void put_body_echo(void **state)
{
    kcase_t kc = {.method = "PUT", .path = "/echo", .body = put_body,
                  .body_len = sizeof(put_body), .want_body = put_body,
                  .want_len = sizeof(put_body)};
    assert_true(fault_loop(&kc) >= 3);
}

static void head_request(void **state)
{
    kcase_t kc = {.method = "HEAD", .path = "/big", .want_body = "", .want_len = 0};
    assert_true(fault_loop(&kc) >= 1);
}

/* The response header buffer failing for want of memory was reported as FV_EHDRTOOBIG
 * ("the peer sent too many header bytes"); it is FV_ENOMEM. */
static void test_issue_curl_header_oom_is_not_hdrtoobig(void **state)
{
    kcase_t kc = {.method = "HEAD", .path = "/big", .want_body = "", .want_len = 0};
    env_t e;
    env_init(&e);
    bool saw_enomem = false;
    for (unsigned long n = 1;; n++) {
        int call_rc;
        int fired = run_once(&e, &kc, n, &call_rc);
        if (call_rc == 0 && e.rc < 0) {
            assert_int_not_equal(e.rc, FV_EHDRTOOBIG);
            saw_enomem |= e.rc == FV_ENOMEM;
        }
        if (!fired)
            break;
    }
    env_finish(&e);
    assert_true(saw_enomem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_large),
        cmocka_unit_test(put_body_echo),
        cmocka_unit_test(head_request),
        cmocka_unit_test(test_issue_curl_header_oom_is_not_hdrtoobig),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
