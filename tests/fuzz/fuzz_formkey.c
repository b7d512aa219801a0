/* libFuzzer harness: flattened form keys inserted into a JSON tree.  The
 * input is NUL-separated keys, each inserted with a string value, up to the
 * first refused one (a refused key ends the request with a 400). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/formkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    jv_t *root = jv_object(arena);
    const char *p = (const char *)data, *end = p + size;
    while (root && p < end) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
        nn_error_t err;
        nn_error_init(&err);
        jv_t *v = jv_cstring(arena, "v");
        if (!v || !formkey_insert(arena, root, p, len, v, &err))
            break;
        p += len + 1;
    }
    if (root)
        (void)jv_serialize(arena, root, NULL);
    arena_destroy(arena);
    return 0;
}
