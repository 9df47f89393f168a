/* test_metrics.c - the Prometheus exposition, whole: one request observed on a route, a gauge,
 * a tick with a run and a skip, rendered and compared to the exact text expected (every family
 * with its HELP and TYPE, cumulative buckets, label escaping), and the text passes promtool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "runtime/metrics.h"

static double seven(void *data)
{
    return 7;
}

/* The 17 bucket lines of one histogram whose single observation falls in bucket `at` (0-based;
 * 16 = +Inf), then _sum and _count. */
static void expect_hist(fv_buf_t *want, const char *name, const char *labels, int at,
                        const char *sum)
{
    static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                     "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                     "1",      "2.5",     "5",      "10",    "+Inf"};
    for (int b = 0; b < 17; b++)
        assert_int_equal(fv_buf_printf(want, "%s_bucket{%s,le=\"%s\"} %d\n", name, labels, le[b],
                                       b >= at ? 1 : 0),
                         0);
    assert_int_equal(fv_buf_printf(want, "%s_sum{%s} %s\n%s_count{%s} 1\n", name, labels, sum,
                                   name, labels),
                     0);
}

static void whole_exposition(void **state)
{
    fv_metrics_t *m = fv_metrics_new("song-engine");
    fv_metrics_observe(m, "/api/:x", fv_slice("GET", 3), 200, 3000000);     /* 3 ms */
    fv_metrics_add_gauge(m, "finalverse_test_level", "A gauge for the test.", seven, NULL);
    fv_metrics_tick_t *t = fv_metrics_add_tick(m, "step");
    fv_metrics_tick_observe(t, 20000000, 50000, true);                       /* 20 ms, late 50 us */
    fv_metrics_tick_skipped(t, 2);

    fv_buf_t got, want;
    fv_buf_init(&got, 0);
    fv_buf_init(&want, 0);
    assert_int_equal(fv_metrics_render(m, 1.5, 4, &got), 0);

    const char *route = "module=\"song-engine\",route=\"/api/:x\",method=\"GET\"";
    const char *tick = "module=\"song-engine\",tick=\"step\"";
    assert_int_equal(fv_buf_printf(&want,
        "# HELP finalverse_build_info Build of this process.\n"
        "# TYPE finalverse_build_info gauge\n"
        "finalverse_build_info{module=\"song-engine\",version=\"%s\",revision=\"%s\"} 1\n"
        "# HELP finalverse_uptime_seconds Seconds since the module started.\n"
        "# TYPE finalverse_uptime_seconds gauge\n"
        "finalverse_uptime_seconds{module=\"song-engine\"} 1.500\n"
        "# HELP finalverse_http_open_connections Open HTTP connections.\n"
        "# TYPE finalverse_http_open_connections gauge\n"
        "finalverse_http_open_connections{module=\"song-engine\"} 4\n"
        "# HELP finalverse_http_requests_total HTTP requests answered, by route, method and "
        "status.\n"
        "# TYPE finalverse_http_requests_total counter\n"
        "finalverse_http_requests_total{%s,code=\"200\"} 1\n"
        "# HELP finalverse_http_request_duration_seconds Time from the request's arrival to its "
        "response, by route.\n"
        "# TYPE finalverse_http_request_duration_seconds histogram\n",
        FV_VERSION, FV_GIT_REV, route), 0);
    expect_hist(&want, "finalverse_http_request_duration_seconds", route, 5, "0.003000000");
    assert_int_equal(fv_buf_printf(&want,
        "# HELP finalverse_tick_duration_seconds Run time of a module's tick handler.\n"
        "# TYPE finalverse_tick_duration_seconds histogram\n"), 0);
    expect_hist(&want, "finalverse_tick_duration_seconds", tick, 7, "0.020000000");
    assert_int_equal(fv_buf_printf(&want,
        "# HELP finalverse_tick_lateness_seconds Start of a tick minus its scheduled time.\n"
        "# TYPE finalverse_tick_lateness_seconds histogram\n"), 0);
    expect_hist(&want, "finalverse_tick_lateness_seconds", tick, 0, "0.000050000");
    assert_int_equal(fv_buf_printf(&want,
        "# HELP finalverse_tick_overruns_total Tick runs that took longer than the tick's "
        "period.\n"
        "# TYPE finalverse_tick_overruns_total counter\n"
        "finalverse_tick_overruns_total{%s} 1\n"
        "# HELP finalverse_tick_skipped_total Due ticks dropped because the module fell too far "
        "behind.\n"
        "# TYPE finalverse_tick_skipped_total counter\n"
        "finalverse_tick_skipped_total{%s} 2\n"
        "# HELP finalverse_test_level A gauge for the test.\n"
        "# TYPE finalverse_test_level gauge\n"
        "finalverse_test_level{module=\"song-engine\"} 7\n", tick, tick), 0);
    if (got.len != want.len || memcmp(got.ptr, want.ptr, got.len) != 0)
        fail_msg("exposition differs:\n--- got\n%s\n--- want\n%s", got.ptr, want.ptr);

    FILE *p = popen("promtool check metrics >/dev/null 2>&1", "w");
    assert_non_null(p);
    fputs(got.ptr, p);
    assert_int_equal(pclose(p), 0);
    fv_buf_dispose(&got);
    fv_buf_dispose(&want);
    fv_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_exposition),
    };
    return cmocka_run_group_tests_name("runtime/metrics", tests, NULL, NULL);
}
