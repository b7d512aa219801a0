/* utf8.h - strict UTF-8 (RFC 3629) checking.
 *
 * Text from clients ends up in PostgreSQL text and JSONB columns, which
 * refuse what RFC 3629 forbids (overlong forms, UTF-16 surrogates, code
 * points past U+10FFFF, stray continuation bytes).  Checking with the same
 * rules before storing turns such bytes into a 400 naming the field instead
 * of a failed INSERT.
 */
#ifndef NNREG_UTIL_UTF8_H
#define NNREG_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most len bytes, len > 0), or
 * 0 when s does not start one.  NUL counts as a valid 1-byte sequence. */
size_t utf8_sequence_length(const unsigned char *s, size_t len);

/* Whether s[0..len) is entirely valid UTF-8 (NUL bytes allowed). */
bool utf8_valid(const char *s, size_t len);

#endif
