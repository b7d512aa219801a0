/* storage.c - `nnreg-admin gc` and `nnreg-admin check` (see storage.h).
 *
 * How gc stays safe against a create running at the same time.  A create
 * (api/network_create.c) commits its blob files first -- a rename into
 * place, or for content already stored a refresh of the file's mtime --
 * then, in one transaction, inserts the blobs row with ON CONFLICT DO
 * NOTHING and the network_files rows that reference it (a foreign key,
 * whose check locks the blobs row FOR KEY SHARE).  gc, per blob:
 *
 *   BEGIN; SELECT ... FOR UPDATE (the row, if still old enough);
 *   check that no network_files row references it; DELETE the row;
 *   move the file aside (store/gc.h); if its mtime is young, put it back
 *   and ROLLBACK; else COMMIT, look at the mtime once more, unlink.
 *
 *   - A create whose network_files insert came first holds FOR KEY SHARE:
 *     the FOR UPDATE waits for it and the re-check (a new statement, so a
 *     new snapshot) sees its rows: the blob is kept.
 *   - A create whose foreign key check comes after the lock waits for gc;
 *     if gc deleted the row, the check fails and the create answers 500
 *     without referencing anything (its ON CONFLICT DO NOTHING found the
 *     row still there, locked but not deleted).  If the create's insert
 *     comes after gc's DELETE, it waits for gc's commit and then inserts a
 *     fresh row, whose file the create's own commit put back in place:
 *     once gc moved the old file aside, a create finds the address empty
 *     and stores its own copy.
 *   - A create that refreshed the old file before gc moved it aside left a
 *     young mtime on it: gc puts it back and keeps everything.
 * Files without any row are judged by mtime alone (the row, if any, is
 * inserted after the file was refreshed), with a second look at the
 * database after the move aside. */
#include "admin/storage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/blob.h"
#include "store/gc.h"
#include "util/log.h"

/* Rows read per round trip when walking the blobs table. */
#define PAGE_ROWS "500"

/* pg_try_advisory_lock key of gc: "nnreg-gc" in ASCII. */
#define GC_LOCK_KEY "7957688175018828643"

#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

/* An unreferenced blobs row, older than $2 seconds, after $1 in name order. */
#define SQL_GC_CANDIDATES                                                                          \
    "SELECT b.sha256, b.size FROM blobs b WHERE b.sha256 > $1"                                     \
    " AND b.create_date < clock_timestamp() - make_interval(secs => $2::bigint)"                   \
    " AND NOT EXISTS (SELECT 1 FROM network_files f WHERE f.sha256 = b.sha256)"                    \
    " ORDER BY b.sha256 LIMIT " PAGE_ROWS

/* The names of $1 (an array of blob names) that have no blobs row. */
#define SQL_WITHOUT_ROW                                                                            \
    "SELECT n FROM unnest($1::text[]) AS n"                                                        \
    " WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = n) ORDER BY n"

/* ---- shared helpers ------------------------------------------------------- */

/* The blob store must be there: a wrong NNREG_DATA_DIR would make every
 * blob look missing (check) and every row's file absent (gc). */
static bool store_present(admin_t *adm)
{
    char root[sizeof(adm->cfg.data_dir) + 32];
    snprintf(root, sizeof(root), "%s/blobs/sha256", adm->cfg.data_dir);
    struct stat st;
    const char *why = NULL;
    if (stat(root, &st) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    if (why)
        return admin_fail(adm,
                          "no blob store at %s (%s); set NNREG_DATA_DIR (or --data-dir) to the "
                          "data directory nnreg-fcgi uses",
                          root, why);
    return true;
}

static char *blob_file(admin_t *adm, arena_t *arena, const char *hex)
{
    char *path = blob_path(arena, adm->cfg.data_dir, hex);
    if (!path)
        admin_fail(adm, "out of memory (or a malformed blob name \"%.70s\" in the database)", hex);
    return path;
}

/* "{a,b,c}": an array literal of blob names (hex digits only, so nothing
 * needs quoting), passed as a parameter. */
static char *names_array(arena_t *arena, const gc_entry_t *entries, size_t n, size_t *count)
{
    size_t len = 3;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (entries[i].hex)
            len += BLOB_HEX_LEN + 1;
    char *out = arena_alloc(arena, len);
    if (!out)
        return NULL;
    char *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].hex)
            continue;
        if (*count > 0)
            *p++ = ',';
        memcpy(p, entries[i].hex, BLOB_HEX_LEN);
        p += BLOB_HEX_LEN;
        (*count)++;
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

