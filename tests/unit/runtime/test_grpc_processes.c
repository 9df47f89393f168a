/* test_grpc_processes.c - modules in two processes call each other over gRPC, found through
 * the registry: process A runs the service registry and world-engine, process B song-engine,
 * each a method table. On their ticks each calls the other with fv_call until an answer comes
 * (first the registry has to know the other): the call leaves through the gRPC transport,
 * finds the other process's module in the registry, and is answered by its method table
 * through that process's gRPC server. song-engine's call carries metadata, which world-engine's
 * handler reads and answers with a header of its own. Both are the real runtime with stand-in
 * module descriptors. */
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
#include "core/alloc.h"
#include "proto/common.pb-c.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "child_runtime.h"

static int report_fd = -1;        /* the child's end of its pipe to the test */
static fv_runtime_t *rt;
static bool answered;              /* this process's call was answered */
static bool was_called;            /* this process answered a call */

/* Answers Status{service: "<what>-of:<id>:<metadata x-fv-player>:<pid>"}, with a header. */
static void answer(fv_rpc_call_t *call, const ProtobufCMessage *in, const char *what)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    fv_slice_t player = fv_md_get(fv_rpc_call_metadata(call), "x-fv-player");
    char who[128];
    snprintf(who, sizeof(who), "%s-of:%s:%.*s:%d", what, req->id, (int)player.len,
             player.ptr ? player.ptr : "", (int)getpid());
    if (fv_rpc_call_add_header(call, "x-fv-answered-by", what, strlen(what)) < 0)
        fprintf(stderr, "cannot add a header\n");
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = who;
    fv_rpc_reply(call, &st.base);
    was_called = true;
}

/* One call at a time is asked for per tick; its handle, for the answer's metadata. */
typedef struct asked {
    fv_rpc_req_t *req;
} asked_t;

static void on_answer(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    asked_t *a = data;
    if (status == 0 && !answered) {
        answered = true;
        const fv_md_t *head, *trail;
        fv_rpc_req_answer_metadata(a->req, &head, &trail);
        fv_slice_t by = fv_md_get(head, "x-fv-answered-by");
        const Finalverse__Common__V1__Status *st = (const Finalverse__Common__V1__Status *)out;
        dprintf(report_fd, "ok %s by=%.*s\n", st->service, (int)by.len, by.ptr ? by.ptr : "");
    }
    /* else: not registered yet, most likely; the next tick asks again */
    fv_free(a);
}

static void ask(fv_module_ctx_t *ctx, const char *module, const char *method, const char *id,
                const char *player)
{
    if (answered)
        return;
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = (char *)id;
    fv_md_t md;
    fv_md_init(&md, 0);
    if (player && fv_md_add(&md, fv_slice_cstr("x-fv-player"), player, strlen(player)) < 0)
        fprintf(stderr, "cannot add metadata\n");
    fv_rpc_call_opts_t opts = {.deadline_ms = 1000, .metadata = &md};
    asked_t *a = fv_calloc(1, sizeof(*a));
    if (fv_call_with(ctx, module, method, &req.base, &finalverse__common__v1__status__descriptor,
                     &opts, on_answer, a, &a->req) < 0) {
        fprintf(stderr, "fv_call refused its arguments\n");
        fv_free(a);
    }
    fv_md_dispose(&md);
}

/* ---- process A: world-engine ---- */

static void h_harmony(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    answer(call, in, "harmony");
}

static const fv_rpc_method_t world_methods[] = {
    {"Harmony", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_harmony, true},
};

static void on_world_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    ask(ctx, "song-engine", "Song", "lumi", NULL);
}

static int world_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    int rc = fv_module_serve(ctx, "finalverse.test.v1.WorldService", world_methods, 1, NULL);
    return rc < 0 ? rc : fv_module_add_tick(ctx, "world", 5, on_world_tick, NULL);
}

static const fv_module_t world_module = {
    .name = "world-engine",
    .start = world_start,
};

/* ---- process B: song-engine; it stops once it answered and was answered ---- */

static void h_song(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    answer(call, in, "song");
}

static const fv_rpc_method_t song_methods[] = {
    {"Song", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_song, true},
};

static void on_song_tick(fv_module_ctx_t *ctx, const fv_tick_info_t *tick, void *data)
{
    ask(ctx, "world-engine", "Harmony", "terra-nova", "p-1");
    if (answered && was_called)
        fv_runtime_shutdown(rt);
}

static int song_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    int rc = fv_module_serve(ctx, "finalverse.test.v1.SongService", song_methods, 1, NULL);
    return rc < 0 ? rc : fv_module_add_tick(ctx, "song", 5, on_song_tick, NULL);
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

    char line[256], want[128];
    read_line(b_out, line, sizeof(line), 20000);
    snprintf(want, sizeof(want), "ok harmony-of:terra-nova:p-1:%d by=harmony", (int)a);
    assert_string_equal(line, want);           /* answered by process A's world-engine */
    read_line(a_out, line, sizeof(line), 20000);
    snprintf(want, sizeof(want), "ok song-of:lumi::%d by=song", (int)b);
    assert_string_equal(line, want);           /* and A by process B's song-engine */

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
