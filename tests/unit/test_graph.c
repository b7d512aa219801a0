/* Unit tests: the SavedModel graph summary (graph.c over pbwire / pbtext).
 *
 * Every fixture of tests/fixtures/models is checked against the facts its
 * README lists (node counts, ops, tags, versions, signatures), then parsed
 * truncated at many lengths and with bits flipped (an error or a summary,
 * never a crash: run under ASan), then hand-made pathological inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "model/graph.h"
#include "model/pbwire.h"
#include "util/arena.h"
#include "util/error.h"

#ifndef NNREG_FIXTURES
#define NNREG_FIXTURES "tests/fixtures"
#endif

enum { DT_FLOAT = 1, DT_STRING = 7, DT_INT32 = 3, DT_FLOAT_REF = 101 };

/* ---- fixture facts (from tests/fixtures/models/README.md) -------------- */

typedef struct sig_expect {
    const char *key, *method;
    const char *in_alias, *in_name; /* NULL: no input */
    int in_dtype;
    const char *in_shape; /* "-" none, "?" unknown rank, "[..]" dims */
    const char *out_alias, *out_name;
    int out_dtype;
    const char *out_shape;
} sig_expect_t;

typedef struct fixture {
    const char *dir;
    const char *file;
    graph_format_t format;
    size_t nnodes, nfunctions, nfunction_nodes;
    const char *tf_version, *git_version;
    int producer;
    const char *ops;          /* "Op=count ..." of the graph's nodes */
    const char *function_ops; /* same, of the function library's nodes */
    const sig_expect_t *sigs;
    size_t nsigs;
    const char *input_candidates; /* comma-separated */
    const char *node;             /* a node to look up ("x") */
} fixture_t;

static const sig_expect_t sigs_half_plus_two[] = {
    {"classify_x_to_y", "tensorflow/serving/classify", "inputs", "tf_example:0", DT_STRING, "?",
     "scores", "y:0", DT_FLOAT, "[-1,1]"},
    {"regress_x2_to_y3", "tensorflow/serving/regress", "inputs", "x2:0", DT_FLOAT, "[-1,1]",
     "outputs", "y3:0", DT_FLOAT, "[-1,1]"},
    {"regress_x_to_y", "tensorflow/serving/regress", "inputs", "tf_example:0", DT_STRING, "?",
     "outputs", "y:0", DT_FLOAT, "[-1,1]"},
    {"regress_x_to_y2", "tensorflow/serving/regress", "inputs", "tf_example:0", DT_STRING, "?",
     "outputs", "y2:0", DT_FLOAT, "[-1,1]"},
    {"serving_default", "tensorflow/serving/predict", "x", "x:0", DT_FLOAT, "[-1,1]", "y", "y:0",
     DT_FLOAT, "[-1,1]"},
};

static const sig_expect_t sigs_half_plus_two_mkl[] = {
    {"classify_x_to_y", "tensorflow/serving/classify", "inputs", "tf_example:0", DT_STRING, "?",
     "scores", "y:0", DT_FLOAT, "[-1,1]"},
    {"regress_x2_to_y3", "tensorflow/serving/regress", "inputs", "x2:0", DT_FLOAT, "[-1,1]",
     "outputs", "y3:0", DT_FLOAT, "[1,10,10,1]"},
    {"regress_x_to_y", "tensorflow/serving/regress", "inputs", "tf_example:0", DT_STRING, "?",
     "outputs", "y:0", DT_FLOAT, "[-1,1]"},
    {"regress_x_to_y2", "tensorflow/serving/regress", "inputs", "tf_example:0", DT_STRING, "?",
     "outputs", "y2:0", DT_FLOAT, "[1,10,10,1]"},
    {"serving_default", "tensorflow/serving/predict", "x", "x:0", DT_FLOAT, "[-1,1]", "y", "y:0",
     DT_FLOAT, "[-1,1]"},
};

static const sig_expect_t sigs_half_plus_three[] = {
    {"serving_default", "tensorflow/serving/predict", "x", "x:0", DT_FLOAT, "-", "y", "y:0",
     DT_FLOAT, "-"},
    {"tensorflow/serving/regress", "tensorflow/serving/regress", "inputs", "tf_example:0", DT_FLOAT,
     "-", "outputs", "Identity:0", DT_FLOAT, "-"},
};

static const sig_expect_t sigs_pbtxt[] = {
    {"serving_default", "tensorflow/serving/predict", "x", "x:0", 0, "-", "y", "y:0", 0, "-"},
    {"tensorflow/serving/regress", "tensorflow/serving/regress", "inputs", "tf_example:0", 0, "-",
     "outputs", "Identity:0", 0, "-"},
};

static const sig_expect_t sigs_counter[] = {
    {"get_counter", "tensorflow/serving/predict", NULL, NULL, 0, NULL, "output", "counter:0",
     DT_FLOAT_REF, "[]"},
    {"incr_counter", "tensorflow/serving/predict", NULL, NULL, 0, NULL, "output",
     "incr_counter_op/AssignAdd:0", DT_FLOAT_REF, "[]"},
    {"incr_counter_by", "tensorflow/serving/predict", "delta", "delta:0", DT_FLOAT, "?", "output",
     "incr_counter_by_op/AssignAdd:0", DT_FLOAT_REF, "[]"},
    {"reset_counter", "tensorflow/serving/predict", NULL, NULL, 0, NULL, "output",
     "reset_counter_op/Assign:0", DT_FLOAT_REF, "[]"},
};

static const sig_expect_t sigs_tf2[] = {
    {"__saved_model_init_op", "", NULL, NULL, 0, NULL, "__saved_model_init_op", "NoOp", 0, "?"},
    {"classify_x2_to_y3", "tensorflow/serving/predict", "inputs", "classify_x2_to_y3_inputs:0",
     DT_FLOAT, "[1]", "scores", "StatefulPartitionedCall:0", DT_FLOAT, "[1]"},
    {"classify_x_to_y", "tensorflow/serving/predict", "inputs", "classify_x_to_y_inputs:0",
     DT_STRING, "[-1]", "scores", "StatefulPartitionedCall_1:0", DT_FLOAT, "[-1,1]"},
    {"regress_x2_to_y3", "tensorflow/serving/predict", "inputs", "regress_x2_to_y3_inputs:0",
     DT_FLOAT, "[1]", "outputs", "StatefulPartitionedCall_2:0", DT_FLOAT, "[1]"},
    {"regress_x_to_y", "tensorflow/serving/predict", "inputs", "regress_x_to_y_inputs:0", DT_STRING,
     "[-1]", "outputs", "StatefulPartitionedCall_3:0", DT_FLOAT, "[-1,1]"},
    {"regress_x_to_y2", "tensorflow/serving/predict", "inputs", "regress_x_to_y2_inputs:0",
     DT_STRING, "[-1]", "outputs", "StatefulPartitionedCall_4:0", DT_FLOAT, "[-1,1]"},
    {"serving_default", "tensorflow/serving/predict", "x", "serving_default_x:0", DT_FLOAT, "[1]",
     "y", "StatefulPartitionedCall_5:0", DT_FLOAT, "[1]"},
};

