/* ws.c - the WebSocket driver: the handshake on the HTTP upgrade seam, frames in (reassembly,
 * control frames between fragments, UTF-8, limits), frames out (copied or shared), the close
 * handshake and the keep-alive ping. Wire details are ws_frame.c. */
#include "net/ws.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/sock.h"

typedef enum ws_state {
    WS_OPEN,        /* messages flow both ways */
    WS_ENDED,       /* a close frame went or came: nothing more is delivered or sent */
} ws_state_t;

struct fv_ws {
    fv_sock_t *sock;
    const fv_ws_limits_t *lim;      /* the caller's (it outlives the connection) or defaults */
    const fv_ws_handler_t *h;
    void *data;
    ws_state_t state;
    /* the frame being read */
    fv_ws_frame_t f;
    uint64_t frame_got;
    bool in_frame;
    /* the message being assembled (fragments) */
    bool in_msg;
    bool msg_text;
    struct ws_msg *msg;     /* while a message is assembled (an idle connection holds none) */
    uint8_t *ctl;           /* a control frame's payload while it is read (rare: not held) */
    size_t ctl_len;
    bool ping_out;          /* our keep-alive ping waits for any byte from the peer */
    bool reported;          /* on_close ran */
};

struct ws_msg {
    fv_buf_t buf;
    fv_utf8_t utf8;
};

static void msg_free(fv_ws_t *ws)
{
    if (!ws->msg)
        return;
    fv_buf_dispose(&ws->msg->buf);
    fv_free(ws->msg);
    ws->msg = NULL;
}

static size_t open_count;

void fv_ws_limits_default(fv_ws_limits_t *lim)
{
    lim->max_frame_bytes = 64 * 1024;
    lim->max_message_bytes = 64 * 1024;
    lim->ping_interval_ms = 25000;
    lim->pong_timeout_ms = 20000;
}

size_t fv_ws_open_count(void)
{
    return open_count;
}

/* ---- the end ---- */

static void report_close(fv_ws_t *ws, unsigned code, const char *reason)
{
    if (ws->reported)
        return;
    ws->reported = true;
    ws->state = WS_ENDED;
    if (ws->h->on_close)
        ws->h->on_close(ws, ws->data, code, reason);
}

/* Sends a close frame (code 0: an empty one), stops everything and ends the socket once the
 * frame is out; the peer's own close frame is read and dropped while the socket lingers. */
static void send_close(fv_ws_t *ws, unsigned code, const char *reason)
{
    if (ws->state != WS_OPEN)
        return;
    ws->state = WS_ENDED;
    uint8_t payload[FV_WS_MAX_CONTROL];
    size_t n = 0;
    if (code) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        n = 2;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > FV_WS_MAX_CONTROL - 2)
            rl = FV_WS_MAX_CONTROL - 2;    /* our reasons are ASCII: the cut stays UTF-8 */
        if (rl)
            memcpy(payload + 2, reason, rl);
        n += rl;
    }
    uint8_t head[FV_WS_MAX_HEAD];
    size_t hl = fv_ws_frame_write_head(head, FV_WS_OP_CLOSE, true, n);
    fv_sock_write_t *w = fv_sock_write_get(ws->sock);
    fv_buf_t *b = fv_sock_write_head(w);
    if (fv_buf_append(b, head, hl) < 0 || fv_buf_append(b, payload, n) < 0) {
        fv_sock_write_drop(ws->sock, w);
        fv_sock_close(ws->sock);
        return;
    }
    fv_sock_write_send(ws->sock, w, NULL, 0, NULL);
    fv_sock_end(ws->sock);
}

/* The peer broke the protocol: the RFC's code and a reason, to the peer and to the log. */
static void fail(fv_ws_t *ws, unsigned code, const char *reason)
{
    fv_log_info("ws", "%s: closing with %u: %s", fv_sock_peer(ws->sock), code, reason);
    send_close(ws, code, reason);
    report_close(ws, code, reason);
}

void fv_ws_close(fv_ws_t *ws, unsigned code, const char *reason)
{
    if (!ws || ws->state != WS_OPEN)
        return;
    send_close(ws, code, reason);
    report_close(ws, code, reason ? reason : "");
}

/* ---- sending ---- */

