/* Unit tests: image preprocessing (image/preprocess.c, image/spec.c).
 *
 * Every case of tests/fixtures/preprocessing/cases.json (computed by an
 * independent implementation, TensorFlow.js) is run from its JSON spec
 * through image_spec_from_json, image_decode and image_preprocess, and
 * compared with its expected tensor within the fixture README's tolerance
 * |got - expected| <= 1e-5 * max(1, max_abs_value).  So are the two
 * inference fixtures' input.npy.  Small hand-computed cases pin the
 * interpolation, the geometry edges, UINT8 rounding and the mean formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <unistd.h>

#include "image/image.h"
#include "model/npy.h"
#include "json/jv.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A float32 little-endian .npy into a malloc'd array (shape into info). */
static float *read_npy_f32(const char *path, npy_info_t *info)
{
    size_t len;
    unsigned char *buf = read_file(path, &len);
    nn_error_t err;
    nn_error_init(&err);
    if (!npy_parse(buf, len, path, info, &err))
        fail_msg("%s: %s", path, err.message);
    assert_string_equal(info->descr, "<f4");
    float *v = malloc((size_t)info->count * sizeof(float) + 1);
    assert_non_null(v);
    memcpy(v, buf + info->data_offset, (size_t)info->count * sizeof(float));
    free(buf);
    return v;
}

/* Decodes the PNG at path into arena memory. */
static void decode_path(arena_t *arena, const char *path, image_rgb_t *img)
{
    size_t len;
    unsigned char *bytes = read_file(path, &len);
    nn_error_t err;
    nn_error_init(&err);
    if (!image_decode(arena, bytes, len, img, &err))
        fail_msg("%s: %s", path, err.message);
    free(bytes);
}

static jv_t *parse_json_file(arena_t *arena, const char *path)
{
    size_t len;
    unsigned char *text = read_file(path, &len);
    nn_error_t err;
    nn_error_init(&err);
    char *copy = arena_strndup(arena, (const char *)text, len);
    free(text);
    assert_non_null(copy);
    jv_t *v = jv_parse(arena, copy, len, path, &err);
    if (!v)
        fail_msg("%s: %s", path, err.message);
    return v;
}

/* Compares got with expected; returns the worst |difference|. */
static double compare(const char *what, const nn_tensor_t *got, const float *exp,
                      const npy_info_t *info, double max_abs_value)
{
    assert_int_equal(got->ndims, info->ndims);
    for (size_t i = 0; i < got->ndims; i++)
        if (got->dims[i] != info->shape[i])
            fail_msg("%s: dim %zu is %lld, expected %lld", what, i, (long long)got->dims[i],
                     (long long)info->shape[i]);
    assert_int_equal(got->count, info->count);
    double tol = 1e-5 * fmax(1.0, max_abs_value), worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < got->count; i++) {
        double d = fabs((double)got->data[i] - (double)exp[i]);
        if (!(d <= worst) || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
            worst_at = i;
        }
    }
    if (!(worst <= tol))
        fail_msg("%s: value %zu is %.9g, expected %.9g (difference %.3g > tolerance %.3g)", what,
                 worst_at, got->data[worst_at], exp[worst_at], worst, tol);
    return worst;
}

/* ---- the fixture cases ------------------------------------------------------ */

