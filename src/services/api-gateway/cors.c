/* cors.c - the gateway's CORS policy (Fetch standard, "CORS protocol"), from [gateway]
 * cors_origins, cors_methods, cors_headers, cors_expose_headers, cors_credentials and
 * cors_max_age_s. With no origins configured the gateway sends no CORS headers at all (and a
 * browser on another origin gets nothing it may read).
 *
 * An allowed origin is echoed back (never "*": with credentials the standard forbids it, and
 * echoing is as good without), with Vary: Origin on every answer, allowed or not, so a cache
 * never hands one origin's answer to another. A preflight whose origin, method or any
 * requested header is not allowed gets 403 and no Access-Control-Allow-* header. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

bool gw_cors_list_has(const char *list, fv_slice_t item, bool nocase)
{
    size_t pos = 0;
    fv_slice_t e;
    fv_slice_t all = fv_slice_cstr(list);
    while (fv_slice_list_next(all, &pos, &e)) {
        if (!nocase && e.len == 1 && e.ptr[0] == '*')
            return true;
        if (item.len && (nocase ? fv_slice_caseeq(e, item) : fv_slice_eq(e, item)))
            return true;
    }
    return false;
}

bool gw_cors_policy_set(const gateway_t *gw)
{
    return gw->set->cors_origins && gw->set->cors_origins[0];
}

/* The request's Origin when the policy allows it, as a NUL-terminated copy in out. */
static bool origin_allowed(gateway_t *gw, fv_http_req_t *req, char *out, size_t cap)
{
    fv_slice_t o = fv_http_req_header(req, "origin");
    if (!o.len || o.len >= cap || !gw_cors_list_has(gw->set->cors_origins, o, false))
        return false;
    /* an origin is scheme://host[:port]: no controls, no separators that could split a
     * header (the HTTP parser refuses CR and LF already) */
    for (size_t i = 0; i < o.len; i++)
        if ((unsigned char)o.ptr[i] <= ' ' || o.ptr[i] == ',' || o.ptr[i] == 0x7f)
            return false;
    memcpy(out, o.ptr, o.len);
    out[o.len] = '\0';
    return true;
}

void gw_cors_headers(gateway_t *gw, fv_http_req_t *req)
{
    if (!gw_cors_policy_set(gw))
        return;
    fv_http_resp_header(req, "Vary", "Origin");
    char origin[256];
    if (!origin_allowed(gw, req, origin, sizeof(origin)))
        return;
    fv_http_resp_header(req, "Access-Control-Allow-Origin", origin);
    if (gw->set->cors_credentials)
        fv_http_resp_header(req, "Access-Control-Allow-Credentials", "true");
    if (gw->set->cors_expose_headers && gw->set->cors_expose_headers[0])
        fv_http_resp_header(req, "Access-Control-Expose-Headers", gw->set->cors_expose_headers);
}

bool gw_cors_headers_allowed(const char *allowed, fv_slice_t asked)
{
    size_t pos = 0;
    fv_slice_t name;
    while (fv_slice_list_next(asked, &pos, &name))
        if (!gw_cors_list_has(allowed, name, true))
            return false;
    return true;
}

bool gw_cors_preflight(gateway_t *gw, fv_http_req_t *req)
{
    if (!fv_slice_eq_cstr(fv_http_req_method(req), "OPTIONS"))
        return false;
    fv_slice_t method = fv_http_req_header(req, "access-control-request-method");
    if (!method.len || !fv_http_req_header(req, "origin").len)
        return false;                       /* a plain OPTIONS: forwarded as any request */
    if (!gw_cors_policy_set(gw)) {
        gw->cors_refused++;
        fv_http_reply_errorf(req, FV_EFORBIDDEN, "cross-origin requests are not allowed here");
        return true;
    }
    fv_http_resp_header(req, "Vary", "Origin");
    char origin[256];
    fv_slice_t asked = fv_http_req_header(req, "access-control-request-headers");
    const char *why = NULL;
    if (!origin_allowed(gw, req, origin, sizeof(origin)))
        why = "this origin is not allowed";
    else if (!gw_cors_list_has(gw->set->cors_methods, method, true))
        why = "this method is not allowed across origins";
    else if (asked.len && !gw_cors_headers_allowed(gw->set->cors_headers, asked))
        why = "a requested header is not allowed across origins";
    if (why) {
        gw->cors_refused++;
        fv_http_reply_errorf(req, FV_EFORBIDDEN, "%s", why);
        return true;
    }
    char age[16];
    snprintf(age, sizeof(age), "%u", gw->set->cors_max_age_s);
    fv_http_resp_header(req, "Access-Control-Allow-Origin", origin);
    fv_http_resp_header(req, "Access-Control-Allow-Methods", gw->set->cors_methods);
    if (gw->set->cors_headers[0])
        fv_http_resp_header(req, "Access-Control-Allow-Headers", gw->set->cors_headers);
    fv_http_resp_header(req, "Access-Control-Max-Age", age);
    if (gw->set->cors_credentials)
        fv_http_resp_header(req, "Access-Control-Allow-Credentials", "true");
    fv_http_reply(req, 204, NULL, NULL, 0);
    return true;
}
