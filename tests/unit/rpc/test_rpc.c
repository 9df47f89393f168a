/* test_rpc.c - calls between modules on a real loop: a round trip encoded and decoded as on the
 * wire, the callback never inside the call, an answer from a later turn, the deadline (with and
 * without a cancel callback, a late answer dropped), a module not served, a quiesced one, an
 * unknown method, the wrong answer type, garbage frames through dispatch, size and in-flight
 * ceilings, close with calls pending, the remote seam between two rpcs, metadata both ways and
 * a streaming caller in one process, and allocation failures.
 * Every callback is counted; every loop closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "loop_wait.h"
#include "proto/common.pb-c.h"
#include "rpc/frame.h"
#include "rpc/rpc.h"

#define WAIT_MS 5000

typedef struct outcome {
    int calls;                 /* callbacks run */
    int status;
    char text[FV_ERROR_MSG_LEN]; /* Status.service of the answer, or the error message */
    int code;
} outcome_t;

static int in_call;            /* set while fv_rpc_call runs: a callback then is a bug */
static int cancels;
static fv_rpc_call_t *held;    /* a call a handler keeps to answer later */
static int held_calls;

static void on_done(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    outcome_t *o = data;
    assert_false(in_call);
    o->calls++;
    o->status = status;
    if (status == 0) {
        const Finalverse__Common__V1__Status *st = (const Finalverse__Common__V1__Status *)out;
        assert_ptr_equal(out->descriptor, &finalverse__common__v1__status__descriptor);
        snprintf(o->text, sizeof(o->text), "%s", st->service);
    } else {
        assert_null(out);
        assert_non_null(err);
        snprintf(o->text, sizeof(o->text), "%s", err->msg);
    }
}

/* Echo: Status{service = "echo:" + id}. */
static void h_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    char buf[128];
    snprintf(buf, sizeof(buf), "echo:%s", req->id);
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = buf;
    fv_rpc_reply(call, &st.base);
    fv_rpc_reply(call, &st.base);             /* a second answer is a no-op */
}

static void on_cancel(fv_rpc_call_t *call, void *data)
{
    cancels++;
    if (held == call)
        held = NULL;
}

/* Keeps the call (with a cancel callback unless the id says "nocancel"). */
static void h_hold(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    held = call;
    held_calls++;
    if (strcmp(req->id, "nocancel") != 0)
        fv_rpc_call_on_cancel(call, on_cancel, NULL);
}

/* Answers with the wrong type. */
static void h_wrong(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_rpc_reply(call, in);
}

static void h_fail(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_rpc_fail(call, FV_ENOENT, "no region '%s'",
                ((const Finalverse__Common__V1__IdRequest *)in)->id);
}

/* Meta: the request's "x-fv-player" back in an answer header and trailer. */
static void h_meta(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_slice_t who = fv_md_get(fv_rpc_call_metadata(call), "x-fv-player");
    assert_int_equal(fv_rpc_call_add_header(call, "echo-player", who.ptr, who.len), 0);
    assert_int_equal(fv_rpc_call_add_trailer(call, "trail-player", who.ptr, who.len), 0);
    assert_int_equal(fv_rpc_call_add_header(call, "grpc-status", "0", 1), FV_EINVAL);
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = "meta";
    fv_rpc_reply(call, &st.base);
}

static const fv_rpc_method_t methods[] = {
    {"Meta", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_meta, true},
    {"Echo", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_echo, true},
    {"Hold", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_hold, false},
    {"Wrong", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_wrong, false},
    {"Fail", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, h_fail, false},
};

typedef struct fixture {
    uv_loop_t loop;
    fv_rpc_t *rpc;
    int closed;
} fixture_t;

static void on_closed(void *data)
{
    (*(int *)data)++;
}

static void fixture_open(fixture_t *f, const fv_rpc_opts_t *opts)
{
    memset(f, 0, sizeof(*f));
    held = NULL;
    held_calls = cancels = 0;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(fv_rpc_new(&f->loop, opts, &f->rpc), 0);
    assert_int_equal(fv_rpc_serve(f->rpc, "world-engine", "finalverse.test.v1.TestService",
                                  methods, sizeof(methods) / sizeof(methods[0]), NULL),
                     0);
}

