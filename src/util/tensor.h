/* tensor.h - the dense float32 tensor that image preprocessing produces and
 * the inference engine consumes and returns.
 *
 * Row-major; dims[0] is the batch (always 1 for a preprocessed image).
 * The data is owned by whoever allocated it (an arena, normally); this
 * header only describes it. */
#ifndef NNREG_UTIL_TENSOR_H
#define NNREG_UTIL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define NN_TENSOR_MAX_DIMS 8

typedef struct nn_tensor {
    const char *name;   /* "node:0" where it has one; NULL otherwise */
    size_t ndims;
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t count;       /* product of dims (1 for a scalar) */
    float *data;        /* count values */
} nn_tensor_t;

#endif
