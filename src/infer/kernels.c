/* kernels.c - elementwise, reduction, shape and normalization kernels, and
 * the table of every op the engine runs: see kernels.h.  Convolutions and
 * pooling are in conv.c.
 *
 * Loops are plain C over contiguous float arrays so that the compiler can
 * vectorize them; broadcasting follows NumPy (shapes aligned on the right,
 * a dimension of 1 stretches). */
#include "infer/kernels.h"

#include "infer/simd.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

static const char *attr_str(const ir_node_t *n, const char *key, const char *def)
{
    const ir_attr_t *a = ir_attr(n, key);
    return a && a->kind == IR_ATTR_S ? a->s : def;
}

static bool attr_bool(const ir_node_t *n, const char *key, bool def)
{
    const ir_attr_t *a = ir_attr(n, key);
    return a && a->kind == IR_ATTR_B ? a->b : def;
}

static float attr_float(const ir_node_t *n, const char *key, float def)
{
    const ir_attr_t *a = ir_attr(n, key);
    return a && a->kind == IR_ATTR_F ? a->f : def;
}

static bool need_inputs(kernel_args_t *a, size_t n)
{
    if (a->nin < n)
        return kernel_fail(a, "expects %zu inputs, has %zu", n, a->nin);
    return true;
}

/* Reads an int tensor input (axes, shapes) into out (at most max values). */
static bool int_input(kernel_args_t *a, size_t j, int64_t *out, size_t max, size_t *n)
{
    const ir_value_t *v = a->in[j];
    if (!v->data && v->count)
        return kernel_fail(a, "input %zu has no value", j);
    if (v->count > max)
        return kernel_fail(a, "input %zu has %zu values, more than %zu", j, v->count, max);
    for (size_t i = 0; i < v->count; i++)
        out[i] = v->kind == IR_I64 ? ir_i64(v)[i] : ir_f2i(ir_f32(v)[i]);
    *n = v->count;
    return true;
}

static bool norm_axis(kernel_args_t *a, int64_t axis, size_t ndims, size_t *out)
{
    if (axis < 0)
        axis += (int64_t)ndims;
    if (axis < 0 || (size_t)axis >= ndims)
        return kernel_fail(a, "axis %lld is out of range for %zu dimensions", (long long)axis,
                           ndims);
    *out = (size_t)axis;
    return true;
}

/* ---- identity and shapes ------------------------------------------------- */

static bool k_identity(kernel_args_t *a)
{
    if (!need_inputs(a, 1))
        return false;
    kernel_alias(a, 0, 0, a->in[0]->dims, a->in[0]->ndims);
    return true;
}

static bool k_identity_n(kernel_args_t *a)
{
    for (size_t i = 0; i < a->nin && i < a->nout; i++)
        kernel_alias(a, i, i, a->in[i]->dims, a->in[i]->ndims);
    return true;
}

static bool k_noop(kernel_args_t *a)
{
    (void)a;
    return true;
}

static bool k_reshape(kernel_args_t *a)
{
    int64_t shape[NN_TENSOR_MAX_DIMS];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, 1, shape, NN_TENSOR_MAX_DIMS, &n))
        return false;
    size_t known = 1, unknown = n;
    for (size_t i = 0; i < n; i++) {
        if (shape[i] == -1 && unknown == n)
            unknown = i;
        else if (shape[i] < 0)
            return kernel_fail(a, "the new shape has a bad dimension %lld", (long long)shape[i]);
        else if (__builtin_mul_overflow(known, (size_t)shape[i], &known))
            return kernel_fail(a, "the new shape is too large");
    }
    size_t count = a->in[0]->count;
    if (unknown < n) {
        if (known == 0 || count % known)
            return kernel_fail(a, "cannot reshape %zu values with a -1 dimension", count);
        shape[unknown] = (int64_t)(count / known);
        known = count;
    }
    if (known != count)
        return kernel_fail(a, "cannot reshape %zu values into a shape of %zu", count, known);
    kernel_alias(a, 0, 0, shape, n);
    return true;
}

static bool k_squeeze(kernel_args_t *a)
{
    if (!need_inputs(a, 1))
        return false;
    const ir_value_t *x = a->in[0];
    const ir_attr_t *sd = ir_attr(a->node, "squeeze_dims");
    if (!sd || sd->nints == 0)
        sd = ir_attr(a->node, "axis");
    bool drop[NN_TENSOR_MAX_DIMS] = {false};
    if (sd && sd->nints) {
        for (size_t i = 0; i < sd->nints; i++) {
            size_t ax = 0;
            if (!norm_axis(a, sd->ints[i], x->ndims, &ax))
                return false;
            if (x->dims[ax] != 1)
                return kernel_fail(a, "cannot squeeze dimension %zu of size %lld", ax,
                                   (long long)x->dims[ax]);
            drop[ax] = true;
        }
    } else {
        for (size_t i = 0; i < x->ndims; i++)
            drop[i] = x->dims[i] == 1;
    }
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t n = 0;
    for (size_t i = 0; i < x->ndims; i++)
        if (!drop[i])
            dims[n++] = x->dims[i];
    kernel_alias(a, 0, 0, dims, n);
    return true;
}

static bool k_expand_dims(kernel_args_t *a)
{
    int64_t axis[1];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, 1, axis, 1, &n))
        return false;
    const ir_value_t *x = a->in[0];
    if (n != 1)
        return kernel_fail(a, "the axis must be one value");
    if (x->ndims + 1 > NN_TENSOR_MAX_DIMS)
        return kernel_fail(a, "too many dimensions");
    size_t ax = 0;
    if (!norm_axis(a, axis[0] < 0 ? axis[0] + (int64_t)x->ndims + 1 : axis[0], x->ndims + 1, &ax))
        return false;
    int64_t dims[NN_TENSOR_MAX_DIMS];
    for (size_t i = 0, k = 0; i <= x->ndims; i++)
        dims[i] = i == ax ? 1 : x->dims[k++];
    kernel_alias(a, 0, 0, dims, x->ndims + 1);
    return true;
}

static bool k_shape(kernel_args_t *a)
{
    if (!need_inputs(a, 1))
        return false;
    int64_t d = (int64_t)a->in[0]->ndims;
    if (!kernel_out(a, 0, IR_I64, &d, 1))
        return false;
    for (size_t i = 0; i < a->in[0]->ndims; i++)
        ir_i64(&a->out[0])[i] = a->in[0]->dims[i];
    return true;
}

static bool k_cast(kernel_args_t *a)
{
    if (!need_inputs(a, 1))
        return false;
    const ir_attr_t *dst = ir_attr(a->node, "DstT");
    int t = dst && dst->kind == IR_ATTR_TYPE ? (int)dst->i : IR_DT_FLOAT;
    const ir_value_t *x = a->in[0];
    ir_kind_t kind = (t == IR_DT_FLOAT || t == IR_DT_DOUBLE || t == IR_DT_HALF) ? IR_F32 : IR_I64;
    if (!kernel_out(a, 0, kind, x->dims, x->ndims))
        return false;
    for (size_t i = 0; i < x->count; i++) {
        if (kind == IR_F32)
            ir_f32(&a->out[0])[i] = x->kind == IR_F32 ? ir_f32(x)[i] : (float)ir_i64(x)[i];
        else
            ir_i64(&a->out[0])[i] = x->kind == IR_I64 ? ir_i64(x)[i] : ir_f2i(ir_f32(x)[i]);
    }
    return true;
}

