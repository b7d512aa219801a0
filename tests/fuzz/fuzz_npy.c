/* libFuzzer harness: .npy headers and Caffe .binaryproto blobs. */
#include <stddef.h>
#include <stdint.h>

#include "model/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npy_info_t info;
    nn_error_t err;
    nn_error_init(&err);
    if (npy_parse(data, size, "mean.npy", &info, &err)) {
        char why[128];
        (void)npy_mean_fits(info.shape, info.ndims, 3, 224, 224, why, sizeof(why));
    }
    nn_error_init(&err);
    (void)npy_parse_blobproto(data, size, "mean.binaryproto", &info, &err);
    return 0;
}
