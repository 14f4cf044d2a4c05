/* rdp/sandbox: slate-session's seccomp filter, entered in a forked child. What the session needs
 * still works (threads, its sockets, reading files); a call off the list fails with EPERM; exec,
 * ptrace, fork and the other calls only an attacker makes kill the process (SIGSYS). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "rdp/sandbox.h"

/* Runs fn in a child inside the sandbox; returns its raw wait status. */
static int in_sandbox(SandboxMode mode, int (*fn)(void))
{
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (sandbox_enter(mode) < 0)
                        _exit(100);
                _exit(fn());
        }
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        return st;
}

static void *thread_main(void *arg) { return arg; }

static int status_field(const char *name)
{
        char line[256];
        int v = -1;
        FILE *f = fopen("/proc/self/status", "r");
        if (!f)
                return -2;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, name, strlen(name)) == 0)
                        v = atoi(line + strlen(name));
        fclose(f);
        return v;
}

static int needed_calls(void)
{
        uint64_t v = 1;
        char c = 'x';
        int efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0 || write(efd, &v, sizeof v) != sizeof v || read(efd, &v, sizeof v) != sizeof v)
                return 1;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0)       /* not on the list: made by slated */
                return 2;
        pthread_t t;
        void *ret;
        if (pthread_create(&t, NULL, thread_main, &c) != 0 || pthread_join(t, &ret) != 0 || ret != &c)
                return 3;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 4;
        close(fd);
        if (status_field("NoNewPrivs:") != 1 || status_field("Seccomp:") != 2)
                return 6;
        return 0;
}

Test(sandbox, what_the_session_needs_still_works)
{
        int st = in_sandbox(SANDBOX_ENFORCE, needed_calls);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

static int calls_off_the_list(void)
{
        if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM)
                return 1;      /* no new connections out of the session */
        if (open("/tmp/slate-sandbox-test", O_WRONLY | O_CREAT, 0600) >= 0 || errno != EPERM)
                return 2;      /* no file to write */
        if (kill(getppid(), 0) == 0 || errno != EPERM)
                return 3;      /* no signal to another process */
        char c = 'x';
        if (ioctl(0, TIOCSTI, &c) == 0 || errno != EPERM)
                return 4;      /* no typing into a terminal */
        if (setuid(0) == 0 || errno != EPERM)
                return 5;
        int p[2];
        if (pipe(p) == 0 || errno != EPERM)
                return 6;      /* nothing it was not seen to need */
        return 0;
}

Test(sandbox, calls_off_the_list_fail_with_eperm)
{
        int st = in_sandbox(SANDBOX_ENFORCE, calls_off_the_list);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

static int do_execve(void)
{
        char *argv[] = { "/bin/true", NULL };
        execve("/bin/true", argv, NULL);
        return 50;
}
static int do_ptrace(void) { ptrace(PTRACE_TRACEME, 0, NULL, NULL); return 50; }
static int do_fork(void)
{
        pid_t p = fork();
        if (p == 0)
                _exit(0);
        return 50;
}
static int do_process_vm_readv(void) { syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0); return 50; }
static int do_unshare(void) { syscall(SYS_unshare, 0); return 50; }
static int do_bpf(void) { syscall(SYS_bpf, 0, NULL, 0); return 50; }

Test(sandbox, exec_ptrace_fork_and_the_like_kill_the_process)
{
        static const struct { const char *name; int (*fn)(void); } calls[] = {
                { "execve", do_execve }, { "ptrace", do_ptrace }, { "fork", do_fork },
                { "process_vm_readv", do_process_vm_readv }, { "unshare", do_unshare }, { "bpf", do_bpf },
        };
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
                int st = in_sandbox(SANDBOX_ENFORCE, calls[i].fn);
                cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s: status %#x, not killed by SIGSYS",
                          calls[i].name, st);
        }
}

static int socket_allowed(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        return fd >= 0 ? 0 : 1;
}

Test(sandbox, log_mode_allows_what_is_off_the_list_but_not_exec)
{
        int st = in_sandbox(SANDBOX_LOG, socket_allowed);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
        st = in_sandbox(SANDBOX_LOG, do_execve);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "status %#x", st);
}

Test(sandbox, mode_from_the_environment)
{
        SandboxMode m;
        cr_assert(sandbox_mode_parse(NULL, &m) == 0 && m == SANDBOX_ENFORCE);
        cr_assert(sandbox_mode_parse("log", &m) == 0 && m == SANDBOX_LOG);
        cr_assert(sandbox_mode_parse("off", &m) == -EINVAL);
}

/* Waits in poll with a timeout (restartable) until the parent writes; the parent stops and
 * continues it meanwhile: the kernel resumes the poll with restart_syscall. */
static int stop_pipe[2];
static int waits_in_poll(void)
{
        struct pollfd p = { .fd = stop_pipe[0], .events = POLLIN };
        int k;
        do
                k = poll(&p, 1, 5000);
        while (k < 0 && errno == EINTR);
        return k == 1 ? 0 : 1;
}

Test(sandbox, a_stopped_and_continued_session_lives_on)
{
        cr_assert_eq(pipe(stop_pipe), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (sandbox_enter(SANDBOX_ENFORCE) < 0)
                        _exit(100);
                _exit(waits_in_poll());
        }
        usleep(200000);
        cr_assert_eq(kill(pid, SIGSTOP), 0);
        usleep(100000);
        cr_assert_eq(kill(pid, SIGCONT), 0);
        usleep(200000);
        cr_assert_eq(write(stop_pipe[1], "x", 1), 1);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x (signal %d)", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
