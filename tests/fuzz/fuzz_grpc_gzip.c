/* fuzz_grpc_gzip.c - a grpc-encoding: gzip request message from arbitrary bytes, inflated
 * under a small ceiling (what the gRPC server does with a hostile compressed message). */
#include <stddef.h>
#include <stdint.h>

#include "net/grpc_gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_buf_t out;
    fv_buf_init(&out, 1 << 16);
    int rc = fv_grpc_gunzip(data, size, &out);
    if (rc == 0 && out.len > 1 << 16)
        __builtin_trap();
    fv_buf_dispose(&out);
    return 0;
}
