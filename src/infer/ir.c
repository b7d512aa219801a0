/* ir.c - the engine's reading of a SavedModel: see ir.h.
 *
 * Field numbers are those of tensorflow/core/protobuf/saved_model.proto,
 * meta_graph.proto, saved_object_graph.proto and
 * tensorflow/core/framework/graph.proto, node_def.proto, attr_value.proto,
 * tensor.proto, tensor_shape.proto, function.proto, op_def.proto.
 *
 * The binary walk goes through pbwire (which bounds lengths and nesting);
 * the schema, not the input, decides how deep it goes. */
#include "infer/ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/ir_read.h"
#include "model/pbwire.h"

enum {
    SM_META_GRAPHS = 2,
    MG_GRAPH_DEF = 2,
    MG_OBJECT_GRAPH = 7,
    GD_NODE = 1,
    GD_LIBRARY = 2,
    LIB_FUNCTION = 1,
    FD_SIGNATURE = 1,
    FD_NODE_DEF = 3,
    FD_RET = 4,
    OPDEF_NAME = 1,
    OPDEF_INPUT_ARG = 2,
    OPDEF_OUTPUT_ARG = 3,
    ARGDEF_NAME = 1,
    ND_NAME = 1,
    ND_OP = 2,
    ND_INPUT = 3,
    ND_ATTR = 5,
    MAP_KEY = 1,
    MAP_VALUE = 2,
    AV_LIST = 1,
    AV_S = 2,
    AV_I = 3,
    AV_F = 4,
    AV_B = 5,
    AV_TYPE = 6,
    AV_SHAPE = 7,
    AV_TENSOR = 8,
    AV_PLACEHOLDER = 9,
    AV_FUNC = 10,
    LV_S = 2,
    LV_I = 3,
    LV_F = 4,
    LV_TYPE = 6,
    SHAPE_DIM = 2,
    SHAPE_UNKNOWN_RANK = 3,
    DIM_SIZE = 1,
    TP_DTYPE = 1,
    TP_SHAPE = 2,
    TP_CONTENT = 4,
    TP_FLOAT_VAL = 5,
    TP_DOUBLE_VAL = 6,
    TP_INT_VAL = 7,
    TP_INT64_VAL = 10,
    TP_BOOL_VAL = 11,
    TP_HALF_VAL = 13,
    NAL_NAME = 1,
    SOG_NODES = 1,
    SO_CHILDREN = 1,
    SO_VARIABLE = 7,
    OR_NODE_ID = 1,
    OR_LOCAL_NAME = 2,
    SV_NAME = 6,
};

bool ir_oom(rd_t *r)
{
    return nn_error_oom(r->err);
}

static bool bad(rd_t *r, pb_reader_t *pr, const char *what)
{
    if (pr->err->set)
        return nn_error_set(r->err, 400, "invalid_graph", "%s: %s at byte %zu", r->display,
                            pr->err->message, pr->err->offset);
    return nn_error_set(r->err, 400, "invalid_graph", "%s: %s", r->display, what);
}

bool ir_vec_push(rd_t *r, vec_t *v, size_t elem, const void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = arena_realloc(r->arena, v->items, v->n * elem, cap * elem);
        if (!p)
            return ir_oom(r);
        v->items = p;
        v->cap = cap;
    }
    memcpy((char *)v->items + v->n * elem, item, elem);
    v->n++;
    return true;
}

static const char *dup_field(rd_t *r, const pb_field_t *f)
{
    char *s = arena_strndup(r->arena, (const char *)f->data, f->len);
    if (!s)
        ir_oom(r);
    return s;
}

size_t ir_count(const int64_t *dims, size_t ndims)
{
    size_t n = 1;
    for (size_t i = 0; i < ndims; i++) {
        if (dims[i] < 0)
            return 0;
        if (dims[i] != 0 && n > (SIZE_MAX / 16) / (size_t)dims[i])
            return 0;
        n *= (size_t)dims[i];
    }
    return n;
}

