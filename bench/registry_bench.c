/* registry_bench.c - drives a running registry (bench/registry.sh starts it):
 *   register HOST PORT TOKEN N WINDOW   N registrations, WINDOW in flight; prints the rate of
 *                                       the first and of the last 10,000
 *   load DATA_DIR                       loads <DATA_DIR>/registry/catalog.json as the registry
 *                                       does at start; prints instances and milliseconds
 *   waiters HOST PORT TOKEN N           N blocking queries on /v1/agent/services, then one
 *                                       change; prints waiters answered per second
 *   probe HOST PORT TOKEN MS            GET /v1/status/leader, one at a time 1 ms apart, for MS
 *                                       milliseconds; prints the worst latency (run in its own
 *                                       process beside "waiters", so that this client's own
 *                                       work on N answers does not count as the registry's)
 * Figures go to stdout as "key value" lines. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/log.h"
#include "net/http_client.h"
#include "registry/catalog.h"

#define CHUNK 10000

static uv_loop_t *loop;
static fv_http_client_t *http, *probe_http;
static const char *host, *token;
static int port;
static long n, issued, done, errors;
static int window;
static uint64_t chunk_start_ns, first_rate, last_rate, last_done_ns;

static void request(fv_http_client_t *h, const char *method, const char *target,
                    const char *body, fv_http_client_cb cb, void *data)
{
    fv_http_header_t hdrs[2] = {{"X-Consul-Token", token}, {"Content-Type", "application/json"}};
    fv_http_client_req_t r = {
        .method = method,
        .host = host,
        .port = port,
        .target = target,
        .headers = hdrs,
        .header_count = body ? 2 : 1,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 600000,
    };
    if (fv_http_client_request(h, &r, cb, data) < 0) {
        fprintf(stderr, "request failed to start\n");
        exit(1);
    }
}

/* ---- register ---- */

static void issue_register(void);

static void on_registered(int rc, const fv_http_response_t *resp, void *data)
{
    if (rc < 0 || resp->status != 200)
        errors++;
    done++;
    last_done_ns = uv_hrtime();
    if (done % CHUNK == 0) {
        uint64_t now = uv_hrtime();
        uint64_t rate = (uint64_t)CHUNK * 1000000000ull / (now - chunk_start_ns);
        if (done == CHUNK)
            first_rate = rate;
        last_rate = rate;
        chunk_start_ns = now;
    }
    if (issued < n)
        issue_register();
}

static void issue_register(void)
{
    char body[256];
    long i = issued++;
    /* 500 names, as a big deployment of a few services with many instances each */
    snprintf(body, sizeof(body),
             "{\"Name\":\"svc-%ld\",\"ID\":\"svc-%ld-%ld\",\"Address\":\"10.%ld.%ld.%ld\","
             "\"Port\":%ld,\"Tags\":[\"bench\"],\"Meta\":{\"version\":\"1\"},"
             "\"Check\":{\"TTL\":\"1h\",\"DeregisterCriticalServiceAfter\":\"24h\"}}",
             i % 500, i % 500, i, (i >> 16) & 255, (i >> 8) & 255, i & 255, 1 + i % 60000);
    request(http, "PUT", "/v1/agent/service/register", body, on_registered, NULL);
}

static int run_register(void)
{
    chunk_start_ns = uv_hrtime();
    uint64_t t0 = chunk_start_ns;
    for (int i = 0; i < window && issued < n; i++)
        issue_register();
    uv_run(loop, UV_RUN_DEFAULT);
    double secs = (double)(last_done_ns - t0) / 1e9;
    printf("registered %ld\nerrors %ld\nseconds %.2f\nfirst_10k_per_s %" PRIu64
           "\nlast_10k_per_s %" PRIu64 "\n", done, errors, secs, first_rate, last_rate);
    return errors ? 1 : 0;
}

/* ---- waiters ---- */

static long held_answered;
static uint64_t change_ns, last_answer_ns, probe_sent_ns, probe_end_ns, worst_probe_ns;
static long probes;

static void on_held(int rc, const fv_http_response_t *resp, void *data)
{
    if (rc < 0 || resp->status != 200)
        errors++;
    held_answered++;
    last_answer_ns = uv_hrtime();
}

static void send_probe(void);
static uv_timer_t probe_gap;   /* 1 ms between probes: a client, not a load generator */

static void on_probe_gap(uv_timer_t *t)
{
    send_probe();
}

static void on_probe(int rc, const fv_http_response_t *resp, void *data)
{
    uint64_t now = uv_hrtime(), lat = now - probe_sent_ns;
    if (rc < 0 || resp->status != 200)
        errors++;
    if (lat > worst_probe_ns)
        worst_probe_ns = lat;
    probes++;
    if (now < probe_end_ns)
        uv_timer_start(&probe_gap, on_probe_gap, 1, 0);
    else
        uv_close((uv_handle_t *)&probe_gap, NULL);
}

static void send_probe(void)
{
    probe_sent_ns = uv_hrtime();
    request(probe_http, "GET", "/v1/status/leader", NULL, on_probe, NULL);
}

static void on_changed(int rc, const fv_http_response_t *resp, void *data)
{
    if (rc < 0 || resp->status != 200)
        errors++;
}

