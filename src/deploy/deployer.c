#include "deploy/deployer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/taskq.h"
#include "deploy/check.h"
#include "deploy/layout.h"
#include "json/jv.h"
#include "store/blob.h"
#include "util/buf.h"
#include "util/log.h"

#define CHANNEL_DEPLOY "nnreg_deploy"
#define CHANNEL_UNDEPLOY "nnreg_undeploy"
static const char *const deployer_channels[] = {CHANNEL_DEPLOY, CHANNEL_UNDEPLOY, NULL};

/* What an interrupted install left in the deploy directory is removed once
 * this old (an install at work on another host is younger), after every
 * (re)connect and then this often. */
#define SWEEP_AGE_SECONDS 3600
#define SWEEP_EVERY_SECONDS 3600

/* The statements of the work connection: the shared claim / lease /
 * finish (db/taskq.h), and what a deployment reads. */
static const db_statement_t deployer_statements[] = {
    TASKQ_STATEMENTS,
    {"network", "SELECT preprocessing::text, postprocessings::text FROM networks WHERE id = $1", 1,
     DB_RETRY_SAFE},
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
    taskq_listener_t *listen;
    char owner[160];
    bool need_reconcile;
    time_t last_sweep;
} deployer_t;

typedef struct claim {
    deployer_t *d;
    arena_t *arena;
    taskq_claim_t q;
    const char *task_id; /* q.task_id */
} claim_t;

/* Called between checks so that a long deployment keeps its lease. */
static bool extend_lease(void *ctx)
{
    claim_t *c = ctx;
    return taskq_extend(&c->q, c->arena);
}

static void finish(claim_t *c, const char *status, const char *error, const jv_t *report)
{
    char *data = report ? jv_serialize(c->arena, report, NULL) : NULL;
    (void)taskq_finish(&c->q, c->arena, status, error, data);
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
    nn_error_t err;
    nn_error_init(&err);
    if (!taskq_claim(d->db, arena, "deploy", d->owner, d->config->deploy_lease_seconds, true,
                     &c.q, &err)) {
        if (nn_error_is_set(&err))
            log_warn("claim failed: %s", err.message);
        arena_destroy(arena);
        return false;
    }
    c.task_id = c.q.task_id;
    char network_buf[24];
    snprintf(network_buf, sizeof(network_buf), "%lld", c.q.network_id);
    const char *network = c.q.has_network ? network_buf : NULL;
    long long attempts = c.q.attempt;
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

static void on_notify(void *ctx, const char *channel, const char *payload)
{
    if (strcmp(channel, CHANNEL_UNDEPLOY) == 0)
        undeploy(ctx, payload);
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
    taskq_listener_t *listen = taskq_listener_create(fresh.database_url, deployer_channels);
    if (!listen) {
        db_destroy(db);
        log_error("reload refused: out of memory");
        return;
    }
    db_destroy(d->db);
    d->db = db;
    taskq_listener_destroy(d->listen);
    d->listen = listen;
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
    taskq_owner_name(d.owner, sizeof(d.owner));
    d.listen = taskq_listener_create(config->database_url, deployer_channels);
    d.db = db_create(config->database_url, deployer_statements,
                     sizeof(deployer_statements) / sizeof(deployer_statements[0]));
    if (!d.db || !d.listen) {
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
        /* Notifications sent while nobody listened are lost: look at
         * the table again after every new connection, and tidy the
         * deploy directory. */
        if (taskq_listener_connect(d.listen))
            d.need_reconcile = true;
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
            taskq_listener_wait(d.listen, (int)config->deploy_poll_seconds * 1000, on_notify, &d);
    }
    log_info("deployer stopping");
    taskq_listener_destroy(d.listen);
    db_destroy(d.db);
    return 0;
}
