/* jv.c - JSON value tree in an arena.
 *
 * Parsing goes through yajl's callback parser, which is not recursive; the
 * tree is built with an explicit stack bounded by JV_MAX_DEPTH, so hostile
 * nesting costs neither C stack nor unbounded memory.  The functions that
 * walk a tree (jv_gen, jv_copy) do recurse, bounded by JV_WALK_MAX_DEPTH:
 * trees built in code (form fields merged at a path) may be a little deeper
 * than parsed ones, and yajl's generator refuses anything deeper anyway.
 */
#include "json/jv.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "util/buf.h"
#include "util/utf8.h"

/* yajl's generator stops at 128 levels (YAJL_MAX_DEPTH); nothing deeper
 * could be written out, so nothing deeper is walked. */
#define JV_WALK_MAX_DEPTH 128

/* Objects up to this size compare keys pairwise when looking for a
 * repeated key after parsing; larger ones sort their keys (see
 * object_check_keys). */
#define JV_DEDUPE_LINEAR_MAX 32

/* ------------------------------------------------------------ building */

static jv_t *node_new(arena_t *arena, jv_type_t type)
{
    jv_t *v = arena_calloc(arena, 1, sizeof(*v));
    if (v)
        v->type = type;
    return v;
}

jv_t *jv_null(arena_t *arena)
{
    return node_new(arena, JV_NULL);
}

jv_t *jv_bool(arena_t *arena, bool value)
{
    jv_t *v = node_new(arena, JV_BOOL);
    if (v)
        v->u.boolean = value;
    return v;
}

/* The shortest of %.15g … %.17g that reads back as the same double: exact
 * like %.17g, but 0.1 stays "0.1" instead of "0.10000000000000001". */
static char *double_text(arena_t *arena, double value)
{
    char text[40];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            break;
    }
    return arena_strdup(arena, text);
}

jv_t *jv_number(arena_t *arena, double value)
{
    jv_t *v = node_new(arena, JV_NUMBER);
    if (!v)
        return NULL;
    v->u.number.value = value;
    /* NaN and infinities have no JSON spelling: text stays NULL and
     * jv_gen() reports them as a generator error instead of writing
     * "nan" into a response. */
    if (isfinite(value)) {
        v->u.number.text = double_text(arena, value);
        if (!v->u.number.text)
            return NULL;
    }
    return v;
}

jv_t *jv_number_int(arena_t *arena, long long value)
{
    jv_t *v = node_new(arena, JV_NUMBER);
    if (!v)
        return NULL;
    v->u.number.value = (double)value;
    v->u.number.text = arena_printf(arena, "%lld", value);
    return v->u.number.text ? v : NULL;
}

jv_t *jv_string(arena_t *arena, const char *s, size_t len)
{
    jv_t *v = node_new(arena, JV_STRING);
    if (!v)
        return NULL;
    char *copy = arena_strndup(arena, s, len);
    if (!copy)
        return NULL;
    v->u.string.ptr = copy;
    v->u.string.len = len;
    return v;
}

jv_t *jv_cstring(arena_t *arena, const char *s)
{
    return jv_string(arena, s, strlen(s));
}

jv_t *jv_array(arena_t *arena)
{
    return node_new(arena, JV_ARRAY);
}

jv_t *jv_object(arena_t *arena)
{
    return node_new(arena, JV_OBJECT);
}

/* The capacity after cap when one more slot is needed: doubling keeps
 * appends amortized O(1) (the arena never frees the old array, so the
 * waste is bounded by the final size). 0 on overflow. */
static size_t grow_cap(size_t cap, size_t elem_size)
{
    size_t next = cap ? cap * 2 : 4;
    if (next < cap || next > SIZE_MAX / elem_size)
        return 0;
    return next;
}

static bool array_push(arena_t *arena, jv_t *arr, jv_t *value)
{
    if (arr->u.array.n == arr->u.array.cap) {
        size_t cap = grow_cap(arr->u.array.cap, sizeof(jv_t *));
        if (!cap)
            return false;
        jv_t **items = arena_realloc(arena, arr->u.array.items, arr->u.array.n * sizeof(jv_t *),
                                     cap * sizeof(jv_t *));
        if (!items)
            return false;
        arr->u.array.items = items;
        arr->u.array.cap = cap;
    }
    arr->u.array.items[arr->u.array.n++] = value;
    return true;
}

