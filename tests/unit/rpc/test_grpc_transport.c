/* test_grpc_transport.c - one process plays two: a "remote" rpc serving world-engine behind
 * a gRPC server on a loopback port, and a "local" rpc whose calls to world-engine go through
 * the gRPC transport, over one loop. An answer, a handler's error, an unknown method, a
 * deadline, a cancel that reaches the remote handler, a module no resolver knows and an
 * instance that does not listen; retries (a dead instance next to a live one, UNAVAILABLE
 * answers for idempotent and other calls, a deadline too short to retry); least outstanding
 * (a slow instance beside a fast one gets few calls); a peer whose connect hangs, and one that
 * takes the connection and goes silent, given up long before the deadline; metadata both ways,
 * also on an error; a streaming caller of a unary method; then everything closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "core/alloc.h"
#include "net/grpc_server.h"
#include "rpc/grpc_transport.h"
#include "fake_resolver.h"
#include "loop_wait.h"

#define WAIT_MS 10000

typedef struct fx {
    uv_loop_t loop;
    fv_rpc_t *remote;              /* serves world-engine */
    fv_rpc_t *local;               /* calls it through the transport */
    fv_http_server_t *srv;
    fv_grpc_server_t *g;
    fv_grpc_transport_t *tr;
    int port;
    int held;
    int cancels;
    int closed;
    int flaky_calls;               /* Flaky calls the remote saw */
    int flaky_fails;               /* how many of the first it fails with UNAVAILABLE */
    bool split;                    /* world-engine has a dead instance beside the live one */
    unsigned split_turn;           /* its resolutions meanwhile */
    int slow_port;                 /* world-engine has this slow instance beside it (not 0) */
    int mute_port;                 /* ... or this one that never answers, listed first */
} fx_t;

typedef struct result {
    int calls;
    int status;
    char service[64];
    char message[FV_ERROR_MSG_LEN];
} result_t;

static fx_t F;

/* ---- the remote module ---- */

static void m_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const void *)in;
    Finalverse__Common__V1__Status out = FINALVERSE__COMMON__V1__STATUS__INIT;
    out.service = req->id;
    fv_rpc_reply(call, &out.base);
}

static void m_fail(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_rpc_fail(call, FV_ENOENT, "no region 100%% here");
}

static void on_cancel(fv_rpc_call_t *call, void *data)
{
    F.cancels++;
}

static void m_hold(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    F.held++;
    fv_rpc_call_on_cancel(call, on_cancel, NULL);
}

static void m_flaky(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    if (F.flaky_calls++ < F.flaky_fails) {
        fv_rpc_fail(call, FV_EUNAVAILABLE, "not now");
        return;
    }
    m_echo(call, in, data);
}

/* Meta: the request's x-fv-player and trace-bin back, as answer headers and trailers; an
 * id "fail" fails with them. */
static void m_meta(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const fv_md_t *md = fv_rpc_call_metadata(call);
    fv_slice_t who = fv_md_get(md, "x-fv-player"), trace = fv_md_get(md, "trace-bin");
    assert_int_equal(fv_rpc_call_add_header(call, "echo-player", who.ptr, who.len), 0);
    assert_int_equal(fv_rpc_call_add_trailer(call, "trace-bin", trace.ptr, trace.len), 0);
    if (strcmp(((const Finalverse__Common__V1__IdRequest *)in)->id, "fail") == 0)
        fv_rpc_fail(call, FV_EFORBIDDEN, "not you");
    else
        m_echo(call, in, data);
}

static const fv_rpc_method_t methods[] = {
    {"Meta", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_meta, true},
    {"Echo", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_echo, true},
    {"Fail", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_fail, true},
    {"Hold", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_hold, true},
    {"Flaky", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_flaky, true},
};

static void http_handler(fv_http_req_t *req, void *data)
{
    fv_http_reply(req, 404, "text/plain", "no", 2);
}

/* ---- the resolver: world-engine is on our port (split: after a dead one, as the registry
 * lists a killed instance until its TTL; or beside the slow one), lost-engine on a port nobody
 * listens on ---- */

