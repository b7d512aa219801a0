/* spec.c - a network's stored preprocessing.inputs[i].image object (as
 * api/validate.c stores it: every enum a string, target_size a string "WxH"
 * or "N", pixel_scaling a number, mean_file a name or null, data_type a
 * string) into an image_spec_t, with the mean file's values as floats.
 *
 * The object was validated when the network was created, so a field that
 * does not parse here means the stored metadata is damaged: a 500.  The
 * mean file is the deployed copy; one that cannot be used is a 400
 * "invalid_mean_file" naming it. */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/npy.h"
#include "model/pbwire.h"

static const char *field_string(const jv_t *image, const char *key)
{
    const jv_t *f = jv_get(image, key);
    if (f && f->type == JV_STRING)
        return f->u.string.ptr;
    if (f && f->type == JV_NUMBER)
        return f->u.number.text;
    return NULL;
}

static bool pick(const char *value, const char *const *names, size_t n, int *out)
{
    for (size_t i = 0; value && i < n; i++)
        if (strcmp(value, names[i]) == 0) {
            *out = (int)i;
            return true;
        }
    return false;
}

static bool parse_side(const char *s, const char **end, unsigned *out)
{
    unsigned long v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && v <= 1000000)
        v = v * 10 + (unsigned long)(*p++ - '0');
    if (p == s || v == 0 || v > 1000000)
        return false;
    *out = (unsigned)v;
    *end = p;
    return true;
}

static bool bad_field(nn_error_t *err, const char *key)
{
    return nn_error_set(err, 500, "internal_error",
                        "internal error: the network's stored preprocessing has an unusable "
                        "\"%s\"",
                        key);
}

/* ---- mean files ---------------------------------------------------------- */

static bool read_whole(const char *path, const char *name, unsigned char **data, size_t *len,
                       nn_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return nn_error_set(err, 500, "internal_error",
                            "internal error: cannot read the mean file %s of the deployed "
                            "network: %s",
                            name, strerror(e));
    }
    if ((uint64_t)st.st_size > NPY_MAX_BLOBPROTO_BYTES) {
        close(fd);
        return nn_error_set(err, 400, "invalid_mean_file",
                            "the mean file %s is %lld bytes, more than the %u bytes a mean file "
                            "may have",
                            name, (long long)st.st_size, NPY_MAX_BLOBPROTO_BYTES);
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return nn_error_oom(err);
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return nn_error_internal(err, "the mean file changed size while being read");
    }
    *data = buf;
    *len = size;
    return true;
}

