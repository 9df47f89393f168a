/* test_tick_clock.c - the tick schedule under a simulated clock: no drift over 10,000 ticks
 * whatever the wake-up jitter, catch-up capped, skipped ticks counted, the grid kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/tick_clock.h"

#define MS 1000000ULL

static void first_tick_after_one_period(void **state)
{
    fv_tick_clock_t c;
    fv_tick_clock_init(&c, 100 * MS, 5 * MS, 4);
    uint64_t late = 0;
    assert_int_equal(fv_tick_clock_due(&c, 104 * MS, &late), 0);
    assert_int_equal(fv_tick_clock_wait_ns(&c, 104 * MS), 1 * MS);
    assert_int_equal(fv_tick_clock_due(&c, 105 * MS, &late), 1);
    assert_int_equal(late, 0);
    assert_int_equal(fv_tick_clock_wait_ns(&c, 105 * MS), 100 * MS);
}

/* A driver that wakes up late by a varying amount each time still ticks on the grid: after
 * 10,000 ticks the schedule is exactly start + 10,001 periods away. */
static void no_drift_over_10000_ticks(void **state)
{
    fv_tick_clock_t c;
    const uint64_t start = 123456789;
    fv_tick_clock_init(&c, 100 * MS, start, 4);
    uint64_t now = start;
    uint64_t total = 0;
    uint32_t jitter = 1;
    while (total < 10000) {
        now += fv_tick_clock_wait_ns(&c, now);
        jitter = jitter * 1103515245u + 12345u;
        now += (jitter >> 8) % (7 * MS);        /* wakes 0-7 ms late, never a whole period */
        uint64_t late = 0;
        uint32_t n = fv_tick_clock_due(&c, now, &late);
        assert_int_equal(n, 1);
        assert_true(late < 7 * MS);
        total += n;
    }
    assert_int_equal(c.ticks, 10000);
    assert_int_equal(c.skipped, 0);
    assert_int_equal(c.next_ns, start + 10001 * 100 * MS);
}

static void catch_up_is_capped_and_skips_counted(void **state)
{
    fv_tick_clock_t c;
    fv_tick_clock_init(&c, 100 * MS, 0, 3);
    /* the process stalls for 1.05 s: ticks due at 100..1000 ms, ten of them */
    uint64_t late = 0;
    assert_int_equal(fv_tick_clock_due(&c, 1050 * MS, &late), 3);
    assert_int_equal(late, 950 * MS);
    assert_int_equal(c.skipped, 7);
    /* the next tick is the first due after now, on the same grid */
    assert_int_equal(c.next_ns, 1100 * MS);
    assert_int_equal(fv_tick_clock_due(&c, 1099 * MS, &late), 0);
    assert_int_equal(fv_tick_clock_due(&c, 1100 * MS, &late), 1);
    assert_int_equal(c.ticks, 4);
}

static void exactly_on_time_and_one_period_late(void **state)
{
    fv_tick_clock_t c;
    fv_tick_clock_init(&c, 10 * MS, 0, 8);
    uint64_t late = 0;
    /* 10 and 20 are both due at 20 */
    assert_int_equal(fv_tick_clock_due(&c, 20 * MS, &late), 2);
    assert_int_equal(late, 10 * MS);
    assert_int_equal(c.next_ns, 30 * MS);
    assert_int_equal(c.skipped, 0);
}

static void degenerate_arguments(void **state)
{
    fv_tick_clock_t c;
    fv_tick_clock_init(&c, 0, 0, 0);    /* clamped to 1 ns and one tick per call */
    assert_int_equal(c.period_ns, 1);
    assert_int_equal(c.max_catchup, 1);
    assert_int_equal(fv_tick_clock_due(&c, 1000, NULL), 1);
    assert_int_equal(c.skipped, 999);
    /* a huge gap does not overflow */
    fv_tick_clock_init(&c, 1, 0, 1);
    assert_int_equal(fv_tick_clock_due(&c, UINT64_MAX / 2, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_tick_after_one_period),
        cmocka_unit_test(no_drift_over_10000_ticks),
        cmocka_unit_test(catch_up_is_capped_and_skips_counted),
        cmocka_unit_test(exactly_on_time_and_one_period_late),
        cmocka_unit_test(degenerate_arguments),
    };
    return cmocka_run_group_tests_name("runtime/tick_clock", tests, NULL, NULL);
}
