/* test_gc.c - the filesystem side of blob store maintenance: ages, the
 * move aside / put back / discard protocol (a refreshed blob is put back, a
 * copy stored meanwhile is never replaced), recovery of blobs a dead gc set
 * aside, the temp sweep, the walk of the blob tree (blobs told from stray
 * entries) and the verdicts of gc_verify_blob. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/blob.h"
#include "store/gc.h"
#include "util/arena.h"
#include "util/error.h"

#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define GRACE 3600

typedef struct {
    char data_dir[256];
    arena_t *arena;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    const char *base = getenv("TMPDIR");
    snprintf(f->data_dir, sizeof(f->data_dir), "%s/nnreg-test-gc-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(f->data_dir))
        return -1;
    char errbuf[256];
    if (!blob_store_init(f->data_dir, errbuf, sizeof(errbuf))) {
        fprintf(stderr, "blob_store_init: %s\n", errbuf);
        return -1;
    }
    f->arena = arena_create(0);
    if (!f->arena)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    arena_destroy(f->arena);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", f->data_dir,
             f->data_dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Stores data as a blob; returns its path (arena). */
static char *store(fixture_t *f, const char *data, const char *hex)
{
    nn_error_t err;
    nn_error_init(&err);
    blob_upload_t *up = blob_upload_begin(f->arena, f->data_dir, &err);
    assert_non_null(up);
    assert_true(blob_upload_write(up, data, strlen(data), &err));
    assert_true(blob_upload_finish(up, &err));
    assert_string_equal(blob_upload_sha256(up), hex);
    bool created;
    assert_true(blob_upload_commit(up, &created, &err));
    char *path = blob_path(f->arena, f->data_dir, hex);
    assert_non_null(path);
    return path;
}

