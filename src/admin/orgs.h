/* orgs.h - organizations and their API keys (nnreg-admin commands).
 *
 * Each function is a command handler of the table in main_admin.c: it takes
 * the command's arguments (their count already checked), prints its result
 * as JSON lines on stdout and returns false with adm->err set on failure.
 * An organization argument ORG is its id (all digits) or its name. */
#ifndef NNREG_ADMIN_ORGS_H
#define NNREG_ADMIN_ORGS_H

#include <stdbool.h>

#include "admin/admin.h"

/* org create NAME: prints {"id", "name"}. */
bool orgs_create(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* org list: one {"id", "name", "create_date", "active_keys"} per line. */
bool orgs_list(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* key create ORG: prints {"org", "app_id", "api_key"}; the key is shown
 * this once and only its hash is stored (committed after printing). */
bool orgs_key_create(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* key revoke APP_ID: prints {"app_id", "org", "revoked_at"}; revoking again
 * keeps the first date and succeeds. */
bool orgs_key_revoke(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* key list [ORG]: one {"app_id", "org", "create_date", "revoked_at"} per
 * line, never keys. */
bool orgs_key_list(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

#endif
