/* orgs.c - organizations and API keys, the nnreg-admin commands `org create`,
 * `org list`, `key create`, `key revoke` and `key list` (see orgs.h). */
#include "admin/orgs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/apikey.h"

/* Finds the organization ORG names: a number is its id, anything else its
 * name (names are never all digits, see org create).  *id and *name point
 * into an arena-owned result. */
static bool resolve_org(admin_t *adm, const char *org, const char **id, const char **name)
{
    const char *values[] = {org};
    PGresult *res;
    /* 18 digits always fit a bigint; a longer number is no id of ours and
     * is looked up (in vain) as a name instead of failing the cast. */
    if (admin_all_digits(org) && strlen(org) <= 18)
        res = admin_query(adm, "looking up the organization",
                          "SELECT id, name FROM organizations WHERE id = $1::bigint", 1, values,
                          PGRES_TUPLES_OK, NULL);
    else
        res = admin_query(adm, "looking up the organization",
                          "SELECT id, name FROM organizations WHERE name = $1", 1, values,
                          PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return admin_fail(adm,
                          "no organization \"%s\"; list them with `" ADMIN_PROGRAM
                          " org list` or create it "
                          "with `" ADMIN_PROGRAM " org create NAME`",
                          org);
    *id = PQgetvalue(res, 0, 0);
    *name = PQgetvalue(res, 0, 1);
    return true;
}

/* Names a person can type and scripts can pass around: the database checks
 * the length (1 to 255 characters); here the rest. */
static bool check_org_name(admin_t *adm, const char *name)
{
    if (!*name)
        return admin_fail(adm, "the organization name is empty; give one, e.g. `" ADMIN_PROGRAM
                               " org create acme`");
    if (admin_all_digits(name))
        return admin_fail(
            adm,
            "organization name \"%s\" is all digits, which `key create` would read as an "
            "id; add a letter",
            name);
    size_t len = strlen(name);
    if (name[0] == ' ' || name[len - 1] == ' ')
        return admin_fail(adm, "organization name \"%s\" starts or ends with a space; remove it",
                          name);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return admin_fail(adm, "organization name contains a control character; use printable "
                                   "text");
    return true;
}

bool orgs_create(admin_t *adm, char **args, int nargs)
{
    const char *name = args[0];
    if (!check_org_name(adm, name))
        return false;
    const char *values[] = {name};
    const char *state;
    PGresult *res = admin_query(adm, "creating the organization",
                                "INSERT INTO organizations (name) VALUES ($1) RETURNING id, name",
                                1, values, PGRES_TUPLES_OK, &state);
    if (!res) {
        if (strcmp(state, ADMIN_SQLSTATE_UNIQUE_VIOLATION) == 0)
            return admin_fail(
                adm, "organization \"%s\" already exists; see `" ADMIN_PROGRAM " org list`", name);
        if (strcmp(state, ADMIN_SQLSTATE_CHECK_VIOLATION) == 0)
            return admin_fail(
                adm, "organization name \"%.32s...\" is too long; at most 255 characters", name);
        return false;
    }
    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              admin_gen_num(gen, "id", PQgetvalue(res, 0, 0)) &&
              admin_gen_str(gen, "name", PQgetvalue(res, 0, 1)) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}

bool orgs_list(admin_t *adm, char **args, int nargs)
{
    PGresult *res = admin_query(adm, "listing organizations",
                                "SELECT o.id, o.name, nnreg_iso(o.create_date),"
                                " count(k.id) FILTER (WHERE k.revoked_at IS NULL)"
                                " FROM organizations o LEFT JOIN api_keys k ON k.org_id = o.id"
                                " GROUP BY o.id ORDER BY o.id",
                                0, NULL, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    for (int row = 0; row < PQntuples(res); row++) {
        bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                  admin_gen_num(gen, "id", PQgetvalue(res, row, 0)) &&
                  admin_gen_str(gen, "name", PQgetvalue(res, row, 1)) &&
                  admin_gen_str(gen, "create_date", PQgetvalue(res, row, 2)) &&
                  admin_gen_num(gen, "active_keys", PQgetvalue(res, row, 3)) &&
                  yajl_gen_map_close(gen) == yajl_gen_status_ok;
        if (!admin_emit(adm, gen, ok))
            return false;
    }
    return true;
}

bool orgs_key_create(admin_t *adm, char **args, int nargs)
{
    const char *org_id, *org_name;
    if (!resolve_org(adm, args[0], &org_id, &org_name))
        return false;

    char key[APIKEY_HEX_LEN + 1], app_id[APPID_HEX_LEN + 1], hash[APIKEY_HEX_LEN + 1];
    if (!apikey_generate(key) || !apikey_generate_app_id(app_id))
        return admin_fail(adm, "cannot read random bytes from the kernel (getrandom): %s",
                          strerror(errno));
    apikey_hash(key, APIKEY_HEX_LEN, hash);
    if (strlen(hash) != APIKEY_HEX_LEN) {
        explicit_bzero(key, sizeof(key));
        return admin_fail(adm, "cannot compute SHA-256 with OpenSSL; check the libcrypto install");
    }

    /* The row is committed only after the key has reached stdout: a key is
     * never stored without having been shown, the one time it is shown. */
    const char *values[] = {org_id, app_id, hash};
    bool ok =
        admin_exec(adm, "BEGIN") &&
        admin_query(adm, "storing the key",
                    "INSERT INTO api_keys (org_id, app_id, key_hash) VALUES ($1::bigint, $2, $3)",
                    3, values, PGRES_COMMAND_OK, NULL) != NULL;
    if (ok) {
        yajl_gen gen = admin_gen_new(adm);
        bool generated =
            gen && yajl_gen_map_open(gen) == yajl_gen_status_ok &&
            admin_gen_str(gen, "org", org_name) && admin_gen_str(gen, "app_id", app_id) &&
            admin_gen_str(gen, "api_key", key) && yajl_gen_map_close(gen) == yajl_gen_status_ok;
        ok = gen && admin_emit(adm, gen, generated);
        if (!ok) {
            char why[sizeof(adm->err)];
            snprintf(why, sizeof(why), "%s", adm->err);
            admin_fail(adm, "%s; no key was created", why);
        }
    }
    explicit_bzero(key, sizeof(key));
    if (!ok) {
        admin_rollback_quietly(adm);
        return false;
    }
    if (!admin_exec(adm, "COMMIT")) {
        char why[sizeof(adm->err)];
        snprintf(why, sizeof(why), "%s", adm->err);
        /* When the connection broke during COMMIT the row may exist or
         * not: revoking it is right either way. */
        return admin_fail(
            adm,
            "committing the key printed above failed (%s); it may not work: run `" ADMIN_PROGRAM
            " key revoke %s` and create another",
            why, app_id);
    }
    return true;
}

bool orgs_key_revoke(admin_t *adm, char **args, int nargs)
{
    const char *values[] = {args[0]};
    /* COALESCE keeps the first revocation's time: revoking again changes
     * nothing and succeeds, so scripts may retry. */
    PGresult *res = admin_query(adm, "revoking the key",
                                "UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, "
                                "clock_timestamp()) FROM organizations o"
                                " WHERE o.id = k.org_id AND k.app_id = $1"
                                " RETURNING k.app_id, o.name, nnreg_iso(k.revoked_at)",
                                1, values, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return admin_fail(
            adm, "no API key with app id \"%s\"; list them with `" ADMIN_PROGRAM " key list`",
            args[0]);
    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
              admin_gen_str(gen, "app_id", PQgetvalue(res, 0, 0)) &&
              admin_gen_str(gen, "org", PQgetvalue(res, 0, 1)) &&
              admin_gen_str(gen, "revoked_at", PQgetvalue(res, 0, 2)) &&
              yajl_gen_map_close(gen) == yajl_gen_status_ok;
    return admin_emit(adm, gen, ok);
}

bool orgs_key_list(admin_t *adm, char **args, int nargs)
{
    const char *org_id = NULL, *org_name;
    if (nargs == 1 && !resolve_org(adm, args[0], &org_id, &org_name))
        return false;
    const char *values[] = {org_id};
    PGresult *res = admin_query(adm, "listing keys",
                                "SELECT k.app_id, o.name, nnreg_iso(k.create_date),"
                                " nnreg_iso(k.revoked_at)"
                                " FROM api_keys k JOIN organizations o ON o.id = k.org_id"
                                " WHERE $1::bigint IS NULL OR k.org_id = $1::bigint ORDER BY k.id",
                                1, values, PGRES_TUPLES_OK, NULL);
    if (!res)
        return false;
    yajl_gen gen = admin_gen_new(adm);
    if (!gen)
        return false;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *revoked = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
        bool ok = yajl_gen_map_open(gen) == yajl_gen_status_ok &&
                  admin_gen_str(gen, "app_id", PQgetvalue(res, row, 0)) &&
                  admin_gen_str(gen, "org", PQgetvalue(res, row, 1)) &&
                  admin_gen_str(gen, "create_date", PQgetvalue(res, row, 2)) &&
                  admin_gen_str(gen, "revoked_at", revoked) &&
                  yajl_gen_map_close(gen) == yajl_gen_status_ok;
        if (!admin_emit(adm, gen, ok))
            return false;
    }
    return true;
}
