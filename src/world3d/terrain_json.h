/* terrain_json.h - a terrain patch as the JSON that GET .../cells/{x}/{y}/terrain answers (and
 * that streaming may send in cell_enter, so both say the same thing):
 *   {"region":"terra-nova","cell":{"x":3,"y":5},"biome":"forest","version":1,"side":65,
 *    "min":27.3328419,"max":45.7401085,"heights":[...65*65 numbers, row-major, z rows...]}
 * Every number is the float sample printed with 9 significant digits, which reads back to the
 * same float. */
#ifndef FV_WORLD3D_TERRAIN_JSON_H
#define FV_WORLD3D_TERRAIN_JSON_H

#include "core/buf.h"
#include "world3d/biome.h"
#include "world3d/terrain.h"

/* Appends p's JSON to out: 0, or FV_ETOOBIG / FV_ENOMEM from out (its contents then partial). */
FV_MUST_USE int fv_terrain_json(const fv_terrain_patch_t *p, fv_biome_t biome, fv_buf_t *out);

#endif
