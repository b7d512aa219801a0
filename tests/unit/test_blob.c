/* test_blob.c - the content-addressed blob store: streaming writes in odd
 * chunk sizes hash to the known SHA-256, commit places the blob at its
 * address, equal content is stored once, and an upload that is never
 * committed leaves nothing behind in tmp/. */
#include <dirent.h>
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
#include "util/arena.h"
#include "util/error.h"

/* FIPS 180-2 test vectors. */
#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

/* Each test gets a fresh data directory. */
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
    snprintf(f->data_dir, sizeof(f->data_dir), "%s/nnreg-test-blob-XXXXXX", base ? base : "/tmp");
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
    char cmd[400];
    /* Blobs are read-only files: rm -rf removes them regardless. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->data_dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Number of entries in <data_dir>/<sub> other than . and .. */
static int count_entries(const fixture_t *f, const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", f->data_dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Streams data in the given chunk sizes (cycled) and finishes. */
static blob_upload_t *upload(fixture_t *f, arena_t *arena, const unsigned char *data, size_t len,
                             const size_t *chunks, size_t nchunks)
{
    nn_error_t err;
    nn_error_init(&err);
    blob_upload_t *up = blob_upload_begin(arena, f->data_dir, &err);
    if (!up)
        fail_msg("begin: %s", err.message);
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t n = chunks[i % nchunks];
        if (n > len - off)
            n = len - off;
        if (!blob_upload_write(up, data + off, n, &err))
            fail_msg("write: %s", err.message);
        off += n;
    }
    if (!blob_upload_finish(up, &err))
        fail_msg("finish: %s", err.message);
    return up;
}

static unsigned char *million_a(void)
{
    unsigned char *data = malloc(1000000);
    assert_non_null(data);
    memset(data, 'a', 1000000);
    return data;
}

static void test_small_chunks_hash(void **state)
{
    fixture_t *f = *state;
    unsigned char *data = million_a();
    /* Odd sizes, a zero-length write, and one chunk bigger than the
     * 256 KiB write buffer, so every path of the buffering is taken. */
    static const size_t chunks[] = {1, 7, 0, 4093, 65536, 300000, 13, 262144, 262143, 999};
    blob_upload_t *up = upload(f, f->arena, data, 1000000, chunks, 10);
    assert_string_equal(blob_upload_sha256(up), SHA256_MILLION_A);
    assert_int_equal(blob_upload_size(up), 1000000);

    /* The temp file holds exactly those bytes. */
    char hex[BLOB_HEX_LEN + 1];
    uint64_t size = 0;
    char errbuf[256];
    assert_true(blob_file_sha256(blob_upload_temp_path(up), hex, &size, errbuf, sizeof(errbuf)));
    assert_string_equal(hex, SHA256_MILLION_A);
    assert_int_equal(size, 1000000);
    free(data);
}

static void test_abc_and_empty(void **state)
{
    fixture_t *f = *state;
    static const size_t one[] = {1};
    blob_upload_t *up = upload(f, f->arena, (const unsigned char *)"abc", 3, one, 1);
    assert_string_equal(blob_upload_sha256(up), SHA256_ABC);
    up = upload(f, f->arena, NULL, 0, one, 1);
    assert_string_equal(blob_upload_sha256(up), SHA256_EMPTY);
    assert_int_equal(blob_upload_size(up), 0);
}

