/* libFuzzer harness: a request as nginx hands it over FastCGI (the params
 * NAME=value, NUL-separated in the input), taken apart by req_init (path
 * decoding, version prefix, forwarded scheme and host), dispatched by the
 * router over the API's route patterns (route parameters, 404, 405 with
 * Allow, OPTIONS, 401), with handlers that read their route parameters and
 * query string the way the API's handlers do.
 *
 * Checked on every input: a complete response (status, a JSON body that
 * parses back), header lines that cannot split the response. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/render.h"
#include "http/query.h"
#include "http/router.h"
#include "json/jv.h"

#define MAX_PARAMS 64

/* The route parameter as an id, as api_route_id() reads it. */
static bool handler_id(nn_request_t *req)
{
    long long id = 0;
    for (int i = 0; i < REQ_MAX_ROUTE_PARAMS; i++) {
        if (!req->route_params[i])
            continue;
        if (!query_parse_int(req->route_params[i], 1, 9223372036854775807LL, &id))
            return nn_error_set(&req->err, 404, "not_found", "no such resource: %s", req->path);
    }
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    render_key_int(g, "id", id);
    yajl_gen_map_close(g);
    return true;
}

/* A slug route parameter, echoed (api_networks_get_public). */
static bool handler_slug(nn_request_t *req)
{
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    render_key_str(g, "slug", req->route_params[0]);
    yajl_gen_map_close(g);
    return true;
}

/* A list: limit and offset from the query string (api_page_parse), every
 * parameter echoed percent-encoded (the page links). */
static bool handler_list(nn_request_t *req)
{
    query_t q;
    if (!query_parse(req->arena, req->query, &q, &req->err))
        return false;
    long long limit = 100, offset = 0;
    const char *l = query_get(&q, "limit"), *o = query_get(&q, "offset");
    if (l && !query_parse_int(l, 1, 1000, &limit))
        return nn_error_field(&req->err, "limit", "must be an integer between 1 and 1000");
    if (o && !query_parse_int(o, 0, 1000000000000LL, &offset))
        return nn_error_field(&req->err, "offset", "must be a non-negative integer");
    nn_buf_t b;
    buf_init(&b, req->arena);
    buf_appendf(&b, "%s://%s", req->scheme, req->host);
    query_percent_encode_path(&b, req->path);
    for (size_t i = 0; i < q.n; i++) {
        buf_append_char(&b, '&');
        query_percent_encode(&b, q.params[i].name);
        buf_append_char(&b, '=');
        query_percent_encode(&b, q.params[i].value);
    }
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    render_key_int(g, "limit", limit);
    render_key_int(g, "offset", offset);
    render_key_str(g, "next", buf_cstr(&b) ? buf_cstr(&b) : "");
    yajl_gen_map_close(g);
    return true;
}

static bool handler_plain(nn_request_t *req)
{
    return buf_append_str(&req->body, "{}");
}

/* The patterns and flags of api_routes (api/common.c). */
static const route_t routes[] = {
    {"GET", "/health", handler_plain, 0},
    {"GET", "/networks/public", handler_list, ROUTE_AUTH},
    {"GET", "/networks/public/{}", handler_slug, ROUTE_AUTH},
    {"GET", "/networks", handler_list, ROUTE_AUTH},
    {"POST", "/networks", handler_plain, ROUTE_AUTH},
    {"GET", "/networks/{}", handler_id, ROUTE_AUTH},
    {"PATCH", "/networks/{}", handler_id, ROUTE_AUTH},
    {"PUT", "/networks/{}", handler_id, ROUTE_AUTH},
    {"DELETE", "/networks/{}", handler_id, ROUTE_AUTH},
    {"GET", "/networks/{}/graph", handler_id, ROUTE_AUTH},
    {"GET", "/tasks", handler_list, ROUTE_AUTH},
    {"GET", "/tasks/{}", handler_id, ROUTE_AUTH},
    {"GET", "/metrics", handler_plain, 0},
};

/* The key is only looked at, never looked up: the lookup is the database's. */
static bool auth(nn_request_t *req)
{
    const char *key = req_header(req, "X-API-KEY");
    if (!key || !*key)
        return nn_error_set(&req->err, 401, "not_authenticated",
                            "no API key: send it in the X-API-KEY header");
    req->org_id = 1;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_create(0);
    char *copy = arena_strndup(arena, (const char *)data, size); /* NULs stay */
    char *envp[MAX_PARAMS + 1];
    size_t n = 0;
    for (size_t i = 0; i < size && n < MAX_PARAMS;) {
        envp[n++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    envp[n] = NULL;
    FCGX_Request fcgi;
    memset(&fcgi, 0, sizeof(fcgi));
    fcgi.envp = envp;

    nn_request_t req;
    if (req_init(&req, arena, &fcgi, NULL)) {
        router_dispatch(&req, routes, sizeof(routes) / sizeof(routes[0]), auth);
        if (req.status < 200 || req.status > 599)
            __builtin_trap();
        if (req.status != 204) {
            const char *body = buf_cstr(&req.body);
            nn_error_t err;
            nn_error_init(&err);
            if (!body || !jv_parse(arena, body, req.body.len, "response", &err))
                __builtin_trap(); /* every body we send is JSON */
        }
        const char *h = buf_cstr(&req.headers);
        for (const char *p = h; p && *p; p++)
            if (*p == '\r' && p[1] != '\n')
                __builtin_trap(); /* a stray CR would split the response */
    }
    arena_destroy(arena);
    return 0;
}
