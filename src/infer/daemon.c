#include "infer/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/taskq.h"
#include "image/fetch.h"
#include "image/image.h"
#include "infer/cache.h"
#include "infer/engine.h"
#include "infer/result.h"
#include "json/jv.h"
#include "util/hex.h"
#include "util/log.h"

#define CHANNEL_INFERENCE "nnreg_inference"
#define CHANNEL_UNDEPLOY "nnreg_undeploy"

static const db_statement_t inferd_statements[] = {
    TASKQ_STATEMENTS,
    /* The request and the network it runs on (preprocessing for the
     * inputs, the mean files' names). */
    {"request",
     "SELECT array_to_json(r.output_tensors)::text, n.preprocessing::text "
     "FROM inference_requests r JOIN networks n ON n.id = r.network_id WHERE r.task_id = $1",
     1, DB_RETRY_SAFE},
    {"inputs",
     "SELECT position, image, bbox::text FROM inference_inputs WHERE task_id = $1 "
     "ORDER BY position",
     1, DB_RETRY_SAFE},
};

static volatile sig_atomic_t inferd_stopping;

static void on_term(int sig)
{
    (void)sig;
    inferd_stopping = 1;
}

typedef struct inferd {
    const nn_config_t *config;
    db_t *db;
    taskq_listener_t *listen;
    infer_cache_t *models;
    char owner[160];
} inferd_t;

/* -------------------------------------------------------------- a task */

