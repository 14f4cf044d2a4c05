/* The slate-session children (one per connection): exec'd with a uid and gid of their own, in a
 * session of their own, with the accepted socket and an IPC socketpair (or started ahead as a
 * spare, initialised and waiting for the socket over the IPC: no client's connection until it
 * gets one, so none of the per-connection limits counts it); slated answers only what
 * the connection's phase permits (the permit table below). A child that asks for anything else is
 * killed; nothing else is disturbed. What the child says goes to the owner's ConnEvents; what it
 * writes to stdout or stderr goes to slated's log under the connection's name, capped. This file
 * decides nothing about users. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "broker/conn.h"
#include "common/idrange.h"
#include "common/ipc.h"
#include "common/keysign.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/netsrc.h"
#include "common/permit.h"
#include "common/util.h"

typedef enum ConnState {
        CONN_PREAUTH,         /* waiting for credentials */
        CONN_AUTHENTICATING,  /* PAM running */
        CONN_PROMPTING,       /* PAM waits for the user's answer at the logon screen */
        CONN_AUTHED,          /* waiting for the desktop */
        CONN_ATTACHED,        /* bridging the desktop */
        CONN_DEAD,
        CONN_SPARE,           /* started ahead, no client yet: may send nothing */
} ConnState;

struct Conn {
        Conn *next;
        Broker *b;
        uv_process_t proc;
        uv_poll_t poll;
        uv_timer_t timer;
        uv_timer_t screen_timer; /* a logon screen: the whole interactive phase */
        bool screen;          /* the logon screen's bound runs */
        int auths;            /* IPC_AUTH received */
        int ipc_fd;
        FrameParser parser;
        ConnState state;
        bool proc_running, poll_running, counted_preauth, first_frame_seen;
        int refs;             /* the connection itself, plus pending jobs */
        int signs;            /* IPC_SIGN requests answered */
        int open_handles;
        char addr[INET6_ADDRSTRLEN + 8];
        uint64_t accept_ms;
        uint64_t spawn_ms;
        void *owner;
        bool closed_reported;
        struct { char name[IPC_NAME_MAX + 1]; uint32_t ms; } phases[8]; /* rdp-handshake, logon-screen, auth, attach, usable-frame, ... */
        pid_t pid;
        uint32_t uid;         /* from b->session_ids, released once the process is reaped */
        bool has_uid;
        uv_pipe_t out;        /* the child's stdout and stderr */
        LineBuf out_lines;
        char out_buf[4096];
        uint64_t out_sec;     /* the second out_count counts lines in */
        unsigned out_count, out_dropped;
};

/* A session's output line: longer ones are cut (the rest dropped); a session that writes more
 * lines a second than this gets the excess counted, not logged: it cannot flood slated's log or
 * hold its loop. */
#define CONN_OUT_LINE_MAX 512
#define CONN_OUT_LINES_PER_S 50
/* A TLS handshake signs once; a second allows for a client that renegotiates. */
#define CONN_SIGNS_MAX 2
/* A spare that dies sooner than this after its start counts as a failed start: the next one waits
 * SPARE_BACKOFF_MIN_MS, doubling up to SPARE_BACKOFF_MAX_MS, so a binary that crashes at start
 * costs a process every few seconds, not a busy loop. */
#define SPARE_FAILED_START_MS 5000
#define SPARE_BACKOFF_MIN_MS 100
#define SPARE_BACKOFF_MAX_MS 10000
/* Tries at a logon screen, after which the connection ends (logon.c refuses the third with
 * IPC_END; a fourth IPC_AUTH is not permitted). */
#define CONN_AUTH_ATTEMPTS_MAX 3

/* What slate-session may send in each phase. */
static const PermitRow permits[] = {
        { CONN_PREAUTH, { IPC_AUTH, IPC_PHASE, IPC_SIGN } },
        { CONN_AUTHENTICATING, { IPC_PHASE } },
        { CONN_PROMPTING, { IPC_PROMPT_REPLY, IPC_PHASE } },
        { CONN_AUTHED, { IPC_PHASE, IPC_LOGOUT } },
        { CONN_ATTACHED, { IPC_FIRST_FRAME, IPC_LOGOUT, IPC_PHASE, IPC_ACTIVITY } },
};

