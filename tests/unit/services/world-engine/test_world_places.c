/* test_world_places.c - the table of players' places out of the world: a place put back is
 * taken once; a newer put replaces an older one; past the ceiling the oldest saved entry goes,
 * and when the oldest are all unsaved a new place is dropped and counted instead; a save marks
 * entries saved only when they did not change meanwhile; a ceiling of 0 keeps nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "services/world-engine/world.h"

static world_settings_t set;
static world_t w;

static void open_table(uint32_t ceiling)
{
    memset(&w, 0, sizeof(w));
    memset(&set, 0, sizeof(set));
    set.remembered_places = ceiling;
    w.set = &set;
    world_places_init(&w);
}

static world_place_t at(double x)
{
    return (world_place_t){.region = fv_region_index("terra-nova"), .x = x, .y = 1, .z = 2,
                           .yaw = 0.5};
}

static void put(const char *id, double x, bool unsaved, bool kept)
{
    world_place_t p = at(x);
    assert_int_equal(world_places_put(&w, id, &p, unsaved), kept);
}

static double taken_x(const char *id)
{
    world_place_t p;
    if (!world_places_take(&w, id, &p))
        return -1;
    return p.x;
}

static void put_and_take(void **state)
{
    (void)state;
    open_table(10);
    put("a", 10, true, true);
    put("b", 20, false, true);
    put("a", 11, true, true);                 /* replaces a's */
    assert_int_equal(w.places_count, 2);
    assert_int_equal(w.places_unsaved, 1);
    assert_true(taken_x("a") == 11);
    assert_true(taken_x("a") == -1);          /* taken once */
    assert_int_equal(w.places_unsaved, 0);
    assert_true(taken_x("nobody") == -1);
    char longid[WORLD_PLAYER_ID_MAX + 1];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    put(longid, 1, true, false);
    world_places_dispose(&w);
}

static void ceiling(void **state)
{
    (void)state;
    open_table(3);
    put("old", 1, false, true);
    put("mid", 2, true, true);
    put("new", 3, false, true);
    put("newest", 4, true, true);             /* "old", the oldest saved one, goes */
    assert_int_equal(w.places_count, 3);
    assert_true(taken_x("old") == -1);
    put("more", 5, true, true);               /* "new" goes: "mid" is unsaved */
    assert_true(taken_x("new") == -1);
    assert_true(taken_x("mid") == 2);
    put("mid", 2, true, true);
    put("full", 6, true, false);              /* all unsaved: dropped and counted */
    assert_int_equal(w.places_dropped, 1);
    assert_int_equal(w.places_count, 3);
    world_places_dispose(&w);

    open_table(0);                            /* off */
    put("a", 1, true, false);
    assert_int_equal(w.places_count, 0);
    world_places_dispose(&w);
}

static void saves(void **state)
{
    (void)state;
    open_table(10);
    put("a", 1, true, true);
    put("b", 2, true, true);
    put("c", 3, false, true);
    world_place_row_t rows[10];
    size_t n = world_places_unsaved(&w, rows, 10);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, "a");     /* oldest first */
    assert_string_equal(rows[1].id, "b");
    put("b", 22, true, true);                 /* changed while the save writes */
    world_places_saved(&w, rows, n);
    assert_int_equal(w.places_unsaved, 1);    /* b's new place still owes a save */
    n = world_places_unsaved(&w, rows, 10);
    assert_int_equal(n, 1);
    assert_true(rows[0].place.x == 22);
    world_places_saved(&w, rows, n);
    assert_int_equal(w.places_unsaved, 0);
    assert_int_equal(world_places_unsaved(&w, rows, 10), 0);
    world_places_dispose(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_and_take),
        cmocka_unit_test(ceiling),
        cmocka_unit_test(saves),
    };
    return cmocka_run_group_tests_name("world-engine/places", tests, NULL, NULL);
}
