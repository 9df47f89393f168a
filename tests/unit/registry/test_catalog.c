/* test_catalog.c - the registry's pure state: validation messages, upsert and index bumps, TTL
 * to critical to removal with injected times, next_deadline, the passing filter, the blocking
 * rule, the Consul JSON field names, and the persistence round trip with a corrupt file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "registry/catalog.h"

static registry_instance_t *parse_ok(const char *text)
{
    fv_error_t err;
    json_t *j = fv_json_parse(fv_slice_cstr(text), &err);
    assert_non_null(j);
    registry_instance_t *inst = NULL;
    int rc = registry_instance_from_json(j, 30000, &inst, &err);
    if (rc != 0)
        fail_msg("unexpected: %s", err.msg);
    json_decref(j);
    return inst;
}

static void expect_error(const char *text, const char *msg)
{
    fv_error_t err;
    fv_error_clear(&err);
    json_t *j = fv_json_parse(fv_slice_cstr(text), &err);
    assert_non_null(j);
    registry_instance_t *inst = NULL;
    assert_int_equal(registry_instance_from_json(j, 30000, &inst, &err), FV_EINVAL);
    assert_null(inst);
    assert_int_equal(err.code, FV_EINVAL);
    if (!strstr(err.msg, msg))
        fail_msg("for %s: expected '%s' in '%s'", text, msg, err.msg);
    json_decref(j);
}

static void reg(registry_catalog_t *cat, const char *text, uint64_t now, bool expect_change)
{
    bool changed = !expect_change;
    assert_int_equal(registry_catalog_register(cat, parse_ok(text), now, &changed), 0);
    assert_int_equal(changed, expect_change);
}

static void durations(void **state)
{
    uint64_t ms;
    assert_int_equal(registry_parse_duration("10s", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(registry_parse_duration("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(registry_parse_duration("1m", &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(registry_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(registry_parse_duration("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(registry_parse_duration("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    const char *bad[] = {"", "10", "s", "10x", "-1s", "10 s", "1s2", "ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(registry_parse_duration(bad[i], &ms), FV_EINVAL);
}

static void parse_defaults_and_fields(void **state)
{
    registry_instance_t *a = parse_ok("{\"Name\":\"song-engine\",\"Port\":3001}");
    assert_string_equal(a->id, "song-engine");
    assert_string_equal(a->address, "");
    assert_int_equal(a->port, 3001);
    assert_int_equal(a->ttl_ms, 0);
    assert_int_equal(a->deregister_after_ms, 30000);
    assert_int_equal(a->status, REGISTRY_PASSING);
    registry_instance_free(a);

    a = parse_ok("{\"Name\":\"s\",\"ID\":\"s-1\",\"Address\":\"10.0.0.1\",\"Port\":8080,"
                 "\"Tags\":[\"a\",\"b\"],\"Meta\":{\"k\":\"v\"},"
                 "\"Check\":{\"TTL\":\"10s\",\"DeregisterCriticalServiceAfter\":\"1m\","
                 "\"Status\":\"warning\"}}");
    assert_string_equal(a->id, "s-1");
    assert_string_equal(a->address, "10.0.0.1");
    assert_int_equal(a->tag_count, 2);
    assert_string_equal(a->tags[1], "b");
    assert_int_equal(a->meta_count, 1);
    assert_string_equal(a->meta[0], "k");
    assert_string_equal(a->meta[1], "v");
    assert_int_equal(a->ttl_ms, 10000);
    assert_int_equal(a->deregister_after_ms, 60000);
    assert_int_equal(a->status, REGISTRY_WARNING);
    registry_instance_free(a);

    /* An empty ID means "use the Name", as in Consul. */
    a = parse_ok("{\"Name\":\"x\",\"ID\":\"\"}");
    assert_string_equal(a->id, "x");
    registry_instance_free(a);
}

