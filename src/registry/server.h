/* server.h - what the registry's server files share: the running registry (catalog, sweep and
 * persistence timers, blocking-query waiters) and its routes. module.c wraps it for the runtime;
 * tests drive it directly on their own router and loop. */
#ifndef FV_REGISTRY_SERVER_H
#define FV_REGISTRY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "net/router.h"
#include "registry/acl.h"
#include "registry/catalog.h"

typedef struct registry_waiter registry_waiter_t;
struct registry_group;

/* The views a blocking query can watch. */
typedef enum registry_query {
    REGISTRY_Q_AGENT_SERVICES,
    REGISTRY_Q_CATALOG_SERVICES,
    REGISTRY_Q_CATALOG_SERVICE,
    REGISTRY_Q_HEALTH_SERVICE,
} registry_query_t;

#define REGISTRY_MAX_WAITERS_DEFAULT 10000
#define REGISTRY_MAX_WAITERS_PER_CLIENT_DEFAULT 512

typedef struct registry_server_opts {
    uint32_t deregister_after_ms;  /* default for bodies that do not say */
    const char *data_dir;          /* NULL: no persistence */
    uint32_t persist_delay_ms;     /* debounce; 0 = 200 */
    const char *leader;            /* "127.0.0.1:8500", answered by /v1/status/leader; copied */
    const char *acl_default_policy;/* "allow" (NULL) or "deny" */
    const char *acl_tokens;        /* registry_acl_parse's syntax; NULL = none */
    const char *admin_token;       /* granted read and write on everything; NULL = none */
    bool public_bind;              /* listening beyond loopback: deny and a token required */
    size_t max_waiters;            /* blocking queries held at once; 0 = the default */
    size_t max_waiters_per_client; /* ... from one client address; 0 = the default */
} registry_server_opts_t;

typedef struct registry_server {
    uv_loop_t *loop;
    registry_catalog_t cat;
    registry_acl_t acl;
    char *data_dir;
    char *leader;
    uint32_t persist_delay_ms;
    uint64_t persist_last_ms;   /* loop time the last save took, its turns together */
    uint64_t persist_cost_ns;   /* ... summed while a save is being made */
    uint64_t persist_turn_max_ns; /* the longest loop turn of the last save */
    uint64_t persist_turn_max_cpu_ns; /* ... in CPU time of the loop's thread */
    bool walking;               /* a save is being gathered, turn by turn, into walk */
    registry_persist_parts_t walk;
    uint64_t saved_index;       /* catalog index last written; differs = dirty */
    bool persist_failing;       /* so a full disk logs once, not once per change */
    bool saving;                /* a write is on a worker thread (counted in open_handles) */
    bool closing;                 /* quiesced: waiters answered at once, no more blocking */
    bool close_called;
    uv_timer_t sweep;           /* fires at the catalog's next deadline */
    uv_timer_t persist;         /* debounce */
    uv_timer_t wait;            /* fires at the earliest blocking query's deadline */
    uv_idle_t pump;             /* answers waiters, a bounded share per loop turn */
    int open_handles;
    /* blocking queries (wait.c) */
    registry_map_t groups;      /* "<kind>|<passing>|<name>" -> group of waiters; owned */
    registry_map_t clients;     /* peer address -> its waiter count; owned */
    struct registry_group *ready, *ready_last;     /* groups with waiters to answer */
    registry_waiter_t *by_deadline, *by_deadline_last; /* every waiter, by deadline */
    size_t waiter_count;
    size_t max_waiters, max_waiters_per_client;
    uint64_t woken_index;       /* catalog index the whole-catalog groups were last woken at */
    uint64_t rng;               /* deadline jitter */
    uint64_t renders;           /* answers rendered for waiter groups (tests, metrics) */
    uint64_t pump_turns;        /* loop turns that answered waiters (tests, metrics) */
    uint64_t pump_turn_max_ns;  /* the longest such turn (metrics) */
    uint64_t pump_turn_max_cpu_ns; /* ... in CPU time of the loop's thread: the stall the
                                    * registry made, without time the machine ran others */
    uint64_t render_max_ns;     /* the longest rendering of a group's answer (metrics) */
    void (*closed_cb)(void *data);
    void *closed_data;
} registry_server_t;

/* Creates the registry on loop and loads the persisted catalog (a corrupt file is set aside;
 * see persist.c). 0 and *out, or a negative code with err: FV_EINVAL also for bad ACL settings
 * and for a public bind without deny and a token. */
FV_MUST_USE int registry_server_new(uv_loop_t *loop, const registry_server_opts_t *opts,
                                    registry_server_t **out, fv_error_t *err);

/* Adds the Consul routes to r; s must outlive r's use. */
FV_MUST_USE int registry_http_routes(fv_router_t *r, registry_server_t *s);

/* After any catalog change: wakes the waiters whose index moved, schedules the disk write and
 * re-arms the sweep. Safe to call when nothing changed. */
void registry_server_changed(registry_server_t *s);

/* Shutdown began: answers every waiter with current data, and later blocking queries at once,
 * and flushes to disk. The routes keep working until registry_server_close. */
void registry_server_quiesce(registry_server_t *s);

/* Quiesces (when not yet done), flushes to disk, closes the timers, then runs
 * cb(data) from the loop and frees s. NULL-safe; cb may be NULL. */
void registry_server_close(registry_server_t *s, void (*cb)(void *data), void *data);

/* wait.c: the index a view answers with (global, or the name's). */
uint64_t registry_query_index(const registry_server_t *s, registry_query_t kind,
                              const char *name);

/* wait.c: answers req with the view now, or holds it while the view's index equals
 * client_index, for wait_ms (plus up to 1/16 jitter); 429 past the waiter limits. */
void registry_wait_query(registry_server_t *s, fv_http_req_t *req, registry_query_t kind,
                         const char *name, bool passing, uint64_t client_index,
                         uint64_t wait_ms);

/* wait.c's side of the waiters, called by server.c: after a change, wakes the groups whose
 * view moved (answered from the loop, a share per turn); all: answers every waiter now. */
void registry_http_wake(registry_server_t *s, bool all);
/* Blocking queries currently held (for tests and metrics). */
size_t registry_http_waiter_count(const registry_server_t *s);

#endif