const ir_attr_t *ir_attr(const ir_node_t *node, const char *key)
{
    for (size_t i = 0; i < node->nattrs; i++)
        if (strcmp(node->attrs[i].key, key) == 0)
            return &node->attrs[i];
    return NULL;
}

/* ---- numbers ------------------------------------------------------------ */

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), exp - 25);
    return sign ? -v : v;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

bool ir_num_push(rd_t *r, numlist_t *l, double d, int64_t i)
{
    return ir_vec_push(r, &l->d, sizeof d, &d) && ir_vec_push(r, &l->i, sizeof i, &i);
}

typedef enum { NUM_VARINT, NUM_FIXED32_FLOAT, NUM_FIXED64_DOUBLE, NUM_HALF } num_enc_t;

static bool read_numbers(rd_t *r, pb_reader_t *pr, const pb_field_t *f, num_enc_t enc, numlist_t *l)
{
    if (f->wire_type == PB_WIRE_LEN) {
        const unsigned char *p = f->data, *end = f->data + f->len;
        while (p < end) {
            if (enc == NUM_FIXED32_FLOAT) {
                if (end - p < 4)
                    return bad(r, pr, "truncated packed float list");
                uint32_t u = le32(p);
                float x;
                memcpy(&x, &u, 4);
                p += 4;
                if (!ir_num_push(r, l, x, ir_f2i(x)))
                    return false;
            } else if (enc == NUM_FIXED64_DOUBLE) {
                if (end - p < 8)
                    return bad(r, pr, "truncated packed double list");
                uint64_t u = le64(p);
                double x;
                memcpy(&x, &u, 8);
                p += 8;
                if (!ir_num_push(r, l, x, ir_f2i(x)))
                    return false;
            } else {
                uint64_t u;
                if (!pb_decode_varint(&p, end, &u))
                    return bad(r, pr, "bad varint in a packed list");
                double x = enc == NUM_HALF ? half_to_float((uint16_t)u) : (double)(int64_t)u;
                if (!ir_num_push(r, l, x, (int64_t)u))
                    return false;
            }
        }
        return true;
    }
    if (enc == NUM_FIXED32_FLOAT && f->wire_type == PB_WIRE_FIXED32) {
        uint32_t u = (uint32_t)f->value;
        float x;
        memcpy(&x, &u, 4);
        return ir_num_push(r, l, x, ir_f2i(x));
    }
    if (enc == NUM_FIXED64_DOUBLE && f->wire_type == PB_WIRE_FIXED64) {
        double x;
        memcpy(&x, &f->value, 8);
        return ir_num_push(r, l, x, ir_f2i(x));
    }
    if ((enc == NUM_VARINT || enc == NUM_HALF) && f->wire_type == PB_WIRE_VARINT) {
        double x = enc == NUM_HALF ? half_to_float((uint16_t)f->value) : (double)(int64_t)f->value;
        return ir_num_push(r, l, x, (int64_t)f->value);
    }
    return bad(r, pr, "a numeric field has the wrong wire type");
}

/* ---- shapes and tensors -------------------------------------------------- */

static bool read_shape(rd_t *r, pb_reader_t *pr, const pb_field_t *f, vec_t *dims, bool *unknown_rank)
{
    pb_reader_t sr;
    pb_field_t g;
    pb_status_t st;
    if (!pb_sub(pr, f, &sr))
        return bad(r, pr, "bad shape");
    while ((st = pb_next(&sr, &g)) == PB_FIELD) {
        if (g.number == SHAPE_UNKNOWN_RANK && g.wire_type == PB_WIRE_VARINT) {
            *unknown_rank = g.value != 0;
        } else if (g.number == SHAPE_DIM && g.wire_type == PB_WIRE_LEN) {
            pb_reader_t dr;
            pb_field_t h;
            int64_t size = 0;
            if (!pb_sub(&sr, &g, &dr))
                return bad(r, &sr, "bad dim");
            while ((st = pb_next(&dr, &h)) == PB_FIELD)
                if (h.number == DIM_SIZE && h.wire_type == PB_WIRE_VARINT)
                    size = pb_int64(&h);
            if (st == PB_ERROR)
                return bad(r, &dr, "bad dim");
            if (dims->n >= IR_MAX_SHAPE_DIMS)
                return bad(r, &sr, "a shape has too many dimensions");
            if (!ir_vec_push(r, dims, sizeof size, &size))
                return false;
        }
    }
    if (st == PB_ERROR)
        return bad(r, &sr, "bad shape");
    return true;
}

