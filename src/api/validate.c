#include "api/validate.h"

#include "util/buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One validation pass: where it allocates, where it reports. */
typedef struct vctx {
    arena_t *arena;
    nn_error_t *err;
    bool oom;
} vctx_t;

static const char *const read_only_fields[] = {
    "id", "task_id", "files", "is_public", "slug", "create_date", "update_date",
};
static const char *const immutable_fields[] = {"framework", "preprocessing", "postprocessings"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}
#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

bool validate_utf8_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong 2-byte lead, or past U+10FFFF */
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false; /* overlong, out of range, or a surrogate */
        p += n + 1;
    }
    return true;
}

const char *validate_clip(arena_t *arena, const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return s;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* never cut a character in two */
    char *out = arena_printf(arena, "%.*s\u2026", (int)n, s);
    return out ? out : "\u2026";
}

size_t validate_utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static char *path_join(vctx_t *v, const char *base, const char *key)
{
    char *p = *base ? arena_printf(v->arena, "%s.%s", base, key) : arena_strdup(v->arena, key);
    if (!p)
        v->oom = true;
    return p ? p : "?";
}

static char *path_index(vctx_t *v, const char *base, size_t i)
{
    char *p = arena_printf(v->arena, "%s[%zu]", base, i);
    if (!p)
        v->oom = true;
    return p ? p : "?";
}

/* A form field that carries JSON text for an object or array is accepted:
 * clients that flatten only one level send nested values that way. */
static const jv_t *coerce_container(vctx_t *v, const jv_t *value, jv_type_t want)
{
    if (value && value->type == JV_STRING && value->from_form) {
        nn_error_t ignored;
        nn_error_init(&ignored);
        jv_t *parsed =
            jv_parse(v->arena, value->u.string.ptr, value->u.string.len, "field", &ignored);
        if (parsed && parsed->type == want)
            return parsed;
    }
    return value;
}

static bool get_string(vctx_t *v, const jv_t *value, const char *path, const char **out)
{
    if (!value || value->type != JV_STRING)
        return nn_error_field(v->err, path, "must be a string");
    /* JSON strings are checked by the parser; form values arrive as raw
     * bytes, and PostgreSQL stores neither NUL nor invalid UTF-8. */
    if (!validate_utf8_text(value->u.string.ptr, value->u.string.len))
        return nn_error_field(v->err, path, "must be UTF-8 text without NUL characters");
    *out = value->u.string.ptr;
    return true;
}

/* Whether s is a number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool get_number(vctx_t *v, const jv_t *value, const char *path, double *out)
{
    if (value && value->type == JV_NUMBER) {
        *out = value->u.number.value;
        return true;
    }
    if (value && value->type == JV_STRING && value->from_form) {
        /* Spelled as JSON spells numbers ("2.0", "255", "1e-3"): strtod
         * alone would also take " 2", "0x10", "inf" and "nan". */
        const char *s = value->u.string.ptr;
        if (!json_number_text(s))
            return nn_error_field(v->err, path, "must be a number, e.g. \"255.0\"");
        double d = strtod(s, NULL); /* ERANGE: underflow gives 0 or tiny, overflow HUGE_VAL */
        if (!isfinite(d))
            return nn_error_field(v->err, path, "must be a finite number");
        *out = d;
        return true;
    }
    return nn_error_field(v->err, path, "must be a number");
}

static bool get_bool(vctx_t *v, const jv_t *value, const char *path, bool *out)
{
    if (value && value->type == JV_BOOL) {
        *out = value->u.boolean;
        return true;
    }
    if (value && value->type == JV_STRING && value->from_form) {
        static const char *const yes[] = {"True", "true", "1"};
        static const char *const no[] = {"False", "false", "0"};
        if (IN_LIST(value->u.string.ptr, yes)) {
            *out = true;
            return true;
        }
        if (IN_LIST(value->u.string.ptr, no)) {
            *out = false;
            return true;
        }
    }
    return nn_error_field(v->err, path, "must be a boolean (true or false)");
}

