/* test_http_stream.c - streaming responses over a real loopback socket: 8 MiB in 64 KiB pieces
 * to a slow reader, paced by fv_http_reply_full/on_writable, arrive whole and de-chunk exactly
 * while the server's queued output stays near its ceiling; the connection is then reused;
 * HTTP/1.0 gets a body that ends with the connection; a client that leaves mid-stream reaches
 * the handler as its abort callback. */
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

#include "net/http_server.h"
#include "loopback.h"

#define PIECE (64 * 1024)
#define TOTAL (8 * 1024 * 1024)

static uv_loop_t loop;
static fv_http_server_t *server;

typedef struct stream {
    fv_http_req_t *req;
    size_t sent;
    int aborted;
    int refused_after_abort;
    int waits;
} stream_t;

static stream_t st;
static char piece[PIECE];

static void pump_out(fv_http_req_t *req, void *data);

static void on_abort(fv_http_req_t *req, void *data)
{
    st.aborted++;
    st.req = NULL;
}

static void pump_out(fv_http_req_t *req, void *data)
{
    while (st.sent < TOTAL) {
        if (fv_http_reply_full(req)) {
            st.waits++;
            assert_int_equal(fv_http_reply_on_writable(req, pump_out, NULL), 0);
            return;
        }
        for (size_t i = 0; i < PIECE; i++)
            piece[i] = (char)('a' + (st.sent + i) % 26);
        assert_int_equal(fv_http_reply_write(req, piece, PIECE), 0);
        st.sent += PIECE;
    }
    fv_http_reply_end(req);
    st.req = NULL;
}

static void handler(fv_http_req_t *req, void *data)
{
    memset(&st, 0, sizeof(st));
    st.req = req;
    fv_http_req_on_abort(req, on_abort, NULL);
    assert_int_equal(fv_http_reply_on_writable(req, pump_out, NULL), FV_EINVAL); /* not yet */
    assert_int_equal(fv_http_reply_start(req, 200, "text/plain"), 0);
    assert_int_equal(fv_http_reply_start(req, 200, "text/plain"), FV_EINVAL);
    pump_out(req, NULL);
}

/* Reads what is there (running the server's loop meanwhile) into b; returns bytes read, 0 on
 * EOF, -1 when nothing came within 5 s. */
static ssize_t read_some(int fd, char *b, size_t cap, size_t at_most)
{
    for (int i = 0; i < 5000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = read(fd, b, cap < at_most ? cap : at_most);
        if (n >= 0)
            return n;
        if (errno != EAGAIN)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    return -1;
}

/* De-chunks the response body from raw (the bytes after the head). */
static size_t dechunk(const char *raw, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = strtoul(raw + i, NULL, 16);
        const char *nl = memchr(raw + i, '\n', len - i);
        assert_non_null(nl);
        i = (size_t)(nl - raw) + 1;
        if (n == 0)
            break;
        memcpy(out + o, raw + i, n);
        o += n;
        i += n + 2;
    }
    return o;
}

static void setup_server(fv_http_limits_t *lim)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fv_http_server_new(&loop, lim, handler, NULL, &server), 0);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(server, "127.0.0.1", 0, &err), 0);
}

static void teardown_server(void)
{
    fv_http_server_close(server, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void slow_reader_gets_it_all_in_bounded_memory(void **state)
{
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_output_bytes = 256 * 1024;
    setup_server(&lim);
    int fd = fv_test_connect(fv_http_server_port(server), 16 * 1024, true);
    static const char req[] = "GET /s HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));

    size_t cap = TOTAL + 1024 * 1024;
    char *raw = malloc(cap);
    size_t got = 0;
    const char *end = NULL;
    while (!end) {
        ssize_t n = read_some(fd, raw + got, cap - got, 4096);   /* a slow reader */
        assert_true(n > 0);
        got += (size_t)n;
        if (got >= 5 && memcmp(raw + got - 5, "0\r\n\r\n", 5) == 0)
            end = raw + got;
    }
    const char *body = strstr(raw, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(raw, "Transfer-Encoding: chunked"));
    body += 4;
    char *plain = malloc(TOTAL);
    assert_int_equal(dechunk(body, (size_t)(end - body), plain), TOTAL);
    for (size_t i = 0; i < TOTAL; i += 4099)
        assert_int_equal(plain[i], (char)('a' + i % 26));
    assert_true(st.waits > 0);                                  /* it really was paced */
    assert_true(fv_http_server_output_bytes_peak(server) <= lim.max_output_bytes + PIECE + 64);

    /* the connection is reused */
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    got = 0;
    end = NULL;
    while (!end) {
        ssize_t n = read_some(fd, raw + got, cap - got, 1 << 20);
        assert_true(n > 0);
        got += (size_t)n;
        if (got >= 5 && memcmp(raw + got - 5, "0\r\n\r\n", 5) == 0)
            end = raw + got;
    }
    assert_memory_equal(raw, "HTTP/1.1 200 ", 13);
    free(plain);
    free(raw);
    close(fd);
    teardown_server();
}

static void http10_body_ends_with_the_connection(void **state)
{
    setup_server(NULL);
    int fd = fv_test_connect(fv_http_server_port(server), 0, true);
    static const char req[] = "GET /s HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    size_t cap = TOTAL + 4096, got = 0;
    char *raw = malloc(cap);
    for (;;) {
        ssize_t n = read_some(fd, raw + got, cap - got, 1 << 20);
        assert_true(n >= 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    const char *body = strstr(raw, "\r\n\r\n");
    assert_non_null(body);
    assert_null(strstr(raw, "chunked"));
    assert_int_equal(got - (size_t)(body + 4 - raw), TOTAL);
    free(raw);
    close(fd);
    teardown_server();
}

static void client_leaves_mid_stream(void **state)
{
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_output_bytes = 128 * 1024;
    setup_server(&lim);
    int fd = fv_test_connect(fv_http_server_port(server), 8 * 1024, true);
    static const char req[] = "GET /s HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    char buf[4096];
    assert_true(read_some(fd, buf, sizeof(buf), sizeof(buf)) > 0);
    assert_non_null(st.req);
    close(fd);                                                  /* gone mid-stream */
    for (int i = 0; i < 5000 && !st.aborted; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(st.aborted, 1);
    assert_true(st.sent < TOTAL);
    teardown_server();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_reader_gets_it_all_in_bounded_memory),
        cmocka_unit_test(http10_body_ends_with_the_connection),
        cmocka_unit_test(client_leaves_mid_stream),
    };
    return cmocka_run_group_tests_name("net/http_stream", tests, NULL, NULL);
}
