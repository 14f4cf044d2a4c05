/* slate-agent: the in-guest end of the agent protocol, on a virtio-serial port. Static, libc only,
 * so it runs in any guest (and in a busybox initramfs without udev). It announces itself
 * (HELLO, READY) each time a host connects, echoes heartbeats and starts and stops sessions (in
 * a real desktop: the session script, run without blocking the heartbeats; in the test guest's
 * own build: the desktop it draws, through agent/agent.h); it must never exit because the host
 * went away: slated may restart and reconnect at any time, and a session outlives the connection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "agent/agent.h"
#include "agent/proto.h"
#include "common/cleanup.h"
#include "common/linebuf.h"
#include "common/spawn.h"
#include "common/username.h"

#include "agent/agent_int.h"

/* Set by SIGTERM/SIGINT: give the console back and exit. */
static volatile sig_atomic_t stop_signal;

static void ports_link(void)
{
        DIR *d = opendir("/sys/class/virtio-ports");
        if (!d)
                return;
        mkdir(PORTS_DIR, 0755);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[PATH_MAX], name[NAME_MAX + 1], target[PATH_MAX];
                snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", de->d_name);
                /* An unnamed port or one whose name would escape the directory gets no link. */
                if (agent_read_line(path, name, sizeof name) < 0 || !name[0] || strchr(name, '/') ||
                    !strcmp(name, ".") || !strcmp(name, ".."))
                        continue;
                snprintf(path, sizeof path, PORTS_DIR "/%s", name);
                snprintf(target, sizeof target, "/dev/%s", de->d_name);
                if (symlink(target, path) < 0 && errno != EEXIST)
                        log_agent("%s: cannot link to %s: %s", path, target, strerror(errno));
        }
        closedir(d);
}

/* Opens the port, waiting for it to appear: the agent may start before the driver has
 * probed the device. Returns only with an open fd. */
