#include "deploy/check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy/layout.h"
#include "infer/engine.h"
#include "model/bundle.h"
#include "model/graph.h"
#include "model/npy.h"
#include "store/blob.h"
#include "util/buf.h"
#include "util/log.h"

/* One run: where it allocates and what it has learned so far. */
typedef struct run {
    arena_t *arena;
    const nn_config_t *config;
    const deploy_job_t *job;
    nn_error_t *err;
    jv_t *report;
    jv_t *checks;
    const char **blob_paths; /* per file */
    graph_summary_t graph;
    deploy_progress_fn progress; /* extends the lease; false: claim lost */
    void *progress_ctx;
    bool oom;
} run_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void put(run_t *r, jv_t *obj, const char *key, jv_t *value)
{
    if (!value || !jv_set(r->arena, obj, key, value))
        r->oom = true;
}

static void record_check(run_t *r, const char *name, bool ok, double started, const char *detail)
{
    jv_t *c = jv_object(r->arena);
    if (!c) {
        r->oom = true;
        return;
    }
    put(r, c, "name", jv_cstring(r->arena, name));
    put(r, c, "status", jv_cstring(r->arena, ok ? "ok" : "error"));
    put(r, c, "duration_ms", jv_number(r->arena, (double)(long long)((now_ms() - started) * 1000) / 1000.0));
    if (detail)
        put(r, c, "detail", jv_cstring(r->arena, detail));
    if (!jv_append(r->arena, r->checks, c))
        r->oom = true;
}

static const deploy_file_t *find_file(const deploy_job_t *job, const char *name, size_t *index)
{
    for (size_t i = 0; i < job->nfiles; i++)
        if (strcmp(job->files[i].name, name) == 0) {
            if (index)
                *index = i;
            return &job->files[i];
        }
    return NULL;
}

/* 1. Every blob is there, has its size and its SHA-256. */
static bool check_blobs(run_t *r)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < r->job->nfiles; i++) {
        const deploy_file_t *f = &r->job->files[i];
        /* Hashing big files takes a while: extend the lease between them. */
        if (i > 0 && r->progress && !r->progress(r->progress_ctx))
            return nn_error_set(r->err, 409, "lease_lost", "another deployer took over this task");
        const char *path = blob_path(r->arena, r->config->data_dir, f->sha256);
        if (!path)
            return nn_error_oom(r->err);
        r->blob_paths[i] = path;
        char hex[BLOB_HEX_LEN + 1], why[256];
        uint64_t size;
        if (!blob_file_sha256(path, hex, &size, why, sizeof(why)))
            return nn_error_set(r->err, 500, "blob_missing",
                                "the stored copy of \"%s\" cannot be read (%s); the blob store lost "
                                "it: upload the network again",
                                f->name, why);
        if (size != f->size || strcmp(hex, f->sha256) != 0)
            return nn_error_set(r->err, 500, "blob_damaged",
                                "the stored copy of \"%s\" is damaged (its SHA-256 is %s, expected "
                                "%s); upload the network again",
                                f->name, hex, f->sha256);
        bytes += size;
    }
    return true;
}

static void summary_print(void *ctx, const char *str, size_t len)
{
    (void)buf_append(ctx, str, len);
}

