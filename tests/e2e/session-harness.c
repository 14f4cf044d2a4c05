/* session-harness: plays slated's part for one RDP connection so slate-session can be run and
 * measured without slated. Listens on 127.0.0.1:PORT, accepts one client, execs slate-session
 * with the socket on fd 3 and an IPC socketpair on fd 4, sends IPC_CONFIG, answers IPC_AUTH
 * (accepted iff user and password match), hands over a connection to the VNC unix socket with
 * IPC_ATTACH and prints the first-frame timing. For the logon screen it plays PAM's part too
 * (a one-time code, an expired password changed, refusals) and for the progress screen slated's
 * steps (IPC_PROGRESS). For development, tests and benchmarks only. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/pem.h>
#include "common/ipc.h"
#include "common/keysign.h"
#include "common/log.h"
#include "common/util.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: session-harness --port P --vnc PATH --cert C --key K [options]\n"
                   "  --user U --password PW   credentials to accept (default alice / secret)\n"
                   "  --session PATH           slate-session binary (default: ../../rdp/slate-session next to this)\n"
                   "  --handshake-ms N         handshake timeout sent in IPC_CONFIG (default 10000)\n"
                   "  --end-after-ms N         send IPC_END N ms after the first frame (default: never)\n"
                   "  --refuse STATUS          answer every logon with this IpcAuthStatus (2..8)\n"
                   "  --banner TEXT            the logon screen's message (IPC_CONFIG.banner)\n"
                   "  --otp CODE               a logon-screen logon asks for this one-time code after the password\n"
                   "  --expired NEWPW          a logon-screen logon must change the password to NEWPW (twice)\n"
                   "  --steps N --step-ms MS   after the logon, N IPC_PROGRESS steps MS apart (the attach after\n"
                   "                           the first), then USABLE; default 0: no progress at all\n"
                   "  --usable-at-attach       USABLE right after the attach (a reconnect)\n"
                   "  --fail TEXT              instead of USABLE, FAILED with TEXT, then IPC_END\n"
                   "Prints 'harness: first-frame ms=… width=… height=…' and the child's exit status.\n");
}

static int64_t t_accept;

/* The harness's side of one connection. */
typedef struct H {
        int ipc;
        const char *vnc, *user, *pw, *otp, *newpw, *fail;
        unsigned refuse, steps, step_ms;
        bool usable_at_attach;
        char who[IPC_NAME_MAX + 1];
        enum { CONV_NONE, CONV_OTP, CONV_NEW1, CONV_NEW2 } conv;
        unsigned attempts;
        unsigned step_sent;
        int64_t next_step_at;           /* -1: none */
        bool attached, done;
} H;

static void send_prompt(H *h, uint8_t style, const char *text)
{
        IpcMsg m = { .type = IPC_PROMPT };
        m.prompt.style = style;
        snprintf(m.prompt.text, sizeof m.prompt.text, "%s", text);
        ipc_send(h->ipc, &m, -1);
        printf("harness: prompt %u '%s'\n", style, text);
}

static void send_progress(H *h, uint8_t kind, unsigned step, const char *text)
{
        IpcMsg m = { .type = IPC_PROGRESS };
        m.progress.kind = kind;
        m.progress.step = (uint8_t)step;
        m.progress.steps = (uint8_t)h->steps;
        snprintf(m.progress.title, sizeof m.progress.title, "Welcome, %.200s", h->who);
        snprintf(m.progress.text, sizeof m.progress.text, "%s", text);
        ipc_send(h->ipc, &m, -1);
        printf("harness: +%lld ms progress kind=%u step=%u/%u\n", (long long)((int64_t)now_ms() - t_accept), kind, step,
               h->steps);
}

static int connect_unix(const char *path);

static void attach(H *h)
{
        int vfd = connect_unix(h->vnc);
        if (vfd < 0) {
                fprintf(stderr, "harness: cannot connect to %s: %s\n", h->vnc, strerror(-vfd));
                IpcMsg e = { .type = IPC_END };
                snprintf(e.end.reason, sizeof e.end.reason, "desktop unavailable");
                ipc_send(h->ipc, &e, -1);
                return;
        }
        IpcMsg at = { .type = IPC_ATTACH };
        snprintf(at.attach.desktop_id, sizeof at.attach.desktop_id, "harness-desktop");
        snprintf(at.attach.session_id, sizeof at.attach.session_id, "harness-session");
        ipc_send(h->ipc, &at, vfd);
        close(vfd);
        h->attached = true;
        if (h->usable_at_attach)
                send_progress(h, IPC_PROGRESS_USABLE, 0, "");
}

static const char *const step_text[] = { "Starting your desktop", "Opening your session", "Loading your profile",
                                         "Almost there" };

