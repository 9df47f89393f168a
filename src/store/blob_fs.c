/* blob_fs.c - the blob store's directory-tree backend (file:PATH).
 *
 * Layout under the root: objects at ROOT/KEY, their metadata (size, sha256, content type) at
 * ROOT/.fv-meta/KEY, puts in progress at ROOT/.fv-tmp/. A put writes a temp file, fsyncs it,
 * writes the metadata, then renames both into place (metadata first), so a crash never leaves
 * half an object under its key; at worst a stale temp file or a metadata file whose size does not
 * match (then sha256 reads as unknown). All file I/O runs on libuv's thread pool; each job owns
 * copies of its inputs and reports on the loop thread. Keys whose first segment starts with
 * ".fv-" are refused here: they would land in our own directories.
 *
 * Not done here: locking between processes sharing a root (last rename wins), listing without
 * reading the whole tree (a listing walks every key under the prefix's directory). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "store/blob_internal.h"

#define FS_TMP_DIR ".fv-tmp"
#define FS_META_DIR ".fv-meta"
#define FS_TOKEN_PREFIX "fvblob:/"

typedef struct fs_store {
    char *root;
    unsigned char presign_key[crypto_auth_hmacsha256_KEYBYTES];
} fs_store_t;

typedef struct fs_writer {
    fv_blob_writer_t base;       /* first: blob.c sees only this */
    uv_work_t work;
    int fd;
    char *tmp_path;              /* NULL once renamed into place or removed */
    const void *data;            /* the pending write's bytes (borrowed) */
    size_t len;
    int op;                      /* FS_W_WRITE, FS_W_FINISH, FS_W_DISCARD, FS_W_RELEASE */
    int rc;
    int discard_rc;
    uint64_t max;
    char *root;                  /* copy: the job must not read the store */
    fv_blob_meta_t meta;
} fs_writer_t;

enum { FS_W_WRITE, FS_W_FINISH, FS_W_DISCARD, FS_W_RELEASE };

static fs_store_t *store_of(fv_blob_t *bs)
{
    return bs->impl;
}

/* ---- small file helpers (worker thread) ---- */

static int errno_rc(int e)
{
    if (e == ENOENT)
        return FV_ENOENT;
    if (e == ENOTDIR || e == EISDIR || e == EEXIST || e == ENOTEMPTY)
        return FV_ECONFLICT;
    if (e == ENOSPC || e == EDQUOT)
        return FV_EBACKEND;
    return -e;
}

static int mkdirs(char *path, size_t upto)
{
    /* Creates each directory along path[0..upto) in turn. */
    for (size_t i = 1; i <= upto; i++) {
        if (i == upto || path[i] == '/') {
            char c = path[i];
            path[i] = '\0';
            int r = mkdir(path, 0755);
            int e = errno;
            path[i] = c;
            if (r < 0 && e != EEXIST)
                return errno_rc(e);
        }
    }
    return 0;
}

static int mkparents(char *path)
{
    char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    return mkdirs(path, (size_t)(slash - path));
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    char *p = fv_malloc(la + lb + lc + 3);
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb);
    if (c) {
        p[la + 1 + lb] = '/';
        memcpy(p + la + 2 + lb, c, lc);
        p[la + 2 + lb + lc] = '\0';
    } else {
        p[la + 1 + lb] = '\0';
    }
    return p;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_rc(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads ROOT/.fv-meta/KEY into meta; the sha256 only counts when its size matches size. */
static void read_meta(const char *root, const char *key, uint64_t size, fv_blob_meta_t *meta)
{
    char *path = join(root, FS_META_DIR, key);
    FILE *f = fopen(path, "r");
    fv_free(path);
    if (!f)
        return;
    char line[256];
    unsigned long long msize = (unsigned long long)-1;
    char sha[65] = "";
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "size ", 5) == 0)
            msize = strtoull(line + 5, NULL, 10);
        else if (strncmp(line, "sha256 ", 7) == 0 && strlen(line + 7) == 64)
            memcpy(sha, line + 7, 65);
        else if (strncmp(line, "content-type ", 13) == 0) {
            size_t n = strlen(line + 13);
            if (n >= sizeof(meta->content_type))
                n = sizeof(meta->content_type) - 1;
            memcpy(meta->content_type, line + 13, n);
            meta->content_type[n] = '\0';
        }
    }
    fclose(f);
    if (msize == size && sha[0]) {
        memcpy(meta->sha256, sha, 65);
        memcpy(meta->etag, sha, 65);
    }
}

