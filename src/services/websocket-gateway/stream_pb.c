/* stream_pb.c - the world's stream events (cell_enter, cell_leave, entities_delta: JSON from the
 * world engine, docs/world.md) as proto/world3d.proto's StreamMessage, for sessions that asked
 * for the subprotocol finalverse.world3d.v1+proto. One conversion an event, shared by every
 * such subscriber. */
#include "services/websocket-gateway/gateway.h"

#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "world3d.pb-c.h"

typedef Finalverse__World3d__V1__Entity pb_entity_t;
typedef Finalverse__World3d__V1__CellRef pb_cell_t;
typedef Finalverse__World3d__V1__Removed pb_removed_t;

bool wsg_stream_event(const char *type, size_t len)
{
    return (len == 10 && memcmp(type, "cell_enter", 10) == 0) ||
           (len == 10 && memcmp(type, "cell_leave", 10) == 0) ||
           (len == 14 && memcmp(type, "entities_delta", 14) == 0);
}

/* Everything a message points to lives in one arena freed at the end: the messages are built on
 * the stack and in these blocks, never by protobuf-c's allocator. */
typedef struct arena {
    void **blocks;
    size_t n, cap;
} arena_t;

static void *arena_alloc(arena_t *a, size_t bytes)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->blocks = fv_realloc(a->blocks, a->cap * sizeof(*a->blocks));
    }
    return a->blocks[a->n++] = fv_calloc(1, bytes ? bytes : 1);
}

static void arena_free(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        fv_free(a->blocks[i]);
    fv_free(a->blocks);
}

