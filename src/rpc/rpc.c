/* rpc.c - calls between modules (see rpc.h): the served services, the call objects, delivery
 * on later loop turns, deadlines and cancellation, the remote seam. Framing is frame.c's.
 *
 * One object per call (fv_rpc_req_t) carries both ends: the caller's callback and the handler's
 * view (fv_rpc_call_t, embedded). It lives until both ends are through with it: the caller's
 * callback has run, the handler has answered (or was told the caller is gone), and a remote
 * transport has reported. Deadlines share one uv timer: calls sit in a list ordered by
 * deadline (new calls go at the tail, where nearly all belong, since deadlines mostly grow), and
 * the timer is moved only when the head moves earlier. */
#include "rpc/rpc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/defer.h"
#include "core/log.h"
#include "core/time.h"
#include "rpc/frame.h"

#define RPC_NAME_MAX 96

typedef struct rpc_service {
    char module[RPC_NAME_MAX];
    char service[RPC_NAME_MAX * 2];
    const fv_rpc_method_t *methods;
    size_t count;
    void *data;
    bool quiesced;
    struct rpc_service *next;
} rpc_service_t;

struct fv_rpc_call {
    fv_rpc_req_t *req;
};

struct fv_rpc_req {
    fv_rpc_t *rpc;
    fv_defer_t defer;
    fv_rpc_req_t *prev, *next;            /* the live list (every call not yet freed) */
    fv_rpc_req_t *dprev, *dnext;          /* the deadline list (caller still waiting) */
    bool in_deadline_list;
    uint64_t deadline_ms;                 /* fv_now_ms() clock */
    uint64_t start_ns;
    char module[RPC_NAME_MAX];
    char method[RPC_NAME_MAX];

    /* the caller: a local one (cb) or a remote one (dcb, from fv_rpc_dispatch) */
    fv_rpc_done_cb cb;
    void *cb_data;
    fv_rpc_dispatch_cb dcb;
    void *dcb_data;
    const ProtobufCMessageDescriptor *out_type;
    fv_rpc_message_cb on_message;         /* a server-streaming caller's */
    bool caller_done;                     /* the outcome is decided; no second one */
    bool caller_told;                     /* the caller's callback has run */

    /* the request and the outcome */
    uint8_t *frame;                       /* the request frame, owned */
    size_t frame_len;
    int status;
    char message[FV_ERROR_MSG_LEN];
    uint8_t *answer;                      /* the answer frame, owned */
    size_t answer_len;

    /* the handler */
    fv_rpc_call_t call;
    const fv_rpc_method_t *m;
    void *handler_data;
    ProtobufCMessage *in;
    fv_rpc_cancel_cb cancel_cb;
    void *cancel_data;
    bool handler_holds;                   /* handed to the handler, not answered */
    fv_md_t md_in;                        /* request metadata */
    fv_md_t md_head, md_trail;            /* the handler's, for the answer */

    bool queued;                          /* on the defer queue */
    bool delivering;                      /* inside its handler, called from req_deliver */
    bool remote;                          /* a transport holds it until fv_rpc_remote_done */
};

struct fv_rpc {
    uv_loop_t *loop;
    size_t max_msg;
    uint32_t max_in_flight;
    rpc_service_t *services;
    fv_rpc_req_t *live;
    fv_rpc_req_t *dhead, *dtail;
    size_t waiting;                       /* calls whose caller is still waiting */
    fv_defer_queue_t q;
    uv_timer_t timer;
    uint64_t timer_due;                   /* the deadline the timer is set for; 0 = none */
    const fv_rpc_transport_t *remote;
    void *remote_data;
    fv_rpc_stats_t stats;
    bool closing;
    int closing_handles;
    void (*closed_cb)(void *);
    void *closed_data;
};

static void req_deliver(fv_defer_t *d);
static void req_report(fv_defer_t *d);
static void timer_arm(fv_rpc_t *rpc);

/* ---- setup ------------------------------------------------------------------------------- */

