/* nnreg-admin: migrations, organizations and API keys.
 *
 * `nnreg-admin [--setting=value ...] COMMAND [ARGS]`.  Commands come from a
 * static table (name, arguments, help, handler), as in PgBouncer's admin.c;
 * main only parses the settings, finds the command, checks its argument
 * count and connects when the command needs the database.  Everything a
 * command allocates, and every PGresult and yajl handle, lives on one arena.
 *
 * Output for scripts goes to stdout as JSON, one object per line (made with
 * yajl's generator); errors are one line "nnreg-admin: ..." on stderr.
 * Exit status: 0 done, 1 failed, 2 usage error. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <yajl/yajl_gen.h>

#include "db/migrate.h"
#include "util/apikey.h"
#include "util/arena.h"
#include "util/config.h"
#include "util/log.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROGRAM "nnreg-admin"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* SQLSTATEs given a message of their own. */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_CHECK_VIOLATION "23514"
#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_UNDEFINED_FUNCTION "42883"

/* The context of one command: process settings, the connection, the arena
 * of everything else, and the error message printed when it fails. */
typedef struct admin {
    nn_config_t cfg;
    PGconn *conn;
    arena_t *arena;
    char err[1024];
} admin_t;

typedef bool (*command_fn)(admin_t *adm, char **args, int nargs);

typedef struct command {
    const char *name; /* one or two words: "migrate", "key create" */
    const char *args; /* the arguments as shown in the usage */
    int min_args, max_args;
    bool needs_db;
    command_fn fn;
    const char *help;
} command_t;

static bool cmd_migrate(admin_t *adm, char **args, int nargs);
static bool cmd_org_create(admin_t *adm, char **args, int nargs);
static bool cmd_org_list(admin_t *adm, char **args, int nargs);
static bool cmd_key_create(admin_t *adm, char **args, int nargs);
static bool cmd_key_revoke(admin_t *adm, char **args, int nargs);
static bool cmd_key_list(admin_t *adm, char **args, int nargs);
static bool cmd_version(admin_t *adm, char **args, int nargs);
static bool cmd_help(admin_t *adm, char **args, int nargs);

