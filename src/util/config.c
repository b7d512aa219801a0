#include "util/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifndef NNREG_PKGDATADIR
#define NNREG_PKGDATADIR "/usr/local/share/nnreg"
#endif

typedef enum { SETTING_STRING, SETTING_INT, SETTING_OCTAL, SETTING_LOG_LEVEL } setting_type_t;

typedef struct setting {
    const char *name; /* flag name */
    const char *env;
    setting_type_t type;
    size_t offset; /* into nn_config_t */
    size_t size;   /* for strings: buffer size */
    const char *default_value;
    long long min, max;
    const char *help;
} setting_t;

#define STR(field) SETTING_STRING, offsetof(nn_config_t, field), sizeof(((nn_config_t *)0)->field)
#define NUM(field) offsetof(nn_config_t, field), 0

static const setting_t settings[] = {
    {"database-url", "NNREG_DATABASE_URL", STR(database_url), "", 0, 0,
     "libpq connection string or URI (empty: libpq's PG* variables)"},
    {"data-dir", "NNREG_DATA_DIR", STR(data_dir), "var/data", 0, 0,
     "blob store directory (blobs/sha256, tmp)"},
    {"deploy-dir", "NNREG_DEPLOY_DIR", STR(deploy_dir), "var/deploy", 0, 0,
     "where deployed networks are laid out for TensorFlow Serving"},
    {"listen", "NNREG_LISTEN", STR(listen), "var/run/nnreg-fcgi.sock", 0, 0,
     "FastCGI socket: a unix socket path, or host:port"},
    {"socket-group", "NNREG_SOCKET_GROUP", STR(socket_group), "", 0, 0,
     "group that owns the unix socket (the web server's), empty to keep ours"},
    {"socket-mode", "NNREG_SOCKET_MODE", SETTING_OCTAL, NUM(socket_mode), "0600", 0, 0777,
     "permission bits of the unix socket"},
    {"magic-file", "NNREG_MAGIC_FILE", STR(magic_file), NNREG_PKGDATADIR "/nnreg.magic.mgc", 0, 0,
     "compiled magic file naming the TensorFlow formats"},
    {"sql-dir", "NNREG_SQL_DIR", STR(sql_dir), NNREG_PKGDATADIR "/sql", 0, 0,
     "directory of numbered SQL migrations"},
    {"workers", "NNREG_WORKERS", SETTING_INT, NUM(workers), "0", 0, 256,
     "FastCGI worker processes (0: two per CPU)"},
    {"max-upload-bytes", "NNREG_MAX_UPLOAD_BYTES", SETTING_INT, NUM(max_upload_bytes),
     "2147483648", 1024, LLONG_MAX, "largest request body accepted"},
    {"deploy-poll-seconds", "NNREG_DEPLOY_POLL_SECONDS", SETTING_INT, NUM(deploy_poll_seconds), "5",
     1, 3600, "deployer: poll for pending tasks this often besides LISTEN/NOTIFY"},
    {"deploy-lease-seconds", "NNREG_DEPLOY_LEASE_SECONDS", SETTING_INT, NUM(deploy_lease_seconds),
     "30", 2, 86400, "deployer: a claimed task returns to the queue after this without news"},
    {"deploy-max-attempts", "NNREG_DEPLOY_MAX_ATTEMPTS", SETTING_INT, NUM(deploy_max_attempts), "3",
     1, 100, "deployer: claims of one task before it ends in error"},
    {"gc-grace-seconds", "NNREG_GC_GRACE_SECONDS", SETTING_INT, NUM(gc_grace_seconds), "3600", 60,
     315360000, "gc: blobs and temp files younger than this are never removed"},
    {"inference-keep-hours", "NNREG_INFERENCE_KEEP_HOURS", SETTING_INT, NUM(inference_keep_hours),
     "168", 1, 876000, "prune: finished inference tasks (and their results) are kept this long"},
    {"infer-max-request-bytes", "NNREG_INFER_MAX_REQUEST_BYTES", SETTING_INT,
     NUM(infer_max_request_bytes), "33554432", 1024, 268435456,
     "inference: largest request body, images included"},
    {"infer-max-pending", "NNREG_INFER_MAX_PENDING", SETTING_INT, NUM(infer_max_pending), "256", 1,
     1000000, "inference: pending inference tasks one organization may have (429 past it)"},
    {"infer-cache-bytes", "NNREG_INFER_CACHE_BYTES", SETTING_INT, NUM(infer_cache_bytes),
     "1073741824", 0, LLONG_MAX,
     "nnreg-inferd: memory for loaded models; least recently used ones are unloaded past it"},
    {"infer-poll-seconds", "NNREG_INFER_POLL_SECONDS", SETTING_INT, NUM(infer_poll_seconds), "5",
     1, 3600, "nnreg-inferd: poll for pending tasks this often besides LISTEN/NOTIFY"},
    {"infer-lease-seconds", "NNREG_INFER_LEASE_SECONDS", SETTING_INT, NUM(infer_lease_seconds),
     "60", 2, 86400, "nnreg-inferd: a claimed task returns to the queue after this without news"},
    {"infer-max-attempts", "NNREG_INFER_MAX_ATTEMPTS", SETTING_INT, NUM(infer_max_attempts), "2", 1,
     100, "nnreg-inferd: claims of one task before it ends in error"},
    {"infer-max-output-values", "NNREG_INFER_MAX_OUTPUT_VALUES", SETTING_INT,
     NUM(infer_max_output_values), "16777216", 1, 1073741824,
     "inference: float values one task may return (all requested tensors together)"},
    {"infer-sync-commit", "NNREG_INFER_SYNC_COMMIT", SETTING_INT, NUM(infer_sync_commit), "0", 0, 1,
     "inference: 1 makes a request's 201 wait for the WAL flush (0: a database crash may lose "
     "the last fraction of a second of requests)"},
    {"fetch-allow-private", "NNREG_FETCH_ALLOW_PRIVATE", SETTING_INT, NUM(fetch_allow_private), "0",
     0, 1, "image URLs: 1 also fetches from private, loopback and link-local addresses"},
    {"fetch-max-bytes", "NNREG_FETCH_MAX_BYTES", SETTING_INT, NUM(fetch_max_bytes), "20971520", 0,
     1073741824, "image URLs: largest image fetched, in bytes (0 disables URL sources)"},
    {"fetch-timeout-ms", "NNREG_FETCH_TIMEOUT_MS", SETTING_INT, NUM(fetch_timeout_ms), "10000", 100,
     600000, "image URLs: time allowed for the whole transfer"},
    {"log-level", "NNREG_LOG_LEVEL", SETTING_LOG_LEVEL, offsetof(nn_config_t, log_level), 0,
     "info", 0, 0, "debug, info, warn or error"},
};

