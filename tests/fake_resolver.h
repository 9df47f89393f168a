/* fake_resolver.h - for tests of the gRPC transport: a resolver's answer given later, from
 * the loop (as the registry client gives it), naming 127.0.0.1 on each of up to four ports, or
 * FV_ENOENT when there is none. Header-only: tests include it after <cmocka.h>. */
#ifndef FV_TESTS_FAKE_RESOLVER_H
#define FV_TESTS_FAKE_RESOLVER_H

#include <stdio.h>

#include <uv.h>

#include "core/alloc.h"
#include "rpc/grpc_transport.h"

#define FV_TEST_RESOLVE_MAX 4

typedef struct fv_test_resolving {
    uv_timer_t timer;
    fv_grpc_resolved_cb cb;
    void *data;
    fv_grpc_addr_t addrs[FV_TEST_RESOLVE_MAX];
    size_t n;
} fv_test_resolving_t;

static void fv_test_on_resolve_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void fv_test_on_resolve_due(uv_timer_t *t)
{
    fv_test_resolving_t *r = t->data;
    if (r->n)
        r->cb(0, r->addrs, r->n, r->data);
    else
        r->cb(FV_ENOENT, NULL, 0, r->data);
    uv_close((uv_handle_t *)&r->timer, fv_test_on_resolve_closed);
}

/* Answers cb(data) on a later loop turn with the instances at ports[0..n) (n 0: none). */
static inline int fv_test_resolve_ports(uv_loop_t *loop, const int *ports, size_t n,
                                        fv_grpc_resolved_cb cb, void *data)
{
    fv_test_resolving_t *r = fv_calloc(1, sizeof(*r));
    r->cb = cb;
    r->data = data;
    for (size_t i = 0; i < n && i < FV_TEST_RESOLVE_MAX; i++) {
        snprintf(r->addrs[i].host, sizeof(r->addrs[i].host), "127.0.0.1");
        r->addrs[i].port = ports[i];
        r->n++;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, fv_test_on_resolve_due, 0, 0);
    return 0;
}

/* The same with one instance at port (0: none). */
static inline int fv_test_resolve_later(uv_loop_t *loop, int port, fv_grpc_resolved_cb cb,
                                        void *data)
{
    return fv_test_resolve_ports(loop, &port, port ? 1 : 0, cb, data);
}

#endif
