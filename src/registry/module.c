/* module.c - the service-registry module for the runtime: a thin wrapper that builds the
 * registry server from the config, puts its routes on the module's router and reports a
 * "catalog" health check. Everything else is in server.c and http.c. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/addr.h"
#include "core/alloc.h"
#include "core/log.h"
#include "registry/registry.h"
#include "registry/server.h"
#include "registry/token.h"

/* What the module keeps between start and close. */
typedef struct registry_module {
    fv_module_ctx_t *ctx;
    registry_server_t *server;
    fv_module_closed_cb done;
} registry_module_t;

static void catalog_check(void *data, fv_check_status_t *status, char *msg, size_t msg_len)
{
    registry_server_t *s = data;
    *status = FV_CHECK_PASS;
    snprintf(msg, msg_len, "%zu instances", s->cat.count);
}

static double gauge_instances(void *data)
{
    return (double)((registry_server_t *)data)->cat.count;
}

static double gauge_waiters(void *data)
{
    return (double)registry_http_waiter_count(data);
}

/* The stall gauges read the server's counters where they live. */
static double read_ns(void *field)
{
    return (double)*(const uint64_t *)field / 1e9;
}

static double read_ms(void *field)
{
    return (double)*(const uint64_t *)field / 1e3;
}

static int registry_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    const fv_config_t *cfg = fv_module_config(ctx);
    char leader[320];
    const char *host = cfg->general.advertise && *cfg->general.advertise
                           ? cfg->general.advertise
                           : (cfg->general.bind && *cfg->general.bind ? cfg->general.bind
                                                                      : "127.0.0.1");
    snprintf(leader, sizeof(leader), "%s:%d", host, fv_module_port(ctx));
    /* The stack's own token: configured, or made once into the data directory, where this
     * process's modules (and `finalverse up` after a restart) find it. */
    char token[REGISTRY_TOKEN_MAX + 1];
    const char *admin = cfg->registry.token;
    bool public = fv_bind_is_public(cfg->general.bind);
    /* Off loopback the token must be chosen on purpose (and given to every other process),
     * so none is made up there. */
    if ((!admin || !*admin) && !public) {
        int trc = registry_token_ensure(cfg->general.data_dir, token, sizeof(token), err);
        if (trc < 0)
            return trc;
        admin = token;
    }
    registry_server_opts_t opts = {
        .deregister_after_ms = cfg->registry.deregister_after_ms,
        .data_dir = cfg->general.data_dir,
        .leader = leader,
        .acl_default_policy = cfg->registry.acl_default_policy,
        .acl_tokens = cfg->registry.acl_tokens,
        .admin_token = admin,
        .public_bind = public,
        .max_waiters = cfg->registry.max_blocking_queries,
        .max_waiters_per_client = cfg->registry.max_blocking_queries_per_client,
    };
    registry_server_t *s;
    int rc = registry_server_new(fv_module_loop(ctx), &opts, &s, err);
    if (rc < 0)
        return rc;
    fv_log_info("registry", "ACL default policy %s, %zu tokens", s->acl.deny ? "deny" : "allow",
                s->acl.count);
    if ((rc = registry_http_routes(fv_module_router(ctx), s)) < 0) {
        registry_server_close(s, NULL, NULL);
        return fv_error_set(err, rc, "service-registry: adding routes failed: %s",
                            fv_strerror(rc));
    }
    registry_module_t *rm = fv_calloc(1, sizeof(*rm));
    rm->ctx = ctx;
    rm->server = s;
    fv_module_set_data(ctx, rm);
    fv_module_add_check(ctx, "catalog", catalog_check, s);
    fv_module_add_gauge(ctx, "finalverse_registry_instances", "Registered service instances.",
                        gauge_instances, s);
    fv_module_add_gauge(ctx, "finalverse_registry_blocking_queries",
                        "Blocking queries currently held.", gauge_waiters, s);
    const struct {
        const char *name;
        const char *help;
        fv_gauge_fn read;
        void *field;
    } stalls[] = {
        {"finalverse_registry_wake_turn_max_seconds",
         "Longest loop turn spent answering blocking queries.", read_ns, &s->pump_turn_max_ns},
        {"finalverse_registry_wake_turn_max_cpu_seconds",
         "Longest loop turn answering blocking queries, in the loop thread's CPU time.",
         read_ns, &s->pump_turn_max_cpu_ns},
        {"finalverse_registry_render_max_seconds",
         "Longest rendering of a blocking query's answer.", read_ns, &s->render_max_ns},
        {"finalverse_registry_save_last_seconds",
         "Loop time the last save of the catalog took, its turns together.", read_ms,
         &s->persist_last_ms},
        {"finalverse_registry_save_turn_max_seconds",
         "Longest loop turn of the last save of the catalog.", read_ns,
         &s->persist_turn_max_ns},
        {"finalverse_registry_save_turn_max_cpu_seconds",
         "Longest loop turn of the last save, in the loop thread's CPU time.", read_ns,
         &s->persist_turn_max_cpu_ns},
    };
    for (size_t i = 0; i < sizeof(stalls) / sizeof(stalls[0]); i++)
        fv_module_add_gauge(ctx, stalls[i].name, stalls[i].help, stalls[i].read,
                            stalls[i].field);
    return 0;
}

/* Shutdown began: the blocking queries held open are answered now, with the catalog as it
 * stands, so the drain does not wait out their wait times; the catalog is persisted. */
static void registry_quiesce(fv_module_ctx_t *ctx)
{
    registry_module_t *rm = fv_module_data(ctx);
    registry_server_quiesce(rm ? rm->server : NULL);
}

static void on_server_closed(void *data)
{
    registry_module_t *rm = data;
    fv_module_ctx_t *ctx = rm->ctx;
    fv_module_closed_cb done = rm->done;
    fv_module_set_data(ctx, NULL);
    fv_free(rm);
    done(ctx);
}

/* After the drain no request reaches the routes any more, so the server may go. */
static void registry_close(fv_module_ctx_t *ctx, fv_module_closed_cb done)
{
    registry_module_t *rm = fv_module_data(ctx);
    if (!rm) {
        done(ctx);
        return;
    }
    rm->done = done;
    registry_server_close(rm->server, on_server_closed, rm);
}

const fv_module_t fv_module_service_registry = {
    .name = "service-registry",
    .deps = NULL,
    .start = registry_start,
    .quiesce = registry_quiesce,
    .close = registry_close,
};
