/* test_h2_conn.c - the h2 driver on socketless sockets, spoken to by an nghttp2 client session:
 * an answer with body and trailers, the SETTINGS we advertise, flow control against a client
 * that opens its window only as it consumes, PING, a client reset reaching the handler, the
 * rapid-reset bound, the drain (GOAWAY, the stream in flight finishes, then the end), a header
 * list over its limit, garbage after the preface and a frame over the frame size; and, over
 * loopback, a client that opens every window and never reads: the queued output stays near the
 * socket's ceiling, whatever the answers' size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/h2.h"
#include "net/http_internal.h"
#include "loop_wait.h"
#include "loopback.h"

#define MAX_HELD 4096

typedef enum mode { ANSWER, HOLD } mode_t_;

typedef struct tc {
    uv_loop_t loop;
    fv_http_server_t *srv;
    fv_h2_limits_t lim;
    fv_buf_t sink;                  /* what the server wrote */
    fv_sock_t *s;
    nghttp2_session *cli;
    mode_t_ mode;
    size_t answer_len;
    /* server side */
    int requests;
    int bodies_ended;
    int closes;
    uint32_t last_close_code;
    int writables;
    fv_h2_stream_t *held[MAX_HELD];
    size_t held_count;
    /* client side */
    int status;
    size_t data_bytes;
    bool saw_trailer;
    int streams_closed;
    uint32_t stream_close_code;
    int goaways;
    uint32_t goaway_code;
    int32_t goaway_last;
    int ping_acks;
} tc_t;



/* ---- the server's handler ---- */

static void on_request(fv_h2_stream_t *st, void *data)
{
    tc_t *t = data;
    t->requests++;
    if (t->mode == HOLD) {
        if (t->held_count < MAX_HELD)
            t->held[t->held_count++] = st;
        return;
    }
    static const fv_h2_header_t head[] = {{FV_SLICE_LIT(":status"), FV_SLICE_LIT("200")}};
    static const fv_h2_header_t trailers[] = {{FV_SLICE_LIT("x-end"), FV_SLICE_LIT("yes")}};
    char *body = fv_malloc(t->answer_len + 1);
    memset(body, 'b', t->answer_len);
    assert_int_equal(fv_h2_stream_respond(st, head, 1, body, t->answer_len, trailers, 1), 0);
    fv_free(body);
}

static void on_body(fv_h2_stream_t *st, const uint8_t *p, size_t len, bool end, void *data)
{
    if (end)
        ((tc_t *)data)->bodies_ended++;
}

static void on_close(fv_h2_stream_t *st, uint32_t code, void *data)
{
    tc_t *t = data;
    t->closes++;
    t->last_close_code = code;
    for (size_t i = 0; i < t->held_count; i++)
        if (t->held[i] == st)
            t->held[i] = NULL;
}

static void on_writable(fv_h2_stream_t *st, void *data)
{
    ((tc_t *)data)->writables++;
}

static const fv_h2_handler_t handler = {on_request, on_body, on_close, on_writable};

static int factory(fv_sock_t *s, void *data, const fv_sock_driver_t **driver, void **state)
{
    tc_t *t = data;
    return fv_h2_conn_new(s, &t->lim, &handler, t, driver, state);
}

static void http_handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 404, "text/plain", "no", 2);
}

/* ---- the client ---- */

static int cli_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *user)
{
    tc_t *t = user;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        t->status = atoi((const char *)value);
    if (namelen == 5 && memcmp(name, "x-end", 5) == 0)
        t->saw_trailer = true;
    return 0;
}

static int cli_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                    size_t len, void *user)
{
    ((tc_t *)user)->data_bytes += len;
    return 0;
}

static int cli_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    tc_t *t = user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        t->goaways++;
        t->goaway_code = frame->goaway.error_code;
        t->goaway_last = frame->goaway.last_stream_id;
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        t->ping_acks++;
    return 0;
}

static int cli_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    tc_t *t = user;
    t->streams_closed++;
    t->stream_close_code = code;
    return 0;
}

static void client_new(tc_t *t, const nghttp2_settings_entry *iv, size_t niv, bool manual_window)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_option_set_no_auto_window_update(opt, manual_window);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cli_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cli_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_close);
    assert_int_equal(nghttp2_session_client_new2(&t->cli, cbs, t, opt), 0);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    assert_int_equal(nghttp2_submit_settings(t->cli, NGHTTP2_FLAG_NONE, iv, niv), 0);
}

