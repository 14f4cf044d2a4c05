/* The process watchdog of slate-session (rdpconn.h): one interval timer guarding the phase that
 * can hang inside FreeRDP (TLS accept, a client that stops reading, a refusal not taken). When it
 * fires, the process writes one line and exits 2: nothing else can end FreeRDP's loops. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "rdp/rdpconn.h"

/* What the armed timer guards, for the handler (async-signal-safe state). */
static volatile sig_atomic_t alarm_kind;

static void on_alarm(int sig)
{
        static const char *const msg[] = {
                "slate-session: error: client did not finish the RDP handshake in time, dropping it\n",
                "slate-session: error: client stopped reading (send stalled), dropping it\n",
                "slate-session: error: refused client did not take the refusal in time, dropping it\n",
        };
        const char *m = msg[alarm_kind < 3 ? alarm_kind : 0];
        ssize_t k = write(2, m, strlen(m));
        (void)k;
        /* FreeRDP's TLS accept loops without a way out: only the process can end it. */
        _exit(2);
}

void rdpconn_alarm(int kind, uint32_t ms)
{
        alarm_kind = kind;
        struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
        setitimer(ITIMER_REAL, &it, NULL);
}

void rdpconn_alarm_init(void)
{
        struct sigaction sa = { .sa_handler = on_alarm };
        sigaction(SIGALRM, &sa, NULL);
}