static bool conn_permits(ConnState st, uint8_t type)
{
        return permit_allows(permits, ELEMENTSOF(permits), (int)st, type);
}

const char *conn_addr(const Conn *c) { return c->addr; }
uint64_t conn_accept_ms(const Conn *c) { return c->accept_ms; }
Broker *conn_broker(const Conn *c) { return c->b; }
void conn_set_owner(Conn *c, void *owner) { c->owner = owner; }
void *conn_owner(const Conn *c) { return c->owner; }

uint32_t conn_phase_ms(const Conn *c, const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(c->phases); i++)
                if (strcmp(c->phases[i].name, name) == 0)
                        return c->phases[i].ms;
        return 0;
}

static void conn_phase_note(Conn *c, const char *name, uint32_t ms)
{
        for (size_t i = 0; i < ELEMENTSOF(c->phases); i++)
                if (!c->phases[i].name[0] || strcmp(c->phases[i].name, name) == 0) {
                        snprintf(c->phases[i].name, sizeof c->phases[i].name, "%s", name);
                        c->phases[i].ms = ms;
                        return;
                }
}

unsigned conn_count_preauth(Broker *b, const char *addr)
{
        /* By source, not address string: one IPv6 /64 (or IPv4 /auth-ipv4-prefix) is one. */
        char want[96], src[96];
        unsigned bits = b->cfg->auth_ipv4_prefix ? b->cfg->auth_ipv4_prefix : 32, n = 0;
        net_source(addr, bits, want, sizeof want);
        for (Conn *c = b->conns; c; c = c->next) {
                if (!c->counted_preauth)
                        continue;
                net_source(c->addr, bits, src, sizeof src);
                n += strcmp(src, want) == 0;
        }
        return n;
}
bool conn_alive(const Conn *c) { return c->state != CONN_DEAD; }
void conn_ref(Conn *c) { c->refs++; }

static void conn_free(Conn *c)
{
        if (c->ipc_fd >= 0)
                close(c->ipc_fd);
        frame_parser_free(&c->parser);
        linebuf_free(&c->out_lines);
        free(c);
}

void conn_unref(Conn *c)
{
        if (--c->refs == 0)
                conn_free(c);
}

static void preauth_release(Conn *c)
{
        if (c->counted_preauth) {
                c->counted_preauth = false;
                c->b->preauth--;
        }
}

static void handle_closed(uv_handle_t *h)
{
        Conn *c = h->data;
        if (--c->open_handles == 0)
                conn_unref(c);
}

static void spare_lost(Conn *c);