static void validation_messages(void **state)
{
    expect_error("[]", "the body must be a JSON object");
    expect_error("{}", "Name is required");
    expect_error("{\"Name\":null}", "Name is required");
    expect_error("{\"Name\":5}", "Name must be a string");
    expect_error("{\"Name\":\"\"}", "Name must be 1..128 characters long");
    char big[300];
    snprintf(big, sizeof(big), "{\"Name\":\"%0129d\"}", 0);
    expect_error(big, "Name must be 1..128 characters long (got 129)");
    snprintf(big, sizeof(big), "{\"Name\":\"%0128d\"}", 0);
    registry_instance_free(parse_ok(big));
    expect_error("{\"Name\":\"a b\"}", "Name may contain only letters, digits");
    expect_error("{\"Name\":\"a/b\"}", "Name may contain only");
    expect_error("{\"Name\":\"a\",\"ID\":7}", "ID must be a string");
    expect_error("{\"Name\":\"a\",\"ID\":\"a:b\"}", "ID may contain only");
    expect_error("{\"Name\":\"a\",\"Port\":-1}", "Port must be an integer in 1..65535");
    expect_error("{\"Name\":\"a\",\"Port\":0}", "Port must be an integer in 1..65535");
    expect_error("{\"Name\":\"a\",\"Port\":65536}", "Port must be an integer in 1..65535");
    expect_error("{\"Name\":\"a\",\"Port\":\"80\"}", "Port must be an integer");
    expect_error("{\"Name\":\"a\",\"Address\":1}", "Address must be a string");
    expect_error("{\"Name\":\"a\",\"Tags\":\"x\"}", "Tags must be an array of strings");
    expect_error("{\"Name\":\"a\",\"Tags\":[\"x\",1]}", "Tags[1] must be a string");
    expect_error("{\"Name\":\"a\",\"Meta\":[]}", "Meta must be an object of strings");
    expect_error("{\"Name\":\"a\",\"Meta\":{\"k\":1}}", "Meta.k must be a string");
    expect_error("{\"Name\":\"a\",\"Check\":1}", "Check must be an object");
    expect_error("{\"Name\":\"a\",\"Check\":{\"TTL\":\"10\"}}",
                 "Check.TTL must be a duration like");
    expect_error("{\"Name\":\"a\",\"Check\":{\"TTL\":10}}", "Check.TTL must be a duration");
    expect_error("{\"Name\":\"a\",\"Check\":{\"TTL\":\"99ms\"}}",
                 "Check.TTL must be between 100ms and 1h");
    expect_error("{\"Name\":\"a\",\"Check\":{\"TTL\":\"61m\"}}",
                 "Check.TTL must be between 100ms and 1h");
    expect_error("{\"Name\":\"a\",\"Check\":{\"DeregisterCriticalServiceAfter\":\"x\"}}",
                 "Check.DeregisterCriticalServiceAfter must be a duration");
    expect_error("{\"Name\":\"a\",\"Check\":{\"Status\":\"ok\"}}",
                 "Check.Status must be \"passing\"");

    fv_buf_t b;
    fv_buf_init(&b, 0);
    /* Tags and Meta values at their bounds pass, one byte more does not. */
    char t[1024];
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Tags\":[\"%0256d\"]}", 0);
    registry_instance_free(parse_ok(t));
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Tags\":[\"%0257d\"]}", 0);
    expect_error(t, "Tags[0] must be at most 256 bytes");
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Meta\":{\"k\":\"%0512d\"}}", 0);
    registry_instance_free(parse_ok(t));
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Meta\":{\"k\":\"%0513d\"}}", 0);
    expect_error(t, "Meta.k must be at most 512 bytes");
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Meta\":{\"k%0128d\":\"v\"}}", 0);
    expect_error(t, "Meta keys must be 1..128 characters long (got 129)");
    snprintf(t, sizeof(t), "{\"Name\":\"a\",\"Meta\":{\"k%0127d\":\"v\"}}", 0);
    registry_instance_free(parse_ok(t));
    assert_int_equal(fv_buf_append_str(&b, "{\"Name\":\"a\",\"Tags\":["), 0);

    for (int i = 0; i < 65; i++)
        assert_int_equal(fv_buf_printf(&b, "%s\"t%d\"", i ? "," : "", i), 0);
    assert_int_equal(fv_buf_append_str(&b, "]}"), 0);
    expect_error(b.ptr, "Tags may hold at most 64 strings");
    fv_buf_reset(&b);
    assert_int_equal(fv_buf_append_str(&b, "{\"Name\":\"a\",\"Meta\":{"), 0);
    for (int i = 0; i < 65; i++)
        assert_int_equal(fv_buf_printf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i), 0);
    assert_int_equal(fv_buf_append_str(&b, "}}"), 0);
    expect_error(b.ptr, "Meta may hold at most 64 keys");
    fv_buf_dispose(&b);
}

static void addresses(void **state)
{
    const char *good[] = {"10.0.0.1", "::1", "fe80::1", "2001:db8::8a2e:370:7334", "localhost",
                          "song-engine", "a.b-c.example.com", "x1", "1host"};
    char body[512];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(body, sizeof(body), "{\"Name\":\"a\",\"Address\":\"%s\"}", good[i]);
        registry_instance_t *a = parse_ok(body);
        assert_string_equal(a->address, good[i]);
        registry_instance_free(a);
    }
    const char *bad[] = {"a\\r\\nb", "a b", "-a", "a-", "a..b", ".a", "a.", "a/b", "[::1]",
                         "http://a", "a:80", "a\\u0000b", "\\t", "caf\\u00e9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"Name\":\"a\",\"Address\":\"%s\"}", bad[i]);
        fv_error_t err;
        json_t *j = fv_json_parse(fv_slice_cstr(body), &err);
        if (!j)
            continue;   /* refused earlier by the JSON parser: as good */
        registry_instance_t *inst = NULL;
        if (registry_instance_from_json(j, 30000, &inst, &err) != FV_EINVAL)
            fail_msg("address %s was accepted", bad[i]);
        assert_non_null(strstr(err.msg, "Address must be a host name or an IP address"));
        json_decref(j);
    }
    char label[80];
    snprintf(label, sizeof(label), "%064d", 0);   /* a DNS label is at most 63 */
    snprintf(body, sizeof(body), "{\"Name\":\"a\",\"Address\":\"%s\"}", label);
    expect_error(body, "Address must be a host name");
    fv_buf_t b;
    fv_buf_init(&b, 0);
    assert_int_equal(fv_buf_append_str(&b, "{\"Name\":\"a\",\"Address\":\""), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(fv_buf_append_str(&b, "abc."), 0);
    assert_int_equal(fv_buf_append_str(&b, "d\"}"), 0);
    expect_error(b.ptr, "Address must be at most 253 characters");
    fv_buf_dispose(&b);
    expect_error("{\"Name\":\"a\",\"Meta\":{\"a b\":\"v\"}}",
                 "Meta key \"a b\" may contain only letters");
    expect_error("{\"Name\":\"a\",\"Meta\":{\"consul-x\":\"v\"}}", "reserved prefix");
    expect_error("{\"Name\":\"a\",\"Meta\":{\"\":\"v\"}}", "Meta keys must be 1..128");
}

