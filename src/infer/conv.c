/* conv.c - convolutions and pooling (NHWC inside; NCHW graphs are
 * transposed on the way in and out): see kernels.h.
 *
 * Conv2D: a 1x1 convolution with stride 1 and no padding is one sgemm of
 * the input seen as a [N*H*W, C] matrix by the [C, O] filter; every other
 * convolution copies its input patches into a column buffer (im2col) one
 * band of output rows at a time, so the buffer never exceeds
 * CONV_COL_MAX_FLOATS whatever the image size, and multiplies each band.
 * The filter's HWIO layout is already the [KH*KW*C, O] matrix the patches
 * need.  Depthwise convolutions and pooling are direct loops whose
 * innermost loop runs over channels (contiguous in NHWC), which the
 * compiler vectorizes. */
#include <stdlib.h>
#include <string.h>

#include "infer/kernels.h"

#include "infer/simd.h"

#define CONV_COL_MAX_FLOATS ((size_t)1 << 21) /* 8 MiB of patches at most */

bool kernel_window(pad_mode_t mode, int64_t in, int64_t k, int64_t stride, int64_t dilation,
                   int64_t explicit_before, int64_t explicit_after, int64_t *out, int64_t *pad_before)
{
    const int64_t lim = (int64_t)1 << 30; /* keeps every product below in range */
    if (in <= 0 || k <= 0 || stride <= 0 || dilation <= 0 || in > lim || k > lim || stride > lim ||
        dilation > lim || explicit_before > lim || explicit_after > lim)
        return false;
    int64_t eff = (k - 1) * dilation + 1;
    if (mode == PAD_SAME) {
        *out = (in + stride - 1) / stride;
        int64_t total = (*out - 1) * stride + eff - in;
        *pad_before = total > 0 ? total / 2 : 0;
    } else if (mode == PAD_VALID) {
        if (in < eff)
            return false;
        *out = (in - eff) / stride + 1;
        *pad_before = 0;
    } else {
        if (explicit_before < 0 || explicit_after < 0 || in + explicit_before + explicit_after < eff)
            return false;
        *out = (in + explicit_before + explicit_after - eff) / stride + 1;
        *pad_before = explicit_before;
    }
    return *out > 0;
}

/* rows x n floats, each row a copy of v. */
void kernel_fill_rows(float *dst, const float *v, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * n, v, n * sizeof(float));
}

#define fill_rows kernel_fill_rows

/* The geometry shared by convolutions and pools. */
typedef struct geom {
    bool nchw;
    int64_t n, h, w, c;       /* input, NHWC order */
    int64_t kh, kw;           /* window */
    int64_t sh, sw, dh, dw;   /* strides, dilations */
    int64_t oh, ow;           /* output size */
    int64_t ph, pw;           /* padding before */
} geom_t;

static bool list4(kernel_args_t *a, const char *key, int64_t def, bool nchw, int64_t *hv,
                  int64_t *wv)
{
    const ir_attr_t *at = ir_attr(a->node, key);
    *hv = *wv = def;
    if (!at || at->nints == 0)
        return true;
    if (at->nints != 4)
        return kernel_fail(a, "attribute %s must have 4 values", key);
    *hv = at->ints[nchw ? 2 : 1];
    *wv = at->ints[nchw ? 3 : 2];
    if (at->ints[0] != 1 || at->ints[nchw ? 1 : 3] != 1)
        return kernel_fail(a, "attribute %s must be 1 on the batch and channel dimensions", key);
    return true;
}

