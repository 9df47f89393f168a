/* test_registry_http.c - the registry's routes served for real (router + HTTP server on an
 * ephemeral loopback port) and driven by fv_http_client on the same loop: register and its
 * validation, catalog and health views, a blocking query woken by a register, one that runs
 * out its wait, check updates, deregister, 405, persistence through a restart; then the
 * registry client: register, heartbeat, re-register after the registry forgot it, lookup
 * round-robin, ENOENT, EBACKEND, deregistration at close. Every wait is bounded by a watchdog;
 * no assertion depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/router.h"
#include "registry/registry.h"
#include "registry/server.h"

typedef struct result {
    int rc;
    int status;
    char *body;
    uint64_t index;
    bool done;
} result_t;

typedef struct fx {
    uv_loop_t loop;
    fv_router_t *router;
    fv_http_server_t *srv;
    registry_server_t *reg;
    fv_http_client_t *http;
    fv_registry_client_t *client;
    fv_registry_client_t *dead_client;
    fv_config_t cfg;
    uv_timer_t watchdog;
    uv_timer_t poll;
    char *dir;
    int port;
    int step;
    bool timed_out;
    bool finished;
    uint64_t idx;
    result_t r;          /* the last plain request */
    result_t blocked;    /* the held request */
    int lookups;
    char lookup_host[64];
    int lookup_port;
    int lookup_rc;
    int lookup_rc2;
    fv_registry_watch_t *watch;
    int watch_n;                    /* instances in the watch's last list; -1 none yet */
    int watch_calls;
    int watch_rc;
    int clients_closed;
    int server_closed;
    int polls;
    int scenario;
    fv_http_client_t *http2;
    result_t held;       /* answered at registry close */
} fx_t;

static fx_t F;

static void advance(void);

static void result_reset(result_t *r)
{
    fv_free(r->body);
    memset(r, 0, sizeof(*r));
}

static void on_response(int rc, const fv_http_response_t *resp, void *data)
{
    result_t *r = data;
    result_reset(r);
    r->rc = rc;
    r->done = true;
    if (rc == 0) {
        r->status = resp->status;
        r->body = fv_strndup(resp->body.ptr ? resp->body.ptr : "", resp->body.len);
        const char *idx = fv_http_response_header(resp, "X-Consul-Index");
        r->index = idx ? strtoull(idx, NULL, 10) : 0;
    }
    if (getenv("FV_TEST_TRACE"))
        fprintf(stderr, "step %d: rc %d status %d body %s\n", F.step, rc, r->status, r->body);
    if (!F.finished)
        advance();
}

static void send_req(const char *method, const char *target, const char *body, result_t *into)
{
    fv_http_client_req_t r = {
        .method = method,
        .host = "127.0.0.1",
        .port = F.port,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 5000,
    };
    result_reset(into);   /* so "done" means this request's answer */
    assert_int_equal(fv_http_client_request(F.http, &r, on_response, into), 0);
}

static void req(const char *method, const char *target, const char *body)
{
    send_req(method, target, body, &F.r);
}

static json_t *body_json(const result_t *r)
{
    fv_error_t err;
    json_t *j = fv_json_parse(fv_slice_cstr(r->body), &err);
    if (!j)
        fail_msg("step %d: bad JSON body (status %d): %s", F.step - 1, r->status, r->body);
    return j;
}

static void expect(int status)
{
    assert_int_equal(F.r.rc, 0);
    if (F.r.status != status)
        fail_msg("step %d: status %d, wanted %d; body %s", F.step, F.r.status, status,
                 F.r.body);
}

/* ---- shutdown ---- */

static void on_srv_closed(fv_http_server_t *s, void *data)
{
    F.server_closed++;
}

static void on_reg_closed(void *data)
{
    F.server_closed++;
}

static void on_client_closed(void *data)
{
    F.clients_closed++;
    if (!F.finished)
        advance();
}

