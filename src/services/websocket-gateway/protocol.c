/* protocol.c - the client protocol (docs/protocol.md) in its two dialects. The first message
 * picks one: {"type":"connect","data":{...}} the legacy envelope of the first web viewer,
 * anything else ours (hello first). Each dialect is one table of message types; a type whose
 * module has not arrived answers that it is not implemented, so a later issue adds a row's
 * handler and nothing else. Bad messages get an error and the connection stays open; only
 * protocol violations (and a refused sign-in) close it. */
#include "services/websocket-gateway/gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/log.h"
#include "core/time.h"
#include "core/token.h"
#include "store/stores.h"
#include "store/kv.h"

#define MAX_CHANNELS_PER_MESSAGE 64
#define MAX_CHANNEL_NAME 100

/* Where a player appears (the world engine's spawn point) until their first move. */
#define SPAWN_REGION "terra-nova"
#define SPAWN_X 512.0
#define SPAWN_Z 512.0

bool wsg_send_json(wsg_session_t *s, json_t *j)
{
    if (!j || !s->ws) {
        json_decref(j);
        return false;
    }
    /* most answers are small: formatted on the stack, without an allocation */
    char small[2048];
    size_t n = json_dumpb(j, small, sizeof(small), JSON_COMPACT);
    int rc;
    if (n > 0 && n <= sizeof(small)) {
        rc = fv_ws_send(s->ws, true, small, n);
    } else {
        char *text = json_dumps(j, JSON_COMPACT);
        rc = text ? fv_ws_send(s->ws, true, text, strlen(text)) : FV_ENOMEM;
        free(text);
    }
    json_decref(j);
    return rc == 0;
}

void wsg_send_error(wsg_session_t *s, json_t *id, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->dialect == WSG_DIALECT_LEGACY) {
        wsg_send_json(s, json_pack("{s:s,s:{s:s}}", "type", "error", "data", "message", msg));
        return;
    }
    json_t *e = json_pack("{s:s,s:s,s:s}", "type", "error", "code", fv_err_name(code),
                          "message", msg);
    if (e && id)
        json_object_set(e, "id", id);
    wsg_send_json(s, e);
}

void wsg_send_ack(wsg_session_t *s, json_t *id)
{
    json_t *a = json_pack("{s:s}", "type", "ack");
    if (a && id)
        json_object_set(a, "id", id);
    wsg_send_json(s, a);
}

int wsg_channel_check(const char *name, const char *player_id, char *msg, size_t cap)
{
    const char *colon = strchr(name, ':');
    size_t len = strlen(name);
    if (!colon || len > MAX_CHANNEL_NAME || colon[1] == '\0') {
        snprintf(msg, cap, "channel '%.100s' is not kind:name", name);
        return FV_EINVAL;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            snprintf(msg, cap, "channel '%.100s': names use letters, digits, '-', '_', '.'",
                     name);
            return FV_EINVAL;
        }
    }
    size_t kl = (size_t)(colon - name);
    if (kl == 6 && memcmp(name, "region", 6) == 0)
        return 0;
    if (kl == 4 && memcmp(name, "chat", 4) == 0)
        return 0;
    if (kl == 6 && memcmp(name, "player", 6) == 0) {
        if (strcmp(colon + 1, player_id) == 0)
            return 0;
        snprintf(msg, cap, "channel '%.100s' belongs to another player", name);
        return FV_EFORBIDDEN;
    }
    if (kl == 5 && memcmp(name, "group", 5) == 0) {
        /* membership lives with the community service, which has not arrived */
        snprintf(msg, cap, "channel '%.100s': group membership cannot be checked yet", name);
        return FV_EFORBIDDEN;
    }
    snprintf(msg, cap, "channel '%.100s': kinds are region, player, group and chat", name);
    return FV_EINVAL;
}

static uint64_t server_time(void)
{
    return wsg_now_ms();
}

/* ---- sign-in ---- */

/* Who the hello (or connect) signs in as: 0, or FV_EUNAUTH with msg. An access token's id
 * goes to jti (33 bytes; "" for none), for the revocation check. */
