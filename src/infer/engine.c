/* engine.c - loading a SavedModel for inference and running it: see
 * engine.h.
 *
 * Loading: the graph is read (ir.c), calls to the function library are
 * inlined (a call node "N" calling F becomes the nodes "N/<node>" of F's
 * body, one Identity "N/<arg>" per input argument, and N itself an
 * IdentityN of F's results, so "N:0" still names the call's first output),
 * every input is resolved to (node, output), and variables get their
 * values from the variables bundle.
 *
 * Running: the nodes the fetches need are found (feeds cut the graph),
 * ordered (depth first, post order), and run; each output keeps a count of
 * the readers still to come and its buffer is freed when that count drops
 * to zero, so the memory of a run is the live set, not the graph.
 * Intermediate buffers are malloc'd and always freed before infer_run
 * returns; fetched tensors are copied into the caller's arena. */
#define _GNU_SOURCE
#include "infer/engine.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infer/ir.h"
#include "infer/kernels.h"
#include "model/bundle.h"
#include "model/graph.h"

#define ENGINE_MAX_NODES 2000000u
#define ENGINE_MAX_INLINE_DEPTH 32
#define ENGINE_MAX_GRAPH_BYTES ((size_t)2 << 30)
#define ENGINE_CLOSE_NAMES 5
/* The largest tensor a run may create (a graph can ask for any shape). */
#define ENGINE_MAX_BUFFER_BYTES ((size_t)1 << 30)

typedef struct enode {
    ir_node_t ir; /* name, op, attrs (inputs as written, unused after load) */
    int32_t *in_node;
    int32_t *in_index;
    size_t nin;
    size_t nout;
    size_t slot; /* first output slot */
    const kernel_def_t *kernel;
    ir_value_t *value;     /* Const or restored variable */
    const char *var_error; /* why a variable has no value */
    int depth;             /* inlining depth */
    int32_t bias_add;      /* the BiasAdd that alone reads output 0 of this
                            * Conv2D / depthwise / MatMul, or -1 */
} enode_t;

struct infer_model {
    arena_t *arena;
    enode_t *nodes;
    size_t nnodes;
    size_t nslots;
    int32_t *sorted; /* node indices sorted by name */
    graph_summary_t names; /* for "did you mean" */
};

/* ---- small helpers --------------------------------------------------- */

static int cmp_sorted(const void *pa, const void *pb, void *ctx)
{
    const enode_t *nodes = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return strcmp(nodes[a].ir.name, nodes[b].ir.name);
}

static int32_t find_node(const infer_model_t *m, const char *name, size_t len)
{
    size_t lo = 0, hi = m->nnodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = m->nodes[m->sorted[mid]].ir.name;
        int c = strncmp(s, name, len);
        if (c == 0 && s[len] != '\0')
            c = 1;
        if (c == 0)
            return m->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* "name" or "name:N" -> node name length and N; false on a bad suffix. */
static bool split_tensor_name(const char *s, size_t *name_len, long *index)
{
    const char *colon = strrchr(s, ':');
    *index = 0;
    *name_len = strlen(s);
    if (!colon)
        return true;
    const char *p = colon + 1;
    if (!*p)
        return false;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 1000000)
            return false;
        v = v * 10 + (*p - '0');
    }
    *name_len = (size_t)(colon - s);
    *index = v;
    return true;
}

/* ---- inlining ----------------------------------------------------------- */

typedef struct nodevec {
    enode_t *items;
    size_t n, cap;
} nodevec_t;

static bool push_node(nodevec_t *v, const enode_t *n, nn_error_t *err)
{
    if (v->n >= ENGINE_MAX_NODES)
        return nn_error_set(err, 400, "invalid_graph",
                            "the graph has more than %u nodes once its functions are inlined",
                            ENGINE_MAX_NODES);
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        enode_t *p = realloc(v->items, cap * sizeof *p);
        if (!p)
            return nn_error_oom(err);
        v->items = p;
        v->cap = cap;
    }
    v->items[v->n++] = *n;
    return true;
}

static const ir_function_t *find_function(const ir_graph_t *g, const char *name)
{
    for (size_t i = 0; name && i < g->nfunctions; i++)
        if (strcmp(g->functions[i].name, name) == 0)
            return &g->functions[i];
    return NULL;
}

static const ir_function_t *called_function(const ir_graph_t *g, const ir_node_t *n)
{
    if (strcmp(n->op, "StatefulPartitionedCall") == 0 || strcmp(n->op, "PartitionedCall") == 0) {
        const ir_attr_t *f = ir_attr(n, "f");
        return f && f->kind == IR_ATTR_FUNC ? find_function(g, f->s) : NULL;
    }
    return find_function(g, n->op); /* a function called as an op */
}

/* Index of output `arg`:`idx` of a node of op inside a function body:
 * flattened outputs are numbered across the op's output args. */
static long output_index(const char *op, const char *arg, long idx)
{
    static const char *const bn[] = {"y", "batch_mean", "batch_variance", "reserve_space_1",
                                     "reserve_space_2", "reserve_space_3"};
    if (strncmp(op, "FusedBatchNorm", 14) == 0) {
        for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++)
            if (strcmp(arg, bn[i]) == 0)
                return (long)i + idx;
    }
    return idx;
}

/* Maps an input written inside function body fn (called by node prefix) to
 * a main-graph input string; NULL result with no error for a control
 * input. */
