/* slatectl: the administrator's command line, a thin client of slated's control API
 * (docs/control-api.md). One request per run over the control socket; it keeps no state
 * and never touches slated's files, so anything it can do, slate-web can do too. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/util.h"

#define DEFAULT_SOCKET "/run/slate/control.sock"
/* A reply is one line; the biggest honest one (desktop.list on a large host) is far below this.
 * Anything longer is refused rather than buffered without bound. */
#define RESPONSE_MAX (16u << 20)
/* slated closes the connection on a longer request line; say so before sending. */
#define REQUEST_MAX (64u << 10)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };
enum { PARSE_OK, PARSE_HELP, PARSE_USAGE };

typedef struct Ctl {
        const char *socket_path;      /* --socket; NULL: environment, then the default */
        bool json;
        int64_t id;
        const struct Command *cmd;    /* the command being run, for messages */
        /* progress display on stderr */
        bool tty;
        bool bar_shown;
        char step[64];
} Ctl;

typedef struct Command {
        const char *group;            /* "image", "pool", "desktop", or NULL */
        const char *name;
        const char *synopsis;         /* arguments after "slatectl GROUP NAME" */
        const char *help;             /* description and options, shown by --help */
        int (*run)(Ctl *c, int argc, char **argv);
} Command;

/* One option of a command: a flag (value == NULL) or an option taking a value. */
typedef struct Opt {
        const char *name;             /* "--warm" */
        const char **value;
        bool *flag;
} Opt;