int fv_rpc_new(uv_loop_t *loop, const fv_rpc_opts_t *opts, fv_rpc_t **out)
{
    if (!loop || !out)
        return FV_EINVAL;
    fv_rpc_t *rpc = fv_calloc(1, sizeof(*rpc));
    rpc->loop = loop;
    rpc->max_msg = opts && opts->max_message_bytes ? opts->max_message_bytes
                                                   : FV_RPC_DEFAULT_MAX_MESSAGE;
    if (rpc->max_msg > UINT32_MAX)
        rpc->max_msg = UINT32_MAX;
    rpc->max_in_flight = opts && opts->max_in_flight ? opts->max_in_flight
                                                     : FV_RPC_DEFAULT_MAX_IN_FLIGHT;
    int rc = fv_defer_queue_init(loop, &rpc->q, NULL);
    if (rc < 0) {
        fv_free(rpc);
        return rc;
    }
    rpc->q.data = rpc;
    uv_timer_init(loop, &rpc->timer);
    rpc->timer.data = rpc;
    *out = rpc;
    return 0;
}

static bool valid_name(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) >= max)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static rpc_service_t *find_service(const fv_rpc_t *rpc, const char *module)
{
    for (rpc_service_t *s = rpc->services; s; s = s->next)
        if (strcmp(s->module, module) == 0)
            return s;
    return NULL;
}

int fv_rpc_serve(fv_rpc_t *rpc, const char *module, const char *service,
                 const fv_rpc_method_t *methods, size_t count, void *data)
{
    if (!rpc || !valid_name(module, RPC_NAME_MAX) || !valid_name(service, RPC_NAME_MAX * 2) ||
        (count && !methods))
        return FV_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!valid_name(methods[i].name, RPC_NAME_MAX) || !methods[i].input ||
            !methods[i].output || !methods[i].handler)
            return FV_EINVAL;
    if (find_service(rpc, module))
        return FV_EEXIST;
    rpc_service_t *s = fv_calloc(1, sizeof(*s));
    strcpy(s->module, module);
    strcpy(s->service, service);
    s->methods = methods;
    s->count = count;
    s->data = data;
    s->next = rpc->services;
    rpc->services = s;
    return 0;
}

void fv_rpc_quiesce(fv_rpc_t *rpc, const char *module)
{
    rpc_service_t *s = rpc ? find_service(rpc, module) : NULL;
    if (s)
        s->quiesced = true;
}

const char *fv_rpc_service_of(const fv_rpc_t *rpc, const char *module)
{
    rpc_service_t *s = rpc && module ? find_service(rpc, module) : NULL;
    return s ? s->service : NULL;
}

void fv_rpc_set_remote(fv_rpc_t *rpc, const fv_rpc_transport_t *t, void *data)
{
    rpc->remote = t;
    rpc->remote_data = data;
}

/* ---- the call object --------------------------------------------------------------------- */

static void live_unlink(fv_rpc_req_t *r)
{
    fv_rpc_t *rpc = r->rpc;
    if (r->prev)
        r->prev->next = r->next;
    else
        rpc->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void deadline_unlink(fv_rpc_req_t *r)
{
    fv_rpc_t *rpc = r->rpc;
    if (!r->in_deadline_list)
        return;
    if (r->dprev)
        r->dprev->dnext = r->dnext;
    else
        rpc->dhead = r->dnext;
    if (r->dnext)
        r->dnext->dprev = r->dprev;
    else
        rpc->dtail = r->dprev;
    r->dprev = r->dnext = NULL;
    r->in_deadline_list = false;
}

/* Deadlines mostly grow, so the place is found from the tail. */
static void deadline_insert(fv_rpc_req_t *r)
{
    fv_rpc_t *rpc = r->rpc;
    fv_rpc_req_t *after = rpc->dtail;
    while (after && after->deadline_ms > r->deadline_ms)
        after = after->dprev;
    r->dprev = after;
    r->dnext = after ? after->dnext : rpc->dhead;
    if (r->dnext)
        r->dnext->dprev = r;
    else
        rpc->dtail = r;
    if (after)
        after->dnext = r;
    else
        rpc->dhead = r;
    r->in_deadline_list = true;
}

static void maybe_free(fv_rpc_req_t *r)
{
    if (!r->caller_told || r->handler_holds || r->queued || r->remote)
        return;
    fv_rpc_t *rpc = r->rpc;
    live_unlink(r);
    if (r->in && r->m)
        protobuf_c_message_free_unpacked(r->in, NULL);
    fv_free(r->frame);
    fv_free(r->answer);
    fv_md_dispose(&r->md_in);
    fv_md_dispose(&r->md_head);
    fv_md_dispose(&r->md_trail);
    fv_free(r);
    if (rpc->stats.in_flight)
        rpc->stats.in_flight--;
}

static void push(fv_rpc_req_t *r, fv_defer_cb cb)
{
    r->queued = true;
    fv_defer_push(&r->rpc->q, &r->defer, cb);
}

/* Decides the call's outcome (the first decision wins) and reports it on a later turn. A
 * handler still holding the call is told the caller is gone. */
static void finish(fv_rpc_req_t *r, int status, const char *fmt, ...) FV_PRINTF(3, 4);
static void finish(fv_rpc_req_t *r, int status, const char *fmt, ...)
{
    if (r->caller_done)
        return;
    r->caller_done = true;
    r->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof(r->message), fmt, ap);
        va_end(ap);
    }
    deadline_unlink(r);
    r->rpc->waiting--;
    if (r->handler_holds && status != 0 && r->cancel_cb) {
        fv_rpc_cancel_cb cb = r->cancel_cb;
        r->cancel_cb = NULL;
        r->handler_holds = false;
        cb(&r->call, r->cancel_data);
    }
    if (r->remote && status != 0 && r->rpc->remote && r->rpc->remote->cancel)
        r->rpc->remote->cancel(r->rpc->remote_data, r);
    if (!r->queued && !r->delivering)
        push(r, req_report);
    /* else: req_deliver is queued and reports instead of delivering, or its handler is running
     * and req_deliver reports once the handler returns */
}

