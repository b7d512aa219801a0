/* Unit tests: base64 decoding (util/base64): RFC 4648 section 10 vectors,
 * padding optional but exact when present, whitespace skipped, URL-safe
 * alphabet, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"

static void check(const char *text, const char *expect)
{
    arena_t *arena = arena_create(0);
    unsigned char *out;
    size_t len;
    const char *why = NULL;
    assert_true(base64_decode(arena, text, strlen(text), &out, &len, &why));
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(out, expect, len);
    arena_destroy(arena);
}

static void refuse(const char *text, const char *why_part)
{
    arena_t *arena = arena_create(0);
    unsigned char *out;
    size_t len;
    const char *why = NULL;
    assert_false(base64_decode(arena, text, strlen(text), &out, &len, &why));
    assert_non_null(why);
    assert_non_null(strstr(why, why_part));
    arena_destroy(arena);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    check("", "");
    check("Zg==", "f");
    check("Zm8=", "fo");
    check("Zm9v", "foo");
    check("Zm9vYg==", "foob");
    check("Zm9vYmE=", "fooba");
    check("Zm9vYmFy", "foobar");
}

static void test_lenient_forms(void **state)
{
    (void)state;
    check("Zm9vYg", "foob");           /* padding left out */
    check("Zm9v\r\nYmFy\n", "foobar"); /* line-wrapped */
    check(" Zm 9v ", "foo");
    check("-_-_", "\xfb\xff\xbf");     /* URL-safe alphabet */
    check("+/+/", "\xfb\xff\xbf");
}

static void test_errors(void **state)
{
    (void)state;
    refuse("Zm9v!", "alphabet");
    refuse("Zg==Zg==", "after its '=' padding");
    refuse("Zg===", "more than two");
    refuse("Z", "cut short");
    refuse("Zm9vY", "cut short");
    refuse("Zm9=v", "after its '=' padding");
    refuse("Zm8==", "wrong amount");
    refuse("=", "wrong amount");
    refuse("https://example.com/a.png", "alphabet");
}

static void test_binary_round_trip(void **state)
{
    (void)state;
    /* Every byte value, encoded here by hand. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[256];
    for (int i = 0; i < 256; i++)
        raw[i] = (unsigned char)i;
    char text[400];
    size_t n = 0;
    for (size_t i = 0; i < 256; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < 256)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < 256)
            v |= raw[i + 2];
        text[n++] = alphabet[(v >> 18) & 63];
        text[n++] = alphabet[(v >> 12) & 63];
        text[n++] = i + 1 < 256 ? alphabet[(v >> 6) & 63] : '=';
        text[n++] = i + 2 < 256 ? alphabet[v & 63] : '=';
    }
    arena_t *arena = arena_create(0);
    unsigned char *out;
    size_t len;
    const char *why;
    assert_true(base64_decode(arena, text, n, &out, &len, &why));
    assert_int_equal(len, 256);
    assert_memory_equal(out, raw, 256);
    arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_lenient_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_binary_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
