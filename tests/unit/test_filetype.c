/* test_filetype.c - the real TensorFlow fixtures are accepted as what their
 * names say, and impostors (built here byte by byte) are refused with a
 * message that names the file, what it looks like and the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/filetype.h"
#include "util/arena.h"
#include "util/error.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif
#ifndef NNREG_MAGIC_BUILD
#define NNREG_MAGIC_BUILD "nnreg.magic.mgc"
#endif

#define MODELS NNREG_FIXTURES "/models/"

/* Shared by all tests: opening the checker loads the whole system database,
 * which is what a worker does once. */
static filetype_checker_t *checker;
static char tmpdir[256];

/* ---- helpers --------------------------------------------------------- */

static const char *tmpfile_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* Writes bytes to <tmpdir>/<name> and returns the path (static storage). */
static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *path = tmpfile_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Runs the check and returns whether it passed; err and detected out. */
static bool check(const char *path, file_kind_t kind, const char *display, arena_t *arena,
                  const char **detected, nn_error_t *err)
{
    nn_error_init(err);
    return filetype_check(checker, arena, path, kind, display, detected, err);
}

static void expect_refused(const char *path, file_kind_t kind, const char *display,
                           const char *code, const char *const *substrings)
{
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = "unset";
    bool ok = check(path, kind, display, arena, &detected, &err);
    if (ok)
        fail_msg("%s as %s was accepted as \"%s\"", path, display, detected);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, code);
    char quoted[300];
    snprintf(quoted, sizeof(quoted), "file \"%s\" ", display);
    if (strncmp(err.message, quoted, strlen(quoted)) != 0)
        fail_msg("message does not start with %s: %s", quoted, err.message);
    for (size_t i = 0; substrings && substrings[i]; i++)
        if (!strstr(err.message, substrings[i]))
            fail_msg("message lacks \"%s\": %s", substrings[i], err.message);
    arena_destroy(arena);
}

/* ---- setup ----------------------------------------------------------- */

static int setup(void **state)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/nnreg-test-filetype-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    char errbuf[512];
    checker = filetype_open(NNREG_MAGIC_BUILD, errbuf, sizeof(errbuf));
    if (!checker) {
        fprintf(stderr, "filetype_open: %s\n", errbuf);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    filetype_close(checker);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- fixtures -------------------------------------------------------- */

static const struct {
    const char *path;
    file_kind_t kind;
    const char *display;
    const char *detected;
} fixtures[] = {
#define PB(m)                                                                                      \
    {                                                                                              \
        MODELS m "/saved_model.pb", FILE_KIND_SAVED_MODEL_PB, "saved_model.pb",                    \
            "tensorflow saved model (binary protobuf)"                                             \
    }
#define VARS(m)                                                                                    \
    {MODELS m "/variables/variables.index", FILE_KIND_VARIABLES_INDEX, "variables.index",          \
     "tensorflow tensor bundle index"},                                                            \
    {                                                                                              \
        MODELS m "/variables/variables.data-00000-of-00001", FILE_KIND_VARIABLES_DATA,             \
            "variables.data-00000-of-00001", "tensorflow tensor bundle data (raw bytes)"           \
    }
    PB("counter"),
    VARS("counter"),
    PB("half_plus_three"),
    VARS("half_plus_three"),
    PB("half_plus_two_cpu"),
    VARS("half_plus_two_cpu"),
    PB("half_plus_two_mkl"),
    VARS("half_plus_two_mkl"),
    PB("half_plus_two_tf2_cpu"),
    VARS("half_plus_two_tf2_cpu"),
    PB("matrix_half_plus_two"),
    {MODELS "half_plus_two_pbtxt/saved_model.pbtxt", FILE_KIND_SAVED_MODEL_PBTXT,
     "saved_model.pbtxt", "tensorflow saved model (protobuf text)"},
#undef PB
#undef VARS
};

static void test_fixtures_accepted(void **state)
{
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        arena_t *arena = arena_create(0);
        assert_non_null(arena);
        nn_error_t err;
        const char *detected = NULL;
        if (!check(fixtures[i].path, fixtures[i].kind, fixtures[i].display, arena, &detected, &err))
            fail_msg("%s refused: %d %s: %s", fixtures[i].path, err.status, err.code, err.message);
        assert_string_equal(detected, fixtures[i].detected);
        arena_destroy(arena);
    }
}

