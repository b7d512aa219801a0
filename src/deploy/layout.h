/* layout.h - the deploy directory, laid out the way TensorFlow Serving reads
 * models:
 *   <deploy_dir>/<network id>/1/saved_model.pb (or .pbtxt)
 *   <deploy_dir>/<network id>/1/variables/variables.index, .data-…
 *   <deploy_dir>/models.config   (one config entry per deployed network)
 *
 * A network is written into a temp directory beside its final place and
 * renamed into place, so TF Serving never sees half a model; models.config
 * is rewritten (temp file, fsync, rename) from the directories present,
 * under an flock so that deployers on several hosts sharing the directory
 * never interleave. */
#ifndef NNREG_DEPLOY_LAYOUT_H
#define NNREG_DEPLOY_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/error.h"

typedef struct layout_file {
    const char *name;      /* saved_model.pb, variables.index, mean.npy, … */
    const char *blob_path; /* where the verified content is */
} layout_file_t;

/* Lays the files out as <deploy_dir>/<id>/1/…, replacing a previous copy.
 * Files are hard-linked from the blob store when they share a filesystem
 * (blobs are read-only), copied and fsynced otherwise. */
bool layout_install(arena_t *arena, const char *deploy_dir, long long network_id,
                    const layout_file_t *files, size_t nfiles, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Removes <deploy_dir>/<id>; true if it was there. */
bool layout_remove(arena_t *arena, const char *deploy_dir, long long network_id);

/* Lists the deployed network ids (numeric directories), ascending. */
bool layout_list(arena_t *arena, const char *deploy_dir, long long **ids, size_t *nids)
    __attribute__((warn_unused_result));

/* Removes what an install or a removal interrupted by a crash left in
 * deploy_dir (.tmp-*, .old-*, .gone-* trees and .models.config.<pid> temp
 * files) when last modified more than max_age_seconds ago: younger ones
 * may belong to a deployer at work on another host.  Returns how many
 * entries were removed. */
size_t layout_sweep(const char *deploy_dir, long long max_age_seconds);

/* Rewrites <deploy_dir>/models.config from the deployed directories. */
bool layout_write_config(arena_t *arena, const char *deploy_dir, nn_error_t *err)
    __attribute__((warn_unused_result));

#endif
