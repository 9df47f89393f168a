/* test_gateway.c - the websocket-gateway module in the real runtime, played by the RFC-written
 * test client over loopback: hello as a guest and with tokens (the development token and the
 * API gateway's access tokens), subscriptions and their refusals, live events from the bus as
 * JSON with per-session numbers, errors that keep the connection open, the legacy dialect of
 * the first web viewer, resume after a drop (exactly the missed events) and after a forged id,
 * a slow reader closed with 1013 while a fast one gets everything, the Origin policy, and
 * /health beside the WebSockets. A stand-in song-engine publishes the events. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bus/bus.h"
#include "config/config.h"
#include "core/alloc.h"
#include "core/time.h"
#include "core/token.h"
#include "loopback.h"
#include "proto/common.pb-c.h"
#include "proto/events.pb-c.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "scratch.h"
#include "world3d/grid.h"
#include "world3d/terrain.h"
#include "ws_client.h"

static uv_loop_t loop;
static fv_config_t *cfg;
static fv_runtime_t *rt;
static fv_module_ctx_t *publisher;
static int port;
static char data_dir[256];

static int pub_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    (void)err;
    publisher = ctx;
    return 0;
}

static const fv_module_t stand_in = {.name = "song-engine", .start = pub_start};

/* Publishes a SongPerformed on bus channel ch (power tells events apart). */
static void publish_song(const char *ch, double power, const char *key)
{
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    at.x = 100;
    at.y = 50;
    at.z = 200;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    pos.region = "terra-nova";
    pos.at = &at;
    Finalverse__Events__V1__SongPerformed ev = FINALVERSE__EVENTS__V1__SONG_PERFORMED__INIT;
    ev.player_id = "p1";
    ev.position = &pos;
    ev.melody_type = FINALVERSE__EVENTS__V1__MELODY_TYPE__MELODY_TYPE_RESTORATION;
    ev.power = power;
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&ev.base, buf);
    assert_int_equal(fv_bus_publish(fv_module_bus(publisher), ch, "song.performed", buf, n, key),
                     0);
}

static int group_setup(void **state)
{
    (void)state;
    int base = fv_test_port_base(21000, 300);
    char text[1024];
    fv_test_scratch_make(data_dir, sizeof(data_dir));
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\ndrain_timeout_ms = 2000\n"
             "log_level = \"warn\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n"
             "[http]\nmax_output_bytes = 65536\n"
             "[websocket]\ndev_token = \"devsecret\"\nmax_pending = 16\nhistory_events = 64\n"
             "max_kept_sessions = 4\n"
             "allowed_origins = \"null, http://localhost:8080\"\n"
             "[database]\nurl = \"sqlite::memory:\"\n",
             base, data_dir);
    static char *const env[] = {NULL};
    fv_error_t err;
    if (fv_config_load_string("test.toml", text, strlen(text), env, NULL, &cfg, &err) < 0)
        fail_msg("config: %s", err.msg);
    fv__modules_override(FV_MOD_SONG_ENGINE, &stand_in);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fv_runtime_new(&loop, cfg, &rt), 0);
    int which[] = {FV_MOD_WEBSOCKET_GATEWAY, FV_MOD_SONG_ENGINE, FV_MOD_WORLD_ENGINE};
    if (fv_runtime_start(rt, which, 3, &err) < 0)
        fail_msg("start: %s", err.msg);
    port = fv_component_port(FV_MOD_WEBSOCKET_GATEWAY, base);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fv_runtime_shutdown(rt);
    assert_int_equal(fv_runtime_run(rt), 0);
    fv_runtime_free(rt);
    fv_test_scratch_remove(data_dir);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fv_config_free(cfg);
    fv__modules_override(FV_MOD_SONG_ENGINE, NULL);
    return 0;
}

static wsc_t a, b;

/* The next text message as JSON (skipping pings); fails the test after 3 s. */
static json_t *next_json(wsc_t *c)
{
    wsc_frame_t f;
    for (;;) {
        if (!wsc_read(c, &f, 3000))
            fail_msg("no message within 3 s");
        if (f.opcode == 0x9 || f.opcode == 0xa) {
            free(f.data);
            continue;
        }
        if (f.opcode != 0x1)
            fail_msg("frame with opcode %d, not text", f.opcode);
        json_error_t e;
        json_t *j = json_loadb((char *)f.data, f.len, 0, &e);
        if (!j)
            fail_msg("server sent malformed JSON: %s", (char *)f.data);
        free(f.data);
        return j;
    }
}