/* The connection is over (child gone or misbehaving): tell the session once, release handles. */
static void conn_close(Conn *c, const char *why)
{
        if (c->state == CONN_DEAD)
                return;
        bool spare = c->state == CONN_SPARE;
        c->state = CONN_DEAD;
        preauth_release(c);
        log_debug("connection %s (pid %d): closed: %s", c->addr, (int)c->pid, why);
        for (Conn **p = spare ? &c->b->session_spares : &c->b->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (spare)
                spare_lost(c);
        if (c->proc_running)
                uv_process_kill(&c->proc, SIGKILL);
        if (c->poll_running) {
                uv_poll_stop(&c->poll);
                c->poll_running = false;
        }
        uv_timer_stop(&c->timer);
        uv_timer_stop(&c->screen_timer);
        if (!c->closed_reported) {
                c->closed_reported = true;
                if (!spare && c->b->conn_events && c->b->conn_events->on_closed)
                        c->b->conn_events->on_closed(c);
        }
        c->open_handles++;
        uv_close((uv_handle_t *)&c->timer, handle_closed);
        c->open_handles++;
        uv_close((uv_handle_t *)&c->screen_timer, handle_closed);
        c->open_handles++;
        uv_close((uv_handle_t *)&c->poll, handle_closed);
        /* The process handle closes in its exit callback; the fd goes with the Conn. */
}

static void conn_kill(Conn *c, const char *why)
{
        log_warn("connection %s (pid %d): %s; dropping it", c->addr, (int)c->pid, why);
        conn_close(c, why);
}

int conn_send(Conn *c, const IpcMsg *m, int fd)
{
        if (c->state == CONN_DEAD)
                return -ENOTCONN;
        int r = ipc_send(c->ipc_fd, m, fd);
        if (r < 0)
                conn_close(c, "IPC send failed");
        return r;
}

void conn_end(Conn *c, const char *reason)
{
        IpcMsg m = { .type = IPC_END };
        snprintf(m.end.reason, sizeof m.end.reason, "%s", reason);
        conn_send(c, &m, -1);
}

void conn_set_state_authed(Conn *c)
{
        c->state = CONN_AUTHED;
        preauth_release(c);
        uv_timer_stop(&c->timer);
        uv_timer_stop(&c->screen_timer);
}

static void auth_timeout_cb(uv_timer_t *t);

static void auth_timer_start(Conn *c)
{
        /* Still a pre-auth slot: a PAM that never answers must not hold it for ever. */
        uv_timer_start(&c->timer, auth_timeout_cb, (uint64_t)(c->b->cfg->auth_timeout ? c->b->cfg->auth_timeout : 60) * 1000,
                       0);
}

void conn_set_prompting(Conn *c, bool on)
{
        if (on && c->state == CONN_AUTHENTICATING) {
                /* The user's typing is not PAM's time: the logon screen's bound runs. */
                c->state = CONN_PROMPTING;
                uv_timer_stop(&c->timer);
        } else if (!on && c->state == CONN_PROMPTING) {
                c->state = CONN_AUTHENTICATING;
                auth_timer_start(c);
        }
}

bool conn_set_state_retry(Conn *c)
{
        if (c->state != CONN_AUTHENTICATING && c->state != CONN_PROMPTING)
                return false;
        if (c->auths >= CONN_AUTH_ATTEMPTS_MAX)
                return false;
        c->state = CONN_PREAUTH;
        uv_timer_stop(&c->timer);       /* the logon screen's bound runs */
        return true;
}

int conn_auth_attempts(const Conn *c) { return c->auths; }

void conn_set_state_attached(Conn *c) { c->state = CONN_ATTACHED; }

/* The session's TLS handshake needs a signature with the server key, which only slated holds
 * (rdp/keyless.h): at most CONN_SIGNS_MAX per connection, only before credentials, and only what
 * common/keysign.h calls a handshake signature. Anything else is a subverted session. */
static void on_sign(Conn *c, const IpcMsg *m)
{
        if (++c->signs > CONN_SIGNS_MAX) {
                conn_kill(c, "more signing requests than a TLS handshake makes");
                return;
        }
        IpcMsg a = { .type = IPC_SIGNATURE };
        size_t n;
        int r = keysign(c->b->tls_key, m->sign.alg, m->sign.data, m->sign.len, a.sign.data, &n);
        if (r == -EINVAL) {
                conn_kill(c, "asked to sign something that is not a TLS handshake signature");
                return;
        }
        if (r < 0) {
                log_error("connection %s: TLS signature failed", c->addr);
        } else {
                a.sign.alg = m->sign.alg;
                a.sign.len = (uint16_t)n;
        }
        conn_send(c, &a, -1);
}

static void screen_timeout_cb(uv_timer_t *t)
{
        Conn *c = t->data;
        if (c->state != CONN_AUTHED && c->state != CONN_ATTACHED && c->state != CONN_DEAD) {
                log_info("connection %s: not logged on within logon-screen-timeout (%u s)", c->addr,
                         c->b->cfg->logon_screen_timeout);
                conn_close(c, "logon screen timed out");
        }
}

/* A logon screen (the session said so, or sent credentials typed into one): from now on the
 * whole interactive phase, every prompt and retry, has logon-screen-timeout, once; the
 * handshake's bound no longer applies. */
static void screen_start(Conn *c)
{
        if (c->screen)
                return;
        c->screen = true;
        if (c->state == CONN_PREAUTH)
                uv_timer_stop(&c->timer);
        unsigned s = c->b->cfg->logon_screen_timeout ? c->b->cfg->logon_screen_timeout : 120;
        uv_timer_start(&c->screen_timer, screen_timeout_cb, (uint64_t)s * 1000, 0);
}

static void handle_msg(Conn *c, IpcMsg *m)
{
        const ConnEvents *ev = c->b->conn_events;
        switch (m->type) {
        case IPC_AUTH:
                c->state = CONN_AUTHENTICATING;
                c->auths++;
                if (m->auth.flags & IPC_AUTH_INTERACTIVE)
                        screen_start(c);
                auth_timer_start(c);
                if (ev && ev->on_auth)
                        ev->on_auth(c, m);
                break;
        case IPC_PROMPT_REPLY:
                conn_set_prompting(c, false);
                if (ev && ev->on_prompt_reply)
                        ev->on_prompt_reply(c, m->prompt_reply.text);
                break;
        case IPC_FIRST_FRAME:
                if (c->first_frame_seen)
                        break;
                c->first_frame_seen = true;
                if (ev && ev->on_first_frame)
                        ev->on_first_frame(c, m->first_frame.ms_since_accept);
                break;
        case IPC_LOGOUT:
                if (ev && ev->on_logout)
                        ev->on_logout(c);
                break;
        case IPC_PHASE:
                log_debug("connection %s: phase %s took %u ms", c->addr, m->phase.name, m->phase.ms);
                conn_phase_note(c, m->phase.name, m->phase.ms);
                /* The session shows its logon screen: the user types, within the screen's bound
                 * rather than the handshake's. */
                if (c->state == CONN_PREAUTH && strcmp(m->phase.name, "logon-screen") == 0)
                        screen_start(c);
                break;
        case IPC_ACTIVITY:
                if (ev && ev->on_activity)
                        ev->on_activity(c);
                break;
        case IPC_SIGN:
                on_sign(c, m);
                break;
        default:
                break;
        }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
        Conn *c = p->data;
        uint8_t buf[4096];
        if (status < 0) {
                conn_close(c, "IPC poll error");
                return;
        }
        for (;;) {
                int fd;
                ssize_t n = ipc_recv(c->ipc_fd, buf, sizeof buf, &fd);
                if (fd >= 0) {
                        close(fd);
                        conn_kill(c, "slate-session sent a file descriptor");
                        return;
                }
                if (n == -EAGAIN)
                        return;
                if (n <= 0) {
                        conn_close(c, n == 0 ? "slate-session closed the IPC" : "IPC read error");
                        return;
                }
                size_t off = 0;
                while (off < (size_t)n && c->state != CONN_DEAD) {
                        size_t used;
                        Frame f;
                        int r = frame_parser_feed(&c->parser, buf + off, (size_t)n - off, &used, &f);
                        off += used;
                        if (r < 0) {
                                conn_kill(c, r == -EMSGSIZE ? "IPC frame over the limit" : "malformed IPC frame");
                                return;
                        }
                        if (r == 0)
                                break;
                        if (!conn_permits(c->state, f.type)) {
                                char why[96];
                                snprintf(why, sizeof why, "IPC %s not permitted in phase %d", ipc_type_name(f.type),
                                         c->state);
                                conn_kill(c, why);
                                return;
                        }
                        IpcMsg m;
                        if (ipc_msg_decode(&f, &m) < 0) {
                                conn_kill(c, "malformed IPC message");
                                return;
                        }
                        handle_msg(c, &m);
                        ipc_msg_clear(&m);
                }
                if (c->state == CONN_DEAD)
                        return;
        }
}

static void exit_cb(uv_process_t *proc, int64_t status, int sig)
{
        Conn *c = proc->data;
        c->proc_running = false;
        /* Reaped: nothing runs as its uid any more (its filter lets it start no process). */
        if (c->has_uid) {
                idrange_release(c->b->session_ids, c->uid);
                c->has_uid = false;
        }
        if (sig == SIGSYS)
                log_warn("connection %s: slate-session (pid %d) killed by its seccomp filter (a forbidden system call)",
                         c->addr, (int)c->pid);
        else if (sig && sig != SIGKILL)
                log_warn("connection %s: slate-session (pid %d) killed by signal %d", c->addr, (int)c->pid, sig);
        conn_close(c, "slate-session exited");
        uv_close((uv_handle_t *)proc, handle_closed);
}

static void auth_timeout_cb(uv_timer_t *t)
{
        Conn *c = t->data;
        if (c->state == CONN_AUTHENTICATING) {
                log_warn("connection %s: PAM did not answer within %u s", c->addr, c->b->cfg->auth_timeout);
                conn_kill(c, "PAM did not answer in time");
        }
}

static void handshake_timeout_cb(uv_timer_t *t)
{
        Conn *c = t->data;
        if (c->state == CONN_PREAUTH)
                conn_kill(c, "no credentials before the handshake timeout");
}

static void send_config(Conn *c)
{
        Broker *b = c->b;
        IpcMsg m = { .type = IPC_CONFIG };
        m.config.cert_pem = b->tls_cert_pem;
        m.config.max_width = 4096;
        m.config.max_height = 2160;
        m.config.handshake_timeout_ms = b->cfg->handshake_timeout * 1000;
        snprintf(m.config.banner, sizeof m.config.banner, "%s", b->cfg->logon_banner ? b->cfg->logon_banner : "");
        conn_send(c, &m, -1);
}

static void out_drops_report(Conn *c)
{
        if (c->out_dropped)
                log_warn("connection %s (pid %d): %u lines of its output not logged (over %d a second)", c->addr,
                         (int)c->pid, c->out_dropped, CONN_OUT_LINES_PER_S);
        c->out_dropped = 0;
}

/* One line the session wrote: its own log lines carry a "<level>" prefix, kept as the level;
 * anything else (FreeRDP's WLog, a library's complaint) is logged as info. Escaped either way. */
static void out_line(Conn *c, const char *line, size_t len, bool cut)
{
        uint64_t sec = now_ms() / 1000;
        if (sec != c->out_sec) {
                out_drops_report(c);
                c->out_sec = sec;
                c->out_count = 0;
        }
        if (++c->out_count > CONN_OUT_LINES_PER_S) {
                c->out_dropped++;
                return;
        }
        int level = LOG_LVL_INFO;
        if (len >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
                level = line[1] - '0' < LOG_LVL_ERR ? LOG_LVL_ERR : line[1] - '0';
                line += 3;
        }
        char esc[CONN_OUT_LINE_MAX * 4 + 1];
        log_msg(level, "connection %s (pid %d): %s%s", c->addr, (int)c->pid, log_escape_line(line, esc, sizeof esc),
                cut ? " [cut]" : "");
}

static void out_line_cb(void *ud, char *line, size_t len, bool cut) { out_line(ud, line, len, cut); }

static void out_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
        Conn *c = h->data;
        *buf = uv_buf_init(c->out_buf, sizeof c->out_buf);
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        Conn *c = s->data;
        if (n < 0) {
                size_t len;
                char *last = linebuf_finish(&c->out_lines, &len);
                if (last)
                        out_line(c, last, len, false);
                out_drops_report(c);
                uv_close((uv_handle_t *)s, handle_closed);
                return;
        }
        linebuf_feed_lines(&c->out_lines, buf->base, (size_t)n, out_line_cb, c);
}

