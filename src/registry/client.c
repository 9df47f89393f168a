/* client.c - what every module uses to talk to the registry: register its instances and keep
 * them alive with TTL heartbeats (re-registering when the registry forgot them, backing off
 * when it is down), and find healthy instances of other services with a short cache.
 * It speaks only the Consul HTTP subset, so it works against a real Consul too.
 *
 * Lifetime: every instance has a uv timer and every request one callback, so memory is freed
 * only when the last timer has closed and the last request callback has run (see maybe_free). */
#include "registry/registry.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/defer.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http_client.h"
#include "registry/acl.h"
#include "registry/catalog.h"
#include "registry/token.h"

/* How long a lookup result is reused: a gateway forwarding thousands of requests a second then
 * asks the registry once a second per service, and a dead instance is dropped within ~1 s of
 * the registry noticing. */
#define LOOKUP_CACHE_MS 1000
#define BACKOFF_START_MS 250
#define CLOSE_BUDGET_MS 1000
#define MAX_ADDRS 256

typedef struct client_inst {
    struct client_inst *next;
    struct fv_registry_client *c;
    char *id;
    char *body;              /* the register body, built once */
    size_t body_len;
    uv_timer_t timer;        /* next register or heartbeat */
    bool registered;         /* last register/heartbeat succeeded */
    bool ever_registered;
    bool heartbeat_next;     /* what the timer does when it fires */
    bool busy;               /* a request is in flight */
    bool dereg_after;        /* closing: deregister once the in-flight request is answered */
    uint32_t backoff_ms;
} client_inst_t;

typedef fv_registry_addr_t client_addr_t;

/* A watch: one blocking query at a time on its service's health view. */
struct fv_registry_watch {
    struct fv_registry_watch *next;
    struct fv_registry_client *c;
    char *name;
    fv_registry_watch_cb cb;
    void *data;
    uv_timer_t timer;        /* the next query: at once, or after a failure's backoff */
    uint64_t index;          /* X-Consul-Index of the last answer; 0 = none yet */
    uint32_t backoff_ms;
    bool stopped;
    bool delivered;          /* cb had a list at least once */
};

typedef struct client_lookup {
    struct client_lookup *next;   /* in its cache entry's pending list */
    fv_defer_t defer;             /* answered: delivered from c->answers */
    fv_registry_lookup_cb cb;
    void *data;
    int rc;
    client_addr_t addr;
} client_lookup_t;

typedef struct client_cache {
    struct client_cache *next;
    struct fv_registry_client *c;
    char *name;
    client_addr_t *addrs;
    size_t addr_count;
    size_t rr;               /* round-robin cursor */
    uint64_t fetched_at;
    bool valid;
    bool fetching;
    client_lookup_t *pending;
} client_cache_t;

struct fv_registry_client {
    uv_loop_t *loop;
    fv_http_client_t *http;
    char *host;
    int port;
    char token[REGISTRY_TOKEN_MAX + 1]; /* "" until known */
    char *data_dir;               /* where `finalverse up` keeps its generated token; owned */
    uint64_t token_looked_at;     /* loop time of the last failed look for that file */
    uint32_t ttl_ms;
    uint32_t heartbeat_ms;
    uint32_t retry_max_ms;
    uint32_t deregister_after_ms;
    client_inst_t *insts;
    client_cache_t *caches;
    struct fv_registry_watch *watches;
    fv_defer_queue_t answers;     /* runs callbacks "later", never inside the caller's call */
    uv_timer_t close_timer;       /* bounds the deregistration at close */
    bool down;                    /* registry unreachable: logged once */
    bool closing;
    bool leaving;                 /* deregistered (or deregistering) for good; lookups go on */
    void (*left)(void *);         /* fv_registry_client_leave's callback, until it runs */
    void *left_data;
    bool finishing;
    size_t inflight;              /* requests whose callback has not run yet */
    size_t dereg_pending;
    int open_handles;
    void (*done)(void *);
    void *done_data;
};

static void maybe_free(fv_registry_client_t *c);
static void send_deregister(client_inst_t *i);

/* The token header, when there is a token: configured, else the one the registry module of
 * this data directory made (looked for until found, since that module may start after this
 * client was created). Returns how many headers it put at h. */
