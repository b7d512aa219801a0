/* filetype.c - what an uploaded file really is (see filetype.h).
 *
 * Two sources of evidence, used together:
 *   1. libmagic (system database plus src/store/nnreg.magic): its MIME type
 *      and charset sort a file into a family (image, archive, executable,
 *      document, HTML, text, generic binary, or one of our TensorFlow types);
 *      each kind refuses the families it can never be.  Its description is
 *      what the error message says the file looks like.
 *   2. Structural checks libmagic cannot do, because it only reads the head
 *      of a file: the top level of a binary protobuf parses as wire format
 *      up to the last byte; a pbtxt is valid UTF-8 from the first byte to the
 *      last and starts with a field name; a variables.index ends in the table
 *      footer; an .npy header is readable.
 *
 * Files are read in chunks through one scratch buffer owned by the checker
 * (process lifetime, one request at a time per worker), so checking a
 * multi-gigabyte shard costs no memory.
 */
#include "store/filetype.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <magic.h>

#include "util/log.h"

/* libmagic reads at most this much of the head (its default is 7 MiB in
 * file 5.44).  Every signature we care about is in the first few KiB, and a
 * smaller window bounds its text and regex scans on big weight shards. */
#define FT_MAGIC_BYTES_MAX (1024 * 1024)
#define FT_SCRATCH_SIZE (64 * 1024)
/* Longest libmagic description kept for a message. */
#define FT_DESC_MAX 80

/* Compressed files are named as archives from their own magic; looking
 * inside them (decompressing), at ELF sections, CDF, JSON or CSV structure
 * would only add work and detail we do not report. */
#define FT_MAGIC_FLAGS                                                                             \
    (MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_CDF |             \
     MAGIC_NO_CHECK_JSON | MAGIC_NO_CHECK_CSV)

#define MIME_SAVED_MODEL "application/x-tensorflow-saved-model"
#define MIME_BUNDLE_INDEX "application/x-tensorflow-tensor-bundle-index"
#define MIME_NPY "application/x-npy"

/* The tensor-bundle (LevelDB table) footer: metaindex and index block
 * handles (varints, zero-padded to 40 bytes), then the 8-byte magic. */
#define TABLE_FOOTER_LEN 48
#define TABLE_HANDLES_LEN 40
static const unsigned char table_magic[8] = {0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb};

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

struct filetype_checker {
    magic_t magic;
    unsigned char *scratch; /* FT_SCRATCH_SIZE bytes */
};

/* ---- families -------------------------------------------------------- */

typedef enum {
    FAM_BINARY, /* nothing recognised: application/octet-stream and the like */
    FAM_TEXT,   /* any charset other than "binary" */
    FAM_HTML,
    FAM_IMAGE,
    FAM_MEDIA,
    FAM_ARCHIVE,
    FAM_EXECUTABLE,
    FAM_DOCUMENT,
    FAM_TF_SAVED_MODEL,
    FAM_TF_BUNDLE_INDEX,
    FAM_NPY,
} family_t;

#define FAM_BIT(f) (1u << (f))

/* MIME types of formats that can never be a model file.  "strong" marks a
 * signature of four or more distinctive bytes: only those are held against a
 * variables.data shard, whose raw tensor bytes can start with anything and
 * now and then hit one of the system database's weaker two-byte entries. */
