#include "deploy/layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define COPY_CHUNK (1 << 20)

static bool mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return false;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(tmp, mode) == 0 || errno == EEXIST;
}

static bool fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

static bool copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return false;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (out < 0) {
        close(in);
        return false;
    }
    char *buf = malloc(COPY_CHUNK);
    bool ok = buf != NULL;
    while (ok) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                ok = false;
                break;
            }
            done += w;
        }
    }
    free(buf);
    ok = ok && fsync(out) == 0;
    close(in);
    return close(out) == 0 && ok;
}

/* Removes a directory tree we created (no symlinks followed). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child))
            continue;
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

static bool fail_errno(nn_error_t *err, const char *what, const char *path)
{
    int e = errno;
    if (e == ENOSPC || e == EDQUOT)
        return nn_error_set(err, 507, "insufficient_storage",
                            "the deploy directory is full (%s %s); free space and retry", what,
                            path);
    log_error("deploy: %s %s: %s", what, path, strerror(e));
    return nn_error_set(err, 500, "deploy_io_error", "cannot %s %s: %s", what, path, strerror(e));
}

bool layout_install(arena_t *arena, const char *deploy_dir, long long network_id,
                    const layout_file_t *files, size_t nfiles, nn_error_t *err)
{
    if (!mkdir_p(deploy_dir, 0755))
        return fail_errno(err, "create", deploy_dir);
    char *tmp = arena_printf(arena, "%s/.tmp-%lld-%ld", deploy_dir, network_id, (long)getpid());
    char *final = arena_printf(arena, "%s/%lld", deploy_dir, network_id);
    char *old = arena_printf(arena, "%s/.old-%lld-%ld", deploy_dir, network_id, (long)getpid());
    if (!tmp || !final || !old)
        return nn_error_oom(err);
    remove_tree(tmp);
    char *vars = arena_printf(arena, "%s/1/variables", tmp);
    char *version = arena_printf(arena, "%s/1", tmp);
    if (!vars || !version)
        return nn_error_oom(err);
    if (!mkdir_p(version, 0755))
        return fail_errno(err, "create", version);
    for (size_t i = 0; i < nfiles; i++) {
        const char *name = files[i].name;
        bool is_variable = strncmp(name, "variables.", 10) == 0;
        if (is_variable && !mkdir_p(vars, 0755)) {
            remove_tree(tmp);
            return fail_errno(err, "create", vars);
        }
        char *target = arena_printf(arena, "%s/%s", is_variable ? vars : version, name);
        if (!target)
            return nn_error_oom(err);
        /* Blobs are immutable (0444): a hard link shares them safely and
         * costs no space; across filesystems, a copy. */
        if (link(files[i].blob_path, target) != 0 && !copy_file(files[i].blob_path, target)) {
            remove_tree(tmp);
            return fail_errno(err, "write", target);
        }
    }
    if (!fsync_path(version, O_RDONLY | O_DIRECTORY) ||
        (access(vars, F_OK) == 0 && !fsync_path(vars, O_RDONLY | O_DIRECTORY))) {
        remove_tree(tmp);
        return fail_errno(err, "fsync", tmp);
    }
    /* Replace a previous copy: move it aside first so that the new one
     * appears with one rename. */
    bool had_old = rename(final, old) == 0;
    if (rename(tmp, final) != 0) {
        if (had_old)
            rename(old, final);
        remove_tree(tmp);
        return fail_errno(err, "rename into place", final);
    }
    if (had_old)
        remove_tree(old);
    fsync_path(deploy_dir, O_RDONLY | O_DIRECTORY);
    return true;
}

bool layout_remove(arena_t *arena, const char *deploy_dir, long long network_id)
{
    char *final = arena_printf(arena, "%s/%lld", deploy_dir, network_id);
    char *gone = arena_printf(arena, "%s/.gone-%lld-%ld", deploy_dir, network_id, (long)getpid());
    if (!final || !gone)
        return false;
    if (rename(final, gone) != 0)
        return false;
    remove_tree(gone);
    fsync_path(deploy_dir, O_RDONLY | O_DIRECTORY);
    return true;
}