/* Appends key (not copied) without looking for an existing one. */
static bool object_push(arena_t *arena, jv_t *obj, const char *key, jv_t *value)
{
    if (obj->u.object.n == obj->u.object.cap) {
        size_t cap = grow_cap(obj->u.object.cap, sizeof(jv_t *));
        if (!cap)
            return false;
        size_t n = obj->u.object.n;
        const char **keys =
            arena_realloc(arena, obj->u.object.keys, n * sizeof(char *), cap * sizeof(char *));
        jv_t **values =
            arena_realloc(arena, obj->u.object.values, n * sizeof(jv_t *), cap * sizeof(jv_t *));
        if (!keys || !values)
            return false;
        obj->u.object.keys = keys;
        obj->u.object.values = values;
        obj->u.object.cap = cap;
    }
    obj->u.object.keys[obj->u.object.n] = key;
    obj->u.object.values[obj->u.object.n] = value;
    obj->u.object.n++;
    return true;
}

static bool object_find(const jv_t *obj, const char *key, size_t *index)
{
    for (size_t i = 0; i < obj->u.object.n; i++) {
        if (strcmp(obj->u.object.keys[i], key) == 0) {
            *index = i;
            return true;
        }
    }
    return false;
}

jv_t *jv_get(const jv_t *obj, const char *key)
{
    size_t i;
    if (!obj || obj->type != JV_OBJECT || !object_find(obj, key, &i))
        return NULL;
    return obj->u.object.values[i];
}

bool jv_set(arena_t *arena, jv_t *obj, const char *key, jv_t *value)
{
    if (!obj || obj->type != JV_OBJECT || !value)
        return false;
    size_t i;
    if (object_find(obj, key, &i)) {
        obj->u.object.values[i] = value;
        return true;
    }
    char *copy = arena_strdup(arena, key);
    return copy && object_push(arena, obj, copy, value);
}

void jv_remove(jv_t *obj, const char *key)
{
    size_t i;
    if (!obj || obj->type != JV_OBJECT || !object_find(obj, key, &i))
        return;
    /* Shift down rather than swap with the last: key order is what the
     * client sent and what responses show. */
    size_t tail = obj->u.object.n - i - 1;
    memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1], tail * sizeof(char *));
    memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1], tail * sizeof(jv_t *));
    obj->u.object.n--;
}

bool jv_append(arena_t *arena, jv_t *arr, jv_t *value)
{
    if (!arr || arr->type != JV_ARRAY || !value)
        return false;
    return array_push(arena, arr, value);
}

bool jv_put(arena_t *arena, jv_t *arr, size_t index, jv_t *value)
{
    if (!arr || arr->type != JV_ARRAY || !value)
        return false;
    if (index < arr->u.array.n) {
        arr->u.array.items[index] = value;
        return true;
    }
    while (arr->u.array.n < index) {
        jv_t *pad = jv_null(arena);
        if (!pad || !array_push(arena, arr, pad))
            return false;
    }
    return array_push(arena, arr, value);
}

/* ------------------------------------------------------------- parsing */

typedef enum {
    PARSE_OK,
    PARSE_OOM,
    PARSE_TOO_DEEP,
    PARSE_NUL_CHAR,
    PARSE_BAD_UTF8,      /* a string yajl let through that RFC 3629 forbids */
    PARSE_BAD_UTF8_KEY,  /* the same in a key */
    PARSE_DUPLICATE_KEY,
} parse_failure_t;

typedef struct parse_ctx {
    arena_t *arena;
    jv_t *root;
    jv_t *stack[JV_MAX_DEPTH]; /* open containers, innermost last */
    /* How stack[d] hangs from stack[d - 1] (d >= 1): by this key when the
     * parent is an object, else at its index.  Only read to name the place
     * of an error, so that it can say "metadata.tags[2]" and not just a
     * byte offset. */
    const char *reach_key[JV_MAX_DEPTH];
    size_t reach_index[JV_MAX_DEPTH];
    size_t depth;
    const char *key; /* the key waiting for its value inside an object */
    const char *base; /* path of the text's root for messages ("" or NULL: none) */
    parse_failure_t failure;
    const char *duplicate; /* PARSE_DUPLICATE_KEY: the key given twice */
} parse_ctx_t;

/* yajl callbacks return 0 to stop the parse; the reason is kept in ctx. */
static int parse_fail(parse_ctx_t *ctx, parse_failure_t failure)
{
    ctx->failure = failure;
    return 0;
}

/* Appends one path step: ".key" (no dot at the start) or "[index]". */
static void path_step(nn_buf_t *b, const char *key, size_t index)
{
    if (key)
        buf_appendf(b, "%s%s", b->len ? "." : "", key);
    else
        buf_appendf(b, "[%zu]", index);
}

