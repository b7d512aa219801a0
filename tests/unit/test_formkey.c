/* test_formkey.c - Django-REST flattened form keys: parsing, path strings,
 * insertion into a tree, conflicts and JSON parts merged at a path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/formkey.h"

static int setup(void **state)
{
    *state = arena_create(0);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    arena_destroy(*state);
    return 0;
}

/* --------------------------------------------------------------- parse */

typedef struct key_case {
    const char *key;
    const char *path;  /* formkey_path_string of the segments; NULL: malformed */
    const char *error; /* substring of the message when malformed */
} key_case_t;

static const key_case_t key_cases[] = {
    /* Every example of API.md. */
    {"name", "name", NULL},
    {"framework", "framework", NULL},
    {"preprocessing.inputs[0]tensor_name", "preprocessing.inputs[0].tensor_name", NULL},
    {"preprocessing.inputs[0]image.target_size", "preprocessing.inputs[0].image.target_size", NULL},
    {"preprocessing.batched_output", "preprocessing.batched_output", NULL},
    {"metadata.owner", "metadata.owner", NULL},
    {"postprocessings[0]tensors_output.tensors[1]", "postprocessings[0].tensors_output.tensors[1]",
     NULL},
    {"preprocessing.inputs[0].image.resize_type", "preprocessing.inputs[0].image.resize_type",
     NULL},
    {"data", "data", NULL},
    /* More shapes. */
    {"a[0][1]", "a[0][1]", NULL},
    {"a[0][1]b[2]", "a[0][1].b[2]", NULL},
    {"a[255]", "a[255]", NULL},
    {"a[007]", "a[7]", NULL},
    {"with space", "with space", NULL},
    {"m\xc3\xa9ta.cl\xc3\xa9", "m\xc3\xa9ta.cl\xc3\xa9", NULL},
    {"x-y_z:w", "x-y_z:w", NULL},
    {"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", NULL},
    {"a[0][1][2][3][4][5][6][7][8][9][10][11][12][13][14]",
     "a[0][1][2][3][4][5][6][7][8][9][10][11][12][13][14]", NULL},
    /* Malformed. */
    {"", NULL, "form key \"\" is malformed: it is empty"},
    {"a..b", NULL, "form key \"a..b\" is malformed: a name is empty"},
    {"a.", NULL, "a name is empty"},
    {"a.[0]", NULL, "a name is empty"},
    {".a", NULL, "it must start with a name"},
    {"[0]", NULL, "form key \"[0]\" is malformed: it must start with a name"},
    {"[0]a", NULL, "it must start with a name"},
    {"a[", NULL, "form key \"a[\" is malformed: \"[\" must be followed by an array index"},
    {"a[x]", NULL, "\"[\" must be followed by an array index"},
    {"a[]", NULL, "\"[\" must be followed by an array index"},
    {"a[-1]", NULL, "\"[\" must be followed by an array index"},
    {"a[ 0]", NULL, "\"[\" must be followed by an array index"},
    {"a[0", NULL, "an array index must end with \"]\""},
    {"a[0x]", NULL, "an array index must end with \"]\""},
    {"a[256]", NULL, "an array index is larger than 255"},
    {"a[99999999999999999999999999]", NULL, "an array index is larger than 255"},
    {"a]", NULL, "\"]\" without a matching \"[\""},
    {"a[0]]", NULL, "\"]\" without a matching \"[\""},
    {"a]b", NULL, "\"]\" without a matching \"[\""},
    {"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", NULL, "it has more than 16 segments"},
    {"a[0][1][2][3][4][5][6][7][8][9][10][11][12][13][14][15]", NULL,
     "it has more than 16 segments"},
    {"a\nb", NULL, "form key \"a\\x0ab\" is malformed: it contains a control character"},
    {"a.\tb", NULL, "it contains a control character"},
    {"a\"b..", NULL, "form key \"a\\x22b..\" is malformed"},
};

