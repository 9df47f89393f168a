/* test_http_client_fault.c - allocation-fault tests for the HTTP client against our own server
 * on one loop (STYLE.md sec. 12): each request runs with the Nth checked allocation failing,
 * for N = 1, 2, ... until none fails. The failure may land in the client or in the server, as
 * both run in the exchange. Every run must end with the callback exactly once, either with 0
 * and the right response (or the server's clean 503), or with a negative code that is not a
 * time-out; or the request call itself refuses and the callback never runs. The loop closes
 * cleanly at the end; ASan checks leaks. */
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
#include "net/http_client.h"
#include "net/http_server.h"

#define BIG_LEN 20000   /* more than one client read: the response body buffer grows */

static char big_body[BIG_LEN];
static char post_body[3000];

typedef struct bench {
    uv_loop_t loop;
    uv_timer_t watchdog;
    fv_http_server_t *srv;
    int port;
    int calls;
    int rc;
    int status;
    bool body_ok;
    bool x_test;
    char code[64];
    bool timed_out;
    const char *want_body;
    size_t want_len;
} bench_t;

static void on_watchdog(uv_timer_t *t)
{
    bench_t *b = t->data;
    b->timed_out = true;
    uv_stop(&b->loop);
}

static void handler(fv_http_req_t *req, void *data)
{
    fv_slice_t p = fv_http_req_path(req);
    if (fv_slice_eq_cstr(p, "/echo")) {
        fv_slice_t body = fv_http_req_body(req);
        fv_http_reply(req, 200, "application/octet-stream", body.ptr, body.len);
    } else if (fv_slice_eq_cstr(p, "/big")) {
        fv_http_reply(req, 200, "text/plain", big_body, sizeof(big_body));
    } else {
        fv_http_resp_header(req, "X-Test", "yes");
        fv_http_reply(req, 200, "text/plain", "hello", 5);
    }
}

static void bench_init(bench_t *b)
{
    memset(b, 0, sizeof(*b));
    memset(big_body, 'g', sizeof(big_body));
    memset(post_body, 'p', sizeof(post_body));
    assert_int_equal(uv_loop_init(&b->loop), 0);
    uv_timer_init(&b->loop, &b->watchdog);
    b->watchdog.data = b;
    uv_timer_start(&b->watchdog, on_watchdog, 60000, 0);
    assert_int_equal(fv_http_server_new(&b->loop, NULL, handler, b, &b->srv), 0);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(b->srv, "127.0.0.1", 0, &err), 0);
    b->port = fv_http_server_port(b->srv);
}

