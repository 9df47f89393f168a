/* test_grpc_processes.c - modules in two processes call each other over gRPC, found through
 * the registry: process A runs the service registry and world-engine (a method table);
 * process B runs song-engine, which on its ticks calls world-engine with fv_call until an
 * answer comes (first the registry has to know world-engine): the call leaves B through the
 * gRPC transport, finds A's world-engine in the registry, and is answered by its method table
 * through A's gRPC server. Both are the real runtime with stand-in module descriptors. */
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
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "proto/common.pb-c.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "child_runtime.h"

static int report_fd = -1;        /* the child's end of its pipe to the test */
static fv_runtime_t *rt;
static bool answered;

/* ---- process A: world-engine answers ---- */

static void h_harmony(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    char who[96];
    snprintf(who, sizeof(who), "harmony-of:%s:%d", req->id, (int)getpid());
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = who;
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

/* ---- process B: song-engine calls until answered ---- */

static void on_answer(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    if (status < 0 || answered)
        return;                    /* not registered yet, most likely: the next tick asks again */
    answered = true;
    const Finalverse__Common__V1__Status *st = (const Finalverse__Common__V1__Status *)out;
    dprintf(report_fd, "ok %s\n", st->service);
    fv_runtime_shutdown(rt);
}

static void on_song_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    if (answered)
        return;
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "terra-nova";
    if (fv_call(ctx, "world-engine", "Harmony", &req.base,
                &finalverse__common__v1__status__descriptor, 1000, on_answer, ctx) < 0)
        fprintf(stderr, "fv_call refused its arguments\n");
}

static int song_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    return fv_module_add_tick(ctx, "song", 5, on_song_tick, NULL);
}

static const fv_module_t song_module = {
    .name = "song-engine",
    .start = song_start,
};

/* ---- both ---- */

/* Runs one process's modules to the end; the exit status is the runtime's. */
static int run_process(int port_base, const int *which, size_t count, const char *data_dir)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\nlog_level = \"warn\"\n"
             "drain_timeout_ms = 2000\n[registry]\nurl = \"http://127.0.0.1:%d\"\n"
             "ttl_ms = 2000\nheartbeat_interval_ms = 200\n", port_base, data_dir,
             port_base + FV_MOD_SERVICE_REGISTRY);
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

static void call_crosses_processes_through_the_registry(void **state)
{
    fv__modules_override(FV_MOD_SONG_ENGINE, &song_module);
    fv__modules_override(FV_MOD_WORLD_ENGINE, &world_module);
    char dir_a[] = "/tmp/fv-grpc-a.XXXXXX", dir_b[] = "/tmp/fv-grpc-b.XXXXXX";
    assert_non_null(mkdtemp(dir_a));
    assert_non_null(mkdtemp(dir_b));
    /* below the ephemeral range, apart from test_two_processes' bases */
    int base = fv_test_port_base(27000, 250);

    int a_out, b_out;
    int which_a[] = {FV_MOD_SERVICE_REGISTRY, FV_MOD_WORLD_ENGINE};
    pid_t a = spawn(base, which_a, 2, dir_a, &a_out);
    int which_b[] = {FV_MOD_SONG_ENGINE};
    pid_t b = spawn(base, which_b, 1, dir_b, &b_out);

    char line[256], want[64];
    read_line(b_out, line, sizeof(line), 20000);
    snprintf(want, sizeof(want), "ok harmony-of:terra-nova:%d", (int)a);
    assert_string_equal(line, want);           /* answered by process A's world-engine */

    fv_test_child_exits_ok(b, false);
    fv_test_child_exits_ok(a, true);
    close(a_out);
    close(b_out);
    fv__modules_override(FV_MOD_SONG_ENGINE, NULL);
    fv__modules_override(FV_MOD_WORLD_ENGINE, NULL);
    fv_test_rm_dirs(dir_a, dir_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(call_crosses_processes_through_the_registry),
    };
    return cmocka_run_group_tests_name("runtime/grpc_processes", tests, NULL, NULL);
}
