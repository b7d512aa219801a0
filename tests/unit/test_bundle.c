/* Unit tests: the tensor-bundle reader (model/bundle).
 *
 * - every fixture's variables.index parses and lists the variables of the
 *   fixtures README (names, dtypes, shapes, offsets, sizes), and its data
 *   shard passes bundle_check_shards();
 * - damaged copies: every byte flip in a table block and every truncation
 *   is an error (never a crash); a flipped data byte names the variable; a
 *   short shard says the entry lies outside it;
 * - tables built here (multi-block, restart intervals, Snappy, string and
 *   variant tensors, two shards) and hand-made malformations, each with the
 *   message it must produce;
 * - random mutations of block contents with their checksums fixed up are
 *   rejected or accepted, never crash (run under ASan/UBSan).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <snappy-c.h>
#include <unistd.h>

#include "model/bundle.h"
#include "util/arena.h"
#include "util/crc32c.h"
#include "util/error.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

#define MODELS NNREG_FIXTURES "/models"
#define DATA_NAME "variables.data-00000-of-00001"

static char tmpdir[] = "/tmp/nnreg-test-bundle-XXXXXX";

/* ---- files ---------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *tmp_path(const char *name)
{
    static char path[4][512];
    static int turn;
    turn = (turn + 1) % 4;
    snprintf(path[turn], sizeof(path[turn]), "%s/%s", tmpdir, name);
    return path[turn];
}

static const char *spill(const char *name, const void *data, size_t len)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *fixture_index(const char *model)
{
    static char path[512];
    snprintf(path, sizeof(path), MODELS "/%s/variables/variables.index", model);
    return path;
}

static const char *fixture_data(const char *model)
{
    static char path[512];
    snprintf(path, sizeof(path), MODELS "/%s/variables/" DATA_NAME, model);
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Reads an index file; returns whether it parsed (err says why not). */
static bool read_index(arena_t *a, const char *path, bundle_index_t *idx, nn_error_t *err)
{
    nn_error_init(err);
    return bundle_read_index(a, path, "variables.index", idx, err);
}

static bool parse_bytes(arena_t *a, const void *data, size_t len, bundle_index_t *idx,
                        nn_error_t *err)
{
    /* An exact-size heap copy, so that ASan sees any read past the end. */
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    nn_error_init(err);
    bool ok = bundle_parse_index(a, copy, len, "variables.index", idx, err);
    free(copy);
    return ok;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("message \"%s\" lacks \"%s\"", haystack, needle);
}

static void assert_invalid(const nn_error_t *err, const char *needle)
{
    assert_int_equal(err->status, 400);
    assert_string_equal(err->code, "invalid_variables");
    assert_contains(err->message, needle);
}

/* ---- the fixtures ----------------------------------------------------------- */

typedef struct want_entry {
    const char *name;
    int dtype;
    size_t ndims;
    int64_t dims[4];
    uint64_t offset;
    uint64_t size;
} want_entry_t;

typedef struct want_model {
    const char *model;
    bool snappy;
    size_t n;
    want_entry_t entries[10];
} want_model_t;

/* From tests/fixtures/models/README.md. */
static const want_model_t fixtures[] = {
    {"half_plus_two_cpu",
     true,
     5,
     {{"a", 1, 0, {0}, 0, 4},
      {"a2", 1, 0, {0}, 4, 4},
      {"b", 1, 0, {0}, 8, 4},
      {"c", 1, 0, {0}, 12, 4},
      {"c2", 1, 0, {0}, 16, 4}}},
    {"half_plus_three",
     false,
     3,
     {{"a", 1, 0, {0}, 0, 4}, {"b", 1, 0, {0}, 4, 4}, {"c", 1, 0, {0}, 8, 4}}},
    {"counter", false, 1, {{"counter", 1, 0, {0}, 0, 4}}},
    {"half_plus_two_tf2_cpu",
     true,
     4,
     {{"_CHECKPOINTABLE_OBJECT_GRAPH", 7, 0, {0}, 12, 619},
      {"a/.ATTRIBUTES/VARIABLE_VALUE", 1, 0, {0}, 0, 4},
      {"b/.ATTRIBUTES/VARIABLE_VALUE", 1, 0, {0}, 4, 4},
      {"c/.ATTRIBUTES/VARIABLE_VALUE", 1, 0, {0}, 8, 4}}},
    {"half_plus_two_mkl",
     false,
     9,
     {{"a", 1, 0, {0}, 0, 4},
      {"b", 1, 0, {0}, 4, 4},
      {"c", 1, 0, {0}, 8, 4},
      {"conv2d/bias", 1, 1, {1}, 12, 4},
      {"conv2d/kernel", 1, 4, {1, 1, 1, 1}, 16, 4},
      {"conv2d_1/bias", 1, 1, {1}, 20, 4},
      {"conv2d_1/kernel", 1, 4, {1, 1, 1, 1}, 24, 4},
      {"conv2d_2/bias", 1, 1, {1}, 28, 4},
      {"conv2d_2/kernel", 1, 4, {1, 1, 1, 1}, 32, 4}}},
};
#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static void test_fixtures_list_variables(void **state)
{
    (void)state;
    for (size_t m = 0; m < NFIXTURES; m++) {
        const want_model_t *w = &fixtures[m];
        arena_t *a = arena_create(0);
        bundle_index_t idx;
        nn_error_t err;
        if (!read_index(a, fixture_index(w->model), &idx, &err))
            fail_msg("%s: %s", w->model, err.message);
        assert_int_equal(idx.num_shards, 1);
        assert_false(idx.big_endian);
        assert_int_equal(idx.version_producer, 1);
        assert_int_equal(idx.data_blocks, 1);
        assert_int_equal(idx.snappy_blocks > 0, w->snappy);
        assert_int_equal(idx.nentries, w->n);
        for (size_t i = 0; i < w->n; i++) {
            const bundle_entry_t *e = &idx.entries[i];
            const want_entry_t *x = &w->entries[i];
            assert_string_equal(e->name, x->name);
            assert_int_equal(e->name_len, strlen(x->name));
            assert_int_equal(e->dtype, x->dtype);
            assert_int_equal(e->ndims, x->ndims);
            for (size_t d = 0; d < x->ndims; d++)
                assert_int_equal(e->dims[d], x->dims[d]);
            assert_int_equal(e->num_elements, 1);
            assert_int_equal(e->shard_id, 0);
            assert_int_equal(e->offset, x->offset);
            assert_int_equal(e->size, x->size);
            assert_int_equal(e->nslices, 0);
            assert_false(e->slice_part);
            assert_ptr_equal(bundle_find(&idx, x->name), e);
        }
        assert_null(bundle_find(&idx, "no/such/variable"));
        assert_null(bundle_find(&idx, ""));
        arena_destroy(a);
    }
}

