/* bus_bench.c - drives the event bus and prints events per second.
 *
 *   bus_bench local SUBS N             one bus, SUBS subscribers on one channel: N events
 *                                      published in batches of 256, each delivered to every
 *                                      subscriber; prints deliveries/s and publishes/s
 *   bus_bench distinct CHANNELS N      one bus, CHANNELS subscribers on distinct exact channels,
 *                                      N events round-robin over them (matching cost)
 *   bus_bench redis URL N WINDOW       two buses on two kv connections (two processes' worth):
 *                                      bus 0 publishes N events, at most WINDOW not yet arrived
 *                                      at bus 1; prints events/s received by bus 1
 *   bus_bench envelope-bytes           sizes of one encoded Envelope of the bench event (so the
 *                                      reference PUBLISH carries as many bytes) and its payload
 *
 * Every event carries an encoded SongPerformed (67 bytes), as an engine's would. bench/bus.sh
 * runs the modes beside redis-benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bus/bus.h"
#include "proto/events.pb-c.h"

#define BATCH 256

static uint8_t payload[256];
static size_t payload_len;

static void make_payload(void)
{
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    Finalverse__Events__V1__SongPerformed song = FINALVERSE__EVENTS__V1__SONG_PERFORMED__INIT;
    at.x = 100.25;
    at.y = 50;
    at.z = 200.5;
    pos.region = "terra-nova";
    pos.at = &at;
    song.player_id = "player-0042";
    song.position = &pos;
    song.melody_type = FINALVERSE__EVENTS__V1__MELODY_TYPE__MELODY_TYPE_RESTORATION;
    song.power = 7.5;
    payload_len = finalverse__events__v1__song_performed__pack(&song, payload);
}

typedef struct counter {
    long count;
} counter_t;

static void on_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    ((counter_t *)data)->count++;
}

static void on_closed(void *data)
{
    (*(int *)data) = 1;
}

static void close_bus(uv_loop_t *loop, fv_bus_t *bus)
{
    int closed = 0;
    fv_bus_close(bus, on_closed, &closed);
    while (!closed)
        uv_run(loop, UV_RUN_ONCE);
}

static void must(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, fv_strerror(rc));
        exit(1);
    }
}

/* subs subscribers: all on one channel (fanout) or each on its own (distinct). */
static int run_local(long subs, long n, int distinct)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_bus_t *bus;
    fv_bus_opts_t o = {.queue_count = BATCH};
    must(fv_bus_new(&loop, &o, &bus), "bus");
    counter_t c = {0};
    char (*names)[32] = calloc((size_t)subs, 32);
    for (long i = 0; i < subs; i++) {
        snprintf(names[i], 32, "player.%ld", distinct ? i : 0);
        fv_bus_sub_t *s;
        must(fv_bus_subscribe(bus, names[i], NULL, on_event, &c, &s), "subscribe");
    }
    long per_event = distinct ? 1 : subs;
    uint64_t t0 = uv_hrtime();
    long published = 0;
    while (published < n) {
        for (int i = 0; i < BATCH && published < n; i++, published++)
            must(fv_bus_publish(bus, names[distinct ? published % subs : 0], "song.performed",
                                payload, payload_len, NULL), "publish");
        while (c.count < published * per_event)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    fv_bus_stats_t st;
    fv_bus_stats(bus, &st);
    printf("%.0f %.0f\n", (double)c.count / secs, (double)n / secs);
    if (st.dropped)
        fprintf(stderr, "%llu dropped\n", (unsigned long long)st.dropped);
    close_bus(&loop, bus);
    free(names);
    uv_loop_close(&loop);
    return 0;
}

static void on_kv_closed(void *data)
{
    (*(int *)data) = 1;
}

static int run_redis(const char *url, long n, long window)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_kv_t *kv[2];
    fv_bus_t *bus[2];
    fv_error_t err;
    for (int i = 0; i < 2; i++) {
        if (fv_kv_open(&loop, url, NULL, &kv[i], &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fv_bus_opts_t o = {.kv = kv[i], .queue_count = (uint32_t)window + BATCH};
        must(fv_bus_new(&loop, &o, &bus[i]), "bus");
    }
    for (;;) {
        fv_bus_stats_t a, b;
        fv_bus_stats(bus[0], &a);
        fv_bus_stats(bus[1], &b);
        if (a.remote_ready && b.remote_ready)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    counter_t c = {0};
    fv_bus_sub_t *s;
    must(fv_bus_subscribe(bus[1], "song.performed", NULL, on_event, &c, &s), "subscribe");
    /* One event through first: connections warm, the clock starts with a quiet pipe. */
    must(fv_bus_publish(bus[0], "song.performed", "song.performed", payload, payload_len, NULL),
         "publish");
    while (c.count < 1)
        uv_run(&loop, UV_RUN_ONCE);
    c.count = 0;

    uint64_t t0 = uv_hrtime();
    long published = 0;
    while (c.count < n) {
        while (published < n && published - c.count < window) {
            must(fv_bus_publish(bus[0], "song.performed", "song.performed", payload,
                                payload_len, NULL), "publish");
            published++;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("%.0f\n", (double)n / secs);
    fv_bus_stats_t st;
    fv_bus_stats(bus[1], &st);
    if (st.dropped || st.remote_bad)
        fprintf(stderr, "%llu dropped, %llu bad\n", (unsigned long long)st.dropped,
                (unsigned long long)st.remote_bad);
    for (int i = 0; i < 2; i++)
        close_bus(&loop, bus[i]);
    for (int i = 0; i < 2; i++) {
        int closed = 0;
        fv_kv_close(kv[i], on_kv_closed, &closed);
        while (!closed)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_loop_close(&loop);
    return 0;
}

static int envelope_bytes(void)
{
    Finalverse__Events__V1__Envelope env = FINALVERSE__EVENTS__V1__ENVELOPE__INIT;
    env.channel = "song.performed";
    env.type = "song.performed";
    env.payload.data = payload;
    env.payload.len = payload_len;
    env.origin = UINT64_MAX;
    env.sequence = 1000000;
    env.time_ms = 1796000000000ull;
    printf("%zu %zu\n", finalverse__events__v1__envelope__get_packed_size(&env), payload_len);
    return 0;
}

int main(int argc, char **argv)
{
    make_payload();
    if (argc == 4 && strcmp(argv[1], "local") == 0)
        return run_local(atol(argv[2]), atol(argv[3]), 0);
    if (argc == 4 && strcmp(argv[1], "distinct") == 0)
        return run_local(atol(argv[2]), atol(argv[3]), 1);
    if (argc == 5 && strcmp(argv[1], "redis") == 0)
        return run_redis(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 2 && strcmp(argv[1], "envelope-bytes") == 0)
        return envelope_bytes();
    fprintf(stderr, "usage: %s local SUBS N | distinct CHANNELS N | redis URL N WINDOW | "
            "envelope-bytes\n", argv[0]);
    return 2;
}
