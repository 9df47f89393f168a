/* vector_filter.c - the payload filter of vector searches: a Qdrant-like subset (must,
 * must_not, should of key/match, key/range and nested filters), checked once for shape and
 * then evaluated directly on jansson payloads. It does not index payloads: every candidate
 * is tested, which is what an exact scan does anyway. */
#include "store/vector_index.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 255

static int check_filter(const json_t *f, const char *path, int depth, fv_error_t *err);

static int check_match(const json_t *m, const char *path, fv_error_t *err)
{
    if (!json_is_object(m) || json_object_size(m) != 1)
        return fv_error_set(err, FV_EINVAL, "%s.match: must be an object with \"value\" or "
                            "\"any\"", path);
    const json_t *v = json_object_get(m, "value");
    if (v) {
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v))
            return fv_error_set(err, FV_EINVAL, "%s.match.value: must be a string, integer "
                                "or boolean", path);
        return 0;
    }
    const json_t *any = json_object_get(m, "any");
    if (!any)
        return fv_error_set(err, FV_EINVAL, "%s.match: must have \"value\" or \"any\"", path);
    if (!json_is_array(any))
        return fv_error_set(err, FV_EINVAL, "%s.match.any: must be an array", path);
    size_t i;
    const json_t *e;
    json_array_foreach(any, i, e) {
        if (!json_is_string(e) && !json_is_integer(e))
            return fv_error_set(err, FV_EINVAL, "%s.match.any[%zu]: must be a string or "
                                "integer", path, i);
    }
    return 0;
}

static int check_range(const json_t *r, const char *path, fv_error_t *err)
{
    if (!json_is_object(r) || json_object_size(r) == 0)
        return fv_error_set(err, FV_EINVAL, "%s.range: must be an object with gt, gte, lt "
                            "or lte", path);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)r, k, v) {
        if (strcmp(k, "gt") && strcmp(k, "gte") && strcmp(k, "lt") && strcmp(k, "lte"))
            return fv_error_set(err, FV_EINVAL, "%s.range: unknown bound '%s' (gt, gte, lt, "
                                "lte)", path, k);
        if (json_is_null(v))
            continue;                  /* Qdrant allows null for "no bound" */
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return fv_error_set(err, FV_EINVAL, "%s.range.%s: must be a finite number", path,
                                k);
    }
    return 0;
}

static int check_condition(const json_t *c, const char *path, int depth, fv_error_t *err)
{
    if (!json_is_object(c))
        return fv_error_set(err, FV_EINVAL, "%s: a condition must be an object", path);
    const json_t *key = json_object_get(c, "key");
    if (!key)
        return check_filter(c, path, depth + 1, err);   /* nested filter */
    size_t klen = json_string_length(key);
    if (!json_is_string(key) || klen == 0 || klen > KEY_MAX)
        return fv_error_set(err, FV_EINVAL, "%s.key: must be a string of 1..%d bytes", path,
                            KEY_MAX);
    const json_t *m = json_object_get(c, "match");
    const json_t *r = json_object_get(c, "range");
    if ((m != NULL) == (r != NULL) || json_object_size(c) != 2)
        return fv_error_set(err, FV_EINVAL, "%s: a key condition needs exactly one of "
                            "\"match\" or \"range\"", path);
    return m ? check_match(m, path, err) : check_range(r, path, err);
}

