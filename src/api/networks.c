/* networks.c - the Networks resource: list, retrieve, update, delete,
 * graph (the create is network_create.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/render.h"
#include "api/validate.h"
#include "http/query.h"
#include "json/jv.h"
#include "util/log.h"


/* ---------------------------------------------------------------- ETags */

static bool set_etag(nn_request_t *req, long long id, const char *version)
{
    char tag[64];
    snprintf(tag, sizeof(tag), "\"%lld-%s\"", id, version);
    return req_add_header(req, "ETag", tag);
}

/* Digits only (1 to 18 of them, so no overflow) at *p; advances *p. */
static bool parse_digits(const char **p, long long *out)
{
    const char *s = *p;
    long long v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 18)
        v = v * 10 + (s[n++] - '0');
    if (n == 0 || (s[n] >= '0' && s[n] <= '9'))
        return false;
    *p = s + n;
    *out = v;
    return true;
}

/* One of our entity tags, exactly as set_etag writes it: "ID-VERSION". */
static bool parse_etag(const char *s, long long *id, long long *version, size_t *used)
{
    const char *p = s;
    if (*p++ != '"' || !parse_digits(&p, id) || *p++ != '-' || !parse_digits(&p, version) ||
        *p++ != '"')
        return false;
    *used = (size_t)(p - s);
    return true;
}

/* The versions an If-Match header accepts, as a PostgreSQL integer array
 * literal for the statement: NULL when the header is absent or "*" (no
 * condition), "{}" (matches nothing) when no tag in it names this network.
 * Every tag of the list counts ("42-3", "42-4" accepts both versions).
 * If-Match compares strongly (RFC 9110 13.1.1): a weak tag W/"..." never
 * matches. */
static const char *if_match_versions(nn_request_t *req, long long id)
{
    const char *h = req_header(req, "If-Match");
    if (!h)
        return NULL;
    h += strspn(h, " \t");
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len == 1 && h[0] == '*')
        return NULL;
    nn_buf_t versions;
    buf_init(&versions, req->arena);
    buf_append_char(&versions, '{');
    size_t n = 0;
    const char *p = h;
    while (*p) {
        p += strspn(p, " \t,");
        if (!*p)
            break;
        bool weak = strncmp(p, "W/", 2) == 0;
        if (weak)
            p += 2;
        long long tag_id, version;
        size_t used;
        if (parse_etag(p, &tag_id, &version, &used)) {
            if (!weak && tag_id == id && version > 0 && version < 2147483647LL && n < 64)
                buf_appendf(&versions, "%s%lld", n++ ? "," : "", version);
            p += used;
        } else {
            p += strcspn(p, ",");
        }
    }
    buf_append_char(&versions, '}');
    const char *array = buf_cstr(&versions);
    return array ? array : "{}"; /* out of memory: match nothing, never everything */
}

/* ------------------------------------------------------------ retrieval */

bool api_send_network(nn_request_t *req, int status, PGresult *res, long long id)
{
    req->status = status;
    if (!set_etag(req, id, db_value(res, 0, 1)))
        return nn_error_oom(&req->err);
    return buf_append_str(&req->body, db_value(res, 0, 0)) || nn_error_oom(&req->err);
}

static bool network_not_found(nn_request_t *req, long long id)
{
    return nn_error_set(&req->err, 404, "not_found",
                        "network %lld does not exist (or is not visible to your organization)", id);
}

/* The hot read: authentication and the network in one statement. */
bool api_networks_get(nn_request_t *req)
{
    long long id;
    if (!api_route_id(req, 0, &id)) {
        /* Not an id: still 401 before 404, as for every other route. */
        nn_error_init(&req->err);
        return api_authenticate(req) && api_route_id(req, 0, &id);
    }
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *extra[] = {ids};
    PGresult *res = api_auth_exec(req, "network_get_auth", 1, extra);
    if (!res)
        return false;
    if (!db_value(res, 0, 3))
        return network_not_found(req, id);
    req->status = 200;
    if (!set_etag(req, id, db_value(res, 0, 4)))
        return nn_error_oom(&req->err);
    return buf_append_str(&req->body, db_value(res, 0, 3)) || nn_error_oom(&req->err);
}

