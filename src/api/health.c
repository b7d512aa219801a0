/* health.c - liveness and database reachability, no key needed. */
#include <stdio.h>

#include "api/api.h"
#include "api/render.h"

bool api_health(nn_request_t *req)
{
    nn_error_t db_err;
    nn_error_init(&db_err);
    PGresult *res = db_exec(req->ctx->db, req->arena, "health", 0, NULL, NULL, &db_err);
    yajl_gen g = render_gen(req);
    if (!g)
        return false;
    yajl_gen_map_open(g);
    if (res) {
        render_key_str(g, "status", "ok");
        render_key_str(g, "database", "ok");
    } else {
        /* Still the error shape of API.md, with the health fields beside it. */
        req->status = 503;
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", db_err.retry_after > 0 ? db_err.retry_after : 2);
        req_add_header(req, "Retry-After", secs);
        render_key_str(g, "status", "unavailable");
        render_key_str(g, "database", "unavailable");
        render_key_str(g, "error", db_err.message);
        render_key_str(g, "error_code", db_err.code ? db_err.code : "database_unavailable");
        /* Like every 5xx body: the id that finds the request in the logs. */
        render_key_str(g, "request_id", req->request_id);
    }
    yajl_gen_map_close(g);
    return true;
}
