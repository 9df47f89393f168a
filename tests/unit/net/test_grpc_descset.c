/* test_grpc_descset.c - the descriptor-set index server reflection answers from: the set built
 * into the binary (our protos and the standard ones) finds files by name and by every kind of
 * symbol, and a file's imports; made-up sets with a nested message, and bad input (a length
 * past the end, a group, a file without a name, an empty name, nesting too deep) refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/grpc_descset.h"

extern const uint8_t fv__grpc_descriptor_set[];
extern const size_t fv__grpc_descriptor_set_len;

static void built_in_set(void **state)
{
    fv_descset_t *ds;
    assert_int_equal(fv_descset_parse(fv__grpc_descriptor_set, fv__grpc_descriptor_set_len, &ds),
                     0);
    assert_true(fv_descset_count(ds) >= 6);
    long common = fv_descset_find_file(ds, "common.proto");
    assert_true(common >= 0);
    long probe = fv_descset_find_symbol(ds, "finalverse.testing.v1.Probe");
    assert_true(probe >= 0);
    assert_string_equal(fv_descset_name(ds, (size_t)probe), "probe.proto");
    assert_int_equal(fv_descset_find_symbol(ds, "finalverse.testing.v1.Probe.Echo"), probe);
    assert_int_equal(fv_descset_find_symbol(ds, ".finalverse.testing.v1.EchoMessage"), probe);
    assert_true(fv_descset_is_message(ds, "finalverse.testing.v1.EchoMessage"));
    assert_false(fv_descset_is_message(ds, "finalverse.testing.v1.Probe"));
    long test = fv_descset_find_symbol(ds, "grpc.testing.TestService.FullDuplexCall");
    assert_true(test >= 0);
    assert_string_equal(fv_descset_name(ds, (size_t)test), "grpc/testing/test.proto");
    assert_true(fv_descset_find_symbol(ds, "grpc.testing.PayloadType") >= 0);   /* an enum */
    assert_true(fv_descset_find_symbol(ds, "grpc.reflection.v1alpha.ServerReflection") >= 0);
    assert_int_equal(fv_descset_find_symbol(ds, "finalverse.testing.v1.Nope"), -1);
    assert_int_equal(fv_descset_find_symbol(ds, "finalverse.testing"), -1);

    /* probe.proto imports common.proto: both, the file first, each once */
    size_t idx[16];
    size_t n = fv_descset_closure(ds, (size_t)probe, idx, 16);
    assert_int_equal(n, 2);
    assert_int_equal(idx[0], (size_t)probe);
    assert_int_equal(idx[1], (size_t)common);
    n = fv_descset_closure(ds, (size_t)test, idx, 16);
    assert_int_equal(n, 3);                  /* test.proto, empty.proto, messages.proto */
    fv_slice_t b = fv_descset_bytes(ds, (size_t)common);
    assert_true(b.len > 0 && b.ptr[0] == 0x0a);
    fv_descset_free(ds);
}

/* Appends a length-delimited field. */
static size_t put(uint8_t *out, size_t at, uint8_t field, const void *p, size_t len)
{
    out[at++] = (uint8_t)(field << 3 | 2);
    out[at++] = (uint8_t)len;
    memcpy(out + at, p, len);
    return at + len;
}

static void made_up_set(void **state)
{
    uint8_t inner[32], msg[64], file[128], set[160];
    size_t n = put(inner, 0, 1, "In", 2);
    size_t m = put(msg, 0, 1, "Out", 3);
    m = put(msg, m, 3, inner, n);                /* nested_type */
    msg[m++] = 2 << 3;                           /* field 2 as a varint: skipped */
    msg[m++] = 0x96;
    msg[m++] = 0x01;
    size_t f = put(file, 0, 1, "a.proto", 7);
    f = put(file, f, 4, msg, m);                 /* message_type before the package */
    f = put(file, f, 2, "p.q", 3);
    f = put(file, f, 3, "missing.proto", 13);    /* an import not in the set */
    size_t s = put(set, 0, 1, file, f);
    fv_descset_t *ds;
    assert_int_equal(fv_descset_parse(set, s, &ds), 0);
    assert_int_equal(fv_descset_find_symbol(ds, "p.q.Out.In"), 0);
    assert_true(fv_descset_is_message(ds, "p.q.Out"));
    size_t idx[4];
    assert_int_equal(fv_descset_closure(ds, 0, idx, 4), 1);
    fv_descset_free(ds);

    /* the same file cut short anywhere: refused or read as far as it is whole, never past */
    for (size_t cut = 0; cut < s; cut++) {
        if (fv_descset_parse(set, cut, &ds) == 0)
            fv_descset_free(ds);
    }
    fv_descset_t *none;
    assert_int_equal(fv_descset_parse(set, 3, &none), FV_EINVAL);
    assert_null(none);
}

static void bad_sets(void **state)
{
    fv_descset_t *ds;
    static const uint8_t past_end[] = {0x0a, 0x10, 0x0a, 0x01, 'x'};
    assert_int_equal(fv_descset_parse(past_end, sizeof(past_end), &ds), FV_EINVAL);
    static const uint8_t group[] = {0x0b, 0x0c};
    assert_int_equal(fv_descset_parse(group, sizeof(group), &ds), FV_EINVAL);
    static const uint8_t no_name[] = {0x0a, 0x03, 0x12, 0x01, 'p'};
    assert_int_equal(fv_descset_parse(no_name, sizeof(no_name), &ds), FV_EINVAL);
    static const uint8_t empty_name[] = {0x0a, 0x02, 0x0a, 0x00};
    assert_int_equal(fv_descset_parse(empty_name, sizeof(empty_name), &ds), FV_EINVAL);
    static const uint8_t field_zero[] = {0x02, 0x00};
    assert_int_equal(fv_descset_parse(field_zero, sizeof(field_zero), &ds), FV_EINVAL);
    assert_int_equal(fv_descset_parse(NULL, 0, &ds), 0);      /* an empty set */
    assert_int_equal(fv_descset_count(ds), 0);
    assert_int_equal(fv_descset_find_symbol(ds, "x"), -1);
    fv_descset_free(ds);

    /* messages nested 40 deep: over the limit */
    static uint8_t buf[4096], tmp[4096];
    size_t n = put(buf, 0, 1, "M", 1);
    for (int i = 0; i < 40; i++) {
        size_t m = put(tmp, 0, 1, "M", 1);
        tmp[m++] = 3 << 3 | 2;
        tmp[m++] = (uint8_t)(0x80 | (n & 0x7f));
        tmp[m++] = (uint8_t)(n >> 7);
        memcpy(tmp + m, buf, n);
        n = m + n;
        memcpy(buf, tmp, n);
    }
    size_t f = put(tmp, 0, 1, "d.proto", 7);
    tmp[f++] = 4 << 3 | 2;
    tmp[f++] = (uint8_t)(0x80 | (n & 0x7f));
    tmp[f++] = (uint8_t)(n >> 7);
    memcpy(tmp + f, buf, n);
    f += n;
    buf[0] = 1 << 3 | 2;
    buf[1] = (uint8_t)(0x80 | (f & 0x7f));
    buf[2] = (uint8_t)(f >> 7);
    memcpy(buf + 3, tmp, f);
    assert_int_equal(fv_descset_parse(buf, f + 3, &ds), FV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(built_in_set),
        cmocka_unit_test(made_up_set),
        cmocka_unit_test(bad_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