static fv_rpc_req_t *req_new(fv_rpc_t *rpc, const char *module, const char *method,
                             uint32_t deadline_ms)
{
    fv_rpc_req_t *r = fv_calloc(1, sizeof(*r));
    r->rpc = rpc;
    r->call.req = r;
    r->start_ns = fv_now_ns();
    /* the request's list was bounded by the transport's header limit already */
    fv_md_init(&r->md_in, 64u * 1024u);
    fv_md_init(&r->md_head, 0);
    fv_md_init(&r->md_trail, 0);
    if (deadline_ms == 0)
        deadline_ms = FV_RPC_DEFAULT_DEADLINE_MS;
    if (deadline_ms > FV_RPC_MAX_DEADLINE_MS)
        deadline_ms = FV_RPC_MAX_DEADLINE_MS;
    r->deadline_ms = fv_now_ms() + deadline_ms;
    snprintf(r->module, sizeof(r->module), "%s", module);
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->next = rpc->live;
    if (rpc->live)
        rpc->live->prev = r;
    rpc->live = r;
    rpc->waiting++;
    rpc->stats.in_flight++;
    deadline_insert(r);
    timer_arm(rpc);
    return r;
}

/* ---- deadlines --------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    fv_rpc_t *rpc = t->data;
    uint64_t now = fv_now_ms();
    rpc->timer_due = 0;
    while (rpc->dhead && rpc->dhead->deadline_ms <= now) {
        fv_rpc_req_t *r = rpc->dhead;
        rpc->stats.timeouts++;
        finish(r, FV_ETIMEDOUT, "%s.%s: deadline passed", r->module, r->method);
    }
    timer_arm(rpc);
}

static void timer_arm(fv_rpc_t *rpc)
{
    if (!rpc->dhead || rpc->closing)
        return;
    uint64_t due = rpc->dhead->deadline_ms;
    if (rpc->timer_due && rpc->timer_due <= due)
        return;                          /* it fires earlier anyway and re-arms then */
    uint64_t now = fv_now_ms();
    rpc->timer_due = due;
    uv_update_time(rpc->loop);
    uv_timer_start(&rpc->timer, on_timer, due > now ? due - now : 0, 0);
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* The message as one frame in a new buffer: 0, FV_ETOOBIG or FV_ENOMEM. */
static int encode(const fv_rpc_t *rpc, const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > rpc->max_msg)
        return FV_ETOOBIG;
    uint8_t *buf = fv_try_malloc(FV_RPC_FRAME_HEADER + n + 1);
    if (!buf)
        return FV_ENOMEM;
    fv_rpc_frame_header(buf, (uint32_t)n);
    protobuf_c_message_pack(msg, buf + FV_RPC_FRAME_HEADER);
    *out = buf;
    *len = FV_RPC_FRAME_HEADER + n;
    return 0;
}