static const char *str(json_t *j, const char *path_a, const char *path_b)
{
    json_t *v = json_object_get(j, path_a);
    if (path_b)
        v = json_object_get(v, path_b);
    return json_string_value(v);
}

/* Sends text and expects a message of type want back; returns it. */
static json_t *ask(wsc_t *c, const char *text, const char *want)
{
    wsc_send_text(c, text);
    json_t *j = next_json(c);
    const char *type = str(j, "type", NULL);
    if (!type || strcmp(type, want) != 0) {
        char *d = json_dumps(j, 0);
        fail_msg("sent %s: want %s, got %s", text, want, d);
    }
    return j;
}

static void expect_error(wsc_t *c, const char *text, const char *code)
{
    json_t *j = ask(c, text, "error");
    assert_string_equal(str(j, "code", NULL), code);
    assert_non_null(str(j, "message", NULL));
    json_decref(j);
}

/* hello as a guest; returns the welcome */
static json_t *hello(wsc_t *c)
{
    wsc_connect(c, &loop, port, "/ws");
    json_t *w = ask(c, "{\"type\":\"hello\",\"client\":\"test\",\"version\":\"1\"}", "welcome");
    assert_int_equal(strlen(str(w, "session_id", NULL)), 32);
    assert_true(json_is_true(json_object_get(json_object_get(w, "player"), "guest")));
    return w;
}

static void guest_subscribes_and_receives(void **state)
{
    (void)state;
    json_t *w = hello(&a);
    char own[96];
    snprintf(own, sizeof(own), "player:%s", str(w, "player", "id"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(w, "subscriptions"), 0)),
                        own);
    assert_true(json_integer_value(json_object_get(w, "heartbeat_ms")) > 0);
    json_decref(w);

    json_t *k = ask(&a, "{\"type\":\"subscribe\",\"id\":7,\"channels\":[\"region:terra-nova\"]}",
                    "ack");
    assert_int_equal(json_integer_value(json_object_get(k, "id")), 7);
    json_decref(k);
    publish_song("region.terra-nova", 3.5, NULL);
    publish_song("region.elsewhere", 1.0, NULL);      /* nobody here watches it */
    json_t *e = next_json(&a);
    assert_string_equal(str(e, "type", NULL), "event");
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
    assert_string_equal(str(e, "channel", NULL), "region:terra-nova");
    assert_string_equal(str(e, "event", NULL), "song.performed");
    assert_string_equal(str(e, "data", "melody_type"), "restoration");
    assert_string_equal(str(e, "data", "player_id"), "p1");
    assert_true(json_real_value(json_object_get(json_object_get(e, "data"), "power")) == 3.5);
    json_decref(e);

    /* unsubscribed: nothing more */
    k = ask(&a, "{\"type\":\"unsubscribe\",\"id\":\"u\",\"channels\":[\"region:terra-nova\"]}",
            "ack");
    assert_string_equal(str(k, "id", NULL), "u");
    json_decref(k);
    publish_song("region.terra-nova", 2, NULL);
    json_t *p = ask(&a, "{\"type\":\"ping\",\"id\":1}", "pong");
    json_decref(p);
    wsc_close_fd(&a);
}

