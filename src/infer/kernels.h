/* kernels.h - the engine's op kernels and what they may ask of the runner.
 *
 * A kernel computes every output of one node from its data inputs.  It
 * never allocates for itself: outputs come from kernel_out() (a new
 * buffer), kernel_alias() (the output shares an input's buffer: Identity,
 * Reshape) or kernel_reuse() (the output takes over an input's buffer when
 * this node is that buffer's last reader, for in-place elementwise ops).
 * Buffers are released by the runner once their last reader has run.
 *
 * Values are float32 (IR_F32) or int64 (IR_I64: shapes, axes); kernels
 * that compute take float32 and refuse other kinds with a 400
 * "invalid_input" naming the node.  Errors name the node and the op.
 * Internal to src/infer/. */
#ifndef NNREG_INFER_KERNELS_H
#define NNREG_INFER_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

#include "infer/ir.h"
#include "util/error.h"

typedef struct kernel_ctx kernel_ctx_t;

typedef struct kernel_args {
    kernel_ctx_t *ctx;
    const ir_node_t *node;      /* name, op, attributes */
    const ir_value_t *const *in; /* data inputs, in order */
    size_t nin;
    ir_value_t *out; /* nout outputs to fill */
    size_t nout;
    nn_error_t *err;
    /* Conv2D, DepthwiseConv2dNative and MatMul only: when not NULL, the
     * bias of the BiasAdd that alone reads this output (bias_count values,
     * one per output channel).  A kernel that adds it to its result (one
     * pass less over the activations, and no zeroing of the output) sets
     * bias_used; the runner then skips that BiasAdd. */
    const float *bias;
    size_t bias_count;
    bool bias_used;
} kernel_args_t;

typedef bool (*kernel_fn)(kernel_args_t *a);

/* kernel_def_t.nout values that depend on the node */
#define KERNEL_NOUT_PER_INPUT (-1) /* one per data input (IdentityN) */
#define KERNEL_NOUT_NUM_SPLIT (-2) /* attribute num_split (Split, SplitV) */
#define KERNEL_MAX_SPLIT 64

typedef struct kernel_def {
    const char *op;
    kernel_fn fn;
    int nout; /* outputs, or one of KERNEL_NOUT_* */
} kernel_def_t;

/* The kernel of op, or NULL. */
const kernel_def_t *kernel_find(const char *op);

/* ---- provided by the runner (engine.c) ---------------------------------- */

/* A new buffer for output i of kind and shape; sets a->out[i].  false with
 * a 500 (out of memory) or 400 (shape too large) in a->err. */
bool kernel_out(kernel_args_t *a, size_t i, ir_kind_t kind, const int64_t *dims, size_t ndims)
    __attribute__((warn_unused_result));

/* Output i shares input j's data with another shape (same element count,
 * checked by the caller). */
void kernel_alias(kernel_args_t *a, size_t i, size_t j, const int64_t *dims, size_t ndims);

/* Output i takes input j's buffer (same kind; dims as given, count equal to
 * the input's) when nothing else reads it after this node: true, and the
 * kernel may overwrite it in place.  false: call kernel_out(). */
bool kernel_reuse(kernel_args_t *a, size_t i, size_t j, const int64_t *dims, size_t ndims);

/* Helpers for kernels. */
bool kernel_fail(kernel_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool kernel_need_f32(kernel_args_t *a, size_t j);

/* Float32 GEMM helpers used by conv and matmul (row-major):
 * C[m x n] = A[m x k] * B[k x n] (+ C when accumulate). */
void kernel_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const float *A,
                  size_t lda, const float *B, size_t ldb, float *C, size_t ldc, bool accumulate);

/* rows x n floats at dst, each row a copy of the n floats at v. */
void kernel_fill_rows(float *dst, const float *v, size_t rows, size_t n);

/* Conv kernels (conv.c). */
bool kernel_conv2d(kernel_args_t *a);
bool kernel_depthwise(kernel_args_t *a);
bool kernel_avgpool(kernel_args_t *a);
bool kernel_maxpool(kernel_args_t *a);

/* Padding of one spatial dimension as TensorFlow computes it:
 * SAME (out = ceil(in/stride), the extra padding after), VALID, or
 * EXPLICIT (before/after given).  false when the output would be empty. */
typedef enum { PAD_SAME, PAD_VALID, PAD_EXPLICIT } pad_mode_t;
bool kernel_window(pad_mode_t mode, int64_t in, int64_t k, int64_t stride, int64_t dilation,
                   int64_t explicit_before, int64_t explicit_after, int64_t *out, int64_t *pad_before);

#endif