static void register_upsert_and_indexes(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    assert_int_equal(cat.index, 1);
    assert_int_equal(registry_catalog_name_index(&cat, "s"), 1);

    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s1\",\"Port\":1}", 100, true);
    assert_int_equal(cat.index, 2);
    assert_int_equal(registry_catalog_name_index(&cat, "s"), 2);
    registry_instance_t *i1 = registry_catalog_find(&cat, "s1");
    assert_int_equal(i1->create_index, 2);
    assert_int_equal(i1->modify_index, 2);

    /* Same content: no bump, TTL restarted. */
    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s1\",\"Port\":1}", 200, false);
    assert_int_equal(cat.index, 2);
    assert_int_equal(registry_catalog_find(&cat, "s1")->last_update_ms, 200);

    /* Another name does not move s's index. */
    reg(&cat, "{\"Name\":\"t\",\"Port\":2}", 200, true);
    assert_int_equal(cat.index, 3);
    assert_int_equal(registry_catalog_name_index(&cat, "s"), 2);
    assert_int_equal(registry_catalog_name_index(&cat, "t"), 3);

    /* Changed content: bump, create index kept. */
    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s1\",\"Port\":1,\"Tags\":[\"x\"]}", 300, true);
    i1 = registry_catalog_find(&cat, "s1");
    assert_int_equal(i1->create_index, 2);
    assert_int_equal(i1->modify_index, 4);
    assert_int_equal(registry_catalog_name_index(&cat, "s"), 4);

    /* Moving an id to another name moves both names. */
    reg(&cat, "{\"Name\":\"u\",\"ID\":\"s1\",\"Port\":1}", 300, true);
    assert_true(registry_catalog_name_index(&cat, "s") > 4);
    assert_int_equal(registry_catalog_name_index(&cat, "u"), cat.index);
    assert_int_equal(registry_catalog_count(&cat, "s", false), 0);
    assert_int_equal(registry_catalog_count(&cat, "u", false), 1);

    uint64_t before = cat.index;
    assert_int_equal(registry_catalog_deregister(&cat, "s1"), 0);
    assert_int_equal(cat.index, before + 1);
    assert_int_equal(registry_catalog_name_index(&cat, "u"), before + 1);
    assert_int_equal(registry_catalog_deregister(&cat, "s1"), FV_ENOENT);
    assert_int_equal(cat.index, before + 1);
    assert_int_equal(registry_catalog_count(&cat, NULL, false), 1);
    registry_catalog_dispose(&cat);
}

static void check_updates(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    reg(&cat, "{\"Name\":\"s\",\"Check\":{\"TTL\":\"1s\"}}", 0, true);
    uint64_t idx = cat.index;
    bool changed = true;
    assert_int_equal(registry_catalog_check_update(&cat, "service:s", REGISTRY_PASSING, NULL, 50,
                                                   &changed), 0);
    assert_false(changed);
    assert_int_equal(cat.index, idx);
    assert_int_equal(registry_catalog_find(&cat, "s")->last_update_ms, 50);

    assert_int_equal(registry_catalog_check_update(&cat, "service:s", REGISTRY_WARNING, "slow",
                                                   60, &changed), 0);
    assert_true(changed);
    assert_int_equal(cat.index, idx + 1);
    assert_string_equal(registry_catalog_find(&cat, "s")->output, "slow");
    /* Same status, new output: still a change (the output is shown to people). */
    assert_int_equal(registry_catalog_check_update(&cat, "s", REGISTRY_WARNING, "slower", 70,
                                                   &changed), 0);
    assert_true(changed);
    assert_int_equal(registry_catalog_check_update(&cat, "service:nope", REGISTRY_PASSING, NULL,
                                                   70, &changed), FV_ENOENT);
    assert_false(changed);
    assert_int_equal(registry_catalog_check_update(&cat, "service:s", REGISTRY_CRITICAL, "down",
                                                   80, &changed), 0);
    assert_int_equal(registry_catalog_find(&cat, "s")->critical_since_ms, 80);
    assert_int_equal(registry_catalog_count(&cat, "s", true), 0);
    assert_int_equal(registry_catalog_count(&cat, "s", false), 1);
    registry_catalog_dispose(&cat);
}

static void ttl_expiry_and_removal(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    reg(&cat, "{\"Name\":\"s\",\"Check\":{\"TTL\":\"1s\",\"DeregisterCriticalServiceAfter\":"
              "\"5s\"}}", 1000, true);
    reg(&cat, "{\"Name\":\"forever\"}", 1000, true);
    assert_int_equal(registry_catalog_next_deadline(&cat, 1000), 2000);
    assert_int_equal(registry_catalog_expire(&cat, 1999), 0);

    /* A heartbeat pushes the deadline. */
    assert_int_equal(registry_catalog_check_update(&cat, "service:s", REGISTRY_PASSING, "", 1500,
                                                   NULL), 0);
    assert_int_equal(registry_catalog_next_deadline(&cat, 1600), 2500);
    uint64_t idx = cat.index;
    assert_int_equal(registry_catalog_expire(&cat, 2600), 1);
    registry_instance_t *s = registry_catalog_find(&cat, "s");
    assert_int_equal(s->status, REGISTRY_CRITICAL);
    assert_string_equal(s->output, "TTL expired");
    assert_int_equal(s->critical_since_ms, 2500);
    assert_int_equal(cat.index, idx + 1);
    assert_int_equal(registry_catalog_name_index(&cat, "s"), idx + 1);
    assert_int_equal(registry_catalog_count(&cat, "s", true), 0);

    /* Removal is measured from the moment the TTL ran out. */
    assert_int_equal(registry_catalog_next_deadline(&cat, 2600), 7500);
    assert_int_equal(registry_catalog_expire(&cat, 7499), 0);
    assert_non_null(registry_catalog_find(&cat, "s"));
    assert_int_equal(registry_catalog_expire(&cat, 7500), 1);
    assert_null(registry_catalog_find(&cat, "s"));
    assert_int_equal(cat.index, idx + 2);
    assert_int_equal(registry_catalog_next_deadline(&cat, 8000), UINT64_MAX);
    assert_non_null(registry_catalog_find(&cat, "forever"));

    /* Both steps at once after a long pause; a deadline in the past comes back as now. */
    reg(&cat, "{\"Name\":\"p\",\"Check\":{\"TTL\":\"1s\",\"DeregisterCriticalServiceAfter\":"
              "\"1s\"}}", 10000, true);
    assert_int_equal(registry_catalog_next_deadline(&cat, 50000), 50000);
    assert_int_equal(registry_catalog_expire(&cat, 50000), 2);
    assert_null(registry_catalog_find(&cat, "p"));

    /* deregister_after 0: critical forever, never removed. */
    reg(&cat, "{\"Name\":\"k\",\"Check\":{\"TTL\":\"1s\",\"DeregisterCriticalServiceAfter\":"
              "\"0s\"}}", 0, true);
    assert_int_equal(registry_catalog_expire(&cat, 100000), 1);
    assert_int_equal(registry_catalog_expire(&cat, 900000), 0);
    assert_non_null(registry_catalog_find(&cat, "k"));
    assert_int_equal(registry_catalog_next_deadline(&cat, 900000), UINT64_MAX);
    /* A heartbeat brings it back to passing. */
    assert_int_equal(registry_catalog_check_update(&cat, "service:k", REGISTRY_PASSING, "",
                                                   900001, NULL), 0);
    assert_int_equal(registry_catalog_count(&cat, "k", true), 1);
    registry_catalog_dispose(&cat);
}