static void fixture_close(fixture_t *f)
{
    fv_rpc_close(f->rpc, on_closed, &f->closed);
    fv_test_run_until(&f->loop, &f->closed, 1, WAIT_MS);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int call(fixture_t *f, const char *module, const char *method, const char *id,
                uint32_t deadline_ms, outcome_t *o)
{
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = (char *)id;
    in_call = 1;
    int rc = fv_rpc_call(f->rpc, module, method, &req.base,
                         &finalverse__common__v1__status__descriptor, deadline_ms, on_done, o,
                         NULL);
    in_call = 0;
    return rc;
}

static void round_trip(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    outcome_t o = {0};
    assert_int_equal(call(&f, "world-engine", "Echo", "terra-nova", 0, &o), 0);
    assert_int_equal(o.calls, 0);                 /* never inside the call */
    fv_test_run_until(&f.loop, &o.calls, 1, WAIT_MS);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.text, "echo:terra-nova");

    outcome_t e = {0};
    assert_int_equal(call(&f, "world-engine", "Fail", "atlantis", 0, &e), 0);
    fv_test_run_until(&f.loop, &e.calls, 1, WAIT_MS);
    assert_int_equal(e.status, FV_ENOENT);
    assert_string_equal(e.text, "no region 'atlantis'");

    fv_rpc_stats_t st;
    fv_rpc_stats(f.rpc, &st);
    assert_int_equal(st.calls, 2);
    assert_int_equal(st.ok, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.in_flight, 0);
    fixture_close(&f);
    assert_int_equal(o.calls, 1);
    assert_int_equal(e.calls, 1);
}

static void on_later(uv_timer_t *t)
{
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = "later";
    fv_rpc_reply(held, &st.base);
    held = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void answer_from_a_later_turn(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    outcome_t o = {0};
    assert_int_equal(call(&f, "world-engine", "Hold", "x", 0, &o), 0);
    fv_test_run_until(&f.loop, &held_calls, 1, WAIT_MS);
    assert_non_null(held);
    assert_true(fv_rpc_call_remaining_ms(held) > 0);
    assert_string_equal(fv_rpc_call_method(held), "Hold");
    assert_int_equal(fv_rpc_in_flight(f.rpc), 1);
    uv_timer_t t;
    uv_timer_init(&f.loop, &t);
    uv_timer_start(&t, on_later, 20, 0);
    fv_test_run_until(&f.loop, &o.calls, 1, WAIT_MS);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.text, "later");
    assert_int_equal(cancels, 0);
    fixture_close(&f);
}

static void deadline_passes(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    outcome_t o = {0};
    assert_int_equal(call(&f, "world-engine", "Hold", "x", 30, &o), 0);
    fv_test_run_until(&f.loop, &o.calls, 1, WAIT_MS);
    assert_int_equal(o.status, FV_ETIMEDOUT);
    assert_int_equal(cancels, 1);                 /* the handler heard of it */
    assert_null(held);

    /* a handler without a cancel callback keeps a valid call; its late answer is dropped */
    outcome_t o2 = {0};
    assert_int_equal(call(&f, "world-engine", "Hold", "nocancel", 30, &o2), 0);
    fv_test_run_until(&f.loop, &o2.calls, 1, WAIT_MS);
    assert_int_equal(o2.status, FV_ETIMEDOUT);
    assert_non_null(held);
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    fv_rpc_reply(held, &st.base);
    fv_rpc_reply(held, &st.base);                 /* in the same turn: a no-op */
    held = NULL;
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(o2.calls, 1);
    assert_int_equal(fv_rpc_in_flight(f.rpc), 0);
    fv_rpc_stats_t s;
    fv_rpc_stats(f.rpc, &s);
    assert_int_equal(s.timeouts, 2);
    fixture_close(&f);
}