/* ConcatV2 (axis last) and Concat (axis first); Pack stacks on a new axis. */
static bool concat(kernel_args_t *a, size_t first, size_t n, int64_t axis_in, bool pack)
{
    if (n == 0)
        return kernel_fail(a, "nothing to concatenate");
    const ir_value_t *x0 = a->in[first];
    size_t ndims = x0->ndims + (pack ? 1 : 0);
    size_t ax = 0;
    if (ndims > NN_TENSOR_MAX_DIMS || !norm_axis(a, axis_in, ndims, &ax))
        return ndims > NN_TENSOR_MAX_DIMS ? kernel_fail(a, "too many dimensions") : false;
    int64_t dims[NN_TENSOR_MAX_DIMS];
    for (size_t i = 0, k = 0; i < ndims; i++)
        dims[i] = pack && i == ax ? 1 : x0->dims[k++];
    int64_t total = 0;
    for (size_t j = 0; j < n; j++) {
        const ir_value_t *x = a->in[first + j];
        if (x->ndims != x0->ndims || x->kind != x0->kind || (!x->data && x->count))
            return kernel_fail(a, "input %zu does not match the first in rank or type", first + j);
        for (size_t i = 0, k = 0; i < ndims; i++) {
            int64_t d = pack && i == ax ? 1 : x->dims[k++];
            if (i != ax && d != dims[i])
                return kernel_fail(a, "input %zu differs in dimension %zu", first + j, i);
            if (i == ax)
                total += d;
        }
    }
    dims[ax] = total;
    if (!kernel_out(a, 0, x0->kind, dims, ndims))
        return false;
    size_t outer = 1, inner = 1;
    for (size_t i = 0; i < ax; i++)
        outer *= (size_t)dims[i];
    for (size_t i = ax + 1; i < ndims; i++)
        inner *= (size_t)dims[i];
    size_t es = x0->kind == IR_F32 ? 4 : 8;
    char *dst = a->out[0].data;
    size_t row = (size_t)total * inner * es;
    size_t off = 0;
    for (size_t j = 0; j < n; j++) {
        const ir_value_t *x = a->in[first + j];
        size_t piece = (pack ? 1 : (size_t)x->dims[ax]) * inner * es;
        for (size_t o = 0; o < outer; o++)
            memcpy(dst + o * row + off, (const char *)x->data + o * piece, piece);
        off += piece;
    }
    return true;
}

static bool k_concat_v2(kernel_args_t *a)
{
    int64_t axis[1];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, a->nin - 1, axis, 1, &n))
        return false;
    return n == 1 ? concat(a, 0, a->nin - 1, axis[0], false) : kernel_fail(a, "bad axis");
}

static bool k_concat(kernel_args_t *a)
{
    int64_t axis[1];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, 0, axis, 1, &n))
        return false;
    return n == 1 ? concat(a, 1, a->nin - 1, axis[0], false) : kernel_fail(a, "bad axis");
}

static bool k_pack(kernel_args_t *a)
{
    const ir_attr_t *ax = ir_attr(a->node, "axis");
    return need_inputs(a, 1) && concat(a, 0, a->nin, ax && ax->kind == IR_ATTR_I ? ax->i : 0, true);
}

static bool k_pad(kernel_args_t *a)
{
    int64_t pads[2 * NN_TENSOR_MAX_DIMS];
    size_t n;
    if (!kernel_need_f32(a, 0) || !need_inputs(a, 2) ||
        !int_input(a, 1, pads, 2 * NN_TENSOR_MAX_DIMS, &n))
        return false;
    const ir_value_t *x = a->in[0];
    if (n != 2 * x->ndims)
        return kernel_fail(a, "the paddings have %zu values for %zu dimensions", n, x->ndims);
    float value = 0;
    if (a->nin > 2 && a->in[2]->count == 1 && a->in[2]->data)
        value = a->in[2]->kind == IR_F32 ? ir_f32(a->in[2])[0] : (float)ir_i64(a->in[2])[0];
    const char *mode = attr_str(a->node, "mode", "CONSTANT");
    if (strcmp(mode, "CONSTANT") != 0)
        return kernel_fail(a, "padding mode %s is not supported", mode);
    int64_t dims[NN_TENSOR_MAX_DIMS];
    for (size_t i = 0; i < x->ndims; i++) {
        if (pads[2 * i] < 0 || pads[2 * i + 1] < 0)
            return kernel_fail(a, "negative padding");
        if (pads[2 * i] > ((int64_t)1 << 32) || pads[2 * i + 1] > ((int64_t)1 << 32))
            return kernel_fail(a, "padding too large");
        dims[i] = x->dims[i] + pads[2 * i] + pads[2 * i + 1];
    }
    if (!kernel_out(a, 0, IR_F32, dims, x->ndims))
        return false;
    float *y = ir_f32(&a->out[0]);
    const float *xs = ir_f32(x);
    for (size_t i = 0; i < a->out[0].count; i++)
        y[i] = value;
    if (x->count == 0)
        return true;
    /* copy rows of the last dimension */
    size_t nd = x->ndims;
    if (nd == 0) {
        y[0] = xs[0];
        return true;
    }
    size_t rows = x->count / (size_t)x->dims[nd - 1];
    size_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t r = 0; r < rows; r++) {
        size_t off = 0;
        for (size_t d = 0; d < nd; d++)
            off = off * (size_t)dims[d] + (d + 1 < nd ? idx[d] + (size_t)pads[2 * d] : (size_t)pads[2 * d]);
        memcpy(y + off, xs + r * (size_t)x->dims[nd - 1], (size_t)x->dims[nd - 1] * sizeof(float));
        for (size_t d = nd - 1; d-- > 0;) {
            if (++idx[d] < (size_t)x->dims[d])
                break;
            idx[d] = 0;
        }
    }
    return true;
}

static bool k_transpose(kernel_args_t *a)
{
    int64_t perm[NN_TENSOR_MAX_DIMS];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, 1, perm, NN_TENSOR_MAX_DIMS, &n))
        return false;
    const ir_value_t *x = a->in[0];
    if (n != x->ndims)
        return kernel_fail(a, "the permutation has %zu values for %zu dimensions", n, x->ndims);
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t istride[NN_TENSOR_MAX_DIMS], ostr[NN_TENSOR_MAX_DIMS];
    bool seen[NN_TENSOR_MAX_DIMS] = {false};
    for (size_t i = 0; i < n; i++) {
        if (perm[i] < 0 || (size_t)perm[i] >= n || seen[perm[i]])
            return kernel_fail(a, "bad permutation");
        seen[perm[i]] = true;
        dims[i] = x->dims[perm[i]];
    }
    if (!kernel_out(a, 0, x->kind, dims, n))
        return false;
    size_t s = 1;
    for (size_t i = n; i-- > 0;) {
        istride[i] = s;
        s *= (size_t)x->dims[i];
    }
    for (size_t i = 0; i < n; i++)
        ostr[i] = istride[perm[i]];
    size_t es = x->kind == IR_F32 ? 4 : 8;
    size_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t o = 0; o < a->out[0].count; o++) {
        size_t off = 0;
        for (size_t d = 0; d < n; d++)
            off += idx[d] * ostr[d];
        memcpy((char *)a->out[0].data + o * es, (const char *)x->data + off * es, es);
        for (size_t d = n; d-- > 0;) {
            if (++idx[d] < (size_t)dims[d])
                break;
            idx[d] = 0;
        }
    }
    return true;
}

static int64_t attr_int(const ir_node_t *n, const char *key, int64_t def)
{
    const ir_attr_t *a = ir_attr(n, key);
    return a && a->kind == IR_ATTR_I ? a->i : def;
}

