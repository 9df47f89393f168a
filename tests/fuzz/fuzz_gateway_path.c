/* fuzz_gateway_path.c - the api-gateway's path normalisation, [gateway] routes parser and
 * CORS list matching from arbitrary bytes. The first byte picks the case. A normalised path must start with '/', hold
 * no "." or ".." segment and no "//", and normalising it again must give it back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/api-gateway/gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *in, size_t len)
{
    char out[512], again[512];
    size_t n = 0, m = 0;
    if (gw_path_normalise(in, len, out, sizeof(out), &n) < 0)
        return;
    if (n == 0 || out[0] != '/' || strlen(out) != n || strstr(out, "//") ||
        strstr(out, "/./") || strstr(out, "/../"))
        abort();
    if (gw_path_normalise(out + 1, n - 1, again, sizeof(again), &m) < 0 || m != n ||
        memcmp(out, again, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (data[0] & 1) {
        check_path(s, size - 1);
    } else {
        gw_route_t routes[8];
        fv_error_t err;
        int n = gw_routes_parse(s, routes, 8, &err);
        if (n > 8)
            abort();
        for (int i = 0; i < n; i++)
            if (routes[i].prefix[0] != '/' || !routes[i].service[0])
                abort();
    }
    (void)gw_request_id_ok(s, size - 1);
    /* the CORS lists, with a client's Origin or Access-Control-Request-Headers as the item and
     * the configured list as the other half of the input */
    const char *half = memchr(s, '\n', size - 1);
    if (half) {
        fv_slice_t item = fv_slice(half + 1, (size_t)(s + size - 1 - (half + 1)));
        char *list = strndup(s, (size_t)(half - s));
        (void)gw_cors_list_has(list, item, data[0] & 2);
        (void)gw_cors_headers_allowed(list, item);
        free(list);
    }
    free(s);
    return 0;
}
