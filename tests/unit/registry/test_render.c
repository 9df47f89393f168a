/* test_render.c - the directly written views say what the jansson views say: every view, on
 * an empty catalog, a name nobody has, and instances with tags, Meta that needs escaping,
 * check outputs, no TTL and the passing filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/json.h"
#include "registry/render.h"

static void reg(registry_catalog_t *cat, const char *text)
{
    fv_error_t err;
    json_t *j = fv_json_parse(fv_slice_cstr(text), &err);
    assert_non_null(j);
    registry_instance_t *inst = NULL;
    assert_int_equal(registry_instance_from_json(j, 30000, &inst, &err), 0);
    json_decref(j);
    assert_int_equal(registry_catalog_register(cat, inst, 0, NULL), 0);
}

static void same(json_t *want, int rc, fv_buf_t *b)
{
    assert_int_equal(rc, 0);
    fv_error_t err;
    json_t *got = fv_json_parse(fv_buf_slice(b), &err);
    if (!got)
        fail_msg("not JSON: %.*s", (int)b->len, b->ptr);
    if (!json_equal(got, want))
        fail_msg("differs: %.*s", (int)b->len, b->ptr);
    json_decref(got);
    json_decref(want);
    fv_buf_reset(b);
}

static void check_all(registry_catalog_t *cat)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    same(registry_json_agent_services(cat), registry_render_agent_services(cat, &b), &b);
    const char *names[] = {"web", "db", "nobody"};
    for (size_t i = 0; i < 3; i++) {
        same(registry_json_catalog_service(cat, names[i]),
             registry_render_catalog_service(cat, names[i], &b), &b);
        for (int p = 0; p < 2; p++)
            same(registry_json_health_service(cat, names[i], p),
                 registry_render_health_service(cat, names[i], p, &b), &b);
    }
    fv_buf_dispose(&b);
}

static void views_agree(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    check_all(&cat);
    reg(&cat, "{\"Name\":\"web\",\"ID\":\"w1\",\"Address\":\"10.0.0.1\",\"Port\":80,"
              "\"Tags\":[\"a\",\"b\\\"q\"],\"Meta\":{\"k\":\"v\\n\\u0001\\\\\",\"k2\":\"ü\"},"
              "\"Check\":{\"TTL\":\"10s\"}}");
    reg(&cat, "{\"Name\":\"web\",\"ID\":\"w2\",\"Port\":81}");
    reg(&cat, "{\"Name\":\"db\",\"ID\":\"d1\",\"Address\":\"db.local\",\"Port\":5432}");
    assert_int_equal(registry_catalog_check_update(&cat, "service:w2", REGISTRY_CRITICAL,
                                                   "down \"hard\"\t", 1, NULL), 0);
    check_all(&cat);
    registry_catalog_dispose(&cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(views_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
