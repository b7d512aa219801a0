/* blob.h - the content-addressed blob store on the filesystem:
 *   <data_dir>/blobs/sha256/<first two hex digits>/<64 hex digits>
 *   <data_dir>/tmp/                 uploads in progress
 *
 * An upload streams into a temp file while its SHA-256 is computed
 * (libcrypto EVP); blob_upload_finish() flushes and fsyncs it; after the
 * caller has checked the content, blob_upload_commit() renames it into place
 * and fsyncs the directory (if the same content is already stored, the temp
 * file is dropped: the same bytes are stored once).
 *
 * Ownership: an upload registers a cleanup on the arena that closes and
 * unlinks its temp file, so a request that fails anywhere leaves no temp
 * file behind.  Committed blobs are never removed by the arena: only
 * `nnreg-admin gc` removes blobs, and only unreferenced ones older than a
 * grace period.
 *
 * Errors: 507 "insufficient_storage" when the filesystem is full (ENOSPC,
 * EDQUOT), 500 otherwise (logged with errno).
 */
#ifndef NNREG_STORE_BLOB_H
#define NNREG_STORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"

#define BLOB_HEX_LEN 64

typedef struct blob_upload blob_upload_t;

/* Creates <data_dir>/blobs/sha256 and <data_dir>/tmp if missing. */
bool blob_store_init(const char *data_dir, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

/* Opens a new temp file in <data_dir>/tmp.  NULL with err filled. */
blob_upload_t *blob_upload_begin(arena_t *arena, const char *data_dir, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Appends bytes (hashing them on the way). */
bool blob_upload_write(blob_upload_t *up, const void *data, size_t len, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Flushes, fsyncs and finalizes the hash.  After this, the accessors below
 * are valid and the temp file can be read (e.g. by libmagic, the graph
 * reader) at blob_upload_temp_path(). */
bool blob_upload_finish(blob_upload_t *up, nn_error_t *err) __attribute__((warn_unused_result));

const char *blob_upload_sha256(const blob_upload_t *up); /* 64 lowercase hex digits */
uint64_t blob_upload_size(const blob_upload_t *up);
const char *blob_upload_temp_path(const blob_upload_t *up);

/* Moves the finished temp file to its content address (atomic rename, then
 * directory fsync).  *created tells whether this call created the blob
 * (false: the content was already stored).  After commit the arena cleanup
 * no longer touches the blob. */
bool blob_upload_commit(blob_upload_t *up, bool *created, nn_error_t *err)
    __attribute__((warn_unused_result));

/* <data_dir>/blobs/sha256/ab/<hex> in arena memory; NULL on OOM or if hex
 * is not 64 lowercase hex digits. */
char *blob_path(arena_t *arena, const char *data_dir, const char *hex);

/* Whether hex is a well-formed blob name. */
bool blob_hex_valid(const char *hex);

/* Computes the SHA-256 of an existing file (for checks and the deployer).
 * out receives 64 hex digits and a NUL.  false with errno-based message. */
bool blob_file_sha256(const char *path, char out[BLOB_HEX_LEN + 1], uint64_t *size,
                      char *errbuf, size_t errlen) __attribute__((warn_unused_result));

#endif
