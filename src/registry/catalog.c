/* catalog.c - the registry's pure state: validation of register bodies, upsert/deregister,
 * TTL checks, change indexes and the Consul-shaped JSON views. No sockets, clock or logging;
 * timers and HTTP live in server.c and http.c, the disk in persist.c.
 *
 * Instances sit in one list in registration order (the order of the JSON views), with a map by
 * id, a list per name (behind a map by name) and a min-heap on their next deadline, so
 * register, deregister, a heartbeat and a lookup cost O(1) or O(log n) whatever the size. */
#include "registry/catalog.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

const char *registry_status_name(registry_status_t s)
{
    switch (s) {
    case REGISTRY_PASSING:
        return "passing";
    case REGISTRY_WARNING:
        return "warning";
    case REGISTRY_CRITICAL:
        return "critical";
    }
    return "critical";
}

int registry_status_parse(const char *name, registry_status_t *out)
{
    if (strcmp(name, "passing") == 0)
        *out = REGISTRY_PASSING;
    else if (strcmp(name, "warning") == 0)
        *out = REGISTRY_WARNING;
    else if (strcmp(name, "critical") == 0)
        *out = REGISTRY_CRITICAL;
    else
        return FV_EINVAL;
    return 0;
}

void registry_catalog_init(registry_catalog_t *cat, uint32_t default_deregister_after_ms)
{
    memset(cat, 0, sizeof(*cat));
    cat->index = 1;
    cat->default_deregister_after_ms = default_deregister_after_ms;
    cat->bytes = REGISTRY_DUMP_BASE_BYTES;
    cat->max_instances = REGISTRY_MAX_INSTANCES;
    cat->max_bytes = REGISTRY_MAX_BYTES;
    registry_map_init(&cat->ids);
    registry_map_init(&cat->name_map);
}

static void free_names(registry_name_index_t *n)
{
    while (n) {
        registry_name_index_t *next = n->next;
        fv_free(n->name);
        fv_free(n);
        n = next;
    }
}

void registry_catalog_dispose(registry_catalog_t *cat)
{
    for (registry_instance_t *i = cat->first, *next; i; i = next) {
        next = i->next;
        registry_instance_free(i);
    }
    free_names(cat->live);
    free_names(cat->empty);
    registry_map_dispose(&cat->ids);
    registry_map_dispose(&cat->name_map);
    fv_free(cat->heap);
    for (size_t i = 0; i < cat->change_count; i++)
        fv_free(cat->changes[i]);
    fv_free(cat->changes);
    cat->pinned = false;
    registry_catalog_unpin(cat);
    fv_free(cat->graveyard);
    uint32_t dereg = cat->default_deregister_after_ms;
    size_t max_instances = cat->max_instances, max_bytes = cat->max_bytes;
    registry_catalog_init(cat, dereg);
    cat->max_instances = max_instances;
    cat->max_bytes = max_bytes;
}

void registry_instance_free(registry_instance_t *inst)
{
    if (!inst)
        return;
    fv_free(inst->id);
    fv_free(inst->name);
    fv_free(inst->address);
    for (size_t i = 0; i < inst->tag_count; i++)
        fv_free(inst->tags[i]);
    fv_free(inst->tags);
    for (size_t i = 0; i < 2 * inst->meta_count; i++)
        fv_free(inst->meta[i]);
    fv_free(inst->meta);
    fv_free(inst->persisted);
    fv_free(inst->output);
    fv_free(inst);
}

void registry_catalog_retire_piece(registry_catalog_t *cat, char *p)
{
    if (!p)
        return;
    if (!cat->pinned) {
        fv_free(p);
        return;
    }
    if (cat->grave_count == cat->grave_cap) {
        cat->grave_cap = cat->grave_cap ? 2 * cat->grave_cap : 64;
        cat->graveyard = fv_realloc(cat->graveyard, cat->grave_cap * sizeof(*cat->graveyard));
    }
    cat->graveyard[cat->grave_count++] = p;
}

void registry_catalog_unpin(registry_catalog_t *cat)
{
    for (size_t i = 0; i < cat->grave_count; i++)
        fv_free(cat->graveyard[i]);
    cat->grave_count = 0;
    cat->pinned = false;
}

/* An instance leaves the catalog for good: its bytes may still be in a save's hands. */
static void drop_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    cat->removals++;
    registry_catalog_retire_piece(cat, inst->persisted);
    inst->persisted = NULL;
    registry_instance_free(inst);
}

/* ---- validation ---- */

int registry_parse_duration(const char *text, uint64_t *out_ms)
{
    const char *p = text;
    double total = 0;
    if (!p || !*p)
        return FV_EINVAL;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return FV_EINVAL;
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            return FV_EINVAL;
        p = end;
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else {
            return FV_EINVAL;
        }
        total += v * unit;
        /* Anything past a day is nonsense here and could overflow a later conversion. */
        if (total > 1e12)
            return FV_EINVAL;
    }
    *out_ms = (uint64_t)(total + 0.5);
    return 0;
}

/* Names and ids go into URL paths unescaped (the router does no percent-decoding), so both keep
 * to the characters that never need escaping. */
