/* Unit tests: mean files (model/npy): .npy headers written here the way
 * NumPy writes them (format 1.0, 2.0, 3.0), malformed headers, data
 * lengths, Caffe BlobProto bytes built by hand, and which mean shapes fit
 * which inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "model/npy.h"
#include "util/error.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

static char tmpdir[] = "/tmp/nnreg-test-npy-XXXXXX";

/* ---- building files ----------------------------------------------------------- */

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

/* A .npy file as NumPy writes it: magic, version, header length, the dict
 * padded with spaces and a newline to a multiple of 64, then data_len
 * bytes of data. */
static void npy_file(bytes_t *b, int major, const char *dict, size_t data_len)
{
    size_t prefix = major == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1;
    while ((prefix + hlen) % 64 != 0)
        hlen++;
    put(b, "\x93NUMPY", 6);
    put_byte(b, (unsigned)major);
    put_byte(b, 0);
    put_byte(b, hlen & 0xff);
    put_byte(b, (hlen >> 8) & 0xff);
    if (major != 1) {
        put_byte(b, (hlen >> 16) & 0xff);
        put_byte(b, (hlen >> 24) & 0xff);
    }
    put(b, dict, strlen(dict));
    for (size_t i = strlen(dict); i + 1 < hlen; i++)
        put_byte(b, ' ');
    put_byte(b, '\n');
    for (size_t i = 0; i < data_len; i++)
        put_byte(b, (unsigned)(i * 7));
}

static bool parse_copy(const void *data, size_t len, npy_info_t *info, nn_error_t *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    nn_error_init(err);
    bool ok = npy_parse(copy, len, "mean.npy", info, err);
    free(copy);
    return ok;
}

static bool blob_copy(const void *data, size_t len, npy_info_t *info, nn_error_t *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    nn_error_init(err);
    bool ok = npy_parse_blobproto(copy, len, "mean.binaryproto", info, err);
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
    assert_string_equal(err->code, "invalid_mean_file");
    assert_contains(err->message, needle);
}

static const char *tmp_file(const char *name, const void *data, size_t len)
{
    static char path[2][512];
    static int turn;
    turn ^= 1;
    snprintf(path[turn], sizeof(path[turn]), "%s/%s", tmpdir, name);
    FILE *f = fopen(path[turn], "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path[turn];
}

/* ---- .npy ------------------------------------------------------------------------ */

static void test_npy_valid_headers(void **state)
{
    (void)state;
    static const struct {
        int major;
        const char *dict;
        const char *descr;
        size_t itemsize;
        size_t ndims;
        int64_t shape[4];
        uint64_t count;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "<f4", 4, 1, {3}, 3},
        {1,
         "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5, 3), }",
         "<f8",
         8,
         3,
         {4, 5, 3},
         60},
        {2,
         "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }",
         "|u1",
         1,
         3,
         {2, 2, 3},
         12},
        {3,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }",
         "<f4",
         4,
         3,
         {3, 2, 2},
         12},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "<f4", 4, 0, {0}, 1},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", "<f4", 4, 1, {0}, 0},
        /* Python 2 NumPy: long integers, no trailing comma. */
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 1L)}", "<f4", 4, 2, {3, 1}, 3},
        /* Any key order, double quotes, spaces. */
        {1,
         "{ \"shape\" : ( 2 , 3 ) , \"fortran_order\":False,\"descr\":\"<i8\" }",
         "<i8",
         8,
         2,
         {2, 3},
         6},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,)}", ">f4", 4, 1, {3}, 3},
        {1, "{'descr': '=f2', 'fortran_order': False, 'shape': (3,)}", "<f2", 2, 1, {3}, 3},
        {1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,)}", "<u2", 2, 1, {3}, 3},
        {1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,)}", "|i1", 1, 1, {3}, 3},
        {1, "{u'descr': u'<f4', u'fortran_order': False, u'shape': (3,)}", "<f4", 4, 1, {3}, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bytes_t b = {0};
        npy_file(&b, cases[i].major, cases[i].dict, cases[i].count * cases[i].itemsize);
        npy_info_t info;
        nn_error_t err;
        if (!parse_copy(b.p, b.len, &info, &err))
            fail_msg("case %zu: %s", i, err.message);
        assert_string_equal(info.descr, cases[i].descr);
        assert_int_equal(info.itemsize, cases[i].itemsize);
        assert_int_equal(info.ndims, cases[i].ndims);
        for (size_t d = 0; d < cases[i].ndims; d++)
            assert_int_equal(info.shape[d], cases[i].shape[d]);
        assert_int_equal(info.count, cases[i].count);
        assert_int_equal(info.data_bytes, cases[i].count * cases[i].itemsize);
        assert_int_equal(info.data_offset % 64, 0);
        assert_int_equal(info.data_offset + info.data_bytes, b.len);
        assert_int_equal(info.version_major, cases[i].major);
        free(b.p);
    }
}