static bool map_body_input(arena_t *arena, const ir_function_t *fn, const char *prefix,
                           const char *in, const char **out, nn_error_t *err)
{
    *out = NULL;
    if (in[0] == '^')
        return true;
    const char *c1 = strchr(in, ':');
    if (!c1) {
        /* an argument (or, rarely, a node's first output) */
        *out = arena_printf(arena, "%s/%s", prefix, in);
        return *out ? true : nn_error_oom(err);
    }
    const char *c2 = strchr(c1 + 1, ':');
    size_t nlen = (size_t)(c1 - in);
    if (!c2) {
        /* "arg:N" is not produced by TensorFlow; treat it as "node:N" */
        *out = arena_printf(arena, "%s/%s", prefix, in);
        return *out ? true : nn_error_oom(err);
    }
    char *arg = arena_strndup(arena, c1 + 1, (size_t)(c2 - c1 - 1));
    if (!arg)
        return nn_error_oom(err);
    long idx = strtol(c2 + 1, NULL, 10);
    const char *op = "";
    for (size_t i = 0; i < fn->nnodes; i++)
        if (strlen(fn->nodes[i].name) == nlen && strncmp(fn->nodes[i].name, in, nlen) == 0)
            op = fn->nodes[i].op;
    *out = arena_printf(arena, "%s/%.*s:%ld", prefix, (int)nlen, in, output_index(op, arg, idx));
    return *out ? true : nn_error_oom(err);
}

static bool inline_call(arena_t *arena, nodevec_t *v, size_t at, const ir_function_t *fn,
                        nn_error_t *err)
{
    enode_t call = v->items[at];
    const char *prefix = call.ir.name;
    if (call.depth >= ENGINE_MAX_INLINE_DEPTH)
        return nn_error_set(err, 400, "invalid_graph",
                            "function calls nest more than %d deep at node \"%s\"",
                            ENGINE_MAX_INLINE_DEPTH, prefix);
    /* data inputs of the call */
    size_t ndata = 0;
    for (size_t i = 0; i < call.ir.ninputs; i++)
        ndata += call.ir.inputs[i][0] != '^';
    if (ndata != fn->nin)
        return nn_error_set(err, 400, "invalid_graph",
                            "node \"%s\" passes %zu inputs to function \"%s\", which takes %zu",
                            prefix, ndata, fn->name, fn->nin);
    size_t k = 0;
    for (size_t i = 0; i < call.ir.ninputs; i++) {
        if (call.ir.inputs[i][0] == '^')
            continue;
        enode_t arg;
        memset(&arg, 0, sizeof arg);
        arg.ir.name = arena_printf(arena, "%s/%s", prefix, fn->in_args[k++]);
        arg.ir.op = "Identity";
        arg.ir.inputs = arena_alloc(arena, sizeof(char *));
        if (!arg.ir.name || !arg.ir.inputs)
            return nn_error_oom(err);
        arg.ir.inputs[0] = call.ir.inputs[i];
        arg.ir.ninputs = 1;
        arg.depth = call.depth + 1;
        if (!push_node(v, &arg, err))
            return false;
    }
    for (size_t i = 0; i < fn->nnodes; i++) {
        const ir_node_t *b = &fn->nodes[i];
        enode_t n;
        memset(&n, 0, sizeof n);
        n.ir = *b;
        n.ir.name = arena_printf(arena, "%s/%s", prefix, b->name);
        n.ir.inputs = arena_alloc(arena, (b->ninputs + 1) * sizeof(char *));
        if (!n.ir.name || !n.ir.inputs)
            return nn_error_oom(err);
        n.ir.ninputs = 0;
        for (size_t j = 0; j < b->ninputs; j++) {
            const char *mapped;
            if (!map_body_input(arena, fn, prefix, b->inputs[j], &mapped, err))
                return false;
            if (mapped)
                n.ir.inputs[n.ir.ninputs++] = mapped;
        }
        n.depth = call.depth + 1;
        if (!push_node(v, &n, err))
            return false;
    }
    /* the call becomes an IdentityN of the function's results */
    enode_t *c = &v->items[at];
    c->ir.op = "IdentityN";
    c->ir.nattrs = 0;
    c->ir.inputs = arena_alloc(arena, (fn->nout + 1) * sizeof(char *));
    if (!c->ir.inputs)
        return nn_error_oom(err);
    c->ir.ninputs = fn->nout;
    for (size_t o = 0; o < fn->nout; o++) {
        const char *ret = NULL;
        for (size_t r = 0; r < fn->nret; r++)
            if (strcmp(fn->ret_keys[r], fn->out_args[o]) == 0)
                ret = fn->ret_values[r];
        if (!ret)
            return nn_error_set(err, 400, "invalid_graph",
                                "function \"%s\" does not say where its output \"%s\" comes from",
                                fn->name, fn->out_args[o]);
        const char *mapped;
        if (!map_body_input(arena, fn, prefix, ret, &mapped, err))
            return false;
        if (!mapped)
            return nn_error_set(err, 400, "invalid_graph", "function \"%s\" returns a control input",
                                fn->name);
        c->ir.inputs[o] = mapped;
    }
    return true;
}

/* ---- variables ---------------------------------------------------------- */

static bool is_variable_op(const char *op)
{
    return strcmp(op, "VariableV2") == 0 || strcmp(op, "Variable") == 0 ||
           strcmp(op, "VarHandleOp") == 0;
}