static const struct {
    const char *mime;
    bool prefix;
    family_t family;
    bool strong;
} mime_families[] = {
    {MIME_SAVED_MODEL, false, FAM_TF_SAVED_MODEL, false},
    {MIME_BUNDLE_INDEX, false, FAM_TF_BUNDLE_INDEX, true},
    {MIME_NPY, false, FAM_NPY, true},
    {"text/html", false, FAM_HTML, true},
    {"application/xhtml+xml", false, FAM_HTML, true},
    {"image/png", false, FAM_IMAGE, true},
    {"image/jpeg", false, FAM_IMAGE, true},
    {"image/gif", false, FAM_IMAGE, true},
    {"image/webp", false, FAM_IMAGE, true},
    {"image/tiff", false, FAM_IMAGE, true},
    {"image/", true, FAM_IMAGE, false},
    {"audio/", true, FAM_MEDIA, false},
    {"video/", true, FAM_MEDIA, false},
    {"application/zip", false, FAM_ARCHIVE, true},
    {"application/gzip", false, FAM_ARCHIVE, true},
    {"application/x-gzip", false, FAM_ARCHIVE, true},
    {"application/x-bzip2", false, FAM_ARCHIVE, true},
    {"application/x-xz", false, FAM_ARCHIVE, true},
    {"application/zstd", false, FAM_ARCHIVE, true},
    {"application/x-zstd", false, FAM_ARCHIVE, true},
    {"application/x-7z-compressed", false, FAM_ARCHIVE, true},
    {"application/x-rar", false, FAM_ARCHIVE, true},
    {"application/vnd.rar", false, FAM_ARCHIVE, true},
    {"application/x-tar", false, FAM_ARCHIVE, true},
    {"application/java-archive", false, FAM_ARCHIVE, true},
    {"application/x-snappy-framed", false, FAM_ARCHIVE, true},
    {"application/x-lzma", false, FAM_ARCHIVE, false},
    {"application/x-lz4", false, FAM_ARCHIVE, false},
    {"application/x-lzip", false, FAM_ARCHIVE, false},
    {"application/x-compress", false, FAM_ARCHIVE, false},
    {"application/x-archive", false, FAM_ARCHIVE, false},
    {"application/x-cpio", false, FAM_ARCHIVE, false},
    {"application/x-iso9660-image", false, FAM_ARCHIVE, false},
    {"application/x-debian-package", false, FAM_ARCHIVE, false},
    {"application/x-rpm", false, FAM_ARCHIVE, false},
    {"application/x-executable", false, FAM_EXECUTABLE, true},
    {"application/x-pie-executable", false, FAM_EXECUTABLE, true},
    {"application/x-sharedlib", false, FAM_EXECUTABLE, true},
    {"application/x-object", false, FAM_EXECUTABLE, true},
    {"application/x-coredump", false, FAM_EXECUTABLE, true},
    {"application/x-mach-binary", false, FAM_EXECUTABLE, true},
    {"application/vnd.microsoft.portable-executable", false, FAM_EXECUTABLE, true},
    {"application/wasm", false, FAM_EXECUTABLE, true},
    {"application/x-java-applet", false, FAM_EXECUTABLE, true},
    {"application/x-dosexec", false, FAM_EXECUTABLE, false},
    {"application/pdf", false, FAM_DOCUMENT, true},
    {"application/postscript", false, FAM_DOCUMENT, true},
    {"application/rtf", false, FAM_DOCUMENT, true},
    {"application/x-sqlite3", false, FAM_DOCUMENT, true},
    {"application/vnd.openxmlformats-", true, FAM_DOCUMENT, true},
    {"application/vnd.oasis.opendocument.", true, FAM_DOCUMENT, true},
    {"application/msword", false, FAM_DOCUMENT, false},
    {"application/vnd.ms-", true, FAM_DOCUMENT, false},
};

typedef struct {
    family_t family;
    bool strong;
    const char *mime;    /* type only, arena copy */
    const char *charset; /* "binary", "us-ascii", "utf-8", ... */
    const char *looks;   /* "a PNG image", "binary data", ... for messages */
} magic_verdict_t;

static void classify(magic_verdict_t *v)
{
    for (size_t i = 0; i < sizeof(mime_families) / sizeof(mime_families[0]); i++) {
        const char *m = mime_families[i].mime;
        bool hit =
            mime_families[i].prefix ? strncmp(v->mime, m, strlen(m)) == 0 : strcmp(v->mime, m) == 0;
        if (hit) {
            v->family = mime_families[i].family;
            v->strong = mime_families[i].strong;
            return;
        }
    }
    v->strong = false;
    if (strcmp(v->charset, "binary") != 0 || strncmp(v->mime, "text/", 5) == 0)
        v->family = FAM_TEXT;
    else
        v->family = FAM_BINARY;
}

/* ---- describing a file for a message --------------------------------- */

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Whether the description names a countable thing ("PNG image") rather than
 * a mass noun ("ASCII text", "gzip compressed data"): only the former takes
 * an article. */
static bool countable(const char *s)
{
    static const char *nouns[] = {"image",  "archive", "document",   "executable", "file",
                                  "object", "library", "SavedModel", "index",      "program",
                                  "script", "package", "database",   "bitmap",     "icon"};
    for (size_t i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++) {
        size_t n = strlen(nouns[i]);
        for (const char *p = strstr(s, nouns[i]); p; p = strstr(p + 1, nouns[i])) {
            bool start = p == s || p[-1] == ' ';
            bool end = p[n] == '\0' || p[n] == ' ' || p[n] == ')';
            if (start && end)
                return true;
        }
    }
    return false;
}

/* "an" before a vowel sound: lowercase words by their first letter,
 * acronyms (two capitals) by how the first letter is spoken (an ELF, an
 * HTML, an SVG, a PNG). */
static const char *article(const char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z')
        return strchr("AEFHILMNORSX", s[0]) ? "an" : "a";
    return strchr("aeiouAEIOU", s[0]) ? "an" : "a";
}

/* libmagic's description, made fit for a message: first clause only,
 * printable ASCII only (descriptions can quote bytes of the file, and the
 * message ends up in a JSON body that must be valid UTF-8), bounded length,
 * with an article where English wants one. */
