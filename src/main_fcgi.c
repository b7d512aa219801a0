/* nnreg-fcgi: the FastCGI server.  Parses the settings and hands over to
 * the supervisor, or, when started by spawn-fcgi with a listening socket on
 * standard input, runs one worker on it. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fcgi/supervisor.h"
#include "fcgi/worker.h"
#include "image/fetch.h"
#include "util/config.h"
#include "util/log.h"

static bool stdin_is_listening_socket(void)
{
    int accepting = 0;
    socklen_t len = sizeof(accepting);
    return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nnreg-fcgi [--setting=value ...]\n\n"
                   "The nnreg FastCGI server: a supervisor keeping persistent workers on one\n"
                   "socket.  Under spawn-fcgi (a listening socket on standard input) it runs as\n"
                   "a single worker.  Settings (flag, environment variable):\n");
            config_usage(stdout);
            return 0;
        }
    }
    nn_config_t config;
    char errbuf[512];
    int first_arg;
    if (!config_load(&config, argc, argv, &first_arg, errbuf, sizeof(errbuf))) {
        fprintf(stderr, "nnreg-fcgi: %s\n", errbuf);
        return 2;
    }
    if (first_arg < argc) {
        fprintf(stderr, "nnreg-fcgi: unexpected argument \"%s\" (see --help)\n", argv[first_arg]);
        return 2;
    }
    log_init("nnreg-fcgi", config.log_level);
    /* Inference requests fetch URL sources: libcurl's global state is set
     * up once, before any worker is forked. */
    if (!fetch_global_init()) {
        log_error("libcurl cannot start");
        return 1;
    }
    if (stdin_is_listening_socket())
        return worker_run(&config, 0);
    return supervisor_run(&config, argc, argv);
}
