/* test_stream.c - the spatial index, interest sets with hysteresis, and streaming: deltas
 * against a baseline, a whole cell after a lost baseline, leavers, the byte budget that defers
 * far cells without starving them, and fragments shared by clients at the same baseline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "world3d/interest.h"
#include "world3d/spatial.h"
#include "world3d/stream.h"

static int tn(void)
{
    return fv_region_index("terra-nova");
}

static fv_entity_t ent(uint64_t id, int region, double x, double z)
{
    fv_entity_t e = {0};
    e.id = id;
    e.kind = FV_ENTITY_CREATURE;
    e.region = region;
    e.x = x;
    e.z = z;
    return e;
}

static void spatial_near_and_moves(void **state)
{
    (void)state;
    fv_spatial_t *s = fv_malloc(sizeof(*s));
    fv_spatial_init(s);
    fv_entity_t e[5] = {ent(1, tn(), 100, 100), ent(2, tn(), 110, 100), ent(3, tn(), 300, 300),
                        ent(4, tn(), 1020, 100), ent(5, tn(), NAN, 0)};
    for (int i = 0; i < 5; i++)
        fv_spatial_place(s, &e[i]);
    assert_int_equal(s->total, 4);                  /* NaN is nowhere */
    assert_int_equal(fv_spatial_cell_of(&e[4]), -1);
    fv_entity_t *out[8];
    assert_int_equal(fv_spatial_near(s, tn(), 105, 100, 10, out, 8), 2);
    assert_int_equal(fv_spatial_near(s, tn(), 105, 100, 1000, out, 8), 4);
    assert_int_equal(fv_spatial_near(s, tn(), 105, 100, 1000, out, 2), 4);  /* counted past max */
    /* across the region's east border: (1020, 100) of terra-nova is 10 m from (6, 100) of the
     * region east of it, when there is one */
    const fv_region_info_t *r = fv_region_at(tn());
    int east = fv_region_at_grid(r->gx + 1, r->gy);
    if (east >= 0)
        assert_int_equal(fv_spatial_near(s, east, 6, 100, 15, out, 8), 1);
    /* a move to another cell, a removal, and the slot swap keep the index whole */
    e[0].x = 700;
    int32_t was = fv_spatial_place(s, &e[0]);
    assert_true(was >= 0 && was != fv_spatial_cell_of(&e[0]));
    assert_int_equal(fv_spatial_near(s, tn(), 105, 100, 10, out, 8), 1);
    assert_ptr_equal(out[0], &e[1]);
    assert_int_equal(fv_spatial_remove(s, &e[1]), was);
    assert_int_equal(fv_spatial_near(s, tn(), 105, 100, 10, out, 8), 0);
    assert_int_equal(fv_spatial_remove(s, &e[1]), -1);     /* twice is nothing */
    assert_int_equal(s->total, 3);
    /* bad queries find nothing */
    assert_int_equal(fv_spatial_near(s, -1, 1, 1, 10, out, 8), 0);
    assert_int_equal(fv_spatial_near(s, tn(), NAN, 1, 10, out, 8), 0);
    assert_int_equal(fv_spatial_near(s, tn(), 1, 1, -1, out, 8), 0);
    fv_spatial_dispose(s);
    fv_free(s);
}

static int32_t cell_at(int region, int cx, int cy)
{
    fv_cell_t c = {region, cx, cy};
    return fv_world_cell_index(&c);
}

static void interest_hysteresis(void **state)
{
    (void)state;
    fv_interest_t *in = fv_malloc(sizeof(*in));
    int32_t en[FV_INTEREST_MAX_CELLS], lf[FV_INTEREST_MAX_CELLS];
    uint32_t ne, nl;
    fv_interest_init(in, 3);
    fv_interest_update(in, cell_at(tn(), 8, 8), en, &ne, lf, &nl);
    assert_int_equal(ne, 49);
    assert_int_equal(nl, 0);
    for (uint32_t i = 1; i < in->count; i++)
        assert_true(in->cells[i - 1] < in->cells[i]);
    /* one step east: a column of 7 enters, nothing leaves (the west column is 4 away) */
    fv_interest_update(in, cell_at(tn(), 9, 8), en, &ne, lf, &nl);
    assert_int_equal(ne, 7);
    assert_int_equal(nl, 0);
    /* pacing back and forth on that border changes nothing */
    for (int i = 0; i < 10; i++) {
        fv_interest_update(in, cell_at(tn(), 8 + (i % 2 == 0 ? 0 : 1), 8), en, &ne, lf, &nl);
        assert_int_equal(ne, 0);
        assert_int_equal(nl, 0);
    }
    /* two steps on: the far west column goes */
    fv_interest_update(in, cell_at(tn(), 10, 8), en, &ne, lf, &nl);
    assert_int_equal(ne, 7);
    assert_int_equal(nl, 7);
    /* a bounded set whatever radius is asked */
    fv_interest_init(in, 1000000);
    assert_int_equal(in->radius, FV_INTEREST_MAX_RADIUS);
    fv_interest_update(in, cell_at(tn(), 8, 8), en, &ne, lf, &nl);
    assert_true(in->count <= FV_INTEREST_MAX_CELLS);
    /* nowhere: all leave */
    uint32_t had = in->count;
    fv_interest_update(in, -1, en, &ne, lf, &nl);
    assert_int_equal(nl, had);
    assert_int_equal(in->count, 0);
    fv_free(in);
}

