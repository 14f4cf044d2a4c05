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

#define PORTS_DIR "/dev/virtio-ports"
#define DEFAULT_PORT PORTS_DIR "/" AGENT_PORT_NAME
/* virtio-serial returns EOF over and over while no host is connected: poll at this pace. */
#define RECONNECT_POLL_MS 200
/* A port that is not there yet (modules still loading) is looked for again at this pace. */
#define OPEN_RETRY_MS 100
/* --session-script (agent/session-script documents the contract): a start or stop that takes
 * longer than this is killed (its whole process group) and counts as failed. */
#define SCRIPT_TIMEOUT_MS 60000
/* Written by `SCRIPT start`: the pid of the session's leader, and the user it belongs to. When
 * that process exits the user has logged out inside the desktop. */
#define SESSION_PID_FILE "/run/slate/session.pid"
#define SESSION_USER_FILE "/run/slate/session.user"

typedef enum ScriptJobKind {
        SCRIPT_JOB_NONE,
        SCRIPT_JOB_START,           /* answered STARTED / FAILED */
        SCRIPT_JOB_CLEANUP,         /* `stop` after a failed start: answered by nobody */
        SCRIPT_JOB_STOP,            /* answered STOPPED */
        SCRIPT_JOB_LOGOUT,          /* `stop` after the session ended by itself: LOGOUT */
} ScriptJobKind;

/* One run of the session script at a time, watched from the main loop. */
typedef struct ScriptJob {
        ScriptJobKind kind;
        pid_t pid;
        int pidfd;                  /* readable when the script exited */
        int err_fd;                 /* its stderr: logged, last line kept for FAILED */
        uint64_t deadline_ms;
        char user[USER_NAME_MAX + 1];
        LineBuf err_lines;          /* capped at AGENT_STRING_MAX: a line becomes a detail string */
        char last[AGENT_STRING_MAX + 1];
} ScriptJob;

typedef struct Agent {
        const char *port;
        uint32_t capabilities;
        char boot_id[AGENT_STRING_MAX + 1];
        int fd;
        AgentParser parser;
        const AgentDesk *desk;      /* --test-desktop: sessions are this backend's (test guest only) */
        /* A LOGOUT that happened while no host was connected, told to the next one after READY. */
        bool logout_pending;
        bool connected;             /* a host answered our HELLO on the port */
        const char *session_script; /* --session-script: sessions are the script's */
        ScriptJob job;
        bool script_active;         /* the script's session runs, for script_user */
        char script_user[USER_NAME_MAX + 1];
        int session_pidfd;          /* the session leader from SESSION_PID_FILE, or -1 */
        unsigned stops_waiting;     /* SESSION_STOPs to answer when the running job ends */
} Agent;

/* Set by SIGTERM/SIGINT: give the console back and exit. */
static volatile sig_atomic_t stop_signal;

#define log_agent(...) (fprintf(stderr, "slate-agent: " __VA_ARGS__), fputc('\n', stderr))

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t uptime_ms(void)
{
        struct timespec ts;
        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads a small text file into buf without the trailing newline. */
static int read_line(const char *path, char *buf, size_t size)
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
                if (read_line(path, name, sizeof name) < 0 || !name[0] || strchr(name, '/') ||
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
                sleep_ms(OPEN_RETRY_MS);
        }
}

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
static int agent_send(Agent *a, const AgentMsg *m)
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

static int agent_send_state(Agent *a, uint8_t state, const char *detail)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_STATE, .session_state.state = state };
        snprintf(m.session_state.detail, sizeof m.session_state.detail, "%s", detail);
        return agent_send(a, &m);
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

static int script_session_start(Agent *a, const AgentMsg *m);
static int script_session_stop(Agent *a);