static void test_fixtures_shards_verify(void **state)
{
    (void)state;
    for (size_t m = 0; m < NFIXTURES; m++) {
        const want_model_t *w = &fixtures[m];
        arena_t *a = arena_create(0);
        bundle_index_t idx;
        nn_error_t err;
        assert_true(read_index(a, fixture_index(w->model), &idx, &err));
        const char *paths[1] = {fixture_data(w->model)};
        bundle_check_stats_t st;
        if (!bundle_check_shards(&idx, paths, NULL, 1, &st, &err))
            fail_msg("%s: %s", w->model, err.message);
        assert_int_equal(st.entries_checked, w->n);
        uint64_t bytes = 0;
        for (size_t i = 0; i < w->n; i++)
            bytes += w->entries[i].size;
        assert_int_equal(st.bytes_checked, bytes);
        arena_destroy(a);
    }
}

/* TensorFlow stores the masked CRC of the tensor bytes (checked directly
 * on the float entries, independently of bundle_check_shards). */
static void test_fixtures_crc_convention(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_true(read_index(a, fixture_index("half_plus_two_mkl"), &idx, &err));
    size_t len;
    unsigned char *data = slurp(fixture_data("half_plus_two_mkl"), &len);
    for (size_t i = 0; i < idx.nentries; i++) {
        const bundle_entry_t *e = &idx.entries[i];
        assert_true(e->offset + e->size <= len);
        uint32_t crc = crc32c_value(data + e->offset, (size_t)e->size);
        assert_int_equal(e->crc32c, crc32c_mask(crc));
        assert_int_not_equal(e->crc32c, crc);
    }
    free(data);
    arena_destroy(a);
}

static const char *const all_models[] = {"half_plus_two_cpu", "half_plus_three", "counter",
                                         "half_plus_two_tf2_cpu", "half_plus_two_mkl"};

/* Every byte of every block (contents and trailers) is covered by a
 * checksum: flipping any of them is an error.  Footer flips never crash. */
static void test_fixtures_every_flip_fails(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof(all_models) / sizeof(all_models[0]); m++) {
        size_t len;
        unsigned char *orig = slurp(fixture_index(all_models[m]), &len);
        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        for (size_t pos = 0; pos < len; pos++) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(copy, orig, len);
                copy[pos] ^= (unsigned char)(1u << bit);
                arena_t *a = arena_create(0);
                bundle_index_t idx;
                nn_error_t err;
                bool ok = parse_bytes(a, copy, len, &idx, &err);
                if (pos < len - 48 && ok)
                    fail_msg("%s: flipping bit %d of byte %zu went unnoticed", all_models[m], bit,
                             pos);
                if (!ok)
                    assert_int_equal(err.status, 400);
                arena_destroy(a);
            }
        }
        free(copy);
        free(orig);
    }
}

static void test_fixtures_every_truncation_fails(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof(all_models) / sizeof(all_models[0]); m++) {
        size_t len;
        unsigned char *orig = slurp(fixture_index(all_models[m]), &len);
        for (size_t cut = 0; cut < len; cut++) {
            arena_t *a = arena_create(0);
            bundle_index_t idx;
            nn_error_t err;
            assert_false(parse_bytes(a, orig, cut, &idx, &err));
            assert_int_equal(err.status, 400);
            assert_string_equal(err.code, "invalid_variables");
            arena_destroy(a);
        }
        free(orig);
    }
}

static void test_damaged_index_messages(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = slurp(fixture_index("counter"), &len);
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;

    buf[3] ^= 0x40; /* inside the data block, which starts at offset 0 */
    const char *path = spill("flipped.index", buf, len);
    assert_false(read_index(a, path, &idx, &err));
    assert_string_equal(err.message, "variables.index data block at offset 0 fails its checksum: "
                                     "the file is damaged; upload it again");
    buf[3] ^= 0x40;

    path = spill("truncated.index", buf, len - 1);
    assert_false(read_index(a, path, &idx, &err));
    assert_invalid(&err, "does not end with the table magic number");

    path = spill("short.index", buf, 20);
    assert_false(read_index(a, path, &idx, &err));
    assert_invalid(&err, "is 20 bytes long, too short for a tensor-bundle index");

    path = spill("empty.index", buf, 0);
    assert_false(read_index(a, path, &idx, &err));
    assert_invalid(&err, "is 0 bytes long");

    /* The footer's index handle pointing past the blocks. */
    memcpy(buf + len - 48, "\x2b\x08\xff\x01\x0e", 5);
    path = spill("badhandle.index", buf, len);
    assert_false(read_index(a, path, &idx, &err));
    assert_invalid(&err, "index block handle (offset 255, 14 bytes) points outside the table");

    /* Not found: a 500, not the user's fault. */
    assert_false(read_index(a, tmp_path("does-not-exist.index"), &idx, &err));
    assert_int_equal(err.status, 500);

    free(buf);
    arena_destroy(a);
}

static void test_damaged_shard_messages(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_true(read_index(a, fixture_index("half_plus_two_cpu"), &idx, &err));
    size_t len;
    unsigned char *data = slurp(fixture_data("half_plus_two_cpu"), &len);
    assert_int_equal(len, 20);

    /* One byte of a2 (offset 4..8) flipped. */
    data[5] ^= 0x01;
    const char *paths[1] = {spill("flip.data", data, len)};
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err,
                   "variable \"a2\" in " DATA_NAME " (offset 4, 4 bytes) fails its CRC-32C check");
    data[5] ^= 0x01;

    /* Display names given by the caller appear in the message. */
    const char *names[1] = {"variables/" DATA_NAME};
    data[19] ^= 0x80;
    paths[0] = spill("flip2.data", data, len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, names, 1, NULL, &err));
    assert_invalid(&err, "variable \"c2\" in variables/" DATA_NAME);
    data[19] ^= 0x80;

    /* A shard too short for c (offset 12) and c2. */
    paths[0] = spill("short.data", data, 14);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "variable \"c\" (offset 12, 4 bytes) lies past the end of " DATA_NAME
                         " (14 bytes)");

    /* An empty shard: the first entry in offset order. */
    paths[0] = spill("empty.data", data, 0);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "variable \"a\" (offset 0, 4 bytes) lies past the end");

    /* Longer than needed is fine (TensorFlow pads between tensors). */
    unsigned char longer[64] = {0};
    memcpy(longer, data, len);
    paths[0] = spill("long.data", longer, sizeof(longer));
    nn_error_init(&err);
    assert_true(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));

    /* The wrong number of shards. */
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 2, NULL, &err));
    assert_invalid(&err, "says the checkpoint has 1 data shard but 2 data files were given");

    free(data);
    arena_destroy(a);
}

