/* Unit tests: an inference task's data (infer/result): shape and dims,
 * row-major values that read back as the same float32, non-finite values
 * as null, names escaped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infer/result.h"
#include "json/jv.h"

static void test_shape_dims_and_values(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    float a[6] = {0.1f, -2.5f, 3.0e-38f, 123456.789f, 1.0f / 3.0f, 16777217.0f};
    float b[1] = {42.0f};
    nn_tensor_t t[2] = {
        {.name = "conv/BiasAdd:0", .ndims = 3, .dims = {1, 2, 3}, .count = 6, .data = a},
        {.name = "y:0", .ndims = 0, .count = 1, .data = b},
    };
    nn_buf_t buf;
    buf_init(&buf, arena);
    assert_true(infer_result_json(&buf, t, 2));
    nn_error_t err;
    nn_error_init(&err);
    jv_t *root = jv_parse(arena, buf.data, buf.len, "result", &err);
    assert_non_null(root);
    jv_t *tensors = jv_get(root, "tensors");
    assert_int_equal(tensors->u.array.n, 2);
    jv_t *first = tensors->u.array.items[0];
    assert_string_equal(jv_get(first, "name")->u.string.ptr, "conv/BiasAdd:0");
    jv_t *shape = jv_get(first, "shape"), *dims = jv_get(first, "dims");
    assert_int_equal(shape->u.array.n, 3);
    assert_int_equal(dims->u.array.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(shape->u.array.items[i]->u.number.value == (double)(i + 1));
        assert_true(dims->u.array.items[i]->u.number.value == (double)(i + 1));
    }
    jv_t *data = jv_get(first, "data");
    assert_int_equal(data->u.array.n, 6);
    for (size_t i = 0; i < 6; i++) {
        /* %.9g: the printed decimal reads back as the same float. */
        float back = strtof(data->u.array.items[i]->u.number.text, NULL);
        assert_memory_equal(&back, &a[i], sizeof(float));
    }
    jv_t *second = tensors->u.array.items[1];
    assert_int_equal(jv_get(second, "shape")->u.array.n, 0);
    assert_true(jv_get(second, "data")->u.array.items[0]->u.number.value == 42.0);
    arena_destroy(arena);
}

static void test_non_finite_and_names(void **state)
{
    (void)state;
    arena_t *arena = arena_create(0);
    float a[3] = {NAN, INFINITY, -1.0f};
    nn_tensor_t t = {.name = "we\"ird\\name\n:0", .ndims = 1, .dims = {3}, .count = 3, .data = a};
    nn_buf_t buf;
    buf_init(&buf, arena);
    assert_true(infer_result_json(&buf, &t, 1));
    nn_error_t err;
    nn_error_init(&err);
    jv_t *root = jv_parse(arena, buf.data, buf.len, "result", &err);
    assert_non_null(root);
    jv_t *x = jv_get(root, "tensors")->u.array.items[0];
    assert_string_equal(jv_get(x, "name")->u.string.ptr, "we\"ird\\name\n:0");
    jv_t *data = jv_get(x, "data");
    assert_int_equal(data->u.array.items[0]->type, JV_NULL);
    assert_int_equal(data->u.array.items[1]->type, JV_NULL);
    assert_true(data->u.array.items[2]->u.number.value == -1.0);
    arena_destroy(arena);
}

/* Reads back as the same float, and is what JSON calls a number. */
static void check_round_trip(float v)
{
    char buf[32];
    int n = infer_result_format_float(v, buf);
    assert_true(n > 0 && n < 24);
    buf[n] = '\0';
    char *end;
    float back = strtof(buf, &end);
    if (*end != '\0' || memcmp(&back, &v, sizeof(v)) != 0)
        fail_msg("%.9g printed as \"%s\" reads back as %.9g", (double)v, buf, (double)back);
    /* JSON: optional minus, no leading zeros, digits around '.', e+NN. */
    const char *p = buf + (buf[0] == '-');
    assert_true(p[0] >= '0' && p[0] <= '9');
    if (p[0] == '0')
        assert_true(p[1] == '\0' || p[1] == '.');
}

static void test_float_format_round_trips(void **state)
{
    (void)state;
    static const float fixed[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 1e-5f, 9.99999e-6f, 1e-6f,
                                  123456789.0f, 999999999.0f, 1e9f, 3.4028235e38f,
                                  1.17549435e-38f, 1.4e-45f, 2.5f, 16777216.0f, 0.33333334f,
                                  100.0f, 1e10f, 7.0e-39f};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        check_round_trip(fixed[i]);
    char buf[32];
    buf[infer_result_format_float(100.0f, buf)] = '\0';
    assert_string_equal(buf, "100");
    buf[infer_result_format_float(0.5f, buf)] = '\0';
    assert_string_equal(buf, "0.5");
    buf[infer_result_format_float(-ldexpf(1.0f, -23), buf)] = '\0';
    assert_string_equal(buf, "-1.1920929e-07");
    buf[infer_result_format_float(NAN, buf)] = '\0';
    assert_string_equal(buf, "null");
    /* Every power of two and its neighbours, and a spread of bit patterns
     * over the whole finite range (a fixed LCG, so the run is the same). */
    for (int e = -149; e <= 127; e++) {
        float v = ldexpf(1.0f, e);
        check_round_trip(v);
        check_round_trip(nextafterf(v, 0.0f));
        check_round_trip(nextafterf(v, INFINITY));
    }
    uint32_t x = 12345;
    for (int i = 0; i < 2000000; i++) {
        x = x * 1664525u + 1013904223u;
        float v;
        memcpy(&v, &x, sizeof(v));
        if (isfinite(v))
            check_round_trip(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_dims_and_values),
        cmocka_unit_test(test_non_finite_and_names),
        cmocka_unit_test(test_float_format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
