/* daemon.h - nnreg-inferd's loop: LISTEN on nnreg_inference (and
 * nnreg_undeploy, to unload deleted networks), claim pending inference
 * tasks with the shared task queue (db/taskq.h: FOR UPDATE SKIP LOCKED, an
 * owner and a lease), run them, write the tensors or the error.
 *
 * The hot path has no delay: a notification wakes the loop at once, every
 * pending task is drained before it sleeps again, and the poll interval
 * only matters when a notification was lost.  Recently used models stay
 * loaded (infer/cache.h, NNREG_INFER_CACHE_BYTES).
 * A task's data on success is infer/result.h's JSON. */
#ifndef NNREG_INFER_DAEMON_H
#define NNREG_INFER_DAEMON_H

#include "util/config.h"

/* Runs until SIGTERM/SIGINT (finishing the task in hand).  Returns the
 * process exit status. */
int inferd_run(const nn_config_t *config);

#endif