/* Removes now-empty directories from dir's path up to (not including) stop. */
static void prune_dirs(char *path, size_t stop_len)
{
    for (;;) {
        char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) <= stop_len)
            return;
        *slash = '\0';
        if (rmdir(path) < 0)
            return;
    }
}

/* ---- open / close ---- */

static int fs_open(fv_blob_t *bs, const char *rest, const fv_blob_opts_t *opts, fv_error_t *err)
{
    if (strncmp(rest, "//", 2) == 0)
        rest += 2;              /* file:///abs/path as well as file:./rel */
    if (!*rest)
        return fv_error_set(err, FV_ECONFIG, "storage.url file: has no directory");
    fs_store_t *fs = fv_calloc(1, sizeof(*fs));
    fs->root = fv_strdup(rest);
    size_t n = strlen(fs->root);
    while (n > 1 && fs->root[n - 1] == '/')
        fs->root[--n] = '\0';
    /* Startup-time directory creation on the loop thread: it runs once, before any request. */
    char *tmp = join(fs->root, FS_TMP_DIR, NULL);
    char *meta = join(fs->root, FS_META_DIR, NULL);
    int rc = mkdirs(tmp, strlen(tmp));
    if (rc == 0)
        rc = mkdirs(meta, strlen(meta));
    fv_free(tmp);
    fv_free(meta);
    if (rc < 0) {
        fv_error_set(err, FV_ECONFIG, "storage.url file:%s: cannot create the directory: %s",
                     fs->root, fv_strerror(rc));
        fv_free(fs->root);
        fv_free(fs);
        return FV_ECONFIG;
    }
    if (opts->presign_secret)
        crypto_hash_sha256(fs->presign_key, (const unsigned char *)opts->presign_secret,
                           strlen(opts->presign_secret));
    else
        randombytes_buf(fs->presign_key, sizeof(fs->presign_key));
    bs->impl = fs;
    return 0;
}

static void fs_close(fv_blob_t *bs)
{
    /* Jobs already queued cannot be taken back from the pool; they report FV_ECANCELED and
     * the handle goes when the last one has. */
    fs_store_t *fs = store_of(bs);
    sodium_memzero(fs->presign_key, sizeof(fs->presign_key));
    fv_free(fs->root);
    fv_free(fs);
    bs->impl = NULL;
    fv__blob_backend_closed(bs);
}

static int fs_key_ok(const char *key, fv_error_t *err)
{
    if (strncmp(key, ".fv-", 4) == 0)
        return fv_error_set(err, FV_EINVAL, "blob key \"%.200s\": a first segment starting "
                            "with \".fv-\" is reserved by the file backend", key);
    return 0;
}

/* ---- writer ---- */