static const sig_expect_t sigs_matrix[] = {
    {"serving_default", "tensorflow/serving/predict", "x", "x:0", DT_FLOAT, "[-1,3,3]", "y", "y:0",
     DT_FLOAT, "[-1,3,3]"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const fixture_t fixtures[] = {
    {"half_plus_two_cpu", "saved_model.pb", GRAPH_FORMAT_BINARY, 74, 0, 0, "1.14.0", "unknown", 149,
     "Add=3 Assign=12 Const=22 Identity=13 MergeV2Checkpoints=1 Mul=3 NoOp=4 Pack=1 "
     "ParseExample=1 Placeholder=1 PlaceholderWithDefault=2 Reshape=1 RestoreV2=1 SaveV2=1 "
     "ShardedFilename=1 StringJoin=1 VariableV2=6",
     "", sigs_half_plus_two, N(sigs_half_plus_two),
     "tf_example:0,x2:0,x:0,save/filename:0,save/Const:0", "x"},
    {"half_plus_three", "saved_model.pb", GRAPH_FORMAT_BINARY, 60, 0, 0, "1.0.0-rc2",
     "v1.0.0-rc1-102-g1536a84-dirty", 21,
     "Add=2 Assign=8 Const=21 Identity=8 MergeV2Checkpoints=1 Mul=2 NoOp=4 Pack=1 ParseExample=1 "
     "Placeholder=2 RestoreV2=3 SaveV2=1 ShardedFilename=1 StringJoin=1 VariableV2=4",
     "", sigs_half_plus_three, N(sigs_half_plus_three), "tf_example:0,x2:0,x:0", "x"},
    {"counter", "saved_model.pb", GRAPH_FORMAT_BINARY, 30, 0, 0, "1.5.0-rc1", "unknown", 26,
     "Assign=3 AssignAdd=2 Const=11 Identity=3 MergeV2Checkpoints=1 NoOp=3 Pack=1 Placeholder=1 "
     "RestoreV2=1 SaveV2=1 ShardedFilename=1 StringJoin=1 VariableV2=1",
     "", sigs_counter, N(sigs_counter), "delta:0", "delta"},
    {"half_plus_two_tf2_cpu", "saved_model.pb", GRAPH_FORMAT_BINARY, 29, 14, 122, "2.14.0",
     "unknown", 1569,
     "AssignVariableOp=1 Const=2 NoOp=1 Placeholder=7 PlaceholderWithDefault=1 ReadVariableOp=4 "
     "StatefulPartitionedCall=8 VarHandleOp=4 VarIsInitializedOp=1",
     "AddV2=6 AssignVariableOp=3 Const=29 DisableCopyOnRead=3 Identity=25 MergeV2Checkpoints=1 "
     "Mul=6 NoOp=15 Pack=1 ParseExampleV2=3 ReadVariableOp=15 Reshape=3 RestoreV2=1 SaveV2=1 "
     "Select=1 ShardedFilename=1 StatefulPartitionedCall=6 StaticRegexFullMatch=1 StringJoin=1",
     sigs_tf2, N(sigs_tf2),
     "asset_path_initializer:0,classify_x2_to_y3_inputs:0,classify_x_to_y_inputs:0,"
     "regress_x2_to_y3_inputs:0,regress_x_to_y_inputs:0,regress_x_to_y2_inputs:0,"
     "serving_default_x:0,saver_filename:0",
     "serving_default_x"},
    {"half_plus_two_mkl", "saved_model.pb", GRAPH_FORMAT_BINARY, 163, 0, 0, "1.12.0-rc0",
     "b'v1.12.0-rc0-2760-g5e1ab96'", 27,
     "Add=9 Assign=8 AssignVariableOp=12 BiasAdd=3 Const=47 Conv2D=3 Identity=17 "
     "MergeV2Checkpoints=1 Mul=6 NoOp=10 Pack=1 ParseExample=1 Placeholder=1 "
     "PlaceholderWithDefault=2 RandomUniform=3 ReadVariableOp=12 Reshape=1 RestoreV2=1 SaveV2=1 "
     "ShardedFilename=1 StridedSlice=3 StringJoin=1 Sub=3 VarHandleOp=6 VarIsInitializedOp=6 "
     "VariableV2=4",
     "", sigs_half_plus_two_mkl, N(sigs_half_plus_two_mkl),
     "tf_example:0,x2:0,x:0,save/filename:0,save/Const:0", "x"},
    {"matrix_half_plus_two", "saved_model.pb", GRAPH_FORMAT_BINARY, 6, 0, 0, "1.2.0-rc2", "unknown",
     24, "Add=1 Const=2 Mul=1 NoOp=1 Placeholder=1", "", sigs_matrix, N(sigs_matrix), "x:0", "x"},
    {"half_plus_two_pbtxt", "saved_model.pbtxt", GRAPH_FORMAT_TEXT, 60, 0, 0, "0.12.head",
     "unknown", 19,
     "Add=2 Assign=8 Const=21 Identity=8 MergeV2Checkpoints=1 Mul=2 NoOp=4 Pack=1 ParseExample=1 "
     "Placeholder=2 RestoreV2=3 SaveV2=1 ShardedFilename=1 StringJoin=1 Variable=4",
     "", sigs_pbtxt, N(sigs_pbtxt), "tf_example:0,x2:0,x:0", "x"},
};

/* The 60 nodes of half_plus_two_pbtxt, in file order (README). */
static const char *const pbtxt_nodes[][2] = {
    {"a/initial_value", "Const"},
    {"a", "Variable"},
    {"a/Assign", "Assign"},
    {"a/read", "Identity"},
    {"b/initial_value", "Const"},
    {"b", "Variable"},
    {"b/Assign", "Assign"},
    {"b/read", "Identity"},
    {"c/initial_value", "Const"},
    {"c", "Variable"},
    {"c/Assign", "Assign"},
    {"c/read", "Identity"},
    {"tf_example", "Placeholder"},
    {"ParseExample/Const", "Const"},
    {"ParseExample/ParseExample/names", "Const"},
    {"ParseExample/ParseExample/dense_keys_0", "Const"},
    {"ParseExample/ParseExample", "ParseExample"},
    {"x", "Identity"},
    {"Mul", "Mul"},
    {"y", "Add"},
    {"x2", "Placeholder"},
    {"Mul_1", "Mul"},
    {"y2", "Add"},
    {"Const", "Const"},
    {"filename_tensor/initial_value", "Const"},
    {"filename_tensor", "Variable"},
    {"filename_tensor/Assign", "Assign"},
    {"filename_tensor/read", "Identity"},
    {"Assign/value", "Const"},
    {"Assign", "Assign"},
    {"Identity", "Identity"},
    {"init", "NoOp"},
    {"group_deps", "NoOp"},
    {"save/Const", "Const"},
    {"save/StringJoin/inputs_1", "Const"},
    {"save/StringJoin", "StringJoin"},
    {"save/num_shards", "Const"},
    {"save/ShardedFilename/shard", "Const"},
    {"save/ShardedFilename", "ShardedFilename"},
    {"save/SaveV2/tensor_names", "Const"},
    {"save/SaveV2/shape_and_slices", "Const"},
    {"save/SaveV2", "SaveV2"},
    {"save/control_dependency", "Identity"},
    {"save/MergeV2Checkpoints/checkpoint_prefixes", "Pack"},
    {"save/MergeV2Checkpoints", "MergeV2Checkpoints"},
    {"save/Identity", "Identity"},
    {"save/RestoreV2/tensor_names", "Const"},
    {"save/RestoreV2/shape_and_slices", "Const"},
    {"save/RestoreV2", "RestoreV2"},
    {"save/Assign", "Assign"},
    {"save/RestoreV2_1/tensor_names", "Const"},
    {"save/RestoreV2_1/shape_and_slices", "Const"},
    {"save/RestoreV2_1", "RestoreV2"},
    {"save/Assign_1", "Assign"},
    {"save/RestoreV2_2/tensor_names", "Const"},
    {"save/RestoreV2_2/shape_and_slices", "Const"},
    {"save/RestoreV2_2", "RestoreV2"},
    {"save/Assign_2", "Assign"},
    {"save/restore_shard", "NoOp"},
    {"save/restore_all", "NoOp"},
};

/* ---- helpers ---------------------------------------------------------- */

static void fixture_path(const fixture_t *fx, char *buf, size_t size)
{
    snprintf(buf, size, "%s/models/%s/%s", NNREG_FIXTURES, fx->dir, fx->file);
}

/* The file's bytes in an exact-size heap buffer. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n > 0);
    unsigned char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void shape_str(const graph_shape_t *s, char *buf, size_t size)
{
    if (!s->known) {
        snprintf(buf, size, "-");
        return;
    }
    if (s->unknown_rank) {
        snprintf(buf, size, "?");
        return;
    }
    size_t n = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < s->ndims && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)s->dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

/* Counts ops into "Op=count ..." sorted by op (as the README lists them). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *ops_string(const char *const *ops, size_t n)
{
    const char **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    assert_non_null(sorted);
    if (n)
        memcpy(sorted, ops, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_str);
    size_t cap = 64 + n * 48, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(sorted[j], sorted[i]) == 0)
            j++;
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%zu", len ? " " : "", sorted[i], j - i);
        i = j;
    }
    free(sorted);
    return out;
}

static void null_print(void *ctx, const char *s, size_t len)
{
    (void)ctx;
    (void)s;
    (void)len;
}

typedef struct json_out {
    char *data;
    size_t len, cap;
} json_out_t;

static void json_print(void *ctx, const char *s, size_t len)
{
    json_out_t *o = ctx;
    if (o->len + len + 1 > o->cap) {
        o->cap = (o->len + len + 1) * 2;
        o->data = realloc(o->data, o->cap);
        assert_non_null(o->data);
    }
    memcpy(o->data + o->len, s, len);
    o->len += len;
    o->data[o->len] = '\0';
}

/* Uses everything a summary offers (so ASan sees any bad pointer in it). */
static void exercise(arena_t *a, const graph_summary_t *g)
{
    yajl_gen y = yajl_gen_alloc(NULL);
    assert_non_null(y);
    yajl_gen_config(y, yajl_gen_print_callback, null_print, NULL);
    /* Freed before the assertion: a failed one would leak it
     * (scripts/allocfail makes the summary fail on purpose). */
    bool generated = graph_summary_gen(y, g);
    yajl_gen_free(y);
    assert_true(generated);
    const char *c[8];
    size_t n = graph_input_candidates(g, c, 8);
    for (size_t i = 0; i < n; i++)
        assert_true(strlen(c[i]) > 0);
    n = graph_closest_names(a, g, "x:0", c, 8);
    assert_true(n <= 8 && n <= g->nnodes);
    for (size_t i = 0; i < g->nnodes; i++) {
        const graph_node_t *node = &g->nodes[i];
        assert_true(strlen(node->name) > 0 && strlen(node->op) > 0);
        for (size_t k = 0; k < node->ninputs; k++)
            (void)strlen(node->inputs[k]);
        for (size_t k = 0; k < node->shape.ndims; k++)
            assert_true(node->shape.dims[k] >= -1);
    }
    for (size_t i = 0; i < g->nfunction_nodes; i++)
        (void)strlen(g->function_ops[i]);
    (void)graph_find_tensor(g, "x");
}

static bool parse_bytes(arena_t *a, const void *data, size_t len, graph_format_t fmt,
                        graph_summary_t *g, nn_error_t *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    nn_error_init(err);
    bool ok =
        graph_parse(a, len ? copy : NULL, len, fmt,
                    fmt == GRAPH_FORMAT_TEXT ? "saved_model.pbtxt" : "saved_model.pb", g, err);
    free(copy);
    if (!ok) {
        assert_int_equal(err->status, 400);
        assert_string_equal(err->code, "invalid_graph");
    }
    return ok;
}

/* Parses and expects a 400 whose message contains part. */
static void expect_invalid(const void *data, size_t len, graph_format_t fmt, const char *part)
{
    arena_t *a = arena_create(0);
    assert_non_null(a);
    graph_summary_t g;
    nn_error_t err;
    if (parse_bytes(a, data, len, fmt, &g, &err))
        fail_msg("parse succeeded, expected an error containing \"%s\"", part);
    if (!strstr(err.message, part))
        fail_msg("error \"%s\" lacks \"%s\"", err.message, part);
    arena_destroy(a);
}

/* ---- fixtures --------------------------------------------------------- */

static void check_tensor(const graph_tensor_info_t *t, const char *alias, const char *name,
                         int dtype, const char *shape)
{
    char buf[128];
    assert_string_equal(t->alias, alias);
    assert_string_equal(t->name, name);
    assert_int_equal(t->dtype, dtype);
    shape_str(&t->shape, buf, sizeof(buf));
    assert_string_equal(buf, shape);
}

static void test_fixtures_match_readme(void **state)
{
    (void)state;
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512];
        fixture_path(fx, path, sizeof(path));
        arena_t *a = arena_create(0);
        assert_non_null(a);
        graph_summary_t g;
        nn_error_t err;
        nn_error_init(&err);
        if (!graph_load(a, path, fx->format, fx->file, &g, &err))
            fail_msg("%s: %s", fx->dir, err.message);
        assert_int_equal(g.nnodes, fx->nnodes);
        assert_int_equal(g.nfunctions, fx->nfunctions);
        assert_int_equal(g.nfunction_nodes, fx->nfunction_nodes);
        assert_string_equal(g.tensorflow_version, fx->tf_version);
        assert_string_equal(g.tensorflow_git_version, fx->git_version);
        assert_int_equal(g.producer, fx->producer);
        assert_int_equal(g.ntags, 1);
        assert_string_equal(g.tags[0], "serve");

        const char **ops = malloc((g.nnodes + 1) * sizeof(*ops));
        assert_non_null(ops);
        for (size_t i = 0; i < g.nnodes; i++)
            ops[i] = g.nodes[i].op;
        char *s = ops_string(ops, g.nnodes);
        assert_string_equal(s, fx->ops);
        free(s);
        free(ops);
        s = ops_string(g.function_ops, g.nfunction_nodes);
        assert_string_equal(s, fx->function_ops);
        free(s);

        assert_int_equal(g.nsignatures, fx->nsigs);
        for (size_t i = 0; i < fx->nsigs; i++) {
            const sig_expect_t *e = &fx->sigs[i];
            const graph_signature_t *sig = &g.signatures[i];
            assert_string_equal(sig->key, e->key);
            assert_string_equal(sig->method_name, e->method);
            assert_int_equal(sig->ninputs, e->in_name ? 1 : 0);
            if (e->in_name)
                check_tensor(&sig->inputs[0], e->in_alias, e->in_name, e->in_dtype, e->in_shape);
            assert_int_equal(sig->noutputs, 1);
            check_tensor(&sig->outputs[0], e->out_alias, e->out_name, e->out_dtype, e->out_shape);
            /* Every signature tensor is a node of the graph. */
            assert_non_null(graph_find_tensor(&g, e->out_name));
            if (e->in_name)
                assert_non_null(graph_find_tensor(&g, e->in_name));
        }
        for (size_t i = 0; i < g.nnodes; i++)
            assert_ptr_equal(graph_find_tensor(&g, g.nodes[i].name), &g.nodes[i]);
        arena_destroy(a);
    }
}