/* The TF2 fixture's string tensor: its lengths checksum and its bytes. */
static void test_damaged_string_tensor(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_true(read_index(a, fixture_index("half_plus_two_tf2_cpu"), &idx, &err));
    size_t len;
    unsigned char *data = slurp(fixture_data("half_plus_two_tf2_cpu"), &len);
    assert_int_equal(len, 631);
    /* Offset 12: varint 613 (2 bytes), masked CRC of the length (4), the
     * 613 bytes: 619 in all. */
    assert_int_equal(data[12], 0xe5);
    assert_int_equal(data[13], 0x04);

    data[15] ^= 0x10;
    const char *paths[1] = {spill("s1.data", data, len)};
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "variable \"_CHECKPOINTABLE_OBJECT_GRAPH\"");
    assert_invalid(&err, "the checksum of its string lengths does not match");
    data[15] ^= 0x10;

    data[100] ^= 0x10;
    paths[0] = spill("s2.data", data, len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "variable \"_CHECKPOINTABLE_OBJECT_GRAPH\" in " DATA_NAME
                         " (offset 12, 619 bytes) fails its CRC-32C check");
    data[100] ^= 0x10;

    /* A length that no longer matches the entry's size. */
    data[12] = 0xe4;
    paths[0] = spill("s3.data", data, len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "_CHECKPOINTABLE_OBJECT_GRAPH");

    free(data);
    arena_destroy(a);
}

/* ---- tables built here -------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t len;
    size_t cap;
} bytes_t;

static void put(bytes_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_byte(bytes_t *b, unsigned c)
{
    unsigned char x = (unsigned char)c;
    put(b, &x, 1);
}

static void put_varint(bytes_t *b, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(b, (unsigned)(v & 0x7f) | 0x80);
        v >>= 7;
    }
    put_byte(b, (unsigned)v);
}

static void put_fixed32(bytes_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        put_byte(b, (v >> (8 * i)) & 0xff);
}

static void put_fixed64(bytes_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        put_byte(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_tag(bytes_t *b, unsigned field, unsigned wire)
{
    put_varint(b, (uint64_t)field << 3 | wire);
}

static void put_len_field(bytes_t *b, unsigned field, const bytes_t *msg)
{
    put_tag(b, field, 2);
    put_varint(b, msg->len);
    put(b, msg->p, msg->len);
}

static void header_proto(bytes_t *b, int64_t num_shards, int endianness, int producer,
                         int min_consumer)
{
    bytes_t v = {0};
    if (num_shards) {
        put_tag(b, 1, 0);
        put_varint(b, (uint64_t)num_shards);
    }
    if (endianness) {
        put_tag(b, 2, 0);
        put_varint(b, (uint64_t)endianness);
    }
    put_tag(&v, 1, 0);
    put_varint(&v, (uint64_t)producer);
    if (min_consumer) {
        put_tag(&v, 2, 0);
        put_varint(&v, (uint64_t)min_consumer);
    }
    put_len_field(b, 3, &v);
    free(v.p);
}

typedef struct entry_spec {
    int dtype;
    int ndims; /* -1: unknown rank */
    int64_t dims[4];
    int64_t shard;
    int64_t offset;
    int64_t size;
    uint32_t crc; /* masked */
    int nslices;
} entry_spec_t;

static void entry_proto(bytes_t *b, const entry_spec_t *e)
{
    bytes_t shape = {0};
    put_tag(b, 1, 0);
    put_varint(b, (uint64_t)e->dtype);
    if (e->ndims < 0) {
        put_tag(&shape, 3, 0);
        put_varint(&shape, 1);
    }
    for (int i = 0; i < e->ndims; i++) {
        bytes_t dim = {0};
        put_tag(&dim, 1, 0);
        put_varint(&dim, (uint64_t)e->dims[i]);
        put_len_field(&shape, 2, &dim);
        free(dim.p);
    }
    put_len_field(b, 2, &shape);
    free(shape.p);
    if (e->shard) {
        put_tag(b, 3, 0);
        put_varint(b, (uint64_t)e->shard);
    }
    if (e->offset) {
        put_tag(b, 4, 0);
        put_varint(b, (uint64_t)e->offset);
    }
    if (e->size) {
        put_tag(b, 5, 0);
        put_varint(b, (uint64_t)e->size);
    }
    put_tag(b, 6, 5);
    put_fixed32(b, e->crc);
    for (int i = 0; i < e->nslices; i++) {
        bytes_t empty = {0};
        put_len_field(b, 7, &empty);
    }
}

typedef struct kv {
    bytes_t key;
    bytes_t value;
} kv_t;

typedef struct table_spec {
    kv_t *kvs;
    size_t n;
    size_t per_block;     /* entries per data block */
    int restart_interval; /* entries between restart points */
    int compression;      /* 0 or 1 */
    /* Called on each data block's contents before it is written. */
    void (*mutate_block)(bytes_t *contents, size_t block_no);
    /* Called on the index block's contents. */
    void (*mutate_index)(bytes_t *contents);
} table_spec_t;

static void block_contents(bytes_t *out, kv_t *const *kvs, size_t n, int restart_interval)
{
    uint32_t restarts[4096];
    size_t nrestarts = 0;
    const bytes_t *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const bytes_t *k = &kvs[i]->key;
        size_t shared = 0;
        if (i % (size_t)restart_interval == 0) {
            assert_true(nrestarts < 4096);
            restarts[nrestarts++] = (uint32_t)out->len;
        } else {
            while (shared < prev->len && shared < k->len && prev->p[shared] == k->p[shared])
                shared++;
        }
        put_varint(out, shared);
        put_varint(out, k->len - shared);
        put_varint(out, kvs[i]->value.len);
        if (k->len > shared)
            put(out, k->p + shared, k->len - shared);
        put(out, kvs[i]->value.p, kvs[i]->value.len);
        prev = k;
    }
    if (nrestarts == 0)
        restarts[nrestarts++] = 0;
    for (size_t i = 0; i < nrestarts; i++)
        put_fixed32(out, restarts[i]);
    put_fixed32(out, (uint32_t)nrestarts);
}

