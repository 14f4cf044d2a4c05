/* Control socket server. Parses JSON only from peers that passed the credential check, caps each
 * line at CONTROL_LINE_MAX before buffering more, and never lets one client block another. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/control.h"
#include "common/jsonx.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/util.h"

typedef struct Table {
        struct Table *next;
        const ControlCommand *cmds;
} Table;

typedef struct CtlConn {
        Control *ctl;
        uv_pipe_t pipe;
        LineBuf lines;          /* capped at CONTROL_LINE_MAX */
        char rbuf[16384];
        int refs;               /* the connection + each request in flight */
        bool closed;
        uid_t uid;
        gid_t gid;
} CtlConn;

struct ControlRequest {
        CtlConn *conn;
        int64_t id;
        char cmd[64];
        bool answered;
};

void control_request_peer(const ControlRequest *req, uid_t *uid, gid_t *gid)
{
        *uid = req->conn->uid;
        *gid = req->conn->gid;
}

struct Control {
        Broker *b;
        uv_pipe_t listener;
        Table *tables;
        char *path;
        gid_t admin_gid;
};

bool control_peer_allowed(uid_t peer_uid, gid_t peer_gid, uid_t self_uid, gid_t admin_gid)
{
        if (peer_uid == 0 || peer_uid == self_uid)
                return true;
        if (admin_gid == (gid_t)-1)
                return false;
        if (peer_gid == admin_gid)
                return true;
        struct passwd *pw = getpwuid(peer_uid);
        if (!pw)
                return false;
        gid_t groups[256];
        int n = (int)ELEMENTSOF(groups);
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++)
                if (groups[i] == admin_gid)
                        return true;
        return false;
}

static void ctlconn_unref(CtlConn *c);

static void ctlconn_closed(uv_handle_t *h)
{
        CtlConn *c = h->data;
        ctlconn_unref(c);
}

static void ctlconn_close(CtlConn *c)
{
        if (c->closed)
                return;
        c->closed = true;
        uv_close((uv_handle_t *)&c->pipe, ctlconn_closed);
}

static void ctlconn_unref(CtlConn *c)
{
        if (--c->refs > 0)
                return;
        linebuf_free(&c->lines);
        free(c);
}

static void write_done(uv_write_t *w, int status)
{
        free(w->data);
        free(w);
}

static void ctlconn_send(CtlConn *c, json_object *o)
{
        if (c->closed)
                return;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *line = xasprintf("%s\n", s);
        uv_write_t *w = xmalloc0(sizeof *w);
        w->data = line;
        uv_buf_t buf = uv_buf_init(line, (unsigned)strlen(line));
        if (uv_write(w, (uv_stream_t *)&c->pipe, &buf, 1, write_done) < 0) {
                free(line);
                free(w);
        }
}

static void request_finish(ControlRequest *req, json_object *o)
{
        if (req->answered) {
                json_object_put(o);
                return;
        }
        req->answered = true;
        ctlconn_send(req->conn, o);
        json_object_put(o);
        ctlconn_unref(req->conn);
        free(req);
}

void control_reply(ControlRequest *req, json_object *result)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(req->id));
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "result", result ? result : json_object_new_object());
        request_finish(req, o);
}

static const char *errno_name(int e)
{
        switch (e) {
        case ENOENT: return "ENOENT";
        case EEXIST: return "EEXIST";
        case EINVAL: return "EINVAL";
        case EBUSY: return "EBUSY";
        case EACCES: return "EACCES";
        case EPERM: return "EPERM";
        case ENOSPC: return "ENOSPC";
        case EIO: return "EIO";
        case EMSGSIZE: return "EMSGSIZE";
        case ENOTSUP: return "ENOTSUP";
        default: return "EFAIL";
        }
}

void control_reply_error(ControlRequest *req, int err, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (err < 0)
                err = -err;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(req->id));
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", json_object_new_string(msg));
        json_object_object_add(o, "errno", json_object_new_string(errno_name(err)));
        log_debug("control: %s failed: %s", req->cmd, msg);
        request_finish(req, o);
}

void control_progress(ControlRequest *req, const char *step, int percent)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(req->id));
        json_object_object_add(o, "event", json_object_new_string("progress"));
        json_object_object_add(o, "step", json_object_new_string(step));
        json_object_object_add(o, "percent", json_object_new_int(percent));
        ctlconn_send(req->conn, o);
        json_object_put(o);
}

