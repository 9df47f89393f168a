/* session.c - sessions: the table by id, numbering and history of the events a client is sent
 * (for resume), and the queue that holds events while a client reads slower than they come.
 *
 * A client that leaves keeps its session (and its subscriptions, so its history goes on
 * filling) for history_ms; a hello that names it with the last sequence number it saw gets
 * exactly the events after it, or a fresh start when the history no longer reaches back. */
#include "services/websocket-gateway/gateway.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "core/id.h"
#include "core/log.h"
#include "core/time.h"

uint64_t wsg_now_ms(void)
{
    return fv_wall_ms();
}

uint64_t wsg_mono_ms(void)
{
    return fv_now_ms();
}

static size_t bucket_of(const wsg_t *gw, const char *id)
{
    return (size_t)(fv_fnv1a(FV_FNV1A_SEED, id, strlen(id)) % gw->session_buckets);
}

/* More sessions than twice the buckets: four times the buckets, so lookups stay short at
 * any number of players. */
static void sessions_grow(wsg_t *gw)
{
    size_t old_n = gw->session_buckets;
    wsg_session_t **old = gw->sessions;
    gw->session_buckets = old_n * 4;
    gw->sessions = fv_calloc(gw->session_buckets, sizeof(*gw->sessions));
    for (size_t i = 0; i < old_n; i++) {
        while (old[i]) {
            wsg_session_t *s = old[i];
            old[i] = s->next;
            size_t b = bucket_of(gw, s->id);
            s->next = gw->sessions[b];
            gw->sessions[b] = s;
        }
    }
    fv_free(old);
}

wsg_session_t *wsg_session_new(wsg_t *gw)
{
    if (gw->session_count >= 2 * gw->session_buckets)
        sessions_grow(gw);
    wsg_session_t *s = fv_calloc(1, sizeof(*s));
    s->gw = gw;
    fv_id_random_hex(s->id, 16);
    size_t b = bucket_of(gw, s->id);
    s->next = gw->sessions[b];
    gw->sessions[b] = s;
    gw->session_count++;
    return s;
}