static int check_ident(const char *field, const char *s, fv_error_t *err)
{
    size_t len = strlen(s);
    if (len < 1 || len > REGISTRY_NAME_MAX)
        return fv_error_set(err, FV_EINVAL, "%s must be 1..%d characters long (got %zu)", field,
                            REGISTRY_NAME_MAX, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return fv_error_set(err, FV_EINVAL,
                                "%s may contain only letters, digits, '-', '_' and '.'", field);
    }
    return 0;
}

/* Consul's rule for Meta keys; they also become JSON object keys in every view. */
static int check_meta_key(const char *k, fv_error_t *err)
{
    size_t len = strlen(k);
    if (len < 1 || len > REGISTRY_META_KEY_MAX)
        return fv_error_set(err, FV_EINVAL, "Meta keys must be 1..%d characters long (got %zu)",
                            REGISTRY_META_KEY_MAX, len);
    if (strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len)
        return fv_error_set(err, FV_EINVAL,
                            "Meta key \"%.64s\" may contain only letters, digits, '-' and '_'",
                            k);
    if (strncmp(k, "consul-", 7) == 0)
        return fv_error_set(err, FV_EINVAL, "Meta key \"%.64s\" uses the reserved prefix "
                            "\"consul-\"", k);
    return 0;
}

static bool is_hostname(const char *s, size_t len)
{
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* The gateway connects to what is stored here, and the address travels in every view: only a
 * host name or an IP literal gets in, never bytes that could split a header or a log line. */
static int check_address(const char *a, fv_error_t *err)
{
    size_t len = strlen(a);
    if (len == 0)
        return 0;
    if (len > REGISTRY_ADDRESS_MAX)
        return fv_error_set(err, FV_EINVAL, "Address must be at most %d characters",
                            REGISTRY_ADDRESS_MAX);
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1 ||
        is_hostname(a, len))
        return 0;
    return fv_error_set(err, FV_EINVAL, "Address must be a host name or an IP address");
}

static int parse_check(const json_t *check, registry_instance_t *inst, fv_error_t *err)
{
    if (!json_is_object(check))
        return fv_error_set(err, FV_EINVAL, "Check must be an object");
    json_t *ttl = json_object_get(check, "TTL");
    if (ttl && !json_is_null(ttl)) {
        uint64_t ms;
        if (!json_is_string(ttl) || registry_parse_duration(json_string_value(ttl), &ms) < 0)
            return fv_error_set(err, FV_EINVAL,
                                "Check.TTL must be a duration like \"10s\", \"500ms\" or \"1m\"");
        if (ms < REGISTRY_TTL_MIN_MS || ms > REGISTRY_TTL_MAX_MS)
            return fv_error_set(err, FV_EINVAL, "Check.TTL must be between 100ms and 1h");
        inst->ttl_ms = (uint32_t)ms;
    }
    json_t *dereg = json_object_get(check, "DeregisterCriticalServiceAfter");
    if (dereg && !json_is_null(dereg)) {
        uint64_t ms;
        if (!json_is_string(dereg) ||
            registry_parse_duration(json_string_value(dereg), &ms) < 0)
            return fv_error_set(err, FV_EINVAL,
                                "Check.DeregisterCriticalServiceAfter must be a duration like "
                                "\"30s\" or \"1m\"");
        if (ms > REGISTRY_DEREGISTER_MAX_MS)
            return fv_error_set(err, FV_EINVAL,
                                "Check.DeregisterCriticalServiceAfter must be at most 24h");
        inst->deregister_after_ms = (uint32_t)ms;
    }
    json_t *status = json_object_get(check, "Status");
    if (status && !json_is_null(status)) {
        if (!json_is_string(status) ||
            registry_status_parse(json_string_value(status), &inst->status) < 0)
            return fv_error_set(err, FV_EINVAL,
                                "Check.Status must be \"passing\", \"warning\" or \"critical\"");
    }
    return 0;
}

