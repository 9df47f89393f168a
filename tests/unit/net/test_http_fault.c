/* test_http_fault.c - allocation-fault tests for the HTTP server's request and response path
 * (STYLE.md sec. 12): each request is fed through a detached connection (no socket) once per
 * N with the Nth checked allocation failing, until a run sees no failure. Every run must end
 * in the right response, a clean error response, or a closed connection; ASan checks leaks.
 * The router's 404/405 replies and param decoding run the same way. Not covered here: the
 * socket side (accept, reads, writes), see test_http_client_fault.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/http_internal.h"
#include "net/router.h"

#define BIG_LEN 10000   /* over FV_HTTP_INLINE_BODY: the body is copied to an owned buffer */

static char big_body[BIG_LEN];

static void handler(fv_http_req_t *req, void *data)
{
    fv_slice_t p = fv_http_req_path(req);
    if (fv_slice_eq_cstr(p, "/hello")) {
        fv_http_resp_header(req, "X-Test", "yes");
        fv_http_reply(req, 200, "text/plain", "hello", 5);
    } else if (fv_slice_eq_cstr(p, "/echo")) {
        fv_slice_t b = fv_http_req_body(req);
        fv_http_reply(req, 200, "application/octet-stream", b.ptr, b.len);
    } else if (fv_slice_eq_cstr(p, "/big")) {
        fv_http_reply(req, 200, "text/plain", big_body, sizeof(big_body));
    } else if (fv_slice_eq_cstr(p, "/json")) {
        fv_http_reply_json(req, 200, json_pack("{s:i}", "n", 7));
    } else if (fv_slice_eq_cstr(p, "/query")) {
        const char *v = fv_http_req_query_param(req, "name");
        fv_http_reply(req, 200, "text/plain", v ? v : "-", v ? strlen(v) : 1);
    } else {
        fv_http_reply_errorf(req, FV_ENOENT, "no %.*s here", (int)p.len, p.ptr);
    }
}

static void param_handler(fv_http_req_t *req, void *data)
{
    const char *id = fv_http_req_param(req, "id");
    const char *q = fv_http_req_query_param(req, "q");
    char out[128];
    int n = snprintf(out, sizeof(out), "%s|%s", id ? id : "-", q ? q : "-");
    fv_http_reply(req, 200, "text/plain", out, (size_t)n);
}

/* What one run produced. */
typedef struct outcome {
    int status;            /* 0: no response at all */
    char *body;            /* points into the sink */
    size_t body_len;
    bool complete;         /* Content-Length bytes of body are there */
    bool closed;           /* the connection is closed or closing after the response */
    bool has_x_test;
} outcome_t;

static void parse_output(fv_buf_t *out, outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    if (out->len == 0)
        return;
    assert_true(out->len > 12);
    assert_memory_equal(out->ptr, "HTTP/1.1 ", 9);
    o->status = atoi(out->ptr + 9);
    char *end = strstr(out->ptr, "\r\n\r\n");
    assert_non_null(end);
    *end = '\0';
    const char *cl = strstr(out->ptr, "Content-Length: ");
    assert_non_null(cl);
    size_t want = strtoul(cl + 16, NULL, 10);
    o->has_x_test = strstr(out->ptr, "X-Test: yes") != NULL;
    o->body = end + 4;
    o->body_len = out->len - (size_t)(o->body - out->ptr);
    o->complete = o->body_len == want;
}

typedef struct fcase {
    const char *request;
    size_t piece;              /* feed in pieces this large; 0 = all at once */
    int want_status;
    const char *want_body;     /* NULL: not checked (see want_body_len) */
    size_t want_body_len;      /* when want_body is NULL and this is not 0 */
    bool want_x_test;
    size_t max_header_bytes;
    size_t max_body_bytes;
    bool router;
    const char *want_code;     /* error responses: the JSON error code */
} fcase_t;

/* Runs c with the nth allocation failing (0: none); returns whether the failure fired. */
static int run_once(const fcase_t *fc, unsigned long n, outcome_t *o, fv_buf_t *out)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fv_http_limits_t lim;
    fv_http_limits_default(&lim);
    if (fc->max_header_bytes)
        lim.max_header_bytes = fc->max_header_bytes;
    if (fc->max_body_bytes)
        lim.max_body_bytes = fc->max_body_bytes;
    fv_router_t *router = NULL;
    fv_http_server_t *srv;
    if (fc->router) {
        router = fv_router_new();
        assert_int_equal(fv_router_add(router, "GET", "/items/:id", param_handler, NULL), 0);
        assert_int_equal(fv_router_add(router, "PUT", "/items/:id", param_handler, NULL), 0);
        assert_int_equal(fv_http_server_new(&loop, &lim, fv_router_dispatch, router, &srv), 0);
    } else {
        assert_int_equal(fv_http_server_new(&loop, &lim, handler, NULL, &srv), 0);
    }
    /* the sink is grown beforehand so that its own growth is not one of the counted calls */
    fv_buf_init(out, 1 << 20);
    assert_int_equal(fv_buf_reserve(out, 64 * 1024), 0);
    fv_sock_t *c = fv__http_conn_new_detached(srv, out);

    fv_alloc_fail_at(n);
    size_t len = strlen(fc->request);
    size_t piece = fc->piece ? fc->piece : len;
    for (size_t off = 0; off < len; off += piece)
        fv__http_conn_feed(c, fc->request + off, len - off < piece ? len - off : piece);
    int fired = fv_alloc_failed();
    fv_alloc_fail_at(0);

    bool closed = !fv_sock_is_open(c);
    fv__http_conn_free_detached(c);
    fv_http_server_close(srv, NULL, NULL);
    fv_router_free(router);
    assert_int_equal(uv_loop_close(&loop), 0);
    parse_output(out, o);
    o->closed = closed;
    return fired;
}

