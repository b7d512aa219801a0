/* query.c - URL query strings.
 *
 * The raw string is copied once into the arena and decoded in place:
 * decoding only ever shrinks text, and the "=" and "&" separators become the
 * NUL terminators of names and values, so a query of any size costs one
 * copy plus the parameter array.
 */
#include "http/query.h"

#include <limits.h>
#include <string.h>

#include "util/hex.h"
#include "util/utf8.h"

/* Names quoted in error messages are cut at this length. */
#define QUERY_QUOTE_MAX 64

/* The raw name of a parameter for an error message: printable ASCII only,
 * shortened, so that the message itself is always valid UTF-8. */
static void quote_name(const char *raw, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < QUERY_QUOTE_MAX && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)raw[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[o] = '\0';
}

typedef enum { DECODE_OK, DECODE_BAD_ESCAPE, DECODE_NUL, DECODE_BAD_UTF8 } decode_status_t;

/* Decodes s[0..len) in place; *out_len is the decoded length. */
static decode_status_t decode_in_place(char *s, size_t len, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3)
                return DECODE_BAD_ESCAPE;
            int h = hex_digit_value((unsigned char)s[i + 1]);
            int l = hex_digit_value((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return DECODE_BAD_ESCAPE;
            c = (char)(h * 16 + l);
            if (c == '\0')
                return DECODE_NUL;
            i += 2;
        }
        s[o++] = c;
    }
    s[o] = '\0';
    *out_len = o;
    return utf8_valid(s, o) ? DECODE_OK : DECODE_BAD_UTF8;
}

static bool decode_error(decode_status_t st, const char *raw_name, size_t raw_name_len,
                         nn_error_t *err)
{
    char name[QUERY_QUOTE_MAX + 1];
    quote_name(raw_name, raw_name_len, name, sizeof(name));
    switch (st) {
    case DECODE_BAD_ESCAPE:
        return nn_error_set(err, 400, "invalid_query",
                            "query parameter \"%s\" has an invalid percent escape; a \"%%\" must "
                            "be followed by two hex digits (write %%25 for a literal \"%%\")",
                            name);
    case DECODE_NUL:
        return nn_error_set(err, 400, "invalid_query",
                            "query parameter \"%s\" contains %%00; NUL bytes are not accepted",
                            name);
    case DECODE_BAD_UTF8:
        return nn_error_set(err, 400, "invalid_query",
                            "query parameter \"%s\" is not valid UTF-8 once decoded; "
                            "percent-encode UTF-8 bytes",
                            name);
    case DECODE_OK:
        break;
    }
    return nn_error_internal(err, "query decode");
}

bool query_parse(arena_t *arena, const char *raw, query_t *q, nn_error_t *err)
{
    q->params = NULL;
    q->n = 0;
    if (!raw || !*raw)
        return true;

    /* Count first so that the limit is checked before anything is
     * allocated for the parameters. */
    size_t count = 0;
    for (const char *p = raw; *p;) {
        size_t len = strcspn(p, "&");
        if (len > 0)
            count++;
        p += len;
        if (*p == '&')
            p++;
    }
    if (count > QUERY_MAX_PARAMS)
        return nn_error_set(err, 400, "invalid_query",
                            "the query string has %zu parameters; at most %d are accepted", count,
                            QUERY_MAX_PARAMS);
    if (count == 0)
        return true;

    char *copy = arena_strdup(arena, raw);
    query_param_t *params = arena_alloc(arena, count * sizeof(*params));
    if (!copy || !params)
        return nn_error_oom(err);

    size_t n = 0;
    char *p = copy;
    while (*p) {
        size_t len = strcspn(p, "&");
        char *next = p[len] ? p + len + 1 : p + len;
        if (len == 0) {
            p = next;
            continue;
        }
        p[len] = '\0';
        char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        char *value = eq ? eq + 1 : p + len; /* "" when there is no "=" */
        size_t value_len = eq ? len - name_len - 1 : 0;

        /* Keep the raw name for messages: the value is decoded first, and
         * the name last, because decoding the name overwrites it. */
        char raw_name[QUERY_QUOTE_MAX + 1];
        size_t raw_name_len = name_len < QUERY_QUOTE_MAX ? name_len : QUERY_QUOTE_MAX;
        memcpy(raw_name, p, raw_name_len);

        size_t decoded;
        decode_status_t st = decode_in_place(value, value_len, &decoded);
        if (st == DECODE_OK) {
            p[name_len] = '\0';
            st = decode_in_place(p, name_len, &decoded);
        }
        if (st != DECODE_OK)
            return decode_error(st, raw_name, raw_name_len, err);
        params[n].name = p;
        params[n].value = value;
        n++;
        p = next;
    }
    q->params = params;
    q->n = n;
    return true;
}

const char *query_next(const query_t *q, const char *name, size_t *pos)
{
    for (size_t i = *pos; i < q->n; i++) {
        if (strcmp(q->params[i].name, name) == 0) {
            *pos = i + 1;
            return q->params[i].value;
        }
    }
    *pos = q->n;
    return NULL;
}

const char *query_get(const query_t *q, const char *name)
{
    size_t pos = 0;
    return query_next(q, name, &pos);
}

size_t query_count(const query_t *q, const char *name)
{
    size_t count = 0;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->params[i].name, name) == 0)
            count++;
    return count;
}

bool query_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s)
        return false;
    bool negative = *s == '-';
    if (negative)
        s++;
    if (*s < '0' || *s > '9')
        return false;
    /* Accumulate as a negative number: its range is one larger, so
     * LLONG_MIN parses without overflow. */
    long long acc = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        int digit = *s - '0';
        if (acc < (LLONG_MIN + digit) / 10)
            return false;
        acc = acc * 10 - digit;
    }
    if (!negative) {
        if (acc == LLONG_MIN)
            return false;
        acc = -acc;
    }
    if (acc < min || acc > max)
        return false;
    *out = acc;
    return true;
}

static bool encode(nn_buf_t *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
                          (keep_slash && c == '/');
        if (unreserved) {
            buf_append_char(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            buf_append(b, esc, sizeof(esc));
        }
    }
    return !b->failed;
}

bool query_percent_encode(nn_buf_t *b, const char *s)
{
    return encode(b, s, false);
}

bool query_percent_encode_path(nn_buf_t *b, const char *path)
{
    return encode(b, path, true);
}
