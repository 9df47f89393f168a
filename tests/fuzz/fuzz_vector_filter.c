/* fuzz_vector_filter.c - the vector search filter: any bytes that parse as JSON go through the
 * shape check, and a filter that passes is evaluated against a few payloads. Neither may
 * crash, leak or recurse without bound. */
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "store/vector_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_error_t err;
    json_t *f = fv_json_parse(fv_slice((const char *)data, size), &err);
    if (!f)
        return 0;
    if (fv_vector_filter_check(f, &err) == 0) {
        static const char *payloads[] = {
            "{}",
            "{\"kind\":\"lore\",\"level\":3,\"tags\":[\"a\",1,true],\"m\":{\"r\":\"n\"}}",
            "{\"level\":2.5,\"public\":false,\"a\":{\"b\":{\"c\":[1,2,3]}}}",
        };
        for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
            json_t *p = json_loads(payloads[i], 0, NULL);
            (void)fv_vector_filter_match(f, p);
            json_decref(p);
        }
        (void)fv_vector_filter_match(f, NULL);
    }
    json_decref(f);
    return 0;
}