static void test_npy_bad_headers(void **state)
{
    (void)state;
    static const struct {
        const char *dict;
        const char *needle;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }",
         "Fortran (column-major) order"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
         "not an integer or floating-point"},
        {"{'descr': '<U10', 'fortran_order': False, 'shape': (3,), }",
         "not an integer or floating-point"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", "dtype '<c8'"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
         "not an integer or floating-point"},
        {"{'descr': '<f3', 'fortran_order': False, 'shape': (3,), }", "item size"},
        {"{'descr': '<f123', 'fortran_order': False, 'shape': (3,), }", "not a plain numeric type"},
        {"{'descr': '<', 'fortran_order': False, 'shape': (3,), }", "is not a NumPy type"},
        {"{'descr': [('r', '<f4'), ('g', '<f4')], 'fortran_order': False, 'shape': (3,), }",
         "structured array"},
        {"{'descr': '<f4', 'fortran_order': False, }", "without 'shape'"},
        {"{'descr': '<f4', 'shape': (3,), }", "without 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (3,), }", "without 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
         "unexpected key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
         "'descr' twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } x", "bytes after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }",
         "tuple of non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,), }",
         "tuple of non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "tuple of non-negative integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), "
         "}",
         "overflows 64 bits"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2147483648, 4294967296), }",
         "size in bytes overflows"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }", "not True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,), }", "not True or False"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,), }",
         "'descr' that is not a string"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (3,), }", "cannot be parsed"},
        {"['descr', '<f4']", "not a Python dict literal"},
        {"", "not a Python dict literal"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", "cannot be parsed"},
        {"{'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), "
         "'descr': '<f4', 'fortran_order': False}",
         "more than 32 dimensions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bytes_t b = {0};
        npy_file(&b, 1, cases[i].dict, 12);
        npy_info_t info;
        nn_error_t err;
        if (parse_copy(b.p, b.len, &info, &err))
            fail_msg("case %zu parsed: %s", i, cases[i].dict);
        assert_invalid(&err, cases[i].needle);
        assert_contains(err.message, "mean file \"mean.npy\"");
        free(b.p);
    }
}

static void test_npy_prefix_and_lengths(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    bytes_t b = {0};
    npy_info_t info;
    nn_error_t err;
    npy_file(&b, 1, dict, 12);

    /* Bad magic, unknown versions. */
    b.p[1] = 'n';
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "is not a NumPy .npy file (it does not start with \\x93NUMPY)");
    b.p[1] = 'N';
    b.p[6] = 4;
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "format version 4.0");
    b.p[6] = 1;
    b.p[7] = 1;
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "format version 1.1");
    b.p[7] = 0;
    b.p[6] = 0;
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "format version 0.0");
    b.p[6] = 1;

    /* Short and long data. */
    assert_false(parse_copy(b.p, b.len - 1, &info, &err));
    assert_invalid(&err,
                   "holds 11 bytes of data but its header (shape (3,), dtype '<f4') needs 12: "
                   "the file is truncated");
    bytes_t longer = {0};
    put(&longer, b.p, b.len);
    put(&longer, "\0\0\0\0", 4);
    assert_false(parse_copy(longer.p, longer.len, &info, &err));
    assert_invalid(&err, "needs only 12: the file has trailing bytes");
    free(longer.p);

    /* Every truncation is an error, never a crash. */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_false(parse_copy(b.p, cut, &info, &err));
        assert_int_equal(err.status, 400);
    }
    /* The header alone parses with npy_parse_header. */
    nn_error_init(&err);
    assert_true(npy_parse_header(b.p, b.len - 12, "m.npy", &info, &err));
    assert_int_equal(info.data_offset, b.len - 12);
    assert_int_equal(info.data_offset, 128);

    /* A header length past the end; a v2 header past the limit. */
    b.p[8] = 0xff;
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "truncated inside its .npy header");
    free(b.p);
    memset(&b, 0, sizeof(b));
    npy_file(&b, 2, dict, 12);
    b.p[10] = 0x20; /* 2 MiB + 116 */
    assert_false(parse_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "more than the 1048576 allowed");
    free(b.p);

    /* Random byte changes in the header: accepted or refused, no crash. */
    memset(&b, 0, sizeof(b));
    npy_file(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, 4), }", 192);
    unsigned char *copy = malloc(b.len);
    assert_non_null(copy);
    uint32_t x = 7;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, b.p, b.len);
        for (int k = 0; k < 3; k++) {
            x = x * 1103515245u + 12345u;
            size_t pos = 6 + (x >> 8) % 58;
            x = x * 1103515245u + 12345u;
            copy[pos] = (unsigned char)(x >> 16);
        }
        (void)parse_copy(copy, b.len, &info, &err);
    }
    free(copy);
    free(b.p);
}

