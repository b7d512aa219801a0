/* apikey.c - random keys and application ids, their SHA-256, and a
 * constant-time comparison. */
#include "util/apikey.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define APIKEY_RANDOM_BYTES (APIKEY_HEX_LEN / 2)
#define APPID_RANDOM_BYTES (APPID_HEX_LEN / 2)

/* Fills buf from the kernel's CSPRNG.  getrandom(2) blocks only until the
 * pool is first initialised (never afterwards), so a key is never made from
 * predictable bytes; requests this small are not split, but a signal can
 * still interrupt the call, hence the loop. */
static bool random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* Lowercase hex, as the database stores hashes (CHECK '^[0-9a-f]{64}$'). */
static void hex_encode(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static bool random_hex(char *out, size_t nbytes)
{
    unsigned char bytes[APIKEY_RANDOM_BYTES];
    if (nbytes > sizeof(bytes) || !random_bytes(bytes, nbytes)) {
        out[0] = '\0';
        return false;
    }
    hex_encode(bytes, nbytes, out);
    /* The key material must not linger on the stack. */
    OPENSSL_cleanse(bytes, sizeof(bytes));
    return true;
}

bool apikey_generate(char out[APIKEY_HEX_LEN + 1])
{
    return random_hex(out, APIKEY_RANDOM_BYTES);
}

bool apikey_generate_app_id(char out[APPID_HEX_LEN + 1])
{
    return random_hex(out, APPID_RANDOM_BYTES);
}

void apikey_hash(const char *key, size_t len, char out[APIKEY_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    /* EVP_Digest fails only when OpenSSL cannot allocate or fetch SHA-256.
     * The result is then the empty string, which matches no stored hash and
     * compares unequal to every hash (apikey_equal checks lengths): a
     * failure denies access rather than granting it. */
    if (EVP_Digest(key, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len * 2 != APIKEY_HEX_LEN) {
        out[0] = '\0';
        return;
    }
    hex_encode(md, md_len, out);
}

bool apikey_equal(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t len = strlen(a);
    /* The length is not secret (every hash is 64 digits); only the contents
     * are compared in constant time. */
    if (len != strlen(b))
        return false;
    return CRYPTO_memcmp(a, b, len) == 0;
}