static int resolve(void *rdata, const char *module, fv_grpc_resolved_cb cb, void *data)
{
    fx_t *f = rdata;
    if (strcmp(module, "world-engine") == 0) {
        f->split_turn++;
        int two[2] = {f->split ? 1 : f->port, f->split ? f->port : f->slow_port};
        if (f->mute_port) {
            two[0] = f->mute_port;
            two[1] = f->port;
        }
        return f->split || f->slow_port || f->mute_port
                   ? fv_test_resolve_ports(&f->loop, two, 2, cb, data)
                   : fv_test_resolve_later(&f->loop, f->port, cb, data);
    }
    return fv_test_resolve_later(&f->loop, strcmp(module, "lost-engine") == 0 ? 1 : 0, cb,
                                 data);
}

/* ---- a second instance of world-engine whose Echo answers after 200 ms ---- */

typedef struct slow {
    fv_rpc_t *rpc;
    fv_grpc_server_t *g;
    fv_http_server_t *srv;
    int calls;
    int closed;
} slow_t;

static slow_t S;

typedef struct held {
    uv_timer_t timer;
    fv_rpc_call_t *call;
} held_t;

static void on_held_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void on_slow_due(uv_timer_t *t)
{
    held_t *h = t->data;
    Finalverse__Common__V1__Status out = FINALVERSE__COMMON__V1__STATUS__INIT;
    out.service = "slow";
    fv_rpc_reply(h->call, &out.base);
    uv_close((uv_handle_t *)t, on_held_closed);
}

/* The caller went, or the slow instance closes: the answer is not owed any more. */
static void on_slow_cancel(fv_rpc_call_t *call, void *data)
{
    held_t *h = data;
    uv_close((uv_handle_t *)&h->timer, on_held_closed);
}

static void m_slow_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    S.calls++;
    held_t *h = fv_calloc(1, sizeof(*h));
    h->call = call;
    fv_rpc_call_on_cancel(call, on_slow_cancel, h);
    uv_timer_init(&F.loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_slow_due, 200, 0);
}

static const fv_rpc_method_t slow_methods[] = {
    {"Echo", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, m_slow_echo, true},
};

static void slow_open(void)
{
    memset(&S, 0, sizeof(S));
    assert_int_equal(fv_rpc_new(&F.loop, NULL, &S.rpc), 0);
    assert_int_equal(fv_rpc_serve(S.rpc, "world-engine", "finalverse.test.v1.World", slow_methods,
                                  1, NULL), 0);
    assert_int_equal(fv_grpc_server_new(S.rpc, "world-engine", NULL, &S.g), 0);
    assert_int_equal(fv_http_server_new(&F.loop, NULL, http_handler, NULL, &S.srv), 0);
    fv_grpc_server_attach(S.g, S.srv);
    assert_int_equal(fv_http_server_listen(S.srv, "127.0.0.1", 0, NULL), 0);
    F.slow_port = fv_http_server_port(S.srv);
}

static void on_slow_closed(void *data)
{
    S.closed++;
}

static void slow_close(void)
{
    if (!S.rpc)
        return;
    F.slow_port = 0;
    fv_http_server_close(S.srv, NULL, NULL);
    fv_rpc_close(S.rpc, on_slow_closed, NULL);
    fv_test_run_until(&F.loop, &S.closed, 1, WAIT_MS);
    fv_grpc_server_free(S.g);
    S.rpc = NULL;
}

/* ---- calls ---- */

static void on_done(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    result_t *r = data;
    r->calls++;
    r->status = status;
    if (out)
        snprintf(r->service, sizeof(r->service), "%s",
                 ((const Finalverse__Common__V1__Status *)out)->service);
    if (err)
        snprintf(r->message, sizeof(r->message), "%s", err->msg);
}

static void call_flags(const char *module, const char *method, uint32_t deadline_ms,
                       unsigned flags, result_t *r, fv_rpc_req_t **req)
{
    Finalverse__Common__V1__IdRequest in = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    in.id = "terra-nova";
    assert_int_equal(fv_rpc_call_ex(F.local, module, method, &in.base,
                                    &finalverse__common__v1__status__descriptor, deadline_ms,
                                    flags, on_done, r, req), 0);
}

