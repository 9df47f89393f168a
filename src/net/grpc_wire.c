/* grpc_wire.c - grpc-timeout, grpc-message and the request path (see grpc_wire.h). */
#include "net/grpc_wire.h"

int fv_grpc_timeout_parse(fv_slice_t v, uint32_t max_ms, uint32_t *ms)
{
    /* the spec allows at most 8 digits, so the value fits easily in 64 bits */
    if (v.len < 2 || v.len > 9)
        return FV_EINVAL;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return FV_EINVAL;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    uint64_t out;
    switch (v.ptr[v.len - 1]) {
    case 'H': out = n * 3600000u; break;
    case 'M': out = n * 60000u; break;
    case 'S': out = n * 1000u; break;
    case 'm': out = n; break;
    case 'u': out = (n + 999u) / 1000u; break;
    case 'n': out = (n + 999999u) / 1000000u; break;
    default: return FV_EINVAL;
    }
    if (out == 0)
        out = 1;        /* already due: 1 ms lets the deadline machinery say so */
    *ms = out > max_ms ? max_ms : (uint32_t)out;
    return 0;
}

int fv_grpc_message_encode(fv_buf_t *out, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        int rc;
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            rc = fv_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = fv_buf_append(out, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fv_grpc_path_split(fv_slice_t path, fv_slice_t *service, fv_slice_t *method)
{
    if (path.len < 4 || path.ptr[0] != '/')
        return FV_EINVAL;
    const char *slash = memchr(path.ptr + 1, '/', path.len - 1);
    if (!slash)
        return FV_EINVAL;
    *service = fv_slice(path.ptr + 1, (size_t)(slash - path.ptr - 1));
    *method = fv_slice(slash + 1, path.len - (size_t)(slash + 1 - path.ptr));
    if (service->len == 0 || method->len == 0 || memchr(method->ptr, '/', method->len))
        return FV_EINVAL;
    return 0;
}
