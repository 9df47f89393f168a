/* peers.c - where the modules served by other processes are, for the gRPC transport.
 *
 * A module's first call to another module that this process does not serve starts a registry
 * watch on it (a blocking query held open: the registry tells of every change of its healthy
 * instances at once); from then on calls are answered with the watched list (the transport
 * picks the instance), without asking the registry per call. The first calls wait for the
 * watch's first answer; if the registry cannot be reached before it, they fail with
 * FV_EBACKEND (the watch goes on retrying, and keeps its last list when the registry goes away
 * later). Answers come on a later loop turn, never inside the call, as the transport's resolver
 * contract asks. A name that is no module of ours goes to a plain registry lookup. */
#include "runtime/peers.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/defer.h"
#include "runtime/module_list.h"

#define PEERS_MAX_ADDRS 64          /* instances of one module kept from a watch's answer */

typedef struct peer_list peer_list_t;

/* One resolution owed: waiting for the list's first answer, or queued to be answered. */
typedef struct peer_wait {
    fv_defer_t defer;
    struct peer_wait *next;         /* the list's waiting ones */
    peer_list_t *list;
    fv_grpc_resolved_cb cb;
    void *data;
    int rc;                         /* an answer decided before the turn: FV_EBACKEND */
} peer_wait_t;

struct peer_list {
    fv__peers_t *peers;
    fv_registry_watch_t *watch;     /* NULL until the module is first called */
    fv_grpc_addr_t addrs[PEERS_MAX_ADDRS];
    size_t n;
    bool known;                     /* the watch has answered with a list */
    peer_wait_t *waiting;
};

struct fv__peers {
    fv_registry_client_t *reg;
    fv_defer_queue_t answers;
    peer_list_t lists[FV_MOD_COUNT];
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

static void answer(peer_wait_t *w)
{
    peer_list_t *l = w->list;
    if (l->peers->closing)
        w->cb(FV_ECANCELED, NULL, 0, w->data);
    else if (w->rc < 0)
        w->cb(w->rc, NULL, 0, w->data);
    else if (l->n == 0)
        w->cb(FV_ENOENT, NULL, 0, w->data);
    else
        w->cb(0, l->addrs, l->n, w->data);
    fv_free(w);
}

/* A name that is no module of ours: one registry lookup, handed over as a list of one. */
typedef struct peer_lookup {
    fv_grpc_resolved_cb cb;
    void *data;
} peer_lookup_t;

static void on_lookup(int rc, const char *host, int port, void *data)
{
    peer_lookup_t *lk = data;
    fv_grpc_addr_t a = {.port = port};
    if (rc == 0)
        snprintf(a.host, sizeof(a.host), "%s", host);
    lk->cb(rc, rc == 0 ? &a : NULL, rc == 0, lk->data);
    fv_free(lk);
}

static void on_due(fv_defer_t *d)
{
    answer(FV_DEFER_OWNER(d, peer_wait_t, defer));
}

/* Every waiting resolution of l goes to be answered (rc < 0: with that failure). */
static void release_waiting(peer_list_t *l, int rc)
{
    while (l->waiting) {
        peer_wait_t *w = l->waiting;
        l->waiting = w->next;
        w->rc = rc;
        fv_defer_push(&l->peers->answers, &w->defer, on_due);
    }
}

static void on_watch(int rc, const fv_registry_addr_t *addrs, size_t n, void *data)
{
    peer_list_t *l = data;
    if (rc == 0) {
        l->n = n < PEERS_MAX_ADDRS ? n : PEERS_MAX_ADDRS;
        if (l->n)
            memcpy(l->addrs, addrs, l->n * sizeof(*addrs));
        l->known = true;
        release_waiting(l, 0);
    } else if (!l->known) {
        release_waiting(l, rc);         /* no list yet: the calls fail, the watch retries */
    }
}

int fv__peers_new(uv_loop_t *loop, fv_registry_client_t *reg, fv__peers_t **out)
{
    fv__peers_t *p = fv_calloc(1, sizeof(*p));
    p->reg = reg;
    int rc = fv_defer_queue_init(loop, &p->answers, NULL);
    if (rc < 0) {
        fv_free(p);
        return rc;
    }
    p->answers.data = p;
    for (size_t i = 0; i < FV_MOD_COUNT; i++)
        p->lists[i].peers = p;
    *out = p;
    return 0;
}

int fv__peers_resolve(void *peers, const char *module, fv_grpc_resolved_cb cb, void *data)
{
    fv__peers_t *p = peers;
    if (p->closing)
        return FV_ECANCELED;
    int idx = fv_component_index(module);
    if (idx < 0) {
        peer_lookup_t *lk = fv_calloc(1, sizeof(*lk));
        lk->cb = cb;
        lk->data = data;
        int rc = fv_registry_client_lookup(p->reg, module, on_lookup, lk);
        if (rc < 0)
            fv_free(lk);
        return rc;
    }
    peer_list_t *l = &p->lists[idx];
    if (!l->watch) {
        int rc = fv_registry_client_watch(p->reg, module, on_watch, l, &l->watch);
        if (rc < 0)
            return rc;
    }
    peer_wait_t *w = fv_calloc(1, sizeof(*w));
    w->list = l;
    w->cb = cb;
    w->data = data;
    if (l->known) {
        fv_defer_push(&p->answers, &w->defer, on_due);
    } else {
        w->next = l->waiting;
        l->waiting = w;
    }
    return 0;
}

static void on_answers_closed(fv_defer_queue_t *q)
{
    fv__peers_t *p = q->data;
    void (*done)(void *) = p->done;
    void *data = p->done_data;
    fv_free(p);
    if (done)
        done(data);
}

void fv__peers_close(fv__peers_t *p, void (*done)(void *data), void *data)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    p->done = done;
    p->done_data = data;
    for (size_t i = 0; i < FV_MOD_COUNT; i++) {
        fv_registry_watch_stop(p->lists[i].watch);
        p->lists[i].watch = NULL;
        release_waiting(&p->lists[i], FV_ECANCELED);
    }
    fv_defer_queue_close(&p->answers, on_answers_closed);
}
