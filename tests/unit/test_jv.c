/* test_jv.c - the JSON value tree: parse, generate, edit, copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "json/jv.h"

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

/* ------------------------------------------------ parse and serialize */

typedef struct parse_case {
    const char *input;
    const char *output; /* compact serialization, NULL when parsing fails */
    const char *error;  /* the exact message when it fails */
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {"{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}",
     "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\"}", NULL},
    {"  [ 1 , 2 ,\n\t3 ]  ", "[1,2,3]", NULL},
    {"2.0", "2.0", NULL},
    {"-0.0e+5", "-0.0e+5", NULL},
    {"12345678901234567890123456789", "12345678901234567890123456789", NULL},
    {"1E400", "1E400", NULL},
    {"[]", "[]", NULL},
    {"{}", "{}", NULL},
    {"\"\"", "\"\"", NULL},
    {"\"\\u00e9\\n\\\"\\\\\"", "\"\xc3\xa9\\n\\\"\\\\\"", NULL},
    {"\"\xf0\x9f\x98\x80\"", "\"\xf0\x9f\x98\x80\"", NULL},
    {"\"a\\/b\"", "\"a/b\"", NULL},
    {"{\"a\":1,\"a\":2}", NULL,
     "request body gives the key \"a\" more than once; give each key once"},
    {"{\"a\":1,\"b\":2,\"a\":3}", NULL,
     "request body gives the key \"a\" more than once; give each key once"},
    {"{\"o\":{\"x\":[{\"k\":1,\"k\":1}]}}", NULL,
     "request body gives the key \"k\" more than once (in o.x[0]); give each key once"},
    {"[{\"a\":1},{\"a\":2}]", "[{\"a\":1},{\"a\":2}]", NULL}, /* one key per object */
    {"\"\xed\xa0\x80\"", NULL,
     "request body is not valid JSON: a string is not valid UTF-8 (surrogates, overlong forms "
     "and code points past U+10FFFF are not) at byte 5"},
    {"{\"o\":{\"x\":[{\"y\":{}}]}}", "{\"o\":{\"x\":[{\"y\":{}}]}}", NULL},
    {"", NULL, "request body is not valid JSON: premature EOF at byte 0"},
    {"   ", NULL, "request body is not valid JSON: premature EOF at byte 3"},
    {"{", NULL, "request body is not valid JSON: premature EOF at byte 1"},
    {"[1,2", NULL, "request body is not valid JSON: premature EOF at byte 4"},
    {"[1,]", NULL,
     "request body is not valid JSON: unallowed token at this point in JSON text at byte 4"},
    {"{\"a\" 1}", NULL,
     "request body is not valid JSON: object key and value must be separated by a colon (':') at "
     "byte 6"},
    {"{'a':1}", NULL, "request body is not valid JSON: invalid char in json text at byte 2"},
    {"[1] x", NULL, "request body is not valid JSON: trailing garbage at byte 5"},
    {"[1][2]", NULL, "request body is not valid JSON: trailing garbage at byte 4"},
    {"tru", NULL, "request body is not valid JSON: invalid string in json text at byte 3"},
    {"NaN", NULL, "request body is not valid JSON: invalid char in json text at byte 1"},
    {"[1, 2, xx]", NULL, "request body is not valid JSON: invalid char in json text at byte 8"},
    {"/* c */ 1", NULL,
     "request body is not valid JSON: probable comment found in input text, comments are not "
     "enabled at byte 0"},
    {"\"\xff\"", NULL, "request body is not valid JSON: invalid bytes in UTF8 string at byte 2"},
    {"[\"ok\", \"\xc3\"]", NULL,
     "request body is not valid JSON: invalid bytes in UTF8 string at byte 10"},
    {"\"\\x\"", NULL,
     "request body is not valid JSON: inside a string, '\\' occurs before a character which it "
     "may not at byte 2"},
    {"\"a\\u0000b\"", NULL,
     "request body holds a string with the character \\u0000 (at byte 10), which cannot be "
     "stored; remove it"},
    {"{\"a\\u0000\":1}", NULL,
     "request body holds a string with the character \\u0000 (at byte 10), which cannot be "
     "stored; remove it"},
};