static size_t token_header(fv_registry_client_t *c, fv_http_header_t *h)
{
    /* looked for at most once a second, so a process without the registry module does not
     * pay a failed open() per request */
    uint64_t now = uv_now(c->loop);
    if (!c->token[0] && c->data_dir &&
        (c->token_looked_at == 0 || now - c->token_looked_at >= 1000)) {
        if (registry_token_read(c->data_dir, c->token, sizeof(c->token)) < 0) {
            c->token[0] = '\0';
            c->token_looked_at = now ? now : 1;
        }
    }
    if (!c->token[0])
        return 0;
    h->name = "X-Consul-Token";
    h->value = c->token;
    return 1;
}

/* ---- delivering lookup answers ---- */

/* The queue runs only what was queued when its turn started: a callback may start new lookups,
 * and their answers wait for the next turn. */
static void on_deliver(fv_defer_t *d)
{
    client_lookup_t *l = FV_DEFER_OWNER(d, client_lookup_t, defer);
    l->cb(l->rc, l->rc == 0 ? l->addr.host : NULL, l->rc == 0 ? l->addr.port : 0, l->data);
    fv_free(l);
}

/* Never after finish_close(): by then lookups are refused and fetch answers dropped. */
static void queue_answer(fv_registry_client_t *c, client_lookup_t *l)
{
    fv_defer_push(&c->answers, &l->defer, on_deliver);
}

static void answer_from_cache(client_cache_t *e, client_lookup_t *l)
{
    if (e->addr_count == 0) {
        l->rc = FV_ENOENT;
    } else {
        l->rc = 0;
        l->addr = e->addrs[e->rr++ % e->addr_count];
    }
    queue_answer(e->c, l);
}

/* ---- registry up/down bookkeeping ---- */

static void note_up(fv_registry_client_t *c)
{
    if (c->down)
        fv_log_info("registry", "registry at %s:%d is reachable again", c->host, c->port);
    c->down = false;
}

static void note_down(fv_registry_client_t *c, const char *why)
{
    if (!c->down)
        fv_log_warn("registry", "registry at %s:%d unreachable (%s); retrying with backoff",
                    c->host, c->port, why);
    c->down = true;
}

/* ---- register and heartbeat ---- */

static void on_inst_timer(uv_timer_t *t);

static void schedule(client_inst_t *i, uint64_t delay_ms, bool heartbeat)
{
    if (i->c->closing || i->c->leaving)
        return;
    i->heartbeat_next = heartbeat;
    uv_timer_start(&i->timer, on_inst_timer, delay_ms, 0);
}

static void schedule_retry(client_inst_t *i)
{
    fv_registry_client_t *c = i->c;
    if (i->backoff_ms == 0)
        i->backoff_ms = BACKOFF_START_MS < c->retry_max_ms ? BACKOFF_START_MS : c->retry_max_ms;
    else
        i->backoff_ms = i->backoff_ms * 2 > c->retry_max_ms ? c->retry_max_ms
                                                            : i->backoff_ms * 2;
    /* A retry is a register: it is an idempotent upsert and also covers a registry that lost
     * us while it was down. */
    schedule(i, i->backoff_ms, false);
}

static void on_inst_response(int rc, const fv_http_response_t *resp, void *data)
{
    client_inst_t *i = data;
    fv_registry_client_t *c = i->c;
    c->inflight--;
    i->busy = false;
    if (c->closing || c->leaving) {
        if (i->dereg_after)
            send_deregister(i);
        else
            maybe_free(c);
        return;
    }
    bool was_heartbeat = i->heartbeat_next;
    if (rc == 0 && resp->status == 200) {
        if (!i->registered && !was_heartbeat)
            fv_log_debug("registry", "registered id=%s", i->id);
        i->registered = true;
        i->ever_registered = true;
        i->backoff_ms = 0;
        note_up(c);
        schedule(i, c->heartbeat_ms, true);
        return;
    }
    i->registered = false;
    if (rc == 0 && resp->status == 404 && was_heartbeat) {
        /* The registry is up but forgot us (restart without our entry, or TTL removal). */
        note_up(c);
        fv_log_info("registry", "registry lost id=%s; registering again", i->id);
        schedule(i, 0, false);
        return;
    }
    if (rc == 0 && resp->status >= 400 && resp->status < 500) {
        /* Refused (a bad body): retrying soon will not help, so back off all the way. */
        fv_log_warn("registry", "registry refused id=%s with status %d", i->id, resp->status);
        i->backoff_ms = c->retry_max_ms;
        schedule(i, c->retry_max_ms, false);
        return;
    }
    char why[64];
    if (rc < 0)
        snprintf(why, sizeof(why), "%s", fv_strerror(rc));
    else
        snprintf(why, sizeof(why), "status %d", resp->status);
    note_down(c, why);
    schedule_retry(i);
}

