/* test_auth.c - the api-gateway's /api/auth routes in the real runtime over loopback HTTP:
 * register (and its refusals), login with the same answer for an unknown name and a wrong
 * password, guests, /me with good and bad tokens, the body limit, and more sign-ins at once than
 * may hash at once. The accounts go to an in-memory SQLite store; argon2id runs at a low cost
 * so the test stays quick. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/time.h"
#include "core/token.h"
#include "loopback.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "scratch.h"
#include "ws_client.h"

static uv_loop_t loop;
static fv_config_t *cfg;
static fv_runtime_t *rt;
static int port;
static char data_dir[256];

static int group_setup(void **state)
{
    (void)state;
    int base = fv_test_port_base(23000, 300);
    char text[1024];
    fv_test_scratch_make(data_dir, sizeof(data_dir));
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\ndrain_timeout_ms = 2000\n"
             "log_level = \"warn\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n"
             "[database]\nurl = \"sqlite::memory:\"\n[redis]\nurl = \"memory:\"\n"
             "[auth]\npassword_opslimit = 1\npassword_memlimit_bytes = 65536\n"
             "access_ttl_ms = 60000\nlockout_failures = 0\n[gateway]\nauth_rate_limit_burst = 100000\n",
             base, data_dir);
    static char *const env[] = {NULL};
    fv_error_t err;
    if (fv_config_load_string("test.toml", text, strlen(text), env, NULL, &cfg, &err) < 0)
        fail_msg("config: %s", err.msg);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fv_runtime_new(&loop, cfg, &rt), 0);
    int which[] = {FV_MOD_API_GATEWAY};
    if (fv_runtime_start(rt, which, 1, &err) < 0)
        fail_msg("start: %s", err.msg);
    port = fv_component_port(FV_MOD_API_GATEWAY, base);
    /* the stores open and migrate before the module starts listening */
    for (int i = 0; i < 500; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fv_runtime_shutdown(rt);
    assert_int_equal(fv_runtime_run(rt), 0);
    fv_runtime_free(rt);
    fv_test_scratch_remove(data_dir);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fv_config_free(cfg);
    return 0;
}

typedef struct answer {
    int status;
    char head[2048];
    json_t *body;           /* NULL when the body is not JSON */
} answer_t;

