/* test_ws.c - the WebSocket driver over loopback, case groups in the spirit of the Autobahn
 * testsuite: handshake, framing, fragmentation with control frames between fragments, UTF-8,
 * limits, the close handshake, keep-alive, back-pressure from a client that never reads, and
 * shared frames sent to many connections. The client (tests/ws_client.h) is written from the
 * RFC, not from our code. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "loopback.h"
#include "net/http_server.h"
#include "net/ws.h"
#include "ws_client.h"

static uv_loop_t loop;
static fv_http_server_t *server;
static fv_ws_limits_t limits;
static int port;

/* What the server side saw. */
static struct {
    int opened;
    int closed;
    unsigned close_code;
    char close_reason[128];
    fv_ws_t *last;
} sv;

static void on_message(fv_ws_t *ws, void *data, bool text, const uint8_t *msg, size_t len)
{
    (void)data;
    if (text && len == 5 && memcmp(msg, "close", 5) == 0) {
        fv_ws_close(ws, FV_WS_CLOSE_TRY_LATER, "as you asked");
        return;
    }
    assert_int_equal(fv_ws_send(ws, text, msg, len), 0);    /* echo */
}

static void on_close(fv_ws_t *ws, void *data, unsigned code, const char *reason)
{
    (void)data;
    sv.closed++;
    sv.close_code = code;
    snprintf(sv.close_reason, sizeof(sv.close_reason), "%s", reason);
    if (sv.last == ws)
        sv.last = NULL;
    /* nothing may be sent once closed */
    assert_int_equal(fv_ws_send(ws, true, "x", 1), FV_ECANCELED);
}

static const fv_ws_handler_t handler = {
    .on_message = on_message,
    .on_close = on_close,
};

static void on_request(fv_http_req_t *req, void *data)
{
    (void)data;
    fv_error_t err;
    fv_ws_t *ws;
    if (fv_ws_accept(req, &limits, &handler, NULL, &ws, &err) == 0) {
        sv.opened++;
        sv.last = ws;
    }
}

