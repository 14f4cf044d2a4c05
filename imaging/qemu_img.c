/* Run qemu-img as a child with a clean environment, optional resource limits, an optional
 * secret fd, and on hostile files a sandbox (through common/spawn), and collect its stdout/stderr
 * with fixed bounds. It must never let a secret reach argv or the environment, nor buffer more
 * than stdout_max, nor run on a hostile file outside the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/spawn.h"
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

static void trim_end(char *s, size_t *len)
{
        while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' || s[*len - 1] == ' '))
                s[--*len] = 0;
}

/* The sandbox's identity for the input: nobody when others may read it, else its owner (who can,
 * where nobody could not: an admin's own 0600 file). The output directory becomes theirs. */
static int sandbox_prepare(const QemuImgSandbox *q, const char *program, Sandbox *ret)
{
        struct stat st;
        if (fstat(q->input_fd, &st) < 0)
                return -errno;
        *ret = (Sandbox){ .program = program, .input_path = QEMU_IMG_INPUT, .output_dir = q->output_dir,
                          .output_path = QEMU_IMG_OUTPUT_DIR, .uid = SANDBOX_NOBODY, .gid = SANDBOX_NOBODY };
        if (!(st.st_mode & S_IROTH)) {
                ret->uid = st.st_uid;
                ret->gid = st.st_gid;
        }
        if (q->output_dir) {
                _cleanup_close_ int dfd = open(q->output_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0 || fchown(dfd, ret->uid, ret->gid) < 0 || fchmod(dfd, 0700) < 0)
                        return -errno;
        }
        return 0;
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
        SpawnOpts so = {
                .argv = argv,
                .envp = (const char *const *)envp,
                .stdio = { SPAWN_STDIO_NULL, o->stdout_max > 0 ? SPAWN_STDIO_PIPE : SPAWN_STDIO_NULL, SPAWN_STDIO_PIPE },
                .fd3 = o->fd3,
                .default_signals = true,
                .limit_as = o->limit_as,
                .limit_cpu_s = o->limit_cpu_s,
        };
        Sandbox sb;
        if (o->sandbox) {
                /* fd 3 is the sandbox's input. */
                int r = o->fd3 >= 0 ? -EINVAL : sandbox_prepare(o->sandbox, argv[0], &sb);
                if (r < 0) {
                        if (ret_stderr)
                                *ret_stderr = xasprintf("preparing the sandbox: %s", strerror(-r));
                        return r;
                }
                so.sandbox = &sb;
                so.fd3 = o->sandbox->input_fd;
        }
        SpawnChild child;
        int r = spawn_start(&so, &child);
        if (r < 0) {
                if (ret_stderr)
                        *ret_stderr = xasprintf("cannot execute %s%s: %s", argv[0],
                                                o->sandbox ? " in its sandbox" : "", strerror(-r));
                return r;
        }
        pid_t pid = child.pid;
        _cleanup_close_ int outfd = child.fds[1], errfd = child.fds[2];

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
        r = spawn_wait(pid, 0, &status);
        if (r < 0)
                return r;

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

/* Measured here (research/qemu.md §3): 5/30 creates failed serially; with two creates in
 * parallel 40 %, in runs of up to 7 in a row. A failed attempt costs ~15 ms, so retry by time,
 * with a pause to let the load shift, rather than a small fixed count that a busy host exhausts. */
#define LUKS_CPU_USAGE_ERROR "Unable to get accurate CPU usage"
#define LUKS_RETRY_BUDGET_MS 10000
#define LUKS_RETRY_PAUSE_MS 25

int qemu_img_precreate(void *userdata)
{
        const QemuImgPrecreate *p = userdata;
        _cleanup_close_ int fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0600) < 0)
                return -errno;
        if (p->owner != (uid_t)-1 && fchown(fd, p->owner, p->group) < 0)
                return -errno;
        return 0;
}

int qemu_img_run_keyed(const char *const *argv, const void *secret, size_t secret_len,
                       int (*before_attempt)(void *userdata), void *userdata, char **ret_stderr)
{
        *ret_stderr = NULL;
        /* One write fills the pipe, so the key never touches a filesystem. */
        if (secret_len >= PIPE_BUF) {
                *ret_stderr = xasprintf("secret too long");
                return -EINVAL;
        }
        uint64_t deadline = now_ms() + LUKS_RETRY_BUDGET_MS;
        for (int attempt = 1;; attempt++) {
                int r = before_attempt ? before_attempt(userdata) : 0;
                if (r < 0) {
                        *ret_stderr = xasprintf("%s", strerror(-r));
                        return r;
                }
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0) {
                        r = -errno;
                        *ret_stderr = xasprintf("pipe: %s", strerror(-r));
                        return r;
                }
                ssize_t k = write(p[1], secret, secret_len);
                int e = errno;
                close(p[1]);
                if (k != (ssize_t)secret_len) {
                        close(p[0]);
                        *ret_stderr = xasprintf("writing the key pipe: %s", k < 0 ? strerror(e) : "short write");
                        return k < 0 ? -e : -EIO;
                }
                QemuImgRun opts = { .fd3 = p[0] };
                char *err = NULL;
                r = qemu_img_run(argv, &opts, NULL, &err);
                close(p[0]);
                if (r == 0) {
                        free(err);
                        return 0;
                }
                if (err && strstr(err, LUKS_CPU_USAGE_ERROR) && now_ms() < deadline) {
                        log_debug("%s: attempt %d: %s; retrying", argv[0], attempt, err);
                        free(err);
                        nanosleep(&(struct timespec){ .tv_nsec = LUKS_RETRY_PAUSE_MS * 1000000L }, NULL);
                        continue;
                }
                *ret_stderr = attempt > 1 ? xasprintf("%s (%d attempts)", err ? err : "failed", attempt)
                                          : xasprintf("%s", err ? err : "failed");
                free(err);
                return r;
        }
}
