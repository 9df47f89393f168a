/* ws_client.h - a WebSocket client for tests, written against RFC 6455 and nothing of ours, so
 * that it checks the server rather than agreeing with it. It runs on a nonblocking socket in
 * the test's thread and turns the server's libuv loop while it waits (server and client share
 * the thread). It can send any bytes (unmasked frames, reserved bits, bad UTF-8) and reads
 * frames as they come. Header-only: include after <cmocka.h> and "loopback.h". */
#ifndef FV_TESTS_WS_CLIENT_H
#define FV_TESTS_WS_CLIENT_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

typedef struct wsc {
    int fd;
    uv_loop_t *loop;            /* the server's loop, turned while waiting */
    uint8_t in[1 << 21];
    size_t in_len;
    bool eof;
} wsc_t;

typedef struct wsc_frame {
    bool fin;
    uint8_t rsv;
    uint8_t opcode;
    uint8_t *data;              /* malloc'd, NUL-terminated; free() it */
    size_t len;
} wsc_frame_t;

/* Reads what is there into c->in; false once the peer closed. */
static inline bool wsc_pull(wsc_t *c)
{
    uv_run(c->loop, UV_RUN_NOWAIT);
    while (c->in_len < sizeof(c->in)) {
        ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            c->eof = true;
        break;
    }
    return !c->eof;
}

static inline void wsc_wait(wsc_t *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    poll(&p, 1, 1);
    wsc_pull(c);
}

/* Writes all of data, turning the loop while the socket is full. */
static inline void wsc_write(wsc_t *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (int i = 0; len > 0 && i < 100000; i++) {
        ssize_t n = write(c->fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            return;                 /* the server closed on us: the test reads why */
        uv_run(c->loop, UV_RUN_NOWAIT);
        struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
        poll(&pf, 1, 1);
    }
}

/* Sends a handshake (extra: more header lines, may be NULL) and reads the answer's head into
 * head (NUL-terminated); returns the status. Bytes after the head stay in c->in. */
static inline int wsc_handshake_raw(wsc_t *c, const char *request, char *head, size_t cap)
{
    wsc_write(c, request, strlen(request));
    for (int i = 0; i < 5000; i++) {
        uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - c->in) + 4;
            size_t n = hl < cap - 1 ? hl : cap - 1;
            memcpy(head, c->in, n);
            head[n] = '\0';
            memmove(c->in, c->in + hl, c->in_len - hl);
            c->in_len -= hl;
            return atoi(head + 9);
        }
        if (c->eof)
            break;
        wsc_wait(c);
    }
    head[0] = '\0';
    return -1;
}

static inline void wsc_open(wsc_t *c, uv_loop_t *loop, int port)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->fd = fv_test_connect(port, 0, true);
}

/* Connects and completes a valid handshake on path; fails the test otherwise. */
static inline void wsc_connect(wsc_t *c, uv_loop_t *loop, int port, const char *path)
{
    wsc_open(c, loop, port);
    char req[512], head[2048];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             path);
    assert_int_equal(wsc_handshake_raw(c, req, head, sizeof(head)), 101);
    assert_non_null(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

/* Builds one frame: masked unless told otherwise. */
static inline size_t wsc_build(uint8_t *out, uint8_t first_byte, bool masked, const void *data,
                               size_t len)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t o = 0;
    out[o++] = first_byte;
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[o++] = mbit | (uint8_t)len;
    } else if (len <= 0xffff) {
        out[o++] = mbit | 126;
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)len;
    } else {
        out[o++] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[o++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        out[o + i] = masked ? p[i] ^ key[i % 4] : p[i];
    return o + len;
}

/* Sends a frame with fin and opcode in first_byte (e.g. 0x81 = final text). */
static inline void wsc_send(wsc_t *c, uint8_t first_byte, const void *data, size_t len)
{
    uint8_t *b = malloc(len + 14);
    assert_non_null(b);
    size_t n = wsc_build(b, first_byte, true, data, len);
    wsc_write(c, b, n);
    free(b);
}

static inline void wsc_send_text(wsc_t *c, const char *s)
{
    wsc_send(c, 0x81, s, strlen(s));
}

/* Reads the next frame within ms; false on EOF or timeout (then f->opcode is 0xff). */
static inline bool wsc_read(wsc_t *c, wsc_frame_t *f, int ms)
{
    memset(f, 0, sizeof(*f));
    f->opcode = 0xff;
    for (int i = 0; i <= ms; i++) {
        if (c->in_len >= 2) {
            uint64_t len = c->in[1] & 0x7f;
            size_t at = 2;
            if (len == 126 && c->in_len >= 4) {
                len = (uint64_t)c->in[2] << 8 | c->in[3];
                at = 4;
            } else if (len == 127 && c->in_len >= 10) {
                len = 0;
                for (int k = 0; k < 8; k++)
                    len = len << 8 | c->in[2 + k];
                at = 10;
            } else if (len >= 126) {
                at = 0;
            }
            if (at && c->in_len >= at + len) {
                f->fin = (c->in[0] & 0x80) != 0;
                f->rsv = (c->in[0] >> 4) & 7;
                f->opcode = c->in[0] & 0x0f;
                assert_false(c->in[1] & 0x80);      /* a server never masks */
                f->len = (size_t)len;
                f->data = malloc(f->len + 1);
                assert_non_null(f->data);
                memcpy(f->data, c->in + at, f->len);
                f->data[f->len] = 0;
                memmove(c->in, c->in + at + len, c->in_len - at - len);
                c->in_len -= at + len;
                return true;
            }
        }
        if (c->eof)
            return false;
        wsc_wait(c);
    }
    return false;
}

/* Reads frames until a close frame; returns its code (1005 for none, -1 when the connection
 * ended or stalled without one). */
static inline int wsc_read_close(wsc_t *c, int ms)
{
    wsc_frame_t f;
    while (wsc_read(c, &f, ms)) {
        uint8_t op = f.opcode;
        int code = f.len >= 2 ? (f.data[0] << 8 | f.data[1]) : 1005;
        free(f.data);
        if (op == 0x8)
            return code;
    }
    return -1;
}

/* Whether the server closed the TCP connection within ms. */
static inline bool wsc_sees_eof(wsc_t *c, int ms)
{
    for (int i = 0; i <= ms && !c->eof; i++) {
        c->in_len = 0;
        wsc_wait(c);
    }
    return c->eof;
}

static inline void wsc_close_fd(wsc_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

#endif
