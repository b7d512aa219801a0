/* Unit tests: the inference engine's kernels, one op at a time
 * (infer/engine, infer/kernels, infer/conv, infer/ir).
 *
 * Each case writes a tiny SavedModel (a Placeholder "x", Consts, the op
 * under test as "y") with the small protobuf encoder below, loads it from
 * a temporary version directory and runs it.  Expected values are worked
 * out by hand in the comments; convolutions and pools are also compared
 * with a naive loop written from TensorFlow's definition (SAME/VALID
 * padding, odd sizes, strides 2, dilations 2, several channels, NCHW).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <unistd.h>

#include "infer/engine.h"
#include "util/arena.h"
#include "util/error.h"

/* Frees the model, then fails the test: a model still held when an
 * assertion ends the test would be reported as a leak (scripts/allocfail
 * makes runs fail on purpose).  The message must not point into it. */
#define free_and_fail(model, ...)                                                                  \
    do {                                                                                           \
        infer_model_free(model);                                                                   \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

/* ---- a protobuf writer ------------------------------------------------- */

typedef struct pbuf {
    unsigned char *p;
    size_t n, cap;
} pbuf_t;

static void put(pbuf_t *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void varint(pbuf_t *b, uint64_t v)
{
    unsigned char c;
    do {
        c = v & 0x7f;
        v >>= 7;
        if (v)
            c |= 0x80;
        put(b, &c, 1);
    } while (v);
}

static void key(pbuf_t *b, unsigned field, unsigned wt)
{
    varint(b, (uint64_t)field << 3 | wt);
}

static void bytes(pbuf_t *b, unsigned field, const void *d, size_t n)
{
    key(b, field, 2);
    varint(b, n);
    put(b, d, n);
}

static void str(pbuf_t *b, unsigned field, const char *s)
{
    bytes(b, field, s, strlen(s));
}

static void msg(pbuf_t *b, unsigned field, pbuf_t *m)
{
    bytes(b, field, m->p, m->n);
    free(m->p);
    memset(m, 0, sizeof *m);
}

/* NodeDef under construction */
typedef struct nb {
    pbuf_t b;
} nb_t;

static nb_t node(const char *name, const char *op)
{
    nb_t n = {{0}};
    str(&n.b, 1, name);
    str(&n.b, 2, op);
    return n;
}

static void input(nb_t *n, const char *in)
{
    str(&n->b, 3, in);
}

static void attr(nb_t *n, const char *k, pbuf_t *value)
{
    pbuf_t e = {0};
    str(&e, 1, k);
    msg(&e, 2, value);
    msg(&n->b, 5, &e);
}

static void attr_s(nb_t *n, const char *k, const char *s)
{
    pbuf_t v = {0};
    str(&v, 2, s);
    attr(n, k, &v);
}

static void attr_b(nb_t *n, const char *k, bool x)
{
    pbuf_t v = {0};
    key(&v, 5, 0);
    varint(&v, x);
    attr(n, k, &v);
}

static void attr_f(nb_t *n, const char *k, float x)
{
    pbuf_t v = {0};
    key(&v, 4, 5);
    put(&v, &x, 4);
    attr(n, k, &v);
}

static void attr_ints(nb_t *n, const char *k, const int64_t *xs, size_t cnt)
{
    pbuf_t l = {0}, packed = {0}, v = {0};
    for (size_t i = 0; i < cnt; i++)
        varint(&packed, (uint64_t)xs[i]);
    bytes(&l, 3, packed.p, packed.n);
    free(packed.p);
    msg(&v, 1, &l);
    attr(n, k, &v);
}

static void shape(pbuf_t *t, unsigned field, const int64_t *dims, size_t nd)
{
    pbuf_t s = {0};
    for (size_t i = 0; i < nd; i++) {
        pbuf_t d = {0};
        key(&d, 1, 0);
        varint(&d, (uint64_t)dims[i]);
        msg(&s, 2, &d);
    }
    msg(t, field, &s);
}

/* A float tensor: as tensor_content, or (few) as float_val repeated. */
static void attr_tensor_f(nb_t *n, const int64_t *dims, size_t nd, const float *vals, size_t cnt,
                          bool as_content)
{
    pbuf_t t = {0}, v = {0};
    key(&t, 1, 0);
    varint(&t, 1);
    shape(&t, 2, dims, nd);
    if (as_content) {
        bytes(&t, 4, vals, cnt * sizeof(float));
    } else {
        for (size_t i = 0; i < cnt; i++) {
            key(&t, 5, 5);
            put(&t, &vals[i], 4);
        }
    }
    msg(&v, 8, &t);
    attr(n, "value", &v);
}

static void attr_tensor_i32(nb_t *n, const int64_t *dims, size_t nd, const int32_t *vals, size_t cnt)
{
    pbuf_t t = {0}, v = {0}, packed = {0};
    key(&t, 1, 0);
    varint(&t, 3);
    shape(&t, 2, dims, nd);
    for (size_t i = 0; i < cnt; i++)
        varint(&packed, (uint64_t)(int64_t)vals[i]);
    bytes(&t, 7, packed.p, packed.n);
    free(packed.p);
    msg(&v, 8, &t);
    attr(n, "value", &v);
}

/* The graph under construction. */
static pbuf_t g_graph;

static void add(nb_t *n)
{
    msg(&g_graph, 1, &n->b);
}

static void placeholder(const char *name)
{
    nb_t n = node(name, "Placeholder");
    add(&n);
}

static void const_f(const char *name, const int64_t *dims, size_t nd, const float *vals, size_t cnt)
{
    nb_t n = node(name, "Const");
    attr_tensor_f(&n, dims, nd, vals, cnt, cnt > 2);
    add(&n);
}

static void const_i(const char *name, const int64_t *dims, size_t nd, const int32_t *vals, size_t cnt)
{
    nb_t n = node(name, "Const");
    attr_tensor_i32(&n, dims, nd, vals, cnt);
    add(&n);
}

/* Writes the SavedModel, loads it, runs fetch with x fed: false with err
 * set when the run fails. */
static bool try_graph(arena_t *arena, const nn_tensor_t *x, const char *fetch, nn_tensor_t *out,
                      nn_error_t *err)
{
    pbuf_t mg = {0}, sm = {0};
    msg(&mg, 2, &g_graph);
    key(&sm, 1, 0);
    varint(&sm, 1);
    msg(&sm, 2, &mg);
    char dir[] = "/tmp/nnreg-ops-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/saved_model.pb", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sm.p, 1, sm.n, f), sm.n);
    fclose(f);
    free(sm.p);
    infer_model_t *m = NULL;
    nn_error_init(err);
    if (!infer_model_load(dir, &m, err))
        fail_msg("load: %s", err->message);
    unlink(path);
    rmdir(dir);
    bool ok = infer_run(m, arena, x, x ? 1 : 0, &fetch, 1, out, err);
    infer_model_free(m);
    return ok;
}

/* try_graph that must succeed; returns the fetched tensor, in arena. */
static nn_tensor_t run_graph(arena_t *arena, const nn_tensor_t *x, const char *fetch)
{
    nn_tensor_t out;
    nn_error_t err;
    if (!try_graph(arena, x, fetch, &out, &err))
        fail_msg("run: %s", err.message);
    return out;
}

