#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Process-wide logging settings: set once at start-up (and on SIGHUP), and
 * the request id of the one request a worker serves at a time. */
static const char *log_program = "nnreg";
static log_level_t log_threshold = LOG_LEVEL_INFO;
static char log_request_id[64];

void log_init(const char *program, log_level_t level)
{
    log_program = program;
    log_threshold = level;
}

void log_set_level(log_level_t level)
{
    log_threshold = level;
}

bool log_level_parse(const char *name, log_level_t *out)
{
    static const struct { const char *name; log_level_t level; } levels[] = {
        {"debug", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},
        {"warn", LOG_LEVEL_WARN}, {"warning", LOG_LEVEL_WARN}, {"error", LOG_LEVEL_ERROR},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcasecmp(name, levels[i].name) == 0) {
            *out = levels[i].level;
            return true;
        }
    }
    return false;
}

bool log_enabled(log_level_t level)
{
    return level >= log_threshold;
}

void log_set_request_id(const char *request_id)
{
    if (!request_id) {
        log_request_id[0] = '\0';
        return;
    }
    snprintf(log_request_id, sizeof(log_request_id), "%s", request_id);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[4096];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%ld]%s%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(tv.tv_usec / 1000), names[level], log_program,
                     (long)getpid(), log_request_id[0] ? " req=" : "", log_request_id);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line so that lines of concurrent workers never mix. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
