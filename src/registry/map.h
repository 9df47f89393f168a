/* map.h - a string-keyed hash map for the catalog's indexes (instance by id, name entry by
 * name): open addressing, keys borrowed from the values they point at. Pure. */
#ifndef FV_REGISTRY_MAP_H
#define FV_REGISTRY_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct registry_map_slot {
    uint64_t hash;
    const char *key;             /* NULL: empty slot */
    void *val;
} registry_map_slot_t;

typedef struct registry_map {
    registry_map_slot_t *slots;
    size_t cap;                  /* 0 or a power of two */
    size_t count;
} registry_map_t;

void registry_map_init(registry_map_t *m);
void registry_map_dispose(registry_map_t *m);   /* frees the table, not the values */

/* The value under key, or NULL. */
void *registry_map_get(const registry_map_t *m, const char *key);

/* Sets key -> val (replacing any value under an equal key). key must stay valid and unchanged
 * while it is in the map. */
void registry_map_put(registry_map_t *m, const char *key, void *val);

/* Removes key; returns its value, or NULL when it was not there. */
void *registry_map_del(registry_map_t *m, const char *key);

#endif
