/* bus.h - the event bus: typed events published by one module and consumed by others, by
 * channel ("region.terra-nova", "player.42", "song.performed").
 *
 * One bus per process, used from its loop thread only. A publish copies the event once into a
 * refcounted block that every matching subscriber's queue shares (no copy per subscriber).
 * Delivery in the process is on a later loop turn, never inside fv_bus_publish(), in publish
 * order. Each subscriber has a bounded queue (a count) with a policy chosen at subscribe, so a
 * subscriber that never drains costs at most its queue.
 *
 * Given a Redis kv store, the bus also carries events between processes: each publish is sent
 * to Redis once (channel "fv.bus.<channel>", an encoded finalverse.events.v1.Envelope), and the
 * bus holds one pattern subscription "fv.bus.*" whose envelopes it delivers locally, skipping
 * its own (each bus has a random 64-bit origin id). With the memory kv, or none, the bus is
 * in-process only. What the payload bytes mean is the publisher's business; by convention they
 * are the typed message of proto/events.proto that `type` names. */
#ifndef FV_BUS_BUS_H
#define FV_BUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "core/slice.h"
#include "store/kv.h"

typedef struct fv_bus fv_bus_t;
typedef struct fv_bus_sub fv_bus_sub_t;

#define FV_BUS_DEFAULT_MAX_EVENT (64u * 1024u)
#define FV_BUS_DEFAULT_QUEUE 1024u
/* Ceiling on a subscriber's queue count: a queue is one array allocated at subscribe. */
#define FV_BUS_MAX_QUEUE (1u << 20)
/* Channel, type and coalesce key are names chosen by code: short, NUL-free. */
#define FV_BUS_MAX_NAME 255u
/* Prefix of the Redis channels the bus uses. */
#define FV_BUS_REDIS_PREFIX "fv.bus."

typedef struct fv_bus_opts {
    size_t max_event_bytes;   /* 0: FV_BUS_DEFAULT_MAX_EVENT; payload plus names */
    uint32_t queue_count;     /* 0: FV_BUS_DEFAULT_QUEUE; a subscriber's default queue */
    fv_kv_t *kv;              /* NULL or memory: in-process only; redis: across processes.
                                 Borrowed: close it after the bus's close callback ran. */
} fv_bus_opts_t;

/* An event as a subscriber sees it. Immutable and shared by every subscriber; valid during the
 * callback, longer with fv_bus_event_ref(). channel, type and coalesce_key are also
 * NUL-terminated; coalesce_key.len == 0 when there is none. refs is private. */
typedef struct fv_bus_event {
    fv_slice_t channel;
    fv_slice_t type;
    fv_slice_t payload;
    fv_slice_t coalesce_key;
    uint64_t origin;          /* the publishing bus's id */
    uint64_t seq;             /* per origin, from 1 */
    uint64_t time_ms;         /* publisher's wall clock */
    uint32_t refs;
} fv_bus_event_t;

void fv_bus_event_ref(fv_bus_event_t *ev);
/* NULL-safe; the last unref frees the event. */
void fv_bus_event_unref(fv_bus_event_t *ev);

typedef enum fv_bus_policy {
    FV_BUS_DROP_OLDEST = 0,   /* queue full: the oldest queued event goes */
    FV_BUS_COALESCE,          /* an event with a coalesce key replaces the queued one with the
                                 same key (which goes, counted as dropped; the new one takes
                                 its turn at the tail); otherwise as DROP_OLDEST */
} fv_bus_policy_t;

typedef struct fv_bus_sub_opts {
    uint32_t queue_count;     /* 0: the bus's queue_count; at most FV_BUS_MAX_QUEUE */
    fv_bus_policy_t policy;
} fv_bus_sub_opts_t;

/* Runs from the loop, once per delivered event, never inside publish or subscribe. The
 * callback may publish, subscribe, unsubscribe (itself too) and close the bus. */
typedef void (*fv_bus_event_cb)(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data);
typedef void (*fv_bus_close_cb)(void *data);

typedef struct fv_bus_stats {
    uint64_t published;       /* accepted by fv_bus_publish() */
    uint64_t refused;         /* refused by fv_bus_publish() (too big, bad name, no memory) */
    uint64_t delivered;       /* callbacks run */
    uint64_t dropped;         /* queued events dropped by the queue policies, all subscribers */
    uint64_t remote_out;      /* envelopes sent to Redis */
    uint64_t remote_in;       /* envelopes from other buses delivered locally */
    uint64_t remote_bad;      /* envelopes from Redis dropped as malformed or too big */
    uint64_t remote_send_errors; /* Redis publishes that failed */
    bool remote;              /* the bus is connected to a Redis kv */
    bool remote_ready;        /* Redis confirmed the pattern subscription */
    size_t subscribers;
} fv_bus_stats_t;

/* Creates the bus on loop; opts may be NULL (defaults, in-process). Returns 0 and *out, or
 * FV_EINVAL (bad opts), or a libuv / kv code. Close it with fv_bus_close(). */
FV_MUST_USE int fv_bus_new(uv_loop_t *loop, const fv_bus_opts_t *opts, fv_bus_t **out);

/* Publishes one event: channel and type are non-empty C strings of at most FV_BUS_MAX_NAME
 * bytes (channel without '*'), coalesce_key NULL or such a string; payload (len bytes, may be
 * NULL when len is 0) is copied. Returns 0 (subscribers get it on a later loop turn; over Redis
 * other processes get it once), FV_ETOOBIG (payload plus names over max_event_bytes), FV_EINVAL,
 * FV_ENOMEM, FV_EUNAVAILABLE (closing), or the kv's code when the Redis publish cannot even be
 * queued (then nobody gets the event). Refusals are counted. A Redis publish that fails later
 * (server down) does not undo the local delivery; it is counted in remote_send_errors. */
FV_MUST_USE int fv_bus_publish(fv_bus_t *bus, const char *channel, const char *type,
                               const void *payload, size_t len, const char *coalesce_key);

/* Subscribes cb to pattern: an exact channel name, or a prefix ending in '*' ("region.*",
 * "*" for everything). opts may be NULL (the bus's queue, DROP_OLDEST). Returns 0 and *out, or
 * FV_EINVAL, FV_ENOMEM, FV_EUNAVAILABLE. Events published before this returns are not
 * delivered to it. */
FV_MUST_USE int fv_bus_subscribe(fv_bus_t *bus, const char *pattern,
                                 const fv_bus_sub_opts_t *opts, fv_bus_event_cb cb, void *data,
                                 fv_bus_sub_t **out);

/* No callback runs for sub after this returns (also from its own callback); its queued events
 * are released. NULL-safe. Subscriptions still open when the bus closes end with it: calling
 * this between fv_bus_close() and its callback is harmless, after the callback it is a bug. */
void fv_bus_unsubscribe(fv_bus_sub_t *sub);

/* Events dropped from sub's queue by its policy. */
uint64_t fv_bus_sub_dropped(const fv_bus_sub_t *sub);
/* Events waiting in sub's queue. */
size_t fv_bus_sub_pending(const fv_bus_sub_t *sub);

void fv_bus_stats(const fv_bus_t *bus, fv_bus_stats_t *out);
/* The random id this bus stamps on its events. */
uint64_t fv_bus_origin(const fv_bus_t *bus);

/* Closes the bus: queued events are released, subscriptions end, the Redis subscription goes,
 * Redis publishes in flight finish; then cb (may be NULL) runs from the loop, never inside
 * this call, and the bus's memory is gone. Only the first call counts. */
void fv_bus_close(fv_bus_t *bus, fv_bus_close_cb cb, void *data);

#endif
