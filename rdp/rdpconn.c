/* The slate-session state machine (see rdpconn.h). Phases follow slated's permit table:
 * config → handshake (until Client Info) → auth → attach → running, with refusal and end
 * reachable from anywhere. slated's messages are trusted only in the phase that expects them;
 * anything else ends the process. */
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

#define SEND_STALL_MS 30000             /* one frame may take this long to reach the kernel */
#define REFUSAL_MS 15000                /* a refused client must activate within this to be told why */
#define HANDSHAKE_DEFAULT_MS 30000
#define SIGN_WAIT_MS 10000              /* slated signs on its loop at once; this is for a stuck slated */
#define HANDSHAKE_MAX_MS 300000
#define DIM_DEFAULT_W 4096
#define DIM_DEFAULT_H 2160
#define DIM_MAX 8192
/* Longest hold of the client before Demand Active: under FreeRDP 2's activation wait (TcpAckTimeout,
 * 9 s by default), which xfreerdp gives up after ("Timeout waiting for activation"), with room for
 * the round trips after it. A logon that attaches app layers and a profile under TCG takes longer
 * (10-20 s): the client is activated at its own size and resized when the console comes. */
#define PRE_ACTIVATION_MAX_MS 6000

typedef enum Phase { PH_CONFIG, PH_HANDSHAKE, PH_AUTH, PH_REFUSED, PH_ATTACH, PH_RUNNING, PH_END } Phase;

typedef struct RdpConn {
        uint64_t t0;
        int sock, ipc_fd, pending_fd;
        FrameParser parser;
        Phase phase;
        int exit_code;
        uint32_t end_errinfo;           /* error info for the client when we close */
        uint32_t max_w, max_h;
        uint32_t handshake_ms;
        Peer *peer;
        Console *console;
        Encoder *enc;
        uint32_t enc_w, enc_h;
        InputState in;
        const char *codec_pref;
        uint32_t refuse_logon, refuse_errinfo;
        bool reactivated, suppressed;
        uint32_t resize_tried_w, resize_tried_h;
        bool cropped;                   /* the client cannot resize: it sees the top-left part */
        uint32_t first_frame_id;
        bool first_sent, first_reported;
        uint32_t bench_left;            /* extra full frames to measure the codec */
        EncoderStats full_stats;
        uint32_t full_frames;
        uint64_t last_activity_ms;      /* when slated last heard the user is active */
} RdpConn;

static void rdpconn_end(RdpConn *s, int code, uint32_t errinfo)
{
        if (s->phase == PH_END)
                return;
        s->phase = PH_END;
        s->exit_code = code;
        s->end_errinfo = errinfo;
}

static void send_phase(RdpConn *s, const char *name)
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
        send_phase(s, "rdp-handshake");
        if (!password || !*password) {
                /* xfreerdp /u:x without /p: sends no password and never prompts. */
                log_warn("client %s: user '%s' sent no password; refusing (the client must pass one, e.g. /p:)",
                         h_esc, u_esc);
                refuse(s, LOGON_FAILED_OTHER, ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED);
                return;
        }
        if (!*user || strlen(user) > IPC_NAME_MAX || strlen(domain) > IPC_NAME_MAX ||
            strlen(password) > IPC_PASSWORD_MAX) {
                log_warn("client %s: empty or oversized user name, domain or password; refusing", h_esc);
                refuse(s, LOGON_FAILED_BAD_PASSWORD, ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES);
                return;
        }
        IpcMsg m = { .type = IPC_AUTH };
        snprintf(m.auth.user, sizeof m.auth.user, "%s", user);
        snprintf(m.auth.domain, sizeof m.auth.domain, "%s", domain);
        snprintf(m.auth.password, sizeof m.auth.password, "%s", password);
        /* A host name is informative only: truncate rather than refuse. */
        snprintf(m.auth.client_host, sizeof m.auth.client_host, "%s", host);
        m.auth.width = (uint16_t)input_clamp_dim(width, 1, s->max_w);
        m.auth.height = (uint16_t)input_clamp_dim(height, 1, s->max_h);
        int r = ipc_send(s->ipc_fd, &m, -1);
        ipc_msg_clear(&m);
        if (r < 0) {
                log_error("IPC: cannot send auth: %s", strerror(-r));
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                return;
        }
        log_info("client %s: logon as '%s%s%s' (%ux%u), asking slated", h_esc, d_esc, *domain ? "\\" : "", u_esc,
                 width, height);
        s->phase = PH_AUTH;
}

static int ipc_pump(RdpConn *s);

static void ipc_failed(RdpConn *s, int r)
{
        if (r == -EPIPE) {
                log_info("slated closed the IPC: disconnecting the client");
                rdpconn_end(s, 0, ERRINFO_RPC_INITIATED_DISCONNECT);
        } else if (r < 0) {
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
        }
}

