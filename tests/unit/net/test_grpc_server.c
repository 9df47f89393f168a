/* test_grpc_server.c - gRPC calls from an nghttp2 client session, through the h2 driver on a
 * socketless socket, to a method table on a real rpc: a unary answer with its trailers, an
 * unknown method and an unknown service (UNIMPLEMENTED), a handler's error with a message that
 * needs percent-encoding, a deadline from grpc-timeout, a message over the limit told from its
 * prefix (RESOURCE_EXHAUSTED), a compressed flag without grpc-encoding, a prefix longer than
 * the body, a protobuf that does not decode, gzip requests (inflated, unary and streaming;
 * a bomb RESOURCE_EXHAUSTED; not gzip INTERNAL), an unknown grpc-encoding (UNIMPLEMENTED), a
 * client reset reaching the handler, a request that is not gRPC, and custom metadata both
 * ways (-bin values padded, unpadded and not base64; names a handler may not set). Also the grpc-timeout, grpc-message
 * and path helpers, and a server-streaming method (three messages then OK; a held stream
 * whose client resets it hears on_cancel). Bidirectional and client-streaming methods: echoes
 * as the messages come (the request side still open), metadata both ways, one answer at the
 * end, a handler that pauses reading while the client sends more than a window, a bad message
 * in the middle, a client reset, a grpc-timeout that passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <zlib.h>

#include "common.pb-c.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "net/grpc_server.h"
#include "net/grpc_wire.h"
#include "net/http_internal.h"

typedef struct tc {
    uv_loop_t loop;
    fv_http_server_t *srv;
    fv_rpc_t *rpc;
    fv_grpc_server_t *g;
    fv_buf_t sink;
    fv_sock_t *s;
    nghttp2_session *cli;
    /* handler side */
    int cancels;
    int held;
    char md_seen[64];              /* what Meta read of x-key-bin, as hex */
    int md_reserved_rc;            /* Meta adding grpc-status as a header */
    int md_ua_seen;                /* user-agent reached Meta as metadata */
    fv_grpc_stream_t *stream;      /* a Watch-like stream held open */
    int stream_cancels;
    /* client side */
    int http_status;
    int grpc_status;               /* -1 until seen */
    char grpc_message[256];
    char got[64];                  /* the answer's x-got header */
    char trail_bin[64];            /* the answer's x-t-bin trailer as sent */
    bool trailers_only;            /* grpc-status came in the first header block */
    int header_blocks;
    fv_buf_t data;
    int closed;
    uint32_t close_code;
    /* the request body, read by the data provider */
    const uint8_t *body;
    size_t body_len;
    size_t body_off;
    bool body_open;                /* more body comes: DEFERRED at its end, not EOF */
    bool body_deferred;
    /* bidirectional / client-streaming handlers */
    int bidi_msgs;
    int bidi_half;
    int bidi_cancels;
    bool bidi_pause;               /* open pauses reading */
    fv_grpc_stream_t *bidi;
    char echo_md[32];              /* x-echo as the handler read it */
} tc_t;

/* ---- the module's methods ---- */

static void m_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    Finalverse__Common__V1__Status out = FINALVERSE__COMMON__V1__STATUS__INIT;
    out.service = req->id;
    out.status = "healthy";
    fv_rpc_reply(call, &out.base);
}

static void m_fail(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_rpc_fail(call, FV_ENOENT, "no such thing: 100%% gone\n");
}

static void on_cancel(fv_rpc_call_t *call, void *data)
{
    ((tc_t *)data)->cancels++;
}

static void m_hold(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    tc_t *t = data;
    t->held++;
    fv_rpc_call_on_cancel(call, on_cancel, t);
}

