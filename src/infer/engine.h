/* engine.h - the CPU inference engine: runs a deployed TensorFlow
 * SavedModel in float32 and returns raw tensors from any node.
 *
 * A model is loaded once from a TensorFlow Serving version directory
 * (<deploy_dir>/<network id>/1/: saved_model.pb or saved_model.pbtxt, and
 * variables/ when the graph has variables), kept by the caller (nnreg-inferd
 * keeps recently used ones), and run many times.  Loading parses the
 * GraphDef with every attribute the kernels need, inlines the function
 * library behind (Stateful)PartitionedCall (TF2 graphs), and restores
 * VariableV2 / VarHandleOp values from the variables bundle.  A run prunes
 * the graph to what the fetched tensors need, orders it, plans buffers by
 * liveness and runs the kernels (convolutions and matrix products through
 * cblas_sgemm).
 *
 * A loaded model is immutable: several runs may share it (one at a time per
 * thread; nothing in it is written during a run).
 *
 * Errors (nn_error_t): an unknown fetch or feed name is a 400
 * "unknown_tensor" whose message lists close names; a graph that needs an
 * op the engine does not run is a 400 "unsupported_op" naming the op and
 * the node; shapes that do not agree (a feed of the wrong shape) a 400
 * "invalid_input"; a damaged model a 500. */
#ifndef NNREG_INFER_ENGINE_H
#define NNREG_INFER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"
#include "util/tensor.h"

typedef struct infer_model infer_model_t;

/* Loads the model in version_dir.  *out is malloc-owned: free it with
 * infer_model_free.  A graph or variables bundle the engine cannot read is
 * a damaged model: a 500 whose code says which ("invalid_graph",
 * "invalid_variables") and whose message says what is wrong. */
bool infer_model_load(const char *version_dir, infer_model_t **out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The same from the bytes of a saved_model.pb (text false) or
 * saved_model.pbtxt (text true) in memory, without variables (a variable
 * node then fails the runs that need it): for tests and fuzzing.  data is
 * not kept.  Bytes that are not a graph the engine reads are a 400
 * "invalid_graph". */
bool infer_model_parse(const unsigned char *data, size_t len, bool text, infer_model_t **out,
                       nn_error_t *err) __attribute__((warn_unused_result));

void infer_model_free(infer_model_t *model);

/* Bytes the loaded model holds (weights, graph), for a memory cap. */
size_t infer_model_bytes(const infer_model_t *model);

/* Runs the model: feeds are matched to nodes by name ("name" or
 * "name:0"); each fetch is a node name with an optional ":N".  out
 * receives nfetch tensors, in fetch order, each named "node:N"; their
 * memory is in arena.  Intermediate buffers are malloc'd, freed as soon as
 * their last reader has run (so a run holds its live set, not the whole
 * graph) and always freed before infer_run returns; results are copied
 * into arena (int32 / int64 results, such as a Shape, converted to float).
 * A feed replaces the node it names (nothing upstream of it runs); a
 * Placeholder with a declared shape checks the feed's (-1 matches any
 * size); a PlaceholderWithDefault not fed takes its default.  Feed data is
 * only read.  Bad graphs can ask for any shape: a tensor over 1 GiB is a
 * 400 "invalid_input". */
bool infer_run(const infer_model_t *model, arena_t *arena, const nn_tensor_t *feeds, size_t nfeeds,
               const char *const *fetches, size_t nfetches, nn_tensor_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* The OpenBLAS kernel set in use ("SkylakeX", "Haswell", "Prescott"...),
 * for logs: convolutions and matrix products run 2-3x slower on the
 * generic "Prescott" set. */
const char *infer_blas_core(void);

/* What OPENBLAS_CORETYPE should say on this CPU when OpenBLAS's own
 * detection fell back to its generic kernels (Debian's 0.3.21 does so on
 * CPUs newer than it knows, such as Sapphire Rapids): "SkylakeX" when the
 * CPU has AVX-512, "Haswell" with AVX2 and FMA; NULL when the detection
 * worked, OPENBLAS_CORETYPE is already set, or nothing better exists.
 * OpenBLAS reads the variable when it is loaded, before main(): a program
 * sets it and re-executes itself, or its service definition sets it. */
const char *infer_blas_coretype_hint(void);

/* Makes OpenBLAS load again with what suits this process: the kernel set of
 * infer_blas_coretype_hint(), and with one_thread, one BLAS thread unless
 * OPENBLAS_NUM_THREADS says otherwise.  When either has to be set it goes
 * into the environment and the program re-executes itself (argv, through
 * /proc/self/exe); returns when nothing had to change, or when the exec
 * failed (the process then runs as it is). */
void infer_blas_reexec(char **argv, bool one_thread);

/* What a run cost, for benchmarks, logs and tests. */
typedef struct infer_stats {
    size_t nodes_run;  /* nodes computed (constants and variables included) */
    size_t peak_bytes; /* most bytes intermediate buffers held at once */
} infer_stats_t;

/* infer_run, also filling *stats (when not NULL) whether it succeeds or
 * not. */
bool infer_run_stats(const infer_model_t *model, arena_t *arena, const nn_tensor_t *feeds,
                     size_t nfeeds, const char *const *fetches, size_t nfetches, nn_tensor_t *out,
                     infer_stats_t *stats, nn_error_t *err) __attribute__((warn_unused_result));

/* Whether the engine has a kernel for this op (or inlines / ignores it). */
bool infer_op_supported(const char *op);

#endif