static bool read_entry(arena_t *arena, const char *vars_dir, const bundle_index_t *idx,
                       const bundle_entry_t *e, ir_value_t **out, const char **why)
{
    size_t esize = bundle_dtype_size(e->dtype);
    *out = NULL;
    if (e->nslices || e->slice_part) {
        *why = "is partitioned, which the engine does not read";
        return true;
    }
    if (e->ndims > NN_TENSOR_MAX_DIMS || esize == 0 ||
        (e->dtype != IR_DT_FLOAT && e->dtype != IR_DT_INT32 && e->dtype != IR_DT_INT64 &&
         e->dtype != IR_DT_DOUBLE)) {
        *why = "has a type or rank the engine does not compute with";
        return true;
    }
    if (e->size != e->num_elements * esize) {
        *why = "has a size that does not match its shape in the bundle";
        return true;
    }
    char *path = arena_printf(arena, "%s/variables.data-%05u-of-%05u", vars_dir, e->shard_id,
                              idx->num_shards);
    ir_value_t *v = arena_calloc(arena, 1, sizeof *v);
    unsigned char *raw = malloc(e->size ? e->size : 1);
    if (!path || !v || !raw) {
        free(raw);
        return false;
    }
    v->data = arena_alloc(arena, (e->num_elements ? e->num_elements : 1) * 8);
    if (!v->data) {
        free(raw);
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (fd >= 0 && got < e->size) {
        ssize_t k = pread(fd, raw + got, e->size - got, (off_t)(e->offset + got));
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    if (got != e->size) {
        free(raw);
        *why = "could not be read from its data shard";
        return true;
    }
    v->ndims = e->ndims;
    for (size_t i = 0; i < e->ndims; i++)
        v->dims[i] = e->dims[i];
    v->count = (size_t)e->num_elements;
    v->dtype = e->dtype;
    v->kind = (e->dtype == IR_DT_FLOAT || e->dtype == IR_DT_DOUBLE) ? IR_F32 : IR_I64;
    for (size_t i = 0; i < v->count; i++) {
        const unsigned char *p = raw + i * esize;
        if (e->dtype == IR_DT_FLOAT)
            memcpy(&ir_f32(v)[i], p, 4);
        else if (e->dtype == IR_DT_DOUBLE) {
            double d;
            memcpy(&d, p, 8);
            ir_f32(v)[i] = (float)d;
        } else if (e->dtype == IR_DT_INT32) {
            int32_t x;
            memcpy(&x, p, 4);
            ir_i64(v)[i] = x;
        } else {
            memcpy(&ir_i64(v)[i], p, 8);
        }
    }
    free(raw);
    *out = v;
    return true;
}

static bool restore_variables(infer_model_t *m, const ir_graph_t *g, const char *version_dir,
                              nn_error_t *err)
{
    bool any = false;
    for (size_t i = 0; i < m->nnodes; i++)
        any |= is_variable_op(m->nodes[i].ir.op);
    if (!any)
        return true;
    if (!version_dir) {
        for (size_t i = 0; i < m->nnodes; i++)
            if (is_variable_op(m->nodes[i].ir.op))
                m->nodes[i].var_error = "has no value: the model was read without its variables";
        return true;
    }
    char *vars_dir = arena_printf(m->arena, "%s/variables", version_dir);
    char *index_path = arena_printf(m->arena, "%s/variables/variables.index", version_dir);
    if (!vars_dir || !index_path)
        return nn_error_oom(err);
    bundle_index_t idx;
    bool have_index = false;
    struct stat st;
    if (stat(index_path, &st) == 0) {
        if (!bundle_read_index(m->arena, index_path, "variables/variables.index", &idx, err))
            return false;
        have_index = true;
    }
    for (size_t i = 0; i < m->nnodes; i++) {
        enode_t *n = &m->nodes[i];
        if (!is_variable_op(n->ir.op))
            continue;
        if (!have_index) {
            n->var_error = "has no value: the model has no variables/variables.index";
            continue;
        }
        const ir_attr_t *sn = ir_attr(&n->ir, "shared_name");
        const char *shared = sn && sn->kind == IR_ATTR_S && sn->s[0] ? sn->s : NULL;
        const char *cands[3] = {NULL, shared, n->ir.name};
        for (size_t k = 0; k < g->nobject_vars; k++)
            if (strcmp(g->object_vars[k].name, shared ? shared : n->ir.name) == 0)
                cands[0] = g->object_vars[k].key;
        const bundle_entry_t *e = NULL;
        for (size_t k = 0; k < 3 && !e; k++)
            if (cands[k])
                e = bundle_find(&idx, cands[k]);
        if (!e) {
            n->var_error = "is not in the variables bundle";
            continue;
        }
        const char *why = NULL;
        if (!read_entry(m->arena, vars_dir, &idx, e, &n->value, &why))
            return nn_error_oom(err);
        if (!n->value)
            n->var_error = why;
    }
    return true;
}

/* ---- loading ------------------------------------------------------------ */

static bool read_file(const char *path, unsigned char **data, size_t *len, nn_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *data = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return nn_error_set(err, 500, "internal_error", "cannot read %s: %s", path, strerror(errno));
    }
    if ((uint64_t)st.st_size > ENGINE_MAX_GRAPH_BYTES) {
        close(fd);
        return nn_error_set(err, 400, "invalid_graph", "the graph file is larger than %zu bytes",
                            ENGINE_MAX_GRAPH_BYTES);
    }
    *len = (size_t)st.st_size;
    *data = malloc(*len ? *len : 1);
    if (!*data) {
        close(fd);
        return nn_error_oom(err);
    }
    size_t got = 0;
    while (got < *len) {
        ssize_t k = read(fd, *data + got, *len - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (got != *len) {
        free(*data);
        *data = NULL;
        return nn_error_set(err, 500, "internal_error", "short read on %s", path);
    }
    return true;
}

static bool channels_last(const enode_t *n)
{
    const ir_attr_t *df = ir_attr(&n->ir, "data_format");
    return !df || df->kind != IR_ATTR_S || strcmp(df->s, "NHWC") == 0;
}

/* Marks each Conv2D / DepthwiseConv2dNative / MatMul whose output 0 has a
 * single reader in the whole graph, a channels-last BiasAdd with a constant
 * float bias: the run adds that bias inside the convolution when nobody
 * fetches the convolution's own output. */
static void find_bias_adds(infer_model_t *m)
{
    uint8_t *readers = calloc(m->nnodes ? m->nnodes : 1, 1);
    for (size_t i = 0; i < m->nnodes; i++)
        m->nodes[i].bias_add = -1;
    if (!readers)
        return; /* an optimization only */
    for (size_t i = 0; i < m->nnodes; i++)
        for (size_t j = 0; j < m->nodes[i].nin; j++) {
            int32_t src = m->nodes[i].in_node[j];
            if (m->nodes[i].in_index[j] != 0)
                readers[src] = 2; /* another output is read: no */
            else if (readers[src] < 2)
                readers[src]++;
        }
    for (size_t i = 0; i < m->nnodes; i++) {
        enode_t *b = &m->nodes[i];
        if (strcmp(b->ir.op, "BiasAdd") != 0 || b->nin != 2 || b->in_index[0] != 0 ||
            !channels_last(b))
            continue;
        const enode_t *c = &m->nodes[b->in_node[0]], *bias = &m->nodes[b->in_node[1]];
        if (readers[b->in_node[0]] != 1 || !bias->value || bias->value->kind != IR_F32 ||
            bias->value->ndims != 1 || !channels_last(c))
            continue;
        if (strcmp(c->ir.op, "Conv2D") == 0 || strcmp(c->ir.op, "DepthwiseConv2dNative") == 0 ||
            strcmp(c->ir.op, "MatMul") == 0)
            m->nodes[b->in_node[0]].bias_add = (int32_t)i;
    }
    free(readers);
}

static bool resolve_inputs(infer_model_t *m, nn_error_t *err)
{
    size_t slot = 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        enode_t *n = &m->nodes[i];
        n->kernel = kernel_find(n->ir.op);
        size_t ndata = 0;
        for (size_t j = 0; j < n->ir.ninputs; j++)
            ndata += n->ir.inputs[j][0] != '^';
        n->in_node = arena_alloc(m->arena, (ndata + 1) * sizeof(int32_t));
        n->in_index = arena_alloc(m->arena, (ndata + 1) * sizeof(int32_t));
        if (!n->in_node || !n->in_index)
            return nn_error_oom(err);
        n->nin = 0;
        for (size_t j = 0; j < n->ir.ninputs; j++) {
            const char *s = n->ir.inputs[j];
            if (s[0] == '^')
                continue;
            size_t len = 0;
            long idx;
            int32_t src = -1;
            if (split_tensor_name(s, &len, &idx))
                src = find_node(m, s, len);
            if (src < 0 && (src = find_node(m, s, strlen(s))) >= 0)
                idx = 0; /* a name with a colon in it */
            if (src < 0)
                return nn_error_set(err, 400, "invalid_graph",
                                    "node \"%s\" reads \"%s\", which is not a node of the graph",
                                    n->ir.name, s);
            n->in_node[n->nin] = src;
            n->in_index[n->nin] = (int32_t)idx;
            n->nin++;
        }
    }
    for (size_t i = 0; i < m->nnodes; i++) {
        enode_t *n = &m->nodes[i];
        if (n->kernel && n->kernel->nout == KERNEL_NOUT_PER_INPUT) {
            n->nout = n->nin;
        } else if (n->kernel && n->kernel->nout == KERNEL_NOUT_NUM_SPLIT) {
            const ir_attr_t *ns = ir_attr(&n->ir, "num_split");
            if (!ns || ns->kind != IR_ATTR_I || ns->i < 1 || ns->i > KERNEL_MAX_SPLIT)
                return nn_error_set(err, 400, "unsupported_op",
                                    "node \"%s\" (%s) needs num_split between 1 and %d",
                                    n->ir.name, n->ir.op, KERNEL_MAX_SPLIT);
            n->nout = (size_t)ns->i;
        } else if (n->kernel)
            n->nout = (size_t)n->kernel->nout;
        else
            n->nout = 1;
        /* outputs others read decide too (unknown ops, extra outputs) */
        n->slot = 0;
    }
    for (size_t i = 0; i < m->nnodes; i++)
        for (size_t j = 0; j < m->nodes[i].nin; j++) {
            enode_t *src = &m->nodes[m->nodes[i].in_node[j]];
            if (!src->kernel && (size_t)m->nodes[i].in_index[j] + 1 > src->nout)
                src->nout = (size_t)m->nodes[i].in_index[j] + 1;
        }
    for (size_t i = 0; i < m->nnodes; i++)
        for (size_t j = 0; j < m->nodes[i].nin; j++) {
            const enode_t *src = &m->nodes[m->nodes[i].in_node[j]];
            if ((size_t)m->nodes[i].in_index[j] >= src->nout)
                return nn_error_set(err, 400, "invalid_graph",
                                    "node \"%s\" reads output %d of node \"%s\" (%s), which has "
                                    "%zu output(s)",
                                    m->nodes[i].ir.name, (int)m->nodes[i].in_index[j], src->ir.name,
                                    src->ir.op, src->nout);
        }
    find_bias_adds(m);
    for (size_t i = 0; i < m->nnodes; i++) {
        m->nodes[i].slot = slot;
        slot += m->nodes[i].nout ? m->nodes[i].nout : 1;
    }
    m->nslots = slot;
    return true;
}

static bool build_model(infer_model_t *m, const ir_graph_t *g, nn_error_t *err)
{
    nodevec_t v = {0};
    for (size_t i = 0; i < g->nnodes; i++) {
        enode_t n;
        memset(&n, 0, sizeof n);
        n.ir = g->nodes[i];
        if (!push_node(&v, &n, err))
            goto fail;
    }
    for (size_t i = 0; i < v.n; i++) {
        const ir_function_t *fn = called_function(g, &v.items[i].ir);
        if (fn && !inline_call(m->arena, &v, i, fn, err))
            goto fail;
    }
    m->nnodes = v.n;
    m->nodes = arena_alloc(m->arena, (v.n ? v.n : 1) * sizeof(enode_t));
    m->sorted = arena_alloc(m->arena, (v.n ? v.n : 1) * sizeof(int32_t));
    m->names.nodes = arena_calloc(m->arena, v.n ? v.n : 1, sizeof(graph_node_t));
    if (!m->nodes || !m->sorted || !m->names.nodes) {
        nn_error_oom(err);
        goto fail;
    }
    if (v.n)
        memcpy(m->nodes, v.items, v.n * sizeof(enode_t));
    free(v.items);
    m->names.nnodes = m->nnodes;
    for (size_t i = 0; i < m->nnodes; i++) {
        m->sorted[i] = (int32_t)i;
        m->names.nodes[i].name = m->nodes[i].ir.name;
        m->names.nodes[i].op = m->nodes[i].ir.op;
    }
    qsort_r(m->sorted, m->nnodes, sizeof(int32_t), cmp_sorted, m->nodes);
    for (size_t i = 1; i < m->nnodes; i++)
        if (strcmp(m->nodes[m->sorted[i - 1]].ir.name, m->nodes[m->sorted[i]].ir.name) == 0)
            return nn_error_set(err, 400, "invalid_graph", "two nodes are named \"%s\"",
                                m->nodes[m->sorted[i]].ir.name);
    for (size_t i = 0; i < m->nnodes; i++) {
        enode_t *n = &m->nodes[i];
        if (strcmp(n->ir.op, "Const") == 0) {
            const ir_attr_t *val = ir_attr(&n->ir, "value");
            if (val && val->kind == IR_ATTR_TENSOR)
                n->value = val->tensor;
        }
    }
    return resolve_inputs(m, err);
fail:
    free(v.items);
    return false;
}

/* A new model from graph bytes; variables restored from version_dir when
 * it is not NULL. */
static bool model_from_bytes(const unsigned char *data, size_t len, bool text,
                             const char *version_dir, infer_model_t **out, nn_error_t *err)
{
    *out = NULL;
    infer_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->arena = arena_create(1 << 20))) {
        free(m);
        return nn_error_oom(err);
    }
    ir_graph_t g;
    bool ok = ir_graph_read(m->arena, data, len, text, text ? "saved_model.pbtxt" : "saved_model.pb",
                            &g, err) &&
              build_model(m, &g, err) && restore_variables(m, &g, version_dir, err);
    if (!ok) {
        infer_model_free(m);
        return false;
    }
    *out = m;
    return true;
}