static void errors_keep_the_connection(void **state)
{
    (void)state;
    wsc_connect(&a, &loop, port, "/");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":[\"region:x\"]}", "unauthenticated");
    json_decref(ask(&a, "{\"type\":\"hello\"}", "welcome"));
    expect_error(&a, "{\"type\":\"hello\"}", "invalid_argument");
    expect_error(&a, "{not json", "invalid_argument");
    expect_error(&a, "[1,2]", "invalid_argument");
    expect_error(&a, "{\"type\":\"teleport\"}", "invalid_argument");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":\"region:x\"}", "invalid_argument");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":[\"nokind\"]}", "invalid_argument");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":[\"region:a b\"]}",
                 "invalid_argument");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":[\"player:someone-else\"]}",
                 "permission_denied");
    expect_error(&a, "{\"type\":\"subscribe\",\"channels\":[\"group:g1\"]}", "permission_denied");
    json_t *e = ask(&a, "{\"type\":\"move\",\"id\":\"m1\",\"x\":1}", "error");
    assert_string_equal(str(e, "code", NULL), "invalid_argument");
    assert_string_equal(str(e, "id", NULL), "m1");
    json_decref(e);
    expect_error(&a, "{\"type\":\"move\",\"position\":{\"x\":\"1\",\"z\":2}}",
                 "invalid_argument");
    expect_error(&a, "{\"type\":\"move\",\"position\":{\"x\":1,\"z\":2},\"region\":3}",
                 "invalid_argument");
    /* a step from the spawn (512, ground, 512) onto the ground is taken as asked; a jump is cut
     * to the cap */
    char step[160];
    double gy = fv_terrain_height_at(42, fv_region_index("terra-nova"), 513, 512);
    snprintf(step, sizeof(step),
             "{\"type\":\"move\",\"id\":7,\"position\":{\"x\":513,\"y\":%.17g,\"z\":512}}",
             gy < 0 ? 0 : gy);
    e = ask(&a, step, "moved");
    assert_int_equal(json_integer_value(json_object_get(e, "id")), 7);
    assert_false(json_is_true(json_object_get(e, "corrected")));
    assert_string_equal(str(e, "position", "region"), "terra-nova");
    json_decref(e);
    e = ask(&a, "{\"type\":\"move\",\"id\":8,\"position\":{\"x\":900,\"y\":0,\"z\":512}}",
            "moved");
    assert_true(json_is_true(json_object_get(e, "corrected")));
    assert_string_equal(str(e, "reason", NULL), "too_fast");
    double x = json_number_value(json_object_get(json_object_get(e, "position"), "x"));
    assert_true(x > 513 && x < 600);
    json_decref(e);
    /* a region two away is refused: the answer is where the player stays */
    e = ask(&a, "{\"type\":\"move\",\"id\":9,\"region\":\"nowhere\","
            "\"position\":{\"x\":1,\"z\":1}}", "moved");
    assert_true(json_is_true(json_object_get(e, "refused")));
    assert_string_equal(str(e, "reason", NULL), "unknown_region");
    json_decref(e);
    /* a binary frame is no protocol violation either */
    wsc_send(&a, 0x82, "\x01\x02", 2);
    json_decref(next_json(&a));
    /* still open */
    json_decref(ask(&a, "{\"type\":\"ping\"}", "pong"));
    /* 300 channels are refused as a whole (at most 64 a message) */
    char big[8192];
    size_t o = (size_t)snprintf(big, sizeof(big), "{\"type\":\"subscribe\",\"channels\":[");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"chat:c%d\"", i ? "," : "", i);
    snprintf(big + o, sizeof(big) - o, "]}");
    expect_error(&a, big, "invalid_argument");
    wsc_close_fd(&a);
}

static void tokens(void **state)
{
    (void)state;
    wsc_connect(&a, &loop, port, "/ws");
    json_t *w = ask(&a, "{\"type\":\"hello\",\"token\":\"devsecret\"}", "welcome");
    assert_string_equal(str(w, "player", "id"), "dev");
    assert_true(json_is_false(json_object_get(json_object_get(w, "player"), "guest")));
    json_decref(w);
    wsc_close_fd(&a);

    wsc_connect(&a, &loop, port, "/ws");
    expect_error(&a, "{\"type\":\"hello\",\"token\":\"forged\"}", "unauthenticated");
    assert_int_equal(wsc_read_close(&a, 3000), 1008);
    wsc_close_fd(&a);
}

/* An access token as the API gateway issues it, signed with secret. */
static char *access_token(const char *secret, const char *sub, bool guest, int64_t exp_delta_s)
{
    fv_token_claims_t c = {.guest = guest};
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.name, sizeof(c.name), "Name-%s", sub);
    c.iat = (int64_t)(fv_wall_ms() / 1000);
    c.exp = c.iat + exp_delta_s;
    char *t = NULL;
    assert_int_equal(fv_token_issue(secret, &c, &t), 0);
    return t;
}

static void hello_with(const char *token, char *msg, size_t cap)
{
    snprintf(msg, cap, "{\"type\":\"hello\",\"token\":\"%s\"}", token);
}

