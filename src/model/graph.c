/* graph.c - the summary of a TensorFlow SavedModel's first meta graph, read
 * from binary protobuf (pbwire) or text format (pbtext): see graph.h.
 *
 * One walker serves both formats.  A cursor_t hides which reader is under
 * it: cur_next() yields fields by number (text-format names are mapped to
 * numbers through the small per-message tables below), cur_enter() opens a
 * nested message, and the get_* helpers convert a field's value, checking
 * that the field has the expected kind (wire type, or token type in text).
 * Every walk_* function reads its message to the end, so in text format the
 * stream stays in step; messages the walker does not enter are skipped by
 * the cursor.  Nesting follows the schema (never the input), so the walk is
 * bounded; the readers bound the nesting of what they skip.
 *
 * Field numbers are those of tensorflow/core/protobuf/saved_model.proto,
 * meta_graph.proto and tensorflow/core/framework/graph.proto, node_def.proto,
 * attr_value.proto, tensor_shape.proto, function.proto, versions.proto;
 * DataType values are those of types.proto.
 */
#include "model/graph.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/pbtext.h"
#include "model/pbwire.h"
#include "util/log.h"

#define GRAPH_MAX_DIMS 254 /* TensorFlow's TensorShape limit */
#define POOL_CHUNK ((size_t)64 * 1024)
#define BUDGET_BASE ((size_t)64 << 20)
#define BUDGET_PER_INPUT_BYTE 4
/* graph_closest_names: names are compared on their first CLOSEST_MAX_LEN
 * bytes, and the search stops after CLOSEST_MAX_CELLS edit-distance cells
 * (a fraction of a second; real graphs need far fewer, pathological ones
 * get the best names found until then). */
#define CLOSEST_MAX_LEN 128
#define CLOSEST_MAX_CELLS ((size_t)1 << 28)

/* ---- the schema: field numbers, and names for the text format ---------- */

enum {
    SAVED_MODEL_SCHEMA_VERSION = 1,
    SAVED_MODEL_META_GRAPHS = 2,

    META_GRAPH_META_INFO_DEF = 1,
    META_GRAPH_GRAPH_DEF = 2,
    META_GRAPH_SIGNATURE_DEF = 5,

    META_INFO_TAGS = 4,
    META_INFO_TENSORFLOW_VERSION = 5,
    META_INFO_TENSORFLOW_GIT_VERSION = 6,

    GRAPH_DEF_NODE = 1,
    GRAPH_DEF_LIBRARY = 2,
    GRAPH_DEF_VERSIONS = 4,

    VERSION_DEF_PRODUCER = 1,

    LIBRARY_FUNCTION = 1,
    FUNCTION_DEF_NODE_DEF = 3,

    NODE_DEF_NAME = 1,
    NODE_DEF_OP = 2,
    NODE_DEF_INPUT = 3,
    NODE_DEF_ATTR = 5,

    MAP_ENTRY_KEY = 1,
    MAP_ENTRY_VALUE = 2,

    ATTR_VALUE_LIST = 1,
    ATTR_VALUE_TYPE = 6,
    ATTR_VALUE_SHAPE = 7,
    LIST_VALUE_SHAPE = 7,

    SHAPE_DIM = 2,
    SHAPE_UNKNOWN_RANK = 3,
    DIM_SIZE = 1,

    SIGNATURE_DEF_INPUTS = 1,
    SIGNATURE_DEF_OUTPUTS = 2,
    SIGNATURE_DEF_METHOD_NAME = 3,

    TENSOR_INFO_NAME = 1,
    TENSOR_INFO_DTYPE = 2,
    TENSOR_INFO_TENSOR_SHAPE = 3,
};

typedef struct field_name {
    const char *name;
    uint32_t number;
} field_name_t;

typedef struct msg_type {
    const char *name;           /* for messages: "NodeDef" */
    const field_name_t *fields; /* ends with {NULL, 0} */
} msg_type_t;

static const field_name_t saved_model_fields[] = {
    {"saved_model_schema_version", 1}, {"meta_graphs", 2}, {NULL, 0}};
static const field_name_t meta_graph_fields[] = {
    {"meta_info_def", 1}, {"graph_def", 2},      {"saver_def", 3},        {"collection_def", 4},
    {"signature_def", 5}, {"asset_file_def", 6}, {"object_graph_def", 7}, {NULL, 0}};
static const field_name_t meta_info_fields[] = {{"meta_graph_version", 1},
                                                {"stripped_op_list", 2},
                                                {"any_info", 3},
                                                {"tags", 4},
                                                {"tensorflow_version", 5},
                                                {"tensorflow_git_version", 6},
                                                {"stripped_default_attrs", 7},
                                                {"function_aliases", 8},
                                                {NULL, 0}};
static const field_name_t graph_def_fields[] = {{"node", 1},     {"library", 2},    {"version", 3},
                                                {"versions", 4}, {"debug_info", 5}, {NULL, 0}};
static const field_name_t version_def_fields[] = {
    {"producer", 1}, {"min_consumer", 2}, {"bad_consumers", 3}, {NULL, 0}};
static const field_name_t library_fields[] = {
    {"function", 1}, {"gradient", 2}, {"registered_gradients", 3}, {NULL, 0}};
static const field_name_t function_def_fields[] = {{"signature", 1},
                                                   {"node_def", 3},
                                                   {"ret", 4},
                                                   {"attr", 5},
                                                   {"control_ret", 6},
                                                   {"arg_attr", 7},
                                                   {"resource_arg_unique_id", 8},
                                                   {NULL, 0}};
static const field_name_t node_def_fields[] = {{"name", 1},
                                               {"op", 2},
                                               {"input", 3},
                                               {"device", 4},
                                               {"attr", 5},
                                               {"experimental_debug_info", 6},
                                               {"experimental_type", 7},
                                               {NULL, 0}};
static const field_name_t map_entry_fields[] = {{"key", 1}, {"value", 2}, {NULL, 0}};
static const field_name_t attr_value_fields[] = {
    {"list", 1},  {"s", 2},      {"i", 3},     {"f", 4},           {"b", 5}, {"type", 6},
    {"shape", 7}, {"tensor", 8}, {"func", 10}, {"placeholder", 9}, {NULL, 0}};
static const field_name_t list_value_fields[] = {{"s", 2},      {"i", 3},    {"f", 4},
                                                 {"b", 5},      {"type", 6}, {"shape", 7},
                                                 {"tensor", 8}, {"func", 9}, {NULL, 0}};
static const field_name_t shape_fields[] = {{"dim", 2}, {"unknown_rank", 3}, {NULL, 0}};
static const field_name_t dim_fields[] = {{"size", 1}, {"name", 2}, {NULL, 0}};
static const field_name_t signature_def_fields[] = {
    {"inputs", 1}, {"outputs", 2}, {"method_name", 3}, {"defaults", 4}, {NULL, 0}};
static const field_name_t tensor_info_fields[] = {
    {"name", 1}, {"dtype", 2}, {"tensor_shape", 3}, {"coo_sparse", 4}, {"composite_tensor", 5},
    {NULL, 0}};

static const msg_type_t T_SAVED_MODEL = {"SavedModel", saved_model_fields};
static const msg_type_t T_META_GRAPH = {"MetaGraphDef", meta_graph_fields};
static const msg_type_t T_META_INFO = {"MetaInfoDef", meta_info_fields};
static const msg_type_t T_GRAPH_DEF = {"GraphDef", graph_def_fields};
static const msg_type_t T_VERSION_DEF = {"VersionDef", version_def_fields};
static const msg_type_t T_LIBRARY = {"FunctionDefLibrary", library_fields};
static const msg_type_t T_FUNCTION_DEF = {"FunctionDef", function_def_fields};
static const msg_type_t T_NODE_DEF = {"NodeDef", node_def_fields};
static const msg_type_t T_ATTR_ENTRY = {"NodeDef.attr entry", map_entry_fields};
static const msg_type_t T_ATTR_VALUE = {"AttrValue", attr_value_fields};
static const msg_type_t T_LIST_VALUE = {"AttrValue.ListValue", list_value_fields};
static const msg_type_t T_SHAPE = {"TensorShapeProto", shape_fields};
static const msg_type_t T_DIM = {"TensorShapeProto.Dim", dim_fields};
static const msg_type_t T_SIGNATURE_ENTRY = {"MetaGraphDef.signature_def entry", map_entry_fields};
static const msg_type_t T_SIGNATURE_DEF = {"SignatureDef", signature_def_fields};
static const msg_type_t T_TENSOR_INFO_ENTRY = {"SignatureDef map entry", map_entry_fields};
static const msg_type_t T_TENSOR_INFO = {"TensorInfo", tensor_info_fields};

