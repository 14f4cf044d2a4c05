/* Logging to stderr (journald-friendly "<level>" prefixes when not a tty).
 * Report an error once, where it is detected; callers propagate the -errno. */
#pragma once
#include <errno.h>
#include <stddef.h>
#include "common/cleanup.h"

enum { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(int level);
int log_get_level(void);
int log_level_from_string(const char *s);
void log_set_prefix(const char *prefix);
void log_msg(int level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* A string from the network (a user, domain or host name) made safe for one log line: bytes
 * outside printable ASCII, and the backslash, as \xHH; cut to fit cap (at least 5). Returns out. */
char *log_escape(const char *s, char *out, size_t cap);
#define LOG_ESCAPED_MAX 200
/* The same for a line a child process wrote (a session's own log line, already escaped once):
 * the backslash is kept, so its \xHH stay readable; a child's newline or escape still cannot
 * reach the log raw. */
char *log_escape_line(const char *s, char *out, size_t cap);

/* Log and return the negative errno: `return log_error_errno(-r, "x: %s", strerror(-r));` */
#define log_error_errno(err, ...) ({ int _e = (err); log_error(__VA_ARGS__); _e < 0 ? _e : -_e; })