/* The path of the container at stack[depth - 1], or of the value being
 * parsed inside it when inner is true: API.md's field path form
 * ("preprocessing.inputs[0].image"), prefixed with ctx->base.  "" for the
 * root; NULL when out of memory. */
static const char *parse_path(const parse_ctx_t *ctx, bool inner)
{
    nn_buf_t b;
    buf_init(&b, ctx->arena);
    if (ctx->base)
        buf_append_str(&b, ctx->base);
    for (size_t d = 1; d < ctx->depth; d++)
        path_step(&b, ctx->stack[d - 1]->type == JV_OBJECT ? ctx->reach_key[d] : NULL,
                  ctx->reach_index[d]);
    if (inner && ctx->depth > 0) {
        const jv_t *top = ctx->stack[ctx->depth - 1];
        if (top->type == JV_ARRAY)
            path_step(&b, NULL, top->u.array.n);
        else if (ctx->key)
            path_step(&b, ctx->key, 0);
    }
    return buf_cstr(&b);
}

static int add_value(parse_ctx_t *ctx, jv_t *value)
{
    if (!value)
        return parse_fail(ctx, PARSE_OOM);
    if (ctx->depth == 0) {
        ctx->root = value;
        return 1;
    }
    jv_t *top = ctx->stack[ctx->depth - 1];
    bool ok;
    if (top->type == JV_ARRAY) {
        ok = array_push(ctx->arena, top, value);
    } else {
        /* Duplicate keys are resolved once the object is complete (see
         * object_dedupe) to keep this step O(1). */
        ok = object_push(ctx->arena, top, ctx->key, value);
        ctx->key = NULL;
    }
    return ok ? 1 : parse_fail(ctx, PARSE_OOM);
}

static int on_null(void *ctx)
{
    parse_ctx_t *pc = ctx;
    return add_value(pc, jv_null(pc->arena));
}

static int on_boolean(void *ctx, int value)
{
    parse_ctx_t *pc = ctx;
    return add_value(pc, jv_bool(pc->arena, value != 0));
}

static int on_number(void *ctx, const char *text, size_t len)
{
    parse_ctx_t *pc = ctx;
    jv_t *v = node_new(pc->arena, JV_NUMBER);
    char *copy = arena_strndup(pc->arena, text, len);
    if (!v || !copy)
        return parse_fail(pc, PARSE_OOM);
    /* yajl's lexer has already checked the JSON number grammar, so strtod
     * reads all of it; out-of-range values become ±HUGE_VAL or 0 while the
     * text keeps what the client wrote. */
    v->u.number.value = strtod(copy, NULL);
    v->u.number.text = copy;
    return add_value(pc, v);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    parse_ctx_t *pc = ctx;
    /* Strings end up in C strings, text columns and JSONB, none of which
     * can hold U+0000: refuse it here rather than truncate it later. */
    if (memchr(s, '\0', len))
        return parse_fail(pc, PARSE_NUL_CHAR);
    /* yajl's own check lets surrogates, overlong forms and code points
     * past U+10FFFF through; PostgreSQL refuses them at the INSERT. */
    if (!utf8_valid((const char *)s, len))
        return parse_fail(pc, PARSE_BAD_UTF8);
    return add_value(pc, jv_string(pc->arena, (const char *)s, len));
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
    parse_ctx_t *pc = ctx;
    if (memchr(s, '\0', len))
        return parse_fail(pc, PARSE_NUL_CHAR);
    if (!utf8_valid((const char *)s, len))
        return parse_fail(pc, PARSE_BAD_UTF8_KEY);
    pc->key = arena_strndup(pc->arena, (const char *)s, len);
    return pc->key ? 1 : parse_fail(pc, PARSE_OOM);
}

static int open_container(parse_ctx_t *ctx, jv_t *container)
{
    if (ctx->depth == JV_MAX_DEPTH)
        return parse_fail(ctx, PARSE_TOO_DEEP);
    if (ctx->depth > 0) {
        const jv_t *parent = ctx->stack[ctx->depth - 1];
        ctx->reach_key[ctx->depth] = parent->type == JV_OBJECT ? ctx->key : NULL;
        ctx->reach_index[ctx->depth] = parent->type == JV_ARRAY ? parent->u.array.n : 0;
    }
    if (!add_value(ctx, container))
        return 0;
    ctx->stack[ctx->depth++] = container;
    return 1;
}

