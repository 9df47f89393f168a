/* upstream.c - the instances behind each service the gateway forwards to.
 *
 * Each service is watched through the registry (blocking queries), so the list is known before
 * a request needs it and no request waits for a lookup, except the first ones for a service
 * (they queue until its first answer). A request goes to the instance with the fewest requests
 * outstanding, ties broken round-robin. Passive health: an instance whose connection fails
 * (refused, reset, connect timeout) is skipped for a while, longer after each failure in a row
 * (1 s, 2 s, 4 s ... 16 s), since the registry only notices a dead instance when its TTL runs
 * out. When every instance is being skipped, the one whose pause ends first is tried anyway:
 * the registry still says it is healthy, and a 503 would be a guess. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "registry/registry.h"

#define SKIP_BASE_MS 1000
#define SKIP_MAX_SHIFT 4
#define MAX_WAITERS 4096
#define MAX_UPSTREAMS 64

struct gw_upstream {
    gateway_t *gw;
    char name[64];
    fv_registry_watch_t *watch;
    gw_instance_t *insts;          /* present ones, and gone ones still with requests on */
    gw_instance_t **live;          /* the present ones, for picking */
    size_t live_count;
    size_t rr;
    gw_wait_t *waiters;            /* until the first answer */
    gw_wait_t *waiters_tail;
    size_t waiter_count;
    bool known;                    /* an instance list arrived */
    bool unreachable;              /* the registry failed and no list is known */
};

struct gw_upstreams {
    gw_upstream_t *ups[MAX_UPSTREAMS];
    size_t count;
};

int gw_upstreams_new(gateway_t *gw)
{
    gw->ups = fv_calloc(1, sizeof(*gw->ups));
    return 0;
}

const char *gw_upstream_name(const gw_upstream_t *u)
{
    return u->name;
}

static void inst_free_if_gone(gw_instance_t *i)
{
    if (i->present || i->outstanding)
        return;
    gw_upstream_t *u = i->up;
    for (gw_instance_t **p = &u->insts; *p; p = &(*p)->next) {
        if (*p == i) {
            *p = i->next;
            break;
        }
    }
    fv_free(i);
}

static void release_waiters(gw_upstream_t *u, int rc)
{
    gw_wait_t *w = u->waiters;
    u->waiters = u->waiters_tail = NULL;
    u->waiter_count = 0;
    while (w) {
        gw_wait_t *next = w->next;
        w->next = NULL;
        w->ready(w, rc);
        w = next;
    }
}

static void on_watch(int rc, const fv_registry_addr_t *addrs, size_t n, void *data)
{
    gw_upstream_t *u = data;
    if (rc < 0) {
        /* keep the last list: the instances may well be up while the registry is not */
        if (!u->known) {
            u->unreachable = true;
            release_waiters(u, FV_EBACKEND);
        }
        return;
    }
    for (gw_instance_t *i = u->insts; i; i = i->next)
        i->present = false;
    for (size_t k = 0; k < n; k++) {
        gw_instance_t *i = u->insts;
        while (i && (i->port != addrs[k].port || strcmp(i->host, addrs[k].host) != 0))
            i = i->next;
        if (!i) {
            i = fv_calloc(1, sizeof(*i));
            i->up = u;
            snprintf(i->host, sizeof(i->host), "%s", addrs[k].host);
            i->port = addrs[k].port;
            i->next = u->insts;
            u->insts = i;
        }
        i->present = true;
    }
    fv_free(u->live);
    u->live = n ? fv_calloc(n, sizeof(*u->live)) : NULL;
    u->live_count = 0;
    gw_instance_t *i = u->insts;
    while (i) {
        gw_instance_t *next = i->next;
        if (i->present)
            u->live[u->live_count++] = i;
        else
            inst_free_if_gone(i);
        i = next;
    }
    if (!u->known)
        fv_log_info("gateway", "%s: %zu instance%s", u->name, u->live_count,
                    u->live_count == 1 ? "" : "s");
    else
        fv_log_debug("gateway", "%s: now %zu instance%s", u->name, u->live_count,
                     u->live_count == 1 ? "" : "s");
    u->known = true;
    u->unreachable = false;
    release_waiters(u, 0);
}

gw_upstream_t *gw_upstream_get(gateway_t *gw, const char *service)
{
    gw_upstreams_t *all = gw->ups;
    for (size_t k = 0; k < all->count; k++)
        if (strcmp(all->ups[k]->name, service) == 0)
            return all->ups[k];
    fv_registry_client_t *registry = fv_module_registry(gw->ctx);
    if (all->count == MAX_UPSTREAMS || !registry || strlen(service) >= sizeof(all->ups[0]->name))
        return NULL;
    gw_upstream_t *u = fv_calloc(1, sizeof(*u));
    u->gw = gw;
    snprintf(u->name, sizeof(u->name), "%s", service);
    int rc = fv_registry_client_watch(registry, service, on_watch, u, &u->watch);
    if (rc < 0) {
        fv_log_warn("gateway", "cannot watch %s in the registry: %s", service, fv_strerror(rc));
        fv_free(u);
        return NULL;
    }
    all->ups[all->count++] = u;
    return u;
}

