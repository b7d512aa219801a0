/* error.h - the one error record a request (or a command) carries.
 *
 * Functions that can fail take an nn_error_t * and fill it; the first error
 * wins (later calls to nn_error_set are ignored once status is set), except
 * that field errors keep accumulating so that a validation failure names
 * every offending field.  The router renders the record once, as the JSON
 * error body of API.md; handlers never print error bodies themselves.
 *
 * The record is self-contained (fixed-size buffers), so it can live on the
 * stack and outlive any arena.
 */
#ifndef NNREG_UTIL_ERROR_H
#define NNREG_UTIL_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#define NN_ERROR_MESSAGE_MAX 1024
#define NN_ERROR_FIELD_PATH_MAX 256
#define NN_ERROR_FIELD_MESSAGE_MAX 512
#define NN_ERROR_MAX_FIELDS 32

typedef struct nn_field_error {
    char path[NN_ERROR_FIELD_PATH_MAX];
    char message[NN_ERROR_FIELD_MESSAGE_MAX];
} nn_field_error_t;

typedef struct nn_error {
    int status;          /* HTTP status; 0 while no error has been recorded */
    const char *code;    /* static snake_case error_code */
    char message[NN_ERROR_MESSAGE_MAX];
    int retry_after;     /* seconds for a Retry-After header, 0 for none */
    size_t nfields;
    bool fields_truncated;
    nn_field_error_t fields[NN_ERROR_MAX_FIELDS];
} nn_error_t;

void nn_error_init(nn_error_t *err);

static inline bool nn_error_is_set(const nn_error_t *err)
{
    return err->status != 0;
}

/* Records an error unless one is already recorded.  Always returns false so
 * that callers can write `return nn_error_set(err, ...);`. */
bool nn_error_set(nn_error_t *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a validation error on the field at path (400 validation_error).
 * The first field error also becomes the top-level message.  Returns false. */
bool nn_error_field(nn_error_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds a field entry (path: message) to the error already recorded,
 * whatever its code, so that a non-validation 400 (invalid_json) can still
 * point at the field.  Nothing when no error is recorded.  Returns false. */
bool nn_error_add_field(nn_error_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Shorthands for the common cases; each returns false. */
bool nn_error_oom(nn_error_t *err);
bool nn_error_internal(nn_error_t *err, const char *what); /* 500, logged */

/* Forgets any recorded error (used when an error is expected and handled). */
void nn_error_clear(nn_error_t *err);

#endif