static int agent_session_start(Agent *a, const AgentMsg *m)
{
        const char *user = m->session_start.user;
        char detail[AGENT_STRING_MAX + 1];
        int r;
        uint64_t t0 = uptime_ms();
        if (a->session_script)
                return script_session_start(a, m);
        if (!a->desk) {
                snprintf(detail, sizeof detail, "no session backend in this agent (--session-script PATH)");
                r = -ENOTSUP;
        } else
                r = a->desk->session_start(a->desk->data, user, m->session_start.width, m->session_start.height,
                                           detail, sizeof detail);
        /* The name goes to the log only once it is known to be harmless. */
        if (r < 0)
                log_agent("session start refused: %s", detail);
        else
                log_agent("session for %s (uid %u) started in %llu ms: %s", user, m->session_start.uid,
                          (unsigned long long)(uptime_ms() - t0), detail);
        return agent_send_state(a, r < 0 ? AGENT_SESSION_FAILED : AGENT_SESSION_STARTED, detail);
}

static int agent_session_stop(Agent *a, const AgentMsg *m)
{
        /* Always answered, session or not: the host's stop must be idempotent. */
        if (a->session_script) {
                log_agent("session stop (%zu-byte reason)", strlen(m->session_stop.reason));
                return script_session_stop(a);
        }
        bool was = a->desk && a->desk->session_user(a->desk->data);
        if (a->desk)
                a->desk->session_stop(a->desk->data);
        else
                sync();
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
        log_agent("%s logged out", user);
        if (!connected || agent_send_state(a, AGENT_SESSION_LOGOUT, "user logged out (F12)") < 0)
                a->logout_pending = true;
}

/* ---- --session-script backend: the desktop's session is agent/session-script's business ---- */

/* The script's stderr, line by line: each line to our log, the last non-empty one kept for the
 * host. Only printable ASCII is kept: the detail ends up in the broker's log. A longer line is cut
 * to AGENT_STRING_MAX bytes. */
static void script_job_line(ScriptJob *j, char *line, size_t len)
{
        if (len == 0)
                return;
        for (size_t i = 0; i < len; i++)
                if (!(line[i] >= 0x20 && line[i] < 0x7f))
                        line[i] = '?';
        log_agent("session script: %s", line);
        memcpy(j->last, line, len + 1);
}

static void script_job_read(ScriptJob *j, bool flush)
{
        char buf[1024];
        ssize_t n;
        while (j->err_fd >= 0 && (n = read(j->err_fd, buf, sizeof buf)) > 0) {
                size_t off = 0, len;
                char *line;
                while (off < (size_t)n) {
                        size_t used;
                        int r = linebuf_feed(&j->err_lines, buf + off, (size_t)n - off, &used, &line, &len);
                        off += used;
                        if (r == 0 || r == -ENOMEM)
                                break;
                        script_job_line(j, line, len);
                }
        }
        size_t len;
        char *line;
        if (flush && (line = linebuf_finish(&j->err_lines, &len)))
                script_job_line(j, line, len);
}

/* Runs `SCRIPT ARGS...` in its own session and process group (a timeout kills all of it),
 * stdin /dev/null, stdout shared with ours (the journal), stderr into a pipe we read. */
static int script_job_spawn(Agent *a, ScriptJobKind kind, const char *user, char *const argv[])
{
        ScriptJob *j = &a->job;
        static const char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                            "LANG=C.UTF-8", NULL };
        /* systemd starts us with SIGPIPE ignored; the script gets every signal at its default. */
        SpawnOpts so = { .argv = (const char *const *)argv, .envp = envp, .fd3 = -1, .new_session = true,
                         .default_signals = true, .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_INHERIT, SPAWN_STDIO_PIPE } };
        SpawnChild child;
        int r = spawn_start(&so, &child);
        if (r < 0)
                return r;
        pid_t pid = child.pid;
        int err_fd = child.fds[2];
        fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);
        *j = (ScriptJob){ .kind = kind, .pid = pid, .err_fd = err_fd, .deadline_ms = uptime_ms() + SCRIPT_TIMEOUT_MS };
        linebuf_init(&j->err_lines, AGENT_STRING_MAX);
        j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        snprintf(j->user, sizeof j->user, "%s", user);
        log_agent("session script: %s %s (pid %d)", argv[1], user[0] ? user : "-", (int)pid);
        return 0;
}

