/* defer.h - a queue of callbacks to run on a later loop turn, so a request's answer never runs
 * inside the call that started it. Entries are intrusive (embedded in the caller's request), the
 * queue is driven by one libuv handle. It does not own entries, allocate, or cancel anything:
 * deciding what "canceled" means is the caller's business. */
#ifndef FV_CORE_DEFER_H
#define FV_CORE_DEFER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct fv_defer fv_defer_t;
typedef struct fv_defer_queue fv_defer_queue_t;

/* Runs once per push, from the loop. The entry is off the queue by then: the callback may free
 * it, or push it again (it then runs on a later turn). */
typedef void (*fv_defer_cb)(fv_defer_t *d);
/* Runs from the loop: after each turn's batch (turn_done), or once the queue's handle is closed
 * (closed; the queue's memory may be freed from here). */
typedef void (*fv_defer_queue_cb)(fv_defer_queue_t *q);

/* Embed in the caller's struct and recover the container from the callback's pointer. The
 * fields are private; an entry is on at most one queue at a time. */
struct fv_defer {
    fv_defer_t *next;
    fv_defer_cb cb;
};

/* The struct of the given type whose member `member` is the entry d (pointer arithmetic only). */
#define FV_DEFER_OWNER(d, type, member) ((type *)((char *)(d) - offsetof(type, member)))

/* Caller's storage; fields are private. `data` is the caller's. */
struct fv_defer_queue {
    void *data;
    uv_idle_t idle;
    fv_defer_t *head, *tail;
    size_t count;
    fv_defer_queue_cb turn_done;
    fv_defer_queue_cb closed;
    bool kicked;
    bool closing;
    bool close_started;
};

/* Sets up q on loop. turn_done (may be NULL) runs after every turn's batch, also after a turn
 * that fv_defer_queue_kick() started with nothing queued; stores use it to finish their close.
 * Returns 0 or a negative libuv code. Once it returned 0, q must be closed with
 * fv_defer_queue_close() before its memory goes. */
int fv_defer_queue_init(uv_loop_t *loop, fv_defer_queue_t *q, fv_defer_queue_cb turn_done);

/* Queues d; cb(d) runs on a later loop turn, never inside this call. Entries run in push order.
 * A turn runs only what was queued when it started: what its callbacks push runs on the next
 * turn, so a caller that retries from its callback cannot starve I/O. d must stay valid and
 * untouched until cb runs. Pushing after `closed` has run is a bug. */
void fv_defer_push(fv_defer_queue_t *q, fv_defer_t *d, fv_defer_cb cb);

/* Makes the queue run a turn (and so turn_done) soon even when nothing is queued. */
void fv_defer_queue_kick(fv_defer_queue_t *q);

/* Starts closing q; later calls are ignored. Entries still queued, and what their callbacks
 * push, still run (in order, on later turns); once the queue is empty its handle is closed and
 * closed(q) (may be NULL) runs from the loop, never inside this call. turn_done no longer runs
 * once the handle is closing. */
void fv_defer_queue_close(fv_defer_queue_t *q, fv_defer_queue_cb closed);

/* Entries queued and not yet run (those of a turn in progress are no longer counted). */
size_t fv_defer_queue_pending(const fv_defer_queue_t *q);
bool fv_defer_queue_empty(const fv_defer_queue_t *q);
/* True once fv_defer_queue_close() was called. */
bool fv_defer_queue_closing(const fv_defer_queue_t *q);

#endif
