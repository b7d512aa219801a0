/* db.h - a worker's one PostgreSQL connection.
 *
 * Process lifetime: created once per worker with the table of prepared
 * statements the worker uses; connects lazily and reconnects when the
 * connection drops (every statement is prepared again on a new connection).
 * While the database cannot be reached, calls fail with 503
 * "database_unavailable" and a Retry-After of a few seconds.
 *
 * Results are registered on the request arena (PQclear runs when the arena
 * is destroyed): callers never clear results themselves.
 */
#ifndef NNREG_DB_DB_H
#define NNREG_DB_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "util/arena.h"
#include "util/error.h"

/* Whether db_exec may send a statement again when the connection dropped
 * while it ran.  The server may have run it (a write may have committed
 * and only the answer was lost), so only statements that a second run
 * cannot change more are retried: reads, and writes guarded so that they
 * match nothing once done.  Any other write is reported as lost (503) and
 * the caller decides. */
#define DB_RETRY_SAFE true
#define DB_RUN_ONCE false

/* How long an Idempotency-Key's answer is kept (API.md), as SQL: creates
 * read and replace records younger than this, `nnreg-admin prune` deletes
 * older ones. */
#define DB_IDEMPOTENCY_WINDOW "interval '24 hours'"

typedef struct db_statement {
    const char *name; /* prepared statement name */
    const char *sql;  /* with $1..$n parameters, all sent as text */
    int nparams;
    bool retry_safe; /* DB_RETRY_SAFE or DB_RUN_ONCE */
} db_statement_t;

typedef struct db db_t;

/* Opens a PostgreSQL connection (blocking).  conninfo is a libpq
 * connection string or URI; empty leaves everything to libpq's PG*
 * variables.  Every setting the string does not give takes nnreg's
 * default, chosen so that no process waits for ever on a database host
 * that went silent (a cut link, a host that died without closing its
 * sockets):
 *   connect_timeout=5        a connection attempt gives up after 5 s
 *                            (PGCONNECT_TIMEOUT, when set, is used instead)
 *   keepalives=1, keepalives_idle=10, keepalives_interval=5,
 *   keepalives_count=3       an idle connection to a dead peer is noticed
 *                            within about 25 s (the LISTEN connection)
 *   tcp_user_timeout=10000   a statement sent on a dead link fails after
 *                            10 s without an acknowledgement, instead of
 *                            the kernel's retransmissions (~15 min)
 * application_name, when not NULL, is the fallback_application_name.
 * NULL only when out of memory; otherwise the caller checks PQstatus and
 * owns the connection (PQfinish). */
PGconn *db_open(const char *conninfo, const char *application_name);

/* statements (static storage) are prepared on every new connection. */
db_t *db_create(const char *conninfo, const db_statement_t *statements, size_t nstatements);
void db_destroy(db_t *db);

/* Connects if needed (or after a drop).  503 when the database is away. */
bool db_ready(db_t *db, nn_error_t *err) __attribute__((warn_unused_result));

/* Executes a prepared statement by name.  Returns a PGresult with status
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK, owned by the arena; NULL on error
 * with err filled: 503 when the connection is lost (a connection that died
 * while idle is replaced before the statement is sent; one lost while the
 * statement ran is retried once on a fresh connection only for a
 * DB_RETRY_SAFE statement outside a transaction), 409
 * "conflict" for unique violations when sqlstate_out is NULL, 500
 * otherwise.  When sqlstate_out is not NULL and the server reported an
 * error, *sqlstate_out receives its SQLSTATE (arena copy) and err is left
 * untouched for errors other than connection loss. */
PGresult *db_exec(db_t *db, arena_t *arena, const char *statement, int nparams,
                  const char *const *values, const char **sqlstate_out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* BEGIN / COMMIT / ROLLBACK.  db_rollback never fails visibly (it is the
 * cleanup path) and is a no-op outside a transaction. */
bool db_begin(db_t *db, nn_error_t *err) __attribute__((warn_unused_result));
bool db_commit(db_t *db, nn_error_t *err) __attribute__((warn_unused_result));
void db_rollback(db_t *db);
bool db_in_transaction(const db_t *db);

/* libpq's messages span lines ("...\n\tIs the server running...?\n"):
 * copies msg (NULL reads as "") into buf with every run of whitespace made
 * one space and both ends trimmed, so that a log line or an error stays one
 * line.  Truncates to size - 1 bytes; returns buf. */
const char *db_one_line(char *buf, size_t size, const char *msg);

/* A PostgreSQL array literal ('{"a","b",NULL}') of n text items, for a
 * parameter cast to text[] (or bytea[], jsonb[]...): each item quoted and
 * escaped, NULL items as SQL NULL.  In arena; NULL when it is out of memory. */
const char *db_text_array(arena_t *arena, const char *const *items, size_t n);

/* Helpers on results: the value of row/col as a string (NULL for SQL NULL). */
const char *db_value(const PGresult *res, int row, int col);
long long db_value_ll(const PGresult *res, int row, int col);

#endif
