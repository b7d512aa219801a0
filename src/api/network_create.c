/* network_create.c - POST /networks/: the streaming multipart create.
 * Files stream to the blob store's temp files (hashed on the way), fields
 * are rebuilt into a JSON tree, then everything is checked (file set, file
 * types, field rules, graph and tensor names) before anything is stored;
 * blobs, rows, the task and its NOTIFY then go in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/render.h"
#include "api/validate.h"
#include "http/formkey.h"
#include "http/multipart.h"
#include "infer/blocked.h"
#include "infer/engine.h"
#include "model/graph.h"
#include "store/blob.h"
#include "store/filetype.h"
#include "util/log.h"
#include "json/jv.h"

#define CREATE_MAX_FILES 256
#define CREATE_MAX_FIELD_BYTES (512 * 1024)
#define CREATE_MAX_FIELDS_BYTES (1024 * 1024)
#define CREATE_READ_CHUNK (256 * 1024)
#define CANDIDATES_MAX 10
#define IDEMPOTENCY_KEY_MAX 255
#define TENSOR_LIST_MAX 300

typedef struct upload_file {
    const char *name; /* the part name: which file this is */
    file_kind_t kind;
    blob_upload_t *blob;
    const char *detected;
} upload_file_t;

typedef enum { PART_NONE, PART_FILE, PART_FIELD } part_kind_t;

typedef struct create_ctx {
    nn_request_t *req;
    jv_t *fields;
    upload_file_t files[CREATE_MAX_FILES];
    size_t nfiles;
    part_kind_t part;
    upload_file_t *file; /* current file part */
    const char *field_name;
    bool field_is_json;
    nn_buf_t field_value;
    size_t fields_bytes;
    uint64_t file_bytes;
} create_ctx_t;

static upload_file_t *find_file(create_ctx_t *c, const char *name)
{
    for (size_t i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i].name, name) == 0)
            return &c->files[i];
    return NULL;
}

/* application/json, with or without parameters ("; charset=utf-8"). */
static bool is_json_type(const char *content_type)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    if (strncasecmp(content_type, json, n) != 0)
        return false;
    char next = content_type[n];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static bool on_part_begin(void *ctx, const mp_part_t *part, nn_error_t *err)
{
    create_ctx_t *c = ctx;
    arena_t *arena = c->req->arena;
    if (!part->name || !*part->name)
        return nn_error_set(err, 400, "invalid_multipart",
                            "part %zu has no name in its Content-Disposition; name file parts by "
                            "their file name (saved_model.pb, …) and fields by their path",
                            part->index + 1);
    /* A part is a file when its name is a model file's (even without a
     * filename: curl -F 'saved_model.pb=<file' sends none), or when it has
     * a filename and is not JSON (curl -F 'data=@fields.json' sends one). */
    file_kind_t kind;
    bool model_file = filetype_kind_for_name(part->name, &kind);
    bool json_part =
        strcmp(part->name, "data") == 0 || (part->content_type && is_json_type(part->content_type));
    if (model_file || (part->filename && !json_part)) {
        if (!model_file)
            return nn_error_set(
                err, 400, "unexpected_file",
                "unexpected file \"%s\": send saved_model.pb (or saved_model.pbtxt), "
                "variables.index with every variables.data-SSSSS-of-NNNNN shard, and "
                "the mean files (.npy, .binaryproto) that preprocessing names",
                validate_clip(arena, part->name, VALIDATE_ECHO_MAX));
        if (find_file(c, part->name))
            return nn_error_set(err, 400, "duplicate_file",
                                "file \"%s\" is sent twice; send each file once",
                                validate_clip(arena, part->name, VALIDATE_ECHO_MAX));
        if (c->nfiles == CREATE_MAX_FILES)
            return nn_error_set(err, 400, "too_many_files", "too many files (at most %d)",
                                CREATE_MAX_FILES);
        upload_file_t *f = &c->files[c->nfiles];
        f->name = arena_strdup(arena, part->name);
        f->kind = kind;
        f->detected = NULL;
        if (!f->name)
            return nn_error_oom(err);
        f->blob = blob_upload_begin(arena, c->req->ctx->config->data_dir, err);
        if (!f->blob)
            return false;
        c->nfiles++;
        c->file = f;
        c->part = PART_FILE;
        return true;
    }
    c->part = PART_FIELD;
    c->field_name = arena_strdup(arena, part->name);
    if (!c->field_name)
        return nn_error_oom(err);
    c->field_is_json = json_part;
    buf_init(&c->field_value, arena);
    return true;
}

