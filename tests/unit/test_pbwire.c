/* Unit tests: the protobuf wire-format reader (pbwire) and the text-format
 * pull parser (pbtext).  Inputs are copied into exact-size heap buffers so
 * that ASan catches any read past their end. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/pbtext.h"
#include "model/pbwire.h"

/* An exact-size heap copy (ASan then sees reads past the end). */
static unsigned char *dup_bytes(const void *data, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

/* ---- pbwire ------------------------------------------------------------ */

static void test_varint_table(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        bool ok;
        uint64_t value;
        size_t used;
    } cases[] = {
        {"\x00", 1, true, 0, 1},
        {"\x01", 1, true, 1, 1},
        {"\x7f", 1, true, 127, 1},
        {"\x80\x01", 2, true, 128, 2},
        {"\x96\x01", 2, true, 150, 2},
        {"\x80\x00", 2, true, 0, 2}, /* not minimal, still valid */
        {"\xff\xff\xff\xff\x0f", 5, true, 0xffffffffu, 5},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9, true, 0x7fffffffffffffffull, 9},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, true, UINT64_MAX, 10},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10, true, 1ull << 63, 10},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10, false, 0, 0}, /* bit 64 */
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, false, 0, 0},
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11, false, 0, 0}, /* 11 bytes */
        {"\x80", 1, false, 0, 0},                                          /* truncated */
        {"\xff\xff", 2, false, 0, 0},
        {"", 0, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *buf = dup_bytes(cases[i].bytes, cases[i].len);
        const unsigned char *p = buf;
        uint64_t v = 12345;
        bool ok = pb_decode_varint(&p, buf + cases[i].len, &v);
        assert_int_equal(ok, cases[i].ok);
        if (ok) {
            assert_true(v == cases[i].value);
            assert_int_equal((size_t)(p - buf), cases[i].used);
        } else {
            assert_ptr_equal(p, buf);
        }
        free(buf);
    }
}

static void test_fields_of_every_wire_type(void **state)
{
    (void)state;
    static const unsigned char msg[] = {
        0x08, 0x96, 0x01,                                                 /* 1: varint 150 */
        0x11, 1,    2,    3,    4,    5,    6,    7,    8,                /* 2: fixed64 */
        0x1a, 0x03, 'a',  'b',  'c',                                      /* 3: "abc" */
        0x25, 0xff, 0xff, 0xff, 0xff,                                     /* 4: fixed32 */
        0x28, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* 5: int32 -2 */
        0x30, 0x03,                                                       /* 6: sint64 -2 */
        0x3a, 0x00,                                                       /* 7: empty bytes */
        0xf8, 0xff, 0xff, 0xff, 0x0f, 0x07,                               /* 536870911: varint 7 */
    };
    unsigned char *buf = dup_bytes(msg, sizeof(msg));
    pb_error_t err;
    pb_reader_t r;
    pb_reader_init(&r, buf, sizeof(msg), &err);
    pb_field_t f;

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 1);
    assert_int_equal(f.wire_type, PB_WIRE_VARINT);
    assert_true(f.value == 150);
    assert_int_equal(f.offset, 0);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 2);
    assert_int_equal(f.wire_type, PB_WIRE_FIXED64);
    assert_true(f.value == 0x0807060504030201ull);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 3);
    assert_int_equal(f.wire_type, PB_WIRE_LEN);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "abc", 3);
    assert_int_equal(f.offset, 12);
    assert_int_equal(f.data_offset, 14);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 4);
    assert_int_equal(f.wire_type, PB_WIRE_FIXED32);
    assert_true(f.value == 0xffffffffu);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 5);
    assert_int_equal(pb_int32(&f), -2);
    assert_true(pb_int64(&f) == -2);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 6);
    assert_true(pb_sint64(&f) == -2);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 7);
    assert_int_equal(f.len, 0);

    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, PB_FIELD_NUMBER_MAX);
    assert_true(f.value == 7);

    assert_int_equal(pb_next(&r, &f), PB_END);
    assert_int_equal(pb_next(&r, &f), PB_END);
    assert_false(err.set);
    free(buf);
}

/* Runs a reader over bytes to its end; returns the final status and leaves
 * the error in *err. */
