/* libFuzzer harness: the multipart parser.  The first byte picks a split
 * point so that every input is also fed in two chunks (the parser must
 * agree with itself whatever the chunking). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/multipart.h"

static bool on_begin(void *ctx, const mp_part_t *part, nn_error_t *err)
{
    (void)ctx;
    (void)err;
    return part->name == NULL || strcmp(part->name, "stop") != 0;
}

static bool on_data(void *ctx, const char *data, size_t len, nn_error_t *err)
{
    (void)err;
    size_t *total = ctx;
    for (size_t i = 0; i < len; i++)
        *total += (unsigned char)data[i];
    return true;
}

static bool on_end(void *ctx, nn_error_t *err)
{
    (void)ctx;
    (void)err;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % (size);
    data++;
    size--;
    static const mp_callbacks_t cb = {on_begin, on_data, on_end};
    arena_t *arena = arena_create(0);
    size_t total = 0;
    nn_error_t err;
    nn_error_init(&err);
    mp_parser_t *p = mp_parser_create(arena, "XyZ", NULL, &cb, &total);
    if (p) {
        mp_status_t st = mp_parser_feed(p, (const char *)data, split < size ? split : size, &err);
        if (st == MP_NEED_MORE && split < size)
            st = mp_parser_feed(p, (const char *)data + split, size - split, &err);
        if (st == MP_NEED_MORE)
            (void)mp_parser_finish(p, &err);
    }
    arena_destroy(arena);
    return 0;
}