static int on_start_map(void *ctx)
{
    parse_ctx_t *pc = ctx;
    return open_container(pc, jv_object(pc->arena));
}

static int on_start_array(void *ctx)
{
    parse_ctx_t *pc = ctx;
    return open_container(pc, jv_array(pc->arena));
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* JSON (RFC 8259 4) leaves an object with a repeated key to each parser,
 * and parsers disagree (first value, last value, error): a body meant one
 * way could be read another way by some other component.  So a repeated
 * key is refused; the repeated key is kept in ctx->duplicate.  Small
 * objects compare keys pairwise; larger ones sort a copy of the key
 * pointers and compare neighbours: O(n log n) whatever the keys are (a
 * hash table would be linear on average but quadratic on keys crafted to
 * collide).  false on OOM or a repeat (ctx->failure says which). */
static bool object_check_keys(parse_ctx_t *ctx, const jv_t *obj)
{
    size_t n = obj->u.object.n;
    const char **keys = obj->u.object.keys;
    if (n < 2)
        return true;
    if (n <= JV_DEDUPE_LINEAR_MAX) {
        for (size_t i = 1; i < n; i++) {
            for (size_t k = 0; k < i; k++) {
                if (strcmp(keys[k], keys[i]) == 0) {
                    ctx->duplicate = keys[i];
                    return parse_fail(ctx, PARSE_DUPLICATE_KEY);
                }
            }
        }
        return true;
    }
    const char **sorted = arena_alloc(ctx->arena, n * sizeof(*sorted));
    if (!sorted)
        return parse_fail(ctx, PARSE_OOM);
    memcpy(sorted, keys, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), compare_keys);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            ctx->duplicate = sorted[i];
            return parse_fail(ctx, PARSE_DUPLICATE_KEY);
        }
    }
    return true;
}

static int on_end_map(void *ctx)
{
    parse_ctx_t *pc = ctx;
    /* Checked while the object is still on the stack, so that the error
     * can name its path. */
    if (!object_check_keys(pc, pc->stack[pc->depth - 1]))
        return 0;
    pc->depth--;
    return 1;
}

static int on_end_array(void *ctx)
{
    parse_ctx_t *pc = ctx;
    pc->depth--;
    return 1;
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number, /* given the text, yajl skips integer/double */
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* yajl's non-verbose message reads "parse error: premature EOF\n"; keep the
 * reason only, without the category, final period and newline. */
static void yajl_reason(yajl_handle h, const char *text, size_t len, char *out, size_t cap)
{
    unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
    const char *reason = msg ? (const char *)msg : "malformed JSON";
    const char *colon = strstr(reason, ": ");
    if (colon)
        reason = colon + 2;
    size_t n = strlen(reason);
    while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == '.' || reason[n - 1] == ' '))
        n--;
    snprintf(out, cap, "%.*s", (int)n, reason);
    if (msg)
        yajl_free_error(h, msg);
}

/* yajl decodes a \u escape of a lone UTF-16 surrogate to '?' instead of
 * failing, which would silently change what the client sent.  This pass
 * finds such escapes in the raw text (inside strings, minding escaped
 * backslashes) and returns the offset of the first one, or len if none. */
static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16u)
            return 0x10000u; /* not hex: yajl reports it itself */
        v = v * 16 + d;
    }
    return v;
}

static size_t find_lone_surrogate(const char *text, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!in_string) {
            in_string = c == '"';
            continue;
        }
        if (c == '"') {
            in_string = false;
        } else if (c == '\\' && i + 1 < len) {
            if (text[i + 1] != 'u' || i + 6 > len) {
                i++;
                continue;
            }
            unsigned v = hex4(text + i + 2);
            if (v >= 0xdc00 && v <= 0xdfff)
                return i; /* low surrogate without a high one before it */
            if (v >= 0xd800 && v <= 0xdbff) {
                unsigned low = i + 12 <= len && text[i + 6] == '\\' && text[i + 7] == 'u'
                                   ? hex4(text + i + 8)
                                   : 0;
                if (low < 0xdc00 || low > 0xdfff)
                    return i;
                i += 11;
                continue;
            }
            i += 5;
        }
    }
    return len;
}

/* The error of a failed parse, with the path of the place it failed at
 * as a field when that place is inside the text's root. */
