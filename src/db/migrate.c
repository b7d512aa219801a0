/* migrate.c - the migrations runner behind `nnreg-admin migrate`.
 *
 * One run: list and check the files of sql_dir, take the advisory lock,
 * make sure nnreg_migrations exists, compare what it records with the files,
 * then apply every pending file in its own transaction together with its
 * row, so that a migration is either fully applied and recorded or not at
 * all.  All memory and every PGresult of a run live on one arena. */
#include "db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "util/arena.h"

/* The advisory lock every migrator takes: "nnregmig" read as a big-endian
 * 64-bit integer.  Fixed forever, since migrators of different releases
 * must exclude each other. */
#define MIGRATE_LOCK_KEY "7957423371462732135"

/* A migration is SQL written by us; anything this large is a mistake (a
 * data dump dropped into sql/), not a schema change. */
#define MIGRATE_MAX_FILE_BYTES (16 * 1024 * 1024)

/* NNN_name.sql: at least three digits, at most what fits an integer. */
#define MIGRATE_MIN_DIGITS 3
#define MIGRATE_MAX_DIGITS 9

typedef struct migration {
    int version;
    const char *file; /* "001_init.sql", arena copy */
} migration_t;

typedef struct migrate_run {
    PGconn *conn;
    const char *sql_dir;
    arena_t *arena;
    FILE *log;
    char *errbuf;
    size_t errlen;
    bool failed; /* the first error wins: later ones (cleanup) do not overwrite it */
} migrate_run_t;

static bool fail(migrate_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(migrate_run_t *run, const char *fmt, ...)
{
    if (run->failed)
        return false;
    run->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->errbuf, run->errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* The 1-based line of the 1-based character position pos in text (the
 * server counts characters, not bytes: UTF-8 continuation bytes are
 * skipped). */
static long line_of_position(const char *text, long pos)
{
    long line = 1, chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xc0) == 0x80)
            continue;
        if (++chars >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* The server's error as one line: message, then detail and hint when there
 * are some, since those usually say what to change. */
static const char *pg_error(migrate_run_t *run, const PGresult *res)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!primary) {
        char *text = arena_alloc(run->arena, 1024);
        if (!text)
            return "out of memory";
        db_one_line(text, 1024, PQerrorMessage(run->conn));
        return text[0] ? text : "unknown error (the connection may have been lost)";
    }
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    char *msg =
        arena_printf(run->arena, "%s%s%s%s%s%s", primary, detail ? " (" : "", detail ? detail : "",
                     detail ? ")" : "", hint ? "; hint: " : "", hint ? hint : "");
    if (!msg)
        return primary;
    char *flat = arena_alloc(run->arena, strlen(msg) + 1);
    if (!flat)
        return primary;
    db_one_line(flat, strlen(msg) + 1, msg);
    return flat;
}

static void clear_result(void *res)
{
    PQclear(res);
}

/* Registers res (NULL is fine) on the run's arena so that no path can leak
 * it; false only when out of memory, with res already cleared. */
static bool keep(migrate_run_t *run, PGresult *res)
{
    if (res && !arena_cleanup_add(run->arena, clear_result, res)) {
        PQclear(res);
        return fail(run, "out of memory");
    }
    return true;
}

/* Runs sql (parameters as text); NULL unless the result has status
 * expect.  what names the step in the error message. */
static PGresult *query(migrate_run_t *run, const char *what, const char *sql, int nparams,
                       const char *const *values, ExecStatusType expect)
{
    PGresult *res = PQexecParams(run->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!keep(run, res))
        return NULL;
    if (!res || PQresultStatus(res) != expect) {
        fail(run, "%s failed: %s", what, pg_error(run, res));
        return NULL;
    }
    return res;
}

/* ---- the files ---------------------------------------------------------- */

