/* kv_dict.h - a chained hash table of byte-string keys for the memory backend of the kv store
 * (keys, hash fields, sorted-set members). Keys are copied into the entry; entries never move,
 * so pointers to them and to their key bytes stay valid until they are removed. Hashing is
 * SipHash with a per-table random key, so chosen keys cannot pile into one bucket. */
#ifndef FV_STORE_KV_DICT_H
#define FV_STORE_KV_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

typedef struct fv__kv_dent fv__kv_dent_t;
struct fv__kv_dent {
    fv__kv_dent_t *next;
    uint64_t hash;
    union {
        void *ptr;
        double score;
    } v;                 /* the owner's value; zeroed on insert */
    size_t klen;
    char key[];          /* klen bytes, then a NUL */
};

typedef struct fv__kv_dict {
    fv__kv_dent_t **buckets;
    size_t nbuckets;     /* a power of two, or 0 before the first insert */
    size_t count;
    unsigned char seed[16];
} fv__kv_dict_t;

void fv__kv_dict_init(fv__kv_dict_t *d);
/* Frees the entries (not what v.ptr points to: empty the table first when it owns values). */
void fv__kv_dict_dispose(fv__kv_dict_t *d);

fv__kv_dent_t *fv__kv_dict_find(const fv__kv_dict_t *d, fv_slice_t key);
/* Finds or adds key; *created tells which. NULL when out of memory. */
fv__kv_dent_t *fv__kv_dict_upsert(fv__kv_dict_t *d, fv_slice_t key, int *created);
/* Unlinks and frees e (the caller has released e->v). */
void fv__kv_dict_remove(fv__kv_dict_t *d, fv__kv_dent_t *e);

/* Iteration: for (e = first(d, &i); e; e = next(d, &i, e)). Removing the current entry is not
 * allowed; collect first, or use the bucket cursor of fv__kv_dict_bucket(). */
fv__kv_dent_t *fv__kv_dict_first(const fv__kv_dict_t *d, size_t *bucket);
fv__kv_dent_t *fv__kv_dict_next(const fv__kv_dict_t *d, size_t *bucket, fv__kv_dent_t *e);

static inline fv_slice_t fv__kv_dent_key(const fv__kv_dent_t *e)
{
    return fv_slice(e->key, e->klen);
}

#endif
