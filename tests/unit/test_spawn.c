/* common/spawn: what a helper program gets (stdio, fd 3, environment, limits, identity, signals)
 * and what it must not get (any other fd of ours); exec failures come back as an errno. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/spawn.h"

/* Runs sh -c script with stdout (and stderr, merged) on a pipe; returns what it printed. */
static char *run_sh(SpawnOpts *o, const char *script, int *ret_status)
{
        static char out[4096];
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        o->argv = argv;
        o->stdio[1] = SPAWN_STDIO_PIPE;
        if (o->stdio[2] == SPAWN_STDIO_INHERIT)
                o->stdio[2] = SPAWN_STDIO_STDOUT;
        SpawnChild c;
        cr_assert_eq(spawn_start(o, &c), 0);
        size_t len = 0;
        ssize_t n;
        while ((n = read(c.fds[1], out + len, sizeof out - 1 - len)) > 0)
                len += (size_t)n;
        out[len] = 0;
        spawn_child_close(&c);
        int status;
        cr_assert_eq(spawn_wait(c.pid, 0, &status), 1);
        if (ret_status)
                *ret_status = status;
        return out;
}

Test(spawn, stdout_and_stderr_share_one_pipe)
{
        SpawnOpts o = { .fd3 = -1 };
        int status;
        cr_assert_str_eq(run_sh(&o, "echo out; echo err >&2; exit 3", &status), "out\nerr\n");
        cr_assert(WIFEXITED(status));
        cr_assert_eq(WEXITSTATUS(status), 3);
}

Test(spawn, stdin_pipe_reaches_the_child)
{
        const char *argv[] = { "/bin/cat", NULL };
        SpawnOpts o = { .argv = argv, .fd3 = -1, .stdio = { SPAWN_STDIO_PIPE, SPAWN_STDIO_PIPE, SPAWN_STDIO_INHERIT } };
        SpawnChild c;
        cr_assert_eq(spawn_start(&o, &c), 0);
        cr_assert_eq(c.fds[2], -1);
        cr_assert_eq(write(c.fds[0], "hello", 5), 5);
        close(c.fds[0]);
        c.fds[0] = -1;
        char buf[16] = "";
        cr_assert_eq(read(c.fds[1], buf, sizeof buf - 1), 5);
        cr_assert_str_eq(buf, "hello");
        spawn_child_close(&c);
        int status;
        cr_assert_eq(spawn_wait(c.pid, 0, &status), 1);
        cr_assert_eq(status, 0);
}

Test(spawn, no_other_fd_reaches_the_child)
{
        /* An fd opened without O_CLOEXEC, as a careless thread would. */
        int leak = open("/dev/null", O_RDONLY);
        cr_assert_geq(dup2(leak, 50), 0);
        SpawnOpts o = { .fd3 = -1, .stdio = { SPAWN_STDIO_NULL } };
        /* The shell's own fds, listed by a child it forks (no pipeline: it would add fds). */
        cr_assert_str_eq(run_sh(&o, "ls /proc/$$/fd", NULL), "0\n1\n2\n");
        close(50);
        close(leak);
}

Test(spawn, fd3_is_handed_over)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        cr_assert_eq(write(p[1], "secret", 6), 6);
        close(p[1]);
        SpawnOpts o = { .fd3 = p[0] };
        cr_assert_str_eq(run_sh(&o, "cat <&3; ls /proc/$$/fd", NULL), "secret0\n1\n2\n3\n");
        close(p[0]);
}

Test(spawn, stdio_from_given_fds_even_when_they_are_low)
{
        /* The caller's fd 1 as the child's stderr: the child's own stdout must not clobber it. */
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        const char *argv[] = { "/bin/sh", "-c", "echo to-err >&2; echo to-out", NULL };
        SpawnOpts o = { .argv = argv, .fd3 = -1,
                        .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_NULL, SPAWN_STDIO_FD },
                        .stdio_fd = { -1, -1, p[1] } };
        SpawnChild c;
        cr_assert_eq(spawn_start(&o, &c), 0);
        close(p[1]);
        char buf[32] = "";
        cr_assert_eq(read(p[0], buf, sizeof buf - 1), 7);
        cr_assert_str_eq(buf, "to-err\n");
        close(p[0]);
        int status;
        cr_assert_eq(spawn_wait(c.pid, 0, &status), 1);
}

