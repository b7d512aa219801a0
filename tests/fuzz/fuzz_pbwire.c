/* libFuzzer harness: the protobuf wire reader on its own.  Every
 * length-delimited field is also read as a nested message (as far as
 * PB_MAX_DEPTH allows), so every byte range of the input gets parsed both
 * as a payload and as a message, without recursion (an explicit stack). */
#include <stddef.h>
#include <stdint.h>

#include "model/pbwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pb_error_t err;
    pb_reader_t stack[PB_MAX_DEPTH + 1];
    int top = 0;
    pb_reader_init(&stack[0], data, size, &err);
    uint64_t sum = 0;
    size_t fields = 0;
    while (top >= 0 && fields < 100000) {
        pb_field_t f;
        pb_status_t st = pb_next(&stack[top], &f);
        if (st != PB_FIELD) {
            if (st == PB_ERROR && !err.set)
                __builtin_trap(); /* an error must say what it is */
            top--;
            continue;
        }
        fields++;
        if (f.offset >= size || f.data_offset > size)
            __builtin_trap(); /* offsets point into the buffer */
        if (f.wire_type == PB_WIRE_LEN) {
            if (f.data + f.len > data + size || f.data < data)
                __builtin_trap();
            for (size_t i = 0; i < f.len; i++)
                sum += f.data[i];
            if (top < PB_MAX_DEPTH) {
                pb_error_t sub_err;
                pb_reader_t probe;
                /* A payload that is not a message is fine: read it on a
                 * private error so the outer reader is not failed. */
                pb_reader_init(&probe, f.data, f.len, &sub_err);
                pb_field_t g;
                if (pb_next(&probe, &g) == PB_FIELD && pb_sub(&stack[top], &f, &stack[top + 1]))
                    top++;
            } else if (pb_sub(&stack[top], &f, &stack[top + 1])) {
                __builtin_trap(); /* deeper than PB_MAX_DEPTH must be refused */
            }
        } else {
            sum += f.value;
        }
    }
    return (int)(sum & 0);
}
