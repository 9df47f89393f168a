/* sessions.c - refresh tokens and logout, in the kv store so that they hold across gateways.
 *
 * A sign-in (login, guest) starts a family: its refresh token is "<family>.<secret>" (16 and
 * 32 hex digits), stored under the hash of the whole token (a dump of the store reveals no
 * usable token) with the player it stands for, for [auth] refresh_ttl_ms. POST
 * /api/auth/refresh spends it: marked used (compare-and-set, so two racing refreshes cannot
 * both win) and replaced by a new one of the same family, with a new access token. A used
 * token presented again means it was copied: the whole family is revoked, the thief's and the
 * owner's tokens alike (OAuth's refresh token rotation with reuse detection).
 *
 * POST /api/auth/logout (with the access token) revokes that access token until it would have
 * expired (the gateway refuses it on forwarded requests: ratelimit.c checks the mark in the same
 * step as the rate limit) and, given the refresh token, its family. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "store/kv.h"

#define FAMILY_HEX 16
#define SECRET_HEX 32
#define REFRESH_LEN (FAMILY_HEX + 1 + SECRET_HEX)
#define RECORD_MAX 256

typedef enum step {
    STEP_ISSUE,                   /* storing a new refresh token */
    STEP_LOOKUP,                  /* refresh: reading the presented token's record */
    STEP_FAMILY,                  /* refresh: is the family revoked? */
    STEP_SPEND,                   /* refresh: marking the token used */
    STEP_REVOKE,                  /* reuse found: revoking the family */
    STEP_LOGOUT_ACCESS,           /* logout: marking the access token revoked */
    STEP_LOGOUT_LOOKUP,           /* logout: the refresh token's family */
    STEP_LOGOUT_FAMILY,           /* logout: revoking it */
} step_t;

struct gw_session_call {
    gateway_t *gw;
    fv_http_req_t *req;           /* NULL once the client went away (refresh, logout) */
    step_t step;
    gw_session_cb done;           /* issue */
    void *data;
    char family[FAMILY_HEX + 1];
    char player[FV_TOKEN_ID_MAX];
    char name[FV_TOKEN_NAME_MAX];
    bool guest;
    char token[REFRESH_LEN + 1];
    char key[80];
    char record[RECORD_MAX];
    size_t record_len;
};
typedef struct gw_session_call call_t;

static void on_kv(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data);

static call_t *call_new(gateway_t *gw, fv_http_req_t *req, step_t step);

static void on_abort(fv_http_req_t *req, void *data)
{
    (void)req;
    ((call_t *)data)->req = NULL;
}

static call_t *call_new(gateway_t *gw, fv_http_req_t *req, step_t step)
{
    call_t *c = fv_calloc(1, sizeof(*c));
    c->gw = gw;
    c->req = req;
    c->step = step;
    gw->in_flight++;
    if (req)
        fv_http_req_on_abort(req, on_abort, c);
    return c;
}

static void call_free(call_t *c)
{
    gateway_t *gw = c->gw;
    if (c->req)
        fv_http_req_on_abort(c->req, NULL, NULL);
    sodium_memzero(c->token, sizeof(c->token));
    fv_free(c);
    gw->in_flight--;
    gateway_release(gw);
}

static void reply_error(call_t *c, int code, const char *msg)
{
    if (c->req) {
        fv_http_req_on_abort(c->req, NULL, NULL);
        if (code == FV_EUNAUTH)
            fv_http_resp_header(c->req, "WWW-Authenticate", "Bearer");
        fv_http_reply_errorf(c->req, code, "%s", msg);
        c->req = NULL;
    }
    call_free(c);
}

/* fv:rt:<blake2b-256 of the token, hex> */
static void token_key(const char *token, char *out, size_t cap)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, cap, "fv:rt:%s", hex);
}

static void family_key(const char *family, char *out, size_t cap)
{
    snprintf(out, cap, "fv:rtf:%s", family);
}

/* "<family>\t<player>\t<guest>\t<used>\t<name>" */
static size_t record_make(const call_t *c, bool used, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s\t%s\t%d\t%d\t%s", c->family, c->player, c->guest ? 1 : 0,
                     used ? 1 : 0, c->name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static bool record_parse(call_t *c, const char *s, size_t len, bool *used)
{
    char buf[RECORD_MAX];
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *f[5];
    char *p = buf;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        char *tab = i < 4 ? strchr(p, '\t') : NULL;
        if (i < 4 && !tab)
            return false;
        if (tab) {
            *tab = '\0';
            p = tab + 1;
        }
    }
    if (strlen(f[0]) != FAMILY_HEX || !f[1][0] || strlen(f[1]) >= sizeof(c->player) ||
        strlen(f[4]) >= sizeof(c->name))
        return false;
    memcpy(c->family, f[0], FAMILY_HEX + 1);
    snprintf(c->player, sizeof(c->player), "%s", f[1]);
    c->guest = f[2][0] == '1';
    *used = f[3][0] == '1';
    snprintf(c->name, sizeof(c->name), "%s", f[4]);
    return true;
}

