/* test_world_codec.c - a region's saved form: round trip to the bit, and refusal of a wrong
 * length, magic, version, weather, or a level that is NaN or out of range, leaving the target
 * untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "services/world-engine/world_rules.h"

static void round_trip(void **state)
{
    (void)state;
    world_region_t *a = fv_calloc(1, sizeof(*a)), *b = fv_calloc(1, sizeof(*b));
    world_region_init(a, 42, 3, NULL);
    a->weather = WORLD_WEATHER_AURORA;
    a->weather_epoch = 123456789012ull;
    a->cells[17].warded_until_ms = 1700000000000ull;
    a->cells[255].biome = 7;
    uint8_t *blob = fv_malloc(WORLD_REGION_BLOB_BYTES);
    world_region_encode(a, blob);
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES, b), 0);
    assert_memory_equal(a, b, sizeof(*a));
    fv_free(blob);
    fv_free(a);
    fv_free(b);
}

static void refusals(void **state)
{
    (void)state;
    world_region_t *a = fv_calloc(1, sizeof(*a)), *b = fv_calloc(1, sizeof(*b));
    world_region_init(a, 1, 0, NULL);
    uint8_t *blob = fv_malloc(WORLD_REGION_BLOB_BYTES + 1);
    world_region_encode(a, blob);
    memset(b, 0xab, sizeof(*b));
    world_region_t *keep = fv_malloc(sizeof(*keep));
    memcpy(keep, b, sizeof(*b));
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES - 1, b), FV_EINVAL);
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES + 1, b), FV_EINVAL);
    assert_int_equal(world_region_decode(NULL, 0, b), FV_EINVAL);
    blob[0] = 'X';
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES, b), FV_EINVAL);
    blob[0] = 'F';
    blob[4] = 9;
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES, b), FV_EINVAL);
    blob[4] = WORLD_REGION_CODEC_VERSION;
    blob[8] = WORLD_WEATHER_COUNT;
    assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES, b), FV_EINVAL);
    blob[8] = 0;
    /* a level of the last cell: NaN, then 100.5 */
    size_t off = WORLD_REGION_BLOB_BYTES - 44 + 16;
    double bad[] = {NAN, 100.5, -1};
    for (int i = 0; i < 3; i++) {
        uint64_t v;
        memcpy(&v, &bad[i], 8);
        for (int k = 0; k < 8; k++)
            blob[off + k] = (uint8_t)(v >> (8 * k));
        assert_int_equal(world_region_decode(blob, WORLD_REGION_BLOB_BYTES, b), FV_EINVAL);
    }
    assert_memory_equal(b, keep, sizeof(*b));
    fv_free(keep);
    fv_free(blob);
    fv_free(a);
    fv_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