static void call(const char *module, const char *method, uint32_t deadline_ms, result_t *r,
                 fv_rpc_req_t **req)
{
    call_flags(module, method, deadline_ms, 0, r, req);
}

static int setup(void **state)
{
    memset(&F, 0, sizeof(F));
    memset(&S, 0, sizeof(S));
    assert_int_equal(uv_loop_init(&F.loop), 0);
    assert_int_equal(fv_rpc_new(&F.loop, NULL, &F.remote), 0);
    assert_int_equal(fv_rpc_new(&F.loop, NULL, &F.local), 0);
    assert_int_equal(fv_rpc_serve(F.remote, "world-engine", "finalverse.test.v1.World", methods,
                                  sizeof(methods) / sizeof(methods[0]), NULL), 0);
    assert_int_equal(fv_grpc_server_new(F.remote, "world-engine", NULL, &F.g), 0);
    assert_int_equal(fv_http_server_new(&F.loop, NULL, http_handler, NULL, &F.srv), 0);
    fv_grpc_server_attach(F.g, F.srv);
    assert_int_equal(fv_http_server_listen(F.srv, "127.0.0.1", 0, NULL), 0);
    F.port = fv_http_server_port(F.srv);
    assert_int_equal(fv_grpc_transport_new(&F.loop, F.local, resolve, &F, 0, &F.tr), 0);
    return 0;
}

static void on_part_closed(void *data)
{
    F.closed++;
}

static int teardown(void **state)
{
    slow_close();                   /* still open when its test failed */
    fv_grpc_transport_close(F.tr, on_part_closed, NULL);
    fv_rpc_close(F.local, on_part_closed, NULL);
    fv_http_server_close(F.srv, NULL, NULL);
    fv_rpc_close(F.remote, on_part_closed, NULL);
    assert_int_equal(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(F.closed, 3);
    fv_grpc_server_free(F.g);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    return 0;
}

static void answer_and_errors(void **state)
{
    result_t ok = {0}, fail = {0}, nope = {0};
    call("world-engine", "Echo", 5000, &ok, NULL);
    call("world-engine", "Fail", 5000, &fail, NULL);
    call("world-engine", "Nope", 5000, &nope, NULL);
    fv_test_run_until(&F.loop, &ok.calls, 1, WAIT_MS);
    fv_test_run_until(&F.loop, &fail.calls, 1, WAIT_MS);
    fv_test_run_until(&F.loop, &nope.calls, 1, WAIT_MS);
    assert_int_equal(ok.status, 0);
    assert_string_equal(ok.service, "terra-nova");
    assert_int_equal(fail.status, FV_ENOENT);
    assert_string_equal(fail.message, "no region 100% here");
    assert_int_equal(nope.status, FV_EUNIMPLEMENTED);
}

typedef struct md_result {
    result_t r;
    fv_rpc_req_t *req;
    char player[16];
    bool player_in_trailers;
    uint8_t trace[16];
    size_t trace_len;
    int messages;
} md_result_t;

static void on_md_done(int status, const ProtobufCMessage *out, const fv_error_t *err,
                       void *data)
{
    md_result_t *m = data;
    on_done(status, out, err, &m->r);
    const fv_md_t *head, *trail;
    fv_rpc_req_answer_metadata(m->req, &head, &trail);
    fv_slice_t p = fv_md_get(head, "echo-player"), t = fv_md_get(trail, "trace-bin");
    m->player_in_trailers = !p.ptr;
    if (!p.ptr)
        p = fv_md_get(trail, "echo-player");
    snprintf(m->player, sizeof(m->player), "%.*s", (int)p.len, p.ptr ? p.ptr : "");
    m->trace_len = t.len < sizeof(m->trace) ? t.len : sizeof(m->trace);
    if (t.ptr)
        memcpy(m->trace, t.ptr, m->trace_len);
}

static void on_message(const ProtobufCMessage *msg, void *data)
{
    md_result_t *m = data;
    m->messages++;
    snprintf(m->r.service, sizeof(m->r.service), "%s",
             ((const Finalverse__Common__V1__Status *)msg)->service);
}

static void md_call(const char *id, const fv_rpc_call_opts_t *opts, md_result_t *m)
{
    Finalverse__Common__V1__IdRequest in = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    in.id = (char *)id;
    assert_int_equal(fv_rpc_call_with(F.local, "world-engine", "Meta", &in.base,
                                      &finalverse__common__v1__status__descriptor, opts,
                                      on_md_done, m, &m->req), 0);
    fv_test_run_until(&F.loop, &m->r.calls, 1, WAIT_MS);
}

static void metadata_and_streams_across(void **state)
{
    static const uint8_t bin[] = {0, 0xff, ',', '=', 0x80};
    fv_md_t md;
    fv_md_init(&md, 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("x-fv-player"), "p-9", 3), 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("trace-bin"), bin, sizeof(bin)), 0);
    fv_rpc_call_opts_t opts = {.deadline_ms = 5000, .metadata = &md};
    md_result_t ok = {0}, fail = {0}, stream = {0};
    md_call("ok", &opts, &ok);
    assert_int_equal(ok.r.status, 0);
    assert_string_equal(ok.r.service, "ok");
    assert_string_equal(ok.player, "p-9");
    assert_int_equal(ok.trace_len, sizeof(bin));
    assert_memory_equal(ok.trace, bin, sizeof(bin));
    assert_false(ok.player_in_trailers);
    /* an error's metadata comes too, all of it as trailers (a trailers-only answer) */
    md_call("fail", &opts, &fail);
    assert_int_equal(fail.r.status, FV_EFORBIDDEN);
    assert_string_equal(fail.player, "p-9");
    assert_true(fail.player_in_trailers);
    assert_int_equal(fail.trace_len, sizeof(bin));
    /* a streaming caller of a unary method: one message, then the end */
    opts.on_message = on_message;
    md_call("streamed", &opts, &stream);
    fv_md_dispose(&md);
    assert_int_equal(stream.r.status, 0);
    assert_int_equal(stream.messages, 1);
    assert_string_equal(stream.r.service, "streamed");
    assert_string_equal(stream.player, "p-9");
}