/* Parses NNN_name.sql into its version; false for any other name. */
static bool parse_file_name(const char *file, int *version)
{
    size_t digits = strspn(file, "0123456789");
    if (digits < MIGRATE_MIN_DIGITS || digits > MIGRATE_MAX_DIGITS || file[digits] != '_')
        return false;
    const char *name = file + digits + 1;
    size_t name_len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_-");
    if (name_len == 0 || strcmp(name + name_len, ".sql") != 0)
        return false;
    long v = strtol(file, NULL, 10);
    if (v < 1)
        return false;
    *version = (int)v;
    return true;
}

/* Hidden files and editor leftovers ("001_init.sql~", ".#001_init.sql")
 * are not migrations; every other *.sql must be named correctly, so that a
 * misnamed migration is reported instead of silently never applied. */
static int select_sql(const struct dirent *entry)
{
    size_t len = strlen(entry->d_name);
    return entry->d_name[0] != '.' && len > 4 && strcmp(entry->d_name + len - 4, ".sql") == 0;
}

static int by_version(const void *a, const void *b)
{
    const migration_t *ma = a, *mb = b;
    return (ma->version > mb->version) - (ma->version < mb->version);
}

/* The migrations of sql_dir sorted by version; they must be numbered
 * 1, 2, 3, ... without duplicates or gaps, since either is a merge mistake
 * that would otherwise apply the wrong schema. */
static bool list_files(migrate_run_t *run, migration_t **out, size_t *count)
{
    struct dirent **names = NULL;
    int n = scandir(run->sql_dir, &names, select_sql, alphasort);
    if (n < 0)
        return fail(run,
                    "cannot read the migrations directory \"%s\": %s; point NNREG_SQL_DIR "
                    "(--sql-dir) at the project's sql/ directory",
                    run->sql_dir, strerror(errno));
    migration_t *list = arena_calloc(run->arena, (size_t)n + 1, sizeof(*list));
    bool ok = list != NULL;
    if (!ok)
        fail(run, "out of memory");
    for (int i = 0; ok && i < n; i++) {
        list[i].file = arena_strdup(run->arena, names[i]->d_name);
        if (!list[i].file)
            ok = fail(run, "out of memory");
        else if (!parse_file_name(list[i].file, &list[i].version))
            ok = fail(run,
                      "migration file \"%s/%s\" is not named NNN_name.sql (a version of three or "
                      "more digits from 001, an underscore, letters, digits, _ or -); rename it",
                      run->sql_dir, list[i].file);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!ok)
        return false;
    if (n == 0)
        return fail(run,
                    "no NNN_name.sql migrations in \"%s\"; point NNREG_SQL_DIR (--sql-dir) at "
                    "the project's sql/ directory",
                    run->sql_dir);
    qsort(list, (size_t)n, sizeof(*list), by_version);
    if (list[0].version != 1)
        return fail(run, "the first migration in \"%s\" is \"%s\"; numbering must start at 001",
                    run->sql_dir, list[0].file);
    for (int i = 1; i < n; i++) {
        if (list[i].version == list[i - 1].version)
            return fail(run, "\"%s\" and \"%s\" in \"%s\" have the same version %d; renumber one",
                        list[i - 1].file, list[i].file, run->sql_dir, list[i].version);
        if (list[i].version != list[i - 1].version + 1)
            return fail(run,
                        "migration %d is missing in \"%s\" (between \"%s\" and \"%s\"); restore "
                        "it or renumber the files",
                        list[i - 1].version + 1, run->sql_dir, list[i - 1].file, list[i].file);
    }
    *out = list;
    *count = (size_t)n;
    return true;
}

