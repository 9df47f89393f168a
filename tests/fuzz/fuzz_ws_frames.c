/* fuzz_ws_frames.c - arbitrary bytes through the WebSocket driver after a real handshake, on a
 * connection without a socket: frame heads, masking, fragmentation, control frames, UTF-8,
 * limits and the close handshake. The first byte picks the feeding piece size. Messages are
 * echoed, so the send path runs too; "close" asks the server to close. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "net/http_internal.h"
#include "feed_pieces.h"
#include "net/ws.h"

static uv_loop_t loop;
static fv_http_server_t *server;
static fv_ws_limits_t limits;

static void on_message(fv_ws_t *ws, void *data, bool text, const uint8_t *msg, size_t len)
{
    (void)data;
    if (len == 5 && memcmp(msg, "close", 5) == 0) {
        fv_ws_close(ws, FV_WS_CLOSE_TRY_LATER, "asked");
        return;
    }
    if (fv_ws_send(ws, text, msg, len) < 0)
        fv_ws_close(ws, FV_WS_CLOSE_INTERNAL, "send failed");
}

static const fv_ws_handler_t handler = {.on_message = on_message};

static void on_request(fv_http_req_t *req, void *data)
{
    (void)data;
    fv_error_t err;
    (void)!fv_ws_accept(req, &limits, &handler, NULL, NULL, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) {
        uv_loop_init(&loop);
        fv_ws_limits_default(&limits);
        limits.max_frame_bytes = 4096;
        limits.max_message_bytes = 8192;
        limits.ping_interval_ms = 0;
        if (fv_http_server_new(&loop, NULL, on_request, NULL, &server) < 0)
            return 0;
    }
    if (size == 0)
        return 0;
    static const char hs[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: "
                             "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    fv_buf_t out;
    fv_buf_init(&out, 1 << 20);
    fv_sock_t *c = fv__http_conn_new_detached(server, &out);
    fv__http_conn_feed(c, hs, sizeof(hs) - 1);
    fuzz_feed_pieces(c, data, size);
    fv__http_conn_free_detached(c);
    fv_buf_dispose(&out);
    return 0;
}
