/* fuzz_ws_protocol.c - the WebSocket gateway's protocol decoder in both dialects: each input
 * line is one client message to a session (two sessions take turns, so resume and adoption
 * between them run too), with the module's real tables, channel rules, subscriptions and
 * history, and no socket (what would be sent is dropped). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "services/websocket-gateway/gateway.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wsg_settings_t set = {
        .allow_guests = true,
        .dev_token = "devsecret",
        .allowed_origins = "",
        .heartbeat_ms = 25000,
        .max_message_bytes = 65536,
        .max_subscriptions = 8,
        .max_pending = 4,
        .history_events = 4,
        .history_ms = 60000,
        .max_kept_sessions = 1,
    };
    wsg_t gw;
    memset(&gw, 0, sizeof(gw));
    gw.set = &set;
    gw.session_buckets = 8;
    gw.sessions = fv_calloc(gw.session_buckets, sizeof(*gw.sessions));
    gw.channel_buckets = 8;
    gw.channels = fv_calloc(gw.channel_buckets, sizeof(*gw.channels));

    wsg_session_t *s[2] = {wsg_session_new(&gw), wsg_session_new(&gw)};
    size_t start = 0;
    int turn = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        wsg_session_t *who = s[turn & 1];
        /* a resume may have freed a session: only ones still in the table are used */
        bool alive = false;
        for (size_t b = 0; b < gw.session_buckets; b++)
            for (wsg_session_t *x = gw.sessions[b]; x; x = x->next)
                alive |= x == who;
        if (alive)
            wsg_on_message(who, data + start, i - start);
        start = i + 1;
        turn++;
    }
    for (size_t b = 0; b < gw.session_buckets; b++)
        while (gw.sessions[b])
            wsg_session_free(gw.sessions[b]);
    fv_free(gw.sessions);
    fv_free(gw.channels);
    return 0;
}
