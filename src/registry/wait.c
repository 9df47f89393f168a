/* wait.c - blocking queries (?index=N&wait=5s) held until what they watch changes, without
 * ever stalling the loop that every module shares:
 * - waiters are grouped by what they watch (endpoint, name, filter); a change marks only the
 *   groups of the names it touched (and the whole-catalog groups), never scans every waiter;
 * - a group's answer is rendered once per index and the bytes are shared by all its waiters;
 * - answers go out from an idle handle, a bounded share per loop turn (count and time), so
 *   the loop goes back to I/O between shares however many waiters one change wakes;
 * - waiters are bounded per client address and in total, and past either get 429.
 * Routes and ACL checks are http.c's; this file gets a request that may already wait. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "net/http_server.h"
#include "registry/render.h"
#include "registry/server.h"

/* One turn's share: at most this many answers, and no more than this much time. A 1 MiB
 * answer copies in well under a millisecond, so the time bound is what holds for big
 * catalogs and the count for small ones. */
#define WAKE_PER_TURN 256
#define WAKE_TURN_NS (2u * 1000 * 1000)

struct registry_waiter {
    registry_waiter_t *prev, *next;     /* in its group, in join order */
    registry_waiter_t *dprev, *dnext;   /* in the server's deadline order */
    registry_server_t *s;
    struct registry_group *g;
    struct registry_client_count *client;
    fv_http_req_t *req;
    uint64_t index;                     /* what the client already has */
    uint64_t deadline;                  /* loop time */
};

typedef struct registry_group {
    char *key;                          /* map key: "<kind>|<passing>|<name>" */
    registry_query_t kind;
    char *name;                         /* "" for the whole-catalog views */
    bool passing;
    registry_waiter_t *first, *last;
    size_t count;
    fv_shared_t *body;                  /* the answer rendered at body_index, or NULL; every
                                         * answer queued with it holds a reference, so 2,000
                                         * waiters of a 1 MB view queue 1 MB, not 2 GB */
    uint64_t body_index;
    bool ready;                         /* in the ready list: has waiters to answer */
    struct registry_group *ready_next;
} registry_group_t;

typedef struct registry_client_count {
    char addr[64];                      /* peer address without the port; the map key */
    size_t count;
} registry_client_count_t;

uint64_t registry_query_index(const registry_server_t *s, registry_query_t kind,
                              const char *name)
{
    if (kind == REGISTRY_Q_CATALOG_SERVICE || kind == REGISTRY_Q_HEALTH_SERVICE)
        return registry_catalog_name_index(&s->cat, name);
    return s->cat.index;
}

/* The view's bytes. The per-instance views are written directly (render.c); the list of
 * names is small and goes through jansson. */
static int render(const registry_server_t *s, registry_query_t kind, const char *name,
                  bool passing, fv_buf_t *b)
{
    switch (kind) {
    case REGISTRY_Q_AGENT_SERVICES:
        return registry_render_agent_services(&s->cat, b);
    case REGISTRY_Q_CATALOG_SERVICES:
        break;
    case REGISTRY_Q_CATALOG_SERVICE:
        return registry_render_catalog_service(&s->cat, name, b);
    case REGISTRY_Q_HEALTH_SERVICE:
        return registry_render_health_service(&s->cat, name, passing, b);
    }
    json_t *j = registry_json_catalog_services(&s->cat);
    int rc = fv_json_dump(j, b);
    json_decref(j);
    return rc;
}

static void send_answer(fv_http_req_t *req, uint64_t index, fv_shared_t *body)
{
    char idx[32];
    snprintf(idx, sizeof(idx), "%" PRIu64, index);
    fv_http_resp_header(req, "X-Consul-Index", idx);
    fv_http_resp_header(req, "X-Consul-KnownLeader", "true");
    fv_http_resp_header(req, "X-Consul-LastContact", "0");
    fv_shared_ref(body);
    fv_http_reply_shared(req, 200, "application/json", body);
}

/* The group's answer at the current index, rendered when it is not yet. 0, or a negative
 * code when serialising failed (out of memory). */