int control_request_parse(const char *line, size_t len, ControlParsed *ret, const char **ret_error)
{
        *ret = (ControlParsed){ 0 };
        if (len > CONTROL_LINE_MAX) {
                *ret_error = "request too large";
                return -EMSGSIZE;
        }
        json_tokener *tok = json_tokener_new_ex(CONTROL_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        bool complete = json_tokener_get_error(tok) == json_tokener_success;
        json_tokener_free(tok);
        if (!complete || !o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                *ret_error = "request is not a JSON object";
                return -EINVAL;
        }
        ret->root = o;
        ret->id = jsonx_int_or(o, "id", 0);
        const char *cmd;
        if (jsonx_get_string(o, "cmd", &cmd) < 0 || !*cmd || strlen(cmd) >= sizeof ret->cmd) {
                *ret_error = "request has no \"cmd\" string";
                return -EINVAL;
        }
        snprintf(ret->cmd, sizeof ret->cmd, "%s", cmd);
        if (json_object_object_get_ex(o, "args", &ret->args) && !json_object_is_type(ret->args, json_type_object)) {
                ret->args = NULL;
                *ret_error = "\"args\" must be an object";
                return -EINVAL;
        }
        return 0;
}

static void dispatch(CtlConn *c, const char *line, size_t len)
{
        Control *ctl = c->ctl;
        ControlRequest *req = xmalloc0(sizeof *req);
        req->conn = c;
        c->refs++;
        ControlParsed p;
        const char *err = NULL;
        int r = control_request_parse(line, len, &p, &err);
        req->id = p.id;
        snprintf(req->cmd, sizeof req->cmd, "%s", p.cmd);
        if (r < 0) {
                control_reply_error(req, r, "%s", err ? err : strerror(-r));
                json_object_put(p.root);
                return;
        }
        json_object *o = p.root, *args = p.args;
        const ControlCommand *cmd = NULL;
        for (Table *t = ctl->tables; t && !cmd; t = t->next)
                for (const ControlCommand *k = t->cmds; k->cmd && !cmd; k++)
                        if (strcmp(k->cmd, p.cmd) == 0)
                                cmd = k;
        if (!cmd) {
                control_reply_error(req, ENOTSUP, "unknown command \"%s\"", req->cmd);
                json_object_put(o);
                return;
        }
        char msg[160];
        if (control_args_check(cmd, args, msg, sizeof msg) < 0) {
                control_reply_error(req, EINVAL, "%s: %s", cmd->cmd, msg);
                json_object_put(o);
                return;
        }
        if (cmd->mutating) {
                /* Who changed what: the arguments as sent (they hold no secrets). */
                char who[32];
                snprintf(who, sizeof who, "uid %u", (unsigned)c->uid);
                db_audit(ctl->b->db, "admin", who, args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN)
                                                        : "{}");
                log_info("control: uid %u: %s", (unsigned)c->uid, cmd->cmd);
        } else {
                log_debug("control: uid %u: %s", (unsigned)c->uid, cmd->cmd);
        }
        cmd->fn(ctl->b, req, args);
        json_object_put(o);
}

static const char *type_name(ControlArgType t)
{
        return t == CONTROL_ARG_STRING ? "a string" : t == CONTROL_ARG_INT ? "an integer" : "true or false";
}

