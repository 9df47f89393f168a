/* test_body_stream.c - request bodies read as they arrive (fv_router_add_streaming,
 * fv_http_req_read_body): the handler runs at the head, pieces reach it de-chunked and in
 * order, 100-continue waits for the handler to read, pause holds the client back through TCP
 * (the server buffers no more than its read buffer), answering mid-body ends the connection,
 * a body over the route's limit, too slow or cut off reaches the handler as its abort callback,
 * and a full-duplex echo streams the body back while it comes. Socketless connections for the
 * protocol cases, a loopback socket for back-pressure and timing. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "net/http_internal.h"
#include "net/router.h"
#include "loopback.h"

/* What the handlers saw, reset by each test. */
typedef struct seen {
    fv_http_req_t *req;          /* the request the test may drive (lazy, hold) */
    int heads;                   /* handler calls */
    int pieces;
    int ends;
    int aborts;
    size_t bytes;
    size_t wrong;                /* bytes that differ from the pattern at their offset */
    bool pause_each;             /* pause after every piece (the test resumes) */
    int read_rc;
    char text[256];              /* the first bytes, for the small cases */
} seen_t;

static seen_t sn;

static char pattern_at(size_t i)
{
    return (char)('a' + i % 23);
}

static void on_abort(fv_http_req_t *req, void *data)
{
    (void)req;
    (void)data;
    sn.aborts++;
    sn.req = NULL;
}

static void count_piece(const char *piece, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (sn.bytes + i < sizeof(sn.text) - 1)
            sn.text[sn.bytes + i] = piece[i];
        if (piece[i] != pattern_at(sn.bytes + i))
            sn.wrong++;
    }
    sn.bytes += len;
}

/* /up: counts the body, answers with its size at the end. */
static void up_piece(fv_http_req_t *req, void *data, const char *piece, size_t len, bool end)
{
    (void)data;
    if (len) {
        sn.pieces++;
        count_piece(piece, len);
    }
    if (!end) {
        if (sn.pause_each)
            fv_http_req_pause_body(req);
        return;
    }
    sn.ends++;
    char b[64];
    int n = snprintf(b, sizeof(b), "n=%zu", sn.bytes);
    sn.req = NULL;
    fv_http_reply(req, 200, "text/plain", b, (size_t)n);
}

static void on_up(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    sn.req = req;
    fv_http_req_on_abort(req, on_abort, NULL);
    sn.read_rc = fv_http_req_read_body(req, up_piece, NULL);
    if (sn.req == req)
        assert_int_equal(fv_http_req_read_body(req, up_piece, NULL), FV_EINVAL);
}

/* /lazy: keeps the request and reads nothing until the test says. */
static void on_lazy(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    sn.req = req;
    fv_http_req_on_abort(req, on_abort, NULL);
}

/* /deny: refuses on the head alone. */
static void on_deny(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    fv_http_reply_errorf(req, FV_EUNAUTH, "no token");
}

/* /late: answers after the first piece, before the body ends. */
static void late_piece(fv_http_req_t *req, void *data, const char *piece, size_t len, bool end)
{
    (void)data;
    count_piece(piece, len);
    sn.pieces++;
    if (end)
        sn.ends++;
    fv_http_reply(req, 202, "text/plain", "early", 5);
}

static void on_late(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    assert_int_equal(fv_http_req_read_body(req, late_piece, NULL), 0);
}

/* /echo: streams every piece back as it comes. */
static void echo_piece(fv_http_req_t *req, void *data, const char *piece, size_t len, bool end)
{
    (void)data;
    if (len) {
        sn.pieces++;
        assert_int_equal(fv_http_reply_write(req, piece, len), 0);
    }
    if (end) {
        sn.ends++;
        fv_http_reply_end(req);
    }
}

static void on_echo(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    assert_int_equal(fv_http_reply_start(req, 200, "application/octet-stream"), 0);
    assert_int_equal(fv_http_req_read_body(req, echo_piece, NULL), 0);
}

/* /buf: a buffered route; fv_http_req_read_body gives the whole body at once. */
static void on_buf(fv_http_req_t *req, void *data)
{
    (void)data;
    sn.heads++;
    assert_false(fv_http_req_body_streaming(req));
    sn.read_rc = fv_http_req_read_body(req, up_piece, NULL);
}

static void on_ping(fv_http_req_t *req, void *data)
{
    (void)data;
    fv_http_reply(req, 200, "text/plain", "pong", 4);
}

typedef struct fx {
    uv_loop_t loop;
    fv_http_server_t *srv;
    fv_router_t *router;
    fv_buf_t out;
} fx_t;

static fx_t fx;

