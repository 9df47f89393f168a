/* grpc_descset.c - a FileDescriptorSet read with a small protobuf wire reader (see
 * grpc_descset.h). Only the fields named below are looked at; every other field is skipped by
 * its wire type, so descriptors from newer protoc versions read the same. */
#include "net/grpc_descset.h"

#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

#define DS_MAX_FILES 1024u
#define DS_MAX_SYMBOLS 65536u
#define DS_MAX_DEPTH 32
#define DS_MAX_NAME 512u

/* descriptor.proto field numbers */
enum {
    SET_FILE = 1,
    FILE_NAME = 1, FILE_PACKAGE = 2, FILE_DEPENDENCY = 3, FILE_MESSAGE = 4, FILE_ENUM = 5,
    FILE_SERVICE = 6,
    MSG_NAME = 1, MSG_NESTED = 3, MSG_ENUM = 4,
    ENUM_NAME = 1,
    SVC_NAME = 1, SVC_METHOD = 2,
    METHOD_NAME = 1,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct ds_symbol {
    char *name;
    size_t file;
    bool message;
} ds_symbol_t;

typedef struct ds_file {
    char *name;
    fv_slice_t bytes;
    char **deps;
    size_t ndeps;
} ds_file_t;

struct fv_descset {
    ds_file_t *files;
    size_t nfiles;
    ds_symbol_t *syms;
    size_t nsyms, capsyms;
};

/* ---- the wire ---- */

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader_t;

static bool rd_varint(pb_reader_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* The next field: its number, and for a length-delimited one its bytes. 1 with a field, 0 at
 * the end, -1 on bad input. */
static int rd_field(pb_reader_t *r, uint32_t *field, fv_slice_t *bytes)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag, v;
    if (!rd_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *bytes = FV_SLICE_NULL;
    size_t left = (size_t)(r->end - r->p);
    switch (tag & 7) {
    case WT_VARINT:
        return rd_varint(r, &v) ? 1 : -1;
    case WT_I64:
        if (left < 8)
            return -1;
        r->p += 8;
        return 1;
    case WT_I32:
        if (left < 4)
            return -1;
        r->p += 4;
        return 1;
    case WT_LEN:
        /* what is left after the length itself */
        if (!rd_varint(r, &v) || v > (uint64_t)(r->end - r->p))
            return -1;
        *bytes = fv_slice((const char *)r->p, (size_t)v);
        r->p += v;
        return 1;
    default:                         /* groups: descriptor.proto has none */
        return -1;
    }
}

static pb_reader_t reader_of(fv_slice_t s)
{
    return (pb_reader_t){(const uint8_t *)s.ptr, (const uint8_t *)s.ptr + s.len};
}

/* ---- the index ---- */

static char *str_of(fv_slice_t s)
{
    char *p = fv_malloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* Adds prefix.name (or name when prefix is empty). */
static int add_symbol(fv_descset_t *ds, const char *prefix, fv_slice_t name, size_t file,
                      bool message, char **full)
{
    size_t pl = strlen(prefix);
    if (!name.len || memchr(name.ptr, '\0', name.len) || pl + 1 + name.len >= DS_MAX_NAME)
        return FV_EINVAL;
    if (ds->nsyms == ds->capsyms) {
        if (ds->capsyms >= DS_MAX_SYMBOLS)
            return FV_EINVAL;
        ds->capsyms = ds->capsyms ? 2 * ds->capsyms : 64;
        ds->syms = fv_realloc(ds->syms, ds->capsyms * sizeof(*ds->syms));
    }
    char *s = fv_malloc(pl + 1 + name.len + 1);
    size_t n = 0;
    if (pl) {
        memcpy(s, prefix, pl);
        s[pl] = '.';
        n = pl + 1;
    }
    memcpy(s + n, name.ptr, name.len);
    s[n + name.len] = '\0';
    ds->syms[ds->nsyms++] = (ds_symbol_t){s, file, message};
    *full = s;
    return 0;
}

/* The name field (1) of a message; FV_SLICE_NULL when absent. -1 on bad input. */
static int name_of(fv_slice_t msg, fv_slice_t *name)
{
    pb_reader_t r = reader_of(msg);
    uint32_t f;
    fv_slice_t b;
    int rc;
    *name = FV_SLICE_NULL;
    while ((rc = rd_field(&r, &f, &b)) > 0)
        if (f == 1 && b.ptr)
            *name = b;
    return rc;
}

static int add_enum(fv_descset_t *ds, const char *prefix, fv_slice_t e, size_t file)
{
    fv_slice_t name;
    char *full;
    if (name_of(e, &name) < 0)
        return FV_EINVAL;
    return add_symbol(ds, prefix, name, file, false, &full);
}

static int add_message(fv_descset_t *ds, const char *prefix, fv_slice_t m, size_t file,
                       int depth)
{
    fv_slice_t name;
    char *full;
    if (depth > DS_MAX_DEPTH || name_of(m, &name) < 0)
        return FV_EINVAL;
    int rc = add_symbol(ds, prefix, name, file, true, &full);
    pb_reader_t r = reader_of(m);
    uint32_t f;
    fv_slice_t b;
    int more;
    while (rc == 0 && (more = rd_field(&r, &f, &b)) > 0) {
        if (f == MSG_NESTED && b.ptr)
            rc = add_message(ds, full, b, file, depth + 1);
        else if (f == MSG_ENUM && b.ptr)
            rc = add_enum(ds, full, b, file);
    }
    return rc;
}

static int add_service(fv_descset_t *ds, const char *prefix, fv_slice_t svc, size_t file)
{
    fv_slice_t name;
    char *full, *method;
    if (name_of(svc, &name) < 0)
        return FV_EINVAL;
    int rc = add_symbol(ds, prefix, name, file, false, &full);
    pb_reader_t r = reader_of(svc);
    uint32_t f;
    fv_slice_t b, mname;
    while (rc == 0 && rd_field(&r, &f, &b) > 0) {
        if (f != SVC_METHOD || !b.ptr)
            continue;
        rc = name_of(b, &mname) < 0 ? FV_EINVAL : add_symbol(ds, full, mname, file, false, &method);
    }
    return rc;
}

/* One FileDescriptorProto: two passes, the package first (protoc writes it second, after the
 * name, but the wire does not promise an order). */
static int add_file(fv_descset_t *ds, fv_slice_t fb)
{
    size_t i = ds->nfiles;
    ds_file_t *file = &ds->files[i];
    file->bytes = fb;
    char pkg[DS_MAX_NAME] = "";
    pb_reader_t r = reader_of(fb);
    uint32_t f;
    fv_slice_t b;
    int more;
    size_t ndeps = 0;
    while ((more = rd_field(&r, &f, &b)) > 0) {
        if (f == FILE_PACKAGE && b.ptr) {
            if (b.len >= sizeof(pkg) || memchr(b.ptr, '\0', b.len))
                return FV_EINVAL;
            memcpy(pkg, b.ptr, b.len);
            pkg[b.len] = '\0';
        } else if (f == FILE_NAME && b.ptr) {
            if (b.len == 0 || b.len >= DS_MAX_NAME || memchr(b.ptr, '\0', b.len))
                return FV_EINVAL;
            fv_free(file->name);
            file->name = str_of(b);
        } else if (f == FILE_DEPENDENCY && b.ptr) {
            if (++ndeps > DS_MAX_FILES)
                return FV_EINVAL;
        }
    }
    if (more < 0 || !file->name)
        return FV_EINVAL;
    ds->nfiles++;                    /* from here on, fv_descset_free frees what it holds */
    file->deps = fv_calloc(ndeps ? ndeps : 1, sizeof(*file->deps));
    r = reader_of(fb);
    int rc = 0;
    while (rc == 0 && rd_field(&r, &f, &b) > 0) {
        if (!b.ptr)
            continue;
        if (f == FILE_DEPENDENCY) {
            if (b.len >= DS_MAX_NAME || memchr(b.ptr, '\0', b.len))
                rc = FV_EINVAL;
            else
                file->deps[file->ndeps++] = str_of(b);
        } else if (f == FILE_MESSAGE) {
            rc = add_message(ds, pkg, b, i, 0);
        } else if (f == FILE_ENUM) {
            rc = add_enum(ds, pkg, b, i);
        } else if (f == FILE_SERVICE) {
            rc = add_service(ds, pkg, b, i);
        }
    }
    return rc;
}

int fv_descset_parse(const uint8_t *data, size_t len, fv_descset_t **out)
{
    *out = NULL;
    fv_descset_t *ds = fv_calloc(1, sizeof(*ds));
    pb_reader_t r = {data, data + len};
    uint32_t f;
    fv_slice_t b;
    int more;
    size_t n = 0;
    while ((more = rd_field(&r, &f, &b)) > 0)
        if (f == SET_FILE && b.ptr && ++n > DS_MAX_FILES)
            break;
    if (more < 0 || n > DS_MAX_FILES) {
        fv_free(ds);
        return FV_EINVAL;
    }
    ds->files = fv_calloc(n ? n : 1, sizeof(*ds->files));
    r = (pb_reader_t){data, data + len};
    int rc = 0;
    while (rc == 0 && rd_field(&r, &f, &b) > 0)
        if (f == SET_FILE && b.ptr)
            rc = add_file(ds, b);
    if (rc < 0) {
        if (ds->nfiles < n)          /* a file that failed before it was counted */
            fv_free(ds->files[ds->nfiles].name);
        fv_descset_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

void fv_descset_free(fv_descset_t *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->nfiles; i++) {
        fv_free(ds->files[i].name);
        for (size_t d = 0; d < ds->files[i].ndeps; d++)
            fv_free(ds->files[i].deps[d]);
        fv_free(ds->files[i].deps);
    }
    for (size_t i = 0; i < ds->nsyms; i++)
        fv_free(ds->syms[i].name);
    fv_free(ds->syms);
    fv_free(ds->files);
    fv_free(ds);
}

size_t fv_descset_count(const fv_descset_t *ds)
{
    return ds->nfiles;
}

const char *fv_descset_name(const fv_descset_t *ds, size_t i)
{
    return ds->files[i].name;
}

fv_slice_t fv_descset_bytes(const fv_descset_t *ds, size_t i)
{
    return ds->files[i].bytes;
}

long fv_descset_find_file(const fv_descset_t *ds, const char *name)
{
    for (size_t i = 0; i < ds->nfiles; i++)
        if (strcmp(ds->files[i].name, name) == 0)
            return (long)i;
    return -1;
}

static const ds_symbol_t *find_symbol(const fv_descset_t *ds, const char *symbol)
{
    if (symbol[0] == '.')
        symbol++;
    for (size_t i = 0; i < ds->nsyms; i++)
        if (strcmp(ds->syms[i].name, symbol) == 0)
            return &ds->syms[i];
    return NULL;
}

long fv_descset_find_symbol(const fv_descset_t *ds, const char *symbol)
{
    const ds_symbol_t *s = find_symbol(ds, symbol);
    return s ? (long)s->file : -1;
}

bool fv_descset_is_message(const fv_descset_t *ds, const char *symbol)
{
    const ds_symbol_t *s = find_symbol(ds, symbol);
    return s && s->message;
}

size_t fv_descset_closure(const fv_descset_t *ds, size_t i, size_t *out, size_t cap)
{
    if (cap == 0 || i >= ds->nfiles)
        return 0;
    size_t n = 0;
    out[n++] = i;
    /* breadth first over out itself: each file's imports are appended once */
    for (size_t at = 0; at < n; at++) {
        const ds_file_t *f = &ds->files[out[at]];
        for (size_t d = 0; d < f->ndeps && n < cap; d++) {
            long j = fv_descset_find_file(ds, f->deps[d]);
            bool seen = j < 0;
            for (size_t k = 0; k < n && !seen; k++)
                seen = out[k] == (size_t)j;
            if (!seen)
                out[n++] = (size_t)j;
        }
    }
    return n;
}
