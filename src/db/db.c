#include "db/db.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

/* Seconds a client is told to wait before retrying while the database is
 * away: long enough to ride out a restart, short enough for pollers. */
#define DB_RETRY_AFTER 2

struct db {
    char *conninfo;
    const db_statement_t *statements;
    size_t nstatements;
    PGconn *conn;
    bool in_transaction;
};

db_t *db_create(const char *conninfo, const db_statement_t *statements, size_t nstatements)
{
    db_t *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->conninfo = strdup(conninfo);
    if (!db->conninfo) {
        free(db);
        return NULL;
    }
    db->statements = statements;
    db->nstatements = nstatements;
    return db;
}

void db_destroy(db_t *db)
{
    if (!db)
        return;
    if (db->conn)
        PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

static bool db_unavailable(nn_error_t *err, const char *why)
{
    err->retry_after = DB_RETRY_AFTER;
    return nn_error_set(err, 503, "database_unavailable",
                        "the database is unavailable (%s); retry in a few seconds", why);
}

static void db_drop(db_t *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    db->in_transaction = false;
}

static void db_notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The defaults of db_open (see db.h for why each).  They come first in the
 * keyword list: libpq applies the expanded connection string, given as
 * dbname, after them, so whatever the operator wrote wins. */
static const char *const db_default_keys[] = {
    "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout",
};
static const char *const db_default_values[] = {"5", "1", "10", "5", "3", "10000"};
#define DB_NDEFAULTS (sizeof(db_default_keys) / sizeof(db_default_keys[0]))

PGconn *db_open(const char *conninfo, const char *application_name)
{
    const char *keys[DB_NDEFAULTS + 3];
    const char *values[DB_NDEFAULTS + 3];
    size_t n = 0;
    for (size_t i = 0; i < DB_NDEFAULTS; i++) {
        /* A keyword beats the environment in libpq: PGCONNECT_TIMEOUT (the
         * only one of these with a variable) must still be honoured. */
        if (strcmp(db_default_keys[i], "connect_timeout") == 0 && getenv("PGCONNECT_TIMEOUT"))
            continue;
        keys[n] = db_default_keys[i];
        values[n++] = db_default_values[i];
    }
    if (application_name) {
        keys[n] = "fallback_application_name";
        values[n++] = application_name;
    }
    keys[n] = "dbname";
    values[n++] = conninfo ? conninfo : "";
    keys[n] = NULL;
    values[n] = NULL;
    return PQconnectdbParams(keys, values, 1);
}

static bool db_connect(db_t *db, nn_error_t *err)
{
    db_drop(db);
    PGconn *conn = db_open(db->conninfo, NULL);
    if (!conn)
        return db_unavailable(err, "out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(conn));
        why[strcspn(why, "\n")] = '\0';
        log_warn("database connection failed: %s", why);
        PQfinish(conn);
        return db_unavailable(err, "cannot connect");
    }
    PQsetNoticeProcessor(conn, db_notice_ignore, NULL);
    for (size_t i = 0; i < db->nstatements; i++) {
        const db_statement_t *s = &db->statements[i];
        PGresult *res = PQprepare(conn, s->name, s->sql, s->nparams, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            /* A statement that does not prepare is a bug or a schema that
             * was not migrated: say which, loudly. */
            log_error("preparing statement %s failed: %s", s->name, PQerrorMessage(conn));
            PQclear(res);
            bool lost = PQstatus(conn) != CONNECTION_OK;
            PQfinish(conn);
            if (lost)
                return db_unavailable(err, "connection lost");
            err->retry_after = DB_RETRY_AFTER;
            return nn_error_set(err, 503, "database_not_ready",
                                "the database schema is not ready (run nnreg-admin migrate); "
                                "retry later");
        }
        PQclear(res);
    }
    db->conn = conn;
    log_info("connected to the database");
    return true;
}

/* Whether an idle connection is still alive.  A backend that was
 * terminated, or a server that shut down, sends its last words and closes
 * while we are idle; reading what is pending (without waiting: libpq's
 * socket is non-blocking) and parsing it turns such a connection bad here,
 * before a statement is sent that could not be retried.  A connection
 * that dies while a statement runs is still caught by db_exec. */
static bool db_idle_alive(db_t *db)
{
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    if (db->in_transaction)
        return true;
    /* Twice: the first read may stop after the message, before the end of
     * the stream. */
    for (int i = 0; i < 2; i++) {
        if (!PQconsumeInput(db->conn))
            return false;
        (void)PQisBusy(db->conn); /* parses what arrived (a FATAL becomes a notice) */
    }
    return PQstatus(db->conn) == CONNECTION_OK;
}

bool db_ready(db_t *db, nn_error_t *err)
{
    if (db_idle_alive(db))
        return true;
    if (db->conn)
        log_warn("database connection found closed while idle: reconnecting");
    return db_connect(db, err);
}

static const db_statement_t *db_find(const db_t *db, const char *name)
{
    for (size_t i = 0; i < db->nstatements; i++)
        if (strcmp(db->statements[i].name, name) == 0)
            return &db->statements[i];
    return NULL;
}

static void db_result_free(void *res)
{
    PQclear(res);
}

static PGresult *db_keep(arena_t *arena, PGresult *res, nn_error_t *err)
{
    if (!arena_cleanup_add(arena, db_result_free, res)) {
        PQclear(res);
        nn_error_oom(err);
        return NULL;
    }
    return res;
}

PGresult *db_exec(db_t *db, arena_t *arena, const char *statement, int nparams,
                  const char *const *values, const char **sqlstate_out, nn_error_t *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!db_ready(db, err))
            return NULL;
        PGresult *res = PQexecPrepared(db->conn, statement, nparams, values, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return db_keep(arena, res, err);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            /* Lost the server while the statement ran.  Inside a
             * transaction, the transaction is gone: the request fails.
             * Outside one, the server may have run the statement and only
             * the answer was lost: only a statement that a second run
             * cannot change more is sent again. */
            PQclear(res);
            bool was_in_tx = db->in_transaction;
            db_drop(db);
            const db_statement_t *s = db_find(db, statement);
            bool retry = !was_in_tx && s && s->retry_safe && attempt == 0;
            log_warn("database connection lost during %s%s", statement,
                     retry ? ": retrying on a new connection" : "");
            if (was_in_tx)
                return db_unavailable(err, "connection lost"), NULL;
            if (!retry) {
                err->retry_after = DB_RETRY_AFTER;
                nn_error_set(err, 503, "database_unavailable",
                             "the database connection was lost while the change was being "
                             "made, so it may or may not have been applied; check (GET) "
                             "before retrying");
                return NULL;
            }
            continue;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (sqlstate_out && state) {
            *sqlstate_out = arena_strdup(arena, state);
            log_debug("statement %s: %s", statement, PQresultErrorMessage(res));
            PQclear(res);
            if (!*sqlstate_out)
                nn_error_oom(err);
            return NULL;
        }
        if (state && strcmp(state, "23505") == 0) {
            PQclear(res);
            nn_error_set(err, 409, "conflict", "the change conflicts with existing data");
            return NULL;
        }
        if (state && (strcmp(state, "57P01") == 0 || strcmp(state, "57P03") == 0 ||
                      strncmp(state, "08", 2) == 0)) {
            PQclear(res);
            db_drop(db);
            return db_unavailable(err, "server shutting down"), NULL;
        }
        log_error("statement %s failed: %s", statement,
                  res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        PQclear(res);
        nn_error_internal(err, "a database statement failed");
        return NULL;
    }
    db_unavailable(err, "connection lost");
    return NULL;
}

static bool db_simple(db_t *db, const char *sql, nn_error_t *err)
{
    if (!db_ready(db, err))
        return false;
    PGresult *res = PQexec(db->conn, sql);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        bool lost = PQstatus(db->conn) != CONNECTION_OK;
        log_error("%s failed: %s", sql, PQerrorMessage(db->conn));
        PQclear(res);
        if (lost) {
            db_drop(db);
            return db_unavailable(err, "connection lost");
        }
        return nn_error_internal(err, "a database transaction failed");
    }
    PQclear(res);
    return true;
}