/* ---- DataType names --------------------------------------------------- */

/* Lowercase DataType names by enum value (types.proto); value v + 100 is
 * the reference type ("float_ref"), TF1 ref variables only. */
typedef struct dtype_name {
    const char *name;
    const char *ref;
} dtype_name_t;

static const dtype_name_t dtype_names[] = {
    [0] = {"invalid", "invalid_ref"},
    [1] = {"float", "float_ref"},
    [2] = {"double", "double_ref"},
    [3] = {"int32", "int32_ref"},
    [4] = {"uint8", "uint8_ref"},
    [5] = {"int16", "int16_ref"},
    [6] = {"int8", "int8_ref"},
    [7] = {"string", "string_ref"},
    [8] = {"complex64", "complex64_ref"},
    [9] = {"int64", "int64_ref"},
    [10] = {"bool", "bool_ref"},
    [11] = {"qint8", "qint8_ref"},
    [12] = {"quint8", "quint8_ref"},
    [13] = {"qint32", "qint32_ref"},
    [14] = {"bfloat16", "bfloat16_ref"},
    [15] = {"qint16", "qint16_ref"},
    [16] = {"quint16", "quint16_ref"},
    [17] = {"uint16", "uint16_ref"},
    [18] = {"complex128", "complex128_ref"},
    [19] = {"half", "half_ref"},
    [20] = {"resource", "resource_ref"},
    [21] = {"variant", "variant_ref"},
    [22] = {"uint32", "uint32_ref"},
    [23] = {"uint64", "uint64_ref"},
    [24] = {"float8_e5m2", "float8_e5m2_ref"},
    [25] = {"float8_e4m3fn", "float8_e4m3fn_ref"},
    [26] = {"float8_e4m3fnuz", "float8_e4m3fnuz_ref"},
    [27] = {"float8_e4m3b11fnuz", "float8_e4m3b11fnuz_ref"},
    [28] = {"float8_e5m2fnuz", "float8_e5m2fnuz_ref"},
    [29] = {"int4", "int4_ref"},
    [30] = {"uint4", "uint4_ref"},
};
#define NDTYPES ((int)(sizeof(dtype_names) / sizeof(dtype_names[0])))

const char *graph_dtype_name(int dtype)
{
    if (dtype >= 0 && dtype < NDTYPES)
        return dtype_names[dtype].name;
    if (dtype > 100 && dtype < 100 + NDTYPES)
        return dtype_names[dtype - 100].ref;
    return "unknown";
}

/* "DT_FLOAT" / "DT_FLOAT_REF" (text format enum names) to the value. */
static bool dtype_from_name(const char *s, size_t len, int *out)
{
    if (len < 4 || memcmp(s, "DT_", 3) != 0)
        return false;
    s += 3;
    len -= 3;
    bool ref = len > 4 && memcmp(s + len - 4, "_REF", 4) == 0;
    if (ref)
        len -= 4;
    for (int v = ref ? 1 : 0; v < NDTYPES; v++) {
        const char *n = dtype_names[v].name;
        if (strlen(n) != len)
            continue;
        size_t i = 0;
        while (i < len && s[i] == (n[i] >= 'a' && n[i] <= 'z' ? n[i] - 'a' + 'A' : n[i]))
            i++;
        if (i == len) {
            *out = ref ? v + 100 : v;
            return true;
        }
    }
    return false;
}

/* ---- small containers ------------------------------------------------- */

typedef void *(*alloc_fn)(void *ctx, size_t n);

/* A growable array of fixed-size items. */
typedef struct vec {
    void *data;
    size_t n;
    size_t cap;
} vec_t;

/* An open-addressing hash map from strings to uint32 values (< UINT32_MAX).
 * Slots hold only the hash and the value, 8 bytes, so that big maps stay
 * cache-friendly; the string of a value is found through key_of (node
 * names, say, live in the node array).  Strings are NUL-terminated and
 * never contain NUL. */
typedef const char *(*strmap_key_fn)(const void *ctx, uint32_t val);

typedef struct strmap_slot {
    uint32_t hash;
    uint32_t val1; /* value + 1; 0 marks an empty slot */
} strmap_slot_t;

typedef struct strmap {
    strmap_slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
    strmap_key_fn key_of;
    const void *key_ctx;
} strmap_t;

static void strmap_init(strmap_t *m, strmap_key_fn key_of, const void *key_ctx)
{
    memset(m, 0, sizeof(*m));
    m->key_of = key_of;
    m->key_ctx = key_ctx;
}

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* key (NUL-terminated) equals the len bytes at s; never reads past key's NUL. */
static bool key_equal(const char *key, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (key[i] == '\0' || key[i] != s[i])
            return false;
    return key[len] == '\0';
}

static bool strmap_lookup(const strmap_t *m, const char *s, size_t len, uint32_t hash,
                          uint32_t *val)
{
    if (m->cap == 0)
        return false;
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const strmap_slot_t *slot = &m->slots[i];
        if (slot->val1 == 0)
            return false;
        if (slot->hash == hash && key_equal(m->key_of(m->key_ctx, slot->val1 - 1), s, len)) {
            *val = slot->val1 - 1;
            return true;
        }
    }
}

static bool strmap_find(const strmap_t *m, const char *s, size_t len, uint32_t *val)
{
    return strmap_lookup(m, s, len, hash_bytes(s, len), val);
}

static bool strmap_grow(strmap_t *m, alloc_fn alloc, void *ctx)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (ncap > SIZE_MAX / sizeof(strmap_slot_t) / 2)
        return false;
    strmap_slot_t *slots = alloc(ctx, ncap * sizeof(*slots));
    if (!slots)
        return false;
    memset(slots, 0, ncap * sizeof(*slots));
    size_t mask = ncap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (m->slots[j].val1 == 0)
            continue;
        size_t i = m->slots[j].hash & mask;
        while (slots[i].val1)
            i = (i + 1) & mask;
        slots[i] = m->slots[j];
    }
    m->slots = slots;
    m->cap = ncap;
    return true;
}

/* Maps key to val unless key is there already: 1 inserted, 0 present
 * (*old set to its value), -1 out of memory.  Afterwards key_of(val) must
 * give key. */
static int strmap_put(strmap_t *m, const char *key, uint32_t val, uint32_t *old, alloc_fn alloc,
                      void *ctx)
{
    size_t len = strlen(key);
    uint32_t hash = hash_bytes(key, len);
    uint32_t found;
    if (strmap_lookup(m, key, len, hash, &found)) {
        if (old)
            *old = found;
        return 0;
    }
    if (val == UINT32_MAX)
        return -1;
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m, alloc, ctx))
        return -1;
    size_t mask = m->cap - 1;
    size_t i = hash & mask;
    while (m->slots[i].val1)
        i = (i + 1) & mask;
    m->slots[i].hash = hash;
    m->slots[i].val1 = val + 1;
    m->count++;
    return 1;
}

/* key_of for maps whose values index a vec_t of strings. */
static const char *string_at(const void *ctx, uint32_t val)
{
    const vec_t *v = ctx;
    return ((const char *const *)v->data)[val];
}

/* key_of for the node-name map. */
static const char *node_name_at(const void *ctx, uint32_t val)
{
    const vec_t *v = ctx;
    return ((const graph_node_t *)v->data)[val].name;
}

/* The node part of a tensor or input name: "x:1" -> "x", "^x" -> "x".
 * false when the ":N" suffix is malformed (not 1-9 digits) or the node part
 * is empty. */