static bool geometry(kernel_args_t *a, const ir_value_t *x, int64_t kh, int64_t kw, bool dilations,
                     geom_t *g)
{
    const ir_attr_t *df = ir_attr(a->node, "data_format");
    g->nchw = df && df->kind == IR_ATTR_S && strcmp(df->s, "NCHW") == 0;
    if (x->ndims != 4)
        return kernel_fail(a, "needs a 4-d input, got %zu dimensions", x->ndims);
    g->n = x->dims[0];
    g->h = x->dims[g->nchw ? 2 : 1];
    g->w = x->dims[g->nchw ? 3 : 2];
    g->c = x->dims[g->nchw ? 1 : 3];
    g->kh = kh;
    g->kw = kw;
    if (!list4(a, "strides", 1, g->nchw, &g->sh, &g->sw))
        return false;
    g->dh = g->dw = 1;
    if (dilations && !list4(a, "dilations", 1, g->nchw, &g->dh, &g->dw))
        return false;
    const ir_attr_t *pad = ir_attr(a->node, "padding");
    const char *p = pad && pad->kind == IR_ATTR_S ? pad->s : "VALID";
    pad_mode_t mode = strcmp(p, "SAME") == 0 ? PAD_SAME : strcmp(p, "VALID") == 0 ? PAD_VALID
                    : strcmp(p, "EXPLICIT") == 0 ? PAD_EXPLICIT : (pad_mode_t)-1;
    if ((int)mode < 0)
        return kernel_fail(a, "padding \"%s\" is not supported", p);
    int64_t eb[2] = {0, 0}, ea[2] = {0, 0};
    if (mode == PAD_EXPLICIT) {
        const ir_attr_t *ep = ir_attr(a->node, "explicit_paddings");
        if (!ep || ep->nints != 8)
            return kernel_fail(a, "EXPLICIT padding needs 8 explicit_paddings");
        size_t hi = g->nchw ? 2 : 1, wi = g->nchw ? 3 : 2;
        eb[0] = ep->ints[2 * hi];
        ea[0] = ep->ints[2 * hi + 1];
        eb[1] = ep->ints[2 * wi];
        ea[1] = ep->ints[2 * wi + 1];
    }
    if (!kernel_window(mode, g->h, kh, g->sh, g->dh, eb[0], ea[0], &g->oh, &g->ph) ||
        !kernel_window(mode, g->w, kw, g->sw, g->dw, eb[1], ea[1], &g->ow, &g->pw))
        return kernel_fail(a, "a %lldx%lld window (strides %lld,%lld) does not fit a %lldx%lld input",
                           (long long)kh, (long long)kw, (long long)g->sh, (long long)g->sw,
                           (long long)g->h, (long long)g->w);
    return true;
}

/* NCHW <-> NHWC for one batch of c x hw (to_nhwc) or hw x c. */
static void transpose2(const float *src, float *dst, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * cols + c];
}

/* The input in NHWC: x's data, or a malloc'd transposed copy (*tmp). */
static const float *nhwc_input(kernel_args_t *a, const geom_t *g, const ir_value_t *x, float **tmp)
{
    *tmp = NULL;
    if (!g->nchw)
        return ir_f32(x);
    size_t hw = (size_t)(g->h * g->w), c = (size_t)g->c;
    *tmp = malloc((x->count ? x->count : 1) * sizeof(float));
    if (!*tmp) {
        nn_error_oom(a->err);
        return NULL;
    }
    for (int64_t n = 0; n < g->n; n++)
        transpose2(ir_f32(x) + (size_t)n * hw * c, *tmp + (size_t)n * hw * c, c, hw);
    return *tmp;
}

/* Allocates output 0 ([N,OH,OW,oc] or NCHW) and returns where the kernel
 * writes NHWC results: the output itself, or *tmp for NCHW. */
static float *nhwc_output(kernel_args_t *a, const geom_t *g, int64_t oc, float **tmp)
{
    int64_t dims[4] = {g->n, g->oh, g->ow, oc};
    if (g->nchw) {
        dims[1] = oc;
        dims[2] = g->oh;
        dims[3] = g->ow;
    }
    *tmp = NULL;
    if (!kernel_out(a, 0, IR_F32, dims, 4))
        return NULL;
    if (!g->nchw)
        return ir_f32(&a->out[0]);
    *tmp = malloc((a->out[0].count ? a->out[0].count : 1) * sizeof(float));
    if (!*tmp)
        nn_error_oom(a->err);
    return *tmp;
}

static void nhwc_finish(kernel_args_t *a, const geom_t *g, int64_t oc, float *tmp)
{
    if (!g->nchw)
        return;
    size_t hw = (size_t)(g->oh * g->ow), c = (size_t)oc;
    for (int64_t n = 0; n < g->n; n++)
        transpose2(tmp + (size_t)n * hw * c, ir_f32(&a->out[0]) + (size_t)n * hw * c, hw, c);
}