static int32_t int_of(json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static int32_t int_at(json_t *a, size_t i)
{
    json_int_t v = json_integer_value(json_array_get(a, i));
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static char *str_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return (char *)(s ? s : "");
}

static pb_cell_t *cell_ref(arena_t *a, json_t *o, json_t *xy)
{
    pb_cell_t *c = arena_alloc(a, sizeof(*c));
    finalverse__world3d__v1__cell_ref__init(c);
    c->region = str_of(o, "region");
    c->x = (uint32_t)int_of(xy, "x");
    c->y = (uint32_t)int_of(xy, "y");
    return c;
}

static Finalverse__World3d__V1__EntityKind kind_of(const char *k)
{
    static const char *const names[] = {"", "player", "echo", "creature", "object"};
    for (int i = 1; i < 5; i++)
        if (strcmp(k, names[i]) == 0)
            return (Finalverse__World3d__V1__EntityKind)i;
    return FINALVERSE__WORLD3D__V1__ENTITY_KIND__ENTITY_KIND_UNSPECIFIED;
}

static pb_entity_t **entities(arena_t *a, json_t *list, size_t *n)
{
    *n = json_array_size(list);
    pb_entity_t **out = arena_alloc(a, *n * sizeof(*out));
    for (size_t i = 0; i < *n; i++) {
        json_t *e = json_array_get(list, i);
        pb_entity_t *p = arena_alloc(a, sizeof(*p));
        finalverse__world3d__v1__entity__init(p);
        p->id = (uint64_t)json_integer_value(json_object_get(e, "id"));
        p->kind = kind_of(str_of(e, "kind"));
        p->region = str_of(e, "region");
        json_t *pos = json_object_get(e, "pos"), *vel = json_object_get(e, "vel");
        p->x_cm = int_at(pos, 0);
        p->y_cm = int_at(pos, 1);
        p->z_cm = int_at(pos, 2);
        p->yaw_mrad = int_of(e, "yaw");
        p->vx_cm_s = int_at(vel, 0);
        p->vy_cm_s = int_at(vel, 1);
        p->vz_cm_s = int_at(vel, 2);
        p->state = (uint32_t)int_of(e, "state");
        p->player_id = str_of(e, "player_id");
        out[i] = p;
    }
    return out;
}

static pb_cell_t **cells(arena_t *a, json_t *list, size_t *n)
{
    *n = json_array_size(list);
    pb_cell_t **out = arena_alloc(a, *n * sizeof(*out));
    for (size_t i = 0; i < *n; i++) {
        json_t *c = json_array_get(list, i);
        out[i] = cell_ref(a, c, c);
    }
    return out;
}

uint8_t *wsg_stream_pb(const char *type, json_t *d, size_t *len)
{
    arena_t a = {0};
    Finalverse__World3d__V1__StreamMessage m = FINALVERSE__WORLD3D__V1__STREAM_MESSAGE__INIT;
    Finalverse__World3d__V1__CellEnter enter = FINALVERSE__WORLD3D__V1__CELL_ENTER__INIT;
    Finalverse__World3d__V1__CellLeave leave = FINALVERSE__WORLD3D__V1__CELL_LEAVE__INIT;
    Finalverse__World3d__V1__EntitiesDelta delta = FINALVERSE__WORLD3D__V1__ENTITIES_DELTA__INIT;
    Finalverse__World3d__V1__CellState state = FINALVERSE__WORLD3D__V1__CELL_STATE__INIT;
    uint8_t *terrain = NULL;
    if (strcmp(type, "cell_enter") == 0) {
        enter.cell = cell_ref(&a, d, json_object_get(d, "cell"));
        enter.tick = (uint64_t)json_integer_value(json_object_get(d, "tick"));
        const char *b64 = json_string_value(json_object_get(json_object_get(d, "terrain"), "data"));
        if (b64) {
            size_t cap = strlen(b64) / 4 * 3 + 3, n = 0;
            terrain = fv_malloc(cap);
            if (sodium_base642bin(terrain, cap, b64, strlen(b64), NULL, &n, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) == 0) {
                enter.terrain.data = terrain;
                enter.terrain.len = n;
            }
        }
        json_t *st = json_object_get(d, "state");
        if (st) {
            state.biome = str_of(st, "biome");
            state.harmony = json_number_value(json_object_get(st, "harmony"));
            state.corruption = json_number_value(json_object_get(st, "corruption"));
            state.flora = json_number_value(json_object_get(st, "flora"));
            state.fauna = json_number_value(json_object_get(st, "fauna"));
            state.warded = json_is_true(json_object_get(st, "warded"));
            enter.state = &state;
        }
        enter.entities = entities(&a, json_object_get(d, "entities"), &enter.n_entities);
        enter.truncated = json_is_true(json_object_get(d, "truncated"));
        m.message_case = FINALVERSE__WORLD3D__V1__STREAM_MESSAGE__MESSAGE_CELL_ENTER;
        m.cell_enter = &enter;
    } else if (strcmp(type, "cell_leave") == 0) {
        leave.cell = cell_ref(&a, d, json_object_get(d, "cell"));
        m.message_case = FINALVERSE__WORLD3D__V1__STREAM_MESSAGE__MESSAGE_CELL_LEAVE;
        m.cell_leave = &leave;
    } else {
        delta.tick = (uint64_t)json_integer_value(json_object_get(d, "tick"));
        delta.seq = (uint64_t)json_integer_value(json_object_get(d, "seq"));
        delta.dilation = (float)json_number_value(json_object_get(d, "dilation"));
        delta.entities = entities(&a, json_object_get(d, "entities"), &delta.n_entities);
        json_t *removed = json_object_get(d, "removed");
        delta.n_removed = json_array_size(removed);
        delta.removed = arena_alloc(&a, delta.n_removed * sizeof(*delta.removed));
        for (size_t i = 0; i < delta.n_removed; i++) {
            json_t *r = json_array_get(removed, i);
            pb_removed_t *p = arena_alloc(&a, sizeof(*p));
            finalverse__world3d__v1__removed__init(p);
            p->id = (uint64_t)json_integer_value(json_object_get(r, "id"));
            p->cell = cell_ref(&a, r, r);
            delta.removed[i] = p;
        }
        delta.reset = cells(&a, json_object_get(d, "reset"), &delta.n_reset);
        delta.truncated = cells(&a, json_object_get(d, "truncated"), &delta.n_truncated);
        m.message_case = FINALVERSE__WORLD3D__V1__STREAM_MESSAGE__MESSAGE_ENTITIES_DELTA;
        m.entities_delta = &delta;
    }
    *len = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *out = fv_malloc(*len ? *len : 1);
    protobuf_c_message_pack(&m.base, out);
    fv_free(terrain);
    arena_free(&a);
    return out;
}
