/* blob.c - the content-addressed blob store (see blob.h).
 *
 * Durability order: data written and fsync'ed in the temp file, then the
 * rename into place, then an fsync of the fan-out directory so that the new
 * name survives a crash.  Only after that may the database reference the
 * blob.  Both tmp/ and blobs/ live under the same data directory, so the
 * rename never crosses filesystems (blob_store_init checks this once).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, renameat2, sync_file_range */
#endif

#include "store/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/log.h"

/* Uploads arrive as multipart pieces of a few KiB; collecting them into one
 * buffer of this size keeps the write() count low.  The buffer is malloc'ed
 * per upload and freed at finish, so a request with many files does not keep
 * one buffer per file in its arena. */
#define BLOB_WRITE_BUFFER (256 * 1024)
#define BLOB_READ_BUFFER (256 * 1024)
/* Write-behind: every this many bytes written, the kernel is asked to start
 * writing them to disk (sync_file_range, asynchronous).  The disk then works
 * while the worker reads, parses and hashes the rest of the body, and the
 * fsync before the rename finds little left to do: an upload's time becomes
 * about the larger of receiving and writing rather than their sum
 * (docs/performance.md). */
#define BLOB_WRITE_BEHIND (8 * 1024 * 1024)

/* Directories are created under the operator's umask; the temp directory is
 * private because it holds uploads that are not checked yet. */
#define BLOB_DIR_MODE 0755
#define BLOB_TMP_DIR_MODE 0700
/* A stored blob never changes (its name is its content): read-only. */
#define BLOB_FILE_MODE 0444

struct blob_upload {
    arena_t *arena;
    const char *data_dir;
    char *temp_path;  /* <data_dir>/tmp/upload-XXXXXX once created */
    int fd;           /* -1 once closed */
    bool file_exists; /* the temp file is ours to unlink */
    bool finished;
    bool committed;
    bool failed; /* a write failed: the temp file content is unusable */
    EVP_MD_CTX *md;
    unsigned char *buffer; /* BLOB_WRITE_BUFFER bytes, NULL after finish */
    size_t buffered;
    uint64_t size;
    uint64_t written;  /* bytes written to fd */
    uint64_t flushing; /* bytes whose writeback was started */
    char hex[BLOB_HEX_LEN + 1];
};

/* ---- errors ---------------------------------------------------------- */

static bool errno_is_full(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

/* Turns a failed system call into the request's error: 507 when the disk
 * (or the quota) is full, since the client can retry later and nothing is
 * wrong with its upload; 500 otherwise.  The path and errno go to the log
 * only, never to the client. */
static bool io_fail(nn_error_t *err, int e, const char *what, const char *path)
{
    if (errno_is_full(e)) {
        log_warn("blob store: %s %s: %s", what, path, strerror(e));
        return nn_error_set(err, 507, "insufficient_storage",
                            "the server's data directory is full, so the upload could not be "
                            "stored; retry later or ask the operator to free space");
    }
    log_error("blob store: %s %s: %s", what, path, strerror(e));
    return nn_error_internal(err, "could not store the uploaded file");
}

/* ---- small filesystem helpers --------------------------------------- */

/* mkdir -p: creates every missing component.  EEXIST is success as long as
 * the thing is a directory, so concurrent workers creating the same fan-out
 * directory do not fail each other.  *created (may be NULL) tells whether the
 * last component was created by this call. */
static bool mkdir_p(const char *path, mode_t mode, bool *created, int *err_out)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (created)
        *created = false;
    if (len == 0 || len >= sizeof(tmp)) {
        *err_out = ENAMETOOLONG;
        return false;
    }
    memcpy(tmp, path, len + 1);
    while (len > 1 && tmp[len - 1] == '/')
        tmp[--len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, i == len ? mode : BLOB_DIR_MODE) == 0) {
            if (i == len && created)
                *created = true;
        } else if (errno == EEXIST) {
            struct stat st;
            if (stat(tmp, &st) != 0) {
                *err_out = errno;
                return false;
            }
            if (!S_ISDIR(st.st_mode)) {
                *err_out = ENOTDIR;
                return false;
            }
        } else {
            *err_out = errno;
            return false;
        }
        tmp[i] = saved;
    }
    return true;
}

static bool fsync_dir(const char *path, int *err_out)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err_out = errno;
        return false;
    }
    bool ok = true;
    /* Some filesystems cannot fsync a directory (EINVAL); their metadata is
     * then as durable as it gets and the rename stands. */
    if (fsync(fd) != 0 && errno != EINVAL) {
        *err_out = errno;
        ok = false;
    }
    close(fd);
    return ok;
}

/* Writes all of len bytes: retries on EINTR and continues after short
 * writes.  false with errno set. */
