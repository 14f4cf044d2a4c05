/* The control API's client (control_client.h): connect, send one request, read lines up to
 * CONTROL_CLIENT_REPLY_MAX, match the answer by id. Front ends show progress and errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "broker/control_client.h"
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/util.h"

int control_client_read_line(ControlClientReader *k, char **ret, size_t *ret_len)
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
                if (k->len > CONTROL_CLIENT_REPLY_MAX)
                        return -EMSGSIZE;
                if (k->len + 1 >= k->cap) {
                        size_t ncap = MIN(k->cap ? k->cap * 2 : 65536, (size_t)CONTROL_CLIENT_REPLY_MAX + 2);
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

void control_client_reader_freep(ControlClientReader *k) { free(k->buf); }

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

const char *control_client_socket(const char *path)
{
        if (path)
                return path;
        const char *e = getenv("SLATE_CONTROL_SOCKET");
        return e && *e ? e : CONTROL_CLIENT_DEFAULT_SOCKET;
}

static int client_connect(const char *path, char **ret_error)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path) {
                *ret_error = xasprintf("cannot connect to %s: socket path too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                *ret_error = xasprintf("socket: %s", strerror(errno));
                return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                *ret_error = xasprintf("cannot connect to %s: %s (%s)", path, strerror(e),
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

int control_client_call(const char *socket_path, int64_t id, const char *cmd, json_object *args,
                        ControlClientProgress progress, void *data, json_object **ret_result, char **ret_error)
{
        const char *path = control_client_socket(socket_path);
        *ret_result = NULL;
        *ret_error = NULL;
        _cleanup_json_ json_object *req = json_object_new_object();
        json_object_object_add(req, "id", json_object_new_int64(id));
        json_object_object_add(req, "cmd", json_object_new_string(cmd));
        json_object_object_add(req, "args", args ? args : json_object_new_object());
        size_t n;
        const char *text = json_object_to_json_string_length(
                req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (n + 1 > CONTROL_CLIENT_REQUEST_MAX) {
                *ret_error = xasprintf("request too large (%zu bytes, slated accepts %u)", n + 1,
                                       CONTROL_CLIENT_REQUEST_MAX);
                return -E2BIG;
        }
        _cleanup_free_ char *line = xasprintf("%s\n", text);

        _cleanup_close_ int fd = client_connect(path, ret_error);
        if (fd < 0)
                return fd;
        int r = send_all(fd, line, n + 1);
        if (r < 0) {
                *ret_error = xasprintf("%s: sending request: %s", path, strerror(-r));
                return r;
        }
        /* No shutdown(SHUT_WR) here: slated drops a connection at end of input, answer or not. */

        _cleanup_(control_client_reader_freep) ControlClientReader k = { .fd = fd };
        for (;;) {
                char *l = NULL;
                size_t ln = 0;
                r = control_client_read_line(&k, &l, &ln);
                if (r < 0) {
                        if (r == -ENOMSG)
                                *ret_error = xasprintf("slated closed the connection without answering "
                                                       "(see its log; is your user allowed to use %s?)", path);
                        else if (r == -EMSGSIZE)
                                *ret_error = xasprintf("reply from slated longer than %u bytes, refusing it",
                                                       CONTROL_CLIENT_REPLY_MAX);
                        else
                                *ret_error = xasprintf("reading from %s: %s", path, strerror(-r));
                        return r == -ENOMSG ? -ECONNRESET : r;
                }
                if (ln == 0)
                        continue;
                _cleanup_json_ json_object *o = parse_line(l, ln);
                if (!o) {
                        *ret_error = xstrdup("malformed reply from slated (not a JSON object)");
                        return -EBADMSG;
                }
                int64_t rid;
                bool ours = jsonx_get_int64(o, "id", &rid) == 0 && rid == id;
                json_object *ok = NULL;
                json_object_object_get_ex(o, "ok", &ok);
                /* An answer without an id (or id 0: slated could not read ours) can only be about
                 * our single request; anything else not ours is skipped. */
                if (!ours && !(ok && jsonx_int_or(o, "id", 0) == 0 && !json_object_object_get_ex(o, "event", NULL)))
                        continue;
                if (json_object_object_get_ex(o, "event", NULL)) {
                        if (strcmp(jsonx_string_or(o, "event", ""), "progress") == 0 && progress)
                                progress(jsonx_string_or(o, "step", "working"), jsonx_int_or(o, "percent", -1), data);
                        continue;
                }
                if (!ok || !json_object_is_type(ok, json_type_boolean)) {
                        *ret_error = xstrdup("malformed reply from slated (no \"ok\")");
                        return -EBADMSG;
                }
                if (!json_object_get_boolean(ok)) {
                        *ret_error = xstrdup(jsonx_string_or(o, "error", jsonx_string_or(o, "errno", "request failed")));
                        return -EREMOTEIO;
                }
                json_object *res = NULL;
                json_object_object_get_ex(o, "result", &res);
                *ret_result = json_object_get(res);
                return 0;
        }
}