/* 2. The graph parses; its summary goes into the report. */
static bool check_graph(run_t *r, const char **detail)
{
    size_t index;
    graph_format_t format = GRAPH_FORMAT_BINARY;
    const deploy_file_t *f = find_file(r->job, "saved_model.pb", &index);
    if (!f) {
        f = find_file(r->job, "saved_model.pbtxt", &index);
        format = GRAPH_FORMAT_TEXT;
    }
    if (!f)
        return nn_error_set(r->err, 400, "missing_graph", "the network has no graph file");
    if (!graph_load(r->arena, r->blob_paths[index], format, f->name, &r->graph, r->err))
        return false;
    nn_buf_t b;
    buf_init(&b, r->arena);
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return nn_error_oom(r->err);
    yajl_gen_config(g, yajl_gen_print_callback, summary_print, &b);
    bool ok = graph_summary_gen(g, &r->graph);
    yajl_gen_free(g);
    const char *text = buf_cstr(&b);
    if (!ok || !text)
        return nn_error_oom(r->err);
    jv_t *summary = jv_parse(r->arena, text, b.len, "graph summary", r->err);
    if (!summary)
        return false;
    static const char *const keep[] = {"inputs", "node_count", "function_count", "ops",
                                       "tensorflow_version", "tensorflow_git_version", "tags",
                                       "signatures"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        jv_t *v = jv_get(summary, keep[i]);
        if (v)
            put(r, r->report, keep[i], v);
    }
    jv_t *ops = jv_get(summary, "ops");
    put(r, r->report, "op_count", jv_number_int(r->arena, ops ? (long long)ops->u.object.n : 0));
    *detail = arena_printf(r->arena, "%s, %zu nodes", f->name, r->graph.nnodes);
    return true;
}

/* 2b. The ops nnreg's engine does not run (infer_op_supported), with how
 * many nodes use each.  Not a failure: TensorFlow Serving runs the network
 * anyway, and the engine only needs the nodes a request's outputs depend
 * on (a TF1 graph's saver ops, for one, are never run); an inference whose
 * outputs need such an op is refused with a 400 naming it.  The check is
 * marked "warning" and the ops are listed in the report's
 * "unsupported_ops". */
static void check_engine_ops(run_t *r, double started)
{
    size_t total = r->graph.nnodes + r->graph.nfunction_nodes;
    const char **ops = arena_calloc(r->arena, total + 1, sizeof(*ops));
    size_t *counts = arena_calloc(r->arena, total + 1, sizeof(*counts));
    jv_t *list = jv_array(r->arena);
    if (!ops || !counts || !list) {
        r->oom = true;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < total; i++) {
        const char *op = i < r->graph.nnodes ? r->graph.nodes[i].op
                                             : r->graph.function_ops[i - r->graph.nnodes];
        if (!op || infer_op_supported(op))
            continue;
        size_t k = 0;
        while (k < n && strcmp(ops[k], op) != 0)
            k++;
        if (k == n)
            ops[n++] = op;
        counts[k]++;
    }
    nn_buf_t b;
    buf_init(&b, r->arena);
    for (size_t k = 0; k < n; k++) {
        jv_t *e = jv_object(r->arena);
        if (!e) {
            r->oom = true;
            return;
        }
        put(r, e, "op", jv_cstring(r->arena, ops[k]));
        put(r, e, "nodes", jv_number_int(r->arena, (long long)counts[k]));
        if (!jv_append(r->arena, list, e))
            r->oom = true;
        buf_appendf(&b, "%s%s (%zu node%s)", k ? ", " : "", ops[k], counts[k],
                    counts[k] == 1 ? "" : "s");
    }
    put(r, r->report, "unsupported_ops", list);
    const char *detail =
        n == 0 ? "the inference engine runs every op of the graph"
               : arena_printf(r->arena,
                              "the inference engine does not run %s; inference on outputs that "
                              "need them is refused",
                              buf_cstr(&b));
    record_check(r, "engine_ops", true, started, detail ? detail : "");
    if (n > 0) {
        /* The entry just recorded: a warning, not an error. */
        jv_t *last = r->checks->u.array.items[r->checks->u.array.n - 1];
        put(r, last, "status", jv_cstring(r->arena, "warning"));
    }
}

static const char *names_list(run_t *r, const char *const *names, size_t n)
{
    nn_buf_t b;
    buf_init(&b, r->arena);
    for (size_t i = 0; i < n; i++)
        buf_appendf(&b, "%s\"%s\"", i ? ", " : "", names[i]);
    const char *s = buf_cstr(&b);
    return s && *s ? s : "(none)";
}

