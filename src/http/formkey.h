/* formkey.h - Django-REST style flattened form keys, as the official
 * Deepomatic Python client sends them:
 *   preprocessing.inputs[0]image.target_size
 *   postprocessings[0]tensors_output.tensors[1]
 * `.key` (or a leading bare key) descends into an object; the dot is omitted
 * right after `]`; `[i]` indexes an array.  Keys are bounded: at most
 * FORMKEY_MAX_SEGMENTS segments, array indexes at most FORMKEY_MAX_INDEX.
 */
#ifndef NNREG_HTTP_FORMKEY_H
#define NNREG_HTTP_FORMKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "json/jv.h"
#include "util/arena.h"
#include "util/error.h"

#define FORMKEY_MAX_SEGMENTS 16
#define FORMKEY_MAX_INDEX 255

typedef struct formkey_segment {
    bool is_index;
    size_t index;     /* when is_index */
    const char *key;  /* when !is_index: NUL-terminated arena copy */
} formkey_segment_t;

/* Splits a form key into segments (arena memory).  A malformed key
 * ("a..b", "a[", "a[x]", "[0]", "", index too big, too deep) is a 400
 * "invalid_form_key" naming the key. */
bool formkey_parse(arena_t *arena, const char *key, size_t key_len, formkey_segment_t **segments,
                   size_t *nsegments, nn_error_t *err) __attribute__((warn_unused_result));

/* Inserts value into the object root at the path of key, creating objects
 * and arrays on the way (arrays padded with nulls).  A path that conflicts
 * with what is already there (a key used both as object and as value, an
 * object where an array is, a value given twice) is a 400 naming the key. */
bool formkey_insert(arena_t *arena, jv_t *root, const char *key, size_t key_len, jv_t *value,
                    nn_error_t *err) __attribute__((warn_unused_result));

/* Renders segments back as a field path for error messages, in the dotted
 * form API.md uses for `fields` ("preprocessing.inputs[0].image.target_size"). */
char *formkey_path_string(arena_t *arena, const formkey_segment_t *segments, size_t nsegments);

#endif
