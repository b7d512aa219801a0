/* Unit tests: the inference engine on real models (infer/engine).
 *
 * - the PoseNet (MobileNetV1) and NSFW MobileNetV2 fixture networks, each
 *   loaded from a temporary version directory holding its saved_model.pb,
 *   fed input.npy; every tensor of expected.json (final outputs and
 *   intermediate layers) matches the expected .npy files within that entry's
 *   |got - expected| <= atol + rtol * |expected|, which TensorFlow.js
 *   computed independently;
 * - half_plus_two_cpu (TF1, VariableV2 restored from the bundle) and
 *   half_plus_two_tf2_cpu (TF2: StatefulPartitionedCall inlined,
 *   VarHandleOp restored through the object graph) return 0.5 * x + 2, and
 *   the TF2 PlaceholderWithDefault uses its default when not fed;
 * - errors: an unknown fetch is a 400 unknown_tensor listing close names, a
 *   node whose op has no kernel a 400 unsupported_op naming op and node, a
 *   feed of the wrong rank a 400 invalid_input, a missing feed likewise;
 * - a model dir without a graph is an error, never a crash.
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
#include <sys/stat.h>
#include <unistd.h>

#include "infer/engine.h"
#include "json/jv.h"
#include "model/npy.h"
#include "util/arena.h"
#include "util/error.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

/* The model under test, freed by the teardown when an assertion ends a
 * test early (scripts/allocfail makes loads and runs fail on purpose);
 * a test that is done with it calls release_model(). */
static infer_model_t *held_model;

static void release_model(void)
{
    infer_model_free(held_model);
    held_model = NULL;
}

