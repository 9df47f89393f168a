/* test_token.c - the generated registry token: made once (0600, 64 hex digits), the same on
 * every later call, readable by the client's reader, and a broken file refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry/acl.h"
#include "registry/token.h"

static void made_once_and_read(void **state)
{
    char tmpl[] = "/tmp/fv_registry_token_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char a[REGISTRY_TOKEN_MAX + 1], b[REGISTRY_TOKEN_MAX + 1], path[128];
    fv_error_t err;
    assert_int_equal(registry_token_read(tmpl, a, sizeof(a)), FV_ENOENT);
    assert_int_equal(registry_token_ensure(tmpl, a, sizeof(a), &err), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    snprintf(path, sizeof(path), "%s/registry/token", tmpl);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(registry_token_ensure(tmpl, b, sizeof(b), &err), 0);
    assert_string_equal(a, b);
    assert_int_equal(registry_token_read(tmpl, b, sizeof(b)), 0);
    assert_string_equal(a, b);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("no spaces allowed here\n", f);
    fclose(f);
    assert_int_equal(registry_token_read(tmpl, b, sizeof(b)), FV_EINVAL);
    assert_int_equal(registry_token_ensure(tmpl, b, sizeof(b), &err), FV_EINVAL);
    assert_non_null(strstr(err.msg, "not a usable token"));
    assert_int_equal(registry_token_ensure("", b, sizeof(b), &err), FV_EINVAL);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(made_once_and_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
