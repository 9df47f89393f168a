/* context.c - the accessors a module uses on the context the runtime hands it. */
#include "runtime/runtime_internal.h"

#include "core/alloc.h"
#include "bus/bus.h"

uv_loop_t *fv_module_loop(fv_module_ctx_t *ctx)
{
    return fv__runtime_loop(ctx->rt);
}

const fv_config_t *fv_module_config(fv_module_ctx_t *ctx)
{
    return fv__runtime_config(ctx->rt);
}

const void *fv_module_settings(fv_module_ctx_t *ctx)
{
    return fv__runtime_config(ctx->rt)->modules[ctx->index];
}

fv_router_t *fv_module_router(fv_module_ctx_t *ctx)
{
    return ctx->router;
}

const char *fv_module_name(fv_module_ctx_t *ctx)
{
    return ctx->mod->name;
}

int fv_module_port(fv_module_ctx_t *ctx)
{
    return ctx->port;
}

int fv_module_index(fv_module_ctx_t *ctx)
{
    return ctx->index;
}

fv_stores_t *fv_module_stores(fv_module_ctx_t *ctx)
{
    return fv__runtime_stores(ctx->rt);
}

fv_bus_t *fv_module_bus(fv_module_ctx_t *ctx)
{
    return fv__runtime_bus(ctx->rt);
}

int fv_module_serve(fv_module_ctx_t *ctx, const char *service, const fv_rpc_method_t *methods,
                    size_t count, void *data)
{
    return fv_rpc_serve(fv__runtime_rpc(ctx->rt), ctx->mod->name, service, methods, count, data);
}

int fv_call(fv_module_ctx_t *ctx, const char *module, const char *method,
            const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
            uint32_t deadline_ms, fv_rpc_done_cb cb, void *data)
{
    return fv_rpc_call(fv__runtime_rpc(ctx->rt), module, method, in, out_type, deadline_ms, cb,
                       data, NULL);
}

int fv_call_idempotent(fv_module_ctx_t *ctx, const char *module, const char *method,
                       const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                       uint32_t deadline_ms, fv_rpc_done_cb cb, void *data)
{
    fv_rpc_call_opts_t opts = {.deadline_ms = deadline_ms, .flags = FV_RPC_IDEMPOTENT};
    return fv_call_with(ctx, module, method, in, out_type, &opts, cb, data, NULL);
}

int fv_call_with(fv_module_ctx_t *ctx, const char *module, const char *method,
                 const ProtobufCMessage *in, const ProtobufCMessageDescriptor *out_type,
                 const fv_rpc_call_opts_t *opts, fv_rpc_done_cb cb, void *data,
                 fv_rpc_req_t **out)
{
    return fv_rpc_call_with(fv__runtime_rpc(ctx->rt), module, method, in, out_type, opts, cb,
                            data, out);
}

int fv_module_subscribe(fv_module_ctx_t *ctx, const char *pattern, const fv_bus_sub_opts_t *opts,
                        fv_bus_event_cb cb, void *data, fv_bus_sub_t **out)
{
    fv_bus_sub_t *sub;
    int rc = fv_bus_subscribe(fv__runtime_bus(ctx->rt), pattern, opts, cb, data, &sub);
    if (rc < 0)
        return rc;
    ctx->subs = fv_realloc(ctx->subs, (ctx->sub_count + 1) * sizeof(*ctx->subs));
    ctx->subs[ctx->sub_count++] = sub;
    if (out)
        *out = sub;
    return 0;
}

void fv_module_unsubscribe(fv_module_ctx_t *ctx, fv_bus_sub_t *sub)
{
    for (size_t i = 0; i < ctx->sub_count; i++) {
        if (ctx->subs[i] == sub) {
            ctx->subs[i] = ctx->subs[--ctx->sub_count];
            fv_bus_unsubscribe(sub);
            return;
        }
    }
}

void fv__module_unsubscribe_all(fv_module_ctx_t *ctx)
{
    while (ctx->sub_count)
        fv_bus_unsubscribe(ctx->subs[--ctx->sub_count]);
}

fv_registry_client_t *fv_module_registry(fv_module_ctx_t *ctx)
{
    return fv__runtime_registry(ctx->rt);
}

void fv_module_set_data(fv_module_ctx_t *ctx, void *data)
{
    ctx->data = data;
}

void *fv_module_data(fv_module_ctx_t *ctx)
{
    return ctx->data;
}

void fv_module_add_check(fv_module_ctx_t *ctx, const char *name, fv_check_fn fn, void *data)
{
    ctx->checks = fv_realloc(ctx->checks, (ctx->check_count + 1) * sizeof(*ctx->checks));
    ctx->checks[ctx->check_count++] = (module_check_t){fv_strdup(name), fn, data};
}

void fv_module_add_gauge(fv_module_ctx_t *ctx, const char *name, const char *help,
                         fv_gauge_fn fn, void *data)
{
    fv_metrics_add_gauge(ctx->metrics, name, help, fn, data);
}

double fv_gauge_read_u64(void *field)
{
    return (double)*(const uint64_t *)field;
}

double fv_gauge_read_size(void *field)
{
    return (double)*(const size_t *)field;
}

double fv_gauge_read_double(void *field)
{
    return *(const double *)field;
}

void fv_module_add_metrics(fv_module_ctx_t *ctx, fv_metrics_fn fn, void *data)
{
    fv_metrics_add_writer(ctx->metrics, fn, data);
}

void fv__module_ctx_dispose(fv_module_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->check_count; i++)
        fv_free(ctx->checks[i].name);
    fv_free(ctx->checks);
    ctx->checks = NULL;
    ctx->check_count = 0;
    fv__ticks_dispose(ctx);
    fv_free(ctx->subs);
    ctx->subs = NULL;
    ctx->sub_count = 0;
    fv_buf_dispose(&ctx->scratch);
    fv_buf_dispose(&ctx->health);
    fv_metrics_free(ctx->metrics);
    ctx->metrics = NULL;
    fv_grpc_server_free(ctx->grpc);    /* its servers and the rpc have closed by now */
    ctx->grpc = NULL;
    fv_router_free(ctx->router);
    ctx->router = NULL;
}
