#include "deploy/deployer.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "deploy/check.h"
#include "deploy/layout.h"
#include "json/jv.h"
#include "store/blob.h"
#include "util/buf.h"
#include "util/log.h"

#define CHANNEL_DEPLOY "nnreg_deploy"
#define CHANNEL_UNDEPLOY "nnreg_undeploy"

/* What an interrupted install left in the deploy directory is removed once
 * this old (an install at work on another host is younger), after every
 * (re)connect and then this often. */
#define SWEEP_AGE_SECONDS 3600
#define SWEEP_EVERY_SECONDS 3600

/* The statements of the work connection.  A claim takes the oldest pending
 * task whose lease is free or expired; the owner/attempts pair then guards
 * every later write, so a deployer that lost its claim (it stalled past
 * the lease and another took over) can never overwrite the result. */
static const db_statement_t deployer_statements[] = {
    {"claim",
     "UPDATE tasks SET owner = $1, attempts = attempts + 1, "
     "lease_until = clock_timestamp() + make_interval(secs => $2::integer) "
     "WHERE id = (SELECT id FROM tasks WHERE status = 'pending' AND kind = 'deploy' "
     "AND (lease_until IS NULL OR lease_until < clock_timestamp()) "
     "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) "
     "RETURNING id, network_id, attempts",
     2, DB_RUN_ONCE},
    {"extend",
     "UPDATE tasks SET lease_until = clock_timestamp() + make_interval(secs => $4::integer) "
     "WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'pending' RETURNING id",
     4, DB_RETRY_SAFE},
    {"finish",
     "UPDATE tasks SET status = $4, error = $5, data = $6::jsonb, lease_until = NULL, "
     "update_date = clock_timestamp() "
     "WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'pending' RETURNING id",
     6, DB_RUN_ONCE},
    /* Whether a finish whose answer was lost committed (see finish()). */
    {"task_state", "SELECT status FROM tasks WHERE id = $1 AND owner = $2 AND attempts = $3", 3,
     DB_RETRY_SAFE},
    {"network", "SELECT preprocessing::text, postprocessings::text FROM networks WHERE id = $1", 1, DB_RETRY_SAFE},
    {"files",
     "SELECT name, sha256, size FROM network_files WHERE network_id = $1 ORDER BY position", 1, DB_RETRY_SAFE},
    {"existing", "SELECT id FROM networks WHERE id = ANY($1::bigint[])", 1, DB_RETRY_SAFE},
};

/* Signal flags: set by the handlers, acted upon by the loop between
 * tasks. */
static volatile sig_atomic_t deployer_stopping, deployer_reload;

static void on_term(int sig)
{
    if (sig == SIGHUP)
        deployer_reload = 1;
    else
        deployer_stopping = 1;
}

typedef struct deployer {
    nn_config_t *config;
    db_t *db;
    PGconn *listen;
    char owner[160];
    bool need_reconcile;
    time_t last_sweep;
} deployer_t;

typedef struct claim {
    deployer_t *d;
    arena_t *arena;
    char task_id[24];
    char attempts[16];
    char lease[16];
    double extended_at; /* monotonic seconds of the claim or last extension */
} claim_t;

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Called between checks.  The lease is extended once a third of it has
 * gone by (a small network is deployed without a single extension, which
 * would each cost a commit); a claim can only have been lost after the
 * whole lease went by, so the check below still notices every loss. */
static bool extend_lease(void *ctx)
{
    claim_t *c = ctx;
    double now = monotonic_seconds();
    if (now - c->extended_at < (double)c->d->config->deploy_lease_seconds / 3.0)
        return true;
    nn_error_t err;
    nn_error_init(&err);
    const char *params[] = {c->task_id, c->d->owner, c->attempts, c->lease};
    PGresult *res = db_exec(c->d->db, c->arena, "extend", 4, params, NULL, &err);
    /* A database hiccup is not a lost claim: keep working, the final
     * write is guarded anyway. */
    if (!res)
        return true;
    if (PQntuples(res) != 1)
        return false;
    c->extended_at = now;
    return true;
}

