/* fuzz_preface.c - the first bytes of a connection: the HTTP/2 preface sniff on its own (every
 * prefix must agree with the whole), then the same bytes through a socketless server socket,
 * fed in pieces, once with an h2 driver (a sink that takes everything) and once without one
 * (the connection must close or go on as HTTP/1). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/http_internal.h"

static uv_loop_t loop;
static fv_http_server_t *plain;
static fv_http_server_t *with_h2;
static size_t h2_bytes;

static void handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 200, "text/plain", "ok", 2);
}

static size_t h2_data(fv_sock_t *s, void *state, const char *data, size_t len)
{
    h2_bytes += len;
    fv_sock_write(s, data, len < 16 ? len : 16);
    return len;
}

static void h2_free(fv_sock_t *s, void *state)
{
    fv_free(state);
}

static const fv_sock_driver_t h2_driver = {
    .name = "h2-fuzz",
    .on_data = h2_data,
    .on_free = h2_free,
};

static int h2_factory(fv_sock_t *s, void *data, const fv_sock_driver_t **driver, void **state)
{
    *driver = &h2_driver;
    *state = fv_malloc(8);
    return 0;
}

static void feed(fv_http_server_t *srv, const uint8_t *data, size_t size, size_t piece)
{
    fv_buf_t out;
    fv_buf_init(&out, 1 << 20);
    fv_sock_t *s = fv__http_conn_new_detached(srv, &out);
    for (size_t off = 0; off < size; off += piece)
        fv__http_conn_feed(s, (const char *)data + off, size - off < piece ? size - off : piece);
    fv__http_conn_free_detached(s);
    fv_buf_dispose(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!plain) {
        uv_loop_init(&loop);
        fv_http_limits_t lim;
        fv_http_limits_default(&lim);
        lim.max_header_bytes = 2048;
        lim.max_body_bytes = 4096;
        if (fv_http_server_new(&loop, &lim, handler, NULL, &plain) < 0 ||
            fv_http_server_new(&loop, &lim, handler, NULL, &with_h2) < 0)
            return 0;
        fv_http_server_set_h2(with_h2, h2_factory, NULL);
    }
    if (size == 0)
        return 0;
    size_t piece = (size_t)data[0] % 32 + 1;
    data++;
    size--;

    /* a prefix never contradicts the whole: -1 stays -1, 1 stays 1 */
    int whole = fv__http_sniff_preface((const char *)data, size);
    for (size_t i = 0; i <= size && i <= 30; i++) {
        int r = fv__http_sniff_preface((const char *)data, i);
        if (r == -1)
            assert(whole == -1);
        if (r == 1)
            assert(whole == 1);
    }

    h2_bytes = 0;
    feed(with_h2, data, size, piece);
    if (whole == 1)
        assert(h2_bytes == size);      /* the h2 driver got every byte, the preface included */
    feed(plain, data, size, piece);
    return 0;
}
