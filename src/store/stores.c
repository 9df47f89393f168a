/* stores.c - opens the configured stores in order (sql and its migrations first, since the
 * embedded vector store persists there), probes them for /health, closes them in reverse.
 * What each store does is in its own file; this one only wires them to the configuration. */
#include "store/stores.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/str.h"

/* How often each open store is asked whether it is there. */
#define PROBE_INTERVAL_MS 5000

typedef struct probe {
    int rc;               /* last answer: 0, FV_EAGAIN before the first, else the error */
    bool in_flight;
    char msg[200];
} probe_t;

struct fv_stores {
    uv_loop_t *loop;
    const fv_config_t *cfg;
    unsigned kinds;
    fv_sql_t *sql;
    fv_kv_t *kv;
    fv_vector_t *vector;
    fv_blob_t *blob;
    fv_stores_open_cb open_cb;
    void *open_data;
    fv_sql_req_t migrate_req;
    fv_sql_req_t probe_req;
    probe_t probes[4];            /* by bit index of FV_STORE_* */
    uv_timer_t timer;
    bool timer_on;
    bool closing;
    size_t pending_closes;
    void (*close_cb)(void *);
    void *close_data;
};

static int bit_index(unsigned kind)
{
    return kind == FV_STORE_SQL ? 0 : kind == FV_STORE_KV ? 1 : kind == FV_STORE_VECTOR ? 2 : 3;
}

static bool is_absolute_or_special(const char *path)
{
    return path[0] == '/' || path[0] == '\0' || strcmp(path, ":memory:") == 0;
}

int fv_stores_resolve_url(const char *url, const char *data_dir, char *out, size_t out_len)
{
    static const char *const schemes[] = {"sqlite:", "file:", "memory:?snapshot=", NULL};
    int n = -1;
    for (const char *const *sc = schemes; *sc; sc++) {
        size_t len = strlen(*sc);
        if (strncmp(url, *sc, len) != 0)
            continue;
        const char *path = url + len;
        if (strncmp(path, "//", 2) == 0 || is_absolute_or_special(path))
            break;   /* file:///abs, sqlite:/abs, sqlite::memory: stay as they are */
        if (strncmp(path, "./", 2) == 0)
            path += 2;
        n = snprintf(out, out_len, "%.*s%s/%s", (int)len, url, data_dir, path);
        return n < 0 || (size_t)n >= out_len ? FV_ETOOBIG : 0;
    }
    n = snprintf(out, out_len, "%s", url);
    return n < 0 || (size_t)n >= out_len ? FV_ETOOBIG : 0;
}

/* ---- probes ---- */

static void probe_done(fv_stores_t *s, unsigned kind, const char *backend, int rc)
{
    probe_t *p = &s->probes[bit_index(kind)];
    p->in_flight = false;
    if ((rc == 0) != (p->rc == 0) && p->rc != FV_EAGAIN) {
        if (rc == 0)
            fv_log_info("store", "%s is back", backend);
        else
            fv_log_warn("store", "%s is not answering: %s", backend, fv_strerror(rc));
    }
    p->rc = rc;
    if (rc == 0)
        snprintf(p->msg, sizeof(p->msg), "%s: ok", backend);
    else
        snprintf(p->msg, sizeof(p->msg), "%s: %s", backend, fv_strerror(rc));
}

/* A cancelled probe (the stores are closing) touches nothing: its handle may be gone. */
static void on_sql_probe(fv_sql_req_t *req, int rc, const fv_sql_result_t *res)
{
    fv_stores_t *s = req->data;
    if (rc != FV_ECANCELED)
        probe_done(s, FV_STORE_SQL, fv_sql_backend(s->sql), rc);
}

static void on_kv_probe(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    fv_stores_t *s = data;
    if (status != FV_ECANCELED)
        probe_done(s, FV_STORE_KV, fv_kv_backend_name(kv), status);
}

static void on_vector_probe(int rc, const fv_vector_hit_t *hits, size_t count,
                            const fv_error_t *err, void *data)
{
    fv_stores_t *s = data;
    /* The probe searches a collection that does not exist: "not found" is a good answer. */
    if (rc != FV_ECANCELED)
        probe_done(s, FV_STORE_VECTOR, fv_vector_backend(s->vector), rc == FV_ENOENT ? 0 : rc);
}