static int check_filter(const json_t *f, const char *path, int depth, fv_error_t *err)
{
    if (depth > FV_VECTOR_MAX_FILTER_DEPTH)
        return fv_error_set(err, FV_EINVAL, "%s: filters nest deeper than %d", path,
                            FV_VECTOR_MAX_FILTER_DEPTH);
    if (!json_is_object(f))
        return fv_error_set(err, FV_EINVAL, "%s: must be an object", path);
    const char *clause;
    const json_t *list;
    json_object_foreach((json_t *)f, clause, list) {
        if (strcmp(clause, "must") && strcmp(clause, "must_not") && strcmp(clause, "should"))
            return fv_error_set(err, FV_EINVAL, "%s: unknown clause '%s' (must, must_not, "
                                "should)", path, clause);
        char sub[200];
        if (json_is_object(list)) {    /* a single condition, as Qdrant also accepts */
            snprintf(sub, sizeof(sub), "%s.%s", path, clause);
            int rc = check_condition(list, sub, depth, err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!json_is_array(list))
            return fv_error_set(err, FV_EINVAL, "%s.%s: must be an array of conditions", path,
                                clause);
        size_t i;
        const json_t *c;
        json_array_foreach(list, i, c) {
            snprintf(sub, sizeof(sub), "%s.%s[%zu]", path, clause, i);
            int rc = check_condition(c, sub, depth, err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int fv_vector_filter_check(const json_t *filter, fv_error_t *err)
{
    if (!filter || json_is_null(filter))
        return 0;
    return check_filter(filter, "filter", 0, err);
}

/* "a.b.c" walks nested objects, as Qdrant's payload keys do. */
static const json_t *lookup(const json_t *payload, const char *key)
{
    const json_t *cur = payload;
    char seg[KEY_MAX + 1];
    while (cur) {
        const char *dot = strchr(key, '.');
        size_t n = dot ? (size_t)(dot - key) : strlen(key);
        if (n > KEY_MAX || !json_is_object(cur))
            return NULL;
        memcpy(seg, key, n);
        seg[n] = '\0';
        cur = json_object_get(cur, seg);
        if (!dot)
            return cur;
        key = dot + 1;
    }
    return NULL;
}

static bool scalar_eq(const json_t *a, const json_t *b)
{
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b)
               && memcmp(json_string_value(a), json_string_value(b), json_string_length(a))
                      == 0;
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) == json_is_true(b);
    return false;
}

static bool match_one(const json_t *v, const json_t *m)
{
    const json_t *want = json_object_get(m, "value");
    if (want)
        return scalar_eq(v, want);
    const json_t *any = json_object_get(m, "any");
    size_t i;
    const json_t *e;
    json_array_foreach(any, i, e) {
        if (scalar_eq(v, e))
            return true;
    }
    return false;
}

static bool range_one(const json_t *v, const json_t *r)
{
    if (!json_is_number(v))
        return false;
    double x = json_number_value(v);
    const json_t *b;
    if ((b = json_object_get(r, "gt")) && json_is_number(b) && !(x > json_number_value(b)))
        return false;
    if ((b = json_object_get(r, "gte")) && json_is_number(b) && !(x >= json_number_value(b)))
        return false;
    if ((b = json_object_get(r, "lt")) && json_is_number(b) && !(x < json_number_value(b)))
        return false;
    if ((b = json_object_get(r, "lte")) && json_is_number(b) && !(x <= json_number_value(b)))
        return false;
    return true;
}

static bool filter_match(const json_t *f, const json_t *payload);

/* An array value matches when any element does, as in Qdrant. */
static bool condition_match(const json_t *c, const json_t *payload)
{
    const json_t *key = json_object_get(c, "key");
    if (!key)
        return filter_match(c, payload);
    const json_t *v = lookup(payload, json_string_value(key));
    if (!v)
        return false;
    const json_t *m = json_object_get(c, "match");
    const json_t *r = json_object_get(c, "range");
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (m ? match_one(e, m) : range_one(e, r))
                return true;
        }
        return false;
    }
    return m ? match_one(v, m) : range_one(v, r);
}

static bool clause_any(const json_t *list, const json_t *payload, bool *empty)
{
    *empty = true;
    if (json_is_object(list)) {
        *empty = false;
        return condition_match(list, payload);
    }
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c) {
        *empty = false;
        if (condition_match(c, payload))
            return true;
    }
    return false;
}

static bool clause_all(const json_t *list, const json_t *payload)
{
    if (json_is_object(list))
        return condition_match(list, payload);
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c) {
        if (!condition_match(c, payload))
            return false;
    }
    return true;
}

static bool filter_match(const json_t *f, const json_t *payload)
{
    const json_t *l;
    bool empty;
    if ((l = json_object_get(f, "must")) && !clause_all(l, payload))
        return false;
    if ((l = json_object_get(f, "must_not")) && clause_any(l, payload, &empty))
        return false;
    if ((l = json_object_get(f, "should")) && !clause_any(l, payload, &empty) && !empty)
        return false;
    return true;
}

bool fv_vector_filter_match(const json_t *filter, const json_t *payload)
{
    if (!filter || json_is_null(filter))
        return true;
    return filter_match(filter, payload);
}
