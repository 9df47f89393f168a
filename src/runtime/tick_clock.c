/* tick_clock.c - the fixed-rate tick schedule (see tick_clock.h). The driver that reads the
 * clock, arms the timer and calls the handlers is ticker.c. */
#include "runtime/tick_clock.h"

void fv_tick_clock_init(fv_tick_clock_t *c, uint64_t period_ns, uint64_t now_ns,
                        uint32_t max_catchup)
{
    c->period_ns = period_ns ? period_ns : 1;
    c->next_ns = now_ns + c->period_ns;
    c->max_catchup = max_catchup ? max_catchup : 1;
    c->ticks = 0;
    c->skipped = 0;
}

uint32_t fv_tick_clock_due(fv_tick_clock_t *c, uint64_t now_ns, uint64_t *lateness_ns)
{
    if (now_ns < c->next_ns)
        return 0;
    uint64_t behind = (now_ns - c->next_ns) / c->period_ns + 1;   /* due ticks, >= 1 */
    uint32_t run = behind > c->max_catchup ? c->max_catchup : (uint32_t)behind;
    if (lateness_ns)
        *lateness_ns = now_ns - c->next_ns;
    /* Every due tick leaves the schedule, run or skipped: the next one is the first due after
     * now, still on the original grid. */
    c->next_ns += behind * c->period_ns;
    c->ticks += run;
    c->skipped += behind - run;
    return run;
}

uint64_t fv_tick_clock_wait_ns(const fv_tick_clock_t *c, uint64_t now_ns)
{
    return now_ns >= c->next_ns ? 0 : c->next_ns - now_ns;
}