/* Moves bytes both ways until neither side has more to say. */
static void pump(tc_t *t)
{
    for (int round = 0; round < 10000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(t->cli, &p)) > 0) {
            fv__sock_feed(t->s, (const char *)p, (size_t)n);
            moved = true;
        }
        if (t->sink.len) {
            ssize_t r = nghttp2_session_mem_recv(t->cli, (const uint8_t *)t->sink.ptr,
                                                 t->sink.len);
            assert_true(r >= 0);
            fv_buf_reset(&t->sink);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the conversation does not end");
}

static int32_t get(tc_t *t, const char *path)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
    };
    int32_t id = nghttp2_submit_request(t->cli, NULL, nv, 4, NULL, NULL);
    assert_true(id > 0);
    return id;
}

static int setup(void **state)
{
    tc_t *t = fv_calloc(1, sizeof(*t));

    assert_int_equal(uv_loop_init(&t->loop), 0);
    fv_h2_limits_default(&t->lim);
    assert_int_equal(fv_http_server_new(&t->loop, NULL, http_handler, NULL, &t->srv), 0);
    fv_http_server_set_h2(t->srv, factory, t);
    fv_buf_init(&t->sink, 0);
    t->s = fv__http_conn_new_detached(t->srv, &t->sink);
    t->answer_len = 5;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tc_t *t = *state;
    fv__http_conn_free_detached(t->s);
    nghttp2_session_del(t->cli);
    fv_buf_dispose(&t->sink);
    fv_http_server_close(t->srv, NULL, NULL);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    fv_free(t);
    return 0;
}

/* ---- tests ---- */

static void answer_with_trailers(void **state)
{
    tc_t *t = *state;
    client_new(t, NULL, 0, false);
    get(t, "/hello");
    pump(t);
    assert_int_equal(t->requests, 1);
    assert_int_equal(t->status, 200);
    assert_int_equal(t->data_bytes, 5);
    assert_true(t->saw_trailer);
    assert_int_equal(t->streams_closed, 1);
    assert_int_equal(t->stream_close_code, 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->last_close_code, 0);
    assert_true(fv_sock_is_open(t->s));
}

static void settings_advertised(void **state)
{
    tc_t *t = *state;
    client_new(t, NULL, 0, false);
    pump(t);
    assert_int_equal(nghttp2_session_get_remote_settings(
                         t->cli, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 100);
    assert_int_equal(nghttp2_session_get_remote_settings(
                         t->cli, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 16 * 1024);
    assert_int_equal(nghttp2_session_get_remote_settings(t->cli, NGHTTP2_SETTINGS_MAX_FRAME_SIZE),
                     16384);
}

/* The client's window is 1000 bytes and opens only as it consumes: the server never sends
 * past it, and the whole answer arrives as the client reads. */
static void flow_control_follows_the_reader(void **state)
{
    tc_t *t = *state;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}};
    client_new(t, iv, 1, true);
    t->answer_len = 100000;
    int32_t id = get(t, "/big");
    pump(t);
    assert_int_equal(t->data_bytes, 1000);
    assert_int_equal(t->streams_closed, 0);
    size_t seen = 0;
    for (int i = 0; i < 1000 && t->streams_closed == 0; i++) {
        size_t got = t->data_bytes - seen;
        assert_true(got <= 1000);
        seen = t->data_bytes;
        assert_int_equal(nghttp2_session_consume(t->cli, id, got), 0);
        pump(t);
    }
    assert_int_equal(t->data_bytes, 100000);
    assert_true(t->saw_trailer);
    assert_int_equal(t->stream_close_code, 0);
}

/* A streaming answer to a client whose window opens only as it reads: writes are taken until
 * the stream's queue passes its ceiling, then refused (FV_EAGAIN) until on_writable says the
 * queue drained; the end's trailers follow the last byte. */