int gw_upstream_wait(gw_upstream_t *u, gw_wait_t *w)
{
    if (u->waiter_count >= MAX_WAITERS)
        return FV_ETOOBIG;
    w->next = NULL;
    if (u->waiters_tail)
        u->waiters_tail->next = w;
    else
        u->waiters = w;
    u->waiters_tail = w;
    u->waiter_count++;
    return 0;
}

void gw_upstream_unwait(gw_upstream_t *u, gw_wait_t *w)
{
    gw_wait_t *prev = NULL;
    for (gw_wait_t *x = u->waiters; x; prev = x, x = x->next) {
        if (x != w)
            continue;
        if (prev)
            prev->next = x->next;
        else
            u->waiters = x->next;
        if (u->waiters_tail == x)
            u->waiters_tail = prev;
        u->waiter_count--;
        return;
    }
}

int gw_upstream_pick(gw_upstream_t *u, const gw_instance_t *avoid, gw_instance_t **out)
{
    if (!u->known)
        return u->unreachable ? FV_EBACKEND : FV_EAGAIN;
    size_t n = u->live_count;
    if (n == 0)
        return FV_ENOENT;
    uint64_t now = uv_now(fv_module_loop(u->gw->ctx));
    size_t start = u->rr++;
    gw_instance_t *best = NULL, *paused = NULL;
    for (size_t k = 0; k < n; k++) {
        gw_instance_t *i = u->live[(start + k) % n];
        if (i == avoid)
            continue;
        if (i->skip_until_ms > now) {
            if (!paused || i->skip_until_ms < paused->skip_until_ms)
                paused = i;
            continue;
        }
        if (!best || i->outstanding < best->outstanding)
            best = i;
    }
    if (!best)
        best = paused;
    if (!best)
        return FV_ENOENT;
    best->outstanding++;
    best->requests++;
    *out = best;
    return 0;
}

void gw_instance_done(gw_instance_t *i, int rc)
{
    i->outstanding--;
    if (rc == FV_ECONNREFUSED || rc == FV_ECONNRESET || rc == FV_ETIMEDOUT ||
        rc == FV_EPROTO) {
        i->errors++;
        if (rc != FV_ETIMEDOUT || i->failures) {
            /* a slow answer alone is no sign of death; refused, reset or garbage are */
            uint32_t shift = i->failures < SKIP_MAX_SHIFT ? i->failures : SKIP_MAX_SHIFT;
            i->failures++;
            i->skip_until_ms = uv_now(fv_module_loop(i->up->gw->ctx)) +
                               ((uint64_t)SKIP_BASE_MS << shift);
            if (i->failures == 1)
                fv_log_warn("gateway", "%s at %s:%d failed (%s): skipped for %u ms",
                            i->up->name, i->host, i->port, fv_strerror(rc),
                            SKIP_BASE_MS << shift);
        }
    } else if (rc == 0) {
        if (i->failures)
            fv_log_info("gateway", "%s at %s:%d answers again", i->up->name, i->host, i->port);
        i->failures = 0;
        i->skip_until_ms = 0;
    }
    inst_free_if_gone(i);
}

void gw_upstreams_stop(gateway_t *gw)
{
    gw_upstreams_t *all = gw->ups;
    if (!all)
        return;
    for (size_t k = 0; k < all->count; k++) {
        gw_upstream_t *u = all->ups[k];
        fv_registry_watch_stop(u->watch);
        u->watch = NULL;
        if (!u->known)
            u->unreachable = true;
        release_waiters(u, FV_EBACKEND);
    }
}

void gw_upstreams_free(gateway_t *gw)
{
    gw_upstreams_t *all = gw->ups;
    if (!all)
        return;
    for (size_t k = 0; k < all->count; k++) {
        gw_upstream_t *u = all->ups[k];
        while (u->insts) {
            gw_instance_t *i = u->insts;
            u->insts = i->next;
            fv_free(i);
        }
        fv_free(u->live);
        fv_free(u);
    }
    fv_free(all);
    gw->ups = NULL;
}