static void on_client_left(void *data)
{
    advance();
}

static void finish(void)
{
    F.finished = true;
    uv_timer_stop(&F.poll);
    uv_timer_stop(&F.watchdog);
    if (F.client) {
        fv_registry_client_close(F.client, NULL, NULL);
        F.client = NULL;
    }
    if (F.dead_client) {
        fv_registry_client_close(F.dead_client, NULL, NULL);
        F.dead_client = NULL;
    }
    fv_http_client_free(F.http);
    F.http = NULL;
    registry_server_close(F.reg, on_reg_closed, NULL);
    F.reg = NULL;
    fv_http_server_close(F.srv, on_srv_closed, NULL);
    F.srv = NULL;
}

static void on_watchdog(uv_timer_t *t)
{
    F.timed_out = true;
    finish();
}

static void on_poll(uv_timer_t *t)
{
    F.polls++;
    advance();
}

static void poll_again(void)
{
    uv_timer_start(&F.poll, on_poll, 20, 0);
}

static void on_watch(int rc, const fv_registry_addr_t *addrs, size_t n, void *data)
{
    (void)data;
    F.watch_calls++;
    F.watch_rc = rc;
    if (rc == 0) {
        F.watch_n = (int)n;
        for (size_t i = 0; i < n; i++)
            assert_string_equal(addrs[i].host, "127.0.0.1");
    }
}

static void on_lookup(int rc, const char *host, int port, void *data)
{
    int *slot = data;
    *slot = rc;
    if (rc == 0) {
        snprintf(F.lookup_host, sizeof(F.lookup_host), "%s", host);
        F.lookup_port = port;
    }
    F.lookups++;
    if (!F.finished)
        advance();
}

static void start_server_on(int port)
{
    F.router = fv_router_new();
    registry_server_opts_t o = {
        .deregister_after_ms = 30000,
        .data_dir = F.dir,
        .persist_delay_ms = 10,
        .leader = "127.0.0.1:8500",
    };
    fv_error_t err;
    assert_int_equal(registry_server_new(&F.loop, &o, &F.reg, &err), 0);
    assert_int_equal(registry_http_routes(F.router, F.reg), 0);
    assert_int_equal(fv_http_server_new(&F.loop, NULL, fv_router_dispatch, F.router, &F.srv), 0);
    assert_int_equal(fv_http_server_listen(F.srv, "127.0.0.1", port, &err), 0);
    F.port = fv_http_server_port(F.srv);
}

static void start_server(void)
{
    start_server_on(0);
}

static void advance_timers(void);
static void advance_recovery(void);
static void run_loop(void);
static void close_loop(void);