static pb_status_t read_all(const void *bytes, size_t len, pb_error_t *err, size_t *nfields)
{
    unsigned char *buf = dup_bytes(bytes, len);
    pb_reader_t r;
    pb_reader_init(&r, buf, len, err);
    pb_field_t f;
    pb_status_t st;
    size_t n = 0;
    while ((st = pb_next(&r, &f)) == PB_FIELD)
        n++;
    if (nfields)
        *nfields = n;
    free(buf);
    return st;
}

static void test_malformed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        size_t offset;
        const char *message_part;
    } cases[] = {
        {"\x0a\x05"
         "abc",
         5, 1, "length 5 of field 1 exceeds the 3 bytes left"},
        {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, 1, "exceeds the 0 bytes left"},
        {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, 1, "exceeds"}, /* 2^64-1 */
        {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, 1, "overflows 64 bits"},
        {"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 12, 1, "longer than 10 bytes"},
        {"\x08\x80", 2, 1, "truncated varint"},
        {"\x08", 1, 1, "truncated varint"},
        {"\x80", 1, 0, "truncated varint"},
        {"\x00\x01", 2, 0, "field number 0"},
        {"\x0f\x01", 2, 0, "invalid wire type 7"},
        {"\x0e\x01", 2, 0, "invalid wire type 6"},
        {"\x80\x80\x80\x80\x80\x01", 6, 0, "does not fit in 32 bits"},
        {"\x09\x01\x02\x03", 4, 1, "exceeds the 3 bytes left"}, /* fixed64 */
        {"\x0d\x01\x02", 3, 1, "exceeds the 2 bytes left"},     /* fixed32 */
        {"\x0c", 1, 0, "end-group of field 1 without a start-group"},
        {"\x0b\x08\x01", 3, 3, "group of field 1 is not closed"},
        {"\x0b\x14", 2, 1, "end-group of field 2 closes the group of field 1"},
        {"\x08\x01\x12\x02\x08", 5, 3, "length 2 of field 2 exceeds the 1 bytes left"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pb_error_t err;
        assert_int_equal(read_all(cases[i].bytes, cases[i].len, &err, NULL), PB_ERROR);
        assert_true(err.set);
        if (!strstr(err.message, cases[i].message_part))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, cases[i].message_part);
        if (err.offset != cases[i].offset)
            fail_msg("case %zu: offset %zu, expected %zu (%s)", i, err.offset, cases[i].offset,
                     err.message);
    }
}

static void test_error_is_sticky_and_empty_input(void **state)
{
    (void)state;
    pb_error_t err;
    pb_reader_t r;
    pb_field_t f;
    pb_reader_init(&r, NULL, 0, &err);
    assert_int_equal(pb_next(&r, &f), PB_END);

    unsigned char *buf = dup_bytes("\x08\x01\x0a\x09", 4);
    pb_reader_init(&r, buf, 4, &err);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(pb_next(&r, &f), PB_ERROR);
    assert_int_equal(pb_next(&r, &f), PB_ERROR);
    assert_false(pb_fail(&r, 0, "later error"));
    assert_non_null(strstr(err.message, "length 9"));
    free(buf);
}

static void test_groups_are_skipped_with_a_depth_bound(void **state)
{
    (void)state;
    /* 1: varint, group 2 { 3: "x", group 4 { 5: fixed32 } }, 6: varint */
    static const unsigned char nested[] = {0x08, 0x01, 0x13, 0x1a, 0x01, 'x',  0x23, 0x2d,
                                           1,    2,    3,    4,    0x24, 0x14, 0x30, 0x09};
    pb_error_t err;
    size_t n;
    unsigned char *buf = dup_bytes(nested, sizeof(nested));
    pb_reader_t r;
    pb_field_t f;
    pb_reader_init(&r, buf, sizeof(nested), &err);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 1);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(f.number, 6);
    assert_true(f.value == 9);
    assert_int_equal(pb_next(&r, &f), PB_END);
    free(buf);

    /* Groups nested PB_MAX_DEPTH deep are fine; one more is refused. */
    for (int depth = PB_MAX_DEPTH - 1; depth <= PB_MAX_DEPTH + 1; depth++) {
        size_t len = (size_t)depth * 2;
        unsigned char *g = malloc(len);
        assert_non_null(g);
        for (int i = 0; i < depth; i++) {
            g[i] = 0x0b;                   /* start group 1 */
            g[len - 1 - (size_t)i] = 0x0c; /* end group 1 */
        }
        pb_status_t st = read_all(g, len, &err, &n);
        if (depth <= PB_MAX_DEPTH) {
            assert_int_equal(st, PB_END);
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(st, PB_ERROR);
            assert_non_null(strstr(err.message, "deeper"));
        }
        free(g);
    }

    /* A million start-groups: refused quickly, no recursion. */
    size_t big = 1000000;
    unsigned char *g = malloc(big);
    assert_non_null(g);
    memset(g, 0x0b, big);
    assert_int_equal(read_all(g, big, &err, &n), PB_ERROR);
    free(g);
}

