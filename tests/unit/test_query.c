/* test_query.c - query strings, strict integers, percent-encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "http/query.h"

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

typedef struct parse_case {
    const char *raw;
    const char *expect; /* the parameters as "name=value|…", NULL when refused */
    const char *error;  /* the exact message when refused */
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {"", "", NULL},
    {"a=1", "a=1|", NULL},
    {"a=1&b=2", "a=1|b=2|", NULL},
    {"task_ids=1&task_ids=2", "task_ids=1|task_ids=2|", NULL},
    {"task_ids=1,2", "task_ids=1,2|", NULL},
    {"limit=100&offset=100&ordering=-name", "limit=100|offset=100|ordering=-name|", NULL},
    {"name=My+net%21&x", "name=My net!|x=|", NULL},
    {"a=1&&b=2&", "a=1|b=2|", NULL},
    {"&&&", "", NULL},
    {"=v", "=v|", NULL},
    {"a=", "a=|", NULL},
    {"a=b=c", "a=b=c|", NULL},
    {"%41%62=%e2%82%AC", "Ab=\xe2\x82\xac|", NULL},
    {"q=%2B+%20%25", "q=+  %|", NULL},
    {"n=%C3%A9t%C3%A9", "n=\xc3\xa9t\xc3\xa9|", NULL},
    {"a;b=1", "a;b=1|", NULL},
    {"a=%", NULL,
     "query parameter \"a\" has an invalid percent escape; a \"%\" must be followed by two hex "
     "digits (write %25 for a literal \"%\")"},
    {"ok=1&a=%4", NULL,
     "query parameter \"a\" has an invalid percent escape; a \"%\" must be "
     "followed by two hex digits (write %25 for a literal \"%\")"},
    {"a=%zz", NULL,
     "query parameter \"a\" has an invalid percent escape; a \"%\" must be "
     "followed by two hex digits (write %25 for a literal \"%\")"},
    {"b%=1", NULL,
     "query parameter \"b%\" has an invalid percent escape; a \"%\" must be "
     "followed by two hex digits (write %25 for a literal \"%\")"},
    {"w\"e\\ird=%g0", NULL,
     "query parameter \"w?e?ird\" has an invalid percent escape; a \"%\" "
     "must be followed by two hex digits (write %25 for a literal \"%\")"},
    {"a=%00", NULL, "query parameter \"a\" contains %00; NUL bytes are not accepted"},
    {"%00=1", NULL, "query parameter \"%00\" contains %00; NUL bytes are not accepted"},
    {"a=%ff", NULL,
     "query parameter \"a\" is not valid UTF-8 once decoded; percent-encode UTF-8 bytes"},
    {"a=%C0%AF", NULL,
     "query parameter \"a\" is not valid UTF-8 once decoded; percent-encode UTF-8 bytes"},
    {"a=%ED%A0%80", NULL,
     "query parameter \"a\" is not valid UTF-8 once decoded; percent-encode UTF-8 bytes"},
    {"a=%F4%90%80%80", NULL,
     "query parameter \"a\" is not valid UTF-8 once decoded; percent-encode UTF-8 bytes"},
    {"a=%E2%82", NULL,
     "query parameter \"a\" is not valid UTF-8 once decoded; percent-encode UTF-8 bytes"},
};

static void render(nn_buf_t *b, const query_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        buf_appendf(b, "%s=%s|", q->params[i].name, q->params[i].value);
}

static void test_parse_table(void **state)
{
    arena_t *arena = *state;
    for (size_t k = 0; k < sizeof(parse_cases) / sizeof(parse_cases[0]); k++) {
        const parse_case_t *c = &parse_cases[k];
        nn_error_t err;
        nn_error_init(&err);
        query_t q;
        bool ok = query_parse(arena, c->raw, &q, &err);
        if (c->expect) {
            if (!ok)
                print_error("query \"%s\": %s\n", c->raw, err.message);
            assert_true(ok);
            nn_buf_t b;
            buf_init(&b, arena);
            render(&b, &q);
            assert_string_equal(buf_cstr(&b), c->expect);
        } else {
            if (ok)
                print_error("query \"%s\" accepted\n", c->raw);
            assert_false(ok);
            assert_int_equal(err.status, 400);
            assert_string_equal(err.code, "invalid_query");
            assert_string_equal(err.message, c->error);
            assert_int_equal(q.n, 0);
        }
    }
}