static const char *describe(arena_t *arena, const char *desc)
{
    char out[FT_DESC_MAX + 1];
    size_t len = 0;
    for (const char *p = desc; *p && len < FT_DESC_MAX; p++) {
        if ((p[0] == ',' && p[1] == ' ') || (p[0] == ' ' && p[1] == '-' && p[2] == ' ') ||
            p[0] == '\n')
            break;
        unsigned char c = (unsigned char)*p;
        out[len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    while (len > 0 && out[len - 1] == ' ')
        len--;
    out[len] = '\0';
    /* The system database reads a leading 08 01 (protobuf field 1, varint 1:
     * how SavedModels and most BlobProtos begin) as the PDP-11 a.out magic;
     * naming that in a message would only mislead. */
    if (len == 0 || strcmp(out, "data") == 0 || strcmp(out, "very short file (no magic)") == 0 ||
        strncmp(out, "PDP-11 ", 7) == 0)
        return "binary data";
    if (ends_with(out, len, " image data") || ends_with(out, len, " archive data")) {
        len -= strlen(" data");
        out[len] = '\0';
    }
    const char *r =
        countable(out) ? arena_printf(arena, "%s %s", article(out), out) : arena_strdup(arena, out);
    return r ? r : "an unknown type";
}

/* ---- open / close ---------------------------------------------------- */

filetype_checker_t *filetype_open(const char *project_magic, char *errbuf, size_t errlen)
{
    filetype_checker_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    c->scratch = malloc(FT_SCRATCH_SIZE);
    c->magic = magic_open(FT_MAGIC_FLAGS);
    if (!c->scratch || !c->magic) {
        snprintf(errbuf, errlen, "cannot initialise libmagic: %s",
                 c->scratch ? strerror(errno) : "out of memory");
        filetype_close(c);
        return NULL;
    }
    size_t bytes_max = FT_MAGIC_BYTES_MAX;
    if (magic_setparam(c->magic, MAGIC_PARAM_BYTES_MAX, &bytes_max) != 0)
        log_warn("libmagic: cannot limit bytes read (%s); using its default",
                 magic_error(c->magic) ? magic_error(c->magic) : "unknown error");

    /* The project file first: at equal strength the first loaded entry wins,
     * and ours must win over the PDP-11 and LevelDB entries anyway. */
    const char *system_path = magic_getpath(NULL, 0);
    if (!system_path) {
        snprintf(errbuf, errlen, "libmagic knows no default magic database path");
        filetype_close(c);
        return NULL;
    }
    char path[4096];
    int n = project_magic ? snprintf(path, sizeof(path), "%s:%s", project_magic, system_path)
                          : snprintf(path, sizeof(path), "%s", system_path);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(errbuf, errlen, "magic database path too long");
        filetype_close(c);
        return NULL;
    }
    if (magic_load(c->magic, path) != 0) {
        const char *e = magic_error(c->magic);
        snprintf(errbuf, errlen, "cannot load the magic database %s: %s", path,
                 e ? e : "unknown error");
        filetype_close(c);
        return NULL;
    }

    /* A stale or foreign .mgc can load and still not name our formats (or be
     * outranked); find out now, not from the first upload refused. */
    if (project_magic) {
        static const unsigned char probe[] = {0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x22, 0x00};
        const char *mime = NULL;
        if (magic_setflags(c->magic, FT_MAGIC_FLAGS | MAGIC_MIME_TYPE) == 0)
            mime = magic_buffer(c->magic, probe, sizeof(probe));
        bool ok = mime && strcmp(mime, MIME_SAVED_MODEL) == 0;
        if (magic_setflags(c->magic, FT_MAGIC_FLAGS) != 0)
            ok = false;
        if (!ok) {
            snprintf(errbuf, errlen,
                     "the magic file %s does not identify a TensorFlow SavedModel (got %s); "
                     "rebuild nnreg.magic.mgc with this system's file(1)",
                     project_magic, mime ? mime : "an error");
            filetype_close(c);
            return NULL;
        }
    }
    return c;
}

void filetype_close(filetype_checker_t *c)
{
    if (!c)
        return;
    if (c->magic)
        magic_close(c->magic);
    free(c->scratch);
    free(c);
}

/* ---- kind names ------------------------------------------------------ */

static const struct {
    const char *noun; /* "not a <noun>", "is not a valid <noun>" */
    const char *fix;  /* what to do instead */
} kind_texts[] = {
    [FILE_KIND_SAVED_MODEL_PB] = {"binary protobuf SavedModel",
                                  "upload the SavedModel's saved_model.pb"},
    [FILE_KIND_SAVED_MODEL_PBTXT] = {"SavedModel in protobuf text format",
                                     "upload the SavedModel's saved_model.pbtxt (UTF-8 text), "
                                     "or a binary SavedModel as saved_model.pb"},
    [FILE_KIND_VARIABLES_INDEX] = {"TensorFlow variables index",
                                   "upload the SavedModel's variables/variables.index"},
    [FILE_KIND_VARIABLES_DATA] = {"TensorFlow variables data shard",
                                  "upload the matching shard from the SavedModel's variables/ "
                                  "directory"},
    [FILE_KIND_MEAN_NPY] = {"NumPy .npy array file",
                            "save the mean with numpy.save() and upload that .npy file"},
    [FILE_KIND_MEAN_BINARYPROTO] = {"binary protobuf Caffe BlobProto",
                                    "upload the mean file as a serialized BlobProto"},
};

bool filetype_kind_for_name(const char *name, file_kind_t *kind)
{
    static const char data_prefix[] = "variables.data-";
    size_t len = strlen(name);
    if (strcmp(name, "saved_model.pb") == 0) {
        *kind = FILE_KIND_SAVED_MODEL_PB;
        return true;
    }
    if (strcmp(name, "saved_model.pbtxt") == 0) {
        *kind = FILE_KIND_SAVED_MODEL_PBTXT;
        return true;
    }
    if (strcmp(name, "variables.index") == 0) {
        *kind = FILE_KIND_VARIABLES_INDEX;
        return true;
    }
    /* variables.data-SSSSS-of-NNNNN */
    const size_t plen = sizeof(data_prefix) - 1;
    if (len == plen + 5 + 4 + 5 && strncmp(name, data_prefix, plen) == 0 &&
        memcmp(name + plen + 5, "-of-", 4) == 0) {
        unsigned shard = 0, count = 0;
        for (size_t i = 0; i < 5; i++) {
            char s = name[plen + i], n = name[plen + 9 + i];
            if (s < '0' || s > '9' || n < '0' || n > '9')
                return false;
            shard = shard * 10 + (unsigned)(s - '0');
            count = count * 10 + (unsigned)(n - '0');
        }
        if (shard >= count)
            return false;
        *kind = FILE_KIND_VARIABLES_DATA;
        return true;
    }
    /* A bare ".npy" is a hidden file, not a mean file with a name. */
    if (len > 4 && strcmp(name + len - 4, ".npy") == 0) {
        *kind = FILE_KIND_MEAN_NPY;
        return true;
    }
    if (len > 12 && strcmp(name + len - 12, ".binaryproto") == 0) {
        *kind = FILE_KIND_MEAN_BINARYPROTO;
        return true;
    }
    return false;
}

/* ---- chunked reader -------------------------------------------------- */

typedef struct {
    int fd;
    uint64_t size;
    unsigned char *buf; /* the checker's scratch */
    uint64_t buf_pos;   /* file offset of buf[0] */
    size_t len, off;
    int read_errno; /* nonzero once a read failed */
} reader_t;

static void reader_init(reader_t *r, int fd, uint64_t size, unsigned char *scratch)
{
    r->fd = fd;
    r->size = size;
    r->buf = scratch;
    r->buf_pos = 0;
    r->len = 0;
    r->off = 0;
    r->read_errno = 0;
}

static uint64_t reader_pos(const reader_t *r)
{
    return r->buf_pos + r->off;
}

/* Refills the buffer at the current position; false at EOF or on error. */
static bool reader_fill(reader_t *r)
{
    uint64_t pos = reader_pos(r);
    r->buf_pos = pos;
    r->off = 0;
    r->len = 0;
    for (;;) {
        ssize_t n = pread(r->fd, r->buf, FT_SCRATCH_SIZE, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->read_errno = errno;
            return false;
        }
        r->len = (size_t)n;
        return n > 0;
    }
}

/* Next byte, or -1 at EOF / on error (read_errno tells which). */
static int reader_byte(reader_t *r)
{
    if (r->off == r->len && !reader_fill(r))
        return -1;
    return r->buf[r->off++];
}

/* Skips n bytes; false if that runs past the end of the file. */
static bool reader_skip(reader_t *r, uint64_t n)
{
    uint64_t pos = reader_pos(r);
    if (n > r->size - pos)
        return false;
    if (n <= r->len - r->off) {
        r->off += (size_t)n;
    } else {
        r->buf_pos = pos + n;
        r->off = r->len = 0;
    }
    return true;
}

/* ---- structural checks ----------------------------------------------- */

/* Each check fills detail (a parenthetical for the message) on failure. */
typedef struct {
    char text[160];
} detail_t;

static bool io_trouble(const reader_t *r, detail_t *d)
{
    if (r->read_errno) {
        snprintf(d->text, sizeof(d->text), "read error: %s", strerror(r->read_errno));
        return true;
    }
    return false;
}

/* Reads a varint of at most max_bytes; 0 ok, 1 EOF, 2 too long. */
static int read_varint(reader_t *r, unsigned max_bytes, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes; i++) {
        int b = reader_byte(r);
        if (b < 0)
            return 1;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return 2;
}

#define PB_MAX_GROUP_DEPTH 32

/* Walks the top level of a binary protobuf message from the first byte to
 * the last: every tag has a field number and a valid wire type, every
 * length-delimited field fits in the file.  Nested messages are skipped
 * (their lengths only), so a SavedModel costs a handful of reads however
 * large it is; what is inside is the graph reader's business. */
static bool check_protobuf_wire(reader_t *r, detail_t *d)
{
    uint32_t groups[PB_MAX_GROUP_DEPTH];
    unsigned depth = 0;
    while (reader_pos(r) < r->size) {
        uint64_t at = reader_pos(r), tag = 0, v = 0;
        int rc = read_varint(r, 5, &tag);
        if (rc != 0 || tag > UINT32_MAX) {
            if (!io_trouble(r, d))
                snprintf(d->text, sizeof(d->text), "bad field tag at byte %llu",
                         (unsigned long long)at);
            return false;
        }
        uint32_t field = (uint32_t)(tag >> 3);
        unsigned wire = (unsigned)(tag & 7);
        if (field == 0) {
            snprintf(d->text, sizeof(d->text), "field number 0 at byte %llu",
                     (unsigned long long)at);
            return false;
        }
        bool ok = true;
        switch (wire) {
        case 0:
            ok = read_varint(r, 10, &v) == 0;
            break;
        case 1:
            ok = reader_skip(r, 8);
            break;
        case 2:
            ok = read_varint(r, 10, &v) == 0 && reader_skip(r, v);
            break;
        case 3:
            if (depth == PB_MAX_GROUP_DEPTH) {
                snprintf(d->text, sizeof(d->text), "groups nested too deeply at byte %llu",
                         (unsigned long long)at);
                return false;
            }
            groups[depth++] = field;
            break;
        case 4:
            if (depth == 0 || groups[depth - 1] != field) {
                snprintf(d->text, sizeof(d->text), "unmatched end of group at byte %llu",
                         (unsigned long long)at);
                return false;
            }
            depth--;
            break;
        case 5:
            ok = reader_skip(r, 4);
            break;
        default:
            snprintf(d->text, sizeof(d->text), "invalid wire type %u at byte %llu", wire,
                     (unsigned long long)at);
            return false;
        }
        if (!ok) {
            if (!io_trouble(r, d))
                snprintf(d->text, sizeof(d->text),
                         "field %u at byte %llu runs past the end of the file; was the "
                         "upload cut short?",
                         field, (unsigned long long)at);
            return false;
        }
    }
    if (depth != 0) {
        snprintf(d->text, sizeof(d->text), "a group is not closed at the end of the file");
        return false;
    }
    return true;
}

#define PBTXT_NAME_MAX 32

/* Protobuf text: valid UTF-8 throughout (no overlong forms, no surrogates,
 * nothing above U+10FFFF), no control characters other than whitespace, and
 * the first token after whitespace and # comments is a field name (which
 * tells it from XML, JSON, HTML and the like).  Streams the whole file:
 * libmagic decides "text" from the head alone.  first_field receives the
 * first field name (truncated). */
static bool check_protobuf_text(reader_t *r, detail_t *d, char first_field[PBTXT_NAME_MAX + 1])
{
    enum { TOK_SPACE, TOK_COMMENT, TOK_NAME, TOK_DONE } tok = TOK_SPACE;
    size_t name_len = 0;
    unsigned need = 0;                  /* continuation bytes still expected */
    unsigned char lo = 0x80, hi = 0xbf; /* range of the next continuation byte */
    uint64_t seq_start = 0;
    first_field[0] = '\0';
    for (;;) {
        uint64_t at = reader_pos(r);
        int b = reader_byte(r);
        if (b < 0)
            break;
        if (need > 0) {
            if (b < lo || b > hi) {
                snprintf(d->text, sizeof(d->text), "invalid UTF-8 at byte %llu",
                         (unsigned long long)seq_start);
                return false;
            }
            lo = 0x80;
            hi = 0xbf;
            need--;
            if (tok == TOK_SPACE || tok == TOK_NAME) /* non-ASCII ends a name */
                tok = tok == TOK_NAME ? TOK_DONE : TOK_SPACE;
            continue;
        }
        seq_start = at;
        if (b < 0x80) {
            if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f' && b != '\v') ||
                b == 0x7f) {
                snprintf(d->text, sizeof(d->text), "control character 0x%02x at byte %llu", b,
                         (unsigned long long)at);
                return false;
            }
        } else if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0)
                lo = 0xa0; /* no overlong 3-byte forms */
            else if (b == 0xed)
                hi = 0x9f; /* no UTF-16 surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0)
                lo = 0x90; /* no overlong 4-byte forms */
            else if (b == 0xf4)
                hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            snprintf(d->text, sizeof(d->text), "invalid UTF-8 at byte %llu",
                     (unsigned long long)at);
            return false;
        }

        switch (tok) {
        case TOK_SPACE:
            if (b == '#') {
                tok = TOK_COMMENT;
            } else if (b == ' ' || (b >= '\t' && b <= '\r')) {
                /* keep skipping */
            } else if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_' || b == '[') {
                tok = TOK_NAME;
                first_field[name_len++] = (char)b;
                first_field[name_len] = '\0';
            } else {
                snprintf(d->text, sizeof(d->text),
                         "its first token, at byte %llu, is not a protobuf field name",
                         (unsigned long long)at);
                return false;
            }
            break;
        case TOK_COMMENT:
            if (b == '\n')
                tok = TOK_SPACE;
            break;
        case TOK_NAME:
            if (((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                 b == '_' || b == '.' || b == '/' || b == ']') &&
                name_len < PBTXT_NAME_MAX) {
                first_field[name_len++] = (char)b;
                first_field[name_len] = '\0';
            } else {
                tok = TOK_DONE;
            }
            break;
        case TOK_DONE:
            break;
        }
    }
    if (io_trouble(r, d))
        return false;
    if (need > 0) {
        snprintf(d->text, sizeof(d->text), "invalid UTF-8 at byte %llu (cut short)",
                 (unsigned long long)seq_start);
        return false;
    }
    if (tok == TOK_SPACE || tok == TOK_COMMENT) {
        snprintf(d->text, sizeof(d->text), "it holds no protobuf fields");
        return false;
    }
    return true;
}

