/* move.c - a client's move, in either dialect, handed to the world engine's Move call
 * (finalverse.world.v1.WorldService) and answered with where the server put the player:
 * `moved` in our dialect (with corrected/refused and why), `position_updated {x, y, z}` in the
 * first viewer's, which sends absolute positions anywhere in a region and must never be told
 * off for it (a move past the speed cap comes back cut short, not as an error).
 *
 * The call answers later, when the session may be gone: the call keeps the session's id, not
 * its pointer, and looks it up again. The gateway keeps a list of its calls so that, closing
 * with some unanswered, it can let go of them; their answers then only free the call. */
#include "services/websocket-gateway/gateway.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "world.pb-c.h"
#include "world3d/grid.h"

/* Answers a slow world engine may owe one session before its moves are refused as too many:
 * a client sends at most a few a tick, and each answers in well under one. */
#define MAX_MOVES_IN_FLIGHT 16
#define MOVE_DEADLINE_MS 2000

typedef struct wsg_move_call {
    struct wsg_move_call *prev, *next;  /* in gw->move_calls */
    wsg_t *gw;                          /* NULL once the gateway let go */
    char session_id[33];
    json_t *id;                         /* the client's message id (a reference), or NULL */
    bool legacy;
} wsg_move_call_t;

static void unlink_call(wsg_move_call_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->gw)
        c->gw->move_calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void free_call(wsg_move_call_t *c)
{
    json_decref(c->id);
    fv_free(c);
}

void wsg_moves_orphan(wsg_t *gw)
{
    while (gw->move_calls) {
        wsg_move_call_t *c = gw->move_calls;
        unlink_call(c);
        c->gw = NULL;
    }
}

static void answer(wsg_session_t *s, const wsg_move_call_t *c,
                   const Finalverse__World__V1__MoveReply *r)
{
    const Finalverse__Common__V1__Vec3 *at = r->position ? r->position->at : NULL;
    if (!at) {
        wsg_send_error(s, c->id, FV_EINTERNAL, "the world engine answered without a position");
        return;
    }
    /* the region names of grid.h are constants: presence may keep the pointer */
    int region = fv_region_index(r->position->region);
    if (region >= 0)
        s->region = fv_region_at(region)->id;
    if (c->legacy) {
        wsg_send_json(s, json_pack("{s:s,s:{s:f,s:f,s:f}}", "type", "position_updated", "data",
                                   "x", at->x, "y", at->y, "z", at->z));
        return;
    }
    json_t *j = json_pack("{s:s,s:{s:s,s:f,s:f,s:f},s:f,s:b,s:b,s:s,s:{s:i,s:i}}", "type",
                          "moved", "position", "region", r->position->region, "x", at->x, "y",
                          at->y, "z", at->z, "yaw", (double)r->position->yaw, "corrected",
                          r->corrected, "refused", r->refused, "reason", r->reason, "cell", "x",
                          (int)r->cell_x, "y", (int)r->cell_y);
    if (j && c->id)
        json_object_set(j, "id", c->id);
    wsg_send_json(s, j);
}

static void on_moved(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    wsg_move_call_t *c = data;
    wsg_t *gw = c->gw;
    if (!gw) {
        free_call(c);
        return;
    }
    unlink_call(c);
    wsg_session_t *s = wsg_session_find(gw, c->session_id);
    if (s && s->moves_in_flight)
        s->moves_in_flight--;
    if (s && s->ws) {
        if (status < 0)
            wsg_send_error(s, c->id, status, "cannot move now: %s",
                           err && err->msg[0] ? err->msg : fv_strerror(status));
        else
            answer(s, c, (const Finalverse__World__V1__MoveReply *)out);
    }
    free_call(c);
}