static void test_parse_table(void **state)
{
    arena_t *arena = *state;
    for (size_t k = 0; k < sizeof(parse_cases) / sizeof(parse_cases[0]); k++) {
        const parse_case_t *c = &parse_cases[k];
        nn_error_t err;
        nn_error_init(&err);
        jv_t *v = jv_parse(arena, c->input, strlen(c->input), NULL, &err);
        if (c->output) {
            if (!v)
                print_error("input %s: %s\n", c->input, err.message);
            assert_non_null(v);
            size_t len = 0;
            char *text = jv_serialize(arena, v, &len);
            assert_non_null(text);
            assert_string_equal(text, c->output);
            assert_int_equal(len, strlen(c->output));
        } else {
            assert_null(v);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.code, "invalid_json");
            assert_string_equal(err.message, c->error);
        }
    }
}

static void test_parse_names_what_and_respects_len(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    assert_null(jv_parse(arena, "{\"a\":", 5, "part \"data\"", &err));
    assert_string_equal(err.message, "part \"data\" is not valid JSON: premature EOF at byte 5");

    /* Only len bytes are read: the text need not be NUL-terminated. */
    nn_error_init(&err);
    jv_t *v = jv_parse(arena, "[1,2]garbage", 5, NULL, &err);
    assert_non_null(v);
    assert_int_equal(v->type, JV_ARRAY);
    assert_int_equal(v->u.array.n, 2);
}

static void test_parse_values(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    const char *text =
        "{\"n\":2.5e1,\"i\":-7,\"s\":\"h\\u00e9\",\"t\":true,\"z\":null,\"big\":1e400}";
    jv_t *v = jv_parse(arena, text, strlen(text), NULL, &err);
    assert_non_null(v);
    assert_int_equal(v->type, JV_OBJECT);
    assert_int_equal(v->u.object.n, 6);
    assert_string_equal(v->u.object.keys[0], "n");
    jv_t *n = jv_get(v, "n");
    assert_int_equal(n->type, JV_NUMBER);
    assert_true(n->u.number.value == 25.0);
    assert_string_equal(n->u.number.text, "2.5e1");
    assert_true(jv_get(v, "i")->u.number.value == -7.0);
    jv_t *s = jv_get(v, "s");
    assert_int_equal(s->type, JV_STRING);
    assert_int_equal(s->u.string.len, 3);
    assert_string_equal(s->u.string.ptr, "h\xc3\xa9");
    assert_false(s->from_form);
    assert_true(jv_get(v, "t")->u.boolean);
    assert_int_equal(jv_get(v, "z")->type, JV_NULL);
    assert_true(isinf(jv_get(v, "big")->u.number.value));
    assert_null(jv_get(v, "missing"));
    assert_null(jv_get(n, "n")); /* not an object */
    assert_null(jv_get(NULL, "n"));
}

/* Nesting: JV_MAX_DEPTH levels parse, one more is refused, and a hostile
 * depth costs nothing. */
static void test_parse_depth_limit(void **state)
{
    arena_t *arena = *state;
    char text[2 * 100000 + 1];
    for (size_t depth = JV_MAX_DEPTH - 1; depth <= JV_MAX_DEPTH + 1; depth++) {
        memset(text, '[', depth);
        memset(text + depth, ']', depth);
        nn_error_t err;
        nn_error_init(&err);
        jv_t *v = jv_parse(arena, text, 2 * depth, NULL, &err);
        if (depth <= JV_MAX_DEPTH) {
            assert_non_null(v);
        } else {
            assert_null(v);
            assert_string_equal(err.code, "invalid_json");
            assert_non_null(strstr(err.message, "nests JSON deeper than 64 levels (at byte 65)"));
        }
    }
    memset(text, '[', 100000);
    memset(text + 100000, ']', 100000);
    nn_error_t err;
    nn_error_init(&err);
    assert_null(jv_parse(arena, text, 200000, NULL, &err));
    assert_non_null(strstr(err.message, "deeper than 64 levels"));

    /* Mixed objects and arrays count alike. */
    nn_buf_t b;
    buf_init(&b, arena);
    for (int i = 0; i < 33; i++)
        buf_append_str(&b, "{\"a\":[");
    nn_error_init(&err);
    assert_null(jv_parse(arena, b.data, b.len, NULL, &err));
    assert_non_null(strstr(err.message, "deeper than 64 levels"));
}