static bool pread_full(int fd, void *buf, size_t len, uint64_t off, int *err_out)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err_out = n < 0 ? errno : EIO;
            return false;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

/* Decodes a varint from a byte range; advances *p.  false if it does not
 * end inside the range or is longer than 10 bytes. */
static bool varint_at(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10 && *p < end; i++) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* A tensor-bundle index is a LevelDB table: the footer's last 8 bytes are
 * the magic and its two block handles (offset, size) point inside the file,
 * each block followed by a 5-byte trailer (type, CRC). */
static bool check_table_footer(int fd, uint64_t size, detail_t *d)
{
    unsigned char footer[TABLE_FOOTER_LEN];
    int e = 0;
    if (size < TABLE_FOOTER_LEN) {
        snprintf(d->text, sizeof(d->text), "it is %llu bytes, shorter than a table footer",
                 (unsigned long long)size);
        return false;
    }
    if (!pread_full(fd, footer, sizeof(footer), size - TABLE_FOOTER_LEN, &e)) {
        snprintf(d->text, sizeof(d->text), "read error: %s", strerror(e));
        return false;
    }
    if (memcmp(footer + TABLE_HANDLES_LEN, table_magic, sizeof(table_magic)) != 0) {
        snprintf(d->text, sizeof(d->text), "it does not end with the table magic");
        return false;
    }
    const unsigned char *p = footer, *end = footer + TABLE_HANDLES_LEN;
    uint64_t limit = size - TABLE_FOOTER_LEN;
    for (int i = 0; i < 2; i++) {
        uint64_t off = 0, len = 0;
        if (!varint_at(&p, end, &off) || !varint_at(&p, end, &len) || off > limit ||
            len > limit - off || limit - off - len < 5) {
            snprintf(d->text, sizeof(d->text), "its table footer points outside the file");
            return false;
        }
    }
    return true;
}

