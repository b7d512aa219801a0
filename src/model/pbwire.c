/* pbwire.c - protobuf wire-format reader: see pbwire.h. */
#include "model/pbwire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pb_reader_init(pb_reader_t *r, const void *data, size_t len, pb_error_t *err)
{
    static const unsigned char empty[1];
    if (!data) {
        data = empty;
        len = 0;
    }
    r->base = data;
    r->pos = data;
    r->end = r->base + len;
    r->depth = 0;
    r->err = err;
    err->set = false;
    err->offset = 0;
    err->message[0] = '\0';
}

static size_t offset_of(const pb_reader_t *r, const unsigned char *p)
{
    return (size_t)(p - r->base);
}

bool pb_fail(pb_reader_t *r, size_t offset, const char *fmt, ...)
{
    if (r->err->set)
        return false;
    r->err->set = true;
    r->err->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message, sizeof(r->err->message), fmt, ap);
    va_end(ap);
    return false;
}

const char *pb_wire_type_name(int wire_type)
{
    switch (wire_type) {
    case PB_WIRE_VARINT:
        return "varint";
    case PB_WIRE_FIXED64:
        return "fixed64";
    case PB_WIRE_LEN:
        return "length-delimited";
    case PB_WIRE_START_GROUP:
        return "start-group";
    case PB_WIRE_END_GROUP:
        return "end-group";
    case PB_WIRE_FIXED32:
        return "fixed32";
    default:
        return "unknown";
    }
}

/* Why a varint at p could not be decoded (for error messages). */
static const char *varint_problem(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);
    for (size_t i = 0; i < PB_VARINT_MAX_BYTES; i++) {
        if (i == avail)
            return "truncated varint";
        if (!(p[i] & 0x80))
            return "varint overflows 64 bits";
    }
    return "varint longer than 10 bytes";
}

bool pb_decode_varint(const unsigned char **pp, const unsigned char *end, uint64_t *out)
{
    const unsigned char *p = *pp;
    uint64_t v = 0;
    for (unsigned i = 0; i < PB_VARINT_MAX_BYTES; i++) {
        if (p == end)
            return false;
        unsigned char byte = *p++;
        /* The 10th byte holds bit 63 only: anything above would overflow. */
        if (i == PB_VARINT_MAX_BYTES - 1 && byte > 1)
            return false;
        v |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = v;
            *pp = p;
            return true;
        }
    }
    return false;
}

static bool read_varint(pb_reader_t *r, uint64_t *out)
{
    if (r->pos < r->end && *r->pos < 0x80) { /* the common one-byte case */
        *out = *r->pos++;
        return true;
    }
    const unsigned char *start = r->pos;
    if (!pb_decode_varint(&r->pos, r->end, out))
        return pb_fail(r, offset_of(r, start), "%s", varint_problem(start, r->end));
    return true;
}

/* Reads a tag; checks the field number and wire type. */
static bool read_tag(pb_reader_t *r, uint32_t *number, int *wire_type)
{
    const unsigned char *start = r->pos;
    uint64_t tag = 0;
    if (!read_varint(r, &tag))
        return false;
    if (tag > UINT32_MAX)
        return pb_fail(r, offset_of(r, start), "field tag %llu does not fit in 32 bits",
                       (unsigned long long)tag);
    *number = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    if (*number == 0)
        return pb_fail(r, offset_of(r, start), "field number 0 is not allowed");
    if (*wire_type > PB_WIRE_FIXED32)
        return pb_fail(r, offset_of(r, start), "field %u has invalid wire type %d", *number,
                       *wire_type);
    return true;
}

static bool skip_bytes(pb_reader_t *r, size_t n, const unsigned char *at)
{
    size_t left = (size_t)(r->end - r->pos);
    if (n > left)
        return pb_fail(r, offset_of(r, at), "value of %zu bytes exceeds the %zu bytes left", n,
                       left);
    r->pos += n;
    return true;
}

/* Reads the value of a field of the given wire type into f (LEN: data/len).
 * Group wire types are not handled here. */