static void access_tokens(void **state)
{
    (void)state;
    char msg[FV_TOKEN_MAX_BYTES + 64];
    char *t = access_token(FV_TOKEN_PLACEHOLDER_SECRET, "p123", false, 600);
    wsc_connect(&a, &loop, port, "/ws");
    hello_with(t, msg, sizeof(msg));
    json_t *w = ask(&a, msg, "welcome");
    assert_string_equal(str(w, "player", "id"), "p123");
    assert_string_equal(str(w, "player", "name"), "Name-p123");
    assert_true(json_is_false(json_object_get(json_object_get(w, "player"), "guest")));
    json_decref(w);
    wsc_close_fd(&a);
    fv_free(t);

    t = access_token(FV_TOKEN_PLACEHOLDER_SECRET, "g456", true, 600);
    wsc_connect(&a, &loop, port, "/ws");
    hello_with(t, msg, sizeof(msg));
    w = ask(&a, msg, "welcome");
    assert_string_equal(str(w, "player", "id"), "g456");
    assert_true(json_is_true(json_object_get(json_object_get(w, "player"), "guest")));
    json_decref(w);
    wsc_close_fd(&a);
    fv_free(t);

    /* expired, and signed with another secret */
    char *bad[] = {access_token(FV_TOKEN_PLACEHOLDER_SECRET, "p123", false, -1),
                   access_token("another-secret-another-secret-another", "p123", false, 600)};
    for (size_t i = 0; i < 2; i++) {
        wsc_connect(&a, &loop, port, "/ws");
        hello_with(bad[i], msg, sizeof(msg));
        expect_error(&a, msg, "unauthenticated");
        assert_int_equal(wsc_read_close(&a, 3000), 1008);
        wsc_close_fd(&a);
        fv_free(bad[i]);
    }
}

static void legacy_dialect(void **state)
{
    (void)state;
    wsc_connect(&a, &loop, port, "/ws");
    json_t *m = ask(&a,
                    "{\"type\":\"connect\",\"data\":{\"name\":\"Viewer\","
                    "\"client_version\":\"0.1\"}}",
                    "player_assigned");
    assert_non_null(str(m, "data", "player_id"));
    json_decref(m);
    m = ask(&a, "{\"type\":\"ping\",\"data\":{\"timestamp\":1234}}", "pong");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "data"), "timestamp")),
                     1234);
    assert_true(json_integer_value(json_object_get(json_object_get(m, "data"), "server_time")) >
                0);
    json_decref(m);
    m = ask(&a,
            "{\"type\":\"subscribe_regions\",\"data\":{\"regions\":[\"terra-nova\","
            "\"whispering-wilds\"]}}",
            "region_subscribed");
    assert_int_equal(json_array_size(json_object_get(json_object_get(m, "data"), "regions")), 2);
    json_decref(m);
    /* the first viewer's default move: far from the spawn, so cut short and answered */
    m = ask(&a, "{\"type\":\"move_player\",\"data\":{\"x\":100,\"y\":50,\"z\":200}}",
            "position_updated");
    json_t *at = json_object_get(m, "data");
    double dx = json_number_value(json_object_get(at, "x")) - 512;
    double dz = json_number_value(json_object_get(at, "z")) - 512;
    assert_true(dx < 0 && dz < 0 && dx * dx + dz * dz <= 26.0 * 26 + 1e-6);
    assert_true(json_number_value(json_object_get(at, "y")) == 50);
    json_decref(m);
    m = ask(&a, "{\"type\":\"move_player\",\"data\":{\"x\":\"a\"}}", "error");
    assert_non_null(str(m, "data", "message"));
    json_decref(m);
    m = ask(&a, "{\"type\":\"bogus\",\"data\":{}}", "error");
    json_decref(m);
    publish_song("region.whispering-wilds", 7, NULL);
    m = next_json(&a);
    assert_string_equal(str(m, "type", NULL), "melody_performed");
    json_t *d = json_object_get(m, "data");
    assert_string_equal(str(d, "melody_type", NULL), "restoration");
    assert_true(json_real_value(json_object_get(d, "x")) == 100);
    assert_true(json_real_value(json_object_get(d, "power")) == 7);
    json_decref(m);
    wsc_close_fd(&a);
}

