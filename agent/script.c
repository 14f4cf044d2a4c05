/* slate-agent's session-script backend: a desktop's session is agent/session-script's business
 * (its contract is at the script's top). One run of the script at a time, watched from the main
 * loop without blocking the heartbeats; a run past its deadline is killed with its process group. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent/agent_int.h"
#include "common/cleanup.h"
#include "common/spawn.h"

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
        *j = (ScriptJob){ .kind = kind, .pid = pid, .err_fd = err_fd, .deadline_ms = agent_uptime_ms() + SCRIPT_TIMEOUT_MS };
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
        int r = agent_read_line(SESSION_PID_FILE, buf, sizeof buf);
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

/* ---- the ready hook: the session says its desktop is usable ---- */

bool script_ready_hook_present(const char *script)
{
        char path[PATH_MAX];
        const char *slash = strrchr(script, '/');
        if (!slash || snprintf(path, sizeof path, "%.*s/%s", (int)(slash - script), script, SESSION_READY_HOOK) >=
                              (int)sizeof path)
                return false;
        return access(path, X_OK) == 0;
}

static void script_ready_unwatch(Agent *a)
{
        if (a->ready_fd >= 0)
                close(a->ready_fd);
        a->ready_fd = -1;
}

/* USER's uid and gid from /etc/passwd, read by hand: the agent is static, without NSS; the session
 * script made the user with useradd, which writes there. */
static int passwd_ids(const char *user, uid_t *uid, gid_t *gid)
{
        _cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
        char line[1024];
        size_t ul = strlen(user);
        while (f && fgets(line, sizeof line, f))
                if (!strncmp(line, user, ul) && line[ul] == ':') {
                        unsigned long u, g;
                        char *p = strchr(line + ul + 1, ':');
                        if (p && sscanf(p + 1, "%lu:%lu:", &u, &g) == 2) {
                                *uid = (uid_t)u;
                                *gid = (gid_t)g;
                                return 0;
                        }
                }
        return -ENOENT;
}

static void script_ready_watch(Agent *a)
{
        a->ready_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (a->ready_fd < 0 || inotify_add_watch(a->ready_fd, SESSION_READY_FILE, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
                log_agent("%s: cannot watch: %s; the host will not hear that the session is usable",
                          SESSION_READY_FILE, strerror(errno));
                script_ready_unwatch(a);
        }
}

/* The ready file of USER's session: new, empty, watched, then given to the user (so nothing is
 * written before the watch). Best effort: without it the host waits its usable-timeout. */
static void script_ready_prepare(Agent *a, const char *user)
{
        script_ready_unwatch(a);
        a->usable_unsent = false;
        if (!(a->capabilities & AGENT_CAP_USABLE))
                return;
        uid_t uid;
        gid_t gid;
        if (passwd_ids(user, &uid, &gid) < 0) {
                log_agent("%s: not in /etc/passwd; the host will not hear that the session is usable", user);
                return;
        }
        unlink(SESSION_READY_FILE);
        int fd = open(SESSION_READY_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_agent("%s: %s; the host will not hear that the session is usable", SESSION_READY_FILE,
                          strerror(errno));
                return;
        }
        script_ready_watch(a);
        if (fchown(fd, uid, gid) < 0)
                log_agent("%s: chown to %s: %s", SESSION_READY_FILE, user, strerror(errno));
        close(fd);
}

/* The file changed: usable once it holds anything. */
static void script_ready_poll(Agent *a)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool changed = false;
        while (a->ready_fd >= 0 && read(a->ready_fd, buf, sizeof buf) > 0)
                changed = true;
        struct stat st;
        if (!changed || stat(SESSION_READY_FILE, &st) < 0 || st.st_size == 0)
                return;
        script_ready_unwatch(a);
        if (a->script_active)
                agent_usable(a, "the session's ready hook ran");
}