static int script_job_run(Agent *a, ScriptJobKind kind, const char *user, unsigned uid, unsigned w, unsigned h)
{
        char suid[16], sw[8], sh[8];
        snprintf(suid, sizeof suid, "%u", uid);
        snprintf(sw, sizeof sw, "%u", w);
        snprintf(sh, sizeof sh, "%u", h);
        char *start[] = { (char *)a->session_script, "start", (char *)user, suid, sw, sh, NULL };
        char *stop[] = { (char *)a->session_script, "stop", (char *)user, NULL };
        int r = script_job_spawn(a, kind, user, kind == SCRIPT_JOB_START ? start : stop);
        if (r < 0)
                log_agent("%s: cannot run: %s", a->session_script, strerror(-r));
        return r;
}

static void script_unwatch(Agent *a)
{
        if (a->session_pidfd >= 0)
                close(a->session_pidfd);
        a->session_pidfd = -1;
}

/* Watches the session leader named in the pid file; without one, a logout inside the desktop
 * goes unnoticed until the host ends the session (logged, not an error). */
static void script_watch(Agent *a)
{
        char buf[32];
        script_unwatch(a);
        int r = read_line(SESSION_PID_FILE, buf, sizeof buf);
        char *end;
        long pid = r < 0 ? 0 : strtol(buf, &end, 10);
        if (r < 0 || pid <= 1 || pid > INT32_MAX || *end) {
                log_agent("%s: %s; a logout inside the session will not be noticed", SESSION_PID_FILE,
                          r < 0 ? strerror(-r) : "no pid");
                return;
        }
        a->session_pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (a->session_pidfd < 0)
                log_agent("%s: pid %ld: %s", SESSION_PID_FILE, pid, strerror(errno));
}

static int script_stopped(Agent *a, const char *detail)
{
        int r = 0;
        for (; a->stops_waiting > 0; a->stops_waiting--)
                if (agent_send_state(a, AGENT_SESSION_STOPPED, detail) < 0)
                        r = -EIO;
        return r;
}

/* A job ended (status as from waitpid, or -1 on timeout): answer the host and start whatever
 * was waiting for it. */
static void script_job_done(Agent *a, int status)
{
        ScriptJob j = a->job;
        a->job = (ScriptJob){ .pidfd = -1, .err_fd = -1 };
        bool ok = status == 0;
        char detail[AGENT_STRING_MAX + 1];
        if (status < 0)
                snprintf(detail, sizeof detail, "session script timed out after %u s", SCRIPT_TIMEOUT_MS / 1000);
        else if (!ok && j.last[0])
                snprintf(detail, sizeof detail, "%s", j.last);
        else if (WIFSIGNALED(status))
                snprintf(detail, sizeof detail, "session script killed by signal %d", WTERMSIG(status));
        else if (!ok)
                snprintf(detail, sizeof detail, "session script exited with status %d", WEXITSTATUS(status));
        else
                snprintf(detail, sizeof detail, "%s", j.last[0] ? j.last : "started");
        if (j.pidfd >= 0)
                close(j.pidfd);
        if (j.err_fd >= 0)
                close(j.err_fd);
        linebuf_free(&j.err_lines);

        switch (j.kind) {
        case SCRIPT_JOB_START:
                if (ok) {
                        a->script_active = true;
                        snprintf(a->script_user, sizeof a->script_user, "%s", j.user);
                        script_watch(a);
                        log_agent("session for %s started: %s", j.user, detail);
                        agent_send_state(a, AGENT_SESSION_STARTED, detail);
                } else {
                        log_agent("session for %s failed: %s", j.user, detail);
                        agent_send_state(a, AGENT_SESSION_FAILED, detail);
                        /* Whatever the start left behind (an X server) goes before the next one. */
                        script_job_run(a, SCRIPT_JOB_CLEANUP, j.user, 0, 0, 0);
                        return;
                }
                break;
        case SCRIPT_JOB_CLEANUP:
                sync();
                break;
        case SCRIPT_JOB_STOP:
                sync();
                a->script_active = false;
                script_unwatch(a);
                if (!ok)
                        log_agent("session stop for %s: %s", j.user, detail);
                script_stopped(a, "ended");
                return;
        case SCRIPT_JOB_LOGOUT:
                sync();
                a->script_active = false;
                script_unwatch(a);
                log_agent("%s logged out", j.user);
                if (!a->connected || agent_send_state(a, AGENT_SESSION_LOGOUT, "user logged out") < 0)
                        a->logout_pending = true;
                break;
        case SCRIPT_JOB_NONE:
                break;
        }
        /* A stop that arrived while this job ran. */
        if (a->stops_waiting > 0 && a->job.kind == SCRIPT_JOB_NONE) {
                if (a->script_active) {
                        if (script_job_run(a, SCRIPT_JOB_STOP, a->script_user, 0, 0, 0) < 0)
                                script_stopped(a, "ended");
                } else {
                        sync();
                        script_stopped(a, "no session");
                }
        }
}

