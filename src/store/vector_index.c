/* vector_index.c - one in-memory vector collection: contiguous aligned float storage, an
 * id -> slot hash map, exact top-k search with a bounded min-heap. The payload filter lives
 * in vector_filter.c; persistence and threads belong to the callers (vector_embedded.c).
 *
 * Layout: every vector occupies `stride` floats (dim rounded up to 8, zero padded) in one
 * 32-byte aligned block, so each vector starts aligned and the kernel never needs a scalar
 * tail. An exact scan is bound by memory bandwidth, so the block is read once, front to back,
 * and nothing else is touched per point unless its score can enter the heap. */
#include "store/vector_index.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

#include "core/alloc.h"

#define ALIGN 32
#define LANES 8

struct fv_vector_index {
    char *name;
    uint32_t dim;
    uint32_t stride;            /* floats per vector, a multiple of LANES */
    fv_vector_metric_t metric;
    size_t count;
    size_t cap;
    void *raw;                  /* the allocation behind data */
    float *data;                /* cap * stride floats, ALIGN-aligned */
    char **ids;                 /* owned strings, parallel to data */
    uint64_t *hashes;
    json_t **payloads;          /* a reference each, or NULL */
    uint32_t *table;            /* open addressing, linear probing: slot + 1, 0 = empty */
    size_t table_cap;           /* a power of two, kept over count / 0.7 */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

const char *fv_vector_metric_name(fv_vector_metric_t m)
{
    return m == FV_VECTOR_DOT ? "dot" : "cosine";
}

/* --- the kernel ------------------------------------------------------------------------ */

/* Eight independent partial sums so the adds do not wait on each other; the compiler maps
 * them to one SIMD register where it can. Correct for any n. */
static float dot_generic(const float *restrict a, const float *restrict b, size_t n)
{
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            s[j] += a[i + j] * b[i + j];
    float t = 0;
    for (; i < n; i++)
        t += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

/* Four 8-wide FMA accumulators: 32 floats per step hide the FMA latency, and the loads are
 * unaligned-tolerant so the same code serves fv_vector_dot() on caller memory. */
__attribute__((target("avx2,fma")))
static float dot_avx2(const float *restrict a, const float *restrict b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float t = _mm_cvtss_f32(h);
    for (; i < n; i++)
        t += a[i] * b[i];
    return t;
}

typedef float (*dot_fn)(const float *restrict, const float *restrict, size_t);

static dot_fn pick_dot(void)
{
    /* Checked per search, not cached: the builtin reads a word libgcc filled at start-up. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return dot_avx2;
    return dot_generic;
}

float fv_vector_dot(const float *a, const float *b, size_t n)
{
    return pick_dot()(a, b, n);
}

/* --- validation ------------------------------------------------------------------------ */

int fv_vector_check_name(const char *name, fv_error_t *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > FV_VECTOR_MAX_NAME_LEN)
        return fv_error_set(err, FV_EINVAL, "collection name must have 1..%d bytes",
                            FV_VECTOR_MAX_NAME_LEN);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return fv_error_set(err, FV_EINVAL, "collection name '%.*s': byte %zu is not one "
                                "of A-Z a-z 0-9 _ -", (int)n, name, i);
    }
    return 0;
}

int fv_vector_check_id(const char *id, fv_error_t *err)
{
    size_t n = id ? strnlen(id, FV_VECTOR_MAX_ID_LEN + 1) : 0;
    if (n == 0 || n > FV_VECTOR_MAX_ID_LEN)
        return fv_error_set(err, FV_EINVAL, "point id must have 1..%d bytes",
                            FV_VECTOR_MAX_ID_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f)
            return fv_error_set(err, FV_EINVAL, "point id has a control character at byte %zu",
                                i);
    }
    return 0;
}

int fv_vector_check_dim(uint32_t dim, fv_error_t *err)
{
    if (dim < 1 || dim > FV_VECTOR_MAX_DIM)
        return fv_error_set(err, FV_EINVAL, "dimension %u is not in 1..%d", dim,
                            FV_VECTOR_MAX_DIM);
    return 0;
}

/* Finite components and a squared norm that fits a float: by Cauchy-Schwarz every partial
 * dot product of two such vectors is then finite too, so scores never become Inf or NaN. */
