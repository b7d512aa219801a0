#include "fcgi/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api/api.h"
#include "api/render.h"
#include "db/db.h"
#include "http/request.h"
#include "store/blob.h"
#include "store/filetype.h"
#include "util/log.h"

/* Set by the SIGTERM handler, read by the accept loop: the one piece of
 * signal state a worker has. */
static volatile sig_atomic_t worker_stopping;

static void worker_on_term(int sig)
{
    (void)sig;
    worker_stopping = 1;
    FCGX_ShutdownPending();
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Reads and drops what the handler left unread of the request body, up to
 * limit bytes.  A handler that refuses a body early (a bad multipart
 * preamble after 64 KiB of a 100 MB upload) stops reading; answering and
 * closing then races with nginx still writing the rest: a write error that
 * nginx sees before it reads the answer becomes a 502 instead of the 400.
 * nginx has the whole body already (fastcgi_request_buffering on), so this
 * is a local copy at memory speed, bounded by the upload limit nginx
 * enforces; the parsers themselves stay bounded since they stopped. */
static unsigned long long discard_body(FCGX_Request *fcgi, unsigned long long limit)
{
    char buf[64 * 1024];
    unsigned long long total = 0;
    while (total < limit) {
        int n = FCGX_GetStr(buf, (int)sizeof(buf), fcgi->in);
        if (n <= 0)
            break;
        total += (unsigned long long)n;
    }
    return total;
}

static void serve_one(const worker_ctx_t *ctx, FCGX_Request *fcgi)
{
    double start = now_ms();
    arena_t *arena = arena_create(0);
    if (!arena) {
        FCGX_PutS("Status: 500 Internal Server Error\r\nContent-Type: application/json; "
                  "charset=utf-8\r\n\r\n{\"error\":\"out of memory\",\"error_code\":\"out_of_memory\"}",
                  fcgi->out);
        metrics_observe(ctx->metrics, NULL, NULL, 500, (now_ms() - start) / 1000.0, 0);
        return;
    }
    nn_request_t req;
    if (req_init(&req, arena, fcgi, ctx)) {
        log_set_request_id(req.request_id);
        router_dispatch(&req, api_routes, api_nroutes, api_authenticate);
    } else {
        log_set_request_id(req.request_id);
        render_error(&req);
    }
    /* Before any byte of the answer: nginx stops sending the request body
     * once it has read the response header, so draining after answering
     * would wait forever for bytes that never come. */
    unsigned long long limit = (unsigned long long)ctx->config->max_upload_bytes + (1u << 20);
    unsigned long long dropped = discard_body(fcgi, limit);
    if (dropped > 0)
        log_info("discarded %llu request body bytes the handler did not read", dropped);
    req_send(&req);
    /* Counted before FCGX_Finish_r sends the end of the response: a client
     * that has its answer finds it in the next scrape. */
    double elapsed_ms = now_ms() - start;
    metrics_observe(ctx->metrics, req.route_name, req.method, req.status, elapsed_ms / 1000.0,
                    req.body_bytes_read);
    log_info("%s %s %d %zu %.1fms org=%lld route=%s in=%llu", req.method, req.path, req.status,
             req.body.len, elapsed_ms, req.org_id, req.route_name ? req.route_name : "-",
             (unsigned long long)req.body_bytes_read);
    log_set_request_id(NULL);
    arena_destroy(arena);
}

int worker_run(const nn_config_t *config, int listen_fd)
{
    char errbuf[512];
    metrics_t *metrics = metrics_create(api_routes, api_nroutes, errbuf, sizeof(errbuf));
    if (!metrics) {
        log_error("%s", errbuf);
        return 1;
    }
    int status = worker_serve(config, listen_fd, metrics);
    metrics_destroy(metrics);
    return status;
}

int worker_serve(const nn_config_t *config, int listen_fd, metrics_t *metrics)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_on_term; /* no SA_RESTART: poll/accept return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN); /* the supervisor reloads by replacing workers */
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-response is an error value, not a death */
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGTERM);
    sigaddset(&unblock, SIGINT);
    sigaddset(&unblock, SIGCHLD);
    sigaddset(&unblock, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);

    char errbuf[512];
    if (!blob_store_init(config->data_dir, errbuf, sizeof(errbuf))) {
        log_error("cannot use the data directory: %s", errbuf);
        return 1;
    }
    filetype_checker_t *filetypes = filetype_open(config->magic_file, errbuf, sizeof(errbuf));
    if (!filetypes) {
        log_error("cannot load the magic database: %s", errbuf);
        return 1;
    }
    db_t *db = db_create(config->database_url, api_statements, api_nstatements);
    if (!db) {
        log_error("out of memory creating the database handle");
        filetype_close(filetypes);
        return 1;
    }
    nn_error_t err;
    nn_error_init(&err);
    if (!db_ready(db, &err)) /* connect early; requests retry if this failed */
        log_warn("database not ready at start: %s", err.message);

    worker_ctx_t ctx = {config, db, filetypes, metrics};
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    /* The listening socket is non-blocking and polled with a timeout, so a
     * worker that lost the race for a connection, or that is asked to stop
     * between two requests, never sleeps in accept(). */
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags >= 0)
        fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
    FCGX_Request fcgi;
    FCGX_InitRequest(&fcgi, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    log_info("worker ready");
    while (!worker_stopping) {
        /* A connection nginx keeps open (fastcgi_keep_conn on) brings the
         * next request on that connection, not through the listening
         * socket: wait on it while libfcgi holds it. */
        int fd = fcgi.ipcFd >= 0 ? fcgi.ipcFd : listen_fd;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, 1000);
        if (n <= 0)
            continue;
        if (FCGX_Accept_r(&fcgi) < 0)
            continue; /* EAGAIN (another worker took it) or EINTR */
        serve_one(&ctx, &fcgi);
        FCGX_Finish_r(&fcgi);
    }
    log_info("worker stopping");
    FCGX_Free(&fcgi, 0);
    db_destroy(db);
    filetype_close(filetypes);
    return 0;
}
