/* fork + exec for every helper program (spawn.h). Between fork and exec the child calls only
 * async-signal-safe functions and allocates nothing: all of it is prepared before the fork. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/spawn.h"

extern char **environ;

/* Moves fd out of the way of the child's fds 0-3 (a copy that closes on exec). */
static int fd_above(int fd)
{
        return fd >= 0 && fd < 4 ? fcntl(fd, F_DUPFD_CLOEXEC, 4) : fd;
}

/* close_range needs Linux 5.9; guests may run older kernels (the agent). */
static void close_from_to(unsigned first, unsigned last)
{
        if (first > last)
                return;
        if (close_range(first, last, 0) == 0 || errno != ENOSYS)
                return;
        struct rlimit rl;
        unsigned max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20)
                               ? (unsigned)rl.rlim_cur
                               : 1u << 20;
        for (unsigned fd = first; fd <= last && fd < max; fd++)
                close((int)fd);
}

/* Between fork and exec: async-signal-safe calls only. Sends the errno of whatever failed
 * through errfd and exits 127; on success errfd closes at exec and the parent reads EOF. */
static _Noreturn void child_run(const SpawnOpts *o, int src[3], int src3, int errfd)
{
        int e = 0;
        if (o->default_signals) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                struct sigaction dfl = { .sa_handler = SIG_DFL };
                for (int sig = 1; sig < NSIG; sig++)
                        sigaction(sig, &dfl, NULL);     /* SIGKILL, SIGSTOP, libc's own: refused, fine */
        }
        errfd = fd_above(errfd);
        src3 = fd_above(src3);
        for (int i = 0; i < 3; i++)
                src[i] = fd_above(src[i]);
        if (errfd < 0 || (o->fd3 >= 0 && src3 < 0))
                e = errno;
        for (int i = 0; i < 3 && !e; i++)
                if (src[i] >= 0 && dup2(src[i], i) < 0)
                        e = errno;
        if (!e && src3 >= 0 && dup2(src3, 3) < 0)
                e = errno;
        if (!e) {
                /* Whatever another thread opened without O_CLOEXEC must not reach the program. */
                unsigned first = src3 >= 0 ? 4 : 3;
                close_from_to(first, (unsigned)errfd - 1);
                close_from_to((unsigned)errfd + 1, ~0U);
        }
        if (!e && o->new_session && setsid() < 0)
                e = errno;
        if (!e && o->new_pgroup && setpgid(0, 0) < 0)
                e = errno;
        if (!e && o->limit_as) {
                struct rlimit rl = { o->limit_as, o->limit_as };
                if (setrlimit(RLIMIT_AS, &rl) < 0)
                        e = errno;
        }
        if (!e && o->limit_cpu_s) {
                struct rlimit rl = { o->limit_cpu_s, (rlim_t)o->limit_cpu_s + 1 };
                if (setrlimit(RLIMIT_CPU, &rl) < 0)
                        e = errno;
        }
        if (!e && o->sandbox)
                e = sandbox_enter(o->sandbox);
        else if (!e && o->drop_privileges) {
                if (setgroups(o->with_extra_gid ? 1 : 0, &o->extra_gid) < 0 || setgid(o->gid) < 0 || setuid(o->uid) < 0)
                        e = errno;
                /* A uid that can take root back was not dropped. */
                else if (o->uid != 0 && setuid(0) == 0)
                        e = EPERM;
        }
        if (!e) {
                char *const *argv = (char *const *)o->argv;
                char *const *envp = o->envp ? (char *const *)o->envp : environ;
                if (o->search_path && !strchr(o->argv[0], '/'))
                        execvpe(o->argv[0], argv, envp);
                else
                        execve(o->argv[0], argv, envp);
                e = errno;
        }
        while (write(errfd, &e, sizeof e) < 0 && errno == EINTR)
                ;
        _exit(127);
}

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

int spawn_start(const SpawnOpts *o, SpawnChild *ret)
{
        *ret = (SpawnChild){ .pid = -1, .fds = { -1, -1, -1 } };
        if (!o->argv || !o->argv[0])
                return -EINVAL;
        int src[3] = { -1, -1, -1 };          /* what becomes the child's fd i; -1: inherited */
        int mine[3] = { -1, -1, -1 };         /* the parent's pipe ends */
        int theirs[4] = { -1, -1, -1, -1 };   /* to close in the parent after the fork */
        int errp[2] = { -1, -1 };
        int r = 0;
        for (int i = 0; i < 3 && !r; i++) {
                switch (o->stdio[i]) {
                case SPAWN_STDIO_INHERIT:
                        break;
                case SPAWN_STDIO_NULL:
                        if (theirs[3] < 0 && (theirs[3] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                                r = -errno;
                        src[i] = theirs[3];
                        break;
                case SPAWN_STDIO_PIPE: {
                        int p[2];
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                break;
                        }
                        mine[i] = i == 0 ? p[1] : p[0];
                        theirs[i] = src[i] = i == 0 ? p[0] : p[1];
                        break;
                }
                case SPAWN_STDIO_FD:
                        if (o->stdio_fd[i] < 0)
                                r = -EBADF;
                        src[i] = o->stdio_fd[i];
                        break;
                case SPAWN_STDIO_STDOUT:
                        if (i != 2)
                                r = -EINVAL;
                        src[i] = src[1] >= 0 ? src[1] : 1;
                        break;
                default:
                        r = -EINVAL;
                }
        }
        if (!r && pipe2(errp, O_CLOEXEC) < 0)
                r = -errno;
        pid_t pid = -1;
        if (!r) {
                pid = fork();
                if (pid < 0)
                        r = -errno;
                else if (pid == 0)
                        child_run(o, src, o->fd3, errp[1]);
        }
        close_all(theirs, 4);
        close_all(&errp[1], 1);
        if (r < 0) {
                close_all(mine, 3);
                close_all(errp, 1);
                return r;
        }

        /* EOF: the exec happened (errp closed on it). An int: the child's setup or exec failed. */
        int e = 0;
        ssize_t n;
        do
                n = read(errp[0], &e, sizeof e);
        while (n < 0 && errno == EINTR);
        close_all(errp, 1);
        if (n == (ssize_t)sizeof e && e) {
                int status;
                spawn_wait(pid, 0, &status);
                close_all(mine, 3);
                return -e;
        }
        ret->pid = pid;
        memcpy(ret->fds, mine, sizeof mine);
        return 0;
}

void spawn_child_close(SpawnChild *c)
{
        close_all(c->fds, 3);
}

int spawn_wait(pid_t pid, int flags, int *ret_status)
{
        int status = 0;
        pid_t r;
        while ((r = waitpid(pid, &status, flags)) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r == 0)
                return 0;
        *ret_status = status;
        return 1;
}