static void test_parse_table(void **state)
{
    arena_t *arena = *state;
    for (size_t k = 0; k < sizeof(key_cases) / sizeof(key_cases[0]); k++) {
        const key_case_t *c = &key_cases[k];
        nn_error_t err;
        nn_error_init(&err);
        formkey_segment_t *segs = NULL;
        size_t n = 0;
        bool ok = formkey_parse(arena, c->key, strlen(c->key), &segs, &n, &err);
        if (c->path) {
            if (!ok)
                print_error("key \"%s\": %s\n", c->key, err.message);
            assert_true(ok);
            char *path = formkey_path_string(arena, segs, n);
            assert_non_null(path);
            assert_string_equal(path, c->path);
            assert_true(n >= 1 && n <= FORMKEY_MAX_SEGMENTS);
            assert_false(segs[0].is_index);
        } else {
            if (ok)
                print_error("key \"%s\" accepted\n", c->key);
            assert_false(ok);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.code, "invalid_form_key");
            if (!strstr(err.message, c->error))
                print_error("key \"%s\": \"%s\" lacks \"%s\"\n", c->key, err.message, c->error);
            assert_non_null(strstr(err.message, c->error));
        }
    }
}

static void test_parse_segments(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    formkey_segment_t *segs;
    size_t n;
    const char *key = "postprocessings[0]tensors_output.tensors[12]";
    assert_true(formkey_parse(arena, key, strlen(key), &segs, &n, &err));
    assert_int_equal(n, 5);
    assert_false(segs[0].is_index);
    assert_string_equal(segs[0].key, "postprocessings");
    assert_true(segs[1].is_index);
    assert_int_equal(segs[1].index, 0);
    assert_string_equal(segs[2].key, "tensors_output");
    assert_string_equal(segs[3].key, "tensors");
    assert_true(segs[4].is_index);
    assert_int_equal(segs[4].index, 12);

    /* key_len is honoured: the key need not be NUL-terminated. */
    assert_true(formkey_parse(arena, "metadata.owner[3]", 8, &segs, &n, &err));
    assert_int_equal(n, 1);
    assert_string_equal(segs[0].key, "metadata");

    /* A very long hostile key is quoted shortened in the message. */
    char longkey[2000];
    memset(longkey, 'k', sizeof(longkey));
    longkey[1000] = '[';
    assert_false(formkey_parse(arena, longkey, sizeof(longkey), &segs, &n, &err));
    assert_non_null(strstr(err.message, "...\" is malformed"));
    assert_true(strlen(err.message) < 400);
}

/* -------------------------------------------------------------- insert */

typedef struct field {
    const char *key;
    const char *value; /* a form string, or JSON text when json is true */
    bool json;
} field_t;

/* Inserts fields in order into a fresh object; returns its serialization,
 * or NULL with err filled at the first failure. */
static char *insert_all(arena_t *arena, const field_t *fields, size_t n, nn_error_t *err)
{
    jv_t *root = jv_object(arena);
    assert_non_null(root);
    for (size_t i = 0; i < n; i++) {
        jv_t *value;
        if (fields[i].json) {
            value = jv_parse(arena, fields[i].value, strlen(fields[i].value), "part", err);
            assert_non_null(value);
        } else {
            value = jv_cstring(arena, fields[i].value);
            assert_non_null(value);
            value->from_form = true;
        }
        if (!formkey_insert(arena, root, fields[i].key, strlen(fields[i].key), value, err))
            return NULL;
    }
    char *text = jv_serialize(arena, root, NULL);
    assert_non_null(text);
    return text;
}

typedef struct insert_case {
    const char *label;
    field_t fields[10];
    const char *result; /* serialization; NULL when it fails */
    const char *error;  /* substring of the message */
} insert_case_t;