static void blocking_rule(void **state)
{
    assert_false(registry_should_block(5, 0));   /* no index: answer at once */
    assert_true(registry_should_block(5, 5));    /* client is current: wait */
    assert_false(registry_should_block(6, 5));   /* moved on: answer */
    assert_false(registry_should_block(5, 9));   /* went back (restart): answer, client resets */
}

static json_t *first(json_t *a)
{
    assert_true(json_is_array(a));
    assert_true(json_array_size(a) >= 1);
    return json_array_get(a, 0);
}

static void json_shapes(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s1\",\"Address\":\"127.0.0.1\",\"Port\":3001,"
              "\"Tags\":[\"a\",\"b\"],\"Meta\":{\"v\":\"1\"},\"Check\":{\"TTL\":\"10s\"}}", 0,
        true);
    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s2\",\"Port\":3002,\"Tags\":[\"b\",\"c\"]}", 0, true);
    reg(&cat, "{\"Name\":\"t\",\"Port\":1}", 0, true);
    assert_int_equal(registry_catalog_check_update(&cat, "service:s2", REGISTRY_CRITICAL, "x", 0,
                                                   NULL), 0);

    json_t *agent = registry_json_agent_services(&cat);
    json_t *s1 = json_object_get(agent, "s1");
    assert_string_equal(json_string_value(json_object_get(s1, "ID")), "s1");
    assert_string_equal(json_string_value(json_object_get(s1, "Service")), "s");
    assert_int_equal(json_array_size(json_object_get(s1, "Tags")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s1, "Meta"), "v")),
                        "1");
    assert_int_equal(json_integer_value(json_object_get(s1, "Port")), 3001);
    assert_string_equal(json_string_value(json_object_get(s1, "Address")), "127.0.0.1");
    assert_int_equal(json_object_size(agent), 3);
    json_decref(agent);

    json_t *svcs = registry_json_catalog_services(&cat);
    json_t *tags = json_object_get(svcs, "s");
    assert_int_equal(json_array_size(tags), 3);   /* a, b, c: the union without repeats */
    assert_string_equal(json_string_value(json_array_get(tags, 2)), "c");
    assert_int_equal(json_array_size(json_object_get(svcs, "t")), 0);
    json_decref(svcs);

    json_t *cs = registry_json_catalog_service(&cat, "s");
    assert_int_equal(json_array_size(cs), 2);
    json_t *e = first(cs);
    const char *keys[] = {"ID", "Node", "Address", "ServiceID", "ServiceName", "ServiceTags",
                          "ServiceMeta", "ServiceAddress", "ServicePort", "CreateIndex",
                          "ModifyIndex"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_object_get(e, keys[i]))
            fail_msg("catalog entry misses %s", keys[i]);
    assert_string_equal(json_string_value(json_object_get(e, "Node")), "finalverse");
    assert_string_equal(json_string_value(json_object_get(e, "ServiceID")), "s1");
    assert_int_equal(json_integer_value(json_object_get(e, "ServicePort")), 3001);
    assert_int_equal(json_integer_value(json_object_get(e, "CreateIndex")), 2);
    json_decref(cs);
    cs = registry_json_catalog_service(&cat, "none");
    assert_int_equal(json_array_size(cs), 0);
    json_decref(cs);

    json_t *h = registry_json_health_service(&cat, "s", false);
    assert_int_equal(json_array_size(h), 2);
    e = first(h);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "Node"), "Node")),
                        "finalverse");
    assert_non_null(json_object_get(json_object_get(e, "Node"), "Address"));
    json_t *svc = json_object_get(e, "Service");
    const char *skeys[] = {"ID", "Service", "Tags", "Meta", "Address", "Port"};
    for (size_t i = 0; i < sizeof(skeys) / sizeof(skeys[0]); i++)
        if (!json_object_get(svc, skeys[i]))
            fail_msg("health Service misses %s", skeys[i]);
    json_t *chk = first(json_object_get(e, "Checks"));
    const char *ckeys[] = {"Node", "CheckID", "Name", "Status", "Output", "ServiceID",
                           "ServiceName"};
    for (size_t i = 0; i < sizeof(ckeys) / sizeof(ckeys[0]); i++)
        if (!json_object_get(chk, ckeys[i]))
            fail_msg("health check misses %s", ckeys[i]);
    assert_string_equal(json_string_value(json_object_get(chk, "CheckID")), "service:s1");
    assert_string_equal(json_string_value(json_object_get(chk, "Status")), "passing");
    json_decref(h);

    h = registry_json_health_service(&cat, "s", true);
    assert_int_equal(json_array_size(h), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first(h), "Service"), "ID")), "s1");
    json_decref(h);
    registry_catalog_dispose(&cat);
}