/* Sets s from value.  Errors name the setting the way it was given: by its
 * flag when from_flag, else by its environment variable. */
static bool setting_apply(nn_config_t *cfg, const setting_t *s, const char *value, bool from_flag,
                          char *errbuf, size_t errlen)
{
    char *field = (char *)cfg + s->offset;
    char label[80];
    snprintf(label, sizeof(label), "%s%s", from_flag ? "--" : "", from_flag ? s->name : s->env);
    switch (s->type) {
    case SETTING_STRING:
        if (strlen(value) >= s->size) {
            snprintf(errbuf, errlen, "%s is too long (at most %zu bytes)", label, s->size - 1);
            return false;
        }
        strcpy(field, value);
        return true;
    case SETTING_INT:
    case SETTING_OCTAL: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, s->type == SETTING_OCTAL ? 8 : 10);
        if (errno || end == value || *end || v < s->min || v > s->max) {
            snprintf(errbuf, errlen, "%s must be %s between %lld and %lld, not \"%s\"", label,
                     s->type == SETTING_OCTAL ? "an octal number" : "an integer", s->min, s->max,
                     value);
            return false;
        }
        *(long long *)(void *)field = v;
        return true;
    }
    case SETTING_LOG_LEVEL:
        if (!log_level_parse(value, (log_level_t *)(void *)field)) {
            snprintf(errbuf, errlen, "%s must be debug, info, warn or error, not \"%s\"", label,
                     value);
            return false;
        }
        return true;
    }
    return false;
}

bool config_load(nn_config_t *cfg, int argc, char **argv, int *first_arg, char *errbuf,
                 size_t errlen)
{
    const size_t n = sizeof(settings) / sizeof(settings[0]);
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < n; i++) {
        const char *env = getenv(settings[i].env);
        if (!setting_apply(cfg, &settings[i], settings[i].default_value, false, errbuf, errlen))
            return false;
        if (env && *env && !setting_apply(cfg, &settings[i], env, false, errbuf, errlen))
            return false;
    }
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0)
            break;
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const setting_t *s = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(settings[k].name) == name_len && strncmp(settings[k].name, name, name_len) == 0)
                s = &settings[k];
        if (!s) {
            snprintf(errbuf, errlen, "unknown option %s (see --help)", arg);
            return false;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(errbuf, errlen, "option --%s needs a value", s->name);
                return false;
            }
            value = argv[++i];
        }
        if (!setting_apply(cfg, s, value, true, errbuf, errlen))
            return false;
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (first_arg)
        *first_arg = i;
    return true;
}

void config_usage(FILE *out)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        fprintf(out, "  --%-18s %-24s %s (default: \"%s\")\n", settings[i].name, settings[i].env,
                settings[i].help, settings[i].default_value);
}
