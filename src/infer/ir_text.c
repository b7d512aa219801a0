/* ir_text.c - the engine's reading of a text-format SavedModel
 * (saved_model.pbtxt): the same walk as ir.c, over pbtext's named fields.
 * Fields the engine does not use are skipped whole; nesting follows the
 * schema (pbtext bounds what is skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/ir_read.h"
#include "model/pbtext.h"

typedef struct tr {
    rd_t *r;
    pbt_parser_t *p;
} tr_t;

static bool tfail(tr_t *t, size_t offset, const char *what)
{
    size_t line, col;
    if (t->p->failed) {
        pbt_position(t->p, t->p->error_offset, &line, &col);
        return nn_error_set(t->r->err, 400, "invalid_graph", "%s: line %zu, column %zu: %s",
                            t->r->display, line, col, t->p->error);
    }
    pbt_position(t->p, offset, &line, &col);
    return nn_error_set(t->r->err, 400, "invalid_graph", "%s: line %zu, column %zu: %s",
                        t->r->display, line, col, what);
}

static bool is(const pbt_field_t *f, const char *name)
{
    return !f->extension && f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

/* Skips a field the walk does not use. */
static bool skip(tr_t *t, const pbt_field_t *f)
{
    if (f->is_message && !pbt_skip(t->p))
        return tfail(t, f->offset, "bad message");
    return true;
}

/* The next field of the current message: 1 field, 0 end, -1 error. */
static int next(tr_t *t, pbt_field_t *f)
{
    pbt_status_t st = pbt_next(t->p, f);
    if (st == PBT_ERROR) {
        tfail(t, 0, "bad text");
        return -1;
    }
    return st == PBT_FIELD;
}

static bool want_scalar(tr_t *t, const pbt_field_t *f)
{
    if (f->is_message) {
        char msg[128];
        snprintf(msg, sizeof msg, "field \"%.*s\" should be a value, not a message",
                 (int)(f->name_len < 60 ? f->name_len : 60), f->name);
        return tfail(t, f->offset, msg);
    }
    return true;
}

static bool want_message(tr_t *t, const pbt_field_t *f)
{
    if (!f->is_message) {
        char msg[128];
        snprintf(msg, sizeof msg, "field \"%.*s\" should be a message",
                 (int)(f->name_len < 60 ? f->name_len : 60), f->name);
        return tfail(t, f->offset, msg);
    }
    return true;
}

/* A string value decoded into the arena (NUL-terminated; *len its bytes). */
static const char *string_value(tr_t *t, const pbt_field_t *f, size_t *len)
{
    if (!want_scalar(t, f))
        return NULL;
    if (f->kind != PBT_STRING) {
        tfail(t, f->offset, "expected a string");
        return NULL;
    }
    char *dst = arena_alloc(t->r->arena, f->value_len + 1);
    size_t n = 0;
    if (!dst) {
        ir_oom(t->r);
        return NULL;
    }
    if (!pbt_string_decode(f, dst, &n)) {
        tfail(t, f->offset, "bad string");
        return NULL;
    }
    dst[n] = '\0';
    if (len)
        *len = n;
    return dst;
}

static bool int_value(tr_t *t, const pbt_field_t *f, int64_t *out)
{
    if (!want_scalar(t, f))
        return false;
    if (!pbt_int64(f, out))
        return tfail(t, f->offset, "expected an integer");
    return true;
}

static bool float_value(tr_t *t, const pbt_field_t *f, double *out)
{
    if (!want_scalar(t, f))
        return false;
    if (!pbt_double(f, out))
        return tfail(t, f->offset, "expected a number");
    return true;
}

static bool bool_value(tr_t *t, const pbt_field_t *f, bool *out)
{
    int64_t i;
    if (!want_scalar(t, f))
        return false;
    if (pbt_bool(f, out))
        return true;
    if (pbt_int64(f, &i)) {
        *out = i != 0;
        return true;
    }
    return tfail(t, f->offset, "expected true or false");
}

