/* arena.h - memory by lifetime: one arena per request (or per command).
 *
 * Every allocation a request makes comes from its arena and is released in
 * one go by arena_destroy().  Resources that are not arena memory (PGresult,
 * yajl handles, file descriptors, temp files) are registered as cleanups so
 * that an early return can never leak them; cleanups run in reverse order of
 * registration when the arena is destroyed.
 *
 * Allocation failures return NULL (never abort): callers turn them into a
 * 500 error through nn_error_oom().
 */
#ifndef NNREG_UTIL_ARENA_H
#define NNREG_UTIL_ARENA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct arena arena_t;
typedef void (*arena_cleanup_fn)(void *data);

/* A new arena whose blocks are at least block_size bytes (0: 16 KiB).
 * NULL when out of memory. */
arena_t *arena_create(size_t block_size) __attribute__((warn_unused_result));

/* Runs the cleanups (last registered first), then frees every block.
 * NULL is accepted. */
void arena_destroy(arena_t *arena);

/* size bytes aligned for any type; NULL on overflow or out of memory.
 * The memory is valid until arena_destroy(). */
void *arena_alloc(arena_t *arena, size_t size) __attribute__((warn_unused_result));
/* Zeroed n*size bytes; NULL on overflow or out of memory. */
void *arena_calloc(arena_t *arena, size_t n, size_t size) __attribute__((warn_unused_result));
/* Grows an allocation made from this arena (old_size bytes are copied). */
void *arena_realloc(arena_t *arena, void *old, size_t old_size, size_t new_size)
    __attribute__((warn_unused_result));

/* NUL-terminated copies. */
char *arena_strndup(arena_t *arena, const char *s, size_t len) __attribute__((warn_unused_result));
char *arena_strdup(arena_t *arena, const char *s) __attribute__((warn_unused_result));
char *arena_printf(arena_t *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
char *arena_vprintf(arena_t *arena, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));

/* Registers fn(data) to run at arena_destroy().  false when out of memory,
 * in which case fn has NOT been registered (the caller releases data). */
bool arena_cleanup_add(arena_t *arena, arena_cleanup_fn fn, void *data)
    __attribute__((warn_unused_result));

/* Cancels a registered cleanup (the first one matching fn and data), e.g.
 * when ownership of a temp file passed to the blob store.  Returns whether
 * one was found. */
bool arena_cleanup_cancel(arena_t *arena, arena_cleanup_fn fn, void *data);

/* Total bytes obtained from malloc by this arena (for tests and metrics). */
size_t arena_bytes_reserved(const arena_t *arena);

#endif
