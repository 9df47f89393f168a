/* persist.c - the catalog on disk, so a registry restart does not forget every service:
 * <data_dir>/registry/catalog.json as one JSON document, written atomically (temp file, fsync,
 * rename, fsync of the folder) and read back at start. When to write (debounce) is server.c's
 * business; this file only converts and does the I/O.
 *
 * Times are not stored: monotonic clocks mean nothing across a restart, so a restored instance
 * starts its TTL afresh at load time. Services re-register on their own when a heartbeat gets
 * 404, so a lost or stale file costs at most one heartbeat interval of discovery. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "registry/catalog.h"
#include "registry/render.h"

#define PERSIST_VERSION 1

json_t *registry_catalog_dump(const registry_catalog_t *cat)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_integer(PERSIST_VERSION));
    json_object_set_new(doc, "index", json_integer((json_int_t)cat->index));
    json_t *names = json_object();
    const registry_name_index_t *lists[] = {cat->live, cat->empty};
    for (size_t l = 0; l < 2; l++)
        for (const registry_name_index_t *n = lists[l]; n; n = n->next)
            json_object_set_new(names, n->name, json_integer((json_int_t)n->index));
    json_object_set_new(doc, "names", names);
    json_t *items = json_array();
    for (const registry_instance_t *inst = cat->first; inst; inst = inst->next) {
        json_t *o = json_object();
        json_object_set_new(o, "ID", json_string(inst->id));
        json_object_set_new(o, "Name", json_string(inst->name));
        json_object_set_new(o, "Address", json_string(inst->address));
        json_object_set_new(o, "Port", json_integer(inst->port));
        json_t *tags = json_array();
        for (size_t t = 0; t < inst->tag_count; t++)
            json_array_append_new(tags, json_string(inst->tags[t]));
        json_object_set_new(o, "Tags", tags);
        json_t *meta = json_object();
        for (size_t m = 0; m < inst->meta_count; m++)
            json_object_set_new(meta, inst->meta[2 * m], json_string(inst->meta[2 * m + 1]));
        json_object_set_new(o, "Meta", meta);
        json_object_set_new(o, "TTLMs", json_integer(inst->ttl_ms));
        json_object_set_new(o, "DeregisterAfterMs", json_integer(inst->deregister_after_ms));
        json_object_set_new(o, "Status", json_string(registry_status_name(inst->status)));
        json_object_set_new(o, "Output", json_string(inst->output));
        json_object_set_new(o, "CreateIndex", json_integer((json_int_t)inst->create_index));
        json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)inst->modify_index));
        json_object_set_new(o, "Owned", json_boolean(inst->owned));
        json_array_append_new(items, o);
    }
    json_object_set_new(doc, "instances", items);
    return doc;
}

static int get_u64(const json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return FV_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* One stored instance, rebuilt through the same validation a register body gets, so a
 * hand-edited file cannot smuggle in what the API would refuse. FV_EINVAL: skip it. */
static int restore_instance(registry_catalog_t *cat, const json_t *o, size_t i, uint64_t now_ms,
                            fv_error_t *err)
{
    if (!json_is_object(o))
        return fv_error_set(err, FV_EINVAL, "instances[%zu] is not an object", i);
    json_t *body = json_object();
    const char *keys[] = {"ID", "Name", "Address", "Port", "Tags", "Meta"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_t *v = json_object_get(o, keys[k]);
        /* The file says 0 for "no port"; a register body says it by leaving Port out. */
        if (v && !(strcmp(keys[k], "Port") == 0 && json_is_integer(v) &&
                   json_integer_value(v) == 0))
            json_object_set(body, keys[k], v);
    }
    registry_instance_t *inst = NULL;
    fv_error_t verr;
    int rc = registry_instance_from_json(body, 0, &inst, &verr);
    json_decref(body);
    if (rc < 0)
        return fv_error_set(err, FV_EINVAL, "instances[%zu]: %s", i, verr.msg);
    uint64_t ttl, dereg, ci, mi;
    const char *status = NULL, *output = NULL;
    if (get_u64(o, "TTLMs", &ttl) < 0 || get_u64(o, "DeregisterAfterMs", &dereg) < 0 ||
        get_u64(o, "CreateIndex", &ci) < 0 || get_u64(o, "ModifyIndex", &mi) < 0 ||
        fv_json_get_str(o, "Status", &status, NULL) < 0 ||
        fv_json_get_str(o, "Output", &output, NULL) < 0 ||
        registry_status_parse(status, &inst->status) < 0 || ttl > REGISTRY_TTL_MAX_MS ||
        dereg > REGISTRY_DEREGISTER_MAX_MS || registry_catalog_find(cat, inst->id)) {
        registry_instance_free(inst);
        return fv_error_set(err, FV_EINVAL, "instances[%zu]: bad or duplicate fields", i);
    }
    inst->ttl_ms = (uint32_t)ttl;
    inst->deregister_after_ms = (uint32_t)dereg;
    fv_free(inst->output);
    inst->output = fv_strdup(output);
    inst->last_update_ms = now_ms;
    inst->critical_since_ms = now_ms;
    inst->create_index = ci;
    inst->modify_index = mi;
    /* Absent in files from before ACLs: nobody owned anything then. */
    inst->owned = json_is_true(json_object_get(o, "Owned"));
    inst->cost = registry_instance_cost(inst);
    if (cat->count >= cat->max_instances || cat->bytes + inst->cost > cat->max_bytes) {
        registry_instance_free(inst);
        return fv_error_set(err, FV_EINVAL, "instances[%zu]: past the catalog's limits", i);
    }
    return registry_catalog_adopt(cat, inst);
}