/* StridedSlice with TensorFlow's masks: begin_mask / end_mask (take the
 * whole range), ellipsis_mask (one entry stands for every dimension not
 * named), new_axis_mask (insert a dimension of 1), shrink_axis_mask (take
 * one index and drop the dimension).  Python's clamping rules. */
static bool k_strided_slice(kernel_args_t *a)
{
    int64_t b[NN_TENSOR_MAX_DIMS], e[NN_TENSOR_MAX_DIMS], st[NN_TENSOR_MAX_DIMS];
    size_t nb, ne, ns;
    if (!need_inputs(a, 4) || !int_input(a, 1, b, NN_TENSOR_MAX_DIMS, &nb) ||
        !int_input(a, 2, e, NN_TENSOR_MAX_DIMS, &ne) || !int_input(a, 3, st, NN_TENSOR_MAX_DIMS, &ns))
        return false;
    const ir_value_t *x = a->in[0];
    if (nb != ne || nb != ns)
        return kernel_fail(a, "begin, end and strides differ in length");
    if (!x->data && x->count)
        return kernel_fail(a, "input 0 has no value");
    int64_t bm = attr_int(a->node, "begin_mask", 0), em = attr_int(a->node, "end_mask", 0);
    int64_t elm = attr_int(a->node, "ellipsis_mask", 0), nam = attr_int(a->node, "new_axis_mask", 0);
    int64_t sam = attr_int(a->node, "shrink_axis_mask", 0);
    size_t named = 0;
    for (size_t i = 0; i < nb; i++)
        named += !(nam >> i & 1) && !(elm >> i & 1);
    if (named > x->ndims)
        return kernel_fail(a, "the slice names %zu dimensions, the input has %zu", named, x->ndims);
    int64_t start[NN_TENSOR_MAX_DIMS], step[NN_TENSOR_MAX_DIMS], len[NN_TENSOR_MAX_DIMS];
    int64_t odims[NN_TENSOR_MAX_DIMS];
    size_t od = 0, d = 0;
    bool seen_ellipsis = false;
    for (size_t i = 0; i <= nb && d <= x->ndims; i++) {
        bool ell = i < nb && (elm >> i & 1) && !seen_ellipsis;
        if (i == nb || ell) {
            /* the ellipsis (or the implicit one at the end) covers the
             * dimensions the remaining entries do not name */
            size_t rest = 0;
            for (size_t k = i + 1; k < nb; k++)
                rest += !(nam >> k & 1);
            size_t cover = i == nb ? x->ndims - d : x->ndims - d - rest;
            if (i < nb)
                seen_ellipsis = true;
            for (size_t k = 0; k < cover && d < x->ndims; k++, d++) {
                start[d] = 0;
                step[d] = 1;
                len[d] = x->dims[d];
                if (od >= NN_TENSOR_MAX_DIMS)
                    return kernel_fail(a, "too many dimensions");
                odims[od++] = x->dims[d];
            }
            continue;
        }
        if (nam >> i & 1) {
            if (od >= NN_TENSOR_MAX_DIMS)
                return kernel_fail(a, "too many dimensions");
            odims[od++] = 1;
            continue;
        }
        if (d >= x->ndims)
            return kernel_fail(a, "the slice has more entries than the input has dimensions");
        int64_t n = x->dims[d], s = st[i];
        if (s == 0)
            return kernel_fail(a, "a stride is 0");
        /* values past either end act as the end: clamp before any
         * arithmetic so that none can overflow */
        int64_t lim = n + 1;
        b[i] = b[i] < -lim ? -lim : b[i] > lim ? lim : b[i];
        e[i] = e[i] < -lim ? -lim : e[i] > lim ? lim : e[i];
        s = s < -lim ? -lim : s > lim ? lim : s;
        if (sam >> i & 1) {
            int64_t k = b[i] < 0 ? b[i] + n : b[i];
            if (k < 0 || k >= n)
                return kernel_fail(a, "index %lld is out of range for dimension %zu", (long long)b[i], d);
            start[d] = k;
            step[d] = 1;
            len[d] = 1;
            d++;
            continue;
        }
        int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? n : n - 1;
        int64_t bb = b[i] < 0 ? b[i] + n : b[i], ee = e[i] < 0 ? e[i] + n : e[i];
        bb = (bm >> i & 1) ? (s > 0 ? 0 : n - 1) : (bb < lo ? lo : bb > hi ? hi : bb);
        ee = (em >> i & 1) ? (s > 0 ? n : -1) : (ee < lo ? lo : ee > hi ? hi : ee);
        int64_t cnt = s > 0 ? (ee - bb + s - 1) / s : (bb - ee - s - 1) / -s;
        if (cnt < 0)
            cnt = 0;
        start[d] = bb;
        step[d] = s;
        len[d] = cnt;
        if (od >= NN_TENSOR_MAX_DIMS)
            return kernel_fail(a, "too many dimensions");
        odims[od++] = cnt;
        d++;
    }
    for (; d < x->ndims; d++) {
        start[d] = 0;
        step[d] = 1;
        len[d] = x->dims[d];
        if (od >= NN_TENSOR_MAX_DIMS)
            return kernel_fail(a, "too many dimensions");
        odims[od++] = x->dims[d];
    }
    if (!kernel_out(a, 0, x->kind, odims, od))
        return false;
    size_t total = a->out[0].count, es = x->kind == IR_F32 ? 4 : 8;
    size_t stride[NN_TENSOR_MAX_DIMS], sz = 1;
    for (size_t k = x->ndims; k-- > 0;) {
        stride[k] = sz;
        sz *= (size_t)x->dims[k];
    }
    int64_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t o = 0; o < total; o++) {
        int64_t off = 0;
        for (size_t k = 0; k < x->ndims; k++)
            off += (start[k] + idx[k] * step[k]) * (int64_t)stride[k];
        memcpy((char *)a->out[0].data + o * es, (const char *)x->data + (size_t)off * es, es);
        for (size_t k = x->ndims; k-- > 0;) {
            if (++idx[k] < len[k])
                break;
            idx[k] = 0;
        }
    }
    return true;
}

/* ---- elementwise ---------------------------------------------------------- */

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MIN, B_MAX, B_SQDIFF, B_POW } binop_t;

static inline float apply(binop_t op, float x, float y)
{
    switch (op) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_MIN: return x < y ? x : y;
    case B_MAX: return x > y ? x : y;
    case B_SQDIFF: return (x - y) * (x - y);
    case B_POW: return powf(x, y);
    }
    return 0;
}

/* Same-length and scalar cases, written per op so each loop vectorizes. */
#define VLOOP(op, EXPR)                                                                  \
    case op:                                                                            \
        for (size_t i = 0; i < n; i++) {                                                \
            float x = xs[i * xstep], y = ys[i * ystep];                                 \
            out[i] = (EXPR);                                                            \
        }                                                                               \
        break;

KERNEL_SIMD static void binary_flat(binop_t op, const float *xs, size_t xstep, const float *ys, size_t ystep,
                        float *out, size_t n)
{
    switch (op) {
        VLOOP(B_ADD, x + y)
        VLOOP(B_SUB, x - y)
        VLOOP(B_MUL, x * y)
        VLOOP(B_DIV, x / y)
        VLOOP(B_MIN, x < y ? x : y)
        VLOOP(B_MAX, x > y ? x : y)
        VLOOP(B_SQDIFF, (x - y) * (x - y))
        VLOOP(B_POW, powf(x, y))
    }
}