static void test_commit_places_blob(void **state)
{
    fixture_t *f = *state;
    static const size_t chunks[] = {3};
    blob_upload_t *up = upload(f, f->arena, (const unsigned char *)"abc", 3, chunks, 1);
    char *temp = strdup(blob_upload_temp_path(up));
    assert_non_null(temp);
    nn_error_t err;
    nn_error_init(&err);
    bool created = false;
    assert_true(blob_upload_commit(up, &created, &err));
    assert_true(created);

    char *path = blob_path(f->arena, f->data_dir, SHA256_ABC);
    assert_non_null(path);
    char want[512];
    snprintf(want, sizeof(want), "%s/blobs/sha256/ba/%s", f->data_dir, SHA256_ABC);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    assert_int_equal(st.st_mode & 0777, 0444); /* blobs never change */
    assert_int_not_equal(stat(temp, &st), 0);  /* renamed away */
    assert_int_equal(count_entries(f, "tmp"), 0);

    /* The committed blob outlives its arena. */
    arena_destroy(f->arena);
    f->arena = arena_create(0);
    assert_non_null(f->arena);
    assert_int_equal(stat(want, &st), 0);

    char hex[BLOB_HEX_LEN + 1];
    char errbuf[256];
    assert_true(blob_file_sha256(want, hex, NULL, errbuf, sizeof(errbuf)));
    assert_string_equal(hex, SHA256_ABC);
    free(temp);
}

static void test_same_content_stored_once(void **state)
{
    fixture_t *f = *state;
    unsigned char *data = million_a();
    static const size_t a[] = {4096};
    static const size_t b[] = {100000, 1};
    nn_error_t err;
    nn_error_init(&err);
    bool created = false;

    blob_upload_t *first = upload(f, f->arena, data, 1000000, a, 1);
    assert_true(blob_upload_commit(first, &created, &err));
    assert_true(created);

    /* Age the stored blob as if it were past gc's grace period. */
    char *path = blob_path(f->arena, f->data_dir, SHA256_MILLION_A);
    assert_non_null(path);
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);

    blob_upload_t *second = upload(f, f->arena, data, 1000000, b, 2);
    assert_string_equal(blob_upload_sha256(second), SHA256_MILLION_A);
    assert_true(blob_upload_commit(second, &created, &err));
    assert_false(created);

    assert_int_equal(count_entries(f, "tmp"), 0);
    assert_int_equal(count_entries(f, "blobs/sha256"), 1);
    assert_int_equal(count_entries(f, "blobs/sha256/cd"), 1);
    /* Deduplicating refreshed its time, so gc will not take it from under
     * the row about to reference it. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mtime > time(NULL) - 3600);
    free(data);
}

/* A stored copy with the wrong size (damaged on disk) is replaced by the
 * verified upload rather than trusted. */
static void test_damaged_blob_replaced(void **state)
{
    fixture_t *f = *state;
    static const size_t one[] = {3};
    nn_error_t err;
    nn_error_init(&err);
    bool created = false;
    blob_upload_t *up = upload(f, f->arena, (const unsigned char *)"abc", 3, one, 1);
    assert_true(blob_upload_commit(up, &created, &err));
    char *path = blob_path(f->arena, f->data_dir, SHA256_ABC);
    assert_non_null(path);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(truncate(path, 1), 0);

    up = upload(f, f->arena, (const unsigned char *)"abc", 3, one, 1);
    assert_true(blob_upload_commit(up, &created, &err));
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3);
    assert_int_equal(count_entries(f, "tmp"), 0);
}

static void test_uncommitted_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    nn_error_t err;
    nn_error_init(&err);
    static const size_t chunks[] = {1000};
    unsigned char data[5000];
    memset(data, 'x', sizeof(data));

    /* Begun only; written but not finished; finished but not committed. */
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    assert_non_null(blob_upload_begin(arena, f->data_dir, &err));
    blob_upload_t *writing = blob_upload_begin(arena, f->data_dir, &err);
    assert_non_null(writing);
    assert_true(blob_upload_write(writing, data, sizeof(data), &err));
    blob_upload_t *finished = upload(f, arena, data, sizeof(data), chunks, 1);
    assert_non_null(finished);
    assert_int_equal(count_entries(f, "tmp"), 3);
    arena_destroy(arena);

    assert_int_equal(count_entries(f, "tmp"), 0);
    assert_int_equal(count_entries(f, "blobs/sha256"), 0);
}

