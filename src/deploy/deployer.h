/* deployer.h - nnreg-deployer's loop: LISTEN on the deployment channels,
 * poll as a fallback, claim pending deploy tasks one at a time with
 * FOR UPDATE SKIP LOCKED and a lease, run the checks and materialize the
 * network, write the outcome only while still holding the claim.
 *
 * Two connections: one that LISTENs and never sits in a transaction, one
 * for claims and results (prepared statements, reconnected when dropped). */
#ifndef NNREG_DEPLOY_DEPLOYER_H
#define NNREG_DEPLOY_DEPLOYER_H

#include "util/config.h"

/* Runs until SIGTERM/SIGINT (finishing the task in hand).  On SIGHUP,
 * once the task in hand is done, reads the settings again from the
 * environment and argv (kept for that) and reconnects.  config is updated
 * in place.  Returns the process exit status. */
int deployer_run(nn_config_t *config, int argc, char **argv);

#endif