static void finish(claim_t *c, const char *status, const char *error, const jv_t *report)
{
    nn_error_t err;
    nn_error_init(&err);
    char *data = report ? jv_serialize(c->arena, report, NULL) : NULL;
    const char *params[] = {c->task_id, c->d->owner, c->attempts, status, error, data};
    PGresult *res = db_exec(c->d->db, c->arena, "finish", 6, params, NULL, &err);
    if (!res && err.status == 503) {
        /* The connection dropped: the write may have committed with only
         * its answer lost.  Look first; write again only while the task
         * is still pending under this claim (the write is guarded by the
         * same claim, so it can never overwrite another deployer's). */
        nn_error_t again;
        nn_error_init(&again);
        const char *sparams[] = {c->task_id, c->d->owner, c->attempts};
        PGresult *st = db_exec(c->d->db, c->arena, "task_state", 3, sparams, NULL, &again);
        if (st && PQntuples(st) == 1 && strcmp(db_value(st, 0, 0), status) == 0) {
            log_info("task %s: %s (recorded before the connection dropped)", c->task_id, status);
            return;
        }
        if (st && PQntuples(st) == 1 && strcmp(db_value(st, 0, 0), "pending") == 0) {
            log_warn("task %s: connection lost while recording %s: writing it again",
                     c->task_id, status);
            nn_error_init(&err);
            res = db_exec(c->d->db, c->arena, "finish", 6, params, NULL, &err);
        }
    }
    if (!res)
        log_error("task %s: could not record %s: %s", c->task_id, status, err.message);
    else if (PQntuples(res) != 1)
        log_warn("task %s: claim lost before the result was written; the result is dropped",
                 c->task_id);
    else
        log_info("task %s: %s%s%s", c->task_id, status, error ? ": " : "", error ? error : "");
}

/* Loads what the job needs; false with err set. */
static bool load_job(claim_t *c, long long network_id, deploy_job_t *job, nn_error_t *err)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", network_id);
    const char *params[] = {id};
    PGresult *net = db_exec(c->d->db, c->arena, "network", 1, params, NULL, err);
    if (!net)
        return false;
    if (PQntuples(net) != 1)
        return nn_error_set(err, 404, "network_deleted",
                            "network %lld was deleted before it could be deployed", network_id);
    PGresult *files = db_exec(c->d->db, c->arena, "files", 1, params, NULL, err);
    if (!files)
        return false;
    job->network_id = network_id;
    job->preprocessing_json = db_value(net, 0, 0);
    job->postprocessings_json = db_value(net, 0, 1);
    job->nfiles = (size_t)PQntuples(files);
    job->files = arena_calloc(c->arena, job->nfiles + 1, sizeof(*job->files));
    if (!job->files)
        return nn_error_oom(err);
    for (size_t i = 0; i < job->nfiles; i++) {
        job->files[i].name = db_value(files, (int)i, 0);
        job->files[i].sha256 = db_value(files, (int)i, 1);
        job->files[i].size = (uint64_t)db_value_ll(files, (int)i, 2);
    }
    return true;
}

/* Claims and runs one task; false when there was none (or the database is
 * away). */
static bool deploy_one(deployer_t *d)
{
    arena_t *arena = arena_create(0);
    if (!arena)
        return false;
    claim_t c = {.d = d, .arena = arena};
    snprintf(c.lease, sizeof(c.lease), "%lld", d->config->deploy_lease_seconds);
    nn_error_t err;
    nn_error_init(&err);
    const char *params[] = {d->owner, c.lease};
    c.extended_at = monotonic_seconds();
    PGresult *res = db_exec(d->db, arena, "claim", 2, params, NULL, &err);
    if (!res || PQntuples(res) != 1) {
        if (!res)
            log_warn("claim failed: %s", err.message);
        arena_destroy(arena);
        return false;
    }
    snprintf(c.task_id, sizeof(c.task_id), "%s", db_value(res, 0, 0));
    snprintf(c.attempts, sizeof(c.attempts), "%s", db_value(res, 0, 2));
    const char *network = db_value(res, 0, 1);
    long long attempts = db_value_ll(res, 0, 2);
    log_set_request_id(c.task_id);
    log_info("task %s: claimed (network %s, attempt %lld)", c.task_id, network ? network : "-",
             attempts);

    if (attempts > d->config->deploy_max_attempts) {
        char *msg = arena_printf(arena,
                                 "deployment was started %lld times and never finished (the "
                                 "deployer died each time); check the deployer logs, then "
                                 "create the network again",
                                 attempts - 1);
        finish(&c, "error", msg ? msg : "deployment kept failing", NULL);
    } else if (!network) {
        finish(&c, "error", "the network was deleted before it could be deployed", NULL);
    } else {
        deploy_job_t job;
        jv_t *report = NULL;
        if (!load_job(&c, strtoll(network, NULL, 10), &job, &err)) {
            if (err.status == 503)
                log_warn("task %s: database away; the lease will return it", c.task_id);
            else
                finish(&c, "error", err.message, NULL);
        } else if (deploy_run(arena, d->config, &job, extend_lease, &c, &report, &err)) {
            finish(&c, "success", NULL, report);
        } else if (err.status == 409) {
            log_warn("task %s: %s", c.task_id, err.message);
        } else if (err.status == 503) {
            log_warn("task %s: database away; the lease will return it", c.task_id);
        } else {
            finish(&c, "error", err.message, report);
        }
    }
    log_set_request_id(NULL);
    arena_destroy(arena);
    return true;
}