static void parse_error(parse_ctx_t *ctx, yajl_handle h, const char *text, size_t len,
                        const char *what, size_t at, nn_error_t *err)
{
    const char *path = NULL;
    switch (ctx->failure) {
    case PARSE_OOM:
        nn_error_oom(err);
        return;
    case PARSE_TOO_DEEP:
        /* No field: the path of the 65th level is as long as the nesting. */
        nn_error_set(err, 400, "invalid_json",
                     "%s nests JSON deeper than %d levels (at byte %zu); flatten it", what,
                     JV_MAX_DEPTH, at);
        return;
    case PARSE_NUL_CHAR:
        path = parse_path(ctx, true);
        nn_error_set(err, 400, "invalid_json",
                     "%s holds a string with the character \\u0000 (at byte %zu), which "
                     "cannot be stored; remove it",
                     what, at);
        if (path && *path)
            nn_error_add_field(err, path, "holds the character \\u0000, which cannot be stored");
        return;
    case PARSE_BAD_UTF8:
    case PARSE_BAD_UTF8_KEY:
        path = parse_path(ctx, ctx->failure == PARSE_BAD_UTF8);
        nn_error_set(err, 400, "invalid_json",
                     "%s is not valid JSON: %s is not valid UTF-8 (surrogates, overlong forms and "
                     "code points past U+10FFFF are not) at byte %zu",
                     what, ctx->failure == PARSE_BAD_UTF8 ? "a string" : "a key", at);
        if (path && *path)
            nn_error_add_field(err, path,
                               ctx->failure == PARSE_BAD_UTF8 ? "is not valid UTF-8 text"
                                                              : "has a key that is not valid UTF-8");
        return;
    case PARSE_DUPLICATE_KEY: {
        const char *object = parse_path(ctx, false);
        nn_buf_t b;
        buf_init(&b, ctx->arena);
        if (object)
            buf_append_str(&b, object);
        path_step(&b, ctx->duplicate, 0);
        path = buf_cstr(&b);
        nn_error_set(err, 400, "invalid_json",
                     "%s gives the key \"%.200s\" more than once%s%.200s%s; give each key once",
                     what, ctx->duplicate, object && *object ? " (in " : "",
                     object && *object ? object : "", object && *object ? ")" : "");
        if (path && *path)
            nn_error_add_field(err, path, "is given more than once; give each key once");
        return;
    }
    case PARSE_OK:
        break;
    }
    /* A syntax error found by yajl: invalid UTF-8 (as yajl sees it), a
     * bad escape, a missing colon... named at the place it broke. */
    char reason[256];
    yajl_reason(h, text, len, reason, sizeof(reason));
    nn_error_set(err, 400, "invalid_json", "%s is not valid JSON: %s at byte %zu", what, reason,
                 at);
    path = parse_path(ctx, true);
    if (path && *path)
        nn_error_add_field(err, path, "is not valid JSON here: %s", reason);
}

jv_t *jv_parse(arena_t *arena, const char *text, size_t len, const char *what, nn_error_t *err)
{
    return jv_parse_at(arena, text, len, what, NULL, err);
}

jv_t *jv_parse_at(arena_t *arena, const char *text, size_t len, const char *what,
                  const char *base, nn_error_t *err)
{
    if (!what)
        what = "request body";
    size_t lone = find_lone_surrogate(text, len);
    if (lone < len) {
        nn_error_set(err, 400, "invalid_json",
                     "%s is not valid JSON: a \\u escape of a lone UTF-16 surrogate at byte %zu; "
                     "send the character as UTF-8 or as a surrogate pair",
                     what, lone);
        return NULL;
    }
    parse_ctx_t ctx = {.arena = arena, .failure = PARSE_OK, .base = base};
    yajl_handle h = yajl_alloc(&parse_callbacks, NULL, &ctx);
    if (!h) {
        nn_error_oom(err);
        return NULL;
    }
    /* Explicit although it is yajl's default: invalid UTF-8 must never get
     * into the tree (it would break JSONB and every response). */
    yajl_config(h, yajl_dont_validate_strings, 0);

    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    size_t at = yajl_get_bytes_consumed(h);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        /* complete_parse works on a buffer of its own: the position of an
         * error found there (premature end) is the end of the text. */
        at = len;
    }

    jv_t *result = NULL;
    if (st == yajl_status_ok && ctx.failure == PARSE_OK)
        result = ctx.root;
    else
        parse_error(&ctx, h, text, len, what, at, err);
    yajl_free(h);
    return result;
}

/* ---------------------------------------------------------- generating */

