/* grpc_health.c - grpc.health.v1.Health/Check on every module's port. Each module's health is
 * a method table of its own in the call layer, under the rpc module "<module>.health", which
 * the module's gRPC server routes the health service to: so a health call is an ordinary call
 * (deadline, cancel, metrics), and it still answers while the module itself is quiesced,
 * saying NOT_SERVING. The verdict comes from the same checks as GET /health. */
#include "runtime/runtime_internal.h"

#include <stdio.h>
#include <string.h>

#include "health.pb-c.h"

/* The rpc module name has room for the suffix: module names are short and fixed. */
#define HEALTH_SUFFIX ".health"

static bool names_module(const fv_module_ctx_t *ctx, const char *service)
{
    const char *own = fv_rpc_service_of(fv__runtime_rpc(ctx->rt), ctx->mod->name);
    return !*service || strcmp(service, ctx->mod->name) == 0 || (own && strcmp(service, own) == 0);
}

static void on_check(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    fv_module_ctx_t *ctx = data;
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)in;
    const char *service = req->service ? req->service : "";
    if (!names_module(ctx, service)) {
        fv_rpc_fail(call, FV_ENOENT, "%s serves no service %s", ctx->mod->name, service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    bool serving = ctx->state == MODULE_READY && fv__module_health_worst(ctx) != FV_CHECK_FAIL;
    out.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                         : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    fv_rpc_reply(call, &out.base);
}

static const fv_rpc_method_t health_methods[] = {
    {"Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, on_check, true},
};

int fv__grpc_health_serve(fv_module_ctx_t *ctx)
{
    char name[128];
    int n = snprintf(name, sizeof(name), "%s" HEALTH_SUFFIX, ctx->mod->name);
    if (n < 0 || (size_t)n >= sizeof(name))
        return FV_EINVAL;
    int rc = fv_rpc_serve(fv__runtime_rpc(ctx->rt), name, "grpc.health.v1.Health", health_methods,
                          1, ctx);
    if (rc < 0)
        return rc;
    return fv_grpc_server_route(ctx->grpc, "grpc.health.v1.Health", name);
}
