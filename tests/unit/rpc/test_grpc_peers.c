/* test_grpc_peers.c - our cross-process transport (the client side of fv_call) calling gRPC
 * servers nobody here wrote: npm's @grpc/grpc-js and Debian's python3-grpcio, each started as
 * a child process (tests/support/grpc_peer_server.{js,py}) serving "/world-engine/<Method>".
 * For each: a unary answer, an unknown method (UNIMPLEMENTED), a deadline that passes while
 * the server sleeps, a cancel that the server hears, answers just under and just over the
 * message limit, a request near the limit, UNAVAILABLE answers retried for an idempotent
 * call and not for another, metadata both ways (text and binary, headers and trailers), and
 * server-streaming calls: whole, cancelled mid-stream, cut by their deadline. The grpc-js
 * peer also serves npm's health service and server reflection: our client asks Health/Check,
 * follows Health/Watch through a change, and lists services by reflection (a bidirectional
 * method, called with one request). A third peer, on python3-h2, answers wrongly on purpose:
 * a truncated or compressed message, one announced over the limit, one that is no protobuf,
 * no trailers, an HTTP 503, metadata that is not base64, a stream cut inside a message; each
 * fails that call with the right code, and the next call is served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "health.pb-c.h"
#include "core/alloc.h"
#include "core/time.h"
#include "rpc/grpc_transport.h"
#include "fake_resolver.h"
#include "loop_wait.h"
#include "loopback.h"

#define WAIT_MS 20000
#define LIMIT (4u * 1024u * 1024u)     /* the transport's default message limit */

typedef struct peer {
    const char *name;
    const char *argv[4];          /* program, script, port (filled), NULL */
    pid_t pid;
    int port;
    char err_path[64];            /* the server's stderr, where it notes cancels */
    uv_loop_t loop;
    uv_timer_t cancel_timer;      /* cancel_reaches_the_peer's */
    fv_rpc_t *rpc;
    fv_grpc_transport_t *tr;
    int closed;
} peer_t;

typedef struct result {
    int calls;
    int status;
    fv_rpc_req_t *req;            /* set by the call: the answer's metadata is read from it */
    fv_md_t head, trail;          /* the answer's metadata, copied in on_done */
    int messages;                 /* of a stream, in order "0", "1", ... */
    int cancel_after;             /* a stream: cancel once this many came (0: never) */
    bool out_of_order;
    size_t len;                   /* of the answer's service */
    char service[64];
    char message[FV_ERROR_MSG_LEN];
} result_t;

/* ---- the resolver: world-engine, and the standard services, are the peer ---- */

static int resolve(void *rdata, const char *module, fv_grpc_resolved_cb cb, void *data)
{
    peer_t *p = rdata;
    if (strcmp(module, "world-engine") != 0 && strncmp(module, "grpc.", 5) != 0)
        return FV_ENOENT;
    return fv_test_resolve_later(&p->loop, p->port, cb, data);
}

/* ---- the peer process ---- */

/* Starts the peer on port; true once it said "ready" (false: it could not listen there, the
 * port having been taken since it was found free, or it failed to start). */
