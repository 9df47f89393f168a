/* http_internal.h - what the HTTP server files share: the connection, the request object, the
 * write record and the server; and the client's socketless response parser. Not for use
 * outside src/net (and the HTTP fuzz targets). */
#ifndef FV_NET_HTTP_INTERNAL_H
#define FV_NET_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <llhttp.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/shared.h"
#include "core/slice.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/peer_limit.h"
#include "net/sock.h"

/* More headers than this in one request is treated like too many header bytes (431). */
#define FV_HTTP_MAX_HEADERS 100
/* Borrowed bodies up to this size are copied into the response head buffer. */
#define FV_HTTP_INLINE_BODY 4096

typedef struct fv__http_conn fv__http_conn_t;

typedef struct fv__http_header {
    fv_slice_t name;
    fv_slice_t value;
} fv__http_header_t;

/* Where a header sits in the connection's head buffer while the head is still arriving. */
typedef struct fv__http_hdr_rec {
    size_t name_off;
    size_t name_len;
    size_t value_off;
    size_t value_len;
} fv__http_hdr_rec_t;

typedef struct fv__http_param {
    const char *name;
    const char *value;
} fv__http_param_t;

/* One object per request, from the connection's short free list. A connection hands one
 * request at a time to the handler; answered requests are retired, and a retired object is
 * reused only once no call that may still hold it is on the stack (see req_get), so a late or
 * second reply finds an inactive request and does nothing. */
struct fv_http_req {
    fv__http_conn_t *conn;          /* NULL once orphaned (connection gone, no abort cb) */
    uv_loop_t *loop;
    fv_http_req_t *next_free;       /* in the free list, or the server's orphans */
    fv_http_req_t *prev_orphan;
    fv_http_server_t *server;
    uint64_t retired_epoch;         /* server epoch it was retired in; 0 = reusable now */
    fv_slice_t method;
    fv_slice_t target;
    fv_slice_t path;
    fv_slice_t query;
    fv__http_header_t *headers;     /* the connection's array */
    size_t header_count;
    fv_slice_t body;
    fv__http_param_t *params;       /* from the arena */
    size_t param_count;
    size_t param_cap;
    const char *route;
    uint64_t id;
    uint64_t start_ns;
    fv_arena_t arena;
    fv_http_req_abort_cb abort_cb;
    void *abort_data;
    fv_buf_t resp_headers;          /* "Name: value\r\n" lines added by the handler */
    int minor;
    bool keep_alive;
    bool is_head;
    bool upgrade;                   /* Connection: upgrade with an Upgrade header */
    bool active;                    /* handed to the handler and not yet answered */
    bool streaming;                 /* fv_http_reply_start ran: pieces follow, then the end */
    bool stream_chunked;            /* the pieces go as chunks (HTTP/1.1) */
    bool stream_keep;               /* the connection stays open after the end */
    int stream_status;
    bool orphan;                    /* its connection died and nobody took the abort */
    bool body_read;                 /* fv_http_req_read_body ran */
};

/* Forward-only lifecycle of an HTTP/1 connection. */
typedef enum fv__http_conn_state {
    FV_HTTP_CONN_OPEN,        /* reading and answering requests */
    FV_HTTP_CONN_DRAINING,    /* the current response is the last one */
    FV_HTTP_CONN_ENDED,       /* last response queued; the socket ends (fv_sock_end) */
    FV_HTTP_CONN_CLOSING,     /* the socket is closing, or passed to another driver */
} fv__http_conn_state_t;

/* What the connection is waiting for, within the OPEN/DRAINING states. */
typedef enum fv__http_phase {
    FV_HTTP_PHASE_IDLE,       /* between requests */
    FV_HTTP_PHASE_HEAD,       /* inside request line and headers */
    FV_HTTP_PHASE_BODY,       /* inside the body */
    FV_HTTP_PHASE_HANDLER,    /* the request is with the handler */
} fv__http_phase_t;

