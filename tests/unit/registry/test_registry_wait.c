/* test_registry_wait.c - blocking queries at scale through the real routes: 2,000 waiters on
 * one view woken by one change, every one answered with the same index and body rendered once,
 * the answers spread over several loop turns; waiters of other names left alone; the per-client and total waiter limits (429); aborted waiters
 * dropped. Counts callbacks and turns, never time; every wait is bounded by a watchdog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/router.h"
#include "registry/server.h"

typedef struct answer {
    bool done;
    int rc;
    int status;
    uint64_t index;
    size_t body_len;
    char body[256];
} answer_t;

static struct {
    uv_loop_t loop;
    fv_router_t *router;
    fv_http_server_t *srv;
    registry_server_t *reg;
    fv_http_client_t *http;
    uv_timer_t watchdog;
    bool timed_out;
    int port;
    int closed;
    size_t answered;
} F;

static void on_watchdog(uv_timer_t *t)
{
    F.timed_out = true;
}

static void on_response(int rc, const fv_http_response_t *resp, void *data)
{
    answer_t *a = data;
    a->rc = rc;
    a->done = true;
    F.answered++;
    if (rc < 0)
        return;   /* cancelled: the test dropped its client */
    a->status = resp->status;
    const char *idx = fv_http_response_header(resp, "X-Consul-Index");
    a->index = idx ? strtoull(idx, NULL, 10) : 0;
    a->body_len = resp->body.len;
    snprintf(a->body, sizeof(a->body), "%.*s", (int)resp->body.len,
             resp->body.ptr ? resp->body.ptr : "");
}

static void send_req(const char *method, const char *target, const char *body, answer_t *a)
{
    fv_http_client_req_t r = {
        .method = method,
        .host = "127.0.0.1",
        .port = F.port,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 30000,
    };
    memset(a, 0, sizeof(*a));
    assert_int_equal(fv_http_client_request(F.http, &r, on_response, a), 0);
}

static void run_until_answered(size_t n)
{
    uv_timer_start(&F.watchdog, on_watchdog, 30000, 0);
    while (F.answered < n && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.watchdog);
    assert_false(F.timed_out);
}

/* Runs turns until the registry holds n waiters (the requests have arrived). */
static void run_until_held(size_t n)
{
    uv_timer_start(&F.watchdog, on_watchdog, 30000, 0);
    while (registry_http_waiter_count(F.reg) < n && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.watchdog);
    assert_false(F.timed_out);
}

static void on_closed(void *data)
{
    F.closed++;
}

static void on_srv_closed(fv_http_server_t *s, void *data)
{
    F.closed++;
}

static void start(size_t max_waiters, size_t per_client)
{
    memset(&F, 0, sizeof(F));
    fv_log_set_level(FV_LOG_ERROR);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.watchdog);
    F.router = fv_router_new();
    registry_server_opts_t o = {
        .deregister_after_ms = 30000,
        .leader = "127.0.0.1:8500",
        .max_waiters = max_waiters,
        .max_waiters_per_client = per_client,
    };
    fv_error_t err;
    assert_int_equal(registry_server_new(&F.loop, &o, &F.reg, &err), 0);
    assert_int_equal(registry_http_routes(F.router, F.reg), 0);
    assert_int_equal(fv_http_server_new(&F.loop, NULL, fv_router_dispatch, F.router, &F.srv), 0);
    assert_int_equal(fv_http_server_listen(F.srv, "127.0.0.1", 0, &err), 0);
    F.port = fv_http_server_port(F.srv);
    fv_http_client_opts_t co;
    fv_http_client_opts_default(&co);
    assert_int_equal(fv_http_client_new(&F.loop, &co, &F.http), 0);
}

static void stop(void)
{
    fv_http_client_free(F.http);
    registry_server_close(F.reg, on_closed, NULL);
    fv_http_server_close(F.srv, on_srv_closed, NULL);
    uv_close((uv_handle_t *)&F.watchdog, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.closed, 2);
    fv_router_free(F.router);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    fv_log_set_level(FV_LOG_INFO);
}

/* Two sockets per waiter (ours and the server's) in one process: stay under the limit. */
static size_t waiters_that_fit(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < 2 * want + 200)
        return rl.rlim_cur > 400 ? (rl.rlim_cur - 200) / 2 : 100;
    return want;
}

