/* test_sock.c - sockets under swappable drivers, on a real loop with blocking clients on a
 * thread: an HTTP/1 upgrade hands the socket (and the bytes sent after the request head) to a
 * test echo driver, at once or from a later callback; an upgrade request nobody accepts is a
 * plain request; the HTTP/2 preface goes to the h2 driver when one is set, else the connection
 * is closed; drain and close reach upgraded connections. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
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
    uv_timer_t later;
    fv_http_req_t *later_req;
    pthread_t th;
    int port;
    client_fn client;
    bool with_h2;
    bool closed;
    bool timed_out;
    /* loop thread only; read after the run */
    int states;
    int drains;
    int closes;
    int frees;
    int h2_states;
    size_t upgraded_peak;
};

static int client_fail;
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            client_fail = 1;                                                            \
        }                                                                               \
    } while (0)

/* ---- the echo driver ---- */

typedef struct echo {
    fx_t *f;
} echo_t;

static size_t echo_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    echo_t *e = state;
    size_t up = fv_http_server_upgraded(e->f->srv);
    if (up > e->f->upgraded_peak)
        e->f->upgraded_peak = up;
    if (len >= 5 && memcmp(data, "drain", 5) == 0) {
        fv_http_server_stop_accepting(e->f->srv);
        return 5;
    }
    fv_sock_write(s, data, len);
    return len;
}

static void echo_drain(fv_sock_t *s, void *state)
{
    echo_t *e = state;
    e->f->drains++;
    fv_sock_write(s, "bye", 3);
    fv_sock_end(s);
}

static void echo_close(fv_sock_t *s, void *state)
{
    echo_t *e = state;
    e->f->closes++;
}

static void echo_free(fv_sock_t *s, void *state)
{
    echo_t *e = state;
    e->f->frees++;
    fv_free(e);
}

static const fv_sock_driver_t echo_driver = {
    .name = "echo",
    .on_data = echo_data,
    .on_drain = echo_drain,
    .on_close = echo_close,
    .on_free = echo_free,
};

static echo_t *echo_new(fx_t *f)
{
    echo_t *e = fv_calloc(1, sizeof(*e));
    e->f = f;
    f->states++;
    return e;
}

static int h2_factory(fv_sock_t *s, void *data, const fv_sock_driver_t **driver, void **state)
{
    fx_t *f = data;
    f->h2_states++;
    *driver = &echo_driver;
    *state = echo_new(f);
    return 0;
}

/* ---- the HTTP handler ---- */

static void upgrade_or_fail(fv_http_req_t *req, fx_t *f)
{
    fv_http_resp_header(req, "X-Test", "yes");
    echo_t *e = echo_new(f);
    if (fv_http_upgrade(req, "Upgrade: echo\r\n", &echo_driver, e) < 0) {
        f->states--;
        fv_free(e);
        fv_http_reply(req, 400, "text/plain", "no", 2);
    }
}

static void on_later(uv_timer_t *t)
{
    fx_t *f = t->data;
    upgrade_or_fail(f->later_req, f);
    f->later_req = NULL;
}

static void handler(fv_http_req_t *req, void *data)
{
    fx_t *f = data;
    fv_slice_t p = fv_http_req_path(req);
    if (fv_slice_eq_cstr(p, "/echo") && fv_http_req_is_upgrade(req)) {
        upgrade_or_fail(req, f);
    } else if (fv_slice_eq_cstr(p, "/echo-later") && fv_http_req_is_upgrade(req)) {
        f->later_req = req;
        uv_timer_start(&f->later, on_later, 30, 0);
    } else {
        fv_http_reply(req, 200, "text/plain", "plain", 5);
    }
}

/* ---- the fixture ---- */

static void on_server_closed(fv_http_server_t *s, void *data)
{
    fx_t *f = data;
    f->closed = true;
}