/* Sends one request on a fresh connection and reads the whole answer (bounded: ~10 s). */
static void http(const char *method, const char *path, const char *auth, const char *body,
                 answer_t *a)
{
    static wsc_t c;
    wsc_open(&c, &loop, port);
    char *req = NULL;
    size_t blen = body ? strlen(body) : 0;
    char authline[FV_TOKEN_MAX_BYTES + 64] = "";
    if (auth)
        snprintf(authline, sizeof(authline), "Authorization: %s\r\n", auth);
    assert_true(asprintf(&req,
                         "%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json"
                         "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         method, path, authline, blen, body ? body : "") > 0);
    a->status = wsc_handshake_raw(&c, req, a->head, sizeof(a->head));
    free(req);
    assert_true(a->status > 0);
    for (int i = 0; i < 10000 && !c.eof; i++)
        wsc_wait(&c);
    assert_true(c.eof);
    a->body = json_loadb((const char *)c.in, c.in_len, 0, NULL);
    wsc_close_fd(&c);
}

static const char *jstr(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static void test_register_and_login(void **state)
{
    (void)state;
    answer_t a;
    http("POST", "/api/auth/register", NULL, "{\"name\":\"Aria_7\",\"password\":\"correct horse\"}",
         &a);
    assert_int_equal(a.status, 201);
    char id[64];
    snprintf(id, sizeof(id), "%s", jstr(a.body, "player", "id"));
    assert_true(strlen(id) > 0);
    assert_string_equal(jstr(a.body, "player", "name"), "Aria_7");
    json_decref(a.body);

    /* names are unique whatever their case */
    http("POST", "/api/auth/register", NULL, "{\"name\":\"aria_7\",\"password\":\"another one!\"}",
         &a);
    assert_int_equal(a.status, 409);
    assert_string_equal(jstr(a.body, "error", "code"), "conflict");
    json_decref(a.body);

    http("POST", "/api/auth/login", NULL, "{\"name\":\"ARIA_7\",\"password\":\"correct horse\"}",
         &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(a.body, "token_type", NULL), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(a.body, "expires_in")), 60);
    assert_string_equal(jstr(a.body, "player", "id"), id);
    assert_string_equal(jstr(a.body, "player", "name"), "Aria_7");
    assert_true(json_is_false(json_object_get(json_object_get(a.body, "player"), "guest")));
    fv_token_claims_t claims;
    assert_int_equal(fv_token_verify(FV_TOKEN_PLACEHOLDER_SECRET, jstr(a.body, "access_token", NULL),
                                     (int64_t)(fv_wall_ms() / 1000), &claims),
                     0);
    assert_string_equal(claims.sub, id);
    assert_false(claims.guest);

    char bearer[FV_TOKEN_MAX_BYTES + 16];
    snprintf(bearer, sizeof(bearer), "Bearer %s", jstr(a.body, "access_token", NULL));
    json_decref(a.body);
    http("GET", "/api/auth/me", bearer, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(jstr(a.body, "player", "id"), id);
    assert_string_equal(jstr(a.body, "player", "name"), "Aria_7");
    json_decref(a.body);

    /* one character of the signature changed */
    size_t last = strlen(bearer) - 3;
    bearer[last] = bearer[last] == 'A' ? 'B' : 'A';
    http("GET", "/api/auth/me", bearer, NULL, &a);
    assert_int_equal(a.status, 401);
    assert_non_null(strcasestr(a.head, "WWW-Authenticate: Bearer"));
    json_decref(a.body);
    http("GET", "/api/auth/me", NULL, NULL, &a);
    assert_int_equal(a.status, 401);
    assert_string_equal(jstr(a.body, "error", "code"), "unauthenticated");
    json_decref(a.body);
}

/* Unknown name and wrong password: the same status and the same body. */
static void test_login_failures_look_alike(void **state)
{
    (void)state;
    answer_t a, b, c;
    http("POST", "/api/auth/register", NULL, "{\"name\":\"Bard\",\"password\":\"lute-and-song\"}",
         &a);
    assert_int_equal(a.status, 201);
    json_decref(a.body);
    http("POST", "/api/auth/login", NULL, "{\"name\":\"Bard\",\"password\":\"lute-and-sonG\"}",
         &a);
    http("POST", "/api/auth/login", NULL, "{\"name\":\"Nobody\",\"password\":\"lute-and-song\"}",
         &b);
    http("POST", "/api/auth/login", NULL, "{\"name\":\"x\",\"password\":\"lute-and-song\"}", &c);
    assert_int_equal(a.status, 401);
    assert_int_equal(b.status, 401);
    assert_int_equal(c.status, 401);
    assert_true(json_equal(a.body, b.body));
    assert_true(json_equal(a.body, c.body));
    json_decref(a.body);
    json_decref(b.body);
    json_decref(c.body);
}

static void test_register_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"name\":\"ab\",\"password\":\"long enough pw\"}",
        "{\"name\":\"has space\",\"password\":\"long enough pw\"}",
        "{\"name\":\"tab\\there\",\"password\":\"long enough pw\"}",
        "{\"name\":\"nul\\u0000x\",\"password\":\"long enough pw\"}",
        "{\"name\":\"abcdefghijklmnopqrstuvwxyz0123456\",\"password\":\"long enough pw\"}",
        "{\"name\":\"Short\",\"password\":\"123456789\"}",
        "{\"name\":\"Fine\",\"password\":42}",
        "{\"name\":\"Fine\"}",
        "[1,2]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        answer_t a;
        http("POST", "/api/auth/register", NULL, bad[i], &a);
        if (a.status != 400)
            fail_msg("%s: status %d", bad[i], a.status);
        assert_string_equal(jstr(a.body, "error", "code"), "invalid_argument");
        json_decref(a.body);
    }
    /* a 129-byte password, and a body past the route's limit */
    char body[8192];
    snprintf(body, sizeof(body), "{\"name\":\"Fine\",\"password\":\"%0129d\"}", 0);
    answer_t a;
    http("POST", "/api/auth/register", NULL, body, &a);
    assert_int_equal(a.status, 400);
    json_decref(a.body);
    snprintf(body, sizeof(body), "{\"name\":\"Fine\",\"password\":\"%05000d\"}", 0);
    http("POST", "/api/auth/login", NULL, body, &a);
    assert_int_equal(a.status, 413);
    json_decref(a.body);
    /* another method falls through to /api/:service/..., and there is no service "auth" */
    http("GET", "/api/auth/register", NULL, NULL, &a);
    assert_int_equal(a.status, 404);
    assert_string_equal(jstr(a.body, "error", "code"), "not_found");
    json_decref(a.body);
}

static void test_guest(void **state)
{
    (void)state;
    answer_t a;
    http("POST", "/api/auth/guest", NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_true(json_is_true(json_object_get(json_object_get(a.body, "player"), "guest")));
    assert_non_null(strstr(jstr(a.body, "player", "name"), "guest-"));
    char bearer[FV_TOKEN_MAX_BYTES + 16];
    snprintf(bearer, sizeof(bearer), "bearer %s", jstr(a.body, "access_token", NULL));
    json_decref(a.body);
    http("GET", "/api/auth/me", bearer, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_true(json_is_true(json_object_get(json_object_get(a.body, "player"), "guest")));
    json_decref(a.body);
}

/* More sign-ins at once than max_parallel_hashes (2 here): the rest wait their turn in the
 * gateway, and each gets its own right answer. */
static void test_many_at_once(void **state)
{
    (void)state;
    enum { N = 6 };
    static wsc_t c[N];
    answer_t a;
    http("POST", "/api/auth/register", NULL, "{\"name\":\"Crowd\",\"password\":\"many voices\"}",
         &a);
    assert_int_equal(a.status, 201);
    json_decref(a.body);
    for (int i = 0; i < N; i++) {
        char req[512], body[128];
        snprintf(body, sizeof(body), "{\"name\":\"Crowd\",\"password\":\"%s\"}",
                 i % 2 ? "many voices" : "wrong voices");
        snprintf(req, sizeof(req),
                 "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 strlen(body), body);
        wsc_open(&c[i], &loop, port);
        wsc_write(&c[i], req, strlen(req));
    }
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 10000 && !c[i].eof; k++)
            wsc_wait(&c[i]);
        assert_true(c[i].eof);
        c[i].in[c[i].in_len < sizeof(c[i].in) ? c[i].in_len : sizeof(c[i].in) - 1] = '\0';
        assert_int_equal(atoi((const char *)c[i].in + 9), i % 2 ? 200 : 401);
        wsc_close_fd(&c[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_and_login),
        cmocka_unit_test(test_login_failures_look_alike),
        cmocka_unit_test(test_register_refusals),
        cmocka_unit_test(test_guest),
        cmocka_unit_test(test_many_at_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
