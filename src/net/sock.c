/* sock.c - one accepted connection of the HTTP server under a swappable protocol driver: the
 * TCP handle, the read buffer, the write queue with its byte ceiling, the deadline timer, the
 * graceful end (shutdown and linger), the server's connection set, and socketless (detached)
 * sockets for fuzzing and tests. What the bytes mean is the driver's business (http_conn.c is
 * HTTP/1). */
#include "net/sock.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "net/fd_budget.h"
#include "net/http_internal.h"

struct fv_sock_write {
    uv_write_t req;
    fv_sock_t *sock;
    struct fv_sock_write *next;
    fv_buf_t head;
    char *owned;                    /* fv_free()d once written */
    void (*release)(void *);        /* or this runs, for a body shared by many writes */
    void *release_data;
    size_t queued;                  /* bytes of this write counted in out_bytes */
};

/* Forward-only lifecycle. */
typedef enum sock_state {
    SOCK_OPEN,
    SOCK_ENDING,        /* fv_sock_end: waiting for the queued writes */
    SOCK_LINGER,        /* write side shut, dropping input */
    SOCK_CLOSING,       /* uv_close issued; freed when the handles are closed */
} sock_state_t;

struct fv_sock {
    uv_tcp_t tcp;
    uint64_t deadline;              /* loop time of the deadline; 0 = none */
    uint64_t heap_key;              /* when the server's deadline heap has it due */
    uint32_t heap_idx;              /* its place in that heap; HEAP_NONE when not in it */
    fv_http_server_t *server;
    fv_sock_t *prev;
    fv_sock_t *next;
    sock_state_t state;
    const fv_sock_driver_t *driver;
    void *data;
    const fv_sock_driver_t *next_driver;   /* a switch waiting for on_data to return */
    void *next_data;
    char *rbuf;                     /* bytes read and not yet consumed */
    size_t rlen;
    size_t rcap;
    fv_sock_write_t *free_writes;
    size_t writes_pending;
    size_t out_bytes;               /* handed to uv_write and not yet written */
    int handles_open;
    bool reading;
    bool in_data;                   /* inside the driver's on_data */
    bool upgraded;                  /* counted in the server's upgraded */
    bool detached;                  /* no socket: output goes to sink */
    bool budgeted;                  /* counted in the process's connection budget */
    fv_peer_key_t peer_key;         /* counted in the server's peers when len > 0 */
    fv_buf_t *sink;
    char *peer;                     /* "ip:port", formatted on first use */
};

static void sock_pump(fv_sock_t *s);
static void write_free(fv_sock_write_t *w);
static void sock_linger(fv_sock_t *s);
static int read_start(fv_sock_t *s);

static const char *state_name(sock_state_t st)
{
    switch (st) {
    case SOCK_OPEN: return "open";
    case SOCK_ENDING: return "ending";
    case SOCK_LINGER: return "linger";
    case SOCK_CLOSING: return "closing";
    }
    return "?";
}

static void set_state(fv_sock_t *s, sock_state_t to)
{
    assert(to > s->state);
    fv_log_debug("http", "sock=%p %s -> %s", (void *)s, state_name(s->state), state_name(to));
    s->state = to;
}

/* ---- the deadline ----
 *
 * One deadline per socket, kept in one min-heap per server under one uv timer, so a socket
 * costs no timer handle of its own (10,000 idle WebSocket connections would hold 10,000). The
 * heap is updated lazily: arming records the deadline and touches the heap only when the new
 * deadline is earlier than the socket's place in it; clearing only forgets the deadline. An
 * entry that comes due early is put back for what is left (nginx keeps its timers the same
 * way). Under keep-alive load that is at most one heap operation per request. */
#define HEAP_NONE UINT32_MAX

static void heap_swap(fv_http_server_t *srv, uint32_t a, uint32_t b)
{
    fv_sock_t *t = srv->dl_heap[a];
    srv->dl_heap[a] = srv->dl_heap[b];
    srv->dl_heap[b] = t;
    srv->dl_heap[a]->heap_idx = a;
    srv->dl_heap[b]->heap_idx = b;
}

static void heap_up(fv_http_server_t *srv, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (srv->dl_heap[parent]->heap_key <= srv->dl_heap[i]->heap_key)
            break;
        heap_swap(srv, i, parent);
        i = parent;
    }
}