static int script_stopped(Agent *a, const char *detail)
{
        int r = 0;
        disks_unmount(a);
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
                        char full[AGENT_STRING_MAX + 1];
                        disks_detail(a, detail, full, sizeof full);
                        a->script_active = true;
                        snprintf(a->script_user, sizeof a->script_user, "%s", j.user);
                        script_watch(a);
                        script_ready_prepare(a, j.user);
                        log_agent("session for %s started: %s", j.user, full);
                        agent_send_state(a, AGENT_SESSION_STARTED, full);
                } else {
                        log_agent("session for %s failed: %s", j.user, detail);
                        agent_send_state(a, AGENT_SESSION_FAILED, detail);
                        /* Whatever the start left behind (an X server) goes before the next one;
                         * the disks after it. */
                        if (script_job_run(a, SCRIPT_JOB_CLEANUP, j.user, 0, 0, 0) < 0)
                                disks_unmount(a);
                        return;
                }
                break;
        case SCRIPT_JOB_CLEANUP:
                sync();
                disks_unmount(a);
                break;
        case SCRIPT_JOB_STOP:
                sync();
                a->script_active = false;
                script_unwatch(a);
                script_ready_unwatch(a);
                if (!ok)
                        log_agent("session stop for %s: %s", j.user, detail);
                script_stopped(a, "ended");
                return;
        case SCRIPT_JOB_LOGOUT:
                sync();
                disks_unmount(a);
                a->script_active = false;
                script_unwatch(a);
                script_ready_unwatch(a);
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
void script_poll(Agent *a)
{
        ScriptJob *j = &a->job;
        if (a->ready_fd >= 0)
                script_ready_poll(a);
        if (j->kind != SCRIPT_JOB_NONE) {
                script_job_read(j, false);
                int status;
                pid_t r = waitpid(j->pid, &status, WNOHANG);
                if (r == j->pid) {
                        script_job_read(j, true);
                        script_job_done(a, status);
                } else if (agent_uptime_ms() >= j->deadline_ms) {
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
                                disks_unmount(a);
                                a->script_active = false;
                                if (!a->connected || agent_send_state(a, AGENT_SESSION_LOGOUT, "user logged out") < 0)
                                        a->logout_pending = true;
                        }
                }
        }
}

/* The fds script_poll wants to be woken for, and how long poll may sleep at most. */
unsigned script_pollfds(const Agent *a, struct pollfd *pfd, int *timeout_ms)
{
        unsigned n = 0;
        const ScriptJob *j = &a->job;
        if (j->kind != SCRIPT_JOB_NONE) {
                if (j->err_fd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = j->err_fd, .events = POLLIN };
                if (j->pidfd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = j->pidfd, .events = POLLIN };
                /* Without a pidfd (old kernel) the exit is polled for. */
                uint64_t now = agent_uptime_ms();
                int left = j->deadline_ms > now ? (int)(j->deadline_ms - now) : 0;
                if (j->pidfd < 0 && left > 100)
                        left = 100;
                if (*timeout_ms < 0 || left < *timeout_ms)
                        *timeout_ms = left;
        }
        if (a->session_pidfd >= 0)
                pfd[n++] = (struct pollfd){ .fd = a->session_pidfd, .events = POLLIN };
        if (a->ready_fd >= 0)
                pfd[n++] = (struct pollfd){ .fd = a->ready_fd, .events = POLLIN };
        return n;
}

int script_session_start(Agent *a, const AgentMsg *m)
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
        log_agent("session start for %s (uid %u, %ux%u, %u disk%s)", user, m->session_start.uid,
                  m->session_start.width, m->session_start.height, m->session_start.n_disks,
                  m->session_start.n_disks == 1 ? "" : "s");
        /* The disks are in place before the script starts the session, so its X session finds them. */
        int r = disks_mount(a, m, detail, sizeof detail);
        if (r < 0)
                return agent_send_state(a, AGENT_SESSION_FAILED, detail);
        r = script_job_run(a, SCRIPT_JOB_START, user, m->session_start.uid, m->session_start.width,
                           m->session_start.height);
        if (r < 0) {
                disks_unmount(a);
                snprintf(detail, sizeof detail, "cannot run the session script: %s", strerror(-r));
                return agent_send_state(a, AGENT_SESSION_FAILED, detail);
        }
        return 0;
}

int script_session_stop(Agent *a)
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
void script_adopt(Agent *a)
{
        char user[USER_NAME_MAX + 2];
        if (agent_read_line(SESSION_USER_FILE, user, sizeof user) < 0 || !user_name_valid(user))
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
        /* Not usable yet when the agent restarted: the hook may still write. */
        struct stat st;
        if ((a->capabilities & AGENT_CAP_USABLE) && lstat(SESSION_READY_FILE, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size == 0)
                script_ready_watch(a);
}