/* Reads x-key-bin and answers with its length as a header and fixed bytes as a -bin trailer. */
static void m_meta(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    tc_t *t = data;
    const fv_md_t *md = fv_rpc_call_metadata(call);
    fv_slice_t v = fv_md_get(md, "x-key-bin");
    for (size_t i = 0; i < v.len && 2 * i + 2 < sizeof(t->md_seen); i++)
        snprintf(t->md_seen + 2 * i, 3, "%02x", (unsigned char)v.ptr[i]);
    t->md_ua_seen = fv_md_get(md, "user-agent").ptr != NULL;
    t->md_reserved_rc = fv_rpc_call_add_header(call, "grpc-status", "0", 1);
    char len[16];
    snprintf(len, sizeof(len), "%zu", v.len);
    static const uint8_t raw[] = {0x00, 0xff};
    assert_int_equal(fv_rpc_call_add_header(call, "x-got", len, strlen(len)), 0);
    assert_int_equal(fv_rpc_call_add_trailer(call, "x-t-bin", raw, sizeof(raw)), 0);
    m_echo(call, in, data);
}

/* Server-streaming: the request's bytes as three messages, then OK; a request of "hold"
 * keeps the stream open after one message. */
static void on_stream_cancel(fv_grpc_stream_t *s, void *data)
{
    tc_t *t = data;
    t->stream_cancels++;
    t->stream = NULL;
}

static const fv_grpc_stream_cbs_t stream_cbs = {.on_cancel = on_stream_cancel};

static void s_repeat(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    tc_t *t = data;
    fv_grpc_stream_set_cbs(s, &stream_cbs, t);
    if (len == 4 && memcmp(msg, "hold", 4) == 0) {
        assert_int_equal(fv_grpc_stream_send(s, msg, len), 0);
        t->stream = s;
        return;
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(fv_grpc_stream_send(s, msg, len), 0);
    fv_grpc_stream_finish(s, 0, NULL);
}

/* Bidirectional: each message echoed as it comes; the end OK with a trailer counting them. A
 * message "fail" ends the call with a gRPC status of our choosing (6). */
static void b_message(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    tc_t *t = data;
    t->bidi_msgs++;
    if (len == 4 && memcmp(msg, "fail", 4) == 0) {
        fv_grpc_stream_finish_status(s, 6, "as asked");
        t->bidi = NULL;
        return;
    }
    assert_int_equal(fv_grpc_stream_send(s, msg, len), 0);
}

static void b_half_close(fv_grpc_stream_t *s, void *data)
{
    tc_t *t = data;
    t->bidi_half++;
    char n[16];
    snprintf(n, sizeof(n), "%d", t->bidi_msgs);
    assert_int_equal(fv_grpc_stream_add_trailer(s, "x-count", n, strlen(n)), 0);
    fv_grpc_stream_finish(s, 0, NULL);
    t->bidi = NULL;
}

static void b_cancel(fv_grpc_stream_t *s, void *data)
{
    tc_t *t = data;
    t->bidi_cancels++;
    t->bidi = NULL;
}

static const fv_grpc_stream_cbs_t bidi_cbs = {.on_cancel = b_cancel, .on_message = b_message,
                                              .on_half_close = b_half_close};

static void b_open(fv_grpc_stream_t *s, void *data)
{
    tc_t *t = data;
    t->bidi = s;
    fv_grpc_stream_set_cbs(s, &bidi_cbs, t);
    fv_slice_t v = fv_md_get(fv_grpc_stream_metadata(s), "x-echo");
    snprintf(t->echo_md, sizeof(t->echo_md), "%.*s", (int)v.len, v.ptr ? v.ptr : "");
    if (v.ptr)
        assert_int_equal(fv_grpc_stream_add_header(s, "x-got", v.ptr, v.len), 0);
    assert_int_equal(fv_grpc_stream_add_header(s, "grpc-status", "0", 1), FV_EINVAL);
    if (t->bidi_pause)
        fv_grpc_stream_pause(s, true);
}

/* Client-streaming: counts the messages and answers the count once, at the end. */
static void c_message(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    ((tc_t *)data)->bidi_msgs++;
}

static void c_half_close(fv_grpc_stream_t *s, void *data)
{
    tc_t *t = data;
    char n[16];
    snprintf(n, sizeof(n), "%d", t->bidi_msgs);
    assert_int_equal(fv_grpc_stream_send(s, (const uint8_t *)n, strlen(n)), 0);
    assert_int_equal(fv_grpc_stream_send(s, (const uint8_t *)n, strlen(n)), FV_EINVAL);
    fv_grpc_stream_finish(s, 0, NULL);
}

static const fv_grpc_stream_cbs_t count_cbs = {.on_cancel = b_cancel, .on_message = c_message,
                                               .on_half_close = c_half_close};

static void c_open(fv_grpc_stream_t *s, void *data)
{
    fv_grpc_stream_set_cbs(s, &count_cbs, data);
}

static const fv_rpc_method_t methods[] = {
    {"Echo", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_echo, true},
    {"Fail", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_fail, true},
    {"Hold", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_hold, true},
    {"Meta", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_meta, true},
};

static void http_handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 404, "text/plain", "no", 2);
}

