/* world_store.c - region state and players' places in the sql store (tables world_regions,
 * migration 0004, and world_players, 0005): loaded once at start, saved every
 * save_interval_ms and once more at shutdown. A save snapshots all nine regions on the loop (a
 * copy of ~100 KB, well under a millisecond) with the places that changed since the last save
 * (players in the world who moved, and those who left: world_places.c), then writes them in
 * one transaction on the store's own thread or connection, so the loop never waits for the
 * disk, and a save cut short by a crash leaves the previous one whole. One save at a time: a
 * save due while one is in flight is skipped (the next interval catches up). */
#include "services/world-engine/world.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

typedef struct world_save {
    world_t *w;
    fv_sql_req_t req;
    fv_sql_tx_t *tx;
    uint8_t *blobs;                 /* FV_WORLD_REGIONS * WORLD_REGION_BLOB_BYTES */
    world_place_row_t *rows;        /* players' places to write after the regions */
    size_t nrows;
    size_t next_row;
    uint64_t step;
    uint64_t saved_at;
    int next;                       /* the region written next */
    int rc;                         /* the first failure */
    bool final;                     /* started after shutdown began */
} world_save_t;

static const char upsert_sql[] =
    "INSERT INTO world_regions (id, seed, sim_step, state, saved_at) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (id) DO UPDATE SET seed = excluded.seed, sim_step = excluded.sim_step, "
    "state = excluded.state, saved_at = excluded.saved_at";

static const char place_sql[] =
    "INSERT INTO world_players (id, region, x, y, z, yaw, saved_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (id) DO UPDATE SET region = excluded.region, x = excluded.x, y = excluded.y, "
    "z = excluded.z, yaw = excluded.yaw, saved_at = excluded.saved_at";

static void save_finish(world_save_t *s)
{
    world_t *w = s->w;
    w->saving = false;
    if (s->rc == 0) {
        world_places_saved(w, s->rows, s->nrows);
        w->saved_step = s->step;
        w->saves++;
        fv_log_debug("world-engine", "saved the regions at step %llu",
                     (unsigned long long)s->step);
    } else {
        w->players_resave = true;   /* the places taken off the players were not written */
        w->save_failures++;
        fv_log_warn("world-engine", "saving the regions failed: %s", s->req.err.msg);
    }
    int rc = s->rc;
    bool final = s->final;
    fv_free(s->blobs);
    fv_free(s->rows);
    fv_free(s);
    world_saved(w, rc, final);
}

static void on_rolled_back(fv_sql_req_t *req, int rc)
{
    (void)rc;       /* the failure that made us roll back is the one reported */
    save_finish(req->data);
}

static void fail_tx(world_save_t *s, int rc)
{
    if (!s->rc)
        s->rc = rc;
    fv_error_t keep = s->req.err;
    int rrc = fv_sql_tx_rollback(s->tx, &s->req, on_rolled_back);
    s->req.err = keep;
    if (rrc < 0)
        save_finish(s);
}

static void on_committed(fv_sql_req_t *req, int rc)
{
    world_save_t *s = req->data;
    if (rc < 0)
        s->rc = rc;
    save_finish(s);
}

static void write_next(world_save_t *s);

static void on_written(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    (void)res;
    world_save_t *s = req->data;
    if (rc < 0) {
        fail_tx(s, rc);
        return;
    }
    write_next(s);
}

/* The next player's place, or the commit after the last. */
static void write_place(world_save_t *s)
{
    int rc;
    if (s->next_row == s->nrows) {
        if ((rc = fv_sql_tx_commit(s->tx, &s->req, on_committed)) < 0)
            fail_tx(s, rc);
        return;
    }
    const world_place_row_t *r = &s->rows[s->next_row++];
    fv_sql_param_t p[7] = {
        FV_SQL_TEXT(r->id),
        FV_SQL_TEXT(fv_region_at(r->place.region)->id),
        FV_SQL_DOUBLE(r->place.x),
        FV_SQL_DOUBLE(r->place.y),
        FV_SQL_DOUBLE(r->place.z),
        FV_SQL_DOUBLE(r->place.yaw),
        FV_SQL_INT((int64_t)s->saved_at),
    };
    if ((rc = fv_sql_tx_exec(s->tx, &s->req, place_sql, p, 7, on_written)) < 0)
        fail_tx(s, rc);
}

static void write_next(world_save_t *s)
{
    int rc;
    if (s->next == FV_WORLD_REGIONS) {
        write_place(s);
        return;
    }
    int r = s->next++;
    fv_sql_param_t p[5] = {
        FV_SQL_TEXT(fv_region_at(r)->id),
        FV_SQL_INT((int64_t)s->w->state->seed),
        FV_SQL_INT((int64_t)s->step),
        FV_SQL_BLOB(s->blobs + (size_t)r * WORLD_REGION_BLOB_BYTES, WORLD_REGION_BLOB_BYTES),
        FV_SQL_INT((int64_t)s->saved_at),
    };
    if ((rc = fv_sql_tx_exec(s->tx, &s->req, upsert_sql, p, 5, on_written)) < 0)
        fail_tx(s, rc);
}