/* Appends a block with its trailer; returns its handle. */
static void write_block(bytes_t *file, const bytes_t *contents, int type, uint64_t *off,
                        uint64_t *size)
{
    bytes_t stored = {0};
    if (type == 1) {
        size_t max = snappy_max_compressed_length(contents->len);
        stored.p = malloc(max + 1);
        assert_non_null(stored.p);
        stored.cap = max + 1;
        stored.len = max;
        assert_int_equal(snappy_compress((const char *)contents->p, contents->len, (char *)stored.p,
                                         &stored.len),
                         SNAPPY_OK);
    } else {
        put(&stored, contents->p, contents->len);
    }
    *off = file->len;
    *size = stored.len;
    put(file, stored.p, stored.len);
    put_byte(file, (unsigned)type);
    uint32_t crc = crc32c_extend(crc32c_value(stored.p, stored.len), file->p + file->len - 1, 1);
    put_fixed32(file, crc32c_mask(crc));
    free(stored.p);
}

static void build_table(bytes_t *file, const table_spec_t *t)
{
    kv_t *ptrs[4096];
    kv_t index_kvs[1024];
    kv_t *index_ptrs[1024];
    size_t nindex = 0;
    assert_true(t->n <= 4096);
    for (size_t i = 0; i < t->n; i++)
        ptrs[i] = &t->kvs[i];
    size_t per = t->per_block ? t->per_block : 1000000;
    for (size_t start = 0; start < t->n; start += per) {
        size_t n = t->n - start < per ? t->n - start : per;
        bytes_t contents = {0};
        block_contents(&contents, ptrs + start, n, t->restart_interval ? t->restart_interval : 16);
        if (t->mutate_block)
            t->mutate_block(&contents, nindex);
        uint64_t off, size;
        write_block(file, &contents, t->compression, &off, &size);
        free(contents.p);
        assert_true(nindex < 1024);
        kv_t *ik = &index_kvs[nindex];
        memset(ik, 0, sizeof(*ik));
        put(&ik->key, ptrs[start + n - 1]->key.p, ptrs[start + n - 1]->key.len);
        put_varint(&ik->value, off);
        put_varint(&ik->value, size);
        index_ptrs[nindex] = ik;
        nindex++;
    }
    bytes_t meta = {0}, index = {0};
    block_contents(&meta, NULL, 0, 16);
    uint64_t moff, msize, ioff, isize;
    write_block(file, &meta, t->compression, &moff, &msize);
    block_contents(&index, index_ptrs, nindex, 1);
    if (t->mutate_index)
        t->mutate_index(&index);
    write_block(file, &index, t->compression, &ioff, &isize);
    size_t footer_start = file->len;
    put_varint(file, moff);
    put_varint(file, msize);
    put_varint(file, ioff);
    put_varint(file, isize);
    while (file->len < footer_start + 40)
        put_byte(file, 0);
    put_fixed64(file, 0xdb4775248b80fb57ull);
    free(meta.p);
    free(index.p);
    for (size_t i = 0; i < nindex; i++) {
        free(index_kvs[i].key.p);
        free(index_kvs[i].value.p);
    }
}

static void kv_free(kv_t *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kvs[i].key.p);
        free(kvs[i].value.p);
    }
}

static void kv_set_key(kv_t *kv, const char *key)
{
    put(&kv->key, key, strlen(key));
}

/* A table: the header then one float scalar per name (sorted by caller). */
static size_t float_table_kvs(kv_t *kvs, const char *const *names, size_t n)
{
    memset(kvs, 0, sizeof(kv_t) * (n + 1));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    for (size_t i = 0; i < n; i++) {
        kv_set_key(&kvs[i + 1], names[i]);
        entry_spec_t e = {.dtype = 1, .offset = (int64_t)(4 * i), .size = 4};
        entry_proto(&kvs[i + 1].value, &e);
    }
    return n + 1;
}

static void test_built_tables_parse(void **state)
{
    (void)state;
    static char name_store[1000][16];
    const char *names[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(name_store[i], sizeof(name_store[i]), "layer_%03d/w", i);
        names[i] = name_store[i];
    }
    static const struct {
        size_t per_block;
        int restart;
        int compression;
    } shapes[] = {{0, 16, 0}, {50, 16, 1}, {7, 1, 0}, {1, 3, 1}, {333, 1000, 0}, {1000, 2, 1}};
    kv_t kvs[1001];
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        size_t n = float_table_kvs(kvs, names, 1000);
        table_spec_t t = {kvs,  n,   shapes[s].per_block, shapes[s].restart, shapes[s].compression,
                          NULL, NULL};
        bytes_t file = {0};
        build_table(&file, &t);
        arena_t *a = arena_create(0);
        bundle_index_t idx;
        nn_error_t err;
        if (!parse_bytes(a, file.p, file.len, &idx, &err))
            fail_msg("shape %zu: %s", s, err.message);
        assert_int_equal(idx.nentries, 1000);
        size_t per = shapes[s].per_block ? shapes[s].per_block : 1001;
        assert_int_equal(idx.data_blocks, (1001 + per - 1) / per);
        if (shapes[s].compression)
            assert_int_equal(idx.snappy_blocks, idx.data_blocks + 2);
        else
            assert_int_equal(idx.snappy_blocks, 0);
        for (int i = 0; i < 1000; i++) {
            assert_string_equal(idx.entries[i].name, names[i]);
            assert_int_equal(idx.entries[i].offset, 4 * (uint64_t)i);
        }
        assert_ptr_equal(bundle_find(&idx, "layer_500/w"), &idx.entries[500]);
        assert_null(bundle_find(&idx, "layer_500"));
        arena_destroy(a);
        free(file.p);
        kv_free(kvs, n);
    }
}

/* One malformed table: its kvs (header included), and the message. */
static void expect_table_error_ex(kv_t *kvs, size_t n, void (*mutate_index)(bytes_t *),
                                  const char *needle)
{
    table_spec_t t = {kvs, n, 0, 16, 0, NULL, mutate_index};
    bytes_t file = {0};
    build_table(&file, &t);
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    if (parse_bytes(a, file.p, file.len, &idx, &err))
        fail_msg("expected an error containing \"%s\"", needle);
    assert_invalid(&err, needle);
    arena_destroy(a);
    free(file.p);
    kv_free(kvs, n);
}

static void expect_table_error(kv_t *kvs, size_t n, const char *needle)
{
    expect_table_error_ex(kvs, n, NULL, needle);
}

/* Sets the (single, one-byte) index key to "z", past every data key. */
static void mut_index_key_z(bytes_t *c)
{
    c->p[3] = 'z';
}

