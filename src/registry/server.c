/* server.c - the running registry around the pure catalog: loading it at start, the sweep
 * timer that turns missed TTLs into critical and removals, the debounced disk write, and the
 * orderly close. Routes and blocking-query waiters are in http.c. */
#include "registry/server.h"

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/time.h"

#define PERSIST_DELAY_DEFAULT_MS 200
#define PERSIST_RETRY_MS 5000
/* A save runs on the loop and costs O(catalog): the debounce grows with it so that saving
 * takes at most about a tenth of the loop's time however big the catalog gets (a 25 MB
 * catalog then saves every few seconds rather than five times a second). */
#define PERSIST_SHARE 10
#define PERSIST_DELAY_MAX_MS 10000

static void on_persist(uv_timer_t *t);

/* One of the things close waits for is done: a handle, or a save on a worker thread. */
static void release(registry_server_t *s)
{
    if (--s->open_handles > 0)
        return;
    /* libuv is done with every handle: now the memory may go. */
    void (*cb)(void *) = s->closed_cb;
    void *data = s->closed_data;
    registry_catalog_dispose(&s->cat);
    registry_acl_dispose(&s->acl);
    registry_map_dispose(&s->groups);    /* empty: quiesce answered every waiter */
    registry_map_dispose(&s->clients);
    fv_free(s->data_dir);
    fv_free(s->leader);
    fv_free(s);
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* A save is a walk over the catalog on the loop, a bounded share of it a turn (at most
 * PERSIST_TURN_INSTANCES instances looked at and PERSIST_TURN_BYTES of changed instances'
 * bytes made), gathering where every instance's bytes are; then the write, fsync and rename,
 * which can take longer than the rest together, on a worker thread. */
#define PERSIST_TURN_BYTES (256u * 1024)
#define PERSIST_TURN_INSTANCES 16384u

typedef struct persist_job {
    uv_work_t req;
    registry_server_t *s;
    registry_persist_parts_t parts;
    uint64_t index;
    int rc;
    fv_error_t err;
} persist_job_t;

static void persist_result(registry_server_t *s, int rc, const fv_error_t *err, uint64_t index)
{
    if (rc < 0) {
        if (!s->persist_failing)
            fv_log_warn("registry", "saving the catalog failed: %s", err->msg);
        s->persist_failing = true;
        /* Retry later by itself: no further change may come to trigger it. */
        if (!s->closing)
            uv_timer_start(&s->persist, on_persist, PERSIST_RETRY_MS, 0);
        return;
    }
    if (s->persist_failing)
        fv_log_info("registry", "saving the catalog works again");
    s->persist_failing = false;
    s->saved_index = index;
}

/* At quiesce and close: written before returning, so a clean stop loses nothing. */
static void persist_sync(registry_server_t *s)
{
    if (s->walking) {
        /* a save was being gathered: this one writes everything instead */
        registry_persist_parts_dispose(&s->cat, &s->walk);
        s->walking = false;
    }
    if (!s->data_dir || s->cat.index == s->saved_index || s->saving)
        return;
    fv_error_t err;
    int rc = registry_persist_save(&s->cat, s->data_dir, &err);
    persist_result(s, rc, &err, s->cat.index);
}

static void persist_schedule(registry_server_t *s);

static void persist_work(uv_work_t *w)
{
    persist_job_t *job = w->data;
    job->rc = registry_persist_write_parts(job->s->data_dir, &job->parts, &job->err);
}

static void persist_done(uv_work_t *w, int status)
{
    persist_job_t *job = w->data;
    registry_server_t *s = job->s;
    s->saving = false;
    if (status < 0 && job->rc == 0)
        job->rc = fv_error_set(&job->err, status, "the save was cancelled");
    persist_result(s, job->rc, &job->err, job->index);
    registry_persist_parts_dispose(&s->cat, &job->parts);
    fv_free(job);
    if (s->closing)
        persist_sync(s);      /* what changed while the write ran */
    else if (s->cat.index != s->saved_index && !s->persist_failing)
        persist_schedule(s);
    release(s);
}

static void note_turn(registry_server_t *s, uint64_t t0, uint64_t c0)
{
    uint64_t ns = uv_hrtime() - t0, cpu = fv_thread_cpu_ns() - c0;
    s->persist_cost_ns += ns;
    if (ns > s->persist_turn_max_ns)
        s->persist_turn_max_ns = ns;
    if (cpu > s->persist_turn_max_cpu_ns)
        s->persist_turn_max_cpu_ns = cpu;
}

static void persist_now(registry_server_t *s)
{
    if (!s->data_dir || s->cat.index == s->saved_index)
        return;
    if (s->saving)
        return;   /* persist_done schedules the next one */
    uint64_t t0 = uv_hrtime(), c0 = fv_thread_cpu_ns();
    fv_error_t err;
    int rc;
    if (!s->walking) {
        s->persist_cost_ns = 0;
        s->persist_turn_max_ns = 0;
        s->persist_turn_max_cpu_ns = 0;
        if ((rc = registry_persist_begin(&s->cat, &s->walk, &err)) < 0) {
            persist_result(s, rc, &err, s->cat.index);
            return;
        }
        s->walking = true;
    }
    rc = registry_persist_step(&s->cat, &s->walk, PERSIST_TURN_BYTES, PERSIST_TURN_INSTANCES,
                               &err);
    note_turn(s, t0, c0);
    if (rc == FV_EAGAIN) {
        if (!s->closing)
            uv_timer_start(&s->persist, on_persist, 0, 0);
        return;
    }
    s->walking = false;
    s->persist_last_ms = s->persist_cost_ns / 1000000;
    if (rc < 0) {
        registry_persist_parts_dispose(&s->cat, &s->walk);
        persist_result(s, rc, &err, s->cat.index);
        return;
    }
    persist_job_t *job = fv_calloc(1, sizeof(*job));
    job->s = s;
    job->parts = s->walk;
    memset(&s->walk, 0, sizeof(s->walk));
    job->index = job->parts.index;
    job->req.data = job;
    if (uv_queue_work(s->loop, &job->req, persist_work, persist_done) == 0) {
        s->saving = true;
        s->open_handles++;
        return;
    }
    rc = registry_persist_write_parts(s->data_dir, &job->parts, &job->err);
    persist_result(s, rc, &job->err, job->index);
    registry_persist_parts_dispose(&s->cat, &job->parts);
    fv_free(job);
}

static void on_persist(uv_timer_t *t)
{
    persist_now(t->data);
}

static void on_sweep(uv_timer_t *t);

static void rearm_sweep(registry_server_t *s)
{
    if (s->closing)
        return;
    uint64_t now = uv_now(s->loop);
    uint64_t at = registry_catalog_next_deadline(&s->cat, now);
    if (at == UINT64_MAX)
        uv_timer_stop(&s->sweep);
    else
        uv_timer_start(&s->sweep, on_sweep, at - now, 0);
}

static void on_sweep(uv_timer_t *t)
{
    registry_server_t *s = t->data;
    size_t n = registry_catalog_expire(&s->cat, uv_now(s->loop));
    if (n > 0)
        fv_log_debug("registry", "sweep: %zu instances went critical or were removed", n);
    registry_server_changed(s);
}

void registry_server_changed(registry_server_t *s)
{
    if (s->closing)
        return;
    registry_http_wake(s, false);
    rearm_sweep(s);
    /* Without a debounce a burst of registrations at start would mean one fsync each. */
    if (s->data_dir && s->cat.index != s->saved_index)
        persist_schedule(s);
}

static void persist_schedule(registry_server_t *s)
{
    uint64_t delay = s->persist_last_ms * PERSIST_SHARE;
    if (delay < s->persist_delay_ms)
        delay = s->persist_delay_ms;
    if (delay > PERSIST_DELAY_MAX_MS)
        delay = PERSIST_DELAY_MAX_MS;
    if (!s->closing && !uv_is_active((uv_handle_t *)&s->persist))
        uv_timer_start(&s->persist, on_persist, delay, 0);
}

/* A registry anyone on the network can reach must not let anyone change what the stack
 * routes to: off loopback, requests without a token get nothing, and some token must exist. */
static int acl_setup(registry_acl_t *acl, const registry_server_opts_t *opts, fv_error_t *err)
{
    int rc = registry_acl_parse(acl, opts->acl_default_policy, opts->acl_tokens, err);
    if (rc < 0)
        return rc;
    if (opts->admin_token && *opts->admin_token &&
        (rc = registry_acl_add_admin(acl, opts->admin_token)) < 0 && rc != FV_EEXIST) {
        registry_acl_dispose(acl);
        return fv_error_set(err, rc, "registry.token: a token is %d..%d characters of letters, "
                            "digits and - _ . ~ + /", REGISTRY_TOKEN_MIN, REGISTRY_TOKEN_MAX);
    }
    if (opts->public_bind && !acl->deny) {
        registry_acl_dispose(acl);
        return fv_error_set(err, FV_EINVAL, "the registry listens beyond loopback, so "
                            "registry.acl_default_policy must be \"deny\"");
    }
    if (opts->public_bind && acl->count == 0) {
        registry_acl_dispose(acl);
        return fv_error_set(err, FV_EINVAL, "the registry listens beyond loopback and has no "
                            "token: set registry.token or registry.acl_tokens");
    }
    return 0;
}

int registry_server_new(uv_loop_t *loop, const registry_server_opts_t *opts,
                        registry_server_t **out, fv_error_t *err)
{
    registry_acl_t acl;
    int arc = acl_setup(&acl, opts, err);
    if (arc < 0)
        return arc;
    registry_server_t *s = fv_calloc(1, sizeof(*s));
    s->acl = acl;
    s->loop = loop;
    registry_catalog_init(&s->cat, opts->deregister_after_ms);
    s->data_dir = opts->data_dir && *opts->data_dir ? fv_strdup(opts->data_dir) : NULL;
    s->leader = fv_strdup(opts->leader ? opts->leader : "127.0.0.1:8500");
    s->persist_delay_ms = opts->persist_delay_ms ? opts->persist_delay_ms
                                                 : PERSIST_DELAY_DEFAULT_MS;
    if (s->data_dir) {
        bool corrupt = false;
        int rc = registry_persist_load(&s->cat, s->data_dir, uv_now(loop), &corrupt, err);
        if (rc < 0) {
            registry_catalog_dispose(&s->cat);
            registry_acl_dispose(&s->acl);
            fv_free(s->data_dir);
            fv_free(s->leader);
            fv_free(s);
            return rc;
        }
        s->saved_index = s->cat.index;
        if (s->cat.count > 0)
            fv_log_info("registry", "restored %zu instances (index %llu)", s->cat.count,
                        (unsigned long long)s->cat.index);
    }
    uv_timer_t *timers[] = {&s->sweep, &s->persist, &s->wait};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = s;
    }
    uv_idle_init(loop, &s->pump);
    s->pump.data = s;
    s->open_handles = 4;
    registry_map_init(&s->groups);
    registry_map_init(&s->clients);
    s->max_waiters = opts->max_waiters ? opts->max_waiters : REGISTRY_MAX_WAITERS_DEFAULT;
    s->max_waiters_per_client = opts->max_waiters_per_client
                                    ? opts->max_waiters_per_client
                                    : REGISTRY_MAX_WAITERS_PER_CLIENT_DEFAULT;
    s->woken_index = s->cat.index;
    s->rng = uv_hrtime() | 1;
    rearm_sweep(s);
    *out = s;
    return 0;
}

void registry_server_quiesce(registry_server_t *s)
{
    if (!s || s->closing)
        return;
    /* Waiters first, while the catalog is intact: each gets the current data. */
    registry_http_wake(s, true);
    s->closing = true;
    persist_sync(s);   /* when a write is running, its end writes what is left */
}

void registry_server_close(registry_server_t *s, void (*cb)(void *data), void *data)
{
    if (!s || s->close_called)
        return;
    s->close_called = true;
    registry_server_quiesce(s);
    persist_sync(s);
    s->closed_cb = cb;
    s->closed_data = data;
    uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
    uv_close((uv_handle_t *)&s->persist, on_handle_closed);
    uv_close((uv_handle_t *)&s->wait, on_handle_closed);
    uv_close((uv_handle_t *)&s->pump, on_handle_closed);
}
