/* nnreg-admin: migrations, organizations and API keys, public networks,
 * blob store maintenance and pruning of old rows.
 *
 * `nnreg-admin [--setting=value ...] COMMAND [ARGS]`.  Commands come from a
 * static table (name, arguments, options, help, handler), as in PgBouncer's
 * admin.c; main only parses the settings, finds the command, checks its
 * arguments and connects when the command needs the database.  The
 * commands themselves live in src/admin/ (admin.h: the context and the
 * helpers they share).  Everything a command allocates, and every PGresult
 * and yajl handle, lives on one arena.
 *
 * Output for scripts goes to stdout as JSON, one object per line (made with
 * yajl's generator); errors are one line "nnreg-admin: ..." on stderr.
 * Exit status: 0 done, 1 failed (for `check`: problems found), 2 usage
 * error. */
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

#include "admin/admin.h"
#include "admin/orgs.h"
#include "admin/prune.h"
#include "admin/publish.h"
#include "admin/storage.h"
#include "db/migrate.h"
#include "util/arena.h"
#include "util/config.h"
#include "util/log.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROGRAM ADMIN_PROGRAM

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef bool (*command_fn)(admin_t *adm, char **args, int nargs);

typedef struct command {
    const char *name;       /* one or two words: "migrate", "key create" */
    const char *args;       /* the arguments as shown in the usage */
    const char *options;    /* the options it takes after its name ("--dry-run"), or "" */
    int min_args, max_args; /* options included */
    bool needs_db;
    command_fn fn;
    const char *help;
} command_t;

static bool cmd_migrate(admin_t *adm, char **args, int nargs);
static bool cmd_version(admin_t *adm, char **args, int nargs);
static bool cmd_help(admin_t *adm, char **args, int nargs);

static const command_t commands[] = {
    {"migrate", "", "", 0, 0, true, cmd_migrate,
     "apply the pending migrations of --sql-dir in order, each in one transaction"},
    {"org create", "NAME", "", 1, 1, true, orgs_create,
     "create an organization; prints {\"id\", \"name\"}"},
    {"org list", "", "", 0, 0, true, orgs_list, "list organizations, one JSON object per line"},
    {"key create", "ORG", "", 1, 1, true, orgs_key_create,
     "create an API key for ORG (name or id); prints it once, stores only its hash"},
    {"key revoke", "APP_ID", "", 1, 1, true, orgs_key_revoke,
     "revoke the API key of APP_ID, from the next request on"},
    {"key list", "[ORG]", "", 0, 1, true, orgs_key_list,
     "list the API keys (of ORG): app ids and dates, never keys"},
    {"publish", "NETWORK_ID SLUG", "", 2, 2, true, publish_set,
     "make a network public under SLUG ([a-z0-9-], at most 100)"},
    {"unpublish", "NETWORK_ID", "", 1, 1, true, publish_clear,
     "make a public network private again, freeing its slug"},
    {"gc", "[--dry-run]", "--dry-run", 0, 1, true, storage_gc,
     "remove unreferenced blobs and dead uploads older than --gc-grace-seconds"},
    {"check", "[--quick]", "--quick", 0, 1, true, storage_check,
     "verify every blob (size, SHA-256) and report problems; exit 1 if any"},
    {"prune", "[--dry-run]", "--dry-run", 0, 1, true, prune_run,
     "delete finished inference tasks older than --inference-keep-hours, expired idempotency keys"},
    {"version", "", "", 0, 0, false, cmd_version, "print the version"},
    {"help", "", "", 0, 0, false, cmd_help, "print this help"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: " PROGRAM " [--setting=value ...] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char synopsis[64];
        snprintf(synopsis, sizeof(synopsis), "%s%s%s", commands[i].name,
                 commands[i].args[0] ? " " : "", commands[i].args);
        fprintf(out, "  %-26s %s\n", synopsis, commands[i].help);
    }
    fprintf(out, "\nsettings (a flag before the command, or its environment variable):\n");
    config_usage(out);
    fprintf(out, "\nexit status: 0 done, 1 failed (the reason on stderr), 2 usage error\n");
}

/* ---- commands without a module of their own ------------------------------- */

static bool cmd_migrate(admin_t *adm, char **args, int nargs)
{
    return migrate_apply(adm->conn, adm->cfg.sql_dir, stdout, adm->err, sizeof(adm->err));
}

static bool cmd_version(admin_t *adm, char **args, int nargs)
{
    printf(PROGRAM " %s\n", PACKAGE_VERSION);
    if (fflush(stdout) != 0)
        return admin_fail(adm, "cannot write to standard output: %s", strerror(errno));
    return true;
}

static bool cmd_help(admin_t *adm, char **args, int nargs)
{
    usage(stdout);
    if (fflush(stdout) != 0)
        return admin_fail(adm, "cannot write to standard output: %s", strerror(errno));
    return true;
}

/* Whether arg is one of the options the command declares. */
static bool command_option(const command_t *cmd, const char *arg)
{
    size_t len = strlen(arg);
    for (const char *p = cmd->options; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, arg, n) == 0)
            return true;
        p += n;
        p += *p == ' ';
    }
    return false;
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
        if (strncmp(args[i], "--", 2) == 0 && !command_option(cmd, args[i]))
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
