/* test_world_module.c - the world-engine module in the real runtime, driven by a stand-in
 * module through calls and the bus: Move accepted, cut to the speed cap and refused, the
 * player's position and the region's count; player.moved and cell.changed on the region's
 * channel; the regions saved at shutdown and loaded by the next runtime at the same step; a
 * saved row that does not decode starts that region fresh and leaves the others loaded. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loopback.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bus/bus.h"
#include "config/config.h"
#include "core/alloc.h"
#include "loop_wait.h"
#include "proto/common.pb-c.h"
#include "proto/world.pb-c.h"
#include "runtime/modules.h"
#include "runtime/runtime.h"
#include "services/world-engine/world_rules.h"
#include "world3d/grid.h"
#include "world3d/terrain.h"

static uv_loop_t loop;
static fv_config_t *cfg;
static fv_runtime_t *rt;
static fv_module_ctx_t *peer;
static int ready;
static int moved_events;
static int cell_events;
static char dir[] = "/tmp/fv-world-test-XXXXXX";

static void on_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    (void)sub;
    (void)data;
    if (strcmp(ev->type.ptr, "player.moved") == 0 &&
        strcmp(ev->channel.ptr, "region.terra-nova") == 0)
        moved_events++;
    if (strcmp(ev->type.ptr, "cell.changed") == 0)
        cell_events++;
}

static int peer_start(fv_module_ctx_t *ctx, fv_error_t *err)
{
    (void)err;
    peer = ctx;
    ready++;
    fv_bus_sub_opts_t so = {.queue_count = 100000};
    return fv_module_subscribe(ctx, "region.*", &so, on_event, NULL, NULL);
}

static const char *const peer_deps[] = {"world-engine", NULL};
static const fv_module_t stand_in = {.name = "echo-engine", .deps = peer_deps,
                                     .start = peer_start};

/* Starts a runtime with the world engine and the stand-in on dir; extra: more
 * [services.world-engine] keys. */
static void up_with(bool simulate, const char *extra)
{
    int base = fv_test_port_base(22000, 300);
    char text[1024];
    snprintf(text, sizeof(text),
             "[general]\nport_base = %d\ndata_dir = \"%s\"\ndrain_timeout_ms = 2000\n"
             "log_level = \"error\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n"
             "[database]\nurl = \"sqlite:world.db\"\n"
             "[world]\nseed = 7\nsim_hz = 50\ntick_hz = 50\n"
             "[services.world-engine]\nsave_interval_ms = 100\nsimulate = %s\n%s",
             base, dir, simulate ? "true" : "false", extra);
    static char *const env[] = {NULL};
    fv_error_t err;
    if (fv_config_load_string("test.toml", text, strlen(text), env, NULL, &cfg, &err) < 0)
        fail_msg("config: %s", err.msg);
    fv__modules_override(FV_MOD_ECHO_ENGINE, &stand_in);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fv_runtime_new(&loop, cfg, &rt), 0);
    int which[] = {FV_MOD_WORLD_ENGINE, FV_MOD_ECHO_ENGINE};
    ready = 0;
    moved_events = cell_events = 0;
    if (fv_runtime_start(rt, which, 2, &err) < 0)
        fail_msg("start: %s", err.msg);
    fv_test_run_until(&loop, &ready, 1, 10000);
}

static void up(bool simulate)
{
    up_with(simulate, "");
}

static void down(void)
{
    fv_runtime_shutdown(rt);
    assert_int_equal(fv_runtime_run(rt), 0);
    fv_runtime_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fv_config_free(cfg);
    fv__modules_override(FV_MOD_ECHO_ENGINE, NULL);
    peer = NULL;
}

/* ---- calls ---- */

typedef struct answer {
    int done;
    int status;
    ProtobufCMessage *msg;      /* a copy, freed by the test */
} answer_t;

static void on_answer(int status, const ProtobufCMessage *out, const fv_error_t *err, void *data)
{
    (void)err;
    answer_t *a = data;
    a->status = status;
    if (out) {
        uint8_t buf[8192];
        size_t n = protobuf_c_message_pack(out, buf);
        a->msg = protobuf_c_message_unpack(out->descriptor, NULL, n, buf);
    }
    a->done = 1;
}

static void call(const char *method, const ProtobufCMessage *in,
                 const ProtobufCMessageDescriptor *out, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(fv_call(peer, "world-engine", method, in, out, 5000, on_answer, a), 0);
    fv_test_run_until(&loop, &a->done, 1, 10000);
}

static Finalverse__World__V1__MoveReply *move(const char *player, const char *region, double x,
                                              double y, double z, answer_t *a)
{
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    at.x = x;
    at.y = y;
    at.z = z;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    pos.region = (char *)region;
    pos.at = &at;
    Finalverse__World__V1__MoveRequest req = FINALVERSE__WORLD__V1__MOVE_REQUEST__INIT;
    req.player_id = (char *)player;
    req.position = &pos;
    call("Move", &req.base, &finalverse__world__v1__move_reply__descriptor, a);
    return (Finalverse__World__V1__MoveReply *)a->msg;
}