static void test_fixtures_tensor_lookup_and_candidates(void **state)
{
    (void)state;
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512], name[128];
        fixture_path(fx, path, sizeof(path));
        arena_t *a = arena_create(0);
        assert_non_null(a);
        graph_summary_t g;
        nn_error_t err;
        nn_error_init(&err);
        assert_true(graph_load(a, path, fx->format, NULL, &g, &err));

        const graph_node_t *node = graph_find_tensor(&g, fx->node);
        assert_non_null(node);
        assert_string_equal(node->name, fx->node);
        snprintf(name, sizeof(name), "%s:0", fx->node);
        assert_ptr_equal(graph_find_tensor(&g, name), node);
        snprintf(name, sizeof(name), "%s:1", fx->node);
        assert_ptr_equal(graph_find_tensor(&g, name), node);
        snprintf(name, sizeof(name), "%s:17", fx->node);
        assert_ptr_equal(graph_find_tensor(&g, name), node);
        static const char *const bad_suffixes[] = {":", ":a", ":-1", ":0:0", ":1x", ":1234567890"};
        for (size_t i = 0; i < N(bad_suffixes); i++) {
            snprintf(name, sizeof(name), "%s%s", fx->node, bad_suffixes[i]);
            assert_null(graph_find_tensor(&g, name));
        }
        snprintf(name, sizeof(name), "^%s", fx->node);
        assert_null(graph_find_tensor(&g, name));
        assert_null(graph_find_tensor(&g, "nope"));
        assert_null(graph_find_tensor(&g, "nope:0"));
        assert_null(graph_find_tensor(&g, ""));
        assert_null(graph_find_tensor(&g, ":0"));
        assert_null(graph_find_tensor(&g, NULL));

        /* Placeholders first (as name:0), then signature inputs; the
         * checkpoint saver's own placeholders last. */
        const char *cands[GRAPH_CANDIDATES_MAX];
        size_t n = graph_input_candidates(&g, cands, GRAPH_CANDIDATES_MAX);
        char joined[1024] = "";
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s", i ? "," : "",
                                    cands[i]);
        assert_string_equal(joined, fx->input_candidates);
        for (size_t i = 0; i < n; i++)
            assert_non_null(graph_find_tensor(&g, cands[i]));
        assert_int_equal(graph_input_candidates(&g, cands, 1), n ? 1 : 0);
        assert_int_equal(graph_input_candidates(&g, cands, 0), 0);
        for (size_t i = 0; i < g.nnodes; i++) {
            const graph_node_t *nd = &g.nodes[i];
            if (strcmp(nd->op, "Placeholder") != 0)
                continue;
            snprintf(name, sizeof(name), "%s:0", nd->name);
            bool found = false;
            for (size_t k = 0; k < n; k++)
                found = found || strcmp(cands[k], name) == 0;
            assert_true(found);
        }

        /* Output candidates: signature outputs first. */
        assert_true(g.noutput_candidates >= 1);
        for (size_t i = 0; i < g.noutput_candidates; i++)
            assert_non_null(graph_find_tensor(&g, g.output_candidates[i].name));
        arena_destroy(a);
    }
}

/* Reference Levenshtein distance (full table). */
static size_t ref_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof(*row));
    assert_non_null(row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

static const char *ref_query;
static int ref_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    size_t da = ref_distance(ref_query, a), db = ref_distance(ref_query, b);
    if (da != db)
        return da < db ? -1 : 1;
    return strcmp(a, b);
}