static void deadline_reaches_the_remote_handler(void **state)
{
    result_t r = {0};
    call("world-engine", "Hold", 100, &r, NULL);
    fv_test_run_until(&F.loop, &r.calls, 1, WAIT_MS);
    assert_int_equal(r.status, FV_ETIMEDOUT);
    fv_test_run_until(&F.loop, &F.cancels, 1, WAIT_MS);
    assert_int_equal(F.held, 1);
}

static void cancel_reaches_the_remote_handler(void **state)
{
    result_t r = {0};
    fv_rpc_req_t *req = NULL;
    call("world-engine", "Hold", 30000, &r, &req);
    fv_test_run_until(&F.loop, &F.held, 1, WAIT_MS);
    fv_rpc_cancel(req);
    fv_test_run_until(&F.loop, &r.calls, 1, WAIT_MS);
    assert_int_equal(r.status, FV_ECANCELED);
    fv_test_run_until(&F.loop, &F.cancels, 1, WAIT_MS);
}

static void unknown_and_unreachable(void **state)
{
    result_t unknown = {0}, lost = {0};
    call("ghost-engine", "Echo", 5000, &unknown, NULL);
    call("lost-engine", "Echo", 5000, &lost, NULL);
    fv_test_run_until(&F.loop, &unknown.calls, 1, WAIT_MS);
    fv_test_run_until(&F.loop, &lost.calls, 1, WAIT_MS);
    assert_int_equal(unknown.status, FV_EUNAVAILABLE);
    assert_int_equal(lost.status, FV_EUNAVAILABLE);
}

/* Half the resolutions name an instance that refuses connections: no call, idempotent or
 * not, sees it (a refused connection never carried a request: the next instance is asked). */
