/* catalog.h - the registry's state: service instances, their TTL checks and the change indexes
 * that blocking queries wait on. Pure: no sockets, no clock (time is always an argument), no
 * logging. The HTTP edge (http.c), the timers (server.c) and the disk (persist.c) sit around it.
 *
 * Indexes work like Consul's raft index: one global counter bumped on every change, and per
 * service name the index of the last change that touched that name, so a watch on one name is
 * woken only by changes to it. */
#ifndef FV_REGISTRY_CATALOG_H
#define FV_REGISTRY_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "registry/map.h"

#define REGISTRY_NAME_MAX 128
#define REGISTRY_MAX_TAGS 64
#define REGISTRY_TAG_MAX 256          /* bytes per tag */
#define REGISTRY_MAX_META 64          /* Consul's limits on service Meta */
#define REGISTRY_META_KEY_MAX 128
#define REGISTRY_META_VALUE_MAX 512
#define REGISTRY_ADDRESS_MAX 253      /* the longest DNS name */
#define REGISTRY_OUTPUT_MAX 1024      /* check output kept; a longer note is cut, as Consul does */
/* The whole catalog's bounds. The persisted file of a catalog within them always stays under
 * what the loader reads (REGISTRY_FILE_MAX_BYTES), so the file can never outgrow its own
 * loader. */
#define REGISTRY_MAX_INSTANCES 200000u
#define REGISTRY_MAX_BYTES (64u * 1024 * 1024)
#define REGISTRY_FILE_MAX_BYTES (REGISTRY_MAX_BYTES + 1024u * 1024)
#define REGISTRY_TTL_MIN_MS 100u
#define REGISTRY_TTL_MAX_MS 3600000u
#define REGISTRY_DEREGISTER_MAX_MS 86400000u
#define REGISTRY_NODE "finalverse"
#define REGISTRY_NODE_ADDRESS "127.0.0.1"

typedef enum registry_status {
    REGISTRY_PASSING = 0,
    REGISTRY_WARNING = 1,
    REGISTRY_CRITICAL = 2,
} registry_status_t;

/* "passing" | "warning" | "critical" */
const char *registry_status_name(registry_status_t s);
/* 0 and *out, or FV_EINVAL. */
int registry_status_parse(const char *name, registry_status_t *out);

/* One registered instance. Every string is owned by the instance. */
typedef struct registry_instance {
    /* First, together, what a save's walk over every instance reads, so that the walk (which
     * at 100,000 instances scattered over the heap is mostly cache misses) touches one or two
     * cache lines an instance rather than three or four. */
    struct registry_instance *next;  /* every instance, registration order (catalog.c) */
    uint64_t modify_index;
    /* persist.c's: the instance's bytes in the catalog file as of persisted_index and
     * persisted_owned (NULL until a save made them); owned, and let go through
     * registry_catalog_retire_piece so that a save in progress keeps reading them. */
    char *persisted;
    size_t persisted_len;
    uint64_t persisted_index;
    bool persisted_owned;
    bool owned;                  /* registered with an ACL token: only a token with write on
                                  * its name may change it, never the anonymous token */
    char *id;
    char *name;
    char *address;               /* "" when not given */
    int port;
    char **tags;
    size_t tag_count;
    char **meta;                 /* key, value, key, value ... (2 * meta_count) */
    size_t meta_count;
    uint32_t ttl_ms;             /* 0: no TTL check, always passing unless told otherwise */
    uint32_t deregister_after_ms;/* 0: never removed for being critical */
    registry_status_t status;
    char *output;                /* check output; "" when none */
    uint64_t last_update_ms;     /* last register or check update: the TTL runs from here */
    uint64_t critical_since_ms;  /* valid while status == CRITICAL */
    uint64_t create_index;
    size_t cost;                 /* bytes it may take in the persisted file (an upper bound) */
    /* The rest of the catalog's bookkeeping (catalog.c): */
    struct registry_instance *prev;
    struct registry_instance *name_prev, *name_next; /* the instances of its name */
    uint64_t deadline;           /* when expire() must look at it; UINT64_MAX: never */
    size_t heap_pos;             /* in the deadline heap; SIZE_MAX when not in it */
} registry_instance_t;

