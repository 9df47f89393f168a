/* tick_clock.h - the fixed-rate schedule behind a module's ticks, as a pure accumulator.
 *
 * Tick k is due at start + k * period: the schedule advances by whole periods from where it
 * began, never from when a tick happened to run, so lateness never accumulates into drift.
 * When the loop falls behind (a long handler, a stalled process), at most max_catchup ticks run
 * back to back; the rest are skipped and counted, and the schedule moves to the next due time
 * after now instead of replaying a burst of stale ticks.
 *
 * No clock is read here: callers pass the time (nanoseconds from any monotonic origin), so the
 * rules are tested with a simulated clock. */
#ifndef FV_RUNTIME_TICK_CLOCK_H
#define FV_RUNTIME_TICK_CLOCK_H

#include <stdint.h>

typedef struct fv_tick_clock {
    uint64_t period_ns;
    uint64_t next_ns;        /* when the next tick is due */
    uint32_t max_catchup;    /* ticks run at most per fv_tick_clock_due() call; >= 1 */
    uint64_t ticks;          /* ticks handed out */
    uint64_t skipped;        /* due ticks dropped by the catch-up cap */
} fv_tick_clock_t;

/* The first tick is due one period after now. period_ns and max_catchup are at least 1. */
void fv_tick_clock_init(fv_tick_clock_t *c, uint64_t period_ns, uint64_t now_ns,
                        uint32_t max_catchup);

/* How many ticks to run now (0..max_catchup) and, when at least one, how late the first of
 * them is (*lateness_ns, now minus its due time). Advances the schedule past them. */
uint32_t fv_tick_clock_due(fv_tick_clock_t *c, uint64_t now_ns, uint64_t *lateness_ns);

/* Nanoseconds from now until the next tick is due; 0 when one is due already. */
uint64_t fv_tick_clock_wait_ns(const fv_tick_clock_t *c, uint64_t now_ns);

#endif
