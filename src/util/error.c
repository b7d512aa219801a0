#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages carry user text (file names, tensor names): once formatted into
 * a fixed buffer, a cut may split a UTF-8 character and user bytes may not
 * be UTF-8 at all.  This replaces every invalid or cut sequence with '?' so
 * the JSON error body is always valid. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                             : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0;
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 2)
            ok = c >= 0xc2;
        if (ok && n == 3) {
            unsigned cp = ((c & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
            ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (ok && n == 4) {
            unsigned cp = ((c & 0x07u) << 18) | ((p[1] & 0x3fu) << 12);
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void nn_error_init(nn_error_t *err)
{
    err->status = 0;
    err->code = NULL;
    err->message[0] = '\0';
    err->retry_after = 0;
    err->nfields = 0;
    err->fields_truncated = false;
}

void nn_error_clear(nn_error_t *err)
{
    nn_error_init(err);
}

bool nn_error_set(nn_error_t *err, int status, const char *code, const char *fmt, ...)
{
    if (err->status != 0)
        return false;
    err->status = status;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    utf8_sanitize(err->message);
    return false;
}

bool nn_error_field(nn_error_t *err, const char *path, const char *fmt, ...)
{
    char msg[NN_ERROR_FIELD_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (err->status != 0 && (err->status != 400 || err->code == NULL ||
                             strcmp(err->code, "validation_error") != 0))
        return false; /* a non-validation error came first: it wins */
    if (err->status == 0) {
        err->status = 400;
        err->code = "validation_error";
        snprintf(err->message, sizeof(err->message), "%s %s", path, msg);
        utf8_sanitize(err->message);
    }
    for (size_t i = 0; i < err->nfields; i++)
        if (strcmp(err->fields[i].path, path) == 0)
            return false; /* first message for a field wins */
    if (err->nfields == NN_ERROR_MAX_FIELDS) {
        err->fields_truncated = true;
        return false;
    }
    nn_field_error_t *f = &err->fields[err->nfields++];
    snprintf(f->path, sizeof(f->path), "%s", path);
    snprintf(f->message, sizeof(f->message), "%s", msg);
    utf8_sanitize(f->path);
    utf8_sanitize(f->message);
    return false;
}

bool nn_error_add_field(nn_error_t *err, const char *path, const char *fmt, ...)
{
    if (err->status == 0)
        return false;
    for (size_t i = 0; i < err->nfields; i++)
        if (strcmp(err->fields[i].path, path) == 0)
            return false;
    if (err->nfields == NN_ERROR_MAX_FIELDS) {
        err->fields_truncated = true;
        return false;
    }
    nn_field_error_t *f = &err->fields[err->nfields++];
    snprintf(f->path, sizeof(f->path), "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    utf8_sanitize(f->path);
    utf8_sanitize(f->message);
    return false;
}

bool nn_error_oom(nn_error_t *err)
{
    return nn_error_set(err, 500, "out_of_memory",
                        "the server ran out of memory while handling the request; retry later");
}

bool nn_error_internal(nn_error_t *err, const char *what)
{
    return nn_error_set(err, 500, "internal_error", "internal error: %s", what);
}