static void test_closest_names_match_a_reference(void **state)
{
    (void)state;
    static const struct {
        const char *query; /* as given */
        const char *bare;  /* what is compared */
    } queries[] = {
        {"yy:0", "yy"},
        {"nope", "nope"},
        {"x", "x"},
        {"^y", "y"},
        {"save/Assign_9", "save/Assign_9"},
        {"", ""},
        {"StatefulPartitionedCall_9:0", "StatefulPartitionedCall_9"},
        {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
         "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"},
    };
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512];
        fixture_path(fx, path, sizeof(path));
        arena_t *a = arena_create(0);
        assert_non_null(a);
        graph_summary_t g;
        nn_error_t err;
        nn_error_init(&err);
        assert_true(graph_load(a, path, fx->format, NULL, &g, &err));
        const char **names = malloc(g.nnodes * sizeof(*names));
        assert_non_null(names);
        for (size_t qi = 0; qi < N(queries); qi++) {
            for (size_t i = 0; i < g.nnodes; i++)
                names[i] = g.nodes[i].name;
            ref_query = queries[qi].bare;
            qsort(names, g.nnodes, sizeof(*names), ref_cmp);
            for (size_t max = 1; max <= 7; max += 3) {
                const char *out[8];
                size_t n = graph_closest_names(a, &g, queries[qi].query, out, max);
                assert_int_equal(n, max < g.nnodes ? max : g.nnodes);
                for (size_t i = 0; i < n; i++) {
                    char want[256];
                    snprintf(want, sizeof(want), "%s:0", names[i]);
                    if (strcmp(out[i], want) != 0)
                        fail_msg("%s, query \"%s\", #%zu: got %s, want %s", fx->dir,
                                 queries[qi].query, i, out[i], want);
                }
            }
        }
        free(names);
        const char *out[5];
        assert_int_equal(graph_closest_names(a, &g, "y", out, 0), 0);
        arena_destroy(a);
    }

    /* matrix_half_plus_two: "yy:0" is closest to y (1 edit), then x. */
    char path[512];
    fixture_path(&fixtures[5], path, sizeof(path));
    arena_t *a = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    nn_error_init(&err);
    assert_true(graph_load(a, path, GRAPH_FORMAT_BINARY, NULL, &g, &err));
    const char *out[5];
    assert_int_equal(graph_closest_names(a, &g, "yy:0", out, 5), 5);
    assert_string_equal(out[0], "y:0");
    assert_string_equal(out[1], "x:0");
    arena_destroy(a);
}

static long long json_int(yajl_val root, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_number);
    assert_non_null(v);
    return YAJL_GET_INTEGER(v);
}

static void test_summary_json(void **state)
{
    (void)state;
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512];
        fixture_path(fx, path, sizeof(path));
        arena_t *a = arena_create(0);
        graph_summary_t g;
        nn_error_t err;
        nn_error_init(&err);
        assert_true(graph_load(a, path, fx->format, NULL, &g, &err));
        json_out_t out = {NULL, 0, 0};
        yajl_gen y = yajl_gen_alloc(NULL);
        yajl_gen_config(y, yajl_gen_print_callback, json_print, &out);
        yajl_gen_config(y, yajl_gen_validate_utf8, 1);
        bool generated = graph_summary_gen(y, &g);
        yajl_gen_free(y); /* before the assertion, as in exercise() */
        assert_true(generated);

        char errbuf[256];
        yajl_val root = yajl_tree_parse(out.data, errbuf, sizeof(errbuf));
        if (!root)
            fail_msg("%s: bad JSON: %s", fx->dir, errbuf);
        assert_int_equal(json_int(root, "node_count"), (long long)fx->nnodes);
        assert_int_equal(json_int(root, "function_count"), (long long)fx->nfunctions);

        const char *p_inputs[] = {"inputs", NULL};
        yajl_val inputs = yajl_tree_get(root, p_inputs, yajl_t_array);
        assert_non_null(inputs);
        assert_int_equal(YAJL_GET_ARRAY(inputs)->len, g.ninput_candidates);
        yajl_val first = YAJL_GET_ARRAY(inputs)->values[0];
        const char *p_name[] = {"name", NULL};
        assert_string_equal(YAJL_GET_STRING(yajl_tree_get(first, p_name, yajl_t_string)),
                            g.input_candidates[0].name);
        const char *p_outputs[] = {"outputs", NULL};
        assert_non_null(yajl_tree_get(root, p_outputs, yajl_t_array));

        /* ops = graph ops + function ops. */
        const char *p_ops[] = {"ops", NULL};
        yajl_val ops = yajl_tree_get(root, p_ops, yajl_t_object);
        assert_non_null(ops);
        long long total = 0;
        for (size_t i = 0; i < YAJL_GET_OBJECT(ops)->len; i++) {
            total += YAJL_GET_INTEGER(YAJL_GET_OBJECT(ops)->values[i]);
            if (i)
                assert_true(
                    strcmp(YAJL_GET_OBJECT(ops)->keys[i - 1], YAJL_GET_OBJECT(ops)->keys[i]) < 0);
        }
        assert_int_equal(total, (long long)(fx->nnodes + fx->nfunction_nodes));

        const char *p_tfv[] = {"tensorflow_version", NULL};
        assert_string_equal(YAJL_GET_STRING(yajl_tree_get(root, p_tfv, yajl_t_string)),
                            fx->tf_version);
        const char *p_tags[] = {"tags", NULL};
        yajl_val tags = yajl_tree_get(root, p_tags, yajl_t_array);
        assert_int_equal(YAJL_GET_ARRAY(tags)->len, 1);
        assert_string_equal(YAJL_GET_STRING(YAJL_GET_ARRAY(tags)->values[0]), "serve");

        const char *p_sigs[] = {"signatures", NULL};
        yajl_val sigs = yajl_tree_get(root, p_sigs, yajl_t_object);
        assert_int_equal(YAJL_GET_OBJECT(sigs)->len, fx->nsigs);
        const sig_expect_t *e = &fx->sigs[fx->nsigs - 1];
        const char *p_out[] = {"signatures", e->key, "outputs", e->out_alias, "name", NULL};
        assert_string_equal(YAJL_GET_STRING(yajl_tree_get(root, p_out, yajl_t_string)),
                            e->out_name);
        const char *p_dtype[] = {"signatures", e->key, "outputs", e->out_alias, "dtype", NULL};
        yajl_val dt = yajl_tree_get(root, p_dtype, yajl_t_any);
        if (e->out_dtype)
            assert_string_equal(YAJL_GET_STRING(dt), graph_dtype_name(e->out_dtype));
        else
            assert_true(YAJL_IS_NULL(dt));
        yajl_tree_free(root);
        free(out.data);
        arena_destroy(a);
    }
}

static void test_pbtxt_nodes_and_cross_format(void **state)
{
    (void)state;
    char path[512];
    fixture_path(&fixtures[6], path, sizeof(path));
    arena_t *a = arena_create(0);
    graph_summary_t text;
    nn_error_t err;
    nn_error_init(&err);
    assert_true(graph_load(a, path, GRAPH_FORMAT_TEXT, "saved_model.pbtxt", &text, &err));
    assert_int_equal(text.nnodes, N(pbtxt_nodes));
    for (size_t i = 0; i < N(pbtxt_nodes); i++) {
        assert_string_equal(text.nodes[i].name, pbtxt_nodes[i][0]);
        assert_string_equal(text.nodes[i].op, pbtxt_nodes[i][1]);
    }
    /* Attributes read from text: x2 is a float placeholder, Mul has T. */
    const graph_node_t *x2 = graph_find_tensor(&text, "x2");
    assert_int_equal(x2->dtype, DT_FLOAT);
    const graph_node_t *y = graph_find_tensor(&text, "y:0");
    assert_int_equal(y->ninputs, 2);
    assert_string_equal(y->inputs[0], "Mul");
    assert_string_equal(y->inputs[1], "b/read");

    /* half_plus_three (binary) has the same graph, with VariableV2. */
    fixture_path(&fixtures[1], path, sizeof(path));
    graph_summary_t bin;
    assert_true(graph_load(a, path, GRAPH_FORMAT_BINARY, NULL, &bin, &err));
    assert_int_equal(bin.nnodes, text.nnodes);
    for (size_t i = 0; i < bin.nnodes; i++) {
        assert_string_equal(bin.nodes[i].name, text.nodes[i].name);
        if (strcmp(text.nodes[i].op, "Variable") == 0)
            assert_string_equal(bin.nodes[i].op, "VariableV2");
        else
            assert_string_equal(bin.nodes[i].op, text.nodes[i].op);
    }
    arena_destroy(a);
}

