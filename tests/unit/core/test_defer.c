/* test_defer.c - fv_defer_queue_t alone: push order, nothing runs inside push, what a callback
 * pushes waits for the next loop turn (and cannot starve a timer), kick and turn_done, close
 * with entries pending and on an empty queue, and a loop that closes cleanly afterwards. Every
 * run is bounded by an unreferenced watchdog timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <uv.h>

#include "core/defer.h"

#define WATCHDOG_MS 5000

typedef struct item {
    fv_defer_t d;
    struct fix *fix;
    int id;
    int repush;            /* push itself again this many times */
} item_t;

typedef struct fix {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_prepare_t prepare;  /* counts loop iterations */
    fv_defer_queue_t q;
    int iterations;
    int fired;
    int order[16];
    int norder;
    int seen_iter[16];
    int turns;             /* turn_done calls */
    int closed;
    int close_in_turn;     /* close the queue from turn_done */
    int timer_fired;
    item_t items[8];
} fix_t;

static void on_watchdog(uv_timer_t *t)
{
    fix_t *f = t->data;
    f->fired = 1;
    uv_stop(&f->loop);
}

static void on_prepare(uv_prepare_t *p)
{
    fix_t *f = p->data;
    f->iterations++;
}

static void on_turn(fv_defer_queue_t *q)
{
    fix_t *f = q->data;
    f->turns++;
    if (f->close_in_turn)
        fv_defer_queue_close(q, NULL);
}

static void fix_init(fix_t *f, fv_defer_queue_cb turn_done)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&f->watchdog);       /* the loop ends when the work does */
    uv_prepare_init(&f->loop, &f->prepare);
    f->prepare.data = f;
    uv_prepare_start(&f->prepare, on_prepare);
    uv_unref((uv_handle_t *)&f->prepare);
    assert_int_equal(fv_defer_queue_init(&f->loop, &f->q, turn_done), 0);
    f->q.data = f;
    for (int i = 0; i < 8; i++) {
        f->items[i].fix = f;
        f->items[i].id = i;
    }
}

static void run(fix_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->fired);
}

