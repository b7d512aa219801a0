/* Unit tests: which nodes the engine can compute (infer/blocked), on small
 * graphs written as SavedModel text: the blocking node is found through
 * data inputs (named "x", "x:1"), control inputs are not followed, a
 * PartitionedCall is blocked by its library's ops, cycles end, and a long
 * chain does not exhaust the stack.  "supported" here is a fixed list, so
 * the tests do not depend on the engine's op set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infer/blocked.h"
#include "util/buf.h"

static bool supported(const char *op)
{
    static const char *const ops[] = {"Placeholder", "Const", "Identity", "Relu", "Add",
                                      "StatefulPartitionedCall", "NextIteration", "Merge", NULL};
    for (size_t i = 0; ops[i]; i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

typedef struct parsed {
    arena_t *arena;
    graph_summary_t g;
    const graph_node_t **blocked;
} parsed_t;

static void parse_fed(parsed_t *p, const char *graph_def, const char *const *fed, size_t nfed)
{
    p->arena = arena_create(0);
    char *text = arena_printf(p->arena, "meta_graphs { graph_def { %s } }", graph_def);
    nn_error_t err;
    nn_error_init(&err);
    if (!graph_parse(p->arena, (const unsigned char *)text, strlen(text), GRAPH_FORMAT_TEXT,
                     "test.pbtxt", &p->g, &err))
        fail_msg("%s", err.message);
    if (!blocked_compute(p->arena, &p->g, supported, fed, nfed, &p->blocked, &err))
        fail_msg("%s", err.message);
}

static void parse(parsed_t *p, const char *graph_def)
{
    parse_fed(p, graph_def, NULL, 0);
}

/* The blocking node's name for node `name`, NULL when none. */
static const char *blocker(const parsed_t *p, const char *name)
{
    for (size_t i = 0; i < p->g.nnodes; i++)
        if (strcmp(p->g.nodes[i].name, name) == 0)
            return p->blocked[i] ? p->blocked[i]->name : NULL;
    fail_msg("no node %s", name);
    return NULL;
}

static void test_data_inputs_carry_the_block(void **state)
{
    (void)state;
    parsed_t p;
    parse(&p, "node { name: 'x' op: 'Placeholder' }"
              "node { name: 'w' op: 'Const' }"
              "node { name: 'a' op: 'Relu' input: 'x' }"
              "node { name: 'odd' op: 'Erfinv' input: 'a:0' }"
              "node { name: 'b' op: 'Add' input: ['odd:1', 'w'] }"
              "node { name: 'c' op: 'Identity' input: 'b' }"
              "node { name: 'side' op: 'Relu' input: ['a', '^odd'] }"
              "node { name: 'save' op: 'SaveV2' input: 'w' }");
    assert_null(blocker(&p, "x"));
    assert_null(blocker(&p, "a"));
    assert_string_equal(blocker(&p, "odd"), "odd");
    assert_string_equal(blocker(&p, "b"), "odd");
    assert_string_equal(blocker(&p, "c"), "odd");
    assert_null(blocker(&p, "side")); /* a control input feeds no value */
    assert_string_equal(blocker(&p, "save"), "save");
    assert_null(blocker(&p, "w"));
    /* The op is reachable through the blocking node. */
    for (size_t i = 0; i < p.g.nnodes; i++)
        if (strcmp(p.g.nodes[i].name, "c") == 0)
            assert_string_equal(p.blocked[i]->op, "Erfinv");
    arena_destroy(p.arena);
}

static void test_function_ops_left_to_the_engine(void **state)
{
    (void)state;
    /* Another signature's function uses an op the engine lacks: calls are
     * not blocked for it (which function a call runs is not known here). */
    parsed_t p;
    parse(&p, "node { name: 'x' op: 'Placeholder' }"
              "node { name: 'call' op: 'StatefulPartitionedCall' input: 'x' }"
              "node { name: 'y' op: 'Identity' input: 'call' }"
              "library { function { signature { name: 'f' } node_def { name: 'n' op: 'Erfinv' } } }");
    assert_null(blocker(&p, "call"));
    assert_null(blocker(&p, "y"));
    arena_destroy(p.arena);
}

static void test_cycles_end(void **state)
{
    (void)state;
    parsed_t p;
    parse(&p, "node { name: 'x' op: 'Placeholder' }"
              "node { name: 'm' op: 'Merge' input: ['x', 'n'] }"
              "node { name: 'r' op: 'Relu' input: 'm' }"
              "node { name: 'n' op: 'NextIteration' input: 'r' }"
              "node { name: 'loop2' op: 'Add' input: ['loop2', 'q'] }"
              "node { name: 'q' op: 'Erfinv' }");
    assert_null(blocker(&p, "m"));
    assert_null(blocker(&p, "n"));
    assert_string_equal(blocker(&p, "loop2"), "q");
    arena_destroy(p.arena);
}

static void test_fed_tensors_cut_the_walk(void **state)
{
    (void)state;
    /* A TF1 serving graph: serialized examples are parsed into x; the
     * network feeds x itself. */
    static const char graph[] = "node { name: 'tf_example' op: 'Placeholder' }"
                                "node { name: 'parse' op: 'ParseExample' input: 'tf_example' }"
                                "node { name: 'x' op: 'Identity' input: 'parse:1' }"
                                "node { name: 'y' op: 'Relu' input: 'x' }";
    parsed_t p;
    parse(&p, graph);
    assert_string_equal(blocker(&p, "y"), "parse");
    arena_destroy(p.arena);
    static const char *const fed[] = {"x:0"};
    parse_fed(&p, graph, fed, 1);
    assert_null(blocker(&p, "y"));
    assert_null(blocker(&p, "x"));
    assert_string_equal(blocker(&p, "parse"), "parse");
    arena_destroy(p.arena);
}

static void test_long_chain(void **state)
{
    (void)state;
    /* 100000 nodes in a line, the unsupported one at the start: a
     * recursive walk would need 100000 frames. */
    arena_t *a = arena_create(0);
    nn_buf_t b;
    buf_init(&b, a);
    buf_append_str(&b, "node { name: 'n0' op: 'Erfinv' }");
    for (int i = 1; i < 100000; i++)
        buf_appendf(&b, "node { name: 'n%d' op: 'Relu' input: 'n%d' }", i, i - 1);
    parsed_t p;
    parse(&p, buf_cstr(&b));
    assert_string_equal(blocker(&p, "n99999"), "n0");
    assert_string_equal(blocker(&p, "n50000"), "n0");
    arena_destroy(p.arena);
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_inputs_carry_the_block),
        cmocka_unit_test(test_function_ops_left_to_the_engine),
        cmocka_unit_test(test_cycles_end),
        cmocka_unit_test(test_fed_tensors_cut_the_walk),
        cmocka_unit_test(test_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