static int send_frame(fv_ws_t *ws, uint8_t op, const void *prefix, size_t plen,
                      const void *body, size_t blen, fv_shared_t *shared)
{
    if (ws->state != WS_OPEN || !fv_sock_is_open(ws->sock))
        return FV_ECANCELED;
    uint8_t head[FV_WS_MAX_HEAD];
    size_t hl = fv_ws_frame_write_head(head, op, true, plen + blen);
    fv_sock_write_t *w = fv_sock_write_get(ws->sock);
    fv_buf_t *b = fv_sock_write_head(w);
    int rc = fv_buf_append(b, head, hl);
    if (rc == 0 && plen)
        rc = fv_buf_append(b, prefix, plen);
    /* body is NULL exactly when shared carries it; saying so lets gcc -O3 see that memcpy
     * never gets NULL (it cannot tell from the callers alone, and -Werror=nonnull stops) */
    if (rc == 0 && blen && !shared && body)
        rc = fv_buf_append(b, body, blen);
    if (rc < 0) {
        fv_sock_write_drop(ws->sock, w);
        return rc;
    }
    if (shared) {
        fv_shared_ref(shared);
        fv_sock_write_send_shared(ws->sock, w, (const char *)fv_shared_data(shared),
                                  fv_shared_len(shared), fv_shared_release, shared);
    } else {
        fv_sock_write_send(ws->sock, w, NULL, 0, NULL);
    }
    return 0;
}

int fv_ws_send(fv_ws_t *ws, bool text, const void *msg, size_t len)
{
    return send_frame(ws, text ? FV_WS_OP_TEXT : FV_WS_OP_BINARY, NULL, 0, msg, len, NULL);
}

int fv_ws_send_shared(fv_ws_t *ws, const void *prefix, size_t prefix_len, fv_shared_t *body)
{
    /* the bytes are passed though a shared frame never copies them: with NULL, GCC 12 at -O3
     * sees the skipped copy after inlining and stops a Release build with -Wnonnull */
    return send_frame(ws, FV_WS_OP_TEXT, prefix, prefix_len, fv_shared_data(body),
                      fv_shared_len(body), body);
}

size_t fv_ws_output_bytes(const fv_ws_t *ws)
{
    return fv_sock_output_bytes(ws->sock);
}

bool fv_ws_output_full(const fv_ws_t *ws)
{
    return fv_sock_output_full(ws->sock);
}

void fv_ws_set_data(fv_ws_t *ws, void *data)
{
    ws->data = data;
}

const char *fv_ws_peer(fv_ws_t *ws)
{
    return fv_sock_peer(ws->sock);
}

uv_loop_t *fv_ws_loop(const fv_ws_t *ws)
{
    return fv_sock_loop(ws->sock);
}

/* ---- receiving ---- */

static void on_control(fv_ws_t *ws)
{
    switch (ws->f.opcode) {
    case FV_WS_OP_PING:
        if (send_frame(ws, FV_WS_OP_PONG, NULL, 0, ws->ctl, ws->ctl_len, NULL) < 0)
            fv_sock_close(ws->sock);
        return;
    case FV_WS_OP_PONG:
        return;                 /* any byte counts as alive; nothing else to do */
    case FV_WS_OP_CLOSE:
        break;
    }
    if (ws->ctl_len == 0) {
        /* a close without a code: answered with an empty one */
        send_close(ws, 0, NULL);
        report_close(ws, 1005, "");
        return;
    }
    if (ws->ctl_len == 1) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
        return;
    }
    unsigned code = (unsigned)ws->ctl[0] << 8 | ws->ctl[1];
    if (!fv_ws_close_code_ok(code)) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "invalid close code");
        return;
    }
    if (!fv_utf8_valid(ws->ctl + 2, ws->ctl_len - 2)) {
        fail(ws, FV_WS_CLOSE_BAD_DATA, "close reason is not UTF-8");
        return;
    }
    char reason[FV_WS_MAX_CONTROL];
    memcpy(reason, ws->ctl + 2, ws->ctl_len - 2);
    reason[ws->ctl_len - 2] = '\0';
    send_close(ws, code, NULL);     /* echo the code, as the RFC suggests */
    report_close(ws, code, reason);
}

/* Checks a new frame's head against the protocol and our limits; false when it failed. */
static bool frame_begin(fv_ws_t *ws)
{
    const fv_ws_frame_t *f = &ws->f;
    if (f->rsv) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "reserved bits set without an extension");
        return false;
    }
    if (!f->masked) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "client frames must be masked");
        return false;
    }
    if (f->opcode >= 0x8) {
        if (f->opcode > FV_WS_OP_PONG) {
            fail(ws, FV_WS_CLOSE_PROTOCOL, "reserved control opcode");
            return false;
        }
        if (!f->fin) {
            fail(ws, FV_WS_CLOSE_PROTOCOL, "fragmented control frame");
            return false;
        }
        if (f->len > FV_WS_MAX_CONTROL) {
            fail(ws, FV_WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
            return false;
        }
        ws->ctl_len = 0;
        if (!ws->ctl)
            ws->ctl = fv_malloc(FV_WS_MAX_CONTROL);
        return true;
    }
    if (f->opcode > FV_WS_OP_BINARY) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "reserved data opcode");
        return false;
    }
    if (f->opcode == FV_WS_OP_CONT && !ws->in_msg) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "continuation frame without a message");
        return false;
    }
    if (f->opcode != FV_WS_OP_CONT && ws->in_msg) {
        fail(ws, FV_WS_CLOSE_PROTOCOL, "new message before the last one ended");
        return false;
    }
    if (f->len > ws->lim->max_frame_bytes ||
        f->len > ws->lim->max_message_bytes - (ws->in_msg ? ws->msg->buf.len : 0)) {
        fail(ws, FV_WS_CLOSE_TOO_BIG, "message over the size limit");
        return false;
    }
    if (f->opcode != FV_WS_OP_CONT) {
        ws->in_msg = true;
        ws->msg_text = f->opcode == FV_WS_OP_TEXT;
        if (!ws->msg) {
            ws->msg = fv_calloc(1, sizeof(*ws->msg));
            fv_buf_init(&ws->msg->buf, ws->lim->max_message_bytes);
        }
    }
    return true;
}