static int teardown(void **state)
{
    (void)state;
    release_model();
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A float32 .npy file as a tensor (data in arena). */
static nn_tensor_t load_npy(arena_t *arena, const char *path)
{
    size_t len;
    char *buf = slurp(path, &len);
    npy_info_t info;
    nn_error_t err;
    nn_error_init(&err);
    assert_true(npy_parse(buf, len, path, &info, &err));
    assert_string_equal(info.descr, "<f4");
    nn_tensor_t t;
    memset(&t, 0, sizeof t);
    t.ndims = info.ndims;
    for (size_t i = 0; i < info.ndims; i++)
        t.dims[i] = info.shape[i];
    t.count = (size_t)info.count;
    t.data = arena_alloc(arena, t.count * sizeof(float) + 1);
    assert_non_null(t.data);
    memcpy(t.data, buf + info.data_offset, t.count * sizeof(float));
    free(buf);
    return t;
}

/* A version dir in /tmp holding a symlink to the network's graph. */
static char *version_dir_for(const char *network, char *tmpl)
{
    assert_non_null(mkdtemp(tmpl));
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/networks/%s/saved_model.pb", NNREG_FIXTURES, network);
    snprintf(dst, sizeof dst, "%s/saved_model.pb", tmpl);
    assert_int_equal(symlink(src, dst), 0);
    return tmpl;
}

static void remove_version_dir(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/saved_model.pb", dir);
    unlink(p);
    rmdir(dir);
}

static void check_network(const char *network)
{
    char tmpl[] = "/tmp/nnreg-infer-XXXXXX";
    char path[1024];
    arena_t *arena = arena_create(0);
    assert_non_null(arena);
    nn_error_t err;
    nn_error_init(&err);
    const char *dir = version_dir_for(network, tmpl);
    infer_model_t *model = NULL;
    bool loaded = infer_model_load(dir, &model, &err);
    held_model = model;
    if (!loaded)
        fail_msg("load %s: %s", network, err.message);

    /* the input tensor's name comes from the network's create fields */
    size_t len;
    snprintf(path, sizeof path, "%s/networks/%s/network.json", NNREG_FIXTURES, network);
    char *text = slurp(path, &len);
    jv_t *net = jv_parse(arena, text, len, "network.json", &err);
    free(text);
    assert_non_null(net);
    jv_t *spec = jv_get(net, "preprocessing");
    assert_non_null(spec);
    if (spec->type == JV_STRING) {
        spec = jv_parse(arena, spec->u.string.ptr, spec->u.string.len, "preprocessing", &err);
        assert_non_null(spec);
    }
    jv_t *inputs = jv_get(spec, "inputs");
    assert_non_null(inputs);
    jv_t *tn = jv_get(inputs->u.array.items[0], "tensor_name");
    assert_non_null(tn);

    snprintf(path, sizeof path, "%s/networks/%s/input.npy", NNREG_FIXTURES, network);
    nn_tensor_t feed = load_npy(arena, path);
    feed.name = tn->u.string.ptr;

    snprintf(path, sizeof path, "%s/networks/%s/expected.json", NNREG_FIXTURES, network);
    text = slurp(path, &len);
    jv_t *expected = jv_parse(arena, text, len, "expected.json", &err);
    free(text);
    assert_non_null(expected);
    assert_int_equal(expected->type, JV_ARRAY);
    size_t n = expected->u.array.n;
    const char **fetches = arena_alloc(arena, n * sizeof(char *));
    nn_tensor_t *out = arena_alloc(arena, n * sizeof(nn_tensor_t));
    for (size_t i = 0; i < n; i++)
        fetches[i] = jv_get(expected->u.array.items[i], "tensor")->u.string.ptr;
    if (!infer_run(model, arena, &feed, 1, fetches, n, out, &err))
        fail_msg("run %s: %s", network, err.message);
    for (size_t i = 0; i < n; i++) {
        jv_t *e = expected->u.array.items[i];
        snprintf(path, sizeof path, "%s/networks/%s/%s", NNREG_FIXTURES, network,
                 jv_get(e, "file")->u.string.ptr);
        nn_tensor_t want = load_npy(arena, path);
        double atol = jv_get(e, "atol")->u.number.value, rtol = jv_get(e, "rtol")->u.number.value;
        assert_int_equal(out[i].ndims, want.ndims);
        for (size_t d = 0; d < want.ndims; d++)
            assert_int_equal(out[i].dims[d], want.dims[d]);
        assert_int_equal(out[i].count, want.count);
        double worst = 0;
        size_t bad = 0;
        for (size_t k = 0; k < want.count; k++) {
            double diff = fabs((double)out[i].data[k] - want.data[k]);
            double lim = atol + rtol * fabs(want.data[k]);
            if (!(diff <= lim))
                bad++;
            if (diff > worst)
                worst = diff;
        }
        if (bad)
            fail_msg("%s: %zu of %zu values outside tolerance (worst %g)", fetches[i], bad,
                     want.count, worst);
        char want_name[1024];
        snprintf(want_name, sizeof want_name, "%s", fetches[i]);
        assert_string_equal(out[i].name, want_name);
    }
    release_model();
    remove_version_dir(dir);
    arena_destroy(arena);
}

static void test_posenet(void **state)
{
    (void)state;
    check_network("posenet");
}

static void test_nsfw_mobilenet_v2(void **state)
{
    (void)state;
    check_network("nsfw_mobilenet_v2");
}

static infer_model_t *load_fixture_model(const char *name)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/%s", NNREG_FIXTURES, name);
    nn_error_t err;
    nn_error_init(&err);
    infer_model_t *m = NULL;
    if (!infer_model_load(dir, &m, &err))
        fail_msg("load %s: %s", name, err.message);
    held_model = m;
    assert_true(infer_model_bytes(m) > 0);
    return m;
}

/* Feeds batch values (shape [batch] or [batch, 1]) to in. */
static void check_half_plus_two(infer_model_t *m, const char *in, size_t ndims, int64_t batch,
                                const char *outname)
{
    arena_t *arena = arena_create(0);
    float xs[3] = {1.0f, 2.0f, 5.0f};
    nn_tensor_t feed = {in, ndims, {batch, 1}, (size_t)batch, xs};
    nn_tensor_t out;
    nn_error_t err;
    nn_error_init(&err);
    if (!infer_run(m, arena, &feed, 1, &outname, 1, &out, &err))
        fail_msg("%s: %s", outname, err.message);
    assert_int_equal(out.count, batch);
    assert_int_equal(out.ndims, ndims);
    for (size_t i = 0; i < (size_t)batch; i++)
        assert_float_equal(out.data[i], 0.5f * xs[i] + 2.0f, 1e-6);
    arena_destroy(arena);
}

