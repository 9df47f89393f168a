/* http_req.c - read access to a parsed request (method, path, headers, query parameters) and
 * the per-request extras the router sets (params, route). Parsing lives in http_conn.c. */
#include "net/http_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

fv_slice_t fv_http_req_method(const fv_http_req_t *req) { return req->method; }
fv_slice_t fv_http_req_path(const fv_http_req_t *req) { return req->path; }
fv_slice_t fv_http_req_query(const fv_http_req_t *req) { return req->query; }
fv_slice_t fv_http_req_target(const fv_http_req_t *req) { return req->target; }
fv_slice_t fv_http_req_body(const fv_http_req_t *req) { return req->body; }
uint64_t fv_http_req_id(const fv_http_req_t *req) { return req->id; }
fv_arena_t *fv_http_req_arena(fv_http_req_t *req) { return &req->arena; }
int fv_http_req_minor(const fv_http_req_t *req) { return req->minor; }
size_t fv_http_req_header_count(const fv_http_req_t *req) { return req->header_count; }

uv_loop_t *fv_http_req_loop(const fv_http_req_t *req)
{
    return req->loop;
}

fv_slice_t fv_http_req_header(const fv_http_req_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const fv__http_header_t *h = &req->headers[i];
        if (h->name.len == n && strncasecmp(h->name.ptr, name, n) == 0)
            return h->value;
    }
    return FV_SLICE_NULL;
}

void fv_http_req_header_at(const fv_http_req_t *req, size_t i, fv_slice_t *name,
                           fv_slice_t *value)
{
    if (i >= req->header_count) {
        *name = FV_SLICE_NULL;
        *value = FV_SLICE_NULL;
        return;
    }
    *name = req->headers[i].name;
    *value = req->headers[i].value;
}

const char *fv_http_req_peer(const fv_http_req_t *req)
{
    return req->conn ? fv_sock_peer(req->conn->sock) : "-";
}

bool fv_http_req_is_upgrade(const fv_http_req_t *req)
{
    return req->upgrade;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decoding (with '+' as space in form encoding, query strings); a broken escape is kept
 * as it is. */
char *fv__http_decode(fv_arena_t *a, const char *s, size_t len, bool plus_is_space,
                      size_t *out_len)
{
    char *out = fv_arena_alloc(a, len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' && plus_is_space) {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len &&
                   hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

const char *fv_http_req_query_param(fv_http_req_t *req, const char *name)
{
    const char *q = req->query.ptr;
    size_t qlen = req->query.len;
    size_t i = 0;
    while (i < qlen) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        char *key = fv__http_decode(&req->arena, q + i, eq - i, true, NULL);
        if (strcmp(key, name) == 0)
            return eq < end ? fv__http_decode(&req->arena, q + eq + 1, end - eq - 1, true, NULL)
                            : "";
        i = end + 1;
    }
    return NULL;
}

void fv_http_req_set_param(fv_http_req_t *req, const char *name, const char *value)
{
    for (size_t i = 0; i < req->param_count; i++) {
        if (strcmp(req->params[i].name, name) == 0) {
            req->params[i].value = fv_arena_strndup(&req->arena, value, strlen(value));
            return;
        }
    }
    if (req->param_count == req->param_cap) {
        size_t cap = req->param_cap ? req->param_cap * 2 : 4;
        fv__http_param_t *p = fv_arena_alloc(&req->arena, cap * sizeof(*p));
        if (req->param_count)
            memcpy(p, req->params, req->param_count * sizeof(*p));
        req->params = p;
        req->param_cap = cap;
    }
    req->params[req->param_count].name = fv_arena_strndup(&req->arena, name, strlen(name));
    req->params[req->param_count].value = fv_arena_strndup(&req->arena, value, strlen(value));
    req->param_count++;
}

const char *fv_http_req_param(const fv_http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->param_count; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

void fv_http_req_set_route(fv_http_req_t *req, const char *route) { req->route = route; }
const char *fv_http_req_route(const fv_http_req_t *req) { return req->route; }

void fv_http_req_on_abort(fv_http_req_t *req, fv_http_req_abort_cb cb, void *data)
{
    req->abort_cb = cb;
    req->abort_data = data;
}