/* Called on every turn of the main loop: reads the script's stderr, reaps it, enforces the
 * deadline, notices the session leader's exit. Never blocks. */
static void script_poll(Agent *a)
{
        ScriptJob *j = &a->job;
        if (j->kind != SCRIPT_JOB_NONE) {
                script_job_read(j, false);
                int status;
                pid_t r = waitpid(j->pid, &status, WNOHANG);
                if (r == j->pid) {
                        script_job_read(j, true);
                        script_job_done(a, status);
                } else if (uptime_ms() >= j->deadline_ms) {
                        log_agent("session script (pid %d): no answer in %u s; killing it", (int)j->pid,
                                  SCRIPT_TIMEOUT_MS / 1000);
                        kill(-j->pid, SIGKILL);
                        kill(j->pid, SIGKILL);
                        while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        script_job_read(j, true);
                        script_job_done(a, -1);
                }
        }
        if (a->session_pidfd >= 0 && a->job.kind == SCRIPT_JOB_NONE) {
                struct pollfd p = { .fd = a->session_pidfd, .events = POLLIN };
                if (poll(&p, 1, 0) > 0) {
                        script_unwatch(a);
                        if (a->script_active && script_job_run(a, SCRIPT_JOB_LOGOUT, a->script_user, 0, 0, 0) < 0) {
                                a->script_active = false;
                                if (!a->connected || agent_send_state(a, AGENT_SESSION_LOGOUT, "user logged out") < 0)
                                        a->logout_pending = true;
                        }
                }
        }
}

/* The fds script_poll wants to be woken for, and how long poll may sleep at most. */
static unsigned script_pollfds(const Agent *a, struct pollfd *pfd, int *timeout_ms)
{
        unsigned n = 0;
        const ScriptJob *j = &a->job;
        if (j->kind != SCRIPT_JOB_NONE) {
                if (j->err_fd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = j->err_fd, .events = POLLIN };
                if (j->pidfd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = j->pidfd, .events = POLLIN };
                /* Without a pidfd (old kernel) the exit is polled for. */
                uint64_t now = uptime_ms();
                int left = j->deadline_ms > now ? (int)(j->deadline_ms - now) : 0;
                if (j->pidfd < 0 && left > 100)
                        left = 100;
                if (*timeout_ms < 0 || left < *timeout_ms)
                        *timeout_ms = left;
        }
        if (a->session_pidfd >= 0)
                pfd[n++] = (struct pollfd){ .fd = a->session_pidfd, .events = POLLIN };
        return n;
}

