/* bus_internal.h - what bus.c (subscriptions, queues, delivery) and bus_redis.c (the bridge to
 * Redis pub/sub) share. Not for use outside src/bus/. */
#ifndef FV_BUS_BUS_INTERNAL_H
#define FV_BUS_BUS_INTERNAL_H

#include "bus/bus.h"

#include "core/defer.h"
#include "store/kv_dict.h"

/* A warning logged at most once per interval, with the count of those it held back. */
typedef struct fv__bus_log_limit {
    uint64_t last_ms;
    uint64_t suppressed;
} fv__bus_log_limit_t;

struct fv_bus_sub {
    fv_bus_t *bus;
    fv_bus_sub_t *next, *prev;           /* in its topic's list, or in the prefix list */
    fv_bus_sub_t *all_next, *all_prev;   /* every subscription of the bus */
    fv_bus_sub_t *ready_next;            /* on the bus's ready list */
    fv__kv_dent_t *topic;                /* exact pattern: its entry in bus->topics */
    char *prefix;                        /* prefix pattern (without '*'); NULL when exact */
    size_t prefix_len;
    fv_bus_event_cb cb;
    void *data;
    fv_bus_policy_t policy;
    fv_bus_event_t **ring;               /* queue of cap slots, count used from head */
    uint32_t cap, head, count;
    uint64_t dropped;
    bool queued;                         /* on the ready list, or being delivered */
    bool closed;
};

struct fv_bus {
    uv_loop_t *loop;
    size_t max_event_bytes;
    uint32_t queue_count;
    uint64_t origin;
    uint64_t seq;
    fv__kv_dict_t topics;                /* exact channel -> first fv_bus_sub_t */
    fv_bus_sub_t *prefixes;              /* prefix subscriptions, a short list */
    fv_bus_sub_t *all;
    fv_bus_sub_t *ready_head, *ready_tail;
    fv_defer_queue_t dq;
    fv_defer_t pump;
    bool pump_pending;
    bool closing;
    bool dq_closed;
    fv_bus_close_cb close_cb;
    void *close_data;
    fv_bus_stats_t stats;
    /* Redis bridge (bus_redis.c) */
    fv_kv_t *kv;
    fv_kv_sub_t *ksub;
    size_t sends_in_flight;
    fv__bus_log_limit_t bad_log;         /* malformed envelopes */
    fv__bus_log_limit_t send_log;        /* failed publishes */
};

/* Delivers an event from another process to local subscribers (copies it when any match).
 * Returns 0 or FV_ENOMEM. */
int fv__bus_dispatch_remote(fv_bus_t *bus, const fv_bus_event_t *ev);
/* Called when a Redis publish finished, to let a closing bus finish. */
void fv__bus_maybe_finish(fv_bus_t *bus);

int fv__bus_redis_start(fv_bus_t *bus);
void fv__bus_redis_stop(fv_bus_t *bus);
/* One message from the fv.bus.* subscription: an Envelope from any bus, ours included. Drops
 * (and counts) what is malformed, skips our own, delivers the rest locally. Never fails. */
void fv__bus_redis_receive(fv_bus_t *bus, fv_slice_t channel, fv_slice_t msg);
/* Encodes ev as an Envelope and publishes it once. 0, or FV_ENOMEM / a kv code. */
int fv__bus_redis_send(fv_bus_t *bus, const fv_bus_event_t *ev);

#endif
