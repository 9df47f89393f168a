/* test_http_server.c - the HTTP server on a real loop, driven by blocking sockets from a
 * thread: keep-alive, pipelining, chunked bodies, limits (431, 413, 408), malformed input,
 * async replies and aborts, HEAD, byte-at-a-time input, 100-continue, connection ceilings. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/alloc.h"
#include "net/http_server.h"
#include "unit/net/http_test_util.h"

typedef struct fx fx_t;
typedef void (*client_fn)(fx_t *f);

struct fx {
    uv_loop_t loop;
    fv_http_server_t *srv;
    uv_async_t done;
    uv_timer_t watchdog;
    pthread_t th;
    int port;
    client_fn client;
    atomic_int got_request;
    atomic_int aborts;
    atomic_int server_closing;
    int aborts_while_open;
    bool closed;
    bool done_sent;
    bool timed_out;
    int observed;
    size_t out_peak;
};

static void on_server_closed(fv_http_server_t *s, void *data)
{
    fx_t *f = data;
    f->closed = true;
}

static void close_server(fx_t *f)
{
    if (f->srv) {
        atomic_store(&f->server_closing, 1);
        f->out_peak = fv_http_server_output_bytes_peak(f->srv);
        fv_http_server_close(f->srv, on_server_closed, f);
        f->srv = NULL;
    }
}

static void on_done(uv_async_t *a)
{
    fx_t *f = a->data;
    close_server(f);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    fx_t *f = t->data;
    f->timed_out = true;
    close_server(f);
}

static void *client_main(void *arg)
{
    fx_t *f = arg;
    f->client(f);
    if (!f->done_sent)
        uv_async_send(&f->done);
    return NULL;
}

/* ---- the handler ---- */

#define HUGE_LEN (16 * 1024 * 1024)

typedef struct later {
    uv_timer_t timer;
    fv_http_req_t *req;
    const char *body;               /* NULL: "later" */
    int replies;                    /* 0: one */
} later_t;

static void on_later_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;
    const char *body = l->body ? l->body : "later";
    fv_http_reply(l->req, 200, "text/plain", body, strlen(body));
    /* a buggy handler answering again must not answer anyone else's request */
    for (int i = 1; i < l->replies; i++)
        fv_http_reply(l->req, 200, "text/plain", "again", 5);
    t->data = l;
    uv_close((uv_handle_t *)t, on_later_closed);
}

static void on_abort(fv_http_req_t *req, void *data)
{
    fx_t *f = data;
    atomic_fetch_add(&f->aborts, 1);
    if (!atomic_load(&f->server_closing))
        f->aborts_while_open++;
}

