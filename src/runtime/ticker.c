/* ticker.c - drives a module's ticks: one uv timer per tick, re-armed from the fixed-rate
 * schedule of tick_clock.c, with each run's duration, lateness and overruns fed to the module's
 * metrics. The runtime starts a module's ticks when it is ready and stops them when shutdown
 * begins; their handles close with the rest of the process's. */
#include "runtime/runtime_internal.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

/* When the loop falls behind, this many due ticks run back to back at most; a simulation that
 * missed more than that is better off skipping than replaying a burst of stale steps. */
#define TICK_MAX_CATCHUP 4
/* At most one "falls behind" warning per tick in this long; the metrics count every skip. */
#define TICK_WARN_INTERVAL_NS (10ULL * 1000 * 1000 * 1000)

struct module_tick {
    fv_module_ctx_t *ctx;
    char name[64];
    uint32_t rate_hz;
    fv_tick_fn fn;
    void *data;
    uv_timer_t timer;
    fv_tick_clock_t clock;
    fv_metrics_tick_t *metrics;
    uint64_t warned_ns;          /* last "fell behind" log line; they are rate-limited */
    uint64_t unwarned_skips;     /* skips since that line */
    bool timer_open;
    bool running;
};

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((module_tick_t *)0)->name))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

int fv_module_add_tick(fv_module_ctx_t *ctx, const char *name, uint32_t rate_hz,
                       fv_tick_fn fn, void *data)
{
    if (!name || !valid_name(name) || rate_hz < 1 || rate_hz > 1000 || !fn)
        return FV_EINVAL;
    for (size_t i = 0; i < ctx->tick_count; i++)
        if (strcmp(ctx->ticks[i]->name, name) == 0)
            return FV_EEXIST;
    module_tick_t *t = fv_calloc(1, sizeof(*t));
    t->ctx = ctx;
    strcpy(t->name, name);
    t->rate_hz = rate_hz;
    t->fn = fn;
    t->data = data;
    t->metrics = fv_metrics_add_tick(ctx->metrics, name);
    ctx->ticks = fv_realloc(ctx->ticks, (ctx->tick_count + 1) * sizeof(*ctx->ticks));
    ctx->ticks[ctx->tick_count++] = t;
    return 0;
}

static void tick_arm(module_tick_t *t);

static void on_tick_timer(uv_timer_t *timer)
{
    module_tick_t *t = timer->data;
    uint64_t now = uv_hrtime();
    uint64_t late = 0;
    uint64_t skipped_before = t->clock.skipped;
    uint32_t due = fv_tick_clock_due(&t->clock, now, &late);

    if (t->clock.skipped != skipped_before) {
        fv_metrics_tick_skipped(t->metrics, t->clock.skipped - skipped_before);
        t->unwarned_skips += t->clock.skipped - skipped_before;
        /* a tick that overruns every period would log every period: once per interval */
        if (t->warned_ns == 0 || now - t->warned_ns >= TICK_WARN_INTERVAL_NS) {
            fv_log_warn("runtime", "%s: tick %s falls behind its %u Hz; skipped %llu due "
                        "run(s) since the last warning", t->ctx->mod->name, t->name, t->rate_hz,
                        (unsigned long long)t->unwarned_skips);
            t->warned_ns = now;
            t->unwarned_skips = 0;
        }
    }
    for (uint32_t i = 0; i < due && t->running; i++) {
        fv_tick_info_t info = {
            .seq = t->clock.ticks - due + i + 1,
            .period_ns = t->clock.period_ns,
        };
        /* the runs of one wake-up are back to back: each is a period later than the last */
        info.scheduled_ns = now - late + (uint64_t)i * t->clock.period_ns;
        uint64_t begin = uv_hrtime();
        info.lateness_ns = begin > info.scheduled_ns ? begin - info.scheduled_ns : 0;
        t->fn(t->ctx, &info, t->data);
        uint64_t took = uv_hrtime() - begin;
        fv_metrics_tick_observe(t->metrics, took, info.lateness_ns, took > t->clock.period_ns);
    }
    if (t->running)
        tick_arm(t);
}

/* Timers count whole milliseconds of loop time: round up, so a wake-up is never early by a
 * fraction (an early one finds nothing due and simply re-arms). Never less than 1 ms: libuv
 * runs a timer re-armed with 0 again in the same pass, so a tick that is always behind would
 * starve every socket on the loop. */
static void tick_arm(module_tick_t *t)
{
    uint64_t wait_ns = fv_tick_clock_wait_ns(&t->clock, uv_hrtime());
    uint64_t wait_ms = (wait_ns + 999999) / 1000000;
    if (wait_ms == 0)
        wait_ms = 1;
    uv_update_time(t->timer.loop);
    uv_timer_start(&t->timer, on_tick_timer, wait_ms, 0);
}

void fv__ticks_start(fv_module_ctx_t *ctx)
{
    uv_loop_t *loop = fv__runtime_loop(ctx->rt);
    for (size_t i = 0; i < ctx->tick_count; i++) {
        module_tick_t *t = ctx->ticks[i];
        if (t->running)
            continue;
        if (!t->timer_open) {
            uv_timer_init(loop, &t->timer);
            t->timer.data = t;
            t->timer_open = true;
        }
        fv_tick_clock_init(&t->clock, 1000000000ULL / t->rate_hz, uv_hrtime(),
                           TICK_MAX_CATCHUP);
        t->running = true;
        tick_arm(t);
    }
}

void fv__ticks_stop(fv_module_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->tick_count; i++) {
        module_tick_t *t = ctx->ticks[i];
        t->running = false;
        if (t->timer_open)
            uv_timer_stop(&t->timer);
    }
}

static void on_tick_closed(uv_handle_t *h)
{
    module_tick_t *t = h->data;
    fv__runtime_handle_closed(t->ctx->rt);
}

size_t fv__ticks_close(fv_module_ctx_t *ctx)
{
    size_t n = 0;
    fv__ticks_stop(ctx);
    for (size_t i = 0; i < ctx->tick_count; i++) {
        module_tick_t *t = ctx->ticks[i];
        if (!t->timer_open)
            continue;
        t->timer_open = false;
        uv_close((uv_handle_t *)&t->timer, on_tick_closed);
        n++;
    }
    return n;
}

void fv__ticks_dispose(fv_module_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->tick_count; i++)
        fv_free(ctx->ticks[i]);
    fv_free(ctx->ticks);
    ctx->ticks = NULL;
    ctx->tick_count = 0;
}
