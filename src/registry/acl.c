/* acl.c - parsing the registry's token rules and answering "may this token read / write that
 * service". Ownership of instances (who may change an instance someone registered with a
 * token) is the catalog's and http.c's business; this file only knows tokens and names. */
#include "registry/acl.h"

#include <string.h>

#include "core/alloc.h"

static void token_dispose(registry_acl_token_t *t)
{
    fv_free(t->secret);
    for (size_t i = 0; i < t->write_count; i++)
        fv_free(t->write[i]);
    fv_free(t->write);
    fv_free(t->write_prefix);
}

void registry_acl_dispose(registry_acl_t *acl)
{
    for (size_t i = 0; i < acl->count; i++)
        token_dispose(&acl->tokens[i]);
    fv_free(acl->tokens);
    acl->tokens = NULL;
    acl->count = 0;
}

static bool secret_ok(const char *s, size_t len)
{
    if (len < REGISTRY_TOKEN_MIN || len > REGISTRY_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-_.~+/", c)))
            return false;
    }
    return true;
}

/* Service names follow the register rule (letters, digits, '-', '_', '.'). */
static bool name_ok(const char *s, size_t len)
{
    if (len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *trim_end(const char *p, const char *end)
{
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

static void add_write(registry_acl_token_t *t, const char *name, size_t len, bool prefix)
{
    t->write = fv_realloc(t->write, (t->write_count + 1) * sizeof(*t->write));
    t->write_prefix = fv_realloc(t->write_prefix, (t->write_count + 1) * sizeof(bool));
    t->write[t->write_count] = fv_strndup(name, len);
    t->write_prefix[t->write_count] = prefix;
    t->write_count++;
}

static int parse_rule(registry_acl_token_t *t, const char *p, const char *end, size_t n,
                      fv_error_t *err)
{
    size_t len = (size_t)(end - p);
    static const char svc[] = "service:write:";
    if (len == 4 && memcmp(p, "read", 4) == 0) {
        t->read = true;
    } else if (len == 5 && memcmp(p, "write", 5) == 0) {
        t->write_all = t->read = true;
    } else if (len >= sizeof(svc) - 1 && memcmp(p, svc, sizeof(svc) - 1) == 0) {
        const char *name = p + sizeof(svc) - 1;
        size_t nlen = (size_t)(end - name);
        bool prefix = nlen > 0 && name[nlen - 1] == '*';
        if (prefix)
            nlen--;
        if ((!prefix && nlen == 0) || !name_ok(name, nlen))
            return fv_error_set(err, FV_EINVAL,
                                "registry.acl_tokens: token %zu: \"%.*s\" is not a service "
                                "name or a prefix ending in '*'", n, (int)(end - name), name);
        if (prefix && nlen == 0)
            t->write_all = true;
        else
            add_write(t, name, nlen, prefix);
        t->read = true;
    } else {
        return fv_error_set(err, FV_EINVAL,
                            "registry.acl_tokens: token %zu: unknown rule \"%.*s\" (read, write, "
                            "service:write:<name> or service:write:<prefix>*)", n,
                            (int)(len > 64 ? 64 : len), p);
    }
    return 0;
}

static int parse_token(registry_acl_t *acl, const char *p, const char *end, size_t n,
                       fv_error_t *err)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq)
        return fv_error_set(err, FV_EINVAL,
                            "registry.acl_tokens: token %zu: expected <secret>=<rules>", n);
    const char *s_end = trim_end(p, eq);
    if (!secret_ok(p, (size_t)(s_end - p)))
        return fv_error_set(err, FV_EINVAL,
                            "registry.acl_tokens: token %zu: a secret is %d..%d characters of "
                            "letters, digits and - _ . ~ + /", n, REGISTRY_TOKEN_MIN,
                            REGISTRY_TOKEN_MAX);
    for (size_t i = 0; i < acl->count; i++)
        if (strlen(acl->tokens[i].secret) == (size_t)(s_end - p) &&
            memcmp(acl->tokens[i].secret, p, (size_t)(s_end - p)) == 0)
            return fv_error_set(err, FV_EINVAL, "registry.acl_tokens: token %zu: given twice",
                                n);
    registry_acl_token_t t = {.secret = fv_strndup(p, (size_t)(s_end - p))};
    const char *r = eq + 1;
    int rc = 0;
    size_t rules = 0;
    while (r < end && rc == 0) {
        const char *comma = memchr(r, ',', (size_t)(end - r));
        const char *r_end = comma ? comma : end;
        const char *a = skip_space(r, r_end), *b = trim_end(a, r_end);
        if (a < b) {
            rc = parse_rule(&t, a, b, n, err);
            rules++;
        }
        r = comma ? comma + 1 : end;
    }
    if (rc == 0 && rules == 0)
        rc = fv_error_set(err, FV_EINVAL, "registry.acl_tokens: token %zu has no rules", n);
    if (rc < 0) {
        token_dispose(&t);
        return rc;
    }
    acl->tokens = fv_realloc(acl->tokens, (acl->count + 1) * sizeof(*acl->tokens));
    acl->tokens[acl->count++] = t;
    return 0;
}

int registry_acl_parse(registry_acl_t *acl, const char *policy, const char *tokens,
                       fv_error_t *err)
{
    memset(acl, 0, sizeof(*acl));
    if (!policy || strcmp(policy, "allow") == 0)
        acl->deny = false;
    else if (strcmp(policy, "deny") == 0)
        acl->deny = true;
    else
        return fv_error_set(err, FV_EINVAL,
                            "registry.acl_default_policy: \"%s\" is not allow or deny", policy);
    const char *p = tokens ? tokens : "";
    const char *end = p + strlen(p);
    size_t n = 0;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *t_end = semi ? semi : end;
        const char *a = skip_space(p, t_end), *b = trim_end(a, t_end);
        if (a < b) {
            int rc = parse_token(acl, a, b, ++n, err);
            if (rc < 0) {
                registry_acl_dispose(acl);
                return rc;
            }
        }
        p = semi ? semi + 1 : end;
    }
    return 0;
}

