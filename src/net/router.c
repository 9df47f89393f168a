/* router.c - method + path routing: patterns split into literal, ":param" and final "*rest"
 * segments; the most specific pattern wins (literal before parameter before rest, compared
 * from the first segment on), 404 and 405 with an Allow list otherwise. A linear scan over the
 * routes: a module has tens of routes, and matching a segment is a memcmp. */
#include "net/router.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "net/http_internal.h"

#define MAX_SEGMENTS 32
#define MAX_PARAMS 16

enum { SEG_LITERAL = 0, SEG_PARAM = 1, SEG_REST = 2 };

typedef struct route_seg {
    int kind;
    char *text;                  /* literal text or parameter name */
    size_t len;
} route_seg_t;

typedef struct route {
    char *method;
    char *pattern;
    route_seg_t segs[MAX_SEGMENTS];
    size_t seg_count;
    size_t pattern_len;
    bool literal;                 /* every segment literal: matched by one compare */
    fv_http_handler_cb handler;
    void *data;
    size_t max_body;              /* with has_max_body: the route's own request body limit */
    bool has_max_body;
    bool stream_body;             /* the handler reads the body as it arrives */
} route_t;

typedef struct allow_str {
    struct allow_str *next;
    char text[];
} allow_str_t;

struct fv_router {
    route_t **routes;
    size_t count;
    size_t cap;
    /* Allow lists handed out by fv_router_match; kept until the router goes, so callers may
     * hold them. Few distinct lists exist, so the list stays short. */
    allow_str_t *allows;
};

fv_router_t *fv_router_new(void)
{
    return fv_calloc(1, sizeof(fv_router_t));
}

static void route_free(route_t *rt)
{
    for (size_t i = 0; i < rt->seg_count; i++)
        fv_free(rt->segs[i].text);
    fv_free(rt->method);
    fv_free(rt->pattern);
    fv_free(rt);
}

void fv_router_free(fv_router_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        route_free(r->routes[i]);
    fv_free(r->routes);
    while (r->allows) {
        allow_str_t *a = r->allows;
        r->allows = a->next;
        fv_free(a);
    }
    fv_free(r);
}

/* Splits "/a/b" into "a","b"; "/" is one empty segment, a trailing '/' an empty last one. */
static size_t split(fv_slice_t path, fv_slice_t *out, size_t max)
{
    size_t n = 0;
    size_t i = 1;
    for (;;) {
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/')
            i++;
        if (n == max)
            return max + 1;
        out[n++] = fv_slice(path.ptr + start, i - start);
        if (i >= path.len)
            break;
        i++;
    }
    return n;
}

static int parse_pattern(route_t *rt, const char *pattern)
{
    fv_slice_t p = fv_slice_cstr(pattern);
    if (p.len == 0 || p.ptr[0] != '/')
        return FV_EINVAL;
    fv_slice_t parts[MAX_SEGMENTS];
    size_t n = split(p, parts, MAX_SEGMENTS);
    if (n > MAX_SEGMENTS)
        return FV_EINVAL;
    size_t params = 0;
    for (size_t i = 0; i < n; i++) {
        fv_slice_t s = parts[i];
        route_seg_t *seg = &rt->segs[i];
        if (s.len == 0 && i + 1 < n)
            return FV_EINVAL;                  /* "//" */
        if (s.len && s.ptr[0] == ':') {
            if (s.len == 1 || memchr(s.ptr + 1, ':', s.len - 1) || memchr(s.ptr, '*', s.len))
                return FV_EINVAL;
            seg->kind = SEG_PARAM;
            seg->text = fv_strndup(s.ptr + 1, s.len - 1);
            seg->len = s.len - 1;
            params++;
        } else if (s.len && s.ptr[0] == '*') {
            if (i + 1 != n || memchr(s.ptr + 1, ':', s.len - 1) ||
                memchr(s.ptr + 1, '*', s.len - 1))
                return FV_EINVAL;
            seg->kind = SEG_REST;
            seg->text = fv_strndup(s.ptr + 1, s.len - 1);
            seg->len = s.len - 1;
            params++;
        } else {
            if (memchr(s.ptr, ':', s.len) || memchr(s.ptr, '*', s.len) ||
                memchr(s.ptr, '?', s.len))
                return FV_EINVAL;
            seg->kind = SEG_LITERAL;
            seg->text = fv_strndup(s.ptr, s.len);
            seg->len = s.len;
        }
        rt->seg_count = i + 1;
    }
    if (params > MAX_PARAMS)
        return FV_EINVAL;
    /* the same parameter name twice would make one value unreachable */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (rt->segs[i].kind != SEG_LITERAL && rt->segs[j].kind != SEG_LITERAL &&
                rt->segs[i].len == rt->segs[j].len && rt->segs[i].len &&
                memcmp(rt->segs[i].text, rt->segs[j].text, rt->segs[i].len) == 0)
                return FV_EINVAL;
    return 0;
}

