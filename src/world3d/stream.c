/* stream.c - spatial streaming (stream.h).
 *
 * Every world cell keeps the tick of its last change (version) and a ring of the entities
 * that left it. A client keeps, for each cell it sees, the tick it was last brought up to
 * (have; 0: not entered yet) and a priority. A cell whose version is past the client's have is
 * owed a fragment "changes since have": the entities whose changed_tick is later, and the
 * leavers of the ring after it. Fragments are cached per cell for the tick they are made in,
 * keyed by `since`, so clients at the same baseline share one encoding. */
#include "world3d/stream.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

/* Distinct baselines a cell encodes for in one tick before it stops caching (encoding more is
 * still correct, just not shared). */
#define FRAGS_PER_CELL 4
/* Updates may be sent a fifth of a second's budget at once (two ticks' worth at 10 Hz): a
 * whole second's worth for every client at once would make one tick five times the others. */
#define UPDATE_BURST_DIV 5.0
/* `since` key of a whole-cell fragment. */
#define SINCE_RESET UINT64_MAX

typedef struct frag {
    uint64_t since;
    uint32_t nents;
    bool truncated;
    fv_buf_t ents;              /* entity objects, comma-separated */
    fv_buf_t removed;           /* {id, region, x, y} objects, comma-separated */
} frag_t;

typedef struct leaver {
    uint64_t id;
    uint64_t tick;
} leaver_t;

typedef struct cell {
    uint64_t floor;             /* a leaver of this tick was forgotten: since < floor is reset */
    leaver_t left[FV_STREAM_CELL_LEAVERS];
    uint32_t left_head;
    uint32_t left_count;
    uint64_t frag_tick;         /* the tick frags[] were made in */
    uint32_t nfrags;
    frag_t frags[FRAGS_PER_CELL];
} cell_t;

struct fv_stream_client {
    fv_stream_client_t *prev, *next;
    const fv_entity_t *viewer;
    void *data;
    double tokens;              /* entities_delta budget */
    double enter_tokens;        /* cell_enter budget (terrain is bulk, updates are not) */
    uint64_t seq;
    bool resync;
    fv_interest_t in;
    uint64_t have[FV_INTEREST_MAX_CELLS];
    float prio[FV_INTEREST_MAX_CELLS];
    float gain[FV_INTEREST_MAX_CELLS];      /* priority a waiting cell gains a tick */
};

struct fv_stream {
    fv_stream_opts_t opts;
    fv_stream_hooks_t hooks;
    uint64_t tick;              /* the tick being assembled, from 1 */
    fv_spatial_t spatial;
    cell_t cells[FV_WORLD_CELLS];
    /* per cell, the tick of its last change (0: never): apart from cells[], which are large,
     * since every client reads this for every cell it sees every tick */
    uint64_t version[FV_WORLD_CELLS];
    fv_stream_client_t *clients;
    size_t nclients;
    fv_stream_stats_t stats;
    fv_buf_t arena;             /* this tick's entity encodings (entity.h enc_*) */
    uint64_t arena_tick;
    /* scratch of one client's tick */
    fv_buf_t msg;
    fv_buf_t one;               /* an uncached fragment, or a cell_enter */
    int32_t entered[FV_INTEREST_MAX_CELLS];
    int32_t left[FV_INTEREST_MAX_CELLS];
    int32_t old_cells[FV_INTEREST_MAX_CELLS];
    uint64_t old_have[FV_INTEREST_MAX_CELLS];
    float old_prio[FV_INTEREST_MAX_CELLS];
    uint32_t order[FV_INTEREST_MAX_CELLS];
    const frag_t *chosen[FV_INTEREST_MAX_CELLS];
    uint32_t chosen_at[FV_INTEREST_MAX_CELLS];
};

/* ---- the stream and its entities ---- */