static const command_t commands[] = {
    {"migrate", "", 0, 0, true, cmd_migrate,
     "apply the pending migrations of --sql-dir in order, each in one transaction"},
    {"org create", "NAME", 1, 1, true, cmd_org_create,
     "create an organization; prints {\"id\", \"name\"}"},
    {"org list", "", 0, 0, true, cmd_org_list, "list organizations, one JSON object per line"},
    {"key create", "ORG", 1, 1, true, cmd_key_create,
     "create an API key for ORG (name or id); prints it once, stores only its hash"},
    {"key revoke", "APP_ID", 1, 1, true, cmd_key_revoke,
     "revoke the API key of APP_ID, from the next request on"},
    {"key list", "[ORG]", 0, 1, true, cmd_key_list,
     "list the API keys (of ORG): app ids and dates, never keys"},
    {"version", "", 0, 0, false, cmd_version, "print the version"},
    {"help", "", 0, 0, false, cmd_help, "print this help"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static bool fail(admin_t *adm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the message printed on failure (the latest wins, so a caller that
 * knows better can replace the generic database message).  Returns false. */
static bool fail(admin_t *adm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(adm->err, sizeof(adm->err), fmt, ap);
    va_end(ap);
    return false;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: " PROGRAM " [--setting=value ...] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char synopsis[64];
        snprintf(synopsis, sizeof(synopsis), "%s%s%s", commands[i].name,
                 commands[i].args[0] ? " " : "", commands[i].args);
        fprintf(out, "  %-18s %s\n", synopsis, commands[i].help);
    }
    fprintf(out, "\nsettings (a flag before the command, or its environment variable):\n");
    config_usage(out);
    fprintf(out, "\nexit status: 0 done, 1 failed (the reason on stderr), 2 usage error\n");
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* libpq messages span lines; the error is printed as one. */
static void one_line(const char *msg, char *out, size_t outlen)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = msg; *p && n + 1 < outlen; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < outlen)
            out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
}

static bool admin_connect(admin_t *adm)
{
    /* The setting is expanded as a full connection string (or URI) when it
     * is one; an empty one leaves everything to libpq's PG* variables.
     * Output is JSON, hence UTF-8 whatever the server's encoding. */
    const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
    const char *const values[] = {adm->cfg.database_url, PROGRAM, "UTF8", NULL};
    adm->conn = PQconnectdbParams(keys, values, 1);
    if (!adm->conn)
        return fail(adm, "out of memory while connecting to PostgreSQL");
    if (PQstatus(adm->conn) != CONNECTION_OK) {
        char msg[512];
        one_line(PQerrorMessage(adm->conn), msg, sizeof(msg));
        return fail(adm,
                    "cannot connect to PostgreSQL: %s; set NNREG_DATABASE_URL (or --database-url) "
                    "to the libpq connection string of the nnreg database",
                    msg);
    }
    return true;
}

static void clear_result(void *res)
{
    PQclear(res);
}

/* Runs sql with text parameters (NULL for SQL NULL).  Returns a result with
 * status expect, owned by the arena; otherwise NULL with the error set and,
 * when the server reported one, its SQLSTATE in *sqlstate (if not NULL) so
 * that the caller may replace the message with a more precise one. */
static PGresult *query(admin_t *adm, const char *what, const char *sql, int nparams,
                       const char *const *values, ExecStatusType expect, const char **sqlstate)
{
    if (sqlstate)
        *sqlstate = "";
    PGresult *res = PQexecParams(adm->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    if (res && !arena_cleanup_add(adm->arena, clear_result, res)) {
        PQclear(res);
        fail(adm, "out of memory");
        return NULL;
    }
    if (res && PQresultStatus(res) == expect)
        return res;

    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[768];
    one_line(primary ? primary : PQerrorMessage(adm->conn), msg, sizeof(msg));
    if (!msg[0])
        snprintf(msg, sizeof(msg), "unexpected result %s",
                 res ? PQresStatus(PQresultStatus(res)) : "(none)");
    /* A database that was never migrated is the usual cause of these. */
    bool unmigrated = state && (strcmp(state, SQLSTATE_UNDEFINED_TABLE) == 0 ||
                                strcmp(state, SQLSTATE_UNDEFINED_FUNCTION) == 0);
    char detail_line[256] = "";
    if (detail)
        one_line(detail, detail_line, sizeof(detail_line));
    fail(adm, "%s failed: %s%s%s%s%s", what, msg, detail_line[0] ? " (" : "", detail_line,
         detail_line[0] ? ")" : "",
         unmigrated ? "; is the database migrated? run `" PROGRAM " migrate` first" : "");
    if (sqlstate && state)
        *sqlstate = state;
    return NULL;
}

/* A short command on its own, for BEGIN/COMMIT/ROLLBACK. */
static bool exec_simple(admin_t *adm, const char *sql)
{
    return query(adm, sql, sql, 0, NULL, PGRES_COMMAND_OK, NULL) != NULL;
}

static bool all_digits(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

/* Finds the organization ORG names: a number is its id, anything else its
 * name (names are never all digits, see org create).  *id and *name point
 * into an arena-owned result. */
static bool resolve_org(admin_t *adm, const char *org, const char **id, const char **name)
{
    const char *values[] = {org};
    PGresult *res;
    /* 18 digits always fit a bigint; a longer number is no id of ours and
     * is looked up (in vain) as a name instead of failing the cast. */
    if (all_digits(org) && strlen(org) <= 18)
        res = query(adm, "looking up the organization",
                    "SELECT id, name FROM organizations WHERE id = $1::bigint", 1, values,
                    PGRES_TUPLES_OK, NULL);
    else
        res = query(adm, "looking up the organization",
                    "SELECT id, name FROM organizations WHERE name = $1", 1, values,
                    PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return fail(adm,
                    "no organization \"%s\"; list them with `" PROGRAM " org list` or create it "
                    "with `" PROGRAM " org create NAME`",
                    org);
    *id = PQgetvalue(res, 0, 0);
    *name = PQgetvalue(res, 0, 1);
    return true;
}

/* ---- JSON output ----------------------------------------------------------- */

static void free_gen(void *gen)
{
    yajl_gen_free(gen);
}

static yajl_gen new_gen(admin_t *adm)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    if (!gen) {
        fail(adm, "out of memory");
        return NULL;
    }
    if (!arena_cleanup_add(adm->arena, free_gen, gen)) {
        yajl_gen_free(gen);
        fail(adm, "out of memory");
        return NULL;
    }
    /* Strings come from the database and the command line: refuse to
     * print invalid UTF-8 rather than emit invalid JSON. */
    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);
    return gen;
}

static bool gen_key(yajl_gen gen, const char *key)
{
    return yajl_gen_string(gen, (const unsigned char *)key, strlen(key)) == yajl_gen_status_ok;
}

/* "key": "value", or null for a NULL value. */
static bool gen_str(yajl_gen gen, const char *key, const char *value)
{
    if (!gen_key(gen, key))
        return false;
    if (!value)
        return yajl_gen_null(gen) == yajl_gen_status_ok;
    return yajl_gen_string(gen, (const unsigned char *)value, strlen(value)) == yajl_gen_status_ok;
}

/* "key": number, the number given as its text (a bigint from the server,
 * written out exactly). */
static bool gen_num(yajl_gen gen, const char *key, const char *number)
{
    return gen_key(gen, key) && yajl_gen_number(gen, number, strlen(number)) == yajl_gen_status_ok;
}

/* Writes the generated object as one line on stdout, then clears the
 * generator for the next object. */
static bool emit(admin_t *adm, yajl_gen gen, bool generated)
{
    const unsigned char *json;
    size_t len;
    if (!generated || yajl_gen_get_buf(gen, &json, &len) != yajl_gen_status_ok)
        return fail(adm, "cannot generate the JSON output (a value is not valid UTF-8?)");
    if (fwrite(json, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) != 0)
        return fail(adm, "cannot write to standard output: %s", strerror(errno));
    yajl_gen_clear(gen);
    yajl_gen_reset(gen, NULL);
    return true;
}

/* ---- commands -------------------------------------------------------------- */

static bool cmd_migrate(admin_t *adm, char **args, int nargs)
{
    return migrate_apply(adm->conn, adm->cfg.sql_dir, stdout, adm->err, sizeof(adm->err));
}

/* Names a person can type and scripts can pass around: the database checks
 * the length (1 to 255 characters); here the rest. */
static bool check_org_name(admin_t *adm, const char *name)
{
    if (!*name)
        return fail(adm,
                    "the organization name is empty; give one, e.g. `" PROGRAM " org create acme`");
    if (all_digits(name))
        return fail(adm,
                    "organization name \"%s\" is all digits, which `key create` would read as an "
                    "id; add a letter",
                    name);
    size_t len = strlen(name);
    if (name[0] == ' ' || name[len - 1] == ' ')
        return fail(adm, "organization name \"%s\" starts or ends with a space; remove it", name);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return fail(adm, "organization name contains a control character; use printable "
                             "text");
    return true;
}

static bool cmd_org_create(admin_t *adm, char **args, int nargs)
{
    const char *name = args[0];
    if (!check_org_name(adm, name))
        return false;
    const char *values[] = {name};
    const char *state;
    PGresult *res = query(adm, "creating the organization",
                          "INSERT INTO organizations (name) VALUES ($1) RETURNING id, name", 1,
                          values, PGRES_TUPLES_OK, &state);
    if (!res) {
        if (strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0)
            return fail(adm, "organization \"%s\" already exists; see `" PROGRAM " org list`",
                        name);
        if (strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0)
            return fail(adm, "organization name \"%.32s...\" is too long; at most 255 characters",
                        name);
        return false;
    }
    yajl_gen gen = new_gen(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              gen_num(gen, "id", PQgetvalue(res, 0, 0)) &&
              gen_str(gen, "name", PQgetvalue(res, 0, 1)) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return emit(adm, gen, ok);
}

static bool cmd_org_list(admin_t *adm, char **args, int nargs)
{
    PGresult *res = query(adm, "listing organizations",
                          "SELECT o.id, o.name, nnreg_iso(o.create_date),"
                          " count(k.id) FILTER (WHERE k.revoked_at IS NULL)"
                          " FROM organizations o LEFT JOIN api_keys k ON k.org_id = o.id"
                          " GROUP BY o.id ORDER BY o.id",
                          0, NULL, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = new_gen(adm);
    if (!gen)
        return false;
    for (int row = 0; row < PQntuples(res); row++) {
        bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                  gen_num(gen, "id", PQgetvalue(res, row, 0)) &&
                  gen_str(gen, "name", PQgetvalue(res, row, 1)) &&
                  gen_str(gen, "create_date", PQgetvalue(res, row, 2)) &&
                  gen_num(gen, "active_keys", PQgetvalue(res, row, 3)) &&
                  yajl_gen_map_close(gen) == yajl_gen_status_ok;
        if (!emit(adm, gen, ok))
            return false;
    }
    return true;
}

static bool cmd_key_create(admin_t *adm, char **args, int nargs)
{
    const char *org_id, *org_name;
    if (!resolve_org(adm, args[0], &org_id, &org_name))
        return false;

    char key[APIKEY_HEX_LEN + 1], app_id[APPID_HEX_LEN + 1], hash[APIKEY_HEX_LEN + 1];
    if (!apikey_generate(key) || !apikey_generate_app_id(app_id))
        return fail(adm, "cannot read random bytes from the kernel (getrandom): %s",
                    strerror(errno));
    apikey_hash(key, APIKEY_HEX_LEN, hash);
    if (strlen(hash) != APIKEY_HEX_LEN) {
        explicit_bzero(key, sizeof(key));
        return fail(adm, "cannot compute SHA-256 with OpenSSL; check the libcrypto install");
    }

    /* The row is committed only after the key has reached stdout: a key is
     * never stored without having been shown, the one time it is shown. */
    const char *values[] = {org_id, app_id, hash};
    bool ok = exec_simple(adm, "BEGIN") &&
              query(adm, "storing the key",
                    "INSERT INTO api_keys (org_id, app_id, key_hash) VALUES ($1::bigint, $2, $3)",
                    3, values, PGRES_COMMAND_OK, NULL) != NULL;
    if (ok) {
        yajl_gen gen = new_gen(adm);
        bool generated = gen && yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                         gen_str(gen, "org", org_name) && gen_str(gen, "app_id", app_id) &&
                         gen_str(gen, "api_key", key) &&
                         yajl_gen_map_close(gen) == yajl_gen_status_ok;
        ok = gen && emit(adm, gen, generated);
        if (!ok) {
            char why[sizeof(adm->err)];
            snprintf(why, sizeof(why), "%s", adm->err);
            fail(adm, "%s; no key was created", why);
        }
    }
    explicit_bzero(key, sizeof(key));
    if (!ok) {
        if (PQtransactionStatus(adm->conn) != PQTRANS_IDLE)
            PQclear(PQexec(adm->conn, "ROLLBACK"));
        return false;
    }
    if (!exec_simple(adm, "COMMIT")) {
        char why[sizeof(adm->err)];
        snprintf(why, sizeof(why), "%s", adm->err);
        /* When the connection broke during COMMIT the row may exist or
         * not: revoking it is right either way. */
        return fail(adm,
                    "committing the key printed above failed (%s); it may not work: run `" PROGRAM
                    " key revoke %s` and create another",
                    why, app_id);
    }
    return true;
}

static bool cmd_key_revoke(admin_t *adm, char **args, int nargs)
{
    const char *values[] = {args[0]};
    /* COALESCE keeps the first revocation's time: revoking again changes
     * nothing and succeeds, so scripts may retry. */
    PGresult *res = query(adm, "revoking the key",
                          "UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, "
                          "clock_timestamp()) FROM organizations o"
                          " WHERE o.id = k.org_id AND k.app_id = $1"
                          " RETURNING k.app_id, o.name, nnreg_iso(k.revoked_at)",
                          1, values, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return fail(adm, "no API key with app id \"%s\"; list them with `" PROGRAM " key list`",
                    args[0]);
    yajl_gen gen = new_gen(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              gen_str(gen, "app_id", PQgetvalue(res, 0, 0)) &&
              gen_str(gen, "org", PQgetvalue(res, 0, 1)) &&
              gen_str(gen, "revoked_at", PQgetvalue(res, 0, 2)) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return emit(adm, gen, ok);
}

static bool cmd_key_list(admin_t *adm, char **args, int nargs)
{
    const char *org_id = NULL, *org_name;
    if (nargs == 1 && !resolve_org(adm, args[0], &org_id, &org_name))
        return false;
    const char *values[] = {org_id};
    PGresult *res = query(adm, "listing keys",
                          "SELECT k.app_id, o.name, nnreg_iso(k.create_date),"
                          " nnreg_iso(k.revoked_at)"
                          " FROM api_keys k JOIN organizations o ON o.id = k.org_id"
                          " WHERE $1::bigint IS NULL OR k.org_id = $1::bigint ORDER BY k.id",
                          1, values, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = new_gen(adm);
    if (!gen)
        return false;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *revoked = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
        bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                  gen_str(gen, "app_id", PQgetvalue(res, row, 0)) &&
                  gen_str(gen, "org", PQgetvalue(res, row, 1)) &&
                  gen_str(gen, "create_date", PQgetvalue(res, row, 2)) &&
                  gen_str(gen, "revoked_at", revoked) &&
                  yajl_gen_map_close(gen) == yajl_gen_status_ok;
        if (!emit(adm, gen, ok))
            return false;
    }
    return true;
}

static bool cmd_version(admin_t *adm, char **args, int nargs)
{
    printf(PROGRAM " %s\n", PACKAGE_VERSION);
    if (fflush(stdout) != 0)
        return fail(adm, "cannot write to standard output: %s", strerror(errno));
    return true;
}

static bool cmd_help(admin_t *adm, char **args, int nargs)
{
    usage(stdout);
    if (fflush(stdout) != 0)
        return fail(adm, "cannot write to standard output: %s", strerror(errno));
    return true;
}

/* ---- main ------------------------------------------------------------------ */

/* Number of words of the command name that argv[0..argc) starts with, 0 if
 * it is not this command. */
static int match_command(const command_t *cmd, char **argv, int argc)
{
    const char *name = cmd->name;
    int words = 0;
    while (*name) {
        size_t len = strcspn(name, " ");
        if (words >= argc || strlen(argv[words]) != len || strncmp(argv[words], name, len) != 0)
            return 0;
        words++;
        name += len;
        name += *name == ' ';
    }
    return words;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROGRAM ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* A descriptor 0-2 that was closed would be reused by the database socket,
 * and printing would then write into the PostgreSQL connection (a new key
 * included).  Closed ones are parked on /dev/null; a closed stdout is an
 * error, since the output (a key shown only once) would be lost. */
static bool std_fds_open(void)
{
    bool stdout_open = true;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        if (fd == STDOUT_FILENO)
            stdout_open = false;
        int null_fd = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
        if (null_fd != fd) {
            /* Lower descriptors are open by now, so open() returns fd unless
             * it failed: the process cannot run safely. */
            if (null_fd >= 0)
                close(null_fd);
            return false;
        }
    }
    return stdout_open;
}

int main(int argc, char **argv)
{
    if (!std_fds_open()) {
        fprintf(stderr, PROGRAM ": standard output is closed; the output would be lost, "
                                "redirect it to a file instead\n");
        return EXIT_FAILED;
    }
    /* Anywhere on the line, so that `nnreg-admin org create --help` helps
     * instead of creating an organization named "--help". */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        }
    }

    static admin_t adm; /* static: the config's buffers are several KiB */
    char errbuf[512];
    int first;
    if (!config_load(&adm.cfg, argc, argv, &first, errbuf, sizeof(errbuf)))
        return usage_error("%s", errbuf);
    log_init(PROGRAM, adm.cfg.log_level);

    if (first >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const command_t *cmd = NULL;
    int words = 0;
    for (size_t i = 0; i < NCOMMANDS && !cmd; i++) {
        words = match_command(&commands[i], argv + first, argc - first);
        if (words > 0)
            cmd = &commands[i];
    }
    if (!cmd)
        return usage_error("unknown command \"%s%s%s\"; see `" PROGRAM " --help`", argv[first],
                           first + 1 < argc ? " " : "", first + 1 < argc ? argv[first + 1] : "");
    char **args = argv + first + words;
    int nargs = argc - first - words;
    for (int i = 0; i < nargs; i++)
        if (strncmp(args[i], "--", 2) == 0)
            return usage_error("settings such as %s go before the command: " PROGRAM " %s %s%s%s",
                               args[i], args[i], cmd->name, cmd->args[0] ? " " : "", cmd->args);
    if (nargs < cmd->min_args || nargs > cmd->max_args)
        return usage_error("usage: " PROGRAM " %s%s%s", cmd->name, cmd->args[0] ? " " : "",
                           cmd->args);

    adm.arena = arena_create(0);
    if (!adm.arena) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILED;
    }
    bool ok = (!cmd->needs_db || admin_connect(&adm)) && cmd->fn(&adm, args, nargs);
    /* Results and generators first: they do not need the connection, but
     * nothing may outlive the command. */
    arena_destroy(adm.arena);
    PQfinish(adm.conn);
    if (!ok) {
        fprintf(stderr, PROGRAM ": %s\n", adm.err[0] ? adm.err : "failed for an unknown reason");
        return EXIT_FAILED;
    }
    return EXIT_OK;
}