static void fs_writer_work(uv_work_t *req)
{
    fs_writer_t *w = req->data;
    w->rc = 0;
    if (w->op == FS_W_DISCARD || w->op == FS_W_RELEASE) {
        if (w->fd >= 0)
            close(w->fd);
        w->fd = -1;
        if (w->tmp_path)
            unlink(w->tmp_path);
        return;
    }
    if (w->fd < 0) {
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd < 0) {
            w->rc = errno_rc(errno);
            return;
        }
    }
    if (w->op == FS_W_WRITE) {
        w->rc = write_all(w->fd, w->data, w->len);
        if (w->rc == 0)
            crypto_hash_sha256_update(&w->base.sha, w->data, w->len);
        return;
    }
    /* FS_W_FINISH: data durable, metadata durable, then both renamed into place. */
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&w->base.sha, digest);
    fv__blob_hex(digest, sizeof(digest), w->meta.sha256);
    memcpy(w->meta.etag, w->meta.sha256, sizeof(w->meta.sha256));
    w->meta.size = w->base.size;
    snprintf(w->meta.content_type, sizeof(w->meta.content_type), "%s", w->base.content_type);
    int rc = fsync(w->fd) < 0 ? errno_rc(errno) : 0;
    close(w->fd);
    w->fd = -1;
    char *meta_tmp = fv_malloc(strlen(w->tmp_path) + 6);
    sprintf(meta_tmp, "%s.meta", w->tmp_path);
    char *obj = join(w->root, w->base.key, NULL);
    char *meta = join(w->root, FS_META_DIR, w->base.key);
    if (rc == 0) {
        int mfd = open(meta_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (mfd < 0) {
            rc = errno_rc(errno);
        } else {
            char text[512];
            int n = snprintf(text, sizeof(text), "size %llu\nsha256 %s\ncontent-type %s\n",
                             (unsigned long long)w->meta.size, w->meta.sha256,
                             w->meta.content_type);
            rc = write_all(mfd, text, (size_t)n);
            if (rc == 0 && fsync(mfd) < 0)
                rc = errno_rc(errno);
            close(mfd);
        }
    }
    if (rc == 0)
        rc = mkparents(obj);
    if (rc == 0)
        rc = mkparents(meta);
    if (rc == 0) {
        /* A directory where the object goes means keys below it exist: refuse, as rename
         * would otherwise replace an empty one. */
        struct stat st;
        if (stat(obj, &st) == 0 && S_ISDIR(st.st_mode))
            rc = FV_ECONFLICT;
    }
    if (rc == 0 && rename(meta_tmp, meta) < 0)
        rc = errno_rc(errno);
    if (rc == 0 && rename(w->tmp_path, obj) < 0) {
        rc = errno_rc(errno);
        unlink(meta);
    }
    if (rc == 0) {
        fv_free(w->tmp_path);
        w->tmp_path = NULL;
    } else {
        unlink(meta_tmp);
        unlink(w->tmp_path);
    }
    fv_free(meta_tmp);
    fv_free(obj);
    fv_free(meta);
    w->rc = rc;
}

static void fs_writer_free(fs_writer_t *w)
{
    fv_free(w->tmp_path);
    fv_free(w->root);
    fv__blob_writer_release(&w->base);
}

static void fs_writer_after(uv_work_t *req, int status)
{
    fs_writer_t *w = req->data;
    int rc = status < 0 ? status : w->rc;
    switch (w->op) {
    case FS_W_WRITE:
        if (rc == 0)
            w->base.size += w->len;
        fv__blob_write_done(&w->base, rc);
        break;
    case FS_W_DISCARD:
        fv_free(w->tmp_path);
        w->tmp_path = NULL;
        fv__blob_write_done(&w->base, w->discard_rc);
        break;
    case FS_W_FINISH:
        fv__blob_finish_done(&w->base, rc, &w->meta);
        break;
    case FS_W_RELEASE:
        fs_writer_free(w);
        break;
    }
}

static int fs_put_begin(fv_blob_t *bs, const char *key, fv_blob_writer_t **out, fv_error_t *err)
{
    int rc = fs_key_ok(key, err);
    if (rc < 0)
        return rc;
    fs_store_t *fs = store_of(bs);
    fs_writer_t *w = fv_calloc(1, sizeof(*w));
    w->fd = -1;
    w->work.data = w;
    w->max = bs->max_object_bytes;
    w->root = fv_strdup(fs->root);
    unsigned char rnd[12];
    char name[32];
    randombytes_buf(rnd, sizeof(rnd));
    fv__blob_hex(rnd, sizeof(rnd), name);
    w->tmp_path = join(fs->root, FS_TMP_DIR, name);
    *out = &w->base;
    return 0;
}