/* The file's content as one NUL-terminated string for PQexec. */
static char *read_file(migrate_run_t *run, const char *file)
{
    const char *path = arena_printf(run->arena, "%s/%s", run->sql_dir, file);
    if (!path) {
        fail(run, "out of memory");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(run, "cannot open migration \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fail(run, "cannot stat migration \"%s\": %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        fail(run, "migration \"%s\" is not a regular file; remove or rename it", path);
    } else if (st.st_size > MIGRATE_MAX_FILE_BYTES) {
        fail(run, "migration \"%s\" is %lld bytes, more than the %d a migration may have", path,
             (long long)st.st_size, MIGRATE_MAX_FILE_BYTES);
    } else if (!(text = arena_alloc(run->arena, (size_t)st.st_size + 1))) {
        fail(run, "out of memory");
    } else {
        size_t len = 0;
        while (len < (size_t)st.st_size) {
            ssize_t got = read(fd, text + len, (size_t)st.st_size - len);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                fail(run, "cannot read migration \"%s\": %s", path,
                     got < 0 ? strerror(errno) : "the file shrank while being read");
                text = NULL;
                break;
            }
            len += (size_t)got;
        }
        if (text) {
            text[len] = '\0';
            /* PQexec sends a C string: a NUL would silently cut the file. */
            if (memchr(text, '\0', len)) {
                fail(run, "migration \"%s\" contains a NUL byte; it must be SQL text", path);
                text = NULL;
            }
        }
    }
    close(fd);
    return text;
}

/* ---- the database --------------------------------------------------------- */

