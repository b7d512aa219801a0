/* router.h - the static route table (cgit style) and the dispatch that
 * answers 404, 405 (with Allow), 401 and 503 before any handler runs, calls
 * the handler, and renders its error once. */
#ifndef NNREG_HTTP_ROUTER_H
#define NNREG_HTTP_ROUTER_H

#include <stdbool.h>

#include "http/request.h"

typedef bool (*route_handler_fn)(nn_request_t *req);

enum {
    ROUTE_AUTH = 1 << 0, /* needs X-API-KEY */
    ROUTE_DB = 1 << 1,   /* needs the database before the handler runs */
    /* Needs X-API-KEY, but the handler checks it itself, in the same
     * statement as its own query (one round trip instead of two on the hot
     * read paths, docs/performance.md): the router does not call auth. */
    ROUTE_AUTH_IN_HANDLER = 1 << 2,
};

typedef struct route {
    const char *method;
    /* Segments after the version prefix, "{}" matching one segment that
     * becomes a route parameter: "/networks/{}/graph". */
    const char *pattern;
    route_handler_fn handler;
    unsigned flags;
} route_t;

/* Authentication (API key lookup), provided by the API layer. */
typedef bool (*route_auth_fn)(nn_request_t *req);

/* Finds the route for req (setting route params and route_name), checks
 * auth, runs the handler, renders the error if it failed.  Always leaves a
 * complete response in req. */
void router_dispatch(nn_request_t *req, const route_t *routes, size_t nroutes, route_auth_fn auth);

#endif
