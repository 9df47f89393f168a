/* defer.c - the deferred-callback queue: a FIFO of intrusive entries drained once per loop turn
 * by one uv_idle, and its close. It knows nothing of what the entries mean. */
#include "core/defer.h"

#include <assert.h>
#include <string.h>

/* Why uv_idle and not a zero-delay uv_timer: libuv before 1.45 runs a timer that is restarted
 * with timeout 0 from inside the timers phase again in that same phase, so a callback that keeps
 * pushing would never let the loop poll. An active idle handle runs once per iteration, after
 * timers and before a poll with zero timeout, which is exactly "the next turn". */

static void on_idle_closed(uv_handle_t *h)
{
    fv_defer_queue_t *q = h->data;
    if (q->closed)
        q->closed(q);      /* last use of q: its owner may free it here */
}

static void start_close(fv_defer_queue_t *q)
{
    q->close_started = true;
    uv_close((uv_handle_t *)&q->idle, on_idle_closed);
}

static void on_idle(uv_idle_t *h)
{
    fv_defer_queue_t *q = h->data;
    /* Take the whole list first: what the callbacks push goes to a fresh list for next turn. */
    fv_defer_t *d = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    q->kicked = false;
    while (d) {
        fv_defer_t *next = d->next;     /* read first: the callback may free or re-push d */
        d->next = NULL;
        d->cb(d);
        d = next;
    }
    if (q->close_started)
        return;
    if (q->turn_done)
        q->turn_done(q);                /* may push, kick or close */
    if (q->close_started || q->head || q->kicked)
        return;
    if (q->closing)
        start_close(q);
    else
        uv_idle_stop(&q->idle);
}

int fv_defer_queue_init(uv_loop_t *loop, fv_defer_queue_t *q, fv_defer_queue_cb turn_done)
{
    memset(q, 0, sizeof(*q));
    q->turn_done = turn_done;
    int rc = uv_idle_init(loop, &q->idle);
    if (rc < 0)
        return rc;
    q->idle.data = q;
    return 0;
}

void fv_defer_push(fv_defer_queue_t *q, fv_defer_t *d, fv_defer_cb cb)
{
    assert(!q->close_started);
    d->next = NULL;
    d->cb = cb;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
    q->count++;
    uv_idle_start(&q->idle, on_idle);   /* no-op when already active */
}

void fv_defer_queue_kick(fv_defer_queue_t *q)
{
    if (q->close_started)
        return;
    q->kicked = true;
    uv_idle_start(&q->idle, on_idle);
}

void fv_defer_queue_close(fv_defer_queue_t *q, fv_defer_queue_cb closed)
{
    if (q->closing)
        return;
    q->closing = true;
    q->closed = closed;
    /* Active means a turn is due (or running, when called from a callback): it ends the close.
     * uv_close() runs its callback from the loop, so even an idle queue never calls back here. */
    if (!uv_is_active((uv_handle_t *)&q->idle))
        start_close(q);
}

size_t fv_defer_queue_pending(const fv_defer_queue_t *q)
{
    return q->count;
}

bool fv_defer_queue_empty(const fv_defer_queue_t *q)
{
    return q->head == NULL;
}

bool fv_defer_queue_closing(const fv_defer_queue_t *q)
{
    return q->closing;
}