static void heap_down(fv_http_server_t *srv, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < srv->dl_count && srv->dl_heap[l]->heap_key < srv->dl_heap[m]->heap_key)
            m = l;
        if (r < srv->dl_count && srv->dl_heap[r]->heap_key < srv->dl_heap[m]->heap_key)
            m = r;
        if (m == i)
            return;
        heap_swap(srv, i, m);
        i = m;
    }
}

static void heap_remove(fv_sock_t *s)
{
    fv_http_server_t *srv = s->server;
    uint32_t i = s->heap_idx;
    if (i == HEAP_NONE)
        return;
    s->heap_idx = HEAP_NONE;
    uint32_t last = (uint32_t)--srv->dl_count;
    if (i == last)
        return;
    srv->dl_heap[i] = srv->dl_heap[last];
    srv->dl_heap[i]->heap_idx = i;
    heap_down(srv, i);
    heap_up(srv, i);
}

/* Puts s in the heap (or moves it earlier) at key. */
static void heap_set(fv_sock_t *s, uint64_t key)
{
    fv_http_server_t *srv = s->server;
    if (s->heap_idx != HEAP_NONE) {
        s->heap_key = key;
        heap_up(srv, s->heap_idx);
        return;
    }
    if (srv->dl_count == srv->dl_cap) {
        srv->dl_cap = srv->dl_cap ? srv->dl_cap * 2 : 64;
        srv->dl_heap = fv_realloc(srv->dl_heap, srv->dl_cap * sizeof(*srv->dl_heap));
    }
    s->heap_key = key;
    s->heap_idx = (uint32_t)srv->dl_count;
    srv->dl_heap[srv->dl_count++] = s;
    heap_up(srv, s->heap_idx);
}

static void on_deadlines(uv_timer_t *t);

/* The server's timer, set for the heap's first entry when that is earlier than it was set for. */
static void timer_arm(fv_http_server_t *srv)
{
    if (srv->dl_count == 0 || srv->closing)
        return;
    uint64_t first = srv->dl_heap[0]->heap_key;
    if (srv->dl_due != 0 && srv->dl_due <= first)
        return;
    if (!srv->dl_timer_open) {
        uv_timer_init(srv->loop, &srv->dl_timer);
        srv->dl_timer.data = srv;
        srv->dl_timer_open = true;
        srv->handles_open++;
    }
    uint64_t now = uv_now(srv->loop);
    srv->dl_due = first;
    uv_timer_start(&srv->dl_timer, on_deadlines, first > now ? first - now : 0, 0);
}

static void sock_timed_out(fv_sock_t *s)
{
    if (s->state >= SOCK_ENDING || !s->driver->on_timeout)
        fv_sock_close(s);
    else
        s->driver->on_timeout(s, s->data);
}

static void on_deadlines(uv_timer_t *t)
{
    fv_http_server_t *srv = t->data;
    srv->epoch++;
    srv->dl_due = 0;
    uint64_t now = uv_now(t->loop);
    /* bounded, so a handler that re-arms for "now" cannot keep this callback going */
    size_t budget = srv->dl_count + 16;
    while (srv->dl_count && srv->dl_heap[0]->heap_key <= now && budget-- > 0) {
        fv_sock_t *s = srv->dl_heap[0];
        heap_remove(s);
        if (s->deadline == 0)
            continue;                       /* cleared since it was armed */
        if (now < s->deadline) {
            heap_set(s, s->deadline);       /* moved later since: wait for the rest */
            continue;
        }
        s->deadline = 0;
        sock_timed_out(s);
    }
    timer_arm(srv);
}

void fv_sock_deadline(fv_sock_t *s, uint32_t ms)
{
    if (s->detached || s->state >= SOCK_CLOSING)
        return;
    s->deadline = uv_now(s->server->loop) + ms;
    if (s->heap_idx == HEAP_NONE || s->heap_key > s->deadline) {
        heap_set(s, s->deadline);
        timer_arm(s->server);
    }
}

void fv_sock_deadline_clear(fv_sock_t *s)
{
    s->deadline = 0;   /* its heap entry may still come due; it then finds nothing to do */
}

/* The server closes: its deadline timer goes with it. */
void fv__sock_deadlines_close(fv_http_server_t *srv, uv_close_cb closed)
{
    if (srv->dl_timer_open) {
        srv->dl_timer_open = false;
        uv_close((uv_handle_t *)&srv->dl_timer, closed);
    }
}