static void test_fixture_cases(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    const char *dir = NNREG_FIXTURES "/preprocessing";
    char path[1024];
    snprintf(path, sizeof(path), "%s/cases.json", dir);
    jv_t *root = parse_json_file(arena, path);
    jv_t *cases = jv_get(root, "cases");
    assert_non_null(cases);
    assert_int_equal(cases->type, JV_ARRAY);
    assert_true(cases->u.array.n >= 20);
    size_t checked = 0;
    for (size_t k = 0; k < cases->u.array.n; k++) {
        const jv_t *c = cases->u.array.items[k];
        const char *id = jv_get(c, "id")->u.string.ptr;
        arena_t *a = arena_create(0);
        assert_non_null(a);
        nn_error_t err;
        nn_error_init(&err);

        image_rgb_t img;
        snprintf(path, sizeof(path), "%s/%s", dir, jv_get(c, "image")->u.string.ptr);
        decode_path(a, path, &img);

        const jv_t *mp = jv_get(c, "mean_path");
        char mean_path[1024];
        if (mp && mp->type == JV_STRING)
            snprintf(mean_path, sizeof(mean_path), "%s/%s", dir, mp->u.string.ptr);
        image_spec_t spec;
        if (!image_spec_from_json(a, jv_get(c, "spec"),
                                  mp && mp->type == JV_STRING ? mean_path : NULL, &spec, &err))
            fail_msg("%s: spec: %s", id, err.message);

        image_bbox_t bbox, *pb = NULL;
        const jv_t *b = jv_get(c, "bbox");
        if (b && b->type == JV_OBJECT) {
            bbox.xmin = jv_get(b, "xmin")->u.number.value;
            bbox.ymin = jv_get(b, "ymin")->u.number.value;
            bbox.xmax = jv_get(b, "xmax")->u.number.value;
            bbox.ymax = jv_get(b, "ymax")->u.number.value;
            pb = &bbox;
        }
        nn_tensor_t t;
        if (!image_preprocess(a, &img, pb, &spec, &t, &err))
            fail_msg("%s: preprocess: %s", id, err.message);

        /* The debugging geometry agrees with ours. */
        const jv_t *geo = jv_get(c, "geometry");
        const jv_t *gout = jv_get(geo, "out");
        const jv_t *gin = jv_get(geo, "in");
        unsigned ow, oh;
        image_output_size(&spec, (unsigned)jv_get(gin, "w")->u.number.value,
                          (unsigned)jv_get(gin, "h")->u.number.value, &ow, &oh);
        assert_int_equal(ow, (unsigned)jv_get(gout, "w")->u.number.value);
        assert_int_equal(oh, (unsigned)jv_get(gout, "h")->u.number.value);

        npy_info_t info;
        snprintf(path, sizeof(path), "%s/%s", dir, jv_get(c, "expected")->u.string.ptr);
        float *exp = read_npy_f32(path, &info);
        double worst = compare(id, &t, exp, &info, jv_get(c, "max_abs_value")->u.number.value);
        print_message("    %-40s max |diff| %.3g\n", id, worst);
        free(exp);
        arena_destroy(a);
        checked++;
    }
    assert_int_equal(checked, cases->u.array.n);
    arena_destroy(arena);
}

/* The inference fixtures' input.npy from input.png and network.json. */
static void check_network_input(const char *name)
{
    arena_t *a = arena_create(0);
    assert_non_null(a);
    char dir[512], path[1024], mean_path[1024];
    snprintf(dir, sizeof(dir), "%s/networks/%s", NNREG_FIXTURES, name);
    snprintf(path, sizeof(path), "%s/network.json", dir);
    jv_t *net = parse_json_file(a, path);
    jv_t *inputs = jv_get(jv_get(net, "preprocessing"), "inputs");
    assert_non_null(inputs);
    jv_t *image = jv_get(inputs->u.array.items[0], "image");
    const jv_t *mean = jv_get(image, "mean_file");
    if (mean && mean->type == JV_STRING)
        snprintf(mean_path, sizeof(mean_path), "%s/%s", dir, mean->u.string.ptr);
    nn_error_t err;
    nn_error_init(&err);
    image_spec_t spec;
    if (!image_spec_from_json(a, image, mean && mean->type == JV_STRING ? mean_path : NULL, &spec,
                              &err))
        fail_msg("%s: %s", name, err.message);
    image_rgb_t img;
    snprintf(path, sizeof(path), "%s/input.png", dir);
    decode_path(a, path, &img);
    nn_tensor_t t;
    if (!image_preprocess(a, &img, NULL, &spec, &t, &err))
        fail_msg("%s: %s", name, err.message);
    npy_info_t info;
    snprintf(path, sizeof(path), "%s/input.npy", dir);
    float *exp = read_npy_f32(path, &info);
    double max_abs = 0;
    for (size_t i = 0; i < info.count; i++)
        max_abs = fmax(max_abs, fabs(exp[i]));
    double worst = compare(name, &t, exp, &info, max_abs);
    print_message("    %-40s max |diff| %.3g\n", name, worst);
    free(exp);
    arena_destroy(a);
}

static void test_network_inputs(void **state)
{
    (void)state;
    check_network_input("posenet");
    check_network_input("nsfw_mobilenet_v2");
}

/* ---- hand-computed cases ------------------------------------------------------ */

static jv_t *spec_json(arena_t *a, const char *order, const char *resize, const char *target,
                       const char *channels, double scaling, const char *mean, const char *dtype)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"dimension_order\": \"%s\", \"resize_type\": \"%s\", \"target_size\": \"%s\", "
             "\"color_channels\": \"%s\", \"pixel_scaling\": %.17g, \"mean_file\": %s%s%s, "
             "\"data_type\": \"%s\"}",
             order, resize, target, channels, scaling, mean ? "\"" : "", mean ? mean : "null",
             mean ? "\"" : "", dtype);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *v = jv_parse(a, text, strlen(text), "spec", &err);
    assert_non_null(v);
    return v;
}

