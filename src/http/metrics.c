#include "http/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Request latency buckets, seconds (Prometheus' defaults, widened to the
 * 1 ms of a cached lookup and the 10 s of a large upload's checks). */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
#define NBUCKETS (NBOUNDS + 1)

static const char *const method_names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                           "PATCH", "DELETE", "OPTIONS", "other"};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))

/* Exact codes, then the classes 1xx..5xx, then "other". */
static const int exact_codes[] = {200, 201, 204, 304, 400, 401, 403, 404, 405,
                                  409, 412, 413, 415, 500, 502, 503, 504, 507};
#define NEXACT (sizeof(exact_codes) / sizeof(exact_codes[0]))
#define NCODES (NEXACT + 5 + 1)

typedef atomic_uint_least64_t metrics_counter_t;

/* One (route, method): every counter a request touches. */
typedef struct metrics_cell {
    metrics_counter_t requests[NCODES];
    metrics_counter_t duration[NBUCKETS]; /* per bucket, not cumulative */
    metrics_counter_t duration_sum_us;
    metrics_counter_t body_bytes;
} metrics_cell_t;

struct metrics {
    size_t mapped_size;
    double start_time; /* Unix time the table was created */
    size_t nroutes;    /* route_names in use, "unknown" and "other" last */
    const char *route_names[METRICS_MAX_ROUTES];
    metrics_counter_t worker_exits;
    metrics_cell_t cells[METRICS_MAX_ROUTES][NMETHODS];
};

static const char unknown_route[] = "unknown";
static const char other_route[] = "other";

metrics_t *metrics_create(const route_t *routes, size_t nroutes, char *errbuf, size_t errlen)
{
    size_t size = sizeof(metrics_t);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(errbuf, errlen, "cannot map %zu bytes of shared memory for the metrics: %s", size,
                 strerror(errno));
        return NULL;
    }
    metrics_t *m = p; /* zero-filled by mmap: every counter starts at 0 */
    m->mapped_size = size;
    if (!atomic_is_lock_free(&m->worker_exits)) {
        snprintf(errbuf, errlen,
                 "64-bit atomics are not lock-free on this platform; the metrics table "
                 "cannot be shared between processes");
        metrics_destroy(m);
        return NULL;
    }
    for (size_t i = 0; i < nroutes; i++) {
        bool seen = false;
        for (size_t j = 0; j < m->nroutes && !seen; j++)
            seen = strcmp(m->route_names[j], routes[i].pattern) == 0;
        if (seen)
            continue;
        if (m->nroutes == METRICS_MAX_ROUTES - 2) {
            snprintf(errbuf, errlen,
                     "the route table has more than %d patterns; raise METRICS_MAX_ROUTES",
                     METRICS_MAX_ROUTES - 2);
            metrics_destroy(m);
            return NULL;
        }
        m->route_names[m->nroutes++] = routes[i].pattern;
    }
    m->route_names[m->nroutes++] = unknown_route;
    m->route_names[m->nroutes++] = other_route;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->start_time = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000.0;
    return m;
}

void metrics_destroy(metrics_t *m)
{
    if (m)
        munmap(m, m->mapped_size);
}

static size_t route_index(const metrics_t *m, const char *route_name)
{
    size_t other = m->nroutes - 1;
    if (!route_name)
        return other;
    for (size_t i = 0; i < other; i++) /* the router's own pointer, usually */
        if (m->route_names[i] == route_name)
            return i;
    for (size_t i = 0; i < other; i++)
        if (strcmp(m->route_names[i], route_name) == 0)
            return i;
    return other;
}

static size_t method_index(const char *method)
{
    if (method)
        for (size_t i = 0; i < NMETHODS - 1; i++)
            if (strcmp(method_names[i], method) == 0)
                return i;
    return NMETHODS - 1;
}

static size_t code_index(int status)
{
    for (size_t i = 0; i < NEXACT; i++)
        if (exact_codes[i] == status)
            return i;
    if (status >= 100 && status <= 599)
        return NEXACT + (size_t)(status / 100 - 1);
    return NCODES - 1;
}

static void code_label(size_t index, char *out, size_t len)
{
    if (index < NEXACT)
        snprintf(out, len, "%d", exact_codes[index]);
    else if (index < NCODES - 1)
        snprintf(out, len, "%dxx", (int)(index - NEXACT + 1));
    else
        snprintf(out, len, "other");
}

