/* Unit tests: image decoding (image/decode.c).
 *
 * Images are written here with libjpeg and libpng themselves (RGB, grey,
 * 16-bit, palette with transparency, interlaced), decoded, and compared
 * with what was written (JPEG within its lossy error) or with libpng's
 * independent "simplified" reader plus the alpha rule of the fixture
 * README.  Damaged, truncated and oversized images must be a 400
 * invalid_image, leak nothing (ASan) and allocate nothing big. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jpeglib.h>
#include <png.h>

#include "image/image.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes_t;

static void put(bytes_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void assert_invalid_image(const nn_error_t *err, const char *needle)
{
    assert_int_equal(err->status, 400);
    assert_string_equal(err->code, "invalid_image");
    if (needle && !strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
}

/* ---- writing JPEGs ------------------------------------------------------------ */

/* A w x h JPEG of `components` (3: RGB, 1: grey) from pixels. */
static bytes_t make_jpeg(unsigned w, unsigned h, int components, const uint8_t *pixels, int quality)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long mem_len = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &mem_len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = components;
    c.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * w * components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    bytes_t b = {0};
    put(&b, mem, mem_len);
    free(mem);
    return b;
}

static uint8_t *gradient(unsigned w, unsigned h, int components)
{
    uint8_t *p = malloc((size_t)w * h * components);
    assert_non_null(p);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            for (int c = 0; c < components; c++)
                p[((size_t)y * w + x) * components + c] =
                    (uint8_t)(c == 0   ? x * 255 / (w - 1)
                              : c == 1 ? y * 255 / (h - 1)
                                       : (x + y) * 255 / (w + h - 2));
    return p;
}

/* ---- writing PNGs ----------------------------------------------------------------- */

static void png_write_mem(png_structp png, png_bytep data, size_t n)
{
    put(png_get_io_ptr(png), data, n);
}

static void png_flush_mem(png_structp png)
{
    (void)png;
}

typedef struct png_opts {
    int color_type, bit_depth;
    bool interlace;
    const png_color *palette;
    int npalette;
    const png_byte *trans;
    int ntrans;
    bool header_only; /* stop after the IHDR (huge declared sizes) */
} png_opts_t;

/* rows: h rows of png_get_rowbytes bytes (16-bit samples big-endian). */
static bytes_t make_png(unsigned w, unsigned h, const png_opts_t *o, const uint8_t *data)
{
    bytes_t b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not write the test image");
    png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, w, h, o->bit_depth, o->color_type,
                 o->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (o->palette)
        png_set_PLTE(png, info, o->palette, o->npalette);
    if (o->trans)
        png_set_tRNS(png, info, o->trans, o->ntrans, NULL);
    png_write_info(png, info);
    if (!o->header_only) {
        size_t rowbytes = png_get_rowbytes(png, info);
        png_bytepp rows = malloc(h * sizeof(png_bytep));
        assert_non_null(rows);
        for (unsigned y = 0; y < h; y++)
            rows[y] = (png_bytep)(data + (size_t)y * rowbytes);
        png_write_image(png, rows);
        png_write_end(png, info);
        free(rows);
    }
    png_destroy_write_struct(&png, &info);
    return b;
}

/* ---- tests ------------------------------------------------------------------------ */

/* The fixture PNGs against libpng's simplified API (RGBA) and the README's
 * compositing rule. */