/* Without the project magic file the system database calls a SavedModel a
 * PDP-11 executable (by a MIME type we do not hold against it): the
 * structural checks still accept every fixture, only the name is plainer. */
static void test_fixtures_without_project_magic(void **state)
{
    char errbuf[256];
    filetype_checker_t *plain = filetype_open(NULL, errbuf, sizeof(errbuf));
    assert_non_null(plain);
    /* The first problem is reported after the checker is closed: a failed
     * assertion inside the loop would leave it open (scripts/allocfail
     * makes the checks fail on purpose). */
    char problem[2048] = "";
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]) && !problem[0]; i++) {
        arena_t *arena = arena_create(0);
        assert_non_null(arena);
        nn_error_t err;
        nn_error_init(&err);
        const char *detected = NULL;
        const char *expected = fixtures[i].kind == FILE_KIND_SAVED_MODEL_PB
                                   ? "binary protobuf"
                                   : fixtures[i].detected;
        if (!filetype_check(plain, arena, fixtures[i].path, fixtures[i].kind, fixtures[i].display,
                            &detected, &err))
            snprintf(problem, sizeof(problem), "%s refused: %s", fixtures[i].path, err.message);
        else if (!detected || strcmp(detected, expected) != 0)
            snprintf(problem, sizeof(problem), "%s detected as \"%s\", not \"%s\"",
                     fixtures[i].path, detected ? detected : "(null)", expected);
        arena_destroy(arena);
    }
    filetype_close(plain);
    if (problem[0])
        fail_msg("%s", problem);
}

static void test_open_bad_magic_file(void **state)
{
    char errbuf[256];
    errbuf[0] = '\0';
    filetype_checker_t *c = filetype_open("/nonexistent/nnreg.magic.mgc", errbuf, sizeof(errbuf));
    assert_null(c);
    assert_non_null(strstr(errbuf, "/nonexistent/nnreg.magic.mgc"));
}

/* ---- impostors ------------------------------------------------------- */

static const unsigned char png_bytes[] = {
    0x89, 'P',  'N',  'G',  '\r', '\n', 0x1a, '\n', 0x00, 0x00, 0x00, 0x0d, 'I',  'H',
    'D',  'R',  0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 'I',  'D',  'A',  'T',  0x78,
    0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00,
    0x00, 0x00, 0x00, 'I',  'E',  'N',  'D',  0xae, 0x42, 0x60, 0x82,
};

/* A stored (uncompressed) ZIP holding "model.pb" = "x": local header, data,
 * central directory entry, end of central directory. */
