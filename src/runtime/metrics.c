/* metrics.c - counters and histograms kept per (route, method) in a small linear table.
 *
 * A module serves a few dozen routes at most, so a linear scan with pointer comparison on the
 * route (patterns are interned by the router) beats a hash table here; the table grows only
 * when a new route/method pair is first seen. Label values are escaped as the exposition format
 * requires. */
#include "runtime/metrics.h"

#include <stdbool.h>
#include <stdint.h>
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

/* One latency histogram: requests of a route, runs of a tick. */
typedef struct hist {
    uint64_t bucket[BUCKET_COUNT + 1];
    uint64_t count;
    double sum_seconds;
} hist_t;

typedef struct route_stats {
    const char *route;           /* borrowed pattern, or NULL for unmatched */
    char method[16];
    uint64_t status_count[STATUS_SLOTS];
    hist_t latency;
} route_stats_t;

struct fv_metrics_tick {
    char *name;
    hist_t duration;             /* handler run time */
    hist_t lateness;             /* start time minus scheduled time */
    uint64_t overruns;           /* runs longer than the period */
    uint64_t skipped;            /* due ticks dropped by the catch-up cap */
};

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
    struct {
        fv_metrics_writer_fn fn;
        void *data;
    } *writers;
    size_t writer_count;
    fv_metrics_tick_t **ticks;
    size_t tick_count;
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
    fv_free(m->writers);
    for (size_t i = 0; i < m->tick_count; i++) {
        fv_free(m->ticks[i]->name);
        fv_free(m->ticks[i]);
    }
    fv_free(m->ticks);
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

static void hist_observe(hist_t *h, uint64_t ns)
{
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < BUCKET_COUNT && secs > bucket_bounds[b])
        b++;
    h->bucket[b]++;
    h->count++;
    h->sum_seconds += secs;
}

void fv_metrics_observe(fv_metrics_t *m, const char *route, fv_slice_t method, int status,
                        uint64_t duration_ns)
{
    route_stats_t *r = find_route(m, route, method);
    if (status >= 100 && status < 100 + STATUS_SLOTS)
        r->status_count[status - 100]++;
    hist_observe(&r->latency, duration_ns);
}

fv_metrics_tick_t *fv_metrics_add_tick(fv_metrics_t *m, const char *name)
{
    fv_metrics_tick_t *t = fv_calloc(1, sizeof(*t));
    t->name = fv_strdup(name);
    m->ticks = fv_realloc(m->ticks, (m->tick_count + 1) * sizeof(*m->ticks));
    m->ticks[m->tick_count++] = t;
    return t;
}

void fv_metrics_tick_observe(fv_metrics_tick_t *t, uint64_t duration_ns, uint64_t lateness_ns,
                             bool overrun)
{
    hist_observe(&t->duration, duration_ns);
    hist_observe(&t->lateness, lateness_ns);
    if (overrun)
        t->overruns++;
}

void fv_metrics_tick_skipped(fv_metrics_tick_t *t, uint64_t skipped)
{
    t->skipped += skipped;
}

void fv_metrics_add_writer(fv_metrics_t *m, fv_metrics_writer_fn fn, void *data)
{
    m->writers = fv_realloc(m->writers, (m->writer_count + 1) * sizeof(*m->writers));
    m->writers[m->writer_count].fn = fn;
    m->writers[m->writer_count].data = data;
    m->writer_count++;
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

static int put_tick_labels(fv_buf_t *out, const fv_metrics_t *m, const fv_metrics_tick_t *t)
{
    int rc = fv_buf_append_str(out, "module=\"");
    if (!rc)
        rc = put_label(out, m->module);
    if (!rc)
        rc = fv_buf_append_str(out, "\",tick=\"");
    if (!rc)
        rc = put_label(out, t->name);
    if (!rc)
        rc = fv_buf_append_str(out, "\"");
    return rc;
}

/* The _bucket, _sum and _count lines of one histogram series; labels is the rendered label
 * set without braces. */
static int put_hist(fv_buf_t *out, const char *name, const char *labels, const hist_t *h)
{
    uint64_t cumulative = 0;
    int rc = 0;
    for (size_t b = 0; b <= BUCKET_COUNT && rc == 0; b++) {
        cumulative += h->bucket[b];
        if (b < BUCKET_COUNT)
            rc = fv_buf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
                               bucket_bounds[b], (unsigned long long)cumulative);
        else
            rc = fv_buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
                               (unsigned long long)cumulative);
    }
    if (rc == 0)
        rc = fv_buf_printf(out, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, labels,
                           h->sum_seconds, name, labels, (unsigned long long)h->count);
    return rc;
}