/* ---- closing ---- */

static void sock_unlink(fv_sock_t *s)
{
    fv_http_server_t *srv = s->server;
    if (s->prev)
        s->prev->next = s->next;
    else if (srv->socks == s)
        srv->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    srv->conn_count--;
    if (s->peer_key.len)
        fv_peer_limit_remove(srv->peers, &s->peer_key);
}

/* Runs the drivers' last callbacks and frees everything but s itself. */
static void sock_release(fv_sock_t *s)
{
    if (s->driver->on_free)
        s->driver->on_free(s, s->data);
    if (s->next_driver) {
        /* a switch asked for while closing: the new driver still gets its end */
        if (s->next_driver->on_close)
            s->next_driver->on_close(s, s->next_data);
        if (s->next_driver->on_free)
            s->next_driver->on_free(s, s->next_data);
    }
    if (s->upgraded)
        s->server->upgraded--;
    if (s->rbuf && !s->detached)
        s->server->rbufs_held--;
    fv_free(s->rbuf);
    fv_free(s->peer);
    while (s->free_writes) {
        fv_sock_write_t *w = s->free_writes;
        s->free_writes = w->next;
        write_free(w);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    fv_sock_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    fv_http_server_t *srv = s->server;
    if (s->budgeted)
        fv__fd_budget_release();
    sock_release(s);
    fv_free(s);
    fv__http_server_conn_gone(srv);
}

void fv_sock_close(fv_sock_t *s)
{
    if (s->state >= SOCK_CLOSING)
        return;                       /* many paths end here; only the first counts */
    set_state(s, SOCK_CLOSING);
    if (s->driver->on_close)
        s->driver->on_close(s, s->data);
    if (s->detached)
        return;
    sock_unlink(s);
    heap_remove(s);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

bool fv_sock_is_open(const fv_sock_t *s)
{
    return s->state == SOCK_OPEN;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* nothing else to do: the linger deadline or the peer's EOF closes the socket */
    (void)status;
    fv_free(req);
}

/* The last bytes are out: send FIN, then read and drop what the peer still sends for a
 * moment, so a peer still sending (a refused body) reads our answer instead of a reset. */
static void sock_linger(fv_sock_t *s)
{
    if (s->state >= SOCK_LINGER)
        return;
    set_state(s, SOCK_LINGER);
    if (s->detached)
        return;
    s->rlen = 0;
    /* allocated now, not held by every socket for its whole life */
    uv_shutdown_t *req = fv_malloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&s->tcp, on_shutdown) < 0) {
        fv_free(req);
        fv_sock_close(s);
        return;
    }
    if (!s->reading)
        (void)read_start(s);
    fv_sock_deadline(s, FV_SOCK_LINGER_MS);
}

void fv_sock_end(fv_sock_t *s)
{
    if (s->state >= SOCK_ENDING)
        return;
    set_state(s, SOCK_ENDING);
    if (s->writes_pending == 0) {
        sock_linger(s);
        return;
    }
    /* a peer that never reads must not keep the socket forever */
    fv_sock_deadline(s, s->server->lim.idle_timeout_ms);
}

/* ---- writing ---- */

bool fv_sock_output_full(const fv_sock_t *s)
{
    return s->out_bytes > s->server->lim.max_output_bytes;
}

size_t fv_sock_output_bytes(const fv_sock_t *s)
{
    return s->out_bytes;
}

static void out_add(fv_sock_t *s, fv_sock_write_t *w, size_t len)
{
    fv_http_server_t *srv = s->server;
    w->queued = len;
    s->out_bytes += len;
    srv->out_bytes += len;
    if (srv->out_bytes > srv->out_bytes_peak)
        srv->out_bytes_peak = srv->out_bytes;
}

/* ---- write records ----
 *
 * A socket with nothing queued holds no write record: its spares go to a short per-server
 * pool, so 10,000 idle WebSocket connections cost no record each, and the next write on any
 * socket still needs no malloc. */
#define WPOOL_MAX 256
#define WPOOL_HEAD_MAX 4096

static void write_free(fv_sock_write_t *w)
{
    fv_buf_dispose(&w->head);
    fv_free(w);
}