int registry_instance_from_json(const json_t *body, uint32_t default_deregister_ms,
                                registry_instance_t **out, fv_error_t *err)
{
    if (!json_is_object(body))
        return fv_error_set(err, FV_EINVAL, "the body must be a JSON object");

    json_t *name = json_object_get(body, "Name");
    if (!name || json_is_null(name))
        return fv_error_set(err, FV_EINVAL, "Name is required");
    if (!json_is_string(name))
        return fv_error_set(err, FV_EINVAL, "Name must be a string");
    int rc = check_ident("Name", json_string_value(name), err);
    if (rc < 0)
        return rc;

    const char *id = json_string_value(name);
    json_t *jid = json_object_get(body, "ID");
    if (jid && !json_is_null(jid) && !(json_is_string(jid) && !*json_string_value(jid))) {
        if (!json_is_string(jid))
            return fv_error_set(err, FV_EINVAL, "ID must be a string");
        id = json_string_value(jid);
        if ((rc = check_ident("ID", id, err)) < 0)
            return rc;
    }

    const char *address = "";
    json_t *jaddr = json_object_get(body, "Address");
    if (jaddr && !json_is_null(jaddr)) {
        if (!json_is_string(jaddr))
            return fv_error_set(err, FV_EINVAL, "Address must be a string");
        address = json_string_value(jaddr);
        if ((rc = check_address(address, err)) < 0)
            return rc;
    }

    /* Absent means "no port", as in Consul; a port that is given must be one to connect to. */
    int port = 0;
    json_t *jport = json_object_get(body, "Port");
    if (jport && !json_is_null(jport)) {
        if (!json_is_integer(jport) || json_integer_value(jport) < 1 ||
            json_integer_value(jport) > 65535)
            return fv_error_set(err, FV_EINVAL, "Port must be an integer in 1..65535");
        port = (int)json_integer_value(jport);
    }

    json_t *jtags = json_object_get(body, "Tags");
    if (jtags && !json_is_null(jtags)) {
        if (!json_is_array(jtags))
            return fv_error_set(err, FV_EINVAL, "Tags must be an array of strings");
        if (json_array_size(jtags) > REGISTRY_MAX_TAGS)
            return fv_error_set(err, FV_EINVAL, "Tags may hold at most %d strings",
                                REGISTRY_MAX_TAGS);
        for (size_t i = 0; i < json_array_size(jtags); i++) {
            json_t *t = json_array_get(jtags, i);
            if (!json_is_string(t))
                return fv_error_set(err, FV_EINVAL, "Tags[%zu] must be a string", i);
            if (json_string_length(t) > REGISTRY_TAG_MAX)
                return fv_error_set(err, FV_EINVAL, "Tags[%zu] must be at most %d bytes", i,
                                    REGISTRY_TAG_MAX);
        }
    }

    json_t *jmeta = json_object_get(body, "Meta");
    if (jmeta && !json_is_null(jmeta)) {
        if (!json_is_object(jmeta))
            return fv_error_set(err, FV_EINVAL, "Meta must be an object of strings");
        if (json_object_size(jmeta) > REGISTRY_MAX_META)
            return fv_error_set(err, FV_EINVAL, "Meta may hold at most %d keys",
                                REGISTRY_MAX_META);
        const char *k;
        json_t *v;
        json_object_foreach(jmeta, k, v) {
            if ((rc = check_meta_key(k, err)) < 0)
                return rc;
            if (!json_is_string(v))
                return fv_error_set(err, FV_EINVAL, "Meta.%s must be a string", k);
            if (json_string_length(v) > REGISTRY_META_VALUE_MAX)
                return fv_error_set(err, FV_EINVAL, "Meta.%s must be at most %d bytes", k,
                                    REGISTRY_META_VALUE_MAX);
        }
    }

    registry_instance_t *inst = fv_calloc(1, sizeof(*inst));
    inst->deregister_after_ms = default_deregister_ms;
    json_t *check = json_object_get(body, "Check");
    if (check && !json_is_null(check) && (rc = parse_check(check, inst, err)) < 0) {
        fv_free(inst);
        return rc;
    }
    inst->name = fv_strdup(json_string_value(name));
    inst->id = fv_strdup(id);
    inst->address = fv_strdup(address);
    inst->port = port;
    inst->output = fv_strdup("");
    if (jtags && json_is_array(jtags) && json_array_size(jtags) > 0) {
        inst->tag_count = json_array_size(jtags);
        inst->tags = fv_calloc(inst->tag_count, sizeof(char *));
        for (size_t i = 0; i < inst->tag_count; i++)
            inst->tags[i] = fv_strdup(json_string_value(json_array_get(jtags, i)));
    }
    if (jmeta && json_is_object(jmeta) && json_object_size(jmeta) > 0) {
        inst->meta_count = json_object_size(jmeta);
        inst->meta = fv_calloc(2 * inst->meta_count, sizeof(char *));
        size_t i = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)jmeta, k, v) {
            inst->meta[2 * i] = fv_strdup(k);
            inst->meta[2 * i + 1] = fv_strdup(json_string_value(v));
            i++;
        }
    }
    *out = inst;
    return 0;
}

/* ---- sizes ----
 * The persisted file must never outgrow what its loader reads, whatever clients send, so every
 * instance and name entry is charged what it can take in the file at most, and a register
 * that would pass the catalog's byte bound is refused before anything changes. */

/* A JSON string at its widest: quotes, and each byte escaped as jansson would (\u00XX for
 * control characters; UTF-8 stays raw). */
static size_t str_cost(const char *s)
{
    size_t n = 2;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += *p == '"' || *p == '\\' ? 2 : *p < 0x20 ? 6 : 1;
    return n;
}

/* The fixed keys of a persisted instance with every number at its widest, its comma, and 16
 * bytes of check output ("TTL expired" fits, so a TTL expiry never needs room). */
#define INSTANCE_BASE_COST 256u
#define OUTPUT_FREE_BYTES 16u

static size_t output_cost(const char *output)
{
    size_t n = str_cost(output);
    return n > OUTPUT_FREE_BYTES ? n - OUTPUT_FREE_BYTES : 0;
}

