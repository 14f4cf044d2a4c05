/* Accelerator probe: decides KVM or TCG by really booting the probe guest (query-kvm and /dev/kvm
 * ioctls lie on hosts like ours, research/qemu.md §1) and caches the answer per boot + QEMU version.
 * Blocking by design (runs before the loop); it must never leave a probe QEMU running. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "broker/hv.h"
#include "common/cleanup.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"

/* Bare-metal KVM boots the probe guest well under 1 s; a hang must not delay slated long. */
#define PROBE_KVM_DEADLINE_MS 8000
/* TCG needs 2-3 s here; 30 s covers a loaded host. */
#define PROBE_TCG_DEADLINE_MS 30000
#define PROBE_MARKER "SLATE-PROBE-OK"
/* Room for one line of QEMU's output (its complaint, the version) with its NUL; a longer line is
 * cut to what fits, the rest dropped unbuffered: the marker and QEMU's messages are short. */
#define PROBE_LINE_MAX 256

typedef struct ProbeRun {
        bool found;             /* marker seen */
        bool timed_out;
        int status;             /* exit code, or -signal, when it exited by itself */
        char first[PROBE_LINE_MAX];
        char last[PROBE_LINE_MAX];      /* last non-empty output line: QEMU's complaint on failure */
} ProbeRun;

static void probe_line(ProbeRun *pr, char *line, size_t len)
{
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
                line[--len] = 0;
        if (len == 0)
                return;
        if (strstr(line, PROBE_MARKER))
                pr->found = true;
        if (!pr->first[0])
                snprintf(pr->first, sizeof pr->first, "%s", line);
        snprintf(pr->last, sizeof pr->last, "%s", line);
}

/* Run argv with stdout+stderr on a pipe until want is seen (then kill it), it exits, or the deadline
 * (then kill it). The child never outlives this call. */
static int probe_run(char *const argv[], unsigned deadline_ms, const char *want, ProbeRun *pr)
{
        *pr = (ProbeRun){ 0 };
        const char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
        SpawnOpts so = { .argv = (const char *const *)argv, .envp = env, .fd3 = -1, .new_pgroup = true,
                         .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_PIPE, SPAWN_STDIO_STDOUT } };
        SpawnChild child;
        int r = spawn_start(&so, &child);
        if (r < 0)
                return log_error_errno(r, "probe: cannot run %s: %s", argv[0], strerror(-r));
        pid_t pid = child.pid;
        int out = child.fds[1];

        LineBuf lines;
        linebuf_init(&lines, PROBE_LINE_MAX - 1);
        uint64_t deadline = now_ms() + deadline_ms;
        for (;;) {
                uint64_t now = now_ms();
                if (now >= deadline) {
                        pr->timed_out = true;
                        break;
                }
                struct pollfd pfd = { .fd = out, .events = POLLIN };
                int k = poll(&pfd, 1, (int)MIN(deadline - now, (uint64_t)1000));
                if (k < 0 && errno != EINTR)
                        break;
                if (k <= 0)
                        continue;
                char buf[4096];
                ssize_t n = read(out, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;          /* EOF: it exited */
                size_t off = 0, len;
                char *line;
                while (off < (size_t)n) {
                        size_t used;
                        int lr = linebuf_feed(&lines, buf + off, (size_t)n - off, &used, &line, &len);
                        off += used;
                        if (lr == 0 || lr == -ENOMEM)
                                break;
                        probe_line(pr, line, len);      /* -EMSGSIZE: its first PROBE_LINE_MAX - 1 bytes */
                }
                /* want counts as soon as it shows, before its line has ended. */
                if (pr->found || (want && (line = linebuf_partial(&lines, &len)) && strstr(line, want))) {
                        pr->found = true;
                        break;
                }
        }
        size_t len;
        char *line = linebuf_finish(&lines, &len);
        if (line)
                probe_line(pr, line, len);
        linebuf_free(&lines);
        spawn_child_close(&child);
        int st;
        if (pr->found || pr->timed_out)
                kill(pid, SIGKILL);
        r = spawn_wait(pid, 0, &st);
        if (r < 0)
                return log_error_errno(r, "probe: waitpid: %s", strerror(-r));
        pr->status = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
        return 0;
}

