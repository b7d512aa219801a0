/* nnreg-inferd: parses the settings and runs the inference loop. */
#include <stdio.h>
#include <string.h>

#include "infer/daemon.h"
#include "infer/engine.h"
#include "util/config.h"
#include "util/log.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nnreg-inferd [--setting=value ...]\n\n"
                   "Runs inference tasks: wakes on NOTIFY nnreg_inference (and polls), claims\n"
                   "pending tasks with a lease, runs the deployed network on the request's\n"
                   "images and writes the tensors asked for.  Keeps recently used networks\n"
                   "loaded.  Several may run, on one host or several sharing the deploy dir.\n"
                   "Settings (flag, environment variable):\n");
            config_usage(stdout);
            return 0;
        }
    }
    /* Before anything else: the process may start again from here. */
    infer_blas_reexec(argv, true);
    nn_config_t config;
    char errbuf[512];
    int first_arg;
    if (!config_load(&config, argc, argv, &first_arg, errbuf, sizeof(errbuf))) {
        fprintf(stderr, "nnreg-inferd: %s\n", errbuf);
        return 2;
    }
    if (first_arg < argc) {
        fprintf(stderr, "nnreg-inferd: unexpected argument \"%s\" (see --help)\n",
                argv[first_arg]);
        return 2;
    }
    log_init("nnreg-inferd", config.log_level);
    return inferd_run(&config);
}
