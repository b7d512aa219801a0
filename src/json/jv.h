/* jv.h - a small JSON value tree in an arena, parsed with yajl's callback
 * parser and written with yajl's generator.
 *
 * Request bodies are small (names, descriptions, metadata up to 64 KiB) and
 * need editing (multipart form fields are inserted by path), which yajl's
 * read-only tree API does not allow; hence a tree of our own.  All nodes and
 * strings live in the arena given at creation.
 *
 * Numbers keep their source text (so "2.0" stays "2.0" and big integers are
 * not rounded) beside a double.  A string that came from a multipart form
 * field is marked from_form: the validator may convert it by schema
 * (numbers, booleans from True/true/1/False/false/0).
 */
#ifndef NNREG_JSON_JV_H
#define NNREG_JSON_JV_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_gen.h>

#include "util/arena.h"
#include "util/error.h"

#define JV_MAX_DEPTH 64

typedef enum { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_type_t;

typedef struct jv jv_t;
struct jv {
    jv_type_t type;
    bool from_form;
    union {
        bool boolean;
        struct { double value; const char *text; } number;
        struct { const char *ptr; size_t len; } string; /* NUL-terminated too */
        struct { jv_t **items; size_t n, cap; } array;
        struct { const char **keys; jv_t **values; size_t n, cap; } object;
    } u;
};

/* Parses UTF-8 JSON text.  On error fills err with a 400 "invalid_json"
 * that mentions what (e.g. "request body", "part \"data\"") and returns NULL;
 * when the error is inside the root, err's fields also name its path
 * ("metadata.tags[2]": invalid UTF-8, \u0000, a syntax error there).
 * Refused beyond the JSON grammar: nesting deeper than JV_MAX_DEPTH,
 * strings or keys that are not RFC 3629 UTF-8 (yajl alone lets surrogates
 * and overlong forms through), \u0000, lone surrogate escapes, and a key
 * repeated in one object (parsers disagree on which value wins). */
jv_t *jv_parse(arena_t *arena, const char *text, size_t len, const char *what, nn_error_t *err)
    __attribute__((warn_unused_result));

/* jv_parse for text that sits at path base of a larger document (a
 * multipart JSON part merged at "preprocessing"): error paths start with
 * base.  base NULL or "" is jv_parse. */
jv_t *jv_parse_at(arena_t *arena, const char *text, size_t len, const char *what,
                  const char *base, nn_error_t *err) __attribute__((warn_unused_result));

/* Constructors: NULL when out of memory. */
jv_t *jv_null(arena_t *arena);
jv_t *jv_bool(arena_t *arena, bool value);
jv_t *jv_number(arena_t *arena, double value);      /* text printed with %.17g */
jv_t *jv_number_int(arena_t *arena, long long value);
jv_t *jv_string(arena_t *arena, const char *s, size_t len); /* copies s */
jv_t *jv_cstring(arena_t *arena, const char *s);
jv_t *jv_array(arena_t *arena);
jv_t *jv_object(arena_t *arena);

/* Object access: the value of key, or NULL when absent (or obj not an object). */
jv_t *jv_get(const jv_t *obj, const char *key);
/* Sets key (copied) to value, replacing an existing value.  false on OOM. */
bool jv_set(arena_t *arena, jv_t *obj, const char *key, jv_t *value) __attribute__((warn_unused_result));
/* Removes key if present. */
void jv_remove(jv_t *obj, const char *key);
/* Appends to an array.  false on OOM. */
bool jv_append(arena_t *arena, jv_t *arr, jv_t *value) __attribute__((warn_unused_result));
/* Puts value at index, padding with JSON nulls; false on OOM. */
bool jv_put(arena_t *arena, jv_t *arr, size_t index, jv_t *value) __attribute__((warn_unused_result));

/* Writes the value through a yajl generator; false on a generator error. */
bool jv_gen(yajl_gen gen, const jv_t *value);
/* Serializes compactly into arena memory; NULL on OOM.  *len may be NULL. */
char *jv_serialize(arena_t *arena, const jv_t *value, size_t *len);

/* Deep copy (to merge one tree into another); NULL on OOM. */
jv_t *jv_copy(arena_t *arena, const jv_t *value);

const char *jv_type_name(jv_type_t type);

#endif
