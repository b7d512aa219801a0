/* ir.h - what the inference engine reads out of a SavedModel: nodes with
 * the attributes kernels need, the function library, and the object graph's
 * variable names; plus the typed values the engine computes with.
 *
 * Everything an ir_graph_t points to lives in the arena given to
 * ir_graph_read (the model's arena), so it lives as long as the model.
 * Internal to src/infer/: the public contract is engine.h. */
#ifndef NNREG_INFER_IR_H
#define NNREG_INFER_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/error.h"
#include "util/tensor.h"

/* TensorFlow DataType values (types.proto) the engine knows. */
enum {
    IR_DT_FLOAT = 1,
    IR_DT_DOUBLE = 2,
    IR_DT_INT32 = 3,
    IR_DT_UINT8 = 4,
    IR_DT_INT16 = 5,
    IR_DT_INT8 = 6,
    IR_DT_STRING = 7,
    IR_DT_INT64 = 9,
    IR_DT_BOOL = 10,
    IR_DT_HALF = 19,
    IR_DT_RESOURCE = 20,
};

/* How a value's elements are stored: float32 for every floating type
 * (half and double are converted), int64 for every integer and bool type
 * (shapes, axes, indices).  Other types (strings) are not computed with. */
typedef enum { IR_F32 = 0, IR_I64 = 1 } ir_kind_t;

typedef struct ir_value {
    ir_kind_t kind;
    int dtype; /* the TensorFlow dtype it came from */
    size_t ndims;
    int64_t dims[NN_TENSOR_MAX_DIMS];
    size_t count; /* product of dims */
    void *data;   /* count floats or int64s */
} ir_value_t;

static inline float *ir_f32(const ir_value_t *v)
{
    return (float *)v->data;
}
static inline int64_t *ir_i64(const ir_value_t *v)
{
    return (int64_t *)v->data;
}

/* A float as an integer without undefined behaviour: truncated toward
 * zero, NaN as 0, out-of-range values saturated. */
static inline int64_t ir_f2i(double x)
{
    if (x != x)
        return 0;
    if (x >= 9.2e18)
        return INT64_MAX;
    if (x <= -9.2e18)
        return INT64_MIN;
    return (int64_t)x;
}

typedef enum {
    IR_ATTR_NONE = 0,
    IR_ATTR_S,      /* s, slen */
    IR_ATTR_I,      /* i */
    IR_ATTR_F,      /* f */
    IR_ATTR_B,      /* b */
    IR_ATTR_TYPE,   /* i holds the DataType */
    IR_ATTR_SHAPE,  /* ints (dims, -1 unknown), nints; b: unknown rank */
    IR_ATTR_TENSOR, /* tensor */
    IR_ATTR_LIST,   /* ints / floats / strs (list(int), list(float), list(type),
                       list(string)) */
    IR_ATTR_FUNC,   /* s: function name */
    IR_ATTR_PLACEHOLDER, /* s: the function attribute it stands for */
} ir_attr_kind_t;

typedef struct ir_attr {
    const char *key;
    ir_attr_kind_t kind;
    const char *s;
    size_t slen;
    int64_t i;
    float f;
    bool b;
    int64_t *ints;
    size_t nints;
    float *floats;
    size_t nfloats;
    const char **strs; /* list(string) */
    size_t nstrs;
    ir_value_t *tensor;
} ir_attr_t;

typedef struct ir_node {
    const char *name;
    const char *op;
    const char **inputs; /* as written: "x", "x:1", "^ctrl", "n:out:0" */
    size_t ninputs;
    ir_attr_t *attrs;
    size_t nattrs;
} ir_node_t;

typedef struct ir_function {
    const char *name;
    const char **in_args; /* signature input_arg names */
    size_t nin;
    const char **out_args; /* signature output_arg names */
    size_t nout;
    const char **ret_keys; /* ret map: output arg -> "node:out:idx" */
    const char **ret_values;
    size_t nret;
    ir_node_t *nodes;
    size_t nnodes;
} ir_function_t;

/* A variable of the object graph (TF2): the VarHandleOp shared_name it
 * stands for and its checkpoint key ("a/.ATTRIBUTES/VARIABLE_VALUE"). */
typedef struct ir_object_var {
    const char *name;
    const char *key;
} ir_object_var_t;

typedef struct ir_graph {
    ir_node_t *nodes;
    size_t nnodes;
    ir_function_t *functions;
    size_t nfunctions;
    ir_object_var_t *object_vars;
    size_t nobject_vars;
} ir_graph_t;

/* Reads the first MetaGraphDef of a SavedModel (binary protobuf when
 * text is false, text format otherwise) from len bytes at data.  Tensor
 * attributes are decoded into ir_value_t (tensor_content or the typed
 * *_val fields, a single value filling the whole shape), so data need not
 * outlive the call.  A malformed file is a 400 "invalid_graph" naming
 * display_name; an unsupported tensor dtype stays undecoded (tensor NULL,
 * kind IR_ATTR_TENSOR) and fails only if a kernel needs it. */
bool ir_graph_read(arena_t *arena, const unsigned char *data, size_t len, bool text,
                   const char *display_name, ir_graph_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The attribute key of node, or NULL. */
const ir_attr_t *ir_attr(const ir_node_t *node, const char *key);

/* Elements of a dims array (1 for ndims 0); 0 when a dim is negative or
 * the product overflows SIZE_MAX / 16. */
size_t ir_count(const int64_t *dims, size_t ndims);

#endif