static void test_sub_readers_and_depth_limit(void **state)
{
    (void)state;
    /* message { 1: { 1: { ... 1: { 2: 7 } } } } nested depth levels. */
    for (int depth = PB_MAX_DEPTH - 1; depth <= PB_MAX_DEPTH + 2; depth++) {
        unsigned char inner[2] = {0x10, 0x07};
        size_t len = 2;
        unsigned char *buf = dup_bytes(inner, 2);
        for (int i = 0; i < depth; i++) {
            /* wrap: 0x0a, varint(len), buf */
            unsigned char hdr[6];
            size_t h = 0;
            hdr[h++] = 0x0a;
            size_t l = len;
            do {
                hdr[h++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
                l >>= 7;
            } while (l);
            unsigned char *nb = malloc(h + len);
            assert_non_null(nb);
            memcpy(nb, hdr, h);
            memcpy(nb + h, buf, len);
            free(buf);
            buf = nb;
            len += h;
        }
        pb_error_t err;
        pb_reader_t readers[PB_MAX_DEPTH + 4];
        pb_reader_init(&readers[0], buf, len, &err);
        int level = 0;
        bool failed = false;
        uint64_t found = 0;
        for (;;) {
            pb_field_t f;
            pb_status_t st = pb_next(&readers[level], &f);
            if (st == PB_ERROR) {
                failed = true;
                break;
            }
            if (st == PB_END)
                break;
            if (f.number == 2) {
                found = f.value;
                continue;
            }
            if (!pb_sub(&readers[level], &f, &readers[level + 1])) {
                failed = true;
                break;
            }
            level++;
        }
        if (depth <= PB_MAX_DEPTH) {
            assert_false(failed);
            assert_true(found == 7);
            assert_int_equal(level, depth);
        } else {
            assert_true(failed);
            assert_non_null(strstr(err.message, "nest deeper than 64"));
            assert_int_equal(level, PB_MAX_DEPTH);
        }
        free(buf);
    }

    /* pb_sub on a varint is an error; offsets inside a sub-reader are
     * absolute. */
    unsigned char *buf = dup_bytes("\x08\x01\x12\x04\x18\x05\x20\x80", 8);
    pb_error_t err;
    pb_reader_t r, sub;
    pb_field_t f;
    pb_reader_init(&r, buf, 8, &err);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_false(pb_sub(&r, &f, &sub));
    assert_non_null(strstr(err.message, "field 1 is a varint, not a message"));
    pb_reader_init(&r, buf, 8, &err);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_int_equal(pb_next(&r, &f), PB_FIELD);
    assert_true(pb_sub(&r, &f, &sub));
    assert_int_equal(pb_next(&sub, &f), PB_FIELD);
    assert_int_equal(f.number, 3);
    assert_int_equal(f.offset, 4);
    assert_int_equal(pb_next(&sub, &f), PB_ERROR); /* 0x20 0x80: truncated inside */
    assert_int_equal(err.offset, 7);
    assert_int_equal(pb_next(&r, &f), PB_ERROR); /* the error is shared */
    free(buf);
}

static void test_packed_varints(void **state)
{
    (void)state;
    static const unsigned char packed[] = {0x01, 0x96, 0x01, 0xff, 0xff, 0x03, 0x00};
    unsigned char *buf = dup_bytes(packed, sizeof(packed));
    const unsigned char *p = buf, *end = buf + sizeof(packed);
    uint64_t expect[] = {1, 150, 65535, 0}, v;
    size_t n = 0;
    while (p < end) {
        assert_true(pb_decode_varint(&p, end, &v));
        assert_true(v == expect[n++]);
    }
    assert_int_equal(n, 4);
    assert_string_equal(pb_wire_type_name(PB_WIRE_LEN), "length-delimited");
    assert_string_equal(pb_wire_type_name(9), "unknown");
    free(buf);
}

/* Random bytes: the reader ends with PB_END or PB_ERROR, never crashes. */
static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(round % 97);
        unsigned char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (unsigned char)(seed >> 16);
        }
        pb_error_t err;
        pb_reader_t stack[PB_MAX_DEPTH + 1];
        pb_reader_init(&stack[0], buf, len, &err);
        int level = 0;
        for (int steps = 0; steps < 10000; steps++) {
            pb_field_t f;
            pb_status_t st = pb_next(&stack[level], &f);
            if (st == PB_ERROR)
                break;
            if (st == PB_END) {
                if (level == 0)
                    break;
                level--;
                continue;
            }
            if (f.wire_type == PB_WIRE_LEN && level < PB_MAX_DEPTH &&
                pb_sub(&stack[level], &f, &stack[level + 1]))
                level++;
        }
        free(buf);
    }
}