static json_t *instances_json(const gw_upstream_t *u, uint64_t now)
{
    json_t *arr = json_array();
    for (const gw_instance_t *i = u->insts; i; i = i->next) {
        uint64_t skip = i->skip_until_ms > now ? i->skip_until_ms - now : 0;
        json_array_append_new(arr, json_pack("{s:s,s:i,s:b,s:I,s:I,s:I,s:I,s:I}",
                                             "host", i->host, "port", i->port,
                                             "registered", i->present,
                                             "outstanding", (json_int_t)i->outstanding,
                                             "failures", (json_int_t)i->failures,
                                             "skipped_for_ms", (json_int_t)skip,
                                             "requests", (json_int_t)i->requests,
                                             "errors", (json_int_t)i->errors));
    }
    return arr;
}

json_t *gw_routes_json(gateway_t *gw)
{
    uint64_t now = uv_now(fv_module_loop(gw->ctx));
    json_t *routes = json_array();
    for (size_t k = 0; k < gw->route_count; k++) {
        const gw_route_t *r = &gw->routes[k];
        json_t *j = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I}", "prefix", r->prefix,
                              "service", r->service, "strip_prefix", r->strip,
                              "authenticated", r->authenticated,
                              "timeout_ms", (json_int_t)(r->timeout_ms ? r->timeout_ms
                                                                       : gw->upstream_timeout_ms),
                              "max_body_bytes", (json_int_t)r->max_body_bytes,
                              "requests", (json_int_t)r->requests,
                              "answers_5xx", (json_int_t)r->answers_5xx);
        const gw_upstream_t *u = r->up;
        json_object_set_new(j, "watched", json_boolean(u && u->known));
        json_object_set_new(j, "instances", u ? instances_json(u, now) : json_array());
        json_array_append_new(routes, j);
    }
    return json_pack("{s:o}", "routes", routes);
}

/* Per-route and per-instance series for /metrics. Labels hold prefixes and service names the
 * config checked ([A-Za-z0-9/_.~-]) and instance addresses from the registry's validation, so
 * none needs escaping. */
int gw_metrics(void *data, const char *module, fv_buf_t *out)
{
    gateway_t *gw = data;
    int rc = fv_buf_append_str(out, "# HELP finalverse_gateway_route_requests_total Requests "
                                    "the gateway answered, by route.\n"
                                    "# TYPE finalverse_gateway_route_requests_total counter\n");
    for (size_t k = 0; rc == 0 && k < gw->route_count; k++) {
        const gw_route_t *r = &gw->routes[k];
        rc = fv_buf_printf(out, "finalverse_gateway_route_requests_total{module=\"%s\","
                           "route=\"%s\",service=\"%s\"} %llu\n", module, r->prefix,
                           r->service, (unsigned long long)r->requests);
    }
    if (rc == 0)
        rc = fv_buf_append_str(out, "# HELP finalverse_gateway_route_5xx_total Answers with a "
                                    "5xx status, by route.\n"
                                    "# TYPE finalverse_gateway_route_5xx_total counter\n");
    for (size_t k = 0; rc == 0 && k < gw->route_count; k++) {
        const gw_route_t *r = &gw->routes[k];
        rc = fv_buf_printf(out, "finalverse_gateway_route_5xx_total{module=\"%s\","
                           "route=\"%s\",service=\"%s\"} %llu\n", module, r->prefix,
                           r->service, (unsigned long long)r->answers_5xx);
    }
    static const struct {
        const char *name, *type, *help;
    } series[] = {
        {"finalverse_gateway_upstream_requests_total", "counter",
         "Requests sent to an upstream instance."},
        {"finalverse_gateway_upstream_errors_total", "counter",
         "Requests to an upstream instance that failed (refused, reset, timeout, garbled)."},
        {"finalverse_gateway_upstream_outstanding", "gauge",
         "Requests on an upstream instance now."},
        {"finalverse_gateway_upstream_skipped", "gauge",
         "1 while passive health skips the instance after a failure."},
    };
    gw_upstreams_t *all = gw->ups;
    uint64_t now = uv_now(fv_module_loop(gw->ctx));
    for (size_t s = 0; rc == 0 && all && s < sizeof(series) / sizeof(series[0]); s++) {
        rc = fv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", series[s].name, series[s].help,
                           series[s].name, series[s].type);
        for (size_t k = 0; rc == 0 && k < all->count; k++) {
            const gw_upstream_t *u = all->ups[k];
            for (const gw_instance_t *i = u->insts; rc == 0 && i; i = i->next) {
                unsigned long long v = s == 0   ? i->requests
                                       : s == 1 ? i->errors
                                       : s == 2 ? i->outstanding
                                                : (i->skip_until_ms > now);
                rc = fv_buf_printf(out, "%s{module=\"%s\",service=\"%s\",instance=\"%s:%d\"} "
                                   "%llu\n", series[s].name, module, u->name, i->host, i->port,
                                   v);
            }
        }
    }
    return rc;
}
