/* config.c - loading finalverse.toml: defaults from the schema, then the TOML tree, then
 * FINALVERSE_* environment variables, then command-line overrides, then the cross-key rules
 * (enumerations, URL schemes, ports). Every message names where the bad value came from: the
 * file and line, the variable, or the flag.
 *
 * TOML syntax is toml_shim.cpp's job; printing the configuration back is show.c's. Nothing
 * here keeps state between loads or reads the environment except through the env argument. */
#include "config/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/schema.h"
#include "config/toml_shim.h"
#include "core/alloc.h"
#include "registry/acl.h"
#include "runtime/modules.h"
#include "world3d/grid.h"

/* A config file is a page or two of text; a megabyte means something else was pointed at. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define ENV_PREFIX "FINALVERSE_"
#define ENV_NAME_MAX 128

typedef enum origin_kind {
    ORIGIN_DEFAULT = 0,
    ORIGIN_FILE,
    ORIGIN_ENV,
    ORIGIN_FLAG,
} origin_kind_t;

/* Where a key's current value came from, for messages raised after all sources are applied. */
typedef struct origin {
    origin_kind_t kind;
    unsigned line;         /* ORIGIN_FILE */
    const char *name;      /* ORIGIN_ENV: the variable (not NUL-terminated); ORIGIN_FLAG: flag */
    size_t name_len;
} origin_t;

