/* world_move.c - movement validation (DESIGN.md section 13, Players): a requested place is
 * checked against the last accepted one and the time between them. Work happens in world
 * coordinates (the regions side by side, grid.h's gx, gy times 1024 m), so crossing a border is
 * no special case: the result is put back into the frame of whichever region it lands in. Only
 * the horizontal distance counts against the speed cap: height is the ground's business (a
 * player is put on it, and kept under a ceiling over it). */
#include "services/world-engine/world_rules.h"

#define WORLD_GROUND_SLACK_M 0.01

#include <math.h>
#include <stdlib.h>

static void refuse(const world_place_t *last, const char *why, world_move_result_t *out)
{
    out->status = WORLD_MOVE_REFUSED;
    out->place = *last;
    out->reason = why;
}

static double norm_yaw(double yaw)
{
    double y = fmod(yaw, 2 * M_PI);
    if (y < 0)
        y += 2 * M_PI;
    return y >= 2 * M_PI ? 0 : y;
}

static double clampd(double v, double lo, double hi, bool *hit)
{
    if (v < lo) {
        *hit = true;
        return lo;
    }
    if (v > hi) {
        *hit = true;
        return hi;
    }
    return v;
}

void world_move_validate(const world_place_t *last, uint64_t last_ms, const world_place_t *want,
                         uint64_t now_ms, const world_move_limits_t *lim, world_ground_fn ground,
                         void *ground_data, world_move_result_t *out)
{
    const fv_region_info_t *from = fv_region_at(last->region);
    if (!from) {
        refuse(last, "unknown_region", out);
        return;
    }
    if (!isfinite(want->x) || !isfinite(want->y) || !isfinite(want->z) ||
        !isfinite(want->yaw)) {
        refuse(last, "non_finite", out);
        return;
    }
    int to_index = want->region < 0 ? last->region : want->region;
    const fv_region_info_t *to = fv_region_at(to_index);
    if (!to) {
        refuse(last, "unknown_region", out);
        return;
    }
    if (abs(to->gx - from->gx) > 1 || abs(to->gy - from->gy) > 1) {
        refuse(last, "not_adjacent", out);
        return;
    }

    const char *reason = NULL;
    /* world coordinates; clamped to the world first, so huge finite values cannot overflow
     * the distance below */
    double world_m = FV_WORLD_SIDE * FV_REGION_SIZE_M;
    double edge = world_m - 1e-6;
    bool off = false;
    double tx = clampd(to->gx * FV_REGION_SIZE_M + want->x, 0, edge, &off);
    double tz = clampd(to->gy * FV_REGION_SIZE_M + want->z, 0, edge, &off);
    if (off)
        reason = "out_of_world";
    double lx = from->gx * FV_REGION_SIZE_M + last->x;
    double lz = from->gy * FV_REGION_SIZE_M + last->z;

    double dt = now_ms > last_ms ? (double)(now_ms - last_ms) / 1000.0 : 0.0;
    if (dt > lim->max_interval_s)
        dt = lim->max_interval_s;
    double allowed = lim->max_speed_mps * dt + lim->slack_m;
    double dx = tx - lx, dz = tz - lz;
    double dist = sqrt(dx * dx + dz * dz);
    if (dist > allowed) {
        double k = allowed / dist;
        tx = lx + dx * k;
        tz = lz + dz * k;
        /* the cut point lies between two points of the world: still inside it */
        tx = clampd(tx, 0, edge, &off);
        tz = clampd(tz, 0, edge, &off);
        if (!reason)
            reason = "too_fast";
    }

    int gx = (int)(tx / FV_REGION_SIZE_M), gy = (int)(tz / FV_REGION_SIZE_M);
    out->place.region = fv_region_at_grid(gx, gy);
    if (out->place.region < 0) {    /* a world with holes: stay */
        refuse(last, "out_of_world", out);
        return;
    }
    out->place.x = tx - gx * FV_REGION_SIZE_M;
    out->place.z = tz - gy * FV_REGION_SIZE_M;
    double g = ground ? ground(ground_data, out->place.region, out->place.x, out->place.z) : 0;
    if (!isfinite(g))
        g = 0;
    double y = want->y;
    if (y < g) {
        /* a client that read the ground from a patch has it rounded (to a float, to the
         * decimals of JSON): within a centimetre it stands on the ground, not under it */
        if (!reason && y < g - WORLD_GROUND_SLACK_M)
            reason = "below_ground";
        y = g;
    } else if (y > g + lim->max_above_ground_m) {
        y = g + lim->max_above_ground_m;
        if (!reason)
            reason = "too_high";
    }
    out->place.y = y;
    out->place.yaw = norm_yaw(want->yaw);
    out->status = reason ? WORLD_MOVE_CORRECTED : WORLD_MOVE_ACCEPTED;
    out->reason = reason ? reason : "ok";
}
