/* token.h - the stack's own registry token kept in the data directory: made once by the
 * registry module when registry.token is empty, read by the registry client of every module
 * of the same data directory (the `finalverse up` case). */
#ifndef FV_REGISTRY_TOKEN_H
#define FV_REGISTRY_TOKEN_H

#include <stddef.h>

#include "core/err.h"

/* <data_dir>/registry/token: read it, or make it (32 random bytes as hex, mode 0600) when it
 * does not exist. 0 and the token in out (cap > 64), or a negative code with err. */
FV_MUST_USE int registry_token_ensure(const char *data_dir, char *out, size_t cap,
                                      fv_error_t *err);

/* Reads <data_dir>/registry/token. 0 and the token, FV_ENOENT when there is none, or another
 * negative code (unreadable, or not a token). */
FV_MUST_USE int registry_token_read(const char *data_dir, char *out, size_t cap);

#endif
