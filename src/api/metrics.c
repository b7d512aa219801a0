/* metrics.c - GET /metrics in Prometheus' text format: the request counters
 * every worker shares (http/metrics.h), then what PostgreSQL knows, read at
 * scrape time so that it is right whichever host or worker answers: tasks
 * by kind and status, the age of the oldest pending task, and the durations
 * of finished deployments.
 *
 * No key: nginx serves this route to loopback clients only
 * (nginx/nnreg.conf.in).  A scrape never fails because the database is
 * away: nnreg_database_up is 0 then, and the database's families are left
 * out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/metrics.h"
#include "util/log.h"

/* Deployment durations, seconds: from the task's creation (the upload) to
 * its final status, retries included. */
static const double deploy_bounds[] = {0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                       30,  60,   120, 300, 600, 1800, 3600};
#define NDEPLOY_BOUNDS (sizeof(deploy_bounds) / sizeof(deploy_bounds[0]))

/* Statuses a finished task can have: always written, so that a rate over
 * them never starts from a missing series.  Any other status the database
 * reports is written too, up to MAX_DEPLOY_STATUSES. */
static const char *const final_statuses[] = {"success", "error"};
#define MAX_DEPLOY_STATUSES 8

typedef struct deploy_series {
    const char *status;
    uint64_t counts[NDEPLOY_BOUNDS + 1];
    double sum;
} deploy_series_t;

/* The statement's $1: the bounds as a float8[] literal, exactly the doubles
 * above (17 digits read back as the same double). */
static const char *deploy_bounds_param(arena_t *arena)
{
    nn_buf_t b;
    buf_init(&b, arena);
    buf_append_char(&b, '{');
    for (size_t i = 0; i < NDEPLOY_BOUNDS; i++)
        buf_appendf(&b, "%s%.17g", i ? "," : "", deploy_bounds[i]);
    buf_append_char(&b, '}');
    return buf_cstr(&b);
}

static deploy_series_t *deploy_find(deploy_series_t *series, size_t *n, const char *status)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(series[i].status, status) == 0)
            return &series[i];
    if (*n == MAX_DEPLOY_STATUSES)
        return NULL;
    deploy_series_t *s = &series[(*n)++];
    memset(s, 0, sizeof(*s));
    s->status = status;
    return s;
}

static uint64_t value_u64(const PGresult *res, int row, int col)
{
    const char *v = db_value(res, row, col);
    return v ? strtoull(v, NULL, 10) : 0;
}

static double value_double(const PGresult *res, int row, int col)
{
    const char *v = db_value(res, row, col);
    return v ? strtod(v, NULL) : 0.0;
}

/* Writes the database's families from the metrics_tasks rows (columns:
 * section, kind, status, bucket, count, seconds). */
static void render_tasks(nn_buf_t *out, const PGresult *res)
{
    int nrows = PQntuples(res);
    static const char *const task_statuses[] = {"pending", "success", "error"};
    bool seen[3] = {false, false, false};
    deploy_series_t deploys[MAX_DEPLOY_STATUSES];
    size_t ndeploys = 0;
    for (size_t i = 0; i < sizeof(final_statuses) / sizeof(final_statuses[0]); i++)
        (void)deploy_find(deploys, &ndeploys, final_statuses[i]);
    double oldest_pending = 0;

    metrics_write_family(out, "nnreg_tasks", "gauge", "Tasks by kind and status");
    for (int r = 0; r < nrows; r++) {
        const char *section = db_value(res, r, 0);
        const char *kind = db_value(res, r, 1);
        const char *status = db_value(res, r, 2);
        if (!section)
            continue;
        if (strcmp(section, "tasks") == 0 && kind && status) {
            metrics_label_t labels[] = {{"kind", kind}, {"status", status}};
            metrics_write_sample(out, "nnreg_tasks", labels, 2, (double)value_u64(res, r, 4));
            for (size_t i = 0; i < 3; i++)
                if (strcmp(kind, "deploy") == 0 && strcmp(status, task_statuses[i]) == 0)
                    seen[i] = true;
        } else if (strcmp(section, "deploy") == 0 && status) {
            deploy_series_t *s = deploy_find(deploys, &ndeploys, status);
            if (!s)
                continue;
            long long bucket = db_value(res, r, 3) ? strtoll(db_value(res, r, 3), NULL, 10) : 0;
            if (bucket < 0)
                bucket = 0;
            if (bucket > (long long)NDEPLOY_BOUNDS)
                bucket = (long long)NDEPLOY_BOUNDS;
            s->counts[bucket] += value_u64(res, r, 4);
            s->sum += value_double(res, r, 5);
        } else if (strcmp(section, "oldest_pending") == 0) {
            oldest_pending = value_double(res, r, 5);
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (seen[i])
            continue;
        metrics_label_t labels[] = {{"kind", "deploy"}, {"status", task_statuses[i]}};
        metrics_write_sample(out, "nnreg_tasks", labels, 2, 0);
    }

    metrics_write_family(out, "nnreg_tasks_oldest_pending_age_seconds", "gauge",
                         "Age of the oldest pending task, seconds (0 when none is pending)");
    metrics_write_sample(out, "nnreg_tasks_oldest_pending_age_seconds", NULL, 0,
                         oldest_pending > 0 ? oldest_pending : 0);

    metrics_write_family(out, "nnreg_deploy_duration_seconds", "histogram",
                         "Finished deployments by final status: seconds from the upload to the "
                         "result, retries included");
    for (size_t i = 0; i < ndeploys; i++) {
        metrics_label_t labels[] = {{"status", deploys[i].status}};
        metrics_write_histogram(out, "nnreg_deploy_duration_seconds", labels, 1, deploy_bounds,
                                NDEPLOY_BOUNDS, deploys[i].counts, deploys[i].sum);
    }
}

bool api_metrics(nn_request_t *req)
{
    nn_buf_t *out = &req->body;
    if (req->ctx->metrics && !metrics_render(req->ctx->metrics, out))
        return nn_error_oom(&req->err);

    /* Its own error record: a database away is a value of this page, not
     * an error of the request. */
    nn_error_t db_err;
    nn_error_init(&db_err);
    const char *bounds = deploy_bounds_param(req->arena);
    if (!bounds)
        return nn_error_oom(&req->err);
    const char *params[] = {bounds};
    PGresult *res = db_exec(req->ctx->db, req->arena, "metrics_tasks", 1, params, NULL, &db_err);
    if (!res && db_err.status != 503)
        log_warn("metrics: cannot read the tasks: %s", db_err.message);
    metrics_write_family(out, "nnreg_database_up", "gauge",
                         "1 when this scrape could read the database, 0 when it could not (the "
                         "database's families are then missing)");
    metrics_write_sample(out, "nnreg_database_up", NULL, 0, res ? 1 : 0);
    if (res)
        render_tasks(out, res);

    if (out->failed)
        return nn_error_oom(&req->err);
    req->response_type = METRICS_CONTENT_TYPE;
    return true;
}
