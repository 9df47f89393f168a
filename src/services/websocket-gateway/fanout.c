/* fanout.c - channels and the fan-out of bus events to them.
 *
 * The gateway subscribes to the bus once per channel kind ("region.*", ...), whatever its
 * clients subscribe to; a client channel exists here while some local session is subscribed,
 * so an event for a channel nobody here watches costs one hash lookup. An event is turned into
 * JSON once, into one shared body that every subscriber's frame references; each session puts
 * its own sequence number in front. */
#include "services/websocket-gateway/gateway.h"

#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/log.h"
#include "rpc/pb_json.h"

struct wsg_channel {
    wsg_channel_t *next;            /* in its bucket */
    wsg_session_t **subs;           /* &one until a second subscriber comes */
    wsg_session_t *one;             /* most channels (a player's own) have one subscriber */
    uint32_t count;
    uint32_t cap;
    bool delivering;                /* a fan-out walks subs: not freed while it does */
    char name[];
};

static size_t bucket_of(const wsg_t *gw, const char *name, size_t len)
{
    return (size_t)(fv_fnv1a(FV_FNV1A_SEED, name, len) % gw->channel_buckets);
}

static wsg_channel_t *find(const wsg_t *gw, const char *name, size_t len)
{
    for (wsg_channel_t *c = gw->channels[bucket_of(gw, name, len)]; c; c = c->next)
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    return NULL;
}

const char *wsg_channel_name(const wsg_channel_t *ch)
{
    return ch->name;
}

static void channel_free_if_empty(wsg_t *gw, wsg_channel_t *ch)
{
    if (ch->count || ch->delivering)
        return;
    wsg_channel_t **pp = &gw->channels[bucket_of(gw, ch->name, strlen(ch->name))];
    while (*pp && *pp != ch)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ch->next;
    gw->channel_count--;
    if (ch->subs != &ch->one)
        fv_free(ch->subs);
    fv_free(ch);
}

/* As for sessions: the table grows fourfold past two channels a bucket. */
static void channels_grow(wsg_t *gw)
{
    size_t old_n = gw->channel_buckets;
    wsg_channel_t **old = gw->channels;
    gw->channel_buckets = old_n * 4;
    gw->channels = fv_calloc(gw->channel_buckets, sizeof(*gw->channels));
    for (size_t i = 0; i < old_n; i++) {
        while (old[i]) {
            wsg_channel_t *c = old[i];
            old[i] = c->next;
            size_t b = bucket_of(gw, c->name, strlen(c->name));
            c->next = gw->channels[b];
            gw->channels[b] = c;
        }
    }
    fv_free(old);
}

int wsg_subscribe(wsg_session_t *s, const char *name)
{
    wsg_t *gw = s->gw;
    for (uint32_t i = 0; i < s->nsubs; i++)
        if (strcmp(s->subs[i]->name, name) == 0)
            return FV_EEXIST;
    if (s->nsubs >= gw->set->max_subscriptions)
        return FV_ERATELIMIT;
    size_t len = strlen(name);
    wsg_channel_t *ch = find(gw, name, len);
    if (!ch) {
        if (gw->channel_count >= 2 * gw->channel_buckets)
            channels_grow(gw);
        ch = fv_calloc(1, sizeof(*ch) + len + 1);
        memcpy(ch->name, name, len + 1);
        ch->subs = &ch->one;
        ch->cap = 1;
        size_t b = bucket_of(gw, name, len);
        ch->next = gw->channels[b];
        gw->channels[b] = ch;
        gw->channel_count++;
    }
    if (ch->count == ch->cap) {
        ch->cap *= 2;
        if (ch->subs == &ch->one) {
            ch->subs = fv_malloc(ch->cap * sizeof(*ch->subs));
            ch->subs[0] = ch->one;
        } else {
            ch->subs = fv_realloc(ch->subs, ch->cap * sizeof(*ch->subs));
        }
    }
    ch->subs[ch->count++] = s;
    /* the session's list: its own channel in place, an array from the second on */
    if (s->nsubs == 0) {
        if (s->subs != &s->sub_one)
            fv_free(s->subs);           /* all unsubscribed earlier: start small again */
        s->subs = &s->sub_one;
    } else if ((s->nsubs & (s->nsubs - 1)) == 0) {
        size_t cap = (size_t)s->nsubs * 2;
        if (s->subs == &s->sub_one) {
            s->subs = fv_malloc(cap * sizeof(*s->subs));
            s->subs[0] = s->sub_one;
        } else {
            s->subs = fv_realloc(s->subs, cap * sizeof(*s->subs));
        }
    }
    s->subs[s->nsubs++] = ch;
    return 0;
}

static void remove_at(wsg_session_t *s, uint32_t i)
{
    wsg_channel_t *ch = s->subs[i];
    s->subs[i] = s->subs[--s->nsubs];
    for (uint32_t k = 0; k < ch->count; k++) {
        if (ch->subs[k] == s) {
            /* the last one moves here: a fan-out walking backwards has already passed it */
            ch->subs[k] = ch->subs[--ch->count];
            break;
        }
    }
    channel_free_if_empty(s->gw, ch);
}

int wsg_unsubscribe(wsg_session_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->nsubs; i++) {
        if (strcmp(s->subs[i]->name, name) == 0) {
            remove_at(s, i);
            return 0;
        }
    }
    return FV_ENOENT;
}

void wsg_unsubscribe_all(wsg_session_t *s)
{
    while (s->nsubs)
        remove_at(s, s->nsubs - 1);
    if (s->subs != &s->sub_one)
        fv_free(s->subs);
    s->subs = NULL;
}