typedef struct load_ctx {
    const char *file;      /* name used in messages */
    fv_config_t *cfg;
    origin_t *origins;     /* one per schema row */
    fv_error_t *err;
} load_ctx_t;

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const acl_policies[] = {"allow", "deny", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

/* ---- field access ---------------------------------------------------------------------- */

/* A field lives in fv_config_t, or in the settings struct of the module that declared it. */
static void *field_ptr(fv_config_t *cfg, const fv_cfg_field_t *f)
{
    return (f->owner ? (char *)cfg->modules[f->owner - 1] : (char *)cfg) + f->offset;
}

const void *fv_config_field_cptr(const fv_config_t *cfg, const fv_cfg_field_t *f)
{
    return (f->owner ? (const char *)cfg->modules[f->owner - 1] : (const char *)cfg) +
           f->offset;
}

static void set_num(fv_config_t *cfg, const fv_cfg_field_t *f, int64_t v)
{
    void *p = field_ptr(cfg, f);
    switch (f->type) {
    case FV_CFG_T_INT: *(int *)p = (int)v; break;
    case FV_CFG_T_U32:
    case FV_CFG_T_MS: *(uint32_t *)p = (uint32_t)v; break;
    case FV_CFG_T_SIZE: *(size_t *)p = (size_t)v; break;
    case FV_CFG_T_U64: *(uint64_t *)p = (uint64_t)v; break;
    case FV_CFG_T_BOOL: *(bool *)p = v != 0; break;
    case FV_CFG_T_STR: break;
    }
}

/* 0 or FV_ENOMEM; the old string is released only once the new one exists. */
static int set_str(fv_config_t *cfg, const fv_cfg_field_t *f, const char *s, size_t len)
{
    char *copy = fv_try_malloc(len + 1);
    if (!copy)
        return FV_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    char **slot = field_ptr(cfg, f);
    fv_free(*slot);
    *slot = copy;
    return 0;
}

static const char *get_str(const fv_config_t *cfg, const fv_cfg_field_t *f)
{
    const char *const *slot = fv_config_field_cptr(cfg, f);
    return *slot ? *slot : "";
}

static size_t field_index(const char *section, const char *key)
{
    for (size_t i = 0; i < fv_config_field_count(); i++)
        if (strcmp(fv_config_fields(NULL)[i].section, section) == 0 &&
            strcmp(fv_config_fields(NULL)[i].key, key) == 0)
            return i;
    return (size_t)-1;
}

/* ---- messages -------------------------------------------------------------------------- */

/* "file:12", "FINALVERSE_X__Y", "--port-base" or the file name for defaults. */
static void origin_loc(const load_ctx_t *c, size_t idx, char *buf, size_t len)
{
    const origin_t *o = &c->origins[idx];
    switch (o->kind) {
    case ORIGIN_FILE:
        snprintf(buf, len, "%s:%u", c->file, o->line);
        break;
    case ORIGIN_ENV:
    case ORIGIN_FLAG:
        snprintf(buf, len, "%.*s", (int)o->name_len, o->name);
        break;
    case ORIGIN_DEFAULT:
        snprintf(buf, len, "%s", c->file);
        break;
    }
}

/* Refuses the value of schema row idx: "file:12: http.max_body_bytes: <reason>" for values
 * from the file and defaults, "FINALVERSE_HTTP__MAX_BODY_BYTES: <reason>" for variables (the
 * variable already names the key), likewise for flags. */
static int refuse(const load_ctx_t *c, size_t idx, const char *fmt, ...) FV_PRINTF(3, 4);
static int refuse(const load_ctx_t *c, size_t idx, const char *fmt, ...)
{
    char loc[160], reason[FV_ERROR_MSG_LEN];
    const fv_cfg_field_t *f = &fv_config_fields(NULL)[idx];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    origin_loc(c, idx, loc, sizeof(loc));
    if (c->origins[idx].kind == ORIGIN_ENV || c->origins[idx].kind == ORIGIN_FLAG)
        return fv_error_set(c->err, FV_ECONFIG, "%s: %s", loc, reason);
    return fv_error_set(c->err, FV_ECONFIG, "%s: %s.%s: %s", loc, f->section, f->key, reason);
}

static int out_of_memory(const load_ctx_t *c)
{
    return fv_error_set(c->err, FV_ENOMEM, "%s: out of memory while loading the configuration",
                        c->file);
}

/* ---- defaults -------------------------------------------------------------------------- */

static int apply_defaults(fv_config_t *cfg)
{
    /* the modules' own settings structs first: their defaults land there */
    for (int m = 0; m < FV_MOD_COUNT; m++) {
        size_t size = fv__modules_builtin(m)->settings_size;
        if (size && !(cfg->modules[m] = fv_try_malloc(size)))
            return FV_ENOMEM;
        if (size)
            memset(cfg->modules[m], 0, size);
    }
    for (size_t i = 0; i < fv_config_field_count(); i++) {
        const fv_cfg_field_t *f = &fv_config_fields(NULL)[i];
        if (f->type == FV_CFG_T_STR) {
            if (set_str(cfg, f, f->def_str, strlen(f->def_str)) < 0)
                return FV_ENOMEM;
        } else {
            set_num(cfg, f, f->def_num);
        }
    }
    return 0;
}

/* ---- TOML ------------------------------------------------------------------------------ */

static bool key_is(const fv_toml_node_t *n, const char *s)
{
    return n->key && n->key_len == strlen(s) && memcmp(n->key, s, n->key_len) == 0;
}

/* A key fit to print: TOML allows any text in quoted keys, including NULs and newlines. */
static const char *printable_key(const fv_toml_node_t *n, char *buf, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < n->key_len && j + 1 < len; i++) {
        unsigned char ch = (unsigned char)n->key[i];
        buf[j++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[j] = '\0';
    return buf;
}

static int apply_range(load_ctx_t *c, size_t idx, int64_t v)
{
    const fv_cfg_field_t *f = &fv_config_fields(NULL)[idx];
    if (v < f->min || v > f->max)
        return refuse(c, idx, "%" PRId64 " is not in %" PRId64 "..%" PRId64, v, f->min, f->max);
    set_num(c->cfg, f, v);
    return 0;
}

static const char *expected_name(fv_cfg_type_t t)
{
    switch (t) {
    case FV_CFG_T_STR: return "a string";
    case FV_CFG_T_BOOL: return "a boolean";
    default: return "an integer";
    }
}

static int apply_node(load_ctx_t *c, size_t idx, const fv_toml_node_t *n)
{
    const fv_cfg_field_t *f = &fv_config_fields(NULL)[idx];
    c->origins[idx] = (origin_t){.kind = ORIGIN_FILE, .line = n->line};
    fv_toml_type_t want = f->type == FV_CFG_T_STR    ? FV_TOML_STRING
                          : f->type == FV_CFG_T_BOOL ? FV_TOML_BOOLEAN
                                                     : FV_TOML_INTEGER;
    if (n->type != want)
        return refuse(c, idx, "expected %s, got %s", expected_name(f->type),
                      fv_toml_type_name(n->type));
    switch (want) {
    case FV_TOML_STRING:
        if (memchr(n->str, '\0', n->str_len))
            return refuse(c, idx, "a NUL character is not allowed");
        return set_str(c->cfg, f, n->str, n->str_len) < 0 ? out_of_memory(c) : 0;
    case FV_TOML_BOOLEAN:
        set_num(c->cfg, f, n->boolean);
        return 0;
    default:
        return apply_range(c, idx, n->integer);
    }
}

static int apply_section(load_ctx_t *c, const char *section, const fv_toml_node_t *t)
{
    char kbuf[64];
    for (size_t i = 0; i < t->count; i++) {
        const fv_toml_node_t *n = &t->items[i];
        size_t idx = (size_t)-1;
        if (strlen(n->key) == n->key_len)
            idx = field_index(section, n->key);
        if (idx == (size_t)-1) {
            if (n->type == FV_TOML_TABLE)
                return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown section [%s.%s]", c->file,
                                    n->line, section, printable_key(n, kbuf, sizeof(kbuf)));
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown key '%s' in [%s]", c->file,
                                n->line, printable_key(n, kbuf, sizeof(kbuf)), section);
        }
        int rc = apply_node(c, idx, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool is_plain_section(const fv_toml_node_t *n)
{
    if (strlen(n->key) != n->key_len || strchr(n->key, '.'))
        return false;
    for (size_t i = 0; i < fv_config_field_count(); i++)
        if (strcmp(fv_config_fields(NULL)[i].section, n->key) == 0)
            return true;
    return false;
}

static int apply_services(load_ctx_t *c, const fv_toml_node_t *t)
{
    char kbuf[64], section[96];
    for (size_t i = 0; i < t->count; i++) {
        const fv_toml_node_t *n = &t->items[i];
        printable_key(n, kbuf, sizeof(kbuf));
        if (n->type != FV_TOML_TABLE)
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown key '%s' in [services]",
                                c->file, n->line, kbuf);
        if (strlen(n->key) != n->key_len || fv_component_index(n->key) < 0)
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown section [services.%s]",
                                c->file, n->line, kbuf);
        snprintf(section, sizeof(section), "services.%s", n->key);
        int rc = apply_section(c, section, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int apply_toml(load_ctx_t *c, const fv_toml_node_t *root)
{
    char kbuf[64];
    for (size_t i = 0; i < root->count; i++) {
        const fv_toml_node_t *n = &root->items[i];
        int rc;
        printable_key(n, kbuf, sizeof(kbuf));
        if (n->type != FV_TOML_TABLE && (key_is(n, "services") || is_plain_section(n)))
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: [%s] must be a table, got %s",
                                c->file, n->line, kbuf, fv_toml_type_name(n->type));
        if (n->type != FV_TOML_TABLE)
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown key '%s' outside any section",
                                c->file, n->line, kbuf);
        if (key_is(n, "services"))
            rc = apply_services(c, n);
        else if (is_plain_section(n))
            rc = apply_section(c, n->key, n);
        else
            return fv_error_set(c->err, FV_ECONFIG, "%s:%u: unknown section [%s]", c->file,
                                n->line, kbuf);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- environment ----------------------------------------------------------------------- */

static bool valid_utf8(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        size_t n;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            n = 1, cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            n = 2, cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            n = 3, cp = b & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            unsigned char cb = (unsigned char)s[i + k];
            if ((cb & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cb & 0x3f);
        }
        /* overlong forms, surrogates and values past Unicode would not load back from TOML */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

static bool parse_int64(const char *s, int64_t *out)
{
    if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int apply_env_value(load_ctx_t *c, size_t idx, const char *name, size_t name_len,
                           const char *value)
{
    const fv_cfg_field_t *f = &fv_config_fields(NULL)[idx];
    c->origins[idx] = (origin_t){.kind = ORIGIN_ENV, .name = name, .name_len = name_len};
    int64_t v;
    switch (f->type) {
    case FV_CFG_T_STR:
        if (!valid_utf8(value, strlen(value)))
            return refuse(c, idx, "not valid UTF-8");
        return set_str(c->cfg, f, value, strlen(value)) < 0 ? out_of_memory(c) : 0;
    case FV_CFG_T_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            v = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            v = 0;
        else
            return refuse(c, idx, "expected true, false, 1 or 0, got \"%s\"", value);
        set_num(c->cfg, f, v);
        return 0;
    default:
        if (!parse_int64(value, &v))
            return refuse(c, idx, "expected an integer, got \"%s\"", value);
        return apply_range(c, idx, v);
    }
}

static bool name_is(const char *var, size_t name_len, const char *want)
{
    return strlen(want) == name_len && memcmp(var, want, name_len) == 0;
}

/* FINALVERSE_<SECTION>__<KEY> first, in the order given; the conventional short name
 * (FINALVERSE_LOG_LEVEL) after, so it wins over the long form as config.h promises. Variables
 * without "__" that are not ours (FINALVERSE_CONFIG is the caller's) are left alone: other tools share the prefix. */
static int apply_env(load_ctx_t *c, char *const *env)
{
    static const size_t prefix_len = sizeof(ENV_PREFIX) - 1;
    if (!env)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        for (char *const *e = env; *e; e++) {
            const char *var = *e;
            if (strncmp(var, ENV_PREFIX, prefix_len) != 0)
                continue;
            const char *eq = strchr(var, '=');
            if (!eq)
                continue;
            size_t name_len = (size_t)(eq - var);
            const char *value = eq + 1;
            size_t idx = (size_t)-1;
            if (pass == 1) {
                if (name_is(var, name_len, "FINALVERSE_LOG_LEVEL"))
                    idx = field_index("general", "log_level");
                if (idx != (size_t)-1) {
                    int rc = apply_env_value(c, idx, var, name_len, value);
                    if (rc < 0)
                        return rc;
                }
                continue;
            }
            bool has_sep = false;
            for (size_t i = prefix_len; i + 1 < name_len; i++)
                if (var[i] == '_' && var[i + 1] == '_')
                    has_sep = true;
            if (!has_sep)
                continue;
            for (size_t i = 0; i < fv_config_field_count() && idx == (size_t)-1; i++) {
                char want[ENV_NAME_MAX];
                if (fv_config_env_name(&fv_config_fields(NULL)[i], want, sizeof(want)) == 0 &&
                    strlen(want) == name_len && memcmp(want, var, name_len) == 0)
                    idx = i;
            }
            if (idx == (size_t)-1)
                return fv_error_set(c->err, FV_ECONFIG, "unknown variable %.*s", (int)name_len,
                                    var);
            int rc = apply_env_value(c, idx, var, name_len, value);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- command line ---------------------------------------------------------------------- */

static int apply_overrides(load_ctx_t *c, const fv_config_overrides_t *ov)
{
    if (!ov)
        return 0;
    if (ov->port_base >= 0) {
        size_t idx = field_index("general", "port_base");
        c->origins[idx] = (origin_t){.kind = ORIGIN_FLAG, .name = "--port-base", .name_len = 11};
        int rc = apply_range(c, idx, ov->port_base);
        if (rc < 0)
            return rc;
    }
    if (ov->log_level) {
        size_t idx = field_index("general", "log_level");
        c->origins[idx] = (origin_t){.kind = ORIGIN_FLAG, .name = "--log-level", .name_len = 11};
        if (set_str(c->cfg, &fv_config_fields(NULL)[idx], ov->log_level, strlen(ov->log_level)) < 0)
            return out_of_memory(c);
    }
    return 0;
}

/* ---- cross-key rules ------------------------------------------------------------------- */

static int check_one_of(load_ctx_t *c, const char *section, const char *key,
                        const char *const *allowed)
{
    size_t idx = field_index(section, key);
    const char *v = get_str(c->cfg, &fv_config_fields(NULL)[idx]);
    char list[128] = "";
    for (const char *const *a = allowed; *a; a++) {
        if (strcmp(v, *a) == 0)
            return 0;
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", a == allowed ? "" : ", ", *a);
    }
    return refuse(c, idx, "\"%s\" is not one of %s", v, list);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* schemes: NULL-terminated; "" in the list allows the empty string. */
static int check_scheme(load_ctx_t *c, const char *section, const char *key,
                        const char *const *schemes, const char *hint)
{
    size_t idx = field_index(section, key);
    const char *v = get_str(c->cfg, &fv_config_fields(NULL)[idx]);
    for (const char *const *s = schemes; *s; s++) {
        if (**s == '\0' ? *v == '\0' : starts_with(v, *s))
            return 0;
    }
    /* the message will be logged: never with a password in it */
    size_t start = 0, pass = fv_config_url_password(v, &start);
    if (pass)
        return refuse(c, idx, "\"%.*s***%s\" is not %s", (int)start, v, v + start + pass, hint);
    return refuse(c, idx, "\"%s\" is not %s", v, hint);
}

/* http://host[:port][/]: the only form a registry address takes. Host may be a bracketed IPv6
 * literal (brackets stripped in host). Port defaults to 80. */
static bool parse_http_hostport(const char *url, char *host, size_t host_len, int *port)
{
    if (!starts_with(url, "http://"))
        return false;
    const char *h = url + 7, *hend, *p;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (!hend)
            return false;
        p = hend + 1;
        h++;
    } else {
        hend = h + strcspn(h, ":/");
        p = hend;
    }
    if (hend == h || (size_t)(hend - h) >= host_len)
        return false;
    for (const char *q = h; q < hend; q++)
        if ((unsigned char)*q <= ' ' || *q == '@' || *q == '?' || *q == '#')
            return false;
    long n = 80;
    if (*p == ':') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        n = 0;
        while (*p >= '0' && *p <= '9' && n <= 65535)
            n = n * 10 + (*p++ - '0');
        if (n < 1 || n > 65535)
            return false;
    }
    if (*p == '/')
        p++;
    if (*p != '\0')
        return false;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    *port = (int)n;
    return true;
}

static int check_ports(load_ctx_t *c)
{
    const fv_config_t *cfg = c->cfg;
    size_t base_idx = field_index("general", "port_base");
    for (int i = FV_MOD_COUNT - 1; i >= 0; i--) {
        if (cfg->services[i].port == 0 && cfg->general.port_base &&
            cfg->general.port_base + i > 65535)
            return refuse(c, base_idx, "%d + %d exceeds 65535", cfg->general.port_base, i);
    }
    for (int a = 0; a < FV_MOD_COUNT; a++) {
        for (int b = a + 1; b < FV_MOD_COUNT; b++) {
            int pa = fv_config_port(cfg, a), pb = fv_config_port(cfg, b);
            if (pa != pb)
                continue;
            /* name where the clash was written: b's port, else a's, else the port base */
            char sec[96], loc[160];
            size_t idx;
            snprintf(sec, sizeof(sec), "services.%s", fv_components[b].name);
            idx = field_index(sec, "port");
            if (cfg->services[b].port == 0) {
                snprintf(sec, sizeof(sec), "services.%s", fv_components[a].name);
                idx = cfg->services[a].port ? field_index(sec, "port") : base_idx;
            }
            origin_loc(c, idx, loc, sizeof(loc));
            return fv_error_set(c->err, FV_ECONFIG,
                                "%s: services.%s.port and services.%s.port both use %d", loc,
                                fv_components[a].name, fv_components[b].name, pa);
        }
    }
    return 0;
}

/* The registry's token rules, checked here so that `config check` and every process refuse
 * them with the file and line, not only the registry when it starts. Messages never quote a
 * secret. */
static int check_registry_acl(load_ctx_t *c)
{
    registry_acl_t acl;
    fv_error_t aerr;
    if (registry_acl_parse(&acl, "allow", c->cfg->registry.acl_tokens, &aerr) < 0) {
        const char *m = aerr.msg;
        static const char prefix[] = "registry.acl_tokens: ";
        if (strncmp(m, prefix, sizeof(prefix) - 1) == 0)
            m += sizeof(prefix) - 1;
        return refuse(c, field_index("registry", "acl_tokens"), "%s", m);
    }
    const char *token = c->cfg->registry.token;
    int rc = token && *token ? registry_acl_add_admin(&acl, token) : 0;
    registry_acl_dispose(&acl);
    if (rc == FV_EINVAL)
        return refuse(c, field_index("registry", "token"),
                      "a token is %d..%d characters of letters, digits and - _ . ~ + /",
                      REGISTRY_TOKEN_MIN, REGISTRY_TOKEN_MAX);
    return 0;
}

static int validate(load_ctx_t *c)
{
    static const char *const db[] = {"sqlite:", "postgres://", "postgresql://", NULL};
    static const char *const redis[] = {"memory:", "redis://", NULL};
    static const char *const vector[] = {"embedded:", "qdrant://", "http://", "https://", NULL};
    static const char *const storage[] = {"file:", "s3://", NULL};
    int rc;
    if ((rc = check_one_of(c, "general", "log_level", log_levels)) < 0 ||
        (rc = check_one_of(c, "general", "log_format", log_formats)) < 0 ||
        (rc = check_one_of(c, "registry", "acl_default_policy", acl_policies)) < 0)
        return rc;
    if ((rc = check_scheme(c, "database", "url", db,
                           "sqlite:<path>, postgres://... or postgresql://...")) < 0 ||
        (rc = check_scheme(c, "redis", "url", redis, "memory: or redis://...")) < 0 ||
        (rc = check_scheme(c, "vector", "url", vector,
                           "embedded:, qdrant://..., http://... or https://...")) < 0 ||
        (rc = check_scheme(c, "storage", "url", storage, "file:<dir> or s3://...")) < 0)
        return rc;
    size_t idx = field_index("registry", "url");
    const char *reg = c->cfg->registry.url;
    char host[256];
    int port;
    if (*reg && !parse_http_hostport(reg, host, sizeof(host), &port))
        return refuse(c, idx, "\"%s\" is not empty or http://host:port", reg);
    if ((rc = check_registry_acl(c)) < 0)
        return rc;
    if (!*c->cfg->general.bind)
        return refuse(c, field_index("general", "bind"), "must not be empty");
    if (!*c->cfg->general.data_dir)
        return refuse(c, field_index("general", "data_dir"), "must not be empty");
    /* the nine named regions are the world today: a size that says otherwise would be ignored */
    const char *const axes[] = {"regions_x", "regions_y"};
    const uint32_t sizes[] = {c->cfg->world.regions_x, c->cfg->world.regions_y};
    for (size_t i = 0; i < 2; i++)
        if (sizes[i] != FV_WORLD_SIDE)
            return refuse(c, field_index("world", axes[i]), "%u: the world is the %d x %d grid "
                          "of its named regions; no other size yet", sizes[i], FV_WORLD_SIDE,
                          FV_WORLD_SIDE);
    return check_ports(c);
}

/* ---- loading --------------------------------------------------------------------------- */

static int load(const char *file, const char *text, size_t len, bool have_text,
                char *const *env, const fv_config_overrides_t *ov, fv_config_t **out,
                fv_error_t *err)
{
    load_ctx_t c = {.file = file, .err = err};
    fv_toml_node_t *root = NULL;
    int rc;
    c.cfg = fv_calloc(1, sizeof(*c.cfg));
    c.origins = fv_calloc(fv_config_field_count(), sizeof(*c.origins));
    if (apply_defaults(c.cfg) < 0) {
        rc = out_of_memory(&c);
        goto fail;
    }
    if (have_text) {
        fv_toml_error_t terr;
        rc = fv_toml_parse(text, len, &root, &terr);
        if (rc == FV_ENOMEM) {
            rc = out_of_memory(&c);
            goto fail;
        }
        if (rc < 0) {
            rc = fv_error_set(err, FV_ECONFIG, "%s:%u:%u: %s", file, terr.line, terr.column,
                              terr.desc);
            goto fail;
        }
        if ((rc = apply_toml(&c, root)) < 0)
            goto fail;
    }
    if ((rc = apply_env(&c, env)) < 0 || (rc = apply_overrides(&c, ov)) < 0 ||
        (rc = validate(&c)) < 0)
        goto fail;
    if (!*c.cfg->general.advertise) {
        const char *bind = c.cfg->general.bind;
        if (set_str(c.cfg, &fv_config_fields(NULL)[field_index("general", "advertise")], bind,
                    strlen(bind)) < 0) {
            rc = out_of_memory(&c);
            goto fail;
        }
    }
    c.cfg->source = fv_try_malloc(strlen(file) + 1);
    if (!c.cfg->source) {
        rc = out_of_memory(&c);
        goto fail;
    }
    memcpy(c.cfg->source, file, strlen(file) + 1);
    fv_toml_free(root);
    fv_free(c.origins);
    *out = c.cfg;
    return 0;
fail:
    fv_toml_free(root);
    fv_free(c.origins);
    fv_config_free(c.cfg);
    return rc;
}

int fv_config_load_string(const char *name, const char *text, size_t len, char *const *env,
                          const fv_config_overrides_t *ov, fv_config_t **out, fv_error_t *err)
{
    return load(name ? name : "(string)", text, len, true, env, ov, out, err);
}

/* Reads the whole file under the size cap. 0 and *buf filled, or an FV_ECONFIG with the path
 * and reason. errno_out reports why fopen failed so the caller can tell "absent" apart. */
static int read_file(const char *path, fv_buf_t *buf, int *errno_out, fv_error_t *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *errno_out = errno;
        return fv_error_set(err, FV_ECONFIG, "%s: %s", path, strerror(errno));
    }
    *errno_out = 0;
    char chunk[16384];
    int rc = 0;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), fp);
        if (n > 0 && (rc = fv_buf_append(buf, chunk, n)) < 0)
            break;
        if (n < sizeof(chunk))
            break;
    }
    if (rc == FV_ETOOBIG)
        rc = fv_error_set(err, FV_ECONFIG, "%s: larger than %d bytes; is this a config file?",
                          path, CONFIG_MAX_FILE_BYTES);
    else if (rc < 0)
        rc = fv_error_set(err, FV_ENOMEM, "%s: out of memory reading the file", path);
    else if (ferror(fp))
        rc = fv_error_set(err, FV_ECONFIG, "%s: %s", path, strerror(errno));
    fclose(fp);
    return rc;
}

int fv_config_load(const char *path, char *const *env, const fv_config_overrides_t *ov,
                   fv_config_t **out, fv_error_t *err)
{
    const char *file = path ? path : "finalverse.toml";
    fv_buf_t buf;
    int open_errno = 0;
    fv_buf_init(&buf, CONFIG_MAX_FILE_BYTES);
    int rc = read_file(file, &buf, &open_errno, err);
    if (rc < 0) {
        fv_buf_dispose(&buf);
        if (!path && open_errno == ENOENT) {
            fv_error_clear(err);
            return load("(defaults)", NULL, 0, false, env, ov, out, err);
        }
        return rc;
    }
    fv_slice_t text = fv_buf_slice(&buf);
    rc = load(file, text.ptr, text.len, true, env, ov, out, err);
    fv_buf_dispose(&buf);
    return rc;
}

void fv_config_free(fv_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < fv_config_field_count(); i++) {
        const fv_cfg_field_t *f = &fv_config_fields(NULL)[i];
        if (f->type == FV_CFG_T_STR && (!f->owner || cfg->modules[f->owner - 1]))
            fv_free(*(char **)field_ptr(cfg, f));
    }
    for (int m = 0; m < FV_MOD_COUNT; m++)
        fv_free(cfg->modules[m]);
    fv_free(cfg->source);
    fv_free(cfg);
}

/* ---- lookups --------------------------------------------------------------------------- */

int fv_config_port(const fv_config_t *cfg, int idx)
{
    if (idx < 0 || idx >= FV_MOD_COUNT)
        return -1;
    if (cfg->services[idx].port)
        return cfg->services[idx].port;
    return fv_component_port(idx, cfg->general.port_base);
}

void fv_config_registry_addr(const fv_config_t *cfg, char *host, size_t host_len, int *port)
{
    if (host_len == 0)
        return;
    if (cfg->registry.url && *cfg->registry.url &&
        parse_http_hostport(cfg->registry.url, host, host_len, port))
        return;
    /* The local registry listens on bind; a wildcard is not an address one can connect to. */
    const char *bind = cfg->general.bind ? cfg->general.bind : "";
    if (!*bind || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0 ||
        strcmp(bind, "[::]") == 0)
        bind = "127.0.0.1";
    snprintf(host, host_len, "%s", bind);
    *port = fv_config_port(cfg, FV_MOD_SERVICE_REGISTRY);
}