static void test_fixture_pngs(void **state)
{
    (void)state;
    const char *names[] = {"landscape_320x240_rgb.png", "portrait_180x300_rgb.png",
                           "grey_alpha_97x61.png"};
    for (size_t k = 0; k < 3; k++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/preprocessing/images/%s", NNREG_FIXTURES, names[k]);
        size_t len;
        unsigned char *bytes = read_file(path, &len);
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        image_rgb_t img;
        assert_true(image_decode(a, bytes, len, &img, &err));

        png_image ref;
        memset(&ref, 0, sizeof(ref));
        ref.version = PNG_IMAGE_VERSION;
        assert_true(png_image_begin_read_from_memory(&ref, bytes, len));
        ref.format = PNG_FORMAT_RGBA;
        unsigned char *rgba = malloc(PNG_IMAGE_SIZE(ref));
        assert_non_null(rgba);
        assert_true(png_image_finish_read(&ref, NULL, rgba, 0, NULL));
        assert_int_equal(img.width, ref.width);
        assert_int_equal(img.height, ref.height);
        size_t below = 0;
        for (size_t i = 0; i < (size_t)ref.width * ref.height; i++) {
            unsigned a8 = rgba[4 * i + 3];
            below += a8 < 255;
            for (int c = 0; c < 3; c++) {
                double v = (rgba[4 * i + c] * (double)a8 + 255.0 * (255 - a8)) / 255.0;
                unsigned want = (unsigned)(v + 0.5);
                if (img.pixels[3 * i + c] != want)
                    fail_msg("%s pixel %zu channel %d: %u, expected %u", names[k], i, c,
                             img.pixels[3 * i + c], want);
            }
        }
        if (k == 2)
            assert_true(below > 0); /* the alpha case really has alpha */
        free(rgba);
        free(bytes);
        arena_destroy(a);
    }
}

static void test_jpeg(void **state)
{
    (void)state;
    const unsigned w = 64, h = 48;
    for (int components = 1; components <= 3; components += 2) {
        uint8_t *src = gradient(w, h, components);
        bytes_t jpg = make_jpeg(w, h, components, src, 95);
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        image_rgb_t img;
        if (!image_decode(a, jpg.p, jpg.len, &img, &err))
            fail_msg("%s", err.message);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        double total = 0;
        int worst = 0;
        for (size_t i = 0; i < (size_t)w * h; i++)
            for (int c = 0; c < 3; c++) {
                int want = src[i * components + (components == 3 ? c : 0)];
                int d = abs((int)img.pixels[3 * i + c] - want);
                worst = d > worst ? d : worst;
                total += d;
                if (components == 1) /* grey: three equal channels */
                    assert_int_equal(img.pixels[3 * i + c], img.pixels[3 * i]);
            }
        /* Quality 95 on a smooth gradient: a few levels at most. */
        assert_true(worst <= 12);
        assert_true(total / (w * h * 3) < 2.0);
        free(src);
        free(jpg.p);
        arena_destroy(a);
    }
}

/* A binary PNM (P5 grey or P6 RGB, maxval 255) as RGB. */
static unsigned char *read_pnm(const char *path, unsigned *w, unsigned *h)
{
    size_t len;
    unsigned char *buf = read_file(path, &len);
    int kind = 0, off = 0;
    unsigned maxval = 0;
    if (sscanf((const char *)buf, "P%d %u %u %u%n", &kind, w, h, &maxval, &off) != 4 ||
        (kind != 5 && kind != 6) || maxval != 255)
        fail_msg("%s: not a binary PNM", path);
    off++; /* the single whitespace byte after maxval */
    int ch = kind == 6 ? 3 : 1;
    assert_int_equal(len, (size_t)off + (size_t)*w * *h * ch);
    unsigned char *rgb = malloc((size_t)*w * *h * 3);
    assert_non_null(rgb);
    for (size_t i = 0; i < (size_t)*w * *h; i++)
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] = buf[off + i * ch + (ch == 3 ? c : 0)];
    free(buf);
    return rgb;
}

/* JPEGs made by cjpeg, against djpeg's decoding of them (same library,
 * default settings: equal up to one level), and against their source. */