static bool write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (n == 0) { /* should not happen for a regular file */
            errno = EIO;
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static void hex_encode(const unsigned char *digest, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* ---- store ----------------------------------------------------------- */

bool blob_store_init(const char *data_dir, char *errbuf, size_t errlen)
{
    char blobs[4096], tmp[4096];
    int e = 0;
    if ((size_t)snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", data_dir) >= sizeof(blobs) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/tmp", data_dir) >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    if (!mkdir_p(blobs, BLOB_DIR_MODE, NULL, &e)) {
        snprintf(errbuf, errlen, "cannot create %s: %s", blobs, strerror(e));
        return false;
    }
    if (!mkdir_p(tmp, BLOB_TMP_DIR_MODE, NULL, &e)) {
        snprintf(errbuf, errlen, "cannot create %s: %s", tmp, strerror(e));
        return false;
    }
    /* The commit is a rename from tmp/ to blobs/: it only works (and is only
     * atomic) within one filesystem.  Say so at start-up rather than failing
     * every upload with EXDEV. */
    struct stat st_blobs, st_tmp;
    if (stat(blobs, &st_blobs) != 0 || stat(tmp, &st_tmp) != 0) {
        snprintf(errbuf, errlen, "cannot stat the data directory %s: %s", data_dir,
                 strerror(errno));
        return false;
    }
    if (st_blobs.st_dev != st_tmp.st_dev) {
        snprintf(errbuf, errlen,
                 "%s and %s are on different filesystems; they must share one so that "
                 "uploads can be renamed into place",
                 tmp, blobs);
        return false;
    }
    return true;
}

/* Arena cleanup: whatever state the upload is in, release what it holds and
 * drop the temp file unless it became a blob. */
static void upload_cleanup(void *data)
{
    blob_upload_t *up = data;
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
    if (up->file_exists && !up->committed) {
        if (unlink(up->temp_path) != 0 && errno != ENOENT)
            log_warn("blob store: cannot remove temp file %s: %s", up->temp_path, strerror(errno));
        up->file_exists = false;
    }
    EVP_MD_CTX_free(up->md);
    up->md = NULL;
    free(up->buffer);
    up->buffer = NULL;
}

blob_upload_t *blob_upload_begin(arena_t *arena, const char *data_dir, nn_error_t *err)
{
    blob_upload_t *up = arena_calloc(arena, 1, sizeof(*up));
    if (!up) {
        nn_error_oom(err);
        return NULL;
    }
    up->arena = arena;
    up->fd = -1;
    up->data_dir = arena_strdup(arena, data_dir);
    up->temp_path = arena_printf(arena, "%s/tmp/upload-XXXXXX", data_dir);
    if (!up->data_dir || !up->temp_path) {
        nn_error_oom(err);
        return NULL;
    }
    /* Registered before anything is acquired, so that every later failure
     * (including in this function) is released by the arena. */
    if (!arena_cleanup_add(arena, upload_cleanup, up)) {
        nn_error_oom(err);
        return NULL;
    }
    up->md = EVP_MD_CTX_new();
    up->buffer = malloc(BLOB_WRITE_BUFFER);
    if (!up->md || !up->buffer) {
        nn_error_oom(err);
        return NULL;
    }
    if (EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1) {
        log_error("blob store: EVP_DigestInit_ex(sha256) failed");
        nn_error_internal(err, "could not start hashing the uploaded file");
        return NULL;
    }

    int fd = mkostemp(up->temp_path, O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* tmp/ vanished since start-up (an operator cleaning up): recreate
         * it rather than failing every upload until a restart. */
        char *tmp_dir = arena_printf(arena, "%s/tmp", data_dir);
        int e = 0;
        if (!tmp_dir) {
            nn_error_oom(err);
            return NULL;
        }
        if (!mkdir_p(tmp_dir, BLOB_TMP_DIR_MODE, NULL, &e)) {
            io_fail(err, e, "cannot create", tmp_dir);
            return NULL;
        }
        memcpy(up->temp_path + strlen(up->temp_path) - 6, "XXXXXX", 6);
        fd = mkostemp(up->temp_path, O_CLOEXEC);
    }
    if (fd < 0) {
        io_fail(err, errno, "cannot create temp file", up->temp_path);
        return NULL;
    }
    up->fd = fd;
    up->file_exists = true;
    return up;
}

/* Writes out the buffered bytes. */
/* Writes to the temp file and starts the writeback of what is complete. */
static bool upload_write_out(blob_upload_t *up, const unsigned char *data, size_t len,
                             nn_error_t *err)
{
    if (!write_all(up->fd, data, len)) {
        up->failed = true;
        return io_fail(err, errno, "cannot write", up->temp_path);
    }
    up->written += len;
    if (up->written - up->flushing >= BLOB_WRITE_BEHIND) {
        /* Only a hint: where it is not supported (ENOSYS, some
         * filesystems) the fsync at the end does all the work, as before. */
        (void)sync_file_range(up->fd, (off_t)up->flushing, (off_t)(up->written - up->flushing),
                              SYNC_FILE_RANGE_WRITE);
        up->flushing = up->written;
    }
    return true;
}

static bool upload_flush(blob_upload_t *up, nn_error_t *err)
{
    if (up->buffered == 0)
        return true;
    if (!upload_write_out(up, up->buffer, up->buffered, err))
        return false;
    up->buffered = 0;
    return true;
}

static bool upload_usable(blob_upload_t *up, bool want_finished, nn_error_t *err)
{
    if (up->failed)
        return nn_error_internal(err, "the upload failed earlier and cannot be used");
    if (up->finished != want_finished || up->committed)
        return nn_error_internal(err, "blob upload used out of order");
    return true;
}

bool blob_upload_write(blob_upload_t *up, const void *data, size_t len, nn_error_t *err)
{
    if (!upload_usable(up, false, err))
        return false;
    if (len == 0)
        return true;
    if (up->size > UINT64_MAX - len) {
        up->failed = true;
        return nn_error_internal(err, "uploaded file size overflows");
    }
    if (EVP_DigestUpdate(up->md, data, len) != 1) {
        up->failed = true;
        log_error("blob store: EVP_DigestUpdate failed");
        return nn_error_internal(err, "could not hash the uploaded file");
    }
    up->size += len;

    const unsigned char *p = data;
    /* Top up a partly filled buffer first, so bytes stay in order. */
    if (up->buffered > 0) {
        size_t room = BLOB_WRITE_BUFFER - up->buffered;
        size_t n = len < room ? len : room;
        memcpy(up->buffer + up->buffered, p, n);
        up->buffered += n;
        p += n;
        len -= n;
        if (up->buffered == BLOB_WRITE_BUFFER && !upload_flush(up, err))
            return false;
    }
    /* Whole buffers' worth straight from the caller: no copy needed. */
    if (len >= BLOB_WRITE_BUFFER) {
        size_t direct = len - len % BLOB_WRITE_BUFFER;
        if (!upload_write_out(up, p, direct, err))
            return false;
        p += direct;
        len -= direct;
    }
    if (len > 0) {
        memcpy(up->buffer + up->buffered, p, len);
        up->buffered += len;
    }
    return true;
}

bool blob_upload_finish(blob_upload_t *up, nn_error_t *err)
{
    if (!upload_usable(up, false, err))
        return false;
    if (!upload_flush(up, err))
        return false;
    if (fchmod(up->fd, BLOB_FILE_MODE) != 0) {
        up->failed = true;
        return io_fail(err, errno, "cannot chmod", up->temp_path);
    }
    /* fsync before the rename: otherwise a crash could leave a blob whose
     * name promises content the disk never got. */
    if (fsync(up->fd) != 0) {
        up->failed = true;
        return io_fail(err, errno, "cannot fsync", up->temp_path);
    }
    int fd = up->fd;
    up->fd = -1;
    /* close() can report a deferred write error (NFS): it counts. */
    if (close(fd) != 0 && errno != EINTR) {
        up->failed = true;
        return io_fail(err, errno, "cannot close", up->temp_path);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_DigestFinal_ex(up->md, digest, &digest_len) != 1 || digest_len != BLOB_HEX_LEN / 2) {
        up->failed = true;
        log_error("blob store: EVP_DigestFinal_ex failed");
        return nn_error_internal(err, "could not hash the uploaded file");
    }
    hex_encode(digest, digest_len, up->hex);
    EVP_MD_CTX_free(up->md);
    up->md = NULL;
    free(up->buffer);
    up->buffer = NULL;
    up->finished = true;
    return true;
}

const char *blob_upload_sha256(const blob_upload_t *up)
{
    return up->hex;
}

uint64_t blob_upload_size(const blob_upload_t *up)
{
    return up->size;
}

const char *blob_upload_temp_path(const blob_upload_t *up)
{
    return up->temp_path;
}

/* Places the temp file at target without ever replacing an existing file.
 * *exists tells that the target was already there (nothing moved). */
static bool rename_noreplace(const char *from, const char *to, bool *exists, int *err_out)
{
    *exists = false;
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return true;
    if (errno == EEXIST) {
        *exists = true;
        return true;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        *err_out = errno;
        return false;
    }
    /* The filesystem has no RENAME_NOREPLACE: check, then rename.  Two
     * workers storing the same content may both rename; that is harmless,
     * since the bytes are identical. */
    struct stat st;
    if (stat(to, &st) == 0) {
        *exists = true;
        return true;
    }
    if (errno != ENOENT) {
        *err_out = errno;
        return false;
    }
    if (rename(from, to) != 0) {
        *err_out = errno;
        return false;
    }
    return true;
}

bool blob_upload_commit(blob_upload_t *up, bool *created, nn_error_t *err)
{
    *created = false;
    if (!upload_usable(up, true, err))
        return false;
    char *target = blob_path(up->arena, up->data_dir, up->hex);
    char *fanout = arena_printf(up->arena, "%s/blobs/sha256/%.2s", up->data_dir, up->hex);
    char *parent = arena_printf(up->arena, "%s/blobs/sha256", up->data_dir);
    if (!target || !fanout || !parent)
        return nn_error_oom(err);

    int e = 0;
    bool dir_created = false;
    if (!mkdir_p(fanout, BLOB_DIR_MODE, &dir_created, &e))
        return io_fail(err, e, "cannot create", fanout);
    /* A new fan-out directory is itself a new name in its parent: make that
     * durable too, or the blob could vanish with its directory. */
    if (dir_created && !fsync_dir(parent, &e))
        return io_fail(err, e, "cannot fsync", parent);

    bool exists = false;
    if (!rename_noreplace(up->temp_path, target, &exists, &e))
        return io_fail(err, e, "cannot rename into", target);

    if (exists) {
        /* Same name, so same content -- unless the stored copy was damaged
         * (truncated by hand, disk trouble), or `nnreg-admin gc` removed it
         * a moment ago.  Either way our verified copy takes its place. */
        bool replace = false;
        struct stat st;
        if (stat(target, &st) != 0) {
            if (errno != ENOENT)
                return io_fail(err, errno, "cannot stat", target);
            replace = true;
        } else if ((uint64_t)st.st_size != up->size) {
            log_warn("blob store: %s has %lld bytes, expected %llu; replacing it", target,
                     (long long)st.st_size, (unsigned long long)up->size);
            replace = true;
        } else if (utimensat(AT_FDCWD, target, NULL, 0) != 0) {
            /* gc removes only unreferenced blobs older than its grace
             * period: refreshing the time keeps the blob this request is
             * about to reference out of its reach until the row exists. */
            if (errno == ENOENT)
                replace = true;
            else
                log_warn("blob store: cannot refresh the time of %s: %s", target, strerror(errno));
        }
        if (replace) {
            if (rename(up->temp_path, target) != 0)
                return io_fail(err, errno, "cannot rename into", target);
            exists = false;
        } else if (unlink(up->temp_path) != 0 && errno != ENOENT) {
            log_warn("blob store: cannot remove temp file %s: %s", up->temp_path, strerror(errno));
        }
    }
    up->file_exists = false; /* renamed or removed: nothing left to clean */

    if (!exists && !fsync_dir(fanout, &e)) {
        /* The blob is in place but maybe not durable; report it, the caller
         * will not reference it (gc removes it later if unreferenced). */
        return io_fail(err, e, "cannot fsync", fanout);
    }
    up->committed = true;
    *created = !exists;
    (void)arena_cleanup_cancel(up->arena, upload_cleanup, up);
    return true;
}

bool blob_hex_valid(const char *hex)
{
    size_t i = 0;
    for (; hex[i]; i++) {
        if (i >= BLOB_HEX_LEN)
            return false;
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return i == BLOB_HEX_LEN;
}

char *blob_path(arena_t *arena, const char *data_dir, const char *hex)
{
    if (!blob_hex_valid(hex))
        return NULL;
    return arena_printf(arena, "%s/blobs/sha256/%.2s/%s", data_dir, hex, hex);
}

bool blob_file_sha256(const char *path, char out[BLOB_HEX_LEN + 1], uint64_t *size, char *errbuf,
                      size_t errlen)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = false;
    uint64_t total = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *chunk = malloc(BLOB_READ_BUFFER);
    if (!md || !chunk) {
        snprintf(errbuf, errlen, "out of memory hashing %s", path);
        goto out;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        snprintf(errbuf, errlen, "cannot start SHA-256 for %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, BLOB_READ_BUFFER);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(md, chunk, (size_t)n) != 1) {
            snprintf(errbuf, errlen, "SHA-256 failed for %s", path);
            goto out;
        }
        total += (uint64_t)n;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_DigestFinal_ex(md, digest, &digest_len) != 1 || digest_len != BLOB_HEX_LEN / 2) {
        snprintf(errbuf, errlen, "SHA-256 failed for %s", path);
        goto out;
    }
    hex_encode(digest, digest_len, out);
    if (size)
        *size = total;
    ok = true;
out:
    free(chunk);
    EVP_MD_CTX_free(md);
    close(fd);
    return ok;
}
