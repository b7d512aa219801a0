/* decode.c - JPEG (libjpeg-turbo) and PNG (libpng) bytes to 8-bit RGB.
 *
 * Both libraries report fatal errors by calling a function that must not
 * return; we longjmp back into the decoder that called them.  Everything
 * touched after setjmp() and read after the longjmp is either volatile or
 * arena memory (which the arena frees whatever happens), and the library's
 * own state is released on both paths, so a damaged image leaks nothing. */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static bool too_many_pixels(unsigned long long w, unsigned long long h, const char *what,
                            nn_error_t *err)
{
    if (w == 0 || h == 0)
        return !nn_error_set(err, 400, "invalid_image",
                             "the %s declares an empty image (%llux%llu)", what, w, h);
    if (w * h > IMAGE_MAX_PIXELS)
        return !nn_error_set(err, 400, "invalid_image",
                             "the %s is %llux%llu pixels, more than the %u pixels accepted: send "
                             "a smaller image",
                             what, w, h, IMAGE_MAX_PIXELS);
    return false;
}

/* ---- JPEG ------------------------------------------------------------------ */

typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_fail_t;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_fail_t *f = (jpeg_fail_t *)(void *)cinfo->err;
    f->mgr.format_message(cinfo, f->message);
    longjmp(f->jump, 1);
}