static void on_inst_timer(uv_timer_t *t)
{
    client_inst_t *i = t->data;
    fv_registry_client_t *c = i->c;
    if (c->closing || c->leaving || i->busy)
        return;
    char target[REGISTRY_NAME_MAX + 64];
    fv_http_client_req_t r = {
        .method = "PUT",
        .host = c->host,
        .port = c->port,
        .target = target,
    };
    if (i->heartbeat_next) {
        snprintf(target, sizeof(target), "/v1/agent/check/pass/service:%s", i->id);
    } else {
        snprintf(target, sizeof(target), "/v1/agent/service/register");
        r.body = i->body;
        r.body_len = i->body_len;
    }
    fv_http_header_t hdrs[2];
    size_t nh = token_header(c, hdrs);
    if (!i->heartbeat_next)
        hdrs[nh++] = (fv_http_header_t){"Content-Type", "application/json"};
    r.headers = hdrs;
    r.header_count = nh;
    /* A heartbeat that takes longer than the interval is as good as lost. */
    r.timeout_ms = c->heartbeat_ms > 1000 ? c->heartbeat_ms : 1000;
    int rc = fv_http_client_request(c->http, &r, on_inst_response, i);
    if (rc < 0) {
        note_down(c, fv_strerror(rc));
        schedule_retry(i);
        return;
    }
    i->busy = true;
    c->inflight++;
}

static char *build_register_body(const fv_registry_client_t *c, const fv_registry_instance_t *in,
                                 const char *id, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "Name", json_string(in->name));
    json_object_set_new(o, "ID", json_string(id));
    json_object_set_new(o, "Address", json_string(in->address ? in->address : ""));
    json_object_set_new(o, "Port", json_integer(in->port));
    json_t *tags = json_array();
    for (size_t k = 0; k < in->tag_count; k++)
        json_array_append_new(tags, json_string(in->tags[k]));
    json_object_set_new(o, "Tags", tags);
    json_t *meta = json_object();
    for (size_t k = 0; k < in->meta_count; k++)
        json_object_set_new(meta, in->meta[2 * k], json_string(in->meta[2 * k + 1]));
    json_object_set_new(o, "Meta", meta);
    char ttl[32], dereg[32];
    snprintf(ttl, sizeof(ttl), "%" PRIu32 "ms", c->ttl_ms);
    snprintf(dereg, sizeof(dereg), "%" PRIu32 "ms", c->deregister_after_ms);
    json_t *check = json_object();
    json_object_set_new(check, "TTL", json_string(ttl));
    json_object_set_new(check, "DeregisterCriticalServiceAfter", json_string(dereg));
    json_object_set_new(o, "Check", check);
    fv_buf_t b;
    fv_buf_init(&b, 0);
    int rc = fv_json_dump(o, &b);
    json_decref(o);
    if (rc < 0) {
        fv_buf_dispose(&b);
        return NULL;
    }
    return fv_buf_steal(&b, len);
}

int fv_registry_client_add(fv_registry_client_t *c, const fv_registry_instance_t *in)
{
    if (c->closing || c->leaving)
        return FV_ECANCELED;
    if (!in->name || in->port < 0 || in->port > 65535 || (in->tag_count && !in->tags) ||
        (in->meta_count && !in->meta))
        return FV_EINVAL;
    const char *id = in->id && *in->id ? in->id : in->name;
    for (client_inst_t *i = c->insts; i; i = i->next)
        if (strcmp(i->id, id) == 0)
            return FV_EEXIST;
    size_t len;
    char *body = build_register_body(c, in, id, &len);
    if (!body)
        return FV_EINVAL;
    /* Check it as the registry will, so a bad instance fails here and not forever in retries. */
    fv_error_t err;
    json_t *j = fv_json_parse(fv_slice(body, len), &err);
    registry_instance_t *probe = NULL;
    int rc = j ? registry_instance_from_json(j, 0, &probe, &err) : FV_EINVAL;
    json_decref(j);
    registry_instance_free(probe);
    if (rc < 0) {
        fv_log_warn("registry", "cannot register %s: %s", id, err.msg);
        fv_free(body);
        return FV_EINVAL;
    }
    client_inst_t *i = fv_calloc(1, sizeof(*i));
    i->c = c;
    i->id = fv_strdup(id);
    i->body = body;
    i->body_len = len;
    uv_timer_init(c->loop, &i->timer);
    i->timer.data = i;
    c->open_handles++;
    i->next = c->insts;
    c->insts = i;
    schedule(i, 0, false);
    return 0;
}