static bool binary(kernel_args_t *a, binop_t op)
{
    if (!kernel_need_f32(a, 0) || !kernel_need_f32(a, 1))
        return false;
    const ir_value_t *x = a->in[0], *y = a->in[1];
    size_t nd = x->ndims > y->ndims ? x->ndims : y->ndims;
    int64_t dims[NN_TENSOR_MAX_DIMS], xd[NN_TENSOR_MAX_DIMS], yd[NN_TENSOR_MAX_DIMS];
    for (size_t i = 0; i < nd; i++) {
        xd[i] = i + x->ndims >= nd ? x->dims[i + x->ndims - nd] : 1;
        yd[i] = i + y->ndims >= nd ? y->dims[i + y->ndims - nd] : 1;
        if (xd[i] != yd[i] && xd[i] != 1 && yd[i] != 1)
            return kernel_fail(a, "shapes do not broadcast (dimension %zu: %lld vs %lld)", i,
                               (long long)xd[i], (long long)yd[i]);
        dims[i] = xd[i] == 1 ? yd[i] : xd[i];
    }
    size_t count = ir_count(dims, nd);
    if (x->count == count && x->ndims == nd) {
        if (!kernel_reuse(a, 0, 0, dims, nd) && !kernel_out(a, 0, IR_F32, dims, nd))
            return false;
    } else if (y->count == count && y->ndims == nd) {
        if (!kernel_reuse(a, 0, 1, dims, nd) && !kernel_out(a, 0, IR_F32, dims, nd))
            return false;
    } else if (!kernel_out(a, 0, IR_F32, dims, nd)) {
        return false;
    }
    float *out = ir_f32(&a->out[0]);
    const float *xs = ir_f32(x), *ys = ir_f32(y);
    if (count == 0)
        return true;
    if (x->count == count && y->count == count) {
        binary_flat(op, xs, 1, ys, 1, out, count);
        return true;
    }
    if (y->count == 1) {
        binary_flat(op, xs, 1, ys, 0, out, count);
        return true;
    }
    if (x->count == 1) {
        binary_flat(op, xs, 0, ys, 1, out, count);
        return true;
    }
    /* general: the innermost dimension as a flat loop, the others walked */
    size_t xs_[NN_TENSOR_MAX_DIMS], ys_[NN_TENSOR_MAX_DIMS];
    size_t sx = 1, sy = 1;
    for (size_t i = nd; i-- > 0;) {
        xs_[i] = xd[i] == 1 ? 0 : sx;
        ys_[i] = yd[i] == 1 ? 0 : sy;
        sx *= (size_t)xd[i];
        sy *= (size_t)yd[i];
    }
    size_t inner = (size_t)dims[nd - 1];
    size_t rows = count / inner;
    size_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t r = 0; r < rows; r++) {
        size_t ox = 0, oy = 0;
        for (size_t d = 0; d + 1 < nd; d++) {
            ox += idx[d] * xs_[d];
            oy += idx[d] * ys_[d];
        }
        binary_flat(op, xs + ox, xs_[nd - 1], ys + oy, ys_[nd - 1], out + r * inner, inner);
        for (size_t d = nd - 1; d-- > 0;) {
            if (++idx[d] < (size_t)dims[d])
                break;
            idx[d] = 0;
        }
    }
    (void)apply;
    return true;
}

static bool k_add(kernel_args_t *a) { return binary(a, B_ADD); }
static bool k_sub(kernel_args_t *a) { return binary(a, B_SUB); }
static bool k_mul(kernel_args_t *a) { return binary(a, B_MUL); }
static bool k_div(kernel_args_t *a) { return binary(a, B_DIV); }
static bool k_min(kernel_args_t *a) { return binary(a, B_MIN); }
static bool k_max(kernel_args_t *a) { return binary(a, B_MAX); }
static bool k_sqdiff(kernel_args_t *a) { return binary(a, B_SQDIFF); }
static bool k_pow(kernel_args_t *a) { return binary(a, B_POW); }

KERNEL_SIMD static bool k_bias_add(kernel_args_t *a)
{
    if (!kernel_need_f32(a, 0) || !kernel_need_f32(a, 1))
        return false;
    const ir_value_t *x = a->in[0], *b = a->in[1];
    bool nchw = strcmp(attr_str(a->node, "data_format", "NHWC"), "NCHW") == 0;
    if (x->ndims < 1 || b->ndims != 1)
        return kernel_fail(a, "needs a tensor and a 1-d bias");
    size_t cdim = nchw && x->ndims >= 3 ? 1 : x->ndims - 1;
    size_t c = (size_t)x->dims[cdim];
    if ((size_t)b->dims[0] != c)
        return kernel_fail(a, "the bias has %lld values for %zu channels", (long long)b->dims[0], c);
    if (!kernel_reuse(a, 0, 0, x->dims, x->ndims) && !kernel_out(a, 0, IR_F32, x->dims, x->ndims))
        return false;
    const float *xs = ir_f32(x), *bs = ir_f32(b);
    float *y = ir_f32(&a->out[0]);
    size_t inner = 1;
    for (size_t i = cdim + 1; i < x->ndims; i++)
        inner *= (size_t)x->dims[i];
    size_t outer = c && inner ? x->count / (c * inner) : 0;
    if (inner == 1) {
        /* channels last: one contiguous row of c values per position */
        for (size_t o = 0; o < outer; o++) {
            const float *src = xs + o * c;
            float *dst = y + o * c;
            for (size_t ch = 0; ch < c; ch++)
                dst[ch] = src[ch] + bs[ch];
        }
        return true;
    }
    for (size_t o = 0; o < outer; o++)
        for (size_t ch = 0; ch < c; ch++) {
            const float *src = xs + (o * c + ch) * inner;
            float *dst = y + (o * c + ch) * inner;
            float bv = bs[ch];
            for (size_t i = 0; i < inner; i++)
                dst[i] = src[i] + bv;
        }
    return true;
}

typedef enum {
    U_RELU, U_RELU6, U_SIGMOID, U_TANH, U_ELU, U_SELU, U_SOFTPLUS, U_EXP, U_LOG, U_SQRT,
    U_RSQRT, U_SQUARE, U_NEG, U_ABS, U_LEAKY, U_RECIP, U_FLOOR, U_CEIL, U_SOFTSIGN
} unop_t;

KERNEL_SIMD static bool unary(kernel_args_t *a, unop_t op)
{
    if (!kernel_need_f32(a, 0))
        return false;
    const ir_value_t *x = a->in[0];
    if (!kernel_reuse(a, 0, 0, x->dims, x->ndims) && !kernel_out(a, 0, IR_F32, x->dims, x->ndims))
        return false;
    const float *xs = ir_f32(x);
    float *y = ir_f32(&a->out[0]);
    size_t n = x->count;
    float alpha = attr_float(a->node, "alpha", 0.2f);
    switch (op) {
    case U_RELU: for (size_t i = 0; i < n; i++) y[i] = xs[i] > 0 ? xs[i] : 0; break;
    case U_RELU6:
        for (size_t i = 0; i < n; i++) {
            float v = xs[i] > 0 ? xs[i] : 0;
            y[i] = v < 6 ? v : 6;
        }
        break;
    case U_SIGMOID: for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-xs[i])); break;
    case U_TANH: for (size_t i = 0; i < n; i++) y[i] = tanhf(xs[i]); break;
    case U_ELU: for (size_t i = 0; i < n; i++) y[i] = xs[i] > 0 ? xs[i] : expm1f(xs[i]); break;
    case U_SELU:
        for (size_t i = 0; i < n; i++)
            y[i] = 1.0507009873554805f * (xs[i] > 0 ? xs[i] : 1.6732632423543772f * expm1f(xs[i]));
        break;
    case U_SOFTPLUS:
        for (size_t i = 0; i < n; i++)
            y[i] = xs[i] > 20 ? xs[i] : log1pf(expf(xs[i]));
        break;
    case U_EXP: for (size_t i = 0; i < n; i++) y[i] = expf(xs[i]); break;
    case U_LOG: for (size_t i = 0; i < n; i++) y[i] = logf(xs[i]); break;
    case U_SQRT: for (size_t i = 0; i < n; i++) y[i] = sqrtf(xs[i]); break;
    case U_RSQRT: for (size_t i = 0; i < n; i++) y[i] = 1.0f / sqrtf(xs[i]); break;
    case U_SQUARE: for (size_t i = 0; i < n; i++) y[i] = xs[i] * xs[i]; break;
    case U_NEG: for (size_t i = 0; i < n; i++) y[i] = -xs[i]; break;
    case U_ABS: for (size_t i = 0; i < n; i++) y[i] = fabsf(xs[i]); break;
    case U_LEAKY: for (size_t i = 0; i < n; i++) y[i] = xs[i] > 0 ? xs[i] : alpha * xs[i]; break;
    case U_RECIP: for (size_t i = 0; i < n; i++) y[i] = 1.0f / xs[i]; break;
    case U_FLOOR: for (size_t i = 0; i < n; i++) y[i] = floorf(xs[i]); break;
    case U_CEIL: for (size_t i = 0; i < n; i++) y[i] = ceilf(xs[i]); break;
    case U_SOFTSIGN: for (size_t i = 0; i < n; i++) y[i] = xs[i] / (1.0f + fabsf(xs[i])); break;
    }
    return true;
}