/* Payload bytes of the current frame, unmasked where they belong. */
static bool frame_data(fv_ws_t *ws, const uint8_t *p, size_t n)
{
    if (ws->f.opcode >= 0x8) {
        fv_ws_unmask(ws->ctl + ws->ctl_len, p, n, ws->f.mask, ws->frame_got);
        ws->ctl_len += n;
        return true;
    }
    fv_buf_t *b = &ws->msg->buf;
    if (fv_buf_reserve(b, n) < 0) {
        fail(ws, FV_WS_CLOSE_INTERNAL, "out of memory");
        return false;
    }
    uint8_t *dst = (uint8_t *)b->ptr + b->len;
    fv_ws_unmask(dst, p, n, ws->f.mask, ws->frame_got);
    b->len += n;
    if (ws->msg_text && !fv_utf8_feed(&ws->msg->utf8, dst, n)) {
        fail(ws, FV_WS_CLOSE_BAD_DATA, "text message is not valid UTF-8");
        return false;
    }
    return true;
}

static void frame_end(fv_ws_t *ws)
{
    ws->in_frame = false;
    if (ws->f.opcode >= 0x8) {
        on_control(ws);
        fv_free(ws->ctl);
        ws->ctl = NULL;
        return;
    }
    if (!ws->f.fin)
        return;
    ws->in_msg = false;
    if (ws->msg_text && !fv_utf8_complete(&ws->msg->utf8)) {
        fail(ws, FV_WS_CLOSE_BAD_DATA, "text message ends inside a UTF-8 character");
        return;
    }
    ws->h->on_message(ws, ws->data, ws->msg_text, (const uint8_t *)ws->msg->buf.ptr,
                      ws->msg->buf.len);
    /* an idle connection keeps no message buffer */
    msg_free(ws);
}

static size_t ws_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    fv_ws_t *ws = state;
    const uint8_t *p = (const uint8_t *)data;
    size_t off = 0;
    ws->ping_out = false;
    if (ws->lim->ping_interval_ms)
        fv_sock_deadline(s, ws->lim->ping_interval_ms);
    while (off < len && ws->state == WS_OPEN && !fv_sock_output_full(s)) {
        if (!ws->in_frame) {
            int hl = fv_ws_frame_read_head(p + off, len - off, &ws->f);
            if (hl == 0)
                break;                  /* the rest of the head is still on its way */
            if (hl < 0) {
                fail(ws, FV_WS_CLOSE_PROTOCOL, "frame length with its top bit set");
                break;
            }
            off += (size_t)hl;
            if (!frame_begin(ws))
                break;
            ws->in_frame = true;
            ws->frame_got = 0;
            if (ws->f.len == 0)
                frame_end(ws);
            continue;
        }
        uint64_t left = ws->f.len - ws->frame_got;
        size_t n = left < len - off ? (size_t)left : len - off;
        if (!frame_data(ws, p + off, n))
            break;
        ws->frame_got += n;
        off += n;
        if (ws->frame_got == ws->f.len)
            frame_end(ws);
    }
    return ws->state == WS_OPEN ? off : len;
}

static void ws_writable(fv_sock_t *s, void *state)
{
    (void)s;
    fv_ws_t *ws = state;
    if (ws->state == WS_OPEN && ws->h->on_writable)
        ws->h->on_writable(ws, ws->data);
}

/* Quiet for ping_interval_ms: ping; still quiet pong_timeout_ms later: the peer is gone. */
static void ws_timeout(fv_sock_t *s, void *state)
{
    fv_ws_t *ws = state;
    if (ws->state != WS_OPEN) {
        fv_sock_close(s);
        return;
    }
    if (ws->ping_out) {
        fv_log_info("ws", "%s: no answer to a ping in %" PRIu32 " ms; closed", fv_sock_peer(s),
                    ws->lim->pong_timeout_ms);
        report_close(ws, 1006, "no answer to ping");
        fv_sock_close(s);
        return;
    }
    ws->ping_out = true;
    if (send_frame(ws, FV_WS_OP_PING, NULL, 0, NULL, 0, NULL) < 0) {
        fv_sock_close(s);
        return;
    }
    fv_sock_deadline(s, ws->lim->pong_timeout_ms);
}