static void refusals(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    outcome_t a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    assert_int_equal(call(&f, "song-engine", "Echo", "x", 0, &a), 0);    /* not served */
    assert_int_equal(call(&f, "world-engine", "Nope", "x", 0, &b), 0);   /* no such method */
    assert_int_equal(call(&f, "world-engine", "Wrong", "x", 0, &c), 0);  /* wrong answer type */
    assert_int_equal(call(&f, "world engine", "Echo", "x", 0, &d), 0);   /* bad name */
    fv_test_run_until(&f.loop, &d.calls, 1, WAIT_MS);
    fv_test_run_until(&f.loop, &c.calls, 1, WAIT_MS);
    assert_int_equal(a.status, FV_EUNAVAILABLE);
    assert_non_null(strstr(a.text, "song-engine is not running"));
    assert_int_equal(b.status, FV_EUNIMPLEMENTED);
    assert_non_null(strstr(b.text, "has no method Nope"));
    assert_int_equal(c.status, FV_EINTERNAL);
    assert_int_equal(d.status, FV_EINVAL);

    /* the caller's idea of the answer type is checked too */
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "x";
    assert_int_equal(fv_rpc_call(f.rpc, "world-engine", "Echo", &req.base,
                                 &finalverse__common__v1__position__descriptor, 0, on_done, &e,
                                 NULL),
                     0);
    fv_test_run_until(&f.loop, &e.calls, 1, WAIT_MS);
    assert_int_equal(e.status, FV_EINVAL);
    /* missing arguments: refused at once, no callback */
    assert_int_equal(fv_rpc_call(f.rpc, "world-engine", "Echo", NULL,
                                 &finalverse__common__v1__status__descriptor, 0, on_done, &e,
                                 NULL),
                     FV_EINVAL);

    /* quiesced: no new calls reach the module */
    fv_rpc_quiesce(f.rpc, "world-engine");
    outcome_t q = {0};
    assert_int_equal(call(&f, "world-engine", "Echo", "x", 0, &q), 0);
    fv_test_run_until(&f.loop, &q.calls, 1, WAIT_MS);
    assert_int_equal(q.status, FV_EUNAVAILABLE);
    fixture_close(&f);
    assert_int_equal(a.calls + b.calls + c.calls + d.calls + e.calls + q.calls, 6);
}