Test(spawn, environment_is_exactly_the_given_one)
{
        const char *env[] = { "A=1", "B=two", NULL };
        SpawnOpts o = { .fd3 = -1, .envp = env };
        cr_assert_str_eq(run_sh(&o, "echo \"$A $B ${HOME:-nohome}\"", NULL), "1 two nohome\n");
}

Test(spawn, exec_failure_is_an_errno_and_leaves_no_child)
{
        const char *argv[] = { "/nonexistent/program", NULL };
        SpawnOpts o = { .argv = argv, .fd3 = -1, .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_PIPE, SPAWN_STDIO_PIPE } };
        SpawnChild c;
        cr_assert_eq(spawn_start(&o, &c), -ENOENT);
        cr_assert_eq(c.fds[1], -1);
        cr_assert_eq(c.fds[2], -1);
        cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1);
        cr_assert_eq(errno, ECHILD);
}

Test(spawn, path_is_searched_only_when_asked)
{
        const char *argv[] = { "true", NULL };
        SpawnOpts o = { .argv = argv, .fd3 = -1 };
        SpawnChild c;
        cr_assert_eq(spawn_start(&o, &c), -ENOENT);
        o.search_path = true;
        cr_assert_eq(spawn_start(&o, &c), 0);
        int status;
        cr_assert_eq(spawn_wait(c.pid, 0, &status), 1);
        cr_assert_eq(status, 0);
}

Test(spawn, ignored_sigpipe_is_reset_only_when_asked)
{
        signal(SIGPIPE, SIG_IGN);
        SpawnOpts o = { .fd3 = -1 };
        /* SigIgn is a hex mask, bit n-1 for signal n. */
        const char *script = "m=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); echo $(( 0x$m >> (13 - 1) & 1 ))";
        cr_assert_str_eq(run_sh(&o, script, NULL), "1\n");
        o = (SpawnOpts){ .fd3 = -1, .default_signals = true };
        cr_assert_str_eq(run_sh(&o, script, NULL), "0\n");
        signal(SIGPIPE, SIG_DFL);
}

Test(spawn, limits_and_new_session)
{
        SpawnOpts o = { .fd3 = -1, .limit_cpu_s = 7, .limit_as = 512ull << 20, .new_session = true };
        cr_assert_str_eq(run_sh(&o, "ulimit -t; ulimit -v; read -r p c s1 s2 sid rest </proc/$$/stat; "
                                    "[ \"$sid\" = $$ ] && echo leader",
                                NULL),
                         "7\n524288\nleader\n");
}

Test(spawn, privileges_are_dropped_with_one_extra_group)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to change uid");
        SpawnOpts o = { .fd3 = -1, .drop_privileges = true, .uid = 65534, .gid = 65534, .with_extra_gid = true,
                        .extra_gid = 100 };
        cr_assert_str_eq(run_sh(&o, "id -u; id -g; id -G", NULL), "65534\n65534\n65534 100\n");
        o = (SpawnOpts){ .fd3 = -1, .drop_privileges = true, .uid = 65534, .gid = 65534 };
        cr_assert_str_eq(run_sh(&o, "id -G", NULL), "65534\n");
}

Test(spawn, wait_without_hanging_sees_a_running_child)
{
        const char *argv[] = { "/bin/cat", NULL };
        SpawnOpts o = { .argv = argv, .fd3 = -1, .stdio = { SPAWN_STDIO_PIPE, SPAWN_STDIO_NULL } };
        SpawnChild c;
        cr_assert_eq(spawn_start(&o, &c), 0);
        int status;
        cr_assert_eq(spawn_wait(c.pid, WNOHANG, &status), 0);
        spawn_child_close(&c);
        cr_assert_eq(spawn_wait(c.pid, 0, &status), 1);
        cr_assert(WIFEXITED(status));
}
