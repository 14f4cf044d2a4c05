/* The sandbox of a helper that reads a hostile file (sandbox.h). Runs between fork and exec:
 * system calls and stack buffers only, nothing allocated, nothing that takes a lock. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include "common/sandbox.h"

/* The host's tree while the new root is built; detached before the program runs. */
#define OLD "/.oldroot"

/* ---- seccomp ---- */

#if defined(__x86_64__)
#define ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

#define LOAD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define DENY(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), RET(SECCOMP_RET_ERRNO | (err))
#define NR offsetof(struct seccomp_data, nr)
/* The low 32 bits of an argument (little-endian only: the two architectures above). */
#define ARG0 offsetof(struct seccomp_data, args[0])
#define NEW_NAMESPACES (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
                        CLONE_NEWCGROUP)

#ifdef ARCH_NATIVE
/* A deny list, not an allow list: qemu-img's system calls vary with its version, its block
 * drivers and glibc's, and an allow list that kills a publish on the next Debian point release
 * would be switched off. What is denied is what a parser has no business with and what kernel
 * exploits reach for: namespaces and mounts (the way out of this one), keyrings, ptrace,
 * bpf, perf, userfaultfd, io_uring, module and kexec loading, file handles (open_by_handle_at
 * reaches any file of a filesystem whose mount it can see), and sockets other than AF_UNIX. */
static const struct sock_filter filter[] = {
        LOAD(offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NATIVE, 1, 0),
        RET(SECCOMP_RET_KILL_PROCESS),
        LOAD(NR),
#ifdef __x86_64__
        /* x32 system calls: the same numbers with a bit set, another way past a deny list. */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
        RET(SECCOMP_RET_KILL_PROCESS),
        DENY(__NR_iopl, EPERM),
        DENY(__NR_ioperm, EPERM),
        DENY(__NR_uselib, EPERM),
        DENY(__NR_create_module, EPERM),
#endif
        DENY(__NR_mount, EPERM),
        DENY(__NR_umount2, EPERM),
        DENY(__NR_pivot_root, EPERM),
        DENY(__NR_chroot, EPERM),
        DENY(__NR_unshare, EPERM),
        DENY(__NR_setns, EPERM),
        DENY(__NR_open_tree, EPERM),
        DENY(__NR_move_mount, EPERM),
        DENY(__NR_fsopen, EPERM),
        DENY(__NR_fsconfig, EPERM),
        DENY(__NR_fsmount, EPERM),
        DENY(__NR_fspick, EPERM),
        DENY(__NR_mount_setattr, EPERM),
        DENY(__NR_keyctl, EPERM),
        DENY(__NR_add_key, EPERM),
        DENY(__NR_request_key, EPERM),
        DENY(__NR_ptrace, EPERM),
        DENY(__NR_process_vm_readv, EPERM),
        DENY(__NR_process_vm_writev, EPERM),
        DENY(__NR_pidfd_getfd, EPERM),
        DENY(__NR_kexec_load, EPERM),
        DENY(__NR_kexec_file_load, EPERM),
        DENY(__NR_init_module, EPERM),
        DENY(__NR_finit_module, EPERM),
        DENY(__NR_delete_module, EPERM),
        DENY(__NR_bpf, EPERM),
        DENY(__NR_perf_event_open, EPERM),
        DENY(__NR_userfaultfd, EPERM),
        DENY(__NR_io_uring_setup, EPERM),
        DENY(__NR_io_uring_enter, EPERM),
        DENY(__NR_io_uring_register, EPERM),
        DENY(__NR_open_by_handle_at, EPERM),
        DENY(__NR_name_to_handle_at, EPERM),
        DENY(__NR_fanotify_init, EPERM),
        DENY(__NR_quotactl, EPERM),
        DENY(__NR_swapon, EPERM),
        DENY(__NR_swapoff, EPERM),
        DENY(__NR_reboot, EPERM),
        DENY(__NR_syslog, EPERM),
        DENY(__NR_acct, EPERM),
        DENY(__NR_settimeofday, EPERM),
        DENY(__NR_clock_settime, EPERM),
        DENY(__NR_clock_adjtime, EPERM),
        DENY(__NR_adjtimex, EPERM),
        DENY(__NR_personality, EPERM),
        DENY(__NR_vhangup, EPERM),
        /* clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc use clone. */
        DENY(__NR_clone3, ENOSYS),
        /* clone: threads and plain forks (the PID namespace holds them), no new namespaces. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
        LOAD(ARG0),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NEW_NAMESPACES, 1, 0),
        RET(SECCOMP_RET_ALLOW),
        RET(SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
        LOAD(ARG0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 1, 0),
        RET(SECCOMP_RET_ERRNO | EAFNOSUPPORT),
        RET(SECCOMP_RET_ALLOW),
};
#endif

static int seccomp_install(void)
{
#ifdef ARCH_NATIVE
        struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = (struct sock_filter *)filter };
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return errno;
#endif
        return 0;
}

/* ---- paths, without snprintf ---- */

static int cat(char *buf, size_t size, const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb + 1 > size)
                return ENAMETOOLONG;
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb + 1);
        return 0;
}