/* ---- damaged fixtures ------------------------------------------------- */

static void test_truncated_fixtures(void **state)
{
    (void)state;
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512];
        fixture_path(fx, path, sizeof(path));
        size_t len;
        unsigned char *data = read_file(path, &len);
        bool text = fx->format == GRAPH_FORMAT_TEXT;
        size_t parsed = 0;
        for (size_t cut = 0; cut < len; cut++) {
            /* Every length for binary files; text at a stride and near both
             * ends (each parse reads up to the cut). */
            if (text && cut > 400 && cut + 400 < len && cut % 31 != 0)
                continue;
            arena_t *a = arena_create(0);
            graph_summary_t g;
            nn_error_t err;
            bool ok = parse_bytes(a, data, cut, fx->format, &g, &err);
            /* Only the text file with its final newline cut is complete. */
            if (ok && !(text && cut == len - 1))
                fail_msg("%s cut at %zu parsed", fx->dir, cut);
            if (!ok && cut > 0)
                assert_non_null(strstr(err.message, "is not a valid SavedModel"));
            if (ok)
                exercise(a, &g);
            arena_destroy(a);
            parsed++;
        }
        assert_true(parsed > 0);

        /* Binary: also cut inside the meta graph, with the outer length
         * fixed up, so that the walk reaches the damage. */
        if (!text) {
            assert_true(data[0] == 0x08 && data[1] == 0x01 && data[2] == 0x12);
            const unsigned char *p = data + 3;
            uint64_t mlen;
            assert_true(pb_decode_varint(&p, data + len, &mlen));
            const unsigned char *payload = p;
            unsigned char *buf = malloc(len + 16);
            assert_non_null(buf);
            for (size_t cut = 0; cut < mlen; cut += (cut < 2000 ? 1 : 7)) {
                size_t n = 0;
                buf[n++] = 0x08;
                buf[n++] = 0x01;
                buf[n++] = 0x12;
                uint64_t v = cut;
                do {
                    buf[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                    v >>= 7;
                } while (v);
                memcpy(buf + n, payload, cut);
                n += cut;
                arena_t *a = arena_create(0);
                graph_summary_t g;
                nn_error_t err;
                if (parse_bytes(a, buf, n, GRAPH_FORMAT_BINARY, &g, &err))
                    exercise(a, &g);
                arena_destroy(a);
            }
            free(buf);
        }
        free(data);
    }
}

static void test_bit_flipped_fixtures(void **state)
{
    (void)state;
    uint32_t seed = 2024;
    for (size_t fi = 0; fi < N(fixtures); fi++) {
        const fixture_t *fx = &fixtures[fi];
        char path[512];
        fixture_path(fx, path, sizeof(path));
        size_t len;
        unsigned char *data = read_file(path, &len);
        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        int rounds = fx->format == GRAPH_FORMAT_TEXT ? 500 : 2000;
        size_t ok_count = 0;
        for (int r = 0; r < rounds; r++) {
            memcpy(copy, data, len);
            int flips = 1 + r % 4;
            for (int k = 0; k < flips; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % len;
                seed = seed * 1103515245u + 12345u;
                switch (r % 5) {
                case 0:
                    copy[pos] = 0xff;
                    break;
                case 1:
                    copy[pos] = 0x00;
                    break;
                default:
                    copy[pos] ^= (unsigned char)(1u << ((seed >> 16) % 8));
                    break;
                }
            }
            arena_t *a = arena_create(0);
            graph_summary_t g;
            nn_error_t err;
            if (parse_bytes(a, copy, len, fx->format, &g, &err)) {
                exercise(a, &g);
                ok_count++;
            }
            arena_destroy(a);
        }
        /* Some flips land in bytes the walker does not read (tensor
         * contents): those parse. */
        assert_true(ok_count > 0);
        free(copy);
        free(data);
    }
}

/* ---- a tiny protobuf writer for hand-made inputs ---------------------- */

typedef struct pbw {
    unsigned char *data;
    size_t len, cap;
} pbw_t;

static void w_raw(pbw_t *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 64;
        w->data = realloc(w->data, w->cap);
        assert_non_null(w->data);
    }
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

static void w_varint(pbw_t *w, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    w_raw(w, b, n);
}

static void w_uint(pbw_t *w, uint32_t field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}

static void w_bytes(pbw_t *w, uint32_t field, const void *p, size_t n)
{
    w_varint(w, ((uint64_t)field << 3) | 2);
    w_varint(w, n);
    w_raw(w, p, n);
}