bool db_begin(db_t *db, nn_error_t *err)
{
    /* BEGIN changes nothing: when the connection turns out dead, it is
     * sent once more on a new one. */
    if (!db_simple(db, "BEGIN", err)) {
        if (db->conn || err->status != 503)
            return false;
        nn_error_init(err);
        if (!db_simple(db, "BEGIN", err))
            return false;
    }
    db->in_transaction = true;
    return true;
}

bool db_commit(db_t *db, nn_error_t *err)
{
    bool ok = db_simple(db, "COMMIT", err);
    db->in_transaction = false;
    return ok;
}

void db_rollback(db_t *db)
{
    if (!db->in_transaction || !db->conn)
        return;
    PGresult *res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);
    db->in_transaction = false;
}

bool db_in_transaction(const db_t *db)
{
    return db->in_transaction;
}

const char *db_value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

long long db_value_ll(const PGresult *res, int row, int col)
{
    const char *v = db_value(res, row, col);
    return v ? strtoll(v, NULL, 10) : 0;
}

const char *db_one_line(char *buf, size_t size, const char *msg)
{
    size_t n = 0;
    bool space = false;
    if (size == 0)
        return buf;
    for (const char *p = msg ? msg : ""; *p && n + 1 < size; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space) {
            if (n + 2 >= size)
                break;
            buf[n++] = ' ';
        }
        space = false;
        buf[n++] = *p;
    }
    buf[n] = '\0';
    return buf;
}

const char *db_text_array(arena_t *arena, const char *const *items, size_t n)
{
    nn_buf_t b;
    buf_init(&b, arena);
    buf_append_char(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append_char(&b, ',');
        if (!items[i]) {
            buf_append_str(&b, "NULL");
            continue;
        }
        buf_append_char(&b, '"');
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append_char(&b, '\\');
            buf_append_char(&b, *p);
        }
        buf_append_char(&b, '"');
    }
    buf_append_char(&b, '}');
    return buf_cstr(&b);
}
