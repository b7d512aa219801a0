/* test_multipart.c - the multipart/form-data parser, table-driven.
 *
 * Every body of the table is parsed whole, split in two at every possible
 * position, and fed one byte at a time; the parts seen (headers and data
 * concatenated) and the outcome must be the same each time.  A seeded
 * random test adds bodies whose data is made of CR, LF, "-" and boundary
 * letters, fed in random chunk sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"
#include "util/buf.h"

#define CRLF "\r\n"
#define CD(name) "Content-Disposition: form-data; name=\"" name "\"" CRLF
#define CDF(name, file)                                                                            \
    "Content-Disposition: form-data; name=\"" name "\"; filename=\"" file "\"" CRLF

/* ------------------------------------------------------------ recorder */

typedef struct recorder {
    nn_buf_t out;
    size_t data_calls;
    long fail_begin_at; /* part index whose on_part_begin fails, -1 for none */
} recorder_t;

static bool rec_begin(void *ctx, const mp_part_t *part, nn_error_t *err)
{
    recorder_t *r = ctx;
    if ((long)part->index == r->fail_begin_at)
        return nn_error_set(err, 400, "unexpected_file", "the callback refuses part %zu",
                            part->index);
    buf_appendf(&r->out, "<%zu name=%s file=%s type=%s>", part->index,
                part->name ? part->name : "(null)", part->filename ? part->filename : "(null)",
                part->content_type ? part->content_type : "(null)");
    return true;
}

static bool rec_data(void *ctx, const char *data, size_t len, nn_error_t *err)
{
    recorder_t *r = ctx;
    assert_true(len > 0); /* empty calls are pointless work */
    r->data_calls++;
    buf_append(&r->out, data, len);
    return true;
}

static bool rec_end(void *ctx, nn_error_t *err)
{
    recorder_t *r = ctx;
    buf_append_str(&r->out, "</>\n");
    return true;
}

static const mp_callbacks_t rec_callbacks = {rec_begin, rec_data, rec_end};

/* ---------------------------------------------------------------- table */

typedef struct mp_case {
    const char *label;
    const char *boundary;
    const char *body;
    size_t body_len; /* 0: strlen(body) */
    mp_limits_t limits;
    bool ok;
    const char *expect; /* transcript when ok */
    const char *error;  /* substring of the message when not ok */
} mp_case_t;

#define NUL_BODY "--bnd" CRLF CDF("f", "f.bin") CRLF "a\0b\0\r\n\0" CRLF "--bnd--"
#define NUL_EXPECT "<0 name=f file=f.bin type=(null)>a\0b\0\r\n\0</>\n"