static int sign_in(wsg_session_t *s, const char *token, const char *name, char *jti, char *msg,
                   size_t cap)
{
    jti[0] = '\0';
    const wsg_settings_t *set = s->gw->set;
    s->region = SPAWN_REGION;
    if (token) {
        size_t tl = strlen(token), dl = strlen(set->dev_token);
        if (dl && tl == dl && sodium_memcmp(token, set->dev_token, dl) == 0) {
            snprintf(s->player_id, sizeof(s->player_id), "dev");
            snprintf(s->name, sizeof(s->name), "Developer");
            s->guest = false;
            return 0;
        }
        /* an access token from the API gateway: the player and guest flag are its claims */
        fv_token_claims_t claims;
        if (fv_token_verify(s->gw->jwt_secret, token, (int64_t)(fv_wall_ms() / 1000),
                            &claims) == 0 &&
            strlen(claims.sub) < sizeof(s->player_id) && strlen(claims.name) < sizeof(s->name)) {
            memcpy(s->player_id, claims.sub, strlen(claims.sub) + 1);
            memcpy(s->name, claims.name, strlen(claims.name) + 1);
            s->guest = claims.guest;
            memcpy(jti, claims.jti, sizeof(claims.jti));
            return 0;
        }
        snprintf(msg, cap, "invalid or expired token");
        return FV_EUNAUTH;
    }
    if (!set->allow_guests) {
        snprintf(msg, cap, "a token is required (guests are not allowed here)");
        return FV_EUNAUTH;
    }
    char hex[17];
    fv_id_random_hex(hex, 8);
    snprintf(s->player_id, sizeof(s->player_id), "guest-%s", hex);
    bool name_ok = name && *name && strlen(name) <= 32;
    for (const char *p = name; name_ok && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            name_ok = false;
    if (name_ok)
        snprintf(s->name, sizeof(s->name), "%s", name);
    else
        snprintf(s->name, sizeof(s->name), "Guest-%.4s", hex);
    s->guest = true;
    return 0;
}

static json_t *subscriptions_json(const wsg_session_t *s)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < s->nsubs; i++)
        json_array_append_new(a, json_string(wsg_channel_name(s->subs[i])));
    return a;
}

static void send_welcome(wsg_session_t *s, json_t *id, int resumed)
{
    json_t *w = json_pack("{s:s,s:s,s:I,s:i,s:{s:s,s:s,s:b,s:s,s:{s:f,s:f,s:f}},s:o}", "type",
                          "welcome", "session_id", s->id, "server_time",
                          (json_int_t)server_time(), "heartbeat_ms",
                          (int)s->gw->set->heartbeat_ms, "player", "id", s->player_id, "name",
                          s->name, "guest", s->guest, "region", SPAWN_REGION, "position", "x",
                          SPAWN_X, "y", 0.0, "z", SPAWN_Z, "subscriptions",
                          subscriptions_json(s));
    if (w && id)
        json_object_set(w, "id", id);
    if (w && resumed >= 0) {
        json_object_set_new(w, "resumed", json_boolean(resumed));
        json_object_set_new(w, "last_seq", json_integer((json_int_t)s->seq));
    }
    wsg_send_json(s, w);
}

static void refuse_sign_in(wsg_session_t *s, json_t *id, const char *msg)
{
    wsg_send_error(s, id, FV_EUNAUTH, "%s", msg);
    fv_ws_close(s->ws, FV_WS_CLOSE_POLICY, "unauthenticated");
}

/* ---- our dialect ---- */

static void on_hello(wsg_session_t *s, json_t *m, json_t *id);

/* A hello whose token the kv is asked about: the session is found again by id when the
 * answer comes (it may have gone meanwhile; an unwelcomed session is freed when it closes). */
typedef struct revocation_check {
    wsg_t *gw;
    char sid[33];
    json_t *m, *id;
} revocation_check_t;

static void on_revocation(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    revocation_check_t *c = data;
    wsg_session_t *s = wsg_session_find(c->gw, c->sid);
    if (s && s->hello_pending && s->ws) {
        s->hello_pending = false;
        if (status == 0 && reply && reply->type != FV_KV_NIL) {
            refuse_sign_in(s, c->id, "the token was revoked (logged out)");
        } else {
            /* no such mark, or a kv store that failed: as the API gateway does, the door
             * stays open rather than shut everyone out while the store is down */
            if (status < 0 && status != FV_ECANCELED)
                fv_log_debug("websocket-gateway", "revocation check: kv: %s",
                             fv_strerror(status));
            s->token_cleared = true;
            on_hello(s, c->m, c->id);
            s->token_cleared = false;
        }
    }
    json_decref(c->m);
    json_decref(c->id);
    fv_free(c);
}

