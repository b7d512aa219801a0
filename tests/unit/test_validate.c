/* Unit tests: every field rule of API.md for creates and updates, as a
 * table of JSON bodies and the field each must name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/validate.h"
#include "http/formkey.h"
#include "util/buf.h"

/* A valid body; cases below change one thing in it. */
#define PRE_OK                                                                                     \
    "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x:0\", \"image\": {"                     \
    "\"dimension_order\": \"NHWC\", \"resize_type\": \"CROP\", \"target_size\": \"299x299\", "     \
    "\"color_channels\": \"BGR\"}}]}"
#define BASE "\"name\": \"n\", \"framework\": \"tensorflow-1.x\", "

static const char *const files[] = {"saved_model.pb", "mean.npy"};

typedef struct create_case {
    const char *body;
    const char *field; /* NULL: valid */
} create_case_t;

static const create_case_t create_cases[] = {
    {"{" BASE PRE_OK "}", NULL},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": {\"tensors\": [\"y:0\"]}}]}",
     NULL},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": [\"y:0\"]}]}", NULL},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"standard_output\": {\"boxes_tensor\": \"b\", "
                     "\"scores_tensor\": \"s\"}}]}",
     NULL},
    {"{" BASE PRE_OK ", \"metadata\": {\"a\": [1, 2]}, \"description\": \"d\"}", NULL},
    {"{\"framework\": \"tensorflow-1.x\", " PRE_OK "}", "name"},
    {"{\"name\": \"   \", \"framework\": \"tensorflow-1.x\", " PRE_OK "}", "name"},
    {"{\"name\": 5, \"framework\": \"tensorflow-1.x\", " PRE_OK "}", "name"},
    {"{\"name\": \"n\", " PRE_OK "}", "framework"},
    {"{\"name\": \"n\", \"framework\": \"caffe\", " PRE_OK "}", "framework"},
    {"{" BASE PRE_OK ", \"metadata\": [1]}", "metadata"},
    {"{" BASE PRE_OK ", \"metadata\": \"x\"}", "metadata"},
    {"{" BASE PRE_OK ", \"description\": 3}", "description"},
    {"{" BASE PRE_OK ", \"id\": 3}", "id"},
    {"{" BASE PRE_OK ", \"files\": []}", "files"},
    {"{" BASE PRE_OK ", \"nmae\": \"typo\"}", "nmae"},
    {"{\"name\": \"n\", \"framework\": \"tensorflow-1.x\"}", "preprocessing"},
    {"{" BASE "\"preprocessing\": {\"inputs\": []}}", "preprocessing.inputs"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"image\": {\"dimension_order\": \"NHWC\", "
              "\"resize_type\": \"CROP\", \"target_size\": \"2x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].tensor_name"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\"}]}}",
     "preprocessing.inputs[0].image"},
    {"{" BASE
     "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": {\"dimension_order\": "
     "\"HWC\", \"resize_type\": \"CROP\", \"target_size\": \"2x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.dimension_order"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"STRETCH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.resize_type"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"CROP\", \"target_size\": "
              "\"224\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.target_size"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"NETWORK\", \"target_size\": "
              "\"224x224\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.target_size"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"NETWORK\", \"target_size\": "
              "\"512\", \"color_channels\": \"L\"}}]}}",
     NULL},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"16385x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.target_size"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"0x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.inputs[0].image.target_size"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"CMYK\"}}]}}",
     "preprocessing.inputs[0].image.color_channels"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"pixel_scaling\": 0}}]}}",
     "preprocessing.inputs[0].image.pixel_scaling"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"mean_file\": \"other.npy\"}}]}}",
     "preprocessing.inputs[0].image.mean_file"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"mean_file\": \"mean.txt\"}}]}}",
     "preprocessing.inputs[0].image.mean_file"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"mean_file\": \"mean.npy\"}}]}}",
     NULL},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"data_type\": \"INT8\"}}]}}",
     "preprocessing.inputs[0].image.data_type"},
    {"{" BASE "\"preprocessing\": {\"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\", \"colour\": 1}}]}}",
     "preprocessing.inputs[0].image.colour"},
    {"{" BASE "\"preprocessing\": {\"batched_output\": false, \"inputs\": [{\"tensor_name\": "
              "\"x\", \"image\": {\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", "
              "\"target_size\": \"2x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.batched_output"},
    {"{" BASE "\"preprocessing\": {\"extra\": 1, \"inputs\": [{\"tensor_name\": \"x\", \"image\": "
              "{\"dimension_order\": \"NHWC\", \"resize_type\": \"SQUASH\", \"target_size\": "
              "\"2x2\", \"color_channels\": \"L\"}}]}}",
     "preprocessing.extra"},
    {"{" BASE PRE_OK ", \"postprocessings\": [{}]}", "postprocessings[0]"},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": {\"tensors\": []}}]}",
     "postprocessings[0].tensors_output.tensors"},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": {\"tensors\": [\"\"]}}]}",
     "postprocessings[0].tensors_output.tensors[0]"},
    {"{" BASE PRE_OK
     ", \"postprocessings\": [{\"tensors_output\": {\"tensors\": [\"a\"], \"x\": 1}}]}",
     "postprocessings[0].tensors_output.x"},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"standard_output\": {\"boxes_tensor\": \"b\"}}]}",
     "postprocessings[0].standard_output.scores_tensor"},
    {"{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": [\"a\"], \"standard_output\": "
                     "{\"boxes_tensor\": \"b\", \"scores_tensor\": \"s\"}}]}",
     "postprocessings[0]"},
    {"{" BASE PRE_OK ", \"postprocessings\": {}}", "postprocessings"},
};

