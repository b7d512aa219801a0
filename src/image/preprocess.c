/* preprocess.c - API.md "Image preprocessing, exactly", steps 2 to 7.
 *
 * The output is computed pixel by pixel in its own coordinates: for CROP
 * only the kept window of the resized image is ever interpolated, and for
 * FILL only the placed rectangle, so no intermediate image is allocated
 * (a resized size can be far larger than the output when CROP meets a very
 * thin image).  Source coordinates and the bilinear blend are computed in
 * double and rounded to float once, which is the resized float image of
 * step 3; steps 4 to 6 then run in float, in the order API.md gives them,
 * so that the result agrees with a float32 implementation of each step to
 * a few ulps. */
#include "image/image.h"

#include <math.h>
#include <string.h>

#include "model/npy.h"

bool image_bbox_check(const image_bbox_t *bbox, const char *path, nn_error_t *err)
{
    const double v[4] = {bbox->xmin, bbox->ymin, bbox->xmax, bbox->ymax};
    for (int i = 0; i < 4; i++)
        if (!isfinite(v[i]) || v[i] < 0 || v[i] > 1)
            return nn_error_field(err, path,
                                  "xmin, ymin, xmax and ymax must be fractions between 0 and 1 "
                                  "(got %g, %g, %g, %g)",
                                  v[0], v[1], v[2], v[3]);
    if (!(bbox->xmin < bbox->xmax) || !(bbox->ymin < bbox->ymax))
        return nn_error_field(err, path,
                              "is empty: xmin must be below xmax and ymin below ymax (got %g, %g, "
                              "%g, %g)",
                              v[0], v[1], v[2], v[3]);
    return true;
}

/* floor(v·s + 0.5), at least 1. */
static double scaled_side(unsigned v, double s)
{
    double r = floor((double)v * s + 0.5);
    return r < 1 ? 1 : r;
}

typedef struct geometry {
    unsigned cx0, cy0, cw, ch; /* the bbox crop of the decoded image */
    double rw, rh;             /* the resized size (may exceed the output) */
    long long ox, oy;          /* resized pixel of output (0,0): X + ox */
    unsigned ow, oh;           /* output size */
} geometry_t;

static void compute_geometry(const image_spec_t *spec, unsigned w, unsigned h, geometry_t *g)
{
    const unsigned W = spec->target_width, H = spec->target_height;
    memset(g, 0, sizeof(*g));
    g->rw = g->ow = W; /* SQUASH, and whatever an unknown resize value is */
    g->rh = g->oh = H;
    g->cw = w;
    g->ch = h;
    g->ox = g->oy = 0;
    switch (spec->resize) {
    case IMAGE_RESIZE_SQUASH:
        g->rw = W;
        g->rh = H;
        g->ow = W;
        g->oh = H;
        break;
    case IMAGE_RESIZE_CROP: {
        double s = fmax((double)W / w, (double)H / h);
        g->rw = scaled_side(w, s);
        g->rh = scaled_side(h, s);
        /* s is the larger ratio, so rw >= W and rh >= H up to rounding;
         * the max() keeps a window inside the image whatever happens. */
        g->ox = (long long)floor(fmax(g->rw - W, 0) / 2);
        g->oy = (long long)floor(fmax(g->rh - H, 0) / 2);
        g->ow = W;
        g->oh = H;
        break;
    }
    case IMAGE_RESIZE_FILL: {
        double s = fmin((double)W / w, (double)H / h);
        g->rw = fmin(scaled_side(w, s), W);
        g->rh = fmin(scaled_side(h, s), H);
        g->ox = -(long long)floor((W - g->rw) / 2);
        g->oy = -(long long)floor((H - g->rh) / 2);
        g->ow = W;
        g->oh = H;
        break;
    }
    case IMAGE_RESIZE_NETWORK: {
        double s = (double)W / (w > h ? w : h);
        g->rw = scaled_side(w, s);
        g->rh = scaled_side(h, s);
        g->ow = (unsigned)g->rw;
        g->oh = (unsigned)g->rh;
        break;
    }
    }
}

void image_output_size(const image_spec_t *spec, unsigned w, unsigned h, unsigned *out_w,
                       unsigned *out_h)
{
    geometry_t g;
    compute_geometry(spec, w ? w : 1, h ? h : 1, &g);
    *out_w = g.ow;
    *out_h = g.oh;
}