/* Warnings (level -1) mean damaged data: libjpeg would otherwise go on and
 * hand back grey filler for a truncated file.  Extraneous bytes before a
 * marker are common in camera files and harmless, so those alone pass.
 * Trace messages (level >= 0) are ignored: nothing is printed to stderr. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_fail_t *f = (jpeg_fail_t *)(void *)cinfo->err;
    if (level >= 0 || f->mgr.msg_code == JWRN_EXTRANEOUS_DATA)
        return;
    f->mgr.format_message(cinfo, f->message);
    longjmp(f->jump, 1);
}

static bool decode_jpeg(arena_t *arena, const unsigned char *bytes, size_t len, image_rgb_t *out,
                        nn_error_t *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_fail_t fail;
    /* Arena memory, so nothing to free after a longjmp; volatile because
     * they are assigned after setjmp. */
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile row = NULL;
    volatile bool refused = false;

    memset(&cinfo, 0, sizeof(cinfo));
    fail.message[0] = '\0';
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    fail.mgr.emit_message = jpeg_on_message;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        if (refused)
            return false;
        return nn_error_set(err, 400, "invalid_image", "the JPEG image is damaged: %s",
                            fail.message[0] ? fail.message : "unknown error");
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
    (void)jpeg_read_header(&cinfo, TRUE);
    if (too_many_pixels(cinfo.image_width, cinfo.image_height, "JPEG image", err)) {
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    /* EXIF orientation is not applied (see image.h); the DCT method stays
     * libjpeg's default (JDCT_ISLOW, exact and the same on every CPU). */
    jpeg_start_decompress(&cinfo);
    const unsigned w = cinfo.output_width, h = cinfo.output_height;
    pixels = arena_alloc(arena, (size_t)w * h * 3);
    row = cmyk ? arena_alloc(arena, (size_t)w * 4) : NULL;
    if (!pixels || (cmyk && !row)) {
        refused = true;
        nn_error_oom(err);
        longjmp(fail.jump, 1);
    }
    while (cinfo.output_scanline < h) {
        unsigned y = cinfo.output_scanline;
        JSAMPROW dst = cmyk ? (JSAMPROW)row : (JSAMPROW)(pixels + (size_t)y * w * 3);
        if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1)
            ERREXIT(&cinfo, JERR_INPUT_EMPTY); /* cannot happen with a memory source */
        if (cmyk) {
            /* Adobe writes CMYK inverted (0 = full ink), which is what
             * nearly every CMYK JPEG is: R = C·K/255 on the stored values. */
            unsigned char *p = pixels + (size_t)y * w * 3;
            for (unsigned x = 0; x < w; x++) {
                unsigned k = row[4 * x + 3];
                for (unsigned c = 0; c < 3; c++)
                    p[3 * x + c] = (unsigned char)((row[4 * x + c] * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->width = w;
    out->height = h;
    out->pixels = pixels;
    return true;
}

/* ---- PNG ------------------------------------------------------------------- */

typedef struct png_src {
    const unsigned char *p;
    size_t left;
    char message[256];
    bool refused; /* err already filled (size, memory) */
} png_src_t;

static void png_on_read(png_structp png, png_bytep data, size_t n)
{
    png_src_t *src = png_get_io_ptr(png);
    if (n > src->left)
        png_error(png, "the file ends early (truncated)");
    memcpy(data, src->p, n);
    src->p += n;
    src->left -= n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src_t *src = png_get_error_ptr(png);
    if (!src->message[0])
        snprintf(src->message, sizeof(src->message), "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* ancillary trouble (a bad text chunk): the pixels are fine */
}

/* Composites RGBA over white in integers, in place (the RGB pixel i is
 * written at 3i, never past the RGBA pixel 4i still to be read):
 * round((v·a + 255·(255 − a)) / 255), whose quotient is never exactly .5. */
static void composite_over_white(unsigned char *p, size_t npixels)
{
    for (size_t i = 0; i < npixels; i++) {
        unsigned a = p[4 * i + 3];
        for (unsigned c = 0; c < 3; c++) {
            unsigned v = p[4 * i + c] * a + 255u * (255u - a);
            p[3 * i + c] = (unsigned char)((2 * v + 255) / 510);
        }
    }
}

static bool decode_png(arena_t *arena, const unsigned char *bytes, size_t len, image_rgb_t *out,
                       nn_error_t *err)
{
    /* The IHDR must come first: its size is checked before libpng reads
     * further (so a huge declared image is refused even when the rest of
     * the file is missing, and whatever libpng would allocate for it). */
    if (len >= 24 && memcmp(bytes + 12, "IHDR", 4) == 0) {
        unsigned long long w =
            (unsigned long long)bytes[16] << 24 | bytes[17] << 16 | bytes[18] << 8 | bytes[19];
        unsigned long long h =
            (unsigned long long)bytes[20] << 24 | bytes[21] << 16 | bytes[22] << 8 | bytes[23];
        if (w && h && too_many_pixels(w, h, "PNG image", err))
            return false;
    }
    png_src_t src = {.p = bytes, .left = len};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return nn_error_oom(err);
    }
    unsigned char *volatile pixels = NULL;
    png_bytepp volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        if (src.refused)
            return false;
        return nn_error_set(err, 400, "invalid_image", "the PNG image is damaged: %s",
                            src.message[0] ? src.message : "unknown error");
    }
    png_set_read_fn(png, &src, png_on_read);
    /* Ancillary chunks (text, ICC profiles) cannot make us allocate much. */
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (too_many_pixels(w, h, "PNG image", err)) {
        src.refused = true;
        png_longjmp(png, 1);
    }
    int color = png_get_color_type(png, info);
    /* Everything to 8-bit RGB or RGBA: palettes expanded, tRNS made alpha,
     * low bit depths widened, 16-bit scaled to 8 with rounding (not the
     * high byte), grey replicated to three channels.  No gamma correction:
     * the samples are taken as they are stored. */
    png_set_expand(png);
    png_set_scale_16(png);
    if (!(color & PNG_COLOR_MASK_COLOR))
        png_set_gray_to_rgb(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const unsigned channels = png_get_channels(png, info);
    if ((channels != 3 && channels != 4) || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * channels)
        png_error(png, "unexpected pixel format after conversion");
    pixels = arena_alloc(arena, (size_t)w * h * channels);
    rows = arena_alloc(arena, (size_t)h * sizeof(png_bytep));
    if (!pixels || !rows) {
        src.refused = true;
        nn_error_oom(err);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * w * channels;
    png_read_image(png, rows);
    /* png_read_end is not called: the pixels are complete, and a file that
     * only lacks its IEND chunk is still a good image. */
    png_destroy_read_struct(&png, &info, NULL);
    if (channels == 4)
        composite_over_white(pixels, (size_t)w * h);
    out->width = w;
    out->height = h;
    out->pixels = pixels;
    return true;
}

/* ---- entry ----------------------------------------------------------------- */

bool image_decode(arena_t *arena, const void *bytes, size_t len, image_rgb_t *out, nn_error_t *err)
{
    const unsigned char *b = bytes;
    memset(out, 0, sizeof(*out));
    if (len >= 8 && memcmp(b, png_signature, 8) == 0)
        return decode_png(arena, b, len, out, err);
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return decode_jpeg(arena, b, len, out, err);
    if (len == 0)
        return nn_error_set(err, 400, "invalid_image", "the image is empty (0 bytes)");
    return nn_error_set(err, 400, "invalid_image",
                        "the image is neither a JPEG nor a PNG (%zu bytes that start with "
                        "neither signature): send a JPEG or PNG file",
                        len);
}
