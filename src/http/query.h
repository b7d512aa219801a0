/* query.h - URL query strings: parsing (`a=1&b=2&task_ids=1&task_ids=2`),
 * strict integers for route ids and page limits, and percent-encoding for
 * building next/previous URLs.
 *
 * Parsing follows application/x-www-form-urlencoded: parameters are split
 * on "&", the name from the value on the first "=", "+" decodes to a space
 * and %XX to its byte.  Empty parameters ("a=1&&b=2") are skipped; a
 * parameter without "=" has the value "".  Names and values must decode to
 * UTF-8 without NUL bytes (they end up in SQL parameters and JSON).  The
 * caller bounds the raw length (nginx's request line limit does); the
 * parser bounds the count.
 */
#ifndef NNREG_HTTP_QUERY_H
#define NNREG_HTTP_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/error.h"

#define QUERY_MAX_PARAMS 1000

typedef struct query_param {
    const char *name;  /* decoded, NUL-terminated */
    const char *value; /* decoded, NUL-terminated, "" when no "=" */
} query_param_t;

/* The parameters in the order of the query string; repeated names are
 * kept as separate entries.  Arena memory, valid until the arena goes. */
typedef struct query {
    query_param_t *params;
    size_t n;
} query_t;

/* Parses raw (the part after "?", without it; NULL or "" for none) into q.
 * Errors: 400 "invalid_query" naming the parameter for a bad %XX escape,
 * a decoded NUL or invalid UTF-8, or more than QUERY_MAX_PARAMS parameters;
 * 500 when out of memory.  q is left empty on error. */
bool query_parse(arena_t *arena, const char *raw, query_t *q, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The value of the first parameter called name, NULL when absent. */
const char *query_get(const query_t *q, const char *name);

/* Iterates over every value of name, in order:
 *     size_t pos = 0;
 *     for (const char *v; (v = query_next(q, "task_ids", &pos)) != NULL;) …
 * *pos starts at 0 and is advanced past each match; NULL at the end. */
const char *query_next(const query_t *q, const char *name, size_t *pos);

/* How many parameters are called name. */
size_t query_count(const query_t *q, const char *name);

/* Strict decimal integer: an optional "-" then one or more ASCII digits and
 * nothing else (no "+", spaces, hex or trailing bytes).  true and *out set
 * when s is such a number within [min, max]; false otherwise (out of range
 * and overflow included), *out untouched.  No error record: callers word
 * the error for their parameter or route. */
bool query_parse_int(const char *s, long long min, long long max, long long *out)
    __attribute__((warn_unused_result));

/* Appends s percent-encoded for a query name or value: every byte but the
 * unreserved ALPHA / DIGIT / "-" / "." / "_" / "~" becomes %XX.  Returns
 * false once the buffer has failed (like buf_append, check once at the end). */
bool query_percent_encode(nn_buf_t *b, const char *s);

/* Like query_percent_encode, but keeps "/" so that a path stays a path. */
bool query_percent_encode_path(nn_buf_t *b, const char *path);

#endif
