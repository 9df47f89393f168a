/* metrics.h - per-module Prometheus metrics: request counts and latency histograms per route,
 * open connections, uptime, build info, and module gauges, rendered in the text exposition
 * format (version 0.0.4) that `promtool check metrics` accepts. */
#ifndef FV_RUNTIME_METRICS_H
#define FV_RUNTIME_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"

typedef struct fv_metrics fv_metrics_t;

typedef double (*fv_metrics_gauge_fn)(void *data);

/* module names the module label on every series. Copied. */
fv_metrics_t *fv_metrics_new(const char *module);
void fv_metrics_free(fv_metrics_t *m);   /* NULL-safe */

/* Records one answered request. route is a pattern with a lifetime at least that of m (the
 * router's copy) or NULL for unmatched paths; method is copied when first seen. */
void fv_metrics_observe(fv_metrics_t *m, const char *route, fv_slice_t method, int status,
                        uint64_t duration_ns);

/* A gauge sampled at render time. name and help are copied. */
void fv_metrics_add_gauge(fv_metrics_t *m, const char *name, const char *help,
                          fv_metrics_gauge_fn fn, void *data);

/* A writer of labelled series a module keeps itself (per upstream, per route): called at
 * render time with the module's name for the module label; appends whole series (HELP, TYPE
 * and samples) to out. 0 or a negative code. */
typedef int (*fv_metrics_writer_fn)(void *data, const char *module, fv_buf_t *out);
void fv_metrics_add_writer(fv_metrics_t *m, fv_metrics_writer_fn fn, void *data);

/* A module tick's series (duration and lateness histograms, overrun and skip counters), kept
 * by m until fv_metrics_free. name is copied. */
typedef struct fv_metrics_tick fv_metrics_tick_t;
fv_metrics_tick_t *fv_metrics_add_tick(fv_metrics_t *m, const char *name);
void fv_metrics_tick_observe(fv_metrics_tick_t *t, uint64_t duration_ns, uint64_t lateness_ns,
                             bool overrun);
void fv_metrics_tick_skipped(fv_metrics_tick_t *t, uint64_t skipped);

/* Appends the whole exposition to out. */
int fv_metrics_render(const fv_metrics_t *m, double uptime_seconds, size_t open_connections,
                      fv_buf_t *out);

#endif
