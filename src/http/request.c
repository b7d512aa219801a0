#include "http/request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static const char *param(const nn_request_t *req, const char *name)
{
    if (!req->fcgi)
        return NULL;
    return FCGX_GetParam(name, req->fcgi->envp);
}

static const char *param_or(const nn_request_t *req, const char *name, const char *fallback)
{
    const char *v = param(req, name);
    return v && *v ? v : fallback;
}

/* Percent-decodes a path; refuses %00 and malformed escapes. */
static char *path_decode(arena_t *arena, const char *raw, size_t len)
{
    char *out = arena_alloc(arena, len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)raw[i + 1]) ||
                !isxdigit((unsigned char)raw[i + 2]))
                return NULL;
            char hex[3] = {raw[i + 1], raw[i + 2], 0};
            char c = (char)strtol(hex, NULL, 16);
            if (c == '\0')
                return NULL;
            out[o++] = c;
            i += 2;
        } else {
            out[o++] = raw[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The first element of a comma-separated header value (a chain of proxies
 * appends to X-Forwarded-*: the first is the one the client talked to),
 * without the spaces around it. */
static void first_element(const char *value, const char **start, size_t *len)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strcspn(value, ",");
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    *start = value;
    *len = n;
}

/* "http" or "https" from X-Forwarded-Proto; NULL when absent or anything
 * else (the request's own scheme is used then). */
static const char *forwarded_proto(const char *value)
{
    if (!value)
        return NULL;
    const char *p;
    size_t n;
    first_element(value, &p, &n);
    if (n == 4 && strncasecmp(p, "http", 4) == 0)
        return "http";
    if (n == 5 && strncasecmp(p, "https", 5) == 0)
        return "https";
    return NULL;
}

/* A host[:port] that can go into a URL as it is: letters, digits, "-", ".",
 * "_", ":" and the brackets of an IPv6 literal.  Anything else ("/", "?",
 * "@", spaces...) would change what a link built from it points to. */
static bool host_valid(const char *host, size_t len)
{
    if (!host || len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && !strchr("-._:[]", c))
            return false;
    }
    return true;
}

/* The host of X-Forwarded-Host (its first element) when it is a valid
 * host[:port], else NULL. */
static const char *forwarded_host(arena_t *arena, const char *value)
{
    if (!value)
        return NULL;
    const char *p;
    size_t n;
    first_element(value, &p, &n);
    if (!host_valid(p, n))
        return NULL;
    return arena_strndup(arena, p, n);
}

/* Without a usable Host header (HTTP/1.0): the address and port the
 * request came in on.  They are nginx's, but they go into the links we
 * send, so they get the same check as a Host header (found by fuzz_route,
 * which feeds them anything): "localhost" when they fail it. */
static const char *server_host(nn_request_t *req)
{
    const char *addr = param_or(req, "SERVER_ADDR", "localhost");
    const char *port = param(req, "SERVER_PORT");
    bool v6 = strchr(addr, ':') != NULL;
    const char *host;
    if (!port || !*port)
        host = v6 ? arena_printf(req->arena, "[%s]", addr) : addr;
    else if (v6)
        host = arena_printf(req->arena, "[%s]:%s", addr, port);
    else
        host = arena_printf(req->arena, "%s:%s", addr, port);
    if (host && !host_valid(host, strlen(host)))
        return "localhost";
    return host;
}

/* The path the routes match: without the /v0.7 prefix and without a
 * trailing slash ("/networks/42/" -> "/networks/42", "/v0.7/" -> ""). */
static const char *route_path_of(arena_t *arena, const char *path)
{
    static const char prefix[] = "/v0.7";
    size_t plen = sizeof(prefix) - 1;
    if (strncmp(path, prefix, plen) == 0 && (path[plen] == '/' || path[plen] == '\0'))
        path += plen;
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        len--;
    return arena_strndup(arena, path, len);
}

