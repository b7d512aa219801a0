/* admin.c - context, SQL and JSON helpers of nnreg-admin (see admin.h). */
#include "admin/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"

bool admin_fail(admin_t *adm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(adm->err, sizeof(adm->err), fmt, ap);
    va_end(ap);
    return false;
}

bool admin_parse_flag(admin_t *adm, char **args, int nargs, const char *flag, bool *set)
{
    *set = false;
    for (int i = 0; i < nargs; i++) {
        if (strcmp(args[i], flag) != 0)
            return admin_fail(adm, "unexpected argument \"%s\"; the only option is %s", args[i],
                              flag);
        *set = true;
    }
    return true;
}

bool admin_connect(admin_t *adm)
{
    /* The setting is expanded as a full connection string (or URI) when it
     * is one; an empty one leaves everything to libpq's PG* variables.
     * Output is JSON, hence UTF-8 whatever the server's encoding. */
    const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *const values[] = {adm->cfg.database_url, ADMIN_PROGRAM, "UTF8", NULL};
    adm->conn = PQconnectdbParams(keys, values, 1);
    if (!adm->conn)
        return admin_fail(adm, "out of memory while connecting to PostgreSQL");
    if (PQstatus(adm->conn) != CONNECTION_OK) {
        char msg[512];
        db_one_line(msg, sizeof(msg), PQerrorMessage(adm->conn));
        return admin_fail(adm,
                          "cannot connect to PostgreSQL: %s; set NNREG_DATABASE_URL (or "
                          "--database-url) to the libpq connection string of the nnreg database",
                          msg);
    }
    return true;
}

static void clear_result(void *res)
{
    PQclear(res);
}

PGresult *admin_query_on(admin_t *adm, arena_t *arena, const char *what, const char *sql,
                         int nparams, const char *const *values, ExecStatusType expect,
                         const char **sqlstate)
{
    if (sqlstate)
        *sqlstate = "";
    PGresult *res = PQexecParams(adm->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    if (res && !arena_cleanup_add(arena, clear_result, res)) {
        PQclear(res);
        admin_fail(adm, "out of memory");
        return NULL;
    }
    if (res && PQresultStatus(res) == expect)
        return res;

    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[768];
    db_one_line(msg, sizeof(msg), primary ? primary : PQerrorMessage(adm->conn));
    if (!msg[0])
        snprintf(msg, sizeof(msg), "unexpected result %s",
                 res ? PQresStatus(PQresultStatus(res)) : "(none)");
    /* A database that was never migrated is the usual cause of these. */
    bool unmigrated = state && (strcmp(state, ADMIN_SQLSTATE_UNDEFINED_TABLE) == 0 ||
                                strcmp(state, ADMIN_SQLSTATE_UNDEFINED_FUNCTION) == 0);
    char detail_line[256] = "";
    if (detail)
        db_one_line(detail_line, sizeof(detail_line), detail);
    admin_fail(adm, "%s failed: %s%s%s%s%s", what, msg, detail_line[0] ? " (" : "", detail_line,
               detail_line[0] ? ")" : "",
               unmigrated ? "; is the database migrated? run `" ADMIN_PROGRAM " migrate` first"
                          : "");
    if (sqlstate && state)
        *sqlstate = state;
    return NULL;
}

PGresult *admin_query(admin_t *adm, const char *what, const char *sql, int nparams,
                      const char *const *values, ExecStatusType expect, const char **sqlstate)
{
    return admin_query_on(adm, adm->arena, what, sql, nparams, values, expect, sqlstate);
}

bool admin_exec(admin_t *adm, const char *sql)
{
    return admin_query(adm, sql, sql, 0, NULL, PGRES_COMMAND_OK, NULL) != NULL;
}

void admin_rollback_quietly(admin_t *adm)
{
    if (adm->conn && PQtransactionStatus(adm->conn) != PQTRANS_IDLE)
        PQclear(PQexec(adm->conn, "ROLLBACK"));
}

bool admin_all_digits(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

bool admin_is_id(const char *s)
{
    /* 18 digits always fit a bigint. */
    return admin_all_digits(s) && strlen(s) <= 18 && strspn(s, "0") < strlen(s);
}

/* ---- JSON output ----------------------------------------------------------- */

static void free_gen(void *gen)
{
    yajl_gen_free(gen);
}

yajl_gen admin_gen_new(admin_t *adm)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    if (!gen) {
        admin_fail(adm, "out of memory");
        return NULL;
    }
    if (!arena_cleanup_add(adm->arena, free_gen, gen)) {
        yajl_gen_free(gen);
        admin_fail(adm, "out of memory");
        return NULL;
    }
    /* Strings come from the database and the command line: refuse to
     * print invalid UTF-8 rather than emit invalid JSON. */
    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);
    return gen;
}

bool admin_gen_key(yajl_gen gen, const char *key)
{
    return yajl_gen_string(gen, (const unsigned char *)key, strlen(key)) == yajl_gen_status_ok;
}

bool admin_gen_str(yajl_gen gen, const char *key, const char *value)
{
    if (!admin_gen_key(gen, key))
        return false;
    if (!value)
        return yajl_gen_null(gen) == yajl_gen_status_ok;
    return yajl_gen_string(gen, (const unsigned char *)value, strlen(value)) == yajl_gen_status_ok;
}

bool admin_gen_num(yajl_gen gen, const char *key, const char *number)
{
    return admin_gen_key(gen, key) &&
           yajl_gen_number(gen, number, strlen(number)) == yajl_gen_status_ok;
}

bool admin_gen_int(yajl_gen gen, const char *key, long long value)
{
    return admin_gen_key(gen, key) && yajl_gen_integer(gen, value) == yajl_gen_status_ok;
}

bool admin_gen_bool(yajl_gen gen, const char *key, bool value)
{
    return admin_gen_key(gen, key) && yajl_gen_bool(gen, value) == yajl_gen_status_ok;
}

bool admin_emit(admin_t *adm, yajl_gen gen, bool generated)
{
    const unsigned char *json;
    size_t len;
    if (!generated || yajl_gen_get_buf(gen, &json, &len) != yajl_gen_status_ok)
        return admin_fail(adm, "cannot generate the JSON output (a value is not valid UTF-8?)");
    if (fwrite(json, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) != 0)
        return admin_fail(adm, "cannot write to standard output: %s", strerror(errno));
    yajl_gen_clear(gen);
    yajl_gen_reset(gen, NULL);
    return true;
}
