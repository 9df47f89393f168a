/* fuzz_grpc_server.c - the gRPC server's input: the preface, then the fuzzer's bytes as HTTP/2
 * frames, fed in pieces to a socketless socket whose h2 connections belong to a gRPC server in
 * front of a real call layer (one module, one method that answers, one that never does) and a
 * bidirectional method of the gRPC server (an echo that pauses reading while its answers
 * wait, and ends or fails when a message asks), with
 * the loop run between pieces so calls are dispatched, answered, timed out and cancelled while
 * the input goes on. At the end the connection is drained and freed and the loop run until the
 * calls have ended. Nothing may crash, leak or read freed memory. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common.pb-c.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "net/grpc_server.h"
#include "net/http_internal.h"

static uv_loop_t loop;
static fv_http_server_t *srv;
static fv_rpc_t *rpc;
static fv_grpc_server_t *g;

static void m_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    Finalverse__Common__V1__Status out = FINALVERSE__COMMON__V1__STATUS__INIT;
    out.service = req->id;
    fv_rpc_reply(call, &out.base);
}

static void on_cancel(fv_rpc_call_t *call, void *data)
{
}

static void m_hold(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    /* never answered: the deadline, a reset or the end of the connection ends it, and the
     * cancel callback lets the call layer free it then */
    fv_rpc_call_on_cancel(call, on_cancel, NULL);
}

static const fv_rpc_method_t methods[] = {
    {"Echo", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_echo, true},
    {"Hold", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_hold, true},
};

/* Bidirectional echo: a full queue pauses reading until the client reads; a message starting
 * with 'f' ends the call OK, 'e' with an error, 'p' pauses reading (resumed on writable). */
static void b_message(fv_grpc_stream_t *st, const uint8_t *msg, size_t len, void *data)
{
    if (len && msg[0] == 'f') {
        fv_grpc_stream_finish(st, 0, NULL);
        return;
    }
    if (len && msg[0] == 'e') {
        fv_grpc_stream_finish(st, FV_EINVAL, "asked to fail");
        return;
    }
    int rc = fv_grpc_stream_send(st, msg, len);
    if (rc == FV_EAGAIN || (len && msg[0] == 'p'))
        fv_grpc_stream_pause(st, true);
}

static void b_writable(fv_grpc_stream_t *st, void *data)
{
    fv_grpc_stream_pause(st, false);
}

static void b_half_close(fv_grpc_stream_t *st, void *data)
{
    fv_grpc_stream_finish(st, 0, NULL);
}

static void b_cancel(fv_grpc_stream_t *st, void *data)
{
}

static const fv_grpc_stream_cbs_t bidi_cbs = {.on_cancel = b_cancel, .on_writable = b_writable,
                                              .on_message = b_message,
                                              .on_half_close = b_half_close};

static void b_open(fv_grpc_stream_t *st, void *data)
{
    fv_grpc_stream_set_cbs(st, &bidi_cbs, NULL);
    if (fv_grpc_stream_add_header(st, "x-open", "1", 1) < 0)
        fv_grpc_stream_finish(st, FV_ENOMEM, NULL);
}

static void http_handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 404, "text/plain", "no", 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (!srv) {
        uv_loop_init(&loop);
        fv_rpc_opts_t ro = {.max_message_bytes = 4096};
        fv_grpc_opts_t go = {.max_message_bytes = 4096, .max_buffered_bytes = 65536};
        if (fv_rpc_new(&loop, &ro, &rpc) < 0 ||
            fv_rpc_serve(rpc, "world-engine", "finalverse.test.v1.World", methods, 2, NULL) < 0 ||
            fv_grpc_server_new(rpc, "world-engine", &go, &g) < 0 ||
            fv_grpc_server_bidi_method(g, "finalverse.test.v1.World", "Chat", b_open, NULL) < 0 ||
            fv_http_server_new(&loop, NULL, http_handler, NULL, &srv) < 0)
            return 0;
        fv_grpc_server_attach(g, srv);
    }
    if (size == 0)
        return 0;
    size_t piece = (size_t)data[0] * 13 % 4096 + 1;
    data++;
    size--;
    fv_buf_t out;
    fv_buf_init(&out, 1 << 22);
    fv_sock_t *s = fv__http_conn_new_detached(srv, &out);
    fv__sock_feed(s, preface, sizeof(preface) - 1);
    for (size_t off = 0; off < size; off += piece) {
        fv__sock_feed(s, (const char *)data + off, size - off < piece ? size - off : piece);
        uv_run(&loop, UV_RUN_NOWAIT);
        out.len = 0;
    }
    fv__sock_drain(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    fv__http_conn_free_detached(s);
    /* the calls the connection left end on the next turns (cancelled) */
    for (int i = 0; i < 4 && fv_rpc_in_flight(rpc); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    fv_buf_dispose(&out);
    return 0;
}
