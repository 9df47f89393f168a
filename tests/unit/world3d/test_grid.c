/* test_grid.c - the default world's regions and cells: slugs the first viewer subscribes to,
 * positions to cells at the edges, refusal of NaN, infinities and outside positions, and
 * neighbours across region borders and at the world's edge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "world3d/grid.h"

static void regions_of_the_default_world(void **state)
{
    (void)state;
    const char *known[] = {"terra-nova", "whispering-wilds", "aethelgard", "technos-prime"};
    for (size_t i = 0; i < 4; i++)
        assert_true(fv_region_index(known[i]) >= 0);
    assert_string_equal(fv_region_at(fv_region_index("terra-nova"))->name, "Terra Nova");
    assert_int_equal(fv_region_index("atlantis"), -1);
    assert_int_equal(fv_region_index(NULL), -1);
    assert_null(fv_region_at(-1));
    assert_null(fv_region_at(FV_WORLD_REGIONS));
    for (int i = 0; i < FV_WORLD_REGIONS; i++) {
        const fv_region_info_t *r = fv_region_at(i);
        assert_int_equal(fv_region_at_grid(r->gx, r->gy), i);      /* each place once */
        assert_int_equal(fv_region_index(r->id), i);
    }
    assert_int_equal(fv_region_at_grid(3, 0), -1);
    assert_int_equal(fv_region_at_grid(0, -1), -1);
}

static void positions_to_cells(void **state)
{
    (void)state;
    int tn = fv_region_index("terra-nova");
    fv_cell_t c;
    assert_true(fv_cell_of(tn, 0, 0, &c));
    assert_int_equal(c.cx, 0);
    assert_int_equal(c.cy, 0);
    assert_true(fv_cell_of(tn, 63.999, 64.0, &c));
    assert_int_equal(c.cx, 0);
    assert_int_equal(c.cy, 1);
    assert_true(fv_cell_of(tn, 1023.999, 512, &c));
    assert_int_equal(c.cx, 15);
    assert_int_equal(c.cy, 8);
    /* the viewer's default position */
    assert_true(fv_cell_of(tn, 100, 200, &c));
    assert_int_equal(c.cx, 1);
    assert_int_equal(c.cy, 3);
    double x, z;
    fv_cell_center(&c, &x, &z);
    assert_true(x == 96.0 && z == 224.0);
    /* refused, with nothing written */
    fv_cell_t untouched = {-7, -7, -7};
    fv_cell_t d = untouched;
    assert_false(fv_cell_of(tn, 1024, 0, &d));       /* the east edge is the next region's */
    assert_false(fv_cell_of(tn, -0.001, 0, &d));
    assert_false(fv_cell_of(tn, NAN, 0, &d));
    assert_false(fv_cell_of(tn, 0, INFINITY, &d));
    assert_false(fv_cell_of(tn, -INFINITY, 0, &d));
    assert_false(fv_cell_of(99, 1, 1, &d));
    assert_int_equal(d.region, -7);
}

static void neighbours_cross_borders(void **state)
{
    (void)state;
    fv_cell_t out[8];
    /* inside a region: all 8, in order */
    fv_cell_t mid = {fv_region_index("terra-nova"), 5, 5};
    assert_int_equal(fv_cell_neighbours(&mid, out), 8);
    assert_int_equal(out[0].cx, 4);
    assert_int_equal(out[0].cy, 4);
    assert_int_equal(out[7].cx, 6);
    assert_int_equal(out[7].cy, 6);
    /* terra-nova's north-west corner: three of them in the regions to the north and west */
    fv_cell_t corner = {fv_region_index("terra-nova"), 0, 0};
    assert_int_equal(fv_cell_neighbours(&corner, out), 8);
    assert_int_equal(out[0].region, fv_region_at_grid(0, 0));
    assert_int_equal(out[0].cx, 15);
    assert_int_equal(out[0].cy, 15);
    assert_int_equal(out[1].region, fv_region_at_grid(1, 0));
    assert_int_equal(out[1].cx, 0);
    assert_int_equal(out[1].cy, 15);
    /* the world's north-west corner has 3 */
    fv_cell_t edge = {fv_region_at_grid(0, 0), 0, 0};
    assert_int_equal(fv_cell_neighbours(&edge, out), 3);
    /* every neighbour is a valid cell, and the relation is symmetric */
    for (int r = 0; r < FV_WORLD_REGIONS; r++) {
        for (int cy = 0; cy < FV_REGION_CELLS; cy++) {
            for (int cx = 0; cx < FV_REGION_CELLS; cx++) {
                fv_cell_t c = {r, cx, cy};
                size_t n = fv_cell_neighbours(&c, out);
                assert_true(n == 3 || n == 5 || n == 8);
                for (size_t i = 0; i < n; i++) {
                    assert_true(fv_cell_valid(&out[i]));
                    fv_cell_t back[8];
                    size_t m = fv_cell_neighbours(&out[i], back);
                    bool found = false;
                    for (size_t k = 0; k < m; k++)
                        found |= back[k].region == r && back[k].cx == cx && back[k].cy == cy;
                    assert_true(found);
                }
            }
        }
    }
    fv_cell_t bad = {0, 16, 0};
    assert_int_equal(fv_cell_neighbours(&bad, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(regions_of_the_default_world),
        cmocka_unit_test(positions_to_cells),
        cmocka_unit_test(neighbours_cross_borders),
    };
    return cmocka_run_group_tests_name("world3d/grid", tests, NULL, NULL);
}