static bool tbad(rd_t *r, const char *what)
{
    return nn_error_set(r->err, 400, "invalid_graph", "%s: %s", r->display, what);
}

bool ir_tensor_build(rd_t *r, int dtype, const int64_t *dims, size_t ndims,
                     const unsigned char *content, size_t content_len, const numlist_t *nums,
                     ir_value_t **out)
{
    *out = NULL;
    ir_kind_t kind;
    size_t esize;
    switch (dtype) {
    case IR_DT_FLOAT: kind = IR_F32; esize = 4; break;
    case IR_DT_DOUBLE: kind = IR_F32; esize = 8; break;
    case IR_DT_HALF: kind = IR_F32; esize = 2; break;
    case IR_DT_INT32: kind = IR_I64; esize = 4; break;
    case IR_DT_INT64: kind = IR_I64; esize = 8; break;
    case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_BOOL: kind = IR_I64; esize = 1; break;
    case IR_DT_INT16: kind = IR_I64; esize = 2; break;
    default:
        return true; /* strings and others: left undecoded */
    }
    if (ndims > NN_TENSOR_MAX_DIMS)
        return tbad(r, "a constant tensor has more dimensions than the engine handles");
    ir_value_t *v = arena_calloc(r->arena, 1, sizeof *v);
    if (!v)
        return ir_oom(r);
    v->kind = kind;
    v->dtype = dtype;
    v->ndims = ndims;
    if (ndims)
        memcpy(v->dims, dims, ndims * sizeof(int64_t));
    v->count = ir_count(v->dims, v->ndims);
    bool empty = false;
    for (size_t i = 0; i < v->ndims; i++)
        empty |= v->dims[i] == 0;
    if (v->count == 0 && !empty)
        return tbad(r, "a constant tensor has a negative or too large shape");
    size_t bytes = (v->count ? v->count : 1) * (kind == IR_F32 ? 4 : 8);
    if (bytes > IR_MAX_CONST_BYTES - r->const_bytes)
        return nn_error_set(r->err, 400, "invalid_graph",
                            "%s: the graph's constants would take more than %zu bytes", r->display,
                            IR_MAX_CONST_BYTES);
    r->const_bytes += bytes;
    v->data = arena_alloc(r->arena, bytes);
    if (!v->data)
        return ir_oom(r);
    float *fd = v->data;
    int64_t *id = v->data;
    if (content_len) {
        if (content_len != v->count * esize)
            return tbad(r, "a constant's tensor_content does not match its shape");
        for (size_t i = 0; i < v->count; i++) {
            const unsigned char *p = content + i * esize;
            switch (dtype) {
            case IR_DT_FLOAT: { uint32_t u = le32(p); memcpy(&fd[i], &u, 4); break; }
            case IR_DT_DOUBLE: { uint64_t u = le64(p); double d; memcpy(&d, &u, 8); fd[i] = (float)d; break; }
            case IR_DT_HALF: fd[i] = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
            case IR_DT_INT32: id[i] = (int32_t)le32(p); break;
            case IR_DT_INT64: id[i] = (int64_t)le64(p); break;
            case IR_DT_UINT8: case IR_DT_BOOL: id[i] = p[0]; break;
            case IR_DT_INT8: id[i] = (int8_t)p[0]; break;
            case IR_DT_INT16: id[i] = (int16_t)(p[0] | p[1] << 8); break;
            }
        }
    } else {
        /* TensorFlow's rule: missing trailing values repeat the last one
         * (a single value fills the tensor); no values means zeros. */
        const double *dv = nums->d.items;
        const int64_t *iv = nums->i.items;
        if (nums->d.n > v->count && v->count)
            return tbad(r, "a constant has more values than its shape holds");
        for (size_t i = 0; i < v->count; i++) {
            size_t j = nums->d.n == 0 ? 0 : (i < nums->d.n ? i : nums->d.n - 1);
            if (kind == IR_F32)
                fd[i] = nums->d.n ? (float)dv[j] : 0.0f;
            else
                id[i] = nums->d.n ? iv[j] : 0;
        }
    }
    *out = v;
    return true;
}