static void test_create_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(create_cases) / sizeof(create_cases[0]); i++) {
        const create_case_t *c = &create_cases[i];
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        jv_t *body = jv_parse(a, c->body, strlen(c->body), "case", &err);
        if (!body)
            fail_msg("case %zu does not parse: %s", i, err.message);
        validated_create_t out;
        bool ok = validate_create(a, body, files, 2, &out, &err);
        if (c->field == NULL) {
            if (!ok)
                fail_msg("case %zu should pass but: %s", i, err.message);
        } else {
            if (ok)
                fail_msg("case %zu should fail on %s", i, c->field);
            assert_int_equal(err.status, 400);
            bool named = false;
            for (size_t k = 0; k < err.nfields; k++)
                named |= strcmp(err.fields[k].path, c->field) == 0;
            if (!named)
                fail_msg("case %zu: expected field %s, got %s (%s)", i, c->field,
                         err.nfields ? err.fields[0].path : "-", err.message);
        }
        arena_destroy(a);
    }
}

static void test_create_normalizes(void **state)
{
    (void)state;
    const char *body_text =
        "{" BASE PRE_OK ", \"postprocessings\": [{\"tensors_output\": [\"y:0\", \"z\"]}]}";
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *body = jv_parse(a, body_text, strlen(body_text), "case", &err);
    validated_create_t out;
    assert_true(validate_create(a, body, files, 2, &out, &err));
    assert_string_equal(out.description, "");
    assert_string_equal(out.metadata_json, "{}");
    assert_int_equal(out.ninputs, 1);
    assert_string_equal(out.inputs[0].name, "x:0");
    assert_string_equal(out.inputs[0].field, "preprocessing.inputs[0].tensor_name");
    assert_int_equal(out.noutputs, 2);
    /* a bare list is named as sent */
    assert_string_equal(out.outputs[1].field, "postprocessings[0].tensors_output[1]");
    assert_non_null(
        strstr(out.postprocessings_json, "{\"tensors_output\":{\"tensors\":[\"y:0\",\"z\"]}}"));
    /* pixel_scaling is written as a float, batched_output filled in */
    assert_non_null(strstr(out.preprocessing_json, "\"pixel_scaling\":255.0,"));
    assert_non_null(strstr(out.preprocessing_json, "\"batched_output\":true"));
    assert_non_null(strstr(out.preprocessing_json, "\"data_type\":\"FLOAT32\""));
    assert_non_null(strstr(out.preprocessing_json, "\"mean_file\":null"));
    arena_destroy(a);
}