/* The scenario, one step per completed event. */
static void advance(void)
{
    if (F.scenario == 2) {
        advance_timers();
        return;
    }
    if (F.scenario == 3) {
        advance_recovery();
        return;
    }
    char target[256];
    json_t *j;
    switch (F.step++) {
    case 0:
        req("PUT", "/v1/agent/service/register",
            "{\"Name\":\"web\",\"ID\":\"web1\",\"Address\":\"127.0.0.1\",\"Port\":1234,"
            "\"Tags\":[\"a\"],\"Check\":{\"TTL\":\"10s\"}}");
        break;
    case 1:
        expect(200);
        req("PUT", "/v1/agent/service/register", "{\"Name\":\"a b\"}");
        break;
    case 2:
        expect(400);
        assert_non_null(strstr(F.r.body, "invalid_argument"));
        assert_non_null(strstr(F.r.body, "Name may contain only"));
        req("PUT", "/v1/agent/service/register", "{not json");
        break;
    case 3:
        expect(400);
        req("GET", "/v1/catalog/service/web", NULL);
        break;
    case 4:
        expect(200);
        assert_true(F.r.index > 1);
        F.idx = F.r.index;
        j = body_json(&F.r);
        assert_int_equal(json_array_size(j), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0),
                                                              "ServiceID")), "web1");
        json_decref(j);
        /* Held: the client already has the current index. */
        snprintf(target, sizeof(target), "/v1/health/service/web?index=%llu&wait=5s",
                 (unsigned long long)F.idx);
        send_req("GET", target, NULL, &F.blocked);
        /* Let the held request reach the server before the register wakes it. */
        poll_again();
        break;
    case 5:
        assert_false(F.blocked.done);
        if (registry_http_waiter_count(F.reg) == 0) {
            F.step--;
            poll_again();
            break;
        }
        assert_int_equal(registry_http_waiter_count(F.reg), 1);
        req("PUT", "/v1/agent/service/register",
            "{\"Name\":\"web\",\"ID\":\"web2\",\"Address\":\"127.0.0.1\",\"Port\":1235}");
        break;
    case 6:
        /* Two completions arrive here in either order: the register and the woken query. */
        if (!(F.r.done && F.blocked.done)) {
            F.step--;
            break;
        }
        expect(200);
        assert_int_equal(F.blocked.status, 200);
        assert_true(F.blocked.index > F.idx);
        j = body_json(&F.blocked);
        assert_int_equal(json_array_size(j), 2);   /* woken by the register, so it sees web2 */
        json_decref(j);
        req("PUT", "/v1/agent/check/fail/service:web2?note=down", NULL);
        break;
    case 7:
        expect(200);
        req("GET", "/v1/health/service/web?passing", NULL);
        break;
    case 8:
        expect(200);
        j = body_json(&F.r);
        assert_int_equal(json_array_size(j), 1);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(json_array_get(j, 0), "Service"),
                                              "ID")), "web1");
        json_decref(j);
        req("GET", "/v1/health/service/web", NULL);
        break;
    case 9:
        expect(200);
        j = body_json(&F.r);
        assert_int_equal(json_array_size(j), 2);
        json_t *chk = json_array_get(json_object_get(json_array_get(j, 1), "Checks"), 0);
        assert_string_equal(json_string_value(json_object_get(chk, "Status")), "critical");
        assert_string_equal(json_string_value(json_object_get(chk, "Output")), "down");
        json_decref(j);
        req("PUT", "/v1/agent/check/pass/service:nope", NULL);
        break;
    case 10:
        expect(404);
        req("PUT", "/v1/agent/service/deregister/web2", NULL);
        break;
    case 11:
        expect(200);
        req("PUT", "/v1/agent/service/deregister/web2", NULL);
        break;
    case 12:
        expect(404);
        req("DELETE", "/v1/agent/services", NULL);
        break;
    case 13:
        expect(405);
        req("GET", "/v1/status/leader", NULL);
        break;
    case 14:
        expect(200);
        assert_string_equal(F.r.body, "\"127.0.0.1:8500\"");
        req("GET", "/v1/catalog/services", NULL);
        break;
    case 15:
        expect(200);
        j = body_json(&F.r);
        assert_int_equal(json_object_size(j), 1);
        assert_string_equal(json_string_value(json_array_get(json_object_get(j, "web"), 0)),
                            "a");
        json_decref(j);
        /* Nothing changes: the wait runs out and the same index comes back. */
        F.idx = F.r.index;
        snprintf(target, sizeof(target), "/v1/catalog/services?index=%llu&wait=100ms",
                 (unsigned long long)F.idx);
        req("GET", target, NULL);
        break;
    case 16:
        expect(200);
        assert_int_equal(F.r.index, F.idx);
        req("GET", "/v1/agent/services?index=abc", NULL);
        break;
    case 17:
        expect(400);
        req("GET", "/v1/agent/services", NULL);
        break;
    case 18:
        expect(200);
        j = body_json(&F.r);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "web1"),
                                                              "Service")), "web");
        json_decref(j);
        /* ---- the client ---- */
        F.cfg.registry.ttl_ms = 5000;
        F.cfg.registry.heartbeat_interval_ms = 50;
        F.cfg.registry.retry_max_ms = 200;
        F.cfg.registry.deregister_after_ms = 30000;
        assert_int_equal(fv_registry_client_new(&F.loop, "127.0.0.1", F.port, &F.cfg, &F.client),
                         0);
        fv_registry_instance_t in = {.name = "game", .id = "game-1", .address = "127.0.0.1",
                                     .port = 4000};
        assert_int_equal(fv_registry_client_add(F.client, &in), 0);
        assert_int_equal(fv_registry_client_add(F.client, &in), FV_EEXIST);
        fv_registry_instance_t in2 = {.name = "game", .id = "game-2", .address = "127.0.0.1",
                                      .port = 4001};
        assert_int_equal(fv_registry_client_add(F.client, &in2), 0);
        fv_registry_instance_t bad = {.name = "bad name", .port = 1};
        assert_int_equal(fv_registry_client_add(F.client, &bad), FV_EINVAL);
        /* a watch on the same service sees the instances as they come */
        F.watch_n = -1;
        assert_int_equal(fv_registry_client_watch(F.client, "game", on_watch, NULL, &F.watch),
                         0);
        assert_int_equal(F.watch_calls, 0);   /* never inside the call */
        fv_registry_watch_t *w2;
        assert_int_equal(fv_registry_client_watch(F.client, "bad/name", on_watch, NULL, &w2),
                         FV_EINVAL);
        poll_again();
        break;
    case 19:
        if (!(fv_registry_client_registered(F.client, "game-1") &&
              fv_registry_client_registered(F.client, "game-2"))) {
            F.step--;
            poll_again();
            break;
        }
        /* The registry forgets game-1, as after a restart without its file: the next
         * heartbeat gets 404 and the client registers again. */
        assert_int_equal(registry_catalog_deregister(&F.reg->cat, "game-1"), 0);
        registry_server_changed(F.reg);
        poll_again();
        break;
    case 20:
        if (!registry_catalog_find(&F.reg->cat, "game-1")) {
            F.step--;
            poll_again();
            break;
        }
        assert_int_equal(fv_registry_client_lookup(F.client, "game", on_lookup, &F.lookup_rc),
                         0);
        assert_int_equal(F.lookups, 0);   /* never inside the call */
        break;
    case 21:
        assert_int_equal(F.lookup_rc, 0);
        assert_string_equal(F.lookup_host, "127.0.0.1");
        assert_true(F.lookup_port == 4000 || F.lookup_port == 4001);
        F.idx = (uint64_t)F.lookup_port;
        /* From the cache, the other instance. */
        assert_int_equal(fv_registry_client_lookup(F.client, "game", on_lookup, &F.lookup_rc),
                         0);
        break;
    case 22:
        assert_int_equal(F.lookup_rc, 0);
        assert_int_not_equal(F.lookup_port, (int)F.idx);
        assert_int_equal(fv_registry_client_lookup(F.client, "nothing", on_lookup,
                                                   &F.lookup_rc2), 0);
        break;
    case 23:
        assert_int_equal(F.lookup_rc2, FV_ENOENT);
        assert_int_equal(fv_registry_client_lookup(F.client, "bad/name", on_lookup,
                                                   &F.lookup_rc2), FV_EINVAL);
        /* A registry nobody listens on: port 1 on loopback refuses at once. */
        assert_int_equal(fv_registry_client_new(&F.loop, "127.0.0.1", 1, &F.cfg,
                                                &F.dead_client), 0);
        assert_int_equal(fv_registry_client_lookup(F.dead_client, "game", on_lookup,
                                                   &F.lookup_rc2), 0);
        break;
    case 24:
        assert_int_equal(F.lookup_rc2, FV_EBACKEND);
        fv_registry_client_close(F.dead_client, on_client_closed, NULL);
        F.dead_client = NULL;
        break;
    case 25:
        assert_int_equal(F.clients_closed, 1);
        if (F.watch_n != 2) {
            F.step--;               /* the watch's held query answers after the change */
            poll_again();
            break;
        }
        assert_int_equal(F.watch_rc, 0);
        /* Shutdown begins: the instances go, lookups stay (a gateway drains through them). */
        fv_registry_client_leave(F.client, on_client_left, NULL);
        break;
    case 26: {
        assert_null(registry_catalog_find(&F.reg->cat, "game-1"));
        assert_null(registry_catalog_find(&F.reg->cat, "game-2"));
        fv_registry_instance_t late = {.name = "game", .id = "game-3", .port = 4002};
        assert_int_equal(fv_registry_client_add(F.client, &late), FV_ECANCELED);
        F.lookup_rc = 1;
        assert_int_equal(fv_registry_client_lookup(F.client, "game", on_lookup, &F.lookup_rc),
                         0);
        break;
    }
    case 27:
        if (F.watch_n != 0) {
            F.step--;               /* the watch sees both instances go */
            poll_again();
            break;
        }
        assert_true(F.lookup_rc == 0 || F.lookup_rc == FV_ENOENT);
        /* A lookup still pending at close is cancelled. */
        F.lookup_rc2 = 1;
        assert_int_equal(fv_registry_client_lookup(F.client, "other", on_lookup,
                                                   &F.lookup_rc2), 0);
        fv_registry_client_close(F.client, on_client_closed, NULL);
        F.client = NULL;
        break;
    case 28:
        /* The cancelled lookup and the close, in that order. */
        if (F.clients_closed < 2) {
            assert_int_equal(F.lookup_rc2, FV_ECANCELED);
            F.step--;
            break;
        }
        /* Deregistered at close. */
        assert_null(registry_catalog_find(&F.reg->cat, "game-1"));
        assert_null(registry_catalog_find(&F.reg->cat, "game-2"));
        assert_non_null(registry_catalog_find(&F.reg->cat, "web1"));
        finish();
        break;
    default:
        fail_msg("unexpected step %d", F.step - 1);
    }
}

