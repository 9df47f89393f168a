/* routes.c - the gateway's pure pieces: the [gateway] routes string, path normalisation below
 * a route's prefix, and which X-Request-Id a client may choose. No sockets, no state. */
#include "services/api-gateway/gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool gw_request_id_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

/* "." and ".." as they may be sent: each dot also as %2e or %2E. 1 for ".", 2 for "..", else 0. */
static int dot_segment(const char *s, size_t len)
{
    int dots = 0;
    size_t i = 0;
    while (i < len) {
        if (s[i] == '.') {
            i++;
        } else if (len - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
                   (s[i + 2] == 'e' || s[i + 2] == 'E')) {
            i += 3;
        } else {
            return 0;
        }
        if (++dots > 2)
            return 0;
    }
    return dots;
}

int gw_path_normalise(const char *rest, size_t len, char *out, size_t cap, size_t *out_len)
{
    /* segment starts already written, to go back to on ".." */
    size_t marks[256];
    size_t depth = 0, n = 0;
    if (cap < 2)
        return FV_ETOOBIG;
    out[n++] = '/';
    size_t i = 0;
    bool trailing = false;
    while (i < len) {
        size_t start = i;
        while (i < len && rest[i] != '/')
            i++;
        size_t seg = i - start;
        bool last = i >= len;
        if (i < len)
            i++;                                    /* the '/' */
        trailing = !last || seg == 0;
        if (seg == 0)
            continue;                               /* "//" */
        /* a control byte (NUL above all) has no place in a path an upstream should read the
         * way we did; the HTTP parser refuses them, this refuses them for every other caller */
        for (size_t k = start; k < start + seg; k++)
            if ((unsigned char)rest[k] < 0x20 || rest[k] == 0x7f)
                return FV_EINVAL;
        /* an encoded '/' or '\\' would make segments the upstream sees and we did not */
        for (size_t k = start; k + 2 < start + seg; k++)
            if (rest[k] == '%' && ((rest[k + 1] == '2' && (rest[k + 2] | 0x20) == 'f') ||
                                   (rest[k + 1] == '5' && (rest[k + 2] | 0x20) == 'c')))
                return FV_EINVAL;
        int dots = dot_segment(rest + start, seg);
        if (dots)
            trailing = true;                        /* "a/." is "a/" */
        if (dots == 1)
            continue;
        if (dots == 2) {
            if (depth == 0)
                return FV_EINVAL;                   /* climbs above the prefix */
            n = marks[--depth];
            continue;
        }
        if (depth == sizeof(marks) / sizeof(marks[0]))
            return FV_ETOOBIG;
        marks[depth++] = n;
        if (n > 1) {
            if (n + 1 >= cap)
                return FV_ETOOBIG;
            out[n++] = '/';
        }
        if (n + seg >= cap)
            return FV_ETOOBIG;
        memcpy(out + n, rest + start, seg);
        n += seg;
        trailing = !last;
    }
    if (trailing && n > 1) {
        if (n + 1 >= cap)
            return FV_ETOOBIG;
        out[n++] = '/';
    }
    out[n] = '\0';
    *out_len = n;
    return 0;
}

static bool prefix_ok(const char *p, size_t len)
{
    if (len < 2 || len >= sizeof(((gw_route_t *)0)->prefix) || p[0] != '/' || p[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!isalnum(ch) && !strchr("/-_.~", ch))
            return false;
        if (ch == '/' && i + 1 < len && p[i + 1] == '/')
            return false;
    }
    return true;
}

static bool service_ok(const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(((gw_route_t *)0)->service))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return false;
    return true;
}

/* "key=N" with N a decimal in 1..max: the value, or 0. */
static uint64_t option_num(const char *opt, size_t len, const char *key, uint64_t max)
{
    size_t klen = strlen(key);
    if (len <= klen + 1 || strncmp(opt, key, klen) != 0 || opt[klen] != '=')
        return 0;
    uint64_t v = 0;
    for (size_t i = klen + 1; i < len; i++) {
        if (!isdigit((unsigned char)opt[i]))
            return 0;
        v = v * 10 + (uint64_t)(opt[i] - '0');
        if (v > max)
            return 0;
    }
    return v;
}

int gw_routes_parse(const char *spec, gw_route_t *out, size_t max, fv_error_t *err)
{
    size_t count = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len) {
            if (count == max)
                return fv_error_set(err, FV_EINVAL, "gateway.routes: more than %zu routes", max);
            gw_route_t *r = &out[count];
            memset(r, 0, sizeof(*r));
            const char *eq = memchr(p, '=', len);
            if (!eq || !prefix_ok(p, (size_t)(eq - p)))
                return fv_error_set(err, FV_EINVAL,
                                    "gateway.routes: '%.*s' is not <prefix>=<service>[,options] "
                                    "with a prefix like /assets", (int)len, p);
            memcpy(r->prefix, p, (size_t)(eq - p));
            const char *q = eq + 1, *stop = p + len;
            const char *comma = memchr(q, ',', (size_t)(stop - q));
            const char *svc_end = comma ? comma : stop;
            if (!service_ok(q, (size_t)(svc_end - q)))
                return fv_error_set(err, FV_EINVAL, "gateway.routes: bad service name in '%.*s'",
                                    (int)len, p);
            memcpy(r->service, q, (size_t)(svc_end - q));
            for (size_t k = 0; k < count; k++)
                if (strcmp(out[k].prefix, r->prefix) == 0)
                    return fv_error_set(err, FV_EINVAL, "gateway.routes: %s is listed twice",
                                        r->prefix);
            while (comma) {
                const char *opt = comma + 1;
                comma = memchr(opt, ',', (size_t)(stop - opt));
                size_t olen = (size_t)((comma ? comma : stop) - opt);
                uint64_t v;
                if (olen == 5 && strncmp(opt, "strip", 5) == 0)
                    r->strip = true;
                else if (olen == 13 && strncmp(opt, "authenticated", 13) == 0)
                    r->authenticated = true;
                else if (olen == 6 && strncmp(opt, "public", 6) == 0)
                    r->authenticated = false;
                else if ((v = option_num(opt, olen, "timeout_ms", 86400000)) > 0)
                    r->timeout_ms = (uint32_t)v;
                else if ((v = option_num(opt, olen, "max_body_bytes", 1ULL << 40)) > 0)
                    r->max_body_bytes = (size_t)v;
                else
                    return fv_error_set(err, FV_EINVAL,
                                        "gateway.routes: unknown option '%.*s' for %s (strip, "
                                        "public, authenticated, timeout_ms=N, max_body_bytes=N)",
                                        (int)olen, opt, r->prefix);
            }
            count++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return (int)count;
}
