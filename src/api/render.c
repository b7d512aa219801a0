#include "api/render.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

static void render_print(void *ctx, const char *str, size_t len)
{
    nn_buf_t *b = ctx;
    (void)buf_append(b, str, len); /* a failed buffer is checked by the caller */
}

static void render_gen_free(void *g)
{
    yajl_gen_free(g);
}

yajl_gen render_gen(nn_request_t *req)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g) {
        nn_error_oom(&req->err);
        return NULL;
    }
    if (!arena_cleanup_add(req->arena, render_gen_free, g)) {
        yajl_gen_free(g);
        nn_error_oom(&req->err);
        return NULL;
    }
    yajl_gen_config(g, yajl_gen_print_callback, render_print, &req->body);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    return g;
}

void render_str(yajl_gen g, const char *s)
{
    if (!s)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void render_key_str(yajl_gen g, const char *key, const char *value)
{
    render_str(g, key);
    render_str(g, value);
}

void render_key_int(yajl_gen g, const char *key, long long value)
{
    render_str(g, key);
    yajl_gen_integer(g, value);
}

void render_error(nn_request_t *req)
{
    nn_error_t *err = &req->err;
    if (!nn_error_is_set(err))
        nn_error_internal(err, "a handler failed without saying why");
    req->status = err->status;
    buf_reset(&req->body);
    if (err->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", err->retry_after);
        req_add_header(req, "Retry-After", secs);
    }
    if (err->status >= 500)
        log_error("%s %s -> %d %s: %s", req->method, req->path, err->status,
                  err->code ? err->code : "-", err->message);

    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g) {
        /* Out of memory even for the error body: a fixed one. */
        buf_append_str(&req->body, "{\"error\":\"out of memory\",\"error_code\":\"out_of_memory\"}");
        return;
    }
    yajl_gen_config(g, yajl_gen_print_callback, render_print, &req->body);
    yajl_gen_map_open(g);
    render_key_str(g, "error", err->message);
    render_key_str(g, "error_code", err->code ? err->code : "error");
    if (err->nfields) {
        render_str(g, "fields");
        yajl_gen_map_open(g);
        for (size_t i = 0; i < err->nfields; i++)
            render_key_str(g, err->fields[i].path, err->fields[i].message);
        yajl_gen_map_close(g);
    }
    if (err->status >= 500)
        render_key_str(g, "request_id", req->request_id);
    yajl_gen_map_close(g);
    yajl_gen_free(g);
}