#define UNARY(name, op) static bool name(kernel_args_t *a) { return unary(a, op); }
UNARY(k_relu, U_RELU)
UNARY(k_relu6, U_RELU6)
UNARY(k_sigmoid, U_SIGMOID)
UNARY(k_tanh, U_TANH)
UNARY(k_elu, U_ELU)
UNARY(k_selu, U_SELU)
UNARY(k_softplus, U_SOFTPLUS)
UNARY(k_exp, U_EXP)
UNARY(k_log, U_LOG)
UNARY(k_sqrt, U_SQRT)
UNARY(k_rsqrt, U_RSQRT)
UNARY(k_square, U_SQUARE)
UNARY(k_neg, U_NEG)
UNARY(k_abs, U_ABS)
UNARY(k_leaky, U_LEAKY)
UNARY(k_recip, U_RECIP)
UNARY(k_floor, U_FLOOR)
UNARY(k_ceil, U_CEIL)
UNARY(k_softsign, U_SOFTSIGN)

static bool softmax(kernel_args_t *a, bool log_)
{
    if (!kernel_need_f32(a, 0))
        return false;
    const ir_value_t *x = a->in[0];
    if (x->ndims < 1 || x->dims[x->ndims - 1] == 0)
        return kernel_fail(a, "needs at least one dimension with values");
    if (!kernel_reuse(a, 0, 0, x->dims, x->ndims) && !kernel_out(a, 0, IR_F32, x->dims, x->ndims))
        return false;
    size_t c = (size_t)x->dims[x->ndims - 1];
    const float *xs = ir_f32(x);
    float *y = ir_f32(&a->out[0]);
    for (size_t r = 0; r < x->count / c; r++) {
        const float *src = xs + r * c;
        float *dst = y + r * c;
        float mx = src[0];
        for (size_t i = 1; i < c; i++)
            mx = src[i] > mx ? src[i] : mx;
        float sum = 0;
        for (size_t i = 0; i < c; i++) {
            float e = expf(src[i] - mx);
            sum += e;
            if (!log_)
                dst[i] = e;
            else
                dst[i] = src[i] - mx;
        }
        if (log_) {
            float ls = logf(sum);
            for (size_t i = 0; i < c; i++)
                dst[i] -= ls;
        } else {
            for (size_t i = 0; i < c; i++)
                dst[i] /= sum;
        }
    }
    return true;
}

static bool k_softmax(kernel_args_t *a) { return softmax(a, false); }
static bool k_log_softmax(kernel_args_t *a) { return softmax(a, true); }

/* Split (axis, value) and SplitV (value, size_splits, axis): num_split
 * outputs along one axis; SplitV's sizes may hold one -1 (the rest). */
static bool split(kernel_args_t *a, size_t vi, const int64_t *sizes_in, size_t nsizes, int64_t axis_in)
{
    const ir_value_t *x = a->in[vi];
    size_t ax = 0;
    if (!x->data && x->count)
        return kernel_fail(a, "input %zu has no value", vi);
    if (!norm_axis(a, axis_in, x->ndims, &ax))
        return false;
    size_t n = a->nout;
    int64_t total = x->dims[ax];
    int64_t sizes_buf[64], *sizes = sizes_buf;
    if (n > 64)
        return kernel_fail(a, "more than 64 outputs");
    if (sizes_in) {
        if (nsizes != n)
            return kernel_fail(a, "%zu sizes for %zu outputs", nsizes, n);
        int64_t known = 0;
        size_t unknown = n;
        for (size_t i = 0; i < n; i++) {
            if (sizes_in[i] == -1 && unknown == n)
                unknown = i;
            else if (sizes_in[i] < 0 || sizes_in[i] > total)
                return kernel_fail(a, "bad split size %lld", (long long)sizes_in[i]);
            else
                known += sizes_in[i];
            sizes[i] = sizes_in[i];
        }
        if (unknown < n)
            sizes[unknown] = total - known;
        if (known > total || (unknown == n && known != total) || (unknown < n && sizes[unknown] < 0))
            return kernel_fail(a, "split sizes do not add up to %lld", (long long)total);
    } else {
        if (n == 0 || total % (int64_t)n)
            return kernel_fail(a, "dimension %zu (%lld) does not split into %zu", ax, (long long)total, n);
        for (size_t i = 0; i < n; i++)
            sizes[i] = total / (int64_t)n;
    }
    size_t outer = 1, inner = 1, es = x->kind == IR_F32 ? 4 : 8;
    for (size_t i = 0; i < ax; i++)
        outer *= (size_t)x->dims[i];
    for (size_t i = ax + 1; i < x->ndims; i++)
        inner *= (size_t)x->dims[i];
    int64_t off = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t dims[NN_TENSOR_MAX_DIMS];
        for (size_t i = 0; i < x->ndims; i++)
            dims[i] = i == ax ? sizes[k] : x->dims[i];
        if (!kernel_out(a, k, x->kind, dims, x->ndims))
            return false;
        size_t piece = (size_t)sizes[k] * inner * es, row = (size_t)total * inner * es;
        for (size_t o = 0; o < outer; o++)
            memcpy((char *)a->out[k].data + o * piece,
                   (const char *)x->data + o * row + (size_t)off * inner * es, piece);
        off += sizes[k];
    }
    return true;
}

static bool k_split(kernel_args_t *a)
{
    int64_t axis[1];
    size_t n;
    if (!need_inputs(a, 2) || !int_input(a, 0, axis, 1, &n))
        return false;
    return n == 1 ? split(a, 1, NULL, 0, axis[0]) : kernel_fail(a, "bad axis");
}

static bool k_split_v(kernel_args_t *a)
{
    int64_t axis[1], sizes[64];
    size_t n, ns;
    if (!need_inputs(a, 3) || !int_input(a, 2, axis, 1, &n) || !int_input(a, 1, sizes, 64, &ns))
        return false;
    return n == 1 ? split(a, 0, sizes, ns, axis[0]) : kernel_fail(a, "bad axis");
}