static void send_on(fv_http_client_t *h, const char *target, result_t *into)
{
    fv_http_client_req_t r = {
        .method = "GET", .host = "127.0.0.1", .port = F.port, .target = target,
        .timeout_ms = 5000,
    };
    result_reset(into);
    assert_int_equal(fv_http_client_request(h, &r, on_response, into), 0);
}

static size_t waiter_count(void)
{
    return F.reg ? registry_http_waiter_count(F.reg) : 0;
}

static void on_reg_closed_step(void *data)
{
    F.server_closed++;
    advance();
}

/* Timers for real: a TTL running out wakes a watch and the sweep removes the instance; a
 * client that leaves drops its held query; closing the registry answers held queries. */
static void advance_timers(void)
{
    char target[256];
    json_t *j;
    switch (F.step++) {
    case 0: {
        registry_instance_t *inst = NULL;
        fv_error_t err;
        json_t *b = json_loads("{\"Name\":\"t\",\"Check\":{\"TTL\":\"100ms\","
                               "\"DeregisterCriticalServiceAfter\":\"100ms\"}}", 0, NULL);
        assert_int_equal(registry_instance_from_json(b, 30000, &inst, &err), 0);
        json_decref(b);
        assert_int_equal(registry_catalog_register(&F.reg->cat, inst, uv_now(&F.loop), NULL), 0);
        registry_server_changed(F.reg);
        F.idx = registry_catalog_name_index(&F.reg->cat, "t");
        snprintf(target, sizeof(target), "/v1/health/service/t?index=%llu&wait=10s",
                 (unsigned long long)F.idx);
        req("GET", target, NULL);
        break;
    }
    case 1:
        /* Woken by the expiry (or, on a slow machine, by the removal right after it). */
        expect(200);
        assert_true(F.r.index > F.idx);
        j = body_json(&F.r);
        if (json_array_size(j) == 1) {
            json_t *chk = json_array_get(json_object_get(json_array_get(j, 0), "Checks"), 0);
            assert_string_equal(json_string_value(json_object_get(chk, "Status")), "critical");
            assert_string_equal(json_string_value(json_object_get(chk, "Output")),
                                "TTL expired");
        }
        json_decref(j);
        poll_again();
        break;
    case 2:
        if (registry_catalog_find(&F.reg->cat, "t")) {
            F.step--;
            poll_again();
            break;
        }
        /* A held query whose client goes away. */
        snprintf(target, sizeof(target), "/v1/catalog/services?index=%llu&wait=10s",
                 (unsigned long long)F.reg->cat.index);
        send_on(F.http2, target, &F.blocked);
        poll_again();
        break;
    case 3:
        if (waiter_count() == 0) {
            F.step--;
            poll_again();
            break;
        }
        fv_http_client_free(F.http2);   /* its callback runs with FV_ECANCELED */
        F.http2 = NULL;
        break;
    case 4:
        assert_true(F.blocked.done);
        assert_int_equal(F.blocked.rc, FV_ECANCELED);
        poll_again();
        break;
    case 5:
        if (waiter_count() != 0) {   /* the server sees the connection close a bit later */
            F.step--;
            poll_again();
            break;
        }
        snprintf(target, sizeof(target), "/v1/agent/services?index=%llu&wait=10s",
                 (unsigned long long)F.reg->cat.index);
        req("GET", target, NULL);
        poll_again();
        break;
    case 6:
        if (waiter_count() == 0) {
            F.step--;
            poll_again();
            break;
        }
        registry_server_close(F.reg, on_reg_closed_step, NULL);
        F.reg = NULL;
        break;
    case 7:
    case 8:
        /* The held query's answer and the registry's close, in either order. */
        if (!(F.r.done && F.server_closed == 1))
            break;
        expect(200);
        assert_string_equal(F.r.body, "{}");
        F.step = 9;
        finish();
        break;
    default:
        fail_msg("unexpected step %d", F.step - 1);
    }
}

