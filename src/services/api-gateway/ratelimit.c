/* ratelimit.c - token buckets per client in the kv store (fv_kv_take): with the embedded kv
 * the limit holds in this process, with Redis across every gateway that shares it (one script
 * call a request, on the server's clock). Forwarded routes are limited per player when the
 * request carries a valid token, else per IP; /api/auth per IP (sign-ins are what an attacker
 * repeats). Answers carry RateLimit-Limit, -Remaining and -Reset (seconds until the bucket is
 * full), and a 429 Retry-After.
 *
 * A kv store that fails lets requests through (counted): the gateway must not stop serving
 * because the limiter's store is down. */
#include "services/api-gateway/gateway.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "store/kv.h"

typedef struct limit_call {
    gateway_t *gw;
    gw_limit_cb done;
    void *data;
    gw_limit_result_t res;
} limit_call_t;

/* The store's reply as the request's verdict. */
static void judge(gateway_t *gw, int status, const fv_kv_reply_t *reply, gw_limit_result_t *res)
{
    if (status == 0 && reply && reply->type == FV_KV_NIL) {
        res->revoked = true;            /* the request's token is revoked */
        res->allowed = false;
    } else if (status < 0 || !reply || reply->type != FV_KV_INT) {
        gw->limit_errors++;
        if (status != FV_ECANCELED)
            fv_log_debug("gateway", "rate limit: kv store: %s", fv_strerror(status));
        res->allowed = true;
    } else {
        int64_t v = reply->integer;
        res->known = true;
        res->allowed = v >= 0;
        res->left = res->allowed ? (uint64_t)v : 0;
        res->wait_ms = res->allowed ? 0 : (uint64_t)(-1 - v);
        if (!res->allowed)
            gw->limited++;
    }
}

static void on_taken(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    limit_call_t *c = data;
    judge(c->gw, status, reply, &c->res);
    c->done(c->data, &c->res);
    fv_free(c);
}

/* dst = prefix + the first max bytes of s (NUL-terminated; dst has room). */
static size_t join(char *dst, const char *prefix, size_t plen, const char *s, size_t max)
{
    memcpy(dst, prefix, plen);
    size_t n = strnlen(s, max);
    memcpy(dst + plen, s, n);
    dst[plen + n] = '\0';
    return plen + n;
}

#define LIT(s) s, sizeof(s) - 1

gw_limit_state_t gw_limit_take(gateway_t *gw, fv_http_req_t *req, gw_limit_class_t cls,
                               const char *who, const char *jti, gw_limit_result_t *now,
                               gw_limit_cb done, void *data)
{
    const gateway_settings_t *set = gw->set;
    uint32_t per_min = cls == GW_LIMIT_AUTH ? set->auth_rate_limit_per_minute
                                            : set->rate_limit_per_minute;
    uint32_t burst = cls == GW_LIMIT_AUTH ? set->auth_rate_limit_burst : set->rate_limit_burst;
    if (!gw->kv || (!per_min && !jti))
        return GW_LIMIT_GO;
    /* keys built by hand: this runs on every forwarded request */
    char key[160], unless[64];
    size_t key_len, unless_len = 0;
    if (jti)
        unless_len = join(unless, LIT(FV_TOKEN_REVOKED_PREFIX), jti, 40);
    if (who && cls == GW_LIMIT_API) {
        key_len = join(key, LIT("fv:rl:api:p:"), who, 64);
    } else {
        char ip[96];
        gw_peer_ip(req, ip, sizeof(ip));
        key_len = cls == GW_LIMIT_AUTH ? join(key, LIT("fv:rl:auth:ip:"), ip, sizeof(ip))
                                       : join(key, LIT("fv:rl:api:ip:"), ip, sizeof(ip));
    }
    gw_limit_result_t res = {0};
    if (per_min) {
        res.rate = per_min / 60.0;
        res.burst = burst ? burst : 1;
    } else {
        /* no limit, only a token to check for revocation: a bucket that never runs dry */
        res.rate = 1e9;
        res.burst = 1000000000;
        res.unlimited = true;
    }
    fv_slice_t k = fv_slice(key, key_len), u = fv_slice(unless, unless_len);
    fv_kv_reply_t reply;
    int rc = fv_kv_take_now(gw->kv, k, u, res.rate, (int64_t)res.burst, 1, &reply);
    if (rc != FV_EAGAIN) {
        judge(gw, rc, rc < 0 ? NULL : &reply, &res);
        *now = res;
        return GW_LIMIT_ANSWERED;
    }
    limit_call_t *c = fv_calloc(1, sizeof(*c));
    c->gw = gw;
    c->done = done;
    c->data = data;
    c->res = res;
    if (fv_kv_take(gw->kv, k, u, res.rate, (int64_t)res.burst, 1, on_taken, c) < 0) {
        gw->limit_errors++;
        fv_free(c);
        return GW_LIMIT_GO;
    }
    return GW_LIMIT_WAIT;
}

void gw_peer_ip(fv_http_req_t *req, char *out, size_t cap)
{
    const char *peer = fv_http_req_peer(req);
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (len >= 2 && peer[0] == '[' && peer[len - 1] == ']') {
        peer++;
        len -= 2;
    }
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), peer);
}

static void put_u64(fv_http_req_t *req, const char *name, uint64_t v)
{
    char num[24];
    num[fv_fmt_u64(num, v)] = '\0';
    fv_http_resp_header(req, name, num);
}

void gw_limit_headers(fv_http_req_t *req, const gw_limit_result_t *res)
{
    if (!res->known || res->unlimited)
        return;
    put_u64(req, "RateLimit-Limit", res->burst);
    put_u64(req, "RateLimit-Remaining", res->left);
    put_u64(req, "RateLimit-Reset",
            (uint64_t)ceil(((double)res->burst - (double)res->left) / res->rate));
    if (!res->allowed)
        put_u64(req, "Retry-After", (uint64_t)ceil((double)res->wait_ms / 1000.0));
}

void gw_limit_reply(fv_http_req_t *req)
{
    fv_http_reply_errorf(req, FV_ERATELIMIT, "too many requests: wait for Retry-After seconds");
}