static void on_blob_probe(int rc, const fv_blob_meta_t *meta, void *data)
{
    fv_stores_t *s = data;
    if (rc != FV_ECANCELED)
        probe_done(s, FV_STORE_BLOB, fv_blob_backend(s->blob), rc == FV_ENOENT ? 0 : rc);
}

static void probe_all(fv_stores_t *s)
{
    probe_t *p;
    if (s->sql && !(p = &s->probes[0])->in_flight) {
        s->probe_req.data = s;
        p->in_flight = fv_sql_exec(s->sql, &s->probe_req, "SELECT 1", NULL, 0, on_sql_probe) == 0;
    }
    if (s->kv && !(p = &s->probes[1])->in_flight)
        p->in_flight = fv_kv_get(s->kv, FV_SLICE_LIT("finalverse:probe"), on_kv_probe, s) == 0;
    if (s->vector && !(p = &s->probes[2])->in_flight) {
        static const float query[1] = {1.0f};
        p->in_flight = fv_vector_search(s->vector, "finalverse-probe", query, 1, 1, NULL,
                                        on_vector_probe, s) == 0;
    }
    if (s->blob && !(p = &s->probes[3])->in_flight)
        p->in_flight = fv_blob_head(s->blob, "finalverse-probe", on_blob_probe, s, NULL) == 0;
}

static void on_probe_timer(uv_timer_t *t)
{
    probe_all(t->data);
}

int fv_stores_check(const fv_stores_t *s, unsigned kind, char *msg, size_t msg_len)
{
    const probe_t *p = &s->probes[bit_index(kind)];
    fv_str_copy(msg, msg_len, p->rc == FV_EAGAIN ? "not probed yet" : p->msg);
    return p->rc;
}

/* ---- opening ---- */

static void open_finish(fv_stores_t *s, int rc, const fv_error_t *err)
{
    if (rc == 0) {
        if (!s->timer_on) {
            uv_timer_init(s->loop, &s->timer);
            s->timer.data = s;
            s->timer_on = true;
        }
        uv_timer_start(&s->timer, on_probe_timer, 0, PROBE_INTERVAL_MS);
    }
    fv_stores_open_cb cb = s->open_cb;
    s->open_cb = NULL;
    if (cb)
        cb(s, rc, err, s->open_data);
}

static void on_vector_open(int rc, fv_vector_t *v, const fv_error_t *err, void *data)
{
    fv_stores_t *s = data;
    if (rc < 0) {
        fv_error_t e;
        fv_error_set(&e, rc, "vector.url: %s", err ? err->msg : fv_strerror(rc));
        open_finish(s, rc, &e);
        return;
    }
    s->vector = v;
    open_finish(s, 0, NULL);
}

/* After sql: kv and blob open at once (their backends connect in the background), the vector
 * store last because it may load its collections from sql. */
static void open_rest(fv_stores_t *s)
{
    const fv_config_t *cfg = s->cfg;
    char url[1024];
    fv_error_t err, e;
    int rc;

    if (s->kinds & FV_STORE_KV) {
        fv_kv_opts_t o = {0};
        if ((rc = fv_stores_resolve_url(cfg->redis.url, cfg->general.data_dir, url,
                                        sizeof(url))) < 0 ||
            (rc = fv_kv_open(s->loop, url, &o, &s->kv, &err)) < 0) {
            fv_error_set(&e, rc, "redis.url: %s", rc == FV_ETOOBIG ? "too long" : err.msg);
            open_finish(s, rc, &e);
            return;
        }
    }
    if (s->kinds & FV_STORE_BLOB) {
        fv_blob_opts_t o = {0};
        o.max_object_bytes = cfg->storage.max_object_bytes;
        o.access_key = cfg->storage.access_key[0] ? cfg->storage.access_key : NULL;
        o.secret_key = cfg->storage.secret_key[0] ? cfg->storage.secret_key : NULL;
        if ((rc = fv_stores_resolve_url(cfg->storage.url, cfg->general.data_dir, url,
                                        sizeof(url))) < 0 ||
            (rc = fv_blob_open(s->loop, url, &o, &s->blob, &err)) < 0) {
            fv_error_set(&e, rc, "storage.url: %s", rc == FV_ETOOBIG ? "too long" : err.msg);
            open_finish(s, rc, &e);
            return;
        }
    }
    if (s->kinds & FV_STORE_VECTOR) {
        fv_vector_opts_t o;
        fv_vector_opts_default(&o);
        o.sql = s->sql;
        if ((rc = fv_vector_open(s->loop, cfg->vector.url, &o, on_vector_open, s, &err)) < 0) {
            fv_error_set(&e, rc, "vector.url: %s", err.msg);
            open_finish(s, rc, &e);
        }
        return;
    }
    open_finish(s, 0, NULL);
}