/* ---- persistence ---- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/fv_registry_test_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return fv_strdup(d);
}

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void persist_round_trip(void **state)
{
    char *dir = make_tmpdir();
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    reg(&cat, "{\"Name\":\"s\",\"ID\":\"s1\",\"Address\":\"a\",\"Port\":3001,\"Tags\":[\"x\"],"
              "\"Meta\":{\"k\":\"v\"},\"Check\":{\"TTL\":\"10s\","
              "\"DeregisterCriticalServiceAfter\":\"1m\"}}", 5, true);
    reg(&cat, "{\"Name\":\"t\"}", 5, true);
    assert_int_equal(registry_catalog_check_update(&cat, "service:t", REGISTRY_CRITICAL, "bad",
                                                   5, NULL), 0);
    assert_int_equal(registry_catalog_deregister(&cat, "t"), 0);
    reg(&cat, "{\"Name\":\"t\",\"Check\":{\"Status\":\"warning\"}}", 5, true);
    fv_error_t err;
    assert_int_equal(registry_persist_save(&cat, dir, &err), 0);

    registry_catalog_t back;
    registry_catalog_init(&back, 30000);
    bool corrupt = true;
    assert_int_equal(registry_persist_load(&back, dir, 777, &corrupt, &err), 0);
    assert_false(corrupt);
    assert_int_equal(back.index, cat.index);
    assert_int_equal(back.count, 2);
    assert_int_equal(registry_catalog_name_index(&back, "s"),
                     registry_catalog_name_index(&cat, "s"));
    assert_int_equal(registry_catalog_name_index(&back, "t"),
                     registry_catalog_name_index(&cat, "t"));
    registry_instance_t *s = registry_catalog_find(&back, "s1");
    assert_non_null(s);
    assert_string_equal(s->address, "a");
    assert_int_equal(s->port, 3001);
    assert_string_equal(s->tags[0], "x");
    assert_string_equal(s->meta[1], "v");
    assert_int_equal(s->ttl_ms, 10000);
    assert_int_equal(s->deregister_after_ms, 60000);
    assert_int_equal(s->last_update_ms, 777);   /* the TTL starts again at load */
    assert_int_equal(s->create_index, registry_catalog_find(&cat, "s1")->create_index);
    assert_int_equal(registry_catalog_find(&back, "t")->status, REGISTRY_WARNING);

    /* The JSON views agree. */
    json_t *a = registry_json_health_service(&cat, "s", false);
    json_t *b = registry_json_health_service(&back, "s", false);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);

    /* No temp file is left behind. */
    char p[600];
    snprintf(p, sizeof(p), "%s/registry/catalog.json.tmp", dir);
    assert_int_equal(access(p, F_OK), -1);

    registry_catalog_dispose(&back);
    registry_catalog_dispose(&cat);
    rm_rf(dir);
    fv_free(dir);
}

static void persist_missing_and_corrupt(void **state)
{
    char *dir = make_tmpdir();
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    bool corrupt = true;
    fv_error_t err;
    assert_int_equal(registry_persist_load(&cat, dir, 0, &corrupt, &err), 0);
    assert_false(corrupt);
    assert_int_equal(cat.count, 0);

    const char *bad[] = {
        "{not json",
        "[]",
        "{\"version\":2,\"index\":3,\"names\":{},\"instances\":[]}",
        "{\"version\":1,\"index\":3,\"names\":{\"s\":9},\"instances\":[]}",
        "{\"version\":1,\"index\":3,\"names\":{},\"instances\":{}}",
        "{\"version\":1,\"index\":3,\"names\":{},\"instances\":[{\"Name\":\"s\"}]",
    };
    char sub[600], path[700], aside[700];
    snprintf(sub, sizeof(sub), "%s/registry", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof(path), "%s/catalog.json", sub);
    snprintf(aside, sizeof(aside), "%s/catalog.json.corrupt", sub);
    fv_log_set_level(FV_LOG_ERROR);   /* the warn is expected; keep the test output quiet */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        reg(&cat, "{\"Name\":\"leftover\"}", 0, true);
        corrupt = false;
        assert_int_equal(registry_persist_load(&cat, dir, 0, &corrupt, &err), 0);
        if (!corrupt)
            fail_msg("document %zu was accepted", i);
        assert_int_equal(cat.count, 0);
        assert_int_equal(cat.index, 1);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(access(aside, F_OK), 0);
    }
    fv_log_set_level(FV_LOG_INFO);
    registry_catalog_dispose(&cat);
    rm_rf(dir);
    fv_free(dir);
}

/* The file's size stays under the byte count, whatever the entries hold, so the file always
 * loads; registers past the limits are refused with a message and change nothing. */
