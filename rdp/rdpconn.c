/* The slate-session state machine (see rdpconn.h). Phases follow slated's permit table:
 * config → handshake (until Client Info) → [logon screen ⇄ auth] → attach → running, with refusal
 * and end reachable from anywhere. slated's messages are trusted only in the phase that expects
 * them; anything else ends the process. The client is activated at its own size once slated
 * answered its password and sees slate-session's own screens (rdp/screens.h: the logon screen,
 * then the progress screen) until the desktop is usable; then the console's frames. Nothing typed
 * is logged. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <freerdp/error.h>
#include <freerdp/settings.h>
#include "common/ipc.h"
#include "common/log.h"
#include "common/util.h"
#include "rdp/console.h"
#include "rdp/encoder.h"
#include "rdp/input.h"
#include "rdp/keyless.h"
#include "rdp/peer.h"
#include "rdp/rdpconn.h"
#include "rdp/rdpconn_int.h"
#include "rdp/screens.h"

#define REFUSAL_MS 15000                /* a refused client must activate within this to be told why */
#define HANDSHAKE_DEFAULT_MS 30000
#define SIGN_WAIT_MS 10000              /* slated signs on its loop at once; this is for a stuck slated */
#define HANDSHAKE_MAX_MS 300000
#define DIM_DEFAULT_W 4096
#define DIM_DEFAULT_H 2160
#define DIM_MAX 8192
#define LOGON_WAIT_MS 120000            /* the logon screen waits this long for the user's Enter */
#define LOGON_ATTEMPTS_MAX 3            /* slated allows as many per connection, then closes */
#define FAILED_SHOW_MS 5000             /* a session that did not come up: its reason stays this long */
/* Longest hold of the client before Demand Active while slated checks the password: under FreeRDP
 * 2's activation wait (TcpAckTimeout, 9 s by default), which xfreerdp gives up after ("Timeout
 * waiting for activation"). PAM answers in 0.7 s or more (slated pads refusals). */
#define PRE_ACTIVATION_MAX_MS 6000


void rdpconn_end(RdpConn *s, int code, uint32_t errinfo)
{
        if (s->phase == PH_END)
                return;
        s->phase = PH_END;
        s->exit_code = code;
        s->end_errinfo = errinfo;
}

void rdpconn_send_phase(RdpConn *s, const char *name)
{
        IpcMsg m = { .type = IPC_PHASE };
        snprintf(m.phase.name, sizeof m.phase.name, "%s", name);
        m.phase.ms = (uint32_t)(now_ms() - s->t0);
        if (ipc_send(s->ipc_fd, &m, -1) < 0)
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
}

static void refuse(RdpConn *s, uint32_t logon_error, uint32_t errinfo)
{
        s->phase = PH_REFUSED;
        s->refuse_logon = logon_error;
        s->refuse_errinfo = errinfo;
        /* The reason can only be shown once the client is activated; do not wait forever. */
        rdpconn_alarm(RDPCONN_ALARM_REFUSAL, REFUSAL_MS);
}

/* IPC_AUTH with s->user and s->domain; the caller wipes password. */
static int send_auth(RdpConn *s, const char *password, uint8_t flags)
{
        IpcMsg m = { .type = IPC_AUTH };
        snprintf(m.auth.user, sizeof m.auth.user, "%s", s->user);
        snprintf(m.auth.domain, sizeof m.auth.domain, "%s", s->domain);
        snprintf(m.auth.password, sizeof m.auth.password, "%s", password);
        snprintf(m.auth.client_host, sizeof m.auth.client_host, "%s", s->host);
        m.auth.width = (uint16_t)s->client_w;
        m.auth.height = (uint16_t)s->client_h;
        m.auth.flags = flags;
        int r = ipc_send(s->ipc_fd, &m, -1);
        ipc_msg_clear(&m);
        if (r < 0) {
                log_error("IPC: cannot send auth: %s", strerror(-r));
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                return r;
        }
        screens_welcome(s->screens, s->user);
        s->phase = PH_AUTH;
        return 0;
}