static int script_session_start(Agent *a, const AgentMsg *m)
{
        const char *user = m->session_start.user;
        char detail[AGENT_STRING_MAX + 1];
        if (!user_name_valid(user)) {
                log_agent("session start refused: invalid user name");
                return agent_send_state(a, AGENT_SESSION_FAILED, "invalid user name");
        }
        if (a->job.kind == SCRIPT_JOB_START && !strcmp(a->job.user, user))
                return 0;   /* the start under way answers both */
        if (a->job.kind != SCRIPT_JOB_NONE) {
                snprintf(detail, sizeof detail, "busy: the session script is still running (%s)",
                         a->job.kind == SCRIPT_JOB_START ? "start" : "stop");
                log_agent("session start for %s refused: %s", user, detail);
                return agent_send_state(a, AGENT_SESSION_FAILED, detail);
        }
        if (a->script_active) {
                if (!strcmp(a->script_user, user))
                        return agent_send_state(a, AGENT_SESSION_STARTED, "already running");
                snprintf(detail, sizeof detail, "a session for %s is running", a->script_user);
                log_agent("session start for %s refused: %s", user, detail);
                return agent_send_state(a, AGENT_SESSION_FAILED, detail);
        }
        a->logout_pending = false;
        log_agent("session start for %s (uid %u, %ux%u)", user, m->session_start.uid, m->session_start.width,
                  m->session_start.height);
        int r = script_job_run(a, SCRIPT_JOB_START, user, m->session_start.uid, m->session_start.width,
                               m->session_start.height);
        if (r < 0) {
                snprintf(detail, sizeof detail, "cannot run the session script: %s", strerror(-r));
                return agent_send_state(a, AGENT_SESSION_FAILED, detail);
        }
        return 0;
}

static int script_session_stop(Agent *a)
{
        a->logout_pending = false;
        a->stops_waiting++;
        if (a->job.kind != SCRIPT_JOB_NONE)
                return 0;   /* answered when the running job ends */
        if (!a->script_active) {
                sync();
                return script_stopped(a, "no session");
        }
        if (script_job_run(a, SCRIPT_JOB_STOP, a->script_user, 0, 0, 0) < 0) {
                sync();
                return script_stopped(a, "ended");
        }
        return 0;
}

/* An agent restarted while a session ran (Restart=always) takes the session over. */
static void script_adopt(Agent *a)
{
        char user[USER_NAME_MAX + 2];
        if (read_line(SESSION_USER_FILE, user, sizeof user) < 0 || !user_name_valid(user))
                return;
        script_watch(a);
        if (a->session_pidfd < 0)
                return;
        struct pollfd p = { .fd = a->session_pidfd, .events = POLLIN };
        if (poll(&p, 1, 0) > 0) {
                script_unwatch(a);
                return;
        }
        a->script_active = true;
        memcpy(a->script_user, user, strlen(user) + 1);     /* valid names are at most USER_NAME_MAX */
        log_agent("adopted the running session of %s", user);
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
        case AGENT_MSG_HEARTBEAT:
                if (agent_msg_decode(f, &m) < 0) {
                        log_agent("%s: malformed heartbeat (%u bytes)", a->port, f->len);
                        return -EBADMSG;
                }
                return agent_send(a, &(AgentMsg){ .type = AGENT_MSG_HEARTBEAT,
                                                  .heartbeat = { .seq = m.heartbeat.seq, .uptime_ms = uptime_ms() } });
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
                struct pollfd pfds[1 + AGENT_DESK_POLLFDS_MAX + 3];
                pfds[0] = (struct pollfd){ .fd = a->fd, .events = POLLIN };
                unsigned ndesk = a->desk ? a->desk->pollfds(a->desk->data, pfds + 1, AGENT_DESK_POLLFDS_MAX) : 0;
                int timeout = -1;
                unsigned nfds = 1 + ndesk + script_pollfds(a, pfds + 1 + ndesk, &timeout);
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
                        sleep_ms(RECONNECT_POLL_MS);
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
        Agent a = { .port = DEFAULT_PORT, .capabilities = AGENT_CAP_SESSION, .fd = -1, .session_pidfd = -1,
                    .job = { .pidfd = -1, .err_fd = -1 } };
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
        int r = read_line("/proc/sys/kernel/random/boot_id", a.boot_id, sizeof a.boot_id);
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
        }
        if (a.session_script)
                script_adopt(&a);
        r = agent_run(&a);
        if (a.desk)
                a.desk->done(a.desk->data);
        return r < 0 ? 1 : 0;
}