static bool on_part_data(void *ctx, const char *data, size_t len, nn_error_t *err)
{
    create_ctx_t *c = ctx;
    if (c->part == PART_FILE) {
        c->file_bytes += len;
        return blob_upload_write(c->file->blob, data, len, err);
    }
    c->fields_bytes += len;
    if (c->field_value.len + len > CREATE_MAX_FIELD_BYTES)
        return nn_error_set(err, 400, "field_too_large", "field \"%s\" is larger than %d bytes",
                            validate_clip(c->req->arena, c->field_name, VALIDATE_ECHO_MAX),
                            CREATE_MAX_FIELD_BYTES);
    if (c->fields_bytes > CREATE_MAX_FIELDS_BYTES)
        return nn_error_set(err, 400, "fields_too_large",
                            "the non-file fields add up to more than %d bytes",
                            CREATE_MAX_FIELDS_BYTES);
    return buf_append(&c->field_value, data, len) || nn_error_oom(err);
}

static bool on_part_end(void *ctx, nn_error_t *err)
{
    create_ctx_t *c = ctx;
    arena_t *arena = c->req->arena;
    part_kind_t kind = c->part;
    c->part = PART_NONE;
    if (kind != PART_FIELD)
        return true;
    const char *text = buf_cstr(&c->field_value);
    if (!text)
        return nn_error_oom(err);
    if (c->field_is_json) {
        char *what = arena_printf(arena, "part \"%s\"",
                                  validate_clip(arena, c->field_name, VALIDATE_ECHO_MAX));
        /* Errors inside the JSON are named by their path in the network
         * ("preprocessing.inputs[0].image.resize_type"): the part's path,
         * then the path inside it; `data` is merged at the root. */
        const char *base = NULL;
        if (strcmp(c->field_name, "data") != 0) {
            formkey_segment_t *segs;
            size_t nsegs;
            nn_error_t ignored; /* a bad part name is reported when it is inserted */
            nn_error_init(&ignored);
            if (formkey_parse(arena, c->field_name, strlen(c->field_name), &segs, &nsegs,
                              &ignored))
                base = formkey_path_string(arena, segs, nsegs);
        }
        jv_t *value =
            jv_parse_at(arena, text, c->field_value.len, what ? what : "part", base, err);
        if (!value)
            return false;
        if (strcmp(c->field_name, "data") == 0) {
            if (value->type != JV_OBJECT)
                return nn_error_set(err, 400, "invalid_body",
                                    "part \"data\" must hold a JSON object of network fields");
            /* Merged like flattened fields, in either order: a field
             * given both here and in another part is a conflict, not a
             * silent overwrite. */
            for (size_t i = 0; i < value->u.object.n; i++) {
                const char *key = value->u.object.keys[i];
                if (!jv_get(c->fields, key)) {
                    if (!jv_set(arena, c->fields, key, value->u.object.values[i]))
                        return nn_error_oom(err);
                } else if (!formkey_insert(arena, c->fields, key, strlen(key),
                                           value->u.object.values[i], err)) {
                    return false;
                }
            }
            return true;
        }
        return formkey_insert(arena, c->fields, c->field_name, strlen(c->field_name), value, err);
    }
    if (!validate_utf8_text(text, c->field_value.len)) {
        /* PostgreSQL stores neither NUL nor invalid UTF-8: refuse it here,
         * naming the field, rather than fail at the INSERT. */
        formkey_segment_t *segs;
        size_t nsegs;
        if (!formkey_parse(arena, c->field_name, strlen(c->field_name), &segs, &nsegs, err))
            return false;
        char *path = formkey_path_string(arena, segs, nsegs);
        return nn_error_field(err,
                              validate_clip(arena, path ? path : c->field_name, VALIDATE_ECHO_MAX),
                              "must be UTF-8 text without NUL characters");
    }
    jv_t *value = jv_string(arena, text, c->field_value.len);
    if (!value)
        return nn_error_oom(err);
    value->from_form = true;
    return formkey_insert(arena, c->fields, c->field_name, strlen(c->field_name), value, err);
}