/* ---- the logon screen ---- */

/* The logon screen asks for the user name (prefilled) and password; slated relays PAM's further
 * prompts (IPC_PROMPT) to it. Bounded by LOGON_WAIT_MS per prompt and LOGON_ATTEMPTS_MAX tries. */
static void logon_screen_start(RdpConn *s, const char *user)
{
        s->interactive = true;
        screens_logon(s->screens, user);
        s->phase = PH_LOGON;
        s->logon_until = now_ms() + LOGON_WAIT_MS;
        if (s->refusals == 0)
                rdpconn_send_phase(s, "logon-screen");
}

/* Enter on the logon screen: the credentials, or the answer to slated's prompt. */
static void logon_submit(RdpConn *s)
{
        s->logon_until = 0;
        const char *user;
        const char *answer = screens_submit(s->screens, &user);
        if (!user) {
                IpcMsg m = { .type = IPC_PROMPT_REPLY };
                snprintf(m.prompt_reply.text, sizeof m.prompt_reply.text, "%s", answer);
                screens_answer_wipe(s->screens);
                int r = ipc_send(s->ipc_fd, &m, -1);
                ipc_msg_clear(&m);
                if (r < 0) {
                        rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                        return;
                }
                s->phase = PH_AUTH;
                return;
        }
        snprintf(s->user, sizeof s->user, "%.*s", IPC_NAME_MAX, user);
        char u_esc[LOG_ESCAPED_MAX];
        log_escape(s->user, u_esc, sizeof u_esc);
        log_info("logon screen: signing in as '%s' (attempt %u)", u_esc, s->refusals + 1);
        send_auth(s, answer, IPC_AUTH_INTERACTIVE);
        screens_answer_wipe(s->screens);
}

/* ---- FreeRDP events (called from inside peer_check) ---- */

static void on_credentials(void *ud, const char *user, const char *domain, char *password, const char *host,
                           uint32_t width, uint32_t height)
{
        RdpConn *s = ud;
        if (s->phase != PH_HANDSHAKE)
                return;
        /* The client's names go into log lines escaped: no forged lines, no terminal escapes. */
        char u_esc[LOG_ESCAPED_MAX], d_esc[LOG_ESCAPED_MAX], h_esc[LOG_ESCAPED_MAX];
        log_escape(user, u_esc, sizeof u_esc);
        log_escape(domain, d_esc, sizeof d_esc);
        log_escape(host, h_esc, sizeof h_esc);
        rdpconn_alarm(RDPCONN_ALARM_HANDSHAKE, 0);
        rdpconn_send_phase(s, "rdp-handshake");
        /* Kept for the logon screen; a host name is informative only: truncated. */
        snprintf(s->host, sizeof s->host, "%s", host);
        s->client_w = input_clamp_dim(width, 1, s->max_w);
        s->client_h = input_clamp_dim(height, 1, s->max_h);
        if ((!password || !*password) && !screens_can_logon(s->screens)) {
                log_warn("client %s: user '%s' sent no password and there is no logon screen (no font); refusing",
                         h_esc, u_esc);
                refuse(s, LOGON_FAILED_OTHER, ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED);
                return;
        }
        if (!password || !*password) {
                /* xfreerdp /u:x without /p: (or no /u: at all) sends no password and never
                 * prompts: the logon screen asks. An oversized name is not prefilled. */
                if (strlen(domain) <= IPC_NAME_MAX)
                        snprintf(s->domain, sizeof s->domain, "%s", domain);
                log_info("client %s: user '%s' sent no password: showing the logon screen", h_esc, u_esc);
                logon_screen_start(s, strlen(user) <= IPC_NAME_MAX ? user : "");
                return;
        }
        if (!*user || strlen(user) > IPC_NAME_MAX || strlen(domain) > IPC_NAME_MAX ||
            strlen(password) > IPC_PASSWORD_MAX) {
                log_warn("client %s: empty or oversized user name, domain or password; refusing", h_esc);
                refuse(s, LOGON_FAILED_BAD_PASSWORD, ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES);
                return;
        }
        snprintf(s->user, sizeof s->user, "%s", user);
        snprintf(s->domain, sizeof s->domain, "%s", domain);
        if (send_auth(s, password, 0) < 0)
                return;
        log_info("client %s: logon as '%s%s%s' (%ux%u), asking slated", h_esc, d_esc, *domain ? "\\" : "", u_esc,
                 width, height);
}

