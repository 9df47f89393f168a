/* gateway.h - the WebSocket gateway's parts: the module (module.c), connections and the
 * handshake (conn.c), the client protocol in its two dialects (protocol.c), sessions with their
 * history and their queue for slow readers (session.c), and the fan-out of bus events to the
 * channels clients subscribe to (fanout.c). docs/protocol.md is the client's view of it. */
#ifndef FV_WSG_GATEWAY_H
#define FV_WSG_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bus/bus.h"
#include "net/ws.h"
#include "runtime/module.h"

/* [websocket] in finalverse.toml */
typedef struct wsg_settings {
    bool allow_guests;
    char *dev_token;            /* "" = none; a token equal to it is the developer player */
    char *allowed_origins;      /* comma-separated; "" = any Origin, "null" included */
    uint32_t heartbeat_ms;      /* our keep-alive ping after this much quiet */
    size_t max_message_bytes;   /* a client message; larger: 1009 */
    uint32_t max_subscriptions; /* channels per session */
    uint32_t max_pending;       /* events held for a client that does not keep up; past: 1013 */
    uint32_t history_events;    /* per session, for resume */
    uint32_t history_ms;        /* ... and how long a history (and a dropped session) is kept */
    uint32_t max_kept_sessions; /* sessions kept for resume at once; past it the oldest go */
} wsg_settings_t;

typedef struct wsg wsg_t;
typedef struct wsg_session wsg_session_t;
typedef struct wsg_channel wsg_channel_t;

/* A sent event kept for resume, or a queued one for a slow reader. */
typedef struct wsg_held {
    uint64_t seq;
    uint64_t time_ms;           /* monotonic, for the history's age bound */
    fv_shared_t *body;       /* one reference */
    wsg_channel_t *channel;     /* for coalescing queued ones (pending only) */
    char *key;                  /* coalesce key, or NULL (pending only) */
} wsg_held_t;

typedef enum wsg_dialect {
    WSG_DIALECT_NONE,           /* no message yet: the first one picks */
    WSG_DIALECT_V1,             /* hello / welcome / event */
    WSG_DIALECT_LEGACY,         /* {type, data} of the first web viewer */
} wsg_dialect_t;

struct wsg_session {
    wsg_t *gw;
    fv_ws_t *ws;                /* NULL while the client is away (kept for resume) */
    wsg_session_t *next;        /* in the gateway's table */
    wsg_dialect_t dialect;
    bool welcomed;              /* hello (or connect) accepted */
    bool hello_pending;         /* the hello waits for the kv: is its token revoked? */
    bool token_cleared;         /* that answer was no: the hello goes on */
    char id[33];                /* 128 random bits in hex: knowing it is the right to resume */
    char player_id[40];
    char name[36];              /* a display name: 32 characters at most */
    bool guest;
    bool present;               /* its presence record is written (presence.c) */
    const char *region;         /* where the player is, for presence (a constant for now) */
    uint64_t seq;               /* of the last event given a number */
    wsg_channel_t **subs;       /* &sub_one while there is one */
    wsg_channel_t *sub_one;
    uint32_t nsubs;
    uint32_t moves_in_flight;   /* Move calls to the world engine not yet answered */
    bool stream_binary;         /* asked for finalverse.world3d.v1+proto: the world's stream
                                   comes as binary StreamMessage frames (stream_pb.c) */
    bool stream_lost;           /* a binary stream frame was dropped (slow socket): once the
                                   socket drains, the world is asked to send the view anew */
    wsg_held_t *hist;           /* ring of the last history_events sent */
    uint32_t hist_head;         /* index of the oldest */
    uint32_t hist_count;
    uint32_t hist_cap;          /* grows to history_events as events come */
    wsg_held_t *pending;        /* events not yet handed to the socket, oldest first */
    uint32_t npending;
    uint64_t away_since_ms;     /* when the client left; 0 while connected */
    wsg_session_t *away_prev;   /* in the gateway's list of kept sessions, oldest first */
    wsg_session_t *away_next;
};

struct wsg {
    fv_module_ctx_t *ctx;
    const wsg_settings_t *set;
    const char *jwt_secret;     /* auth.jwt_secret: checks the API gateway's access tokens */
    fv_ws_limits_t limits;
    /* sessions by id (chained) */
    wsg_session_t **sessions;
    size_t session_buckets;
    size_t session_count;
    size_t connected;
    wsg_session_t *away_head;   /* kept sessions, oldest first */
    wsg_session_t *away_tail;
    size_t away_count;
    /* channels with local subscribers, by client name (chained) */
    wsg_channel_t **channels;
    size_t channel_buckets;
    size_t channel_count;
    uv_timer_t sweep;           /* drops sessions away past history_ms */
    bool sweep_open;
    uint32_t presence_ticks;
    bool stopping;
    bool delivering;            /* inside a fan-out (fanout.c) */
    fv_module_closed_cb closed_cb;
    /* counters for /metrics */
    uint64_t events_in;
    uint64_t events_sent;
    uint64_t events_coalesced;
    uint64_t events_undecodable;
    uint64_t slow_closed;
    uint64_t stream_dropped;        /* binary stream frames dropped for slow sockets */
    /* Move calls in flight (move.c): let go of at close, so a late answer finds no gateway */
    struct wsg_move_call *move_calls;
    uint64_t resumed;
    uint64_t resume_misses;
};

