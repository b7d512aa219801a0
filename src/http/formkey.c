/* formkey.c - Django-REST flattened form keys.
 *
 * Grammar (what the official client produces, plus the dotted form API.md
 * uses for field paths, so that a path copied from an error works too):
 *
 *   key     = name *( "." name / "[" digits "]" / "]" name )
 *   name    = 1*( any byte except "." "[" "]" and control characters )
 *
 * where `]name` means a name directly after a closing bracket (the dot is
 * omitted there).  The key is bounded by FORMKEY_MAX_SEGMENTS segments and
 * every index by FORMKEY_MAX_INDEX, so inserting a key can never allocate
 * more than a few hundred nodes.
 */
#include "http/formkey.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"

/* Keys are quoted in error messages; a hostile one is shortened and its
 * non-printable bytes escaped so that the message stays readable and valid
 * UTF-8. */
#define FORMKEY_QUOTE_MAX 120

/* jv trees deeper than this are not walked when merging JSON parts: the
 * same bound as jv's own walkers. */
#define FORMKEY_MERGE_MAX_DEPTH 128

static void quote_key(const char *key, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t shown = len > FORMKEY_QUOTE_MAX ? FORMKEY_QUOTE_MAX : len;
    for (size_t i = 0; i < shown && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (shown < len && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static bool key_error(nn_error_t *err, const char *key, size_t key_len, const char *why)
{
    char quoted[FORMKEY_QUOTE_MAX * 4 + 8];
    quote_key(key, key_len, quoted, sizeof(quoted));
    return nn_error_set(err, 400, "invalid_form_key",
                        "form key \"%s\" is malformed: %s; write keys like "
                        "preprocessing.inputs[0]image.target_size",
                        quoted, why);
}

static bool name_byte(unsigned char c)
{
    return c != '.' && c != '[' && c != ']' && c >= 0x20 && c != 0x7f;
}

bool formkey_parse(arena_t *arena, const char *key, size_t key_len, formkey_segment_t **segments,
                   size_t *nsegments, nn_error_t *err)
{
    formkey_segment_t seg[FORMKEY_MAX_SEGMENTS];
    size_t n = 0;
    size_t i = 0;

    if (key_len == 0)
        return key_error(err, key, key_len, "it is empty");
    if (key[0] == '[' || key[0] == '.')
        return key_error(err, key, key_len, "it must start with a name");

    while (i < key_len) {
        if (n == FORMKEY_MAX_SEGMENTS)
            return key_error(err, key, key_len, "it has more than 16 segments");
        unsigned char c = (unsigned char)key[i];
        bool after_bracket = n > 0 && seg[n - 1].is_index;

        if (c == '[') {
            /* n > 0 here: a leading "[" was refused above. */
            size_t start = ++i;
            size_t index = 0;
            while (i < key_len && key[i] >= '0' && key[i] <= '9') {
                index = index * 10 + (size_t)(key[i] - '0');
                if (index > FORMKEY_MAX_INDEX)
                    return key_error(err, key, key_len, "an array index is larger than 255");
                i++;
            }
            if (i == start)
                return key_error(err, key, key_len, "\"[\" must be followed by an array index");
            if (i == key_len || key[i] != ']')
                return key_error(err, key, key_len, "an array index must end with \"]\"");
            i++;
            seg[n].is_index = true;
            seg[n].index = index;
            seg[n].key = NULL;
            n++;
            continue;
        }

        /* A name: first in the key, after ".", or right after "]". */
        if (c == '.') {
            if (n == 0)
                return key_error(err, key, key_len, "it must start with a name");
            i++;
        } else if (n > 0 && !after_bracket) {
            return key_error(err, key, key_len, "\"]\" without a matching \"[\"");
        }
        size_t start = i;
        while (i < key_len && name_byte((unsigned char)key[i]))
            i++;
        if (i == start) {
            if (i < key_len && key[i] == ']')
                return key_error(err, key, key_len, "\"]\" without a matching \"[\"");
            if (i < key_len && ((unsigned char)key[i] < 0x20 || key[i] == 0x7f))
                return key_error(err, key, key_len, "it contains a control character");
            return key_error(err, key, key_len,
                             "a name is empty (\"..\", \".[\" or a final \".\")");
        }
        if (i < key_len && ((unsigned char)key[i] < 0x20 || key[i] == 0x7f))
            return key_error(err, key, key_len, "it contains a control character");
        char *name = arena_strndup(arena, key + start, i - start);
        if (!name)
            return nn_error_oom(err);
        seg[n].is_index = false;
        seg[n].index = 0;
        seg[n].key = name;
        n++;
    }

    formkey_segment_t *out = arena_alloc(arena, n * sizeof(*out));
    if (!out)
        return nn_error_oom(err);
    memcpy(out, seg, n * sizeof(*out));
    *segments = out;
    *nsegments = n;
    return true;
}

char *formkey_path_string(arena_t *arena, const formkey_segment_t *segments, size_t nsegments)
{
    nn_buf_t b;
    buf_init(&b, arena);
    for (size_t i = 0; i < nsegments; i++) {
        if (segments[i].is_index) {
            buf_appendf(&b, "[%zu]", segments[i].index);
        } else {
            if (i > 0)
                buf_append_char(&b, '.');
            buf_append_str(&b, segments[i].key);
        }
    }
    return (char *)buf_cstr(&b);
}

static bool conflict(nn_error_t *err, const char *key, size_t key_len, const char *why)
{
    char quoted[FORMKEY_QUOTE_MAX * 4 + 8];
    quote_key(key, key_len, quoted, sizeof(quoted));
    return nn_error_set(err, 400, "invalid_form_key", "form key \"%s\" conflicts with %s", quoted,
                        why);
}

/* The slot a value goes into: an object member or an array element. */
typedef struct slot {
    jv_t *parent; /* JV_OBJECT or JV_ARRAY */
    const char *key;
    size_t index;
} slot_t;

static jv_t *slot_get(const slot_t *s)
{
    if (s->parent->type == JV_OBJECT)
        return jv_get(s->parent, s->key);
    if (s->index < s->parent->u.array.n)
        return s->parent->u.array.items[s->index];
    return NULL;
}

static bool slot_set(arena_t *arena, const slot_t *s, jv_t *value)
{
    if (s->parent->type == JV_OBJECT)
        return jv_set(arena, s->parent, s->key, value);
    return jv_put(arena, s->parent, s->index, value);
}

/* An array slot holding null counts as free: that null is the padding
 * jv_put() left when a later index arrived first. */
static bool slot_is_free(const jv_t *current, const slot_t *s)
{
    return !current || (current->type == JV_NULL && s->parent->type == JV_ARRAY);
}

/* Merges value into the slot: a free slot takes it; an object meets an
 * object (and an array an array) member by member, so that a JSON part
 * and flattened fields for the same subtree combine in either order;
 * anything else is the same field given twice. */
static bool merge(arena_t *arena, const slot_t *s, jv_t *value, int depth, const char *key,
                  size_t key_len, nn_error_t *err)
{
    jv_t *current = slot_get(s);
    if (slot_is_free(current, s))
        return slot_set(arena, s, value) || nn_error_oom(err);
    if (depth > FORMKEY_MERGE_MAX_DEPTH)
        return conflict(err, key, key_len, "a value nested too deeply to merge");
    if (current->type == JV_OBJECT && value->type == JV_OBJECT) {
        for (size_t i = 0; i < value->u.object.n; i++) {
            slot_t child = {.parent = current, .key = value->u.object.keys[i]};
            if (!merge(arena, &child, value->u.object.values[i], depth + 1, key, key_len, err))
                return false;
        }
        return true;
    }
    if (current->type == JV_ARRAY && value->type == JV_ARRAY) {
        for (size_t i = 0; i < value->u.array.n; i++) {
            jv_t *item = value->u.array.items[i];
            if (item->type == JV_NULL && i < current->u.array.n)
                continue; /* padding in the new array: keep what is there */
            slot_t child = {.parent = current, .index = i};
            if (!merge(arena, &child, item, depth + 1, key, key_len, err))
                return false;
        }
        return true;
    }
    if (current->type == JV_OBJECT || current->type == JV_ARRAY)
        return conflict(err, key, key_len, "fields given below it: it cannot also hold a value");
    return conflict(err, key, key_len, "an earlier field: the same value is given twice");
}

bool formkey_insert(arena_t *arena, jv_t *root, const char *key, size_t key_len, jv_t *value,
                    nn_error_t *err)
{
    formkey_segment_t *segs;
    size_t n;
    if (!formkey_parse(arena, key, key_len, &segs, &n, err))
        return false;
    if (!root || root->type != JV_OBJECT || !value)
        return nn_error_internal(err, "formkey_insert needs an object root and a value");

    /* Walk (creating) every container but the last segment's. */
    jv_t *node = root;
    for (size_t i = 0; i + 1 < n; i++) {
        slot_t s = {.parent = node, .key = segs[i].key, .index = segs[i].index};
        bool want_array = segs[i + 1].is_index;
        jv_t *child = slot_get(&s);
        if (slot_is_free(child, &s)) {
            child = want_array ? jv_array(arena) : jv_object(arena);
            if (!child || !slot_set(arena, &s, child))
                return nn_error_oom(err);
        } else if (want_array && child->type != JV_ARRAY) {
            char *path = formkey_path_string(arena, segs, i + 1);
            char why[NN_ERROR_FIELD_PATH_MAX + 64];
            snprintf(why, sizeof(why), "an earlier field: \"%.200s\" is %s %s, not a list",
                     path ? path : "?", child->type == JV_OBJECT ? "an" : "a",
                     jv_type_name(child->type));
            return conflict(err, key, key_len, why);
        } else if (!want_array && child->type != JV_OBJECT) {
            char *path = formkey_path_string(arena, segs, i + 1);
            char why[NN_ERROR_FIELD_PATH_MAX + 64];
            snprintf(why, sizeof(why), "an earlier field: \"%.200s\" is %s %s, not an object",
                     path ? path : "?", child->type == JV_ARRAY ? "an" : "a",
                     jv_type_name(child->type));
            return conflict(err, key, key_len, why);
        }
        node = child;
    }
    slot_t last = {.parent = node, .key = segs[n - 1].key, .index = segs[n - 1].index};
    return merge(arena, &last, value, 1, key, key_len, err);
}