static nn_tensor_t tensor(const char *name, const int64_t *dims, size_t nd, float *data)
{
    nn_tensor_t t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.ndims = nd;
    t.count = 1;
    for (size_t i = 0; i < nd; i++) {
        t.dims[i] = dims[i];
        t.count *= (size_t)dims[i];
    }
    t.data = data;
    return t;
}

static void expect(const nn_tensor_t *got, const int64_t *dims, size_t nd, const float *want,
                   double tol)
{
    assert_int_equal(got->ndims, nd);
    for (size_t i = 0; i < nd; i++)
        assert_int_equal(got->dims[i], dims[i]);
    for (size_t i = 0; i < got->count; i++)
        if (fabs((double)got->data[i] - want[i]) > tol)
            fail_msg("value %zu: got %.7g, want %.7g", i, got->data[i], want[i]);
}

/* ---- a reference convolution from TensorFlow's definition --------------- */

typedef struct conv_case {
    int64_t h, w, c, kh, kw, oc, sh, sw, dh, dw;
    const char *padding;
    bool depthwise; /* oc is then the multiplier */
    bool nchw;
} conv_case_t;

static float ref_conv(const conv_case_t *cc, const float *x, const float *f, int64_t oy, int64_t ox,
                      int64_t o, int64_t ph, int64_t pw)
{
    double acc = 0;
    for (int64_t ky = 0; ky < cc->kh; ky++)
        for (int64_t kx = 0; kx < cc->kw; kx++) {
            int64_t iy = oy * cc->sh + ky * cc->dh - ph, ix = ox * cc->sw + kx * cc->dw - pw;
            if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w)
                continue;
            if (cc->depthwise) {
                int64_t c = o / cc->oc, q = o % cc->oc;
                acc += x[(iy * cc->w + ix) * cc->c + c] *
                       f[((ky * cc->kw + kx) * cc->c + c) * cc->oc + q];
            } else {
                for (int64_t c = 0; c < cc->c; c++)
                    acc += x[(iy * cc->w + ix) * cc->c + c] *
                           f[((ky * cc->kw + kx) * cc->c + c) * cc->oc + o];
            }
        }
    return (float)acc;
}

static void run_conv_case(const conv_case_t *cc)
{
    arena_t *arena = arena_create(0);
    size_t nx = (size_t)(cc->h * cc->w * cc->c), nf = (size_t)(cc->kh * cc->kw * cc->c * cc->oc);
    float *x = arena_alloc(arena, nx * sizeof(float)), *f = arena_alloc(arena, nf * sizeof(float));
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 7) % 11) - 5.0f;
    for (size_t i = 0; i < nf; i++)
        f[i] = (float)((i * 5) % 7) * 0.25f - 0.75f;
    int64_t ekh = (cc->kh - 1) * cc->dh + 1, ekw = (cc->kw - 1) * cc->dw + 1;
    int64_t oh, ow, ph = 0, pw = 0;
    if (strcmp(cc->padding, "SAME") == 0) {
        oh = (cc->h + cc->sh - 1) / cc->sh;
        ow = (cc->w + cc->sw - 1) / cc->sw;
        int64_t th = (oh - 1) * cc->sh + ekh - cc->h, tw = (ow - 1) * cc->sw + ekw - cc->w;
        ph = th > 0 ? th / 2 : 0;
        pw = tw > 0 ? tw / 2 : 0;
    } else {
        oh = (cc->h - ekh) / cc->sh + 1;
        ow = (cc->w - ekw) / cc->sw + 1;
    }
    int64_t och = cc->depthwise ? cc->c * cc->oc : cc->oc;

    /* the feed, NHWC or NCHW */
    float *feed = arena_alloc(arena, nx * sizeof(float));
    for (int64_t y = 0; y < cc->h; y++)
        for (int64_t xx = 0; xx < cc->w; xx++)
            for (int64_t c = 0; c < cc->c; c++) {
                size_t src = (size_t)((y * cc->w + xx) * cc->c + c);
                size_t dst = cc->nchw ? (size_t)((c * cc->h + y) * cc->w + xx) : src;
                feed[dst] = x[src];
            }
    int64_t xd[4] = {1, cc->h, cc->w, cc->c};
    if (cc->nchw) {
        xd[1] = cc->c;
        xd[2] = cc->h;
        xd[3] = cc->w;
    }
    nn_tensor_t in = tensor("x:0", xd, 4, feed);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int64_t fd[4] = {cc->kh, cc->kw, cc->c, cc->oc};
    const_f("f", fd, 4, f, nf);
    nb_t n = node("y", cc->depthwise ? "DepthwiseConv2dNative" : "Conv2D");
    input(&n, "x");
    input(&n, "f");
    attr_s(&n, "padding", cc->padding);
    attr_s(&n, "data_format", cc->nchw ? "NCHW" : "NHWC");
    int64_t strides[4] = {1, cc->sh, cc->sw, 1}, dil[4] = {1, cc->dh, cc->dw, 1};
    if (cc->nchw) {
        strides[1] = 1;
        strides[2] = cc->sh;
        strides[3] = cc->sw;
        dil[1] = 1;
        dil[2] = cc->dh;
        dil[3] = cc->dw;
    }
    attr_ints(&n, "strides", strides, 4);
    attr_ints(&n, "dilations", dil, 4);
    add(&n);
    nn_tensor_t y = run_graph(arena, &in, "y:0");
    int64_t yd[4] = {1, oh, ow, och};
    if (cc->nchw) {
        yd[1] = och;
        yd[2] = oh;
        yd[3] = ow;
    }
    assert_int_equal(y.ndims, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(y.dims[i], yd[i]);
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++)
            for (int64_t o = 0; o < och; o++) {
                float want = ref_conv(cc, x, f, oy, ox, o, ph, pw);
                size_t at = cc->nchw ? (size_t)((o * oh + oy) * ow + ox)
                                     : (size_t)((oy * ow + ox) * och + o);
                if (fabsf(y.data[at] - want) > 1e-4f * (1 + fabsf(want)))
                    fail_msg("%s %s at (%lld,%lld,%lld): got %g want %g", cc->padding,
                             cc->depthwise ? "depthwise" : "conv", (long long)oy, (long long)ox,
                             (long long)o, y.data[at], want);
            }
    arena_destroy(arena);
}

