/* catalog.c - the registry's pure state: validation of register bodies, upsert/deregister,
 * TTL checks, change indexes and the Consul-shaped JSON views. No sockets, clock or logging;
 * timers and HTTP live in server.c and http.c, the disk in persist.c.
 *
 * Instances sit in a plain array searched linearly: a game cluster registers tens of
 * instances, not thousands, and a scan keeps the code and the JSON order (registration order)
 * simple. If that ever changes, an id hash in front of the array is the fix. */
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
}

static void catalog_clear(registry_catalog_t *cat)
{
    for (size_t i = 0; i < cat->count; i++)
        registry_instance_free(cat->items[i]);
    fv_free(cat->items);
    for (size_t i = 0; i < cat->name_count; i++)
        fv_free(cat->names[i].name);
    fv_free(cat->names);
    cat->items = NULL;
    cat->count = cat->cap = 0;
    cat->names = NULL;
    cat->name_count = cat->name_cap = 0;
    cat->bytes = REGISTRY_DUMP_BASE_BYTES;
}

void registry_catalog_dispose(registry_catalog_t *cat)
{
    catalog_clear(cat);
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
    fv_free(inst->output);
    fv_free(inst);
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

/* ---- indexes ---- */

static registry_name_index_t *name_slot(registry_catalog_t *cat, const char *name, bool create)
{
    for (size_t i = 0; i < cat->name_count; i++)
        if (strcmp(cat->names[i].name, name) == 0)
            return &cat->names[i];
    if (!create)
        return NULL;
    if (cat->name_count == cat->name_cap) {
        cat->name_cap = cat->name_cap ? 2 * cat->name_cap : 8;
        cat->names = fv_realloc(cat->names, cat->name_cap * sizeof(*cat->names));
    }
    registry_name_index_t *n = &cat->names[cat->name_count++];
    n->name = fv_strdup(name);
    n->index = 0;
    n->count = 0;
    cat->bytes += registry_name_cost(name);
    return n;
}

/* Names without instances are kept only so that their watchers see removals as moves forward;
 * when room is short they go first. A watcher of a pruned name then sees the index fall back
 * to 1 and resets, as it would after a restart. */
static void prune_empty_names(registry_catalog_t *cat, const char *keep)
{
    size_t out = 0;
    for (size_t i = 0; i < cat->name_count; i++) {
        registry_name_index_t *n = &cat->names[i];
        if (n->count == 0 && !(keep && strcmp(n->name, keep) == 0)) {
            cat->bytes -= registry_name_cost(n->name);
            fv_free(n->name);
            continue;
        }
        cat->names[out++] = *n;
    }
    cat->name_count = out;
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
    name_slot(cat, name, true)->index = cat->index;
    return cat->index;
}

uint64_t registry_catalog_name_index(const registry_catalog_t *cat, const char *name)
{
    registry_name_index_t *n = name_slot((registry_catalog_t *)cat, name, false);
    return n ? n->index : 1;
}

bool registry_should_block(uint64_t current, uint64_t client_index)
{
    return client_index != 0 && client_index == current;
}

/* ---- changes ---- */

static size_t find_pos(const registry_catalog_t *cat, const char *id)
{
    for (size_t i = 0; i < cat->count; i++)
        if (strcmp(cat->items[i]->id, id) == 0)
            return i;
    return SIZE_MAX;
}

registry_instance_t *registry_catalog_find(const registry_catalog_t *cat, const char *id)
{
    size_t i = find_pos(cat, id);
    return i == SIZE_MAX ? NULL : cat->items[i];
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

int registry_catalog_register(registry_catalog_t *cat, registry_instance_t *inst, uint64_t now_ms,
                              bool *changed)
{
    bool moved = false;
    size_t pos = find_pos(cat, inst->id);
    inst->last_update_ms = now_ms;
    if (inst->status == REGISTRY_CRITICAL)
        inst->critical_since_ms = now_ms;
    if (changed)
        *changed = false;
    if (pos == SIZE_MAX) {
        inst->cost = registry_instance_cost(inst);
        size_t need = inst->cost;
        if (!name_slot(cat, inst->name, false))
            need += registry_name_cost(inst->name);
        if (cat->count >= cat->max_instances || !room_for(cat, need, inst->name)) {
            registry_instance_free(inst);
            return FV_ETOOBIG;
        }
        if (cat->count == cat->cap) {
            cat->cap = cat->cap ? 2 * cat->cap : 16;
            cat->items = fv_realloc(cat->items, cat->cap * sizeof(*cat->items));
        }
        cat->items[cat->count++] = inst;
        cat->bytes += inst->cost;
        inst->create_index = inst->modify_index = bump(cat, inst->name);
        name_slot(cat, inst->name, true)->count++;
        moved = true;
    } else {
        registry_instance_t *old = cat->items[pos];
        if (same_content(old, inst)) {
            old->last_update_ms = now_ms;
            old->owned = old->owned || inst->owned;
            registry_instance_free(inst);
        } else {
            /* The check keeps its state across a content change: a service re-registering
             * with a new tag is no healthier or sicker than it was. */
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
            if (strcmp(old->name, inst->name) != 0) {
                registry_name_index_t *on = name_slot(cat, old->name, true);
                on->count--;
                bump(cat, old->name);   /* the old name lost an instance */
                name_slot(cat, inst->name, true)->count++;
            }
            inst->modify_index = bump(cat, inst->name);
            cat->bytes = cat->bytes - old->cost + inst->cost;
            cat->items[pos] = inst;
            registry_instance_free(old);
            moved = true;
        }
    }
    if (changed)
        *changed = moved;
    return 0;
}

int registry_catalog_adopt(registry_catalog_t *cat, registry_instance_t *inst)
{
    if (find_pos(cat, inst->id) != SIZE_MAX) {
        registry_instance_free(inst);
        return FV_EEXIST;
    }
    if (cat->count == cat->cap) {
        cat->cap = cat->cap ? 2 * cat->cap : 16;
        cat->items = fv_realloc(cat->items, cat->cap * sizeof(*cat->items));
    }
    cat->items[cat->count++] = inst;
    cat->bytes += inst->cost;
    registry_name_index_t *n = name_slot(cat, inst->name, true);
    n->count++;
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

static void remove_at(registry_catalog_t *cat, size_t pos)
{
    registry_instance_t *inst = cat->items[pos];
    bump(cat, inst->name);
    name_slot(cat, inst->name, true)->count--;
    cat->bytes -= inst->cost;
    memmove(&cat->items[pos], &cat->items[pos + 1], (cat->count - pos - 1) * sizeof(*cat->items));
    cat->count--;
    registry_instance_free(inst);
}

int registry_catalog_deregister(registry_catalog_t *cat, const char *id)
{
    size_t pos = find_pos(cat, id);
    if (pos == SIZE_MAX)
        return FV_ENOENT;
    remove_at(cat, pos);
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
        memcmp(inst->output, output, len) == 0)
        return 0;
    if (status == REGISTRY_CRITICAL && inst->status != REGISTRY_CRITICAL)
        inst->critical_since_ms = now_ms;
    inst->status = status;
    set_output(cat, inst, output);
    inst->modify_index = bump(cat, inst->name);
    if (changed)
        *changed = true;
    return 0;
}

size_t registry_catalog_expire(registry_catalog_t *cat, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < cat->count;) {
        registry_instance_t *inst = cat->items[i];
        if (inst->ttl_ms && inst->status != REGISTRY_CRITICAL &&
            now_ms >= inst->last_update_ms + inst->ttl_ms) {
            inst->status = REGISTRY_CRITICAL;
            /* Measured from when the TTL ran out, not from when the sweep noticed. */
            inst->critical_since_ms = inst->last_update_ms + inst->ttl_ms;
            set_output(cat, inst, "TTL expired");
            inst->modify_index = bump(cat, inst->name);
            n++;
        }
        if (inst->status == REGISTRY_CRITICAL && inst->deregister_after_ms &&
            now_ms >= inst->critical_since_ms + inst->deregister_after_ms) {
            remove_at(cat, i);
            n++;
            continue;
        }
        i++;
    }
    return n;
}

uint64_t registry_catalog_next_deadline(const registry_catalog_t *cat, uint64_t now_ms)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < cat->count; i++) {
        const registry_instance_t *inst = cat->items[i];
        uint64_t t = UINT64_MAX;
        if (inst->status == REGISTRY_CRITICAL) {
            if (inst->deregister_after_ms)
                t = inst->critical_since_ms + inst->deregister_after_ms;
        } else if (inst->ttl_ms) {
            t = inst->last_update_ms + inst->ttl_ms;
        }
        if (t < best)
            best = t;
    }
    return best < now_ms ? now_ms : best;
}

size_t registry_catalog_count(const registry_catalog_t *cat, const char *name, bool passing_only)
{
    size_t n = 0;
    for (size_t i = 0; i < cat->count; i++) {
        const registry_instance_t *inst = cat->items[i];
        if (name && strcmp(inst->name, name) != 0)
            continue;
        if (passing_only && inst->status != REGISTRY_PASSING)
            continue;
        n++;
    }
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
    for (size_t i = 0; i < cat->count; i++)
        json_object_set_new(o, cat->items[i]->id, agent_service_json(cat->items[i]));
    return o;
}

json_t *registry_json_catalog_services(const registry_catalog_t *cat)
{
    json_t *o = json_object();
    for (size_t i = 0; i < cat->count; i++) {
        const registry_instance_t *inst = cat->items[i];
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
    for (size_t i = 0; i < cat->count; i++) {
        const registry_instance_t *inst = cat->items[i];
        if (strcmp(inst->name, name) != 0)
            continue;
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
    for (size_t i = 0; i < cat->count; i++) {
        const registry_instance_t *inst = cat->items[i];
        if (strcmp(inst->name, name) != 0)
            continue;
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
