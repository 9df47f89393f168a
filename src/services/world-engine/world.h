/* world.h - the world engine's parts: the module with its ticks (module.c), players and their
 * positions (world_players.c), the REST routes (world_http.c), the WorldService calls
 * (world_rpc.c), bus events (world_events.c), saving and loading regions and players' places
 * (world_store.c), the places of players out of the world (world_places.c), and the seams to
 * the terrain generator (world_terrain.c). The rules are world_rules.h. */
#ifndef FV_WORLD_ENGINE_WORLD_H
#define FV_WORLD_ENGINE_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "runtime/module.h"
#include "services/world-engine/world_rules.h"
#include "store/sql.h"
#include "world3d/entity.h"

/* [services.world-engine] in finalverse.toml */
typedef struct world_settings {
    uint32_t save_interval_ms;      /* region state to the sql store this often */
    uint32_t weather_interval_ms;   /* each region's weather chain is evaluated this often */
    uint32_t max_speed_mps;
    uint32_t move_slack_m;
    uint32_t max_move_interval_ms;  /* idle time past this earns no more distance */
    uint32_t max_above_ground_m;
    uint32_t max_players;           /* players placed at once; past it a new one is refused */
    uint32_t player_idle_ms;        /* a player who has not moved in this long leaves */
    uint32_t remembered_places;     /* places of players out of the world kept (world_places.c) */
    uint32_t max_cell_events;       /* cell.changed events per simulation step */
    uint32_t max_entities;          /* most entities one nearby query answers */
    /* spatial streaming (world_stream.c) */
    uint32_t view_radius;           /* cells around a player's own that it sees */
    uint32_t stream_budget_bytes_per_s;
    uint32_t stream_enter_bytes_per_s;
    uint32_t stream_max_message_bytes;
    uint32_t stream_baseline_ticks;
    uint32_t stream_enters_per_tick;
    uint32_t terrain_per_tick;      /* terrain patches encoded for cell_enter in one tick */
    bool simulate;                  /* false: regions stand still (maintenance, tests) */
} world_settings_t;

#define WORLD_PLAYER_ID_MAX 64      /* with its NUL */

/* A player placed in the world: chained in the players table by id. */
typedef struct world_player {
    struct world_player *next;
    char id[WORLD_PLAYER_ID_MAX];
    fv_entity_t ent;
    struct fv_stream_client *stream;    /* what this player sees (world_stream.c) */
    uint64_t moved_ms;              /* monotonic: the last accepted move, for the speed cap */
    uint64_t seen_ms;               /* monotonic: the last move asked, for idling out */
    bool dirty;                     /* moved since the last movement tick published */
    bool unsaved;                   /* placed or moved since the last save took its place */
    struct world_player *dirty_next;    /* in w->dirty while dirty */
} world_player_t;

typedef struct world_place_rec world_place_rec_t;

/* A player's place as a save writes it; stamp 0 for a player in the world, else the entry's
 * stamp in the places table (world_places.c). */
typedef struct world_place_row {
    char id[WORLD_PLAYER_ID_MAX];
    world_place_t place;
    uint64_t stamp;
} world_place_row_t;

typedef struct world {
    fv_module_ctx_t *ctx;
    const world_settings_t *set;
    world_state_t *state;
    world_region_t *published;      /* the cell values last told on the bus, per region */
    world_eco_params_t eco;
    world_move_limits_t limits;
    uint64_t weather_every;         /* simulation steps between weather evaluations */
    /* players by id (chained) */
    world_player_t **players;
    size_t player_buckets;
    size_t player_count;
    size_t players_in[FV_WORLD_REGIONS];
    world_player_t *dirty;          /* players moved since the last movement tick */
    uint64_t next_entity_id;
    /* places of players out of the world (world_places.c) */
    world_place_rec_t **places;     /* NULL when remembered_places is 0 */
    size_t places_buckets;
    world_place_rec_t *places_oldest, *places_newest;
    size_t places_count;
    size_t places_unsaved;          /* of which not written to the store yet */
    uint64_t places_stamp;
    uint64_t places_dropped;        /* leaving players' places not kept: the table was full */
    bool players_resave;            /* a save failed: the next writes every player's place */
    bool places_partial;            /* the store may hold places the table does not: a newcomer
                                     * is looked up there (world_store_lookup) */
    size_t lookups;                 /* those lookups in flight; close waits for them */
    /* spatial streaming: the index of entities and each player's view (world_stream.c) */
    struct fv_stream *stream;
    char **terrain;                 /* per world cell: cell_enter's terrain member, or NULL */
    uint32_t terrain_made;          /* patches encoded this tick */
    uint64_t last_move_tick_ms;
    double dilation;                /* 1: real time; less when a tick overran (time dilation) */
    double sim_credit;              /* dilated simulation seconds owed */
    uint64_t tick_max_us;           /* the longest movement tick (for /metrics) */
    /* saving */
    fv_sql_t *db;
    bool saving;                    /* a save is in flight */
    bool stopping;
    bool loading;                   /* the load at start is in flight */
    bool loaded;
    uint64_t last_save_ms;          /* monotonic, when the last save started */
    uint64_t saved_step;            /* sim_step of the last save that committed */
    uint64_t saves;
    uint64_t save_failures;
    bool last_save_failed;
    fv_module_closed_cb closed_cb;  /* close() waits for the last save */
    /* counters for /metrics */
    uint64_t moves;
    uint64_t moves_corrected;
    uint64_t moves_refused;
    uint64_t events_published;
    uint64_t events_refused;
} world_t;

