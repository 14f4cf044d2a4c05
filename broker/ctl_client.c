/* slatectl's control-socket client: connect, send one request, read lines up to RESPONSE_MAX,
 * match the answer by id and show progress events on the way. It never buffers a reply without
 * bound and never prints reply text unsanitized. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "broker/ctl_client.h"
#include "broker/ctl_format.h"
#include "common/util.h"

void errorf(const char *fmt, ...)
{
        va_list ap;
        fputs("slatectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
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

int conn_read_line(Conn *k, char **ret, size_t *ret_len)
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

void conn_freep(Conn *k)
{
        free(k->buf);
}

int send_all(int fd, const char *p, size_t n)
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

const char *ctl_socket_path(Ctl *c)
{
        if (c->socket_path)
                return c->socket_path;
        const char *e = getenv("SLATE_CONTROL_SOCKET");
        return e && *e ? e : DEFAULT_SOCKET;
}

static int ctl_connect(Ctl *c)
{
        const char *path = ctl_socket_path(c);
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

int ctl_call(Ctl *c, const char *cmd, json_object *args, json_object **ret_result)
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
                errorf("%s: sending request: %s", ctl_socket_path(c), strerror(-r));
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
                                       "(see its log; is your user allowed to use %s?)", ctl_socket_path(c));
                        else if (r == -EMSGSIZE)
                                errorf("reply from slated longer than %u bytes, refusing it", RESPONSE_MAX);
                        else
                                errorf("reading from %s: %s", ctl_socket_path(c), strerror(-r));
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
