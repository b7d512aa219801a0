/* validate.h - the field rules of API.md for a network, applied to the
 * request tree (JSON body, or multipart fields rebuilt by formkey).
 *
 * Every violation is recorded as a field error (400 validation_error) so a
 * user sees all of them at once.  Strings that came from form fields are
 * converted by the schema (numbers, booleans from True/true/1/False/false/0,
 * objects and arrays from JSON text).  The output is normalized: defaults
 * filled in, tensors_output lists wrapped, target sizes as strings.
 */
#ifndef NNREG_API_VALIDATE_H
#define NNREG_API_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"
#include "json/jv.h"

#define VALIDATE_NAME_MAX 255
#define VALIDATE_DESCRIPTION_MAX 65536
#define VALIDATE_METADATA_MAX 65536
#define VALIDATE_TARGET_SIDE_MAX 16384

/* A tensor the network names, with the field that names it. */
typedef struct validated_tensor {
    const char *name;
    const char *field; /* "preprocessing.inputs[0].tensor_name" */
} validated_tensor_t;

typedef struct validated_create {
    const char *name;
    const char *description;
    const char *metadata_json; /* serialized object */
    const char *framework;
    const char *preprocessing_json;   /* normalized, serialized */
    const char *postprocessings_json; /* normalized, serialized ("[]" when none) */
    validated_tensor_t *inputs;       /* one per preprocessing input */
    size_t ninputs;
    validated_tensor_t *outputs; /* every postprocessing tensor */
    size_t noutputs;
    const char **mean_files; /* one per input: its mean file or NULL */
} validated_create_t;

/* Validates a create.  file_names lists the files uploaded with it (mean
 * files named by an input must be among them). */
bool validate_create(arena_t *arena, const jv_t *body, const char *const *file_names, size_t nfiles,
                     validated_create_t *out, nn_error_t *err) __attribute__((warn_unused_result));

typedef struct validated_update {
    const char *name;          /* NULL: unchanged */
    const char *description;   /* NULL: unchanged */
    const char *metadata_json; /* NULL: unchanged */
} validated_update_t;

/* Validates a PATCH (is_put false: only given fields change) or a PUT (name
 * required; description and metadata reset to defaults when absent).
 * Immutable (framework, preprocessing, postprocessings) and read-only
 * fields are refused by name. */
bool validate_update(arena_t *arena, const jv_t *body, bool is_put, validated_update_t *out,
                     nn_error_t *err) __attribute__((warn_unused_result));

/* Whether s[0..len) is UTF-8 text that PostgreSQL can store: well formed
 * (no overlong forms, surrogates or code points past U+10FFFF) and free of
 * NUL bytes. */
bool validate_utf8_text(const char *s, size_t len);

/* The most bytes of a user's string an error message repeats. */
#define VALIDATE_ECHO_MAX 120

/* s itself when at most max bytes long, else its first max bytes or fewer,
 * cut between two UTF-8 characters, followed by "…" (arena memory): error
 * messages repeat what the user sent without overflowing the error
 * record or splitting a character. */
const char *validate_clip(arena_t *arena, const char *s, size_t max);

/* The number of characters (code points) of well-formed UTF-8 text. */
size_t validate_utf8_length(const char *s, size_t len);

/* Shared rule checks, exposed for the unit tests. */
bool validate_target_size(const char *text, bool network_form, char *why, size_t whylen);

#endif