static int ipc_pump(RdpConn *s);

static void ipc_failed(RdpConn *s, int r)
{
        if (r == -EPIPE && (s->failing || s->phase == PH_REFUSED)) {
                /* The reason stays on the screen its while, or the refusal still goes to the
                 * client (bounded by its alarm); slated has nothing more to say. */
                s->ipc_closed = true;
                return;
        }
        if (r == -EPIPE) {
                log_info("slated closed the IPC: disconnecting the client");
                rdpconn_end(s, 0, ERRINFO_RPC_INITIATED_DISCONNECT);
        } else if (r < 0) {
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
        }
}

/* Between Client Info and the server's Demand Active (inside FreeRDP's licensing step): the
 * client waits for us and sends nothing. Hold it until slated has answered the password, so a
 * refused client is told so at activation (it never sees a screen), and an accepted one is
 * activated at its own size at once and sees the progress screen from its first frame. Bounded:
 * past the limit, or if the client speaks or leaves, go on (the main loop finishes the logon). */
static void before_demand_active(void *ud)
{
        RdpConn *s = ud;
        uint64_t start = now_ms(), limit = MIN(s->handshake_ms ? s->handshake_ms : HANDSHAKE_DEFAULT_MS,
                                               PRE_ACTIVATION_MAX_MS);
        while (s->phase == PH_AUTH) {
                int64_t left = (int64_t)(start + limit - now_ms());
                if (left <= 0) {
                        log_info("no answer to the credentials after %llu ms: activating the client",
                                 (unsigned long long)limit);
                        return;
                }
                struct pollfd pfd[2] = { { .fd = s->ipc_fd, .events = POLLIN },
                                         { .fd = peer_socket(s->peer), .events = POLLIN } };
                int k = poll(pfd, 2, (int)left);
                if (k < 0 && errno != EINTR) {
                        log_warn("poll: %m");
                        return;
                }
                if (k <= 0)
                        continue;
                if (pfd[1].revents)
                        return;
                if (pfd[0].revents)
                        ipc_failed(s, ipc_pump(s));
        }
}

static void on_activated(void *ud, uint32_t width, uint32_t height)
{
        RdpConn *s = ud;
        log_info("rdp: client active at %ux%u", width, height);
        s->reactivated = true;
        s->ever_active = true;
        screens_changed(s->screens);
}

/* Tell slated the user is active (for the idle timeout), at most every ACTIVITY_EVERY_MS. */
#define ACTIVITY_EVERY_MS 10000
static void note_activity(RdpConn *s)
{
        uint64_t now = now_ms();
        if (s->last_activity_ms && now - s->last_activity_ms < ACTIVITY_EVERY_MS)
                return;
        s->last_activity_ms = now;
        IpcMsg m = { .type = IPC_ACTIVITY };
        if (ipc_send(s->ipc_fd, &m, -1) < 0)
                rdpconn_end(s, 0, 0);
}

static void on_key(void *ud, uint16_t flags, uint16_t code)
{
        RdpConn *s = ud;
        InputKey k[2];
        if (s->phase == PH_LOGON) {
                if (screens_key(s->screens, flags, code))
                        logon_submit(s);
                return;
        }
        if (s->phase != PH_RUNNING || !s->showing_console)
                return;
        note_activity(s);
        int n = input_key_translate(&s->in, flags, code, k);
        for (int i = 0; i < n; i++)
                console_key(s->console, k[i].keysym, k[i].qnum, k[i].down);
}