static void handler(fv_http_req_t *req, void *data)
{
    fx_t *f = data;
    fv_slice_t p = fv_http_req_path(req);
    atomic_fetch_add(&f->got_request, 1);
    if (fv_slice_eq_cstr(p, "/hello")) {
        fv_http_resp_header(req, "X-Test", "yes");
        fv_http_reply(req, 200, "text/plain", "hello", 5);
    } else if (fv_slice_eq_cstr(p, "/echo")) {
        fv_slice_t b = fv_http_req_body(req);
        fv_http_reply(req, 200, "application/octet-stream", b.ptr, b.len);
    } else if (fv_slice_eq_cstr(p, "/async")) {
        later_t *l = fv_calloc(1, sizeof(*l));
        l->req = req;
        uv_timer_init(fv_http_req_loop(req), &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, on_later, 20, 0);
    } else if (fv_slice_eq_cstr(p, "/metrics")) {
        static char metrics[2000];
        if (!metrics[0])
            memset(metrics, 'm', sizeof(metrics));
        fv_http_reply(req, 200, "text/plain", metrics, sizeof(metrics));
    } else if (fv_slice_eq_cstr(p, "/twice")) {
        fv_http_reply(req, 200, "text/plain", "one", 3);
        fv_http_reply(req, 200, "text/plain", "two", 3);
        fv_http_reply_errorf(req, FV_EINVAL, "three");
    } else if (fv_slice_eq_cstr(p, "/twice-later") || fv_slice_eq_cstr(p, "/hold") ||
               fv_slice_eq_cstr(p, "/late-no-abort")) {
        later_t *l = fv_calloc(1, sizeof(*l));
        l->req = req;
        bool twice = fv_slice_eq_cstr(p, "/twice-later");
        l->replies = twice ? 3 : 1;
        l->body = twice ? "first" : "held";
        uv_timer_init(fv_http_req_loop(req), &l->timer);
        l->timer.data = l;
        uv_timer_start(&l->timer, on_later, twice ? 20 : 150, 0);
    } else if (fv_slice_eq_cstr(p, "/huge")) {
        char *big = fv_malloc(HUGE_LEN);
        memset(big, 'h', HUGE_LEN);
        fv_http_reply_owned(req, 200, "text/plain", big, HUGE_LEN);
    } else if (fv_slice_eq_cstr(p, "/bufs")) {
        char n[32];
        int len = snprintf(n, sizeof(n), "bufs=%zu", fv_http_server_read_buffers(f->srv));
        fv_http_reply(req, 200, "text/plain", n, (size_t)len);
    } else if (fv_slice_eq_cstr(p, "/drain")) {
        fv_http_server_stop_accepting(f->srv);
        fv_http_reply(req, 200, "text/plain", "bye", 3);
    } else if (fv_slice_eq_cstr(p, "/never")) {
        fv_http_req_on_abort(req, on_abort, f);
    } else if (fv_slice_eq_cstr(p, "/query")) {
        const char *v = fv_http_req_query_param(req, "name");
        fv_http_reply(req, 200, "text/plain", v ? v : "-", v ? strlen(v) : 1);
    } else if (p.len > 3 && memcmp(p.ptr, "/p/", 3) == 0) {
        fv_http_reply(req, 200, "text/plain", p.ptr, p.len);
    } else {
        fv_http_reply_errorf(req, FV_ENOENT, "nothing at %.*s", (int)p.len, p.ptr);
    }
}

static void observer(const fv_http_req_t *req, int status, uint64_t ns, void *data)
{
    fx_t *f = data;
    f->observed++;
}

static void run(fx_t *f, const fv_http_limits_t *lim, client_fn fn)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(fv_http_server_new(&f->loop, lim, handler, f, &f->srv), 0);
    fv_http_server_set_observer(f->srv, observer, f);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(f->srv, "127.0.0.1", 0, &err), 0);
    f->port = fv_http_server_port(f->srv);
    assert_true(f->port > 0);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 20000, 0);
    f->client = fn;
    pthread_create(&f->th, NULL, client_main, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    assert_false(f->timed_out);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- scenarios (client side, on the thread) ---- */

static char rbuf[1 << 17];

static int client_fail;
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            client_fail = 1;                                                            \
        }                                                                               \
    } while (0)

static void c_simple_get(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(fd >= 0);
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(n > 0);
    CHECK(strncmp(rbuf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(rbuf, "\r\nContent-Length: 5\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nServer: finalverse\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nDate: ") != NULL);
    CHECK(strstr(rbuf, "\r\nX-Test: yes\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nConnection: keep-alive\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nContent-Type: text/plain\r\n") != NULL);
    CHECK(n >= 5 && memcmp(rbuf + n - 5, "hello", 5) == 0);
    close(fd);
}

static void simple_get(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_simple_get);
    assert_int_equal(client_fail, 0);
    assert_int_equal(f.observed, 1);
}

static void c_keep_alive(fx_t *f)
{
    int fd = tc_connect(f->port);
    for (int i = 0; i < 2; i++) {
        CHECK(tc_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
        CHECK(n > 0 && strncmp(rbuf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        CHECK(tc_count_responses(rbuf, n) == 1);
    }
    /* HTTP/1.0 with keep-alive asked for stays open too */
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(n > 0 && strstr(rbuf, "Connection: keep-alive") != NULL);
    /* plain HTTP/1.0 gets an answer and a close */
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.0\r\n\r\n") == 0);
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strstr(rbuf, "Connection: close") != NULL);
    close(fd);
}

static void keep_alive(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_keep_alive);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 4);
}

