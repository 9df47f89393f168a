/* grpc_client_bench.c - our gRPC client (the call layer's cross-process transport, as
 * fv_call uses it between modules) calling /finalverse.testing.v1.Probe/Echo with a 32-byte
 * EchoMessage on one server, WINDOW calls in flight, for SECONDS after one second of warm-up.
 * The resolver answers from a deferred queue, as the runtime's registry watches do, so each
 * call pays what a call between modules pays.
 *   grpc_client_bench PORT SECONDS WINDOW
 * Prints "calls_per_second p50_ms p99_ms failed", as bench/grpc_js.js unary does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/defer.h"
#include "core/time.h"
#include "proto/probe.pb-c.h"
#include "rpc/grpc_transport.h"

#define MAX_SAMPLES (1u << 23)

static uv_loop_t *loop;
static fv_rpc_t *rpc;
static fv_defer_queue_t answers;
static fv_grpc_addr_t server;
static uint64_t warm_until, end_at;
static uint64_t *lat;
static size_t nlat, failed, in_flight;
static uint8_t payload[32];

typedef struct resolving {
    fv_defer_t defer;
    fv_grpc_resolved_cb cb;
    void *data;
} resolving_t;

static void on_due(fv_defer_t *d)
{
    resolving_t *r = FV_DEFER_OWNER(d, resolving_t, defer);
    r->cb(0, &server, 1, r->data);
    fv_free(r);
}

static int resolve(void *rdata, const char *module, fv_grpc_resolved_cb cb, void *data)
{
    (void)rdata;
    (void)module;
    resolving_t *r = fv_calloc(1, sizeof(*r));
    r->cb = cb;
    r->data = data;
    fv_defer_push(&answers, &r->defer, on_due);
    return 0;
}

static void start_one(void);

static void on_done(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    (void)out;
    uint64_t started = (uint64_t)(uintptr_t)data, now = fv_now_ns();
    in_flight--;
    if (status < 0) {
        if (failed++ == 0)
            fprintf(stderr, "grpc_client_bench: %s\n", err->msg);
    } else if (started >= warm_until && nlat < MAX_SAMPLES) {
        lat[nlat++] = now - started;
    }
    if (now < end_at)
        start_one();
    else if (!in_flight)
        uv_stop(loop);
}

static void start_one(void)
{
    Finalverse__Testing__V1__EchoMessage in = FINALVERSE__TESTING__V1__ECHO_MESSAGE__INIT;
    in.payload.data = payload;
    in.payload.len = sizeof(payload);
    uintptr_t started = (uintptr_t)fv_now_ns();
    if (fv_rpc_call(rpc, "finalverse.testing.v1.Probe", "Echo", &in.base,
                    &finalverse__testing__v1__echo_message__descriptor, 10000, on_done,
                    (void *)started, NULL) < 0) {
        failed++;
        return;
    }
    in_flight++;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: grpc_client_bench PORT SECONDS WINDOW\n");
        return 2;
    }
    snprintf(server.host, sizeof(server.host), "127.0.0.1");
    server.port = atoi(argv[1]);
    uint64_t secs = strtoull(argv[2], NULL, 10);
    size_t window = strtoull(argv[3], NULL, 10);
    memset(payload, 'x', sizeof(payload));
    lat = fv_malloc(MAX_SAMPLES * sizeof(*lat));
    loop = uv_default_loop();
    fv_grpc_transport_t *t;
    if (fv_defer_queue_init(loop, &answers, NULL) < 0 || fv_rpc_new(loop, NULL, &rpc) < 0 ||
        fv_grpc_transport_new(loop, rpc, resolve, NULL, 0, &t) < 0) {
        fprintf(stderr, "grpc_client_bench: cannot set up\n");
        return 1;
    }
    uint64_t t0 = fv_now_ns();
    warm_until = t0 + 1000000000ull;
    end_at = warm_until + secs * 1000000000ull;
    for (size_t i = 0; i < window; i++)
        start_one();
    uv_run(loop, UV_RUN_DEFAULT);       /* stopped when the last call is back */
    double measured_s = (double)secs;
    qsort(lat, nlat, sizeof(*lat), cmp);
    double p50 = nlat ? (double)lat[nlat / 2] / 1e6 : 0;
    double p99 = nlat ? (double)lat[(nlat * 99) / 100] / 1e6 : 0;
    printf("%.0f %.3f %.3f %zu\n", measured_s > 0 ? (double)nlat / measured_s : 0, p50, p99,
           failed);
    int closed = 0;
    fv_grpc_transport_close(t, on_closed, &closed);
    fv_rpc_close(rpc, on_closed, &closed);
    fv_defer_queue_close(&answers, NULL);   /* nothing left in it: the calls are done */
    uv_run(loop, UV_RUN_DEFAULT);
    fv_free(lat);
    return closed == 2 ? 0 : 1;
}
