#include "util/base64.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

bool base64_decode(arena_t *arena, const char *text, size_t len, unsigned char **out,
                   size_t *out_len, const char **why)
{
    unsigned char *dst = arena_alloc(arena, len / 4 * 3 + 3);
    if (!dst) {
        *why = "out of memory";
        return false;
    }
    size_t n = 0, quad = 0, pad = 0;
    unsigned acc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            if (pad > 2) {
                *why = "has more than two '=' padding characters";
                return false;
            }
            continue;
        }
        int v = b64_value(c);
        if (v < 0) {
            *why = "has a character outside the base64 alphabet";
            return false;
        }
        if (pad) {
            *why = "has data after its '=' padding";
            return false;
        }
        acc = (acc << 6) | (unsigned)v;
        if (++quad == 4) {
            dst[n++] = (unsigned char)(acc >> 16);
            dst[n++] = (unsigned char)(acc >> 8);
            dst[n++] = (unsigned char)acc;
            quad = 0;
            acc = 0;
        }
    }
    if (quad == 1) {
        *why = "is cut short (its length is not a whole number of bytes)";
        return false;
    }
    if (pad && (quad == 0 || quad + pad != 4)) {
        *why = "has the wrong amount of '=' padding";
        return false;
    }
    if (quad == 2) {
        dst[n++] = (unsigned char)(acc >> 4);
    } else if (quad == 3) {
        dst[n++] = (unsigned char)(acc >> 10);
        dst[n++] = (unsigned char)(acc >> 2);
    }
    *out = dst;
    *out_len = n;
    return true;
}