/* ---- pbtext ------------------------------------------------------------ */

typedef struct text_doc {
    char *text;
    pbt_parser_t p;
} text_doc_t;

static void doc_open(text_doc_t *d, const char *text)
{
    size_t len = strlen(text);
    d->text = (char *)dup_bytes(text, len);
    pbt_init(&d->p, d->text, len);
}

static void doc_close(text_doc_t *d)
{
    free(d->text);
}

static void expect_scalar(pbt_parser_t *p, const char *name, pbt_kind_t kind, const char *raw)
{
    pbt_field_t f;
    pbt_status_t st = pbt_next(p, &f);
    if (st != PBT_FIELD)
        fail_msg("expected field %s, got status %d (%s)", name, st, p->error);
    assert_false(f.is_message);
    assert_int_equal(f.name_len, strlen(name));
    assert_memory_equal(f.name, name, f.name_len);
    assert_int_equal(f.kind, kind);
    assert_int_equal(f.value_len, strlen(raw));
    assert_memory_equal(f.value, raw, f.value_len);
}

static void expect_message(pbt_parser_t *p, const char *name)
{
    pbt_field_t f;
    assert_int_equal(pbt_next(p, &f), PBT_FIELD);
    assert_true(f.is_message);
    assert_int_equal(f.name_len, strlen(name));
    assert_memory_equal(f.name, name, f.name_len);
}

static void expect_end(pbt_parser_t *p)
{
    pbt_field_t f;
    pbt_status_t st = pbt_next(p, &f);
    if (st != PBT_END)
        fail_msg("expected end, got status %d (%s)", st, p->error);
}

static void test_text_basic_structure(void **state)
{
    (void)state;
    text_doc_t d;
    doc_open(&d, "# a comment\n"
                 "a: 1 b: \"x\"; c { d: true, e: DT_FLOAT } f: < g: -2.5 >\n"
                 "h { } i: { j: 'q' }  # trailing\n");
    pbt_parser_t *p = &d.p;
    expect_scalar(p, "a", PBT_NUMBER, "1");
    expect_scalar(p, "b", PBT_STRING, "\"x\"");
    expect_message(p, "c");
    assert_int_equal(p->depth, 1);
    expect_scalar(p, "d", PBT_IDENT, "true");
    expect_scalar(p, "e", PBT_IDENT, "DT_FLOAT");
    expect_end(p);
    assert_int_equal(p->depth, 0);
    expect_message(p, "f");
    pbt_field_t f;
    assert_int_equal(pbt_next(p, &f), PBT_FIELD);
    assert_true(f.negative);
    double v;
    assert_true(pbt_double(&f, &v));
    assert_true(v == -2.5);
    expect_end(p);
    expect_message(p, "h");
    expect_end(p);
    expect_message(p, "i");
    expect_scalar(p, "j", PBT_STRING, "'q'");
    expect_end(p);
    expect_end(p); /* end of input */
    expect_end(p);
    doc_close(&d);
}