bool infer_model_parse(const unsigned char *data, size_t len, bool text, infer_model_t **out,
                       nn_error_t *err)
{
    return model_from_bytes(data, len, text, NULL, out, err);
}

bool infer_model_load(const char *version_dir, infer_model_t **out, nn_error_t *err)
{
    char pb[4096], pbtxt[4096];
    *out = NULL;
    if ((size_t)snprintf(pb, sizeof pb, "%s/saved_model.pb", version_dir) >= sizeof pb ||
        (size_t)snprintf(pbtxt, sizeof pbtxt, "%s/saved_model.pbtxt", version_dir) >= sizeof pbtxt)
        return nn_error_set(err, 500, "internal_error", "model path too long");
    struct stat st;
    bool text = stat(pb, &st) != 0 && stat(pbtxt, &st) == 0;
    unsigned char *data;
    size_t len = 0;
    if (!read_file(text ? pbtxt : pb, &data, &len, err))
        return false;
    bool ok = model_from_bytes(data, len, text, version_dir, out, err);
    free(data);
    /* the model was checked when it was deployed: one that cannot be read
     * now is damaged, the service's problem (engine.h), whatever the code
     * says about what is wrong */
    if (!ok && err->status == 400)
        err->status = 500;
    return ok;
}

void infer_model_free(infer_model_t *model)
{
    if (!model)
        return;
    arena_destroy(model->arena);
    free(model);
}