static int probe_qemu_version(const char *qemu, char **ret)
{
        char *argv[] = { (char *)qemu, "--version", NULL };
        ProbeRun pr;
        int r = probe_run(argv, 10000, NULL, &pr);
        if (r < 0)
                return r;
        if (pr.status != 0 || !pr.first[0])
                return log_error_errno(-EIO, "probe: %s --version failed", qemu);
        *ret = xstrdup(pr.first);
        return 0;
}

static int probe_boot_id(char **ret)
{
        char *s;
        int r = read_file_max("/proc/sys/kernel/random/boot_id", 128, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

/* Cache line: "<boot_id> <qemu --version first line> <kvm|tcg>". */
static int probe_cache_read(const char *file, const char *boot_id, const char *version, HvAccel *ret)
{
        _cleanup_free_ char *s = NULL;
        if (!file || read_file_max(file, 4096, &s, NULL) < 0)
                return -ENOENT;
        s[strcspn(s, "\n")] = 0;
        size_t bl = strlen(boot_id), vl = strlen(version);
        if (strncmp(s, boot_id, bl) != 0 || s[bl] != ' ' || strncmp(s + bl + 1, version, vl) != 0 ||
            s[bl + 1 + vl] != ' ')
                return -ENOENT;
        const char *accel = s + bl + 1 + vl + 1;
        if (strcmp(accel, "kvm") == 0)
                *ret = HV_ACCEL_KVM;
        else if (strcmp(accel, "kvm-compat") == 0)
                *ret = HV_ACCEL_KVM_COMPAT;
        else if (strcmp(accel, "tcg") == 0)
                *ret = HV_ACCEL_TCG;
        else
                return -ENOENT;
        return 0;
}

static void probe_cache_write(const char *file, const char *boot_id, const char *version, HvAccel accel)
{
        if (!file)
                return;
        _cleanup_free_ char *s = xasprintf("%s %s %s\n", boot_id, version, hv_accel_name(accel));
        int r = write_file_atomic(file, s, strlen(s), 0644);
        if (r < 0)
                log_warn("probe: cannot write cache %s: %s (the next start probes again)", file, strerror(-r));
}

static int probe_kvm_usable(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

/* One boot attempt; describes a failure in why (for the reason sentence). */
static int probe_boot(const char *qemu, const char *kernel, const char *initrd, const char *accel,
                      const char *cpu, unsigned deadline_ms, bool *ok, char *why, size_t whylen)
{
        char *argv[32];
        size_t n = 0;
        argv[n++] = (char *)qemu;
        argv[n++] = "-name";
        argv[n++] = "guest=slate-probe";
        argv[n++] = "-machine";
        argv[n++] = "q35";
        argv[n++] = "-accel";
        argv[n++] = (char *)accel;
        if (cpu) {
                argv[n++] = "-cpu";
                argv[n++] = (char *)cpu;
        }
        argv[n++] = "-m";
        argv[n++] = "128";
        argv[n++] = "-smp";
        argv[n++] = "1";
        argv[n++] = "-nodefaults";
        argv[n++] = "-no-user-config";
        argv[n++] = "-sandbox";
        argv[n++] = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
        argv[n++] = "-display";
        argv[n++] = "none";
        argv[n++] = "-serial";
        argv[n++] = "stdio";
        argv[n++] = "-kernel";
        argv[n++] = (char *)kernel;
        argv[n++] = "-initrd";
        argv[n++] = (char *)initrd;
        argv[n++] = "-append";
        argv[n++] = "console=ttyS0 slate.probe quiet";
        argv[n] = NULL;

        uint64_t t0 = now_ms();
        ProbeRun pr;
        int r = probe_run(argv, deadline_ms, PROBE_MARKER, &pr);
        if (r < 0)
                return r;
        uint64_t dt = now_ms() - t0;
        *ok = pr.found;
        if (pr.found)
                snprintf(why, whylen, "booted in %.1f s", dt / 1000.0);
        else if (pr.timed_out)
                snprintf(why, whylen, "timed out after %u s", deadline_ms / 1000);
        else if (pr.status < 0)
                snprintf(why, whylen, "QEMU died of signal %d after %.1f s%s%s", -pr.status, dt / 1000.0,
                         pr.last[0] ? ": " : "", pr.last);
        else
                snprintf(why, whylen, "QEMU exited with status %d after %.1f s%s%s", pr.status, dt / 1000.0,
                         pr.last[0] ? ": " : "", pr.last);
        log_debug("probe: -accel %s%s%s: %s", accel, cpu ? " -cpu " : "", cpu ? cpu : "", why);
        return 0;
}

static int probe_auto(const char *qemu, const char *kernel, const char *initrd, HvAccel *ret, char **ret_reason)
{
        if (!kernel || !initrd || access(kernel, R_OK) < 0 || access(initrd, R_OK) < 0)
                return log_error_errno(-ENOENT, "probe: probe guest kernel/initrd missing (%s, %s)",
                                       kernel ? kernel : "(unset)", initrd ? initrd : "(unset)");
        char kvm_why[2][PROBE_LINE_MAX + 96];
        int r = probe_kvm_usable();
        if (r < 0) {
                *ret_reason = xasprintf("/dev/kvm is not usable (%s); using TCG", strerror(-r));
        } else {
                static const char *const cpus[] = { "host", "qemu64" };
                for (size_t i = 0; i < ELEMENTSOF(cpus); i++) {
                        bool ok;
                        r = probe_boot(qemu, kernel, initrd, "kvm", cpus[i], PROBE_KVM_DEADLINE_MS, &ok,
                                       kvm_why[i], sizeof kvm_why[i]);
                        if (r < 0)
                                return r;
                        if (ok) {
                                *ret = i == 0 ? HV_ACCEL_KVM : HV_ACCEL_KVM_COMPAT;
                                *ret_reason = xasprintf("KVM boot probe with -cpu %s %s; using KVM", cpus[i], kvm_why[i]);
                                return 0;
                        }
                }
                *ret_reason = xasprintf("KVM boot probe failed (-cpu host: %s; -cpu qemu64: %s); using TCG",
                                        kvm_why[0], kvm_why[1]);
        }
        char why[PROBE_LINE_MAX + 96];
        bool ok;
        r = probe_boot(qemu, kernel, initrd, "tcg", NULL, PROBE_TCG_DEADLINE_MS, &ok, why, sizeof why);
        if (r < 0 || !ok) {
                free(TAKE_PTR(*ret_reason));
                return r < 0 ? r : log_error_errno(-EIO, "probe: QEMU cannot boot the probe guest even under TCG: %s", why);
        }
        *ret = HV_ACCEL_TCG;
        return 0;
}

int hv_qemu_probe_accel(const char *mode, const char *qemu, const char *kernel, const char *initrd,
                        const char *cache_file, HvAccel *ret, char **ret_reason)
{
        if (!qemu)
                qemu = QEMU_SYSTEM_PATH;
        if (!mode)
                mode = "auto";
        if (strcmp(mode, "tcg") == 0) {
                *ret = HV_ACCEL_TCG;
                *ret_reason = xstrdup("TCG forced by configuration");
                return 0;
        }
        if (strcmp(mode, "kvm") == 0) {
                int r = probe_kvm_usable();
                if (r < 0)
                        return log_error_errno(r, "accelerator kvm forced by configuration, but /dev/kvm is not usable: %s",
                                               strerror(-r));
                *ret = HV_ACCEL_KVM;
                *ret_reason = xstrdup("KVM forced by configuration (not probed)");
                return 0;
        }
        if (strcmp(mode, "auto") != 0)
                return log_error_errno(-EINVAL, "accelerator mode '%s' unknown (auto, kvm or tcg)", mode);

        _cleanup_free_ char *version = NULL, *boot_id = NULL;
        int r = probe_qemu_version(qemu, &version);
        if (r < 0)
                return r;
        r = probe_boot_id(&boot_id);
        if (r < 0)
                return log_error_errno(r, "probe: cannot read the boot id: %s", strerror(-r));
        if (probe_cache_read(cache_file, boot_id, version, ret) == 0) {
                *ret_reason = xasprintf("%s, from the probe cached for this boot and QEMU version (%s)",
                                        hv_accel_name(*ret), cache_file);
                return 0;
        }
        uint64_t t0 = now_ms();
        r = probe_auto(qemu, kernel, initrd, ret, ret_reason);
        if (r < 0)
                return r;
        log_debug("probe: decided in %llu ms", (unsigned long long)(now_ms() - t0));
        probe_cache_write(cache_file, boot_id, version, *ret);
        return 0;
}

const char *hv_accel_name(HvAccel a)
{
        switch (a) {
        case HV_ACCEL_KVM: return "kvm";
        case HV_ACCEL_KVM_COMPAT: return "kvm-compat";
        default: return "tcg";
        }
}