static bool lock_migrations(migrate_run_t *run)
{
    const char *key[] = {MIGRATE_LOCK_KEY};
    PGresult *res = query(run, "taking the migration lock",
                          "SELECT pg_try_advisory_lock($1::bigint)", 1, key, PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        return true;
    /* Another host migrates right now: say why we seem to hang, then wait
     * for it; its changes are seen once we hold the lock. */
    if (run->log) {
        fprintf(run->log, "waiting for another migration run to finish\n");
        fflush(run->log);
    }
    return query(run, "waiting for the migration lock", "SELECT pg_advisory_lock($1::bigint)", 1,
                 key, PGRES_TUPLES_OK) != NULL;
}

static void unlock_migrations(migrate_run_t *run)
{
    const char *key[] = {MIGRATE_LOCK_KEY};
    /* On a lost connection the server has released the lock already. */
    PGresult *res = PQexecParams(run->conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, key,
                                 NULL, NULL, 0);
    PQclear(res);
}

/* Created under the lock, so two first runs cannot race on CREATE TABLE
 * (and no "already exists, skipping" notice is printed on every run). */
static bool ensure_table(migrate_run_t *run)
{
    PGresult *res =
        query(run, "looking for table nnreg_migrations",
              "SELECT to_regclass('nnreg_migrations') IS NOT NULL", 0, NULL, PGRES_TUPLES_OK);
    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        return true;
    return query(run, "creating table nnreg_migrations",
                 "CREATE TABLE nnreg_migrations ("
                 " version integer PRIMARY KEY,"
                 " name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL, PGRES_COMMAND_OK) != NULL;
}

/* Applies one file and records it in the same transaction. */
static bool apply_one(migrate_run_t *run, const migration_t *m)
{
    char *sql = read_file(run, m->file);
    if (!sql)
        return false;
    if (!query(run, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK))
        return false;

    /* Simple query protocol: the file may hold many statements; the result
     * is the last one's, or the first error's. */
    PGresult *res = PQexec(run->conn, sql);
    if (!keep(run, res))
        return false;
    ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        if (pos)
            return fail(run, "%s/%s line %ld: %s; nothing of it was applied", run->sql_dir, m->file,
                        line_of_position(sql, atol(pos)), pg_error(run, res));
        return fail(run, "%s/%s: %s; nothing of it was applied", run->sql_dir, m->file,
                    pg_error(run, res));
    }
    /* A COMMIT or ROLLBACK inside the file would end our transaction early
     * and leave its changes unrecorded (or recorded without them). */
    if (PQtransactionStatus(run->conn) != PQTRANS_INTRANS)
        return fail(run,
                    "%s/%s ends the transaction itself (COMMIT or ROLLBACK in the file), so what "
                    "came before it may be committed but is not recorded: check the database by "
                    "hand and remove the COMMIT/ROLLBACK, migrate wraps each file in a transaction",
                    run->sql_dir, m->file);

    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *values[] = {version, m->file};
    if (!query(run, "recording the migration",
               "INSERT INTO nnreg_migrations (version, name) VALUES ($1::integer, $2)", 2, values,
               PGRES_COMMAND_OK))
        return false;
    if (!query(run, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK))
        return false;
    if (run->log) {
        fprintf(run->log, "applied %s\n", m->file);
        fflush(run->log);
    }
    return true;
}

/* Checks what the table records against the files and applies the rest. */
static bool apply_pending(migrate_run_t *run, const migration_t *files, size_t nfiles)
{
    PGresult *res = query(run, "reading nnreg_migrations",
                          "SELECT version, name FROM nnreg_migrations ORDER BY version", 0, NULL,
                          PGRES_TUPLES_OK);
    if (!res)
        return false;
    int applied_max = 0;
    const char *applied_max_name = NULL;
    for (int row = 0; row < PQntuples(res); row++) {
        int version = atoi(PQgetvalue(res, row, 0));
        const char *name = PQgetvalue(res, row, 1);
        if (version < 1 || (size_t)version > nfiles)
            return fail(run,
                        "the database has migration %d (\"%s\") which \"%s\" lacks: its schema is "
                        "newer than these files; use the sql/ of the release that added it",
                        version, name, run->sql_dir);
        /* Files are numbered 1..nfiles, so version v is files[v - 1]. */
        const migration_t *m = &files[version - 1];
        if (strcmp(m->file, name) != 0)
            return fail(run,
                        "migration %d was applied as \"%s\" but is \"%s\" in \"%s\"; a migration "
                        "that was applied must never be renamed or replaced: restore \"%s\" and "
                        "put the change in a new file",
                        version, name, m->file, run->sql_dir, name);
        applied_max = version;
        applied_max_name = m->file;
        if (row + 1 != version)
            return fail(run,
                        "migration %d (\"%s\") is not recorded although later ones are; it was "
                        "skipped: apply it by hand or renumber it after the last applied one",
                        row + 1, files[row].file);
    }

    size_t applied = 0;
    for (size_t i = (size_t)applied_max; i < nfiles; i++) {
        if (!apply_one(run, &files[i]))
            return false;
        applied++;
    }
    if (applied == 0 && run->log) {
        fprintf(run->log, "nothing to apply: the database is at migration %s\n",
                applied_max_name ? applied_max_name : "(none)");
        fflush(run->log);
    }
    return true;
}

bool migrate_apply(PGconn *conn, const char *sql_dir, FILE *log, char *errbuf, size_t errlen)
{
    migrate_run_t run = {
        .conn = conn, .sql_dir = sql_dir, .log = log, .errbuf = errbuf, .errlen = errlen};
    if (errlen > 0)
        errbuf[0] = '\0';
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(errbuf, errlen, "not connected to PostgreSQL");
        return false;
    }
    /* Each file needs a transaction of its own, opened here. */
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        snprintf(errbuf, errlen, "the connection is inside a transaction; migrate needs its own");
        return false;
    }
    run.arena = arena_create(0);
    if (!run.arena) {
        snprintf(errbuf, errlen, "out of memory");
        return false;
    }

    migration_t *files = NULL;
    size_t nfiles = 0;
    bool ok = list_files(&run, &files, &nfiles);
    bool locked = ok && lock_migrations(&run);
    ok = locked && ensure_table(&run) && apply_pending(&run, files, nfiles);

    /* A failed file leaves its transaction open (or aborted): undo it
     * before releasing the lock, which outlives transactions. */
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(conn, "ROLLBACK"));
    if (locked)
        unlock_migrations(&run);
    arena_destroy(run.arena);
    return ok;
}