wsg_session_t *wsg_session_find(wsg_t *gw, const char *id)
{
    if (strlen(id) != 32)
        return NULL;
    for (wsg_session_t *s = gw->sessions[bucket_of(gw, id)]; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

/* ---- kept sessions: a list in the order their clients left ----
 * Bounded in time (history_ms) and in number (max_kept_sessions), so a client that connects,
 * says hello and leaves in a loop cannot make the gateway keep sessions without end. */

static void away_unlink(wsg_session_t *s)
{
    wsg_t *gw = s->gw;
    if (!s->away_since_ms)
        return;
    if (s->away_prev)
        s->away_prev->away_next = s->away_next;
    else
        gw->away_head = s->away_next;
    if (s->away_next)
        s->away_next->away_prev = s->away_prev;
    else
        gw->away_tail = s->away_prev;
    s->away_prev = s->away_next = NULL;
    s->away_since_ms = 0;
    gw->away_count--;
}

static void away_link(wsg_session_t *s, uint64_t now_ms)
{
    wsg_t *gw = s->gw;
    s->away_since_ms = now_ms ? now_ms : 1;
    s->away_next = NULL;
    s->away_prev = gw->away_tail;
    if (gw->away_tail)
        gw->away_tail->away_next = s;
    else
        gw->away_head = s;
    gw->away_tail = s;
    gw->away_count++;
}

static void held_release(wsg_held_t *h)
{
    fv_shared_unref(h->body);
    fv_free(h->key);
    memset(h, 0, sizeof(*h));
}

static void pending_clear(wsg_session_t *s)
{
    for (uint32_t i = 0; i < s->npending; i++)
        held_release(&s->pending[i]);
    s->npending = 0;
}

void wsg_session_free(wsg_session_t *s)
{
    wsg_t *gw = s->gw;
    away_unlink(s);
    wsg_presence_offline(s);
    wsg_unsubscribe_all(s);
    pending_clear(s);
    fv_free(s->pending);
    for (uint32_t i = 0; i < s->hist_count; i++)
        held_release(&s->hist[(s->hist_head + i) % s->hist_cap]);
    fv_free(s->hist);
    wsg_session_t **pp = &gw->sessions[bucket_of(gw, s->id)];
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    gw->session_count--;
    fv_free(s);
}

void wsg_session_away(wsg_session_t *s)
{
    wsg_presence_offline(s);
    /* nothing to resume without a hello, nor without a history to resume from */
    if (!s->welcomed || s->gw->set->history_events == 0 || s->gw->stopping) {
        wsg_world_leave(s);
        wsg_session_free(s);
        return;
    }
    away_link(s, wsg_mono_ms());
    /* what was queued for the socket stays in the history; a resume sends it from there */
    pending_clear(s);
    wsg_sessions_trim(s->gw);
}

void wsg_sessions_trim(wsg_t *gw)
{
    /* not while an event is fanned out: that walks subscriber lists these sessions are in */
    if (gw->delivering)
        return;
    while (gw->away_count > gw->set->max_kept_sessions) {
        wsg_world_leave(gw->away_head);
        wsg_session_free(gw->away_head);
    }
}

void wsg_sessions_sweep(wsg_t *gw, uint64_t now_ms)
{
    while (gw->away_head && now_ms - gw->away_head->away_since_ms >= gw->set->history_ms) {
        wsg_world_leave(gw->away_head);
        wsg_session_free(gw->away_head);
    }
}

/* ---- sending numbered events ---- */

/* The per-client part in front of the shared body: {"type":"event","seq":N, */
static int send_numbered(wsg_session_t *s, uint64_t seq, fv_shared_t *body)
{
    char prefix[64];
    int n = seq ? snprintf(prefix, sizeof(prefix), "{\"type\":\"event\",\"seq\":%" PRIu64 ",", seq)
                : 0;
    int rc = fv_ws_send_shared(s->ws, prefix, (size_t)n, body);
    if (rc == 0)
        s->gw->events_sent++;
    return rc;
}

/* Holds an event for a client that is behind: an event with a coalesce key replaces the held
 * one of the same channel and key (a newer position makes the older one worthless); past
 * max_pending the client is closed, so one slow reader never grows without bound. */
static void hold(wsg_session_t *s, uint64_t seq, wsg_channel_t *ch, const char *key,
                 fv_shared_t *body)
{
    wsg_t *gw = s->gw;
    if (key) {
        for (uint32_t i = 0; i < s->npending; i++) {
            wsg_held_t *h = &s->pending[i];
            if (h->channel == ch && h->key && strcmp(h->key, key) == 0) {
                fv_shared_ref(body);
                fv_shared_unref(h->body);
                h->body = body;
                h->seq = seq;
                gw->events_coalesced++;
                return;
            }
        }
    }
    if (s->npending >= gw->set->max_pending) {
        gw->slow_closed++;
        fv_log_info("websocket-gateway", "%s: session %s is %" PRIu32 " events behind; closed",
                    fv_ws_peer(s->ws), s->id, s->npending);
        fv_ws_close(s->ws, FV_WS_CLOSE_TRY_LATER, "too slow: too many events behind");
        return;
    }
    if ((s->npending & (s->npending - 1)) == 0) {
        size_t cap = s->npending ? (size_t)s->npending * 2 : 16;
        s->pending = fv_realloc(s->pending, cap * sizeof(*s->pending));
    }
    wsg_held_t *h = &s->pending[s->npending++];
    memset(h, 0, sizeof(*h));
    h->seq = seq;
    h->channel = ch;
    h->key = key ? fv_strdup(key) : NULL;
    fv_shared_ref(body);
    h->body = body;
}

static void deliver(wsg_session_t *s, uint64_t seq, wsg_channel_t *ch, const char *key,
                    fv_shared_t *body)
{
    if (!s->ws)
        return;
    if (s->npending == 0 && !fv_ws_output_full(s->ws)) {
        if (send_numbered(s, seq, body) < 0)
            fv_ws_close(s->ws, FV_WS_CLOSE_INTERNAL, "cannot send");
        return;
    }
    hold(s, seq, ch, key, body);
}

/* The ring starts small and doubles up to history_events, so an idle session, or one that
 * gets few events, holds little. */
static void history_grow(wsg_session_t *s)
{
    uint32_t max = s->gw->set->history_events;
    uint32_t cap = s->hist_cap ? s->hist_cap * 2 : 8;
    if (cap > max)
        cap = max;
    wsg_held_t *h = fv_calloc(cap, sizeof(*h));
    for (uint32_t i = 0; i < s->hist_count; i++)
        h[i] = s->hist[(s->hist_head + i) % s->hist_cap];
    fv_free(s->hist);
    s->hist = h;
    s->hist_cap = cap;
    s->hist_head = 0;
}

static void history_add(wsg_session_t *s, uint64_t seq, fv_shared_t *body)
{
    if (s->gw->set->history_events == 0)
        return;
    if (s->hist_count == s->hist_cap && s->hist_cap < s->gw->set->history_events)
        history_grow(s);
    uint32_t cap = s->hist_cap;
    uint64_t now = wsg_mono_ms();
    /* bounded by age too: what is older than history_ms would not be resumed from anyway */
    while (s->hist_count && now - s->hist[s->hist_head].time_ms > s->gw->set->history_ms) {
        held_release(&s->hist[s->hist_head]);
        s->hist_head = (s->hist_head + 1) % cap;
        s->hist_count--;
    }
    if (s->hist_count == cap) {
        held_release(&s->hist[s->hist_head]);
        s->hist_head = (s->hist_head + 1) % cap;
        s->hist_count--;
    }
    wsg_held_t *h = &s->hist[(s->hist_head + s->hist_count) % cap];
    h->seq = seq;
    h->time_ms = now;
    fv_shared_ref(body);
    h->body = body;
    s->hist_count++;
}

void wsg_session_push(wsg_session_t *s, wsg_channel_t *ch, const char *key,
                      fv_shared_t *body)
{
    if (s->dialect == WSG_DIALECT_LEGACY) {
        deliver(s, 0, ch, key, body);   /* the old viewer has no numbers and no resume */
        return;
    }
    uint64_t seq = ++s->seq;
    history_add(s, seq, body);
    deliver(s, seq, ch, key, body);
}

void wsg_session_send_stream(wsg_session_t *s, const uint8_t *msg, size_t len)
{
    if (!s->ws)
        return;
    /* a stream frame never waits: behind the numbered events or a full socket it is dropped
     * and the view sent anew once the socket drains (a slow client gets fewer updates, and
     * the gateway holds nothing for it) */
    if (s->stream_lost || s->npending || fv_ws_output_full(s->ws)) {
        s->stream_lost = true;
        s->gw->stream_dropped++;
        return;
    }
    if (fv_ws_send(s->ws, false, msg, len) < 0)
        fv_ws_close(s->ws, FV_WS_CLOSE_INTERNAL, "cannot send");
}

void wsg_session_flush(wsg_session_t *s)
{
    uint32_t sent = 0;
    while (s->ws && sent < s->npending && !fv_ws_output_full(s->ws)) {
        if (send_numbered(s, s->pending[sent].seq, s->pending[sent].body) < 0)
            break;
        held_release(&s->pending[sent]);
        sent++;
    }
    if (sent == 0)
        return;
    memmove(s->pending, s->pending + sent, (s->npending - sent) * sizeof(*s->pending));
    s->npending -= sent;
}

/* ---- resume ---- */

wsg_session_t *wsg_session_adopt(wsg_session_t *fresh, wsg_session_t *old)
{
    if (old->ws) {
        /* the same client again before its old connection was seen to drop (or another tab):
         * the old connection lets go of the session first, so closing it changes nothing */
        fv_ws_t *prev = old->ws;
        old->ws = NULL;
        old->gw->connected--;
        fv_ws_set_data(prev, NULL);
        fv_ws_close(prev, FV_WS_CLOSE_POLICY, "session resumed on another connection");
    }
    old->ws = fresh->ws;
    fresh->ws = NULL;
    if (old->ws)
        fv_ws_set_data(old->ws, old);
    away_unlink(old);
    old->dialect = WSG_DIALECT_V1;
    old->stream_binary = fresh->stream_binary;     /* a property of the connection */
    old->stream_lost = fresh->stream_binary;       /* frames went nowhere while it was away */
    pending_clear(old);
    wsg_session_free(fresh);
    return old;
}

bool wsg_session_can_replay(const wsg_session_t *s, uint64_t last_seq)
{
    if (last_seq > s->seq)
        return false;                   /* a number we never gave: nothing to trust */
    if (last_seq == s->seq)
        return true;
    if (s->hist_count == 0)
        return false;
    return s->hist[s->hist_head].seq <= last_seq + 1;
}

void wsg_session_replay(wsg_session_t *s, uint64_t last_seq)
{
    for (uint32_t i = 0; i < s->hist_count; i++) {
        wsg_held_t *h = &s->hist[(s->hist_head + i) % s->hist_cap];
        if (h->seq > last_seq)
            deliver(s, h->seq, NULL, NULL, h->body);
    }
}