/* DT_* names (types.proto); _REF types are the base value + 100. */
static bool dtype_value(tr_t *t, const pbt_field_t *f, int64_t *out)
{
    static const struct {
        const char *name;
        int value;
    } names[] = {
        {"DT_INVALID", 0},  {"DT_FLOAT", 1},   {"DT_DOUBLE", 2},     {"DT_INT32", 3},
        {"DT_UINT8", 4},    {"DT_INT16", 5},   {"DT_INT8", 6},       {"DT_STRING", 7},
        {"DT_COMPLEX64", 8}, {"DT_INT64", 9},  {"DT_BOOL", 10},      {"DT_QINT8", 11},
        {"DT_QUINT8", 12},  {"DT_QINT32", 13}, {"DT_BFLOAT16", 14},  {"DT_QINT16", 15},
        {"DT_QUINT16", 16}, {"DT_UINT16", 17}, {"DT_COMPLEX128", 18}, {"DT_HALF", 19},
        {"DT_RESOURCE", 20}, {"DT_VARIANT", 21}, {"DT_UINT32", 22},  {"DT_UINT64", 23},
    };
    if (!want_scalar(t, f))
        return false;
    if (f->kind == PBT_NUMBER)
        return int_value(t, f, out);
    if (f->kind == PBT_IDENT) {
        size_t len = f->value_len;
        int ref = 0;
        if (len > 4 && memcmp(f->value + len - 4, "_REF", 4) == 0) {
            len -= 4;
            ref = 100;
        }
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == len && memcmp(names[i].name, f->value, len) == 0) {
                *out = names[i].value + ref;
                return true;
            }
        *out = 0; /* a type the engine does not know: never computed with */
        return true;
    }
    return tfail(t, f->offset, "expected a data type");
}

/* ---- shapes, tensors, attributes -------------------------------------- */

static bool t_shape(tr_t *t, vec_t *dims, bool *unknown_rank)
{
    pbt_field_t f;
    int k;
    while ((k = next(t, &f)) == 1) {
        if (is(&f, "dim")) {
            pbt_field_t g;
            int64_t size = 0; /* proto3 default: an empty dim is 0 */
            if (!want_message(t, &f))
                return false;
            while ((k = next(t, &g)) == 1) {
                if (is(&g, "size")) {
                    if (!int_value(t, &g, &size))
                        return false;
                } else if (!skip(t, &g)) {
                    return false;
                }
            }
            if (k < 0)
                return false;
            if (dims->n >= IR_MAX_SHAPE_DIMS)
                return tfail(t, f.offset, "a shape has too many dimensions");
            if (!ir_vec_push(t->r, dims, sizeof size, &size))
                return false;
        } else if (is(&f, "unknown_rank")) {
            if (!bool_value(t, &f, unknown_rank))
                return false;
        } else if (!skip(t, &f)) {
            return false;
        }
    }
    return k == 0;
}