static void c_pipelined(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /async HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /p/3 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 3);
    CHECK(tc_count_responses(rbuf, n) == 3);
    char *a = strstr(rbuf, "/p/1"), *b = strstr(rbuf, "later"), *c = strstr(rbuf, "/p/3");
    CHECK(a && b && c && a < b && b < c);
    close(fd);
}

static void pipelined(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_pipelined);
    assert_int_equal(client_fail, 0);
}

static void c_chunked_echo(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(strstr(rbuf, "Content-Length: 11\r\n") != NULL);
    CHECK(n >= 11 && memcmp(rbuf + n - 11, "hello world", 11) == 0);
    /* and a Content-Length body on the same connection */
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc") == 0);
    n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(n >= 3 && memcmp(rbuf + n - 3, "abc", 3) == 0);
    close(fd);
}

static void chunked_echo(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_chunked_echo);
    assert_int_equal(client_fail, 0);
}

static void c_header_too_big(fx_t *f)
{
    int fd = tc_connect(f->port);
    static char req[20000 + 100];
    strcpy(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    size_t l = strlen(req);
    memset(req + l, 'a', 20000);
    strcpy(req + l + 20000, "\r\n\r\n");
    CHECK(tc_send_str(fd, req) == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 431 ", 13) == 0);
    CHECK(strstr(rbuf, "\"code\":\"headers_too_large\"") != NULL);
    CHECK(strstr(rbuf, "Connection: close") != NULL);
    close(fd);
}

/* Trailers after a chunked body arrive through the header callbacks again; they used to be
 * appended to the head buffer, moving it under the request's header slices. */
static void c_issue_trailers(fx_t *f)
{
    int fd = tc_connect(f->port);
    static char req[6000];
    int n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: ");
    memset(req + n, 't', 4000);
    strcpy(req + n + 4000, "\r\n\r\n");
    CHECK(tc_send_str(fd, req) == 0);
    size_t m = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(m >= 3 && memcmp(rbuf + m - 3, "abc", 3) == 0);
    close(fd);
}

static void test_issue_trailers_move_head(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_issue_trailers);
    assert_int_equal(client_fail, 0);
}

static void c_slow_body(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 408 ", 13) == 0);
    close(fd);
}

static void slow_body(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.body_timeout_ms = 150;
    client_fail = 0;
    run(&f, &lim, c_slow_body);
    assert_int_equal(client_fail, 0);
}

static void c_drain(fx_t *f)
{
    int idle = tc_connect(f->port);
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(idle, rbuf, sizeof(rbuf), 1) > 0);
    CHECK(tc_send_str(fd, "GET /drain HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strstr(rbuf, "Connection: close") != NULL);
    CHECK(n >= 3 && memcmp(rbuf + n - 3, "bye", 3) == 0);
    /* the idle keep-alive connection was closed, and nobody listens any more */
    CHECK(tc_read_to_eof(idle, rbuf, sizeof(rbuf), &n) == 1 && n == 0);
    CHECK(tc_connect(f->port) < 0);
    close(fd);
    close(idle);
}

static void stop_accepting(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_drain);
    assert_int_equal(client_fail, 0);
}

static void header_too_big(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_header_too_big);
    assert_int_equal(client_fail, 0);
}

static void c_body_too_big_cl(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n") == 0);
    static char body[2000];
    memset(body, 'b', sizeof(body));
    (void)tc_send(fd, body, sizeof(body));
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 413 ", 13) == 0);
    CHECK(strstr(rbuf, "\"code\":\"too_large\"") != NULL);
    close(fd);
}

static void c_body_too_big_chunked(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
          == 0);
    static char chunk[700];
    memset(chunk, 'c', sizeof(chunk));
    for (int i = 0; i < 2; i++) {
        (void)tc_send_str(fd, "2bc\r\n");
        (void)tc_send(fd, chunk, sizeof(chunk));
        (void)tc_send_str(fd, "\r\n");
    }
    (void)tc_send_str(fd, "0\r\n\r\n");
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 413 ", 13) == 0);
    close(fd);
}

