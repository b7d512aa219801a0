/* npy.c - .npy headers, Caffe .binaryproto blobs and mean shapes: see npy.h.
 *
 * The .npy header dict is parsed by a small tokenizer over exactly the
 * literals NumPy writes: strings in single or double quotes (no escapes),
 * True/False, and tuples of non-negative integers (a Python 2 "L" suffix is
 * accepted).  Nothing nests deeper than the shape tuple. */
#include "model/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/pbwire.h"
#include "util/log.h"

#define ERR_CODE "invalid_mean_file"
#define FIX_SAVE "save the mean with numpy.save() and upload that file"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static bool fail(nn_error_t *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(nn_error_t *err, const char *name, const char *fmt, ...)
{
    char msg[NN_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nn_error_set(err, 400, ERR_CODE, "mean file \"%s\" %s", name, msg);
}

const char *npy_shape_string(const int64_t *shape, size_t ndims, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (o < size) {                                                                            \
            int n_ = snprintf(buf + o, size - o, __VA_ARGS__);                                     \
            o = n_ < 0 ? size : o + (size_t)n_;                                                    \
        }                                                                                          \
    } while (0)
    PUT("(");
    for (size_t i = 0; i < ndims; i++)
        PUT("%s%" PRId64, i ? ", " : "", shape[i]);
    PUT(ndims == 1 ? ",)" : ")");
#undef PUT
    return buf;
}

/* ---- the header dict ------------------------------------------------------ */

typedef struct lexer {
    const char *p;
    const char *end;
} lexer_t;

static void skip_space(lexer_t *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static bool take(lexer_t *lx, char c)
{
    skip_space(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes; (*s, *n) point into the header. */
static bool lex_string(lexer_t *lx, const char **s, size_t *n)
{
    skip_space(lx);
    if (lx->p < lx->end && (*lx->p == 'u' || *lx->p == 'b') && lx->p + 1 < lx->end &&
        (lx->p[1] == '\'' || lx->p[1] == '"'))
        lx->p++; /* Python 2 u'...' */
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return false;
    char q = *lx->p++;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || *lx->p == '\n')
            return false;
        lx->p++;
    }
    if (lx->p >= lx->end)
        return false;
    *s = start;
    *n = (size_t)(lx->p - start);
    lx->p++;
    return true;
}

static bool lex_word(lexer_t *lx, const char *word)
{
    size_t n = strlen(word);
    skip_space(lx);
    if ((size_t)(lx->end - lx->p) < n || memcmp(lx->p, word, n) != 0)
        return false;
    const char *after = lx->p + n;
    if (after < lx->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                            (*after >= '0' && *after <= '9') || *after == '_'))
        return false;
    lx->p = after;
    return true;
}

/* A non-negative integer (Python 2 may append L). */
static bool lex_uint(lexer_t *lx, int64_t *out)
{
    skip_space(lx);
    if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9')
        return false;
    uint64_t v = 0;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        unsigned d = (unsigned)(*lx->p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        lx->p++;
    }
    if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l'))
        lx->p++;
    *out = (int64_t)v;
    return true;
}

/* Parses descr like "<f4" into info; a problem message otherwise. */
static const char *parse_descr(const char *s, size_t n, npy_info_t *info)
{
    char order = '=';
    size_t i = 0;
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '='))
        order = s[i++];
    if (i >= n)
        return "is not a NumPy type";
    char kind = s[i++];
    if (kind != 'i' && kind != 'u' && kind != 'f')
        return "is not an integer or floating-point type (a mean must be real numbers)";
    if (i >= n || n - i > 2)
        return "is not a plain numeric type";
    size_t size = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return "is not a plain numeric type";
        size = size * 10 + (size_t)(s[i] - '0');
    }
    bool ok = kind == 'f' ? size == 2 || size == 4 || size == 8
                          : size == 1 || size == 2 || size == 4 || size == 8;
    if (!ok)
        return "has an item size NumPy does not use for its kind";
    if (size == 1)
        order = '|';
    else if (order == '=' || order == '|')
        order = '<'; /* native: NumPy writes '<' on the little-endian hosts we run on */
    info->byte_order = order;
    info->kind = kind;
    info->itemsize = size;
    snprintf(info->descr, sizeof(info->descr), "%c%c%zu", order, kind, size);
    return NULL;
}

