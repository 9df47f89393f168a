/* show.c - configuration back to TOML: the effective values (`finalverse config show`) and the
 * commented example that is committed as finalverse.toml. Both walk the schema in order, so
 * their output always lists every key and always loads back. Parsing is config.c's job. */
#include "config/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/schema.h"
#include "core/alloc.h"

/* A TOML basic string. Bytes >= 0x80 pass through: loaded values are UTF-8 already (toml++
 * checks files, config.c checks the environment). */
static int put_string(fv_buf_t *out, const char *s)
{
    int rc = fv_buf_append(out, "\"", 1);
    for (const char *p = s; rc == 0 && *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            rc = fv_buf_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            rc = fv_buf_printf(out, "\\u%04x", ch);
        else
            rc = fv_buf_append(out, p, 1);
    }
    return rc < 0 ? rc : fv_buf_append(out, "\"", 1);
}

/* URLs keep their shape but lose a password ("postgres://fv:***@db/fv"): show output is
 * pasted into tickets and chats. */
static int put_url_or_string(fv_buf_t *out, const fv_cfg_field_t *f, const char *s)
{
    size_t start = 0, pass = strcmp(f->key, "url") == 0 ? fv_config_url_password(s, &start) : 0;
    if (!pass)
        return put_string(out, s);
    size_t len = strlen(s) - pass + 3;
    char *masked = fv_try_malloc(len + 1);
    if (!masked)
        return FV_ENOMEM;
    memcpy(masked, s, start);
    memcpy(masked + start, "***", 3);
    strcpy(masked + start + 3, s + start + pass);
    int rc = put_string(out, masked);
    fv_free(masked);
    return rc;
}

/* A comment line: control characters would end the comment early, so they become '?'. */
static int put_comment(fv_buf_t *out, const char *prefix, const char *text)
{
    int rc = fv_buf_append_str(out, prefix);
    for (const char *p = text; rc == 0 && *p; p++) {
        unsigned char ch = (unsigned char)*p;
        char c = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        rc = fv_buf_append(out, &c, 1);
    }
    return rc < 0 ? rc : fv_buf_append(out, "\n", 1);
}

static int put_number(fv_buf_t *out, const fv_cfg_field_t *f, const void *p)
{
    switch (f->type) {
    case FV_CFG_T_INT: return fv_buf_printf(out, "%d", *(const int *)p);
    case FV_CFG_T_U32:
    case FV_CFG_T_MS: return fv_buf_printf(out, "%" PRIu32, *(const uint32_t *)p);
    case FV_CFG_T_SIZE: return fv_buf_printf(out, "%zu", *(const size_t *)p);
    case FV_CFG_T_U64: return fv_buf_printf(out, "%" PRIu64, *(const uint64_t *)p);
    case FV_CFG_T_BOOL: return fv_buf_append_str(out, *(const bool *)p ? "true" : "false");
    case FV_CFG_T_STR: break;
    }
    return FV_EINVAL;
}

static int put_section_header(fv_buf_t *out, const fv_cfg_field_t *f, bool with_doc)
{
    int rc = fv_buf_append(out, "\n", 1);
    if (rc == 0 && with_doc)
        rc = fv_buf_printf(out, "# %s\n", fv_config_section_doc(f->section));
    if (rc == 0)
        rc = fv_buf_printf(out, "[%s]\n", f->section);
    return rc;
}

int fv_config_show(const fv_config_t *cfg, fv_buf_t *out)
{
    int rc = put_comment(out, "# effective configuration from ", cfg->source ? cfg->source : "");
    const char *section = NULL;
    for (size_t i = 0; rc == 0 && i < fv_config_field_count(); i++) {
        const fv_cfg_field_t *f = &fv_config_fields(NULL)[i];
        const void *p = fv_config_field_cptr(cfg, f);
        if (!section || strcmp(section, f->section) != 0) {
            section = f->section;
            if ((rc = put_section_header(out, f, false)) < 0)
                break;
        }
        if ((rc = fv_buf_printf(out, "%s = ", f->key)) < 0)
            break;
        if (f->type == FV_CFG_T_STR) {
            const char *s = *(char *const *)p ? *(char *const *)p : "";
            rc = f->secret && *s ? put_string(out, "***") : put_url_or_string(out, f, s);
        } else {
            rc = put_number(out, f, p);
        }
        if (rc == 0)
            rc = fv_buf_append(out, "\n", 1);
    }
    return rc;
}

int fv_config_example(fv_buf_t *out)
{
    int rc = fv_buf_append_str(
        out,
        "# finalverse.toml - every setting at its default, one comment line per key.\n"
        "#\n"
        "# Generated from the schema in src/config/schema.c by fv_config_example();\n"
        "# a unit test checks that every key is listed here. Loading order: built-in defaults,\n"
        "# this file, then environment variables FINALVERSE_<SECTION>__<KEY> (dots and hyphens\n"
        "# become \"__\" and \"_\", upper case: FINALVERSE_SERVICES__SONG_ENGINE__PORT), then\n"
        "# FINALVERSE_LOG_LEVEL and FINALVERSE_PLUGIN_DIR, then command-line flags.\n"
        "# Durations are integers in milliseconds (keys ending in _ms), sizes integers in bytes\n"
        "# (keys ending in _bytes). Unknown sections and keys are refused.\n");
    const char *section = NULL;
    for (size_t i = 0; rc == 0 && i < fv_config_field_count(); i++) {
        const fv_cfg_field_t *f = &fv_config_fields(NULL)[i];
        if (!section || strcmp(section, f->section) != 0) {
            section = f->section;
            if ((rc = put_section_header(out, f, true)) < 0)
                break;
        }
        if ((rc = put_comment(out, "# ", f->doc)) < 0 ||
            (rc = fv_buf_printf(out, "%s = ", f->key)) < 0)
            break;
        if (f->type == FV_CFG_T_STR) {
            rc = put_string(out, f->def_str);
        } else {
            int v = (int)f->def_num;
            uint32_t u32 = (uint32_t)f->def_num;
            size_t sz = (size_t)f->def_num;
            uint64_t u64 = (uint64_t)f->def_num;
            bool b = f->def_num != 0;
            const void *p = f->type == FV_CFG_T_INT    ? (const void *)&v
                            : f->type == FV_CFG_T_SIZE ? (const void *)&sz
                            : f->type == FV_CFG_T_U64  ? (const void *)&u64
                            : f->type == FV_CFG_T_BOOL ? (const void *)&b
                                                       : (const void *)&u32;
            rc = put_number(out, f, p);
        }
        if (rc == 0)
            rc = fv_buf_append(out, "\n", 1);
    }
    return rc;
}
