/* ir_read.h - what the binary (ir.c) and text-format (ir_text.c) readers
 * of a SavedModel share: growable arrays in the graph's arena, decoded
 * numbers, tensor assembly and the object graph's variable keys.
 * Internal to the readers. */
#ifndef NNREG_INFER_IR_READ_H
#define NNREG_INFER_IR_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infer/ir.h"

/* TensorFlow's own limit on the dimensions of a shape. */
#define IR_MAX_SHAPE_DIMS 254
#define IR_MAX_OBJECTS 1000000u
/* Constants decoded from a graph may not exceed this many bytes in all: a
 * tiny file can declare a huge tensor with a single repeated value. */
#define IR_MAX_CONST_BYTES ((size_t)2 << 30)

typedef struct rd {
    arena_t *arena;
    nn_error_t *err;
    const char *display;
    size_t const_bytes; /* decoded so far, against IR_MAX_CONST_BYTES */
} rd_t;

typedef struct vec {
    void *items;
    size_t n, cap;
} vec_t;

/* A repeated numeric field's values: as doubles (exact for every int32 and
 * float) and as int64 (exact for integer fields). */
typedef struct numlist {
    vec_t d; /* double */
    vec_t i; /* int64_t */
} numlist_t;

/* An object of the SavedObjectGraph, as far as variables need it. */
typedef struct object {
    const char *var_name; /* SavedVariable.name, NULL when not a variable */
    int64_t *child_ids;
    const char **child_names;
    size_t nchildren;
    const char *path; /* from the root, set by ir_object_vars */
} object_t;

bool ir_oom(rd_t *r);
bool ir_vec_push(rd_t *r, vec_t *v, size_t elem, const void *item)
    __attribute__((warn_unused_result));
bool ir_num_push(rd_t *r, numlist_t *l, double d, int64_t i) __attribute__((warn_unused_result));

/* A tensor from its dtype, shape and either tensor_content (little-endian
 * bytes) or typed values (missing trailing values repeat the last, none
 * means zeros).  *out stays NULL for dtypes the engine does not compute
 * with.  Errors are 400 invalid_graph naming r->display. */
bool ir_tensor_build(rd_t *r, int dtype, const int64_t *dims, size_t ndims,
                     const unsigned char *content, size_t content_len, const numlist_t *nums,
                     ir_value_t **out) __attribute__((warn_unused_result));

/* Fills g->object_vars from the object graph (objs[0] is the root). */
bool ir_object_vars(rd_t *r, object_t *objs, size_t nobjs, ir_graph_t *g)
    __attribute__((warn_unused_result));

/* The text-format reader (ir_text.c). */
bool ir_text_read(rd_t *r, const char *text, size_t len, ir_graph_t *out)
    __attribute__((warn_unused_result));

#endif
