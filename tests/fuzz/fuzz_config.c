/* fuzz_config.c - libFuzzer target: arbitrary bytes as finalverse.toml text. Every input must
 * end in a config or a clean error, without leaks; a loaded config must also show and load
 * back (the round-trip fv_config_show() promises). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *const env[] = {NULL};
    fv_config_t *cfg = NULL;
    fv_error_t err;
    int rc = fv_config_load_string("fuzz.toml", (const char *)data, size, env, NULL, &cfg, &err);
    if (rc != 0) {
        if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
            abort();
        return 0;
    }
    fv_buf_t out;
    fv_buf_init(&out, 0);
    if (fv_config_show(cfg, &out) != 0)
        abort();
    fv_config_t *again = NULL;
    if (fv_config_load_string("show.toml", out.ptr, out.len, env, NULL, &again, &err) != 0)
        abort();
    fv_config_free(again);
    fv_buf_dispose(&out);
    fv_config_free(cfg);
    return 0;
}
