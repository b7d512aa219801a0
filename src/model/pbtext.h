/* pbtext.h - a pull parser for the protobuf text format (saved_model.pbtxt).
 *
 * The parser walks the text the way pbwire walks bytes: pbt_next() yields
 * one field at a time, named rather than numbered.  A field is either a
 * scalar (identifier, number or string token, kept raw and converted on
 * demand) or the start of a message; after a message start the caller reads
 * the message's fields with pbt_next() until it returns PBT_END, or skips
 * the whole message with pbt_skip().  The end of the input is the PBT_END of
 * the outermost message.
 *
 * Accepted syntax: identifiers, numbers (decimal, octal, hex, floats with
 * exponent and f suffix, a leading '-', inf/infinity/nan), strings in single
 * or double quotes with C escapes (\n \t \\ \" \' \? \a \b \f \r \v, octal
 * \NNN, hex \xHH, \uXXXX, \UXXXXXXXX) and adjacent strings concatenated,
 * messages in { } or < >, an optional ':' before a message, lists [a, b] of
 * scalars or messages, optional ',' or ';' after a field, '#' comments, and
 * extension / Any field names in brackets ([type.googleapis.com/pkg.Type]).
 *
 * Limits: nesting at most PBT_MAX_DEPTH messages (skipping included);
 * nothing recurses and nothing allocates.  Every error carries the byte
 * offset where it was found; pbt_error_position() turns it into line:column.
 * After an error the parser stays failed.
 *
 * Pointers in pbt_field_t point into the caller's text and are valid as long
 * as it is.
 */
#ifndef NNREG_MODEL_PBTEXT_H
#define NNREG_MODEL_PBTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PBT_MAX_DEPTH 64

typedef enum { PBT_IDENT, PBT_NUMBER, PBT_STRING } pbt_kind_t;

typedef struct pbt_field {
    const char *name; /* field name; for [ext] the text inside the brackets */
    size_t name_len;
    bool extension;  /* the name was written in brackets */
    bool is_message; /* a message starts: read it or pbt_skip() it */
    /* Scalars only: */
    pbt_kind_t kind;
    bool negative;     /* a '-' preceded the number or identifier */
    const char *value; /* the token without '-'; STRING: from the first
                          opening quote to the last closing quote of all the
                          adjacent pieces, escapes not decoded */
    size_t value_len;
    size_t offset;       /* of the name (list elements: of the element) */
    size_t value_offset; /* of the value token (or of '{') */
} pbt_field_t;

typedef enum { PBT_FIELD, PBT_END, PBT_ERROR } pbt_status_t;

typedef struct pbt_level {
    char close;    /* '}' or '>'; '\0' for the outermost message */
    bool in_list;  /* between '[' and ']' of a list */
    bool list_sep; /* in a list, after an element: ',' or ']' comes */
    const char *list_name;
    size_t list_name_len;
    bool list_extension;
} pbt_level_t;

typedef struct pbt_parser {
    const char *base;
    const char *pos;
    const char *end;
    int depth; /* open messages; 0 at the outermost level */
    pbt_level_t levels[PBT_MAX_DEPTH + 1];
    bool failed;
    size_t error_offset;
    char error[256];
} pbt_parser_t;

void pbt_init(pbt_parser_t *p, const char *text, size_t len);

/* The next field of the current message (PBT_FIELD), its end (PBT_END), or
 * PBT_ERROR.  A field with is_message set has opened a message (depth + 1). */
pbt_status_t pbt_next(pbt_parser_t *p, pbt_field_t *f) __attribute__((warn_unused_result));

/* Skips the rest of the current message, its closing delimiter included
 * (use right after a field with is_message set).  false on error. */
bool pbt_skip(pbt_parser_t *p) __attribute__((warn_unused_result));

/* Records an error at offset unless one is recorded already; returns false. */
bool pbt_fail(pbt_parser_t *p, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1-based line and column (in bytes) of offset in the parser's text. */
void pbt_position(const pbt_parser_t *p, size_t offset, size_t *line, size_t *column);

/* Scalar conversions; false when the token does not have that type or the
 * value is out of range (nothing is recorded: call pbt_fail to report). */
bool pbt_int64(const pbt_field_t *f, int64_t *out) __attribute__((warn_unused_result));
bool pbt_uint64(const pbt_field_t *f, uint64_t *out) __attribute__((warn_unused_result));
bool pbt_double(const pbt_field_t *f, double *out) __attribute__((warn_unused_result));
bool pbt_bool(const pbt_field_t *f, bool *out) __attribute__((warn_unused_result));

/* Whether f is an identifier equal to s (enum values, true/false). */
bool pbt_ident_is(const pbt_field_t *f, const char *s);

/* A string value's bytes without copying: true when the token is a single
 * piece without escapes (*out then points into the text). */
bool pbt_string_plain(const pbt_field_t *f, const char **out, size_t *len)
    __attribute__((warn_unused_result));

/* Decodes a string value (escapes, adjacent pieces) into dst, which must
 * hold at least f->value_len bytes; the result is never longer.  No NUL is
 * added.  false when f is not a string. */
bool pbt_string_decode(const pbt_field_t *f, char *dst, size_t *len)
    __attribute__((warn_unused_result));

#endif