/* Refuses keys of obj not in allowed (typos must not pass silently). */
static void check_keys(vctx_t *v, const jv_t *obj, const char *path, const char *const *allowed,
                       size_t nallowed)
{
    for (size_t i = 0; i < obj->u.object.n; i++) {
        const char *key = obj->u.object.keys[i];
        if (!in_list(key, allowed, nallowed)) {
            nn_buf_t list;
            buf_init(&list, v->arena);
            for (size_t k = 0; k < nallowed; k++)
                buf_appendf(&list, "%s%s", k ? ", " : "", allowed[k]);
            nn_error_field(
                v->err, path_join(v, path, validate_clip(v->arena, key, VALIDATE_ECHO_MAX)),
                "is not a known field; known: %s", buf_cstr(&list) ? buf_cstr(&list) : "");
        }
    }
}

static bool one_of(vctx_t *v, const jv_t *value, const char *path, const char *const *choices,
                   size_t n, const char **out)
{
    const char *s = NULL;
    if (!get_string(v, value, path, &s))
        return false;
    if (in_list(s, choices, n)) {
        *out = s;
        return true;
    }
    nn_buf_t list;
    buf_init(&list, v->arena);
    for (size_t k = 0; k < n; k++)
        buf_appendf(&list, "%s%s", k ? (k + 1 == n ? " or " : ", ") : "", choices[k]);
    return nn_error_field(v->err, path, "must be one of %s",
                          buf_cstr(&list) ? buf_cstr(&list) : "");
}

static bool parse_side(const char *s, size_t len, long *out)
{
    if (len == 0 || len > 5)
        return false;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (s[i] - '0');
    }
    *out = n;
    return true;
}