/* The HTTP/1 driver's state on one socket. */
struct fv__http_conn {
    fv_sock_t *sock;
    fv_http_server_t *server;
    llhttp_t parser;
    fv__http_conn_state_t state;
    fv__http_phase_t phase;
    fv_buf_t head;                  /* url and header bytes of the request being parsed */
    size_t url_len;
    fv__http_hdr_rec_t *hdr_rec;    /* offsets while the head arrives */
    fv__http_header_t *hdr_off;     /* the same as slices, once the head is complete */
    size_t hdr_count;
    size_t hdr_cap;
    int last_cb;                    /* 0 none, 1 field, 2 value, 3 value complete */
    /* telling a value split across reads from a folded one (obs-fold): the input llhttp is
     * working on, and where the last value piece ended */
    const char *exec_start;
    const char *exec_end;
    uint64_t exec_seq;
    uint64_t value_seq;
    bool value_at_exec_end;
    bool head_done;                 /* later header callbacks are trailers */
    fv_buf_t body;
    size_t body_counted;            /* of it, counted in the process's buffered-body total */
    size_t body_limit;              /* the current request's: its route's, or the server's */
    /* a streamed request body (fv_http_req_read_body) */
    fv_http_body_cb body_cb;        /* the handler's reader; NULL until it asks */
    void *body_cb_data;
    uint64_t body_seen;             /* streamed bytes so far, for the chunk limit check */
    bool body_streams;              /* the request in the handler streams its body, not ended */
    bool body_paused;
    bool head_ready;                /* a streaming request's head is parsed: dispatch it */
    bool expect_continue;           /* it asked for "100 Continue" before sending the body */
    bool parsing;                   /* inside llhttp_execute: never re-enter it */
    fv_http_req_t *writable_req;    /* a streaming request waiting for room (one at a time) */
    fv_http_writable_cb writable_cb;
    void *writable_data;
    fv_http_req_t *req;             /* being parsed, or with the handler */
    fv_http_req_t *free_reqs;
    size_t free_req_count;
    int err_status;                 /* set by a parser callback that refuses the request */
    const char *err_msg;            /* static text for a 400 refused by our own checks */
    bool msg_ready;                 /* a message completed and waits for dispatch */
    bool dispatching;               /* inside the handler call */
    bool sniffing;                  /* no byte decided yet whether this is an h2 preface */
    bool upgraded;                  /* handed to another driver: parse nothing more */
};

struct fv_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    fv_http_limits_t lim;
    fv_http_handler_cb handler;
    void *handler_data;
    fv_http_observer_cb observer;
    void *observer_data;
    fv_http_h2_factory_cb h2_factory;
    void *h2_data;
    fv_sock_t *socks;               /* open sockets (sock.c links them) */
    fv_peer_limit_t *peers;         /* per-address counts, with max_connections_per_client */
    void *rbuf_pool;                /* spare FV_SOCK_RBUF_MIN read buffers, linked through
                                     * their first bytes */
    size_t rbuf_pool_count;
    uv_timer_t dl_timer;            /* one timer for every socket's deadline (sock.c) */
    bool dl_timer_open;
    uint64_t dl_due;                /* loop time dl_timer is set for; 0 = not set */
    fv_sock_t **dl_heap;            /* sockets by the time their deadline is due */
    size_t dl_count;
    size_t dl_cap;
    struct fv_sock_write *wpool;    /* spare write records of sockets with nothing queued */
    size_t wpool_count;
    size_t rbufs_held;              /* sockets holding a read buffer now */
    size_t conn_count;
    size_t upgraded;                /* sockets passed to another driver and not yet freed */
    size_t busy;
    uint64_t epoch;                 /* +1 at every loop callback of a socket (sock.c) */
    fv_http_req_t *orphans;         /* requests whose connection died, not yet answered */
    size_t out_bytes;               /* sum of the sockets' queued output */
    size_t out_bytes_peak;
    uint64_t refused_full;          /* connections answered 503: the process was full */
    uint64_t refused_h2;            /* HTTP/2 prefaces closed: no h2 driver took them */
    uint64_t refused_logged_at;     /* loop time of the last such warning (rate limit) */
    uint64_t accept_errors;         /* accept failures (descriptor table full, ...) */
    uint64_t accept_logged_at;
    fv_http_body_policy_cb body_policy_cb;  /* per-request body limit and streaming, or NULL */
    void *body_policy_data;
    int port;
    int handles_open;               /* listener + sockets not yet freed */
    bool listening;
    bool listener_open;
    bool stopping;
    bool closing;
    fv_http_server_closed_cb closed_cb;
    void *closed_data;
};

/* sock.c: the server's side of its sockets. accept gives each the HTTP/1 driver. */
void fv__sock_accept(fv_http_server_t *srv);
/* Graceful stop: each open socket's driver gets on_drain (fv__sock_drain: one socket, also a
 * detached one, for tests). */