fv_stream_t *fv_stream_new(const fv_stream_opts_t *opts, const fv_stream_hooks_t *hooks)
{
    fv_stream_t *s = fv_calloc(1, sizeof(*s));
    s->opts = *opts;
    if (s->opts.view_radius < 0)
        s->opts.view_radius = 0;
    if (s->opts.view_radius > FV_INTEREST_MAX_RADIUS)
        s->opts.view_radius = FV_INTEREST_MAX_RADIUS;
    if (s->opts.enters_per_tick == 0)
        s->opts.enters_per_tick = 1;
    if (s->opts.max_message_bytes < 1024)
        s->opts.max_message_bytes = 1024;
    s->hooks = *hooks;
    s->tick = 1;
    fv_spatial_init(&s->spatial);
    fv_buf_init(&s->msg, 0);
    fv_buf_init(&s->one, 0);
    fv_buf_init(&s->arena, 0);
    return s;
}

void fv_stream_free(fv_stream_t *s)
{
    if (!s)
        return;
    while (s->clients)
        fv_stream_client_free(s, s->clients);
    for (size_t i = 0; i < FV_WORLD_CELLS; i++) {
        for (uint32_t k = 0; k < FRAGS_PER_CELL; k++) {
            fv_buf_dispose(&s->cells[i].frags[k].ents);
            fv_buf_dispose(&s->cells[i].frags[k].removed);
        }
    }
    fv_buf_dispose(&s->msg);
    fv_buf_dispose(&s->one);
    fv_buf_dispose(&s->arena);
    fv_spatial_dispose(&s->spatial);
    fv_free(s);
}

const fv_spatial_t *fv_stream_spatial(const fv_stream_t *s)
{
    return &s->spatial;
}

uint64_t fv_stream_tick_number(const fv_stream_t *s)
{
    return s->tick;
}

const fv_stream_stats_t *fv_stream_stats(const fv_stream_t *s)
{
    return &s->stats;
}

size_t fv_stream_client_count(const fv_stream_t *s)
{
    return s->nclients;
}

/* Encodings made this tick no longer hold for the cell (only fv_stream_snapshot_bytes()
 * encodes between ticks). */
static void cell_touched(fv_stream_t *s, int32_t ci)
{
    s->version[ci] = s->tick;
    s->cells[ci].frag_tick = 0;
}

static void cell_left(fv_stream_t *s, int32_t ci, uint64_t id)
{
    cell_t *c = &s->cells[ci];
    if (c->left_count == FV_STREAM_CELL_LEAVERS) {
        /* forgetting this one: a delta from before it can no longer name every leaver */
        leaver_t *old = &c->left[c->left_head];
        if (old->tick > c->floor)
            c->floor = old->tick;
        c->left_head = (c->left_head + 1) % FV_STREAM_CELL_LEAVERS;
        c->left_count--;
    }
    c->left[(c->left_head + c->left_count) % FV_STREAM_CELL_LEAVERS] = (leaver_t){id, s->tick};
    c->left_count++;
    cell_touched(s, ci);
}

void fv_stream_entity_changed(fv_stream_t *s, fv_entity_t *e)
{
    int32_t was = fv_spatial_place(&s->spatial, e);
    int32_t now = fv_spatial_cell_of(e);
    if (was >= 0 && was != now)
        cell_left(s, was, e->id);
    if (now >= 0)
        cell_touched(s, now);
    e->enc_tick = 0;
    e->changed_tick = s->tick;
    fv_spatial_stamp(&s->spatial, e, s->tick);
}

void fv_stream_entity_removed(fv_stream_t *s, fv_entity_t *e)
{
    int32_t was = fv_spatial_remove(&s->spatial, e);
    if (was >= 0)
        cell_left(s, was, e->id);
}

/* ---- clients ---- */