static void w_str(pbw_t *w, uint32_t field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

/* Appends sub as a nested message and frees it. */
static void w_msg(pbw_t *w, uint32_t field, pbw_t *sub)
{
    w_bytes(w, field, sub->data, sub->len);
    free(sub->data);
    memset(sub, 0, sizeof(*sub));
}

static pbw_t shape_msg(int ndims, const int64_t *dims, bool unknown_rank)
{
    pbw_t s = {0};
    for (int i = 0; i < ndims; i++) {
        pbw_t d = {0};
        w_uint(&d, 1, (uint64_t)dims[i]);
        w_msg(&s, 2, &d);
    }
    if (unknown_rank)
        w_uint(&s, 3, 1);
    return s;
}

/* attr entry {key, value{type}} or {value, key} when value_first. */
static void w_attr_type(pbw_t *node, const char *key, int dtype, bool value_first)
{
    pbw_t e = {0}, v = {0};
    w_uint(&v, 6, (uint64_t)dtype);
    if (value_first) {
        w_msg(&e, 2, &v);
        w_str(&e, 1, key);
    } else {
        w_str(&e, 1, key);
        w_msg(&e, 2, &v);
    }
    w_msg(node, 5, &e);
}

static void w_attr_shape(pbw_t *node, const char *key, int ndims, const int64_t *dims, bool as_list)
{
    pbw_t e = {0}, v = {0}, s = shape_msg(ndims, dims, false);
    if (as_list) {
        pbw_t l = {0};
        w_msg(&l, 7, &s);
        pbw_t s2 = shape_msg(1, (int64_t[]){99}, false); /* a second shape: ignored */
        w_msg(&l, 7, &s2);
        w_msg(&v, 1, &l);
    } else {
        w_msg(&v, 7, &s);
    }
    w_str(&e, 1, key);
    w_msg(&e, 2, &v);
    w_msg(node, 5, &e);
}

static pbw_t node_msg(const char *name, const char *op)
{
    pbw_t n = {0};
    if (name)
        w_str(&n, 1, name);
    if (op)
        w_str(&n, 2, op);
    return n;
}

static pbw_t tensor_info_entry(const char *alias, const char *name, int dtype)
{
    pbw_t e = {0}, ti = {0};
    w_str(&ti, 1, name);
    w_uint(&ti, 2, (uint64_t)dtype);
    pbw_t s = shape_msg(0, NULL, true);
    w_msg(&ti, 3, &s);
    w_str(&e, 1, alias);
    w_msg(&e, 2, &ti);
    return e;
}

static pbw_t signature_entry(const char *key, const char *method, const char *in, const char *out)
{
    pbw_t e = {0}, sd = {0};
    if (in) {
        pbw_t t = tensor_info_entry("in", in, DT_FLOAT);
        w_msg(&sd, 1, &t);
    }
    if (out) {
        pbw_t t = tensor_info_entry("out", out, DT_FLOAT);
        w_msg(&sd, 2, &t);
    }
    w_str(&sd, 3, method);
    w_msg(&e, 2, &sd); /* value before key */
    w_str(&e, 1, key);
    return e;
}

/* SavedModel { meta_graphs { graph_def { nodes } } } around a graph_def. */
static pbw_t saved_model_with_graph(pbw_t *graph_def)
{
    pbw_t sm = {0}, mg = {0};
    w_msg(&mg, 2, graph_def);
    w_uint(&sm, 1, 1);
    w_msg(&sm, 2, &mg);
    return sm;
}

static void test_handmade_binary_model(void **state)
{
    (void)state;
    pbw_t gd = {0}, n;

    n = node_msg("x", "Placeholder");
    w_attr_type(&n, "T", DT_INT32, false);
    w_attr_type(&n, "dtype", DT_FLOAT, false); /* "dtype" beats "T" */
    w_attr_shape(&n, "_output_shapes", 1, (int64_t[]){3}, true);
    w_attr_shape(&n, "shape", 2, (int64_t[]){-1, 2}, false); /* "shape" beats it */
    w_uint(&n, 9, 5);                                        /* unknown field */
    w_raw(&n, "\x53\x08\x01\x54", 4);                        /* a group: skipped */
    w_msg(&gd, 1, &n);

    n = node_msg("y", "Identity");
    w_str(&n, 3, "x");
    w_str(&n, 3, "^x");
    w_attr_type(&n, "T", DT_STRING, true); /* value before key */
    w_attr_shape(&n, "_output_shapes", 3, (int64_t[]){1, -1, 0}, true);
    w_attr_type(&n, "unrelated", DT_INT32, false);
    w_msg(&gd, 1, &n);

    n = node_msg("z", "NoOp");
    w_str(&n, 3, "^y");
    w_msg(&gd, 1, &n);
    n = node_msg("w", "Add");
    w_str(&n, 3, "x:0");
    w_str(&n, 3, "y:1");
    w_msg(&gd, 1, &n);

    pbw_t versions = {0};
    w_uint(&versions, 1, 42);
    w_uint(&versions, 2, 12);
    w_msg(&gd, 4, &versions);

    pbw_t lib = {0}, fn = {0}, sig = {0};
    w_str(&sig, 1, "my_function");
    w_msg(&fn, 1, &sig);
    n = node_msg("m", "Mul");
    w_msg(&fn, 3, &n);
    n = node_msg("a", "AddV2");
    w_msg(&fn, 3, &n);
    w_msg(&lib, 1, &fn);
    w_msg(&lib, 1, &fn); /* an empty function */
    w_msg(&gd, 2, &lib);

    pbw_t mi = {0};
    w_str(&mi, 4, "serve");
    w_str(&mi, 4, "gpu");
    w_str(&mi, 5, "2.99.0");
    w_str(&mi, 6, "v2.99.0-0-gabc");

    pbw_t mg = {0};
    w_msg(&mg, 1, &mi);
    w_msg(&mg, 2, &gd);
    pbw_t e = signature_entry("b", "first", "x:0", "w:0");
    w_msg(&mg, 5, &e);
    e = signature_entry("a", "predict", NULL, "y");
    w_msg(&mg, 5, &e);
    e = signature_entry("b", "second", "x", "y:0"); /* the same key again: wins */
    w_msg(&mg, 5, &e);

    pbw_t other = {0}, gd2 = {0};
    n = node_msg("ignored", "Const");
    w_msg(&gd2, 1, &n);
    w_msg(&other, 2, &gd2);

    pbw_t sm = {0};
    w_uint(&sm, 1, 1);
    w_msg(&sm, 2, &mg);
    w_msg(&sm, 2, &other); /* a second meta graph: not summarized */

    arena_t *a = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    if (!parse_bytes(a, sm.data, sm.len, GRAPH_FORMAT_BINARY, &g, &err))
        fail_msg("%s", err.message);
    assert_int_equal(g.ntags, 2);
    assert_string_equal(g.tags[1], "gpu");
    assert_string_equal(g.tensorflow_version, "2.99.0");
    assert_string_equal(g.tensorflow_git_version, "v2.99.0-0-gabc");
    assert_int_equal(g.producer, 42);
    assert_int_equal(g.nnodes, 4);
    assert_int_equal(g.nfunctions, 2);
    assert_int_equal(g.nfunction_nodes, 2);
    assert_string_equal(g.function_ops[0], "Mul");
    assert_string_equal(g.function_ops[1], "AddV2");

    char buf[64];
    const graph_node_t *x = graph_find_tensor(&g, "x");
    assert_int_equal(x->dtype, DT_FLOAT);
    shape_str(&x->shape, buf, sizeof(buf));
    assert_string_equal(buf, "[-1,2]");
    const graph_node_t *y = graph_find_tensor(&g, "y:0");
    assert_int_equal(y->dtype, DT_STRING);
    shape_str(&y->shape, buf, sizeof(buf));
    assert_string_equal(buf, "[1,-1,0]");
    assert_int_equal(y->ninputs, 2);
    assert_string_equal(y->inputs[1], "^x");
    assert_ptr_equal(x->op, graph_find_tensor(&g, "x:0")->op);

    assert_int_equal(g.nsignatures, 2);
    assert_string_equal(g.signatures[0].key, "a");
    assert_string_equal(g.signatures[1].key, "b");
    assert_string_equal(g.signatures[1].method_name, "second");
    assert_string_equal(g.signatures[1].inputs[0].name, "x");
    assert_string_equal(g.signatures[0].outputs[0].name, "y");
    assert_true(g.signatures[0].outputs[0].shape.unknown_rank);

    /* Inputs: the placeholder, then "x" from b (the same tensor as x:0). */
    assert_int_equal(g.ninput_candidates, 1);
    assert_string_equal(g.input_candidates[0].name, "x:0");
    /* Outputs: "y" (sig a), "y:0" is the same tensor; then w (unconsumed);
     * z is a NoOp and x, y are consumed. */
    assert_int_equal(g.noutput_candidates, 2);
    assert_string_equal(g.output_candidates[0].name, "y");
    assert_string_equal(g.output_candidates[1].name, "w:0");
    exercise(a, &g);
    arena_destroy(a);
    free(sm.data);
}

static void test_handmade_text_model(void **state)
{
    (void)state;
    const char *text =
        "# a hand-written SavedModel\n"
        "saved_model_schema_version: 1\n"
        "meta_graphs <\n"
        "  meta_info_def { tags: [\"serve\", 'tpu'] tensorflow_version: \"2.\" \"1\" }\n"
        "  graph_def {\n"
        "    node { name: \"in\\x70ut\" op: 'Placeholder'\n"
        "      attr { value { type: DT_HALF } key: \"dtype\" }\n"
        "      attr { key: \"shape\" value { shape { dim { size: -1 } dim: { size: 0x10 } } } }\n"
        "    }\n"
        "    node: { name: \"out\", op: \"Relu\"; input: [\"input:0\"] "
        "attr { key: \"T\" value { type: 19 } } }\n"
        "    node { name: \"ref\" op: \"VariableV2\" attr { key: \"dtype\" value { type: "
        "DT_FLOAT_REF } } }\n"
        "    versions { producer: 1234 bad_consumers: [1, 2] }\n"
        "    library { function { signature { name: \"f\" } node_def { name: \"n\" op: \"Exp\" } "
        "ret { key: \"a\" value: \"b\" } } }\n"
        "  }\n"
        "  collection_def { key: \"c\" value { any_list { value {\n"
        "    [type.googleapis.com/tensorflow.AssetFileDef] { filename: \"foo.txt\" } } } } }\n"
        "  signature_def { key: \"s\" value { method_name: \"m\" outputs { key: \"o\" value "
        "{ name: \"out:0\" dtype: DT_HALF tensor_shape { unknown_rank: true } } } } }\n"
        ">\n"
        "meta_graphs { graph_def { node { name: 5 } } }  # not read: only the first counts\n";
    arena_t *a = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    if (!parse_bytes(a, text, strlen(text), GRAPH_FORMAT_TEXT, &g, &err))
        fail_msg("%s", err.message);
    assert_int_equal(g.ntags, 2);
    assert_string_equal(g.tags[1], "tpu");
    assert_string_equal(g.tensorflow_version, "2.1");
    assert_int_equal(g.producer, 1234);
    assert_int_equal(g.nnodes, 3);
    assert_string_equal(g.nodes[0].name, "input");
    assert_int_equal(g.nodes[0].dtype, 19);
    char buf[64];
    shape_str(&g.nodes[0].shape, buf, sizeof(buf));
    assert_string_equal(buf, "[-1,16]");
    assert_int_equal(g.nodes[1].dtype, 19);
    assert_string_equal(g.nodes[1].inputs[0], "input:0");
    assert_int_equal(g.nodes[2].dtype, 101);
    assert_string_equal(graph_dtype_name(g.nodes[2].dtype), "float_ref");
    assert_int_equal(g.nfunctions, 1);
    assert_string_equal(g.function_ops[0], "Exp");
    assert_int_equal(g.nsignatures, 1);
    assert_int_equal(g.signatures[0].outputs[0].dtype, 19);
    assert_true(g.signatures[0].outputs[0].shape.unknown_rank);
    assert_string_equal(g.input_candidates[0].name, "input:0");
    exercise(a, &g);
    arena_destroy(a);
}

/* ---- pathological inputs ---------------------------------------------- */

static void test_pathological_binary(void **state)
{
    (void)state;
    expect_invalid(NULL, 0, GRAPH_FORMAT_BINARY, "file \"saved_model.pb\" is empty");
    expect_invalid("\x08\x01", 2, GRAPH_FORMAT_BINARY, "it has no meta graph");
    expect_invalid("\x08\x01\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 12, GRAPH_FORMAT_BINARY,
                   "exceeds the 0 bytes left at byte 3");
    expect_invalid("\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12, GRAPH_FORMAT_BINARY,
                   "varint longer than 10 bytes at byte 1");
    expect_invalid("\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, GRAPH_FORMAT_BINARY,
                   "overflows 64 bits");
    expect_invalid("\x10\x01", 2, GRAPH_FORMAT_BINARY,
                   "field meta_graphs (2) of SavedModel is a varint value, expected a message");
    expect_invalid("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, GRAPH_FORMAT_BINARY,
                   "is not a valid SavedModel");
    expect_invalid("\x08\x01\x12\x04\x12\x02\x08\x05", 8, GRAPH_FORMAT_BINARY,
                   "field node (1) of GraphDef is a varint value, expected a message at byte 6");

    /* A million nested groups at the top. */
    size_t big = 1000000;
    unsigned char *groups = malloc(big);
    assert_non_null(groups);
    memset(groups, 0x1b, big); /* start group 3 */
    expect_invalid(groups, big, GRAPH_FORMAT_BINARY, "groups nest deeper than 64 levels");
    free(groups);

    /* Nodes: no name, no op, a name twice, bad UTF-8, a NUL byte. */
    static const struct {
        const char *name, *op, *name2;
        const char *part;
    } node_cases[] = {
        {NULL, "Const", NULL, "node 0 of the graph has no name"},
        {"", "Const", NULL, "has no name"},
        {"a", NULL, NULL, "node \"a\" has no op"},
        {"a", "Const", "a", "node name \"a\" is used by two nodes"},
        {"\xff", "Const", NULL, "field name of NodeDef is not valid UTF-8"},
        {"\xc0\x80", "Const", NULL, "not valid UTF-8"},     /* overlong NUL */
        {"\xed\xa0\x80", "Const", NULL, "not valid UTF-8"}, /* surrogate */
        {"a", "\xe2\x82", NULL, "field op of NodeDef is not valid UTF-8"},
    };
    for (size_t i = 0; i < N(node_cases); i++) {
        pbw_t gd = {0};
        pbw_t n = node_msg(node_cases[i].name, node_cases[i].op);
        w_msg(&gd, 1, &n);
        if (node_cases[i].name2) {
            n = node_msg(node_cases[i].name2, "Const");
            w_msg(&gd, 1, &n);
        }
        pbw_t sm = saved_model_with_graph(&gd);
        expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY, node_cases[i].part);
        free(sm.data);
    }
    {
        pbw_t gd = {0}, n = {0};
        w_bytes(&n, 1, "a\0b", 3);
        w_str(&n, 2, "Const");
        w_msg(&gd, 1, &n);
        pbw_t sm = saved_model_with_graph(&gd);
        expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY, "contains a NUL byte");
        free(sm.data);
    }

    /* Shapes: 254 dimensions are fine, 255 are not; sizes below -1 are
     * refused. */
    for (int ndims = 254; ndims <= 255; ndims++) {
        int64_t dims[255];
        for (int i = 0; i < ndims; i++)
            dims[i] = 1;
        pbw_t gd = {0}, n = node_msg("p", "Placeholder");
        w_attr_shape(&n, "shape", ndims, dims, false);
        w_msg(&gd, 1, &n);
        pbw_t sm = saved_model_with_graph(&gd);
        if (ndims == 254) {
            arena_t *a = arena_create(0);
            graph_summary_t g;
            nn_error_t err;
            assert_true(parse_bytes(a, sm.data, sm.len, GRAPH_FORMAT_BINARY, &g, &err));
            assert_int_equal(g.nodes[0].shape.ndims, 254);
            arena_destroy(a);
        } else {
            expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY, "more than 254 dimensions");
        }
        free(sm.data);
    }
    {
        pbw_t gd = {0}, n = node_msg("p", "Placeholder");
        w_attr_shape(&n, "shape", 2, (int64_t[]){4, -2}, false);
        w_msg(&gd, 1, &n);
        pbw_t sm = saved_model_with_graph(&gd);
        expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY, "dimension size -2 is invalid");
        free(sm.data);
    }
    {
        /* A dtype sent as bytes. */
        pbw_t gd = {0}, n = node_msg("p", "Placeholder"), e = {0}, v = {0};
        w_str(&v, 6, "float");
        w_str(&e, 1, "dtype");
        w_msg(&e, 2, &v);
        w_msg(&n, 5, &e);
        w_msg(&gd, 1, &n);
        pbw_t sm = saved_model_with_graph(&gd);
        expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY,
                       "field type (6) of AttrValue is a length-delimited value, expected a "
                       "varint");
        free(sm.data);
    }
    {
        /* Deep nesting inside a field the walker does not read is opaque
         * bytes: accepted without descending. */
        pbw_t deep = {0};
        w_uint(&deep, 1, 1);
        for (int i = 0; i < 500; i++) {
            pbw_t outer = {0};
            w_msg(&outer, 1, &deep);
            deep = outer;
        }
        pbw_t mg = {0}, sm = {0}, gd = {0}, n = node_msg("a", "Const");
        w_msg(&gd, 1, &n);
        w_msg(&mg, 3, &deep); /* saver_def */
        w_msg(&mg, 2, &gd);
        w_msg(&sm, 2, &mg);
        arena_t *a = arena_create(0);
        graph_summary_t g;
        nn_error_t err;
        assert_true(parse_bytes(a, sm.data, sm.len, GRAPH_FORMAT_BINARY, &g, &err));
        assert_int_equal(g.nnodes, 1);
        arena_destroy(a);
        free(sm.data);
    }
}

