/* buf.h - growable byte buffer backed by an arena.
 * Once an append fails (out of memory) the buffer stays failed and further
 * appends are no-ops returning false, so a builder can check once at the end. */
#ifndef NNREG_UTIL_BUF_H
#define NNREG_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

typedef struct nn_buf {
    arena_t *arena;
    char *data; /* always NUL-terminated when len > 0 or after buf_cstr */
    size_t len;
    size_t cap;
    bool failed;
} nn_buf_t;

void buf_init(nn_buf_t *b, arena_t *arena);
bool buf_append(nn_buf_t *b, const void *data, size_t len);
bool buf_append_str(nn_buf_t *b, const char *s);
bool buf_append_char(nn_buf_t *b, char c);
bool buf_appendf(nn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The contents as a NUL-terminated string ("" when empty); NULL if failed. */
const char *buf_cstr(nn_buf_t *b);
void buf_reset(nn_buf_t *b);

#endif
