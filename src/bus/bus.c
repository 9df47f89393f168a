/* bus.c - the in-process event bus: subscriptions by exact channel (a hash table) or prefix (a
 * short list), one bounded queue per subscriber with its drop policy, and delivery on a later
 * loop turn through a defer queue. Carrying events between processes is bus_redis.c.
 *
 * A publish allocates one block (event header, names, payload) whatever the number of
 * subscribers; each queue holds a reference. Matching costs one hash lookup plus a walk of the
 * prefix subscriptions, which are few by design (gateways subscribe to exact region and player
 * channels); a trie would be the fix if prefix patterns ever number in the hundreds. */
#include "bus/bus.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "bus/bus_internal.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"

/* ---- events --------------------------------------------------------------------------------- */

void fv_bus_event_ref(fv_bus_event_t *ev)
{
    ev->refs++;
}

void fv_bus_event_unref(fv_bus_event_t *ev)
{
    if (ev && --ev->refs == 0)
        fv_free(ev);
}

/* One block: header, payload, then channel, type and key, each NUL-terminated. */
static fv_bus_event_t *event_copy(const fv_bus_event_t *src)
{
    size_t len = sizeof(fv_bus_event_t) + src->payload.len + src->channel.len + 1 +
                 src->type.len + 1 + src->coalesce_key.len + 1;
    fv_bus_event_t *ev = fv_try_malloc(len);
    if (!ev)
        return NULL;
    char *p = (char *)(ev + 1);
    *ev = *src;
    ev->refs = 1;
    if (src->payload.len)
        memcpy(p, src->payload.ptr, src->payload.len);
    ev->payload = fv_slice(p, src->payload.len);
    p += src->payload.len;
    fv_slice_t *names[3] = {&ev->channel, &ev->type, &ev->coalesce_key};
    for (int i = 0; i < 3; i++) {
        if (names[i]->len)
            memcpy(p, names[i]->ptr, names[i]->len);
        p[names[i]->len] = '\0';
        *names[i] = fv_slice(p, names[i]->len);
        p += names[i]->len + 1;
    }
    return ev;
}

/* ---- queues and delivery -------------------------------------------------------------------- */

static void on_pump(fv_defer_t *d);

static void make_ready(fv_bus_sub_t *sub)
{
    fv_bus_t *bus = sub->bus;
    if (sub->queued)
        return;
    sub->queued = true;
    sub->ready_next = NULL;
    if (bus->ready_tail)
        bus->ready_tail->ready_next = sub;
    else
        bus->ready_head = sub;
    bus->ready_tail = sub;
    if (!bus->pump_pending) {
        bus->pump_pending = true;
        fv_defer_push(&bus->dq, &bus->pump, on_pump);
    }
}

static fv_bus_event_t *ring_pop(fv_bus_sub_t *sub)
{
    fv_bus_event_t *ev = sub->ring[sub->head];
    sub->head = (sub->head + 1) % sub->cap;
    sub->count--;
    return ev;
}

static void count_drop(fv_bus_sub_t *sub, fv_bus_event_t *ev)
{
    sub->dropped++;
    sub->bus->stats.dropped++;
    fv_bus_event_unref(ev);
}

/* COALESCE: removes the queued event with ev's key, if any, closing the gap so the queue keeps
 * publish order; the newer event then joins at the tail. O(queue), which is bounded. */
static void coalesce(fv_bus_sub_t *sub, const fv_bus_event_t *ev)
{
    for (uint32_t i = 0; i < sub->count; i++) {
        uint32_t at = (sub->head + i) % sub->cap;
        fv_bus_event_t *old = sub->ring[at];
        if (!fv_slice_eq(old->coalesce_key, ev->coalesce_key))
            continue;
        for (uint32_t j = i; j + 1 < sub->count; j++)
            sub->ring[(sub->head + j) % sub->cap] = sub->ring[(sub->head + j + 1) % sub->cap];
        sub->count--;
        count_drop(sub, old);
        return;
    }
}

static void enqueue(fv_bus_sub_t *sub, fv_bus_event_t *ev)
{
    if (sub->policy == FV_BUS_COALESCE && ev->coalesce_key.len)
        coalesce(sub, ev);
    if (sub->count == sub->cap)
        count_drop(sub, ring_pop(sub));
    fv_bus_event_ref(ev);
    sub->ring[(sub->head + sub->count) % sub->cap] = ev;
    sub->count++;
    make_ready(sub);
}

