/* QMP client: line framing, message classification and command/reply matching over one unix
 * socket on the caller's libuv loop. It never blocks the loop, never buffers more than
 * QMP_MESSAGE_MAX per line, and never logs command arguments (they may carry secrets). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "broker/hv_qmp.h"
#include "common/fdpass.h"
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/util.h"

/* ---- Line framing (the splitting and the cap are common/linebuf's) ---- */

void qmp_lines_init(QmpLines *l)
{
        linebuf_init(&l->lb, QMP_MESSAGE_MAX);
}

int qmp_lines_feed(QmpLines *l, const char *data, size_t n,
                   int (*on_line)(char *line, size_t len, void *userdata), void *userdata)
{
        while (n > 0) {
                size_t used;
                char *line;
                size_t len;
                int r = linebuf_feed(&l->lb, data, n, &used, &line, &len);
                data += used;
                n -= used;
                if (r <= 0)
                        return r;
                if (len > 0 && line[len - 1] == '\r')
                        line[--len] = 0;
                if (len == 0)
                        continue;
                r = on_line(line, len, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

void qmp_lines_clear(QmpLines *l)
{
        linebuf_free(&l->lb);
}

/* ---- Message classifier ---- */

void qmp_msg_clear(QmpMsg *m)
{
        if (m->obj)
                json_object_put(m->obj);
        *m = (QmpMsg){ 0 };
}

static void msg_parse_version(json_object *qmp, char *out, size_t n)
{
        json_object *v, *q;
        snprintf(out, n, "unknown");
        if (!json_object_object_get_ex(qmp, "version", &v) || !json_object_is_type(v, json_type_object) ||
            !json_object_object_get_ex(v, "qemu", &q) || !json_object_is_type(q, json_type_object))
                return;
        int64_t major, minor, micro;
        if (jsonx_get_int64(q, "major", &major) < 0 || jsonx_get_int64(q, "minor", &minor) < 0 ||
            jsonx_get_int64(q, "micro", &micro) < 0)
                return;
        snprintf(out, n, "%lld.%lld.%lld", (long long)major, (long long)minor, (long long)micro);
}

int qmp_msg_parse(const char *line, size_t len, QmpMsg *ret)
{
        *ret = (QmpMsg){ 0 };
        if (len > QMP_MESSAGE_MAX || len > INT32_MAX)
                return -EMSGSIZE;
        json_tokener *tok = json_tokener_new_ex(64);
        if (!tok)
                return -ENOMEM;
        json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                if (o)
                        json_object_put(o);
                return -EBADMSG;
        }
        for (; used < len; used++)      /* only whitespace may follow the object */
                if (!strchr(" \t\r", line[used])) {
                        json_object_put(o);
                        return -EBADMSG;
                }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }

        QmpMsg m = { .obj = o };
        json_object *v;
        if (json_object_object_get_ex(o, "id", &v) && json_object_is_type(v, json_type_int) &&
            json_object_get_int64(v) >= 0) {
                m.has_id = true;
                m.id = (uint64_t)json_object_get_int64(v);
        }
        if (json_object_object_get_ex(o, "QMP", &v) && json_object_is_type(v, json_type_object)) {
                m.type = QMP_MSG_GREETING;
                msg_parse_version(v, m.version, sizeof m.version);
        } else if (jsonx_get_string(o, "event", &m.event) == 0) {
                m.type = QMP_MSG_EVENT;
                if (json_object_object_get_ex(o, "data", &v) && json_object_is_type(v, json_type_object))
                        m.data = v;
        } else if (json_object_object_get_ex(o, "return", &v)) {
                m.type = QMP_MSG_RETURN;
                m.ret = v;
        } else if (json_object_object_get_ex(o, "error", &v) && json_object_is_type(v, json_type_object)) {
                m.type = QMP_MSG_ERROR;
                m.err_class = jsonx_string_or(v, "class", "GenericError");
                m.err_desc = jsonx_string_or(v, "desc", "(no description)");
        } else {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}

/* ---- Connection ---- */

typedef struct QmpPending {
        struct QmpPending *next;
        uint64_t id;
        char *cmd;
        char *line;                     /* serialized command until it is written */
        QmpReplyCb cb;
        void *userdata;
} QmpPending;

typedef enum QmpState { QMP_WAIT_GREETING, QMP_WAIT_CAPS, QMP_READY, QMP_CLOSED } QmpState;

struct Qmp {
        uv_loop_t *loop;
        uv_pipe_t pipe;
        char *name;
        QmpCallbacks cb;
        void *userdata;
        QmpState state;
        bool freed, handle_closed;
        QmpLines lines;
        QmpPending *pending;
        uint64_t next_id;
        char version[32];
        char rbuf[64 * 1024];
};

typedef struct QmpWrite {
        uv_write_t req;
        Qmp *q;
        char data[];
} QmpWrite;

static void qmp_destroy(Qmp *q)
{
        qmp_lines_clear(&q->lines);
        free(q->name);
        free(q);
}

static void qmp_on_handle_closed(uv_handle_t *h)
{
        Qmp *q = h->data;
        q->handle_closed = true;
        if (q->freed)
                qmp_destroy(q);
}

static void pending_free(QmpPending *p)
{
        free(p->cmd);
        free(p->line);
        free(p);
}

/* End the connection once: every pending command gets reply r, then on_closed (if notify). */
static void qmp_shutdown(Qmp *q, int r, bool notify)
{
        if (q->state == QMP_CLOSED)
                return;
        q->state = QMP_CLOSED;
        uv_read_stop((uv_stream_t *)&q->pipe);
        QmpPending *list = TAKE_PTR(q->pending);
        while (list) {
                QmpPending *p = list;
                list = p->next;
                if (p->cb)
                        p->cb(q, notify ? -EPIPE : -ECANCELED, NULL, NULL, NULL, p->userdata);
                pending_free(p);
        }
        if (notify && !q->freed && q->cb.on_closed)
                q->cb.on_closed(q, r, q->userdata);
        uv_close((uv_handle_t *)&q->pipe, qmp_on_handle_closed);
}

static void qmp_on_write(uv_write_t *req, int status)
{
        QmpWrite *w = (QmpWrite *)req;
        Qmp *q = w->q;
        free(w);
        if (status < 0 && q->state != QMP_CLOSED) {
                log_error("qmp %s: write: %s", q->name, uv_strerror(status));
                qmp_shutdown(q, status, true);
        }
}

static int qmp_send_pending(Qmp *q, QmpPending *p)
{
        size_t n = strlen(p->line);
        QmpWrite *w = malloc(sizeof *w + n);
        if (!w)
                return -ENOMEM;
        w->q = q;
        memcpy(w->data, p->line, n);
        uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
        int r = uv_write(&w->req, (uv_stream_t *)&q->pipe, &buf, 1, qmp_on_write);
        if (r < 0) {
                free(w);
                return log_error_errno(r, "qmp %s: write %s: %s", q->name, p->cmd, uv_strerror(r));
        }
        free(TAKE_PTR(p->line));
        log_debug("qmp %s: -> %s (id %llu)", q->name, p->cmd, (unsigned long long)p->id);
        return 0;
}

/* The command's line ("execute", "arguments" (taken), "id"), its id in *ret_id. */
static char *qmp_line(Qmp *q, const char *cmd, json_object *args, uint64_t *ret_id)
{
        json_object *o = json_object_new_object();
        *ret_id = q->next_id++;
        json_object_object_add(o, "execute", json_object_new_string(cmd));
        if (args)
                json_object_object_add(o, "arguments", args);
        json_object_object_add(o, "id", json_object_new_int64((int64_t)*ret_id));
        char *line = xasprintf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return line;
}

static QmpPending *qmp_pending_add(Qmp *q, uint64_t id, const char *cmd, char *line, QmpReplyCb cb, void *userdata)
{
        QmpPending *p = xmalloc0(sizeof *p);
        *p = (QmpPending){ .id = id, .cmd = xstrdup(cmd), .line = line, .cb = cb, .userdata = userdata };
        QmpPending **tail = &q->pending;
        while (*tail)
                tail = &(*tail)->next;
        *tail = p;
        return p;
}

static int qmp_enqueue(Qmp *q, const char *cmd, json_object *args, QmpReplyCb cb, void *userdata)
{
        uint64_t id;
        char *line = qmp_line(q, cmd, args, &id);
        QmpPending *p = qmp_pending_add(q, id, cmd, line, cb, userdata);
        /* Until capabilities are accepted commands wait; qmp_on_caps sends them in order. */
        if (q->state == QMP_READY) {
                int r = qmp_send_pending(q, p);
                if (r < 0)
                        qmp_shutdown(q, r, true);       /* p->cb got -EPIPE */
        }
        return 0;
}

int qmp_command(Qmp *q, const char *cmd, json_object *args, QmpReplyCb cb, void *userdata)
{
        if (q->state == QMP_CLOSED) {
                if (args)
                        json_object_put(args);
                return -EPIPE;
        }
        return qmp_enqueue(q, cmd, args, cb, userdata);
}

int qmp_command_fd(Qmp *q, const char *cmd, json_object *args, int fd, QmpReplyCb cb, void *userdata)
{
        int sock = -1;
        if (q->state != QMP_READY || uv_fileno((uv_handle_t *)&q->pipe, &sock) < 0) {
                if (args)
                        json_object_put(args);
                return -EPIPE;
        }
        if (uv_stream_get_write_queue_size((uv_stream_t *)&q->pipe) > 0) {
                if (args)
                        json_object_put(args);
                return -EAGAIN;
        }
        uint64_t id;
        _cleanup_free_ char *line = qmp_line(q, cmd, args, &id);
        /* The socket is libuv's, non-blocking, with nothing queued: a line this short goes at once
         * into an empty unix socket buffer. */
        int r = fdpass_send(sock, line, strlen(line), fd);
        if (r < 0)
                return log_error_errno(r, "qmp %s: %s with an fd: %s", q->name, cmd, strerror(-r));
        qmp_pending_add(q, id, cmd, NULL, cb, userdata);
        log_debug("qmp %s: -> %s with fd (id %llu)", q->name, cmd, (unsigned long long)id);
        return 0;
}

static void qmp_on_caps(Qmp *q, int r, json_object *ret, const char *err_class, const char *err_desc,
                        void *userdata)
{
        if (r < 0) {
                if (r != -EPIPE && r != -ECANCELED) {
                        log_error("qmp %s: qmp_capabilities refused: %s: %s", q->name, err_class, err_desc);
                        qmp_shutdown(q, -EPROTO, true);
                }
                return;
        }
        q->state = QMP_READY;
        for (QmpPending *p = q->pending; p && q->state == QMP_READY; p = p->next)
                if (p->line && qmp_send_pending(q, p) < 0) {
                        qmp_shutdown(q, -EIO, true);
                        return;
                }
        if (q->cb.on_ready)
                q->cb.on_ready(q, q->userdata);
}

static void qmp_dispatch_reply(Qmp *q, const QmpMsg *m)
{
        if (!m->has_id) {
                log_warn("qmp %s: reply without an id ignored%s%s", q->name, m->err_desc ? ": " : "",
                         m->err_desc ? m->err_desc : "");
                return;
        }
        QmpPending **pp = &q->pending;
        while (*pp && ((*pp)->id != m->id || (*pp)->line))
                pp = &(*pp)->next;
        if (!*pp) {
                log_warn("qmp %s: reply to unknown id %llu ignored", q->name, (unsigned long long)m->id);
                return;
        }
        QmpPending *p = *pp;
        *pp = p->next;
        if (m->type == QMP_MSG_ERROR) {
                if (!p->cb)
                        log_error("qmp %s: %s: %s: %s", q->name, p->cmd, m->err_class, m->err_desc);
                else
                        log_debug("qmp %s: %s failed: %s: %s", q->name, p->cmd, m->err_class, m->err_desc);
        }
        if (p->cb)
                p->cb(q, m->type == QMP_MSG_ERROR ? -EIO : 0, m->ret, m->err_class, m->err_desc, p->userdata);
        pending_free(p);
}

static int qmp_on_line(char *line, size_t len, void *userdata)
{
        Qmp *q = userdata;
        QmpMsg m;
        int r = qmp_msg_parse(line, len, &m);
        if (r < 0) {
                log_error("qmp %s: malformed message (%zu bytes): %.80s", q->name, len, line);
                qmp_shutdown(q, -EBADMSG, true);
                return 1;
        }
        switch (m.type) {
        case QMP_MSG_GREETING:
                if (q->state != QMP_WAIT_GREETING) {
                        log_error("qmp %s: unexpected second greeting", q->name);
                        qmp_shutdown(q, -EPROTO, true);
                        break;
                }
                snprintf(q->version, sizeof q->version, "%s", m.version);
                log_debug("qmp %s: QEMU %s", q->name, q->version);
                q->state = QMP_WAIT_CAPS;
                /* Jump the queue: commands issued early are held behind this one. */
                {
                        QmpPending *p = xmalloc0(sizeof *p);
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "execute", json_object_new_string("qmp_capabilities"));
                        json_object_object_add(o, "id", json_object_new_int64((int64_t)q->next_id));
                        *p = (QmpPending){ .id = q->next_id++, .cmd = xstrdup("qmp_capabilities"),
                                           .line = xasprintf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)),
                                           .cb = qmp_on_caps, .next = q->pending };
                        json_object_put(o);
                        q->pending = p;
                        if (qmp_send_pending(q, p) < 0)
                                qmp_shutdown(q, -EIO, true);
                }
                break;
        case QMP_MSG_EVENT:
                log_debug("qmp %s: event %s", q->name, m.event);
                if (q->cb.on_event && !q->freed)
                        q->cb.on_event(q, m.event, m.data, q->userdata);
                break;
        case QMP_MSG_RETURN:
        case QMP_MSG_ERROR:
                qmp_dispatch_reply(q, &m);
                break;
        }
        qmp_msg_clear(&m);
        return q->state == QMP_CLOSED ? 1 : 0;
}