static image_spec_t make_spec(arena_t *a, const char *order, const char *resize, const char *target,
                              const char *channels, double scaling, const char *dtype)
{
    nn_error_t err;
    nn_error_init(&err);
    image_spec_t spec;
    if (!image_spec_from_json(a,
                              spec_json(a, order, resize, target, channels, scaling, NULL, dtype),
                              NULL, &spec, &err))
        fail_msg("spec: %s", err.message);
    return spec;
}

/* A grey image (R = G = B = v[i]) of w x h. */
static image_rgb_t grey_image(arena_t *a, unsigned w, unsigned h, const uint8_t *v)
{
    image_rgb_t img = {w, h, arena_alloc(a, (size_t)w * h * 3)};
    assert_non_null(img.pixels);
    for (size_t i = 0; i < (size_t)w * h; i++)
        img.pixels[3 * i] = img.pixels[3 * i + 1] = img.pixels[3 * i + 2] = v[i];
    return img;
}

static void test_bilinear_by_hand(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    /* 2x1 -> 4x1: source x = (x + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
     * clamped to 0, 0.25, 0.75, 1. */
    const uint8_t px[2] = {0, 200};
    image_rgb_t img = grey_image(a, 2, 1, px);
    image_spec_t spec = make_spec(a, "NHWC", "SQUASH", "4x1", "RGB", 255.0, "FLOAT32");
    nn_tensor_t t;
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_int_equal(t.count, 12);
    const float want[4] = {0, 50, 150, 200};
    for (int x = 0; x < 4; x++)
        for (int c = 0; c < 3; c++)
            assert_float_equal(t.data[x * 3 + c], want[x], 1e-4);

    /* 4x4 -> 2x2: each output samples the centre of a 2x2 block. */
    const uint8_t q[16] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150};
    img = grey_image(a, 4, 4, q);
    spec = make_spec(a, "NCHW", "SQUASH", "2x2", "L", 255.0, "FLOAT32");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_int_equal(t.dims[1], 1);
    const float want2[4] = {25, 45, 105, 125};
    for (int i = 0; i < 4; i++)
        assert_float_equal(t.data[i], want2[i], 1e-3);
    arena_destroy(a);
}

static void test_geometry_by_hand(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    /* A 4x2 image: left half 0, right half 100. */
    const uint8_t px[8] = {0, 0, 100, 100, 0, 0, 100, 100};
    image_rgb_t img = grey_image(a, 4, 2, px);
    nn_tensor_t t;

    /* FILL 4x4: s = 1, the image sits at rows 1..2 of a white canvas. */
    image_spec_t spec = make_spec(a, "NHWC", "FILL", "4x4", "L", 255.0, "FLOAT32");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            float want = (y == 0 || y == 3) ? 255.0f : px[(y - 1) * 4 + x];
            assert_float_equal(t.data[y * 4 + x], want, 2e-3);
        }

    /* CROP 2x2: s = max(2/4, 2/2) = 1, window of the 4x2 image at x = 1. */
    spec = make_spec(a, "NHWC", "CROP", "2x2", "L", 255.0, "FLOAT32");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_float_equal(t.data[0], 0, 1e-3);
    assert_float_equal(t.data[1], 100, 1e-3);

    /* NETWORK 2: s = 2/4, output 2x1 (the tensor takes that shape). */
    spec = make_spec(a, "NHWC", "NETWORK", "2", "L", 255.0, "FLOAT32");
    assert_int_equal(spec.target_width, 2);
    assert_int_equal(spec.target_height, 2);
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_int_equal(t.dims[1], 1);
    assert_int_equal(t.dims[2], 2);
    assert_float_equal(t.data[0], 0, 1e-3);
    assert_float_equal(t.data[1], 100, 1e-3);

    /* NETWORK on a very thin image: sizes never drop to 0. */
    const uint8_t thin[100] = {0};
    img = grey_image(a, 100, 1, thin);
    spec = make_spec(a, "NHWC", "NETWORK", "10", "RGB", 1.0, "FLOAT32");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_int_equal(t.dims[1], 1);
    assert_int_equal(t.dims[2], 10);

    /* bbox: x0 = floor(0.3·4) = 1, x1 = ceil(0.6·4) = 3: pixels 1 and 2. */
    img = grey_image(a, 4, 2, px);
    image_bbox_t bb = {0.3, 0.0, 0.6, 0.5};
    spec = make_spec(a, "NHWC", "SQUASH", "2x1", "L", 255.0, "FLOAT32");
    assert_true(image_preprocess(a, &img, &bb, &spec, &t, &err));
    assert_float_equal(t.data[0], 0, 1e-3);
    assert_float_equal(t.data[1], 100, 1e-3);
    arena_destroy(a);
}

