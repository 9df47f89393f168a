/* test_vector_index.c - the in-memory vector index: exact top-k against a naive reference on
 * seeded random data, ties, k over the count, payload filters, delete/upsert bookkeeping and
 * refusal of bad input with precise messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/vector_index.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float rndf(void)
{
    return (float)((double)rnd() / 4294967296.0 * 2.0 - 1.0);
}

static void fill(float *v, uint32_t dim)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = rndf();
}

static double ref_score(const float *a, const float *b, uint32_t dim, fv_vector_metric_t m)
{
    double d = 0, na = 0, nb = 0;
    for (uint32_t i = 0; i < dim; i++) {
        d += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return m == FV_VECTOR_COSINE ? d / sqrt(na * nb) : d;
}

static void check_random(uint32_t dim, fv_vector_metric_t metric, size_t count, size_t k)
{
    fv_vector_index_t *ix;
    fv_error_t err;
    assert_int_equal(fv_vector_index_new("rand", dim, metric, &ix, &err), 0);
    float *vecs = malloc(count * dim * sizeof(float));
    char id[32];
    for (size_t i = 0; i < count; i++) {
        fill(vecs + i * dim, dim);
        snprintf(id, sizeof(id), "p%zu", i);
        assert_int_equal(fv_vector_index_upsert(ix, id, vecs + i * dim, dim, NULL, &err), 0);
    }
    assert_int_equal(fv_vector_index_count(ix), count);
    float *q = malloc(dim * sizeof(float));
    double *ref = malloc(count * sizeof(double));
    fv_vector_index_hit_t *hits = malloc(k * sizeof(*hits));
    for (int round = 0; round < 5; round++) {
        fill(q, dim);
        for (size_t i = 0; i < count; i++)
            ref[i] = ref_score(vecs + i * dim, q, dim, metric);
        size_t found;
        assert_int_equal(fv_vector_index_search(ix, q, dim, k, NULL, hits, &found, &err), 0);
        size_t want = k < count ? k : count;
        assert_int_equal(found, want);
        /* Each score is the reference's for that id; the list is sorted; nothing better was
         * left out (k-th best of the reference is not above the last returned). */
        double tol = 1e-4 * (metric == FV_VECTOR_DOT ? sqrt(dim) : 1.0);
        for (size_t j = 0; j < found; j++) {
            const char *hid = fv_vector_index_id(ix, hits[j].slot);
            size_t idx = strtoul(hid + 1, NULL, 10);
            assert_true(fabs(ref[idx] - hits[j].score) < tol);
            if (j)
                assert_true(hits[j - 1].score >= hits[j].score);
        }
        size_t better = 0;
        for (size_t i = 0; i < count; i++)
            if (ref[i] > hits[found - 1].score + tol)
                better++;
        assert_true(better < found);
    }
    free(hits);
    free(ref);
    free(q);
    free(vecs);
    fv_vector_index_free(ix);
}

static void exact_vs_reference(void **state)
{
    rng_state = 0x9e3779b97f4a7c15ull;
    uint32_t dims[] = {1, 3, 7, 8, 9, 31, 33, 64, 100, 384};
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        check_random(dims[i], FV_VECTOR_COSINE, 500, 10);
        check_random(dims[i], FV_VECTOR_DOT, 500, 10);
    }
    check_random(384, FV_VECTOR_COSINE, 3000, 1);
    check_random(16, FV_VECTOR_DOT, 3000, 200);
}

static void dot_kernel_any_length(void **state)
{
    rng_state = 12345;
    float a[130], b[130];
    fill(a, 130);
    fill(b, 130);
    for (size_t n = 0; n <= 130; n++) {
        double want = 0;
        for (size_t i = 0; i < n; i++)
            want += (double)a[i] * b[i];
        /* Unaligned starts too: the kernel must not assume alignment of caller memory. */
        assert_true(fabs(fv_vector_dot(a, b, n) - want) < 1e-4);
        if (n < 130) {
            double shifted = 0;
            for (size_t i = 0; i < n; i++)
                shifted += (double)a[i + 1] * b[i + 1];
            assert_true(fabs(fv_vector_dot(a + 1, b + 1, n) - shifted) < 1e-4);
        }
    }
}

