/* lockout.c - failed logins counted per account and per IP in the kv store (shared by every
 * gateway on one Redis), each counter living [auth] lockout_window_ms from its first failure.
 * While an account has lockout_failures failures, or an IP lockout_ip_failures, a login is
 * answered 429 with Retry-After before any password is hashed. A name that does not exist
 * counts like one that does, so the lockout says nothing about which names exist; a success
 * clears the account's counter (not the IP's: one right password must not launder a
 * thousand wrong ones). */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "store/kv.h"

typedef struct lock_check {
    gateway_t *gw;
    gw_lockout_cb done;
    void *data;
    char acct[96];
    char ip[96];
    bool second;                  /* the IP's counter is being read */
    int64_t acct_count;
} lock_check_t;

static void keys(const char *name_key, const char *ip, char *acct, char *ipk)
{
    if (name_key && name_key[0])
        snprintf(acct, 96, "fv:lock:a:%.64s", name_key);
    else
        acct[0] = '\0';
    snprintf(ipk, 96, "fv:lock:i:%.64s", ip);
}

static int64_t count_of(int status, const fv_kv_reply_t *reply)
{
    if (status < 0 || !reply || reply->type != FV_KV_STR || reply->str.len > 19)
        return 0;                 /* a store that fails locks nobody out */
    int64_t v = 0;
    for (size_t i = 0; i < reply->str.len; i++) {
        char ch = reply->str.ptr[i];
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (ch - '0');
    }
    return v;
}

static void on_count(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    lock_check_t *c = data;
    const fv_config_t *cfg = c->gw->cfg;
    int64_t n = count_of(status, reply);
    if (!c->second) {
        c->acct_count = n;
        c->second = true;
        if (fv_kv_get(kv, fv_slice_cstr(c->ip), on_count, c) == 0)
            return;
        n = 0;
    }
    bool locked = (c->acct[0] && c->acct_count >= cfg->auth.lockout_failures) ||
                  n >= cfg->auth.lockout_ip_failures;
    c->done(c->data, locked, (cfg->auth.lockout_window_ms + 999) / 1000);
    fv_free(c);
}

bool gw_lockout_check(gateway_t *gw, const char *name_key, const char *ip, gw_lockout_cb done,
                      void *data)
{
    if (!gw->kv || !gw->cfg->auth.lockout_failures)
        return false;
    lock_check_t *c = fv_calloc(1, sizeof(*c));
    c->gw = gw;
    c->done = done;
    c->data = data;
    keys(name_key, ip, c->acct, c->ip);
    c->second = !c->acct[0];
    if (fv_kv_get(gw->kv, fv_slice_cstr(c->acct[0] ? c->acct : c->ip), on_count, c) < 0) {
        fv_free(c);
        return false;
    }
    return true;
}

static void on_done(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    (void)status;
    (void)reply;
    (void)data;
}

typedef struct incr_call {
    char key[96];
} incr_call_t;

static void on_counted(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    (void)status;
    (void)reply;
    fv_free(data);
}

/* The counter is made with its window first (SET NX with a TTL), then incremented (INCRBY
 * keeps the TTL): a counter never lives without one, so nobody is locked out for good. */
static void on_made(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)status;
    (void)reply;
    incr_call_t *ic = data;
    if (fv_kv_incrby(kv, fv_slice_cstr(ic->key), 1, on_counted, ic) < 0)
        fv_free(ic);
}

static void count_failure(gateway_t *gw, const char *key)
{
    incr_call_t *ic = fv_calloc(1, sizeof(*ic));
    snprintf(ic->key, sizeof(ic->key), "%s", key);
    if (fv_kv_set(gw->kv, fv_slice_cstr(ic->key), FV_SLICE_LIT("0"),
                  gw->cfg->auth.lockout_window_ms, FV_KV_NX, on_made, ic) < 0)
        fv_free(ic);
}

void gw_lockout_failed(gateway_t *gw, const char *name_key, const char *ip)
{
    if (!gw->kv || !gw->cfg->auth.lockout_failures)
        return;
    char acct[96], ipk[96];
    keys(name_key, ip, acct, ipk);
    if (acct[0])
        count_failure(gw, acct);
    count_failure(gw, ipk);
}

void gw_lockout_cleared(gateway_t *gw, const char *name_key)
{
    if (!gw->kv || !name_key || !name_key[0])
        return;
    char acct[96], ipk[96];
    keys(name_key, "", acct, ipk);
    if (fv_kv_del(gw->kv, fv_slice_cstr(acct), on_done, NULL) < 0)
        return;                   /* the counter expires on its own */
}
