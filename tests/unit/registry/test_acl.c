/* test_acl.c - the registry's token rules: parsing (and every refusal with its message), the
 * default policies, name and prefix write rules, read, and token lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "registry/acl.h"

static void parse_and_rules(void **state)
{
    registry_acl_t acl;
    fv_error_t err;
    assert_int_equal(registry_acl_parse(&acl, "deny",
                                        " songs-secret = service:write:song-* , read ;"
                                        "world-secret=service:write:world-engine;"
                                        "reader-secret=read;all-secret=write;",
                                        &err), 0);
    assert_true(acl.deny);
    assert_int_equal(acl.count, 4);

    const registry_acl_token_t *songs = registry_acl_find(&acl, "songs-secret");
    const registry_acl_token_t *world = registry_acl_find(&acl, "world-secret");
    const registry_acl_token_t *reader = registry_acl_find(&acl, "reader-secret");
    const registry_acl_token_t *all = registry_acl_find(&acl, "all-secret");
    assert_non_null(songs);
    assert_non_null(world);
    assert_non_null(reader);
    assert_non_null(all);
    assert_null(registry_acl_find(&acl, "songs-secre"));
    assert_null(registry_acl_find(&acl, "songs-secretX"));
    assert_null(registry_acl_find(&acl, ""));
    assert_null(registry_acl_find(&acl, NULL));

    assert_true(registry_acl_can_write(&acl, songs, "song-engine"));
    assert_true(registry_acl_can_write(&acl, songs, "song-"));
    assert_false(registry_acl_can_write(&acl, songs, "world-engine"));
    assert_true(registry_acl_can_write(&acl, world, "world-engine"));
    assert_false(registry_acl_can_write(&acl, world, "world-engine-2"));
    assert_false(registry_acl_can_write(&acl, reader, "song-engine"));
    assert_true(registry_acl_can_write(&acl, all, "anything"));
    assert_false(registry_acl_can_write(&acl, NULL, "song-engine"));
    /* write implies read; the anonymous token reads only under allow */
    assert_true(registry_acl_can_read(&acl, songs));
    assert_true(registry_acl_can_read(&acl, reader));
    assert_false(registry_acl_can_read(&acl, NULL));

    assert_int_equal(registry_acl_add_admin(&acl, "admin-secret"), 0);
    assert_int_equal(registry_acl_add_admin(&acl, "admin-secret"), FV_EEXIST);
    assert_int_equal(registry_acl_add_admin(&acl, "short"), FV_EINVAL);
    assert_true(registry_acl_can_write(&acl, registry_acl_find(&acl, "admin-secret"), "x"));
    registry_acl_dispose(&acl);

    /* allow: the anonymous token reads and writes, but owns no rules */
    assert_int_equal(registry_acl_parse(&acl, "allow", "", &err), 0);
    assert_false(acl.deny);
    assert_true(registry_acl_can_read(&acl, NULL));
    assert_true(registry_acl_can_write(&acl, NULL, "x"));
    assert_false(registry_acl_token_writes(NULL, "x"));
    registry_acl_dispose(&acl);
    assert_int_equal(registry_acl_parse(&acl, NULL, NULL, &err), 0);
    assert_false(acl.deny);
    registry_acl_dispose(&acl);
}

static void refusals(void **state)
{
    static const struct {
        const char *policy, *tokens, *msg;
    } bad[] = {
        {"maybe", "", "registry.acl_default_policy: \"maybe\" is not allow or deny"},
        {"deny", "secret-one", "token 1: expected <secret>=<rules>"},
        {"deny", "short=read", "token 1: a secret is 8..128 characters"},
        {"deny", "bad secret=read", "token 1: a secret is"},
        {"deny", "good-secret=read;good-secret=write", "token 2: given twice"},
        {"deny", "good-secret=", "token 1 has no rules"},
        {"deny", "good-secret=admin", "token 1: unknown rule \"admin\""},
        {"deny", "good-secret=service:read:x", "unknown rule"},
        {"deny", "good-secret=service:write:", "is not a service name"},
        {"deny", "good-secret=service:write:a/b", "is not a service name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        registry_acl_t acl;
        fv_error_t err;
        assert_int_equal(registry_acl_parse(&acl, bad[i].policy, bad[i].tokens, &err),
                         FV_EINVAL);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s: expected '%s' in '%s'", bad[i].tokens, bad[i].msg, err.msg);
        assert_int_equal(acl.count, 0);
        registry_acl_dispose(&acl);
    }
    /* service:write:* is every service */
    registry_acl_t acl;
    fv_error_t err;
    assert_int_equal(registry_acl_parse(&acl, "deny", "good-secret=service:write:*", &err), 0);
    assert_true(registry_acl_can_write(&acl, registry_acl_find(&acl, "good-secret"), "zz"));
    registry_acl_dispose(&acl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_and_rules),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
