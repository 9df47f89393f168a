/* pb_json.c - protobuf-c messages as JSON by walking their descriptors, and the table of event
 * types of the bus contract. */
#include "rpc/pb_json.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/alloc.h"
#include "proto/events.pb-c.h"

#define JS_SAFE_INT ((uint64_t)1 << 53)

/* "MelodyType" + "MELODY_TYPE_RESTORATION" -> "restoration": the value name less the prefix
 * proto style gives every value of the enum. */
static json_t *enum_json(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v)
        return json_integer(value);
    char prefix[128];
    size_t o = 0;
    for (const char *p = d->short_name; *p && o + 2 < sizeof(prefix); p++) {
        if (isupper((unsigned char)*p) && p != d->short_name)
            prefix[o++] = '_';
        prefix[o++] = (char)toupper((unsigned char)*p);
    }
    prefix[o++] = '_';
    prefix[o] = '\0';
    const char *name = v->name;
    if (strncmp(name, prefix, o) == 0 && name[o])
        name += o;
    char out[128];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(out); i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[i] = '\0';
    return json_string(out);
}

static json_t *u64_json(uint64_t v)
{
    if (v < JS_SAFE_INT)
        return json_integer((json_int_t)v);
    char b[24];
    snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    return json_string(b);
}

static json_t *i64_json(int64_t v)
{
    if (v < (int64_t)JS_SAFE_INT && v > -(int64_t)JS_SAFE_INT)
        return json_integer(v);
    char b[24];
    snprintf(b, sizeof(b), "%lld", (long long)v);
    return json_string(b);
}

/* One value of field f at p (a pointer into the message, or into a repeated array). */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return i64_json(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return u64_json(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_json(f->descriptor, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");    /* protobuf-c has checked it is UTF-8 */
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        size_t cap = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
        char *s = fv_try_malloc(cap);
        if (!s)
            return NULL;
        sodium_bin2base64(s, cap, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
        json_t *j = json_string(s);
        fv_free(s);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? fv_pb_to_json(m) : json_null();
    }
    }
    return json_null();
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

json_t *fv_pb_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        const void *member = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)member;
            v = json_array();
            for (size_t k = 0; v && k < n; k++) {
                json_t *e = value_json(f, arr + k * value_size(f));
                if (!e || json_array_append_new(v, e) < 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
        } else if ((f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) &&
                   *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;                       /* another member of the oneof is set */
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE &&
                   !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
            continue;                       /* an optional scalar that is not set */
        } else {
            v = value_json(f, member);
        }
        if (!v || json_object_set_new(o, f->name, v) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

const ProtobufCMessageDescriptor *fv_event_descriptor(const char *type, size_t len)
{
    static const struct {
        const char *type;
        const ProtobufCMessageDescriptor *d;
    } table[] = {
        {"song.performed", &finalverse__events__v1__song_performed__descriptor},
        {"harmony.changed", &finalverse__events__v1__harmony_changed__descriptor},
        {"silence.spread", &finalverse__events__v1__silence_spread__descriptor},
        {"quest.created", &finalverse__events__v1__quest_created__descriptor},
        {"echo.bond_changed", &finalverse__events__v1__echo_bond_changed__descriptor},
        {"player.moved", &finalverse__events__v1__player_moved__descriptor},
        {"chat.message", &finalverse__events__v1__chat_message__descriptor},
        {"weather.changed", &finalverse__events__v1__weather_changed__descriptor},
        {"cell.changed", &finalverse__events__v1__cell_changed__descriptor},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strlen(table[i].type) == len && memcmp(table[i].type, type, len) == 0)
            return table[i].d;
    return NULL;
}
