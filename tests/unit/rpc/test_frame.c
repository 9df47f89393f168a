/* test_frame.c - gRPC length-prefixed framing: round trip, every truncation, bad flags, the
 * compressed flag, lengths over the limit told from the header alone, trailing bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "rpc/frame.h"

static void round_trip_and_every_truncation(void **state)
{
    uint8_t buf[64];
    const char *msg = "hello, verse";
    size_t n = strlen(msg);
    fv_rpc_frame_header(buf, (uint32_t)n);
    memcpy(buf + FV_RPC_FRAME_HEADER, msg, n);
    buf[FV_RPC_FRAME_HEADER + n] = 0x7f;               /* a byte of the next frame */

    fv_slice_t out;
    size_t used = 0;
    assert_int_equal(fv_rpc_frame_parse(buf, FV_RPC_FRAME_HEADER + n + 1, 100, &out, &used), 0);
    assert_int_equal(used, FV_RPC_FRAME_HEADER + n);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.ptr, msg, n);
    for (size_t cut = 0; cut < FV_RPC_FRAME_HEADER + n; cut++)
        assert_int_equal(fv_rpc_frame_parse(buf, cut, 100, &out, &used), FV_EAGAIN);
}

static void empty_message(void **state)
{
    uint8_t buf[FV_RPC_FRAME_HEADER];
    fv_rpc_frame_header(buf, 0);
    fv_slice_t out;
    size_t used;
    assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 0, &out, &used), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(used, FV_RPC_FRAME_HEADER);
}

static void bad_flags_and_sizes(void **state)
{
    uint8_t buf[16] = {0};
    fv_slice_t out;
    size_t used;
    for (int flag = 2; flag < 256; flag++) {
        buf[0] = (uint8_t)flag;
        assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 100, &out, &used), FV_EPROTO);
    }
    buf[0] = 1;                                        /* compressed: not negotiated */
    assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 100, &out, &used), FV_EINVAL);
    /* 4 GiB - 1 announced: refused from the header, long before the bytes */
    fv_rpc_frame_header(buf, UINT32_MAX);
    assert_int_equal(fv_rpc_frame_parse(buf, FV_RPC_FRAME_HEADER, 1 << 20, &out, &used),
                     FV_ETOOBIG);
    fv_rpc_frame_header(buf, 11);
    assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 10, &out, &used), FV_ETOOBIG);
    assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 11, &out, &used), 0);
}

static void compressed_frames_when_negotiated(void **state)
{
    uint8_t buf[FV_RPC_FRAME_HEADER + 3];
    fv_rpc_frame_header(buf, 3);
    memcpy(buf + FV_RPC_FRAME_HEADER, "abc", 3);
    fv_slice_t out;
    size_t used = 0;
    bool compressed = true;
    assert_int_equal(fv_rpc_frame_parse_any(buf, sizeof(buf), 3, &out, &used, &compressed), 0);
    assert_false(compressed);
    buf[0] = 1;
    assert_int_equal(fv_rpc_frame_parse(buf, sizeof(buf), 3, &out, &used), FV_EINVAL);
    assert_int_equal(fv_rpc_frame_parse_any(buf, sizeof(buf), 3, &out, &used, &compressed), 0);
    assert_true(compressed);
    assert_int_equal(used, sizeof(buf));
    assert_int_equal(fv_rpc_frame_parse_any(buf, sizeof(buf), 2, &out, &used, &compressed),
                     FV_ETOOBIG);
    assert_int_equal(fv_rpc_frame_parse_any(buf, sizeof(buf) - 1, 3, &out, &used, &compressed),
                     FV_EAGAIN);
    buf[0] = 2;
    assert_int_equal(fv_rpc_frame_parse_any(buf, sizeof(buf), 3, &out, &used, &compressed),
                     FV_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_every_truncation),
        cmocka_unit_test(empty_message),
        cmocka_unit_test(bad_flags_and_sizes),
        cmocka_unit_test(compressed_frames_when_negotiated),
    };
    return cmocka_run_group_tests_name("rpc/frame", tests, NULL, NULL);
}