/* Removes deployed copies of networks that no longer exist (a delete whose
 * notification was missed). */
static void reconcile(deployer_t *d)
{
    layout_sweep(d->config->deploy_dir, SWEEP_AGE_SECONDS);
    d->last_sweep = time(NULL);
    arena_t *arena = arena_create(0);
    if (!arena)
        return;
    long long *ids;
    size_t n;
    if (layout_list(arena, d->config->deploy_dir, &ids, &n) && n > 0) {
        nn_buf_t b;
        buf_init(&b, arena);
        buf_append_char(&b, '{');
        for (size_t i = 0; i < n; i++)
            buf_appendf(&b, "%s%lld", i ? "," : "", ids[i]);
        buf_append_char(&b, '}');
        const char *params[] = {buf_cstr(&b)};
        nn_error_t err;
        nn_error_init(&err);
        PGresult *res = params[0] ? db_exec(d->db, arena, "existing", 1, params, NULL, &err) : NULL;
        if (res) {
            bool removed = false;
            for (size_t i = 0; i < n; i++) {
                bool exists = false;
                for (int r = 0; r < PQntuples(res) && !exists; r++)
                    exists = db_value_ll(res, r, 0) == ids[i];
                if (!exists && layout_remove(arena, d->config->deploy_dir, ids[i])) {
                    log_info("network %lld no longer exists: deployed copy removed", ids[i]);
                    removed = true;
                }
            }
            if (removed && !layout_write_config(arena, d->config->deploy_dir, &err))
                log_error("models.config: %s", err.message);
            d->need_reconcile = false;
        }
    } else {
        d->need_reconcile = false;
    }
    arena_destroy(arena);
}

static void undeploy(deployer_t *d, const char *payload)
{
    long long id = strtoll(payload, NULL, 10);
    if (id <= 0)
        return;
    arena_t *arena = arena_create(0);
    if (!arena)
        return;
    nn_error_t err;
    nn_error_init(&err);
    if (layout_remove(arena, d->config->deploy_dir, id)) {
        log_info("network %lld deleted: deployed copy removed", id);
        if (!layout_write_config(arena, d->config->deploy_dir, &err))
            log_error("models.config: %s", err.message);
    }
    arena_destroy(arena);
}

/* The server's notices on the LISTEN connection (its FATAL before it
 * closes the connection, for one) go to the log, not raw to stderr. */
static void listen_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    log_warn("listen connection: %s", db_one_line(line, sizeof(line), message));
}

static bool listen_connect(deployer_t *d)
{
    if (d->listen && PQstatus(d->listen) == CONNECTION_OK)
        return true;
    if (d->listen)
        PQfinish(d->listen);
    d->listen = db_open(d->config->database_url, NULL);
    char why[512];
    if (!d->listen || PQstatus(d->listen) != CONNECTION_OK) {
        log_warn("listen connection failed: %s",
                 d->listen ? db_one_line(why, sizeof(why), PQerrorMessage(d->listen))
                           : "out of memory");
        if (d->listen)
            PQfinish(d->listen);
        d->listen = NULL;
        return false;
    }
    PQsetNoticeProcessor(d->listen, listen_notice, NULL);
    PGresult *res = PQexec(d->listen, "LISTEN " CHANNEL_DEPLOY "; LISTEN " CHANNEL_UNDEPLOY);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        log_warn("LISTEN failed: %s", db_one_line(why, sizeof(why), PQerrorMessage(d->listen)));
        PQfinish(d->listen);
        d->listen = NULL;
        return false;
    }
    log_info("listening on %s and %s", CHANNEL_DEPLOY, CHANNEL_UNDEPLOY);
    /* Notifications sent while nobody listened are lost: look at the
     * table now, and tidy the deploy directory. */
    d->need_reconcile = true;
    return true;
}

