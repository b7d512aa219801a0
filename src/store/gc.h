/* gc.h - the filesystem side of blob store maintenance (`nnreg-admin gc`
 * and `nnreg-admin check`; the database side is admin/storage.c).
 *
 * Removing a blob safely while creates run.  A create first commits its
 * blob FILE (a rename into place, or, when the content is already stored,
 * a refresh of the existing file's mtime: blob_upload_commit) and only then
 * inserts the rows that reference it.  So a file whose mtime is younger
 * than the grace period may be about to be referenced and is never removed.
 * Judging the age and unlinking cannot be one step, hence:
 *
 *   1. gc_take_aside(): rename the blob to <data_dir>/tmp/gc-<hex> (atomic;
 *      the same filesystem, blob_store_init checks).  From here on a create
 *      finds no file at the address and stores its own copy there.
 *   2. lstat the file set aside (gc_aside_is_young).  A create that
 *      refreshed the old file before step 1 left a young mtime on it (the
 *      inode moved, its times with it): gc_put_back() and keep it.
 *   3. Only then unlink the file set aside (gc_discard).
 *
 * gc_put_back() never replaces a file: when a create stored the same
 * content meanwhile, the copy set aside is simply dropped.  A gc that dies
 * between 1 and 3 leaves tmp/gc-<hex>; gc_recover_aside() puts such files
 * back at the start of the next run (they are then judged again).  Only
 * one gc may run at a time (the caller holds a database lock), since
 * tmp/gc-<hex> is the same name for every gc.
 *
 * Ages are whole seconds of mtime: young means mtime > now - grace (a
 * file dated in the future is young).
 *
 * Errors: false with a one-line message naming the path and errno in
 * errbuf; nothing is exited or aborted. */
#ifndef NNREG_STORE_GC_H
#define NNREG_STORE_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "store/blob.h"

/* The prefix of blobs set aside in <data_dir>/tmp; the temp sweep leaves
 * these names to gc_recover_aside(). */
#define GC_ASIDE_PREFIX "gc-"

/* Whether a file with this mtime is younger than grace seconds at now. */
bool gc_is_young(const struct stat *st, time_t now, long long grace);

/* One entry of the blob tree <data_dir>/blobs/sha256. */
typedef struct gc_entry {
    const char *rel_path; /* relative to blobs/sha256: "ab/ab12..." or "junk" */
    const char *hex;      /* the blob name when the entry is a well-named regular
                             file in its own fan-out directory, NULL otherwise
                             (a stray entry) */
    struct stat st;       /* lstat of the entry */
} gc_entry_t;

/* Called once per directory of the tree with its entries (an array of n,
 * valid during the call only); fan_out is the two hex digits, or ""
 * for the entries directly under blobs/sha256 that are not fan-out
 * directories (all stray).  Returning false stops the walk, which then
 * returns false without touching errbuf (the callback keeps its own
 * error). */
typedef bool (*gc_dir_fn)(void *ctx, const char *fan_out, const gc_entry_t *entries, size_t n);

/* Walks <data_dir>/blobs/sha256 in name order, fan-out directory by
 * fan-out directory.  Entries that vanish while the walk runs (a
 * concurrent gc or create) are skipped.  *stopped (may be NULL) tells that
 * fn returned false. */
bool gc_walk_blobs(const char *data_dir, gc_dir_fn fn, void *ctx, bool *stopped, char *errbuf,
                   size_t errlen) __attribute__((warn_unused_result));

/* Step 1: renames <data_dir>/blobs/sha256/ab/<hex> to <data_dir>/tmp/gc-<hex>
 * and writes that path into aside (size asidelen).  *missing tells that
 * there was no file (nothing moved, true is returned). */
bool gc_take_aside(const char *data_dir, const char *hex, char *aside, size_t asidelen,
                   bool *missing, char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* Step 2: lstat of the file set aside; *young per gc_is_young.  On error
 * (the file vanished) false. */
bool gc_aside_is_young(const char *aside, time_t now, long long grace, bool *young, struct stat *st,
                       char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* Moves the file set aside back to its address without replacing a file
 * stored there meanwhile (the same content: the copy aside is dropped). */
bool gc_put_back(const char *data_dir, const char *hex, const char *aside, char *errbuf,
                 size_t errlen) __attribute__((warn_unused_result));

/* Step 3: unlinks the file set aside. */
bool gc_discard(const char *aside, char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/* Puts back every tmp/gc-<hex> left by a gc that died (or drops it when
 * its address is taken); *restored counts them.  With dry_run only counts. */
bool gc_recover_aside(const char *data_dir, bool dry_run, long long *restored, char *errbuf,
                      size_t errlen) __attribute__((warn_unused_result));

/* Removes the regular files of <data_dir>/tmp older than grace (uploads
 * that died without cleaning up), except gc-* files.  Counts removed (or,
 * with dry_run, removable) files and bytes, and young ones kept. */
bool gc_sweep_temp(const char *data_dir, time_t now, long long grace, bool dry_run,
                   long long *removed, long long *bytes, long long *kept, char *errbuf,
                   size_t errlen) __attribute__((warn_unused_result));

/* The verdict on one stored blob. */
typedef enum {
    GC_BLOB_OK,
    GC_BLOB_MISSING,    /* no file at the address */
    GC_BLOB_NOT_FILE,   /* something else than a regular file there */
    GC_BLOB_SIZE,       /* size differs from the recorded one */
    GC_BLOB_SHA256,     /* content does not hash to its name */
    GC_BLOB_UNREADABLE, /* stat or read failed (errbuf says why) */
} gc_verdict_t;

/* A stable lowercase name for a verdict ("missing", "size", ...). */
const char *gc_verdict_name(gc_verdict_t verdict);

/* Checks the blob hex of the given size at path: it exists, is a regular
 * file of that size and, when hash, its SHA-256 is hex.  *actual_size and
 * actual_hex (64 digits or "") tell what was found. */
gc_verdict_t gc_verify_blob(const char *path, const char *hex, uint64_t size, bool hash,
                            uint64_t *actual_size, char actual_hex[BLOB_HEX_LEN + 1], char *errbuf,
                            size_t errlen);

#endif