/* Fields exactly as the official client flattens them: all strings. */
static void test_create_from_form_fields(void **state)
{
    (void)state;
    static const char *const form[][2] = {
        {"name", "net"},
        {"framework", "tensorflow-1.x"},
        {"preprocessing.inputs[0]tensor_name", "x:0"},
        {"preprocessing.inputs[0]image.dimension_order", "NHWC"},
        {"preprocessing.inputs[0]image.resize_type", "SQUASH"},
        {"preprocessing.inputs[0]image.target_size", "224x224"},
        {"preprocessing.inputs[0]image.color_channels", "RGB"},
        {"preprocessing.inputs[0]image.pixel_scaling", "2.0"},
        {"preprocessing.batched_output", "True"},
        {"postprocessings[0]tensors_output.tensors[0]", "y:0"},
        {"postprocessings[0]tensors_output.tensors[1]", "y2:0"},
        {"metadata.owner", "me"},
    };
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *root = jv_object(a);
    for (size_t i = 0; i < sizeof(form) / sizeof(form[0]); i++) {
        jv_t *v = jv_cstring(a, form[i][1]);
        v->from_form = true;
        assert_true(formkey_insert(a, root, form[i][0], strlen(form[i][0]), v, &err));
    }
    validated_create_t out;
    if (!validate_create(a, root, files, 2, &out, &err))
        fail_msg("form create refused: %s", err.message);
    assert_non_null(strstr(out.preprocessing_json, "\"pixel_scaling\":2.0,"));
    assert_non_null(strstr(out.preprocessing_json, "\"batched_output\":true"));
    assert_string_equal(out.metadata_json, "{\"owner\":\"me\"}");
    assert_int_equal(out.noutputs, 2);

    /* A form boolean that is not one: named. */
    jv_t *bad = jv_cstring(a, "maybe");
    bad->from_form = true;
    jv_t *pre = jv_get(root, "preprocessing");
    assert_true(jv_set(a, pre, "batched_output", bad));
    nn_error_init(&err);
    assert_false(validate_create(a, root, files, 2, &out, &err));
    assert_string_equal(err.fields[0].path, "preprocessing.batched_output");
    arena_destroy(a);
}

typedef struct update_case {
    const char *body;
    bool is_put;
    const char *field;
} update_case_t;

static const update_case_t update_cases[] = {
    {"{\"name\": \"x\"}", false, NULL},
    {"{\"description\": \"d\"}", false, NULL},
    {"{\"metadata\": {\"k\": 1}}", false, NULL},
    {"{}", false, NULL},
    {"{\"description\": \"d\"}", true, "name"},
    {"{\"framework\": \"tensorflow-1.x\"}", false, "framework"},
    {"{\"preprocessing\": {}}", false, "preprocessing"},
    {"{\"postprocessings\": []}", true, "postprocessings"},
    {"{\"task_id\": 1}", false, "task_id"},
    {"{\"is_public\": true}", false, "is_public"},
    {"{\"name\": \"\"}", false, "name"},
    {"{\"metadata\": 1}", false, "metadata"},
    {"{\"whatever\": 1}", false, "whatever"},
};

static void test_update_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(update_cases) / sizeof(update_cases[0]); i++) {
        const update_case_t *c = &update_cases[i];
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        jv_t *body = jv_parse(a, c->body, strlen(c->body), "case", &err);
        assert_non_null(body);
        validated_update_t out;
        bool ok = validate_update(a, body, c->is_put, &out, &err);
        if (!c->field) {
            if (!ok)
                fail_msg("update case %zu should pass: %s", i, err.message);
        } else {
            if (ok)
                fail_msg("update case %zu should fail on %s", i, c->field);
            assert_string_equal(err.fields[0].path, c->field);
        }
        arena_destroy(a);
    }
}

static void test_put_resets_defaults(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *body = jv_parse(a, "{\"name\": \" spaced \"}", 20, "case", &err);
    validated_update_t out;
    assert_true(validate_update(a, body, true, &out, &err));
    assert_string_equal(out.name, "spaced");
    assert_string_equal(out.description, "");
    assert_string_equal(out.metadata_json, "{}");
    assert_true(validate_update(a, body, false, &out, &err));
    assert_null(out.description);
    assert_null(out.metadata_json);
    arena_destroy(a);
}