static const unsigned char zip_bytes[] = {
    'P',  'K',  0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, /* */
    0x83, 0x16, 0xdc, 0x8c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00, /* */
    0x00, 0x00, 'm',  'o',  'd',  'e',  'l',  '.',  'p',  'b',  'x',                    /* */
    'P',  'K',  0x01, 0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
    0x21, 0x00, 0x83, 0x16, 0xdc, 0x8c, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* */
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, /* */
    0x00, 0x00, 0x00, 0x00, 'm',  'o',  'd',  'e',  'l',  '.',  'p',  'b',              /* */
    'P',  'K',  0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x36, 0x00, /* */
    0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* gzip of "hello\n": 10-byte header, deflate stream, CRC-32 and size. */
static const unsigned char gzip_bytes[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd,
    0xc9, 0xc9, 0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
};

static const char html_text[] = "<!DOCTYPE html>\n<html><head><title>Model</title></head>\n"
                                "<body><p>Download the model here.</p></body></html>\n";

static const char pdf_text[] = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n"
                               "<< /Root 1 0 R >>\n%%EOF\n";

static void test_png_as_saved_model(void **state)
{
    const char *path = write_file("png", png_bytes, sizeof(png_bytes));
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    assert_false(check(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", arena, &detected, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "file_type_mismatch");
    assert_string_equal(err.message, "file \"saved_model.pb\" looks like a PNG image, not a binary "
                                     "protobuf SavedModel; upload the SavedModel's saved_model.pb");
    assert_null(detected);
    arena_destroy(arena);
}

static void test_png_as_data_shard(void **state)
{
    const char *path = write_file("png", png_bytes, sizeof(png_bytes));
    expect_refused(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001",
                   "file_type_mismatch",
                   (const char *const[]){"looks like a PNG image",
                                         "not a TensorFlow variables data shard", NULL});
}

static void test_zip(void **state)
{
    const char *path = write_file("zip", zip_bytes, sizeof(zip_bytes));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like a Zip archive, not a binary protobuf", NULL});
    expect_refused(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00002",
                   "file_type_mismatch", (const char *const[]){"looks like a Zip archive", NULL});
}

static void test_elf(void **state)
{
    static unsigned char elf[1 << 16];
    size_t n = read_file("/bin/true", elf, sizeof(elf));
    assert_true(n > 64);
    const char *path = write_file("elf", elf, n);
    expect_refused(
        path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001", "file_type_mismatch",
        (const char *const[]){"looks like an ELF ", "not a TensorFlow variables data shard", NULL});
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like an ELF ", NULL});
}

static void test_html(void **state)
{
    const char *path = write_file("html", html_text, strlen(html_text));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", "file_type_mismatch",
                   (const char *const[]){"looks like an HTML document, not a SavedModel in "
                                         "protobuf text format",
                                         NULL});
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like an HTML document", NULL});
    expect_refused(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001",
                   "file_type_mismatch", (const char *const[]){"an HTML document", NULL});
}

static void test_gzip(void **state)
{
    const char *path = write_file("gz", gzip_bytes, sizeof(gzip_bytes));
    expect_refused(path, FILE_KIND_VARIABLES_INDEX, "variables.index", "file_type_mismatch",
                   (const char *const[]){"looks like gzip compressed data, not a TensorFlow "
                                         "variables index; upload the SavedModel's "
                                         "variables/variables.index",
                                         NULL});
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"gzip compressed data", NULL});
}

static void test_pdf(void **state)
{
    const char *path = write_file("pdf", pdf_text, strlen(pdf_text));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like a PDF document", NULL});
    expect_refused(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001",
                   "file_type_mismatch", (const char *const[]){"a PDF document", NULL});
}

static void test_empty(void **state)
{
    const char *path = write_file("empty", "", 0);
    static const file_kind_t kinds[] = {FILE_KIND_SAVED_MODEL_PB,  FILE_KIND_SAVED_MODEL_PBTXT,
                                        FILE_KIND_VARIABLES_INDEX, FILE_KIND_VARIABLES_DATA,
                                        FILE_KIND_MEAN_NPY,        FILE_KIND_MEAN_BINARYPROTO};
    static const char *names[] = {"saved_model.pb",  "saved_model.pbtxt",
                                  "variables.index", "variables.data-00000-of-00001",
                                  "mean.npy",        "mean.binaryproto"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        expect_refused(path, kinds[i], names[i], "empty_file",
                       (const char *const[]){"is empty; ", NULL});
}

static void test_text_as_saved_model(void **state)
{
    const char *text = "meta_graphs {\n  meta_info_def {\n    tags: \"serve\"\n  }\n}\n";
    const char *path = write_file("text", text, strlen(text));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like ASCII text, not a binary protobuf SavedModel; "
                                         "a SavedModel in protobuf text format must be sent as "
                                         "saved_model.pbtxt",
                                         NULL});
    expect_refused(path, FILE_KIND_MEAN_BINARYPROTO, "mean.binaryproto", "file_type_mismatch",
                   (const char *const[]){"ASCII text", NULL});
    /* ... and the same text under its right name is fine. */
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    assert_true(
        check(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", arena, &detected, &err));
    assert_string_equal(detected, "tensorflow saved model (protobuf text)");
    arena_destroy(arena);
}

static void test_saved_model_as_index(void **state)
{
    expect_refused(MODELS "counter/saved_model.pb", FILE_KIND_VARIABLES_INDEX, "variables.index",
                   "file_type_mismatch",
                   (const char *const[]){"looks like a TensorFlow SavedModel (binary protobuf), "
                                         "not a TensorFlow variables index",
                                         NULL});
}

static void test_index_as_saved_model(void **state)
{
    expect_refused(MODELS "counter/variables/variables.index", FILE_KIND_SAVED_MODEL_PB,
                   "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like a TensorFlow tensor bundle index", NULL});
    expect_refused(MODELS "counter/variables/variables.index", FILE_KIND_VARIABLES_DATA,
                   "variables.data-00000-of-00001", "file_type_mismatch",
                   (const char *const[]){"TensorFlow tensor bundle index", NULL});
}

