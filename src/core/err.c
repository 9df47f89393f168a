/* err.c - the code table lookups and fv_error_t formatting. */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int fv_error_setv(fv_error_t *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

int fv_error_set(fv_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fv_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void fv_error_clear(fv_error_t *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *fv_err_name(int code)
{
#define X(c, name, http, grpc) if (code == (c)) return name;
    FV_ERR_MAP(X)
#undef X
    return "internal";
}

int fv_err_http_status(int code)
{
#define X(c, name, http, grpc) if (code == (c)) return http;
    FV_ERR_MAP(X)
#undef X
    return 500;
}

int fv_err_grpc_status(int code)
{
#define X(c, name, http, grpc) if (code == (c)) return grpc;
    FV_ERR_MAP(X)
#undef X
    return 2;
}

const char *fv_strerror(int code)
{
    if (code < 0 && code > -4096)
        return strerror(-code);
    return fv_err_name(code);
}