static void errorf(const char *fmt, ...) _printf_(1, 2);
static void errorf(const char *fmt, ...)
{
        va_list ap;
        fputs("slatectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- text helpers ---- */

/* Copy s with control characters replaced, so a reply can never drive the terminal. */
static char *sanitize(const char *s)
{
        char *r = xstrdup(s ? s : "");
        for (unsigned char *p = (unsigned char *)r; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
        return r;
}

static char *fmt_bytes(uint64_t v)
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

static char *fmt_age(int64_t s)
{
        if (s < 0)
                s = 0;
        if (s < 60)
                return xasprintf("%" PRId64 "s", s);
        if (s < 3600)
                return xasprintf("%" PRId64 "m", s / 60);
        if (s < 86400)
                return xasprintf("%" PRId64 "h", s / 3600);
        return xasprintf("%" PRId64 "d", s / 86400);
}

static char *fmt_duration(int64_t s)
{
        if (s < 0)
                s = 0;
        if (s < 60)
                return xasprintf("%" PRId64 "s", s);
        if (s < 3600)
                return xasprintf("%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
        if (s < 86400)
                return xasprintf("%" PRId64 "h %" PRId64 "m", s / 3600, s % 3600 / 60);
        return xasprintf("%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
}

static char *fmt_time(int64_t t)
{
        if (t <= 0)
                return xstrdup("-");
        time_t tt = (time_t)t;
        struct tm tm;
        char buf[32];
        if (!localtime_r(&tt, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm) == 0)
                return xasprintf("%" PRId64, t);
        return xstrdup(buf);
}

/* Any JSON field as a table cell: strings sanitized, null or missing as "-". */
static char *cell(json_object *o, const char *key)
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

static char *cell_bytes(json_object *o, const char *key)
{
        int64_t v;
        if (jsonx_get_int64(o, key, &v) < 0 || v < 0)
                return cell(o, key);
        return fmt_bytes((uint64_t)v);
}

static char *cell_prefix(json_object *o, const char *key, size_t n)
{
        char *s = cell(o, key);
        if (strlen(s) > n)
                s[n] = 0;
        return s;
}

/* ---- tables: aligned columns, a header row, two spaces between columns ---- */

typedef struct Table {
        size_t ncols, nrows, cap;
        const char *const *header;
        char **cells;                 /* nrows * ncols, owned */
} Table;

static void table_row(Table *t, ...)
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

static void table_print(Table *t, FILE *f)
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

static void table_free(Table *t)
{
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        t->cells = NULL;
        t->nrows = t->cap = 0;
}

/* "key:  value" lines for one object; value is owned. */
static void kv(const char *key, char *value)
{
        printf("%-10s %s\n", key, value);
        free(value);
}

/* ---- progress events ---- */

static void progress_clear(Ctl *c)
{
        if (c->bar_shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                c->bar_shown = false;
        }
}

static void progress_show(Ctl *c, json_object *ev)
{
        _cleanup_free_ char *step = sanitize(jsonx_string_or(ev, "step", "working"));
        int64_t pct = jsonx_int_or(ev, "percent", -1);
        if (pct > 100)
                pct = 100;

        if (!c->tty) {
                /* a log, not an animation: one line when a step starts */
                if (strncmp(c->step, step, sizeof c->step - 1) != 0) {
                        snprintf(c->step, sizeof c->step, "%s", step);
                        fprintf(stderr, "%s...\n", step);
                }
                return;
        }
        struct winsize ws;
        int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
        int width = MIN(40, cols - 24);
        if (strlen(step) > 14)
                step[14] = 0;
        fprintf(stderr, "\r\033[K%-14s", step);
        if (pct >= 0 && width >= 10) {
                int fill = (int)(pct * width / 100);
                fputs(" [", stderr);
                for (int i = 0; i < width; i++)
                        fputc(i < fill ? '#' : '-', stderr);
                fprintf(stderr, "] %3d%%", (int)pct);
        } else if (pct >= 0)
                fprintf(stderr, " %3d%%", (int)pct);
        fflush(stderr);
        c->bar_shown = true;
}

/* ---- the control socket ---- */

typedef struct Conn {
        int fd;
        char *buf;
        size_t len, cap;
        size_t scanned;               /* bytes already searched for '\n' */
        size_t consumed;              /* bytes of the line handed out last */
} Conn;

/* Next line (without '\n', NUL-terminated, valid until the next call). -EMSGSIZE if a line
 * passes RESPONSE_MAX, -ENOMSG on end of stream. */
static int conn_read_line(Conn *k, char **ret, size_t *ret_len)
{
        if (k->consumed) {
                memmove(k->buf, k->buf + k->consumed, k->len - k->consumed);
                k->len -= k->consumed;
                k->consumed = k->scanned = 0;
        }
        for (;;) {
                char *nl = k->len > k->scanned ? memchr(k->buf + k->scanned, '\n', k->len - k->scanned) : NULL;
                if (nl) {
                        size_t n = (size_t)(nl - k->buf);
                        *nl = 0;
                        if (n > 0 && k->buf[n - 1] == '\r')
                                k->buf[--n] = 0;
                        k->consumed = (size_t)(nl - k->buf) + 1;
                        *ret = k->buf;
                        *ret_len = n;
                        return 0;
                }
                k->scanned = k->len;
                if (k->len > RESPONSE_MAX)
                        return -EMSGSIZE;
                if (k->len + 1 >= k->cap) {
                        size_t ncap = MIN(k->cap ? k->cap * 2 : 65536, (size_t)RESPONSE_MAX + 2);
                        char *nb = realloc(k->buf, ncap);
                        if (!nb)
                                return -ENOMEM;
                        k->buf = nb;
                        k->cap = ncap;
                }
                ssize_t r = recv(k->fd, k->buf + k->len, k->cap - k->len - 1, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ENOMSG;
                k->len += (size_t)r;
        }
}

static void conn_freep(Conn *k)
{
        free(k->buf);
}

static int send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

static const char *socket_path(Ctl *c)
{
        if (c->socket_path)
                return c->socket_path;
        const char *e = getenv("SLATE_CONTROL_SOCKET");
        return e && *e ? e : DEFAULT_SOCKET;
}

static int ctl_connect(Ctl *c)
{
        const char *path = socket_path(c);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path) {
                errorf("cannot connect to %s: socket path too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                errorf("socket: %s", strerror(errno));
                return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                errorf("cannot connect to %s: %s (%s)", path, strerror(e),
                       e == EACCES ? "are you root or in slated's admin group?" : "is slated running?");
                return -e;
        }
        return fd;
}

/* Parse one line as a JSON object; NULL if it is anything else. */
static json_object *parse_line(const char *line, size_t n)
{
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        json_object *o = json_tokener_parse_ex(tok, line, (int)n);
        bool whole = o && json_tokener_get_error(tok) == json_tokener_success &&
                     json_tokener_get_parse_end(tok) == n;
        json_tokener_free(tok);
        if (!whole || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Send {id, cmd, args} (args consumed) and wait for the answer with our id, showing progress
 * events on the way. Returns an exit code; on EXIT_OK *ret_result holds a reference. */
static int ctl_call(Ctl *c, const char *cmd, json_object *args, json_object **ret_result)
{
        _cleanup_json_ json_object *req = json_object_new_object();
        json_object_object_add(req, "id", json_object_new_int64(c->id));
        json_object_object_add(req, "cmd", json_object_new_string(cmd));
        json_object_object_add(req, "args", args ? args : json_object_new_object());
        size_t n;
        const char *text = json_object_to_json_string_length(
                req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (n + 1 > REQUEST_MAX) {
                errorf("request too large (%zu bytes, slated accepts %u)", n + 1, REQUEST_MAX);
                return EXIT_USAGE;
        }
        _cleanup_free_ char *line = xasprintf("%s\n", text);

        _cleanup_close_ int fd = ctl_connect(c);
        if (fd < 0)
                return EXIT_USAGE;
        int r = send_all(fd, line, n + 1);
        if (r < 0) {
                errorf("%s: sending request: %s", socket_path(c), strerror(-r));
                return EXIT_USAGE;
        }
        /* No shutdown(SHUT_WR) here: slated drops a connection at end of input, answer or not. */

        _cleanup_(conn_freep) Conn k = { .fd = fd };
        for (;;) {
                char *l = NULL;
                size_t ln = 0;
                r = conn_read_line(&k, &l, &ln);
                if (r < 0) {
                        progress_clear(c);
                        if (r == -ENOMSG)
                                errorf("slated closed the connection without answering "
                                       "(see its log; is your user allowed to use %s?)", socket_path(c));
                        else if (r == -EMSGSIZE)
                                errorf("reply from slated longer than %u bytes, refusing it", RESPONSE_MAX);
                        else
                                errorf("reading from %s: %s", socket_path(c), strerror(-r));
                        return EXIT_USAGE;
                }
                if (ln == 0)
                        continue;
                _cleanup_json_ json_object *o = parse_line(l, ln);
                if (!o) {
                        progress_clear(c);
                        errorf("malformed reply from slated (not a JSON object)");
                        return EXIT_USAGE;
                }
                int64_t id;
                bool ours = jsonx_get_int64(o, "id", &id) == 0 && id == c->id;
                json_object *ok = NULL;
                json_object_object_get_ex(o, "ok", &ok);
                /* An answer without an id (or id 0: slated could not read ours) can only be about
                 * our single request; anything else not ours is skipped. */
                if (!ours && !(ok && jsonx_int_or(o, "id", 0) == 0 && !json_object_object_get_ex(o, "event", NULL)))
                        continue;
                if (json_object_object_get_ex(o, "event", NULL)) {
                        if (strcmp(jsonx_string_or(o, "event", ""), "progress") == 0)
                                progress_show(c, o);
                        continue;
                }
                progress_clear(c);
                if (!ok || !json_object_is_type(ok, json_type_boolean)) {
                        errorf("malformed reply from slated (no \"ok\")");
                        return EXIT_USAGE;
                }
                if (!json_object_get_boolean(ok)) {
                        _cleanup_free_ char *msg = sanitize(jsonx_string_or(o, "error",
                                                            jsonx_string_or(o, "errno", "request failed")));
                        errorf("%s", msg);
                        return EXIT_FAIL;
                }
                json_object *res = NULL;
                json_object_object_get_ex(o, "result", &res);
                *ret_result = json_object_get(res);
                return EXIT_OK;
        }
}

static void print_json(json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- argument parsing ---- */

static void usage_line(const Command *cmd, FILE *f)
{
        if (cmd->group)
                fprintf(f, "usage: slatectl %s %s%s%s\n", cmd->group, cmd->name, *cmd->synopsis ? " " : "",
                        cmd->synopsis);
        else
                fprintf(f, "usage: slatectl %s%s%s\n", cmd->name, *cmd->synopsis ? " " : "", cmd->synopsis);
}

static int usage_error(Ctl *c, const char *fmt, ...) _printf_(2, 3);
static int usage_error(Ctl *c, const char *fmt, ...)
{
        va_list ap;
        if (c->cmd->group)
                fprintf(stderr, "slatectl: %s %s: ", c->cmd->group, c->cmd->name);
        else
                fprintf(stderr, "slatectl: %s: ", c->cmd->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        usage_line(c->cmd, stderr);
        return EXIT_USAGE;
}

/* Options may come before, between or after the positional arguments; "--" ends them.
 * --json, --socket and --help are accepted by every command. */
static int args_parse(Ctl *c, int argc, char **argv, const Opt *opts, char **pos, int npos_min, int npos_max)
{
        int npos = 0;
        bool dashdash = false;
        for (int i = 0; i < argc; i++) {
                char *a = argv[i];
                if (dashdash || a[0] != '-' || a[1] == 0) {
                        if (npos == npos_max) {
                                usage_error(c, "unexpected argument \"%s\"", a);
                                return PARSE_USAGE;
                        }
                        pos[npos++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0) {
                        dashdash = true;
                        continue;
                }
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        usage_line(c->cmd, stdout);
                        fputs(c->cmd->help, stdout);
                        return PARSE_HELP;
                }
                if (strcmp(a, "--json") == 0) {
                        c->json = true;
                        continue;
                }
                char *eq = strchr(a, '=');
                size_t nl = eq ? (size_t)(eq - a) : strlen(a);
                const char **dest = NULL;
                bool *flag = NULL, known = false;
                if (nl == 8 && strncmp(a, "--socket", 8) == 0) {
                        dest = &c->socket_path;
                        known = true;
                }
                for (const Opt *o = opts; o && o->name && !known; o++)
                        if (strlen(o->name) == nl && strncmp(a, o->name, nl) == 0) {
                                dest = o->value;
                                flag = o->flag;
                                known = true;
                        }
                if (!known) {
                        usage_error(c, "unknown option %.*s", (int)nl, a);
                        return PARSE_USAGE;
                }
                if (flag) {
                        if (eq) {
                                usage_error(c, "option %.*s takes no value", (int)nl, a);
                                return PARSE_USAGE;
                        }
                        *flag = true;
                        continue;
                }
                if (eq)
                        *dest = eq + 1;
                else if (i + 1 < argc)
                        *dest = argv[++i];
                else {
                        usage_error(c, "option %s needs a value", a);
                        return PARSE_USAGE;
                }
        }
        if (npos < npos_min) {
                usage_error(c, "missing argument");
                return PARSE_USAGE;
        }
        return PARSE_OK;
}

#define PARSE_OR_RETURN(...)                                                     \
        do {                                                                     \
                int _p = args_parse(__VA_ARGS__);                                \
                if (_p != PARSE_OK)                                              \
                        return _p == PARSE_HELP ? EXIT_OK : EXIT_USAGE;          \
        } while (0)

/* Add a numeric option to args; 0 if absent or added, else a usage error was printed. */
static int add_uint(Ctl *c, json_object *args, const char *key, const char *opt, const char *val)
{
        unsigned v;
        if (!val)
                return 0;
        if (parse_uint(val, INT_MAX, &v) < 0)
                return usage_error(c, "%s: expected a number, got \"%s\"", opt, val);
        json_object_object_add(args, key, json_object_new_int64(v));
        return 0;
}

static int add_size(Ctl *c, json_object *args, const char *key, const char *opt, const char *val)
{
        uint64_t v;
        if (!val)
                return 0;
        if (parse_size(val, &v) < 0 || v > INT64_MAX)
                return usage_error(c, "%s: expected a size such as 512M or 2G, got \"%s\"", opt, val);
        json_object_object_add(args, key, json_object_new_int64((int64_t)v));
        return 0;
}

static int add_overlay(Ctl *c, json_object *args, const char *val)
{
        if (!val)
                return 0;
        if (strcmp(val, "encrypted") && strcmp(val, "ram") && strcmp(val, "plain"))
                return usage_error(c, "--overlay: expected encrypted, ram or plain, got \"%s\"", val);
        json_object_object_add(args, "overlay", json_object_new_string(val));
        return 0;
}

/* "3" or "v3" */
static int parse_version(Ctl *c, const char *s, json_object *args)
{
        unsigned v;
        if ((s[0] == 'v' || s[0] == 'V') && s[1])
                s++;
        if (parse_uint(s, INT_MAX, &v) < 0 || v == 0)
                return usage_error(c, "expected a version number such as 3 or v3, got \"%s\"", s);
        json_object_object_add(args, "version", json_object_new_int64(v));
        return 0;
}

static json_object *args_name(const char *name)
{
        json_object *a = json_object_new_object();
        json_object_object_add(a, "name", json_object_new_string(name));
        return a;
}

/* ---- commands ---- */

static int cmd_status(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "status", NULL, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        kv("version:", cell(res, "version"));
        const char *reason = jsonx_string_or(res, "accel_reason", NULL);
        if (reason && *reason) {
                _cleanup_free_ char *a = cell(res, "accel"), *why = sanitize(reason);
                kv("accel:", xasprintf("%s (%s)", a, why));
        } else
                kv("accel:", cell(res, "accel"));
        int64_t up;
        kv("uptime:", jsonx_get_int64(res, "uptime_s", &up) == 0 ? fmt_duration(up) : cell(res, "uptime_s"));
        kv("pools:", cell(res, "pools"));
        kv("desktops:", cell(res, "desktops"));
        return EXIT_OK;
}

static void print_version_line(json_object *v, const char *what, bool say_current)
{
        _cleanup_free_ char *name = cell(v, "name"), *ver = cell(v, "version"), *fmt = cell(v, "format"),
                            *size = cell_bytes(v, "size"), *sha = cell_prefix(v, "sha256", 12);
        bool cur = false;
        if (say_current)
                jsonx_get_bool(v, "current", &cur);
        printf("%s:v%s %s (%s, %s, sha256 %s)%s\n", name, ver, what, fmt, size, sha, cur ? ", current" : "");
}

static int abs_path(const char *opt, const char *in, char **ret)
{
        char *p = realpath(in, NULL);
        if (!p) {
                errorf("%s%s%s: %s", opt ? opt : "", opt ? " " : "", in, strerror(errno));
                return EXIT_FAIL;
        }
        *ret = p;
        return EXIT_OK;
}

static int cmd_image_publish(Ctl *c, int argc, char **argv)
{
        const char *kernel = NULL, *initrd = NULL, *cmdline = NULL;
        bool current = false;
        const Opt opts[] = {
                { "--kernel", &kernel, NULL },
                { "--initrd", &initrd, NULL },
                { "--cmdline", &cmdline, NULL },
                { "--current", NULL, &current },
                {},
        };
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, opts, pos, 2, 2);
        if ((initrd || cmdline) && !kernel)
                return usage_error(c, "--initrd and --cmdline need --kernel");

        _cleanup_free_ char *path = NULL, *k = NULL, *i = NULL;
        int r;
        if ((r = abs_path(NULL, pos[1], &path)) != EXIT_OK ||
            (kernel && (r = abs_path("--kernel", kernel, &k)) != EXIT_OK) ||
            (initrd && (r = abs_path("--initrd", initrd, &i)) != EXIT_OK))
                return r;
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "path", json_object_new_string(path));
        if (k)
                json_object_object_add(args, "kernel", json_object_new_string(k));
        if (i)
                json_object_object_add(args, "initrd", json_object_new_string(i));
        if (cmdline)
                json_object_object_add(args, "cmdline", json_object_new_string(cmdline));
        if (current)
                json_object_object_add(args, "current", json_object_new_boolean(true));

        _cleanup_json_ json_object *res = NULL;
        r = ctl_call(c, "image.publish", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_version_line(res, "published", true);
        return EXIT_OK;
}

static int cmd_image_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.list", NULL, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        static const char *const hdr[] = { "NAME", "CURRENT", "VERSIONS", "LATEST" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *o = json_object_array_get_idx(res, j);
                table_row(&t, cell(o, "name"), cell(o, "current"), cell(o, "versions"), cell(o, "latest"));
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

static int cmd_image_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.show", args_name(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        static const char *const hdr[] = { "VER",    "CURRENT", "STATE",   "FORMAT",  "SIZE",
                                           "SHA256", "BOOT",    "CREATED", "DESKTOPS" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        json_object *vs = NULL;
        json_object_object_get_ex(res, "versions", &vs);
        size_t n = json_object_is_type(vs, json_type_array) ? json_object_array_length(vs) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(vs, j);
                table_row(&t, cell(v, "version"), cell(v, "current"), cell(v, "state"), cell(v, "format"),
                          cell_bytes(v, "size"), cell_prefix(v, "sha256", 12), cell(v, "boot"),
                          fmt_time(jsonx_int_or(v, "created", 0)), cell(v, "desktops"));
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

static int image_version_cmd(Ctl *c, int argc, char **argv, const char *api, const char *what)
{
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 2, 2);
        json_object *args = args_name(pos[0]);
        if (parse_version(c, pos[1], args) != 0) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, api, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_version_line(res, what, strcmp(api, "image.current") != 0);
        return EXIT_OK;
}

static int cmd_image_current(Ctl *c, int argc, char **argv)
{
        return image_version_cmd(c, argc, argv, "image.current", "is now current");
}

static int cmd_image_retire(Ctl *c, int argc, char **argv)
{
        return image_version_cmd(c, argc, argv, "image.retire", "retired");
}

static int cmd_image_verify(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.verify", args_name(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        static const char *const hdr[] = { "VER", "SHA256", "RESULT" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0, bad = 0;
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(res, j);
                bool ok = false;
                jsonx_get_bool(v, "ok", &ok);   /* missing or not a bool counts as a mismatch */
                bad += !ok;
                table_row(&t, cell(v, "version"), cell_prefix(v, "sha256", 12), xstrdup(ok ? "ok" : "MISMATCH"));
        }
        if (c->json)
                print_json(res);
        else
                table_print(&t, stdout);
        table_free(&t);
        if (bad) {
                _cleanup_free_ char *name = sanitize(pos[0]);
                fflush(stdout);
                errorf("image %s: %zu of %zu versions do not match their checksum", name, bad, n);
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

static void print_pool(json_object *p)
{
        kv("name:", cell(p, "name"));
        kv("image:", cell(p, "image"));
        kv("warm:", cell(p, "warm"));
        kv("max:", cell(p, "max"));
        kv("memory:", cell_bytes(p, "memory"));
        kv("vcpus:", cell(p, "vcpus"));
        kv("overlay:", cell(p, "overlay"));
        _cleanup_free_ char *ready = cell(p, "ready"), *booting = cell(p, "booting"),
                            *assigned = cell(p, "assigned"), *total = cell(p, "total");
        kv("desktops:", xasprintf("%s ready, %s booting, %s assigned, %s total", ready, booting, assigned, total));
        bool deleting = false;
        if (jsonx_get_bool(p, "deleting", &deleting) == 0 && deleting)
                kv("state:", xstrdup("being deleted"));
}

static int pool_opts_to_args(Ctl *c, json_object *args, const char *warm, const char *max, const char *memory,
                             const char *vcpus, const char *overlay)
{
        if (add_uint(c, args, "warm", "--warm", warm) || add_uint(c, args, "max", "--max", max) ||
            add_size(c, args, "memory", "--memory", memory) || add_uint(c, args, "vcpus", "--vcpus", vcpus) ||
            add_overlay(c, args, overlay))
                return EXIT_USAGE;
        return EXIT_OK;
}

static int pool_write_cmd(Ctl *c, int argc, char **argv, bool create)
{
        const char *image = NULL, *warm = NULL, *max = NULL, *memory = NULL, *vcpus = NULL, *overlay = NULL;
        const Opt create_opts[] = {
                { "--image", &image, NULL },   { "--warm", &warm, NULL },
                { "--max", &max, NULL },       { "--memory", &memory, NULL },
                { "--vcpus", &vcpus, NULL },   { "--overlay", &overlay, NULL },
                {},
        };
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, create ? create_opts : create_opts + 1, pos, 1, 1);
        if (create && (!image || !warm))
                return usage_error(c, "--image and --warm are required");
        if (!create && !warm && !max && !memory && !vcpus && !overlay)
                return usage_error(c, "nothing to change");

        _cleanup_json_ json_object *args = args_name(pos[0]);
        if (image)
                json_object_object_add(args, "image", json_object_new_string(image));
        if (pool_opts_to_args(c, args, warm, max, memory, vcpus, overlay) != EXIT_OK)
                return EXIT_USAGE;
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, create ? "pool.create" : "pool.set", json_object_get(args), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_pool(res);
        return EXIT_OK;
}

static int cmd_pool_create(Ctl *c, int argc, char **argv) { return pool_write_cmd(c, argc, argv, true); }
static int cmd_pool_set(Ctl *c, int argc, char **argv) { return pool_write_cmd(c, argc, argv, false); }

static int cmd_pool_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "pool.list", NULL, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        static const char *const hdr[] = { "NAME",    "IMAGE", "WARM",    "MAX",      "MEMORY", "VCPUS",
                                           "OVERLAY", "READY", "BOOTING", "ASSIGNED", "TOTAL" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *p = json_object_array_get_idx(res, j);
                table_row(&t, cell(p, "name"), cell(p, "image"), cell(p, "warm"), cell(p, "max"),
                          cell_bytes(p, "memory"), cell(p, "vcpus"), cell(p, "overlay"), cell(p, "ready"),
                          cell(p, "booting"), cell(p, "assigned"), cell(p, "total"));
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

static int cmd_pool_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "pool.list", NULL, &res);
        if (r != EXIT_OK)
                return r;
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *p = json_object_array_get_idx(res, j);
                if (strcmp(jsonx_string_or(p, "name", ""), pos[0]) != 0)
                        continue;
                if (c->json)
                        print_json(p);
                else
                        print_pool(p);
                return EXIT_OK;
        }
        _cleanup_free_ char *name = sanitize(pos[0]);
        errorf("pool %s: no such pool", name);
        return EXIT_FAIL;
}

static int cmd_pool_delete(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "pool.delete", args_name(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else {
                _cleanup_free_ char *name = sanitize(pos[0]);
                printf("pool %s deleted; its desktops are being destroyed\n", name);
        }
        return EXIT_OK;
}

static int cmd_desktop_list(Ctl *c, int argc, char **argv)
{
        const char *pool = NULL;
        const Opt opts[] = { { "--pool", &pool, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (pool)
                json_object_object_add(args, "pool", json_object_new_string(pool));
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "desktop.list", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        static const char *const hdr[] = { "ID", "POOL", "STATE", "IMAGE", "AGE", "OVERLAY", "PID" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        int64_t now = (int64_t)now_realtime_s();
        for (size_t j = 0; j < n; j++) {
                json_object *d = json_object_array_get_idx(res, j);
                _cleanup_free_ char *img = cell(d, "image"), *ver = cell(d, "image_version");
                int64_t age, created;
                if (jsonx_get_int64(d, "age_s", &age) < 0)
                        age = jsonx_get_int64(d, "created", &created) == 0 ? now - created : -1;
                int64_t pid = jsonx_int_or(d, "pid", 0);
                table_row(&t, cell(d, "id"), cell(d, "pool"), cell(d, "state"), xasprintf("%s:v%s", img, ver),
                          age >= 0 ? fmt_age(age) : xstrdup("-"), cell_bytes(d, "overlay_bytes"),
                          pid > 0 ? xasprintf("%" PRId64, pid) : xstrdup("-"));
        }
        table_print(&t, stdout);
        table_free(&t);
        return EXIT_OK;
}

static int cmd_desktop_destroy(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(pos[0]));
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "desktop.destroy", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else {
                _cleanup_free_ char *id = sanitize(pos[0]);
                printf("desktop %s destroyed\n", id);
        }
        return EXIT_OK;
}

/* ---- command table and help ---- */

#define COMMON_OPTS "  --json          print the raw JSON result\n" \
                    "  --socket PATH   control socket of slated\n"

static const Command commands[] = {
        { NULL, "status", "",
          "\nShow slated's version, accelerator (kvm or tcg, and why), uptime and counts.\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_status },
        { "image", "publish", "NAME FILE [--kernel FILE [--initrd FILE] [--cmdline TEXT]] [--current]",
          "\nPublish FILE (qcow2, raw, vmdk, vdi or vhdx) as the next version of golden image NAME.\n"
          "slated converts, seals and checksums it; progress is shown on stderr.\n\n"
          "Options:\n"
          "  --kernel FILE   boot desktops of this version with this kernel (direct boot)\n"
          "  --initrd FILE   initial ramdisk for --kernel\n"
          "  --cmdline TEXT  kernel command line for --kernel\n"
          "  --current       make the new version current at once\n" COMMON_OPTS,
          cmd_image_publish },
        { "image", "list", "", "\nList golden images with their current and latest version.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_list },
        { "image", "show", "NAME", "\nShow every version of image NAME.\n\nOptions:\n" COMMON_OPTS, cmd_image_show },
        { "image", "current", "NAME VERSION",
          "\nMake VERSION (3 or v3) the current version of NAME: new desktops boot from it,\n"
          "running ones keep theirs. Making an older version current is a rollback.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_current },
        { "image", "retire", "NAME VERSION",
          "\nRetire VERSION of NAME; refused while a desktop or pool uses it.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_retire },
        { "image", "verify", "NAME",
          "\nRecompute the checksum of every version of NAME. Exits 1 if any does not match.\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_image_verify },
        { "pool", "create", "NAME --image IMAGE --warm N [--max N] [--memory SIZE] [--vcpus N] [--overlay MODE]",
          "\nCreate a desktop pool booting the current version of IMAGE.\n\n"
          "Options:\n"
          "  --image IMAGE   golden image\n"
          "  --warm N        desktops kept booted and idle\n"
          "  --max N         most desktops in the pool\n"
          "  --memory SIZE   memory per desktop: bytes or with a suffix K, M, G (512M, 2G)\n"
          "  --vcpus N       virtual CPUs per desktop\n"
          "  --overlay MODE  overlay of each desktop: encrypted, ram, or plain (debugging only)\n" COMMON_OPTS,
          cmd_pool_create },
        { "pool", "list", "", "\nList pools with their settings and desktop counts.\n\nOptions:\n" COMMON_OPTS,
          cmd_pool_list },
        { "pool", "show", "NAME", "\nShow one pool.\n\nOptions:\n" COMMON_OPTS, cmd_pool_show },
        { "pool", "set", "NAME [--warm N] [--max N] [--memory SIZE] [--vcpus N] [--overlay MODE]",
          "\nChange a pool's settings; new desktops get them, running ones keep theirs.\n\n"
          "Options: as for pool create, plus:\n" COMMON_OPTS,
          cmd_pool_set },
        { "pool", "delete", "NAME", "\nDelete a pool; its desktops are destroyed.\n\nOptions:\n" COMMON_OPTS,
          cmd_pool_delete },
        { "desktop", "list", "[--pool POOL]",
          "\nList desktops (all pools, or one).\n\nOptions:\n"
          "  --pool POOL     only desktops of POOL\n" COMMON_OPTS,
          cmd_desktop_list },
        { "desktop", "destroy", "ID",
          "\nDestroy a desktop now: its session ends and its overlay is erased.\n\nOptions:\n" COMMON_OPTS,
          cmd_desktop_destroy },
};

static void help_main(FILE *f)
{
        fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...]\n"
              "       slatectl --help | --version\n"
              "       slatectl COMMAND --help\n\n"
              "Administer slated through its control socket.\n\nCommands:\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                const Command *cmd = &commands[i];
                _cleanup_free_ char *s = cmd->group ? xasprintf("%s %s", cmd->group, cmd->name) : xstrdup(cmd->name);
                fprintf(f, *cmd->synopsis ? "  %-16s %s\n" : "  %s\n", s, cmd->synopsis);
        }
        fputs("\nOptions:\n"
              "  --socket PATH  control socket (default: $SLATE_CONTROL_SOCKET, else " DEFAULT_SOCKET ")\n"
              "  --json         print the raw JSON result, for scripts\n"
              "  --help         show this help\n"
              "  --version      show the version\n\n"
              "Exit status: 0 success, 1 the command failed, 2 usage error or no answer from slated.\n"
              "See slatectl(8).\n",
              f);
}

static void help_group(const char *group, FILE *f)
{
        fprintf(f, "usage: slatectl %s SUBCOMMAND [ARGS...]\n\nSubcommands:\n", group);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && strcmp(commands[i].group, group) == 0)
                        fprintf(f, *commands[i].synopsis ? "  %-8s %s\n" : "  %s\n", commands[i].name,
                                commands[i].synopsis);
        fprintf(f, "\nRun 'slatectl %s SUBCOMMAND --help' for details.\n", group);
}

static bool is_group(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && strcmp(commands[i].group, s) == 0)
                        return true;
        return false;
}

static const Command *command_find(const char *group, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                const Command *cmd = &commands[i];
                if ((group ? cmd->group && strcmp(cmd->group, group) == 0 : !cmd->group) &&
                    strcmp(cmd->name, name) == 0)
                        return cmd;
        }
        return NULL;
}

int main(int argc, char **argv)
{
        Ctl c = { .id = (int64_t)getpid(), .tty = isatty(STDERR_FILENO) == 1 };
        int i = 1;

        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        help_main(stdout);
                        return EXIT_OK;
                } else if (strcmp(a, "--version") == 0) {
                        printf("slatectl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
                        return EXIT_OK;
                } else if (strcmp(a, "--json") == 0)
                        c.json = true;
                else if (strcmp(a, "--socket") == 0 && i + 1 < argc)
                        c.socket_path = argv[++i];
                else if (strncmp(a, "--socket=", 9) == 0)
                        c.socket_path = a + 9;
                else if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                } else {
                        fprintf(stderr, "slatectl: %s option %s\n",
                                strcmp(a, "--socket") == 0 ? "missing value for" : "unknown", a);
                        fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...] (see slatectl --help)\n",
                              stderr);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...] (see slatectl --help)\n", stderr);
                return EXIT_USAGE;
        }

        const char *word = argv[i++];
        if (strcmp(word, "help") == 0) {
                /* slatectl help [COMMAND [SUBCOMMAND]] */
                if (i >= argc) {
                        help_main(stdout);
                        return EXIT_OK;
                }
                word = argv[i++];
                if (is_group(word) && i >= argc) {
                        help_group(word, stdout);
                        return EXIT_OK;
                }
                const Command *cmd = is_group(word) ? command_find(word, argv[i]) : command_find(NULL, word);
                if (!cmd) {
                        fprintf(stderr, "slatectl: no help for \"%s\" (see slatectl --help)\n", word);
                        return EXIT_USAGE;
                }
                usage_line(cmd, stdout);
                fputs(cmd->help, stdout);
                return EXIT_OK;
        }
        const Command *cmd;
        if (is_group(word)) {
                if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        bool asked = i < argc;
                        help_group(word, asked ? stdout : stderr);
                        return asked ? EXIT_OK : EXIT_USAGE;
                }
                cmd = command_find(word, argv[i]);
                if (!cmd) {
                        fprintf(stderr, "slatectl: %s: unknown subcommand \"%s\"\n", word, argv[i]);
                        help_group(word, stderr);
                        return EXIT_USAGE;
                }
                i++;
        } else if (!(cmd = command_find(NULL, word))) {
                fprintf(stderr, "slatectl: unknown command \"%s\" (see slatectl --help)\n", word);
                return EXIT_USAGE;
        }
        c.cmd = cmd;
        int r = cmd->run(&c, argc - i, argv + i);
        if (fflush(stdout) != 0 && r == EXIT_OK) {
                errorf("writing output: %s", strerror(errno));
                return EXIT_FAIL;
        }
        return r;
}