/* ---- streaming ---- */

typedef struct msg {
    char type[20];
    json_t *j;
} msg_t;

typedef struct sink {
    msg_t m[4096];
    size_t n;
    size_t bytes;
} sink_t;

static void on_send(void *data, fv_stream_client_t *c, const char *type, const char *json,
                    size_t len)
{
    sink_t *k = fv_stream_client_data(c) ? fv_stream_client_data(c) : data;
    assert_true(k->n < 4096);
    json_error_t err;
    json_t *j = json_loadb(json, len, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %.*s", err.text, (int)len, json);
    snprintf(k->m[k->n].type, sizeof(k->m[k->n].type), "%s", type);
    k->m[k->n++].j = j;
    k->bytes += len;
}

static void sink_clear(sink_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        json_decref(k->m[i].j);
    k->n = 0;
    k->bytes = 0;
}

static size_t count_type(const sink_t *k, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n; i++)
        n += strcmp(k->m[i].type, type) == 0;
    return n;
}

static const json_t *last_of(const sink_t *k, const char *type)
{
    for (size_t i = k->n; i-- > 0;)
        if (strcmp(k->m[i].type, type) == 0)
            return k->m[i].j;
    return NULL;
}

static bool lists_id(const json_t *list, uint64_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if ((uint64_t)json_integer_value(json_object_get(v, "id")) == id)
            return true;
    return false;
}

static fv_stream_opts_t opts(uint32_t budget)
{
    fv_stream_opts_t o = {.view_radius = 1,
                          .budget_bytes_per_s = budget,
                          .enter_budget_bytes_per_s = budget,
                          .max_message_bytes = 16384,
                          .baseline_ticks = 20,
                          .enters_per_tick = 100};
    return o;
}

static void enters_then_deltas(void **state)
{
    (void)state;
    sink_t *k = fv_calloc(1, sizeof(*k));
    fv_stream_opts_t o = opts(1 << 20);
    fv_stream_hooks_t h = {.data = k, .send = on_send};
    fv_stream_t *s = fv_stream_new(&o, &h);
    fv_entity_t me = ent(1, tn(), 520, 520), other = ent(2, tn(), 530, 520),
                far = ent(3, tn(), 10, 10);
    me.kind = FV_ENTITY_PLAYER;
    fv_stream_entity_changed(s, &me);
    fv_stream_entity_changed(s, &other);
    fv_stream_entity_changed(s, &far);
    fv_stream_client_t *c = fv_stream_client_new(s, &me, -1, NULL);
    fv_stream_tick(s, 0.1, 1.0);
    /* radius 1: nine cells entered, the two near entities in them, the far one not */
    assert_int_equal(count_type(k, "cell_enter"), 9);
    size_t seen = 0;
    for (size_t i = 0; i < k->n; i++) {
        const json_t *ents = json_object_get(k->m[i].j, "entities");
        seen += lists_id(ents, 1) + lists_id(ents, 2);
        assert_false(lists_id(ents, 3));
    }
    assert_int_equal(seen, 2);
    assert_int_equal(count_type(k, "entities_delta"), 0);    /* nothing changed since */
    sink_clear(k);
    /* nothing changes: nothing is sent */
    fv_stream_tick(s, 0.1, 1.0);
    assert_int_equal(k->n, 0);
    /* the other moves within its cell: one delta with only it */
    other.x = 531;
    fv_stream_entity_changed(s, &other);
    fv_stream_tick(s, 0.1, 0.5);
    assert_int_equal(k->n, 1);
    const json_t *d = last_of(k, "entities_delta");
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "entities")), 1);
    assert_true(lists_id(json_object_get(d, "entities"), 2));
    assert_int_equal(json_integer_value(json_object_get(d, "seq")), 1);
    assert_true(json_real_value(json_object_get(d, "dilation")) == 0.5);
    const json_t *pos = json_object_get(json_array_get(json_object_get(d, "entities"), 0), "pos");
    assert_int_equal(json_integer_value(json_array_get(pos, 0)), 53100);    /* centimetres */
    sink_clear(k);
    /* it leaves the view: a removal naming the cell it left */
    other.x = 900;
    fv_stream_entity_changed(s, &other);
    fv_stream_tick(s, 0.1, 1.0);
    d = last_of(k, "entities_delta");
    assert_non_null(d);
    assert_true(lists_id(json_object_get(d, "removed"), 2));
    assert_int_equal(json_array_size(json_object_get(d, "entities")), 0);
    sink_clear(k);
    /* the viewer walks east two cells: a column leaves, one enters */
    me.x = 520 + 128;
    fv_stream_entity_changed(s, &me);
    fv_stream_tick(s, 0.1, 1.0);
    assert_int_equal(count_type(k, "cell_leave"), 3);
    assert_int_equal(count_type(k, "cell_enter"), 6);
    sink_clear(k);
    /* resync: everything entered again */
    fv_stream_client_resync(c);
    fv_stream_tick(s, 0.1, 1.0);
    /* (the column two cells behind is kept: hysteresis) */
    assert_int_equal(count_type(k, "cell_enter"), fv_stream_client_interest(c)->count);
    assert_int_equal(fv_stream_client_interest(c)->count, 12);
    sink_clear(k);
    fv_stream_free(s);
    fv_free(k);
}