int registry_acl_add_admin(registry_acl_t *acl, const char *secret)
{
    if (!secret || !secret_ok(secret, strlen(secret)))
        return FV_EINVAL;
    if (registry_acl_find(acl, secret))
        return FV_EEXIST;
    acl->tokens = fv_realloc(acl->tokens, (acl->count + 1) * sizeof(*acl->tokens));
    acl->tokens[acl->count++] = (registry_acl_token_t){
        .secret = fv_strdup(secret), .read = true, .write_all = true};
    return 0;
}

/* Every byte of the candidate is compared, so the time says nothing about how much of a
 * secret a guess got right. */
static bool secret_eq(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++)
        diff |= (unsigned char)(a[i < alen ? i : 0] ^ b[i]);
    return diff == 0;
}

const registry_acl_token_t *registry_acl_find(const registry_acl_t *acl, const char *secret)
{
    if (!secret || !*secret)
        return NULL;
    size_t len = strlen(secret);
    if (len > REGISTRY_TOKEN_MAX)
        return NULL;
    const registry_acl_token_t *found = NULL;
    for (size_t i = 0; i < acl->count; i++)
        if (secret_eq(acl->tokens[i].secret, secret, len))
            found = &acl->tokens[i];
    return found;
}

bool registry_acl_can_read(const registry_acl_t *acl, const registry_acl_token_t *tok)
{
    return tok ? tok->read : !acl->deny;
}

bool registry_acl_token_writes(const registry_acl_token_t *tok, const char *name)
{
    if (!tok)
        return false;
    if (tok->write_all)
        return true;
    for (size_t i = 0; i < tok->write_count; i++) {
        const char *w = tok->write[i];
        if (tok->write_prefix[i] ? strncmp(name, w, strlen(w)) == 0 : strcmp(name, w) == 0)
            return true;
    }
    return false;
}

bool registry_acl_can_write(const registry_acl_t *acl, const registry_acl_token_t *tok,
                            const char *name)
{
    /* Consul's rule: a token's rules decide where they say something, the default policy
     * elsewhere; the anonymous token has no rules. */
    return registry_acl_token_writes(tok, name) || !acl->deny;
}