static bool tensor_node_part(const char *s, size_t len, bool allow_control, size_t *start,
                             size_t *node_len)
{
    size_t b = 0;
    if (len > 0 && s[0] == '^') {
        if (!allow_control)
            return false;
        b = 1;
    }
    size_t colon = len;
    for (size_t i = len; i > b; i--) {
        if (s[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    }
    if (colon < len) {
        size_t nd = len - colon - 1;
        if (nd == 0 || nd > 9)
            return false;
        for (size_t i = colon + 1; i < len; i++)
            if (s[i] < '0' || s[i] > '9')
                return false;
    }
    *start = b;
    *node_len = colon - b;
    return *node_len > 0;
}

/* ---- the walk --------------------------------------------------------- */

typedef struct walk {
    arena_t *arena;
    graph_format_t format;
    pb_reader_t root; /* binary: errors of every sub-reader go to pberr */
    pb_error_t pberr;
    pbt_parser_t *text; /* text format */
    size_t budget;      /* arena bytes the summary may still take */
    size_t budget_total;
    bool over_budget;
    bool oom;
    size_t where; /* offset of the latest field (for memory errors) */

    char *pool; /* string pool: the current chunk's free bytes */
    size_t pool_left;
    char *keybuf; /* decoded text-format strings before they are kept */
    size_t keybuf_cap;

    vec_t nodes, tags, sigs, fops, inputs;
    int64_t dims[GRAPH_MAX_DIMS];
    strmap_t names; /* node name -> index in nodes */
    strmap_t ops;   /* op name -> index in opnames (interned) */
    vec_t opnames;
    size_t nmeta;
    graph_summary_t *out;
} walk_t;

typedef struct cursor {
    walk_t *w;
    const msg_type_t *type;
    pb_reader_t pb;
    bool skip_pending; /* text: the last field opened a message not entered */
} cursor_t;

typedef struct field {
    uint32_t number;  /* 0 for a text-format name this walker does not know */
    const char *name; /* from the type's table; NULL if unknown */
    size_t offset;
    pb_field_t pb;
    pbt_field_t pt;
} field_t;

/* Records the first error of the walk (in the reader that carries it). */
static bool walk_fail(walk_t *w, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool walk_fail(walk_t *w, size_t offset, const char *fmt, ...)
{
    char msg[sizeof(w->pberr.message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->format == GRAPH_FORMAT_BINARY)
        return pb_fail(&w->root, offset, "%s", msg);
    return pbt_fail(w->text, offset, "%s", msg);
}

static void *walk_alloc(walk_t *w, size_t n)
{
    if (n > w->budget) {
        w->over_budget = true;
        walk_fail(w, w->where,
                  "summarizing the graph would take more than %zu MiB of memory, more than a "
                  "graph of its size may need (too many tiny nodes, inputs or dimensions)",
                  w->budget_total >> 20);
        return NULL;
    }
    w->budget -= n;
    void *p = arena_alloc(w->arena, n);
    if (!p) {
        w->oom = true;
        walk_fail(w, w->where, "out of memory");
    }
    return p;
}

static void *walk_alloc_cb(void *ctx, size_t n)
{
    return walk_alloc(ctx, n);
}

/* Room for at least cap items. */
static bool vec_reserve(walk_t *w, vec_t *v, size_t elem, size_t cap)
{
    if (cap <= v->cap)
        return true;
    if (cap > SIZE_MAX / elem)
        return walk_fail(w, w->where, "too many items");
    void *data = walk_alloc(w, cap * elem);
    if (!data)
        return false;
    if (v->n)
        memcpy(data, v->data, v->n * elem);
    v->data = data;
    v->cap = cap;
    return true;
}

static bool vec_push(walk_t *w, vec_t *v, size_t elem, const void *item)
{
    if (v->n == v->cap && !vec_reserve(w, v, elem, v->cap ? v->cap * 2 : 8))
        return false;
    memcpy((char *)v->data + v->n * elem, item, elem);
    v->n++;
    return true;
}

/* n bytes from the string pool (no alignment, so short strings stay short). */
static char *pool_alloc(walk_t *w, size_t n)
{
    if (n > w->pool_left) {
        if (n >= POOL_CHUNK / 4)
            return walk_alloc(w, n);
        char *chunk = walk_alloc(w, POOL_CHUNK);
        if (!chunk)
            return NULL;
        w->pool = chunk;
        w->pool_left = POOL_CHUNK;
    }
    char *p = w->pool;
    w->pool += n;
    w->pool_left -= n;
    return p;
}

static const char *pool_strndup(walk_t *w, const char *s, size_t len)
{
    if (len == 0)
        return "";
    if (len == SIZE_MAX)
        return NULL;
    char *p = pool_alloc(w, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Valid UTF-8 (no overlongs, surrogates or code points over U+10FFFF)
 * without NUL bytes. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* How many bytes of a (valid UTF-8) name to show in a message: at most 120,
 * cut at a character boundary. */
static int shown(const char *name)
{
    size_t n = strnlen(name, 121);
    if (n <= 120)
        return (int)n;
    n = 120;
    while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

/* ---- the cursor ------------------------------------------------------- */

static const char *name_of_number(const msg_type_t *t, uint32_t number)
{
    for (const field_name_t *f = t->fields; f->name; f++)
        if (f->number == number)
            return f->name;
    return NULL;
}

static uint32_t number_of_name(const msg_type_t *t, const char *name, size_t len,
                               const char **canonical)
{
    for (const field_name_t *f = t->fields; f->name; f++) {
        if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
            *canonical = f->name;
            return f->number;
        }
    }
    *canonical = NULL;
    return 0;
}

/* 1: a field, 0: end of the message, -1: error (recorded). */
static int cur_next(cursor_t *c, field_t *f)
{
    walk_t *w = c->w;
    if (w->format == GRAPH_FORMAT_BINARY) {
        pb_status_t st = pb_next(&c->pb, &f->pb);
        if (st == PB_END)
            return 0;
        if (st == PB_ERROR)
            return -1;
        f->number = f->pb.number;
        f->name = NULL; /* looked up only for messages */
        f->offset = f->pb.offset;
        w->where = f->offset;
        return 1;
    }
    if (c->skip_pending) {
        c->skip_pending = false;
        if (!pbt_skip(w->text))
            return -1;
    }
    pbt_status_t st = pbt_next(w->text, &f->pt);
    if (st == PBT_END)
        return 0;
    if (st == PBT_ERROR)
        return -1;
    f->offset = f->pt.offset;
    w->where = f->offset;
    if (f->pt.extension) {
        f->number = 0;
        f->name = NULL;
    } else {
        f->number = number_of_name(c->type, f->pt.name, f->pt.name_len, &f->name);
    }
    if (f->pt.is_message)
        c->skip_pending = true;
    return 1;
}

static const char *field_label(const cursor_t *c, const field_t *f)
{
    const char *name = f->name ? f->name : name_of_number(c->type, f->number);
    return name ? name : "?";
}

/* The field does not hold what the schema says (expected: "a string"). */
static bool wrong_kind(cursor_t *c, const field_t *f, const char *expected)
{
    if (c->w->format == GRAPH_FORMAT_BINARY)
        return walk_fail(c->w, f->offset, "field %s (%u) of %s is a %s value, expected %s",
                         field_label(c, f), f->number, c->type->name,
                         pb_wire_type_name(f->pb.wire_type), expected);
    return walk_fail(c->w, f->offset, "field %s of %s must be %s", field_label(c, f), c->type->name,
                     expected);
}

/* Opens the message field f as child (of the given type). */
static bool cur_enter(cursor_t *c, field_t *f, const msg_type_t *type, cursor_t *child)
{
    child->w = c->w;
    child->type = type;
    child->skip_pending = false;
    if (c->w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_LEN)
            return wrong_kind(c, f, "a message");
        return pb_sub(&c->pb, &f->pb, &child->pb);
    }
    if (!f->pt.is_message)
        return wrong_kind(c, f, "a message");
    c->skip_pending = false;
    return true;
}

/* A message field the walker does not read: checks only that it is one. */
static bool cur_skip_message(cursor_t *c, field_t *f)
{
    if (c->w->format == GRAPH_FORMAT_BINARY)
        return f->pb.wire_type == PB_WIRE_LEN || wrong_kind(c, f, "a message");
    return f->pt.is_message || wrong_kind(c, f, "a message");
}

/* The bytes of a string field, not copied (text: maybe decoded into the
 * walk's key buffer, valid until the next call). */
static bool get_view(cursor_t *c, field_t *f, const char **out, size_t *len)
{
    walk_t *w = c->w;
    if (w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_LEN)
            return wrong_kind(c, f, "a string");
        *out = (const char *)f->pb.data;
        *len = f->pb.len;
        return true;
    }
    if (f->pt.is_message || f->pt.kind != PBT_STRING)
        return wrong_kind(c, f, "a string");
    if (pbt_string_plain(&f->pt, out, len))
        return true;
    if (f->pt.value_len > w->keybuf_cap) {
        size_t cap = w->keybuf_cap ? w->keybuf_cap : 256;
        while (cap < f->pt.value_len)
            cap = cap > SIZE_MAX / 2 ? f->pt.value_len : cap * 2;
        char *b = walk_alloc(w, cap);
        if (!b)
            return false;
        w->keybuf = b;
        w->keybuf_cap = cap;
    }
    if (!pbt_string_decode(&f->pt, w->keybuf, len))
        return walk_fail(w, f->pt.value_offset, "malformed string");
    *out = w->keybuf;
    return true;
}

static bool check_text(cursor_t *c, const field_t *f, const char *s, size_t len)
{
    if (utf8_valid((const unsigned char *)s, len))
        return true;
    if (len && memchr(s, '\0', len))
        return walk_fail(c->w, f->offset, "field %s of %s contains a NUL byte", field_label(c, f),
                         c->type->name);
    return walk_fail(c->w, f->offset, "field %s of %s is not valid UTF-8", field_label(c, f),
                     c->type->name);
}

/* A string field, checked and copied into the pool. */
static bool get_string(cursor_t *c, field_t *f, const char **out)
{
    const char *s = NULL;
    size_t len = 0;
    if (!get_view(c, f, &s, &len) || !check_text(c, f, s, len))
        return false;
    *out = pool_strndup(c->w, s, len);
    return *out != NULL;
}

/* An op name, interned (graphs repeat a few ops many times). */
static bool get_op(cursor_t *c, field_t *f, const char **out)
{
    walk_t *w = c->w;
    const char *s = NULL;
    size_t len = 0;
    if (!get_view(c, f, &s, &len) || !check_text(c, f, s, len))
        return false;
    uint32_t idx;
    if (strmap_find(&w->ops, s, len, &idx)) {
        *out = string_at(&w->opnames, idx);
        return true;
    }
    const char *copy = pool_strndup(w, s, len);
    if (!copy)
        return false;
    if (len > 0) {
        if (w->opnames.n >= UINT32_MAX)
            return walk_fail(w, f->offset, "the graph has too many distinct ops");
        if (!vec_push(w, &w->opnames, sizeof(copy), &copy))
            return false;
        if (strmap_put(&w->ops, copy, (uint32_t)(w->opnames.n - 1), NULL, walk_alloc_cb, w) < 0)
            return walk_fail(w, f->offset, "the graph has too many distinct ops");
    }
    *out = copy;
    return true;
}

static bool get_int64(cursor_t *c, field_t *f, int64_t *out)
{
    if (c->w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_VARINT)
            return wrong_kind(c, f, "a varint");
        *out = pb_int64(&f->pb);
        return true;
    }
    if (f->pt.is_message || !pbt_int64(&f->pt, out))
        return wrong_kind(c, f, "a 64-bit integer");
    return true;
}

static bool get_int32(cursor_t *c, field_t *f, int32_t *out)
{
    if (c->w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_VARINT)
            return wrong_kind(c, f, "a varint");
        *out = pb_int32(&f->pb);
        return true;
    }
    int64_t v;
    if (f->pt.is_message || !pbt_int64(&f->pt, &v) || v < INT32_MIN || v > INT32_MAX)
        return wrong_kind(c, f, "a 32-bit integer");
    *out = (int32_t)v;
    return true;
}

static bool get_bool(cursor_t *c, field_t *f, bool *out)
{
    if (c->w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_VARINT)
            return wrong_kind(c, f, "a varint");
        *out = f->pb.value != 0;
        return true;
    }
    if (f->pt.is_message || !pbt_bool(&f->pt, out))
        return wrong_kind(c, f, "true or false");
    return true;
}

static bool get_dtype(cursor_t *c, field_t *f, int *out)
{
    if (c->w->format == GRAPH_FORMAT_BINARY) {
        if (f->pb.wire_type != PB_WIRE_VARINT)
            return wrong_kind(c, f, "a varint");
        *out = pb_int32(&f->pb);
        return true;
    }
    if (!f->pt.is_message && f->pt.kind == PBT_IDENT && !f->pt.negative) {
        if (dtype_from_name(f->pt.value, f->pt.value_len, out))
            return true;
        return walk_fail(c->w, f->pt.value_offset, "unknown DataType %.*s in field %s of %s",
                         (int)(f->pt.value_len > 64 ? 64 : f->pt.value_len), f->pt.value,
                         field_label(c, f), c->type->name);
    }
    int32_t v = 0;
    if (!get_int32(c, f, &v))
        return false;
    *out = v;
    return true;
}

/* ---- walkers, one per message type ------------------------------------ */

static bool walk_shape(cursor_t *c, graph_shape_t *shape);

static bool walk_dim(cursor_t *c, int64_t *size)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number == DIM_SIZE) {
            if (!get_int64(c, &f, size))
                return false;
            if (*size < -1)
                return walk_fail(c->w, f.offset,
                                 "dimension size %lld is invalid (-1 means unknown)",
                                 (long long)*size);
        }
    }
    return r == 0;
}