static void test_layouts_by_hand(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    /* 3x2 RGB image with distinct values: R = 10·(y·3 + x), G = R + 1, B = R + 2. */
    image_rgb_t img = {3, 2, arena_alloc(a, 18)};
    for (unsigned i = 0; i < 6; i++)
        for (unsigned c = 0; c < 3; c++)
            img.pixels[i * 3 + c] = (uint8_t)(10 * i + c);
    const char *orders[4] = {"NHWC", "NCHW", "NWHC", "NCWH"};
    const int64_t dims[4][3] = {{2, 3, 3}, {3, 2, 3}, {3, 2, 3}, {3, 3, 2}};
    for (int o = 0; o < 4; o++) {
        image_spec_t spec = make_spec(a, orders[o], "SQUASH", "3x2", "BGR", 255.0, "FLOAT32");
        nn_tensor_t t;
        assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
        for (int d = 0; d < 3; d++)
            assert_int_equal(t.dims[d + 1], dims[o][d]);
        for (unsigned y = 0; y < 2; y++)
            for (unsigned x = 0; x < 3; x++)
                for (unsigned c = 0; c < 3; c++) {
                    size_t idx = o == 0   ? (y * 3 + x) * 3 + c
                                 : o == 1 ? (c * 2 + y) * 3 + x
                                 : o == 2 ? (x * 2 + y) * 3 + c
                                          : (c * 3 + x) * 2 + y;
                    float want = (float)(10 * (y * 3 + x) + (2 - c)); /* BGR */
                    assert_float_equal(t.data[idx], want, 1e-3);
                }
    }
    arena_destroy(a);
}

static void test_uint8(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    /* 2x1 {0, 1} -> 3x1: source x = -1/6, 1/2, 7/6 -> values 0, 0.5, 1.
     * 0.5 rounds to even (0); scaling is not applied. */
    const uint8_t px[2] = {0, 1};
    image_rgb_t img = grey_image(a, 2, 1, px);
    image_spec_t spec = make_spec(a, "NHWC", "SQUASH", "3x1", "L", 2.0, "UINT8");
    assert_true(spec.uint8);
    nn_tensor_t t;
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_float_equal(t.data[0], 0, 0);
    assert_float_equal(t.data[1], 0, 0);
    assert_float_equal(t.data[2], 1, 0);
    /* 0.75 -> 1, and FILL's white canvas is 255. */
    const uint8_t q[2] = {0, 3};
    img = grey_image(a, 2, 1, q);
    spec = make_spec(a, "NHWC", "SQUASH", "4x1", "RGB", 1.0, "UINT8");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_float_equal(t.data[3], 1, 0); /* 0.75 */
    assert_float_equal(t.data[6], 2, 0); /* 2.25 */
    spec = make_spec(a, "NHWC", "FILL", "4x4", "L", 1.0, "UINT8");
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_float_equal(t.data[0], 255, 0);
    arena_destroy(a);
}

static void test_bbox_validation(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    const uint8_t px[4] = {1, 2, 3, 4};
    image_rgb_t img = grey_image(a, 2, 2, px);
    image_spec_t spec = make_spec(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "FLOAT32");
    const image_bbox_t bad[] = {
        {-0.1, 0, 1, 1},  {0, 0, 1.1, 1}, {0.5, 0, 0.5, 1},    {0.6, 0, 0.5, 1},
        {0, 0.7, 1, 0.2}, {NAN, 0, 1, 1}, {0, 0, INFINITY, 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nn_error_t err;
        nn_error_init(&err);
        nn_tensor_t t;
        assert_false(image_preprocess(a, &img, &bad[i], &spec, &t, &err));
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "validation_error");
        assert_int_equal(err.nfields, 1);
        assert_string_equal(err.fields[0].path, "bbox");
        nn_error_init(&err);
        assert_false(image_bbox_check(&bad[i], "inputs[0].image.bbox", &err));
        assert_string_equal(err.fields[0].path, "inputs[0].image.bbox");
    }
    /* The whole image and a tiny box are fine; a tiny box keeps a pixel. */
    const image_bbox_t good[] = {{0, 0, 1, 1}, {0.5, 0.5, 0.5000001, 0.5000001}};
    for (size_t i = 0; i < 2; i++) {
        nn_error_t err;
        nn_error_init(&err);
        nn_tensor_t t;
        assert_true(image_preprocess(a, &img, &good[i], &spec, &t, &err));
    }
    arena_destroy(a);
}

