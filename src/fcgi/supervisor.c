#include "fcgi/supervisor.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api/api.h"
#include "fcgi/worker.h"
#include "http/metrics.h"
#include "util/log.h"

#define MAX_WORKERS 256
#define DRAIN_SECONDS 60   /* a 1 GiB upload in flight may take a while */
#define YOUNG_DEATH_SECONDS 2

typedef struct worker_slot {
    pid_t pid;
    time_t started;
    bool retiring; /* replaced after a reload: not restarted when it exits */
} worker_slot_t;

/* Signal flags: set by handlers, acted upon by the loop. */
static volatile sig_atomic_t got_term, got_hup, got_chld;

static void on_signal(int sig)
{
    if (sig == SIGTERM || sig == SIGINT)
        got_term = 1;
    else if (sig == SIGHUP)
        got_hup = 1;
    else if (sig == SIGCHLD)
        got_chld = 1;
}

static bool is_unix_path(const char *listen)
{
    return strchr(listen, '/') != NULL || strchr(listen, ':') == NULL;
}

static int open_socket(const nn_config_t *cfg)
{
    if (!is_unix_path(cfg->listen))
        return FCGX_OpenSocket(cfg->listen, 128);
    /* Created with no access for anyone else, then opened to exactly the
     * group the settings name: the socket must never be reachable by
     * other local users, even for an instant (libfcgi trusts its peer). */
    unlink(cfg->listen);
    mode_t old = umask(0177);
    int fd = FCGX_OpenSocket(cfg->listen, 128);
    umask(old);
    if (fd < 0)
        return -1;
    if (cfg->socket_group[0]) {
        struct group *gr = getgrnam(cfg->socket_group);
        if (!gr || chown(cfg->listen, (uid_t)-1, gr->gr_gid) != 0) {
            log_error("cannot give the socket %s to group %s: %s", cfg->listen, cfg->socket_group,
                      gr ? strerror(errno) : "no such group");
            close(fd);
            return -1;
        }
    }
    if (chmod(cfg->listen, (mode_t)cfg->socket_mode) != 0) {
        log_error("cannot chmod the socket %s: %s", cfg->listen, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static pid_t spawn_worker(const nn_config_t *cfg, int listen_fd, metrics_t *metrics)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGCHLD, SIG_DFL);
        _exit(worker_serve(cfg, listen_fd, metrics));
    }
    return pid;
}

static int count_active(const worker_slot_t *slots, size_t n)
{
    int active = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].pid > 0 && !slots[i].retiring)
            active++;
    return active;
}

static void fill_workers(const nn_config_t *cfg, int listen_fd, metrics_t *metrics,
                         worker_slot_t *slots, size_t nslots, int wanted)
{
    for (size_t i = 0; i < nslots && count_active(slots, nslots) < wanted; i++) {
        if (slots[i].pid > 0)
            continue;
        pid_t pid = spawn_worker(cfg, listen_fd, metrics);
        if (pid < 0)
            return;
        slots[i].pid = pid;
        slots[i].started = time(NULL);
        slots[i].retiring = false;
    }
}

static int worker_count(const nn_config_t *cfg)
{
    if (cfg->workers > 0)
        return (int)(cfg->workers > MAX_WORKERS ? MAX_WORKERS : cfg->workers);
    /* Two per CPU: a worker spends most of a request waiting for
     * PostgreSQL (and a write for its commit's fsync), and one per CPU left
     * the CPUs idle meanwhile.  tests/bench/run measured 1, 2 and 4 workers
     * on 2 CPUs: 4 served about twice the reads and writes of 2
     * (docs/performance.md). */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n = n < 1 ? 2 : 2 * n;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* Reaps exited workers, counting those that were not asked to stop; true
 * if one died young (so restarts back off). */
static bool reap(worker_slot_t *slots, size_t nslots, metrics_t *metrics)
{
    bool young = false;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nslots; i++) {
            if (slots[i].pid != pid)
                continue;
            if (!slots[i].retiring) {
                metrics_count_worker_exit(metrics);
                if (WIFSIGNALED(status))
                    log_warn("worker %ld killed by signal %d; restarting it", (long)pid,
                             WTERMSIG(status));
                else
                    log_warn("worker %ld exited with status %d; restarting it", (long)pid,
                             WEXITSTATUS(status));
                if (time(NULL) - slots[i].started < YOUNG_DEATH_SECONDS)
                    young = true;
            }
            slots[i].pid = 0;
        }
    }
    return young;
}

