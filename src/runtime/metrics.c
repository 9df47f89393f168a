/* metrics.c - counters and histograms kept per (route, method) in a small linear table.
 *
 * A module serves a few dozen routes at most, so a linear scan with pointer comparison on the
 * route (patterns are interned by the router) beats a hash table here; the table grows only
 * when a new route/method pair is first seen. Label values are escaped as the exposition format
 * requires. */
#include "runtime/metrics.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* Upper bounds in seconds; +Inf is implicit. Chosen to resolve sub-millisecond handlers as
 * well as slow upstream calls. */
static const double bucket_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                       5,      10};
#define BUCKET_COUNT (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

/* Status codes are counted in a fixed array indexed by status - 100. */
#define STATUS_SLOTS 500

typedef struct route_stats {
    const char *route;           /* borrowed pattern, or NULL for unmatched */
    char method[16];
    uint64_t status_count[STATUS_SLOTS];
    uint64_t bucket[BUCKET_COUNT + 1];
    uint64_t count;
    double sum_seconds;
} route_stats_t;

typedef struct gauge {
    char *name;
    char *help;
    fv_metrics_gauge_fn fn;
    void *data;
} gauge_t;

struct fv_metrics {
    char *module;
    route_stats_t *routes;
    size_t route_count;
    size_t route_cap;
    gauge_t *gauges;
    size_t gauge_count;
};

fv_metrics_t *fv_metrics_new(const char *module)
{
    fv_metrics_t *m = fv_calloc(1, sizeof(*m));
    m->module = fv_strdup(module);
    return m;
}

void fv_metrics_free(fv_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->gauge_count; i++) {
        fv_free(m->gauges[i].name);
        fv_free(m->gauges[i].help);
    }
    fv_free(m->gauges);
    fv_free(m->routes);
    fv_free(m->module);
    fv_free(m);
}

static route_stats_t *find_route(fv_metrics_t *m, const char *route, fv_slice_t method)
{
    char meth[16];
    size_t n = method.len < sizeof(meth) - 1 ? method.len : sizeof(meth) - 1;
    memcpy(meth, method.ptr, n);
    meth[n] = '\0';
    for (size_t i = 0; i < m->route_count; i++) {
        route_stats_t *r = &m->routes[i];
        if (r->route == route && strcmp(r->method, meth) == 0)
            return r;
    }
    if (m->route_count == m->route_cap) {
        m->route_cap = m->route_cap ? m->route_cap * 2 : 8;
        m->routes = fv_realloc(m->routes, m->route_cap * sizeof(*m->routes));
    }
    route_stats_t *r = &m->routes[m->route_count++];
    memset(r, 0, sizeof(*r));
    r->route = route;
    memcpy(r->method, meth, n + 1);
    return r;
}

void fv_metrics_observe(fv_metrics_t *m, const char *route, fv_slice_t method, int status,
                        uint64_t duration_ns)
{
    route_stats_t *r = find_route(m, route, method);
    double secs = (double)duration_ns / 1e9;
    if (status >= 100 && status < 100 + STATUS_SLOTS)
        r->status_count[status - 100]++;
    size_t b = 0;
    while (b < BUCKET_COUNT && secs > bucket_bounds[b])
        b++;
    r->bucket[b]++;
    r->count++;
    r->sum_seconds += secs;
}

void fv_metrics_add_gauge(fv_metrics_t *m, const char *name, const char *help,
                          fv_metrics_gauge_fn fn, void *data)
{
    m->gauges = fv_realloc(m->gauges, (m->gauge_count + 1) * sizeof(*m->gauges));
    gauge_t *g = &m->gauges[m->gauge_count++];
    g->name = fv_strdup(name);
    g->help = fv_strdup(help);
    g->fn = fn;
    g->data = data;
}

/* Label values: backslash, double quote and newline must be escaped. */
static int put_label(fv_buf_t *out, const char *v)
{
    int rc = 0;
    for (; *v && rc == 0; v++) {
        if (*v == '\\' || *v == '"')
            rc = fv_buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            rc = fv_buf_append_str(out, "\\n");
        else
            rc = fv_buf_append(out, v, 1);
    }
    return rc;
}