static void test_target_size(void **state)
{
    (void)state;
    char why[160];
    assert_true(validate_target_size("299x299", false, why, sizeof(why)));
    assert_true(validate_target_size("1x16384", false, why, sizeof(why)));
    assert_false(validate_target_size("x299", false, why, sizeof(why)));
    assert_false(validate_target_size("299x", false, why, sizeof(why)));
    assert_false(validate_target_size("-1x2", false, why, sizeof(why)));
    assert_false(validate_target_size("2x2x2", false, why, sizeof(why)));
    assert_false(validate_target_size("99999999999x2", false, why, sizeof(why)));
    assert_true(validate_target_size("512", true, why, sizeof(why)));
    assert_false(validate_target_size("512x512", true, why, sizeof(why)));
    assert_false(validate_target_size("0", true, why, sizeof(why)));
}

static void test_utf8_text(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"caf\xc3\xa9", 5, true},
        {"\xe2\x82\xac", 3, true},      /* U+20AC */
        {"\xf0\x9f\x98\x80", 4, true},  /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
        {"a\0b", 3, false},             /* NUL */
        {"caf\xe9", 4, false},          /* Latin-1 */
        {"\x80", 1, false},             /* lone continuation */
        {"\xc3", 1, false},             /* truncated */
        {"\xe2\x82", 2, false},         /* truncated */
        {"\xc0\xaf", 2, false},         /* overlong '/' */
        {"\xe0\x80\xaf", 3, false},     /* overlong */
        {"\xf0\x80\x80\xaf", 4, false}, /* overlong */
        {"\xed\xa0\x80", 3, false},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
        {"\xff", 1, false},
        {"\xc3\x28", 2, false}, /* bad continuation */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (validate_utf8_text(cases[i].bytes, cases[i].len) != cases[i].ok)
            fail_msg("utf8 case %zu: expected %s", i, cases[i].ok ? "valid" : "invalid");
    assert_int_equal(validate_utf8_length("caf\xc3\xa9", 5), 4);
    assert_int_equal(validate_utf8_length("\xf0\x9f\x98\x80x", 5), 2);
}

static void test_clip(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    assert_string_equal(validate_clip(a, "short", 10), "short");
    assert_string_equal(validate_clip(a, "0123456789", 10), "0123456789");
    assert_string_equal(validate_clip(a, "0123456789ab", 10), "0123456789\u2026");
    /* "a" then e-acutes: a cut at 4 bytes would split the second one */
    assert_string_equal(validate_clip(a, "a\xc3\xa9\xc3\xa9\xc3\xa9", 4), "a\xc3\xa9\u2026");
    arena_destroy(a);
}

/* A create body of form strings (as multipart fields arrive), with one
 * field replaced by raw bytes. */
static bool form_create(arena_t *a, const char *key, const char *value, size_t len, nn_error_t *err)
{
    static const char *const form[][2] = {
        {"name", "net"},
        {"framework", "tensorflow-1.x"},
        {"preprocessing.inputs[0]tensor_name", "x:0"},
        {"preprocessing.inputs[0]image.dimension_order", "NHWC"},
        {"preprocessing.inputs[0]image.resize_type", "SQUASH"},
        {"preprocessing.inputs[0]image.target_size", "224x224"},
        {"preprocessing.inputs[0]image.color_channels", "RGB"},
    };
    jv_t *root = jv_object(a);
    bool replaced = false;
    for (size_t i = 0; i < sizeof(form) / sizeof(form[0]); i++) {
        bool here = strcmp(form[i][0], key) == 0;
        jv_t *v = here ? jv_string(a, value, len) : jv_cstring(a, form[i][1]);
        assert_non_null(v);
        v->from_form = true;
        replaced |= here;
        assert_true(formkey_insert(a, root, form[i][0], strlen(form[i][0]), v, err));
    }
    if (!replaced) {
        jv_t *v = jv_string(a, value, len);
        assert_non_null(v);
        v->from_form = true;
        assert_true(formkey_insert(a, root, key, strlen(key), v, err));
    }
    validated_create_t out;
    return validate_create(a, root, files, 2, &out, err);
}