/* Decodes a whole frame holding one message of type t: NULL with *rc set on failure. */
static ProtobufCMessage *decode(const fv_rpc_t *rpc, const ProtobufCMessageDescriptor *t,
                                const uint8_t *frame, size_t len, int *rc)
{
    fv_slice_t msg;
    size_t used;
    *rc = fv_rpc_frame_parse(frame, len, rpc->max_msg, &msg, &used);
    if (*rc == FV_EAGAIN || (*rc == 0 && used != len))
        *rc = FV_EINVAL;                 /* a truncated or trailing-garbage frame */
    if (*rc < 0)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(t, NULL, msg.len, (const uint8_t *)msg.ptr);
    if (!m)
        *rc = FV_EINVAL;
    return m;
}

/* ---- calling ----------------------------------------------------------------------------- */

int fv_rpc_call(fv_rpc_t *rpc, const char *module, const char *method,
                const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                uint32_t deadline_ms, fv_rpc_done_cb cb, void *data, fv_rpc_req_t **out)
{
    return fv_rpc_call_ex(rpc, module, method, in, out_type, deadline_ms, 0, cb, data, out);
}

int fv_rpc_call_ex(fv_rpc_t *rpc, const char *module, const char *method,
                   const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                   uint32_t deadline_ms, unsigned flags, fv_rpc_done_cb cb, void *data,
                   fv_rpc_req_t **out)
{
    fv_rpc_call_opts_t opts = {.deadline_ms = deadline_ms, .flags = flags};
    return fv_rpc_call_with(rpc, module, method, in, out_type, &opts, cb, data, out);
}

int fv_rpc_call_with(fv_rpc_t *rpc, const char *module, const char *method,
                     const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                     const fv_rpc_call_opts_t *opts, fv_rpc_done_cb cb, void *data,
                     fv_rpc_req_t **out)
{
    static const fv_rpc_call_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!rpc || !module || !method || !in || !out_type || !cb)
        return FV_EINVAL;
    fv_rpc_req_t *r = req_new(rpc, module, method, opts->deadline_ms);
    r->cb = cb;
    r->cb_data = data;
    r->out_type = out_type;
    r->on_message = opts->on_message;
    unsigned flags = (opts->flags & FV_RPC_IDEMPOTENT) |
                     (opts->on_message ? FV_RPC_SERVER_STREAM : 0u);
    rpc->stats.calls++;
    if (out)
        *out = r;
    if (rpc->closing) {
        finish(r, FV_EUNAVAILABLE, "shutting down");
        return 0;
    }
    if (!valid_name(module, RPC_NAME_MAX) || !valid_name(method, RPC_NAME_MAX)) {
        finish(r, FV_EINVAL, "bad module or method name");
        return 0;
    }
    if (rpc->waiting > rpc->max_in_flight) {
        finish(r, FV_ERATELIMIT, "more than %u calls in flight", rpc->max_in_flight);
        return 0;
    }
    int rc = opts->metadata ? fv_md_copy(&r->md_in, opts->metadata) : 0;
    if (rc < 0) {
        finish(r, rc, "request metadata: %s", fv_strerror(rc));
        return 0;
    }
    rc = encode(rpc, in, &r->frame, &r->frame_len);
    if (rc < 0) {
        finish(r, rc, rc == FV_ETOOBIG ? "request over %zu bytes" : "out of memory",
               rpc->max_msg);
        return 0;
    }
    rpc_service_t *s = find_service(rpc, module);
    if (!s && rpc->remote) {
        r->remote = true;
        rc = rpc->remote->start(rpc->remote_data, r, module, method, r->frame, r->frame_len,
                                (uint32_t)(r->deadline_ms - fv_now_ms()), flags);
        if (rc < 0) {
            r->remote = false;
            finish(r, rc, "cannot reach %s: %s", module, fv_strerror(rc));
        }
        return 0;
    }
    push(r, req_deliver);
    return 0;
}

void fv_rpc_cancel(fv_rpc_req_t *r)
{
    if (r && !r->caller_done)
        finish(r, FV_ECANCELED, "cancelled by the caller");
}