static bool read_tensor(rd_t *r, pb_reader_t *pr, const pb_field_t *f, ir_value_t **out)
{
    pb_reader_t tr;
    pb_field_t g;
    pb_status_t st;
    int dtype = 0;
    vec_t dims = {0};
    bool unknown_rank = false;
    const unsigned char *content = NULL;
    size_t content_len = 0;
    numlist_t nums = {{0}, {0}};
    *out = NULL;
    if (!pb_sub(pr, f, &tr))
        return bad(r, pr, "bad tensor");
    while ((st = pb_next(&tr, &g)) == PB_FIELD) {
        bool ok = true;
        switch (g.number) {
        case TP_DTYPE:
            dtype = (int)g.value;
            break;
        case TP_SHAPE:
            ok = g.wire_type == PB_WIRE_LEN && read_shape(r, &tr, &g, &dims, &unknown_rank);
            break;
        case TP_CONTENT:
            if (g.wire_type == PB_WIRE_LEN) {
                content = g.data;
                content_len = g.len;
            }
            break;
        case TP_FLOAT_VAL:
            ok = read_numbers(r, &tr, &g, NUM_FIXED32_FLOAT, &nums);
            break;
        case TP_DOUBLE_VAL:
            ok = read_numbers(r, &tr, &g, NUM_FIXED64_DOUBLE, &nums);
            break;
        case TP_HALF_VAL:
            ok = read_numbers(r, &tr, &g, NUM_HALF, &nums);
            break;
        case TP_INT_VAL:
        case TP_INT64_VAL:
        case TP_BOOL_VAL:
            ok = read_numbers(r, &tr, &g, NUM_VARINT, &nums);
            break;
        default:
            break;
        }
        if (!ok)
            return nn_error_is_set(r->err) ? false : bad(r, &tr, "bad tensor");
    }
    if (st == PB_ERROR)
        return bad(r, &tr, "bad tensor");

    return ir_tensor_build(r, dtype, dims.items, dims.n, content, content_len, &nums, out);
}

/* ---- attributes and nodes ----------------------------------------------- */