static void writes_to_pool(fv_sock_t *s)
{
    fv_http_server_t *srv = s->server;
    while (s->free_writes) {
        fv_sock_write_t *w = s->free_writes;
        s->free_writes = w->next;
        if (srv->wpool_count >= WPOOL_MAX) {
            write_free(w);
            continue;
        }
        if (w->head.cap > WPOOL_HEAD_MAX) {
            fv_buf_dispose(&w->head);
            fv_buf_init(&w->head, 0);
        }
        w->next = srv->wpool;
        srv->wpool = w;
        srv->wpool_count++;
    }
}

static void write_done(fv_sock_t *s, fv_sock_write_t *w, int status)
{
    s->out_bytes -= w->queued;
    s->server->out_bytes -= w->queued;
    w->queued = 0;
    fv_free(w->owned);
    w->owned = NULL;
    if (w->release) {
        void (*release)(void *) = w->release;
        w->release = NULL;
        release(w->release_data);
    }
    fv_buf_reset(&w->head);
    if (w->head.cap > 16 * 1024) {
        fv_buf_dispose(&w->head);
        fv_buf_init(&w->head, 0);
    }
    w->next = s->free_writes;
    s->free_writes = w;
    s->writes_pending--;
    if (s->writes_pending == 0)
        writes_to_pool(s);
    if (status < 0) {
        fv_sock_close(s);
        return;
    }
    if (s->state == SOCK_ENDING && s->writes_pending == 0)
        sock_linger(s);
}

/* Back-pressure: while more than the ceiling is queued nothing is parsed or read, so at most
 * one driver output over the ceiling is ever queued; this resumes once libuv drained it. */
static void on_write(uv_write_t *req, int status)
{
    fv_sock_write_t *w = req->data;
    fv_sock_t *s = w->sock;
    s->server->epoch++;
    bool was_full = fv_sock_output_full(s);
    write_done(s, w, status);
    if (!was_full || fv_sock_output_full(s) || s->state != SOCK_OPEN)
        return;
    if (s->driver->on_writable)
        s->driver->on_writable(s, s->data);
    sock_pump(s);
}

fv_sock_write_t *fv_sock_write_get(fv_sock_t *s)
{
    fv_sock_write_t *w = s->free_writes;
    fv_http_server_t *srv = s->server;
    if (w) {
        s->free_writes = w->next;
    } else if (srv->wpool) {
        w = srv->wpool;
        srv->wpool = w->next;
        srv->wpool_count--;
    } else {
        w = fv_calloc(1, sizeof(*w));
        w->req.data = w;
        fv_buf_init(&w->head, 0);
    }
    w->sock = s;
    w->next = NULL;
    w->owned = NULL;
    w->release = NULL;
    w->queued = 0;
    s->writes_pending++;
    return w;
}

fv_buf_t *fv_sock_write_head(fv_sock_write_t *w)
{
    return &w->head;
}

void fv_sock_write_drop(fv_sock_t *s, fv_sock_write_t *w)
{
    write_done(s, w, 0);
}

void fv_sock_write_send_shared(fv_sock_t *s, fv_sock_write_t *w, const char *body, size_t len,
                               void (*release)(void *), void *release_data)
{
    w->release = release;
    w->release_data = release_data;
    fv_sock_write_send(s, w, body, len, NULL);
}

void fv_sock_write_send(fv_sock_t *s, fv_sock_write_t *w, const char *body, size_t len,
                        char *owned)
{
    w->owned = owned;
    if (s->state >= SOCK_LINGER) {
        write_done(s, w, 0);
        return;
    }
    if (s->detached) {
        if (w->head.len && fv_buf_append(s->sink, w->head.ptr, w->head.len) < 0)
            fv_log_debug("http", "detached output dropped");
        if (len && fv_buf_append(s->sink, body, len) < 0)
            fv_log_debug("http", "detached output dropped");
        write_done(s, w, 0);
        return;
    }
    uv_buf_t iov[2];
    unsigned nbufs = 0;
    if (w->head.len)
        iov[nbufs++] = uv_buf_init(w->head.ptr, (unsigned)w->head.len);
    if (len)
        iov[nbufs++] = uv_buf_init((char *)body, (unsigned)len);
    if (nbufs == 0) {
        write_done(s, w, 0);
        return;
    }
    /* Try the write now: output that fits the socket buffer (nearly all) then costs one
     * writev and no write request, no POLLOUT round trip and no epoll_ctl. libuv refuses the
     * try (UV_EAGAIN) while earlier writes are queued, so order is kept. */
    size_t total = w->head.len + len;
    int tried = uv_try_write((uv_stream_t *)&s->tcp, iov, nbufs);
    if (tried >= 0 && (size_t)tried == total) {
        write_done(s, w, 0);
        return;
    }
    if (tried < 0 && tried != UV_EAGAIN) {
        write_done(s, w, tried);
        return;
    }
    if (tried > 0) {
        size_t done = (size_t)tried;
        if (done >= iov[0].len) {
            iov[1].base += done - iov[0].len;
            iov[1].len -= done - iov[0].len;
            iov[0] = iov[1];
            nbufs = 1;
        } else {
            iov[0].base += done;
            iov[0].len -= done;
        }
    }
    out_add(s, w, total - (tried > 0 ? (size_t)tried : 0));
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, iov, nbufs, on_write);
    if (rc < 0) {
        fv_log_debug("http", "write failed: %s", uv_strerror(rc));
        write_done(s, w, rc);
    }
}