/* Longest .npy header accepted; NumPy itself refuses headers over 10000
 * bytes unless told otherwise. */
#define NPY_HEADER_MAX (FT_SCRATCH_SIZE - 12)

/* .npy: magic, a known format version, a header length that fits in the
 * file, and a header that is a dict naming descr, fortran_order and shape
 * and ending in a newline.  Whether the shape suits the network's input is
 * the deployer's check. */
static bool check_npy(int fd, uint64_t size, unsigned char *scratch, unsigned *major,
                      unsigned *minor, detail_t *d)
{
    unsigned char head[12];
    size_t head_len = size < sizeof(head) ? (size_t)size : sizeof(head);
    int e = 0;
    if (!pread_full(fd, head, head_len, 0, &e)) {
        snprintf(d->text, sizeof(d->text), "read error: %s", strerror(e));
        return false;
    }
    if (head_len < 10 || memcmp(head, npy_magic, sizeof(npy_magic)) != 0) {
        snprintf(d->text, sizeof(d->text), "it does not start with the NumPy magic \\x93NUMPY");
        return false;
    }
    *major = head[6];
    *minor = head[7];
    if (*major < 1 || *major > 3 || *minor != 0) {
        snprintf(d->text, sizeof(d->text), "unknown .npy format version %u.%u", *major, *minor);
        return false;
    }
    uint64_t hlen, preamble;
    if (*major == 1) {
        hlen = (uint64_t)head[8] | (uint64_t)head[9] << 8;
        preamble = 10;
    } else {
        if (head_len < 12) {
            snprintf(d->text, sizeof(d->text), "its header is cut short");
            return false;
        }
        hlen = (uint64_t)head[8] | (uint64_t)head[9] << 8 | (uint64_t)head[10] << 16 |
               (uint64_t)head[11] << 24;
        preamble = 12;
    }
    if (hlen == 0 || hlen > NPY_HEADER_MAX || hlen > size - preamble) {
        snprintf(d->text, sizeof(d->text), "its header length %llu is not plausible",
                 (unsigned long long)hlen);
        return false;
    }
    if (!pread_full(fd, scratch, (size_t)hlen, preamble, &e)) {
        snprintf(d->text, sizeof(d->text), "read error: %s", strerror(e));
        return false;
    }
    const char *h = (const char *)scratch;
    size_t n = (size_t)hlen, i = 0;
    while (i < n && h[i] == ' ')
        i++;
    bool has[3] = {false, false, false};
    static const char *keys[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++) {
        size_t kl = strlen(keys[k]);
        for (size_t j = i; j + kl + 2 <= n && !has[k]; j++)
            has[k] = (h[j] == '\'' || h[j] == '"') && memcmp(h + j + 1, keys[k], kl) == 0 &&
                     h[j + 1 + kl] == h[j];
    }
    if (i == n || h[i] != '{' || h[n - 1] != '\n' || !has[0] || !has[1] || !has[2]) {
        snprintf(d->text, sizeof(d->text),
                 "its header is not a dict with descr, fortran_order and shape");
        return false;
    }
    return true;
}