static bool parse_body(create_ctx_t *c)
{
    nn_request_t *req = c->req;
    char *boundary;
    if (!mp_boundary_from_content_type(req->arena, req->content_type, &boundary, &req->err))
        return false;
    static const mp_callbacks_t callbacks = {on_part_begin, on_part_data, on_part_end};
    mp_parser_t *parser = mp_parser_create(req->arena, boundary, NULL, &callbacks, c);
    char *chunk = arena_alloc(req->arena, CREATE_READ_CHUNK);
    if (!parser || !chunk)
        return nn_error_oom(&req->err);
    mp_status_t st = MP_NEED_MORE;
    for (;;) {
        size_t got;
        if (!req_read_body(req, chunk, CREATE_READ_CHUNK, &got, &req->err))
            return false;
        if (got == 0)
            break;
        if (st == MP_DONE)
            continue; /* epilogue: read and ignore */
        st = mp_parser_feed(parser, chunk, got, &req->err);
        if (st == MP_ERROR)
            return false;
    }
    return st == MP_DONE || mp_parser_finish(parser, &req->err) == MP_DONE;
}

/* Which files a network needs: a graph, and variables complete or absent. */
static bool check_file_set(create_ctx_t *c)
{
    nn_error_t *err = &c->req->err;
    bool has_pb = find_file(c, "saved_model.pb"), has_pbtxt = find_file(c, "saved_model.pbtxt");
    if (!has_pb && !has_pbtxt)
        return nn_error_set(err, 400, "missing_graph",
                            "no graph file: send the SavedModel as a file part named "
                            "saved_model.pb (binary) or saved_model.pbtxt (text)");
    bool has_index = find_file(c, "variables.index");
    long total = -1;
    size_t nshards = 0;
    for (size_t i = 0; i < c->nfiles; i++) {
        if (c->files[i].kind != FILE_KIND_VARIABLES_DATA)
            continue;
        long s, n;
        if (sscanf(c->files[i].name, "variables.data-%5ld-of-%5ld", &s, &n) != 2)
            continue;
        if (total >= 0 && n != total)
            return nn_error_set(err, 400, "inconsistent_shards",
                                "variables shards disagree on their count (\"%s\" says %05ld, "
                                "another says %05ld); send the shards of one checkpoint",
                                c->files[i].name, n, total);
        total = n;
        nshards++;
    }
    if (has_index && nshards == 0)
        return nn_error_set(err, 400, "missing_variables_data",
                            "variables.index is sent without its data: send every "
                            "variables.data-SSSSS-of-NNNNN shard too");
    if (!has_index && nshards > 0)
        return nn_error_set(err, 400, "missing_variables_index",
                            "variables data shards are sent without variables.index: send it too");
    if (nshards > 0 && (long)nshards != total) {
        for (long s = 0; s < total; s++) {
            char name[64];
            snprintf(name, sizeof(name), "variables.data-%05ld-of-%05ld", s, total);
            if (!find_file(c, name))
                return nn_error_set(
                    err, 400, "missing_variables_shard",
                    "variables shard \"%s\" is missing: all %ld shards must be sent", name, total);
        }
    }
    return true;
}

/* "a:0", "b:0", … for a field message: whole names only, at most
 * TENSOR_LIST_MAX bytes, so the message fits its record uncut. */
static const char *tensor_list(arena_t *arena, const char *const *names, size_t n)
{
    nn_buf_t b;
    buf_init(&b, arena);
    for (size_t i = 0; i < n; i++) {
        const char *name = validate_clip(arena, names[i], VALIDATE_ECHO_MAX);
        if (b.len + strlen(name) + 4 > TENSOR_LIST_MAX) {
            buf_append_str(&b, ", \u2026");
            break;
        }
        buf_appendf(&b, "%s\"%s\"", i ? ", " : "", name);
    }
    const char *s = buf_cstr(&b);
    return s && *s ? s : "(none)";
}

/* Every tensor the network names must be in the graph; the message lists
 * what the graph offers for that role. */
static void check_tensors(create_ctx_t *c, const graph_summary_t *graph,
                          const validated_create_t *net)
{
    arena_t *arena = c->req->arena;
    nn_error_t *err = &c->req->err;
    for (size_t i = 0; i < net->ninputs; i++) {
        if (graph_find_tensor(graph, net->inputs[i].name))
            continue;
        const char *cands[CANDIDATES_MAX];
        size_t n = graph_input_candidates(graph, cands, CANDIDATES_MAX);
        nn_error_field(err, net->inputs[i].field,
                       "input tensor \"%s\" is not in the graph; inputs the graph has: %s",
                       validate_clip(arena, net->inputs[i].name, VALIDATE_ECHO_MAX),
                       tensor_list(arena, cands, n));
    }
    for (size_t i = 0; i < net->noutputs; i++) {
        if (graph_find_tensor(graph, net->outputs[i].name))
            continue;
        const char *cands[CANDIDATES_MAX];
        size_t n = graph_closest_names(arena, graph, net->outputs[i].name, cands, 5);
        nn_error_field(err, net->outputs[i].field,
                       "output tensor \"%s\" is not in the graph; closest names: %s",
                       validate_clip(arena, net->outputs[i].name, VALIDATE_ECHO_MAX),
                       tensor_list(arena, cands, n));
    }
}

