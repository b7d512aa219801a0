/* image_bench - time decode + preprocessing of the network fixtures'
 * input.png, beside libpng's own simplified read of the same bytes (the
 * ceiling: decoding alone, no conversion, no resize).
 *
 *   make -C build tests/bench/image_bench
 *   build/tests/bench/image_bench [tests/fixtures] [iterations]
 *
 * Prints the median of each step in microseconds of this thread's CPU time
 * (wall time on a loaded shared machine mostly measures the wait for a
 * CPU); never fails on time. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/image.h"
#include "json/jv.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* CPU time: the machine is shared */
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp);
    return v[n / 2];
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int bench(const char *fixtures, const char *name, int iters)
{
    char path[1024];
    size_t png_len, json_len;
    snprintf(path, sizeof(path), "%s/networks/%s/input.png", fixtures, name);
    unsigned char *png = slurp(path, &png_len);
    snprintf(path, sizeof(path), "%s/networks/%s/network.json", fixtures, name);
    unsigned char *json = slurp(path, &json_len);
    if (!png || !json) {
        fprintf(stderr, "image_bench: cannot read the %s fixture under %s\n", name, fixtures);
        return 1;
    }
    arena_t *keep = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *net = jv_parse(keep, (const char *)json, json_len, "network.json", &err);
    jv_t *inputs = net ? jv_get(jv_get(net, "preprocessing"), "inputs") : NULL;
    if (!inputs || inputs->type != JV_ARRAY || inputs->u.array.n == 0) {
        fprintf(stderr, "image_bench: %s: no preprocessing inputs\n", name);
        return 1;
    }
    jv_t *image = jv_get(inputs->u.array.items[0], "image");
    const jv_t *mean = jv_get(image, "mean_file");
    char mean_path[1024];
    if (mean && mean->type == JV_STRING)
        snprintf(mean_path, sizeof(mean_path), "%s/networks/%s/%s", fixtures, name,
                 mean->u.string.ptr);
    image_spec_t spec;
    if (!image_spec_from_json(keep, image, mean && mean->type == JV_STRING ? mean_path : NULL,
                              &spec, &err)) {
        fprintf(stderr, "image_bench: %s\n", err.message);
        return 1;
    }
    double *t_ref = calloc((size_t)iters, sizeof(double));
    double *t_dec = calloc((size_t)iters, sizeof(double));
    double *t_pre = calloc((size_t)iters, sizeof(double));
    unsigned w = 0, h = 0;
    nn_tensor_t t = {0};
    for (int i = 0; i < iters; i++) {
        /* Ceiling: libpng's simplified API straight to RGB. */
        double t0 = now_us();
        png_image ref;
        memset(&ref, 0, sizeof(ref));
        ref.version = PNG_IMAGE_VERSION;
        if (!png_image_begin_read_from_memory(&ref, png, png_len))
            return 1;
        ref.format = PNG_FORMAT_RGB;
        void *buf = malloc(PNG_IMAGE_SIZE(ref));
        if (!buf || !png_image_finish_read(&ref, NULL, buf, 0, NULL))
            return 1;
        free(buf);
        double t1 = now_us();
        arena_t *a = arena_create(0);
        image_rgb_t img;
        if (!image_decode(a, png, png_len, &img, &err))
            return 1;
        double t2 = now_us();
        if (!image_preprocess(a, &img, NULL, &spec, &t, &err))
            return 1;
        double t3 = now_us();
        w = img.width;
        h = img.height;
        arena_destroy(a);
        t_ref[i] = t1 - t0;
        t_dec[i] = t2 - t1;
        t_pre[i] = t3 - t2;
    }
    double ref_us = median(t_ref, iters), dec_us = median(t_dec, iters),
           pre_us = median(t_pre, iters);
    printf("%-20s %ux%u -> [%lld, %lld, %lld, %lld]  libpng simplified %.0f us  decode %.0f us "
           "(%.2fx)  preprocess %.0f us  total %.0f us  (median of %d)\n",
           name, w, h, (long long)t.dims[0], (long long)t.dims[1], (long long)t.dims[2],
           (long long)t.dims[3], ref_us, dec_us, dec_us / ref_us, pre_us, dec_us + pre_us, iters);
    free(t_ref);
    free(t_dec);
    free(t_pre);
    free(png);
    free(json);
    arena_destroy(keep);
    return 0;
}

int main(int argc, char **argv)
{
    const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";
    int iters = argc > 2 ? atoi(argv[2]) : 200;
    if (iters < 1 || iters > 100000)
        iters = 200;
    return bench(fixtures, "posenet", iters) || bench(fixtures, "nsfw_mobilenet_v2", iters);
}