/* 3. Every tensor the network names is in the graph (again: the blob was
 * re-read, and the graph may have been stored by an older release). */
static bool check_tensors(run_t *r, const jv_t *pre, const jv_t *posts)
{
    jv_t *checked = jv_array(r->arena);
    if (!checked)
        return nn_error_oom(r->err);
    const jv_t *inputs = pre ? jv_get(pre, "inputs") : NULL;
    for (size_t i = 0; inputs && inputs->type == JV_ARRAY && i < inputs->u.array.n; i++) {
        const jv_t *t = jv_get(inputs->u.array.items[i], "tensor_name");
        if (!t || t->type != JV_STRING)
            continue;
        if (!graph_find_tensor(&r->graph, t->u.string.ptr)) {
            const char *cands[10];
            size_t n = graph_input_candidates(&r->graph, cands, 10);
            return nn_error_set(r->err, 400, "tensor_not_found",
                                "input tensor \"%s\" is not in the graph; inputs the graph has: %s",
                                t->u.string.ptr, names_list(r, cands, n));
        }
    }
    /* Outputs: tensors_output lists and standard_output's two tensors. */
    for (size_t i = 0; posts && posts->type == JV_ARRAY && i < posts->u.array.n; i++) {
        const jv_t *p = posts->u.array.items[i];
        const jv_t *to = jv_get(p, "tensors_output");
        const jv_t *list = to ? jv_get(to, "tensors") : NULL;
        const jv_t *so = jv_get(p, "standard_output");
        const jv_t *names[2] = {so ? jv_get(so, "boxes_tensor") : NULL,
                                so ? jv_get(so, "scores_tensor") : NULL};
        size_t n = list && list->type == JV_ARRAY ? list->u.array.n : 0;
        for (size_t k = 0; k < n + 2; k++) {
            const jv_t *t = k < n ? list->u.array.items[k] : names[k - n];
            if (!t || t->type != JV_STRING)
                continue;
            if (!graph_find_tensor(&r->graph, t->u.string.ptr)) {
                const char *cands[5];
                size_t nc = graph_closest_names(r->arena, &r->graph, t->u.string.ptr, cands, 5);
                return nn_error_set(r->err, 400, "tensor_not_found",
                                    "output tensor \"%s\" is not in the graph; closest names: %s",
                                    t->u.string.ptr, names_list(r, cands, nc));
            }
            jv_t *s = jv_cstring(r->arena, t->u.string.ptr);
            if (!s || !jv_append(r->arena, checked, s))
                return nn_error_oom(r->err);
        }
    }
    put(r, r->report, "outputs_checked", checked);
    return true;
}

/* 4. The variables index is a sound table and every entry's bytes are in
 * their shard with the right CRC32C. */
