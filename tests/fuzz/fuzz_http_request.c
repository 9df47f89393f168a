/* fuzz_http_request.c - arbitrary bytes through the server's real request path (llhttp, our
 * callbacks, the limits, the reply writer) on a connection without a socket. The first byte
 * picks the feeding piece size, so both whole and split reads are covered. Every fifth request
 * is left unanswered, so closing with a request in the handler is covered too. Paths that
 * start with "/s" stream their body: the reader pauses and resumes, answers mid-body or at
 * the end, or streams the answer alongside. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/http_internal.h"
#include "feed_pieces.h"

static uv_loop_t loop;
static fv_http_server_t *server;
static unsigned counter;

static void on_piece(fv_http_req_t *req, void *data, const char *piece, size_t len, bool end)
{
    (void)data;
    unsigned k = counter++;
    if (fv_http_req_body_streaming(req) && k % 3 == 0) {
        fv_http_req_pause_body(req);
        fv_http_req_resume_body(req);
    }
    if (fv_http_req_body_streaming(req) && k % 7 == 0 && fv_http_reply_write(req, piece, len) == 0)
        return;
    if (end || k % 11 == 0) {
        if (fv_http_reply_write(req, piece, len) == 0)
            fv_http_reply_end(req);
        else
            fv_http_reply(req, 200, "text/plain", piece, len);
    }
}

static void body_policy(const fv_http_req_t *req, void *data, fv_http_body_policy_t *pol)
{
    (void)data;
    fv_slice_t path = fv_http_req_path(req);
    pol->stream = path.len >= 2 && path.ptr[1] == 's';
    if (path.len >= 3 && path.ptr[2] == '0')
        pol->max_bytes = 0;
}

static void handler(fv_http_req_t *req, void *data)
{
    if (fv_http_req_body_streaming(req)) {
        if (++counter % 2 == 0 && fv_http_reply_start(req, 200, "text/plain") < 0)
            return;
        if (counter % 13 == 0) {
            fv_http_reply(req, 401, "text/plain", "no", 2);   /* refused on the head */
            return;
        }
        if (fv_http_req_read_body(req, on_piece, NULL) < 0)
            fv_http_reply(req, 500, "text/plain", "read", 4);
        return;
    }
    /* touch what a handler reads, then answer now, or leave it pending for the abort path */
    (void)fv_http_req_header(req, "host");
    (void)fv_http_req_query_param(req, "a");
    fv_slice_t n, v;
    for (size_t i = 0; i < fv_http_req_header_count(req); i++)
        fv_http_req_header_at(req, i, &n, &v);
    fv_slice_t body = fv_http_req_body(req);
    if (++counter % 5 == 0)
        return;
    fv_http_resp_header(req, "X-Fuzz", "1");
    fv_http_reply(req, 200, "application/octet-stream", body.ptr, body.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) {
        uv_loop_init(&loop);
        fv_http_limits_t lim;
        fv_http_limits_default(&lim);
        lim.max_header_bytes = 2048;
        lim.max_body_bytes = 4096;
        if (fv_http_server_new(&loop, &lim, handler, NULL, &server) < 0)
            return 0;
        fv_http_server_set_body_policy(server, body_policy, NULL);
    }
    if (size == 0)
        return 0;
    fv_buf_t out;
    fv_buf_init(&out, 1 << 20);
    fv_sock_t *c = fv__http_conn_new_detached(server, &out);
    fuzz_feed_pieces(c, data, size);
    fv__http_conn_free_detached(c);
    /* requests left pending without an abort callback outlive their connection until the
     * server closes; this server lives for the whole run */
    fv__http_free_orphans(server);
    fv_buf_dispose(&out);
    return 0;
}
