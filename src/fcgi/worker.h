/* worker.h - one persistent FastCGI worker: process-lifetime resources
 * (PostgreSQL connection, libmagic), then the accept loop serving one
 * request at a time, each with its own arena. */
#ifndef NNREG_FCGI_WORKER_H
#define NNREG_FCGI_WORKER_H

#include "http/metrics.h"
#include "util/config.h"

/* Serves requests on listen_fd until SIGTERM (finishing the request in
 * flight), counting each in metrics: the table the supervisor created
 * before forking, shared with the other workers (borrowed, not unmapped).
 * Returns the process exit status. */
int worker_serve(const nn_config_t *config, int listen_fd, metrics_t *metrics);

/* worker_serve with a metrics table of its own: a worker started alone, by
 * spawn-fcgi. */
int worker_run(const nn_config_t *config, int listen_fd);

#endif