static bool walk_shape(cursor_t *c, graph_shape_t *shape)
{
    walk_t *w = c->w;
    size_t ndims = 0;
    bool unknown_rank = false;
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number == SHAPE_DIM) {
            if (ndims == GRAPH_MAX_DIMS)
                return walk_fail(w, f.offset, "shape has more than %d dimensions", GRAPH_MAX_DIMS);
            cursor_t sub;
            int64_t size = 0;
            if (!cur_enter(c, &f, &T_DIM, &sub) || !walk_dim(&sub, &size))
                return false;
            w->dims[ndims++] = size;
        } else if (f.number == SHAPE_UNKNOWN_RANK) {
            if (!get_bool(c, &f, &unknown_rank))
                return false;
        }
    }
    if (r < 0)
        return false;
    shape->known = true;
    shape->unknown_rank = unknown_rank;
    shape->ndims = ndims;
    shape->dims = NULL;
    if (ndims) {
        shape->dims = walk_alloc(w, ndims * sizeof(int64_t));
        if (!shape->dims)
            return false;
        memcpy(shape->dims, w->dims, ndims * sizeof(int64_t));
    }
    return true;
}

typedef struct attr_value {
    bool has_type;
    int type;
    bool has_shape;
    graph_shape_t shape;
    bool has_list_shape;
    graph_shape_t list_shape; /* the first of list.shape */
} attr_value_t;

static bool walk_list_value(cursor_t *c, attr_value_t *v)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number != LIST_VALUE_SHAPE)
            continue;
        if (v->has_list_shape) {
            if (!cur_skip_message(c, &f))
                return false;
            continue;
        }
        cursor_t sub;
        if (!cur_enter(c, &f, &T_SHAPE, &sub) || !walk_shape(&sub, &v->list_shape))
            return false;
        v->has_list_shape = true;
    }
    return r == 0;
}

static bool walk_attr_value(cursor_t *c, attr_value_t *v)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        switch (f.number) {
        case ATTR_VALUE_TYPE:
            if (!get_dtype(c, &f, &v->type))
                return false;
            v->has_type = true;
            break;
        case ATTR_VALUE_SHAPE:
            if (!cur_enter(c, &f, &T_SHAPE, &sub) || !walk_shape(&sub, &v->shape))
                return false;
            v->has_shape = true;
            break;
        case ATTR_VALUE_LIST:
            if (!cur_enter(c, &f, &T_LIST_VALUE, &sub) || !walk_list_value(&sub, v))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

typedef enum { ATTR_OTHER, ATTR_DTYPE, ATTR_T, ATTR_SHAPE, ATTR_OUTPUT_SHAPES } attr_key_t;

typedef struct attr_state {
    graph_node_t *node;
    bool dtype_from_dtype; /* "dtype" beats "T" */
    bool shape_from_shape; /* "shape" beats "_output_shapes" */
} attr_state_t;

static attr_key_t classify_attr(const char *s, size_t len)
{
    static const struct {
        const char *name;
        attr_key_t key;
    } keys[] = {{"dtype", ATTR_DTYPE},
                {"T", ATTR_T},
                {"shape", ATTR_SHAPE},
                {"_output_shapes", ATTR_OUTPUT_SHAPES}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, s, len) == 0)
            return keys[i].key;
    return ATTR_OTHER;
}