static int group_body(registry_server_t *s, registry_group_t *g, uint64_t index)
{
    if (g->body && g->body_index == index)
        return 0;
    fv_shared_unref(g->body);
    g->body = NULL;
    uint64_t t0 = uv_hrtime();
    fv_buf_t b;
    fv_buf_init(&b, 0);
    int rc = render(s, g->kind, g->name, g->passing, &b);
    uint64_t took = uv_hrtime() - t0;
    if (took > s->render_max_ns)
        s->render_max_ns = took;
    if (rc < 0) {
        fv_buf_dispose(&b);
        return rc;
    }
    size_t len;
    char *bytes = fv_buf_steal(&b, &len);
    g->body = bytes ? fv_shared_adopt(bytes, len) : fv_shared_new("", 0);
    if (!g->body)
        return FV_ENOMEM;
    g->body_index = index;
    s->renders++;
    return 0;
}

static void group_key(char *out, size_t cap, registry_query_t kind, const char *name,
                      bool passing)
{
    snprintf(out, cap, "%d|%d|%s", (int)kind, passing ? 1 : 0, name ? name : "");
}

static void group_free(registry_server_t *s, registry_group_t *g)
{
    registry_map_del(&s->groups, g->key);
    fv_free(g->key);
    fv_free(g->name);
    fv_shared_unref(g->body);
    fv_free(g);
}

/* ---- waiters ---- */

static void waiter_unlink(registry_server_t *s, registry_waiter_t *w)
{
    registry_group_t *g = w->g;
    if (w->prev)
        w->prev->next = w->next;
    else
        g->first = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        g->last = w->prev;
    g->count--;
    if (w->dprev)
        w->dprev->dnext = w->dnext;
    else
        s->by_deadline = w->dnext;
    if (w->dnext)
        w->dnext->dprev = w->dprev;
    else
        s->by_deadline_last = w->dprev;
    s->waiter_count--;
    if (--w->client->count == 0) {
        registry_map_del(&s->clients, w->client->addr);
        fv_free(w->client);
    }
    /* A group in the ready list is freed when the pump reaches it. */
    if (g->count == 0 && !g->ready)
        group_free(s, g);
}

static void on_waiter_abort(fv_http_req_t *req, void *data)
{
    registry_waiter_t *w = data;
    waiter_unlink(w->s, w);
    fv_free(w);   /* the request is gone: nothing to answer */
}

/* Answers w with its group's current data and lets it go. */
static void waiter_answer(registry_server_t *s, registry_waiter_t *w)
{
    registry_group_t *g = w->g;
    uint64_t index = registry_query_index(s, g->kind, g->name);
    int rc = group_body(s, g, index);
    if (rc < 0)
        fv_http_reply_errorf(w->req, rc, "rendering the answer failed");
    else
        send_answer(w->req, index, g->body);
    waiter_unlink(s, w);   /* may free g */
    fv_free(w);
}

/* ---- the pump: a bounded share of answers per loop turn ---- */

static void on_pump(uv_idle_t *h);

static void pump_start(registry_server_t *s)
{
    if (!s->close_called && !uv_is_active((uv_handle_t *)&s->pump))
        uv_idle_start(&s->pump, on_pump);
}

static void mark_ready(registry_server_t *s, registry_group_t *g)
{
    if (!g || g->ready)
        return;
    g->ready = true;
    g->ready_next = NULL;
    if (s->ready_last)
        s->ready_last->ready_next = g;
    else
        s->ready = g;
    s->ready_last = g;
}

/* Rendering a big answer costs milliseconds by itself: it gets a turn of its own when the turn
 * has answered anything already, and ends the turn when it took most of the share. True when
 * the turn should end here. */
static bool render_ends_turn(registry_server_t *s, registry_group_t *g, uint64_t start,
                             size_t done)
{
    uint64_t index = registry_query_index(s, g->kind, g->name);
    if (g->body && g->body_index == index)
        return false;
    if (done > 0)
        return true;
    if (group_body(s, g, index) < 0)
        return false;   /* the answer says so */
    return uv_hrtime() - start > WAKE_TURN_NS / 2;
}

/* One share: expired waits first (their deadlines are already late), then woken groups. True
 * when work is left for the next turn. */