static void summary_print(void *ctx, const char *str, size_t len)
{
    (void)buf_append(ctx, str, len);
}

static void gen_free(void *g)
{
    yajl_gen_free(g);
}

static const char *graph_json(nn_request_t *req, const graph_summary_t *graph)
{
    nn_buf_t *b = arena_alloc(req->arena, sizeof(*b));
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!b || !g || !arena_cleanup_add(req->arena, gen_free, g)) {
        if (g)
            yajl_gen_free(g);
        return NULL;
    }
    buf_init(b, req->arena);
    yajl_gen_config(g, yajl_gen_print_callback, summary_print, b);
    if (!graph_summary_gen(g, graph))
        return NULL;
    return buf_cstr(b);
}

/* The graph's nodes as network_nodes wants them (sql/003_inference.sql):
 * four parallel array literals, name, op, blocked op, blocked node. */
typedef struct node_rows {
    const char *names, *ops, *blocked_ops, *blocked_nodes;
} node_rows_t;

static bool node_rows_build(nn_request_t *req, const graph_summary_t *graph,
                            const validated_create_t *net, node_rows_t *rows)
{
    arena_t *arena = req->arena;
    const char **fed = arena_calloc(arena, net->ninputs + 1, sizeof(*fed));
    if (!fed)
        return nn_error_oom(&req->err);
    for (size_t i = 0; i < net->ninputs; i++)
        fed[i] = net->inputs[i].name;
    const graph_node_t **blocked;
    if (!blocked_compute(arena, graph, infer_op_supported, fed, net->ninputs, &blocked, &req->err))
        return false;
    size_t n = graph->nnodes;
    const char **names = arena_calloc(arena, n + 1, sizeof(*names));
    const char **ops = arena_calloc(arena, n + 1, sizeof(*ops));
    const char **bops = arena_calloc(arena, n + 1, sizeof(*bops));
    const char **bnodes = arena_calloc(arena, n + 1, sizeof(*bnodes));
    if (!names || !ops || !bops || !bnodes)
        return nn_error_oom(&req->err);
    for (size_t i = 0; i < n; i++) {
        names[i] = graph->nodes[i].name;
        ops[i] = graph->nodes[i].op;
        bops[i] = blocked[i] ? blocked[i]->op : NULL;
        bnodes[i] = blocked[i] ? blocked[i]->name : NULL;
    }
    rows->names = db_text_array(arena, names, n);
    rows->ops = db_text_array(arena, ops, n);
    rows->blocked_ops = db_text_array(arena, bops, n);
    rows->blocked_nodes = db_text_array(arena, bnodes, n);
    if (!rows->names || !rows->ops || !rows->blocked_ops || !rows->blocked_nodes)
        return nn_error_oom(&req->err);
    return true;
}

/* Location and ETag of a created network. */
static bool set_created_headers(nn_request_t *req, long long id, const char *version)
{
    char *location =
        arena_printf(req->arena, "%s://%s/v0.7/networks/%lld/", req->scheme, req->host, id);
    char *etag = arena_printf(req->arena, "\"%lld-%s\"", id, version);
    return location && etag && req_add_header(req, "Location", location) &&
           req_add_header(req, "ETag", etag);
}