static int check_vector(const fv_vector_index_t *ix, const float *vec, uint32_t dim,
                        const char *what, double *norm2, fv_error_t *err)
{
    if (dim != ix->dim)
        return fv_error_set(err, FV_EINVAL, "%s has %u dimensions, collection '%s' expects %u",
                            what, dim, ix->name, ix->dim);
    if (!vec)
        return fv_error_set(err, FV_EINVAL, "%s is missing", what);
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(vec[i]))
            return fv_error_set(err, FV_EINVAL, "%s component %u is not a finite number", what,
                                i);
        s += (double)vec[i] * vec[i];
    }
    if (s >= FLT_MAX / 4)
        return fv_error_set(err, FV_EINVAL, "%s is too long (norm %.3g)", what, sqrt(s));
    if (ix->metric == FV_VECTOR_COSINE && s == 0)
        return fv_error_set(err, FV_EINVAL, "%s is all zeros: no direction for cosine", what);
    *norm2 = s;
    return 0;
}

int fv_vector_index_check_point(const fv_vector_index_t *ix, const char *id, const float *vec,
                                uint32_t dim, const json_t *payload, fv_error_t *err)
{
    int rc = fv_vector_check_id(id, err);
    if (rc < 0)
        return rc;
    double n2;
    if ((rc = check_vector(ix, vec, dim, "vector", &n2, err)) < 0)
        return rc;
    if (payload && !json_is_object(payload) && !json_is_null(payload))
        return fv_error_set(err, FV_EINVAL, "payload of point '%s' must be a JSON object", id);
    return 0;
}

/* --- the hash map ---------------------------------------------------------------------- */

static uint64_t hash_id(const fv_vector_index_t *ix, const char *id)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)id, strlen(id), ix->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return v;
}

/* Table position of id, or -1. */
static int64_t table_find(const fv_vector_index_t *ix, const char *id, uint64_t h)
{
    if (!ix->table_cap)
        return -1;
    size_t mask = ix->table_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t e = ix->table[i];
        if (!e)
            return -1;
        if (ix->hashes[e - 1] == h && strcmp(ix->ids[e - 1], id) == 0)
            return (int64_t)i;
    }
}

static void table_put(fv_vector_index_t *ix, uint32_t slot)
{
    size_t mask = ix->table_cap - 1;
    size_t i = ix->hashes[slot] & mask;
    while (ix->table[i])
        i = (i + 1) & mask;
    ix->table[i] = slot + 1;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void table_remove_at(fv_vector_index_t *ix, size_t i)
{
    size_t mask = ix->table_cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t e = ix->table[j];
        if (!e)
            break;
        size_t home = ix->hashes[e - 1] & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        ix->table[i] = e;
        i = j;
    }
    ix->table[i] = 0;
}

static int table_grow(fv_vector_index_t *ix, size_t want_count)
{
    if (want_count * 10 < ix->table_cap * 7)
        return 0;
    size_t cap = ix->table_cap ? ix->table_cap : 16;
    while (want_count * 10 >= cap * 7)
        cap *= 2;
    uint32_t *t = fv_try_malloc(cap * sizeof(*t));
    if (!t)
        return FV_ENOMEM;
    memset(t, 0, cap * sizeof(*t));
    fv_free(ix->table);
    ix->table = t;
    ix->table_cap = cap;
    for (size_t s = 0; s < ix->count; s++)
        table_put(ix, (uint32_t)s);
    return 0;
}

/* --- storage --------------------------------------------------------------------------- */

