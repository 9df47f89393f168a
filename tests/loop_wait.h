/* loop_wait.h - for loop tests: run a libuv loop until a counter reaches a value, bounded by a
 * watchdog, and fail the test (cmocka) if the watchdog fires first. Header-only: tests include
 * it after <cmocka.h>. */
#ifndef FV_TESTS_LOOP_WAIT_H
#define FV_TESTS_LOOP_WAIT_H

#include <uv.h>

typedef struct fv_test_wait {
    const int *counter;
    int want;
    int timed_out;
} fv_test_wait_t;

static void fv_test_on_watchdog(uv_timer_t *t)
{
    ((fv_test_wait_t *)t->data)->timed_out = 1;
}

/* Before the loop blocks in poll: when a callback already did what we wait for, stop, so that
 * UV_RUN_ONCE does not sleep until some unrelated event. */
static void fv_test_on_prepare(uv_prepare_t *p)
{
    fv_test_wait_t *w = p->data;
    if (*w->counter >= w->want)
        uv_stop(p->loop);
}

/* Runs loop until *counter >= want; fails the test after watchdog_ms. */
static inline void fv_test_run_until(uv_loop_t *loop, const int *counter, int want,
                                     uint64_t watchdog_ms)
{
    uv_timer_t wd;
    uv_prepare_t prep;
    fv_test_wait_t w = {counter, want, 0};
    uv_timer_init(loop, &wd);
    uv_prepare_init(loop, &prep);
    wd.data = prep.data = &w;
    uv_prepare_start(&prep, fv_test_on_prepare);
    uv_timer_start(&wd, fv_test_on_watchdog, watchdog_ms, 0);
    while (*counter < want && !w.timed_out)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_false(w.timed_out);
}

#endif
