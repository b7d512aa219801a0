/* inference.c - POST /networks/{id}/inference: checks a request against the
 * network (its deployment, its inputs, the tensors asked for), fetches URL
 * sources, and queues an inference task for nnreg-inferd: the task, the
 * request and its images go in one transaction with a NOTIFY on
 * nnreg_inference.
 *
 * Bodies: application/json, or multipart/form-data as the official Python
 * client sends it (deepomatic-client-python, deepomatic/api/inputs.py
 * format_inputs + http_helper.py dump_json_for_multipart: the image bytes
 * in a file part named "inputs[0]image.source", every other value a part
 * of its own named by its flattened path, "inputs[0]image.bbox.xmin",
 * "output_tensors[1]", and sent with Content-Type application/json but
 * written by Python's str(), so "False" and "0.1" arrive as such). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/render.h"
#include "api/validate.h"
#include "http/formkey.h"
#include "http/multipart.h"
#include "image/fetch.h"
#include "json/jv.h"
#include "model/graph.h"
#include "util/base64.h"
#include "util/log.h"

#define INFER_MAX_INPUTS 256
#define INFER_MAX_OUTPUTS 256
#define INFER_MAX_TENSOR_NAME 1024
#define INFER_MAX_FIELDS_BYTES (1024 * 1024)
#define INFER_READ_CHUNK (256 * 1024)
#define INFER_CLOSE_NAMES 5

/* A file part: the bytes of one input's image. */
typedef struct infer_file {
    const char *name;
    nn_buf_t bytes;
    const jv_t *marker; /* stands for the file in the field tree */
} infer_file_t;

typedef struct infer_parse {
    nn_request_t *req;
    jv_t *fields;
    infer_file_t files[INFER_MAX_INPUTS];
    size_t nfiles;
    infer_file_t *file; /* current file part, NULL for a field */
    const char *field_name;
    bool field_is_json;
    nn_buf_t field_value;
    size_t fields_bytes;
} infer_parse_t;

/* One input, checked. */
typedef struct infer_input {
    const unsigned char *image;
    size_t len;
    const char *bbox_json; /* NULL: the whole image */
} infer_input_t;

/* Names the field of an error whose code is not validation_error
 * (unknown_tensor, invalid_image, …): nn_error_field keeps fields for
 * validation errors only. */