static int fs_queue(fs_writer_t *w, int op)
{
    w->op = op;
    return uv_queue_work(w->base.bs->loop, &w->work, fs_writer_work, fs_writer_after);
}

static int fs_put_write(fv_blob_writer_t *base, const void *data, size_t len)
{
    fs_writer_t *w = (fs_writer_t *)base;
    if (len > w->max || base->size > w->max - len) {
        /* Over the ceiling: the temp file goes now, so nothing is left behind. */
        w->discard_rc = FV_ETOOBIG;
        return fs_queue(w, FS_W_DISCARD);
    }
    w->data = data;
    w->len = len;
    return fs_queue(w, FS_W_WRITE);
}

static int fs_put_finish(fv_blob_writer_t *base)
{
    return fs_queue((fs_writer_t *)base, FS_W_FINISH);
}

static void fs_put_abort(fv_blob_writer_t *base)
{
    fs_writer_t *w = (fs_writer_t *)base;
    if (w->fd < 0 && !w->tmp_path) {
        fs_writer_free(w);
        return;
    }
    if (fs_queue(w, FS_W_RELEASE) < 0) {
        if (w->fd >= 0)
            close(w->fd);
        fs_writer_free(w);
    }
}

/* ---- get / head / delete / list ---- */

enum { FS_GET, FS_HEAD, FS_DEL, FS_LIST };

typedef struct fs_job {
    uv_work_t work;
    fv_blob_t *bs;
    int op;
    int rc;
    char *root;
    char *key;                   /* or the list prefix */
    char *cursor;
    uint64_t start, len, max_bytes;
    size_t max;
    fv_blob_meta_t meta;
    char *body;
    size_t body_len;
    fv_blob_entry_t *entries;
    size_t count;
    char *next_cursor;
    void *cb;
    void *data;
} fs_job_t;

static void do_get(fs_job_t *j)
{
    char *path = join(j->root, j->key, NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    fv_free(path);
    if (fd < 0) {
        j->rc = errno == ENOTDIR ? FV_ENOENT : errno_rc(errno);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        j->rc = FV_ENOENT;
        close(fd);
        return;
    }
    uint64_t size = (uint64_t)st.st_size;
    j->meta.size = size;
    read_meta(j->root, j->key, size, &j->meta);
    if (j->op == FS_HEAD) {
        close(fd);
        return;
    }
    uint64_t start = j->start, n;
    if (start > 0 || j->len > 0) {
        if (start >= size && (size > 0 || start > 0)) {
            j->rc = FV_EINVAL;
            close(fd);
            return;
        }
    }
    n = size - start;
    if (j->len && j->len < n)
        n = j->len;
    if (n > j->max_bytes) {
        j->rc = FV_ETOOBIG;
        close(fd);
        return;
    }
    j->body = fv_try_malloc(n ? (size_t)n : 1);
    if (!j->body) {
        j->rc = FV_ENOMEM;
        close(fd);
        return;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, j->body + got, (size_t)n - got, (off_t)(start + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            j->rc = r < 0 ? errno_rc(errno) : FV_EIO;
            break;
        }
        got += (size_t)r;
    }
    j->body_len = got;
    close(fd);
}

static void do_del(fs_job_t *j)
{
    char *path = join(j->root, j->key, NULL);
    char *meta = join(j->root, FS_META_DIR, j->key);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        j->rc = 0;               /* a "directory" of other keys is no object: nothing to do */
    } else if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR) {
        j->rc = errno_rc(errno);
    } else {
        unlink(meta);
        prune_dirs(path, strlen(j->root));
        prune_dirs(meta, strlen(j->root) + 1 + strlen(FS_META_DIR));
    }
    fv_free(path);
    fv_free(meta);
}

typedef struct key_vec {
    char **keys;
    size_t count, cap;
} key_vec_t;