/* ---- the client ---- */

static int cli_begin(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type == NGHTTP2_HEADERS)
        ((tc_t *)user)->header_blocks++;
    return 0;
}

static int cli_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                      size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                      void *user)
{
    tc_t *t = user;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        t->http_status = atoi((const char *)value);
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        t->grpc_status = atoi((const char *)value);
        t->trailers_only = t->header_blocks == 1;
    }
    if (namelen == 5 && memcmp(name, "x-got", 5) == 0)
        snprintf(t->got, sizeof(t->got), "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, "x-t-bin", 7) == 0)
        snprintf(t->trail_bin, sizeof(t->trail_bin), "%.*s", (int)valuelen, value);
    if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(t->grpc_message, sizeof(t->grpc_message), "%.*s", (int)valuelen, value);
    return 0;
}

static int cli_data(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                    size_t len, void *user)
{
    assert_int_equal(fv_buf_append(&((tc_t *)user)->data, data, len), 0);
    return 0;
}

static int cli_close(nghttp2_session *session, int32_t id, uint32_t code, void *user)
{
    tc_t *t = user;
    t->closed++;
    t->close_code = code;
    return 0;
}

static ssize_t cli_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *user)
{
    tc_t *t = user;
    size_t n = t->body_len - t->body_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(buf, t->body + t->body_off, n);
    t->body_off += n;
    if (t->body_off == t->body_len) {
        if (t->body_open) {
            if (n)
                return (ssize_t)n;
            t->body_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* Moves bytes both ways and runs the loop's ready work until nothing moves. */
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
            assert_true(nghttp2_session_mem_recv(t->cli, (const uint8_t *)t->sink.ptr,
                                                 t->sink.len) >= 0);
            fv_buf_reset(&t->sink);
            moved = true;
        }
        if (uv_run(&t->loop, UV_RUN_NOWAIT))
            moved = moved || t->sink.len > 0;
        if (!moved && t->sink.len == 0)
            return;
    }
    fail_msg("the conversation does not end");
}

/* Pumps, waiting on the loop (deadlines), until the stream closed; bounded. */
static void pump_until_closed(tc_t *t)
{
    for (int i = 0; i < 5000 && t->closed == 0; i++) {
        pump(t);
        if (t->closed == 0)
            uv_run(&t->loop, UV_RUN_ONCE);
    }
    assert_int_equal(t->closed, 1);
}

static int32_t call(tc_t *t, const char *path, const char *extra_name, const char *extra_value,
                    const uint8_t *body, size_t len)
{
    nghttp2_nv nv[7] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
    };
    size_t n = 6;
    if (extra_name)
        nv[n++] = (nghttp2_nv){(uint8_t *)extra_name, (uint8_t *)extra_value,
                               strlen(extra_name), strlen(extra_value), 0};
    t->body = body;
    t->body_len = len;
    t->body_off = 0;
    nghttp2_data_provider prd = {.read_callback = cli_read};
    int32_t id = nghttp2_submit_request(t->cli, NULL, nv, n, &prd, NULL);
    assert_true(id > 0);
    return id;
}

/* An IdRequest{id} as one frame in out; returns its length. */
static size_t id_frame(const char *id, uint8_t *out, size_t cap)
{
    Finalverse__Common__V1__IdRequest m = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    m.id = (char *)id;
    size_t n = protobuf_c_message_get_packed_size(&m.base);
    assert_true(n + 5 <= cap);
    out[0] = 0;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    protobuf_c_message_pack(&m.base, out + 5);
    return n + 5;
}