int registry_catalog_restore(registry_catalog_t *cat, const json_t *doc, uint64_t now_ms,
                             size_t *skipped, fv_error_t *err)
{
    uint32_t dereg_default = cat->default_deregister_after_ms;
    size_t max_instances = cat->max_instances, max_bytes = cat->max_bytes;
    registry_catalog_dispose(cat);
    registry_catalog_init(cat, dereg_default);
    cat->max_instances = max_instances;
    cat->max_bytes = max_bytes;
    if (skipped)
        *skipped = 0;

    int rc = 0;
    uint64_t version, index;
    json_t *names = json_object_get(doc, "names");
    json_t *items = json_object_get(doc, "instances");
    if (!json_is_object(doc) || get_u64(doc, "version", &version) < 0 ||
        get_u64(doc, "index", &index) < 0 || !json_is_object(names) || !json_is_array(items))
        return fv_error_set(err, FV_EINVAL, "not a registry catalog document");
    if (version != PERSIST_VERSION)
        return fv_error_set(err, FV_EINVAL, "catalog version %" PRIu64 " is not %d", version,
                            PERSIST_VERSION);
    if (index < 1)
        return fv_error_set(err, FV_EINVAL, "catalog index must be at least 1");

    const char *k;
    json_t *v;
    json_object_foreach(names, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > index) {
            rc = fv_error_set(err, FV_EINVAL, "names.%s is not an index up to %" PRIu64, k,
                              index);
            goto fail;
        }
        /* A name that is not valid is only a watch index: drop it, keep the rest. */
        (void)registry_catalog_set_name_index(cat, k, (uint64_t)json_integer_value(v));
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        fv_error_t ierr;
        /* One bad entry costs that entry, not the catalog. */
        if (restore_instance(cat, json_array_get(items, i), i, now_ms, &ierr) < 0 && skipped)
            (*skipped)++;
    }
    cat->index = index;
    return 0;

fail:
    registry_catalog_dispose(cat);
    registry_catalog_init(cat, dereg_default);
    cat->max_instances = max_instances;
    cat->max_bytes = max_bytes;
    return rc;
}

static int catalog_dir(const char *data_dir, char *out, size_t len, fv_error_t *err)
{
    if ((size_t)snprintf(out, len, "%s/registry", data_dir) >= len)
        return fv_error_set(err, FV_EINVAL, "data_dir is too long");
    return 0;
}

static int mkdir_one(const char *path, fv_error_t *err)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return fv_error_set(err, -errno, "%s: %s", path, strerror(errno));
    return 0;
}


/* ---- the file's bytes, written directly ----
 * The same document registry_catalog_dump builds, without building it: at 100,000 instances
 * jansson's objects cost seconds on the loop, a straight write of the bytes a small fraction
 * of that. The strings were validated as UTF-8 on the way in, so escaping is all there is. */