static void walk(const char *root, fv_buf_t *rel, const char *prefix, key_vec_t *v, int *rc)
{
    char *dirpath = rel->len ? join(root, rel->ptr, NULL) : fv_strdup(root);
    DIR *d = opendir(dirpath);
    fv_free(dirpath);
    if (!d)
        return;
    struct dirent *e;
    size_t base = rel->len;
    size_t plen = strlen(prefix);
    while (*rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (base == 0 && strncmp(e->d_name, ".fv-", 4) == 0)
            continue;
        rel->len = base;
        if ((base && fv_buf_append(rel, "/", 1) < 0) || fv_buf_append_str(rel, e->d_name) < 0) {
            *rc = FV_ENOMEM;
            break;
        }
        /* Only paths that can still lead to the prefix are worth a look. */
        size_t cmp = rel->len < plen ? rel->len : plen;
        if (memcmp(rel->ptr, prefix, cmp) != 0)
            continue;
        char *full = join(root, rel->ptr, NULL);
        struct stat st;
        int ok = lstat(full, &st) == 0;
        fv_free(full);
        if (!ok)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(root, rel, prefix, v, rc);
        } else if (S_ISREG(st.st_mode) && rel->len >= plen) {
            if (v->count == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                char **k = fv_try_realloc(v->keys, cap * sizeof(*k));
                if (!k) {
                    *rc = FV_ENOMEM;
                    break;
                }
                v->keys = k;
                v->cap = cap;
            }
            v->keys[v->count++] = fv_strndup(rel->ptr, rel->len);
        }
    }
    rel->len = base;
    if (rel->ptr)
        rel->ptr[base] = '\0';
    closedir(d);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_list(fs_job_t *j)
{
    key_vec_t v = {0};
    fv_buf_t rel;
    fv_buf_init(&rel, 8192);
    int rc = 0;
    walk(j->root, &rel, j->key, &v, &rc);
    fv_buf_dispose(&rel);
    if (rc == 0 && v.count)
        qsort(v.keys, v.count, sizeof(*v.keys), cmp_keys);
    size_t first = 0;
    if (j->cursor)
        while (first < v.count && strcmp(v.keys[first], j->cursor) <= 0)
            first++;
    size_t n = v.count - first;
    if (n > j->max)
        n = j->max;
    if (rc == 0 && n) {
        j->entries = fv_calloc(n, sizeof(*j->entries));
        for (size_t i = 0; i < n; i++) {
            char *key = v.keys[first + i];
            v.keys[first + i] = NULL;
            char *path = join(j->root, key, NULL);
            struct stat st;
            uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
            fv_free(path);
            fv_blob_meta_t m = {0};
            read_meta(j->root, key, size, &m);
            j->entries[i].key = key;
            j->entries[i].size = size;
            j->entries[i].etag = fv_strdup(m.etag);
        }
        j->count = n;
        if (first + n < v.count)
            j->next_cursor = fv_strdup(j->entries[n - 1].key);
    }
    for (size_t i = 0; i < v.count; i++)
        fv_free(v.keys[i]);
    fv_free(v.keys);
    j->rc = rc;
}

static void fs_job_work(uv_work_t *req)
{
    fs_job_t *j = req->data;
    j->rc = 0;
    switch (j->op) {
    case FS_GET:
    case FS_HEAD:
        do_get(j);
        break;
    case FS_DEL:
        do_del(j);
        break;
    case FS_LIST:
        do_list(j);
        break;
    }
}

