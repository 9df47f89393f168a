/* kv.h - the key-value store: strings with TTL, counters, compare-and-set, hashes, sorted sets,
 * publish/subscribe. One interface, chosen by URL:
 *
 *   memory:                                   in-process, nothing persisted
 *   memory:?snapshot=./data/kv.snap           in-process, snapshot loaded on open, written
 *   memory:?snapshot=PATH&interval_ms=N       atomically every N ms (when changed) and on close
 *   memory:?max_keys=N                        at most N keys (default 1,000,000): a new key past
 *                                             it is refused with FV_ENOMEM until some expire
 *   redis://[[user]:password@]host[:port][/db]   Redis through hiredis (default port 6379, db 0)
 *
 * Everything is asynchronous on one libuv loop. A request (fv_kv_get() ...) returns 0 when its
 * callback will run exactly once, later, from the loop (never inside the call), also on error
 * or cancellation; or a negative code when the callback will never run (bad input: FV_EINVAL,
 * FV_ETOOBIG; store closing: FV_EUNAVAILABLE). Keys, values, fields, members and messages are
 * binary-safe byte strings, borrowed only for the duration of the call.
 *
 * Callback status: 0, or FV_EBACKEND (server unreachable or went away; the store reconnects by
 * itself), FV_ETIMEDOUT (no answer within command_timeout_ms), FV_ECANCELED (store closed),
 * FV_EINVAL (wrong type of key, value not an integer, result not a number), FV_ECONFLICT
 * (compare-and-set lost), FV_ETOOBIG (a stored value over max_value_bytes). */
#ifndef FV_STORE_KV_H
#define FV_STORE_KV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "core/slice.h"

typedef struct fv_kv fv_kv_t;
typedef struct fv_kv_sub fv_kv_sub_t;

#define FV_KV_DEFAULT_TIMEOUT_MS 2000u
#define FV_KV_DEFAULT_MAX_VALUE (1024u * 1024u)
#define FV_KV_DEFAULT_SNAPSHOT_MS 60000u
/* Keys are names chosen by code, not payloads: a fixed ceiling keeps them out of the value
 * budget. */
#define FV_KV_MAX_KEY_BYTES 65536u
/* memory: keys held at most, unless the URL says max_keys=N */
#define FV_KV_DEFAULT_MAX_KEYS 1000000u

typedef struct fv_kv_opts {
    uint32_t command_timeout_ms;   /* 0: FV_KV_DEFAULT_TIMEOUT_MS (redis) */
    size_t max_value_bytes;        /* 0: FV_KV_DEFAULT_MAX_VALUE; values, fields, members,
                                      messages over it are refused with FV_ETOOBIG */
    const char *snapshot_path;     /* memory: NULL = none; the URL's ?snapshot= wins */
    uint32_t snapshot_interval_ms; /* memory: 0: FV_KV_DEFAULT_SNAPSHOT_MS */
} fv_kv_opts_t;

typedef enum fv_kv_reply_type {
    FV_KV_NIL = 0,     /* missing key / field / member */
    FV_KV_INT,         /* integer */
    FV_KV_STR,         /* str */
    FV_KV_SCORE,       /* score (a sorted-set score) */
    FV_KV_ARRAY,       /* elems[0..count) */
} fv_kv_reply_type_t;

/* One array element: hgetall gives (str = field, val = value); zrange gives (str = member,
 * score). */
typedef struct fv_kv_elem {
    fv_slice_t str;
    fv_slice_t val;
    double score;
} fv_kv_elem_t;

/* Valid only during the callback; copy what you keep. */
typedef struct fv_kv_reply {
    fv_kv_reply_type_t type;
    int64_t integer;
    double score;
    fv_slice_t str;
    const fv_kv_elem_t *elems;
    size_t count;
} fv_kv_reply_t;

/* reply is NULL when status < 0. */
typedef void (*fv_kv_cb)(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data);
typedef void (*fv_kv_close_cb)(void *data);

/* Parses url, opens the backend (a memory snapshot is loaded here, synchronously) and returns
 * the handle in *out. opts may be NULL (defaults). Redis connects in the background: open
 * succeeds while the server is down and requests fail with FV_EBACKEND until it answers.
 * Returns 0, or FV_EINVAL / FV_ECONFIG with a sentence in err (bad URL, unreadable or corrupt
 * snapshot). */