static void bench_finish(bench_t *b)
{
    fv_http_server_close(b->srv, NULL, NULL);
    uv_close((uv_handle_t *)&b->watchdog, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    assert_false(b->timed_out);
    assert_int_equal(uv_loop_close(&b->loop), 0);
}

static void on_resp(int rc, const fv_http_response_t *resp, void *data)
{
    bench_t *b = data;
    b->calls++;
    b->rc = rc;
    if (rc == 0) {
        assert_non_null(resp);
        b->status = resp->status;
        b->body_ok = resp->body.len == b->want_len &&
                     memcmp(resp->body.ptr, b->want_body, b->want_len) == 0;
        const char *h = fv_http_response_header(resp, "x-test");
        b->x_test = h && strcmp(h, "yes") == 0;
        b->code[0] = '\0';
        const char *c = memmem(resp->body.ptr, resp->body.len, "\"code\":\"", 8);
        if (c)
            snprintf(b->code, sizeof(b->code), "%.*s", (int)strcspn(c + 8, "\""), c + 8);
    } else {
        assert_null(resp);
    }
    uv_stop(&b->loop);
}

typedef struct ccase {
    const char *method;
    const char *target;
    const void *body;
    size_t body_len;
    const char *want_body;
    size_t want_len;
    bool want_x_test;
    bool warm;            /* one request without failure first, so the next reuses the pool */
} ccase_t;

/* One request on a new client with the nth allocation failing (0: none). Returns whether the
 * failure fired; b holds what the callback saw. */
static int run_once(bench_t *b, const ccase_t *cc, unsigned long n, int *call_rc)
{
    fv_http_client_t *client;
    assert_int_equal(fv_http_client_new(&b->loop, NULL, &client), 0);
    fv_http_client_req_t q = {
        .method = cc->method,
        .host = "127.0.0.1",
        .port = b->port,
        .target = cc->target,
        .body = cc->body,
        .body_len = cc->body_len,
        .timeout_ms = 5000,
    };
    b->want_body = cc->want_body;
    b->want_len = cc->want_len;
    if (cc->warm) {
        b->calls = 0;
        assert_int_equal(fv_http_client_request(client, &q, on_resp, b), 0);
        uv_run(&b->loop, UV_RUN_DEFAULT);
        assert_false(b->timed_out);
        assert_int_equal(b->calls, 1);
        assert_int_equal(b->rc, 0);
    }
    b->calls = 0;
    b->rc = 1;
    fv_alloc_fail_at(n);
    *call_rc = fv_http_client_request(client, &q, on_resp, b);
    if (*call_rc == 0) {
        uv_run(&b->loop, UV_RUN_DEFAULT);
        assert_false(b->timed_out);
    }
    int fired = fv_alloc_failed();
    fv_alloc_fail_at(0);
    fv_http_client_free(client);
    /* let the client's handles close; a second callback would show up here */
    for (int i = 0; i < 4; i++)
        uv_run(&b->loop, UV_RUN_NOWAIT);
    if (*call_rc == 0)
        assert_int_equal(b->calls, 1);
    else
        assert_int_equal(b->calls, 0);
    return fired;
}

static void check_right(const bench_t *b, const ccase_t *cc, bool may_lose_header)
{
    assert_int_equal(b->rc, 0);
    assert_int_equal(b->status, 200);
    assert_true(b->body_ok);
    if (cc->want_x_test && !may_lose_header)
        assert_true(b->x_test);
}

static unsigned long fault_loop(const ccase_t *cc)
{
    bench_t b;
    bench_init(&b);
    int call_rc;
    assert_int_equal(run_once(&b, cc, 0, &call_rc), 0);
    assert_int_equal(call_rc, 0);
    check_right(&b, cc, false);
    unsigned long n;
    for (n = 1;; n++) {
        int fired = run_once(&b, cc, n, &call_rc);
        if (!fired) {
            assert_int_equal(call_rc, 0);
            check_right(&b, cc, false);
            break;
        }
        if (call_rc < 0) {
            assert_int_equal(call_rc, FV_ENOMEM);
        } else if (b.rc < 0) {
            /* a clean failure: never a hang that only the time-out ended */
            assert_int_not_equal(b.rc, FV_ETIMEDOUT);
            assert_int_not_equal(b.rc, FV_ETOOBIG);
        } else if (b.status == 503) {
            assert_string_equal(b.code, "out_of_memory");
        } else {
            check_right(&b, cc, true);
        }
    }
    bench_finish(&b);
    return n - 1;
}

static void get_small(void **state)
{
    ccase_t cc = {.method = "GET", .target = "/hello", .want_body = "hello", .want_len = 5,
                  .want_x_test = true};
    assert_true(fault_loop(&cc) >= 2);
}

static void get_small_pooled(void **state)
{
    ccase_t cc = {.method = "GET", .target = "/hello", .want_body = "hello", .want_len = 5,
                  .want_x_test = true, .warm = true};
    assert_true(fault_loop(&cc) >= 2);
}

static void post_body_echo(void **state)
{
    ccase_t cc = {.method = "POST", .target = "/echo", .body = post_body,
                  .body_len = sizeof(post_body), .want_body = post_body,
                  .want_len = sizeof(post_body)};
    assert_true(fault_loop(&cc) >= 3);
}

static void get_large(void **state)
{
    ccase_t cc = {.method = "GET", .target = "/big", .want_body = big_body,
                  .want_len = sizeof(big_body)};
    assert_true(fault_loop(&cc) >= 3);
}

/* A response buffer that could not grow for want of memory was reported as FV_ETOOBIG ("the
 * response is over the ceiling"), which callers treat as final; it is FV_ENOMEM. */
static void test_issue_client_oom_is_not_too_big(void **state)
{
    ccase_t cc = {.method = "GET", .target = "/big", .want_body = big_body,
                  .want_len = sizeof(big_body)};
    bench_t b;
    bench_init(&b);
    bool saw_enomem = false;
    for (unsigned long n = 1;; n++) {
        int call_rc;
        int fired = run_once(&b, &cc, n, &call_rc);
        if (call_rc == 0 && b.rc < 0) {
            assert_int_not_equal(b.rc, FV_ETOOBIG);
            if (b.rc == FV_ENOMEM)
                saw_enomem = true;
        }
        if (!fired)
            break;
    }
    bench_finish(&b);
    assert_true(saw_enomem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_small),
        cmocka_unit_test(get_small_pooled),
        cmocka_unit_test(post_body_echo),
        cmocka_unit_test(get_large),
        cmocka_unit_test(test_issue_client_oom_is_not_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
