/* test_gateway_routes.c - the api-gateway's pure pieces: path normalisation below a route's
 * prefix (dot segments plain and percent-encoded, "//", refusing a climb above the prefix and
 * encoded slashes), the X-Request-Id a client may choose, and the [gateway] routes string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "services/api-gateway/gateway.h"

static const char *norm(const char *in, int *rc)
{
    static char out[256];
    size_t len = 0;
    *rc = gw_path_normalise(in, strlen(in), out, sizeof(out), &len);
    if (*rc == 0)
        assert_int_equal(len, strlen(out));
    return *rc == 0 ? out : "";
}

static void normalises(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", "/"},           {"health", "/health"},     {"a/b", "/a/b"},
        {"a/b/", "/a/b/"},   {"a//b", "/a/b"},          {"/a", "/a"},
        {"a/./b", "/a/b"},   {"a/.", "/a/"},            {"a/../b", "/b"},
        {"a/b/..", "/a/"},   {"a/%2e/b", "/a/b"},       {"a/%2E%2e/b", "/b"},
        {"a/.%2e/b", "/b"},  {"..a/b", "/..a/b"},       {"a/.../b", "/a/.../b"},
        {"a/..", "/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        const char *got = norm(cases[i][0], &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(got, cases[i][1]);
    }
}

static void refuses_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"..", "../x", "a/../..", "%2e%2e", "a/%2e./../x",
                                      "a%2fb", "a%2F..", "a%5cb", "./.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        norm(bad[i], &rc);
        assert_int_equal(rc, FV_EINVAL);
    }
    char small[4];
    size_t len;
    assert_int_equal(gw_path_normalise("abcdef", 6, small, sizeof(small), &len), FV_ETOOBIG);
}

static void request_ids(void **state)
{
    (void)state;
    assert_true(gw_request_id_ok("abc-1.2_Z", 9));
    char longest[129];
    memset(longest, 'a', sizeof(longest));
    assert_true(gw_request_id_ok(longest, 128));
    assert_false(gw_request_id_ok(longest, 129));
    assert_false(gw_request_id_ok("", 0));
    assert_false(gw_request_id_ok("a b", 3));
    assert_false(gw_request_id_ok("a\r\nb", 4));
    assert_false(gw_request_id_ok("{x}", 3));
}

static void parses_routes(void **state)
{
    (void)state;
    gw_route_t r[4];
    fv_error_t err;
    assert_int_equal(gw_routes_parse("", r, 4, &err), 0);
    assert_int_equal(gw_routes_parse(" /assets=asset-service,strip,timeout_ms=30000,"
                                     "max_body_bytes=1048576,authenticated ; /w=world-engine",
                                     r, 4, &err), 2);
    assert_string_equal(r[0].prefix, "/assets");
    assert_string_equal(r[0].service, "asset-service");
    assert_true(r[0].strip);
    assert_true(r[0].authenticated);
    assert_int_equal(r[0].timeout_ms, 30000);
    assert_int_equal(r[0].max_body_bytes, 1048576);
    assert_string_equal(r[1].prefix, "/w");
    assert_false(r[1].strip);
    assert_int_equal(r[1].timeout_ms, 0);
    static const char *const bad[] = {"assets=x", "/a/=x", "/a=", "/a=b c", "/a=b,nope",
                                      "/a=b,timeout_ms=0", "/a=b,timeout_ms=x", "/a=b;/a=c",
                                      "/a//b=c", "/a?=b", "/a=b;/b=c;/c=d;/d=e;/e=f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(gw_routes_parse(bad[i], r, 4, &err), FV_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalises),
        cmocka_unit_test(refuses_escapes),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(parses_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
