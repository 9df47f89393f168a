/* kv_dict.c - chained hash table for the kv memory backend. Grows by doubling when the load
 * passes 1; the rehash moves every entry at once, which is a pause proportional to the table
 * (Redis rehashes incrementally; at our sizes the simple way is fine). Never shrinks. */
#include "store/kv_dict.h"

#include <sodium.h>
#include <string.h>

#include "core/alloc.h"

void fv__kv_dict_init(fv__kv_dict_t *d)
{
    memset(d, 0, sizeof(*d));
    if (sodium_init() < 0)
        memset(d->seed, 0x5a, sizeof(d->seed));   /* cannot happen on Linux; still usable */
    else
        randombytes_buf(d->seed, sizeof(d->seed));
}

void fv__kv_dict_dispose(fv__kv_dict_t *d)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        fv__kv_dent_t *e = d->buckets[i];
        while (e) {
            fv__kv_dent_t *next = e->next;
            fv_free(e);
            e = next;
        }
    }
    fv_free(d->buckets);
    d->buckets = NULL;
    d->nbuckets = d->count = 0;
}

static uint64_t hash_key(const fv__kv_dict_t *d, fv_slice_t key)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)(key.ptr ? key.ptr : ""), key.len, d->seed);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

fv__kv_dent_t *fv__kv_dict_find(const fv__kv_dict_t *d, fv_slice_t key)
{
    if (!d->nbuckets)
        return NULL;
    uint64_t h = hash_key(d, key);
    for (fv__kv_dent_t *e = d->buckets[h & (d->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->klen == key.len && (!key.len || !memcmp(e->key, key.ptr, key.len)))
            return e;
    return NULL;
}

static int grow(fv__kv_dict_t *d)
{
    size_t n = d->nbuckets ? d->nbuckets * 2 : 16;
    fv__kv_dent_t **b = fv_try_malloc(n * sizeof(*b));
    if (!b)
        return -1;
    memset(b, 0, n * sizeof(*b));
    for (size_t i = 0; i < d->nbuckets; i++) {
        fv__kv_dent_t *e = d->buckets[i];
        while (e) {
            fv__kv_dent_t *next = e->next;
            size_t j = e->hash & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    fv_free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
    return 0;
}

fv__kv_dent_t *fv__kv_dict_upsert(fv__kv_dict_t *d, fv_slice_t key, int *created)
{
    *created = 0;
    fv__kv_dent_t *e = fv__kv_dict_find(d, key);
    if (e)
        return e;
    if (d->count >= d->nbuckets && grow(d) < 0 && !d->nbuckets)
        return NULL;   /* a failed grow of a non-empty table only costs speed */
    e = fv_try_malloc(sizeof(*e) + key.len + 1);
    if (!e)
        return NULL;
    e->hash = hash_key(d, key);
    e->v.ptr = NULL;
    e->klen = key.len;
    if (key.len)
        memcpy(e->key, key.ptr, key.len);
    e->key[key.len] = '\0';
    size_t j = e->hash & (d->nbuckets - 1);
    e->next = d->buckets[j];
    d->buckets[j] = e;
    d->count++;
    *created = 1;
    return e;
}

void fv__kv_dict_remove(fv__kv_dict_t *d, fv__kv_dent_t *e)
{
    fv__kv_dent_t **pp = &d->buckets[e->hash & (d->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        d->count--;
    }
    fv_free(e);
}

fv__kv_dent_t *fv__kv_dict_first(const fv__kv_dict_t *d, size_t *bucket)
{
    for (size_t i = 0; i < d->nbuckets; i++)
        if (d->buckets[i]) {
            *bucket = i;
            return d->buckets[i];
        }
    return NULL;
}

fv__kv_dent_t *fv__kv_dict_next(const fv__kv_dict_t *d, size_t *bucket, fv__kv_dent_t *e)
{
    if (e->next)
        return e->next;
    for (size_t i = *bucket + 1; i < d->nbuckets; i++)
        if (d->buckets[i]) {
            *bucket = i;
            return d->buckets[i];
        }
    return NULL;
}