static Finalverse__World__V1__ListRegionsReply *list(answer_t *a)
{
    Finalverse__Common__V1__Empty e = FINALVERSE__COMMON__V1__EMPTY__INIT;
    call("ListRegions", &e.base, &finalverse__world__v1__list_regions_reply__descriptor, a);
    assert_int_equal(a->status, 0);
    return (Finalverse__World__V1__ListRegionsReply *)a->msg;
}

static const Finalverse__World__V1__Region *region_of(
    const Finalverse__World__V1__ListRegionsReply *l, const char *id)
{
    for (size_t i = 0; i < l->n_regions; i++)
        if (strcmp(l->regions[i]->id, id) == 0)
            return l->regions[i];
    fail_msg("no region %s", id);
    return NULL;
}

static void on_timer(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Runs the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    int fired = 0;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_timer, ms, 0);
    fv_test_run_until(&loop, &fired, 1, ms + 10000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The ground under a point of a region, as the world of seed 7 (the config above) has it:
 * where a player stands without being corrected. */
static double ground(const char *region, double x, double z)
{
    double h = fv_terrain_height_at(7, fv_region_index(region), x, z);
    return h < 0 ? 0 : h;
}

static void moves_and_events(void **state)
{
    (void)state;
    up(true);
    answer_t a;
    Finalverse__World__V1__MoveReply *r = move("p1", "", 513, ground("terra-nova", 513, 512), 512, &a);
    assert_int_equal(a.status, 0);
    assert_false(r->corrected || r->refused);
    assert_string_equal(r->position->region, "terra-nova");
    assert_true(r->position->at->x == 513);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    r = move("p1", "", 900, 0, 512, &a);
    assert_true(r->corrected && !r->refused);
    assert_string_equal(r->reason, "too_fast");
    double x = r->position->at->x;
    assert_true(x > 513 && x < 560);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    run_for(100);
    /* the east neighbour named, in its frame: a step that stays in terra-nova */
    r = move("p1", "ember-reach", x + 1 - 1024, ground("terra-nova", x + 1, 512), 512, &a);
    assert_false(r->corrected || r->refused);
    assert_string_equal(r->position->region, "terra-nova");
    assert_true(fabs(r->position->at->x - (x + 1)) < 1e-9);
    x = r->position->at->x;
    protobuf_c_message_free_unpacked(a.msg, NULL);
    r = move("p1", "atlantis", 1, 0, 1, &a);
    assert_true(r->refused);
    assert_string_equal(r->reason, "unknown_region");
    assert_true(r->position->at->x == x);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    (void)move("", "", 1, 0, 1, &a);
    assert_int_equal(a.status, FV_EINVAL);

    Finalverse__Common__V1__IdRequest id = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    id.id = "p1";
    call("GetPosition", &id.base, &finalverse__world__v1__player_position__descriptor, &a);
    assert_int_equal(a.status, 0);
    assert_true(((Finalverse__World__V1__PlayerPosition *)a.msg)->position->at->x == x);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    id.id = "nobody";
    call("GetPosition", &id.base, &finalverse__world__v1__player_position__descriptor, &a);
    assert_int_equal(a.status, FV_ENOENT);
    id.id = "atlantis";
    call("GetRegion", &id.base, &finalverse__world__v1__region__descriptor, &a);
    assert_int_equal(a.status, FV_ENOENT);

    Finalverse__World__V1__ListRegionsReply *l = list(&a);
    assert_int_equal(l->n_regions, 9);
    assert_int_equal(region_of(l, "terra-nova")->players, 1);
    assert_int_equal(region_of(l, "aethelgard")->players, 0);
    protobuf_c_message_free_unpacked(a.msg, NULL);

    /* the movement tick told the region; the steps tell cells that changed */
    fv_test_run_until(&loop, &moved_events, 1, 10000);
    fv_test_run_until(&loop, &cell_events, 1, 20000);
    down();
}

/* Runs sql on the stopped world's database: what a damaged or foreign row looks like. */
static void damage(const char *sql)
{
    char path[sizeof(dir) + 16];
    snprintf(path, sizeof(path), "%s/world.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void saved_and_loaded(void **state)
{
    (void)state;
    answer_t a;
    up(true);
    run_for(300);
    uint64_t step = list(&a)->sim_step;
    protobuf_c_message_free_unpacked(a.msg, NULL);
    assert_true(step > 0);
    down();             /* saves at shutdown */

    up(false);
    Finalverse__World__V1__ListRegionsReply *l = list(&a);
    assert_true(l->sim_step >= step);
    uint64_t kept = l->sim_step;
    double tn = region_of(l, "terra-nova")->flora;
    protobuf_c_message_free_unpacked(a.msg, NULL);
    run_for(200);       /* not simulating: nothing moves */
    l = list(&a);
    assert_int_equal(l->sim_step, kept);
    assert_true(region_of(l, "terra-nova")->flora == tn);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    down();

    /* a damaged row: that region starts fresh, the others keep their state */
    damage("UPDATE world_regions SET state = x'00' WHERE id = 'aethelgard'");
    up(false);
    l = list(&a);
    assert_int_equal(l->sim_step, kept);
    assert_true(region_of(l, "terra-nova")->flora == tn);
    world_region_t *fresh = fv_malloc(sizeof(*fresh));
    world_region_init(fresh, 7, fv_region_index("aethelgard"), NULL);
    world_region_sums_t s;
    world_region_sums(fresh, 0, &s);
    assert_true(fabs(region_of(l, "aethelgard")->flora - s.flora) < 1e-9);
    fv_free(fresh);
    protobuf_c_message_free_unpacked(a.msg, NULL);
    down();
}

/* Moves player to (x, ground, z) of terra-nova: whether the world took it as asked. */
static bool moved_to(const char *player, double x, double z)
{
    answer_t a;
    Finalverse__World__V1__MoveReply *r = move(player, "terra-nova", x, ground("terra-nova", x, z),
                                               z, &a);
    assert_int_equal(a.status, 0);
    bool as_asked = !r->corrected && !r->refused && fabs(r->position->at->x - x) < 1e-6;
    protobuf_c_message_free_unpacked(a.msg, NULL);
    return as_asked;
}

static void leave(const char *player)
{
    answer_t a;
    Finalverse__Common__V1__IdRequest id = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    id.id = (char *)player;
    call("Leave", &id.base, &finalverse__common__v1__empty__descriptor, &a);
    assert_int_equal(a.status, 0);
    protobuf_c_message_free_unpacked(a.msg, NULL);
}

/* Players come back where they left: from the table while the engine runs, from the store
 * after a restart; a newcomer starts at the spawn (512, 512 of terra-nova). */
static void places_survive_a_restart(void **state)
{
    (void)state;
    up_with(false, "max_speed_mps = 10000\n");
    const char *const walkers[] = {"wanderer", "leaver", "gone"};
    for (size_t i = 0; i < 3; i++)
        assert_true(moved_to(walkers[i], 512.5, 512));  /* appear at the spawn */
    run_for(100);                                      /* which earns 1 km at this speed */
    assert_true(moved_to("wanderer", 700, 600));
    assert_true(moved_to("leaver", 300, 400));
    leave("leaver");
    assert_true(moved_to("leaver", 300.5, 400));      /* back where it left, at once */
    leave("leaver");
    assert_true(moved_to("gone", 900, 900));
    leave("gone");
    down();                                           /* the last save writes them all */

    up(false);                                        /* now at the usual speed cap */
    assert_true(moved_to("wanderer", 700.5, 600));
    assert_true(moved_to("leaver", 300, 400.5));
    assert_false(moved_to("newcomer", 700.5, 600));   /* too far from the spawn */
    assert_true(moved_to("newcomer2", 512.5, 512));
    answer_t a;
    Finalverse__Common__V1__IdRequest id = FINALVERSE__COMMON__V1__ID_REQUEST__INIT;
    id.id = "gone";                                   /* out of the world until it moves */
    call("GetPosition", &id.base, &finalverse__world__v1__player_position__descriptor, &a);
    assert_int_equal(a.status, FV_ENOENT);
    down();

    /* a row for a region this world does not have is skipped; the rest load */
    damage("UPDATE world_players SET region = 'atlantis' WHERE id = 'gone'");
    up(false);
    assert_false(moved_to("gone", 900.5, 900));       /* at the spawn now */
    assert_true(moved_to("wanderer", 701, 600));
    down();
}

/* A table of one place: the ones it lets go are read back from the store when their players
 * come back, while the engine runs and after a restart (which loads only the newest). */
static void places_past_the_ceiling_come_from_the_store(void **state)
{
    (void)state;
    up_with(false, "max_speed_mps = 10000\nremembered_places = 1\n");
    const char *const walkers[] = {"first", "second", "third"};
    for (size_t i = 0; i < 3; i++)
        assert_true(moved_to(walkers[i], 512.5, 512));
    run_for(100);
    assert_true(moved_to("first", 600, 512));
    assert_true(moved_to("second", 650, 512));
    assert_true(moved_to("third", 700, 512));
    leave("first");
    run_for(300);                                      /* saved: the table may let it go */
    leave("second");                                   /* ... and does */
    run_for(300);
    leave("third");
    assert_true(moved_to("first", 600.5, 512));        /* from the store */
    assert_true(moved_to("third", 700.5, 512));        /* from the table */
    leave("first");
    down();

    up_with(false, "remembered_places = 1\n");        /* loads one: "first", the newest */
    assert_true(moved_to("second", 650.5, 512));       /* from the store */
    assert_true(moved_to("third", 700.5, 512));
    assert_true(moved_to("first", 600.5, 512));
    assert_false(moved_to("never-seen", 650.5, 512));  /* looked up, not found: the spawn */
    down();
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[sizeof(dir) + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(moves_and_events),
        cmocka_unit_test(saved_and_loaded),
        cmocka_unit_test(places_survive_a_restart),
        cmocka_unit_test(places_past_the_ceiling_come_from_the_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