static void test_saved_model_as_binaryproto(void **state)
{
    expect_refused(MODELS "matrix_half_plus_two/saved_model.pb", FILE_KIND_MEAN_BINARYPROTO,
                   "mean.binaryproto", "file_type_mismatch",
                   (const char *const[]){"looks like a TensorFlow SavedModel", NULL});
}

/* An index whose magic is right but whose footer handles point outside. */
static void test_index_bad_footer(void **state)
{
    unsigned char idx[64];
    memset(idx, 0, sizeof(idx));
    unsigned char *footer = idx + sizeof(idx) - 48;
    footer[0] = 0x7f; /* metaindex offset 127: beyond the 16 bytes before the footer */
    footer[1] = 0x01;
    static const unsigned char magic[8] = {0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb};
    memcpy(footer + 40, magic, 8);
    const char *path = write_file("index", idx, sizeof(idx));
    expect_refused(path, FILE_KIND_VARIABLES_INDEX, "variables.index", "file_type_mismatch",
                   (const char *const[]){"(its table footer points outside the file)", NULL});
}

static void test_truncated_saved_model(void **state)
{
    static unsigned char pb[1 << 16];
    size_t n = read_file(MODELS "half_plus_two_cpu/saved_model.pb", pb, sizeof(pb));
    assert_true(n > 1000);
    const char *path = write_file("cut.pb", pb, n - 100);
    /* A SavedModel damaged inside is an invalid graph, not a mix-up. */
    expect_refused(
        path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "invalid_graph",
        (const char *const[]){"is not a valid binary protobuf SavedModel (field 2 at byte 2 runs "
                              "past the end of the file; was the upload cut short?)",
                              NULL});
}

static void test_binary_garbage_as_saved_model(void **state)
{
    /* Field 0 / wire type 7: not protobuf, and libmagic has no name for it. */
    static const unsigned char junk[] = {0x07, 0xff, 0x00, 0x13, 0x37, 0xfe, 0x00, 0x01,
                                         0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
    const char *path = write_file("junk", junk, sizeof(junk));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PB, "saved_model.pb", "file_type_mismatch",
                   (const char *const[]){"looks like binary data, not a binary protobuf",
                                         "(field number 0 at byte 0)", NULL});
}

static void test_pbtxt_invalid_utf8(void **state)
{
    /* Lengths from sizeof, since one case holds NUL bytes. */
#define BYTES(lit) lit, sizeof(lit) - 1
    static const struct {
        const char *bytes;
        size_t len;
        const char *detail;
    } cases[] = {
        {BYTES("saved_model_schema_version: 1\n\xc3\x28\n"), "invalid UTF-8 at byte 30"},
        {BYTES("meta_graphs { \xc0\xaf }\n"), "invalid UTF-8 at byte 14"}, /* overlong '/' */
        {BYTES("meta_graphs { \"\xed\xa0\x80\" }\n"), "invalid UTF-8 at byte 15"}, /* surrogate */
        {BYTES("meta_graphs { \"\xf4\x90\x80\x80\" }\n"), "invalid UTF-8 at byte 15"},
        {BYTES("meta_graphs { \"\xe2\x82"), "invalid UTF-8 at byte 15 (cut short)"},
        {BYTES("meta_graphs {\x01}\n"), "control character 0x01 at byte 13"},
        {BYTES("\xff\xfe\x00m\x00e\x00t\x00a\x00"), "invalid UTF-8 at byte 0"}, /* UTF-16 */
        {BYTES("<?xml version=\"1.0\"?>\n<SavedModel/>\n"), NULL},
        {BYTES("{\"meta_graphs\": []}\n"),
         "its first token, at byte 0, is not a protobuf field name"},
        {BYTES("  \n# only a comment\n\n"), "it holds no protobuf fields"},
    };
#undef BYTES
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_file("bad.pbtxt", cases[i].bytes, cases[i].len);
        expect_refused(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", "file_type_mismatch",
                       (const char *const[]){"not a SavedModel in protobuf text format",
                                             cases[i].detail, NULL});
    }
}

