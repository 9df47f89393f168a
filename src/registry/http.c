/* http.c - the registry's Consul-compatible routes and its blocking queries. Validation and
 * state live in catalog.c; this file turns requests into catalog calls and catalog views into
 * responses, and holds GETs that carry ?index=N until the data they watch moves on.
 *
 * Errors differ from Consul on purpose: Consul answers 400 with plain text, we send our JSON
 * error shape, which Consul client libraries also surface as an error with the status. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http_server.h"
#include "net/router.h"
#include "registry/server.h"

/* Consul's defaults: a watch without ?wait= waits 5 minutes, and no watch waits above 10. */
#define WAIT_DEFAULT_MS (5u * 60 * 1000)
#define WAIT_MAX_MS (10u * 60 * 1000)

typedef enum query_kind {
    Q_AGENT_SERVICES,
    Q_CATALOG_SERVICES,
    Q_CATALOG_SERVICE,
    Q_HEALTH_SERVICE,
} query_kind_t;

struct registry_waiter {
    registry_waiter_t *prev;
    registry_waiter_t *next;
    registry_server_t *s;
    fv_http_req_t *req;
    query_kind_t kind;
    char *name;          /* owned; NULL for the whole-catalog queries */
    bool passing;
    uint64_t index;      /* what the client already has */
    uint64_t deadline;   /* loop time */
};

static uint64_t query_index(const registry_server_t *s, query_kind_t kind, const char *name)
{
    if (kind == Q_CATALOG_SERVICE || kind == Q_HEALTH_SERVICE)
        return registry_catalog_name_index(&s->cat, name);
    return s->cat.index;
}

static void answer(registry_server_t *s, fv_http_req_t *req, query_kind_t kind, const char *name,
                   bool passing)
{
    json_t *body = NULL;
    switch (kind) {
    case Q_AGENT_SERVICES:
        body = registry_json_agent_services(&s->cat);
        break;
    case Q_CATALOG_SERVICES:
        body = registry_json_catalog_services(&s->cat);
        break;
    case Q_CATALOG_SERVICE:
        body = registry_json_catalog_service(&s->cat, name);
        break;
    case Q_HEALTH_SERVICE:
        body = registry_json_health_service(&s->cat, name, passing);
        break;
    }
    char idx[32];
    snprintf(idx, sizeof(idx), "%" PRIu64, query_index(s, kind, name));
    fv_http_resp_header(req, "X-Consul-Index", idx);
    fv_http_resp_header(req, "X-Consul-KnownLeader", "true");
    fv_http_resp_header(req, "X-Consul-LastContact", "0");
    fv_http_reply_json(req, 200, body);
}