size_t registry_instance_cost(const registry_instance_t *inst)
{
    size_t n = INSTANCE_BASE_COST + str_cost(inst->id) + str_cost(inst->name) +
               str_cost(inst->address) + output_cost(inst->output ? inst->output : "");
    for (size_t i = 0; i < inst->tag_count; i++)
        n += str_cost(inst->tags[i]) + 1;
    for (size_t i = 0; i < inst->meta_count; i++)
        n += str_cost(inst->meta[2 * i]) + str_cost(inst->meta[2 * i + 1]) + 2;
    return n;
}

size_t registry_name_cost(const char *name)
{
    return str_cost(name) + 22;   /* colon, an index of up to 20 digits, comma */
}

/* ---- names ---- */

static void list_unlink(registry_name_index_t **first, registry_name_index_t **last,
                        registry_name_index_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        *first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        *last = n->prev;
    n->prev = n->next = NULL;
}

static void list_append(registry_name_index_t **first, registry_name_index_t **last,
                        registry_name_index_t *n)
{
    n->prev = *last;
    n->next = NULL;
    if (*last)
        (*last)->next = n;
    else
        *first = n;
    *last = n;
}

static registry_name_index_t *name_slot(registry_catalog_t *cat, const char *name, bool create)
{
    registry_name_index_t *n = registry_map_get(&cat->name_map, name);
    if (n || !create)
        return n;
    n = fv_calloc(1, sizeof(*n));
    n->name = fv_strdup(name);
    registry_map_put(&cat->name_map, n->name, n);
    list_append(&cat->empty, &cat->empty_last, n);
    cat->name_count++;
    cat->bytes += registry_name_cost(name);
    return n;
}

/* An instance joins or leaves its name's list; the name moves between the live and the empty
 * list as its count crosses zero. */
static void name_add_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    registry_name_index_t *n = name_slot(cat, inst->name, true);
    if (n->count++ == 0) {
        list_unlink(&cat->empty, &cat->empty_last, n);
        list_append(&cat->live, &cat->live_last, n);
    }
    inst->name_prev = n->last;
    inst->name_next = NULL;
    if (n->last)
        n->last->name_next = inst;
    else
        n->first = inst;
    n->last = inst;
}

static void name_remove_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    registry_name_index_t *n = name_slot(cat, inst->name, false);
    if (inst->name_prev)
        inst->name_prev->name_next = inst->name_next;
    else
        n->first = inst->name_next;
    if (inst->name_next)
        inst->name_next->name_prev = inst->name_prev;
    else
        n->last = inst->name_prev;
    inst->name_prev = inst->name_next = NULL;
    if (--n->count == 0) {
        list_unlink(&cat->live, &cat->live_last, n);
        list_append(&cat->empty, &cat->empty_last, n);
    }
}

static void note_change(registry_catalog_t *cat, const char *name)
{
    if (cat->change_count == cat->change_cap) {
        cat->change_cap = cat->change_cap ? 2 * cat->change_cap : 16;
        cat->changes = fv_realloc(cat->changes, cat->change_cap * sizeof(*cat->changes));
    }
    cat->changes[cat->change_count++] = fv_strdup(name);
}

void registry_catalog_drain_changes(registry_catalog_t *cat,
                                    void (*fn)(const char *name, void *data), void *data)
{
    for (size_t i = 0; i < cat->change_count; i++) {
        registry_name_index_t *n = registry_map_get(&cat->name_map, cat->changes[i]);
        if (n)
            n->changed = false;
        if (fn)
            fn(cat->changes[i], data);
        fv_free(cat->changes[i]);
    }
    cat->change_count = 0;
}

/* Names without instances are kept only so that their watchers see removals as moves forward;
 * when room is short they go first. A watcher of a pruned name then sees the index fall back
 * to 1 and resets, as it would after a restart. Costs what it frees, nothing when nothing is
 * empty. */
static void prune_empty_names(registry_catalog_t *cat, const char *keep)
{
    registry_name_index_t *n = cat->empty, *next;
    for (; n; n = next) {
        next = n->next;
        if (keep && strcmp(n->name, keep) == 0)
            continue;
        list_unlink(&cat->empty, &cat->empty_last, n);
        registry_map_del(&cat->name_map, n->name);
        if (!n->changed)
            note_change(cat, n->name);   /* its watchers see the index fall back */
        cat->bytes -= registry_name_cost(n->name);
        cat->name_count--;
        fv_free(n->name);
        fv_free(n);
    }
}

/* Whether extra more bytes fit, making room from empty names when needed. */
static bool room_for(registry_catalog_t *cat, size_t extra, const char *keep)
{
    if (cat->bytes + extra <= cat->max_bytes)
        return true;
    prune_empty_names(cat, keep);
    return cat->bytes + extra <= cat->max_bytes;
}

void registry_catalog_full_msg(const registry_catalog_t *cat, fv_error_t *err)
{
    if (cat->count >= cat->max_instances)
        fv_error_set(err, FV_ETOOBIG,
                     "the catalog is full: %zu instances, the most it holds; deregister some "
                     "first", cat->count);
    else
        fv_error_set(err, FV_ETOOBIG,
                     "the catalog is full: %zu of %zu bytes used, and this instance does not "
                     "fit; deregister some first or send less Meta", cat->bytes, cat->max_bytes);
}