static bool read_attr_value(rd_t *r, pb_reader_t *pr, const pb_field_t *f, ir_attr_t *a)
{
    pb_reader_t ar;
    pb_field_t g;
    pb_status_t st;
    if (!pb_sub(pr, f, &ar))
        return bad(r, pr, "bad attribute");
    while ((st = pb_next(&ar, &g)) == PB_FIELD) {
        switch (g.number) {
        case AV_S:
        case AV_PLACEHOLDER:
            if (g.wire_type != PB_WIRE_LEN)
                return bad(r, &ar, "bad string attribute");
            a->kind = g.number == AV_S ? IR_ATTR_S : IR_ATTR_PLACEHOLDER;
            if (!(a->s = dup_field(r, &g)))
                return false;
            a->slen = g.len;
            break;
        case AV_I:
            a->kind = IR_ATTR_I;
            a->i = pb_int64(&g);
            break;
        case AV_F: {
            uint32_t u = (uint32_t)g.value;
            a->kind = IR_ATTR_F;
            memcpy(&a->f, &u, 4);
            break;
        }
        case AV_B:
            a->kind = IR_ATTR_B;
            a->b = g.value != 0;
            break;
        case AV_TYPE:
            a->kind = IR_ATTR_TYPE;
            a->i = (int64_t)g.value;
            break;
        case AV_SHAPE: {
            vec_t dims = {0};
            a->kind = IR_ATTR_SHAPE;
            if (g.wire_type != PB_WIRE_LEN || !read_shape(r, &ar, &g, &dims, &a->b))
                return nn_error_is_set(r->err) ? false : bad(r, &ar, "bad shape attribute");
            a->ints = dims.items;
            a->nints = dims.n;
            break;
        }
        case AV_TENSOR:
            a->kind = IR_ATTR_TENSOR;
            if (g.wire_type != PB_WIRE_LEN || !read_tensor(r, &ar, &g, &a->tensor))
                return nn_error_is_set(r->err) ? false : bad(r, &ar, "bad tensor attribute");
            break;
        case AV_FUNC: {
            pb_reader_t nr;
            pb_field_t h;
            a->kind = IR_ATTR_FUNC;
            if (!pb_sub(&ar, &g, &nr))
                return bad(r, &ar, "bad function attribute");
            while ((st = pb_next(&nr, &h)) == PB_FIELD)
                if (h.number == NAL_NAME && h.wire_type == PB_WIRE_LEN && !(a->s = dup_field(r, &h)))
                    return false;
            if (st == PB_ERROR)
                return bad(r, &nr, "bad function attribute");
            break;
        }
        case AV_LIST: {
            pb_reader_t lr;
            pb_field_t h;
            numlist_t ints = {{0}, {0}}, floats = {{0}, {0}};
            vec_t strs = {0};
            a->kind = IR_ATTR_LIST;
            if (!pb_sub(&ar, &g, &lr))
                return bad(r, &ar, "bad list attribute");
            while ((st = pb_next(&lr, &h)) == PB_FIELD) {
                bool ok = true;
                if (h.number == LV_I || h.number == LV_TYPE)
                    ok = read_numbers(r, &lr, &h, NUM_VARINT, &ints);
                else if (h.number == LV_F)
                    ok = read_numbers(r, &lr, &h, NUM_FIXED32_FLOAT, &floats);
                else if (h.number == LV_S && h.wire_type == PB_WIRE_LEN) {
                    const char *str = dup_field(r, &h);
                    ok = str && ir_vec_push(r, &strs, sizeof str, &str);
                }
                if (!ok)
                    return false;
            }
            if (st == PB_ERROR)
                return bad(r, &lr, "bad list attribute");
            a->ints = ints.i.items;
            a->nints = ints.i.n;
            a->strs = strs.items;
            a->nstrs = strs.n;
            if (floats.d.n) {
                a->floats = arena_alloc(r->arena, floats.d.n * sizeof(float));
                if (!a->floats)
                    return ir_oom(r);
                for (size_t i = 0; i < floats.d.n; i++)
                    a->floats[i] = (float)((double *)floats.d.items)[i];
                a->nfloats = floats.d.n;
            }
            break;
        }
        default:
            break;
        }
    }
    if (st == PB_ERROR)
        return bad(r, &ar, "bad attribute");
    return true;
}

static bool read_node(rd_t *r, pb_reader_t *pr, const pb_field_t *f, ir_node_t *n)
{
    pb_reader_t nr;
    pb_field_t g;
    pb_status_t st;
    vec_t inputs = {0}, attrs = {0};
    memset(n, 0, sizeof *n);
    if (!pb_sub(pr, f, &nr))
        return bad(r, pr, "bad node");
    while ((st = pb_next(&nr, &g)) == PB_FIELD) {
        if (g.wire_type != PB_WIRE_LEN)
            continue;
        if (g.number == ND_NAME) {
            if (!(n->name = dup_field(r, &g)))
                return false;
        } else if (g.number == ND_OP) {
            if (!(n->op = dup_field(r, &g)))
                return false;
        } else if (g.number == ND_INPUT) {
            const char *s = dup_field(r, &g);
            if (!s || !ir_vec_push(r, &inputs, sizeof s, &s))
                return false;
        } else if (g.number == ND_ATTR) {
            pb_reader_t er;
            pb_field_t h;
            ir_attr_t a;
            memset(&a, 0, sizeof a);
            if (!pb_sub(&nr, &g, &er))
                return bad(r, &nr, "bad attribute entry");
            while ((st = pb_next(&er, &h)) == PB_FIELD) {
                if (h.number == MAP_KEY && h.wire_type == PB_WIRE_LEN) {
                    if (!(a.key = dup_field(r, &h)))
                        return false;
                } else if (h.number == MAP_VALUE && h.wire_type == PB_WIRE_LEN) {
                    if (!read_attr_value(r, &er, &h, &a))
                        return false;
                }
            }
            if (st == PB_ERROR)
                return bad(r, &er, "bad attribute entry");
            if (!a.key)
                a.key = "";
            if (!ir_vec_push(r, &attrs, sizeof a, &a))
                return false;
        }
    }
    if (st == PB_ERROR)
        return bad(r, &nr, "bad node");
    if (!n->name || !n->name[0] || !n->op || !n->op[0])
        return bad(r, &nr, "a node has no name or no op");
    n->inputs = inputs.items;
    n->ninputs = inputs.n;
    n->attrs = attrs.items;
    n->nattrs = attrs.n;
    return true;
}