static int storage_grow(fv_vector_index_t *ix, size_t want)
{
    if (want <= ix->cap)
        return 0;
    if (want > UINT32_MAX - 1)
        return FV_ENOMEM;
    size_t cap = ix->cap ? ix->cap : 64;
    while (cap < want)
        cap = cap < 65536 ? cap * 2 : cap + cap / 2;
    size_t bytes = cap * ix->stride * sizeof(float);
    if (bytes / sizeof(float) / ix->stride != cap)
        return FV_ENOMEM;
    void *raw = fv_try_malloc(bytes + ALIGN);
    if (!raw)
        return FV_ENOMEM;
    float *data = (float *)(((uintptr_t)raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    char **ids = fv_try_realloc(ix->ids, cap * sizeof(*ids));
    if (ids)
        ix->ids = ids;
    uint64_t *hashes = ids ? fv_try_realloc(ix->hashes, cap * sizeof(*hashes)) : NULL;
    if (hashes)
        ix->hashes = hashes;
    json_t **payloads = hashes ? fv_try_realloc(ix->payloads, cap * sizeof(*payloads)) : NULL;
    if (!payloads) {
        fv_free(raw);   /* grown parallel arrays are harmless: cap stays the old one */
        return FV_ENOMEM;
    }
    ix->payloads = payloads;
    if (ix->count)
        memcpy(data, ix->data, ix->count * ix->stride * sizeof(float));
    fv_free(ix->raw);
    ix->raw = raw;
    ix->data = data;
    ix->cap = cap;
    return 0;
}

int fv_vector_index_new(const char *name, uint32_t dim, fv_vector_metric_t metric,
                        fv_vector_index_t **out, fv_error_t *err)
{
    int rc = fv_vector_check_name(name, err);
    if (rc < 0)
        return rc;
    if ((rc = fv_vector_check_dim(dim, err)) < 0)
        return rc;
    if (metric != FV_VECTOR_COSINE && metric != FV_VECTOR_DOT)
        return fv_error_set(err, FV_EINVAL, "unknown distance metric %d", (int)metric);
    if (sodium_init() < 0)
        return fv_error_set(err, FV_EINTERNAL, "libsodium failed to initialise");
    fv_vector_index_t *ix = fv_calloc(1, sizeof(*ix));
    ix->name = fv_strdup(name);
    ix->dim = dim;
    ix->stride = (dim + LANES - 1) / LANES * LANES;
    ix->metric = metric;
    randombytes_buf(ix->hash_key, sizeof(ix->hash_key));
    *out = ix;
    return 0;
}

void fv_vector_index_free(fv_vector_index_t *ix)
{
    if (!ix)
        return;
    for (size_t s = 0; s < ix->count; s++) {
        fv_free(ix->ids[s]);
        json_decref(ix->payloads[s]);
    }
    fv_free(ix->ids);
    fv_free(ix->hashes);
    fv_free(ix->payloads);
    fv_free(ix->table);
    fv_free(ix->raw);
    fv_free(ix->name);
    fv_free(ix);
}

const char *fv_vector_index_name(const fv_vector_index_t *ix) { return ix->name; }
uint32_t fv_vector_index_dim(const fv_vector_index_t *ix) { return ix->dim; }
fv_vector_metric_t fv_vector_index_metric(const fv_vector_index_t *ix) { return ix->metric; }
size_t fv_vector_index_count(const fv_vector_index_t *ix) { return ix->count; }

const char *fv_vector_index_id(const fv_vector_index_t *ix, uint32_t slot)
{
    return ix->ids[slot];
}

const float *fv_vector_index_vector(const fv_vector_index_t *ix, uint32_t slot)
{
    return ix->data + (size_t)slot * ix->stride;
}

json_t *fv_vector_index_payload(const fv_vector_index_t *ix, uint32_t slot)
{
    return ix->payloads[slot];
}

int64_t fv_vector_index_find(const fv_vector_index_t *ix, const char *id)
{
    if (!id)
        return -1;
    int64_t pos = table_find(ix, id, hash_id(ix, id));
    return pos < 0 ? -1 : (int64_t)ix->table[pos] - 1;
}

static void store_vector(fv_vector_index_t *ix, size_t slot, const float *vec, double norm2)
{
    float *dst = ix->data + slot * ix->stride;
    float scale = ix->metric == FV_VECTOR_COSINE ? (float)(1.0 / sqrt(norm2)) : 1.0f;
    for (uint32_t i = 0; i < ix->dim; i++)
        dst[i] = vec[i] * scale;
    for (uint32_t i = ix->dim; i < ix->stride; i++)
        dst[i] = 0;
}

int fv_vector_index_upsert(fv_vector_index_t *ix, const char *id, const float *vec,
                           uint32_t dim, json_t *payload, fv_error_t *err)
{
    int rc = fv_vector_check_id(id, err);
    if (rc < 0)
        return rc;
    double n2;
    if ((rc = check_vector(ix, vec, dim, "vector", &n2, err)) < 0)
        return rc;
    if (payload && json_is_null(payload))
        payload = NULL;
    if (payload && !json_is_object(payload))
        return fv_error_set(err, FV_EINVAL, "payload of point '%s' must be a JSON object", id);

    uint64_t h = hash_id(ix, id);
    int64_t pos = table_find(ix, id, h);
    if (pos >= 0) {                    /* replace in place */
        uint32_t slot = ix->table[pos] - 1;
        store_vector(ix, slot, vec, n2);
        json_decref(ix->payloads[slot]);
        ix->payloads[slot] = json_incref(payload);
        return 0;
    }
    if ((rc = storage_grow(ix, ix->count + 1)) < 0 || (rc = table_grow(ix, ix->count + 1)) < 0)
        return fv_error_set(err, rc, "out of memory growing collection '%s'", ix->name);
    size_t slot = ix->count;
    store_vector(ix, slot, vec, n2);
    ix->ids[slot] = fv_strdup(id);
    ix->hashes[slot] = h;
    ix->payloads[slot] = json_incref(payload);
    ix->count++;
    table_put(ix, (uint32_t)slot);
    return 0;
}

int fv_vector_index_delete(fv_vector_index_t *ix, const char *id)
{
    if (!id)
        return FV_ENOENT;
    int64_t pos = table_find(ix, id, hash_id(ix, id));
    if (pos < 0)
        return FV_ENOENT;
    uint32_t slot = ix->table[pos] - 1;
    table_remove_at(ix, (size_t)pos);
    fv_free(ix->ids[slot]);
    json_decref(ix->payloads[slot]);
    size_t last = ix->count - 1;
    if (slot != last) {                /* the last point fills the hole */
        memcpy(ix->data + (size_t)slot * ix->stride, ix->data + last * ix->stride,
               ix->stride * sizeof(float));
        ix->ids[slot] = ix->ids[last];
        ix->hashes[slot] = ix->hashes[last];
        ix->payloads[slot] = ix->payloads[last];
        int64_t lp = table_find(ix, ix->ids[slot], ix->hashes[slot]);
        ix->table[lp] = slot + 1;
    }
    ix->count--;
    return 0;
}

/* --- search ---------------------------------------------------------------------------- */

/* The heap keeps the k best seen so far with the worst at the root. */
static bool worse(const fv_vector_index_t *ix, fv_vector_index_hit_t a, fv_vector_index_hit_t b)
{
    if (a.score != b.score)
        return a.score < b.score;
    return strcmp(ix->ids[a.slot], ix->ids[b.slot]) > 0;
}

static void sift_down(const fv_vector_index_t *ix, fv_vector_index_hit_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(ix, h[l], h[m]))
            m = l;
        if (r < n && worse(ix, h[r], h[m]))
            m = r;
        if (m == i)
            return;
        fv_vector_index_hit_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(const fv_vector_index_t *ix, fv_vector_index_hit_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(ix, h[i], h[p]))
            return;
        fv_vector_index_hit_t t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* Points are scored in blocks so the kernel loop stays tight; the heap sees only scores. */
#define BLOCK 64

int fv_vector_index_search(const fv_vector_index_t *ix, const float *query, uint32_t dim,
                           size_t k, const json_t *filter, fv_vector_index_hit_t *out,
                           size_t *found, fv_error_t *err)
{
    *found = 0;
    double n2;
    int rc = check_vector(ix, query, dim, "query vector", &n2, err);
    if (rc < 0)
        return rc;
    if (k < 1 || k > FV_VECTOR_MAX_K)
        return fv_error_set(err, FV_EINVAL, "limit %zu is not in 1..%d", k, FV_VECTOR_MAX_K);
    if ((rc = fv_vector_filter_check(filter, err)) < 0)
        return rc;
    if (filter && json_is_null(filter))
        filter = NULL;

    float *q = fv_try_malloc(ix->stride * sizeof(float) + ALIGN);
    if (!q)
        return fv_error_set(err, FV_ENOMEM, "out of memory for the query");
    float *qa = (float *)(((uintptr_t)q + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    float scale = ix->metric == FV_VECTOR_COSINE ? (float)(1.0 / sqrt(n2)) : 1.0f;
    for (uint32_t i = 0; i < ix->dim; i++)
        qa[i] = query[i] * scale;
    for (uint32_t i = ix->dim; i < ix->stride; i++)
        qa[i] = 0;

    dot_fn dot = pick_dot();
    size_t n = 0;
    float scores[BLOCK];
    for (size_t base = 0; base < ix->count; base += BLOCK) {
        size_t m = ix->count - base < BLOCK ? ix->count - base : BLOCK;
        const float *v = ix->data + base * ix->stride;
        for (size_t j = 0; j < m; j++)
            scores[j] = dot(v + j * ix->stride, qa, ix->stride);
        for (size_t j = 0; j < m; j++) {
            fv_vector_index_hit_t hit = {(uint32_t)(base + j), scores[j]};
            if (n == k && !worse(ix, out[0], hit))
                continue;
            if (filter && !fv_vector_filter_match(filter, ix->payloads[hit.slot]))
                continue;
            if (n < k) {
                out[n] = hit;
                sift_up(ix, out, n++);
            } else {
                out[0] = hit;
                sift_down(ix, out, n, 0);
            }
        }
    }
    fv_free(q);
    /* Pop the worst to the end repeatedly: the array ends up best first. */
    for (size_t end = n; end > 1; end--) {
        fv_vector_index_hit_t t = out[0];
        out[0] = out[end - 1];
        out[end - 1] = t;
        sift_down(ix, out, end - 1, 0);
    }
    *found = n;
    return 0;
}
