/* test_bus.c - the event bus in one process: exact and prefix patterns, nothing delivered
 * inside publish, publish order, unsubscribe from callbacks, drop-oldest and coalesce with their
 * counters, the size ceiling, a subscriber that never drains, 1,000 exact channels, events kept
 * past the callback, close with events queued, allocation failures; then two buses on two Redis
 * kv handles (two processes) and malformed envelopes from Redis. Every loop closes cleanly.
 * fv-test-needs: redis
 * fv-test-lock: redis-bus (both count the fv.bus.* traffic of the shared Redis) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "loop_wait.h"
#include "test_servers.h"

#include "bus/bus.h"
#include "core/alloc.h"
#include "proto/events.pb-c.h"

#define WAIT_MS 5000
#define MAX_GOT 64

typedef struct got {
    int count;
    char channel[MAX_GOT][64];
    char payload[MAX_GOT][64];
    uint64_t seq[MAX_GOT];
    uint64_t origin[MAX_GOT];
    fv_bus_sub_t *sub;           /* for tests that unsubscribe */
    fv_bus_sub_t *other;
    int unsub_after;             /* unsubscribe sub (and other) after this many events */
    fv_bus_event_t *kept;        /* a ref taken in the callback */
} got_t;

static void on_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    got_t *g = data;
    assert_non_null(ev);
    assert_int_equal(ev->channel.ptr[ev->channel.len], '\0');
    assert_int_equal(ev->type.ptr[ev->type.len], '\0');
    if (g->count < MAX_GOT) {
        snprintf(g->channel[g->count], 64, "%s", ev->channel.ptr);
        snprintf(g->payload[g->count], 64, "%.*s", (int)ev->payload.len, ev->payload.ptr);
        g->seq[g->count] = ev->seq;
        g->origin[g->count] = ev->origin;
    }
    g->count++;
    if (g->unsub_after && g->count == g->unsub_after) {
        fv_bus_unsubscribe(g->sub);
        fv_bus_unsubscribe(g->other);
    }
}

static void on_event_keep(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    got_t *g = data;
    on_event(sub, ev, data);
    if (!g->kept) {
        g->kept = (fv_bus_event_t *)ev;
        fv_bus_event_ref(g->kept);
    }
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

static void close_bus(uv_loop_t *loop, fv_bus_t *bus)
{
    int closed = 0;
    fv_bus_close(bus, on_closed, &closed);
    fv_bus_close(bus, on_closed, &closed);   /* only the first counts */
    assert_int_equal(closed, 0);             /* never inside the call */
    fv_test_run_until(loop, &closed, 1, WAIT_MS);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 1);
}

/* Runs the loop for a few turns: enough for deliveries already queued. */
static void spin(uv_loop_t *loop)
{
    for (int i = 0; i < 4; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static int pub(fv_bus_t *bus, const char *channel, const char *payload, const char *key)
{
    return fv_bus_publish(bus, channel, "test.event", payload, strlen(payload), key);
}

typedef struct fixture {
    uv_loop_t loop;
    fv_bus_t *bus;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    fv_bus_opts_t o = {.max_event_bytes = 1024, .queue_count = 16};
    assert_int_equal(fv_bus_new(&f->loop, &o, &f->bus), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    close_bus(&f->loop, f->bus);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* ---- in process ---------------------------------------------------------------------------- */

static void exact_and_prefix(void **state)
{
    fixture_t *f = *state;
    got_t exact = {0}, region = {0}, all = {0}, player = {0};
    fv_bus_sub_t *s1, *s2, *s3, *s4;
    assert_int_equal(fv_bus_subscribe(f->bus, "region.terra-nova", NULL, on_event, &exact, &s1),
                     0);
    assert_int_equal(fv_bus_subscribe(f->bus, "region.*", NULL, on_event, &region, &s2), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "*", NULL, on_event, &all, &s3), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "player.42", NULL, on_event, &player, &s4), 0);

    assert_int_equal(pub(f->bus, "region.terra-nova", "a", NULL), 0);
    assert_int_equal(pub(f->bus, "region.whispering-wilds", "b", NULL), 0);
    assert_int_equal(pub(f->bus, "player.42", "c", NULL), 0);
    assert_int_equal(pub(f->bus, "player.420", "d", NULL), 0);
    assert_int_equal(pub(f->bus, "regions", "e", NULL), 0);
    /* nothing inside publish */
    assert_int_equal(exact.count + region.count + all.count + player.count, 0);
    spin(&f->loop);

    assert_int_equal(exact.count, 1);
    assert_string_equal(exact.payload[0], "a");
    assert_int_equal(region.count, 2);
    assert_string_equal(region.channel[0], "region.terra-nova");
    assert_string_equal(region.channel[1], "region.whispering-wilds");
    assert_int_equal(all.count, 5);
    assert_int_equal(player.count, 1);
    assert_string_equal(player.payload[0], "c");

    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.published, 5);
    assert_int_equal(st.delivered, 9);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.subscribers, 4);
    assert_false(st.remote);
    fv_bus_unsubscribe(s1);
    fv_bus_unsubscribe(s2);
    fv_bus_unsubscribe(s3);
    fv_bus_unsubscribe(s4);
    fv_bus_unsubscribe(NULL);
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.subscribers, 0);

    /* a publish nobody hears is still accepted; a late subscriber gets nothing from before */
    assert_int_equal(pub(f->bus, "region.terra-nova", "x", NULL), 0);
    got_t late = {0};
    assert_int_equal(fv_bus_subscribe(f->bus, "region.terra-nova", NULL, on_event, &late, &s1),
                     0);
    spin(&f->loop);
    assert_int_equal(late.count, 0);
    assert_int_equal(exact.count, 1);
}