/* Start slate-session on sock, or (sock < 0) a spare that waits for one: its own uid, setsid,
 * output to the log, the IPC polled. NULL when it could not start (sock is not closed). */
static Conn *session_start(Broker *b, int sock, const char *addr)
{
        int sp[2], out[2];
        uint32_t uid = 0;
        if (b->session_ids && idrange_take(b->session_ids, &uid) < 0) {
                if (sock >= 0)
                        log_warn("connection %s refused: all %u session uids are in use (session-uid-count)", addr,
                                 b->cfg->session_uid_count);
                else
                        log_debug("spare slate-session: all %u session uids are in use", b->cfg->session_uid_count);
                return NULL;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
                log_error("connection %s: socketpair: %m", addr);
                goto fail_uid;
        }
        if (pipe2(out, O_CLOEXEC) < 0) {
                log_error("connection %s: pipe: %m", addr);
                close(sp[0]);
                close(sp[1]);
                goto fail_uid;
        }
        Conn *c = xmalloc0(sizeof *c);
        c->b = b;
        c->refs = 1;
        c->ipc_fd = sp[0];
        c->spawn_ms = c->accept_ms = now_ms();
        c->state = sock >= 0 ? CONN_PREAUTH : CONN_SPARE;
        snprintf(c->addr, sizeof c->addr, "%s", addr);
        ipc_parser_init(&c->parser, IPC_PREAUTH_MAX);
        linebuf_init(&c->out_lines, CONN_OUT_LINE_MAX);

        char *args[] = { b->cfg->session_program, sock >= 0 ? NULL : "--spare", NULL };
        char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL, NULL, NULL, NULL };
        char lvl[32];
        snprintf(lvl, sizeof lvl, "SLATE_LOG_LEVEL=%d", b->cfg->log_level);
        env[1] = lvl;
        size_t ne = 2;
        /* rdp-h264 = off: surface bits for every client (a client whose H.264 misbehaves). */
        if (!b->cfg->rdp_h264)
                env[ne++] = "SLATE_SESSION_NO_GFX=1";
        /* Debugging a filter that is too tight: its misses logged (by the kernel), not refused. */
        const char *sc = getenv("SLATE_SESSION_SECCOMP");
        char scbuf[64];
        if (sc && strlen(sc) < 32) {
                snprintf(scbuf, sizeof scbuf, "SLATE_SESSION_SECCOMP=%s", sc);
                env[ne++] = scbuf;
        }
        /* stdin: libuv gives an ignored fd 0 /dev/null. stdout and stderr: one pipe to us. A
         * spare's fd 3 stays closed: its socket comes with IPC_CLIENT. */
        uv_stdio_container_t stdio[5] = {
                { .flags = UV_IGNORE },
                { .flags = UV_INHERIT_FD, .data.fd = out[1] },
                { .flags = UV_INHERIT_FD, .data.fd = out[1] },
                { .flags = sock >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = sock },
                { .flags = UV_INHERIT_FD, .data.fd = sp[1] },
        };
        /* DETACHED is setsid(): no controlling terminal, so no TIOCSTI into slated's, and out of
         * slated's process group (a ^C reaches slated, which stops its sessions itself). The
         * handle stays referenced: exit_cb still comes. */
        uv_process_options_t o = {
                .exit_cb = exit_cb, .file = b->cfg->session_program, .args = args, .env = env,
                .stdio = stdio, .stdio_count = 5, .flags = UV_PROCESS_DETACHED,
        };
        if (b->session_ids) {
                /* libuv calls setgroups(0, NULL) with these: no supplementary groups. */
                o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
                o.uid = uid;
                o.gid = uid;
                c->uid = uid;
                c->has_uid = true;
        }
        c->proc.data = c;
        int r = uv_spawn(b->loop, &c->proc, &o);
        close(sp[1]);
        close(out[1]);
        if (r < 0) {
                log_error("connection %s: cannot start %s: %s", addr, b->cfg->session_program, uv_strerror(r));
                close(out[0]);
                if (c->has_uid)
                        idrange_release(b->session_ids, c->uid);
                /* uv_spawn has linked the handle into the loop before it failed: it must be closed,
                 * and the connection freed only once it is (handle_closed; hv_qemu.c does the same). */
                c->open_handles = 1;
                uv_close((uv_handle_t *)&c->proc, handle_closed);
                return NULL;
        }
        c->pid = c->proc.pid;
        c->proc_running = true;
        c->open_handles = 2;    /* the process handle, closed in exit_cb; the output pipe, at its EOF */
        uv_pipe_init(b->loop, &c->out, 0);
        c->out.data = c;
        uv_pipe_open(&c->out, out[0]);
        uv_read_start((uv_stream_t *)&c->out, out_alloc, out_read);
        uv_timer_init(b->loop, &c->timer);
        c->timer.data = c;
        uv_timer_init(b->loop, &c->screen_timer);
        c->screen_timer.data = c;
        uv_poll_init(b->loop, &c->poll, c->ipc_fd);
        c->poll.data = c;
        uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, poll_cb);
        c->poll_running = true;
        if (sock < 0)
                log_debug("spare: pid %d uid %u started, waits for a client", (int)c->pid, (unsigned)c->uid);
        return c;
