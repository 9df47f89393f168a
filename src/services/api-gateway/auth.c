/* auth.c - the gateway's own accounts: POST /api/auth/register, /login and /guest, and
 * GET /api/auth/me. Accounts live in the sql store (auth_accounts); passwords are argon2id
 * strings from libsodium, hashed and checked on the libuv thread pool, never on the loop, since
 * one hash takes tens of milliseconds by design. Access tokens come from core/token.c.
 *
 * A login answers the same for an unknown name and a wrong password, after the same work: an
 * unknown name still costs one argon2id hash of the password given. Refresh tokens,
 * revocation, lockout and passing the player on to services are not here yet. */
#include "services/api-gateway/gateway.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "core/token.h"
#include "store/kv.h"
#include "store/sql.h"

#define AUTH_NAME_MIN 3
#define AUTH_NAME_MAX 32
#define AUTH_PASSWORD_MIN 10
#define AUTH_PASSWORD_MAX 128
/* A request body of {name, password} at their longest, JSON-escaped, fits well within this. */
#define AUTH_BODY_MAX 4096

typedef enum auth_kind {
    AUTH_REGISTER,
    AUTH_LOGIN,
    AUTH_GUEST,
} auth_kind_t;

/* One register, login or guest request from start to answer. Owned by itself: freed in
 * call_finish(), after the pool job and the sql request it started have reported back. */
typedef struct auth_call {
    gateway_t *gw;
    fv_http_req_t *req;                  /* NULL once the client went away */
    auth_kind_t kind;
    uv_work_t work;
    fv_sql_req_t sql;
    char *password;                      /* the job's own copy; wiped and freed after it */
    size_t password_len;
    bool known;                          /* login: the name has a password hash */
    bool hashed;                         /* the call holds one of gw->hashing */
    struct auth_call *wait_next;         /* in gw->hash_wait */
    int work_rc;                         /* 0, FV_EUNAUTH (no match) or FV_ENOMEM */
    unsigned long long opslimit;
    size_t memlimit;
    char hash[crypto_pwhash_STRBYTES];   /* register: made; login: the stored one */
    char id[FV_TOKEN_ID_MAX];
    char name[AUTH_NAME_MAX + 1];
    char name_key[AUTH_NAME_MAX + 1];
    char *access;                        /* issued, waiting for its refresh token */
    char ip[64];                         /* login: the peer, for the lockout */
    uint32_t access_ttl_s;
    bool guest;
} auth_call_t;

static void call_finish(auth_call_t *call)
{
    gateway_t *gw = call->gw;
    if (call->hashed)
        gw->hashing--;
    if (call->password) {
        sodium_memzero(call->password, call->password_len);
        fv_free(call->password);
    }
    sodium_memzero(call->hash, sizeof(call->hash));
    if (call->access) {
        sodium_memzero(call->access, strlen(call->access));
        fv_free(call->access);
    }
    if (call->req)
        fv_http_req_on_abort(call->req, NULL, NULL);
    fv_free(call);
    gw->in_flight--;
    gateway_release(gw);
}

static void on_client_abort(fv_http_req_t *req, void *data)
{
    ((auth_call_t *)data)->req = NULL;
}

/* Answers and finishes: the reply goes out only when the client is still there. */
static void call_reply_json(auth_call_t *call, int status, json_t *j)
{
    fv_http_req_t *req = call->req;
    if (req) {
        fv_http_req_on_abort(req, NULL, NULL);
        call->req = NULL;
        if (j)
            fv_http_reply_json(req, status, j);
        else
            fv_http_reply_errorf(req, FV_ENOMEM, "out of memory");
    } else if (j) {
        json_decref(j);
    }
    call_finish(call);
}

static const char *const kind_names[] = {"register", "login", "guest"};

static void call_reply_error(auth_call_t *call, int code, const char *msg)
{
    fv_http_req_t *req = call->req;
    if (req) {
        /* a refused sign-in is the client's doing, so info; an operator looking for password
         * guessing wants the address. Neither the name nor the password: both are whatever
         * the client typed, and a password often lands in the name field. */
        if (code == FV_EUNAUTH || code == FV_EINVAL || code == FV_ECONFLICT)
            fv_log_info("gateway", "%s refused: %s (peer %s, request %llu)",
                        kind_names[call->kind], msg, fv_http_req_peer(req),
                        (unsigned long long)fv_http_req_id(req));
        fv_http_req_on_abort(req, NULL, NULL);
        call->req = NULL;
        if (code == FV_EUNAUTH)
            fv_http_resp_header(req, "WWW-Authenticate", "Bearer");
        fv_http_reply_errorf(req, code, "%s", msg);
    }
    call_finish(call);
}

