#include "infer/result.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* 10^k for k in [POW10_MIN, POW10_MAX]: the scales a float32 needs (its
 * decimal exponents run from -45 to 38). */
#define POW10_MIN (-32)
#define POW10_MAX 55
static const double pow10_table[] = {
    1e-32, 1e-31, 1e-30, 1e-29, 1e-28, 1e-27,
    1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21,
    1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15,
    1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9,
    1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3,
    1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3,
    1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
    1e22, 1e23, 1e24, 1e25, 1e26, 1e27,
    1e28, 1e29, 1e30, 1e31, 1e32, 1e33,
    1e34, 1e35, 1e36, 1e37, 1e38, 1e39,
    1e40, 1e41, 1e42, 1e43, 1e44, 1e45,
    1e46, 1e47, 1e48, 1e49, 1e50, 1e51,
    1e52, 1e53, 1e54, 1e55};

/* Nine significant digits of v, written into out (at least 24 bytes);
 * returns the length.  Nine digits are enough for any float32 to read back
 * as itself.  Computed in double: the scaled value is within a few units
 * of 1e-16 of the exact one, far below the half-spacing of float32 (about
 * 3e-8 relative), so a tie rounded the other way still reads back as the
 * same float.  This is several times faster than printf("%.9g"), which
 * matters for results of hundreds of thousands of values. */
static int format_float(float v, char *out)
{
    char *p = out;
    if (signbit(v))
        *p++ = '-';
    double d = fabs((double)v);
    if (d == 0.0) {
        *p++ = '0';
        return (int)(p - out);
    }
    int e = (int)floor(log10(d));
    double m = d * pow10_table[8 - e - POW10_MIN];
    if (m < 1e8) { /* log10 landed one too high */
        e--;
        m = d * pow10_table[8 - e - POW10_MIN];
    } else if (m >= 1e9) {
        e++;
        m = d * pow10_table[8 - e - POW10_MIN];
    }
    uint64_t u = (uint64_t)(m + 0.5);
    if (u >= 1000000000u) { /* rounded up to the next power of ten */
        u /= 10;
        e++;
    }
    char digits[9];
    for (int i = 8; i >= 0; i--) {
        digits[i] = (char)('0' + u % 10);
        u /= 10;
    }
    int nd = 9;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (e >= 0 && e < 9) {
        for (int i = 0; i <= e; i++)
            *p++ = i < nd ? digits[i] : '0';
        if (nd > e + 1) {
            *p++ = '.';
            for (int i = e + 1; i < nd; i++)
                *p++ = digits[i];
        }
    } else if (e < 0 && e >= -5) {
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--)
            *p++ = '0';
        for (int i = 0; i < nd; i++)
            *p++ = digits[i];
    } else {
        *p++ = digits[0];
        if (nd > 1) {
            *p++ = '.';
            for (int i = 1; i < nd; i++)
                *p++ = digits[i];
        }
        p += sprintf(p, "e%+03d", e);
    }
    return (int)(p - out);
}

int infer_result_format_float(float v, char *out)
{
    if (!isfinite(v)) {
        memcpy(out, "null", 4);
        return 4;
    }
    return format_float(v, out);
}

bool infer_result_json(nn_buf_t *b, const nn_tensor_t *tensors, size_t n)
{
    buf_append_str(b, "{\"tensors\": [");
    for (size_t t = 0; t < n; t++) {
        const nn_tensor_t *x = &tensors[t];
        nn_buf_t dims;
        buf_init(&dims, b->arena);
        buf_append_char(&dims, '[');
        for (size_t d = 0; d < x->ndims; d++)
            buf_appendf(&dims, "%s%lld", d ? ", " : "", (long long)x->dims[d]);
        buf_append_char(&dims, ']');
        const char *dims_text = buf_cstr(&dims);
        if (!dims_text)
            return false;
        /* The name through the JSON string rules (a node name may hold
         * quotes or backslashes). */
        buf_append_str(b, t ? ", {\"name\": \"" : "{\"name\": \"");
        for (const char *p = x->name ? x->name : ""; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\')
                buf_appendf(b, "\\%c", c);
            else if (c < 0x20)
                buf_appendf(b, "\\u%04x", c);
            else
                buf_append_char(b, (char)c);
        }
        buf_appendf(b, "\", \"shape\": %s, \"dims\": %s, \"data\": [", dims_text, dims_text);
        char num[32];
        for (size_t i = 0; i < x->count; i++) {
            num[0] = ',';
            int len = infer_result_format_float(x->data[i], num + 1);
            buf_append(b, i ? num : num + 1, (size_t)len + (i ? 1 : 0));
        }
        buf_append_str(b, "]}");
    }
    buf_append_str(b, "]}");
    return !b->failed;
}

