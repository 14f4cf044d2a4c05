/* QMP client against a scripted fake QMP server on a socketpair, plus the parser on its own.
 * The fake answers by command name: "slow" is held until "fast" is answered, "fail" errors,
 * "emit" sends an event first, "huge" sends an over-long line, "hangup" closes, "never" is ignored. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "broker/hv_qmp.h"
#include "common/cleanup.h"
#include "common/util.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
                 "\"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\n"

typedef struct Reply {
        bool done;
        int r;
        char ret[256];
        char err_class[64], err_desc[128];
        int order;
} Reply;

typedef struct Fake {
        uv_loop_t loop;
        uv_pipe_t srv;
        bool srv_closed;
        QmpLines lines;
        int64_t held_id;        /* the "slow" command's id, or -1 */
        int seen_caps;
        char last_cmd_before_caps[64];
        /* client side */
        Qmp *q;
        bool ready, closed;
        int closed_count, closed_r;
        char event[64], event_data[256];
        int replies;
} Fake;

static void srv_write_done(uv_write_t *w, int status)
{
        free(w->data);
        free(w);
}

static void srv_send(Fake *f, const char *s, size_t n)
{
        if (f->srv_closed)
                return;
        uv_write_t *w = xmalloc0(sizeof *w);
        char *copy = malloc(n);
        memcpy(copy, s, n);
        w->data = copy;
        uv_buf_t b = uv_buf_init(copy, (unsigned)n);
        cr_assert_eq(uv_write(w, (uv_stream_t *)&f->srv, &b, 1, srv_write_done), 0);
}

static void srv_sendf(Fake *f, const char *fmt, ...) _printf_(2, 3);
static void srv_sendf(Fake *f, const char *fmt, ...)
{
        va_list ap;
        char *s;
        va_start(ap, fmt);
        cr_assert_geq(vasprintf(&s, fmt, ap), 0);
        va_end(ap);
        srv_send(f, s, strlen(s));
        free(s);
}

static int srv_on_line(char *line, size_t len, void *userdata)
{
        Fake *f = userdata;
        json_object *o = json_tokener_parse(line);
        cr_assert_not_null(o, "client sent invalid JSON: %s", line);
        json_object *e, *idv;
        cr_assert(json_object_object_get_ex(o, "execute", &e));
        cr_assert(json_object_object_get_ex(o, "id", &idv), "command without id: %s", line);
        const char *cmd = json_object_get_string(e);
        long long id = json_object_get_int64(idv);
        if (strcmp(cmd, "qmp_capabilities") == 0) {
                f->seen_caps++;
                srv_sendf(f, "{\"return\": {}, \"id\": %lld}\n", id);
        } else if (!f->seen_caps) {
                snprintf(f->last_cmd_before_caps, sizeof f->last_cmd_before_caps, "%s", cmd);
        } else if (strcmp(cmd, "slow") == 0) {
                f->held_id = id;
        } else if (strcmp(cmd, "fast") == 0) {
                srv_sendf(f, "{\"return\": {\"cmd\": \"fast\"}, \"id\": %lld}\n", id);
                if (f->held_id >= 0)
                        srv_sendf(f, "{\"return\": {\"cmd\": \"slow\"}, \"id\": %lld}\n", (long long)f->held_id);
        } else if (strcmp(cmd, "fail") == 0) {
                srv_sendf(f, "{\"id\": %lld, \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"no such disk\"}}\n",
                          id);
        } else if (strcmp(cmd, "emit") == 0) {
                const char *ev = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\", "
                                 "\"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\n";
                srv_send(f, ev, strlen(ev));
                srv_sendf(f, "{\"return\": {}, \"id\": %lld}\n", id);
        } else if (strcmp(cmd, "huge") == 0) {
                size_t n = QMP_MESSAGE_MAX + 4096;
                char *big = malloc(n);
                memset(big, ' ', n);
                big[0] = '{';
                srv_send(f, big, n);
                free(big);
        } else if (strcmp(cmd, "garbage") == 0) {
                srv_send(f, "this is not json\n", 17);
        } else if (strcmp(cmd, "hangup") == 0) {
                f->srv_closed = true;
                uv_close((uv_handle_t *)&f->srv, NULL);
        }
        json_object_put(o);
        return 0;
}

static void srv_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
        static char buf[65536];
        *b = uv_buf_init(buf, sizeof buf);
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
        Fake *f = s->data;
        if (n < 0) {
                if (!f->srv_closed) {
                        f->srv_closed = true;
                        uv_close((uv_handle_t *)&f->srv, NULL);
                }
                return;
        }
        qmp_lines_feed(&f->lines, b->base, (size_t)n, srv_on_line, f);
}

static void on_ready(Qmp *q, void *ud) { ((Fake *)ud)->ready = true; }

static void on_event(Qmp *q, const char *event, json_object *data, void *ud)
{
        Fake *f = ud;
        snprintf(f->event, sizeof f->event, "%s", event);
        snprintf(f->event_data, sizeof f->event_data, "%s",
                 data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN) : "null");
}

