/* bundle.c - TensorFlow tensor-bundle index reader and shard checker: see
 * bundle.h.
 *
 * The index is a LevelDB-format table (TensorFlow's fork of it, byte for
 * byte the same format):
 *
 *   [data block 0][trailer] ... [data block n][trailer]
 *   [metaindex block][trailer] [index block][trailer] [footer]
 *
 *   footer (48 bytes): metaindex handle, index handle (each two varint64:
 *       offset, size), zero padding up to 40 bytes, magic 0xdb4775248b80fb57
 *       as a little-endian fixed64.
 *   trailer (5 bytes): compression type (0 none, 1 Snappy), then the masked
 *       CRC-32C of the stored block contents and the type byte (fixed32 LE).
 *   block: entries, then the restart array (fixed32 LE offsets of entries
 *       whose key is stored whole), then the number of restarts (fixed32).
 *   entry: varint32 shared, varint32 non_shared, varint32 value_length,
 *       key bytes [shared..shared+non_shared), value bytes.
 *   index block: one entry per data block, key >= every key of that block
 *       and < every key of the next, value = the block's handle.
 *
 * The table's first key is "" (BundleHeaderProto); every other key is a
 * tensor name with a BundleEntryProto value.  Protos are read with pbwire. */
#include "model/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>

#include "model/pbwire.h"
#include "util/crc32c.h"
#include "util/log.h"

#define FOOTER_BYTES 48
#define FOOTER_HANDLES_BYTES 40
#define TRAILER_BYTES 5
#define TABLE_MAGIC 0xdb4775248b80fb57ull
#define ERR_CODE "invalid_variables"
#define NAME_SHOW 160 /* room for a variable name in a message */

#define FIX_INDEX "the file is damaged; upload it again"

/* ---- DataType sizes ------------------------------------------------------ */

/* Bytes per element of TensorFlow's fixed-size types, by enum value; 0 for
 * invalid, string (7), resource (20), variant (21). */
static const unsigned char dtype_sizes[] = {
    0, 4, 8, 4,  1,
    2, 1, 0, 8,  8, /* invalid float double int32 uint8 int16 int8 string complex64 int64 */
    1, 1, 1, 4,  2,
    2, 2, 2, 16, 2, /* bool qint8 quint8 qint32 bfloat16 qint16 quint16 uint16 complex128 half */
    0, 0, 4, 8,  1,
    1, 1, 1, 1,  1, /* resource variant uint32 uint64 float8 x5 int4 */
    1,              /* uint4 */
};

static const char *const dtype_names[] = {
    "invalid",
    "float",
    "double",
    "int32",
    "uint8",
    "int16",
    "int8",
    "string",
    "complex64",
    "int64",
    "bool",
    "qint8",
    "quint8",
    "qint32",
    "bfloat16",
    "qint16",
    "quint16",
    "uint16",
    "complex128",
    "half",
    "resource",
    "variant",
    "uint32",
    "uint64",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2fnuz",
    "int4",
    "uint4",
};

size_t bundle_dtype_size(int dtype)
{
    if (dtype < 0 || (size_t)dtype >= sizeof(dtype_sizes))
        return 0;
    return dtype_sizes[dtype];
}

static const char *dtype_name(int dtype)
{
    if (dtype < 0 || (size_t)dtype >= sizeof(dtype_names) / sizeof(dtype_names[0]))
        return "unknown";
    return dtype_names[dtype];
}

/* ---- small helpers ------------------------------------------------------- */

const char *bundle_display_name(const char *name, size_t name_len, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (out_size < 8) {
        if (out_size)
            out[0] = '\0';
        return out;
    }
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';
        size_t need = plain ? 1 : (c == '\\' || c == '"') ? 2 : 4;
        /* Keep room for "..." and the NUL. */
        if (o + need + 4 > out_size) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            out[o++] = (char)c;
        } else if (c == '\\' || c == '"') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