static void test_jpeg_fixtures(void **state)
{
    (void)state;
    const char *names[] = {"rgb_40x30_q90", "rgb_40x30_q90_progressive", "grey_40x30_q90"};
    char path[1024];
    unsigned sw, sh;
    snprintf(path, sizeof(path), "%s/images/source_40x30.ppm", NNREG_FIXTURES);
    unsigned char *source = read_pnm(path, &sw, &sh);
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/images/%s.jpg", NNREG_FIXTURES, names[k]);
        size_t len;
        unsigned char *bytes = read_file(path, &len);
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        image_rgb_t img;
        if (!image_decode(a, bytes, len, &img, &err))
            fail_msg("%s: %s", names[k], err.message);
        unsigned w, h;
        snprintf(path, sizeof(path), "%s/images/%s.djpeg.pnm", NNREG_FIXTURES, names[k]);
        unsigned char *ref = read_pnm(path, &w, &h);
        assert_int_equal(img.width, w);
        assert_int_equal(img.height, h);
        assert_int_equal(w, sw);
        double err_sum = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            if (abs((int)img.pixels[i] - ref[i]) > 1)
                fail_msg("%s byte %zu: %u, djpeg %u", names[k], i, img.pixels[i], ref[i]);
            err_sum += abs((int)img.pixels[i] - source[i]);
        }
        if (k < 2) { /* colour: close to the source on average */
            print_message("    %s: mean |difference| from the source %.2f\n", names[k],
                          err_sum / (w * h * 3));
            assert_true(err_sum / (w * h * 3) < 10.0); /* 4:2:0 chroma on sharp edges: ~7 */
        }
        free(ref);
        free(bytes);
        arena_destroy(a);
    }
    free(source);
}

/* CMYK as Adobe writes it (inverted): R = C·K/255 on the stored values. */
static void test_jpeg_cmyk(void **state)
{
    (void)state;
    const unsigned w = 16, h = 16;
    uint8_t *cmyk = malloc(w * h * 4);
    for (size_t i = 0; i < w * h; i++) {
        cmyk[4 * i + 0] = 200;
        cmyk[4 * i + 1] = 100;
        cmyk[4 * i + 2] = 50;
        cmyk[4 * i + 3] = i < w * h / 2 ? 255 : 128;
    }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long mem_len = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &mem_len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = cmyk + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    image_rgb_t img;
    /* libjpeg's buffer goes before any assertion can end the test: a
     * failed one would leak it (scripts/allocfail fails the decoder's
     * allocations here on purpose). */
    bool decoded = image_decode(a, mem, mem_len, &img, &err);
    free(mem);
    free(cmyk);
    if (!decoded)
        fail_msg("%s", err.message);
    const int top[3] = {200, 100, 50}, bottom[3] = {100, 50, 25};
    for (int c3 = 0; c3 < 3; c3++) {
        assert_true(abs(img.pixels[c3] - top[c3]) <= 2);
        assert_true(abs(img.pixels[(w * h - 1) * 3 + c3] - bottom[c3]) <= 2);
    }
    arena_destroy(a);
}