/* ---- issuing ---- */

static int store_new_token(call_t *c)
{
    if (!c->family[0])
        fv_id_random_hex(c->family, FAMILY_HEX / 2);
    char secret[SECRET_HEX + 1];
    fv_id_random_hex(secret, SECRET_HEX / 2);
    snprintf(c->token, sizeof(c->token), "%s.%s", c->family, secret);
    sodium_memzero(secret, sizeof(secret));
    token_key(c->token, c->key, sizeof(c->key));
    c->record_len = record_make(c, false, c->record, sizeof(c->record));
    if (!c->record_len)
        return FV_EINVAL;
    c->step = STEP_ISSUE;
    return fv_kv_set(c->gw->kv, fv_slice_cstr(c->key), fv_slice(c->record, c->record_len),
                     c->gw->cfg->auth.refresh_ttl_ms, FV_KV_NX, on_kv, c);
}

void gw_session_issue(gateway_t *gw, const char *player, const char *name, bool guest,
                      gw_session_cb done, void *data)
{
    call_t *c = call_new(gw, NULL, STEP_ISSUE);
    c->done = done;
    c->data = data;
    snprintf(c->player, sizeof(c->player), "%s", player);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->guest = guest;
    if (!gw->kv || store_new_token(c) < 0) {
        done(data, FV_EBACKEND, NULL);
        call_free(c);
    }
}

/* ---- refresh ---- */

/* The refresh's answer: a new access token and the new refresh token, for the same player. */
static void reply_refreshed(call_t *c)
{
    const fv_config_t *cfg = c->gw->cfg;
    fv_token_claims_t claims = {.guest = c->guest};
    snprintf(claims.sub, sizeof(claims.sub), "%s", c->player);
    snprintf(claims.name, sizeof(claims.name), "%s", c->name);
    uint32_t ttl_s = cfg->auth.access_ttl_ms / 1000;
    claims.iat = (int64_t)(fv_wall_ms() / 1000);
    claims.exp = claims.iat + ttl_s;
    char *access = NULL;
    if (fv_token_issue(cfg->auth.jwt_secret, &claims, &access) < 0) {
        reply_error(c, FV_EINTERNAL, "cannot issue a token");
        return;
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:{s:s,s:s,s:b}}", "access_token", access,
                          "refresh_token", c->token, "token_type", "Bearer", "expires_in",
                          (json_int_t)ttl_s, "refresh_expires_in",
                          (json_int_t)(cfg->auth.refresh_ttl_ms / 1000), "player", "id",
                          c->player, "name", c->name, "guest", c->guest);
    sodium_memzero(access, strlen(access));
    fv_free(access);
    if (c->req) {
        fv_http_req_on_abort(c->req, NULL, NULL);
        if (j)
            fv_http_reply_json(c->req, 200, j);
        else
            fv_http_reply_errorf(c->req, FV_ENOMEM, "out of memory");
        c->req = NULL;
    } else {
        json_decref(j);
    }
    call_free(c);
}

static void revoke_family(call_t *c, step_t step)
{
    char fk[40];
    family_key(c->family, fk, sizeof(fk));
    c->step = step;
    if (fv_kv_set(c->gw->kv, fv_slice_cstr(fk), FV_SLICE_LIT("revoked"),
                  c->gw->cfg->auth.refresh_ttl_ms, 0, on_kv, c) < 0)
        reply_error(c, FV_EBACKEND, "the session store is unavailable");
}

static void refused_reuse(call_t *c)
{
    fv_log_warn("gateway", "a used refresh token came back (peer %s): its family is revoked",
                c->req ? fv_http_req_peer(c->req) : "gone");
    revoke_family(c, STEP_REVOKE);
}

