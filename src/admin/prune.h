/* prune.h - `nnreg-admin prune [--dry-run]`: deletes the rows the service
 * keeps only for a while, which nothing else ever deletes.
 *
 *   - Finished inference tasks (success or error) last updated more than
 *     cfg.inference_keep_hours ago (NNREG_INFERENCE_KEEP_HOURS, default
 *     168), results included: a client reads a result within seconds of
 *     its task finishing, and results can be megabytes each.  A GET of a
 *     pruned task is then a 404.  Pending tasks are never touched, nor are
 *     deployment tasks (networks point at them, and there is one per
 *     create or replace, not one per request).
 *   - Idempotency-Key records older than their window (DB_IDEMPOTENCY_WINDOW):
 *     past it they answer nothing.
 *
 * Rows go in batches of PRUNE_BATCH, each batch one statement and so one
 * short transaction, oldest first, skipping rows another session holds
 * locked: prune may run beside the service and beside another prune, and a
 * large backlog never holds locks for long.  Prints {"inference_tasks_removed",
 * "idempotency_keys_removed", "inference_keep_hours", "dry_run"}; with
 * --dry-run nothing changes and the counts say what would go. */
#ifndef NNREG_ADMIN_PRUNE_H
#define NNREG_ADMIN_PRUNE_H

#include <stdbool.h>

#include "admin/admin.h"

#define PRUNE_BATCH 2000

/* Command handler of the table in main_admin.c (args: the options). */
bool prune_run(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

#endif
