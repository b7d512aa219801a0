/* config.h - process settings, from a static table of {name, env, type,
 * default}: each setting comes from its environment variable and may be
 * overridden by a --name=value flag.  Loaded at start-up and again on SIGHUP
 * (by the supervisor loop, never from the signal handler). */
#ifndef NNREG_UTIL_CONFIG_H
#define NNREG_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/log.h"

typedef struct nn_config {
    char database_url[1024];     /* libpq connection string (NNREG_DATABASE_URL) */
    char data_dir[1024];         /* blob store root: blobs/, tmp/ (NNREG_DATA_DIR) */
    char deploy_dir[1024];       /* TF Serving layout root (NNREG_DEPLOY_DIR) */
    char listen[1024];           /* unix socket path or host:port (NNREG_LISTEN) */
    char socket_group[128];      /* group given the unix socket, "" keeps ours */
    char magic_file[1024];       /* compiled project magic file */
    char sql_dir[1024];          /* migrations directory */
    long long workers;           /* 0: one per CPU */
    long long max_upload_bytes;  /* request body limit */
    long long socket_mode;       /* unix socket permission bits */
    long long deploy_poll_seconds;  /* deployer: poll interval beside LISTEN */
    long long deploy_lease_seconds; /* deployer: how long a claim holds */
    long long deploy_max_attempts;  /* deployer: claims before a task fails */
    long long gc_grace_seconds;     /* nnreg-admin gc: age below which nothing is removed */
    long long inference_keep_hours; /* nnreg-admin prune: finished inference tasks kept */
    /* Inference (POST /networks/{id}/inference and nnreg-inferd). */
    long long infer_max_request_bytes; /* body of one inference request */
    long long infer_max_pending;       /* pending inference tasks per organization */
    long long infer_cache_bytes;       /* nnreg-inferd: loaded models kept, in bytes */
    long long infer_poll_seconds;      /* nnreg-inferd: poll interval beside LISTEN */
    long long infer_lease_seconds;     /* nnreg-inferd: how long a claim holds */
    long long infer_max_attempts;      /* nnreg-inferd: claims before a task fails */
    long long infer_max_output_values; /* values returned by one inference */
    long long infer_sync_commit;       /* 1: inference requests commit durably */
    long long fetch_allow_private;  /* image URLs: 1 allows private/loopback/link-local */
    long long fetch_max_bytes;      /* image URLs: largest body fetched */
    long long fetch_timeout_ms;     /* image URLs: whole transfer */
    log_level_t log_level;
} nn_config_t;

/* Fills cfg from defaults, then the environment, then the flags in
 * argv[1..] of the form --name=value (or --name value).  Stops at the first
 * argument that is not a flag and stores its index in *first_arg.
 * On a bad value writes a one-line message into errbuf and returns false. */
bool config_load(nn_config_t *cfg, int argc, char **argv, int *first_arg, char *errbuf,
                 size_t errlen) __attribute__((warn_unused_result));

/* Writes the settings table (flag, variable, default, meaning) for --help. */
void config_usage(FILE *out);

#endif