int fv_registry_client_registered(const fv_registry_client_t *c, const char *id)
{
    for (const client_inst_t *i = c->insts; i; i = i->next)
        if (strcmp(i->id, id) == 0)
            return i->registered ? 1 : 0;
    return 0;
}

/* ---- lookups ---- */

/* The instances in a /v1/health/service answer (at most MAX_ADDRS), into a new array. */
static size_t parse_addrs(const json_t *arr, client_addr_t **out)
{
    *out = NULL;
    size_t n = json_array_size(arr), count = 0;
    if (n > MAX_ADDRS)
        n = MAX_ADDRS;
    if (n == 0)
        return 0;
    client_addr_t *addrs = fv_calloc(n, sizeof(*addrs));
    for (size_t k = 0; k < n; k++) {
        json_t *entry = json_array_get(arr, k);
        json_t *svc = json_object_get(entry, "Service");
        json_t *port = json_object_get(svc, "Port");
        const char *host = json_string_value(json_object_get(svc, "Address"));
        /* Consul's rule: an empty service address means the node's address. */
        if (!host || !*host)
            host = json_string_value(json_object_get(json_object_get(entry, "Node"),
                                                     "Address"));
        if (!host || !*host || strlen(host) >= sizeof(addrs[0].host) ||
            !json_is_integer(port))
            continue;
        client_addr_t *a = &addrs[count++];
        snprintf(a->host, sizeof(a->host), "%s", host);
        a->port = (int)json_integer_value(port);
    }
    *out = addrs;
    return count;
}

static void fill_addrs(client_cache_t *e, const json_t *arr)
{
    fv_free(e->addrs);
    e->addr_count = parse_addrs(arr, &e->addrs);
}

static void on_lookup_response(int rc, const fv_http_response_t *resp, void *data)
{
    client_cache_t *e = data;
    fv_registry_client_t *c = e->c;
    c->inflight--;
    e->fetching = false;
    if (c->closing) {
        maybe_free(c);
        return;
    }
    int result = 0;
    json_t *arr = NULL;
    if (rc < 0 || resp->status != 200) {
        result = FV_EBACKEND;
    } else {
        fv_error_t err;
        arr = fv_json_parse(resp->body, &err);
        if (!json_is_array(arr))
            result = FV_EBACKEND;
    }
    client_lookup_t *l = e->pending;
    e->pending = NULL;
    if (result == 0) {
        note_up(c);
        fill_addrs(e, arr);
        e->valid = true;
        e->fetched_at = uv_now(c->loop);
    } else {
        /* Failures are not cached: the next lookup asks again. */
        if (rc < 0)
            note_down(c, fv_strerror(rc));
        e->valid = false;
    }
    json_decref(arr);
    while (l) {
        client_lookup_t *next = l->next;
        if (result == 0) {
            answer_from_cache(e, l);
        } else {
            l->rc = result;
            queue_answer(c, l);
        }
        l = next;
    }
}