bool validate_target_size(const char *text, bool network_form, char *why, size_t whylen)
{
    const char *x = strchr(text, 'x');
    long w = 0, h = 0;
    if (network_form) {
        if (x || !parse_side(text, strlen(text), &w)) {
            snprintf(why, whylen,
                     "must be one positive integer N (the largest side) for resize_type NETWORK, "
                     "e.g. \"512\"");
            return false;
        }
        h = w;
    } else {
        if (!x || !parse_side(text, (size_t)(x - text), &w) ||
            !parse_side(x + 1, strlen(x + 1), &h)) {
            snprintf(why, whylen, "must be WxH with two positive integers, e.g. \"299x299\"");
            return false;
        }
    }
    if (w < 1 || h < 1 || w > VALIDATE_TARGET_SIDE_MAX || h > VALIDATE_TARGET_SIDE_MAX) {
        snprintf(why, whylen, "each side must be between 1 and %d", VALIDATE_TARGET_SIDE_MAX);
        return false;
    }
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A number written as a float ("255.0", "2.0", "0.5"), so that clients
 * read pixel_scaling back as the float API.md shows whatever its form was. */
static jv_t *float_number(vctx_t *v, double value)
{
    jv_t *n = jv_number(v->arena, value);
    if (n && n->u.number.text && !strpbrk(n->u.number.text, ".eEn")) {
        char *text = arena_printf(v->arena, "%s.0", n->u.number.text);
        if (!text)
            return NULL;
        n->u.number.text = text;
    }
    return n;
}

static jv_t *validate_image(vctx_t *v, const jv_t *image, const char *path,
                            const char *const *file_names, size_t nfiles, const char **mean_out)
{
    image = coerce_container(v, image, JV_OBJECT);
    if (!image || image->type != JV_OBJECT) {
        nn_error_field(v->err, path,
                       image ? "must be an object" : "is required (the only supported input type)");
        return NULL;
    }
    static const char *const keys[] = {"dimension_order", "resize_type",   "target_size",
                                       "color_channels",  "pixel_scaling", "mean_file",
                                       "data_type"};
    check_keys(v, image, path, keys, sizeof(keys) / sizeof(keys[0]));

    static const char *const orders[] = {"NCHW", "NCWH", "NHWC", "NWHC"};
    static const char *const resizes[] = {"SQUASH", "CROP", "FILL", "NETWORK"};
    static const char *const channels[] = {"RGB", "BGR", "L"};
    static const char *const dtypes[] = {"FLOAT32", "UINT8"};
    const char *order = NULL, *resize = NULL, *color = NULL, *dtype = "FLOAT32";
    const char *target = NULL, *mean = NULL;
    double scaling = 255.0;

    const jv_t *f = jv_get(image, "dimension_order");
    if (!f)
        nn_error_field(v->err, path_join(v, path, "dimension_order"),
                       "is required; one of NCHW, NCWH, NHWC or NWHC");
    else
        (void)one_of(v, f, path_join(v, path, "dimension_order"), orders, 4, &order);
    f = jv_get(image, "resize_type");
    if (!f)
        nn_error_field(v->err, path_join(v, path, "resize_type"),
                       "is required; one of SQUASH, CROP, FILL or NETWORK");
    else
        (void)one_of(v, f, path_join(v, path, "resize_type"), resizes, 4, &resize);
    f = jv_get(image, "color_channels");
    if (!f)
        nn_error_field(v->err, path_join(v, path, "color_channels"),
                       "is required; one of RGB, BGR or L");
    else
        (void)one_of(v, f, path_join(v, path, "color_channels"), channels, 3, &color);
    f = jv_get(image, "data_type");
    if (f && f->type != JV_NULL)
        (void)one_of(v, f, path_join(v, path, "data_type"), dtypes, 2, &dtype);

    f = jv_get(image, "target_size");
    const char *tpath = path_join(v, path, "target_size");
    if (!f) {
        nn_error_field(v->err, tpath,
                       "is required: WxH (e.g. \"299x299\"), or N for resize_type NETWORK");
    } else if (f->type == JV_NUMBER && !f->from_form) {
        target = f->u.number.text; /* N given as a JSON number */
    } else if (f->type == JV_STRING) {
        target = f->u.string.ptr;
    } else {
        nn_error_field(v->err, tpath, "must be a string WxH or N");
    }
    if (target && resize) {
        char why[160];
        if (!validate_target_size(target, strcmp(resize, "NETWORK") == 0, why, sizeof(why)))
            nn_error_field(v->err, tpath, "%s", why);
    }

    f = jv_get(image, "pixel_scaling");
    if (f && f->type != JV_NULL) {
        const char *spath = path_join(v, path, "pixel_scaling");
        if (get_number(v, f, spath, &scaling) && !(scaling > 0))
            nn_error_field(v->err, spath, "must be a number greater than 0");
    }

    f = jv_get(image, "mean_file");
    if (f && f->type != JV_NULL) {
        const char *mpath = path_join(v, path, "mean_file");
        if (get_string(v, f, mpath, &mean) && *mean) {
            if (!has_suffix(mean, ".npy") && !has_suffix(mean, ".binaryproto"))
                nn_error_field(v->err, mpath, "must name a .npy or .binaryproto file");
            else if (!in_list(mean, file_names, nfiles)) {
                const char *shown = validate_clip(v->arena, mean, VALIDATE_ECHO_MAX);
                nn_error_field(v->err, mpath,
                               "names \"%s\" but no file of that name was uploaded; send it as a "
                               "file part named \"%s\"",
                               shown, shown);
            }
        }
        if (mean && !*mean)
            mean = NULL;
    }
    *mean_out = mean;

    jv_t *out = jv_object(v->arena);
    if (!out) {
        v->oom = true;
        return NULL;
    }
    jv_t *vals[7] = {jv_cstring(v->arena, order ? order : ""),
                     jv_cstring(v->arena, resize ? resize : ""),
                     jv_cstring(v->arena, target ? target : ""),
                     jv_cstring(v->arena, color ? color : ""),
                     float_number(v, scaling),
                     mean ? jv_cstring(v->arena, mean) : jv_null(v->arena),
                     jv_cstring(v->arena, dtype)};
    for (size_t i = 0; i < 7; i++)
        if (!vals[i] || !jv_set(v->arena, out, keys[i], vals[i]))
            v->oom = true;
    return out;
}

static bool add_tensor(vctx_t *v, validated_tensor_t **list, size_t *n, size_t *cap,
                       const char *name, const char *field)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        validated_tensor_t *grown =
            arena_realloc(v->arena, *list, *n * sizeof(**list), ncap * sizeof(**list));
        if (!grown) {
            v->oom = true;
            return false;
        }
        *list = grown;
        *cap = ncap;
    }
    (*list)[*n].name = name;
    (*list)[*n].field = field;
    (*n)++;
    return true;
}