static bool t_tensor(tr_t *t, ir_value_t **out)
{
    pbt_field_t f;
    int k;
    int64_t dtype = 0;
    vec_t dims = {0};
    bool unknown_rank = false;
    const char *content = NULL;
    size_t content_len = 0;
    numlist_t nums = {{0}, {0}};
    *out = NULL;
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "dtype")) {
            ok = dtype_value(t, &f, &dtype);
        } else if (is(&f, "tensor_shape")) {
            ok = want_message(t, &f) && t_shape(t, &dims, &unknown_rank);
        } else if (is(&f, "tensor_content")) {
            ok = (content = string_value(t, &f, &content_len)) != NULL;
        } else if (is(&f, "float_val") || is(&f, "double_val") || is(&f, "half_val")) {
            double d;
            int64_t h;
            if (is(&f, "half_val")) {
                /* half_val holds the 16 bits of each value */
                ok = int_value(t, &f, &h);
                if (ok) {
                    unsigned bits = (unsigned)h & 0xffff;
                    int e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
                    double v = e == 0 ? m / 16777216.0
                                      : (e == 31 ? (m ? NAN : INFINITY)
                                                 : ldexp((double)(m | 0x400), e - 25));
                    d = bits & 0x8000 ? -v : v;
                    ok = ir_num_push(t->r, &nums, d, ir_f2i(d));
                }
            } else {
                ok = float_value(t, &f, &d) && ir_num_push(t->r, &nums, d, ir_f2i(d));
            }
        } else if (is(&f, "int_val") || is(&f, "int64_val")) {
            int64_t i;
            ok = int_value(t, &f, &i) && ir_num_push(t->r, &nums, (double)i, i);
        } else if (is(&f, "bool_val")) {
            bool b;
            ok = bool_value(t, &f, &b) && ir_num_push(t->r, &nums, b, b);
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    if (k < 0)
        return false;
    (void)unknown_rank;
    return ir_tensor_build(t->r, (int)dtype, dims.items, dims.n, (const unsigned char *)content,
                           content_len, &nums, out);
}

static bool t_list(tr_t *t, ir_attr_t *a)
{
    pbt_field_t f;
    int k;
    vec_t ints = {0}, floats = {0}, strs = {0};
    while ((k = next(t, &f)) == 1) {
        if (is(&f, "s")) {
            const char *str = string_value(t, &f, NULL);
            if (!str || !ir_vec_push(t->r, &strs, sizeof str, &str))
                return false;
        } else if (is(&f, "i") || is(&f, "type")) {
            int64_t v;
            if (!(is(&f, "i") ? int_value(t, &f, &v) : dtype_value(t, &f, &v)) ||
                !ir_vec_push(t->r, &ints, sizeof v, &v))
                return false;
        } else if (is(&f, "f")) {
            double d;
            float x;
            if (!float_value(t, &f, &d))
                return false;
            x = (float)d;
            if (!ir_vec_push(t->r, &floats, sizeof x, &x))
                return false;
        } else if (!skip(t, &f)) {
            return false;
        }
    }
    a->ints = ints.items;
    a->nints = ints.n;
    a->floats = floats.items;
    a->nfloats = floats.n;
    a->strs = strs.items;
    a->nstrs = strs.n;
    return k == 0;
}

static bool t_attr_value(tr_t *t, ir_attr_t *a)
{
    pbt_field_t f;
    int k;
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "s") || is(&f, "placeholder")) {
            a->kind = is(&f, "s") ? IR_ATTR_S : IR_ATTR_PLACEHOLDER;
            ok = (a->s = string_value(t, &f, &a->slen)) != NULL;
        } else if (is(&f, "i")) {
            a->kind = IR_ATTR_I;
            ok = int_value(t, &f, &a->i);
        } else if (is(&f, "f")) {
            double d;
            a->kind = IR_ATTR_F;
            ok = float_value(t, &f, &d);
            a->f = (float)d;
        } else if (is(&f, "b")) {
            a->kind = IR_ATTR_B;
            ok = bool_value(t, &f, &a->b);
        } else if (is(&f, "type")) {
            a->kind = IR_ATTR_TYPE;
            ok = dtype_value(t, &f, &a->i);
        } else if (is(&f, "shape")) {
            vec_t dims = {0};
            a->kind = IR_ATTR_SHAPE;
            ok = want_message(t, &f) && t_shape(t, &dims, &a->b);
            a->ints = dims.items;
            a->nints = dims.n;
        } else if (is(&f, "tensor")) {
            a->kind = IR_ATTR_TENSOR;
            ok = want_message(t, &f) && t_tensor(t, &a->tensor);
        } else if (is(&f, "list")) {
            a->kind = IR_ATTR_LIST;
            ok = want_message(t, &f) && t_list(t, a);
        } else if (is(&f, "func")) {
            pbt_field_t g;
            a->kind = IR_ATTR_FUNC;
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "name"))
                    ok = (a->s = string_value(t, &g, &a->slen)) != NULL;
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0;
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    return k == 0;
}

