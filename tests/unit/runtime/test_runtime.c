/* test_runtime.c - the module lifecycle on a real loop, with test modules standing in for
 * song-engine: a start that finishes later, ticks that run from readiness until shutdown
 * begins, quiesce before close, a close that reports from its handle's close callback, a
 * module whose start failed being closed too, an overrunning tick counted on /metrics, and a
 * loop that closes cleanly afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loopback.h"
#include "scratch.h"

#include "config/config.h"
#include "bus/bus.h"
#include "net/http_client.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"

/* What the test module saw, in order. */
typedef struct trace {
    fv_runtime_t *rt;
    int step;                /* bumped at each lifecycle event */
    int started_at, ready_at, quiesced_at, close_at, closed_at;
    int ticks;               /* "step" tick runs */
    int ticks_at_quiesce;
    int shutdown_after;      /* ticks before the test module asks for shutdown */
    uint64_t last_seq;
    bool seq_ok;
    int slow_ticks;
    uv_timer_t ready_timer;
    uv_timer_t close_timer;
    fv_module_closed_cb done;
    fv_module_ctx_t *ctx;
    bool fail_start;
    char metrics[65536];
    int metrics_done;
    int events;              /* bus events the module received */
    int events_after_close;  /* ... of which after its close() began: must stay 0 */
} trace_t;

static trace_t T;

static void on_ready_timer(uv_timer_t *t)
{
    T.ready_at = ++T.step;
    fv_module_ready(T.ctx, 0, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_step(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    T.ticks++;
    assert_int_equal(fv_bus_publish(fv_module_bus(ctx), "test.step", "step", "x", 1, NULL), 0);
    if (tick->seq != T.last_seq + 1)
        T.seq_ok = false;
    T.last_seq = tick->seq;
    if (T.ticks == T.shutdown_after)
        fv_runtime_shutdown(T.rt);
}

static void on_slow(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    /* 12 ms of work in a 10 ms period: an overrun every time */
    struct timespec ts = {0, 12 * 1000 * 1000};
    nanosleep(&ts, NULL);
    T.slow_ticks++;
}

static void on_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    T.events++;
    if (T.close_at)
        T.events_after_close++;
}

static int test_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    T.started_at = ++T.step;
    T.ctx = ctx;
    if (T.fail_start)
        return fv_error_set(err, FV_EINVAL, "test module refuses to start");
    assert_int_equal(fv_module_subscribe(ctx, "test.*", NULL, on_event, NULL, NULL), 0);
    assert_int_equal(fv_module_add_tick(ctx, "step", 100, on_step, NULL), 0);
    assert_int_equal(fv_module_add_tick(ctx, "step", 100, on_step, NULL), FV_EEXIST);
    assert_int_equal(fv_module_add_tick(ctx, "Bad-Name", 100, on_step, NULL), FV_EINVAL);
    assert_int_equal(fv_module_add_tick(ctx, "zero", 0, on_step, NULL), FV_EINVAL);
    uv_timer_init(fv_module_loop(ctx), &T.ready_timer);
    uv_timer_start(&T.ready_timer, on_ready_timer, 20, 0);
    return FV_EAGAIN;
}

static void test_quiesce(fv_module_ctx_t *ctx)
{
    T.quiesced_at = ++T.step;
    T.ticks_at_quiesce = T.ticks;
}

static void on_close_timer_closed(uv_handle_t *h)
{
    T.closed_at = ++T.step;
    T.done(T.ctx);
}

static void test_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    T.close_at = ++T.step;
    T.done = done;
    /* the module's subscription has ended already: this one must never reach it */
    assert_int_equal(fv_bus_publish(fv_module_bus(ctx), "test.late", "late", "x", 1, NULL), 0);
    /* a handle of the module's own, whose close callback is where it reports */
    uv_timer_init(fv_module_loop(ctx), &T.close_timer);
    uv_close((uv_handle_t *)&T.close_timer, on_close_timer_closed);
}

static const fv_module_t test_module = {
    .name = "song-engine",
    .start = test_start,
    .quiesce = test_quiesce,
    .close = test_close,
};

/* The suite's own data directory (the stores live under it), made by the group setup. */
static char data_dir[256];

static int make_data_dir(void **state)
{
    (void)state;
    fv_test_scratch_make(data_dir, sizeof(data_dir));
    return 0;
}

static int remove_data_dir(void **state)
{
    (void)state;
    fv_test_scratch_remove(data_dir);
    return 0;
}

static fv_config_t *load_config(void)
{
    /* a port base in the low range, varied per run so parallel suites do not collide */
    int base = fv_test_port_base(20000, 400);
    char text[768];
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\ndrain_timeout_ms = 2000\n"
             "log_level = \"warn\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n", base,
             data_dir);
    static char *const env[] = {NULL};
    fv_config_t *cfg = NULL;
    fv_error_t err;
    int rc = fv_config_load_string("test.toml", text, strlen(text), env, NULL, &cfg, &err);
    if (rc < 0)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* A runtime on loop with module m standing in for song-engine; returns fv_runtime_start's
 * result (err filled on failure). */
