/* publish.h - public networks: `nnreg-admin publish NETWORK_ID SLUG` and
 * `nnreg-admin unpublish NETWORK_ID`.
 *
 * A published network is readable by every organization, listed by
 * GET /v0.7/networks/public/ and retrievable by GET
 * /v0.7/networks/public/{slug}/; it stays writable by its owner only.
 * Both commands bump the network's version (its ETag) and update_date when
 * they change something, and print {"id", "is_public", "slug", "version",
 * "update_date", "changed"}; doing it again changes nothing and succeeds
 * with "changed": false. */
#ifndef NNREG_ADMIN_PUBLISH_H
#define NNREG_ADMIN_PUBLISH_H

#include <stdbool.h>

#include "admin/admin.h"

#define PUBLISH_SLUG_MAX 100

/* Whether slug is 1..PUBLISH_SLUG_MAX of [a-z0-9-]. */
bool publish_slug_valid(const char *slug);

/* publish NETWORK_ID SLUG: fails when there is no such network or when
 * another network has the slug (the conflict names it). */
bool publish_set(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

/* unpublish NETWORK_ID: clears is_public and the slug. */
bool publish_clear(admin_t *adm, char **args, int nargs) __attribute__((warn_unused_result));

#endif
