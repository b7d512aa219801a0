/* graph.h - what a TensorFlow SavedModel's graph offers, read from a
 * saved_model.pb (binary protobuf, via pbwire) or saved_model.pbtxt (text
 * format, via pbtext), straight from the blob file (mmap), never from a
 * memory copy of the request.
 *
 * The summary lists the first MetaGraphDef's nodes (name, op, inputs, dtype
 * and shape attributes), the nodes of its function library (TF2 graphs keep
 * their layers there; they are listed as "function/node" only for op
 * counting), its signature definitions and its meta info.  Everything lives
 * in the arena passed to graph_load.
 *
 * Malformed input (truncated, bad lengths, wrong wire types, nesting deeper
 * than PB_MAX_DEPTH, not a SavedModel) is a 400 "invalid_graph" naming the
 * file and what is wrong.
 */
#ifndef NNREG_MODEL_GRAPH_H
#define NNREG_MODEL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "util/arena.h"
#include "util/error.h"

typedef struct graph_shape {
    bool known;        /* false: no shape attribute / no shape in TensorInfo */
    bool unknown_rank;
    size_t ndims;
    int64_t *dims;     /* -1 for an unknown dimension */
} graph_shape_t;

typedef struct graph_node {
    const char *name;
    const char *op;
    const char **inputs; /* as written in the NodeDef ("x", "y:1", "^ctrl") */
    size_t ninputs;
    int dtype;           /* attr "dtype" (or "T"), TensorFlow DataType enum; 0 if none */
    graph_shape_t shape; /* attr "shape" (or first of "_output_shapes") */
} graph_node_t;

typedef struct graph_tensor_info {
    const char *alias; /* the signature's map key */
    const char *name;  /* tensor name, "node:0" */
    int dtype;
    graph_shape_t shape;
} graph_tensor_info_t;

typedef struct graph_signature {
    const char *key;
    const char *method_name;
    graph_tensor_info_t *inputs;
    size_t ninputs;
    graph_tensor_info_t *outputs;
    size_t noutputs;
} graph_signature_t;

typedef struct graph_summary {
    const char *tensorflow_version;     /* "" when absent */
    const char *tensorflow_git_version; /* "" when absent */
    const char **tags;
    size_t ntags;
    int producer; /* GraphDef versions.producer */
    graph_node_t *nodes;
    size_t nnodes;
    size_t nfunctions;      /* functions in the library */
    size_t nfunction_nodes; /* nodes inside those functions */
    const char **function_ops; /* op of each function node (for op counts) */
    graph_signature_t *signatures;
    size_t nsignatures;
    /* Added: computed by graph_parse, read by graph_input_candidates and
     * graph_summary_gen (alias is NULL in both lists; at most
     * GRAPH_CANDIDATES_MAX entries each).  Inputs: every Placeholder /
     * PlaceholderWithDefault node as "name:0" (its dtype and shape attrs),
     * then every signature input not already listed.  Outputs: every
     * signature output, then "name:0" of every node that no other node
     * consumes (ops without outputs, such as NoOp, left out). */
    graph_tensor_info_t *input_candidates;
    size_t ninput_candidates;
    graph_tensor_info_t *output_candidates;
    size_t noutput_candidates;
} graph_summary_t;

/* Added: the most entries a candidate list holds. */
#define GRAPH_CANDIDATES_MAX 1000

typedef enum { GRAPH_FORMAT_BINARY, GRAPH_FORMAT_TEXT } graph_format_t;

/* Parses the SavedModel in the file at path.  display_name (e.g.
 * "saved_model.pb") is used in error messages.  Fills *out (arena memory). */
bool graph_load(arena_t *arena, const char *path, graph_format_t format, const char *display_name,
                graph_summary_t *out, nn_error_t *err) __attribute__((warn_unused_result));

/* Same, from bytes in memory (used by tests and fuzzers).
 * Signatures are sorted by key and their inputs / outputs by alias (a key
 * given twice keeps its last value, as protobuf maps do).  Node names must
 * be non-empty and unique, ops non-empty, kept strings valid UTF-8 without
 * NUL bytes, shapes at most 254 dimensions of size -1 or more.  The summary
 * may use at most 64 MiB plus 4 bytes per input byte of arena memory; a
 * graph that needs more (only possible with pathological inputs such as
 * millions of empty nodes) is refused as invalid_graph too. */
bool graph_parse(arena_t *arena, const unsigned char *data, size_t len, graph_format_t format,
                 const char *display_name, graph_summary_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The node a tensor name refers to: "name" and "name:0" both mean output 0
 * of node "name"; "name:N" output N.  NULL when no such node (or a
 * malformed ":N" suffix).  Linear in the node count. */
const graph_node_t *graph_find_tensor(const graph_summary_t *graph, const char *tensor_name);

/* Candidate input tensor names: every Placeholder / PlaceholderWithDefault
 * node as "name:0", then every signature input tensor not already listed.
 * Returns the count written into out (at most max). */
size_t graph_input_candidates(const graph_summary_t *graph, const char **out, size_t max);

/* Up to max node names closest to name (edit distance, then name order),
 * as "name:0", for "did you mean" messages. */
size_t graph_closest_names(arena_t *arena, const graph_summary_t *graph, const char *name,
                           const char **out, size_t max);

/* The summary served by GET /networks/{id}/graph/ and stored as JSONB:
 * {"inputs": [{"name","dtype","shape"}], "outputs": [candidate outputs:
 *  signature outputs then nodes no other node consumes], "node_count",
 *  "function_count", "ops": {"Op": count}, "tensorflow_version",
 *  "tensorflow_git_version", "tags", "signatures": {key: {"method_name",
 *  "inputs": {alias: {"name","dtype","shape"}}, "outputs": {...}}}}
 * dtype is TensorFlow's name without the DT_ prefix, lowercase ("float");
 * shape is null when unknown, else a list with -1 for unknown dims. */
bool graph_summary_gen(yajl_gen gen, const graph_summary_t *graph);

/* TensorFlow DataType enum value to its lowercase name ("float", "int32",
 * "float_ref", ...); "unknown" for values it does not know. */
const char *graph_dtype_name(int dtype);

#endif