static void ws_drain(fv_sock_t *s, void *state)
{
    (void)s;
    fv_ws_close(state, FV_WS_CLOSE_GOING_AWAY, "server shutting down");
}

static void ws_close(fv_sock_t *s, void *state)
{
    (void)s;
    fv_ws_t *ws = state;
    ws->state = WS_ENDED;
    report_close(ws, 1006, "connection lost");
}

static void ws_free(fv_sock_t *s, void *state)
{
    (void)s;
    fv_ws_t *ws = state;
    msg_free(ws);
    fv_free(ws->ctl);
    open_count--;
    fv_free(ws);
}

static const fv_sock_driver_t ws_driver = {
    .name = "ws",
    .on_data = ws_data,
    .on_writable = ws_writable,
    .on_timeout = ws_timeout,
    .on_drain = ws_drain,
    .on_close = ws_close,
    .on_free = ws_free,
};

/* ---- the handshake ---- */

/* A key is 16 random bytes in base64: 22 characters and "==". */
static bool key_ok(fv_slice_t k)
{
    if (k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char c = k.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

static int refuse(fv_http_req_t *req, fv_error_t *err, const char *msg)
{
    fv_error_set(err, FV_EINVAL, "%s", msg);
    fv_http_reply_errorf(req, FV_EINVAL, "%s", msg);
    return FV_EINVAL;
}

int fv_ws_accept(fv_http_req_t *req, const fv_ws_limits_t *lim, const fv_ws_handler_t *h,
                 void *data, fv_ws_t **out, fv_error_t *err)
{
    if (out)
        *out = NULL;
    fv_slice_t m = fv_http_req_method(req);
    if (m.len != 3 || memcmp(m.ptr, "GET", 3) != 0)
        return refuse(req, err, "a WebSocket handshake is a GET request");
    if (fv_http_req_minor(req) < 1)
        return refuse(req, err, "a WebSocket handshake needs HTTP/1.1");
    fv_slice_t upgrade = fv_http_req_header(req, "upgrade");
    fv_slice_t connection = fv_http_req_header(req, "connection");
    if (!fv_slice_list_has(upgrade, FV_SLICE_LIT("websocket"), true) ||
        !fv_slice_list_has(connection, FV_SLICE_LIT("upgrade"), true))
        return refuse(req, err,
                      "not a WebSocket handshake: Upgrade: websocket and Connection: upgrade "
                      "are required");
    fv_slice_t ver = fv_http_req_header(req, "sec-websocket-version");
    if (ver.len != 2 || memcmp(ver.ptr, "13", 2) != 0) {
        fv_error_set(err, FV_EINVAL, "WebSocket version 13 is the one supported");
        fv_http_resp_header(req, "Sec-WebSocket-Version", "13");
        json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", "invalid_argument", "message",
                              err->msg);
        fv_http_reply_json(req, 426, j);
        return FV_EINVAL;
    }
    fv_slice_t key = fv_http_req_header(req, "sec-websocket-key");
    if (!key_ok(key))
        return refuse(req, err, "Sec-WebSocket-Key must be 16 bytes in base64");
    if (!h || !h->on_message)
        return refuse(req, err, "no WebSocket handler");

    char accept[29];
    fv_ws_accept_key(key.ptr, key.len, accept);
    char extra[96];
    snprintf(extra, sizeof(extra), "Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n", accept);

    fv_ws_t *ws = fv_calloc(1, sizeof(*ws));
    static fv_ws_limits_t defaults;
    if (!defaults.max_message_bytes)
        fv_ws_limits_default(&defaults);
    ws->lim = lim ? lim : &defaults;
    ws->h = h;
    ws->data = data;
    /* the socket is needed before the switch, for the driver's first bytes */
    ws->sock = fv_http_req_sock(req);
    int rc = ws->sock ? fv_http_upgrade(req, extra, &ws_driver, ws) : FV_EINVAL;
    if (rc < 0) {
        fv_free(ws);
        fv_error_set(err, FV_EUNAVAILABLE, "the connection is ending");
        fv_http_reply_errorf(req, FV_EUNAVAILABLE, "the server is shutting down");
        return FV_EUNAVAILABLE;
    }
    open_count++;
    if (ws->lim->ping_interval_ms)
        fv_sock_deadline(ws->sock, ws->lim->ping_interval_ms);
    if (out)
        *out = ws;
    return 0;
}