static void test_conv_hand(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    /* 3x3 input 1..9, 2x2 filter of ones, VALID: sums of each 2x2 block */
    float xs[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, ones[4] = {1, 1, 1, 1};
    int64_t xd[4] = {1, 3, 3, 1}, fd[4] = {2, 2, 1, 1};
    nn_tensor_t in = tensor("x", xd, 4, xs);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    const_f("f", fd, 4, ones, 4);
    nb_t n = node("y", "Conv2D");
    input(&n, "x");
    input(&n, "f");
    attr_s(&n, "padding", "VALID");
    int64_t s1[4] = {1, 1, 1, 1};
    attr_ints(&n, "strides", s1, 4);
    add(&n);
    nn_tensor_t y = run_graph(arena, &in, "y");
    int64_t yd[4] = {1, 2, 2, 1};
    float want[4] = {12, 16, 24, 28};
    expect(&y, yd, 4, want, 0);

    /* SAME, stride 2 on 3x3 with a 2x2 filter: out 2x2, padding total
     * (2-1)*2+2-3 = 1, all of it after: [1+2+4+5, 3+6, 7+8, 9] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    const_f("f", fd, 4, ones, 4);
    n = node("y", "Conv2D");
    input(&n, "x");
    input(&n, "f");
    attr_s(&n, "padding", "SAME");
    int64_t s2[4] = {1, 2, 2, 1};
    attr_ints(&n, "strides", s2, 4);
    add(&n);
    y = run_graph(arena, &in, "y");
    float want2[4] = {12, 9, 15, 9};
    expect(&y, yd, 4, want2, 0);

    /* EXPLICIT padding 1 on every side, 2x2 ones, stride 2: out 2x2:
     * [1, 2+3, 4+7, 5+6+8+9] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    const_f("f", fd, 4, ones, 4);
    n = node("y", "Conv2D");
    input(&n, "x");
    input(&n, "f");
    attr_s(&n, "padding", "EXPLICIT");
    attr_ints(&n, "strides", s2, 4);
    int64_t ep[8] = {0, 0, 1, 1, 1, 1, 0, 0};
    attr_ints(&n, "explicit_paddings", ep, 8);
    add(&n);
    y = run_graph(arena, &in, "y");
    float want3[4] = {1, 5, 11, 28};
    expect(&y, yd, 4, want3, 0);
    arena_destroy(arena);
}

static void test_conv_reference(void **state)
{
    (void)state;
    static const conv_case_t cases[] = {
        {5, 5, 1, 3, 3, 1, 1, 1, 1, 1, "SAME", false, false},
        {7, 5, 3, 3, 3, 4, 2, 2, 1, 1, "SAME", false, false},
        {7, 6, 3, 3, 3, 4, 2, 2, 1, 1, "VALID", false, false},
        {9, 8, 2, 3, 3, 3, 1, 1, 2, 2, "SAME", false, false},
        {6, 6, 4, 1, 1, 5, 1, 1, 1, 1, "SAME", false, false},   /* 1x1: one sgemm */
        {7, 7, 4, 1, 1, 5, 2, 2, 1, 1, "VALID", false, false},  /* strided 1x1 */
        {5, 7, 3, 2, 3, 2, 1, 2, 1, 1, "SAME", false, true},    /* NCHW */
        {7, 7, 5, 3, 3, 1, 1, 1, 1, 1, "SAME", true, false},
        {8, 7, 5, 3, 3, 1, 2, 2, 1, 1, "SAME", true, false},
        {9, 9, 3, 3, 3, 2, 2, 2, 1, 1, "VALID", true, false},   /* multiplier 2 */
        {9, 9, 3, 3, 3, 1, 1, 1, 2, 2, "SAME", true, false},    /* dilated */
        {6, 5, 3, 3, 3, 1, 2, 2, 1, 1, "SAME", true, true},     /* NCHW */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv_case(&cases[i]);
}

static void pool_case(const char *op, const char *padding, int64_t k, int64_t s, const float *want,
                      int64_t oh, int64_t ow)
{
    arena_t *arena = arena_create(0);
    /* 4x4 input 1..16, one channel */
    float xs[16];
    for (int i = 0; i < 16; i++)
        xs[i] = (float)(i + 1);
    int64_t xd[4] = {1, 4, 4, 1};
    nn_tensor_t in = tensor("x", xd, 4, xs);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    nb_t n = node("y", op);
    input(&n, "x");
    attr_s(&n, "padding", padding);
    int64_t ks[4] = {1, k, k, 1}, st[4] = {1, s, s, 1};
    attr_ints(&n, "ksize", ks, 4);
    attr_ints(&n, "strides", st, 4);
    add(&n);
    nn_tensor_t y = run_graph(arena, &in, "y");
    int64_t yd[4] = {1, oh, ow, 1};
    expect(&y, yd, 4, want, 1e-5);
    arena_destroy(arena);
}

static void test_pool(void **state)
{
    (void)state;
    /* 3x3 windows, stride 2, SAME on 4x4: out 2x2, padding total 1 (after).
     * Windows: rows 0-2 x cols 0-2; rows 0-2 x cols 2-3; ... AvgPool
     * divides by the in-image count only. */
    float avg_same[4] = {(1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9.0f,
                         (3 + 4 + 7 + 8 + 11 + 12) / 6.0f, (9 + 10 + 11 + 13 + 14 + 15) / 6.0f,
                         (11 + 12 + 15 + 16) / 4.0f};
    pool_case("AvgPool", "SAME", 3, 2, avg_same, 2, 2);
    float max_same[4] = {11, 12, 15, 16};
    pool_case("MaxPool", "SAME", 3, 2, max_same, 2, 2);
    /* 3x3 VALID stride 1: out 2x2 */
    float max_valid[4] = {11, 12, 15, 16};
    pool_case("MaxPool", "VALID", 3, 1, max_valid, 2, 2);
    float avg_valid[4] = {6, 7, 10, 11};
    pool_case("AvgPool", "VALID", 3, 1, avg_valid, 2, 2);
}

/* y = op(x, c) with c a float Const */
static nn_tensor_t binary_case(arena_t *arena, const char *op, const int64_t *xd, size_t xnd,
                               float *xs, const int64_t *cd, size_t cnd, const float *cs,
                               size_t ccount)
{
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    const_f("c", cd, cnd, cs, ccount);
    nb_t n = node("y", op);
    input(&n, "x");
    input(&n, "c");
    input(&n, "^x"); /* control inputs are ignored */
    add(&n);
    nn_tensor_t in = tensor("x:0", xd, xnd, xs);
    return run_graph(arena, &in, "y:0");
}

static void test_elementwise(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t d23[2] = {2, 3}, d3[1] = {3}, d21[2] = {2, 1}, d13[2] = {1, 3};
    float c3[3] = {10, 20, 30};
    nn_tensor_t y = binary_case(arena, "AddV2", d23, 2, xs, d3, 1, c3, 3);
    float w1[6] = {11, 22, 33, 14, 25, 36};
    expect(&y, d23, 2, w1, 0);
    y = binary_case(arena, "BiasAdd", d23, 2, xs, d3, 1, c3, 3);
    expect(&y, d23, 2, w1, 0);
    y = binary_case(arena, "Sub", d23, 2, xs, d3, 1, c3, 3);
    float w2[6] = {-9, -18, -27, -6, -15, -24};
    expect(&y, d23, 2, w2, 0);
    /* [2,1] * [1,3] -> [2,3] outer product */
    float x21[2] = {2, 3};
    y = binary_case(arena, "Mul", d21, 2, x21, d13, 2, c3, 3);
    float w3[6] = {20, 40, 60, 30, 60, 90};
    expect(&y, d23, 2, w3, 0);
    /* scalar */
    float two = 2;
    y = binary_case(arena, "RealDiv", d23, 2, xs, NULL, 0, &two, 1);
    float w4[6] = {0.5f, 1, 1.5f, 2, 2.5f, 3};
    expect(&y, d23, 2, w4, 0);
    float mid[3] = {2, 5, 3};
    y = binary_case(arena, "Minimum", d23, 2, xs, d3, 1, mid, 3);
    float w5[6] = {1, 2, 3, 2, 5, 3};
    expect(&y, d23, 2, w5, 0);
    y = binary_case(arena, "Maximum", d23, 2, xs, d3, 1, mid, 3);
    float w6[6] = {2, 5, 3, 4, 5, 6};
    expect(&y, d23, 2, w6, 0);
    /* [3] + [2,1]: the first operand is the smaller one */
    float x3[3] = {1, 2, 3}, c21[2] = {100, 200};
    y = binary_case(arena, "Add", d3, 1, x3, d21, 2, c21, 2);
    float w7[6] = {101, 102, 103, 201, 202, 203};
    expect(&y, d23, 2, w7, 0);

    /* unary ops */
    float u[5] = {-2, -0.5f, 0, 3, 7};
    int64_t d5[1] = {5};
    static const struct {
        const char *op;
        float want[5];
    } un[] = {
        {"Relu", {0, 0, 0, 3, 7}},
        {"Relu6", {0, 0, 0, 3, 6}},
        {"Sigmoid", {0.11920292f, 0.37754067f, 0.5f, 0.95257413f, 0.99908895f}},
        {"Tanh", {-0.96402758f, -0.46211716f, 0, 0.99505475f, 0.99999834f}},
        {"Identity", {-2, -0.5f, 0, 3, 7}},
    };
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        nb_t n = node("y", un[i].op);
        input(&n, "x");
        add(&n);
        nn_tensor_t in = tensor("x", d5, 1, u);
        y = run_graph(arena, &in, "y");
        expect(&y, d5, 1, un[i].want, 1e-6);
    }
    /* the input is not overwritten by in-place kernels */
    assert_float_equal(u[0], -2, 0);

    /* Softmax of [1,2,3]: e^k / (e + e^2 + e^3) */
    float s3[3] = {1, 2, 3};
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    nb_t n = node("y", "Softmax");
    input(&n, "x");
    add(&n);
    int64_t d13b[2] = {1, 3};
    nn_tensor_t in = tensor("x", d13b, 2, s3);
    y = run_graph(arena, &in, "y");
    float ws[3] = {0.09003057f, 0.24472847f, 0.66524096f};
    expect(&y, d13b, 2, ws, 1e-6);
    arena_destroy(arena);
}

static void test_matmul_and_bn(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    /* [2,3] x [3,2] */
    float xs[6] = {1, 2, 3, 4, 5, 6}, ws[6] = {1, 0, 0, 1, 1, 1};
    int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, d22[2] = {2, 2};
    for (int tb = 0; tb < 2; tb++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        /* with transpose_b the Const holds W transposed: [2,3] */
        float wt[6] = {1, 0, 1, 0, 1, 1};
        const_f("w", tb ? d23 : d32, 2, tb ? wt : ws, 6);
        nb_t n = node("y", "MatMul");
        input(&n, "x");
        input(&n, "w");
        attr_b(&n, "transpose_b", tb);
        add(&n);
        nn_tensor_t in = tensor("x", d23, 2, xs);
        nn_tensor_t y = run_graph(arena, &in, "y");
        /* rows: [1+3, 2+3], [4+6, 5+6] */
        float want[4] = {4, 5, 10, 11};
        expect(&y, d22, 2, want, 1e-6);
    }
    /* FusedBatchNormV3 on [1,1,2,2] NHWC: (x - mean) / sqrt(var + eps) *
     * scale + offset per channel */
    float bx[4] = {1, 2, 3, 4};
    int64_t d4[4] = {1, 1, 2, 2}, d2[1] = {2};
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    float scale[2] = {2, 1}, off[2] = {1, 0}, mean[2] = {1, 2}, var[2] = {3, 0.5f};
    const_f("scale", d2, 1, scale, 2);
    const_f("offset", d2, 1, off, 2);
    const_f("mean", d2, 1, mean, 2);
    const_f("var", d2, 1, var, 2);
    nb_t n = node("y", "FusedBatchNormV3");
    input(&n, "x");
    input(&n, "scale");
    input(&n, "offset");
    input(&n, "mean");
    input(&n, "var");
    attr_f(&n, "epsilon", 1.0f);
    attr_b(&n, "is_training", false);
    add(&n);
    nn_tensor_t in = tensor("x", d4, 4, bx);
    nn_tensor_t y = run_graph(arena, &in, "y:0");
    /* channel 0: (x-1)/2*2+1 = x; channel 1: (x-2)/sqrt(1.5) */
    float want[4] = {1, 0, 3, 2 / sqrtf(1.5f)};
    expect(&y, d4, 4, want, 1e-6);
    arena_destroy(arena);
}

static void test_shapes(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t d123[3] = {1, 2, 3};
    nn_tensor_t in = tensor("x", d123, 3, xs);

    /* Reshape to [-1, 2] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int64_t d2[1] = {2};
    int32_t shp[2] = {-1, 2};
    const_i("s", d2, 1, shp, 2);
    nb_t n = node("y", "Reshape");
    input(&n, "x");
    input(&n, "s");
    add(&n);
    nn_tensor_t y = run_graph(arena, &in, "y");
    int64_t d32[2] = {3, 2};
    expect(&y, d32, 2, xs, 0);

    /* Squeeze [1,2,3] -> [2,3]; with squeeze_dims [0] too */
    for (int k = 0; k < 2; k++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        n = node("y", "Squeeze");
        input(&n, "x");
        int64_t sd[1] = {0};
        if (k)
            attr_ints(&n, "squeeze_dims", sd, 1);
        add(&n);
        y = run_graph(arena, &in, "y");
        int64_t d23[2] = {2, 3};
        expect(&y, d23, 2, xs, 0);
    }

    /* ExpandDims at -1 -> [1,2,3,1] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t m1 = -1;
    const_i("a", NULL, 0, &m1, 1);
    n = node("y", "ExpandDims");
    input(&n, "x");
    input(&n, "a");
    add(&n);
    y = run_graph(arena, &in, "y");
    int64_t d1231[4] = {1, 2, 3, 1};
    expect(&y, d1231, 4, xs, 0);

    /* ConcatV2 of x with itself on axis 1 -> [1,4,3] and on axis 2 -> [1,2,6] */
    for (int32_t axis = 1; axis <= 2; axis++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        const_i("a", NULL, 0, &axis, 1);
        n = node("y", "ConcatV2");
        input(&n, "x");
        input(&n, "x");
        input(&n, "a");
        add(&n);
        y = run_graph(arena, &in, "y");
        if (axis == 1) {
            int64_t d[3] = {1, 4, 3};
            float w[12] = {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6};
            expect(&y, d, 3, w, 0);
        } else {
            int64_t d[3] = {1, 2, 6};
            float w[12] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
            expect(&y, d, 3, w, 0);
        }
    }

    /* ConcatV2 of 20 inputs (more than a node's arguments fit on the
     * stack) on axis 0 -> [20,2,3] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t zero = 0;
    const_i("a", NULL, 0, &zero, 1);
    n = node("y", "ConcatV2");
    for (int k = 0; k < 20; k++)
        input(&n, "x");
    input(&n, "a");
    add(&n);
    y = run_graph(arena, &in, "y");
    assert_int_equal(y.ndims, 3);
    assert_int_equal(y.dims[0], 20);
    for (size_t k = 0; k < 120; k++)
        assert_float_equal(y.data[k], xs[k % 6], 0);

    /* Pad [[0,0],[1,0],[0,1]] -> [1,3,4] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int64_t pd[2] = {3, 2};
    int32_t pads[6] = {0, 0, 1, 0, 0, 1};
    const_i("p", pd, 2, pads, 6);
    n = node("y", "Pad");
    input(&n, "x");
    input(&n, "p");
    add(&n);
    y = run_graph(arena, &in, "y");
    int64_t d134[3] = {1, 3, 4};
    float wp[12] = {0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0};
    expect(&y, d134, 3, wp, 0);

    /* Mean over axes [1,2] with and without keep_dims: 3.5 */
    for (int keep = 0; keep < 2; keep++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        int32_t axes[2] = {1, 2};
        const_i("a", d2, 1, axes, 2);
        n = node("y", "Mean");
        input(&n, "x");
        input(&n, "a");
        attr_b(&n, "keep_dims", keep);
        add(&n);
        y = run_graph(arena, &in, "y");
        float w = 3.5f;
        int64_t dk[3] = {1, 1, 1}, d1[1] = {1};
        expect(&y, keep ? dk : d1, keep ? 3 : 1, &w, 1e-6);
    }
    /* Mean over axis 1 only: [2.5, 3.5, 4.5] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t ax1 = 1;
    const_i("a", NULL, 0, &ax1, 1);
    n = node("y", "Mean");
    input(&n, "x");
    input(&n, "a");
    add(&n);
    y = run_graph(arena, &in, "y");
    int64_t d13[2] = {1, 3};
    float wm[3] = {2.5f, 3.5f, 4.5f};
    expect(&y, d13, 2, wm, 1e-6);

    /* StridedSlice x[0, 1, ::-1] (shrink axes 0 and 1) = [6, 5, 4]; and
     * x[..., 1:] with an ellipsis = [[[2, 3], [5, 6]]] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int64_t d3[1] = {3};
    int32_t sb[3] = {0, 1, 0}, se[3] = {1, 2, 0}, ss[3] = {1, 1, -1};
    const_i("b", d3, 1, sb, 3);
    const_i("e", d3, 1, se, 3);
    const_i("s", d3, 1, ss, 3);
    n = node("y", "StridedSlice");
    input(&n, "x");
    input(&n, "b");
    input(&n, "e");
    input(&n, "s");
    pbuf_t v = {0};
    key(&v, 3, 0);
    varint(&v, 3);
    attr(&n, "shrink_axis_mask", &v);
    key(&v, 3, 0);
    varint(&v, 4);
    attr(&n, "begin_mask", &v);
    key(&v, 3, 0);
    varint(&v, 4);
    attr(&n, "end_mask", &v);
    add(&n);
    y = run_graph(arena, &in, "y");
    float wss[3] = {6, 5, 4};
    expect(&y, d3, 1, wss, 0);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t eb[2] = {0, 1}, ee[2] = {0, 3}, es[2] = {1, 1};
    const_i("b", d2, 1, eb, 2);
    const_i("e", d2, 1, ee, 2);
    const_i("s", d2, 1, es, 2);
    n = node("y", "StridedSlice");
    input(&n, "x");
    input(&n, "b");
    input(&n, "e");
    input(&n, "s");
    key(&v, 3, 0);
    varint(&v, 1);
    attr(&n, "ellipsis_mask", &v);
    add(&n);
    y = run_graph(arena, &in, "y");
    int64_t d122[3] = {1, 2, 2};
    float wel[4] = {2, 3, 5, 6};
    expect(&y, d122, 3, wel, 0);

    /* Split x [1,2,3] in 3 on axis 2: [1,4], [2,5], [3,6] (outputs y:0..2) */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t two = 2;
    const_i("a", NULL, 0, &two, 1);
    n = node("y", "Split");
    input(&n, "a");
    input(&n, "x");
    key(&v, 3, 0);
    varint(&v, 3);
    attr(&n, "num_split", &v);
    add(&n);
    n = node("z", "AddN"); /* y:0 + y:1 + y:2 = [6, 15] */
    input(&n, "y");
    input(&n, "y:1");
    input(&n, "y:2");
    add(&n);
    y = run_graph(arena, &in, "y:2");
    int64_t d121[3] = {1, 2, 1};
    float w36[2] = {3, 6};
    expect(&y, d121, 3, w36, 0);
    {
        /* the same graph again, fetching z */
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        const_i("a", NULL, 0, &two, 1);
        n = node("y", "Split");
        input(&n, "a");
        input(&n, "x");
        key(&v, 3, 0);
        varint(&v, 3);
        attr(&n, "num_split", &v);
        add(&n);
        n = node("z", "AddN");
        input(&n, "y");
        input(&n, "y:1");
        input(&n, "y:2");
        add(&n);
        y = run_graph(arena, &in, "z");
        float w615[2] = {6, 15};
        expect(&y, d121, 3, w615, 0);
    }
    /* SplitV sizes [-1, 1] on axis 1: [[1,2,3]] and [[4,5,6]]; fetch :1 */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t sizes[2] = {-1, 1}, one = 1;
    const_i("s", d2, 1, sizes, 2);
    const_i("a", NULL, 0, &one, 1);
    n = node("y", "SplitV");
    input(&n, "x");
    input(&n, "s");
    input(&n, "a");
    key(&v, 3, 0);
    varint(&v, 2);
    attr(&n, "num_split", &v);
    add(&n);
    y = run_graph(arena, &in, "y:1");
    int64_t d113[3] = {1, 1, 3};
    float w456[3] = {4, 5, 6};
    expect(&y, d113, 3, w456, 0);
    /* Slice begin [0,1,1] size [-1,1,-1]: [[[5, 6]]] */
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    int32_t sb3[3] = {0, 1, 1}, sz3[3] = {-1, 1, -1};
    const_i("b", d3, 1, sb3, 3);
    const_i("s", d3, 1, sz3, 3);
    n = node("y", "Slice");
    input(&n, "x");
    input(&n, "b");
    input(&n, "s");
    add(&n);
    y = run_graph(arena, &in, "y");
    int64_t d112[3] = {1, 1, 2};
    float w56[2] = {5, 6};
    expect(&y, d112, 3, w56, 0);
    /* ArgMax over axis 2 of [[1,2,3],[4,5,6]] with a twist: x[0,0,0]=9 */
    float xa[6] = {9, 2, 3, 4, 5, 6};
    nn_tensor_t ina = tensor("x", d123, 3, xa);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    const_i("a", NULL, 0, &two, 1);
    n = node("y", "ArgMax");
    input(&n, "x");
    input(&n, "a");
    add(&n);
    y = run_graph(arena, &ina, "y");
    int64_t d12[2] = {1, 2};
    float wam[2] = {0, 2};
    expect(&y, d12, 2, wam, 0);
    /* Fill [2,2] with 1.5; ZerosLike x */
    memset(&g_graph, 0, sizeof g_graph);
    int32_t fd2[2] = {2, 2};
    float fv = 1.5f;
    const_i("d", d2, 1, fd2, 2);
    const_f("v", NULL, 0, &fv, 1);
    n = node("y", "Fill");
    input(&n, "d");
    input(&n, "v");
    add(&n);
    y = run_graph(arena, NULL, "y");
    int64_t dd22[2] = {2, 2};
    float wf[4] = {1.5f, 1.5f, 1.5f, 1.5f};
    expect(&y, dd22, 2, wf, 0);
    memset(&g_graph, 0, sizeof g_graph);
    placeholder("x");
    n = node("y", "ZerosLike");
    input(&n, "x");
    add(&n);
    y = run_graph(arena, &in, "y");
    float wz[6] = {0};
    expect(&y, d123, 3, wz, 0);

    /* a Const with one float_val fills its shape; an int32 Const fetched
     * comes back as floats */
    memset(&g_graph, 0, sizeof g_graph);
    float seven = 7;
    int64_t d22[2] = {2, 2};
    const_f("c", d22, 2, &seven, 1);
    y = run_graph(arena, NULL, "c:0");
    float w7[4] = {7, 7, 7, 7};
    expect(&y, d22, 2, w7, 0);
    arena_destroy(arena);
}

/* A text-format SavedModel: tensor_content with escapes, float_val,
 * int_val, list and shape attributes, and a function called through
 * PartitionedCall whose body uses "node:out_arg:index" references:
 * f(x, w) = Relu(MatMul(x, w)) + 1 */
static const char PBTXT[] =
    "saved_model_schema_version: 1\n"
    "meta_graphs {\n"
    "  meta_info_def { tags: \"serve\" }\n"
    "  graph_def {\n"
    "    node { name: \"x\" op: \"Placeholder\"\n"
    "      attr { key: \"dtype\" value { type: DT_FLOAT } }\n"
    "      attr { key: \"shape\" value { shape { dim { size: -1 } dim { size: 2 } } } } }\n"
    /* [[1, -1], [0.5, 2]]: 1.0 = 00 00 80 3f, -1.0 = 00 00 80 bf,
     * 0.5 = 00 00 00 3f, 2.0 = 00 00 00 40 */
    "    node { name: \"w\" op: \"Const\"\n"
    "      attr { key: \"dtype\" value { type: DT_FLOAT } }\n"
    "      attr { key: \"value\" value { tensor { dtype: DT_FLOAT\n"
    "        tensor_shape { dim { size: 2 } dim { size: 2 } }\n"
    "        tensor_content: \"\\000\\000\\200?\\000\\000\\200\\277\\000\\000\\000?\\000\\000\\000@\" } } } }\n"
    "    node { name: \"call\" op: \"PartitionedCall\" input: \"x\" input: \"w\"\n"
    "      attr { key: \"f\" value { func { name: \"f_1\" } } } }\n"
    "    node { name: \"shape\" op: \"Const\"\n"
    "      attr { key: \"value\" value { tensor { dtype: DT_INT32\n"
    "        tensor_shape { dim { size: 1 } } int_val: -1 } } } }\n"
    "    node { name: \"flat\" op: \"Reshape\" input: \"call:0\" input: \"shape\" }\n"
    "    library {\n"
    "      function {\n"
    "        signature { name: \"f_1\" input_arg { name: \"a\" type: DT_FLOAT }\n"
    "          input_arg { name: \"b\" type: DT_FLOAT } output_arg { name: \"out\" type: DT_FLOAT } }\n"
    "        node_def { name: \"mm\" op: \"MatMul\" input: \"a\" input: \"b\"\n"
    "          attr { key: \"transpose_a\" value { b: false } } }\n"
    "        node_def { name: \"r\" op: \"Relu\" input: \"mm:product:0\" }\n"
    "        node_def { name: \"one\" op: \"Const\"\n"
    "          attr { key: \"value\" value { tensor { dtype: DT_FLOAT float_val: 1 } } } }\n"
    "        node_def { name: \"add\" op: \"AddV2\" input: \"r:activations:0\" input: \"one:output:0\"\n"
    "          input: \"^mm\" }\n"
    "        ret { key: \"out\" value: \"add:z:0\" }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void test_pbtxt_and_functions(void **state)
{
    (void)state;
    char dir[] = "/tmp/nnreg-ops-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/saved_model.pbtxt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(PBTXT, f);
    fclose(f);
    infer_model_t *m = NULL;
    nn_error_t err;
    nn_error_init(&err);
    if (!infer_model_load(dir, &m, &err))
        fail_msg("load: %s", err.message);
    unlink(path);
    rmdir(dir);
    arena_t *arena = arena_create(0);
    /* x = [[1, 2]]: x.w = [1 + 1, -1 + 4] = [2, 3]; relu; + 1 = [3, 4] */
    float xs[2] = {1, 2};
    int64_t d12[2] = {1, 2}, d2[1] = {2};
    nn_tensor_t in = tensor("x", d12, 2, xs);
    const char *fetch[3] = {"flat", "call/mm:0", "call:0"};
    nn_tensor_t out[3];
    if (!infer_run(m, arena, &in, 1, fetch, 3, out, &err))
        free_and_fail(m, "run: %s", err.message);
    float want[2] = {3, 4}, mm[2] = {2, 3};
    expect(&out[0], d2, 1, want, 0);
    expect(&out[1], d12, 2, mm, 0);
    expect(&out[2], d12, 2, want, 0);
    assert_string_equal(out[0].name, "flat:0");
    /* x = [[-3, 0]]: [-3, 3] -> relu [0, 3] -> [1, 4] */
    xs[0] = -3;
    xs[1] = 0;
    if (!infer_run(m, arena, &in, 1, fetch, 1, out, &err))
        free_and_fail(m, "second run: %s", err.message);
    float want2[2] = {1, 4};
    expect(&out[0], d2, 1, want2, 0);
    arena_destroy(arena);
    infer_model_free(m);

    /* reading an output a node does not have is refused at load time */
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/nnreg-ops-XXXXXX")));
    snprintf(path, sizeof path, "%s/saved_model.pbtxt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("meta_graphs { graph_def { node { name: \"x\" op: \"Placeholder\" }\n"
          "  node { name: \"r\" op: \"Relu\" input: \"x\" }\n"
          "  node { name: \"y\" op: \"Relu\" input: \"r:3\" } } }\n", f);
    fclose(f);
    nn_error_init(&err);
    assert_false(infer_model_load(dir, &m, &err));
    assert_int_equal(err.status, 500); /* a deployed model: damaged */
    assert_string_equal(err.code, "invalid_graph");
    assert_non_null(strstr(err.message, "\"r\""));
    unlink(path);
    rmdir(dir);

    /* a broken text file is a 400 naming the line */
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/nnreg-ops-XXXXXX")));
    snprintf(path, sizeof path, "%s/saved_model.pbtxt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("saved_model_schema_version: 1\nmeta_graphs {\n  graph_def {\n    node { name: \n", f);
    fclose(f);
    nn_error_init(&err);
    assert_false(infer_model_load(dir, &m, &err));
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "invalid_graph");
    assert_non_null(strstr(err.message, "line "));
    /* the same bytes in memory are the caller's: a 400 */
    {
        static const char broken[] = "saved_model_schema_version: 1\nmeta_graphs {\n  graph_def {\n";
        nn_error_init(&err);
        assert_false(infer_model_parse((const unsigned char *)broken, sizeof broken - 1, true, &m, &err));
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_graph");
    }
    unlink(path);
    rmdir(dir);
}

/* Liveness: a chain of 8 Pads holds two buffers at most (the one being
 * read and the one being written), a chain of 8 Relus one (each writes in
 * place into the buffer only it reads). */
static void test_liveness(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    int64_t xd[4] = {1, 256, 256, 4};
    size_t count = 256 * 256 * 4, bytes = count * sizeof(float);
    float *xs = calloc(count, sizeof(float));
    assert_non_null(xs);
    xs[5] = -1;
    xs[6] = 2;
    nn_tensor_t in = tensor("x", xd, 4, xs);
    for (int relu = 0; relu < 2; relu++) {
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        int64_t pd[2] = {4, 2};
        int32_t pads[8] = {0};
        const_i("p", pd, 2, pads, 8);
        char prev[16] = "x", name[16];
        for (int k = 0; k < 8; k++) {
            snprintf(name, sizeof name, "n%d", k);
            nb_t n = node(name, relu ? "Relu" : "Pad");
            input(&n, prev);
            if (!relu)
                input(&n, "p");
            add(&n);
            strcpy(prev, name);
        }
        pbuf_t mg = {0}, sm = {0};
        msg(&mg, 2, &g_graph);
        msg(&sm, 2, &mg);
        infer_model_t *m = NULL;
        nn_error_t err;
        nn_error_init(&err);
        assert_true(infer_model_parse(sm.p, sm.n, false, &m, &err));
        free(sm.p);
        const char *fetch = "n7";
        nn_tensor_t out;
        infer_stats_t st;
        if (!infer_run_stats(m, arena, &in, 1, &fetch, 1, &out, &st, &err))
            free_and_fail(m, "%s", err.message);
        assert_int_equal(out.count, count);
        assert_float_equal(out.data[5], relu ? 0 : -1, 0);
        assert_float_equal(out.data[6], 2, 0);
        assert_int_equal(st.nodes_run, relu ? 8 : 9);
        if (st.peak_bytes > (relu ? 1 : 2) * (bytes + 64))
            fail_msg("%s chain: peak %zu bytes for %zu-byte tensors", relu ? "Relu" : "Pad",
                     st.peak_bytes, bytes);
        assert_true(st.peak_bytes >= bytes);
        infer_model_free(m);
    }
    free(xs);
    arena_destroy(arena);
}

/* A BiasAdd that alone reads a Conv2D / depthwise / MatMul is added
 * inside it, unless the convolution's own output is fetched too: both
 * ways give conv + bias, and the fetched convolution has no bias. */
static void test_bias_fusion(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        int64_t kh, mult;
    } cases[] = {{"Conv2D", 1, 3}, {"Conv2D", 3, 3}, {"DepthwiseConv2dNative", 3, 1}, {"MatMul", 0, 3}};
    arena_t *arena = arena_create(0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bool mm = cases[c].kh == 0;
        float xs[5 * 5 * 2], fs[3 * 3 * 2 * 3], bs[3] = {0.5f, -1, 2};
        for (size_t i = 0; i < 50; i++)
            xs[i] = (float)(i % 7) - 3;
        for (size_t i = 0; i < 54; i++)
            fs[i] = (float)(i % 5) * 0.5f - 1;
        int64_t xd4[4] = {1, 5, 5, 2}, xd2[2] = {5, 10};
        int64_t fd[4] = {cases[c].kh, cases[c].kh, 2, cases[c].mult}, fd2[2] = {10, 3};
        /* output channels: the filter's 3 for Conv2D and MatMul, 2 x 1 for
         * the depthwise convolution */
        int64_t bd[1] = {strcmp(cases[c].op, "DepthwiseConv2dNative") == 0 ? 2 : 3};
        nn_tensor_t in = mm ? tensor("x", xd2, 2, xs) : tensor("x", xd4, 4, xs);
        nn_tensor_t both[2], alone;
        for (int pass = 0; pass < 2; pass++) {
            memset(&g_graph, 0, sizeof g_graph);
            placeholder("x");
            if (mm)
                const_f("f", fd2, 2, fs, 30);
            else
                const_f("f", fd, 4, fs, (size_t)(fd[0] * fd[1] * 2 * fd[3]));
            const_f("b", bd, 1, bs, (size_t)bd[0]);
            nb_t n = node("c", cases[c].op);
            input(&n, "x");
            input(&n, "f");
            if (!mm) {
                attr_s(&n, "padding", "SAME");
                int64_t st[4] = {1, 1, 1, 1};
                attr_ints(&n, "strides", st, 4);
            }
            add(&n);
            n = node("y", "BiasAdd");
            input(&n, "c");
            input(&n, "b");
            add(&n);
            pbuf_t mg = {0}, sm = {0};
            msg(&mg, 2, &g_graph);
            msg(&sm, 2, &mg);
            infer_model_t *m = NULL;
            nn_error_t err;
            nn_error_init(&err);
            assert_true(infer_model_parse(sm.p, sm.n, false, &m, &err));
            free(sm.p);
            const char *f2[2] = {"c", "y"};
            bool ok = pass == 0 ? infer_run(m, arena, &in, 1, f2, 2, both, &err)
                                : infer_run(m, arena, &in, 1, &f2[1], 1, &alone, &err);
            if (!ok)
                free_and_fail(m, "%s: %s", cases[c].op, err.message);
            infer_model_free(m);
        }
        size_t ch = (size_t)bd[0];
        assert_int_equal(both[1].count, alone.count);
        for (size_t i = 0; i < alone.count; i++) {
            assert_float_equal(both[1].data[i], both[0].data[i] + bs[i % ch], 1e-5);
            assert_float_equal(alone.data[i], both[1].data[i], 1e-5);
        }
    }
    arena_destroy(arena);
}

static void attr_strs(nb_t *n, const char *k, const char *const *xs, size_t cnt)
{
    pbuf_t l = {0}, v = {0};
    for (size_t i = 0; i < cnt; i++)
        str(&l, 2, xs[i]);
    msg(&v, 1, &l);
    attr(n, k, &v);
}

/* _FusedConv2D, FusedDepthwiseConv2dNative and _FusedMatMul give what
 * the ops they stand for give, run one after the other */
static void test_fused_ops(void **state)
{
    (void)state;
    static const struct {
        const char *fused, *base;
        const char *ops[2];
        size_t nops;
    } cases[] = {
        {"_FusedConv2D", "Conv2D", {"BiasAdd", "Relu6"}, 2},
        {"_FusedConv2D", "Conv2D", {"BiasAdd", NULL}, 1},
        {"_FusedConv2D", "Conv2D", {"FusedBatchNorm", "Relu"}, 2},
        {"FusedDepthwiseConv2dNative", "DepthwiseConv2dNative", {"BiasAdd", "Relu6"}, 2},
        {"_FusedMatMul", "MatMul", {"BiasAdd", "Tanh"}, 2},
    };
    arena_t *arena = arena_create(0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bool mm = strcmp(cases[c].base, "MatMul") == 0;
        bool dw = strcmp(cases[c].base, "DepthwiseConv2dNative") == 0;
        bool bn = strcmp(cases[c].ops[0], "FusedBatchNorm") == 0;
        float xs[50], fs[54], p1[3] = {0.5f, -1, 2}, p2[3] = {0.1f, 0.2f, -0.3f},
                              p3[3] = {0.3f, -0.2f, 0}, p4[3] = {1, 0.5f, 2};
        for (size_t i = 0; i < 50; i++)
            xs[i] = (float)(i % 7) - 3;
        for (size_t i = 0; i < 54; i++)
            fs[i] = (float)(i % 5) * 0.5f - 1;
        int64_t xd4[4] = {1, 5, 5, 2}, xd2[2] = {5, 10}, fd[4] = {3, 3, 2, dw ? 1 : 3}, fd2[2] = {10, 3};
        int64_t cd[1] = {dw ? 2 : 3};
        nn_tensor_t in = mm ? tensor("x", xd2, 2, xs) : tensor("x", xd4, 4, xs);
        memset(&g_graph, 0, sizeof g_graph);
        placeholder("x");
        if (mm)
            const_f("f", fd2, 2, fs, 30);
        else
            const_f("f", fd, 4, fs, (size_t)(9 * 2 * fd[3]));
        const_f("p1", cd, 1, p1, (size_t)cd[0]);
        const_f("p2", cd, 1, p2, (size_t)cd[0]);
        const_f("p3", cd, 1, p3, (size_t)cd[0]);
        const_f("p4", cd, 1, p4, (size_t)cd[0]);
        int64_t st[4] = {1, 2, 2, 1};
        for (int fusedv = 0; fusedv < 2; fusedv++) {
            nb_t n = node(fusedv ? "yf" : "c", fusedv ? cases[c].fused : cases[c].base);
            input(&n, "x");
            input(&n, "f");
            if (fusedv) {
                input(&n, "p1");
                if (bn) {
                    input(&n, "p2");
                    input(&n, "p3");
                    input(&n, "p4");
                    attr_f(&n, "epsilon", 0.01f);
                }
                attr_strs(&n, "fused_ops", cases[c].ops, cases[c].nops);
            }
            if (!mm) {
                attr_s(&n, "padding", "SAME");
                attr_ints(&n, "strides", st, 4);
            }
            add(&n);
        }
        nb_t n = node("b", bn ? "FusedBatchNormV3" : "BiasAdd");
        input(&n, "c");
        input(&n, "p1");
        if (bn) {
            input(&n, "p2");
            input(&n, "p3");
            input(&n, "p4");
            attr_f(&n, "epsilon", 0.01f);
        }
        add(&n);
        const char *last = "b";
        if (cases[c].nops == 2) {
            n = node("r", cases[c].ops[1]);
            input(&n, "b");
            add(&n);
            last = "r";
        }
        pbuf_t mg = {0}, sm = {0};
        msg(&mg, 2, &g_graph);
        msg(&sm, 2, &mg);
        infer_model_t *m = NULL;
        nn_error_t err;
        nn_error_init(&err);
        assert_true(infer_model_parse(sm.p, sm.n, false, &m, &err));
        free(sm.p);
        const char *fetch[2] = {"yf", last};
        nn_tensor_t out[2];
        if (!infer_run(m, arena, &in, 1, fetch, 2, out, &err))
            free_and_fail(m, "%s: %s", cases[c].fused, err.message);
        assert_int_equal(out[0].count, out[1].count);
        assert_int_equal(out[0].ndims, out[1].ndims);
        for (size_t i = 0; i < out[0].count; i++)
            if (fabsf(out[0].data[i] - out[1].data[i]) > 1e-5f)
                fail_msg("%s case %zu value %zu: %g vs %g", cases[c].fused, c, i, out[0].data[i],
                         out[1].data[i]);
        infer_model_free(m);
    }
    arena_destroy(arena);
}

/* every op of the kernel table is found (the table is searched by
 * bisection: this catches an entry out of order) */
static void test_supported_ops(void **state)
{
    (void)state;
    static const char *const ops[] = {
        "Abs",
        "Add",
        "AddN",
        "AddV2",
        "ArgMax",
        "ArgMin",
        "AvgPool",
        "BiasAdd",
        "Cast",
        "Ceil",
        "Concat",
        "ConcatV2",
        "Const",
        "Conv2D",
        "DepthwiseConv2dNative",
        "Div",
        "Elu",
        "Exp",
        "ExpandDims",
        "Floor",
        "Fill",
        "FusedBatchNorm",
        "FusedBatchNormV2",
        "FusedBatchNormV3",
        "FusedDepthwiseConv2dNative",
        "Identity",
        "IdentityN",
        "LeakyRelu",
        "Log",
        "LogSoftmax",
        "MatMul",
        "Max",
        "MaxPool",
        "Maximum",
        "Mean",
        "Min",
        "Minimum",
        "Mul",
        "Neg",
        "NoOp",
        "OnesLike",
        "Pack",
        "Pad",
        "PadV2",
        "Placeholder",
        "PlaceholderWithDefault",
        "Pow",
        "Prod",
        "ReadVariableOp",
        "RealDiv",
        "Reciprocal",
        "Relu",
        "Relu6",
        "Reshape",
        "Rsqrt",
        "Selu",
        "Shape",
        "Sigmoid",
        "Slice",
        "Snapshot",
        "Softmax",
        "Softplus",
        "Softsign",
        "Split",
        "SplitV",
        "Sqrt",
        "Square",
        "SquaredDifference",
        "Squeeze",
        "StopGradient",
        "StridedSlice",
        "Sub",
        "Sum",
        "Tanh",
        "Transpose",
        "VarHandleOp",
        "Variable",
        "VariableV2",
        "ZerosLike",
        "_FusedConv2D",
        "_FusedMatMul",
        "StatefulPartitionedCall", "PartitionedCall",
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!infer_op_supported(ops[i]))
            fail_msg("op %s is not found", ops[i]);
    assert_false(infer_op_supported("ParseExampleV2"));
    assert_false(infer_op_supported(""));
    assert_false(infer_op_supported("conv2d"));
}

/* A Placeholder "x" declaring dims, and y = Identity(x). */
static void shaped_identity(const int64_t *dims, size_t nd)
{
    memset(&g_graph, 0, sizeof g_graph);
    nb_t x = node("x", "Placeholder");
    pbuf_t v = {0};
    shape(&v, 7, dims, nd); /* AttrValue.shape */
    attr(&x, "shape", &v);
    add(&x);
    nb_t y = node("y", "Identity");
    input(&y, "x");
    add(&y);
}

/* A feed that differs from the declared shape only by size-1 dimensions
 * takes the declared shape; any other difference is refused, even with
 * the same number of values (another layout). */
static void test_declared_shapes(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t declared[2] = {2, 3}, fed[4] = {1, 2, 1, 3};
    shaped_identity(declared, 2);
    nn_tensor_t in = tensor("x:0", fed, 4, xs);
    nn_tensor_t out = run_graph(arena, &in, "y:0");
    expect(&out, declared, 2, xs, 0);

    int64_t declared3[3] = {1, 2, 3}, swapped[3] = {1, 3, 2};
    shaped_identity(declared3, 3);
    in = tensor("x:0", swapped, 3, xs);
    nn_error_t err;
    assert_false(try_graph(arena, &in, "y:0", &out, &err));
    assert_string_equal(err.code, "invalid_input");
    assert_non_null(strstr(err.message, "[1, 3, 2]"));

    /* -1 (any size) matches as it is, and never by dropping 1s */
    int64_t any[2] = {-1, 3}, three[3] = {1, 1, 3};
    shaped_identity(any, 2);
    in = tensor("x:0", three, 3, xs);
    assert_false(try_graph(arena, &in, "y:0", &out, &err));
    assert_string_equal(err.code, "invalid_input");
    arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_hand),      cmocka_unit_test(test_conv_reference),
        cmocka_unit_test(test_pool),           cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_matmul_and_bn),  cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_pbtxt_and_functions),
        cmocka_unit_test(test_supported_ops),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_bias_fusion),
        cmocka_unit_test(test_fused_ops),
        cmocka_unit_test(test_declared_shapes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_graph.p);
    return rc;
}