/* Asks the kv whether access token jti is revoked; true: the hello goes on in on_revocation. */
static bool check_revocation(wsg_session_t *s, json_t *m, json_t *id, const char *jti)
{
    fv_stores_t *stores = fv_module_stores(s->gw->ctx);
    fv_kv_t *kv = stores ? fv_stores_kv(stores) : NULL;
    if (!kv)
        return false;
    char key[FV_TOKEN_REVOKED_KEY_MAX];
    snprintf(key, sizeof(key), FV_TOKEN_REVOKED_KEY_FMT, jti);
    revocation_check_t *c = fv_calloc(1, sizeof(*c));
    c->gw = s->gw;
    memcpy(c->sid, s->id, sizeof(c->sid));
    c->m = json_incref(m);
    c->id = json_incref(id);
    if (fv_kv_get(kv, fv_slice_cstr(key), on_revocation, c) < 0) {
        json_decref(c->m);
        json_decref(c->id);
        fv_free(c);
        return false;
    }
    s->hello_pending = true;
    return true;
}

static void on_hello(wsg_session_t *s, json_t *m, json_t *id)
{
    if (s->welcomed || s->hello_pending) {
        wsg_send_error(s, id, FV_EINVAL, "hello was said already");
        return;
    }
    json_t *tok = json_object_get(m, "token");
    if (tok && !json_is_string(tok) && !json_is_null(tok)) {
        wsg_send_error(s, id, FV_EINVAL, "token must be a string");
        return;
    }
    char msg[160], jti[33];
    if (sign_in(s, json_string_value(tok), json_string_value(json_object_get(m, "name")), jti,
                msg, sizeof(msg)) < 0) {
        refuse_sign_in(s, id, msg);
        return;
    }
    if (jti[0] && !s->token_cleared && check_revocation(s, m, id, jti))
        return;
    json_t *resume = json_object_get(m, "resume");
    if (resume) {
        const char *sid = json_string_value(json_object_get(resume, "session_id"));
        json_t *ls = json_object_get(resume, "last_seq");
        if (!sid || !json_is_integer(ls) || json_integer_value(ls) < 0) {
            wsg_send_error(s, id, FV_EINVAL,
                       "resume needs session_id (string) and last_seq (integer >= 0)");
            return;
        }
        wsg_session_t *old = wsg_session_find(s->gw, sid);
        /* a guest session is resumed by whoever knows its 128-bit id; a player's only by
         * the same player */
        if (old && old != s && old->welcomed && (old->guest || strcmp(old->player_id,
                                                                       s->player_id) == 0)) {
            s = wsg_session_adopt(s, old);
            s->welcomed = true;
            bool whole = wsg_session_can_replay(s, (uint64_t)json_integer_value(ls));
            send_welcome(s, id, whole);
            wsg_presence_online(s);
            if (whole) {
                s->gw->resumed++;
                wsg_session_replay(s, (uint64_t)json_integer_value(ls));
            } else {
                s->gw->resume_misses++;
            }
            return;
        }
        s->gw->resume_misses++;
    }
    s->welcomed = true;
    s->dialect = WSG_DIALECT_V1;
    char own[96];
    snprintf(own, sizeof(own), "player:%s", s->player_id);
    (void)wsg_subscribe(s, own);
    send_welcome(s, id, resume ? 0 : -1);
    wsg_presence_online(s);
}