static const mp_case_t cases[] = {
    {"two fields and a file",
     "bnd",
     "--bnd" CRLF CD("name") CRLF "My net" CRLF "--bnd" CRLF CD("metadata.owner") CRLF
     "me" CRLF "--bnd" CRLF CDF("saved_model.pb",
                                "saved_model.pb") "Content-Type: application/octet-stream" CRLF CRLF
                                                  "\x08\x01\x12\x7f\r\n\xff" CRLF "--bnd--" CRLF,
     0,
     {0},
     true,
     "<0 name=name file=(null) type=(null)>My net</>\n"
     "<1 name=metadata.owner file=(null) type=(null)>me</>\n"
     "<2 name=saved_model.pb file=saved_model.pb type=application/octet-stream>"
     "\x08\x01\x12\x7f\r\n\xff</>\n",
     NULL},
    {"preamble and epilogue",
     "bnd",
     "This is the preamble.  It is to be ignored." CRLF "--bnd" CRLF CD("a") CRLF
     "1" CRLF "--bnd--" CRLF "This is the epilogue, with a --bnd line" CRLF "--bnd" CRLF "junk",
     0,
     {0},
     true,
     "<0 name=a file=(null) type=(null)>1</>\n",
     NULL},
    {"preamble holding boundary-like text",
     "bnd",
     "--bn" CRLF "--bndx" CRLF "-" CRLF "--bnd-x" CRLF "--bnd" CRLF CD("a") CRLF "1" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=a file=(null) type=(null)>1</>\n",
     NULL},
    {"boundary-like text inside file data",
     "boundary",
     "--boundary" CRLF CDF("f", "x.bin") CRLF "A\r\n--boundarB\r\n--boundaryX\r\n--boundary-Y\r\n-"
                                              "\r\n--\r\r\n--boundarZ--boundary\r\r\r" CRLF
                                              "--boundary--",
     0,
     {0},
     true,
     "<0 name=f file=x.bin type=(null)>"
     "A\r\n--boundarB\r\n--boundaryX\r\n--boundary-Y\r\n-\r\n--\r\r\n--boundarZ--boundary\r\r\r"
     "</>\n",
     NULL},
    {"data ends with a delimiter prefix",
     "bnd",
     "--bnd" CRLF CD("a") CRLF "x\r\n--bn" CRLF "--bnd" CRLF CD("b") CRLF "\r" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=a file=(null) type=(null)>x\r\n--bn</>\n<1 name=b file=(null) type=(null)>\r</>\n",
     NULL},
    {"boundary made of dashes",
     "--x--",
     "----x--" CRLF CD("a") CRLF "----x-\r\n----x-y\r\n--" CRLF "----x----",
     0,
     {0},
     true,
     "<0 name=a file=(null) type=(null)>----x-\r\n----x-y\r\n--</>\n",
     NULL},
    {"transport padding after boundaries",
     "bnd",
     "--bnd \t " CRLF CD("a") CRLF "1" CRLF "--bnd\t" CRLF CD("b") CRLF "2" CRLF "--bnd--  \t" CRLF,
     0,
     {0},
     true,
     "<0 name=a file=(null) type=(null)>1</>\n<1 name=b file=(null) type=(null)>2</>\n",
     NULL},
    {"empty part data and a part without headers",
     "bnd",
     "--bnd" CRLF CD("empty") CRLF CRLF "--bnd" CRLF CRLF "raw" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=empty file=(null) type=(null)></>\n<1 name=(null) file=(null) type=(null)>raw</>\n",
     NULL},
    {"no parts at all", "bnd", "--bnd--" CRLF, 0, {0}, true, "", NULL},
    {"header names and values case-insensitive",
     "bnd",
     "--bnd" CRLF "content-disposition: FORM-DATA; NAME=plain; FileName=\"a b.txt\"" CRLF
     "CONTENT-TYPE:text/plain; charset=utf-8  " CRLF "X-Other: ignored" CRLF CRLF "t" CRLF
     "--bnd--",
     0,
     {0},
     true,
     "<0 name=plain file=a b.txt type=text/plain; charset=utf-8>t</>\n",
     NULL},
    {"quoted names with escapes",
     "bnd",
     "--bnd" CRLF
     "Content-Disposition: form-data; name=\"a\\\"b\\\\c;d=e\"; filename=\"q\\\"\"" CRLF CRLF
     "v" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=a\"b\\c;d=e file=q\" type=(null)>v</>\n",
     NULL},
    {"empty name and extra parameters",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data ; name=\"\" ; size=12;" CRLF CRLF "v" CRLF
     "--bnd--",
     0,
     {0},
     true,
     "<0 name= file=(null) type=(null)>v</>\n",
     NULL},
    {"filename* alone",
     "bnd",
     "--bnd" CRLF
     "Content-Disposition: form-data; name=f; filename*=UTF-8''%E2%82%AC%20rates.txt" CRLF CRLF
     "v" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=f file=\xe2\x82\xac rates.txt type=(null)>v</>\n",
     NULL},
    {"filename* wins over filename (after it)",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename=\"EURO rates.txt\"; "
     "filename*=utf-8'en'%e2%82%ac%20rates.txt" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=f file=\xe2\x82\xac rates.txt type=(null)>v</>\n",
     NULL},
    {"filename* wins over filename (before it)",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''a%2Fb; "
     "filename=\"plain\"" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=f file=a/b type=(null)>v</>\n",
     NULL},
    {"quoted filename* is tolerated",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=\"UTF-8''x%41\"" CRLF CRLF
     "v" CRLF "--bnd--",
     0,
     {0},
     true,
     "<0 name=f file=xA type=(null)>v</>\n",
     NULL},
    {"UTF-8 name",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=\"m\xc3\xa9ta\"" CRLF CRLF "v" CRLF
     "--bnd--",
     0,
     {0},
     true,
     "<0 name=m\xc3\xa9ta file=(null) type=(null)>v</>\n",
     NULL},
    {"preamble exactly at the limit",
     "bnd",
     "0123456789" CRLF "--bnd--",
     0,
     {.max_preamble = 10},
     true,
     "",
     NULL},
    {"header line exactly at the limit",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=\"abcdefgh\"" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {.max_header_line = 47},
     true,
     "<0 name=abcdefgh file=(null) type=(null)>v</>\n",
     NULL},
    {"parts exactly at the limit",
     "bnd",
     "--bnd" CRLF CD("a") CRLF "1" CRLF "--bnd" CRLF CD("b") CRLF "2" CRLF "--bnd--",
     0,
     {.max_parts = 2},
     true,
     "<0 name=a file=(null) type=(null)>1</>\n<1 name=b file=(null) type=(null)>2</>\n",
     NULL},

    /* errors */
    {"empty body", "bnd", "", 0, {0}, false, NULL, "no boundary line \"--bnd\""},
    {"only a preamble",
     "bnd",
     "hello\r\n--bndx\r\n",
     0,
     {0},
     false,
     NULL,
     "no boundary line \"--bnd\""},
    {"missing closing boundary",
     "bnd",
     "--bnd" CRLF CD("a") CRLF "1" CRLF,
     0,
     {0},
     false,
     NULL,
     "ends before the closing boundary \"--bnd--\""},
    {"closing boundary cut short",
     "bnd",
     "--bnd" CRLF CD("a") CRLF "1" CRLF "--bnd-",
     0,
     {0},
     false,
     NULL,
     "ends before the closing boundary"},
    {"body ends inside headers",
     "bnd",
     "--bnd" CRLF "Content-Disp",
     0,
     {0},
     false,
     NULL,
     "ends before the closing boundary"},
    {"body ends after a boundary line",
     "bnd",
     "--bnd" CRLF,
     0,
     {0},
     false,
     NULL,
     "ends before the closing boundary"},
    {"preamble over the limit",
     "bnd",
     "0123456789A" CRLF "--bnd--",
     0,
     {.max_preamble = 10},
     false,
     NULL,
     "more than 10 bytes come before the first boundary"},
    {"huge header line",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=\"abcdefghi\"" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {.max_header_line = 47},
     false,
     NULL,
     "header line is longer than 47 bytes"},
    {"too many headers",
     "bnd",
     "--bnd" CRLF CD("a") "X-1: 1" CRLF "X-2: 2" CRLF "X-3: 3" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {.max_headers = 3},
     false,
     NULL,
     "part 1 has more than 3 header lines"},
    {"too many parts",
     "bnd",
     "--bnd" CRLF CD("a") CRLF "1" CRLF "--bnd" CRLF CD("b") CRLF "2" CRLF "--bnd" CRLF CD("c") CRLF
     "3" CRLF "--bnd--",
     0,
     {.max_parts = 2},
     false,
     NULL,
     "more than 2 parts"},
    {"folded header line",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data;" CRLF " name=\"a\"" CRLF CRLF "v" CRLF "--bnd--",
     0,
     {0},
     false,
     NULL,
     "folded header lines are not supported"},
    {"LF-only line endings",
     "bnd",
     "--bnd\nContent-Disposition: form-data; name=a\n\nv\n--bnd--\n",
     0,
     {0},
     false,
     NULL,
     "bare LF; multipart lines must end with CRLF"},
    {"LF-only header lines",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=a\n\nv",
     0,
     {0},
     false,
     NULL,
     "a part header line ends with a bare LF"},
    {"CR alone in a header",
     "bnd",
     "--bnd" CRLF "Content-Type: a\rb" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "CR not followed by LF"},
    {"CR alone after a boundary",
     "bnd",
     "--bnd\rx",
     0,
     {0},
     false,
     NULL,
     "boundary line ends with CR not followed by LF"},
    {"text after boundary padding",
     "bnd",
     "--bnd  x" CRLF,
     0,
     {0},
     false,
     NULL,
     "is followed by other text"},
    {"control character in a header",
     "bnd",
     "--bnd" CRLF "X-A: a\x01" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "control character"},
    {"header without colon",
     "bnd",
     "--bnd" CRLF "Content-Disposition form-data" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "malformed header line"},
    {"not form-data",
     "bnd",
     "--bnd" CRLF "Content-Disposition: attachment; name=a" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "Content-Disposition is \"attachment\", not form-data"},
    {"unterminated quoted name",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=\"abc" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "malformed Content-Disposition"},
    {"parameter without value",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "malformed Content-Disposition"},
    {"name given twice",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=a; name=b" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "names itself twice"},
    {"two Content-Disposition headers",
     "bnd",
     "--bnd" CRLF CD("a") CD("b") CRLF,
     0,
     {0},
     false,
     NULL,
     "two Content-Disposition headers"},
    {"two Content-Type headers",
     "bnd",
     "--bnd" CRLF CD("a") "Content-Type: a/b" CRLF "Content-Type: c/d" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "two Content-Type headers"},
    {"name not UTF-8",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=\"\xe9t\xe9\"" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "name is not valid UTF-8"},
    {"filename not UTF-8",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename=\"\xff.pb\"" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "filename is not valid UTF-8"},
    {"filename* in another charset",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=ISO-8859-1''%E9" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "charset \"ISO-8859-1\"; only UTF-8"},
    {"filename* with a bad escape",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''a%G1" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "not followed by two hex digits"},
    {"filename* with a short escape",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''a%4" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "not followed by two hex digits"},
    {"filename* decoding to NUL",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''a%00" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "contains %00"},
    {"filename* decoding to bad UTF-8",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8''%C3%28" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "filename* is not valid UTF-8"},
    {"filename* without quotes",
     "bnd",
     "--bnd" CRLF "Content-Disposition: form-data; name=f; filename*=UTF-8" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "filename*=UTF-8''name%20encoded"},
    {"header line starting with whitespace",
     "bnd",
     "--bnd" CRLF " X: y" CRLF CRLF,
     0,
     {0},
     false,
     NULL,
     "starts with whitespace"},
};

/* ---------------------------------------------------------------- runs */

typedef struct outcome {
    bool ok;
    char *transcript;
    size_t transcript_len;
    char message[NN_ERROR_MESSAGE_MAX];
    int status;
    const char *code;
    size_t data_calls;
} outcome_t;

/* Feeds body in chunks of the sizes given by next_chunk (never 0), stopping
 * at MP_DONE like the worker does, then finishes. */
typedef size_t (*chunker_fn)(void *state, size_t remaining);

static void run(const mp_case_t *c, const char *body, size_t len, chunker_fn next_chunk,
                void *chunk_state, long fail_begin_at, outcome_t *out)
{
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    recorder_t rec = {.fail_begin_at = fail_begin_at};
    buf_init(&rec.out, arena);
    nn_error_t err;
    nn_error_init(&err);
    mp_parser_t *p = mp_parser_create(arena, c->boundary, &c->limits, &rec_callbacks, &rec);
    assert_non_null(p);

    mp_status_t st = MP_NEED_MORE;
    size_t pos = 0;
    while (pos < len && st == MP_NEED_MORE) {
        size_t n = next_chunk(chunk_state, len - pos);
        assert_true(n > 0 && n <= len - pos);
        st = mp_parser_feed(p, body + pos, n, &err);
        pos += n;
    }
    if (st == MP_NEED_MORE)
        st = mp_parser_finish(p, &err);
    out->ok = st == MP_DONE;
    if (out->ok)
        assert_false(nn_error_is_set(&err));
    else
        assert_true(nn_error_is_set(&err));
    out->status = err.status;
    out->code = err.code;
    snprintf(out->message, sizeof(out->message), "%s", err.message);
    out->transcript_len = rec.out.len;
    out->transcript = malloc(rec.out.len + 1);
    assert_non_null(out->transcript);
    memcpy(out->transcript, rec.out.data ? rec.out.data : "", rec.out.len);
    out->transcript[rec.out.len] = '\0';
    out->data_calls = rec.data_calls;
    arena_destroy(arena);
}

static size_t chunk_all(void *state, size_t remaining)
{
    return remaining;
}

static size_t chunk_one(void *state, size_t remaining)
{
    return 1;
}

/* First the bytes before the split position, then the rest. */
static size_t chunk_split(void *state, size_t remaining)
{
    size_t *first = state;
    if (*first > 0 && *first < remaining) {
        size_t n = *first;
        *first = 0;
        return n;
    }
    *first = 0;
    return remaining;
}

static uint32_t lcg_next(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static size_t chunk_random(void *state, size_t remaining)
{
    size_t n = 1 + lcg_next(state) % 7;
    return n < remaining ? n : remaining;
}

static void check_outcome(const mp_case_t *c, const char *how, size_t at, const outcome_t *o,
                          size_t expect_len)
{
    if (o->ok != c->ok) {
        print_error("case \"%s\" (%s %zu): expected %s, got %s: %s\n", c->label, how, at,
                    c->ok ? "success" : "an error", o->ok ? "success" : "an error", o->message);
        fail();
    }
    if (c->ok) {
        if (o->transcript_len != expect_len || memcmp(o->transcript, c->expect, expect_len) != 0) {
            print_error("case \"%s\" (%s %zu): transcript\n%s\nexpected\n%s\n", c->label, how, at,
                        o->transcript, c->expect);
            fail();
        }
    } else {
        if (!strstr(o->message, c->error)) {
            print_error("case \"%s\" (%s %zu): message \"%s\" lacks \"%s\"\n", c->label, how, at,
                        o->message, c->error);
            fail();
        }
        assert_int_equal(o->status, 400);
        assert_string_equal(o->code, "invalid_multipart");
    }
}

static size_t expect_length(const mp_case_t *c)
{
    return c->ok ? strlen(c->expect) : 0;
}

static void test_table_whole_split_bytewise(void **state)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const mp_case_t *c = &cases[k];
        size_t len = c->body_len ? c->body_len : strlen(c->body);
        size_t expect_len = expect_length(c);
        outcome_t o;

        run(c, c->body, len, chunk_all, NULL, -1, &o);
        check_outcome(c, "whole", len, &o, expect_len);
        free(o.transcript);

        run(c, c->body, len, chunk_one, NULL, -1, &o);
        check_outcome(c, "bytewise", 1, &o, expect_len);
        free(o.transcript);

        for (size_t i = 0; i <= len; i++) {
            size_t first = i;
            run(c, c->body, len, chunk_split, &first, -1, &o);
            check_outcome(c, "split at", i, &o, expect_len);
            free(o.transcript);
        }
    }
}

/* Every pair of split points too, for a body with the tricky spots (a
 * delimiter prefix in data, padding, a header). */
static void test_split_in_three_everywhere(void **state)
{
    const mp_case_t *c = NULL;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        if (strcmp(cases[k].label, "data ends with a delimiter prefix") == 0)
            c = &cases[k];
    assert_non_null(c);
    size_t len = strlen(c->body);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            arena_t *arena = arena_create(0);
            assert_non_null(arena);
            recorder_t rec = {.fail_begin_at = -1};
            buf_init(&rec.out, arena);
            nn_error_t err;
            nn_error_init(&err);
            mp_parser_t *p = mp_parser_create(arena, c->boundary, NULL, &rec_callbacks, &rec);
            assert_non_null(p);
            mp_status_t st = mp_parser_feed(p, c->body, i, &err);
            if (st == MP_NEED_MORE)
                st = mp_parser_feed(p, c->body + i, j - i, &err);
            if (st == MP_NEED_MORE)
                st = mp_parser_feed(p, c->body + j, len - j, &err);
            assert_int_equal(st, MP_DONE);
            assert_string_equal(buf_cstr(&rec.out), c->expect);
            arena_destroy(arena);
        }
    }
}

/* Data made of the bytes that matter to the scanner, checked to contain
 * no real delimiter line (the delimiter followed by padding, CR, LF or
 * "--"; or ending the data, since the real delimiter follows), wrapped in
 * one part and fed in random chunks. */
static bool data_has_delimiter(const char *d, size_t n)
{
    static const char delim[] = "\r\n--bo";
    const size_t dl = sizeof(delim) - 1;
    for (size_t i = 0; i + dl <= n; i++) {
        if (memcmp(d + i, delim, dl) != 0)
            continue;
        size_t after = i + dl;
        if (after == n)
            return true; /* followed by the real "\r\n--bo": a boundary line */
        char next = d[after];
        if (next == '\r' || next == '\n' || next == ' ' || next == '\t')
            return true;
        if (next == '-' && (after + 1 == n || d[after + 1] == '-'))
            return true;
    }
    return false;
}

static void test_random_data_random_chunks(void **state)
{
    static const char alphabet[] = "\r\n-box \t";
    uint32_t seed = 12345;
    char data[64];
    char body[256];
    char expect[256];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n;
        do {
            n = lcg_next(&seed) % 40;
            for (size_t i = 0; i < n; i++)
                data[i] = alphabet[lcg_next(&seed) % (sizeof(alphabet) - 1)];
        } while (data_has_delimiter(data, n));
        size_t blen = 0;
        const char *head = "--bo\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n";
        memcpy(body, head, strlen(head));
        blen += strlen(head);
        memcpy(body + blen, data, n);
        blen += n;
        memcpy(body + blen, "\r\n--bo--", 8);
        blen += 8;
        int elen = snprintf(expect, sizeof(expect), "<0 name=f file=(null) type=(null)>%.*s</>\n",
                            (int)n, data);
        mp_case_t c = {
            .label = "random", .boundary = "bo", .body = body, .ok = true, .expect = expect};
        outcome_t o;
        uint32_t chunk_seed = seed;
        run(&c, body, blen, chunk_random, &chunk_seed, -1, &o);
        check_outcome(&c, "random chunks, iteration", (size_t)iter, &o, (size_t)elen);
        free(o.transcript);
    }
}

/* Large runs of data reach the callback in one piece per chunk. */
static void test_data_in_large_runs(void **state)
{
    const size_t size = 1 << 20;
    const char *head = "--bnd\r\nContent-Disposition: form-data; name=f; filename=f\r\n\r\n";
    const char *tail = "\r\n--bnd--\r\n";
    size_t hlen = strlen(head), tlen = strlen(tail);
    char *body = malloc(hlen + size + tlen);
    assert_non_null(body);
    memcpy(body, head, hlen);
    for (size_t i = 0; i < size; i++)
        body[hlen + i] = (char)(i * 131 % 251); /* has CRs and LFs now and then */
    memcpy(body + hlen + size, tail, tlen);
    mp_case_t c = {.label = "large", .boundary = "bnd", .ok = true};

    outcome_t o;
    run(&c, body, hlen + size + tlen, chunk_all, NULL, -1, &o);
    assert_true(o.ok);
    assert_int_equal(o.data_calls, 1);
    assert_memory_equal(o.transcript + strlen("<0 name=f file=f type=(null)>"), body + hlen, size);
    free(o.transcript);

    /* 64 KiB chunks (what the worker reads): one call per chunk, plus at
     * most one for bytes held back across a chunk boundary. */
    size_t chunk = 65536;
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    recorder_t rec = {.fail_begin_at = -1};
    buf_init(&rec.out, arena);
    nn_error_t err;
    nn_error_init(&err);
    mp_parser_t *p = mp_parser_create(arena, "bnd", NULL, &rec_callbacks, &rec);
    assert_non_null(p);
    size_t total = hlen + size + tlen, pos = 0;
    mp_status_t st = MP_NEED_MORE;
    while (pos < total && st == MP_NEED_MORE) {
        size_t n = total - pos < chunk ? total - pos : chunk;
        st = mp_parser_feed(p, body + pos, n, &err);
        pos += n;
    }
    assert_int_equal(st, MP_DONE);
    assert_true(rec.data_calls <= 2 * (total / chunk + 1));
    arena_destroy(arena);
    free(body);
}

/* NUL bytes are data like any other (the table's strings cannot hold them). */
static void test_nul_bytes_in_data(void **state)
{
    static const char body[] = NUL_BODY;
    static const char expect[] = NUL_EXPECT;
    mp_case_t c = {.label = "NUL bytes", .boundary = "bnd", .ok = true, .expect = expect};
    size_t len = sizeof(body) - 1;
    for (size_t i = 0; i <= len; i++) {
        size_t first = i;
        outcome_t o;
        run(&c, body, len, chunk_split, &first, -1, &o);
        check_outcome(&c, "split at", i, &o, sizeof(expect) - 1);
        free(o.transcript);
    }
}

/* A callback error stops the parser and is the error reported. */
static void test_callback_error_wins(void **state)
{
    const mp_case_t *c = &cases[0];
    outcome_t o;
    run(c, c->body, strlen(c->body), chunk_one, NULL, 1, &o);
    assert_false(o.ok);
    assert_int_equal(o.status, 400);
    assert_string_equal(o.code, "unexpected_file");
    assert_string_equal(o.message, "the callback refuses part 1");
    free(o.transcript);
}

/* After DONE the epilogue is ignored; after an error the parser stays failed. */
static void test_sticky_states(void **state)
{
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    nn_error_init(&err);
    mp_parser_t *p = mp_parser_create(arena, "b", NULL, NULL, NULL);
    assert_non_null(p);
    assert_int_equal(mp_parser_feed(p, "--b--", 5, &err), MP_DONE);
    assert_int_equal(mp_parser_feed(p, "anything", 8, &err), MP_DONE);
    assert_int_equal(mp_parser_finish(p, &err), MP_DONE);
    assert_false(nn_error_is_set(&err));

    p = mp_parser_create(arena, "b", NULL, NULL, NULL);
    assert_non_null(p);
    assert_int_equal(mp_parser_feed(p, "--b\n", 4, &err), MP_ERROR);
    assert_true(nn_error_is_set(&err));
    nn_error_init(&err);
    assert_int_equal(mp_parser_feed(p, "\r\n", 2, &err), MP_ERROR);
    assert_true(nn_error_is_set(&err));
    nn_error_init(&err);
    assert_int_equal(mp_parser_finish(p, &err), MP_ERROR);
    assert_true(nn_error_is_set(&err));

    /* Invalid boundaries are refused at creation. */
    assert_null(mp_parser_create(arena, "", NULL, NULL, NULL));
    assert_null(mp_parser_create(arena, "a\r\nb", NULL, NULL, NULL));
    assert_null(mp_parser_create(arena, "trailing ", NULL, NULL, NULL));
    arena_destroy(arena);
}

/* --------------------------------------------------- Content-Type header */

typedef struct ct_case {
    const char *content_type;
    const char *boundary; /* expected, NULL for an error */
    int status;
    const char *error; /* substring */
} ct_case_t;

#define B70 "0123456789012345678901234567890123456789012345678901234567890123456789"

static const ct_case_t ct_cases[] = {
    {"multipart/form-data; boundary=abc", "abc", 0, NULL},
    {"multipart/form-data;boundary=abc;", "abc", 0, NULL},
    {"  Multipart/Form-Data ; charset=utf-8; BOUNDARY=----WebKitFormBoundary7MA4YWxk",
     "----WebKitFormBoundary7MA4YWxk", 0, NULL},
    {"multipart/form-data; boundary=\"a b:c?=\"", "a b:c?=", 0, NULL},
    {"multipart/form-data; boundary=\"q\\\"x\"", "q\"x", 0, NULL},
    {"multipart/form-data; boundary=" B70, B70, 0, NULL},
    {"multipart/form-data; boundary = spaced", "spaced", 0, NULL},
    {NULL, NULL, 415, "has no Content-Type"},
    {"", NULL, 415, "has no Content-Type"},
    {"application/json", NULL, 415, "\"application/json\" is not accepted here"},
    {"application/json; charset=utf-8", NULL, 415, "not accepted here"},
    {"multipart/mixed; boundary=abc", NULL, 415, "\"multipart/mixed\""},
    {"multipart/form-datax; boundary=abc", NULL, 415, "not accepted here"},
    {"multipart/form-data", NULL, 400, "has no boundary parameter"},
    {"multipart/form-data; charset=utf-8", NULL, 400, "has no boundary parameter"},
    {"multipart/form-data; boundary=", NULL, 400, "parameters are malformed"},
    {"multipart/form-data; boundary=\"\"", NULL, 400, "1 to 70 characters long, not 0"},
    {"multipart/form-data; boundary=" B70 "x", NULL, 400, "1 to 70 characters long, not 71"},
    {"multipart/form-data; boundary=a; boundary=b", NULL, 400, "names the boundary twice"},
    {"multipart/form-data; boundary=\"abc", NULL, 400, "parameters are malformed"},
    {"multipart/form-data; boundary=\"abc \"", NULL, 400, "may not end with a space"},
    {"multipart/form-data; boundary=\"a\x01\"", NULL, 400, "printable ASCII"},
    {"multipart/form-data boundary=abc", NULL, 400, "parameters are malformed"},
};

static void test_boundary_from_content_type(void **state)
{
    for (size_t k = 0; k < sizeof(ct_cases) / sizeof(ct_cases[0]); k++) {
        const ct_case_t *c = &ct_cases[k];
        arena_t *arena = arena_create(0);
        assert_non_null(arena);
        nn_error_t err;
        nn_error_init(&err);
        char *boundary = NULL;
        bool ok = mp_boundary_from_content_type(arena, c->content_type, &boundary, &err);
        if (c->boundary) {
            if (!ok)
                print_error("content type \"%s\": %s\n", c->content_type, err.message);
            assert_true(ok);
            assert_string_equal(boundary, c->boundary);
        } else {
            if (ok)
                print_error("content type \"%s\" accepted\n", c->content_type);
            assert_false(ok);
            assert_int_equal(err.status, c->status);
            assert_string_equal(err.code,
                                c->status == 415 ? "unsupported_media_type" : "invalid_multipart");
            if (!strstr(err.message, c->error))
                print_error("content type \"%s\": \"%s\" lacks \"%s\"\n",
                            c->content_type ? c->content_type : "(null)", err.message, c->error);
            assert_non_null(strstr(err.message, c->error));
        }
        arena_destroy(arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_whole_split_bytewise),
        cmocka_unit_test(test_split_in_three_everywhere),
        cmocka_unit_test(test_random_data_random_chunks),
        cmocka_unit_test(test_data_in_large_runs),
        cmocka_unit_test(test_nul_bytes_in_data),
        cmocka_unit_test(test_callback_error_wins),
        cmocka_unit_test(test_sticky_states),
        cmocka_unit_test(test_boundary_from_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