/* Waits for a notification, the poll interval, or a signal; handles
 * undeploy notifications.  Returns after at most the poll interval. */
static void wait_for_work(deployer_t *d)
{
    int timeout_ms = (int)d->config->deploy_poll_seconds * 1000;
    if (!d->listen) {
        struct timespec ts = {1, 0}; /* reconnect soon, not in a spin */
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd pfd = {.fd = PQsocket(d->listen), .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return; /* a signal */
    if (!PQconsumeInput(d->listen)) {
        char why[512];
        log_warn("listen connection lost: %s",
                 db_one_line(why, sizeof(why), PQerrorMessage(d->listen)));
        PQfinish(d->listen);
        d->listen = NULL;
        return;
    }
    PGnotify *note;
    while ((note = PQnotifies(d->listen))) {
        if (strcmp(note->relname, CHANNEL_UNDEPLOY) == 0)
            undeploy(d, note->extra);
        PQfreemem(note);
    }
}

/* SIGHUP, between two tasks: the settings are read again and both
 * connections are made anew (a database that moved, a name that now
 * resolves elsewhere).  Bad settings are refused and the running ones kept. */
static void reload(deployer_t *d, int argc, char **argv)
{
    nn_config_t fresh;
    char errbuf[512];
    if (!config_load(&fresh, argc, argv, NULL, errbuf, sizeof(errbuf))) {
        log_error("reload refused, keeping the running settings: %s", errbuf);
        return;
    }
    if (strcmp(fresh.data_dir, d->config->data_dir) != 0 &&
        !blob_store_init(fresh.data_dir, errbuf, sizeof(errbuf))) {
        log_error("reload refused, keeping the running settings: cannot use the data "
                  "directory: %s", errbuf);
        return;
    }
    db_t *db = db_create(fresh.database_url, deployer_statements,
                         sizeof(deployer_statements) / sizeof(deployer_statements[0]));
    if (!db) {
        log_error("reload refused: out of memory");
        return;
    }
    db_destroy(d->db);
    d->db = db;
    if (d->listen)
        PQfinish(d->listen);
    d->listen = NULL;
    *d->config = fresh;
    log_set_level(fresh.log_level);
    log_info("reloaded (poll every %llds, lease %llds, deploy dir %s)",
             fresh.deploy_poll_seconds, fresh.deploy_lease_seconds, fresh.deploy_dir);
}

int deployer_run(nn_config_t *config, int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term; /* no SA_RESTART: poll returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char errbuf[512];
    if (!blob_store_init(config->data_dir, errbuf, sizeof(errbuf))) {
        log_error("cannot use the data directory: %s", errbuf);
        return 1;
    }
    deployer_t d = {.config = config};
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(d.owner, sizeof(d.owner), "%s:%ld:%lx", host, (long)getpid(),
             (unsigned long)time(NULL));
    d.db = db_create(config->database_url, deployer_statements,
                     sizeof(deployer_statements) / sizeof(deployer_statements[0]));
    if (!d.db) {
        log_error("out of memory");
        return 1;
    }
    log_info("deployer %s started (poll every %llds, lease %llds, deploy dir %s)", d.owner,
             config->deploy_poll_seconds, config->deploy_lease_seconds, config->deploy_dir);
    while (!deployer_stopping) {
        if (deployer_reload) {
            deployer_reload = 0;
            reload(&d, argc, argv);
        }
        listen_connect(&d);
        if (d.need_reconcile)
            reconcile(&d);
        else if (time(NULL) - d.last_sweep >= SWEEP_EVERY_SECONDS) {
            layout_sweep(config->deploy_dir, SWEEP_AGE_SECONDS);
            d.last_sweep = time(NULL);
        }
        /* Drain the queue: every pending task, one at a time. */
        while (!deployer_stopping && !deployer_reload && deploy_one(&d))
            ;
        if (!deployer_stopping && !deployer_reload)
            wait_for_work(&d);
    }
    log_info("deployer stopping");
    if (d.listen)
        PQfinish(d.listen);
    db_destroy(d.db);
    return 0;
}
