/* ws_frame.c - the WebSocket wire format: frame heads, masking, UTF-8, close codes, the accept
 * key. Every function is pure, so the parser's edge cases are tested and fuzzed without a
 * socket. */
#include "net/ws_frame.h"

#include <string.h>

#include "core/sha1.h"

int fv_ws_frame_read_head(const uint8_t *p, size_t len, fv_ws_frame_t *f)
{
    if (len < 2)
        return 0;
    f->fin = (p[0] & 0x80) != 0;
    f->rsv = (uint8_t)((p[0] >> 4) & 0x7);
    f->opcode = p[0] & 0x0f;
    f->masked = (p[1] & 0x80) != 0;
    uint64_t n = p[1] & 0x7f;
    size_t at = 2;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (uint64_t)p[2] << 8 | p[3];
        at = 4;
    } else if (n == 127) {
        if (len < 10)
            return 0;
        if (p[2] & 0x80)
            return -1;          /* section 5.2: the most significant bit must be 0 */
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | p[2 + i];
        at = 10;
    }
    if (f->masked) {
        if (len < at + 4)
            return 0;
        memcpy(f->mask, p + at, 4);
        at += 4;
    } else {
        memset(f->mask, 0, 4);
    }
    f->len = n;
    return (int)at;
}

size_t fv_ws_frame_write_head(uint8_t out[FV_WS_MAX_HEAD], uint8_t opcode, bool fin,
                              uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

void fv_ws_unmask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                  uint64_t offset)
{
    size_t i = 0;
    unsigned m = (unsigned)(offset & 3);
    /* align to the mask, then eight bytes at a time with a rotated 64-bit key */
    while (i < len && m != 0) {
        dst[i] = src[i] ^ mask[m];
        i++;
        m = (m + 1) & 3;
    }
    uint8_t k8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    uint64_t k;
    memcpy(&k, k8, 8);
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k;
        memcpy(dst + i, &v, 8);
    }
    for (m = 0; i < len; i++, m++)
        dst[i] = src[i] ^ mask[m & 3];
}

bool fv_utf8_feed(fv_utf8_t *u, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];
        if (u->need == 0) {
            if (b < 0x80)
                continue;
            if (b >= 0xc2 && b <= 0xdf) {
                u->need = 1;
                u->cp = b & 0x1f;
                u->min = 0x80;
            } else if (b >= 0xe0 && b <= 0xef) {
                u->need = 2;
                u->cp = b & 0x0f;
                u->min = 0x800;
            } else if (b >= 0xf0 && b <= 0xf4) {
                u->need = 3;
                u->cp = b & 0x07;
                u->min = 0x10000;
            } else {
                return false;   /* a continuation byte, C0/C1 overlong leads, F5..FF */
            }
            continue;
        }
        if ((b & 0xc0) != 0x80)
            return false;
        u->cp = u->cp << 6 | (b & 0x3f);
        u->need--;
        /* refuse as early as the prefix shows it: overlong, surrogate or past U+10FFFF */
        uint32_t shift = 6 * u->need;
        uint32_t lo = u->cp << shift, hi = lo | ((1u << shift) - 1);
        if (hi < u->min || lo > 0x10ffff || (lo >= 0xd800 && hi <= 0xdfff))
            return false;
        if (u->need == 0 && (u->cp < u->min || (u->cp >= 0xd800 && u->cp <= 0xdfff)))
            return false;
    }
    return true;
}

bool fv_utf8_complete(const fv_utf8_t *u)
{
    return u->need == 0;
}

bool fv_utf8_valid(const uint8_t *p, size_t len)
{
    fv_utf8_t u = {0};
    return fv_utf8_feed(&u, p, len) && fv_utf8_complete(&u);
}

bool fv_ws_close_code_ok(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

void fv_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fv_sha1_t c;
    uint8_t d[FV_SHA1_LEN];
    fv_sha1_init(&c);
    fv_sha1_update(&c, key, key_len);
    fv_sha1_update(&c, guid, sizeof(guid) - 1);
    fv_sha1_final(&c, d);
    size_t o = 0;
    for (size_t i = 0; i < FV_SHA1_LEN; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < FV_SHA1_LEN)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < FV_SHA1_LEN)
            v |= d[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < FV_SHA1_LEN ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < FV_SHA1_LEN ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}