/* subscribe / unsubscribe {id, channels: [...]}: all or nothing, answered with one ack. */
static void on_subscription(wsg_session_t *s, json_t *m, json_t *id, bool add)
{
    json_t *chs = json_object_get(m, "channels");
    size_t n = json_array_size(chs);
    if (!json_is_array(chs) || n == 0 || n > MAX_CHANNELS_PER_MESSAGE) {
        wsg_send_error(s, id, FV_EINVAL, "channels must be an array of 1 to %d names",
                   MAX_CHANNELS_PER_MESSAGE);
        return;
    }
    char msg[200];
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(chs, i));
        if (!name) {
            wsg_send_error(s, id, FV_EINVAL, "channels[%zu] is not a string", i);
            return;
        }
        int rc = wsg_channel_check(name, s->player_id, msg, sizeof(msg));
        if (rc < 0) {
            wsg_send_error(s, id, rc, "%s", msg);
            return;
        }
    }
    if (add && s->nsubs + n > s->gw->set->max_subscriptions) {
        wsg_send_error(s, id, FV_ERATELIMIT, "at most %u subscriptions per session",
                   s->gw->set->max_subscriptions);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(chs, i));
        char own[96];
        snprintf(own, sizeof(own), "player:%s", s->player_id);
        if (!add && strcmp(name, own) == 0)
            continue;               /* one's own channel is always on */
        if (add)
            (void)wsg_subscribe(s, name);       /* FV_EEXIST: already, fine */
        else
            (void)wsg_unsubscribe(s, name);
    }
    wsg_send_ack(s, id);
}

static void on_ping(wsg_session_t *s, json_t *m, json_t *id)
{
    (void)m;
    json_t *p = json_pack("{s:s,s:I}", "type", "pong", "server_time",
                          (json_int_t)server_time());
    if (p && id)
        json_object_set(p, "id", id);
    wsg_send_json(s, p);
}

typedef struct v1_row {
    const char *type;
    void (*fn)(wsg_session_t *s, json_t *m, json_t *id);
    const char *owner;              /* without fn: the module the action waits for */
} v1_row_t;

static void on_subscribe(wsg_session_t *s, json_t *m, json_t *id)
{
    on_subscription(s, m, id, true);
}

static void on_unsubscribe(wsg_session_t *s, json_t *m, json_t *id)
{
    on_subscription(s, m, id, false);
}

static const v1_row_t v1_rows[] = {
    {"hello", on_hello, NULL},
    {"subscribe", on_subscribe, NULL},
    {"unsubscribe", on_unsubscribe, NULL},
    {"ping", on_ping, NULL},
    {"move", wsg_move, NULL},
    {"resync", wsg_resync, NULL},
    {"perform", NULL, "song-engine"},
    {"chat", NULL, "community"},
    {"interact", NULL, "echo-engine"},
};

static void v1_message(wsg_session_t *s, json_t *m, const char *type, json_t *id)
{
    for (size_t i = 0; i < sizeof(v1_rows) / sizeof(v1_rows[0]); i++) {
        const v1_row_t *r = &v1_rows[i];
        if (strcmp(r->type, type) != 0)
            continue;
        if (!s->welcomed && r->fn != on_hello) {
            wsg_send_error(s, id, FV_EUNAUTH, "say hello first");
            return;
        }
        if (!r->fn) {
            wsg_send_error(s, id, FV_EUNIMPLEMENTED, "'%s' arrives with the %s service", type,
                       r->owner);
            return;
        }
        r->fn(s, m, id);
        return;
    }
    wsg_send_error(s, id, FV_EINVAL, "unknown message type '%.64s'", type);
}

/* ---- the legacy dialect: {type, data} ---- */

static void legacy_connect(wsg_session_t *s, json_t *data)
{
    if (s->welcomed) {
        wsg_send_error(s, NULL, FV_EINVAL, "already connected");
        return;
    }
    char msg[160];
    char no_jti[33];
    if (sign_in(s, NULL, json_string_value(json_object_get(data, "name")), no_jti, msg,
                sizeof(msg)) < 0) {
        wsg_send_error(s, NULL, FV_EUNAUTH, "%s", msg);
        fv_ws_close(s->ws, FV_WS_CLOSE_POLICY, "unauthenticated");
        return;
    }
    s->welcomed = true;
    char own[96];
    snprintf(own, sizeof(own), "player:%s", s->player_id);
    (void)wsg_subscribe(s, own);
    wsg_send_json(s, json_pack("{s:s,s:{s:s}}", "type", "player_assigned", "data", "player_id",
                               s->player_id));
    wsg_presence_online(s);
}