static void test_built_entry_errors(void **state)
{
    (void)state;
    static const struct {
        entry_spec_t e;
        const char *needle;
    } cases[] = {
        {{.dtype = 1, .ndims = 2, .dims = {2, 3}, .size = 4},
         "entry \"x\" says its data takes 4 bytes, but a float tensor of 6 elements takes 24"},
        {{.dtype = 1, .ndims = -1, .size = 4}, "shape of unknown rank"},
        {{.dtype = 1, .ndims = 1, .dims = {-1}, .size = 4}, "unknown (negative) size"},
        {{.dtype = 0, .size = 4}, "entry \"x\" has data type 0"},
        {{.dtype = 101, .size = 4}, "data type 101"},
        {{.dtype = 1, .shard = 1, .size = 4},
         "entry \"x\" is in shard 1 but the header says the "
         "checkpoint has 1 shard"},
        {{.dtype = 1, .shard = -1, .size = 4}, "is in shard -1"},
        {{.dtype = 1, .offset = -4, .size = 4}, "negative offset or size"},
        {{.dtype = 7, .ndims = 1, .dims = {10}, .size = 5}, "too few for 10 strings"},
        {{.dtype = 1, .ndims = 4, .dims = {1ll << 40, 1ll << 40, 1, 1}, .size = 4},
         "overflows 64 bits"},
        {{.dtype = 1, .ndims = 2, .dims = {1ll << 62, 2}, .size = 4}, "too large"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_t kvs[2];
        memset(kvs, 0, sizeof(kvs));
        header_proto(&kvs[0].value, 1, 0, 1, 0);
        kv_set_key(&kvs[1], "x");
        entry_proto(&kvs[1].value, &cases[i].e);
        expect_table_error(kvs, 2, cases[i].needle);
    }

    /* A value that is not a protobuf. */
    kv_t kvs[3];
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    kv_set_key(&kvs[1], "x");
    put(&kvs[1].value, "\xff\xff\xff", 3);
    expect_table_error(kvs, 2, "entry \"x\" is not a valid protobuf");

    /* A field of the wrong wire type. */
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    kv_set_key(&kvs[1], "x");
    put(&kvs[1].value, "\x0d\x01\x00\x00\x00", 5); /* dtype as fixed32 */
    expect_table_error(kvs, 2, "field 1 is a fixed32, expected a varint");

    /* Header problems. */
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 0, 0, 1, 0);
    expect_table_error(kvs, 1, "header says the checkpoint has 0 shards");
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 2, 2);
    expect_table_error(kvs, 1, "tensor-bundle format version this reader does not know");
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 7, 1, 0);
    expect_table_error(kvs, 1, "unknown endianness");
    memset(kvs, 0, sizeof(kvs));
    put(&kvs[0].value, "\x08", 1);
    expect_table_error(kvs, 1, "the header entry (BundleHeaderProto) is not a valid protobuf");

    /* Keys: no header, out of order, twice. */
    memset(kvs, 0, sizeof(kvs));
    kv_set_key(&kvs[0], "a");
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    expect_table_error(kvs, 1, "has no header entry (its first key is \"a\"");

    entry_spec_t fl = {.dtype = 1, .size = 4};
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    kv_set_key(&kvs[1], "b");
    entry_proto(&kvs[1].value, &fl);
    kv_set_key(&kvs[2], "a");
    entry_proto(&kvs[2].value, &fl);
    expect_table_error_ex(kvs, 3, mut_index_key_z, "keys are out of order at \"a\"");

    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    kv_set_key(&kvs[1], "a");
    entry_proto(&kvs[1].value, &fl);
    kv_set_key(&kvs[2], "a");
    entry_proto(&kvs[2].value, &fl);
    expect_table_error(kvs, 3, "has the key \"a\" twice");

    /* No entries at all (not even the header). */
    bytes_t file = {0};
    table_spec_t t = {NULL, 0, 0, 16, 0, NULL, NULL};
    build_table(&file, &t);
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_false(parse_bytes(a, file.p, file.len, &idx, &err));
    assert_invalid(&err, "has no entries, not even the header");
    arena_destroy(a);
    free(file.p);
}

static void test_built_key_limits(void **state)
{
    (void)state;
    kv_t kvs[2];
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    char *big = malloc(BUNDLE_MAX_KEY_BYTES + 2);
    assert_non_null(big);
    memset(big, 'k', BUNDLE_MAX_KEY_BYTES + 1);
    big[BUNDLE_MAX_KEY_BYTES + 1] = '\0';
    kv_set_key(&kvs[1], big);
    entry_spec_t fl = {.dtype = 1, .size = 4};
    entry_proto(&kvs[1].value, &fl);
    expect_table_error(kvs, 2, "a key of 65537 bytes, more than the 65536 allowed");

    /* Exactly at the limit is fine; binary keys are shown escaped. */
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    big[BUNDLE_MAX_KEY_BYTES] = '\0';
    kv_set_key(&kvs[1], big);
    entry_proto(&kvs[1].value, &fl);
    table_spec_t t = {kvs, 2, 0, 16, 1, NULL, NULL};
    bytes_t file = {0};
    build_table(&file, &t);
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_true(parse_bytes(a, file.p, file.len, &idx, &err));
    assert_int_equal(idx.entries[0].name_len, BUNDLE_MAX_KEY_BYTES);
    arena_destroy(a);
    free(file.p);
    kv_free(kvs, 2);
    free(big);

    char shown[32];
    assert_string_equal(bundle_display_name("a\x01\"b\\", 5, shown, sizeof(shown)),
                        "a\\x01\\\"b\\\\");
    assert_string_equal(bundle_display_name("abcdefghijklmnopqrstuvwxyz0123456789", 36, shown, 16),
                        "abcdefghijkl...");
    assert_int_equal(bundle_dtype_size(1), 4);
    assert_int_equal(bundle_dtype_size(7), 0);
    assert_int_equal(bundle_dtype_size(18), 16);
    assert_int_equal(bundle_dtype_size(-1), 0);
    assert_int_equal(bundle_dtype_size(1000), 0);
}

/* Block-level malformations, applied to the contents before the trailer
 * is computed (so the checksum is right and the structure is wrong). */