static bool valid_method(const char *m)
{
    if (strcmp(m, "*") == 0)
        return true;
    if (!*m)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

int fv_router_add(fv_router_t *r, const char *method, const char *pattern,
                  fv_http_handler_cb handler, void *data)
{
    if (!r || !method || !pattern || !handler || !valid_method(method))
        return FV_EINVAL;
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->routes[i]->method, method) == 0 &&
            strcmp(r->routes[i]->pattern, pattern) == 0)
            return FV_EEXIST;
    route_t *rt = fv_calloc(1, sizeof(*rt));
    int rc = parse_pattern(rt, pattern);
    if (rc < 0) {
        route_free(rt);
        return rc;
    }
    rt->method = fv_strdup(method);
    rt->pattern = fv_strdup(pattern);
    rt->pattern_len = strlen(pattern);
    rt->literal = true;
    for (size_t i = 0; i < rt->seg_count; i++)
        if (rt->segs[i].kind != SEG_LITERAL)
            rt->literal = false;
    rt->handler = handler;
    rt->data = data;
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = fv_realloc(r->routes, r->cap * sizeof(*r->routes));
    }
    r->routes[r->count++] = rt;
    return 0;
}

/* Whether rt matches the path segments; fills params when given. */
static bool route_matches(const route_t *rt, fv_slice_t path, const fv_slice_t *segs,
                          size_t n, fv_route_param_t *params, size_t max_params,
                          size_t *param_count)
{
    size_t pc = 0;
    for (size_t i = 0; i < rt->seg_count; i++) {
        const route_seg_t *s = &rt->segs[i];
        if (s->kind == SEG_REST) {
            fv_slice_t rest = i < n ? fv_slice(segs[i].ptr, (size_t)(path.ptr + path.len -
                                                                      segs[i].ptr))
                                    : fv_slice("", 0);
            if (params && pc < max_params)
                params[pc] = (fv_route_param_t){s->text, rest, true};
            pc++;
            if (param_count)
                *param_count = pc < max_params ? pc : max_params;
            return true;
        }
        if (i >= n)
            return false;
        if (s->kind == SEG_LITERAL) {
            if (segs[i].len != s->len || memcmp(segs[i].ptr, s->text, s->len) != 0)
                return false;
        } else {
            if (segs[i].len == 0)
                return false;
            if (params && pc < max_params)
                params[pc] = (fv_route_param_t){s->text, segs[i], false};
            pc++;
        }
    }
    if (rt->seg_count != n)
        return false;
    if (param_count)
        *param_count = pc < max_params ? pc : max_params;
    return true;
}

/* <0 when a is more specific than b. */
static int specificity_cmp(const route_t *a, const route_t *b)
{
    size_t n = a->seg_count < b->seg_count ? a->seg_count : b->seg_count;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return a->segs[i].kind - b->segs[i].kind;
    return (int)b->seg_count - (int)a->seg_count;
}

