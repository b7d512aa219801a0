/* log.h - one line per event on stderr: time, level, program[pid], request id.
 * The level is checked before formatting.  The current request id is set by
 * the worker's accept loop (per-process, request-scoped) and cleared after. */
#ifndef NNREG_UTIL_LOG_H
#define NNREG_UTIL_LOG_H

#include <stdbool.h>

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

void log_init(const char *program, log_level_t level);
void log_set_level(log_level_t level);
/* Parses "debug", "info", "warn", "error"; false if unknown. */
bool log_level_parse(const char *name, log_level_t *out);
bool log_enabled(log_level_t level);
/* The request id prefixed to lines until cleared with NULL (copied). */
void log_set_request_id(const char *request_id);

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(LOG_LEVEL_INFO)) log_msg(LOG_LEVEL_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) do { if (log_enabled(LOG_LEVEL_WARN)) log_msg(LOG_LEVEL_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