static void mut_restart_count_huge(bytes_t *c, size_t no)
{
    (void)no;
    uint32_t v = 0x40000000u;
    memcpy(c->p + c->len - 4, &v, 4);
}
static void mut_restart_count_zero(bytes_t *c, size_t no)
{
    (void)no;
    memset(c->p + c->len - 4, 0, 4);
}
static void mut_restart_inside_entry(bytes_t *c, size_t no)
{
    (void)no;
    /* Restart interval 2 gives restarts {0, e2}; move the second by one. */
    uint32_t r;
    memcpy(&r, c->p + c->len - 8, 4);
    r += 1;
    memcpy(c->p + c->len - 8, &r, 4);
}
static void mut_restart_past_entries(bytes_t *c, size_t no)
{
    (void)no;
    uint32_t r = (uint32_t)c->len;
    memcpy(c->p + c->len - 8, &r, 4);
}
static void mut_restarts_descending(bytes_t *c, size_t no)
{
    (void)no;
    memset(c->p + c->len - 8, 0, 4);
}
static void mut_first_restart_not_zero(bytes_t *c, size_t no)
{
    (void)no;
    /* Two restarts {0, x}: make the first x too. */
    memcpy(c->p + c->len - 12, c->p + c->len - 8, 4);
}
static void mut_entry_too_long(bytes_t *c, size_t no)
{
    (void)no;
    c->p[2] = 0x7f; /* first entry's value length */
}
static void mut_shared_too_long(bytes_t *c, size_t no)
{
    (void)no;
    /* Second entry (restart interval 16, so it shares): claim 100 shared. */
    size_t first = 3 + c->p[1] + c->p[2];
    c->p[first] = 100;
}
static void mut_shared_at_restart(bytes_t *c, size_t no)
{
    (void)no;
    /* The header entry (key "", at restart 0) claims a shared byte: with
     * an empty previous key that is also too many. */
    c->p[0] = 1;
}
static void mut_tiny_block(bytes_t *c, size_t no)
{
    (void)no;
    c->len = 3;
}
static void mut_index_key_small(bytes_t *c)
{
    /* The index block's one key "b" (1 byte, after 3 header bytes). */
    c->p[3] = 'a';
}

static void expect_block_error(void (*mut)(bytes_t *, size_t), void (*imut)(bytes_t *),
                               int restart_interval, const char *needle)
{
    kv_t kvs[4];
    static const char *const names[] = {"a", "ab", "b"};
    size_t n = float_table_kvs(kvs, names, 3);
    table_spec_t t = {kvs, n, 0, restart_interval, 0, mut, imut};
    bytes_t file = {0};
    build_table(&file, &t);
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    if (parse_bytes(a, file.p, file.len, &idx, &err))
        fail_msg("expected an error containing \"%s\"", needle);
    assert_invalid(&err, needle);
    arena_destroy(a);
    free(file.p);
    kv_free(kvs, n);
}

static void test_built_block_errors(void **state)
{
    (void)state;
    expect_block_error(mut_restart_count_huge, NULL, 16, "restart count larger than the block");
    expect_block_error(mut_restart_count_zero, NULL, 16, "no restart points");
    expect_block_error(mut_restart_inside_entry, NULL, 2, "restart point inside an entry");
    expect_block_error(mut_restart_past_entries, NULL, 2, "restart point past the entries");
    expect_block_error(mut_restarts_descending, NULL, 2,
                       "restart points are not in ascending order");
    expect_block_error(mut_first_restart_not_zero, NULL, 2,
                       "first restart point is not at the first entry");
    expect_block_error(mut_entry_too_long, NULL, 16, "entry longer than the block");
    expect_block_error(mut_shared_too_long, NULL, 16,
                       "shares more key bytes than the previous key has");
    expect_block_error(mut_shared_at_restart, NULL, 16,
                       "entry at a restart point shares a key prefix");
    expect_block_error(mut_tiny_block, NULL, 16, "shorter than its restart count");
    expect_block_error(NULL, mut_index_key_small, 16, "a key sorts after the block's index key");
    /* Each message says which block, and what to do. */
    expect_block_error(mut_restart_count_zero, NULL, 16,
                       "variables.index data block at offset 0 is malformed (no restart points): "
                       "the file is damaged; upload it again");
}

/* A trailer's compression type byte, and Snappy data that is not. */
static void test_built_compression_errors(void **state)
{
    (void)state;
    kv_t kvs[2];
    static const char *const names[] = {"a"};
    size_t n = float_table_kvs(kvs, names, 1);
    table_spec_t t = {kvs, n, 0, 16, 0, NULL, NULL};
    bytes_t file = {0};
    build_table(&file, &t);
    kv_free(kvs, n);
    /* The data block is at offset 0; find its trailer from the index
     * handle: rebuild instead, knowing its contents length. */
    bytes_t contents = {0};
    n = float_table_kvs(kvs, names, 1);
    kv_t *ptrs[2] = {&kvs[0], &kvs[1]};
    block_contents(&contents, ptrs, n, 16);
    kv_free(kvs, n);
    size_t tpos = contents.len; /* type byte of the data block */
    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;

    for (unsigned type = 1; type <= 3; type++) {
        file.p[tpos] = (unsigned char)type;
        uint32_t crc = crc32c_mask(crc32c_value(file.p, tpos + 1));
        memcpy(file.p + tpos + 1, &crc, 4);
        assert_false(parse_bytes(a, file.p, file.len, &idx, &err));
        if (type == 1)
            assert_invalid(&err, "data block at offset 0 says it is Snappy-compressed but");
        else
            assert_invalid(&err, "has compression type");
    }
    assert_invalid(&err, "data block at offset 0 has compression type 3; a table block is either "
                         "0 (none) or 1 (Snappy)");
    free(contents.p);
    free(file.p);

    /* Snappy whose stated length is huge. */
    bytes_t bomb = {0};
    put_varint(&bomb, (uint64_t)BUNDLE_MAX_BLOCK_BYTES + 1);
    put(&bomb, "\x00\x61", 2);
    bytes_t f2 = {0};
    uint64_t off, size;
    /* Write it as a type-1 block by hand. */
    put(&f2, bomb.p, bomb.len);
    put_byte(&f2, 1);
    put_fixed32(&f2, crc32c_mask(crc32c_value(f2.p, f2.len)));
    off = 0;
    size = bomb.len;
    bytes_t index = {0};
    kv_t ik;
    memset(&ik, 0, sizeof(ik));
    put(&ik.key, "z", 1);
    put_varint(&ik.value, off);
    put_varint(&ik.value, size);
    kv_t *ip[1] = {&ik};
    block_contents(&index, ip, 1, 1);
    uint64_t ioff, isize, moff, msize;
    bytes_t meta = {0};
    block_contents(&meta, NULL, 0, 16);
    write_block(&f2, &meta, 0, &moff, &msize);
    write_block(&f2, &index, 0, &ioff, &isize);
    size_t fs = f2.len;
    put_varint(&f2, moff);
    put_varint(&f2, msize);
    put_varint(&f2, ioff);
    put_varint(&f2, isize);
    while (f2.len < fs + 40)
        put_byte(&f2, 0);
    put_fixed64(&f2, 0xdb4775248b80fb57ull);
    assert_false(parse_bytes(a, f2.p, f2.len, &idx, &err));
    assert_invalid(&err, "would decompress to 67108865 bytes, more than the 67108864 allowed");
    free(f2.p);
    free(bomb.p);
    free(index.p);
    free(meta.p);
    free(ik.key.p);
    free(ik.value.p);
    arena_destroy(a);
}

/* String and variant tensors written the way TensorFlow writes them, two
 * shards, a partitioned variable, padding between tensors. */
