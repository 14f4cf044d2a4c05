/* Run qemu-img as a child with a clean environment, optional resource limits and an optional
 * secret fd, and collect its stdout/stderr with fixed bounds. slated is threaded, so the child
 * does only async-signal-safe work between fork and exec; everything else is prepared before. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/qemu_img.h"

extern char **environ;

/* qemu-img's diagnostics fit in a few lines; more is noise we only drain. */
#define STDERR_KEEP 4096

/* The environment of slated minus what must not reach qemu-img: preloads (pam_wrapper in the
 * tests, anything an attacker set) and the locale, pinned to C so messages we match stay English. */
static char **child_env_new(void)
{
        size_t n = 0;
        for (char **e = environ; e && *e; e++)
                n++;
        char **env = xmalloc0((n + 2) * sizeof *env);
        size_t k = 0;
        for (char **e = environ; e && *e; e++) {
                if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "PAM_WRAPPER", 11) == 0 ||
                    strncmp(*e, "LC_", 3) == 0 || strncmp(*e, "LANG=", 5) == 0 || strncmp(*e, "LANGUAGE=", 9) == 0)
                        continue;
                env[k++] = *e;
        }
        env[k++] = (char *)"LC_ALL=C";
        env[k] = NULL;
        return env;
}

static int fd_above_stdio(int fd)
{
        return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

/* Between fork and exec: async-signal-safe calls only. Reports exec failure through errfd. */
static _Noreturn void child_exec(const char *const *argv, char **envp, const QemuImgRun *o, int nullfd, int outw,
                                 int errw, int fd3, int errfd)
{
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);

        nullfd = fd_above_stdio(nullfd);
        outw = fd_above_stdio(outw);
        errw = fd_above_stdio(errw);
        fd3 = fd_above_stdio(fd3);
        errfd = fd_above_stdio(errfd);
        if (errfd == 3)
                errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 4);
        int e = 0;
        if (dup2(nullfd, 0) < 0 || dup2(outw >= 0 ? outw : nullfd, 1) < 0 || dup2(errw, 2) < 0)
                e = errno;
        if (!e && fd3 >= 0) {
                if (fd3 == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(fd3, 3) < 0)
                        e = errno;
        }
        if (!e) {
                /* Whatever other threads opened without O_CLOEXEC must not reach qemu-img. */
                if (errfd > 3)
                        close_range(4, (unsigned)errfd - 1, 0);
                close_range((unsigned)errfd + 1, ~0U, 0);
                if (fd3 < 0 && errfd != 3)
                        close(3);
                if (o->limit_as) {
                        struct rlimit rl = { o->limit_as, o->limit_as };
                        if (setrlimit(RLIMIT_AS, &rl) < 0)
                                e = errno;
                }
                if (!e && o->limit_cpu_s) {
                        /* SIGXCPU at the soft limit, SIGKILL a second later if it is caught. */
                        struct rlimit rl = { o->limit_cpu_s, o->limit_cpu_s + 1 };
                        if (setrlimit(RLIMIT_CPU, &rl) < 0)
                                e = errno;
                }
        }
        if (!e) {
                execve(argv[0], (char *const *)argv, envp);
                e = errno;
        }
        (void)!write(errfd, &e, sizeof e);
        _exit(127);
}

static void trim_end(char *s, size_t *len)
{
        while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' || s[*len - 1] == ' '))
                s[--*len] = 0;
}

int qemu_img_run(const char *const *argv, QemuImgRun *o, char **ret_stdout, char **ret_stderr)
{
        QemuImgRun defaults = { .fd3 = -1 };
        if (!o)
                o = &defaults;
        o->exit_code = -1;
        if (ret_stdout)
                *ret_stdout = NULL;
        if (ret_stderr)
                *ret_stderr = NULL;

        _cleanup_free_ char **envp = child_env_new();
        _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, execp[2] = { -1, -1 };
        int r = 0;
        if (nullfd < 0)
                r = -errno;
        if (!r && o->stdout_max > 0 && pipe2(outp, O_CLOEXEC) < 0)
                r = -errno;
        if (!r && pipe2(errp, O_CLOEXEC) < 0)
                r = -errno;
        if (!r && pipe2(execp, O_CLOEXEC) < 0)
                r = -errno;
        pid_t pid = -1;
        if (!r) {
                pid = fork();
                if (pid < 0)
                        r = -errno;
                else if (pid == 0)
                        child_exec(argv, envp, o, nullfd, outp[1], errp[1], o->fd3, execp[1]);
        }
        if (outp[1] >= 0)
                close(outp[1]);
        if (errp[1] >= 0)
                close(errp[1]);
        if (execp[1] >= 0)
                close(execp[1]);
        _cleanup_close_ int outfd = outp[0], errfd = errp[0], execfd = execp[0];
        if (r < 0) {
                if (ret_stderr)
                        *ret_stderr = xasprintf("cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }

        _cleanup_free_ char *out = o->stdout_max ? xmalloc0(o->stdout_max + 1) : NULL;
        char err[STDERR_KEEP + 1];
        size_t outlen = 0, errlen = 0;
        bool killed = false, too_big = false;
        struct pollfd p[2] = { { .fd = errfd, .events = POLLIN }, { .fd = outfd, .events = POLLIN } };
        while (p[0].fd >= 0 || p[1].fd >= 0) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        char buf[8192];
                        ssize_t k = read(p[i].fd, buf, sizeof buf);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                p[i].fd = -1;
                                continue;
                        }
                        if (i == 0) {
                                size_t take = MIN((size_t)k, STDERR_KEEP - errlen);
                                memcpy(err + errlen, buf, take);
                                errlen += take;
                        } else if (outlen + (size_t)k > o->stdout_max) {
                                /* A hostile image can make `info` verbose; stop it rather than buffer. */
                                too_big = true;
                                if (!killed)
                                        kill(pid, SIGKILL);
                                killed = true;
                        } else {
                                memcpy(out + outlen, buf, (size_t)k);
                                outlen += (size_t)k;
                        }
                }
        }
        err[errlen] = 0;
        trim_end(err, &errlen);

        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;

        int exec_errno = 0;
        if (read(execfd, &exec_errno, sizeof exec_errno) == (ssize_t)sizeof exec_errno && exec_errno) {
                if (ret_stderr)
                        *ret_stderr = xasprintf("cannot execute %s: %s", argv[0], strerror(exec_errno));
                return -exec_errno;
        }

        if (too_big)
                r = -EFBIG;
        else if (WIFEXITED(status)) {
                o->exit_code = WEXITSTATUS(status);
                r = o->exit_code == 0 ? 0 : -EIO;
        }
        else if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU ||
                                         (o->limit_cpu_s && WTERMSIG(status) == SIGKILL)))
                r = -ETIME;
        else
                r = o->limit_as ? -ENOMEM : -EIO;

        if (ret_stderr) {
                if (too_big)
                        *ret_stderr = xasprintf("output larger than %zu bytes", o->stdout_max);
                else if (r == -ETIME)
                        *ret_stderr = xasprintf("stopped at the CPU time limit of %u s", o->limit_cpu_s);
                else if (WIFSIGNALED(status))
                        *ret_stderr = xasprintf("killed by signal %d%s%s%s", WTERMSIG(status),
                                                o->limit_as ? " (memory limit?)" : "", errlen ? ": " : "", err);
                else
                        *ret_stderr = xstrdup(errlen ? err : r ? "failed without a message" : "");
        }
        if (ret_stdout && out)
                *ret_stdout = TAKE_PTR(out);
        return r;
}