static void lost_baseline_gets_the_cell_whole(void **state)
{
    (void)state;
    sink_t *k = fv_calloc(1, sizeof(*k));
    fv_stream_opts_t o = opts(1 << 20);
    o.view_radius = 0;
    fv_stream_hooks_t h = {.data = k, .send = on_send};
    fv_stream_t *s = fv_stream_new(&o, &h);
    fv_entity_t me = ent(1, tn(), 520, 520);
    fv_entity_t crowd[100];
    fv_stream_entity_changed(s, &me);
    for (int i = 0; i < 100; i++) {
        crowd[i] = ent(100 + (uint64_t)i, tn(), 514 + i % 40, 514 + i / 10);
        fv_stream_entity_changed(s, &crowd[i]);
    }
    fv_stream_client_t *c = fv_stream_client_new(s, &me, -1, NULL);
    fv_stream_tick(s, 0.1, 1.0);
    assert_int_equal(count_type(k, "cell_enter"), 1);
    sink_clear(k);
    (void)c;
    fv_stream_free(s);

    /* the ring's forgetting: a client one tick behind, while 70 left in that tick (entities
     * filed in a freed stream are zeroed anew) */
    s = fv_stream_new(&o, &h);
    me = ent(1, tn(), 520, 520);
    for (int i = 0; i < 100; i++)
        crowd[i] = ent(100 + (uint64_t)i, tn(), 514 + i % 40, 514 + i / 10);
    fv_stream_entity_changed(s, &me);
    for (int i = 0; i < 100; i++)
        fv_stream_entity_changed(s, &crowd[i]);
    fv_stream_client_new(s, &me, -1, NULL);
    fv_stream_tick(s, 0.1, 1.0);
    sink_clear(k);
    for (int i = 0; i < 70; i++)
        fv_stream_entity_removed(s, &crowd[i]);
    fv_stream_tick(s, 0.1, 1.0);
    const json_t *d = last_of(k, "entities_delta");
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "reset")), 1);
    assert_int_equal(json_array_size(json_object_get(d, "entities")), 31);   /* 30 + me */
    assert_int_equal(json_array_size(json_object_get(d, "removed")), 0);
    sink_clear(k);
    /* 10 more leave: within the ring, a plain delta with 10 removals */
    for (int i = 70; i < 80; i++)
        fv_stream_entity_removed(s, &crowd[i]);
    fv_stream_tick(s, 0.1, 1.0);
    d = last_of(k, "entities_delta");
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "reset")), 0);
    assert_int_equal(json_array_size(json_object_get(d, "removed")), 10);
    sink_clear(k);
    fv_stream_free(s);
    fv_free(k);
}