size_t infer_model_bytes(const infer_model_t *model)
{
    return sizeof *model + arena_bytes_reserved(model->arena);
}

const char *infer_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *infer_blas_coretype_hint(void)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return NULL;
    const char *core = infer_blas_core();
    if (strcasecmp(core, "Prescott") != 0 && strcasecmp(core, "Core2") != 0 &&
        strcasecmp(core, "Nehalem") != 0 && strcasecmp(core, "Sandybridge") != 0)
        return NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void infer_blas_reexec(char **argv, bool one_thread)
{
    bool again = false;
    const char *core = infer_blas_coretype_hint();
    if (core) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        again = true;
    }
    /* Batch-1 inference on a few shared cores: a second BLAS thread spins
     * waiting for a core more than it helps (docs/performance.md). */
    if (one_thread && !getenv("OPENBLAS_NUM_THREADS")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        again = true;
    }
    /* Both are set now, so the new image does not come back here. */
    if (again)
        execv("/proc/self/exe", argv);
}

bool infer_op_supported(const char *op)
{
    return kernel_find(op) != NULL || strcmp(op, "StatefulPartitionedCall") == 0 ||
           strcmp(op, "PartitionedCall") == 0;
}

/* ---- running ------------------------------------------------------------ */

typedef struct rbuf {
    size_t refs;
    void *mem;
    size_t bytes;
    size_t *live; /* the run's count of bytes held by buffers */
} rbuf_t;

typedef struct slot {
    ir_value_t v;
    rbuf_t *buf;    /* NULL: not owned (constants, feeds) */
    uint32_t uses;  /* readers still to run (+1 when fetched) */
    bool ready;
} slot_t;

struct kernel_ctx {
    const infer_model_t *m;
    const enode_t *node;
    slot_t *slots;
    size_t *live, *peak; /* bytes held by buffers now, and at most */
};

static void buf_release(rbuf_t *b)
{
    if (b && --b->refs == 0) {
        *b->live -= b->bytes;
        free(b->mem);
        free(b);
    }
}

static void slot_release(slot_t *s)
{
    buf_release(s->buf);
    s->buf = NULL;
    s->v.data = NULL;
}

bool kernel_fail(kernel_args_t *a, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_error_set(a->err, 400, "invalid_input", "node \"%s\" (%s): %s", a->node->name,
                        a->node->op, msg);
}

bool kernel_need_f32(kernel_args_t *a, size_t j)
{
    if (j >= a->nin)
        return kernel_fail(a, "expects at least %zu inputs, has %zu", j + 1, a->nin);
    if (a->in[j]->kind != IR_F32 || !a->in[j]->data)
        return kernel_fail(a, "input %zu is not a float tensor", j);
    return true;
}