static void render_head(registry_out_t *o, const registry_catalog_t *cat)
{
    registry_out_lit(o, "{\"version\":");
    registry_out_u64(o, PERSIST_VERSION);
    registry_out_lit(o, ",\"index\":");
    registry_out_u64(o, cat->index);
    registry_out_lit(o, ",\"names\":{");
    bool first = true;
    const registry_name_index_t *lists[] = {cat->live, cat->empty};
    for (size_t l = 0; l < 2; l++)
        for (const registry_name_index_t *n = lists[l]; n; n = n->next) {
            if (!first)
                registry_out_raw(o, ",", 1);
            first = false;
            registry_out_str(o, n->name);
            registry_out_raw(o, ":", 1);
            registry_out_u64(o, n->index);
        }
    registry_out_lit(o, "},\"instances\":[");
}

/* One element of the "instances" array. */
static void render_instance(registry_out_t *o, const registry_instance_t *inst)
{
    registry_out_lit(o, "{\"ID\":");
    registry_out_str(o, inst->id);
    registry_out_lit(o, ",\"Name\":");
    registry_out_str(o, inst->name);
    registry_out_lit(o, ",\"Address\":");
    registry_out_str(o, inst->address);
    registry_out_lit(o, ",\"Port\":");
    registry_out_u64(o, (uint64_t)inst->port);
    registry_out_lit(o, ",\"Tags\":");
    registry_out_tags(o, inst);
    registry_out_lit(o, ",\"Meta\":");
    registry_out_meta(o, inst);
    registry_out_lit(o, ",\"TTLMs\":");
    registry_out_u64(o, inst->ttl_ms);
    registry_out_lit(o, ",\"DeregisterAfterMs\":");
    registry_out_u64(o, inst->deregister_after_ms);
    registry_out_lit(o, ",\"Status\":");
    registry_out_str(o, registry_status_name(inst->status));
    registry_out_lit(o, ",\"Output\":");
    registry_out_str(o, inst->output);
    registry_out_lit(o, ",\"CreateIndex\":");
    registry_out_u64(o, inst->create_index);
    registry_out_lit(o, ",\"ModifyIndex\":");
    registry_out_u64(o, inst->modify_index);
    registry_out_lit(o, inst->owned ? ",\"Owned\":true}" : ",\"Owned\":false}");
}

int registry_persist_render(const registry_catalog_t *cat, fv_buf_t *b, fv_error_t *err)
{
    registry_out_t o = {.b = b};
    render_head(&o, cat);
    for (const registry_instance_t *inst = cat->first; inst; inst = inst->next) {
        if (inst != cat->first)
            registry_out_raw(&o, ",", 1);
        render_instance(&o, inst);
    }
    registry_out_lit(&o, "]}");
    if (o.rc < 0)
        return fv_error_set(err, o.rc, "serialising the catalog failed");
    return 0;
}

/* ---- a save in parts ----
 * Rendering the whole file at 100,000 instances holds the loop for about 160 ms. Each
 * instance's bytes are kept instead, made again only when it changed (its modify index or
 * ownership moved), and a save takes references to them: the loop renders what changed, in
 * slices of a bounded size, and hands the pieces to a worker thread that writes them out. */

static bool piece_fresh(const registry_instance_t *inst)
{
    return inst->persisted && inst->persisted_index == inst->modify_index &&
           inst->persisted_owned == inst->owned;
}

/* Makes inst's bytes again (b is scratch space): 0, or a negative code. */
static int render_piece(registry_catalog_t *cat, registry_instance_t *inst, fv_buf_t *b)
{
    registry_out_t o = {.b = b};
    b->len = 0;
    render_instance(&o, inst);
    if (o.rc < 0)
        return o.rc;
    char *piece = fv_try_malloc(b->len);
    if (!piece)
        return FV_ENOMEM;
    memcpy(piece, b->ptr, b->len);
    registry_catalog_retire_piece(cat, inst->persisted);
    inst->persisted = piece;
    inst->persisted_len = b->len;
    inst->persisted_index = inst->modify_index;
    inst->persisted_owned = inst->owned;
    return 0;
}

int registry_persist_begin(registry_catalog_t *cat, registry_persist_parts_t *parts,
                           fv_error_t *err)
{
    memset(parts, 0, sizeof(*parts));
    fv_buf_init(&parts->head, 0);
    if (cat->pinned)
        return fv_error_set(err, FV_ECONFLICT, "a save of the catalog is already in progress");
    cat->pinned = true;
    parts->pinned = true;
    parts->index = cat->index;
    parts->cursor = cat->first;
    parts->removals = cat->removals;
    return 0;
}