static void test_text_lists_and_extensions(void **state)
{
    (void)state;
    text_doc_t d;
    doc_open(&d, "tags: [\"serve\", 'gpu'] n: [] m [ { x: 1 }, < x: 2 > ] k: [1, -2, 0x10]\n"
                 "[type.googleapis.com/tensorflow.AssetFileDef] { filename: \"foo.txt\" }\n"
                 "[some.ext]: 5 z: 0\n");
    pbt_parser_t *p = &d.p;
    expect_scalar(p, "tags", PBT_STRING, "\"serve\"");
    expect_scalar(p, "tags", PBT_STRING, "'gpu'");
    expect_message(p, "m");
    expect_scalar(p, "x", PBT_NUMBER, "1");
    expect_end(p);
    expect_message(p, "m");
    expect_scalar(p, "x", PBT_NUMBER, "2");
    expect_end(p);
    expect_scalar(p, "k", PBT_NUMBER, "1");
    pbt_field_t f;
    assert_int_equal(pbt_next(p, &f), PBT_FIELD);
    int64_t iv;
    assert_true(pbt_int64(&f, &iv));
    assert_true(iv == -2);
    expect_scalar(p, "k", PBT_NUMBER, "0x10");
    assert_int_equal(pbt_next(p, &f), PBT_FIELD);
    assert_true(f.extension && f.is_message);
    assert_int_equal(f.name_len, strlen("type.googleapis.com/tensorflow.AssetFileDef"));
    assert_true(pbt_skip(p));
    assert_int_equal(p->depth, 0);
    assert_int_equal(pbt_next(p, &f), PBT_FIELD);
    assert_true(f.extension);
    assert_memory_equal(f.name, "some.ext", 8);
    expect_scalar(p, "z", PBT_NUMBER, "0");
    expect_end(p);
    doc_close(&d);
}

