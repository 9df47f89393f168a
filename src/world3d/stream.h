/* stream.h - spatial streaming: what each client sees of the world, sent as it changes
 * (DESIGN.md section 13, "Spatial streaming"; docs/world.md has the client's view).
 *
 * A client follows one entity (its player) and sees the cells of its interest set (interest.h):
 *   cell_enter      {region, cell:{x,y}, tick, <extras: terrain, state>, entities:[...]}
 *                   when a cell comes into view (nearest first, a few a tick);
 *   cell_leave      {region, cell:{x,y}} when it goes out of view (the client forgets the
 *                   entities it placed there);
 *   entities_delta  {tick, seq, dilation, entities:[...], removed:[...], reset:[...]} at most
 *                   once a tick: the entities of its cells that changed since the client's last
 *                   update of each cell. `removed` entries {id, region, x, y} say an entity is no
 *                   longer in that cell; `reset` cells come whole (every entity in them is
 *                   listed; the client drops the others it placed there), which is what a cell
 *                   gets when the client's baseline is older than baseline_ticks (or older than
 *                   the cell's memory of who left).
 *
 * The work is shared per cell: what a cell sends for "changes since tick t" is encoded once a
 * tick and reused by every client at the same t (most clients are one tick behind every cell
 * they see). Each client has a byte budget per second for updates, and one for cell_enter
 * (terrain is bulk, loaded as the client arrives, and must not crowd out updates). Cells owed
 * updates wait in priority order (nearer cells gain priority faster, a waiting cell's priority
 * grows each tick until it is sent), so near entities update every tick, far ones less often,
 * and nothing starves.
 *
 * Pure of I/O: the owner drives fv_stream_tick() and the hooks deliver. Entities are borrowed;
 * the spatial index inside is the owner's "who is near" too. One thread. */
#ifndef FV_WORLD3D_STREAM_H
#define FV_WORLD3D_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "world3d/entity.h"
#include "world3d/interest.h"
#include "world3d/spatial.h"

/* Ceilings: how many entities leave a cell before deltas from earlier ticks need a reset, and
 * how many of a cell's entities one message lists (the rest are "truncated"). */
#define FV_STREAM_CELL_LEAVERS 64
#define FV_STREAM_CELL_MAX_ENTITIES 256

typedef struct fv_stream fv_stream_t;
typedef struct fv_stream_client fv_stream_client_t;

typedef struct fv_stream_opts {
    int view_radius;                /* cells, 0..FV_INTEREST_MAX_RADIUS */
    uint32_t budget_bytes_per_s;    /* per client, for entities_delta; a fifth of a second's
                                       worth may be spent at once */
    uint32_t enter_budget_bytes_per_s;  /* per client, for cell_enter (terrain, state, whole
                                           cells): bulk that a client loads as it arrives;
                                           a second's worth may be spent at once */
    uint32_t max_message_bytes;     /* an entities_delta stops growing past this */
    uint32_t baseline_ticks;        /* an older baseline gets the cell whole */
    uint32_t enters_per_tick;       /* cell_enter messages a client gets in one tick */
} fv_stream_opts_t;

typedef struct fv_stream_hooks {
    void *data;
    /* Appends a cell_enter's extras (`,"terrain":...,"state":...`) to out: 0; FV_EAGAIN when
     * they are not ready this tick (the cell is tried again next tick); other < 0: the cell is
     * entered without them. NULL: no extras. */
    int (*cell_extra)(void *data, int32_t cell, fv_buf_t *out);
    /* Appends an entity's extra members (`,"player_id":"..."`): 0 or < 0. NULL: none. */
    int (*entity_extra)(void *data, const fv_entity_t *e, fv_buf_t *out);
    /* Delivers one message (a JSON object) to a client. */
    void (*send)(void *data, fv_stream_client_t *c, const char *type, const char *json,
                 size_t len);
} fv_stream_hooks_t;

typedef struct fv_stream_stats {
    uint64_t ticks;
    uint64_t messages;
    uint64_t bytes;
    uint64_t cell_enters;
    uint64_t cell_leaves;
    uint64_t deltas;
    uint64_t fragments_encoded;     /* cell encodings made (shared by the clients that used them) */
    uint64_t fragments_used;        /* cell encodings sent (one a client and cell) */
    uint64_t deferred;              /* cells that waited a tick for budget or room */
} fv_stream_stats_t;

/* opts and hooks are copied. Never NULL (allocation failure aborts, as fv_malloc does). */
fv_stream_t *fv_stream_new(const fv_stream_opts_t *opts, const fv_stream_hooks_t *hooks);
/* Frees the stream and its clients (not the entities). NULL-safe. */
void fv_stream_free(fv_stream_t *s);
/* The index of every entity the stream knows: queries only; entities change through the
 * calls below. */
const fv_spatial_t *fv_stream_spatial(const fv_stream_t *s);
/* The tick being assembled (changes made now are sent with it). */
uint64_t fv_stream_tick_number(const fv_stream_t *s);
const fv_stream_stats_t *fv_stream_stats(const fv_stream_t *s);
size_t fv_stream_client_count(const fv_stream_t *s);

/* An entity appeared or changed (position, yaw, velocity, state): it is (re)filed under its
 * cell and sent to those who see it. */
void fv_stream_entity_changed(fv_stream_t *s, fv_entity_t *e);
/* An entity leaves the world: it must be called before e is freed. */
void fv_stream_entity_removed(fv_stream_t *s, fv_entity_t *e);

/* A client that follows viewer (borrowed: free the client before the entity). radius < 0: the
 * stream's view_radius. */
fv_stream_client_t *fv_stream_client_new(fv_stream_t *s, const fv_entity_t *viewer, int radius,
                                         void *data);
void fv_stream_client_free(fv_stream_t *s, fv_stream_client_t *c);
void *fv_stream_client_data(const fv_stream_client_t *c);
/* Everything again: every cell of the set is entered anew on the next ticks. */
void fv_stream_client_resync(fv_stream_client_t *c);
/* The cells the client sees (its interest set). */
const fv_interest_t *fv_stream_client_interest(const fv_stream_client_t *c);

/* One tick: dt_s seconds since the last (refills budgets), dilation the factor the world runs
 * at (1: real time) told to clients. Sends what each client should get, then starts the next
 * tick. */
void fv_stream_tick(fv_stream_t *s, double dt_s, double dilation);

/* What a full snapshot of the client's cells would take this tick (every entity of every cell
 * it sees): the baseline the benchmark compares deltas with. */
size_t fv_stream_snapshot_bytes(fv_stream_t *s, const fv_stream_client_t *c);

#endif
