/* test_terrain.c - patches: neighbours share their edges (inside a region and across region
 * borders), the height between samples is the bilinear blend that equals the samples on them,
 * normals are unit vectors, the wire encoding comes back within its quantization step and its
 * decoder refuses every malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "world3d/terrain.h"

#define SEED 42
#define S FV_PATCH_SIDE

static fv_terrain_patch_t a, b;

static void shared_edges(void **state)
{
    (void)state;
    int tn = fv_region_index("terra-nova");
    /* east neighbour in the same region */
    fv_terrain_patch_generate(SEED, &(fv_cell_t){tn, 8, 8}, &a);
    fv_terrain_patch_generate(SEED, &(fv_cell_t){tn, 9, 8}, &b);
    for (int j = 0; j < S; j++)
        assert_true(a.h[j * S + S - 1] == b.h[j * S]);
    /* south neighbour */
    fv_terrain_patch_generate(SEED, &(fv_cell_t){tn, 8, 9}, &b);
    for (int i = 0; i < S; i++)
        assert_true(a.h[(S - 1) * S + i] == b.h[i]);
    /* across the border to the region east of terra-nova */
    const fv_region_info_t *r = fv_region_at(tn);
    int east = fv_region_at_grid(r->gx + 1, r->gy);
    assert_true(east >= 0);
    fv_terrain_patch_generate(SEED, &(fv_cell_t){tn, 15, 3}, &a);
    fv_terrain_patch_generate(SEED, &(fv_cell_t){east, 0, 3}, &b);
    for (int j = 0; j < S; j++)
        assert_true(a.h[j * S + S - 1] == b.h[j * S]);
    /* min and max bound the samples */
    for (int k = 0; k < FV_PATCH_SAMPLES; k++)
        assert_true(a.h[k] >= a.min && a.h[k] <= a.max);
    /* the same seed, the same patch; another seed, another */
    fv_terrain_patch_generate(SEED, &(fv_cell_t){tn, 15, 3}, &b);
    assert_memory_equal(a.h, b.h, sizeof(a.h));
    fv_terrain_patch_generate(SEED + 1, &(fv_cell_t){tn, 15, 3}, &b);
    assert_true(memcmp(a.h, b.h, sizeof(a.h)) != 0);
}

static void height_between_samples(void **state)
{
    (void)state;
    int region = 2;
    fv_cell_t c = {region, 5, 11};
    fv_terrain_patch_generate(SEED, &c, &a);
    for (int j = 0; j < S; j += 4)
        for (int i = 0; i < S; i += 4) {
            double x = c.cx * 64.0 + i, z = c.cy * 64.0 + j;
            assert_true(fv_terrain_height_at(SEED, region, x, z) == (double)a.h[j * S + i]);
        }
    /* halfway between four samples: their mean */
    double x = c.cx * 64.0 + 10.5, z = c.cy * 64.0 + 20.5;
    double mean = ((double)a.h[20 * S + 10] + a.h[20 * S + 11] + a.h[21 * S + 10] +
                   a.h[21 * S + 11]) / 4;
    assert_true(fabs(fv_terrain_height_at(SEED, region, x, z) - mean) < 1e-9);
    assert_true(isnan(fv_terrain_height_at(SEED, region, NAN, 1)));
    assert_true(isnan(fv_terrain_height_at(SEED, region, 1, INFINITY)));
    assert_true(isnan(fv_terrain_height_at(SEED, 99, 1, 1)));
}

static void normals(void **state)
{
    (void)state;
    fv_terrain_patch_generate(SEED, &(fv_cell_t){0, 0, 0}, &a);
    int corners[][2] = {{0, 0}, {S - 1, S - 1}, {32, 32}, {0, 40}};
    for (size_t k = 0; k < 4; k++) {
        float n[3];
        fv_terrain_normal(&a, corners[k][0], corners[k][1], n);
        double len = sqrt((double)n[0] * n[0] + (double)n[1] * n[1] + (double)n[2] * n[2]);
        assert_true(fabs(len - 1.0) < 1e-5);
        assert_true(n[1] > 0);   /* ground faces up */
    }
}

static uint8_t wire[FV_TERRAIN_WIRE_BYTES];

static void wire_round_trip_and_refusals(void **state)
{
    (void)state;
    fv_terrain_patch_generate(SEED, &(fv_cell_t){4, 7, 1}, &a);
    fv_terrain_encode(&a, wire);
    assert_memory_equal(wire, "FVT1", 4);
    assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &b), 0);
    assert_int_equal(b.cell.region, 4);
    assert_int_equal(b.cell.cx, 7);
    assert_int_equal(b.cell.cy, 1);
    double step = ((double)a.max - a.min) / 65535.0;
    for (int k = 0; k < FV_PATCH_SAMPLES; k++)
        assert_true(fabs((double)a.h[k] - b.h[k]) <= step / 2 + 1e-4);

    assert_int_equal(fv_terrain_decode(wire, sizeof(wire) - 1, &b), FV_EINVAL);
    assert_int_equal(fv_terrain_decode(wire, 0, &b), FV_EINVAL);
    uint8_t bad[FV_TERRAIN_WIRE_BYTES];
    struct {
        size_t at;
        uint8_t value;
    } cases[] = {{0, 'X'}, {4, 9}, {5, 16}, {6, 200}, {7, 1}, {11, 0x7f}, {15, 0xff}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        memcpy(bad, wire, sizeof(bad));
        bad[cases[k].at] = cases[k].value;
        if (cases[k].at == 11) {
            bad[10] = 0x80;   /* 0x7f80....: min = +infinity */
            bad[9] = bad[8] = 0;
        }
        if (cases[k].at == 15) {
            bad[14] = 0xff;   /* max = NaN */
        }
        assert_int_equal(fv_terrain_decode(bad, sizeof(bad), &b), FV_EINVAL);
    }
    /* min above max */
    memcpy(bad, wire, sizeof(bad));
    memcpy(bad + 8, wire + 12, 4);
    memcpy(bad + 12, wire + 8, 4);
    assert_int_equal(fv_terrain_decode(bad, sizeof(bad), &b), FV_EINVAL);
    /* a flat patch encodes and decodes */
    fv_terrain_patch_t flat = {.cell = {0, 0, 0}, .min = 5, .max = 5};
    for (int k = 0; k < FV_PATCH_SAMPLES; k++)
        flat.h[k] = 5;
    fv_terrain_encode(&flat, wire);
    assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &b), 0);
    assert_true(b.h[100] == 5.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_edges),
        cmocka_unit_test(height_between_samples),
        cmocka_unit_test(normals),
        cmocka_unit_test(wire_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