fv_stream_client_t *fv_stream_client_new(fv_stream_t *s, const fv_entity_t *viewer, int radius,
                                         void *data)
{
    fv_stream_client_t *c = fv_malloc(sizeof(*c));
    memset(c, 0, offsetof(fv_stream_client_t, in));
    c->viewer = viewer;
    c->data = data;
    c->tokens = s->opts.budget_bytes_per_s / UPDATE_BURST_DIV;
    c->enter_tokens = s->opts.enter_budget_bytes_per_s;
    fv_interest_init(&c->in, radius < 0 ? s->opts.view_radius : radius);
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    return c;
}

void fv_stream_client_free(fv_stream_t *s, fv_stream_client_t *c)
{
    if (!c)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclients--;
    fv_free(c);
}

void *fv_stream_client_data(const fv_stream_client_t *c)
{
    return c->data;
}

void fv_stream_client_resync(fv_stream_client_t *c)
{
    c->resync = true;
}

const fv_interest_t *fv_stream_client_interest(const fv_stream_client_t *c)
{
    return &c->in;
}

/* ---- encoding ---- */

static const char *kind_name(fv_entity_kind_t k)
{
    switch (k) {
    case FV_ENTITY_PLAYER:
        return "player";
    case FV_ENTITY_ECHO:
        return "echo";
    case FV_ENTITY_CREATURE:
        return "creature";
    case FV_ENTITY_OBJECT:
        return "object";
    }
    return "unknown";
}

/* Quantized: centimetres, centimetres a second, milliradians. A value past what an int holds
 * (not reachable for a placed entity) is clamped. */
static long quant(double v, double scale)
{
    double q = nearbyint(v * scale);
    if (!(q > -2e9))
        return -2000000000L;
    if (q > 2e9)
        return 2000000000L;
    return (long)q;
}

/* Writes a signed integer at p: how many characters. */
static size_t fmt_long(char *p, long v)
{
    if (v < 0) {
        *p = '-';
        return 1 + fv_fmt_u64(p + 1, (uint64_t)(-(v + 1)) + 1);
    }
    return fv_fmt_u64(p, (uint64_t)v);
}

/* One entity's object. Formatted by hand: this runs for every changed entity every tick, where
 * printf's format parsing was a fifth of the tick. */
static int encode_entity(fv_stream_t *s, const fv_entity_t *e, fv_buf_t *out)
{
    const char *kind = kind_name(e->kind), *region = fv_region_at(e->region)->id;
    size_t kl = strlen(kind), rl = strlen(region);
    /* the fixed text and 8 numbers of at most 20 characters */
    if (fv_buf_reserve(out, 96 + kl + rl + 8 * 21) < 0)
        return FV_ENOMEM;
    char *p = out->ptr + out->len, *start = p;
#define LIT(str) (memcpy(p, str, sizeof(str) - 1), p += sizeof(str) - 1)
    LIT("{\"id\":");
    p += fv_fmt_u64(p, e->id);
    LIT(",\"kind\":\"");
    memcpy(p, kind, kl), p += kl;
    LIT("\",\"region\":\"");
    memcpy(p, region, rl), p += rl;
    LIT("\",\"pos\":[");
    p += fmt_long(p, quant(e->x, 100));
    *p++ = ',';
    p += fmt_long(p, quant(e->y, 100));
    *p++ = ',';
    p += fmt_long(p, quant(e->z, 100));
    LIT("],\"yaw\":");
    p += fmt_long(p, quant(e->yaw, 1000));
    LIT(",\"vel\":[");
    p += fmt_long(p, quant(e->vx, 100));
    *p++ = ',';
    p += fmt_long(p, quant(e->vy, 100));
    *p++ = ',';
    p += fmt_long(p, quant(e->vz, 100));
    LIT("],\"state\":");
    p += fv_fmt_u64(p, e->state);
#undef LIT
    out->len += (size_t)(p - start);
    out->ptr[out->len] = '\0';
    int rc = 0;
    if (s->hooks.entity_extra)
        rc = s->hooks.entity_extra(s->hooks.data, e, out);
    if (rc == 0)
        rc = fv_buf_append(out, "}", 1);
    return rc;
}

