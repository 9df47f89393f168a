/* fuzz_rpc_frame.c - the call envelope: gRPC frames parsed back to back from arbitrary bytes,
 * and each message decoded as a finalverse.common.v1.Position (what a call's input decoding
 * does with hostile bytes from another process). */
#include <stddef.h>
#include <stdint.h>

#include "proto/common.pb-c.h"
#include "rpc/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size > 0) {
        fv_slice_t msg;
        size_t used;
        if (fv_rpc_frame_parse(data, size, 1 << 20, &msg, &used) < 0)
            break;
        Finalverse__Common__V1__Position *p = finalverse__common__v1__position__unpack(
            NULL, msg.len, (const uint8_t *)msg.ptr);
        if (p)
            finalverse__common__v1__position__free_unpacked(p, NULL);
        data += used;
        size -= used;
    }
    return 0;
}
