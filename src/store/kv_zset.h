/* kv_zset.h - a sorted set for the kv memory backend: members (byte strings) with a double
 * score, ordered by (score, member bytes) as Redis orders them. A hash table finds a member's
 * node; a skiplist keeps the order. Rank access walks from the nearer end of the list, so a
 * range costs O(log n + offset + count): cheap for leaderboard tops and bottoms. */
#ifndef FV_STORE_KV_ZSET_H
#define FV_STORE_KV_ZSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/kv_dict.h"

#define FV__KV_ZSET_MAXLEVEL 32

typedef struct fv__kv_znode fv__kv_znode_t;
struct fv__kv_znode {
    double score;
    fv__kv_dent_t *member;        /* the dict entry holding the member bytes */
    fv__kv_znode_t *back;
    int nlevel;
    fv__kv_znode_t *fwd[];
};

typedef struct fv__kv_zset {
    fv__kv_dict_t dict;           /* member -> entry, entry->v.ptr = node */
    fv__kv_znode_t *head;         /* sentinel with every level */
    fv__kv_znode_t *tail;
    int level;
    uint64_t rng;
} fv__kv_zset_t;

/* NULL when out of memory. */
fv__kv_zset_t *fv__kv_zset_new(void);
void fv__kv_zset_free(fv__kv_zset_t *z);

static inline size_t fv__kv_zset_count(const fv__kv_zset_t *z)
{
    return z->dict.count;
}

/* Sets member's score; *created 1 when it was new. 0 or FV_ENOMEM. */
int fv__kv_zset_add(fv__kv_zset_t *z, fv_slice_t member, double score, int *created);
/* 0 and *score, or FV_ENOENT. */
int fv__kv_zset_score(const fv__kv_zset_t *z, fv_slice_t member, double *score);
/* 1 removed, 0 not there. */
int fv__kv_zset_rem(fv__kv_zset_t *z, fv_slice_t member);
/* The node at rank (0-based) from the lowest, or from the highest when rev. */
const fv__kv_znode_t *fv__kv_zset_at(const fv__kv_zset_t *z, size_t rank, bool rev);

#endif
