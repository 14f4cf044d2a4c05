/* xwatch: watches an X display (the Xvfb a stock RDP client draws on) and prints when the user
 * would have seen what: the first frame that is not black, each later frame that is empty (one
 * colour over the whole window: black, or a bare backdrop), and the first frame where a given
 * pixel has a given colour (the Xfce panel drawn: the desktop is usable). For bench/sections:
 * what a user sees, measured from outside the client, without trusting the client or the server.
 *
 *   xwatch --t0 EPOCH_MS [--timeout S] [--interval MS] [--usable X,Y,RRGGBB,TOL] [--width W --height H]
 *
 * Prints one line at the end: first_ms=N usable_ms=N empty_after_first=N samples=N (ms since
 * t0; -1 when never seen), and exits 0 when the usable condition was met (or none was given and
 * a first frame came), 1 on timeout. The window is the top-left W×H of the root (a client on an
 * Xvfb without a window manager sits at 0,0). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>

static int64_t epoch_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
        fputs("Usage: xwatch --t0 EPOCH_MS [options]   (DISPLAY names the display)\n"
              "  --t0 MS               when the client was started (ms since the epoch)\n"
              "  --timeout S           give up after S seconds (default 300)\n"
              "  --interval MS         sampling period (default 50)\n"
              "  --usable X,Y,RRGGBB,TOL  usable once pixel (X,Y) is within TOL of RRGGBB per channel\n"
              "  --width W --height H  the area watched (default 1280x800)\n"
              "Prints: first_ms=N usable_ms=N empty_after_first=N samples=N\n",
              f);
}

static bool parse_pixel(const char *s, int *x, int *y, unsigned *rgb, unsigned *tol)
{
        return sscanf(s, "%d,%d,%6x,%u", x, y, rgb, tol) == 4 && *x >= 0 && *y >= 0;
}

/* Every 8th pixel of every 8th row: enough to tell one colour from a picture. */
static bool uniform(XImage *im, unsigned long *ret_colour)
{
        unsigned long c0 = XGetPixel(im, 0, 0);
        for (int y = 0; y < im->height; y += 8)
                for (int x = 0; x < im->width; x += 8)
                        if (XGetPixel(im, x, y) != c0)
                                return false;
        *ret_colour = c0;
        return true;
}

static bool near(unsigned long px, unsigned rgb, unsigned tol)
{
        for (int sh = 0; sh <= 16; sh += 8) {
                int a = (int)((px >> sh) & 0xff), b = (int)((rgb >> sh) & 0xff);
                if (abs(a - b) > (int)tol)
                        return false;
        }
        return true;
}

int main(int argc, char **argv)
{
        int64_t t0 = -1;
        unsigned timeout_s = 300, interval = 50, w = 1280, h = 800, rgb = 0, tol = 0;
        int ux = -1, uy = -1;
        static const struct option opts[] = {
                { "t0", required_argument, NULL, 't' },     { "timeout", required_argument, NULL, 'T' },
                { "interval", required_argument, NULL, 'i' }, { "usable", required_argument, NULL, 'u' },
                { "width", required_argument, NULL, 'w' },  { "height", required_argument, NULL, 'h' },
                { "help", no_argument, NULL, 'H' },         {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 't': t0 = strtoll(optarg, NULL, 10); break;
                case 'T': timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'i': interval = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'w': w = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'h': h = (unsigned)strtoul(optarg, NULL, 10); break;
                case 'u':
                        if (!parse_pixel(optarg, &ux, &uy, &rgb, &tol)) {
                                fprintf(stderr, "xwatch: --usable wants X,Y,RRGGBB,TOL\n");
                                return 2;
                        }
                        break;
                case 'H': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (t0 < 0 || interval == 0 || w == 0 || h == 0 || (ux >= 0 && ((unsigned)ux >= w || (unsigned)uy >= h))) {
                usage(stderr);
                return 2;
        }
        Display *d = XOpenDisplay(NULL);
        if (!d) {
                fprintf(stderr, "xwatch: cannot open display %s\n", getenv("DISPLAY") ? getenv("DISPLAY") : "(unset)");
                return 2;
        }
        Window root = DefaultRootWindow(d);
        int64_t first = -1, usable = -1, end = epoch_ms() + (int64_t)timeout_s * 1000;
        unsigned empty = 0, samples = 0;
        bool last_empty = false;
        while (epoch_ms() < end) {
                XImage *im = XGetImage(d, root, 0, 0, w, h, AllPlanes, ZPixmap);
                int64_t now = epoch_ms();
                if (!im) {
                        fprintf(stderr, "xwatch: XGetImage failed\n");
                        return 2;
                }
                samples++;
                unsigned long colour;
                bool one = uniform(im, &colour);
                if (first < 0 && !(one && (colour & 0xffffff) == 0))
                        first = now - t0;
                else if (first >= 0 && usable < 0) {
                        /* A run of empty samples counts once: one empty screen the user saw. */
                        if (one && !last_empty)
                                empty++;
                        last_empty = one;
                }
                if (first >= 0 && ux >= 0 && usable < 0 && near(XGetPixel(im, ux, uy), rgb, tol))
                        usable = now - t0;
                XDestroyImage(im);
                if (usable >= 0 || (ux < 0 && first >= 0))
                        break;
                usleep(interval * 1000);
        }
        printf("first_ms=%lld usable_ms=%lld empty_after_first=%u samples=%u\n", (long long)first,
               (long long)usable, empty, samples);
        XCloseDisplay(d);
        return (ux >= 0 ? usable >= 0 : first >= 0) ? 0 : 1;
}