fail_uid:
        if (b->session_ids)
                idrange_release(b->session_ids, uid);
        return NULL;
}

/* From the accept on, a connection like any other: counted before auth, the handshake's clock
 * running, the config sent. */
static void conn_begin(Conn *c, const char *addr)
{
        Broker *b = c->b;
        c->state = CONN_PREAUTH;
        c->accept_ms = now_ms();
        snprintf(c->addr, sizeof c->addr, "%s", addr);
        if (c->has_uid)
                log_debug("connection %s: slate-session pid %d uid %u", addr, (int)c->pid, (unsigned)c->uid);
        else
                log_debug("connection %s: slate-session pid %d", addr, (int)c->pid);
        c->counted_preauth = true;
        b->preauth++;
        c->next = b->conns;
        b->conns = c;
        uv_timer_start(&c->timer, handshake_timeout_cb, (uint64_t)b->cfg->handshake_timeout * 1000, 0);
        send_config(c);
}

static void spares_refill(Broker *b);

static void spare_timer_cb(uv_timer_t *t) { spares_refill(t->data); }

static void spares_schedule(Broker *b, uint64_t ms)
{
        if (b->spares_stopped || b->cfg->session_spares == 0)
                return;
        uv_timer_start(&b->spare_timer, spare_timer_cb, ms, 0);
}