/* Every change goes through here: one global bump, and the name's index follows it. */
static uint64_t bump(registry_catalog_t *cat, const char *name)
{
    cat->index++;
    registry_name_index_t *n = name_slot(cat, name, true);
    n->index = cat->index;
    if (!n->changed) {
        n->changed = true;
        note_change(cat, name);
    }
    return cat->index;
}

uint64_t registry_catalog_name_index(const registry_catalog_t *cat, const char *name)
{
    registry_name_index_t *n = registry_map_get(&cat->name_map, name);
    return n ? n->index : 1;
}

bool registry_should_block(uint64_t current, uint64_t client_index)
{
    return client_index != 0 && client_index == current;
}

/* ---- the deadline heap ----
 * Each instance sits in a min-heap on the time expire() must next look at it (its TTL's end,
 * or its removal while critical), so the sweep timer's next deadline is the top, and a
 * heartbeat moves one entry in O(log n) instead of the sweep scanning every instance. */

static uint64_t deadline_of(const registry_instance_t *inst)
{
    if (inst->status == REGISTRY_CRITICAL)
        return inst->deregister_after_ms ? inst->critical_since_ms + inst->deregister_after_ms
                                         : UINT64_MAX;
    return inst->ttl_ms ? inst->last_update_ms + inst->ttl_ms : UINT64_MAX;
}

static void heap_set(registry_catalog_t *cat, size_t pos, registry_instance_t *inst)
{
    cat->heap[pos] = inst;
    inst->heap_pos = pos;
}

static void heap_up(registry_catalog_t *cat, size_t pos)
{
    registry_instance_t *inst = cat->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (cat->heap[parent]->deadline <= inst->deadline)
            break;
        heap_set(cat, pos, cat->heap[parent]);
        pos = parent;
    }
    heap_set(cat, pos, inst);
}

static void heap_down(registry_catalog_t *cat, size_t pos)
{
    registry_instance_t *inst = cat->heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= cat->heap_len)
            break;
        if (child + 1 < cat->heap_len && cat->heap[child + 1]->deadline < cat->heap[child]->deadline)
            child++;
        if (inst->deadline <= cat->heap[child]->deadline)
            break;
        heap_set(cat, pos, cat->heap[child]);
        pos = child;
    }
    heap_set(cat, pos, inst);
}

static void heap_remove(registry_catalog_t *cat, registry_instance_t *inst)
{
    size_t pos = inst->heap_pos;
    if (pos == SIZE_MAX)
        return;
    inst->heap_pos = SIZE_MAX;
    registry_instance_t *last = cat->heap[--cat->heap_len];
    if (last == inst)
        return;
    heap_set(cat, pos, last);
    heap_up(cat, pos);
    heap_down(cat, last->heap_pos);
}

/* After anything that moves an instance's deadline. */
static void deadline_update(registry_catalog_t *cat, registry_instance_t *inst)
{
    uint64_t d = deadline_of(inst);
    if (d == UINT64_MAX) {
        heap_remove(cat, inst);
        inst->deadline = d;
        return;
    }
    inst->deadline = d;
    if (inst->heap_pos == SIZE_MAX) {
        if (cat->heap_len == cat->heap_cap) {
            cat->heap_cap = cat->heap_cap ? 2 * cat->heap_cap : 64;
            cat->heap = fv_realloc(cat->heap, cat->heap_cap * sizeof(*cat->heap));
        }
        heap_set(cat, cat->heap_len++, inst);
        heap_up(cat, inst->heap_pos);
        return;
    }
    heap_up(cat, inst->heap_pos);
    heap_down(cat, inst->heap_pos);
}

/* ---- changes ---- */

registry_instance_t *registry_catalog_find(const registry_catalog_t *cat, const char *id)
{
    return registry_map_get(&cat->ids, id);
}

static bool strv_eq(char **a, char **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static bool same_content(const registry_instance_t *a, const registry_instance_t *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->address, b->address) == 0 &&
           a->port == b->port && a->ttl_ms == b->ttl_ms &&
           a->deregister_after_ms == b->deregister_after_ms && a->tag_count == b->tag_count &&
           strv_eq(a->tags, b->tags, a->tag_count) && a->meta_count == b->meta_count &&
           strv_eq(a->meta, b->meta, 2 * a->meta_count);
}

/* Links inst in at the end (registration order) and into every index. */
static void link_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    inst->prev = cat->last;
    inst->next = NULL;
    if (cat->last)
        cat->last->next = inst;
    else
        cat->first = inst;
    cat->last = inst;
    cat->count++;
    cat->bytes += inst->cost;
    registry_map_put(&cat->ids, inst->id, inst);
    name_add_instance(cat, inst);
    inst->heap_pos = SIZE_MAX;
    deadline_update(cat, inst);
}