static void streaming_answer_is_bounded(void **state)
{
    tc_t *t = *state;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}};
    client_new(t, iv, 1, true);
    t->mode = HOLD;
    int32_t id = get(t, "/stream");
    pump(t);
    assert_int_equal(t->held_count, 1);
    fv_h2_stream_t *st = t->held[0];
    static const fv_h2_header_t head[] = {{FV_SLICE_LIT(":status"), FV_SLICE_LIT("200")}};
    static const fv_h2_header_t trailers[] = {{FV_SLICE_LIT("x-end"), FV_SLICE_LIT("yes")}};
    assert_int_equal(fv_h2_stream_write(st, "x", 1), FV_EINVAL);       /* not begun */
    assert_int_equal(fv_h2_stream_begin(st, head, 1), 0);
    pump(t);
    assert_int_equal(t->status, 200);
    static char piece[30000];
    memset(piece, 'p', sizeof(piece));
    size_t written = 0;
    int rc;
    while ((rc = fv_h2_stream_write(st, piece, sizeof(piece))) == 0) {
        written += sizeof(piece);
        pump(t);
        assert_true(written < 10 * sizeof(piece));
    }
    assert_int_equal(rc, FV_EAGAIN);
    assert_true(fv_h2_stream_queued(st) >= FV_H2_STREAM_MAX_QUEUED);
    assert_true(fv_h2_stream_queued(st) < FV_H2_STREAM_MAX_QUEUED + sizeof(piece));
    assert_int_equal(t->writables, 0);
    size_t seen = 0;
    for (int i = 0; i < 1000 && t->data_bytes < written; i++) {
        assert_int_equal(nghttp2_session_consume(t->cli, id, t->data_bytes - seen), 0);
        seen = t->data_bytes;
        pump(t);
    }
    assert_int_equal(t->data_bytes, written);
    assert_int_equal(t->writables, 1);
    assert_int_equal(t->streams_closed, 0);
    assert_int_equal(fv_h2_stream_write(st, "tail", 4), 0);
    assert_int_equal(fv_h2_stream_end(st, trailers, 1), 0);
    assert_int_equal(fv_h2_stream_write(st, "x", 1), FV_EINVAL);       /* ended */
    for (int i = 0; i < 10 && t->streams_closed == 0; i++) {
        assert_int_equal(nghttp2_session_consume(t->cli, id, t->data_bytes - seen), 0);
        seen = t->data_bytes;
        pump(t);
    }
    assert_int_equal(t->data_bytes, written + 4);
    assert_true(t->saw_trailer);
    assert_int_equal(t->streams_closed, 1);
    assert_int_equal(t->stream_close_code, 0);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->writables, 1);
}

static void ping_answered(void **state)
{
    tc_t *t = *state;
    client_new(t, NULL, 0, false);
    assert_int_equal(nghttp2_submit_ping(t->cli, NGHTTP2_FLAG_NONE, NULL), 0);
    pump(t);
    assert_int_equal(t->ping_acks, 1);
}

static void client_reset_reaches_handler(void **state)
{
    tc_t *t = *state;
    t->mode = HOLD;
    client_new(t, NULL, 0, false);
    int32_t id = get(t, "/slow");
    pump(t);
    assert_int_equal(t->requests, 1);
    assert_int_equal(t->closes, 0);
    assert_int_equal(nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    pump(t);
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->last_close_code, NGHTTP2_CANCEL);
    assert_null(t->held[0]);
    assert_true(fv_sock_is_open(t->s));
}

/* Streams opened and reset at once, past the burst: the connection goes with
 * ENHANCE_YOUR_CALM, and every stream the handler saw is closed for it. */
static void rapid_reset_ends_the_connection(void **state)
{
    tc_t *t = *state;
    t->mode = HOLD;
    t->lim.max_resets = 50;
    client_new(t, NULL, 0, false);
    for (int i = 0; i < 500 && t->goaways == 0; i++) {
        int32_t id = get(t, "/x");
        pump(t);
        assert_int_equal(
            nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
        pump(t);
    }
    assert_int_equal(t->goaways, 1);
    assert_int_equal(t->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_true(t->requests < 100);
    assert_false(fv_sock_is_open(t->s));
    assert_int_equal(t->closes, t->requests);
}

/* Drain: GOAWAY naming the last stream taken; that stream is still answered, then the
 * connection ends. */
static void drain_lets_streams_finish(void **state)
{
    tc_t *t = *state;
    t->mode = HOLD;
    client_new(t, NULL, 0, false);
    int32_t id = get(t, "/held");
    pump(t);
    assert_int_equal(t->held_count, 1);
    fv__sock_drain(t->s);
    pump(t);
    assert_int_equal(t->goaways, 1);
    assert_int_equal(t->goaway_code, NGHTTP2_NO_ERROR);
    assert_int_equal(t->goaway_last, id);
    assert_true(fv_sock_is_open(t->s));
    static const fv_h2_header_t head[] = {{FV_SLICE_LIT(":status"), FV_SLICE_LIT("204")}};
    assert_int_equal(fv_h2_stream_respond(t->held[0], head, 1, NULL, 0, NULL, 0), 0);
    pump(t);
    assert_int_equal(t->status, 204);
    assert_int_equal(t->stream_close_code, 0);
    assert_false(fv_sock_is_open(t->s));
}

static void header_list_over_limit(void **state)
{
    tc_t *t = *state;
    t->lim.max_header_list_bytes = 1024;
    client_new(t, NULL, 0, false);
    char big[2000];
    memset(big, 'v', sizeof(big));
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"h", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
        {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big), 0},
    };
    assert_true(nghttp2_submit_request(t->cli, NULL, nv, 5, NULL, NULL) > 0);
    pump(t);
    assert_int_equal(t->requests, 0);
    assert_int_equal(t->streams_closed, 1);
    assert_int_not_equal(t->stream_close_code, 0);
    /* the connection goes on */
    get(t, "/after");
    pump(t);
    assert_int_equal(t->requests, 1);
    assert_int_equal(t->status, 200);
}