static void test_png_formats(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    image_rgb_t img;

    /* 16-bit RGB: scaled to 8 bits with rounding. */
    const unsigned w = 5, h = 3;
    uint8_t d16[5 * 3 * 6];
    for (size_t i = 0; i < w * h * 3; i++) {
        unsigned v = (unsigned)(i * 4321 + 77) % 65536;
        d16[2 * i] = (uint8_t)(v >> 8);
        d16[2 * i + 1] = (uint8_t)v;
    }
    png_opts_t o16 = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 16};
    bytes_t b = make_png(w, h, &o16, d16);
    nn_error_init(&err);
    assert_true(image_decode(a, b.p, b.len, &img, &err));
    for (size_t i = 0; i < w * h * 3; i++) {
        unsigned v = (unsigned)d16[2 * i] << 8 | d16[2 * i + 1];
        double exact = v / 257.0;
        assert_true(fabs(img.pixels[i] - exact) <= 0.5 + 1e-9);
    }
    free(b.p);

    /* 16-bit grey: three equal channels, v·257 gives v back. */
    uint8_t g16[5 * 3 * 2];
    for (size_t i = 0; i < w * h; i++) {
        unsigned v = (unsigned)(i * 17) * 257;
        g16[2 * i] = (uint8_t)(v >> 8);
        g16[2 * i + 1] = (uint8_t)v;
    }
    png_opts_t og = {.color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 16};
    b = make_png(w, h, &og, g16);
    nn_error_init(&err);
    assert_true(image_decode(a, b.p, b.len, &img, &err));
    for (size_t i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(img.pixels[3 * i + c], i * 17);
    free(b.p);

    /* 1-bit grey: 0 and 255. */
    uint8_t g1[3] = {0xa0, 0x50, 0xff}; /* 5 pixels a row, packed high bits first */
    png_opts_t o1 = {.color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 1};
    b = make_png(w, h, &o1, g1);
    nn_error_init(&err);
    assert_true(image_decode(a, b.p, b.len, &img, &err));
    assert_int_equal(img.pixels[0], 255);
    assert_int_equal(img.pixels[3], 0);
    assert_int_equal(img.pixels[6], 255);
    assert_int_equal(img.pixels[3 * 5 + 3], 255); /* row 1 = 0x50: 0 1 0 1 0 */
    free(b.p);

    /* Palette with transparency: expanded, composited over white. */
    const png_color pal[3] = {{200, 0, 0}, {0, 100, 0}, {10, 20, 30}};
    const png_byte trans[2] = {0, 128}; /* entry 0 transparent, 1 half, 2 opaque */
    uint8_t idx[5 * 3];
    for (size_t i = 0; i < w * h; i++)
        idx[i] = (uint8_t)(i % 3);
    png_opts_t op = {.color_type = PNG_COLOR_TYPE_PALETTE,
                     .bit_depth = 8,
                     .palette = pal,
                     .npalette = 3,
                     .trans = trans,
                     .ntrans = 2};
    b = make_png(w, h, &op, idx);
    nn_error_init(&err);
    assert_true(image_decode(a, b.p, b.len, &img, &err));
    const uint8_t want[3][3] = {
        {255, 255, 255},                                 /* alpha 0 */
        {127, (100 * 128 + 255 * 127 + 127) / 255, 127}, /* alpha 128 */
        {10, 20, 30},                                    /* opaque */
    };
    for (size_t i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(img.pixels[3 * i + c], want[i % 3][c]);
    free(b.p);

    /* Interlaced RGB decodes to the same pixels as the plain one. */
    uint8_t *rgb = gradient(33, 17, 3);
    png_opts_t oi = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8, .interlace = true};
    b = make_png(33, 17, &oi, rgb);
    nn_error_init(&err);
    assert_true(image_decode(a, b.p, b.len, &img, &err));
    assert_memory_equal(img.pixels, rgb, 33 * 17 * 3);
    free(b.p);
    free(rgb);
    arena_destroy(a);
}

static void test_not_images(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    image_rgb_t img;
    nn_error_init(&err);
    assert_false(image_decode(a, "", 0, &img, &err));
    assert_invalid_image(&err, "empty");
    nn_error_init(&err);
    assert_false(image_decode(a, "GIF89a\x01\x00\x01\x00", 10, &img, &err));
    assert_invalid_image(&err, "neither a JPEG nor a PNG");
    nn_error_init(&err);
    assert_false(image_decode(a, "\x89PNG\r\n\x1a\n", 8, &img, &err));
    assert_invalid_image(&err, "PNG");
    nn_error_init(&err);
    assert_false(image_decode(a, "\xff\xd8\xff", 3, &img, &err));
    assert_invalid_image(&err, "JPEG");
    arena_destroy(a);
}

/* Every prefix of a small JPEG and PNG fails cleanly (a PNG may lack only
 * its IEND chunk); single damaged bytes never crash. */