/* The tick series: two histograms and two counters per tick, each family's HELP/TYPE once. */
static int put_ticks(fv_buf_t *out, const fv_metrics_t *m)
{
    static const struct {
        const char *name, *help;
        size_t hist;        /* offsetof the hist_t in the tick, or SIZE_MAX for a counter */
        size_t counter;     /* offsetof the uint64_t counter */
    } families[] = {
        {"finalverse_tick_duration_seconds", "Run time of a module's tick handler.",
         offsetof(fv_metrics_tick_t, duration), 0},
        {"finalverse_tick_lateness_seconds", "Start of a tick minus its scheduled time.",
         offsetof(fv_metrics_tick_t, lateness), 0},
        {"finalverse_tick_overruns_total", "Tick runs that took longer than the tick's period.",
         SIZE_MAX, offsetof(fv_metrics_tick_t, overruns)},
        {"finalverse_tick_skipped_total",
         "Due ticks dropped because the module fell too far behind.", SIZE_MAX,
         offsetof(fv_metrics_tick_t, skipped)},
    };
    int rc = 0;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]) && rc == 0; f++) {
        bool is_hist = families[f].hist != SIZE_MAX;
        rc = fv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
                           families[f].help, families[f].name, is_hist ? "histogram" : "counter");
        for (size_t i = 0; i < m->tick_count && rc == 0; i++) {
            const char *t = (const char *)m->ticks[i];
            fv_buf_t lb;
            fv_buf_init(&lb, 0);
            rc = put_tick_labels(&lb, m, m->ticks[i]);
            if (rc == 0 && is_hist)
                rc = put_hist(out, families[f].name, lb.ptr,
                              (const hist_t *)(t + families[f].hist));
            else if (rc == 0)
                rc = fv_buf_printf(out, "%s{%s} %llu\n", families[f].name, lb.ptr,
                                   (unsigned long long)*(const uint64_t *)(t +
                                                                           families[f].counter));
            fv_buf_dispose(&lb);
        }
    }
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
        fv_buf_t lb;
        fv_buf_init(&lb, 0);
        rc = put_route_labels(&lb, m, &m->routes[i]);
        if (rc == 0)
            rc = put_hist(out, "finalverse_http_request_duration_seconds", lb.ptr,
                          &m->routes[i].latency);
        fv_buf_dispose(&lb);
        if (rc < 0)
            return rc;
    }

    if (m->tick_count)
        TRY(put_ticks(out, m));

    for (size_t i = 0; i < m->gauge_count; i++) {
        const gauge_t *g = &m->gauges[i];
        /* a count that only grows is named ..._total and typed counter (Prometheus' rule) */
        size_t nl = strlen(g->name);
        bool counter = nl > 6 && strcmp(g->name + nl - 6, "_total") == 0;
        TRY(fv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s{module=\"%s\"} %.17g\n",
                          g->name, g->help, g->name, counter ? "counter" : "gauge", g->name,
                          m->module, g->fn(g->data)));
    }
    for (size_t i = 0; i < m->writer_count; i++)
        TRY(m->writers[i].fn(m->writers[i].data, m->module, out));
#undef TRY
    return rc;
}
