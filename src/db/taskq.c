#include "db/taskq.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

void taskq_owner_name(char *buf, size_t size)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, size, "%s:%ld:%lx", host, (long)getpid(), (unsigned long)time(NULL));
}

double taskq_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool taskq_claim(db_t *db, arena_t *arena, const char *kind, const char *owner,
                 long long lease_seconds, bool durable, taskq_claim_t *out, nn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->db = db;
    out->durable = durable;
    out->owner = owner;
    out->lease_seconds = lease_seconds;
    snprintf(out->lease, sizeof(out->lease), "%lld", lease_seconds);
    const char *params[] = {owner, out->lease, kind, durable ? "on" : "off"};
    out->extended_at = taskq_now();
    PGresult *res = db_exec(db, arena, "taskq_claim", 4, params, NULL, err);
    if (!res || PQntuples(res) != 1)
        return false;
    snprintf(out->task_id, sizeof(out->task_id), "%s", db_value(res, 0, 0));
    snprintf(out->attempts, sizeof(out->attempts), "%s", db_value(res, 0, 2));
    out->attempt = db_value_ll(res, 0, 2);
    out->has_network = db_value(res, 0, 1) != NULL;
    out->network_id = out->has_network ? db_value_ll(res, 0, 1) : 0;
    return true;
}

bool taskq_extend(taskq_claim_t *c, arena_t *arena)
{
    double now = taskq_now();
    if (now - c->extended_at < (double)c->lease_seconds / 3.0)
        return true;
    nn_error_t err;
    nn_error_init(&err);
    const char *params[] = {c->task_id, c->owner, c->attempts, c->lease};
    PGresult *res = db_exec(c->db, arena, "taskq_extend", 4, params, NULL, &err);
    if (!res)
        return true;
    if (PQntuples(res) != 1)
        return false;
    c->extended_at = now;
    return true;
}

bool taskq_finish(taskq_claim_t *c, arena_t *arena, const char *status, const char *error,
                  const char *data_json)
{
    nn_error_t err;
    nn_error_init(&err);
    const char *statement = c->json_result ? "taskq_finish_result" : "taskq_finish";
    const char *params[] = {c->task_id, c->owner,    c->attempts,
                            status,     error,       data_json,
                            c->durable ? "on" : "off"};
    PGresult *res = db_exec(c->db, arena, statement, 7, params, NULL, &err);
    if (!res && err.status == 503) {
        /* The write is guarded by this claim, so writing again can never
         * overwrite another worker's result; but look first. */
        nn_error_t again;
        nn_error_init(&again);
        const char *sparams[] = {c->task_id, c->owner, c->attempts};
        PGresult *st = db_exec(c->db, arena, "taskq_state", 3, sparams, NULL, &again);
        if (st && PQntuples(st) == 1 && strcmp(db_value(st, 0, 0), status) == 0) {
            log_info("task %s: %s (recorded before the connection dropped)", c->task_id, status);
            return true;
        }
        if (st && PQntuples(st) == 1 && strcmp(db_value(st, 0, 0), "pending") == 0) {
            log_warn("task %s: connection lost while recording %s: writing it again",
                     c->task_id, status);
            nn_error_init(&err);
            res = db_exec(c->db, arena, statement, 7, params, NULL, &err);
        }
    }
    if (!res) {
        log_error("task %s: could not record %s: %s", c->task_id, status, err.message);
        return false;
    }
    if (PQntuples(res) != 1) {
        log_warn("task %s: claim lost before the result was written; the result is dropped",
                 c->task_id);
        return false;
    }
    log_info("task %s: %s%s%s", c->task_id, status, error ? ": " : "", error ? error : "");
    return true;
}

/* ------------------------------------------------------------ listener */

struct taskq_listener {
    char *conninfo;
    const char *const *channels;
    PGconn *conn;
};

/* The server's notices on the LISTEN connection (its FATAL before it
 * closes the connection, for one) go to the log, not raw to stderr. */
static void listen_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    log_warn("listen connection: %s", db_one_line(line, sizeof(line), message));
}

taskq_listener_t *taskq_listener_create(const char *conninfo, const char *const *channels)
{
    taskq_listener_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->conninfo = strdup(conninfo);
    l->channels = channels;
    if (!l->conninfo) {
        free(l);
        return NULL;
    }
    return l;
}

void taskq_listener_destroy(taskq_listener_t *l)
{
    if (!l)
        return;
    if (l->conn)
        PQfinish(l->conn);
    free(l->conninfo);
    free(l);
}

bool taskq_listener_connect(taskq_listener_t *l)
{
    if (l->conn && PQstatus(l->conn) == CONNECTION_OK)
        return false;
    if (l->conn)
        PQfinish(l->conn);
    l->conn = db_open(l->conninfo, NULL);
    char why[512];
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
        log_warn("listen connection failed: %s",
                 l->conn ? db_one_line(why, sizeof(why), PQerrorMessage(l->conn)) : "out of memory");
        if (l->conn)
            PQfinish(l->conn);
        l->conn = NULL;
        return false;
    }
    PQsetNoticeProcessor(l->conn, listen_notice, NULL);
    char sql[512] = "";
    char names[256] = "";
    for (size_t i = 0; l->channels[i]; i++) {
        size_t used = strlen(sql), nused = strlen(names);
        snprintf(sql + used, sizeof(sql) - used, "%sLISTEN %s", i ? "; " : "", l->channels[i]);
        snprintf(names + nused, sizeof(names) - nused, "%s%s", i ? " and " : "", l->channels[i]);
    }
    PGresult *res = PQexec(l->conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        log_warn("LISTEN failed: %s", db_one_line(why, sizeof(why), PQerrorMessage(l->conn)));
        PQfinish(l->conn);
        l->conn = NULL;
        return false;
    }
    log_info("listening on %s", names);
    return true;
}

void taskq_listener_wait(taskq_listener_t *l, int timeout_ms, taskq_notify_fn fn, void *ctx)
{
    if (!l->conn) {
        struct timespec ts = {1, 0}; /* reconnect soon, not in a spin */
        nanosleep(&ts, NULL);
        return;
    }
    /* Notifications that arrived with an earlier result are already
     * queued: hand them over without waiting. */
    PGnotify *note = PQnotifies(l->conn);
    if (!note) {
        struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN};
        int n = poll(&pfd, 1, timeout_ms);
        if (n < 0)
            return; /* a signal */
        if (!PQconsumeInput(l->conn)) {
            char why[512];
            log_warn("listen connection lost: %s",
                     db_one_line(why, sizeof(why), PQerrorMessage(l->conn)));
            PQfinish(l->conn);
            l->conn = NULL;
            return;
        }
        note = PQnotifies(l->conn);
    }
    while (note) {
        if (fn)
            fn(ctx, note->relname, note->extra);
        PQfreemem(note);
        note = PQnotifies(l->conn);
    }
}