static void drain(fv_bus_sub_t *sub)
{
    while (sub->count)
        fv_bus_event_unref(ring_pop(sub));
}

static void sub_free(fv_bus_sub_t *sub)
{
    fv_bus_t *bus = sub->bus;
    if (sub->all_prev)
        sub->all_prev->all_next = sub->all_next;
    else
        bus->all = sub->all_next;
    if (sub->all_next)
        sub->all_next->all_prev = sub->all_prev;
    bus->stats.subscribers--;
    fv_free(sub->ring);
    fv_free(sub->prefix);
    fv_free(sub);
}

/* Each ready subscriber gets at most what it had queued when the turn began: what callbacks
 * publish waits for the next turn, so a publish loop between subscribers cannot starve I/O. */
static void on_pump(fv_defer_t *d)
{
    fv_bus_t *bus = FV_DEFER_OWNER(d, fv_bus_t, pump);
    bus->pump_pending = false;
    fv_bus_sub_t *list = bus->ready_head;
    bus->ready_head = bus->ready_tail = NULL;
    while (list) {
        fv_bus_sub_t *sub = list;
        list = sub->ready_next;
        sub->ready_next = NULL;
        for (uint32_t n = sub->count; n > 0 && sub->count && !sub->closed; n--) {
            fv_bus_event_t *ev = ring_pop(sub);
            bus->stats.delivered++;
            sub->cb(sub, ev, sub->data);
            fv_bus_event_unref(ev);
        }
        /* sub stayed `queued` during its callbacks, so unsubscribe left its memory to us. */
        sub->queued = false;
        if (sub->closed)
            sub_free(sub);
        else if (sub->count)
            make_ready(sub);
    }
}

/* The channel's exact subscribers (their topic entry, or NULL) and whether any prefix
 * subscription matches: one hash lookup per event, shared by the test and the dispatch. */
static fv__kv_dent_t *match(const fv_bus_t *bus, fv_slice_t channel, bool *any)
{
    fv__kv_dent_t *t = fv__kv_dict_find(&bus->topics, channel);
    *any = t != NULL;
    for (const fv_bus_sub_t *s = bus->prefixes; s && !*any; s = s->next)
        *any = fv_slice_starts_with(channel, fv_slice(s->prefix, s->prefix_len));
    return t;
}

static void dispatch(fv_bus_t *bus, fv_bus_event_t *ev, fv__kv_dent_t *t)
{
    for (fv_bus_sub_t *s = t ? t->v.ptr : NULL; s; s = s->next)
        enqueue(s, ev);
    for (fv_bus_sub_t *s = bus->prefixes; s; s = s->next)
        if (fv_slice_starts_with(ev->channel, fv_slice(s->prefix, s->prefix_len)))
            enqueue(s, ev);
}

int fv__bus_dispatch_remote(fv_bus_t *bus, const fv_bus_event_t *src)
{
    bool any;
    fv__kv_dent_t *t = match(bus, src->channel, &any);
    if (bus->closing || !any)
        return 0;
    fv_bus_event_t *ev = event_copy(src);
    if (!ev)
        return FV_ENOMEM;
    dispatch(bus, ev, t);
    fv_bus_event_unref(ev);
    return 0;
}

/* ---- publish ------------------------------------------------------------------------------- */

/* 0 and the length of a valid name (1..FV_BUS_MAX_NAME bytes), or -1. */
static int name_len(const char *s, size_t *len)
{
    if (!s)
        return -1;
    size_t n = strnlen(s, FV_BUS_MAX_NAME + 1);
    if (n == 0 || n > FV_BUS_MAX_NAME)
        return -1;
    *len = n;
    return 0;
}

static int refuse(fv_bus_t *bus, int rc)
{
    bus->stats.refused++;
    return rc;
}

