/* api.h - the HTTP resources of API.md: the route table, the prepared
 * statements the handlers use, and authentication. */
#ifndef NNREG_API_API_H
#define NNREG_API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"
#include "http/request.h"
#include "http/router.h"

/* The statements every worker prepares on each new connection. */
extern const db_statement_t api_statements[];
extern const size_t api_nstatements;

/* The route table (static storage). */
extern const route_t api_routes[];
extern const size_t api_nroutes;

/* X-API-KEY (and X-APP-ID when sent) -> req->org_id; 401 otherwise. */
bool api_authenticate(nn_request_t *req);

/* Handlers, one file per resource. */
bool api_networks_list(nn_request_t *req);
bool api_networks_public_list(nn_request_t *req);
bool api_networks_create(nn_request_t *req);
bool api_networks_get(nn_request_t *req);
bool api_networks_get_public(nn_request_t *req);
bool api_networks_patch(nn_request_t *req);
bool api_networks_put(nn_request_t *req);
bool api_networks_delete(nn_request_t *req);
bool api_networks_graph(nn_request_t *req);
/* POST /networks/{id}/inference (api/inference.c): queues an inference task. */
bool api_networks_inference(nn_request_t *req);
bool api_tasks_get(nn_request_t *req);
bool api_tasks_list(nn_request_t *req);
bool api_health(nn_request_t *req);
/* Prometheus text format; never fails because the database is away. */
bool api_metrics(nn_request_t *req);

/* Shared by handlers: page parameters and links (api/pages.c). */
typedef struct api_page {
    long long limit;
    long long offset;
} api_page_t;

/* Reads offset and limit (1..1000, default 100) from the query. */
bool api_page_parse(nn_request_t *req, api_page_t *page) __attribute__((warn_unused_result));

/* Writes {"count": N, "next": url|null, "previous": url|null, "results": <results_json>}
 * into the body; results_json is a JSON array text. */
bool api_page_render(nn_request_t *req, const api_page_t *page, long long count,
                     const char *results_json) __attribute__((warn_unused_result));

/* Answers status with the network row res (columns: json, version) and its
 * ETag. */
bool api_send_network(nn_request_t *req, int status, PGresult *res, long long id)
    __attribute__((warn_unused_result));

/* Authentication folded into the handler's own statement (routes flagged
 * ROUTE_AUTH_IN_HANDLER): runs statement with $1 the key's hash and
 * $2.. extra, a statement whose rows are those of the key (none when
 * the key is unknown or revoked), columns 0-2 org_id, app_id, key_hash,
 * then its own.  Makes every check api_authenticate makes and fills
 * req->org_id; NULL with req->err filled (401, 503...) otherwise. */
PGresult *api_auth_exec(nn_request_t *req, const char *statement, int nextra,
                        const char *const *extra) __attribute__((warn_unused_result));

/* Parses a route id ("42") or fails with 404. */
bool api_route_id(nn_request_t *req, int index, long long *id) __attribute__((warn_unused_result));

#endif