bool req_init(nn_request_t *req, arena_t *arena, FCGX_Request *fcgi, const worker_ctx_t *ctx)
{
    /* Everything zero but the error, which holds its messages inline (tens
     * of KiB): clearing it took a third of a GET's instructions in the
     * worker (callgrind, docs/performance.md); nn_error_init resets what
     * counts. */
    memset(req, 0, offsetof(nn_request_t, err));
    nn_error_init(&req->err);
    size_t after_err = offsetof(nn_request_t, err) + sizeof(req->err);
    memset((char *)req + after_err, 0, sizeof(*req) - after_err);
    req->arena = arena;
    req->fcgi = fcgi;
    req->ctx = ctx;
    buf_init(&req->headers, arena);
    buf_init(&req->body, arena);
    req->status = 200;

    req->method = param_or(req, "REQUEST_METHOD", "GET");
    req->request_id = param_or(req, "HTTP_X_REQUEST_ID", "-");
    req->content_type = param(req, "CONTENT_TYPE");
    const char *cl = param(req, "CONTENT_LENGTH");
    req->content_length = cl && *cl ? strtoll(cl, NULL, 10) : -1;

    const char *query = param(req, "QUERY_STRING");
    req->query = query ? query : "";

    const char *doc = param(req, "DOCUMENT_URI");
    if (doc && *doc) {
        req->path = doc; /* nginx's $uri: already decoded and normalized */
    } else {
        const char *uri = param_or(req, "REQUEST_URI", "/");
        size_t len = strcspn(uri, "?");
        req->path = path_decode(arena, uri, len);
        if (!req->path)
            return nn_error_set(&req->err, 400, "invalid_path",
                                "the request path has a malformed percent escape");
    }
    req->route_path = route_path_of(arena, req->path);
    if (!req->route_path)
        return nn_error_oom(&req->err);

    /* REQUEST_SCHEME is nginx's $scheme, but it goes into the links we
     * send: only "http" or "https" are taken from it (found by fuzz_route,
     * which feeds it anything). */
    req->scheme = forwarded_proto(param(req, "HTTP_X_FORWARDED_PROTO"));
    if (!req->scheme)
        req->scheme = forwarded_proto(param(req, "REQUEST_SCHEME"));
    if (!req->scheme)
        req->scheme = param(req, "HTTPS") && *param(req, "HTTPS") ? "https" : "http";
    req->host = forwarded_host(arena, param(req, "HTTP_X_FORWARDED_HOST"));
    const char *host = param(req, "HTTP_HOST");
    if (!req->host && host && host_valid(host, strlen(host)))
        req->host = host;
    if (!req->host)
        req->host = server_host(req);
    if (!req->host)
        return nn_error_oom(&req->err);
    return true;
}

const char *req_header(const nn_request_t *req, const char *name)
{
    char key[128] = "HTTP_";
    size_t o = 5;
    for (const char *p = name; *p && o < sizeof(key) - 1; p++)
        key[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    key[o] = '\0';
    return param(req, key);
}

bool req_read_body(nn_request_t *req, char *buf, size_t cap, size_t *got, nn_error_t *err)
{
    *got = 0;
    if (!req->fcgi)
        return true;
    if (cap > (size_t)INT32_MAX)
        cap = (size_t)INT32_MAX;
    int n = FCGX_GetStr(buf, (int)cap, req->fcgi->in);
    if (n < 0 || (n == 0 && FCGX_GetError(req->fcgi->in) != 0))
        return nn_error_set(err, 400, "body_read_failed",
                            "the request body could not be read (the client went away?)");
    *got = (size_t)n;
    req->body_bytes_read += (uint64_t)n;
    return true;
}

bool req_read_small_body(nn_request_t *req, size_t max, char **data, size_t *len)
{
    nn_buf_t b;
    buf_init(&b, req->arena);
    char chunk[16384];
    for (;;) {
        size_t got;
        if (!req_read_body(req, chunk, sizeof(chunk), &got, &req->err))
            return false;
        if (got == 0)
            break;
        if (b.len + got > max)
            return nn_error_set(&req->err, 413, "body_too_large",
                                "the request body is larger than %zu bytes; send less", max);
        if (!buf_append(&b, chunk, got))
            return nn_error_oom(&req->err);
    }
    const char *s = buf_cstr(&b);
    if (!s)
        return nn_error_oom(&req->err);
    *data = (char *)s;
    *len = b.len;
    return true;
}

bool req_add_header(nn_request_t *req, const char *name, const char *value)
{
    /* Header values we send are ours (ids, tags, numbers): refuse CR/LF so
     * that nothing can split the response. */
    if (strpbrk(value, "\r\n"))
        return false;
    return buf_appendf(&req->headers, "%s: %s\r\n", name, value);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Status";
    }
}

void req_send(nn_request_t *req)
{
    if (!req->fcgi)
        return;
    FCGX_Stream *out = req->fcgi->out;
    /* libfcgi's FCGX_FPrintF has its own printf that knows no %zu: format
     * with the C library and write the bytes. */
    char line[96];
    int n = snprintf(line, sizeof(line), "Status: %d %s\r\n", req->status, status_text(req->status));
    FCGX_PutStr(line, n, out);
    if (req->status != 204 && !req->no_content_type) {
        /* The error body render_error wrote is JSON, whatever the handler
         * had chosen before it failed. */
        const char *type = req->response_type && !nn_error_is_set(&req->err)
                               ? req->response_type
                               : "application/json; charset=utf-8";
        FCGX_PutS("Content-Type: ", out);
        FCGX_PutS(type, out);
        FCGX_PutS("\r\n", out);
    }
    if (req->headers.len)
        FCGX_PutStr(req->headers.data, (int)req->headers.len, out);
    if (req->status == 204) {
        FCGX_PutS("\r\n", out);
        return;
    }
    n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n\r\n", req->body.len);
    FCGX_PutStr(line, n, out);
    if (req->body.len && strcmp(req->method, "HEAD") != 0)
        FCGX_PutStr(req->body.data, (int)req->body.len, out);
}
