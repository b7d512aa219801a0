#include "http/router.h"

#include <string.h>

#include "api/render.h"
#include "http/query.h"
#include "util/utf8.h"

/* Matches route_path ("/networks/42/graph") against a pattern
 * ("/networks/{}/graph"), capturing "{}" segments.  A segment that is not
 * UTF-8 text names nothing (nginx hands over the decoded path, so "%93"
 * arrives as the byte 0x93): no match, a 404, rather than bytes the
 * database refuses as text. */
static bool route_match(arena_t *arena, const char *pattern, const char *path,
                        const char *params[REQ_MAX_ROUTE_PARAMS])
{
    size_t nparams = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            size_t seg = strcspn(s, "/");
            if (seg == 0 || nparams == REQ_MAX_ROUTE_PARAMS || !utf8_valid(s, seg))
                return false;
            params[nparams] = arena_strndup(arena, s, seg);
            if (!params[nparams])
                return false;
            nparams++;
            s += seg;
            p += 2;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

void router_dispatch(nn_request_t *req, const route_t *routes, size_t nroutes, route_auth_fn auth)
{
    const route_t *found = NULL;
    nn_buf_t allow;
    buf_init(&allow, req->arena);
    bool path_known = false;
    bool is_head = strcmp(req->method, "HEAD") == 0;

    for (size_t i = 0; i < nroutes; i++) {
        const char *params[REQ_MAX_ROUTE_PARAMS] = {NULL, NULL};
        if (!route_match(req->arena, routes[i].pattern, req->route_path, params))
            continue;
        /* The table is ordered: a literal route ("/networks/public") listed
         * before a parameter route ("/networks/{}") wins, and Allow lists
         * the methods of that first matching pattern only. */
        if (!path_known) {
            path_known = true;
            req->route_name = routes[i].pattern;
        } else if (strcmp(req->route_name, routes[i].pattern) != 0) {
            continue; /* another pattern matching the same path: the first wins */
        }
        if (allow.len)
            buf_append_str(&allow, ", ");
        buf_append_str(&allow, routes[i].method);
        if (!found && (strcmp(routes[i].method, req->method) == 0 ||
                       (is_head && strcmp(routes[i].method, "GET") == 0))) {
            found = &routes[i];
            memcpy(req->route_params, params, sizeof(params));
        }
    }

    if (!path_known) {
        req->route_name = "unknown";
        nn_error_set(&req->err, 404, "not_found",
                     "no such resource: %s (routes live under /v0.7/, e.g. /v0.7/networks/)",
                     req->path);
    } else if (!found) {
        if (strcmp(req->method, "OPTIONS") == 0) {
            req->status = 204;
            req_add_header(req, "Allow", buf_cstr(&allow) ? buf_cstr(&allow) : "GET");
            return;
        }
        nn_error_set(&req->err, 405, "method_not_allowed",
                     "method %s is not allowed on %s; allowed: %s", req->method, req->path,
                     buf_cstr(&allow) ? buf_cstr(&allow) : "");
        req_add_header(req, "Allow", buf_cstr(&allow) ? buf_cstr(&allow) : "");
    } else if ((found->flags & ROUTE_AUTH) && !auth(req)) {
        /* auth filled req->err */
    } else if (found->handler(req)) {
        if (req->body.failed)
            nn_error_oom(&req->err);
        else
            return;
    }
    render_error(req);
}
