/* test_terrain.c - terrain patches: golden samples, edges shared exactly between neighbouring
 * patches within a region and across region borders, fv_terrain_height_at equal to the patch
 * at sample points and bilinear between them, normals, and the wire encoding (round trip within
 * the quantization step; truncated and garbage input refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "world3d/terrain.h"

#define SEED 42

static fv_terrain_patch_t pa, pb;
static uint8_t wire[FV_TERRAIN_WIRE_BYTES];

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static void golden_samples(void **state)
{
    (void)state;
    int r = fv_region_index("whispering-wilds");
    assert_true(r >= 0);
    fv_cell_t c = {r, 3, 5};
    fv_terrain_patch_generate(SEED, &c, &pa);
    assert_int_equal(pa.cell.region, r);
    /* 27.3328, 36.4802, 44.2472; min 27.3328, max 45.7401 */
    assert_int_equal(fbits(FV_PATCH_AT(&pa, 0, 0)), 0x41daa99b);
    assert_int_equal(fbits(FV_PATCH_AT(&pa, 17, 40)), 0x4211ebba);
    assert_int_equal(fbits(FV_PATCH_AT(&pa, 64, 64)), 0x4230fd20);
    assert_int_equal(fbits(pa.min), 0x41daa99b);
    assert_int_equal(fbits(pa.max), 0x4236f5dd);
    assert_int_equal(dbits(fv_terrain_height_at(SEED, r, 200.75, 333.5)),
                     UINT64_C(0x4040ba7b40000000));
}

/* a's east column is b's west column (or south row and north row), bit for bit */
static void assert_shared(const fv_cell_t *a, const fv_cell_t *b, int east)
{
    fv_terrain_patch_generate(SEED, a, &pa);
    fv_terrain_patch_generate(SEED, b, &pb);
    for (int k = 0; k < FV_PATCH_SIDE; k++) {
        if (east)
            assert_int_equal(fbits(FV_PATCH_AT(&pa, 64, k)), fbits(FV_PATCH_AT(&pb, 0, k)));
        else
            assert_int_equal(fbits(FV_PATCH_AT(&pa, k, 64)), fbits(FV_PATCH_AT(&pb, k, 0)));
    }
}

static void edges_shared(void **state)
{
    (void)state;
    for (int r = 0; r < FV_WORLD_REGIONS; r++) {
        fv_cell_t a = {r, 4, 9}, e = {r, 5, 9}, s = {r, 4, 10};
        assert_shared(&a, &e, 1);
        assert_shared(&a, &s, 0);
    }
    /* across region borders, west to east and north to south */
    for (int gy = 0; gy < FV_WORLD_SIDE; gy++) {
        for (int gx = 0; gx < FV_WORLD_SIDE; gx++) {
            int r = fv_region_at_grid(gx, gy);
            int re = fv_region_at_grid(gx + 1, gy), rs = fv_region_at_grid(gx, gy + 1);
            for (int k = 0; k < FV_REGION_CELLS; k += 5) {
                if (re >= 0) {
                    fv_cell_t a = {r, 15, k}, b = {re, 0, k};
                    assert_shared(&a, &b, 1);
                    assert_true(fv_terrain_height_at(SEED, r, 1024.0, k * 64.0 + 7.5) ==
                                fv_terrain_height_at(SEED, re, 0.0, k * 64.0 + 7.5));
                }
                if (rs >= 0) {
                    fv_cell_t a = {r, k, 15}, b = {rs, k, 0};
                    assert_shared(&a, &b, 0);
                }
            }
        }
    }
}

static void height_at_matches_the_patch(void **state)
{
    (void)state;
    int r = fv_region_index("terra-nova");
    fv_cell_t c = {r, 7, 2};
    fv_terrain_patch_generate(SEED, &c, &pa);
    double x0 = c.cx * FV_CELL_SIZE_M, z0 = c.cy * FV_CELL_SIZE_M;
    for (int j = 0; j < FV_PATCH_SIDE; j++)
        for (int i = 0; i < FV_PATCH_SIDE; i++)
            assert_true(fv_terrain_height_at(SEED, r, x0 + i, z0 + j) ==
                        (double)FV_PATCH_AT(&pa, i, j));
    /* between samples: bilinear from the patch, computed the documented way */
    const double fr[][2] = {{0.5, 0.5}, {0.25, 0.75}, {0.999, 0.001}, {0.1, 0.0}, {0.0, 0.6}};
    for (int i = 0; i < FV_PATCH_SIDE - 1; i += 7) {
        for (int j = 0; j < FV_PATCH_SIDE - 1; j += 5) {
            for (size_t k = 0; k < sizeof(fr) / sizeof(fr[0]); k++) {
                double h00 = FV_PATCH_AT(&pa, i, j), h10 = FV_PATCH_AT(&pa, i + 1, j);
                double h01 = FV_PATCH_AT(&pa, i, j + 1), h11 = FV_PATCH_AT(&pa, i + 1, j + 1);
                /* the fraction as the position carries it: 455.999 - 455 is not 0.999 */
                double x = x0 + i + fr[k][0], z = z0 + j + fr[k][1];
                double fx = x - (x0 + i), fz = z - (z0 + j);
                double a = h00 + (h10 - h00) * fx, b = h01 + (h11 - h01) * fx;
                assert_true(fv_terrain_height_at(SEED, r, x, z) == a + (b - a) * fz);
            }
        }
    }
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
        assert_true(pa.h[k] >= pa.min && pa.h[k] <= pa.max);
}