size_t metrics_bucket_index(const double *bounds, size_t nbounds, double value)
{
    for (size_t i = 0; i < nbounds; i++)
        if (value <= bounds[i])
            return i;
    return nbounds;
}

static void counter_add(metrics_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t counter_get(const metrics_counter_t *c)
{
    /* atomic_load takes a non-const pointer in older C libraries. */
    return atomic_load_explicit((metrics_counter_t *)c, memory_order_relaxed);
}

void metrics_observe(metrics_t *m, const char *route_name, const char *method, int status,
                     double seconds, uint64_t bytes_in)
{
    if (!m)
        return;
    metrics_cell_t *cell = &m->cells[route_index(m, route_name)][method_index(method)];
    if (!(seconds >= 0)) /* negative or NaN: a clock gone backwards */
        seconds = 0;
    uint64_t micros = seconds < 1e12 ? (uint64_t)(seconds * 1e6 + 0.5) : (uint64_t)1e18;
    counter_add(&cell->requests[code_index(status)], 1);
    counter_add(&cell->duration[metrics_bucket_index(latency_bounds, NBOUNDS, seconds)], 1);
    counter_add(&cell->duration_sum_us, micros);
    if (bytes_in)
        counter_add(&cell->body_bytes, bytes_in);
}

void metrics_count_worker_exit(metrics_t *m)
{
    if (m)
        counter_add(&m->worker_exits, 1);
}

/* ------------------------------------------------------------ exposition */

/* The text of a sample value or a bucket bound. */
static void format_value(double v, char *text, size_t len)
{
    if (isnan(v)) {
        snprintf(text, len, "NaN");
    } else if (isinf(v)) {
        snprintf(text, len, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v) {
        /* An integer below 2^53: exactly representable, written as one. */
        snprintf(text, len, "%.0f", v);
    } else {
        /* The shorter of 15 or 17 significant digits that reads back as v. */
        snprintf(text, len, "%.15g", v);
        if (strtod(text, NULL) != v)
            snprintf(text, len, "%.17g", v);
    }
}

static void write_value(nn_buf_t *out, double v)
{
    char text[40];
    format_value(v, text, sizeof(text));
    buf_append_str(out, text);
}

/* Label values escape backslash, double quote and newline; HELP text
 * escapes backslash and newline. */
static void write_escaped(nn_buf_t *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append_str(out, "\\\\");
        else if (*s == '\n')
            buf_append_str(out, "\\n");
        else if (*s == '"' && quote)
            buf_append_str(out, "\\\"");
        else
            buf_append_char(out, *s);
    }
}

static void write_labels(nn_buf_t *out, const metrics_label_t *labels, size_t nlabels,
                         const char *le)
{
    if (nlabels == 0 && !le)
        return;
    buf_append_char(out, '{');
    for (size_t i = 0; i < nlabels; i++) {
        if (i)
            buf_append_char(out, ',');
        buf_append_str(out, labels[i].name);
        buf_append_str(out, "=\"");
        write_escaped(out, labels[i].value ? labels[i].value : "", true);
        buf_append_char(out, '"');
    }
    if (le) {
        if (nlabels)
            buf_append_char(out, ',');
        buf_append_str(out, "le=\"");
        buf_append_str(out, le);
        buf_append_char(out, '"');
    }
    buf_append_char(out, '}');
}

void metrics_write_family(nn_buf_t *out, const char *name, const char *type, const char *help)
{
    buf_appendf(out, "# HELP %s ", name);
    write_escaped(out, help, false);
    buf_appendf(out, "\n# TYPE %s %s\n", name, type);
}

void metrics_write_sample(nn_buf_t *out, const char *name, const metrics_label_t *labels,
                          size_t nlabels, double value)
{
    buf_append_str(out, name);
    write_labels(out, labels, nlabels, NULL);
    buf_append_char(out, ' ');
    write_value(out, value);
    buf_append_char(out, '\n');
}

void metrics_write_histogram(nn_buf_t *out, const char *name, const metrics_label_t *labels,
                             size_t nlabels, const double *bounds, size_t nbounds,
                             const uint64_t *counts, double sum)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= nbounds; i++) {
        cumulative += counts[i];
        char le[40];
        format_value(i < nbounds ? bounds[i] : INFINITY, le, sizeof(le));
        buf_appendf(out, "%s_bucket", name);
        write_labels(out, labels, nlabels, le);
        buf_appendf(out, " %llu\n", (unsigned long long)cumulative);
    }
    buf_appendf(out, "%s_sum", name);
    write_labels(out, labels, nlabels, NULL);
    buf_append_char(out, ' ');
    write_value(out, sum);
    buf_appendf(out, "\n%s_count", name);
    write_labels(out, labels, nlabels, NULL);
    buf_appendf(out, " %llu\n", (unsigned long long)cumulative);
}