int fv_bus_publish(fv_bus_t *bus, const char *channel, const char *type, const void *payload,
                   size_t len, const char *coalesce_key)
{
    if (!bus)
        return FV_EINVAL;
    if (bus->closing)
        return refuse(bus, FV_EUNAVAILABLE);
    size_t clen, tlen, klen = 0;
    if (name_len(channel, &clen) < 0 || memchr(channel, '*', clen) || name_len(type, &tlen) < 0 ||
        (coalesce_key && name_len(coalesce_key, &klen) < 0) || (len && !payload))
        return refuse(bus, FV_EINVAL);
    if (len > bus->max_event_bytes || clen + tlen + klen > bus->max_event_bytes - len)
        return refuse(bus, FV_ETOOBIG);

    fv_bus_event_t tmp = {
        .channel = fv_slice(channel, clen),
        .type = fv_slice(type, tlen),
        .payload = fv_slice(payload, len),
        .coalesce_key = fv_slice(coalesce_key, klen),
        .origin = bus->origin,
        .seq = bus->seq + 1,
        .time_ms = fv_wall_ms(),
    };
    bool any;
    fv__kv_dent_t *t = match(bus, tmp.channel, &any);
    fv_bus_event_t *ev = NULL;
    if (any && !(ev = event_copy(&tmp)))
        return refuse(bus, FV_ENOMEM);
    if (bus->kv) {
        int rc = fv__bus_redis_send(bus, &tmp);
        if (rc < 0) {
            fv_bus_event_unref(ev);
            return refuse(bus, rc);
        }
    }
    bus->seq++;
    bus->stats.published++;
    if (ev) {
        dispatch(bus, ev, t);   /* t is still valid: nothing ran since the lookup */
        fv_bus_event_unref(ev);
    }
    return 0;
}

/* ---- subscriptions -------------------------------------------------------------------------- */

int fv_bus_subscribe(fv_bus_t *bus, const char *pattern, const fv_bus_sub_opts_t *opts,
                     fv_bus_event_cb cb, void *data, fv_bus_sub_t **out)
{
    size_t plen;
    if (!bus || !cb || !out || name_len(pattern, &plen) < 0)
        return FV_EINVAL;
    if (bus->closing)
        return FV_EUNAVAILABLE;
    const char *star = memchr(pattern, '*', plen);
    if (star && star != pattern + plen - 1)
        return FV_EINVAL;                   /* '*' only as the last character */
    uint32_t cap = opts && opts->queue_count ? opts->queue_count : bus->queue_count;
    fv_bus_policy_t policy = opts ? opts->policy : FV_BUS_DROP_OLDEST;
    if (cap > FV_BUS_MAX_QUEUE || (policy != FV_BUS_DROP_OLDEST && policy != FV_BUS_COALESCE))
        return FV_EINVAL;

    fv_bus_sub_t *sub = fv_try_malloc(sizeof(*sub));
    if (!sub)
        return FV_ENOMEM;
    memset(sub, 0, sizeof(*sub));
    sub->ring = fv_try_malloc((size_t)cap * sizeof(*sub->ring));
    if (!sub->ring)
        goto nomem;
    sub->bus = bus;
    sub->cap = cap;
    sub->policy = policy;
    sub->cb = cb;
    sub->data = data;
    if (star) {
        sub->prefix_len = plen - 1;
        if (!(sub->prefix = fv_try_malloc(plen)))
            goto nomem;
        memcpy(sub->prefix, pattern, plen - 1);
        sub->prefix[plen - 1] = '\0';
        if (bus->prefixes)
            bus->prefixes->prev = sub;
        sub->next = bus->prefixes;
        bus->prefixes = sub;
    } else {
        int created;
        fv__kv_dent_t *t = fv__kv_dict_upsert(&bus->topics, fv_slice(pattern, plen), &created);
        if (!t)
            goto nomem;
        sub->topic = t;
        sub->next = t->v.ptr;
        if (sub->next)
            sub->next->prev = sub;
        t->v.ptr = sub;
    }
    sub->all_next = bus->all;
    if (bus->all)
        bus->all->all_prev = sub;
    bus->all = sub;
    bus->stats.subscribers++;
    *out = sub;
    return 0;

nomem:
    fv_free(sub->ring);
    fv_free(sub->prefix);
    fv_free(sub);
    return FV_ENOMEM;
}

/* Takes sub out of matching and releases its queue; its memory stays until nothing can be
 * iterating over it. */