static void size_and_in_flight_ceilings(void **state)
{
    fixture_t f;
    fv_rpc_opts_t opts = {.max_message_bytes = 64, .max_in_flight = 2};
    fixture_open(&f, &opts);
    char big[100];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    outcome_t t = {0};
    assert_int_equal(call(&f, "world-engine", "Echo", big, 0, &t), 0);
    fv_test_run_until(&f.loop, &t.calls, 1, WAIT_MS);
    assert_int_equal(t.status, FV_ETOOBIG);
    /* an answer over the limit: 61 bytes of id fit the request (63), "echo:" + id does not */
    big[61] = 0;
    outcome_t t2 = {0};
    assert_int_equal(call(&f, "world-engine", "Echo", big, 0, &t2), 0);
    fv_test_run_until(&f.loop, &t2.calls, 1, WAIT_MS);
    assert_int_equal(t2.status, FV_ETOOBIG);

    outcome_t h[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(call(&f, "world-engine", "Hold", "x", 0, &h[i]), 0);
    fv_test_run_until(&f.loop, &h[2].calls, 1, WAIT_MS);
    assert_int_equal(h[2].status, FV_ERATELIMIT);
    assert_int_equal(h[0].calls + h[1].calls, 0);
    /* close: the two held calls end with FV_ECANCELED, their handlers hear of it */
    fixture_close(&f);
    assert_int_equal(h[0].calls, 1);
    assert_int_equal(h[1].calls, 1);
    assert_int_equal(h[0].status, FV_ECANCELED);
    assert_int_equal(h[1].status, FV_ECANCELED);
    assert_int_equal(cancels, 2);
}

static void caller_cancels(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    outcome_t o = {0};
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "x";
    fv_rpc_req_t *r;
    assert_int_equal(fv_rpc_call(f.rpc, "world-engine", "Echo", &req.base,
                                 &finalverse__common__v1__status__descriptor, 0, on_done, &o, &r),
                     0);
    fv_rpc_cancel(r);                             /* before it is even delivered */
    fv_test_run_until(&f.loop, &o.calls, 1, WAIT_MS);
    assert_int_equal(o.status, FV_ECANCELED);
    fixture_close(&f);
    assert_int_equal(o.calls, 1);
}

/* ---- dispatch and the remote seam ---- */

typedef struct dispatched {
    int calls;
    int status;
    uint8_t answer[256];
    size_t len;
} dispatched_t;

static void on_dispatched(int status, const uint8_t *frame, size_t len, const char *message,
                          void *data)
{
    dispatched_t *d = data;
    d->calls++;
    d->status = status;
    if (status == 0 && len <= sizeof(d->answer)) {
        memcpy(d->answer, frame, len);
        d->len = len;
    }
}

static void garbage_through_dispatch(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    static const uint8_t bad[][8] = {
        {0, 0, 0, 0, 3, 0xff, 0xff, 0xff},       /* a frame, but not an IdRequest */
        {7, 0, 0, 0, 0},                         /* bad flag */
        {1, 0, 0, 0, 0},                         /* compressed */
        {0, 0, 0, 0, 9, 1, 2},                   /* truncated */
    };
    static const size_t lens[] = {8, 5, 5, 7};
    dispatched_t d[4] = {{0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(fv_rpc_dispatch(f.rpc, "world-engine", "Echo", bad[i], lens[i], NULL, 0,
                                         on_dispatched, &d[i], NULL),
                         0);
    fv_test_run_until(&f.loop, &d[3].calls, 1, WAIT_MS);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, i == 1 ? FV_EPROTO : FV_EINVAL);
    }
    fixture_close(&f);
}

/* A test transport: what rpc A cannot serve goes to rpc B through fv_rpc_dispatch, as the gRPC
 * transport will carry it between processes. */
typedef struct hop {
    fv_rpc_t *b;
    fv_rpc_req_t *req;
} hop_t;

static void on_hop_answer(int status, const uint8_t *frame, size_t len, const char *message,
                          void *data)
{
    hop_t *h = data;
    fv_rpc_remote_done(h->req, status, frame, len, message);
    fv_free(h);
}

static fv_rpc_t *hop_target;

static int hop_start(void *data, fv_rpc_req_t *req, const char *module, const char *method,
                     const uint8_t *frame, size_t len, uint32_t deadline_ms, unsigned flags)
{
    (void)flags;
    hop_t *h = fv_calloc(1, sizeof(*h));
    h->b = hop_target;
    h->req = req;
    return fv_rpc_dispatch(h->b, module, method, frame, len, NULL, deadline_ms, on_hop_answer, h,
                           NULL);
}

static const fv_rpc_transport_t hop_transport = {hop_start, NULL};

static void remote_seam(void **state)
{
    fixture_t b;
    fixture_open(&b, NULL);                       /* serves world-engine */
    fv_rpc_t *a;
    assert_int_equal(fv_rpc_new(&b.loop, NULL, &a), 0);
    hop_target = b.rpc;
    fv_rpc_set_remote(a, &hop_transport, NULL);
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "whispering-wilds";
    outcome_t o = {0}, n = {0};
    assert_int_equal(fv_rpc_call(a, "world-engine", "Echo", &req.base,
                                 &finalverse__common__v1__status__descriptor, 0, on_done, &o,
                                 NULL),
                     0);
    assert_int_equal(fv_rpc_call(a, "world-engine", "Nope", &req.base,
                                 &finalverse__common__v1__status__descriptor, 0, on_done, &n,
                                 NULL),
                     0);
    fv_test_run_until(&b.loop, &n.calls, 1, WAIT_MS);
    fv_test_run_until(&b.loop, &o.calls, 1, WAIT_MS);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.text, "echo:whispering-wilds");
    assert_int_equal(n.status, FV_EUNIMPLEMENTED);
    int closed = 0;
    fv_rpc_close(a, on_closed, &closed);
    fv_test_run_until(&b.loop, &closed, 1, WAIT_MS);
    fixture_close(&b);
}

typedef struct md_outcome {
    outcome_t o;
    fv_rpc_req_t *req;
    char head[32], trail[32];
    int messages;
} md_outcome_t;

static void on_md_done(int status, const ProtobufCMessage *out, const fv_error_t *err,
                       void *data)
{
    md_outcome_t *m = data;
    if (!m->messages || status != 0)
        on_done(status, out, err, &m->o);
    else
        m->o.calls++;
    const fv_md_t *head, *trail;
    fv_rpc_req_answer_metadata(m->req, &head, &trail);
    fv_slice_t h = fv_md_get(head, "echo-player"), t = fv_md_get(trail, "trail-player");
    snprintf(m->head, sizeof(m->head), "%.*s", (int)h.len, h.ptr ? h.ptr : "");
    snprintf(m->trail, sizeof(m->trail), "%.*s", (int)t.len, t.ptr ? t.ptr : "");
}