/* Appends e's object (comma-led after the first): encoded once a tick into the arena, then
 * copied, since an entity goes into many cells' fragments (one per baseline). */
static int put_entity(fv_stream_t *s, fv_entity_t *e, fv_buf_t *out)
{
    if (s->arena_tick != s->tick) {
        s->arena_tick = s->tick;
        fv_buf_reset(&s->arena);
    }
    if (e->enc_tick != s->tick) {
        size_t off = s->arena.len;
        int rc = encode_entity(s, e, &s->arena);
        if (rc < 0 || s->arena.len - off > UINT32_MAX || off > UINT32_MAX) {
            s->arena.len = off;
            return rc < 0 ? rc : FV_ETOOBIG;
        }
        e->enc_tick = s->tick;
        e->enc_off = (uint32_t)off;
        e->enc_len = (uint32_t)(s->arena.len - off);
    }
    if (out->len && fv_buf_append(out, ",", 1) < 0)
        return FV_ENOMEM;
    return fv_buf_append(out, s->arena.ptr + e->enc_off, e->enc_len);
}

static int put_cell_ref(fv_buf_t *out, int32_t ci, const char *lead)
{
    fv_cell_t c = fv_world_cell(ci);
    return fv_buf_printf(out, "%s\"region\":\"%s\",\"x\":%d,\"y\":%d", lead,
                         fv_region_at(c.region)->id, c.cx, c.cy);
}

/* Builds cell ci's fragment since `since` (SINCE_RESET: whole) into f. Entities past the
 * ceiling (or past max_message_bytes of text) are left out and the fragment marked truncated. */
static void frag_build(fv_stream_t *s, int32_t ci, uint64_t since, frag_t *f)
{
    const cell_t *c = &s->cells[ci];
    const fv_spatial_cell_t *sc = &s->spatial.cells[ci];
    f->since = since;
    f->nents = 0;
    f->truncated = false;
    fv_buf_reset(&f->ents);
    fv_buf_reset(&f->removed);
    size_t room = s->opts.max_message_bytes - 512;
    /* the entities are wherever their owner put them: ask for the changed ones' memory all at
     * once, so that the misses overlap instead of coming one by one */
    for (uint32_t i = 0; i < sc->count; i++)
        if (since == SINCE_RESET || sc->stamps[i] > since)
            __builtin_prefetch(sc->ents[i]);
    for (uint32_t i = 0; i < sc->count; i++) {
        if (since != SINCE_RESET && sc->stamps[i] <= since)
            continue;
        fv_entity_t *e = sc->ents[i];
        size_t before = f->ents.len;
        if (f->nents == FV_STREAM_CELL_MAX_ENTITIES || put_entity(s, e, &f->ents) < 0 ||
            f->ents.len > room) {
            f->ents.len = before;
            if (f->ents.ptr)
                f->ents.ptr[before] = '\0';
            f->truncated = true;
            break;
        }
        f->nents++;
    }
    if (since == SINCE_RESET)
        return;
    if (c->left_count == 0)
        return;
    /* every leaver names the same cell: its text made once */
    fv_cell_t cc = fv_world_cell(ci);
    char ref[96];
    int rl = snprintf(ref, sizeof(ref), ",\"region\":\"%s\",\"x\":%d,\"y\":%d}",
                      fv_region_at(cc.region)->id, cc.cx, cc.cy);
    for (uint32_t i = 0; i < c->left_count; i++) {
        const leaver_t *l = &c->left[(c->left_head + i) % FV_STREAM_CELL_LEAVERS];
        if (l->tick <= since)
            continue;
        char id[20];
        size_t il = fv_fmt_u64(id, l->id);
        if ((f->removed.len && fv_buf_append(&f->removed, ",", 1) < 0) ||
            fv_buf_append(&f->removed, "{\"id\":", 6) < 0 ||
            fv_buf_append(&f->removed, id, il) < 0 ||
            fv_buf_append(&f->removed, ref, (size_t)rl) < 0 || f->removed.len > room) {
            /* too many to list: the client gets the cell whole instead */
            frag_build(s, ci, SINCE_RESET, f);
            return;
        }
    }
}

