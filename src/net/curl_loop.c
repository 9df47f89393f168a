/* curl_loop.c - libcurl multi on libuv: one uv_poll_t per socket curl asks us to watch, one
 * uv_timer for curl's timeout, completions read with curl_multi_info_read after every
 * curl_multi_socket_action. Also the request layer (fv_curl_request) that builds an easy handle
 * and collects the response. It does not retry, pool or parse bodies: callers do. */
#include "net/curl_loop.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"

#define CURL_LOOP_MAX_HEADER_BYTES (64 * 1024)
#define CURL_LOOP_DEFAULT_MAX_BODY (16u * 1024 * 1024)
#define CURL_LOOP_DEFAULT_TIMEOUT_MS 30000
#define CURL_LOOP_DEFAULT_CONNECT_MS 5000

typedef struct xfer {
    CURL *easy;
    fv_curl_done_cb cb;
    void *data;
    struct xfer *prev, *next;
} xfer_t;

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    fv_curl_loop_t *cl;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

struct fv_curl_loop {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int closing;
    unsigned open_handles;      /* timer + polls not yet closed: memory goes at zero */
    xfer_t *xfers;              /* in flight */
    sock_ctx_t *socks;          /* polls not yet asked to close */
    fv_curl_loop_close_cb close_cb;
    void *close_data;
};

static int curl_global_done;

int fv_curl_code_to_err(CURLcode code)
{
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return FV_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return FV_ENOMEM;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return FV_EBACKEND;
    case CURLE_ABORTED_BY_CALLBACK:
        return FV_ECANCELED;
    case CURLE_FILESIZE_EXCEEDED:
        return FV_ETOOBIG;
    default:
        return FV_EPROTO;
    }
}