/* The logon succeeded: the result, then the steps and the attach as slated does them. */
static void logon_ok(H *h, FrameParser *p)
{
        IpcMsg a = { .type = IPC_AUTH_RESULT };
        a.auth_result.status = IPC_AUTH_OK;
        snprintf(a.auth_result.message, sizeof a.auth_result.message, "welcome");
        ipc_send(h->ipc, &a, -1);
        frame_parser_set_max(p, IPC_FRAME_MAX);
        h->conv = CONV_NONE;
        if (h->steps) {
                h->step_sent = 1;
                send_progress(h, IPC_PROGRESS_STEP, 1, step_text[0]);
                h->next_step_at = (int64_t)now_ms() + h->step_ms;
        }
        attach(h);
}

/* The next scripted step, when its time came: more steps, then USABLE (or FAILED and the end). */
static void step_due(H *h)
{
        h->next_step_at = -1;
        if (h->step_sent < h->steps) {
                h->step_sent++;
                send_progress(h, IPC_PROGRESS_STEP, h->step_sent, step_text[(h->step_sent - 1) % 4]);
                h->next_step_at = (int64_t)now_ms() + h->step_ms;
        } else if (h->fail) {
                send_progress(h, IPC_PROGRESS_FAILED, 0, h->fail);
                IpcMsg e = { .type = IPC_END };
                snprintf(e.end.reason, sizeof e.end.reason, "desktop failed to start");
                ipc_send(h->ipc, &e, -1);
        } else {
                send_progress(h, IPC_PROGRESS_USABLE, 0, "");
        }
}

static void logon_refused(H *h, uint8_t status, const char *why)
{
        IpcMsg a = { .type = IPC_AUTH_RESULT };
        a.auth_result.status = status;
        snprintf(a.auth_result.message, sizeof a.auth_result.message, "%s", why);
        ipc_send(h->ipc, &a, -1);
        h->conv = CONV_NONE;
        printf("harness: refused attempt %u: %s\n", h->attempts, why);
        if (h->attempts >= 3) {
                /* As slated does after a logon screen's third try. */
                IpcMsg e = { .type = IPC_END };
                snprintf(e.end.reason, sizeof e.end.reason, "too many failed logons");
                ipc_send(h->ipc, &e, -1);
                shutdown(h->ipc, SHUT_WR);
        }
}

static void on_auth(H *h, const IpcMsg *in, FrameParser *p, int64_t ms)
{
        bool interactive = in->auth.flags & IPC_AUTH_INTERACTIVE;
        bool ok = !h->refuse && !strcmp(in->auth.user, h->user) && !strcmp(in->auth.password, h->pw);
        h->attempts++;
        snprintf(h->who, sizeof h->who, "%s", in->auth.user);
        printf("harness: +%lld ms auth user=%s domain=%s host=%s size=%ux%u%s attempt=%u → %s\n", (long long)ms,
               in->auth.user, in->auth.domain, in->auth.client_host, in->auth.width, in->auth.height,
               interactive ? " interactive" : "", h->attempts, ok ? "ok" : "refused");
        if (!ok) {
                logon_refused(h, h->refuse ? (uint8_t)h->refuse : IPC_AUTH_BAD_CREDENTIALS,
                              "the user name or password is incorrect");
                return;
        }
        if (interactive && h->otp) {
                h->conv = CONV_OTP;
                send_prompt(h, IPC_PROMPT_SECRET, "Verification code: ");
        } else if (interactive && h->newpw) {
                h->conv = CONV_NEW1;
                send_prompt(h, IPC_PROMPT_ERROR, "Your password has expired; change it now.");
                send_prompt(h, IPC_PROMPT_SECRET, "New password: ");
        } else {
                logon_ok(h, p);
        }
}

static void on_prompt_reply(H *h, const IpcMsg *in, FrameParser *p)
{
        /* What was typed is compared, never printed: only its length. */
        printf("harness: prompt reply (%zu bytes)\n", strlen(in->prompt_reply.text));
        switch (h->conv) {
        case CONV_OTP:
                if (strcmp(in->prompt_reply.text, h->otp) == 0)
                        logon_ok(h, p);
                else
                        logon_refused(h, IPC_AUTH_BAD_CREDENTIALS, "the verification code is incorrect");
                break;
        case CONV_NEW1:
                if (strcmp(in->prompt_reply.text, h->newpw) != 0) {
                        logon_refused(h, IPC_AUTH_BAD_CREDENTIALS, "the new password was not accepted");
                        break;
                }
                h->conv = CONV_NEW2;
                send_prompt(h, IPC_PROMPT_SECRET, "Retype new password: ");
                break;
        case CONV_NEW2:
                if (strcmp(in->prompt_reply.text, h->newpw) != 0) {
                        logon_refused(h, IPC_AUTH_BAD_CREDENTIALS, "the passwords do not match");
                        break;
                }
                send_prompt(h, IPC_PROMPT_INFO, "Password changed.");
                printf("harness: password changed\n");
                logon_ok(h, p);
                break;
        default:
                printf("harness: unexpected prompt reply\n");
                break;
        }
}

