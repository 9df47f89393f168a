/* err.h - error codes and the human-readable error.
 *
 * Every fallible function returns int: 0 on success, a negative code on failure. System codes
 * are minus errno, exactly as libuv's UV_E* are, so a libuv result passes through unchanged.
 * Our own codes sit in -6000..-6999. FV_ERR_MAP gives each code its wire name, HTTP status and
 * gRPC status; the JSON error body uses the name. */
#ifndef FV_CORE_ERR_H
#define FV_CORE_ERR_H

#include <errno.h>
#include <stdarg.h>

#define FV_MUST_USE __attribute__((warn_unused_result))
#define FV_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define FV_EINVAL (-EINVAL)
#define FV_ENOENT (-ENOENT)
#define FV_ENOMEM (-ENOMEM)
#define FV_EEXIST (-EEXIST)
#define FV_EADDRINUSE (-EADDRINUSE)
#define FV_ECANCELED (-ECANCELED)
#define FV_ETIMEDOUT (-ETIMEDOUT)
#define FV_ECONNREFUSED (-ECONNREFUSED)
#define FV_ECONNRESET (-ECONNRESET)
#define FV_EPROTO (-EPROTO)
#define FV_EAGAIN (-EAGAIN)
#define FV_EIO (-EIO)

enum {
    FV_ETOOBIG = -6000,        /* a body, value or frame over its configured ceiling */
    FV_EBACKEND = -6001,       /* a store, upstream or peer is unavailable */
    FV_ECONFIG = -6002,        /* configuration refused */
    FV_ENOTALLOWED = -6003,    /* method not allowed on a route */
    FV_EUNAUTH = -6004,        /* missing or bad credentials */
    FV_EFORBIDDEN = -6005,     /* authenticated but not permitted */
    FV_ECONFLICT = -6006,      /* state conflict (compare-and-set lost, duplicate) */
    FV_ERATELIMIT = -6007,     /* over a rate limit */
    FV_EHDRTOOBIG = -6008,     /* request headers over their ceiling */
    FV_EINTERNAL = -6009,      /* a bug or an invariant broken: never the client's fault */
    FV_EUNAVAILABLE = -6010,   /* shutting down or not ready */
    FV_EUNIMPLEMENTED = -6011, /* no such method (or service) where the call went */
};

/* code, wire name, HTTP status, gRPC status */
#define FV_ERR_MAP(X)                                                   \
    X(FV_EINVAL,        "invalid_argument",    400,  3)                 \
    X(FV_ENOENT,        "not_found",           404,  5)                 \
    X(FV_ENOMEM,        "out_of_memory",       503,  8)                 \
    X(FV_EEXIST,        "already_exists",      409,  6)                 \
    X(FV_EADDRINUSE,    "address_in_use",      500, 13)                 \
    X(FV_ECANCELED,     "cancelled",           499,  1)                 \
    X(FV_ETIMEDOUT,     "timeout",             504,  4)                 \
    X(FV_ECONNREFUSED,  "connection_refused",  502, 14)                 \
    X(FV_ECONNRESET,    "connection_reset",    502, 14)                 \
    X(FV_EPROTO,        "protocol_error",      502, 13)                 \
    X(FV_EAGAIN,        "try_again",           503, 14)                 \
    X(FV_EIO,           "io_error",            500, 13)                 \
    X(FV_ETOOBIG,       "too_large",           413,  8)                 \
    X(FV_EBACKEND,      "backend_unavailable", 503, 14)                 \
    X(FV_ECONFIG,       "invalid_config",      500,  9)                 \
    X(FV_ENOTALLOWED,   "method_not_allowed",  405, 12)                 \
    X(FV_EUNAUTH,       "unauthenticated",     401, 16)                 \
    X(FV_EFORBIDDEN,    "permission_denied",   403,  7)                 \
    X(FV_ECONFLICT,     "conflict",            409, 10)                 \
    X(FV_ERATELIMIT,    "rate_limited",        429,  8)                 \
    X(FV_EHDRTOOBIG,    "headers_too_large",   431,  3)                 \
    X(FV_EINTERNAL,     "internal",            500, 13)                 \
    X(FV_EUNAVAILABLE,  "unavailable",         503, 14)                 \
    X(FV_EUNIMPLEMENTED, "unimplemented",      501, 12)

#define FV_ERROR_MSG_LEN 256

/* A code with a sentence for a person. Fixed size, so it works out of memory. */
typedef struct fv_error {
    int code;
    char msg[FV_ERROR_MSG_LEN];
} fv_error_t;

/* Fill err (when not NULL) and return code, so a caller can write
 *     return fv_error_set(err, FV_EINVAL, "...", ...); */
int fv_error_set(fv_error_t *err, int code, const char *fmt, ...) FV_PRINTF(3, 4);
int fv_error_setv(fv_error_t *err, int code, const char *fmt, va_list ap) FV_PRINTF(3, 0);
void fv_error_clear(fv_error_t *err);

/* Wire name ("invalid_argument"); "internal" for codes outside the map. */
const char *fv_err_name(int code);
/* HTTP status for the code; 500 for codes outside the map. */
int fv_err_http_status(int code);
/* gRPC status for the code; 2 (UNKNOWN) outside the map. */
int fv_err_grpc_status(int code);
/* A short English description: strerror() for system codes, the name for ours. */
const char *fv_strerror(int code);

#endif