static void xfer_unlink(fv_curl_loop_t *cl, xfer_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        cl->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void maybe_free(fv_curl_loop_t *cl)
{
    if (cl->closing && cl->open_handles == 0) {
        fv_curl_loop_close_cb cb = cl->close_cb;
        void *data = cl->close_data;
        fv_free(cl);
        if (cb)
            cb(data);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    fv_curl_loop_t *cl;
    if (h->type == UV_POLL) {
        sock_ctx_t *s = h->data;
        cl = s->cl;
        fv_free(s);
    } else {
        cl = h->data;
    }
    cl->open_handles--;
    maybe_free(cl);
}

static void sock_close(fv_curl_loop_t *cl, sock_ctx_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        cl->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* Reads every finished transfer and reports it. A callback may submit more transfers or close
 * the loop; after a close the remaining messages belong to handles already cancelled. */
static void check_done(fv_curl_loop_t *cl)
{
    CURLMsg *msg;
    int left;
    while (!cl->closing && (msg = curl_multi_info_read(cl->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        xfer_t *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(cl->multi, easy);
        if (!x)
            continue;
        xfer_unlink(cl, x);
        x->cb(fv_curl_code_to_err(result), easy, x->data);
        fv_free(x);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *s = p->data;
    fv_curl_loop_t *cl = s->cl;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(cl->multi, s->fd, flags, &running);
    check_done(cl);
}

static void on_timeout(uv_timer_t *t)
{
    fv_curl_loop_t *cl = t->data;
    int running;
    curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cl);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    fv_curl_loop_t *cl = userp;
    sock_ctx_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(cl->multi, fd, NULL);
            sock_close(cl, s);
        }
        return 0;
    }
    if (cl->closing)
        return 0;
    if (!s) {
        s = fv_calloc(1, sizeof(*s));
        s->fd = fd;
        s->cl = cl;
        if (uv_poll_init_socket(cl->loop, &s->poll, fd) < 0) {
            fv_free(s);
            return -1;
        }
        s->poll.data = s;
        cl->open_handles++;
        s->next = cl->socks;
        if (cl->socks)
            cl->socks->prev = s;
        cl->socks = s;
        curl_multi_assign(cl->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    fv_curl_loop_t *cl = userp;
    if (cl->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

int fv_curl_loop_new(uv_loop_t *loop, fv_curl_loop_t **out)
{
    if (!curl_global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return FV_EINTERNAL;
        curl_global_done = 1;
    }
    fv_curl_loop_t *cl = fv_calloc(1, sizeof(*cl));
    cl->loop = loop;
    cl->multi = curl_multi_init();
    if (!cl->multi) {
        fv_free(cl);
        return FV_ENOMEM;
    }
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    cl->open_handles = 1;
    *out = cl;
    return 0;
}

int fv_curl_loop_submit(fv_curl_loop_t *cl, CURL *easy, fv_curl_done_cb cb, void *data)
{
    if (cl->closing)
        return FV_ECANCELED;
    xfer_t *x = fv_calloc(1, sizeof(*x));
    x->easy = easy;
    x->cb = cb;
    x->data = data;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    /* curl calls timer_cb from here with timeout 0; the uv timer then starts the transfer on
     * the next loop turn, so cb can never run inside this call. */
    if (curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
        fv_free(x);
        return FV_EINTERNAL;
    }
    x->next = cl->xfers;
    if (cl->xfers)
        cl->xfers->prev = x;
    cl->xfers = x;
    return 0;
}

/* Second half of close, on the loop: cancelled callbacks run here, then curl lets go of its
 * connections and every handle closes. */
static void on_close_timer(uv_timer_t *t)
{
    fv_curl_loop_t *cl = t->data;
    while (cl->xfers) {
        xfer_t *x = cl->xfers;
        xfer_unlink(cl, x);
        x->cb(FV_ECANCELED, x->easy, x->data);
        fv_free(x);
    }
    curl_multi_cleanup(cl->multi);   /* may report CURL_POLL_REMOVE for cached connections */
    cl->multi = NULL;
    while (cl->socks)
        sock_close(cl, cl->socks);
    uv_close((uv_handle_t *)&cl->timer, on_handle_closed);
}

void fv_curl_loop_close(fv_curl_loop_t *cl, fv_curl_loop_close_cb cb, void *data)
{
    if (!cl || cl->closing)
        return;
    cl->closing = 1;
    cl->close_cb = cb;
    cl->close_data = data;
    for (xfer_t *x = cl->xfers; x; x = x->next)
        curl_multi_remove_handle(cl->multi, x->easy);
    uv_timer_stop(&cl->timer);
    uv_timer_start(&cl->timer, on_close_timer, 0, 0);
}

/* ---- request layer ---- */

typedef struct req_ctx {
    CURL *easy;
    struct curl_slist *hdrs;
    fv_curl_resp_t resp;
    fv_curl_req_cb cb;
    void *data;
    const char *body;
    size_t body_len, body_off;
    fv_curl_read_fn read_fn;
    void *read_data;
    fv_curl_write_fn write_fn;
    void *write_data;
    int write_rc;               /* why we stopped the body, reported instead of curl's code */
} req_ctx_t;

static size_t on_req_read(char *buf, size_t size, size_t nitems, void *userp)
{
    req_ctx_t *r = userp;
    size_t len = size * nitems;
    if (r->read_fn)
        return r->read_fn(buf, len, r->read_data);
    size_t n = r->body_len - r->body_off;
    if (n > len)
        n = len;
    if (n)
        memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    return n;
}

/* curl rewinds the body when it must send it again (a kept-alive connection found dead after
 * the peer restarted). A body in memory can start over; a streamed one cannot. */
static int on_req_seek(void *userp, curl_off_t offset, int origin)
{
    req_ctx_t *r = userp;
    if (r->read_fn || origin != SEEK_SET || offset < 0 || (size_t)offset > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_req_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    req_ctx_t *r = userp;
    size_t len = size * nmemb;
    int rc = r->write_fn ? r->write_fn(ptr, len, r->write_data)
                         : fv_buf_append(&r->resp.body, ptr, len);
    if (rc < 0) {
        r->write_rc = rc;
        return 0;               /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return len;
}

static size_t on_req_header(char *ptr, size_t size, size_t nmemb, void *userp)
{
    req_ctx_t *r = userp;
    size_t len = size * nmemb;
    /* A new status line (after 100 Continue or a redirect) starts a new header block. */
    if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        fv_buf_reset(&r->resp.headers);
    int rc = fv_buf_append(&r->resp.headers, ptr, len);
    if (rc < 0) {
        /* out of memory is not the peer's fault: only the ceiling is FV_EHDRTOOBIG */
        r->write_rc = rc == FV_ETOOBIG ? FV_EHDRTOOBIG : rc;
        return 0;
    }
    return len;
}

static void req_free(req_ctx_t *r)
{
    curl_slist_free_all(r->hdrs);
    curl_easy_cleanup(r->easy);
    fv_buf_dispose(&r->resp.body);
    fv_buf_dispose(&r->resp.headers);
    fv_free(r);
}

static void on_req_done(int rc, CURL *easy, void *data)
{
    req_ctx_t *r = data;
    if (rc < 0 && r->write_rc < 0 && rc != FV_ECANCELED)
        rc = r->write_rc;
    if (rc == 0) {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
        r->cb(0, &r->resp, r->data);
    } else {
        r->cb(rc, NULL, r->data);
    }
    req_free(r);
}

int fv_curl_request(fv_curl_loop_t *cl, const fv_curl_req_t *q, fv_curl_req_cb cb, void *data)
{
    if (!q->method || !q->url || !cb)
        return FV_EINVAL;
    if (cl->closing)
        return FV_ECANCELED;
    CURL *easy = curl_easy_init();
    if (!easy)
        return FV_ENOMEM;
    req_ctx_t *r = fv_calloc(1, sizeof(*r));
    r->easy = easy;
    r->cb = cb;
    r->data = data;
    r->body = q->body;
    r->body_len = q->body_len;
    r->read_fn = q->read_fn;
    r->read_data = q->read_data;
    r->write_fn = q->write_fn;
    r->write_data = q->write_data;
    fv_buf_init(&r->resp.body, q->max_response_bytes ? q->max_response_bytes
                                                     : CURL_LOOP_DEFAULT_MAX_BODY);
    fv_buf_init(&r->resp.headers, CURL_LOOP_MAX_HEADER_BYTES);

    int rc = FV_ENOMEM;
    for (size_t i = 0; i < q->header_count; i++) {
        struct curl_slist *n = curl_slist_append(r->hdrs, q->headers[i]);
        if (!n)
            goto fail;
        r->hdrs = n;
    }
    int has_body = q->body || q->read_fn;
    if (has_body) {
        /* curl asks the peer for 100-continue on bigger uploads, which only adds a round trip
         * with the servers we talk to. */
        struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
        if (!n)
            goto fail;
        r->hdrs = n;
    }

    curl_easy_setopt(easy, CURLOPT_URL, q->url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long)(q->timeout_ms ? q->timeout_ms : CURL_LOOP_DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(q->connect_timeout_ms ? q->connect_timeout_ms
                                                  : CURL_LOOP_DEFAULT_CONNECT_MS));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_req_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_req_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
    if (r->hdrs)
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->hdrs);
    if (q->aws_sigv4)
        curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, q->aws_sigv4);
    if (q->userpwd)
        curl_easy_setopt(easy, CURLOPT_USERPWD, q->userpwd);

    if (strcmp(q->method, "GET") == 0 && !has_body) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "POST") == 0 && q->body && !q->read_fn) {
        /* POSTFIELDS (not a read callback) so that SigV4 can hash the payload. */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, q->body);
    } else if (has_body) {
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_req_read);
        curl_easy_setopt(easy, CURLOPT_READDATA, r);
        curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_req_seek);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, r);
        if (strcmp(q->method, "PUT") != 0)
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, q->method);
    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, q->method);
    }

    rc = fv_curl_loop_submit(cl, easy, on_req_done, r);
    if (rc == 0)
        return 0;
fail:
    req_free(r);
    return rc;
}

fv_slice_t fv_curl_resp_header(const fv_curl_resp_t *resp, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers.ptr;
    const char *end = p ? p + resp->headers.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        size_t llen = (size_t)(line_end - p);
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            const char *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return fv_slice(v, (size_t)(ve - v));
        }
        p = eol ? eol + 1 : end;
    }
    return FV_SLICE_NULL;
}