static void test_text_strings_and_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *bytes;
        size_t len;
        bool plain;
    } cases[] = {
        {"v: \"plain\"", "plain", 5, true},
        {"v: ''", "", 0, true},
        {"v: \"a\\n\\t\\\\\\\"\\'\\?\"", "a\n\t\\\"'?", 7, false},
        {"v: \"\\a\\b\\f\\r\\v\"", "\a\b\f\r\v", 5, false},
        {"v: \"\\101\\0\\7z\\377\"", "A\0\7z\377", 5, false},
        {"v: \"\\x41\\x4a\\xfG\"", "AJ\x0fG", 4, false},
        {"v: \"\\u00e9\\U0001F600\"", "\xc3\xa9\xf0\x9f\x98\x80", 6, false},
        {"v: \"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4, false},
        {"v: \"ab\" 'cd'  # comment\n \"e\"", "abcde", 5, false},
        {"v: 'it\"s'", "it\"s", 4, true},
        {"v: \"\\n\\t\\007Const:0\\022\\007foo.txt\"", "\n\t\aConst:0\x12\afoo.txt", 19, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        text_doc_t d;
        doc_open(&d, cases[i].src);
        pbt_field_t f;
        assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
        assert_int_equal(f.kind, PBT_STRING);
        const char *s;
        size_t len;
        bool plain = pbt_string_plain(&f, &s, &len);
        assert_int_equal(plain, cases[i].plain);
        char *dst = malloc(f.value_len);
        assert_non_null(dst);
        assert_true(pbt_string_decode(&f, dst, &len));
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(dst, cases[i].bytes, len);
        if (plain) {
            assert_true(pbt_string_plain(&f, &s, &len));
            assert_memory_equal(s, cases[i].bytes, len);
        }
        free(dst);
        expect_end(&d.p);
        doc_close(&d);
    }
}

static void test_text_numbers(void **state)
{
    (void)state;
    text_doc_t d;
    doc_open(&d, "a: 0 b: 42 c: -7 d: 0x7fffffffffffffff e: -9223372036854775808 "
                 "f: 9223372036854775808 g: 017 h: 1.5 i: 1e3 j: .25 k: 2.5f l: -inf "
                 "m: nan n: Infinity o: 18446744073709551615 p: 18446744073709551616 q: 09 "
                 "r: 1E-2 s: 10.");
    static const struct {
        bool int_ok;
        int64_t i;
        bool dbl_ok;
        double d;
    } want[] = {
        {true, 0, true, 0},
        {true, 42, true, 42},
        {true, -7, true, -7},
        {true, INT64_MAX, true, 9223372036854775807.0},
        {true, INT64_MIN, true, -9223372036854775808.0},
        {false, 0, true, 9223372036854775808.0},
        {true, 15, true, 15},
        {false, 0, true, 1.5},
        {false, 0, true, 1000},
        {false, 0, true, 0.25},
        {false, 0, true, 2.5},
        {false, 0, true, -INFINITY},
        {false, 0, true, NAN},
        {false, 0, true, INFINITY},
        {false, 0, true, 18446744073709551615.0},
        {false, 0, true, 18446744073709551616.0},
        {false, 0, true, 9}, /* "09": not octal, but a valid float */
        {false, 0, true, 0.01},
        {false, 0, true, 10},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        pbt_field_t f;
        assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
        int64_t iv;
        double dv;
        bool ok = pbt_int64(&f, &iv);
        if (ok != want[i].int_ok)
            fail_msg("field %zu (%.*s): pbt_int64 %d", i, (int)f.value_len, f.value, ok);
        if (ok)
            assert_true(iv == want[i].i);
        ok = pbt_double(&f, &dv);
        assert_int_equal(ok, want[i].dbl_ok);
        if (isnan(want[i].d))
            assert_true(isnan(dv));
        else
            assert_true(dv == want[i].d);
    }
    expect_end(&d.p);
    doc_close(&d);

    doc_open(&d, "u: 18446744073709551615 b1: true b2: False b3: 1 b4: 2 b5: t b6: \"true\"");
    pbt_field_t f;
    uint64_t uv;
    bool bv;
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_true(pbt_uint64(&f, &uv));
    assert_true(uv == UINT64_MAX);
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_true(pbt_bool(&f, &bv) && bv);
    assert_true(pbt_ident_is(&f, "true"));
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_true(pbt_bool(&f, &bv) && !bv);
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_true(pbt_bool(&f, &bv) && bv);
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_false(pbt_bool(&f, &bv));
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_true(pbt_bool(&f, &bv) && bv);
    assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
    assert_false(pbt_bool(&f, &bv));
    assert_false(pbt_int64(&f, &(int64_t){0}));
    expect_end(&d.p);
    doc_close(&d);
}

/* Parses text to its end; returns whether it failed, with line:col. */
static bool text_fails(const char *text, size_t *line, size_t *col, char *msg, size_t msgsize)
{
    text_doc_t d;
    doc_open(&d, text);
    pbt_field_t f;
    pbt_status_t st;
    for (;;) {
        st = pbt_next(&d.p, &f);
        if (st == PBT_ERROR)
            break;
        if (st == PBT_END && d.p.depth == 0 && d.p.pos == d.p.end)
            break;
    }
    bool failed = st == PBT_ERROR;
    if (failed) {
        pbt_position(&d.p, d.p.error_offset, line, col);
        snprintf(msg, msgsize, "%s", d.p.error);
    }
    doc_close(&d);
    return failed;
}

static void test_text_errors_with_positions(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t line, col;
        const char *part;
    } cases[] = {
        {"a {\n  b: }", 2, 6, "expected a value"},
        {"a 1", 1, 3, "expected ':' or '{'"},
        {"}", 1, 1, "unexpected '}'"},
        {"a < b: 1 }", 1, 10, "unexpected '}'"},
        {"a {\n b: 1\n", 3, 1, "unexpected end of input, '}' expected"},
        {"a: \"abc", 1, 4, "string is not closed"},
        {"a: \"ab\nc\"", 1, 4, "not closed on its line"},
        {"a: \"\\q\"", 1, 5, "unknown escape"},
        {"a: \"\\x\"", 1, 5, "without hex digits"},
        {"a: \"\\400\"", 1, 5, "octal escape"},
        {"a: \"\\ud800\"", 1, 5, "unpaired surrogate"},
        {"a: \"\\u12\"", 1, 5, "4 hex digits"},
        {"a: \"\\U00110000\"", 1, 5, "not a Unicode code point"},
        {"a: \"x\\", 1, 6, "backslash at the end"},
        {"a: 1x", 1, 4, "invalid number"},
        {"a: 1e", 1, 4, "exponent without digits"},
        {"a: 0x", 1, 4, "hex number without digits"},
        {"a: 1.2.3", 1, 4, "invalid number"},
        {"a: -foo", 1, 5, "'-' before an identifier"},
        {"a: -\"s\"", 1, 5, "expected a value"},
        {"a: [1, 2", 1, 9, "not closed with ']'"},
        {"a: [1 2]", 1, 7, "expected ',' or ']'"},
        {"a: [1, ]", 1, 8, "expected a value"},
        {"[a.b { }", 1, 6, "expected an extension name"},
        {"[] { }", 1, 2, "expected an extension name"},
        {"1: 2", 1, 1, "expected a field name"},
        {"a: ", 1, 4, "found end of input"},
        {"\n\n   \x01", 3, 4, "byte 0x01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t line = 0, col = 0;
        char msg[256];
        if (!text_fails(cases[i].text, &line, &col, msg, sizeof(msg)))
            fail_msg("case %zu (%s) did not fail", i, cases[i].text);
        if (!strstr(msg, cases[i].part))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].part);
        if (line != cases[i].line || col != cases[i].col)
            fail_msg("case %zu: at %zu:%zu, expected %zu:%zu (%s)", i, line, col, cases[i].line,
                     cases[i].col, msg);
    }
}

