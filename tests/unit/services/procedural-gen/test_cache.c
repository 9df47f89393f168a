/* test_cache.c - procedural-gen's patch cache: hits return the same entry, the ceiling holds,
 * the least recently used entry goes first, and a rendering handed out survives eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "services/procedural-gen/procgen.h"

static procgen_cache_t pc;

static void lru_and_ceiling(void **state)
{
    (void)state;
    procgen_cache_init(&pc, 3);
    fv_cell_t a = {0, 1, 1}, b = {0, 2, 1}, c = {4, 15, 15}, d = {8, 0, 0};
    procgen_entry_t *ea = procgen_cache_get(&pc, 42, &a);
    assert_int_equal(ea->patch.cell.cx, 1);
    procgen_cache_get(&pc, 42, &b);
    procgen_cache_get(&pc, 42, &c);
    assert_ptr_equal(procgen_cache_get(&pc, 42, &a), ea);       /* a is now the most recent */
    assert_int_equal(pc.hits, 1);
    assert_int_equal(pc.misses, 3);
    /* a rendering held by an answer outlives its entry */
    ea->bin = fv_shared_new("x", 1);
    fv_shared_t *held = ea->bin;
    fv_shared_ref(held);
    procgen_cache_get(&pc, 42, &d);                             /* evicts b, the oldest */
    assert_int_equal(pc.count, 3);
    assert_null(pc.by_slot[1 * FV_REGION_CELLS + 2]);
    procgen_cache_get(&pc, 42, &a);
    assert_int_equal(pc.misses, 4);                             /* a stayed */
    procgen_cache_get(&pc, 42, &b);                             /* evicts c */
    procgen_cache_get(&pc, 42, &d);
    procgen_cache_get(&pc, 42, &a);
    assert_int_equal(pc.misses, 5);
    procgen_cache_get(&pc, 42, &c);                             /* evicts b */
    procgen_cache_get(&pc, 42, &b);                             /* evicts d: b c a */
    procgen_cache_get(&pc, 42, &d);                             /* evicts a, the oldest */
    assert_null(pc.by_slot[1 * FV_REGION_CELLS + 1]);
    assert_int_equal(pc.misses, 8);
    assert_int_equal(fv_shared_len(held), 1);
    assert_memory_equal(fv_shared_data(held), "x", 1);
    fv_shared_unref(held);
    assert_int_equal(pc.count, 3);
    procgen_cache_dispose(&pc);
    assert_int_equal(pc.count, 0);
}

static void one_entry(void **state)
{
    (void)state;
    procgen_cache_init(&pc, 0);                                 /* raised to 1 */
    fv_cell_t a = {1, 0, 0}, b = {1, 0, 1};
    procgen_cache_get(&pc, 7, &a);
    procgen_entry_t *eb = procgen_cache_get(&pc, 7, &b);
    assert_int_equal(pc.count, 1);
    assert_ptr_equal(pc.head, eb);
    assert_ptr_equal(pc.tail, eb);
    procgen_cache_dispose(&pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lru_and_ceiling),
        cmocka_unit_test(one_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