static void unlink_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    if (inst->prev)
        inst->prev->next = inst->next;
    else
        cat->first = inst->next;
    if (inst->next)
        inst->next->prev = inst->prev;
    else
        cat->last = inst->prev;
    inst->prev = inst->next = NULL;
    cat->count--;
    cat->bytes -= inst->cost;
    registry_map_del(&cat->ids, inst->id);
    name_remove_instance(cat, inst);
    heap_remove(cat, inst);
}

/* inst takes old's position in registration order, its byte count and its id. */
static void take_order_place(registry_catalog_t *cat, registry_instance_t *old,
                             registry_instance_t *inst)
{
    inst->prev = old->prev;
    inst->next = old->next;
    if (old->prev)
        old->prev->next = inst;
    else
        cat->first = inst;
    if (old->next)
        old->next->prev = inst;
    else
        cat->last = inst;
    cat->bytes = cat->bytes - old->cost + inst->cost;
    registry_map_put(&cat->ids, inst->id, inst);
}

/* old leaves the deadline heap; inst enters it with its own deadline. */
static void take_deadline(registry_catalog_t *cat, registry_instance_t *old,
                          registry_instance_t *inst)
{
    heap_remove(cat, old);
    inst->heap_pos = SIZE_MAX;
    deadline_update(cat, inst);
}

/* inst takes old's place: the same position in registration order, new indexes. */
static void replace_instance(registry_catalog_t *cat, registry_instance_t *old,
                             registry_instance_t *inst)
{
    take_order_place(cat, old, inst);
    name_remove_instance(cat, old);
    name_add_instance(cat, inst);
    take_deadline(cat, old, inst);
}

/* The same, when the name stays: inst also keeps old's place among its name's instances. */
static void replace_same_name(registry_catalog_t *cat, registry_instance_t *old,
                              registry_instance_t *inst)
{
    registry_name_index_t *n = name_slot(cat, old->name, false);
    take_order_place(cat, old, inst);
    inst->name_prev = old->name_prev;
    inst->name_next = old->name_next;
    if (old->name_prev)
        old->name_prev->name_next = inst;
    else
        n->first = inst;
    if (old->name_next)
        old->name_next->name_prev = inst;
    else
        n->last = inst;
    take_deadline(cat, old, inst);
}

int registry_catalog_register(registry_catalog_t *cat, registry_instance_t *inst, uint64_t now_ms,
                              bool *changed)
{
    registry_instance_t *old = registry_catalog_find(cat, inst->id);
    inst->last_update_ms = now_ms;
    if (inst->status == REGISTRY_CRITICAL)
        inst->critical_since_ms = now_ms;
    if (changed)
        *changed = false;
    if (!old) {
        inst->cost = registry_instance_cost(inst);
        size_t need = inst->cost;
        if (!name_slot(cat, inst->name, false))
            need += registry_name_cost(inst->name);
        if (cat->count >= cat->max_instances || !room_for(cat, need, inst->name)) {
            registry_instance_free(inst);
            return FV_ETOOBIG;
        }
        link_instance(cat, inst);
        inst->create_index = inst->modify_index = bump(cat, inst->name);
    } else if (same_content(old, inst)) {
        old->last_update_ms = now_ms;
        old->owned = old->owned || inst->owned;
        deadline_update(cat, old);
        registry_instance_free(inst);
        return 0;
    } else {
        /* The check keeps its state across a content change: a service re-registering with a
         * new tag is no healthier or sicker than it was. */
        inst->cost = registry_instance_cost(inst) - output_cost(inst->output) +
                     output_cost(old->output);
        size_t need = inst->cost;
        if (!name_slot(cat, inst->name, false))
            need += registry_name_cost(inst->name);
        if (need > old->cost && !room_for(cat, need - old->cost, inst->name)) {
            registry_instance_free(inst);
            return FV_ETOOBIG;
        }
        inst->status = old->status;
        inst->critical_since_ms = old->critical_since_ms;
        fv_free(inst->output);
        inst->output = old->output;
        old->output = NULL;
        inst->create_index = old->create_index;
        inst->owned = inst->owned || old->owned;
        if (strcmp(old->name, inst->name) == 0) {
            replace_same_name(cat, old, inst);
        } else {
            replace_instance(cat, old, inst);
            bump(cat, old->name);   /* the old name lost an instance */
        }
        inst->modify_index = bump(cat, inst->name);
        drop_instance(cat, old);
    }
    if (changed)
        *changed = true;
    return 0;
}

int registry_catalog_adopt(registry_catalog_t *cat, registry_instance_t *inst)
{
    if (registry_catalog_find(cat, inst->id)) {
        registry_instance_free(inst);
        return FV_EEXIST;
    }
    link_instance(cat, inst);
    registry_name_index_t *n = name_slot(cat, inst->name, false);
    if (n->index < inst->modify_index)
        n->index = inst->modify_index;
    return 0;
}

int registry_catalog_set_name_index(registry_catalog_t *cat, const char *name, uint64_t index)
{
    if (check_ident("Name", name, NULL) < 0)
        return FV_EINVAL;
    name_slot(cat, name, true)->index = index;
    return 0;
}