static int put_route_labels(fv_buf_t *out, const fv_metrics_t *m, const route_stats_t *r)
{
    int rc = fv_buf_append_str(out, "module=\"");
    if (!rc)
        rc = put_label(out, m->module);
    if (!rc)
        rc = fv_buf_append_str(out, "\",route=\"");
    if (!rc)
        rc = put_label(out, r->route ? r->route : "unmatched");
    if (!rc)
        rc = fv_buf_append_str(out, "\",method=\"");
    if (!rc)
        rc = put_label(out, r->method);
    if (!rc)
        rc = fv_buf_append_str(out, "\"");
    return rc;
}

int fv_metrics_render(const fv_metrics_t *m, double uptime_seconds, size_t open_connections,
                      fv_buf_t *out)
{
    int rc = 0;
#define TRY(x)                   \
    do {                         \
        if ((rc = (x)) < 0)      \
            return rc;           \
    } while (0)

    TRY(fv_buf_append_str(out, "# HELP finalverse_build_info Build of this process.\n"
                               "# TYPE finalverse_build_info gauge\n"));
    TRY(fv_buf_printf(out,
                      "finalverse_build_info{module=\"%s\",version=\"%s\",revision=\"%s\"} 1\n",
                      m->module, FV_VERSION, FV_GIT_REV));
    TRY(fv_buf_append_str(out, "# HELP finalverse_uptime_seconds Seconds since the module "
                               "started.\n# TYPE finalverse_uptime_seconds gauge\n"));
    TRY(fv_buf_printf(out, "finalverse_uptime_seconds{module=\"%s\"} %.3f\n", m->module,
                      uptime_seconds));
    TRY(fv_buf_append_str(out, "# HELP finalverse_http_open_connections Open HTTP connections.\n"
                               "# TYPE finalverse_http_open_connections gauge\n"));
    TRY(fv_buf_printf(out, "finalverse_http_open_connections{module=\"%s\"} %zu\n", m->module,
                      open_connections));

    TRY(fv_buf_append_str(out, "# HELP finalverse_http_requests_total HTTP requests answered, by "
                               "route, method and status.\n"
                               "# TYPE finalverse_http_requests_total counter\n"));
    for (size_t i = 0; i < m->route_count; i++) {
        const route_stats_t *r = &m->routes[i];
        for (int s = 0; s < STATUS_SLOTS; s++) {
            if (!r->status_count[s])
                continue;
            TRY(fv_buf_append_str(out, "finalverse_http_requests_total{"));
            TRY(put_route_labels(out, m, r));
            TRY(fv_buf_printf(out, ",code=\"%d\"} %llu\n", s + 100,
                              (unsigned long long)r->status_count[s]));
        }
    }

    TRY(fv_buf_append_str(out, "# HELP finalverse_http_request_duration_seconds Time from the "
                               "request's arrival to its response, by route.\n"
                               "# TYPE finalverse_http_request_duration_seconds histogram\n"));
    for (size_t i = 0; i < m->route_count; i++) {
        const route_stats_t *r = &m->routes[i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= BUCKET_COUNT; b++) {
            cumulative += r->bucket[b];
            TRY(fv_buf_append_str(out, "finalverse_http_request_duration_seconds_bucket{"));
            TRY(put_route_labels(out, m, r));
            if (b < BUCKET_COUNT)
                TRY(fv_buf_printf(out, ",le=\"%g\"} %llu\n", bucket_bounds[b],
                                  (unsigned long long)cumulative));
            else
                TRY(fv_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative));
        }
        TRY(fv_buf_append_str(out, "finalverse_http_request_duration_seconds_sum{"));
        TRY(put_route_labels(out, m, r));
        TRY(fv_buf_printf(out, "} %.9f\n", r->sum_seconds));
        TRY(fv_buf_append_str(out, "finalverse_http_request_duration_seconds_count{"));
        TRY(put_route_labels(out, m, r));
        TRY(fv_buf_printf(out, "} %llu\n", (unsigned long long)r->count));
    }

    for (size_t i = 0; i < m->gauge_count; i++) {
        const gauge_t *g = &m->gauges[i];
        TRY(fv_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s{module=\"%s\"} %.17g\n",
                          g->name, g->help, g->name, g->name, m->module, g->fn(g->data)));
    }
#undef TRY
    return rc;
}