static void test_parse_null_and_source_untouched(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    query_t q;
    assert_true(query_parse(arena, NULL, &q, &err));
    assert_int_equal(q.n, 0);
    assert_null(query_get(&q, "a"));

    const char *raw = "a=%41+b&c";
    assert_true(query_parse(arena, raw, &q, &err));
    assert_string_equal(raw, "a=%41+b&c"); /* decoded in a copy */
    assert_string_equal(query_get(&q, "a"), "A b");
}

static void test_get_next_count(void **state)
{
    arena_t *arena = *state;
    nn_error_t err;
    nn_error_init(&err);
    query_t q;
    assert_true(query_parse(arena, "task_ids=1&limit=5&task_ids=2&task_ids=3,4&limit=9", &q, &err));
    assert_string_equal(query_get(&q, "limit"), "5"); /* the first one */
    assert_null(query_get(&q, "offset"));
    assert_null(query_get(&q, "task_id"));
    assert_int_equal(query_count(&q, "task_ids"), 3);
    assert_int_equal(query_count(&q, "limit"), 2);
    assert_int_equal(query_count(&q, "none"), 0);

    static const char *const expect[] = {"1", "2", "3,4"};
    size_t pos = 0, seen = 0;
    for (const char *v; (v = query_next(&q, "task_ids", &pos)) != NULL;) {
        assert_true(seen < 3);
        assert_string_equal(v, expect[seen]);
        seen++;
    }
    assert_int_equal(seen, 3);
    assert_null(query_next(&q, "task_ids", &pos)); /* stays at the end */
}

static void test_parameter_limit(void **state)
{
    arena_t *arena = *state;
    nn_buf_t b;
    buf_init(&b, arena);
    for (int i = 0; i < QUERY_MAX_PARAMS; i++)
        buf_appendf(&b, "%sp%d=%d", i ? "&" : "", i, i);
    nn_error_t err;
    nn_error_init(&err);
    query_t q;
    assert_true(query_parse(arena, buf_cstr(&b), &q, &err));
    assert_int_equal(q.n, QUERY_MAX_PARAMS);
    assert_string_equal(q.params[999].name, "p999");
    assert_string_equal(q.params[999].value, "999");

    /* Empty parameters do not count; one more real one does. */
    buf_append_str(&b, "&&&");
    assert_true(query_parse(arena, buf_cstr(&b), &q, &err));
    buf_append_str(&b, "x=1");
    assert_false(query_parse(arena, buf_cstr(&b), &q, &err));
    assert_string_equal(err.code, "invalid_query");
    assert_string_equal(err.message,
                        "the query string has 1001 parameters; at most 1000 are accepted");
}

/* ----------------------------------------------------------------- int */

typedef struct int_case {
    const char *s;
    long long min, max;
    bool ok;
    long long value;
} int_case_t;

static const int_case_t int_cases[] = {
    {"0", 0, 10, true, 0},
    {"10", 0, 10, true, 10},
    {"007", 0, 10, true, 7},
    {"42", 1, LLONG_MAX, true, 42},
    {"-1", -5, 5, true, -1},
    {"-0", 0, 0, true, 0},
    {"9223372036854775807", 1, LLONG_MAX, true, LLONG_MAX},
    {"-9223372036854775808", LLONG_MIN, 0, true, LLONG_MIN},
    {"11", 0, 10, false, 0},
    {"0", 1, 1000, false, 0},
    {"-1", 0, 10, false, 0},
    {"1001", 1, 1000, false, 0},
    {"9223372036854775808", 1, LLONG_MAX, false, 0},
    {"-9223372036854775809", LLONG_MIN, 0, false, 0},
    {"99999999999999999999999999", 1, LLONG_MAX, false, 0},
    {"", 0, 10, false, 0},
    {"-", -10, 10, false, 0},
    {"--1", -10, 10, false, 0},
    {"+1", 0, 10, false, 0},
    {" 1", 0, 10, false, 0},
    {"1 ", 0, 10, false, 0},
    {"1a", 0, 10, false, 0},
    {"0x1", 0, 10, false, 0},
    {"1.0", 0, 10, false, 0},
    {"1e2", 0, 1000, false, 0},
    {"\xd9\xa1", 0, 10, false, 0}, /* ARABIC-INDIC DIGIT ONE */
};