int fv_registry_client_lookup(fv_registry_client_t *c, const char *name, fv_registry_lookup_cb cb,
                              void *data)
{
    if (c->closing)
        return FV_ECANCELED;
    if (!name || !cb)
        return FV_EINVAL;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > REGISTRY_NAME_MAX || strspn(name,
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != nlen)
        return FV_EINVAL;
    client_cache_t *e = c->caches;
    while (e && strcmp(e->name, name) != 0)
        e = e->next;
    if (!e) {
        e = fv_calloc(1, sizeof(*e));
        e->c = c;
        e->name = fv_strdup(name);
        e->next = c->caches;
        c->caches = e;
    }
    client_lookup_t *l = fv_calloc(1, sizeof(*l));
    l->cb = cb;
    l->data = data;
    if (e->valid && uv_now(c->loop) - e->fetched_at < LOOKUP_CACHE_MS) {
        answer_from_cache(e, l);
        return 0;
    }
    l->next = e->pending;
    e->pending = l;
    if (e->fetching)
        return 0;
    char target[REGISTRY_NAME_MAX + 40];
    snprintf(target, sizeof(target), "/v1/health/service/%s?passing", name);
    fv_http_client_req_t r = {
        .method = "GET",
        .host = c->host,
        .port = c->port,
        .target = target,
        .timeout_ms = 2000,
    };
    fv_http_header_t hdr;
    r.header_count = token_header(c, &hdr);
    r.headers = &hdr;
    int rc = fv_http_client_request(c->http, &r, on_lookup_response, e);
    if (rc < 0) {
        /* cb must still run once, later: answer through the deliver queue. */
        e->pending = l->next;
        l->rc = FV_EBACKEND;
        queue_answer(c, l);
        return 0;
    }
    e->fetching = true;
    c->inflight++;
    return 0;
}

/* ---- watches ---- */

#define WATCH_WAIT "30s"
#define WATCH_TIMEOUT_MS 45000      /* the wait, the registry's jitter (1/16) and some slack */

static void on_watch_timer(uv_timer_t *t);

static void on_watch_response(int rc, const fv_http_response_t *resp, void *data)
{
    fv_registry_watch_t *w = data;
    fv_registry_client_t *c = w->c;
    c->inflight--;
    if (c->closing || c->finishing) {
        maybe_free(c);
        return;
    }
    if (w->stopped)
        return;
    json_t *arr = NULL;
    if (rc == 0 && resp->status == 200) {
        fv_error_t err;
        arr = fv_json_parse(resp->body, &err);
    }
    if (!json_is_array(arr)) {
        json_decref(arr);
        if (rc < 0)
            note_down(c, fv_strerror(rc));
        w->index = 0;                       /* the next answer comes at once */
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_START_MS;
        if (w->backoff_ms > c->retry_max_ms)
            w->backoff_ms = c->retry_max_ms;
        uv_timer_start(&w->timer, on_watch_timer, w->backoff_ms, 0);
        w->cb(FV_EBACKEND, NULL, 0, w->data);
        return;
    }
    note_up(c);
    w->backoff_ms = 0;
    const char *idx = fv_http_response_header(resp, "X-Consul-Index");
    uint64_t index = idx ? strtoull(idx, NULL, 10) : 0;
    bool changed = !w->delivered || index != w->index || index == 0;
    w->index = index;
    /* an unchanged index means the wait ran out: ask again (a registry that does not hold
     * queries is asked ten times a second at most) */
    uv_timer_start(&w->timer, on_watch_timer, changed ? 0 : 100, 0);
    if (changed) {
        client_addr_t *addrs;
        size_t n = parse_addrs(arr, &addrs);
        w->delivered = true;
        w->cb(0, addrs, n, w->data);
        fv_free(addrs);
    }
    json_decref(arr);
}

static void on_watch_timer(uv_timer_t *t)
{
    fv_registry_watch_t *w = t->data;
    fv_registry_client_t *c = w->c;
    if (w->stopped || c->closing || c->finishing)
        return;
    char target[REGISTRY_NAME_MAX + 80];
    if (w->index)
        snprintf(target, sizeof(target), "/v1/health/service/%s?passing&index=%" PRIu64
                 "&wait=" WATCH_WAIT, w->name, w->index);
    else
        snprintf(target, sizeof(target), "/v1/health/service/%s?passing", w->name);
    fv_http_client_req_t r = {
        .method = "GET",
        .host = c->host,
        .port = c->port,
        .target = target,
        .timeout_ms = w->index ? WATCH_TIMEOUT_MS : 2000,
    };
    fv_http_header_t hdr;
    r.header_count = token_header(c, &hdr);
    r.headers = &hdr;
    if (fv_http_client_request(c->http, &r, on_watch_response, w) == 0) {
        c->inflight++;
        return;
    }
    uv_timer_start(&w->timer, on_watch_timer, c->retry_max_ms, 0);
}