/* ---- functions ----------------------------------------------------------- */

static bool read_arg_names(rd_t *r, pb_reader_t *pr, const pb_field_t *f, vec_t *names)
{
    pb_reader_t ar;
    pb_field_t g;
    pb_status_t st;
    const char *name = "";
    if (!pb_sub(pr, f, &ar))
        return bad(r, pr, "bad function argument");
    while ((st = pb_next(&ar, &g)) == PB_FIELD)
        if (g.number == ARGDEF_NAME && g.wire_type == PB_WIRE_LEN && !(name = dup_field(r, &g)))
            return false;
    if (st == PB_ERROR)
        return bad(r, &ar, "bad function argument");
    return ir_vec_push(r, names, sizeof name, &name);
}

static bool read_function(rd_t *r, pb_reader_t *pr, const pb_field_t *f, ir_function_t *fn)
{
    pb_reader_t fr;
    pb_field_t g;
    pb_status_t st;
    vec_t in = {0}, out = {0}, nodes = {0}, rk = {0}, rv = {0};
    memset(fn, 0, sizeof *fn);
    fn->name = "";
    if (!pb_sub(pr, f, &fr))
        return bad(r, pr, "bad function");
    while ((st = pb_next(&fr, &g)) == PB_FIELD) {
        if (g.wire_type != PB_WIRE_LEN)
            continue;
        if (g.number == FD_SIGNATURE) {
            pb_reader_t sr;
            pb_field_t h;
            if (!pb_sub(&fr, &g, &sr))
                return bad(r, &fr, "bad function signature");
            while ((st = pb_next(&sr, &h)) == PB_FIELD) {
                if (h.wire_type != PB_WIRE_LEN)
                    continue;
                if (h.number == OPDEF_NAME) {
                    if (!(fn->name = dup_field(r, &h)))
                        return false;
                } else if (h.number == OPDEF_INPUT_ARG) {
                    if (!read_arg_names(r, &sr, &h, &in))
                        return false;
                } else if (h.number == OPDEF_OUTPUT_ARG) {
                    if (!read_arg_names(r, &sr, &h, &out))
                        return false;
                }
            }
            if (st == PB_ERROR)
                return bad(r, &sr, "bad function signature");
        } else if (g.number == FD_NODE_DEF) {
            ir_node_t n;
            if (!read_node(r, &fr, &g, &n) || !ir_vec_push(r, &nodes, sizeof n, &n))
                return false;
        } else if (g.number == FD_RET) {
            pb_reader_t er;
            pb_field_t h;
            const char *k = "", *v = "";
            if (!pb_sub(&fr, &g, &er))
                return bad(r, &fr, "bad function ret");
            while ((st = pb_next(&er, &h)) == PB_FIELD) {
                if (h.wire_type == PB_WIRE_LEN && h.number == MAP_KEY && !(k = dup_field(r, &h)))
                    return false;
                if (h.wire_type == PB_WIRE_LEN && h.number == MAP_VALUE && !(v = dup_field(r, &h)))
                    return false;
            }
            if (st == PB_ERROR)
                return bad(r, &er, "bad function ret");
            if (!ir_vec_push(r, &rk, sizeof k, &k) || !ir_vec_push(r, &rv, sizeof v, &v))
                return false;
        }
    }
    if (st == PB_ERROR)
        return bad(r, &fr, "bad function");
    fn->in_args = in.items;
    fn->nin = in.n;
    fn->out_args = out.items;
    fn->nout = out.n;
    fn->nodes = nodes.items;
    fn->nnodes = nodes.n;
    fn->ret_keys = rk.items;
    fn->ret_values = rv.items;
    fn->nret = rk.n;
    return true;
}