static void on_migrated(fv_sql_req_t *req, int rc)
{
    fv_stores_t *s = req->data;
    if (rc < 0) {
        fv_error_t e;
        fv_error_set(&e, rc, "database.url: cannot apply migrations: %s", req->err.msg);
        open_finish(s, rc, &e);
        return;
    }
    open_rest(s);
}

static void on_open_without_sql(uv_timer_t *t)
{
    open_rest(t->data);
}

int fv_stores_open(uv_loop_t *loop, const fv_config_t *cfg, unsigned kinds, fv_stores_t **out,
                   fv_stores_open_cb cb, void *data)
{
    fv_stores_t *s = fv_calloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    /* The embedded vector store keeps its points in the sql store. */
    if ((kinds & FV_STORE_VECTOR) && strncmp(cfg->vector.url, "embedded:", 9) == 0)
        kinds |= FV_STORE_SQL;
    s->kinds = kinds;
    s->open_cb = cb;
    s->open_data = data;
    for (int i = 0; i < 4; i++)
        s->probes[i].rc = FV_EAGAIN;
    *out = s;

    if (kinds & FV_STORE_SQL) {
        char url[1024];
        fv_error_t err;
        fv_sql_opts_t o = {0};
        o.pool_size = cfg->database.pool_size;
        int rc = fv_stores_resolve_url(cfg->database.url, cfg->general.data_dir, url,
                                       sizeof(url));
        if (rc < 0 || (rc = fv_sql_open(loop, url, &o, &s->sql, &err)) < 0) {
            fv_log_error("store", "database.url: %s", rc == FV_ETOOBIG ? "too long" : err.msg);
            fv_free(s);
            *out = NULL;
            return rc;
        }
        s->migrate_req.data = s;
        if ((rc = fv_sql_migrate(s->sql, &s->migrate_req, on_migrated)) < 0) {
            fv_log_error("store", "database.url: cannot start migrations: %s",
                         s->migrate_req.err.msg);
            fv_sql_close(s->sql, NULL, NULL);
            fv_free(s);
            *out = NULL;
            return rc;
        }
        return 0;
    }
    /* Nothing asynchronous to wait for: still answer from the loop, never inside this call. */
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->timer_on = true;
    uv_timer_start(&s->timer, on_open_without_sql, 0, 0);
    return 0;
}

/* ---- accessors ---- */

fv_sql_t *fv_stores_sql(const fv_stores_t *s)
{
    return s->sql;
}

fv_kv_t *fv_stores_kv(const fv_stores_t *s)
{
    return s->kv;
}

fv_vector_t *fv_stores_vector(const fv_stores_t *s)
{
    return s->vector;
}

fv_blob_t *fv_stores_blob(const fv_stores_t *s)
{
    return s->blob;
}

/* ---- closing ---- */

static void close_step(void *data)
{
    fv_stores_t *s = data;
    if (--s->pending_closes > 0)
        return;
    if (s->sql) {
        /* Last: the vector store borrowed it until its own close finished. */
        fv_sql_t *sql = s->sql;
        s->sql = NULL;
        s->pending_closes = 1;
        fv_sql_close(sql, close_step, s);
        return;
    }
    void (*cb)(void *) = s->close_cb;
    void *cb_data = s->close_data;
    fv_free(s);
    if (cb)
        cb(cb_data);
}

static void on_timer_closed(uv_handle_t *h)
{
    close_step(h->data);
}

void fv_stores_close(fv_stores_t *s, void (*cb)(void *data), void *data)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    s->pending_closes = 1;   /* held until every close below has been asked for */
    if (s->timer_on) {
        s->pending_closes++;
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        s->timer_on = false;
    }
    if (s->vector) {
        s->pending_closes++;
        fv_vector_close(s->vector, close_step, s);
        s->vector = NULL;
    }
    if (s->kv) {
        s->pending_closes++;
        fv_kv_close(s->kv, close_step, s);
        s->kv = NULL;
    }
    if (s->blob) {
        s->pending_closes++;
        fv_blob_close(s->blob, close_step, s);
        s->blob = NULL;
    }
    close_step(s);
}