void fv__sock_drain_all(fv_http_server_t *srv);
void fv__sock_drain(fv_sock_t *s);
void fv__sock_close_all(fv_http_server_t *srv);
/* Closes the deadline timer (closed runs when it is gone; nothing when there was none). */
void fv__sock_deadlines_close(fv_http_server_t *srv, uv_close_cb closed);
/* Frees the spare read buffers (at server close). */
void fv__sock_pool_free(fv_http_server_t *srv);
/* A socket without a network connection, running the HTTP/1 driver: what it writes is
 * appended to sink. Feed it bytes (dropped once the socket is no longer open); free it when
 * done (runs the drivers' on_close and on_free). */
fv_sock_t *fv__sock_new_detached(fv_http_server_t *srv, fv_buf_t *sink);
void fv__sock_feed(fv_sock_t *s, const char *data, size_t len);
void fv__sock_free_detached(fv_sock_t *s);

/* http_conn.c: the HTTP/1 driver */
extern const fv_sock_driver_t fv__http1_driver;
/* State for the HTTP/1 driver on s (freed by its on_free). */
fv__http_conn_t *fv__http1_new(fv_http_server_t *srv, fv_sock_t *s);
/* Queues a response for the active request and finishes it (reply.c builds head). */
void fv__http_conn_respond(fv_http_req_t *req, int status, const char *content_type,
                           const void *body, size_t len, char *owned, fv_shared_t *shared);
/* Frees the orphaned requests (at server close). */
void fv__http_free_orphans(fv_http_server_t *s);
/* A socket freed: tells the server (http_server.c). */
void fv__http_server_conn_gone(fv_http_server_t *s);

/* Whether data starts the HTTP/2 client preface (PRI * HTTP/2.0, 24 bytes): 1 all of it is
 * there, 0 data is a proper prefix of it (wait for more), -1 it is not. */
int fv__http_sniff_preface(const char *data, size_t len);

/* For the fuzz targets and tests: HTTP/1 on a detached socket (see fv__sock_new_detached). */
fv_sock_t *fv__http_conn_new_detached(fv_http_server_t *s, fv_buf_t *sink);
void fv__http_conn_feed(fv_sock_t *s, const char *data, size_t len);
void fv__http_conn_free_detached(fv_sock_t *s);

/* http_client.c: the client's response parsing (llhttp HTTP_RESPONSE, Content-Length,
 * chunked, read-until-close, max_response_bytes) without a socket, for the fuzz target and
 * tests. feed: 0 more wanted; 1 a whole response, every byte used; 2 a whole response with
 * bytes left over (a connection would not be reused; the rest is not parsed); <0 FV_EPROTO or
 * FV_ETOOBIG. eof: the peer closed: 2 when that completes a read-until-close response, else
 * FV_ECONNRESET or FV_EPROTO. After a whole response *resp is valid until the next call, and
 * the parser is ready for the next response as on a reused connection. */
typedef struct fv__http_resp_parser fv__http_resp_parser_t;
fv__http_resp_parser_t *fv__http_resp_parser_new(size_t max_response_bytes, bool is_head);
int fv__http_resp_parser_feed(fv__http_resp_parser_t *p, const char *data, size_t len,
                              fv_http_response_t *resp);
int fv__http_resp_parser_eof(fv__http_resp_parser_t *p, fv_http_response_t *resp);
void fv__http_resp_parser_free(fv__http_resp_parser_t *p);

/* Request body bytes buffered now by every connection of the process (tests, metrics). */
size_t fv__http_buffered_bodies(void);

/* http_reply.c */
/* Appends the status line and the standard headers to out. */
/* content_len FV_HTTP_LEN_CHUNKED writes Transfer-Encoding: chunked instead of a length;
 * FV_HTTP_LEN_NONE writes neither (the body ends with the connection). */
#define FV_HTTP_LEN_CHUNKED ((size_t)-1)
#define FV_HTTP_LEN_NONE ((size_t)-2)
FV_MUST_USE int fv__http_write_head(fv_buf_t *out, int status, size_t content_len,
                                    bool keep_alive, const char *content_type,
                                    const fv_buf_t *extra);
/* {"error":{"code":...,"message":...}} as a malloc'd string (fv_free). */
char *fv__http_error_body(int code, const char *msg, size_t *len);
const char *fv__http_reason(int status);

/* Percent-decodes s[0..len) into the arena (NUL-terminated; *out_len, when not NULL, is the
 * decoded length, which may hold a decoded %00). plus_is_space for query strings only. */
char *fv__http_decode(fv_arena_t *a, const char *s, size_t len, bool plus_is_space,
                      size_t *out_len);

#endif
