/* presence.c - who is online, in the kv store so that every gateway sees every other's players:
 * one hash per region, presence:region:<region>, field = player id, value = a JSON record with
 * the player's name and when a gateway last vouched for it. A gateway refreshes the records of
 * its connected players every PRESENCE_REFRESH_S and removes them when they leave; a record not
 * refreshed for PRESENCE_STALE_MS (its gateway died) no longer counts, and the whole hash expires
 * when no gateway refreshes it. Changes go out as presence.changed events on the region's
 * channel, so clients subscribed to a region see arrivals and departures live. */
#include "services/websocket-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "store/kv.h"
#include "store/stores.h"

#define PRESENCE_STALE_MS (3 * PRESENCE_REFRESH_S * 1000)

static fv_kv_t *kv_of(wsg_t *gw)
{
    return fv_stores_kv(fv_module_stores(gw->ctx));
}

static void ignore(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    (void)reply;
    (void)data;
    if (status < 0)
        fv_log_debug("websocket-gateway", "presence write failed: %s", fv_strerror(status));
}

static void hash_key(char *out, size_t cap, const char *region)
{
    snprintf(out, cap, "presence:region:%s", region);
}

static void write_record(wsg_session_t *s)
{
    wsg_t *gw = s->gw;
    char key[160];
    hash_key(key, sizeof(key), s->region);
    json_t *rec = json_pack("{s:s,s:s,s:b,s:I}", "player_id", s->player_id, "name", s->name,
                            "guest", s->guest, "last_seen_ms", (json_int_t)wsg_now_ms());
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return;
    fv_kv_t *kv = kv_of(gw);
    if (fv_kv_hset(kv, fv_slice_cstr(key), fv_slice_cstr(s->player_id), fv_slice_cstr(text),
                   ignore, NULL) < 0 ||
        fv_kv_expire(kv, fv_slice_cstr(key), PRESENCE_STALE_MS, ignore, NULL) < 0)
        fv_log_debug("websocket-gateway", "presence: kv refused a write");
    free(text);
}

static void announce(wsg_session_t *s, bool online)
{
    char channel[160];
    snprintf(channel, sizeof(channel), "region.%s", s->region);
    json_t *ev = json_pack("{s:s,s:s,s:b,s:s,s:b}", "player_id", s->player_id, "name", s->name,
                           "guest", s->guest, "region", s->region, "online", online);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text)
        return;
    if (fv_bus_publish(fv_module_bus(s->gw->ctx), channel, "presence.changed", text,
                       strlen(text), NULL) < 0)
        fv_log_debug("websocket-gateway", "presence: the bus refused presence.changed");
    free(text);
}

void wsg_presence_online(wsg_session_t *s)
{
    if (s->present || !s->gw->ctx)
        return;
    s->present = true;
    write_record(s);
    announce(s, true);
}

void wsg_presence_offline(wsg_session_t *s)
{
    if (!s->present)
        return;
    s->present = false;
    char key[160];
    hash_key(key, sizeof(key), s->region);
    if (fv_kv_hdel(kv_of(s->gw), fv_slice_cstr(key), fv_slice_cstr(s->player_id), ignore,
                   NULL) < 0)
        fv_log_debug("websocket-gateway", "presence: kv refused a delete");
    announce(s, false);
}

void wsg_presence_refresh(wsg_t *gw)
{
    for (size_t i = 0; i < gw->session_buckets; i++)
        for (wsg_session_t *s = gw->sessions[i]; s; s = s->next)
            if (s->present)
                write_record(s);
}

/* ---- GET /presence?region=<id> ---- */

static void on_list(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    fv_http_req_t *req = data;
    if (status < 0) {
        fv_http_reply_errorf(req, FV_EBACKEND, "presence is unavailable: %s",
                             fv_strerror(status));
        return;
    }
    uint64_t now = wsg_now_ms();
    json_t *players = json_array();
    for (size_t i = 0; reply && reply->type == FV_KV_ARRAY && i < reply->count; i++) {
        json_t *rec = json_loadb(reply->elems[i].val.ptr, reply->elems[i].val.len, 0, NULL);
        json_t *seen = json_object_get(rec, "last_seen_ms");
        if (rec && json_is_integer(seen) &&
            now - (uint64_t)json_integer_value(seen) < PRESENCE_STALE_MS)
            json_array_append(players, rec);
        json_decref(rec);
    }
    const char *region = fv_http_req_query_param(req, "region");
    fv_http_reply_json(req, 200, json_pack("{s:s,s:o}", "region", region ? region : "",
                                           "players", players));
}

void wsg_on_presence(fv_http_req_t *req, void *data)
{
    wsg_t *gw = data;
    const char *region = fv_http_req_query_param(req, "region");
    char msg[160];
    char name[160];
    snprintf(name, sizeof(name), "region:%s", region ? region : "");
    if (!region || wsg_channel_check(name, "", msg, sizeof(msg)) < 0) {
        fv_http_reply_errorf(req, FV_EINVAL,
                             "region must be a region id (letters, digits, '-', '_', '.')");
        return;
    }
    char key[160];
    hash_key(key, sizeof(key), region);
    int rc = fv_kv_hgetall(kv_of(gw), fv_slice_cstr(key), on_list, req);
    if (rc < 0)
        fv_http_reply_errorf(req, rc, "presence is unavailable: %s", fv_strerror(rc));
}