static void start_move(wsg_session_t *s, json_t *id, bool legacy, const char *region, double x,
                       double y, double z, double yaw)
{
    wsg_t *gw = s->gw;
    if (!s->ws)
        return;     /* nobody to answer (the protocol fuzz target runs sessions without one) */
    if (s->moves_in_flight >= MAX_MOVES_IN_FLIGHT) {
        wsg_send_error(s, id, FV_ERATELIMIT, "at most %d moves waiting for an answer",
                       MAX_MOVES_IN_FLIGHT);
        return;
    }
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    at.x = x;
    at.y = y;
    at.z = z;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    pos.region = (char *)(region ? region : "");
    pos.at = &at;
    pos.yaw = (float)yaw;
    Finalverse__World__V1__MoveRequest req = FINALVERSE__WORLD__V1__MOVE_REQUEST__INIT;
    req.player_id = s->player_id;
    req.position = &pos;

    wsg_move_call_t *c = fv_calloc(1, sizeof(*c));
    c->gw = gw;
    memcpy(c->session_id, s->id, sizeof(c->session_id));
    c->id = id ? json_incref(id) : NULL;
    c->legacy = legacy;
    int rc = fv_call(gw->ctx, "world-engine", "Move", &req.base,
                     &finalverse__world__v1__move_reply__descriptor, MOVE_DEADLINE_MS, on_moved,
                     c);
    if (rc < 0) {
        wsg_send_error(s, id, rc, "cannot move now: %s", fv_strerror(rc));
        free_call(c);
        return;
    }
    c->next = gw->move_calls;
    if (c->next)
        c->next->prev = c;
    gw->move_calls = c;
    s->moves_in_flight++;
}

/* A number member of o, or def when absent and optional. */
static bool number(json_t *o, const char *key, bool required, double def, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return !required;
    }
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* {"type":"move","id":N,"position":{"x","y","z"},"yaw":r,"region":"slug"} (region optional:
 * the one the player is in; a neighbour's slug with coordinates in its frame crosses over) */
void wsg_move(wsg_session_t *s, json_t *m, json_t *id)
{
    json_t *pos = json_object_get(m, "position");
    double x, y, z, yaw;
    if (!json_is_object(pos) || !number(pos, "x", true, 0, &x) ||
        !number(pos, "y", false, 0, &y) || !number(pos, "z", true, 0, &z) ||
        !number(m, "yaw", false, 0, &yaw)) {
        wsg_send_error(s, id, FV_EINVAL,
                       "move needs position {x, z: numbers, y: number (optional)} and an "
                       "optional number yaw");
        return;
    }
    json_t *region = json_object_get(m, "region");
    if (region && !json_is_string(region)) {
        wsg_send_error(s, id, FV_EINVAL, "region must be a region id (a string)");
        return;
    }
    start_move(s, id, false, json_string_value(region), x, y, z, yaw);
}

/* {"type":"move_player","data":{"x","y","z"}}: absolute in the player's region */
void wsg_legacy_move(wsg_session_t *s, json_t *data)
{
    double x, y, z;
    if (!json_is_object(data) || !number(data, "x", true, 0, &x) ||
        !number(data, "y", false, 0, &y) || !number(data, "z", true, 0, &z)) {
        wsg_send_error(s, NULL, FV_EINVAL, "move_player needs numbers x, y and z");
        return;
    }
    start_move(s, NULL, true, NULL, x, y, z, 0);
}

/* ---- the world told of a session's end, and of a client's resync ---- */

static void on_world_told(int status, const ProtobufCMessage *out, const fv_error_t *err,
                          void *data)
{
    (void)out;
    const char *method = data;      /* a string literal: nothing to free */
    /* NOT_FOUND: the player never moved, or idled out already */
    if (status < 0 && status != FV_ENOENT)
        fv_log_debug("websocket-gateway", "world-engine %s: %s", method,
                     err && err->msg[0] ? err->msg : fv_strerror(status));
}

static int tell_world(wsg_t *gw, const char *method, const char *player_id)
{
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = (char *)player_id;
    /* Leave and Resync say a state, not a step: safe to repeat on another instance */
    return fv_call_idempotent(gw->ctx, "world-engine", method, &req.base,
                              &finalverse__common__v1__empty__descriptor, MOVE_DEADLINE_MS,
                              on_world_told, (void *)method);
}

void wsg_world_leave(wsg_session_t *s)
{
    if (!s->welcomed || s->gw->stopping || !s->gw->ctx)
        return;
    (void)tell_world(s->gw, "Leave", s->player_id);
}

int wsg_world_resync(wsg_session_t *s)
{
    if (!s->gw->ctx)
        return FV_EUNAVAILABLE;
    return tell_world(s->gw, "Resync", s->player_id);
}

/* {"type":"resync","id":N}: the client lost track; the world sends its view anew */
void wsg_resync(wsg_session_t *s, json_t *m, json_t *id)
{
    (void)m;
    if (!s->ws)
        return;
    int rc = wsg_world_resync(s);
    if (rc < 0) {
        wsg_send_error(s, id, rc, "cannot resync now: %s", fv_strerror(rc));
        return;
    }
    wsg_send_ack(s, id);
}