static void on_closed(Qmp *q, int r, void *ud)
{
        Fake *f = ud;
        f->closed = true;
        f->closed_count++;
        f->closed_r = r;
}

static const QmpCallbacks callbacks = { on_ready, on_event, on_closed };
static Fake *cur;

static void on_reply(Qmp *q, int r, json_object *ret, const char *err_class, const char *err_desc, void *ud)
{
        Reply *rep = ud;
        cr_assert(!rep->done, "reply delivered twice");
        rep->done = true;
        rep->r = r;
        rep->order = ++cur->replies;
        if (ret)
                snprintf(rep->ret, sizeof rep->ret, "%s", json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN));
        if (err_class)
                snprintf(rep->err_class, sizeof rep->err_class, "%s", err_class);
        if (err_desc)
                snprintf(rep->err_desc, sizeof rep->err_desc, "%s", err_desc);
}

static void run_until(Fake *f, bool *flag)
{
        uint64_t deadline = now_ms() + 5000;
        while (!*flag && now_ms() < deadline)
                uv_run(&f->loop, UV_RUN_NOWAIT);
        cr_assert(*flag, "timed out waiting");
}

static Fake *fake_new(bool send_greeting)
{
        Fake *f = xmalloc0(sizeof *f);
        qmp_lines_init(&f->lines);
        signal(SIGPIPE, SIG_IGN);       /* as slated does: see qmp.h */
        cur = f;
        f->held_id = -1;
        cr_assert_eq(uv_loop_init(&f->loop), 0);
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        uv_pipe_init(&f->loop, &f->srv, 0);
        f->srv.data = f;
        cr_assert_eq(uv_pipe_open(&f->srv, sv[1]), 0);
        uv_read_start((uv_stream_t *)&f->srv, srv_alloc, srv_read);
        cr_assert_eq(qmp_open_fd(&f->loop, sv[0], "fake", &callbacks, f, &f->q), 0);
        if (send_greeting) {
                srv_send(f, GREETING, strlen(GREETING));
                run_until(f, &f->ready);
        }
        return f;
}

static void fake_free(Fake *f)
{
        qmp_free(f->q);
        if (!f->srv_closed)
                uv_close((uv_handle_t *)&f->srv, NULL);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        cr_assert_eq(uv_loop_close(&f->loop), 0, "handles left open");
        qmp_lines_clear(&f->lines);
        free(f);
}

Test(qmp, greeting_then_capabilities_then_ready)
{
        Fake *f = fake_new(false);
        cr_assert(!qmp_is_ready(f->q));
        cr_assert_null(qmp_version(f->q));
        srv_send(f, GREETING, strlen(GREETING));
        run_until(f, &f->ready);
        cr_assert_eq(f->seen_caps, 1);
        cr_assert(qmp_is_ready(f->q));
        cr_assert_str_eq(qmp_version(f->q), "7.2.22");
        fake_free(f);
}

Test(qmp, commands_before_ready_wait_for_capabilities)
{
        Fake *f = fake_new(false);
        Reply a = { 0 };
        cr_assert_eq(qmp_command(f->q, "fast", NULL, on_reply, &a), 0);
        srv_send(f, GREETING, strlen(GREETING));
        run_until(f, &a.done);
        cr_assert_eq(a.r, 0);
        cr_assert_str_eq(f->last_cmd_before_caps, "", "a command went out before qmp_capabilities");
        fake_free(f);
}

Test(qmp, replies_out_of_order_are_matched_by_id)
{
        Fake *f = fake_new(true);
        Reply slow = { 0 }, fast = { 0 };
        cr_assert_eq(qmp_command(f->q, "slow", json_object_new_object(), on_reply, &slow), 0);
        cr_assert_eq(qmp_command(f->q, "fast", NULL, on_reply, &fast), 0);
        run_until(f, &slow.done);
        cr_assert(fast.done);
        cr_assert_eq(fast.order, 1);
        cr_assert_eq(slow.order, 2);
        cr_assert_str_eq(fast.ret, "{\"cmd\":\"fast\"}");
        cr_assert_str_eq(slow.ret, "{\"cmd\":\"slow\"}");
        fake_free(f);
}

Test(qmp, error_reply_gives_class_and_description)
{
        Fake *f = fake_new(true);
        Reply r = { 0 };
        qmp_command(f->q, "fail", NULL, on_reply, &r);
        run_until(f, &r.done);
        cr_assert_eq(r.r, -EIO);
        cr_assert_str_eq(r.err_class, "DeviceNotFound");
        cr_assert_str_eq(r.err_desc, "no such disk");
        cr_assert(!f->closed, "an error reply must not end the connection");
        fake_free(f);
}

Test(qmp, event_reaches_event_callback_with_data)
{
        Fake *f = fake_new(true);
        Reply r = { 0 };
        qmp_command(f->q, "emit", NULL, on_reply, &r);
        run_until(f, &r.done);
        cr_assert_str_eq(f->event, "SHUTDOWN");
        cr_assert_str_eq(f->event_data, "{\"guest\":true,\"reason\":\"guest-shutdown\"}");
        fake_free(f);
}

