/* schema.h - the table of every finalverse.toml key: section, name, type, range, default,
 * where it lives in fv_config_t, a one-line doc and whether it is a secret.
 *
 * Defaults, TOML application, environment overrides, `config show`, the example file and the
 * documentation test all read this one table, so a key added here is everywhere at once.
 * Cross-key rules (port clashes, enumerations, URL schemes) are in config.c, not here. */
#ifndef FV_CONFIG_SCHEMA_H
#define FV_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum fv_cfg_type {
    FV_CFG_T_STR,    /* char *, owned by the struct */
    FV_CFG_T_INT,    /* int */
    FV_CFG_T_U32,    /* uint32_t count */
    FV_CFG_T_MS,     /* uint32_t duration in milliseconds; key ends in _ms */
    FV_CFG_T_SIZE,   /* size_t in bytes; key ends in _bytes */
    FV_CFG_T_U64,    /* uint64_t (TOML integers are signed, so 0..INT64_MAX) */
    FV_CFG_T_BOOL,   /* bool */
} fv_cfg_type_t;

typedef struct fv_cfg_field {
    const char *section;   /* "http", "services.song-engine"; a module's rows leave it NULL */
    const char *key;       /* "max_body_bytes" */
    fv_cfg_type_t type;
    size_t offset;         /* into fv_config_t, or into the owning module's settings struct */
    int64_t min, max;      /* numeric range, inclusive */
    int64_t def_num;       /* numeric and bool default */
    const char *def_str;   /* string default */
    const char *doc;       /* one line, for comments and docs */
    bool secret;           /* masked by fv_config_show() when non-empty */
    int owner;             /* 0: a field of fv_config_t; i + 1: of module i's settings */
} fv_cfg_field_t;

/* A module's own settings, as its descriptor declares them (STYLE.md sec. 10):
 *     static const fv_cfg_field_t gateway_settings[] = {
 *         FV_CFG_MS("upstream_timeout_ms", gateway_settings_t, upstream_timeout_ms,
 *                   1, 86400000, 10000, "deadline for a proxied request"),
 *     };
 * The rows get their section and owner when the process's key table is assembled. */
#define FV_CFG_NUM_(t, k, type_, member, lo, hi, def, d)                                   \
    {.key = k, .type = t, .offset = offsetof(type_, member), .min = lo, .max = hi,         \
     .def_num = def, .doc = d}
#define FV_CFG_INT(k, type_, member, lo, hi, def, d)                                       \
    FV_CFG_NUM_(FV_CFG_T_INT, k, type_, member, lo, hi, def, d)
#define FV_CFG_U32(k, type_, member, lo, hi, def, d)                                       \
    FV_CFG_NUM_(FV_CFG_T_U32, k, type_, member, lo, hi, def, d)
#define FV_CFG_MS(k, type_, member, lo, hi, def, d)                                        \
    FV_CFG_NUM_(FV_CFG_T_MS, k, type_, member, lo, hi, def, d)
#define FV_CFG_SIZE(k, type_, member, lo, hi, def, d)                                      \
    FV_CFG_NUM_(FV_CFG_T_SIZE, k, type_, member, lo, hi, def, d)
#define FV_CFG_BOOL(k, type_, member, def, d)                                              \
    FV_CFG_NUM_(FV_CFG_T_BOOL, k, type_, member, 0, 1, def, d)
#define FV_CFG_STR(k, type_, member, def, d)                                               \
    {.key = k, .type = FV_CFG_T_STR, .offset = offsetof(type_, member), .def_str = def, .doc = d}

/* Every key of the process, grouped by section, in the order files and `show` list them: the
 * process-wide sections, the sections the modules declare (their descriptors' settings), the
 * [services.<name>] sections, the stores and the world. Assembled once, on first use. */
const fv_cfg_field_t *fv_config_fields(size_t *count);
size_t fv_config_field_count(void);

/* Where f's value lives in cfg (in fv_config_t, or in its module's settings struct). */
struct fv_config;
const void *fv_config_field_cptr(const struct fv_config *cfg, const fv_cfg_field_t *f);

/* One line describing a section, or "" for unknown names. */
const char *fv_config_section_doc(const char *section);

/* The environment variable that overrides f: FINALVERSE_<SECTION>__<KEY>, with dots in the
 * section path as "__", hyphens as "_", upper case. 0, or FV_ETOOBIG when it does not fit. */
FV_MUST_USE int fv_config_env_name(const fv_cfg_field_t *f, char *out, size_t out_len);

/* The password inside a URL's userinfo ("postgres://user:PASS@host/db"), so messages and
 * `show` can print the URL without it: 0 when there is none, else its length and *start. */
size_t fv_config_url_password(const char *url, size_t *start);

/* The example finalverse.toml: every section and key at its default, a comment line above
 * each. This is what the committed finalverse.toml holds. 0, FV_ENOMEM or FV_ETOOBIG. */
FV_MUST_USE int fv_config_example(fv_buf_t *out);

#endif