static void remove_instance(registry_catalog_t *cat, registry_instance_t *inst)
{
    bump(cat, inst->name);
    unlink_instance(cat, inst);
    drop_instance(cat, inst);
}

int registry_catalog_deregister(registry_catalog_t *cat, const char *id)
{
    registry_instance_t *inst = registry_catalog_find(cat, id);
    if (!inst)
        return FV_ENOENT;
    remove_instance(cat, inst);
    return 0;
}

/* Stores output and keeps the byte count true; a note that does not fit is dropped (the
 * status change still counts), since refusing a heartbeat would do more harm. */
static size_t output_len(const char *output)
{
    size_t len = strlen(output);
    if (len > REGISTRY_OUTPUT_MAX) {
        len = REGISTRY_OUTPUT_MAX;
        while (len > 0 && ((unsigned char)output[len] & 0xC0) == 0x80)
            len--;   /* cut on a character boundary, so the file stays valid UTF-8 */
    }
    return len;
}

static void set_output(registry_catalog_t *cat, registry_instance_t *inst, const char *output)
{
    size_t len = output_len(output);
    char *text = fv_strndup(output, len);
    size_t before = output_cost(inst->output ? inst->output : "");
    size_t after = output_cost(text);
    if (after > before && !room_for(cat, after - before, NULL)) {
        text[0] = '\0';
        after = 0;
    }
    fv_free(inst->output);
    inst->output = text;
    inst->cost = inst->cost - before + after;
    cat->bytes = cat->bytes - before + after;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n;
        uint32_t cp;
        if (*p < 0x80) {
            p++;
            continue;
        } else if ((*p & 0xE0) == 0xC0) {
            n = 1;
            cp = *p & 0x1F;
        } else if ((*p & 0xF0) == 0xE0) {
            n = 2;
            cp = *p & 0x0F;
        } else if ((*p & 0xF8) == 0xF0) {
            n = 3;
            cp = *p & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

int registry_catalog_check_update(registry_catalog_t *cat, const char *check_id,
                                  registry_status_t status, const char *output, uint64_t now_ms,
                                  bool *changed)
{
    const char *id = check_id;
    if (strncmp(check_id, "service:", 8) == 0)
        id = check_id + 8;
    registry_instance_t *inst = registry_catalog_find(cat, id);
    if (changed)
        *changed = false;
    if (!inst)
        return FV_ENOENT;
    if (!output)
        output = "";
    if (!utf8_valid(output))
        return FV_EINVAL;
    inst->last_update_ms = now_ms;
    size_t len = output_len(output);
    if (inst->status == status && strlen(inst->output) == len &&
        memcmp(inst->output, output, len) == 0) {
        deadline_update(cat, inst);
        return 0;
    }
    if (status == REGISTRY_CRITICAL && inst->status != REGISTRY_CRITICAL)
        inst->critical_since_ms = now_ms;
    inst->status = status;
    set_output(cat, inst, output);
    deadline_update(cat, inst);
    inst->modify_index = bump(cat, inst->name);
    if (changed)
        *changed = true;
    return 0;
}

size_t registry_catalog_expire(registry_catalog_t *cat, uint64_t now_ms)
{
    size_t n = 0;
    while (cat->heap_len > 0 && cat->heap[0]->deadline <= now_ms) {
        registry_instance_t *inst = cat->heap[0];
        if (inst->status != REGISTRY_CRITICAL) {
            /* the TTL ran out (the only deadline a non-critical instance has) */
            inst->status = REGISTRY_CRITICAL;
            /* Measured from when the TTL ran out, not from when the sweep noticed. */
            inst->critical_since_ms = inst->last_update_ms + inst->ttl_ms;
            set_output(cat, inst, "TTL expired");
            inst->modify_index = bump(cat, inst->name);
            deadline_update(cat, inst);
            n++;
            continue;   /* its removal may be due in this same sweep */
        }
        remove_instance(cat, inst);
        n++;
    }
    return n;
}

uint64_t registry_catalog_next_deadline(const registry_catalog_t *cat, uint64_t now_ms)
{
    uint64_t best = cat->heap_len ? cat->heap[0]->deadline : UINT64_MAX;
    return best < now_ms ? now_ms : best;
}

size_t registry_catalog_count(const registry_catalog_t *cat, const char *name, bool passing_only)
{
    if (!name && !passing_only)
        return cat->count;
    const registry_instance_t *inst = cat->first;
    if (name) {
        registry_name_index_t *e = registry_map_get(&cat->name_map, name);
        inst = e ? e->first : NULL;
    }
    size_t n = 0;
    for (; inst; inst = name ? inst->name_next : inst->next)
        if (!passing_only || inst->status == REGISTRY_PASSING)
            n++;
    return n;
}

/* ---- JSON views ---- */

static json_t *tags_json(const registry_instance_t *inst)
{
    json_t *a = json_array();
    for (size_t i = 0; i < inst->tag_count; i++)
        json_array_append_new(a, json_string(inst->tags[i]));
    return a;
}

static json_t *meta_json(const registry_instance_t *inst)
{
    json_t *o = json_object();
    for (size_t i = 0; i < inst->meta_count; i++)
        json_object_set_new(o, inst->meta[2 * i], json_string(inst->meta[2 * i + 1]));
    return o;
}

static json_t *agent_service_json(const registry_instance_t *inst)
{
    json_t *o = json_object();
    json_object_set_new(o, "ID", json_string(inst->id));
    json_object_set_new(o, "Service", json_string(inst->name));
    json_object_set_new(o, "Tags", tags_json(inst));
    json_object_set_new(o, "Meta", meta_json(inst));
    json_object_set_new(o, "Port", json_integer(inst->port));
    json_object_set_new(o, "Address", json_string(inst->address));
    return o;
}

json_t *registry_json_agent_services(const registry_catalog_t *cat)
{
    json_t *o = json_object();
    for (const registry_instance_t *inst = cat->first; inst; inst = inst->next)
        json_object_set_new(o, inst->id, agent_service_json(inst));
    return o;
}

json_t *registry_json_catalog_services(const registry_catalog_t *cat)
{
    json_t *o = json_object();
    for (const registry_instance_t *inst = cat->first; inst; inst = inst->next) {
        json_t *tags = json_object_get(o, inst->name);
        if (!tags) {
            tags = json_array();
            json_object_set_new(o, inst->name, tags);
        }
        for (size_t t = 0; t < inst->tag_count; t++) {
            bool seen = false;
            for (size_t k = 0; k < json_array_size(tags) && !seen; k++)
                seen = strcmp(json_string_value(json_array_get(tags, k)), inst->tags[t]) == 0;
            if (!seen)
                json_array_append_new(tags, json_string(inst->tags[t]));
        }
    }
    return o;
}

json_t *registry_json_catalog_service(const registry_catalog_t *cat, const char *name)
{
    json_t *a = json_array();
    const registry_name_index_t *n = registry_map_get(&cat->name_map, name);
    for (const registry_instance_t *inst = n ? n->first : NULL; inst; inst = inst->name_next) {
        json_t *o = json_object();
        json_object_set_new(o, "ID", json_string(""));
        json_object_set_new(o, "Node", json_string(REGISTRY_NODE));
        json_object_set_new(o, "Address", json_string(REGISTRY_NODE_ADDRESS));
        json_object_set_new(o, "Datacenter", json_string("dc1"));
        json_object_set_new(o, "ServiceID", json_string(inst->id));
        json_object_set_new(o, "ServiceName", json_string(inst->name));
        json_object_set_new(o, "ServiceTags", tags_json(inst));
        json_object_set_new(o, "ServiceMeta", meta_json(inst));
        json_object_set_new(o, "ServiceAddress", json_string(inst->address));
        json_object_set_new(o, "ServicePort", json_integer(inst->port));
        json_object_set_new(o, "CreateIndex", json_integer((json_int_t)inst->create_index));
        json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)inst->modify_index));
        json_array_append_new(a, o);
    }
    return a;
}

