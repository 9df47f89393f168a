/* test_http_client.c - the HTTP client against our own server and a scripted raw server, on
 * one loop: GET, POST body, pool reuse, chunked and read-until-close responses, timeouts,
 * refused connections, cancel on free, the retry of a dead pooled connection, and the router's
 * 405 seen from outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "net/http_client.h"
#include "net/http_internal.h"
#include "net/http_server.h"
#include "net/router.h"

/* ---- a raw server that answers every request head with a fixed text ---- */

typedef struct raw raw_t;

typedef struct raw_conn {
    uv_tcp_t tcp;
    uv_write_t w;
    raw_t *srv;
    char buf[8192];
    size_t len;
    bool open;
} raw_conn_t;

struct raw {
    uv_tcp_t listener;
    int port;
    const char *reply;           /* NULL: never answer */
    bool close_after;
    raw_conn_t *conns[16];
    int nconns;
};

static void raw_conn_closed(uv_handle_t *h)
{
    raw_conn_t *c = h->data;
    c->open = false;
}

static void raw_close_conn(raw_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, raw_conn_closed);
}

static void raw_written(uv_write_t *w, int status)
{
    raw_conn_t *c = w->data;
    if (c->srv->close_after)
        raw_close_conn(c);
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    raw_conn_t *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    raw_conn_t *c = s->data;
    if (n < 0) {
        raw_close_conn(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end || !c->srv->reply)
        return;
    c->len = 0;
    uv_buf_t out = uv_buf_init((char *)c->srv->reply, (unsigned)strlen(c->srv->reply));
    c->w.data = c;
    uv_write(&c->w, s, &out, 1, raw_written);
}

static void raw_on_conn(uv_stream_t *l, int status)
{
    raw_t *r = l->data;
    raw_conn_t *c = fv_calloc(1, sizeof(*c));
    c->srv = r;
    c->open = true;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(l, (uv_stream_t *)&c->tcp);
    if (r->nconns < 16)
        r->conns[r->nconns++] = c;
    uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
}

static void raw_start(uv_loop_t *loop, raw_t *r, const char *reply, bool close_after)
{
    memset(r, 0, sizeof(*r));
    r->reply = reply;
    r->close_after = close_after;
    uv_tcp_init(loop, &r->listener);
    r->listener.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&r->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 16, raw_on_conn), 0);
    struct sockaddr_in b;
    int len = sizeof(b);
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&b, &len);
    r->port = ntohs(b.sin_port);
}

static void raw_stop(raw_t *r)
{
    uv_close((uv_handle_t *)&r->listener, NULL);
    for (int i = 0; i < r->nconns; i++)
        raw_close_conn(r->conns[i]);
}

static void raw_free(raw_t *r)
{
    for (int i = 0; i < r->nconns; i++)
        fv_free(r->conns[i]);
}

/* ---- the test bench ---- */

typedef struct bench {
    uv_loop_t loop;
    uv_timer_t watchdog;
    fv_http_server_t *srv;
    fv_router_t *router;
    fv_http_client_t *client;
    raw_t raw;
    bool have_raw;
    int port;
    int calls;
    int want_calls;
    int rc[8];
    int status[8];
    char body[8][256];
    char header[8][64];
    char peers[8][64];
    int npeers;
    bool in_call;
    bool cb_inside_call;
    bool timed_out;
} bench_t;

static void on_watchdog(uv_timer_t *t)
{
    bench_t *b = t->data;
    b->timed_out = true;
    uv_stop(&b->loop);
}

static void handler(fv_http_req_t *req, void *data)
{
    bench_t *b = data;
    fv_slice_t p = fv_http_req_path(req);
    if (b->npeers < 8)
        snprintf(b->peers[b->npeers++], 64, "%s", fv_http_req_peer(req));
    if (p.len > 3 && memcmp(p.ptr, "/p/", 3) == 0) {
        fv_http_reply(req, 200, "text/plain", p.ptr, p.len);
        return;
    }
    if (fv_slice_eq_cstr(p, "/echo")) {
        fv_slice_t body = fv_http_req_body(req);
        fv_http_reply(req, 200, "text/plain", body.ptr, body.len);
        return;
    }
    fv_http_resp_header(req, "X-Test", "yes");
    fv_http_reply(req, 200, "text/plain", "hello", 5);
}