static void resume_delivers_exactly_the_missed(void **state)
{
    (void)state;
    json_t *w = hello(&a);
    char sid[64];
    snprintf(sid, sizeof(sid), "%s", str(w, "session_id", NULL));
    json_decref(w);
    json_decref(ask(&a, "{\"type\":\"subscribe\",\"channels\":[\"region:r1\"]}", "ack"));
    publish_song("region.r1", 1, NULL);
    json_t *e = next_json(&a);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
    json_decref(e);
    wsc_close_fd(&a);
    for (int i = 0; i < 100; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    publish_song("region.r1", 2, NULL);
    publish_song("region.r1", 3, NULL);
    publish_song("region.r1", 4, NULL);
    for (int i = 0; i < 100; i++)
        uv_run(&loop, UV_RUN_NOWAIT);

    wsc_connect(&a, &loop, port, "/ws");
    char hello_text[256];
    snprintf(hello_text, sizeof(hello_text),
             "{\"type\":\"hello\",\"resume\":{\"session_id\":\"%s\",\"last_seq\":1}}", sid);
    w = ask(&a, hello_text, "welcome");
    assert_true(json_is_true(json_object_get(w, "resumed")));
    assert_string_equal(str(w, "session_id", NULL), sid);
    json_decref(w);
    for (int k = 2; k <= 4; k++) {
        e = next_json(&a);
        assert_int_equal(json_integer_value(json_object_get(e, "seq")), k);
        assert_true(json_real_value(json_object_get(json_object_get(e, "data"), "power")) == k);
        json_decref(e);
    }
    /* live again, numbered on */
    publish_song("region.r1", 5, NULL);
    e = next_json(&a);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 5);
    json_decref(e);
    wsc_close_fd(&a);

    /* a forged id gets a fresh session */
    wsc_connect(&b, &loop, port, "/ws");
    w = ask(&b,
            "{\"type\":\"hello\",\"resume\":{\"session_id\":\"0123456789abcdef0123456789abcdef\","
            "\"last_seq\":3}}",
            "welcome");
    assert_true(json_is_false(json_object_get(w, "resumed")));
    assert_string_not_equal(str(w, "session_id", NULL), sid);
    json_decref(w);
    wsc_close_fd(&b);
}

/* A client that never reads falls behind: its events are held, then it is closed with 1013;
 * a fast client on the same channel gets every event. 8 KiB events (JSON payloads, the way a
 * module outside the proto contract publishes) overflow the kernel's buffers quickly. */
static void slow_reader_closed_fast_one_served(void **state)
{
    (void)state;
    json_decref(hello(&a));
    json_decref(hello(&b));
    json_decref(ask(&a, "{\"type\":\"subscribe\",\"channels\":[\"region:busy\"]}", "ack"));
    json_decref(ask(&b, "{\"type\":\"subscribe\",\"channels\":[\"region:busy\"]}", "ack"));
    static char payload[8200];
    const int total = 1000;
    int got = 0;
    for (int i = 1; i <= total; i++) {
        int n = snprintf(payload, sizeof(payload), "{\"i\":%d,\"blob\":\"", i);
        memset(payload + n, 'x', 8000);
        memcpy(payload + n + 8000, "\"}", 3);
        assert_int_equal(fv_bus_publish(fv_module_bus(publisher), "region.busy", "test.blob",
                                        payload, strlen(payload), NULL),
                         0);
        for (int k = 0; k < 3; k++)
            uv_run(&loop, UV_RUN_NOWAIT);
        wsc_pull(&b);
        wsc_frame_t f;
        while (wsc_read(&b, &f, 0)) {
            if (f.opcode == 0x1) {
                json_t *e = json_loadb((char *)f.data, f.len, 0, NULL);
                assert_non_null(e);
                assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"),
                                                                    "i")),
                                 got + 1);
                json_decref(e);
                got++;
            }
            free(f.data);
        }
    }
    while (got < total) {
        json_t *e = next_json(&b);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "i")),
                         got + 1);
        json_decref(e);
        got++;
    }
    /* the slow one, read at last: some events, then a close with 1013 */
    assert_int_equal(wsc_read_close(&a, 5000), 1013);
    wsc_close_fd(&a);
    wsc_close_fd(&b);
}

/* GET path on the gateway's port; returns the status and the body as JSON (or NULL). */
static int http_get(const char *path, json_t **body)
{
    static wsc_t h;
    wsc_open(&h, &loop, port);
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    char head[2048];
    int status = wsc_handshake_raw(&h, req, head, sizeof(head));
    for (int i = 0; i < 3000 && !h.eof; i++)
        wsc_wait(&h);
    *body = json_loadb((char *)h.in, h.in_len, 0, NULL);
    wsc_close_fd(&h);
    return status;
}

static bool listed(json_t *presence, const char *player)
{
    json_t *players = json_object_get(presence, "players");
    for (size_t i = 0; i < json_array_size(players); i++)
        if (strcmp(str(json_array_get(players, i), "player_id", NULL), player) == 0)
            return true;
    return false;
}

/* Presence: a player who says hello is listed for its region and announced to the region's
 * subscribers; one who leaves is taken off and announced gone. */
