/* render.c - JSON written as bytes: the escaping helpers and the three per-instance views.
 * The catalog file's writer (persist.c) uses the same helpers. */
#include "registry/render.h"

#include <string.h>

void registry_out_raw(registry_out_t *o, const char *p, size_t len)
{
    if (o->rc == 0)
        o->rc = fv_buf_append(o->b, p, len);
}

void registry_out_lit(registry_out_t *o, const char *s)
{
    registry_out_raw(o, s, strlen(s));
}

void registry_out_u64(registry_out_t *o, uint64_t v)
{
    char digits[20];
    registry_out_raw(o, digits, fv_fmt_u64(digits, v));
}

void registry_out_str(registry_out_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    registry_out_raw(o, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        registry_out_raw(o, run, (size_t)(p - run));
        if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            registry_out_raw(o, esc, 6);
        } else {
            char esc[2] = {'\\', (char)c};
            registry_out_raw(o, esc, 2);
        }
        run = p + 1;
    }
    registry_out_raw(o, run, strlen(run));
    registry_out_raw(o, "\"", 1);
}

void registry_out_tags(registry_out_t *o, const registry_instance_t *inst)
{
    registry_out_raw(o, "[", 1);
    for (size_t t = 0; t < inst->tag_count; t++) {
        if (t)
            registry_out_raw(o, ",", 1);
        registry_out_str(o, inst->tags[t]);
    }
    registry_out_raw(o, "]", 1);
}

void registry_out_meta(registry_out_t *o, const registry_instance_t *inst)
{
    registry_out_raw(o, "{", 1);
    for (size_t m = 0; m < inst->meta_count; m++) {
        if (m)
            registry_out_raw(o, ",", 1);
        registry_out_str(o, inst->meta[2 * m]);
        registry_out_raw(o, ":", 1);
        registry_out_str(o, inst->meta[2 * m + 1]);
    }
    registry_out_raw(o, "}", 1);
}

/* {ID, Service, Tags, Meta, Port, Address} */
static void out_agent_service(registry_out_t *o, const registry_instance_t *inst)
{
    registry_out_lit(o, "{\"ID\":");
    registry_out_str(o, inst->id);
    registry_out_lit(o, ",\"Service\":");
    registry_out_str(o, inst->name);
    registry_out_lit(o, ",\"Tags\":");
    registry_out_tags(o, inst);
    registry_out_lit(o, ",\"Meta\":");
    registry_out_meta(o, inst);
    registry_out_lit(o, ",\"Port\":");
    registry_out_u64(o, (uint64_t)inst->port);
    registry_out_lit(o, ",\"Address\":");
    registry_out_str(o, inst->address);
    registry_out_raw(o, "}", 1);
}

int registry_render_agent_services(const registry_catalog_t *cat, fv_buf_t *b)
{
    registry_out_t o = {.b = b};
    registry_out_raw(&o, "{", 1);
    for (const registry_instance_t *inst = cat->first; inst; inst = inst->next) {
        if (inst != cat->first)
            registry_out_raw(&o, ",", 1);
        registry_out_str(&o, inst->id);
        registry_out_raw(&o, ":", 1);
        out_agent_service(&o, inst);
    }
    registry_out_raw(&o, "}", 1);
    return o.rc;
}

static const registry_instance_t *first_of(const registry_catalog_t *cat, const char *name)
{
    const registry_name_index_t *n = registry_map_get(&cat->name_map, name);
    return n ? n->first : NULL;
}

int registry_render_catalog_service(const registry_catalog_t *cat, const char *name,
                                    fv_buf_t *b)
{
    registry_out_t o = {.b = b};
    registry_out_raw(&o, "[", 1);
    for (const registry_instance_t *inst = first_of(cat, name); inst; inst = inst->name_next) {
        if (inst != first_of(cat, name))
            registry_out_raw(&o, ",", 1);
        registry_out_lit(&o, "{\"ID\":\"\",\"Node\":\"" REGISTRY_NODE "\",\"Address\":\""
                             REGISTRY_NODE_ADDRESS "\",\"Datacenter\":\"dc1\",\"ServiceID\":");
        registry_out_str(&o, inst->id);
        registry_out_lit(&o, ",\"ServiceName\":");
        registry_out_str(&o, inst->name);
        registry_out_lit(&o, ",\"ServiceTags\":");
        registry_out_tags(&o, inst);
        registry_out_lit(&o, ",\"ServiceMeta\":");
        registry_out_meta(&o, inst);
        registry_out_lit(&o, ",\"ServiceAddress\":");
        registry_out_str(&o, inst->address);
        registry_out_lit(&o, ",\"ServicePort\":");
        registry_out_u64(&o, (uint64_t)inst->port);
        registry_out_lit(&o, ",\"CreateIndex\":");
        registry_out_u64(&o, inst->create_index);
        registry_out_lit(&o, ",\"ModifyIndex\":");
        registry_out_u64(&o, inst->modify_index);
        registry_out_raw(&o, "}", 1);
    }
    registry_out_raw(&o, "]", 1);
    return o.rc;
}

int registry_render_health_service(const registry_catalog_t *cat, const char *name,
                                   bool passing_only, fv_buf_t *b)
{
    registry_out_t o = {.b = b};
    bool first = true;
    registry_out_raw(&o, "[", 1);
    for (const registry_instance_t *inst = first_of(cat, name); inst; inst = inst->name_next) {
        if (passing_only && inst->status != REGISTRY_PASSING)
            continue;
        if (!first)
            registry_out_raw(&o, ",", 1);
        first = false;
        registry_out_lit(&o, "{\"Node\":{\"Node\":\"" REGISTRY_NODE "\",\"Address\":\""
                             REGISTRY_NODE_ADDRESS "\",\"Datacenter\":\"dc1\"},\"Service\":");
        out_agent_service(&o, inst);
        /* Ids and names are letters, digits, '-', '_' and '.' (the register rule), so they go
         * inside these strings as they are. */
        registry_out_lit(&o, ",\"Checks\":[{\"Node\":\"" REGISTRY_NODE "\",\"CheckID\":\"service:");
        registry_out_lit(&o, inst->id);
        registry_out_lit(&o, "\",\"Name\":\"Service '");
        registry_out_lit(&o, inst->name);
        registry_out_lit(&o, "' check\",\"Status\":");
        registry_out_str(&o, registry_status_name(inst->status));
        registry_out_lit(&o, ",\"Output\":");
        registry_out_str(&o, inst->output);
        registry_out_lit(&o, ",\"ServiceID\":");
        registry_out_str(&o, inst->id);
        registry_out_lit(&o, ",\"ServiceName\":");
        registry_out_str(&o, inst->name);
        registry_out_lit(&o, inst->ttl_ms ? ",\"Type\":\"ttl\"" : ",\"Type\":\"\"");
        registry_out_lit(&o, ",\"CreateIndex\":");
        registry_out_u64(&o, inst->create_index);
        registry_out_lit(&o, ",\"ModifyIndex\":");
        registry_out_u64(&o, inst->modify_index);
        registry_out_lit(&o, "}]}");
    }
    registry_out_raw(&o, "]", 1);
    return o.rc;
}
