/* libFuzzer harness: the field rules of API.md (api/validate.c) applied to a
 * parsed request, the way network_create.c and networks.c apply them.
 *
 * The first byte picks the shape of the rest:
 *   0 (mod 4)  a JSON body checked as a create (files "mean.npy" and
 *              "mean.binaryproto" uploaded with it)
 *   1          a JSON body checked as a PATCH
 *   2          a JSON body checked as a PUT
 *   3          multipart form fields: lines "key=value", each value a
 *              from_form string inserted at its form-key path, then checked
 *              as a create (the schema converts the strings). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/validate.h"
#include "http/formkey.h"

static const char *const files[] = {"mean.npy", "mean.binaryproto"};

static jv_t *form_fields(arena_t *arena, const char *p, const char *end)
{
    jv_t *root = jv_object(arena);
    while (root && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(line_end - p));
        if (eq) {
            jv_t *v = jv_string(arena, eq + 1, (size_t)(line_end - eq - 1));
            if (!v)
                return NULL;
            v->from_form = true;
            nn_error_t err;
            nn_error_init(&err);
            /* A refused key is a 400 for the whole request: stop there. */
            if (!formkey_insert(arena, root, p, (size_t)(eq - p), v, &err))
                return NULL;
        }
        p = line_end + 1;
    }
    return root;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    arena_t *arena = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *body = mode == 3 ? form_fields(arena, text, text + len)
                           : jv_parse(arena, text, len, "request body", &err);
    if (body) {
        nn_error_init(&err);
        if (mode == 1 || mode == 2) {
            validated_update_t up;
            (void)validate_update(arena, body, mode == 2, &up, &err);
        } else {
            validated_create_t net;
            if (validate_create(arena, body, files, 2, &net, &err)) {
                /* What the handler stores must be text PostgreSQL accepts. */
                if (!validate_utf8_text(net.preprocessing_json, strlen(net.preprocessing_json)) ||
                    !validate_utf8_text(net.postprocessings_json, strlen(net.postprocessings_json)))
                    __builtin_trap();
            }
        }
    }
    arena_destroy(arena);
    return 0;
}