static void bench_init(bench_t *b, bool with_router)
{
    memset(b, 0, sizeof(*b));
    assert_int_equal(uv_loop_init(&b->loop), 0);
    uv_timer_init(&b->loop, &b->watchdog);
    b->watchdog.data = b;
    uv_timer_start(&b->watchdog, on_watchdog, 10000, 0);
    if (with_router) {
        b->router = fv_router_new();
        assert_int_equal(fv_router_add(b->router, "GET", "/hello", handler, b), 0);
        assert_int_equal(fv_router_add(b->router, "PUT", "/hello", handler, b), 0);
        assert_int_equal(fv_http_server_new(&b->loop, NULL, fv_router_dispatch, b->router,
                                            &b->srv), 0);
    } else {
        assert_int_equal(fv_http_server_new(&b->loop, NULL, handler, b, &b->srv), 0);
    }
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(b->srv, "127.0.0.1", 0, &err), 0);
    b->port = fv_http_server_port(b->srv);
    assert_int_equal(fv_http_client_new(&b->loop, NULL, &b->client), 0);
}

static void bench_run(bench_t *b)
{
    uv_run(&b->loop, UV_RUN_DEFAULT);
    assert_false(b->timed_out);
}

static void bench_finish(bench_t *b)
{
    fv_http_client_free(b->client);
    fv_http_server_close(b->srv, NULL, NULL);
    if (b->have_raw)
        raw_stop(&b->raw);
    uv_close((uv_handle_t *)&b->watchdog, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    if (b->have_raw)
        raw_free(&b->raw);
    fv_router_free(b->router);
    assert_int_equal(uv_loop_close(&b->loop), 0);
    assert_false(b->cb_inside_call);
}

static void on_resp(int rc, const fv_http_response_t *resp, void *data)
{
    bench_t *b = data;
    if (b->in_call)
        b->cb_inside_call = true;
    int i = b->calls++;
    if (i < 8) {
        b->rc[i] = rc;
        if (resp) {
            b->status[i] = resp->status;
            snprintf(b->body[i], sizeof(b->body[i]), "%.*s", (int)resp->body.len,
                     resp->body.ptr);
            const char *h = fv_http_response_header(resp, "x-test");
            if (!h)
                h = fv_http_response_header(resp, "allow");
            snprintf(b->header[i], sizeof(b->header[i]), "%s", h ? h : "");
        }
    }
    if (b->calls >= b->want_calls)
        uv_stop(&b->loop);
}

static void send_req(bench_t *b, const char *method, const char *target, int port,
                     const char *body, uint32_t timeout_ms)
{
    fv_http_client_req_t q = {
        .method = method,
        .host = "127.0.0.1",
        .port = port,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
    };
    b->in_call = true;
    assert_int_equal(fv_http_client_request(b->client, &q, on_resp, b), 0);
    b->in_call = false;
}

static void get_and_post(void **state)
{
    bench_t b;
    bench_init(&b, false);
    b.want_calls = 2;
    send_req(&b, "GET", "/hello", b.port, NULL, 0);
    send_req(&b, "POST", "/echo", b.port, "payload", 0);
    bench_run(&b);
    assert_int_equal(b.calls, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(b.rc[i], 0);
        assert_int_equal(b.status[i], 200);
    }
    /* the two ran in parallel on two connections; their order is not fixed */
    bool first_get = strcmp(b.body[0], "hello") == 0;
    assert_string_equal(b.body[first_get ? 1 : 0], "payload");
    assert_string_equal(b.header[first_get ? 0 : 1], "yes");
    bench_finish(&b);
}

static void keep_alive_reuse(void **state)
{
    bench_t b;
    bench_init(&b, false);
    for (int i = 0; i < 3; i++) {
        b.want_calls = i + 1;
        send_req(&b, "GET", "/hello", b.port, NULL, 0);
        bench_run(&b);
        assert_int_equal(b.rc[i], 0);
    }
    assert_int_equal(b.npeers, 3);
    assert_string_equal(b.peers[0], b.peers[1]);
    assert_string_equal(b.peers[1], b.peers[2]);
    assert_int_equal(fv_http_server_connections(b.srv), 1);
    bench_finish(&b);
}

static void raw_case(const char *reply, bool close_after, const char *method, int want_rc,
                     int want_status, const char *want_body)
{
    bench_t b;
    bench_init(&b, false);
    raw_start(&b.loop, &b.raw, reply, close_after);
    b.have_raw = true;
    b.want_calls = 1;
    send_req(&b, method, "/x", b.raw.port, NULL, 300);
    bench_run(&b);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc[0], want_rc);
    if (want_rc == 0) {
        assert_int_equal(b.status[0], want_status);
        assert_string_equal(b.body[0], want_body);
    }
    bench_finish(&b);
}

