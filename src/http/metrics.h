/* metrics.h - the FastCGI server's request counters, shared by every worker,
 * and the Prometheus text exposition format (version 0.0.4).
 *
 * The table is one fixed-size anonymous shared mapping (MAP_SHARED |
 * MAP_ANONYMOUS), created by the supervisor before it forks: every worker,
 * including those it restarts and those that replace the old ones on
 * SIGHUP, inherits the same pages, so a scrape answered by any worker sees
 * the whole server.  A worker started alone (spawn-fcgi) creates its own.
 * The counters live as long as the supervisor: they start from zero when it
 * starts (nnreg_start_time_seconds says when).
 *
 * Counters are lock-free C11 atomics updated with relaxed ordering: no lock
 * on the request path, and a worker killed in the middle of an update can
 * never leave anything locked.  A scrape reads each counter once; it may
 * see a request that is being counted in one series and not yet in another,
 * the usual tolerance of Prometheus clients.  A histogram's _count is the
 * sum of its buckets as read, so _count always equals the +Inf bucket.
 *
 * Every dimension is bounded, whatever clients send:
 *   route   a pattern of the route table ("/networks/{}"), "unknown" (no
 *           route matched) or "other" (not routed: undecodable path, out of
 *           memory)
 *   method  GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or "other"
 *   code    the exact status when it is one of a fixed list (200, 201, 204,
 *           304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 500, 502,
 *           503, 504, 507), else its class ("2xx"), else "other"
 * Series that never counted anything are not written.
 */
#ifndef NNREG_HTTP_METRICS_H
#define NNREG_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/router.h"
#include "util/buf.h"

/* The Content-Type of the exposition format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Route patterns the table can tell apart (beyond that, metrics_create
 * fails), "unknown" and "other" included. */
#define METRICS_MAX_ROUTES 64

typedef struct metrics metrics_t;

/* Maps a zeroed table for the distinct patterns of routes.  routes must be
 * static storage (the table keeps pointers to the patterns, valid in every
 * forked child).  NULL with errbuf filled when the mapping fails, the table
 * has too many patterns, or this platform has no lock-free 64-bit atomics
 * (counters shared between processes need them). */
metrics_t *metrics_create(const route_t *routes, size_t nroutes, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

/* Unmaps the table (in this process only; other processes keep theirs).
 * NULL is accepted. */
void metrics_destroy(metrics_t *m);

/* Counts one answered request: route_name as the router set it (NULL when
 * the request was not routed), method as received (NULL counts as
 * "other"), the status sent, the seconds from accept to response, and the
 * request body bytes read.  m NULL: nothing happens. */
void metrics_observe(metrics_t *m, const char *route_name, const char *method, int status,
                     double seconds, uint64_t bytes_in);

/* Counts a worker that exited without being asked to (the supervisor
 * restarts it).  m NULL: nothing happens. */
void metrics_count_worker_exit(metrics_t *m);

/* Appends the families of the table to out: nnreg_start_time_seconds,
 * nnreg_fcgi_worker_exits_total, nnreg_http_requests_total,
 * nnreg_http_request_duration_seconds (histogram),
 * nnreg_http_request_body_bytes_total and nnreg_uploaded_bytes_total.
 * false when out of memory (out has failed). */
bool metrics_render(const metrics_t *m, nn_buf_t *out) __attribute__((warn_unused_result));

/* ---- The exposition format, also for metrics computed elsewhere ---- */

typedef struct metrics_label {
    const char *name;
    const char *value; /* escaped when written */
} metrics_label_t;

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_write_family(nn_buf_t *out, const char *name, const char *type, const char *help);

/* One sample line: name{labels} value.  Integral values are written
 * without exponent or decimals; NaN and infinities as NaN, +Inf, -Inf. */
void metrics_write_sample(nn_buf_t *out, const char *name, const metrics_label_t *labels,
                          size_t nlabels, double value);

/* A histogram's samples for one label set: name_bucket{labels,le="b"} for
 * each of the nbounds increasing upper bounds and for +Inf, cumulative;
 * then name_sum and name_count.  counts has nbounds + 1 entries, NOT
 * cumulative: counts[i] observations fell in (bounds[i-1], bounds[i]],
 * counts[nbounds] above the last bound. */
void metrics_write_histogram(nn_buf_t *out, const char *name, const metrics_label_t *labels,
                             size_t nlabels, const double *bounds, size_t nbounds,
                             const uint64_t *counts, double sum);

/* The index of the bucket value falls in: the first i with value <=
 * bounds[i], nbounds when above them all (and for NaN). */
size_t metrics_bucket_index(const double *bounds, size_t nbounds, double value);

#endif