static void test_pathological_text(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *part;
    } cases[] = {
        {"", "file \"saved_model.pbtxt\" is empty"},
        {"# only a comment\n", "it has no meta graph"},
        {"saved_model_schema_version: 1\n", "it has no meta graph"},
        {"meta_graphs: 5", "field meta_graphs of SavedModel must be a message at line 1, column 1"},
        {"meta_graphs {\n  graph_def {\n    node { name: 5 }\n  }\n}\n",
         "field name of NodeDef must be a string at line 3, column 12"},
        {"meta_graphs { graph_def { node { name: \"a\" op: \"C\" attr { key: \"dtype\" value { "
         "type: DT_NOPE } } } } }",
         "unknown DataType DT_NOPE in field type of AttrValue at line 1, column 86"},
        {"meta_graphs { graph_def { versions { producer: 99999999999 } } }",
         "field producer of VersionDef must be a 32-bit integer"},
        {"meta_graphs { graph_def { node { name: \"a\" op: \"C\" } node { name: \"a\" op: \"D\" } "
         "} "
         "}",
         "node name \"a\" is used by two nodes at line 1, column 54"},
        {"meta_graphs { meta_info_def { tags: \"\\xff\" } }",
         "field tags of MetaInfoDef is not valid UTF-8"},
        {"meta_graphs { meta_info_def { tags: \"a\\0b\" } }", "contains a NUL byte"},
        {"meta_graphs { graph_def { node { name: \"a\" op: \"C\" attr { key: \"shape\" value { "
         "shape { dim { size: -3 } } } } } } }",
         "dimension size -3 is invalid"},
        {"meta_graphs { graph_def { node { name: \"a\" op: \"C\" }",
         "unexpected end of input, '}' expected at line 1, column 53"},
        {"meta_graphs { graph_def { node { name: \"a\" op: \"C\" } } } }", "unexpected '}'"},
        {"meta_graphs { meta_info_def { tags: serve } }",
         "field tags of MetaInfoDef must be a string"},
        {"meta_graphs { signature_def { key: \"k\" value { inputs { value { dtype: \"x\" } } } } }",
         "field dtype of TensorInfo must be a 32-bit integer"},
        {"meta_graphs { graph_def { node { unknown_field: [1, 2] name: \"a\" op: \"C\" attr { "
         "key: \"x\" value { list { shape { dim { size: 1 } } } } } } } }",
         NULL},
    };
    for (size_t i = 0; i < N(cases); i++) {
        if (cases[i].part) {
            expect_invalid(cases[i].text, strlen(cases[i].text), GRAPH_FORMAT_TEXT, cases[i].part);
        } else {
            arena_t *a = arena_create(0);
            graph_summary_t g;
            nn_error_t err;
            if (!parse_bytes(a, cases[i].text, strlen(cases[i].text), GRAPH_FORMAT_TEXT, &g, &err))
                fail_msg("case %zu: %s", i, err.message);
            arena_destroy(a);
        }
    }

    /* Nesting deeper than 64 inside a skipped field is refused too. */
    size_t depth = 100;
    char *t = malloc(depth * 6 + 64);
    assert_non_null(t);
    size_t n = (size_t)sprintf(t, "meta_graphs { saver_def ");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(t + n, "{ a ");
    n += (size_t)sprintf(t + n, "{ }");
    for (size_t i = 0; i < depth + 1; i++)
        t[n++] = '}';
    t[n] = '\0';
    expect_invalid(t, n, GRAPH_FORMAT_TEXT, "messages nest deeper than 64 levels");
    free(t);

    /* Binary bytes given as text. */
    char path[512];
    fixture_path(&fixtures[5], path, sizeof(path));
    size_t len;
    unsigned char *bin = read_file(path, &len);
    expect_invalid(bin, len, GRAPH_FORMAT_TEXT, "at line 1, column 1");
    free(bin);
}

