/* tick_bench.c - tick lateness under load: a 10 Hz module tick (the runtime's fixed-rate
 * schedule) beside a plain repeating uv timer of the same period, in one process whose module
 * serves /health to wrk meanwhile. Lateness is start time minus the ideal grid time
 * (start + k * period): the tick's stays bounded; the repeating timer's grows by its own drift.
 *   tick_bench PORT_BASE SECONDS      (prints two lines and the ratio) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"

#define MAX_SAMPLES 100000
#define PERIOD_NS 100000000ULL

static uint64_t tick_late[MAX_SAMPLES], timer_late[MAX_SAMPLES];
static size_t tick_n, timer_n;
static uint64_t timer_start, deadline_ns;
static uv_timer_t naive;
static fv_runtime_t *rt;

static void on_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *t, void *data)
{
    if (tick_n < MAX_SAMPLES)
        tick_late[tick_n++] = t->lateness_ns;
    if (uv_hrtime() >= deadline_ns)
        fv_runtime_shutdown(rt);
}

static void on_naive(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    uint64_t k = timer_n + 1;
    uint64_t due = timer_start + k * PERIOD_NS;
    if (timer_n < MAX_SAMPLES)
        timer_late[timer_n++] = now > due ? now - due : 0;
}

static int bench_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    int rc = fv_module_add_tick(ctx, "bench", 10, on_tick, NULL);
    uv_timer_init(fv_module_loop(ctx), &naive);
    timer_start = uv_hrtime();
    uv_timer_start(&naive, on_naive, 100, 100);
    return rc;
}

static void bench_quiesce(fv_module_ctx_t *ctx)
{
    uv_close((uv_handle_t *)&naive, NULL);
}

static const fv_module_t bench_module = {
    .name = "song-engine",
    .start = bench_start,
    .quiesce = bench_quiesce,
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tick_bench PORT_BASE SECONDS\n");
        return 2;
    }
    char text[256];
    snprintf(text, sizeof(text), "[general]\nport_base = %d\ndata_dir = \"/tmp\"\n"
             "log_level = \"warn\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n", atoi(argv[1]));
    static char *const env[] = {NULL};
    fv_config_t *cfg;
    fv_error_t err;
    if (fv_config_load_string("bench", text, strlen(text), env, NULL, &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    fv__modules_override(FV_MOD_SONG_ENGINE, &bench_module);
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (fv_runtime_new(&loop, cfg, &rt) < 0)
        return 1;
    deadline_ns = uv_hrtime() + (uint64_t)atoi(argv[2]) * 1000000000ULL;
    int which[] = {FV_MOD_SONG_ENGINE};
    if (fv_runtime_start(rt, which, 1, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    fv_runtime_run(rt);
    fv_runtime_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fv_config_free(cfg);

    size_t tn = tick_n, rn = timer_n;
    double tick_last = tn ? (double)tick_late[tn - 1] / 1e6 : 0;
    double timer_last = rn ? (double)timer_late[rn - 1] / 1e6 : 0;
    double t50 = pct_ms(tick_late, tn, 0.50), t99 = pct_ms(tick_late, tn, 0.99);
    double r50 = pct_ms(timer_late, rn, 0.50), r99 = pct_ms(timer_late, rn, 0.99);
    printf("module tick (fixed-rate)  %5zu runs  lateness p50 %7.3f ms  p99 %7.3f ms  last %7.3f ms\n",
           tn, t50, t99, tick_last);
    printf("uv_timer repeat 100 ms    %5zu runs  lateness p50 %7.3f ms  p99 %7.3f ms  last %7.3f ms\n",
           rn, r50, r99, timer_last);
    printf("ratio tick/uv_timer: p99 lateness %.2f x (lower is better)\n", r99 > 0 ? t99 / r99 : 0);
    return 0;
}
