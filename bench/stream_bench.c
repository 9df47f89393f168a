/* stream_bench.c - the world's streaming tick at scale, on one core: ENTITIES entities spread
 * over the default world, CLIENTS of them players with a view (radius 3, the default budget),
 * MOVING percent of the entities stepping every tick (the players always). Prints the tick
 * time p50/p99 against the 100 ms of a 10 Hz tick, the bytes a client receives a second, and
 * the same for a full snapshot of every entity in view every tick (the baseline; ratio).
 * Then interest queries ("who is within 100 m") per second from the spatial index against a
 * scan of every entity (ratio). Terrain is left out of cell_enter (a one-time cost a cell,
 * measured by the terrain part).
 *   stream_bench [ENTITIES=100000] [CLIENTS=5000] [TICKS=100] [MOVING=10] [BUDGET=32768] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/alloc.h"
#include "core/time.h"
#include "world3d/stream.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static double unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static uint64_t bytes_sent;

static void on_send(void *data, fv_stream_client_t *c, const char *type, const char *json,
                    size_t len)
{
    (void)data;
    (void)c;
    (void)type;
    (void)json;
    bytes_sent += len;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void step(fv_entity_t *e)
{
    e->vx = (float)(unit() * 4 - 2);
    e->vz = (float)(unit() * 4 - 2);
    e->x = fmin(fmax(e->x + e->vx * 0.1, 0), FV_REGION_SIZE_M - 0.01);
    e->z = fmin(fmax(e->z + e->vz * 0.1, 0), FV_REGION_SIZE_M - 0.01);
    e->yaw = (float)(unit() * 6.28);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t nc = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000;
    int ticks = argc > 3 ? atoi(argv[3]) : 100;
    double moving = (argc > 4 ? atof(argv[4]) : 10) / 100.0;
    if (nc > n)
        nc = n;
    fv_stream_opts_t o = {.view_radius = 3,
                          .budget_bytes_per_s = argc > 5 ? (uint32_t)atoi(argv[5]) : 32768,
                          .enter_budget_bytes_per_s = 262144,
                          .max_message_bytes = 40960,
                          .baseline_ticks = 50,
                          .enters_per_tick = 4};
    fv_stream_hooks_t h = {.send = on_send};
    fv_stream_t *s = fv_stream_new(&o, &h);
    fv_entity_t *ents = fv_calloc(n, sizeof(*ents));
    for (size_t i = 0; i < n; i++) {
        ents[i].id = i + 1;
        ents[i].kind = i < nc ? FV_ENTITY_PLAYER : FV_ENTITY_CREATURE;
        ents[i].region = (int)(unit() * FV_WORLD_REGIONS);
        ents[i].x = unit() * FV_REGION_SIZE_M;
        ents[i].z = unit() * FV_REGION_SIZE_M;
        fv_stream_entity_changed(s, &ents[i]);
    }
    fv_stream_client_t **cl = fv_calloc(nc, sizeof(*cl));
    for (size_t i = 0; i < nc; i++)
        cl[i] = fv_stream_client_new(s, &ents[i], -1, NULL);
    /* warm up: every client's cells entered (4 a tick) */
    for (int t = 0; t < 20; t++)
        fv_stream_tick(s, 0.1, 1.0);

    double *times = fv_calloc((size_t)ticks, sizeof(*times));
    bytes_sent = 0;
    double snapshot = 0;
    int snapshots = 0;
    for (int t = 0; t < ticks; t++) {
        for (size_t i = 0; i < n; i++) {
            if (i < nc || unit() < moving) {
                step(&ents[i]);
                fv_stream_entity_changed(s, &ents[i]);
            }
        }
        /* CPU time of this thread: what the tick costs a core, not what other processes on a
         * shared machine took from it meanwhile */
        uint64_t c0 = fv_thread_cpu_ns();
        fv_stream_tick(s, 0.1, 1.0);
        times[t] = (double)(fv_thread_cpu_ns() - c0) * 1e-9;
        if (t % 10 == 0) {          /* the baseline, sampled (it costs a whole encoding) */
            for (size_t i = 0; i < nc; i += 10)
                snapshot += (double)fv_stream_snapshot_bytes(s, cl[i]);
            snapshots += (int)((nc + 9) / 10);
        }
    }
    if (getenv("STREAM_TICKS")) {
        for (int t = 0; t < ticks; t++)
            printf("tick %d: %.2f ms\n", t, times[t] * 1e3);
    }
    qsort(times, (size_t)ticks, sizeof(*times), cmp_double);
    double p50 = times[ticks / 2] * 1e3, p99 = times[(ticks * 99) / 100] * 1e3;
    double per_client = (double)bytes_sent / (double)nc / (ticks * 0.1);
    double snap_per_client = snapshot / snapshots * 10.0;
    const fv_stream_stats_t *st = fv_stream_stats(s);
    printf("entities %zu, clients %zu (view radius 3, budget %u B/s), %.0f%% of the rest moving"
           " each tick, %d ticks\n",
           n, nc, o.budget_bytes_per_s, moving * 100, ticks);
    printf("tick CPU time p50 %.2f ms, p99 %.2f ms: %.1f%% of one core at 10 Hz (target <= 25%%)\n",
           p50, p99, p50 / 100.0 * 100.0);
    printf("bytes per client per second: deltas %.0f, full snapshot every tick %.0f "
           "(ratio %.2fx fewer)\n",
           per_client, snap_per_client, snap_per_client / per_client);
    printf("fragments encoded %llu, used %llu (%.1f clients share each), deferred %llu\n",
           (unsigned long long)st->fragments_encoded, (unsigned long long)st->fragments_used,
           st->fragments_encoded ? (double)st->fragments_used / (double)st->fragments_encoded
                                 : 0,
           (unsigned long long)st->deferred);

    /* interest queries: within 100 m of a random point, the index against a scan */
    const fv_spatial_t *sp = fv_stream_spatial(s);
    fv_entity_t **out = fv_calloc(n, sizeof(*out));
    size_t found_index = 0, found_scan = 0, q = 0;
    double t0 = now_s();
    for (; now_s() - t0 < 1.0; q++) {
        int r = (int)(unit() * FV_WORLD_REGIONS);
        double x = unit() * FV_REGION_SIZE_M, z = unit() * FV_REGION_SIZE_M;
        found_index += fv_spatial_near(sp, r, x, z, 100, out, n);
    }
    double index_qps = (double)q / (now_s() - t0);
    size_t qs = 0;
    rng = 0x12345;
    t0 = now_s();
    for (; now_s() - t0 < 1.0; qs++) {
        int r = (int)(unit() * FV_WORLD_REGIONS);
        double x = unit() * FV_REGION_SIZE_M, z = unit() * FV_REGION_SIZE_M;
        for (size_t i = 0; i < n; i++) {
            double dx = ents[i].x - x, dz = ents[i].z - z;
            if (ents[i].region == r && dx * dx + dz * dz <= 100.0 * 100.0)
                out[found_scan++ % n] = &ents[i];
        }
    }
    double scan_qps = (double)qs / (now_s() - t0);
    printf("interest queries (100 m): index %.0f/s, scan %.0f/s (ratio %.1fx)\n", index_qps,
           scan_qps, index_qps / scan_qps);
    (void)found_index;
    fv_free(out);
    fv_free(times);
    for (size_t i = 0; i < nc; i++)
        fv_stream_client_free(s, cl[i]);
    fv_free(cl);
    fv_stream_free(s);
    fv_free(ents);
    return 0;
}