static void on_unicode(void *ud, uint16_t flags, uint16_t code)
{
        RdpConn *s = ud;
        if (s->phase == PH_LOGON) {
                if (screens_unicode(s->screens, flags, code))
                        logon_submit(s);
                return;
        }
        if (s->phase != PH_RUNNING || !s->showing_console)
                return;
        uint32_t sym = console_unicode_to_keysym(code);
        note_activity(s);
        if (sym)
                console_key(s->console, sym, 0, !(flags & INPUT_KBD_RELEASE));
}

static void on_pointer(void *ud, bool extended, uint16_t flags, uint16_t x, uint16_t y)
{
        RdpConn *s = ud;
        InputPointer p[2];
        uint32_t stride, w, h;
        if (s->phase != PH_RUNNING || !s->showing_console)
                return;
        note_activity(s);
        console_framebuffer(s->console, &stride, &w, &h);
        int n = input_pointer_translate(&s->in, extended, flags, x, y, (int)w, (int)h, p);
        for (int i = 0; i < n; i++)
                console_pointer(s->console, p[i].x, p[i].y, p[i].mask);
}

static void on_refresh(void *ud)
{
        RdpConn *s = ud;
        if (s->showing_console)
                console_refresh(s->console);
        screens_refresh(s->screens);
}

static void on_suppress(void *ud, bool allow)
{
        RdpConn *s = ud;
        s->suppressed = !allow;
        if (allow)
                on_refresh(ud);
}

/* Frames restart on the new path as after an activation. */
static void on_graphics_changed(void *ud) { ((RdpConn *)ud)->reactivated = true; }

static const PeerCallbacks peer_callbacks = {
        .credentials = on_credentials, .before_demand_active = before_demand_active, .activated = on_activated,
        .key = on_key, .unicode = on_unicode, .pointer = on_pointer, .refresh = on_refresh,
        .suppress = on_suppress, .frame_ack = rdpconn_frame_ack, .graphics_changed = on_graphics_changed,
};

/* ---- IPC from slated ---- */

static void auth_refusal(uint8_t status, uint32_t *logon, uint32_t *errinfo)
{
        *logon = LOGON_FAILED_OTHER;
        *errinfo = ERRINFO_SERVER_DENIED_CONNECTION;
        if (status == IPC_AUTH_BAD_CREDENTIALS) {
                *logon = LOGON_FAILED_BAD_PASSWORD;
                *errinfo = ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES;
        } else if (status == IPC_AUTH_PASSWORD_EXPIRED) {
                /* RDP's own "the password must be changed"; over TLS security (no NLA) there is
                 * no password-change exchange, so the user changes it elsewhere. */
                *logon = LOGON_FAILED_UPDATE_PASSWORD;
                *errinfo = ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED;
        } else if (status == IPC_AUTH_NOT_ENTITLED || status == IPC_AUTH_ACCOUNT_EXPIRED ||
                   status == IPC_AUTH_ACCOUNT_DENIED) {
                *errinfo = ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES;
        }
}

/* IPC_END carries only text: pick the closest RDP disconnect reason the client can explain. */
static uint32_t end_errinfo(const char *reason)
{
        if (strcasestr(reason, "logout") || strcasestr(reason, "logoff") || strcasestr(reason, "log out"))
                return ERRINFO_LOGOFF_BY_USER;
        if (strcasestr(reason, "idle"))
                return ERRINFO_IDLE_TIMEOUT;
        if (strcasestr(reason, "another connection") || strcasestr(reason, "reconnect"))
                return ERRINFO_DISCONNECTED_BY_OTHER_CONNECTION;
        return ERRINFO_RPC_INITIATED_LOGOFF;
}

/* The TLS handshake's signature, made by slated (rdp/keyless.h): a blocking request inside
 * FreeRDP's tls_accept. Before authentication slated sends nothing unasked, so the next message is
 * the answer; anything else fails the handshake, and so the connection. */