static void check_code(const fcase_t *fc, const outcome_t *o)
{
    if (!fc->want_code)
        return;
    char code[96];
    int n = snprintf(code, sizeof(code), "{\"error\":{\"code\":\"%s\"", fc->want_code);
    assert_true(o->body_len >= (size_t)n);
    assert_memory_equal(o->body, code, (size_t)n);
}

static void check_right(const fcase_t *fc, const outcome_t *o)
{
    assert_int_equal(o->status, fc->want_status);
    assert_true(o->complete);
    if (fc->want_body) {
        assert_int_equal(o->body_len, strlen(fc->want_body));
        assert_memory_equal(o->body, fc->want_body, o->body_len);
    } else if (fc->want_body_len) {
        assert_int_equal(o->body_len, fc->want_body_len);
    }
    if (fc->want_x_test)
        assert_true(o->has_x_test);
    check_code(fc, o);
}

/* Loops N = 1, 2, ... and returns how many runs had a failure. */
static unsigned long fault_loop(const fcase_t *fc)
{
    outcome_t o;
    fv_buf_t out;
    /* without a failure: the right answer, as a baseline */
    assert_int_equal(run_once(fc, 0, &o, &out), 0);
    check_right(fc, &o);
    fv_buf_dispose(&out);
    unsigned long n;
    for (n = 1;; n++) {
        int fired = run_once(fc, n, &o, &out);
        if (!fired) {
            check_right(fc, &o);
            fv_buf_dispose(&out);
            break;
        }
        if (o.status == 0) {
            /* no answer: then the connection must be closed, never left waiting */
            assert_true(o.closed);
        } else if (o.status == 503 || o.status == 500) {
            /* a clean error: complete, JSON, and the last response on the connection */
            assert_true(o.complete);
            assert_non_null(memmem(o.body, o.body_len, "\"error\"", 7));
        } else if (o.status == fc->want_status && fc->want_status >= 400) {
            /* the error asked for; its message may be lost when memory ran out, its code not */
            assert_true(o.complete);
            check_code(fc, &o);
        } else if (fc->want_x_test && !o.has_x_test) {
            /* a dropped extra header is a known, logged degradation; the rest must be right */
            fcase_t plain = *fc;
            plain.want_x_test = false;
            check_right(&plain, &o);
        } else {
            check_right(fc, &o);
        }
        fv_buf_dispose(&out);
    }
    return n - 1;
}

static void get_request(void **state)
{
    fcase_t fc = {.request = "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n",
                  .want_status = 200, .want_body = "hello", .want_x_test = true};
    assert_true(fault_loop(&fc) >= 2);
    fc.piece = 3;   /* split reads: the head buffer grows in many steps */
    assert_true(fault_loop(&fc) >= 2);
}

static void post_content_length(void **state)
{
    fcase_t fc = {.request = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                             "hello world",
                  .want_status = 200, .want_body = "hello world"};
    assert_true(fault_loop(&fc) >= 2);
    fc.piece = 5;
    assert_true(fault_loop(&fc) >= 2);
}

static void post_chunked(void **state)
{
    fcase_t fc = {.request = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                  .want_status = 200, .want_body = "hello world"};
    assert_true(fault_loop(&fc) >= 2);
    fc.piece = 4;
    assert_true(fault_loop(&fc) >= 2);
}

static void large_response(void **state)
{
    memset(big_body, 'b', sizeof(big_body));
    fcase_t fc = {.request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", .want_status = 200,
                  .want_body_len = BIG_LEN};
    assert_true(fault_loop(&fc) >= 2);
}

static void json_response(void **state)
{
    fcase_t fc = {.request = "GET /json HTTP/1.1\r\nHost: x\r\n\r\n", .want_status = 200,
                  .want_body = "{\"n\":7}"};
    assert_true(fault_loop(&fc) >= 2);
}