static bool parse_dict(const char *h, size_t n, const char *name, npy_info_t *info, nn_error_t *err)
{
    lexer_t lx = {h, h + n};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!take(&lx, '{'))
        return fail(err, name, "has a .npy header that is not a Python dict literal: " FIX_SAVE);
    for (;;) {
        if (take(&lx, '}'))
            break;
        const char *key;
        size_t klen;
        if (!lex_string(&lx, &key, &klen) || !take(&lx, ':'))
            return fail(err, name,
                        "has a .npy header dict that cannot be parsed (at byte %zu): " FIX_SAVE,
                        (size_t)(lx.p - h));
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            const char *d;
            size_t dlen;
            if (have_descr)
                return fail(err, name, "has 'descr' twice in its .npy header: " FIX_SAVE);
            skip_space(&lx);
            if (lx.p < lx.end && *lx.p == '[')
                return fail(err, name,
                            "is a structured array (its 'descr' is a list of fields); "
                            "a mean must be a plain array of numbers: " FIX_SAVE);
            if (!lex_string(&lx, &d, &dlen))
                return fail(err, name, "has a 'descr' that is not a string: " FIX_SAVE);
            const char *problem = parse_descr(d, dlen, info);
            if (problem)
                return fail(err, name,
                            "has dtype '%.*s', which %s: save it as float32, e.g. "
                            "numpy.save(path, mean.astype(numpy.float32))",
                            (int)(dlen > 32 ? 32 : dlen), d, problem);
            have_descr = true;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_order)
                return fail(err, name, "has 'fortran_order' twice in its .npy header: " FIX_SAVE);
            if (lex_word(&lx, "True"))
                return fail(err, name,
                            "is stored in Fortran (column-major) order; save it in C "
                            "order: numpy.save(path, numpy.ascontiguousarray(mean))");
            if (!lex_word(&lx, "False"))
                return fail(err, name,
                            "has a 'fortran_order' that is not True or False: " FIX_SAVE);
            have_order = true;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape)
                return fail(err, name, "has 'shape' twice in its .npy header: " FIX_SAVE);
            if (!take(&lx, '('))
                return fail(err, name, "has a 'shape' that is not a tuple: " FIX_SAVE);
            size_t nd = 0;
            for (;;) {
                if (take(&lx, ')'))
                    break;
                int64_t v;
                if (!lex_uint(&lx, &v))
                    return fail(err, name,
                                "has a 'shape' that is not a tuple of non-negative "
                                "integers: " FIX_SAVE);
                if (nd == NPY_MAX_DIMS)
                    return fail(err, name, "has more than %d dimensions", NPY_MAX_DIMS);
                info->shape[nd++] = v;
                if (take(&lx, ')'))
                    break;
                if (!take(&lx, ','))
                    return fail(err, name,
                                "has a 'shape' that is not a tuple of non-negative "
                                "integers: " FIX_SAVE);
            }
            info->ndims = nd;
            have_shape = true;
        } else {
            return fail(err, name,
                        "has an unexpected key '%.*s' in its .npy header (only 'descr', "
                        "'fortran_order' and 'shape' are allowed): " FIX_SAVE,
                        (int)(klen > 32 ? 32 : klen), key);
        }
        if (take(&lx, '}'))
            break;
        if (!take(&lx, ','))
            return fail(err, name,
                        "has a .npy header dict that cannot be parsed (at byte %zu): " FIX_SAVE,
                        (size_t)(lx.p - h));
    }
    skip_space(&lx);
    if (lx.p != lx.end)
        return fail(err, name, "has bytes after the dict in its .npy header: " FIX_SAVE);
    if (!have_descr || !have_order || !have_shape)
        return fail(err, name, "has a .npy header without '%s': " FIX_SAVE,
                    !have_descr   ? "descr"
                    : !have_order ? "fortran_order"
                                  : "shape");
    return true;
}