typedef struct registry_name_index {
    char *name;
    uint64_t index;
    size_t count;                /* instances with this name */
    bool changed;                /* in the catalog's change list */
    registry_instance_t *first, *last;             /* those instances, registration order */
    struct registry_name_index *prev, *next;       /* in the live or the empty list */
} registry_name_index_t;

/* Every operation on one instance costs O(1) (the id and name maps) or O(log n) (the deadline
 * heap); a view of one name costs the size of that name's list, not of the catalog. */
typedef struct registry_catalog {
    registry_instance_t *first, *last;  /* in registration order; owned */
    size_t count;
    registry_map_t ids;                 /* id -> instance */
    registry_map_t name_map;            /* name -> entry */
    /* Names with instances, and names without: the latter are kept so that a watch on the
     * name sees the removal and a later re-registration as moves forward, and are the first to
     * go when room is short. Both owned. */
    registry_name_index_t *live, *live_last, *empty, *empty_last;
    size_t name_count;
    registry_instance_t **heap;         /* min-heap on deadline */
    size_t heap_len, heap_cap;
    char **changes;                     /* names whose index moved since the last drain */
    size_t change_count, change_cap;
    uint64_t index;              /* global; starts at 1 so a first query has something to send */
    uint32_t default_deregister_after_ms; /* used when a register body does not say */
    size_t bytes;                /* upper bound of the persisted file's size */
    size_t max_instances;        /* REGISTRY_MAX_INSTANCES unless a test lowers it */
    size_t max_bytes;            /* REGISTRY_MAX_BYTES unless a test lowers it */
    /* While a save's parts point into the instances' bytes (pinned), bytes let go of wait in
     * the graveyard until the save is done with them. Owned. */
    bool pinned;
    char **graveyard;
    size_t grave_count, grave_cap;
    uint64_t removals;           /* instances that left the catalog (or were replaced): a
                                  * walk across loop turns starts again when it moved */
} registry_catalog_t;

/* Limits start at REGISTRY_MAX_INSTANCES and REGISTRY_MAX_BYTES; a caller may lower them
 * (never raise them: the loader reads at most REGISTRY_FILE_MAX_BYTES). */
void registry_catalog_init(registry_catalog_t *cat, uint32_t default_deregister_after_ms);
void registry_catalog_dispose(registry_catalog_t *cat);

/* ---- validation ---- */

/* Parses a Go-style duration: one or more <number><unit> with unit ms, s, m or h ("10s",
 * "500ms", "1m30s", "1.5s"). 0 and *out_ms, or FV_EINVAL. */
int registry_parse_duration(const char *text, uint64_t *out_ms);

/* Validates a register body (Consul's shape) and fills out (caller disposes it with
 * registry_instance_free). Status starts passing (Check.Status may say otherwise): our own
 * services register and then heartbeat, so starting critical as Consul does would only delay
 * discovery by one heartbeat. On failure FV_EINVAL and err names the field. */
FV_MUST_USE int registry_instance_from_json(const json_t *body, uint32_t default_deregister_ms,
                                            registry_instance_t **out, fv_error_t *err);

void registry_instance_free(registry_instance_t *inst);   /* NULL-safe */

/* ---- changes: each returns 0 or a negative code; *changed (may be NULL) says whether the
 * index moved ---- */

/* Upserts by id, taking ownership of inst in every case. Same content as the stored one:
 * no index bump, but the TTL restarts from now. A changed one keeps its check status and
 * create index. Once owned, an instance stays owned (who may change it is http.c's check). FV_ETOOBIG (nothing changed, inst freed) when the catalog would pass
 * max_instances or max_bytes; registry_catalog_full_msg says which. */
int registry_catalog_register(registry_catalog_t *cat, registry_instance_t *inst, uint64_t now_ms,
                              bool *changed);

/* Lets go of an instance's persisted bytes (p may be NULL): freed now, or when the save that
 * pinned the catalog is done. */
