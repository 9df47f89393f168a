/* toml_shim.h - TOML text to a plain C tree, for config loading.
 *
 * The parsing is toml++'s; this header only exposes its result to C. Every table entry keeps
 * its key and the line it was written on, so callers can name "file:line: key" in messages.
 * No C++ type or exception crosses this boundary. The tree is read-only for callers and
 * freed in one call. Not a general TOML library: no writing, no lookup by path beyond
 * fv_toml_find(). */
#ifndef FV_CONFIG_TOML_SHIM_H
#define FV_CONFIG_TOML_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fv_toml_type {
    FV_TOML_TABLE = 0,
    FV_TOML_ARRAY,
    FV_TOML_STRING,
    FV_TOML_INTEGER,
    FV_TOML_FLOAT,
    FV_TOML_BOOLEAN,
    FV_TOML_DATE,
    FV_TOML_TIME,
    FV_TOML_DATETIME,
} fv_toml_type_t;

typedef struct fv_toml_node fv_toml_node_t;

struct fv_toml_node {
    fv_toml_type_t type;
    char *key;                 /* entry name inside its table; NULL for the root and array items */
    size_t key_len;            /* quoted keys may hold NULs: compare lengths too */
    unsigned line;             /* 1-based line of the key (of the value for array items);
                                  0 unknown */
    unsigned column;
    char *str;                 /* FV_TOML_STRING: the bytes, NUL-terminated; may hold NULs */
    size_t str_len;
    int64_t integer;           /* FV_TOML_INTEGER */
    double fp;                 /* FV_TOML_FLOAT */
    bool boolean;              /* FV_TOML_BOOLEAN */
    fv_toml_node_t *items;     /* FV_TOML_TABLE entries in document order, or FV_TOML_ARRAY items */
    size_t count;
};

/* Where and why parsing failed. */
typedef struct fv_toml_error {
    unsigned line;
    unsigned column;
    char desc[200];            /* toml++'s description */
} fv_toml_error_t;

/* Parses text[0..len). 0 and *out (the root table; free with fv_toml_free), FV_EPROTO for
 * malformed TOML (err filled), or FV_ENOMEM (err->desc says so). *out is untouched on failure.
 * Memory for the tree comes from fv_try_malloc(), so fault injection reaches it. */
int fv_toml_parse(const char *text, size_t len, fv_toml_node_t **out, fv_toml_error_t *err);

void fv_toml_free(fv_toml_node_t *root);   /* NULL-safe */

/* "table", "array", "string", "integer", "float", "boolean", "date", "time", "date-time". */
const char *fv_toml_type_name(fv_toml_type_t type);

/* The entry named key in table t, or NULL (also when t is not a table). */
const fv_toml_node_t *fv_toml_find(const fv_toml_node_t *t, const char *key);

#ifdef __cplusplus
}
#endif

#endif
