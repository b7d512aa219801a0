/* image.h - image decoding and the preprocessing of API.md ("Image
 * preprocessing, exactly"): decode, crop to the bbox, resize (SQUASH, CROP,
 * FILL, NETWORK; bilinear with half-pixel centres, in float), channels
 * (RGB, BGR, L), scale, mean, layout (NHWC, NCHW, NWHC, NCWH), data type.
 *
 * Decoding uses libjpeg-turbo and libpng; a grey image becomes three equal
 * channels and alpha is composited over white.  Images larger than
 * IMAGE_MAX_PIXELS are refused before their pixels are allocated.
 *
 * Decoding details: alpha (an alpha channel or a PNG tRNS chunk) is
 * composited over white in integers, round((v*a + 255*(255 - a)) / 255);
 * palettes are expanded; 16-bit PNG samples are scaled to 8 bits with
 * rounding; PNG gamma and colour-profile chunks are ignored (samples are
 * taken as stored); a CMYK JPEG is taken as Adobe writes it (inverted) and
 * converted with R = C*K/255.  The EXIF orientation of a JPEG is NOT
 * applied: pixels are used in the order they are stored, as TensorFlow's
 * decode_jpeg does.  A JPEG that libjpeg reports as corrupt or truncated
 * is refused rather than decoded with grey filler.
 *
 * Preprocessing details not fixed by API.md: computed sizes (CROP, FILL,
 * NETWORK) are at least 1 pixel; a (C,) mean is indexed in the tensor's
 * channel order (after the BGR swap: a BGR network's mean lists B, G, R);
 * a full-image mean may be laid out HWC, CHW, WHC or CWH (npy_mean_fits),
 * the tensor's own order winning when the shape is ambiguous; UINT8
 * rounds to nearest, ties to even, clamped to 0..255.
 *
 * Errors: bytes that are not a JPEG or PNG, or a damaged one, are a 400
 * "invalid_image"; a bbox outside [0, 1] or empty a 400 "validation_error"
 * on the bbox field; a mean file that does not fit the image a 400
 * "invalid_mean_file". */
#ifndef NNREG_IMAGE_IMAGE_H
#define NNREG_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/jv.h"
#include "util/arena.h"
#include "util/error.h"
#include "util/tensor.h"

#define IMAGE_MAX_PIXELS (64u * 1024u * 1024u)

typedef struct image_rgb {
    unsigned width, height;
    uint8_t *pixels; /* width * height * 3 bytes, R G B, row by row */
} image_rgb_t;

/* Decodes a JPEG or PNG held in memory into arena memory. */
bool image_decode(arena_t *arena, const void *bytes, size_t len, image_rgb_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

typedef struct image_bbox {
    double xmin, ymin, xmax, ymax; /* fractions of width and height */
} image_bbox_t;

typedef enum { IMAGE_RESIZE_SQUASH, IMAGE_RESIZE_CROP, IMAGE_RESIZE_FILL, IMAGE_RESIZE_NETWORK } image_resize_t;
typedef enum { IMAGE_CHANNELS_RGB, IMAGE_CHANNELS_BGR, IMAGE_CHANNELS_L } image_channels_t;
typedef enum { IMAGE_ORDER_NHWC, IMAGE_ORDER_NCHW, IMAGE_ORDER_NWHC, IMAGE_ORDER_NCWH } image_order_t;

/* One preprocessing.inputs[i].image object of a network, with its mean
 * loaded (mean == NULL when the input has no mean file). */
typedef struct image_spec {
    image_resize_t resize;
    unsigned target_width, target_height; /* NETWORK: both hold N */
    image_channels_t channels;
    image_order_t order;
    double pixel_scaling;
    bool uint8; /* data_type UINT8: no scaling, no mean, values rounded */
    const float *mean;
    size_t mean_ndims;
    int64_t mean_shape[4];
} image_spec_t;

/* Reads a network's stored preprocessing.inputs[i].image object (as the
 * API validated it).  mean_path is where its mean file is (the deployed
 * copy), NULL when it has none; the mean's values are read into arena.
 * Stored fields that do not parse, or a mean_file without a mean_path, are
 * a 500 (the stored metadata or the caller is wrong).  The mean (.npy of
 * float32/float64/integers in either byte order, or a Caffe .binaryproto)
 * has its leading 1-dimensions dropped into mean_shape; one that does not
 * fit the input (npy_mean_fits) is a 400 "invalid_mean_file". */
bool image_spec_from_json(arena_t *arena, const jv_t *image, const char *mean_path,
                          image_spec_t *out, nn_error_t *err) __attribute__((warn_unused_result));

/* Checks a bbox: four finite numbers with 0 <= xmin < xmax <= 1 and
 * 0 <= ymin < ymax <= 1.  A failure is a validation error on the field
 * `path` (e.g. "inputs[0].image.bbox").  image_preprocess() runs the same
 * check with the path "bbox"; callers that know the input's index call
 * this first to get the full path. */
bool image_bbox_check(const image_bbox_t *bbox, const char *path, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The output width and height for an image of w x h (after the bbox crop)
 * under spec (NETWORK: the resized size; others: the target). */
void image_output_size(const image_spec_t *spec, unsigned w, unsigned h, unsigned *out_w,
                       unsigned *out_h);

/* The input tensor for one image: batch 1, in spec->order (float values;
 * UINT8 specs give rounded values still stored as float).  bbox may be
 * NULL.  out->data is in arena. */
bool image_preprocess(arena_t *arena, const image_rgb_t *image, const image_bbox_t *bbox,
                      const image_spec_t *spec, nn_tensor_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

#endif