static void fs_job_after(uv_work_t *req, int status)
{
    fs_job_t *j = req->data;
    fv_blob_t *bs = j->bs;
    int rc = status < 0 ? status : j->rc;
    if (bs->closing)
        rc = FV_ECANCELED;
    switch (j->op) {
    case FS_GET:
        ((fv_blob_get_cb)j->cb)(rc, rc == 0 ? &j->meta : NULL,
                                rc == 0 ? fv_slice(j->body, j->body_len) : FV_SLICE_NULL,
                                j->data);
        break;
    case FS_HEAD:
        ((fv_blob_done_cb)j->cb)(rc, rc == 0 ? &j->meta : NULL, j->data);
        break;
    case FS_DEL:
        ((fv_blob_done_cb)j->cb)(rc, NULL, j->data);
        break;
    case FS_LIST: {
        fv_blob_list_t page = {j->entries, j->count, j->next_cursor};
        ((fv_blob_list_cb)j->cb)(rc, rc == 0 ? &page : NULL, j->data);
        for (size_t i = 0; i < j->count; i++) {
            fv_free((char *)j->entries[i].key);
            fv_free((char *)j->entries[i].etag);
        }
        fv_free(j->entries);
        fv_free(j->next_cursor);
        break;
    }
    }
    fv_free(j->body);
    fv_free(j->root);
    fv_free(j->key);
    fv_free(j->cursor);
    fv_free(j);
    fv__blob_req_end(bs);
}

static int fs_submit(fv_blob_t *bs, int op, const char *key, void *cb, void *data, fs_job_t **out)
{
    fs_job_t *j = fv_calloc(1, sizeof(*j));
    j->work.data = j;
    j->bs = bs;
    j->op = op;
    j->root = fv_strdup(store_of(bs)->root);
    j->key = fv_strdup(key);
    j->max_bytes = bs->max_object_bytes;
    j->cb = cb;
    j->data = data;
    *out = j;
    return 0;
}

static int fs_start(fs_job_t *j)
{
    int rc = uv_queue_work(j->bs->loop, &j->work, fs_job_work, fs_job_after);
    if (rc < 0) {
        fv_free(j->root);
        fv_free(j->key);
        fv_free(j->cursor);
        fv_free(j);
    }
    return rc;
}

static int fs_get(fv_blob_t *bs, const char *key, uint64_t start, uint64_t len,
                  fv_blob_get_cb cb, void *data)
{
    fs_job_t *j;
    if (fs_key_ok(key, NULL) < 0)
        return FV_EINVAL;
    fs_submit(bs, FS_GET, key, (void *)cb, data, &j);
    j->start = start;
    j->len = len;
    return fs_start(j);
}

static int fs_head(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data)
{
    fs_job_t *j;
    if (fs_key_ok(key, NULL) < 0)
        return FV_EINVAL;
    fs_submit(bs, FS_HEAD, key, (void *)cb, data, &j);
    return fs_start(j);
}

static int fs_del(fv_blob_t *bs, const char *key, fv_blob_done_cb cb, void *data)
{
    fs_job_t *j;
    if (fs_key_ok(key, NULL) < 0)
        return FV_EINVAL;
    fs_submit(bs, FS_DEL, key, (void *)cb, data, &j);
    return fs_start(j);
}

static int fs_list(fv_blob_t *bs, const char *prefix, size_t max, const char *cursor,
                   fv_blob_list_cb cb, void *data)
{
    fs_job_t *j;
    fs_submit(bs, FS_LIST, prefix, (void *)cb, data, &j);
    j->max = max;
    j->cursor = cursor ? fv_strdup(cursor) : NULL;
    return fs_start(j);
}

/* ---- presigned tokens ---- */

static void token_mac(const fs_store_t *fs, const char *key, long long expires, char hex[65])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char exp[32];
    int n = snprintf(exp, sizeof(exp), "\n%lld", expires);
    crypto_auth_hmacsha256_init(&st, fs->presign_key, sizeof(fs->presign_key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"GET\n", 4);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)exp, (size_t)n);
    crypto_auth_hmacsha256_final(&st, mac);
    fv__blob_hex(mac, sizeof(mac), hex);
}