int control_args_check(const ControlCommand *cmd, json_object *args, char *msg, size_t msg_size)
{
        size_t n = 0;
        while (n < CONTROL_ARGS_MAX && cmd->args[n].name)
                n++;
        if (args) {
                json_object_object_foreach(args, key, val) {
                        (void)val;
                        bool known = false;
                        for (size_t i = 0; i < n && !known; i++)
                                known = strcmp(cmd->args[i].name, key) == 0;
                        if (!known) {
                                snprintf(msg, msg_size, "unknown argument \"%.40s\"", key);
                                return -EINVAL;
                        }
                }
        }
        for (size_t i = 0; i < n; i++) {
                const ControlArg *a = &cmd->args[i];
                json_object *v;
                if (!args || !json_object_object_get_ex(args, a->name, &v) || json_object_is_type(v, json_type_null)) {
                        if (a->required) {
                                snprintf(msg, msg_size, "%s is required", a->name);
                                return -EINVAL;
                        }
                        continue;
                }
                json_type want = a->type == CONTROL_ARG_STRING ? json_type_string
                                 : a->type == CONTROL_ARG_INT  ? json_type_int
                                                               : json_type_boolean;
                if (!json_object_is_type(v, want)) {
                        snprintf(msg, msg_size, "%s must be %s", a->name, type_name(a->type));
                        return -EINVAL;
                }
                if (a->type == CONTROL_ARG_INT) {
                        int64_t x = json_object_get_int64(v);
                        if (x < a->min || x > a->max) {
                                snprintf(msg, msg_size, "%s must be %lld-%lld", a->name, (long long)a->min,
                                         (long long)a->max);
                                return -EINVAL;
                        }
                } else if (a->type == CONTROL_ARG_STRING) {
                        size_t len = (size_t)json_object_get_string_len(v);
                        size_t max = a->max > 0 ? (size_t)a->max : CONTROL_STRING_MAX;
                        if (len < (size_t)MAX(a->min, 0) || len > max) {
                                snprintf(msg, msg_size, "%s must be %lld-%zu characters", a->name,
                                         (long long)MAX(a->min, 0), max);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        CtlConn *c = h->data;
        *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        CtlConn *c = s->data;
        if (n < 0) {
                ctlconn_close(c);
                return;
        }
        size_t off = 0;
        while (off < (size_t)n) {
                size_t used, len;
                char *line;
                int r = linebuf_feed(&c->lines, buf->base + off, (size_t)n - off, &used, &line, &len);
                off += used;
                if (r == -EMSGSIZE) {
                        log_warn("control: uid %u sent a request longer than %u bytes; closing", (unsigned)c->uid,
                                 CONTROL_LINE_MAX);
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "ok", json_object_new_boolean(0));
                        json_object_object_add(o, "error", json_object_new_string("request too large"));
                        json_object_object_add(o, "errno", json_object_new_string("EMSGSIZE"));
                        ctlconn_send(c, o);
                        json_object_put(o);
                        uv_read_stop(s);
                        ctlconn_close(c);
                        return;
                }
                if (r < 0) {
                        log_error("control: uid %u: %s; closing", (unsigned)c->uid, strerror(-r));
                        ctlconn_close(c);
                        return;
                }
                if (r == 0)
                        break;
                if (len > 0)
                        dispatch(c, line, len);
                if (c->closed)
                        return;
        }
}

static void on_connection(uv_stream_t *server, int status)
{
        Control *ctl = server->data;
        if (status < 0)
                return;
        CtlConn *c = xmalloc0(sizeof *c);
        c->ctl = ctl;
        c->refs = 1;
        linebuf_init(&c->lines, CONTROL_LINE_MAX);
        uv_pipe_init(server->loop, &c->pipe, 0);
        c->pipe.data = c;
        if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
                ctlconn_close(c);
                return;
        }
        uv_os_fd_t fd;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                ctlconn_close(c);
                return;
        }
        c->uid = cred.uid;
        c->gid = cred.gid;
        if (!control_peer_allowed(cred.uid, cred.gid, getuid(), ctl->admin_gid)) {
                log_warn("control: refused uid %u (pid %d): not root, not slated's uid, not in the admin group",
                         (unsigned)cred.uid, (int)cred.pid);
                ctlconn_close(c);
                return;
        }
        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

void control_register(Control *c, const ControlCommand *table)
{
        Table *t = xmalloc0(sizeof *t);
        t->cmds = table;
        t->next = c->tables;
        c->tables = t;
}

int control_start(Broker *b, const char *path, const char *admin_group, Control **ret)
{
        Control *c = xmalloc0(sizeof *c);
        c->b = b;
        c->path = xstrdup(path);
        struct group *gr = admin_group ? getgrnam(admin_group) : NULL;
        c->admin_gid = gr ? gr->gr_gid : (gid_t)-1;
        if (!gr && getuid() == 0)
                log_warn("control: admin group %s does not exist; only root may use %s", admin_group, path);
        unlink(path);
        uv_pipe_init(b->loop, &c->listener, 0);
        c->listener.data = c;
        mode_t old = umask(0117);
        int r = uv_pipe_bind(&c->listener, path);
        umask(old);
        if (r < 0) {
                log_error("control socket %s: %s", path, uv_strerror(r));
                uv_close((uv_handle_t *)&c->listener, NULL);
                return -EADDRINUSE;
        }
        if (getuid() == 0 && c->admin_gid != (gid_t)-1 && chown(path, 0, c->admin_gid) < 0)
                log_warn("control socket %s: chown: %m", path);
        chmod(path, 0660);
        if ((r = uv_listen((uv_stream_t *)&c->listener, 64, on_connection)) < 0) {
                log_error("control socket %s: listen: %s", path, uv_strerror(r));
                return -EIO;
        }
        *ret = c;
        return 0;
}

void control_stop(Control *c)
{
        if (!c)
                return;
        uv_close((uv_handle_t *)&c->listener, NULL);
        unlink(c->path);
        /* The tables and the Control itself stay until control_free: requests may still
         * reference them while the loop runs. */
}

void control_free(Control *c)
{
        if (!c)
                return;
        while (c->tables) {
                Table *t = c->tables;
                c->tables = t->next;
                free(t);
        }
        free(c->path);
        free(c);
}