static bool gen_value(yajl_gen gen, const jv_t *v, int depth)
{
    if (!v || depth > JV_WALK_MAX_DEPTH)
        return false;
    switch (v->type) {
    case JV_NULL:
        return yajl_gen_null(gen) == yajl_gen_status_ok;
    case JV_BOOL:
        return yajl_gen_bool(gen, v->u.boolean) == yajl_gen_status_ok;
    case JV_NUMBER:
        /* The source text is written as is so that "2.0" and big integers
         * come back exactly as they were sent. */
        if (v->u.number.text)
            return yajl_gen_number(gen, v->u.number.text, strlen(v->u.number.text)) ==
                   yajl_gen_status_ok;
        return yajl_gen_double(gen, v->u.number.value) == yajl_gen_status_ok;
    case JV_STRING:
        return yajl_gen_string(gen, (const unsigned char *)v->u.string.ptr, v->u.string.len) ==
               yajl_gen_status_ok;
    case JV_ARRAY:
        if (yajl_gen_array_open(gen) != yajl_gen_status_ok)
            return false;
        for (size_t i = 0; i < v->u.array.n; i++)
            if (!gen_value(gen, v->u.array.items[i], depth + 1))
                return false;
        return yajl_gen_array_close(gen) == yajl_gen_status_ok;
    case JV_OBJECT:
        if (yajl_gen_map_open(gen) != yajl_gen_status_ok)
            return false;
        for (size_t i = 0; i < v->u.object.n; i++) {
            const char *key = v->u.object.keys[i];
            if (yajl_gen_string(gen, (const unsigned char *)key, strlen(key)) !=
                    yajl_gen_status_ok ||
                !gen_value(gen, v->u.object.values[i], depth + 1))
                return false;
        }
        return yajl_gen_map_close(gen) == yajl_gen_status_ok;
    }
    return false;
}

bool jv_gen(yajl_gen gen, const jv_t *value)
{
    return gen_value(gen, value, 1);
}

char *jv_serialize(arena_t *arena, const jv_t *value, size_t *len)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    if (!gen)
        return NULL;
    /* Form fields are not UTF-8-checked on the way in; checking here means
     * this never hands invalid JSON to PostgreSQL (NULL is returned). */
    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);
    char *out = NULL;
    const unsigned char *buf;
    size_t buf_len;
    if (gen_value(gen, value, 1) && yajl_gen_get_buf(gen, &buf, &buf_len) == yajl_gen_status_ok) {
        out = arena_strndup(arena, (const char *)buf, buf_len);
        if (out && len)
            *len = buf_len;
    }
    yajl_gen_free(gen);
    return out;
}

/* -------------------------------------------------------------- copying */

static jv_t *copy_value(arena_t *arena, const jv_t *v, int depth)
{
    if (!v || depth > JV_WALK_MAX_DEPTH)
        return NULL;
    jv_t *c = node_new(arena, v->type);
    if (!c)
        return NULL;
    c->from_form = v->from_form;
    switch (v->type) {
    case JV_NULL:
        break;
    case JV_BOOL:
        c->u.boolean = v->u.boolean;
        break;
    case JV_NUMBER:
        c->u.number.value = v->u.number.value;
        if (v->u.number.text && !(c->u.number.text = arena_strdup(arena, v->u.number.text)))
            return NULL;
        break;
    case JV_STRING: {
        char *s = arena_strndup(arena, v->u.string.ptr, v->u.string.len);
        if (!s)
            return NULL;
        c->u.string.ptr = s;
        c->u.string.len = v->u.string.len;
        break;
    }
    case JV_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++) {
            jv_t *item = copy_value(arena, v->u.array.items[i], depth + 1);
            if (!item || !array_push(arena, c, item))
                return NULL;
        }
        break;
    case JV_OBJECT:
        for (size_t i = 0; i < v->u.object.n; i++) {
            char *key = arena_strdup(arena, v->u.object.keys[i]);
            jv_t *item = copy_value(arena, v->u.object.values[i], depth + 1);
            if (!key || !item || !object_push(arena, c, key, item))
                return NULL;
        }
        break;
    }
    return c;
}

jv_t *jv_copy(arena_t *arena, const jv_t *value)
{
    return copy_value(arena, value, 1);
}

const char *jv_type_name(jv_type_t type)
{
    switch (type) {
    case JV_NULL:
        return "null";
    case JV_BOOL:
        return "boolean";
    case JV_NUMBER:
        return "number";
    case JV_STRING:
        return "string";
    case JV_ARRAY:
        return "array";
    case JV_OBJECT:
        return "object";
    }
    return "unknown";
}