static const gc_entry_t *find_entry(const gc_entry_t *entries, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].hex && strcmp(entries[i].hex, hex) == 0)
            return &entries[i];
    return NULL;
}

/* ---- gc ------------------------------------------------------------------- */

typedef struct gc_run {
    admin_t *adm;
    bool dry_run;
    time_t now; /* the start: ages are judged against it, the safe side */
    long long grace;
    char grace_text[24];
    long long blobs_removed, bytes_freed, rows_removed, temp_removed, kept_young;
} gc_run_t;

/* BEGIN, COMMIT, ROLLBACK with the result on the page arena: gc runs one
 * transaction per blob, and the command arena would keep them all. */
static bool exec_on(admin_t *adm, arena_t *page, const char *sql)
{
    return admin_query_on(adm, page, sql, sql, 0, NULL, PGRES_COMMAND_OK, NULL) != NULL;
}

/* Rolls back and keeps the first error message. */
static bool gc_abort(gc_run_t *run)
{
    admin_rollback_quietly(run->adm);
    return false;
}

/* Puts a file set aside back after a failure, keeping the error message
 * of the failure and adding that of the put back when it fails too. */
static bool gc_abort_aside(gc_run_t *run, const char *hex, const char *aside)
{
    admin_t *adm = run->adm;
    char why[256];
    if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why))) {
        size_t len = strlen(adm->err);
        snprintf(adm->err + len, sizeof(adm->err) - len, "; and %s", why);
    }
    return gc_abort(run);
}

/* Dry run of one unreferenced old row: what a real run would do. */
static bool gc_row_dry(gc_run_t *run, arena_t *page, const char *hex)
{
    char *path = blob_file(run->adm, page, hex);
    if (!path)
        return false;
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return admin_fail(run->adm, "cannot stat %s: %s", path, strerror(errno));
        run->rows_removed++;
        return true;
    }
    if (gc_is_young(&st, run->now, run->grace)) {
        run->kept_young++;
        return true;
    }
    run->rows_removed++;
    run->blobs_removed++;
    run->bytes_freed += (long long)st.st_size;
    return true;
}