/* Large objects with a repeated key: found through the hash path, and
 * named with the path of the object. */
static void test_parse_many_keys_one_repeated(void **state)
{
    arena_t *arena = *state;
    nn_buf_t b;
    buf_init(&b, arena);
    buf_append_str(&b, "{\"m\":{");
    for (int i = 0; i < 5000; i++)
        buf_appendf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    nn_error_t err;
    nn_error_init(&err);
    /* Unique keys: accepted, in order. */
    size_t unique_len = b.len;
    buf_append_str(&b, "}}");
    jv_t *v = jv_parse(arena, b.data, b.len, NULL, &err);
    assert_non_null(v);
    const jv_t *m = jv_get(v, "m");
    assert_int_equal(m->u.object.n, 5000);
    assert_string_equal(m->u.object.keys[4999], "k4999");

    b.len = unique_len;
    buf_append_str(&b, ",\"k1234\":0}}");
    nn_error_init(&err);
    assert_null(jv_parse(arena, b.data, b.len, NULL, &err));
    assert_string_equal(err.code, "invalid_json");
    assert_non_null(strstr(err.message, "\"k1234\" more than once (in m)"));
    assert_int_equal(err.nfields, 1);
    assert_string_equal(err.fields[0].path, "m.k1234");
}

typedef struct path_case {
    const char *text;
    const char *base;
    const char *path; /* the field named, NULL for none */
} path_case_t;

