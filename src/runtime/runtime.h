/* runtime.h - runs a set of modules in one process: listeners, registration, signals, drain.
 *
 * fv_runtime_start() starts the chosen modules in dependency order, each on its own port with
 * /health, /info and /metrics, and registers each with the registry. fv_runtime_run() runs the
 * loop until a graceful shutdown (SIGINT/SIGTERM or fv_runtime_shutdown) has finished:
 * deregister, stop accepting, stop the modules, let in-flight requests finish until
 * general.drain_timeout_ms, close everything. */
#ifndef FV_RUNTIME_RUNTIME_H
#define FV_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"

typedef struct fv_runtime fv_runtime_t;

/* cfg is borrowed and must outlive the runtime. */
FV_MUST_USE int fv_runtime_new(uv_loop_t *loop, const fv_config_t *cfg, fv_runtime_t **out);

/* Starts the modules whose component indexes are in which[0..count). Skips none: a module that
 * fails to start (port in use, bad state) makes this fail with err naming module and port, and
 * whatever started is shut down again by fv_runtime_run()/free. */
FV_MUST_USE int fv_runtime_start(fv_runtime_t *rt, const int *which, size_t count,
                                 fv_error_t *err);

/* Prints the table of running components and their URLs. */
void fv_runtime_print_table(const fv_runtime_t *rt, FILE *out);

/* Handles SIGINT/SIGTERM from now on (a second signal forces an immediate exit). */
FV_MUST_USE int fv_runtime_handle_signals(fv_runtime_t *rt);

/* Starts the graceful shutdown; idempotent. */
void fv_runtime_shutdown(fv_runtime_t *rt);

/* Runs the loop until shutdown completes. Returns the process exit code (0 clean). */
int fv_runtime_run(fv_runtime_t *rt);

/* Frees the runtime after fv_runtime_run returned (or when start failed, after run). */
void fv_runtime_free(fv_runtime_t *rt);

#endif