static void waiter_unlink(registry_server_t *s, registry_waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        s->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void waiter_free(registry_waiter_t *w)
{
    fv_free(w->name);
    fv_free(w);
}

static void on_waiter_abort(fv_http_req_t *req, void *data)
{
    registry_waiter_t *w = data;
    waiter_unlink(w->s, w);
    waiter_free(w);   /* the request is gone: nothing to answer */
}

static void on_wait_timer(uv_timer_t *t)
{
    registry_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    registry_waiter_t *next;
    for (registry_waiter_t *w = s->waiters; w; w = next) {
        next = w->next;
        if (w->deadline > now)
            continue;
        waiter_unlink(s, w);
        answer(s, w->req, w->kind, w->name, w->passing);
        waiter_free(w);
    }
    registry_http_arm_wait_timer(s);
}

/* One timer for all waiters, set to the earliest deadline: waiters are few and short-lived, so
 * a scan beats a handle (and an async close) per held request. */
void registry_http_arm_wait_timer(registry_server_t *s)
{
    if (s->closing)
        return;
    uint64_t first = UINT64_MAX;
    for (registry_waiter_t *w = s->waiters; w; w = w->next)
        if (w->deadline < first)
            first = w->deadline;
    if (first == UINT64_MAX) {
        uv_timer_stop(&s->wait);
        return;
    }
    uint64_t now = uv_now(s->loop);
    uv_timer_start(&s->wait, on_wait_timer, first > now ? first - now : 0, 0);
}

void registry_http_wake(registry_server_t *s, bool all)
{
    registry_waiter_t *next;
    for (registry_waiter_t *w = s->waiters; w; w = next) {
        next = w->next;
        if (!all && query_index(s, w->kind, w->name) == w->index)
            continue;
        waiter_unlink(s, w);
        answer(s, w->req, w->kind, w->name, w->passing);
        waiter_free(w);
    }
    registry_http_arm_wait_timer(s);
}

size_t registry_http_waiter_count(const registry_server_t *s)
{
    size_t n = 0;
    for (const registry_waiter_t *w = s->waiters; w; w = w->next)
        n++;
    return n;
}

/* ---- ACLs ---- */

/* The request's token, where Consul looks for it: X-Consul-Token, then Authorization: Bearer,
 * then ?token=. "" when there is none; one longer than any token can be stays too long to
 * match. */
static void request_token(fv_http_req_t *req, char *out, size_t cap)
{
    fv_slice_t v = fv_http_req_header(req, "X-Consul-Token");
    if (v.len == 0) {
        fv_slice_t auth = fv_http_req_header(req, "Authorization");
        if (auth.len > 7 && strncasecmp(auth.ptr, "Bearer ", 7) == 0) {
            v.ptr = auth.ptr + 7;
            v.len = auth.len - 7;
            while (v.len > 0 && *v.ptr == ' ') {
                v.ptr++;
                v.len--;
            }
        }
    }
    if (v.len == 0) {
        const char *q = fv_http_req_query_param(req, "token");
        if (q)
            v = fv_slice_cstr(q);
    }
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(out, v.ptr, n);
    out[n] = '\0';
}

/* 0 with *tok (NULL: the anonymous token), or replied 403: a token was sent that nobody
 * issued, which Consul answers "ACL not found" whatever the default policy. */
static int token_or_reply(fv_http_req_t *req, registry_server_t *s,
                          const registry_acl_token_t **tok)
{
    char secret[REGISTRY_TOKEN_MAX + 2];
    request_token(req, secret, sizeof(secret));
    *tok = NULL;
    if (!secret[0])
        return 0;
    if (!(*tok = registry_acl_find(&s->acl, secret))) {
        fv_log_info("registry", "request with an unknown token from %s", fv_http_req_peer(req));
        fv_http_reply_errorf(req, FV_EFORBIDDEN, "ACL not found");
        return FV_EFORBIDDEN;
    }
    return 0;
}

/* Consul's wording, so clients that match on it keep working. */
static void reply_denied(fv_http_req_t *req, const registry_acl_token_t *tok, const char *perm,
                         const char *name)
{
    fv_log_info("registry", "denied %s on \"%s\" to %s from %s", perm, name,
                tok ? "a token" : "the anonymous token", fv_http_req_peer(req));
    fv_http_reply_errorf(req, FV_EFORBIDDEN, "Permission denied: %s lacks permission '%s' on "
                         "\"%s\"", tok ? "token" : "anonymous token", perm, name);
}

/* Who may change an existing instance: one registered with a token is guarded by its name's
 * write rules alone (the default policy does not open it to the anonymous token); others
 * follow the default policy. */
static bool may_modify(const registry_server_t *s, const registry_acl_token_t *tok,
                       const registry_instance_t *inst)
{
    return inst->owned ? registry_acl_token_writes(tok, inst->name)
                       : registry_acl_can_write(&s->acl, tok, inst->name);
}

/* ---- GETs ---- */

static void serve_query(fv_http_req_t *req, registry_server_t *s, query_kind_t kind,
                        const char *name, bool passing)
{
    uint64_t client_index = 0;
    const char *qi = fv_http_req_query_param(req, "index");
    if (qi && *qi) {
        char *end;
        unsigned long long v = strtoull(qi, &end, 10);
        if (*end || *qi == '-') {
            fv_http_reply_errorf(req, FV_EINVAL, "index must be a non-negative integer");
            return;
        }
        client_index = v;
    }
    uint64_t wait_ms = WAIT_DEFAULT_MS;
    const char *qw = fv_http_req_query_param(req, "wait");
    if (qw && *qw) {
        if (registry_parse_duration(qw, &wait_ms) < 0) {
            fv_http_reply_errorf(req, FV_EINVAL, "wait must be a duration like \"5s\" or \"1m\"");
            return;
        }
        if (wait_ms > WAIT_MAX_MS)
            wait_ms = WAIT_MAX_MS;
    }
    const registry_acl_token_t *tok;
    if (token_or_reply(req, s, &tok) < 0)
        return;
    if (!registry_acl_can_read(&s->acl, tok)) {
        reply_denied(req, tok, "service:read", name ? name : "*");
        return;
    }
    if (s->closing || !registry_should_block(query_index(s, kind, name), client_index)) {
        answer(s, req, kind, name, passing);
        return;
    }
    registry_waiter_t *w = fv_calloc(1, sizeof(*w));
    w->s = s;
    w->req = req;
    w->kind = kind;
    w->name = name ? fv_strdup(name) : NULL;
    w->passing = passing;
    w->index = client_index;
    w->deadline = uv_now(s->loop) + wait_ms;
    w->next = s->waiters;
    if (s->waiters)
        s->waiters->prev = w;
    s->waiters = w;
    fv_http_req_on_abort(req, on_waiter_abort, w);
    registry_http_arm_wait_timer(s);
}

static void on_agent_services(fv_http_req_t *req, void *data)
{
    serve_query(req, data, Q_AGENT_SERVICES, NULL, false);
}

static void on_catalog_services(fv_http_req_t *req, void *data)
{
    serve_query(req, data, Q_CATALOG_SERVICES, NULL, false);
}

static void on_catalog_service(fv_http_req_t *req, void *data)
{
    serve_query(req, data, Q_CATALOG_SERVICE, fv_http_req_param(req, "name"), false);
}

static void on_health_service(fv_http_req_t *req, void *data)
{
    /* Consul takes ?passing with no value; "false" and "0" are read as off too. */
    const char *p = fv_http_req_query_param(req, "passing");
    bool passing = p && strcmp(p, "false") != 0 && strcmp(p, "0") != 0;
    serve_query(req, data, Q_HEALTH_SERVICE, fv_http_req_param(req, "name"), passing);
}

static void on_status_leader(fv_http_req_t *req, void *data)
{
    registry_server_t *s = data;
    json_t *j = json_string(s->leader);
    fv_http_reply_json(req, 200, j);
}

/* ---- PUTs ---- */

static void on_register(fv_http_req_t *req, void *data)
{
    registry_server_t *s = data;
    const registry_acl_token_t *tok;
    if (token_or_reply(req, s, &tok) < 0)
        return;
    if (!tok && s->acl.deny) {
        /* Before the body is even read: nothing about the catalog leaks to the anonymous. */
        reply_denied(req, tok, "service:write", "*");
        return;
    }
    fv_error_t err;
    json_t *body = fv_json_parse_object(fv_http_req_body(req), &err);
    if (!body) {
        fv_http_reply_error(req, &err);
        return;
    }
    registry_instance_t *inst = NULL;
    int rc = registry_instance_from_json(body, s->cat.default_deregister_after_ms, &inst, &err);
    json_decref(body);
    if (rc < 0) {
        fv_log_debug("registry", "register refused from %s: %s", fv_http_req_peer(req),
                     err.msg);
        fv_http_reply_error(req, &err);
        return;
    }
    const registry_instance_t *old = registry_catalog_find(&s->cat, inst->id);
    const char *denied_on = NULL;
    if (!registry_acl_can_write(&s->acl, tok, inst->name))
        denied_on = inst->name;
    else if (old && !may_modify(s, tok, old))
        denied_on = old->name;
    if (denied_on) {
        reply_denied(req, tok, "service:write", denied_on);
        registry_instance_free(inst);
        return;
    }
    inst->owned = tok != NULL;
    char *id = fv_strdup(inst->id);
    bool changed = false;
    rc = registry_catalog_register(&s->cat, inst, uv_now(s->loop), &changed);
    if (rc < 0) {
        fv_free(id);
        if (rc == FV_ETOOBIG) {
            registry_catalog_full_msg(&s->cat, &err);
            fv_log_info("registry", "register refused from %s: %s", fv_http_req_peer(req),
                        err.msg);
            fv_http_reply_error(req, &err);
            return;
        }
        fv_http_reply_errorf(req, rc, "register failed");
        return;
    }
    if (changed)
        fv_log_info("registry", "registered id=%s from %s", id, fv_http_req_peer(req));
    /* Also when unchanged: the TTL restarted, so the sweep may move later. */
    registry_server_changed(s);
    fv_free(id);
    fv_http_reply(req, 200, NULL, "", 0);
}

static void on_deregister(fv_http_req_t *req, void *data)
{
    registry_server_t *s = data;
    const char *id = fv_http_req_param(req, "id");
    const registry_acl_token_t *tok;
    if (token_or_reply(req, s, &tok) < 0)
        return;
    if (!tok && s->acl.deny) {
        reply_denied(req, tok, "service:write", "*");
        return;
    }
    const registry_instance_t *inst = id ? registry_catalog_find(&s->cat, id) : NULL;
    if (inst && !may_modify(s, tok, inst)) {
        reply_denied(req, tok, "service:write", inst->name);
        return;
    }
    if (!id || registry_catalog_deregister(&s->cat, id) < 0) {
        fv_http_reply_errorf(req, FV_ENOENT, "unknown service id \"%s\"", id ? id : "");
        return;
    }
    fv_log_info("registry", "deregistered id=%s", id);
    registry_server_changed(s);
    fv_http_reply(req, 200, NULL, "", 0);
}

static void check_update(fv_http_req_t *req, registry_server_t *s, registry_status_t status)
{
    const char *check_id = fv_http_req_param(req, "checkid");
    const char *note = fv_http_req_query_param(req, "note");
    const registry_acl_token_t *tok;
    if (token_or_reply(req, s, &tok) < 0)
        return;
    if (!tok && s->acl.deny) {
        reply_denied(req, tok, "service:write", "*");
        return;
    }
    if (check_id) {
        const char *id = strncmp(check_id, "service:", 8) == 0 ? check_id + 8 : check_id;
        const registry_instance_t *inst = registry_catalog_find(&s->cat, id);
        if (inst && !may_modify(s, tok, inst)) {
            reply_denied(req, tok, "service:write", inst->name);
            return;
        }
    }
    if (note && strlen(note) > 4096) {
        fv_http_reply_errorf(req, FV_EINVAL, "note must be at most 4096 bytes");
        return;
    }
    bool changed = false;
    int rc = check_id ? registry_catalog_check_update(&s->cat, check_id, status, note,
                                                      uv_now(s->loop), &changed)
                      : FV_ENOENT;
    if (rc == FV_EINVAL) {
        fv_http_reply_errorf(req, FV_EINVAL, "note must be valid UTF-8");
        return;
    }
    if (rc < 0) {
        fv_log_debug("registry", "heartbeat for unknown check id=%s from %s",
                     check_id ? check_id : "", fv_http_req_peer(req));
        fv_http_reply_errorf(req, FV_ENOENT, "unknown check ID \"%s\"",
                             check_id ? check_id : "");
        return;
    }
    registry_server_changed(s);
    fv_http_reply(req, 200, NULL, "", 0);
}

static void on_check_pass(fv_http_req_t *req, void *data)
{
    check_update(req, data, REGISTRY_PASSING);
}

static void on_check_warn(fv_http_req_t *req, void *data)
{
    check_update(req, data, REGISTRY_WARNING);
}

static void on_check_fail(fv_http_req_t *req, void *data)
{
    check_update(req, data, REGISTRY_CRITICAL);
}

int registry_http_routes(fv_router_t *r, registry_server_t *s)
{
    static const struct {
        const char *method;
        const char *pattern;
        fv_http_handler_cb fn;
    } routes[] = {
        {"PUT", "/v1/agent/service/register", on_register},
        {"PUT", "/v1/agent/service/deregister/:id", on_deregister},
        {"PUT", "/v1/agent/check/pass/:checkid", on_check_pass},
        {"PUT", "/v1/agent/check/warn/:checkid", on_check_warn},
        {"PUT", "/v1/agent/check/fail/:checkid", on_check_fail},
        {"GET", "/v1/agent/services", on_agent_services},
        {"GET", "/v1/catalog/services", on_catalog_services},
        {"GET", "/v1/catalog/service/:name", on_catalog_service},
        {"GET", "/v1/health/service/:name", on_health_service},
        {"GET", "/v1/status/leader", on_status_leader},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = fv_router_add(r, routes[i].method, routes[i].pattern, routes[i].fn, s);
        if (rc < 0)
            return rc;
    }
    return 0;
}