/* Slice (value, begin, size): size -1 takes the rest. */
static bool k_slice(kernel_args_t *a)
{
    int64_t b[NN_TENSOR_MAX_DIMS], sz[NN_TENSOR_MAX_DIMS];
    size_t nb, ns;
    if (!need_inputs(a, 3) || !int_input(a, 1, b, NN_TENSOR_MAX_DIMS, &nb) ||
        !int_input(a, 2, sz, NN_TENSOR_MAX_DIMS, &ns))
        return false;
    const ir_value_t *x = a->in[0];
    if (!x->data && x->count)
        return kernel_fail(a, "input 0 has no value");
    if (nb != x->ndims || ns != x->ndims)
        return kernel_fail(a, "begin and size need %zu values", x->ndims);
    for (size_t i = 0; i < x->ndims; i++) {
        if (b[i] < 0 || b[i] > x->dims[i])
            return kernel_fail(a, "begin %lld is out of range in dimension %zu", (long long)b[i], i);
        if (sz[i] == -1)
            sz[i] = x->dims[i] - b[i];
        if (sz[i] < 0 || sz[i] > x->dims[i] - b[i])
            return kernel_fail(a, "size %lld is out of range in dimension %zu", (long long)sz[i], i);
    }
    if (!kernel_out(a, 0, x->kind, sz, x->ndims))
        return false;
    size_t es = x->kind == IR_F32 ? 4 : 8, stride[NN_TENSOR_MAX_DIMS], s = 1;
    for (size_t k = x->ndims; k-- > 0;) {
        stride[k] = s;
        s *= (size_t)x->dims[k];
    }
    int64_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t o = 0; o < a->out[0].count; o++) {
        size_t off = 0;
        for (size_t k = 0; k < x->ndims; k++)
            off += (size_t)(b[k] + idx[k]) * stride[k];
        memcpy((char *)a->out[0].data + o * es, (const char *)x->data + off * es, es);
        for (size_t k = x->ndims; k-- > 0;) {
            if (++idx[k] < sz[k])
                break;
            idx[k] = 0;
        }
    }
    return true;
}

/* AddN: the sum of any number of same-shape tensors. */
static bool k_add_n(kernel_args_t *a)
{
    if (a->nin == 0)
        return kernel_fail(a, "nothing to add");
    for (size_t j = 0; j < a->nin; j++) {
        if (!kernel_need_f32(a, j))
            return false;
        if (a->in[j]->count != a->in[0]->count || a->in[j]->ndims != a->in[0]->ndims)
            return kernel_fail(a, "input %zu differs in shape from the first", j);
    }
    const ir_value_t *x = a->in[0];
    if (!kernel_out(a, 0, IR_F32, x->dims, x->ndims))
        return false;
    float *y = ir_f32(&a->out[0]);
    memcpy(y, ir_f32(x), x->count * sizeof(float));
    for (size_t j = 1; j < a->nin; j++)
        binary_flat(B_ADD, y, 1, ir_f32(a->in[j]), 1, y, x->count);
    return true;
}

/* ArgMax / ArgMin (input, axis): int64 indices of the first extreme. */
static bool arg_extreme(kernel_args_t *a, bool max)
{
    int64_t axis[1];
    size_t n, ax = 0;
    if (!kernel_need_f32(a, 0) || !need_inputs(a, 2) || !int_input(a, 1, axis, 1, &n))
        return false;
    const ir_value_t *x = a->in[0];
    if (n != 1 || !norm_axis(a, axis[0], x->ndims, &ax))
        return n != 1 ? kernel_fail(a, "bad axis") : false;
    if (x->dims[ax] == 0)
        return kernel_fail(a, "the axis is empty");
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t nd = 0, outer = 1, inner = 1, len = (size_t)x->dims[ax];
    for (size_t i = 0; i < x->ndims; i++) {
        if (i != ax)
            dims[nd++] = x->dims[i];
        if (i < ax)
            outer *= (size_t)x->dims[i];
        if (i > ax)
            inner *= (size_t)x->dims[i];
    }
    if (!kernel_out(a, 0, IR_I64, dims, nd))
        return false;
    const float *xs = ir_f32(x);
    int64_t *y = ir_i64(&a->out[0]);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t best = 0;
            float bv = xs[o * len * inner + i];
            for (size_t k = 1; k < len; k++) {
                float v = xs[(o * len + k) * inner + i];
                if (max ? v > bv : v < bv) {
                    bv = v;
                    best = k;
                }
            }
            y[o * inner + i] = (int64_t)best;
        }
    return true;
}

static bool k_argmax(kernel_args_t *a) { return arg_extreme(a, true); }
static bool k_argmin(kernel_args_t *a) { return arg_extreme(a, false); }

/* Fill (dims, value); ZerosLike / OnesLike (x). */
static bool k_fill(kernel_args_t *a)
{
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t nd;
    if (!need_inputs(a, 2) || !int_input(a, 0, dims, NN_TENSOR_MAX_DIMS, &nd))
        return false;
    const ir_value_t *v = a->in[1];
    if (v->count != 1 || !v->data)
        return kernel_fail(a, "the value must be a scalar");
    if (!kernel_out(a, 0, v->kind, dims, nd))
        return false;
    for (size_t i = 0; i < a->out[0].count; i++) {
        if (v->kind == IR_F32)
            ir_f32(&a->out[0])[i] = ir_f32(v)[0];
        else
            ir_i64(&a->out[0])[i] = ir_i64(v)[0];
    }
    return true;
}

static bool like(kernel_args_t *a, float value)
{
    if (!need_inputs(a, 1))
        return false;
    const ir_value_t *x = a->in[0];
    if (!kernel_out(a, 0, x->kind, x->dims, x->ndims))
        return false;
    for (size_t i = 0; i < x->count; i++) {
        if (x->kind == IR_F32)
            ir_f32(&a->out[0])[i] = value;
        else
            ir_i64(&a->out[0])[i] = (int64_t)value;
    }
    return true;
}

static bool k_zeros_like(kernel_args_t *a) { return like(a, 0); }
static bool k_ones_like(kernel_args_t *a) { return like(a, 1); }

/* ---- reductions ----------------------------------------------------------- */

typedef enum { R_MEAN, R_SUM, R_MAX, R_MIN, R_PROD } redop_t;

