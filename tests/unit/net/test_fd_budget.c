/* test_fd_budget.c - the process-wide connection budget: connections within it are served;
 * past it a client is answered 503 (JSON, Retry-After) and closed at once instead of hanging or
 * being reset; when a connection goes, the budget serves new clients again. Real loopback
 * sockets against a real server on the test's loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loopback.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/fd_budget.h"
#include "net/http_server.h"

static uv_loop_t loop;
static fv_http_server_t *server;

static void handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 200, "text/plain", "ok", 2);
}

/* Runs the server's loop until fd has something to read (or EOF), within 5 s. */
static void pump_until_readable(int fd)
{
    for (int i = 0; i < 5000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) == 1)
            return;
    }
    fail_msg("no answer within 5 s");
}

/* Sends a GET and returns the status line's code (0 when the connection just closed). */
static int get(int fd)
{
    static const char req[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        return 0;
    pump_until_readable(fd);
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    int code = 0;
    sscanf(buf, "HTTP/1.1 %d", &code);
    return code;
}

static void past_the_budget_503_then_served_again(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fv_http_server_new(&loop, NULL, handler, NULL, &server), 0);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(server, "127.0.0.1", 0, &err), 0);
    int port = fv_http_server_port(server);
    fv__fd_budget_set_limit(3);

    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = fv_test_connect(port, 0, false);
        assert_int_equal(get(c[i]), 200);
    }
    assert_int_equal(fv__fd_budget_used(), 3);

    /* the fourth, which sends its request at once: a 503 with our JSON error (not a reset for
     * the unread request), then the close */
    int x = fv_test_connect(port, 0, false);
    static const char early[] = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(write(x, early, sizeof(early) - 1), (ssize_t)(sizeof(early) - 1));
    pump_until_readable(x);
    char buf[512];
    ssize_t n = read(x, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 503 "));
    assert_non_null(strstr(buf, "Retry-After: 1"));
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4,
                        "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; "
                        "try again\"}}");
    pump_until_readable(x);
    assert_int_equal(read(x, buf, sizeof(buf)), 0);          /* closed */
    close(x);

    /* one goes: a new client is served again */
    close(c[0]);
    for (int i = 0; i < 5000 && fv__fd_budget_used() > 2; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(fv__fd_budget_used(), 2);
    int y = fv_test_connect(port, 0, false);
    assert_int_equal(get(y), 200);
    close(y);
    close(c[1]);
    close(c[2]);

    fv_http_server_close(server, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(fv__fd_budget_used(), 0);
    fv__fd_budget_set_limit(0);
}

static void limit_from_the_descriptor_table(void **state)
{
    fv__fd_budget_set_limit(0);
    size_t lim = fv__fd_budget_limit();
    assert_true(lim >= 1);
    /* the reserve is at least 32 below the soft limit */
    FILE *p = popen("sh -c 'ulimit -n'", "r");
    assert_non_null(p);
    long soft = 0;
    assert_int_equal(fscanf(p, "%ld", &soft), 1);
    pclose(p);
    if (soft > 64)
        assert_true(lim <= (size_t)soft - 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(past_the_budget_503_then_served_again),
        cmocka_unit_test(limit_from_the_descriptor_table),
    };
    return cmocka_run_group_tests_name("net/fd_budget", tests, NULL, NULL);
}