/* On a later turn: the call reaches its handler (or its outcome was decided meanwhile). */
static void req_deliver(fv_defer_t *d)
{
    fv_rpc_req_t *r = FV_DEFER_OWNER(d, fv_rpc_req_t, defer);
    fv_rpc_t *rpc = r->rpc;
    r->queued = false;
    if (r->caller_done) {
        req_report(d);
        return;
    }
    rpc_service_t *s = find_service(rpc, r->module);
    if (!s || s->quiesced) {
        rpc->stats.unavailable++;
        finish(r, FV_EUNAVAILABLE, "%s is not %s in this process", r->module,
               s ? "taking calls" : "running");
        return;
    }
    const fv_rpc_method_t *m = NULL;
    for (size_t i = 0; i < s->count && !m; i++)
        if (strcmp(s->methods[i].name, r->method) == 0)
            m = &s->methods[i];
    if (!m) {
        finish(r, FV_EUNIMPLEMENTED, "%s has no method %s", s->service, r->method);
        return;
    }
    if (r->out_type && r->out_type != m->output) {
        finish(r, FV_EINVAL, "%s/%s answers %s, not %s", s->service, m->name,
               m->output->name, r->out_type->name);
        return;
    }
    int rc;
    r->in = decode(rpc, m->input, r->frame, r->frame_len, &rc);
    if (!r->in) {
        finish(r, rc, "%s/%s: the request is not a valid %s", s->service, m->name,
               m->input->name);
        return;
    }
    r->m = m;
    r->handler_data = s->data;
    r->handler_holds = true;
    r->delivering = true;
    m->handler(&r->call, r->in, s->data);
    r->delivering = false;
    /* A handler that answered at once is reported in this same turn, after it returned: one
     * loop turn per call instead of two, and still never inside the caller's fv_rpc_call. */
    if (r->caller_done && !r->queued)
        req_report(&r->defer);
}

/* On a later turn: the caller learns the outcome. */
static void req_report(fv_defer_t *d)
{
    fv_rpc_req_t *r = FV_DEFER_OWNER(d, fv_rpc_req_t, defer);
    fv_rpc_t *rpc = r->rpc;
    r->queued = false;
    if (r->caller_told) {
        maybe_free(r);
        return;
    }
    int status = r->status;
    ProtobufCMessage *out = NULL;
    /* a stream's messages went to on_message as they came; a unary answer to a streaming
     * caller is its one message */
    if (status == 0 && r->cb && (!r->on_message || r->answer_len)) {
        out = decode(rpc, r->out_type, r->answer, r->answer_len, &status);
        if (!out)
            snprintf(r->message, sizeof(r->message), "%s.%s: the answer is not a valid %s",
                     r->module, r->method, r->out_type->name);
    }
    if (out && r->on_message) {
        r->on_message(out, r->cb_data);
        protobuf_c_message_free_unpacked(out, NULL);
        out = NULL;
    }
    r->caller_told = true;
    if (status == 0)
        rpc->stats.ok++;
    else
        rpc->stats.failed++;
    rpc->stats.latency_ns_sum += fv_now_ns() - r->start_ns;
    if (r->cb) {
        fv_error_t err = {0};
        if (status < 0)
            fv_error_set(&err, status, "%s", r->message[0] ? r->message : fv_strerror(status));
        r->cb(status, out, status < 0 ? &err : NULL, r->cb_data);
        if (out)
            protobuf_c_message_free_unpacked(out, NULL);
    } else if (r->dcb) {
        r->dcb(status, r->answer, r->answer_len, status < 0 ? r->message : NULL, r->dcb_data);
    }
    maybe_free(r);
}

/* ---- answering ----------------------------------------------------------------------------- */

/* The call goes on a later turn, not now: a handler that answers twice in one callback (or
 * reads the call after answering) must find it still there, answered. */
static void release_later(fv_rpc_req_t *r)
{
    if (!r->queued)
        push(r, req_report);
}

static fv_rpc_req_t *answering(fv_rpc_call_t *call, const char *what)
{
    fv_rpc_req_t *r = call ? call->req : NULL;
    if (!r || !r->handler_holds) {
        fv_log_debug("rpc", "%s on a call already answered or gone: dropped", what);
        return NULL;
    }
    r->handler_holds = false;
    r->cancel_cb = NULL;
    return r;
}