void registry_catalog_retire_piece(registry_catalog_t *cat, char *p);
/* The save is done with the bytes: the graveyard is emptied. */
void registry_catalog_unpin(registry_catalog_t *cat);

/* The message for a register refused with FV_ETOOBIG. */
void registry_catalog_full_msg(const registry_catalog_t *cat, fv_error_t *err);

/* FV_ENOENT when id is unknown. */
int registry_catalog_deregister(registry_catalog_t *cat, const char *id);

/* A check update: check_id is "service:<id>" (a bare id is accepted too). Restarts the TTL.
 * Bumps the index only when status or output changed. FV_ENOENT for an unknown check.
 * output (valid UTF-8) is cut to REGISTRY_OUTPUT_MAX bytes, and dropped when the catalog is
 * at max_bytes: a note must never be what makes the file unloadable. */
int registry_catalog_check_update(registry_catalog_t *cat, const char *check_id,
                                  registry_status_t status, const char *output, uint64_t now_ms,
                                  bool *changed);

/* TTL passed -> critical ("TTL expired"); critical for deregister_after -> removed.
 * Returns how many instances changed or went. */
size_t registry_catalog_expire(registry_catalog_t *cat, uint64_t now_ms);

/* The earliest time at which expire() would do something, or UINT64_MAX when nothing is
 * pending. Never earlier than now_ms. */
uint64_t registry_catalog_next_deadline(const registry_catalog_t *cat, uint64_t now_ms);

/* ---- queries ---- */

registry_instance_t *registry_catalog_find(const registry_catalog_t *cat, const char *id);

/* Calls fn(name, data) once for each name whose index moved (or whose entry was dropped)
 * since the last drain, then forgets them; fn may be NULL. What wakes only the watchers of
 * what changed. */
void registry_catalog_drain_changes(registry_catalog_t *cat,
                                    void (*fn)(const char *name, void *data), void *data);

/* Index of the last change to name (the global index's start value 1 when never seen). */
uint64_t registry_catalog_name_index(const registry_catalog_t *cat, const char *name);

/* Blocking-query rule: hold the query when the client already has the current index.
 * A client index of 0 never blocks; one above the current index (the registry restarted and
 * lost its history) is answered at once, so the client sees the index go back and resets, as
 * Consul's docs tell clients to. */
bool registry_should_block(uint64_t current, uint64_t client_index);

/* Number of instances; with passing_only those whose status is passing. name NULL = all. */
size_t registry_catalog_count(const registry_catalog_t *cat, const char *name, bool passing_only);

/* The JSON bodies, in Consul's shapes. New references, never NULL. */
json_t *registry_json_agent_services(const registry_catalog_t *cat);
json_t *registry_json_catalog_services(const registry_catalog_t *cat);
json_t *registry_json_catalog_service(const registry_catalog_t *cat, const char *name);
json_t *registry_json_health_service(const registry_catalog_t *cat, const char *name,
                                     bool passing_only);

/* ---- persistence (persist.c) ---- */

/* The whole catalog (indexes included, times excluded) as one JSON document, and back.
 * Loading replaces the catalog's contents; restored instances restart their TTL at now_ms.
 * An instance the register validation refuses (a file from an older, laxer version, or one
 * edited by hand), a duplicate, or one past the catalog's limits is skipped and counted in
 * *skipped (may be NULL); the rest is kept. FV_EINVAL with err saying what is wrong for a
 * document that is not a catalog at all (catalog left empty). */
json_t *registry_catalog_dump(const registry_catalog_t *cat);
FV_MUST_USE int registry_catalog_restore(registry_catalog_t *cat, const json_t *doc,
                                         uint64_t now_ms, size_t *skipped, fv_error_t *err);

/* For the loader: appends inst (ownership taken in every case; cost already set) without
 * touching the indexes. FV_EEXIST for an id already present. */
int registry_catalog_adopt(registry_catalog_t *cat, registry_instance_t *inst);
/* For the loader: the index of a name. FV_EINVAL for a name the register rules refuse. */
int registry_catalog_set_name_index(registry_catalog_t *cat, const char *name, uint64_t index);