bool kernel_conv2d(kernel_args_t *a)
{
    if (!kernel_need_f32(a, 0) || !kernel_need_f32(a, 1))
        return false;
    const ir_value_t *x = a->in[0], *f = a->in[1];
    if (f->ndims != 4)
        return kernel_fail(a, "the filter must be 4-d [height, width, in, out]");
    geom_t g;
    if (!geometry(a, x, f->dims[0], f->dims[1], true, &g))
        return false;
    if (f->dims[2] != g.c)
        return kernel_fail(a, "the filter takes %lld channels, the input has %lld",
                           (long long)f->dims[2], (long long)g.c);
    int64_t oc = f->dims[3];
    float *tin, *tout;
    const float *in = nhwc_input(a, &g, x, &tin);
    if (!in)
        return false;
    float *out = nhwc_output(a, &g, oc, &tout);
    if (!out) {
        free(tin);
        return false;
    }
    size_t C = (size_t)g.c, O = (size_t)oc, K = (size_t)(g.kh * g.kw) * C;
    size_t ohw = (size_t)(g.oh * g.ow);
    const float *w = ir_f32(f);
    bool ok = true;
    /* a fused BiasAdd: start every output row from the bias and let sgemm
     * add to it, instead of zeroing the output */
    bool acc = a->bias && a->bias_count == O && !g.nchw;
    if (acc) {
        fill_rows(out, a->bias, (size_t)g.n * ohw, O);
        a->bias_used = true;
    }
    if (ohw == 0 || O == 0) {
        /* nothing */
    } else if (g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
               g.oh == g.h && g.ow == g.w) {
        kernel_sgemm(false, false, (size_t)g.n * ohw, O, C, in, C, w, O, out, O, acc);
    } else {
        size_t row_floats = (size_t)g.ow * K;
        size_t band = row_floats ? CONV_COL_MAX_FLOATS / row_floats : 1;
        if (band < 1)
            band = 1;
        if (band > (size_t)g.oh)
            band = (size_t)g.oh;
        float *col = malloc(band * row_floats * sizeof(float));
        if (!col) {
            ok = nn_error_oom(a->err);
        } else {
            for (int64_t n = 0; n < g.n; n++) {
                const float *img = in + (size_t)n * (size_t)(g.h * g.w) * C;
                for (int64_t oy0 = 0; oy0 < g.oh; oy0 += (int64_t)band) {
                    int64_t rows = g.oh - oy0 < (int64_t)band ? g.oh - oy0 : (int64_t)band;
                    float *cp = col;
                    for (int64_t oy = oy0; oy < oy0 + rows; oy++)
                        for (int64_t ox = 0; ox < g.ow; ox++)
                            for (int64_t ky = 0; ky < g.kh; ky++) {
                                int64_t iy = oy * g.sh + ky * g.dh - g.ph;
                                for (int64_t kx = 0; kx < g.kw; kx++, cp += C) {
                                    int64_t ix = ox * g.sw + kx * g.dw - g.pw;
                                    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
                                        memset(cp, 0, C * sizeof(float));
                                    else
                                        memcpy(cp, img + ((size_t)iy * (size_t)g.w + (size_t)ix) * C,
                                               C * sizeof(float));
                                }
                            }
                    float *dst = out + ((size_t)n * ohw + (size_t)oy0 * (size_t)g.ow) * O;
                    kernel_sgemm(false, false, (size_t)rows * (size_t)g.ow, O, K, col, K, w, O, dst,
                                 O, acc);
                }
            }
            free(col);
        }
    }
    if (ok)
        nhwc_finish(a, &g, oc, tout);
    free(tin);
    free(tout);
    return ok;
}