static void bad_arguments(void **state)
{
    fixture_t *f = *state;
    got_t g = {0};
    fv_bus_sub_t *s;
    assert_int_equal(fv_bus_subscribe(f->bus, "", NULL, on_event, &g, &s), FV_EINVAL);
    assert_int_equal(fv_bus_subscribe(f->bus, "a*b", NULL, on_event, &g, &s), FV_EINVAL);
    assert_int_equal(fv_bus_subscribe(f->bus, "**", NULL, on_event, &g, &s), FV_EINVAL);
    assert_int_equal(fv_bus_subscribe(f->bus, NULL, NULL, on_event, &g, &s), FV_EINVAL);
    assert_int_equal(fv_bus_subscribe(f->bus, "a", NULL, NULL, &g, &s), FV_EINVAL);
    fv_bus_sub_opts_t big = {.queue_count = FV_BUS_MAX_QUEUE + 1};
    assert_int_equal(fv_bus_subscribe(f->bus, "a", &big, on_event, &g, &s), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "", "t", "x", 1, NULL), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "a.*", "t", "x", 1, NULL), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "a", "", "x", 1, NULL), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "a", NULL, "x", 1, NULL), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "a", "t", NULL, 1, NULL), FV_EINVAL);
    assert_int_equal(fv_bus_publish(f->bus, "a", "t", "x", 1, ""), FV_EINVAL);
    char longname[FV_BUS_MAX_NAME + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(fv_bus_publish(f->bus, longname, "t", "x", 1, NULL), FV_EINVAL);
    longname[FV_BUS_MAX_NAME] = '\0';
    assert_int_equal(fv_bus_publish(f->bus, longname, "t", "x", 1, NULL), 0);
    assert_int_equal(fv_bus_publish(f->bus, "a", "t", NULL, 0, NULL), 0);   /* empty payload */
    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.refused, 7);
    assert_int_equal(st.published, 2);
}

static void order_and_seq(void **state)
{
    fixture_t *f = *state;
    got_t a = {0}, b = {0};
    fv_bus_sub_t *sa, *sb;
    fv_bus_sub_opts_t o = {.queue_count = 64};
    assert_int_equal(fv_bus_subscribe(f->bus, "song.performed", &o, on_event, &a, &sa), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "song.*", &o, on_event, &b, &sb), 0);
    for (int i = 0; i < 50; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        assert_int_equal(pub(f->bus, "song.performed", p, NULL), 0);
    }
    assert_int_equal(fv_bus_sub_pending(sa), 50);
    fv_test_run_until(&f->loop, &b.count, 50, WAIT_MS);
    assert_int_equal(a.count, 50);
    for (int i = 0; i < 50; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        assert_string_equal(a.payload[i], p);
        assert_string_equal(b.payload[i], p);
        assert_int_equal(a.seq[i], b.seq[i]);
        assert_int_equal(a.origin[i], fv_bus_origin(f->bus));
        if (i)
            assert_true(a.seq[i] == a.seq[i - 1] + 1);
    }
    assert_int_equal(fv_bus_sub_pending(sa), 0);
    fv_bus_unsubscribe(sa);
    fv_bus_unsubscribe(sb);
}