static bool method_fits(const route_t *rt, fv_slice_t method)
{
    return (rt->method[0] == '*' && rt->method[1] == '\0') || fv_slice_eq_cstr(method, rt->method);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *allow_list(fv_router_t *r, const char **methods, size_t n)
{
    qsort(methods, n, sizeof(*methods), cmp_str);
    char text[512];
    size_t len = 0;
    text[0] = '\0';
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (prev && strcmp(prev, methods[i]) == 0)
            continue;
        size_t ml = strlen(methods[i]);
        if (len + ml + 3 >= sizeof(text))
            break;
        if (len) {
            memcpy(text + len, ", ", 2);
            len += 2;
        }
        memcpy(text + len, methods[i], ml);
        len += ml;
        text[len] = '\0';
        prev = methods[i];
    }
    for (allow_str_t *a = r->allows; a; a = a->next)
        if (strcmp(a->text, text) == 0)
            return a->text;
    allow_str_t *a = fv_malloc(sizeof(*a) + len + 1);
    memcpy(a->text, text, len + 1);
    a->next = r->allows;
    r->allows = a;
    return a->text;
}

/* The route for method and path (*found), its params, or the Allow list: fv_router_match's
 * answers, with the route itself for the callers in this file. */
static int router_find(const fv_router_t *r, fv_slice_t method, fv_slice_t path,
                       const route_t **found, fv_route_param_t *params, size_t max_params,
                       size_t *param_count, const char **allow)
{
    if (param_count)
        *param_count = 0;
    if (path.len == 0 || path.ptr[0] != '/')
        return FV_ENOENT;
    /* Fast path: a route made only of literals whose pattern is the path itself, and that fits
     * the method, is as specific as a match can be, and the first such route wins in the full
     * search below too. Operator endpoints (/health, /metrics) are all served from here. */
    for (size_t i = 0; i < r->count; i++) {
        const route_t *rt = r->routes[i];
        if (rt->literal && rt->pattern_len == path.len &&
            memcmp(rt->pattern, path.ptr, path.len) == 0 && method_fits(rt, method)) {
            *found = rt;
            return 0;
        }
    }

    fv_slice_t segs[MAX_SEGMENTS];
    size_t n = split(path, segs, MAX_SEGMENTS);
    if (n > MAX_SEGMENTS)
        return FV_ENOENT;

    const route_t *best = NULL;
    bool any_path = false;
    for (int pass = 0; pass < 2 && !best; pass++) {
        /* pass 1: HEAD falls back to GET routes when nothing serves HEAD itself */
        fv_slice_t m = method;
        if (pass == 1) {
            if (!fv_slice_eq_cstr(method, "HEAD"))
                break;
            m = FV_SLICE_LIT("GET");
        }
        for (size_t i = 0; i < r->count; i++) {
            const route_t *rt = r->routes[i];
            if (!route_matches(rt, path, segs, n, NULL, 0, NULL))
                continue;
            any_path = true;
            if (!method_fits(rt, m))
                continue;
            if (!best || specificity_cmp(rt, best) < 0)
                best = rt;
        }
    }
    if (best) {
        route_matches(best, path, segs, n, params, max_params, param_count);
        *found = best;
        return 0;
    }
    if (!any_path)
        return FV_ENOENT;
    const char *methods[64];
    size_t mc = 0;
    bool has_get = false;
    for (size_t i = 0; i < r->count && mc < 63; i++) {
        const route_t *rt = r->routes[i];
        if (!route_matches(rt, path, segs, n, NULL, 0, NULL))
            continue;
        methods[mc++] = rt->method;
        if (strcmp(rt->method, "GET") == 0)
            has_get = true;
    }
    if (has_get)
        methods[mc++] = "HEAD";
    if (allow) {
        /* the cache of Allow strings is the one thing a lookup changes; it is not visible */
        *allow = allow_list((fv_router_t *)r, methods, mc);
    }
    return FV_ENOTALLOWED;
}

