/* token.c - HS256 access tokens over libjwt: issue, and a strict check. It does not keep
 * tokens, revoke them or know about players; the gateways do.
 *
 * The signature is checked here with libsodium and sodium_memcmp() before libjwt reads the
 * token, so the comparison is constant-time whatever libjwt version is linked, and a header
 * naming another algorithm ("none", RS256 with our secret as a public key) never gets a say:
 * only an HMAC-SHA256 of our secret over the first two parts passes. */
#include "core/token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "core/addr.h"
#include "core/alloc.h"
#include "core/id.h"

int fv_token_secret_check(const char *secret, const char *bind, fv_error_t *err)
{
    size_t len = secret ? strlen(secret) : 0;
    if (len < FV_TOKEN_MIN_SECRET_BYTES)
        return fv_error_set(err, FV_EINVAL, "auth.jwt_secret: %zu bytes; at least %d are needed",
                            len, FV_TOKEN_MIN_SECRET_BYTES);
    if (fv_bind_is_public(bind) && strcmp(secret, FV_TOKEN_PLACEHOLDER_SECRET) == 0)
        return fv_error_set(err, FV_EINVAL,
                            "auth.jwt_secret is the shipped placeholder and general.bind (%s) is "
                            "beyond loopback: anyone could forge tokens; set a secret of your own",
                            bind);
    return 0;
}

static int copy_claim(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= cap)
        return FV_EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

int fv_token_issue(const char *secret, fv_token_claims_t *claims, char **out)
{
    if (!*claims->sub || strlen(claims->sub) >= sizeof(claims->sub) || !*claims->name ||
        strlen(claims->name) >= sizeof(claims->name))
        return FV_EINVAL;
    fv_id_random_hex(claims->jti, 16);
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return FV_ENOMEM;
    int rc = FV_ENOMEM;
    if (jwt_add_grant(jwt, "sub", claims->sub) == 0 &&
        jwt_add_grant(jwt, "name", claims->name) == 0 &&
        jwt_add_grant_bool(jwt, "guest", claims->guest) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)claims->iat) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)claims->exp) == 0 &&
        jwt_add_grant(jwt, "jti", claims->jti) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0) {
        char *s = jwt_encode_str(jwt);   /* libjwt's malloc */
        if (s) {
            *out = fv_strdup(s);
            free(s);
            rc = 0;
        }
    }
    jwt_free(jwt);
    return rc;
}

/* The third part must be the base64url HMAC-SHA256 of the first two under secret. */
static bool signature_ok(const char *secret, const char *token, size_t len)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return false;
    size_t signed_len = (size_t)(dot2 - token);
    const char *sig = dot2 + 1;
    size_t sig_len = len - signed_len - 1;

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    if (crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret)) != 0 ||
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, signed_len) != 0 ||
        crypto_auth_hmacsha256_final(&st, mac) != 0)
        return false;
    char want[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES,
                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(want, sizeof(want), mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(&st, sizeof(st));
    /* the length is public (it is the hash size); only the bytes are compared in constant
     * time */
    return sig_len == strlen(want) && sodium_memcmp(sig, want, sig_len) == 0;
}

/* Every claim present with its JSON type; a token of ours never lacks one. */
static int read_claims(jwt_t *jwt, fv_token_claims_t *out)
{
    char *text = jwt_get_grants_json(jwt, NULL);   /* libjwt's malloc */
    if (!text)
        return FV_EUNAUTH;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    if (!j)
        return FV_EUNAUTH;
    json_t *guest = json_object_get(j, "guest");
    json_t *iat = json_object_get(j, "iat");
    json_t *exp = json_object_get(j, "exp");
    int rc = FV_EUNAUTH;
    memset(out, 0, sizeof(*out));
    if (json_is_boolean(guest) && json_is_integer(iat) && json_is_integer(exp) &&
        copy_claim(out->sub, sizeof(out->sub), json_string_value(json_object_get(j, "sub"))) ==
            0 &&
        copy_claim(out->name, sizeof(out->name),
                   json_string_value(json_object_get(j, "name"))) == 0 &&
        copy_claim(out->jti, sizeof(out->jti), json_string_value(json_object_get(j, "jti"))) ==
            0) {
        out->guest = json_is_true(guest);
        out->iat = (int64_t)json_integer_value(iat);
        out->exp = (int64_t)json_integer_value(exp);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int fv_token_verify(const char *secret, const char *token, int64_t now_s,
                    fv_token_claims_t *out)
{
    size_t len = token ? strnlen(token, FV_TOKEN_MAX_BYTES + 1) : 0;
    if (len == 0 || len > FV_TOKEN_MAX_BYTES || !secret || !*secret ||
        !signature_ok(secret, token, len))
        return FV_EUNAUTH;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0 || !jwt)
        return FV_EUNAUTH;
    fv_token_claims_t claims;
    int rc = jwt_get_alg(jwt) == JWT_ALG_HS256 ? read_claims(jwt, &claims) : FV_EUNAUTH;
    jwt_free(jwt);
    if (rc < 0 || now_s >= claims.exp)
        return FV_EUNAUTH;
    *out = claims;
    return 0;
}