static bool walk_attr_entry(cursor_t *c, attr_state_t *st)
{
    bool have_key = false, have_value = false;
    attr_key_t key = ATTR_OTHER;
    attr_value_t v;
    memset(&v, 0, sizeof(v));
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number == MAP_ENTRY_KEY) {
            const char *s = NULL;
            size_t len = 0;
            if (!get_view(c, &f, &s, &len))
                return false;
            key = classify_attr(s, len);
            have_key = true;
        } else if (f.number == MAP_ENTRY_VALUE) {
            if (have_key && key == ATTR_OTHER) {
                if (!cur_skip_message(c, &f))
                    return false;
                continue;
            }
            cursor_t sub;
            memset(&v, 0, sizeof(v)); /* the last value wins */
            if (!cur_enter(c, &f, &T_ATTR_VALUE, &sub) || !walk_attr_value(&sub, &v))
                return false;
            have_value = true;
        }
    }
    if (r < 0)
        return false;
    if (!have_value)
        return true;
    graph_node_t *node = st->node;
    switch (key) {
    case ATTR_DTYPE:
        if (v.has_type) {
            node->dtype = v.type;
            st->dtype_from_dtype = true;
        }
        break;
    case ATTR_T:
        if (v.has_type && !st->dtype_from_dtype)
            node->dtype = v.type;
        break;
    case ATTR_SHAPE:
        if (v.has_shape) {
            node->shape = v.shape;
            st->shape_from_shape = true;
        }
        break;
    case ATTR_OUTPUT_SHAPES:
        if (v.has_list_shape && !st->shape_from_shape)
            node->shape = v.list_shape;
        break;
    case ATTR_OTHER:
        break;
    }
    return true;
}

static bool walk_node(cursor_t *c, size_t node_offset)
{
    walk_t *w = c->w;
    graph_node_t node;
    memset(&node, 0, sizeof(node));
    node.name = "";
    node.op = "";
    attr_state_t st = {&node, false, false};
    w->inputs.n = 0;
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        const char *input;
        switch (f.number) {
        case NODE_DEF_NAME:
            if (!get_string(c, &f, &node.name))
                return false;
            break;
        case NODE_DEF_OP:
            if (!get_op(c, &f, &node.op))
                return false;
            break;
        case NODE_DEF_INPUT:
            if (!get_string(c, &f, &input) || !vec_push(w, &w->inputs, sizeof(input), &input))
                return false;
            break;
        case NODE_DEF_ATTR:
            if (!cur_enter(c, &f, &T_ATTR_ENTRY, &sub) || !walk_attr_entry(&sub, &st))
                return false;
            break;
        default:
            break;
        }
    }
    if (r < 0)
        return false;
    if (!*node.name)
        return walk_fail(w, node_offset, "node %zu of the graph has no name", w->nodes.n);
    if (!*node.op)
        return walk_fail(w, node_offset, "node \"%.*s\" has no op", shown(node.name), node.name);
    if (w->nodes.n >= UINT32_MAX)
        return walk_fail(w, node_offset, "the graph has too many nodes");
    if (w->inputs.n) {
        size_t bytes = w->inputs.n * sizeof(const char *);
        const char **inputs = walk_alloc(w, bytes);
        if (!inputs)
            return false;
        memcpy(inputs, w->inputs.data, bytes);
        node.inputs = inputs;
        node.ninputs = w->inputs.n;
    }
    uint32_t other;
    int put = strmap_put(&w->names, node.name, (uint32_t)w->nodes.n, &other, walk_alloc_cb, w);
    if (put < 0)
        return walk_fail(w, node_offset, "the graph has too many nodes");
    if (put == 0)
        return walk_fail(w, node_offset, "node name \"%.*s\" is used by two nodes",
                         shown(node.name), node.name);
    return vec_push(w, &w->nodes, sizeof(node), &node);
}

static bool walk_function_node(cursor_t *c, size_t node_offset)
{
    walk_t *w = c->w;
    const char *op = "";
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0)
        if (f.number == NODE_DEF_OP && !get_op(c, &f, &op))
            return false;
    if (r < 0)
        return false;
    if (!*op)
        return walk_fail(w, node_offset, "a node of function %zu has no op",
                         w->out->nfunctions - 1);
    if (!vec_push(w, &w->fops, sizeof(op), &op))
        return false;
    w->out->nfunction_nodes++;
    return true;
}

static bool walk_function(cursor_t *c)
{
    c->w->out->nfunctions++;
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number != FUNCTION_DEF_NODE_DEF)
            continue;
        cursor_t sub;
        if (!cur_enter(c, &f, &T_NODE_DEF, &sub) || !walk_function_node(&sub, f.offset))
            return false;
    }
    return r == 0;
}

static bool walk_library(cursor_t *c)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number != LIBRARY_FUNCTION)
            continue;
        cursor_t sub;
        if (!cur_enter(c, &f, &T_FUNCTION_DEF, &sub) || !walk_function(&sub))
            return false;
    }
    return r == 0;
}

static bool walk_versions(cursor_t *c)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number != VERSION_DEF_PRODUCER)
            continue;
        int32_t v = 0;
        if (!get_int32(c, &f, &v))
            return false;
        c->w->out->producer = v;
    }
    return r == 0;
}

/* Binary format: counts the nodes of the GraphDef first (a cheap pass over
 * its fields), so that the node array and the name map are sized once
 * instead of growing (which would leave the smaller copies behind). */
static bool reserve_nodes(cursor_t *c)
{
    walk_t *w = c->w;
    pb_reader_t scan = c->pb;
    pb_field_t f;
    pb_status_t st;
    size_t count = 0;
    while ((st = pb_next(&scan, &f)) == PB_FIELD)
        if (f.number == GRAPH_DEF_NODE)
            count++;
    if (st == PB_ERROR)
        return false;
    size_t want = w->nodes.n + count;
    if (count == 0 || want > UINT32_MAX / 2)
        return true; /* the walk reports what is wrong */
    if (!vec_reserve(w, &w->nodes, sizeof(graph_node_t), want))
        return false;
    while (w->names.cap < want * 2)
        if (!strmap_grow(&w->names, walk_alloc_cb, w))
            return walk_fail(w, w->where, "the graph has too many nodes");
    return true;
}