static jv_t *validate_preprocessing(vctx_t *v, const jv_t *pre, const char *const *file_names,
                                    size_t nfiles, validated_create_t *out)
{
    const char *path = "preprocessing";
    pre = coerce_container(v, pre, JV_OBJECT);
    if (!pre) {
        nn_error_field(v->err, path, "is required: an object with \"inputs\"");
        return NULL;
    }
    if (pre->type != JV_OBJECT) {
        nn_error_field(v->err, path, "must be an object with \"inputs\"");
        return NULL;
    }
    static const char *const keys[] = {"inputs", "batched_output"};
    check_keys(v, pre, path, keys, 2);

    const jv_t *batched = jv_get(pre, "batched_output");
    bool batched_value = true;
    if (batched && get_bool(v, batched, "preprocessing.batched_output", &batched_value) &&
        !batched_value)
        nn_error_field(v->err, "preprocessing.batched_output",
                       "is deprecated and, when present, must be true");

    jv_t *norm = jv_object(v->arena);
    jv_t *norm_inputs = jv_array(v->arena);
    if (!norm || !norm_inputs || !jv_set(v->arena, norm, "inputs", norm_inputs)) {
        v->oom = true;
        return NULL;
    }
    /* Deprecated and only ever true: stored (and served) as true, the
     * default filled in like every other. */
    jv_t *batched_true = jv_bool(v->arena, true);
    if (!batched_true || !jv_set(v->arena, norm, "batched_output", batched_true))
        v->oom = true;

    const jv_t *inputs = coerce_container(v, jv_get(pre, "inputs"), JV_ARRAY);
    if (!inputs || inputs->type != JV_ARRAY || inputs->u.array.n == 0) {
        nn_error_field(v->err, "preprocessing.inputs",
                       "must be a non-empty array of inputs ({\"tensor_name\", \"image\"})");
        return norm;
    }
    size_t cap = 0;
    out->mean_files = arena_calloc(v->arena, inputs->u.array.n, sizeof(*out->mean_files));
    if (!out->mean_files) {
        v->oom = true;
        return norm;
    }
    for (size_t i = 0; i < inputs->u.array.n; i++) {
        const char *ipath = path_index(v, "preprocessing.inputs", i);
        const jv_t *in = coerce_container(v, inputs->u.array.items[i], JV_OBJECT);
        if (!in || in->type != JV_OBJECT) {
            nn_error_field(v->err, ipath, "must be an object with \"tensor_name\" and \"image\"");
            continue;
        }
        static const char *const ikeys[] = {"tensor_name", "image"};
        check_keys(v, in, ipath, ikeys, 2);
        const char *tpath = path_join(v, ipath, "tensor_name");
        const jv_t *t = jv_get(in, "tensor_name");
        const char *tensor = NULL;
        if (!t)
            nn_error_field(v->err, tpath,
                           "is required: the graph's input tensor, e.g. \"input:0\"");
        else if (get_string(v, t, tpath, &tensor) && !*tensor) {
            nn_error_field(v->err, tpath, "must not be empty");
            tensor = NULL;
        }
        if (tensor)
            add_tensor(v, &out->inputs, &out->ninputs, &cap, tensor, tpath);
        jv_t *image = validate_image(v, jv_get(in, "image"), path_join(v, ipath, "image"),
                                     file_names, nfiles, &out->mean_files[i]);
        jv_t *nin = jv_object(v->arena);
        jv_t *tn = jv_cstring(v->arena, tensor ? tensor : "");
        if (!nin || !tn || !jv_set(v->arena, nin, "tensor_name", tn) ||
            (image && !jv_set(v->arena, nin, "image", image)) ||
            !jv_append(v->arena, norm_inputs, nin))
            v->oom = true;
    }
    return norm;
}

