/* taskq.h - the tasks table as a work queue, shared by nnreg-deployer and
 * nnreg-inferd: leased claims with FOR UPDATE SKIP LOCKED, lease
 * extension, the guarded final write, and the LISTEN connection that wakes
 * a worker.
 *
 * A claim takes the oldest pending task of one kind whose lease is free or
 * expired and stamps it with the worker's owner name and a new attempt
 * number; every later write is guarded by (owner, attempts), so a worker
 * that lost its claim (it stalled past the lease and another took over)
 * can never overwrite the result.
 *
 * The statements live in the worker's own db_t: add TASKQ_STATEMENTS to its
 * statement table. */
#ifndef NNREG_DB_TASKQ_H
#define NNREG_DB_TASKQ_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "util/arena.h"
#include "util/error.h"

/* $1 owner, $2 lease seconds, $3 kind, $4 synchronous_commit for this
 * transaction ("on" or "off") -> id, network_id, attempts.  The claim and
 * the result are written with synchronous_commit off for work that may
 * simply run again (see taskq_claim). */
#define TASKQ_STATEMENTS                                                                          \
    {"taskq_claim",                                                                               \
     "UPDATE tasks SET owner = $1, attempts = attempts + 1, "                                     \
     "lease_until = clock_timestamp() + make_interval(secs => $2::integer) "                      \
     "FROM (SELECT set_config('synchronous_commit', $4, true)) sc "                               \
     "WHERE id = (SELECT id FROM tasks WHERE status = 'pending' AND kind = $3 "                   \
     "AND (lease_until IS NULL OR lease_until < clock_timestamp()) "                              \
     "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) "                                               \
     "RETURNING id, network_id, attempts",                                                        \
     4, DB_RUN_ONCE},                                                                             \
        {"taskq_extend",                                                                          \
         "UPDATE tasks SET lease_until = clock_timestamp() + make_interval(secs => $4::integer) " \
         "WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'pending' RETURNING id",    \
         4, DB_RETRY_SAFE},                                                                       \
        {"taskq_finish",                                                                          \
         "UPDATE tasks SET status = $4, error = $5, data = $6::jsonb, lease_until = NULL, "       \
         "update_date = clock_timestamp() "                                                       \
         "FROM (SELECT set_config('synchronous_commit', $7, true)) sc "                           \
         "WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'pending' RETURNING id",    \
         7, DB_RUN_ONCE},                                                                         \
        {"taskq_finish_result",                                                                   \
         "UPDATE tasks SET status = $4, error = $5, result = $6::json, lease_until = NULL, "      \
         "update_date = clock_timestamp() "                                                       \
         "FROM (SELECT set_config('synchronous_commit', $7, true)) sc "                           \
         "WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'pending' RETURNING id",    \
         7, DB_RUN_ONCE},                                                                         \
        /* Whether a final write whose answer was lost committed. */                              \
        {"taskq_state", "SELECT status FROM tasks WHERE id = $1 AND owner = $2 AND attempts = $3", \
         3, DB_RETRY_SAFE}

/* A task in hand.  Strings are the text forms the statements take. */
typedef struct taskq_claim {
    db_t *db;
    const char *owner;
    long long lease_seconds;
    char task_id[24];
    char attempts[16];
    char lease[16];
    long long attempt;       /* attempts as a number */
    bool durable;            /* synchronous commits (see taskq_claim) */
    bool json_result;        /* taskq_finish writes tasks.result (json), not data */
    bool has_network;
    long long network_id;
    double extended_at;      /* monotonic seconds of the claim or last extension */
} taskq_claim_t;

/* "host:pid:start" naming this worker in tasks.owner. */
void taskq_owner_name(char *buf, size_t size);

/* Monotonic clock in seconds. */
double taskq_now(void);

/* Claims the oldest claimable task of kind.  true with *out filled when a
 * task was claimed; false when there is none (err untouched) or the
 * database failed (err set: 503 when it is away).
 *
 * durable false: the claim and the result commit without waiting for the
 * WAL flush (synchronous_commit off for those two transactions only), which
 * saves two disk flushes per task.  Only for work that may run twice: a
 * database crash can then forget the claim (the task is claimed again) or
 * the result of the last few hundred milliseconds (the task is pending
 * again, with an expired lease, and runs again).  Deployments are durable;
 * inferences, whose result is a pure function of their inputs, are not. */
bool taskq_claim(db_t *db, arena_t *arena, const char *kind, const char *owner,
                 long long lease_seconds, bool durable, taskq_claim_t *out, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Extends the lease once a third of it has gone by (cheaper than a commit
 * per step).  false only when the claim is known lost; a database hiccup
 * keeps working (the final write is guarded anyway). */
bool taskq_extend(taskq_claim_t *claim, arena_t *arena);

/* Writes the outcome ("success" or "error", the error message or NULL, the
 * data as JSON text or NULL: into tasks.data (jsonb), or tasks.result
 * (json, stored as given) when claim->json_result) while still holding the
 * claim; logs the outcome.  When the connection drops during the write, the
 * write may have committed with only its answer lost: the task's state is
 * read back, and the write made again only while the task is still pending
 * under this claim.  false when it could not be written or the claim was
 * lost (the result is then dropped, and logged). */
bool taskq_finish(taskq_claim_t *claim, arena_t *arena, const char *status, const char *error,
                  const char *data_json);

/* The LISTEN connection: never in a transaction, reconnected when lost. */
typedef struct taskq_listener taskq_listener_t;

/* channels: NULL-terminated list of channel names (static storage). */
taskq_listener_t *taskq_listener_create(const char *conninfo, const char *const *channels);
void taskq_listener_destroy(taskq_listener_t *l);

/* Connects (and LISTENs) if not connected.  Returns true when a new
 * connection was made: notifications sent while nobody listened are lost,
 * so the caller should look at the table again. */
bool taskq_listener_connect(taskq_listener_t *l);

typedef void (*taskq_notify_fn)(void *ctx, const char *channel, const char *payload);

/* Waits up to timeout_ms for a notification (returns at once on a signal),
 * then hands every queued notification to fn.  Without a connection it
 * sleeps a second (reconnects are retried by the caller's loop, not in a
 * spin). */
void taskq_listener_wait(taskq_listener_t *l, int timeout_ms, taskq_notify_fn fn, void *ctx);

#endif
