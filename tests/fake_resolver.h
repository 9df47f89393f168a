/* fake_resolver.h - for tests of the gRPC transport: a resolver's answer given later, from
 * the loop (as the registry client gives it), naming 127.0.0.1:port, or FV_ENOENT for port 0.
 * Header-only: tests include it after <cmocka.h>. */
#ifndef FV_TESTS_FAKE_RESOLVER_H
#define FV_TESTS_FAKE_RESOLVER_H

#include <uv.h>

#include "core/alloc.h"
#include "rpc/grpc_transport.h"

typedef struct fv_test_resolving {
    uv_timer_t timer;
    fv_grpc_resolved_cb cb;
    void *data;
    int port;
} fv_test_resolving_t;

static void fv_test_on_resolve_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void fv_test_on_resolve_due(uv_timer_t *t)
{
    fv_test_resolving_t *r = t->data;
    if (r->port)
        r->cb(0, "127.0.0.1", r->port, r->data);
    else
        r->cb(FV_ENOENT, NULL, 0, r->data);
    uv_close((uv_handle_t *)&r->timer, fv_test_on_resolve_closed);
}

/* Answers cb(data) on a later loop turn with port (0: none). */
static inline int fv_test_resolve_later(uv_loop_t *loop, int port, fv_grpc_resolved_cb cb,
                                        void *data)
{
    fv_test_resolving_t *r = fv_calloc(1, sizeof(*r));
    r->cb = cb;
    r->data = data;
    r->port = port;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, fv_test_on_resolve_due, 0, 0);
    return 0;
}

#endif
