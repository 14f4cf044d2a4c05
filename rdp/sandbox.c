/* slate-session's seccomp filter (sandbox.h). The allow-list is what FreeRDP 2, OpenSSL,
 * libvncclient and our IPC were seen to call in real sessions (strace -f -c over tests/e2e/logon.sh
 * and tests/e2e/xfreerdp.sh: logon, refusal, reconnect, logoff; docs/security.md). Anything else
 * fails with EPERM: a library's rare path degrades instead of dropping the user. The calls that
 * only an attacker makes (another process's memory, exec, namespaces, the kernel's keyring, BPF)
 * kill the process: slated logs it as killed by its seccomp filter. Never widen it for a guess. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <seccomp.h>
#include "common/log.h"
#include "common/util.h"
#include "rdp/sandbox.h"

/* Seen after the point the filter is entered, in real sessions (test client and stock xfreerdp:
 * logon, refusal, reconnect, logoff, RemoteFX's encoder threads), each with its count there in
 * docs/security.md; a few more marked "not seen" are certain on paths the tests do not take. */
static const int allowed[] = {
        /* time, memory, the watchdog, randomness for TLS */
        SCMP_SYS(clock_gettime), SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(mmap),
        SCMP_SYS(mprotect), SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(setitimer),
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(getrandom), SCMP_SYS(uname),
        SCMP_SYS(sysinfo), SCMP_SYS(exit_group), SCMP_SYS(exit),
        /* threads (clone itself below) */
        SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
        /* the client socket, the IPC (the console's fd arrives in a recvmsg), winpr's events */
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(poll), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
        SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(eventfd2),
        SCMP_SYS(shutdown), SCMP_SYS(setsockopt),
        /* reading files (openat is limited to reading below): OpenSSL's openssl.cnf and its
         * legacy provider (a dlopen), winpr's registry file, /etc/localtime */
        SCMP_SYS(newfstatat), SCMP_SYS(lseek),
        /* not seen: a signal handler returning; realloc of a large block; ld.so reading a
         * library's headers in another dlopen */
        SCMP_SYS(rt_sigreturn), SCMP_SYS(mremap), SCMP_SYS(pread64),
        /* The kernel resumes an interrupted poll/nanosleep with it after SIGSTOP/SIGCONT (a
         * debugger, a job-control stop): without it such a stop killed the session. */
        SCMP_SYS(restart_syscall),
};

/* Calls nothing in slate-session makes and an attacker would: the process is killed. */
static const int forbidden[] = {
        SCMP_SYS(ptrace), SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(process_vm_readv),
        SCMP_SYS(process_vm_writev), SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
        SCMP_SYS(fsopen), SCMP_SYS(fsmount), SCMP_SYS(fsconfig), SCMP_SYS(fspick), SCMP_SYS(move_mount),
        SCMP_SYS(open_tree), SCMP_SYS(mount_setattr), SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(keyctl),
        SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(bpf), SCMP_SYS(perf_event_open),
        SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
        SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(kexec_load),
        SCMP_SYS(kexec_file_load), SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct),
        SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(kcmp), SCMP_SYS(pidfd_open), SCMP_SYS(pidfd_getfd),
        SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at), SCMP_SYS(iopl), SCMP_SYS(ioperm),
        SCMP_SYS(modify_ldt), SCMP_SYS(syslog), SCMP_SYS(lookup_dcookie), SCMP_SYS(quotactl),
};

int sandbox_mode_parse(const char *s, SandboxMode *ret)
{
        if (!s || !*s || strcmp(s, "enforce") == 0)
                *ret = SANDBOX_ENFORCE;
        else if (strcmp(s, "log") == 0)
                *ret = SANDBOX_LOG;
        else
                return -EINVAL;
        return 0;
}

static int rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n, const struct scmp_arg_cmp *args)
{
        int r = seccomp_rule_add_array(ctx, action, nr, n, args);
        /* A call this kernel's table lacks (an old kernel): nothing to allow or deny. */
        return r == -EDOM || r == -EFAULT ? 0 : r;
}

static int build(scmp_filter_ctx ctx, uint32_t kill)
{
        int r;
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                if (allowed[i] != SCMP_SYS(openat) && (r = rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL)) < 0)
                        return r;
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++)
                if ((r = rule(ctx, kill, forbidden[i], 0, NULL)) < 0)
                        return r;
        /* Files only for reading: the session has nothing to write anywhere. */
        struct scmp_arg_cmp ro = SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY);
        if ((r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, &ro)) < 0)
                return r;
        /* Threads, never processes: a uid is handed to another connection once this process has
         * been reaped, which would not cover a child of it. glibc tries clone3 first, whose flags
         * a filter cannot see: ENOSYS sends it to clone. */
        struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
        struct scmp_arg_cmp process = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
        if ((r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &thread)) < 0 ||
            (r = rule(ctx, kill, SCMP_SYS(clone), 1, &process)) < 0 ||
            (r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL)) < 0)
                return r;
        /* Not seen: abort() signalling itself. Signals to any other process fail. */
        struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
        return rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &self);
}

int sandbox_enter(SandboxMode mode)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return log_error_errno(-errno, "sandbox: PR_SET_NO_NEW_PRIVS: %m");
        uint32_t miss = mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM);
        scmp_filter_ctx ctx = seccomp_init(miss);
        if (!ctx)
                return log_error_errno(-ENOMEM, "sandbox: seccomp_init failed");
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r == 0)
                r = build(ctx, SCMP_ACT_KILL_PROCESS);
        if (r == 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        if (r < 0)
                return log_error_errno(r, "sandbox: seccomp filter: %s", strerror(-r));
        if (mode == SANDBOX_LOG)
                log_warn("sandbox: seccomp in log mode (SLATE_SESSION_SECCOMP=log): calls off the list are allowed");
        return 0;
}
