/* slate-agent's small I/O: its clock, one-line files, and messages to the host on the port.
 * Shared by the core (slate-agent.c) and the session-script backend (script.c); calls neither. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent/agent_int.h"
#include "common/cleanup.h"

uint64_t agent_uptime_ms(void)
{
        struct timespec ts;
        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agent_sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Reads a small text file into buf without the trailing newline. */
int agent_read_line(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n;
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

/* Without udev nobody makes the by-name links: do what udev's rule would, from sysfs. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Blocks while no host is connected (virtio-serial holds writers back): that is the point. */
int agent_send(Agent *a, const AgentMsg *m)
{
        Writer w;
        writer_init(&w, AGENT_HEADER_SIZE + AGENT_FRAME_MAX);
        int r = agent_msg_encode(m, &w);
        if (r == 0)
                r = write_all(a->fd, w.data, w.len);
        writer_free(&w);
        if (r < 0)
                log_agent("%s: sending %s: %s", a->port, agent_msg_type_name(m->type), strerror(-r));
        return r;
}

int agent_send_state(Agent *a, uint8_t state, const char *detail)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_STATE, .session_state.state = state };
        snprintf(m.session_state.detail, sizeof m.session_state.detail, "%s", detail);
        return agent_send(a, &m);
}