static int setup(void **state)
{
    (void)state;
    memset(&sv, 0, sizeof(sv));
    fv_ws_limits_default(&limits);
    limits.max_message_bytes = 256 * 1024;
    limits.max_frame_bytes = 128 * 1024;
    assert_int_equal(uv_loop_init(&loop), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    assert_int_equal(fv_http_server_new(&loop, &lim, on_request, NULL, &server), 0);
    fv_error_t err;
    assert_int_equal(fv_http_server_listen(server, "127.0.0.1", 0, &err), 0);
    port = fv_http_server_port(server);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fv_http_server_close(server, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(fv_ws_open_count(), 0);
    return 0;
}

static wsc_t cl, cl2, cl3;

static void expect_echo(wsc_t *c, uint8_t opcode, const void *msg, size_t len)
{
    wsc_frame_t f;
    assert_true(wsc_read(c, &f, 3000));
    assert_int_equal(f.opcode, opcode);
    assert_true(f.fin);
    assert_int_equal(f.len, len);
    assert_memory_equal(f.data, msg, len);
    free(f.data);
}

/* Expects the server to fail the connection with code, and to close the TCP connection. */
static void expect_failed_with(wsc_t *c, int code)
{
    assert_int_equal(wsc_read_close(c, 3000), code);
    assert_true(wsc_sees_eof(c, 3000));
    wsc_close_fd(c);
    for (int i = 0; i < 1000 && sv.closed == 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(sv.closed, 1);
    assert_int_equal(sv.close_code, code);
}

/* ---- handshake ---- */

static void handshake_ok_and_refusals(void **state)
{
    (void)state;
    wsc_connect(&cl, &loop, port, "/ws");
    assert_int_equal(sv.opened, 1);
    wsc_close_fd(&cl);

    char head[2048];
    wsc_open(&cl, &loop, port);
    assert_int_equal(wsc_handshake_raw(&cl,
                                       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                       "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                       "dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       "Sec-WebSocket-Version: 8\r\n\r\n",
                                       head, sizeof(head)),
                     426);
    assert_non_null(strstr(head, "Sec-WebSocket-Version: 13"));
    wsc_close_fd(&cl);

    const char *bad[] = {
        /* no key */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* a key that is not 16 bytes */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n",
        /* another protocol */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        /* no upgrade at all */
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        /* not a GET */
        "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Content-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wsc_open(&cl, &loop, port);
        assert_int_equal(wsc_handshake_raw(&cl, bad[i], head, sizeof(head)), 400);
        wsc_close_fd(&cl);
    }
    assert_int_equal(sv.opened, 1);
}

/* A frame sent in the same packet as the handshake reaches the driver. */
static void frame_right_after_handshake(void **state)
{
    (void)state;
    wsc_open(&cl, &loop, port);
    char req[1024];
    size_t n = (size_t)snprintf(req, sizeof(req),
                                "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    n += wsc_build((uint8_t *)req + n, 0x81, true, "early", 5);
    wsc_write(&cl, req, n);
    char head[2048];
    assert_int_equal(wsc_handshake_raw(&cl, "", head, sizeof(head)), 101);
    expect_echo(&cl, 0x1, "early", 5);
    wsc_close_fd(&cl);
}

/* ---- framing ---- */

static void echo_sizes(void **state)
{
    (void)state;
    wsc_connect(&cl, &loop, port, "/");
    static uint8_t big[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31);
    const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, sizeof(big)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        wsc_send(&cl, 0x82, big, sizes[i]);
        expect_echo(&cl, 0x2, big, sizes[i]);
    }
    wsc_send_text(&cl, "Hello-\xc2\xb5@\xc3\x9f");
    expect_echo(&cl, 0x1, "Hello-\xc2\xb5@\xc3\x9f", 11);
    wsc_close_fd(&cl);
}

static void fragments_with_control_between(void **state)
{
    (void)state;
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x01, "frag", 4);         /* text, not final */
    wsc_send(&cl, 0x89, "p1", 2);           /* ping between fragments */
    wsc_send(&cl, 0x00, "ment", 4);
    wsc_send(&cl, 0x8a, "", 0);             /* an unsolicited pong is fine */
    wsc_send(&cl, 0x80, "ed", 2);           /* final continuation */
    expect_echo(&cl, 0xa, "p1", 2);         /* the pong comes first */
    expect_echo(&cl, 0x1, "fragmented", 10);
    /* a UTF-8 character split across fragments is fine */
    wsc_send(&cl, 0x01, "\xce", 1);
    wsc_send(&cl, 0x80, "\xba", 1);
    expect_echo(&cl, 0x1, "\xce\xba", 2);
    wsc_close_fd(&cl);
}

typedef struct bad_case {
    const char *name;
    uint8_t first;
    bool masked;
    const char *data;
    size_t len;
    int code;
} bad_case_t;

static void protocol_violations(void **state)
{
    (void)state;
    static char big_ctl[126];
    memset(big_ctl, 'x', sizeof(big_ctl));
    const bad_case_t cases[] = {
        {"unmasked", 0x81, false, "hi", 2, 1002},
        {"rsv1", 0xc1, true, "hi", 2, 1002},
        {"rsv3", 0x91, true, "hi", 2, 1002},
        {"opcode 3", 0x83, true, "hi", 2, 1002},
        {"opcode 11", 0x8b, true, "", 0, 1002},
        {"ping over 125", 0x89, true, big_ctl, 126, 1002},
        {"fragmented ping", 0x09, true, "x", 1, 1002},
        {"continuation first", 0x80, true, "x", 1, 1002},
        {"invalid utf-8", 0x81, true, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
         14, 1007},
        {"close 1 byte", 0x88, true, "\x03", 1, 1002},
        {"close code 1005", 0x88, true, "\x03\xed", 2, 1002},
        {"close code 999", 0x88, true, "\x03\xe7", 2, 1002},
        {"close reason bad utf-8", 0x88, true, "\x03\xe8\xc0\x80", 4, 1007},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&sv, 0, sizeof(sv));
        wsc_connect(&cl, &loop, port, "/");
        uint8_t b[300];
        size_t n = wsc_build(b, cases[i].first, cases[i].masked, cases[i].data, cases[i].len);
        wsc_write(&cl, b, n);
        print_message("case: %s\n", cases[i].name);
        expect_failed_with(&cl, cases[i].code);
    }
}

static void fragment_sequence_violations(void **state)
{
    (void)state;
    /* a new message while one is in progress */
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x01, "a", 1);
    wsc_send(&cl, 0x81, "b", 1);
    expect_failed_with(&cl, 1002);

    /* invalid UTF-8 in the first fragment fails before the message ends */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x01, "\xce\xba\xed\xa0", 4);
    expect_failed_with(&cl, 1007);

    /* a text message that ends inside a character */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x01, "ok", 2);
    wsc_send(&cl, 0x80, "\xce", 1);
    expect_failed_with(&cl, 1007);
}

