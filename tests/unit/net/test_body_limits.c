/* test_body_limits.c - request body limits. Per route: a route's own limit replaces the
 * server's default, larger or smaller (0: no body), for Content-Length (refused before any body
 * byte) and chunked bodies alike. Per process: many connections each holding part of a body
 * count together; the body that would go past the ceiling gets 503 (unavailable) and its
 * connection ends; bytes come back when a connection goes or its next request begins.
 * Socketless (detached) connections, fed whole and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_internal.h"
#include "net/router.h"

static void handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 200, "text/plain", "ok", 2);
}

static void bodies_share_one_ceiling(void **state)
{
    uv_loop_t loop;
    fv_http_server_t *srv;
    assert_int_equal(uv_loop_init(&loop), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_body_bytes = 4096;
    lim.max_buffered_body_bytes = 10000;
    assert_int_equal(fv_http_server_new(&loop, &lim, handler, NULL, &srv), 0);
    size_t base = fv__http_buffered_bodies();

    static const char head[] = "POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n";
    char part[3000];
    memset(part, 'x', sizeof(part));
    fv_buf_t out[4];
    fv_sock_t *c[4];
    /* three connections each hold 3,000 of their 4,000 bytes: 9,000 buffered */
    for (int i = 0; i < 3; i++) {
        fv_buf_init(&out[i], 1 << 16);
        c[i] = fv__http_conn_new_detached(srv, &out[i]);
        fv__http_conn_feed(c[i], head, sizeof(head) - 1);
        fv__http_conn_feed(c[i], part, sizeof(part));
        assert_int_equal(out[i].len, 0);              /* nothing answered yet */
    }
    assert_int_equal(fv__http_buffered_bodies() - base, 9000);

    /* a fourth would take it to 12,000: 503, and that connection ends */
    fv_buf_init(&out[3], 1 << 16);
    c[3] = fv__http_conn_new_detached(srv, &out[3]);
    fv__http_conn_feed(c[3], head, sizeof(head) - 1);
    fv__http_conn_feed(c[3], part, sizeof(part));
    assert_true(out[3].len > 0);
    assert_memory_equal(out[3].ptr, "HTTP/1.1 503 ", 13);
    assert_non_null(strstr(out[3].ptr, "\"code\":\"unavailable\""));
    assert_non_null(strstr(out[3].ptr, "too much request data in flight"));
    fv__http_conn_free_detached(c[3]);
    assert_int_equal(fv__http_buffered_bodies() - base, 9000);

    /* one goes: its bytes come back, and a whole body fits again */
    fv__http_conn_free_detached(c[0]);
    assert_int_equal(fv__http_buffered_bodies() - base, 6000);
    fv_buf_reset(&out[3]);
    c[3] = fv__http_conn_new_detached(srv, &out[3]);
    fv__http_conn_feed(c[3], head, sizeof(head) - 1);
    char rest[4000];
    memset(rest, 'y', sizeof(rest));
    fv__http_conn_feed(c[3], rest, sizeof(rest));
    assert_memory_equal(out[3].ptr, "HTTP/1.1 200 ", 13);
    /* the next request on that connection releases the answered body */
    static const char get[] = "GET /u HTTP/1.1\r\nHost: t\r\n\r\n";
    fv__http_conn_feed(c[3], get, sizeof(get) - 1);
    assert_int_equal(fv__http_buffered_bodies() - base, 6000);

    for (int i = 1; i < 4; i++)
        fv__http_conn_free_detached(c[i]);
    for (int i = 0; i < 4; i++)
        fv_buf_dispose(&out[i]);
    assert_int_equal(fv__http_buffered_bodies(), base);
    fv_http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int routed;

static void on_route(fv_http_req_t *req, void *data)
{
    routed++;
    char n[32];
    snprintf(n, sizeof(n), "%zu", fv_http_req_body(req).len);
    fv_http_reply(req, 200, "text/plain", n, strlen(n));
}

/* The status code of the first response to req on a new connection, fed whole (split 0) or one
 * byte at a time (split 1). */
static int status_of(fv_http_server_t *srv, const char *req, size_t len, int split)
{
    fv_buf_t out;
    fv_buf_init(&out, 1 << 20);
    fv_sock_t *c = fv__http_conn_new_detached(srv, &out);
    if (split) {
        for (size_t i = 0; i < len; i++)
            fv__http_conn_feed(c, req + i, 1);
    } else {
        fv__http_conn_feed(c, req, len);
    }
    fv__http_conn_free_detached(c);
    int code = 0;
    if (out.len > 12)
        sscanf(out.ptr, "HTTP/1.1 %d", &code);
    fv_buf_dispose(&out);
    return code;
}

static void routes_set_their_own_limits(void **state)
{
    uv_loop_t loop;
    fv_http_server_t *srv;
    assert_int_equal(uv_loop_init(&loop), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_body_bytes = 4096;
    fv_router_t *router = fv_router_new();
    assert_int_equal(fv_router_add_limited(router, "POST", "/small", on_route, NULL, 10), 0);
    assert_int_equal(fv_router_add_limited(router, "POST", "/big/:id", on_route, NULL, 100000),
                     0);
    assert_int_equal(fv_router_add_limited(router, "GET", "/none", on_route, NULL, 0), 0);
    assert_int_equal(fv_router_add(router, "POST", "/default", on_route, NULL), 0);
    assert_int_equal(fv_http_server_new(&loop, &lim, fv_router_dispatch, router, &srv), 0);
    fv_http_server_set_body_policy(srv, fv_router_body_policy, router);

    static char big[20000];
    memset(big, 'b', sizeof(big));
    struct {
        const char *target;
        size_t body;
        int chunked;
        int want;
    } cases[] = {
        {"POST /small", 10, 0, 200},   {"POST /small", 11, 0, 413},
        {"POST /small", 10, 1, 200},   {"POST /small", 11, 1, 413},
        {"POST /big/7", 20000, 0, 200}, {"POST /big/7", 20000, 1, 200},
        {"GET /none", 0, 0, 200},      {"GET /none", 1, 0, 413},
        {"GET /none", 1, 1, 413},      {"POST /default", 4096, 0, 200},
        {"POST /default", 4097, 0, 413}, {"POST /nowhere", 5000, 0, 413},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *req = malloc(sizeof(big) + 256);
        int n;
        if (cases[i].chunked)
            n = snprintf(req, 256, "%s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "%zx\r\n", cases[i].target, cases[i].body);
        else
            n = snprintf(req, 256, "%s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                         cases[i].target, cases[i].body);
        memcpy(req + n, big, cases[i].body);
        size_t len = (size_t)n + cases[i].body;
        if (cases[i].chunked)
            len += (size_t)sprintf(req + len, "\r\n0\r\n\r\n");
        for (int split = 0; split < 2; split++) {
            int got = status_of(srv, req, len, split && len < 2000);
            if (got != cases[i].want)
                fail_msg("%s with %zu bytes%s: want %d, got %d", cases[i].target, cases[i].body,
                         cases[i].chunked ? " chunked" : "", cases[i].want, got);
        }
        free(req);
    }
    assert_true(routed > 0);
    fv_http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fv_router_free(router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies_share_one_ceiling),
        cmocka_unit_test(routes_set_their_own_limits),
    };
    return cmocka_run_group_tests_name("net/body_limits", tests, NULL, NULL);
}