static void test_half_plus_two_tf1(void **state)
{
    (void)state;
    infer_model_t *m = load_fixture_model("half_plus_two_cpu");
    check_half_plus_two(m, "x:0", 2, 3, "y:0");
    check_half_plus_two(m, "x", 2, 3, "y");
    /* y2 = 0.5x + 3 through the other variable */
    arena_t *arena = arena_create(0);
    float xs[1] = {4.0f};
    nn_tensor_t feed = {"x:0", 2, {1, 1}, 1, xs};
    const char *fetch = "y2:0";
    nn_tensor_t out;
    nn_error_t err;
    nn_error_init(&err);
    assert_true(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
    assert_float_equal(out.data[0], 5.0f, 1e-6);
    /* the variable itself */
    fetch = "a:0";
    assert_true(infer_run(m, arena, NULL, 0, &fetch, 1, &out, &err));
    assert_int_equal(out.ndims, 0);
    assert_float_equal(out.data[0], 0.5f, 0);
    arena_destroy(arena);
    release_model();
}

static void test_half_plus_two_tf2(void **state)
{
    (void)state;
    infer_model_t *m = load_fixture_model("half_plus_two_tf2_cpu");
    /* serving_default_x declares the shape [1]: three values do not fit */
    {
        arena_t *arena = arena_create(0);
        float xs[3] = {1, 2, 3};
        nn_tensor_t feed = {"serving_default_x:0", 1, {3}, 3, xs};
        const char *fetch = "StatefulPartitionedCall_5:0";
        nn_tensor_t out;
        nn_error_t err;
        nn_error_init(&err);
        assert_false(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
        assert_string_equal(err.code, "invalid_input");
        arena_destroy(arena);
    }
    check_half_plus_two(m, "serving_default_x:0", 1, 1, "StatefulPartitionedCall_5:0");
    /* A preprocessed 1x1 grey image, [1, 1, 1, 1], differs from the
     * declared [1] only by size-1 dimensions: it is fed as [1] */
    {
        arena_t *arena = arena_create(0);
        float x[1] = {7.0f};
        nn_tensor_t feed = {"serving_default_x:0", 4, {1, 1, 1, 1}, 1, x};
        const char *fetch = "StatefulPartitionedCall_5:0";
        nn_tensor_t out;
        nn_error_t err;
        nn_error_init(&err);
        if (!infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err))
            fail_msg("%s", err.message);
        assert_int_equal(out.count, 1);
        assert_float_equal(out.data[0], 5.5f, 1e-6);
        arena_destroy(arena);
    }
    /* serving_default_x is a PlaceholderWithDefault: unfed, its default */
    arena_t *arena = arena_create(0);
    const char *fetch = "StatefulPartitionedCall_5:0";
    nn_tensor_t out;
    nn_error_t err;
    nn_error_init(&err);
    if (!infer_run(m, arena, NULL, 0, &fetch, 1, &out, &err))
        fail_msg("%s", err.message);
    const char *def = "serving_default_x/input:0";
    nn_tensor_t dv;
    assert_true(infer_run(m, arena, NULL, 0, &def, 1, &dv, &err));
    assert_int_equal(out.count, dv.count);
    for (size_t i = 0; i < out.count; i++)
        assert_float_equal(out.data[i], 0.5f * dv.data[i] + 2.0f, 1e-6);
    /* the regress signature parses tf.Examples inside its function: the
     * op is named with the inlined node's full name */
    float xs[1] = {2.0f};
    nn_tensor_t feed = {"regress_x_to_y2_inputs", 1, {1}, 1, xs};
    fetch = "StatefulPartitionedCall_4:0";
    nn_error_init(&err);
    assert_false(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "unsupported_op");
    assert_non_null(strstr(err.message, "\"StatefulPartitionedCall_4/"));
    arena_destroy(arena);
    release_model();
}

/* half_plus_two_mkl adds a 1x1 Conv2D over zeros, sliced with
 * StridedSlice; matrix_half_plus_two is constants only */
static void test_other_fixtures(void **state)
{
    (void)state;
    infer_model_t *m = load_fixture_model("half_plus_two_mkl");
    check_half_plus_two(m, "x:0", 2, 3, "y:0");
    release_model();
    m = load_fixture_model("matrix_half_plus_two");
    arena_t *arena = arena_create(0);
    float xs[18];
    for (size_t i = 0; i < 18; i++)
        xs[i] = (float)i - 4.5f;
    nn_tensor_t feed = {"x:0", 3, {2, 3, 3}, 18, xs};
    const char *fetch = "y:0";
    nn_tensor_t out;
    nn_error_t err;
    nn_error_init(&err);
    if (!infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err))
        fail_msg("%s", err.message);
    assert_int_equal(out.count, 18);
    assert_int_equal(out.ndims, 3);
    for (size_t i = 0; i < 18; i++)
        assert_float_equal(out.data[i], 0.5f * xs[i] + 2, 1e-6);
    arena_destroy(arena);
    release_model();
}