FV_MUST_USE int fv_kv_open(uv_loop_t *loop, const char *url, const fv_kv_opts_t *opts,
                           fv_kv_t **out, fv_error_t *err);

/* Closes the handle: pending requests get FV_ECANCELED, subscriptions end (their memory goes
 * with the handle), a memory snapshot is written, then cb (may be NULL) runs from the loop and
 * the handle's memory is gone. Requests made after this return FV_EUNAVAILABLE. Only the first
 * call counts. */
void fv_kv_close(fv_kv_t *kv, fv_kv_close_cb cb, void *data);

/* "memory" or "redis". */
const char *fv_kv_backend_name(const fv_kv_t *kv);

/* Set flags. */
#define FV_KV_NX 1u    /* only if the key does not exist */
#define FV_KV_XX 2u    /* only if the key exists */

/* Reply: STR, or NIL. */
FV_MUST_USE int fv_kv_get(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data);
/* ttl_ms 0 = no expiry (a previous one is cleared). Reply: INT 1 stored, 0 not stored (NX/XX
 * condition false). NX with XX is FV_EINVAL. */
FV_MUST_USE int fv_kv_set(fv_kv_t *kv, fv_slice_t key, fv_slice_t val, uint64_t ttl_ms,
                          unsigned flags, fv_kv_cb cb, void *data);
/* Reply: INT number of keys removed (0 or 1). Any type of key. */
FV_MUST_USE int fv_kv_del(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data);
/* A missing key counts as 0; the TTL is kept. Reply: INT the new value. FV_EINVAL in the
 * callback when the value is not a decimal int64 or the result would overflow. */
FV_MUST_USE int fv_kv_incrby(fv_kv_t *kv, fv_slice_t key, int64_t delta, fv_kv_cb cb,
                             void *data);
/* Atomically: if the key's value equals expected (expected.ptr == NULL: if the key does not
 * exist), store val with ttl_ms (0 = none). Reply: INT 1; a lost comparison is status
 * FV_ECONFLICT. On Redis this is a Lua script (EVALSHA, EVAL when the script cache is empty). */
FV_MUST_USE int fv_kv_cas(fv_kv_t *kv, fv_slice_t key, fv_slice_t expected, fv_slice_t val,
                          uint64_t ttl_ms, fv_kv_cb cb, void *data);
/* A token bucket at key: takes `cost` tokens when the bucket holds that many. The bucket holds
 * at most `burst` tokens and refills at `rate` tokens a second; a missing one is full. One
 * atomic step for every client of the store: on Redis a Lua script (EVALSHA, EVAL when the
 * script cache is empty) on the server's clock, so gateways on several machines share one
 * limit in one round trip. The key expires once the bucket would be full again. `unless`
 * (empty: none) names a key whose existence refuses the request outright (a revoked token),
 * checked in the same step. Reply: NIL: `unless` exists, nothing taken; INT >= 0: taken, the
 * whole tokens left; < 0: refused, -(1 + milliseconds until `cost` tokens are there).
 * FV_EINVAL: rate not in (0, 1e9], burst not in 1..1e9, cost not in 0..burst. */
FV_MUST_USE int fv_kv_take(fv_kv_t *kv, fv_slice_t key, fv_slice_t unless, double rate,
                           int64_t burst, int64_t cost, fv_kv_cb cb, void *data);
/* fv_kv_take answered within the call when the store lives in this process (memory:) and no
 * request is queued ahead of it: 0 with *reply set as fv_kv_take's (NIL or INT); FV_EAGAIN
 * when the store answers only later (Redis, or requests waiting): call fv_kv_take. Spares a
 * hot path (a gateway takes on every request) the deferred turn and its allocations. */
FV_MUST_USE int fv_kv_take_now(fv_kv_t *kv, fv_slice_t key, fv_slice_t unless, double rate,
                               int64_t burst, int64_t cost, fv_kv_reply_t *reply);