static void body_too_big(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_body_bytes = 1024;
    client_fail = 0;
    run(&f, &lim, c_body_too_big_cl);
    assert_int_equal(client_fail, 0);
    run(&f, &lim, c_body_too_big_chunked);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 0);
}

static void c_malformed(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.1\r\nBad Header Line\r\n\r\n") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 400 ", 13) == 0);
    CHECK(strstr(rbuf, "{\"error\":{\"code\":\"invalid_argument\",\"message\":"
                       "\"malformed request: ") != NULL);
    close(fd);
}

static void malformed(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_malformed);
    assert_int_equal(client_fail, 0);
}

static void c_slow_headers(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 408 ", 13) == 0);
    close(fd);
    /* a connection that never sends anything is closed without a word */
    fd = tc_connect(f->port);
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(n == 0);
    close(fd);
}

static void slow_headers(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.header_timeout_ms = 150;
    client_fail = 0;
    run(&f, &lim, c_slow_headers);
    assert_int_equal(client_fail, 0);
}

static void c_async(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(n >= 5 && memcmp(rbuf + n - 5, "later", 5) == 0);
    close(fd);
}

static void async_reply(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_async);
    assert_int_equal(client_fail, 0);
}

static void c_abort(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    for (int i = 0; i < 500 && atomic_load(&f->got_request) == 0; i++)
        usleep(10000);
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&f->aborts) == 0; i++)
        usleep(10000);
}

static void abort_on_disconnect(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_abort);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.aborts), 1);
    assert_int_equal(f.aborts_while_open, 1);
}

static void c_abort_on_close(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    for (int i = 0; i < 500 && atomic_load(&f->got_request) == 0; i++)
        usleep(10000);
    /* the server is closed with the request pending; the connection ends */
    f->done_sent = true;
    uv_async_send(&f->done);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    close(fd);
}

static void abort_on_server_close(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_abort_on_close);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.aborts), 1);
}

static void c_head(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(strncmp(rbuf, "HTTP/1.1 200 OK", 15) == 0);
    CHECK(strstr(rbuf, "Content-Length: 5\r\n") != NULL);
    CHECK(n >= 4 && memcmp(rbuf + n - 4, "\r\n\r\n", 4) == 0);
    close(fd);
}

static void head_request(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_head);
    assert_int_equal(client_fail, 0);
}

static void c_one_byte(fx_t *f)
{
    int fd = tc_connect(f->port);
    const char *req = "POST /echo?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"
                      "GET /query?name=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n";
    for (const char *p = req; *p; p++) {
        CHECK(tc_send(fd, p, 1) == 0);
        if ((p - req) % 7 == 0)
            usleep(500);
    }
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 2);
    CHECK(tc_count_responses(rbuf, n) == 2);
    CHECK(strstr(rbuf, "abcd") != NULL);
    CHECK(n >= 5 && memcmp(rbuf + n - 5, "a b c", 5) == 0);
    close(fd);
}

static void one_byte_at_a_time(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_one_byte);
    assert_int_equal(client_fail, 0);
}

static void c_expect(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                          "Expect: 100-continue\r\n\r\n") == 0);
    ssize_t n = recv(fd, rbuf, 25, MSG_WAITALL);
    CHECK(n == 25 && memcmp(rbuf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    CHECK(tc_send_str(fd, "ok") == 0);
    size_t m = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(m >= 2 && memcmp(rbuf + m - 2, "ok", 2) == 0);
    close(fd);
}

static void expect_continue(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_expect);
    assert_int_equal(client_fail, 0);
}

static void c_max_conn(fx_t *f)
{
    int a = tc_connect(f->port);
    CHECK(tc_send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(a, rbuf, sizeof(rbuf), 1) > 0);
    int b = tc_connect(f->port);
    size_t n;
    if (b >= 0) {
        (void)tc_send_str(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(tc_read_to_eof(b, rbuf, sizeof(rbuf), &n) == 1);
        CHECK(n == 0);
        close(b);
    }
    close(a);
}

static void max_connections(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_connections = 1;
    client_fail = 0;
    run(&f, &lim, c_max_conn);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 1);
}