static bool replay_idempotent(nn_request_t *req, const char *org, const char *key, bool *replayed)
{
    *replayed = false;
    const char *params[] = {org, key};
    PGresult *res =
        db_exec(req->ctx->db, req->arena, "idempotency_get", 2, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return true;
    req->status = (int)db_value_ll(res, 0, 0);
    const char *body = db_value(res, 0, 1);
    req_add_header(req, "Idempotent-Replayed", "true");
    *replayed = true;
    /* The first response's headers too: its Location, and its ETag (a new
     * network is at version 1, and the body replayed is that version). */
    nn_error_t ignored;
    nn_error_init(&ignored);
    jv_t *first = jv_parse(req->arena, body, strlen(body), "stored response", &ignored);
    const jv_t *id = first ? jv_get(first, "id") : NULL;
    if (req->status == 201 && id && id->type == JV_NUMBER && id->u.number.value >= 1) {
        long long nid = (long long)id->u.number.value;
        if (!set_created_headers(req, nid, "1"))
            return nn_error_oom(&req->err);
    }
    return buf_append_str(&req->body, body) || nn_error_oom(&req->err);
}

/* Stores blobs and rows in one transaction; fills the response. */
static bool store_network(create_ctx_t *c, const validated_create_t *net, const char *graph,
                          const node_rows_t *nodes, const char *idem_key)
{
    nn_request_t *req = c->req;
    db_t *db = req->ctx->db;
    char org[24];
    snprintf(org, sizeof(org), "%lld", req->org_id);

    /* Files reach their content address (fsynced) before the rows that
     * reference them commit. */
    for (size_t i = 0; i < c->nfiles; i++) {
        bool created;
        if (!blob_upload_commit(c->files[i].blob, &created, &req->err))
            return false;
    }
    if (!db_begin(db, &req->err))
        return false;
    for (size_t i = 0; i < c->nfiles; i++) {
        char size[24];
        snprintf(size, sizeof(size), "%llu",
                 (unsigned long long)blob_upload_size(c->files[i].blob));
        const char *params[] = {blob_upload_sha256(c->files[i].blob), size};
        if (!db_exec(db, req->arena, "blob_insert", 2, params, NULL, &req->err))
            goto fail;
    }
    const char *nparams[] = {org,
                             net->name,
                             net->description,
                             net->metadata_json,
                             net->framework,
                             net->preprocessing_json,
                             net->postprocessings_json,
                             graph};
    PGresult *res = db_exec(db, req->arena, "network_insert", 8, nparams, NULL, &req->err);
    if (!res)
        goto fail;
    const char *network_id = db_value(res, 0, 0);
    for (size_t i = 0; i < c->nfiles; i++) {
        char size[24], pos[16];
        snprintf(size, sizeof(size), "%llu",
                 (unsigned long long)blob_upload_size(c->files[i].blob));
        snprintf(pos, sizeof(pos), "%zu", i);
        const char *params[] = {
            network_id, c->files[i].name,     blob_upload_sha256(c->files[i].blob),
            size,       c->files[i].detected, pos};
        if (!db_exec(db, req->arena, "network_file_insert", 6, params, NULL, &req->err))
            goto fail;
    }
    const char *nodeparams[] = {network_id, nodes->names, nodes->ops, nodes->blocked_ops,
                                nodes->blocked_nodes};
    if (!db_exec(db, req->arena, "network_nodes_insert", 5, nodeparams, NULL, &req->err))
        goto fail;
    const char *jparams[] = {network_id};
    res = db_exec(db, req->arena, "network_json", 1, jparams, NULL, &req->err);
    if (!res)
        goto fail;
    long long id = strtoll(network_id, NULL, 10);
    if (idem_key) {
        const char *eparams[] = {org, idem_key};
        if (!db_exec(db, req->arena, "idempotency_expire", 2, eparams, NULL, &req->err))
            goto fail;
        const char *iparams[] = {org, idem_key, "201", db_value(res, 0, 0), network_id};
        PGresult *ins = db_exec(db, req->arena, "idempotency_insert", 5, iparams, NULL, &req->err);
        if (!ins)
            goto fail;
        if (PQntuples(ins) == 0) {
            /* The same key finished first in another request: answer as it did. */
            db_rollback(db);
            bool replayed;
            if (!replay_idempotent(req, org, idem_key, &replayed))
                return false;
            /* Gone again already (it expired in between): never answer
             * with an empty 0 status; the client may simply retry. */
            return replayed ||
                   nn_error_set(&req->err, 409, "conflict",
                                "another create with this Idempotency-Key finished at the same "
                                "time; retry the request to get its response");
        }
    }
    if (!db_commit(db, &req->err))
        return false;
    char *location =
        arena_printf(req->arena, "%s://%s/v0.7/networks/%lld/", req->scheme, req->host, id);
    if (location)
        req_add_header(req, "Location", location);
    log_info("network %lld created by org %lld with %zu files (%llu bytes)", id, req->org_id,
             c->nfiles, (unsigned long long)c->file_bytes);
    return api_send_network(req, 201, res, id);
fail:
    db_rollback(db);
    return false;
}

bool api_networks_create(nn_request_t *req)
{
    const worker_ctx_t *ctx = req->ctx;
    char org[24];
    snprintf(org, sizeof(org), "%lld", req->org_id);

    const char *idem_key = req_header(req, "Idempotency-Key");
    if (idem_key) {
        size_t len = strlen(idem_key);
        bool printable = true;
        for (size_t i = 0; i < len && printable; i++)
            printable = (unsigned char)idem_key[i] >= 0x20 && (unsigned char)idem_key[i] < 0x7F;
        if (len == 0 || len > IDEMPOTENCY_KEY_MAX || !printable)
            return nn_error_set(&req->err, 400, "invalid_idempotency_key",
                                "Idempotency-Key must be 1 to %d printable ASCII characters "
                                "(a UUID is a good key)",
                                IDEMPOTENCY_KEY_MAX);
        bool replayed;
        if (!replay_idempotent(req, org, idem_key, &replayed))
            return false;
        if (replayed)
            return true;
    }

    const char *ct = req->content_type ? req->content_type : "";
    if (strncasecmp(ct, "application/json", 16) == 0)
        return nn_error_set(&req->err, 400, "files_required",
                            "a network cannot be created from JSON alone: send "
                            "multipart/form-data with the fields and the graph file parts "
                            "(saved_model.pb, variables.index, …)");
    if (req->content_length > ctx->config->max_upload_bytes)
        return nn_error_set(&req->err, 413, "body_too_large",
                            "the upload is %lld bytes, more than the limit of %lld bytes",
                            (long long)req->content_length, ctx->config->max_upload_bytes);

    create_ctx_t *c = arena_calloc(req->arena, 1, sizeof(*c));
    if (!c)
        return nn_error_oom(&req->err);
    c->req = req;
    c->fields = jv_object(req->arena);
    if (!c->fields)
        return nn_error_oom(&req->err);
    if (!parse_body(c))
        return false;

    if (!check_file_set(c))
        return false;
    for (size_t i = 0; i < c->nfiles; i++) {
        upload_file_t *f = &c->files[i];
        if (!blob_upload_finish(f->blob, &req->err))
            return false;
        if (!filetype_check(ctx->filetypes, req->arena, blob_upload_temp_path(f->blob), f->kind,
                            f->name, &f->detected, &req->err))
            return false;
    }

    const char **names = arena_calloc(req->arena, c->nfiles + 1, sizeof(*names));
    if (!names)
        return nn_error_oom(&req->err);
    for (size_t i = 0; i < c->nfiles; i++)
        names[i] = c->files[i].name;
    validated_create_t net;
    if (!validate_create(req->arena, c->fields, names, c->nfiles, &net, &req->err))
        return false;

    /* A mean file nobody names is a typo somewhere: say so now. */
    for (size_t i = 0; i < c->nfiles; i++) {
        upload_file_t *f = &c->files[i];
        if (f->kind != FILE_KIND_MEAN_NPY && f->kind != FILE_KIND_MEAN_BINARYPROTO)
            continue;
        bool named = false;
        for (size_t k = 0; k < net.ninputs && !named; k++)
            named = net.mean_files[k] && strcmp(net.mean_files[k], f->name) == 0;
        if (!named)
            return nn_error_set(&req->err, 400, "unexpected_file",
                                "unexpected file \"%s\": no preprocessing input names it as its "
                                "mean_file",
                                validate_clip(req->arena, f->name, VALIDATE_ECHO_MAX));
    }

    upload_file_t *graph_file = find_file(c, "saved_model.pb");
    graph_format_t format = GRAPH_FORMAT_BINARY;
    if (!graph_file) {
        graph_file = find_file(c, "saved_model.pbtxt");
        format = GRAPH_FORMAT_TEXT;
    }
    graph_summary_t graph;
    if (!graph_load(req->arena, blob_upload_temp_path(graph_file->blob), format, graph_file->name,
                    &graph, &req->err))
        return false;
    check_tensors(c, &graph, &net);
    if (nn_error_is_set(&req->err))
        return false;
    const char *summary = graph_json(req, &graph);
    if (!summary)
        return nn_error_oom(&req->err);
    node_rows_t nodes = {0};
    if (!node_rows_build(req, &graph, &net, &nodes))
        return false;
    return store_network(c, &net, summary, &nodes, idem_key);
}