static void test_npy_check_file(void **state)
{
    (void)state;
    bytes_t b = {0};
    npy_info_t info;
    nn_error_t err;
    npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (224, 224, 3), }",
             224 * 224 * 3 * 4);
    const char *path = tmp_file("mean.npy", b.p, b.len);
    nn_error_init(&err);
    if (!npy_check_file(path, "mean.npy", &info, &err))
        fail_msg("%s", err.message);
    assert_int_equal(info.count, 224 * 224 * 3);
    assert_int_equal(npy_mean_fits(info.shape, info.ndims, 3, 224, 224, NULL, 0), NPY_MEAN_HWC);

    path = tmp_file("short.npy", b.p, b.len - 100);
    nn_error_init(&err);
    assert_false(npy_check_file(path, "short.npy", &info, &err));
    assert_invalid(&err, "mean file \"short.npy\" holds 602012 bytes of data but its header "
                         "(shape (224, 224, 3), dtype '<f4') needs 602112");

    path = tmp_file("empty.npy", b.p, 0);
    nn_error_init(&err);
    assert_false(npy_check_file(path, "empty.npy", &info, &err));
    assert_invalid(&err, "is not a NumPy .npy file");

    nn_error_init(&err);
    assert_false(npy_check_file("/nonexistent/nnreg/mean.npy", "mean.npy", &info, &err));
    assert_int_equal(err.status, 500);

    /* A .binaryproto by its display name. */
    static const unsigned char blob[] = {0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x20, 0x02, 0x2a,
                                         0x08, 0,    0,    0x80, 0x3f, 0,    0,    0,    0x40};
    path = tmp_file("blob.bin", blob, sizeof(blob));
    nn_error_init(&err);
    if (!npy_check_file(path, "mean.binaryproto", &info, &err))
        fail_msg("%s", err.message);
    assert_int_equal(info.ndims, 4);
    assert_int_equal(info.count, 2);
    free(b.p);
}

/* ---- .binaryproto ------------------------------------------------------------------ */

static void put_varint(bytes_t *b, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(b, (unsigned)(v & 0x7f) | 0x80);
        v >>= 7;
    }
    put_byte(b, (unsigned)v);
}

static void put_tag(bytes_t *b, unsigned field, unsigned wire)
{
    put_varint(b, (uint64_t)field << 3 | wire);
}

static void put_float(bytes_t *b, float f)
{
    unsigned char le[4];
    memcpy(le, &f, 4); /* little-endian host */
    put(b, le, 4);
}

