/* common.c - the route table, authentication, pages and route ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/render.h"
#include "http/query.h"
#include "util/apikey.h"

const route_t api_routes[] = {
    {"GET", "/health", api_health, 0},
    {"GET", "/networks/public", api_networks_public_list, ROUTE_AUTH},
    {"GET", "/networks/public/{}", api_networks_get_public, ROUTE_AUTH},
    {"GET", "/networks", api_networks_list, ROUTE_AUTH},
    {"POST", "/networks", api_networks_create, ROUTE_AUTH},
    {"GET", "/networks/{}", api_networks_get, ROUTE_AUTH_IN_HANDLER},
    {"PATCH", "/networks/{}", api_networks_patch, ROUTE_AUTH},
    {"PUT", "/networks/{}", api_networks_put, ROUTE_AUTH},
    {"DELETE", "/networks/{}", api_networks_delete, ROUTE_AUTH},
    {"GET", "/networks/{}/graph", api_networks_graph, ROUTE_AUTH},
    {"POST", "/networks/{}/inference", api_networks_inference, ROUTE_AUTH},
    {"GET", "/tasks", api_tasks_list, ROUTE_AUTH},
    {"GET", "/tasks/{}", api_tasks_get, ROUTE_AUTH_IN_HANDLER},
    /* No key: nginx serves it to loopback only (nginx/nnreg.conf.in). */
    {"GET", "/metrics", api_metrics, 0},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* A 401 names the way to authenticate (RFC 9110 15.5.2: a 401 carries a
 * WWW-Authenticate challenge). */
static bool unauthorized(nn_request_t *req, const char *code, const char *message)
{
    req_add_header(req, "WWW-Authenticate", "APIKey header=\"X-API-KEY\"");
    return nn_error_set(&req->err, 401, code, "%s", message);
}

/* A key that was sent and refused: a possible guess.  nginx limits these
 * per client address; it cannot tell them apart itself, so it is told:
 * X-Accel-Redirect sends the request to its counting location, which
 * answers with this same body (X-Nnreg-Error) until the address has had
 * too many (nginx/nnreg.conf.in).  message and code are constants here,
 * with nothing to escape in JSON. */
static bool key_refused(nn_request_t *req, const char *message)
{
    char *body = arena_printf(req->arena, "{\"error\": \"%s\", \"error_code\": \"invalid_api_key\"}",
                              message);
    if (body) {
        req_add_header(req, "X-Nnreg-Error", body);
        req_add_header(req, "X-Accel-Redirect", "@nnreg_auth_failed");
        req->no_content_type = true;
    }
    return unauthorized(req, "invalid_api_key", message);
}


/* The checks before the database: a key is there and not absurdly long;
 * its hash into hash. */
static bool auth_key_hash(nn_request_t *req, char hash[APIKEY_HEX_LEN + 1])
{
    const char *key = req_header(req, "X-API-KEY");
    if (!key || !*key)
        return unauthorized(req, "not_authenticated",
                            "no API key: send it in the X-API-KEY header");
    if (strlen(key) > 256)
        return key_refused(req, "the API key is not valid");
    apikey_hash(key, strlen(key), hash);
    return true;
}

/* The checks on the key's row (columns org_id, app_id, key_hash; no row
 * when the key is unknown or revoked). */
static bool auth_accept(nn_request_t *req, const PGresult *res, const char *hash)
{
    /* The row was found by its hash; comparing the hashes again in
     * constant time keeps the decision itself free of timing leaks. */
    if (PQntuples(res) != 1 || !apikey_equal(db_value(res, 0, 2), hash))
        return key_refused(req, "the API key is not valid (revoked, or never issued)");
    const char *app_id = db_value(res, 0, 1);
    const char *sent_app_id = req_header(req, "X-APP-ID");
    if (sent_app_id && *sent_app_id && !apikey_equal(sent_app_id, app_id))
        return unauthorized(req, "app_id_mismatch",
                            "X-APP-ID does not match the API key's application; send the app id "
                            "printed with the key, or leave the header out");
    req->org_id = db_value_ll(res, 0, 0);
    req->app_id = arena_strdup(req->arena, app_id);
    return req->app_id != NULL || nn_error_oom(&req->err);
}

