/* token.h - access tokens: HS256 JSON Web Tokens (RFC 7519) issued and checked with one shared
 * secret, so any gateway holding the secret can check what another issued. */
#ifndef FV_CORE_TOKEN_H
#define FV_CORE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Longest token fv_token_verify() looks at; longer ones are refused unread. */
#define FV_TOKEN_MAX_BYTES 4096
/* HS256 is only as strong as its key: RFC 7518 sec. 3.2 asks for at least the hash size. */
#define FV_TOKEN_MIN_SECRET_BYTES 32
/* The value auth.jwt_secret ships with; fv_token_secret_check() refuses it off loopback. */
#define FV_TOKEN_PLACEHOLDER_SECRET "change-me-development-only-finalverse-jwt-secret"

#define FV_TOKEN_ID_MAX 64
#define FV_TOKEN_NAME_MAX 64

typedef struct fv_token_claims {
    char sub[FV_TOKEN_ID_MAX];     /* the player id */
    char name[FV_TOKEN_NAME_MAX];  /* the player's display name */
    bool guest;
    int64_t iat;                   /* issued at, seconds since the Unix epoch */
    int64_t exp;                   /* expires at, seconds since the Unix epoch */
    char jti[33];                  /* token id: 32 hex digits, set by fv_token_issue() */
} fv_token_claims_t;

/* The kv key whose existence marks access token jti revoked (logout, a reused refresh token):
 * the API gateway writes it, and it and the WebSocket gateway refuse such a token. */
#define FV_TOKEN_REVOKED_PREFIX "fv:revoked:"
#define FV_TOKEN_REVOKED_KEY_FMT FV_TOKEN_REVOKED_PREFIX "%.40s"
#define FV_TOKEN_REVOKED_KEY_MAX (sizeof(FV_TOKEN_REVOKED_PREFIX) + 40)

/* Whether secret may sign tokens for a process listening on bind (general.bind): 0, or
 * FV_EINVAL with err saying why. Shorter than FV_TOKEN_MIN_SECRET_BYTES is always refused; the
 * shipped placeholder only while every listener is on loopback, where only this machine can
 * reach the gateways (there is no separate development switch). */
FV_MUST_USE int fv_token_secret_check(const char *secret, const char *bind, fv_error_t *err);

/* Signs claims (sub, name, guest, iat, exp; jti is generated into claims->jti) with secret.
 * 0 and *out, a NUL-terminated token the caller frees with fv_free(); FV_EINVAL when sub or
 * name is empty or too long, FV_ENOMEM when libjwt fails. */
FV_MUST_USE int fv_token_issue(const char *secret, fv_token_claims_t *claims, char **out);

/* Checks token at now_s (seconds since the Unix epoch): HS256 only, signed with secret,
 * compared in constant time, every claim present and of its type, not expired. 0 with *out
 * filled, or FV_EUNAUTH for any failure (the reason is not told apart: a client learns
 * nothing from it). */
FV_MUST_USE int fv_token_verify(const char *secret, const char *token, int64_t now_s,
                                fv_token_claims_t *out);

#endif
