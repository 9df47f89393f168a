/* frame.c - gRPC length-prefixed framing (see frame.h). */
#include "rpc/frame.h"

void fv_rpc_frame_header(uint8_t out[FV_RPC_FRAME_HEADER], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int fv_rpc_frame_parse(const uint8_t *data, size_t len, size_t max_msg, fv_slice_t *msg,
                       size_t *used)
{
    if (len >= FV_RPC_FRAME_HEADER && data[0] == 1)
        return FV_EINVAL;
    bool compressed;
    return fv_rpc_frame_parse_any(data, len, max_msg, msg, used, &compressed);
}

int fv_rpc_frame_parse_any(const uint8_t *data, size_t len, size_t max_msg, fv_slice_t *msg,
                           size_t *used, bool *compressed)
{
    if (len < FV_RPC_FRAME_HEADER)
        return FV_EAGAIN;
    if (data[0] > 1)
        return FV_EPROTO;
    *compressed = data[0] == 1;
    uint32_t n = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 |
                 (uint32_t)data[4];
    if (n > max_msg)
        return FV_ETOOBIG;
    if (len - FV_RPC_FRAME_HEADER < n)
        return FV_EAGAIN;
    *msg = fv_slice((const char *)data + FV_RPC_FRAME_HEADER, n);
    *used = FV_RPC_FRAME_HEADER + (size_t)n;
    return 0;
}
