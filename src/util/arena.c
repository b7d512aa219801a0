/* arena.c - bump allocator over a chain of malloc'ed blocks.
 * Large requests get a block of their own so that small ones keep filling
 * the current block. */
#include "util/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK (16 * 1024)

typedef struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block_t;

typedef struct arena_cleanup {
    struct arena_cleanup *next;
    arena_cleanup_fn fn;
    void *data;
} arena_cleanup_t;

struct arena {
    arena_block_t *blocks; /* current block first */
    arena_cleanup_t *cleanups; /* last registered first */
    size_t block_size;
    size_t reserved;
};

static arena_block_t *block_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(arena_block_t))
        return NULL;
    arena_block_t *b = malloc(sizeof(arena_block_t) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

arena_t *arena_create(size_t block_size)
{
    arena_t *a = malloc(sizeof(*a));
    if (!a)
        return NULL;
    a->blocks = NULL;
    a->cleanups = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->reserved = 0;
    return a;
}

void arena_destroy(arena_t *a)
{
    if (!a)
        return;
    while (a->cleanups) {
        arena_cleanup_t *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->data); /* c itself lives in a block: freed below */
    }
    while (a->blocks) {
        arena_block_t *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    free(a);
}

void *arena_alloc(arena_t *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block_t *cur = a->blocks;
    if (cur && cur->size - cur->used >= rounded) {
        void *p = cur->data + cur->used;
        cur->used += rounded;
        return p;
    }
    if (rounded > a->block_size / 4) {
        /* A big allocation: its own block, linked behind the current one so
         * the current block keeps serving small requests. */
        arena_block_t *b = block_new(rounded);
        if (!b)
            return NULL;
        b->used = rounded;
        a->reserved += rounded;
        if (cur) {
            b->next = cur->next;
            cur->next = b;
        } else {
            a->blocks = b;
        }
        return b->data;
    }
    arena_block_t *b = block_new(a->block_size);
    if (!b)
        return NULL;
    a->reserved += a->block_size;
    b->next = a->blocks;
    a->blocks = b;
    b->used = rounded;
    return b->data;
}

void *arena_calloc(arena_t *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *arena_realloc(arena_t *a, void *old, size_t old_size, size_t new_size)
{
    if (new_size <= old_size && old)
        return old;
    void *p = arena_alloc(a, new_size);
    if (p && old && old_size)
        memcpy(p, old, old_size);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

bool arena_cleanup_add(arena_t *a, arena_cleanup_fn fn, void *data)
{
    arena_cleanup_t *c = arena_alloc(a, sizeof(*c));
    if (!c)
        return false;
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
    return true;
}

bool arena_cleanup_cancel(arena_t *a, arena_cleanup_fn fn, void *data)
{
    for (arena_cleanup_t **pp = &a->cleanups; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->data == data) {
            *pp = (*pp)->next;
            return true;
        }
    }
    return false;
}

size_t arena_bytes_reserved(const arena_t *a)
{
    return a->reserved;
}