static int fs_presign_get(fv_blob_t *bs, const char *key, uint32_t expires_s, int64_t now_s,
                          char **url_out, fv_error_t *err)
{
    int rc = fs_key_ok(key, err);
    if (rc < 0)
        return rc;
    long long expires = (long long)now_s + expires_s;
    char mac[65];
    token_mac(store_of(bs), key, expires, mac);
    fv_buf_t out;
    fv_buf_init(&out, 0);
    rc = fv_buf_append_str(&out, FS_TOKEN_PREFIX);
    if (rc == 0)
        rc = fv__blob_uri_encode(&out, key, strlen(key), 1);
    if (rc == 0)
        rc = fv_buf_printf(&out, "?X-Fv-Expires=%lld&X-Fv-Signature=%s", expires, mac);
    if (rc < 0) {
        fv_buf_dispose(&out);
        return fv_error_set(err, rc, "presign: %s", fv_strerror(rc));
    }
    *url_out = fv_buf_steal(&out, NULL);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int fs_presign_verify(fv_blob_t *bs, const char *url, int64_t now_s, char **key_out,
                             fv_error_t *err)
{
    size_t plen = strlen(FS_TOKEN_PREFIX);
    if (strncmp(url, FS_TOKEN_PREFIX, plen) != 0)
        return fv_error_set(err, FV_EINVAL, "presigned URL does not start with %s",
                            FS_TOKEN_PREFIX);
    const char *path = url + plen;
    const char *q = strchr(path, '?');
    if (!q)
        return fv_error_set(err, FV_EINVAL, "presigned URL has no query");
    size_t enc_len = (size_t)(q - path);
    if (enc_len > 3 * FV_BLOB_MAX_KEY_LEN)
        return fv_error_set(err, FV_EINVAL, "presigned URL key is too long");
    char *key = fv_malloc(enc_len + 1);
    size_t k = 0;
    for (size_t i = 0; i < enc_len; i++) {
        if (path[i] == '%' && i + 2 < enc_len + 1 && hexval(path[i + 1]) >= 0 &&
            hexval(path[i + 2]) >= 0) {
            key[k++] = (char)(hexval(path[i + 1]) * 16 + hexval(path[i + 2]));
            i += 2;
        } else if (path[i] == '%') {
            fv_free(key);
            return fv_error_set(err, FV_EINVAL, "presigned URL has a bad %%-escape");
        } else {
            key[k++] = path[i];
        }
    }
    key[k] = '\0';
    int rc = k == strlen(key) ? fv_blob_key_check(fv_slice(key, k), err)
                              : fv_error_set(err, FV_EINVAL, "presigned URL key has a NUL");
    long long expires = -1;
    char sig[65] = "";
    if (rc == 0) {
        const char *e = strstr(q, "X-Fv-Expires=");
        const char *s = strstr(q, "X-Fv-Signature=");
        if (e) {
            char *end;
            expires = strtoll(e + 13, &end, 10);
            if (end == e + 13 || (*end && *end != '&'))
                expires = -1;
        }
        if (s && strlen(s + 15) >= 64 && (s[15 + 64] == '\0' || s[15 + 64] == '&')) {
            memcpy(sig, s + 15, 64);
            sig[64] = '\0';
        }
        if (expires < 0 || !sig[0])
            rc = fv_error_set(err, FV_EINVAL, "presigned URL lacks X-Fv-Expires or "
                              "X-Fv-Signature");
    }
    if (rc == 0) {
        char mac[65];
        token_mac(store_of(bs), key, expires, mac);
        if (sodium_memcmp(mac, sig, 64) != 0)
            rc = fv_error_set(err, FV_EFORBIDDEN, "presigned URL signature does not match");
        else if (now_s > expires)
            rc = fv_error_set(err, FV_EFORBIDDEN, "presigned URL expired %lld s ago",
                              (long long)(now_s - expires));
    }
    if (rc < 0) {
        fv_free(key);
        return rc;
    }
    *key_out = key;
    return 0;
}

const fv_blob_ops_t fv__blob_fs_ops = {
    .name = "fs",
    .open = fs_open,
    .close = fs_close,
    .put_begin = fs_put_begin,
    .put_write = fs_put_write,
    .put_finish = fs_put_finish,
    .put_abort = fs_put_abort,
    .get = fs_get,
    .head = fs_head,
    .del = fs_del,
    .list = fs_list,
    .presign_get = fs_presign_get,
    .presign_verify = fs_presign_verify,
};