static void sub_detach(fv_bus_sub_t *sub)
{
    fv_bus_t *bus = sub->bus;
    sub->closed = true;
    if (sub->next)
        sub->next->prev = sub->prev;
    if (sub->prev) {
        sub->prev->next = sub->next;
    } else if (sub->topic) {
        sub->topic->v.ptr = sub->next;
        if (!sub->next)
            fv__kv_dict_remove(&bus->topics, sub->topic);
    } else {
        bus->prefixes = sub->next;
    }
    sub->topic = NULL;
    sub->next = sub->prev = NULL;
    drain(sub);
}

void fv_bus_unsubscribe(fv_bus_sub_t *sub)
{
    if (!sub || sub->closed)
        return;
    sub_detach(sub);
    if (!sub->queued)
        sub_free(sub);                      /* else the pump frees it */
}

uint64_t fv_bus_sub_dropped(const fv_bus_sub_t *sub)
{
    return sub->dropped;
}

size_t fv_bus_sub_pending(const fv_bus_sub_t *sub)
{
    return sub->count;
}

/* ---- the bus -------------------------------------------------------------------------------- */

void fv_bus_stats(const fv_bus_t *bus, fv_bus_stats_t *out)
{
    *out = bus->stats;
}

uint64_t fv_bus_origin(const fv_bus_t *bus)
{
    return bus->origin;
}

int fv_bus_new(uv_loop_t *loop, const fv_bus_opts_t *opts, fv_bus_t **out)
{
    if (!loop || !out)
        return FV_EINVAL;
    fv_bus_opts_t o = opts ? *opts : (fv_bus_opts_t){0};
    if (o.queue_count > FV_BUS_MAX_QUEUE)
        return FV_EINVAL;
    fv_bus_t *bus = fv_try_malloc(sizeof(*bus));
    if (!bus)
        return FV_ENOMEM;
    memset(bus, 0, sizeof(*bus));
    bus->loop = loop;
    bus->max_event_bytes = o.max_event_bytes ? o.max_event_bytes : FV_BUS_DEFAULT_MAX_EVENT;
    bus->queue_count = o.queue_count ? o.queue_count : FV_BUS_DEFAULT_QUEUE;
    if (sodium_init() < 0)
        bus->origin = fv_now_ns() ^ (uint64_t)(uintptr_t)bus;   /* cannot happen on Linux */
    else
        randombytes_buf(&bus->origin, sizeof(bus->origin));
    fv__kv_dict_init(&bus->topics);
    int rc = fv_defer_queue_init(loop, &bus->dq, NULL);
    if (rc < 0) {
        fv_free(bus);
        return rc;
    }
    bus->dq.data = bus;
    if (o.kv && strcmp(fv_kv_backend_name(o.kv), "redis") == 0) {
        bus->kv = o.kv;
        bus->stats.remote = true;
        if ((rc = fv__bus_redis_start(bus)) < 0) {
            /* The defer queue's handle must close before the memory goes. */
            bus->kv = NULL;
            fv_bus_close(bus, NULL, NULL);
            return rc;
        }
    }
    *out = bus;
    return 0;
}

void fv__bus_maybe_finish(fv_bus_t *bus)
{
    if (!bus->closing || !bus->dq_closed || bus->sends_in_flight)
        return;
    while (bus->all)
        sub_free(bus->all);
    fv__kv_dict_dispose(&bus->topics);
    fv_bus_close_cb cb = bus->close_cb;
    void *data = bus->close_data;
    fv_free(bus);
    if (cb)
        cb(data);
}

static void on_dq_closed(fv_defer_queue_t *q)
{
    fv_bus_t *bus = q->data;
    bus->dq_closed = true;
    fv__bus_maybe_finish(bus);
}

void fv_bus_close(fv_bus_t *bus, fv_bus_close_cb cb, void *data)
{
    if (!bus || bus->closing)
        return;
    bus->closing = true;
    bus->close_cb = cb;
    bus->close_data = data;
    for (fv_bus_sub_t *s = bus->all; s; s = s->all_next)
        if (!s->closed)
            sub_detach(s);
    if (bus->kv)
        fv__bus_redis_stop(bus);
    fv_defer_queue_close(&bus->dq, on_dq_closed);
}