static void many_woken_by_one_change(void **state)
{
    size_t n = waiters_that_fit(2000);
    start(n + 10, n + 10);
    answer_t a;
    send_req("PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"ID\":\"w0\",\"Port\":80}",
         &a);
    run_until_answered(1);
    assert_int_equal(a.status, 200);
    for (int i = 1; i <= 40; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"Name\":\"web\",\"ID\":\"w%d\",\"Port\":%d}", i, 80 + i);
        send_req("PUT", "/v1/agent/service/register", body, &a);
        F.answered = 0;
        run_until_answered(1);
    }
    uint64_t index = F.reg->cat.index;

    answer_t *held = fv_calloc(n, sizeof(*held));
    char target[128];
    snprintf(target, sizeof(target), "/v1/agent/services?index=%llu&wait=5m",
             (unsigned long long)index);
    for (size_t i = 0; i < n; i++)
        send_req("GET", target, NULL, &held[i]);
    /* a waiter on another name, not woken by a change to "web" */
    answer_t other;
    snprintf(target, sizeof(target), "/v1/health/service/db?index=%llu&wait=5m",
             (unsigned long long)registry_catalog_name_index(&F.reg->cat, "db"));
    send_req("GET", target, NULL, &other);
    F.answered = 0;
    run_until_held(n + 1);
    assert_int_equal(F.answered, 0);

    uint64_t renders = F.reg->renders, turns = F.reg->pump_turns;
    send_req("PUT", "/v1/agent/service/register", "{\"Name\":\"web\",\"ID\":\"w-new\",\"Port\":81}",
         &a);
    run_until_answered(2);   /* the register, then at least one waiter */
    answer_t probe;   /* the loop keeps serving other requests meanwhile */
    send_req("GET", "/v1/status/leader", NULL, &probe);
    run_until_answered(n + 2);
    assert_true(probe.done);
    assert_int_equal(probe.status, 200);

    assert_int_equal(a.status, 200);
    for (size_t i = 0; i < n; i++) {
        assert_true(held[i].done);
        assert_int_equal(held[i].status, 200);
        assert_int_equal(held[i].index, index + 1);
        assert_int_equal(held[i].body_len, held[0].body_len);
    }
    assert_non_null(strstr(held[0].body, "\"w0\""));
    /* one rendering for all of them, and the answers spread over several turns */
    assert_int_equal(F.reg->renders - renders, 1);
    if (n > 256)
        assert_true(F.reg->pump_turns - turns >= n / 256);
    assert_false(other.done);
    assert_int_equal(registry_http_waiter_count(F.reg), 1);
    fv_free(held);
    /* shutdown answers the last one */
    registry_server_quiesce(F.reg);
    run_until_answered(n + 3);
    assert_true(other.done);
    assert_int_equal(other.rc, 0);
    assert_int_equal(other.status, 200);
    stop();
}

static void limits(void **state)
{
    /* in total */
    start(3, 100);
    answer_t a[5];
    for (int i = 0; i < 4; i++)
        send_req("GET", "/v1/catalog/services?index=1&wait=5m", NULL, &a[i]);
    run_until_answered(1);
    run_until_held(3);
    size_t refused = 0;
    for (int i = 0; i < 4; i++)
        if (a[i].done) {
            refused++;
            assert_int_equal(a[i].status, 429);
            assert_non_null(strstr(a[i].body, "already holds 3 blocking queries, its limit"));
        }
    assert_int_equal(refused, 1);
    stop();

    /* per client */
    start(100, 2);
    for (int i = 0; i < 3; i++)
        send_req("GET", "/v1/health/service/x?index=1&wait=5m", NULL, &a[i]);
    run_until_answered(1);
    run_until_held(2);
    refused = 0;
    for (int i = 0; i < 3; i++)
        if (a[i].done) {
            refused++;
            assert_int_equal(a[i].status, 429);
            assert_non_null(strstr(a[i].body, "127.0.0.1 already holds 2 blocking queries"));
        }
    assert_int_equal(refused, 1);
    /* one that goes away frees its place */
    fv_http_client_free(F.http);
    fv_http_client_opts_t co;
    fv_http_client_opts_default(&co);
    assert_int_equal(fv_http_client_new(&F.loop, &co, &F.http), 0);
    uv_timer_start(&F.watchdog, on_watchdog, 30000, 0);
    while (registry_http_waiter_count(F.reg) > 0 && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.watchdog);
    assert_false(F.timed_out);
    assert_int_equal(F.reg->clients.count, 0);
    assert_int_equal(F.reg->groups.count, 0);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_woken_by_one_change),
        cmocka_unit_test(limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