static void close_all(fx_t *f)
{
    if (f->srv) {
        fv_http_server_close(f->srv, on_server_closed, f);
        f->srv = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&f->done)) {
        uv_close((uv_handle_t *)&f->done, NULL);
        uv_close((uv_handle_t *)&f->watchdog, NULL);
        uv_close((uv_handle_t *)&f->later, NULL);
    }
}

static void on_done(uv_async_t *a)
{
    close_all(a->data);
}

static void on_watchdog(uv_timer_t *t)
{
    fx_t *f = t->data;
    f->timed_out = true;
    close_all(f);
}

static void *client_main(void *arg)
{
    fx_t *f = arg;
    f->client(f);
    uv_async_send(&f->done);
    return NULL;
}

static void run(fx_t *f, bool with_h2, client_fn fn)
{
    memset(f, 0, sizeof(*f));
    client_fail = 0;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(fv_http_server_new(&f->loop, NULL, handler, f, &f->srv), 0);
    if (with_h2)
        fv_http_server_set_h2(f->srv, h2_factory, f);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(f->srv, "127.0.0.1", 0, &err), 0);
    f->port = fv_http_server_port(f->srv);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 20000, 0);
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    f->client = fn;
    pthread_create(&f->th, NULL, client_main, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    assert_false(f->timed_out);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(client_fail, 0);
    /* every driver state was handed back and freed exactly once */
    assert_int_equal(f->frees, f->states);
    assert_int_equal(f->closes, f->states);
}

static char rbuf[1 << 16];

/* Reads exactly len bytes (or fails on timeout / EOF). */
static bool read_n(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* Reads a response head (through the blank line), byte by byte so nothing after it is
 * taken. */
static size_t read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        if (recv(fd, buf + len, 1, 0) != 1)
            break;
        len++;
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf[len] = '\0';
    return len;
}

static const char up_req[] = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                             "Upgrade: echo\r\n\r\n";

/* The upgrade request and the first bytes for the new protocol in one write. */
static void c_upgrade_same_write(fx_t *f)
{
    int fd = tc_connect(f->port);
    char req[256];
    snprintf(req, sizeof(req), "%sfirst-bytes", up_req);
    CHECK(tc_send_str(fd, req) == 0);
    read_head(fd, rbuf, sizeof(rbuf));
    CHECK(strncmp(rbuf, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(rbuf, "\r\nConnection: Upgrade\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nUpgrade: echo\r\n") != NULL);
    CHECK(strstr(rbuf, "\r\nX-Test: yes\r\n") != NULL);
    CHECK(strstr(rbuf, "Content-Length") == NULL);
    CHECK(read_n(fd, rbuf, 11) && memcmp(rbuf, "first-bytes", 11) == 0);
    CHECK(tc_send_str(fd, "GET / HTTP/1.1\r\n\r\n") == 0);   /* not HTTP any more */
    CHECK(read_n(fd, rbuf, 18) && memcmp(rbuf, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
    close(fd);
}

static void upgrade_same_write(void **state)
{
    fx_t f;
    run(&f, false, c_upgrade_same_write);
    assert_int_equal(f.states, 1);
    assert_int_equal(f.upgraded_peak, 1);
}

/* The handler accepts the upgrade from a timer; bytes sent meanwhile wait for the driver. */
static void c_upgrade_later(fx_t *f)
{
    int fd = tc_connect(f->port);
    char req[256];
    snprintf(req, sizeof(req), "GET /echo-later HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
             "Upgrade: echo\r\n\r\nearly");
    CHECK(tc_send_str(fd, req) == 0);
    read_head(fd, rbuf, sizeof(rbuf));
    CHECK(strncmp(rbuf, "HTTP/1.1 101 ", 13) == 0);
    CHECK(read_n(fd, rbuf, 5) && memcmp(rbuf, "early", 5) == 0);
    close(fd);
}

static void upgrade_later(void **state)
{
    fx_t f;
    run(&f, false, c_upgrade_later);
    assert_int_equal(f.states, 1);
}

/* Nobody accepts: a plain answer, and the connection stays HTTP/1. */
static void c_upgrade_refused(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          "Upgrade: echo\r\n\r\nGET /again HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 2);
    CHECK(tc_count_responses(rbuf, n) == 2);
    CHECK(strncmp(rbuf, "HTTP/1.1 200 ", 13) == 0);
    close(fd);
}

static void upgrade_refused(void **state)
{
    fx_t f;
    run(&f, false, c_upgrade_refused);
    assert_int_equal(f.states, 0);
}

/* Graceful stop reaches the upgraded connection's driver (on_drain says bye and ends). */
static void c_drain_upgraded(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, up_req) == 0);
    read_head(fd, rbuf, sizeof(rbuf));
    CHECK(strncmp(rbuf, "HTTP/1.1 101 ", 13) == 0);
    CHECK(tc_send_str(fd, "drain") == 0);
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(n == 3 && memcmp(rbuf, "bye", 3) == 0);
    close(fd);
}

static void drain_upgraded(void **state)
{
    fx_t f;
    run(&f, false, c_drain_upgraded);
    assert_int_equal(f.drains, 1);
}

/* Server close closes an upgraded connection the client keeps open. */
static void c_close_upgraded(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, up_req) == 0);
    read_head(fd, rbuf, sizeof(rbuf));
    CHECK(strncmp(rbuf, "HTTP/1.1 101 ", 13) == 0);
    CHECK(tc_send_str(fd, "ping") == 0);
    CHECK(read_n(fd, rbuf, 4));
    /* returning closes the server while fd is open; close(fd) comes after the run */
    f->port = fd;
}