static bool compute_sizes(const char *name, npy_info_t *info, nn_error_t *err)
{
    uint64_t count = 1;
    for (size_t i = 0; i < info->ndims; i++)
        if (__builtin_mul_overflow(count, (uint64_t)info->shape[i], &count))
            return fail(err, name, "has a shape whose element count overflows 64 bits");
    uint64_t bytes;
    if (__builtin_mul_overflow(count, (uint64_t)info->itemsize, &bytes))
        return fail(err, name, "has a shape whose size in bytes overflows 64 bits");
    info->count = count;
    info->data_bytes = bytes;
    return true;
}

bool npy_parse_header(const void *data, size_t len, const char *display_name, npy_info_t *out,
                      nn_error_t *err)
{
    const unsigned char *b = data;
    const char *name = display_name ? display_name : "mean.npy";
    memset(out, 0, sizeof(*out));
    if (len < 8 || memcmp(b, npy_magic, sizeof(npy_magic)) != 0)
        return fail(err, name,
                    "is not a NumPy .npy file (it does not start with \\x93NUMPY): " FIX_SAVE);
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return fail(err, name,
                    "is in .npy format version %u.%u; NumPy writes 1.0, 2.0 and 3.0: " FIX_SAVE,
                    major, minor);
    size_t prefix = major == 1 ? 10 : 12;
    if (len < prefix)
        return fail(err, name, "is truncated inside its .npy header: " FIX_SAVE);
    uint64_t hlen = major == 1 ? (uint64_t)b[8] | (uint64_t)b[9] << 8
                               : (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
                                     (uint64_t)b[11] << 24;
    if (hlen > NPY_MAX_HEADER_BYTES)
        return fail(err, name, "has a .npy header of %" PRIu64 " bytes, more than the %u allowed",
                    hlen, NPY_MAX_HEADER_BYTES);
    if (hlen > len - prefix)
        return fail(err, name, "is truncated inside its .npy header: " FIX_SAVE);
    out->version_major = (int)major;
    out->version_minor = (int)minor;
    if (!parse_dict((const char *)b + prefix, (size_t)hlen, name, out, err))
        return false;
    out->data_offset = prefix + hlen;
    return compute_sizes(name, out, err);
}

static bool check_data_length(const char *name, const npy_info_t *info, uint64_t have,
                              nn_error_t *err)
{
    if (have == info->data_bytes)
        return true;
    char shape[256];
    npy_shape_string(info->shape, info->ndims, shape, sizeof(shape));
    if (have < info->data_bytes)
        return fail(err, name,
                    "holds %" PRIu64 " bytes of data but its header (shape %s, dtype '%s') "
                    "needs %" PRIu64 ": the file is truncated; upload it again",
                    have, shape, info->descr, info->data_bytes);
    return fail(err, name,
                "holds %" PRIu64 " bytes of data but its header (shape %s, dtype '%s') "
                "needs only %" PRIu64 ": the file has trailing bytes; " FIX_SAVE,
                have, shape, info->descr, info->data_bytes);
}

bool npy_parse(const void *data, size_t len, const char *display_name, npy_info_t *out,
               nn_error_t *err)
{
    const char *name = display_name ? display_name : "mean.npy";
    if (!npy_parse_header(data, len, name, out, err))
        return false;
    return check_data_length(name, out, len - out->data_offset, err);
}

/* ---- Caffe BlobProto ------------------------------------------------------ */

#define FIX_BLOB "the file is damaged or not a Caffe mean; upload the .binaryproto Caffe wrote"

bool npy_parse_blobproto(const void *data, size_t len, const char *display_name, npy_info_t *out,
                         nn_error_t *err)
{
    const char *name = display_name ? display_name : "mean.binaryproto";
    memset(out, 0, sizeof(*out));
    pb_error_t pe;
    pb_reader_t r;
    pb_field_t f;
    pb_status_t st = PB_END;
    int64_t legacy[4] = {0, 0, 0, 0};
    bool have_legacy = false, have_shape = false;
    uint64_t nfloat = 0, ndouble = 0;
    size_t nd = 0;
    const char *problem = NULL;
    pb_reader_init(&r, data, len, &pe);
    while (!problem && (st = pb_next(&r, &f)) == PB_FIELD) {
        switch (f.number) {
        case 1:
        case 2:
        case 3:
        case 4:
            if (f.wire_type != PB_WIRE_VARINT) {
                problem = "num/channels/height/width is not an integer";
                break;
            }
            if (pb_int32(&f) < 0) {
                problem = "num/channels/height/width is negative";
                break;
            }
            legacy[f.number - 1] = pb_int32(&f);
            have_legacy = true;
            break;
        case 5: /* float data */
        case 8: /* double data */ {
            unsigned size = f.number == 5 ? 4 : 8;
            uint64_t *n = f.number == 5 ? &nfloat : &ndouble;
            if (f.wire_type == PB_WIRE_LEN) {
                if (f.len % size != 0)
                    problem = "packed data is not a whole number of values";
                else
                    *n += f.len / size;
            } else if (f.wire_type == (f.number == 5 ? PB_WIRE_FIXED32 : PB_WIRE_FIXED64)) {
                (*n)++;
            } else {
                problem = "data is not floating-point values";
            }
            break;
        }
        case 7: {
            pb_reader_t sr;
            pb_field_t sf;
            pb_status_t sst = PB_END;
            if (!pb_sub(&r, &f, &sr))
                break;
            have_shape = true;
            while (!problem && (sst = pb_next(&sr, &sf)) == PB_FIELD) {
                if (sf.number != 1)
                    continue;
                const unsigned char *q = NULL, *e = NULL;
                uint64_t single = 0;
                bool one = sf.wire_type == PB_WIRE_VARINT;
                if (sf.wire_type == PB_WIRE_LEN) {
                    q = sf.data;
                    e = sf.data + sf.len;
                } else if (one) {
                    single = sf.value;
                } else {
                    problem = "a shape dimension is not an integer";
                    break;
                }
                while (!problem && (one || q < e)) {
                    uint64_t v = single;
                    if (!one && !pb_decode_varint(&q, e, &v)) {
                        problem = "a packed shape dimension is not a valid varint";
                        break;
                    }
                    if ((int64_t)v < 0)
                        problem = "a shape dimension is negative";
                    else if (nd == NPY_MAX_DIMS)
                        problem = "the shape has more than 32 dimensions";
                    else
                        out->shape[nd++] = (int64_t)v;
                    one = false;
                }
            }
            if (sst == PB_ERROR)
                st = PB_ERROR;
            break;
        }
        default:
            break;
        }
        if (pe.set)
            break;
    }
    if (problem)
        return fail(err, name, "is not a valid Caffe BlobProto (%s): " FIX_BLOB, problem);
    if (pe.set || st == PB_ERROR)
        return fail(err, name, "is not a valid Caffe BlobProto (%s at byte %zu): " FIX_BLOB,
                    pe.message, pe.offset);
    if (nfloat && ndouble)
        return fail(err, name, "holds both float and double data: " FIX_BLOB);
    if (!have_shape && have_legacy) {
        for (size_t i = 0; i < 4; i++)
            out->shape[i] = legacy[i];
        nd = 4;
    }
    out->ndims = nd;
    out->byte_order = '<';
    out->kind = 'f';
    out->itemsize = ndouble ? 8 : 4;
    snprintf(out->descr, sizeof(out->descr), "<f%zu", out->itemsize);
    if (!compute_sizes(name, out, err))
        return false;
    uint64_t values = ndouble ? ndouble : nfloat;
    if (values != out->count) {
        char shape[256];
        npy_shape_string(out->shape, out->ndims, shape, sizeof(shape));
        return fail(err, name,
                    "holds %" PRIu64 " values but its shape %s needs %" PRIu64 ": " FIX_BLOB,
                    values, shape, out->count);
    }
    return true;
}

/* ---- files ---------------------------------------------------------------- */

static bool io_fail(nn_error_t *err, const char *what, const char *path, const char *display)
{
    int e = errno;
    log_error("%s %s: %s", what, path, strerror(e));
    return nn_error_set(err, 500, "internal_error", "internal error: cannot %s %s: %s", what,
                        display, strerror(e));
}

/* Reads up to len bytes at offset 0; *got is how many (less at EOF). */
static bool read_prefix(int fd, unsigned char *buf, size_t len, size_t *got)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = pread(fd, buf + n, len - n, (off_t)n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool npy_check_file(const char *path, const char *display_name, npy_info_t *out, nn_error_t *err)
{
    const char *name = display_name ? display_name : path;
    bool blob = has_suffix(name, ".binaryproto") || has_suffix(path, ".binaryproto");
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "open", path, name);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        io_fail(err, "stat", path, name);
        close(fd);
        return false;
    }
    uint64_t size = (uint64_t)st.st_size;
    size_t want;
    if (blob) {
        if (size > NPY_MAX_BLOBPROTO_BYTES) {
            close(fd);
            return fail(err, name,
                        "is %" PRIu64 " bytes long, more than the %u bytes a mean file "
                        "may have",
                        size, NPY_MAX_BLOBPROTO_BYTES);
        }
        want = (size_t)size;
    } else {
        want =
            size < 12 + (uint64_t)NPY_MAX_HEADER_BYTES ? (size_t)size : 12 + NPY_MAX_HEADER_BYTES;
    }
    unsigned char *buf = malloc(want ? want : 1);
    if (!buf) {
        close(fd);
        return nn_error_oom(err);
    }
    size_t got = 0;
    if (!read_prefix(fd, buf, want, &got)) {
        io_fail(err, "read", path, name);
        free(buf);
        close(fd);
        return false;
    }
    close(fd);
    bool ok;
    if (blob) {
        ok = got == size ? npy_parse_blobproto(buf, got, name, out, err)
                         : nn_error_internal(err, "mean file changed while being read");
    } else {
        ok = npy_parse_header(buf, got, name, out, err) &&
             check_data_length(name, out, size - out->data_offset, err);
    }
    free(buf);
    return ok;
}