static bool walk_graph_def(cursor_t *c)
{
    field_t f;
    int r;
    if (c->w->format == GRAPH_FORMAT_BINARY && !reserve_nodes(c))
        return false;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        switch (f.number) {
        case GRAPH_DEF_NODE:
            if (!cur_enter(c, &f, &T_NODE_DEF, &sub) || !walk_node(&sub, f.offset))
                return false;
            break;
        case GRAPH_DEF_LIBRARY:
            if (!cur_enter(c, &f, &T_LIBRARY, &sub) || !walk_library(&sub))
                return false;
            break;
        case GRAPH_DEF_VERSIONS:
            if (!cur_enter(c, &f, &T_VERSION_DEF, &sub) || !walk_versions(&sub))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

static bool walk_meta_info(cursor_t *c)
{
    walk_t *w = c->w;
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        const char *s;
        switch (f.number) {
        case META_INFO_TAGS:
            if (!get_string(c, &f, &s) || !vec_push(w, &w->tags, sizeof(s), &s))
                return false;
            break;
        case META_INFO_TENSORFLOW_VERSION:
            if (!get_string(c, &f, &w->out->tensorflow_version))
                return false;
            break;
        case META_INFO_TENSORFLOW_GIT_VERSION:
            if (!get_string(c, &f, &w->out->tensorflow_git_version))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

static bool walk_tensor_info(cursor_t *c, graph_tensor_info_t *ti)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        switch (f.number) {
        case TENSOR_INFO_NAME:
            if (!get_string(c, &f, &ti->name))
                return false;
            break;
        case TENSOR_INFO_DTYPE:
            if (!get_dtype(c, &f, &ti->dtype))
                return false;
            break;
        case TENSOR_INFO_TENSOR_SHAPE:
            if (!cur_enter(c, &f, &T_SHAPE, &sub) || !walk_shape(&sub, &ti->shape))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

static bool walk_tensor_info_entry(cursor_t *c, vec_t *list)
{
    graph_tensor_info_t ti;
    memset(&ti, 0, sizeof(ti));
    ti.alias = "";
    ti.name = "";
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        if (f.number == MAP_ENTRY_KEY) {
            if (!get_string(c, &f, &ti.alias))
                return false;
        } else if (f.number == MAP_ENTRY_VALUE) {
            if (!cur_enter(c, &f, &T_TENSOR_INFO, &sub) || !walk_tensor_info(&sub, &ti))
                return false;
        }
    }
    if (r < 0)
        return false;
    return vec_push(c->w, list, sizeof(ti), &ti);
}

typedef struct sig_build {
    graph_signature_t sig;
    vec_t inputs, outputs;
} sig_build_t;

static bool walk_signature_def(cursor_t *c, sig_build_t *sb)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        switch (f.number) {
        case SIGNATURE_DEF_INPUTS:
            if (!cur_enter(c, &f, &T_TENSOR_INFO_ENTRY, &sub) ||
                !walk_tensor_info_entry(&sub, &sb->inputs))
                return false;
            break;
        case SIGNATURE_DEF_OUTPUTS:
            if (!cur_enter(c, &f, &T_TENSOR_INFO_ENTRY, &sub) ||
                !walk_tensor_info_entry(&sub, &sb->outputs))
                return false;
            break;
        case SIGNATURE_DEF_METHOD_NAME:
            if (!get_string(c, &f, &sb->sig.method_name))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

static bool walk_signature_entry(cursor_t *c)
{
    sig_build_t sb;
    memset(&sb, 0, sizeof(sb));
    sb.sig.key = "";
    sb.sig.method_name = "";
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        if (f.number == MAP_ENTRY_KEY) {
            if (!get_string(c, &f, &sb.sig.key))
                return false;
        } else if (f.number == MAP_ENTRY_VALUE) {
            if (!cur_enter(c, &f, &T_SIGNATURE_DEF, &sub) || !walk_signature_def(&sub, &sb))
                return false;
        }
    }
    if (r < 0)
        return false;
    sb.sig.inputs = sb.inputs.data;
    sb.sig.ninputs = sb.inputs.n;
    sb.sig.outputs = sb.outputs.data;
    sb.sig.noutputs = sb.outputs.n;
    return vec_push(c->w, &c->w->sigs, sizeof(sb.sig), &sb.sig);
}

static bool walk_meta_graph(cursor_t *c)
{
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        cursor_t sub;
        switch (f.number) {
        case META_GRAPH_META_INFO_DEF:
            if (!cur_enter(c, &f, &T_META_INFO, &sub) || !walk_meta_info(&sub))
                return false;
            break;
        case META_GRAPH_GRAPH_DEF:
            if (!cur_enter(c, &f, &T_GRAPH_DEF, &sub) || !walk_graph_def(&sub))
                return false;
            break;
        case META_GRAPH_SIGNATURE_DEF:
            if (!cur_enter(c, &f, &T_SIGNATURE_ENTRY, &sub) || !walk_signature_entry(&sub))
                return false;
            break;
        default:
            break;
        }
    }
    return r == 0;
}

static bool walk_saved_model(cursor_t *c)
{
    walk_t *w = c->w;
    field_t f;
    int r;
    while ((r = cur_next(c, &f)) > 0) {
        if (f.number == SAVED_MODEL_SCHEMA_VERSION) {
            int64_t v;
            if (!get_int64(c, &f, &v))
                return false;
        } else if (f.number == SAVED_MODEL_META_GRAPHS) {
            /* Only the first meta graph is summarized; the others are
             * checked to be messages and skipped. */
            if (w->nmeta++ > 0) {
                if (!cur_skip_message(c, &f))
                    return false;
                continue;
            }
            cursor_t sub;
            if (!cur_enter(c, &f, &T_META_GRAPH, &sub) || !walk_meta_graph(&sub))
                return false;
        }
    }
    return r == 0;
}

/* ---- after the walk: sorting, candidates ------------------------------ */

typedef struct keyed {
    const char *key;
    size_t index;
} keyed_t;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts items by key, keeping the last of items with equal keys (maps). */
static bool sort_unique(walk_t *w, void *items, size_t *n, size_t elem,
                        const char *(*key_of)(const void *item))
{
    size_t count = *n;
    if (count < 2)
        return true;
    keyed_t *k = walk_alloc(w, count * sizeof(*k));
    char *tmp = k ? walk_alloc(w, count * elem) : NULL;
    if (!tmp)
        return false;
    for (size_t i = 0; i < count; i++) {
        k[i].key = key_of((char *)items + i * elem);
        k[i].index = i;
    }
    qsort(k, count, sizeof(*k), keyed_cmp);
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        if (i + 1 < count && strcmp(k[i].key, k[i + 1].key) == 0)
            continue;
        memcpy(tmp + m * elem, (char *)items + k[i].index * elem, elem);
        m++;
    }
    memcpy(items, tmp, m * elem);
    *n = m;
    return true;
}

static const char *signature_key(const void *item)
{
    return ((const graph_signature_t *)item)->key;
}

static const char *tensor_alias(const void *item)
{
    return ((const graph_tensor_info_t *)item)->alias;
}

/* "name" when it has a ":N" suffix, else "name:0" (to compare tensors). */
static const char *canonical_tensor(walk_t *w, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == ':')
            return name;
        if (name[i - 1] < '0' || name[i - 1] > '9')
            break;
    }
    char *s = pool_alloc(w, len + 3);
    if (!s)
        return NULL;
    memcpy(s, name, len);
    memcpy(s + len, ":0", 3);
    return s;
}

typedef struct candidates {
    vec_t list;
    vec_t canon;   /* canonical names of the listed tensors */
    strmap_t seen; /* canonical name -> index in canon */
} candidates_t;

static void candidates_init(candidates_t *cs)
{
    memset(cs, 0, sizeof(*cs));
    strmap_init(&cs->seen, string_at, &cs->canon);
}

static bool add_candidate(walk_t *w, candidates_t *cs, const char *name, int dtype,
                          const graph_shape_t *shape)
{
    if (cs->list.n >= GRAPH_CANDIDATES_MAX)
        return true;
    const char *canon = canonical_tensor(w, name);
    if (!canon)
        return false;
    if (!vec_push(w, &cs->canon, sizeof(canon), &canon))
        return false;
    int put = strmap_put(&cs->seen, canon, (uint32_t)(cs->canon.n - 1), NULL, walk_alloc_cb, w);
    if (put <= 0) {
        cs->canon.n--;
        return put == 0 || walk_fail(w, w->where, "too many candidate tensors");
    }
    graph_tensor_info_t ti;
    memset(&ti, 0, sizeof(ti));
    ti.name = name;
    ti.dtype = dtype;
    ti.shape = *shape;
    return vec_push(w, &cs->list, sizeof(ti), &ti);
}

