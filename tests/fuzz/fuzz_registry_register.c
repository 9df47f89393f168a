/* fuzz_registry_register.c - register bodies and durations from arbitrary bytes: validation
 * must refuse or accept without crashing, and what it accepts must register, dump and restore
 * to the same views. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "registry/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dur[64];
    size_t n = size < sizeof(dur) - 1 ? size : sizeof(dur) - 1;
    memcpy(dur, data, n);
    dur[n] = '\0';
    uint64_t ms;
    (void)registry_parse_duration(dur, &ms);

    fv_error_t err;
    json_t *j = fv_json_parse(fv_slice((const char *)data, size), &err);
    if (!j)
        return 0;
    registry_instance_t *inst = NULL;
    if (registry_instance_from_json(j, 30000, &inst, &err) == 0) {
        registry_catalog_t cat, back;
        registry_catalog_init(&cat, 30000);
        registry_catalog_init(&back, 30000);
        (void)registry_catalog_register(&cat, inst, 0, NULL);
        json_t *doc = registry_catalog_dump(&cat);
        size_t skipped = 0;
        if (registry_catalog_restore(&back, doc, 0, &skipped, &err) != 0 || skipped != 0)
            __builtin_trap();
        /* The byte count is an upper bound of the file: what makes the file always load. */
        fv_buf_t out;
        fv_buf_init(&out, 0);
        if (fv_json_dump(doc, &out) != 0 || out.len > cat.bytes || cat.bytes != back.bytes)
            __builtin_trap();
        /* The file's writer says what the dump says. */
        fv_buf_reset(&out);
        if (registry_persist_render(&cat, &out, &err) != 0 || out.len > cat.bytes)
            __builtin_trap();
        json_t *written = fv_json_parse(fv_buf_slice(&out), &err);
        if (!written || !json_equal(written, doc))
            __builtin_trap();
        json_decref(written);
        fv_buf_dispose(&out);
        json_t *a = registry_json_agent_services(&cat);
        json_t *b = registry_json_agent_services(&back);
        if (!json_equal(a, b))
            __builtin_trap();
        json_decref(a);
        json_decref(b);
        json_decref(doc);
        registry_catalog_dispose(&back);
        registry_catalog_dispose(&cat);
    }
    json_decref(j);
    return 0;
}