static int port_open(const char *port)
{
        bool logged = false;
        for (;;) {
                int fd = open(port, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        return fd;
                int e = errno;
                if (e == ENOENT && !strncmp(port, PORTS_DIR "/", sizeof PORTS_DIR))
                        ports_link();
                fd = open(port, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        return fd;
                if (!logged)
                        log_agent("%s: %s; waiting for it", port, strerror(errno));
                logged = true;
                agent_sleep_ms(OPEN_RETRY_MS);
        }
}

void agent_usable(Agent *a, const char *detail)
{
        log_agent("session usable: %s", detail);
        a->usable_unsent = !a->connected || agent_send_state(a, AGENT_SESSION_USABLE, detail) < 0;
}

static bool agent_session_running(const Agent *a)
{
        return a->desk ? a->desk->session_user(a->desk->data) != NULL : a->script_active;
}

/* Forget whatever was to be said about the last session's being usable. */
static void agent_usable_reset(Agent *a)
{
        a->usable_due_ms = 0;
        a->usable_unsent = false;
}

static int agent_announce(Agent *a)
{
        AgentMsg hello = { .type = AGENT_MSG_HELLO };
        snprintf(hello.hello.agent_version, sizeof hello.hello.agent_version, "%s", PACKAGE_VERSION);
        hello.hello.capabilities = a->capabilities;
        memcpy(hello.hello.boot_id, a->boot_id, sizeof hello.hello.boot_id);
        int r = agent_send(a, &hello);
        if (r < 0)
                return r;
        r = agent_send(a, &(AgentMsg){ .type = AGENT_MSG_READY });
        if (r == 0)
                log_agent("%s: ready", a->port);
        if (r == 0 && a->logout_pending) {
                r = agent_send_state(a, AGENT_SESSION_LOGOUT, a->session_script ? "user logged out while no host was connected"
                                                                                : "user logged out (F12) while no host was connected");
                a->logout_pending = r < 0;
        }
        if (r == 0 && a->usable_unsent && agent_session_running(a)) {
                r = agent_send_state(a, AGENT_SESSION_USABLE, "usable while no host was connected");
                a->usable_unsent = r < 0;
        }
        return r;
}

/* A fresh start on the port: drops whatever a confused host left in it and tells the
 * (possibly new) host who we are. */
static void agent_reset(Agent *a)
{
        agent_parser_free(&a->parser);
        agent_parser_init(&a->parser, AGENT_FRAME_MAX);
        if (a->fd >= 0)
                close(a->fd);
        a->fd = port_open(a->port);
}


static int agent_session_start(Agent *a, const AgentMsg *m)
{
        const char *user = m->session_start.user;
        char detail[AGENT_STRING_MAX + 1];
        int r;
        uint64_t t0 = agent_uptime_ms();
        if (a->session_script)
                return script_session_start(a, m);
        /* The disks come before the backend, and only for a desktop without a session: a repeated
         * or competing START is the backend's to answer, over what is mounted already. */
        bool mounted = false;
        if (!a->desk) {
                snprintf(detail, sizeof detail, "no session backend in this agent (--session-script PATH)");
                r = -ENOTSUP;
        } else if (m->session_start.n_disks > 0 && !disks_active(a) && !a->desk->session_user(a->desk->data)) {
                r = disks_mount(a, m, detail, sizeof detail);
                mounted = r == 0;
        } else
                r = 0;
        if (r == 0 && a->desk)
                r = a->desk->session_start(a->desk->data, user, m->session_start.width, m->session_start.height,
                                           detail, sizeof detail);
        if (r < 0 && mounted)
                disks_unmount(a);
        char full[AGENT_STRING_MAX + 1];
        if (r == 0)
                disks_detail(a, detail, full, sizeof full);
        else
                snprintf(full, sizeof full, "%s", detail);
        /* The name goes to the log only once it is known to be harmless. */
        if (r < 0)
                log_agent("session start refused: %s", full);
        else
                log_agent("session for %s (uid %u) started in %llu ms: %s", user, m->session_start.uid,
                          (unsigned long long)(agent_uptime_ms() - t0), full);
        int sr = agent_send_state(a, r < 0 ? AGENT_SESSION_FAILED : AGENT_SESSION_STARTED, full);
        if (r == 0 && a->desk->usable_delay_ms) {
                int delay = a->desk->usable_delay_ms(a->desk->data);
                agent_usable_reset(a);
                if (delay == 0)
                        agent_usable(a, "the test desktop is drawn");
                else if (delay > 0)
                        a->usable_due_ms = agent_uptime_ms() + (uint64_t)delay;
        }
        return sr;
}

static int agent_session_stop(Agent *a, const AgentMsg *m)
{
        /* Always answered, session or not: the host's stop must be idempotent. */
        if (a->session_script) {
                log_agent("session stop (%zu-byte reason)", strlen(m->session_stop.reason));
                return script_session_stop(a);
        }
        bool was = a->desk && a->desk->session_user(a->desk->data);
        agent_usable_reset(a);
        if (a->desk)
                a->desk->session_stop(a->desk->data);
        else
                sync();
        disks_unmount(a);
        a->logout_pending = false;
        log_agent("session stop (%zu-byte reason): %s", strlen(m->session_stop.reason),
                  was ? "ended" : "none was running");
        return agent_send_state(a, AGENT_SESSION_STOPPED, was ? "ended" : "no session");
}

/* The user logged out inside the desktop: end the session here, then tell the host (now, or
 * when one connects). */
static void agent_logout(Agent *a, bool connected)
{
        char user[USER_NAME_MAX + 1];
        snprintf(user, sizeof user, "%s", a->desk->session_user(a->desk->data));
        a->desk->session_stop(a->desk->data);
        agent_usable_reset(a);
        disks_unmount(a);
        log_agent("%s logged out", user);
        if (!connected || agent_send_state(a, AGENT_SESSION_LOGOUT, "user logged out (F12)") < 0)
                a->logout_pending = true;
}

static int agent_handle(Agent *a, const AgentFrame *f)
{
        AgentMsg m;
        switch (f->type) {
        case AGENT_MSG_SESSION_START:
        case AGENT_MSG_SESSION_STOP:
                if (agent_msg_decode(f, &m) < 0) {
                        log_agent("%s: malformed %s (%u bytes)", a->port, agent_msg_type_name(f->type), f->len);
                        return -EBADMSG;
                }
                return f->type == AGENT_MSG_SESSION_START ? agent_session_start(a, &m) : agent_session_stop(a, &m);
        case AGENT_MSG_IDENTITY:
                if (agent_msg_decode(f, &m) < 0) {
                        log_agent("%s: malformed identity (%u bytes)", a->port, f->len);
                        return -EBADMSG;
                }
                return identity_apply(a, &m);
        case AGENT_MSG_HEARTBEAT:
                if (agent_msg_decode(f, &m) < 0) {
                        log_agent("%s: malformed heartbeat (%u bytes)", a->port, f->len);
                        return -EBADMSG;
                }
                return agent_send(a, &(AgentMsg){ .type = AGENT_MSG_HEARTBEAT,
                                                  .heartbeat = { .seq = m.heartbeat.seq, .uptime_ms = agent_uptime_ms() } });
        default:
                /* A newer host may speak messages we do not know yet: not an error. */
                log_agent("%s: ignoring %s message type %u (%u bytes)", a->port, agent_msg_type_name(f->type),
                          f->type, f->len);
                return 0;
        }
}

/* Feeds received bytes to the parser and handles every complete frame. */
static int agent_input(Agent *a, const uint8_t *buf, size_t n)
{
        size_t off = 0;
        while (off < n) {
                AgentFrame f;
                size_t used = 0;
                int r = agent_parser_feed(&a->parser, buf + off, n - off, &used, &f);
                if (r < 0) {
                        log_agent("%s: protocol error: %s", a->port, strerror(-r));
                        return r;
                }
                off += used;
                if (r == 0)
                        break;
                r = agent_handle(a, &f);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int agent_run(Agent *a)
{
        a->fd = -1;
        agent_parser_init(&a->parser, AGENT_FRAME_MAX);
        agent_reset(a);
        a->connected = agent_announce(a) == 0;

        while (!stop_signal) {
                struct pollfd pfds[1 + AGENT_DESK_POLLFDS_MAX + 4];  /* + script_pollfds's */
                pfds[0] = (struct pollfd){ .fd = a->fd, .events = POLLIN };
                unsigned ndesk = a->desk ? a->desk->pollfds(a->desk->data, pfds + 1, AGENT_DESK_POLLFDS_MAX) : 0;
                int timeout = -1;
                unsigned nfds = 1 + ndesk + script_pollfds(a, pfds + 1 + ndesk, &timeout);
                if (a->usable_due_ms) {
                        uint64_t now = agent_uptime_ms();
                        int left = a->usable_due_ms > now ? (int)MIN(a->usable_due_ms - now, (uint64_t)INT_MAX) : 0;
                        if (timeout < 0 || left < timeout)
                                timeout = left;
                }
                /* While disconnected (we slept after the last EOF), no POLLHUP means a host is back. */
                int r = poll(pfds, nfds, a->connected ? timeout : 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        log_agent("poll: %s", strerror(errno));
                        return -errno;
                }
                /* Keyboards first: the fds are only valid until the session changes. */
                bool logout = false;
                for (unsigned i = 1; i < 1 + ndesk; i++)
                        if (pfds[i].revents && a->desk->input(a->desk->data, pfds[i].fd))
                                logout = true;
                if (logout && a->desk->session_user(a->desk->data))
                        agent_logout(a, a->connected);
                script_poll(a);
                if (a->usable_due_ms && agent_uptime_ms() >= a->usable_due_ms) {
                        a->usable_due_ms = 0;
                        if (agent_session_running(a))
                                agent_usable(a, "the test desktop is drawn (after a delay)");
                }
                struct pollfd pfd = pfds[0];
                if (!a->connected && !(pfd.revents & (POLLHUP | POLLERR))) {
                        log_agent("%s: host connected", a->port);
                        /* Bytes of a half-read frame from the previous host mean nothing now. */
                        agent_parser_free(&a->parser);
                        agent_parser_init(&a->parser, AGENT_FRAME_MAX);
                        a->connected = agent_announce(a) == 0;
                        if (!a->connected) {
                                agent_reset(a);
                                continue;
                        }
                }
                if (r == 0 || !pfd.revents)
                        continue;

                uint8_t buf[4096];
                ssize_t n = 0;
                if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                        n = read(a->fd, buf, sizeof buf);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0) {
                        log_agent("%s: read: %s; reopening", a->port, strerror(errno));
                        agent_reset(a);
                        a->connected = agent_announce(a) == 0;
                        continue;
                }
                if (n == 0) {
                        if (a->connected)
                                log_agent("%s: host disconnected", a->port);
                        a->connected = false;
                        agent_sleep_ms(RECONNECT_POLL_MS);
                        continue;
                }
                if (agent_input(a, buf, (size_t)n) < 0) {
                        agent_reset(a);
                        a->connected = agent_announce(a) == 0;
                }
        }
        log_agent("signal %d: exiting", (int)stop_signal);
        return 0;
}

static void on_stop_signal(int sig)
{
        stop_signal = sig;
}

static void usage(FILE *f, const AgentDesk *desk)
{
        fprintf(f,
                "usage: slate-agent [--port PATH] [--canary] [%s--session-script PATH] [--help]\n"
                "                   [--version]\n"
                "\n"
                "Slate guest agent: announces the guest to the broker over a virtio-serial port\n"
                "and answers its heartbeats and session requests.\n"
                "\n"
                "  --port PATH   agent port (default %s)\n"
                "  --canary      announce the canary capability (test guest only)\n"
                "%s"
                "  --session-script PATH\n"
                "                sessions are started and stopped by running PATH start USER UID WIDTH HEIGHT\n"
                "                and PATH stop USER (contract: agent/session-script); the session ends\n"
                "                when the process in " SESSION_PID_FILE " exits\n"
                "  --help        show this help\n"
                "  --version     show the version\n",
                desk ? "--test-desktop | " : "", DEFAULT_PORT, desk ? desk->help : "");
}

int agent_main(int argc, char **argv, const AgentDesk *desk)
{
        static const struct option opts[] = {
                { "port", required_argument, NULL, 'p' },
                { "canary", no_argument, NULL, 'c' },
                { "test-desktop", no_argument, NULL, 'd' },
                { "session-script", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        Agent a = { .port = DEFAULT_PORT, .capabilities = AGENT_CAP_SESSION | AGENT_CAP_DISKS | AGENT_CAP_DISK_SLOTS |
                                                         AGENT_CAP_IDENTITY,
                    .fd = -1, .session_pidfd = -1, .ready_fd = -1, .job = { .pidfd = -1, .err_fd = -1 } };
        bool test_desktop = false;
        int c;
        while ((c = getopt_long(argc, argv, "p:ch", opts, NULL)) != -1) {
                switch (c) {
                case 'p': a.port = optarg; break;
                case 'c': a.capabilities |= AGENT_CAP_CANARY; break;
                case 'd': test_desktop = true; break;
                case 's': a.session_script = optarg; break;
                case 'h': usage(stdout, desk); return 0;
                case 'V': printf("slate-agent %s\n", PACKAGE_VERSION); return 0;
                default: usage(stderr, desk); return 2;
                }
        }
        if (optind < argc) {
                usage(stderr, desk);
                return 2;
        }
        /* A test guest's disk run with the production agent says why, rather than "unknown option". */
        if (test_desktop && !desk) {
                fprintf(stderr, "slate-agent: --test-desktop: this agent has no test desktop (that is the test "
                                "guest's build, tests/guest/slate-agent-testdesk)\n");
                return 2;
        }
        if (test_desktop && a.session_script) {
                fprintf(stderr, "slate-agent: --test-desktop and --session-script exclude each other\n");
                return 2;
        }
        if (a.session_script && a.session_script[0] != '/') {
                fprintf(stderr, "slate-agent: --session-script %s: must be an absolute path\n", a.session_script);
                return 2;
        }
        /* Still announced: the host then sees each start fail with the reason, not a silent guest. */
        if (a.session_script && access(a.session_script, X_OK) < 0)
                log_agent("--session-script %s: %s; session starts will fail", a.session_script, strerror(errno));
        int r = agent_read_line("/proc/sys/kernel/random/boot_id", a.boot_id, sizeof a.boot_id);
        if (r < 0)
                log_agent("/proc/sys/kernel/random/boot_id: %s; announcing an empty boot id", strerror(-r));
        setvbuf(stderr, NULL, _IOLBF, 0);
        /* No SA_RESTART: the signal must interrupt poll so the console is given back. */
        struct sigaction sa = { .sa_handler = on_stop_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (test_desktop) {
                a.desk = desk;
                desk->init(desk->data);
                if (desk->usable_delay_ms)
                        a.capabilities |= AGENT_CAP_USABLE;
        }
        if (a.session_script && script_ready_hook_present(a.session_script))
                a.capabilities |= AGENT_CAP_USABLE;
        if (a.session_script)
                script_adopt(&a);
        r = agent_run(&a);
        if (a.desk)
                a.desk->done(a.desk->data);
        return r < 0 ? 1 : 0;
}
