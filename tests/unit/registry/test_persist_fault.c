/* test_persist_fault.c - allocation faults in the catalog's persistence (STYLE.md sec. 12):
 * saving and loading a catalog of a few hundred instances with the Nth checked allocation
 * failing, for N = 1, 2, ... until none fails. A failed save returns a clean error and leaves
 * the previous file as it was; a failed load returns an error and never moves a good file
 * aside; every other run gives the whole catalog. ASan checks for leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "registry/catalog.h"

static void fill(registry_catalog_t *cat, int n, int salt)
{
    char body[256];
    fv_error_t err;
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body),
                 "{\"Name\":\"svc-%d\",\"ID\":\"i-%d\",\"Port\":%d,\"Tags\":[\"t\\n%d\"],"
                 "\"Meta\":{\"k\":\"v\\\"%d\"}}",
                 i % 7, i, 1 + i, salt, i);
        json_t *j = fv_json_parse(fv_slice_cstr(body), &err);
        assert_non_null(j);
        registry_instance_t *inst = NULL;
        assert_int_equal(registry_instance_from_json(j, 30000, &inst, &err), 0);
        json_decref(j);
        assert_int_equal(registry_catalog_register(cat, inst, 0, NULL), 0);
    }
}

/* How many instances the file in dir holds; it must load, and never as corrupt. */
static size_t file_count(const char *dir)
{
    registry_catalog_t back;
    registry_catalog_init(&back, 30000);
    bool corrupt = true;
    fv_error_t err;
    assert_int_equal(registry_persist_load(&back, dir, 0, &corrupt, &err), 0);
    assert_false(corrupt);
    size_t n = back.count;
    registry_catalog_dispose(&back);
    return n;
}

/* After a save with the Nth allocation failing: true when no fault hit (the new file, with
 * 310 instances, is there), false when one did (an error, and the earlier 300 are whole). */
static bool saved_whole(int rc, bool failed, const char *dir)
{
    if (!failed) {
        assert_int_equal(rc, 0);
        assert_int_equal(file_count(dir), 310);
        return true;
    }
    assert_true(rc < 0);
    assert_int_equal(file_count(dir), 300);
    return false;
}

static void save_and_load_under_faults(void **state)
{
    char dir[] = "/tmp/fv_registry_fault_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fv_log_set_level(FV_LOG_ERROR);
    registry_catalog_t first, second;
    registry_catalog_init(&first, 30000);
    registry_catalog_init(&second, 30000);
    fill(&first, 300, 1);
    fill(&second, 310, 2);
    fv_error_t err;
    assert_int_equal(registry_persist_save(&first, dir, &err), 0);

    unsigned long n;
    for (n = 1;; n++) {
        fv_alloc_fail_at(n);
        int rc = registry_persist_save(&second, dir, &err);
        bool failed = fv_alloc_failed();
        fv_alloc_fail_at(0);
        if (saved_whole(rc, failed, dir))
            break;
    }
    assert_true(n > 1);

    for (n = 1;; n++) {
        registry_catalog_t back;
        registry_catalog_init(&back, 30000);
        bool corrupt = true;
        fv_alloc_fail_at(n);
        int rc = registry_persist_load(&back, dir, 0, &corrupt, &err);
        bool failed = fv_alloc_failed();
        fv_alloc_fail_at(0);
        assert_false(corrupt);   /* a fault is never mistaken for a bad file */
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_int_equal(back.count, 310);
            registry_catalog_dispose(&back);
            break;
        }
        assert_true(rc < 0 || back.count == 310);
        registry_catalog_dispose(&back);
    }
    char aside[128];
    snprintf(aside, sizeof(aside), "%s/registry/catalog.json.corrupt", dir);
    assert_int_equal(access(aside, F_OK), -1);

    registry_catalog_dispose(&first);
    registry_catalog_dispose(&second);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    fv_log_set_level(FV_LOG_INFO);
}

/* The save in parts (a walk over several steps, then the write) under the same faults: a
 * failed step is an error that leaves the earlier file whole, and the catalog unpinned. */
static void save_in_parts_under_faults(void **state)
{
    (void)state;
    char dir[] = "/tmp/fv_registry_fault_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fv_log_set_level(FV_LOG_ERROR);
    registry_catalog_t first;
    registry_catalog_init(&first, 30000);
    fill(&first, 300, 1);
    fv_error_t err;
    assert_int_equal(registry_persist_save(&first, dir, &err), 0);
    registry_catalog_dispose(&first);

    unsigned long n;
    for (n = 1;; n++) {
        /* a fresh catalog each time, so every piece is made under the fault */
        registry_catalog_t cat;
        registry_catalog_init(&cat, 30000);
        fill(&cat, 310, 2);
        fv_alloc_fail_at(n);
        registry_persist_parts_t parts;
        int rc = registry_persist_begin(&cat, &parts, &err);
        while (rc == 0 && (rc = registry_persist_step(&cat, &parts, 4096, 64, &err)) == FV_EAGAIN)
            rc = 0;
        if (rc == 0)
            rc = registry_persist_write_parts(dir, &parts, &err);
        bool failed = fv_alloc_failed();
        fv_alloc_fail_at(0);
        registry_persist_parts_dispose(&cat, &parts);
        assert_false(cat.pinned);
        registry_catalog_dispose(&cat);
        if (saved_whole(rc, failed, dir))
            break;
    }
    assert_true(n > 1);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    fv_log_set_level(FV_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(save_and_load_under_faults),
        cmocka_unit_test(save_in_parts_under_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