bool kernel_out(kernel_args_t *a, size_t i, ir_kind_t kind, const int64_t *dims, size_t ndims)
{
    slot_t *s = &a->ctx->slots[a->ctx->node->slot + i];
    if (ndims > NN_TENSOR_MAX_DIMS)
        return kernel_fail(a, "the result would have %zu dimensions, more than %d", ndims,
                           NN_TENSOR_MAX_DIMS);
    size_t count = ir_count(dims, ndims);
    bool empty = false;
    for (size_t d = 0; d < ndims; d++)
        empty |= dims[d] == 0;
    if (count == 0 && !empty)
        return kernel_fail(a, "the result's shape is negative or too large");
    size_t bytes = (count ? count : 1) * (kind == IR_F32 ? 4 : 8);
    if (bytes > ENGINE_MAX_BUFFER_BYTES)
        return kernel_fail(a, "the result would take %zu bytes, more than the %zu a tensor may", bytes,
                           ENGINE_MAX_BUFFER_BYTES);
    bytes = (bytes + 63) & ~(size_t)63;
    rbuf_t *b = malloc(sizeof *b);
    void *mem = b ? aligned_alloc(64, bytes) : NULL;
    if (!mem) {
        free(b);
        return nn_error_oom(a->err);
    }
    b->refs = 1;
    b->mem = mem;
    b->bytes = bytes;
    b->live = a->ctx->live;
    *b->live += bytes;
    if (*b->live > *a->ctx->peak)
        *a->ctx->peak = *b->live;
    slot_release(s);
    s->buf = b;
    ir_value_t *v = &a->out[i];
    v->kind = kind;
    v->dtype = kind == IR_F32 ? IR_DT_FLOAT : IR_DT_INT64;
    v->ndims = ndims;
    for (size_t d = 0; d < ndims; d++)
        v->dims[d] = dims[d];
    v->count = count;
    v->data = mem;
    return true;
}

static slot_t *input_slot(kernel_args_t *a, size_t j)
{
    const enode_t *n = a->ctx->node;
    const enode_t *src = &a->ctx->m->nodes[n->in_node[j]];
    return &a->ctx->slots[src->slot + (size_t)n->in_index[j]];
}

void kernel_alias(kernel_args_t *a, size_t i, size_t j, const int64_t *dims, size_t ndims)
{
    slot_t *in = input_slot(a, j);
    slot_t *s = &a->ctx->slots[a->ctx->node->slot + i];
    slot_release(s);
    s->buf = in->buf;
    if (s->buf)
        s->buf->refs++;
    ir_value_t *v = &a->out[i];
    *v = in->v;
    v->ndims = ndims;
    for (size_t d = 0; d < ndims; d++)
        v->dims[d] = dims[d];
}

bool kernel_reuse(kernel_args_t *a, size_t i, size_t j, const int64_t *dims, size_t ndims)
{
    slot_t *in = input_slot(a, j);
    if (!in->buf || in->buf->refs != 1 || in->uses != 1)
        return false;
    /* the same output read twice by this node (x*x) must stay */
    const enode_t *n = a->ctx->node;
    for (size_t k = 0; k < n->nin; k++)
        if (k != j && n->in_node[k] == n->in_node[j] && n->in_index[k] == n->in_index[j])
            return false;
    kernel_alias(a, i, j, dims, ndims);
    return true;
}

