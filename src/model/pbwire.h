/* pbwire.h - a reader of the protobuf binary wire format that trusts nothing.
 *
 * A pb_reader_t is a cursor over a byte range; pb_next() yields one field at
 * a time (field number, wire type and the value: a varint, a fixed32, a
 * fixed64 or a length-delimited slice of the input).  Nested messages are
 * read by opening a sub-reader over a field's slice with pb_sub(), which
 * counts the nesting depth and refuses to go deeper than PB_MAX_DEPTH.
 *
 * What is checked: every length against the bytes left in the enclosing
 * range; varints are at most 10 bytes and must fit in 64 bits; tags must fit
 * in 32 bits and carry a field number in 1 .. 2^29-1 and a known wire type.
 * Groups (wire types 3 and 4, long deprecated) are skipped whole when they
 * are balanced and nest at most PB_MAX_DEPTH deep; a stray end-group is an
 * error.  Nothing allocates; nothing recurses.
 *
 * Errors: the first error is recorded in the pb_error_t shared by a reader
 * and all its sub-readers (message and absolute byte offset from the start
 * of the buffer given to pb_reader_init); the reader then stays failed and
 * pb_next() keeps returning PB_ERROR.
 *
 * Pointers in pb_field_t point into the caller's buffer and are valid as
 * long as it is.
 */
#ifndef NNREG_MODEL_PBWIRE_H
#define NNREG_MODEL_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of messages (and of skipped groups) a reader accepts. */
#define PB_MAX_DEPTH 64
/* A varint never takes more than this many bytes. */
#define PB_VARINT_MAX_BYTES 10
/* Largest field number protobuf allows. */
#define PB_FIELD_NUMBER_MAX 536870911u

typedef enum {
    PB_WIRE_VARINT = 0,
    PB_WIRE_FIXED64 = 1,
    PB_WIRE_LEN = 2,
    PB_WIRE_START_GROUP = 3,
    PB_WIRE_END_GROUP = 4,
    PB_WIRE_FIXED32 = 5,
} pb_wire_type_t;

/* The first error met by a reader (or any of its sub-readers). */
typedef struct pb_error {
    bool set;
    size_t offset;     /* absolute byte offset where the problem is */
    char message[256]; /* "length 4000 exceeds the 12 bytes left" */
} pb_error_t;

typedef struct pb_reader {
    const unsigned char *base; /* start of the whole buffer (for offsets) */
    const unsigned char *pos;
    const unsigned char *end;
    int depth; /* 0 for the outermost message */
    pb_error_t *err;
} pb_reader_t;

typedef struct pb_field {
    uint32_t number;
    pb_wire_type_t wire_type;  /* never a group: those are skipped */
    uint64_t value;            /* VARINT, FIXED64 and FIXED32 values */
    const unsigned char *data; /* LEN: the payload */
    size_t len;
    size_t offset;      /* absolute offset of the field's tag */
    size_t data_offset; /* absolute offset of the value / payload */
} pb_field_t;

typedef enum { PB_FIELD, PB_END, PB_ERROR } pb_status_t;

/* A reader over len bytes at data; errors go to *err (which is cleared). */
void pb_reader_init(pb_reader_t *r, const void *data, size_t len, pb_error_t *err);

/* The next field: PB_FIELD (filled *f), PB_END at the end of the range, or
 * PB_ERROR (see r->err).  Groups are skipped, never returned. */
pb_status_t pb_next(pb_reader_t *r, pb_field_t *f) __attribute__((warn_unused_result));

/* A reader over the payload of the length-delimited field f just returned by
 * parent, one level deeper.  false (and an error recorded) when f is not
 * length-delimited or the depth would exceed PB_MAX_DEPTH. */
bool pb_sub(pb_reader_t *parent, const pb_field_t *f, pb_reader_t *child)
    __attribute__((warn_unused_result));

/* Records an error at offset unless one is recorded already; returns false.
 * For callers that find a field's contents wrong (wrong wire type, bad
 * value) and want it reported like the reader's own errors. */
bool pb_fail(pb_reader_t *r, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decodes one varint from [*p, end) and advances *p.  false when truncated,
 * longer than 10 bytes or over 64 bits (*p is then unchanged).  Used for
 * packed repeated fields. */
bool pb_decode_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
    __attribute__((warn_unused_result));

/* Helpers for field values. */
static inline int32_t pb_int32(const pb_field_t *f)
{
    return (int32_t)(uint32_t)f->value; /* int32 is sent sign-extended */
}
static inline int64_t pb_int64(const pb_field_t *f)
{
    return (int64_t)f->value;
}
static inline int64_t pb_sint64(const pb_field_t *f) /* zigzag */
{
    return (int64_t)(f->value >> 1) ^ -(int64_t)(f->value & 1);
}

/* "varint", "fixed64", "length-delimited", ... for messages. */
const char *pb_wire_type_name(int wire_type);

#endif
