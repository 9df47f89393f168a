/* cache.c - generated patches kept by recency: a fixed table by cell finds an entry in O(1),
 * a doubly linked list orders them, and the ceiling comes from [procgen] cache_patches. A
 * patch costs ~17 KB and its renderings ~45 KB more, so the default 256 is ~16 MB at most. */
#include "services/procedural-gen/procgen.h"

#include <string.h>

#include "core/alloc.h"

static size_t slot_of(const fv_cell_t *c)
{
    return ((size_t)c->region * FV_REGION_CELLS + (size_t)c->cy) * FV_REGION_CELLS +
           (size_t)c->cx;
}

void procgen_cache_init(procgen_cache_t *pc, size_t max)
{
    memset(pc, 0, sizeof(*pc));
    pc->max = max > 0 ? max : 1;
}

static void unlink_entry(procgen_cache_t *pc, procgen_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        pc->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        pc->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(procgen_cache_t *pc, procgen_entry_t *e)
{
    e->next = pc->head;
    e->prev = NULL;
    if (pc->head)
        pc->head->prev = e;
    pc->head = e;
    if (!pc->tail)
        pc->tail = e;
}

/* Answers still being written hold their own references to the renderings. */
static void entry_free(procgen_entry_t *e)
{
    fv_shared_unref(e->json);
    fv_shared_unref(e->bin);
    fv_free(e);
}

void procgen_cache_dispose(procgen_cache_t *pc)
{
    for (procgen_entry_t *e = pc->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    memset(pc->by_slot, 0, sizeof(pc->by_slot));
    pc->head = pc->tail = NULL;
    pc->count = 0;
}

procgen_entry_t *procgen_cache_get(procgen_cache_t *pc, uint64_t seed, const fv_cell_t *c)
{
    size_t slot = slot_of(c);
    procgen_entry_t *e = pc->by_slot[slot];
    if (e) {
        pc->hits++;
        unlink_entry(pc, e);
        push_front(pc, e);
        return e;
    }
    pc->misses++;
    if (pc->count >= pc->max) {
        procgen_entry_t *old = pc->tail;
        unlink_entry(pc, old);
        pc->by_slot[old->slot] = NULL;
        pc->count--;
        entry_free(old);
    }
    e = fv_calloc(1, sizeof(*e));
    e->slot = slot;
    fv_terrain_patch_generate(seed, c, &e->patch);
    e->biome = fv_cell_biome(seed, c);
    pc->by_slot[slot] = e;
    pc->count++;
    push_front(pc, e);
    return e;
}
