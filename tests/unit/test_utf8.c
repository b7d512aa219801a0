/* test_utf8.c - strict UTF-8 checking (RFC 3629). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "util/utf8.h"

typedef struct utf8_case {
    const char *bytes;
    size_t len;
    bool valid;
} utf8_case_t;

#define CASE(s, ok) {s, sizeof(s) - 1, ok}

static const utf8_case_t cases[] = {
    CASE("", true),
    CASE("plain ASCII; DROP TABLE x; --", true),
    CASE("a\0b", true), /* NUL is UTF-8; callers that refuse it check it themselves */
    CASE("caf\xc3\xa9", true),
    CASE("\xe2\x82\xac", true),          /* U+20AC */
    CASE("\xef\xbf\xbf", true),          /* U+FFFF */
    CASE("\xf0\x9f\x98\x80", true),      /* U+1F600 */
    CASE("\xf4\x8f\xbf\xbf", true),      /* U+10FFFF, the last code point */
    CASE("\xed\x9f\xbf", true),          /* U+D7FF, just below the surrogates */
    CASE("\xee\x80\x80", true),          /* U+E000, just above them */
    CASE("caf\xe9", false),              /* Latin-1 */
    CASE("\x80", false),                 /* stray continuation byte */
    CASE("\xbf", false),
    CASE("\xc3", false),                 /* cut sequence */
    CASE("\xe2\x82", false),
    CASE("\xf0\x9f\x98", false),
    CASE("\xc3\x28", false),             /* bad continuation */
    CASE("\xc0\xaf", false),             /* overlong "/" */
    CASE("\xc1\xbf", false),
    CASE("\xe0\x80\xaf", false),         /* overlong, 3 bytes */
    CASE("\xe0\x9f\xbf", false),
    CASE("\xf0\x80\x80\xaf", false),     /* overlong, 4 bytes */
    CASE("\xf0\x8f\xbf\xbf", false),
    CASE("\xed\xa0\x80", false),         /* U+D800, a surrogate */
    CASE("\xed\xbf\xbf", false),         /* U+DFFF */
    CASE("\xf4\x90\x80\x80", false),     /* U+110000 */
    CASE("\xf5\x80\x80\x80", false),
    CASE("\xff", false),
    CASE("\xfe\xff", false),
    CASE("ok \xf0\x9f\x98\x80 then \xff", false),
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (utf8_valid(cases[i].bytes, cases[i].len) != cases[i].valid)
            fail_msg("case %zu: expected %s", i, cases[i].valid ? "valid" : "invalid");
    }
}

static void test_sequence_length(void **state)
{
    (void)state;
    assert_int_equal(utf8_sequence_length((const unsigned char *)"a", 1), 1);
    assert_int_equal(utf8_sequence_length((const unsigned char *)"\xc3\xa9x", 3), 2);
    assert_int_equal(utf8_sequence_length((const unsigned char *)"\xe2\x82\xac", 3), 3);
    assert_int_equal(utf8_sequence_length((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    /* Never reads past len. */
    assert_int_equal(utf8_sequence_length((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal(utf8_sequence_length((const unsigned char *)"\xed\xa0\x80", 3), 0);
}

/* Every 2-byte and 3-byte sequence agrees with a decode-and-check of the
 * code point (the RFC 3629 definition). */
static void test_exhaustive_short_sequences(void **state)
{
    (void)state;
    for (unsigned a = 0x80; a < 0x100; a++) {
        for (unsigned b = 0; b < 0x100; b++) {
            unsigned char s2[2] = {(unsigned char)a, (unsigned char)b};
            bool two = (a & 0xe0) == 0xc0 && (b & 0xc0) == 0x80 &&
                       (((a & 0x1fu) << 6) | (b & 0x3fu)) >= 0x80;
            assert_int_equal(utf8_valid((const char *)s2, 2), two);
            if ((a & 0xf0) != 0xe0)
                continue;
            for (unsigned c = 0x80; c < 0xc0; c++) {
                unsigned char s3[3] = {(unsigned char)a, (unsigned char)b, (unsigned char)c};
                unsigned cp = ((a & 0x0fu) << 12) | ((b & 0x3fu) << 6) | (c & 0x3fu);
                bool three = (b & 0xc0) == 0x80 && cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
                assert_int_equal(utf8_valid((const char *)s3, 3), three);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_sequence_length),
        cmocka_unit_test(test_exhaustive_short_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
