/* acl.h - the registry's access rules, in the shape of Consul's ACL tokens: a request carries a
 * token (X-Consul-Token or Authorization: Bearer), the token's rules say which service names it
 * may write and whether it may read, and a default policy ("allow" or "deny") covers requests
 * without a token. Pure: no sockets, no logging. */
#ifndef FV_REGISTRY_ACL_H
#define FV_REGISTRY_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define REGISTRY_TOKEN_MIN 8
#define REGISTRY_TOKEN_MAX 128

typedef struct registry_acl_token {
    char *secret;                /* owned */
    bool read;                   /* may read every view */
    bool write_all;              /* may write every service */
    char **write;                /* service names it may write; owned */
    bool *write_prefix;          /* per entry: a name prefix ("song-*") rather than a name */
    size_t write_count;
} registry_acl_token_t;

typedef struct registry_acl {
    bool deny;                   /* default policy for requests without a token */
    registry_acl_token_t *tokens;
    size_t count;
} registry_acl_t;

/* policy: "allow" or "deny". tokens: "" or "<secret>=<rule>,<rule>;<secret>=..." where a rule
 * is `read`, `write` (every service), `service:write:<name>` or `service:write:<prefix>*`;
 * write implies read. Secrets are REGISTRY_TOKEN_MIN..MAX characters of letters, digits and
 * `- _ . ~ + /`. 0, or FV_EINVAL with err naming what is wrong (acl is then empty). */
FV_MUST_USE int registry_acl_parse(registry_acl_t *acl, const char *policy, const char *tokens,
                                   fv_error_t *err);

/* Adds a token that may read and write everything (the stack's own token). FV_EINVAL for a
 * secret outside the rules above; FV_EEXIST when already present. */
FV_MUST_USE int registry_acl_add_admin(registry_acl_t *acl, const char *secret);

void registry_acl_dispose(registry_acl_t *acl);

/* The token with this secret, compared in constant time per token; NULL when secret is NULL,
 * empty or unknown. */
const registry_acl_token_t *registry_acl_find(const registry_acl_t *acl, const char *secret);

/* Whether tok (NULL: the anonymous token) may read the views. */
bool registry_acl_can_read(const registry_acl_t *acl, const registry_acl_token_t *tok);

/* Whether tok's own rules give write on name (never true for the anonymous token). */
bool registry_acl_token_writes(const registry_acl_token_t *tok, const char *name);

/* Whether tok may write name where no token owns it: its rules, or the default policy. */
bool registry_acl_can_write(const registry_acl_t *acl, const registry_acl_token_t *tok,
                            const char *name);

#endif