static void ties_break_by_id(void **state)
{
    fv_vector_index_t *ix;
    fv_error_t err;
    assert_int_equal(fv_vector_index_new("ties", 2, FV_VECTOR_DOT, &ix, &err), 0);
    float v[2] = {1, 1};
    const char *ids[] = {"m", "c", "x", "a", "k"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(fv_vector_index_upsert(ix, ids[i], v, 2, NULL, &err), 0);
    fv_vector_index_hit_t hits[3];
    size_t found;
    assert_int_equal(fv_vector_index_search(ix, v, 2, 3, NULL, hits, &found, &err), 0);
    assert_int_equal(found, 3);
    assert_string_equal(fv_vector_index_id(ix, hits[0].slot), "a");
    assert_string_equal(fv_vector_index_id(ix, hits[1].slot), "c");
    assert_string_equal(fv_vector_index_id(ix, hits[2].slot), "k");
    fv_vector_index_free(ix);
}

static void k_over_count_and_empty(void **state)
{
    fv_vector_index_t *ix;
    fv_error_t err;
    assert_int_equal(fv_vector_index_new("small", 3, FV_VECTOR_COSINE, &ix, &err), 0);
    float q[3] = {1, 0, 0};
    fv_vector_index_hit_t hits[50];
    size_t found = 99;
    assert_int_equal(fv_vector_index_search(ix, q, 3, 50, NULL, hits, &found, &err), 0);
    assert_int_equal(found, 0);
    float a[3] = {1, 0, 0}, b[3] = {0, 1, 0}, c[3] = {-2, 0, 0};
    assert_int_equal(fv_vector_index_upsert(ix, "a", a, 3, NULL, &err), 0);
    assert_int_equal(fv_vector_index_upsert(ix, "b", b, 3, NULL, &err), 0);
    assert_int_equal(fv_vector_index_upsert(ix, "c", c, 3, NULL, &err), 0);
    assert_int_equal(fv_vector_index_search(ix, q, 3, 50, NULL, hits, &found, &err), 0);
    assert_int_equal(found, 3);
    assert_string_equal(fv_vector_index_id(ix, hits[0].slot), "a");
    assert_true(fabsf(hits[0].score - 1.0f) < 1e-6);
    assert_string_equal(fv_vector_index_id(ix, hits[1].slot), "b");
    assert_true(fabsf(hits[1].score) < 1e-6);
    assert_string_equal(fv_vector_index_id(ix, hits[2].slot), "c");
    assert_true(fabsf(hits[2].score + 1.0f) < 1e-6);   /* normalised: -2 becomes -1 */
    fv_vector_index_free(ix);
}

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

/* Search everything with a filter; return the matching ids sorted, comma-joined. */
static void filtered(fv_vector_index_t *ix, const char *filter, char *out, size_t outlen)
{
    json_t *f = J(filter);
    float q[1] = {1};
    fv_vector_index_hit_t hits[16];
    size_t found;
    fv_error_t err;
    assert_int_equal(fv_vector_index_search(ix, q, 1, 16, f, hits, &found, &err), 0);
    json_decref(f);
    /* dot metric with all-equal vectors: ties come back in id order */
    out[0] = '\0';
    for (size_t i = 0; i < found; i++) {
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        strncat(out, fv_vector_index_id(ix, hits[i].slot), outlen - strlen(out) - 1);
    }
}

static void filters(void **state)
{
    fv_vector_index_t *ix;
    fv_error_t err;
    assert_int_equal(fv_vector_index_new("f", 1, FV_VECTOR_DOT, &ix, &err), 0);
    const char *payloads[] = {
        "{\"kind\":\"lore\",\"level\":1,\"tags\":[\"old\",\"sea\"],\"meta\":{\"region\":\"n\"}}",
        "{\"kind\":\"lore\",\"level\":5,\"tags\":[\"new\"],\"meta\":{\"region\":\"s\"}}",
        "{\"kind\":\"memory\",\"level\":3.5,\"public\":true}",
        "{\"kind\":\"memory\",\"level\":10,\"public\":false}",
        "{}",
    };
    float v[1] = {1};
    char id[8];
    for (int i = 0; i < 5; i++) {
        json_t *p = J(payloads[i]);
        snprintf(id, sizeof(id), "p%d", i);
        assert_int_equal(fv_vector_index_upsert(ix, id, v, 1, p, &err), 0);
        json_decref(p);
    }
    assert_int_equal(fv_vector_index_upsert(ix, "p5", v, 1, NULL, &err), 0);
    char got[128];
    filtered(ix, "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":\"lore\"}}]}", got, 128);
    assert_string_equal(got, "p0,p1");
    filtered(ix, "{\"must\":[{\"key\":\"level\",\"range\":{\"gte\":3,\"lt\":10}}]}", got, 128);
    assert_string_equal(got, "p1,p2");
    filtered(ix, "{\"must\":[{\"key\":\"level\",\"range\":{\"gt\":1,\"lte\":10}}]}", got, 128);
    assert_string_equal(got, "p1,p2,p3");
    filtered(ix, "{\"must_not\":[{\"key\":\"kind\",\"match\":{\"value\":\"lore\"}}]}", got,
             128);
    assert_string_equal(got, "p2,p3,p4,p5");
    filtered(ix, "{\"should\":[{\"key\":\"public\",\"match\":{\"value\":true}},"
                 "{\"key\":\"tags\",\"match\":{\"value\":\"new\"}}]}", got, 128);
    assert_string_equal(got, "p1,p2");
    filtered(ix, "{\"must\":[{\"key\":\"tags\",\"match\":{\"any\":[\"sea\",\"x\"]}}]}", got,
             128);
    assert_string_equal(got, "p0");
    filtered(ix, "{\"must\":[{\"key\":\"meta.region\",\"match\":{\"value\":\"s\"}}]}", got, 128);
    assert_string_equal(got, "p1");
    filtered(ix, "{\"must\":[{\"should\":[{\"key\":\"level\",\"match\":{\"value\":1}},"
                 "{\"key\":\"level\",\"match\":{\"value\":10}}]}],"
                 "\"must_not\":[{\"key\":\"public\",\"match\":{\"value\":false}}]}", got, 128);
    assert_string_equal(got, "p0");
    filtered(ix, "{\"must\":{\"key\":\"kind\",\"match\":{\"value\":\"memory\"}}}", got, 128);
    assert_string_equal(got, "p2,p3");
    filtered(ix, "{}", got, 128);
    assert_string_equal(got, "p0,p1,p2,p3,p4,p5");
    filtered(ix, "{\"should\":[]}", got, 128);
    assert_string_equal(got, "p0,p1,p2,p3,p4,p5");
    filtered(ix, "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":\"none\"}}]}", got, 128);
    assert_string_equal(got, "");
    fv_vector_index_free(ix);
}

static void expect_filter_error(const char *text, const char *msg_part)
{
    json_t *f = J(text);
    fv_error_t err = {0};
    assert_int_equal(fv_vector_filter_check(f, &err), FV_EINVAL);
    if (!strstr(err.msg, msg_part))
        fail_msg("filter %s: message '%s' lacks '%s'", text, err.msg, msg_part);
    json_decref(f);
}

static void bad_filters(void **state)
{
    expect_filter_error("[]", "filter: must be an object");
    expect_filter_error("{\"maybe\":[]}", "unknown clause 'maybe'");
    expect_filter_error("{\"must\":3}", "filter.must: must be an array");
    expect_filter_error("{\"must\":[3]}", "filter.must[0]: a condition must be an object");
    expect_filter_error("{\"must\":[{\"key\":\"\",\"match\":{\"value\":1}}]}", "key: must be");
    expect_filter_error("{\"must\":[{\"key\":\"a\"}]}", "exactly one of");
    expect_filter_error("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1},\"range\":{}}]}",
                        "exactly one of");
    expect_filter_error("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":[1]}}]}",
                        "filter.must[0].match.value: must be a string, integer or boolean");
    expect_filter_error("{\"should\":[{\"key\":\"a\",\"range\":{\"between\":1}}]}",
                        "unknown bound 'between'");
    expect_filter_error("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":\"x\"}}]}",
                        "range.gt: must be a finite number");
    expect_filter_error("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[1.5]}}]}",
                        "match.any[0]");
    expect_filter_error("{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":[{\"must\":[{"
                        "\"must\":[{\"must\":[{\"must\":[{\"must\":[]}]}]}]}]}]}]}]}]}]}",
                        "nest deeper");
    assert_int_equal(fv_vector_filter_check(NULL, NULL), 0);
    json_t *null = json_null();
    assert_int_equal(fv_vector_filter_check(null, NULL), 0);
    json_decref(null);
}

static void delete_and_upsert(void **state)
{
    rng_state = 777;
    enum { N = 2000, DIM = 5 };
    fv_vector_index_t *ix;
    fv_error_t err;
    assert_int_equal(fv_vector_index_new("d", DIM, FV_VECTOR_DOT, &ix, &err), 0);
    static float vecs[N][DIM];
    static int alive[N];
    char id[16];
    for (int i = 0; i < N; i++) {
        fill(vecs[i], DIM);
        snprintf(id, sizeof(id), "%d", i);
        json_t *p = json_pack("{si}", "n", i);
        assert_int_equal(fv_vector_index_upsert(ix, id, vecs[i], DIM, p, &err), 0);
        json_decref(p);
        alive[i] = 1;
    }
    /* replace: same count, new vector and payload */
    fill(vecs[7], DIM);
    json_t *p = json_pack("{si}", "n", -7);
    assert_int_equal(fv_vector_index_upsert(ix, "7", vecs[7], DIM, p, &err), 0);
    json_decref(p);
    assert_int_equal(fv_vector_index_count(ix), N);
    for (int round = 0; round < 1500; round++) {
        int i = (int)(rnd() % N);
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(fv_vector_index_delete(ix, id), alive[i] ? 0 : FV_ENOENT);
        alive[i] = 0;
    }
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "%d", i);
        int64_t slot = fv_vector_index_find(ix, id);
        if (!alive[i]) {
            assert_int_equal(slot, -1);
            continue;
        }
        live++;
        assert_true(slot >= 0);
        assert_string_equal(fv_vector_index_id(ix, (uint32_t)slot), id);
        assert_memory_equal(fv_vector_index_vector(ix, (uint32_t)slot), vecs[i],
                            sizeof(vecs[i]));
        json_t *pl = fv_vector_index_payload(ix, (uint32_t)slot);
        assert_int_equal(json_integer_value(json_object_get(pl, "n")), i == 7 ? -7 : i);
    }
    assert_int_equal(fv_vector_index_count(ix), live);
    /* re-insert after delete works and is found */
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(fv_vector_index_upsert(ix, id, vecs[i], DIM, NULL, &err), 0);
    }
    assert_int_equal(fv_vector_index_count(ix), N);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_int_equal(fv_vector_index_delete(ix, id), 0);
    }
    assert_int_equal(fv_vector_index_count(ix), 0);
    fv_vector_index_free(ix);
}

