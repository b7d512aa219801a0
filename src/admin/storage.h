/* storage.h - blob store maintenance, the database side: `nnreg-admin gc`
 * and `nnreg-admin check` (the filesystem side is store/gc.h, which also
 * explains why a blob is moved aside before it is removed).
 *
 * Command handlers of the table in main_admin.c: args are the command's
 * arguments, options included (main has checked that each option is one
 * the command declares).  Output: JSON lines on stdout, the summary last.
 * false with adm->err set on failure, and for check when it found a
 * problem (so that the exit status is 1). */
#ifndef NNREG_ADMIN_STORAGE_H
#define NNREG_ADMIN_STORAGE_H

#include <stdbool.h>

#include "admin/admin.h"

/* gc [--dry-run]: removes what no network references and what is older
 * than cfg.gc_grace_seconds:
 *   - blobs rows no network_files row references (by create_date), with
 *     their files (by mtime), one transaction per blob that locks the row
 *     (FOR UPDATE) and checks the references again before deleting it;
 *   - blob files without a blobs row (a create that died between placing
 *     its files and committing its rows), by mtime;
 *   - files in <data_dir>/tmp (uploads that died), by mtime.
 * One gc at a time per database (a session advisory lock; a second one
 * fails at once).  Prints {"blobs_removed", "bytes_freed", "rows_removed",
 * "temp_removed", "kept_young", "dry_run"}; with --dry-run nothing is
 * changed and the counts say what would be removed. */
bool storage_gc(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* check [--quick]: reads the whole store and reports, one JSON object per
 * problem ({"problem": ...}): blobs missing on disk, damaged ones (not a
 * regular file, size or SHA-256 not the recorded ones; --quick skips the
 * SHA-256), unreadable ones, network_files rows without a blobs row or
 * with another size, blob files without a row older than the grace period
 * (orphans) and stray entries in the blob tree.  Then a summary line.
 * Fails (exit 1) when a problem was found. */
bool storage_check(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

#endif
