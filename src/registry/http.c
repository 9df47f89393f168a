/* http.c - the registry's Consul-compatible routes and their ACL checks. Validation and
 * state live in catalog.c; this file turns requests into catalog calls and catalog views into
 * responses; GETs that carry ?index=N are held by wait.c until the data they watch moves on.
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
    if (n > 0)
        memcpy(out, v.ptr, n);   /* no token: the slice's pointer may be NULL */
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

static void serve_query(fv_http_req_t *req, registry_server_t *s, registry_query_t kind,
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
    registry_wait_query(s, req, kind, name, passing, client_index, wait_ms);
}

static void on_agent_services(fv_http_req_t *req, void *data)
{
    serve_query(req, data, REGISTRY_Q_AGENT_SERVICES, NULL, false);
}

static void on_catalog_services(fv_http_req_t *req, void *data)
{
    serve_query(req, data, REGISTRY_Q_CATALOG_SERVICES, NULL, false);
}

static void on_catalog_service(fv_http_req_t *req, void *data)
{
    serve_query(req, data, REGISTRY_Q_CATALOG_SERVICE, fv_http_req_param(req, "name"), false);
}

static void on_health_service(fv_http_req_t *req, void *data)
{
    /* Consul takes ?passing with no value; "false" and "0" are read as off too. */
    const char *p = fv_http_req_query_param(req, "passing");
    bool passing = p && strcmp(p, "false") != 0 && strcmp(p, "0") != 0;
    serve_query(req, data, REGISTRY_Q_HEALTH_SERVICE, fv_http_req_param(req, "name"), passing);
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
