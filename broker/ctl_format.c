/* slatectl's human output: sizes, ages, times, table cells and aligned tables. Every string
 * that came from slated goes through sanitize() here before it can reach the terminal. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "broker/ctl_format.h"
#include "common/cleanup.h"
#include "common/util.h"

char *sanitize(const char *s)
{
        char *r = xstrdup(s ? s : "");
        for (unsigned char *p = (unsigned char *)r; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
        return r;
}

char *fmt_bytes(uint64_t v)
{
        static const char units[] = "KMGTPE";
        if (v < 1024)
                return xasprintf("%" PRIu64 "B", v);
        double d = (double)v;
        size_t u = 0;
        d /= 1024;
        while (d >= 1024 && u + 1 < sizeof units - 1) {
                d /= 1024;
                u++;
        }
        /* 2.3M, 23M, 512M; exact values without a decimal (2G, not 2.0G) */
        if (d < 9.95 && d != (double)(uint64_t)d)
                return xasprintf("%.1f%c", d, units[u]);
        return xasprintf("%.0f%c", d, units[u]);
}

/* Largest first: fmt_age, fmt_duration and fmt_seconds count in the same units. */
static const struct {
        int64_t secs;
        char name;
} time_units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };

/* The largest unit s holds at least once; seconds for s < 60. */
static size_t time_unit(int64_t s)
{
        size_t u = 0;
        while (time_units[u].secs > s && time_units[u].secs > 1)
                u++;
        return u;
}

char *fmt_age(int64_t s)
{
        if (s < 0)
                s = 0;
        size_t u = time_unit(s);
        return xasprintf("%" PRId64 "%c", s / time_units[u].secs, time_units[u].name);
}

char *fmt_duration(int64_t s)
{
        if (s < 0)
                s = 0;
        size_t u = time_unit(s);
        if (time_units[u].secs == 1)
                return xasprintf("%" PRId64 "s", s);
        return xasprintf("%" PRId64 "%c %" PRId64 "%c", s / time_units[u].secs, time_units[u].name,
                         s % time_units[u].secs / time_units[u + 1].secs, time_units[u + 1].name);
}

char *fmt_seconds(int64_t s)
{
        if (s <= 0)
                return xstrdup("0s");
        char buf[96];
        size_t n = 0;
        for (size_t u = 0; u < ELEMENTSOF(time_units); u++) {
                int64_t v = s / time_units[u].secs;
                s %= time_units[u].secs;
                if (v)
                        n += (size_t)snprintf(buf + n, sizeof buf - n, "%" PRId64 "%c", v, time_units[u].name);
        }
        return xstrdup(buf);
}

/* strftime with a literal format each, so the compiler checks them */
static char *fmt_local(int64_t t, bool seconds)
{
        time_t tt = (time_t)t;
        struct tm tm;
        char buf[32];
        if (!localtime_r(&tt, &tm) ||
            (seconds ? strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm)
                     : strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm)) == 0)
                return xasprintf("%" PRId64, t);
        return xstrdup(buf);
}

char *fmt_time(int64_t t)
{
        if (t <= 0)
                return xstrdup("-");
        return fmt_local(t, false);
}

char *fmt_time_s(int64_t t)
{
        return fmt_local(t, true);
}

char *cell(json_object *o, const char *key)
{
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return xstrdup("-");
        switch (json_object_get_type(v)) {
        case json_type_string:
                return json_object_get_string_len(v) ? sanitize(json_object_get_string(v)) : xstrdup("-");
        case json_type_int:
                return xasprintf("%" PRId64, json_object_get_int64(v));
        case json_type_boolean:
                return xstrdup(json_object_get_boolean(v) ? "yes" : "no");
        case json_type_array:
                return xasprintf("%zu", json_object_array_length(v));
        case json_type_null:
                return xstrdup("-");
        default:
                return sanitize(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
}

char *cell_bytes(json_object *o, const char *key)
{
        int64_t v;
        if (jsonx_get_int64(o, key, &v) < 0 || v < 0)
                return cell(o, key);
        return fmt_bytes((uint64_t)v);
}

char *cell_prefix(json_object *o, const char *key, size_t n)
{
        char *s = cell(o, key);
        if (strlen(s) > n)
                s[n] = 0;
        return s;
}

char *cell_seconds(json_object *o, const char *key)
{
        int64_t v;
        if (jsonx_get_int64(o, key, &v) < 0 || v < 0)
                return cell(o, key);
        return fmt_seconds(v);
}

char *cell_list(json_object *o, const char *key, const char *sep, const char *empty_text)
{
        json_object *a;
        if (!o || !json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
                return cell(o, key);
        size_t n = json_object_array_length(a);
        if (n == 0)
                return xstrdup(empty_text);
        char *r = xstrdup("");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                _cleanup_free_ char *s = json_object_is_type(v, json_type_string)
                                                 ? sanitize(json_object_get_string(v))
                                                 : sanitize(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
                char *nr = xasprintf("%s%s%s", r, i ? sep : "", s);
                free(r);
                r = nr;
        }
        return r;
}

void table_row(Table *t, ...)
{
        if (t->nrows == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 16;
                t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
                if (!t->cells)
                        abort();
        }
        va_list ap;
        va_start(ap, t);
        for (size_t i = 0; i < t->ncols; i++)
                t->cells[t->nrows * t->ncols + i] = va_arg(ap, char *);
        va_end(ap);
        t->nrows++;
}

void table_print(Table *t, FILE *f)
{
        _cleanup_free_ size_t *w = xmalloc0(t->ncols * sizeof(size_t));
        for (size_t i = 0; i < t->ncols; i++)
                w[i] = strlen(t->header[i]);
        for (size_t r = 0; r < t->nrows; r++)
                for (size_t i = 0; i < t->ncols; i++)
                        w[i] = MAX(w[i], strlen(t->cells[r * t->ncols + i]));
        for (size_t r = 0; r <= t->nrows; r++)
                for (size_t i = 0; i < t->ncols; i++) {
                        const char *s = r == 0 ? t->header[i] : t->cells[(r - 1) * t->ncols + i];
                        if (i + 1 < t->ncols)
                                fprintf(f, "%-*s  ", (int)w[i], s);
                        else
                                fprintf(f, "%s\n", s);
                }
}

void table_free(Table *t)
{
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        t->cells = NULL;
        t->nrows = t->cap = 0;
}

void kv(const char *key, char *value)
{
        printf("%-11s %s\n", key, value);
        free(value);
}

void print_json(json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
}