/* conn.c */
void wsg_on_upgrade(fv_http_req_t *req, void *gw);
extern const fv_ws_handler_t wsg_ws_handler;

/* protocol.c */
void wsg_on_message(wsg_session_t *s, const uint8_t *msg, size_t len);
/* {"type":"error","id":id,"code":code,"message":...} (id left out when NULL); in the legacy
 * dialect {"type":"error","data":{"message":...}}. */
void wsg_send_error(wsg_session_t *s, json_t *id, int code, const char *fmt, ...)
    FV_PRINTF(4, 5);
/* Sends a JSON message (steals j); false when the connection cannot take it. */
bool wsg_send_json(wsg_session_t *s, json_t *j);
/* Whether name is a channel this session may subscribe to: 0, FV_EINVAL (malformed or
 * unknown kind) or FV_EFORBIDDEN (another player's channel, a group). msg says why. */
int wsg_channel_check(const char *name, const char *player_id, char *msg, size_t cap);

/* session.c */
wsg_session_t *wsg_session_new(wsg_t *gw);
wsg_session_t *wsg_session_find(wsg_t *gw, const char *id);
/* The client left: keep the session for resume (or drop it when it never said hello). */
void wsg_session_away(wsg_session_t *s);
void wsg_session_free(wsg_session_t *s);
/* A hello that resumes old (a session kept after its client left): the new connection of
 * fresh moves to old, fresh is freed, old is returned, with nothing queued. */
wsg_session_t *wsg_session_adopt(wsg_session_t *fresh, wsg_session_t *old);
/* Whether the history still holds every event after last_seq (false too for a number the
 * session never gave). */
bool wsg_session_can_replay(const wsg_session_t *s, uint64_t last_seq);
/* Re-sends every event of the history after last_seq, with its number. */
void wsg_session_replay(wsg_session_t *s, uint64_t last_seq);
/* Gives body the session's next sequence number and sends it, or holds it while the client
 * is behind (coalescing by key), or closes a client too far behind with 1013. */
void wsg_session_push(wsg_session_t *s, wsg_channel_t *ch, const char *key,
                      fv_shared_t *body);
/* The socket drained: send what was held back. */
void wsg_session_flush(wsg_session_t *s);
void wsg_sessions_sweep(wsg_t *gw, uint64_t now_ms);
/* Drops the longest-gone kept sessions past max_kept_sessions (deferred during a fan-out). */
void wsg_sessions_trim(wsg_t *gw);

/* move.c: `move` and the legacy `move_player`, through the world engine's Move call */
void wsg_move(wsg_session_t *s, json_t *m, json_t *id);
/* {"type":"resync"}: the world engine sends the player's view anew. */
void wsg_resync(wsg_session_t *s, json_t *m, json_t *id);
/* The session is gone for good: its player leaves the world (WorldService/Leave). */
void wsg_world_leave(wsg_session_t *s);
void wsg_send_ack(wsg_session_t *s, json_t *id);
/* Asks the world engine to send the player's view anew (no answer to the client). */
int wsg_world_resync(wsg_session_t *s);

/* stream_pb.c: the WebSocket subprotocol of the world's stream in binary */
#define WSG_STREAM_SUBPROTOCOL "finalverse.world3d.v1+proto"
/* Whether an event type is one of the world's stream (cell_enter, cell_leave, entities_delta). */
bool wsg_stream_event(const char *type, size_t len);
/* The stream event's JSON data as a packed finalverse.world3d.v1.StreamMessage (fv_malloc'd,
 * *len bytes). */
uint8_t *wsg_stream_pb(const char *type, json_t *data, size_t *len);
/* Sends one binary stream frame to s, or drops it when s is behind (marking stream_lost). */
void wsg_session_send_stream(wsg_session_t *s, const uint8_t *msg, size_t len);
void wsg_legacy_move(wsg_session_t *s, json_t *data);
/* The gateway closes: answers still to come are dropped when they arrive. */
void wsg_moves_orphan(wsg_t *gw);

/* presence.c */
#define PRESENCE_REFRESH_S 30           /* a gateway rewrites its players' records this often */
void wsg_presence_online(wsg_session_t *s);
void wsg_presence_offline(wsg_session_t *s);
/* Rewrites the records of every connected player (they expire otherwise). */
void wsg_presence_refresh(wsg_t *gw);
/* GET /presence?region=<id>: the players online there, from every gateway. */
void wsg_on_presence(fv_http_req_t *req, void *gw);

/* fanout.c */
/* Adds s to channel name (created when new): 0, FV_EEXIST (already), FV_ERATELIMIT (too many
 * for this session). */
int wsg_subscribe(wsg_session_t *s, const char *name);
int wsg_unsubscribe(wsg_session_t *s, const char *name);
void wsg_unsubscribe_all(wsg_session_t *s);
const char *wsg_channel_name(const wsg_channel_t *ch);
/* Bus delivery: one shared body per event for every local subscriber of its channel. */
void wsg_on_bus_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *gw);
/* The client channel a bus channel feeds ("region.x" -> "region:x"), into out; false when the
 * bus channel is none of the client kinds. */
bool wsg_channel_from_bus(const char *bus, size_t len, char *out, size_t cap);

/* Wall clock (what clients are told) and monotonic time (ages and timeouts), in ms. */
uint64_t wsg_now_ms(void);
uint64_t wsg_mono_ms(void);

#endif