/* ttl_ms > 0. Reply: INT 1 set, 0 no such key. */
FV_MUST_USE int fv_kv_expire(fv_kv_t *kv, fv_slice_t key, uint64_t ttl_ms, fv_kv_cb cb,
                             void *data);
/* Reply: INT milliseconds left, -1 no expiry, -2 no such key (Redis's PTTL). */
FV_MUST_USE int fv_kv_ttl(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data);

/* Hashes. hset reply: INT 1 new field, 0 replaced. hget: STR or NIL. hgetall: ARRAY of
 * (field, value) in no particular order, empty for a missing key. hdel: INT 0 or 1; a hash
 * whose last field goes is deleted. */
FV_MUST_USE int fv_kv_hset(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_slice_t val,
                           fv_kv_cb cb, void *data);
FV_MUST_USE int fv_kv_hget(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_kv_cb cb,
                           void *data);
FV_MUST_USE int fv_kv_hgetall(fv_kv_t *kv, fv_slice_t key, fv_kv_cb cb, void *data);
FV_MUST_USE int fv_kv_hdel(fv_kv_t *kv, fv_slice_t key, fv_slice_t field, fv_kv_cb cb,
                           void *data);

/* Sorted sets, ordered by (score, member bytes) like Redis; scores must be finite
 * (FV_EINVAL). zadd reply: INT 1 new member, 0 score updated. zincrby: SCORE the new score.
 * zscore: SCORE or NIL. zrem: INT 0 or 1. */
FV_MUST_USE int fv_kv_zadd(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, double score,
                           fv_kv_cb cb, void *data);
FV_MUST_USE int fv_kv_zincrby(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, double delta,
                              fv_kv_cb cb, void *data);
FV_MUST_USE int fv_kv_zscore(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, fv_kv_cb cb,
                             void *data);
FV_MUST_USE int fv_kv_zrem(fv_kv_t *kv, fv_slice_t key, fv_slice_t member, fv_kv_cb cb,
                           void *data);
#define FV_KV_REV 1u   /* zrange: highest score first (leaderboards) */
/* Ranks start..stop inclusive, negative counting from the end (-1 = last), as Redis's ZRANGE.
 * Reply: ARRAY of (member, score). */
FV_MUST_USE int fv_kv_zrange(fv_kv_t *kv, fv_slice_t key, int64_t start, int64_t stop,
                             unsigned flags, fv_kv_cb cb, void *data);

/* Reply: INT receivers (memory: matching subscriptions; redis: subscribed connections). */
FV_MUST_USE int fv_kv_publish(fv_kv_t *kv, fv_slice_t channel, fv_slice_t message,
                              fv_kv_cb cb, void *data);

typedef enum fv_kv_sub_event {
    FV_KV_SUB_MESSAGE = 0,  /* channel, message */
    FV_KV_SUB_READY,        /* the server confirmed the subscription (again, after a
                               reconnect); messages published from now on arrive */
    FV_KV_SUB_LOST,         /* the connection dropped; messages are missed until READY */
} fv_kv_sub_event_t;

/* Runs from the loop for each event, never inside fv_kv_subscribe()/fv_kv_publish(). channel
 * and message are valid during the call. */
typedef void (*fv_kv_message_cb)(fv_kv_sub_t *sub, fv_kv_sub_event_t event, fv_slice_t channel,
                                 fv_slice_t message, void *data);

/* Subscribes to one channel (psubscribe: a glob pattern, * ? [a-z] \x) until
 * fv_kv_unsubscribe() or fv_kv_close(). Messages of one publisher arrive in publish order.
 * Returns 0 and *out, FV_ETOOBIG / FV_EINVAL for a bad name, FV_EUNAVAILABLE when closing. */
FV_MUST_USE int fv_kv_subscribe(fv_kv_t *kv, fv_slice_t channel, fv_kv_message_cb cb,
                                void *data, fv_kv_sub_t **out);
FV_MUST_USE int fv_kv_psubscribe(fv_kv_t *kv, fv_slice_t pattern, fv_kv_message_cb cb,
                                 void *data, fv_kv_sub_t **out);
/* No callback runs for sub after this returns (also when called from its own callback); its
 * memory is released by the store. NULL-safe. */
void fv_kv_unsubscribe(fv_kv_sub_t *sub);

#endif