static int start_with(const fv_module_t *m, uv_loop_t *loop, fv_config_t **cfg, fv_error_t *err)
{
    fv__modules_override(FV_MOD_SONG_ENGINE, m);
    *cfg = load_config();
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(fv_runtime_new(loop, *cfg, &T.rt), 0);
    int which[] = {FV_MOD_SONG_ENGINE};
    return fv_runtime_start(T.rt, which, 1, err);
}

static void finish(uv_loop_t *loop, fv_config_t *cfg)
{
    fv_runtime_free(T.rt);
    close_loop(loop);
    fv_config_free(cfg);
    fv__modules_override(FV_MOD_SONG_ENGINE, NULL);
}

static void lifecycle_in_order(void **state)
{
    memset(&T, 0, sizeof(T));
    T.seq_ok = true;
    T.shutdown_after = 20;
    uv_loop_t loop;
    fv_config_t *cfg;
    fv_error_t err;
    int rc = start_with(&test_module, &loop, &cfg, &err);
    if (rc < 0)
        fail_msg("start: %s", err.msg);
    assert_true(T.ready_at > T.started_at);
    assert_int_equal(fv_runtime_run(T.rt), 0);

    assert_int_equal(T.ticks, T.shutdown_after);    /* none after shutdown began */
    assert_int_equal(T.ticks_at_quiesce, T.shutdown_after);
    assert_true(T.seq_ok);
    assert_true(T.quiesced_at > T.ready_at);
    assert_true(T.close_at > T.quiesced_at);
    assert_true(T.closed_at > T.close_at);
    assert_true(T.events > 0);
    assert_int_equal(T.events_after_close, 0);
    finish(&loop, cfg);
}

static void failed_start_is_closed(void **state)
{
    memset(&T, 0, sizeof(T));
    T.fail_start = true;
    uv_loop_t loop;
    fv_config_t *cfg;
    fv_error_t err;
    assert_int_equal(start_with(&test_module, &loop, &cfg, &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "refuses to start"));
    fv_runtime_shutdown(T.rt);
    assert_int_equal(fv_runtime_run(T.rt), 0);
    assert_int_equal(T.quiesced_at, 0);          /* never ready: nothing to quiesce */
    assert_true(T.close_at > T.started_at);      /* but closed all the same */
    assert_true(T.closed_at > T.close_at);
    finish(&loop, cfg);
}

/* ---- an overrunning tick on /metrics ---- */

static void on_metrics(int rc, const fv_http_response_t *resp, void *data)
{
    if (rc < 0 || resp->status != 200)
        fprintf(stderr, "metrics: rc=%d status=%d\n", rc, rc < 0 ? 0 : resp->status);
    if (rc == 0 && resp->status == 200)
        snprintf(T.metrics, sizeof(T.metrics), "%.*s", (int)resp->body.len, resp->body.ptr);
    T.metrics_done = 1;
    fv_runtime_shutdown(T.rt);
}

static fv_http_client_t *client;

static void slow_tick_probe(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    if (tick->seq != 10)
        return;
    fv_http_client_req_t r = {
        .method = "GET", .host = "127.0.0.1", .port = fv_module_port(ctx),
        .target = "/metrics", .timeout_ms = 5000,
    };
    assert_int_equal(fv_http_client_request(client, &r, on_metrics, NULL), 0);
}

static int slow_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    T.ctx = ctx;
    assert_int_equal(fv_module_add_tick(ctx, "slow", 100, on_slow, NULL), 0);
    assert_int_equal(fv_module_add_tick(ctx, "probe", 50, slow_tick_probe, NULL), 0);
    return 0;
}

static const fv_module_t slow_module = {
    .name = "song-engine",
    .start = slow_start,
};

static void overrunning_tick_is_counted(void **state)
{
    memset(&T, 0, sizeof(T));
    uv_loop_t loop;
    fv_config_t *cfg;
    fv_error_t err;
    int rc = start_with(&slow_module, &loop, &cfg, &err);
    assert_int_equal(fv_http_client_new(&loop, NULL, &client), 0);
    if (rc < 0)
        fail_msg("start: %s", err.msg);
    assert_int_equal(fv_runtime_run(T.rt), 0);
    assert_true(T.metrics_done);
    assert_true(T.slow_ticks > 0);
    const char *line = strstr(T.metrics,
                              "finalverse_tick_overruns_total{module=\"song-engine\",tick=\"slow\"} ");
    if (!line)
        fail_msg("no overrun series in /metrics:\n%s", T.metrics);
    assert_true(atoi(strchr(line, '}') + 2) > 0);
    assert_non_null(strstr(T.metrics, "finalverse_tick_duration_seconds_count{module=\"song-"
                                      "engine\",tick=\"probe\"}"));
    assert_non_null(strstr(T.metrics, "finalverse_tick_lateness_seconds_bucket"));
    /* and the exposition, tick series included, passes Prometheus' own checker */
    FILE *p = popen("promtool check metrics >/dev/null 2>&1", "w");
    assert_non_null(p);
    fputs(T.metrics, p);
    assert_int_equal(pclose(p), 0);
    fv_http_client_free(client);
    finish(&loop, cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lifecycle_in_order),
        cmocka_unit_test(failed_start_is_closed),
        cmocka_unit_test(overrunning_tick_is_counted),
    };
    return cmocka_run_group_tests_name("runtime/lifecycle", tests, make_data_dir,
                                       remove_data_dir);
}