static void dead_instance_is_passed_over(void **state)
{
    result_t r[20] = {{0}};
    F.split = true;
    for (int i = 0; i < 20; i++)
        call("world-engine", "Echo", 5000, &r[i], NULL);
    for (int i = 0; i < 20; i++) {
        fv_test_run_until(&F.loop, &r[i].calls, 1, WAIT_MS);
        if (r[i].status != 0)
            fail_msg("call %d: %s (%s)", i, fv_strerror(r[i].status), r[i].message);
        assert_string_equal(r[i].service, "terra-nova");
    }
    /* the dead address is remembered: later calls go straight to the live one */
    unsigned turns = F.split_turn;
    result_t later = {0};
    call("world-engine", "Echo", 5000, &later, NULL);
    fv_test_run_until(&F.loop, &later.calls, 1, WAIT_MS);
    assert_int_equal(later.status, 0);
    assert_int_equal(F.split_turn - turns, 1);        /* one attempt */
}

/* A listening socket on loopback that never accepts: with a backlog of 0 and two connections
 * waiting in it, the kernel drops further SYNs and a connect hangs (a machine gone); with room
 * in the backlog, connections are made and then nothing is ever read or answered (a process
 * stopped). fds[0] listens, the others fill; -1 ends the list. */
static int mute_listener(bool hang_connects, int fds[4])
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fds[0], hang_connects ? 0 : 8), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sa, &len), 0);
    fds[1] = fds[2] = fds[3] = -1;
    for (int i = 1; hang_connects && i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)!connect(fds[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000);                      /* the fillers' handshakes */
    return ntohs(sa.sin_port);
}

static void mute_close(int fds[4])
{
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* A connect that hangs is given up after connect_ms and the call goes to the live instance
 * (it never left); later calls pass the address over. */
static void a_connect_that_hangs_is_given_up(void **state)
{
    int fds[4];
    F.mute_port = mute_listener(true, fds);
    fv_grpc_transport_set_timeouts(F.tr, 300, 0, 0);
    result_t r = {0}, again = {0};
    uint64_t t0 = uv_now(&F.loop);
    call("world-engine", "Echo", 5000, &r, NULL);      /* not idempotent: it never left */
    fv_test_run_until(&F.loop, &r.calls, 1, WAIT_MS);
    uv_update_time(&F.loop);
    if (r.status != 0)
        fail_msg("%s (%s)", fv_strerror(r.status), r.message);
    assert_true(uv_now(&F.loop) - t0 < 2500);
    call("world-engine", "Echo", 5000, &again, NULL);
    fv_test_run_until(&F.loop, &again.calls, 1, WAIT_MS);
    assert_int_equal(again.status, 0);
    F.mute_port = 0;
    mute_close(fds);
}

/* A peer that takes the connection and goes silent: after ping_idle_ms with the call under way
 * a PING goes, unanswered after ping_ack_ms the connection is given up. An idempotent call is
 * then made on the live instance; another fails UNAVAILABLE, in well under its deadline. */
static void a_silent_peer_is_given_up(void **state)
{
    int fds[4];
    F.mute_port = mute_listener(false, fds);
    fv_grpc_transport_set_timeouts(F.tr, 0, 200, 200);
    result_t idem = {0}, plain = {0};
    uint64_t t0 = uv_now(&F.loop);
    call_flags("world-engine", "Echo", 10000, FV_RPC_IDEMPOTENT, &idem, NULL);
    fv_test_run_until(&F.loop, &idem.calls, 1, WAIT_MS);
    if (idem.status != 0)
        fail_msg("%s (%s)", fv_strerror(idem.status), idem.message);
    /* the mute address is passed over now; list it alone to see a plain call fail */
    F.port = F.mute_port;
    call("world-engine", "Echo", 10000, &plain, NULL);
    fv_test_run_until(&F.loop, &plain.calls, 1, WAIT_MS);
    uv_update_time(&F.loop);
    assert_int_equal(plain.status, FV_EUNAVAILABLE);
    assert_true(uv_now(&F.loop) - t0 < 5000);
    F.mute_port = 0;
    mute_close(fds);
}

static void on_tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

static void run_ms(uint64_t ms)
{
    int fired = 0;
    uv_timer_t t;
    uv_timer_init(&F.loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_tick, ms, 0);
    fv_test_run_until(&F.loop, &fired, 1, ms + WAIT_MS);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&F.loop, UV_RUN_NOWAIT);
}