static void on_begun(fv_sql_req_t *req, int rc, fv_sql_tx_t *tx)
{
    world_save_t *s = req->data;
    if (rc < 0) {
        s->rc = rc;
        save_finish(s);
        return;
    }
    s->tx = tx;
    write_next(s);
}

/* The places this save writes: players in the world placed or moved since the last save (all
 * of them after a failed one), then the unsaved places of players out of it. */
static void take_places(world_t *w, world_save_t *s)
{
    size_t cap = w->player_count + w->places_unsaved;
    if (!cap)
        return;
    s->rows = fv_malloc(cap * sizeof(*s->rows));
    for (size_t b = 0; b < w->player_buckets; b++) {
        for (world_player_t *p = w->players[b]; p; p = p->next) {
            if (!p->unsaved && !w->players_resave)
                continue;
            world_place_row_t *r = &s->rows[s->nrows++];
            memcpy(r->id, p->id, sizeof(r->id));
            r->place = world_player_place(p);
            r->stamp = 0;
            p->unsaved = false;
        }
    }
    w->players_resave = false;
    s->nrows += world_places_unsaved(w, s->rows + s->nrows, cap - s->nrows);
}

bool world_store_save(world_t *w)
{
    if (w->saving || !w->db || !w->loaded)
        return false;
    world_save_t *s = fv_calloc(1, sizeof(*s));
    s->w = w;
    s->req.data = s;
    s->final = w->stopping;
    s->step = w->state->sim_step;
    s->saved_at = world_wall_ms();
    s->blobs = fv_malloc((size_t)FV_WORLD_REGIONS * WORLD_REGION_BLOB_BYTES);
    for (int r = 0; r < FV_WORLD_REGIONS; r++)
        world_region_encode(&w->state->regions[r], s->blobs + (size_t)r * WORLD_REGION_BLOB_BYTES);
    take_places(w, s);
    w->saving = true;
    w->last_save_ms = world_mono_ms();
    int rc = fv_sql_tx_begin(w->db, &s->req, on_begun);
    if (rc < 0) {
        s->rc = rc;
        fv_error_set(&s->req.err, rc, "cannot begin a transaction: %s", fv_strerror(rc));
        /* the callback contract: report from the loop, not from inside this call */
        w->saving = false;
        w->save_failures++;
        fv_log_warn("world-engine", "saving the regions failed: %s", s->req.err.msg);
        w->players_resave = true;
        fv_free(s->blobs);
        fv_free(s->rows);
        fv_free(s);
        return false;
    }
    return true;
}

/* ---- load ---- */

typedef struct world_load {
    world_t *w;
    fv_sql_req_t req;
    world_store_done_cb done;
} world_load_t;

/* Columns col.. of row i (region, x, y, z, yaw) as a place: false for a region not in this
 * world, or coordinates outside it. */
static bool place_of_row(const fv_sql_result_t *res, size_t i, size_t col, world_place_t *at)
{
    *at = (world_place_t){
        .region = fv_region_index(fv_sql_result_text(res, i, col, NULL)),
        .x = fv_sql_result_double(res, i, col + 1),
        .y = fv_sql_result_double(res, i, col + 2),
        .z = fv_sql_result_double(res, i, col + 3),
        .yaw = fv_sql_result_double(res, i, col + 4),
    };
    fv_cell_t cell;
    return fv_cell_of(at->region, at->x, at->z, &cell) && isfinite(at->y) && isfinite(at->yaw);
}

/* The newest rows come first: put in from the last, so that the table's oldest is oldest. */
static void on_places_loaded(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    world_load_t *l = req->data;
    world_t *w = l->w;
    world_store_done_cb done = l->done;
    fv_free(l);
    if (rc < 0) {
        fv_log_error("world-engine", "loading the players' places failed: %s", req->err.msg);
        done(w, rc);
        return;
    }
    size_t rows = fv_sql_result_rows(res), kept = 0, skipped = 0;
    for (size_t i = rows; i-- > 0;) {
        const char *id = fv_sql_result_text(res, i, 0, NULL);
        world_place_t at;
        if (!id || !*id || !place_of_row(res, i, 1, &at) || !world_places_put(w, id, &at, false)) {
            skipped++;                  /* a region not in this world, or a damaged row */
            continue;
        }
        kept++;
    }
    /* as many rows as asked for: there may be older ones, for the lookups */
    w->places_partial = rows >= w->set->remembered_places;
    fv_log_info("world-engine", "%zu players' places loaded from the store%s", kept,
                skipped ? " (some rows skipped: unknown region or out of range)" : "");
    done(w, 0);
}

