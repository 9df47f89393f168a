/* test_curl_loop.c - libcurl multi on libuv against a tiny HTTP server in this test (loopback,
 * port 0): a GET with headers, a streamed PUT, the body ceiling, a timeout, a refused connection,
 * many transfers at once, and cancellation when the curl loop closes. Every wait is bounded. */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/curl_loop.h"

/* ---- the tiny server ---- */

typedef struct conn {
    uv_tcp_t tcp;
    fv_buf_t in;
    int answered;
    struct conn *next;
    struct server *srv;
} conn_t;

typedef struct server {
    uv_tcp_t listener;
    int port;
    conn_t *conns;
} server_t;

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    server_t *s = c->srv;
    for (conn_t **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    fv_buf_dispose(&c->in);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    free(w);
    conn_close(c);
}

static void reply(conn_t *c, const char *status, const char *extra, const char *body, size_t len)
{
    size_t cap = len + 512;
    uv_write_t *w = malloc(sizeof(*w) + cap);
    char *out = (char *)(w + 1);
    int n = snprintf(out, cap, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, len, extra);
    memcpy(out + n, body, len);
    w->data = c;
    uv_buf_t b = uv_buf_init(out, (unsigned)(n + (int)len));
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char slab[65536];
    b->base = slab;
    b->len = sizeof(slab);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = st->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->answered)
        return;
    assert_int_equal(fv_buf_append(&c->in, b->base, (size_t)nread), 0);
    const char *hend = c->in.ptr ? strstr(c->in.ptr, "\r\n\r\n") : NULL;
    if (!hend)
        return;
    size_t hlen = (size_t)(hend - c->in.ptr) + 4;
    size_t clen = 0;
    const char *cl = strcasestr(c->in.ptr, "\r\nContent-Length:");
    if (cl && cl < hend)
        clen = strtoul(cl + 17, NULL, 10);
    if (c->in.len < hlen + clen)
        return;
    c->answered = 1;
    if (strncmp(c->in.ptr, "GET /hello ", 11) == 0) {
        reply(c, "200 OK", "X-Test:  yes \r\n", "hello world", 11);
    } else if (strncmp(c->in.ptr, "GET /big ", 9) == 0) {
        char *big = malloc(100000);
        memset(big, 'x', 100000);
        reply(c, "200 OK", "", big, 100000);
        free(big);
    } else if (strncmp(c->in.ptr, "PUT /echo ", 10) == 0) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "got %zu", clen);
        reply(c, "201 Created", "", msg, (size_t)n);
    } else if (strncmp(c->in.ptr, "GET /hang ", 10) == 0) {
        /* never answers */
    } else {
        reply(c, "404 Not Found", "", "", 0);
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    server_t *s = l->data;
    conn_t *c = calloc(1, sizeof(*c));
    c->srv = s;
    fv_buf_init(&c->in, 1 << 20);
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    s->conns = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void server_start(uv_loop_t *loop, server_t *s)
{
    memset(s, 0, sizeof(*s));
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, on_connection), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
}

static void server_stop(server_t *s)
{
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, NULL);
}

/* ---- harness ---- */

typedef struct result {
    int calls;
    int rc;
    long status;
    char body[256];
    size_t body_len;
    char xtest[32];
} result_t;

static void on_done(int rc, const fv_curl_resp_t *resp, void *data)
{
    result_t *r = data;
    r->calls++;
    r->rc = rc;
    if (rc == 0) {
        r->status = resp->status;
        r->body_len = resp->body.len;
        size_t n = resp->body.len < sizeof(r->body) - 1 ? resp->body.len : sizeof(r->body) - 1;
        memcpy(r->body, resp->body.ptr ? resp->body.ptr : "", n);
        r->body[n] = '\0';
        fv_slice_t x = fv_curl_resp_header(resp, "x-test");
        if (x.ptr)
            snprintf(r->xtest, sizeof(r->xtest), "%.*s", (int)x.len, x.ptr);
    }
}

static void run_until(uv_loop_t *loop, const int *counter, int want)
{
    fv_test_run_until(loop, counter, want, 20000);
}

typedef struct env {
    uv_loop_t loop;
    server_t srv;
    fv_curl_loop_t *cl;
    int closed;
    char url[128];
} env_t;

static void on_cl_closed(void *data)
{
    (*(int *)data)++;
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    uv_loop_init(&e->loop);
    server_start(&e->loop, &e->srv);
    assert_int_equal(fv_curl_loop_new(&e->loop, &e->cl), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    if (e->cl) {
        fv_curl_loop_close(e->cl, on_cl_closed, &e->closed);
        fv_curl_loop_close(e->cl, NULL, NULL);  /* a second close does nothing */
    }
    run_until(&e->loop, &e->closed, 1);
    server_stop(&e->srv);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e);
    return 0;
}

static const char *url(env_t *e, const char *path)
{
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d%s", e->srv.port, path);
    return e->url;
}

static void get_with_headers(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    const char *hdrs[] = {"X-Hello: 1"};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/hello"), .headers = hdrs,
                       .header_count = 1};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    assert_int_equal(r.calls, 0);               /* never inside the call */
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    assert_string_equal(r.xtest, "yes");
}

static void not_found_is_a_response(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/nope")};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 404);
}

typedef struct feeder {
    size_t left;
} feeder_t;

static size_t feed(char *buf, size_t len, void *data)
{
    feeder_t *f = data;
    size_t n = len < 777 ? len : 777;        /* small pieces on purpose */
    if (n > f->left)
        n = f->left;
    memset(buf, 'a', n);
    f->left -= n;
    return n;
}

