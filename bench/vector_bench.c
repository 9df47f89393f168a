/* vector_bench.c - exact search speed of the embedded vector store against the machine's
 * memcpy bandwidth: N x DIM random vectors, Q queries with k = 10, through the pure index and
 * through the async store (fv_vector_search on a libuv loop, which scans on the work queue).
 * An exact scan reads every vector once per query, so bytes scanned per second over memcpy's
 * bytes copied per second (same buffer size, best of several) says how close it is to the
 * physical limit. Built by bench/vector.sh against the library as built. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "store/vector.h"
#include "store/vector_index.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float rndf(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

static int pending;
static void on_done(int rc, const fv_error_t *err, void *data)
{
    if (rc < 0) {
        fprintf(stderr, "vector_bench: %s\n", err->msg);
        exit(1);
    }
    pending--;
}
static void on_search(int rc, const fv_vector_hit_t *h, size_t n, const fv_error_t *err, void *d)
{
    on_done(rc, err, d);
}
static fv_vector_t *store;
static void on_open(int rc, fv_vector_t *v, const fv_error_t *err, void *data)
{
    on_done(rc, err, data);
    store = v;
}
static void on_closed(void *data)
{
    pending--;
}

static void run(uv_loop_t *loop)
{
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    uint32_t dim = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 384;
    size_t queries = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    size_t k = 10;
    size_t bytes = n * dim * sizeof(float);

    float *vecs = malloc(bytes);
    for (size_t i = 0; i < n * dim; i++)
        vecs[i] = rndf();
    float *qs = malloc(queries * dim * sizeof(float));
    for (size_t i = 0; i < queries * dim; i++)
        qs[i] = rndf();

    /* memcpy of a same-size buffer, best of 7 (first touch excluded). */
    char *src = malloc(bytes), *dst = malloc(bytes);
    memset(src, 1, bytes);
    memset(dst, 2, bytes);
    double best_copy = 1e9;
    for (int r = 0; r < 7; r++) {
        double t0 = now_s();
        memcpy(dst, src, bytes);
        double t = now_s() - t0;
        if (t < best_copy)
            best_copy = t;
        src[r] = dst[bytes - 1 - r];   /* keep the copies observable */
    }
    double copy_bw = bytes / best_copy;
    free(src);
    free(dst);

    /* The pure index. */
    fv_vector_index_t *ix;
    fv_error_t err;
    if (fv_vector_index_new("bench", dim, FV_VECTOR_COSINE, &ix, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char id[24];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%zu", i);
        if (fv_vector_index_upsert(ix, id, vecs + i * dim, dim, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    fv_vector_index_hit_t hits[10];
    size_t found;
    double best_ix = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        for (size_t q = 0; q < queries; q++)
            if (fv_vector_index_search(ix, qs + q * dim, dim, k, NULL, hits, &found, &err) < 0)
                return 1;
        double qps = queries / (now_s() - t0);
        if (qps > best_ix)
            best_ix = qps;
    }
    fv_vector_index_free(ix);

    /* The async store: one query in flight at a time, as a request handler would issue. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    pending = 1;
    if (fv_vector_open(&loop, "embedded:", NULL, on_open, NULL, &err) < 0)
        return 1;
    run(&loop);
    pending = 1;
    if (fv_vector_create(store, "bench", dim, FV_VECTOR_COSINE, on_done, NULL) < 0)
        return 1;
    run(&loop);
    enum { BATCH = 1000 };
    fv_vector_point_t *pts = malloc(BATCH * sizeof(*pts));
    char (*ids)[24] = malloc(BATCH * 24);
    for (size_t b = 0; b < n; b += BATCH) {
        size_t m = n - b < BATCH ? n - b : BATCH;
        for (size_t i = 0; i < m; i++) {
            snprintf(ids[i], 24, "%zu", b + i);
            pts[i] = (fv_vector_point_t){ids[i], vecs + (b + i) * dim, dim, NULL};
        }
        pending = 1;
        if (fv_vector_upsert(store, "bench", pts, m, on_done, NULL) < 0)
            return 1;
        run(&loop);
    }
    double best_store = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        for (size_t q = 0; q < queries; q++) {
            pending = 1;
            if (fv_vector_search(store, "bench", qs + q * dim, dim, k, NULL, on_search, NULL) < 0)
                return 1;
            run(&loop);
        }
        double qps = queries / (now_s() - t0);
        if (qps > best_store)
            best_store = qps;
    }
    pending = 1;
    fv_vector_close(store, on_closed, NULL);
    run(&loop);
    uv_loop_close(&loop);

    double scan = (double)bytes;
    printf("vector exact search: %zu x %u float32 (%.1f MB scanned per query), %zu queries, "
           "k=%zu, best of 3\n", n, dim, scan / 1e6, queries, k);
    printf("  memcpy (same size, best of 7):   %8.2f GB/s copied (%.2f GB/s of read+write "
           "traffic)\n", copy_bw / 1e9, 2 * copy_bw / 1e9);
    printf("  index search (pure, loop thread): %8.1f queries/s  %8.2f GB/s  %5.1f %% of memcpy\n",
           best_ix, best_ix * scan / 1e9, 100 * best_ix * scan / copy_bw);
    printf("  store search (fv_vector_search):  %8.1f queries/s  %8.2f GB/s  %5.1f %% of memcpy\n",
           best_store, best_store * scan / 1e9, 100 * best_store * scan / copy_bw);
    free(pts);
    free(ids);
    free(vecs);
    free(qs);
    return 0;
}
