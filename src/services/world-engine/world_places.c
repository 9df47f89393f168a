/* world_places.c - where players who are out of the world stand: the last place of each, kept
 * so that a player who comes back (after leaving, idling out, or a restart) appears where they
 * left, not at the spawn.
 *
 * A table by player id, loaded at start from world_players (the newest remembered_places rows)
 * and fed as players leave. Players in the world are not here: joining takes a player's entry
 * out, leaving puts it back. An entry not yet written to the store is "unsaved"; the save
 * (world_store.c) writes those with the players in the world, and marks an entry saved only if
 * it did not change meanwhile (its stamp). The table has a ceiling: past it the oldest saved
 * entry goes (its row stays in the store, and a player the table does not know is then looked
 * up there: world_store_lookup), and when the oldest few are all unsaved (saves failing for a
 * long time) a leaving player's place is dropped and counted instead. */
#include "services/world-engine/world.h"

#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"

#define PLACES_EVICT_SCAN 64           /* oldest entries looked at for a saved one to drop */

struct world_place_rec {
    struct world_place_rec *next;       /* hash chain */
    struct world_place_rec *older, *newer;  /* by when stored: w->places_oldest first */
    uint64_t stamp;                     /* a new one at every store */
    bool unsaved;
    world_place_t place;
    char id[WORLD_PLAYER_ID_MAX];
};

static size_t bucket_of(const world_t *w, const char *id)
{
    return (size_t)(fv_fnv1a(FV_FNV1A_SEED, id, strlen(id)) % w->places_buckets);
}

/* Buckets for the ceiling, fixed (the table never holds more): chains of 1 to 2 when full,
 * 65,536 buckets at the default 100,000; no table at all when it is off. */
void world_places_init(world_t *w)
{
    if (w->set->remembered_places == 0)
        return;
    w->places_buckets = 16;
    while (w->places_buckets < w->set->remembered_places / 2)
        w->places_buckets <<= 1;
    w->places = fv_calloc(w->places_buckets, sizeof(*w->places));
}

void world_places_dispose(world_t *w)
{
    while (w->places_oldest) {
        world_place_rec_t *r = w->places_oldest;
        w->places_oldest = r->newer;
        fv_free(r);
    }
    fv_free(w->places);
    w->places = NULL;
    w->places_newest = NULL;
    w->places_count = 0;
    w->places_unsaved = 0;
}

static world_place_rec_t **find_link(world_t *w, const char *id)
{
    world_place_rec_t **pp = &w->places[bucket_of(w, id)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void unlink_rec(world_t *w, world_place_rec_t **link)
{
    world_place_rec_t *r = *link;
    *link = r->next;
    if (r->older)
        r->older->newer = r->newer;
    else
        w->places_oldest = r->newer;
    if (r->newer)
        r->newer->older = r->older;
    else
        w->places_newest = r->older;
    w->places_count--;
    w->places_unsaved -= r->unsaved;
    fv_free(r);
}

bool world_places_known(world_t *w, const char *id)
{
    return w->places && *find_link(w, id);
}

bool world_places_take(world_t *w, const char *id, world_place_t *out)
{
    if (!w->places)
        return false;
    world_place_rec_t **link = find_link(w, id);
    if (!*link)
        return false;
    *out = (*link)->place;
    unlink_rec(w, link);
    return true;
}

/* Room for one more: the oldest saved entry among the first few goes. */
static bool make_room(world_t *w)
{
    world_place_rec_t *r = w->places_oldest;
    for (int i = 0; r && i < PLACES_EVICT_SCAN; i++, r = r->newer) {
        if (r->unsaved)
            continue;
        unlink_rec(w, find_link(w, r->id));
        w->places_partial = true;       /* its row is in the store, not here */
        return true;
    }
    return false;
}

bool world_places_put(world_t *w, const char *id, const world_place_t *place, bool unsaved)
{
    if (!w->places || strlen(id) >= WORLD_PLAYER_ID_MAX)
        return false;
    world_place_rec_t **link = find_link(w, id);
    if (*link)
        unlink_rec(w, link);
    if (w->places_count >= w->set->remembered_places && !make_room(w)) {
        w->places_dropped++;
        return false;
    }
    world_place_rec_t *r = fv_calloc(1, sizeof(*r));
    memcpy(r->id, id, strlen(id) + 1);
    r->place = *place;
    r->unsaved = unsaved;
    w->places_unsaved += unsaved;
    r->stamp = ++w->places_stamp;
    size_t b = bucket_of(w, id);
    r->next = w->places[b];
    w->places[b] = r;
    r->older = w->places_newest;
    if (r->older)
        r->older->newer = r;
    else
        w->places_oldest = r;
    w->places_newest = r;
    w->places_count++;
    return true;
}

size_t world_places_unsaved(world_t *w, world_place_row_t *rows, size_t max)
{
    size_t n = 0;
    for (world_place_rec_t *r = w->places_oldest; r && n < max; r = r->newer) {
        if (!r->unsaved)
            continue;
        memcpy(rows[n].id, r->id, sizeof(r->id));
        rows[n].place = r->place;
        rows[n].stamp = r->stamp;
        n++;
    }
    return n;
}

void world_places_saved(world_t *w, const world_place_row_t *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (!rows[i].stamp)
            continue;                   /* a player who was in the world */
        world_place_rec_t *r = *find_link(w, rows[i].id);
        if (r && r->stamp == rows[i].stamp && r->unsaved) {
            r->unsaved = false;
            w->places_unsaved--;
        }
    }
}