/* ---- the check ------------------------------------------------------- */

/* Runs libmagic on fd twice (description, then MIME type and charset) and
 * classifies the result.  libmagic owns the strings it returns until its
 * next call, hence the arena copies. */
static bool run_magic(filetype_checker_t *c, arena_t *arena, int fd, magic_verdict_t *v,
                      nn_error_t *err)
{
    const char *res;
    char *desc = NULL, *mime = NULL;
    for (int pass = 0; pass < 2; pass++) {
        int flags = FT_MAGIC_FLAGS | (pass ? MAGIC_MIME_TYPE | MAGIC_MIME_ENCODING : 0);
        if (magic_setflags(c->magic, flags) != 0 || lseek(fd, 0, SEEK_SET) != 0 ||
            !(res = magic_descriptor(c->magic, fd))) {
            const char *e = magic_error(c->magic);
            log_error("libmagic failed: %s", e ? e : strerror(errno));
            (void)magic_setflags(c->magic, FT_MAGIC_FLAGS);
            return nn_error_internal(err, "could not determine the uploaded file's type");
        }
        char *copy = arena_strdup(arena, res);
        if (!copy)
            return nn_error_oom(err);
        if (pass)
            mime = copy;
        else
            desc = copy;
    }
    (void)magic_setflags(c->magic, FT_MAGIC_FLAGS);
    /* "type/subtype; charset=xxx" */
    v->charset = "binary";
    char *semi = strchr(mime, ';');
    if (semi) {
        *semi = '\0';
        char *cs = strstr(semi + 1, "charset=");
        if (cs)
            v->charset = cs + strlen("charset=");
    }
    v->mime = mime;
    v->looks = describe(arena, desc);
    classify(v);
    return true;
}