static const insert_case_t insert_cases[] = {
    {"the official client's create",
     {{"name", "My net", false},
      {"framework", "tensorflow-1.x", false},
      {"preprocessing.inputs[0]tensor_name", "input:0", false},
      {"preprocessing.inputs[0]image.target_size", "299x299", false},
      {"preprocessing.inputs[0]image.resize_type", "CROP", false},
      {"preprocessing.batched_output", "True", false},
      {"metadata.owner", "me", false},
      {"postprocessings[0]tensors_output.tensors[0]", "logits:0", false},
      {"postprocessings[0]tensors_output.tensors[1]", "probs:0", false}},
     "{\"name\":\"My net\",\"framework\":\"tensorflow-1.x\",\"preprocessing\":{\"inputs\":[{"
     "\"tensor_name\":\"input:0\",\"image\":{\"target_size\":\"299x299\",\"resize_type\":\"CROP\"}"
     "}],\"batched_output\":\"True\"},\"metadata\":{\"owner\":\"me\"},\"postprocessings\":[{"
     "\"tensors_output\":{\"tensors\":[\"logits:0\",\"probs:0\"]}}]}",
     NULL},
    {"indexes out of order fill the padding",
     {{"a[2]", "x", false}, {"a[0]", "y", false}, {"a[1]", "z", false}},
     "{\"a\":[\"y\",\"z\",\"x\"]}",
     NULL},
    {"dotted and undotted forms reach the same object",
     {{"p.i[0]image.w", "1", false}, {"p.i[0].image.h", "2", false}},
     "{\"p\":{\"i\":[{\"image\":{\"w\":\"1\",\"h\":\"2\"}}]}}",
     NULL},
    {"nested arrays",
     {{"m[1][0]", "b", false}, {"m[0][1]", "a", false}},
     "{\"m\":[[null,\"a\"],[\"b\"]]}",
     NULL},
    {"a JSON part merged with fields below it (fields first)",
     {{"preprocessing.batched_output", "True", false},
      {"preprocessing", "{\"inputs\":[{\"tensor_name\":\"x:0\"}]}", true}},
     "{\"preprocessing\":{\"batched_output\":\"True\",\"inputs\":[{\"tensor_name\":\"x:0\"}]}}",
     NULL},
    {"a JSON part merged with fields below it (JSON first)",
     {{"preprocessing", "{\"inputs\":[{\"tensor_name\":\"x:0\"}]}", true},
      {"preprocessing.inputs[0]image.target_size", "299x299", false}},
     "{\"preprocessing\":{\"inputs\":[{\"tensor_name\":\"x:0\",\"image\":{\"target_size\":"
     "\"299x299\"}}]}}",
     NULL},
    {"a JSON array merged into padding",
     {{"tensors[1]", "b", false}, {"tensors", "[\"a\"]", true}},
     "{\"tensors\":[\"a\",\"b\"]}",
     NULL},
    {"a JSON array with nulls keeps what is there",
     {{"tensors[0]", "a", false}, {"tensors", "[null,\"b\"]", true}},
     "{\"tensors\":[\"a\",\"b\"]}",
     NULL},
    {"a JSON value at a leaf",
     {{"metadata", "{\"k\":[1,2.0]}", true}},
     "{\"metadata\":{\"k\":[1,2.0]}}",
     NULL},

    {"a value given twice",
     {{"name", "a", false}, {"name", "b", false}},
     NULL,
     "form key \"name\" conflicts with an earlier field: the same value is given twice"},
    {"an index given twice",
     {{"t[0]", "a", false}, {"t[0]", "b", false}},
     NULL,
     "form key \"t[0]\" conflicts with an earlier field"},
    {"a value where an object is",
     {{"metadata", "x", false}, {"metadata.owner", "me", false}},
     NULL,
     "form key \"metadata.owner\" conflicts with an earlier field: \"metadata\" is a string, not "
     "an object"},
    {"an object where a value goes",
     {{"metadata.owner", "me", false}, {"metadata", "x", false}},
     NULL,
     "form key \"metadata\" conflicts with fields given below it: it cannot also hold a value"},
    {"an array where an object goes",
     {{"a[0]", "x", false}, {"a.b", "y", false}},
     NULL,
     "form key \"a.b\" conflicts with an earlier field: \"a\" is an array, not an object"},
    {"an object where an array goes",
     {{"a.b", "x", false}, {"a[0]", "y", false}},
     NULL,
     "form key \"a[0]\" conflicts with an earlier field: \"a\" is an object, not a list"},
    {"a value inside an array where an object goes",
     {{"a[0]", "x", false}, {"a[0]b", "y", false}},
     NULL,
     "form key \"a[0]b\" conflicts with an earlier field: \"a[0]\" is a string, not an object"},
    {"JSON leaves given twice",
     {{"m", "{\"a\":1}", true}, {"m", "{\"a\":2}", true}},
     NULL,
     "form key \"m\" conflicts with an earlier field: the same value is given twice"},
    {"JSON array where an object is",
     {{"m.a", "1", false}, {"m", "[1]", true}},
     NULL,
     "form key \"m\" conflicts with fields given below it"},
    {"malformed key", {{"a..b", "x", false}}, NULL, "form key \"a..b\" is malformed"},
};