bool api_authenticate(nn_request_t *req)
{
    char hash[APIKEY_HEX_LEN + 1];
    if (!auth_key_hash(req, hash))
        return false;
    const char *params[] = {hash};
    PGresult *res = db_exec(req->ctx->db, req->arena, "auth_key", 1, params, NULL, &req->err);
    return res && auth_accept(req, res, hash);
}

PGresult *api_auth_exec(nn_request_t *req, const char *statement, int nextra,
                        const char *const *extra)
{
    char hash[APIKEY_HEX_LEN + 1];
    if (!auth_key_hash(req, hash))
        return NULL;
    const char *params[4] = {hash};
    if (nextra < 0 || nextra > 3) {
        nn_error_internal(&req->err, "too many statement parameters");
        return NULL;
    }
    for (int i = 0; i < nextra; i++)
        params[i + 1] = extra[i];
    PGresult *res =
        db_exec(req->ctx->db, req->arena, statement, nextra + 1, params, NULL, &req->err);
    if (!res || !auth_accept(req, res, hash))
        return NULL;
    return res;
}

bool api_route_id(nn_request_t *req, int index, long long *id)
{
    const char *s = req->route_params[index];
    long long v;
    if (!s || !query_parse_int(s, 1, 9223372036854775807LL, &v))
        return nn_error_set(&req->err, 404, "not_found", "no such resource: %s", req->path);
    *id = v;
    return true;
}

bool api_page_parse(nn_request_t *req, api_page_t *page)
{
    page->limit = 100;
    page->offset = 0;
    query_t q;
    if (!query_parse(req->arena, req->query, &q, &req->err))
        return false;
    const char *limit = query_get(&q, "limit");
    const char *offset = query_get(&q, "offset");
    if (limit && !query_parse_int(limit, 1, 1000, &page->limit))
        return nn_error_field(&req->err, "limit", "must be an integer between 1 and 1000");
    if (offset && !query_parse_int(offset, 0, 1000000000000LL, &page->offset))
        return nn_error_field(&req->err, "offset", "must be a non-negative integer");
    return true;
}

/* The request's URL with offset and limit replaced, every other parameter
 * kept in order. */
static char *page_url(nn_request_t *req, long long offset, long long limit)
{
    nn_buf_t b;
    buf_init(&b, req->arena);
    buf_appendf(&b, "%s://%s", req->scheme, req->host);
    query_percent_encode_path(&b, req->path);
    buf_appendf(&b, "?limit=%lld&offset=%lld", limit, offset);
    query_t q;
    nn_error_t ignored;
    nn_error_init(&ignored);
    if (query_parse(req->arena, req->query, &q, &ignored)) {
        for (size_t i = 0; i < q.n; i++) {
            if (strcmp(q.params[i].name, "limit") == 0 || strcmp(q.params[i].name, "offset") == 0)
                continue;
            buf_append_char(&b, '&');
            query_percent_encode(&b, q.params[i].name);
            buf_append_char(&b, '=');
            query_percent_encode(&b, q.params[i].value);
        }
    }
    return (char *)buf_cstr(&b);
}

bool api_page_render(nn_request_t *req, const api_page_t *page, long long count,
                     const char *results_json)
{
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    render_key_int(g, "count", count);
    render_str(g, "next");
    if (page->offset + page->limit < count)
        render_str(g, page_url(req, page->offset + page->limit, page->limit));
    else
        yajl_gen_null(g);
    render_str(g, "previous");
    if (page->offset > 0) {
        long long prev = page->offset - page->limit;
        render_str(g, page_url(req, prev > 0 ? prev : 0, page->limit));
    } else {
        yajl_gen_null(g);
    }
    render_str(g, "results");
    /* The results come as JSON text from PostgreSQL: yajl's generator has
     * no raw insert, so close the map by hand around them. */
    yajl_gen_string(g, (const unsigned char *)"", 0);
    yajl_gen_map_close(g);
    /* Replace the placeholder "" with the results array. */
    size_t len = req->body.len;
    if (req->body.failed || len < 3 || memcmp(req->body.data + len - 3, "\"\"}", 3) != 0)
        return nn_error_oom(&req->err);
    req->body.len = len - 3;
    buf_append_str(&req->body, results_json);
    buf_append_char(&req->body, '}');
    return !req->body.failed || nn_error_oom(&req->err);
}