/* The queue must already be closed. Everything goes and the loop has nothing left. */
static void fix_dispose(fix_t *f)
{
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->prepare, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_item(fv_defer_t *d)
{
    item_t *it = (item_t *)d;
    fix_t *f = it->fix;
    assert_false(f->closed);
    assert_true(f->norder < 16);
    f->seen_iter[f->norder] = f->iterations;
    f->order[f->norder++] = it->id;
    if (it->repush > 0) {
        it->repush--;
        fv_defer_push(&f->q, &it->d, on_item);
    }
}

static void on_closed(fv_defer_queue_t *q)
{
    fix_t *f = q->data;
    f->closed++;
}

static void runs_in_order_never_inside_push(void **state)
{
    fix_t f;
    fix_init(&f, NULL);
    for (int i = 0; i < 3; i++)
        fv_defer_push(&f.q, &f.items[i].d, on_item);
    assert_int_equal(f.norder, 0);
    assert_int_equal(fv_defer_queue_pending(&f.q), 3);
    assert_false(fv_defer_queue_empty(&f.q));
    run(&f);
    assert_int_equal(f.norder, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.order[i], i);
    assert_true(fv_defer_queue_empty(&f.q));
    assert_int_equal(fv_defer_queue_pending(&f.q), 0);
    fv_defer_queue_close(&f.q, on_closed);
    assert_int_equal(f.closed, 0);               /* never inside the call */
    run(&f);
    assert_int_equal(f.closed, 1);
    fix_dispose(&f);
}

static void pushed_from_callback_runs_next_turn(void **state)
{
    fix_t f;
    fix_init(&f, NULL);
    f.items[0].repush = 2;
    fv_defer_push(&f.q, &f.items[0].d, on_item);
    fv_defer_push(&f.q, &f.items[1].d, on_item);
    run(&f);
    /* 0 and 1 in the first turn; 0's re-pushes each on a later loop iteration. */
    assert_int_equal(f.norder, 4);
    int want[4] = {0, 1, 0, 0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(f.order[i], want[i]);
    assert_int_equal(f.seen_iter[0], f.seen_iter[1]);
    assert_true(f.seen_iter[2] > f.seen_iter[1]);
    assert_true(f.seen_iter[3] > f.seen_iter[2]);
    fv_defer_queue_close(&f.q, on_closed);
    run(&f);
    assert_int_equal(f.closed, 1);
    fix_dispose(&f);
}

/* An entry that re-pushes itself until a timer fires: the timer must get its turn. */
static void on_timer(uv_timer_t *t)
{
    fix_t *f = t->data;
    f->timer_fired = 1;
    uv_close((uv_handle_t *)t, NULL);
}

static void on_retry(fv_defer_t *d)
{
    item_t *it = (item_t *)d;
    fix_t *f = it->fix;
    f->norder = 1;
    if (!f->timer_fired && !f->fired)
        fv_defer_push(&f->q, d, on_retry);
}

static void retrying_callback_cannot_starve_the_loop(void **state)
{
    fix_t f;
    uv_timer_t t;
    fix_init(&f, NULL);
    uv_timer_init(&f.loop, &t);
    t.data = &f;
    uv_timer_start(&t, on_timer, 1, 0);
    fv_defer_push(&f.q, &f.items[0].d, on_retry);
    run(&f);
    assert_true(f.timer_fired);
    fv_defer_queue_close(&f.q, on_closed);
    run(&f);
    assert_int_equal(f.closed, 1);
    fix_dispose(&f);
}

static void close_runs_pending_entries_first(void **state)
{
    fix_t f;
    fix_init(&f, NULL);
    f.items[2].repush = 1;      /* pushes again after close: still runs before closed */
    for (int i = 0; i < 3; i++)
        fv_defer_push(&f.q, &f.items[i].d, on_item);
    fv_defer_queue_close(&f.q, on_closed);
    fv_defer_queue_close(&f.q, on_closed);      /* ignored */
    assert_true(fv_defer_queue_closing(&f.q));
    assert_int_equal(f.norder, 0);
    assert_int_equal(f.closed, 0);
    run(&f);
    assert_int_equal(f.norder, 4);              /* on_item asserts closed had not run */
    assert_int_equal(f.order[3], 2);
    assert_int_equal(f.closed, 1);
    fix_dispose(&f);
}

static void close_empty_queue(void **state)
{
    fix_t f;
    fix_init(&f, NULL);
    fv_defer_queue_close(&f.q, on_closed);
    assert_int_equal(f.closed, 0);
    run(&f);
    assert_int_equal(f.closed, 1);
    fix_dispose(&f);
}

static void kick_runs_turn_done_which_may_close(void **state)
{
    fix_t f;
    fix_init(&f, on_turn);
    fv_defer_queue_kick(&f.q);
    assert_int_equal(f.turns, 0);
    run(&f);
    assert_int_equal(f.turns, 1);               /* one turn, then the handle stops */
    fv_defer_push(&f.q, &f.items[0].d, on_item);
    run(&f);
    assert_int_equal(f.turns, 2);
    assert_int_equal(f.norder, 1);
    f.close_in_turn = 1;
    f.q.closed = NULL;
    fv_defer_push(&f.q, &f.items[1].d, on_item);
    run(&f);
    assert_int_equal(f.turns, 3);
    assert_true(fv_defer_queue_closing(&f.q));
    assert_int_equal(f.norder, 2);
    fix_dispose(&f);                            /* uv_loop_close proves the handle closed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_in_order_never_inside_push),
        cmocka_unit_test(pushed_from_callback_runs_next_turn),
        cmocka_unit_test(retrying_callback_cannot_starve_the_loop),
        cmocka_unit_test(close_runs_pending_entries_first),
        cmocka_unit_test(close_empty_queue),
        cmocka_unit_test(kick_runs_turn_done_which_may_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
