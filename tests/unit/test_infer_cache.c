/* Unit tests: the LRU model cache of nnreg-inferd (infer/cache): the
 * least recently used entry goes first, a get refreshes, the entry just
 * put survives even past the cap, remove and replace free exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infer/cache.h"

/* Values are malloc'd ints holding their key; freed ones are counted. */
static int freed[16];

static void free_value(void *v)
{
    freed[*(int *)v]++;
    free(v);
}

static int *value(int key)
{
    int *v = malloc(sizeof(*v));
    *v = key;
    return v;
}

/* The test's cache, kept in *state so that the teardown destroys it when
 * an assertion ends the test early (scripts/allocfail makes cache_put
 * fail on purpose); a test that destroys it itself clears *state. */
static infer_cache_t *open_cache(void **state, size_t cap)
{
    memset(freed, 0, sizeof(freed));
    infer_cache_t *c = cache_create(cap, free_value);
    assert_non_null(c);
    *state = c;
    return c;
}

static void close_cache(void **state)
{
    cache_destroy(*state);
    *state = NULL;
}

static int teardown(void **state)
{
    close_cache(state);
    return 0;
}

static void test_lru_order_and_cap(void **state)
{
    infer_cache_t *c = open_cache(state, 300);
    assert_true(cache_put(c, 1, value(1), 100));
    assert_true(cache_put(c, 2, value(2), 100));
    assert_true(cache_put(c, 3, value(3), 100));
    assert_int_equal(cache_count(c), 3);
    assert_int_equal(cache_bytes(c), 300);
    /* 1 used again: 2 is now the least recently used. */
    assert_int_equal(*(int *)cache_get(c, 1), 1);
    assert_true(cache_put(c, 4, value(4), 100));
    assert_null(cache_get(c, 2));
    assert_int_equal(freed[2], 1);
    assert_non_null(cache_get(c, 1));
    assert_non_null(cache_get(c, 3));
    assert_non_null(cache_get(c, 4));
    assert_int_equal(cache_bytes(c), 300);
    /* The gets above leave 4, 3, 1 (most recent first): a big one evicts
     * 1, then 3, then 4 until it fits. */
    assert_true(cache_put(c, 5, value(5), 250));
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(freed[1] + freed[3] + freed[4], 3);
    assert_non_null(cache_get(c, 5));
    close_cache(state);
    assert_int_equal(freed[5], 1);
}

static void test_oversized_entry_kept_until_next_put(void **state)
{
    infer_cache_t *c = open_cache(state, 100);
    assert_true(cache_put(c, 1, value(1), 500));
    assert_non_null(cache_get(c, 1));
    assert_int_equal(freed[1], 0);
    assert_true(cache_put(c, 2, value(2), 10));
    assert_null(cache_get(c, 1));
    assert_int_equal(freed[1], 1);
    assert_int_equal(cache_bytes(c), 10);
    close_cache(state);
}

static void test_zero_cap_keeps_only_the_last(void **state)
{
    infer_cache_t *c = open_cache(state, 0);
    assert_true(cache_put(c, 1, value(1), 1));
    assert_true(cache_put(c, 2, value(2), 1));
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(freed[1], 1);
    close_cache(state);
    assert_int_equal(freed[2], 1);
}

static void test_remove_and_replace(void **state)
{
    infer_cache_t *c = open_cache(state, 1000);
    assert_true(cache_put(c, 7, value(7), 10));
    assert_true(cache_put(c, 7, value(7), 20)); /* replaces: the old one freed */
    assert_int_equal(freed[7], 1);
    assert_int_equal(cache_count(c), 1);
    assert_int_equal(cache_bytes(c), 20);
    assert_true(cache_remove(c, 7));
    assert_false(cache_remove(c, 7));
    assert_int_equal(freed[7], 2);
    assert_int_equal(cache_count(c), 0);
    assert_int_equal(cache_bytes(c), 0);
    assert_null(cache_get(c, 7));
    close_cache(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lru_order_and_cap, teardown),
        cmocka_unit_test_teardown(test_oversized_entry_kept_until_next_put, teardown),
        cmocka_unit_test_teardown(test_zero_cap_keeps_only_the_last, teardown),
        cmocka_unit_test_teardown(test_remove_and_replace, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
