/* publish.c - `nnreg-admin publish` and `unpublish` (see publish.h). */
#include "admin/publish.h"

#include <string.h>

/* The columns printed, from a row named n. */
#define NETWORK_STATE "n.id, n.is_public, n.slug, n.version, nnreg_iso(n.update_date)"

bool publish_slug_valid(const char *slug)
{
    size_t len = strlen(slug);
    return len >= 1 && len <= PUBLISH_SLUG_MAX &&
           strspn(slug, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

static bool check_id(admin_t *adm, const char *id)
{
    if (!admin_is_id(id))
        return admin_fail(adm, "network id \"%s\" is not a network id (a positive number)", id);
    return true;
}

/* Prints the state of row 0 of res (columns NETWORK_STATE). */
static bool print_state(admin_t *adm, PGresult *res, bool changed)
{
    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    const char *slug = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
    bool ok =
        yajl_gen_map_open(gen) == yajl_gen_status_ok &&
        admin_gen_num(gen, "id", PQgetvalue(res, 0, 0)) &&
        admin_gen_bool(gen, "is_public", strcmp(PQgetvalue(res, 0, 1), "t") == 0) &&
        admin_gen_str(gen, "slug", slug) && admin_gen_num(gen, "version", PQgetvalue(res, 0, 3)) &&
        admin_gen_str(gen, "update_date", PQgetvalue(res, 0, 4)) &&
        admin_gen_bool(gen, "changed", changed) && yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}

/* After an update that touched no row: the network as it is (nothing to
 * change), or the error when there is none. */
static bool print_unchanged(admin_t *adm, const char *id)
{
    const char *params[] = {id};
    PGresult *res = admin_query(adm, "looking up the network",
                                "SELECT " NETWORK_STATE " FROM networks n WHERE n.id = $1::bigint",
                                1, params, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return admin_fail(adm, "no network %s", id);
    return print_state(adm, res, false);
}

bool publish_set(admin_t *adm, char **args, int nargs)
{
    const char *id = args[0], *slug = args[1];
    if (!check_id(adm, id))
        return false;
    if (!publish_slug_valid(slug))
        return admin_fail(adm,
                          "slug \"%.120s\" is not valid: use 1 to %d lowercase letters, digits "
                          "and '-', e.g. \"resnet-50\"",
                          slug, PUBLISH_SLUG_MAX);
    const char *params[] = {id, slug};
    const char *state;
    PGresult *res = admin_query(
        adm, "publishing the network",
        "UPDATE networks n SET is_public = true, slug = $2, version = n.version + 1,"
        " update_date = clock_timestamp()"
        " WHERE n.id = $1::bigint AND NOT (n.is_public AND n.slug IS NOT DISTINCT FROM $2)"
        " RETURNING " NETWORK_STATE,
        2, params, PGRES_TUPLES_OK, &state);
    if (!res && strcmp(state, ADMIN_SQLSTATE_UNIQUE_VIOLATION) == 0) {
        const char *slug_params[] = {slug};
        PGresult *other =
            admin_query(adm, "looking up the slug", "SELECT id FROM networks WHERE slug = $1", 1,
                        slug_params, PGRES_TUPLES_OK, NULL);
        const char *other_id = other && PQntuples(other) == 1 ? PQgetvalue(other, 0, 0) : "?";
        return admin_fail(adm,
                          "slug \"%s\" is taken by network %s (conflict); choose another, or "
                          "`" ADMIN_PROGRAM " unpublish %s` first",
                          slug, other_id, other_id);
    }
    if (!res)
        return false;
    if (PQntuples(res) == 0)
        return print_unchanged(adm, id);
    return print_state(adm, res, true);
}

bool publish_clear(admin_t *adm, char **args, int nargs)
{
    const char *id = args[0];
    if (!check_id(adm, id))
        return false;
    const char *params[] = {id};
    PGresult *res =
        admin_query(adm, "unpublishing the network",
                    "UPDATE networks n SET is_public = false, slug = NULL, version = n.version + 1,"
                    " update_date = clock_timestamp()"
                    " WHERE n.id = $1::bigint AND (n.is_public OR n.slug IS NOT NULL)"
                    " RETURNING " NETWORK_STATE,
                    1, params, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) == 0)
        return print_unchanged(adm, id);
    return print_state(adm, res, true);
}