static uint64_t spare_backoff_ms(const Broker *b)
{
        if (b->spare_fails == 0)
                return 0;
        uint64_t ms = SPARE_BACKOFF_MIN_MS;
        for (unsigned i = 1; i < b->spare_fails && ms < SPARE_BACKOFF_MAX_MS; i++)
                ms *= 2;
        return ms < SPARE_BACKOFF_MAX_MS ? ms : SPARE_BACKOFF_MAX_MS;
}

static void spares_refill(Broker *b)
{
        if (b->spares_stopped || b->n_listeners == 0)
                return;
        unsigned n = 0;
        for (Conn *c = b->session_spares; c; c = c->next)
                n++;
        while (n < b->cfg->session_spares) {
                Conn *c = session_start(b, -1, "spare");
                if (!c) {
                        b->spare_fails++;
                        spares_schedule(b, spare_backoff_ms(b));
                        return;
                }
                c->next = b->session_spares;
                b->session_spares = c;
                n++;
        }
}

/* A spare ended without a client (crashed, killed, misbehaved): another one, after a pause when
 * it did not live long. */
static void spare_lost(Conn *c)
{
        Broker *b = c->b;
        if (b->spares_stopped)
                return;
        if (now_ms() - c->spawn_ms < SPARE_FAILED_START_MS)
                b->spare_fails++;
        else
                b->spare_fails = 0;
        log_warn("spare slate-session (pid %d) ended before a client came; another in %llu ms", (int)c->pid,
                 (unsigned long long)spare_backoff_ms(b));
        spares_schedule(b, spare_backoff_ms(b));
}