static void validate_tensor_list(vctx_t *v, const jv_t *list, const char *path,
                                 validated_create_t *out, size_t *cap, jv_t *norm)
{
    if (!list || list->type != JV_ARRAY || list->u.array.n == 0) {
        nn_error_field(v->err, path, "must be a non-empty list of tensor names");
        return;
    }
    for (size_t i = 0; i < list->u.array.n; i++) {
        const char *epath = path_index(v, path, i);
        const char *name = NULL;
        if (!get_string(v, list->u.array.items[i], epath, &name))
            continue;
        if (!*name) {
            nn_error_field(v->err, epath, "must not be empty");
            continue;
        }
        add_tensor(v, &out->outputs, &out->noutputs, cap, name, epath);
        jv_t *s = jv_cstring(v->arena, name);
        if (!s || !jv_append(v->arena, norm, s))
            v->oom = true;
    }
}

static jv_t *validate_postprocessings(vctx_t *v, const jv_t *posts, validated_create_t *out)
{
    jv_t *norm = jv_array(v->arena);
    if (!norm) {
        v->oom = true;
        return NULL;
    }
    posts = coerce_container(v, posts, JV_ARRAY);
    if (!posts || posts->type == JV_NULL)
        return norm;
    if (posts->type != JV_ARRAY) {
        nn_error_field(v->err, "postprocessings", "must be an array");
        return norm;
    }
    size_t cap = 0;
    for (size_t i = 0; i < posts->u.array.n; i++) {
        const char *ppath = path_index(v, "postprocessings", i);
        const jv_t *p = coerce_container(v, posts->u.array.items[i], JV_OBJECT);
        if (!p || p->type != JV_OBJECT) {
            nn_error_field(v->err, ppath,
                           "must be an object with tensors_output or standard_output");
            continue;
        }
        static const char *const pkeys[] = {"tensors_output", "standard_output"};
        check_keys(v, p, ppath, pkeys, 2);
        const jv_t *to = jv_get(p, "tensors_output");
        const jv_t *so = jv_get(p, "standard_output");
        if ((to != NULL) == (so != NULL)) {
            nn_error_field(v->err, ppath,
                           "must have exactly one of tensors_output or standard_output");
            continue;
        }
        jv_t *np = jv_object(v->arena);
        if (!np || !jv_append(v->arena, norm, np)) {
            v->oom = true;
            return norm;
        }
        if (to) {
            const char *tpath = path_join(v, ppath, "tensors_output");
            to = coerce_container(v, to, JV_OBJECT);
            const jv_t *list = to;
            if (to && to->type == JV_OBJECT) {
                static const char *const tkeys[] = {"tensors"};
                check_keys(v, to, tpath, tkeys, 1);
                list = coerce_container(v, jv_get(to, "tensors"), JV_ARRAY);
                tpath = path_join(v, tpath, "tensors");
            } else {
                list = coerce_container(v, to, JV_ARRAY); /* a bare list: normalized */
            }
            jv_t *wrap = jv_object(v->arena), *tensors = jv_array(v->arena);
            if (!wrap || !tensors || !jv_set(v->arena, wrap, "tensors", tensors) ||
                !jv_set(v->arena, np, "tensors_output", wrap))
                v->oom = true;
            else
                validate_tensor_list(v, list, tpath, out, &cap, tensors);
        } else {
            const char *spath = path_join(v, ppath, "standard_output");
            so = coerce_container(v, so, JV_OBJECT);
            if (!so || so->type != JV_OBJECT) {
                nn_error_field(v->err, spath,
                               "must be an object with boxes_tensor and scores_tensor");
                continue;
            }
            static const char *const skeys[] = {"boxes_tensor", "scores_tensor"};
            check_keys(v, so, spath, skeys, 2);
            jv_t *ns = jv_object(v->arena);
            if (!ns || !jv_set(v->arena, np, "standard_output", ns)) {
                v->oom = true;
                continue;
            }
            for (size_t k = 0; k < 2; k++) {
                const char *kpath = path_join(v, spath, skeys[k]);
                const jv_t *t = jv_get(so, skeys[k]);
                const char *name = NULL;
                if (!t) {
                    nn_error_field(v->err, kpath, "is required");
                } else if (get_string(v, t, kpath, &name)) {
                    if (!*name) {
                        nn_error_field(v->err, kpath, "must not be empty");
                        continue;
                    }
                    add_tensor(v, &out->outputs, &out->noutputs, &cap, name, kpath);
                    jv_t *s = jv_cstring(v->arena, name);
                    if (!s || !jv_set(v->arena, ns, skeys[k], s))
                        v->oom = true;
                }
            }
        }
    }
    return norm;
}