void fv_sock_write(fv_sock_t *s, const void *data, size_t len)
{
    fv_sock_write_t *w = fv_sock_write_get(s);
    if (fv_buf_append(&w->head, data, len) < 0) {
        write_done(s, w, FV_ENOMEM);
        return;
    }
    fv_sock_write_send(s, w, NULL, 0, NULL);
}

/* ---- read buffers ----
 *
 * A socket holds a read buffer only while it holds unconsumed bytes: an idle keep-alive
 * connection (nearly all of them, on a busy server) costs no buffer. Emptied buffers of the
 * smallest size go back to a short per-server pool, so the next read does not call malloc;
 * bigger ones (grown for pipelining or an upgraded driver) are freed. */
#define RBUF_POOL_MAX 64

static void rbuf_release(fv_sock_t *s)
{
    fv_http_server_t *srv = s->server;
    if (!s->rbuf)
        return;
    if (s->rcap == FV_SOCK_RBUF_MIN && srv->rbuf_pool_count < RBUF_POOL_MAX) {
        *(void **)s->rbuf = srv->rbuf_pool;
        srv->rbuf_pool = s->rbuf;
        srv->rbuf_pool_count++;
    } else {
        fv_free(s->rbuf);
    }
    s->rbuf = NULL;
    s->rcap = 0;
    s->rlen = 0;
    srv->rbufs_held--;
}

static void rbuf_acquire(fv_sock_t *s)
{
    fv_http_server_t *srv = s->server;
    if (srv->rbuf_pool) {
        s->rbuf = srv->rbuf_pool;
        srv->rbuf_pool = *(void **)s->rbuf;
        srv->rbuf_pool_count--;
    } else {
        s->rbuf = fv_malloc(FV_SOCK_RBUF_MIN);
    }
    s->rcap = FV_SOCK_RBUF_MIN;
    srv->rbufs_held++;
}

void fv__sock_pool_free(fv_http_server_t *srv)
{
    while (srv->rbuf_pool) {
        void *b = srv->rbuf_pool;
        srv->rbuf_pool = *(void **)b;
        fv_free(b);
    }
    srv->rbuf_pool_count = 0;
    while (srv->wpool) {
        fv_sock_write_t *w = srv->wpool;
        srv->wpool = w->next;
        write_free(w);
    }
    srv->wpool_count = 0;
}

/* ---- reading and the driver ---- */

static void switch_driver(fv_sock_t *s)
{
    const fv_sock_driver_t *old = s->driver;
    void *old_data = s->data;
    s->driver = s->next_driver;
    s->data = s->next_data;
    s->next_driver = NULL;
    s->next_data = NULL;
    if (!s->upgraded) {
        s->upgraded = true;
        s->server->upgraded++;
    }
    fv_log_debug("http", "sock=%p %s -> %s", (void *)s, old->name, s->driver->name);
    if (old->on_close)
        old->on_close(s, old_data);
    if (old->on_free)
        old->on_free(s, old_data);
}

static void read_update(fv_sock_t *s)
{
    if (s->detached || s->state >= SOCK_LINGER)
        return;
    if (fv_sock_output_full(s)) {
        if (s->reading) {
            uv_read_stop((uv_stream_t *)&s->tcp);
            s->reading = false;
        }
        return;
    }
    if (!s->reading && (s->rcap == 0 || s->rlen < s->rcap))
        (void)read_start(s);
}

