/* apikey.h - API keys and application ids.
 *
 * A key is 32 random bytes (getrandom) printed as 64 hex digits; it is shown
 * once and stored only as its SHA-256 (hex).  Lookups go by the hash; the
 * stored and computed hashes are then compared in constant time
 * (CRYPTO_memcmp) so the comparison leaks nothing about either. */
#ifndef NNREG_UTIL_APIKEY_H
#define NNREG_UTIL_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#define APIKEY_HEX_LEN 64
#define APPID_HEX_LEN 24

/* Fills out with a new random key (64 hex digits + NUL). */
bool apikey_generate(char out[APIKEY_HEX_LEN + 1]) __attribute__((warn_unused_result));
/* Fills out with a new random application id (24 hex digits + NUL). */
bool apikey_generate_app_id(char out[APPID_HEX_LEN + 1]) __attribute__((warn_unused_result));
/* SHA-256 of key (len bytes) as 64 lowercase hex digits + NUL. */
void apikey_hash(const char *key, size_t len, char out[APIKEY_HEX_LEN + 1]);
/* Constant-time equality of two NUL-terminated strings of equal length;
 * false when lengths differ. */
bool apikey_equal(const char *a, const char *b);

#endif