/* Form values inside metadata ("metadata.owner") arrive as raw bytes:
 * each must be text PostgreSQL can store. */
static bool check_metadata_text(vctx_t *v, const jv_t *value, const char *path)
{
    bool ok = true;
    if (value->type == JV_STRING && value->from_form &&
        !validate_utf8_text(value->u.string.ptr, value->u.string.len)) {
        nn_error_field(v->err, path, "must be UTF-8 text without NUL characters");
        ok = false;
    } else if (value->type == JV_OBJECT) {
        for (size_t i = 0; i < value->u.object.n; i++)
            ok &= check_metadata_text(v, value->u.object.values[i],
                                      path_join(v, path, value->u.object.keys[i]));
    } else if (value->type == JV_ARRAY) {
        for (size_t i = 0; i < value->u.array.n; i++)
            ok &= check_metadata_text(v, value->u.array.items[i], path_index(v, path, i));
    }
    return ok;
}

/* name, description, metadata: the mutable fields, shared by create and
 * update.  present_* tell which were given. */
static void validate_mutable(vctx_t *v, const jv_t *body, bool name_required, const char **name,
                             const char **description, const char **metadata)
{
    const jv_t *f = jv_get(body, "name");
    if (f) {
        const char *s = NULL;
        if (get_string(v, f, "name", &s)) {
            size_t len = strlen(s), start = 0;
            while (start < len &&
                   (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' || s[start] == '\r'))
                start++;
            while (len > start && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                                   s[len - 1] == '\r'))
                len--;
            if (len == start)
                nn_error_field(v->err, "name", "must not be empty");
            else if (validate_utf8_length(s + start, len - start) > VALIDATE_NAME_MAX)
                nn_error_field(v->err, "name", "must be at most %d characters", VALIDATE_NAME_MAX);
            else if (!(*name = arena_strndup(v->arena, s + start, len - start)))
                v->oom = true;
        }
    } else if (name_required) {
        nn_error_field(v->err, "name", "is required: a non-empty string");
    }
    f = jv_get(body, "description");
    if (f) {
        const char *s = NULL;
        if (get_string(v, f, "description", &s)) {
            if (validate_utf8_length(s, f->u.string.len) > VALIDATE_DESCRIPTION_MAX)
                nn_error_field(v->err, "description", "must be at most %d characters",
                               VALIDATE_DESCRIPTION_MAX);
            else
                *description = s;
        }
    }
    f = coerce_container(v, jv_get(body, "metadata"), JV_OBJECT);
    if (f) {
        if (f->type != JV_OBJECT) {
            nn_error_field(v->err, "metadata", "must be a JSON object (not an array or a scalar)");
        } else if (check_metadata_text(v, f, "metadata")) {
            size_t len;
            char *s = jv_serialize(v->arena, f, &len);
            if (!s)
                v->oom = true;
            else if (len > VALIDATE_METADATA_MAX)
                nn_error_field(v->err, "metadata", "must be at most %d bytes once serialized",
                               VALIDATE_METADATA_MAX);
            else
                *metadata = s;
        }
    }
}

static void refuse_fields(vctx_t *v, const jv_t *body, const char *const *fields, size_t n,
                          const char *why)
{
    for (size_t i = 0; i < n; i++)
        if (jv_get(body, fields[i]))
            nn_error_field(v->err, fields[i], "%s", why);
}

bool validate_create(arena_t *arena, const jv_t *body, const char *const *file_names, size_t nfiles,
                     validated_create_t *out, nn_error_t *err)
{
    vctx_t v = {arena, err, false};
    memset(out, 0, sizeof(*out));
    if (!body || body->type != JV_OBJECT)
        return nn_error_set(err, 400, "invalid_body", "the request body must be a JSON object");

    refuse_fields(&v, body, read_only_fields,
                  sizeof(read_only_fields) / sizeof(read_only_fields[0]),
                  "is read-only; leave it out");
    static const char *const known[] = {
        "name",       "description", "metadata", "framework", "preprocessing", "postprocessings",
        "id",         "task_id",     "files",    "is_public", "slug",          "create_date",
        "update_date"};
    check_keys(&v, body, "", known, sizeof(known) / sizeof(known[0]));

    out->description = "";
    out->metadata_json = "{}";
    validate_mutable(&v, body, true, &out->name, &out->description, &out->metadata_json);

    const jv_t *fw = jv_get(body, "framework");
    if (!fw)
        nn_error_field(err, "framework", "is required; the supported framework is tensorflow-1.x");
    else if (get_string(&v, fw, "framework", &out->framework) &&
             strcmp(out->framework, "tensorflow-1.x") != 0)
        nn_error_field(err, "framework",
                       "must be tensorflow-1.x (it covers TensorFlow models up to version 2.9)");

    jv_t *pre = validate_preprocessing(&v, jv_get(body, "preprocessing"), file_names, nfiles, out);
    jv_t *posts = validate_postprocessings(&v, jv_get(body, "postprocessings"), out);

    if (v.oom)
        return nn_error_oom(err);
    if (nn_error_is_set(err))
        return false;
    out->preprocessing_json = jv_serialize(arena, pre, NULL);
    out->postprocessings_json = jv_serialize(arena, posts, NULL);
    if (!out->preprocessing_json || !out->postprocessings_json)
        return nn_error_oom(err);
    return true;
}

bool validate_update(arena_t *arena, const jv_t *body, bool is_put, validated_update_t *out,
                     nn_error_t *err)
{
    vctx_t v = {arena, err, false};
    memset(out, 0, sizeof(*out));
    if (!body || body->type != JV_OBJECT)
        return nn_error_set(
            err, 400, "invalid_body",
            "the request body must be a JSON object with name, description or metadata");
    refuse_fields(&v, body, read_only_fields,
                  sizeof(read_only_fields) / sizeof(read_only_fields[0]),
                  "is read-only; leave it out");
    refuse_fields(&v, body, immutable_fields,
                  sizeof(immutable_fields) / sizeof(immutable_fields[0]),
                  "cannot be changed after creation; create a new network instead");
    static const char *const known[] = {
        "name",       "description", "metadata", "framework", "preprocessing", "postprocessings",
        "id",         "task_id",     "files",    "is_public", "slug",          "create_date",
        "update_date"};
    check_keys(&v, body, "", known, sizeof(known) / sizeof(known[0]));
    if (is_put) {
        out->description = "";
        out->metadata_json = "{}";
    }
    validate_mutable(&v, body, is_put, &out->name, &out->description, &out->metadata_json);
    if (v.oom)
        return nn_error_oom(err);
    return !nn_error_is_set(err);
}
