/* pbtext.c - protobuf text-format pull parser: see pbtext.h. */
#include "model/pbtext.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest number token pbt_double converts (digits of a double never need
 * more; longer tokens are refused rather than truncated). */
#define PBT_MAX_FLOAT_TOKEN 128

void pbt_init(pbt_parser_t *p, const char *text, size_t len)
{
    static const char empty[1];
    if (!text) {
        text = empty;
        len = 0;
    }
    p->base = text;
    p->pos = text;
    p->end = text + len;
    p->depth = 0;
    memset(&p->levels[0], 0, sizeof(p->levels[0]));
    p->failed = false;
    p->error_offset = 0;
    p->error[0] = '\0';
}

bool pbt_fail(pbt_parser_t *p, size_t offset, const char *fmt, ...)
{
    if (p->failed)
        return false;
    p->failed = true;
    p->error_offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    return false;
}

void pbt_position(const pbt_parser_t *p, size_t offset, size_t *line, size_t *column)
{
    size_t len = (size_t)(p->end - p->base);
    if (offset > len)
        offset = len;
    size_t ln = 1;
    size_t line_start = 0;
    const char *s = p->base;
    for (;;) {
        const char *nl = memchr(s, '\n', (size_t)(p->base + offset - s));
        if (!nl)
            break;
        ln++;
        s = nl + 1;
        line_start = (size_t)(s - p->base);
    }
    *line = ln;
    *column = offset - line_start + 1;
}