static void test_built_string_variant_shards(void **state)
{
    (void)state;
    bytes_t shard0 = {0}, shard1 = {0};

    /* shard 0: "f" float[2] at 0, then padding, "s" string[3] at 16 */
    put_fixed32(&shard0, 0x3f800000u);
    put_fixed32(&shard0, 0x40000000u);
    uint32_t f_crc = crc32c_mask(crc32c_value(shard0.p, 8));
    while (shard0.len < 16)
        put_byte(&shard0, 0);
    static const char *const strs[] = {"ab", "", "xyz"};
    uint32_t crc = 0;
    size_t s_off = shard0.len;
    for (int i = 0; i < 3; i++) {
        uint32_t l = (uint32_t)strlen(strs[i]);
        put_varint(&shard0, l);
        unsigned char le[4] = {(unsigned char)l, 0, 0, 0};
        crc = crc32c_extend(crc, le, 4);
    }
    uint32_t lencrc = crc32c_mask(crc);
    put_fixed32(&shard0, lencrc);
    crc = crc32c_extend(crc, shard0.p + shard0.len - 4, 4);
    for (int i = 0; i < 3; i++) {
        put(&shard0, strs[i], strlen(strs[i]));
        crc = crc32c_extend(crc, strs[i], strlen(strs[i]));
    }
    size_t s_size = shard0.len - s_off;
    uint32_t s_crc = crc32c_mask(crc);

    /* shard 1: "v" variant[2] at 0: (varint len, bytes, masked running crc)* */
    crc = 0;
    static const char *const elems[] = {"\x0a\x03"
                                        "abc",
                                        ""};
    for (int i = 0; i < 2; i++) {
        uint64_t l = strlen(elems[i]);
        put_varint(&shard1, l);
        unsigned char le[8] = {(unsigned char)l, 0, 0, 0, 0, 0, 0, 0};
        crc = crc32c_extend(crc, le, 8);
        put(&shard1, elems[i], (size_t)l);
        crc = crc32c_extend(crc, elems[i], (size_t)l);
        put_fixed32(&shard1, crc32c_mask(crc));
        crc = crc32c_extend(crc, shard1.p + shard1.len - 4, 4);
    }
    size_t v_size = shard1.len;
    uint32_t v_crc = crc32c_mask(crc);

    /* An empty string tensor: just the lengths checksum of nothing. */
    size_t e_off = shard1.len;
    put_fixed32(&shard1, crc32c_mask(0));
    uint32_t e_crc = crc32c_mask(crc32c_value(shard1.p + e_off, 4));

    kv_t kvs[6];
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 2, 0, 1, 0);
    kv_set_key(&kvs[1], "e");
    entry_spec_t e_e = {.dtype = 7,
                        .ndims = 1,
                        .dims = {0},
                        .shard = 1,
                        .offset = (int64_t)e_off,
                        .size = 4,
                        .crc = e_crc};
    entry_proto(&kvs[1].value, &e_e);
    kv_set_key(&kvs[2], "f");
    entry_spec_t e_f = {.dtype = 1, .ndims = 1, .dims = {2}, .size = 8, .crc = f_crc};
    entry_proto(&kvs[2].value, &e_f);
    kv_set_key(&kvs[3], "p");
    entry_spec_t e_p = {.dtype = 1, .ndims = 2, .dims = {4, 4}, .nslices = 2}; /* partitioned */
    entry_proto(&kvs[3].value, &e_p);
    kv_set_key(&kvs[4], "s");
    entry_spec_t e_s = {.dtype = 7,
                        .ndims = 1,
                        .dims = {3},
                        .offset = (int64_t)s_off,
                        .size = (int64_t)s_size,
                        .crc = s_crc};
    entry_proto(&kvs[4].value, &e_s);
    kv_set_key(&kvs[5], "v");
    entry_spec_t e_v = {
        .dtype = 21, .ndims = 1, .dims = {2}, .shard = 1, .size = (int64_t)v_size, .crc = v_crc};
    entry_proto(&kvs[5].value, &e_v);
    table_spec_t t = {kvs, 6, 2, 1, 1, NULL, NULL};
    bytes_t file = {0};
    build_table(&file, &t);
    kv_free(kvs, 6);

    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    if (!parse_bytes(a, file.p, file.len, &idx, &err))
        fail_msg("%s", err.message);
    assert_int_equal(idx.num_shards, 2);
    assert_int_equal(idx.nentries, 5);
    assert_int_equal(bundle_find(&idx, "p")->nslices, 2);
    assert_int_equal(bundle_find(&idx, "p")->num_elements, 16);
    assert_int_equal(bundle_find(&idx, "s")->num_elements, 3);

    const char *paths[2] = {spill("b.data-00000-of-00002", shard0.p, shard0.len),
                            spill("b.data-00001-of-00002", shard1.p, shard1.len)};
    bundle_check_stats_t st;
    if (!bundle_check_shards(&idx, paths, NULL, 2, &st, &err))
        fail_msg("%s", err.message);
    assert_int_equal(st.entries_checked, 4);
    assert_int_equal(st.bytes_checked, 8 + s_size + v_size + 4);

    /* The wrong lengths checksum of the string tensor. */
    shard0.p[s_off + 3] ^= 1;
    paths[0] = spill("b.data-00000-of-00002", shard0.p, shard0.len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 2, NULL, &err));
    assert_invalid(&err, "variable \"s\" in variables.data-00000-of-00002 (offset 16, 12 bytes) is "
                         "damaged: the checksum of its string lengths does not match");
    shard0.p[s_off + 3] ^= 1;
    /* A string length larger than the entry. */
    shard0.p[s_off + 2] = 0x7f;
    paths[0] = spill("b.data-00000-of-00002", shard0.p, shard0.len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 2, NULL, &err));
    assert_invalid(&err, "variable \"s\"");
    shard0.p[s_off + 2] = 3;
    paths[0] = spill("b.data-00000-of-00002", shard0.p, shard0.len);

    /* A variant element checksum flipped; then a variant byte. */
    shard1.p[5] ^= 1; /* first element's checksum starts at 1 + 5 */
    paths[1] = spill("b.data-00001-of-00002", shard1.p, shard1.len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 2, NULL, &err));
    assert_invalid(&err, "variable \"v\" in variables.data-00001-of-00002 (offset 0, 15 bytes) is "
                         "damaged: the checksum of one of its elements does not match");
    shard1.p[5] ^= 1;
    shard1.p[3] ^= 1;
    paths[1] = spill("b.data-00001-of-00002", shard1.p, shard1.len);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 2, NULL, &err));
    assert_invalid(&err, "variable \"v\"");
    shard1.p[3] ^= 1;

    /* Shard names given by the caller. */
    shard1.p[e_off] ^= 1;
    paths[1] = spill("b.data-00001-of-00002", shard1.p, shard1.len);
    const char *names[2] = {"variables/variables.data-00000-of-00002",
                            "variables/variables.data-00001-of-00002"};
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, names, 2, NULL, &err));
    assert_invalid(&err, "variable \"e\" in variables/variables.data-00001-of-00002");

    arena_destroy(a);
    free(file.p);
    free(shard0.p);
    free(shard1.p);
}