static bool pump_share(registry_server_t *s)
{
    uint64_t start = uv_hrtime();
    uint64_t now = uv_now(s->loop);
    size_t done = 0;
    for (;;) {
        /* Checked after every answer: one answer of a big catalog is a copy of a megabyte or
         * more, so even a few of them can make a turn long. */
        if (done > 0 && (done >= WAKE_PER_TURN || uv_hrtime() - start > WAKE_TURN_NS))
            return true;
        registry_waiter_t *w = s->by_deadline;
        if (w && w->deadline <= now) {
            if (render_ends_turn(s, w->g, start, done))
                return true;
            waiter_answer(s, w);
            done++;
            continue;
        }
        registry_group_t *g = s->ready;
        if (!g)
            return false;
        uint64_t index = registry_query_index(s, g->kind, g->name);
        /* Waiters join in index order, so those behind the change are a prefix. */
        if (g->first && g->first->index != index) {
            if (render_ends_turn(s, g, start, done))
                return true;
            waiter_answer(s, g->first);
            done++;
            continue;
        }
        s->ready = g->ready_next;
        if (!s->ready)
            s->ready_last = NULL;
        g->ready = false;
        if (g->count == 0)
            group_free(s, g);
    }
}

static void arm_deadline(registry_server_t *s);

static void on_pump(uv_idle_t *h)
{
    registry_server_t *s = h->data;
    s->pump_turns++;
    uint64_t t0 = uv_hrtime(), c0 = fv_thread_cpu_ns();
    bool more = pump_share(s);
    uint64_t took = uv_hrtime() - t0, cpu = fv_thread_cpu_ns() - c0;
    if (took > s->pump_turn_max_ns)
        s->pump_turn_max_ns = took;
    if (cpu > s->pump_turn_max_cpu_ns)
        s->pump_turn_max_cpu_ns = cpu;
    if (!more)
        uv_idle_stop(&s->pump);
    arm_deadline(s);
}

static void on_wait_timer(uv_timer_t *t)
{
    pump_start(t->data);
}

/* The timer waits for the earliest deadline; the pump does the answering. */
static void arm_deadline(registry_server_t *s)
{
    if (s->close_called)
        return;
    if (!s->by_deadline || uv_is_active((uv_handle_t *)&s->pump)) {
        uv_timer_stop(&s->wait);
        return;
    }
    uint64_t now = uv_now(s->loop), first = s->by_deadline->deadline;
    uv_timer_start(&s->wait, on_wait_timer, first > now ? first - now : 0, 0);
}

/* ---- changes ---- */

static void mark_name(const char *name, void *data)
{
    registry_server_t *s = data;
    char key[REGISTRY_NAME_MAX + 16];
    static const struct {
        registry_query_t kind;
        bool passing;
    } views[] = {{REGISTRY_Q_CATALOG_SERVICE, false},
                 {REGISTRY_Q_HEALTH_SERVICE, false},
                 {REGISTRY_Q_HEALTH_SERVICE, true}};
    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
        group_key(key, sizeof(key), views[i].kind, name, views[i].passing);
        mark_ready(s, registry_map_get(&s->groups, key));
    }
}

void registry_http_wake(registry_server_t *s, bool all)
{
    if (all) {
        /* Shutdown: everything now, while the catalog is intact; the drain waits for it. */
        registry_catalog_drain_changes(&s->cat, NULL, NULL);
        while (s->by_deadline)
            waiter_answer(s, s->by_deadline);
        while (s->ready) {
            registry_group_t *g = s->ready;
            s->ready = g->ready_next;
            g->ready = false;
            group_free(s, g);
        }
        s->ready_last = NULL;
        uv_idle_stop(&s->pump);
        uv_timer_stop(&s->wait);
        return;
    }
    registry_catalog_drain_changes(&s->cat, mark_name, s);
    if (s->cat.index != s->woken_index) {
        char key[32];
        group_key(key, sizeof(key), REGISTRY_Q_AGENT_SERVICES, NULL, false);
        mark_ready(s, registry_map_get(&s->groups, key));
        group_key(key, sizeof(key), REGISTRY_Q_CATALOG_SERVICES, NULL, false);
        mark_ready(s, registry_map_get(&s->groups, key));
        s->woken_index = s->cat.index;
    }
    if (s->ready)
        pump_start(s);
}

size_t registry_http_waiter_count(const registry_server_t *s)
{
    return s->waiter_count;
}

