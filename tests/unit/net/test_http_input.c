/* test_http_input.c - hostile and malformed HTTP/1 input through the server's real request path
 * on socketless (detached) connections: versions, Host rules, header name tokens, raw CR/LF in
 * the target, oversized chunks. Each must get the status nginx gives, and nothing reaches the
 * handler. Also the HTTP/2 preface sniff, which keeps a preface away from llhttp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "net/http_internal.h"

static int handled;

static void handler(fv_http_req_t *req, void *data)
{
    handled++;
    fv_slice_t b = fv_http_req_body(req);
    fv_http_reply(req, 200, "text/plain", b.ptr, b.len);
}

typedef struct fx {
    uv_loop_t loop;
    fv_http_server_t *srv;
    fv_buf_t out;
} fx_t;

static int setup(void **state)
{
    static fx_t f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    lim.max_body_bytes = 4096;
    assert_int_equal(fv_http_server_new(&f.loop, &lim, handler, NULL, &f.srv), 0);
    fv_buf_init(&f.out, 1 << 20);
    handled = 0;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fv_http_server_close(f->srv, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fv_buf_dispose(&f->out);
    return 0;
}

/* Feeds req whole, then again one byte at a time; both must start with the status line want. */
static void expect_status(fx_t *f, const char *req, size_t len, const char *want)
{
    for (int split = 0; split < 2; split++) {
        fv_buf_reset(&f->out);
        fv_sock_t *c = fv__http_conn_new_detached(f->srv, &f->out);
        if (split) {
            for (size_t i = 0; i < len; i++)
                fv__http_conn_feed(c, req + i, 1);
        } else {
            fv__http_conn_feed(c, req, len);
        }
        fv__http_conn_free_detached(c);
        fv_slice_t o = fv_buf_slice(&f->out);
        size_t wl = strlen(want);
        if (o.len < wl || memcmp(o.ptr, want, wl) != 0)
            fail_msg("request %.*s: want %s, got %.*s", (int)len, req, want,
                     (int)(o.len > 60 ? 60 : o.len), o.ptr ? o.ptr : "");
    }
}

#define EXPECT(f, lit, want) expect_status((f), (lit), sizeof(lit) - 1, (want))

static void good_request_passes(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ");
    EXPECT(f, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ");
    EXPECT(f, "GET / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\nX-B: c\r\n\r\n", "HTTP/1.1 200 ");
    assert_int_equal(handled, 6);
}

static void http09_request_line(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET /\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET /\n\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/0.9\r\n\r\n", "HTTP/1.1 400 ");
    assert_int_equal(handled, 0);
}

static void unsupported_version(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n");
    EXPECT(f, "GET / HTTP/3.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ");
    EXPECT(f, "GET / HTTP/9.1\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ");
    assert_int_equal(handled, 0);
}

static void host_rules(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n", "HTTP/1.1 400 ");
    assert_int_equal(handled, 0);
}

static void header_name_tokens(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\n: b\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n: b\r\n\r\n", "HTTP/1.1 400 ");
    assert_int_equal(handled, 0);
}

static void raw_cr_lf_in_target(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET /a\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    assert_int_equal(handled, 0);
}

static void huge_chunk_refused_at_once(void **state)
{
    fx_t *f = *state;
    /* no chunk data follows: the refusal must come from the size line alone */
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "FFFFFFFFFFFFFFFF\r\n", "HTTP/1.1 413 ");
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "1001\r\n", "HTTP/1.1 413 ");
    /* two chunks that fit alone but not together (limit 4096) */
    char req[8192];
    int n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: a\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n800\r\n");
    memset(req + n, 'x', 0x800);
    n += 0x800;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n801\r\n");
    expect_status(f, req, (size_t)n, "HTTP/1.1 413 ");
    /* up to the limit exactly is fine */
    n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: a\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n1000\r\n");
    memset(req + n, 'x', 0x1000);
    n += 0x1000;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n0\r\n\r\n");
    expect_status(f, req, (size_t)n, "HTTP/1.1 200 ");
    assert_int_equal(handled, 2);
}

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void sniff_every_prefix(void **state)
{
    size_t n = sizeof(preface) - 1;
    assert_int_equal(n, 24);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fv__http_sniff_preface(preface, i), 0);
    assert_int_equal(fv__http_sniff_preface(preface, n), 1);
    char more[64];
    memcpy(more, preface, n);
    memcpy(more + n, "\0\0\x12\x04", 4);
    assert_int_equal(fv__http_sniff_preface(more, n + 4), 1);
    for (size_t i = 0; i < n; i++) {
        memcpy(more, preface, n);
        more[i] ^= 0x20;
        assert_int_equal(fv__http_sniff_preface(more, i + 1), -1);
        assert_int_equal(fv__http_sniff_preface(more, n), -1);
    }
    assert_int_equal(fv__http_sniff_preface("GET / HTTP/1.1\r\n", 16), -1);
}

/* No h2 driver: the connection closes without a byte of output, whole or byte by byte; it is
 * never parsed as HTTP/1. A PRI line that is not the preface is HTTP/1 (and gets 505). */
static void preface_without_h2_closes(void **state)
{
    fx_t *f = *state;
    for (int split = 0; split < 2; split++) {
        fv_buf_reset(&f->out);
        fv_sock_t *c = fv__http_conn_new_detached(f->srv, &f->out);
        if (split) {
            for (size_t i = 0; i < sizeof(preface) - 1; i++) {
                assert_true(fv_sock_is_open(c));
                fv__http_conn_feed(c, preface + i, 1);
            }
        } else {
            fv__http_conn_feed(c, preface, sizeof(preface) - 1);
        }
        assert_false(fv_sock_is_open(c));
        assert_int_equal(f->out.len, 0);
        fv__http_conn_free_detached(c);
    }
    EXPECT(f, "PRI * HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/1.1 505 ");
    assert_int_equal(handled, 0);
}

/* What a proxy in front could read differently from the server behind: refused as nginx
 * refuses them, fed whole and byte by byte (a value split across reads is not a fold). */
static void smuggling_shapes(void **state)
{
    fx_t *f = *state;
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n\tb\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
              "\r\nab", "HTTP/1.1 400 ");
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
              "0\r\n\r\n", "HTTP/1.1 501 ");
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
           "HTTP/1.1 501 ");
    EXPECT(f, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.1 400 ");
    EXPECT(f, "GET http://other.example/ HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    EXPECT(f, "GET other.example:80 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400 ");
    assert_int_equal(handled, 0);
    /* still served: OWS around chunked, a long value, absolute-form for our own host */
    EXPECT(f, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked \r\n\r\n"
              "1\r\nx\r\n0\r\n\r\n", "HTTP/1.1 200 ");
    EXPECT(f, "GET / HTTP/1.1\r\nHost: a\r\nX-Long: abcdefghijklmnopqrstuvwxyz\r\n\r\n",
           "HTTP/1.1 200 ");
    EXPECT(f, "GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ");
    assert_int_equal(handled, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_request_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(http09_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_version, setup, teardown),
        cmocka_unit_test_setup_teardown(host_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(header_name_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(raw_cr_lf_in_target, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_chunk_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(smuggling_shapes, setup, teardown),
        cmocka_unit_test(sniff_every_prefix),
        cmocka_unit_test_setup_teardown(preface_without_h2_closes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
