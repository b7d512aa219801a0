/* multipart.c - resumable multipart/form-data parser.
 *
 * The body is read as RFC 2046 describes it, with one simplification: a
 * CRLF is implied before the first byte, so that the first boundary line
 * ("--B" at the very start) and every later one ("CRLF--B" after data) are
 * the same delimiter "\r\n--B", found by the same scanner.  Bytes before the
 * first delimiter are the preamble (counted, dropped); bytes after a part's
 * headers are its data (handed to on_part_data).
 *
 * The scanner holds back only a possible delimiter prefix at the end of a
 * chunk.  Because the delimiter contains a single CR, at its start (the
 * boundary may not contain CR or LF), a failed partial match can never
 * hide the start of another one: on a mismatch the held bytes are plain
 * data and the scan resumes at the mismatching byte.  Held bytes are always
 * a prefix of the delimiter, so they are re-emitted from the delimiter
 * itself and no chunk is ever copied.
 *
 * After a full delimiter the next byte decides: "--" closes the body,
 * optional spaces/tabs then CRLF open a part; any other byte means the
 * text was data that merely looked like a boundary ("--Bxyz"), and it is
 * passed through.
 */
#include "http/multipart.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/hex.h"
#include "util/utf8.h"

#define MP_DEFAULT_MAX_HEADER_LINE (8 * 1024)
#define MP_DEFAULT_MAX_HEADERS 32
#define MP_DEFAULT_MAX_PARTS 1000
#define MP_DEFAULT_MAX_PREAMBLE (64 * 1024)

/* Header text quoted in error messages is cut at this length. */
#define MP_QUOTE_MAX 80

typedef enum {
    S_SCAN,           /* preamble or part data: looking for the delimiter */
    S_AFTER_BOUNDARY, /* a full delimiter: the next byte decides what it is */
    S_AFTER_DASH,     /* delimiter then "-": a second "-" closes the body */
    S_PADDING,        /* spaces/tabs after a delimiter */
    S_BOUNDARY_CR,    /* CR ending a boundary line: LF must follow */
    S_HEADER,         /* inside (or at the start of) a part header line */
    S_HEADER_CR,      /* CR ending a header line: LF must follow */
    S_DONE,
    S_ERROR,
} mp_state_t;

struct mp_parser {
    mp_limits_t limits;
    mp_callbacks_t callbacks;
    void *ctx;

    char *boundary;
    char *delim; /* "\r\n--" boundary */
    size_t delim_len;

    mp_state_t state;
    bool in_part;      /* S_SCAN is reading part data, not the preamble */
    size_t match;      /* delimiter bytes matched and held back */
    bool virtual_crlf; /* the held bytes start with the implied CRLF */
    size_t preamble_bytes;
    size_t padding;
    size_t nparts;

    /* The headers of the part being read.  The buffers hold at most one
     * header line each (decoding never makes text longer). */
    char *line;
    size_t line_len;
    size_t nheaders;
    char *name;
    char *filename;
    char *content_type;
    bool has_disposition, has_name, has_filename, has_filename_ext, has_content_type;
};