static void refusals_and_normals(void **state)
{
    (void)state;
    assert_true(isnan(fv_terrain_height_at(SEED, -1, 1, 1)));
    assert_true(isnan(fv_terrain_height_at(SEED, FV_WORLD_REGIONS, 1, 1)));
    assert_true(isnan(fv_terrain_height_at(SEED, 0, NAN, 1)));
    assert_true(isnan(fv_terrain_height_at(SEED, 0, 1, -INFINITY)));
    assert_true(isnan(fv_terrain_height_at(SEED, 0, 1e7, 1)));
    double n[3] = {9, 9, 9};
    assert_int_equal(fv_terrain_normal(SEED, 0, NAN, 0, n), FV_EINVAL);
    assert_true(n[0] == 9);
    for (double x = 0.5; x < 1024; x += 97.25) {
        assert_int_equal(fv_terrain_normal(SEED, 4, x, 1024 - x, n), 0);
        assert_true(fabs(n[0] * n[0] + n[1] * n[1] + n[2] * n[2] - 1.0) < 1e-12);
        assert_true(n[1] > 0);
    }
}

static void wire_round_trip(void **state)
{
    (void)state;
    for (int r = 0; r < FV_WORLD_REGIONS; r += 4) {
        fv_cell_t c = {r, 15, 1};
        fv_terrain_patch_generate(SEED, &c, &pa);
        assert_int_equal(fv_terrain_encode(&pa, wire), FV_TERRAIN_WIRE_BYTES);
        assert_memory_equal(wire, "FVTP", 4);
        assert_int_equal(wire[4], FV_TERRAIN_VERSION);
        assert_int_equal(wire[5], 65);
        assert_int_equal(wire[6] | wire[7] << 8, r);
        assert_int_equal(wire[8], 15);
        assert_int_equal(wire[9], 1);
        fv_error_t err;
        assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &pb, &err), 0);
        assert_int_equal(pb.cell.region, r);
        assert_int_equal(pb.cell.cx, 15);
        assert_int_equal(pb.cell.cy, 1);
        assert_true(pb.min == pa.min && pb.max == pa.max);
        double tol = ((double)pa.max - pa.min) / 131070.0 + 1e-4;
        for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
            assert_true(fabs((double)pb.h[k] - pa.h[k]) <= tol);
    }
    /* a flat patch: every q is 0 and comes back exact */
    pa.min = pa.max = 3.5f;
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
        pa.h[k] = 3.5f;
    fv_terrain_encode(&pa, wire);
    assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &pb, NULL), 0);
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++)
        assert_true(pb.h[k] == 3.5f);
}

static void decoder_refuses(void **state)
{
    (void)state;
    fv_cell_t c = {2, 0, 0};
    fv_terrain_patch_generate(SEED, &c, &pa);
    fv_terrain_encode(&pa, wire);
    fv_error_t err;
    for (size_t len = 0; len < sizeof(wire); len += len < 64 ? 1 : 997)
        assert_int_equal(fv_terrain_decode(wire, len, &pb, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "bytes"));
    static uint8_t longer[FV_TERRAIN_WIRE_BYTES + 1];
    memcpy(longer, wire, sizeof(wire));
    assert_int_equal(fv_terrain_decode(longer, sizeof(longer), &pb, NULL), FV_EINVAL);
    /* one bad header field at a time */
    const struct {
        size_t at;
        uint8_t v;
        const char *says;
    } bad[] = {
        {0, 'X', "magic"},  {4, 0, "version"}, {4, 99, "version"}, {5, 64, "side"},
        {10, 1, "reserved"}, {6, 200, "region"}, {8, 16, "cell"},   {9, 255, "cell"},
        {15, 0x7f, "range"}, /* min's exponent all ones: NaN or infinity */
        {19, 0xc7, "range"}, /* max far below min */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint8_t keep = wire[bad[k].at];
        wire[bad[k].at] = bad[k].v;
        wire[14] = bad[k].at == 15 ? 0x80 : wire[14];
        assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &pb, &err), FV_EINVAL);
        assert_non_null(strstr(err.msg, bad[k].says));
        wire[bad[k].at] = keep;
        fv_terrain_encode(&pa, wire);
    }
    assert_int_equal(fv_terrain_decode(wire, sizeof(wire), &pb, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_samples),
        cmocka_unit_test(edges_shared),
        cmocka_unit_test(height_at_matches_the_patch),
        cmocka_unit_test(refusals_and_normals),
        cmocka_unit_test(wire_round_trip),
        cmocka_unit_test(decoder_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
