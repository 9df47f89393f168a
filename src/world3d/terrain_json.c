/* terrain_json.c - renders a patch as JSON by hand: 4,225 numbers through a jansson tree would
 * cost several times the answer itself. */
#include "world3d/terrain_json.h"

#include <stdio.h>

#include "core/json.h"

/* "%.9g" of a float: the shortest fixed precision that always reads back to the same float. */
static int put_height(fv_buf_t *out, float h)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%.9g", (double)h);
    return fv_buf_append(out, num, (size_t)n);
}

int fv_terrain_json(const fv_terrain_patch_t *p, fv_biome_t biome, fv_buf_t *out)
{
    const fv_region_info_t *r = fv_region_at(p->cell.region);
    int rc;
    if ((rc = fv_buf_reserve(out, 12 * FV_PATCH_SAMPLES)) < 0 ||
        (rc = fv_buf_append_str(out, "{\"region\":")) < 0 ||
        (rc = fv_json_put_str(out, r ? r->id : "")) < 0 ||
        (rc = fv_buf_printf(out, ",\"cell\":{\"x\":%d,\"y\":%d},\"biome\":", p->cell.cx,
                            p->cell.cy)) < 0 ||
        (rc = fv_json_put_str(out, fv_biome_name(biome))) < 0 ||
        (rc = fv_buf_printf(out, ",\"version\":%d,\"side\":%d,\"min\":", FV_TERRAIN_VERSION,
                            FV_PATCH_SIDE)) < 0 ||
        (rc = put_height(out, p->min)) < 0 || (rc = fv_buf_append_str(out, ",\"max\":")) < 0 ||
        (rc = put_height(out, p->max)) < 0 ||
        (rc = fv_buf_append_str(out, ",\"heights\":[")) < 0)
        return rc;
    for (size_t k = 0; k < FV_PATCH_SAMPLES; k++) {
        if ((k > 0 && (rc = fv_buf_append(out, ",", 1)) < 0) || (rc = put_height(out, p->h[k])) < 0)
            return rc;
    }
    return fv_buf_append_str(out, "]}");
}