static bool spawn_on(peer_t *p, int port_no)
{
    char port[16];
    p->port = port_no;
    snprintf(port, sizeof(port), "%d", p->port);
    snprintf(p->err_path, sizeof(p->err_path), "/tmp/fv-peer-%d.err", (int)getpid());
    int out[2];
    assert_int_equal(pipe(out), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        const char *src = getenv("FV_SRC");
        char script[512], modules[512];
        snprintf(script, sizeof(script), "%s/tests/support/%s", src ? src : ".", p->argv[1]);
        snprintf(modules, sizeof(modules), "%s/tests/support/node_modules", src ? src : ".");
        setenv("NODE_PATH", modules, 1);
        dup2(out[1], 1);
        FILE *err = freopen(p->err_path, "w", stderr);
        (void)err;
        close(out[0]);
        close(out[1]);
        execlp(p->argv[0], p->argv[0], script, port, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* "ready" once it listens; a peer that cannot start fails the test here */
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    char line[64] = "";
    if (poll(&pfd, 1, WAIT_MS) == 1) {
        ssize_t n = read(out[0], line, sizeof(line) - 1);
        line[n > 0 ? n : 0] = '\0';
    }
    close(out[0]);
    if (strstr(line, "ready"))
        return true;
    int st;
    kill(p->pid, SIGTERM);
    waitpid(p->pid, &st, 0);
    return false;
}

static void spawn(peer_t *p)
{
    /* other suites pick ports from the same range: a few tries */
    for (int i = 0; i < 5; i++)
        if (spawn_on(p, fv_test_port_base(24000, 300) + i))
            return;
    fail_msg("%s did not start (%s)", p->name, p->argv[0]);
}

static int setup(void **state)
{
    peer_t *p = *state;
    spawn(p);
    assert_int_equal(uv_loop_init(&p->loop), 0);
    assert_int_equal(fv_rpc_new(&p->loop, NULL, &p->rpc), 0);
    assert_int_equal(fv_grpc_transport_new(&p->loop, p->rpc, resolve, p, 0, &p->tr), 0);
    return 0;
}

static void on_closed(void *data)
{
    ((peer_t *)data)->closed++;
}

static bool peer_said(const peer_t *p, const char *what)
{
    FILE *f = fopen(p->err_path, "r");
    char buf[4096] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return strstr(buf, what) != NULL;
}

static int teardown(void **state)
{
    peer_t *p = *state;
    fv_grpc_transport_close(p->tr, on_closed, p);
    fv_rpc_close(p->rpc, on_closed, p);
    assert_int_equal(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(p->closed, 2);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    p->closed = 0;
    int st;
    bool died = waitpid(p->pid, &st, WNOHANG) == p->pid;  /* it must not die on its own */
    if (!died) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, &st, 0);
    }
    if (died || peer_said(p, "Traceback") || peer_said(p, "Error")) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "cat %s >&2", p->err_path);
        (void)!system(cmd);
    }
    unlink(p->err_path);
    if (died)
        fail_msg("%s exited early (status %d)", p->name, st);
    return 0;
}

/* ---- calls ---- */

static void on_done(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    result_t *r = data;
    r->calls++;
    r->status = status;
    if (out) {
        const char *svc = ((const Finalverse__Common__V1__Status *)out)->service;
        r->len = strlen(svc);
        snprintf(r->service, sizeof(r->service), "%s", svc);
    }
    if (err)
        snprintf(r->message, sizeof(r->message), "%s", err->msg);
    if (r->req) {
        const fv_md_t *head, *trail;
        fv_rpc_req_answer_metadata(r->req, &head, &trail);
        fv_md_init(&r->head, 0);
        fv_md_init(&r->trail, 0);
        assert_int_equal(fv_md_copy(&r->head, head), 0);
        assert_int_equal(fv_md_copy(&r->trail, trail), 0);
    }
}

static void result_dispose(result_t *r)
{
    fv_md_dispose(&r->head);
    fv_md_dispose(&r->trail);
}

static void on_message(const ProtobufCMessage *msg, void *data)
{
    result_t *r = data;
    char want[16];
    snprintf(want, sizeof(want), "%d", r->messages++);
    if (strcmp(((const Finalverse__Common__V1__Status *)msg)->service, want) != 0)
        r->out_of_order = true;
    if (r->cancel_after && r->messages == r->cancel_after)
        fv_rpc_cancel(r->req);
}

static void call_with(peer_t *p, const char *method, const char *id,
                      const fv_rpc_call_opts_t *opts, result_t *r)
{
    Finalverse__Common__V1__IdRequest in = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    in.id = (char *)id;
    assert_int_equal(fv_rpc_call_with(p->rpc, "world-engine", method, &in.base,
                                      &finalverse__common__v1__status__descriptor, opts,
                                      on_done, r, &r->req), 0);
    fv_test_run_until(&p->loop, &r->calls, 1, WAIT_MS);
}