/* Where a parse fails is named as a field path, under the base. */
static void test_parse_error_paths(void **state)
{
    (void)state;
    static const path_case_t cases[] = {
        {"{\"description\": \"caf\xe9\"}", NULL, "description"},
        {"{\"m\": {\"a\": [\"ok\", \"\xc3\"]}}", NULL, "m.a[1]"},
        {"{\"m\": {\"a\": [\"ok\", \"\xed\xa0\x80\"]}}", NULL, "m.a[1]"},
        {"{\"m\": {\"k\": \"\xf4\x90\x80\x80\"}}", NULL, "m.k"},
        {"{\"m\": {\"ok\": 1, \"k\xc0\xaf\": 2}}", NULL, "m"},
        {"{\"d\": \"a\\u0000b\"}", NULL, "d"},
        {"{\"l\": [1, {\"x\": 1, \"x\": 2}]}", NULL, "l[1].x"},
        {"{\"owner\": \"\xff\"}", "metadata", "metadata.owner"},
        {"{\"k\": 1, \"k\": 2}", "preprocessing.inputs[0].image",
         "preprocessing.inputs[0].image.k"},
        {"[1, \"\xff\"]", "tags", "tags[1]"},
        {"{\"a\" 1}", NULL, "a"},
        {"\"\xff\"", NULL, NULL}, /* the root itself: no field */
        {"{\"a\":1,\"a\":2}", NULL, "a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        const path_case_t *c = &cases[i];
        assert_null(jv_parse_at(a, c->text, strlen(c->text), "body", c->base, &err));
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_json");
        if (!c->path) {
            if (err.nfields != 0)
                fail_msg("case %zu: unexpected field %s", i, err.fields[0].path);
        } else if (err.nfields != 1 || strcmp(err.fields[0].path, c->path) != 0) {
            fail_msg("case %zu: expected field %s, got %zu fields (%s): %s", i, c->path,
                     err.nfields, err.nfields ? err.fields[0].path : "-", err.message);
        }
        arena_destroy(a);
    }
}

/* --------------------------------------------------------- constructors */

typedef struct number_case {
    double value;
    const char *text;
} number_case_t;

static void test_number_text(void **state)
{
    arena_t *arena = *state;
    static const number_case_t cases[] = {
        {0.1, "0.1"},
        {255.0, "255"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {-2.5, "-2.5"},
        {1e300, "1e+300"},
        {0.0, "0"},
        {123456789012.0, "123456789012"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        jv_t *n = jv_number(arena, cases[k].value);
        assert_non_null(n);
        assert_string_equal(n->u.number.text, cases[k].text);
        char *text = jv_serialize(arena, n, NULL);
        assert_string_equal(text, cases[k].text);
    }
    jv_t *nan = jv_number(arena, NAN);
    assert_non_null(nan);
    assert_null(nan->u.number.text);
    assert_null(jv_serialize(arena, nan, NULL)); /* NaN has no JSON form */
    assert_null(jv_serialize(arena, jv_number(arena, INFINITY), NULL));

    jv_t *i = jv_number_int(arena, LLONG_MIN);
    assert_non_null(i);
    assert_string_equal(i->u.number.text, "-9223372036854775808");
    assert_string_equal(jv_serialize(arena, i, NULL), "-9223372036854775808");
}

static void test_build_and_edit(void **state)
{
    arena_t *arena = *state;
    jv_t *obj = jv_object(arena);
    assert_true(jv_set(arena, obj, "b", jv_bool(arena, true)));
    assert_true(jv_set(arena, obj, "a", jv_cstring(arena, "x")));
    assert_true(jv_set(arena, obj, "n", jv_null(arena)));
    assert_true(jv_set(arena, obj, "b", jv_number_int(arena, 7))); /* replaced in place */
    assert_string_equal(jv_serialize(arena, obj, NULL), "{\"b\":7,\"a\":\"x\",\"n\":null}");

    jv_remove(obj, "a");
    jv_remove(obj, "missing");
    assert_string_equal(jv_serialize(arena, obj, NULL), "{\"b\":7,\"n\":null}");
    jv_remove(obj, "n");
    jv_remove(obj, "b");
    assert_string_equal(jv_serialize(arena, obj, NULL), "{}");

    jv_t *arr = jv_array(arena);
    for (int i = 0; i < 100; i++)
        assert_true(jv_append(arena, arr, jv_number_int(arena, i)));
    assert_int_equal(arr->u.array.n, 100);
    assert_true(arr->u.array.items[99]->u.number.value == 99);

    jv_t *sparse = jv_array(arena);
    assert_true(jv_put(arena, sparse, 2, jv_cstring(arena, "c")));
    assert_true(jv_put(arena, sparse, 0, jv_cstring(arena, "a")));
    assert_string_equal(jv_serialize(arena, sparse, NULL), "[\"a\",null,\"c\"]");
    assert_true(jv_put(arena, sparse, 3, jv_bool(arena, false)));
    assert_string_equal(jv_serialize(arena, sparse, NULL), "[\"a\",null,\"c\",false]");

    /* Misuse is refused rather than corrupting memory. */
    assert_false(jv_set(arena, arr, "k", jv_null(arena)));
    assert_false(jv_append(arena, obj, jv_null(arena)));
    assert_false(jv_put(arena, obj, 0, jv_null(arena)));
    assert_false(jv_set(arena, obj, "k", NULL));

    /* Strings keep their length and may be built from a slice. */
    jv_t *s = jv_string(arena, "hello world", 5);
    assert_non_null(s);
    assert_int_equal(s->u.string.len, 5);
    assert_string_equal(s->u.string.ptr, "hello");
}

static void test_serialize_refuses_invalid_utf8(void **state)
{
    arena_t *arena = *state;
    jv_t *s = jv_cstring(arena, "caf\xe9");
    s->from_form = true;
    assert_null(jv_serialize(arena, s, NULL));
    assert_string_equal(jv_serialize(arena, jv_cstring(arena, "caf\xc3\xa9"), NULL),
                        "\"caf\xc3\xa9\"");
}

static void test_gen_into_caller_generator(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    const char *text = "{\"x\":[1.50,\"y\"]}";
    jv_t *v = jv_parse(arena, text, strlen(text), NULL, &err);
    assert_non_null(v);
    yajl_gen g = yajl_gen_alloc(NULL);
    assert_non_null(g);
    assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
    assert_int_equal(yajl_gen_string(g, (const unsigned char *)"v", 1), yajl_gen_status_ok);
    assert_true(jv_gen(g, v));
    assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
    const unsigned char *buf;
    size_t len;
    assert_int_equal(yajl_gen_get_buf(g, &buf, &len), yajl_gen_status_ok);
    assert_int_equal(len, strlen("{\"v\":{\"x\":[1.50,\"y\"]}}"));
    assert_memory_equal(buf, "{\"v\":{\"x\":[1.50,\"y\"]}}", len);
    yajl_gen_free(g);
}

static void test_copy_is_deep(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    const char *text = "{\"a\":[1,{\"b\":\"c\"}],\"d\":2.0,\"e\":null,\"f\":false}";
    jv_t *v = jv_parse(arena, text, strlen(text), NULL, &err);
    assert_non_null(v);
    jv_get(v, "f")->from_form = true;
    jv_t *c = jv_copy(arena, v);
    assert_non_null(c);
    assert_string_equal(jv_serialize(arena, c, NULL), jv_serialize(arena, v, NULL));
    assert_true(jv_get(c, "f")->from_form);
    /* Editing the copy leaves the original alone. */
    jv_t *inner = jv_get(c, "a")->u.array.items[1];
    assert_true(jv_set(arena, inner, "b", jv_cstring(arena, "changed")));
    jv_remove(c, "d");
    assert_string_equal(jv_serialize(arena, v, NULL), text);
    assert_null(jv_copy(arena, NULL));
}

/* Trees built in code are walked only to a bounded depth. */
static void test_walk_depth_bounded(void **state)
{
    arena_t *arena = *state;
    jv_t *root = jv_array(arena);
    jv_t *cur = root;
    for (int i = 0; i < 1000; i++) {
        jv_t *next = jv_array(arena);
        assert_true(jv_append(arena, cur, next));
        cur = next;
    }
    assert_null(jv_serialize(arena, root, NULL));
    assert_null(jv_copy(arena, root));

    /* A cycle (a misuse) ends at the bound too instead of overflowing. */
    jv_t *loop = jv_array(arena);
    assert_true(jv_append(arena, loop, loop));
    assert_null(jv_serialize(arena, loop, NULL));
    assert_null(jv_copy(arena, loop));
}

static void test_type_names(void **state)
{
    assert_string_equal(jv_type_name(JV_NULL), "null");
    assert_string_equal(jv_type_name(JV_BOOL), "boolean");
    assert_string_equal(jv_type_name(JV_NUMBER), "number");
    assert_string_equal(jv_type_name(JV_STRING), "string");
    assert_string_equal(jv_type_name(JV_ARRAY), "array");
    assert_string_equal(jv_type_name(JV_OBJECT), "object");
}

static void test_lone_surrogates_refused(void **state)
{
    (void)state;
    static const struct { const char *text; bool ok; } cases[] = {
        {"[\"a\\ud800b\"]", false},
        {"[\"\\udc00\"]", false},
        {"[\"\\ud800\\u0041\"]", false},
        {"[\"\\ud83d\\ude00\"]", true},
        {"[\"\\\\ud800\"]", true}, /* an escaped backslash, then text */
        {"[\"\\u00e9\"]", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        jv_t *v = jv_parse(a, cases[i].text, strlen(cases[i].text), "case", &err);
        if ((v != NULL) != cases[i].ok)
            fail_msg("case %zu (%s): %s", i, cases[i].text, err.message);
        if (!v)
            assert_string_equal(err.code, "invalid_json");
        arena_destroy(a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lone_surrogates_refused),
        cmocka_unit_test_setup_teardown(test_parse_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_names_what_and_respects_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_many_keys_one_repeated, setup, teardown),
        cmocka_unit_test(test_parse_error_paths),
        cmocka_unit_test_setup_teardown(test_number_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_and_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serialize_refuses_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gen_into_caller_generator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_is_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_depth_bounded, setup, teardown),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