/* Whether a client brought up to `have` gets cell ci whole. */
static bool needs_reset(const fv_stream_t *s, const cell_t *c, uint64_t have)
{
    return have < c->floor || s->tick - have > s->opts.baseline_ticks;
}

/* Cell ci's fragment for a client at `have` (0: whole), shared with every other client at the
 * same baseline this tick. */
static const frag_t *frag_get(fv_stream_t *s, int32_t ci, uint64_t have)
{
    cell_t *c = &s->cells[ci];
    uint64_t since = have == 0 || needs_reset(s, c, have) ? SINCE_RESET : have;
    if (c->frag_tick != s->tick) {
        c->frag_tick = s->tick;
        c->nfrags = 0;
    }
    for (uint32_t k = 0; k < c->nfrags; k++)
        if (c->frags[k].since == since)
            return &c->frags[k];
    if (c->nfrags == FRAGS_PER_CELL && since != SINCE_RESET) {
        /* more baselines than slots: this client gets the cell whole, which is shared too */
        return frag_get(s, ci, 0);
    }
    frag_t *f;
    if (c->nfrags < FRAGS_PER_CELL)
        f = &c->frags[c->nfrags++];
    else
        f = &c->frags[FRAGS_PER_CELL - 1];     /* the last baseline's slot; its clients are
                                                   served already (one fragment a cell each) */
    frag_build(s, ci, since, f);
    s->stats.fragments_encoded++;
    return f;
}

static void send(fv_stream_t *s, fv_stream_client_t *c, const char *type, const fv_buf_t *b)
{
    s->stats.messages++;
    s->stats.bytes += b->len;
    s->hooks.send(s->hooks.data, c, type, b->ptr, b->len);
}

/* ---- a client's tick ---- */

static void client_refocus(fv_stream_t *s, fv_stream_client_t *c, int32_t center)
{
    uint32_t nold = c->in.count;
    memcpy(s->old_cells, c->in.cells, nold * sizeof(*s->old_cells));
    memcpy(s->old_have, c->have, nold * sizeof(*s->old_have));
    memcpy(s->old_prio, c->prio, nold * sizeof(*s->old_prio));
    uint32_t nentered, nleft;
    fv_interest_update(&c->in, center, s->entered, &nentered, s->left, &nleft);
    /* both lists ascend: carry what the client had of the cells it keeps */
    uint32_t j = 0;
    for (uint32_t i = 0; i < c->in.count; i++) {
        while (j < nold && s->old_cells[j] < c->in.cells[i])
            j++;
        bool kept = j < nold && s->old_cells[j] == c->in.cells[i];
        c->have[i] = kept ? s->old_have[j] : 0;
        c->prio[i] = kept ? s->old_prio[j] : 0;
        c->gain[i] = 1.0f / (float)(1 + fv_cell_distance(c->in.cells[i], center));
    }
    for (uint32_t i = 0; i < nleft; i++) {
        fv_cell_t cc = fv_world_cell(s->left[i]);
        fv_buf_reset(&s->one);
        if (fv_buf_printf(&s->one, "{\"region\":\"%s\",\"cell\":{\"x\":%d,\"y\":%d}}",
                          fv_region_at(cc.region)->id, cc.cx, cc.cy) == 0) {
            send(s, c, "cell_leave", &s->one);
            s->stats.cell_leaves++;
        }
    }
}

static int32_t viewer_cell(const fv_entity_t *v)
{
    int32_t ci = fv_spatial_cell_of(v);
    if (ci >= 0)
        return ci;
    fv_cell_t cell;
    return fv_cell_of(v->region, v->x, v->z, &cell) ? fv_world_cell_index(&cell) : -1;
}

static const fv_stream_client_t *sort_client;     /* qsort has no context argument */

