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
#include "core/slice.h"
#include "net/http_client.h"
#include "net/http_server.h"

/* More headers than this in one request is treated like too many header bytes (431). */
#define FV_HTTP_MAX_HEADERS 100
/* The read buffer starts small and grows to this while a request is in the handler. */
#define FV_HTTP_RBUF_MIN 8192
#define FV_HTTP_RBUF_MAX 65536
/* After a response that closes the connection we read and drop input this long, so the peer
 * sees our response instead of a reset. */
#define FV_HTTP_LINGER_MS 2000
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

/* The request lives inside its connection: a connection handles one request at a time. */
struct fv_http_req {
    fv__http_conn_t *conn;
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
    bool active;                    /* handed to the handler and not yet answered */
};

/* One queued response; recycled through the connection's free list. */
typedef struct fv__http_write {
    uv_write_t req;
    fv__http_conn_t *conn;
    struct fv__http_write *next;
    fv_buf_t head;
    char *owned;                    /* body to fv_free() once written */
    size_t queued;                  /* bytes of this write counted in the conn's out_bytes */
    bool close_after;
} fv__http_write_t;

/* Forward-only lifecycle of a connection. */
typedef enum fv__http_conn_state {
    FV_HTTP_CONN_OPEN,        /* reading and answering requests */
    FV_HTTP_CONN_DRAINING,    /* the current response is the last one */
    FV_HTTP_CONN_LINGER,      /* last response written, write side shut, dropping input */
    FV_HTTP_CONN_CLOSING,     /* uv_close issued; freed when the handles are closed */
} fv__http_conn_state_t;

/* What the connection is waiting for, within the OPEN/DRAINING states. */
typedef enum fv__http_phase {
    FV_HTTP_PHASE_IDLE,       /* between requests */
    FV_HTTP_PHASE_HEAD,       /* inside request line and headers */
    FV_HTTP_PHASE_BODY,       /* inside the body */
    FV_HTTP_PHASE_HANDLER,    /* the request is with the handler */
} fv__http_phase_t;

struct fv__http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uint64_t deadline;              /* loop time the current phase ends; 0 = none */
    uint64_t timer_due;             /* loop time the uv timer is set for; 0 = not set */
    uv_shutdown_t shutdown;
    fv_http_server_t *server;
    fv__http_conn_t *prev;
    fv__http_conn_t *next;
    llhttp_t parser;
    fv__http_conn_state_t state;
    fv__http_phase_t phase;
    char *rbuf;                     /* bytes read and not yet parsed */
    size_t rlen;
    size_t rcap;
    fv_buf_t head;                  /* url and header bytes of the request being parsed */
    size_t url_len;
    fv__http_hdr_rec_t *hdr_rec;    /* offsets while the head arrives */
    fv__http_header_t *hdr_off;     /* the same as slices, once the head is complete */
    size_t hdr_count;
    size_t hdr_cap;
    int last_cb;                    /* 0 none, 1 field, 2 value */
    bool head_done;                 /* later header callbacks are trailers */
    fv_buf_t body;
    fv_http_req_t req;
    fv__http_write_t *free_writes;
    size_t writes_pending;
    size_t out_bytes;               /* bytes handed to uv_write and not yet written */
    int handles_open;
    int err_status;                 /* set by a parser callback that refuses the request */
    const char *err_msg;            /* static text for a 400 refused by our own checks */
    bool msg_ready;                 /* a message completed and waits for dispatch */
    bool dispatching;               /* inside the handler call */
    bool reading;
    bool detached;                  /* no socket: output goes to sink (fuzzing) */
    fv_buf_t *sink;
    char peer[64];
};

struct fv_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    fv_http_limits_t lim;
    fv_http_handler_cb handler;
    void *handler_data;
    fv_http_observer_cb observer;
    void *observer_data;
    fv__http_conn_t *conns;
    size_t conn_count;
    size_t busy;
    size_t out_bytes;               /* sum of the connections' out_bytes */
    size_t out_bytes_peak;
    int port;
    int handles_open;               /* listener + connections not yet freed */
    bool listening;
    bool listener_open;
    bool stopping;
    bool closing;
    fv_http_server_closed_cb closed_cb;
    void *closed_data;
};

/* http_conn.c */
void fv__http_conn_accept(fv_http_server_t *s);
void fv__http_conn_close(fv__http_conn_t *c);
/* Stops a connection for a drain: closes it when idle, else after its current response. */
void fv__http_conn_drain(fv__http_conn_t *c);
/* Queues a response for the active request and finishes it (reply.c builds head). */
void fv__http_conn_respond(fv_http_req_t *req, int status, const char *content_type,
                           const void *body, size_t len, char *owned);
/* A connection freed: tells the server (http_server.c). */
void fv__http_server_conn_gone(fv_http_server_t *s);

/* For the fuzz target and tests: a connection without a socket; everything it would write is
 * appended to sink. Feed it bytes; free it when done. s gives limits and handler. */
fv__http_conn_t *fv__http_conn_new_detached(fv_http_server_t *s, fv_buf_t *sink);
void fv__http_conn_feed(fv__http_conn_t *c, const char *data, size_t len);
void fv__http_conn_free_detached(fv__http_conn_t *c);

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

/* http_reply.c */
/* Appends the status line and the standard headers to out. */
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
