/* xfirst: client-side first frame of a stock X RDP client. Starts COMMAND (e.g. xfreerdp) on
 * $DISPLAY, polls five pixels of the root window (near the corners and the top middle) every 2 ms, and prints the milliseconds from the
 * command's start until all five show COLOR (within a tolerance: RemoteFX is lossy); then ends the
 * command (SIGTERM, SIGKILL after 2 s) and reaps it. The root must not show COLOR before (Xvfb -br).
 *
 * With XFIRST_PORT=P it also watches /proc/net/tcp for the first new connection to port P and prints
 * a second figure: that connection's appearance → the colour (the client's own start-up left out).
 *
 * usage: xfirst RRGGBB WIDTH HEIGHT TIMEOUT_S COMMAND [ARG...]
 * exit: 0 seen ("MS" or "MS CONNECT_MS" on stdout), 1 timed out or the command exited first,
 *       2 usage or no display */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>

#define TOLERANCE 24

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The local ports of connections to port (SYN_SENT or ESTABLISHED) that are not in old[]; with
 * record, remembers them all in old[] instead (the connections before the command started). */
#define OLD_MAX 256
static unsigned old[OLD_MAX], nold;

static bool connection_to(unsigned port, bool record)
{
        FILE *f = fopen("/proc/net/tcp", "r");
        char line[256];
        bool found = false;
        if (!f)
                return false;
        while (!found && fgets(line, sizeof line, f)) {
                unsigned lport, rport, st;
                if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lport, &rport, &st) != 3 || rport != port ||
                    (st != 0x01 && st != 0x02))
                        continue;
                bool seen = false;
                for (unsigned i = 0; i < nold && !seen; i++)
                        seen = old[i] == lport;
                if (record && !seen && nold < OLD_MAX)
                        old[nold++] = lport;
                found = !record && !seen;
        }
        fclose(f);
        return found;
}

static int ignore_errors(Display *d, XErrorEvent *e) { return 0; }

static void end_child(pid_t pid)
{
        kill(pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
        unsigned rgb, w, h, timeout_s;
        if (argc < 6 || sscanf(argv[1], "%6x", &rgb) != 1 || sscanf(argv[2], "%u", &w) != 1 ||
            sscanf(argv[3], "%u", &h) != 1 || sscanf(argv[4], "%u", &timeout_s) != 1 || w < 8 || h < 8) {
                fprintf(stderr, "usage: xfirst RRGGBB WIDTH HEIGHT TIMEOUT_S COMMAND [ARG...]\n");
                return 2;
        }
        Display *d = XOpenDisplay(NULL);
        if (!d) {
                fprintf(stderr, "xfirst: cannot open display %s\n", getenv("DISPLAY") ?: "(unset)");
                return 2;
        }
        XSetErrorHandler(ignore_errors);
        Window root = DefaultRootWindow(d);
        const int px[5][2] = { { w / 2, h / 8 }, { w / 8, h / 8 }, { w * 7 / 8, h / 8 }, { w / 8, h * 7 / 8 },
                               { w * 7 / 8, h * 7 / 8 } };
        int want[3] = { (rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff };

        unsigned port = 0;
        const char *ps = getenv("XFIRST_PORT");
        if (ps && (sscanf(ps, "%u", &port) != 1 || port > 65535)) {
                fprintf(stderr, "xfirst: bad XFIRST_PORT %s\n", ps);
                return 2;
        }
        if (port)
                connection_to(port, true);
        double t0 = now_ms(), t_conn = -1;
        pid_t pid = fork();
        if (pid < 0) {
                perror("xfirst: fork");
                return 2;
        }
        if (pid == 0) {
                setpgid(0, 0);
                execvp(argv[5], argv + 5);
                fprintf(stderr, "xfirst: cannot run %s: %s\n", argv[5], strerror(errno));
                _exit(127);
        }
        int rc = 1;
        while (now_ms() - t0 < timeout_s * 1e3) {
                int st;
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        fprintf(stderr, "xfirst: %s exited (status %d) before the colour showed\n", argv[5],
                                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
                        XCloseDisplay(d);
                        return 1;
                }
                if (port && t_conn < 0 && connection_to(port, false))
                        t_conn = now_ms();
                int ok = 1;
                for (int i = 0; i < 5 && ok; i++) {
                        XImage *im = XGetImage(d, root, px[i][0], px[i][1], 1, 1, AllPlanes, ZPixmap);
                        if (!im) {
                                ok = 0;
                                break;
                        }
                        unsigned long p = XGetPixel(im, 0, 0);
                        int c[3] = { (p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff };
                        for (int k = 0; k < 3; k++)
                                ok &= abs(c[k] - want[k]) <= TOLERANCE;
                        XDestroyImage(im);
                }
                if (ok) {
                        double t = now_ms();
                        if (port)
                                printf("%.0f %.0f\n", t - t0, t_conn < 0 ? -1 : t - t_conn);
                        else
                                printf("%.0f\n", t - t0);
                        fflush(stdout);
                        rc = 0;
                        break;
                }
                usleep(2000);
        }
        if (rc) {
                fprintf(stderr, "xfirst: no #%06x on the screen after %u s; seen:", rgb, timeout_s);
                for (int i = 0; i < 5; i++) {
                        XImage *im = XGetImage(d, root, px[i][0], px[i][1], 1, 1, AllPlanes, ZPixmap);
                        fprintf(stderr, " %d,%d #%06lx", px[i][0], px[i][1], im ? XGetPixel(im, 0, 0) & 0xffffff : 0);
                        if (im)
                                XDestroyImage(im);
                }
                fprintf(stderr, "\n");
        }
        end_child(pid);
        XCloseDisplay(d);
        return rc;
}
