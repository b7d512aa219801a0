/* request.h - one HTTP request as nginx hands it over FastCGI, and the
 * response being built for it.
 *
 * A request lives from FCGX_Accept_r to FCGX_Finish_r.  Everything it owns
 * comes from req->arena.  Handlers fill req->status, extra headers and the
 * body buffer; on failure they fill req->err and return false, and the
 * router renders the error body once (render.h).
 */
#ifndef NNREG_HTTP_REQUEST_H
#define NNREG_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/config.h"
#include "util/error.h"

struct db;
struct filetype_checker;
struct metrics;

/* What a worker holds for its whole life and lends to every request. */
typedef struct worker_ctx {
    const nn_config_t *config;
    struct db *db;
    struct filetype_checker *filetypes;
    struct metrics *metrics; /* the counters shared by all workers (http/metrics.h) */
} worker_ctx_t;

#define REQ_MAX_ROUTE_PARAMS 2

typedef struct nn_request {
    arena_t *arena;
    FCGX_Request *fcgi;     /* NULL in unit tests */
    const worker_ctx_t *ctx;
    nn_error_t err;

    /* From the FastCGI params. */
    const char *method;     /* "GET", … */
    const char *path;       /* decoded path without query, "/v0.7" prefix kept */
    const char *route_path; /* path with the version prefix and trailing slash removed */
    const char *query;      /* raw query string ("" when none) */
    const char *content_type;
    int64_t content_length; /* -1 when absent */
    const char *request_id;
    const char *scheme;     /* "http" / "https" (X-Forwarded-Proto first) */
    const char *host;       /* Host header (X-Forwarded-Host first) */
    const char *base_path;  /* path up to and including the matched route prefix */

    /* Set by the router. */
    const char *route_params[REQ_MAX_ROUTE_PARAMS];
    const char *route_name; /* the route's pattern, for logs and metrics */
    long long org_id;       /* authenticated organization, 0 when none */
    const char *app_id;

    /* The response. */
    int status;
    const char *response_type; /* Content-Type of the body; NULL: JSON.  A
                                * response with an error recorded is JSON
                                * whatever this says. */
    nn_buf_t headers;       /* extra header lines, each ending in \r\n */
    bool no_content_type;   /* send no Content-Type: an X-Accel-Redirect
                             * answer, whose type nginx sets (a copied one
                             * would reach the client with its charset twice) */
    nn_buf_t body;
    uint64_t body_bytes_read;
} nn_request_t;

/* Fills req from the FastCGI params of fcgi.  false (err filled) only when
 * out of memory or the path cannot be decoded. */
bool req_init(nn_request_t *req, arena_t *arena, FCGX_Request *fcgi, const worker_ctx_t *ctx)
    __attribute__((warn_unused_result));

/* A request header by its HTTP name ("X-API-KEY"), NULL when absent. */
const char *req_header(const nn_request_t *req, const char *name);

/* Reads up to cap body bytes; *got = 0 at end of body.  false on a read
 * error (client gone): 400 "body_read_failed". */
bool req_read_body(nn_request_t *req, char *buf, size_t cap, size_t *got, nn_error_t *err)
    __attribute__((warn_unused_result));

/* Reads the whole body (for small JSON bodies) up to max bytes; a longer
 * body is 413. *data is NUL-terminated arena memory. */
bool req_read_small_body(nn_request_t *req, size_t max, char **data, size_t *len)
    __attribute__((warn_unused_result));

/* Adds a response header line "Name: value". */
bool req_add_header(nn_request_t *req, const char *name, const char *value);

/* Writes status line, headers and body to the FastCGI output stream. */
void req_send(nn_request_t *req);

#endif
