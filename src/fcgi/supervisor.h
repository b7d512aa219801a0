/* supervisor.h - nnreg-fcgi's parent process: opens the FastCGI socket,
 * keeps N persistent workers, restarts a worker that dies (with a back-off
 * when they die young), reloads on SIGHUP (new workers replace the old ones,
 * which finish their request first) and drains on SIGTERM/SIGINT. */
#ifndef NNREG_FCGI_SUPERVISOR_H
#define NNREG_FCGI_SUPERVISOR_H

#include "util/config.h"

/* argc/argv are kept to reload the settings on SIGHUP.  Returns the exit
 * status of the process. */
int supervisor_run(nn_config_t *config, int argc, char **argv);

#endif