static void expect_err(int rc, const fv_error_t *err, const char *msg)
{
    assert_int_equal(rc, FV_EINVAL);
    if (!strstr(err->msg, msg))
        fail_msg("message '%s' lacks '%s'", err->msg, msg);
}

static void bad_input(void **state)
{
    fv_vector_index_t *ix;
    fv_error_t err;
    expect_err(fv_vector_index_new("x", 0, FV_VECTOR_DOT, &ix, &err), &err,
               "dimension 0 is not in 1..4096");
    expect_err(fv_vector_index_new("x", 4097, FV_VECTOR_DOT, &ix, &err), &err,
               "dimension 4097 is not in 1..4096");
    expect_err(fv_vector_index_new("", 3, FV_VECTOR_DOT, &ix, &err), &err, "collection name");
    expect_err(fv_vector_index_new("a/b", 3, FV_VECTOR_DOT, &ix, &err), &err, "byte 1");
    expect_err(fv_vector_index_new("x", 3, (fv_vector_metric_t)9, &ix, &err), &err,
               "unknown distance");
    assert_int_equal(fv_vector_index_new("x", 384, FV_VECTOR_COSINE, &ix, &err), 0);
    float v[384] = {1, 2, 3};
    expect_err(fv_vector_index_upsert(ix, "a", v, 3, NULL, &err), &err,
               "vector has 3 dimensions, collection 'x' expects 384");
    float nan = NAN, inf = INFINITY;
    v[10] = nan;
    expect_err(fv_vector_index_upsert(ix, "a", v, 384, NULL, &err), &err,
               "component 10 is not a finite number");
    v[10] = inf;
    expect_err(fv_vector_index_upsert(ix, "a", v, 384, NULL, &err), &err,
               "component 10 is not a finite number");
    v[10] = 3e38f;
    expect_err(fv_vector_index_upsert(ix, "a", v, 384, NULL, &err), &err, "too long");
    float zero[384] = {0};
    expect_err(fv_vector_index_upsert(ix, "a", zero, 384, NULL, &err), &err, "all zeros");
    v[10] = 0;
    expect_err(fv_vector_index_upsert(ix, "", v, 384, NULL, &err), &err, "1..128 bytes");
    char longid[200];
    memset(longid, 'i', 129);
    longid[129] = '\0';
    expect_err(fv_vector_index_upsert(ix, longid, v, 384, NULL, &err), &err, "1..128 bytes");
    longid[128] = '\0';
    assert_int_equal(fv_vector_index_upsert(ix, longid, v, 384, NULL, &err), 0);
    expect_err(fv_vector_index_upsert(ix, "a\nb", v, 384, NULL, &err), &err,
               "control character at byte 1");
    json_t *arr = json_array();
    expect_err(fv_vector_index_upsert(ix, "a", v, 384, arr, &err), &err, "JSON object");
    json_decref(arr);
    assert_int_equal(fv_vector_index_count(ix), 1);   /* nothing half-stored */
    fv_vector_index_hit_t hits[2];
    size_t found;
    expect_err(fv_vector_index_search(ix, v, 383, 2, NULL, hits, &found, &err), &err,
               "query vector has 383 dimensions, collection 'x' expects 384");
    expect_err(fv_vector_index_search(ix, v, 384, 0, NULL, hits, &found, &err), &err,
               "limit 0");
    v[0] = nan;
    expect_err(fv_vector_index_search(ix, v, 384, 2, NULL, hits, &found, &err), &err,
               "query vector component 0");
    v[0] = 1;
    json_t *bad = json_pack("{s[i]}", "must", 1);
    expect_err(fv_vector_index_search(ix, v, 384, 2, bad, hits, &found, &err), &err,
               "filter.must[0]");
    json_decref(bad);
    assert_int_equal(fv_vector_index_delete(ix, "nope"), FV_ENOENT);
    fv_vector_index_free(ix);
}

