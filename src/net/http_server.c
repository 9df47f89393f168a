/* http_server.c - the listening socket, accepting, the connection set, drain and close. What
 * happens on one connection is http_conn.c. */
#include "net/http_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

void fv_http_limits_default(fv_http_limits_t *lim)
{
    lim->max_header_bytes = 16 * 1024;
    lim->max_body_bytes = 1024 * 1024;
    lim->header_timeout_ms = 10000;
    lim->body_timeout_ms = 30000;
    lim->idle_timeout_ms = 60000;
    lim->max_connections = 10000;
    lim->max_output_bytes = 1024 * 1024;
    lim->max_connections_per_client = 0;
    lim->max_buffered_body_bytes = 256u * 1024 * 1024;
}

int fv_http_server_new(uv_loop_t *loop, const fv_http_limits_t *lim, fv_http_handler_cb handler,
                       void *data, fv_http_server_t **out)
{
    if (!loop || !handler || !out)
        return FV_EINVAL;
    fv_http_server_t *s = fv_calloc(1, sizeof(*s));
    s->loop = loop;
    if (lim)
        s->lim = *lim;
    else
        fv_http_limits_default(&s->lim);
    s->handler = handler;
    s->handler_data = data;
    *out = s;
    return 0;
}

void fv_http_server_set_body_policy(fv_http_server_t *s, fv_http_body_policy_cb cb, void *data)
{
    s->body_policy_cb = cb;
    s->body_policy_data = data;
}

void fv_http_server_set_observer(fv_http_server_t *s, fv_http_observer_cb cb, void *data)
{
    s->observer = cb;
    s->observer_data = data;
}

static void on_connection(uv_stream_t *listener, int status)
{
    fv_http_server_t *s = listener->data;
    if (status < 0) {
        /* At the descriptor limit libuv closes the waiting connections itself (keeping a
         * reserve descriptor for that) and reports here once per batch: count, and warn at most
         * every 10 s rather than once per connection. */
        s->accept_errors++;
        uint64_t now = uv_now(s->loop);
        if (s->accept_logged_at == 0 || now - s->accept_logged_at >= 10000) {
            fv_log_warn("http", "accept on port %d: %s (%llu so far)", s->port,
                        uv_strerror(status), (unsigned long long)s->accept_errors);
            s->accept_logged_at = now;
        }
        return;
    }
    if (s->closing)
        return;
    fv__sock_accept(s);
}

static void maybe_finish_close(fv_http_server_t *s)
{
    if (!s->closing || s->handles_open > 0)
        return;
    fv__http_free_orphans(s);
    fv_peer_limit_free(s->peers);
    fv__sock_pool_free(s);
    fv_free(s->dl_heap);
    fv_http_server_closed_cb cb = s->closed_cb;
    void *data = s->closed_data;
    if (cb)
        cb(s, data);
    fv_free(s);
}

static void on_deadlines_closed(uv_handle_t *h)
{
    fv_http_server_t *s = h->data;
    s->handles_open--;
    maybe_finish_close(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    fv_http_server_t *s = h->data;
    s->handles_open--;
    maybe_finish_close(s);
}

void fv__http_server_conn_gone(fv_http_server_t *s)
{
    s->handles_open--;
    maybe_finish_close(s);
}

int fv_http_server_listen(fv_http_server_t *s, const char *host, int port, fv_error_t *err)
{
    if (s->listener_open)
        return fv_error_set(err, FV_EINVAL, "%s:%d: server already listening", host, port);
    struct sockaddr_storage ss;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        return fv_error_set(err, FV_EINVAL, "%s:%d: not an IP address", host, port);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    s->handles_open++;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc < 0) {
        s->listener_open = false;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return fv_error_set(err, rc, "%s:%d: %s", host, port, uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0) {
        if (bound.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else
            s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    s->listening = true;
    fv_log_info("http", "listening on %s:%d", host, s->port);
    return 0;
}

int fv_http_server_port(const fv_http_server_t *s)
{
    return s->port;
}

static void close_listener(fv_http_server_t *s)
{
    s->listening = false;
    if (!s->listener_open)
        return;
    s->listener_open = false;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void fv_http_server_stop_accepting(fv_http_server_t *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = true;
    close_listener(s);
    fv__sock_drain_all(s);
}

size_t fv_http_server_connections(const fv_http_server_t *s)
{
    return s->conn_count;
}

void fv_http_server_set_h2(fv_http_server_t *s, fv_http_h2_factory_cb factory, void *data)
{
    s->h2_factory = factory;
    s->h2_data = data;
}

size_t fv_http_server_upgraded(const fv_http_server_t *s)
{
    return s->upgraded;
}

void fv_http_server_refusals(const fv_http_server_t *s, fv_http_server_refusals_t *out)
{
    out->full = s->refused_full;
    out->accept_errors = s->accept_errors;
    out->h2_prefaces = s->refused_h2;
}

size_t fv_http_server_busy(const fv_http_server_t *s)
{
    return s->busy;
}

size_t fv_http_server_output_bytes(const fv_http_server_t *s)
{
    return s->out_bytes;
}

size_t fv_http_server_output_bytes_peak(const fv_http_server_t *s)
{
    return s->out_bytes_peak;
}

size_t fv_http_server_read_buffers(const fv_http_server_t *s)
{
    return s->rbufs_held;
}

void fv_http_server_close(fv_http_server_t *s, fv_http_server_closed_cb cb, void *data)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->stopping = true;
    s->closed_cb = cb;
    s->closed_data = data;
    close_listener(s);
    fv__sock_close_all(s);
    fv__sock_deadlines_close(s, on_deadlines_closed);
    /* with nothing ever opened there is no close callback to wait for */
    s->handles_open++;
    fv__http_server_conn_gone(s);
}