static int sign_by_slated(void *ud, uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len)
{
        RdpConn *s = ud;
        if (len > IPC_SIGN_MAX)
                return -EMSGSIZE;
        IpcMsg m = { .type = IPC_SIGN };
        m.sign.alg = alg;
        m.sign.len = (uint16_t)len;
        memcpy(m.sign.data, in, len);
        int r = ipc_send(s->ipc_fd, &m, -1);
        if (r < 0)
                return r;
        IpcMsg a;
        if ((r = ipc_recv_one(s->ipc_fd, IPC_FRAME_MAX, SIGN_WAIT_MS, &a)) < 0)
                return r;
        if (a.type != IPC_SIGNATURE) {
                log_error("IPC: %s while waiting for a signature", ipc_type_name(a.type));
                ipc_msg_clear(&a);
                return -EBADMSG;
        }
        if (!a.sign.alg || a.sign.len == 0)
                return -EPERM;
        memcpy(out, a.sign.data, a.sign.len);
        *ret_len = a.sign.len;
        return 0;
}

static int on_config(RdpConn *s, IpcMsg *m)
{
        s->max_w = m->config.max_width ? MIN(m->config.max_width, DIM_MAX) : DIM_DEFAULT_W;
        s->max_h = m->config.max_height ? MIN(m->config.max_height, DIM_MAX) : DIM_DEFAULT_H;
        uint32_t hs = m->config.handshake_timeout_ms ? MIN(m->config.handshake_timeout_ms, HANDSHAKE_MAX_MS)
                                                     : HANDSHAKE_DEFAULT_MS;
        s->handshake_ms = hs;
        screens_set_banner(s->screens, m->config.banner);
        if (!m->config.cert_pem || !*m->config.cert_pem)
                return log_error_errno(-EINVAL, "IPC: config without a TLS certificate");
        int r = keyless_install(m->config.cert_pem, sign_by_slated, s);
        if (r < 0)
                return r;
        /* The handshake clock restarts now that slated gave the real limit. */
        rdpconn_alarm(RDPCONN_ALARM_HANDSHAKE, hs);
        r = peer_new(s->sock, m->config.cert_pem, &peer_callbacks, s, &s->peer);
        s->sock = -1;
        if (r < 0)
                return r;
        s->phase = PH_HANDSHAKE;
        log_debug("config: max %ux%u, handshake timeout %u ms", s->max_w, s->max_h, hs);
        return 0;
}

static int on_attach(RdpConn *s, IpcMsg *m)
{
        int fd = TAKE_FD(s->pending_fd);
        int r = console_open(fd, s->max_w, s->max_h, &s->console);
        if (r < 0) {
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                return 0;
        }
        uint32_t stride, w, h;
        console_framebuffer(s->console, &stride, &w, &h);
        log_info("desktop %s (session %s) attached: console %ux%u%s", m->attach.desktop_id, m->attach.session_id, w,
                 h, m->attach.reconnect ? ", reconnect" : "");
        s->phase = PH_RUNNING;
        s->attached_at = now_ms();
        rdpconn_send_phase(s, "attach");
        screens_attached(s->screens, !s->step_seen && !s->usable);
        /* The client may have taken the progress screen already: slated hears of it now. */
        rdpconn_report_first_frame(s);
        return 0;
}

/* Refused: on the logon screen, say why and let the user try again (LOGON_ATTEMPTS_MAX in all);
 * otherwise the client is told through RDP's logon error and the connection ends. */
static void auth_refused(RdpConn *s, const IpcMsg *m)
{
        uint32_t logon, errinfo;
        log_info("logon refused (%u): %s", m->auth_result.status, m->auth_result.message);
        auth_refusal(m->auth_result.status, &logon, &errinfo);
        if (!s->interactive || ++s->refusals >= LOGON_ATTEMPTS_MAX) {
                refuse(s, logon, errinfo);
                return;
        }
        logon_screen_start(s, s->user);
        const char *why = m->auth_result.message;
        if (m->auth_result.status == IPC_AUTH_BAD_CREDENTIALS || !*why)
                why = "The user name or password is incorrect.";
        screens_message(s->screens, why, true);
}