/* bytea in its text form ("\x" + hex) -> bytes in arena. */
static bool bytea_decode(arena_t *arena, const char *text, unsigned char **out, size_t *len)
{
    size_t n = strlen(text);
    if (n < 2 || text[0] != '\\' || text[1] != 'x' || n % 2 != 0)
        return false;
    size_t m = (n - 2) / 2;
    unsigned char *b = arena_alloc(arena, m + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < m; i++) {
        int hi = hex_digit_value(text[2 + 2 * i]), lo = hex_digit_value(text[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    *out = b;
    *len = m;
    return true;
}

/* The loaded model of a network: from the cache, or from its deployed
 * copy. */
static const infer_model_t *model_for(inferd_t *d, arena_t *arena, long long network_id,
                                      nn_error_t *err)
{
    infer_model_t *model = cache_get(d->models, network_id);
    if (model)
        return model;
    char *dir = arena_printf(arena, "%s/%lld/1", d->config->deploy_dir, network_id);
    if (!dir) {
        nn_error_oom(err);
        return NULL;
    }
    double t0 = taskq_now();
    if (!infer_model_load(dir, &model, err))
        return NULL;
    size_t bytes = infer_model_bytes(model);
    log_info("network %lld loaded in %.1f ms (%zu bytes)", network_id,
             (taskq_now() - t0) * 1000.0, bytes);
    if (!cache_put(d->models, network_id, model, bytes)) {
        nn_error_oom(err);
        return NULL;
    }
    return model;
}

/* Runs a claimed task; true with *data_json on success, false with err. */
static bool run_task(inferd_t *d, arena_t *arena, taskq_claim_t *c, const char **data_json,
                     nn_error_t *err)
{
    double t_start = taskq_now();
    const char *params[] = {c->task_id};
    PGresult *req = db_exec(d->db, arena, "request", 1, params, NULL, err);
    if (!req)
        return false;
    if (PQntuples(req) != 1)
        return nn_error_set(err, 404, "request_gone",
                            "the inference's inputs are gone (its network was deleted?); send the "
                            "inference again");
    PGresult *rows = db_exec(d->db, arena, "inputs", 1, params, NULL, err);
    if (!rows)
        return false;
    const char *outputs_text = db_value(req, 0, 0), *pre_text = db_value(req, 0, 1);
    const jv_t *outputs = jv_parse(arena, outputs_text, strlen(outputs_text), "outputs", err);
    const jv_t *pre = outputs ? jv_parse(arena, pre_text, strlen(pre_text), "preprocessing", err)
                              : NULL;
    if (!pre)
        return false;
    const jv_t *pre_inputs = jv_get(pre, "inputs");
    size_t ninputs = (size_t)PQntuples(rows);
    if (!pre_inputs || pre_inputs->type != JV_ARRAY || pre_inputs->u.array.n != ninputs)
        return nn_error_set(err, 400, "invalid_input",
                            "the request has %zu input(s) but the network has %zu",
                            ninputs, pre_inputs ? pre_inputs->u.array.n : 0);

    const infer_model_t *model = model_for(d, arena, c->network_id, err);
    if (!model)
        return false;

    nn_tensor_t *feeds = arena_calloc(arena, ninputs + 1, sizeof(*feeds));
    if (!feeds)
        return nn_error_oom(err);
    for (size_t i = 0; i < ninputs; i++) {
        const jv_t *spec_json = pre_inputs->u.array.items[i];
        const jv_t *image_json = jv_get(spec_json, "image");
        const jv_t *tensor_name = jv_get(spec_json, "tensor_name");
        const jv_t *mean = image_json ? jv_get(image_json, "mean_file") : NULL;
        const char *mean_path = NULL;
        if (mean && mean->type == JV_STRING && mean->u.string.len > 0)
            mean_path = arena_printf(arena, "%s/%lld/1/%s", d->config->deploy_dir, c->network_id,
                                     mean->u.string.ptr);
        image_spec_t spec;
        if (!image_json || !tensor_name || tensor_name->type != JV_STRING ||
            !image_spec_from_json(arena, image_json, mean_path, &spec, err)) {
            if (!nn_error_is_set(err))
                nn_error_set(err, 500, "invalid_preprocessing",
                             "preprocessing input %zu of the network is damaged", i);
            return false;
        }
        unsigned char *bytes;
        size_t len;
        if (!bytea_decode(arena, db_value(rows, (int)i, 1), &bytes, &len))
            return nn_error_set(err, 500, "invalid_input", "input %zu: stored image unreadable", i);
        image_rgb_t image;
        if (!image_decode(arena, bytes, len, &image, err)) {
            char *msg = arena_printf(arena, "inputs[%zu].image.source: %s", i, err->message);
            if (msg)
                snprintf(err->message, sizeof(err->message), "%s", msg);
            return false;
        }
        image_bbox_t bbox, *bboxp = NULL;
        const char *bbox_text = db_value(rows, (int)i, 2);
        if (bbox_text) {
            const jv_t *b = jv_parse(arena, bbox_text, strlen(bbox_text), "bbox", err);
            if (!b)
                return false;
            bbox.xmin = jv_get(b, "xmin")->u.number.value;
            bbox.ymin = jv_get(b, "ymin")->u.number.value;
            bbox.xmax = jv_get(b, "xmax")->u.number.value;
            bbox.ymax = jv_get(b, "ymax")->u.number.value;
            bboxp = &bbox;
        }
        if (!image_preprocess(arena, &image, bboxp, &spec, &feeds[i], err))
            return false;
        feeds[i].name = tensor_name->u.string.ptr;
    }

    size_t nfetch = outputs->u.array.n;
    const char **fetches = arena_calloc(arena, nfetch + 1, sizeof(*fetches));
    nn_tensor_t *out = arena_calloc(arena, nfetch + 1, sizeof(*out));
    if (!fetches || !out)
        return nn_error_oom(err);
    for (size_t i = 0; i < nfetch; i++)
        fetches[i] = outputs->u.array.items[i]->u.string.ptr;
    double t0 = taskq_now();
    if (!infer_run(model, arena, feeds, ninputs, fetches, nfetch, out, err))
        return false;
    double run_ms = (taskq_now() - t0) * 1000.0;
    unsigned long long values = 0;
    for (size_t i = 0; i < nfetch; i++)
        values += out[i].count;
    if (values > (unsigned long long)d->config->infer_max_output_values)
        return nn_error_set(err, 400, "output_too_large",
                            "the tensors asked for hold %llu values, more than the %lld one "
                            "inference may return (NNREG_INFER_MAX_OUTPUT_VALUES); ask for fewer "
                            "or smaller tensors",
                            values, d->config->infer_max_output_values);
    nn_buf_t b;
    buf_init(&b, arena);
    if (!infer_result_json(&b, out, nfetch) || !buf_cstr(&b))
        return nn_error_oom(err);
    *data_json = buf_cstr(&b);
    /* One line per task with where its time went: "engine" is infer_run
     * alone (what tests/bench/infer_latency.sh compares against). */
    log_info("task %s: network %lld: engine %.2f ms, before it %.2f ms (request, model, decode, "
             "preprocess), result %.2f ms, %llu values",
             c->task_id, c->network_id, run_ms, (t0 - t_start) * 1000.0,
             (taskq_now() - t0) * 1000.0 - run_ms, values);
    return true;
}

/* Claims and runs one task; false when there was none (or the database is
 * away). */
static bool infer_one(inferd_t *d)
{
    arena_t *arena = arena_create(0);
    if (!arena)
        return false;
    taskq_claim_t c;
    nn_error_t err;
    nn_error_init(&err);
    if (!taskq_claim(d->db, arena, "inference", d->owner, d->config->infer_lease_seconds,
                     false, &c, &err)) {
        if (nn_error_is_set(&err))
            log_warn("claim failed: %s", err.message);
        arena_destroy(arena);
        return false;
    }
    c.json_result = true;
    log_set_request_id(c.task_id);
    log_debug("task %s: claimed (network %lld, attempt %lld)", c.task_id, c.network_id,
              c.attempt);
    if (c.attempt > d->config->infer_max_attempts) {
        char *msg = arena_printf(arena,
                                 "the inference was started %lld times and never finished "
                                 "(nnreg-inferd stopped each time: look at its log, the network "
                                 "may need more memory than the process has)",
                                 c.attempt - 1);
        (void)taskq_finish(&c, arena, "error", msg ? msg : "the inference kept failing", NULL);
    } else if (!c.has_network) {
        (void)taskq_finish(&c, arena, "error",
                           "the network was deleted before the inference could run", NULL);
    } else {
        const char *data = NULL;
        if (run_task(d, arena, &c, &data, &err))
            (void)taskq_finish(&c, arena, "success", NULL, data);
        else if (err.status == 503)
            log_warn("task %s: database away; the lease will return it", c.task_id);
        else
            (void)taskq_finish(&c, arena, "error", err.message, NULL);
    }
    log_set_request_id(NULL);
    arena_destroy(arena);
    return true;
}

static void on_notify(void *ctx, const char *channel, const char *payload)
{
    inferd_t *d = ctx;
    if (strcmp(channel, CHANNEL_UNDEPLOY) == 0) {
        long long id = strtoll(payload, NULL, 10);
        if (id > 0 && cache_remove(d->models, id))
            log_info("network %lld deleted: unloaded", id);
    }
}

static void model_free(void *model)
{
    infer_model_free(model);
}

int inferd_run(const nn_config_t *config)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term; /* no SA_RESTART: poll returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    inferd_t d = {.config = config};
    taskq_owner_name(d.owner, sizeof(d.owner));
    static const char *const channels[] = {CHANNEL_INFERENCE, CHANNEL_UNDEPLOY, NULL};
    d.db = db_create(config->database_url, inferd_statements,
                     sizeof(inferd_statements) / sizeof(inferd_statements[0]));
    d.listen = taskq_listener_create(config->database_url, channels);
    d.models = cache_create((size_t)config->infer_cache_bytes, model_free);
    if (!d.db || !d.listen || !d.models) {
        log_error("out of memory");
        return 1;
    }
    const char *blas_threads = getenv("OPENBLAS_NUM_THREADS");
    log_info("nnreg-inferd %s started (poll every %llds, lease %llds, model cache %lld bytes, "
             "deploy dir %s, OpenBLAS %s kernels, %s thread(s))",
             d.owner, config->infer_poll_seconds, config->infer_lease_seconds,
             config->infer_cache_bytes, config->deploy_dir, infer_blas_core(),
             blas_threads ? blas_threads : "default");
    while (!inferd_stopping) {
        (void)taskq_listener_connect(d.listen);
        /* Drain the queue: every pending task, one at a time, then sleep
         * until a notification (or the poll interval: one may be lost). */
        while (!inferd_stopping && infer_one(&d))
            ;
        if (!inferd_stopping)
            taskq_listener_wait(d.listen, (int)config->infer_poll_seconds * 1000, on_notify, &d);
    }
    log_info("nnreg-inferd stopping");
    taskq_listener_destroy(d.listen);
    cache_destroy(d.models);
    db_destroy(d.db);
    return 0;
}
