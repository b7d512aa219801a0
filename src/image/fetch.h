/* fetch.h - image sources given as http(s) URLs, fetched with libcurl
 * under the rules of API.md: schemes http and https only; a size limit and
 * a timeout; addresses in private, loopback and link-local ranges (IPv4 and
 * IPv6, including IPv4-mapped forms) refused unless the operator allows
 * them (NNREG_FETCH_ALLOW_PRIVATE); the address checked is the one libcurl
 * connects to (so a DNS answer cannot swap it after the check), and every
 * redirect hop is checked the same way.
 *
 * Errors are 400 "invalid_image_url" naming the URL and why (scheme,
 * refused address, too large, timeout, HTTP status). */
#ifndef NNREG_IMAGE_FETCH_H
#define NNREG_IMAGE_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"

typedef struct fetch_limits {
    size_t max_bytes;     /* body size limit */
    long timeout_ms;      /* whole transfer */
    bool allow_private;   /* operator's configuration */
    int max_redirects;
} fetch_limits_t;

/* True when s looks like a URL source (starts with http:// or https://,
 * case-insensitively) rather than base64 bytes. */
bool fetch_is_url(const char *s);

/* GETs url into arena memory. */
bool fetch_url(arena_t *arena, const char *url, const fetch_limits_t *limits, void **bytes,
               size_t *len, nn_error_t *err) __attribute__((warn_unused_result));

#endif