static void test_insert_table(void **state)
{
    arena_t *arena = *state;
    for (size_t k = 0; k < sizeof(insert_cases) / sizeof(insert_cases[0]); k++) {
        const insert_case_t *c = &insert_cases[k];
        size_t n = 0;
        while (n < sizeof(c->fields) / sizeof(c->fields[0]) && c->fields[n].key)
            n++;
        nn_error_t err;
        nn_error_init(&err);
        char *text = insert_all(arena, c->fields, n, &err);
        if (c->result) {
            if (!text)
                print_error("case \"%s\": %s\n", c->label, err.message);
            assert_non_null(text);
            if (strcmp(text, c->result) != 0)
                print_error("case \"%s\":\n%s\nexpected\n%s\n", c->label, text, c->result);
            assert_string_equal(text, c->result);
        } else {
            if (text)
                print_error("case \"%s\" succeeded: %s\n", c->label, text);
            assert_null(text);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.code, "invalid_form_key");
            if (!strstr(err.message, c->error))
                print_error("case \"%s\": \"%s\" lacks \"%s\"\n", c->label, err.message, c->error);
            assert_non_null(strstr(err.message, c->error));
        }
    }
}

static void test_insert_keeps_form_marker(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    jv_t *root = jv_object(arena);
    jv_t *value = jv_cstring(arena, "3");
    value->from_form = true;
    assert_true(formkey_insert(arena, root, "a.b[1]", 6, value, &err));
    jv_t *arr = jv_get(jv_get(root, "a"), "b");
    assert_non_null(arr);
    assert_int_equal(arr->type, JV_ARRAY);
    assert_int_equal(arr->u.array.n, 2);
    assert_int_equal(arr->u.array.items[0]->type, JV_NULL);
    assert_ptr_equal(arr->u.array.items[1], value);
    assert_true(arr->u.array.items[1]->from_form);
}

static void test_insert_bad_root(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    jv_t *arr = jv_array(arena);
    assert_false(formkey_insert(arena, arr, "a", 1, jv_null(arena), &err));
    assert_int_equal(err.status, 500);
}

/* The largest key allowed allocates a bounded tree. */
static void test_insert_bounded(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    jv_t *root = jv_object(arena);
    const char *key =
        "a[255][255][255][255][255][255][255][255][255][255][255][255][255][255][255]";
    size_t before = arena_bytes_reserved(arena);
    assert_true(formkey_insert(arena, root, key, strlen(key), jv_cstring(arena, "x"), &err));
    assert_true(arena_bytes_reserved(arena) - before < 2 * 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_keeps_form_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_bad_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
