/* Unit tests: CRC-32C (util/crc32c).  Known vectors (RFC 3720 appendix
 * B.4, the usual "123456789" check value, values TensorFlow stored in the
 * fixtures), masking, chunked extension, and the table implementation
 * against the hardware one on every length and alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/crc32c.h"

static void test_known_vectors(void **state)
{
    (void)state;
    unsigned char buf[48];
    assert_int_equal(crc32c_value("123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c_value("", 0), 0u);
    assert_int_equal(crc32c_value(NULL, 0), 0u);
    assert_int_equal(crc32c_value("a", 1), 0xc1d04330u);

    memset(buf, 0, 32);
    assert_int_equal(crc32c_value(buf, 32), 0x8a9136aau);
    memset(buf, 0xff, 32);
    assert_int_equal(crc32c_value(buf, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(crc32c_value(buf, 32), 0x46dd794eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(crc32c_value(buf, 32), 0x113fdb5cu);

    static const unsigned char iscsi[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(crc32c_value(iscsi, sizeof(iscsi)), 0xd9963a56u);
    assert_int_equal(crc32c_extend_portable(0, iscsi, sizeof(iscsi)), 0xd9963a56u);
}

/* Values TensorFlow wrote into the fixtures' variables.index: the masked
 * CRC of the little-endian float32 bytes of each variable. */
static void test_tensorflow_values(void **state)
{
    (void)state;
    static const struct {
        unsigned char bytes[4];
        uint32_t stored;
    } cases[] = {
        {{0x00, 0x00, 0x00, 0x3f}, 0x1f273806u}, /* 0.5 */
        {{0x00, 0x00, 0x00, 0x40}, 0x4f78fd10u}, /* 2.0 */
        {{0x00, 0x00, 0x40, 0x40}, 0xc382d6efu}, /* 3.0 */
        {{0x00, 0x00, 0x00, 0x00}, 0x3a117ba6u}, /* 0.0 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t crc = crc32c_value(cases[i].bytes, 4);
        assert_int_equal(crc32c_mask(crc), cases[i].stored);
        assert_int_equal(crc32c_unmask(cases[i].stored), crc);
    }
}

static void test_mask(void **state)
{
    (void)state;
    uint32_t crc = crc32c_value("foo", 3);
    assert_int_not_equal(crc, crc32c_mask(crc));
    assert_int_not_equal(crc, crc32c_mask(crc32c_mask(crc)));
    assert_int_equal(crc, crc32c_unmask(crc32c_mask(crc)));
    assert_int_equal(crc, crc32c_unmask(crc32c_unmask(crc32c_mask(crc32c_mask(crc)))));
    assert_int_equal(crc32c_mask(0), 0xa282ead8u);
    uint32_t x = 1;
    for (int i = 0; i < 1000; i++) {
        x = x * 1103515245u + 12345u;
        assert_int_equal(crc32c_unmask(crc32c_mask(x)), x);
    }
}

static void test_extend_is_concatenation(void **state)
{
    (void)state;
    const char *hello = "hello world, this is a longer string to cross the 8-byte stride";
    size_t n = strlen(hello);
    uint32_t whole = crc32c_value(hello, n);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t a = crc32c_extend(0, hello, cut);
        assert_int_equal(crc32c_extend(a, hello + cut, n - cut), whole);
        uint32_t b = crc32c_extend_portable(0, hello, cut);
        assert_int_equal(crc32c_extend_portable(b, hello + cut, n - cut), whole);
    }
    assert_int_equal(crc32c_extend(whole, NULL, 0), whole);
}

/* The table and the instruction agree on every length and alignment. */
static void test_portable_matches_dispatch(void **state)
{
    (void)state;
    enum { N = 4096 + 64 };
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (unsigned char)(x >> 24);
    }
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len < 300; len++)
            assert_int_equal(crc32c_extend(0x1234u, buf + align, len),
                             crc32c_extend_portable(0x1234u, buf + align, len));
    assert_int_equal(crc32c_value(buf, N), crc32c_extend_portable(0, buf, N));
    /* A bitwise reference, one byte at a time. */
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < N; i++) {
        c ^= buf[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    assert_int_equal(crc32c_value(buf, N), ~c);
    free(buf);
    print_message("crc32c: %s implementation\n", crc32c_hardware() ? "SSE4.2" : "table");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_tensorflow_values),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_extend_is_concatenation),
        cmocka_unit_test(test_portable_matches_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