static void test_memory_budget(void **state)
{
    (void)state;
    /* One node with 6 million empty inputs: 12 MB of input that would need
     * far more memory than 64 MiB + 4 bytes per input byte. */
    size_t ninputs = 6 * 1000 * 1000;
    pbw_t node = node_msg("n", "Op");
    unsigned char *inputs = malloc(ninputs * 2);
    assert_non_null(inputs);
    for (size_t i = 0; i < ninputs; i++) {
        inputs[2 * i] = 0x1a;
        inputs[2 * i + 1] = 0x00;
    }
    w_raw(&node, inputs, ninputs * 2);
    free(inputs);
    pbw_t gd = {0};
    w_msg(&gd, 1, &node);
    pbw_t sm = saved_model_with_graph(&gd);
    expect_invalid(sm.data, sm.len, GRAPH_FORMAT_BINARY, "would take more than");
    free(sm.data);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A realistic graph of many nodes (name, op, two inputs, T, shapes, and a
 * tensor value the walker skips). */
static pbw_t big_graph(size_t nnodes)
{
    pbw_t gd = {0};
    unsigned char tensor[48];
    memset(tensor, 0x3f, sizeof(tensor));
    for (size_t i = 0; i < nnodes; i++) {
        char name[64], in1[64], in2[64];
        snprintf(name, sizeof(name), "model/layer_%zu/conv", i);
        snprintf(in1, sizeof(in1), "model/layer_%zu/conv", i ? i - 1 : 0);
        snprintf(in2, sizeof(in2), "model/layer_%zu/conv:1", i / 2);
        pbw_t n = node_msg(name, i % 3 ? "Conv2D" : "Const");
        if (i) {
            w_str(&n, 3, in1);
            w_str(&n, 3, in2);
        }
        w_str(&n, 4, "/device:CPU:0");
        w_attr_type(&n, "T", DT_FLOAT, false);
        w_attr_shape(&n, "_output_shapes", 4, (int64_t[]){-1, 224, 224, 64}, true);
        pbw_t e = {0}, v = {0};
        w_bytes(&v, 8, tensor, sizeof(tensor));
        w_str(&e, 1, "value");
        w_msg(&e, 2, &v);
        w_msg(&n, 5, &e);
        w_msg(&gd, 1, &n);
    }
    return saved_model_with_graph(&gd);
}

static void test_large_graph_is_fast(void **state)
{
    (void)state;
    size_t nnodes = 150000;
    pbw_t sm = big_graph(nnodes);
    arena_t *a = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    nn_error_init(&err);
    double t0 = now_seconds();
    bool ok = graph_parse(a, sm.data, sm.len, GRAPH_FORMAT_BINARY, NULL, &g, &err);
    double t1 = now_seconds();
    if (!ok)
        fail_msg("%s", err.message);
    assert_int_equal(g.nnodes, nnodes);
    const char *out[5];
    size_t n = graph_closest_names(a, &g, "model/layer_1234/conv2:0", out, 5);
    double t2 = now_seconds();
    assert_int_equal(n, 5);
    assert_string_equal(out[0], "model/layer_1234/conv:0");
    assert_non_null(graph_find_tensor(&g, "model/layer_149999/conv:0"));
    print_message("%zu nodes, %.1f MB: parse %.3f s, closest names %.3f s, arena %zu MB\n", nnodes,
                  (double)sm.len / 1e6, t1 - t0, t2 - t1, arena_bytes_reserved(a) >> 20);
    /* Generous bounds: this also runs under ASan and on busy machines. */
    assert_true(t1 - t0 < 20.0);
    assert_true(t2 - t1 < 20.0);
    arena_destroy(a);
    free(sm.data);
}

/* graph_closest_names on a summary of a million nodes stays bounded. */
static void test_closest_names_million_nodes(void **state)
{
    (void)state;
    size_t nnodes = 1000000;
    arena_t *a = arena_create(0);
    graph_summary_t g;
    memset(&g, 0, sizeof(g));
    g.nodes = arena_calloc(a, nnodes, sizeof(graph_node_t));
    assert_non_null(g.nodes);
    g.nnodes = nnodes;
    for (size_t i = 0; i < nnodes; i++) {
        g.nodes[i].name = arena_printf(a, "block%zu/unit%zu/%s", i / 1000, i % 1000,
                                       i % 2 ? "weights" : "bias_add");
        g.nodes[i].op = "Const";
    }
    /* A very long name costs no more than a short one. */
    char *longq = arena_alloc(a, 100001);
    memset(longq, 'q', 100000);
    longq[100000] = '\0';
    const char *queries[] = {"block999/unit999/weight", "zzz", longq, "block5/unit8/bias_add:0"};
    for (size_t i = 0; i < N(queries); i++) {
        const char *out[5];
        double t0 = now_seconds();
        size_t n = graph_closest_names(a, &g, queries[i], out, 5);
        double t = now_seconds() - t0;
        assert_int_equal(n, 5);
        print_message("closest names, 1e6 nodes, query %zu: %.3f s\n", i, t);
        assert_true(t < 20.0);
        if (i == 0)
            assert_string_equal(out[0], "block999/unit999/weights:0");
        if (i == 3)
            assert_string_equal(out[0], "block5/unit8/bias_add:0");
    }
    arena_destroy(a);
}

static void test_graph_load_errors(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    nn_error_init(&err);
    assert_false(graph_load(a, "/nonexistent/saved_model.pb", GRAPH_FORMAT_BINARY, NULL, &g, &err));
    assert_int_equal(err.status, 500);
    nn_error_init(&err);
    assert_false(graph_load(a, "/tmp", GRAPH_FORMAT_BINARY, NULL, &g, &err));
    assert_int_equal(err.status, 500);

    char path[] = "/tmp/test_graph_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    nn_error_init(&err);
    assert_false(graph_load(a, path, GRAPH_FORMAT_BINARY, "saved_model.pb", &g, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.message, "file \"saved_model.pb\" is empty, not a SavedModel");
    unlink(path);
    arena_destroy(a);
}

static void test_dtype_names(void **state)
{
    (void)state;
    static const struct {
        int dtype;
        const char *name;
    } cases[] = {
        {0, "invalid"},       {1, "float"},          {2, "double"},         {3, "int32"},
        {7, "string"},        {9, "int64"},          {10, "bool"},          {14, "bfloat16"},
        {19, "half"},         {20, "resource"},      {21, "variant"},       {23, "uint64"},
        {24, "float8_e5m2"},  {25, "float8_e4m3fn"}, {29, "int4"},          {30, "uint4"},
        {101, "float_ref"},   {107, "string_ref"},   {120, "resource_ref"}, {130, "uint4_ref"},
        {31, "unknown"},      {100, "unknown"},      {131, "unknown"},      {-1, "unknown"},
        {1000000, "unknown"},
    };
    for (size_t i = 0; i < N(cases); i++)
        assert_string_equal(graph_dtype_name(cases[i].dtype), cases[i].name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_match_readme),
        cmocka_unit_test(test_fixtures_tensor_lookup_and_candidates),
        cmocka_unit_test(test_closest_names_match_a_reference),
        cmocka_unit_test(test_summary_json),
        cmocka_unit_test(test_pbtxt_nodes_and_cross_format),
        cmocka_unit_test(test_truncated_fixtures),
        cmocka_unit_test(test_bit_flipped_fixtures),
        cmocka_unit_test(test_handmade_binary_model),
        cmocka_unit_test(test_handmade_text_model),
        cmocka_unit_test(test_pathological_binary),
        cmocka_unit_test(test_pathological_text),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_large_graph_is_fast),
        cmocka_unit_test(test_closest_names_million_nodes),
        cmocka_unit_test(test_graph_load_errors),
        cmocka_unit_test(test_dtype_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