/* Sets a file's mtime to seconds ago. */
static void age(const char *path, long long seconds)
{
    struct timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= seconds;
    times[1] = times[0];
    assert_int_equal(utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *tmp_path(fixture_t *f, const char *name)
{
    char *p = arena_printf(f->arena, "%s/tmp/%s", f->data_dir, name);
    assert_non_null(p);
    return p;
}

static void write_file(const char *path, const char *data)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(data, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_is_young(void **state)
{
    (void)state;
    struct stat st = {0};
    time_t now = 1700000000;
    st.st_mtime = now;
    assert_true(gc_is_young(&st, now, GRACE));
    st.st_mtime = now - GRACE + 1;
    assert_true(gc_is_young(&st, now, GRACE));
    st.st_mtime = now - GRACE;
    assert_false(gc_is_young(&st, now, GRACE));
    st.st_mtime = now + 86400; /* dated in the future: young */
    assert_true(gc_is_young(&st, now, GRACE));
    st.st_mtime = 0;
    assert_false(gc_is_young(&st, now, 315360000));
}

static void test_aside_and_discard(void **state)
{
    fixture_t *f = *state;
    char *path = store(f, "abc", SHA256_ABC);
    age(path, 2 * GRACE);
    char aside[512], why[512];
    bool missing, young;
    struct stat st;
    assert_true(
        gc_take_aside(f->data_dir, SHA256_ABC, aside, sizeof(aside), &missing, why, sizeof(why)));
    assert_false(missing);
    assert_string_equal(aside, tmp_path(f, "gc-" SHA256_ABC));
    assert_false(exists(path));
    assert_true(exists(aside));
    assert_true(gc_aside_is_young(aside, time(NULL), GRACE, &young, &st, why, sizeof(why)));
    assert_false(young);
    assert_int_equal(st.st_size, 3);
    assert_true(gc_discard(aside, why, sizeof(why)));
    assert_false(exists(aside));
    /* Nothing left to take: missing, and no error. */
    assert_true(
        gc_take_aside(f->data_dir, SHA256_ABC, aside, sizeof(aside), &missing, why, sizeof(why)));
    assert_true(missing);
    assert_true(gc_discard(aside, why, sizeof(why))); /* ENOENT is fine */
    /* A malformed name is refused before any path is built. */
    assert_false(
        gc_take_aside(f->data_dir, "../../x", aside, sizeof(aside), &missing, why, sizeof(why)));
}

static void test_refreshed_blob_is_put_back(void **state)
{
    fixture_t *f = *state;
    char *path = store(f, "abc", SHA256_ABC);
    age(path, 2 * GRACE);
    /* A create refreshes it (blob_upload_commit of the same content). */
    store(f, "abc", SHA256_ABC);
    char aside[512], why[512];
    bool missing, young;
    struct stat st;
    assert_true(
        gc_take_aside(f->data_dir, SHA256_ABC, aside, sizeof(aside), &missing, why, sizeof(why)));
    assert_true(gc_aside_is_young(aside, time(NULL), GRACE, &young, &st, why, sizeof(why)));
    assert_true(young);
    assert_true(gc_put_back(f->data_dir, SHA256_ABC, aside, why, sizeof(why)));
    assert_true(exists(path));
    assert_false(exists(aside));
}

static void test_put_back_never_replaces(void **state)
{
    fixture_t *f = *state;
    char *path = store(f, "abc", SHA256_ABC);
    char aside[512], why[512];
    bool missing;
    assert_true(
        gc_take_aside(f->data_dir, SHA256_ABC, aside, sizeof(aside), &missing, why, sizeof(why)));
    /* A create stores its own copy while ours is aside. */
    store(f, "abc", SHA256_ABC);
    struct stat before, after;
    assert_int_equal(lstat(path, &before), 0);
    assert_true(gc_put_back(f->data_dir, SHA256_ABC, aside, why, sizeof(why)));
    assert_int_equal(lstat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* the create's copy stayed */
    assert_false(exists(aside));
}

static void test_recover_aside(void **state)
{
    fixture_t *f = *state;
    char *path = store(f, "abc", SHA256_ABC);
    char aside[512], why[512];
    bool missing;
    assert_true(
        gc_take_aside(f->data_dir, SHA256_ABC, aside, sizeof(aside), &missing, why, sizeof(why)));
    /* Other names in tmp/ are left alone. */
    write_file(tmp_path(f, "gc-notablob"), "x");
    long long restored = -1;
    assert_true(gc_recover_aside(f->data_dir, true, &restored, why, sizeof(why)));
    assert_int_equal(restored, 1);
    assert_false(exists(path)); /* dry run */
    assert_true(gc_recover_aside(f->data_dir, false, &restored, why, sizeof(why)));
    assert_int_equal(restored, 1);
    assert_true(exists(path));
    assert_false(exists(aside));
    assert_true(exists(tmp_path(f, "gc-notablob")));
}

static void test_sweep_temp(void **state)
{
    fixture_t *f = *state;
    char *old_upload = tmp_path(f, "upload-old123");
    char *new_upload = tmp_path(f, "upload-new123");
    char *aside = tmp_path(f, "gc-" SHA256_ABC);
    write_file(old_upload, "12345");
    write_file(new_upload, "123");
    write_file(aside, "abc");
    age(old_upload, 2 * GRACE);
    age(aside, 2 * GRACE);
    char *dir = tmp_path(f, "somedir");
    assert_int_equal(mkdir(dir, 0700), 0);

    long long removed, bytes, kept;
    char why[512];
    assert_true(gc_sweep_temp(f->data_dir, time(NULL), GRACE, true, &removed, &bytes, &kept, why,
                              sizeof(why)));
    assert_int_equal(removed, 1);
    assert_int_equal(bytes, 5);
    assert_int_equal(kept, 1);
    assert_true(exists(old_upload));

    assert_true(gc_sweep_temp(f->data_dir, time(NULL), GRACE, false, &removed, &bytes, &kept, why,
                              sizeof(why)));
    assert_int_equal(removed, 1);
    assert_false(exists(old_upload));
    assert_true(exists(new_upload));
    assert_true(exists(aside)); /* left to gc_recover_aside */
    assert_true(exists(dir));
}

typedef struct walk_log {
    int calls;
    char blobs[8][80];
    int nblobs;
    char strays[8][80];
    int nstrays;
} walk_log_t;

static bool record(void *ctx, const char *fan_out, const gc_entry_t *entries, size_t n)
{
    walk_log_t *log = ctx;
    log->calls++;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].hex) {
            assert_int_equal(strncmp(entries[i].hex, fan_out, 2), 0);
            snprintf(log->blobs[log->nblobs++], 80, "%s", entries[i].rel_path);
        } else {
            snprintf(log->strays[log->nstrays++], 80, "%s", entries[i].rel_path);
        }
    }
    return true;
}

static bool stop(void *ctx, const char *fan_out, const gc_entry_t *entries, size_t n)
{
    return false;
}

static void test_walk(void **state)
{
    fixture_t *f = *state;
    store(f, "abc", SHA256_ABC);
    store(f, "", SHA256_EMPTY);
    char *root = arena_printf(f->arena, "%s/blobs/sha256", f->data_dir);
    char path[600];
    snprintf(path, sizeof(path), "%s/README", root);
    write_file(path, "stray at the top");
    snprintf(path, sizeof(path), "%s/ba/notes.txt", root);
    write_file(path, "stray name in a fan-out directory");
    /* A blob name in the wrong fan-out directory is stray too. */
    snprintf(path, sizeof(path), "%s/e3/" SHA256_ABC, root);
    write_file(path, "abc");

    walk_log_t log = {0};
    bool stopped;
    char why[512];
    assert_true(gc_walk_blobs(f->data_dir, record, &log, &stopped, why, sizeof(why)));
    assert_false(stopped);
    assert_int_equal(log.calls, 3); /* the top strays, ba/, e3/ */
    assert_int_equal(log.nblobs, 2);
    assert_string_equal(log.blobs[0], "ba/" SHA256_ABC);
    assert_string_equal(log.blobs[1], "e3/" SHA256_EMPTY);
    assert_int_equal(log.nstrays, 3);
    assert_string_equal(log.strays[0], "README");
    assert_string_equal(log.strays[1], "ba/notes.txt");
    assert_string_equal(log.strays[2], "e3/" SHA256_ABC);

    assert_false(gc_walk_blobs(f->data_dir, stop, NULL, &stopped, why, sizeof(why)));
    assert_true(stopped);

    /* No blob store: an error naming the directory. */
    assert_false(gc_walk_blobs("/nonexistent-nnreg", record, &log, &stopped, why, sizeof(why)));
    assert_false(stopped);
    assert_non_null(strstr(why, "/nonexistent-nnreg/blobs/sha256"));
}

static void test_verify(void **state)
{
    fixture_t *f = *state;
    char *path = store(f, "abc", SHA256_ABC);
    uint64_t size;
    char hex[BLOB_HEX_LEN + 1], why[512];
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, true, &size, hex, why, sizeof(why)),
                     GC_BLOB_OK);
    assert_string_equal(hex, SHA256_ABC);
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 4, true, &size, hex, why, sizeof(why)),
                     GC_BLOB_SIZE);
    assert_int_equal(size, 3);

    /* One byte flipped: same size, another hash; --quick does not see it. */
    assert_int_equal(chmod(path, 0644), 0);
    write_file(path, "abd");
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, true, &size, hex, why, sizeof(why)),
                     GC_BLOB_SHA256);
    assert_string_not_equal(hex, SHA256_ABC);
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, false, &size, hex, why, sizeof(why)),
                     GC_BLOB_OK);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, true, &size, hex, why, sizeof(why)),
                     GC_BLOB_MISSING);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, true, &size, hex, why, sizeof(why)),
                     GC_BLOB_NOT_FILE);
    assert_string_equal(gc_verdict_name(GC_BLOB_NOT_FILE), "not_a_file");
    assert_string_equal(gc_verdict_name(GC_BLOB_SHA256), "sha256");
    assert_int_equal(rmdir(path), 0);

    if (geteuid() != 0) { /* root reads anything */
        write_file(path, "abc");
        assert_int_equal(chmod(path, 0), 0);
        assert_int_equal(gc_verify_blob(path, SHA256_ABC, 3, true, &size, hex, why, sizeof(why)),
                         GC_BLOB_UNREADABLE);
        assert_non_null(strstr(why, path));
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_is_young),
        T(test_aside_and_discard),
        T(test_refreshed_blob_is_put_back),
        T(test_put_back_never_replaces),
        T(test_recover_aside),
        T(test_sweep_temp),
        T(test_walk),
        T(test_verify),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