int fv_router_match(const fv_router_t *r, fv_slice_t method, fv_slice_t path,
                    fv_http_handler_cb *handler, void **data, const char **route,
                    fv_route_param_t *params, size_t max_params, size_t *param_count,
                    const char **allow)
{
    const route_t *rt = NULL;
    int rc = router_find(r, method, path, &rt, params, max_params, param_count, allow);
    if (rc == 0) {
        if (handler)
            *handler = rt->handler;
        if (data)
            *data = rt->data;
        if (route)
            *route = rt->pattern;
    }
    return rc;
}

static int add_with_body(fv_router_t *r, const char *method, const char *pattern,
                         fv_http_handler_cb handler, void *data, size_t max_body_bytes,
                         bool stream)
{
    int rc = fv_router_add(r, method, pattern, handler, data);
    if (rc < 0)
        return rc;
    route_t *rt = r->routes[r->count - 1];
    rt->max_body = max_body_bytes;
    rt->has_max_body = true;
    rt->stream_body = stream;
    return 0;
}

int fv_router_add_limited(fv_router_t *r, const char *method, const char *pattern,
                          fv_http_handler_cb handler, void *data, size_t max_body_bytes)
{
    return add_with_body(r, method, pattern, handler, data, max_body_bytes, false);
}

int fv_router_add_streaming(fv_router_t *r, const char *method, const char *pattern,
                            fv_http_handler_cb handler, void *data, size_t max_body_bytes)
{
    return add_with_body(r, method, pattern, handler, data, max_body_bytes, true);
}

void fv_router_body_policy(const fv_http_req_t *req, void *router, fv_http_body_policy_t *pol)
{
    const route_t *rt = NULL;
    if (router_find(router, fv_http_req_method(req), fv_http_req_path(req), &rt, NULL, 0, NULL,
                    NULL) < 0 || !rt->has_max_body)
        return;   /* no route: the 404/405 comes after the body, within the default */
    pol->max_bytes = rt->max_body;
    pol->stream = rt->stream_body;
}

void fv_router_dispatch(fv_http_req_t *req, void *router)
{
    const fv_router_t *r = router;
    fv_http_handler_cb handler = NULL;
    void *data = NULL;
    const char *route = NULL;
    const char *allow = NULL;
    fv_route_param_t params[MAX_PARAMS];
    size_t pc = 0;
    int rc = fv_router_match(r, fv_http_req_method(req), fv_http_req_path(req), &handler, &data,
                             &route, params, MAX_PARAMS, &pc, &allow);
    if (rc == FV_ENOENT) {
        fv_http_reply_errorf(req, FV_ENOENT, "no route for %.*s",
                             (int)(fv_http_req_path(req).len > 200 ? 200
                                                                   : fv_http_req_path(req).len),
                             fv_http_req_path(req).ptr);
        return;
    }
    if (rc == FV_ENOTALLOWED) {
        fv_http_resp_header(req, "Allow", allow);
        fv_http_reply_errorf(req, FV_ENOTALLOWED, "method %.*s not allowed",
                             (int)fv_http_req_method(req).len, fv_http_req_method(req).ptr);
        return;
    }
    fv_arena_t *a = fv_http_req_arena(req);
    for (size_t i = 0; i < pc; i++) {
        if (params[i].rest) {
            fv_http_req_set_param(req, params[i].name, fv_arena_slice_dup(a, params[i].value));
            continue;
        }
        size_t n;
        char *v = fv__http_decode(a, params[i].value.ptr, params[i].value.len, false, &n);
        if (memchr(v, '\0', n)) {
            fv_http_reply_errorf(req, FV_EINVAL, "path parameter '%s' holds a NUL (%%00)",
                                 params[i].name);
            return;
        }
        fv_http_req_set_param(req, params[i].name, v);
    }
    fv_http_req_set_route(req, route);
    handler(req, data);
}
