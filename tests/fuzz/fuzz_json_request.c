/* fuzz_json_request.c - arbitrary request bodies through fv_json_parse / fv_json_parse_object
 * and the typed getters every handler validates with. Anything accepted must dump back to JSON
 * that parses again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_fields(const json_t *obj)
{
    static const char *const keys[] = {"name", "id", "x", "count", "enabled", "", "a"};
    fv_error_t err;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *s = NULL;
        int64_t n = 0;
        bool b = false;
        if (fv_json_get_str(obj, keys[i], &s, &err) == 0 && !s)
            __builtin_trap();
        (void)fv_json_get_int(obj, keys[i], INT64_MIN, INT64_MAX, &n, &err);
        (void)fv_json_get_int(obj, keys[i], 0, 10, &n, &err);
        (void)fv_json_get_bool(obj, keys[i], &b, &err);
    }
    /* every key the body itself has, so the "present" paths are reached too */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        const char *s;
        int64_t n;
        bool b;
        (void)fv_json_get_str(obj, k, &s, &err);
        (void)fv_json_get_int(obj, k, -5, 5, &n, &err);
        (void)fv_json_get_bool(obj, k, &b, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_slice_t text = fv_slice((const char *)data, size);
    fv_error_t err;
    json_t *any = fv_json_parse(text, &err);
    json_t *obj = fv_json_parse_object(text, &err);
    if (obj && !json_is_object(obj))
        __builtin_trap();
    if (any) {
        fv_buf_t out;
        fv_buf_init(&out, 0);
        if (fv_json_dump(any, &out) == 0) {
            json_t *back = fv_json_parse(fv_buf_slice(&out), &err);
            if (!back)
                __builtin_trap();
            json_decref(back);
        }
        fv_buf_dispose(&out);
    }
    if (obj)
        read_fields(obj);
    json_decref(any);
    json_decref(obj);
    return 0;
}