/* Binary garbage that libmagic cannot name, uploaded as text. */
static void test_binary_as_pbtxt(void **state)
{
    unsigned char junk[4096];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    const char *path = write_file("junk.pbtxt", junk, sizeof(junk));
    expect_refused(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", "file_type_mismatch",
                   (const char *const[]){"not a SavedModel in protobuf text format (", NULL});
}

static void test_pbtxt_utf8_and_comments(void **state)
{
    const char *text =
        "# exported by hand \xe2\x80\x94 caf\xc3\xa9\n"
        "saved_model_schema_version: 1\n"
        "meta_graphs { meta_info_def { tags: \"s\xc3\xa9rve \xf0\x9f\x98\x80\" } }\n";
    const char *path = write_file("ok.pbtxt", text, strlen(text));
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    if (!check(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", arena, &detected, &err))
        fail_msg("%s", err.message);
    assert_string_equal(detected, "tensorflow saved model (protobuf text)");
    arena_destroy(arena);
}

/* A pbtxt larger than the scratch buffer whose only bad byte is far past
 * what libmagic reads and straddles a chunk boundary: the scan is streamed. */
static void test_pbtxt_bad_byte_deep(void **state)
{
    size_t len = 3 * 1024 * 1024;
    char *text = malloc(len);
    assert_non_null(text);
    memcpy(text, "meta_graphs {\n", 14);
    for (size_t i = 14; i < len; i++)
        text[i] = (i % 64 == 63) ? '\n' : 'a';
    /* A two-byte sequence split across the 64 KiB chunk boundary is fine. */
    text[65535] = '\xc3';
    text[65536] = '\xa9';
    const char *path = write_file("deep.pbtxt", text, len);
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    if (!check(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", arena, &detected, &err))
        fail_msg("%s", err.message);
    arena_destroy(arena);

    text[len - 10] = '\x80';
    path = write_file("deep.pbtxt", text, len);
    char detail[64];
    snprintf(detail, sizeof(detail), "invalid UTF-8 at byte %zu", len - 10);
    expect_refused(path, FILE_KIND_SAVED_MODEL_PBTXT, "saved_model.pbtxt", "file_type_mismatch",
                   (const char *const[]){detail, NULL});
    free(text);
}

/* ---- npy ------------------------------------------------------------- */

/* An .npy file of version major.0 holding three float32 values. */
static size_t make_npy(unsigned char *out, unsigned major, const char *dict)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = strlen(dict);
    size_t total = pre + hlen;
    size_t pad = (64 - (total + 1) % 64) % 64;
    hlen += pad + 1;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    if (major != 1) {
        out[10] = 0;
        out[11] = 0;
    }
    memcpy(out + pre, dict, strlen(dict));
    memset(out + pre + strlen(dict), ' ', pad);
    out[pre + hlen - 1] = '\n';
    static const float values[3] = {104.0f, 117.0f, 123.0f};
    memcpy(out + pre + hlen, values, sizeof(values));
    return pre + hlen + sizeof(values);
}

static void test_npy_accepted(void **state)
{
    static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    for (unsigned major = 1; major <= 3; major++) {
        unsigned char npy[256];
        size_t n = make_npy(npy, major, dict);
        const char *path = write_file("mean.npy", npy, n);
        arena_t *arena = arena_create(0);
        assert_non_null(arena);
        nn_error_t err;
        const char *detected = NULL;
        if (!check(path, FILE_KIND_MEAN_NPY, "mean.npy", arena, &detected, &err))
            fail_msg("version %u: %s", major, err.message);
        char want[64];
        snprintf(want, sizeof(want), "numpy array file (format %u.0)", major);
        assert_string_equal(detected, want);
        arena_destroy(arena);
    }
}

static void test_npy_refused(void **state)
{
    static const float floats[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const char *path = write_file("raw.npy", floats, sizeof(floats));
    expect_refused(path, FILE_KIND_MEAN_NPY, "mean.npy", "file_type_mismatch",
                   (const char *const[]){"not a NumPy .npy array file (it does not start with "
                                         "the NumPy magic",
                                         "numpy.save()", NULL});

    unsigned char npy[256];
    size_t n = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    npy[6] = 9; /* version 9.0 */
    path = write_file("v9.npy", npy, n);
    expect_refused(path, FILE_KIND_MEAN_NPY, "mean.npy", "file_type_mismatch",
                   (const char *const[]){"is not a valid NumPy .npy array file (unknown .npy "
                                         "format version 9.0)",
                                         NULL});

    n = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    npy[8] = 0xff; /* header length past the end */
    npy[9] = 0x7f;
    path = write_file("long.npy", npy, n);
    expect_refused(path, FILE_KIND_MEAN_NPY, "mean.npy", "file_type_mismatch",
                   (const char *const[]){"header length 32767 is not plausible", NULL});

    n = make_npy(npy, 1, "{'descr': '<f4', 'shape': (3,), }");
    path = write_file("nokey.npy", npy, n);
    expect_refused(path, FILE_KIND_MEAN_NPY, "mean.npy", "file_type_mismatch",
                   (const char *const[]){"header is not a dict", NULL});

    /* A PNG named mean.npy: what it looks like comes from libmagic. */
    path = write_file("png.npy", png_bytes, sizeof(png_bytes));
    expect_refused(path, FILE_KIND_MEAN_NPY, "mean.npy", "file_type_mismatch",
                   (const char *const[]){"looks like a PNG image, not a NumPy", NULL});
}

static void test_npy_as_data_shard(void **state)
{
    unsigned char npy[256];
    size_t n = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    const char *path = write_file("mean.npy", npy, n);
    expect_refused(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001",
                   "file_type_mismatch", (const char *const[]){"a NumPy array file", NULL});
}

/* ---- binaryproto and data shards ------------------------------------- */

static void test_binaryproto_accepted(void **state)
{
    /* BlobProto{num: 1, channels: 3, height: 1, width: 1, data: [1, 2, 3] packed} */
    static const unsigned char blob[] = {0x08, 0x01, 0x10, 0x03, 0x18, 0x01, 0x20, 0x01,
                                         0x2a, 0x0c, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
                                         0x00, 0x40, 0x00, 0x00, 0x40, 0x40};
    const char *path = write_file("mean.binaryproto", blob, sizeof(blob));
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    if (!check(path, FILE_KIND_MEAN_BINARYPROTO, "mean.binaryproto", arena, &detected, &err))
        fail_msg("%s", err.message);
    assert_string_equal(detected, "binary protobuf");
    arena_destroy(arena);

    /* The same bytes with the packed data cut short. */
    path = write_file("cut.binaryproto", blob, sizeof(blob) - 3);
    expect_refused(path, FILE_KIND_MEAN_BINARYPROTO, "mean.binaryproto", "file_type_mismatch",
                   (const char *const[]){"field 5 at byte 8 runs past the end", NULL});
}

static void test_data_shard_lenient(void **state)
{
    /* Raw tensor bytes that begin like weak signatures (a Windows icon's
     * 00 00 01 00, a BMP's "BM"), text, or 08 01 12 are still data. */
    static const unsigned char ico[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x80, 0x3f};
    static const unsigned char bmp[] = {'B', 'M', 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f};
    static const unsigned char sm[] = {0x08, 0x01, 0x12, 0x00, 0x00, 0x00, 0x80, 0x3f};
    static const char text[] = "a string tensor\n";
    const struct {
        const void *bytes;
        size_t len;
    } cases[] = {{ico, sizeof(ico)}, {bmp, sizeof(bmp)}, {sm, sizeof(sm)}, {text, strlen(text)}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_file("shard", cases[i].bytes, cases[i].len);
        arena_t *arena = arena_create(0);
        assert_non_null(arena);
        nn_error_t err;
        const char *detected = NULL;
        if (!check(path, FILE_KIND_VARIABLES_DATA, "variables.data-00000-of-00001", arena,
                   &detected, &err))
            fail_msg("case %zu: %s", i, err.message);
        arena_destroy(arena);
    }
}

/* The message quotes a hostile display name without breaking (truncated),
 * and libmagic text never brings non-ASCII bytes into it. */
static void test_message_is_bounded(void **state)
{
    char name[600];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    const char *path = write_file("png", png_bytes, sizeof(png_bytes));
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    const char *detected = NULL;
    assert_false(check(path, FILE_KIND_SAVED_MODEL_PB, name, arena, &detected, &err));
    assert_true(strlen(err.message) < NN_ERROR_MESSAGE_MAX);
    assert_non_null(strstr(err.message, "looks like a PNG image"));
    for (const char *p = err.message; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    arena_destroy(arena);
}

/* ---- names ----------------------------------------------------------- */

static void test_kind_for_name(void **state)
{
    static const struct {
        const char *name;
        bool ok;
        file_kind_t kind;
    } cases[] = {
        {"saved_model.pb", true, FILE_KIND_SAVED_MODEL_PB},
        {"saved_model.pbtxt", true, FILE_KIND_SAVED_MODEL_PBTXT},
        {"variables.index", true, FILE_KIND_VARIABLES_INDEX},
        {"variables.data-00000-of-00001", true, FILE_KIND_VARIABLES_DATA},
        {"variables.data-00002-of-00003", true, FILE_KIND_VARIABLES_DATA},
        {"variables.data-99998-of-99999", true, FILE_KIND_VARIABLES_DATA},
        {"mean.npy", true, FILE_KIND_MEAN_NPY},
        {"a.npy", true, FILE_KIND_MEAN_NPY},
        {"imagenet_mean.binaryproto", true, FILE_KIND_MEAN_BINARYPROTO},
        {"variables.data-00001-of-00001", false, 0},
        {"variables.data-00000-of-00000", false, 0},
        {"variables.data-0000-of-00001", false, 0},
        {"variables.data-00000-of-000001", false, 0},
        {"variables.data-0000a-of-00001", false, 0},
        {"variables.data-00000_of-00001", false, 0},
        {"variables.data", false, 0},
        {"saved_model.pb ", false, 0},
        {"Saved_model.pb", false, 0},
        {"saved_model", false, 0},
        {"variables.indx", false, 0},
        {".npy", false, 0},
        {"mean.NPY", false, 0},
        {".binaryproto", false, 0},
        {"mean.binaryprot", false, 0},
        {"", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        file_kind_t kind = (file_kind_t)-1;
        bool ok = filetype_kind_for_name(cases[i].name, &kind);
        if (ok != cases[i].ok)
            fail_msg("\"%s\": expected %s", cases[i].name, cases[i].ok ? "a kind" : "no kind");
        if (ok)
            assert_int_equal(kind, cases[i].kind);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_accepted),
        cmocka_unit_test(test_fixtures_without_project_magic),
        cmocka_unit_test(test_open_bad_magic_file),
        cmocka_unit_test(test_png_as_saved_model),
        cmocka_unit_test(test_png_as_data_shard),
        cmocka_unit_test(test_zip),
        cmocka_unit_test(test_elf),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_text_as_saved_model),
        cmocka_unit_test(test_saved_model_as_index),
        cmocka_unit_test(test_index_as_saved_model),
        cmocka_unit_test(test_saved_model_as_binaryproto),
        cmocka_unit_test(test_index_bad_footer),
        cmocka_unit_test(test_truncated_saved_model),
        cmocka_unit_test(test_binary_garbage_as_saved_model),
        cmocka_unit_test(test_pbtxt_invalid_utf8),
        cmocka_unit_test(test_binary_as_pbtxt),
        cmocka_unit_test(test_pbtxt_utf8_and_comments),
        cmocka_unit_test(test_pbtxt_bad_byte_deep),
        cmocka_unit_test(test_npy_accepted),
        cmocka_unit_test(test_npy_refused),
        cmocka_unit_test(test_npy_as_data_shard),
        cmocka_unit_test(test_binaryproto_accepted),
        cmocka_unit_test(test_data_shard_lenient),
        cmocka_unit_test(test_message_is_bounded),
        cmocka_unit_test(test_kind_for_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
