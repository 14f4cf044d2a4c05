/* common/spawn: what a helper program gets (stdio, fd 3, environment, limits, identity, signals)
 * and what it must not get (any other fd of ours); exec failures come back as an errno. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/spawn.h"

/* Runs shell -c script with stdout (and stderr, merged) on a pipe; returns what it printed. */
static char *run_shell(SpawnOpts *o, const char *shell, const char *script, int *ret_status)
{
        static char out[4096];
        const char *argv[] = { shell, "-c", script, NULL };
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

static char *run_sh(SpawnOpts *o, const char *script, int *ret_status)
{
        return run_shell(o, "/bin/sh", script, ret_status);
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

/* ---- the sandbox (common/sandbox.h) ---- */

static char sbdir[128];

static void sandbox_setup(void)
{
        snprintf(sbdir, sizeof sbdir, "/var/tmp/slate-test-sandbox.XXXXXX");
        cr_assert_not_null(mkdtemp(sbdir));
        chmod(sbdir, 0755);
}

static void sandbox_teardown(void)
{
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", sbdir);
        cr_assert_eq(system(cmd), 0);
}

/* A loopback listener the sandbox must not reach; its port. */
static int listener(int *ret_port)
{
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        cr_assert(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 4) == 0);
        cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
        *ret_port = ntohs(a.sin_port);
        return s;
}

/* Runs the probe script in a sandbox whose input is a file of mode mode (root's), output out/. */
static char *sandboxed(mode_t mode, uid_t uid, const char *script)
{
        char in[192], out[192], secret[192];
        snprintf(in, sizeof in, "%s/input", sbdir);
        snprintf(out, sizeof out, "%s/out", sbdir);
        snprintf(secret, sizeof secret, "%s/secret", sbdir);
        FILE *f = fopen(in, "w");
        cr_assert_not_null(f);
        fputs("the input", f);
        fclose(f);
        cr_assert_eq(chmod(in, mode), 0);
        cr_assert(mkdir(out, 0700) == 0 || errno == EEXIST);
        cr_assert_eq(chown(out, uid, uid), 0);
        cr_assert_eq(close(open(secret, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
        int fd = open(in, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        Sandbox sb = { .program = "/bin/bash", .input_path = "/in/image", .output_dir = out, .output_path = "/out",
                       .uid = uid, .gid = uid };
        SpawnOpts o = { .fd3 = fd, .sandbox = &sb, .default_signals = true };
        int status;
        char *r = run_shell(&o, "/bin/bash", script, &status);
        close(fd);
        cr_assert(WIFEXITED(status), "%s", r);
        return r;
}

TestSuite(sandbox, .init = sandbox_setup, .fini = sandbox_teardown, .timeout = 30);

Test(sandbox, shows_the_input_alone_read_only_with_no_network)
{
        if (geteuid() != 0)
                cr_skip_test("needs root: namespaces and mounts");
        int port, l = listener(&port);
        char script[1024];
        snprintf(script, sizeof script,
                 "cat /in/image; echo; id -u; "
                 "(exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && echo NET; "
                 "for f in /etc/passwd /proc/self/status /sys /home %s/secret %s/input; do [ -e $f ] && echo SEES $f; done; "
                 "(echo x >/in/image) 2>/dev/null && echo INPUT-WRITABLE; "
                 "(echo x >/new) 2>/dev/null && echo ROOT-WRITABLE; "
                 /* nobody may make a user namespace on this host, but not here (seccomp) */
                 "unshare -U true 2>/dev/null && echo USERNS; "
                 "echo result >/out/result; "
                 "for n in $(ls /); do case $n in bin|sbin|lib|lib32|lib64|libx32|usr|dev|in|out) ;; "
                 "*) echo EXTRA /$n ;; esac; done; ls /dev",
                 port, sbdir, sbdir);
        cr_assert_str_eq(sandboxed(0644, 65534, script),
                         "the input\n65534\nnull\nrandom\nurandom\nzero\n");
        char path[192];
        snprintf(path, sizeof path, "%s/out/result", sbdir);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "the output did not reach the host");
        cr_assert_eq(st.st_uid, 65534);
        close(l);
}

Test(sandbox, root_keeps_no_capability)
{
        if (geteuid() != 0)
                cr_skip_test("needs root: namespaces and mounts");
        /* uid 0 is the owner of a 0600 input nobody else could open; CAP_CHOWN, CAP_DAC_OVERRIDE,
         * CAP_SYS_ADMIN and the like are gone, for the shell and for whatever it runs. */
        const char *script = "cat /in/image; echo; id -u; echo x >/out/f; "
                             "chown 1 /out/f 2>/dev/null && echo CHOWN; "
                             "chmod 000 /out/f; cat /out/f 2>/dev/null && echo DAC; "
                             "/usr/bin/sh -c 'chown 2 /out/f' 2>/dev/null && echo EXEC-CHOWN; "
                             "grep -q . /dev/null; echo done";
        cr_assert_str_eq(sandboxed(0600, 0, script), "the input\n0\ndone\n");
}