static void legacy_ping(wsg_session_t *s, json_t *data)
{
    json_t *ts = json_object_get(data, "timestamp");
    json_t *p = json_pack("{s:s,s:{s:O?,s:I}}", "type", "pong", "data", "timestamp", ts,
                          "server_time", (json_int_t)server_time());
    wsg_send_json(s, p);
}

static void legacy_subscribe_regions(wsg_session_t *s, json_t *data)
{
    json_t *regions = json_object_get(data, "regions");
    size_t n = json_array_size(regions);
    if (!json_is_array(regions) || n == 0 || n > MAX_CHANNELS_PER_MESSAGE) {
        wsg_send_error(s, NULL, FV_EINVAL, "regions must be an array of 1 to %d names",
                   MAX_CHANNELS_PER_MESSAGE);
        return;
    }
    char name[MAX_CHANNEL_NAME + 16], msg[200];
    for (size_t i = 0; i < n; i++) {
        const char *r = json_string_value(json_array_get(regions, i));
        snprintf(name, sizeof(name), "region:%s", r ? r : "");
        int rc = r ? wsg_channel_check(name, s->player_id, msg, sizeof(msg)) : FV_EINVAL;
        if (rc < 0) {
            wsg_send_error(s, NULL, rc, "region %zu: %s", i, r ? msg : "not a string");
            return;
        }
    }
    if (s->nsubs + n > s->gw->set->max_subscriptions) {
        wsg_send_error(s, NULL, FV_ERATELIMIT, "at most %u subscriptions",
                   s->gw->set->max_subscriptions);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "region:%s", json_string_value(json_array_get(regions, i)));
        (void)wsg_subscribe(s, name);
    }
    wsg_send_json(s, json_pack("{s:s,s:{s:O}}", "type", "region_subscribed", "data", "regions",
                               regions));
}

typedef struct legacy_row {
    const char *type;
    void (*fn)(wsg_session_t *s, json_t *data);
    const char *owner;
} legacy_row_t;

static const legacy_row_t legacy_rows[] = {
    {"connect", legacy_connect, NULL},
    {"ping", legacy_ping, NULL},
    {"subscribe_regions", legacy_subscribe_regions, NULL},
    {"move_player", wsg_legacy_move, NULL},
    {"perform_melody", NULL, "song engine"},
    {"interact_echo", NULL, "echo engine"},
};

static void legacy_message(wsg_session_t *s, json_t *m, const char *type)
{
    json_t *data = json_object_get(m, "data");
    for (size_t i = 0; i < sizeof(legacy_rows) / sizeof(legacy_rows[0]); i++) {
        const legacy_row_t *r = &legacy_rows[i];
        if (strcmp(r->type, type) != 0)
            continue;
        if (!s->welcomed && r->fn != legacy_connect) {
            wsg_send_error(s, NULL, FV_EUNAUTH, "send connect first");
            return;
        }
        if (!r->fn) {
            wsg_send_error(s, NULL, FV_EUNIMPLEMENTED, "%s arrives with the %s", type, r->owner);
            return;
        }
        r->fn(s, data);
        return;
    }
    wsg_send_error(s, NULL, FV_EINVAL, "unknown message type '%.64s'", type);
}

/* ---- entry ---- */

void wsg_on_message(wsg_session_t *s, const uint8_t *msg, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!m) {
        wsg_send_error(s, NULL, FV_EINVAL, "malformed JSON at line %d column %d: %s", jerr.line,
                   jerr.column, jerr.text);
        return;
    }
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *id = json_object_get(m, "id");
    if (!json_is_object(m) || !type) {
        wsg_send_error(s, id, FV_EINVAL, "a message is a JSON object with a string \"type\"");
        json_decref(m);
        return;
    }
    if (s->dialect == WSG_DIALECT_NONE)
        s->dialect = strcmp(type, "connect") == 0 && json_is_object(json_object_get(m, "data"))
                         ? WSG_DIALECT_LEGACY
                         : WSG_DIALECT_V1;
    if (s->dialect == WSG_DIALECT_LEGACY)
        legacy_message(s, m, type);
    else
        v1_message(s, m, type, id);
    json_decref(m);
}
