/* test_terrain_json.c - the JSON form of a patch: the documented shape, every height read
 * back as the same float, and a buffer ceiling refused rather than overrun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"
#include "world3d/terrain_json.h"

static fv_terrain_patch_t p;

static void shape_and_exact_heights(void **state)
{
    (void)state;
    fv_cell_t c = {fv_region_index("terra-nova"), 3, 5};
    fv_terrain_patch_generate(42, &c, &p);
    fv_biome_t b = fv_cell_biome(42, &c);
    fv_buf_t out;
    fv_buf_init(&out, 0);
    assert_int_equal(fv_terrain_json(&p, b, &out), 0);
    fv_error_t err;
    json_t *j = fv_json_parse(fv_buf_slice(&out), &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "region")), "terra-nova");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "cell"), "x")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "cell"), "y")), 5);
    assert_string_equal(json_string_value(json_object_get(j, "biome")), fv_biome_name(b));
    assert_int_equal(json_integer_value(json_object_get(j, "version")), FV_TERRAIN_VERSION);
    assert_true((float)json_number_value(json_object_get(j, "min")) == p.min);
    assert_true((float)json_number_value(json_object_get(j, "max")) == p.max);
    json_t *h = json_object_get(j, "heights");
    assert_int_equal(json_array_size(h), FV_PATCH_SAMPLES);
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
        assert_true((float)json_number_value(json_array_get(h, k)) == p.h[k]);
    json_decref(j);
    fv_buf_dispose(&out);
}

static void ceiling(void **state)
{
    (void)state;
    fv_buf_t out;
    fv_buf_init(&out, 1000);
    assert_int_equal(fv_terrain_json(&p, FV_BIOME_OCEAN, &out), FV_ETOOBIG);
    fv_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shape_and_exact_heights),
        cmocka_unit_test(ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