static void unsubscribe_inside_callback(void **state)
{
    fixture_t *f = *state;
    got_t a = {0}, b = {0}, c = {0};
    assert_int_equal(fv_bus_subscribe(f->bus, "chat.message", NULL, on_event, &a, &a.sub), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "chat.*", NULL, on_event, &b, &b.sub), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "chat.message", NULL, on_event, &c, &c.sub), 0);
    a.unsub_after = 1;        /* a leaves at its first event, and takes b with it */
    a.other = b.sub;
    for (int i = 0; i < 3; i++)
        assert_int_equal(pub(f->bus, "chat.message", "hi", NULL), 0);
    fv_test_run_until(&f->loop, &c.count, 3, WAIT_MS);
    spin(&f->loop);
    assert_int_equal(a.count, 1);
    assert_true(b.count <= 1);   /* b may have run before a; never after */
    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.subscribers, 1);
    /* unsubscribing the last subscriber of a channel from its callback empties the channel */
    c.unsub_after = 4;
    assert_int_equal(pub(f->bus, "chat.message", "bye", NULL), 0);
    assert_int_equal(pub(f->bus, "chat.message", "after", NULL), 0);
    spin(&f->loop);
    assert_int_equal(c.count, 4);
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.subscribers, 0);
}

static void drop_oldest(void **state)
{
    fixture_t *f = *state;
    got_t g = {0};
    fv_bus_sub_t *s;
    fv_bus_sub_opts_t o = {.queue_count = 4, .policy = FV_BUS_DROP_OLDEST};
    assert_int_equal(fv_bus_subscribe(f->bus, "player.7", &o, on_event, &g, &s), 0);
    for (int i = 0; i < 10; i++) {
        char p[8];
        snprintf(p, sizeof(p), "%d", i);
        assert_int_equal(pub(f->bus, "player.7", p, "same-key-ignored"), 0);
    }
    assert_int_equal(fv_bus_sub_pending(s), 4);
    assert_int_equal(fv_bus_sub_dropped(s), 6);
    spin(&f->loop);
    assert_int_equal(g.count, 4);
    for (int i = 0; i < 4; i++) {
        char p[8];
        snprintf(p, sizeof(p), "%d", 6 + i);
        assert_string_equal(g.payload[i], p);
    }
    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.dropped, 6);
    assert_int_equal(st.delivered, 4);
    fv_bus_unsubscribe(s);
}

static void coalesce(void **state)
{
    fixture_t *f = *state;
    got_t g = {0};
    fv_bus_sub_t *s;
    fv_bus_sub_opts_t o = {.queue_count = 4, .policy = FV_BUS_COALESCE};
    assert_int_equal(fv_bus_subscribe(f->bus, "region.*", &o, on_event, &g, &s), 0);
    assert_int_equal(pub(f->bus, "region.a", "p1@1", "player.1"), 0);
    assert_int_equal(pub(f->bus, "region.a", "p2@1", "player.2"), 0);
    assert_int_equal(pub(f->bus, "region.a", "p1@2", "player.1"), 0);   /* replaces p1@1 */
    assert_int_equal(pub(f->bus, "region.a", "chat", NULL), 0);         /* no key: queued */
    assert_int_equal(pub(f->bus, "region.a", "p1@3", "player.1"), 0);   /* replaces p1@2 */
    assert_int_equal(fv_bus_sub_pending(s), 3);
    assert_int_equal(fv_bus_sub_dropped(s), 2);
    /* full, and a new key: the oldest goes */
    assert_int_equal(pub(f->bus, "region.a", "p3@1", "player.3"), 0);
    assert_int_equal(pub(f->bus, "region.a", "p4@1", "player.4"), 0);
    assert_int_equal(fv_bus_sub_pending(s), 4);
    assert_int_equal(fv_bus_sub_dropped(s), 3);
    spin(&f->loop);
    assert_int_equal(g.count, 4);
    /* publish order kept: the replacing event takes its own turn */
    assert_string_equal(g.payload[0], "chat");
    assert_string_equal(g.payload[1], "p1@3");
    assert_string_equal(g.payload[2], "p3@1");
    assert_string_equal(g.payload[3], "p4@1");
    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.dropped, 3);
    fv_bus_unsubscribe(s);
}

