/* ws_load.c - a WebSocket load client on libuv for bench/ws.sh: many connections from one
 * process, speaking the realtime protocol (hello, subscribe, ping; docs/protocol.md), against
 * our gateway or the reference server (bench/ws_ref_server.js), which speak the same JSON.
 *
 *   ws_load idle      PORT N SERVER_PID                  resident bytes per idle connection
 *   ws_load broadcast PORT N SERVER_PID REDIS_PORT ours|ref SECS
 *                                                        events from Redis to N subscribers
 *   ws_load echo      PORT N SERVER_PID SECS             ping/pong round trips on N connections
 *
 * Beside rates and latencies it reports the server's CPU time per message (from /proc), which
 * does not depend on how fast this one-core client can read: on a small machine the client is
 * often the bottleneck of a broadcast, and then the CPU per message is the fair comparison.
 *
 * Events are published by this process over Redis (RESP written by hand): for our gateway as
 * the bus's envelope on fv.bus.region.bench (proto/events.proto, written by hand too), for the
 * reference server as the bare JSON payload on its channel. The payload carries the publish
 * time, so each delivery's latency is measured on one clock. Frames from clients are masked
 * with a zero key, as the RFC allows a client to choose. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_LAT_US 2000000

typedef enum { C_CONNECTING, C_HANDSHAKE, C_HELLO, C_SUBSCRIBE, C_READY } cstate_t;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    int idx;
    cstate_t state;
    char *left;                 /* bytes of a partial frame or head */
    size_t left_len;
    uint64_t ping_at;
} conn_t;

static uv_loop_t *loop;
static struct sockaddr_in addr;
static conn_t *conns;
static int n_conns, n_started, n_ready, n_failed;
static bool want_subscribe;
static uint64_t *lat_hist;      /* microseconds -> count */
static uint64_t lat_count, lat_over;
static uint64_t received;
static bool measuring;
static bool echo_mode;
static bool echo_running;
static int server_pid;
static double cpu_mark;         /* the server's CPU seconds when the phase began */

static double cpu_of(int pid);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void lat_add(uint64_t us)
{
    if (!measuring)
        return;
    if (us < MAX_LAT_US)
        lat_hist[us]++;
    else
        lat_over++;
    lat_count++;
}

static double lat_pct(double p)
{
    uint64_t want = (uint64_t)(p * (double)lat_count), seen = 0;
    for (uint64_t i = 0; i < MAX_LAT_US; i++) {
        seen += lat_hist[i];
        if (seen > want)
            return (double)i / 1000.0;
    }
    return MAX_LAT_US / 1000.0;
}

static void lat_reset(void)
{
    cpu_mark = cpu_of(server_pid);
    memset(lat_hist, 0, MAX_LAT_US * sizeof(*lat_hist));
    lat_count = lat_over = 0;
    received = 0;
}

/* ---- writing ---- */

typedef struct wreq {
    uv_write_t req;
    char data[];
} wreq_t;

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void send_raw(uv_stream_t *s, const void *data, size_t len)
{
    wreq_t *w = malloc(sizeof(*w) + len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, s, &b, 1, on_written) < 0)
        free(w);
}

/* A masked text frame (zero key). */
static void send_text(conn_t *c, const char *text)
{
    size_t n = strlen(text);
    char f[512];
    size_t o = 0;
    f[o++] = (char)0x81;
    if (n < 126) {
        f[o++] = (char)(0x80 | n);
    } else {
        f[o++] = (char)(0x80 | 126);
        f[o++] = (char)(n >> 8);
        f[o++] = (char)n;
    }
    memset(f + o, 0, 4);
    o += 4;
    memcpy(f + o, text, n);
    send_raw((uv_stream_t *)&c->tcp, f, o + n);
}

/* ---- reading ---- */

static void next_ping(conn_t *c)
{
    c->ping_at = now_us();
    send_text(c, "{\"type\":\"ping\"}");
}

static void on_text(conn_t *c, const char *p, size_t n)
{
    switch (c->state) {
    case C_HELLO:
        if (want_subscribe) {
            c->state = C_SUBSCRIBE;
            send_text(c, "{\"type\":\"subscribe\",\"id\":1,\"channels\":[\"region:bench\"]}");
        } else {
            c->state = C_READY;
            n_ready++;
        }
        return;
    case C_SUBSCRIBE:
        c->state = C_READY;
        n_ready++;
        return;
    case C_READY:
        break;
    default:
        return;
    }
    if (echo_mode) {
        received++;
        lat_add(now_us() - c->ping_at);
        if (echo_running)
            next_ping(c);
        return;
    }
    const char *t = memmem(p, n, "\"t\":", 4);
    if (!t)
        return;
    received++;
    uint64_t sent = strtoull(t + 4, NULL, 10);
    uint64_t now = now_us();
    lat_add(now > sent ? now - sent : 0);
}