/* ---- object graph (TF2 variables) ---------------------------------------- */

static bool read_object(rd_t *r, pb_reader_t *pr, const pb_field_t *f, object_t *o)
{
    pb_reader_t orr;
    pb_field_t g;
    pb_status_t st;
    vec_t ids = {0}, names = {0};
    memset(o, 0, sizeof *o);
    if (!pb_sub(pr, f, &orr))
        return bad(r, pr, "bad saved object");
    while ((st = pb_next(&orr, &g)) == PB_FIELD) {
        if (g.wire_type != PB_WIRE_LEN)
            continue;
        pb_reader_t cr;
        pb_field_t h;
        if (g.number == SO_CHILDREN) {
            int64_t id = -1;
            const char *name = "";
            if (!pb_sub(&orr, &g, &cr))
                return bad(r, &orr, "bad object reference");
            while ((st = pb_next(&cr, &h)) == PB_FIELD) {
                if (h.number == OR_NODE_ID && h.wire_type == PB_WIRE_VARINT)
                    id = pb_int64(&h);
                else if (h.number == OR_LOCAL_NAME && h.wire_type == PB_WIRE_LEN &&
                         !(name = dup_field(r, &h)))
                    return false;
            }
            if (st == PB_ERROR)
                return bad(r, &cr, "bad object reference");
            if (!ir_vec_push(r, &ids, sizeof id, &id) || !ir_vec_push(r, &names, sizeof name, &name))
                return false;
        } else if (g.number == SO_VARIABLE) {
            if (!pb_sub(&orr, &g, &cr))
                return bad(r, &orr, "bad saved variable");
            o->var_name = "";
            while ((st = pb_next(&cr, &h)) == PB_FIELD)
                if (h.number == SV_NAME && h.wire_type == PB_WIRE_LEN && !(o->var_name = dup_field(r, &h)))
                    return false;
            if (st == PB_ERROR)
                return bad(r, &cr, "bad saved variable");
        }
    }
    if (st == PB_ERROR)
        return bad(r, &orr, "bad saved object");
    o->child_ids = ids.items;
    o->child_names = names.items;
    o->nchildren = ids.n;
    return true;
}

/* Checkpoint keys of the object graph's variables: the path of local names
 * from the root (breadth first, first path wins), then
 * "/.ATTRIBUTES/VARIABLE_VALUE". */
bool ir_object_vars(rd_t *r, object_t *objs, size_t nobjs, ir_graph_t *g)
{
    vec_t vars = {0};
    if (nobjs == 0)
        return true;
    size_t *queue = arena_alloc(r->arena, nobjs * sizeof *queue);
    if (!queue)
        return ir_oom(r);
    size_t head = 0, tail = 0;
    objs[0].path = "";
    queue[tail++] = 0;
    while (head < tail) {
        object_t *o = &objs[queue[head++]];
        for (size_t c = 0; c < o->nchildren; c++) {
            int64_t id = o->child_ids[c];
            if (id < 0 || (uint64_t)id >= nobjs || objs[id].path)
                continue;
            objs[id].path = o->path[0] ? arena_printf(r->arena, "%s/%s", o->path, o->child_names[c])
                                       : o->child_names[c];
            if (!objs[id].path)
                return ir_oom(r);
            queue[tail++] = (size_t)id;
        }
    }
    for (size_t i = 0; i < nobjs; i++) {
        if (!objs[i].var_name || !objs[i].path)
            continue;
        ir_object_var_t v = {objs[i].var_name,
                             arena_printf(r->arena, "%s/.ATTRIBUTES/VARIABLE_VALUE", objs[i].path)};
        if (!v.key)
            return ir_oom(r);
        if (!ir_vec_push(r, &vars, sizeof v, &v))
            return false;
    }
    g->object_vars = vars.items;
    g->nobject_vars = vars.n;
    return true;
}