static bool check_variables(run_t *r, const char **detail)
{
    size_t index_pos;
    if (!find_file(r->job, "variables.index", &index_pos)) {
        *detail = "no variables (the graph embeds its weights)";
        put(r, r->report, "variables", jv_array(r->arena));
        return true;
    }
    bundle_index_t bundle;
    if (!bundle_read_index(r->arena, r->blob_paths[index_pos], "variables.index", &bundle, r->err))
        return false;
    const char **paths = arena_calloc(r->arena, bundle.num_shards, sizeof(*paths));
    const char **names = arena_calloc(r->arena, bundle.num_shards, sizeof(*names));
    if (!paths || !names)
        return nn_error_oom(r->err);
    for (uint32_t s = 0; s < bundle.num_shards; s++) {
        char *name = arena_printf(r->arena, "variables.data-%05u-of-%05u", s, bundle.num_shards);
        size_t pos;
        if (!name)
            return nn_error_oom(r->err);
        if (!find_file(r->job, name, &pos))
            return nn_error_set(r->err, 400, "missing_variables_shard",
                                "variables.index says the checkpoint has %u shards but \"%s\" was "
                                "not uploaded; upload every shard of this checkpoint",
                                bundle.num_shards, name);
        paths[s] = r->blob_paths[pos];
        names[s] = name;
    }
    bundle_check_stats_t stats;
    if (!bundle_check_shards(&bundle, paths, names, bundle.num_shards, &stats, r->err))
        return false;
    jv_t *vars = jv_array(r->arena);
    if (!vars)
        return nn_error_oom(r->err);
    for (size_t i = 0; i < bundle.nentries; i++) {
        const bundle_entry_t *e = &bundle.entries[i];
        if (e->slice_part)
            continue;
        jv_t *v = jv_object(r->arena), *shape = jv_array(r->arena);
        if (!v || !shape || !jv_append(r->arena, vars, v))
            return nn_error_oom(r->err);
        put(r, v, "name", jv_string(r->arena, e->name, strlen(e->name)));
        put(r, v, "dtype", jv_cstring(r->arena, graph_dtype_name(e->dtype)));
        for (size_t d = 0; d < e->ndims; d++) {
            jv_t *dim = jv_number_int(r->arena, (long long)e->dims[d]);
            if (!dim || !jv_append(r->arena, shape, dim))
                return nn_error_oom(r->err);
        }
        put(r, v, "shape", shape);
        put(r, v, "bytes", jv_number_int(r->arena, (long long)e->size));
        put(r, v, "shard", jv_number_int(r->arena, (long long)e->shard_id));
    }
    put(r, r->report, "variables", vars);
    *detail = arena_printf(r->arena, "%zu entries, %llu bytes checked in %u shard(s)",
                           stats.entries_checked, (unsigned long long)stats.bytes_checked,
                           bundle.num_shards);
    return true;
}

/* 5. Each mean file is readable and its shape fits the input it serves. */
static bool check_means(run_t *r, const jv_t *pre, const char **detail)
{
    const jv_t *inputs = pre ? jv_get(pre, "inputs") : NULL;
    size_t checked = 0;
    for (size_t i = 0; inputs && inputs->type == JV_ARRAY && i < inputs->u.array.n; i++) {
        const jv_t *image = jv_get(inputs->u.array.items[i], "image");
        const jv_t *mean = image ? jv_get(image, "mean_file") : NULL;
        if (!mean || mean->type != JV_STRING || !*mean->u.string.ptr)
            continue;
        size_t pos;
        if (!find_file(r->job, mean->u.string.ptr, &pos))
            return nn_error_set(r->err, 400, "missing_mean_file",
                                "mean file \"%s\" is not among the network's files",
                                mean->u.string.ptr);
        npy_info_t info;
        if (!npy_check_file(r->blob_paths[pos], mean->u.string.ptr, &info, r->err))
            return false;
        const jv_t *color = jv_get(image, "color_channels");
        const jv_t *size = jv_get(image, "target_size");
        unsigned channels = color && color->type == JV_STRING && strcmp(color->u.string.ptr, "L") == 0 ? 1 : 3;
        unsigned w = 0, h = 0;
        if (size && size->type == JV_STRING) {
            /* NETWORK ("N"): the image keeps its aspect ratio, so only a
             * per-channel mean can fit; w = h = 0 says so. */
            if (sscanf(size->u.string.ptr, "%ux%u", &w, &h) != 2)
                w = h = 0;
        }
        char why[256];
        if (npy_mean_fits(info.shape, info.ndims, channels, w, h, why, sizeof(why)) ==
            NPY_MEAN_NO_FIT) {
            return nn_error_set(r->err, 400, "mean_file_mismatch",
                                "mean file \"%s\" %s (preprocessing input %zu)",
                                mean->u.string.ptr, why, i);
        }
        checked++;
    }
    *detail = checked ? arena_printf(r->arena, "%zu mean file(s)", checked) : "no mean files";
    return true;
}