/* A consistent-enough copy of one cell, read once. */
typedef struct cell_snapshot {
    uint64_t requests[NCODES];
    uint64_t duration[NBUCKETS];
    uint64_t total; /* sum of duration[] */
    uint64_t duration_sum_us;
    uint64_t body_bytes;
} cell_snapshot_t;

static void snapshot_cell(const metrics_cell_t *cell, cell_snapshot_t *s)
{
    for (size_t i = 0; i < NCODES; i++)
        s->requests[i] = counter_get(&cell->requests[i]);
    s->total = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        s->duration[i] = counter_get(&cell->duration[i]);
        s->total += s->duration[i];
    }
    s->duration_sum_us = counter_get(&cell->duration_sum_us);
    s->body_bytes = counter_get(&cell->body_bytes);
}

bool metrics_render(const metrics_t *m, nn_buf_t *out)
{
    metrics_write_family(out, "nnreg_start_time_seconds", "gauge",
                         "Unix time the FastCGI server started; its counters count from then");
    metrics_write_sample(out, "nnreg_start_time_seconds", NULL, 0, m->start_time);
    metrics_write_family(out, "nnreg_fcgi_worker_exits_total", "counter",
                         "FastCGI workers that exited without being asked to (each is restarted)");
    metrics_write_sample(out, "nnreg_fcgi_worker_exits_total", NULL, 0,
                         (double)counter_get(&m->worker_exits));

    /* One read of the whole table, then one pass per family. */
    size_t ncells = m->nroutes * NMETHODS;
    cell_snapshot_t *snap = arena_alloc(out->arena, ncells * sizeof(*snap));
    if (!snap) {
        out->failed = true;
        return false;
    }
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t k = 0; k < NMETHODS; k++)
            snapshot_cell(&m->cells[r][k], &snap[r * NMETHODS + k]);

    metrics_write_family(out, "nnreg_http_requests_total", "counter",
                         "HTTP requests answered by the FastCGI workers, by route pattern, "
                         "method and status code");
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t k = 0; k < NMETHODS; k++)
            for (size_t c = 0; c < NCODES; c++) {
                uint64_t n = snap[r * NMETHODS + k].requests[c];
                if (!n)
                    continue;
                char code[16];
                code_label(c, code, sizeof(code));
                metrics_label_t labels[] = {
                    {"route", m->route_names[r]}, {"method", method_names[k]}, {"code", code}};
                metrics_write_sample(out, "nnreg_http_requests_total", labels, 3, (double)n);
            }

    metrics_write_family(out, "nnreg_http_request_duration_seconds", "histogram",
                         "Time from accepting a request to its response being written, seconds");
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t k = 0; k < NMETHODS; k++) {
            const cell_snapshot_t *s = &snap[r * NMETHODS + k];
            if (!s->total)
                continue;
            metrics_label_t labels[] = {{"route", m->route_names[r]}, {"method", method_names[k]}};
            metrics_write_histogram(out, "nnreg_http_request_duration_seconds", labels, 2,
                                    latency_bounds, NBOUNDS, s->duration,
                                    (double)s->duration_sum_us / 1e6);
        }

    metrics_write_family(out, "nnreg_http_request_body_bytes_total", "counter",
                         "Request body bytes read (uploads), by route pattern and method");
    uint64_t uploaded = 0;
    for (size_t r = 0; r < m->nroutes; r++)
        for (size_t k = 0; k < NMETHODS; k++) {
            uint64_t n = snap[r * NMETHODS + k].body_bytes;
            if (!n)
                continue;
            uploaded += n;
            metrics_label_t labels[] = {{"route", m->route_names[r]}, {"method", method_names[k]}};
            metrics_write_sample(out, "nnreg_http_request_body_bytes_total", labels, 2, (double)n);
        }
    metrics_write_family(out, "nnreg_uploaded_bytes_total", "counter",
                         "Request body bytes read (uploads), all routes");
    metrics_write_sample(out, "nnreg_uploaded_bytes_total", NULL, 0, (double)uploaded);
    return !out->failed;
}