/* One axis of a bilinear resize: for the resized coordinate r in a size of
 * n_out from n_in, the two source indices and the weight of the second.
 * Half-pixel centres, source coordinate clamped to [0, n_in - 1]. */
typedef struct tap {
    unsigned i0, i1;
    double f;
} tap_t;

static tap_t tap_at(long long r, double n_out, unsigned n_in)
{
    double s = ((double)r + 0.5) * ((double)n_in / n_out) - 0.5;
    if (s < 0)
        s = 0;
    if (s > (double)(n_in - 1))
        s = (double)(n_in - 1);
    tap_t t;
    t.i0 = (unsigned)floor(s);
    t.i1 = t.i0 + 1 < n_in ? t.i0 + 1 : t.i0;
    t.f = s - t.i0;
    return t;
}

/* Index of (y, x, c) in a tensor or full-image mean laid out as given. */
static inline size_t layout_index(image_order_t order, size_t y, size_t x, size_t c, size_t H,
                                  size_t W, size_t C)
{
    switch (order) {
    case IMAGE_ORDER_NHWC:
        return (y * W + x) * C + c;
    case IMAGE_ORDER_NCHW:
        return (c * H + y) * W + x;
    case IMAGE_ORDER_NWHC:
        return (x * H + y) * C + c;
    case IMAGE_ORDER_NCWH:
        return (c * W + x) * H + y;
    }
    return 0;
}

typedef enum { MEAN_NONE, MEAN_CHANNEL, MEAN_FULL } mean_kind_t;

/* How the spec's mean applies to an output of W x H x C: per channel, or
 * per value in one of the four layouts (the tensor's own order first). */
static bool mean_plan(const image_spec_t *spec, unsigned C, unsigned W, unsigned H,
                      mean_kind_t *kind, image_order_t *layout, nn_error_t *err)
{
    *kind = MEAN_NONE;
    if (!spec->mean || spec->uint8)
        return true;
    const int64_t *s = spec->mean_shape;
    size_t n = spec->mean_ndims, lead = 0;
    while (lead < n && s[lead] == 1)
        lead++;
    /* The tensor's own order: the shape without the batch axis. */
    int64_t own[3] = {0, 0, 0};
    switch (spec->order) {
    case IMAGE_ORDER_NHWC:
        own[0] = H, own[1] = W, own[2] = C;
        break;
    case IMAGE_ORDER_NCHW:
        own[0] = C, own[1] = H, own[2] = W;
        break;
    case IMAGE_ORDER_NWHC:
        own[0] = W, own[1] = H, own[2] = C;
        break;
    case IMAGE_ORDER_NCWH:
        own[0] = C, own[1] = W, own[2] = H;
        break;
    }
    bool sized = spec->resize != IMAGE_RESIZE_NETWORK;
    if (n >= 1 && lead >= n - 1 && s[n - 1] == C) {
        *kind = MEAN_CHANNEL;
        return true;
    }
    if (sized && n >= 3 && lead >= n - 3 && s[n - 3] == own[0] && s[n - 2] == own[1] &&
        s[n - 1] == own[2]) {
        *kind = MEAN_FULL;
        *layout = spec->order;
        return true;
    }
    char why[512];
    npy_mean_layout_t fit = npy_mean_fits(s, n, C, sized ? W : 0, sized ? H : 0, why, sizeof(why));
    switch (fit) {
    case NPY_MEAN_NO_FIT:
        return nn_error_set(err, 400, "invalid_mean_file", "the mean file %s", why);
    case NPY_MEAN_PER_CHANNEL:
        *kind = MEAN_CHANNEL;
        return true;
    case NPY_MEAN_HWC:
        *layout = IMAGE_ORDER_NHWC;
        break;
    case NPY_MEAN_CHW:
        *layout = IMAGE_ORDER_NCHW;
        break;
    case NPY_MEAN_WHC:
        *layout = IMAGE_ORDER_NWHC;
        break;
    case NPY_MEAN_CWH:
        *layout = IMAGE_ORDER_NCWH;
        break;
    }
    *kind = MEAN_FULL;
    return true;
}

/* The horizontal half of the bilinear blend for one source row (of the
 * bbox crop), for every output column: top = l + (r - l)·fx.  Two rows are
 * kept, since consecutive output rows mostly share their source rows (in
 * an upscale, always), so each source row is blended about once. */
typedef struct row_cache {
    unsigned index[2];
    double *row[2];
    unsigned next; /* the slot to replace */
} row_cache_t;