size_t layout_sweep(const char *deploy_dir, long long max_age_seconds)
{
    static const char *const prefixes[] = {".tmp-", ".old-", ".gone-", ".models.config."};
    DIR *d = opendir(deploy_dir);
    if (!d)
        return 0;
    time_t now = time(NULL);
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        bool ours = false;
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]) && !ours; i++)
            ours = strncmp(e->d_name, prefixes[i], strlen(prefixes[i])) == 0;
        if (!ours || strcmp(e->d_name, ".models.config.lock") == 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof(path), "%s/%s", deploy_dir, e->d_name) >= (int)sizeof(path) ||
            lstat(path, &st) != 0 || (long long)(now - st.st_mtime) <= max_age_seconds)
            continue;
        if (S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            unlink(path);
        if (lstat(path, &st) != 0) {
            log_info("removed %s, left by an interrupted deployment", path);
            removed++;
        }
    }
    closedir(d);
    return removed;
}

static int compare_ids(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

bool layout_list(arena_t *arena, const char *deploy_dir, long long **ids, size_t *nids)
{
    *ids = NULL;
    *nids = 0;
    DIR *d = opendir(deploy_dir);
    if (!d)
        return errno == ENOENT;
    size_t cap = 0;
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(d))) {
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end || id <= 0)
            continue;
        if (*nids == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            long long *grown = arena_realloc(arena, *ids, cap * sizeof(**ids), ncap * sizeof(**ids));
            if (!grown) {
                ok = false;
                break;
            }
            *ids = grown;
            cap = ncap;
        }
        (*ids)[(*nids)++] = id;
    }
    closedir(d);
    if (ok && *nids)
        qsort(*ids, *nids, sizeof(**ids), compare_ids);
    return ok;
}

bool layout_write_config(arena_t *arena, const char *deploy_dir, nn_error_t *err)
{
    if (!mkdir_p(deploy_dir, 0755))
        return fail_errno(err, "create", deploy_dir);
    char *lock_path = arena_printf(arena, "%s/.models.config.lock", deploy_dir);
    char *tmp = arena_printf(arena, "%s/.models.config.%ld", deploy_dir, (long)getpid());
    char *path = arena_printf(arena, "%s/models.config", deploy_dir);
    if (!lock_path || !tmp || !path)
        return nn_error_oom(err);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0)
        return fail_errno(err, "open", lock_path);
    /* Serializes writers on every host sharing the directory (flock is
     * honoured by local filesystems and by NFSv4 as a whole-file lock). */
    while (flock(lock, LOCK_EX) != 0 && errno == EINTR)
        ;
    long long *ids;
    size_t nids;
    char abs_dir[PATH_MAX];
    bool ok = layout_list(arena, deploy_dir, &ids, &nids) && realpath(deploy_dir, abs_dir);
    if (!ok) {
        close(lock);
        return fail_errno(err, "list", deploy_dir);
    }
    /* Streamed to the file through stdio's buffer: the text grows by about
     * 150 bytes a network, and building it in memory made the deployer's
     * peak RSS grow with the number of deployed networks (the soak in
     * docs/reliability.md). */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    ok = f != NULL;
    if (ok) {
        fputs("# Written by nnreg-deployer: one entry per deployed network.\n"
              "model_config_list {\n",
              f);
        for (size_t i = 0; i < nids; i++)
            fprintf(f,
                    "  config {\n    name: \"%lld\"\n    base_path: \"%s/%lld\"\n"
                    "    model_platform: \"tensorflow\"\n  }\n",
                    ids[i], abs_dir, ids[i]);
        fputs("}\n", f);
        ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
        ok = fclose(f) == 0 && ok;
    }
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fail_errno(err, "write", path);
        unlink(tmp);
        close(lock);
        return false;
    }
    fsync_path(deploy_dir, O_RDONLY | O_DIRECTORY);
    close(lock);
    return true;
}
