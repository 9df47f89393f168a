/* fuzz_http_response.c - arbitrary bytes as what a server sends back, through the HTTP client's
 * own response parsing (llhttp, our callbacks, Content-Length, chunked, read-until-close, the
 * max_response_bytes ceiling) without a socket. The first byte picks the piece size, a HEAD
 * request or not, a small or large ceiling, and whether the peer closes at the end. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const fv_http_response_t *resp)
{
    if (resp->status < 100 || resp->status > 999)
        __builtin_trap();
    for (size_t i = 0; i < resp->header_count; i++) {
        (void)strlen(resp->headers[i].name);
        (void)strlen(resp->headers[i].value);
    }
    (void)fv_http_response_header(resp, "content-type");
    if (resp->body.len && !resp->body.ptr)
        __builtin_trap();
    volatile char sink = 0;
    for (size_t i = 0; i < resp->body.len; i++)
        sink ^= resp->body.ptr[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    size_t piece = ctl & 0x10 ? size : (size_t)(ctl & 0x0f) + 1;
    bool is_head = ctl & 0x20;
    size_t max = ctl & 0x40 ? 256 : 1 << 20;
    bool eof = ctl & 0x80;
    fv__http_resp_parser_t *p = fv__http_resp_parser_new(max, is_head);
    fv_http_response_t resp;
    size_t off = 0;
    int rc = 0;
    while (off < size && rc >= 0 && rc != 2) {
        size_t n = size - off < piece ? size - off : piece;
        rc = fv__http_resp_parser_feed(p, (const char *)data + off, n, &resp);
        if (rc > 0)
            touch(&resp);
        off += n;
    }
    if (rc < 0 && rc != FV_EPROTO && rc != FV_ETOOBIG)
        __builtin_trap();
    if (eof && rc >= 0 && rc != 2) {
        rc = fv__http_resp_parser_eof(p, &resp);
        if (rc > 0)
            touch(&resp);
        else if (rc != FV_EPROTO && rc != FV_ECONNRESET)
            __builtin_trap();
    }
    fv__http_resp_parser_free(p);
    return 0;
}
