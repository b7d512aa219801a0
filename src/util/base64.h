/* base64.h - the standard base64 alphabet (RFC 4648 section 4), decoding
 * only: image sources sent inside JSON. */
#ifndef NNREG_UTIL_BASE64_H
#define NNREG_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

/* Decodes text (len bytes) into arena memory.  Whitespace (space, tab,
 * CR, LF: line-wrapped encoders) is skipped; padding is optional but, when
 * present, must end the text; the URL-safe alphabet ('-', '_') is accepted
 * too.  false when text is not base64 (*why then says where), or on OOM
 * (*why "out of memory"). */
bool base64_decode(arena_t *arena, const char *text, size_t len, unsigned char **out,
                   size_t *out_len, const char **why) __attribute__((warn_unused_result));

#endif
