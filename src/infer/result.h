/* result.h - an inference task's data: {"tensors": [{"name": "node:N",
 * "shape": [...], "dims": [...], "data": [...]}]}, in fetch order.  dims
 * repeats shape (older versions of the official client read one, newer
 * the other); data is row-major, each value printed with nine significant
 * digits (what %.9g keeps; trailing zeros dropped, an exponent below 1e-5
 * and from 1e9) so that the float32 reads back exactly; a NaN or infinite
 * value is null (JSON has no such numbers). */
#ifndef NNREG_INFER_RESULT_H
#define NNREG_INFER_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/tensor.h"

/* Appends the JSON text for n tensors to b.  false when out of memory. */
bool infer_result_json(nn_buf_t *b, const nn_tensor_t *tensors, size_t n);

/* One value as the data array writes it, into out (at least 24 bytes);
 * returns the length (not NUL-terminated). */
int infer_result_format_float(float v, char *out);

#endif