static void timers_and_waiters(void **state)
{
    memset(&F, 0, sizeof(F));
    F.scenario = 2;
    fv_log_set_level(FV_LOG_ERROR);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.watchdog);
    uv_timer_init(&F.loop, &F.poll);
    uv_timer_start(&F.watchdog, on_watchdog, 20000, 0);
    start_server();
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    assert_int_equal(fv_http_client_new(&F.loop, &o, &F.http), 0);
    assert_int_equal(fv_http_client_new(&F.loop, &o, &F.http2), 0);
    advance();
    run_loop();
    assert_false(F.timed_out);
    assert_int_equal(F.step, 9);
    assert_int_equal(F.server_closed, 2);
    close_loop();
    result_reset(&F.r);
    result_reset(&F.blocked);
    fv_log_set_level(FV_LOG_INFO);
}

static void on_probe_closed(fv_http_server_t *srv, void *data)
{
    advance();
}

/* The registry is down when the client starts, then comes up: the client keeps retrying
 * and ends registered. */
static void advance_recovery(void)
{
    switch (F.step++) {
    case 0:
        /* Learn a free port, then free it again. */
        {
            fv_error_t err;
            assert_int_equal(fv_http_server_new(&F.loop, NULL, fv_router_dispatch, NULL, &F.srv),
                             0);
            assert_int_equal(fv_http_server_listen(F.srv, "127.0.0.1", 0, &err), 0);
            F.port = fv_http_server_port(F.srv);
            fv_http_server_close(F.srv, on_probe_closed, NULL);
            F.srv = NULL;
        }
        break;
    case 1:
        F.cfg.registry.ttl_ms = 5000;
        F.cfg.registry.heartbeat_interval_ms = 50;
        F.cfg.registry.retry_max_ms = 100;
        F.cfg.registry.deregister_after_ms = 30000;
        assert_int_equal(fv_registry_client_new(&F.loop, "127.0.0.1", F.port, &F.cfg,
                                                &F.client), 0);
        fv_registry_instance_t in = {.name = "late", .address = "127.0.0.1", .port = 5000};
        assert_int_equal(fv_registry_client_add(F.client, &in), 0);
        F.polls = 0;
        poll_again();
        break;
    case 2:
        /* Several tries have failed by now; nothing listens, so it cannot be registered. */
        assert_int_equal(fv_registry_client_registered(F.client, "late"), 0);
        if (F.polls < 10) {
            F.step--;
            poll_again();
            break;
        }
        start_server_on(F.port);
        poll_again();
        break;
    case 3:
        if (!fv_registry_client_registered(F.client, "late")) {
            F.step--;
            poll_again();
            break;
        }
        assert_non_null(registry_catalog_find(&F.reg->cat, "late"));
        fv_registry_client_close(F.client, on_client_closed, NULL);
        F.client = NULL;
        break;
    case 4:
        assert_null(registry_catalog_find(&F.reg->cat, "late"));
        finish();
        break;
    default:
        fail_msg("unexpected step %d", F.step - 1);
    }
}

