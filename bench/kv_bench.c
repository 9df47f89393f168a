/* kv_bench.c - drives fv_kv SET or GET against one URL: N requests, DEPTH at a time, and
 * prints requests per second. Mode "batch" sends DEPTH, waits for all DEPTH answers, sends the
 * next DEPTH (what redis-benchmark -P DEPTH does); mode "window" starts a new request as each
 * answer arrives. bench/kv.sh runs it beside redis-benchmark on the same server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "store/kv.h"

typedef struct bench {
    fv_kv_t *kv;
    int get;
    long n, issued, done, errors;
    int inflight;
    int batch;
} bench_t;

static const fv_slice_t KEY = FV_SLICE_LIT("key:__rand_int__");
static const fv_slice_t VAL = FV_SLICE_LIT("xxx");   /* redis-benchmark's default 3 bytes */

static void issue(bench_t *b);

static void on_reply(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    bench_t *b = data;
    b->done++;
    if (status < 0)
        b->errors++;
    if (b->batch) {
        if (b->done == b->issued)
            for (int i = 0; i < b->inflight && b->issued < b->n; i++)
                issue(b);
    } else if (b->issued < b->n) {
        issue(b);
    }
}

static void issue(bench_t *b)
{
    b->issued++;
    int rc = b->get ? fv_kv_get(b->kv, KEY, on_reply, b)
                    : fv_kv_set(b->kv, KEY, VAL, 0, 0, on_reply, b);
    if (rc < 0) {
        fprintf(stderr, "request refused: %d\n", rc);
        exit(1);
    }
}

static void on_warm(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    *(int *)data = status == 0 ? 1 : -1;
}

static void on_closed(void *data)
{
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s URL set|get N DEPTH batch|window\n", argv[0]);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    bench_t b = {.get = strcmp(argv[2], "get") == 0, .n = atol(argv[3]),
                 .inflight = atoi(argv[4]), .batch = strcmp(argv[5], "batch") == 0};
    fv_error_t err;
    if (fv_kv_open(&loop, argv[1], NULL, &b.kv, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* Connected and the key exists before the clock starts. */
    int warm = 0;
    if (fv_kv_set(b.kv, KEY, VAL, 0, 0, on_warm, &warm) < 0)
        return 1;
    while (!warm)
        uv_run(&loop, UV_RUN_ONCE);
    if (warm < 0) {
        fprintf(stderr, "server not answering\n");
        return 1;
    }
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < b.inflight && b.issued < b.n; i++)
        issue(&b);
    while (b.done < b.n)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("%.0f\n", (double)b.n / secs);
    if (b.errors)
        fprintf(stderr, "%ld errors\n", b.errors);
    fv_kv_close(b.kv, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return b.errors ? 1 : 0;
}