int supervisor_run(nn_config_t *cfg, int argc, char **argv)
{
    int listen_fd = open_socket(cfg);
    if (listen_fd < 0) {
        log_error("cannot listen on %s: %s", cfg->listen, strerror(errno));
        return 1;
    }
    /* Mapped before the first fork: every worker, and every one started
     * later to replace another, shares these counters. */
    char metrics_err[256];
    metrics_t *metrics = metrics_create(api_routes, api_nroutes, metrics_err, sizeof(metrics_err));
    if (!metrics) {
        log_error("%s", metrics_err);
        close(listen_fd);
        if (is_unix_path(cfg->listen))
            unlink(cfg->listen);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Signals are blocked except inside sigsuspend, so none is lost
     * between a check of the flags and the wait. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &waitmask);

    worker_slot_t slots[MAX_WORKERS * 2];
    memset(slots, 0, sizeof(slots));
    size_t nslots = sizeof(slots) / sizeof(slots[0]);
    int wanted = worker_count(cfg);
    log_info("listening on %s with %d workers", cfg->listen, wanted);
    fill_workers(cfg, listen_fd, metrics, slots, nslots, wanted);

    while (!got_term) {
        sigsuspend(&waitmask);
        if (got_chld) {
            got_chld = 0;
            if (reap(slots, nslots, metrics) && !got_term) {
                /* Workers dying as soon as they start (bad settings, a
                 * crash on a poisoned request): do not spin. */
                sleep(1);
            }
        }
        if (got_hup) {
            got_hup = 0;
            nn_config_t fresh;
            char errbuf[512];
            if (!config_load(&fresh, argc, argv, NULL, errbuf, sizeof(errbuf))) {
                log_error("reload refused, keeping the running settings: %s", errbuf);
            } else {
                if (strcmp(fresh.listen, cfg->listen) != 0)
                    log_warn("reload: a new listen address takes a restart; keeping %s",
                             cfg->listen);
                memcpy(fresh.listen, cfg->listen, sizeof(fresh.listen));
                *cfg = fresh;
                log_set_level(cfg->log_level);
                wanted = worker_count(cfg);
                log_info("reloading: replacing workers (%d wanted)", wanted);
                for (size_t i = 0; i < nslots; i++) {
                    if (slots[i].pid > 0 && !slots[i].retiring) {
                        slots[i].retiring = true;
                        kill(slots[i].pid, SIGTERM);
                    }
                }
            }
        }
        if (!got_term)
            fill_workers(cfg, listen_fd, metrics, slots, nslots, wanted);
    }

    log_info("draining: waiting for workers to finish their requests");
    for (size_t i = 0; i < nslots; i++)
        if (slots[i].pid > 0) {
            slots[i].retiring = true;
            kill(slots[i].pid, SIGTERM);
        }
    sigprocmask(SIG_SETMASK, &waitmask, NULL);
    time_t deadline = time(NULL) + DRAIN_SECONDS;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            break;
        if (pid > 0)
            continue;
        if (time(NULL) >= deadline) {
            log_warn("drain timeout: killing the remaining workers");
            for (size_t i = 0; i < nslots; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGKILL);
            while (waitpid(-1, &status, 0) > 0)
                ;
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    metrics_destroy(metrics);
    close(listen_fd);
    if (is_unix_path(cfg->listen))
        unlink(cfg->listen);
    log_info("stopped");
    return 0;
}