static void allocation_failure_is_clean(void **state)
{
    for (unsigned long n = 1;; n++) {
        fv_vector_index_t *ix;
        fv_error_t err;
        assert_int_equal(fv_vector_index_new("oom", 4, FV_VECTOR_DOT, &ix, &err), 0);
        fv_alloc_fail_at(n);
        int rc = 0, stored = 0;
        float v[4] = {1, 2, 3, 4};
        char id[16];
        for (int i = 0; i < 200 && rc == 0; i++) {
            snprintf(id, sizeof(id), "%d", i);
            rc = fv_vector_index_upsert(ix, id, v, 4, NULL, &err);
            if (rc == 0)
                stored++;
        }
        int fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        assert_true(rc == 0 || rc == FV_ENOMEM);
        assert_int_equal(fv_vector_index_count(ix), stored);
        for (int i = 0; i < stored; i++) {
            snprintf(id, sizeof(id), "%d", i);
            assert_true(fv_vector_index_find(ix, id) >= 0);
        }
        fv_vector_index_free(ix);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_vs_reference),
        cmocka_unit_test(dot_kernel_any_length),
        cmocka_unit_test(ties_break_by_id),
        cmocka_unit_test(k_over_count_and_empty),
        cmocka_unit_test(filters),
        cmocka_unit_test(bad_filters),
        cmocka_unit_test(delete_and_upsert),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
