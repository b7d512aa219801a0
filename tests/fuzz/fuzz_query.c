/* libFuzzer harness: query strings, integer parameters, percent-encoding. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    char *qs = arena_strndup(arena, (const char *)data, size);
    query_t q;
    nn_error_t err;
    nn_error_init(&err);
    if (qs && query_parse(arena, qs, &q, &err)) {
        nn_buf_t b;
        buf_init(&b, arena);
        for (size_t i = 0; i < q.n; i++) {
            long long v;
            (void)query_parse_int(q.params[i].value, 0, 1000000, &v);
            query_percent_encode(&b, q.params[i].name);
            query_percent_encode_path(&b, q.params[i].value);
        }
    }
    arena_destroy(arena);
    return 0;
}