static void garbage_after_preface(void **state)
{
    tc_t *t = *state;
    static const char bytes[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nthis is not a frame at all....";
    fv__sock_feed(t->s, bytes, sizeof(bytes) - 1);
    assert_false(fv_sock_is_open(t->s));
    assert_int_equal(t->requests, 0);
}

static void frame_over_max_size(void **state)
{
    tc_t *t = *state;
    client_new(t, NULL, 0, false);
    get(t, "/x");
    t->mode = HOLD;
    pump(t);
    /* a DATA frame of 20000 bytes on stream 1, over the 16384 we advertised */
    size_t n = 9 + 20000;
    uint8_t *f = fv_calloc(1, n);
    f[0] = 0x00;
    f[1] = 0x4e;
    f[2] = 0x20;
    f[8] = 1;
    fv__sock_feed(t->s, (const char *)f, n);
    fv_free(f);
    nghttp2_session_mem_recv(t->cli, (const uint8_t *)t->sink.ptr, t->sink.len);
    assert_int_equal(t->goaways, 1);
    assert_int_equal(t->goaway_code, NGHTTP2_FRAME_SIZE_ERROR);
    assert_false(fv_sock_is_open(t->s));
}

/* ---- a reader that never reads, over loopback ---- */

static int over_ceiling;
static fv_http_server_t *slow_srv;

static void on_check_output(uv_check_t *h)
{
    if (fv_http_server_output_bytes(slow_srv) > 64 * 1024)
        over_ceiling = 1;
}

static void never_reading_client(void **state)
{
    tc_t *t = fv_calloc(1, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    fv_h2_limits_default(&t->lim);
    t->answer_len = 1024 * 1024;
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_output_bytes = 64 * 1024;
    assert_int_equal(fv_http_server_new(&t->loop, &lim, http_handler, NULL, &t->srv), 0);
    fv_http_server_set_h2(t->srv, factory, t);
    assert_int_equal(fv_http_server_listen(t->srv, "127.0.0.1", 0, NULL), 0);
    slow_srv = t->srv;
    over_ceiling = 0;

    /* the client opens its windows wide (so flow control does not hold the server back),
     * asks for 16 answers of 1 MiB and never reads */
    int fd = fv_test_connect(fv_http_server_port(t->srv), 4096, true);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0x7fffffff}};
    client_new(t, iv, 1, false);
    assert_int_equal(nghttp2_session_set_local_window_size(t->cli, NGHTTP2_FLAG_NONE, 0,
                                                           0x7fffffff), 0);
    for (int i = 0; i < 16; i++)
        get(t, "/big");
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(t->cli, &p)) > 0)
        assert_int_equal(write(fd, p, (size_t)n), n);

    uv_check_t check;
    uv_check_init(&t->loop, &check);
    uv_check_start(&check, on_check_output);
    fv_test_run_until(&t->loop, &over_ceiling, 1, 10000);
    /* one more turn for anything still in flight, then the peak */
    uv_run(&t->loop, UV_RUN_NOWAIT);
    /* while its output is full the server reads nothing more, so not every request is in */
    assert_true(t->requests >= 1);
    size_t peak = fv_http_server_output_bytes_peak(t->srv);
    /* over the ceiling by at most one write batch (64 KiB) and a frame (16 KiB) */
    assert_true(peak <= 64 * 1024 + 64 * 1024 + 16 * 1024 + 9);
    uv_close((uv_handle_t *)&check, NULL);

    close(fd);
    nghttp2_session_del(t->cli);
    fv_http_server_close(t->srv, NULL, NULL);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t->closes, t->requests);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    fv_buf_dispose(&t->sink);
    fv_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answer_with_trailers, setup, teardown),
        cmocka_unit_test_setup_teardown(settings_advertised, setup, teardown),
        cmocka_unit_test_setup_teardown(flow_control_follows_the_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(streaming_answer_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(client_reset_reaches_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(rapid_reset_ends_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_lets_streams_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(header_list_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_after_preface, setup, teardown),
        cmocka_unit_test_setup_teardown(frame_over_max_size, setup, teardown),
        cmocka_unit_test(never_reading_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
