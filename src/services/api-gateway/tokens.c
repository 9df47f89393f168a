/* tokens.c - access tokens on forwarded requests, checked once and then remembered.
 *
 * A client sends the same token with every request for its whole life (15 minutes by
 * default), and a full check (HMAC, then libjwt's decode and a JSON parse of the claims) costs
 * more than forwarding the request does. So a token that checked out is kept in a small
 * direct-mapped table, found by a 128-bit keyed hash of its bytes (a random key per process, so
 * nobody can aim collisions at one slot), until it expires; a later request with the same bytes
 * skips the check. The tags are compared in constant time and only a request whose tag matched
 * has its bytes compared at all, so the table is no timing oracle for a stored token (and a
 * constant-time compare of the whole token, hundreds of bytes, cost 4 % of a forwarded
 * request). The table holds GW_TOKEN_CACHE tokens of at most FV_TOKEN_MAX_BYTES. */
#include "services/api-gateway/gateway.h"

#include <string.h>

#include <sodium.h>

#include "core/alloc.h"

typedef struct gw_token_slot {
    char *token;                  /* NULL: empty */
    size_t len;
    unsigned char tag[crypto_shorthash_siphashx24_BYTES];
    fv_token_claims_t claims;
} gw_token_slot_t;

struct gw_tokens {
    unsigned char key[crypto_shorthash_siphashx24_KEYBYTES];
    gw_token_slot_t slots[GW_TOKEN_CACHE];
    uint64_t hits, misses;
};

gw_tokens_t *gw_tokens_new(void)
{
    gw_tokens_t *t = fv_calloc(1, sizeof(*t));
    randombytes_buf(t->key, sizeof(t->key));
    return t;
}

void gw_tokens_free(gw_tokens_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < GW_TOKEN_CACHE; i++)
        fv_free(t->slots[i].token);
    fv_free(t);
}

int gw_token_check(gw_tokens_t *t, const char *secret, const char *token, int64_t now_s,
                   fv_token_claims_t *out)
{
    size_t len = strnlen(token, FV_TOKEN_MAX_BYTES + 1);
    if (len == 0 || len > FV_TOKEN_MAX_BYTES)
        return FV_EUNAUTH;
    unsigned char tag[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(tag, (const unsigned char *)token, len, t->key);
    uint64_t v;
    memcpy(&v, tag, sizeof(v));
    gw_token_slot_t *s = &t->slots[v % GW_TOKEN_CACHE];
    if (s->token && sodium_memcmp(s->tag, tag, sizeof(tag)) == 0 && s->len == len &&
        memcmp(s->token, token, len) == 0) {
        if (now_s < s->claims.exp) {
            t->hits++;
            *out = s->claims;
            return 0;
        }
        return FV_EUNAUTH;                       /* expired since it was checked */
    }
    t->misses++;
    int rc = fv_token_verify(secret, token, now_s, out);
    if (rc < 0)
        return rc;
    fv_free(s->token);
    s->token = fv_malloc(len + 1);
    memcpy(s->token, token, len + 1);
    s->len = len;
    memcpy(s->tag, tag, sizeof(tag));
    s->claims = *out;
    return 0;
}