static void test_text_depth_limit_and_skip(void **state)
{
    (void)state;
    for (int depth = PBT_MAX_DEPTH - 1; depth <= PBT_MAX_DEPTH + 1; depth++) {
        size_t len = (size_t)depth * 4 + 16;
        char *t = malloc(len);
        assert_non_null(t);
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            n += (size_t)sprintf(t + n, "a{");
        n += (size_t)sprintf(t + n, "v:1");
        for (int i = 0; i < depth; i++)
            t[n++] = '}';
        t[n] = '\0';
        size_t line, col;
        char msg[256];
        bool failed = text_fails(t, &line, &col, msg, sizeof(msg));
        assert_int_equal(failed, depth > PBT_MAX_DEPTH);
        if (failed)
            assert_non_null(strstr(msg, "nest deeper than 64"));

        /* Skipping the outermost message walks the same depth. */
        text_doc_t d;
        doc_open(&d, t);
        pbt_field_t f;
        assert_int_equal(pbt_next(&d.p, &f), PBT_FIELD);
        assert_int_equal(pbt_skip(&d.p), depth <= PBT_MAX_DEPTH);
        if (depth <= PBT_MAX_DEPTH)
            expect_end(&d.p);
        doc_close(&d);
        free(t);
    }

    /* A million '{' fail fast without recursion. */
    size_t big = 1000000;
    char *t = malloc(big + 3);
    assert_non_null(t);
    t[0] = 'a';
    memset(t + 1, '{', big);
    t[big + 1] = '\0';
    size_t line, col;
    char msg[256];
    assert_true(text_fails(t, &line, &col, msg, sizeof(msg)));
    free(t);
}

static void test_text_random_never_crash(void **state)
{
    (void)state;
    static const char alphabet[] = "ab:{}<>[],;'\"\\x0-.e#\n 1_";
    uint32_t seed = 99;
    for (int round = 0; round < 5000; round++) {
        size_t len = (size_t)(round % 61);
        char *buf = malloc(len + 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        pbt_parser_t p;
        pbt_init(&p, buf, len);
        for (int steps = 0; steps < 1000; steps++) {
            pbt_field_t f;
            pbt_status_t st = pbt_next(&p, &f);
            if (st == PBT_ERROR || (st == PBT_END && p.depth == 0 && p.pos == p.end))
                break;
            if (st == PBT_FIELD && !f.is_message && f.kind == PBT_STRING) {
                char *dst = malloc(f.value_len);
                size_t n;
                assert_non_null(dst);
                assert_true(pbt_string_decode(&f, dst, &n));
                assert_true(n <= f.value_len);
                free(dst);
            }
            if (st == PBT_FIELD && !f.is_message) {
                int64_t iv;
                double dv;
                bool bv;
                (void)!pbt_int64(&f, &iv);
                (void)!pbt_double(&f, &dv);
                (void)!pbt_bool(&f, &bv);
            }
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_table),
        cmocka_unit_test(test_fields_of_every_wire_type),
        cmocka_unit_test(test_malformed_inputs),
        cmocka_unit_test(test_error_is_sticky_and_empty_input),
        cmocka_unit_test(test_groups_are_skipped_with_a_depth_bound),
        cmocka_unit_test(test_sub_readers_and_depth_limit),
        cmocka_unit_test(test_packed_varints),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_text_basic_structure),
        cmocka_unit_test(test_text_lists_and_extensions),
        cmocka_unit_test(test_text_strings_and_escapes),
        cmocka_unit_test(test_text_numbers),
        cmocka_unit_test(test_text_errors_with_positions),
        cmocka_unit_test(test_text_depth_limit_and_skip),
        cmocka_unit_test(test_text_random_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