static size_t next_budget;      /* max_buffered_bytes of the next setup; 0 = default */
static uint32_t next_window;    /* the stream window of the next setup; 0 = default */

static int setup(void **state)
{
    tc_t *t = fv_calloc(1, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    fv_rpc_opts_t ro = {.max_message_bytes = 1024};
    assert_int_equal(fv_rpc_new(&t->loop, &ro, &t->rpc), 0);
    assert_int_equal(fv_rpc_serve(t->rpc, "world-engine", "finalverse.test.v1.Things", methods,
                                  sizeof(methods) / sizeof(methods[0]), t), 0);
    fv_h2_limits_t lim;
    fv_h2_limits_default(&lim);
    if (next_window)
        lim.stream_window_bytes = next_window;
    fv_grpc_opts_t go = {.max_message_bytes = 1024, .max_buffered_bytes = next_budget,
                         .h2 = &lim};
    assert_int_equal(fv_grpc_server_new(t->rpc, "world-engine", &go, &t->g), 0);
    assert_int_equal(fv_http_server_new(&t->loop, NULL, http_handler, NULL, &t->srv), 0);
    assert_int_equal(fv_grpc_server_stream_method(t->g, "finalverse.test.v1.Things", "Repeat",
                                                  s_repeat, t), 0);
    assert_int_equal(fv_grpc_server_stream_method(t->g, "finalverse.test.v1.Things", "Repeat",
                                                  s_repeat, t), FV_EEXIST);
    assert_int_equal(fv_grpc_server_bidi_method(t->g, "finalverse.test.v1.Things", "Chat",
                                                b_open, t), 0);
    assert_int_equal(fv_grpc_server_client_stream_method(t->g, "finalverse.test.v1.Things",
                                                         "Count", c_open, t), 0);
    assert_int_equal(fv_grpc_server_bidi_method(t->g, "finalverse.test.v1.Things", "Repeat",
                                                b_open, t), FV_EEXIST);
    fv_grpc_server_attach(t->g, t->srv);
    fv_buf_init(&t->sink, 0);
    fv_buf_init(&t->data, 0);
    t->s = fv__http_conn_new_detached(t->srv, &t->sink);
    t->grpc_status = -1;

    nghttp2_session_callbacks *cbs;
    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cli_begin);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cli_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_close);
    assert_int_equal(nghttp2_session_client_new(&t->cli, cbs, t), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(t->cli, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    *state = t;
    return 0;
}

static void on_rpc_closed(void *data)
{
    *(int *)data = 1;
}

static int teardown(void **state)
{
    tc_t *t = *state;
    fv__http_conn_free_detached(t->s);
    nghttp2_session_del(t->cli);
    fv_http_server_close(t->srv, NULL, NULL);
    int closed = 0;
    fv_rpc_close(t->rpc, on_rpc_closed, &closed);
    assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    fv_grpc_server_free(t->g);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    fv_buf_dispose(&t->sink);
    fv_buf_dispose(&t->data);
    fv_free(t);
    return 0;
}

/* ---- calls ---- */

static void unary_ok(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("terra-nova", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-timeout", "5S", f, n);
    pump_until_closed(t);
    assert_int_equal(t->http_status, 200);
    assert_int_equal(t->grpc_status, 0);
    assert_false(t->trailers_only);
    assert_int_equal(t->close_code, 0);
    assert_true(t->data.len > 5);
    assert_int_equal(t->data.ptr[0], 0);
    Finalverse__Common__V1__Status *st = finalverse__common__v1__status__unpack(
        NULL, t->data.len - 5, (const uint8_t *)t->data.ptr + 5);
    assert_non_null(st);
    assert_string_equal(st->service, "terra-nova");
    finalverse__common__v1__status__free_unpacked(st, NULL);
}

static void unknown_method_and_service(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Nope", NULL, NULL, f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 12);
    assert_true(t->trailers_only);
    t->closed = 0;
    t->grpc_status = -1;
    t->header_blocks = 0;
    call(t, "/other.Service/Echo", NULL, NULL, f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 12);
    assert_string_equal(t->grpc_message, "unknown service other.Service");
}

static void handler_error_percent_encoded(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Fail", NULL, NULL, f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 5);
    assert_string_equal(t->grpc_message, "no such thing: 100%25 gone%0A");
}

static void deadline_exceeded(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Hold", "grpc-timeout", "20m", f, n);
    pump_until_closed(t);
    assert_int_equal(t->held, 1);
    assert_int_equal(t->cancels, 1);
    assert_int_equal(t->grpc_status, 4);
}

static void message_over_limit(void **state)
{
    tc_t *t = *state;
    /* the prefix announces 2000 bytes; only the prefix is sent, and the answer comes anyway */
    static const uint8_t f[] = {0, 0, 0, 0x07, 0xd0};
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 8);
    assert_int_equal(t->held, 0);
}

static void compressed_without_encoding(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {1, 0, 0, 0, 1, 0};
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 13);
}