/* ---- shapes ---------------------------------------------------------------- */

npy_mean_layout_t npy_mean_fits(const int64_t *shape, size_t ndims, unsigned channels,
                                unsigned width, unsigned height, char *why, size_t why_size)
{
    int64_t C = channels, W = width, H = height;
    bool sized = width > 0 && height > 0;
    /* Leading 1s are ignored: the layouts are matched on the last r dims
     * when every dim before them is 1. */
    size_t lead = 0;
    while (lead < ndims && shape[lead] == 1)
        lead++;
    for (size_t r = 1; r <= 3 && r <= ndims; r++) {
        if (lead < ndims - r)
            continue; /* something other than 1 before the last r dims */
        const int64_t *s = shape + (ndims - r);
        if (r == 1 && s[0] == C)
            return NPY_MEAN_PER_CHANNEL;
        if (!sized)
            continue;
        if (r == 2 && C == 1) {
            if (s[0] == H && s[1] == W)
                return NPY_MEAN_HWC;
            if (s[0] == W && s[1] == H)
                return NPY_MEAN_WHC;
        }
        if (r == 3) {
            if (s[0] == H && s[1] == W && s[2] == C)
                return NPY_MEAN_HWC;
            if (s[0] == C && s[1] == H && s[2] == W)
                return NPY_MEAN_CHW;
            if (s[0] == W && s[1] == H && s[2] == C)
                return NPY_MEAN_WHC;
            if (s[0] == C && s[1] == W && s[2] == H)
                return NPY_MEAN_CWH;
        }
    }
    if (why && why_size) {
        char got[256];
        npy_shape_string(shape, ndims, got, sizeof(got));
        if (sized)
            snprintf(why, why_size,
                     "has shape %s, but the input takes %u channel%s at %ux%u: the mean must have "
                     "shape (%u,) (one value per channel), (%u, %u, %u) or (%u, %u, %u)",
                     got, channels, channels == 1 ? "" : "s", width, height, channels, height,
                     width, channels, channels, height, width);
        else
            snprintf(why, why_size,
                     "has shape %s, but the input's size is not fixed (resize_type NETWORK), so "
                     "the mean must have one value per channel: shape (%u,)",
                     got, channels);
    }
    return NPY_MEAN_NO_FIT;
}