json_t *registry_json_health_service(const registry_catalog_t *cat, const char *name,
                                     bool passing_only)
{
    json_t *a = json_array();
    const registry_name_index_t *n = registry_map_get(&cat->name_map, name);
    for (const registry_instance_t *inst = n ? n->first : NULL; inst; inst = inst->name_next) {
        if (passing_only && inst->status != REGISTRY_PASSING)
            continue;
        json_t *node = json_object();
        json_object_set_new(node, "Node", json_string(REGISTRY_NODE));
        json_object_set_new(node, "Address", json_string(REGISTRY_NODE_ADDRESS));
        json_object_set_new(node, "Datacenter", json_string("dc1"));

        json_t *check = json_object();
        char check_id[REGISTRY_NAME_MAX + 16];
        snprintf(check_id, sizeof(check_id), "service:%s", inst->id);
        char check_name[REGISTRY_NAME_MAX + 32];
        snprintf(check_name, sizeof(check_name), "Service '%s' check", inst->name);
        json_object_set_new(check, "Node", json_string(REGISTRY_NODE));
        json_object_set_new(check, "CheckID", json_string(check_id));
        json_object_set_new(check, "Name", json_string(check_name));
        json_object_set_new(check, "Status", json_string(registry_status_name(inst->status)));
        json_object_set_new(check, "Output", json_string(inst->output));
        json_object_set_new(check, "ServiceID", json_string(inst->id));
        json_object_set_new(check, "ServiceName", json_string(inst->name));
        json_object_set_new(check, "Type", json_string(inst->ttl_ms ? "ttl" : ""));
        json_object_set_new(check, "CreateIndex", json_integer((json_int_t)inst->create_index));
        json_object_set_new(check, "ModifyIndex", json_integer((json_int_t)inst->modify_index));

        json_t *e = json_object();
        json_object_set_new(e, "Node", node);
        json_object_set_new(e, "Service", agent_service_json(inst));
        json_t *checks = json_array();
        json_array_append_new(checks, check);
        json_object_set_new(e, "Checks", checks);
        json_array_append_new(a, e);
    }
    return a;
}
