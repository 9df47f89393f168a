/* grpc_probe.c - finalverse.testing.v1.Probe, served by every module when grpc.probe_service
 * is on (tests and interop checks, never production): Sleep answers after the time asked, so
 * a deadline or a cancel can overtake it; Echo answers its message, for size limits, and sends
 * the request's custom metadata back as answer headers and again as trailers (for metadata
 * round trips; a name prefixed "fail-" makes it an error, to see metadata on one). Like the
 * health service it is a method table of its own, the rpc module "<module>.probe". */
#include "runtime/runtime_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "probe.pb-c.h"

#define PROBE_MAX_SLEEP_MS 60000u

typedef struct probe_sleep {
    uv_timer_t timer;
    fv_rpc_call_t *call;            /* NULL once answered or cancelled */
} probe_sleep_t;

static void on_sleep_closed(uv_handle_t *h)
{
    fv_free(h->data);
}

static void on_sleep_done(uv_timer_t *t)
{
    probe_sleep_t *ps = t->data;
    Finalverse__Common__V1__Empty out = FINALVERSE__COMMON__V1__EMPTY__INIT;
    fv_rpc_call_t *call = ps->call;
    ps->call = NULL;
    uv_close((uv_handle_t *)&ps->timer, on_sleep_closed);
    fv_rpc_reply(call, &out.base);
}

static void on_sleep_cancel(fv_rpc_call_t *call, void *data)
{
    probe_sleep_t *ps = data;
    ps->call = NULL;
    uv_close((uv_handle_t *)&ps->timer, on_sleep_closed);
}

static void on_sleep(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_module_ctx_t *ctx = data;
    const Finalverse__Testing__V1__SleepRequest *req = (const void *)in;
    probe_sleep_t *ps = fv_calloc(1, sizeof(*ps));
    ps->call = call;
    uv_timer_init(fv__runtime_loop(ctx->rt), &ps->timer);
    ps->timer.data = ps;
    fv_rpc_call_on_cancel(call, on_sleep_cancel, ps);
    uv_timer_start(&ps->timer, on_sleep_done,
                   req->ms < PROBE_MAX_SLEEP_MS ? req->ms : PROBE_MAX_SLEEP_MS, 0);
}

static void on_echo(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    (void)data;
    const fv_md_t *md = fv_rpc_call_metadata(call);
    bool fail = false;
    for (size_t i = 0; i < md->count; i++) {
        fv_slice_t name, value;
        fv_md_at(md, i, &name, &value);
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)name.len, name.ptr);
        fail = fail || strncmp(key, "fail-", 5) == 0;
        int rc = fv_rpc_call_add_header(call, key, value.ptr, value.len);
        rc = rc ? rc : fv_rpc_call_add_trailer(call, key, value.ptr, value.len);
        if (rc < 0) {
            fv_rpc_fail(call, rc, "echoing metadata %s: %s", key, fv_strerror(rc));
            return;
        }
    }
    if (fail)
        fv_rpc_fail(call, FV_EINVAL, "asked to fail by metadata");
    else
        fv_rpc_reply(call, in);   /* the input is of the output type: answered as it came */
}

static const fv_rpc_method_t probe_methods[] = {
    {"Sleep", &finalverse__testing__v1__sleep_request__descriptor,
     &finalverse__common__v1__empty__descriptor, on_sleep, true},
    {"Echo", &finalverse__testing__v1__echo_message__descriptor,
     &finalverse__testing__v1__echo_message__descriptor, on_echo, true},
};

int fv__grpc_probe_serve(fv_module_ctx_t *ctx)
{
    char name[128];
    int n = snprintf(name, sizeof(name), "%s.probe", ctx->mod->name);
    if (n < 0 || (size_t)n >= sizeof(name))
        return FV_EINVAL;
    int rc = fv_rpc_serve(fv__runtime_rpc(ctx->rt), name, "finalverse.testing.v1.Probe",
                          probe_methods, 2, ctx);
    if (rc < 0)
        return rc;
    return fv_grpc_server_route(ctx->grpc, "finalverse.testing.v1.Probe", name);
}