KERNEL_SIMD bool kernel_depthwise(kernel_args_t *a)
{
    if (!kernel_need_f32(a, 0) || !kernel_need_f32(a, 1))
        return false;
    const ir_value_t *x = a->in[0], *f = a->in[1];
    if (f->ndims != 4)
        return kernel_fail(a, "the filter must be 4-d [height, width, in, multiplier]");
    geom_t g;
    if (!geometry(a, x, f->dims[0], f->dims[1], true, &g))
        return false;
    if (f->dims[2] != g.c)
        return kernel_fail(a, "the filter takes %lld channels, the input has %lld",
                           (long long)f->dims[2], (long long)g.c);
    size_t M = (size_t)f->dims[3], C = (size_t)g.c, OC = C * M;
    float *tin, *tout;
    const float *in = nhwc_input(a, &g, x, &tin);
    if (!in)
        return false;
    float *out = nhwc_output(a, &g, (int64_t)OC, &tout);
    if (!out) {
        free(tin);
        return false;
    }
    const float *w = ir_f32(f);
    size_t W = (size_t)g.w, OW = (size_t)g.ow;
    const float *bias = a->bias && a->bias_count == OC && !g.nchw ? a->bias : NULL;
    a->bias_used = bias != NULL;
    for (int64_t n = 0; n < g.n; n++) {
        const float *img = in + (size_t)n * (size_t)g.h * W * C;
        for (int64_t oy = 0; oy < g.oh; oy++) {
            float *orow = out + (((size_t)n * (size_t)g.oh + (size_t)oy) * OW) * OC;
            if (bias)
                fill_rows(orow, bias, OW, OC);
            else
                memset(orow, 0, OW * OC * sizeof(float));
            for (int64_t ky = 0; ky < g.kh; ky++) {
                int64_t iy = oy * g.sh + ky * g.dh - g.ph;
                if (iy < 0 || iy >= g.h)
                    continue;
                const float *irow = img + (size_t)iy * W * C;
                for (int64_t kx = 0; kx < g.kw; kx++) {
                    const float *wk = w + ((size_t)ky * (size_t)g.kw + (size_t)kx) * OC;
                    /* output columns whose input column is inside the image */
                    int64_t off = kx * g.dw - g.pw;
                    int64_t lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
                    int64_t hi = g.w - 1 - off < 0 ? -1 : (g.w - 1 - off) / g.sw;
                    if (hi >= g.ow)
                        hi = g.ow - 1;
                    for (int64_t ox = lo; ox <= hi; ox++) {
                        const float *ip = irow + (size_t)(ox * g.sw + off) * C;
                        float *op = orow + (size_t)ox * OC;
                        if (M == 1) {
                            for (size_t c = 0; c < C; c++)
                                op[c] += ip[c] * wk[c];
                        } else {
                            for (size_t c = 0; c < C; c++)
                                for (size_t q = 0; q < M; q++)
                                    op[c * M + q] += ip[c] * wk[c * M + q];
                        }
                    }
                }
            }
        }
    }
    nhwc_finish(a, &g, (int64_t)OC, tout);
    free(tin);
    free(tout);
    return true;
}

KERNEL_SIMD static bool pool(kernel_args_t *a, bool avg)
{
    if (!kernel_need_f32(a, 0))
        return false;
    const ir_value_t *x = a->in[0];
    const ir_attr_t *df = ir_attr(a->node, "data_format");
    bool nchw = df && df->kind == IR_ATTR_S && strcmp(df->s, "NCHW") == 0;
    int64_t kh, kw;
    if (!list4(a, "ksize", 1, nchw, &kh, &kw))
        return false;
    geom_t g;
    if (!geometry(a, x, kh, kw, false, &g))
        return false;
    size_t C = (size_t)g.c, W = (size_t)g.w, OW = (size_t)g.ow;
    float *tin, *tout;
    const float *in = nhwc_input(a, &g, x, &tin);
    if (!in)
        return false;
    float *out = nhwc_output(a, &g, g.c, &tout);
    if (!out) {
        free(tin);
        return false;
    }
    for (int64_t n = 0; n < g.n; n++) {
        const float *img = in + (size_t)n * (size_t)g.h * W * C;
        for (int64_t oy = 0; oy < g.oh; oy++) {
            int64_t y0 = oy * g.sh - g.ph, y1 = y0 + g.kh;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > g.h ? g.h : y1;
            for (int64_t ox = 0; ox < g.ow; ox++) {
                int64_t x0 = ox * g.sw - g.pw, x1 = x0 + g.kw;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > g.w ? g.w : x1;
                float *op = out + (((size_t)n * (size_t)g.oh + (size_t)oy) * OW + (size_t)ox) * C;
                for (size_t c = 0; c < C; c++)
                    op[c] = avg ? 0.0f : -__builtin_inff();
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        const float *ip = img + ((size_t)iy * W + (size_t)ix) * C;
                        if (avg)
                            for (size_t c = 0; c < C; c++)
                                op[c] += ip[c];
                        else
                            for (size_t c = 0; c < C; c++)
                                op[c] = ip[c] > op[c] ? ip[c] : op[c];
                    }
                if (avg) {
                    int64_t cnt = (y1 - y0) * (x1 - x0);
                    float inv = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
                    for (size_t c = 0; c < C; c++)
                        op[c] *= inv;
                }
            }
        }
    }
    nhwc_finish(a, &g, g.c, tout);
    free(tin);
    free(tout);
    return true;
}

bool kernel_avgpool(kernel_args_t *a)
{
    return pool(a, true);
}

bool kernel_maxpool(kernel_args_t *a)
{
    return pool(a, false);
}