/* Offers the buffered bytes to the driver until it takes no more, switching drivers between
 * calls. Calls made from inside on_data return at once: the loop here goes on after it. */
static void sock_pump(fv_sock_t *s)
{
    if (s->in_data)
        return;
    s->in_data = true;
    while (s->state < SOCK_CLOSING) {
        if (s->next_driver)
            switch_driver(s);
        if (s->state != SOCK_OPEN || s->rlen == 0 || fv_sock_output_full(s))
            break;
        size_t used = s->driver->on_data(s, s->data, s->rbuf, s->rlen);
        if (used > s->rlen)
            used = s->rlen;
        if (used && used < s->rlen)
            memmove(s->rbuf, s->rbuf + used, s->rlen - used);
        s->rlen -= used;
        if (used == 0 && !s->next_driver)
            break;
    }
    s->in_data = false;
    if (s->rlen == 0 && !s->detached && s->state < SOCK_CLOSING)
        rbuf_release(s);
    read_update(s);
}

void fv_sock_process(fv_sock_t *s)
{
    sock_pump(s);
}

int fv_sock_set_driver(fv_sock_t *s, const fv_sock_driver_t *d, void *state)
{
    if (!d || !d->on_data)
        return FV_EINVAL;
    if (s->next_driver)
        return FV_EEXIST;
    s->next_driver = d;
    s->next_data = state;
    /* the old driver's deadline is not the new one's; cleared now, so the new driver may set
     * its own before the switch takes effect */
    fv_sock_deadline_clear(s);
    if (s->state < SOCK_CLOSING)
        sock_pump(s);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fv_sock_t *s = h->data;
    if (s->state == SOCK_LINGER)
        s->rlen = 0;                        /* dropping input */
    if (!s->rbuf)
        rbuf_acquire(s);
    if (s->rcap - s->rlen < 4096 && s->rcap < FV_SOCK_RBUF_MAX) {
        size_t cap = s->rcap * 2;
        if (cap > FV_SOCK_RBUF_MAX)
            cap = FV_SOCK_RBUF_MAX;
        s->rbuf = fv_realloc(s->rbuf, cap);
        s->rcap = cap;
    }
    *buf = uv_buf_init(s->rbuf + s->rlen, (unsigned)(s->rcap - s->rlen));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    fv_sock_t *s = stream->data;
    s->server->epoch++;
    if (nread == UV_ENOBUFS) {
        /* read buffer full and the driver takes nothing now: wait until it does */
        uv_read_stop(stream);
        s->reading = false;
        return;
    }
    if (nread < 0) {
        fv_sock_close(s);
        return;
    }
    if (nread == 0) {
        if (s->rlen == 0 && s->state < SOCK_LINGER)
            rbuf_release(s);
        return;
    }
    if (s->state == SOCK_LINGER) {
        s->rlen = 0;
        return;
    }
    s->rlen += (size_t)nread;
    sock_pump(s);
}

static int read_start(fv_sock_t *s)
{
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    s->reading = rc == 0;
    return rc;
}

/* ---- the server's side ---- */

/* Counts the connection under its client address; false when that address is over
 * max_connections_per_client (one client must not take every connection slot). */
static bool peer_admit(fv_http_server_t *srv, fv_sock_t *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (!srv->peers)
        srv->peers = fv_peer_limit_new();
    fv_peer_key_from((const struct sockaddr *)&ss, &s->peer_key);
    uint32_t n = fv_peer_limit_add(srv->peers, &s->peer_key);
    if (n <= srv->lim.max_connections_per_client)
        return true;
    fv_log_info("http", "%s: over %" PRIu32 " connections from one client; closed",
                fv_sock_peer(s), srv->lim.max_connections_per_client);
    return false;
}

/* The process holds as many connections as its descriptor budget allows: this one gets a 503
 * and a graceful end (what the client already sent is read and dropped for a moment, so it
 * reads the 503 rather than a reset), and the descriptors left stay free for what the modules
 * open. */
