/* test_registry_acl.c - ACLs through the real routes: allow and deny for each endpoint, with
 * the token in each place Consul takes it; ownership of instance ids (an instance registered
 * with a token cannot be overwritten, failed or deregistered by the anonymous token or by a
 * token without write on it); the start refusal on a public bind; and the registry client
 * sending its token, surviving a forged deregistration and restoring a lost registration at its
 * next heartbeat. Every wait is bounded by a watchdog; nothing depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/log.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/router.h"
#include "registry/registry.h"
#include "registry/server.h"

#define ADMIN "admin-secret-0001"
#define SONGS "songs-secret-0001"
#define WORLD "world-secret-0001"
#define READER "reader-secret-001"

typedef struct fx {
    uv_loop_t loop;
    fv_router_t *router;
    fv_http_server_t *srv;
    registry_server_t *reg;
    fv_http_client_t *http;
    uv_timer_t watchdog;
    uv_timer_t poll;
    bool timed_out;
    int port;
    int closed;
    bool done;
    int status;
    char body[1024];
} fx_t;

static fx_t F;

static void on_watchdog(uv_timer_t *t)
{
    F.timed_out = true;
}

/* Runs the loop until *flag, failing the test when the watchdog fires first. */
static void run_until(bool *flag)
{
    uv_timer_start(&F.watchdog, on_watchdog, 10000, 0);
    while (!*flag && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.watchdog);
    assert_false(F.timed_out);
}

static void on_response(int rc, const fv_http_response_t *resp, void *data)
{
    assert_int_equal(rc, 0);
    F.status = resp->status;
    snprintf(F.body, sizeof(F.body), "%.*s", (int)resp->body.len,
             resp->body.ptr ? resp->body.ptr : "");
    F.done = true;
}

/* how: 0 X-Consul-Token, 1 Authorization: Bearer, 2 ?token= */
static int call_how(const char *method, const char *target, const char *token, int how,
                    const char *body)
{
    char t[512];
    fv_http_header_t h;
    fv_http_client_req_t r = {
        .method = method,
        .host = "127.0.0.1",
        .port = F.port,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 5000,
    };
    char bearer[200];
    if (token && how == 0) {
        h = (fv_http_header_t){"X-Consul-Token", token};
        r.headers = &h;
        r.header_count = 1;
    } else if (token && how == 1) {
        snprintf(bearer, sizeof(bearer), "Bearer %s", token);
        h = (fv_http_header_t){"Authorization", bearer};
        r.headers = &h;
        r.header_count = 1;
    } else if (token && how == 2) {
        snprintf(t, sizeof(t), "%s%ctoken=%s", target, strchr(target, '?') ? '&' : '?', token);
        r.target = t;
    }
    F.done = false;
    assert_int_equal(fv_http_client_request(F.http, &r, on_response, NULL), 0);
    run_until(&F.done);
    return F.status;
}

static int call(const char *method, const char *target, const char *token, const char *body)
{
    return call_how(method, target, token, 0, body);
}

static void expect_denied(int status, const char *who)
{
    assert_int_equal(status, 403);
    if (!strstr(F.body, "Permission denied: ") || !strstr(F.body, who))
        fail_msg("expected a denial for %s, got %s", who, F.body);
}

static void on_closed(void *data)
{
    F.closed++;
}

static void on_srv_closed(fv_http_server_t *s, void *data)
{
    F.closed++;
}