static void on_kv(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    call_t *c = data;
    bool used = false;
    char fk[40];
    switch (c->step) {
    case STEP_ISSUE: {
        bool ok = status == 0 && reply && reply->type == FV_KV_INT && reply->integer == 1;
        if (c->done) {
            c->done(c->data, ok ? 0 : status < 0 ? status : FV_ECONFLICT, ok ? c->token : NULL);
            call_free(c);
        } else if (ok) {
            reply_refreshed(c);
        } else {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        }
        return;
    }
    case STEP_LOOKUP:
        if (status < 0) {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        } else if (reply->type != FV_KV_STR ||
                   !record_parse(c, reply->str.ptr, reply->str.len, &used) ||
                   strncmp(c->family, c->token, FAMILY_HEX) != 0) {
            reply_error(c, FV_EUNAUTH, "unknown or expired refresh token");
        } else if (used) {
            refused_reuse(c);
        } else {
            memcpy(c->record, reply->str.ptr, reply->str.len);
            c->record_len = reply->str.len;
            family_key(c->family, fk, sizeof(fk));
            c->step = STEP_FAMILY;
            if (fv_kv_get(c->gw->kv, fv_slice_cstr(fk), on_kv, c) < 0)
                reply_error(c, FV_EBACKEND, "the session store is unavailable");
        }
        return;
    case STEP_FAMILY:
        if (status < 0) {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        } else if (reply->type != FV_KV_NIL) {
            reply_error(c, FV_EUNAUTH, "this session was revoked: sign in again");
        } else {
            char spent[RECORD_MAX];
            size_t n = record_make(c, true, spent, sizeof(spent));
            c->step = STEP_SPEND;
            if (fv_kv_cas(c->gw->kv, fv_slice_cstr(c->key), fv_slice(c->record, c->record_len),
                          fv_slice(spent, n), c->gw->cfg->auth.refresh_ttl_ms, on_kv, c) < 0)
                reply_error(c, FV_EBACKEND, "the session store is unavailable");
        }
        return;
    case STEP_SPEND:
        if (status == FV_ECONFLICT) {
            refused_reuse(c);             /* spent by a racing refresh: one of them is a copy */
        } else if (status < 0) {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        } else if (store_new_token(c) < 0) {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        }
        return;
    case STEP_REVOKE:
        reply_error(c, FV_EUNAUTH,
                    "refresh token already used: every token of this session is revoked");
        return;
    case STEP_LOGOUT_ACCESS:
        if (status < 0) {
            reply_error(c, FV_EBACKEND, "the session store is unavailable");
        } else if (c->token[0]) {
            c->step = STEP_LOGOUT_LOOKUP;
            if (fv_kv_get(c->gw->kv, fv_slice_cstr(c->key), on_kv, c) < 0)
                reply_error(c, FV_EBACKEND, "the session store is unavailable");
        } else {
            goto logged_out;
        }
        return;
    case STEP_LOGOUT_LOOKUP:
        if (status == 0 && reply->type == FV_KV_STR &&
            record_parse(c, reply->str.ptr, reply->str.len, &used))
            revoke_family(c, STEP_LOGOUT_FAMILY);
        else
            goto logged_out;          /* unknown or expired: nothing more to revoke */
        return;
    case STEP_LOGOUT_FAMILY:
    logged_out:
        if (c->req) {
            fv_http_req_on_abort(c->req, NULL, NULL);
            fv_http_reply_json(c->req, 200, json_pack("{s:b}", "logged_out", 1));
            c->req = NULL;
        }
        call_free(c);
        return;
    }
}

/* The body's refresh_token, checked for shape: 0 (none when optional), or answered. */
static int read_refresh_token(call_t *c, bool required)
{
    fv_error_t err;
    fv_slice_t body = fv_http_req_body(c->req);
    if (!body.len && !required)
        return 0;
    json_t *j = fv_json_parse_object(body, &err);
    if (!j) {
        reply_error(c, FV_EINVAL, err.msg);
        return FV_EINVAL;
    }
    json_t *t = json_object_get(j, "refresh_token");
    const char *s = json_string_value(t);
    bool ok = s && strlen(s) == REFRESH_LEN && s[FAMILY_HEX] == '.';
    for (size_t i = 0; ok && i < REFRESH_LEN; i++)
        ok = i == FAMILY_HEX || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (ok)
        memcpy(c->token, s, REFRESH_LEN + 1);
    json_decref(j);
    if (!ok && (t || required)) {
        reply_error(c, FV_EINVAL, "refresh_token must be the string a sign-in answered");
        return FV_EINVAL;
    }
    if (ok)
        token_key(c->token, c->key, sizeof(c->key));
    return 0;
}

void gw_auth_refresh(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    call_t *c = call_new(gw, req, STEP_LOOKUP);
    if (read_refresh_token(c, true) < 0)
        return;
    if (!gw->kv || fv_kv_get(gw->kv, fv_slice_cstr(c->key), on_kv, c) < 0)
        reply_error(c, FV_EBACKEND, "the session store is unavailable");
}

void gw_auth_logout(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    const char *access = gw_bearer_token(req);
    fv_token_claims_t claims;
    int64_t now = (int64_t)(fv_wall_ms() / 1000);
    if (!access || fv_token_verify(gw->cfg->auth.jwt_secret, access, now, &claims) < 0) {
        fv_http_resp_header(req, "WWW-Authenticate", "Bearer");
        fv_http_reply_errorf(req, FV_EUNAUTH, "a valid access token is required");
        return;
    }
    call_t *c = call_new(gw, req, STEP_LOGOUT_ACCESS);
    if (read_refresh_token(c, false) < 0)
        return;
    char rk[64];
    snprintf(rk, sizeof(rk), FV_TOKEN_REVOKED_KEY_FMT, claims.jti);
    /* kept until the token would have expired anyway, and a second for clock skew */
    uint64_t ttl = (uint64_t)(claims.exp - now) * 1000 + 1000;
    if (!gw->kv || fv_kv_set(gw->kv, fv_slice_cstr(rk), FV_SLICE_LIT("1"), ttl, 0, on_kv, c) < 0)
        reply_error(c, FV_EBACKEND, "the session store is unavailable");
}
