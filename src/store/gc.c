/* gc.c - the filesystem side of blob store maintenance (see gc.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2 */
#endif

#include "store/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GC_PATH_MAX 4096

bool gc_is_young(const struct stat *st, time_t now, long long grace)
{
    /* In long long: a time_t minus a grace of years cannot overflow. */
    return (long long)st->st_mtime > (long long)now - grace;
}

/* ---- directory listings ------------------------------------------------- */

/* The names of a directory, sorted, without "." and "..". */
typedef struct name_list {
    char **names;
    size_t n, cap;
} name_list_t;

static void names_free(name_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->names[i]);
    free(list->names);
    list->names = NULL;
    list->n = list->cap = 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists path into list.  *gone tells the directory does not exist (an
 * empty list, true returned) when gone is not NULL; otherwise ENOENT is an
 * error. */
static bool names_read(const char *path, name_list_t *list, bool *gone, char *errbuf, size_t errlen)
{
    list->names = NULL;
    list->n = list->cap = 0;
    if (gone)
        *gone = false;
    DIR *dir = opendir(path);
    if (!dir) {
        if (errno == ENOENT && gone) {
            *gone = true;
            return true;
        }
        snprintf(errbuf, errlen, "cannot open the directory %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = true;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno) {
                snprintf(errbuf, errlen, "cannot read the directory %s: %s", path, strerror(errno));
                ok = false;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (list->n == list->cap) {
            size_t cap = list->cap ? list->cap * 2 : 64;
            char **grown = realloc(list->names, cap * sizeof(*grown));
            if (!grown) {
                snprintf(errbuf, errlen, "out of memory listing %s", path);
                ok = false;
                break;
            }
            list->names = grown;
            list->cap = cap;
        }
        char *name = strdup(de->d_name);
        if (!name) {
            snprintf(errbuf, errlen, "out of memory listing %s", path);
            ok = false;
            break;
        }
        list->names[list->n++] = name;
    }
    closedir(dir);
    if (!ok) {
        names_free(list);
        return false;
    }
    if (list->n > 1)
        qsort(list->names, list->n, sizeof(*list->names), compare_names);
    return true;
}

static bool is_fan_out_name(const char *name)
{
    return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

/* ---- walking the blob tree ---------------------------------------------- */

/* The entries of one directory as handed to the callback. */
typedef struct entry_list {
    gc_entry_t *entries;
    size_t n;
} entry_list_t;

static void entries_free(entry_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free((char *)list->entries[i].rel_path);
    free(list->entries);
    list->entries = NULL;
    list->n = 0;
}

/* Adds rel_path (copied) with its lstat; when blob, the blob name starts
 * at name_offset in rel_path.  false when full or out of memory. */
static bool entries_add(entry_list_t *list, size_t cap, const char *rel_path, const struct stat *st,
                        bool blob, size_t name_offset)
{
    if (list->n >= cap)
        return false;
    char *copy = strdup(rel_path);
    if (!copy)
        return false;
    gc_entry_t *e = &list->entries[list->n++];
    e->rel_path = copy;
    e->hex = blob ? copy + name_offset : NULL;
    e->st = *st;
    return true;
}

static bool walk_fan_out(const char *root, const char *fan_out, gc_dir_fn fn, void *ctx,
                         bool *stopped, char *errbuf, size_t errlen)
{
    char dir_path[GC_PATH_MAX];
    if ((size_t)snprintf(dir_path, sizeof(dir_path), "%s/%s", root, fan_out) >= sizeof(dir_path)) {
        snprintf(errbuf, errlen, "path too long under %s", root);
        return false;
    }
    name_list_t names;
    bool gone;
    if (!names_read(dir_path, &names, &gone, errbuf, errlen))
        return false;
    if (gone || names.n == 0) {
        names_free(&names);
        return true;
    }
    entry_list_t list = {calloc(names.n, sizeof(gc_entry_t)), 0};
    if (!list.entries) {
        names_free(&names);
        snprintf(errbuf, errlen, "out of memory listing %s", dir_path);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < names.n && ok; i++) {
        char path[GC_PATH_MAX], rel[GC_PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir_path, names.names[i]) >=
                sizeof(path) ||
            (size_t)snprintf(rel, sizeof(rel), "%s/%s", fan_out, names.names[i]) >= sizeof(rel)) {
            snprintf(errbuf, errlen, "path too long under %s", dir_path);
            ok = false;
            break;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            if (errno == ENOENT) /* removed meanwhile */
                continue;
            snprintf(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
            ok = false;
            break;
        }
        bool blob = S_ISREG(st.st_mode) && blob_hex_valid(names.names[i]) &&
                    strncmp(names.names[i], fan_out, 2) == 0;
        if (!entries_add(&list, names.n, rel, &st, blob, strlen(fan_out) + 1)) {
            snprintf(errbuf, errlen, "out of memory listing %s", dir_path);
            ok = false;
        }
    }
    names_free(&names);
    if (ok && list.n > 0 && !fn(ctx, fan_out, list.entries, list.n)) {
        if (stopped)
            *stopped = true;
        ok = false;
    }
    entries_free(&list);
    return ok;
}

bool gc_walk_blobs(const char *data_dir, gc_dir_fn fn, void *ctx, bool *stopped, char *errbuf,
                   size_t errlen)
{
    if (stopped)
        *stopped = false;
    char root[GC_PATH_MAX];
    if ((size_t)snprintf(root, sizeof(root), "%s/blobs/sha256", data_dir) >= sizeof(root)) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    name_list_t names;
    if (!names_read(root, &names, NULL, errbuf, errlen))
        return false;

    /* Entries directly under the root that are not fan-out directories:
     * all stray, handed over first in one call. */
    entry_list_t strays = {calloc(names.n ? names.n : 1, sizeof(gc_entry_t)), 0};
    bool *is_fan_out = calloc(names.n ? names.n : 1, sizeof(bool));
    bool ok = strays.entries && is_fan_out;
    if (!ok)
        snprintf(errbuf, errlen, "out of memory listing %s", root);
    for (size_t i = 0; i < names.n && ok; i++) {
        char path[GC_PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, names.names[i]) >= sizeof(path)) {
            snprintf(errbuf, errlen, "path too long under %s", root);
            ok = false;
            break;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            if (errno == ENOENT)
                continue;
            snprintf(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
            ok = false;
            break;
        }
        if (S_ISDIR(st.st_mode) && is_fan_out_name(names.names[i]))
            is_fan_out[i] = true;
        else if (!entries_add(&strays, names.n, names.names[i], &st, false, 0)) {
            snprintf(errbuf, errlen, "out of memory listing %s", root);
            ok = false;
        }
    }
    if (ok && strays.n > 0 && !fn(ctx, "", strays.entries, strays.n)) {
        if (stopped)
            *stopped = true;
        ok = false;
    }
    for (size_t i = 0; i < names.n && ok; i++)
        if (is_fan_out[i])
            ok = walk_fan_out(root, names.names[i], fn, ctx, stopped, errbuf, errlen);
    entries_free(&strays);
    free(is_fan_out);
    names_free(&names);
    return ok;
}

/* ---- removing one blob -------------------------------------------------- */

static bool blob_address(const char *data_dir, const char *hex, char *out, size_t outlen,
                         char *errbuf, size_t errlen)
{
    if (!blob_hex_valid(hex)) {
        snprintf(errbuf, errlen, "\"%.70s\" is not a blob name", hex);
        return false;
    }
    if ((size_t)snprintf(out, outlen, "%s/blobs/sha256/%.2s/%s", data_dir, hex, hex) >= outlen) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    return true;
}

bool gc_take_aside(const char *data_dir, const char *hex, char *aside, size_t asidelen,
                   bool *missing, char *errbuf, size_t errlen)
{
    *missing = false;
    char path[GC_PATH_MAX];
    if (!blob_address(data_dir, hex, path, sizeof(path), errbuf, errlen))
        return false;
    if ((size_t)snprintf(aside, asidelen, "%s/tmp/" GC_ASIDE_PREFIX "%s", data_dir, hex) >=
        asidelen) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    if (rename(path, aside) == 0)
        return true;
    int e = errno;
    if (e == ENOENT) {
        /* Either the blob is missing or tmp/ is: only the first is fine. */
        char tmp[GC_PATH_MAX];
        struct stat st;
        snprintf(tmp, sizeof(tmp), "%s/tmp", data_dir);
        if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(errbuf, errlen,
                     "%s is missing; it is created when nnreg-fcgi starts, or create it "
                     "(mode 0700, owned by the service user)",
                     tmp);
            return false;
        }
        *missing = true;
        return true;
    }
    snprintf(errbuf, errlen, "cannot move %s aside to %s: %s", path, aside, strerror(e));
    return false;
}

bool gc_aside_is_young(const char *aside, time_t now, long long grace, bool *young, struct stat *st,
                       char *errbuf, size_t errlen)
{
    if (lstat(aside, st) != 0) {
        snprintf(errbuf, errlen, "cannot stat %s: %s", aside, strerror(errno));
        return false;
    }
    *young = gc_is_young(st, now, grace);
    return true;
}

/* Links from to to without replacing anything: *exists tells that to was
 * already there. */
static bool move_noreplace(const char *from, const char *to, bool *exists, int *err)
{
    *exists = false;
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return true;
    if (errno == EEXIST) {
        *exists = true;
        return true;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        *err = errno;
        return false;
    }
    /* No RENAME_NOREPLACE on this filesystem: link(2) never replaces. */
    if (link(from, to) != 0) {
        if (errno == EEXIST) {
            *exists = true;
            return true;
        }
        *err = errno;
        return false;
    }
    if (unlink(from) != 0 && errno != ENOENT) {
        *err = errno;
        return false;
    }
    return true;
}

bool gc_put_back(const char *data_dir, const char *hex, const char *aside, char *errbuf,
                 size_t errlen)
{
    char path[GC_PATH_MAX], fan_out[GC_PATH_MAX];
    if (!blob_address(data_dir, hex, path, sizeof(path), errbuf, errlen))
        return false;
    snprintf(fan_out, sizeof(fan_out), "%s/blobs/sha256/%.2s", data_dir, hex);
    bool exists;
    int e = 0;
    if (!move_noreplace(aside, path, &exists, &e)) {
        snprintf(errbuf, errlen, "cannot put %s back to %s: %s; move it there by hand", aside, path,
                 strerror(e));
        return false;
    }
    if (exists) {
        /* A create stored the same content meanwhile. */
        if (unlink(aside) != 0 && errno != ENOENT) {
            snprintf(errbuf, errlen, "cannot remove %s: %s", aside, strerror(errno));
            return false;
        }
        return true;
    }
    /* The blob may be referenced: make its return durable. */
    int fd = open(fan_out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL) {
            snprintf(errbuf, errlen, "cannot fsync %s: %s", fan_out, strerror(errno));
            close(fd);
            return false;
        }
        close(fd);
    }
    return true;
}