int registry_persist_step(registry_catalog_t *cat, registry_persist_parts_t *parts,
                          size_t budget_bytes, size_t max_instances, fv_error_t *err)
{
    if (parts->removals != cat->removals) {
        /* the cursor may point at freed memory: walk again from the start */
        parts->count = 0;
        parts->cursor = cat->first;
        parts->removals = cat->removals;
        parts->restarts++;
    }
    if (parts->restarts > REGISTRY_PERSIST_RESTARTS)
        max_instances = SIZE_MAX;
    if (parts->cap < cat->count) {
        /* room for every instance there is now; ones added later grow it */
        parts->cap = cat->count;
        parts->pieces = fv_realloc(parts->pieces, parts->cap * sizeof(*parts->pieces));
    }
    fv_buf_t scratch;
    fv_buf_init(&scratch, 0);
    size_t spent = 0, walked = 0;
    int rc = 0;
    registry_instance_t *inst = parts->cursor;
    for (; inst; inst = inst->next) {
        if (walked++ >= max_instances) {
            rc = FV_EAGAIN;
            break;
        }
        if (!piece_fresh(inst)) {
            if (spent >= budget_bytes) {
                rc = FV_EAGAIN;
                break;
            }
            if ((rc = render_piece(cat, inst, &scratch)) < 0) {
                fv_error_set(err, rc, "serialising the catalog failed");
                break;
            }
            spent += scratch.len;
        }
        if (parts->count == parts->cap) {
            parts->cap = parts->cap ? 2 * parts->cap : 64;
            parts->pieces = fv_realloc(parts->pieces, parts->cap * sizeof(*parts->pieces));
        }
        parts->pieces[parts->count++] = (registry_piece_t){inst->persisted,
                                                           inst->persisted_len};
    }
    parts->cursor = inst;
    fv_buf_dispose(&scratch);
    if (rc != 0)
        return rc;
    /* the head last: its name indexes are at least those of every instance walked */
    registry_out_t o = {.b = &parts->head};
    render_head(&o, cat);
    if (o.rc < 0)
        return fv_error_set(err, o.rc, "serialising the catalog failed");
    return 0;
}

void registry_persist_parts_dispose(registry_catalog_t *cat, registry_persist_parts_t *parts)
{
    bool pinned = parts->pinned;
    fv_free(parts->pieces);
    fv_buf_dispose(&parts->head);
    memset(parts, 0, sizeof(*parts));
    if (pinned)
        registry_catalog_unpin(cat);
}

int registry_persist_save(const registry_catalog_t *cat, const char *data_dir, fv_error_t *err)
{
    fv_buf_t out;
    fv_buf_init(&out, 0);
    int rc = registry_persist_render(cat, &out, err);
    if (rc == 0)
        rc = registry_persist_write(data_dir, out.ptr, out.len, err);
    fv_buf_dispose(&out);
    return rc;
}

/* Writes the file atomically: temp file, fill(fd), fsync, rename, fsync of the folder. No
 * allocation and no logging here: it also runs on a worker thread. */
static int write_atomic(const char *data_dir, int (*fill)(int fd, const void *what),
                        const void *what, fv_error_t *err)
{
    char dir[4096], tmp[4200], path[4200];
    int rc;
    if ((rc = catalog_dir(data_dir, dir, sizeof(dir), err)) < 0)
        return rc;
    if ((rc = mkdir_one(data_dir, err)) < 0 || (rc = mkdir_one(dir, err)) < 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s/catalog.json.tmp", dir);
    snprintf(path, sizeof(path), "%s/catalog.json", dir);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fv_error_set(err, -errno, "%s: %s", tmp, strerror(errno));
    rc = fill(fd, what);
    /* fsync before rename: otherwise a crash can leave the new name pointing at an empty file. */
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        int e = -rc;
        unlink(tmp);
        return fv_error_set(err, rc, "%s: %s", path, strerror(e));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);   /* makes the rename itself durable; best effort */
        close(dfd);
    }
    return 0;
}

typedef struct text_ref {
    const char *p;
    size_t len;
} text_ref_t;

static int flush_iov(int fd, struct iovec *iov, int n);

static int fill_text(int fd, const void *what)
{
    const text_ref_t *t = what;
    struct iovec one = {(void *)t->p, t->len};
    return flush_iov(fd, &one, 1);
}

int registry_persist_write(const char *data_dir, const char *text, size_t len, fv_error_t *err)
{
    text_ref_t t = {text, len};
    return write_atomic(data_dir, fill_text, &t, err);
}

