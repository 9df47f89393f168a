/* test_grpc_gzip.c - inflating grpc-encoding: gzip messages within a ceiling: round trip, the
 * ceiling exactly and one byte past it, a bomb (10 MiB of zeros in a few KiB), every
 * truncation, bytes after the member, garbage, an empty message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "net/grpc_gzip.h"

/* gzip of in[0..len) into a new buffer (*zlen bytes), as a peer's compressor makes it. */
static uint8_t *gzip_of(const uint8_t *in, size_t len, size_t *zlen)
{
    z_stream s = {0};
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    size_t cap = deflateBound(&s, (uLong)len) + 32;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)len;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    *zlen = cap - s.avail_out;
    deflateEnd(&s);
    return out;
}

static void round_trip_and_ceiling(void **state)
{
    uint8_t msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 % 251);
    size_t zlen;
    uint8_t *z = gzip_of(msg, sizeof(msg), &zlen);
    fv_buf_t out;
    fv_buf_init(&out, sizeof(msg));                  /* exactly the ceiling */
    assert_int_equal(fv_grpc_gunzip(z, zlen, &out), 0);
    assert_int_equal(out.len, sizeof(msg));
    assert_memory_equal(out.ptr, msg, sizeof(msg));
    fv_buf_dispose(&out);
    fv_buf_init(&out, sizeof(msg) - 1);              /* one byte short */
    assert_int_equal(fv_grpc_gunzip(z, zlen, &out), FV_ETOOBIG);
    fv_buf_dispose(&out);
    free(z);
}

static void bomb_stops_at_the_ceiling(void **state)
{
    size_t n = 10u << 20;
    uint8_t *zeros = calloc(1, n);
    assert_non_null(zeros);
    size_t zlen;
    uint8_t *z = gzip_of(zeros, n, &zlen);
    free(zeros);
    assert_true(zlen < 64 * 1024);
    fv_buf_t out;
    fv_buf_init(&out, 4u << 20);
    assert_int_equal(fv_grpc_gunzip(z, zlen, &out), FV_ETOOBIG);
    assert_true(out.len <= 4u << 20);
    fv_buf_dispose(&out);
    free(z);
}

static void truncated_trailing_garbage_empty(void **state)
{
    const char *msg = "a song of the verse, a song of the verse, a song of the verse";
    size_t zlen;
    uint8_t *z = gzip_of((const uint8_t *)msg, strlen(msg), &zlen);
    fv_buf_t out;
    fv_buf_init(&out, 1024);
    for (size_t cut = 0; cut < zlen; cut++) {
        fv_buf_reset(&out);
        assert_int_equal(fv_grpc_gunzip(z, cut, &out), FV_EPROTO);
    }
    uint8_t *more = malloc(zlen + 1);
    assert_non_null(more);
    memcpy(more, z, zlen);
    more[zlen] = 0;
    fv_buf_reset(&out);
    assert_int_equal(fv_grpc_gunzip(more, zlen + 1, &out), FV_EPROTO);
    more[zlen / 2] ^= 0x55;                          /* corrupt: data or CRC no longer match */
    fv_buf_reset(&out);
    assert_int_equal(fv_grpc_gunzip(more, zlen, &out), FV_EPROTO);
    const uint8_t garbage[] = "not gzip at all";
    fv_buf_reset(&out);
    assert_int_equal(fv_grpc_gunzip(garbage, sizeof(garbage), &out), FV_EPROTO);
    free(more);
    free(z);

    z = gzip_of((const uint8_t *)"", 0, &zlen);     /* an empty message, compressed */
    fv_buf_reset(&out);
    assert_int_equal(fv_grpc_gunzip(z, zlen, &out), 0);
    assert_int_equal(out.len, 0);
    free(z);
    fv_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_ceiling),
        cmocka_unit_test(bomb_stops_at_the_ceiling),
        cmocka_unit_test(truncated_trailing_garbage_empty),
    };
    return cmocka_run_group_tests_name("net/grpc_gzip", tests, NULL, NULL);
}