/* A shard bigger than the read buffer: entries span chunk boundaries. */
static void test_built_large_shard(void **state)
{
    (void)state;
    const size_t big = (size_t)BUNDLE_READ_CHUNK * 2 + 12345;
    unsigned char *data = malloc(big + 8);
    assert_non_null(data);
    uint32_t x = 99;
    for (size_t i = 0; i < big + 8; i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = (unsigned char)(x >> 24);
    }
    /* "big" uint8[big] at 0, "tail" float[2] right after. */
    kv_t kvs[3];
    memset(kvs, 0, sizeof(kvs));
    header_proto(&kvs[0].value, 1, 0, 1, 0);
    kv_set_key(&kvs[1], "big");
    entry_spec_t eb = {.dtype = 4,
                       .ndims = 1,
                       .dims = {(int64_t)big},
                       .size = (int64_t)big,
                       .crc = crc32c_mask(crc32c_value(data, big))};
    entry_proto(&kvs[1].value, &eb);
    kv_set_key(&kvs[2], "tail");
    entry_spec_t et = {.dtype = 1,
                       .ndims = 1,
                       .dims = {2},
                       .offset = (int64_t)big,
                       .size = 8,
                       .crc = crc32c_mask(crc32c_value(data + big, 8))};
    entry_proto(&kvs[2].value, &et);
    table_spec_t t = {kvs, 3, 0, 16, 0, NULL, NULL};
    bytes_t file = {0};
    build_table(&file, &t);
    kv_free(kvs, 3);

    arena_t *a = arena_create(0);
    bundle_index_t idx;
    nn_error_t err;
    assert_true(parse_bytes(a, file.p, file.len, &idx, &err));
    const char *paths[1] = {spill("big.data", data, big + 8)};
    bundle_check_stats_t st;
    if (!bundle_check_shards(&idx, paths, NULL, 1, &st, &err))
        fail_msg("%s", err.message);
    assert_int_equal(st.bytes_checked, big + 8);

    data[BUNDLE_READ_CHUNK + 7] ^= 4;
    paths[0] = spill("big.data", data, big + 8);
    nn_error_init(&err);
    assert_false(bundle_check_shards(&idx, paths, NULL, 1, NULL, &err));
    assert_invalid(&err, "variable \"big\"");
    assert_invalid(&err, "fails its CRC-32C check");

    arena_destroy(a);
    free(file.p);
    free(data);
}

/* Random mutations inside the uncompressed blocks of the fixtures, with
 * the block checksum fixed up so the parser must look at the structure:
 * each one is accepted or refused, never a crash or a sanitizer report. */
static void test_mutations_never_crash(void **state)
{
    (void)state;
    static const char *const plain[] = {"half_plus_three", "counter", "half_plus_two_mkl"};
    uint32_t x = 2024;
    size_t refused = 0, total = 0;
    for (size_t m = 0; m < sizeof(plain) / sizeof(plain[0]); m++) {
        size_t len;
        unsigned char *orig = slurp(fixture_index(plain[m]), &len);
        /* The data block is at offset 0; its size is the first handle in
         * the index block (footer -> index handle -> first entry value). */
        const unsigned char *footer = orig + len - 48;
        size_t i = 0;
        uint64_t h[4] = {0};
        for (int k = 0; k < 4; k++) {
            unsigned shift = 0;
            while (footer[i] & 0x80) {
                h[k] |= (uint64_t)(footer[i++] & 0x7f) << shift;
                shift += 7;
            }
            h[k] |= (uint64_t)footer[i++] << shift;
        }
        const unsigned char *ib = orig + h[2];
        size_t klen = ib[1];
        const unsigned char *hv = ib + 3 + klen;
        uint64_t doff = 0, dsize = 0;
        unsigned shift = 0;
        size_t j = 0;
        while (hv[j] & 0x80) {
            doff |= (uint64_t)(hv[j++] & 0x7f) << shift;
            shift += 7;
        }
        doff |= (uint64_t)hv[j++] << shift;
        shift = 0;
        while (hv[j] & 0x80) {
            dsize |= (uint64_t)(hv[j++] & 0x7f) << shift;
            shift += 7;
        }
        dsize |= (uint64_t)hv[j++] << shift;
        assert_int_equal(doff, 0);
        assert_true(dsize + 5 < len);

        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        for (int iter = 0; iter < 3000; iter++) {
            memcpy(copy, orig, len);
            int nmut = 1 + (int)((x >> 8) % 4);
            for (int k = 0; k < nmut; k++) {
                x = x * 1103515245u + 12345u;
                size_t pos = (x >> 8) % dsize;
                x = x * 1103515245u + 12345u;
                copy[pos] = (x >> 20) & 1 ? (unsigned char)(x >> 8)
                                          : copy[pos] ^ (unsigned char)(1u << ((x >> 9) % 8));
            }
            uint32_t crc = crc32c_mask(crc32c_value(copy, dsize + 1));
            memcpy(copy + dsize + 1, &crc, 4);
            arena_t *a = arena_create(0);
            bundle_index_t idx;
            nn_error_t err;
            if (!parse_bytes(a, copy, len, &idx, &err)) {
                assert_int_equal(err.status, 400);
                refused++;
            }
            total++;
            arena_destroy(a);
        }
        free(copy);
        free(orig);
    }
    assert_true(refused > 0);
    print_message("mutations: %zu of %zu refused\n", refused, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_list_variables),
        cmocka_unit_test(test_fixtures_shards_verify),
        cmocka_unit_test(test_fixtures_crc_convention),
        cmocka_unit_test(test_fixtures_every_flip_fails),
        cmocka_unit_test(test_fixtures_every_truncation_fails),
        cmocka_unit_test(test_damaged_index_messages),
        cmocka_unit_test(test_damaged_shard_messages),
        cmocka_unit_test(test_damaged_string_tensor),
        cmocka_unit_test(test_built_tables_parse),
        cmocka_unit_test(test_built_entry_errors),
        cmocka_unit_test(test_built_key_limits),
        cmocka_unit_test(test_built_block_errors),
        cmocka_unit_test(test_built_compression_errors),
        cmocka_unit_test(test_built_string_variant_shards),
        cmocka_unit_test(test_built_large_shard),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
