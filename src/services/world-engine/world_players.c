/* world_players.c - players placed in the world: a table by player id of their entity (region,
 * position, yaw), the time of their last accepted move for the speed cap, and whether they
 * moved since the movement tick last told the bus. A player appears on their first move where
 * they last left (world_places.c: after leaving, idling out after player_idle_ms, or a restart,
 * the saves having written it), or at the spawn point the first time. */
#include "services/world-engine/world.h"

#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"

#define SPAWN_REGION "terra-nova"
#define SPAWN_X 512.0
#define SPAWN_Z 512.0

void world_spawn_place(world_t *w, world_place_t *out)
{
    memset(out, 0, sizeof(*out));
    out->region = fv_region_index(SPAWN_REGION);
    out->x = SPAWN_X;
    out->z = SPAWN_Z;
    out->y = world_ground_height(w, out->region, SPAWN_X, SPAWN_Z);
}

static size_t bucket_of(const world_t *w, const char *id)
{
    return (size_t)(fv_fnv1a(FV_FNV1A_SEED, id, strlen(id)) % w->player_buckets);
}

void world_players_init(world_t *w)
{
    w->player_buckets = 1024;
    w->players = fv_calloc(w->player_buckets, sizeof(*w->players));
    w->next_entity_id = 1;
}

void world_players_dispose(world_t *w)
{
    for (size_t i = 0; w->players && i < w->player_buckets; i++) {
        while (w->players[i]) {
            world_player_t *p = w->players[i];
            w->players[i] = p->next;
            fv_free(p);
        }
    }
    fv_free(w->players);
    w->players = NULL;
    w->player_count = 0;
    w->dirty = NULL;
}

world_place_t world_player_place(const world_player_t *p)
{
    return (world_place_t){.region = p->ent.region, .x = p->ent.x, .y = p->ent.y,
                           .z = p->ent.z, .yaw = p->ent.yaw};
}

/* Takes an unlinked player out of the world and frees it; where it stood is remembered. */
static void world_player_remove(world_t *w, world_player_t *p)
{
    world_place_t at = world_player_place(p);
    (void)world_places_put(w, p->id, &at, true);   /* counted in places_dropped when not */
    world_stream_player_left(w, p);
    w->players_in[p->ent.region]--;
    w->player_count--;
    fv_free(p);
}

bool world_player_leave(world_t *w, const char *id)
{
    for (world_player_t **pp = &w->players[bucket_of(w, id)]; *pp; pp = &(*pp)->next) {
        world_player_t *p = *pp;
        if (strcmp(p->id, id) != 0)
            continue;
        if (p->dirty) {             /* off the dirty list first: it is about to be freed */
            for (world_player_t **dp = &w->dirty; *dp; dp = &(*dp)->dirty_next) {
                if (*dp == p) {
                    *dp = p->dirty_next;
                    break;
                }
            }
        }
        *pp = p->next;
        world_player_remove(w, p);
        return true;
    }
    return false;
}

world_player_t *world_player_find(world_t *w, const char *id)
{
    for (world_player_t *p = w->players[bucket_of(w, id)]; p; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

/* Fourfold past two players a bucket, so a lookup stays short at any count. */
static void grow(world_t *w)
{
    size_t old_n = w->player_buckets;
    world_player_t **old = w->players;
    w->player_buckets = old_n * 4;
    w->players = fv_calloc(w->player_buckets, sizeof(*w->players));
    for (size_t i = 0; i < old_n; i++) {
        while (old[i]) {
            world_player_t *p = old[i];
            old[i] = p->next;
            size_t b = bucket_of(w, p->id);
            p->next = w->players[b];
            w->players[b] = p;
        }
    }
    fv_free(old);
}

world_player_t *world_player_get(world_t *w, const char *id, const world_place_t *from,
                                 uint64_t now_ms)
{
    world_player_t *p = world_player_find(w, id);
    if (p)
        return p;
    if (w->player_count >= w->set->max_players || strlen(id) >= sizeof(p->id))
        return NULL;
    if (w->player_count >= 2 * w->player_buckets)
        grow(w);
    p = fv_calloc(1, sizeof(*p));
    memcpy(p->id, id, strlen(id) + 1);
    world_place_t spawn;
    bool known = world_places_take(w, id, &spawn);     /* newer than the store's, if any */
    if (!known && from) {
        spawn = *from;
        known = true;
    }
    if (known) {
        /* on the ground, or as high above it as a move may be, whatever the terrain did */
        double g = world_ground_height(w, spawn.region, spawn.x, spawn.z);
        if (!(spawn.y >= g && spawn.y <= g + w->limits.max_above_ground_m))
            spawn.y = g;
    } else {
        world_spawn_place(w, &spawn);
    }
    p->ent.id = w->next_entity_id++;
    p->ent.kind = FV_ENTITY_PLAYER;
    p->ent.region = spawn.region;
    p->ent.x = spawn.x;
    p->ent.y = spawn.y;
    p->ent.z = spawn.z;
    p->ent.yaw = (float)spawn.yaw;
    p->moved_ms = now_ms;
    p->seen_ms = now_ms;
    p->unsaved = true;
    world_stream_player_joined(w, p);
    size_t b = bucket_of(w, id);
    p->next = w->players[b];
    w->players[b] = p;
    w->player_count++;
    w->players_in[spawn.region]++;
    return p;
}

void world_player_move(world_t *w, world_player_t *p, const world_place_t *want,
                       uint64_t now_ms, world_move_result_t *out)
{
    world_place_t last = world_player_place(p);
    world_move_validate(&last, p->moved_ms, want, now_ms, &w->limits, world_ground_height, w,
                        out);
    p->seen_ms = now_ms;
    w->moves++;
    if (out->status == WORLD_MOVE_REFUSED) {
        w->moves_refused++;
        return;
    }
    if (out->status == WORLD_MOVE_CORRECTED)
        w->moves_corrected++;
    /* velocity from this step, for the streaming code's extrapolation */
    double dt = now_ms > p->moved_ms ? (double)(now_ms - p->moved_ms) / 1000.0 : 0;
    if (out->place.region == p->ent.region && dt > 0) {
        p->ent.vx = (float)((out->place.x - p->ent.x) / dt);
        p->ent.vy = (float)((out->place.y - p->ent.y) / dt);
        p->ent.vz = (float)((out->place.z - p->ent.z) / dt);
    } else {
        p->ent.vx = p->ent.vy = p->ent.vz = 0;
    }
    if (out->place.region != p->ent.region) {
        w->players_in[p->ent.region]--;
        w->players_in[out->place.region]++;
    }
    p->ent.region = out->place.region;
    p->ent.x = out->place.x;
    p->ent.y = out->place.y;
    p->ent.z = out->place.z;
    p->ent.yaw = (float)out->place.yaw;
    p->moved_ms = now_ms;
    p->unsaved = true;
    world_stream_player_moved(w, p);
    if (!p->dirty) {
        p->dirty = true;
        p->dirty_next = w->dirty;
        w->dirty = p;
    }
}

void world_players_expire(world_t *w, uint64_t now_ms)
{
    for (size_t i = 0; i < w->player_buckets; i++) {
        for (world_player_t **pp = &w->players[i]; *pp;) {
            world_player_t *p = *pp;
            /* one who moved since the last movement tick is not idle, and is on w->dirty */
            if (p->dirty || now_ms - p->seen_ms < w->set->player_idle_ms) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            world_player_remove(w, p);
        }
    }
}