static void add_field(nn_error_t *err, const char *path, const char *message)
{
    if (err->nfields == NN_ERROR_MAX_FIELDS)
        return;
    nn_field_error_t *f = &err->fields[err->nfields++];
    snprintf(f->path, sizeof(f->path), "%s", path);
    /* Cut at a character boundary: the message is UTF-8. */
    size_t n = strlen(message);
    if (n >= sizeof(f->message)) {
        n = sizeof(f->message) - 1;
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(f->message, message, n);
    f->message[n] = '\0';
}

static bool is_json_type(const char *content_type)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    if (!content_type || strncasecmp(content_type, json, n) != 0)
        return false;
    char next = content_type[n];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* ------------------------------------------------------------- bodies */

static bool on_part_begin(void *ctx, const mp_part_t *part, nn_error_t *err)
{
    infer_parse_t *p = ctx;
    arena_t *arena = p->req->arena;
    if (!part->name || !*part->name)
        return nn_error_set(err, 400, "invalid_multipart",
                            "part %zu has no name in its Content-Disposition; name the image part "
                            "\"inputs[0]image.source\" and fields by their path",
                            part->index + 1);
    if (part->filename && !is_json_type(part->content_type)) {
        if (p->nfiles == INFER_MAX_INPUTS)
            return nn_error_set(err, 400, "too_many_files", "too many file parts (at most %d)",
                                INFER_MAX_INPUTS);
        infer_file_t *f = &p->files[p->nfiles++];
        f->name = arena_strdup(arena, part->name);
        if (!f->name)
            return nn_error_oom(err);
        buf_init(&f->bytes, arena);
        p->file = f;
        return true;
    }
    p->file = NULL;
    p->field_name = arena_strdup(arena, part->name);
    if (!p->field_name)
        return nn_error_oom(err);
    p->field_is_json = is_json_type(part->content_type);
    buf_init(&p->field_value, arena);
    return true;
}

static bool on_part_data(void *ctx, const char *data, size_t len, nn_error_t *err)
{
    infer_parse_t *p = ctx;
    if (p->file)
        return buf_append(&p->file->bytes, data, len) || nn_error_oom(err);
    p->fields_bytes += len;
    if (p->fields_bytes > INFER_MAX_FIELDS_BYTES)
        return nn_error_set(err, 400, "fields_too_large",
                            "the non-file fields add up to more than %d bytes; send images as "
                            "file parts",
                            INFER_MAX_FIELDS_BYTES);
    return buf_append(&p->field_value, data, len) || nn_error_oom(err);
}

static bool on_part_end(void *ctx, nn_error_t *err)
{
    infer_parse_t *p = ctx;
    arena_t *arena = p->req->arena;
    if (p->file) {
        p->file = NULL;
        return true;
    }
    const char *text = buf_cstr(&p->field_value);
    if (!text)
        return nn_error_oom(err);
    size_t len = p->field_value.len;
    jv_t *value = NULL;
    if (p->field_is_json) {
        /* The official client labels every value JSON but writes it with
         * Python's str() ("False", "0.1"): what does not parse as JSON is
         * read as a form value, converted below like any other. */
        nn_error_t ignored;
        nn_error_init(&ignored);
        value = jv_parse(arena, text, len, "part", &ignored);
    }
    if (!value) {
        if (!validate_utf8_text(text, len))
            return nn_error_set(err, 400, "validation_error",
                                "field \"%s\" must be UTF-8 text without NUL characters",
                                validate_clip(arena, p->field_name, VALIDATE_ECHO_MAX));
        value = jv_string(arena, text, len);
        if (!value)
            return nn_error_oom(err);
        value->from_form = true;
    }
    return formkey_insert(arena, p->fields, p->field_name, strlen(p->field_name), value, err);
}

static bool parse_multipart(infer_parse_t *p)
{
    nn_request_t *req = p->req;
    char *boundary;
    if (!mp_boundary_from_content_type(req->arena, req->content_type, &boundary, &req->err))
        return false;
    static const mp_callbacks_t callbacks = {on_part_begin, on_part_data, on_part_end};
    mp_parser_t *parser = mp_parser_create(req->arena, boundary, NULL, &callbacks, p);
    char *chunk = arena_alloc(req->arena, INFER_READ_CHUNK);
    if (!parser || !chunk)
        return nn_error_oom(&req->err);
    long long limit = req->ctx->config->infer_max_request_bytes;
    uint64_t total = 0;
    mp_status_t st = MP_NEED_MORE;
    for (;;) {
        size_t got;
        if (!req_read_body(req, chunk, INFER_READ_CHUNK, &got, &req->err))
            return false;
        if (got == 0)
            break;
        total += got;
        if (total > (uint64_t)limit)
            return nn_error_set(&req->err, 413, "body_too_large",
                                "the inference request is larger than %lld bytes "
                                "(NNREG_INFER_MAX_REQUEST_BYTES); send smaller images",
                                limit);
        if (st == MP_DONE)
            continue;
        st = mp_parser_feed(parser, chunk, got, &req->err);
        if (st == MP_ERROR)
            return false;
    }
    if (st != MP_DONE && mp_parser_finish(parser, &req->err) != MP_DONE)
        return false;
    /* Each file part must be an input's image source. */
    for (size_t i = 0; i < p->nfiles; i++) {
        infer_file_t *f = &p->files[i];
        formkey_segment_t *segs;
        size_t nsegs;
        if (!formkey_parse(req->arena, f->name, strlen(f->name), &segs, &nsegs, &req->err))
            return false;
        bool source = nsegs == 4 && !segs[0].is_index && strcmp(segs[0].key, "inputs") == 0 &&
                      segs[1].is_index && !segs[2].is_index && strcmp(segs[2].key, "image") == 0 &&
                      !segs[3].is_index && strcmp(segs[3].key, "source") == 0;
        if (!source)
            return nn_error_set(&req->err, 400, "unexpected_file",
                                "unexpected file part \"%s\": an image file goes in the part "
                                "named \"inputs[N]image.source\" (N the input's position)",
                                validate_clip(req->arena, f->name, VALIDATE_ECHO_MAX));
        if (f->bytes.len == 0)
            return nn_error_field(&req->err,
                                  arena_printf(req->arena, "inputs[%zu].image.source",
                                               segs[1].index),
                                  "the image file is empty");
        /* The bytes stay in p->files; the tree holds a marker, known by
         * its address (a body cannot forge one). */
        jv_t *marker = jv_bool(req->arena, true);
        if (!marker)
            return nn_error_oom(&req->err);
        f->marker = marker;
        if (!formkey_insert(req->arena, p->fields, f->name, strlen(f->name), marker, &req->err))
            return false;
    }
    return true;
}

static bool parse_body(infer_parse_t *p)
{
    nn_request_t *req = p->req;
    const char *ct = req->content_type ? req->content_type : "";
    long long limit = req->ctx->config->infer_max_request_bytes;
    if (req->content_length > limit)
        return nn_error_set(&req->err, 413, "body_too_large",
                            "the inference request is %lld bytes, more than the limit of %lld "
                            "bytes (NNREG_INFER_MAX_REQUEST_BYTES); send smaller images",
                            (long long)req->content_length, limit);
    if (is_json_type(ct)) {
        char *text;
        size_t len;
        if (!req_read_small_body(req, (size_t)limit, &text, &len))
            return false;
        p->fields = jv_parse(req->arena, text, len, "request body", &req->err);
        if (!p->fields)
            return false;
        if (p->fields->type != JV_OBJECT)
            return nn_error_set(&req->err, 400, "invalid_body",
                                "the body must be a JSON object: {\"inputs\": [{\"image\": "
                                "{\"source\": \"...\"}}]}");
        return true;
    }
    if (strncasecmp(ct, "multipart/form-data", 19) == 0) {
        p->fields = jv_object(req->arena);
        return p->fields ? parse_multipart(p) : nn_error_oom(&req->err);
    }
    return nn_error_set(&req->err, 415, "unsupported_media_type",
                        "send the inference request as application/json, or as "
                        "multipart/form-data with the image in a file part named "
                        "\"inputs[0]image.source\"");
}

/* ------------------------------------------------------------- fields */

/* A number, or a form string holding one. */
static bool number_value(const jv_t *v, double *out)
{
    if (v->type == JV_NUMBER) {
        *out = v->u.number.value;
        return true;
    }
    if (v->type == JV_STRING && v->from_form && v->u.string.len > 0) {
        char *end;
        *out = strtod(v->u.string.ptr, &end);
        return *end == '\0';
    }
    return false;
}

/* A boolean, or a form string True/true/1/False/false/0. */
static bool bool_value(const jv_t *v, bool *out)
{
    if (v->type == JV_BOOL) {
        *out = v->u.boolean;
        return true;
    }
    if (v->type == JV_STRING && v->from_form) {
        const char *s = v->u.string.ptr;
        if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "1")) {
            *out = true;
            return true;
        }
        if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "0")) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool check_bbox(nn_request_t *req, const char *path, const jv_t *bbox, const char **json)
{
    arena_t *arena = req->arena;
    *json = NULL;
    if (bbox->type == JV_NULL)
        return true;
    if (bbox->type != JV_OBJECT)
        return nn_error_field(&req->err, path,
                              "must be an object {\"xmin\", \"ymin\", \"xmax\", \"ymax\"} of "
                              "fractions of the image's width and height");
    static const char *const keys[] = {"xmin", "ymin", "xmax", "ymax"};
    double v[4];
    for (size_t k = 0; k < bbox->u.object.n; k++) {
        const char *key = bbox->u.object.keys[k];
        bool known = false;
        for (size_t i = 0; i < 4; i++)
            known = known || strcmp(key, keys[i]) == 0;
        if (!known)
            nn_error_field(&req->err, arena_printf(arena, "%s.%s", path, key),
                           "unknown key; a bbox has xmin, ymin, xmax and ymax");
    }
    for (size_t i = 0; i < 4; i++) {
        const jv_t *x = jv_get(bbox, keys[i]);
        const char *field = arena_printf(arena, "%s.%s", path, keys[i]);
        if (!x)
            nn_error_field(&req->err, field, "is required");
        else if (!number_value(x, &v[i]) || !(v[i] >= 0.0 && v[i] <= 1.0))
            nn_error_field(&req->err, field,
                           "must be a number between 0 and 1 (a fraction of the image's %s)",
                           i % 2 == 0 ? "width" : "height");
    }
    if (nn_error_is_set(&req->err))
        return false;
    if (!(v[0] < v[2]))
        return nn_error_field(&req->err, arena_printf(arena, "%s.xmax", path),
                              "must be greater than xmin (the box would be empty)");
    if (!(v[1] < v[3]))
        return nn_error_field(&req->err, arena_printf(arena, "%s.ymax", path),
                              "must be greater than ymin (the box would be empty)");
    *json = arena_printf(arena, "{\"xmin\": %.17g, \"ymin\": %.17g, \"xmax\": %.17g, \"ymax\": %.17g}",
                         v[0], v[1], v[2], v[3]);
    return *json || nn_error_oom(&req->err);
}