/* The documented name set: 3-32 of A-Z a-z 0-9 _ -, so names need no escaping anywhere and
 * cannot impersonate others with look-alike characters. */
static bool name_valid(const char *name, size_t len)
{
    if (len < AUTH_NAME_MIN || len > AUTH_NAME_MAX || strlen(name) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void name_key(const char *name, char *out)
{
    size_t i = 0;
    for (; name[i]; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    out[i] = '\0';
}

static json_t *player_json(const char *id, const char *name, bool guest)
{
    return json_pack("{s:s,s:s,s:b}", "id", id, "name", name, "guest", guest);
}

/* The answer of login and guest, once the refresh token is stored: both tokens. A session
 * store that cannot take the refresh token costs the client only that (it signs in again when
 * the access token expires), not the sign-in. */
static void on_refresh_issued(void *data, int rc, const char *refresh)
{
    auth_call_t *call = data;
    if (rc < 0)
        fv_log_warn("gateway", "no refresh token for a sign-in: %s", fv_strerror(rc));
    json_t *j = json_pack("{s:s,s:s,s:I,s:o}", "access_token", call->access, "token_type",
                          "Bearer", "expires_in", (json_int_t)call->access_ttl_s, "player",
                          player_json(call->id, call->name, call->guest));
    if (j && refresh) {
        json_object_set_new(j, "refresh_token", json_string(refresh));
        json_object_set_new(j, "refresh_expires_in",
                            json_integer((json_int_t)(call->gw->cfg->auth.refresh_ttl_ms / 1000)));
    }
    call_reply_json(call, 200, j);
}

/* Issues a fresh access token for the call's player, then its refresh token. */
static void reply_token(auth_call_t *call, bool guest)
{
    const fv_config_t *cfg = call->gw->cfg;
    fv_token_claims_t claims = {.guest = guest};
    snprintf(claims.sub, sizeof(claims.sub), "%s", call->id);
    snprintf(claims.name, sizeof(claims.name), "%s", call->name);
    uint32_t ttl_s = cfg->auth.access_ttl_ms / 1000;
    claims.iat = (int64_t)(fv_wall_ms() / 1000);
    claims.exp = claims.iat + ttl_s;
    int rc = fv_token_issue(cfg->auth.jwt_secret, &claims, &call->access);
    if (rc < 0) {
        fv_log_error("gateway", "cannot issue an access token: %s", fv_strerror(rc));
        call_reply_error(call, FV_EINTERNAL, "cannot issue a token");
        return;
    }
    call->access_ttl_s = ttl_s;
    call->guest = guest;
    gw_session_issue(call->gw, call->id, call->name, guest, on_refresh_issued, call);
}

/* ---- the thread pool: argon2id ---- */

static void hash_work(uv_work_t *w)
{
    auth_call_t *call = w->data;
    char scratch[crypto_pwhash_STRBYTES];
    switch (call->kind) {
    case AUTH_REGISTER:
        call->work_rc = crypto_pwhash_str(call->hash, call->password, call->password_len,
                                          call->opslimit, call->memlimit) == 0
                            ? 0
                            : FV_ENOMEM;
        break;
    case AUTH_LOGIN:
        if (call->known) {
            call->work_rc = crypto_pwhash_str_verify(call->hash, call->password,
                                                     call->password_len) == 0
                                ? 0
                                : FV_EUNAUTH;
        } else {
            /* the same cost as checking a real hash, so the time of the answer does not say
             * whether the name exists */
            int hrc = crypto_pwhash_str(scratch, call->password, call->password_len,
                                        call->opslimit, call->memlimit);
            sodium_memzero(scratch, sizeof(scratch));
            call->work_rc = hrc == 0 ? FV_EUNAUTH : FV_ENOMEM;
        }
        break;
    case AUTH_GUEST:
        call->work_rc = 0;
        break;
    }
}

static void on_inserted(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res);
static void pump_hashes(gateway_t *gw);

static void after_hash(uv_work_t *w, int status)
{
    auth_call_t *call = w->data;
    call->gw->hashes_running--;
    pump_hashes(call->gw);
    sodium_memzero(call->password, call->password_len);
    if (status < 0 || call->work_rc == FV_ENOMEM) {
        fv_log_error("gateway", "password hashing failed (%s)",
                     status < 0 ? uv_strerror(status) : "out of memory");
        call_reply_error(call, FV_EUNAVAILABLE, "cannot hash the password now, try again");
        return;
    }
    if (call->kind == AUTH_LOGIN) {
        if (call->work_rc < 0) {
            gw_lockout_failed(call->gw, call->name_key, call->ip);
            call_reply_error(call, FV_EUNAUTH, "wrong name or password");
            return;
        }
        gw_lockout_cleared(call->gw, call->name_key);
        reply_token(call, false);
        return;
    }
    fv_sql_param_t p[] = {FV_SQL_TEXT(call->id),   FV_SQL_TEXT(call->name),
                          FV_SQL_TEXT(call->name_key), FV_SQL_TEXT(call->hash),
                          FV_SQL_INT(0),           FV_SQL_INT(fv_wall_ms())};
    int rc = fv_sql_exec(call->gw->sql, &call->sql,
                         "INSERT INTO auth_accounts (id, name, name_key, password_hash, guest, "
                         "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                         p, 6, on_inserted);
    if (rc < 0)
        call_reply_error(call, FV_EBACKEND, "the account store is unavailable");
}

/* Hands a queued call to the thread pool; a call whose client went away while it waited is
 * finished instead, unhashed. */
static void submit_hash(auth_call_t *call)
{
    gateway_t *gw = call->gw;
    if (!call->req) {
        call_finish(call);
        return;
    }
    gw->hashes_running++;
    call->work.data = call;
    int rc = uv_queue_work(fv_module_loop(gw->ctx), &call->work, hash_work, after_hash);
    if (rc < 0) {
        gw->hashes_running--;
        fv_log_error("gateway", "cannot queue password hashing: %s", uv_strerror(rc));
        call_reply_error(call, FV_EUNAVAILABLE, "cannot hash the password now, try again");
    }
}

/* libuv's thread pool also runs SQLite statements and file storage: a burst of sign-ins must
 * not take all of its threads, or every query waits behind seconds of hashing. So only
 * max_parallel_hashes go to the pool; the rest wait here, in order, bounded by max_hashing. */
static void pump_hashes(gateway_t *gw)
{
    while (gw->hash_wait && gw->hashes_running < gw->cfg->auth.max_parallel_hashes) {
        auth_call_t *call = gw->hash_wait;
        gw->hash_wait = call->wait_next;
        if (!gw->hash_wait)
            gw->hash_wait_tail = NULL;
        call->wait_next = NULL;
        submit_hash(call);
    }
}

/* Takes one of the bounded hashing places and queues the job; answers 503 past the bound. */
static void start_hash(auth_call_t *call)
{
    gateway_t *gw = call->gw;
    if (gw->hashing >= gw->cfg->auth.max_hashing) {
        call_reply_error(call, FV_EAGAIN, "too many sign-ins at once, try again");
        return;
    }
    gw->hashing++;
    call->hashed = true;
    if (gw->hash_wait_tail)
        gw->hash_wait_tail->wait_next = call;
    else
        gw->hash_wait = call;
    gw->hash_wait_tail = call;
    pump_hashes(gw);
}

/* ---- the sql store ---- */

static void on_inserted(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    auth_call_t *call = sreq->data;
    (void)res;
    if (rc == FV_ECONFLICT) {
        call_reply_error(call, FV_ECONFLICT,
                         call->kind == AUTH_GUEST ? "guest name taken, try again"
                                                  : "that name is taken");
        return;
    }
    if (rc < 0) {
        fv_log_error("gateway", "cannot store an account: %s", sreq->err.msg);
        call_reply_error(call, FV_EBACKEND, "the account store is unavailable");
        return;
    }
    if (call->kind == AUTH_GUEST) {
        reply_token(call, true);
        return;
    }
    fv_log_info("gateway", "player registered id=%s", call->id);
    json_t *player = json_pack("{s:s,s:s}", "id", call->id, "name", call->name);
    call_reply_json(call, 201, player ? json_pack("{s:o}", "player", player) : NULL);
}

static void on_account(fv_sql_req_t *sreq, int rc, const fv_sql_result_t *res)
{
    auth_call_t *call = sreq->data;
    if (rc < 0) {
        fv_log_error("gateway", "cannot read an account: %s", sreq->err.msg);
        call_reply_error(call, FV_EBACKEND, "the account store is unavailable");
        return;
    }
    if (fv_sql_result_rows(res) == 1) {
        size_t id_len = 0, name_len = 0, hash_len = 0;
        const char *id = fv_sql_result_text(res, 0, 0, &id_len);
        const char *name = fv_sql_result_text(res, 0, 1, &name_len);
        const char *hash = fv_sql_result_text(res, 0, 2, &hash_len);
        if (id && name && hash && id_len < sizeof(call->id) && name_len < sizeof(call->name) &&
            hash_len < sizeof(call->hash)) {
            memcpy(call->id, id, id_len + 1);
            memcpy(call->name, name, name_len + 1);
            memcpy(call->hash, hash, hash_len + 1);
            call->known = true;
        }
    }
    start_hash(call);
}

/* ---- the routes ---- */

/* Starts a call for req; the gateway stays until it finishes. */
static auth_call_t *call_new(gateway_t *gw, fv_http_req_t *req, auth_kind_t kind)
{
    auth_call_t *call = fv_calloc(1, sizeof(*call));
    call->gw = gw;
    call->req = req;
    call->kind = kind;
    call->sql.data = call;
    call->opslimit = gw->cfg->auth.password_opslimit;
    call->memlimit = gw->cfg->auth.password_memlimit_bytes;
    gw->in_flight++;
    fv_http_req_on_abort(req, on_client_abort, call);
    return call;
}

/* Reads {name, password} from the body into call; false after answering. A login takes any
 * name (a name that cannot exist is simply unknown); registration holds it to the rules. */
static bool read_credentials(auth_call_t *call)
{
    fv_error_t err;
    json_t *body = fv_json_parse_object(fv_http_req_body(call->req), &err);
    if (!body) {
        call_reply_error(call, FV_EINVAL, err.msg);
        return false;
    }
    json_t *jn = json_object_get(body, "name");
    json_t *jp = json_object_get(body, "password");
    bool ok = false;
    if (!json_is_string(jn) || !json_is_string(jp)) {
        call_reply_error(call, FV_EINVAL, "name and password must be strings");
    } else if (call->kind == AUTH_REGISTER &&
               !name_valid(json_string_value(jn), json_string_length(jn))) {
        call_reply_error(call, FV_EINVAL,
                         "name: 3 to 32 characters of A-Z, a-z, 0-9, _ and -");
    } else if (json_string_length(jp) < AUTH_PASSWORD_MIN || json_string_length(jp) > AUTH_PASSWORD_MAX) {
        if (call->kind == AUTH_REGISTER)
            call_reply_error(call, FV_EINVAL, "password: 10 to 128 bytes");
        else
            call_reply_error(call, FV_EUNAUTH, "wrong name or password");
    } else {
        if (name_valid(json_string_value(jn), json_string_length(jn))) {
            snprintf(call->name, sizeof(call->name), "%s", json_string_value(jn));
            name_key(call->name, call->name_key);
        }
        call->password_len = json_string_length(jp);
        call->password = fv_malloc(call->password_len + 1);
        memcpy(call->password, json_string_value(jp), call->password_len + 1);
        ok = true;
    }
    json_decref(body);
    return ok;
}

static void on_register(fv_http_req_t *req, void *data)
{
    auth_call_t *call = call_new(data, req, AUTH_REGISTER);
    if (!read_credentials(call))
        return;
    fv_id_random_hex(call->id, 16);
    start_hash(call);
}

static void login_lookup(auth_call_t *call);

static void on_lock_checked(void *data, bool locked, uint64_t retry_after_s)
{
    auth_call_t *call = data;
    if (!call->req) {
        call_finish(call);
        return;
    }
    if (locked) {
        char s[24];
        snprintf(s, sizeof(s), "%llu", (unsigned long long)retry_after_s);
        fv_http_resp_header(call->req, "Retry-After", s);
        call_reply_error(call, FV_ERATELIMIT, "too many failed logins: try again later");
        return;
    }
    login_lookup(call);
}

static void on_login(fv_http_req_t *req, void *data)
{
    auth_call_t *call = call_new(data, req, AUTH_LOGIN);
    if (!read_credentials(call))
        return;
    gw_peer_ip(req, call->ip, sizeof(call->ip));
    if (!gw_lockout_check(call->gw, call->name_key, call->ip, on_lock_checked, call))
        login_lookup(call);
}

static void login_lookup(auth_call_t *call)
{
    if (!call->name_key[0]) {
        start_hash(call);   /* no such name can exist: unknown, at the same cost */
        return;
    }
    fv_sql_param_t p[] = {FV_SQL_TEXT(call->name_key)};
    int rc = fv_sql_exec(call->gw->sql, &call->sql,
                         "SELECT id, name, password_hash FROM auth_accounts "
                         "WHERE name_key = $1 AND password_hash IS NOT NULL",
                         p, 1, on_account);
    if (rc < 0)
        call_reply_error(call, FV_EBACKEND, "the account store is unavailable");
}

static void on_guest(fv_http_req_t *req, void *data)
{
    auth_call_t *call = call_new(data, req, AUTH_GUEST);
    char hex[9];
    fv_id_random_hex(call->id, 16);
    fv_id_random_hex(hex, 4);
    snprintf(call->name, sizeof(call->name), "guest-%s", hex);
    name_key(call->name, call->name_key);
    fv_sql_param_t p[] = {FV_SQL_TEXT(call->id),       FV_SQL_TEXT(call->name),
                          FV_SQL_TEXT(call->name_key), FV_SQL_NULLV,
                          FV_SQL_INT(1),               FV_SQL_INT(fv_wall_ms())};
    int rc = fv_sql_exec(call->gw->sql, &call->sql,
                         "INSERT INTO auth_accounts (id, name, name_key, password_hash, guest, "
                         "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                         p, 6, on_inserted);
    if (rc < 0)
        call_reply_error(call, FV_EBACKEND, "the account store is unavailable");
}

/* "Bearer <token>" (the scheme in any case, RFC 9110 sec. 11.1) as a string in the request's
 * arena, or NULL. */
const char *gw_bearer_token(fv_http_req_t *req)
{
    fv_slice_t v = fv_http_req_header(req, "Authorization");
    if (v.len <= 7 || v.len > 7 + FV_TOKEN_MAX_BYTES || strncasecmp(v.ptr, "Bearer ", 7) != 0)
        return NULL;
    fv_slice_t t = {v.ptr + 7, v.len - 7};
    while (t.len && t.ptr[0] == ' ') {
        t.ptr++;
        t.len--;
    }
    return t.len ? fv_arena_slice_dup(fv_http_req_arena(req), t) : NULL;
}

static void reply_me(fv_http_req_t *req, const fv_token_claims_t *claims)
{
    json_t *j = json_pack("{s:o,s:I}", "player", player_json(claims->sub, claims->name,
                                                              claims->guest),
                          "expires_at", (json_int_t)claims->exp);
    if (!j) {
        fv_http_reply_errorf(req, FV_ENOMEM, "out of memory");
        return;
    }
    fv_http_reply_json(req, 200, j);
}

/* /me waits for the kv store's word on whether the token was logged out. */
typedef struct me_call {
    gateway_t *gw;
    fv_http_req_t *req;           /* NULL once the client went away */
    fv_token_claims_t claims;
} me_call_t;

static void me_abort(fv_http_req_t *req, void *data)
{
    (void)req;
    ((me_call_t *)data)->req = NULL;
}

static void on_me_revoked(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    (void)kv;
    me_call_t *c = data;
    gateway_t *gw = c->gw;
    if (c->req) {
        fv_http_req_on_abort(c->req, NULL, NULL);
        if (status == 0 && reply && reply->type == FV_KV_STR) {
            fv_http_resp_header(c->req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            fv_http_reply_errorf(c->req, FV_EUNAUTH, "the access token was revoked (logged out)");
        } else {
            reply_me(c->req, &c->claims);   /* a store that fails: the signature decides */
        }
    }
    fv_free(c);
    gw->in_flight--;
    gateway_release(gw);
}

static void on_me(fv_http_req_t *req, void *data)
{
    gateway_t *gw = data;
    const char *token = gw_bearer_token(req);
    fv_token_claims_t claims;
    if (!token || fv_token_verify(gw->cfg->auth.jwt_secret, token,
                                  (int64_t)(fv_wall_ms() / 1000), &claims) < 0) {
        fv_http_resp_header(req, "WWW-Authenticate", "Bearer");
        fv_http_reply_errorf(req, FV_EUNAUTH, "a valid access token is required");
        return;
    }
    if (!gw->kv) {
        reply_me(req, &claims);
        return;
    }
    me_call_t *c = fv_calloc(1, sizeof(*c));
    c->gw = gw;
    c->req = req;
    c->claims = claims;
    char key[64];
    snprintf(key, sizeof(key), FV_TOKEN_REVOKED_KEY_FMT, claims.jti);
    gw->in_flight++;
    fv_http_req_on_abort(req, me_abort, c);
    if (fv_kv_get(gw->kv, fv_slice_cstr(key), on_me_revoked, c) < 0) {
        fv_http_req_on_abort(req, NULL, NULL);
        fv_free(c);
        gw->in_flight--;
        reply_me(req, &claims);
    }
}

/* ---- the gate in front of every /api/auth route: CORS, and the auth rate limit per IP ---- */

/* (struct auth_gate is in gateway.h: the gateway holds one a route. Sign-ins are limited;
 * /me is not: it costs nothing.) */
typedef struct auth_gate auth_gate_t;

typedef struct gate_wait {
    const auth_gate_t *g;
    fv_http_req_t *req;
    bool gone;                    /* the client went away while the limiter answered */
} gate_wait_t;

static void gate_abort(fv_http_req_t *req, void *data)
{
    (void)req;
    ((gate_wait_t *)data)->gone = true;
}

static void gate_limited(void *data, const gw_limit_result_t *res)
{
    gate_wait_t *w = data;
    if (!w->gone) {
        fv_http_req_on_abort(w->req, NULL, NULL);
        gw_limit_headers(w->req, res);
        if (res->allowed)
            w->g->fn(w->req, w->g->gw);
        else
            gw_limit_reply(w->req);
    }
    fv_free(w);
}

static void gate(fv_http_req_t *req, void *data)
{
    const auth_gate_t *g = data;
    char rid[GW_REQUEST_ID_MAX];
    gw_request_id(g->gw, req, rid);
    fv_http_resp_header(req, "X-Request-Id", rid);   /* on every answer, as when forwarding */
    if (gw_cors_preflight(g->gw, req))
        return;
    gw_cors_headers(g->gw, req);
    if (g->limited) {
        gate_wait_t *w = fv_calloc(1, sizeof(*w));
        w->g = g;
        w->req = req;
        fv_http_req_on_abort(req, gate_abort, w);
        gw_limit_result_t now;
        switch (gw_limit_take(g->gw, req, GW_LIMIT_AUTH, NULL, NULL, &now, gate_limited, w)) {
        case GW_LIMIT_WAIT:
            return;
        case GW_LIMIT_ANSWERED:
            gate_limited(w, &now);      /* answers (or calls fn) and frees w */
            return;
        case GW_LIMIT_GO:
            break;
        }
        fv_http_req_on_abort(req, NULL, NULL);
        fv_free(w);
    }
    g->fn(req, g->gw);
}

int gateway_auth_routes(gateway_t *gw, fv_router_t *router)
{
    static const struct {
        const char *method, *path;
        fv_http_handler_cb fn;
        size_t body_max;
        bool limited;
    } routes[AUTH_ROUTES] = {
        {"POST", "/api/auth/register", on_register, AUTH_BODY_MAX, true},
        {"POST", "/api/auth/login", on_login, AUTH_BODY_MAX, true},
        {"POST", "/api/auth/guest", on_guest, AUTH_BODY_MAX, true},
        {"GET", "/api/auth/me", on_me, 0, false},
        {"POST", "/api/auth/refresh", gw_auth_refresh, AUTH_BODY_MAX, true},
        {"POST", "/api/auth/logout", gw_auth_logout, AUTH_BODY_MAX, false},
    };
    if (sodium_init() < 0)
        return FV_EINTERNAL;
    for (size_t i = 0; i < AUTH_ROUTES; i++) {
        auth_gate_t *g = &gw->auth_gates[i];
        g->gw = gw;
        g->fn = routes[i].fn;
        g->limited = routes[i].limited;
        int rc = fv_router_add_limited(router, routes[i].method, routes[i].path, gate, g,
                                       routes[i].body_max);
        if (rc < 0)
            return rc;
    }
    return 0;
}
