/* curl_loop.h - libcurl's multi interface driven by a libuv loop, plus a one-call request layer.
 *
 * One fv_curl_loop_t per uv loop. Easy handles submitted to it run concurrently; their sockets
 * are watched with uv_poll_t and curl's timeout with one uv_timer. Each submission has a
 * completion callback that runs exactly once, from the loop, never inside the submitting call:
 * with 0 when the transfer finished (whatever the HTTP status), a negative FV_E code when it did
 * not, and FV_ECANCELED when the curl loop was closed first.
 *
 * fv_curl_request() builds the easy handle for the common case (method, URL, headers, a body from
 * memory or a read callback, the response body into a capped buffer or a write callback), so an
 * S3, Qdrant or LLM client does one call. */
#ifndef FV_NET_CURL_LOOP_H
#define FV_NET_CURL_LOOP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

typedef struct fv_curl_loop fv_curl_loop_t;

/* rc: 0 when curl finished the transfer, else a negative code (fv_curl_code_to_err()). The
 * easy handle has been removed from the multi handle and belongs to the caller again. */
typedef void (*fv_curl_done_cb)(int rc, CURL *easy, void *data);
typedef void (*fv_curl_loop_close_cb)(void *data);

/* 0 and *out, or FV_ENOMEM / FV_EINTERNAL when curl refuses. */
FV_MUST_USE int fv_curl_loop_new(uv_loop_t *loop, fv_curl_loop_t **out);

/* Cancels every transfer in flight (their callbacks run with FV_ECANCELED, from the loop, after
 * this returns), closes every libuv handle, then runs cb (may be NULL) and frees the memory.
 * NULL-safe; a second call does nothing. */
void fv_curl_loop_close(fv_curl_loop_t *cl, fv_curl_loop_close_cb cb, void *data);

/* Starts the transfer. The easy handle stays the caller's (never cleaned up here) but must not
 * be touched until cb runs. 0: cb will run once, later. <0: cb never runs (FV_ECANCELED when
 * the loop is closing, FV_EINTERNAL when curl refuses the handle). */
FV_MUST_USE int fv_curl_loop_submit(fv_curl_loop_t *cl, CURL *easy, fv_curl_done_cb cb,
                                    void *data);

/* CURLcode to FV_E: CURLE_OK 0; cannot connect / resolve / send / receive FV_EBACKEND;
 * CURLE_OPERATION_TIMEDOUT FV_ETIMEDOUT; out of memory FV_ENOMEM; the rest FV_EPROTO. */
int fv_curl_code_to_err(CURLcode code);

/* ---- request layer ---- */

/* Streaming request body: fill up to len bytes of buf, return how many (0 = end of body). */
typedef size_t (*fv_curl_read_fn)(char *buf, size_t len, void *data);
/* Streaming response body: consume len bytes; return 0 to go on, <0 to abort the transfer
 * (the request then fails with that code). */
typedef int (*fv_curl_write_fn)(const char *ptr, size_t len, void *data);

typedef struct fv_curl_req {
    const char *method;              /* "GET", "PUT", "HEAD", "DELETE", "POST", ... */
    const char *url;                 /* copied by curl at the call */
    const char *const *headers;      /* "Name: value" lines, copied at the call */
    size_t header_count;
    const void *body;                /* borrowed: must stay alive until the callback */
    size_t body_len;
    fv_curl_read_fn read_fn;         /* instead of body: streamed; body_len then is the total
                                      * length (sent as Content-Length) */
    void *read_data;
    fv_curl_write_fn write_fn;       /* NULL: the body is collected into resp->body */
    void *write_data;
    size_t max_response_bytes;       /* ceiling on the collected body; 0 = 16 MiB */
    uint32_t timeout_ms;             /* whole transfer; 0 = 30000 */
    uint32_t connect_timeout_ms;     /* 0 = 5000 */
    const char *aws_sigv4;           /* CURLOPT_AWS_SIGV4 ("aws:amz:us-east-1:s3") or NULL */
    const char *userpwd;             /* "user:password" for sigv4 or basic auth, or NULL */
} fv_curl_req_t;

/* A response, valid only during the callback. */
typedef struct fv_curl_resp {
    long status;                     /* HTTP status */
    fv_buf_t body;                   /* collected body (empty with write_fn) */
    fv_buf_t headers;                /* raw header lines of the last response, capped */
} fv_curl_resp_t;

/* rc 0 with resp set (any HTTP status), or <0 with resp NULL: FV_EBACKEND (cannot connect, the
 * peer went away), FV_ETIMEDOUT, FV_ETOOBIG (body over max_response_bytes), FV_ECANCELED (the
 * curl loop was closed), the write_fn's own code. */
typedef void (*fv_curl_req_cb)(int rc, const fv_curl_resp_t *resp, void *data);

/* 0: cb will run once, later. <0: cb never runs (FV_EINVAL for a missing method/url, FV_ENOMEM,
 * FV_ECANCELED when the loop is closing). */
FV_MUST_USE int fv_curl_request(fv_curl_loop_t *cl, const fv_curl_req_t *r, fv_curl_req_cb cb,
                                void *data);

/* Value of the first header called name (case-insensitive) in resp, trimmed; FV_SLICE_NULL
 * (ptr NULL) when absent. */
fv_slice_t fv_curl_resp_header(const fv_curl_resp_t *resp, const char *name);

#endif