static void close_upgraded(void **state)
{
    fx_t f;
    run(&f, false, c_close_upgraded);
    close(f.port);
    assert_int_equal(f.drains, 0);
    assert_int_equal(f.states, 1);
}

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Without an h2 driver a preface is closed, even when it trickles in byte by byte. */
static void c_preface_no_h2(fx_t *f)
{
    int fd = tc_connect(f->port);
    for (size_t i = 0; i < sizeof(preface) - 1; i++) {
        CHECK(tc_send(fd, preface + i, 1) == 0);
        usleep(1000);
    }
    size_t n;
    CHECK(tc_read_to_eof(fd, rbuf, sizeof(rbuf), &n) == 1);
    CHECK(n == 0);       /* closed, not answered as HTTP/1 */
    close(fd);
}

static void preface_no_h2(void **state)
{
    fx_t f;
    run(&f, false, c_preface_no_h2);
    assert_int_equal(f.states, 0);
}

/* With one, the h2 driver gets every byte, the preface included. */
static void c_preface_h2(fx_t *f)
{
    int fd = tc_connect(f->port);
    CHECK(tc_send(fd, preface, 10) == 0);
    usleep(20000);
    CHECK(tc_send(fd, preface + 10, sizeof(preface) - 1 - 10) == 0);
    CHECK(tc_send_str(fd, "frames") == 0);
    CHECK(read_n(fd, rbuf, sizeof(preface) - 1 + 6));
    CHECK(memcmp(rbuf, preface, sizeof(preface) - 1) == 0);
    CHECK(memcmp(rbuf + sizeof(preface) - 1, "frames", 6) == 0);
    close(fd);
    /* a plain HTTP/1 client on the same port is unaffected */
    fd = tc_connect(f->port);
    CHECK(tc_send_str(fd, "PUT / HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    size_t n = tc_read_responses(fd, rbuf, sizeof(rbuf), 1);
    CHECK(n > 0 && strncmp(rbuf, "HTTP/1.1 200 ", 13) == 0);
    close(fd);
}

static void preface_h2(void **state)
{
    fx_t f;
    run(&f, true, c_preface_h2);
    assert_int_equal(f.h2_states, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upgrade_same_write),
        cmocka_unit_test(upgrade_later),
        cmocka_unit_test(upgrade_refused),
        cmocka_unit_test(drain_upgraded),
        cmocka_unit_test(close_upgraded),
        cmocka_unit_test(preface_no_h2),
        cmocka_unit_test(preface_h2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