/* One unreferenced old row, in its own transaction (see the top). */
static bool gc_row(gc_run_t *run, arena_t *page, const char *hex)
{
    admin_t *adm = run->adm;
    const char *state;
    const char *lock_params[] = {hex, run->grace_text};
    if (!exec_on(adm, page, "BEGIN"))
        return false;
    PGresult *res = admin_query_on(
        adm, page, "locking the blob row",
        "SELECT b.size FROM blobs b WHERE b.sha256 = $1"
        " AND b.create_date < clock_timestamp() - make_interval(secs => $2::bigint) FOR UPDATE",
        2, lock_params, PGRES_TUPLES_OK, &state);
    if (!res && strcmp(state, SQLSTATE_LOCK_NOT_AVAILABLE) == 0) {
        /* A create has held the row for a long time: it is in use. */
        admin_rollback_quietly(adm);
        adm->err[0] = '\0';
        return true;
    }
    if (!res)
        return gc_abort(run);
    if (PQntuples(res) == 0) /* removed, or removed and created again */
        return exec_on(adm, page, "ROLLBACK");

    const char *ref_params[] = {hex};
    res = admin_query_on(adm, page, "checking the references of the blob",
                         "SELECT EXISTS (SELECT 1 FROM network_files f WHERE f.sha256 = $1)", 1,
                         ref_params, PGRES_TUPLES_OK, NULL);
    if (!res)
        return gc_abort(run);
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) /* referenced meanwhile */
        return exec_on(adm, page, "ROLLBACK");

    res = admin_query_on(adm, page, "deleting the blob row", "DELETE FROM blobs WHERE sha256 = $1",
                         1, ref_params, PGRES_COMMAND_OK, &state);
    if (!res && strcmp(state, ADMIN_SQLSTATE_FOREIGN_KEY_VIOLATION) == 0) {
        admin_rollback_quietly(adm); /* referenced after all: keep */
        adm->err[0] = '\0';
        return true;
    }
    if (!res)
        return gc_abort(run);

    char aside[sizeof(adm->cfg.data_dir) + BLOB_HEX_LEN + 16];
    char why[512];
    bool missing;
    if (!gc_take_aside(adm->cfg.data_dir, hex, aside, sizeof(aside), &missing, why, sizeof(why))) {
        admin_fail(adm, "%s", why);
        return gc_abort(run);
    }
    if (missing) { /* only the row was left */
        if (!exec_on(adm, page, "COMMIT"))
            return false;
        run->rows_removed++;
        return true;
    }
    bool young;
    struct stat st;
    if (!gc_aside_is_young(aside, run->now, run->grace, &young, &st, why, sizeof(why))) {
        admin_fail(adm, "%s", why);
        return gc_abort(run);
    }
    if (young) {
        /* Refreshed by a create that is about to reference it. */
        run->kept_young++;
        if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why))) {
            admin_fail(adm, "%s", why);
            return gc_abort(run);
        }
        return exec_on(adm, page, "ROLLBACK");
    }
    if (!exec_on(adm, page, "COMMIT"))
        return gc_abort_aside(run, hex, aside);
    run->rows_removed++;
    /* A refresh that raced with the move may land a moment late: look
     * again now that a round trip has passed.  The row is gone, so a file
     * put back here is an orphan until a create references it again. */
    if (!gc_aside_is_young(aside, run->now, run->grace, &young, &st, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    if (young) {
        if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why)))
            return admin_fail(adm, "%s", why);
        return true;
    }
    if (!gc_discard(aside, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    run->blobs_removed++;
    run->bytes_freed += (long long)st.st_size;
    return true;
}

/* Pass 1: unreferenced rows older than the grace period. */
static bool gc_rows(gc_run_t *run)
{
    admin_t *adm = run->adm;
    char after[BLOB_HEX_LEN + 1] = "";
    for (;;) {
        arena_t *page = arena_create(0);
        if (!page)
            return admin_fail(adm, "out of memory");
        const char *params[] = {after, run->grace_text};
        PGresult *res = admin_query_on(adm, page, "listing unreferenced blobs", SQL_GC_CANDIDATES,
                                       2, params, PGRES_TUPLES_OK, NULL);
        bool ok = res != NULL;
        int rows = ok ? PQntuples(res) : 0;
        for (int i = 0; i < rows && ok; i++) {
            const char *hex = PQgetvalue(res, i, 0);
            ok = run->dry_run ? gc_row_dry(run, page, hex) : gc_row(run, page, hex);
            snprintf(after, sizeof(after), "%s", hex);
        }
        arena_destroy(page);
        if (!ok)
            return false;
        if (rows == 0)
            break;
    }
    /* Unreferenced rows still too young to go. */
    const char *params[] = {run->grace_text};
    PGresult *res =
        admin_query(adm, "counting young unreferenced blobs",
                    "SELECT count(*) FROM blobs b"
                    " WHERE b.create_date >= clock_timestamp() - make_interval(secs => $1::bigint)"
                    " AND NOT EXISTS (SELECT 1 FROM network_files f WHERE f.sha256 = b.sha256)",
                    1, params, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    run->kept_young += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

/* One blob file without a row, old by its mtime when listed. */
static bool gc_orphan(gc_run_t *run, arena_t *page, const char *hex, const struct stat *listed)
{
    admin_t *adm = run->adm;
    if (run->dry_run) {
        run->blobs_removed++;
        run->bytes_freed += (long long)listed->st_size;
        return true;
    }
    char aside[sizeof(adm->cfg.data_dir) + BLOB_HEX_LEN + 16];
    char why[512];
    bool missing, young;
    struct stat st;
    if (!gc_take_aside(adm->cfg.data_dir, hex, aside, sizeof(aside), &missing, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    if (missing)
        return true;
    if (!gc_aside_is_young(aside, run->now, run->grace, &young, &st, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    if (!young) {
        /* A create may have inserted the row since the listing (after
         * refreshing the file, which the look above would have seen; this
         * is the second look, a round trip later). */
        const char *params[] = {hex};
        PGresult *res = admin_query_on(adm, page, "looking up the blob row",
                                       "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1)", 1,
                                       params, PGRES_TUPLES_OK, NULL);
        if (!res) {
            if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why))) {
                size_t len = strlen(adm->err);
                snprintf(adm->err + len, sizeof(adm->err) - len, "; and %s", why);
            }
            return false;
        }
        bool has_row = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        if (!has_row &&
            !gc_aside_is_young(aside, run->now, run->grace, &young, &st, why, sizeof(why)))
            return admin_fail(adm, "%s", why);
        if (has_row) {
            if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why)))
                return admin_fail(adm, "%s", why);
            return true;
        }
    }
    if (young) {
        run->kept_young++;
        if (!gc_put_back(adm->cfg.data_dir, hex, aside, why, sizeof(why)))
            return admin_fail(adm, "%s", why);
        return true;
    }
    if (!gc_discard(aside, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    run->blobs_removed++;
    run->bytes_freed += (long long)st.st_size;
    return true;
}

/* Pass 2, per fan-out directory: files that have no row. */
static bool gc_orphans_in(void *ctx, const char *fan_out, const gc_entry_t *entries, size_t n)
{
    gc_run_t *run = ctx;
    admin_t *adm = run->adm;
    if (!fan_out[0]) /* stray entries are for check to report */
        return true;
    arena_t *page = arena_create(0);
    if (!page)
        return admin_fail(adm, "out of memory");
    size_t count;
    char *names = names_array(page, entries, n, &count);
    bool ok = names != NULL || admin_fail(adm, "out of memory");
    PGresult *res = NULL;
    if (ok && count > 0) {
        const char *params[] = {names};
        res = admin_query_on(adm, page, "looking up blob rows", SQL_WITHOUT_ROW, 1, params,
                             PGRES_TUPLES_OK, NULL);
        ok = res != NULL;
    }
    for (int i = 0; res && ok && i < PQntuples(res); i++) {
        const char *hex = PQgetvalue(res, i, 0);
        const gc_entry_t *e = find_entry(entries, n, hex);
        if (!e)
            continue;
        if (gc_is_young(&e->st, run->now, run->grace))
            run->kept_young++;
        else
            ok = gc_orphan(run, page, hex, &e->st);
    }
    arena_destroy(page);
    return ok;
}

static bool gc_lock(admin_t *adm)
{
    PGresult *res =
        admin_query(adm, "taking the gc lock", "SELECT pg_try_advisory_lock(" GC_LOCK_KEY ")", 0,
                    NULL, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        return admin_fail(adm, "another `" ADMIN_PROGRAM " gc` is running on this database; "
                               "wait for it to finish");
    /* A blob row a create holds that long is in use: skip it rather than
     * wait (see gc_row). */
    return admin_exec(adm, "SET lock_timeout = '10s'");
}

bool storage_gc(admin_t *adm, char **args, int nargs)
{
    gc_run_t run = {.adm = adm, .now = time(NULL), .grace = adm->cfg.gc_grace_seconds};
    snprintf(run.grace_text, sizeof(run.grace_text), "%lld", run.grace);
    if (!admin_parse_flag(adm, args, nargs, "--dry-run", &run.dry_run) || !store_present(adm))
        return false;
    /* A dry run changes nothing, so it may run beside a real one. */
    if (!run.dry_run && !gc_lock(adm))
        return false;

    char why[512];
    long long restored = 0;
    if (!run.dry_run && !gc_recover_aside(adm->cfg.data_dir, false, &restored, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    if (restored > 0)
        log_warn("put back %lld blob file%s an interrupted gc had set aside in %s/tmp", restored,
                 restored == 1 ? "" : "s", adm->cfg.data_dir);
    if (!gc_rows(&run))
        return false;
    bool stopped;
    if (!gc_walk_blobs(adm->cfg.data_dir, gc_orphans_in, &run, &stopped, why, sizeof(why)))
        return stopped ? false : admin_fail(adm, "%s", why);
    long long temp_bytes = 0, temp_kept = 0;
    if (!gc_sweep_temp(adm->cfg.data_dir, run.now, run.grace, run.dry_run, &run.temp_removed,
                       &temp_bytes, &temp_kept, why, sizeof(why)))
        return admin_fail(adm, "%s", why);
    run.bytes_freed += temp_bytes;

    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              admin_gen_int(gen, "blobs_removed", run.blobs_removed) &&
              admin_gen_int(gen, "bytes_freed", run.bytes_freed) &&
              admin_gen_int(gen, "rows_removed", run.rows_removed) &&
              admin_gen_int(gen, "temp_removed", run.temp_removed) &&
              admin_gen_int(gen, "kept_young", run.kept_young) &&
              admin_gen_bool(gen, "dry_run", run.dry_run) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}

/* ---- check ---------------------------------------------------------------- */

typedef struct check_run {
    admin_t *adm;
    yajl_gen gen;
    bool quick;
    time_t now;
    long long grace;
    long long blobs, bytes, unreferenced;
    long long missing, damaged, unreadable, rows_without_blob, size_mismatch, orphans,
        young_orphans, stray;
} check_run_t;

static long long check_problems(const check_run_t *run)
{
    return run->missing + run->damaged + run->unreadable + run->rows_without_blob +
           run->size_mismatch + run->orphans + run->stray;
}

/* "files": [{"network_id", "name"}...] of the rows referencing hex. */
static bool check_gen_files(check_run_t *run, arena_t *page, const char *hex)
{
    const char *params[] = {hex};
    PGresult *res = admin_query_on(run->adm, page, "listing the files of a blob",
                                   "SELECT network_id, name FROM network_files WHERE sha256 = $1"
                                   " ORDER BY network_id, name",
                                   1, params, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = run->gen;
    bool ok = admin_gen_key(gen, "files") && yajl_gen_array_open(gen) == yajl_gen_status_ok;
    for (int i = 0; ok && i < PQntuples(res); i++)
        ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
             admin_gen_num(gen, "network_id", PQgetvalue(res, i, 0)) &&
             admin_gen_str(gen, "name", PQgetvalue(res, i, 1)) &&
             yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return ok && yajl_gen_array_close(gen) == yajl_gen_status_ok;
}

/* One blobs row against its file. */
static bool check_blob(check_run_t *run, arena_t *page, const char *hex, const char *size_text,
                       long long refs)
{
    admin_t *adm = run->adm;
    char *path = blob_file(adm, page, hex);
    if (!path)
        return false;
    uint64_t size = strtoull(size_text, NULL, 10), actual_size;
    char actual_hex[BLOB_HEX_LEN + 1], why[512];
    run->blobs++;
    run->bytes += (long long)size;
    if (refs == 0)
        run->unreferenced++;
    gc_verdict_t verdict =
        gc_verify_blob(path, hex, size, !run->quick, &actual_size, actual_hex, why, sizeof(why));
    if (verdict == GC_BLOB_OK)
        return true;
    if (verdict == GC_BLOB_MISSING) {
        /* gc may have removed row and file since the page was read. */
        const char *params[] = {hex};
        PGresult *res = admin_query_on(adm, page, "looking up the blob row",
                                       "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1)", 1,
                                       params, PGRES_TUPLES_OK, NULL);
        if (!res)
            return false;
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            run->blobs--;
            run->bytes -= (long long)size;
            if (refs == 0)
                run->unreferenced--;
            return true;
        }
    }
    const char *problem = verdict == GC_BLOB_MISSING      ? "missing"
                          : verdict == GC_BLOB_UNREADABLE ? "unreadable"
                                                          : "damaged";
    if (verdict == GC_BLOB_MISSING)
        run->missing++;
    else if (verdict == GC_BLOB_UNREADABLE)
        run->unreadable++;
    else
        run->damaged++;

    yajl_gen gen = run->gen;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              admin_gen_str(gen, "problem", problem) && admin_gen_str(gen, "sha256", hex) &&
              admin_gen_str(gen, "path", path) && admin_gen_num(gen, "size", size_text);
    if (ok && (verdict == GC_BLOB_NOT_FILE || verdict == GC_BLOB_SIZE || verdict == GC_BLOB_SHA256))
        ok = admin_gen_str(gen, "reason", gc_verdict_name(verdict));
    if (ok && (verdict == GC_BLOB_SIZE || verdict == GC_BLOB_SHA256))
        ok = admin_gen_int(gen, "actual_size", (long long)actual_size);
    if (ok && verdict == GC_BLOB_SHA256)
        ok = admin_gen_str(gen, "actual_sha256", actual_hex);
    if (ok && verdict == GC_BLOB_UNREADABLE)
        ok = admin_gen_str(gen, "error", why);
    ok = ok && check_gen_files(run, page, hex) && yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}

/* Pass 1: every blobs row, page by page. */
static bool check_rows(check_run_t *run)
{
    char after[BLOB_HEX_LEN + 1] = "";
    for (;;) {
        arena_t *page = arena_create(0);
        if (!page)
            return admin_fail(run->adm, "out of memory");
        const char *params[] = {after};
        PGresult *res =
            admin_query_on(run->adm, page, "listing blobs",
                           "SELECT b.sha256, b.size,"
                           " (SELECT count(*) FROM network_files f WHERE f.sha256 = b.sha256)"
                           " FROM blobs b WHERE b.sha256 > $1 ORDER BY b.sha256 LIMIT " PAGE_ROWS,
                           1, params, PGRES_TUPLES_OK, NULL);
        bool ok = res != NULL;
        int rows = ok ? PQntuples(res) : 0;
        for (int i = 0; i < rows && ok; i++) {
            const char *hex = PQgetvalue(res, i, 0);
            ok = check_blob(run, page, hex, PQgetvalue(res, i, 1),
                            strtoll(PQgetvalue(res, i, 2), NULL, 10));
            snprintf(after, sizeof(after), "%s", hex);
        }
        arena_destroy(page);
        if (!ok)
            return false;
        if (rows == 0)
            return true;
    }
}

/* Pass 2: network_files rows without their blobs row, or with another size. */
static bool check_files(check_run_t *run)
{
    admin_t *adm = run->adm;
    PGresult *res =
        admin_query(adm, "checking network files",
                    "SELECT f.network_id, f.name, f.sha256, f.size, b.size FROM network_files f"
                    " LEFT JOIN blobs b ON b.sha256 = f.sha256"
                    " WHERE b.sha256 IS NULL OR b.size <> f.size ORDER BY f.network_id, f.name",
                    0, NULL, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = run->gen;
    for (int i = 0; i < PQntuples(res); i++) {
        bool no_row = PQgetisnull(res, i, 4);
        if (no_row)
            run->rows_without_blob++;
        else
            run->size_mismatch++;
        bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                  admin_gen_str(gen, "problem", no_row ? "row_without_blob" : "size_mismatch") &&
                  admin_gen_num(gen, "network_id", PQgetvalue(res, i, 0)) &&
                  admin_gen_str(gen, "name", PQgetvalue(res, i, 1)) &&
                  admin_gen_str(gen, "sha256", PQgetvalue(res, i, 2)) &&
                  admin_gen_num(gen, "size", PQgetvalue(res, i, 3)) &&
                  (no_row || admin_gen_num(gen, "blob_size", PQgetvalue(res, i, 4))) &&
                  yajl_gen_map_close(gen) == yajl_gen_status_ok;
        if (!admin_emit(adm, gen, ok))
            return false;
    }
    return true;
}

/* Names in the blob tree are anybody's bytes, JSON strings are UTF-8:
 * anything but printable ASCII is shown as '?'. */
static void printable(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
}

static const char *file_type(const struct stat *st)
{
    if (S_ISREG(st->st_mode))
        return "file";
    if (S_ISDIR(st->st_mode))
        return "directory";
    if (S_ISLNK(st->st_mode))
        return "symlink";
    return "other";
}

/* Pass 3, per directory of the blob tree: stray entries and orphans. */
static bool check_dir(void *ctx, const char *fan_out, const gc_entry_t *entries, size_t n)
{
    check_run_t *run = ctx;
    admin_t *adm = run->adm;
    yajl_gen gen = run->gen;
    arena_t *page = arena_create(0);
    if (!page)
        return admin_fail(adm, "out of memory");
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (entries[i].hex)
            continue;
        run->stray++;
        char *path =
            arena_printf(page, "%s/blobs/sha256/%s", adm->cfg.data_dir, entries[i].rel_path);
        if (!path) {
            ok = admin_fail(adm, "out of memory");
            break;
        }
        printable(path + strlen(path) - strlen(entries[i].rel_path));
        ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
             admin_gen_str(gen, "problem", "stray") && admin_gen_str(gen, "path", path) &&
             admin_gen_str(gen, "type", file_type(&entries[i].st)) &&
             yajl_gen_map_close(gen) == yajl_gen_status_ok;
        ok = admin_emit(adm, gen, ok);
    }
    size_t count = 0;
    char *names = ok ? names_array(page, entries, n, &count) : NULL;
    if (ok && !names)
        ok = admin_fail(adm, "out of memory");
    PGresult *res = NULL;
    if (ok && count > 0) {
        const char *params[] = {names};
        res = admin_query_on(adm, page, "looking up blob rows", SQL_WITHOUT_ROW, 1, params,
                             PGRES_TUPLES_OK, NULL);
        ok = res != NULL;
    }
    for (int i = 0; res && ok && i < PQntuples(res); i++) {
        const char *hex = PQgetvalue(res, i, 0);
        const gc_entry_t *e = find_entry(entries, n, hex);
        if (!e)
            continue;
        if (gc_is_young(&e->st, run->now, run->grace)) {
            run->young_orphans++; /* most likely a create in progress */
            continue;
        }
        run->orphans++;
        char *path = blob_file(adm, page, hex);
        ok = path && yajl_gen_map_open(gen) == yajl_gen_status_ok &&
             admin_gen_str(gen, "problem", "orphan") && admin_gen_str(gen, "sha256", hex) &&
             admin_gen_str(gen, "path", path) &&
             admin_gen_int(gen, "size", (long long)e->st.st_size) &&
             admin_gen_int(gen, "age_seconds", (long long)(run->now - e->st.st_mtime)) &&
             yajl_gen_map_close(gen) == yajl_gen_status_ok;
        ok = path && admin_emit(adm, gen, ok);
    }
    arena_destroy(page);
    return ok;
}

bool storage_check(admin_t *adm, char **args, int nargs)
{
    check_run_t run = {.adm = adm, .now = time(NULL), .grace = adm->cfg.gc_grace_seconds};
    if (!admin_parse_flag(adm, args, nargs, "--quick", &run.quick) || !store_present(adm))
        return false;
    run.gen = admin_gen_new(adm);
    if (!run.gen || !check_rows(&run) || !check_files(&run))
        return false;
    char why[512];
    bool stopped;
    if (!gc_walk_blobs(adm->cfg.data_dir, check_dir, &run, &stopped, why, sizeof(why)))
        return stopped ? false : admin_fail(adm, "%s", why);

    long long problems = check_problems(&run);
    yajl_gen gen = run.gen;
    bool ok =
        yajl_gen_map_open(gen) == yajl_gen_status_ok && admin_gen_int(gen, "blobs", run.blobs) &&
        admin_gen_int(gen, "bytes", run.bytes) &&
        admin_gen_int(gen, "unreferenced", run.unreferenced) &&
        admin_gen_int(gen, "missing", run.missing) && admin_gen_int(gen, "damaged", run.damaged) &&
        admin_gen_int(gen, "unreadable", run.unreadable) &&
        admin_gen_int(gen, "rows_without_blob", run.rows_without_blob) &&
        admin_gen_int(gen, "size_mismatch", run.size_mismatch) &&
        admin_gen_int(gen, "orphans", run.orphans) &&
        admin_gen_int(gen, "young_orphans", run.young_orphans) &&
        admin_gen_int(gen, "stray", run.stray) &&
        admin_gen_bool(gen, "sha256_verified", !run.quick) &&
        admin_gen_int(gen, "problems", problems) && yajl_gen_map_close(gen) == yajl_gen_status_ok;
    if (!admin_emit(adm, gen, ok))
        return false;
    if (problems > 0)
        return admin_fail(adm, "found %lld problem%s in the blob store (one JSON line each above)",
                          problems, problems == 1 ? "" : "s");
    return true;
}