/* ------------------------------------------------------------- helpers */

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Untrusted text for an error message: printable ASCII only, shortened. */
static void quote_text(const char *text, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < MP_QUOTE_MAX && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (len > MP_QUOTE_MAX && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Printable ASCII, space allowed but not last: a superset of RFC 2046's
 * bchars that real clients stay within, and that keeps CR and LF (which
 * the scanner relies on) out. */
static bool boundary_valid(const char *b, size_t len)
{
    if (len == 0 || len > MP_BOUNDARY_MAX || b[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)b[i] < 0x20 || (unsigned char)b[i] > 0x7e)
            return false;
    return true;
}

/* Reads a parameter value at s[*pos]: a quoted-string (backslash escapes
 * honoured) or a run of bytes up to ";" or whitespace.  The unescaped value
 * goes to out (which must hold len bytes) unless out is NULL; *out_len is
 * its length.  false when malformed. */
static bool read_param_value(const char *s, size_t len, size_t *pos, char *out, size_t *out_len)
{
    size_t i = *pos, o = 0;
    if (i < len && s[i] == '"') {
        i++;
        for (;;) {
            if (i == len)
                return false; /* unterminated */
            char c = s[i++];
            if (c == '"')
                break;
            if (c == '\\') {
                if (i == len)
                    return false;
                c = s[i++];
            }
            if (out)
                out[o] = c;
            o++;
        }
    } else {
        size_t start = i;
        while (i < len && s[i] != ';' && !is_ows((unsigned char)s[i])) {
            if (s[i] == '"' || s[i] == '\\')
                return false;
            if (out)
                out[o] = s[i];
            o++;
            i++;
        }
        if (i == start)
            return false;
    }
    *pos = i;
    *out_len = o;
    return true;
}

/* Splits "type/subtype; p1=v1; p2="v2"" parameter by parameter.  Calls
 * fn(arg, name, name_len, s, value_pos) positioned on each value; fn must
 * advance *value_pos past the value.  Returns false on a syntax error. */
typedef bool (*param_fn)(void *arg, const char *name, size_t name_len, const char *s, size_t len,
                         size_t *pos);

static bool each_param(const char *s, size_t len, size_t pos, param_fn fn, void *arg)
{
    for (;;) {
        while (pos < len && is_ows((unsigned char)s[pos]))
            pos++;
        if (pos == len)
            return true;
        if (s[pos] != ';')
            return false;
        pos++;
        while (pos < len && is_ows((unsigned char)s[pos]))
            pos++;
        if (pos == len)
            return true; /* a trailing ";" is harmless */
        size_t name_start = pos;
        while (pos < len && is_tchar((unsigned char)s[pos]))
            pos++;
        size_t name_len = pos - name_start;
        while (pos < len && is_ows((unsigned char)s[pos]))
            pos++;
        if (name_len == 0 || pos == len || s[pos] != '=')
            return false;
        pos++;
        while (pos < len && is_ows((unsigned char)s[pos]))
            pos++;
        if (!fn(arg, s + name_start, name_len, s, len, &pos))
            return false;
    }
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* ------------------------------------------------------ boundary header */

typedef struct ct_params {
    char *boundary; /* scratch of the header's length */
    size_t boundary_len;
    bool has_boundary;
    bool duplicate;
} ct_params_t;

static bool ct_param(void *arg, const char *name, size_t name_len, const char *s, size_t len,
                     size_t *pos)
{
    ct_params_t *ct = arg;
    if (!name_is(name, name_len, "boundary")) {
        size_t ignored;
        return read_param_value(s, len, pos, NULL, &ignored);
    }
    if (ct->has_boundary) {
        ct->duplicate = true;
        return false;
    }
    ct->has_boundary = true;
    return read_param_value(s, len, pos, ct->boundary, &ct->boundary_len);
}

bool mp_boundary_from_content_type(arena_t *arena, const char *content_type, char **boundary,
                                   nn_error_t *err)
{
    if (!content_type || !*content_type)
        return nn_error_set(err, 415, "unsupported_media_type",
                            "the request has no Content-Type; send multipart/form-data");
    size_t len = strlen(content_type);
    size_t pos = 0;
    while (pos < len && is_ows((unsigned char)content_type[pos]))
        pos++;
    size_t type_start = pos;
    while (pos < len && (is_tchar((unsigned char)content_type[pos]) || content_type[pos] == '/'))
        pos++;
    if (!name_is(content_type + type_start, pos - type_start, "multipart/form-data")) {
        char quoted[MP_QUOTE_MAX + 4];
        quote_text(content_type + type_start, pos - type_start, quoted, sizeof(quoted));
        return nn_error_set(err, 415, "unsupported_media_type",
                            "Content-Type \"%s\" is not accepted here; send multipart/form-data",
                            quoted);
    }

    ct_params_t ct = {.boundary = arena_alloc(arena, len + 1)};
    if (!ct.boundary)
        return nn_error_oom(err);
    if (!each_param(content_type, len, pos, ct_param, &ct)) {
        if (ct.duplicate)
            return nn_error_set(err, 400, "invalid_multipart",
                                "the Content-Type names the boundary twice; give it once");
        return nn_error_set(err, 400, "invalid_multipart",
                            "the Content-Type parameters are malformed; write "
                            "multipart/form-data; boundary=<boundary>");
    }
    if (!ct.has_boundary)
        return nn_error_set(err, 400, "invalid_multipart",
                            "the Content-Type multipart/form-data has no boundary parameter; add "
                            "boundary=<the string that separates the parts>");
    if (ct.boundary_len == 0 || ct.boundary_len > MP_BOUNDARY_MAX)
        return nn_error_set(err, 400, "invalid_multipart",
                            "the multipart boundary must be 1 to %d characters long, not %zu",
                            MP_BOUNDARY_MAX, ct.boundary_len);
    if (!boundary_valid(ct.boundary, ct.boundary_len))
        return nn_error_set(err, 400, "invalid_multipart",
                            "the multipart boundary may hold only printable ASCII characters and "
                            "may not end with a space");
    ct.boundary[ct.boundary_len] = '\0';
    *boundary = ct.boundary;
    return true;
}

/* --------------------------------------------------------------- parser */

mp_parser_t *mp_parser_create(arena_t *arena, const char *boundary, const mp_limits_t *limits,
                              const mp_callbacks_t *callbacks, void *ctx)
{
    size_t blen = strlen(boundary);
    /* An invalid boundary would break the scanner's assumptions; callers
     * get theirs from mp_boundary_from_content_type, so this is a bug. */
    if (!boundary_valid(boundary, blen))
        return NULL;
    mp_parser_t *p = arena_calloc(arena, 1, sizeof(*p));
    if (!p)
        return NULL;
    p->limits.max_header_line = MP_DEFAULT_MAX_HEADER_LINE;
    p->limits.max_headers = MP_DEFAULT_MAX_HEADERS;
    p->limits.max_parts = MP_DEFAULT_MAX_PARTS;
    p->limits.max_preamble = MP_DEFAULT_MAX_PREAMBLE;
    if (limits) { /* a zero limit means "the default" */
        if (limits->max_header_line)
            p->limits.max_header_line = limits->max_header_line;
        if (limits->max_headers)
            p->limits.max_headers = limits->max_headers;
        if (limits->max_parts)
            p->limits.max_parts = limits->max_parts;
        if (limits->max_preamble)
            p->limits.max_preamble = limits->max_preamble;
    }
    if (p->limits.max_header_line > SIZE_MAX / 8)
        return NULL;
    if (callbacks)
        p->callbacks = *callbacks;
    p->ctx = ctx;
    p->boundary = arena_strdup(arena, boundary);
    p->delim = arena_printf(arena, "\r\n--%s", boundary);
    size_t cap = p->limits.max_header_line + 1;
    p->line = arena_alloc(arena, cap);
    p->name = arena_alloc(arena, cap);
    p->filename = arena_alloc(arena, cap);
    p->content_type = arena_alloc(arena, cap);
    if (!p->boundary || !p->delim || !p->line || !p->name || !p->filename || !p->content_type)
        return NULL;
    p->delim_len = blen + 4;
    p->state = S_SCAN;
    /* The implied CRLF before the body: already matched. */
    p->match = 2;
    p->virtual_crlf = true;
    return p;
}

static bool callback_failed(nn_error_t *err)
{
    if (!nn_error_is_set(err))
        nn_error_internal(err, "a multipart callback failed without saying why");
    return false;
}

/* Hands data to the part, or counts it as preamble. */
static bool emit(mp_parser_t *p, const char *data, size_t len, nn_error_t *err)
{
    if (len == 0)
        return true;
    if (!p->in_part) {
        if (len > p->limits.max_preamble - p->preamble_bytes)
            return nn_error_set(err, 400, "invalid_multipart",
                                "more than %zu bytes come before the first boundary \"--%s\"; "
                                "check that the body matches the Content-Type boundary",
                                p->limits.max_preamble, p->boundary);
        p->preamble_bytes += len;
        return true;
    }
    if (p->callbacks.on_part_data && !p->callbacks.on_part_data(p->ctx, data, len, err))
        return callback_failed(err);
    return true;
}

/* Emits the first n held delimiter bytes as data: they turned out not to
 * be a delimiter.  The implied CRLF is not real data and is dropped. */
static bool emit_held(mp_parser_t *p, size_t n, nn_error_t *err)
{
    const char *data = p->delim;
    if (p->virtual_crlf) {
        data += 2;
        n -= 2;
        p->virtual_crlf = false;
    }
    return emit(p, data, n, err);
}

/* Scans buf[*pos..len) for the delimiter, emitting data in runs as long as
 * the chunk allows.  Stops after a full delimiter (state S_AFTER_BOUNDARY)
 * or at the end of the chunk. */
static bool scan(mp_parser_t *p, const char *buf, size_t len, size_t *pos, nn_error_t *err)
{
    size_t i = *pos;
    size_t run = i;          /* start of the data run not yet emitted */
    size_t carry = p->match; /* held bytes that came before this chunk */
    size_t match_start = i;  /* where the match began, when carry == 0 */

    while (i < len) {
        if (p->match == 0) {
            const char *cr = memchr(buf + i, '\r', len - i);
            if (!cr) {
                i = len;
                break;
            }
            i = (size_t)(cr - buf);
            match_start = i;
            p->match = 1;
            i++;
            continue;
        }
        if (buf[i] == p->delim[p->match]) {
            p->match++;
            i++;
            if (p->match == p->delim_len) {
                /* With carry, the whole match lies before i and the data
                 * before it was emitted with the previous chunk. */
                if (carry == 0 && !emit(p, buf + run, match_start - run, err))
                    return false;
                p->match = 0;
                p->state = S_AFTER_BOUNDARY;
                *pos = i;
                return true;
            }
            continue;
        }
        /* Mismatch: the held bytes are data; the current byte is looked
         * at again since it may be the CR of a real delimiter. */
        if (carry > 0) {
            if (!emit_held(p, carry, err))
                return false;
            carry = 0;
        }
        p->match = 0;
    }

    size_t end = len;
    if (p->match > 0)
        end = carry > 0 ? run : match_start; /* hold the possible prefix back */
    if (!emit(p, buf + run, end - run, err))
        return false;
    *pos = len;
    return true;
}

static bool fail(mp_parser_t *p, nn_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(mp_parser_t *p, nn_error_t *err, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    (void)p;
    return nn_error_set(err, 400, "invalid_multipart", "%s", message);
}

/* The boundary line ended in a real delimiter: the part before it ends. */
static bool confirm_delimiter(mp_parser_t *p, nn_error_t *err)
{
    p->virtual_crlf = false;
    if (!p->in_part)
        return true;
    p->in_part = false;
    if (p->callbacks.on_part_end && !p->callbacks.on_part_end(p->ctx, err))
        return callback_failed(err);
    return true;
}

/* The text after "--B" was not a boundary line after all: the delimiter
 * (and extra bytes already consumed) are data. */
static bool reject_delimiter(mp_parser_t *p, const char *extra, size_t extra_len, nn_error_t *err)
{
    if (!emit_held(p, p->delim_len, err) || !emit(p, extra, extra_len, err))
        return false;
    p->match = 0;
    p->state = S_SCAN;
    return true;
}

static bool begin_headers(mp_parser_t *p, nn_error_t *err)
{
    if (p->nparts == p->limits.max_parts)
        return fail(p, err, "the body has more than %zu parts", p->limits.max_parts);
    p->nparts++;
    p->line_len = 0;
    p->nheaders = 0;
    p->has_disposition = p->has_name = p->has_filename = false;
    p->has_filename_ext = p->has_content_type = false;
    p->state = S_HEADER;
    return true;
}

/* filename*=charset'language'percent-encoded (RFC 5987/8187), decoded in
 * place.  Only UTF-8 is accepted: it is what every current client sends. */
static bool decode_ext_value(mp_parser_t *p, char *s, size_t *len, nn_error_t *err)
{
    size_t n = *len;
    char *q1 = memchr(s, '\'', n);
    char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - s)) : NULL;
    if (!q2)
        return fail(p, err, "part %zu: filename* must look like filename*=UTF-8''name%%20encoded",
                    p->nparts);
    if (!name_is(s, (size_t)(q1 - s), "utf-8")) {
        char quoted[MP_QUOTE_MAX + 4];
        quote_text(s, (size_t)(q1 - s), quoted, sizeof(quoted));
        return fail(p, err, "part %zu: filename* uses the charset \"%s\"; only UTF-8 is accepted",
                    p->nparts, quoted);
    }
    size_t o = 0;
    for (size_t i = (size_t)(q2 + 1 - s); i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_digit_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit_value((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return fail(p, err,
                            "part %zu: filename* has a \"%%\" not followed by two hex digits",
                            p->nparts);
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return fail(p, err, "part %zu: filename* contains %%00", p->nparts);
            i += 2;
        }
        s[o++] = c;
    }
    *len = o;
    return true;
}

typedef struct cd_state {
    mp_parser_t *p;
    nn_error_t *err;
    bool reported; /* err is already filled */
} cd_state_t;

static bool cd_param(void *arg, const char *name, size_t name_len, const char *s, size_t len,
                     size_t *pos)
{
    cd_state_t *cd = arg;
    mp_parser_t *p = cd->p;
    size_t value_len;
    if (name_is(name, name_len, "name")) {
        if (p->has_name) {
            cd->reported = true;
            return fail(p, cd->err, "part %zu names itself twice in Content-Disposition",
                        p->nparts);
        }
        if (!read_param_value(s, len, pos, p->name, &value_len))
            return false;
        p->name[value_len] = '\0';
        p->has_name = true;
        if (!utf8_valid(p->name, value_len)) {
            cd->reported = true;
            return fail(p, cd->err, "part %zu: its name is not valid UTF-8", p->nparts);
        }
        return true;
    }
    if (name_is(name, name_len, "filename*")) {
        if (p->has_filename_ext) {
            cd->reported = true;
            return fail(p, cd->err, "part %zu has two filename* parameters", p->nparts);
        }
        if (!read_param_value(s, len, pos, p->filename, &value_len))
            return false;
        /* Decoded after reading: a quoted ext-value is not standard, but
         * unquoting first accepts it at no cost. */
        if (!decode_ext_value(p, p->filename, &value_len, cd->err)) {
            cd->reported = true;
            return false;
        }
        p->filename[value_len] = '\0';
        p->has_filename_ext = true;
        if (!utf8_valid(p->filename, value_len)) {
            cd->reported = true;
            return fail(p, cd->err, "part %zu: its filename* is not valid UTF-8", p->nparts);
        }
        return true;
    }
    if (name_is(name, name_len, "filename")) {
        if (p->has_filename) {
            cd->reported = true;
            return fail(p, cd->err, "part %zu has two filename parameters", p->nparts);
        }
        p->has_filename = true;
        /* filename* wins when both are given (RFC 6266 section 4.3). */
        char *out = p->has_filename_ext ? NULL : p->filename;
        if (!read_param_value(s, len, pos, out, &value_len))
            return false;
        if (out) {
            out[value_len] = '\0';
            if (!utf8_valid(out, value_len)) {
                cd->reported = true;
                return fail(p, cd->err,
                            "part %zu: its filename is not valid UTF-8; send it as "
                            "filename*=UTF-8''…",
                            p->nparts);
            }
        }
        return true;
    }
    return read_param_value(s, len, pos, NULL, &value_len);
}

static bool parse_disposition(mp_parser_t *p, const char *value, size_t len, nn_error_t *err)
{
    if (p->has_disposition)
        return fail(p, err, "part %zu has two Content-Disposition headers", p->nparts);
    p->has_disposition = true;
    size_t pos = 0;
    while (pos < len && is_tchar((unsigned char)value[pos]))
        pos++;
    if (!name_is(value, pos, "form-data")) {
        char quoted[MP_QUOTE_MAX + 4];
        quote_text(value, pos, quoted, sizeof(quoted));
        return fail(p, err, "part %zu: Content-Disposition is \"%s\", not form-data", p->nparts,
                    quoted);
    }
    cd_state_t cd = {.p = p, .err = err};
    if (!each_param(value, len, pos, cd_param, &cd)) {
        if (cd.reported)
            return false;
        char quoted[MP_QUOTE_MAX + 4];
        quote_text(value, len, quoted, sizeof(quoted));
        return fail(p, err, "part %zu: malformed Content-Disposition \"%s\"", p->nparts, quoted);
    }
    return true;
}

static bool header_line(mp_parser_t *p, nn_error_t *err)
{
    const char *line = p->line;
    size_t len = p->line_len;
    if (p->nheaders == p->limits.max_headers)
        return fail(p, err, "part %zu has more than %zu header lines", p->nparts,
                    p->limits.max_headers);
    p->nheaders++;

    size_t colon = 0;
    while (colon < len && is_tchar((unsigned char)line[colon]))
        colon++;
    if (colon == 0 || colon == len || line[colon] != ':') {
        char quoted[MP_QUOTE_MAX + 4];
        quote_text(line, len, quoted, sizeof(quoted));
        return fail(p, err, "part %zu: malformed header line \"%s\"", p->nparts, quoted);
    }
    size_t start = colon + 1, end = len;
    while (start < end && is_ows((unsigned char)line[start]))
        start++;
    while (end > start && is_ows((unsigned char)line[end - 1]))
        end--;

    if (name_is(line, colon, "Content-Disposition"))
        return parse_disposition(p, line + start, end - start, err);
    if (name_is(line, colon, "Content-Type")) {
        if (p->has_content_type)
            return fail(p, err, "part %zu has two Content-Type headers", p->nparts);
        memcpy(p->content_type, line + start, end - start);
        p->content_type[end - start] = '\0';
        p->has_content_type = true;
    }
    return true; /* other headers (Content-Transfer-Encoding…) are ignored */
}

static bool end_headers(mp_parser_t *p, nn_error_t *err)
{
    mp_part_t part = {
        .name = p->has_name ? p->name : NULL,
        .filename = (p->has_filename_ext || p->has_filename) ? p->filename : NULL,
        .content_type = p->has_content_type ? p->content_type : NULL,
        .index = p->nparts - 1,
    };
    if (p->callbacks.on_part_begin && !p->callbacks.on_part_begin(p->ctx, &part, err))
        return callback_failed(err);
    p->in_part = true;
    p->match = 0;
    p->state = S_SCAN;
    return true;
}

static bool bare_lf(mp_parser_t *p, nn_error_t *err, const char *where)
{
    return fail(p, err, "%s ends with a bare LF; multipart lines must end with CRLF", where);
}

/* One byte in any state but S_SCAN.  *consumed is false when the byte
 * must be looked at again in the new state. */
static bool step(mp_parser_t *p, unsigned char c, bool *consumed, nn_error_t *err)
{
    *consumed = true;
    switch (p->state) {
    case S_AFTER_BOUNDARY:
        if (c == '-') {
            p->state = S_AFTER_DASH;
            return true;
        }
        if (is_ows(c)) {
            p->padding = 1;
            p->state = S_PADDING;
            return confirm_delimiter(p, err);
        }
        if (c == '\r') {
            p->state = S_BOUNDARY_CR;
            return confirm_delimiter(p, err);
        }
        if (c == '\n')
            return bare_lf(p, err, "a boundary line");
        *consumed = false;
        return reject_delimiter(p, NULL, 0, err);
    case S_AFTER_DASH:
        if (c == '-') {
            if (!confirm_delimiter(p, err))
                return false;
            p->state = S_DONE;
            return true;
        }
        *consumed = false;
        return reject_delimiter(p, "-", 1, err);
    case S_PADDING:
        if (is_ows(c)) {
            if (++p->padding > p->limits.max_header_line)
                return fail(p, err, "a boundary line is followed by more than %zu spaces",
                            p->limits.max_header_line);
            return true;
        }
        if (c == '\r') {
            p->state = S_BOUNDARY_CR;
            return true;
        }
        if (c == '\n')
            return bare_lf(p, err, "a boundary line");
        return fail(p, err, "a boundary line \"--%s\" is followed by other text", p->boundary);
    case S_BOUNDARY_CR:
        if (c != '\n')
            return fail(p, err, "a boundary line ends with CR not followed by LF");
        return begin_headers(p, err);
    case S_HEADER:
        if (c == '\r') {
            p->state = S_HEADER_CR;
            return true;
        }
        if (c == '\n')
            return bare_lf(p, err, "a part header line");
        if (p->line_len == 0 && is_ows(c))
            return fail(p, err,
                        "part %zu: a header line starts with whitespace; folded header lines "
                        "are not supported",
                        p->nparts);
        if (is_ctl(c))
            return fail(p, err, "part %zu: a header line contains a control character", p->nparts);
        if (p->line_len == p->limits.max_header_line)
            return fail(p, err, "part %zu: a header line is longer than %zu bytes", p->nparts,
                        p->limits.max_header_line);
        p->line[p->line_len++] = (char)c;
        return true;
    case S_HEADER_CR:
        if (c != '\n')
            return fail(p, err, "part %zu: a header line has a CR not followed by LF", p->nparts);
        if (p->line_len == 0)
            return end_headers(p, err);
        if (!header_line(p, err))
            return false;
        p->line_len = 0;
        p->state = S_HEADER;
        return true;
    case S_SCAN:
    case S_DONE:
    case S_ERROR:
        break;
    }
    return nn_error_internal(err, "multipart parser in an impossible state");
}

mp_status_t mp_parser_feed(mp_parser_t *p, const char *data, size_t len, nn_error_t *err)
{
    if (p->state == S_DONE)
        return MP_DONE;
    if (p->state == S_ERROR) {
        nn_error_set(err, 400, "invalid_multipart", "the multipart body was already refused");
        return MP_ERROR;
    }
    size_t i = 0;
    while (i < len) {
        bool ok;
        if (p->state == S_SCAN) {
            ok = scan(p, data, len, &i, err);
        } else {
            bool consumed;
            ok = step(p, (unsigned char)data[i], &consumed, err);
            if (consumed)
                i++;
        }
        if (!ok) {
            p->state = S_ERROR;
            if (!nn_error_is_set(err))
                nn_error_internal(err, "multipart parser failed without an error");
            return MP_ERROR;
        }
        if (p->state == S_DONE)
            return MP_DONE; /* the epilogue is ignored */
    }
    return MP_NEED_MORE;
}

mp_status_t mp_parser_finish(mp_parser_t *p, nn_error_t *err)
{
    if (p->state == S_DONE)
        return MP_DONE;
    if (p->state == S_ERROR) {
        nn_error_set(err, 400, "invalid_multipart", "the multipart body was already refused");
        return MP_ERROR;
    }
    if (p->nparts == 0 && p->state == S_SCAN)
        nn_error_set(err, 400, "invalid_multipart",
                     "the body has no boundary line \"--%s\"; check that the body matches the "
                     "Content-Type boundary",
                     p->boundary);
    else
        nn_error_set(err, 400, "invalid_multipart",
                     "the body ends before the closing boundary \"--%s--\"", p->boundary);
    p->state = S_ERROR;
    return MP_ERROR;
}