static void on_loaded(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    world_load_t *l = req->data;
    world_t *w = l->w;
    world_store_done_cb done = l->done;
    if (rc < 0) {
        fv_log_error("world-engine", "loading the regions failed: %s", req->err.msg);
        fv_free(l);
        done(w, rc);
        return;
    }
    size_t rows = fv_sql_result_rows(res), loaded = 0;
    uint64_t step = 0;
    for (size_t i = 0; i < rows; i++) {
        const char *id = fv_sql_result_text(res, i, 0, NULL);
        int r = fv_region_index(id);
        size_t len = 0;
        const void *blob = fv_sql_result_blob(res, i, 3, &len);
        if (r < 0) {
            fv_log_info("world-engine", "saved region '%.64s' is not in this world: skipped",
                        id ? id : "");
            continue;
        }
        if (world_region_decode(blob, len, &w->state->regions[r]) < 0) {
            fv_log_warn("world-engine", "saved region %s does not decode (%zu bytes): it "
                        "starts fresh", id, len);
            continue;
        }
        if ((uint64_t)fv_sql_result_int64(res, i, 1) != w->state->seed)
            fv_log_warn("world-engine", "region %s was saved with seed %lld, not %llu: the "
                        "saved state is kept", id, (long long)fv_sql_result_int64(res, i, 1),
                        (unsigned long long)w->state->seed);
        int64_t s = fv_sql_result_int64(res, i, 2);
        if (s > 0 && (uint64_t)s > step)
            step = (uint64_t)s;
        loaded++;
    }
    w->state->sim_step = step;
    w->saved_step = step;
    fv_log_info("world-engine", "%zu of %d regions loaded from the store (step %llu)", loaded,
                FV_WORLD_REGIONS, (unsigned long long)step);
    if (w->set->remembered_places == 0) {
        fv_free(l);
        done(w, 0);
        return;
    }
    fv_sql_param_t p[1] = {FV_SQL_INT((int64_t)w->set->remembered_places)};
    rc = fv_sql_exec(w->db, &l->req,
                     "SELECT id, region, x, y, z, yaw FROM world_players "
                     "ORDER BY saved_at DESC, id LIMIT $1", p, 1, on_places_loaded);
    if (rc < 0) {
        fv_log_error("world-engine", "cannot load the players' places: %s", fv_strerror(rc));
        fv_free(l);
        done(w, rc);
    }
}

int world_store_load(world_t *w, world_store_done_cb done)
{
    if (!w->db)
        return FV_EUNAVAILABLE;
    world_load_t *l = fv_calloc(1, sizeof(*l));
    l->w = w;
    l->req.data = l;
    l->done = done;
    int rc = fv_sql_exec(w->db, &l->req,
                         "SELECT id, seed, sim_step, state FROM world_regions ORDER BY id", NULL,
                         0, on_loaded);
    if (rc < 0)
        fv_free(l);
    return rc;
}

/* ---- one player's place ---- */

typedef struct world_lookup {
    world_t *w;
    fv_sql_req_t req;
    world_lookup_done_cb done;
    void *data;
    char id[WORLD_PLAYER_ID_MAX];
} world_lookup_t;

static void on_looked_up(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    world_lookup_t *lk = req->data;
    world_t *w = lk->w;
    world_place_t at;
    bool found = false;
    if (rc < 0)
        fv_log_warn("world-engine", "looking up where %s stood failed: %s (the spawn it is)",
                    lk->id, req->err.msg);
    else
        found = fv_sql_result_rows(res) == 1 && place_of_row(res, 0, 0, &at);
    w->lookups--;
    lk->done(w, found ? &at : NULL, lk->data);
    fv_free(lk);
    (void)world_close_if_idle(w);
}

int world_store_lookup(world_t *w, const char *id, world_lookup_done_cb done, void *data)
{
    if (!w->db || !w->loaded || strlen(id) >= WORLD_PLAYER_ID_MAX)
        return FV_EINVAL;
    world_lookup_t *lk = fv_calloc(1, sizeof(*lk));
    lk->w = w;
    lk->req.data = lk;
    lk->done = done;
    lk->data = data;
    memcpy(lk->id, id, strlen(id) + 1);
    fv_sql_param_t p[1] = {FV_SQL_TEXT(lk->id)};
    int rc = fv_sql_exec(w->db, &lk->req,
                         "SELECT region, x, y, z, yaw FROM world_players WHERE id = $1", p, 1,
                         on_looked_up);
    if (rc < 0) {
        fv_free(lk);
        return rc;
    }
    w->lookups++;
    return 0;
}