static void budget_defers_far_cells_without_starving_them(void **state)
{
    (void)state;
    sink_t *k = fv_calloc(1, sizeof(*k));
    fv_stream_opts_t o = opts(1 << 20);
    o.view_radius = 2;
    fv_stream_hooks_t h = {.data = k, .send = on_send};
    fv_stream_t *s = fv_stream_new(&o, &h);
    fv_entity_t me = ent(1, tn(), 544, 544);
    fv_entity_t e[25];
    fv_stream_entity_changed(s, &me);
    int n = 0;
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++) {
            e[n] = ent(10 + (uint64_t)n, tn(), 544 + dx * 64, 544 + dy * 64);
            fv_stream_entity_changed(s, &e[n]);
            n++;
        }
    fv_stream_free(s);
    o.budget_bytes_per_s = 2500;
    s = fv_stream_new(&o, &h);
    me = ent(1, tn(), 544, 544);
    n = 0;
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++, n++)
            e[n] = ent(10 + (uint64_t)n, tn(), 544 + dx * 64, 544 + dy * 64);
    fv_stream_entity_changed(s, &me);
    for (int i = 0; i < n; i++)
        fv_stream_entity_changed(s, &e[i]);
    fv_stream_client_t *c = fv_stream_client_new(s, &me, -1, NULL);
    fv_stream_client_resync(c);
    /* let the enters through on a big budget first */
    for (int t = 0; t < 200 && fv_stream_stats(s)->cell_enters < 25; t++)
        fv_stream_tick(s, 1.0, 1.0);
    assert_int_equal(fv_stream_stats(s)->cell_enters, 25);
    sink_clear(k);
    int sent[25] = {0};
    for (int t = 0; t < 60; t++) {
        for (int i = 0; i < n; i++) {
            e[i].y += 0.5;
            fv_stream_entity_changed(s, &e[i]);
        }
        fv_stream_tick(s, 0.1, 1.0);
        for (size_t m = 0; m < k->n; m++) {
            const json_t *ents = json_object_get(k->m[m].j, "entities");
            for (int i = 0; i < n; i++)
                sent[i] += lists_id(ents, e[i].id);
        }
        sink_clear(k);
    }
    int centre = 12, corner = 0;
    for (int i = 0; i < n; i++)
        assert_true(sent[i] > 0);                   /* nobody starves */
    assert_true(sent[centre] > sent[corner]);       /* near updates more often */
    assert_true(fv_stream_stats(s)->deferred > 0);
    fv_stream_free(s);
    fv_free(k);
}

typedef struct two {
    sink_t a, b;
} two_t;

static void clients_share_fragments(void **state)
{
    (void)state;
    two_t *t = fv_calloc(1, sizeof(*t));
    fv_stream_opts_t o = opts(1 << 20);
    fv_stream_hooks_t h = {.data = &t->a, .send = on_send};
    fv_stream_t *s = fv_stream_new(&o, &h);
    fv_entity_t p = ent(1, tn(), 520, 520), q = ent(2, tn(), 522, 520), x = ent(3, tn(), 530, 530);
    fv_stream_entity_changed(s, &p);
    fv_stream_entity_changed(s, &q);
    fv_stream_entity_changed(s, &x);
    fv_stream_client_t *ca = fv_stream_client_new(s, &p, -1, &t->a);
    fv_stream_client_new(s, &q, -1, &t->b);
    fv_stream_tick(s, 0.1, 1.0);
    sink_clear(&t->a);
    sink_clear(&t->b);
    uint64_t before = fv_stream_stats(s)->fragments_encoded;
    x.x = 531;
    fv_stream_entity_changed(s, &x);
    fv_stream_tick(s, 0.1, 1.0);
    /* both got it, from one encoding */
    assert_true(lists_id(json_object_get(last_of(&t->a, "entities_delta"), "entities"), 3));
    assert_true(lists_id(json_object_get(last_of(&t->b, "entities_delta"), "entities"), 3));
    assert_int_equal(fv_stream_stats(s)->fragments_encoded - before, 1);
    assert_true(fv_stream_snapshot_bytes(s, ca) > 3 * 50);     /* all three, whole */
    sink_clear(&t->a);
    sink_clear(&t->b);
    fv_stream_free(s);
    fv_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spatial_near_and_moves),
        cmocka_unit_test(interest_hysteresis),
        cmocka_unit_test(enters_then_deltas),
        cmocka_unit_test(lost_baseline_gets_the_cell_whole),
        cmocka_unit_test(budget_defers_far_cells_without_starving_them),
        cmocka_unit_test(clients_share_fragments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