static void on_progress(RdpConn *s, const IpcMsg *m)
{
        switch (m->progress.kind) {
        case IPC_PROGRESS_STEP:
                log_debug("progress %u/%u", m->progress.step, m->progress.steps);
                s->step_seen = true;
                screens_step(s->screens, m->progress.title, m->progress.text, m->progress.step, m->progress.steps);
                break;
        case IPC_PROGRESS_USABLE:
                if (!s->usable) {
                        log_info("desktop usable after %llu ms", (unsigned long long)(now_ms() - s->t0));
                        s->usable_at = now_ms();
                }
                s->usable = true;
                break;
        case IPC_PROGRESS_FAILED:
                log_info("the session did not come up: %s", m->progress.text);
                s->failing = true;
                s->usable = false;
                s->fail_until = now_ms() + FAILED_SHOW_MS;
                screens_failed(s->screens, m->progress.text);
                break;
        default:
                break;
        }
        screens_changed(s->screens);
}

static void on_prompt(RdpConn *s, const IpcMsg *m)
{
        switch (m->prompt.style) {
        case IPC_PROMPT_SECRET:
        case IPC_PROMPT_TEXT:
                /* The answer field only, under the user's name. */
                screens_prompt(s->screens, s->user, m->prompt.text, m->prompt.style == IPC_PROMPT_SECRET);
                s->phase = PH_LOGON;
                s->logon_until = now_ms() + LOGON_WAIT_MS;
                break;
        default:
                screens_message(s->screens, m->prompt.text, m->prompt.style == IPC_PROMPT_ERROR);
                break;
        }
}

static int handle_msg(RdpConn *s, IpcMsg *m)
{
        /* The console fd rides on the first bytes of IPC_ATTACH, but a stream read may return
         * it together with earlier messages: it stays pending until that ATTACH completes. */
        switch (m->type) {
        case IPC_CONFIG:
                if (s->phase != PH_CONFIG)
                        break;
                return on_config(s, m);
        case IPC_AUTH_RESULT:
                if (s->phase != PH_AUTH)
                        break;
                if (m->auth_result.status == IPC_AUTH_OK) {
                        log_info("logon accepted%s%s", *m->auth_result.message ? ": " : "", m->auth_result.message);
                        screens_signed_in(s->screens);
                        s->phase = PH_ATTACH;
                        rdpconn_send_phase(s, "auth");
                } else {
                        auth_refused(s, m);
                }
                return 0;
        case IPC_PROMPT:
                /* PAM asks more: only while slated authenticates a logon typed on the screen. */
                if (s->phase != PH_AUTH || !s->interactive)
                        break;
                on_prompt(s, m);
                return 0;
        case IPC_ATTACH:
                if (s->phase != PH_ATTACH)
                        break;
                if (s->pending_fd < 0)
                        return log_error_errno(-EBADMSG, "IPC: attach without the console fd");
                return on_attach(s, m);
        case IPC_PROGRESS:
                /* What the logon is doing: shown by the progress screen. */
                if (s->phase < PH_AUTH)
                        break;
                on_progress(s, m);
                return 0;
        case IPC_END:
                log_info("session ended by slated: %s", m->end.reason);
                if (s->phase == PH_REFUSED)
                        return 0;       /* after a last refusal (the logon screen's third): the client is told that */
                if (s->peer && !s->ever_active && s->phase >= PH_HANDSHAKE) {
                        /* Not activated yet (the logon failed before): told at activation, as a
                         * refusal; a client dropped mid-connect would retry with other security. */
                        refuse(s, LOGON_FAILED_OTHER, end_errinfo(m->end.reason));
                        return 0;
                }
                if (s->failing) {
                        /* The failure's reason stays on the screen its while first. */
                        s->end_pending = true;
                        s->pending_errinfo = end_errinfo(m->end.reason);
                        return 0;
                }
                rdpconn_end(s, 0, end_errinfo(m->end.reason));
                return 0;
        default:
                break;
        }
        return log_error_errno(-EBADMSG, "IPC: unexpected %s message in phase %d", ipc_type_name(m->type), s->phase);
}

