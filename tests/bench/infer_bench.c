/* infer_bench - times the inference engine on one network.
 *
 *   infer_bench VERSION_DIR INPUT.npy INPUT_TENSOR FETCH [RUNS]
 *
 * Loads the SavedModel in VERSION_DIR once, feeds the float32 .npy to
 * INPUT_TENSOR, runs FETCH once to warm up and then RUNS times (default
 * 20, at most 1000), and prints the load time, every run and the median in
 * milliseconds.  OpenBLAS threads follow OPENBLAS_NUM_THREADS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infer/engine.h"
#include "model/npy.h"
#include "util/arena.h"
#include "util/error.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CPU time of the process: under a loaded machine the wall clock also
 * counts time spent waiting for a core. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s VERSION_DIR INPUT.npy INPUT_TENSOR FETCH [RUNS]\n", argv[0]);
        return 2;
    }
    /* OpenBLAS picks its kernels when loaded: when it fell back to generic
     * ones, run again with the kernel set this CPU can use, as a service
     * would (NNREG_BENCH_NO_HINT=1 measures the fallback) */
    if (!getenv("NNREG_BENCH_NO_HINT"))
        infer_blas_reexec(argv, false);
    printf("OpenBLAS kernels: %s\n", infer_blas_core());
    int runs = argc > 5 ? atoi(argv[5]) : 20;
    if (runs < 1 || runs > 1000) {
        fprintf(stderr, "RUNS must be 1 to 1000\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf || len <= 0 || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        fclose(f);
        free(buf);
        return 1;
    }
    fclose(f);
    nn_error_t err;
    nn_error_init(&err);
    npy_info_t info;
    if (!npy_parse(buf, (size_t)len, argv[2], &info, &err) || strcmp(info.descr, "<f4") != 0 ||
        info.ndims > NN_TENSOR_MAX_DIMS) {
        fprintf(stderr, "%s: not a float32 .npy (%s)\n", argv[2], err.message);
        free(buf);
        return 1;
    }
    nn_tensor_t feed;
    memset(&feed, 0, sizeof feed);
    feed.name = argv[3];
    feed.ndims = info.ndims;
    for (size_t i = 0; i < info.ndims; i++)
        feed.dims[i] = info.shape[i];
    feed.count = (size_t)info.count;
    feed.data = malloc(feed.count * sizeof(float));
    memcpy(feed.data, buf + info.data_offset, feed.count * sizeof(float));
    free(buf);

    double t0 = now_ms();
    infer_model_t *model;
    if (!infer_model_load(argv[1], &model, &err)) {
        fprintf(stderr, "load: %s\n", err.message);
        free(feed.data);
        return 1;
    }
    printf("load: %.1f ms, model bytes: %zu\n", now_ms() - t0, infer_model_bytes(model));
    double *times = malloc((size_t)(runs + 1) * sizeof(double));
    double *cpu = malloc((size_t)(runs + 1) * sizeof(double));
    const char *fetch = argv[4];
    infer_stats_t stats;
    for (int i = -1; i < runs; i++) {
        arena_t *arena = arena_create(0);
        nn_tensor_t out;
        double s = now_ms(), c = cpu_ms();
        if (!infer_run_stats(model, arena, &feed, 1, &fetch, 1, &out, &stats, &err)) {
            fprintf(stderr, "run: %s\n", err.message);
            arena_destroy(arena);
            return 1;
        }
        double e = now_ms() - s, ce = cpu_ms() - c;
        if (i < 0) {
            printf("first run: %.1f ms\n", e);
        } else {
            times[i] = e;
            cpu[i] = ce;
        }
        arena_destroy(arena);
    }
    printf("runs (ms):");
    for (int i = 0; i < runs; i++)
        printf(" %.1f", times[i]);
    qsort(times, (size_t)runs, sizeof(double), cmp_double);
    double median = runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
    qsort(cpu, (size_t)runs, sizeof(double), cmp_double);
    double cmedian = runs % 2 ? cpu[runs / 2] : (cpu[runs / 2 - 1] + cpu[runs / 2]) / 2;
    printf("\nnodes run: %zu, peak of intermediate buffers: %.1f MiB", stats.nodes_run,
           (double)stats.peak_bytes / (1 << 20));
    printf("\nmedian of %d: %.1f ms wall (min %.1f), %.1f ms CPU (min %.1f)\n", runs, median,
           times[0], cmedian, cpu[0]);
    free(times);
    free(cpu);
    free(feed.data);
    infer_model_free(model);
    return 0;
}