/* What inst may take in the persisted file, and what a name entry takes: upper bounds that
 * the catalog's byte count is made of. */
size_t registry_instance_cost(const registry_instance_t *inst);
size_t registry_name_cost(const char *name);
/* Everything in the file that is neither an instance nor a name entry. */
#define REGISTRY_DUMP_BASE_BYTES 128u

/* <data_dir>/registry/catalog.json, written atomically (temp file, fsync, rename). */
FV_MUST_USE int registry_persist_save(const registry_catalog_t *cat, const char *data_dir,
                                      fv_error_t *err);
/* The same in two halves: the document's bytes (on the loop: it reads the catalog; the same
 * document as registry_catalog_dump, written without building it), and the
 * atomic write of them (anywhere: it allocates nothing and logs nothing, so a worker thread
 * may run it). */
struct fv_buf;
FV_MUST_USE int registry_persist_render(const registry_catalog_t *cat, struct fv_buf *out,
                                        fv_error_t *err);
FV_MUST_USE int registry_persist_write(const char *data_dir, const char *text, size_t len,
                                       fv_error_t *err);

/* The same document in parts, so that no loop turn renders or walks the whole catalog. Each
 * instance keeps its bytes, made again only when it changed. A save is a walk:
 *   registry_persist_begin     pins the catalog (bytes it lets go of stay until the parts are
 *                              disposed) and starts a walk at the first instance;
 *   registry_persist_step      goes on walking, making the bytes of changed instances, for at
 *                              most about budget_bytes of them and max_instances instances;
 *                              FV_EAGAIN: call again on a later turn; 0: done, parts hold the
 *                              head and where every instance's bytes are; another negative
 *                              code with err. When an instance left the catalog between two
 *                              steps, the walk starts again (the bytes made are kept); after a
 *                              few restarts it walks the rest without an instance bound, so
 *                              steady churn cannot keep a save from ending. Instances that
 *                              changed behind the walk are written as they were when it passed
 *                              them: index (the catalog's at begin) tells what is saved;
 *   registry_persist_write_parts  the atomic write of them (a worker thread may run it: it
 *                              only reads the parts, and allocates and logs nothing);
 *   registry_persist_parts_dispose  on the loop, after the write or instead of it: unpins
 *                              (when begin did pin for these parts). */
typedef struct registry_piece {
    const char *p;
    size_t len;
} registry_piece_t;
typedef struct registry_persist_parts {
    struct fv_buf head;
    registry_piece_t *pieces;
    size_t count, cap;
    uint64_t index;              /* the catalog's index when the walk began */
    bool pinned;                 /* begin pinned the catalog for these parts */
    /* the walk */
    registry_instance_t *cursor; /* next to look at; valid while removals is unchanged */
    uint64_t removals;
    unsigned restarts;
} registry_persist_parts_t;
#define REGISTRY_PERSIST_RESTARTS 3
FV_MUST_USE int registry_persist_begin(registry_catalog_t *cat, registry_persist_parts_t *parts,
                                       fv_error_t *err);
FV_MUST_USE int registry_persist_step(registry_catalog_t *cat, registry_persist_parts_t *parts,
                                      size_t budget_bytes, size_t max_instances,
                                      fv_error_t *err);
FV_MUST_USE int registry_persist_write_parts(const char *data_dir,
                                             const registry_persist_parts_t *parts,
                                             fv_error_t *err);
void registry_persist_parts_dispose(registry_catalog_t *cat, registry_persist_parts_t *parts);

/* Loads <data_dir>/registry/catalog.json into cat. A missing file is 0 (empty catalog).
 * A corrupt one is logged, moved aside to catalog.json.corrupt and also gives 0 with an empty
 * catalog; *corrupt (may be NULL) tells the caller it happened. Other I/O errors are returned. */
FV_MUST_USE int registry_persist_load(registry_catalog_t *cat, const char *data_dir,
                                      uint64_t now_ms, bool *corrupt, fv_error_t *err);

#endif
