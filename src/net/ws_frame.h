/* ws_frame.h - the WebSocket wire format (RFC 6455 section 5) as pure functions over bytes: frame
 * heads read and written, payload unmasking, incremental UTF-8 validation, close codes and the
 * handshake's accept key. No sockets here: the driver (ws.c) and the fuzz target use these. */
#ifndef FV_NET_WS_FRAME_H
#define FV_NET_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FV_WS_OP_CONT = 0x0,
    FV_WS_OP_TEXT = 0x1,
    FV_WS_OP_BINARY = 0x2,
    FV_WS_OP_CLOSE = 0x8,
    FV_WS_OP_PING = 0x9,
    FV_WS_OP_PONG = 0xa,
};

/* Close codes we send (section 7.4.1). */
enum {
    FV_WS_CLOSE_NORMAL = 1000,
    FV_WS_CLOSE_GOING_AWAY = 1001,
    FV_WS_CLOSE_PROTOCOL = 1002,
    FV_WS_CLOSE_BAD_DATA = 1007,      /* e.g. invalid UTF-8 in a text message */
    FV_WS_CLOSE_POLICY = 1008,
    FV_WS_CLOSE_TOO_BIG = 1009,
    FV_WS_CLOSE_INTERNAL = 1011,
    FV_WS_CLOSE_TRY_LATER = 1013,
};

/* Longest frame head: 2 bytes, 8 of extended length, 4 of mask key. */
#define FV_WS_MAX_HEAD 14
/* Control frames carry at most this much payload (section 5.5). */
#define FV_WS_MAX_CONTROL 125

typedef struct fv_ws_frame {
    bool fin;
    uint8_t rsv;                /* RSV1..3 as bits 2..0 */
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t len;               /* payload bytes */
} fv_ws_frame_t;

/* Reads a frame head from p[0..len). Returns its length (2..14) and fills f; 0 when more bytes
 * are needed; -1 when the head is malformed (a 64-bit length with its top bit set). Checking
 * what the head means (masking, opcodes, sizes) is the caller's business. */
int fv_ws_frame_read_head(const uint8_t *p, size_t len, fv_ws_frame_t *f);

/* Writes an unmasked (server) frame head for a payload of len bytes into out; returns its
 * length (2, 4 or 10). */
size_t fv_ws_frame_write_head(uint8_t out[FV_WS_MAX_HEAD], uint8_t opcode, bool fin,
                              uint64_t len);

/* Unmasks src[0..len) into dst (may equal src); offset is how many payload bytes of this
 * frame came before, so the mask lines up across pieces. */
void fv_ws_unmask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                  uint64_t offset);

/* Incremental UTF-8 validation: feed pieces in order; state 0 is "between characters". */
typedef struct fv_utf8 {
    uint32_t need;              /* continuation bytes still expected */
    uint32_t cp;                /* code point so far */
    uint32_t min;               /* smallest code point allowed for this length (no overlong) */
} fv_utf8_t;

/* false when p[0..len) cannot continue a valid UTF-8 text (overlong forms, surrogates, past
 * U+10FFFF and stray bytes are refused at the first byte that shows it). */
bool fv_utf8_feed(fv_utf8_t *u, const uint8_t *p, size_t len);
/* Whether the text fed so far ends on a character boundary. */
bool fv_utf8_complete(const fv_utf8_t *u);
/* Both at once, for a whole string. */
bool fv_utf8_valid(const uint8_t *p, size_t len);

/* Whether a peer may send this close code (section 7.4): 1000-1003, 1007-1011, 3000-4999. */
bool fv_ws_close_code_ok(unsigned code);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)), 28
 * characters and a NUL. */
void fv_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
