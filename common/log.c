/* Logging: one line per message, timestamped on a terminal, syslog-style level prefix otherwise.
 * Never log secrets (passwords, overlay keys); callers pass only what may be seen. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"

static int log_level = LOG_LVL_INFO;
static const char *log_prefix = "slate";

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_prefix(const char *prefix) { log_prefix = prefix; }

int log_level_from_string(const char *s)
{
        static const struct { const char *name; int level; } map[] = {
                { "error", LOG_LVL_ERR }, { "warning", LOG_LVL_WARN }, { "warn", LOG_LVL_WARN },
                { "info", LOG_LVL_INFO }, { "debug", LOG_LVL_DEBUG },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcasecmp(s, map[i].name) == 0)
                        return map[i].level;
        return -EINVAL;
}

void log_msg(int level, const char *fmt, ...)
{
        if (level > log_level)
                return;
        int e = errno;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        const char *tag = level <= LOG_LVL_ERR ? "error: " : level == LOG_LVL_WARN ? "warning: " : "";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "<%d>%02d:%02d:%02d.%03ld %s[%d]: %s%s\n", level, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, log_prefix, (int)getpid(), tag, line);
        errno = e;
}

static char *escape(const char *s, char *out, size_t cap, bool keep_backslash)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 5 < cap; p++) {
                if (*p >= 0x20 && *p < 0x7f && (*p != '\\' || keep_backslash)) {
                        out[o++] = (char)*p;
                } else {
                        out[o++] = '\\';
                        out[o++] = 'x';
                        out[o++] = hex[*p >> 4];
                        out[o++] = hex[*p & 15];
                }
        }
        out[o] = 0;
        return out;
}

char *log_escape(const char *s, char *out, size_t cap) { return escape(s, out, cap, false); }
char *log_escape_line(const char *s, char *out, size_t cap) { return escape(s, out, cap, true); }