/* What the image bytes are, by their signature: NULL for JPEG and PNG
 * (what the engine decodes), else a name for the message. */
static const char *image_kind_problem(const unsigned char *b, size_t len)
{
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return NULL;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return NULL;
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return "a GIF image";
    if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        return "a BMP image";
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "a WebP image";
    if (len >= 4 && (memcmp(b, "II*", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return "a TIFF image";
    return "not an image";
}

/* One input's image source: a file part, an http(s) URL (fetched now), or
 * base64 bytes. */
static bool load_source(nn_request_t *req, infer_parse_t *p, const char *path, const jv_t *source,
                        infer_input_t *in)
{
    arena_t *arena = req->arena;
    const nn_config_t *cfg = req->ctx->config;
    const infer_file_t *file = NULL;
    for (size_t i = 0; i < p->nfiles && !file; i++)
        if (p->files[i].marker == source)
            file = &p->files[i];
    if (file) {
        in->image = (const unsigned char *)file->bytes.data;
        in->len = file->bytes.len;
    } else if (source->type == JV_STRING && source->u.string.len > 0) {
        const char *s = source->u.string.ptr;
        if (fetch_is_url(s)) {
            if (cfg->fetch_max_bytes == 0)
                return nn_error_field(&req->err, path,
                                      "URL sources are disabled on this server "
                                      "(NNREG_FETCH_MAX_BYTES=0); send the image's bytes");
            fetch_limits_t limits;
            fetch_limits_from_config(cfg, &limits);
            void *bytes;
            size_t len;
            if (!fetch_url(arena, s, &limits, &bytes, &len, &req->err)) {
                if (req->err.status == 400 && req->err.nfields == 0)
                    add_field(&req->err, path, req->err.message);
                return false;
            }
            in->image = bytes;
            in->len = len;
        } else {
            /* A data: URI's header is not part of the base64. */
            size_t len = source->u.string.len;
            if (strncmp(s, "data:", 5) == 0) {
                const char *comma = strchr(s, ',');
                if (!comma || !strstr(s, ";base64"))
                    return nn_error_field(&req->err, path,
                                          "a data: URI source must be base64 (data:image/png;"
                                          "base64,...)");
                len -= (size_t)(comma + 1 - s);
                s = comma + 1;
            }
            unsigned char *bytes;
            size_t n;
            const char *why;
            if (!base64_decode(arena, s, len, &bytes, &n, &why))
                return strcmp(why, "out of memory") == 0
                           ? nn_error_oom(&req->err)
                           : nn_error_field(&req->err, path,
                                            "is neither an http(s) URL nor valid base64: it %s",
                                            why);
            in->image = bytes;
            in->len = n;
        }
    } else {
        return nn_error_field(&req->err, path,
                              "must be the image: base64 bytes, an http(s) URL, or a file part "
                              "of that name");
    }
    if (in->len == 0)
        return nn_error_field(&req->err, path, "the image is empty");
    const char *problem = image_kind_problem(in->image, in->len);
    if (problem) {
        nn_error_set(&req->err, 400, "invalid_image", "%s holds %s; send a JPEG or PNG image",
                     path, problem);
        add_field(&req->err, path, req->err.message);
        return false;
    }
    return true;
}

static bool check_inputs(nn_request_t *req, infer_parse_t *p, size_t ninputs,
                         infer_input_t *inputs)
{
    arena_t *arena = req->arena;
    const jv_t *list = jv_get(p->fields, "inputs");
    if (!list)
        return nn_error_field(&req->err, "inputs",
                              "is required: [{\"image\": {\"source\": \"<base64 or URL>\"}}], one "
                              "per preprocessing input of the network (%zu)",
                              ninputs);
    if (list->type != JV_ARRAY)
        return nn_error_field(&req->err, "inputs", "must be a list of input objects");
    if (list->u.array.n != ninputs)
        return nn_error_field(&req->err, "inputs",
                              "has %zu input%s but the network has %zu preprocessing input%s: "
                              "send one {\"image\": …} per input, in the same order",
                              list->u.array.n, list->u.array.n == 1 ? "" : "s", ninputs,
                              ninputs == 1 ? "" : "s");
    for (size_t i = 0; i < ninputs; i++) {
        const jv_t *item = list->u.array.items[i];
        const char *ipath = arena_printf(arena, "inputs[%zu]", i);
        if (!ipath)
            return nn_error_oom(&req->err);
        if (!item || item->type != JV_OBJECT)
            return nn_error_field(&req->err, ipath, "must be an object {\"image\": {…}}");
        for (size_t k = 0; k < item->u.object.n; k++)
            if (strcmp(item->u.object.keys[k], "image") != 0)
                return nn_error_field(&req->err,
                                      arena_printf(arena, "%s.%s", ipath, item->u.object.keys[k]),
                                      "unknown input type; the only input type is \"image\"");
        const jv_t *image = jv_get(item, "image");
        const char *path = arena_printf(arena, "%s.image", ipath);
        if (!image || image->type != JV_OBJECT)
            return nn_error_field(&req->err, path,
                                  "is required: {\"source\": \"<base64 or URL>\", \"bbox\": …}");
        const jv_t *source = NULL, *bbox = NULL;
        for (size_t k = 0; k < image->u.object.n; k++) {
            const char *key = image->u.object.keys[k];
            const jv_t *v = image->u.object.values[k];
            const char *kpath = arena_printf(arena, "%s.%s", path, key);
            if (strcmp(key, "source") == 0) {
                source = v;
            } else if (strcmp(key, "bbox") == 0) {
                bbox = v;
            } else if (strcmp(key, "crop_uniform_background") == 0) {
                bool on;
                if (!bool_value(v, &on))
                    return nn_error_field(&req->err, kpath, "must be true or false");
                if (on)
                    return nn_error_field(&req->err, kpath,
                                          "is not supported by nnreg; send false (or leave it "
                                          "out) and crop with bbox");
            } else if (strcmp(key, "polygon") == 0) {
                if (v->type != JV_NULL)
                    return nn_error_field(&req->err, kpath,
                                          "is not supported by nnreg; crop with bbox instead");
            } else {
                return nn_error_field(&req->err, kpath,
                                      "unknown key; an image has source, bbox and "
                                      "crop_uniform_background");
            }
        }
        if (!source)
            return nn_error_field(&req->err, arena_printf(arena, "%s.source", path),
                                  "is required: base64 bytes, an http(s) URL, or a file part "
                                  "named \"inputs[%zu]image.source\"",
                                  i);
        if (bbox && !check_bbox(req, arena_printf(arena, "%s.bbox", path), bbox,
                                &inputs[i].bbox_json))
            return false;
        if (!load_source(req, p, arena_printf(arena, "%s.source", path), source, &inputs[i]))
            return false;
    }
    return true;
}

/* output_tensors, or the network's postprocessing tensors by default. */
static bool output_names(nn_request_t *req, const jv_t *fields, const jv_t *posts,
                         const char ***names, size_t *n)
{
    arena_t *arena = req->arena;
    const jv_t *list = jv_get(fields, "output_tensors");
    const char **out = arena_calloc(arena, INFER_MAX_OUTPUTS + 1, sizeof(*out));
    if (!out)
        return nn_error_oom(&req->err);
    size_t count = 0;
    if (list && list->type != JV_NULL) {
        if (list->type == JV_STRING) {
            out[count++] = list->u.string.ptr;
        } else if (list->type == JV_ARRAY) {
            if (list->u.array.n == 0)
                return nn_error_field(&req->err, "output_tensors",
                                      "must name at least one tensor (leave it out for the "
                                      "network's outputs)");
            if (list->u.array.n > INFER_MAX_OUTPUTS)
                return nn_error_field(&req->err, "output_tensors", "names more than %d tensors",
                                      INFER_MAX_OUTPUTS);
            for (size_t i = 0; i < list->u.array.n; i++) {
                const jv_t *t = list->u.array.items[i];
                const char *path = arena_printf(arena, "output_tensors[%zu]", i);
                if (!t || t->type != JV_STRING || t->u.string.len == 0 ||
                    t->u.string.len > INFER_MAX_TENSOR_NAME ||
                    !validate_utf8_text(t->u.string.ptr, t->u.string.len))
                    return nn_error_field(&req->err, path,
                                          "must be a tensor name such as \"logits:0\" (at most "
                                          "%d bytes)",
                                          INFER_MAX_TENSOR_NAME);
                out[count++] = t->u.string.ptr;
            }
        } else {
            return nn_error_field(&req->err, "output_tensors",
                                  "must be a list of tensor names such as [\"logits:0\"]");
        }
    } else if (posts && posts->type == JV_ARRAY) {
        for (size_t i = 0; i < posts->u.array.n && count < INFER_MAX_OUTPUTS; i++) {
            const jv_t *post = posts->u.array.items[i];
            const jv_t *to = jv_get(post, "tensors_output");
            const jv_t *tensors = to ? jv_get(to, "tensors") : NULL;
            if (tensors && tensors->type == JV_ARRAY) {
                for (size_t k = 0; k < tensors->u.array.n && count < INFER_MAX_OUTPUTS; k++)
                    if (tensors->u.array.items[k]->type == JV_STRING)
                        out[count++] = tensors->u.array.items[k]->u.string.ptr;
            }
            const jv_t *so = jv_get(post, "standard_output");
            static const char *const keys[] = {"boxes_tensor", "scores_tensor"};
            for (size_t k = 0; so && k < 2 && count < INFER_MAX_OUTPUTS; k++) {
                const jv_t *t = jv_get(so, keys[k]);
                if (t && t->type == JV_STRING)
                    out[count++] = t->u.string.ptr;
            }
        }
    }
    if (count == 0)
        return nn_error_field(&req->err, "output_tensors",
                              "is required: the network declares no postprocessing tensors, so "
                              "name the tensors to return, such as [\"logits:0\"]");
    *names = out;
    *n = count;
    return true;
}

/* "name:N" -> "name" (a trailing ":digits" only). */
static const char *node_of(arena_t *arena, const char *tensor)
{
    const char *colon = strrchr(tensor, ':');
    if (!colon || !colon[1])
        return tensor;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return tensor;
    return arena_strndup(arena, tensor, (size_t)(colon - tensor));
}

static const char *names_list(arena_t *arena, const char *const *names, size_t n)
{
    nn_buf_t b;
    buf_init(&b, arena);
    for (size_t i = 0; i < n; i++)
        buf_appendf(&b, "%s\"%s\"", i ? ", " : "",
                    validate_clip(arena, names[i], VALIDATE_ECHO_MAX));
    const char *s = buf_cstr(&b);
    return s && *s ? s : "(none)";
}

/* Every output must be a node of the graph that the engine can compute. */
static bool check_outputs(nn_request_t *req, const char *network, const char *const *tensors,
                          size_t n, bool user_named)
{
    arena_t *arena = req->arena;
    const char **nodes = arena_calloc(arena, n + 1, sizeof(*nodes));
    if (!nodes)
        return nn_error_oom(&req->err);
    for (size_t i = 0; i < n; i++)
        if (!(nodes[i] = node_of(arena, tensors[i])))
            return nn_error_oom(&req->err);
    const char *array = db_text_array(arena, nodes, n);
    if (!array)
        return nn_error_oom(&req->err);
    const char *params[] = {network, array};
    PGresult *res = db_exec(req->ctx->db, arena, "inference_nodes", 2, params, NULL, &req->err);
    if (!res)
        return false;
    graph_summary_t all;
    bool all_loaded = false;
    for (size_t i = 0; i < n; i++) {
        int row = -1;
        for (int r = 0; r < PQntuples(res) && row < 0; r++)
            if (strcmp(db_value(res, r, 0), nodes[i]) == 0)
                row = r;
        const char *path =
            user_named ? arena_printf(arena, "output_tensors[%zu]", i) : "output_tensors";
        if (row < 0) {
            if (!all_loaded) {
                const char *p1[] = {network};
                PGresult *names =
                    db_exec(req->ctx->db, arena, "inference_node_names", 1, p1, NULL, &req->err);
                if (!names)
                    return false;
                memset(&all, 0, sizeof(all));
                all.nnodes = (size_t)PQntuples(names);
                all.nodes = arena_calloc(arena, all.nnodes + 1, sizeof(*all.nodes));
                if (!all.nodes)
                    return nn_error_oom(&req->err);
                for (size_t k = 0; k < all.nnodes; k++)
                    all.nodes[k].name = db_value(names, (int)k, 0);
                all_loaded = true;
            }
            const char *close[INFER_CLOSE_NAMES];
            size_t nclose = graph_closest_names(arena, &all, tensors[i], close, INFER_CLOSE_NAMES);
            nn_error_set(&req->err, 400, "unknown_tensor",
                         "tensor \"%s\" is not in the network's graph; closest names: %s",
                         validate_clip(arena, tensors[i], VALIDATE_ECHO_MAX),
                         names_list(arena, close, nclose));
            add_field(&req->err, path, req->err.message);
            return false;
        }
        const char *op = db_value(res, row, 1);
        if (op) {
            nn_error_set(&req->err, 400, "unsupported_op",
                         "tensor \"%s\" needs node \"%s\" whose op %s nnreg's inference engine "
                         "does not run; ask for tensors computed before it (the deployment "
                         "report lists such ops under unsupported_ops)",
                         validate_clip(arena, tensors[i], VALIDATE_ECHO_MAX),
                         validate_clip(arena, db_value(res, row, 2), VALIDATE_ECHO_MAX), op);
            add_field(&req->err, path, req->err.message);
            return false;
        }
    }
    return true;
}

/* "\x" + hex: bytea in the text protocol. */
static const char *bytea_hex(arena_t *arena, const unsigned char *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = arena_alloc(arena, len * 2 + 3);
    if (!s)
        return NULL;
    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        s[2 + 2 * i] = digits[b[i] >> 4];
        s[3 + 2 * i] = digits[b[i] & 15];
    }
    s[2 + 2 * len] = '\0';
    return s;
}

static bool store_request(nn_request_t *req, const char *network, const char *const *tensors,
                          size_t ntensors, const infer_input_t *inputs, size_t ninputs)
{
    arena_t *arena = req->arena;
    char org[24], max_pending[24];
    snprintf(org, sizeof(org), "%lld", req->org_id);
    snprintf(max_pending, sizeof(max_pending), "%lld", req->ctx->config->infer_max_pending);
    const char *outputs = db_text_array(arena, tensors, ntensors);
    const char **hex = arena_calloc(arena, ninputs + 1, sizeof(*hex));
    const char **bboxes = arena_calloc(arena, ninputs + 1, sizeof(*bboxes));
    if (!outputs || !hex || !bboxes)
        return nn_error_oom(&req->err);
    for (size_t i = 0; i < ninputs; i++) {
        if (!(hex[i] = bytea_hex(arena, inputs[i].image, inputs[i].len)))
            return nn_error_oom(&req->err);
        bboxes[i] = inputs[i].bbox_json;
    }
    const char *images = db_text_array(arena, hex, ninputs);
    const char *bbox_array = db_text_array(arena, bboxes, ninputs);
    if (!images || !bbox_array)
        return nn_error_oom(&req->err);
    /* Not waiting for the WAL flush unless the operator asks: a database
     * crash can then lose the requests of its last few hundred
     * milliseconds (the client finds no task and sends again), which buys
     * one disk flush less on every inference (docs/api.md). */
    const char *sync = req->ctx->config->infer_sync_commit ? "on" : "off";
    const char *params[] = {org, network, outputs, max_pending, sync, images, bbox_array};
    PGresult *res = db_exec(req->ctx->db, arena, "inference_insert", 7, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1) {
        req->err.retry_after = 5;
        return nn_error_set(&req->err, 429, "too_many_pending",
                            "your organization has %lld inference tasks pending already "
                            "(NNREG_INFER_MAX_PENDING); wait for some to finish, then retry",
                            req->ctx->config->infer_max_pending);
    }
    long long id = db_value_ll(res, 0, 0);
    char *location = arena_printf(arena, "%s://%s/v0.7/tasks/%lld/", req->scheme, req->host, id);
    if (location)
        req_add_header(req, "Location", location);
    req->status = 201;
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    render_key_int(g, "task_id", id);
    yajl_gen_map_close(g);
    return true;
}

bool api_networks_inference(nn_request_t *req)
{
    long long id;
    if (!api_route_id(req, 0, &id))
        return false;
    arena_t *arena = req->arena;
    char network[24], org[24];
    snprintf(network, sizeof(network), "%lld", id);
    snprintf(org, sizeof(org), "%lld", req->org_id);
    const char *params[] = {network, org};
    PGresult *res = db_exec(req->ctx->db, arena, "inference_network", 2, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return nn_error_set(&req->err, 404, "not_found",
                            "network %lld does not exist (or is not visible to your organization)",
                            id);
    const char *task_id = db_value(res, 0, 2);
    const char *task_status = db_value(res, 0, 3);
    if (task_status && strcmp(task_status, "pending") == 0)
        return nn_error_set(&req->err, 409, "network_deploying",
                            "network %lld is still being deployed (task %s is pending); wait until "
                            "that task's status is success, then send the inference again",
                            id, task_id);
    if (task_status && strcmp(task_status, "error") == 0)
        return nn_error_set(&req->err, 409, "network_not_deployed",
                            "network %lld could not be deployed, so it cannot run (task %s: %s); "
                            "fix what the task says and create the network again",
                            id, task_id,
                            validate_clip(arena, db_value(res, 0, 4) ? db_value(res, 0, 4) : "",
                                          400));
    nn_error_t ignored;
    nn_error_init(&ignored);
    const char *pre_text = db_value(res, 0, 0), *post_text = db_value(res, 0, 1);
    const jv_t *pre = jv_parse(arena, pre_text, strlen(pre_text), "preprocessing", &ignored);
    const jv_t *posts = jv_parse(arena, post_text, strlen(post_text), "postprocessings", &ignored);
    const jv_t *pre_inputs = pre ? jv_get(pre, "inputs") : NULL;
    if (!pre_inputs || pre_inputs->type != JV_ARRAY || pre_inputs->u.array.n == 0 ||
        pre_inputs->u.array.n > INFER_MAX_INPUTS)
        return nn_error_internal(&req->err, "stored preprocessing has no inputs list");
    size_t ninputs = pre_inputs->u.array.n;
    bool has_nodes = strcmp(db_value(res, 0, 5), "t") == 0;

    infer_parse_t *p = arena_calloc(arena, 1, sizeof(*p));
    infer_input_t *inputs = arena_calloc(arena, ninputs, sizeof(*inputs));
    if (!p || !inputs)
        return nn_error_oom(&req->err);
    p->req = req;
    if (!parse_body(p))
        return false;
    for (size_t k = 0; k < p->fields->u.object.n; k++) {
        const char *key = p->fields->u.object.keys[k];
        if (strcmp(key, "inputs") != 0 && strcmp(key, "output_tensors") != 0)
            return nn_error_field(&req->err, validate_clip(arena, key, VALIDATE_ECHO_MAX),
                                  "unknown field; an inference request has inputs and "
                                  "output_tensors");
    }
    const char **tensors = NULL;
    size_t ntensors = 0;
    bool user_named = jv_get(p->fields, "output_tensors") &&
                      jv_get(p->fields, "output_tensors")->type != JV_NULL;
    if (!output_names(req, p->fields, posts, &tensors, &ntensors))
        return false;
    /* Networks created before network_nodes existed are checked by
     * nnreg-inferd instead (the task then ends in error). */
    if (has_nodes && !check_outputs(req, network, tensors, ntensors, user_named))
        return false;
    /* Inputs last: a URL is fetched only for a request that is otherwise
     * good. */
    if (!check_inputs(req, p, ninputs, inputs))
        return false;
    return store_request(req, network, tensors, ntensors, inputs, ninputs);
}