Test(qmp, line_over_limit_closes_connection_and_fails_pending)
{
        Fake *f = fake_new(true);
        Reply r = { 0 };
        qmp_command(f->q, "huge", NULL, on_reply, &r);
        run_until(f, &f->closed);
        cr_assert_eq(f->closed_r, -EMSGSIZE);
        cr_assert(r.done);
        cr_assert_eq(r.r, -EPIPE);
        cr_assert_eq(qmp_command(f->q, "fast", NULL, on_reply, &(Reply){ 0 }), -EPIPE);
        fake_free(f);
}

Test(qmp, garbage_line_closes_only_this_connection)
{
        Fake *f = fake_new(true);
        Reply r = { 0 };
        qmp_command(f->q, "garbage", NULL, on_reply, &r);
        run_until(f, &f->closed);
        cr_assert_eq(f->closed_r, -EBADMSG);
        cr_assert_eq(r.r, -EPIPE);
        fake_free(f);
}

Test(qmp, eof_fails_every_pending_command_once_then_closed_once)
{
        Fake *f = fake_new(true);
        Reply a = { 0 }, b = { 0 }, c = { 0 };
        qmp_command(f->q, "never", NULL, on_reply, &a);
        qmp_command(f->q, "slow", NULL, on_reply, &b);
        qmp_command(f->q, "hangup", NULL, on_reply, &c);
        run_until(f, &f->closed);
        for (int i = 0; i < 5; i++)
                uv_run(&f->loop, UV_RUN_NOWAIT);
        cr_assert_eq(f->closed_count, 1);
        cr_assert_eq(f->closed_r, -EPIPE);
        cr_assert(a.done && b.done && c.done);
        cr_assert_eq(a.r, -EPIPE);
        cr_assert_eq(b.r, -EPIPE);
        cr_assert_eq(c.r, -EPIPE);
        fake_free(f);
}

Test(qmp, free_with_pending_cancels_without_closed_callback)
{
        Fake *f = fake_new(true);
        Reply a = { 0 };
        qmp_command(f->q, "never", NULL, on_reply, &a);
        qmp_free(f->q);
        f->q = NULL;
        cr_assert(a.done);
        cr_assert_eq(a.r, -ECANCELED);
        cr_assert(!f->closed);
        fake_free(f);
}

typedef struct Collected {
        char got[4][64];
        int n;
} Collected;

static int collect_line(char *line, size_t len, void *ud)
{
        Collected *c = ud;
        if (c->n < 4)
                snprintf(c->got[c->n], sizeof c->got[0], "%s", line);
        c->n++;
        return 0;
}

Test(qmp_parse, lines_split_across_reads_and_crlf)
{
        QmpLines l;
        qmp_lines_init(&l);
        Collected c = { 0 };
        cr_assert_eq(qmp_lines_feed(&l, "{\"a\":", 5, collect_line, &c), 0);
        cr_assert_eq(c.n, 0);
        cr_assert_eq(qmp_lines_feed(&l, "1}\r\n\n{\"b\":2}\n{\"c\"", 18, collect_line, &c), 0);
        cr_assert_eq(c.n, 2);
        cr_assert_str_eq(c.got[0], "{\"a\":1}");
        cr_assert_str_eq(c.got[1], "{\"b\":2}");
        qmp_lines_clear(&l);
}

Test(qmp_parse, line_limit_is_checked_before_buffering)
{
        QmpLines l;
        qmp_lines_init(&l);
        char *chunk = malloc(QMP_MESSAGE_MAX);
        memset(chunk, 'x', QMP_MESSAGE_MAX);
        cr_assert_eq(qmp_lines_feed(&l, chunk, QMP_MESSAGE_MAX, collect_line, &(Collected){ 0 }), 0);
        cr_assert_eq(qmp_lines_feed(&l, "y", 1, collect_line, &(Collected){ 0 }), -EMSGSIZE);
        cr_assert_leq(l.lb.cap, QMP_MESSAGE_MAX + 1);
        free(chunk);
        qmp_lines_clear(&l);
}

Test(qmp_parse, classifies_messages_and_rejects_non_objects)
{
        QmpMsg m;
        const char *ret = "{\"return\": {\"status\": \"running\"}, \"id\": 7}";
        cr_assert_eq(qmp_msg_parse(ret, strlen(ret), &m), 0);
        cr_assert_eq(m.type, QMP_MSG_RETURN);
        cr_assert(m.has_id);
        cr_assert_eq(m.id, 7);
        qmp_msg_clear(&m);
        const char *bad[] = { "[1]", "\"x\"", "{\"foo\":1}", "{\"return\":1} trailing", "{\"error\":{}", "" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                cr_assert_eq(qmp_msg_parse(bad[i], strlen(bad[i]), &m), -EBADMSG, "accepted: %s", bad[i]);
        const char *noid = "{\"return\": {}, \"id\": \"abc\"}";
        cr_assert_eq(qmp_msg_parse(noid, strlen(noid), &m), 0);
        cr_assert(!m.has_id);
        qmp_msg_clear(&m);
}
