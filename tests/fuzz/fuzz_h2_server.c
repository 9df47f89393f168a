/* fuzz_h2_server.c - the h2 driver's input: the preface, then the fuzzer's bytes as frames, fed
 * in pieces to a socketless socket. The handler answers some streams at once (body and
 * trailers), some when their body ends, and resets others, so answers, resets and closes cross
 * whatever the input does; at the end the connection is drained and freed. Nothing may crash,
 * leak or read freed memory. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/h2.h"
#include "net/http_internal.h"

static uv_loop_t loop;
static fv_http_server_t *srv;
static fv_h2_limits_t lim;

static const fv_h2_header_t head[] = {{FV_SLICE_LIT(":status"), FV_SLICE_LIT("200")}};
static const fv_h2_header_t trailers[] = {{FV_SLICE_LIT("grpc-status"), FV_SLICE_LIT("0")}};

static void answer(fv_h2_stream_t *st)
{
    if (fv_h2_stream_respond(st, head, 1, "hello", 5, trailers, 1) < 0)
        return;                /* the stream is gone or answered: fine either way */
}

static void on_request(fv_h2_stream_t *st, void *data)
{
    switch (fv_h2_stream_id(st) % 8) {
    case 1:
        answer(st);
        break;
    case 3:
        fv_h2_stream_reset(st, 8);
        break;
    default:
        break;                 /* answered when its body ends, or never */
    }
}

static void on_body(fv_h2_stream_t *st, const uint8_t *p, size_t len, bool end, void *data)
{
    if (end)
        answer(st);
}

static void on_close(fv_h2_stream_t *st, uint32_t code, void *data)
{
}

static const fv_h2_handler_t handler = {on_request, on_body, on_close};

static int factory(fv_sock_t *s, void *data, const fv_sock_driver_t **driver, void **state)
{
    return fv_h2_conn_new(s, &lim, &handler, NULL, driver, state);
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
        fv_h2_limits_default(&lim);
        lim.max_header_list_bytes = 4096;
        lim.max_concurrent_streams = 16;
        lim.max_resets = 20;
        if (fv_http_server_new(&loop, NULL, http_handler, NULL, &srv) < 0)
            return 0;
        fv_http_server_set_h2(srv, factory, NULL);
    }
    if (size == 0)
        return 0;
    size_t piece = (size_t)data[0] * 7 % 4096 + 1;
    data++;
    size--;
    fv_buf_t out;
    fv_buf_init(&out, 1 << 22);
    fv_sock_t *s = fv__http_conn_new_detached(srv, &out);
    fv__sock_feed(s, preface, sizeof(preface) - 1);
    for (size_t off = 0; off < size; off += piece) {
        fv__sock_feed(s, (const char *)data + off, size - off < piece ? size - off : piece);
        out.len = 0;
    }
    fv__sock_drain(s);
    fv__http_conn_free_detached(s);
    fv_buf_dispose(&out);
    return 0;
}
