/* slatectl's use of the control client (control_client.h): progress bars on a terminal, one
 * line per step in a log, errors on stderr. It never prints reply text unsanitized. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "broker/ctl_client.h"
#include "broker/ctl_format.h"
#include "common/util.h"

void errorf(const char *fmt, ...)
{
        va_list ap;
        fputs("slatectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- progress events ---- */

static void progress_clear(Ctl *c)
{
        if (c->bar_shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                c->bar_shown = false;
        }
}

static void progress_show(Ctl *c, json_object *ev)
{
        _cleanup_free_ char *step = sanitize(jsonx_string_or(ev, "step", "working"));
        int64_t pct = jsonx_int_or(ev, "percent", -1);
        if (pct > 100)
                pct = 100;

        if (!c->tty) {
                /* a log, not an animation: one line when a step starts */
                if (strncmp(c->step, step, sizeof c->step - 1) != 0) {
                        snprintf(c->step, sizeof c->step, "%s", step);
                        fprintf(stderr, "%s...\n", step);
                }
                return;
        }
        struct winsize ws;
        int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
        int width = MIN(40, cols - 24);
        if (strlen(step) > 14)
                step[14] = 0;
        fprintf(stderr, "\r\033[K%-14s", step);
        if (pct >= 0 && width >= 10) {
                int fill = (int)(pct * width / 100);
                fputs(" [", stderr);
                for (int i = 0; i < width; i++)
                        fputc(i < fill ? '#' : '-', stderr);
                fprintf(stderr, "] %3d%%", (int)pct);
        } else if (pct >= 0)
                fprintf(stderr, " %3d%%", (int)pct);
        fflush(stderr);
        c->bar_shown = true;
}

/* ---- the call ---- */

static void on_progress(const char *step, int64_t percent, void *data)
{
        Ctl *c = data;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "step", json_object_new_string(step));
        json_object_object_add(ev, "percent", json_object_new_int64(percent));
        progress_show(c, ev);
        json_object_put(ev);
}

const char *ctl_socket_path(Ctl *c) { return control_client_socket(c->socket_path); }

int ctl_call(Ctl *c, const char *cmd, json_object *args, json_object **ret_result)
{
        _cleanup_free_ char *error = NULL;
        int r = control_client_call(c->socket_path, c->id, cmd, args, on_progress, c, ret_result, &error);
        progress_clear(c);
        if (r == 0)
                return EXIT_OK;
        _cleanup_free_ char *msg = sanitize(error ? error : strerror(-r));
        errorf("%s", msg);
        return r == -EREMOTEIO ? EXIT_FAIL : EXIT_USAGE;
}
