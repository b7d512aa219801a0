/* multipart.h - resumable multipart/form-data parser (RFC 7578 / RFC 2046).
 *
 * A state machine fed in chunks of any size (down to one byte): it never
 * needs the whole body in memory and never looks back further than the
 * boundary length.  Part bodies are handed to the callbacks as they arrive,
 * possibly in many pieces; boundary-like text inside part data is passed
 * through as data.  Every length and count is bounded by mp_limits_t.
 *
 * Errors are 400 "invalid_multipart" (413 "too_many_parts" style errors
 * keep 400: the body is malformed for us) with a message naming what is
 * wrong; callbacks may fail with their own error, which stops the parser.
 */
#ifndef NNREG_HTTP_MULTIPART_H
#define NNREG_HTTP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"

#define MP_BOUNDARY_MAX 70 /* RFC 2046 */

typedef struct mp_limits {
    size_t max_header_line;   /* bytes in one header line (default 8 KiB) */
    size_t max_headers;       /* header lines per part (default 32) */
    size_t max_parts;         /* parts per body (default 1000) */
    size_t max_preamble;      /* bytes before the first boundary (default 64 KiB) */
} mp_limits_t;

/* The headers of one part, valid during on_part_begin only (copy what you
 * keep).  Missing values are NULL.  filename is the raw value of
 * filename= (or the decoded filename*=UTF-8''… form); never use it as a path. */
typedef struct mp_part {
    const char *name;
    const char *filename;
    const char *content_type;
    size_t index; /* 0-based position of the part in the body */
} mp_part_t;

typedef struct mp_callbacks {
    bool (*on_part_begin)(void *ctx, const mp_part_t *part, nn_error_t *err);
    bool (*on_part_data)(void *ctx, const char *data, size_t len, nn_error_t *err);
    bool (*on_part_end)(void *ctx, nn_error_t *err);
} mp_callbacks_t;

typedef enum { MP_NEED_MORE, MP_DONE, MP_ERROR } mp_status_t;

typedef struct mp_parser mp_parser_t;

/* Extracts the boundary parameter from a Content-Type header value
 * (multipart/form-data; boundary=...; quoted or not).  On success *boundary
 * is an arena copy.  Errors: 415 if not multipart/form-data, 400 if the
 * boundary is missing, empty or longer than MP_BOUNDARY_MAX. */
bool mp_boundary_from_content_type(arena_t *arena, const char *content_type, char **boundary,
                                   nn_error_t *err) __attribute__((warn_unused_result));

/* A parser for one body.  limits may be NULL for the defaults.  NULL on OOM. */
mp_parser_t *mp_parser_create(arena_t *arena, const char *boundary, const mp_limits_t *limits,
                              const mp_callbacks_t *callbacks, void *ctx)
    __attribute__((warn_unused_result));

/* Feeds the next chunk.  Returns MP_NEED_MORE while the closing delimiter has
 * not been seen, MP_DONE once it has (later bytes, the epilogue, are
 * ignored), MP_ERROR with err filled. */
mp_status_t mp_parser_feed(mp_parser_t *parser, const char *data, size_t len, nn_error_t *err);

/* Call at end of input: MP_DONE if the closing delimiter was seen, else
 * MP_ERROR ("body ends before the closing boundary"). */
mp_status_t mp_parser_finish(mp_parser_t *parser, nn_error_t *err);

#endif
