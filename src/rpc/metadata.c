/* metadata.c - see metadata.h. One flat buffer per list: a call carries a handful of pairs,
 * so a linear walk beats any index, and one allocation is one thing to free. */
#include "rpc/metadata.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"

#define MD_MAX_NAME 255     /* the length fits the record's one-byte field */
#define MD_B64 sodium_base64_VARIANT_ORIGINAL_NO_PADDING

void fv_md_init(fv_md_t *md, size_t max_bytes)
{
    md->count = 0;
    md->bytes = 0;
    md->max_bytes = max_bytes ? max_bytes : FV_MD_DEFAULT_MAX_BYTES;
    fv_buf_init(&md->buf, 0);     /* bounded by max_bytes in fv_md_add */
}

void fv_md_dispose(fv_md_t *md)
{
    fv_buf_dispose(&md->buf);
    md->count = 0;
    md->bytes = 0;
}

bool fv_md_name_is_bin(fv_slice_t name)
{
    return name.len > 4 && memcmp(name.ptr + name.len - 4, "-bin", 4) == 0;
}

bool fv_md_name_ok(fv_slice_t name)
{
    /* the transport's own headers: a handler that set them would break the framing or lie
     * about the status, and a client's copies are not the application's to read */
    static const char *const reserved[] = {
        "content-type", "content-length", "content-encoding", "accept-encoding", "te",
        "trailer", "user-agent", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "host",
    };
    if (!name.ptr || name.len == 0 || name.len > MD_MAX_NAME)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return false;
    }
    if (name.len >= 5 && memcmp(name.ptr, "grpc-", 5) == 0)
        return false;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (fv_slice_eq_cstr(name, reserved[i]))
            return false;
    return true;
}

int fv_md_add(fv_md_t *md, fv_slice_t name, const void *value, size_t len)
{
    if (!fv_md_name_ok(name) || (!value && len))
        return FV_EINVAL;
    if (!fv_md_name_is_bin(name)) {
        const unsigned char *v = value;
        for (size_t i = 0; i < len; i++)
            if (v[i] < 0x20 || v[i] > 0x7e)
                return FV_EINVAL;
    }
    if (len > md->max_bytes || name.len + len > md->max_bytes - md->bytes ||
        len > UINT32_MAX)
        return FV_ETOOBIG;
    uint8_t nl = (uint8_t)name.len;
    uint8_t vl[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                     (uint8_t)len};
    size_t before = md->buf.len;
    int rc = fv_buf_append(&md->buf, &nl, 1);
    rc = rc ? rc : fv_buf_append(&md->buf, name.ptr, name.len);
    rc = rc ? rc : fv_buf_append(&md->buf, vl, 4);
    rc = rc ? rc : fv_buf_append(&md->buf, value, len);
    if (rc < 0) {
        md->buf.len = before;     /* no half record */
        return rc;
    }
    md->count++;
    md->bytes += name.len + len;
    return 0;
}

/* The record at *pos; moves *pos past it. */
static void record_at(const fv_md_t *md, size_t *pos, fv_slice_t *name, fv_slice_t *value)
{
    const uint8_t *p = (const uint8_t *)md->buf.ptr + *pos;
    size_t nl = p[0];
    *name = fv_slice((const char *)p + 1, nl);
    const uint8_t *v = p + 1 + nl;
    size_t vl = ((size_t)v[0] << 24) | ((size_t)v[1] << 16) | ((size_t)v[2] << 8) | v[3];
    *value = fv_slice((const char *)v + 4, vl);
    *pos += 1 + nl + 4 + vl;
}

void fv_md_at(const fv_md_t *md, size_t i, fv_slice_t *name, fv_slice_t *value)
{
    size_t pos = 0;
    for (size_t k = 0; k <= i; k++)
        record_at(md, &pos, name, value);
}

fv_slice_t fv_md_get(const fv_md_t *md, const char *name)
{
    size_t pos = 0;
    for (size_t k = 0; k < md->count; k++) {
        fv_slice_t n, v;
        record_at(md, &pos, &n, &v);
        if (fv_slice_eq_cstr(n, name))
            return v;
    }
    return FV_SLICE_NULL;
}

int fv_md_copy(fv_md_t *dst, const fv_md_t *src)
{
    size_t pos = 0;
    for (size_t k = 0; k < src->count; k++) {
        fv_slice_t n, v;
        record_at(src, &pos, &n, &v);
        int rc = fv_md_add(dst, n, v.ptr, v.len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- on the wire ---- */

size_t fv_md_wire_bytes(const fv_md_t *md)
{
    size_t n = 0;
    for (size_t i = 0; md && i < md->count; i++) {
        fv_slice_t name, value;
        fv_md_at(md, i, &name, &value);
        if (fv_md_name_is_bin(name))
            n += sodium_base64_ENCODED_LEN(value.len, MD_B64);
    }
    return n;
}

void fv_md_wire_at(const fv_md_t *md, size_t i, fv_buf_t *enc, fv_slice_t *name,
                   fv_slice_t *value)
{
    fv_md_at(md, i, name, value);
    if (!fv_md_name_is_bin(*name))
        return;
    size_t cap = sodium_base64_ENCODED_LEN(value->len, MD_B64);
    char *out = enc->ptr + enc->len;
    sodium_bin2base64(out, cap, (const unsigned char *)value->ptr, value->len, MD_B64);
    enc->len += cap;
    *value = fv_slice(out, strlen(out));
}

/* One -bin value: base64, padded or not (the spec asks receivers to take both). */
static int add_b64(fv_md_t *md, fv_slice_t name, fv_slice_t b64)
{
    while (b64.len && b64.ptr[b64.len - 1] == '=')
        b64.len--;
    size_t cap = b64.len / 4 * 3 + 3, len = 0;
    unsigned char *raw = fv_try_malloc(cap);
    if (!raw)
        return FV_ENOMEM;
    int rc = FV_EINVAL;
    if (sodium_base642bin(raw, cap, b64.ptr, b64.len, NULL, &len, NULL, MD_B64) == 0)
        rc = fv_md_add(md, name, raw, len);
    fv_free(raw);
    return rc;
}

int fv_md_add_wire(fv_md_t *md, fv_slice_t name, fv_slice_t value)
{
    if (!fv_md_name_ok(name))
        return 0;
    if (!fv_md_name_is_bin(name)) {
        /* a value HTTP/2 took but gRPC calls not ASCII is the sender's mistake; skipping it
         * keeps the call, as nobody can ask for what they never get */
        int rc = fv_md_add(md, name, value.ptr, value.len);
        return rc == FV_EINVAL ? 0 : rc;
    }
    for (;;) {
        const char *comma = memchr(value.ptr, ',', value.len);
        size_t one = comma ? (size_t)(comma - value.ptr) : value.len;
        int rc = add_b64(md, name, fv_slice(value.ptr, one));
        if (rc < 0 || !comma)
            return rc;
        value = fv_slice(comma + 1, value.len - one - 1);
    }
}
