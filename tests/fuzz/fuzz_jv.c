/* libFuzzer harness: JSON bodies parsed into the tree and written back. */
#include <stddef.h>
#include <stdint.h>

#include "json/jv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    nn_error_t err;
    nn_error_init(&err);
    jv_t *v = jv_parse(arena, (const char *)data, size, "fuzz", &err);
    if (v) {
        jv_t *copy = jv_copy(arena, v);
        (void)jv_serialize(arena, copy ? copy : v, NULL);
    }
    arena_destroy(arena);
    return 0;
}