/* A varint of at most 32 bits, as LevelDB block entries use. */
static bool decode_varint32(const unsigned char **p, const unsigned char *end, uint32_t *out)
{
    uint64_t v;
    const unsigned char *start = *p;
    if (!pb_decode_varint(p, end, &v) || v > UINT32_MAX || *p - start > 5) {
        *p = start;
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Bytewise comparison, as LevelDB's default comparator. */
static int key_compare(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- the table parser ---------------------------------------------------- */

typedef struct parser {
    arena_t *arena;
    const unsigned char *file;
    size_t blocks_end; /* blocks lie in [0, blocks_end): the footer follows */
    const char *name;  /* display name of the index */
    nn_error_t *err;
    bundle_index_t *out;
    size_t cap;              /* allocated entries */
    uint64_t uncompressed;   /* bytes decompressed so far */
    unsigned char *prev_key; /* last key seen in the data blocks */
    size_t prev_len;
    bool have_prev;
    bool seen_header;
} parser_t;

static bool fail(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(parser_t *p, const char *fmt, ...)
{
    char msg[NN_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nn_error_set(p->err, 400, ERR_CODE, "%s %s", p->name, msg);
}

typedef struct block {
    const unsigned char *data; /* contents, uncompressed */
    size_t len;
    unsigned char *owned; /* malloc'd when decompressed */
    uint64_t offset;      /* where the block is in the file */
    const char *what;     /* "data", "index", "metaindex" */
} block_t;

static void block_release(block_t *b)
{
    free(b->owned);
    b->owned = NULL;
    b->data = NULL;
    b->len = 0;
}

/* Reads the block at handle (off, size): bounds, trailer checksum, and
 * decompression.  On success the caller releases *b. */
static bool read_block(parser_t *p, uint64_t off, uint64_t size, const char *what, block_t *b)
{
    memset(b, 0, sizeof(*b));
    b->offset = off;
    b->what = what;
    if (off > p->blocks_end || size > p->blocks_end - off ||
        TRAILER_BYTES > p->blocks_end - off - size)
        return fail(p,
                    "%s block handle (offset %" PRIu64 ", %" PRIu64
                    " bytes) points outside the table's %zu bytes of blocks: "
                    "the file is damaged or truncated; upload it again",
                    what, off, size, p->blocks_end);
    const unsigned char *raw = p->file + off;
    size_t n = (size_t)size;
    unsigned type = raw[n];
    uint32_t stored = load_le32(raw + n + 1);
    uint32_t actual = crc32c_value(raw, n + 1);
    if (crc32c_unmask(stored) != actual)
        return fail(p, "%s block at offset %" PRIu64 " fails its checksum: " FIX_INDEX, what, off);
    if (type == 0) {
        if (n > BUNDLE_MAX_BLOCK_BYTES)
            return fail(p,
                        "%s block at offset %" PRIu64 " holds %zu bytes, more than the %u allowed",
                        what, off, n, BUNDLE_MAX_BLOCK_BYTES);
        b->data = raw;
        b->len = n;
    } else if (type == BUNDLE_BLOCK_SNAPPY) {
        size_t ulen = 0;
        if (snappy_uncompressed_length((const char *)raw, n, &ulen) != SNAPPY_OK)
            return fail(p,
                        "%s block at offset %" PRIu64
                        " says it is Snappy-compressed but is not valid Snappy data: " FIX_INDEX,
                        what, off);
        if (ulen > BUNDLE_MAX_BLOCK_BYTES)
            return fail(p,
                        "%s block at offset %" PRIu64
                        " would decompress to %zu bytes, more than the %u allowed",
                        what, off, ulen, BUNDLE_MAX_BLOCK_BYTES);
        if (ulen > BUNDLE_MAX_UNCOMPRESSED_BYTES - p->uncompressed)
            return fail(p, "blocks decompress to more than the %u bytes allowed",
                        BUNDLE_MAX_UNCOMPRESSED_BYTES);
        p->uncompressed += ulen;
        b->owned = malloc(ulen ? ulen : 1);
        if (!b->owned)
            return nn_error_oom(p->err);
        size_t got = ulen;
        if (snappy_uncompress((const char *)raw, n, (char *)b->owned, &got) != SNAPPY_OK ||
            got != ulen) {
            block_release(b);
            return fail(p,
                        "%s block at offset %" PRIu64
                        " says it is Snappy-compressed but does not decompress: " FIX_INDEX,
                        what, off);
        }
        b->data = b->owned;
        b->len = ulen;
        p->out->snappy_blocks++;
    } else {
        return fail(
            p,
            "%s block at offset %" PRIu64
            " has compression type %u; a table block is either 0 (none) or 1 (Snappy): " FIX_INDEX,
            what, off, type);
    }
    return true;
}

/* Walks the entries of a block, checking the restart array on the way. */
typedef struct block_iter {
    parser_t *p;
    const block_t *b;
    size_t limit; /* entries end where the restart array starts */
    const unsigned char *restarts;
    uint32_t nrestarts;
    uint32_t next_restart; /* index of the next restart point expected */
    size_t pos;
    size_t index;       /* entries read so far */
    unsigned char *key; /* BUNDLE_MAX_KEY_BYTES, owned by the caller */
    size_t key_len;
    const unsigned char *value;
    size_t value_len;
} block_iter_t;

static bool iter_fail(block_iter_t *it, const char *problem)
{
    return fail(it->p, "%s block at offset %" PRIu64 " is malformed (%s): " FIX_INDEX, it->b->what,
                it->b->offset, problem);
}

/* The same for iter_next(), which returns -1 on error. */
static int iter_error(block_iter_t *it, const char *problem)
{
    iter_fail(it, problem);
    return -1;
}

static bool iter_init(block_iter_t *it, parser_t *p, const block_t *b, unsigned char *key_buf)
{
    memset(it, 0, sizeof(*it));
    it->p = p;
    it->b = b;
    it->key = key_buf;
    if (b->len < 4)
        return iter_fail(it, "shorter than its restart count");
    it->nrestarts = load_le32(b->data + b->len - 4);
    size_t max_restarts = (b->len - 4) / 4;
    if (it->nrestarts == 0)
        return iter_fail(it, "no restart points");
    if (it->nrestarts > max_restarts)
        return iter_fail(it, "restart count larger than the block");
    it->limit = b->len - 4 - (size_t)it->nrestarts * 4;
    it->restarts = b->data + it->limit;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < it->nrestarts; i++) {
        uint32_t r = load_le32(it->restarts + (size_t)i * 4);
        if (i == 0 && r != 0)
            return iter_fail(it, "first restart point is not at the first entry");
        if (i > 0 && r <= prev)
            return iter_fail(it, "restart points are not in ascending order");
        if (r >= it->limit && !(it->limit == 0 && r == 0))
            return iter_fail(it, "restart point past the entries");
        prev = r;
    }
    return true;
}

/* Next entry: 1 (key/value set), 0 at the end, -1 on error. */
static int iter_next(block_iter_t *it)
{
    if (it->pos == it->limit) {
        /* Every restart point must have been met at an entry (an empty
         * block has its single restart at 0). */
        if (it->next_restart != it->nrestarts && !(it->limit == 0 && it->nrestarts == 1))
            return iter_error(it, "restart point inside an entry");
        return 0;
    }
    const unsigned char *start = it->b->data + it->pos;
    const unsigned char *q = start;
    const unsigned char *end = it->b->data + it->limit;
    uint32_t shared, non_shared, value_len;
    if (!decode_varint32(&q, end, &shared) || !decode_varint32(&q, end, &non_shared) ||
        !decode_varint32(&q, end, &value_len))
        return iter_error(it, "bad entry header");
    bool at_restart = it->next_restart < it->nrestarts &&
                      load_le32(it->restarts + (size_t)it->next_restart * 4) == it->pos;
    if (it->next_restart < it->nrestarts && !at_restart &&
        load_le32(it->restarts + (size_t)it->next_restart * 4) < it->pos)
        return iter_error(it, "restart point inside an entry");
    if (at_restart) {
        if (shared != 0)
            return iter_error(it, "entry at a restart point shares a key prefix");
        it->next_restart++;
    }
    if (shared > it->key_len)
        return iter_error(it, "entry shares more key bytes than the previous key has");
    size_t left = (size_t)(end - q);
    if (non_shared > left || value_len > left - non_shared)
        return iter_error(it, "entry longer than the block");
    if ((size_t)shared + non_shared > BUNDLE_MAX_KEY_BYTES) {
        fail(it->p,
             "%s block at offset %" PRIu64 " has a key of %zu bytes, more than the %u allowed",
             it->b->what, it->b->offset, (size_t)shared + non_shared, BUNDLE_MAX_KEY_BYTES);
        return -1;
    }
    memcpy(it->key + shared, q, non_shared);
    it->key_len = (size_t)shared + non_shared;
    q += non_shared;
    it->value = q;
    it->value_len = value_len;
    q += value_len;
    it->pos = (size_t)(q - it->b->data);
    it->index++;
    return 1;
}

/* ---- header and entry protos -------------------------------------------- */

static bool proto_fail(parser_t *p, const char *key_desc, const pb_error_t *pe)
{
    return fail(p, "%s is not a valid protobuf (%s at byte %zu of the value): " FIX_INDEX, key_desc,
                pe->message, pe->offset);
}

static bool wire_is(pb_reader_t *r, const pb_field_t *f, pb_wire_type_t want)
{
    if (f->wire_type == want)
        return true;
    return pb_fail(r, f->offset, "field %u is a %s, expected a %s", f->number,
                   pb_wire_type_name(f->wire_type), pb_wire_type_name(want));
}

static bool parse_header(parser_t *p, const unsigned char *v, size_t len)
{
    pb_error_t pe;
    pb_reader_t r;
    pb_field_t f;
    pb_status_t st;
    int64_t num_shards = 0;
    int64_t endianness = 0;
    int32_t producer = 0, min_consumer = 0;
    bool bad_consumer = false;
    pb_reader_init(&r, v, len, &pe);
    while ((st = pb_next(&r, &f)) == PB_FIELD) {
        if (f.number == 1) {
            if (!wire_is(&r, &f, PB_WIRE_VARINT))
                break;
            num_shards = pb_int32(&f);
        } else if (f.number == 2) {
            if (!wire_is(&r, &f, PB_WIRE_VARINT))
                break;
            endianness = pb_int32(&f);
        } else if (f.number == 3) {
            pb_reader_t vr;
            pb_field_t vf;
            pb_status_t vst;
            if (!pb_sub(&r, &f, &vr))
                break;
            while ((vst = pb_next(&vr, &vf)) == PB_FIELD) {
                if (vf.number == 1 && wire_is(&vr, &vf, PB_WIRE_VARINT)) {
                    producer = pb_int32(&vf);
                } else if (vf.number == 2 && wire_is(&vr, &vf, PB_WIRE_VARINT)) {
                    min_consumer = pb_int32(&vf);
                } else if (vf.number == 3) {
                    if (vf.wire_type == PB_WIRE_VARINT) {
                        bad_consumer |= pb_int32(&vf) == 1;
                    } else if (vf.wire_type == PB_WIRE_LEN) { /* packed */
                        const unsigned char *q = vf.data, *e = vf.data + vf.len;
                        while (q < e) {
                            uint64_t x;
                            if (!pb_decode_varint(&q, e, &x)) {
                                pb_fail(&vr, vf.data_offset, "bad packed varint");
                                break;
                            }
                            bad_consumer |= (int32_t)(uint32_t)x == 1;
                        }
                    } else {
                        wire_is(&vr, &vf, PB_WIRE_VARINT);
                    }
                }
                if (pe.set)
                    break;
            }
        }
        if (pe.set)
            break;
    }
    if (pe.set || st == PB_ERROR)
        return proto_fail(p, "the header entry (BundleHeaderProto)", &pe);
    if (num_shards < 1 || num_shards > BUNDLE_MAX_SHARDS)
        return fail(
            p, "header says the checkpoint has %" PRId64 " shards; it must be 1 to %u: " FIX_INDEX,
            num_shards, BUNDLE_MAX_SHARDS);
    if (endianness != 0 && endianness != 1)
        return fail(p, "header has an unknown endianness (%" PRId64 "): " FIX_INDEX, endianness);
    if (min_consumer > 1 || bad_consumer)
        return fail(p,
                    "is in a tensor-bundle format version this reader does not know "
                    "(producer %d, min_consumer %d): save the checkpoint with a TensorFlow "
                    "release that writes format version 1 (TensorFlow 1.x and 2.x do)",
                    producer, min_consumer);
    p->out->num_shards = (uint32_t)num_shards;
    p->out->big_endian = endianness == 1;
    p->out->version_producer = producer;
    p->out->version_min_consumer = min_consumer;
    return true;
}

/* Walks the dims of every "shape" field of an entry: counts them, or (when
 * dims is not NULL) stores them.  Returns false on a wire error (in pe) or a
 * bad shape (problem set). */
static bool walk_shape(pb_reader_t *entry, int64_t *dims, size_t *ndims, bool *unknown_rank,
                       const char **problem)
{
    pb_field_t f;
    pb_status_t st;
    size_t n = 0;
    while ((st = pb_next(entry, &f)) == PB_FIELD) {
        if (f.number != 2)
            continue;
        pb_reader_t sr;
        pb_field_t sf;
        pb_status_t sst;
        if (!pb_sub(entry, &f, &sr))
            return false;
        while ((sst = pb_next(&sr, &sf)) == PB_FIELD) {
            if (sf.number == 3) {
                if (!wire_is(&sr, &sf, PB_WIRE_VARINT))
                    return false;
                *unknown_rank = sf.value != 0;
            } else if (sf.number == 2) {
                pb_reader_t dr;
                pb_field_t df;
                pb_status_t dst;
                int64_t size = 0;
                if (!pb_sub(&sr, &sf, &dr))
                    return false;
                while ((dst = pb_next(&dr, &df)) == PB_FIELD) {
                    if (df.number == 1) {
                        if (!wire_is(&dr, &df, PB_WIRE_VARINT))
                            return false;
                        size = pb_int64(&df);
                    }
                }
                if (dst == PB_ERROR)
                    return false;
                if (size < 0) {
                    *problem = "a dimension of unknown (negative) size";
                    return false;
                }
                if (n == BUNDLE_MAX_DIMS) {
                    *problem = "more dimensions than the 254 TensorFlow allows";
                    return false;
                }
                if (dims)
                    dims[n] = size;
                n++;
            }
        }
        if (sst == PB_ERROR)
            return false;
    }
    if (st == PB_ERROR)
        return false;
    *ndims = n;
    return true;
}

static bool add_entry(parser_t *p, const unsigned char *key, size_t key_len, const unsigned char *v,
                      size_t len)
{
    char shown[NAME_SHOW];
    char desc[NAME_SHOW + 32];
    bundle_display_name((const char *)key, key_len, shown, sizeof(shown));
    snprintf(desc, sizeof(desc), "entry \"%s\"", shown);

    if (p->out->nentries == BUNDLE_MAX_ENTRIES)
        return fail(p, "has more than %u entries", BUNDLE_MAX_ENTRIES);
    if (p->out->nentries == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        if (ncap > BUNDLE_MAX_ENTRIES)
            ncap = BUNDLE_MAX_ENTRIES;
        bundle_entry_t *grown =
            arena_realloc(p->arena, p->out->entries, p->cap * sizeof(bundle_entry_t),
                          ncap * sizeof(bundle_entry_t));
        if (!grown)
            return nn_error_oom(p->err);
        p->out->entries = grown;
        p->cap = ncap;
    }
    bundle_entry_t *e = &p->out->entries[p->out->nentries];
    memset(e, 0, sizeof(*e));

    pb_error_t pe;
    pb_reader_t r;
    pb_field_t f;
    pb_status_t st;
    int64_t dtype = 0, shard = 0, offset = 0, size = 0;
    pb_reader_init(&r, v, len, &pe);
    while ((st = pb_next(&r, &f)) == PB_FIELD) {
        switch (f.number) {
        case 1:
            if (wire_is(&r, &f, PB_WIRE_VARINT))
                dtype = pb_int32(&f);
            break;
        case 2:
            (void)wire_is(&r, &f, PB_WIRE_LEN);
            break;
        case 3:
            if (wire_is(&r, &f, PB_WIRE_VARINT))
                shard = pb_int32(&f);
            break;
        case 4:
            if (wire_is(&r, &f, PB_WIRE_VARINT))
                offset = pb_int64(&f);
            break;
        case 5:
            if (wire_is(&r, &f, PB_WIRE_VARINT))
                size = pb_int64(&f);
            break;
        case 6:
            if (wire_is(&r, &f, PB_WIRE_FIXED32))
                e->crc32c = (uint32_t)f.value;
            break;
        case 7:
            if (wire_is(&r, &f, PB_WIRE_LEN))
                e->nslices++;
            break;
        default:
            break;
        }
        if (pe.set)
            break;
    }
    if (pe.set || st == PB_ERROR)
        return proto_fail(p, desc, &pe);

    /* The shape: count the dims, then store them. */
    const char *problem = NULL;
    bool unknown_rank = false;
    size_t ndims = 0;
    pb_reader_init(&r, v, len, &pe);
    if (!walk_shape(&r, NULL, &ndims, &unknown_rank, &problem)) {
        if (problem)
            return fail(p, "%s has a shape with %s: " FIX_INDEX, desc, problem);
        return proto_fail(p, desc, &pe);
    }
    if (unknown_rank)
        return fail(p,
                    "%s has a shape of unknown rank; a checkpoint stores only fully defined "
                    "shapes: " FIX_INDEX,
                    desc);
    int64_t *dims = NULL;
    if (ndims > 0) {
        dims = arena_alloc(p->arena, ndims * sizeof(int64_t));
        if (!dims)
            return nn_error_oom(p->err);
        pb_reader_init(&r, v, len, &pe);
        if (!walk_shape(&r, dims, &ndims, &unknown_rank, &problem))
            return proto_fail(p, desc, &pe); /* cannot differ from the first walk */
    }
    uint64_t count = 1;
    for (size_t i = 0; i < ndims; i++)
        if (__builtin_mul_overflow(count, (uint64_t)dims[i], &count))
            return fail(p, "%s has a shape whose element count overflows 64 bits: " FIX_INDEX,
                        desc);

    if (dtype <= 0 || dtype >= 100)
        return fail(p, "%s has data type %" PRId64 ", which no stored tensor can have: " FIX_INDEX,
                    desc, dtype);
    if (offset < 0 || size < 0)
        return fail(p, "%s has a negative offset or size: " FIX_INDEX, desc);
    if (shard < 0 || (uint64_t)shard >= p->out->num_shards)
        return fail(p,
                    "%s is in shard %" PRId64
                    " but the header says the checkpoint has %u shard%s: " FIX_INDEX,
                    desc, shard, p->out->num_shards, p->out->num_shards == 1 ? "" : "s");
    size_t elem = bundle_dtype_size((int)dtype);
    if (e->nslices == 0) {
        uint64_t want;
        if (elem > 0) {
            if (__builtin_mul_overflow(count, (uint64_t)elem, &want))
                return fail(p, "%s has a shape too large for any file: " FIX_INDEX, desc);
            if (want != (uint64_t)size)
                return fail(p,
                            "%s says its data takes %" PRId64 " bytes, but a %s tensor of %" PRIu64
                            " elements takes %" PRIu64 ": " FIX_INDEX,
                            desc, size, dtype_name((int)dtype), count, want);
        } else if (dtype == BUNDLE_DT_STRING && size > 0 && (uint64_t)size < count) {
            return fail(p,
                        "%s says its data takes %" PRId64 " bytes, too few for %" PRIu64
                        " strings: " FIX_INDEX,
                        desc, size, count);
        }
    }

    char *name = arena_alloc(p->arena, key_len + 1);
    if (!name)
        return nn_error_oom(p->err);
    if (key_len)
        memcpy(name, key, key_len);
    name[key_len] = '\0';
    e->name = name;
    e->name_len = key_len;
    e->dtype = (int)dtype;
    e->dims = dims;
    e->ndims = ndims;
    e->num_elements = count;
    e->shard_id = (uint32_t)shard;
    e->offset = (uint64_t)offset;
    e->size = (uint64_t)size;
    e->slice_part = key_len > 0 && key[0] == '\0';
    p->out->nentries++;
    return true;
}

/* One key/value of a data block, in table order. */
static bool table_entry(parser_t *p, const unsigned char *key, size_t key_len,
                        const unsigned char *v, size_t len)
{
    if (p->have_prev) {
        int c = key_compare(p->prev_key, p->prev_len, key, key_len);
        if (c >= 0) {
            char shown[NAME_SHOW];
            bundle_display_name((const char *)key, key_len, shown, sizeof(shown));
            return fail(p,
                        c == 0 ? "has the key \"%s\" twice: " FIX_INDEX
                               : "keys are out of order at \"%s\": " FIX_INDEX,
                        shown);
        }
    }
    memcpy(p->prev_key, key, key_len);
    p->prev_len = key_len;
    p->have_prev = true;
    if (!p->seen_header) {
        if (key_len != 0) {
            char shown[NAME_SHOW];
            bundle_display_name((const char *)key, key_len, shown, sizeof(shown));
            return fail(p,
                        "has no header entry (its first key is \"%s\", not \"\"): it is not a "
                        "TensorFlow variables index; upload the variables.index that "
                        "TensorFlow saved with the model",
                        shown);
        }
        p->seen_header = true;
        return parse_header(p, v, len);
    }
    return add_entry(p, key, key_len, v, len);
}

static bool decode_handle(const unsigned char *v, size_t len, uint64_t *off, uint64_t *size)
{
    const unsigned char *q = v, *end = v + len;
    return pb_decode_varint(&q, end, off) && pb_decode_varint(&q, end, size) && q == end;
}

/* Reads every data block listed in the index block.  Key buffers: ikey for
 * the index block's iterator, dkey for the data blocks', sep for a copy of
 * the previous index key. */
static bool read_data_blocks(parser_t *p, const block_t *index, unsigned char *ikey,
                             unsigned char *dkey, unsigned char *sep)
{
    block_iter_t it;
    if (!iter_init(&it, p, index, ikey))
        return false;
    uint64_t prev_end = 0;
    size_t sep_len = 0;
    bool have_sep = false;
    int rc;
    while ((rc = iter_next(&it)) == 1) {
        uint64_t off, size;
        if (!decode_handle(it.value, it.value_len, &off, &size))
            return fail(p,
                        "index block at offset %" PRIu64
                        " has a malformed block handle in entry %zu: " FIX_INDEX,
                        index->offset, it.index);
        if (have_sep && key_compare(sep, sep_len, it.key, it.key_len) >= 0)
            return fail(p, "index block at offset %" PRIu64 " has keys out of order: " FIX_INDEX,
                        index->offset);
        if (off < prev_end)
            return fail(p,
                        "data blocks overlap or are out of order at offset %" PRIu64 ": " FIX_INDEX,
                        off);
        block_t b;
        if (!read_block(p, off, size, "data", &b))
            return false;
        prev_end = off + size + TRAILER_BYTES;
        p->out->data_blocks++;
        block_iter_t dit;
        bool ok = iter_init(&dit, p, &b, dkey);
        int drc = 0;
        bool first = true;
        while (ok && (drc = iter_next(&dit)) == 1) {
            /* Every key of a block sorts after the previous block's index
             * key and at or before its own. */
            if (!table_entry(p, dit.key, dit.key_len, dit.value, dit.value_len))
                ok = false;
            else if (first && have_sep && key_compare(dit.key, dit.key_len, sep, sep_len) <= 0)
                ok =
                    fail(p,
                         "index block does not match the data block at offset %" PRIu64
                         " (its first key sorts before the previous block's index key): " FIX_INDEX,
                         off);
            else if (key_compare(dit.key, dit.key_len, it.key, it.key_len) > 0)
                ok = fail(p,
                          "index block does not match the data block at offset %" PRIu64
                          " (a key sorts after the block's index key): " FIX_INDEX,
                          off);
            first = false;
        }
        if (ok && drc < 0)
            ok = false;
        block_release(&b);
        if (!ok)
            return false;
        memcpy(sep, it.key, it.key_len);
        sep_len = it.key_len;
        have_sep = true;
    }
    return rc == 0;
}

/* Reads the metaindex block only to check it (TensorFlow writes it empty). */
static bool check_metaindex(parser_t *p, uint64_t off, uint64_t size, unsigned char *key_buf)
{
    block_t b;
    if (!read_block(p, off, size, "metaindex", &b))
        return false;
    block_iter_t it;
    bool ok = iter_init(&it, p, &b, key_buf);
    int rc = 0;
    while (ok && (rc = iter_next(&it)) == 1)
        ;
    block_release(&b);
    return ok && rc == 0;
}

bool bundle_parse_index(arena_t *arena, const void *data, size_t len, const char *display_name,
                        bundle_index_t *out, nn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    parser_t p = {
        .arena = arena,
        .file = data,
        .name = display_name ? display_name : "variables.index",
        .err = err,
        .out = out,
    };
    if (len < FOOTER_BYTES)
        return fail(&p,
                    "is %zu bytes long, too short for a tensor-bundle index (a table ends with a "
                    "%d-byte footer): the file is truncated; upload it again",
                    len, FOOTER_BYTES);
    if (len > BUNDLE_MAX_INDEX_BYTES)
        return fail(&p, "is %zu bytes long, more than the %u bytes an index may have", len,
                    BUNDLE_MAX_INDEX_BYTES);
    const unsigned char *footer = p.file + len - FOOTER_BYTES;
    if (load_le64(footer + FOOTER_HANDLES_BYTES) != TABLE_MAGIC)
        return fail(&p, "does not end with the table magic number: it is truncated, or not the "
                        "variables.index TensorFlow saved; upload it again");
    p.blocks_end = len - FOOTER_BYTES;
    uint64_t meta_off, meta_size, index_off, index_size;
    const unsigned char *q = footer, *fend = footer + FOOTER_HANDLES_BYTES;
    if (!pb_decode_varint(&q, fend, &meta_off) || !pb_decode_varint(&q, fend, &meta_size) ||
        !pb_decode_varint(&q, fend, &index_off) || !pb_decode_varint(&q, fend, &index_size))
        return fail(&p, "has a malformed footer: " FIX_INDEX);

    /* Key buffers: index block, data blocks, previous index key, previous
     * data key. */
    const size_t kb = BUNDLE_MAX_KEY_BYTES;
    unsigned char *keys = malloc(4 * kb);
    if (!keys)
        return nn_error_oom(err);
    p.prev_key = keys + 3 * kb;

    bool ok = check_metaindex(&p, meta_off, meta_size, keys);
    block_t index;
    if (ok && read_block(&p, index_off, index_size, "index", &index)) {
        ok = read_data_blocks(&p, &index, keys, keys + kb, keys + 2 * kb);
        block_release(&index);
    } else {
        ok = false;
    }
    free(keys);
    if (!ok)
        return false;
    if (!p.seen_header)
        return fail(&p, "has no entries, not even the header: upload the variables.index that "
                        "TensorFlow saved with the model");
    return true;
}

/* ---- files --------------------------------------------------------------- */

static bool io_fail(nn_error_t *err, const char *what, const char *path, const char *display)
{
    int e = errno;
    log_error("%s %s: %s", what, path, strerror(e));
    return nn_error_set(err, 500, "internal_error", "internal error: cannot %s %s: %s", what,
                        display, strerror(e));
}

/* Reads exactly len bytes at off; false with errno set (EIO when the file
 * ended early). */
static bool pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *b = buf;
    while (len > 0) {
        ssize_t n = pread(fd, b, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (n == 0) {
            errno = EIO;
            return false;
        }
        b += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

bool bundle_read_index(arena_t *arena, const char *path, const char *display_name,
                       bundle_index_t *out, nn_error_t *err)
{
    const char *display = display_name ? display_name : "variables.index";
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "open", path, display);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        io_fail(err, "stat", path, display);
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return io_fail(err, "read (not a regular file)", path, display);
    }
    if ((uint64_t)st.st_size > BUNDLE_MAX_INDEX_BYTES) {
        close(fd);
        return nn_error_set(err, 400, ERR_CODE,
                            "%s is %" PRIu64
                            " bytes long, more than the %u bytes an index may have",
                            display, (uint64_t)st.st_size, BUNDLE_MAX_INDEX_BYTES);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return nn_error_oom(err);
    }
    if (!pread_full(fd, buf, len, 0)) {
        io_fail(err, "read", path, display);
        free(buf);
        close(fd);
        return false;
    }
    close(fd);
    bool ok = bundle_parse_index(arena, buf, len, display, out, err);
    free(buf);
    return ok;
}

const bundle_entry_t *bundle_find(const bundle_index_t *index, const char *name)
{
    size_t len = strlen(name);
    size_t lo = 0, hi = index->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const bundle_entry_t *e = &index->entries[mid];
        int c = key_compare((const unsigned char *)e->name, e->name_len,
                            (const unsigned char *)name, len);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- tensor checksums, fed in chunks ------------------------------------- */

typedef enum { TC_RAW, TC_STRING, TC_VARIANT } tc_mode_t;
typedef enum { PH_LENGTHS, PH_LENCRC, PH_BYTES, PH_VLEN, PH_VBYTES, PH_VCRC, PH_DONE } tc_phase_t;

/* Computes an entry's CRC-32C the way TensorFlow's BundleReader does:
 * - fixed-size types: the CRC of the bytes;
 * - strings: [varint len]*n [masked CRC of the lengths] [bytes]*n; the CRC
 *   covers each length as a 4-byte integer (8 bytes if it does not fit in
 *   32 bits) in the writer's byte order, then the 4 checksum bytes, then
 *   the string bytes; the lengths checksum itself is verified too;
 * - variants: ([varint len] [bytes] [masked running CRC])*n; the CRC covers
 *   each length as an 8-byte integer, the bytes, and the 4 checksum bytes;
 *   each element's checksum is verified. */
typedef struct tensor_crc {
    tc_mode_t mode;
    tc_phase_t phase;
    bool big_endian;
    uint32_t crc;
    uint64_t elements_left;
    uint64_t element; /* current element, for messages */
    uint64_t varint;
    unsigned varint_bytes;
    unsigned char crc_bytes[4];
    unsigned crc_len;
    uint64_t bytes_left; /* string bytes (all elements) or one variant's */
    const char *problem; /* set when the data is malformed */
} tensor_crc_t;

static void tc_init(tensor_crc_t *t, int dtype, uint64_t num_elements, bool big_endian)
{
    memset(t, 0, sizeof(*t));
    t->big_endian = big_endian;
    t->elements_left = num_elements;
    if (dtype == BUNDLE_DT_STRING) {
        t->mode = TC_STRING;
        t->phase = num_elements ? PH_LENGTHS : PH_LENCRC;
    } else if (dtype == BUNDLE_DT_VARIANT) {
        t->mode = TC_VARIANT;
        t->phase = num_elements ? PH_VLEN : PH_DONE;
    } else {
        t->mode = TC_RAW;
    }
}

static void tc_hash_int(tensor_crc_t *t, uint64_t v, unsigned width)
{
    unsigned char b[8];
    for (unsigned i = 0; i < width; i++) {
        unsigned shift = t->big_endian ? 8 * (width - 1 - i) : 8 * i;
        b[i] = (unsigned char)(v >> shift);
    }
    t->crc = crc32c_extend(t->crc, b, width);
}

/* Feeds one byte of a varint; true when the varint is complete. */
static bool tc_varint_byte(tensor_crc_t *t, unsigned char c)
{
    if (t->varint_bytes == 9 && c > 1) {
        t->problem = "a length is not a valid varint";
        return false;
    }
    t->varint |= (uint64_t)(c & 0x7f) << (7 * t->varint_bytes);
    t->varint_bytes++;
    return !(c & 0x80);
}

static bool tc_feed(tensor_crc_t *t, const unsigned char *p, size_t n)
{
    if (t->mode == TC_RAW) {
        t->crc = crc32c_extend(t->crc, p, n);
        return true;
    }
    while (n > 0) {
        switch (t->phase) {
        case PH_LENGTHS:
        case PH_VLEN: {
            unsigned char c = *p++;
            n--;
            bool done = tc_varint_byte(t, c);
            if (t->problem)
                return false;
            if (!done)
                break;
            uint64_t v = t->varint;
            t->varint = 0;
            t->varint_bytes = 0;
            if (t->phase == PH_LENGTHS) {
                tc_hash_int(t, v, v <= UINT32_MAX ? 4 : 8);
                if (__builtin_add_overflow(t->bytes_left, v, &t->bytes_left)) {
                    t->problem = "its string lengths add up to more than 2^64 bytes";
                    return false;
                }
                if (--t->elements_left == 0)
                    t->phase = PH_LENCRC;
            } else {
                tc_hash_int(t, v, 8); /* written as the host's uint64 */
                t->bytes_left = v;
                t->phase = v ? PH_VBYTES : PH_VCRC;
            }
            break;
        }
        case PH_LENCRC:
        case PH_VCRC: {
            t->crc_bytes[t->crc_len++] = *p++;
            n--;
            if (t->crc_len < 4)
                break;
            t->crc_len = 0;
            uint32_t stored = t->big_endian && t->phase == PH_LENCRC
                                  ? (uint32_t)t->crc_bytes[0] << 24 |
                                        (uint32_t)t->crc_bytes[1] << 16 |
                                        (uint32_t)t->crc_bytes[2] << 8 | t->crc_bytes[3]
                                  : load_le32(t->crc_bytes);
            if (crc32c_unmask(stored) != t->crc) {
                t->problem = t->phase == PH_LENCRC
                                 ? "the checksum of its string lengths does not match"
                                 : "the checksum of one of its elements does not match";
                return false;
            }
            t->crc = crc32c_extend(t->crc, t->crc_bytes, 4);
            if (t->phase == PH_LENCRC) {
                t->phase = t->bytes_left ? PH_BYTES : PH_DONE;
            } else {
                t->element++;
                t->phase = --t->elements_left ? PH_VLEN : PH_DONE;
            }
            break;
        }
        case PH_BYTES:
        case PH_VBYTES: {
            size_t take = n < t->bytes_left ? n : (size_t)t->bytes_left;
            t->crc = crc32c_extend(t->crc, p, take);
            p += take;
            n -= take;
            t->bytes_left -= take;
            if (t->bytes_left == 0)
                t->phase = t->phase == PH_BYTES ? PH_DONE : PH_VCRC;
            break;
        }
        case PH_DONE:
            t->problem = t->mode == TC_STRING ? "its entry's size is larger than its strings need"
                                              : "its entry's size is larger than its elements need";
            return false;
        }
    }
    return true;
}

static bool tc_finish(tensor_crc_t *t)
{
    if (t->mode == TC_RAW || t->phase == PH_DONE)
        return true;
    t->problem = t->mode == TC_STRING ? "its entry's size is smaller than its strings need"
                                      : "its entry's size is smaller than its elements need";
    return false;
}

/* ---- shard checks -------------------------------------------------------- */

/* A window of one shard file, refilled in BUNDLE_READ_CHUNK pieces. */
typedef struct window {
    int fd;
    uint64_t file_size;
    unsigned char *buf;
    uint64_t start;
    size_t len;
} window_t;

/* Bytes of the file at pos (at most want of them) through the window. */
static bool window_get(window_t *w, uint64_t pos, uint64_t want, const unsigned char **out,
                       size_t *got)
{
    if (!(pos >= w->start && pos < w->start + w->len)) {
        uint64_t left = w->file_size - pos;
        size_t n = left < BUNDLE_READ_CHUNK ? (size_t)left : BUNDLE_READ_CHUNK;
        w->start = pos;
        w->len = 0;
        if (!pread_full(w->fd, w->buf, n, pos))
            return false;
        w->len = n;
    }
    size_t avail = (size_t)(w->start + w->len - pos);
    *out = w->buf + (pos - w->start);
    *got = want < avail ? (size_t)want : avail;
    return true;
}

static int entry_order(const void *a, const void *b)
{
    const bundle_entry_t *x = *(const bundle_entry_t *const *)a;
    const bundle_entry_t *y = *(const bundle_entry_t *const *)b;
    if (x->shard_id != y->shard_id)
        return x->shard_id < y->shard_id ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    return x < y ? -1 : x > y ? 1 : 0;
}

static const char *shard_label(const char *const *names, uint32_t shard, uint32_t nshards,
                               char *buf, size_t size)
{
    if (names && names[shard])
        return names[shard];
    snprintf(buf, size, "variables.data-%05u-of-%05u", shard, nshards);
    return buf;
}

bool bundle_check_shards(const bundle_index_t *index, const char *const *shard_paths,
                         const char *const *shard_names, size_t nshards,
                         bundle_check_stats_t *stats, nn_error_t *err)
{
    bundle_check_stats_t local = {0};
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (nshards != index->num_shards)
        return nn_error_set(err, 400, ERR_CODE,
                            "variables.index says the checkpoint has %u data shard%s but %zu "
                            "data file%s given: upload every variables.data-SSSSS-of-%05u file",
                            index->num_shards, index->num_shards == 1 ? "" : "s", nshards,
                            nshards == 1 ? " was" : "s were", index->num_shards);
    size_t n = 0;
    const bundle_entry_t **order = malloc((index->nentries ? index->nentries : 1) * sizeof(*order));
    unsigned char *buf = malloc(BUNDLE_READ_CHUNK);
    if (!order || !buf) {
        free(order);
        free(buf);
        return nn_error_oom(err);
    }
    for (size_t i = 0; i < index->nentries; i++)
        if (index->entries[i].nslices == 0)
            order[n++] = &index->entries[i];
    qsort(order, n, sizeof(*order), entry_order);

    bool ok = true;
    window_t w = {.fd = -1, .buf = buf};
    uint32_t open_shard = UINT32_MAX;
    char label_buf[64];
    const char *label = NULL;
    for (size_t i = 0; i < n && ok; i++) {
        const bundle_entry_t *e = order[i];
        char shown[NAME_SHOW];
        if (e->shard_id != open_shard) {
            if (w.fd >= 0)
                close(w.fd);
            w.fd = -1;
            open_shard = e->shard_id;
            label = shard_label(shard_names, open_shard, index->num_shards, label_buf,
                                sizeof(label_buf));
            const char *path = shard_paths[open_shard];
            if (!path) {
                ok = nn_error_internal(err, "bundle_check_shards: no path for a shard");
                break;
            }
            w.fd = open(path, O_RDONLY | O_CLOEXEC);
            if (w.fd < 0) {
                ok = io_fail(err, "open", path, label);
                break;
            }
            struct stat st;
            if (fstat(w.fd, &st) != 0) {
                ok = io_fail(err, "stat", path, label);
                break;
            }
            w.file_size = (uint64_t)st.st_size;
            w.start = 0;
            w.len = 0;
        }
        bundle_display_name(e->name, e->name_len, shown, sizeof(shown));
        if (e->offset > w.file_size || e->size > w.file_size - e->offset) {
            ok = nn_error_set(
                err, 400, ERR_CODE,
                "variable \"%s\" (offset %" PRIu64 ", %" PRIu64 " bytes) lies past the "
                "end of %s (%" PRIu64 " bytes): the data file is truncated or belongs "
                "to another checkpoint; upload variables.index and its data files "
                "again, from the same checkpoint",
                shown, e->offset, e->size, label, w.file_size);
            break;
        }
        if (e->dtype == BUNDLE_DT_VARIANT && index->big_endian && e->size > 0) {
            ok = nn_error_set(
                err, 400, ERR_CODE,
                "variable \"%s\" is a variant tensor in a big-endian checkpoint, which "
                "TensorFlow itself cannot read: save the checkpoint on a "
                "little-endian machine",
                shown);
            break;
        }
        tensor_crc_t tc;
        tc_init(&tc, e->dtype, e->num_elements, index->big_endian);
        uint64_t pos = e->offset, end = e->offset + e->size;
        /* A string or variant entry of size 0 is read as empty: CRC 0. */
        while (pos < end && ok) {
            const unsigned char *p;
            size_t got;
            if (!window_get(&w, pos, end - pos, &p, &got)) {
                ok = io_fail(err, "read", shard_paths[open_shard], label);
                break;
            }
            if (!tc_feed(&tc, p, got))
                break;
            pos += got;
        }
        if (!ok)
            break;
        if (!tc.problem && e->size > 0)
            (void)tc_finish(&tc);
        if (tc.problem) {
            ok = nn_error_set(err, 400, ERR_CODE,
                              "variable \"%s\" in %s (offset %" PRIu64 ", %" PRIu64 " bytes) is "
                              "damaged: %s; upload the data file again",
                              shown, label, e->offset, e->size, tc.problem);
            break;
        }
        if (tc.crc != crc32c_unmask(e->crc32c)) {
            ok = nn_error_set(err, 400, ERR_CODE,
                              "variable \"%s\" in %s (offset %" PRIu64 ", %" PRIu64 " bytes) fails "
                              "its CRC-32C check: the data file is damaged, or belongs to another "
                              "checkpoint; upload variables.index and its data files again",
                              shown, label, e->offset, e->size);
            break;
        }
        stats->entries_checked++;
        stats->bytes_checked += e->size;
    }
    if (w.fd >= 0)
        close(w.fd);
    free(buf);
    free(order);
    return ok;
}