static void call(peer_t *p, const char *method, const char *id, uint32_t deadline_ms,
                 unsigned flags, result_t *r, fv_rpc_req_t **req)
{
    Finalverse__Common__V1__IdRequest in = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    in.id = (char *)id;
    assert_int_equal(fv_rpc_call_ex(p->rpc, "world-engine", method, &in.base,
                                    &finalverse__common__v1__status__descriptor, deadline_ms,
                                    flags, on_done, r, req), 0);
    fv_test_run_until(&p->loop, &r->calls, 1, WAIT_MS);
}

static void unary_and_unknown(void **state)
{
    peer_t *p = *state;
    result_t r = {0}, nope = {0};
    call(p, "Echo", "terra-nova", 5000, 0, &r, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.service, "terra-nova");
    call(p, "Nope", "x", 5000, 0, &nope, NULL);
    assert_int_equal(nope.status, FV_EUNIMPLEMENTED);
}

static void deadline_passes(void **state)
{
    peer_t *p = *state;
    result_t r = {0};
    uint64_t t0 = fv_now_ms();
    call(p, "Sleep", "3000", 200, 0, &r, NULL);
    assert_int_equal(r.status, FV_ETIMEDOUT);
    assert_true(fv_now_ms() - t0 < 2000);
}


static void on_cancel_due(uv_timer_t *t)
{
    fv_rpc_cancel(t->data);
}

static void cancel_reaches_the_peer(void **state)
{
    peer_t *p = *state;
    result_t r = {0};
    fv_rpc_req_t *req = NULL;
    Finalverse__Common__V1__IdRequest in = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    in.id = "5000";
    assert_int_equal(fv_rpc_call(p->rpc, "world-engine", "Sleep", &in.base,
                                 &finalverse__common__v1__status__descriptor, 10000, on_done, &r,
                                 &req), 0);
    uv_timer_init(&p->loop, &p->cancel_timer);
    p->cancel_timer.data = req;
    uv_timer_start(&p->cancel_timer, on_cancel_due, 300, 0);
    fv_test_run_until(&p->loop, &r.calls, 1, WAIT_MS);
    uv_close((uv_handle_t *)&p->cancel_timer, NULL);
    assert_int_equal(r.status, FV_ECANCELED);
    for (int i = 0; i < 100 && !peer_said(p, "cancelled"); i++)
        usleep(50000);
    assert_true(peer_said(p, "cancelled"));
}

static void near_the_size_limit(void **state)
{
    peer_t *p = *state;
    char n[16];
    result_t under = {0}, over = {0}, big_in = {0};
    /* Status{service}: 1 tag byte and 4 length bytes before the text */
    snprintf(n, sizeof(n), "%u", LIMIT - 5);
    call(p, "Big", n, 10000, 0, &under, NULL);
    if (under.status != 0)
        fail_msg("%s: %s", fv_strerror(under.status), under.message);
    assert_int_equal(under.len, LIMIT - 5);
    snprintf(n, sizeof(n), "%u", LIMIT - 4);
    call(p, "Big", n, 10000, 0, &over, NULL);
    assert_int_equal(over.status, FV_ETOOBIG);
    /* a request of 4 MiB less a little goes out and comes back */
    char *id = fv_malloc(LIMIT - 16);
    memset(id, 'y', LIMIT - 17);
    id[LIMIT - 17] = '\0';
    call(p, "Echo", id, 10000, 0, &big_in, NULL);
    fv_free(id);
    assert_int_equal(big_in.status, 0);
    assert_int_equal(big_in.len, LIMIT - 17);
}

