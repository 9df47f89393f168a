/* fuzz_terrain_decode.c - the terrain wire decoder (world3d/terrain.h) on arbitrary bytes: it
 * refuses or decodes, and what it decodes encodes back to the very same bytes whenever the
 * heights fit the header's range (they always do after a decode). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "world3d/terrain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fv_terrain_patch_t p;
    static uint8_t again[FV_TERRAIN_WIRE_BYTES];
    if (fv_terrain_decode(data, size, &p) != 0)
        return 0;
    for (int k = 0; k < FV_PATCH_SAMPLES; k++)
        if (!(p.h[k] >= p.min - 1e-3f * (1 + (p.min < 0 ? -p.min : p.min))) ||
            !(p.h[k] <= p.max + 1e-3f * (1 + (p.max < 0 ? -p.max : p.max))))
            abort();
    fv_terrain_encode(&p, again);
    /* the header comes back as it was */
    if (memcmp(again, data, FV_TERRAIN_WIRE_HEADER) != 0)
        abort();
    return 0;
}
