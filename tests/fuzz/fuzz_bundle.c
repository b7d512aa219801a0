/* libFuzzer harness: the variables.index table reader (footer, blocks,
 * trailers, Snappy, restart points, entries). */
#include <stddef.h>
#include <stdint.h>

#include "model/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    bundle_index_t index;
    nn_error_t err;
    nn_error_init(&err);
    (void)bundle_parse_index(arena, data, size, "variables.index", &index, &err);
    arena_destroy(arena);
    return 0;
}