static void test_parse_int_table(void **state)
{
    for (size_t k = 0; k < sizeof(int_cases) / sizeof(int_cases[0]); k++) {
        const int_case_t *c = &int_cases[k];
        long long out = 12345;
        bool ok = query_parse_int(c->s, c->min, c->max, &out);
        if (ok != c->ok)
            print_error("\"%s\" in [%lld, %lld]: expected %s\n", c->s, c->min, c->max,
                        c->ok ? "success" : "failure");
        assert_int_equal(ok, c->ok);
        assert_true(out == (c->ok ? c->value : 12345)); /* untouched on failure */
    }
    long long out;
    assert_false(query_parse_int(NULL, 0, 10, &out));
}

/* -------------------------------------------------------------- encode */

typedef struct encode_case {
    const char *in;
    const char *query; /* query_percent_encode */
    const char *path;  /* query_percent_encode_path */
} encode_case_t;

static const encode_case_t encode_cases[] = {
    {"", "", ""},
    {"abcXYZ019-._~", "abcXYZ019-._~", "abcXYZ019-._~"},
    {"a b&c=d+e", "a%20b%26c%3Dd%2Be", "a%20b%26c%3Dd%2Be"},
    {"/v0.7/networks/", "%2Fv0.7%2Fnetworks%2F", "/v0.7/networks/"},
    {"caf\xc3\xa9?#%", "caf%C3%A9%3F%23%25", "caf%C3%A9%3F%23%25"},
    {"\x01\x7f\xff", "%01%7F%FF", "%01%7F%FF"},
};

static void test_percent_encode(void **state)
{
    arena_t *arena = *state;
    for (size_t k = 0; k < sizeof(encode_cases) / sizeof(encode_cases[0]); k++) {
        const encode_case_t *c = &encode_cases[k];
        nn_buf_t b;
        buf_init(&b, arena);
        assert_true(query_percent_encode(&b, c->in));
        assert_string_equal(buf_cstr(&b), c->query);
        buf_init(&b, arena);
        assert_true(query_percent_encode_path(&b, c->in));
        assert_string_equal(buf_cstr(&b), c->path);
    }
}

/* What query_percent_encode writes, query_parse reads back unchanged. */
static void test_encode_parse_round_trip(void **state)
{
    arena_t *arena = *state;
    static const char *const values[] = {"plain", "a b+c", "x=y&z", "100%", "\xc3\xa9t\xc3\xa9",
                                         "",      "~-._"};
    nn_buf_t b;
    buf_init(&b, arena);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (i)
            buf_append_char(&b, '&');
        assert_true(query_percent_encode(&b, values[i]));
        buf_append_char(&b, '=');
        assert_true(query_percent_encode(&b, values[i]));
    }
    nn_error_t err;
    nn_error_init(&err);
    query_t q;
    assert_true(query_parse(arena, buf_cstr(&b), &q, &err));
    assert_int_equal(q.n, sizeof(values) / sizeof(values[0]));
    for (size_t i = 0; i < q.n; i++) {
        assert_string_equal(q.params[i].name, values[i]);
        assert_string_equal(q.params[i].value, values[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_null_and_source_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_next_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameter_limit, setup, teardown),
        cmocka_unit_test(test_parse_int_table),
        cmocka_unit_test_setup_teardown(test_percent_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_parse_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
