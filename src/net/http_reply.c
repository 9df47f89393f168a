/* http_reply.c - response serialisation: status line, Date (formatted once a second), the
 * standard headers, JSON error bodies, and the public fv_http_reply*() calls. Writing the bytes
 * and the connection's keep-alive decisions live in http_conn.c. */
#include "net/http_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"

const char *fv__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Formatting a date per response costs more than the rest of the head; one second of
 * staleness is what every server accepts. The loop is single-threaded, so a static is fine
 * (several loops in one process would at worst format the same second twice). */
static __thread time_t date_sec = -1;
static __thread char date_str[40];
static __thread size_t date_len;

static void refresh_date(void)
{
    time_t now = time(NULL);
    if (now == date_sec)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    date_len = strftime(date_str, sizeof(date_str), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    date_sec = now;
}

static void put(char **p, const char *s, size_t len)
{
    memcpy(*p, s, len);
    *p += len;
}

#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

int fv__http_write_head(fv_buf_t *out, int status, size_t content_len, bool keep_alive,
                        const char *content_type, const fv_buf_t *extra)
{
    refresh_date();
    size_t ct_len = content_type ? strlen(content_type) : 0;
    size_t extra_len = extra ? extra->len : 0;
    size_t need = 160 + date_len + ct_len + extra_len;
    int rc = fv_buf_reserve(out, need);
    if (rc < 0)
        return rc;
    char *p = out->ptr + out->len;
    char *start = p;
    if (status < 100 || status > 999)
        status = 500;
    const char *reason = fv__http_reason(status);
    char status_text[13] = "HTTP/1.1 000 ";
    status_text[9] = (char)('0' + status / 100);
    status_text[10] = (char)('0' + status / 10 % 10);
    status_text[11] = (char)('0' + status % 10);
    put(&p, status_text, sizeof(status_text));
    put(&p, reason, strlen(reason));
    PUT_LIT(&p, "\r\nServer: finalverse\r\nDate: ");
    put(&p, date_str, date_len);
    if (content_len == FV_HTTP_LEN_CHUNKED) {
        PUT_LIT(&p, "\r\nTransfer-Encoding: chunked");
    } else if (content_len != FV_HTTP_LEN_NONE && status != 204 && status != 304 &&
               status >= 200) {
        char digits[20];
        PUT_LIT(&p, "\r\nContent-Length: ");
        put(&p, digits, fv_fmt_u64(digits, content_len));
    }
    if (keep_alive)
        PUT_LIT(&p, "\r\nConnection: keep-alive\r\n");
    else
        PUT_LIT(&p, "\r\nConnection: close\r\n");
    if (content_type) {
        PUT_LIT(&p, "Content-Type: ");
        put(&p, content_type, ct_len);
        PUT_LIT(&p, "\r\n");
    }
    if (extra_len)
        put(&p, extra->ptr, extra_len);
    PUT_LIT(&p, "\r\n");
    out->len += (size_t)(p - start);
    out->ptr[out->len] = '\0';
    return 0;
}

char *fv__http_error_body(int code, const char *msg, size_t *len)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", fv_err_name(code), "message",
                          msg ? msg : "");
    char *s = NULL;
    if (j) {
        fv_buf_t b;
        fv_buf_init(&b, 0);
        if (fv_json_dump(j, &b) == 0)
            s = fv_buf_steal(&b, len);
        fv_buf_dispose(&b);
        json_decref(j);
    }
    if (!s) {
        /* a message that is not UTF-8 makes jansson refuse, and memory may run out; the code
         * alone still helps (code names are plain ASCII, so no escaping) */
        char small[96];
        int n = snprintf(small, sizeof(small), "{\"error\":{\"code\":\"%s\",\"message\":\"\"}}",
                         fv_err_name(code));
        if (n < 0 || (size_t)n >= sizeof(small))
            n = snprintf(small, sizeof(small), "{\"error\":{\"code\":\"internal\"}}");
        s = fv_strndup(small, (size_t)n);
        *len = (size_t)n;
    }
    return s;
}

void fv_http_resp_header(fv_http_req_t *req, const char *name, const char *value)
{
    if (!req || !req->active)
        return;
    /* a CR or LF in a header would let a caller's data split the response */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return;
    fv_buf_t *h = &req->resp_headers;
    size_t before = h->len;
    if (fv_buf_append_str(h, name) < 0 || fv_buf_append(h, ": ", 2) < 0 ||
        fv_buf_append_str(h, value) < 0 || fv_buf_append(h, "\r\n", 2) < 0) {
        h->len = before;   /* never half a header */
        fv_log_warn("http", "request=%" PRIu64 " response header dropped", req->id);
    }
}

void fv_http_reply(fv_http_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    fv__http_conn_respond(req, status, content_type, body, len, NULL, NULL);
}

void fv_http_reply_owned(fv_http_req_t *req, int status, const char *content_type, char *body,
                         size_t len)
{
    fv__http_conn_respond(req, status, content_type, body, len, body, NULL);
}

void fv_http_reply_shared(fv_http_req_t *req, int status, const char *content_type,
                          fv_shared_t *body)
{
    fv__http_conn_respond(req, status, content_type, fv_shared_data(body), fv_shared_len(body),
                          NULL, body);
}

void fv_http_reply_json(fv_http_req_t *req, int status, json_t *j)
{
    fv_buf_t b;
    fv_buf_init(&b, 0);
    int rc = j ? fv_json_dump(j, &b) : FV_EINVAL;
    json_decref(j);
    if (rc < 0) {
        fv_buf_dispose(&b);
        /* out of memory is a 503 (try again), not a bug of ours (500) */
        fv_http_reply_errorf(req, rc == FV_ENOMEM ? FV_ENOMEM : FV_EINTERNAL,
                             "response serialisation failed");
        return;
    }
    size_t len;
    char *s = fv_buf_steal(&b, &len);
    fv_http_reply_owned(req, status, "application/json", s, len);
}

static void reply_error_msg(fv_http_req_t *req, int code, const char *msg)
{
    int status = fv_err_http_status(code);
    char generic[96];
    if (status >= 500) {
        fv_log_error("http", "request=%" PRIu64 " %.*s %.*s: %s: %s", req->id,
                     (int)req->method.len, req->method.ptr, (int)req->path.len, req->path.ptr,
                     fv_err_name(code), msg);
        snprintf(generic, sizeof(generic), "internal error (request %" PRIu64 ")", req->id);
        msg = generic;
    }
    size_t len;
    char *body = fv__http_error_body(code, msg, &len);
    fv_http_reply_owned(req, status, "application/json", body, len);
}

void fv_http_reply_error(fv_http_req_t *req, const fv_error_t *err)
{
    int code = err ? err->code : FV_EINTERNAL;
    const char *msg = err && err->msg[0] ? err->msg : fv_strerror(code);
    reply_error_msg(req, code, msg);
}

void fv_http_reply_errorf(fv_http_req_t *req, int code, const char *fmt, ...)
{
    char msg[FV_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error_msg(req, code, msg);
}