static uint64_t load_le(const unsigned char *p, size_t n, bool big)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[big ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

/* One .npy element as a float. */
static float npy_value(const npy_info_t *info, const unsigned char *p)
{
    bool big = info->byte_order == '>';
    uint64_t bits = load_le(p, info->itemsize, big);
    switch (info->kind) {
    case 'f':
        if (info->itemsize == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            return f;
        } else {
            double d;
            memcpy(&d, &bits, 8);
            return (float)d;
        }
    case 'u':
        return (float)bits;
    case 'i': {
        unsigned shift = (unsigned)(64 - 8 * info->itemsize);
        return (float)((int64_t)(bits << shift) >> shift);
    }
    }
    return 0;
}

static bool mean_from_npy(arena_t *arena, const unsigned char *buf, size_t len, const char *name,
                          npy_info_t *info, float **values, nn_error_t *err)
{
    if (!npy_parse(buf, len, name, info, err))
        return false;
    bool ok = (info->kind == 'f' && (info->itemsize == 4 || info->itemsize == 8)) ||
              ((info->kind == 'u' || info->kind == 'i') && info->itemsize <= 8);
    if (!ok)
        return nn_error_set(err, 400, "invalid_mean_file",
                            "the mean file %s holds %s values: save it as float32 (e.g. "
                            "numpy.save(f, mean.astype(numpy.float32)))",
                            name, info->descr);
    float *v = arena_alloc(arena, (size_t)info->count * sizeof(float) + 1);
    if (!v)
        return nn_error_oom(err);
    const unsigned char *p = buf + info->data_offset;
    for (uint64_t i = 0; i < info->count; i++)
        v[i] = npy_value(info, p + i * info->itemsize);
    *values = v;
    return true;
}

static bool mean_from_blobproto(arena_t *arena, const unsigned char *buf, size_t len,
                                const char *name, npy_info_t *info, float **values, nn_error_t *err)
{
    if (!npy_parse_blobproto(buf, len, name, info, err))
        return false;
    float *v = arena_alloc(arena, (size_t)info->count * sizeof(float) + 1);
    if (!v)
        return nn_error_oom(err);
    /* npy_parse_blobproto checked the wire format and that the data field
     * (5: float, 8: double; packed or not) holds exactly count values. */
    const uint32_t want = info->itemsize == 8 ? 8 : 5;
    const size_t size = info->itemsize;
    pb_error_t pe;
    pb_reader_t r;
    pb_field_t f;
    size_t n = 0;
    pb_reader_init(&r, buf, len, &pe);
    while (pb_next(&r, &f) == PB_FIELD) {
        if (f.number != want)
            continue;
        const unsigned char *p;
        size_t k;
        unsigned char one[8];
        if (f.wire_type == PB_WIRE_LEN) {
            p = f.data;
            k = f.len / size;
        } else {
            for (size_t i = 0; i < size; i++)
                one[i] = (unsigned char)(f.value >> (8 * i));
            p = one;
            k = 1;
        }
        for (size_t i = 0; i < k && n < info->count; i++, n++) {
            uint64_t bits = load_le(p + i * size, size, false);
            if (size == 4) {
                uint32_t b32 = (uint32_t)bits;
                memcpy(&v[n], &b32, 4);
            } else {
                double d;
                memcpy(&d, &bits, 8);
                v[n] = (float)d;
            }
        }
    }
    if (pe.set || n != info->count)
        return nn_error_set(err, 400, "invalid_mean_file",
                            "the mean file %s is not a valid Caffe BlobProto", name);
    *values = v;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool load_mean(arena_t *arena, const char *path, const char *name, image_spec_t *spec,
                      nn_error_t *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (!read_whole(path, name, &buf, &len, err))
        return false;
    npy_info_t info;
    float *values = NULL;
    bool ok = ends_with(name, ".binaryproto") || ends_with(path, ".binaryproto")
                  ? mean_from_blobproto(arena, buf, len, name, &info, &values, err)
                  : mean_from_npy(arena, buf, len, name, &info, &values, err);
    free(buf);
    if (!ok)
        return false;
    /* Leading 1s carry nothing (a Caffe mean is (1, C, H, W)). */
    size_t lead = 0;
    while (info.ndims - lead > 1 && info.shape[lead] == 1)
        lead++;
    if (info.ndims - lead > 4 || info.count == 0) {
        char shape[256];
        npy_shape_string(info.shape, info.ndims, shape, sizeof(shape));
        return nn_error_set(err, 400, "invalid_mean_file",
                            "the mean file %s has shape %s: a mean is (C,), (H, W, C) or "
                            "(C, H, W)",
                            name, shape);
    }
    spec->mean = values;
    spec->mean_ndims = info.ndims - lead;
    for (size_t i = 0; i < spec->mean_ndims; i++)
        spec->mean_shape[i] = info.shape[lead + i];
    /* Does it fit the input at all (the size is fixed unless NETWORK)? */
    char why[512];
    unsigned C = spec->channels == IMAGE_CHANNELS_L ? 1 : 3;
    bool sized = spec->resize != IMAGE_RESIZE_NETWORK;
    if (npy_mean_fits(spec->mean_shape, spec->mean_ndims, C, sized ? spec->target_width : 0,
                      sized ? spec->target_height : 0, why, sizeof(why)) == NPY_MEAN_NO_FIT)
        return nn_error_set(err, 400, "invalid_mean_file", "the mean file %s %s", name, why);
    return true;
}

/* ---- the spec ------------------------------------------------------------ */

bool image_spec_from_json(arena_t *arena, const jv_t *image, const char *mean_path,
                          image_spec_t *out, nn_error_t *err)
{
    static const char *const resizes[] = {"SQUASH", "CROP", "FILL", "NETWORK"};
    static const char *const channels[] = {"RGB", "BGR", "L"};
    static const char *const orders[] = {"NHWC", "NCHW", "NWHC", "NCWH"};
    memset(out, 0, sizeof(*out));
    if (!image || image->type != JV_OBJECT)
        return bad_field(err, "image");
    int resize, color, order;
    if (!pick(field_string(image, "resize_type"), resizes, 4, &resize))
        return bad_field(err, "resize_type");
    if (!pick(field_string(image, "color_channels"), channels, 3, &color))
        return bad_field(err, "color_channels");
    if (!pick(field_string(image, "dimension_order"), orders, 4, &order))
        return bad_field(err, "dimension_order");
    out->resize = (image_resize_t)resize;
    out->channels = (image_channels_t)color;
    out->order = (image_order_t)order;

    const char *target = field_string(image, "target_size"), *end = NULL;
    if (!target || !parse_side(target, &end, &out->target_width))
        return bad_field(err, "target_size");
    if (out->resize == IMAGE_RESIZE_NETWORK) {
        if (*end)
            return bad_field(err, "target_size");
        out->target_height = out->target_width;
    } else if (*end != 'x' || !parse_side(end + 1, &end, &out->target_height) || *end) {
        return bad_field(err, "target_size");
    }

    const jv_t *f = jv_get(image, "pixel_scaling");
    out->pixel_scaling = 255.0; /* the API's default */
    if (f && f->type == JV_NUMBER)
        out->pixel_scaling = f->u.number.value;
    else if (f && f->type != JV_NULL)
        return bad_field(err, "pixel_scaling");

    const char *dtype = field_string(image, "data_type");
    if (dtype && strcmp(dtype, "UINT8") == 0)
        out->uint8 = true;
    else if (dtype && strcmp(dtype, "FLOAT32") != 0)
        return bad_field(err, "data_type");

    const char *declared = field_string(image, "mean_file");
    if (declared && *declared && !mean_path)
        return nn_error_internal(err, "the input names a mean file but no path to it was given");
    if (mean_path) {
        const char *name = declared;
        if (!name) {
            const char *slash = strrchr(mean_path, '/');
            name = slash ? slash + 1 : mean_path;
        }
        if (!load_mean(arena, mean_path, name, out, err))
            return false;
    }
    return true;
}