static void streamed_put(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    feeder_t f = {50000};
    fv_curl_req_t q = {.method = "PUT", .url = url(e, "/echo"), .read_fn = feed,
                       .read_data = &f, .body_len = 50000};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "got 50000");
    assert_int_equal(f.left, 0);
}

static void memory_put(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    fv_curl_req_t q = {.method = "PUT", .url = url(e, "/echo"), .body = "12345",
                       .body_len = 5};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.body, "got 5");
}

static void body_ceiling(void **state)
{
    env_t *e = *state;
    result_t r = {0}, ok = {0};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/big"), .max_response_bytes = 1000};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, FV_ETOOBIG);
    q.max_response_bytes = 0;
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &ok), 0);
    run_until(&e->loop, &ok.calls, 1);
    assert_int_equal(ok.rc, 0);
    assert_int_equal(ok.body_len, 100000);
}

typedef struct chunks {
    size_t bytes;
    int calls;
    size_t stop_after;           /* abort once this many bytes arrived; 0 = never */
} chunks_t;

static int on_chunk(const char *ptr, size_t len, void *data)
{
    chunks_t *c = data;
    c->bytes += len;
    c->calls++;
    return c->stop_after && c->bytes >= c->stop_after ? FV_ECONFLICT : 0;
}

static void streamed_response(void **state)
{
    env_t *e = *state;
    result_t r = {0}, stopped = {0};
    chunks_t c = {0}, c2 = {.stop_after = 1};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/big"), .write_fn = on_chunk,
                       .write_data = &c, .max_response_bytes = 10};   /* no cap on a stream */
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.body_len, 0);            /* nothing collected */
    assert_int_equal(c.bytes, 100000);
    /* The write function's own code ends the transfer and is what the callback gets. */
    q.write_data = &c2;
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &stopped), 0);
    run_until(&e->loop, &stopped.calls, 1);
    assert_int_equal(stopped.rc, FV_ECONFLICT);
    assert_int_equal(c2.calls, 1);
}

static void bad_request_refused(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    fv_curl_req_t q = {.method = NULL, .url = url(e, "/hello")};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), FV_EINVAL);
    q.method = "GET";
    q.url = NULL;
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), FV_EINVAL);
    assert_int_equal(r.calls, 0);
    assert_int_equal(fv_curl_code_to_err(CURLE_OK), 0);
    assert_int_equal(fv_curl_code_to_err(CURLE_COULDNT_CONNECT), FV_EBACKEND);
    assert_int_equal(fv_curl_code_to_err(CURLE_OPERATION_TIMEDOUT), FV_ETIMEDOUT);
    assert_int_equal(fv_curl_code_to_err(CURLE_URL_MALFORMAT), FV_EPROTO);
}

static void timeout(void **state)
{
    env_t *e = *state;
    result_t r = {0};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/hang"), .timeout_ms = 300};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, FV_ETIMEDOUT);
}

static void refused(void **state)
{
    env_t *e = *state;
    /* A port that was just free: bind, read it, close. */
    uv_tcp_t t;
    struct sockaddr_in addr, got;
    int len = sizeof(got);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&e->loop, &t);
    uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(got.sin_port));
    result_t r = {0};
    fv_curl_req_t q = {.method = "GET", .url = u};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    run_until(&e->loop, &r.calls, 1);
    assert_int_equal(r.rc, FV_EBACKEND);
}

static void many_at_once(void **state)
{
    env_t *e = *state;
    enum { N = 20 };
    result_t r[N];
    memset(r, 0, sizeof(r));
    int total = 0;
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/hello")};
    for (int i = 0; i < N; i++)
        assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r[i]), 0);
    uv_timer_t wd;
    fv_test_wait_t w = {0};
    uv_timer_init(&e->loop, &wd);
    wd.data = &w;
    uv_timer_start(&wd, fv_test_on_watchdog, 20000, 0);
    while (total < N && !w.timed_out) {
        uv_run(&e->loop, UV_RUN_ONCE);
        total = 0;
        for (int i = 0; i < N; i++)
            total += r[i].calls;
    }
    uv_close((uv_handle_t *)&wd, NULL);
    assert_false(w.timed_out);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 200);
    }
}

static void cancel_on_close(void **state)
{
    env_t *e = *state;
    result_t r = {0}, late = {0};
    fv_curl_req_t q = {.method = "GET", .url = url(e, "/hang")};
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &r), 0);
    /* Let it connect and send, then close with the transfer in flight. */
    for (int i = 0; i < 20; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    fv_curl_loop_close(e->cl, on_cl_closed, &e->closed);
    assert_int_equal(r.calls, 0);               /* cancellation runs from the loop */
    assert_int_equal(fv_curl_request(e->cl, &q, on_done, &late), FV_ECANCELED);
    run_until(&e->loop, &e->closed, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, FV_ECANCELED);
    assert_int_equal(late.calls, 0);
    e->cl = NULL;                               /* freed: teardown's close is then a no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_with_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(not_found_is_a_response, setup, teardown),
        cmocka_unit_test_setup_teardown(streamed_put, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_put, setup, teardown),
        cmocka_unit_test_setup_teardown(body_ceiling, setup, teardown),
        cmocka_unit_test_setup_teardown(streamed_response, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_request_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(refused, setup, teardown),
        cmocka_unit_test_setup_teardown(many_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_on_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
