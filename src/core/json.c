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
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15);
    if (json_dump_callback(j, dump_cb, out, flags) != 0)
        return out->max && out->len >= out->max ? FV_ETOOBIG : FV_ENOMEM;
    return 0;
}

/* 1 for the bytes JSON needs escaped: controls, '"' and '\\'. A table keeps the scan of plain
 * runs (nearly all of every string we write) to one load and one test per byte. */
static const unsigned char needs_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

int fv_json_put_str(fv_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    int rc = fv_buf_append(out, "\"", 1);
    while (rc == 0) {
        const unsigned char *run = p;
        while (*p && !needs_escape[*p])
            p++;
        if (p > run)
            rc = fv_buf_append(out, run, (size_t)(p - run));
        if (rc || !*p)
            break;
        char esc[6] = {'\\', (char)*p, '0', '0', hex[*p >> 4], hex[*p & 15]};
        size_t n = 2;
        if (*p < 0x20) {
            esc[1] = 'u';
            n = 6;
        }
        rc = fv_buf_append(out, esc, n);
        p++;
    }
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
