/* conn.c - WebSocket connections of the gateway: the upgrade (with the Origin policy), and the
 * driver's callbacks into the session. */
#include "services/websocket-gateway/gateway.h"

#include "core/log.h"

/* Origin against [websocket] allowed_origins: empty allows every Origin (the first web viewer
 * is a file opened from disk, whose Origin is "null"); otherwise an exact, case-insensitive
 * match with one of the listed ones. A client without an Origin (not a browser) is allowed:
 * the policy protects browsers' users from other sites, not the server from programs. */
static bool origin_allowed(const char *allowed, fv_slice_t origin)
{
    if (!allowed || !*allowed || !origin.ptr)
        return true;
    return fv_slice_list_has(fv_slice_cstr(allowed), origin, true);
}

void wsg_on_upgrade(fv_http_req_t *req, void *data)
{
    wsg_t *gw = data;
    if (!fv_http_req_is_upgrade(req)) {
        fv_http_reply_errorf(req, FV_ENOENT,
                             "no route for this path: port %d speaks WebSocket (GET with "
                             "Upgrade: websocket) besides /health, /info and /metrics",
                             fv_module_port(gw->ctx));
        return;
    }
    if (gw->stopping) {
        fv_http_reply_errorf(req, FV_EUNAVAILABLE, "the server is shutting down");
        return;
    }
    fv_slice_t origin = fv_http_req_header(req, "origin");
    if (!origin_allowed(gw->set->allowed_origins, origin)) {
        fv_log_info("websocket-gateway", "%s: Origin %.*s refused", fv_http_req_peer(req),
                    (int)(origin.len > 100 ? 100 : origin.len), origin.ptr);
        fv_http_reply_errorf(req, FV_EFORBIDDEN, "Origin not allowed");
        return;
    }
    wsg_session_t *s = wsg_session_new(gw);
    if (fv_slice_list_has(fv_http_req_header(req, "sec-websocket-protocol"),
                          FV_SLICE_LIT(WSG_STREAM_SUBPROTOCOL), false)) {
        fv_http_resp_header(req, "Sec-WebSocket-Protocol", WSG_STREAM_SUBPROTOCOL);
        s->stream_binary = true;
    }
    fv_error_t err;
    fv_ws_t *ws;
    if (fv_ws_accept(req, &gw->limits, &wsg_ws_handler, s, &ws, &err) < 0) {
        wsg_session_free(s);
        return;                 /* answered by fv_ws_accept */
    }
    s->ws = ws;
    gw->connected++;
}

static void on_message(fv_ws_t *ws, void *data, bool text, const uint8_t *msg, size_t len)
{
    (void)ws;
    wsg_session_t *s = data;
    if (!s)
        return;                 /* a connection whose session moved to a newer one */
    if (!text) {
        json_t *e = json_pack("{s:s,s:s,s:s}", "type", "error", "code", "invalid_argument",
                              "message", "binary frames are not part of this protocol");
        wsg_send_json(s, e);
        return;
    }
    wsg_on_message(s, msg, len);
}

static void on_writable(fv_ws_t *ws, void *data)
{
    wsg_session_t *s = data;
    if (!s)
        return;
    wsg_session_flush(s);
    if (s->stream_lost && s->npending == 0 && !fv_ws_output_full(ws) &&
        wsg_world_resync(s) == 0)
        s->stream_lost = false;
}

static void on_close(fv_ws_t *ws, void *data, unsigned code, const char *reason)
{
    (void)ws;
    wsg_session_t *s = data;
    if (!s)
        return;
    fv_log_debug("websocket-gateway", "session %s closed: %u %s", s->id, code, reason);
    s->ws = NULL;
    s->gw->connected--;
    wsg_session_away(s);
}

const fv_ws_handler_t wsg_ws_handler = {
    .on_message = on_message,
    .on_writable = on_writable,
    .on_close = on_close,
};