static void fx_open(uint32_t body_timeout_ms)
{
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    fx.router = fv_router_new();
    fv_router_t *r = fx.router;
    size_t big = 64u << 20;
    assert_int_equal(fv_router_add_streaming(r, "POST", "/up", on_up, NULL, big), 0);
    assert_int_equal(fv_router_add_streaming(r, "POST", "/lazy", on_lazy, NULL, big), 0);
    assert_int_equal(fv_router_add_streaming(r, "POST", "/deny", on_deny, NULL, big), 0);
    assert_int_equal(fv_router_add_streaming(r, "POST", "/late", on_late, NULL, big), 0);
    assert_int_equal(fv_router_add_streaming(r, "POST", "/echo", on_echo, NULL, big), 0);
    assert_int_equal(fv_router_add_streaming(r, "POST", "/small", on_up, NULL, 100), 0);
    assert_int_equal(fv_router_add_limited(r, "POST", "/buf", on_buf, NULL, 1000), 0);
    assert_int_equal(fv_router_add(r, "GET", "/ping", on_ping, NULL), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    if (body_timeout_ms)
        lim.body_timeout_ms = body_timeout_ms;
    assert_int_equal(fv_http_server_new(&fx.loop, &lim, fv_router_dispatch, r, &fx.srv), 0);
    fv_http_server_set_body_policy(fx.srv, fv_router_body_policy, r);
    fv_buf_init(&fx.out, 64 << 20);
}

static void fx_close(void)
{
    fv_http_server_close(fx.srv, NULL, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    fv_router_free(fx.router);
    fv_buf_dispose(&fx.out);
    assert_int_equal(fv__http_buffered_bodies(), 0);
}

static int setup(void **state)
{
    (void)state;
    fx_open(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_close();
    return 0;
}

static void feed(fv_sock_t *c, const char *s)
{
    fv__http_conn_feed(c, s, strlen(s));
}

static bool out_has(const char *needle)
{
    fv_slice_t o = fv_buf_slice(&fx.out);
    return o.len && memmem(o.ptr, o.len, needle, strlen(needle)) != NULL;
}

static void fill_pattern(char *b, size_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        b[i] = pattern_at(off + i);
}

/* ---- socketless cases ---- */

/* The handler runs at the head; a Content-Length body arrives in the pieces it was fed in. */
static void handler_runs_at_the_head(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n");
    assert_int_equal(sn.heads, 1);
    assert_int_equal(sn.read_rc, 0);
    assert_int_equal(sn.pieces, 0);
    assert_true(fv_http_req_body_streaming(sn.req));
    assert_int_equal(fv_http_req_body(sn.req).len, 0);
    char body[30];
    fill_pattern(body, 0, 30);
    fv__http_conn_feed(c, body, 10);
    assert_int_equal(sn.pieces, 1);
    assert_int_equal(sn.bytes, 10);
    fv__http_conn_feed(c, body + 10, 20);
    assert_int_equal(sn.ends, 1);
    assert_int_equal(sn.bytes, 30);
    assert_int_equal(sn.wrong, 0);
    assert_true(out_has("HTTP/1.1 200 OK"));
    assert_true(out_has("n=30"));
    fv__http_conn_free_detached(c);
}

/* Chunked bodies arrive de-chunked, fed a byte at a time; the pipelined request after it is
 * answered after it, on the same connection. */
static void chunked_pieces_then_pipelined(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    const char *req = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n"
                      "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t i = 0; req[i]; i++)
        fv__http_conn_feed(c, req + i, 1);
    assert_int_equal(sn.ends, 1);
    assert_int_equal(sn.bytes, 8);
    assert_string_equal(sn.text, "abcdefgh");
    fv_slice_t o = fv_buf_slice(&fx.out);
    const char *first = memmem(o.ptr, o.len, "n=8", 3);
    const char *second = memmem(o.ptr, o.len, "pong", 4);
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    fv__http_conn_free_detached(c);
}

/* The body waits, unread, until the handler asks; then it flows. */
static void body_waits_for_the_reader(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    char body[100];
    fill_pattern(body, 0, sizeof(body));
    feed(c, "POST /lazy HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    fv__http_conn_feed(c, body, sizeof(body));
    assert_int_equal(sn.heads, 1);
    assert_int_equal(sn.bytes, 0);
    fv_http_req_t *req = sn.req;
    assert_non_null(req);
    assert_int_equal(fv_http_req_read_body(req, NULL, NULL), FV_EINVAL);
    assert_int_equal(fv_http_req_read_body(req, up_piece, NULL), 0);
    assert_int_equal(sn.ends, 1);
    assert_int_equal(sn.bytes, 100);
    assert_int_equal(sn.wrong, 0);
    assert_true(out_has("n=100"));
    fv__http_conn_free_detached(c);
}

/* Paused, nothing more is delivered even as bytes arrive; resumed, the rest comes. */
static void pause_and_resume(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    sn.pause_each = true;
    char body[600];
    fill_pattern(body, 0, sizeof(body));
    feed(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n\r\n");
    fv__http_conn_feed(c, body, 200);
    assert_int_equal(sn.pieces, 1);
    fv__http_conn_feed(c, body + 200, 400);
    assert_int_equal(sn.pieces, 1);              /* paused: buffered by the socket, unread */
    assert_int_equal(sn.bytes, 200);
    fv_http_req_t *req = sn.req;
    sn.pause_each = false;
    fv_http_req_resume_body(req);
    assert_int_equal(sn.ends, 1);
    assert_int_equal(sn.bytes, 600);
    assert_int_equal(sn.wrong, 0);
    assert_true(out_has("n=600"));
    fv__http_conn_free_detached(c);
}

/* 100 Continue goes out when the handler starts reading, never when it refuses at the head. */
static void continue_only_when_read(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
            "\r\n");
    assert_int_equal(sn.heads, 1);
    assert_false(out_has("100 Continue"));
    assert_true(out_has("HTTP/1.1 401"));
    assert_true(out_has("Connection: close"));   /* its body was never read */
    fv__http_conn_free_detached(c);

    fv_buf_reset(&fx.out);
    c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /lazy HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
            "\r\n");
    assert_false(out_has("100 Continue"));
    assert_int_equal(fv_http_req_read_body(sn.req, up_piece, NULL), 0);
    assert_true(out_has("HTTP/1.1 100 Continue\r\n\r\n"));
    feed(c, "abcde");
    assert_true(out_has("n=5"));
    fv__http_conn_free_detached(c);
}

/* An answer before the end: the rest is not read and the connection ends after the answer. */
static void answer_mid_body_ends_connection(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(sn.pieces, 1);
    assert_true(out_has("HTTP/1.1 202"));
    assert_true(out_has("Connection: close"));
    feed(c, "defghijGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(sn.pieces, 1);
    assert_false(out_has("pong"));
    fv__http_conn_free_detached(c);
}

/* A chunk past the route's limit: 413 from the server, the abort callback for the handler. */
static void over_the_limit_aborts(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    char chunk[70];
    fill_pattern(chunk, 0, sizeof(chunk));
    feed(c, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n46\r\n");
    fv__http_conn_feed(c, chunk, sizeof(chunk));
    feed(c, "\r\n46\r\n");
    assert_int_equal(sn.heads, 1);
    assert_int_equal(sn.bytes, 70);
    assert_int_equal(sn.aborts, 1);
    assert_int_equal(sn.ends, 0);
    assert_true(out_has("HTTP/1.1 413"));
    fv__http_conn_free_detached(c);

    /* a Content-Length over it never reaches the handler */
    fv_buf_reset(&fx.out);
    memset(&sn, 0, sizeof(sn));
    c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n");
    assert_int_equal(sn.heads, 0);
    assert_true(out_has("HTTP/1.1 413"));
    fv__http_conn_free_detached(c);
}

/* A malformed chunk inside a streamed body: 400, and the handler's abort callback. */
static void malformed_chunk_aborts(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
            "zz\r\n");
    assert_int_equal(sn.bytes, 3);
    assert_int_equal(sn.aborts, 1);
    assert_true(out_has("HTTP/1.1 400"));
    fv__http_conn_free_detached(c);
}

/* Full duplex: the answer streams while the body comes, and the connection is reused. */
static void echo_full_duplex(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n");
    assert_true(out_has("HTTP/1.1 200"));
    assert_true(out_has("4\r\nwxyz\r\n"));
    feed(c, "2\r\n!?\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(sn.ends, 1);
    assert_true(out_has("2\r\n!?\r\n0\r\n\r\n"));
    assert_true(out_has("pong"));
    assert_false(out_has("Connection: close"));
    fv__http_conn_free_detached(c);
}

/* A buffered route: the same reader call gets the whole body at once, once. */
static void buffered_route_reads_whole(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /buf HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nabcdefg");
    assert_int_equal(sn.read_rc, 0);
    assert_int_equal(sn.pieces, 1);
    assert_int_equal(sn.ends, 1);
    assert_string_equal(sn.text, "abcdefg");
    assert_true(out_has("n=7"));
    fv__http_conn_free_detached(c);
}

/* A streaming route hit without a body is an ordinary request: read_body ends at once. */
static void streaming_route_without_body(void **state)
{
    (void)state;
    fv_sock_t *c = fv__http_conn_new_detached(fx.srv, &fx.out);
    feed(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(sn.ends, 1);
    assert_true(out_has("n=0"));
    fv__http_conn_free_detached(c);
}

/* ---- over a loopback socket ---- */

static int listen_port(void)
{
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(fx.srv, "127.0.0.1", 0, &err), 0);
    return fv_http_server_port(fx.srv);
}

/* Runs the loop a little and reads what the client got into fx.out; true on EOF. */
static bool spin(int fd)
{
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    char b[65536];
    for (;;) {
        ssize_t n = read(fd, b, sizeof(b));
        if (n > 0) {
            assert_int_equal(fv_buf_append(&fx.out, b, (size_t)n), 0);
            continue;
        }
        if (n == 0)
            return true;
        return false;
    }
}

static void on_resume_timer(uv_timer_t *t)
{
    if (sn.req)
        fv_http_req_resume_body(sn.req);
    (void)t;
}

/* A handler that holds the body paused holds the client back: the client's writes block while
 * the server keeps at most its read buffer. Resumed a piece per loop turn, 32 MiB arrive
 * exactly, and nothing was buffered as a whole body. */
static void pause_holds_the_client_back(void **state)
{
    (void)state;
    const size_t total = 32u << 20;
    int fd = fv_test_connect(listen_port(), 0, true);
    char head[128];
    int hl = snprintf(head, sizeof(head),
                      "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", total);
    assert_int_equal(write(fd, head, (size_t)hl), hl);
    sn.pause_each = true;
    static char chunk[65536];
    size_t sent = 0;
    int stalls = 0;
    /* write until the client is stuck for a while with the server's loop running */
    for (int i = 0; i < 200000 && stalls < 200 && sent < total; i++) {
        size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
        fill_pattern(chunk, sent, n);
        ssize_t w = write(fd, chunk, n);
        if (w > 0) {
            sent += (size_t)w;
            stalls = 0;
        } else {
            assert_true(errno == EAGAIN);
            stalls++;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 1);
        }
        spin(fd);
    }
    assert_int_equal(sn.heads, 1);
    assert_true(sent < total);                  /* TCP pushed back */
    assert_true(sn.bytes <= FV_SOCK_RBUF_MAX);  /* one piece, then nothing while paused */
    assert_true(fv_http_server_read_buffers(fx.srv) <= 1);
    assert_int_equal(fv__http_buffered_bodies(), 0);

    /* resume from a timer every turn: a slow but steady reader */
    static uv_timer_t resume;
    uv_timer_init(&fx.loop, &resume);
    uv_timer_start(&resume, on_resume_timer, 0, 1);
    for (int i = 0; i < 2000000 && !out_has("n="); i++) {
        if (sent < total) {
            size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
            fill_pattern(chunk, sent, n);
            ssize_t w = write(fd, chunk, n);
            if (w > 0)
                sent += (size_t)w;
        }
        if (spin(fd))
            break;
        if (sent == total) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            poll(&p, 1, 1);
        }
    }
    uv_close((uv_handle_t *)&resume, NULL);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(sn.ends, 1);
    assert_int_equal(sn.bytes, total);
    assert_int_equal(sn.wrong, 0);
    char want[64];
    snprintf(want, sizeof(want), "n=%zu", total);
    assert_true(out_has(want));
    close(fd);
}

/* A client that stops sending mid-body while the handler reads: 408, and the abort callback. */
static void stalled_body_times_out(void **state)
{
    (void)state;
    fx_close();
    fx_open(200);
    int fd = fv_test_connect(listen_port(), 0, true);
    const char *req = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    for (int i = 0; i < 5000 && !sn.aborts; i++) {
        spin(fd);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    assert_int_equal(sn.heads, 1);
    assert_int_equal(sn.aborts, 1);
    for (int i = 0; i < 1000 && !spin(fd); i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    assert_true(out_has("HTTP/1.1 408"));
    close(fd);
}

/* A client that leaves mid-body: the handler's abort callback. */
static void client_gone_mid_body(void **state)
{
    (void)state;
    int fd = fv_test_connect(listen_port(), 0, true);
    const char *req = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    for (int i = 0; i < 5000 && sn.bytes < 3; i++) {
        spin(fd);
        poll(NULL, 0, 1);
    }
    assert_int_equal(sn.bytes, 3);
    close(fd);
    for (int i = 0; i < 5000 && !sn.aborts; i++) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
    assert_int_equal(sn.aborts, 1);
    assert_int_equal(sn.ends, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(handler_runs_at_the_head, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_pieces_then_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(body_waits_for_the_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(pause_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(continue_only_when_read, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_mid_body_ends_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(over_the_limit_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_chunk_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(echo_full_duplex, setup, teardown),
        cmocka_unit_test_setup_teardown(buffered_route_reads_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(streaming_route_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(pause_holds_the_client_back, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_body_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(client_gone_mid_body, setup, teardown),
    };
    return cmocka_run_group_tests_name("net/body_stream", tests, NULL, NULL);
}