static void prefix_longer_than_body(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {0, 0, 0, 0, 9, 0x0a, 0x01};
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 13);
}

static void protobuf_does_not_decode(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {0, 0, 0, 0, 3, 0x0a, 0x09, 'z'};
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 3);
}

static void metadata_round_trip(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Meta", "x-key-bin", "AP8", f, n);   /* 00 ff */
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_string_equal(t->md_seen, "00ff");
    assert_int_equal(t->md_reserved_rc, FV_EINVAL);
    assert_string_equal(t->got, "2");
    assert_string_equal(t->trail_bin, "AP8");
}

static void metadata_bin_padded(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Meta", "x-key-bin", "AP8=", f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_string_equal(t->md_seen, "00ff");
}

static void metadata_reserved_not_passed(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Meta", "user-agent", "test/1", f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_int_equal(t->md_ua_seen, 0);
}

static void metadata_bin_not_base64(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Meta", "x-key-bin", "!!!", f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 13);
    assert_true(t->trailers_only);
    assert_string_equal(t->md_seen, "");          /* the handler never ran */
}

static void server_streaming(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {0, 0, 0, 0, 2, 'h', 'i'};
    call(t, "/finalverse.test.v1.Things/Repeat", NULL, NULL, f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_false(t->trailers_only);
    assert_int_equal(t->data.len, 3 * sizeof(f));
    for (int i = 0; i < 3; i++)
        assert_memory_equal(t->data.ptr + i * sizeof(f), f, sizeof(f));
}

static void server_stream_cancelled(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {0, 0, 0, 0, 4, 'h', 'o', 'l', 'd'};
    int32_t id = call(t, "/finalverse.test.v1.Things/Repeat", NULL, NULL, f, sizeof(f));
    pump(t);
    assert_non_null(t->stream);
    assert_int_equal(t->data.len, sizeof(f));
    assert_int_equal(t->closed, 0);
    assert_int_equal(nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    pump(t);
    assert_int_equal(t->stream_cancels, 1);
    assert_null(t->stream);
}

/* Frames msg into out at *len. */
static void put_frame(uint8_t *out, size_t *len, const char *msg)
{
    size_t n = strlen(msg);
    out[*len] = 0;
    out[*len + 1] = 0;
    out[*len + 2] = 0;
    out[*len + 3] = (uint8_t)(n >> 8);
    out[*len + 4] = (uint8_t)n;
    memcpy(out + *len + 5, msg, n);
    *len += 5 + n;
}

/* More of an open request body: the provider takes it from where it was. */
static void body_more(tc_t *t, int32_t id, size_t new_len, bool end)
{
    t->body_len = new_len;
    t->body_open = !end;
    if (t->body_deferred) {
        t->body_deferred = false;
        assert_int_equal(nghttp2_session_resume_data(t->cli, id), 0);
    }
}

static void bidi_echo_as_they_come(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "one");
    t->body_open = true;
    int32_t id = call(t, "/finalverse.test.v1.Things/Chat", "x-echo", "hello", body, len);
    pump(t);
    /* the first answer is out while the client's side is still open */
    assert_int_equal(t->bidi_msgs, 1);
    assert_int_equal(t->data.len, 8);
    assert_string_equal(t->echo_md, "hello");
    assert_string_equal(t->got, "hello");
    assert_int_equal(t->closed, 0);
    put_frame(body, &len, "two");
    put_frame(body, &len, "three");
    body_more(t, id, len, true);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, 3);
    assert_int_equal(t->bidi_half, 1);
    assert_int_equal(t->grpc_status, 0);
    assert_int_equal(t->data.len, len);
    assert_memory_equal(t->data.ptr, body, len);
}

