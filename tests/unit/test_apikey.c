/* test_apikey.c - keys, application ids, their hash and comparison. */
/* cmocka.h needs these before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/apikey.h"

static bool is_lower_hex(const char *s, size_t len)
{
    return strlen(s) == len && strspn(s, "0123456789abcdef") == len;
}

/* FIPS 180-2 and NIST test vectors. */
static void test_hash_known_vectors(void **state)
{
    static const struct {
        const char *input;
        const char *sha256;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[APIKEY_HEX_LEN + 1];
        apikey_hash(cases[i].input, strlen(cases[i].input), out);
        assert_string_equal(out, cases[i].sha256);
    }
}

/* Only len bytes count: a key is hashed as sent, not up to a NUL. */
static void test_hash_uses_length(void **state)
{
    char out[APIKEY_HEX_LEN + 1];
    apikey_hash("abcdef", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_keys_are_64_hex_and_differ(void **state)
{
    char a[APIKEY_HEX_LEN + 1], b[APIKEY_HEX_LEN + 1];
    assert_true(apikey_generate(a));
    assert_true(apikey_generate(b));
    assert_true(is_lower_hex(a, APIKEY_HEX_LEN));
    assert_true(is_lower_hex(b, APIKEY_HEX_LEN));
    assert_string_not_equal(a, b);

    /* The stored form: a hash of the same shape, never the key itself. */
    char hash[APIKEY_HEX_LEN + 1];
    apikey_hash(a, strlen(a), hash);
    assert_true(is_lower_hex(hash, APIKEY_HEX_LEN));
    assert_string_not_equal(hash, a);
}

static void test_app_ids_are_24_hex_and_differ(void **state)
{
    char a[APPID_HEX_LEN + 1], b[APPID_HEX_LEN + 1];
    assert_true(apikey_generate_app_id(a));
    assert_true(apikey_generate_app_id(b));
    assert_true(is_lower_hex(a, APPID_HEX_LEN));
    assert_true(is_lower_hex(b, APPID_HEX_LEN));
    assert_string_not_equal(a, b);
}

/* Many keys, no repeats and no stuck digit positions: catches a generator
 * that hexes uninitialised or constant bytes. */
static void test_keys_look_random(void **state)
{
    enum { N = 64 };
    static char keys[N][APIKEY_HEX_LEN + 1];
    unsigned seen[APIKEY_HEX_LEN] = {0}; /* bitmask of digits seen at each position */
    for (int i = 0; i < N; i++) {
        assert_true(apikey_generate(keys[i]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(keys[i], keys[j]);
        for (int p = 0; p < APIKEY_HEX_LEN; p++) {
            char c = keys[i][p];
            seen[p] |= 1u << (c <= '9' ? c - '0' : c - 'a' + 10);
        }
    }
    for (int p = 0; p < APIKEY_HEX_LEN; p++)
        assert_true(__builtin_popcount(seen[p]) > 1);
}

static void test_equal(void **state)
{
    static const struct {
        const char *a, *b;
        bool equal;
    } cases[] = {
        {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", true},
        /* last digit differs */
        {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae", false},
        /* first digit differs */
        {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "ca7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", false},
        /* a prefix is not equal */
        {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001", false},
        {"ba78", "ba7816bf", false},
        {"", "a", false},
        {"", "", true},
        /* case matters: hashes are stored lowercase */
        {"abcdef", "ABCDEF", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(apikey_equal(cases[i].a, cases[i].b), cases[i].equal);
        assert_int_equal(apikey_equal(cases[i].b, cases[i].a), cases[i].equal);
    }
}

static void test_equal_null_is_unequal(void **state)
{
    assert_false(apikey_equal(NULL, "abc"));
    assert_false(apikey_equal("abc", NULL));
    assert_false(apikey_equal(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_vectors),
        cmocka_unit_test(test_hash_uses_length),
        cmocka_unit_test(test_keys_are_64_hex_and_differ),
        cmocka_unit_test(test_app_ids_are_24_hex_and_differ),
        cmocka_unit_test(test_keys_look_random),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_equal_null_is_unequal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