/* Consumes whole frames from p; returns bytes used. */
static size_t frames(conn_t *c, const char *p, size_t n)
{
    size_t off = 0;
    while (n - off >= 2) {
        const uint8_t *h = (const uint8_t *)p + off;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (n - off < hl + len)
            break;
        if ((h[0] & 0x0f) == 0x1)
            on_text(c, p + off + hl, (size_t)len);
        else if ((h[0] & 0x0f) == 0x9) {
            /* answer pings, as any client must */
            char pong[2 + 4 + 125];
            pong[0] = (char)0x8a;
            pong[1] = (char)(0x80 | len);
            memset(pong + 2, 0, 4);
            memcpy(pong + 6, p + off + hl, (size_t)len);
            send_raw((uv_stream_t *)&c->tcp, pong, 6 + (size_t)len);
        }
        off += hl + (size_t)len;
    }
    return off;
}

static char shared_rbuf[1 << 16];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(shared_rbuf, sizeof(shared_rbuf));
}

static void conn_failed(conn_t *c, const char *why)
{
    if (c->state != C_READY)
        n_failed++;
    if (n_failed <= 3)
        fprintf(stderr, "connection %d: %s\n", c->idx, why);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0) {
        conn_failed(c, uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    const char *p = buf->base;
    size_t n = (size_t)nread;
    char *joined = NULL;
    if (c->left_len) {
        joined = malloc(c->left_len + n);
        memcpy(joined, c->left, c->left_len);
        memcpy(joined + c->left_len, p, n);
        p = joined;
        n += c->left_len;
        free(c->left);
        c->left = NULL;
        c->left_len = 0;
    }
    size_t used = 0;
    if (c->state == C_HANDSHAKE) {
        const char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) {
            used = 0;
            goto keep;
        }
        if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
            free(joined);
            conn_failed(c, "handshake refused");
            return;
        }
        used = (size_t)(end - p) + 4;
        c->state = C_HELLO;
        send_text(c, "{\"type\":\"hello\",\"client\":\"ws_load\"}");
    }
    used += frames(c, p + used, n - used);
keep:
    if (used < n) {
        c->left_len = n - used;
        c->left = malloc(c->left_len);
        memcpy(c->left, p + used, c->left_len);
    }
    free(joined);
}

static void start_next(void);

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0) {
        conn_failed(c, uv_strerror(status));
        start_next();
        return;
    }
    c->state = C_HANDSHAKE;
    static const char hs[] = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    send_raw((uv_stream_t *)&c->tcp, hs, sizeof(hs) - 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    start_next();
}

/* Opens connections a few hundred at a time, so the listen backlog never overflows. */
static void start_next(void)
{
    while (n_started < n_conns && n_started - n_ready - n_failed < 256) {
        conn_t *c = &conns[n_started];
        c->idx = n_started++;
        uv_tcp_init(loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, on_connect);
    }
}

static void run_until_ready(void)
{
    uint64_t t0 = uv_hrtime();
    start_next();
    while (n_ready + n_failed < n_conns) {
        uv_run(loop, UV_RUN_ONCE);
        start_next();
        if (uv_hrtime() - t0 > 120ull * 1000000000ull) {
            fprintf(stderr, "only %d of %d connections ready after 120 s\n", n_ready, n_conns);
            exit(1);
        }
    }
    if (n_failed) {
        fprintf(stderr, "%d connections failed\n", n_failed);
        exit(1);
    }
}

static void run_for(uint64_t ms)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_update_time(loop);
        usleep(0);
    }
}

/* The server's user + system CPU time in seconds. */
static double cpu_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_of(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* ---- publishing over Redis ---- */

static uv_tcp_t redis;
static bool redis_ours;
static uint64_t published;

static void redis_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    (void)b;
    if (n < 0) {
        fprintf(stderr, "redis: %s\n", uv_strerror((int)n));
        exit(1);
    }
}

