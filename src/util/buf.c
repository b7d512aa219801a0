#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void buf_init(nn_buf_t *b, arena_t *arena)
{
    b->arena = arena;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

static bool buf_reserve(nn_buf_t *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = arena_realloc(b->arena, b->data, b->len, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool buf_append(nn_buf_t *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len))
        return false;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

bool buf_append_str(nn_buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

bool buf_append_char(nn_buf_t *b, char c)
{
    return buf_append(b, &c, 1);
}

bool buf_appendf(nn_buf_t *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        va_end(ap);
        b->failed = true;
        return false;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

const char *buf_cstr(nn_buf_t *b)
{
    if (b->failed)
        return NULL;
    if (!b->data)
        return "";
    return b->data;
}

void buf_reset(nn_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