static void unavailable_retried_when_idempotent(void **state)
{
    peer_t *p = *state;
    result_t idem = {0}, plain = {0};
    call(p, "Unavail", "k1", 5000, FV_RPC_IDEMPOTENT, &idem, NULL);
    assert_int_equal(idem.status, 0);
    assert_string_equal(idem.service, "k1:3");
    call(p, "Unavail", "k2", 5000, 0, &plain, NULL);
    assert_int_equal(plain.status, FV_EUNAVAILABLE);
    assert_string_equal(plain.message, "not yet");
}

static void assert_md(const fv_md_t *md, const char *name, const void *value, size_t len)
{
    fv_slice_t v = fv_md_get(md, name);
    if (!v.ptr)
        fail_msg("no metadata %s", name);
    assert_int_equal(v.len, len);
    assert_memory_equal(v.ptr, value, len);
}

static void metadata_both_ways(void **state)
{
    peer_t *p = *state;
    static const uint8_t bin[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, '=', ','};
    fv_md_t md;
    fv_md_init(&md, 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("x-fv-player"), "p-42", 4), 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("trace-bin"), bin, sizeof(bin)), 0);
    fv_rpc_call_opts_t opts = {.deadline_ms = 5000, .metadata = &md};
    result_t r = {0};
    call_with(p, "Meta", "m", &opts, &r);
    fv_md_dispose(&md);
    if (r.status != 0)
        fail_msg("%s: %s", fv_strerror(r.status), r.message);
    assert_string_equal(r.service, "meta");
    assert_md(&r.head, "echo-x-fv-player", "p-42", 4);
    assert_md(&r.head, "echo-trace-bin", bin, sizeof(bin));
    assert_md(&r.trail, "trail-x-fv-player", "p-42", 4);
    assert_md(&r.trail, "trail-trace-bin", bin, sizeof(bin));
    assert_null(fv_md_get(&r.head, "trail-x-fv-player").ptr);
    result_dispose(&r);
}

static void server_streaming(void **state)
{
    peer_t *p = *state;
    fv_rpc_call_opts_t opts = {.deadline_ms = 10000, .on_message = on_message};
    result_t whole = {0}, none = {0}, cut = {0}, late = {0};
    call_with(p, "Count", "300", &opts, &whole);
    if (whole.status != 0)
        fail_msg("%s: %s", fv_strerror(whole.status), whole.message);
    assert_int_equal(whole.messages, 300);
    assert_false(whole.out_of_order);
    call_with(p, "Count", "0", &opts, &none);
    assert_int_equal(none.status, 0);
    assert_int_equal(none.messages, 0);
    /* the caller stops after three: the peer hears it */
    cut.cancel_after = 3;
    call_with(p, "Count", "1000:20", &opts, &cut);
    assert_int_equal(cut.status, FV_ECANCELED);
    assert_int_equal(cut.messages, 3);
    for (int i = 0; i < 100 && !peer_said(p, "stream cancelled"); i++)
        usleep(50000);
    assert_true(peer_said(p, "stream cancelled"));
    /* the deadline covers the whole stream, what came before it stays delivered */
    opts.deadline_ms = 400;
    call_with(p, "Count", "1000:50", &opts, &late);
    assert_int_equal(late.status, FV_ETIMEDOUT);
    assert_true(late.messages >= 1 && late.messages < 20);
    assert_false(late.out_of_order);
    result_t *all[] = {&whole, &none, &cut, &late};
    for (size_t i = 0; i < 4; i++)
        result_dispose(all[i]);
}

/* ---- the standard services (grpc-js only: Debian ships no Python health or reflection) ---- */

typedef struct watch {
    int calls, status;
    int statuses[8];
    int messages;
    char services[256];
} watch_t;

static void on_watch_done(int status, const ProtobufCMessage *out, const fv_error_t *err,
                          void *data)
{
    watch_t *w = data;
    w->calls++;
    w->status = status;
}

static void on_health(const ProtobufCMessage *msg, void *data)
{
    watch_t *w = data;
    if (w->messages < 8)
        w->statuses[w->messages] = ((const Grpc__Health__V1__HealthCheckResponse *)msg)->status;
    w->messages++;
}

