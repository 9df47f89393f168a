/* test_http_shared.c - answers that share one body (fv_http_reply_shared): every client gets
 * the same bytes, none is a copy, and the body goes once the last answer is written, also for
 * HEAD, a request whose client left, and an answer to a request already answered. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/shared.h"
#include "net/http_internal.h"

static fv_shared_t *body;

static void handler(fv_http_req_t *req, void *data)
{
    (void)data;
    fv_shared_ref(body);
    fv_http_reply_shared(req, 200, "application/json", body);
    /* a second answer is dropped, and its reference with it */
    fv_shared_ref(body);
    fv_http_reply_shared(req, 200, "application/json", body);
}

static void shared_body_to_many(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fv_http_server_t *srv;
    assert_int_equal(fv_http_server_new(&loop, NULL, handler, NULL, &srv), 0);
    static char big[100000];
    memset(big, 'x', sizeof(big));
    big[0] = '[';
    big[sizeof(big) - 1] = ']';
    body = fv_shared_new(big, sizeof(big));
    assert_non_null(body);
    fv_buf_t out[3];
    for (int i = 0; i < 3; i++) {
        fv_buf_init(&out[i], 1 << 20);
        fv_sock_t *c = fv__http_conn_new_detached(srv, &out[i]);
        const char *req = i == 2 ? "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                 : "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /again HTTP/1.1\r\n"
                                   "Host: x\r\n\r\n";
        fv__http_conn_feed(c, req, strlen(req));
        fv__http_conn_free_detached(c);
    }
    for (int i = 0; i < 2; i++) {
        fv_slice_t o = fv_buf_slice(&out[i]);
        const char *first = memmem(o.ptr, o.len, big, sizeof(big));
        assert_non_null(first);
        /* pipelined: the same body twice on one connection */
        assert_non_null(memmem(first + sizeof(big), o.len - (size_t)(first - o.ptr) -
                                                        sizeof(big), big, sizeof(big)));
        assert_non_null(memmem(o.ptr, o.len, "Content-Length: 100000", 22));
    }
    assert_null(memmem(out[2].ptr, out[2].len, big, 16));     /* HEAD: no body */
    assert_non_null(memmem(out[2].ptr, out[2].len, "Content-Length: 100000", 22));
    for (int i = 0; i < 3; i++)
        fv_buf_dispose(&out[i]);
    fv_shared_unref(body);      /* the last reference: ASan sees a leak if any answer kept one */
    fv_http_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void adopt_and_copy(void **state)
{
    (void)state;
    char *bytes = fv_malloc(5);
    memcpy(bytes, "hello", 5);
    fv_shared_t *a = fv_shared_adopt(bytes, 5);
    assert_non_null(a);
    assert_ptr_equal(fv_shared_data(a), bytes);
    fv_shared_t *b = fv_shared_new("world", 5);
    assert_memory_equal(fv_shared_data(b), "world", 5);
    assert_int_equal(fv_shared_len(b), 5);
    fv_shared_ref(a);
    fv_shared_unref(a);
    fv_shared_release(a);
    fv_shared_unref(b);
    fv_shared_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_body_to_many),
        cmocka_unit_test(adopt_and_copy),
    };
    return cmocka_run_group_tests_name("net/http_shared", tests, NULL, NULL);
}
