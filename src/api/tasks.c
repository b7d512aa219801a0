/* tasks.c - the Tasks resource: one task, or several by id. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "http/query.h"

#define TASK_IDS_MAX 1000

/* The polling hot path: authentication and the task in one statement. */
bool api_tasks_get(nn_request_t *req)
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
    PGresult *res = api_auth_exec(req, "task_get_auth", 1, extra);
    if (!res)
        return false;
    if (!db_value(res, 0, 3))
        return nn_error_set(&req->err, 404, "not_found",
                            "task %lld does not exist (or is not visible to your organization)", id);
    return buf_append_str(&req->body, db_value(res, 0, 3)) || nn_error_oom(&req->err);
}

/* task_ids may repeat (task_ids=1&task_ids=2) and hold lists (task_ids=1,2);
 * both build one PostgreSQL array literal of integers. */
static bool task_ids_array(nn_request_t *req, const query_t *q, const char **array)
{
    nn_buf_t b;
    buf_init(&b, req->arena);
    buf_append_char(&b, '{');
    size_t count = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->params[i].name, "task_ids") != 0)
            continue;
        const char *p = q->params[i].value;
        while (*p) {
            size_t len = strcspn(p, ",");
            char one[32];
            long long id;
            if (len == 0 || len >= sizeof(one))
                return nn_error_field(&req->err, "task_ids",
                                      "must be task ids: task_ids=1&task_ids=2 or task_ids=1,2");
            memcpy(one, p, len);
            one[len] = '\0';
            if (!query_parse_int(one, 1, 9223372036854775807LL, &id))
                return nn_error_field(&req->err, "task_ids", "\"%s\" is not a task id", one);
            if (++count > TASK_IDS_MAX)
                return nn_error_field(&req->err, "task_ids", "at most %d ids at once",
                                      TASK_IDS_MAX);
            buf_appendf(&b, "%s%lld", count > 1 ? "," : "", id);
            p += len;
            if (*p == ',')
                p++;
        }
    }
    if (count == 0)
        return nn_error_field(&req->err, "task_ids",
                              "is required: the ids of the tasks to read, task_ids=1&task_ids=2");
    buf_append_char(&b, '}');
    *array = buf_cstr(&b);
    return *array != NULL || nn_error_oom(&req->err);
}

bool api_tasks_list(nn_request_t *req)
{
    api_page_t page;
    if (!api_page_parse(req, &page))
        return false;
    query_t q;
    if (!query_parse(req->arena, req->query, &q, &req->err))
        return false;
    const char *array = NULL;
    if (!task_ids_array(req, &q, &array))
        return false;
    char org[24], limit[24], offset[24];
    snprintf(org, sizeof(org), "%lld", req->org_id);
    snprintf(limit, sizeof(limit), "%lld", page.limit);
    snprintf(offset, sizeof(offset), "%lld", page.offset);
    const char *params[] = {array, org, limit, offset};
    PGresult *res = db_exec(req->ctx->db, req->arena, "task_list", 4, params, NULL, &req->err);
    if (!res)
        return false;
    return api_page_render(req, &page, db_value_ll(res, 0, 0), db_value(res, 0, 1));
}