static void limits_refuse_big(void **state)
{
    (void)state;
    /* one frame over max_frame_bytes: refused from its head, before its payload */
    wsc_connect(&cl, &loop, port, "/");
    uint8_t h[14] = {0x82, 0xff, 0, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4};   /* 64 MiB */
    wsc_write(&cl, h, sizeof(h));
    expect_failed_with(&cl, 1009);

    /* fragments that together pass max_message_bytes */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    static uint8_t piece[100 * 1024];
    wsc_send(&cl, 0x02, piece, sizeof(piece));
    wsc_send(&cl, 0x00, piece, sizeof(piece));
    wsc_send(&cl, 0x80, piece, sizeof(piece));
    expect_failed_with(&cl, 1009);

    /* a 64-bit length with its top bit set */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    uint8_t t[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    wsc_write(&cl, t, sizeof(t));
    expect_failed_with(&cl, 1002);
}

/* ---- closing ---- */

static void close_handshakes(void **state)
{
    (void)state;
    /* the client closes: its code comes back, the handler hears it */
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x88, "\x03\xe8" "bye", 5);
    assert_int_equal(wsc_read_close(&cl, 3000), 1000);
    assert_true(wsc_sees_eof(&cl, 3000));
    wsc_close_fd(&cl);
    assert_int_equal(sv.close_code, 1000);
    assert_string_equal(sv.close_reason, "bye");

    /* an empty close is answered with an empty one */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    wsc_send(&cl, 0x88, "", 0);
    assert_int_equal(wsc_read_close(&cl, 3000), 1005);
    wsc_close_fd(&cl);

    /* the server closes: code and reason reach the client */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    wsc_send_text(&cl, "close");
    wsc_frame_t f;
    assert_true(wsc_read(&cl, &f, 3000));
    assert_int_equal(f.opcode, 0x8);
    assert_int_equal(f.data[0] << 8 | f.data[1], 1013);
    assert_string_equal((char *)f.data + 2, "as you asked");
    free(f.data);
    wsc_send(&cl, 0x88, "\x03\xf5", 2);     /* the client's answer is read and dropped */
    assert_true(wsc_sees_eof(&cl, 3000));
    wsc_close_fd(&cl);
    assert_int_equal(sv.close_code, 1013);

    /* the client vanishes: the handler hears 1006 */
    memset(&sv, 0, sizeof(sv));
    wsc_connect(&cl, &loop, port, "/");
    wsc_close_fd(&cl);
    for (int i = 0; i < 3000 && !sv.closed; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 1);
    }
    assert_int_equal(sv.close_code, 1006);
}

/* ---- keep-alive ---- */