/* world_terrain.c: the ground (world3d terrain) and the biomes */
double world_ground_height(void *data, int region, double x, double z);
int world_cell_biome(uint64_t seed, int region, int cx, int cy);
const char *world_biome_name(int biome);

/* world_players.c */
void world_players_init(world_t *w);
void world_players_dispose(world_t *w);
world_player_t *world_player_find(world_t *w, const char *id);
/* Where the player stands now. */
world_place_t world_player_place(const world_player_t *p);
/* The player; when new, placed at from (the store's place for them), else where the places
 * table remembers them, else at the spawn point. NULL when the world is full (max_players). */
world_player_t *world_player_get(world_t *w, const char *id, const world_place_t *from,
                                 uint64_t now_ms);
/* Validates and applies a move (want.region -1: where the player is). */
void world_player_move(world_t *w, world_player_t *p, const world_place_t *want,
                       uint64_t now_ms, world_move_result_t *out);
/* The player leaves the world now (a client's session ended): false when not in it. */
bool world_player_leave(world_t *w, const char *id);
/* Drops players idle past player_idle_ms. */
void world_players_expire(world_t *w, uint64_t now_ms);
/* The spawn point: terra-nova (512, ground, 512). */
void world_spawn_place(world_t *w, world_place_t *out);

/* world_stream.c */
void world_stream_init(world_t *w);
void world_stream_dispose(world_t *w);
/* The movement tick's streaming part: every player's view brought up to date. */
void world_stream_tick(world_t *w, uint64_t now_ms);
/* A player appeared, moved, or leaves the world (before it is freed). */
void world_stream_player_joined(world_t *w, world_player_t *p);
void world_stream_player_moved(world_t *w, world_player_t *p);
void world_stream_player_left(world_t *w, world_player_t *p);
/* The player behind an entity (every entity is a player's today), or NULL. */
world_player_t *world_player_of(fv_entity_t *e);

/* world_http.c */
/* JSON of one cell as GET .../cells/{x}/{y} answers it. */
json_t *world_cell_json(const world_cell_t *c, int cx, int cy, uint64_t now_ms);
FV_MUST_USE int world_http_routes(world_t *w, fv_error_t *err);
/* JSON of one region's summary (players, means, weather), shared with the calls. */
json_t *world_region_json(const world_t *w, int region, uint64_t now_ms);

/* world_rpc.c */
FV_MUST_USE int world_rpc_serve(world_t *w, fv_error_t *err);

/* world_events.c */
/* player.moved for every player moved since the last call (the movement tick). */
void world_events_players(world_t *w);
/* cell.changed for cells that moved at least a unit since last told, up to max_cell_events. */
void world_events_cells(world_t *w, uint64_t now_ms);
void world_events_weather(world_t *w, int region, world_weather_t from, world_weather_t to);

/* world_places.c */
void world_places_init(world_t *w);
void world_places_dispose(world_t *w);
/* Whether the table has a place for the player. */
bool world_places_known(world_t *w, const char *id);
/* The player's remembered place, taken out of the table (they are back): false when none. */
bool world_places_take(world_t *w, const char *id, world_place_t *out);
/* Remembers where a player left (unsaved: the store does not have it yet). false when not
 * kept: the table is off (remembered_places 0) or full of unsaved entries. */
bool world_places_put(world_t *w, const char *id, const world_place_t *place, bool unsaved);
/* Copies up to max unsaved entries, oldest first, into rows; how many. */
size_t world_places_unsaved(world_t *w, world_place_row_t *rows, size_t max);
/* A save of rows committed: entries unchanged since are saved now. */
void world_places_saved(world_t *w, const world_place_row_t *rows, size_t count);

/* world_store.c */
/* Loads the saved regions into w->state (fresh ones stay for rows missing or refused); calls
 * done(w, status) once, from the loop. 0: done will run; < 0: it will not. */
typedef void (*world_store_done_cb)(world_t *w, int status);
FV_MUST_USE int world_store_load(world_t *w, world_store_done_cb done);
/* Starts a save of every region in one transaction unless one is in flight; world_saved()
 * runs once when it ends. false: no save started (one in flight, nothing loaded yet, or the
 * store refused at once, counted as a failure). */
bool world_store_save(world_t *w);

/* A player not in the world nor in the places table, while the store may know them
 * (places_partial): their row is read on the store's thread, then done(w, at, data) runs from
 * the loop with where they stood, or NULL (no row, a row for no place of this world, or the
 * read failed, logged). 0, or < 0 when the read could not start (done will not run). */
typedef void (*world_lookup_done_cb)(world_t *w, const world_place_t *at, void *data);
FV_MUST_USE int world_store_lookup(world_t *w, const char *id, world_lookup_done_cb done,
                                   void *data);

/* module.c: a save ended (rc 0 or its failure); final: it started after shutdown began. */
void world_saved(world_t *w, int rc, bool final);
/* module.c: after a save, load or lookup ended: a close that waited for it finishes now when
 * nothing else is in flight (w is gone then: true). */
bool world_close_if_idle(world_t *w);

/* Monotonic and wall clock in ms. */
uint64_t world_mono_ms(void);
uint64_t world_wall_ms(void);

#endif