static void oversize(void **state)
{
    fixture_t *f = *state;   /* max_event_bytes 1024: payload plus names */
    got_t g = {0};
    fv_bus_sub_t *s;
    assert_int_equal(fv_bus_subscribe(f->bus, "c", NULL, on_event, &g, &s), 0);
    static char big[2048];
    memset(big, 'x', sizeof(big));
    /* "c" + "t" = 2 bytes of names */
    assert_int_equal(fv_bus_publish(f->bus, "c", "t", big, 1022, NULL), 0);
    assert_int_equal(fv_bus_publish(f->bus, "c", "t", big, 1023, NULL), FV_ETOOBIG);
    assert_int_equal(fv_bus_publish(f->bus, "c", "t", big, 1022, "k"), FV_ETOOBIG);
    assert_int_equal(fv_bus_publish(f->bus, "c", "t", big, sizeof(big), NULL), FV_ETOOBIG);
    assert_int_equal(fv_bus_publish(f->bus, "c", "t", big, SIZE_MAX, NULL), FV_ETOOBIG);
    spin(&f->loop);
    assert_int_equal(g.count, 1);
    fv_bus_stats_t st;
    fv_bus_stats(f->bus, &st);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.published, 1);
    fv_bus_unsubscribe(s);
}

/* A subscriber whose callbacks cannot keep up (here: the loop never runs while 100,000 events
 * are published) holds at most its queue; every event beyond is dropped and counted, and all
 * memory goes back when it leaves. */
static void never_drains_stays_bounded(void **state)
{
    fixture_t *f = *state;
    got_t g = {0};
    fv_bus_sub_t *s;
    fv_bus_sub_opts_t o = {.queue_count = 16};
    assert_int_equal(fv_bus_subscribe(f->bus, "weather.changed", &o, on_event, &g, &s), 0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(pub(f->bus, "weather.changed", "storm", NULL), 0);
    assert_int_equal(fv_bus_sub_pending(s), 16);
    assert_int_equal(fv_bus_sub_dropped(s), 100000 - 16);
    fv_bus_unsubscribe(s);   /* queued events released now */
    spin(&f->loop);
    assert_int_equal(g.count, 0);
}

static void many_exact_channels(void **state)
{
    fixture_t *f = *state;
    enum { N = 1000 };
    static got_t g[N];
    static fv_bus_sub_t *s[N];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < N; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "player.%d", i);
        assert_int_equal(fv_bus_subscribe(f->bus, ch, NULL, on_event, &g[i], &s[i]), 0);
    }
    for (int i = 0; i < N; i += 7) {
        char ch[32];
        snprintf(ch, sizeof(ch), "player.%d", i);
        assert_int_equal(pub(f->bus, ch, ch, NULL), 0);
    }
    spin(&f->loop);
    for (int i = 0; i < N; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "player.%d", i);
        assert_int_equal(g[i].count, i % 7 == 0);
        if (i % 7 == 0)
            assert_string_equal(g[i].payload[0], ch);
    }
    for (int i = 0; i < N; i++)
        fv_bus_unsubscribe(s[i]);
}

static void event_kept_past_callback(void **state)
{
    fixture_t *f = *state;
    got_t a = {0}, b = {0};
    fv_bus_sub_t *sa, *sb;
    assert_int_equal(fv_bus_subscribe(f->bus, "quest.created", NULL, on_event_keep, &a, &sa), 0);
    assert_int_equal(fv_bus_subscribe(f->bus, "quest.*", NULL, on_event_keep, &b, &sb), 0);
    assert_int_equal(pub(f->bus, "quest.created", "close the rift", "q1"), 0);
    spin(&f->loop);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 1);
    assert_ptr_equal(a.kept, b.kept);   /* one block shared by both subscribers */
    fv_bus_unsubscribe(sa);
    fv_bus_unsubscribe(sb);
    assert_memory_equal(a.kept->payload.ptr, "close the rift", 14);
    assert_string_equal(a.kept->coalesce_key.ptr, "q1");
    assert_string_equal(a.kept->type.ptr, "test.event");
    fv_bus_event_unref(a.kept);
    fv_bus_event_unref(b.kept);
}

typedef struct closer {
    fv_bus_t *bus;
    int events;
    int closed;
} closer_t;

static void on_event_close(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    closer_t *c = data;
    c->events++;
    fv_bus_close(c->bus, on_closed, &c->closed);
    assert_int_equal(fv_bus_publish(c->bus, "x", "t", "y", 1, NULL), FV_EUNAVAILABLE);
}

/* Closing from a callback with events still queued: they are released, no callback runs after
 * the close, the close callback runs once, later. Subscriptions still open end with the bus. */