static bool reduce(kernel_args_t *a, redop_t op)
{
    int64_t axes[NN_TENSOR_MAX_DIMS];
    size_t naxes;
    if (!kernel_need_f32(a, 0) || !need_inputs(a, 2) ||
        !int_input(a, 1, axes, NN_TENSOR_MAX_DIMS, &naxes))
        return false;
    const ir_value_t *x = a->in[0];
    bool keep = attr_bool(a->node, "keep_dims", attr_bool(a->node, "keepdims", false));
    bool red[NN_TENSOR_MAX_DIMS] = {false};
    for (size_t i = 0; i < naxes; i++) {
        size_t ax = 0;
        if (!norm_axis(a, axes[i], x->ndims, &ax))
            return false;
        red[ax] = true;
    }
    int64_t dims[NN_TENSOR_MAX_DIMS], full[NN_TENSOR_MAX_DIMS];
    size_t nd = 0;
    for (size_t i = 0; i < x->ndims; i++) {
        full[i] = red[i] ? 1 : x->dims[i];
        if (!red[i] || keep)
            dims[nd++] = full[i];
    }
    if (!kernel_out(a, 0, IR_F32, dims, nd))
        return false;
    float *y = ir_f32(&a->out[0]);
    size_t ocount = a->out[0].count;
    float init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1.0f : 0.0f;
    for (size_t i = 0; i < ocount; i++)
        y[i] = init;
    /* walk the input once; the output offset drops reduced dimensions */
    size_t ostride[NN_TENSOR_MAX_DIMS], s = 1;
    for (size_t i = x->ndims; i-- > 0;) {
        ostride[i] = red[i] ? 0 : s;
        s *= (size_t)full[i];
    }
    const float *xs = ir_f32(x);
    size_t nd_in = x->ndims;
    if (nd_in == 0) {
        y[0] = xs[0];
        return true;
    }
    size_t inner = (size_t)x->dims[nd_in - 1];
    size_t idx[NN_TENSOR_MAX_DIMS] = {0};
    for (size_t r = 0; inner && r < x->count / inner; r++) {
        size_t off = 0;
        for (size_t d = 0; d + 1 < nd_in; d++)
            off += idx[d] * ostride[d];
        const float *src = xs + r * inner;
        size_t st = ostride[nd_in - 1];
        float *dst = y + off;
        for (size_t i = 0; i < inner; i++) {
            float *o = dst + i * st;
            switch (op) {
            case R_MEAN:
            case R_SUM: *o += src[i]; break;
            case R_MAX: *o = src[i] > *o ? src[i] : *o; break;
            case R_MIN: *o = src[i] < *o ? src[i] : *o; break;
            case R_PROD: *o *= src[i]; break;
            }
        }
        for (size_t d = nd_in - 1; d-- > 0;) {
            if (++idx[d] < (size_t)x->dims[d])
                break;
            idx[d] = 0;
        }
    }
    if (op == R_MEAN && ocount) {
        float div = (float)(x->count / ocount);
        for (size_t i = 0; i < ocount; i++)
            y[i] /= div;
    }
    return true;
}

static bool k_mean(kernel_args_t *a) { return reduce(a, R_MEAN); }
static bool k_sum(kernel_args_t *a) { return reduce(a, R_SUM); }
static bool k_rmax(kernel_args_t *a) { return reduce(a, R_MAX); }
static bool k_rmin(kernel_args_t *a) { return reduce(a, R_MIN); }
static bool k_prod(kernel_args_t *a) { return reduce(a, R_PROD); }

/* ---- normalization and matrix products ------------------------------------ */

KERNEL_SIMD static bool k_fused_batch_norm(kernel_args_t *a)
{
    for (size_t j = 0; j < 5; j++)
        if (!kernel_need_f32(a, j))
            return false;
    const ir_value_t *x = a->in[0];
    bool nchw = strcmp(attr_str(a->node, "data_format", "NHWC"), "NCHW") == 0;
    if (x->ndims != 4)
        return kernel_fail(a, "needs a 4-d input");
    if (attr_bool(a->node, "is_training", false) && a->in[3]->count == 0)
        return kernel_fail(a, "training mode (batch statistics) is not supported");
    size_t c = (size_t)x->dims[nchw ? 1 : 3];
    for (size_t j = 1; j < 5; j++)
        if (a->in[j]->count != c)
            return kernel_fail(a, "input %zu has %zu values for %zu channels", j, a->in[j]->count, c);
    float eps = attr_float(a->node, "epsilon", 0.001f);
    if (!kernel_reuse(a, 0, 0, x->dims, x->ndims) && !kernel_out(a, 0, IR_F32, x->dims, x->ndims))
        return false;
    float mul[c + 1], add[c + 1];
    const float *scale = ir_f32(a->in[1]), *off = ir_f32(a->in[2]), *mean = ir_f32(a->in[3]),
                *var = ir_f32(a->in[4]);
    for (size_t i = 0; i < c; i++) {
        mul[i] = scale[i] / sqrtf(var[i] + eps);
        add[i] = off[i] - mean[i] * mul[i];
    }
    const float *xs = ir_f32(x);
    float *y = ir_f32(&a->out[0]);
    size_t inner = nchw ? (size_t)(x->dims[2] * x->dims[3]) : 1;
    size_t outer = c && inner ? x->count / (c * inner) : 0;
    if (!nchw) {
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < c; i++)
                y[o * c + i] = xs[o * c + i] * mul[i] + add[i];
    } else {
        for (size_t o = 0; o < outer; o++)
            for (size_t ch = 0; ch < c; ch++)
                for (size_t i = 0; i < inner; i++) {
                    size_t k = (o * c + ch) * inner + i;
                    y[k] = xs[k] * mul[ch] + add[ch];
                }
    }
    /* the other outputs: the statistics used (inference mode) */
    for (size_t i = 1; i < a->nout; i++) {
        int64_t d = (int64_t)c;
        if (i <= 2) {
            kernel_alias(a, i, i + 2, &d, 1);
        } else {
            d = 0;
            if (!kernel_out(a, i, IR_F32, &d, 1))
                return false;
        }
    }
    return true;
}

void kernel_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const float *A,
                  size_t lda, const float *B, size_t ldb, float *C, size_t ldc, bool accumulate)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A, (int)lda, B,
                (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
}

static bool k_matmul(kernel_args_t *a)
{
    if (!kernel_need_f32(a, 0) || !kernel_need_f32(a, 1))
        return false;
    const ir_value_t *x = a->in[0], *w = a->in[1];
    if (x->ndims != 2 || w->ndims != 2)
        return kernel_fail(a, "needs two matrices");
    bool ta = attr_bool(a->node, "transpose_a", false), tb = attr_bool(a->node, "transpose_b", false);
    size_t m = (size_t)x->dims[ta ? 1 : 0], k = (size_t)x->dims[ta ? 0 : 1];
    size_t k2 = (size_t)w->dims[tb ? 1 : 0], n = (size_t)w->dims[tb ? 0 : 1];
    if (k != k2)
        return kernel_fail(a, "inner dimensions differ (%zu vs %zu)", k, k2);
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return kernel_fail(a, "matrices too large");
    int64_t dims[2] = {(int64_t)m, (int64_t)n};
    if (!kernel_out(a, 0, IR_F32, dims, 2))
        return false;
    if (m == 0 || n == 0)
        return true;
    bool acc = a->bias && a->bias_count == n;
    if (acc) {
        kernel_fill_rows(ir_f32(&a->out[0]), a->bias, m, n);
        a->bias_used = true;
    }
    if (k == 0) {
        if (!acc)
            memset(a->out[0].data, 0, m * n * sizeof(float));
        return true;
    }
    kernel_sgemm(ta, tb, m, n, k, ir_f32(x), (size_t)x->dims[1], ir_f32(w), (size_t)w->dims[1],
                 ir_f32(&a->out[0]), n, acc);
    return true;
}

/* ---- fused ops (grappler's and TensorFlow.js's) ------------------------- */