static void on_one(const ProtobufCMessage *msg, void *data)
{
    md_outcome_t *m = data;
    m->messages++;
    snprintf(m->o.text, sizeof(m->o.text), "%s",
             ((const Finalverse__Common__V1__Status *)msg)->service);
}

/* A call in this process carries the caller's metadata to the handler and the handler's back
 * to the caller, as across processes; a streaming caller of a unary method gets its one
 * answer as a message, then the end. */
static void metadata_and_streams_here(void **state)
{
    fixture_t f;
    fixture_open(&f, NULL);
    fv_md_t md;
    fv_md_init(&md, 0);
    assert_int_equal(fv_md_add(&md, fv_slice_cstr("x-fv-player"), "p-7", 3), 0);
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "x";
    fv_rpc_call_opts_t opts = {.metadata = &md};
    md_outcome_t m = {0};
    assert_int_equal(fv_rpc_call_with(f.rpc, "world-engine", "Meta", &req.base,
                                      &finalverse__common__v1__status__descriptor, &opts,
                                      on_md_done, &m, &m.req), 0);
    fv_md_dispose(&md);                           /* copied by the call */
    fv_test_run_until(&f.loop, &m.o.calls, 1, WAIT_MS);
    assert_int_equal(m.o.status, 0);
    assert_string_equal(m.o.text, "meta");
    assert_string_equal(m.head, "p-7");
    assert_string_equal(m.trail, "p-7");

    md_outcome_t s = {0};
    fv_rpc_call_opts_t stream = {.on_message = on_one};
    req.id = "streamed";
    assert_int_equal(fv_rpc_call_with(f.rpc, "world-engine", "Echo", &req.base,
                                      &finalverse__common__v1__status__descriptor, &stream,
                                      on_md_done, &s, &s.req), 0);
    fv_test_run_until(&f.loop, &s.o.calls, 1, WAIT_MS);
    assert_int_equal(s.o.status, 0);
    assert_int_equal(s.messages, 1);
    assert_string_equal(s.o.text, "echo:streamed");

    md_outcome_t e = {0};
    assert_int_equal(fv_rpc_call_with(f.rpc, "world-engine", "Fail", &req.base,
                                      &finalverse__common__v1__status__descriptor, &stream,
                                      on_md_done, &e, &e.req), 0);
    fv_test_run_until(&f.loop, &e.o.calls, 1, WAIT_MS);
    assert_int_equal(e.o.status, FV_ENOENT);
    assert_int_equal(e.messages, 0);
    fixture_close(&f);
}

static void allocation_failures(void **state)
{
    unsigned long n;
    int fired = 1;
    for (n = 1; fired && n < 50; n++) {
        fixture_t f;
        fixture_open(&f, NULL);
        outcome_t o = {0};
        dispatched_t d = {0};
        static const uint8_t frame[] = {0, 0, 0, 0, 3, 0x0a, 0x01, 'z'};
        fv_alloc_fail_at(n);
        assert_int_equal(call(&f, "world-engine", "Echo", "x", 0, &o), 0);
        assert_int_equal(fv_rpc_dispatch(f.rpc, "world-engine", "Echo", frame, sizeof(frame),
                                         NULL, 0, on_dispatched, &d, NULL),
                         0);
        fv_test_run_until(&f.loop, &o.calls, 1, WAIT_MS);
        fv_test_run_until(&f.loop, &d.calls, 1, WAIT_MS);
        fired = fv_alloc_failed();
        fv_alloc_fail_at(0);
        assert_true(o.status == 0 || o.status == FV_ENOMEM);
        assert_true(d.status == 0 || d.status == FV_ENOMEM);
        if (!fired) {
            assert_int_equal(o.status, 0);
            assert_int_equal(d.status, 0);
        }
        fixture_close(&f);
        assert_int_equal(o.calls, 1);
        assert_int_equal(d.calls, 1);
    }
    assert_true(n > 2);                           /* failures were really injected */
    assert_false(fired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(answer_from_a_later_turn),
        cmocka_unit_test(deadline_passes),
        cmocka_unit_test(refusals),
        cmocka_unit_test(size_and_in_flight_ceilings),
        cmocka_unit_test(caller_cancels),
        cmocka_unit_test(garbage_through_dispatch),
        cmocka_unit_test(remote_seam),
        cmocka_unit_test(metadata_and_streams_here),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests_name("rpc", tests, NULL, NULL);
}