static bool read_value(pb_reader_t *r, int wire_type, pb_field_t *f)
{
    const unsigned char *start = r->pos;
    f->data_offset = offset_of(r, start);
    switch (wire_type) {
    case PB_WIRE_VARINT:
        return read_varint(r, &f->value);
    case PB_WIRE_FIXED64:
    case PB_WIRE_FIXED32: {
        size_t n = wire_type == PB_WIRE_FIXED64 ? 8 : 4;
        if (!skip_bytes(r, n, start))
            return false;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v |= (uint64_t)start[i] << (8 * i);
        f->value = v;
        return true;
    }
    case PB_WIRE_LEN: {
        uint64_t len = 0;
        if (!read_varint(r, &len))
            return false;
        size_t left = (size_t)(r->end - r->pos);
        if (len > left)
            return pb_fail(r, offset_of(r, start),
                           "length %llu of field %u exceeds the %zu bytes left",
                           (unsigned long long)len, f->number, left);
        f->data = r->pos;
        f->len = (size_t)len;
        f->data_offset = offset_of(r, r->pos);
        r->pos += (size_t)len;
        return true;
    }
    default:
        return pb_fail(r, offset_of(r, start), "unexpected wire type %d", wire_type);
    }
}

/* Skips a group whose start tag (field number) was just read: everything up
 * to the matching end-group, nested groups included, without recursion. */
static bool skip_group(pb_reader_t *r, uint32_t number, size_t tag_offset)
{
    uint32_t open[PB_MAX_DEPTH];
    int nopen = 0;
    if (r->depth + 1 > PB_MAX_DEPTH)
        return pb_fail(r, tag_offset, "groups nest deeper than %d levels", PB_MAX_DEPTH);
    open[nopen++] = number;
    while (nopen > 0) {
        if (r->pos == r->end)
            return pb_fail(r, offset_of(r, r->pos), "group of field %u is not closed",
                           open[nopen - 1]);
        size_t at = offset_of(r, r->pos);
        uint32_t n = 0;
        int wt = 0;
        if (!read_tag(r, &n, &wt))
            return false;
        if (wt == PB_WIRE_START_GROUP) {
            if (r->depth + nopen + 1 > PB_MAX_DEPTH)
                return pb_fail(r, at, "groups nest deeper than %d levels", PB_MAX_DEPTH);
            open[nopen++] = n;
        } else if (wt == PB_WIRE_END_GROUP) {
            if (n != open[nopen - 1])
                return pb_fail(r, at, "end-group of field %u closes the group of field %u", n,
                               open[nopen - 1]);
            nopen--;
        } else {
            pb_field_t f = {.number = n};
            if (!read_value(r, wt, &f))
                return false;
        }
    }
    return true;
}

pb_status_t pb_next(pb_reader_t *r, pb_field_t *f)
{
    for (;;) {
        if (r->err->set)
            return PB_ERROR;
        if (r->pos == r->end)
            return PB_END;
        size_t at = offset_of(r, r->pos);
        uint32_t number = 0;
        int wire_type = 0;
        if (!read_tag(r, &number, &wire_type))
            return PB_ERROR;
        if (wire_type == PB_WIRE_START_GROUP) {
            if (!skip_group(r, number, at))
                return PB_ERROR;
            continue;
        }
        if (wire_type == PB_WIRE_END_GROUP) {
            pb_fail(r, at, "end-group of field %u without a start-group", number);
            return PB_ERROR;
        }
        memset(f, 0, sizeof(*f));
        f->number = number;
        f->wire_type = (pb_wire_type_t)wire_type;
        f->offset = at;
        if (!read_value(r, wire_type, f))
            return PB_ERROR;
        return PB_FIELD;
    }
}

bool pb_sub(pb_reader_t *parent, const pb_field_t *f, pb_reader_t *child)
{
    if (f->wire_type != PB_WIRE_LEN)
        return pb_fail(parent, f->offset, "field %u is a %s, not a message", f->number,
                       pb_wire_type_name(f->wire_type));
    if (parent->depth + 1 > PB_MAX_DEPTH)
        return pb_fail(parent, f->offset, "messages nest deeper than %d levels", PB_MAX_DEPTH);
    child->base = parent->base;
    child->pos = f->data;
    child->end = f->data + f->len;
    child->depth = parent->depth + 1;
    child->err = parent->err;
    return true;
}