/* Read and handle what slated sent. -EPIPE on EOF, other negatives on protocol errors. */
static int ipc_pump(RdpConn *s)
{
        uint8_t buf[8192];
        for (;;) {
                int fd = -1;
                ssize_t n = ipc_recv(s->ipc_fd, buf, sizeof buf, &fd);
                if (fd >= 0) {
                        if (s->pending_fd >= 0) {
                                close(fd);
                                return log_error_errno(-EBADMSG, "IPC: two file descriptors");
                        }
                        s->pending_fd = fd;
                }
                if (n == -EAGAIN)
                        return 0;
                if (n == 0)
                        return -EPIPE;
                if (n < 0)
                        return log_error_errno((int)n, "IPC: read: %s", strerror((int)-n));
                size_t off = 0;
                int r = 0;
                while (off < (size_t)n && r == 0 && s->phase != PH_END) {
                        size_t used = 0;
                        Frame f;
                        int k = frame_parser_feed(&s->parser, buf + off, (size_t)n - off, &used, &f);
                        off += used;
                        if (k < 0) {
                                r = log_error_errno(-EBADMSG, "IPC: bad frame from slated (%s)", strerror(-k));
                                break;
                        }
                        if (k == 0)
                                break;
                        IpcMsg m;
                        if (ipc_msg_decode(&f, &m) < 0) {
                                r = log_error_errno(-EBADMSG, "IPC: malformed message type %u", f.type);
                        } else {
                                r = handle_msg(s, &m);
                                ipc_msg_clear(&m);
                        }
                        /* The parser's buffer may hold the TLS private key. */
                        secret_wipe((void *)f.payload, f.len);
                }
                secret_wipe(buf, (size_t)n);
                if (r < 0)
                        return r;
                if (s->phase == PH_END)
                        return 0;
        }
}

/* ---- frames ---- */

/* ---- the loop ---- */

/* The next of the loop's own deadlines (a failure's message, the logon screen), as a poll timeout. */
static int loop_timeout(const RdpConn *s)
{
        uint64_t at = 0, now = now_ms();
        if (s->failing)
                at = s->fail_until;
        if (s->phase == PH_LOGON && s->logon_until && (!at || s->logon_until < at))
                at = s->logon_until;
        if (s->phase == PH_RUNNING && !s->usable && !s->step_seen && s->attached_at + BLACK_WAIT_MS > now &&
            (!at || s->attached_at + BLACK_WAIT_MS < at))
                at = s->attached_at + BLACK_WAIT_MS;
        if (s->phase == PH_RUNNING && s->usable && !s->usable_sent && s->usable_at &&
            s->usable_at + BLACK_WAIT_MS > now && (!at || s->usable_at + BLACK_WAIT_MS < at))
                at = s->usable_at + BLACK_WAIT_MS;
        if (s->phase == PH_RUNNING && s->showing_console && s->enc && s->console &&
            console_frame_window_open(s->console)) {
                int w = encoder_refine_wait(s->enc);
                if (w >= 0 && (!at || now + (uint64_t)w < at))
                        at = now + (uint64_t)w;
        }
        if (!at)
                return -1;
        return at <= now ? 0 : (int)MIN(at - now, (uint64_t)INT32_MAX);
}

static void loop_deadlines(RdpConn *s)
{
        uint64_t now = now_ms();
        if (s->failing && now >= s->fail_until) {
                rdpconn_end(s, 0, s->end_pending ? s->pending_errinfo : ERRINFO_RPC_INITIATED_DISCONNECT);
        } else if (s->phase == PH_LOGON && s->logon_until && now >= s->logon_until) {
                log_info("logon screen: nobody signed in within %u s, disconnecting", LOGON_WAIT_MS / 1000);
                rdpconn_end(s, 2, ERRINFO_IDLE_TIMEOUT);
        }
}