static void test_form_text_rules(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *value;
        size_t len;
        const char *field; /* NULL: valid */
    } cases[] = {
        {"name", "caf\xe9", 4, "name"},
        {"name", "a\0b", 3, "name"},
        {"description", "\xff\xfe", 2, "description"},
        {"metadata.owner", "\xc3\x28", 2, "metadata.owner"},
        {"metadata.tags[1]", "ok\0", 3, "metadata.tags[1]"},
        {"preprocessing.inputs[0]tensor_name", "x\xff", 2, "preprocessing.inputs[0].tensor_name"},
        {"metadata.owner", "caf\xc3\xa9", 5, NULL},
        /* numbers from form fields: JSON's spelling only */
        {"preprocessing.inputs[0]image.pixel_scaling", "2.0", 3, NULL},
        {"preprocessing.inputs[0]image.pixel_scaling", "1e-3", 4, NULL},
        {"preprocessing.inputs[0]image.pixel_scaling", "255", 3, NULL},
        {"preprocessing.inputs[0]image.pixel_scaling", "0x10", 4,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", " 2", 2,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", "2.", 2,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", ".5", 2,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", "inf", 3,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", "1e999", 5,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", "-1", 2,
         "preprocessing.inputs[0].image.pixel_scaling"},
        {"preprocessing.inputs[0]image.pixel_scaling", "1e-999", 6,
         "preprocessing.inputs[0].image.pixel_scaling"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t *a = arena_create(0);
        nn_error_t err;
        nn_error_init(&err);
        bool ok = form_create(a, cases[i].key, cases[i].value, cases[i].len, &err);
        if (!cases[i].field) {
            if (!ok)
                fail_msg("text case %zu should pass: %s", i, err.message);
        } else {
            if (ok)
                fail_msg("text case %zu should fail on %s", i, cases[i].field);
            bool named = false;
            for (size_t k = 0; k < err.nfields; k++)
                named |= strcmp(err.fields[k].path, cases[i].field) == 0;
            if (!named)
                fail_msg("text case %zu: expected field %s, got %s (%s)", i, cases[i].field,
                         err.nfields ? err.fields[0].path : "-", err.message);
        }
        arena_destroy(a);
    }
}

/* name: at most 255 characters, not bytes; description likewise. */
static void test_lengths_in_characters(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_buf_t name;
    buf_init(&name, a);
    for (int i = 0; i < 255; i++)
        buf_append_str(&name, "\xc3\xa9");
    nn_error_t err;
    nn_error_init(&err);
    if (!form_create(a, "name", name.data, name.len, &err))
        fail_msg("255 characters refused: %s", err.message);
    buf_append_str(&name, "\xc3\xa9");
    nn_error_init(&err);
    assert_false(form_create(a, "name", name.data, name.len, &err));
    assert_string_equal(err.fields[0].path, "name");

    nn_buf_t desc;
    buf_init(&desc, a);
    for (int i = 0; i < VALIDATE_DESCRIPTION_MAX; i++)
        buf_append_str(&desc, "\xe2\x82\xac");
    nn_error_init(&err);
    if (!form_create(a, "description", desc.data, desc.len, &err))
        fail_msg("65536 characters refused: %s", err.message);
    buf_append_str(&desc, "x");
    nn_error_init(&err);
    assert_false(form_create(a, "description", desc.data, desc.len, &err));
    assert_string_equal(err.fields[0].path, "description");
    arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_cases),
        cmocka_unit_test(test_create_normalizes),
        cmocka_unit_test(test_create_from_form_fields),
        cmocka_unit_test(test_update_cases),
        cmocka_unit_test(test_put_resets_defaults),
        cmocka_unit_test(test_target_size),
        cmocka_unit_test(test_utf8_text),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_form_text_rules),
        cmocka_unit_test(test_lengths_in_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
