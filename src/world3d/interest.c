/* interest.c - interest sets with one cell of hysteresis (interest.h). The new set is the old
 * one minus what is now too far, plus the square around the centre; both lists are kept
 * sorted so the merge is linear. */
#include "world3d/interest.h"

#include <stdlib.h>

void fv_interest_init(fv_interest_t *in, int radius)
{
    in->radius = radius < 0 ? 0 : radius > FV_INTEREST_MAX_RADIUS ? FV_INTEREST_MAX_RADIUS
                                                                   : radius;
    in->center = -1;
    in->count = 0;
}

int fv_cell_distance(int32_t a, int32_t b)
{
    int ax, ay, bx, by;
    fv_world_cell_xy(a, &ax, &ay);
    fv_world_cell_xy(b, &bx, &by);
    int dx = abs(ax - bx), dy = abs(ay - by);
    return dx > dy ? dx : dy;
}

int fv_interest_find(const fv_interest_t *in, int32_t cell)
{
    uint32_t lo = 0, hi = in->count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (in->cells[mid] == cell)
            return (int)mid;
        if (in->cells[mid] < cell)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void fv_interest_update(fv_interest_t *in, int32_t center, int32_t *entered, uint32_t *nentered,
                        int32_t *left, uint32_t *nleft)
{
    *nentered = *nleft = 0;
    /* what stays: within radius + 1 of the new centre */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < in->count; i++) {
        int32_t c = in->cells[i];
        if (center >= 0 && fv_cell_distance(c, center) <= in->radius + 1)
            in->cells[kept++] = c;
        else
            left[(*nleft)++] = c;
    }
    in->count = kept;
    in->center = center;
    if (center < 0)
        return;
    /* what enters: the square around the centre, less what is held already */
    int cx, cy;
    fv_world_cell_xy(center, &cx, &cy);
    for (int y = cy - in->radius; y <= cy + in->radius; y++) {
        for (int x = cx - in->radius; x <= cx + in->radius; x++) {
            int32_t c = fv_world_cell_at(x, y);
            if (c >= 0 && fv_interest_find(in, c) < 0)
                entered[(*nentered)++] = c;
        }
    }
    /* world cell indexes are region-major, so the square's cells are not ascending */
    qsort(entered, *nentered, sizeof(*entered), cmp_i32);
    /* merge the kept (ascending) and the entered (ascending) from the back */
    uint32_t i = kept, j = *nentered, k = kept + *nentered;
    while (j > 0) {
        if (i > 0 && in->cells[i - 1] > entered[j - 1])
            in->cells[--k] = in->cells[--i];
        else
            in->cells[--k] = entered[--j];
    }
    in->count = kept + *nentered;
}