static void chunked_response(void **state)
{
    raw_case("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n", false, "GET", 0, 200, "Wikipedia");
}

static void read_until_close(void **state)
{
    raw_case("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", true, "GET", 0, 200,
             "all of it");
}

static void head_has_no_body(void **state)
{
    raw_case("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false, "HEAD", 0, 200, "");
}

static void malformed_response(void **state)
{
    raw_case("HTTP/1.1 abc\r\n\r\n", false, "GET", FV_EPROTO, 0, NULL);
}

static void timeout(void **state)
{
    raw_case(NULL, false, "GET", FV_ETIMEDOUT, 0, NULL);
}

static void too_big(void **state)
{
    bench_t b;
    bench_init(&b, false);
    fv_http_client_free(b.client);
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    o.max_response_bytes = 64;
    assert_int_equal(fv_http_client_new(&b.loop, &o, &b.client), 0);
    raw_start(&b.loop, &b.raw, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false);
    b.have_raw = true;
    b.want_calls = 1;
    send_req(&b, "GET", "/x", b.raw.port, NULL, 1000);
    bench_run(&b);
    assert_int_equal(b.rc[0], FV_ETOOBIG);
    bench_finish(&b);
}

static void connection_refused(void **state)
{
    bench_t b;
    bench_init(&b, false);
    /* a port that was free a moment ago: bound, never listened, closed */
    uv_tcp_t t;
    uv_tcp_init(&b.loop, &t);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    b.want_calls = 1;
    send_req(&b, "GET", "/x", ntohs(got.sin_port), NULL, 2000);
    bench_run(&b);
    assert_int_equal(b.rc[0], FV_ECONNREFUSED);
    bench_finish(&b);
}

static void on_free_timer(uv_timer_t *t)
{
    bench_t *b = t->data;
    b->in_call = true;
    fv_http_client_free(b->client);
    b->in_call = false;
    b->client = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void free_cancels(void **state)
{
    bench_t b;
    bench_init(&b, false);
    raw_start(&b.loop, &b.raw, NULL, false);
    b.have_raw = true;
    b.want_calls = 2;
    send_req(&b, "GET", "/x", b.raw.port, NULL, 5000);
    send_req(&b, "GET", "/y", b.raw.port, NULL, 5000);
    uv_timer_t t;
    uv_timer_init(&b.loop, &t);
    t.data = &b;
    uv_timer_start(&t, on_free_timer, 50, 0);
    bench_run(&b);
    assert_int_equal(b.calls, 2);
    assert_int_equal(b.rc[0], FV_ECANCELED);
    assert_int_equal(b.rc[1], FV_ECANCELED);
    bench_finish(&b);
}

static void retry_dead_pooled(void **state)
{
    bench_t b;
    bench_init(&b, false);
    /* says keep-alive, then closes: the pooled connection is dead when reused */
    raw_start(&b.loop, &b.raw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
    b.have_raw = true;
    b.want_calls = 1;
    send_req(&b, "GET", "/x", b.raw.port, NULL, 2000);
    bench_run(&b);
    assert_int_equal(b.rc[0], 0);
    b.want_calls = 2;
    send_req(&b, "GET", "/x", b.raw.port, NULL, 2000);
    bench_run(&b);
    assert_int_equal(b.rc[1], 0);
    assert_string_equal(b.body[1], "ok");
    bench_finish(&b);
}

static void router_405_and_404(void **state)
{
    bench_t b;
    bench_init(&b, true);
    b.want_calls = 1;
    send_req(&b, "POST", "/hello", b.port, "x", 0);
    bench_run(&b);
    b.want_calls = 2;
    send_req(&b, "GET", "/nothing", b.port, NULL, 0);
    bench_run(&b);
    b.want_calls = 3;
    send_req(&b, "HEAD", "/hello", b.port, NULL, 0);
    bench_run(&b);
    assert_int_equal(b.status[0], 405);
    assert_string_equal(b.header[0], "GET, HEAD, PUT");
    assert_non_null(strstr(b.body[0], "\"code\":\"method_not_allowed\""));
    assert_int_equal(b.status[1], 404);
    assert_non_null(strstr(b.body[1], "\"code\":\"not_found\""));
    assert_int_equal(b.status[2], 200);
    assert_string_equal(b.body[2], "");
    bench_finish(&b);
}

static void bad_arguments(void **state)
{
    bench_t b;
    bench_init(&b, false);
    fv_http_client_req_t q = {.method = "GET", .host = "127.0.0.1", .port = 0, .target = "/"};
    assert_int_equal(fv_http_client_request(b.client, &q, on_resp, &b), FV_EINVAL);
    q.port = 80;
    q.target = "/a b";
    assert_int_equal(fv_http_client_request(b.client, &q, on_resp, &b), FV_EINVAL);
    q.target = "/";
    q.method = "G T";
    assert_int_equal(fv_http_client_request(b.client, &q, on_resp, &b), FV_EINVAL);
    assert_int_equal(b.calls, 0);
    bench_finish(&b);
}

/* Found by fuzz_http_response: llhttp takes "HTTP/1.1 2 OK" with status 2, and the client
 * handed that to the callback as an answer. A status that is not three digits is a protocol
 * error. */
static void test_issue_status_not_three_digits(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 2 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 20 OK\r\nConnection: close\r\n\r\nbody",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fv__http_resp_parser_t *p = fv__http_resp_parser_new(1 << 16, false);
        fv_http_response_t resp;
        int rc = fv__http_resp_parser_feed(p, bad[i], strlen(bad[i]), &resp);
        if (rc == 0)
            rc = fv__http_resp_parser_eof(p, &resp);
        assert_int_equal(rc, FV_EPROTO);
        fv__http_resp_parser_free(p);
    }
    static const char good[] = "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n";
    fv__http_resp_parser_t *p = fv__http_resp_parser_new(1 << 16, false);
    fv_http_response_t resp;
    assert_int_equal(fv__http_resp_parser_feed(p, good, strlen(good), &resp), 1);
    assert_int_equal(resp.status, 204);
    assert_string_equal(fv_http_response_header(&resp, "x-a"), "b");
    fv__http_resp_parser_free(p);
}

/* Requests made in one loop turn share connections up to max_pipeline and leave in one write;
 * each gets its own answer. */
static void pipelined(void **state)
{
    bench_t b;
    bench_init(&b, false);
    fv_http_client_free(b.client);
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    o.max_pipeline = 4;
    assert_int_equal(fv_http_client_new(&b.loop, &o, &b.client), 0);
    /* one connection in the pool first: batches form on connections that are there (new ones
     * take each their request until they are connected) */
    b.want_calls = 1;
    send_req(&b, "GET", "/p/9", b.port, NULL, 0);
    bench_run(&b);
    b.calls = 0;
    b.want_calls = 6;
    char target[6][16];
    for (int i = 0; i < 6; i++) {
        snprintf(target[i], sizeof(target[i]), "/p/%d", i);
        send_req(&b, "GET", target[i], b.port, NULL, 0);
    }
    bench_run(&b);
    assert_int_equal(b.calls, 6);
    /* 0-3 pipelined on the pooled connection (in request order), 4 and 5 on new ones */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(b.rc[i], 0);
        assert_int_equal(b.status[i], 200);
    }
    bool seen[6] = {false};
    for (int i = 0; i < 6; i++) {
        int n = b.body[i][3] - '0';
        assert_true(n >= 0 && n < 6 && !seen[n]);
        seen[n] = true;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(b.body[i][3], '0' + i);
    assert_int_equal(fv_http_server_connections(b.srv), 3);
    bench_finish(&b);
}

typedef struct stream_ctx {
    bench_t *b;
    char got[256];
    size_t got_len;
    int heads;
} stream_ctx_t;

static int on_stream_head(const fv_http_response_t *resp, void *data)
{
    stream_ctx_t *s = data;
    s->heads++;
    assert_int_equal(resp->status, 200);
    return 1;
}

static void on_stream_body(const char *piece, size_t len, void *data)
{
    stream_ctx_t *s = data;
    assert_true(s->got_len + len < sizeof(s->got));
    memcpy(s->got + s->got_len, piece, len);
    s->got_len += len;
}

static void on_stream_done(int rc, const fv_http_response_t *resp, void *data)
{
    stream_ctx_t *s = data;
    on_resp(rc, resp, s->b);
}

/* A request body written piece by piece (chunked, then sized), the answer taken piece by
 * piece: what the server echoes is what was written. */
static void streamed_both_ways(void **state)
{
    for (int sized = 0; sized < 2; sized++) {
        bench_t b;
        bench_init(&b, false);
        stream_ctx_t s = {.b = &b};
        fv_http_call_t *call = NULL;
        fv_http_client_req_t q = {
            .method = "POST",
            .host = "127.0.0.1",
            .port = b.port,
            .target = "/echo",
            .body_stream = true,
            .body_length = sized ? 9 : -1,
            .on_head = on_stream_head,
            .on_body = on_stream_body,
            .call = &call,
        };
        b.want_calls = 1;
        assert_int_equal(fv_http_client_request(b.client, &q, on_stream_done, &s), 0);
        assert_non_null(call);
        assert_int_equal(fv_http_call_write(call, "abc", 3), 0);
        assert_false(fv_http_call_full(call));
        assert_int_equal(fv_http_call_write(call, "defghi", 6), 0);
        assert_int_equal(fv_http_call_end(call), 0);
        assert_int_equal(fv_http_call_write(call, "x", 1), FV_EINVAL);
        bench_run(&b);
        assert_int_equal(b.rc[0], 0);
        assert_int_equal(b.status[0], 200);
        assert_string_equal(b.body[0], "");          /* it came through on_body */
        assert_int_equal(s.heads, 1);
        assert_int_equal(s.got_len, 9);
        assert_memory_equal(s.got, "abcdefghi", 9);
        bench_finish(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_and_post),
        cmocka_unit_test(pipelined),
        cmocka_unit_test(streamed_both_ways),
        cmocka_unit_test(keep_alive_reuse),
        cmocka_unit_test(chunked_response),
        cmocka_unit_test(read_until_close),
        cmocka_unit_test(head_has_no_body),
        cmocka_unit_test(malformed_response),
        cmocka_unit_test(timeout),
        cmocka_unit_test(too_big),
        cmocka_unit_test(connection_refused),
        cmocka_unit_test(free_cancels),
        cmocka_unit_test(retry_dead_pooled),
        cmocka_unit_test(router_405_and_404),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(test_issue_status_not_three_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