static void on_health_done(int status, const ProtobufCMessage *out, const fv_error_t *err,
                           void *data)
{
    if (out)
        on_health(out, data);
    on_watch_done(status, out, err, data);
}

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define LIST_SERVICES_RESPONSE \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE

static void on_reflection(const ProtobufCMessage *msg, void *data)
{
    watch_t *w = data;
    const Grpc__Reflection__V1alpha__ServerReflectionResponse *r = (const void *)msg;
    w->messages++;
    if (r->message_response_case != LIST_SERVICES_RESPONSE)
        return;
    for (size_t i = 0; i < r->list_services_response->n_service; i++) {
        size_t len = strlen(w->services);
        snprintf(w->services + len, sizeof(w->services) - len, "%s ",
                 r->list_services_response->service[i]->name);
    }
}

static void check(peer_t *p, const char *service, watch_t *w)
{
    Grpc__Health__V1__HealthCheckRequest in = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    in.service = (char *)service;
    assert_int_equal(fv_rpc_call(p->rpc, "grpc.health.v1.Health", "Check", &in.base,
                                 &grpc__health__v1__health_check_response__descriptor, 5000,
                                 on_health_done, w, NULL), 0);
    fv_test_run_until(&p->loop, &w->calls, 1, WAIT_MS);
}

static void health_and_reflection(void **state)
{
    peer_t *p = *state;
    watch_t serving = {0}, unknown = {0}, watch = {0}, list = {0};
    check(p, "world-engine", &serving);
    assert_int_equal(serving.status, 0);
    assert_int_equal(serving.statuses[0], SERVING);
    check(p, "atlantis", &unknown);
    assert_int_equal(unknown.status, FV_ENOENT);

    /* Watch: SERVING at once, NOT_SERVING after the change, until we stop */
    Grpc__Health__V1__HealthCheckRequest in = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    in.service = "world-engine";
    fv_rpc_call_opts_t opts = {.deadline_ms = 10000, .on_message = on_health};
    fv_rpc_req_t *req = NULL;
    assert_int_equal(fv_rpc_call_with(p->rpc, "grpc.health.v1.Health", "Watch", &in.base,
                                      &grpc__health__v1__health_check_response__descriptor,
                                      &opts, on_watch_done, &watch, &req), 0);
    fv_test_run_until(&p->loop, &watch.messages, 1, WAIT_MS);
    result_t set = {0};
    call(p, "SetHealth", "NOT_SERVING", 5000, 0, &set, NULL);
    assert_int_equal(set.status, 0);
    fv_test_run_until(&p->loop, &watch.messages, 2, WAIT_MS);
    assert_int_equal(watch.calls, 0);                 /* the stream is still open */
    fv_rpc_cancel(req);
    fv_test_run_until(&p->loop, &watch.calls, 1, WAIT_MS);
    assert_int_equal(watch.status, FV_ECANCELED);
    assert_int_equal(watch.messages, 2);
    assert_int_equal(watch.statuses[0], SERVING);
    assert_int_equal(watch.statuses[1], NOT_SERVING);

    /* reflection: one list_services request, half-closed, answered with the list */
    Grpc__Reflection__V1alpha__ServerReflectionRequest rq =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    rq.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    rq.list_services = "";
    fv_rpc_call_opts_t ropts = {.deadline_ms = 5000, .on_message = on_reflection};
    assert_int_equal(
        fv_rpc_call_with(p->rpc, "grpc.reflection.v1alpha.ServerReflection",
                         "ServerReflectionInfo", &rq.base,
                         &grpc__reflection__v1alpha__server_reflection_response__descriptor,
                         &ropts, on_watch_done, &list, NULL), 0);
    fv_test_run_until(&p->loop, &list.calls, 1, WAIT_MS);
    assert_int_equal(list.status, 0);
    assert_int_equal(list.messages, 1);
    if (!strstr(list.services, "grpc.health.v1.Health "))
        fail_msg("reflection listed: %s", list.services);
}

