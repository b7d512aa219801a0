/* admin.h - the context of one nnreg-admin command and the helpers every
 * command uses: the error message, SQL with parameters, JSON lines.
 *
 * A command runs with an admin_t that main filled: the settings, the
 * PostgreSQL connection (NULL for commands that need none) and the arena
 * that owns everything the command allocates, PGresults and yajl handles
 * included (registered as cleanups).  A command that loops over many pages
 * passes a page arena of its own to admin_query_on() and destroys it per
 * page, so that memory stays bounded.
 *
 * Errors: a failing helper sets adm->err (one line, lowercase, naming the
 * fix) through admin_fail() and returns false/NULL; the latest message
 * wins, so a caller that knows better may replace it.  main prints it as
 * "nnreg-admin: <message>" on stderr and exits 1.
 *
 * Output for scripts: one JSON object per line on stdout, made with yajl's
 * generator (admin_gen_new, admin_gen_* for members, admin_emit). */
#ifndef NNREG_ADMIN_ADMIN_H
#define NNREG_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <yajl/yajl_gen.h>

#include "util/arena.h"
#include "util/config.h"

#define ADMIN_PROGRAM "nnreg-admin"

/* SQLSTATEs given a message of their own. */
#define ADMIN_SQLSTATE_UNIQUE_VIOLATION "23505"
#define ADMIN_SQLSTATE_FOREIGN_KEY_VIOLATION "23503"
#define ADMIN_SQLSTATE_CHECK_VIOLATION "23514"
#define ADMIN_SQLSTATE_UNDEFINED_TABLE "42P01"
#define ADMIN_SQLSTATE_UNDEFINED_FUNCTION "42883"

typedef struct admin {
    nn_config_t cfg;
    PGconn *conn;
    arena_t *arena;
    char err[1024];
} admin_t;

/* Sets the message printed on failure.  Always returns false. */
bool admin_fail(admin_t *adm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The arguments of a command whose only option is flag: *set tells
 * whether it was given; anything else is an error naming the option. */
bool admin_parse_flag(admin_t *adm, char **args, int nargs, const char *flag, bool *set)
    __attribute__((warn_unused_result));

/* Connects to cfg.database_url (UTF-8 client encoding).  false with the
 * error set; adm->conn may then be non-NULL and is finished by main. */
bool admin_connect(admin_t *adm) __attribute__((warn_unused_result));

/* Runs sql with text parameters (NULL for SQL NULL); what names the action
 * in the error message ("revoking the key").  Returns a result of status
 * expect owned by arena (valid until arena_destroy); otherwise NULL with the
 * error set and, when the server reported one, its SQLSTATE in *sqlstate
 * (if not NULL; "" otherwise; points into the arena-owned result). */
PGresult *admin_query_on(admin_t *adm, arena_t *arena, const char *what, const char *sql,
                         int nparams, const char *const *values, ExecStatusType expect,
                         const char **sqlstate) __attribute__((warn_unused_result));

/* admin_query_on() with the command's arena. */
PGresult *admin_query(admin_t *adm, const char *what, const char *sql, int nparams,
                      const char *const *values, ExecStatusType expect, const char **sqlstate)
    __attribute__((warn_unused_result));

/* A statement without result rows: "BEGIN", "COMMIT", "ROLLBACK". */
bool admin_exec(admin_t *adm, const char *sql) __attribute__((warn_unused_result));

/* Rolls back the open transaction, if any, keeping the error message
 * already set (for failure paths). */
void admin_rollback_quietly(admin_t *adm);

/* Whether s is a non-empty string of ASCII digits. */
bool admin_all_digits(const char *s);

/* Whether s names a positive bigint that fits in 18 digits (an id); the
 * caller passes s to SQL as $n::bigint. */
bool admin_is_id(const char *s);

/* A yajl generator owned by the command's arena, validating UTF-8 (values
 * come from the database and the command line). */
yajl_gen admin_gen_new(admin_t *adm) __attribute__((warn_unused_result));

/* Members of the open map: "key": value.  Return false when yajl refuses. */
bool admin_gen_key(yajl_gen gen, const char *key);
bool admin_gen_str(yajl_gen gen, const char *key, const char *value);  /* NULL: null */
bool admin_gen_num(yajl_gen gen, const char *key, const char *number); /* number as text */
bool admin_gen_int(yajl_gen gen, const char *key, long long value);
bool admin_gen_bool(yajl_gen gen, const char *key, bool value);

/* Writes the generated value as one line on stdout and resets the
 * generator for the next one.  generated is the conjunction of the
 * admin_gen_* results: false turns into the error message. */
bool admin_emit(admin_t *adm, yajl_gen gen, bool generated) __attribute__((warn_unused_result));

#endif