static void limits_and_bytes(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    cat.max_instances = 3;
    reg(&cat, "{\"Name\":\"a\",\"ID\":\"a1\"}", 0, true);
    reg(&cat, "{\"Name\":\"a\",\"ID\":\"a2\"}", 0, true);
    reg(&cat, "{\"Name\":\"b\",\"ID\":\"b1\",\"Meta\":{\"q\":\"\\n\\n\\\"\\\\\"}}", 0, true);
    uint64_t index = cat.index;
    bool changed = true;
    assert_int_equal(registry_catalog_register(&cat, parse_ok("{\"Name\":\"c\"}"), 0, &changed),
                     FV_ETOOBIG);
    assert_false(changed);
    assert_int_equal(cat.index, index);
    fv_error_t err;
    registry_catalog_full_msg(&cat, &err);
    assert_int_equal(err.code, FV_ETOOBIG);
    assert_non_null(strstr(err.msg, "the catalog is full: 3 instances"));
    /* An upsert of an id already in is no new instance. */
    reg(&cat, "{\"Name\":\"a\",\"ID\":\"a1\",\"Port\":1}", 0, true);

    /* Bytes: room for a few small instances only. */
    cat.max_instances = 1000;
    cat.max_bytes = cat.bytes + 600;
    fv_buf_t b;
    fv_buf_init(&b, 0);
    assert_int_equal(fv_buf_append_str(&b, "{\"Name\":\"big\",\"Meta\":{"), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(fv_buf_printf(&b, "%s\"k%d\":\"%0500d\"", i ? "," : "", i, 0), 0);
    assert_int_equal(fv_buf_append_str(&b, "}}"), 0);
    assert_int_equal(registry_catalog_register(&cat, parse_ok(b.ptr), 0, NULL), FV_ETOOBIG);
    registry_catalog_full_msg(&cat, &err);
    assert_non_null(strstr(err.msg, "bytes used"));
    assert_null(registry_catalog_find(&cat, "big"));
    /* The same growth on an existing id is refused too, and the old entry stays. */
    fv_buf_reset(&b);
    assert_int_equal(fv_buf_append_str(&b, "{\"Name\":\"a\",\"ID\":\"a2\",\"Meta\":{"), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(fv_buf_printf(&b, "%s\"k%d\":\"%0500d\"", i ? "," : "", i, 0), 0);
    assert_int_equal(fv_buf_append_str(&b, "}}"), 0);
    assert_int_equal(registry_catalog_register(&cat, parse_ok(b.ptr), 0, NULL), FV_ETOOBIG);
    assert_int_equal(registry_catalog_find(&cat, "a2")->meta_count, 0);
    fv_buf_dispose(&b);

    /* A note that does not fit is dropped; the status still changes. */
    char note[2000];
    memset(note, 'n', sizeof(note) - 1);
    note[sizeof(note) - 1] = '\0';
    assert_int_equal(registry_catalog_check_update(&cat, "service:a1", REGISTRY_WARNING, note, 0,
                                                   NULL), 0);
    registry_instance_t *a1 = registry_catalog_find(&cat, "a1");
    assert_int_equal(a1->status, REGISTRY_WARNING);
    assert_string_equal(a1->output, "");
    /* With room, a long note is cut to REGISTRY_OUTPUT_MAX on a character boundary. */
    cat.max_bytes = REGISTRY_MAX_BYTES;
    memcpy(note + REGISTRY_OUTPUT_MAX - 1, "\xc3\xa9", 2);   /* 'é' across the cut */
    assert_int_equal(registry_catalog_check_update(&cat, "service:a1", REGISTRY_PASSING, note, 0,
                                                   NULL), 0);
    assert_int_equal(strlen(a1->output), REGISTRY_OUTPUT_MAX - 1);
    assert_int_equal(registry_catalog_check_update(&cat, "service:a1", REGISTRY_PASSING,
                                                   "\xff\xfe", 0, NULL), FV_EINVAL);

    /* Empty names make room when room is short. */
    assert_int_equal(registry_catalog_deregister(&cat, "b1"), 0);
    size_t before = cat.name_count;
    registry_instance_t *probe = parse_ok("{\"Name\":\"n\"}");
    cat.max_bytes = cat.bytes + registry_instance_cost(probe) + registry_name_cost("n") - 10;
    registry_instance_free(probe);
    reg(&cat, "{\"Name\":\"n\"}", 0, true);
    assert_int_equal(cat.name_count, before);   /* "b" went, "n" came */
    assert_int_equal(registry_catalog_name_index(&cat, "b"), 1);

    /* The byte count bounds the file, and the file's writer says what the dump says. */
    json_t *doc = registry_catalog_dump(&cat);
    fv_buf_t out;
    fv_buf_init(&out, 0);
    assert_int_equal(fv_json_dump(doc, &out), 0);
    assert_true(out.len <= cat.bytes);
    fv_buf_reset(&out);
    assert_int_equal(registry_persist_render(&cat, &out, &err), 0);
    assert_true(out.len <= cat.bytes);
    json_t *written = fv_json_parse(fv_buf_slice(&out), &err);
    assert_non_null(written);
    assert_true(json_equal(written, doc));
    json_decref(written);
    fv_buf_dispose(&out);
    json_decref(doc);
    registry_catalog_dispose(&cat);
}

/* A save in parts writes the very file the whole rendering writes, renders an instance again
 * only when it changed, never more than its budgets a step, starts its walk again when an
 * instance left between steps, and holds the bytes it writes even when their instances go
 * meanwhile. */
static void persist_in_parts(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    char body[160];
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof(body), "{\"Name\":\"s%d\",\"ID\":\"i%d\",\"Port\":%d,"
                 "\"Tags\":[\"t\"],\"Meta\":{\"k\":\"v\"}}", i % 7, i, 1000 + i);
        reg(&cat, body, 5, true);
    }
    fv_error_t err;
    /* a budget of one byte renders one instance a step: 49 steps ask for another turn, the
     * 50th renders the last one and ends the walk */
    registry_persist_parts_t parts;
    assert_int_equal(registry_persist_begin(&cat, &parts, &err), 0);
    registry_persist_parts_t again;
    assert_int_equal(registry_persist_begin(&cat, &again, &err), FV_ECONFLICT);
    registry_persist_parts_dispose(&cat, &again);
    assert_true(cat.pinned);            /* the refused one leaves the first save's pin */
    int turns = 0, rc;
    while ((rc = registry_persist_step(&cat, &parts, 1, SIZE_MAX, &err)) == FV_EAGAIN)
        turns++;
    assert_int_equal(rc, 0);
    assert_int_equal(turns, 49);
    assert_int_equal(parts.count, 50);
    assert_int_equal(registry_persist_write_parts(dir, &parts, &err), 0);
    registry_persist_parts_dispose(&cat, &parts);

    fv_buf_t whole, file;
    fv_buf_init(&whole, 0);
    fv_buf_init(&file, 0);
    assert_int_equal(registry_persist_render(&cat, &whole, &err), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/registry/catalog.json", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(fv_buf_append(&file, chunk, n), 0);
    fclose(f);
    assert_int_equal(file.len, whole.len);
    assert_memory_equal(file.ptr, whole.ptr, whole.len);

    /* nothing changed: 10 instances a step, 4 steps ask for more, the 5th ends */
    assert_int_equal(registry_persist_begin(&cat, &parts, &err), 0);
    turns = 0;
    while ((rc = registry_persist_step(&cat, &parts, SIZE_MAX, 10, &err)) == FV_EAGAIN)
        turns++;
    assert_int_equal(rc, 0);
    assert_int_equal(turns, 4);
    registry_persist_parts_dispose(&cat, &parts);

    /* one change: one instance stale, one step of the smallest budget ends the walk */
    registry_instance_t *i3 = registry_catalog_find(&cat, "i3");
    uint64_t before = i3->persisted_index;
    assert_int_equal(registry_catalog_check_update(&cat, "service:i3", REGISTRY_CRITICAL, "down",
                                                   6, NULL), 0);
    assert_int_equal(registry_persist_begin(&cat, &parts, &err), 0);
    assert_int_equal(registry_persist_step(&cat, &parts, 1, SIZE_MAX, &err), 0);
    assert_true(i3->persisted_index > before);

    /* the pieces outlive instances removed while a write holds them */
    for (int i = 0; i < 50; i += 2) {
        snprintf(body, sizeof(body), "i%d", i);
        assert_int_equal(registry_catalog_deregister(&cat, body), 0);
    }
    assert_int_equal(registry_persist_write_parts(dir, &parts, &err), 0);
    registry_persist_parts_dispose(&cat, &parts);
    registry_catalog_t back;
    registry_catalog_init(&back, 30000);
    bool corrupt = true;
    assert_int_equal(registry_persist_load(&back, dir, 0, &corrupt, &err), 0);
    assert_false(corrupt);
    assert_int_equal(back.count, 50);
    assert_int_equal(registry_catalog_find(&back, "i3")->status, REGISTRY_CRITICAL);
    registry_catalog_dispose(&back);

    /* a removal between steps: the walk starts again and writes only what is there at its
     * end; past REGISTRY_PERSIST_RESTARTS restarts it ends in one step */
    assert_int_equal(registry_persist_begin(&cat, &parts, &err), 0);
    assert_int_equal(registry_persist_step(&cat, &parts, SIZE_MAX, 5, &err), FV_EAGAIN);
    assert_int_equal(registry_catalog_deregister(&cat, "i1"), 0);
    for (int r = 0; r < REGISTRY_PERSIST_RESTARTS; r++) {
        assert_int_equal(registry_persist_step(&cat, &parts, SIZE_MAX, 5, &err), FV_EAGAIN);
        snprintf(body, sizeof(body), "i%d", 3 + 2 * r);
        assert_int_equal(registry_catalog_deregister(&cat, body), 0);
    }
    assert_int_equal(registry_persist_step(&cat, &parts, SIZE_MAX, 5, &err), 0);
    assert_int_equal(parts.count, cat.count);
    assert_int_equal(registry_persist_write_parts(dir, &parts, &err), 0);
    registry_persist_parts_dispose(&cat, &parts);
    registry_catalog_init(&back, 30000);
    assert_int_equal(registry_persist_load(&back, dir, 0, &corrupt, &err), 0);
    assert_int_equal(back.count, cat.count);
    assert_null(registry_catalog_find(&back, "i1"));
    assert_non_null(registry_catalog_find(&back, "i49"));
    registry_catalog_dispose(&back);

    fv_buf_dispose(&whole);
    fv_buf_dispose(&file);
    registry_catalog_dispose(&cat);
    rm_rf(dir);
    fv_free(dir);
}

static void persist_skips_bad_entries(void **state)
{
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    cat.max_instances = 2;
    fv_error_t err;
    json_t *doc = fv_json_parse(fv_slice_cstr(
        "{\"version\":1,\"index\":9,\"names\":{\"s\":4,\"a b\":3},\"instances\":["
        "{\"ID\":\"x\",\"Name\":\"a b\"},"
        "{\"ID\":\"s1\",\"Name\":\"s\",\"Address\":\"a\\r\\nb\",\"Port\":1,\"Tags\":[],"
        "\"Meta\":{},\"TTLMs\":0,\"DeregisterAfterMs\":0,\"Status\":\"passing\","
        "\"Output\":\"\",\"CreateIndex\":2,\"ModifyIndex\":2},"
        "{\"ID\":\"s2\",\"Name\":\"s\",\"Address\":\"h\",\"Port\":0,\"Tags\":[],"
        "\"Meta\":{},\"TTLMs\":0,\"DeregisterAfterMs\":0,\"Status\":\"passing\","
        "\"Output\":\"\",\"CreateIndex\":3,\"ModifyIndex\":3},"
        "{\"ID\":\"s2\",\"Name\":\"s\",\"Address\":\"h\",\"Port\":2,\"Tags\":[],"
        "\"Meta\":{},\"TTLMs\":0,\"DeregisterAfterMs\":0,\"Status\":\"passing\","
        "\"Output\":\"\",\"CreateIndex\":3,\"ModifyIndex\":3},"
        "{\"ID\":\"s3\",\"Name\":\"s\",\"Address\":\"h\",\"Port\":3,\"Tags\":[],"
        "\"Meta\":{},\"TTLMs\":0,\"DeregisterAfterMs\":0,\"Status\":\"passing\","
        "\"Output\":\"\",\"CreateIndex\":4,\"ModifyIndex\":4},"
        "{\"ID\":\"s4\",\"Name\":\"s\",\"Address\":\"h\",\"Port\":4,\"Tags\":[],"
        "\"Meta\":{},\"TTLMs\":0,\"DeregisterAfterMs\":0,\"Status\":\"passing\","
        "\"Output\":\"\",\"CreateIndex\":4,\"ModifyIndex\":4}]}"), &err);
    assert_non_null(doc);
    size_t skipped = 0;
    assert_int_equal(registry_catalog_restore(&cat, doc, 0, &skipped, &err), 0);
    json_decref(doc);
    /* kept: s2 (no port) and s3; skipped: the bad name, the bad address, the duplicate s2,
     * and s4 past max_instances */
    assert_int_equal(cat.count, 2);
    assert_int_equal(skipped, 4);
    assert_int_equal(cat.max_instances, 2);
    assert_int_equal(registry_catalog_find(&cat, "s2")->port, 0);
    assert_non_null(registry_catalog_find(&cat, "s3"));
    assert_int_equal(registry_catalog_name_index(&cat, "s"), 4);
    assert_int_equal(registry_catalog_count(&cat, "s", false), 2);
    assert_int_equal(cat.index, 9);
    registry_catalog_dispose(&cat);
}

/* The indexes agree with the list they index: every instance is found by id, sits in its
 * name's list, and the heap holds exactly those with a deadline, in heap order, with its top
 * the earliest of them. */
static void check_invariants(const registry_catalog_t *cat)
{
    size_t n = 0, with_deadline = 0;
    uint64_t earliest = UINT64_MAX;
    for (const registry_instance_t *i = cat->first; i; i = i->next, n++) {
        assert_ptr_equal(registry_catalog_find(cat, i->id), i);
        if (i->deadline != UINT64_MAX) {
            with_deadline++;
            assert_ptr_equal(cat->heap[i->heap_pos], i);
            if (i->deadline < earliest)
                earliest = i->deadline;
        } else {
            assert_int_equal(i->heap_pos, SIZE_MAX);
        }
    }
    assert_int_equal(n, cat->count);
    assert_int_equal(cat->ids.count, cat->count);
    assert_int_equal(with_deadline, cat->heap_len);
    for (size_t k = 1; k < cat->heap_len; k++)
        assert_true(cat->heap[(k - 1) / 2]->deadline <= cat->heap[k]->deadline);
    assert_int_equal(registry_catalog_next_deadline(cat, 0), earliest);
    size_t in_names = 0, names = 0;
    for (const registry_name_index_t *e = cat->live; e; e = e->next, names++) {
        size_t k = 0;
        for (const registry_instance_t *i = e->first; i; i = i->name_next, k++)
            assert_string_equal(i->name, e->name);
        assert_int_equal(k, e->count);
        assert_true(k > 0);
        in_names += k;
    }
    for (const registry_name_index_t *e = cat->empty; e; e = e->next, names++)
        assert_int_equal(e->count, 0);
    assert_int_equal(in_names, cat->count);
    assert_int_equal(names, cat->name_count);
}

/* 20,000 instances over 500 names through every operation, the indexes checked after each
 * phase, and a dump and restore of the lot. Bounded work, no clock. */
static void twenty_thousand(void **state)
{
    enum { N = 20000, NAMES = 500 };
    registry_catalog_t cat;
    registry_catalog_init(&cat, 30000);
    char body[256], id[32];
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof(body),
                 "{\"Name\":\"svc-%d\",\"ID\":\"i-%d\",\"Address\":\"10.0.%d.%d\",\"Port\":%d%s}",
                 i % NAMES, i, (i / 250) % 256, i % 250, 1 + i % 60000,
                 i % 3 ? ",\"Check\":{\"TTL\":\"10s\",\"DeregisterCriticalServiceAfter\":\"1m\"}"
                       : "");
        reg(&cat, body, (uint64_t)i, true);
    }
    assert_int_equal(cat.count, N);
    check_invariants(&cat);
    assert_int_equal(registry_catalog_count(&cat, "svc-7", false), N / NAMES);

    /* heartbeats move deadlines; every 7th goes critical */
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "service:i-%d", i);
        assert_int_equal(registry_catalog_check_update(&cat, id,
                                                       i % 7 ? REGISTRY_PASSING
                                                             : REGISTRY_CRITICAL,
                                                       NULL, (uint64_t)(N + N - i), NULL), 0);
    }
    check_invariants(&cat);
    /* deregister every other one; re-register a quarter under a new name */
    for (int i = 0; i < N; i += 2) {
        snprintf(id, sizeof(id), "i-%d", i);
        assert_int_equal(registry_catalog_deregister(&cat, id), 0);
    }
    for (int i = 1; i < N; i += 4) {
        snprintf(body, sizeof(body), "{\"Name\":\"moved-%d\",\"ID\":\"i-%d\",\"Port\":9}",
                 i % 10, i);
        reg(&cat, body, 50000, true);
    }
    assert_int_equal(cat.count, N / 2);
    check_invariants(&cat);

    /* the sweep: TTLs (10 s) run out, then the critical ones are removed (1 m) */
    registry_catalog_expire(&cat, 45000);
    check_invariants(&cat);
    registry_catalog_expire(&cat, 200000);
    check_invariants(&cat);
    for (const registry_instance_t *i = cat.first; i; i = i->next)
        assert_true(i->ttl_ms == 0 || (i->status == REGISTRY_CRITICAL && !i->deregister_after_ms));

    /* a dump and a restore keep every instance and index; the writer agrees with the dump */
    json_t *doc = registry_catalog_dump(&cat);
    fv_buf_t text;
    fv_buf_init(&text, 0);
    fv_error_t werr;
    assert_int_equal(registry_persist_render(&cat, &text, &werr), 0);
    json_t *written = fv_json_parse(fv_buf_slice(&text), &werr);
    assert_non_null(written);
    assert_true(json_equal(written, doc));
    json_decref(written);
    fv_buf_dispose(&text);
    registry_catalog_t back;
    registry_catalog_init(&back, 30000);
    fv_error_t err;
    size_t skipped = 1;
    assert_int_equal(registry_catalog_restore(&back, doc, 0, &skipped, &err), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(back.count, cat.count);
    assert_int_equal(back.index, cat.index);
    assert_int_equal(back.bytes, cat.bytes);
    check_invariants(&back);
    json_t *a = registry_json_agent_services(&cat), *b = registry_json_agent_services(&back);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    json_decref(doc);
    registry_catalog_dispose(&back);
    registry_catalog_dispose(&cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),
        cmocka_unit_test(parse_defaults_and_fields),
        cmocka_unit_test(validation_messages),
        cmocka_unit_test(addresses),
        cmocka_unit_test(limits_and_bytes),
        cmocka_unit_test(persist_skips_bad_entries),
        cmocka_unit_test(twenty_thousand),
        cmocka_unit_test(register_upsert_and_indexes),
        cmocka_unit_test(check_updates),
        cmocka_unit_test(ttl_expiry_and_removal),
        cmocka_unit_test(blocking_rule),
        cmocka_unit_test(json_shapes),
        cmocka_unit_test(persist_round_trip),
        cmocka_unit_test(persist_in_parts),
        cmocka_unit_test(persist_missing_and_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