#define PEER_TESTS(peer)                                                                    \
    {                                                                                       \
        cmocka_unit_test_prestate_setup_teardown(unary_and_unknown, setup, teardown, peer), \
        cmocka_unit_test_prestate_setup_teardown(deadline_passes, setup, teardown, peer),   \
        cmocka_unit_test_prestate_setup_teardown(cancel_reaches_the_peer, setup, teardown,  \
                                                 peer),                                     \
        cmocka_unit_test_prestate_setup_teardown(near_the_size_limit, setup, teardown,      \
                                                 peer),                                     \
        cmocka_unit_test_prestate_setup_teardown(unavailable_retried_when_idempotent,       \
                                                 setup, teardown, peer),                    \
        cmocka_unit_test_prestate_setup_teardown(metadata_both_ways, setup, teardown, peer),\
        cmocka_unit_test_prestate_setup_teardown(server_streaming, setup, teardown, peer),  \
    }

/* ---- a peer that answers wrongly (grpc_bad_server.py) ---- */

static void bad_answers(void **state)
{
    peer_t *p = *state;
    static const struct {
        const char *method;
        int status;
    } cases[] = {
        {"Good", 0},
        {"Truncated", FV_EPROTO},
        {"Compressed", FV_EPROTO},
        {"Huge", FV_ETOOBIG},
        {"NotProto", FV_EINVAL},
        {"NoStatus", FV_EPROTO},
        {"Http503", FV_EUNAVAILABLE},
        {"Good", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result_t r = {0};
        call(p, cases[i].method, "x", 5000, 0, &r, NULL);
        if (r.status != cases[i].status)
            fail_msg("%s: %s (%s), not %s", cases[i].method, fv_strerror(r.status), r.message,
                     fv_strerror(cases[i].status));
    }
    /* metadata that does not decode is dropped; the call and the rest of it stand */
    fv_rpc_call_opts_t opts = {.deadline_ms = 5000};
    result_t meta = {0}, cut = {0};
    call_with(p, "BadMeta", "x", &opts, &meta);
    assert_int_equal(meta.status, 0);
    assert_null(fv_md_get(&meta.head, "x-bad-bin").ptr);
    assert_md(&meta.trail, "x-ok", "yes", 3);
    /* a stream cut inside its third message: the two whole ones came, then the error */
    opts.on_message = on_message;
    call_with(p, "StreamCut", "x", &opts, &cut);
    assert_int_equal(cut.status, FV_EPROTO);
    assert_int_equal(cut.messages, 2);
    assert_false(cut.out_of_order);
    result_dispose(&meta);
    result_dispose(&cut);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    static peer_t node = {.name = "grpc-js", .argv = {"node", "grpc_peer_server.js"}};
    static peer_t python = {.name = "grpcio",
                            .argv = {"/usr/bin/python3", "grpc_peer_server.py"}};
    static peer_t bad = {.name = "python3-h2", .argv = {"/usr/bin/python3", "grpc_bad_server.py"}};
    const struct CMUnitTest js[] = PEER_TESTS(&node);
    const struct CMUnitTest py[] = PEER_TESTS(&python);
    const struct CMUnitTest js_std[] = {
        cmocka_unit_test_prestate_setup_teardown(health_and_reflection, setup, teardown, &node),
    };
    int failed = cmocka_run_group_tests_name("grpc-js server", js, NULL, NULL);
    failed += cmocka_run_group_tests_name("grpc-js standard services", js_std, NULL, NULL);
    failed += cmocka_run_group_tests_name("grpcio server", py, NULL, NULL);
    const struct CMUnitTest wrong[] = {
        cmocka_unit_test_prestate_setup_teardown(bad_answers, setup, teardown, &bad),
    };
    failed += cmocka_run_group_tests_name("a server answering wrongly", wrong, NULL, NULL);
    return failed;
}