static int by_distance(const void *a, const void *b)
{
    const fv_stream_client_t *c = sort_client;
    int da = fv_cell_distance(c->in.cells[*(const uint32_t *)a], c->in.center);
    int db = fv_cell_distance(c->in.cells[*(const uint32_t *)b], c->in.center);
    return (da > db) - (da < db);
}

static void client_enters(fv_stream_t *s, fv_stream_client_t *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->in.count; i++)
        if (c->have[i] == 0)
            s->order[n++] = i;
    if (n == 0)
        return;
    sort_client = c;
    qsort(s->order, n, sizeof(*s->order), by_distance);
    uint32_t sent = 0;
    for (uint32_t k = 0; k < n && sent < s->opts.enters_per_tick && c->enter_tokens > 0; k++) {
        uint32_t i = s->order[k];
        int32_t ci = c->in.cells[i];
        fv_cell_t cc = fv_world_cell(ci);
        fv_buf_reset(&s->one);
        int rc = fv_buf_printf(&s->one,
                               "{\"region\":\"%s\",\"cell\":{\"x\":%d,\"y\":%d},\"tick\":%" PRIu64,
                               fv_region_at(cc.region)->id, cc.cx, cc.cy, s->tick);
        if (rc == 0 && s->hooks.cell_extra) {
            size_t before = s->one.len;
            int xrc = s->hooks.cell_extra(s->hooks.data, ci, &s->one);
            if (xrc == FV_EAGAIN) {
                s->stats.deferred++;
                continue;
            }
            if (xrc < 0) {
                s->one.len = before;
                s->one.ptr[before] = '\0';
            }
        }
        const frag_t *f = frag_get(s, ci, 0);
        if (rc == 0)
            rc = fv_buf_append_str(&s->one, ",\"entities\":[");
        if (rc == 0)
            rc = fv_buf_append(&s->one, f->ents.ptr ? f->ents.ptr : "", f->ents.len);
        if (rc == 0)
            rc = fv_buf_printf(&s->one, "],\"truncated\":%s}", f->truncated ? "true" : "false");
        if (rc < 0)
            continue;
        send(s, c, "cell_enter", &s->one);
        s->stats.cell_enters++;
        s->stats.fragments_used++;
        c->enter_tokens -= (double)s->one.len;
        c->have[i] = s->tick;
        c->prio[i] = 0;
        sent++;
    }
}

/* A list member of the delta: the fragments' pieces, comma-joined. */
static int put_joined(fv_buf_t *out, const char *name, const frag_t *const *f, uint32_t n,
                      bool removed)
{
    int rc = fv_buf_printf(out, ",\"%s\":[", name);
    bool first = true;
    for (uint32_t k = 0; rc == 0 && k < n; k++) {
        const fv_buf_t *b = removed ? &f[k]->removed : &f[k]->ents;
        if (b->len == 0)
            continue;
        if (!first)
            rc = fv_buf_append(out, ",", 1);
        if (rc == 0)
            rc = fv_buf_append(out, b->ptr, b->len);
        first = false;
    }
    if (rc == 0)
        rc = fv_buf_append(out, "]", 1);
    return rc;
}