/* 6. The network is laid out for TensorFlow Serving. */
static bool materialize(run_t *r, const char **detail)
{
    layout_file_t *files = arena_calloc(r->arena, r->job->nfiles, sizeof(*files));
    if (!files)
        return nn_error_oom(r->err);
    size_t n = 0;
    bool has_pb = find_file(r->job, "saved_model.pb", NULL) != NULL;
    for (size_t i = 0; i < r->job->nfiles; i++) {
        /* saved_model.pb is the one deployed when both graph forms came. */
        if (has_pb && strcmp(r->job->files[i].name, "saved_model.pbtxt") == 0)
            continue;
        files[n].name = r->job->files[i].name;
        files[n].blob_path = r->blob_paths[i];
        n++;
    }
    if (!layout_install(r->arena, r->config->deploy_dir, r->job->network_id, files, n, r->err) ||
        !layout_write_config(r->arena, r->config->deploy_dir, r->err))
        return false;
    /* The absolute path, as models.config has it (the setting may be
     * relative to the deployer's working directory). */
    char abs_dir[PATH_MAX];
    const char *dir = realpath(r->config->deploy_dir, abs_dir) ? abs_dir : r->config->deploy_dir;
    char *path = arena_printf(r->arena, "%s/%lld", dir, r->job->network_id);
    put(r, r->report, "deploy_path", jv_cstring(r->arena, path ? path : ""));
    *detail = path;
    return true;
}

bool deploy_run(arena_t *arena, const nn_config_t *config, const deploy_job_t *job,
                deploy_progress_fn progress, void *progress_ctx, jv_t **report, nn_error_t *err)
{
    run_t r = {.arena = arena, .config = config, .job = job, .err = err, .progress = progress,
               .progress_ctx = progress_ctx};
    double started = now_ms();
    r.report = jv_object(arena);
    r.checks = jv_array(arena);
    r.blob_paths = arena_calloc(arena, job->nfiles + 1, sizeof(*r.blob_paths));
    *report = r.report;
    if (!r.report || !r.checks || !r.blob_paths)
        return nn_error_oom(err);
    put(&r, r.report, "network_id", jv_number_int(arena, job->network_id));
    put(&r, r.report, "checks", r.checks);

    nn_error_t ignored;
    nn_error_init(&ignored);
    const jv_t *pre = jv_parse(arena, job->preprocessing_json, strlen(job->preprocessing_json),
                               "preprocessing", &ignored);
    const jv_t *posts = jv_parse(arena, job->postprocessings_json,
                                 strlen(job->postprocessings_json), "postprocessings", &ignored);

    typedef enum { C_BLOBS, C_GRAPH, C_TENSORS, C_VARIABLES, C_MEANS, C_MATERIALIZE, C_END } step_t;
    static const char *const step_names[] = {"blobs", "graph", "tensors", "variables",
                                             "mean_files", "materialize"};
    bool ok = true;
    for (step_t step = C_BLOBS; ok && step < C_END; step++) {
        if (progress && !progress(progress_ctx))
            return nn_error_set(err, 409, "lease_lost",
                                "another deployer took over this task");
        double t0 = now_ms();
        const char *detail = NULL;
        switch (step) {
        case C_BLOBS:
            ok = check_blobs(&r);
            if (ok)
                detail = arena_printf(arena, "%zu file(s), SHA-256 verified", job->nfiles);
            break;
        case C_GRAPH: ok = check_graph(&r, &detail); break;
        case C_TENSORS: ok = check_tensors(&r, pre, posts); break;
        case C_VARIABLES: ok = check_variables(&r, &detail); break;
        case C_MEANS: ok = check_means(&r, pre, &detail); break;
        case C_MATERIALIZE: ok = materialize(&r, &detail); break;
        case C_END: break;
        }
        record_check(&r, step_names[step], ok, t0, ok ? detail : err->message);
        if (ok && step == C_GRAPH)
            check_engine_ops(&r, now_ms());
    }
    put(&r, r.report, "duration_ms", jv_number(arena, (double)(long long)((now_ms() - started) * 1000) / 1000.0));
    if (r.oom && ok)
        return nn_error_oom(err);
    return ok;
}