/* ---- new queries ---- */

static void peer_addr(fv_http_req_t *req, char *out, size_t cap)
{
    const char *peer = fv_http_req_peer(req);
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, peer, len);
    out[len] = '\0';
}

/* A cheap spread for deadlines (Consul adds up to wait/16 too), so waits started together do
 * not all end in the same loop turn. */
static uint64_t jitter(registry_server_t *s, uint64_t wait_ms)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return wait_ms >= 16 ? s->rng % (wait_ms / 16) : 0;
}

void registry_wait_query(registry_server_t *s, fv_http_req_t *req, registry_query_t kind,
                         const char *name, bool passing, uint64_t client_index, uint64_t wait_ms)
{
    char key[REGISTRY_NAME_MAX + 16];
    group_key(key, sizeof(key), kind, name, passing);
    registry_group_t *g = registry_map_get(&s->groups, key);
    uint64_t index = registry_query_index(s, kind, name);
    if (s->closing || !registry_should_block(index, client_index)) {
        if (g) {
            /* Someone waits on the same view: its rendering serves this answer too. */
            int rc = group_body(s, g, index);
            if (rc < 0)
                fv_http_reply_errorf(req, rc, "rendering the answer failed");
            else
                send_answer(req, index, g->body);
            return;
        }
        fv_buf_t b;
        fv_buf_init(&b, 0);
        int rc = render(s, kind, name, passing, &b);
        if (rc < 0) {
            fv_buf_dispose(&b);
            fv_http_reply_errorf(req, rc, "rendering the answer failed");
            return;
        }
        char idx[32];
        snprintf(idx, sizeof(idx), "%" PRIu64, index);
        fv_http_resp_header(req, "X-Consul-Index", idx);
        fv_http_resp_header(req, "X-Consul-KnownLeader", "true");
        fv_http_resp_header(req, "X-Consul-LastContact", "0");
        size_t len;
        char *body = fv_buf_steal(&b, &len);
        fv_http_reply_owned(req, 200, "application/json", body, len);
        return;
    }

    char addr[64];
    peer_addr(req, addr, sizeof(addr));
    registry_client_count_t *cc = registry_map_get(&s->clients, addr);
    if (s->waiter_count >= s->max_waiters) {
        fv_http_reply_errorf(req, FV_ERATELIMIT,
                             "the registry already holds %zu blocking queries, its limit; retry "
                             "later or without ?index", s->waiter_count);
        return;
    }
    if (cc && cc->count >= s->max_waiters_per_client) {
        fv_http_reply_errorf(req, FV_ERATELIMIT,
                             "%s already holds %zu blocking queries, the limit per client; "
                             "retry later or without ?index", addr, cc->count);
        return;
    }
    if (!cc) {
        cc = fv_calloc(1, sizeof(*cc));
        snprintf(cc->addr, sizeof(cc->addr), "%s", addr);
        registry_map_put(&s->clients, cc->addr, cc);
    }
    cc->count++;
    if (!g) {
        g = fv_calloc(1, sizeof(*g));
        g->key = fv_strdup(key);
        g->kind = kind;
        g->name = fv_strdup(name ? name : "");
        g->passing = passing;
        registry_map_put(&s->groups, g->key, g);
    }
    registry_waiter_t *w = fv_calloc(1, sizeof(*w));
    w->s = s;
    w->g = g;
    w->client = cc;
    w->req = req;
    w->index = client_index;
    w->deadline = uv_now(s->loop) + wait_ms + jitter(s, wait_ms);
    w->prev = g->last;
    if (g->last)
        g->last->next = w;
    else
        g->first = w;
    g->last = w;
    g->count++;
    /* Deadline order: most waits share one wait time, so the place is found from the end in
     * a step or two. */
    registry_waiter_t *after = s->by_deadline_last;
    while (after && after->deadline > w->deadline)
        after = after->dprev;
    w->dprev = after;
    w->dnext = after ? after->dnext : s->by_deadline;
    if (w->dnext)
        w->dnext->dprev = w;
    else
        s->by_deadline_last = w;
    if (after)
        after->dnext = w;
    else
        s->by_deadline = w;
    s->waiter_count++;
    fv_http_req_on_abort(req, on_waiter_abort, w);
    arm_deadline(s);
}
