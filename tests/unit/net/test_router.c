/* test_router.c - fv_router_match: literal, parameter and rest segments, precedence, 404 and
 * 405 with the Allow list, HEAD falling back to GET, malformed and duplicate patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/router.h"

static void h_a(fv_http_req_t *req, void *data) {}
static void h_b(fv_http_req_t *req, void *data) {}
static void h_c(fv_http_req_t *req, void *data) {}

typedef struct match {
    int rc;
    fv_http_handler_cb handler;
    void *data;
    const char *route;
    fv_route_param_t params[8];
    size_t count;
    const char *allow;
} match_t;

static match_t m(const fv_router_t *r, const char *method, const char *path)
{
    match_t x;
    memset(&x, 0, sizeof(x));
    x.rc = fv_router_match(r, fv_slice_cstr(method), fv_slice_cstr(path), &x.handler, &x.data,
                           &x.route, x.params, 8, &x.count, &x.allow);
    return x;
}

static void assert_param(const match_t *x, size_t i, const char *name, const char *value)
{
    assert_true(i < x->count);
    assert_string_equal(x->params[i].name, name);
    assert_int_equal(x->params[i].value.len, strlen(value));
    assert_memory_equal(x->params[i].value.ptr, value, strlen(value));
}

/* The literal fast path must pick what the full search picks: by method, falling back to
 * parameter routes, to "*" and to GET for HEAD. */
static void literal_fast_path_agrees(void **state)
{
    fv_router_t *r = fv_router_new();
    assert_int_equal(fv_router_add(r, "GET", "/a/b", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "POST", "/a/:x", h_b, NULL), 0);
    assert_int_equal(fv_router_add(r, "*", "/a/b", h_c, NULL), 0);
    assert_int_equal(fv_router_add(r, "PUT", "/c/:x", h_b, NULL), 0);

    match_t x = m(r, "GET", "/a/b");
    assert_int_equal(x.rc, 0);
    assert_ptr_equal(x.handler, h_a);
    assert_int_equal(x.count, 0);
    x = m(r, "POST", "/a/b");
    assert_ptr_equal(x.handler, h_c);            /* literal "*" beats the parameter route */
    x = m(r, "POST", "/a/z");
    assert_ptr_equal(x.handler, h_b);
    assert_param(&x, 0, "x", "z");
    x = m(r, "HEAD", "/a/b");
    assert_ptr_equal(x.handler, h_c);            /* "*" fits HEAD before the GET fallback */
    x = m(r, "PUT", "/c/literal");
    assert_ptr_equal(x.handler, h_b);
    assert_param(&x, 0, "x", "literal");
    x = m(r, "GET", "/a/b/");
    assert_int_equal(x.rc, FV_ENOENT);
    fv_router_free(r);
}

