#include "infer/result.h"

#include <math.h>
#include <stdio.h>

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
            float v = x->data[i];
            int len;
            if (isfinite(v))
                len = snprintf(num + 1, sizeof(num) - 1, "%.9g", (double)v);
            else
                len = snprintf(num + 1, sizeof(num) - 1, "null");
            num[0] = ',';
            buf_append(b, i ? num : num + 1, (size_t)len + (i ? 1 : 0));
        }
        buf_append_str(b, "]}");
    }
    buf_append_str(b, "]}");
    return !b->failed;
}