/* The head, the pieces with commas between them, the end: gathered into writev calls of at
 * most PARTS_IOV vectors, so a save costs a few hundred system calls, not one per instance. */
#define PARTS_IOV 512

/* Writes n vectors whole, however the kernel splits them. */
static int flush_iov(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int fill_parts(int fd, const void *what)
{
    const registry_persist_parts_t *parts = what;
    static const char comma[] = ",", end[] = "]}";
    struct iovec iov[PARTS_IOV];
    int n = 0, rc;
    iov[n++] = (struct iovec){parts->head.ptr, parts->head.len};
    for (size_t i = 0; i < parts->count; i++) {
        if (n + 2 > PARTS_IOV) {
            if ((rc = flush_iov(fd, iov, n)) < 0)
                return rc;
            n = 0;
        }
        if (i)
            iov[n++] = (struct iovec){(void *)comma, 1};
        iov[n++] = (struct iovec){(void *)parts->pieces[i].p, parts->pieces[i].len};
    }
    if (n + 1 > PARTS_IOV) {
        if ((rc = flush_iov(fd, iov, n)) < 0)
            return rc;
        n = 0;
    }
    iov[n++] = (struct iovec){(void *)end, 2};
    return flush_iov(fd, iov, n);
}

int registry_persist_write_parts(const char *data_dir, const registry_persist_parts_t *parts,
                                 fv_error_t *err)
{
    return write_atomic(data_dir, fill_parts, parts, err);
}

static int read_file(const char *path, fv_buf_t *out, fv_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? FV_ENOENT : fv_error_set(err, -errno, "%s: %s", path,
                                                          strerror(errno));
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((rc = fv_buf_append(out, chunk, n)) < 0)
            break;
    if (rc == 0 && ferror(f))
        rc = FV_EIO;
    fclose(f);
    if (rc < 0)
        return fv_error_set(err, rc, "%s: %s", path, rc == FV_ETOOBIG ? "file too large"
                                                                       : "read failed");
    return 0;
}

int registry_persist_load(registry_catalog_t *cat, const char *data_dir, uint64_t now_ms,
                          bool *corrupt, fv_error_t *err)
{
    char dir[4096], path[4200], aside[4200];
    int rc;
    if (corrupt)
        *corrupt = false;
    if ((rc = catalog_dir(data_dir, dir, sizeof(dir), err)) < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/catalog.json", dir);
    snprintf(aside, sizeof(aside), "%s/catalog.json.corrupt", dir);

    fv_buf_t text;
    fv_buf_init(&text, REGISTRY_FILE_MAX_BYTES);
    rc = read_file(path, &text, err);
    if (rc == FV_ENOENT) {
        fv_buf_dispose(&text);
        return 0;
    }
    fv_error_t perr;
    fv_error_clear(&perr);
    if (rc == 0) {
        json_t *doc = fv_json_parse(fv_buf_slice(&text), &perr);
        if (doc) {
            size_t skipped = 0;
            rc = registry_catalog_restore(cat, doc, now_ms, &skipped, &perr);
            json_decref(doc);
            if (rc == 0 && skipped > 0)
                fv_log_warn("registry", "%s: skipped %zu instances that are invalid, duplicate "
                            "or past the limits; their services register again at their next "
                            "heartbeat", path, skipped);
        } else {
            rc = FV_EINVAL;
        }
    } else if (rc == FV_ETOOBIG) {
        fv_error_set(&perr, rc, "file over %u bytes", REGISTRY_FILE_MAX_BYTES);
    } else {
        fv_buf_dispose(&text);
        return rc;
    }
    fv_buf_dispose(&text);
    if (rc == 0)
        return 0;
    uint32_t dereg_default = cat->default_deregister_after_ms;
    size_t max_instances = cat->max_instances, max_bytes = cat->max_bytes;
    registry_catalog_dispose(cat);
    registry_catalog_init(cat, dereg_default);
    cat->max_instances = max_instances;
    cat->max_bytes = max_bytes;

    /* A bad file must not keep the registry down: keep it for a person to look at, start
     * empty, and let the services re-register on their next heartbeat. */
    fv_log_warn("registry", "%s is unreadable (%s); moved aside to %s, starting empty", path,
                perr.msg, aside);
    if (rename(path, aside) < 0)
        fv_log_warn("registry", "could not move %s aside: %s", path, strerror(errno));
    if (corrupt)
        *corrupt = true;
    return 0;
}