/* ---- the walk ------------------------------------------------------------ */

static bool read_meta_graph(rd_t *r, pb_reader_t *pr, const pb_field_t *f, ir_graph_t *g)
{
    pb_reader_t mr;
    pb_field_t h;
    pb_status_t st;
    vec_t nodes = {0}, funcs = {0}, objs = {0};
    if (!pb_sub(pr, f, &mr))
        return bad(r, pr, "bad meta graph");
    while ((st = pb_next(&mr, &h)) == PB_FIELD) {
        if (h.wire_type != PB_WIRE_LEN)
            continue;
        pb_reader_t gr;
        pb_field_t k;
        if (h.number == MG_GRAPH_DEF) {
            if (!pb_sub(&mr, &h, &gr))
                return bad(r, &mr, "bad graph_def");
            while ((st = pb_next(&gr, &k)) == PB_FIELD) {
                if (k.wire_type != PB_WIRE_LEN)
                    continue;
                if (k.number == GD_NODE) {
                    ir_node_t n;
                    if (!read_node(r, &gr, &k, &n) || !ir_vec_push(r, &nodes, sizeof n, &n))
                        return false;
                } else if (k.number == GD_LIBRARY) {
                    pb_reader_t lr;
                    pb_field_t l;
                    if (!pb_sub(&gr, &k, &lr))
                        return bad(r, &gr, "bad function library");
                    while ((st = pb_next(&lr, &l)) == PB_FIELD) {
                        if (l.number != LIB_FUNCTION || l.wire_type != PB_WIRE_LEN)
                            continue;
                        ir_function_t fn;
                        if (!read_function(r, &lr, &l, &fn) || !ir_vec_push(r, &funcs, sizeof fn, &fn))
                            return false;
                    }
                    if (st == PB_ERROR)
                        return bad(r, &lr, "bad function library");
                }
            }
            if (st == PB_ERROR)
                return bad(r, &gr, "bad graph_def");
        } else if (h.number == MG_OBJECT_GRAPH) {
            if (!pb_sub(&mr, &h, &gr))
                return bad(r, &mr, "bad object graph");
            while ((st = pb_next(&gr, &k)) == PB_FIELD) {
                if (k.number != SOG_NODES || k.wire_type != PB_WIRE_LEN)
                    continue;
                object_t o;
                if (objs.n >= IR_MAX_OBJECTS)
                    return bad(r, &gr, "too many saved objects");
                if (!read_object(r, &gr, &k, &o) || !ir_vec_push(r, &objs, sizeof o, &o))
                    return false;
            }
            if (st == PB_ERROR)
                return bad(r, &gr, "bad object graph");
        }
    }
    if (st == PB_ERROR)
        return bad(r, &mr, "bad meta graph");
    g->nodes = nodes.items;
    g->nnodes = nodes.n;
    g->functions = funcs.items;
    g->nfunctions = funcs.n;
    return ir_object_vars(r, objs.items, objs.n, g);
}

bool ir_graph_read(arena_t *arena, const unsigned char *data, size_t len, bool text,
                   const char *display_name, ir_graph_t *out, nn_error_t *err)
{
    rd_t r = {arena, err, display_name, 0};
    memset(out, 0, sizeof *out);
    if (text)
        return ir_text_read(&r, (const char *)data, len, out);
    pb_error_t perr;
    pb_reader_t pr;
    pb_field_t f;
    pb_status_t st;
    pb_reader_init(&pr, data, len, &perr);
    while ((st = pb_next(&pr, &f)) == PB_FIELD) {
        if (f.number == SM_META_GRAPHS && f.wire_type == PB_WIRE_LEN)
            return read_meta_graph(&r, &pr, &f, out);
    }
    if (st == PB_ERROR)
        return bad(&r, &pr, "bad SavedModel");
    return nn_error_set(err, 400, "invalid_graph", "%s: the SavedModel holds no meta graph",
                        display_name);
}