static size_t here(const pbt_parser_t *p)
{
    return (size_t)(p->pos - p->base);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

/* Printable description of the byte at p for messages. */
static const char *describe(const pbt_parser_t *p, char buf[16])
{
    if (p->pos >= p->end)
        return "end of input";
    unsigned char c = (unsigned char)*p->pos;
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

/* Skips whitespace and # comments. */
static const char *skip_space(const char *s, const char *end)
{
    while (s < end) {
        char c = *s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            s++;
        } else if (c == '#') {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            s = nl ? nl + 1 : end;
        } else {
            break;
        }
    }
    return s;
}

static void skip_ws(pbt_parser_t *p)
{
    p->pos = skip_space(p->pos, p->end);
}

/* An optional ',' or ';' after a field. */
static void skip_separator(pbt_parser_t *p)
{
    skip_ws(p);
    if (p->pos < p->end && (*p->pos == ',' || *p->pos == ';'))
        p->pos++;
}

/* One escape sequence: s points just after the backslash.  Sets *value (a
 * byte, or a code point when *unicode) and returns the bytes consumed, or 0
 * with *why set when the escape is malformed. */
static size_t decode_escape(const char *s, const char *end, uint32_t *value, bool *unicode,
                            const char **why)
{
    *unicode = false;
    if (s >= end) {
        *why = "backslash at the end of a string";
        return 0;
    }
    static const char simple_from[] = "abfnrtv\\'\"?";
    static const char simple_to[] = "\a\b\f\n\r\t\v\\'\"?";
    const char *simple = *s ? strchr(simple_from, *s) : NULL;
    if (simple) {
        *value = (unsigned char)simple_to[simple - simple_from];
        return 1;
    }
    if (*s >= '0' && *s <= '7') {
        uint32_t v = 0;
        size_t n = 0;
        while (n < 3 && s + n < end && s[n] >= '0' && s[n] <= '7')
            v = v * 8 + (uint32_t)(s[n++] - '0');
        if (v > 0xff) {
            *why = "octal escape is over \\377";
            return 0;
        }
        *value = v;
        return n;
    }
    if (*s == 'x' || *s == 'X') {
        uint32_t v = 0;
        size_t n = 1;
        while (n < 3 && s + n < end && is_hex(s[n]))
            v = v * 16 + (uint32_t)hex_value(s[n++]);
        if (n == 1) {
            *why = "\\x escape without hex digits";
            return 0;
        }
        *value = v;
        return n;
    }
    if (*s == 'u' || *s == 'U') {
        size_t digits = *s == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (size_t i = 1; i <= digits; i++) {
            if (s + i >= end || !is_hex(s[i])) {
                *why =
                    *s == 'u' ? "\\u escape needs 4 hex digits" : "\\U escape needs 8 hex digits";
                return 0;
            }
            v = v * 16 + (uint32_t)hex_value(s[i]);
        }
        size_t used = digits + 1;
        if (v >= 0xd800 && v <= 0xdbff) {
            /* A high surrogate must be followed by \u and a low one. */
            uint32_t lo = 0;
            bool ok = s + used + 6 <= end && s[used] == '\\' && s[used + 1] == 'u';
            for (size_t i = 2; ok && i < 6; i++) {
                ok = is_hex(s[used + i]);
                if (ok)
                    lo = lo * 16 + (uint32_t)hex_value(s[used + i]);
            }
            if (!ok || lo < 0xdc00 || lo > 0xdfff) {
                *why = "unpaired surrogate in a \\u escape";
                return 0;
            }
            v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            used += 6;
        } else if ((v >= 0xdc00 && v <= 0xdfff) || v > 0x10ffff) {
            *why = "escape is not a Unicode code point";
            return 0;
        }
        *value = v;
        *unicode = true;
        return used;
    }
    *why = "unknown escape sequence";
    return 0;
}

static size_t put_utf8(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Scans one quoted piece at p->pos, checking its escapes. */
static bool scan_string_piece(pbt_parser_t *p)
{
    const char *start = p->pos;
    char quote = *p->pos++;
    while (p->pos < p->end) {
        char c = *p->pos;
        if (c == quote) {
            p->pos++;
            return true;
        }
        if (c == '\n')
            return pbt_fail(p, (size_t)(start - p->base), "string is not closed on its line");
        if (c == '\\') {
            uint32_t v;
            bool uni;
            const char *why = NULL;
            size_t n = decode_escape(p->pos + 1, p->end, &v, &uni, &why);
            if (n == 0)
                return pbt_fail(p, here(p), "%s", why);
            p->pos += 1 + n;
        } else {
            p->pos++;
        }
    }
    return pbt_fail(p, (size_t)(start - p->base), "string is not closed");
}

/* Scans a number token at p->pos (a digit, or '.' and a digit). */
static bool scan_number(pbt_parser_t *p)
{
    const char *s = p->pos;
    const char *end = p->end;
    size_t start = here(p);
    if (s + 1 < end && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        const char *digits = s;
        while (s < end && is_hex(*s))
            s++;
        if (s == digits)
            return pbt_fail(p, start, "hex number without digits");
    } else {
        while (s < end && is_digit(*s))
            s++;
        if (s < end && *s == '.') {
            s++;
            while (s < end && is_digit(*s))
                s++;
        }
        if (s < end && (*s == 'e' || *s == 'E')) {
            s++;
            if (s < end && (*s == '+' || *s == '-'))
                s++;
            const char *digits = s;
            while (s < end && is_digit(*s))
                s++;
            if (s == digits)
                return pbt_fail(p, start, "number has an exponent without digits");
        }
        if (s < end && (*s == 'f' || *s == 'F'))
            s++;
    }
    if (s < end && (is_ident_char(*s) || *s == '.'))
        return pbt_fail(p, start, "invalid number");
    p->pos = s;
    return true;
}

static bool ident_equal_nocase(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (len != wl)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

static bool is_float_word(const char *s, size_t len)
{
    return ident_equal_nocase(s, len, "inf") || ident_equal_nocase(s, len, "infinity") ||
           ident_equal_nocase(s, len, "nan");
}

/* A scalar value at p->pos: [-] number | [-] identifier | strings. */
static bool read_scalar(pbt_parser_t *p, pbt_field_t *f)
{
    char what[16];
    if (p->pos < p->end && *p->pos == '-') {
        f->negative = true;
        p->pos++;
        skip_ws(p);
    }
    f->value_offset = here(p);
    f->value = p->pos;
    if (p->pos >= p->end)
        return pbt_fail(p, here(p), "expected a value, found end of input");
    char c = *p->pos;
    if (is_digit(c) || (c == '.' && p->pos + 1 < p->end && is_digit(p->pos[1]))) {
        f->kind = PBT_NUMBER;
        if (!scan_number(p))
            return false;
    } else if (is_ident_start(c)) {
        f->kind = PBT_IDENT;
        while (p->pos < p->end && is_ident_char(*p->pos))
            p->pos++;
        if (f->negative && !is_float_word(f->value, (size_t)(p->pos - f->value)))
            return pbt_fail(p, f->value_offset, "'-' before an identifier that is not inf or nan");
    } else if ((c == '"' || c == '\'') && !f->negative) {
        f->kind = PBT_STRING;
        const char *last_end;
        do {
            if (!scan_string_piece(p))
                return false;
            last_end = p->pos;
            skip_ws(p);
        } while (p->pos < p->end && (*p->pos == '"' || *p->pos == '\''));
        p->pos = last_end;
    } else {
        return pbt_fail(p, here(p), "expected a value, found %s", describe(p, what));
    }
    f->value_len = (size_t)(p->pos - f->value);
    return true;
}

static bool open_message(pbt_parser_t *p, pbt_field_t *f)
{
    if (p->depth >= PBT_MAX_DEPTH)
        return pbt_fail(p, here(p), "messages nest deeper than %d levels", PBT_MAX_DEPTH);
    char open = *p->pos++;
    f->is_message = true;
    f->value_offset = here(p) - 1;
    p->depth++;
    pbt_level_t *l = &p->levels[p->depth];
    memset(l, 0, sizeof(*l));
    l->close = open == '{' ? '}' : '>';
    return true;
}

/* A list element (scalar or message) for the list open at level l. */
static pbt_status_t list_element(pbt_parser_t *p, pbt_level_t *l, pbt_field_t *f)
{
    memset(f, 0, sizeof(*f));
    f->name = l->list_name;
    f->name_len = l->list_name_len;
    f->extension = l->list_extension;
    f->offset = here(p);
    if (p->pos < p->end && (*p->pos == '{' || *p->pos == '<'))
        return open_message(p, f) ? PBT_FIELD : PBT_ERROR;
    if (!read_scalar(p, f))
        return PBT_ERROR;
    l->list_sep = true;
    return PBT_FIELD;
}

/* A field name at p->pos: identifier or [extension.name/with/slashes]. */
static bool read_name(pbt_parser_t *p, pbt_field_t *f)
{
    char what[16];
    f->offset = here(p);
    if (*p->pos == '[') {
        p->pos++;
        skip_ws(p);
        const char *s = p->pos;
        while (p->pos < p->end &&
               (is_ident_char(*p->pos) || *p->pos == '.' || *p->pos == '/' || *p->pos == '-'))
            p->pos++;
        f->name = s;
        f->name_len = (size_t)(p->pos - s);
        f->extension = true;
        skip_ws(p);
        if (f->name_len == 0 || p->pos >= p->end || *p->pos != ']')
            return pbt_fail(p, here(p), "expected an extension name and ']', found %s",
                            describe(p, what));
        p->pos++;
        return true;
    }
    if (!is_ident_start(*p->pos))
        return pbt_fail(p, here(p), "expected a field name, found %s", describe(p, what));
    f->name = p->pos;
    while (p->pos < p->end && is_ident_char(*p->pos))
        p->pos++;
    f->name_len = (size_t)(p->pos - f->name);
    return true;
}

pbt_status_t pbt_next(pbt_parser_t *p, pbt_field_t *f)
{
    char what[16];
    for (;;) {
        if (p->failed)
            return PBT_ERROR;
        pbt_level_t *l = &p->levels[p->depth];
        skip_ws(p);
        if (l->in_list) {
            if (p->pos >= p->end) {
                pbt_fail(p, here(p), "list of field %.*s is not closed with ']'",
                         (int)l->list_name_len, l->list_name);
                return PBT_ERROR;
            }
            if (l->list_sep) {
                if (*p->pos == ']') {
                    p->pos++;
                    l->in_list = false;
                    l->list_sep = false;
                    skip_separator(p);
                    continue;
                }
                if (*p->pos != ',') {
                    pbt_fail(p, here(p), "expected ',' or ']' in the list of field %.*s, found %s",
                             (int)l->list_name_len, l->list_name, describe(p, what));
                    return PBT_ERROR;
                }
                p->pos++;
                l->list_sep = false;
                skip_ws(p);
            }
            return list_element(p, l, f);
        }
        if (p->pos >= p->end) {
            if (p->depth == 0)
                return PBT_END;
            pbt_fail(p, here(p), "unexpected end of input, '%c' expected", l->close);
            return PBT_ERROR;
        }
        char c = *p->pos;
        if (c == '}' || c == '>') {
            if (p->depth == 0 || c != l->close) {
                pbt_fail(p, here(p), "unexpected '%c'", c);
                return PBT_ERROR;
            }
            p->pos++;
            p->depth--;
            pbt_level_t *parent = &p->levels[p->depth];
            if (parent->in_list)
                parent->list_sep = true;
            else
                skip_separator(p);
            return PBT_END;
        }
        memset(f, 0, sizeof(*f));
        if (!read_name(p, f))
            return PBT_ERROR;
        skip_ws(p);
        bool colon = false;
        if (p->pos < p->end && *p->pos == ':') {
            colon = true;
            p->pos++;
            skip_ws(p);
        }
        if (p->pos >= p->end) {
            pbt_fail(p, here(p), "expected a value for field %.*s, found end of input",
                     (int)f->name_len, f->name);
            return PBT_ERROR;
        }
        c = *p->pos;
        if (c == '[') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->end && *p->pos == ']') {
                p->pos++; /* an empty list */
                skip_separator(p);
                continue;
            }
            l->in_list = true;
            l->list_sep = false;
            l->list_name = f->name;
            l->list_name_len = f->name_len;
            l->list_extension = f->extension;
            continue;
        }
        if (c == '{' || c == '<')
            return open_message(p, f) ? PBT_FIELD : PBT_ERROR;
        if (!colon) {
            pbt_fail(p, here(p), "expected ':' or '{' after field name %.*s, found %s",
                     (int)f->name_len, f->name, describe(p, what));
            return PBT_ERROR;
        }
        if (!read_scalar(p, f))
            return PBT_ERROR;
        skip_separator(p);
        return PBT_FIELD;
    }
}

bool pbt_skip(pbt_parser_t *p)
{
    int target = p->depth - 1;
    pbt_field_t f;
    for (;;) {
        pbt_status_t st = pbt_next(p, &f);
        if (st == PBT_ERROR)
            return false;
        if (st == PBT_END && (p->depth == target || target < 0))
            return true;
    }
}

/* Unsigned magnitude of an integer token (decimal, 0x hex, 0 octal). */
static bool int_magnitude(const pbt_field_t *f, uint64_t *out)
{
    if (f->kind != PBT_NUMBER || f->value_len == 0)
        return false;
    const char *s = f->value;
    const char *end = s + f->value_len;
    unsigned base = 10;
    if (f->value_len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (f->value_len > 1 && s[0] == '0') {
        base = 8;
        s++;
    }
    uint64_t v = 0;
    for (; s < end; s++) {
        unsigned d;
        if (base == 16 && is_hex(*s))
            d = (unsigned)hex_value(*s);
        else if (is_digit(*s))
            d = (unsigned)(*s - '0');
        else
            return false; /* '.', exponent or suffix: not an integer */
        if (d >= base)
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

bool pbt_uint64(const pbt_field_t *f, uint64_t *out)
{
    uint64_t v;
    if (!int_magnitude(f, &v))
        return false;
    if (f->negative && v != 0)
        return false;
    *out = v;
    return true;
}

bool pbt_int64(const pbt_field_t *f, int64_t *out)
{
    uint64_t v;
    if (!int_magnitude(f, &v))
        return false;
    if (f->negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

bool pbt_double(const pbt_field_t *f, double *out)
{
    double v;
    if (f->kind == PBT_IDENT) {
        if (ident_equal_nocase(f->value, f->value_len, "inf") ||
            ident_equal_nocase(f->value, f->value_len, "infinity"))
            v = INFINITY;
        else if (ident_equal_nocase(f->value, f->value_len, "nan"))
            v = NAN;
        else
            return false;
    } else if (f->kind == PBT_NUMBER) {
        uint64_t iv;
        if (int_magnitude(f, &iv)) {
            v = (double)iv;
        } else {
            size_t n = f->value_len;
            if (n && (f->value[n - 1] == 'f' || f->value[n - 1] == 'F'))
                n--;
            if (n == 0 || n >= PBT_MAX_FLOAT_TOKEN)
                return false;
            if (n > 1 && f->value[0] == '0' && (f->value[1] == 'x' || f->value[1] == 'X'))
                return false; /* a hex integer too big for 64 bits */
            char buf[PBT_MAX_FLOAT_TOKEN];
            memcpy(buf, f->value, n);
            buf[n] = '\0';
            char *endp;
            errno = 0;
            v = strtod(buf, &endp);
            if (*endp != '\0')
                return false;
        }
    } else {
        return false;
    }
    *out = f->negative ? -v : v;
    return true;
}

bool pbt_bool(const pbt_field_t *f, bool *out)
{
    if (f->negative)
        return false;
    if (f->kind == PBT_IDENT) {
        if (pbt_ident_is(f, "true") || pbt_ident_is(f, "True") || pbt_ident_is(f, "t")) {
            *out = true;
            return true;
        }
        if (pbt_ident_is(f, "false") || pbt_ident_is(f, "False") || pbt_ident_is(f, "f")) {
            *out = false;
            return true;
        }
        return false;
    }
    uint64_t v;
    if (f->kind == PBT_NUMBER && int_magnitude(f, &v) && v <= 1) {
        *out = v == 1;
        return true;
    }
    return false;
}

bool pbt_ident_is(const pbt_field_t *f, const char *s)
{
    size_t n = strlen(s);
    return f->kind == PBT_IDENT && !f->negative && f->value_len == n && memcmp(f->value, s, n) == 0;
}

bool pbt_string_plain(const pbt_field_t *f, const char **out, size_t *len)
{
    if (f->kind != PBT_STRING || f->value_len < 2)
        return false;
    char quote = f->value[0];
    const char *body = f->value + 1;
    size_t n = f->value_len - 2;
    if (f->value[f->value_len - 1] != quote)
        return false;
    /* One piece without escapes: no backslash and no quote inside. */
    for (size_t i = 0; i < n; i++)
        if (body[i] == '\\' || body[i] == quote)
            return false;
    *out = body;
    *len = n;
    return true;
}

bool pbt_string_decode(const pbt_field_t *f, char *dst, size_t *len)
{
    if (f->kind != PBT_STRING)
        return false;
    const char *s = f->value;
    const char *end = f->value + f->value_len;
    size_t n = 0;
    while (s < end) {
        char quote = *s++;
        if (quote != '"' && quote != '\'')
            return false;
        while (s < end && *s != quote) {
            if (*s == '\\') {
                uint32_t v;
                bool uni;
                const char *why;
                size_t used = decode_escape(s + 1, end, &v, &uni, &why);
                if (used == 0)
                    return false;
                if (uni)
                    n += put_utf8(dst + n, v);
                else
                    dst[n++] = (char)v;
                s += 1 + used;
            } else {
                dst[n++] = *s++;
            }
        }
        if (s >= end)
            return false;
        s++; /* closing quote */
        s = skip_space(s, end);
    }
    *len = n;
    return true;
}