int fv_registry_client_watch(fv_registry_client_t *c, const char *name, fv_registry_watch_cb cb,
                             void *data, fv_registry_watch_t **out)
{
    if (!c || c->closing)
        return FV_ECANCELED;
    if (!name || !cb || !out)
        return FV_EINVAL;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > REGISTRY_NAME_MAX || strspn(name,
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != nlen)
        return FV_EINVAL;
    fv_registry_watch_t *w = fv_calloc(1, sizeof(*w));
    w->c = c;
    w->name = fv_strdup(name);
    w->cb = cb;
    w->data = data;
    uv_timer_init(c->loop, &w->timer);
    w->timer.data = w;
    c->open_handles++;
    w->next = c->watches;
    c->watches = w;
    uv_timer_start(&w->timer, on_watch_timer, 0, 0);
    *out = w;
    return 0;
}

void fv_registry_watch_stop(fv_registry_watch_t *w)
{
    if (!w)
        return;
    w->stopped = true;
    uv_timer_stop(&w->timer);
}

/* ---- new and close ---- */

int fv_registry_client_new(uv_loop_t *loop, const char *reg_host, int reg_port,
                           const fv_config_t *cfg, fv_registry_client_t **out)
{
    if (!loop || !reg_host || !*reg_host || reg_port < 1 || reg_port > 65535 || !cfg)
        return FV_EINVAL;
    fv_registry_client_t *c = fv_calloc(1, sizeof(*c));
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    o.connect_timeout_ms = 1000;
    o.max_idle_per_host = 4;
    int rc = fv_http_client_new(loop, &o, &c->http);
    if (rc < 0) {
        fv_free(c);
        return rc;
    }
    c->loop = loop;
    c->host = fv_strdup(reg_host);
    if (cfg->registry.token && *cfg->registry.token)
        snprintf(c->token, sizeof(c->token), "%s", cfg->registry.token);
    else if (cfg->general.data_dir && *cfg->general.data_dir)
        c->data_dir = fv_strdup(cfg->general.data_dir);
    c->port = reg_port;
    c->ttl_ms = cfg->registry.ttl_ms ? cfg->registry.ttl_ms : 10000;
    if (c->ttl_ms < REGISTRY_TTL_MIN_MS)
        c->ttl_ms = REGISTRY_TTL_MIN_MS;
    c->heartbeat_ms = cfg->registry.heartbeat_interval_ms ? cfg->registry.heartbeat_interval_ms
                                                          : 3000;
    c->retry_max_ms = cfg->registry.retry_max_ms ? cfg->registry.retry_max_ms : 5000;
    c->deregister_after_ms = cfg->registry.deregister_after_ms;
    fv_defer_queue_init(loop, &c->answers, NULL);
    c->answers.data = c;
    uv_timer_init(loop, &c->close_timer);
    c->close_timer.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    fv_registry_client_t *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_answers_closed(fv_defer_queue_t *q)
{
    fv_registry_client_t *c = q->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_watch_handle_closed(uv_handle_t *h)
{
    fv_registry_client_t *c = ((fv_registry_watch_t *)h->data)->c;
    c->open_handles--;
    maybe_free(c);
}

static void on_inst_handle_closed(uv_handle_t *h)
{
    fv_registry_client_t *c = ((client_inst_t *)h->data)->c;
    c->open_handles--;
    maybe_free(c);
}

/* Frees everything once no handle is open and no request callback is outstanding; runs done
 * last, from the loop (we are always in a libuv callback here). */
static void maybe_free(fv_registry_client_t *c)
{
    if (!c->finishing || c->open_handles > 0 || c->inflight > 0)
        return;
    while (c->insts) {
        client_inst_t *i = c->insts;
        c->insts = i->next;
        fv_free(i->id);
        fv_free(i->body);
        fv_free(i);
    }
    while (c->watches) {
        fv_registry_watch_t *w = c->watches;
        c->watches = w->next;
        fv_free(w->name);
        fv_free(w);
    }
    while (c->caches) {
        client_cache_t *e = c->caches;
        c->caches = e->next;
        fv_free(e->name);
        fv_free(e->addrs);
        fv_free(e);
    }
    void (*done)(void *) = c->done;
    void *data = c->done_data;
    fv_free(c->host);
    fv_free(c->data_dir);
    fv_free(c);
    if (done)
        done(data);
}

static void finish_close(fv_registry_client_t *c)
{
    if (c->finishing)
        return;
    c->finishing = true;
    fv_http_client_free(c->http);   /* outstanding callbacks run later with FV_ECANCELED */
    c->http = NULL;
    /* Answers still queued are delivered (from the loop) before the queue's handle goes. */
    fv_defer_queue_close(&c->answers, on_answers_closed);
    uv_close((uv_handle_t *)&c->close_timer, on_client_handle_closed);
    for (client_inst_t *i = c->insts; i; i = i->next)
        uv_close((uv_handle_t *)&i->timer, on_inst_handle_closed);
    for (fv_registry_watch_t *w = c->watches; w; w = w->next)
        uv_close((uv_handle_t *)&w->timer, on_watch_handle_closed);
}

/* fv_registry_client_leave is done: its deregistrations are answered or their budget spent. */
static void left_done(fv_registry_client_t *c)
{
    void (*left)(void *) = c->left;
    c->left = NULL;
    if (left)
        left(c->left_data);
}

static void on_close_timer(uv_timer_t *t)
{
    fv_registry_client_t *c = t->data;
    if (c->closing)
        finish_close(c);
    else
        left_done(c);
}

static void dereg_done(fv_registry_client_t *c)
{
    c->dereg_pending--;
    if (c->dereg_pending == 0 && !c->finishing)
        uv_timer_start(&c->close_timer, on_close_timer, 0, 0);
}

static void on_deregistered(int rc, const fv_http_response_t *resp, void *data)
{
    fv_registry_client_t *c = data;
    c->inflight--;
    dereg_done(c);
    maybe_free(c);
}

/* Counted in dereg_pending by the caller; this settles the count when the request cannot go. */
static void send_deregister(client_inst_t *i)
{
    fv_registry_client_t *c = i->c;
    i->dereg_after = false;
    i->ever_registered = false;     /* once is enough: a close after a leave sends nothing */
    if (c->finishing || !c->http) {
        dereg_done(c);
        maybe_free(c);
        return;
    }
    char target[REGISTRY_NAME_MAX + 40];
    snprintf(target, sizeof(target), "/v1/agent/service/deregister/%s", i->id);
    fv_http_client_req_t r = {
        .method = "PUT",
        .host = c->host,
        .port = c->port,
        .target = target,
        .timeout_ms = CLOSE_BUDGET_MS,
    };
    fv_http_header_t hdr;
    r.header_count = token_header(c, &hdr);
    r.headers = &hdr;
    if (fv_http_client_request(c->http, &r, on_deregistered, c) == 0) {
        c->inflight++;
        return;
    }
    dereg_done(c);
}

/* Stops the heartbeats and deregisters every instance, counted in dereg_pending; the close
 * timer then ends the wait when they are answered or the budget is spent. */
static void deregister_all(fv_registry_client_t *c)
{
    for (client_inst_t *i = c->insts; i; i = i->next)
        uv_timer_stop(&i->timer);
    for (client_inst_t *i = c->insts; i; i = i->next) {
        if (i->busy) {
            /* A register still in flight could land after our deregister and bring the
             * instance back: deregister once it is answered. */
            if (!i->dereg_after) {
                i->dereg_after = true;
                c->dereg_pending++;
            }
        } else if (i->ever_registered) {
            c->dereg_pending++;
            send_deregister(i);
        }
    }
    /* Finish when the deregistrations are answered or the budget is spent, whichever is
     * first; always from a timer, so no callback runs inside the caller's call. */
    uv_timer_start(&c->close_timer, on_close_timer, c->dereg_pending ? CLOSE_BUDGET_MS : 0, 0);
}

void fv_registry_client_leave(fv_registry_client_t *c, void (*done)(void *), void *data)
{
    if (!c || c->closing || c->leaving)
        return;
    c->leaving = true;
    c->left = done;
    c->left_data = data;
    deregister_all(c);
}

void fv_registry_client_close(fv_registry_client_t *c, void (*done)(void *), void *data)
{
    if (!c || c->closing)
        return;
    left_done(c);                   /* a leave still waiting ends here */
    c->closing = true;
    c->done = done;
    c->done_data = data;
    for (client_cache_t *e = c->caches; e; e = e->next) {
        client_lookup_t *l = e->pending;
        e->pending = NULL;
        while (l) {
            client_lookup_t *next = l->next;
            l->rc = FV_ECANCELED;
            queue_answer(c, l);
            l = next;
        }
    }
    deregister_all(c);
}
