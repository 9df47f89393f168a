/* test_body_budget.c - the process-wide ceiling on buffered request bodies: many connections
 * each holding part of a body count together; the body that would go past the ceiling gets 503
 * (unavailable) and its connection ends; bytes come back when a connection goes or its next
 * request begins, and then bodies are taken again. Socketless (detached) connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "net/http_internal.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies_share_one_ceiling),
    };
    return cmocka_run_group_tests_name("net/body_budget", tests, NULL, NULL);
}
