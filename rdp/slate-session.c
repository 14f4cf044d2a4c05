/* slate-session: one RDP connection, unprivileged. Takes the accepted socket (fd 3, or with
 * --spare from slated over the IPC once a client connects) and an IPC socketpair to slated (fd 4),
 * terminates TLS/RDP with FreeRDP, asks slated to authenticate, then bridges the desktop's VNC
 * console (an fd from slated) to the client. Reads one font before its sandbox and nothing from
 * disk after; never keeps a password. Exit: 0 normal end, 1 IPC/internal error, 2 client timed out. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <freerdp/error.h>
#include <freerdp/settings.h>
#include "common/ipc.h"
#include "common/log.h"
#include "common/util.h"
#include "rdp/peer.h"
#include "rdp/rdpconn.h"
#include "rdp/sandbox.h"
#include "rdp/screen.h"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: slate-session [--socket-fd N | --spare] [--ipc-fd M]\n"
                "\n"
                "The per-connection RDP front end of Slate. It is started by slated for each accepted\n"
                "RDP connection, already unprivileged, with the client socket on fd 3 and an IPC\n"
                "socketpair to slated on fd 4; it is not meant to be run by hand (for development,\n"
                "tests/e2e/session-harness plays slated's part).\n"
                "\n"
                "  --socket-fd N   the accepted RDP client socket (default 3)\n"
                "  --spare         started ahead: initialise, then wait for slated to hand over the\n"
                "                  client socket (IPC_CLIENT) when a client connects\n"
                "  --ipc-fd M      the IPC socketpair to slated (default 4)\n"
                "  -h, --help      show this text\n"
                "\n"
                "Environment: SLATE_LOG_LEVEL (error|warning|info|debug or 3..7),\n"
                "SLATE_SESSION_CODEC (gfx|rfx|nsc|planar: prefer this codec when the client has it),\n"
                "SLATE_SESSION_NO_GFX (set: no graphics pipeline, surface bits only),\n"
                "SLATE_SESSION_SECCOMP (enforce|log: log calls off the seccomp allow-list, for debugging),\n"
                "SLATE_SESSION_FONT (the screens' TrueType font; default " SCREEN_FONT_PATH ").\n");
}

static int parse_fd(const char *s, int *ret)
{
        unsigned v;
        if (parse_uint(s, 65535, &v) < 0)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

/* A spare waits, for as long as slated keeps it, for the client socket: IPC_CLIENT is the first
 * thing slated sends; anything else, or EOF (slated stopped or dropped the spare), ends it. */
static int spare_wait(int ipc)
{
        IpcMsg m;
        int fd;
        int r = ipc_recv_one_fd(ipc, IPC_FRAME_MAX, -1, &m, &fd);
        if (r == -EPIPE)
                return -EPIPE;  /* not an error: slated let the spare go */
        if (r < 0)
                return log_error_errno(r, "IPC: waiting for the client socket: %s", strerror(-r));
        uint8_t type = (uint8_t)m.type;
        ipc_msg_clear(&m);
        if (type != IPC_CLIENT || fd < 0) {
                if (fd >= 0)
                        close(fd);
                return log_error_errno(-EBADMSG, "IPC: expected the client socket, got %s%s", ipc_type_name(type),
                                       fd < 0 ? " without an fd" : "");
        }
        return fd;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket-fd", required_argument, NULL, 's' },
                { "ipc-fd", required_argument, NULL, 'i' },
                { "spare", no_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int sock = 3, ipc = 4, c;
        bool spare = false;
        log_set_prefix("slate-session");
        const char *lvl = getenv("SLATE_LOG_LEVEL");
        if (lvl) {
                unsigned n;
                int l = parse_uint(lvl, 7, &n) == 0 ? (int)n : log_level_from_string(lvl);
                if (l >= 0)
                        log_set_level(l);
        }
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        if (parse_fd(optarg, &sock) < 0)
                                goto bad;
                        break;
                case 'i':
                        if (parse_fd(optarg, &ipc) < 0)
                                goto bad;
                        break;
                case 'S':
                        spare = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        goto bad;
                }
        }
        if (optind != argc)
                goto bad;
        if ((!spare && fcntl(sock, F_GETFD) < 0) || fcntl(ipc, F_GETFD) < 0) {
                fprintf(stderr, "slate-session: fds %d/%d are not open: this program is started by slated, "
                                "not by hand (see --help)\n", sock, ipc);
                return 1;
        }
        /* The screens' font and a first draw (cairo's and FreeType's lazy set-up) before the
         * sandbox: nothing is read from disk after it. Without the font, no logon screen. */
        ScreenFont *font = NULL;
        Screen *screen = NULL;
        const char *font_path = getenv("SLATE_SESSION_FONT");
        if (screen_font_load(font_path && *font_path ? font_path : SCREEN_FONT_PATH, &font) < 0)
                font = NULL;    /* the backdrop alone, and no logon screen */
        if (screen_new(font, &screen) == 0) {
                ConsoleRect warm[1];
                size_t nwarm;
                ScreenView v = { .mode = SCREEN_PROGRESS, .title = "Welcome", .text = "Slate" };
                if (screen_draw(screen, &v, 64, 64, warm, 1, &nwarm) < 0)
                        screen = screen_free(screen);
        }
        /* Before a byte from slated or the client is read. */
        SandboxMode sm;
        if (sandbox_mode_parse(getenv("SLATE_SESSION_SECCOMP"), &sm) < 0) {
                fprintf(stderr, "slate-session: SLATE_SESSION_SECCOMP: expected enforce or log\n");
                return 1;
        }
        if (sandbox_enter(sm) < 0)
                return 1;
        rdpconn_alarm_init();
        signal(SIGPIPE, SIG_IGN);
        if (spare) {
                /* Everything a connection's process does once, before there is a connection:
                 * after IPC_CLIENT only per-connection work is left (the handshake's clock,
                 * which starts at accept, runs from rdpconn_run). */
                peer_prepare();
                log_debug("spare: ready, waits for a client");
                if ((sock = spare_wait(ipc)) < 0)
                        return 1;
        }
        int rc = rdpconn_run(sock, ipc, screen);
        screen_free(screen);
        screen_font_free(font);
        return rc;
bad:
        usage(stderr);
        return 1;
}