static bool fused_activation(kernel_args_t *a, const char *act, float *y, size_t n)
{
    float alpha = attr_float(a->node, "leakyrelu_alpha", 0.2f);
    if (strcmp(act, "Relu") == 0) {
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : 0;
    } else if (strcmp(act, "Relu6") == 0) {
        for (size_t i = 0; i < n; i++) {
            float v = y[i] > 0 ? y[i] : 0;
            y[i] = v < 6 ? v : 6;
        }
    } else if (strcmp(act, "Elu") == 0) {
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : expm1f(y[i]);
    } else if (strcmp(act, "LeakyRelu") == 0) {
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : alpha * y[i];
    } else if (strcmp(act, "Sigmoid") == 0) {
        for (size_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
    } else if (strcmp(act, "Tanh") == 0) {
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
    } else {
        return kernel_fail(a, "the fused activation \"%s\" is not supported", act);
    }
    return true;
}

/* _FusedConv2D, FusedDepthwiseConv2dNative and _FusedMatMul: the base op on
 * inputs 0 and 1, then fused_ops: "BiasAdd" (extra input: the bias) or
 * "FusedBatchNorm" (extra inputs: scale, offset, mean, variance; attribute
 * epsilon), then at most one activation.  Channels last only. */
static bool fused(kernel_args_t *a, kernel_fn base)
{
    const ir_attr_t *fo = ir_attr(a->node, "fused_ops");
    size_t nops = fo ? fo->nstrs : 0, at = 0;
    const char *df = attr_str(a->node, "data_format", "NHWC");
    if (strcmp(df, "NHWC") != 0)
        return kernel_fail(a, "fused ops on %s data are not supported", df);
    const float *bias = NULL;
    size_t nbias = 0;
    bool bn = false;
    if (nops && (strcmp(fo->strs[0], "BiasAdd") == 0 || strcmp(fo->strs[0], "BiasAddV1") == 0)) {
        if (!kernel_need_f32(a, 2))
            return false;
        bias = ir_f32(a->in[2]);
        nbias = a->in[2]->count;
        at = 1;
    } else if (nops && strcmp(fo->strs[0], "FusedBatchNorm") == 0) {
        for (size_t j = 2; j < 6; j++)
            if (!kernel_need_f32(a, j))
                return false;
        bn = true;
        at = 1;
    }
    if (nops > at + 1)
        return kernel_fail(a, "fused_ops holds %zu ops; the engine runs a bias or batch norm and one "
                           "activation", nops);
    kernel_args_t b = *a;
    b.nin = 2;
    b.bias = bias;
    b.bias_count = nbias;
    b.bias_used = false;
    if (!base(&b))
        return false;
    ir_value_t *out = &a->out[0];
    float *y = ir_f32(out);
    size_t c = out->ndims ? (size_t)out->dims[out->ndims - 1] : 1;
    if (bias && !b.bias_used) {
        if (nbias != c)
            return kernel_fail(a, "the bias has %zu values for %zu channels", nbias, c);
        for (size_t o = 0; c && o < out->count / c; o++)
            for (size_t i = 0; i < c; i++)
                y[o * c + i] += bias[i];
    }
    if (bn) {
        float eps = attr_float(a->node, "epsilon", 0.001f);
        for (size_t j = 2; j < 6; j++)
            if (a->in[j]->count != c)
                return kernel_fail(a, "input %zu has %zu values for %zu channels", j,
                                   a->in[j]->count, c);
        const float *scale = ir_f32(a->in[2]), *off = ir_f32(a->in[3]), *mean = ir_f32(a->in[4]),
                    *var = ir_f32(a->in[5]);
        for (size_t o = 0; c && o < out->count / c; o++)
            for (size_t i = 0; i < c; i++) {
                float mul = scale[i] / sqrtf(var[i] + eps);
                y[o * c + i] = (y[o * c + i] - mean[i]) * mul + off[i];
            }
    }
    if (at < nops)
        return fused_activation(a, fo->strs[at], y, out->count);
    return true;
}

static bool k_fused_conv2d(kernel_args_t *a) { return fused(a, kernel_conv2d); }
static bool k_fused_depthwise(kernel_args_t *a) { return fused(a, kernel_depthwise); }
static bool k_fused_matmul(kernel_args_t *a) { return fused(a, k_matmul); }

/* ---- the table ------------------------------------------------------------ */

static bool k_value(kernel_args_t *a)
{
    /* Const, Placeholder and variables are handled by the runner before any
     * kernel; reaching here means a value is missing */
    return kernel_fail(a, "has no value");
}

static const kernel_def_t kernels[] = {
    {"Abs", k_abs, 1},
    {"Add", k_add, 1},
    {"AddN", k_add_n, 1},
    {"AddV2", k_add, 1},
    {"ArgMax", k_argmax, 1},
    {"ArgMin", k_argmin, 1},
    {"AvgPool", kernel_avgpool, 1},
    {"BiasAdd", k_bias_add, 1},
    {"Cast", k_cast, 1},
    {"Ceil", k_ceil, 1},
    {"Concat", k_concat, 1},
    {"ConcatV2", k_concat_v2, 1},
    {"Const", k_value, 1},
    {"Conv2D", kernel_conv2d, 1},
    {"DepthwiseConv2dNative", kernel_depthwise, 1},
    {"Div", k_div, 1},
    {"Elu", k_elu, 1},
    {"Exp", k_exp, 1},
    {"ExpandDims", k_expand_dims, 1},
    {"Fill", k_fill, 1},
    {"Floor", k_floor, 1},
    {"FusedBatchNorm", k_fused_batch_norm, 5},
    {"FusedBatchNormV2", k_fused_batch_norm, 5},
    {"FusedBatchNormV3", k_fused_batch_norm, 6},
    {"FusedDepthwiseConv2dNative", k_fused_depthwise, 1},
    {"Identity", k_identity, 1},
    {"IdentityN", k_identity_n, -1},
    {"LeakyRelu", k_leaky, 1},
    {"Log", k_log, 1},
    {"LogSoftmax", k_log_softmax, 1},
    {"MatMul", k_matmul, 1},
    {"Max", k_rmax, 1},
    {"MaxPool", kernel_maxpool, 1},
    {"Maximum", k_max, 1},
    {"Mean", k_mean, 1},
    {"Min", k_rmin, 1},
    {"Minimum", k_min, 1},
    {"Mul", k_mul, 1},
    {"Neg", k_neg, 1},
    {"NoOp", k_noop, 0},
    {"OnesLike", k_ones_like, 1},
    {"Pack", k_pack, 1},
    {"Pad", k_pad, 1},
    {"PadV2", k_pad, 1},
    {"Placeholder", k_value, 1},
    {"PlaceholderWithDefault", k_identity, 1},
    {"Pow", k_pow, 1},
    {"Prod", k_prod, 1},
    {"ReadVariableOp", k_identity, 1},
    {"RealDiv", k_div, 1},
    {"Reciprocal", k_recip, 1},
    {"Relu", k_relu, 1},
    {"Relu6", k_relu6, 1},
    {"Reshape", k_reshape, 1},
    {"Rsqrt", k_rsqrt, 1},
    {"Selu", k_selu, 1},
    {"Shape", k_shape, 1},
    {"Sigmoid", k_sigmoid, 1},
    {"Slice", k_slice, 1},
    {"Snapshot", k_identity, 1},
    {"Softmax", k_softmax, 1},
    {"Softplus", k_softplus, 1},
    {"Softsign", k_softsign, 1},
    {"Split", k_split, KERNEL_NOUT_NUM_SPLIT},
    {"SplitV", k_split_v, KERNEL_NOUT_NUM_SPLIT},
    {"Sqrt", k_sqrt, 1},
    {"Square", k_square, 1},
    {"SquaredDifference", k_sqdiff, 1},
    {"Squeeze", k_squeeze, 1},
    {"StopGradient", k_identity, 1},
    {"StridedSlice", k_strided_slice, 1},
    {"Sub", k_sub, 1},
    {"Sum", k_sum, 1},
    {"Tanh", k_tanh, 1},
    {"Transpose", k_transpose, 1},
    {"VarHandleOp", k_value, 1},
    {"Variable", k_value, 1},
    {"VariableV2", k_value, 1},
    {"ZerosLike", k_zeros_like, 1},
    {"_FusedConv2D", k_fused_conv2d, 1},
    {"_FusedMatMul", k_fused_matmul, 1},
};

static int cmp_op(const void *key, const void *elem)
{
    return strcmp(key, ((const kernel_def_t *)elem)->op);
}

const kernel_def_t *kernel_find(const char *op)
{
    return bsearch(op, kernels, sizeof kernels / sizeof kernels[0], sizeof kernels[0], cmp_op);
}
