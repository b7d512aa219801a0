/* blocked.h - which nodes of a graph nnreg's engine can compute: for every
 * top-level node, the first node on its way from the graph's inputs (itself
 * included) whose op the engine does not run (infer_op_supported).
 *
 * The network's fed tensors (its preprocessing inputs) cut the walk: a fed
 * node's value comes from the request, so what it is computed from in the
 * graph (a TF1 serving graph's ParseExample before "x", say) is never run.
 *
 * Only data inputs are followed (a control input "^x" orders execution, it
 * feeds no value).  The ops inside a (Stateful)PartitionedCall's function
 * are not judged here: the summary keeps function ops without saying which
 * function holds them, and a TF2 graph's library holds every signature's
 * functions (a regress signature's ParseExample beside the serving one), so
 * blocking every call would refuse good requests.  The engine names such an
 * op when the task runs (the task's error), and the deployment report lists
 * it beforehand.  Cycles (TF1 while loops) are cut where they close.
 *
 * Used when a network is created (the result is stored in network_nodes)
 * so that an inference request is checked with one indexed lookup. */
#ifndef NNREG_INFER_BLOCKED_H
#define NNREG_INFER_BLOCKED_H

#include <stdbool.h>
#include <stddef.h>

#include "model/graph.h"
#include "util/arena.h"
#include "util/error.h"

/* (*out)[i] is the blocking node for graph->nodes[i], NULL when the engine
 * runs everything it needs.  Arena memory.  supported decides per op (the
 * engine's infer_op_supported in production; tests pass their own).  fed:
 * the tensor names fed ("x", "x:0"), nfed of them. */
bool blocked_compute(arena_t *arena, const graph_summary_t *graph, bool (*supported)(const char *op),
                     const char *const *fed, size_t nfed, const graph_node_t ***out,
                     nn_error_t *err) __attribute__((warn_unused_result));

#endif