static void qmp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        Qmp *q = h->data;
        *buf = uv_buf_init(q->rbuf, sizeof q->rbuf);
}

static void qmp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
        Qmp *q = s->data;
        if (q->state == QMP_CLOSED)
                return;
        if (nread == UV_EOF || nread == UV_ECONNRESET) {
                log_debug("qmp %s: connection closed by QEMU", q->name);
                qmp_shutdown(q, -EPIPE, true);
                return;
        }
        if (nread < 0) {
                log_error("qmp %s: read: %s", q->name, uv_strerror((int)nread));
                qmp_shutdown(q, (int)nread, true);
                return;
        }
        int r = qmp_lines_feed(&q->lines, buf->base, (size_t)nread, qmp_on_line, q);
        if (r == -EMSGSIZE) {
                log_error("qmp %s: message longer than %u bytes, closing", q->name, QMP_MESSAGE_MAX);
                qmp_shutdown(q, r, true);
        } else if (r < 0) {
                log_error("qmp %s: %s", q->name, strerror(-r));
                qmp_shutdown(q, r, true);
        }
}

int qmp_open_fd(uv_loop_t *loop, int fd, const char *name, const QmpCallbacks *cb, void *userdata,
                Qmp **ret)
{
        Qmp *q = xmalloc0(sizeof *q);
        q->loop = loop;
        q->name = xstrdup(name);
        q->cb = *cb;
        q->userdata = userdata;
        q->next_id = 1;
        q->state = QMP_WAIT_GREETING;
        qmp_lines_init(&q->lines);
        int r = uv_pipe_init(loop, &q->pipe, 0);
        if (r < 0) {
                close(fd);
                qmp_destroy(q);
                return log_error_errno(r, "qmp %s: %s", name, uv_strerror(r));
        }
        q->pipe.data = q;
        r = uv_pipe_open(&q->pipe, fd);
        if (r < 0)
                close(fd);              /* not attached to the handle: ours to close */
        else
                r = uv_read_start((uv_stream_t *)&q->pipe, qmp_on_alloc, qmp_on_read);
        if (r < 0) {
                log_error("qmp %s: %s", name, uv_strerror(r));
                q->freed = true;
                q->state = QMP_CLOSED;
                uv_close((uv_handle_t *)&q->pipe, qmp_on_handle_closed);
                return r;
        }
        *ret = q;
        return 0;
}

bool qmp_is_ready(const Qmp *q) { return q->state == QMP_READY; }

const char *qmp_version(const Qmp *q) { return q->version[0] ? q->version : NULL; }

void qmp_free(Qmp *q)
{
        if (!q || q->freed)
                return;
        q->freed = true;
        if (q->state != QMP_CLOSED)
                qmp_shutdown(q, -ECANCELED, false);
        else if (q->handle_closed)
                qmp_destroy(q);
}