/* A call every 5 ms to two instances, one answering at once, one after 200 ms: the slow one
 * soon has calls under way and the fast one none, so nearly every call goes to the fast one
 * (round-robin would send the slow one half). */
static void least_outstanding_prefers_the_faster(void **state)
{
    slow_open();
    result_t r[40] = {{0}};
    for (int i = 0; i < 40; i++) {
        call("world-engine", "Echo", 5000, &r[i], NULL);
        run_ms(5);
    }
    int slow = 0;
    for (int i = 0; i < 40; i++) {
        fv_test_run_until(&F.loop, &r[i].calls, 1, WAIT_MS);
        assert_int_equal(r[i].status, 0);
        slow += strcmp(r[i].service, "slow") == 0;
    }
    assert_int_equal(slow, S.calls);
    if (slow > 5)
        fail_msg("the slow instance got %d of 40 calls", slow);
    slow_close();
}

/* UNAVAILABLE from the instance: an idempotent call is made again after a backoff and
 * succeeds; another call is not repeated (it may have had its effect). */
static void unavailable_retried_when_idempotent(void **state)
{
    F.flaky_fails = 2;
    result_t idem = {0};
    call_flags("world-engine", "Flaky", 5000, FV_RPC_IDEMPOTENT, &idem, NULL);
    fv_test_run_until(&F.loop, &idem.calls, 1, WAIT_MS);
    assert_int_equal(idem.status, 0);
    assert_int_equal(F.flaky_calls, 3);
    F.flaky_calls = 0;
    result_t once = {0};
    call("world-engine", "Flaky", 5000, &once, NULL);
    fv_test_run_until(&F.loop, &once.calls, 1, WAIT_MS);
    assert_int_equal(once.status, FV_EUNAVAILABLE);
    assert_string_equal(once.message, "not now");
    assert_int_equal(F.flaky_calls, 1);
    /* always unavailable: the attempts stop (at most 4) and the last failure is reported */
    F.flaky_calls = 0;
    F.flaky_fails = 1000;
    result_t never = {0};
    call_flags("world-engine", "Flaky", 5000, FV_RPC_IDEMPOTENT, &never, NULL);
    fv_test_run_until(&F.loop, &never.calls, 1, WAIT_MS);
    assert_int_equal(never.status, FV_EUNAVAILABLE);
    assert_int_equal(F.flaky_calls, 4);
    /* a deadline shorter than the backoff: no retry that could not finish in time */
    F.flaky_calls = 0;
    result_t hurried = {0};
    call_flags("world-engine", "Flaky", 10, FV_RPC_IDEMPOTENT, &hurried, NULL);
    fv_test_run_until(&F.loop, &hurried.calls, 1, WAIT_MS);
    assert_true(hurried.status == FV_EUNAVAILABLE || hurried.status == FV_ETIMEDOUT);
    assert_true(F.flaky_calls <= 2);
}

/* Calls still under way when the transport closes end with FV_ECANCELED. */
static void close_with_calls_in_flight(void **state)
{
    result_t r = {0};
    call("world-engine", "Hold", 30000, &r, NULL);
    fv_test_run_until(&F.loop, &F.held, 1, WAIT_MS);
    fv_grpc_transport_close(F.tr, on_part_closed, NULL);
    F.tr = NULL;
    fv_test_run_until(&F.loop, &r.calls, 1, WAIT_MS);
    assert_int_equal(r.status, FV_ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answer_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_reaches_the_remote_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_reaches_the_remote_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_and_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_instance_is_passed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(unavailable_retried_when_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(least_outstanding_prefers_the_faster, setup, teardown),
        cmocka_unit_test_setup_teardown(a_connect_that_hangs_is_given_up, setup, teardown),
        cmocka_unit_test_setup_teardown(a_silent_peer_is_given_up, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_and_streams_across, setup, teardown),
        cmocka_unit_test_setup_teardown(close_with_calls_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