void conn_spares_start(Broker *b)
{
        uv_timer_init(b->loop, &b->spare_timer);
        b->spare_timer.data = b;
        b->spare_timer_open = true;
        spares_refill(b);
}

/* The oldest spare still waiting (the IPC up: poll would have closed it otherwise). */
static Conn *spare_take(Broker *b)
{
        Conn **last = NULL;
        for (Conn **p = &b->session_spares; *p; p = &(*p)->next)
                last = p;
        if (!last)
                return NULL;
        Conn *c = *last;
        *last = c->next;
        c->next = NULL;
        return c;
}

void conn_spawn(Broker *b, int sock, const char *addr)
{
        Conn *c;
        while ((c = spare_take(b))) {
                IpcMsg m = { .type = IPC_CLIENT };
                if (ipc_send(c->ipc_fd, &m, sock) == 0) {
                        close(sock);
                        log_debug("connection %s: to the spare started %llu ms ago", addr,
                                  (unsigned long long)(now_ms() - c->spawn_ms));
                        b->spare_fails = 0;
                        conn_begin(c, addr);
                        /* The next spare starts after this loop turn, not in the accept's. */
                        spares_schedule(b, 0);
                        return;
                }
                /* Gone meanwhile: it is not a connection; it is reaped as a spare would be. */
                c->state = CONN_SPARE;
                c->next = b->session_spares;
                b->session_spares = c;
                conn_close(c, "spare lost its IPC");
        }
        c = session_start(b, sock, addr);
        close(sock);
        if (c)
                conn_begin(c, addr);
}

void conn_stop_all(Broker *b)
{
        /* Spares have no client to say goodbye to. */
        b->spares_stopped = true;
        while (b->session_spares) {
                Conn *c = b->session_spares;
                conn_close(c, "slated stops");
        }
        if (b->spare_timer_open) {
                b->spare_timer_open = false;
                uv_close((uv_handle_t *)&b->spare_timer, NULL);
        }
        /* Their children lose the IPC when slated exits and disconnect. */
        for (Conn *c = b->conns; c; c = c->next)
                if (c->proc_running)
                        uv_process_kill(&c->proc, SIGTERM);
}