/* ---- bus events ---- */

static const char *const kinds[] = {"region", "player", "group", "chat"};

bool wsg_channel_from_bus(const char *bus, size_t len, char *out, size_t cap)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t kl = strlen(kinds[i]);
        if (len > kl + 1 && memcmp(bus, kinds[i], kl) == 0 && bus[kl] == '.' && len < cap) {
            memcpy(out, bus, len);
            out[kl] = ':';
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

/* The event's payload as JSON: decoded by its type's message of proto/events.proto, else taken
 * as JSON text when it is that, else null (and counted: someone publishes what no client can
 * read). */
static json_t *payload_json(wsg_t *gw, const fv_bus_event_t *ev)
{
    const ProtobufCMessageDescriptor *d = fv_event_descriptor(ev->type.ptr, ev->type.len);
    if (d) {
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, ev->payload.len,
                                                        (const uint8_t *)ev->payload.ptr);
        if (m) {
            json_t *j = fv_pb_to_json(m);
            protobuf_c_message_free_unpacked(m, NULL);
            return j;
        }
    } else {
        json_t *j = json_loadb(ev->payload.ptr, ev->payload.len, JSON_DECODE_ANY, NULL);
        if (j)
            return j;
    }
    gw->events_undecodable++;
    fv_log_debug("websocket-gateway", "event %.*s on %.*s: payload does not decode",
                 (int)ev->type.len, ev->type.ptr, (int)ev->channel.len, ev->channel.ptr);
    return json_null();
}

/* The shared body: the event object without its opening brace, which each session's own
 * prefix ({"type":"event","seq":N,) supplies. */
static fv_shared_t *v1_body(const char *channel, const fv_bus_event_t *ev, json_t *data)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "channel", json_string(channel));
    json_object_set_new(o, "event", json_stringn(ev->type.ptr, ev->type.len));
    json_object_set_new(o, "time_ms", json_integer((json_int_t)ev->time_ms));
    json_object_set(o, "data", data);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return NULL;
    fv_shared_t *sh = fv_shared_new(text + 1, strlen(text + 1));
    free(text);
    return sh;
}

/* What the first web viewer understands of an event, whole (it has no sequence numbers), or
 * NULL: one row per event it knows. */
static fv_shared_t *legacy_body(const fv_bus_event_t *ev, json_t *data)
{
    json_t *out = NULL;
    if (ev->type.len == 14 && memcmp(ev->type.ptr, "song.performed", 14) == 0) {
        json_t *at = json_object_get(json_object_get(data, "position"), "at");
        out = json_pack("{s:s,s:{s:O?,s:O?,s:O?,s:O?,s:O?}}", "type", "melody_performed",
                        "data", "melody_type", json_object_get(data, "melody_type"), "x",
                        json_object_get(at, "x"), "y", json_object_get(at, "y"), "z",
                        json_object_get(at, "z"), "power", json_object_get(data, "power"));
    }
    if (!out)
        return NULL;
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (!text)
        return NULL;
    fv_shared_t *sh = fv_shared_new(text, strlen(text));
    free(text);
    return sh;
}

void wsg_on_bus_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    (void)sub;
    wsg_t *gw = data;
    char name[FV_BUS_MAX_NAME + 1];
    if (!wsg_channel_from_bus(ev->channel.ptr, ev->channel.len, name, sizeof(name)))
        return;
    wsg_channel_t *ch = find(gw, name, strlen(name));
    if (!ch || ch->count == 0)
        return;
    gw->events_in++;
    json_t *payload = payload_json(gw, ev);
    fv_shared_t *body = payload ? v1_body(name, ev, payload) : NULL;
    if (!body) {
        json_decref(payload);
        fv_log_info("websocket-gateway", "out of memory for an event on %s", name);
        return;
    }
    fv_shared_t *legacy = NULL;
    bool legacy_tried = false;
    /* the world's stream, for sessions that take it in binary: converted once */
    bool stream = strncmp(name, "player:", 7) == 0 && wsg_stream_event(ev->type.ptr, ev->type.len);
    uint8_t *pb = NULL;
    size_t pb_len = 0;
    char key[FV_BUS_MAX_NAME + 1];
    const char *k = NULL;
    if (ev->coalesce_key.len && ev->coalesce_key.len < sizeof(key)) {
        memcpy(key, ev->coalesce_key.ptr, ev->coalesce_key.len);
        key[ev->coalesce_key.len] = '\0';
        k = key;
    }
    /* backwards, so that a session leaving during its own push (closed as too slow) moves
     * only an already-visited one into its place */
    ch->delivering = true;
    gw->delivering = true;
    for (uint32_t i = ch->count; i-- > 0;) {
        if (i >= ch->count)
            continue;
        wsg_session_t *s = ch->subs[i];
        if (stream && s->stream_binary) {
            if (!pb)
                pb = wsg_stream_pb(ev->type.ptr, payload, &pb_len);
            wsg_session_send_stream(s, pb, pb_len);
            continue;
        }
        if (s->dialect == WSG_DIALECT_LEGACY) {
            if (!legacy_tried) {
                legacy = legacy_body(ev, payload);
                legacy_tried = true;
            }
            if (legacy)
                wsg_session_push(s, ch, k, legacy);
            continue;
        }
        wsg_session_push(s, ch, k, body);
    }
    ch->delivering = false;
    gw->delivering = false;
    channel_free_if_empty(gw, ch);
    wsg_sessions_trim(gw);
    fv_shared_unref(body);
    fv_shared_unref(legacy);
    fv_free(pb);
    json_decref(payload);
}