static void client_delta(fv_stream_t *s, fv_stream_client_t *c, double dilation)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->in.count; i++) {
        uint64_t have = c->have[i];
        if (have == 0 || s->version[c->in.cells[i]] <= have)
            continue;
        /* nearer cells gain faster; a waiting one keeps gaining until it is sent */
        c->prio[i] += c->gain[i];
        s->order[n++] = i;
    }
    if (n == 0)
        return;
    /* take cells in priority order while the budget and the message's size allow (always one
     * when there is any budget, so a cell larger than a tick's share still goes); a budget
     * takes a few cells of the dozens owed, so the order is found by selection, one at a time,
     * not by sorting them all */
    double room = fmin(c->tokens, (double)s->opts.max_message_bytes);
    size_t used = 96;
    uint32_t nchosen = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t best = k;
        for (uint32_t m = k + 1; m < n; m++)
            if (c->prio[s->order[m]] > c->prio[s->order[best]])
                best = m;
        uint32_t i = s->order[best];
        s->order[best] = s->order[k];
        s->order[k] = i;
        const frag_t *f = frag_get(s, c->in.cells[i], c->have[i]);
        size_t cost = f->ents.len + f->removed.len + 64;
        if (nchosen > 0 && (double)(used + cost) > room) {
            s->stats.deferred += n - k;
            break;
        }
        if (c->tokens <= 0) {
            s->stats.deferred += n - k;
            break;
        }
        s->chosen[nchosen] = f;
        s->chosen_at[nchosen++] = i;
        used += cost;
    }
    if (nchosen == 0)
        return;
    fv_buf_reset(&s->msg);
    int rc = fv_buf_printf(&s->msg, "{\"tick\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"dilation\":%.3f",
                           s->tick, c->seq + 1, dilation);
    if (rc == 0)
        rc = put_joined(&s->msg, "entities", s->chosen, nchosen, false);
    if (rc == 0)
        rc = put_joined(&s->msg, "removed", s->chosen, nchosen, true);
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        /* reset: cells that come whole; truncated: cells not all of whose entities fit */
        rc = fv_buf_printf(&s->msg, pass ? ",\"truncated\":[" : ",\"reset\":[");
        bool first = true;
        for (uint32_t k = 0; rc == 0 && k < nchosen; k++) {
            const frag_t *f = s->chosen[k];
            if (pass ? !f->truncated : f->since != SINCE_RESET)
                continue;
            rc = fv_buf_append_str(&s->msg, first ? "{" : ",{");
            if (rc == 0)
                rc = put_cell_ref(&s->msg, c->in.cells[s->chosen_at[k]], "");
            if (rc == 0)
                rc = fv_buf_append(&s->msg, "}", 1);
            first = false;
        }
        if (rc == 0)
            rc = fv_buf_append(&s->msg, "]", 1);
    }
    if (rc == 0)
        rc = fv_buf_append(&s->msg, "}", 1);
    if (rc < 0)
        return;
    c->seq++;
    send(s, c, "entities_delta", &s->msg);
    s->stats.deltas++;
    s->stats.fragments_used += nchosen;
    c->tokens -= (double)s->msg.len;
    for (uint32_t k = 0; k < nchosen; k++) {
        c->have[s->chosen_at[k]] = s->tick;
        c->prio[s->chosen_at[k]] = 0;
    }
}

void fv_stream_tick(fv_stream_t *s, double dt_s, double dilation)
{
    double dt = dt_s > 0 ? dt_s : 0;
    double refill = s->opts.budget_bytes_per_s * dt;
    double enter_refill = s->opts.enter_budget_bytes_per_s * dt;
    for (fv_stream_client_t *c = s->clients; c; c = c->next) {
        if (c->resync) {
            c->resync = false;
            for (uint32_t i = 0; i < c->in.count; i++)
                c->have[i] = 0;
        }
        int32_t center = viewer_cell(c->viewer);
        if (center != c->in.center)
            client_refocus(s, c, center);
        c->tokens = fmin(c->tokens + refill,
                         (double)s->opts.budget_bytes_per_s / UPDATE_BURST_DIV);
        c->enter_tokens =
            fmin(c->enter_tokens + enter_refill, (double)s->opts.enter_budget_bytes_per_s);
        client_enters(s, c);
        client_delta(s, c, dilation);
    }
    s->stats.ticks++;
    s->tick++;
}

size_t fv_stream_snapshot_bytes(fv_stream_t *s, const fv_stream_client_t *c)
{
    size_t n = 64;
    for (uint32_t i = 0; i < c->in.count; i++) {
        const frag_t *f = frag_get(s, c->in.cells[i], 0);
        n += f->ents.len + 1;
    }
    return n;
}