static void presence_online_and_gone(void **state)
{
    (void)state;
    json_decref(hello(&b));
    json_decref(ask(&b, "{\"type\":\"subscribe\",\"channels\":[\"region:terra-nova\"]}", "ack"));
    json_t *w = hello(&a);
    char pa[64];
    snprintf(pa, sizeof(pa), "%s", str(w, "player", "id"));
    json_decref(w);
    json_t *e = next_json(&b);
    assert_string_equal(str(e, "event", NULL), "presence.changed");
    assert_string_equal(str(e, "data", "player_id"), pa);
    assert_true(json_is_true(json_object_get(json_object_get(e, "data"), "online")));
    json_decref(e);

    json_t *body;
    assert_int_equal(http_get("/presence?region=terra-nova", &body), 200);
    assert_true(listed(body, pa));
    json_decref(body);

    wsc_close_fd(&a);
    e = next_json(&b);
    assert_string_equal(str(e, "event", NULL), "presence.changed");
    assert_string_equal(str(e, "data", "player_id"), pa);
    assert_true(json_is_false(json_object_get(json_object_get(e, "data"), "online")));
    json_decref(e);
    assert_int_equal(http_get("/presence?region=terra-nova", &body), 200);
    assert_false(listed(body, pa));
    json_decref(body);
    assert_int_equal(http_get("/presence", &body), 400);
    json_decref(body);
    assert_int_equal(http_get("/presence?region=a%20b", &body), 400);
    json_decref(body);
    wsc_close_fd(&b);
}

/* Sessions kept for resume are bounded: six clients that say hello and leave leave four
 * sessions behind; the first two ids no longer resume, the last one does. */
static void kept_sessions_are_bounded(void **state)
{
    (void)state;
    char ids[6][64];
    for (int i = 0; i < 6; i++) {
        json_t *w = hello(&a);
        snprintf(ids[i], sizeof(ids[i]), "%s", str(w, "session_id", NULL));
        json_decref(w);
        wsc_close_fd(&a);
        for (int k = 0; k < 50; k++)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    const int want[6] = {0, 0, 1, 1, 1, 1};
    for (int i = 5; i >= 0; i -= 5) {
        wsc_connect(&a, &loop, port, "/ws");
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"type\":\"hello\",\"resume\":{\"session_id\":\"%s\",\"last_seq\":0}}",
                 ids[i]);
        json_t *w = ask(&a, text, "welcome");
        assert_int_equal(json_is_true(json_object_get(w, "resumed")), want[i]);
        json_decref(w);
        wsc_close_fd(&a);
        for (int k = 0; k < 50; k++)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
}

static void origins_and_plain_http(void **state)
{
    (void)state;
    char head[2048];
#define ORIGIN_REQ(o)                                                                      \
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"          \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: " o \
    "\r\n\r\n"
    char text[512];
    snprintf(text, sizeof(text), "%s", ORIGIN_REQ("http://evil.example"));
    wsc_open(&a, &loop, port);
    assert_int_equal(wsc_handshake_raw(&a, text, head, sizeof(head)), 403);
    wsc_close_fd(&a);
    snprintf(text, sizeof(text), "%s", ORIGIN_REQ("null"));
    wsc_open(&a, &loop, port);
    assert_int_equal(wsc_handshake_raw(&a, text, head, sizeof(head)), 101);
    wsc_close_fd(&a);

    wsc_open(&a, &loop, port);
    assert_int_equal(wsc_handshake_raw(&a, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", head,
                                       sizeof(head)),
                     200);
    wsc_close_fd(&a);
    wsc_open(&a, &loop, port);
    assert_int_equal(wsc_handshake_raw(&a, "GET /anything HTTP/1.1\r\nHost: x\r\n\r\n", head,
                                       sizeof(head)),
                     404);
    wsc_close_fd(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(guest_subscribes_and_receives),
        cmocka_unit_test(errors_keep_the_connection),
        cmocka_unit_test(tokens),
        cmocka_unit_test(access_tokens),
        cmocka_unit_test(legacy_dialect),
        cmocka_unit_test(resume_delivers_exactly_the_missed),
        cmocka_unit_test(slow_reader_closed_fast_one_served),
        cmocka_unit_test(presence_online_and_gone),
        cmocka_unit_test(kept_sessions_are_bounded),
        cmocka_unit_test(origins_and_plain_http),
    };
    return cmocka_run_group_tests_name("websocket-gateway", tests, group_setup, group_teardown);
}