/* ---- mean files ----------------------------------------------------------------- */

static char tmpdir[] = "/tmp/nnreg-test-image-XXXXXX";

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

/* A .npy v1.0 file: dict then raw data. */
static size_t npy_bytes(unsigned char *out, const char *dict, const void *data, size_t len)
{
    size_t hlen = strlen(dict) + 1;
    while ((10 + hlen) % 64)
        hlen++;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)hlen;
    out[9] = 0;
    memset(out + 10, ' ', hlen);
    memcpy(out + 10, dict, strlen(dict));
    out[10 + hlen - 1] = '\n';
    memcpy(out + 10 + hlen, data, len);
    return 10 + hlen + len;
}

static void test_mean_files(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    unsigned char file[4096];
    nn_error_t err;
    image_spec_t spec;
    const uint8_t px[4] = {255, 255, 255, 255};
    image_rgb_t img = grey_image(a, 2, 2, px);
    nn_tensor_t t;

    /* float64, little-endian, per channel (in the tensor's BGR order). */
    const double m64[3] = {0.25, 0.5, 0.75};
    size_t n = npy_bytes(file, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", m64,
                         sizeof(m64));
    const char *p = write_tmp("m64.npy", file, n);
    nn_error_init(&err);
    assert_true(image_spec_from_json(
        a, spec_json(a, "NCHW", "SQUASH", "2x2", "BGR", 1.0, "m64.npy", "FLOAT32"), p, &spec,
        &err));
    assert_int_equal(spec.mean_ndims, 1);
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    assert_float_equal(t.data[0], 0.75, 1e-6); /* B plane */
    assert_float_equal(t.data[4], 0.5, 1e-6);  /* G */
    assert_float_equal(t.data[8], 0.25, 1e-6); /* R */

    /* float32 big-endian, full image (1, 2, 2, 3): leading 1 dropped. */
    unsigned char be[48];
    for (int i = 0; i < 12; i++) {
        float f = (float)i / 100.0f;
        uint32_t b;
        memcpy(&b, &f, 4);
        for (int k = 0; k < 4; k++)
            be[i * 4 + k] = (unsigned char)(b >> (24 - 8 * k));
    }
    n = npy_bytes(file, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2, 2, 3), }", be,
                  sizeof(be));
    p = write_tmp("full.npy", file, n);
    nn_error_init(&err);
    assert_true(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "full.npy", "FLOAT32"), p, &spec,
        &err));
    assert_int_equal(spec.mean_ndims, 3);
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    for (int i = 0; i < 12; i++)
        assert_float_equal(t.data[i], 1.0f - (float)i / 100.0f, 1e-6);

    /* A Caffe .binaryproto: shape (1, 3, 2, 2) in legacy fields, packed
     * floats; CHW for an NHWC tensor (not the tensor's order: still fits). */
    unsigned char blob[256];
    size_t bl = 0;
    const unsigned legacy[4] = {1, 3, 2, 2};
    for (unsigned f = 0; f < 4; f++) {
        blob[bl++] = (unsigned char)((f + 1) << 3); /* varint */
        blob[bl++] = (unsigned char)legacy[f];
    }
    blob[bl++] = (5 << 3) | 2;
    blob[bl++] = 48;
    for (int i = 0; i < 12; i++) {
        float f = (float)i;
        memcpy(blob + bl, &f, 4);
        bl += 4;
    }
    p = write_tmp("mean.binaryproto", blob, bl);
    nn_error_init(&err);
    assert_true(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 255.0, "mean.binaryproto", "FLOAT32"), p,
        &spec, &err));
    assert_true(image_preprocess(a, &img, NULL, &spec, &t, &err));
    for (unsigned y = 0; y < 2; y++)
        for (unsigned x = 0; x < 2; x++)
            for (unsigned c = 0; c < 3; c++)
                assert_float_equal(t.data[(y * 2 + x) * 3 + c], 255.0f - (float)(c * 4 + y * 2 + x),
                                   1e-4);

    /* A mean that does not fit: 400 invalid_mean_file naming the file. */
    const float m4[4] = {1, 2, 3, 4};
    n = npy_bytes(file, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", m4,
                  sizeof(m4));
    p = write_tmp("four.npy", file, n);
    nn_error_init(&err);
    assert_false(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "four.npy", "FLOAT32"), p, &spec,
        &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_mean_file");
    assert_non_null(strstr(err.message, "four.npy"));

    /* A full-image mean with NETWORK: the size is not fixed. */
    p = write_tmp("full.npy", file,
                  npy_bytes(file, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2, 3), }",
                            be, sizeof(be)));
    nn_error_init(&err);
    assert_false(image_spec_from_json(
        a, spec_json(a, "NHWC", "NETWORK", "2", "RGB", 1.0, "full.npy", "FLOAT32"), p, &spec,
        &err));
    assert_string_equal(err.code, "invalid_mean_file");

    /* Damaged .npy, complex values, a missing file. */
    p = write_tmp("bad.npy", "\x93NUMPY\x01\x00", 8);
    nn_error_init(&err);
    assert_false(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "bad.npy", "FLOAT32"), p, &spec,
        &err));
    assert_string_equal(err.code, "invalid_mean_file");
    const double cplx[6] = {0};
    p = write_tmp(
        "c.npy", file,
        npy_bytes(file, "{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }", cplx, 48));
    nn_error_init(&err);
    assert_false(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "c.npy", "FLOAT32"), p, &spec, &err));
    assert_string_equal(err.code, "invalid_mean_file");
    nn_error_init(&err);
    assert_false(image_spec_from_json(
        a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "gone.npy", "FLOAT32"),
        "/nonexistent/gone.npy", &spec, &err));
    assert_int_equal(err.status, 500);
    arena_destroy(a);
}