static void on_settle(uv_timer_t *t)
{
    /* every held request has reached the registry and is parked: now one change */
    change_ns = uv_hrtime();
    request(http, "PUT", "/v1/agent/service/register",
            "{\"Name\":\"bench-change\",\"ID\":\"bench-change-1\",\"Port\":1}", on_changed,
            NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static uint64_t index_now;

static void on_index(int rc, const fv_http_response_t *resp, void *data)
{
    const char *idx = rc == 0 ? fv_http_response_header(resp, "X-Consul-Index") : NULL;
    if (!idx) {
        fprintf(stderr, "no index from the registry\n");
        exit(1);
    }
    index_now = strtoull(idx, NULL, 10);
}

static int run_waiters(void)
{
    request(http, "GET", "/v1/catalog/services", NULL, on_index, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    char target[96];
    snprintf(target, sizeof(target), "/v1/agent/services?index=%" PRIu64 "&wait=10m",
             index_now);
    for (long i = 0; i < n; i++)
        request(http, "GET", target, NULL, on_held, NULL);
    static uv_timer_t settle;
    uv_timer_init(loop, &settle);
    uv_timer_start(&settle, on_settle, 3000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    double secs = (double)(last_answer_ns - change_ns) / 1e9;
    printf("waiters %ld\nerrors %ld\nall_answered_ms %.1f\nwoken_per_s %.0f\n",
           held_answered, errors, secs * 1000, secs > 0 ? (double)n / secs : 0);
    return errors ? 1 : 0;
}

static int run_probe(long ms)
{
    probe_end_ns = uv_hrtime() + (uint64_t)ms * 1000000;
    uv_timer_init(loop, &probe_gap);
    send_probe();
    uv_run(loop, UV_RUN_DEFAULT);
    printf("probes %ld\nerrors %ld\nworst_probe_ms %.2f\n", probes, errors,
           (double)worst_probe_ns / 1e6);
    return errors ? 1 : 0;
}

/* ---- load ---- */

static int run_load(const char *dir)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    fv_error_t err;
    bool corrupt = false;
    uint64_t t0 = uv_hrtime();
    int rc = registry_persist_load(&cat, dir, 0, &corrupt, &err);
    uint64_t t1 = uv_hrtime();
    if (rc < 0 || corrupt) {
        fprintf(stderr, "load failed: %s\n", rc < 0 ? err.msg : "corrupt");
        return 1;
    }
    printf("loaded %zu\nload_ms %.1f\n", cat.count, (double)(t1 - t0) / 1e6);

    /* A save as the running registry makes it: each instance's bytes once (spread over loop
     * turns there), then the turn that takes the snapshot with nothing changed since. */
    fv_buf_t whole;
    fv_buf_init(&whole, 0);
    uint64_t t2 = uv_hrtime();
    rc = registry_persist_render(&cat, &whole, &err);
    uint64_t t3 = uv_hrtime();
    fv_buf_dispose(&whole);
    registry_persist_parts_t parts;
    if (rc == 0 && (rc = registry_persist_begin(&cat, &parts, &err)) == 0)
        rc = registry_persist_step(&cat, &parts, SIZE_MAX, SIZE_MAX, &err);
    uint64_t t4 = uv_hrtime();
    if (rc == 0) {
        registry_persist_parts_dispose(&cat, &parts);
        if ((rc = registry_persist_begin(&cat, &parts, &err)) == 0)
            rc = registry_persist_step(&cat, &parts, SIZE_MAX, SIZE_MAX, &err);
    }
    uint64_t t5 = uv_hrtime();
    if (rc == 0) {
        registry_persist_parts_dispose(&cat, &parts);
        uint64_t t6 = uv_hrtime();
        registry_instance_t *one = cat.first;
        one->modify_index++;
        if ((rc = registry_persist_begin(&cat, &parts, &err)) == 0)
            rc = registry_persist_step(&cat, &parts, 256 * 1024, SIZE_MAX, &err);
        uint64_t t7 = uv_hrtime();
        if (rc == 0)
            registry_persist_parts_dispose(&cat, &parts);
        printf("render_whole_ms %.1f\nrender_pieces_ms %.1f\nsnapshot_ms %.2f\n"
               "next_save_turn_ms %.2f\n", (double)(t3 - t2) / 1e6, (double)(t4 - t3) / 1e6,
               (double)(t5 - t4) / 1e6, (double)(t7 - t6) / 1e6);
    }
    registry_catalog_dispose(&cat);
    if (rc < 0) {
        fprintf(stderr, "save in parts failed\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    fv_log_set_level(FV_LOG_ERROR);
    if (argc == 3 && strcmp(argv[1], "load") == 0)
        return run_load(argv[2]);
    if (argc < 6) {
        fprintf(stderr, "usage: registry_bench register HOST PORT TOKEN N WINDOW | "
                        "waiters HOST PORT TOKEN N | probe HOST PORT TOKEN MS | "
                        "load DATA_DIR\n");
        return 2;
    }
    loop = uv_default_loop();
    host = argv[2];
    port = atoi(argv[3]);
    token = argv[4];
    n = atol(argv[5]);
    fv_http_client_opts_t o;
    fv_http_client_opts_default(&o);
    o.max_idle_per_host = 4096;
    o.idle_timeout_ms = 200;   /* so the loop ends soon after the last answer */
    if (fv_http_client_new(loop, &o, &http) < 0 || fv_http_client_new(loop, &o, &probe_http) < 0)
        return 1;
    int rc;
    if (strcmp(argv[1], "register") == 0 && argc == 7) {
        window = atoi(argv[6]);
        rc = run_register();
    } else if (strcmp(argv[1], "waiters") == 0) {
        rc = run_waiters();
    } else if (strcmp(argv[1], "probe") == 0) {
        rc = run_probe(n);
    } else {
        return 2;
    }
    fv_http_client_free(http);
    fv_http_client_free(probe_http);
    uv_run(loop, UV_RUN_DEFAULT);
    return rc;
}