static void literal_and_params(void **state)
{
    fv_router_t *r = fv_router_new();
    int tag = 7;
    assert_int_equal(fv_router_add(r, "GET", "/", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/v1/users/:id", h_b, &tag), 0);
    assert_int_equal(fv_router_add(r, "GET", "/v1/users/:id/items/:item", h_c, NULL), 0);

    match_t x = m(r, "GET", "/");
    assert_int_equal(x.rc, 0);
    assert_ptr_equal(x.handler, h_a);
    assert_string_equal(x.route, "/");

    x = m(r, "GET", "/v1/users/42");
    assert_int_equal(x.rc, 0);
    assert_ptr_equal(x.handler, h_b);
    assert_ptr_equal(x.data, &tag);
    assert_string_equal(x.route, "/v1/users/:id");
    assert_int_equal(x.count, 1);
    assert_param(&x, 0, "id", "42");

    x = m(r, "GET", "/v1/users/42/items/sword");
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.count, 2);
    assert_param(&x, 0, "id", "42");
    assert_param(&x, 1, "item", "sword");

    assert_int_equal(m(r, "GET", "/v1/users").rc, FV_ENOENT);
    assert_int_equal(m(r, "GET", "/v1/users/").rc, FV_ENOENT);     /* empty param */
    assert_int_equal(m(r, "GET", "/v1/users/42/x").rc, FV_ENOENT);
    assert_int_equal(m(r, "GET", "/nope").rc, FV_ENOENT);
    assert_int_equal(m(r, "GET", "").rc, FV_ENOENT);
    fv_router_free(r);
}

static void rest_segment(void **state)
{
    fv_router_t *r = fv_router_new();
    assert_int_equal(fv_router_add(r, "GET", "/static/*path", h_a, NULL), 0);
    match_t x = m(r, "GET", "/static/css/site.css");
    assert_int_equal(x.rc, 0);
    assert_param(&x, 0, "path", "css/site.css");
    x = m(r, "GET", "/static/");
    assert_int_equal(x.rc, 0);
    assert_param(&x, 0, "path", "");
    x = m(r, "GET", "/static");
    assert_int_equal(x.rc, 0);
    assert_param(&x, 0, "path", "");
    assert_int_equal(m(r, "GET", "/other/x").rc, FV_ENOENT);
    fv_router_free(r);
}

static void literal_beats_param(void **state)
{
    fv_router_t *r = fv_router_new();
    /* added in the "wrong" order on purpose: precedence is not insertion order */
    assert_int_equal(fv_router_add(r, "GET", "/files/*rest", h_c, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/users/:id", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/users/me", h_b, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/files/:name", h_a, NULL), 0);
    assert_ptr_equal(m(r, "GET", "/users/me").handler, h_b);
    assert_ptr_equal(m(r, "GET", "/users/you").handler, h_a);
    assert_ptr_equal(m(r, "GET", "/files/a").handler, h_a);
    assert_ptr_equal(m(r, "GET", "/files/a/b").handler, h_c);
    fv_router_free(r);
}

static void not_allowed_lists_methods(void **state)
{
    fv_router_t *r = fv_router_new();
    assert_int_equal(fv_router_add(r, "POST", "/items", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/items", h_b, NULL), 0);
    assert_int_equal(fv_router_add(r, "DELETE", "/items/:id", h_c, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/items/:id", h_c, NULL), 0);
    assert_int_equal(fv_router_add(r, "PUT", "/items/special", h_c, NULL), 0);

    match_t x = m(r, "PATCH", "/items");
    assert_int_equal(x.rc, FV_ENOTALLOWED);
    assert_string_equal(x.allow, "GET, HEAD, POST");
    const char *first = x.allow;
    x = m(r, "PUT", "/items");
    assert_ptr_equal(x.allow, first);     /* the same list is handed out again */

    /* a GET on a path whose literal route only has PUT falls back to the param route */
    x = m(r, "GET", "/items/special");
    assert_int_equal(x.rc, 0);
    assert_ptr_equal(x.handler, h_c);
    x = m(r, "POST", "/items/special");
    assert_int_equal(x.rc, FV_ENOTALLOWED);
    assert_string_equal(x.allow, "DELETE, GET, HEAD, PUT");
    fv_router_free(r);
}

static void head_and_any(void **state)
{
    fv_router_t *r = fv_router_new();
    assert_int_equal(fv_router_add(r, "GET", "/health", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/both", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "HEAD", "/both", h_b, NULL), 0);
    assert_int_equal(fv_router_add(r, "*", "/any", h_c, NULL), 0);
    assert_ptr_equal(m(r, "HEAD", "/health").handler, h_a);
    assert_ptr_equal(m(r, "HEAD", "/both").handler, h_b);
    assert_ptr_equal(m(r, "DELETE", "/any").handler, h_c);
    assert_ptr_equal(m(r, "GET", "/any").handler, h_c);
    fv_router_free(r);
}

static void malformed_and_duplicate(void **state)
{
    fv_router_t *r = fv_router_new();
    assert_int_equal(fv_router_add(r, "GET", "", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "nope", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a//b", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a/:", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a/*rest/b", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a/:x/:x", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a/b:c", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "get", "/a", h_a, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a", NULL, NULL), FV_EINVAL);
    assert_int_equal(fv_router_add(r, "GET", "/a/:id", h_a, NULL), 0);
    assert_int_equal(fv_router_add(r, "GET", "/a/:id", h_b, NULL), FV_EEXIST);
    assert_int_equal(fv_router_add(r, "POST", "/a/:id", h_b, NULL), 0);
    fv_router_free(r);
    fv_router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_and_params),
        cmocka_unit_test(literal_fast_path_agrees),
        cmocka_unit_test(rest_segment),
        cmocka_unit_test(literal_beats_param),
        cmocka_unit_test(not_allowed_lists_methods),
        cmocka_unit_test(head_and_any),
        cmocka_unit_test(malformed_and_duplicate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