static void test_spec_damaged(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    const char *bad[] = {
        "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": \"0x2\", "
        "\"color_channels\": \"RGB\"}",
        "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": \"12\", "
        "\"color_channels\": \"RGB\"}",
        "{\"dimension_order\": \"NHWC\", \"resize_type\": \"NETWORK\", \"target_size\": \"12x3\", "
        "\"color_channels\": \"RGB\"}",
        "{\"dimension_order\": \"HWC\", \"resize_type\": \"SQUASH\", \"target_size\": \"2x2\", "
        "\"color_channels\": \"RGB\"}",
        "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": \"2x2\", "
        "\"color_channels\": \"RGBA\"}",
        "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": \"2x2\", "
        "\"color_channels\": \"RGB\", \"data_type\": \"INT8\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nn_error_t err;
        nn_error_init(&err);
        jv_t *v = jv_parse(a, bad[i], strlen(bad[i]), "spec", &err);
        assert_non_null(v);
        image_spec_t spec;
        assert_false(image_spec_from_json(a, v, NULL, &spec, &err));
        assert_int_equal(err.status, 500);
    }
    /* A mean file named, but no path to it given: the caller's mistake. */
    {
        nn_error_t e;
        nn_error_init(&e);
        image_spec_t sp;
        assert_false(image_spec_from_json(
            a, spec_json(a, "NHWC", "SQUASH", "2x2", "RGB", 1.0, "mean.npy", "FLOAT32"), NULL, &sp,
            &e));
        assert_int_equal(e.status, 500);
    }
    /* Defaults: pixel_scaling 255, FLOAT32; a NETWORK size given as a number. */
    const char *ok = "{\"dimension_order\": \"NHWC\", \"resize_type\": \"NETWORK\", "
                     "\"target_size\": 512, \"color_channels\": \"L\"}";
    nn_error_t err;
    nn_error_init(&err);
    image_spec_t spec;
    assert_true(
        image_spec_from_json(a, jv_parse(a, ok, strlen(ok), "spec", &err), NULL, &spec, &err));
    assert_float_equal(spec.pixel_scaling, 255.0, 0);
    assert_false(spec.uint8);
    assert_int_equal(spec.target_width, 512);
    assert_int_equal(spec.channels, IMAGE_CHANNELS_L);
    arena_destroy(a);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases),    cmocka_unit_test(test_network_inputs),
        cmocka_unit_test(test_bilinear_by_hand), cmocka_unit_test(test_geometry_by_hand),
        cmocka_unit_test(test_layouts_by_hand),  cmocka_unit_test(test_uint8),
        cmocka_unit_test(test_bbox_validation),  cmocka_unit_test(test_mean_files),
        cmocka_unit_test(test_spec_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