/* Which libmagic families each kind accepts; anything else is refused
 * before the structural checks run. */
static unsigned accepted_families(file_kind_t kind)
{
    switch (kind) {
    case FILE_KIND_SAVED_MODEL_PB:
        return FAM_BIT(FAM_BINARY) | FAM_BIT(FAM_TF_SAVED_MODEL);
    case FILE_KIND_MEAN_BINARYPROTO:
        /* A BlobProto has no field 2 of wire type 2, so 08 01 12 is not
         * one: a SavedModel sent as a mean file is refused. */
        return FAM_BIT(FAM_BINARY);
    case FILE_KIND_SAVED_MODEL_PBTXT:
        /* The UTF-8 scan decides about text; libmagic may call an odd but
         * valid text "data", so generic binary is left to that scan. */
        return FAM_BIT(FAM_TEXT) | FAM_BIT(FAM_BINARY);
    case FILE_KIND_VARIABLES_INDEX:
        return FAM_BIT(FAM_BINARY) | FAM_BIT(FAM_TF_BUNDLE_INDEX);
    case FILE_KIND_VARIABLES_DATA:
        /* Raw tensor bytes: anything but a strong foreign signature (see
         * mime_families); 08 01 12 is too short to hold against a shard. */
        return FAM_BIT(FAM_BINARY) | FAM_BIT(FAM_TEXT) | FAM_BIT(FAM_TF_SAVED_MODEL);
    case FILE_KIND_MEAN_NPY:
        /* Generic binary too: without the project magic file libmagic has
         * no MIME type for .npy, and check_npy decides anyway. */
        return FAM_BIT(FAM_NPY) | FAM_BIT(FAM_BINARY);
    }
    return 0;
}

/* The libmagic family that names the kind itself: when the structure check
 * fails on such a file, "looks like a NumPy array file, not a NumPy array
 * file" would be nonsense; it is a damaged one. */
static bool own_family(file_kind_t kind, family_t family)
{
    return (kind == FILE_KIND_SAVED_MODEL_PB && family == FAM_TF_SAVED_MODEL) ||
           (kind == FILE_KIND_VARIABLES_INDEX && family == FAM_TF_BUNDLE_INDEX) ||
           (kind == FILE_KIND_MEAN_NPY && family == FAM_NPY);
}

/* file "NAME" looks like WHAT, not KIND (DETAIL); FIX
 * file "NAME" is not a valid KIND (DETAIL); FIX */
