/* fuzz_world_region.c - a saved region row from arbitrary bytes, as world_store.c reads one back
 * from the sql store. The input is taken as is, and (so the checks past the header are reached)
 * also spliced over a valid encoding from its first two bytes' offset on. A decode that succeeds
 * must give levels in 0..100 and a weather in range, and encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/world-engine/world_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *in, size_t len)
{
    static world_region_t r;
    static uint8_t again[WORLD_REGION_BLOB_BYTES];
    if (world_region_decode(in, len, &r) < 0)
        return;
    if (r.weather >= WORLD_WEATHER_COUNT)
        abort();
    for (int i = 0; i < WORLD_CELLS; i++) {
        const world_cell_t *c = &r.cells[i];
        const double lv[] = {c->harmony, c->corruption, c->flora, c->fauna};
        for (int k = 0; k < 4; k++)
            if (!(lv[k] >= 0 && lv[k] <= 100))
                abort();
    }
    world_region_encode(&r, again);
    /* -0.0 encodes as itself, so the bytes come back exactly */
    if (memcmp(again, in, WORLD_REGION_BLOB_BYTES) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t base[WORLD_REGION_BLOB_BYTES];
    static int ready;
    if (!ready) {
        static world_region_t r;
        world_region_init(&r, 42, 4, NULL);
        world_region_encode(&r, base);
        ready = 1;
    }
    check(data, size);
    if (size >= 2) {
        size_t off = ((size_t)data[0] << 8 | data[1]) % WORLD_REGION_BLOB_BYTES;
        static uint8_t spliced[WORLD_REGION_BLOB_BYTES];
        memcpy(spliced, base, sizeof(spliced));
        size_t n = size - 2 < sizeof(spliced) - off ? size - 2 : sizeof(spliced) - off;
        memcpy(spliced + off, data + 2, n);
        check(spliced, sizeof(spliced));
    }
    return 0;
}