static size_t varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    do {
        o[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            o[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static size_t lenfield(uint8_t *o, int num, const void *d, size_t len)
{
    size_t n = varint(o, (uint64_t)num << 3 | 2);
    n += varint(o + n, len);
    memcpy(o + n, d, len);
    return n + len;
}

/* One event: a ~140-byte JSON payload with the publish time, so clients get ~200 bytes. */
static void publish(void)
{
    char payload[256];
    int pl = snprintf(payload, sizeof(payload),
                      "{\"t\":%" PRIu64 ",\"n\":%" PRIu64 ",\"note\":\"the harmony of the "
                      "region rises as a melody is performed near its heart........\"}",
                      now_us(), ++published);
    uint8_t msg[512];
    size_t ml;
    const char *chan;
    if (redis_ours) {
        ml = lenfield(msg, 1, "region.bench", 12);
        ml += lenfield(msg + ml, 2, "bench.tick", 10);
        ml += lenfield(msg + ml, 3, payload, (size_t)pl);
        msg[ml++] = 4 << 3 | 1;            /* origin: fixed64 */
        uint64_t origin = 0x5eed5eed5eed5eedull;
        memcpy(msg + ml, &origin, 8);
        ml += 8;
        ml += varint(msg + ml, 5 << 3);
        ml += varint(msg + ml, published);
        chan = "fv.bus.region.bench";
    } else {
        memcpy(msg, payload, (size_t)pl);
        ml = (size_t)pl;
        chan = "bench.raw";
    }
    char cmd[1024];
    int hl = snprintf(cmd, sizeof(cmd), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                      strlen(chan), chan, ml);
    memcpy(cmd + hl, msg, ml);
    memcpy(cmd + hl + ml, "\r\n", 2);
    send_raw((uv_stream_t *)&redis, cmd, (size_t)hl + ml + 2);
}

static void redis_connected(uv_connect_t *req, int status)
{
    (void)req;
    if (status < 0) {
        fprintf(stderr, "redis connect: %s\n", uv_strerror(status));
        exit(1);
    }
    uv_read_start((uv_stream_t *)&redis, on_alloc, redis_read);
}

static void report(const char *what, double secs)
{
    double cpu = cpu_of(server_pid) - cpu_mark;
    printf("%s: %" PRIu64 " delivered in %.2f s = %.0f msg/s, p50 %.2f ms, p99 %.2f ms, "
           "server cpu %.2f us/msg\n",
           what, received, secs, (double)received / secs, lat_pct(0.50), lat_pct(0.99),
           received ? cpu * 1e6 / (double)received : 0.0);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: see the opening comment of ws_load.c\n");
        return 2;
    }
    const char *mode = argv[1];
    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", atoi(argv[2]), &addr);
    n_conns = atoi(argv[3]);
    conns = calloc((size_t)n_conns, sizeof(*conns));
    lat_hist = calloc(MAX_LAT_US, sizeof(*lat_hist));

    if (strcmp(mode, "idle") == 0 && argc >= 5) {
        int pid = atoi(argv[4]);
        run_for(300);
        long before = rss_of(pid);
        run_until_ready();
        run_for(1000);
        long after = rss_of(pid);
        printf("idle: %d connections, server RSS %ld -> %ld bytes: %.0f bytes per connection\n",
               n_conns, before, after, (double)(after - before) / n_conns);
        return 0;
    }
    if (strcmp(mode, "broadcast") == 0 && argc >= 8) {
        want_subscribe = true;
        server_pid = atoi(argv[4]);
        redis_ours = strcmp(argv[6], "ours") == 0;
        double secs = atof(argv[7]);
        struct sockaddr_in ra;
        uv_ip4_addr("127.0.0.1", atoi(argv[5]), &ra);
        uv_connect_t rc;
        uv_tcp_init(loop, &redis);
        uv_tcp_connect(&rc, &redis, (const struct sockaddr *)&ra, redis_connected);
        run_until_ready();
        run_for(500);
        /* 20 events a second */
        lat_reset();
        measuring = true;
        uint64_t t0 = uv_now(loop), next = t0;
        while (uv_now(loop) - t0 < (uint64_t)(secs * 1000)) {
            if (uv_now(loop) >= next) {
                publish();
                next += 50;
            }
            uv_run(loop, UV_RUN_NOWAIT);
            uv_update_time(loop);
        }
        run_for(300);
        report("20 Hz", (double)(uv_now(loop) - t0) / 1000.0);
        /* as fast as the server delivers: at most 8 events in flight (counted at the clients) */
        lat_reset();
        t0 = uv_now(loop);
        uint64_t start_pub = published;
        while (uv_now(loop) - t0 < (uint64_t)(secs * 1000)) {
            uint64_t done = received / (uint64_t)n_conns;
            while (published - start_pub < done + 8)
                publish();
            uv_run(loop, UV_RUN_NOWAIT);
            uv_update_time(loop);
        }
        report("max", (double)(uv_now(loop) - t0) / 1000.0);
        return 0;
    }
    if (strcmp(mode, "echo") == 0 && argc >= 6) {
        echo_mode = true;
        server_pid = atoi(argv[4]);
        double secs = atof(argv[5]);
        run_until_ready();
        lat_reset();
        measuring = true;
        echo_running = true;
        uint64_t t0 = uv_now(loop);
        for (int i = 0; i < n_conns; i++)
            next_ping(&conns[i]);
        run_for((uint64_t)(secs * 1000));
        echo_running = false;
        report("echo", (double)(uv_now(loop) - t0) / 1000.0);
        return 0;
    }
    fprintf(stderr, "usage: see the opening comment of ws_load.c\n");
    return 2;
}