bool gc_discard(const char *aside, char *errbuf, size_t errlen)
{
    if (unlink(aside) != 0 && errno != ENOENT) {
        snprintf(errbuf, errlen, "cannot remove %s: %s", aside, strerror(errno));
        return false;
    }
    return true;
}

/* ---- the temp directory ------------------------------------------------- */

bool gc_recover_aside(const char *data_dir, bool dry_run, long long *restored, char *errbuf,
                      size_t errlen)
{
    *restored = 0;
    char tmp[GC_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp", data_dir) >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    name_list_t names;
    bool gone;
    if (!names_read(tmp, &names, &gone, errbuf, errlen))
        return false;
    bool ok = true;
    const size_t prefix = strlen(GC_ASIDE_PREFIX);
    for (size_t i = 0; i < names.n && ok; i++) {
        const char *name = names.names[i];
        if (strncmp(name, GC_ASIDE_PREFIX, prefix) != 0 || !blob_hex_valid(name + prefix))
            continue;
        char aside[GC_PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(aside, sizeof(aside), "%s/%s", tmp, name) >= sizeof(aside) ||
            lstat(aside, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!dry_run)
            ok = gc_put_back(data_dir, name + prefix, aside, errbuf, errlen);
        if (ok)
            (*restored)++;
    }
    names_free(&names);
    return ok;
}

bool gc_sweep_temp(const char *data_dir, time_t now, long long grace, bool dry_run,
                   long long *removed, long long *bytes, long long *kept, char *errbuf,
                   size_t errlen)
{
    *removed = *bytes = *kept = 0;
    char tmp[GC_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp", data_dir) >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "data directory path \"%s\" is too long", data_dir);
        return false;
    }
    name_list_t names;
    bool gone;
    if (!names_read(tmp, &names, &gone, errbuf, errlen))
        return false;
    bool ok = true;
    for (size_t i = 0; i < names.n && ok; i++) {
        const char *name = names.names[i];
        if (strncmp(name, GC_ASIDE_PREFIX, strlen(GC_ASIDE_PREFIX)) == 0)
            continue;
        char path[GC_PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmp, name) >= sizeof(path))
            continue;
        if (lstat(path, &st) != 0) {
            if (errno == ENOENT) /* the upload finished meanwhile */
                continue;
            snprintf(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
            ok = false;
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (gc_is_young(&st, now, grace)) {
            (*kept)++;
            continue;
        }
        if (!dry_run && unlink(path) != 0) {
            if (errno == ENOENT)
                continue;
            snprintf(errbuf, errlen, "cannot remove %s: %s", path, strerror(errno));
            ok = false;
            break;
        }
        (*removed)++;
        *bytes += (long long)st.st_size;
    }
    names_free(&names);
    return ok;
}

/* ---- verifying one blob ------------------------------------------------- */

const char *gc_verdict_name(gc_verdict_t verdict)
{
    switch (verdict) {
    case GC_BLOB_OK:
        return "ok";
    case GC_BLOB_MISSING:
        return "missing";
    case GC_BLOB_NOT_FILE:
        return "not_a_file";
    case GC_BLOB_SIZE:
        return "size";
    case GC_BLOB_SHA256:
        return "sha256";
    case GC_BLOB_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}

gc_verdict_t gc_verify_blob(const char *path, const char *hex, uint64_t size, bool hash,
                            uint64_t *actual_size, char actual_hex[BLOB_HEX_LEN + 1], char *errbuf,
                            size_t errlen)
{
    *actual_size = 0;
    actual_hex[0] = '\0';
    if (errlen)
        errbuf[0] = '\0';
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return GC_BLOB_MISSING;
        snprintf(errbuf, errlen, "cannot stat %s: %s", path, strerror(errno));
        return GC_BLOB_UNREADABLE;
    }
    if (!S_ISREG(st.st_mode))
        return GC_BLOB_NOT_FILE;
    *actual_size = (uint64_t)st.st_size;
    if (*actual_size != size)
        return GC_BLOB_SIZE;
    if (!hash)
        return GC_BLOB_OK;
    uint64_t read_size = 0;
    if (!blob_file_sha256(path, actual_hex, &read_size, errbuf, errlen)) {
        if (errno == ENOENT) /* removed between the stat and the read */
            return GC_BLOB_MISSING;
        return GC_BLOB_UNREADABLE;
    }
    *actual_size = read_size;
    if (read_size != size)
        return GC_BLOB_SIZE;
    return strcmp(actual_hex, hex) == 0 ? GC_BLOB_OK : GC_BLOB_SHA256;
}
