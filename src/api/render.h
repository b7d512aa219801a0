/* render.h - response bodies: JSON through yajl's generator, written
 * straight into the request's body buffer, and the one place where an error
 * record becomes the JSON error body of API.md. */
#ifndef NNREG_API_RENDER_H
#define NNREG_API_RENDER_H

#include <stdbool.h>

#include <yajl/yajl_gen.h>

#include "http/request.h"

/* A generator that appends to req->body; freed with the arena.  NULL (and
 * req->err set) when out of memory. */
yajl_gen render_gen(nn_request_t *req);

/* Convenience wrappers for NUL-terminated strings. */
void render_str(yajl_gen g, const char *s);
void render_key_str(yajl_gen g, const char *key, const char *value); /* value NULL: null */
void render_key_int(yajl_gen g, const char *key, long long value);

/* Replaces the response with the JSON error body for req->err: status,
 * {"error", "error_code", "fields" (validation errors), "request_id" (5xx)},
 * Retry-After and Allow headers as the error asks.  5xx are logged. */
void render_error(nn_request_t *req);

#endif
