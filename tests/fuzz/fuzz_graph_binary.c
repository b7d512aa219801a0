/* libFuzzer harness: binary SavedModel graphs (protobuf wire reader and
 * graph walk), then every summary accessor. */
#include <stddef.h>
#include <stdint.h>

#include "model/graph.h"

static void discard(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    (void)s;
    (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    graph_summary_t g;
    nn_error_t err;
    nn_error_init(&err);
    if (graph_parse(arena, data, size, GRAPH_FORMAT_BINARY, "saved_model", &g, &err)) {
        yajl_gen y = yajl_gen_alloc(NULL);
        yajl_gen_config(y, yajl_gen_print_callback, discard, NULL);
        (void)graph_summary_gen(y, &g);
        yajl_gen_free(y);
        const char *names[8];
        (void)graph_input_candidates(&g, names, 8);
        (void)graph_closest_names(arena, &g, "x:0", names, 8);
        (void)graph_find_tensor(&g, "x:0");
    }
    arena_destroy(arena);
    return 0;
}