void fv_rpc_reply(fv_rpc_call_t *call, const ProtobufCMessage *out)
{
    fv_rpc_req_t *r = answering(call, "reply");
    if (!r)
        return;
    if (r->caller_done) {
        fv_log_debug("rpc", "%s.%s answered after its caller stopped waiting", r->module,
                     r->method);
        release_later(r);
        return;
    }
    if (!out || out->descriptor != r->m->output) {
        fv_log_error("rpc", "%s.%s: the handler answered with %s instead of %s", r->module,
                     r->method, out ? out->descriptor->name : "nothing", r->m->output->name);
        finish(r, FV_EINTERNAL, "%s.%s: internal error", r->module, r->method);
        return;
    }
    int rc = encode(r->rpc, out, &r->answer, &r->answer_len);
    if (rc < 0) {
        finish(r, rc, rc == FV_ETOOBIG ? "%s.%s: the answer is over the size limit"
                                       : "%s.%s: out of memory", r->module, r->method);
        return;
    }
    finish(r, 0, NULL);
}

void fv_rpc_fail(fv_rpc_call_t *call, int code, const char *fmt, ...)
{
    fv_rpc_req_t *r = answering(call, "fail");
    if (!r)
        return;
    if (r->caller_done) {
        release_later(r);
        return;
    }
    char msg[FV_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(r, code < 0 ? code : FV_EINTERNAL, "%s", msg);
}

void fv_rpc_call_on_cancel(fv_rpc_call_t *call, fv_rpc_cancel_cb cb, void *data)
{
    if (!call || !call->req->handler_holds)
        return;
    call->req->cancel_cb = cb;
    call->req->cancel_data = data;
}

const fv_md_t *fv_rpc_call_metadata(const fv_rpc_call_t *call)
{
    return &call->req->md_in;
}

static int call_add_md(fv_rpc_call_t *call, fv_md_t *md, const char *name, const void *value,
                       size_t len)
{
    if (!call || !name || !call->req->handler_holds)
        return FV_EINVAL;
    return fv_md_add(md, fv_slice_cstr(name), value, len);
}

int fv_rpc_call_add_header(fv_rpc_call_t *call, const char *name, const void *value, size_t len)
{
    return call_add_md(call, call ? &call->req->md_head : NULL, name, value, len);
}

int fv_rpc_call_add_trailer(fv_rpc_call_t *call, const char *name, const void *value, size_t len)
{
    return call_add_md(call, call ? &call->req->md_trail : NULL, name, value, len);
}

void fv_rpc_req_answer_metadata(const fv_rpc_req_t *req, const fv_md_t **headers,
                                const fv_md_t **trailers)
{
    *headers = &req->md_head;
    *trailers = &req->md_trail;
}

const char *fv_rpc_call_method(const fv_rpc_call_t *call)
{
    return call->req->method;
}

uint64_t fv_rpc_call_remaining_ms(const fv_rpc_call_t *call)
{
    uint64_t now = fv_now_ms();
    return call->req->deadline_ms > now ? call->req->deadline_ms - now : 0;
}

/* ---- the remote seam ----------------------------------------------------------------------- */

const fv_md_t *fv_rpc_req_metadata(const fv_rpc_req_t *req)
{
    return &req->md_in;
}

/* dst becomes a copy of src (NULL: empty). The lists a transport hands over were built with
 * fv_md_add under the same ceiling, so the copy is whole unless memory runs out. */
static void md_replace(fv_md_t *dst, const fv_md_t *src)
{
    fv_md_dispose(dst);
    fv_md_init(dst, 0);
    if (src && fv_md_copy(dst, src) < 0)
        fv_log_debug("rpc", "answer metadata not kept whole: out of memory");
}

void fv_rpc_remote_answer_metadata(fv_rpc_req_t *r, const fv_md_t *headers,
                                   const fv_md_t *trailers)
{
    if (!r || !r->remote || r->caller_done)
        return;
    md_replace(&r->md_head, headers);
    md_replace(&r->md_trail, trailers);
}

int fv_rpc_remote_message(fv_rpc_req_t *r, const uint8_t *frame, size_t len)
{
    if (!r || !r->remote || r->caller_done || !r->on_message)
        return FV_ECANCELED;
    int rc;
    ProtobufCMessage *out = decode(r->rpc, r->out_type, frame, len, &rc);
    if (!out) {
        finish(r, rc, "%s.%s: a message is not a valid %s", r->module, r->method,
               r->out_type->name);
        return rc;
    }
    r->on_message(out, r->cb_data);
    protobuf_c_message_free_unpacked(out, NULL);
    return r->caller_done ? FV_ECANCELED : 0;
}

void fv_rpc_remote_done(fv_rpc_req_t *r, int status, const uint8_t *frame, size_t len,
                        const char *message)
{
    if (!r || !r->remote)
        return;
    r->remote = false;
    if (!r->caller_done) {
        if (status == 0 && r->on_message && !len) {
            finish(r, 0, NULL);          /* the stream's messages went already */
        } else if (status == 0) {
            r->answer = fv_try_malloc(len ? len : 1);
            if (!r->answer) {
                finish(r, FV_ENOMEM, "out of memory");
            } else {
                memcpy(r->answer, frame, len);
                r->answer_len = len;
                finish(r, 0, NULL);
            }
        } else {
            finish(r, status < 0 ? status : FV_EINTERNAL, "%s",
                   message && *message ? message : fv_strerror(status));
        }
        return;
    }
    maybe_free(r);
}

int fv_rpc_dispatch(fv_rpc_t *rpc, const char *module, const char *method,
                    const uint8_t *frame, size_t len, const fv_md_t *md, uint32_t deadline_ms,
                    fv_rpc_dispatch_cb done, void *data, fv_rpc_req_t **out)
{
    if (!rpc || !module || !method || (!frame && len) || !done)
        return FV_EINVAL;
    fv_rpc_req_t *r = req_new(rpc, module, method, deadline_ms);
    r->dcb = done;
    r->dcb_data = data;
    if (out)
        *out = r;
    if (rpc->closing) {
        finish(r, FV_EUNAVAILABLE, "shutting down");
        return 0;
    }
    if (len > FV_RPC_FRAME_HEADER + rpc->max_msg) {
        finish(r, FV_ETOOBIG, "request over %zu bytes", rpc->max_msg);
        return 0;
    }
    r->frame = fv_try_malloc(len ? len : 1);
    if (!r->frame) {
        finish(r, FV_ENOMEM, "out of memory");
        return 0;
    }
    memcpy(r->frame, frame, len);
    r->frame_len = len;
    if (md) {
        int rc = fv_md_copy(&r->md_in, md);
        if (rc < 0) {
            finish(r, rc, "request metadata: %s", fv_strerror(rc));
            return 0;
        }
    }
    push(r, req_deliver);
    return 0;
}

/* ---- state and close ----------------------------------------------------------------------- */

void fv_rpc_stats(const fv_rpc_t *rpc, fv_rpc_stats_t *out)
{
    *out = rpc->stats;
}

size_t fv_rpc_in_flight(const fv_rpc_t *rpc)
{
    return rpc ? rpc->stats.in_flight : 0;
}

static void close_done(fv_rpc_t *rpc)
{
    if (--rpc->closing_handles > 0)
        return;
    /* Calls whose handlers never answered nor took a cancel callback go with the rpc. */
    while (rpc->live) {
        fv_rpc_req_t *r = rpc->live;
        r->handler_holds = false;
        r->remote = false;
        r->queued = false;
        r->caller_told = true;
        maybe_free(r);
    }
    while (rpc->services) {
        rpc_service_t *s = rpc->services;
        rpc->services = s->next;
        fv_free(s);
    }
    void (*cb)(void *) = rpc->closed_cb;
    void *data = rpc->closed_data;
    fv_free(rpc);
    if (cb)
        cb(data);
}

static void on_queue_closed(fv_defer_queue_t *q)
{
    close_done(q->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    close_done(h->data);
}

void fv_rpc_close(fv_rpc_t *rpc, void (*cb)(void *data), void *data)
{
    if (!rpc || rpc->closing)
        return;
    rpc->closing = true;
    rpc->closed_cb = cb;
    rpc->closed_data = data;
    /* Every caller still waiting hears FV_ECANCELED; the queue runs those reports before its
     * handle closes. */
    while (rpc->dhead)
        finish(rpc->dhead, FV_ECANCELED, "shutting down");
    rpc->closing_handles = 2;
    uv_close((uv_handle_t *)&rpc->timer, on_timer_closed);
    fv_defer_queue_close(&rpc->q, on_queue_closed);
}