static void body_too_large_413(void **state)
{
    fcase_t fc = {.request = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc",
                  .want_status = 413, .max_body_bytes = 1024,
                  .want_code = "too_large"};
    assert_true(fault_loop(&fc) >= 1);
    /* a chunked body finds out only while it arrives */
    fcase_t ch = {.request = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "20\r\n0123456789abcdef0123456789abcdef\r\n"
                             "20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n",
                  .want_status = 413, .max_body_bytes = 40, .want_code = "too_large"};
    assert_true(fault_loop(&ch) >= 1);
}

static void headers_too_large_431(void **state)
{
    static char req[4096];
    int n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(req + n, 'p', 3000);
    strcpy(req + n + 3000, "\r\n\r\n");
    fcase_t fc = {.request = req, .want_status = 431, .max_header_bytes = 2048,
                  .want_code = "headers_too_large"};
    assert_true(fault_loop(&fc) >= 1);
}

static void error_reply(void **state)
{
    fcase_t fc = {.request = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", .want_status = 404,
                  .want_body = "{\"error\":{\"code\":\"not_found\",\"message\":\"no /nothing here\"}}",
                  .want_code = "not_found"};
    assert_true(fault_loop(&fc) >= 1);
}

static void query_decoding(void **state)
{
    fcase_t fc = {.request = "GET /query?a=1&name=J%C3%B6rg+X HTTP/1.1\r\nHost: x\r\n\r\n",
                  .want_status = 200, .want_body = "J\xc3\xb6rg X"};
    assert_true(fault_loop(&fc) >= 1);
}

static void router_paths(void **state)
{
    fcase_t ok = {.request = "GET /items/ab?q=x+y HTTP/1.1\r\nHost: x\r\n\r\n",
                  .want_status = 200, .want_body = "ab|x y", .router = true};
    assert_true(fault_loop(&ok) >= 1);
    fcase_t missing = {.request = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", .want_status = 404,
                       .router = true, .want_code = "not_found"};
    assert_true(fault_loop(&missing) >= 1);
    fcase_t not_allowed = {.request = "DELETE /items/1 HTTP/1.1\r\nHost: x\r\n\r\n",
                           .want_status = 405, .router = true, .want_code = "method_not_allowed"};
    assert_true(fault_loop(&not_allowed) >= 1);
}

/* An in-limit request whose body or head buffer could not grow was answered 413/431 ("your
 * request is too large"): out of memory is the server's problem and must say so (503). */
static void test_issue_oom_is_not_too_large(void **state)
{
    const char *reqs[] = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
    };
    bool saw_503 = false;
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        fcase_t fc = {.request = reqs[i], .want_status = 200};
        for (unsigned long n = 1;; n++) {
            outcome_t o;
            fv_buf_t out;
            int fired = run_once(&fc, n, &o, &out);
            assert_int_not_equal(o.status, 413);
            assert_int_not_equal(o.status, 431);
            if (o.status == 503)
                saw_503 = true;
            fv_buf_dispose(&out);
            if (!fired)
                break;
        }
    }
    assert_true(saw_503);
}

/* Out of memory while answering gave bodies that lied: a large response whose copy failed went
 * out as a 503 with an empty text body, an error body that could not be serialised claimed
 * code "internal" under its 404, and a JSON reply that could not be serialised was a 500. */
static void test_issue_oom_error_bodies_keep_their_code(void **state)
{
    memset(big_body, 'b', sizeof(big_body));
    const char *reqs[] = {"GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
                          "GET /json HTTP/1.1\r\nHost: x\r\n\r\n"};
    int seen_503 = 0, seen_bare_404 = 0;
    for (size_t i = 0; i < 3; i++) {
        fcase_t fc = {.request = reqs[i]};
        for (unsigned long n = 1;; n++) {
            outcome_t o;
            fv_buf_t out;
            int fired = run_once(&fc, n, &o, &out);
            assert_int_not_equal(o.status, 500);
            if (o.status == 503) {
                fcase_t want = {.want_code = "out_of_memory"};
                check_code(&want, &o);
                seen_503++;
            } else if (o.status == 404) {
                fcase_t want = {.want_code = "not_found"};
                check_code(&want, &o);
                if (memmem(o.body, o.body_len, "\"message\":\"\"", 12))
                    seen_bare_404++;
            }
            fv_buf_dispose(&out);
            if (!fired)
                break;
        }
    }
    assert_true(seen_503 >= 2);
    assert_true(seen_bare_404 >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_request),
        cmocka_unit_test(post_content_length),
        cmocka_unit_test(post_chunked),
        cmocka_unit_test(large_response),
        cmocka_unit_test(json_response),
        cmocka_unit_test(body_too_large_413),
        cmocka_unit_test(headers_too_large_431),
        cmocka_unit_test(error_reply),
        cmocka_unit_test(query_decoding),
        cmocka_unit_test(router_paths),
        cmocka_unit_test(test_issue_oom_is_not_too_large),
        cmocka_unit_test(test_issue_oom_error_bodies_keep_their_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