/* mkdir -p of path's parent inside the new root (path is absolute). */
static int mkdir_parents(const char *path)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);
        if (n >= sizeof buf)
                return ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return errno;
                *p = '/';
        }
        return 0;
}

static int touch(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0)
                return errno;
        close(fd);
        return 0;
}

/* Bind src (a host path under OLD) onto dst, then set flags on the new mount (a bind mount
 * ignores them on creation). */
static int bind_path(const char *src, const char *dst, unsigned long flags)
{
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return errno;
        if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
                return errno;
        return 0;
}

static int bind_host(const char *host, const char *dst, unsigned long flags)
{
        char src[PATH_MAX];
        int e = cat(src, sizeof src, OLD, host);
        return e ? e : bind_path(src, dst, flags);
}

/* /bin, /lib… are links into /usr on a merged-/usr system, directories on an older one. */
static int system_dirs(void)
{
        static const char *const names[] = { "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                char host[64], target[PATH_MAX];
                cat(host, sizeof host, OLD, names[i]);
                ssize_t k = readlink(host, target, sizeof target - 1);
                if (k >= 0) {
                        target[k] = 0;
                        if (symlink(target, names[i]) < 0)
                                return errno;
                        continue;
                }
                struct stat st;
                if (stat(host, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                int e;
                if (mkdir(names[i], 0755) < 0)
                        return errno;
                if ((e = bind_path(host, names[i], MS_RDONLY | MS_NOSUID | MS_NODEV)))
                        return e;
        }
        return 0;
}

/* The input as the caller opened it: where fd 3's file lives, and which file it is. */
typedef struct Input {
        char path[PATH_MAX];
        dev_t dev;
        ino_t ino;
} Input;

static int build_root(const Sandbox *s, const Input *in)
{
        int e;
        /* Nothing done here may reach the host's mount table. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return errno;
        /* /tmp: a mount point that always exists; in this namespace only. */
        if (mount("slate-sandbox", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=256") < 0)
                return errno;
        if (chdir("/tmp") < 0 || mkdir("/tmp" OLD, 0700) < 0)
                return errno;
        if (syscall(SYS_pivot_root, ".", "." OLD) < 0 || chdir("/") < 0)
                return errno;

        if (mkdir("/usr", 0755) < 0)
                return errno;
        if ((e = bind_host("/usr", "/usr", MS_RDONLY | MS_NOSUID | MS_NODEV)) || (e = system_dirs()))
                return e;
        if (mkdir("/dev", 0755) < 0)
                return errno;
        static const char *const devs[] = { "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom" };
        for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
                if ((e = touch(devs[i])) || (e = bind_host(devs[i], devs[i], MS_NOSUID | MS_NOEXEC)))
                        return e;

        /* A program from /usr (or /bin, a link into it) is there already. */
        if (s->program && access(s->program, F_OK) < 0) {
                if ((e = mkdir_parents(s->program)) || (e = touch(s->program)) ||
                    (e = bind_host(s->program, s->program, MS_RDONLY | MS_NOSUID | MS_NODEV)))
                        return e;
        }
        /* Bound by its name, then checked to be the very file the caller opened: a name the
         * publisher renamed or replaced in between fails the run, it never shows another file. */
        struct stat st;
        if ((e = mkdir_parents(s->input_path)) || (e = touch(s->input_path)) ||
            (e = bind_host(in->path, s->input_path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)))
                return e;
        if (stat(s->input_path, &st) < 0)
                return errno;
        if (st.st_dev != in->dev || st.st_ino != in->ino || !S_ISREG(st.st_mode))
                return ESTALE;
        if (s->output_dir) {
                if (mkdir(s->output_path, 0755) < 0 && errno != EEXIST)
                        return errno;
                if ((e = bind_host(s->output_dir, s->output_path, MS_NOSUID | MS_NODEV | MS_NOEXEC)))
                        return e;
        }

        if (umount2(OLD, MNT_DETACH) < 0 || rmdir(OLD) < 0)
                return errno;
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                return errno;
        return 0;
}

/* ---- identity ---- */

static int drop_identity(const Sandbox *s)
{
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                return errno;
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return errno;
        /* uid 0 too gets nothing back at exec, and nothing can be kept through a uid change. */
        if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                                     SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0) < 0)
                return errno;
        if (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 || setresuid(s->uid, s->uid, s->uid) < 0)
                return errno;
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = { { 0 } };
        if (syscall(SYS_capset, &h, d) < 0 || syscall(SYS_capget, &h, d) < 0)
                return errno;
        for (int i = 0; i < 2; i++)
                if (d[i].effective || d[i].permitted || d[i].inheritable)
                        return EPERM;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return errno;
        return 0;
}

/* ---- the two processes ---- */

/* The caller's child, outside the new PID namespace: ends as the sandboxed process ended. */
static _Noreturn void relay(pid_t pid, int alive_fd)
{
        /* Its copy of the spawn error pipe would hold off the exec's EOF; fd 3 is the input. */
        close_range(0, (unsigned)alive_fd - 1, 0);
        close_range((unsigned)alive_fd + 1, ~0U, 0);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        struct rlimit none = { 0, 0 };
        setrlimit(RLIMIT_CORE, &none);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        _exit(127);
        if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
        int sig = WTERMSIG(status);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(sig, &dfl, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
}

int sandbox_enter(const Sandbox *s)
{
        if (!s->input_path || s->input_path[0] != '/' || (s->output_dir && (!s->output_path || s->output_path[0] != '/')))
                return EINVAL;
        /* A bind mount from the fd itself (/proc/self/fd/3, or open_tree) is refused once in a
         * new mount namespace: the fd's mount is in the caller's. So its name, checked later. */
        Input in;
        struct stat st;
        ssize_t k = readlink("/proc/self/fd/3", in.path, sizeof in.path - 1);
        if (k <= 0 || fstat(3, &st) < 0)
                return k == 0 ? ENOENT : errno;
        in.path[k] = 0;
        if (in.path[0] != '/')
                return ENOENT;          /* not a file of a filesystem (a deleted one fails the bind) */
        in.dev = st.st_dev;
        in.ino = st.st_ino;
        close(3);
        if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP) < 0)
                return errno;
        /* The relay holds the write end: when it dies, the read end sees POLLHUP. */
        int alive[2];
        if (pipe2(alive, O_CLOEXEC) < 0)
                return errno;
        pid_t pid = fork();
        if (pid < 0)
                return errno;
        if (pid > 0)
                relay(pid, alive[1]);
        close(alive[1]);
        int e;
        if ((e = build_root(s, &in)) || (e = drop_identity(s)))
                return e;
        /* Set after the identity change (which clears it); if the relay is already gone, stop. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return errno;
        struct pollfd p = { .fd = alive[0], .events = POLLIN };
        if (poll(&p, 1, 0) != 0)
                _exit(127);
        if ((e = seccomp_install()))
                return e;
        return 0;
}
