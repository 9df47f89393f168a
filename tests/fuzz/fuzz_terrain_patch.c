/* fuzz_terrain_patch.c - the terrain patch wire decoder from arbitrary bytes. Whatever it
 * accepts must be a patch whose heights lie within its header's min..max and whose encoding
 * decodes to the same patch again (the encoding is a fixed point after one round). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "world3d/terrain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fv_terrain_patch_t a, b;
static uint8_t again[FV_TERRAIN_WIRE_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_error_t err;
    if (fv_terrain_decode(data, size, &a, &err) != 0)
        return 0;
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++) {
        if (!(a.h[k] >= a.min && a.h[k] <= a.max))
            abort();
    }
    fv_terrain_encode(&a, again);
    if (fv_terrain_decode(again, sizeof(again), &b, &err) != 0 || b.min != a.min ||
        b.max != a.max || memcmp(&b.cell, &a.cell, sizeof(a.cell)) != 0)
        abort();
    return 0;
}
