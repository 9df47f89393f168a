/* json.c - jansson glue: parsing with readable errors, dumping into an fv_buf_t. */
#include "core/json.h"

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return fv_buf_append((fv_buf_t *)data, buffer, size) < 0 ? -1 : 0;
}

json_t *fv_json_parse(fv_slice_t text, fv_error_t *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(text.ptr ? text.ptr : "", text.len,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        fv_error_set(err, FV_EINVAL, "invalid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return NULL;
    }
    return j;
}

json_t *fv_json_parse_object(fv_slice_t text, fv_error_t *err)
{
    json_t *j = fv_json_parse(text, err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        fv_error_set(err, FV_EINVAL, "expected a JSON object");
        return NULL;
    }
    return j;
}

/* 15 significant digits: every double that came from a decimal of up to 15 digits prints back
 * as that decimal (2.513, not 2.5129999999999999), which is what clients compare against. */
int fv_json_dump(const json_t *j, fv_buf_t *out)
{
    if (json_dump_callback(j, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) != 0)
        return out->max && out->len >= out->max ? FV_ETOOBIG : FV_ENOMEM;
    return 0;
}

int fv_json_put_str(fv_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = fv_buf_append(out, "\"", 1);
    const char *run = s;
    for (; rc == 0 && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        /* Flush the plain run, then the escape. */
        if (s > run)
            rc = fv_buf_append(out, run, (size_t)(s - run));
        char esc[6] = {'\\', (char)ch, 0, 0, 0, 0};
        size_t n = 2;
        if (ch < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            n = 6;
        }
        if (rc == 0)
            rc = fv_buf_append(out, esc, n);
        run = s + 1;
    }
    if (rc == 0 && s > run)
        rc = fv_buf_append(out, run, (size_t)(s - run));
    if (rc == 0)
        rc = fv_buf_append(out, "\"", 1);
    return rc;
}

int fv_json_get_str(const json_t *obj, const char *key, const char **out, fv_error_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return FV_ENOENT;
    if (!json_is_string(v))
        return fv_error_set(err, FV_EINVAL, "field '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int fv_json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                    fv_error_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return FV_ENOENT;
    if (!json_is_integer(v))
        return fv_error_set(err, FV_EINVAL, "field '%s' must be an integer", key);
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return fv_error_set(err, FV_EINVAL, "field '%s': %lld is not in %lld..%lld", key,
                            (long long)n, (long long)min, (long long)max);
    *out = n;
    return 0;
}

int fv_json_get_bool(const json_t *obj, const char *key, bool *out, fv_error_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return FV_ENOENT;
    if (!json_is_boolean(v))
        return fv_error_set(err, FV_EINVAL, "field '%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}