static void bidi_empty_stream(void **state)
{
    tc_t *t = *state;
    call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, NULL, 0);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, 0);
    assert_int_equal(t->bidi_half, 1);
    assert_int_equal(t->grpc_status, 0);
}

static void bidi_status_of_choice(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "a");
    put_frame(body, &len, "fail");
    put_frame(body, &len, "b");          /* after the end: not read */
    call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, body, len);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, 2);
    assert_int_equal(t->bidi_half, 0);
    assert_int_equal(t->grpc_status, 6);
    assert_string_equal(t->grpc_message, "as asked");
    assert_int_equal(t->data.len, 6);
}

static void client_streaming_one_answer(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    for (int i = 0; i < 5; i++)
        put_frame(body, &len, "x");
    call(t, "/finalverse.test.v1.Things/Count", NULL, NULL, body, len);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_int_equal(t->bidi_msgs, 5);
    assert_int_equal(t->data.len, 6);
    assert_memory_equal(t->data.ptr, "\0\0\0\0\1" "5", 6);
}

static void bidi_bad_message_midway(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "ok");
    put_frame(body, &len, "zz");
    body[7] = 1;                         /* the second one compressed, without an encoding */
    call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, body, len);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, 1);
    assert_int_equal(t->bidi_cancels, 1);
    assert_int_equal(t->grpc_status, 13);
}

static void bidi_truncated_last_message(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "ok");
    put_frame(body, &len, "cut");
    call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, body, len - 1);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, 1);
    assert_int_equal(t->bidi_cancels, 1);
    assert_int_equal(t->grpc_status, 13);
}

static void bidi_client_reset(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "one");
    t->body_open = true;
    int32_t id = call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, body, len);
    pump(t);
    assert_non_null(t->bidi);
    assert_int_equal(nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    pump(t);
    assert_int_equal(t->bidi_cancels, 1);
    assert_null(t->bidi);
}

/* A bidirectional call whose client never ends its side: the grpc-timeout ends it. */
static void bidi_deadline(void **state)
{
    tc_t *t = *state;
    uint8_t body[64];
    size_t len = 0;
    put_frame(body, &len, "one");
    t->body_open = true;
    call(t, "/finalverse.test.v1.Things/Chat", "grpc-timeout", "20m", body, len);
    for (int i = 0; i < 5000 && t->grpc_status == -1; i++) {
        pump(t);
        if (t->grpc_status == -1)
            uv_run(&t->loop, UV_RUN_ONCE);
    }
    assert_int_equal(t->grpc_status, 4);
    assert_int_equal(t->bidi_msgs, 1);
    assert_int_equal(t->bidi_cancels, 1);
    assert_null(t->bidi);
}

#define SMALL_WINDOW 4096u

static int setup_small_window(void **state)
{
    next_window = SMALL_WINDOW;
    int rc = setup(state);
    next_window = 0;
    ((tc_t *)*state)->bidi_pause = true;
    return rc;
}

/* A handler that does not read: the client stops after one window, the rest waits on its
 * side; resuming takes everything, in order. */
