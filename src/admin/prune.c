/* prune.c - `nnreg-admin prune` (see prune.h). */
#include "admin/prune.h"

#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The rows each kind of record prunes, $1 being the inference retention in
 * hours: the WHERE of a SELECT over the table aliased t. */
#define OLD_INFERENCE                                                                              \
    "tasks t WHERE t.kind = 'inference' AND t.status <> 'pending'"                                 \
    " AND t.update_date < clock_timestamp() - make_interval(hours => $1::integer)"
#define OLD_IDEMPOTENCY                                                                            \
    "idempotency_keys t WHERE t.create_date <= clock_timestamp() - " DB_IDEMPOTENCY_WINDOW

typedef struct prune_kind {
    const char *what;   /* names the action in errors */
    const char *count;  /* --dry-run: how many rows would go */
    const char *delete; /* one batch; its command tag counts the rows */
    int nparams;
} prune_kind_t;

/* Oldest first (the partial index tasks_finished_inference_idx serves the
 * order), rows locked elsewhere skipped: a task being read for a GET is not
 * locked, one an operator is updating is left for the next run. */
static const prune_kind_t inference_tasks = {
    "pruning finished inference tasks",
    "SELECT count(*) FROM " OLD_INFERENCE,
    "DELETE FROM tasks d USING (SELECT t.id FROM " OLD_INFERENCE " ORDER BY t.update_date"
    " LIMIT " STR(PRUNE_BATCH) " FOR UPDATE SKIP LOCKED) o WHERE d.id = o.id",
    1,
};

static const prune_kind_t idempotency_keys = {
    "pruning expired Idempotency-Key records",
    "SELECT count(*) FROM " OLD_IDEMPOTENCY,
    "DELETE FROM idempotency_keys d USING (SELECT t.org_id, t.key FROM " OLD_IDEMPOTENCY
    " ORDER BY t.create_date LIMIT " STR(PRUNE_BATCH) " FOR UPDATE SKIP LOCKED) o"
    " WHERE d.org_id = o.org_id AND d.key = o.key",
    0,
};

/* Deletes (or with dry_run counts) the rows of kind; *removed gets how many.
 * Each batch gets a page arena of its own, so memory stays flat whatever
 * the backlog. */
static bool prune_kind(admin_t *adm, const prune_kind_t *kind, const char *hours, bool dry_run,
                       long long *removed)
{
    const char *params[] = {hours};
    *removed = 0;
    if (dry_run) {
        PGresult *res =
            admin_query(adm, kind->what, kind->count, kind->nparams, params, PGRES_TUPLES_OK, NULL);
        if (!res)
            return false;
        *removed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        return true;
    }
    for (;;) {
        arena_t *page = arena_create(0);
        if (!page)
            return admin_fail(adm, "out of memory");
        PGresult *res = admin_query_on(adm, page, kind->what, kind->delete, kind->nparams, params,
                                       PGRES_COMMAND_OK, NULL);
        long long n = res ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
        arena_destroy(page);
        if (!res)
            return false;
        *removed += n;
        /* A short batch: the rest are younger, or locked by someone else. */
        if (n < PRUNE_BATCH)
            return true;
    }
}

bool prune_run(admin_t *adm, char **args, int nargs)
{
    bool dry_run;
    if (!admin_parse_flag(adm, args, nargs, "--dry-run", &dry_run))
        return false;
    char hours[24];
    snprintf(hours, sizeof(hours), "%lld", adm->cfg.inference_keep_hours);

    long long tasks_removed, keys_removed;
    if (!prune_kind(adm, &inference_tasks, hours, dry_run, &tasks_removed) ||
        !prune_kind(adm, &idempotency_keys, hours, dry_run, &keys_removed))
        return false;

    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              admin_gen_int(gen, "inference_tasks_removed", tasks_removed) &&
              admin_gen_int(gen, "idempotency_keys_removed", keys_removed) &&
              admin_gen_int(gen, "inference_keep_hours", adm->cfg.inference_keep_hours) &&
              admin_gen_bool(gen, "dry_run", dry_run) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}
