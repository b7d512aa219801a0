/* libFuzzer harness: the inference engine's model loading from graph bytes
 * (binary or text SavedModel reader, tensor decoding, function inlining,
 * input resolution).  Input starting with a letter, '#' or white space is
 * read as text format (as saved_model.pbtxt files start), anything else as
 * binary (saved_model.pb starts with 0x08). */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>

#include "infer/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool text = size > 0 && (isalpha(data[0]) || isspace(data[0]) || data[0] == '#');
    nn_error_t err;
    nn_error_init(&err);
    infer_model_t *m = NULL;
    if (infer_model_parse(data, size, text, &m, &err))
        infer_model_free(m);
    return 0;
}