static void bidi_pause_bounds_the_client(void **state)
{
    tc_t *t = *state;
    enum { N = 200 };
    static uint8_t body[N * 105];
    size_t len = 0;
    char m[101];
    memset(m, 'm', 100);
    m[100] = '\0';
    for (int i = 0; i < N; i++)
        put_frame(body, &len, m);
    pump(t);                             /* the client has our SETTINGS (the small window) */
    call(t, "/finalverse.test.v1.Things/Chat", NULL, NULL, body, len);
    pump(t);
    assert_non_null(t->bidi);
    assert_int_equal(t->bidi_msgs, 0);
    assert_true(t->body_off <= SMALL_WINDOW);
    assert_int_equal(t->closed, 0);
    fv_grpc_stream_pause(t->bidi, false);
    pump_until_closed(t);
    assert_int_equal(t->bidi_msgs, N);
    assert_int_equal(t->bidi_half, 1);
    assert_int_equal(t->grpc_status, 0);
    assert_int_equal(t->data.len, len);
}

/* in[0..len) gzip-compressed into out (its room cap) as one compressed gRPC frame. */
static size_t gzip_frame(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out + 5;
    z.avail_out = (uInt)(cap - 5);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - 5 - z.avail_out;
    deflateEnd(&z);
    out[0] = 1;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    return n + 5;
}

static void gzip_request(void **state)
{
    tc_t *t = *state;
    uint8_t f[64], z[128];
    size_t n = id_frame("terra-nova", f, sizeof(f));
    size_t zn = gzip_frame(f + 5, n - 5, z, sizeof(z));
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-encoding", "gzip", z, zn);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_true(t->data.len > 5);
    assert_int_equal(t->data.ptr[0], 0);             /* the answer goes uncompressed */
    Finalverse__Common__V1__Status *st = finalverse__common__v1__status__unpack(
        NULL, t->data.len - 5, (const uint8_t *)t->data.ptr + 5);
    assert_non_null(st);
    assert_string_equal(st->service, "terra-nova");
    finalverse__common__v1__status__free_unpacked(st, NULL);
}

static void gzip_identity_message_too(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));          /* flag 0: the sender may not compress */
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-encoding", "gzip", f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
}

static void gzip_bomb_resource_exhausted(void **state)
{
    tc_t *t = *state;
    static uint8_t zeros[256 << 10];   /* 256 KiB inflated from under 1 KiB; the limit is 1 KiB */
    static uint8_t z[4096];
    size_t zn = gzip_frame(zeros, sizeof(zeros), z, sizeof(z));
    assert_true(zn < 1024);
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-encoding", "gzip", z, zn);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 8);
}

static void gzip_not_gzip(void **state)
{
    tc_t *t = *state;
    static const uint8_t f[] = {1, 0, 0, 0, 3, 'a', 'b', 'c'};
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-encoding", "gzip", f, sizeof(f));
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 13);
}

static void unknown_encoding_unimplemented(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Echo", "grpc-encoding", "snappy", f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 12);
}

static void bidi_gzip(void **state)
{
    tc_t *t = *state;
    uint8_t body[256];
    size_t len = 0;
    put_frame(body, &len, "ok");
    len += gzip_frame((const uint8_t *)"zz", 2, body + len, sizeof(body) - len);
    call(t, "/finalverse.test.v1.Things/Count", "grpc-encoding", "gzip", body, len);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
    assert_int_equal(t->bidi_msgs, 2);
}

static void client_reset_cancels_the_call(void **state)
{
    tc_t *t = *state;
    uint8_t f[64];
    size_t n = id_frame("x", f, sizeof(f));
    int32_t id = call(t, "/finalverse.test.v1.Things/Hold", NULL, NULL, f, n);
    pump(t);
    for (int i = 0; i < 100 && t->held == 0; i++) {
        uv_run(&t->loop, UV_RUN_ONCE);
        pump(t);
    }
    assert_int_equal(t->held, 1);
    assert_int_equal(nghttp2_submit_rst_stream(t->cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
    pump(t);
    assert_int_equal(t->cancels, 1);
    assert_int_equal(t->grpc_status, -1);
}

static void not_grpc(void **state)
{
    tc_t *t = *state;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"h", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)"/finalverse.test.v1.Things/Echo", 5, 31, 0},
    };
    assert_true(nghttp2_submit_request(t->cli, NULL, nv, 4, NULL, NULL) > 0);
    pump_until_closed(t);
    assert_int_equal(t->http_status, 415);
}