static void client_recovers(void **state)
{
    memset(&F, 0, sizeof(F));
    F.scenario = 3;
    fv_log_set_level(FV_LOG_ERROR);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.watchdog);
    uv_timer_init(&F.loop, &F.poll);
    uv_timer_start(&F.watchdog, on_watchdog, 20000, 0);
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    assert_int_equal(fv_http_client_new(&F.loop, &o, &F.http), 0);
    advance();
    run_loop();
    assert_false(F.timed_out);
    assert_int_equal(F.step, 5);
    close_loop();
    fv_log_set_level(FV_LOG_INFO);
}

static void run_loop(void)
{
    uv_run(&F.loop, UV_RUN_DEFAULT);
}

static void close_loop(void)
{
    fv_router_free(F.router);
    F.router = NULL;
    uv_close((uv_handle_t *)&F.watchdog, NULL);
    uv_close((uv_handle_t *)&F.poll, NULL);
    run_loop();
    assert_int_equal(uv_loop_close(&F.loop), 0);
}

static void routes_and_client(void **state)
{
    memset(&F, 0, sizeof(F));
    char tmpl[] = "/tmp/fv_registry_http_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    F.dir = tmpl;
    fv_log_set_level(FV_LOG_ERROR);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.watchdog);
    uv_timer_init(&F.loop, &F.poll);
    uv_timer_start(&F.watchdog, on_watchdog, 20000, 0);
    start_server();
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    assert_int_equal(fv_http_client_new(&F.loop, &o, &F.http), 0);

    advance();
    run_loop();
    assert_false(F.timed_out);
    assert_int_equal(F.server_closed, 2);
    assert_int_equal(F.step, 29);
    close_loop();
    result_reset(&F.r);
    result_reset(&F.blocked);

    /* ---- a restart loads what the first registry saved at close ---- */
    assert_int_equal(uv_loop_init(&F.loop), 0);
    registry_server_opts_t ro = {.deregister_after_ms = 30000, .data_dir = F.dir};
    fv_error_t err;
    registry_server_t *again;
    assert_int_equal(registry_server_new(&F.loop, &ro, &again, &err), 0);
    registry_instance_t *w = registry_catalog_find(&again->cat, "web1");
    assert_non_null(w);
    assert_int_equal(w->port, 1234);
    assert_int_equal(w->ttl_ms, 10000);
    assert_null(registry_catalog_find(&again->cat, "web2"));
    F.server_closed = 0;
    registry_server_close(again, on_reg_closed, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.server_closed, 1);
    assert_int_equal(uv_loop_close(&F.loop), 0);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
    assert_int_equal(system(cmd), 0);
    fv_log_set_level(FV_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_and_client),
        cmocka_unit_test(timers_and_waiters),
        cmocka_unit_test(client_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