/* the text-format TF1 fixture: its graph loads; constants run; the
 * variables have no bundle here, which a fetch that needs them says */
static void test_pbtxt_fixture(void **state)
{
    (void)state;
    infer_model_t *m = load_fixture_model("half_plus_two_pbtxt");
    arena_t *arena = arena_create(0);
    const char *fetch = "a/initial_value:0";
    nn_tensor_t out;
    nn_error_t err;
    nn_error_init(&err);
    if (!infer_run(m, arena, NULL, 0, &fetch, 1, &out, &err))
        fail_msg("%s", err.message);
    assert_int_equal(out.count, 1);
    assert_float_equal(out.data[0], 0.5f, 0);
    float xs[1] = {1};
    nn_tensor_t feed = {"x:0", 2, {1, 1}, 1, xs};
    fetch = "y:0";
    nn_error_init(&err);
    assert_false(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.message, "variables/variables.index"));
    arena_destroy(arena);
    release_model();
}

static void test_errors(void **state)
{
    (void)state;
    infer_model_t *m = load_fixture_model("half_plus_two_cpu");
    arena_t *arena = arena_create(0);
    float xs[3] = {1, 2, 3};
    nn_tensor_t feed = {"x:0", 2, {3, 1}, 3, xs};
    nn_tensor_t out;
    nn_error_t err;

    nn_error_init(&err);
    const char *fetch = "yy:0";
    assert_false(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "unknown_tensor");
    assert_non_null(strstr(err.message, "\"yy:0\""));
    assert_non_null(strstr(err.message, "\"y:0\""));

    nn_error_init(&err);
    fetch = "y:3";
    assert_false(infer_run(m, arena, &feed, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "unknown_tensor");

    nn_error_init(&err);
    nn_tensor_t badfeed = {"nope:0", 2, {3, 1}, 3, xs};
    fetch = "y:0";
    assert_false(infer_run(m, arena, &badfeed, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "unknown_tensor");

    /* ParseExample has no kernel: asking for what needs it names both */
    nn_error_init(&err);
    assert_false(infer_run(m, arena, NULL, 0, &fetch, 1, &out, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "unsupported_op");
    assert_non_null(strstr(err.message, "\"ParseExample\""));
    assert_non_null(strstr(err.message, "\"ParseExample/ParseExample\""));
    assert_false(infer_op_supported("ParseExample"));
    assert_true(infer_op_supported("Conv2D"));
    assert_true(infer_op_supported("StatefulPartitionedCall"));

    /* a Placeholder needed but not fed (half_plus_three's x2) */
    release_model();
    m = load_fixture_model("half_plus_three");
    nn_error_init(&err);
    fetch = "y2:0";
    assert_false(infer_run(m, arena, NULL, 0, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "invalid_input");
    assert_non_null(strstr(err.message, "x2:0"));
    /* a wrong rank, then a wrong size, for the declared [-1, 3, 3] */
    release_model();
    m = load_fixture_model("matrix_half_plus_two");
    nn_error_init(&err);
    nn_tensor_t flat = {"x:0", 1, {3}, 3, xs};
    fetch = "y:0";
    assert_false(infer_run(m, arena, &flat, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "invalid_input");
    nn_error_init(&err);
    float nine[12] = {0};
    nn_tensor_t wrong = {"x:0", 3, {1, 3, 4}, 12, nine};
    assert_false(infer_run(m, arena, &wrong, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "invalid_input");
    /* a feed whose count does not match its dims */
    nn_error_init(&err);
    nn_tensor_t liar = {"x:0", 3, {1, 3, 3}, 4, nine};
    assert_false(infer_run(m, arena, &liar, 1, &fetch, 1, &out, &err));
    assert_string_equal(err.code, "invalid_input");
    release_model();

    nn_error_init(&err);
    assert_false(infer_model_load("/nonexistent/nnreg/dir", &m, &err));
    assert_int_equal(err.status, 500);
    arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_half_plus_two_tf1, teardown),
        cmocka_unit_test_teardown(test_half_plus_two_tf2, teardown),
        cmocka_unit_test_teardown(test_other_fixtures, teardown),
        cmocka_unit_test_teardown(test_pbtxt_fixture, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
        cmocka_unit_test_teardown(test_posenet, teardown),
        cmocka_unit_test_teardown(test_nsfw_mobilenet_v2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
