/* registry.h - the service registry as the rest of the program sees it: the module descriptor
 * (the server, port 8500, Consul's HTTP API subset) and the client every module uses to
 * register itself, heartbeat, and find healthy instances of other services. */
#ifndef FV_REGISTRY_REGISTRY_H
#define FV_REGISTRY_REGISTRY_H

#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "core/addr.h"
#include "core/err.h"
#include "runtime/module.h"

extern const fv_module_t fv_module_service_registry;

typedef struct fv_registry_client fv_registry_client_t;

typedef struct fv_registry_instance {      /* what to register */
    const char *name, *id, *address;
    int port;
    const char *const *tags;
    size_t tag_count;
    const char *const *meta;               /* key,value,key,value... (2*meta_count) */
    size_t meta_count;
} fv_registry_instance_t;

/* reg_host/reg_port: the registry; cfg gives ttl/heartbeat/retry/deregister settings (read at
 * this call; cfg need not outlive it). 0 and *out, or a negative code. */
FV_MUST_USE int fv_registry_client_new(uv_loop_t *loop, const char *reg_host, int reg_port,
                                       const fv_config_t *cfg, fv_registry_client_t **out);

/* Starts registering inst (copied) and heartbeating it every heartbeat_interval_ms
 * (PUT /v1/agent/check/pass/service:<id>); when the registry is down, retries with
 * exponential backoff capped at retry_max_ms (one warn when it goes down and one info when it
 * comes back, not one per try); when a heartbeat gets 404 (registry restarted and lost us),
 * registers again. Many instances per client allowed. FV_EINVAL for a missing name, a bad
 * port, or a name/id the registry would refuse; FV_EEXIST for an id already added;
 * FV_ECANCELED once closing. */
FV_MUST_USE int fv_registry_client_add(fv_registry_client_t *c,
                                       const fv_registry_instance_t *inst);

/* 1 when the instance id is currently registered (last register/heartbeat succeeded). */
int fv_registry_client_registered(const fv_registry_client_t *c, const char *id);

/* Healthy instances of name, round-robin: cb(rc, host, port, data) exactly once, later
 * (never inside the call). rc FV_ENOENT when none is passing, FV_EBACKEND when the registry
 * can't be reached, FV_ECANCELED when the client closes first. host is valid during cb only.
 * Results are cached per name for up to 1 s (so a gateway doesn't ask the registry on every
 * request). Returns 0 (cb will run) or FV_EINVAL for a bad name / FV_ECANCELED when closing
 * (cb will not run). */
typedef void (*fv_registry_lookup_cb)(int rc, const char *host, int port, void *data);
FV_MUST_USE int fv_registry_client_lookup(fv_registry_client_t *c, const char *name,
                                          fv_registry_lookup_cb cb, void *data);

/* Watching a service: cb(rc, addrs, n, data) runs with every healthy instance of name
 * (passing checks) when the watch starts and again each time that set changes, fed by the
 * registry's blocking queries (?index=, one held request per watch), so a gateway knows the
 * instances without asking per request. rc is 0 with the list (n may be 0), or FV_EBACKEND
 * when the registry cannot be reached (the watch retries with backoff; keep the last list).
 * Callbacks run from the loop, never inside a call here. A stopped watch never calls back;
 * its memory goes with the client. FV_EINVAL for a bad name, FV_ECANCELED when closing. */
typedef fv_host_port_t fv_registry_addr_t;
typedef void (*fv_registry_watch_cb)(int rc, const fv_registry_addr_t *addrs, size_t n,
                                     void *data);
typedef struct fv_registry_watch fv_registry_watch_t;
FV_MUST_USE int fv_registry_client_watch(fv_registry_client_t *c, const char *name,
                                         fv_registry_watch_cb cb, void *data,
                                         fv_registry_watch_t **out);
void fv_registry_watch_stop(fv_registry_watch_t *w);   /* NULL-safe */

/* Shutdown began: stops the heartbeats and deregisters every instance (best effort, bounded by
 * ~1 s), then runs done(data) from the loop. Lookups keep working, so a gateway can still find
 * the instances it forwards to while it drains; instances can no longer be added. Once only;
 * NULL-safe. */
void fv_registry_client_leave(fv_registry_client_t *c, void (*done)(void *), void *data);

/* Deregisters every instance still registered (best effort, bounded by ~1 s), cancels lookups
 * (cb with FV_ECANCELED), stops timers, then runs done(data) from the loop and frees. A leave
 * still waiting runs its callback first. NULL-safe; done may be NULL. */
void fv_registry_client_close(fv_registry_client_t *c, void (*done)(void *), void *data);

#endif