static bool mismatch(nn_error_t *err, file_kind_t kind, const char *name, const magic_verdict_t *v,
                     const detail_t *d)
{
    const char *fix = kind_texts[kind].fix;
    /* The likeliest mix-up has a more precise fix than "upload the right
     * file": the user has a text-format SavedModel. */
    if (kind == FILE_KIND_SAVED_MODEL_PB && v->family == FAM_TEXT)
        fix = "a SavedModel in protobuf text format must be sent as saved_model.pbtxt";
    bool has_detail = d && d->text[0];
    const char *lparen = has_detail ? " (" : "", *detail = has_detail ? d->text : "",
               *rparen = has_detail ? ")" : "";
    /* A file that is what its name says but is damaged inside: for a
     * graph that is an invalid graph (docs/api.md), not a mix-up. */
    if (own_family(kind, v->family))
        return nn_error_set(err, 400,
                            kind == FILE_KIND_SAVED_MODEL_PB ? "invalid_graph" : "file_type_mismatch",
                            "file \"%.200s\" is not a valid %s%s%s%s; %s", name,
                            kind_texts[kind].noun, lparen, detail, rparen, fix);
    return nn_error_set(err, 400, "file_type_mismatch",
                        "file \"%.200s\" looks like %s, not a %s%s%s%s; %s", name, v->looks,
                        kind_texts[kind].noun, lparen, detail, rparen, fix);
}

bool filetype_check(filetype_checker_t *c, arena_t *arena, const char *path, file_kind_t kind,
                    const char *display_name, const char **detected, nn_error_t *err)
{
    *detected = NULL;
    if ((unsigned)kind >= sizeof(kind_texts) / sizeof(kind_texts[0]))
        return nn_error_internal(err, "unknown file kind");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("filetype: cannot open %s: %s", path, strerror(errno));
        return nn_error_internal(err, "could not read the uploaded file");
    }
    bool ok = false;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        log_error("filetype: %s is not a readable regular file", path);
        nn_error_internal(err, "could not read the uploaded file");
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        nn_error_set(err, 400, "empty_file", "file \"%.200s\" is empty; %s", display_name,
                     kind_texts[kind].fix);
        goto out;
    }

    magic_verdict_t v = {0};
    if (!run_magic(c, arena, fd, &v, err))
        goto out;
    bool family_ok = (accepted_families(kind) & FAM_BIT(v.family)) != 0;
    if (kind == FILE_KIND_VARIABLES_DATA && !family_ok && !v.strong)
        family_ok = true;
    if (kind == FILE_KIND_SAVED_MODEL_PBTXT && v.family == FAM_TEXT &&
        strcmp(v.mime, "text/plain") != 0 && strncmp(v.mime, "text/x-", 7) != 0)
        family_ok = false; /* XML, HTML, JSON-ish and other structured text */
    if (!family_ok) {
        mismatch(err, kind, display_name, &v, NULL);
        goto out;
    }

    detail_t d = {{0}};
    reader_t r;
    reader_init(&r, fd, size, c->scratch);
    switch (kind) {
    case FILE_KIND_SAVED_MODEL_PB:
    case FILE_KIND_MEAN_BINARYPROTO:
        if (!check_protobuf_wire(&r, &d)) {
            mismatch(err, kind, display_name, &v, &d);
            goto out;
        }
        if (kind == FILE_KIND_SAVED_MODEL_PB && v.family == FAM_TF_SAVED_MODEL)
            *detected = "tensorflow saved model (binary protobuf)";
        else
            *detected = "binary protobuf";
        break;
    case FILE_KIND_SAVED_MODEL_PBTXT: {
        char first[PBTXT_NAME_MAX + 1];
        if (!check_protobuf_text(&r, &d, first)) {
            mismatch(err, kind, display_name, &v, &d);
            goto out;
        }
        /* A SavedModel's text starts with one of its two fields. */
        if (strcmp(first, "saved_model_schema_version") == 0 || strcmp(first, "meta_graphs") == 0)
            *detected = "tensorflow saved model (protobuf text)";
        else
            *detected = "protobuf text";
        break;
    }
    case FILE_KIND_VARIABLES_INDEX:
        if (!check_table_footer(fd, size, &d)) {
            mismatch(err, kind, display_name, &v, &d);
            goto out;
        }
        *detected = "tensorflow tensor bundle index";
        break;
    case FILE_KIND_VARIABLES_DATA:
        *detected = "tensorflow tensor bundle data (raw bytes)";
        break;
    case FILE_KIND_MEAN_NPY: {
        unsigned major = 0, minor = 0;
        if (!check_npy(fd, size, c->scratch, &major, &minor, &d)) {
            mismatch(err, kind, display_name, &v, &d);
            goto out;
        }
        *detected = arena_printf(arena, "numpy array file (format %u.%u)", major, minor);
        if (!*detected) {
            nn_error_oom(err);
            goto out;
        }
        break;
    }
    }
    ok = true;
out:
    close(fd);
    return ok;
}
