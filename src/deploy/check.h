/* check.h - what a deployment verifies before it lays a network out, and
 * the report it leaves in the task's data.
 *
 * Each check is timed and recorded in the report with its outcome; the
 * first failing check ends the run with an error message that says what is
 * wrong and how to fix it (it becomes the task's error).  Every blob is
 * re-read and its SHA-256 verified before anything trusts it. */
#ifndef NNREG_DEPLOY_CHECK_H
#define NNREG_DEPLOY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/jv.h"
#include "util/arena.h"
#include "util/config.h"
#include "util/error.h"

typedef struct deploy_file {
    const char *name;   /* saved_model.pb, variables.index, … */
    const char *sha256; /* its blob */
    uint64_t size;
} deploy_file_t;

typedef struct deploy_job {
    long long network_id;
    const char *preprocessing_json;
    const char *postprocessings_json;
    deploy_file_t *files;
    size_t nfiles;
} deploy_job_t;

/* Hook called between checks so a long deployment can extend its lease;
 * returning false stops the run (the claim was lost). */
typedef bool (*deploy_progress_fn)(void *ctx);

/* Runs every check and, when all pass, materializes the network in the
 * deploy directory.  *report always receives the report (also on failure,
 * with the failing check marked); returns false with err set on failure. */
bool deploy_run(arena_t *arena, const nn_config_t *config, const deploy_job_t *job,
                deploy_progress_fn progress, void *progress_ctx, jv_t **report,
                nn_error_t *err) __attribute__((warn_unused_result));

#endif