/* "[1, 224, 224, 3]" */
static void shape_text(const int64_t *dims, size_t ndims, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (size_t i = 0; i < ndims && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

static bool unknown_tensor(const infer_model_t *m, arena_t *arena, const char *what,
                           const char *name, nn_error_t *err)
{
    const char *close[ENGINE_CLOSE_NAMES];
    char list[600] = "";
    size_t n = graph_closest_names(arena, &m->names, name, close, ENGINE_CLOSE_NAMES);
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "",
                                 close[i]);
    return nn_error_set(err, 400, "unknown_tensor",
                        "the graph has no tensor named \"%s\" (%s)%s%s", name, what,
                        n ? "; close names: " : "", list);
}

static bool resolve_tensor(const infer_model_t *m, arena_t *arena, const char *what,
                           const char *name, int32_t *node, size_t *index, nn_error_t *err)
{
    size_t len = 0;
    long idx = 0;
    *node = -1;
    if (name && split_tensor_name(name, &len, &idx))
        *node = find_node(m, name, len);
    if (*node < 0 && name && (*node = find_node(m, name, strlen(name))) >= 0)
        idx = 0;
    if (*node < 0)
        return unknown_tensor(m, arena, what, name ? name : "", err);
    if ((size_t)idx >= m->nodes[*node].nout)
        return nn_error_set(err, 400, "unknown_tensor",
                            "node \"%.*s\" has %zu output(s); \"%s\" asks for output %ld",
                            (int)len, name, m->nodes[*node].nout, name, idx);
    *index = (size_t)idx;
    return true;
}

typedef struct run {
    size_t live, peak; /* before slots: buffers point at live */
    uint8_t *fused;    /* BiasAdd nodes whose bias was added already */
    slot_t *slots;
    size_t nslots;
    int32_t *order;
    uint8_t *mark;
    int32_t *stack;
    size_t *stack_pos;
} run_t;

static void run_free(run_t *r)
{
    if (r->slots)
        for (size_t i = 0; i < r->nslots; i++)
            slot_release(&r->slots[i]);
    free(r->slots);
    free(r->fused);
    free(r->order);
    free(r->mark);
    free(r->stack);
    free(r->stack_pos);
}

static bool run_node(const infer_model_t *m, run_t *r, const enode_t *n, nn_error_t *err)
{
    slot_t *out = &r->slots[n->slot];
    if (n->value) {
        out->v = *n->value;
        out->buf = NULL;
        return true;
    }
    if (n->var_error)
        return nn_error_set(err, 400, "invalid_graph", "variable \"%s\" (%s) %s", n->ir.name,
                            n->ir.op, n->var_error);
    if (strcmp(n->ir.op, "Placeholder") == 0)
        return nn_error_set(err, 400, "invalid_input",
                            "the input \"%s:0\" is needed for the requested outputs but was not fed",
                            n->ir.name);
    if (strcmp(n->ir.op, "Const") == 0)
        return nn_error_set(err, 400, "unsupported_op",
                            "constant \"%s\" has a type the engine does not compute with",
                            n->ir.name);
    if (!n->kernel)
        return nn_error_set(err, 400, "unsupported_op",
                            "op \"%s\" (node \"%s\") is not supported by the inference engine",
                            n->ir.op, n->ir.name);
    /* argument arrays on the stack for ordinary nodes, on the heap for
     * the rare node with many inputs (ConcatV2, IdentityN) */
    enum { SMALL = 16 };
    const ir_value_t *inp_small[SMALL];
    ir_value_t outs_small[SMALL];
    const ir_value_t **inp = inp_small;
    ir_value_t *outs = outs_small;
    if (n->nin > SMALL || n->nout > SMALL) {
        inp = malloc((n->nin + 1) * sizeof *inp);
        outs = calloc(n->nout + 1, sizeof *outs);
        if (!inp || !outs) {
            free(inp);
            free(outs);
            return nn_error_oom(err);
        }
    } else {
        memset(outs_small, 0, sizeof outs_small);
    }
    for (size_t j = 0; j < n->nin; j++)
        inp[j] = &r->slots[m->nodes[n->in_node[j]].slot + (size_t)n->in_index[j]].v;
    kernel_ctx_t kc = {m, n, r->slots, &r->live, &r->peak};
    kernel_args_t a = {&kc, &n->ir, inp, n->nin, outs, n->nout, err, NULL, 0, false};
    bool ok;
    if (r->fused[n - m->nodes]) {
        /* the bias is in the input already */
        kernel_alias(&a, 0, 0, inp[0]->dims, inp[0]->ndims);
        ok = true;
    } else {
        if (n->bias_add >= 0 && r->slots[n->slot].uses == 1) {
            const ir_value_t *bv = m->nodes[m->nodes[n->bias_add].in_node[1]].value;
            a.bias = ir_f32(bv);
            a.bias_count = bv->count;
        }
        ok = n->kernel->fn(&a);
        if (ok && a.bias_used)
            r->fused[n->bias_add] = 1;
    }
    for (size_t i = 0; ok && i < n->nout; i++)
        r->slots[n->slot + i].v = outs[i];
    if (inp != inp_small) {
        free(inp);
        free(outs);
    }
    return ok;
}

/* Whether a fed shape and a fully known declared shape are the same once
 * their size-1 dimensions are left out (reshaping between them moves no
 * byte).  A declared -1 (any size) never takes part: that shape would
 * have matched as it is. */
static bool same_but_unit_dims(const int64_t *fed, size_t nfed, const int64_t *declared,
                               size_t ndeclared)
{
    size_t a = 0, b = 0;
    for (;;) {
        while (a < nfed && fed[a] == 1)
            a++;
        while (b < ndeclared && declared[b] == 1)
            b++;
        if (a == nfed || b == ndeclared)
            break;
        if (declared[b] < 0 || fed[a] != declared[b])
            return false;
        a++;
        b++;
    }
    for (; b < ndeclared; b++)
        if (declared[b] != 1)
            return false;
    return a == nfed;
}

bool infer_run(const infer_model_t *model, arena_t *arena, const nn_tensor_t *feeds, size_t nfeeds,
               const char *const *fetches, size_t nfetches, nn_tensor_t *out, nn_error_t *err)
{
    return infer_run_stats(model, arena, feeds, nfeeds, fetches, nfetches, out, NULL, err);
}

bool infer_run_stats(const infer_model_t *model, arena_t *arena, const nn_tensor_t *feeds,
                     size_t nfeeds, const char *const *fetches, size_t nfetches, nn_tensor_t *out,
                     infer_stats_t *stats, nn_error_t *err)
{
    const infer_model_t *m = model;
    size_t nodes_run = 0;
    run_t r;
    memset(&r, 0, sizeof r);
    r.nslots = m->nslots;
    r.slots = calloc(m->nslots ? m->nslots : 1, sizeof(slot_t));
    r.order = malloc((m->nnodes + 1) * sizeof(int32_t));
    r.mark = calloc(m->nnodes + 1, 1);
    r.fused = calloc(m->nnodes + 1, 1);
    r.stack = malloc((m->nnodes + 1) * sizeof(int32_t));
    r.stack_pos = malloc((m->nnodes + 1) * sizeof(size_t));
    int32_t *fetch_node = arena_alloc(arena, (nfetches + 1) * sizeof(int32_t));
    size_t *fetch_index = arena_alloc(arena, (nfetches + 1) * sizeof(size_t));
    bool ok = false;
    if (!r.slots || !r.fused || !r.order || !r.mark || !r.stack || !r.stack_pos || !fetch_node || !fetch_index) {
        nn_error_oom(err);
        goto done;
    }
    /* feeds: a fed node is not computed (mark 3) */
    enum { M_NONE = 0, M_OPEN = 1, M_DONE = 2, M_FED = 3 };
    for (size_t i = 0; i < nfeeds; i++) {
        int32_t fn;
        size_t fi;
        if (!resolve_tensor(m, arena, "a feed", feeds[i].name, &fn, &fi, err))
            goto done;
        if (fi != 0 || m->nodes[fn].nout != 1) {
            nn_error_set(err, 400, "invalid_input",
                         "\"%s\" cannot be fed: only nodes with a single output can", feeds[i].name);
            goto done;
        }
        if (feeds[i].ndims > NN_TENSOR_MAX_DIMS || ir_count(feeds[i].dims, feeds[i].ndims) != feeds[i].count) {
            nn_error_set(err, 400, "invalid_input", "feed \"%s\": its dims do not match its count",
                         feeds[i].name);
            goto done;
        }
        const ir_attr_t *shape = ir_attr(&m->nodes[fn].ir, "shape");
        const int64_t *dims = feeds[i].dims;
        size_t ndims = feeds[i].ndims;
        if (shape && shape->kind == IR_ATTR_SHAPE && !shape->b &&
            strncmp(m->nodes[fn].ir.op, "Placeholder", 11) == 0) {
            bool match = shape->nints == feeds[i].ndims;
            for (size_t d = 0; match && d < shape->nints; d++)
                match = shape->ints[d] < 0 || shape->ints[d] == feeds[i].dims[d];
            if (!match && shape->nints <= NN_TENSOR_MAX_DIMS &&
                same_but_unit_dims(feeds[i].dims, feeds[i].ndims, shape->ints, shape->nints)) {
                /* Only size-1 dimensions differ (an image's [1, 1, 1, 1]
                 * for a declared [1]): the bytes are the same, in the same
                 * order, so the feed takes the declared shape. */
                dims = shape->ints;
                ndims = shape->nints;
                match = true;
            }
            if (!match) {
                char got[160], want[160];
                shape_text(feeds[i].dims, feeds[i].ndims, got, sizeof got);
                shape_text(shape->ints, shape->nints, want, sizeof want);
                nn_error_set(err, 400, "invalid_input",
                             "feed \"%s\" has shape %s but the input takes %s (-1: any size)",
                             feeds[i].name, got, want);
                goto done;
            }
        }
        slot_t *s = &r.slots[m->nodes[fn].slot];
        s->v.kind = IR_F32;
        s->v.dtype = IR_DT_FLOAT;
        s->v.ndims = ndims;
        for (size_t d = 0; d < ndims; d++)
            s->v.dims[d] = dims[d];
        s->v.count = feeds[i].count;
        s->v.data = feeds[i].data;
        r.mark[fn] = M_FED;
    }
    for (size_t i = 0; i < nfetches; i++)
        if (!resolve_tensor(m, arena, "a fetch", fetches[i], &fetch_node[i], &fetch_index[i], err))
            goto done;

    /* order: iterative depth-first post order from every fetch */
    size_t norder = 0;
    for (size_t f = 0; f < nfetches; f++) {
        int32_t root = fetch_node[f];
        if (r.mark[root] != M_NONE)
            continue;
        size_t sp = 0;
        r.stack[sp] = root;
        r.stack_pos[sp++] = 0;
        r.mark[root] = M_OPEN;
        while (sp) {
            int32_t cur = r.stack[sp - 1];
            const enode_t *n = &m->nodes[cur];
            size_t *pos = &r.stack_pos[sp - 1];
            /* constants and variables need nothing; their inputs (initial
             * values) are not read */
            size_t nin = n->value || n->var_error ? 0 : n->nin;
            if (*pos < nin) {
                int32_t next = n->in_node[(*pos)++];
                if (r.mark[next] == M_OPEN) {
                    nn_error_set(err, 400, "invalid_graph",
                                 "the graph has a cycle through node \"%s\"", m->nodes[next].ir.name);
                    goto done;
                }
                if (r.mark[next] == M_NONE) {
                    r.mark[next] = M_OPEN;
                    r.stack[sp] = next;
                    r.stack_pos[sp++] = 0;
                }
                continue;
            }
            r.mark[cur] = M_DONE;
            r.order[norder++] = cur;
            sp--;
        }
    }
    /* an op without a kernel fails the run before anything runs */
    for (size_t k = 0; k < norder; k++) {
        const enode_t *n = &m->nodes[r.order[k]];
        if (!n->value && !n->var_error && !n->kernel) {
            nn_error_set(err, 400, "unsupported_op",
                         "op \"%s\" (node \"%s\") is not supported by the inference engine",
                         n->ir.op, n->ir.name);
            goto done;
        }
    }
    /* readers of every output */
    for (size_t k = 0; k < norder; k++) {
        const enode_t *n = &m->nodes[r.order[k]];
        if (n->value || n->var_error)
            continue;
        for (size_t j = 0; j < n->nin; j++)
            r.slots[m->nodes[n->in_node[j]].slot + (size_t)n->in_index[j]].uses++;
    }
    for (size_t f = 0; f < nfetches; f++)
        r.slots[m->nodes[fetch_node[f]].slot + fetch_index[f]].uses++;

    for (size_t k = 0; k < norder; k++) {
        const enode_t *n = &m->nodes[r.order[k]];
        if (!run_node(m, &r, n, err))
            goto done;
        nodes_run++;
        if (n->value || n->var_error)
            continue;
        for (size_t j = 0; j < n->nin; j++) {
            slot_t *s = &r.slots[m->nodes[n->in_node[j]].slot + (size_t)n->in_index[j]];
            if (--s->uses == 0)
                slot_release(s);
        }
        for (size_t i = 0; i < n->nout; i++)
            if (r.slots[n->slot + i].uses == 0)
                slot_release(&r.slots[n->slot + i]);
    }
    for (size_t f = 0; f < nfetches; f++) {
        const ir_value_t *v = &r.slots[m->nodes[fetch_node[f]].slot + fetch_index[f]].v;
        nn_tensor_t *t = &out[f];
        memset(t, 0, sizeof *t);
        if (!v->data && v->count) {
            nn_error_set(err, 400, "unsupported_op", "\"%s\" has no value the engine computes",
                         fetches[f]);
            goto done;
        }
        t->name = arena_printf(arena, "%s:%zu", m->nodes[fetch_node[f]].ir.name, fetch_index[f]);
        t->ndims = v->ndims;
        for (size_t d = 0; d < v->ndims; d++)
            t->dims[d] = v->dims[d];
        t->count = v->count;
        t->data = arena_alloc(arena, (v->count ? v->count : 1) * sizeof(float));
        if (!t->name || !t->data) {
            nn_error_oom(err);
            goto done;
        }
        if (v->kind == IR_F32)
            memcpy(t->data, v->data, v->count * sizeof(float));
        else
            for (size_t i = 0; i < v->count; i++)
                t->data[i] = (float)ir_i64(v)[i];
    }
    ok = true;
done:
    run_free(&r);
    if (stats) {
        stats->nodes_run = nodes_run;
        stats->peak_bytes = r.peak;
    }
    return ok;
}
