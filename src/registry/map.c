/* map.c - linear probing with backward-shift deletion (no tombstones, so a table that sees
 * endless register/deregister churn never degrades), grown at 3/4 full.
 *
 * Keys come from clients, so the hash is seeded per process: someone who can register names
 * cannot precompute a set that all lands in one probe run. The seed makes collisions
 * unpredictable, not impossible; FNV-1a is not a keyed PRF, which is acceptable for a registry
 * whose writes are behind ACL tokens and whose sizes are bounded. */
#include "registry/map.h"

#include <stdbool.h>
#include <string.h>
#include <uv.h>

#include "core/alloc.h"

static uint64_t seed;

static uint64_t hash_str(const char *s)
{
    if (seed == 0) {
        uint64_t r = 0;
        if (uv_random(NULL, NULL, &r, sizeof(r), 0, NULL) < 0)
            r = (uint64_t)(uintptr_t)&seed;   /* no randomness: an address is still unknown */
        seed = r | 1;
    }
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    /* finaliser: spreads the low bits the mask keeps */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

void registry_map_init(registry_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void registry_map_dispose(registry_map_t *m)
{
    fv_free(m->slots);
    registry_map_init(m);
}

static size_t find_slot(const registry_map_t *m, const char *key, uint64_t h, bool *found)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const registry_map_slot_t *s = &m->slots[i];
        if (!s->key) {
            *found = false;
            return i;
        }
        if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = true;
            return i;
        }
    }
}

void *registry_map_get(const registry_map_t *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    bool found;
    size_t i = find_slot(m, key, hash_str(key), &found);
    return found ? m->slots[i].val : NULL;
}

static void grow(registry_map_t *m)
{
    size_t cap = m->cap ? 2 * m->cap : 16;
    registry_map_slot_t *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = fv_calloc(cap, sizeof(*m->slots));
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].key)
            continue;
        size_t j = old[i].hash & (cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    fv_free(old);
}

void registry_map_put(registry_map_t *m, const char *key, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t h = hash_str(key);
    bool found;
    size_t i = find_slot(m, key, h, &found);
    m->slots[i] = (registry_map_slot_t){.hash = h, .key = key, .val = val};
    if (!found)
        m->count++;
}

void *registry_map_del(registry_map_t *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    bool found;
    size_t i = find_slot(m, key, hash_str(key), &found);
    if (!found)
        return NULL;
    void *val = m->slots[i].val;
    size_t mask = m->cap - 1;
    /* Backward shift: pull later members of the probe run into the hole, so lookups never
     * stop early at it. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* j may move to i when its home is not in the cyclic range (i, j] */
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (registry_map_slot_t){0};
    m->count--;
    return val;
}