int rdpconn_run(int sock, int ipc, Screen *screen)
{
        RdpConn s = { .t0 = now_ms(), .sock = sock, .ipc_fd = ipc, .pending_fd = -1, .phase = PH_CONFIG };
        if (screens_new(screen, &s.screens) < 0) {
                close(sock);
                return 1;
        }
        s.codec_pref = getenv("SLATE_SESSION_CODEC");
        const char *bench = getenv("SLATE_SESSION_BENCH_FRAMES");
        unsigned nb;
        if (bench && parse_uint(bench, 1000, &nb) == 0)
                s.bench_left = nb;
        ipc_parser_init(&s.parser, IPC_FRAME_MAX);
        /* slated sends the config right after exec; the same limit covers waiting for it. */
        rdpconn_alarm(RDPCONN_ALARM_HANDSHAKE, HANDSHAKE_DEFAULT_MS);

        while (s.phase != PH_END) {
                struct pollfd pfd[48];
                int n = 0;
                pfd[n++] = (struct pollfd){ .fd = s.ipc_closed ? -1 : s.ipc_fd, .events = POLLIN };
                int peer0 = n;
                if (s.peer)
                        n += peer_pollfds(s.peer, pfd + n, 40);
                int peer1 = n, vnc = -1;
                if (s.console) {
                        vnc = n;
                        pfd[n++] = (struct pollfd){ .fd = console_fd(s.console), .events = POLLIN };
                }
                if (poll(pfd, (nfds_t)n, loop_timeout(&s)) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("poll: %m");
                        rdpconn_end(&s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                        break;
                }
                if (pfd[0].revents)
                        ipc_failed(&s, ipc_pump(&s));
                loop_deadlines(&s);
                bool peer_ready = false;
                for (int i = peer0; i < peer1; i++)
                        peer_ready |= pfd[i].revents != 0;
                if (s.phase != PH_END && s.peer && peer_ready && peer_check(s.peer) < 0) {
                        log_info("client disconnected");
                        rdpconn_end(&s, 0, 0);
                        peer_close(s.peer, 0);
                }
                if (s.phase != PH_END && vnc >= 0 && pfd[vnc].revents && console_process(s.console) < 0) {
                        log_error("desktop console closed");
                        rdpconn_end(&s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                }
                if (s.phase == PH_END)
                        break;
                if (s.reactivated) {
                        s.reactivated = false;
                        /* After (re)activation the client decoder starts fresh and old acks are void.
                         * Frames wait for the next encoder, which says whether the client acks. */
                        s.enc = encoder_free(s.enc);
                        s.enc_w = s.enc_h = 0;
                        if (s.console)
                                console_frame_restart(s.console, false);
                        screens_refresh(s.screens);
                }
                if (s.phase == PH_REFUSED && peer_is_active(s.peer)) {
                        peer_refuse(s.peer, s.refuse_logon, s.refuse_errinfo);
                        rdpconn_end(&s, 0, 0);
                        break;
                }
                if ((s.phase == PH_LOGON || s.phase == PH_AUTH || s.phase == PH_ATTACH || s.phase == PH_RUNNING) &&
                    rdpconn_pump_frame(&s) < 0) {
                        log_info("client connection lost while sending");
                        peer_close(s.peer, 0);
                        rdpconn_end(&s, 0, 0);
                }
        }

        if (s.full_frames > 0 && s.enc)
                log_info("%u full frames with %s: avg %llu bytes, encode cpu %.1f ms, send %.1f ms", s.full_frames,
                         encoder_codec(s.enc),
                         (unsigned long long)(s.full_stats.bytes / s.full_frames),
                         s.full_stats.cpu_us / 1000.0 / s.full_frames, s.full_stats.send_us / 1000.0 / s.full_frames);
        if (s.peer)
                peer_close(s.peer, s.end_errinfo);
        s.enc = encoder_free(s.enc);
        s.screens = screens_free(s.screens);
        s.console = console_free(s.console);
        s.peer = peer_free(s.peer);
        if (s.pending_fd >= 0)
                close(s.pending_fd);
        if (s.sock >= 0)
                close(s.sock);
        frame_parser_free(&s.parser);
        return s.exit_code;
}
