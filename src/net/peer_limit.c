/* peer_limit.c - connection counts per client address: a chained hash table (FNV-1a over the
 * address bytes) that doubles its buckets when it holds more addresses than buckets. Only the
 * counting; the server decides what a count over its limit means (sock.c). */
#include "net/peer_limit.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"

typedef struct entry {
    struct entry *next;
    fv_peer_key_t key;
    uint32_t count;
} entry_t;

struct fv_peer_limit {
    entry_t **buckets;
    size_t nbuckets;             /* a power of two */
    size_t size;
};

void fv_peer_key_from(const struct sockaddr *sa, fv_peer_key_t *key)
{
    memset(key, 0, sizeof(*key));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        memcpy(key->addr, &a->sin_addr, 4);
        key->len = 4;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            memcpy(key->addr, a->sin6_addr.s6_addr + 12, 4);
            key->len = 4;
        } else {
            memcpy(key->addr, a->sin6_addr.s6_addr, 16);
            key->len = 16;
        }
    }
}

static size_t hash(const fv_peer_key_t *k)
{
    uint64_t h = fv_fnv1a(FV_FNV1A_SEED, k->addr, k->len);
    return (size_t)(h ^ (h >> 32));
}

static bool key_eq(const fv_peer_key_t *a, const fv_peer_key_t *b)
{
    return a->len == b->len && memcmp(a->addr, b->addr, a->len) == 0;
}

fv_peer_limit_t *fv_peer_limit_new(void)
{
    fv_peer_limit_t *t = fv_calloc(1, sizeof(*t));
    t->nbuckets = 64;
    t->buckets = fv_calloc(t->nbuckets, sizeof(*t->buckets));
    return t;
}

void fv_peer_limit_free(fv_peer_limit_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        entry_t *e = t->buckets[i];
        while (e) {
            entry_t *next = e->next;
            fv_free(e);
            e = next;
        }
    }
    fv_free(t->buckets);
    fv_free(t);
}

static void grow(fv_peer_limit_t *t)
{
    size_t n = t->nbuckets * 2;
    entry_t **b = fv_calloc(n, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        entry_t *e = t->buckets[i];
        while (e) {
            entry_t *next = e->next;
            size_t j = hash(&e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    fv_free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

uint32_t fv_peer_limit_add(fv_peer_limit_t *t, const fv_peer_key_t *key)
{
    if (key->len == 0)
        return 0;
    size_t i = hash(key) & (t->nbuckets - 1);
    for (entry_t *e = t->buckets[i]; e; e = e->next) {
        if (key_eq(&e->key, key))
            return ++e->count;
    }
    entry_t *e = fv_calloc(1, sizeof(*e));
    e->key = *key;
    e->count = 1;
    e->next = t->buckets[i];
    t->buckets[i] = e;
    if (++t->size > t->nbuckets)
        grow(t);
    return 1;
}

void fv_peer_limit_remove(fv_peer_limit_t *t, const fv_peer_key_t *key)
{
    if (key->len == 0)
        return;
    entry_t **pp = &t->buckets[hash(key) & (t->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        entry_t *e = *pp;
        if (!key_eq(&e->key, key))
            continue;
        if (--e->count == 0) {
            *pp = e->next;
            fv_free(e);
            t->size--;
        }
        return;
    }
}

size_t fv_peer_limit_size(const fv_peer_limit_t *t)
{
    return t->size;
}
