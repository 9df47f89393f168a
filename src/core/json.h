/* json.h - small helpers over jansson for the shapes we read and write everywhere.
 *
 * Parsing outside input goes through fv_json_parse(), which turns jansson's error (with line and
 * column) into an fv_error_t a person can act on and refuses duplicate keys. Nesting depth is
 * bounded by jansson itself (2048 levels); size is bounded before the text gets here (HTTP bodies
 * by http.max_body_bytes). */
#ifndef FV_CORE_JSON_H
#define FV_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

/* Parses text as one JSON value. On failure returns NULL and sets err (FV_EINVAL) with the
 * line, column and jansson's reason. The caller owns the returned reference. */
json_t *fv_json_parse(fv_slice_t text, fv_error_t *err);

/* Parses an object; FV_EINVAL with a message when text is not a JSON object. */
json_t *fv_json_parse_object(fv_slice_t text, fv_error_t *err);

/* Compact serialisation appended to out; 0 or a negative code. */
FV_MUST_USE int fv_json_dump(const json_t *j, fv_buf_t *out);

/* Appends s as a quoted JSON string, escaping what JSON requires. For hot responses whose
 * shape is fixed, where building a jansson tree would cost more than the answer itself. */
FV_MUST_USE int fv_json_put_str(fv_buf_t *out, const char *s);

/* Typed field readers for request validation. Each returns 0 and sets *out, FV_ENOENT when the
 * key is absent (*out untouched, so preset defaults survive), or FV_EINVAL (with err naming
 * the field) when present with the wrong type or out of range. */
int fv_json_get_str(const json_t *obj, const char *key, const char **out, fv_error_t *err);
int fv_json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    fv_error_t *err);
int fv_json_get_bool(const json_t *obj, const char *key, bool *out, fv_error_t *err);

#endif
