/* libFuzzer harness: JPEG and PNG decoding, then a small preprocessing of
 * whatever decoded (so every decoded size meets the resize code too). */
#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    if (!arena)
        return 0;
    nn_error_t err;
    nn_error_init(&err);
    image_rgb_t img;
    /* Decoded sizes are capped so one input cannot take the whole run. */
    if (image_decode(arena, data, size, &img, &err) &&
        (uint64_t)img.width * img.height <= 1u << 22) {
        image_spec_t spec = {.resize = (image_resize_t)(size % 4),
                             .target_width = 7,
                             .target_height = 5,
                             .channels = (image_channels_t)(size % 3),
                             .order = (image_order_t)((size / 4) % 4),
                             .pixel_scaling = 1.0};
        image_bbox_t bbox = {0.1, 0.2, 0.9, 0.7};
        nn_tensor_t t;
        (void)image_preprocess(arena, &img, size % 2 ? &bbox : NULL, &spec, &t, &err);
    }
    arena_destroy(arena);
    return 0;
}