/* Between Client Info and the server's Demand Active (inside FreeRDP's licensing step): the
 * client waits for us and sends nothing. Hold it until slated answered and the console is
 * attached, so the client activates once at the guest's size instead of activating at its own
 * and being resized right after. Bounded: past the limit, or if the client speaks or leaves,
 * go on as before (the main loop finishes the logon and resizes). */
static void before_demand_active(void *ud)
{
        RdpConn *s = ud;
        uint64_t start = now_ms(), limit = MIN(s->handshake_ms ? s->handshake_ms : HANDSHAKE_DEFAULT_MS,
                                               PRE_ACTIVATION_MAX_MS);
        while (s->phase == PH_AUTH || s->phase == PH_ATTACH) {
                int64_t left = (int64_t)(start + limit - now_ms());
                if (left <= 0) {
                        log_info("no console after %llu ms: activating the client at its own size",
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
        if (s->phase != PH_RUNNING)
                return;
        uint32_t stride, w, h;
        console_framebuffer(s->console, &stride, &w, &h);
        int r = peer_preset_size(s->peer, w, h);
        if (r < 0)
                log_warn("rdp: cannot start the client at the console size %ux%u: %s", w, h, strerror(-r));
        else
                log_debug("console attached %llu ms after the credentials", (unsigned long long)(now_ms() - start));
}

static void on_activated(void *ud, uint32_t width, uint32_t height)
{
        RdpConn *s = ud;
        log_info("rdp: client active at %ux%u", width, height);
        s->reactivated = true;
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
        if (s->phase != PH_RUNNING)
                return;
        note_activity(s);
        int n = input_key_translate(&s->in, flags, code, k);
        for (int i = 0; i < n; i++)
                console_key(s->console, k[i].keysym, k[i].qnum, k[i].down);
}

static void on_unicode(void *ud, uint16_t flags, uint16_t code)
{
        RdpConn *s = ud;
        uint32_t sym = console_unicode_to_keysym(code);
        if (s->phase == PH_RUNNING)
                note_activity(s);
        if (s->phase == PH_RUNNING && sym)
                console_key(s->console, sym, 0, !(flags & INPUT_KBD_RELEASE));
}

static void on_pointer(void *ud, bool extended, uint16_t flags, uint16_t x, uint16_t y)
{
        RdpConn *s = ud;
        InputPointer p[2];
        uint32_t stride, w, h;
        if (s->phase != PH_RUNNING)
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
        if (s->console)
                console_refresh(s->console);
}

static void on_suppress(void *ud, bool allow)
{
        RdpConn *s = ud;
        s->suppressed = !allow;
        if (allow && s->console)
                console_refresh(s->console);
}

static void report_first_frame(RdpConn *s, uint32_t w, uint32_t h)
{
        IpcMsg m = { .type = IPC_FIRST_FRAME };
        m.first_frame.ms_since_accept = (uint32_t)(now_ms() - s->t0);
        m.first_frame.width = w;
        m.first_frame.height = h;
        s->first_reported = true;
        log_info("first frame %ux%u on the client after %u ms", w, h, m.first_frame.ms_since_accept);
        if (ipc_send(s->ipc_fd, &m, -1) < 0)
                rdpconn_end(s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
}

static void on_frame_ack(void *ud, uint32_t id)
{
        RdpConn *s = ud;
        /* Before the console is attached no frame went out: nothing to acknowledge. */
        if (!s->console)
                return;
        console_frame_ack(s->console, id);
        if (s->first_sent && !s->first_reported && console_frame_is_acked(s->console, s->first_frame_id))
                report_first_frame(s, s->enc_w, s->enc_h);
}

static const PeerCallbacks peer_callbacks = {
        .credentials = on_credentials, .before_demand_active = before_demand_active, .activated = on_activated, .key = on_key, .unicode = on_unicode,
        .pointer = on_pointer, .refresh = on_refresh, .suppress = on_suppress, .frame_ack = on_frame_ack,
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
        send_phase(s, "attach");
        return 0;
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
                        s->phase = PH_ATTACH;
                        send_phase(s, "auth");
                } else {
                        uint32_t logon, errinfo;
                        log_info("logon refused (%u): %s", m->auth_result.status, m->auth_result.message);
                        auth_refusal(m->auth_result.status, &logon, &errinfo);
                        refuse(s, logon, errinfo);
                }
                return 0;
        case IPC_ATTACH:
                if (s->phase != PH_ATTACH)
                        break;
                if (s->pending_fd < 0)
                        return log_error_errno(-EBADMSG, "IPC: attach without the console fd");
                return on_attach(s, m);
        case IPC_PROGRESS:
                /* What the logon is doing: shown by the progress screen (not drawn yet). */
                if (s->phase < PH_AUTH)
                        break;
                log_debug("progress %u (%u/%u): %s", m->progress.kind, m->progress.step, m->progress.steps,
                          m->progress.text);
                return 0;
        case IPC_END:
                log_info("session ended by slated: %s", m->end.reason);
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

static int pump_frame(RdpConn *s)
{
        if (s->phase != PH_RUNNING || !peer_is_active(s->peer) || s->suppressed || !console_has_content(s->console))
                return 0;
        uint32_t stride, fw, fh, pw, ph;
        const uint8_t *fb = console_framebuffer(s->console, &stride, &fw, &fh);
        peer_size(s->peer, &pw, &ph);

        /* The client's desktop follows the guest console; try once per console size. */
        if ((fw != pw || fh != ph) && (s->resize_tried_w != fw || s->resize_tried_h != fh)) {
                s->resize_tried_w = fw;
                s->resize_tried_h = fh;
                int r = peer_resize(s->peer, fw, fh);
                s->cropped = r == -ENOTSUP;
                if (r == -ENOTSUP)
                        log_warn("client cannot resize its desktop: showing %ux%u of the %ux%u console", MIN(pw, fw),
                                 MIN(ph, fh), fw, fh);
                else if (r < 0)
                        return r;
                if (!peer_is_active(s->peer))
                        return 0;
                peer_size(s->peer, &pw, &ph);
        }
        uint32_t W = MIN(fw, pw), H = MIN(fh, ph);
        if (!s->enc || s->enc_w != W || s->enc_h != H) {
                s->enc = encoder_free(s->enc);
                int r = encoder_new(peer_context(s->peer), W, H, s->codec_pref, &s->enc);
                if (r < 0)
                        return r;
                s->enc_w = W;
                s->enc_h = H;
                console_frame_restart(s->console, encoder_has_frame_acks(s->enc));
        }
        ConsoleFrame f;
        if (!console_frame_next(s->console, W, H, &f))
                return 0;

        uint32_t id = f.id;
        EncoderStats st = { 0 };
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, SEND_STALL_MS);
        int r = encoder_send_frame(s->enc, fb, stride, f.rects, f.n, id, &st);
        rdpconn_alarm(RDPCONN_ALARM_SEND_STALL, 0);
        if (r < 0)
                return r;
        console_frame_sent(s->console, &f);
        if (f.full) {
                s->full_frames++;
                s->full_stats.bytes += st.bytes;
                s->full_stats.cpu_us += st.cpu_us;
                s->full_stats.encode_us += st.encode_us;
                s->full_stats.send_us += st.send_us;
                log_info("frame %u: full %ux%u %s: %llu bytes in %u PDUs, encode %.1f ms (cpu %.1f ms), send %.1f ms",
                         id, W, H, encoder_codec(s->enc), (unsigned long long)st.bytes, st.pdus,
                         st.encode_us / 1000.0, st.cpu_us / 1000.0, st.send_us / 1000.0);
                /* Logon is done when the whole guest screen (not a crop, not black) reached the client. */
                if (!s->first_sent && ((W == fw && H == fh) || s->cropped)) {
                        s->first_sent = true;
                        s->first_frame_id = id;
                        if (!encoder_has_frame_acks(s->enc))
                                report_first_frame(s, W, H);
                }
                if (s->first_sent && s->bench_left > 0) {
                        s->bench_left--;
                        console_refresh(s->console);
                }
        } else {
                log_debug("frame %u: %zu rects, %llu bytes, encode %.2f ms", id, f.n, (unsigned long long)st.bytes,
                          st.encode_us / 1000.0);
        }
        return 0;
}

/* ---- the loop ---- */

int rdpconn_run(int sock, int ipc)
{
        RdpConn s = { .t0 = now_ms(), .sock = sock, .ipc_fd = ipc, .pending_fd = -1, .phase = PH_CONFIG };
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
                pfd[n++] = (struct pollfd){ .fd = s.ipc_fd, .events = POLLIN };
                int peer0 = n;
                if (s.peer)
                        n += peer_pollfds(s.peer, pfd + n, 40);
                int peer1 = n, vnc = -1;
                if (s.console) {
                        vnc = n;
                        pfd[n++] = (struct pollfd){ .fd = console_fd(s.console), .events = POLLIN };
                }
                if (poll(pfd, (nfds_t)n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("poll: %m");
                        rdpconn_end(&s, 1, ERRINFO_RPC_INITIATED_DISCONNECT);
                        break;
                }
                if (pfd[0].revents)
                        ipc_failed(&s, ipc_pump(&s));
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
                        if (s.console)
                                console_frame_restart(s.console, false);
                }
                if (s.phase == PH_REFUSED && peer_is_active(s.peer)) {
                        peer_refuse(s.peer, s.refuse_logon, s.refuse_errinfo);
                        rdpconn_end(&s, 0, 0);
                        break;
                }
                if (s.phase == PH_RUNNING && pump_frame(&s) < 0) {
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
        s.console = console_free(s.console);
        s.peer = peer_free(s.peer);
        if (s.pending_fd >= 0)
                close(s.pending_fd);
        if (s.sock >= 0)
                close(s.sock);
        frame_parser_free(&s.parser);
        return s.exit_code;
}