/* Two connections from 127.0.0.1 are served, a third is closed at once; when one goes, a new
 * one is served again. */
static void c_per_client(fx_t *f)
{
    int a = tc_connect(f->port), b = tc_connect(f->port);
    CHECK(tc_send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(a, rbuf, sizeof(rbuf), 1) > 0);
    CHECK(tc_send_str(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(b, rbuf, sizeof(rbuf), 1) > 0);
    int c = tc_connect(f->port);
    size_t n;
    if (c >= 0) {
        (void)tc_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(tc_read_to_eof(c, rbuf, sizeof(rbuf), &n) == 1);
        CHECK(n == 0);
        close(c);
    }
    close(a);
    usleep(100000);          /* the server sees a go */
    c = tc_connect(f->port);
    CHECK(tc_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(c, rbuf, sizeof(rbuf), 1) > 0);
    CHECK(strncmp(rbuf, "HTTP/1.1 200 ", 13) == 0);
    close(c);
    close(b);
}

static void max_connections_per_client(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_connections_per_client = 2;
    client_fail = 0;
    run(&f, &lim, c_per_client);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 3);
}

/* Idle keep-alive connections hold no read buffer: with three open, only the one whose request
 * is being handled holds one. */
static void c_idle_buffers(fx_t *f)
{
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tc_connect(f->port);
        CHECK(tc_send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        CHECK(tc_read_responses(fds[i], rbuf, sizeof(rbuf), 1) > 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(tc_send_str(fds[i], "GET /bufs HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        size_t n = tc_read_responses(fds[i], rbuf, sizeof(rbuf), 1);
        CHECK(n > 6 && memcmp(rbuf + n - 6, "bufs=1", 6) == 0);
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

static void idle_buffers(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_idle_buffers);
    assert_int_equal(client_fail, 0);
}

/* The last response of a connection that the peer never reads does not keep the socket
 * forever: it is closed after idle_timeout_ms, and the client sees the answer cut short. */
static void c_ending_timeout(fx_t *f)
{
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int small = 8192;
    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct timeval tv = {5, 0};
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(a, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(tc_send_str(a, "GET /huge HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
    usleep(1000000);
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(a, rbuf, sizeof(rbuf), 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(got > 0 && got < HUGE_LEN);
    close(a);
}

static void ending_timeout(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.idle_timeout_ms = 200;
    client_fail = 0;
    run(&f, &lim, c_ending_timeout);
    assert_int_equal(client_fail, 0);
}

/* A client pipelines PIPE_COUNT requests and reads nothing for a while: the server must stop
 * parsing its requests once max_output_bytes are queued, still serve another client, and
 * answer every request once the first client reads. */
#define PIPE_COUNT 10000
#define PIPE_CEILING (16 * 1024)

static void c_backpressure(fx_t *f)
{
    static const char one[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t one_len = sizeof(one) - 1;
    int b = tc_connect(f->port);
    CHECK(tc_send_str(b, one) == 0);
    size_t resp_len = tc_read_responses(b, rbuf, sizeof(rbuf), 1);
    CHECK(resp_len > 2000);

    /* a small receive buffer, or loopback autotuning takes every answer into the kernel */
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int small = 8192;
    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(a, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
    size_t total = one_len * PIPE_COUNT, sent = 0;
    char *all = malloc(total);
    for (size_t i = 0; i < PIPE_COUNT; i++)
        memcpy(all + i * one_len, one, one_len);
    /* send without reading until the server stops taking requests (the socket is full) */
    for (int idle = 0; sent < total && idle < 20;) {
        ssize_t n = send(a, all + sent, total - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            idle = 0;
        } else {
            idle++;
            usleep(10000);
        }
    }
    /* wait until the server stops taking requests (the kernel's buffers take a few thousand
     * answers, not all), however slow it is (sanitizers, a loaded machine) */
    int last = -1;
    for (int i = 0; i < 200; i++) {
        int now = atomic_load(&f->got_request);
        if (now == last)
            break;
        last = now;
        usleep(150000);
    }
    CHECK(last < PIPE_COUNT);

    /* another client is still served meanwhile, and the first is held back */
    CHECK(tc_send_str(b, one) == 0);
    CHECK(tc_read_responses(b, rbuf, sizeof(rbuf), 1) == resp_len);
    CHECK(atomic_load(&f->got_request) < PIPE_COUNT);
    close(b);

    /* now read: every request gets its answer */
    size_t want = resp_len * PIPE_COUNT, got = 0;
    for (int idle = 0; got < want && idle < 500;) {
        struct pollfd pfd = {.fd = a, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        if (poll(&pfd, 1, 10) <= 0) {
            idle++;
            continue;
        }
        idle = 0;
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(a, all + sent, total - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (pfd.revents & POLLIN) {
            ssize_t n = recv(a, rbuf, sizeof(rbuf), 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    CHECK(sent == total);
    CHECK(got == want);
    free(all);
    close(a);
}

static void backpressure(void **state)
{
    fx_t f;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_output_bytes = PIPE_CEILING;
    client_fail = 0;
    run(&f, &lim, c_backpressure);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), PIPE_COUNT + 2);
    /* at most one response over the ceiling was ever queued */
    assert_true(f.out_peak > 0);
    assert_true(f.out_peak <= PIPE_CEILING + 2200);
}

/* A second reply, at once or later, is a no-op: it never answers the next pipelined request
 * (which the old single embedded request object let it do). */
static void c_reply_twice(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /twice HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /twice-later HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /p/4 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 4);
    CHECK(tc_count_responses(rbuf, n) == 4);
    const char *one = strstr(rbuf, "\r\n\r\none");
    const char *first = strstr(rbuf, "\r\n\r\nfirst");
    const char *held = strstr(rbuf, "\r\n\r\nheld");
    const char *p4 = strstr(rbuf, "\r\n\r\n/p/4");
    CHECK(one && first && held && p4 && one < first && first < held && held < p4);
    CHECK(strstr(rbuf, "two") == NULL && strstr(rbuf, "again") == NULL);
    CHECK(strstr(rbuf, "three") == NULL);
    close(fd);
}

static void reply_twice(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_reply_twice);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 4);
}

/* A handler that never asked for the abort callback replies after its client left: a no-op
 * on a request that stayed valid, never a write to a freed connection. */
static void c_reply_after_close(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /late-no-abort HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    for (int i = 0; i < 500 && atomic_load(&f->got_request) == 0; i++)
        usleep(10000);
    close(fd);
    usleep(300000);     /* the reply comes 150 ms after the request */
    fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tc_read_responses(fd, rbuf, sizeof(rbuf), 1) > 0);
    close(fd);
}

static void reply_after_close(void **state)
{
    fx_t f;
    client_fail = 0;
    run(&f, NULL, c_reply_after_close);
    assert_int_equal(client_fail, 0);
    assert_int_equal(atomic_load(&f.got_request), 2);
    assert_int_equal(f.observed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_get),
        cmocka_unit_test(keep_alive),
        cmocka_unit_test(pipelined),
        cmocka_unit_test(chunked_echo),
        cmocka_unit_test(test_issue_trailers_move_head),
        cmocka_unit_test(slow_body),
        cmocka_unit_test(stop_accepting),
        cmocka_unit_test(header_too_big),
        cmocka_unit_test(body_too_big),
        cmocka_unit_test(malformed),
        cmocka_unit_test(slow_headers),
        cmocka_unit_test(async_reply),
        cmocka_unit_test(abort_on_disconnect),
        cmocka_unit_test(abort_on_server_close),
        cmocka_unit_test(head_request),
        cmocka_unit_test(one_byte_at_a_time),
        cmocka_unit_test(expect_continue),
        cmocka_unit_test(max_connections),
        cmocka_unit_test(max_connections_per_client),
        cmocka_unit_test(backpressure),
        cmocka_unit_test(idle_buffers),
        cmocka_unit_test(ending_timeout),
        cmocka_unit_test(reply_twice),
        cmocka_unit_test(reply_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