static void start(const char *policy, const char *tokens)
{
    memset(&F, 0, sizeof(F));
    fv_log_set_level(FV_LOG_ERROR);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    uv_timer_init(&F.loop, &F.watchdog);
    uv_timer_init(&F.loop, &F.poll);
    F.router = fv_router_new();
    registry_server_opts_t o = {
        .deregister_after_ms = 30000,
        .leader = "127.0.0.1:8500",
        .acl_default_policy = policy,
        .acl_tokens = tokens,
        .admin_token = ADMIN,
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
    uv_close((uv_handle_t *)&F.poll, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(F.closed, 2);
    fv_router_free(F.router);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    fv_log_set_level(FV_LOG_INFO);
}

static const char *const TOKENS = SONGS "=service:write:song-*;" WORLD
                                  "=service:write:world-engine;" READER "=read";

static void deny_per_endpoint(void **state)
{
    start("deny", TOKENS);
    const char *song = "{\"Name\":\"song-engine\",\"ID\":\"song-1\",\"Port\":3001}";
    const char *reads[] = {"/v1/agent/services", "/v1/catalog/services",
                           "/v1/catalog/service/song-engine",
                           "/v1/health/service/song-engine?passing"};

    /* the anonymous token: every endpoint refused, except the leader */
    expect_denied(call("PUT", "/v1/agent/service/register", NULL, song), "anonymous token");
    for (size_t i = 0; i < 4; i++)
        expect_denied(call("GET", reads[i], NULL, NULL), "anonymous token lacks permission "
                                                         "'service:read'");
    expect_denied(call("PUT", "/v1/agent/check/pass/service:song-1", NULL, NULL), "anonymous");
    expect_denied(call("PUT", "/v1/agent/check/fail/service:song-1", NULL, NULL), "anonymous");
    expect_denied(call("PUT", "/v1/agent/service/deregister/song-1", NULL, NULL), "anonymous");
    assert_int_equal(call("GET", "/v1/status/leader", NULL, NULL), 200);

    /* a token nobody issued */
    for (int how = 0; how < 3; how++) {
        assert_int_equal(call_how("GET", "/v1/agent/services", "nobody-issued-this", how, NULL),
                         403);
        assert_non_null(strstr(F.body, "ACL not found"));
    }

    /* a writer on its names, in each place a token goes */
    for (int how = 0; how < 3; how++)
        assert_int_equal(call_how("PUT", "/v1/agent/service/register", SONGS, how, song), 200);
    expect_denied(call("PUT", "/v1/agent/service/register", SONGS,
                       "{\"Name\":\"world-engine\",\"Port\":3002}"),
                  "token lacks permission 'service:write' on \\\"world-engine\\\"");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call("GET", reads[i], SONGS, NULL), 200);

    /* a reader reads and writes nothing */
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call_how("GET", reads[i], READER, (int)i % 3, NULL), 200);
    expect_denied(call("PUT", "/v1/agent/service/register", READER, song), "token lacks");
    expect_denied(call("PUT", "/v1/agent/check/pass/service:song-1", READER, NULL),
                  "on \\\"song-engine\\\"");
    expect_denied(call("PUT", "/v1/agent/check/warn/service:song-1", READER, NULL), "lacks");
    expect_denied(call("PUT", "/v1/agent/check/fail/service:song-1", READER, NULL), "lacks");
    expect_denied(call("PUT", "/v1/agent/service/deregister/song-1", READER, NULL), "lacks");
    /* another service's writer neither */
    expect_denied(call("PUT", "/v1/agent/service/deregister/song-1", WORLD, NULL), "lacks");
    assert_non_null(registry_catalog_find(&F.reg->cat, "song-1"));
    assert_int_equal(registry_catalog_find(&F.reg->cat, "song-1")->status, REGISTRY_PASSING);

    /* the owner's rules and the stack's own token may */
    assert_int_equal(call("PUT", "/v1/agent/check/fail/service:song-1", SONGS, NULL), 200);
    assert_int_equal(call("PUT", "/v1/agent/check/pass/service:song-1", ADMIN, NULL), 200);
    assert_int_equal(call("PUT", "/v1/agent/service/deregister/song-1", SONGS, NULL), 200);
    assert_int_equal(call("PUT", "/v1/agent/service/deregister/song-1", SONGS, NULL), 404);
    stop();
}

static void ownership_under_allow(void **state)
{
    start("allow", TOKENS);
    const char *world = "{\"Name\":\"world-engine\",\"ID\":\"w1\",\"Address\":\"10.0.0.2\","
                        "\"Port\":3002}";
    const char *forged = "{\"Name\":\"world-engine\",\"ID\":\"w1\",\"Address\":\"10.6.6.6\","
                         "\"Port\":80}";
    assert_int_equal(call("PUT", "/v1/agent/service/register", WORLD, world), 200);
    assert_true(registry_catalog_find(&F.reg->cat, "w1")->owned);

    /* the anonymous token can read, but not take over, fail or remove it */
    assert_int_equal(call("GET", "/v1/health/service/world-engine", NULL, NULL), 200);
    expect_denied(call("PUT", "/v1/agent/service/register", NULL, forged), "anonymous token");
    expect_denied(call("PUT", "/v1/agent/check/fail/service:w1", NULL, NULL), "anonymous");
    expect_denied(call("PUT", "/v1/agent/service/deregister/w1", NULL, NULL), "anonymous");
    /* nor can a token without write on world-engine, even under allow */
    expect_denied(call("PUT", "/v1/agent/service/register", SONGS, forged), "token lacks");
    expect_denied(call("PUT", "/v1/agent/service/deregister/w1", READER, NULL), "token lacks");
    /* moving the id to a name it may write does not get around it */
    expect_denied(call("PUT", "/v1/agent/service/register", SONGS,
                       "{\"Name\":\"song-x\",\"ID\":\"w1\",\"Port\":1}"),
                  "on \\\"world-engine\\\"");
    registry_instance_t *w1 = registry_catalog_find(&F.reg->cat, "w1");
    assert_string_equal(w1->address, "10.0.0.2");
    assert_int_equal(w1->status, REGISTRY_PASSING);

    /* an unowned instance follows the default policy, until a token registers it */
    assert_int_equal(call("PUT", "/v1/agent/service/register", NULL,
                          "{\"Name\":\"song-engine\",\"ID\":\"s1\",\"Port\":3001}"), 200);
    assert_false(registry_catalog_find(&F.reg->cat, "s1")->owned);
    assert_int_equal(call("PUT", "/v1/agent/check/warn/service:s1", NULL, NULL), 200);
    assert_int_equal(call("PUT", "/v1/agent/service/register", SONGS,
                          "{\"Name\":\"song-engine\",\"ID\":\"s1\",\"Port\":3001}"), 200);
    assert_true(registry_catalog_find(&F.reg->cat, "s1")->owned);
    expect_denied(call("PUT", "/v1/agent/service/deregister/s1", NULL, NULL), "anonymous");

    /* the owner's token may */
    assert_int_equal(call("PUT", "/v1/agent/service/register", WORLD, forged), 200);
    assert_int_equal(call("PUT", "/v1/agent/service/deregister/w1", WORLD, NULL), 200);
    stop();
}

