/* test_ws_frame.c - the WebSocket wire format without sockets: SHA-1 against FIPS vectors, the
 * accept key of RFC 6455's example, frame heads in every length form (and the malformed 64-bit
 * one), unmasking across piece boundaries, UTF-8 (overlong, surrogates, past U+10FFFF, split
 * anywhere) and the close codes a peer may send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/sha1.h"
#include "net/ws_frame.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha1_vectors(void **state)
{
    (void)state;
    uint8_t d[FV_SHA1_LEN];
    char h[41];
    fv_sha1_t c;
    fv_sha1_init(&c);
    fv_sha1_final(&c, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    fv_sha1_init(&c);
    fv_sha1_update(&c, "abc", 3);
    fv_sha1_final(&c, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    fv_sha1_init(&c);
    for (size_t i = 0; two[i]; i++)
        fv_sha1_update(&c, two + i, 1);      /* a byte at a time crosses every block edge */
    fv_sha1_final(&c, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    fv_sha1_init(&c);
    fv_sha1_update(&c, million, 333333);
    fv_sha1_update(&c, million, sizeof(million) - 333333);
    fv_sha1_final(&c, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

static void accept_key_example(void **state)
{
    (void)state;
    char out[29];
    fv_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void heads_round_trip(void **state)
{
    (void)state;
    const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t b[FV_WS_MAX_HEAD];
        size_t n = fv_ws_frame_write_head(b, FV_WS_OP_TEXT, i % 2 == 0, lens[i]);
        assert_int_equal(n, lens[i] < 126 ? 2 : lens[i] <= 0xffff ? 4 : 10);
        fv_ws_frame_t f;
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(fv_ws_frame_read_head(b, cut, &f), 0);
        assert_int_equal(fv_ws_frame_read_head(b, n, &f), (int)n);
        assert_true(f.len == lens[i]);
        assert_int_equal(f.opcode, FV_WS_OP_TEXT);
        assert_int_equal(f.fin, i % 2 == 0);
        assert_false(f.masked);
    }
    /* a masked client head with 16-bit length and its key */
    const uint8_t m[] = {0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4};
    fv_ws_frame_t f;
    for (size_t cut = 0; cut < sizeof(m); cut++)
        assert_int_equal(fv_ws_frame_read_head(m, cut, &f), 0);
    assert_int_equal(fv_ws_frame_read_head(m, sizeof(m), &f), 8);
    assert_true(f.masked);
    assert_int_equal(f.len, 256);
    assert_int_equal(f.opcode, FV_WS_OP_BINARY);
    assert_memory_equal(f.mask, "\1\2\3\4", 4);
    /* reserved bits are reported for the caller to refuse */
    const uint8_t r[] = {0xf1, 0x80, 0, 0, 0, 0};
    assert_int_equal(fv_ws_frame_read_head(r, sizeof(r), &f), 6);
    assert_int_equal(f.rsv, 7);
    /* a 64-bit length with the top bit set is malformed */
    const uint8_t big[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(fv_ws_frame_read_head(big, sizeof(big), &f), -1);
}

static void unmask_any_split(void **state)
{
    (void)state;
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t plain[100], masked[100], out[100];
    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i * 7 + 3);
        masked[i] = plain[i] ^ mask[i % 4];
    }
    for (size_t cut = 0; cut <= sizeof(plain); cut++) {
        memset(out, 0, sizeof(out));
        fv_ws_unmask(out, masked, cut, mask, 0);
        fv_ws_unmask(out + cut, masked + cut, sizeof(plain) - cut, mask, cut);
        assert_memory_equal(out, plain, sizeof(plain));
    }
    /* in place */
    memcpy(out, masked, sizeof(out));
    fv_ws_unmask(out, out, sizeof(out), mask, 0);
    assert_memory_equal(out, plain, sizeof(plain));
}

static bool utf8_split_everywhere(const char *s, size_t len)
{
    bool whole = fv_utf8_valid((const uint8_t *)s, len);
    for (size_t cut = 0; cut <= len; cut++) {
        fv_utf8_t u = {0};
        bool ok = fv_utf8_feed(&u, (const uint8_t *)s, cut) &&
                  fv_utf8_feed(&u, (const uint8_t *)s + cut, len - cut) && fv_utf8_complete(&u);
        assert_int_equal(ok, whole);
    }
    return whole;
}

#define U8(lit) utf8_split_everywhere((lit), sizeof(lit) - 1)

static void utf8_rules(void **state)
{
    (void)state;
    assert_true(U8("hello"));
    assert_true(U8("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"));
    assert_true(U8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));
    assert_true(U8("\xf0\x90\x80\x80"));            /* U+10000 */
    assert_true(U8("\xf4\x8f\xbf\xbf"));            /* U+10FFFF */
    assert_true(U8("\xed\x9f\xbf"));                /* U+D7FF */
    assert_true(U8("\xee\x80\x80"));                /* U+E000 */
    assert_false(U8("\xc0\x80"));                   /* overlong NUL */
    assert_false(U8("\xe0\x80\xaf"));               /* overlong '/' */
    assert_false(U8("\xf0\x8f\xbf\xbf"));           /* overlong U+FFFF */
    assert_false(U8("\xed\xa0\x80"));               /* U+D800, a surrogate */
    assert_false(U8("\xed\xbf\xbf"));               /* U+DFFF */
    assert_false(U8("\xf4\x90\x80\x80"));           /* past U+10FFFF */
    assert_false(U8("\xf5\x80\x80\x80"));
    assert_false(U8("\x80"));                       /* a lone continuation */
    assert_false(U8("\xce\xba\xe1\xbd"));           /* ends inside a character */
    assert_false(U8("\xfe"));
    assert_false(U8("\xc2\x41"));
    /* refused at the first byte that shows it: the rest of the text never matters */
    fv_utf8_t u = {0};
    assert_false(fv_utf8_feed(&u, (const uint8_t *)"\xf4\x90", 2));
}

static void close_codes(void **state)
{
    (void)state;
    const unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
                           4000, 4999};
    const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000,
                            2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(fv_ws_close_code_ok(ok[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(fv_ws_close_code_ok(bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1_vectors),
        cmocka_unit_test(accept_key_example),
        cmocka_unit_test(heads_round_trip),
        cmocka_unit_test(unmask_any_split),
        cmocka_unit_test(utf8_rules),
        cmocka_unit_test(close_codes),
    };
    return cmocka_run_group_tests_name("net/ws_frame", tests, NULL, NULL);
}
