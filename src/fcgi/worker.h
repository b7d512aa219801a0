/* worker.h - one persistent FastCGI worker: process-lifetime resources
 * (PostgreSQL connection, libmagic), then the accept loop serving one
 * request at a time, each with its own arena. */
#ifndef NNREG_FCGI_WORKER_H
#define NNREG_FCGI_WORKER_H

#include "util/config.h"

/* Serves requests on listen_fd until SIGTERM (finishing the request in
 * flight).  Returns the process exit status. */
int worker_run(const nn_config_t *config, int listen_fd);

#endif