static bool t_node(tr_t *t, size_t offset, ir_node_t *n)
{
    pbt_field_t f;
    int k;
    vec_t inputs = {0}, attrs = {0};
    memset(n, 0, sizeof *n);
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "name")) {
            ok = (n->name = string_value(t, &f, NULL)) != NULL;
        } else if (is(&f, "op")) {
            ok = (n->op = string_value(t, &f, NULL)) != NULL;
        } else if (is(&f, "input")) {
            const char *s = string_value(t, &f, NULL);
            ok = s && ir_vec_push(t->r, &inputs, sizeof s, &s);
        } else if (is(&f, "attr")) {
            pbt_field_t g;
            ir_attr_t a;
            memset(&a, 0, sizeof a);
            a.key = "";
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "key"))
                    ok = (a.key = string_value(t, &g, NULL)) != NULL;
                else if (is(&g, "value"))
                    ok = want_message(t, &g) && t_attr_value(t, &a);
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0 && ir_vec_push(t->r, &attrs, sizeof a, &a);
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    if (k < 0)
        return false;
    if (!n->name || !n->name[0] || !n->op || !n->op[0])
        return tfail(t, offset, "a node has no name or no op");
    n->inputs = inputs.items;
    n->ninputs = inputs.n;
    n->attrs = attrs.items;
    n->nattrs = attrs.n;
    return true;
}

/* ---- functions and objects -------------------------------------------- */

static bool t_arg_name(tr_t *t, vec_t *names)
{
    pbt_field_t f;
    int k;
    const char *name = "";
    while ((k = next(t, &f)) == 1) {
        if (is(&f, "name")) {
            if (!(name = string_value(t, &f, NULL)))
                return false;
        } else if (!skip(t, &f)) {
            return false;
        }
    }
    return k == 0 && ir_vec_push(t->r, names, sizeof name, &name);
}

static bool t_function(tr_t *t, ir_function_t *fn)
{
    pbt_field_t f, g;
    int k;
    vec_t in = {0}, out = {0}, nodes = {0}, rk = {0}, rv = {0};
    memset(fn, 0, sizeof *fn);
    fn->name = "";
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "signature")) {
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "name"))
                    ok = (fn->name = string_value(t, &g, NULL)) != NULL;
                else if (is(&g, "input_arg"))
                    ok = want_message(t, &g) && t_arg_name(t, &in);
                else if (is(&g, "output_arg"))
                    ok = want_message(t, &g) && t_arg_name(t, &out);
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0;
        } else if (is(&f, "node_def")) {
            ir_node_t n;
            ok = want_message(t, &f) && t_node(t, f.offset, &n) &&
                 ir_vec_push(t->r, &nodes, sizeof n, &n);
        } else if (is(&f, "ret")) {
            const char *key = "", *val = "";
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "key"))
                    ok = (key = string_value(t, &g, NULL)) != NULL;
                else if (is(&g, "value"))
                    ok = (val = string_value(t, &g, NULL)) != NULL;
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0 && ir_vec_push(t->r, &rk, sizeof key, &key) &&
                 ir_vec_push(t->r, &rv, sizeof val, &val);
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    fn->in_args = in.items;
    fn->nin = in.n;
    fn->out_args = out.items;
    fn->nout = out.n;
    fn->nodes = nodes.items;
    fn->nnodes = nodes.n;
    fn->ret_keys = rk.items;
    fn->ret_values = rv.items;
    fn->nret = rk.n;
    return k == 0;
}

