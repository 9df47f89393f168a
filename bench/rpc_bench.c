/* rpc_bench.c - calls between modules in one process: fv_rpc_call round trips (encode, a later
 * loop turn, decode, handler, the answer back the same way) against the same work done as a
 * plain function call (encode, decode, handler, encode, decode: what the call layer adds on top
 * is the loop turns, the call object and the deadline bookkeeping).
 *   rpc_bench N WINDOW    N calls, WINDOW of them in flight at once (1 = one at a time)
 * Prints calls/s and p50/p99 latency of both, and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "proto/common.pb-c.h"
#include "rpc/rpc.h"

static uint64_t *lat;
static size_t done, sent, total, window;
static fv_rpc_t *rpc;

static void handler(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data)
{
    const Finalverse__Common__V1__IdRequest *req = (const Finalverse__Common__V1__IdRequest *)in;
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = req->id;
    st.uptime_seconds = 1;
    fv_rpc_reply(call, &st.base);
}

static const fv_rpc_method_t methods[] = {
    {"Get", &finalverse__common__v1__id_request__descriptor,
     &finalverse__common__v1__status__descriptor, handler, true},
};

static void send_one(void);

static void on_done(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    uint64_t t0 = (uint64_t)(uintptr_t)data;
    if (status != 0) {
        fprintf(stderr, "call failed: %s\n", err->msg);
        exit(1);
    }
    lat[done++] = fv_now_ns() - t0;
    if (sent < total)
        send_one();
}

static void send_one(void)
{
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "whispering-wilds";
    sent++;
    if (fv_rpc_call(rpc, "world-engine", "Get", &req.base,
                    &finalverse__common__v1__status__descriptor, 5000, on_done,
                    (void *)(uintptr_t)fv_now_ns(), NULL) < 0)
        exit(1);
}

/* The competitor: the same encode/decode/handle path as one plain function call. */
static uint64_t direct_sink;

static void direct_call(void)
{
    Finalverse__Common__V1__IdRequest req = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    req.id = "whispering-wilds";
    uint8_t buf[256];
    size_t n = finalverse__common__v1__id_request__pack(&req, buf);
    Finalverse__Common__V1__IdRequest *in = finalverse__common__v1__id_request__unpack(NULL, n,
                                                                                      buf);
    Finalverse__Common__V1__Status st = FINALVERSE__COMMON__V1__STATUS__INIT;
    st.service = in->id;
    st.uptime_seconds = 1;
    uint8_t obuf[256];
    size_t m = finalverse__common__v1__status__pack(&st, obuf);
    Finalverse__Common__V1__Status *out = finalverse__common__v1__status__unpack(NULL, m, obuf);
    direct_sink += out->uptime_seconds;
    finalverse__common__v1__status__free_unpacked(out, NULL);
    finalverse__common__v1__id_request__free_unpacked(in, NULL);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *v, size_t n, double secs, double *rate,
                   double *p99)
{
    qsort(v, n, sizeof(*v), cmp);
    *rate = (double)n / secs;
    *p99 = (double)v[(size_t)(0.99 * (double)(n - 1))] / 1e3;
    printf("%-26s %10.0f calls/s   p50 %7.2f us   p99 %7.2f us\n", name, *rate,
           (double)v[n / 2] / 1e3, *p99);
}

int main(int argc, char **argv)
{
    total = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    window = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    lat = calloc(total, sizeof(*lat));
    uint64_t *dlat = calloc(total, sizeof(*dlat));
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_rpc_opts_t opts = {.max_in_flight = (uint32_t)window + 16};
    if (fv_rpc_new(&loop, &opts, &rpc) < 0 ||
        fv_rpc_serve(rpc, "world-engine", "finalverse.bench.v1.Bench", methods, 1, NULL) < 0)
        return 1;

    uint64_t t0 = fv_now_ns();
    for (size_t i = 0; i < window && sent < total; i++)
        send_one();
    while (done < total)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(fv_now_ns() - t0) / 1e9;

    uint64_t d0 = fv_now_ns();
    for (size_t i = 0; i < total; i++) {
        uint64_t s = fv_now_ns();
        direct_call();
        dlat[i] = fv_now_ns() - s;
    }
    double dsecs = (double)(fv_now_ns() - d0) / 1e9;

    double r1, p1, r2, p2;
    printf("%zu calls, %zu in flight at once\n", total, window);
    report("fv_rpc_call (in process)", lat, total, secs, &r1, &p1);
    report("plain call, same codec", dlat, total, dsecs, &r2, &p2);
    printf("ratio fv_rpc_call/plain: throughput %.2f x, p99 %.2f x\n", r1 / r2, p1 / p2);

    int closed = 0;
    fv_rpc_close(rpc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    (void)closed;
    free(lat);
    free(dlat);
    return direct_sink ? 0 : 1;
}