bool api_networks_get_public(nn_request_t *req)
{
    const char *slug = req->route_params[0];
    const char *params[] = {slug};
    PGresult *res = db_exec(req->ctx->db, req->arena, "network_get_slug", 1, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return nn_error_set(&req->err, 404, "not_found", "no public network has the slug \"%s\"",
                            slug);
    return api_send_network(req, 200, res, db_value_ll(res, 0, 2));
}

bool api_networks_graph(nn_request_t *req)
{
    long long id;
    if (!api_route_id(req, 0, &id))
        return false;
    char ids[24], org[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(org, sizeof(org), "%lld", req->org_id);
    const char *params[] = {ids, org};
    PGresult *res = db_exec(req->ctx->db, req->arena, "network_graph", 2, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return network_not_found(req, id);
    return buf_append_str(&req->body, db_value(res, 0, 0)) || nn_error_oom(&req->err);
}

/* ----------------------------------------------------------------- lists */

/* Per ordering, the statement without filters and the one with (see
 * statements.c for why there are two). */
static const struct {
    const char *ordering;
    const char *statement;
    const char *filtered;
} list_orderings[] = {
    {"-id", "network_list_id_desc", "network_list_id_desc_filtered"},
    {"id", "network_list_id", "network_list_id_filtered"},
    {"name", "network_list_name", "network_list_name_filtered"},
    {"-name", "network_list_name_desc", "network_list_name_desc_filtered"},
    {"update_date", "network_list_update_date", "network_list_update_date_filtered"},
    {"-update_date", "network_list_update_date_desc", "network_list_update_date_desc_filtered"},
};

/* "%name%" for ILIKE, with the pattern characters of name escaped. */
static char *like_pattern(arena_t *arena, const char *name)
{
    nn_buf_t b;
    buf_init(&b, arena);
    buf_append_char(&b, '%');
    for (const char *p = name; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            buf_append_char(&b, '\\');
        buf_append_char(&b, *p);
    }
    buf_append_char(&b, '%');
    return (char *)buf_cstr(&b);
}

static bool networks_list(nn_request_t *req, bool public_only)
{
    api_page_t page;
    if (!api_page_parse(req, &page))
        return false;
    query_t q;
    if (!query_parse(req->arena, req->query, &q, &req->err))
        return false;

    size_t order = 0;
    const char *ordering = query_get(&q, "ordering");
    if (ordering) {
        size_t n = sizeof(list_orderings) / sizeof(list_orderings[0]);
        for (order = 0; order < n; order++)
            if (strcmp(ordering, list_orderings[order].ordering) == 0)
                break;
        if (order == n)
            return nn_error_field(&req->err, "ordering",
                                  "must be one of id, -id, name, -name, update_date, -update_date");
    }
    const char *name = query_get(&q, "name");
    const char *pattern = NULL;
    if (name && *name && !(pattern = like_pattern(req->arena, name)))
        return nn_error_oom(&req->err);
    const char *is_public = query_get(&q, "is_public");
    if (is_public) {
        if (strcmp(is_public, "true") == 0 || strcmp(is_public, "True") == 0 || strcmp(is_public, "1") == 0)
            is_public = "true";
        else if (strcmp(is_public, "false") == 0 || strcmp(is_public, "False") == 0 || strcmp(is_public, "0") == 0)
            is_public = "false";
        else
            return nn_error_field(&req->err, "is_public", "must be true or false");
    }
    if (public_only) {
        if (is_public && strcmp(is_public, "false") == 0)
            return nn_error_field(&req->err, "is_public", "must be true (or absent) on the public list");
        is_public = "true";
    }
    char org[24], limit[24], offset[24];
    snprintf(org, sizeof(org), "%lld", req->org_id);
    snprintf(limit, sizeof(limit), "%lld", page.limit);
    snprintf(offset, sizeof(offset), "%lld", page.offset);
    PGresult *res;
    if (!pattern && !is_public) {
        const char *params[] = {org, limit, offset};
        res = db_exec(req->ctx->db, req->arena, list_orderings[order].statement, 3, params, NULL,
                      &req->err);
    } else {
        const char *params[] = {org, pattern, is_public, limit, offset};
        res = db_exec(req->ctx->db, req->arena, list_orderings[order].filtered, 5, params, NULL,
                      &req->err);
    }
    if (!res)
        return false;
    return api_page_render(req, &page, db_value_ll(res, 0, 0), db_value(res, 0, 1));
}

bool api_networks_list(nn_request_t *req)
{
    return networks_list(req, false);
}

bool api_networks_public_list(nn_request_t *req)
{
    return networks_list(req, true);
}

/* ------------------------------------------------------ update / delete */

/* After an update or delete touched no row: 404 when the caller cannot see
 * the network, 403 when it is another organization's public network, 412
 * when the If-Match tag is stale. */
static bool explain_no_change(nn_request_t *req, long long id, const char *ids, const char *org)
{
    const char *params[] = {ids, org};
    PGresult *res = db_exec(req->ctx->db, req->arena, "network_access", 2, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return network_not_found(req, id);
    if (strcmp(db_value(res, 0, 0), "t") != 0)
        return nn_error_set(&req->err, 403, "forbidden",
                            "network %lld is a public network of another organization: you can "
                            "read it but not change it",
                            id);
    char tag[64];
    snprintf(tag, sizeof(tag), "\"%lld-%s\"", id, db_value(res, 0, 1));
    return nn_error_set(&req->err, 412, "precondition_failed",
                        "the network changed since you read it (If-Match does not match its "
                        "current ETag %s); read it again and retry",
                        tag);
}

/* Content-Type application/json, with or without parameters
 * ("; charset=utf-8"); not application/jsonx, application/json-seq... */
static bool is_json_media_type(const char *ct)
{
    static const char json[] = "application/json";
    if (!ct)
        return false;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, json, sizeof(json) - 1) != 0)
        return false;
    char next = ct[sizeof(json) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static bool read_json_body(nn_request_t *req, jv_t **body)
{
    if (!is_json_media_type(req->content_type))
        return nn_error_set(&req->err, 415, "unsupported_media_type",
                            "send the changes as JSON with Content-Type: application/json");
    char *data;
    size_t len;
    if (!req_read_small_body(req, 1024 * 1024, &data, &len))
        return false;
    *body = jv_parse(req->arena, data, len, "request body", &req->err);
    return *body != NULL;
}

static bool networks_update(nn_request_t *req, bool is_put)
{
    long long id;
    if (!api_route_id(req, 0, &id))
        return false;
    jv_t *body = NULL;
    if (!read_json_body(req, &body))
        return false;
    validated_update_t upd;
    if (!validate_update(req->arena, body, is_put, &upd, &req->err))
        return false;
    char ids[24], org[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(org, sizeof(org), "%lld", req->org_id);
    const char *params[] = {ids, org, upd.name, upd.description, upd.metadata_json,
                            if_match_versions(req, id)};
    PGresult *res = db_exec(req->ctx->db, req->arena, "network_update", 6, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return explain_no_change(req, id, ids, org);
    return api_send_network(req, 200, res, id);
}

bool api_networks_patch(nn_request_t *req)
{
    return networks_update(req, false);
}

bool api_networks_put(nn_request_t *req)
{
    return networks_update(req, true);
}

bool api_networks_delete(nn_request_t *req)
{
    long long id;
    if (!api_route_id(req, 0, &id))
        return false;
    char ids[24], org[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(org, sizeof(org), "%lld", req->org_id);
    const char *params[] = {ids, org, if_match_versions(req, id)};
    PGresult *res = db_exec(req->ctx->db, req->arena, "network_delete", 3, params, NULL, &req->err);
    if (!res)
        return false;
    if (PQntuples(res) != 1)
        return explain_no_change(req, id, ids, org);
    req->status = 204;
    return true;
}