static void close_inside_callback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    closer_t c = {0};
    assert_int_equal(fv_bus_new(&loop, NULL, &c.bus), 0);
    fv_bus_sub_t *s1, *s2;
    assert_int_equal(fv_bus_subscribe(c.bus, "x", NULL, on_event_close, &c, &s1), 0);
    assert_int_equal(fv_bus_subscribe(c.bus, "*", NULL, on_event_close, &c, &s2), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fv_bus_publish(c.bus, "x", "t", "y", 1, NULL), 0);
    fv_test_run_until(&loop, &c.closed, 1, WAIT_MS);
    assert_int_equal(c.events, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(c.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void memory_kv_stays_in_process(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_kv_t *kv;
    assert_int_equal(fv_kv_open(&loop, "memory:", NULL, &kv, NULL), 0);
    fv_bus_t *bus;
    fv_bus_opts_t o = {.kv = kv};
    assert_int_equal(fv_bus_new(&loop, &o, &bus), 0);
    got_t g = {0};
    fv_bus_sub_t *s;
    assert_int_equal(fv_bus_subscribe(bus, "cell.*", NULL, on_event, &g, &s), 0);
    assert_int_equal(fv_bus_publish(bus, "cell.3.4", "cell.changed", "z", 1, NULL), 0);
    fv_test_run_until(&loop, &g.count, 1, WAIT_MS);
    fv_bus_stats_t st;
    fv_bus_stats(bus, &st);
    assert_false(st.remote);
    assert_int_equal(st.remote_out, 0);
    close_bus(&loop, bus);
    int closed = 0;
    fv_kv_close(kv, on_closed, &closed);
    fv_test_run_until(&loop, &closed, 1, WAIT_MS);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- allocation failures ------------------------------------------------------------------- */

/* One scenario (subscribe two, publish three, deliver) with the nth fv_try_* allocation
 * failing: every step either works or returns FV_ENOMEM, nothing is delivered that was not
 * published, and everything is released (the loop closes; ASan builds check for leaks). */
static int fault_run(unsigned long n, int *delivered_ok)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_bus_t *bus = NULL;
    got_t a = {0}, b = {0};
    fv_bus_sub_t *sa = NULL, *sb = NULL;
    int published = 0;

    fv_alloc_fail_at(n);
    int rc = fv_bus_new(&loop, NULL, &bus);
    if (rc == 0) {
        rc = fv_bus_subscribe(bus, "region.terra-nova", NULL, on_event, &a, &sa);
        assert_true(rc == 0 || rc == FV_ENOMEM);
        rc = fv_bus_subscribe(bus, "region.*", NULL, on_event, &b, &sb);
        assert_true(rc == 0 || rc == FV_ENOMEM);
        for (int i = 0; i < 3; i++) {
            rc = fv_bus_publish(bus, "region.terra-nova", "t", "abc", 3, NULL);
            assert_true(rc == 0 || rc == FV_ENOMEM);
            published += rc == 0;
        }
    } else {
        assert_int_equal(rc, FV_ENOMEM);
    }
    int fired = fv_alloc_failed();
    fv_alloc_fail_at(0);

    if (bus) {
        spin(&loop);
        assert_int_equal(a.count, sa ? published : 0);
        assert_int_equal(b.count, sb ? published : 0);
        *delivered_ok = sa && sb && a.count == 3 && b.count == 3;
        close_bus(&loop, bus);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    return fired;
}

static void alloc_failures(void **state)
{
    unsigned long n;
    int ok = 0;
    for (n = 1; n < 200; n++) {
        ok = 0;
        if (!fault_run(n, &ok))
            break;
    }
    assert_true(n < 200);
    assert_true(n > 3);   /* the scenario allocates: the loop above really injected failures */
    assert_true(ok);      /* the run without a failure delivers everything */
}

/* ---- across processes over Redis ----------------------------------------------------------- */


typedef struct poll_cond {
    fv_bus_t *bus[2];
    int met;
} poll_cond_t;

static void on_poll_ready(uv_timer_t *t)
{
    poll_cond_t *p = t->data;
    fv_bus_stats_t a, b;
    fv_bus_stats(p->bus[0], &a);
    fv_bus_stats(p->bus[1], &b);
    if (a.remote_ready && b.remote_ready) {
        p->met = 1;
        uv_timer_stop(t);
    }
}

static void wait_ready(uv_loop_t *loop, fv_bus_t *a, fv_bus_t *b)
{
    poll_cond_t p = {{a, b}, 0};
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &p;
    uv_timer_start(&t, on_poll_ready, 5, 5);
    fv_test_run_until(loop, &p.met, 1, WAIT_MS);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void on_poll_ready_never(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void sleep_ms(uv_loop_t *loop, uint64_t ms)
{
    int never = 0;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &never;
    uv_timer_start(&t, on_poll_ready_never, ms, 0);
    while (!never)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

typedef struct two {
    uv_loop_t loop;
    fv_kv_t *kv[3];          /* two "processes", and a raw client */
    fv_bus_t *bus[2];
    char chan[64];           /* unique per run: the Redis server is shared */
} two_t;

static void raw_counter(fv_kv_sub_t *sub, fv_kv_sub_event_t event, fv_slice_t channel,
                        fv_slice_t msg, void *data)
{
    int *c = data;
    if (event == FV_KV_SUB_READY)
        c[1] = 1;
    if (event == FV_KV_SUB_MESSAGE)
        c[0]++;
}

static void on_kv_done(fv_kv_t *kv, int status, const fv_kv_reply_t *r, void *data)
{
    assert_int_equal(status, 0);
    (*(int *)data)++;
}

static int setup_two(void **state)
{
    char url[512];
    if (fv_test_server_url("redis", url, sizeof(url)) < 0) {
        fprintf(stderr, "no redis URL in $FV_TEST_SERVERS/redis.url\n");
        return -1;
    }
    two_t *t = calloc(1, sizeof(*t));
    uv_loop_init(&t->loop);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fv_kv_open(&t->loop, url, NULL, &t->kv[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        fv_bus_opts_t o = {.kv = t->kv[i], .max_event_bytes = 1024};
        assert_int_equal(fv_bus_new(&t->loop, &o, &t->bus[i]), 0);
    }
    assert_int_not_equal(fv_bus_origin(t->bus[0]), fv_bus_origin(t->bus[1]));
    snprintf(t->chan, sizeof(t->chan), "region.test-%d-%u", (int)getpid(), (unsigned)rand());
    wait_ready(&t->loop, t->bus[0], t->bus[1]);
    *state = t;
    return 0;
}

static int teardown_two(void **state)
{
    two_t *t = *state;
    for (int i = 0; i < 2; i++)
        close_bus(&t->loop, t->bus[i]);
    for (int i = 0; i < 3; i++) {
        int closed = 0;
        fv_kv_close(t->kv[i], on_closed, &closed);
        fv_test_run_until(&t->loop, &closed, 1, WAIT_MS);
    }
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
    return 0;
}

static size_t pack_song(uint8_t *buf, size_t cap, const char *player, double power)
{
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    Finalverse__Events__V1__SongPerformed song = FINALVERSE__EVENTS__V1__SONG_PERFORMED__INIT;
    at.x = 100;
    at.y = 50;
    at.z = 200;
    pos.region = "terra-nova";
    pos.at = &at;
    song.player_id = (char *)player;
    song.position = &pos;
    song.melody_type = FINALVERSE__EVENTS__V1__MELODY_TYPE__MELODY_TYPE_RESTORATION;
    song.power = power;
    size_t len = finalverse__events__v1__song_performed__get_packed_size(&song);
    assert_true(len <= cap);
    return finalverse__events__v1__song_performed__pack(&song, buf);
}

typedef struct songs {
    int count;
    char player[8][32];
    double power[8];
    uint64_t origin[8];
} songs_t;

static void on_song(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    songs_t *s = data;
    assert_string_equal(ev->type.ptr, "song.performed");
    Finalverse__Events__V1__SongPerformed *song = finalverse__events__v1__song_performed__unpack(
        NULL, ev->payload.len, (const uint8_t *)ev->payload.ptr);
    assert_non_null(song);
    assert_non_null(song->position);
    assert_string_equal(song->position->region, "terra-nova");
    if (s->count < 8) {
        snprintf(s->player[s->count], 32, "%s", song->player_id);
        s->power[s->count] = song->power;
        s->origin[s->count] = ev->origin;
    }
    s->count++;
    finalverse__events__v1__song_performed__free_unpacked(song, NULL);
}

/* Bus 0 and bus 1 stand for two processes on one Redis. Each publish reaches Redis once
 * (counted by a raw pattern subscriber), the other bus once, and its own bus once (locally,
 * not echoed back from Redis), however many subscribers the receiving bus has. */
static void two_buses_exchange_once(void **state)
{
    two_t *t = *state;
    int raw[2] = {0, 0};
    fv_kv_sub_t *rs;
    /* only this run's channel: other tests publish on the same shared Redis meanwhile */
    char pattern[96];
    snprintf(pattern, sizeof(pattern), "fv.bus.%s", t->chan);
    assert_int_equal(fv_kv_psubscribe(t->kv[2], fv_slice(pattern, strlen(pattern)), raw_counter,
                                      raw, &rs),
                     0);
    fv_test_run_until(&t->loop, &raw[1], 1, WAIT_MS);

    songs_t s0 = {0}, s1a = {0}, s1b = {0}, s1c = {0};
    fv_bus_sub_t *sub[4];
    assert_int_equal(fv_bus_subscribe(t->bus[0], t->chan, NULL, on_song, &s0, &sub[0]), 0);
    assert_int_equal(fv_bus_subscribe(t->bus[1], t->chan, NULL, on_song, &s1a, &sub[1]), 0);
    assert_int_equal(fv_bus_subscribe(t->bus[1], "region.*", NULL, on_song, &s1b, &sub[2]), 0);
    assert_int_equal(fv_bus_subscribe(t->bus[1], t->chan, NULL, on_song, &s1c, &sub[3]), 0);

    uint8_t buf[256];
    size_t len = pack_song(buf, sizeof(buf), "player-a", 7.5);
    assert_int_equal(fv_bus_publish(t->bus[0], t->chan, "song.performed", buf, len, NULL), 0);
    len = pack_song(buf, sizeof(buf), "player-b", 3.0);
    assert_int_equal(fv_bus_publish(t->bus[1], t->chan, "song.performed", buf, len, NULL), 0);
    assert_int_equal(s0.count + s1a.count, 0);

    fv_test_run_until(&t->loop, &s0.count, 2, WAIT_MS);
    fv_test_run_until(&t->loop, &s1c.count, 2, WAIT_MS);
    fv_test_run_until(&t->loop, &raw[0], 2, WAIT_MS);
    sleep_ms(&t->loop, 200);   /* room for an echo or a duplicate to show up */

    assert_int_equal(raw[0], 2);
    songs_t *all[4] = {&s0, &s1a, &s1b, &s1c};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(all[i]->count, 2);
        int a = strcmp(all[i]->player[0], "player-a") == 0 ? 0 : 1;
        assert_string_equal(all[i]->player[a], "player-a");
        assert_string_equal(all[i]->player[1 - a], "player-b");
        assert_true(all[i]->power[a] == 7.5);
        assert_int_equal(all[i]->origin[a], fv_bus_origin(t->bus[0]));
        assert_int_equal(all[i]->origin[1 - a], fv_bus_origin(t->bus[1]));
    }
    for (int i = 0; i < 2; i++) {
        fv_bus_stats_t st;
        fv_bus_stats(t->bus[i], &st);
        assert_true(st.remote && st.remote_ready);
        assert_int_equal(st.published, 1);
        assert_int_equal(st.remote_out, 1);
        assert_int_equal(st.remote_in, 1);
        assert_int_equal(st.remote_bad, 0);
        assert_int_equal(st.remote_send_errors, 0);
    }
    fv_kv_unsubscribe(rs);
    for (int i = 0; i < 4; i++)
        fv_bus_unsubscribe(sub[i]);
}

/* Garbage on fv.bus.* (not protobuf, an Envelope whose channel disagrees with the Redis
 * channel, an empty type, one cut short) is dropped and counted; the bus keeps working. */
static void malformed_envelopes_dropped(void **state)
{
    two_t *t = *state;
    got_t g = {0};
    fv_bus_sub_t *s;
    assert_int_equal(fv_bus_subscribe(t->bus[1], "*", NULL, on_event, &g, &s), 0);

    char rchan[128];
    int n = snprintf(rchan, sizeof(rchan), "fv.bus.%s", t->chan);
    fv_slice_t rc = fv_slice(rchan, (size_t)n);
    int done = 0;
    static const char junk[] = "\xff\xff\xff\xff not protobuf";
    assert_int_equal(fv_kv_publish(t->kv[2], rc, fv_slice(junk, sizeof(junk) - 1), on_kv_done,
                                   &done), 0);

    uint8_t buf[256];
    Finalverse__Events__V1__Envelope env = FINALVERSE__EVENTS__V1__ENVELOPE__INIT;
    env.channel = "region.elsewhere";
    env.type = "x";
    env.origin = 42;
    size_t len = finalverse__events__v1__envelope__pack(&env, buf);
    assert_int_equal(fv_kv_publish(t->kv[2], rc, fv_slice((char *)buf, len), on_kv_done, &done),
                     0);
    env.channel = t->chan;
    env.type = "";
    len = finalverse__events__v1__envelope__pack(&env, buf);
    assert_int_equal(fv_kv_publish(t->kv[2], rc, fv_slice((char *)buf, len), on_kv_done, &done),
                     0);
    /* cut short inside the origin */
    env.type = "weather.changed";
    len = finalverse__events__v1__envelope__pack(&env, buf);
    assert_int_equal(fv_kv_publish(t->kv[2], rc, fv_slice((char *)buf, len - 3), on_kv_done,
                                   &done), 0);
    /* and a good one from a third party, last: when it arrives the bad ones have */
    env.type = "weather.changed";
    len = finalverse__events__v1__envelope__pack(&env, buf);
    assert_int_equal(fv_kv_publish(t->kv[2], rc, fv_slice((char *)buf, len), on_kv_done, &done),
                     0);
    fv_test_run_until(&t->loop, &g.count, 1, WAIT_MS);
    assert_int_equal(g.origin[0], 42);
    assert_string_equal(g.channel[0], t->chan);

    fv_bus_stats_t st;
    fv_bus_stats(t->bus[1], &st);
    assert_int_equal(st.remote_bad, 4);
    assert_int_equal(st.remote_in, 1);
    fv_test_run_until(&t->loop, &done, 5, WAIT_MS);
    fv_bus_unsubscribe(s);
}

/* Over Redis too, one publisher's events arrive in publish order, with its sequence numbers;
 * a coalescing subscriber on the far side keeps the newest per key. */
static void remote_order_and_coalesce(void **state)
{
    two_t *t = *state;
    got_t g = {0}, c = {0};
    fv_bus_sub_t *sg, *sc;
    fv_bus_sub_opts_t co = {.queue_count = 8, .policy = FV_BUS_COALESCE};
    assert_int_equal(fv_bus_subscribe(t->bus[1], t->chan, NULL, on_event, &g, &sg), 0);
    assert_int_equal(fv_bus_subscribe(t->bus[1], "region.*", &co, on_event, &c, &sc), 0);
    for (int i = 0; i < 40; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        assert_int_equal(pub(t->bus[0], t->chan, p, "player.1"), 0);
    }
    fv_test_run_until(&t->loop, &g.count, 40, WAIT_MS);
    assert_int_equal(g.count, 40);
    for (int i = 0; i < 40; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        assert_string_equal(g.payload[i], p);
        assert_int_equal(g.origin[i], fv_bus_origin(t->bus[0]));
        if (i)
            assert_true(g.seq[i] == g.seq[i - 1] + 1);
    }
    /* every event of the same key: the coalescing one saw some, always ending with the last */
    assert_true(c.count >= 1 && c.count <= 40);
    assert_string_equal(c.payload[c.count - 1], "39");
    assert_int_equal((uint64_t)c.count + fv_bus_sub_dropped(sc), 40);
    fv_bus_unsubscribe(sg);
    fv_bus_unsubscribe(sc);
}

/* Redis unreachable: publishes still reach local subscribers; the Redis side fails and is
 * counted; closing waits for the failed publishes' answers and ends cleanly. */
static void redis_down_still_local(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fv_kv_t *kv;
    fv_kv_opts_t ko = {.command_timeout_ms = 500};
    assert_int_equal(fv_kv_open(&loop, "redis://127.0.0.1:1", &ko, &kv, NULL), 0);
    fv_bus_t *bus;
    fv_bus_opts_t o = {.kv = kv};
    assert_int_equal(fv_bus_new(&loop, &o, &bus), 0);
    got_t g = {0};
    fv_bus_sub_t *s;
    assert_int_equal(fv_bus_subscribe(bus, "chat.message", NULL, on_event, &g, &s), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pub(bus, "chat.message", "hello", NULL), 0);
    fv_test_run_until(&loop, &g.count, 3, WAIT_MS);
    fv_bus_stats_t st;
    fv_bus_stats(bus, &st);
    assert_true(st.remote);
    assert_false(st.remote_ready);
    assert_int_equal(st.remote_out, 3);
    for (int i = 0; i < 100 && st.remote_send_errors < 3; i++) {
        sleep_ms(&loop, 50);
        fv_bus_stats(bus, &st);
    }
    assert_int_equal(st.remote_send_errors, 3);
    assert_int_equal(pub(bus, "chat.message", "again", NULL), 0);
    close_bus(&loop, bus);   /* waits for the last publish to fail */
    int closed = 0;
    fv_kv_close(kv, on_closed, &closed);
    fv_test_run_until(&loop, &closed, 1, WAIT_MS);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exact_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(order_and_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(unsubscribe_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(never_drains_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(many_exact_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(event_kept_past_callback, setup, teardown),
        cmocka_unit_test(close_inside_callback),
        cmocka_unit_test(memory_kv_stays_in_process),
        cmocka_unit_test(alloc_failures),
        cmocka_unit_test_setup_teardown(two_buses_exchange_once, setup_two, teardown_two),
        cmocka_unit_test_setup_teardown(malformed_envelopes_dropped, setup_two, teardown_two),
        cmocka_unit_test_setup_teardown(remote_order_and_coalesce, setup_two, teardown_two),
        cmocka_unit_test(redis_down_still_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
