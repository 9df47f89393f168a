/* test_two_processes.c - modules in two processes meet through the runtime's seams: process A
 * runs song-engine (a 10 Hz tick) beside world-engine (a method table); on its ticks
 * song-engine calls world-engine through fv_call and publishes the answer as a typed event
 * (finalverse.events.v1.HarmonyChanged) on its bus; process B runs echo-engine, subscribed to
 * that channel, and receives it over the real Redis of the suite. Both are the real runtime
 * with stand-in module descriptors; A then shuts down on SIGTERM and exits 0.
 * fv-test-needs: redis
 * fv-test-lock: redis-bus (both count the fv.bus.* traffic of the shared Redis) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loopback.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "config/config.h"
#include "proto/common.pb-c.h"
#include "proto/events.pb-c.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "child_runtime.h"
#include "store/stores.h"
#include "test_servers.h"

static char redis_url[512];
static int report_fd = -1;        /* the child's end of its pipe to the test */
static fv_runtime_t *rt;
static uint64_t published;


/* ---- process A: world-engine answers, song-engine ticks, calls and publishes ---- */

/* world-engine's method: the harmony of a region, as a Status (service = "harmony-of:<id>",
 * uptime_seconds = 57) so the test needs no proto of its own. */
static void h_harmony(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    char who[96];
    snprintf(who, sizeof(who), "harmony-of:%s", req->id);
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = who;
    st.uptime_seconds = 57;
    fv_rpc_reply(call, &st.base);
}

static const fv_rpc_method_t world_methods[] = {
    {"Harmony", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_harmony, true},
};

static int world_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    return fv_module_serve(ctx, "finalverse.test.v1.WorldService", world_methods, 1, NULL);
}

static const fv_module_t world_module = {
    .name = "world-engine",
    .start = world_start,
};

static void on_harmony_answer(int status, const ProtobufCMessage *out, const fv_error_t *err,
                              void *data)
{
    fv_module_ctx_t *ctx = data;
    if (status < 0)
        return;
    const Finalverse__Common__V1__Status *st = (const Finalverse__Common__V1__Status *)out;
    Finalverse__Events__V1__HarmonyChanged ev = FINALVERSE__EVENTS__V1__HARMONY_CHANGED__INIT;
    ev.harmony = (double)st->uptime_seconds;
    ev.delta = 1.0;
    ev.cause = st->service;
    uint8_t buf[256];
    size_t len = finalverse__events__v1__harmony_changed__pack(&ev, buf);
    if (fv_bus_publish(fv_module_bus(ctx), "test.harmony", "harmony.changed", buf, len, NULL) ==
        0)
        published++;
}

static void on_song_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "terra-nova";
    if (fv_call(ctx, "world-engine", "Harmony", &req.base,
                &finalverse__common__v1__status__descriptor, 1000, on_harmony_answer, ctx) < 0)
        fprintf(stderr, "fv_call refused its arguments\n");
}

static int song_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    return fv_module_add_tick(ctx, "song", 10, on_song_tick, NULL);
}

static const fv_module_t song_module = {
    .name = "song-engine",
    .start = song_start,
    .stores = FV_STORE_KV,
};

/* ---- process B: echo-engine listens ---- */

static void on_harmony(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    Finalverse__Events__V1__HarmonyChanged *m = finalverse__events__v1__harmony_changed__unpack(
        NULL, ev->payload.len, (const uint8_t *)ev->payload.ptr);
    if (!m)
        return;
    dprintf(report_fd, "%s %s %.1f %s\n", ev->channel.ptr, ev->type.ptr, m->harmony, m->cause);
    finalverse__events__v1__harmony_changed__free_unpacked(m, NULL);
    fv_module_unsubscribe(data, sub);
    fv_runtime_shutdown(rt);
}

static int echo_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    int rc = fv_module_subscribe(ctx, "test.*", NULL, on_harmony, ctx, NULL);
    if (rc < 0)
        return fv_error_set(err, rc, "subscribe: %s", fv_strerror(rc));
    return 0;
}

static const fv_module_t echo_module = {
    .name = "echo-engine",
    .start = echo_start,
    .stores = FV_STORE_KV,
};

/* ---- both ---- */

/* Runs one process's modules to the end; the exit status is the runtime's. */
static int run_process(int port_base, const int *which, size_t count, const char *data_dir)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\nlog_level = \"warn\"\n"
             "drain_timeout_ms = 2000\n[registry]\nurl = \"http://127.0.0.1:1\"\n"
             "[redis]\nurl = \"%s\"\n", port_base, data_dir, redis_url);
    return fv_test_child_run(text, which, count, &rt);
}

static pid_t spawn(int port_base, const int *which, size_t count, const char *dir, int *read_end)
{
    return fv_test_child_spawn(run_process, port_base, which, count, dir, &report_fd, read_end);
}

static void read_line(int fd, char *out, size_t cap, int timeout_ms)
{
    fv_test_read_line(fd, out, cap, timeout_ms);
}

static void event_crosses_processes_over_redis(void **state)
{
    if (fv_test_server_url("redis", redis_url, sizeof(redis_url)) < 0)
        fail_msg("no redis URL in $FV_TEST_SERVERS/redis.url");
    fv__modules_override(FV_MOD_SONG_ENGINE, &song_module);
    fv__modules_override(FV_MOD_ECHO_ENGINE, &echo_module);
    fv__modules_override(FV_MOD_WORLD_ENGINE, &world_module);
    char dir_a[] = "/tmp/fv-two-a.XXXXXX", dir_b[] = "/tmp/fv-two-b.XXXXXX";
    assert_non_null(mkdtemp(dir_a));
    assert_non_null(mkdtemp(dir_b));
    int base = fv_test_port_base(21000, 300);

    int b_out, a_out;
    int which_b[] = {FV_MOD_ECHO_ENGINE};
    pid_t b = spawn(base, which_b, 1, dir_b, &b_out);
    int which_a[] = {FV_MOD_SONG_ENGINE, FV_MOD_WORLD_ENGINE};
    pid_t a = spawn(base, which_a, 2, dir_a, &a_out);

    char line[256];
    read_line(b_out, line, sizeof(line), 20000);
    assert_string_equal(strtok(line, " "), "test.harmony");
    assert_string_equal(strtok(NULL, " "), "harmony.changed");
    assert_string_equal(strtok(NULL, " "), "57.0");            /* world-engine's answer */
    assert_string_equal(strtok(NULL, " "), "harmony-of:terra-nova");

    fv_test_child_exits_ok(b, false);
    fv_test_child_exits_ok(a, true);
    close(a_out);
    close(b_out);
    fv__modules_override(FV_MOD_SONG_ENGINE, NULL);
    fv__modules_override(FV_MOD_ECHO_ENGINE, NULL);
    fv__modules_override(FV_MOD_WORLD_ENGINE, NULL);
    fv_test_rm_dirs(dir_a, dir_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_crosses_processes_over_redis),
    };
    return cmocka_run_group_tests_name("runtime/two_processes", tests, NULL, NULL);
}