static int setup_small_budget(void **state)
{
    next_budget = 100;
    int rc = setup(state);
    next_budget = 0;
    return rc;
}

/* Request bytes waiting for their message count against the process's budget: past it the
 * call is RESOURCE_EXHAUSTED, and once it is gone the budget is whole again. */
static void buffer_budget(void **state)
{
    tc_t *t = *state;
    uint8_t f[400];
    char id[300];
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    size_t n = id_frame(id, f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 8);
    t->closed = 0;
    t->grpc_status = -1;
    n = id_frame("small", f, sizeof(f));
    call(t, "/finalverse.test.v1.Things/Echo", NULL, NULL, f, n);
    pump_until_closed(t);
    assert_int_equal(t->grpc_status, 0);
}

/* ---- the wire helpers ---- */

static void timeout_parse(void **state)
{
    uint32_t ms = 0;
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("5S"), 100000, &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("1500u"), 100000, &ms), 0);
    assert_int_equal(ms, 2);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("0n"), 100000, &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("99999999H"), 100000, &ms), 0);
    assert_int_equal(ms, 100000);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("2M"), 1000000, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("123456789S"), 100, &ms), FV_EINVAL);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("S"), 100, &ms), FV_EINVAL);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("1x"), 100, &ms), FV_EINVAL);
    assert_int_equal(fv_grpc_timeout_parse(FV_SLICE_LIT("-1S"), 100, &ms), FV_EINVAL);
}

static void message_encode(void **state)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    assert_int_equal(fv_grpc_message_encode(&b, "a b%c\xc3\xa9\x7f~"), 0);
    assert_string_equal(b.ptr, "a b%25c%C3%A9%7F~");
    fv_buf_dispose(&b);
}

static void path_split(void **state)
{
    fv_slice_t s, m;
    assert_int_equal(fv_grpc_path_split(FV_SLICE_LIT("/a.B/C"), &s, &m), 0);
    assert_true(fv_slice_eq_cstr(s, "a.B"));
    assert_true(fv_slice_eq_cstr(m, "C"));
    assert_int_equal(fv_grpc_path_split(FV_SLICE_LIT("/a.B/"), &s, &m), FV_EINVAL);
    assert_int_equal(fv_grpc_path_split(FV_SLICE_LIT("//C"), &s, &m), FV_EINVAL);
    assert_int_equal(fv_grpc_path_split(FV_SLICE_LIT("/a/b/c"), &s, &m), FV_EINVAL);
    assert_int_equal(fv_grpc_path_split(FV_SLICE_LIT("a/b"), &s, &m), FV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unary_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_method_and_service, setup, teardown),
        cmocka_unit_test_setup_teardown(handler_error_percent_encoded, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_exceeded, setup, teardown),
        cmocka_unit_test_setup_teardown(message_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(compressed_without_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_longer_than_body, setup, teardown),
        cmocka_unit_test_setup_teardown(protobuf_does_not_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(gzip_request, setup, teardown),
        cmocka_unit_test_setup_teardown(gzip_identity_message_too, setup, teardown),
        cmocka_unit_test_setup_teardown(gzip_bomb_resource_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(gzip_not_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_encoding_unimplemented, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(server_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(server_stream_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_echo_as_they_come, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_empty_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_status_of_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(client_streaming_one_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_bad_message_midway, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_truncated_last_message, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_client_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_pause_bounds_the_client, setup_small_window,
                                        teardown),
        cmocka_unit_test_setup_teardown(metadata_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_bin_padded, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_reserved_not_passed, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_bin_not_base64, setup, teardown),
        cmocka_unit_test_setup_teardown(client_reset_cancels_the_call, setup, teardown),
        cmocka_unit_test_setup_teardown(not_grpc, setup, teardown),
        cmocka_unit_test_setup_teardown(buffer_budget, setup_small_budget, teardown),
        cmocka_unit_test(timeout_parse),
        cmocka_unit_test(message_encode),
        cmocka_unit_test(path_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