static void test_out_of_order_use(void **state)
{
    fixture_t *f = *state;
    nn_error_t err;
    nn_error_init(&err);
    bool created = true;
    blob_upload_t *up = blob_upload_begin(f->arena, f->data_dir, &err);
    assert_non_null(up);
    assert_false(blob_upload_commit(up, &created, &err)); /* not finished */
    assert_false(created);
    assert_int_equal(err.status, 500);

    nn_error_init(&err);
    assert_true(blob_upload_finish(up, &err));
    assert_false(blob_upload_write(up, "x", 1, &err)); /* after finish */
    assert_int_equal(err.status, 500);
    nn_error_init(&err);
    assert_false(blob_upload_finish(up, &err)); /* twice */
    nn_error_init(&err);
    assert_true(blob_upload_commit(up, &created, &err));
    assert_true(created);
    nn_error_init(&err);
    assert_false(blob_upload_commit(up, &created, &err)); /* twice */
    assert_int_equal(err.status, 500);
}

/* tmp/ removed by an operator while the server runs: the next upload
 * recreates it instead of failing. */
static void test_tmp_recreated(void **state)
{
    fixture_t *f = *state;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s/tmp", f->data_dir);
    assert_int_equal(rmdir(tmp), 0);
    static const size_t one[] = {3};
    blob_upload_t *up = upload(f, f->arena, (const unsigned char *)"abc", 3, one, 1);
    assert_string_equal(blob_upload_sha256(up), SHA256_ABC);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_init_errors(void **state)
{
    fixture_t *f = *state;
    char file[512], errbuf[512];
    snprintf(file, sizeof(file), "%s/not-a-dir", f->data_dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    errbuf[0] = '\0';
    assert_false(blob_store_init(file, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, "not-a-dir"));

    /* Initialising an existing store again is fine (every worker does). */
    assert_true(blob_store_init(f->data_dir, errbuf, sizeof(errbuf)));
}

static void test_begin_fails_cleanly(void **state)
{
    fixture_t *f = *state;
    char file[512];
    snprintf(file, sizeof(file), "%s/plain-file", f->data_dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    nn_error_t err;
    nn_error_init(&err);
    /* <file>/tmp cannot exist: a 500, not a crash, and nothing to clean. */
    assert_null(blob_upload_begin(f->arena, file, &err));
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "internal_error");
}

static void test_file_sha256_errors(void **state)
{
    char hex[BLOB_HEX_LEN + 1];
    char errbuf[256];
    errbuf[0] = '\0';
    assert_false(blob_file_sha256("/nonexistent/blob", hex, NULL, errbuf, sizeof(errbuf)));
    assert_non_null(strstr(errbuf, "/nonexistent/blob"));
    assert_string_equal(hex, "");
}

static void test_hex_and_path(void **state)
{
    fixture_t *f = *state;
    assert_true(blob_hex_valid(SHA256_ABC));
    assert_false(blob_hex_valid(""));
    assert_false(blob_hex_valid("ba7816bf"));
    assert_false(blob_hex_valid(SHA256_ABC "0"));
    assert_false(
        blob_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(blob_hex_valid("../../../../etc/passwd/../../../../../../../../../../../../../x"));
    char bad[BLOB_HEX_LEN + 1];
    memcpy(bad, SHA256_ABC, sizeof(bad));
    bad[10] = 'g';
    assert_false(blob_hex_valid(bad));
    assert_null(blob_path(f->arena, "/data", bad));
    assert_string_equal(blob_path(f->arena, "/data", SHA256_EMPTY),
                        "/data/blobs/sha256/e3/" SHA256_EMPTY);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_small_chunks_hash),     T(test_abc_and_empty),
        T(test_commit_places_blob),    T(test_same_content_stored_once),
        T(test_damaged_blob_replaced), T(test_uncommitted_leaves_nothing),
        T(test_out_of_order_use),      T(test_tmp_recreated),
        T(test_init_errors),           T(test_begin_fails_cleanly),
        T(test_file_sha256_errors),    T(test_hex_and_path),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