static void keepalive_pings_then_drops(void **state)
{
    (void)state;
    limits.ping_interval_ms = 50;
    limits.pong_timeout_ms = 100;
    wsc_connect(&cl, &loop, port, "/");
    wsc_frame_t f;
    assert_true(wsc_read(&cl, &f, 3000));
    assert_int_equal(f.opcode, 0x9);
    free(f.data);
    wsc_send(&cl, 0x8a, "", 0);             /* alive: another ping later */
    assert_true(wsc_read(&cl, &f, 3000));
    assert_int_equal(f.opcode, 0x9);
    free(f.data);
    /* silent now: the server gives up */
    assert_true(wsc_sees_eof(&cl, 3000));
    wsc_close_fd(&cl);
    assert_int_equal(sv.close_code, 1006);
}

/* ---- back-pressure ---- */

/* A client that floods pings and never reads: the server stops reading it once its answers
 * fill the ceiling, so what it queues stays bounded; another client is served meanwhile. */
static void ping_flood_is_bounded(void **state)
{
    (void)state;
    wsc_connect(&cl, &loop, port, "/");
    static uint8_t pings[1 << 20];
    uint8_t one[160];
    static char payload[125];
    memset(payload, 'p', sizeof(payload));
    size_t n1 = wsc_build(one, 0x89, true, payload, sizeof(payload));
    size_t total = 0;
    while (total + n1 <= sizeof(pings)) {
        memcpy(pings + total, one, n1);
        total += n1;
    }
    for (int round = 0; round < 16; round++) {
        size_t off = 0;
        for (int i = 0; i < 200 && off < total; i++) {
            ssize_t w = write(cl.fd, pings + off, total - off);
            if (w > 0)
                off += (size_t)w;
            uv_run(&loop, UV_RUN_NOWAIT);
        }
    }
    wsc_connect(&cl2, &loop, port, "/");
    wsc_send_text(&cl2, "still here");
    expect_echo(&cl2, 0x1, "still here", 10);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    assert_true(fv_http_server_output_bytes_peak(server) < lim.max_output_bytes + 64 * 1024);
    wsc_close_fd(&cl);
    wsc_close_fd(&cl2);
}

/* ---- shared frames ---- */

static void shared_body_to_many(void **state)
{
    (void)state;
    wsc_t *cs[3] = {&cl, &cl2, &cl3};
    fv_ws_t *ws[3];
    for (int i = 0; i < 3; i++) {
        wsc_connect(cs[i], &loop, port, "/");
        ws[i] = sv.last;
        assert_non_null(ws[i]);
    }
    const char *body = "\"event\":\"song.performed\",\"data\":{}}";
    fv_shared_t *sh = fv_shared_new(body, strlen(body));
    assert_non_null(sh);
    for (int i = 0; i < 3; i++) {
        char prefix[32];
        int pl = snprintf(prefix, sizeof(prefix), "{\"seq\":%d,", i + 1);
        assert_int_equal(fv_ws_send_shared(ws[i], prefix, (size_t)pl, sh), 0);
    }
    fv_shared_unref(sh);         /* the writes hold what they need */
    for (int i = 0; i < 3; i++) {
        char want[128];
        int wl = snprintf(want, sizeof(want), "{\"seq\":%d,%s", i + 1, body);
        expect_echo(cs[i], 0x1, want, (size_t)wl);
        wsc_close_fd(cs[i]);
    }
}

/* At shutdown every WebSocket gets 1001. */
static void drain_sends_going_away(void **state)
{
    (void)state;
    wsc_connect(&cl, &loop, port, "/");
    fv_http_server_stop_accepting(server);
    assert_int_equal(wsc_read_close(&cl, 3000), 1001);
    wsc_close_fd(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(handshake_ok_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(frame_right_after_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(echo_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(fragments_with_control_between, setup, teardown),
        cmocka_unit_test_setup_teardown(protocol_violations, setup, teardown),
        cmocka_unit_test_setup_teardown(fragment_sequence_violations, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_refuse_big, setup, teardown),
        cmocka_unit_test_setup_teardown(close_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_pings_then_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_flood_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_body_to_many, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_sends_going_away, setup, teardown),
    };
    return cmocka_run_group_tests_name("net/ws", tests, NULL, NULL);
}