/* Ops that have no output tensor: not offered as outputs. */
static bool op_without_outputs(const char *op)
{
    static const char *const ops[] = {
        "NoOp",
        "SaveV2",
        "Save",
        "SaveSlices",
        "MergeV2Checkpoints",
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "DestroyResourceOp",
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

static bool build_candidates(walk_t *w)
{
    graph_summary_t *g = w->out;
    candidates_t in;
    candidates_init(&in);
    for (size_t i = 0; i < g->nnodes; i++) {
        const graph_node_t *n = &g->nodes[i];
        if (strcmp(n->op, "Placeholder") != 0 && strcmp(n->op, "PlaceholderWithDefault") != 0)
            continue;
        const char *name = canonical_tensor(w, n->name);
        if (!name || !add_candidate(w, &in, name, n->dtype, &n->shape))
            return false;
    }
    for (size_t s = 0; s < g->nsignatures; s++) {
        const graph_signature_t *sig = &g->signatures[s];
        for (size_t i = 0; i < sig->ninputs; i++)
            if (*sig->inputs[i].name && !add_candidate(w, &in, sig->inputs[i].name,
                                                       sig->inputs[i].dtype, &sig->inputs[i].shape))
                return false;
    }
    g->input_candidates = in.list.data;
    g->ninput_candidates = in.list.n;

    candidates_t out;
    candidates_init(&out);
    for (size_t s = 0; s < g->nsignatures; s++) {
        const graph_signature_t *sig = &g->signatures[s];
        for (size_t i = 0; i < sig->noutputs; i++)
            if (*sig->outputs[i].name &&
                !add_candidate(w, &out, sig->outputs[i].name, sig->outputs[i].dtype,
                               &sig->outputs[i].shape))
                return false;
    }
    bool *consumed = g->nnodes ? walk_alloc(w, g->nnodes) : NULL;
    if (g->nnodes && !consumed)
        return false;
    if (consumed)
        memset(consumed, 0, g->nnodes);
    for (size_t i = 0; i < g->nnodes; i++) {
        const graph_node_t *n = &g->nodes[i];
        for (size_t k = 0; k < n->ninputs; k++) {
            size_t start, len;
            uint32_t idx;
            const char *in_name = n->inputs[k];
            if (tensor_node_part(in_name, strlen(in_name), true, &start, &len) &&
                strmap_find(&w->names, in_name + start, len, &idx))
                consumed[idx] = true;
        }
    }
    for (size_t i = 0; i < g->nnodes && out.list.n < GRAPH_CANDIDATES_MAX; i++) {
        const graph_node_t *n = &g->nodes[i];
        if (consumed[i] || op_without_outputs(n->op))
            continue;
        const char *name = canonical_tensor(w, n->name);
        if (!name || !add_candidate(w, &out, name, n->dtype, &n->shape))
            return false;
    }
    g->output_candidates = out.list.data;
    g->noutput_candidates = out.list.n;
    return true;
}

static bool finish(walk_t *w)
{
    graph_summary_t *g = w->out;
    g->nodes = w->nodes.data;
    g->nnodes = w->nodes.n;
    g->tags = w->tags.data;
    g->ntags = w->tags.n;
    g->function_ops = w->fops.data;
    g->signatures = w->sigs.data;
    g->nsignatures = w->sigs.n;
    if (!sort_unique(w, g->signatures, &g->nsignatures, sizeof(graph_signature_t), signature_key))
        return false;
    for (size_t i = 0; i < g->nsignatures; i++) {
        graph_signature_t *s = &g->signatures[i];
        if (!sort_unique(w, s->inputs, &s->ninputs, sizeof(graph_tensor_info_t), tensor_alias) ||
            !sort_unique(w, s->outputs, &s->noutputs, sizeof(graph_tensor_info_t), tensor_alias))
            return false;
    }
    return build_candidates(w);
}

bool graph_parse(arena_t *arena, const unsigned char *data, size_t len, graph_format_t format,
                 const char *display_name, graph_summary_t *out, nn_error_t *err)
{
    if (!display_name)
        display_name = format == GRAPH_FORMAT_TEXT ? "saved_model.pbtxt" : "saved_model.pb";
    memset(out, 0, sizeof(*out));
    out->tensorflow_version = "";
    out->tensorflow_git_version = "";

    walk_t *w = arena_calloc(arena, 1, sizeof(*w));
    pbt_parser_t *text = format == GRAPH_FORMAT_TEXT ? arena_alloc(arena, sizeof(*text)) : NULL;
    if (!w || (format == GRAPH_FORMAT_TEXT && !text))
        return nn_error_oom(err);
    w->arena = arena;
    w->format = format;
    w->out = out;
    w->budget = len > (SIZE_MAX - BUDGET_BASE) / BUDGET_PER_INPUT_BYTE
                    ? SIZE_MAX
                    : BUDGET_BASE + len * BUDGET_PER_INPUT_BYTE;
    w->budget_total = w->budget;
    strmap_init(&w->names, node_name_at, &w->nodes);
    strmap_init(&w->ops, string_at, &w->opnames);
    pb_reader_init(&w->root, data, len, &w->pberr);
    cursor_t top = {.w = w, .type = &T_SAVED_MODEL, .skip_pending = false};
    if (format == GRAPH_FORMAT_TEXT) {
        w->text = text;
        pbt_init(text, (const char *)data, len);
    } else {
        top.pb = w->root;
    }

    bool walked = walk_saved_model(&top);
    if (walked && w->nmeta == 0) {
        memset(out, 0, sizeof(*out));
        out->tensorflow_version = "";
        out->tensorflow_git_version = "";
        if (len == 0)
            return nn_error_set(err, 400, "invalid_graph", "file \"%s\" is empty, not a SavedModel",
                                display_name);
        return nn_error_set(err, 400, "invalid_graph",
                            "file \"%s\" is not a valid SavedModel: it has no meta graph",
                            display_name);
    }
    if (walked && finish(w))
        return true;

    memset(out, 0, sizeof(*out));
    out->tensorflow_version = "";
    out->tensorflow_git_version = "";
    if (w->oom)
        return nn_error_oom(err);
    if (format == GRAPH_FORMAT_TEXT) {
        if (!text->failed)
            return nn_error_internal(err, "the graph walk failed without a reason");
        size_t line, col;
        pbt_position(text, text->error_offset, &line, &col);
        return nn_error_set(err, 400, "invalid_graph",
                            "file \"%s\" is not a valid SavedModel: %s at line %zu, column %zu",
                            display_name, text->error, line, col);
    }
    if (!w->pberr.set)
        return nn_error_internal(err, "the graph walk failed without a reason");
    return nn_error_set(err, 400, "invalid_graph",
                        "file \"%s\" is not a valid SavedModel: %s at byte %zu", display_name,
                        w->pberr.message, w->pberr.offset);
}

bool graph_load(arena_t *arena, const char *path, graph_format_t format, const char *display_name,
                graph_summary_t *out, nn_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("graph: cannot open %s: %s", path, strerror(errno));
        return nn_error_internal(err, "cannot open the uploaded graph file");
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uintmax_t)st.st_size > (uintmax_t)SIZE_MAX) {
        log_error("graph: cannot stat %s or not a regular file", path);
        close(fd);
        return nn_error_internal(err, "cannot read the uploaded graph file");
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            log_error("graph: cannot map %s (%zu bytes): %s", path, len, strerror(errno));
            close(fd);
            return nn_error_internal(err, "cannot map the uploaded graph file");
        }
        (void)madvise(map, len, MADV_SEQUENTIAL);
    }
    close(fd);
    bool ok = graph_parse(arena, map, len, format, display_name, out, err);
    if (map)
        munmap(map, len);
    return ok;
}

/* ---- queries ---------------------------------------------------------- */

const graph_node_t *graph_find_tensor(const graph_summary_t *graph, const char *tensor_name)
{
    if (!tensor_name)
        return NULL;
    size_t start, len;
    if (!tensor_node_part(tensor_name, strlen(tensor_name), false, &start, &len))
        return NULL;
    for (size_t i = 0; i < graph->nnodes; i++)
        if (key_equal(graph->nodes[i].name, tensor_name + start, len))
            return &graph->nodes[i];
    return NULL;
}

size_t graph_input_candidates(const graph_summary_t *graph, const char **out, size_t max)
{
    /* For "inputs the graph has" messages: the checkpoint saver's own
     * placeholders (save/Const, save/filename) are listed last, so that
     * the real inputs are not pushed out of a short list. */
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < graph->ninput_candidates && n < max; i++) {
            bool saver = strncmp(graph->input_candidates[i].name, "save/", 5) == 0;
            if (saver == (pass == 1))
                out[n++] = graph->input_candidates[i].name;
        }
    return n;
}

/* Levenshtein distance of a and b if it is at most bound, else bound + 1;
 * only cells within bound of the diagonal are computed.  row holds
 * 2 * (lb + 1) entries. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb, size_t bound,
                            size_t *row, size_t *cells)
{
    size_t big = bound + 1;
    size_t diff = la > lb ? la - lb : lb - la;
    if (diff > bound)
        return big;
    /* A common prefix or suffix never needs an edit. */
    while (la > 0 && lb > 0 && a[0] == b[0]) {
        a++;
        b++;
        la--;
        lb--;
    }
    while (la > 0 && lb > 0 && a[la - 1] == b[lb - 1]) {
        la--;
        lb--;
    }
    size_t *prev = row, *cur = row + lb + 1;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t lo = i > bound ? i - bound : 1;
        size_t hi = i + bound < lb ? i + bound : lb;
        cur[lo - 1] = lo == 1 ? i : big;
        size_t row_min = cur[lo - 1];
        for (size_t j = lo; j <= hi; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (best > big)
                best = big;
            cur[j] = best;
            if (best < row_min)
                row_min = best;
        }
        if (hi < lb)
            cur[hi + 1] = big;
        *cells += hi >= lo ? hi - lo + 1 : 0;
        if (row_min > bound)
            return big;
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > big ? big : prev[lb];
}

typedef struct close_name {
    size_t dist;
    const char *name;
} close_name_t;