static int connect_unix(const char *path)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof a.sun_path)
                return -ENAMETOOLONG;
        strcpy(a.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
                int e = -errno;
                if (fd >= 0)
                        close(fd);
                return e;
        }
        return fd;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "port", required_argument, NULL, 'p' }, { "vnc", required_argument, NULL, 'v' },
                { "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
                { "user", required_argument, NULL, 'u' }, { "password", required_argument, NULL, 'w' },
                { "session", required_argument, NULL, 's' }, { "handshake-ms", required_argument, NULL, 't' },
                { "end-after-ms", required_argument, NULL, 'e' }, { "refuse", required_argument, NULL, 'r' },
                { "banner", required_argument, NULL, 'B' }, { "otp", required_argument, NULL, 'O' },
                { "expired", required_argument, NULL, 'X' }, { "steps", required_argument, NULL, 'S' },
                { "step-ms", required_argument, NULL, 'M' }, { "usable-at-attach", no_argument, NULL, 'U' },
                { "fail", required_argument, NULL, 'F' },
                { "help", no_argument, NULL, 'h' }, {},
        };
        const char *vnc = NULL, *certf = NULL, *keyf = NULL, *user = "alice", *pw = "secret", *session = NULL;
        const char *banner = "", *otp = NULL, *newpw = NULL, *fail = NULL;
        unsigned port = 0, hs = 10000, end_after = 0, refuse = 0, steps = 0, step_ms = 500;
        bool usable_at_attach = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'p': if (parse_uint(optarg, 65535, &port) < 0) goto bad; break;
                case 'v': vnc = optarg; break;
                case 'c': certf = optarg; break;
                case 'k': keyf = optarg; break;
                case 'u': user = optarg; break;
                case 'w': pw = optarg; break;
                case 's': session = optarg; break;
                case 't': if (parse_uint(optarg, 3600000, &hs) < 0) goto bad; break;
                case 'e': if (parse_uint(optarg, 3600000, &end_after) < 0) goto bad; break;
                case 'r': if (parse_uint(optarg, IPC_AUTH_STATUS_LAST, &refuse) < 0) goto bad; break;
                case 'B': banner = optarg; break;
                case 'O': otp = optarg; break;
                case 'X': newpw = optarg; break;
                case 'S': if (parse_uint(optarg, 100, &steps) < 0) goto bad; break;
                case 'M': if (parse_uint(optarg, 600000, &step_ms) < 0) goto bad; break;
                case 'U': usable_at_attach = true; break;
                case 'F': fail = optarg; break;
                case 'h': usage(stdout); return 0;
                default: goto bad;
                }
        }
        if (!port || !vnc || !certf || !keyf)
                goto bad;
        log_set_prefix("harness");
        char self[4096];
        static char defsession[4200];
        if (!session) {
                ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
                if (k < 0)
                        return 1;
                self[k] = 0;
                *strrchr(self, '/') = 0;
                snprintf(defsession, sizeof defsession, "%s/../../rdp/slate-session", self);
                session = defsession;
        }
        char *cert = NULL;
        size_t len;
        FILE *kf = fopen(keyf, "r");
        EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
        if (kf)
                fclose(kf);
        if (read_file_max(certf, IPC_PEM_MAX, &cert, &len) < 0 || !key) {
                fprintf(stderr, "harness: cannot read %s / %s\n", certf, keyf);
                return 1;
        }

        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0) {
                fprintf(stderr, "harness: cannot listen on 127.0.0.1:%u: %m\n", port);
                return 1;
        }
        printf("harness: listening on 127.0.0.1:%u\n", port);
        fflush(stdout);
        int cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (cs < 0)
                return 1;
        t_accept = (int64_t)now_ms();
        close(ls);

        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return 1;
        pid_t pid = fork();
        if (pid == 0) {
                /* fds 3 and 4 exactly, as slated's uv_spawn gives them. */
                int a = dup(cs), b = dup(sp[1]);
                dup2(a, 3);
                dup2(b, 4);
                execl(session, session, (char *)NULL);
                fprintf(stderr, "harness: exec %s: %m\n", session);
                _exit(127);
        }
        close(cs);
        close(sp[1]);
        int ipc = sp[0];

        IpcMsg m = { .type = IPC_CONFIG };
        m.config.cert_pem = cert;
        m.config.max_width = 4096;
        m.config.max_height = 2160;
        m.config.handshake_timeout_ms = hs;
        snprintf(m.config.banner, sizeof m.config.banner, "%s", banner);
        if (ipc_send(ipc, &m, -1) < 0)
                fprintf(stderr, "harness: cannot send config\n");

        FrameParser p;
        ipc_parser_init(&p, IPC_PREAUTH_MAX);
        int64_t first_frame_at = -1;
        H h = { .ipc = ipc, .vnc = vnc, .user = user, .pw = pw, .otp = otp, .newpw = newpw, .fail = fail,
                .refuse = refuse, .steps = steps, .step_ms = step_ms, .usable_at_attach = usable_at_attach,
                .next_step_at = -1 };
        for (;;) {
                struct pollfd pfd = { .fd = ipc, .events = POLLIN };
                int timeout = -1;
                if (h.next_step_at >= 0) {
                        int64_t left = h.next_step_at - (int64_t)now_ms();
                        timeout = left > 0 ? (int)left : 0;
                }
                if (end_after && first_frame_at >= 0) {
                        int64_t left = first_frame_at + end_after - (int64_t)now_ms();
                        if (timeout < 0 || left < timeout)
                                timeout = left > 0 ? (int)left : 0;
                }
                int r = poll(&pfd, 1, timeout);
                if (r == 0 && h.next_step_at >= 0 && (int64_t)now_ms() >= h.next_step_at) {
                        step_due(&h);
                        fflush(stdout);
                        continue;
                }
                if (r == 0) {
                        IpcMsg e = { .type = IPC_END };
                        snprintf(e.end.reason, sizeof e.end.reason, "administrator ended the session");
                        ipc_send(ipc, &e, -1);
                        printf("harness: sent end\n");
                        end_after = 0;
                        continue;
                }
                uint8_t buf[4096];
                int fd;
                ssize_t n = ipc_recv(ipc, buf, sizeof buf, &fd);
                if (n == -EAGAIN)
                        continue;
                if (n <= 0)
                        break;
                size_t off = 0;
                while (off < (size_t)n) {
                        size_t used;
                        Frame f;
                        int k = frame_parser_feed(&p, buf + off, (size_t)n - off, &used, &f);
                        off += used;
                        if (k < 0) {
                                fprintf(stderr, "harness: bad frame from slate-session\n");
                                goto out;
                        }
                        if (k == 0)
                                break;
                        IpcMsg in;
                        if (ipc_msg_decode(&f, &in) < 0) {
                                fprintf(stderr, "harness: malformed message\n");
                                goto out;
                        }
                        int64_t ms = (int64_t)now_ms() - t_accept;
                        switch (in.type) {
                        case IPC_AUTH:
                                on_auth(&h, &in, &p, ms);
                                break;
                        case IPC_PROMPT_REPLY:
                                on_prompt_reply(&h, &in, &p);
                                break;
                        case IPC_FIRST_FRAME:
                                first_frame_at = (int64_t)now_ms();
                                printf("harness: first-frame ms=%lld (session says %u) width=%u height=%u\n",
                                       (long long)ms, in.first_frame.ms_since_accept, in.first_frame.width,
                                       in.first_frame.height);
                                break;
                        case IPC_PHASE:
                                printf("harness: +%lld ms phase %s=%u ms\n", (long long)ms, in.phase.name, in.phase.ms);
                                break;
                        case IPC_LOGOUT:
                                printf("harness: logout requested\n");
                                break;
                        case IPC_SIGN: {
                                /* As slated does (broker/conn.c): sign the handshake's one request. */
                                IpcMsg a = { .type = IPC_SIGNATURE };
                                size_t siglen;
                                if (keysign(key, in.sign.alg, in.sign.data, in.sign.len, a.sign.data, &siglen) == 0) {
                                        a.sign.alg = in.sign.alg;
                                        a.sign.len = (uint16_t)siglen;
                                }
                                printf("harness: +%lld ms sign alg=%u len=%u → %s\n", (long long)ms, in.sign.alg,
                                       in.sign.len, a.sign.len ? "signed" : "refused");
                                ipc_send(ipc, &a, -1);
                                break;
                        }
                        default:
                                printf("harness: unexpected %s\n", ipc_type_name(in.type));
                        }
                        ipc_msg_clear(&in);
                        fflush(stdout);
                }
                if (fd >= 0) {
                        fprintf(stderr, "harness: slate-session sent an fd\n");
                        close(fd);
                }
        }
out:
        close(ipc);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st))
                printf("harness: slate-session exited %d after %lld ms\n", WEXITSTATUS(st),
                       (long long)((int64_t)now_ms() - t_accept));
        else
                printf("harness: slate-session killed by signal %d\n", WTERMSIG(st));
        free(cert);
        EVP_PKEY_free(key);
        frame_parser_free(&p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
bad:
        usage(stderr);
        return 1;
}
