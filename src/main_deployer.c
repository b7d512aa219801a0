/* nnreg-deployer: parses the settings and runs the deployment loop. */
#include <stdio.h>
#include <string.h>

#include "deploy/deployer.h"
#include "util/config.h"
#include "util/log.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nnreg-deployer [--setting=value ...]\n\n"
                   "Deploys networks: wakes on NOTIFY nnreg_deploy (and polls), claims pending\n"
                   "tasks with a lease, checks the network's files and lays it out for\n"
                   "TensorFlow Serving.  Several may run, on one host or several.\n"
                   "Settings (flag, environment variable):\n");
            config_usage(stdout);
            return 0;
        }
    }
    nn_config_t config;
    char errbuf[512];
    int first_arg;
    if (!config_load(&config, argc, argv, &first_arg, errbuf, sizeof(errbuf))) {
        fprintf(stderr, "nnreg-deployer: %s\n", errbuf);
        return 2;
    }
    if (first_arg < argc) {
        fprintf(stderr, "nnreg-deployer: unexpected argument \"%s\" (see --help)\n",
                argv[first_arg]);
        return 2;
    }
    log_init("nnreg-deployer", config.log_level);
    return deployer_run(&config, argc, argv);
}
