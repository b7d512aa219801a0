/* Unit tests: arena allocator, cleanups, buffers, error records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/error.h"

static void test_alloc_alignment_and_big_blocks(void **state)
{
    (void)state;
    arena_t *a = arena_create(1024);
    assert_non_null(a);
    for (size_t size = 1; size < 5000; size += 37) {
        unsigned char *p = arena_alloc(a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, size);
    }
    assert_null(arena_alloc(a, SIZE_MAX));
    assert_null(arena_calloc(a, SIZE_MAX / 2, 4));
    arena_destroy(a);
}

static int cleanup_order[4];
static int cleanup_count;

static void record_cleanup(void *data)
{
    cleanup_order[cleanup_count++] = *(int *)data;
}

static void test_cleanups_run_in_reverse_and_can_be_cancelled(void **state)
{
    (void)state;
    static int one = 1, two = 2, three = 3;
    cleanup_count = 0;
    arena_t *a = arena_create(0);
    assert_true(arena_cleanup_add(a, record_cleanup, &one));
    assert_true(arena_cleanup_add(a, record_cleanup, &two));
    assert_true(arena_cleanup_add(a, record_cleanup, &three));
    assert_true(arena_cleanup_cancel(a, record_cleanup, &two));
    assert_false(arena_cleanup_cancel(a, record_cleanup, &two));
    arena_destroy(a);
    assert_int_equal(cleanup_count, 2);
    assert_int_equal(cleanup_order[0], 3);
    assert_int_equal(cleanup_order[1], 1);
}

static void test_strings_and_printf(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
    assert_string_equal(arena_printf(a, "%d-%s", 42, "x"), "42-x");
    char *big = arena_printf(a, "%5000d", 7);
    assert_int_equal(strlen(big), 5000);
    arena_destroy(a);
}

static void test_buf_grows(void **state)
{
    (void)state;
    arena_t *a = arena_create(0);
    nn_buf_t b;
    buf_init(&b, a);
    assert_string_equal(buf_cstr(&b), "");
    for (int i = 0; i < 10000; i++)
        assert_true(buf_appendf(&b, "%d,", i % 10));
    assert_int_equal(b.len, 20000);
    assert_int_equal(strlen(buf_cstr(&b)), 20000);
    buf_reset(&b);
    assert_true(buf_append_str(&b, "x"));
    assert_string_equal(buf_cstr(&b), "x");
    arena_destroy(a);
}

static void test_error_first_wins_and_fields_accumulate(void **state)
{
    (void)state;
    nn_error_t err;
    nn_error_init(&err);
    assert_false(nn_error_is_set(&err));
    nn_error_field(&err, "name", "must not be empty");
    nn_error_field(&err, "framework", "is required");
    nn_error_field(&err, "name", "second message ignored");
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "validation_error");
    assert_int_equal(err.nfields, 2);
    assert_string_equal(err.fields[0].message, "must not be empty");
    assert_string_equal(err.message, "name must not be empty");
    nn_error_set(&err, 500, "internal_error", "later errors do not replace the first");
    assert_int_equal(err.status, 400);

    nn_error_init(&err);
    nn_error_set(&err, 404, "not_found", "gone");
    nn_error_field(&err, "x", "a field error after a 404 is dropped");
    assert_int_equal(err.status, 404);
    assert_int_equal(err.nfields, 0);

    nn_error_init(&err);
    for (int i = 0; i < NN_ERROR_MAX_FIELDS + 5; i++) {
        char path[16];
        snprintf(path, sizeof(path), "f%d", i);
        nn_error_field(&err, path, "bad");
    }
    assert_int_equal(err.nfields, NN_ERROR_MAX_FIELDS);
    assert_true(err.fields_truncated);
}

static void test_error_text_stays_utf8(void **state)
{
    (void)state;
    nn_error_t err;
    nn_error_init(&err);
    char name[2000];
    /* 'é' is two bytes: 1000 of them overflow the message buffer mid-character. */
    for (size_t i = 0; i < 1000; i++) {
        name[2 * i] = (char)0xc3;
        name[2 * i + 1] = (char)0xa9;
    }
    name[1999] = '\0'; /* a cut character at the end too */
    nn_error_set(&err, 400, "x", "file \"%s\" \xff is bad", name);
    for (const unsigned char *p = (const unsigned char *)err.message; *p; p++)
        if (*p >= 0x80) {
            assert_true(p[0] == 0xc3 && p[1] == 0xa9);
            p++;
        }
    nn_error_init(&err);
    nn_error_field(&err, "a\xc3", "bad \xe9 value");
    assert_string_equal(err.fields[0].path, "a?");
    assert_string_equal(err.fields[0].message, "bad ? value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_alignment_and_big_blocks),
        cmocka_unit_test(test_cleanups_run_in_reverse_and_can_be_cancelled),
        cmocka_unit_test(test_strings_and_printf),
        cmocka_unit_test(test_buf_grows),
        cmocka_unit_test(test_error_first_wins_and_fields_accumulate),
        cmocka_unit_test(test_error_text_stays_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