size_t graph_closest_names(arena_t *arena, const graph_summary_t *graph, const char *name,
                           const char **out, size_t max)
{
    if (max == 0 || graph->nnodes == 0 || !name)
        return 0;
    size_t qlen = strlen(name);
    size_t start = 0, node_len;
    if (tensor_node_part(name, qlen, true, &start, &node_len))
        qlen = node_len;
    const char *q = name + start;
    if (qlen > CLOSEST_MAX_LEN)
        qlen = CLOSEST_MAX_LEN;
    if (max > graph->nnodes)
        max = graph->nnodes;
    close_name_t *best = arena_calloc(arena, max, sizeof(*best));
    size_t *row = arena_alloc(arena, 2 * (CLOSEST_MAX_LEN + 1) * sizeof(size_t));
    if (!best || !row)
        return 0;
    /* Byte counts of the query, for a cheap lower bound of the distance:
     * at least max(|q|, |c|) minus the bytes they have in common. */
    uint32_t qcount[256] = {0}, ccount[256] = {0};
    for (size_t k = 0; k < qlen; k++)
        qcount[(unsigned char)q[k]]++;
    size_t nbest = 0, cells = 0;
    for (size_t i = 0; i < graph->nnodes && cells < CLOSEST_MAX_CELLS; i++) {
        const char *cand = graph->nodes[i].name;
        size_t clen = strnlen(cand, CLOSEST_MAX_LEN);
        size_t bound = nbest == max ? best[max - 1].dist : qlen + clen;
        size_t diff = clen > qlen ? clen - qlen : qlen - clen;
        if (diff > bound)
            continue;
        size_t common = 0;
        for (size_t k = 0; k < clen; k++)
            ccount[(unsigned char)cand[k]]++;
        for (size_t k = 0; k < clen; k++) {
            unsigned char ch = (unsigned char)cand[k];
            if (ccount[ch]) {
                common += ccount[ch] < qcount[ch] ? ccount[ch] : qcount[ch];
                ccount[ch] = 0;
            }
        }
        size_t low = (clen > qlen ? clen : qlen) - common;
        if (low > bound || (low == bound && nbest == max && strcmp(cand, best[max - 1].name) >= 0))
            continue;
        size_t d = edit_distance(q, qlen, cand, clen, bound, row, &cells);
        if (d > bound)
            continue;
        if (nbest == max && d == bound && strcmp(cand, best[max - 1].name) >= 0)
            continue;
        /* Insert in order (distance, then name). */
        size_t pos = nbest < max ? nbest++ : max - 1;
        while (pos > 0 && (best[pos - 1].dist > d ||
                           (best[pos - 1].dist == d && strcmp(best[pos - 1].name, cand) > 0))) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos].dist = d;
        best[pos].name = cand;
    }
    size_t n = 0;
    for (size_t i = 0; i < nbest; i++) {
        const char *s = arena_printf(arena, "%s:0", best[i].name);
        if (!s)
            break;
        out[n++] = s;
    }
    return n;
}

/* ---- JSON summary ----------------------------------------------------- */

static bool gen_str(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok;
}

static bool gen_int(yajl_gen g, long long v)
{
    return yajl_gen_integer(g, v) == yajl_gen_status_ok;
}

static bool gen_shape(yajl_gen g, const graph_shape_t *shape)
{
    if (!shape->known || shape->unknown_rank)
        return yajl_gen_null(g) == yajl_gen_status_ok;
    if (yajl_gen_array_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < shape->ndims; i++)
        if (!gen_int(g, shape->dims[i]))
            return false;
    return yajl_gen_array_close(g) == yajl_gen_status_ok;
}

static bool gen_tensor(yajl_gen g, const graph_tensor_info_t *t)
{
    bool ok = yajl_gen_map_open(g) == yajl_gen_status_ok && gen_str(g, "name") &&
              gen_str(g, t->name ? t->name : "") && gen_str(g, "dtype");
    if (!ok)
        return false;
    ok = t->dtype ? gen_str(g, graph_dtype_name(t->dtype)) : yajl_gen_null(g) == yajl_gen_status_ok;
    return ok && gen_str(g, "shape") && gen_shape(g, &t->shape) &&
           yajl_gen_map_close(g) == yajl_gen_status_ok;
}

static bool gen_tensor_list(yajl_gen g, const graph_tensor_info_t *list, size_t n)
{
    if (yajl_gen_array_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!gen_tensor(g, &list[i]))
            return false;
    return yajl_gen_array_close(g) == yajl_gen_status_ok;
}

static bool gen_tensor_map(yajl_gen g, const graph_tensor_info_t *list, size_t n)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!gen_str(g, list[i].alias ? list[i].alias : "") || !gen_tensor(g, &list[i]))
            return false;
    return yajl_gen_map_close(g) == yajl_gen_status_ok;
}

static void *arena_alloc_cb(void *ctx, size_t n)
{
    return arena_alloc(ctx, n);
}

typedef struct op_count {
    const char *op;
    size_t count;
} op_count_t;

static const char *op_count_key(const void *ctx, uint32_t val)
{
    return ((const op_count_t *)ctx)[val].op;
}

static int op_count_cmp(const void *a, const void *b)
{
    return strcmp(((const op_count_t *)a)->op, ((const op_count_t *)b)->op);
}

/* {"Op": count} over the graph's nodes and its functions' nodes, by name. */
static bool gen_ops(yajl_gen g, const graph_summary_t *graph)
{
    arena_t *tmp = arena_create(0);
    if (!tmp)
        return false;
    size_t total = graph->nnodes + graph->nfunction_nodes;
    op_count_t *counts = total ? arena_alloc(tmp, total * sizeof(*counts)) : NULL;
    strmap_t map;
    strmap_init(&map, op_count_key, counts);
    bool ok = total == 0 || counts != NULL;
    size_t distinct = 0;
    for (size_t i = 0; ok && i < total; i++) {
        const char *op =
            i < graph->nnodes ? graph->nodes[i].op : graph->function_ops[i - graph->nnodes];
        if (!op)
            op = "";
        uint32_t idx;
        int put = strmap_put(&map, op, (uint32_t)distinct, &idx, arena_alloc_cb, tmp);
        if (put < 0) {
            ok = false;
        } else if (put == 1) {
            counts[distinct].op = op;
            counts[distinct].count = 1;
            distinct++;
        } else {
            counts[idx].count++;
        }
    }
    if (ok) {
        if (distinct > 1)
            qsort(counts, distinct, sizeof(*counts), op_count_cmp);
        ok = yajl_gen_map_open(g) == yajl_gen_status_ok;
        for (size_t i = 0; ok && i < distinct; i++)
            ok = gen_str(g, counts[i].op) && gen_int(g, (long long)counts[i].count);
        ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
    }
    arena_destroy(tmp);
    return ok;
}

bool graph_summary_gen(yajl_gen g, const graph_summary_t *graph)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
        return false;
    if (!gen_str(g, "inputs") ||
        !gen_tensor_list(g, graph->input_candidates, graph->ninput_candidates) ||
        !gen_str(g, "outputs") ||
        !gen_tensor_list(g, graph->output_candidates, graph->noutput_candidates) ||
        !gen_str(g, "node_count") || !gen_int(g, (long long)graph->nnodes) ||
        !gen_str(g, "function_count") || !gen_int(g, (long long)graph->nfunctions) ||
        !gen_str(g, "ops") || !gen_ops(g, graph) || !gen_str(g, "tensorflow_version") ||
        !gen_str(g, graph->tensorflow_version ? graph->tensorflow_version : "") ||
        !gen_str(g, "tensorflow_git_version") ||
        !gen_str(g, graph->tensorflow_git_version ? graph->tensorflow_git_version : "") ||
        !gen_str(g, "tags") || yajl_gen_array_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < graph->ntags; i++)
        if (!gen_str(g, graph->tags[i]))
            return false;
    if (yajl_gen_array_close(g) != yajl_gen_status_ok || !gen_str(g, "signatures") ||
        yajl_gen_map_open(g) != yajl_gen_status_ok)
        return false;
    for (size_t i = 0; i < graph->nsignatures; i++) {
        const graph_signature_t *s = &graph->signatures[i];
        if (!gen_str(g, s->key ? s->key : "") || yajl_gen_map_open(g) != yajl_gen_status_ok ||
            !gen_str(g, "method_name") || !gen_str(g, s->method_name ? s->method_name : "") ||
            !gen_str(g, "inputs") || !gen_tensor_map(g, s->inputs, s->ninputs) ||
            !gen_str(g, "outputs") || !gen_tensor_map(g, s->outputs, s->noutputs) ||
            yajl_gen_map_close(g) != yajl_gen_status_ok)
            return false;
    }
    return yajl_gen_map_close(g) == yajl_gen_status_ok &&
           yajl_gen_map_close(g) == yajl_gen_status_ok;
}
