/* entity.h - what moves in the world: players, the Echoes, creatures. A plain struct that the
 * world engine owns and updates, the spatial index finds and the streaming code encodes; its
 * position is region-local metres as in grid.h (x east, y up, z south). */
#ifndef FV_WORLD3D_ENTITY_H
#define FV_WORLD3D_ENTITY_H

#include <stdint.h>

typedef enum fv_entity_kind {
    FV_ENTITY_PLAYER = 1,
    FV_ENTITY_ECHO = 2,
    FV_ENTITY_CREATURE = 3,
    FV_ENTITY_OBJECT = 4,
} fv_entity_kind_t;

typedef struct fv_entity {
    uint64_t id;                /* unique in the world, never 0 */
    fv_entity_kind_t kind;
    int region;                 /* index of grid.h's regions */
    double x, y, z;             /* region-local metres */
    float yaw;                  /* radians, 0 facing -z (north), growing clockwise */
    float vx, vy, vz;           /* metres per second */
    uint32_t state;             /* kind-specific flags (idle, singing, ...) */
    /* kept by the spatial index (spatial.h): 1 + the world cell it is filed under (0: none, so
     * that a zeroed entity is in no cell) and its place in that cell's list */
    int32_t sp_cell;
    uint32_t sp_slot;
    /* kept by the streaming code: the stream tick of its last change, and where its encoding
     * of tick enc_tick lies in that tick's arena (encoded once a tick, copied per cell) */
    uint64_t changed_tick;
    uint64_t enc_tick;
    uint32_t enc_off, enc_len;
} fv_entity_t;

#endif