static void test_truncated_and_damaged(void **state)
{
    (void)state;
    uint8_t *src = gradient(24, 16, 3);
    bytes_t jpg = make_jpeg(24, 16, 3, src, 90);
    png_opts_t o = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8};
    bytes_t png = make_png(24, 16, &o, src);
    arena_t *a = arena_create(0);
    nn_error_t err;
    image_rgb_t img;

    for (size_t n = 0; n < jpg.len; n++) {
        unsigned char *copy = malloc(n + 1); /* exactly n bytes readable (ASan) */
        memcpy(copy, jpg.p, n);
        nn_error_init(&err);
        if (image_decode(a, copy, n, &img, &err))
            fail_msg("a JPEG cut to %zu of %zu bytes was accepted", n, jpg.len);
        assert_invalid_image(&err, NULL);
        free(copy);
    }
    for (size_t n = 0; n < png.len; n++) {
        unsigned char *copy = malloc(n + 1);
        memcpy(copy, png.p, n);
        nn_error_init(&err);
        bool ok = image_decode(a, copy, n, &img, &err);
        if (n + 12 >= png.len) /* only (part of) IEND missing: the pixels are all there */
            assert_true(ok);
        else if (ok)
            fail_msg("a PNG cut to %zu of %zu bytes was accepted", n, png.len);
        else
            assert_invalid_image(&err, NULL);
        free(copy);
    }

    /* A damaged IDAT byte: libpng's CRC check catches it. */
    unsigned char *bad = malloc(png.len);
    memcpy(bad, png.p, png.len);
    unsigned char *idat = memmem(bad, png.len, "IDAT", 4);
    assert_non_null(idat);
    idat[10] ^= 0x55;
    nn_error_init(&err);
    assert_false(image_decode(a, bad, png.len, &img, &err));
    assert_invalid_image(&err, "damaged");
    free(bad);

    /* A JPEG whose SOF segment length is nonsense. */
    bad = malloc(jpg.len);
    memcpy(bad, jpg.p, jpg.len);
    unsigned char *sof = memmem(bad, jpg.len, "\xff\xc0", 2);
    assert_non_null(sof);
    sof[2] = 0;
    sof[3] = 2;
    nn_error_init(&err);
    assert_false(image_decode(a, bad, jpg.len, &img, &err));
    assert_invalid_image(&err, "damaged");
    free(bad);

    /* Every single byte of the JPEG flipped in turn: never a crash or a
     * leak (many flips only change pixels, which is not detectable). */
    bad = malloc(jpg.len);
    for (size_t i = 0; i < jpg.len; i++) {
        memcpy(bad, jpg.p, jpg.len);
        bad[i] ^= 0xff;
        nn_error_init(&err);
        if (!image_decode(a, bad, jpg.len, &img, &err))
            assert_invalid_image(&err, NULL);
    }
    free(bad);
    free(src);
    free(jpg.p);
    free(png.p);
    arena_destroy(a);
}

/* Declared sizes above IMAGE_MAX_PIXELS are refused before any pixel
 * memory is taken. */
static void test_huge_dimensions(void **state)
{
    (void)state;
    nn_error_t err;
    image_rgb_t img;
    png_opts_t o = {.color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8, .header_only = true};
    const unsigned sizes[][2] = {{8193, 8192}, {20000, 20000}, {1000000, 1000000}};
    for (size_t k = 0; k < 3; k++) {
        bytes_t b = make_png(sizes[k][0], sizes[k][1], &o, NULL);
        arena_t *a = arena_create(0);
        nn_error_init(&err);
        assert_false(image_decode(a, b.p, b.len, &img, &err));
        assert_invalid_image(&err, "more than");
        assert_true(arena_bytes_reserved(a) < (1u << 20));
        arena_destroy(a);
        free(b.p);
    }

    /* A JPEG whose SOF0 declares 60000x60000. */
    uint8_t *src = gradient(16, 16, 3);
    bytes_t jpg = make_jpeg(16, 16, 3, src, 90);
    unsigned char *sof = memmem(jpg.p, jpg.len, "\xff\xc0", 2);
    assert_non_null(sof);
    sof[5] = sof[7] = 60000 >> 8;
    sof[6] = sof[8] = 60000 & 0xff;
    arena_t *a = arena_create(0);
    nn_error_init(&err);
    assert_false(image_decode(a, jpg.p, jpg.len, &img, &err));
    assert_invalid_image(&err, "60000x60000");
    assert_true(arena_bytes_reserved(a) < (1u << 20));
    arena_destroy(a);
    free(jpg.p);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_pngs),          cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_jpeg_fixtures),         cmocka_unit_test(test_jpeg_cmyk),
        cmocka_unit_test(test_png_formats),           cmocka_unit_test(test_not_images),
        cmocka_unit_test(test_truncated_and_damaged), cmocka_unit_test(test_huge_dimensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
