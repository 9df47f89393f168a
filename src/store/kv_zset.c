/* kv_zset.c - skiplist plus hash table; see kv_zset.h. Levels are drawn with p = 1/4 from a
 * per-set xorshift generator (no shared state, no locking). */
#include "store/kv_zset.h"

#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

static fv__kv_znode_t *node_new(int nlevel)
{
    fv__kv_znode_t *n = fv_try_malloc(sizeof(*n) + (size_t)nlevel * sizeof(n->fwd[0]));
    if (n) {
        memset(n, 0, sizeof(*n) + (size_t)nlevel * sizeof(n->fwd[0]));
        n->nlevel = nlevel;
    }
    return n;
}

fv__kv_zset_t *fv__kv_zset_new(void)
{
    fv__kv_zset_t *z = fv_try_malloc(sizeof(*z));
    if (!z)
        return NULL;
    memset(z, 0, sizeof(*z));
    z->head = node_new(FV__KV_ZSET_MAXLEVEL);
    if (!z->head) {
        fv_free(z);
        return NULL;
    }
    fv__kv_dict_init(&z->dict);
    z->level = 1;
    z->rng = (uint64_t)(uintptr_t)z * 0x9E3779B97F4A7C15ull | 1;
    return z;
}

void fv__kv_zset_free(fv__kv_zset_t *z)
{
    if (!z)
        return;
    fv__kv_znode_t *n = z->head->fwd[0];
    while (n) {
        fv__kv_znode_t *next = n->fwd[0];
        fv_free(n);
        n = next;
    }
    fv_free(z->head);
    fv__kv_dict_dispose(&z->dict);
    fv_free(z);
}

static int random_level(fv__kv_zset_t *z)
{
    int level = 1;
    for (;;) {
        z->rng ^= z->rng << 13;
        z->rng ^= z->rng >> 7;
        z->rng ^= z->rng << 17;
        if ((z->rng & 3) != 0 || level >= FV__KV_ZSET_MAXLEVEL)
            return level;
        level++;
    }
}

/* <0 when (score, m) sorts before node n. */
static int cmp(double score, fv_slice_t m, const fv__kv_znode_t *n)
{
    if (score < n->score)
        return -1;
    if (score > n->score)
        return 1;
    size_t len = m.len < n->member->klen ? m.len : n->member->klen;
    int c = len ? memcmp(m.ptr, n->member->key, len) : 0;
    if (c)
        return c;
    return m.len < n->member->klen ? -1 : m.len > n->member->klen ? 1 : 0;
}

static void find_update(fv__kv_zset_t *z, double score, fv_slice_t m,
                        fv__kv_znode_t **update)
{
    fv__kv_znode_t *x = z->head;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->fwd[i] && cmp(score, m, x->fwd[i]) > 0)
            x = x->fwd[i];
        update[i] = x;
    }
}

static void unlink_node(fv__kv_zset_t *z, fv__kv_znode_t *n)
{
    fv__kv_znode_t *update[FV__KV_ZSET_MAXLEVEL];
    find_update(z, n->score, fv__kv_dent_key(n->member), update);
    for (int i = 0; i < z->level; i++)
        if (update[i]->fwd[i] == n)
            update[i]->fwd[i] = n->fwd[i];
    if (n->fwd[0])
        n->fwd[0]->back = n->back;
    else
        z->tail = n->back;
    while (z->level > 1 && !z->head->fwd[z->level - 1])
        z->level--;
}

static void link_node(fv__kv_zset_t *z, fv__kv_znode_t *n)
{
    fv__kv_znode_t *update[FV__KV_ZSET_MAXLEVEL];
    find_update(z, n->score, fv__kv_dent_key(n->member), update);
    if (n->nlevel > z->level) {
        for (int i = z->level; i < n->nlevel; i++)
            update[i] = z->head;
        z->level = n->nlevel;
    }
    for (int i = 0; i < n->nlevel; i++) {
        n->fwd[i] = update[i]->fwd[i];
        update[i]->fwd[i] = n;
    }
    n->back = update[0] == z->head ? NULL : update[0];
    if (n->fwd[0])
        n->fwd[0]->back = n;
    else
        z->tail = n;
}

int fv__kv_zset_add(fv__kv_zset_t *z, fv_slice_t member, double score, int *created)
{
    fv__kv_dent_t *e = fv__kv_dict_find(&z->dict, member);
    *created = 0;
    if (e) {
        fv__kv_znode_t *n = e->v.ptr;
        if (n->score != score) {
            unlink_node(z, n);
            n->score = score;
            link_node(z, n);
        }
        return 0;
    }
    fv__kv_znode_t *n = node_new(random_level(z));
    if (!n)
        return FV_ENOMEM;
    int c;
    e = fv__kv_dict_upsert(&z->dict, member, &c);
    if (!e) {
        fv_free(n);
        return FV_ENOMEM;
    }
    n->score = score;
    n->member = e;
    e->v.ptr = n;
    link_node(z, n);
    *created = 1;
    return 0;
}

int fv__kv_zset_score(const fv__kv_zset_t *z, fv_slice_t member, double *score)
{
    fv__kv_dent_t *e = fv__kv_dict_find(&z->dict, member);
    if (!e)
        return FV_ENOENT;
    *score = ((fv__kv_znode_t *)e->v.ptr)->score;
    return 0;
}

int fv__kv_zset_rem(fv__kv_zset_t *z, fv_slice_t member)
{
    fv__kv_dent_t *e = fv__kv_dict_find(&z->dict, member);
    if (!e)
        return 0;
    fv__kv_znode_t *n = e->v.ptr;
    unlink_node(z, n);
    fv_free(n);
    fv__kv_dict_remove(&z->dict, e);
    return 1;
}

const fv__kv_znode_t *fv__kv_zset_at(const fv__kv_zset_t *z, size_t rank, bool rev)
{
    size_t count = z->dict.count;
    if (rank >= count)
        return NULL;
    /* Walk from whichever end is nearer. */
    size_t from_low = rev ? count - 1 - rank : rank;
    const fv__kv_znode_t *n;
    if (from_low <= count / 2) {
        n = z->head->fwd[0];
        for (size_t i = 0; i < from_low; i++)
            n = n->fwd[0];
    } else {
        n = z->tail;
        for (size_t i = count - 1; i > from_low; i--)
            n = n->back;
    }
    return n;
}