static void test_blobproto(void **state)
{
    (void)state;
    npy_info_t info;
    nn_error_t err;

    /* Legacy num/channels/height/width, packed floats. */
    bytes_t b = {0};
    put_tag(&b, 1, 0), put_varint(&b, 1);
    put_tag(&b, 2, 0), put_varint(&b, 3);
    put_tag(&b, 3, 0), put_varint(&b, 2);
    put_tag(&b, 4, 0), put_varint(&b, 2);
    put_tag(&b, 5, 2), put_varint(&b, 48);
    for (int i = 0; i < 12; i++)
        put_float(&b, (float)i);
    if (!blob_copy(b.p, b.len, &info, &err))
        fail_msg("%s", err.message);
    assert_int_equal(info.ndims, 4);
    assert_int_equal(info.shape[0], 1);
    assert_int_equal(info.shape[1], 3);
    assert_int_equal(info.shape[2], 2);
    assert_int_equal(info.shape[3], 2);
    assert_int_equal(info.count, 12);
    assert_string_equal(info.descr, "<f4");
    assert_int_equal(npy_mean_fits(info.shape, info.ndims, 3, 2, 2, NULL, 0), NPY_MEAN_CHW);

    /* One value short. */
    b.len -= 4;
    b.p[9] = 44;
    assert_false(blob_copy(b.p, b.len, &info, &err));
    assert_invalid(
        &err, "mean file \"mean.binaryproto\" holds 11 values but its shape (1, 3, 2, 2) needs 12");
    free(b.p);

    /* BlobShape (packed dims) wins over legacy fields; unpacked floats. */
    memset(&b, 0, sizeof(b));
    put_tag(&b, 2, 0), put_varint(&b, 7);
    bytes_t shape = {0};
    put_tag(&shape, 1, 2), put_varint(&shape, 3), put_varint(&shape, 3), put_varint(&shape, 300);
    put_tag(&shape, 1, 0), put_varint(&shape, 1); /* one more dim, unpacked */
    put_tag(&b, 7, 2), put_varint(&b, shape.len), put(&b, shape.p, shape.len);
    for (int i = 0; i < 900; i++)
        put_tag(&b, 5, 5), put_float(&b, 0.5f);
    put_tag(&b, 6, 2), put_varint(&b, 0); /* diff: ignored */
    if (!blob_copy(b.p, b.len, &info, &err))
        fail_msg("%s", err.message);
    assert_int_equal(info.ndims, 3);
    assert_int_equal(info.shape[0], 3);
    assert_int_equal(info.shape[1], 300);
    assert_int_equal(info.shape[2], 1);
    assert_int_equal(info.count, 900);
    free(b.p);
    free(shape.p);

    /* double_data, packed. */
    memset(&b, 0, sizeof(b));
    put_tag(&b, 1, 0), put_varint(&b, 3);
    put_tag(&b, 8, 2), put_varint(&b, 24);
    for (int i = 0; i < 24; i++)
        put_byte(&b, 0);
    /* legacy with only num set: shape (3, 0, 0, 0), count 0: mismatch */
    assert_false(blob_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "holds 3 values but its shape (3, 0, 0, 0) needs 0");
    free(b.p);
    memset(&b, 0, sizeof(b));
    bytes_t s3 = {0};
    put_tag(&s3, 1, 2), put_varint(&s3, 1), put_varint(&s3, 3);
    put_tag(&b, 7, 2), put_varint(&b, s3.len), put(&b, s3.p, s3.len);
    put_tag(&b, 8, 2), put_varint(&b, 24);
    for (int i = 0; i < 24; i++)
        put_byte(&b, 0);
    if (!blob_copy(b.p, b.len, &info, &err))
        fail_msg("%s", err.message);
    assert_string_equal(info.descr, "<f8");
    assert_int_equal(info.itemsize, 8);
    assert_int_equal(npy_mean_fits(info.shape, info.ndims, 3, 224, 224, NULL, 0),
                     NPY_MEAN_PER_CHANNEL);
    /* Both float and double data. */
    put_tag(&b, 5, 5), put_float(&b, 1.0f);
    assert_false(blob_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "holds both float and double data");
    free(b.p);
    free(s3.p);

    static const struct {
        const char *bytes;
        size_t len;
        const char *needle;
    } bad[] = {
        {"\x10\xff\xff\xff\xff\x0f", 6, "num/channels/height/width is negative"},
        {"\x15\x00\x00\x00\x00", 5, "num/channels/height/width is not an integer"},
        {"\x2a\x03\x00\x00\x00", 5, "packed data is not a whole number of values"},
        {"\x28\x01", 2, "data is not floating-point values"},
        {"\x3a\x02\x08\xff", 4, "is not a valid Caffe BlobProto"},
        {"\x3a\x03\x0a\x01\x80", 5, "packed shape dimension is not a valid varint"},
        {"\x3a\x05\x0d\x00\x00\x00\x00", 7, "a shape dimension is not an integer"},
        {"\x3a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13,
         "a shape dimension is negative"},
        {"\xff\xff\xff", 3, "is not a valid Caffe BlobProto"},
        {"\x89PNG\r\n\x1a\n", 8, "is not a valid Caffe BlobProto"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (blob_copy(bad[i].bytes, bad[i].len, &info, &err))
            fail_msg("case %zu parsed", i);
        assert_invalid(&err, bad[i].needle);
    }

    /* More than 32 dims. */
    memset(&b, 0, sizeof(b));
    put_tag(&b, 7, 2), put_varint(&b, 35);
    put_tag(&b, 1, 2), put_varint(&b, 33);
    for (int i = 0; i < 33; i++)
        put_byte(&b, 1);
    assert_false(blob_copy(b.p, b.len, &info, &err));
    assert_invalid(&err, "more than 32 dimensions");
    free(b.p);

    /* An empty BlobProto: shape (), one value needed, none there. */
    assert_false(blob_copy("", 0, &info, &err));
    assert_invalid(&err, "holds 0 values but its shape () needs 1");
}

/* ---- shapes -------------------------------------------------------------------------- */

static void test_mean_fits(void **state)
{
    (void)state;
    static const struct {
        size_t ndims;
        int64_t shape[5];
        unsigned c, w, h;
        npy_mean_layout_t want;
    } cases[] = {
        {1, {3}, 3, 224, 224, NPY_MEAN_PER_CHANNEL},
        {1, {3}, 3, 0, 0, NPY_MEAN_PER_CHANNEL},
        {2, {1, 3}, 3, 224, 224, NPY_MEAN_PER_CHANNEL},
        {1, {1}, 1, 28, 28, NPY_MEAN_PER_CHANNEL},
        {3, {1, 1, 1}, 1, 28, 28, NPY_MEAN_PER_CHANNEL},
        {3, {224, 224, 3}, 3, 224, 224, NPY_MEAN_HWC},
        {3, {3, 224, 224}, 3, 224, 224, NPY_MEAN_CHW},
        {4, {1, 3, 224, 224}, 3, 224, 224, NPY_MEAN_CHW},
        {5, {1, 1, 100, 200, 3}, 3, 200, 100, NPY_MEAN_HWC},
        {3, {100, 200, 3}, 3, 200, 100, NPY_MEAN_HWC},
        {3, {200, 100, 3}, 3, 200, 100, NPY_MEAN_WHC},
        {3, {3, 100, 200}, 3, 200, 100, NPY_MEAN_CHW},
        {3, {3, 200, 100}, 3, 200, 100, NPY_MEAN_CWH},
        {2, {100, 200}, 1, 200, 100, NPY_MEAN_HWC},
        {2, {200, 100}, 1, 200, 100, NPY_MEAN_WHC},
        {4, {1, 1, 100, 200}, 1, 200, 100, NPY_MEAN_HWC},
        {3, {1, 100, 200}, 1, 200, 100, NPY_MEAN_HWC},
        {3, {256, 256, 3}, 3, 224, 224, NPY_MEAN_NO_FIT},
        {3, {224, 224, 3}, 3, 0, 0, NPY_MEAN_NO_FIT},
        {3, {224, 224, 3}, 1, 224, 224, NPY_MEAN_NO_FIT},
        {2, {100, 200}, 3, 200, 100, NPY_MEAN_NO_FIT},
        {1, {4}, 3, 224, 224, NPY_MEAN_NO_FIT},
        {2, {3, 1}, 3, 224, 224, NPY_MEAN_NO_FIT},
        {4, {2, 3, 224, 224}, 3, 224, 224, NPY_MEAN_NO_FIT},
        {0, {0}, 3, 224, 224, NPY_MEAN_NO_FIT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[512] = "";
        npy_mean_layout_t got = npy_mean_fits(cases[i].shape, cases[i].ndims, cases[i].c,
                                              cases[i].w, cases[i].h, why, sizeof(why));
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, (int)got, (int)cases[i].want);
        if (got == NPY_MEAN_NO_FIT)
            assert_true(why[0] != '\0');
    }
    char why[512];
    int64_t s[3] = {256, 256, 3};
    assert_int_equal(npy_mean_fits(s, 3, 3, 224, 224, why, sizeof(why)), NPY_MEAN_NO_FIT);
    assert_string_equal(why, "has shape (256, 256, 3), but the input takes 3 channels at 224x224: "
                             "the mean must have shape (3,) (one value per channel), "
                             "(224, 224, 3) or (3, 224, 224)");
    assert_int_equal(npy_mean_fits(s, 3, 3, 0, 0, why, sizeof(why)), NPY_MEAN_NO_FIT);
    assert_contains(why, "resize_type NETWORK");
    assert_contains(why, "shape (3,)");
    /* A tiny buffer is cut, not overrun. */
    char tiny[8];
    assert_int_equal(npy_mean_fits(s, 3, 3, 224, 224, tiny, sizeof(tiny)), NPY_MEAN_NO_FIT);
    assert_int_equal(strlen(tiny), 7);

    char buf[64];
    assert_string_equal(npy_shape_string(s, 3, buf, sizeof(buf)), "(256, 256, 3)");
    assert_string_equal(npy_shape_string(s, 1, buf, sizeof(buf)), "(256,)");
    assert_string_equal(npy_shape_string(s, 0, buf, sizeof(buf)), "()");
    assert_string_equal(npy_shape_string(s, 3, buf, 6), "(256,");
}

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"mean.npy", "short.npy", "empty.npy", "blob.bin"};
    char path[600];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_valid_headers),
        cmocka_unit_test(test_npy_bad_headers),
        cmocka_unit_test(test_npy_prefix_and_lengths),
        cmocka_unit_test(test_npy_check_file),
        cmocka_unit_test(test_blobproto),
        cmocka_unit_test(test_mean_fits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
