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

/* The limits from the process settings: NNREG_FETCH_MAX_BYTES,
 * NNREG_FETCH_TIMEOUT_MS, NNREG_FETCH_ALLOW_PRIVATE, and
 * FETCH_MAX_REDIRECTS redirects. */
#define FETCH_MAX_REDIRECTS 5
struct nn_config;
void fetch_limits_from_config(const struct nn_config *cfg, fetch_limits_t *out);

/* Calls curl_global_init: once, at process start, before any thread
 * exists (libcurl would otherwise do it on the first fetch).  false when
 * libcurl cannot start. */
bool fetch_global_init(void) __attribute__((warn_unused_result));

/* Why an address is refused.  Everything but FETCH_ADDR_PUBLIC is refused
 * unless limits->allow_private: 0/8 and :: (unspecified), 127/8 and ::1
 * (loopback), 10/8, 172.16/12, 192.168/16 and fec0::/10 (private),
 * 100.64/10 (shared, carrier-grade NAT), 169.254/16 and fe80::/10
 * (link-local), fc00::/7 (unique-local), 224/4 and ff00::/8 (multicast),
 * 192.0.0/24, 192.88.99/24, 198.18/15, 240/4, 64:ff9b:1::/48, 100::/64
 * and 2001::/32 Teredo (reserved), 192.0.2/24, 198.51.100/24, 203.0.113/24
 * and 2001:db8::/32 (documentation).  IPv6 forms that embed an IPv4
 * address (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::/96, 2002::/16 6to4) are
 * judged by that IPv4 address. */
typedef enum {
    FETCH_ADDR_PUBLIC = 0,
    FETCH_ADDR_UNSPECIFIED,
    FETCH_ADDR_LOOPBACK,
    FETCH_ADDR_PRIVATE,
    FETCH_ADDR_SHARED,
    FETCH_ADDR_LINK_LOCAL,
    FETCH_ADDR_UNIQUE_LOCAL,
    FETCH_ADDR_MULTICAST,
    FETCH_ADDR_RESERVED,
    FETCH_ADDR_DOCUMENTATION,
    FETCH_ADDR_OTHER, /* not IPv4 or IPv6, or not an address */
} fetch_address_class_t;

struct sockaddr;
fetch_address_class_t fetch_classify_address(const struct sockaddr *sa);
/* The same for a numeric IPv4 or IPv6 literal ("10.1.2.3", "fe80::1"). */
fetch_address_class_t fetch_classify_literal(const char *text);
const char *fetch_address_class_name(fetch_address_class_t c);

/* GETs url into arena memory.  Redirects are followed (at most
 * limits->max_redirects, http and https only), each new connection being
 * checked like the first; environment proxies are ignored; the answer
 * must be a 2xx with a non-empty body of at most limits->max_bytes bytes
 * (counted as received, without content decoding), all within
 * limits->timeout_ms.  Each call uses its own libcurl handle: calls may
 * run in several threads at once (after fetch_global_init). */
bool fetch_url(arena_t *arena, const char *url, const fetch_limits_t *limits, void **bytes,
               size_t *len, nn_error_t *err) __attribute__((warn_unused_result));

#endif