static const double *hrow(row_cache_t *c, const image_rgb_t *image, const geometry_t *g,
                          const tap_t *xt, unsigned W, unsigned y)
{
    for (unsigned s = 0; s < 2; s++)
        if (c->index[s] == y) {
            c->next = 1 - s; /* keep the row just used */
            return c->row[s];
        }
    unsigned s = c->next;
    c->next = 1 - s;
    c->index[s] = y;
    double *out = c->row[s];
    const uint8_t *src = image->pixels + ((size_t)(g->cy0 + y) * image->width + g->cx0) * 3;
    for (unsigned X = 0; X < W; X++) {
        const tap_t tx = xt[X];
        double *o = out + (size_t)X * 3;
        if (tx.i0 == UINT32_MAX) {
            o[0] = o[1] = o[2] = 255.0; /* FILL canvas, overwritten anyway */
            continue;
        }
        const uint8_t *a = src + (size_t)tx.i0 * 3, *b = src + (size_t)tx.i1 * 3;
        for (unsigned k = 0; k < 3; k++) {
            double l = a[k], r = b[k];
            o[k] = l + (r - l) * tx.f;
        }
    }
    return out;
}

bool image_preprocess(arena_t *arena, const image_rgb_t *image, const image_bbox_t *bbox,
                      const image_spec_t *spec, nn_tensor_t *out, nn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!image->pixels || image->width == 0 || image->height == 0)
        return nn_error_set(err, 400, "invalid_image", "the image is empty");
    if (spec->target_width == 0 || spec->target_height == 0)
        return nn_error_internal(err, "image spec without a target size");
    if (bbox && !image_bbox_check(bbox, "bbox", err))
        return false;

    /* Step 2: the bbox crop. */
    const unsigned iw = image->width, ih = image->height;
    unsigned x0 = 0, y0 = 0, x1 = iw, y1 = ih;
    if (bbox) {
        x0 = (unsigned)floor(bbox->xmin * iw);
        y0 = (unsigned)floor(bbox->ymin * ih);
        x1 = (unsigned)ceil(bbox->xmax * iw);
        y1 = (unsigned)ceil(bbox->ymax * ih);
        if (x1 > iw)
            x1 = iw;
        if (y1 > ih)
            y1 = ih;
        if (x0 >= x1 || y0 >= y1) /* cannot happen after the check; stay safe */
            return nn_error_field(err, "bbox", "selects no pixel of the %ux%u image", iw, ih);
    }
    geometry_t g;
    compute_geometry(spec, x1 - x0, y1 - y0, &g);
    g.cx0 = x0;
    g.cy0 = y0;

    const unsigned C = spec->channels == IMAGE_CHANNELS_L ? 1 : 3;
    const unsigned W = g.ow, H = g.oh;
    mean_kind_t mean_kind;
    image_order_t mean_layout = spec->order;
    if (!mean_plan(spec, C, W, H, &mean_kind, &mean_layout, err))
        return false;

    const size_t count = (size_t)W * H * C;
    float *data = arena_alloc(arena, count * sizeof(float));
    tap_t *xt = arena_alloc(arena, (size_t)W * sizeof(tap_t));
    tap_t *yt = arena_alloc(arena, (size_t)H * sizeof(tap_t));
    if (!data || !xt || !yt)
        return nn_error_oom(err);
    /* Taps of every output column and row (inside the resized image). */
    for (unsigned X = 0; X < W; X++) {
        long long r = (long long)X + g.ox;
        if (r >= 0 && (double)r < g.rw)
            xt[X] = tap_at(r, g.rw, g.cw);
        else
            xt[X].i0 = UINT32_MAX; /* FILL canvas */
    }
    for (unsigned Y = 0; Y < H; Y++) {
        long long r = (long long)Y + g.oy;
        if (r >= 0 && (double)r < g.rh)
            yt[Y] = tap_at(r, g.rh, g.ch);
        else
            yt[Y].i0 = UINT32_MAX;
    }

    /* One output row at a time: the resized RGB row (step 3), then steps
     * 4 to 6 into a row in the tensor's channel order, then step 7 writes
     * it to its place.  Each pass is a plain loop without per-value
     * branching on the spec. */
    float *rgb = arena_alloc(arena, (size_t)W * 3 * sizeof(float));
    float *vals = arena_alloc(arena, (size_t)W * C * sizeof(float));
    if (!rgb || !vals)
        return nn_error_oom(err);
    row_cache_t cache = {{UINT32_MAX, UINT32_MAX},
                         {arena_alloc(arena, (size_t)W * 3 * sizeof(double)),
                          arena_alloc(arena, (size_t)W * 3 * sizeof(double))},
                         0};
    if (!cache.row[0] || !cache.row[1])
        return nn_error_oom(err);
    const float scaling = (float)spec->pixel_scaling;
    const unsigned src_c[3] = {spec->channels == IMAGE_CHANNELS_BGR ? 2u : 0u, 1u,
                               spec->channels == IMAGE_CHANNELS_BGR ? 0u : 2u};
    for (unsigned Y = 0; Y < H; Y++) {
        const tap_t ty = yt[Y];
        /* Step 3: bilinear, blended in double, rounded to float once. */
        if (ty.i0 == UINT32_MAX) {
            for (size_t k = 0; k < (size_t)W * 3; k++)
                rgb[k] = 255.0f; /* FILL: white canvas */
        } else {
            const double *top = hrow(&cache, image, &g, xt, W, ty.i0);
            const double *bottom = hrow(&cache, image, &g, xt, W, ty.i1);
            const double fy = ty.f;
            for (size_t k = 0; k < (size_t)W * 3; k++)
                rgb[k] = (float)(top[k] + (bottom[k] - top[k]) * fy);
            for (unsigned X = 0; X < W; X++)
                if (xt[X].i0 == UINT32_MAX)
                    rgb[3 * X] = rgb[3 * X + 1] = rgb[3 * X + 2] = 255.0f;
        }
        /* Step 4: channels, into the tensor's channel order. */
        if (C == 1) {
            for (unsigned X = 0; X < W; X++) {
                const float *p = rgb + (size_t)X * 3;
                float l = 0.299f * p[0];
                l = l + 0.587f * p[1];
                vals[X] = l + 0.114f * p[2];
            }
        } else {
            for (unsigned X = 0; X < W; X++)
                for (unsigned c = 0; c < 3; c++)
                    vals[(size_t)X * 3 + c] = rgb[(size_t)X * 3 + src_c[c]];
        }
        const size_t n = (size_t)W * C;
        if (spec->uint8) {
            for (size_t k = 0; k < n; k++) {
                float x = nearbyintf(vals[k]);
                vals[k] = x < 0 ? 0 : x > 255 ? 255 : x;
            }
        } else {
            /* Step 5, two float operations in API.md's order. */
            for (size_t k = 0; k < n; k++)
                vals[k] = vals[k] / 255.0f * scaling;
            /* Step 6. */
            if (mean_kind == MEAN_CHANNEL) {
                for (unsigned X = 0; X < W; X++)
                    for (unsigned c = 0; c < C; c++)
                        vals[(size_t)X * C + c] -= spec->mean[c];
            } else if (mean_kind == MEAN_FULL && mean_layout == IMAGE_ORDER_NHWC) {
                const float *m = spec->mean + (size_t)Y * n;
                for (size_t k = 0; k < n; k++)
                    vals[k] -= m[k];
            } else if (mean_kind == MEAN_FULL) {
                for (unsigned X = 0; X < W; X++)
                    for (unsigned c = 0; c < C; c++)
                        vals[(size_t)X * C + c] -=
                            spec->mean[layout_index(mean_layout, Y, X, c, H, W, C)];
            }
        }
        /* Step 7: the row to its place in the layout. */
        if (spec->order == IMAGE_ORDER_NHWC) {
            memcpy(data + (size_t)Y * n, vals, n * sizeof(float));
        } else {
            for (unsigned X = 0; X < W; X++)
                for (unsigned c = 0; c < C; c++)
                    data[layout_index(spec->order, Y, X, c, H, W, C)] = vals[(size_t)X * C + c];
        }
    }

    out->name = NULL;
    out->ndims = 4;
    out->dims[0] = 1;
    switch (spec->order) {
    case IMAGE_ORDER_NHWC:
        out->dims[1] = H, out->dims[2] = W, out->dims[3] = C;
        break;
    case IMAGE_ORDER_NCHW:
        out->dims[1] = C, out->dims[2] = H, out->dims[3] = W;
        break;
    case IMAGE_ORDER_NWHC:
        out->dims[1] = W, out->dims[2] = H, out->dims[3] = C;
        break;
    case IMAGE_ORDER_NCWH:
        out->dims[1] = C, out->dims[2] = W, out->dims[3] = H;
        break;
    }
    out->count = count;
    out->data = data;
    return true;
}