static void refuse_full(fv_http_server_t *srv, fv_sock_t *s)
{
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: finalverse\r\n"
        "Content-Type: application/json\r\nContent-Length: 76\r\nRetry-After: 1\r\n"
        "Connection: close\r\n\r\n"
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; try again\"}}";
    fv_sock_write(s, busy, sizeof(busy) - 1);
    srv->refused_full++;
    uint64_t now = uv_now(srv->loop);
    if (srv->refused_logged_at == 0 || now - srv->refused_logged_at >= 10000) {
        fv_log_warn("http", "port %d: the process holds %zu connections, its limit; "
                    "answering 503 (%llu refused so far)", srv->port, fv__fd_budget_used(),
                    (unsigned long long)srv->refused_full);
        srv->refused_logged_at = now;
    }
    fv_sock_end(s);
}

void fv__sock_accept(fv_http_server_t *srv)
{
    fv_sock_t *s = fv_calloc(1, sizeof(*s));
    s->server = srv;
    uv_tcp_init(srv->loop, &s->tcp);
    s->tcp.data = s;
    s->heap_idx = HEAP_NONE;
    s->handles_open = 1;
    srv->handles_open++;
    s->next = srv->socks;
    if (srv->socks)
        srv->socks->prev = s;
    srv->socks = s;
    srv->conn_count++;
    s->driver = &fv__http1_driver;
    s->data = fv__http1_new(srv, s);
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&s->tcp) < 0) {
        fv_sock_close(s);
        return;
    }
    if (srv->conn_count > srv->lim.max_connections || srv->stopping) {
        fv_sock_close(s);
        return;
    }
    if (!(s->budgeted = fv__fd_budget_take())) {
        refuse_full(srv, s);
        return;
    }
    if (srv->lim.max_connections_per_client && !peer_admit(srv, s)) {
        fv_sock_close(s);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    if (read_start(s) < 0) {
        fv_sock_close(s);
        return;
    }
    /* a new connection should send something soon; silence until then is closed quietly */
    fv_sock_deadline(s, srv->lim.header_timeout_ms);
}

void fv__sock_drain(fv_sock_t *s)
{
    if (s->state != SOCK_OPEN)
        return;
    if (s->driver->on_drain)
        s->driver->on_drain(s, s->data);
    else
        fv_sock_end(s);
}

void fv__sock_drain_all(fv_http_server_t *srv)
{
    fv_sock_t *s = srv->socks;
    while (s) {
        fv_sock_t *next = s->next;   /* draining may unlink s */
        fv__sock_drain(s);
        s = next;
    }
}

void fv__sock_close_all(fv_http_server_t *srv)
{
    while (srv->socks)
        fv_sock_close(srv->socks);     /* unlinks it */
}

/* ---- facts ---- */

const char *fv_sock_peer(fv_sock_t *s)
{
    /* formatted on first use: most requests never ask */
    if (s->peer)
        return s->peer;
    if (s->detached)
        return "-";
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
    }
    char text[INET6_ADDRSTRLEN + 8];
    snprintf(text, sizeof(text), "%s:%d", ip, port);
    s->peer = fv_strdup(text);
    return s->peer;
}

uv_loop_t *fv_sock_loop(const fv_sock_t *s)
{
    return s->server->loop;
}

struct fv_http_server *fv_sock_server(const fv_sock_t *s)
{
    return s->server;
}

const fv_sock_driver_t *fv_sock_driver(const fv_sock_t *s)
{
    return s->driver;
}

/* ---- detached sockets ---- */

fv_sock_t *fv__sock_new_detached(fv_http_server_t *srv, fv_buf_t *sink)
{
    fv_sock_t *s = fv_calloc(1, sizeof(*s));
    s->server = srv;
    s->detached = true;
    s->heap_idx = HEAP_NONE;
    s->sink = sink;
    s->driver = &fv__http1_driver;
    s->data = fv__http1_new(srv, s);
    return s;
}

void fv__sock_feed(fv_sock_t *s, const char *data, size_t len)
{
    while (len > 0 && s->state == SOCK_OPEN) {
        if (s->rcap == 0) {
            s->rcap = FV_SOCK_RBUF_MIN;
            s->rbuf = fv_malloc(s->rcap);
        }
        size_t n = s->rcap - s->rlen;
        if (n == 0)
            return;                  /* the driver takes nothing now and the buffer is full */
        if (n > len)
            n = len;
        s->server->epoch++;
        memcpy(s->rbuf + s->rlen, data, n);
        s->rlen += n;
        data += n;
        len -= n;
        sock_pump(s);
    }
}

void fv__sock_free_detached(fv_sock_t *s)
{
    if (!s)
        return;
    fv_sock_close(s);
    sock_release(s);
    fv_free(s);
}