static void refuses_public_bind(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    registry_server_t *s = NULL;
    fv_error_t err;
    registry_server_opts_t o = {.public_bind = true, .acl_default_policy = "allow",
                                .admin_token = ADMIN};
    assert_int_equal(registry_server_new(&loop, &o, &s, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "registry.acl_default_policy must be \"deny\""));
    o.acl_default_policy = "deny";
    o.admin_token = NULL;
    assert_int_equal(registry_server_new(&loop, &o, &s, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "has no token"));
    o.acl_tokens = "not-a-rule";
    assert_int_equal(registry_server_new(&loop, &o, &s, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "registry.acl_tokens"));
    o.acl_tokens = READER "=read";
    assert_int_equal(registry_server_new(&loop, &o, &s, &err), 0);
    F.closed = 0;
    registry_server_close(s, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(F.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_poll(uv_timer_t *t)
{
    (void)t;   /* only wakes the loop so run_until checks its flag again */
}

/* Runs the loop until pred(), polling every 20 ms, bounded by the watchdog. */
static void wait_for(bool (*pred)(void))
{
    uv_timer_start(&F.poll, on_poll, 20, 20);
    uv_timer_start(&F.watchdog, on_watchdog, 10000, 0);
    while (!pred() && !F.timed_out)
        uv_run(&F.loop, UV_RUN_ONCE);
    uv_timer_stop(&F.watchdog);
    uv_timer_stop(&F.poll);
    assert_false(F.timed_out);
}

static fv_registry_client_t *CLIENT;

static bool client_registered(void)
{
    return fv_registry_client_registered(CLIENT, "song-7") &&
           registry_catalog_find(&F.reg->cat, "song-7");
}

static bool client_closed;

static void on_client_closed(void *data)
{
    client_closed = true;
}

static void client_with_token(void **state)
{
    start("deny", TOKENS);
    fv_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.registry.ttl_ms = 5000;
    cfg.registry.heartbeat_interval_ms = 50;
    cfg.registry.retry_max_ms = 100;
    cfg.registry.deregister_after_ms = 30000;
    cfg.registry.token = (char *)SONGS;
    assert_int_equal(fv_registry_client_new(&F.loop, "127.0.0.1", F.port, &cfg, &CLIENT), 0);
    fv_registry_instance_t me = {.name = "song-engine", .id = "song-7", .address = "127.0.0.1",
                                 .port = 3001};
    assert_int_equal(fv_registry_client_add(CLIENT, &me), 0);
    wait_for(client_registered);
    assert_true(registry_catalog_find(&F.reg->cat, "song-7")->owned);

    /* a forged deregistration is refused; the instance stays */
    expect_denied(call("PUT", "/v1/agent/service/deregister/song-7", NULL, NULL), "anonymous");
    expect_denied(call("PUT", "/v1/agent/service/deregister/song-7", WORLD, NULL), "lacks");
    assert_non_null(registry_catalog_find(&F.reg->cat, "song-7"));

    /* lost anyway (here: removed with the stack's token): back at the next heartbeat */
    assert_int_equal(call("PUT", "/v1/agent/service/deregister/song-7", ADMIN, NULL), 200);
    assert_null(registry_catalog_find(&F.reg->cat, "song-7"));
    wait_for(client_registered);

    /* closing deregisters with the token too */
    client_closed = false;
    fv_registry_client_close(CLIENT, on_client_closed, NULL);
    CLIENT = NULL;
    run_until(&client_closed);
    assert_null(registry_catalog_find(&F.reg->cat, "song-7"));
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deny_per_endpoint),
        cmocka_unit_test(ownership_under_allow),
        cmocka_unit_test(refuses_public_bind),
        cmocka_unit_test(client_with_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