static bool t_object(tr_t *t, object_t *o)
{
    pbt_field_t f, g;
    int k;
    vec_t ids = {0}, names = {0};
    memset(o, 0, sizeof *o);
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "children")) {
            int64_t id = -1;
            const char *name = "";
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "node_id"))
                    ok = int_value(t, &g, &id);
                else if (is(&g, "local_name"))
                    ok = (name = string_value(t, &g, NULL)) != NULL;
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0 && ir_vec_push(t->r, &ids, sizeof id, &id) &&
                 ir_vec_push(t->r, &names, sizeof name, &name);
        } else if (is(&f, "variable")) {
            o->var_name = "";
            ok = want_message(t, &f);
            while (ok && (k = next(t, &g)) == 1) {
                if (is(&g, "name"))
                    ok = (o->var_name = string_value(t, &g, NULL)) != NULL;
                else
                    ok = skip(t, &g);
            }
            ok = ok && k == 0;
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    o->child_ids = ids.items;
    o->child_names = names.items;
    o->nchildren = ids.n;
    return k == 0;
}

static bool t_meta_graph(tr_t *t, ir_graph_t *g)
{
    pbt_field_t f, h, l;
    int k;
    vec_t nodes = {0}, funcs = {0}, objs = {0};
    while ((k = next(t, &f)) == 1) {
        bool ok = true;
        if (is(&f, "graph_def")) {
            ok = want_message(t, &f);
            while (ok && (k = next(t, &h)) == 1) {
                if (is(&h, "node")) {
                    ir_node_t n;
                    ok = want_message(t, &h) && t_node(t, h.offset, &n) &&
                         ir_vec_push(t->r, &nodes, sizeof n, &n);
                } else if (is(&h, "library")) {
                    ok = want_message(t, &h);
                    while (ok && (k = next(t, &l)) == 1) {
                        if (is(&l, "function")) {
                            ir_function_t fn;
                            ok = want_message(t, &l) && t_function(t, &fn) &&
                                 ir_vec_push(t->r, &funcs, sizeof fn, &fn);
                        } else {
                            ok = skip(t, &l);
                        }
                    }
                    ok = ok && k == 0;
                } else {
                    ok = skip(t, &h);
                }
            }
            ok = ok && k == 0;
        } else if (is(&f, "object_graph_def")) {
            ok = want_message(t, &f);
            while (ok && (k = next(t, &h)) == 1) {
                if (is(&h, "nodes")) {
                    object_t o;
                    if (objs.n >= IR_MAX_OBJECTS)
                        return tfail(t, h.offset, "too many saved objects");
                    ok = want_message(t, &h) && t_object(t, &o) &&
                         ir_vec_push(t->r, &objs, sizeof o, &o);
                } else {
                    ok = skip(t, &h);
                }
            }
            ok = ok && k == 0;
        } else {
            ok = skip(t, &f);
        }
        if (!ok)
            return false;
    }
    if (k < 0)
        return false;
    g->nodes = nodes.items;
    g->nnodes = nodes.n;
    g->functions = funcs.items;
    g->nfunctions = funcs.n;
    return ir_object_vars(t->r, objs.items, objs.n, g);
}

bool ir_text_read(rd_t *r, const char *text, size_t len, ir_graph_t *out)
{
    pbt_parser_t *p = malloc(sizeof *p); /* ~2 KiB of levels: not on the stack */
    if (!p)
        return ir_oom(r);
    pbt_init(p, text, len);
    tr_t t = {r, p};
    pbt_field_t f;
    int k;
    bool ok = false, found = false;
    while ((k = next(&t, &f)) == 1) {
        if (is(&f, "meta_graphs")) {
            ok = want_message(&t, &f) && t_meta_graph(&t, out);
            found = true;
            break; /* the first meta graph is the one served */
        }
        if (!skip(&t, &f))
            break;
    }
    if (!found && k == 0)
        nn_error_set(r->err, 400, "invalid_graph", "%s: the SavedModel holds no meta graph",
                     r->display);
    free(p);
    return found && ok;
}
