/* QEMU driver for the hypervisor interface: spawns, adopts, stops and watches one
 * qemu-system-x86_64 per desktop on the caller's libuv loop, talking QMP through qmp.c.
 * It must never block the loop, never put a disk secret on argv/env/disk, and never kill a VM
 * it was only asked to forget (vm_free). */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "broker/hv_qemu.h"
#include "broker/hv_qmp.h"
#include "common/cleanup.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/util.h"

#define HV_SETPRIV_PATH "/usr/bin/setpriv"
#define HV_CHRT_PATH "/usr/bin/chrt"
#define HV_CHILD_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
/* QEMU creates its QMP socket before the guest runs, after well under a second of its own CPU.
 * The deadline counts QEMU's CPU time, not the clock: a spare at the idle priority on a busy host
 * may wait many seconds for its first slice and is not hung for that. The wall bound catches a
 * QEMU blocked on something other than the CPU. */
#define HV_QMP_RETRY_MS 20
#define HV_QMP_DEADLINE_MS 5000
#define HV_QMP_WALL_MAX_MS 120000
/* After the exit, wait this long at most for QEMU's last stderr lines before reporting it. */
#define HV_STDERR_DRAIN_MS 200
/* The fd a clone's QEMU finds its RAM on (/dev/fd/4); 3 is the disk key's. */
#define HV_MEM_FD 4
/* Every option QEMU gets, with the hot-plug root ports and a setpriv prefix: well under this. */
#define HV_ARGV_MAX 96


static void vm_free(HvVm *vm);

static void vm_on_handle_closed(uv_handle_t *h)
{
        HvVm *vm = h->data;
        if (--vm->open_handles == 0 && vm->freed) {
                if (vm->pidfd >= 0)
                        close(vm->pidfd);
                linebuf_free(&vm->errlines);
                free(vm->id);
                free(vm->run_dir);
                free(vm->qmp_path);
                free(vm);
        }
}

static HvVm *vm_new(uv_loop_t *loop, const char *id, const char *run_dir, const HvCallbacks *cb, void *userdata)
{
        HvVm *vm = xmalloc0(sizeof *vm);
        vm->loop = loop;
        vm->id = xstrdup(id);
        vm->run_dir = xstrdup(run_dir);
        vm->qmp_path = xasprintf("%s/%s", run_dir, HV_QMP_SOCKET);
        vm->cb = *cb;
        vm->userdata = userdata;
        vm->pidfd = -1;
        linebuf_init(&vm->errlines, HV_STDERR_LINE_MAX);
        vm->started_ms = now_ms();
        uv_timer_init(loop, &vm->qmp_timer);
        uv_timer_init(loop, &vm->timer);
        vm->qmp_timer.data = vm->timer.data = vm;
        vm->open_handles = 2;
        return vm;
}

/* ---- exit reporting: exactly once, never after vm_free ---- */

static void vm_report_exit(HvVm *vm)
{
        if (vm->exit_reported)
                return;
        vm->exit_reported = true;
        uv_timer_stop(&vm->timer);
        uv_timer_stop(&vm->qmp_timer);
        if (vm->exit_status == 0)
                log_info("vm %s: QEMU (pid %d) exited", vm->id, (int)vm->pid);
        else if (vm->exit_status < 0)
                log_warn("vm %s: QEMU (pid %d) killed by signal %d", vm->id, (int)vm->pid, -vm->exit_status);
        else
                log_warn("vm %s: QEMU (pid %d) exited with status %d", vm->id, (int)vm->pid, vm->exit_status);
        if (!vm->freed && vm->cb.on_exit)
                vm->cb.on_exit(vm, vm->exit_status, vm->userdata);
}

static void vm_on_drain_timeout(uv_timer_t *t)
{
        vm_report_exit(t->data);
}

static void vm_mark_exited(HvVm *vm, int status)
{
        if (vm->exited)
                return;
        vm->exited = true;
        vm->exit_status = status;
        uv_timer_stop(&vm->timer);
        /* Report once QEMU's last stderr lines are logged (they say why it failed). */
        if (vm->err_open)
                uv_timer_start(&vm->timer, vm_on_drain_timeout, HV_STDERR_DRAIN_MS, 0);
        else
                vm_report_exit(vm);
}

static void vm_on_process_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
        HvVm *vm = p->data;
        vm_mark_exited(vm, term_signal ? -term_signal : (int)exit_status);
}

static void vm_on_pidfd(uv_poll_t *h, int status, int events)
{
        HvVm *vm = h->data;
        uv_poll_stop(h);
        /* An adopted QEMU is normally not our child and its status is invisible (0); if it is
         * (adopted by the process that spawned it), reap it here and report the real status. */
        int st, code = 0;
        if (waitpid(vm->pid, &st, WNOHANG) == vm->pid)
                code = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
        vm_mark_exited(vm, code);
}

/* ---- QEMU's stderr → log ---- */

/* One line to the log, control bytes and non-ASCII shown as '?'; cut: it went on past the cap. */
static void vm_err_log(HvVm *vm, char *line, size_t len, bool cut)
{
        if (len == 0 && !cut)
                return;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)line[i];
                if ((c < 0x20 && c != '\t') || c >= 0x80)
                        line[i] = '?';
        }
        log_warn("vm %s: qemu: %s%s", vm->id, line, cut ? " [...]" : "");
}

static void vm_err_line_cb(void *ud, char *line, size_t len, bool cut) { vm_err_log(ud, line, len, cut); }

static void vm_on_err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        HvVm *vm = h->data;
        *buf = uv_buf_init(vm->errbuf, sizeof vm->errbuf);
}

static void vm_on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        HvVm *vm = s->data;
        if (n < 0) {
                size_t len;
                char *line = linebuf_finish(&vm->errlines, &len);
                if (line)
                        vm_err_log(vm, line, len, false);
                uv_read_stop(s);
                vm->err_open = false;
                uv_close((uv_handle_t *)s, vm_on_handle_closed);
                if (vm->exited)
                        vm_report_exit(vm);
                return;
        }
        linebuf_feed_lines(&vm->errlines, buf->base, (size_t)n, vm_err_line_cb, vm);
}

/* ---- QMP ---- */

static void vm_qmp_try_connect(HvVm *vm);

static void vm_on_qmp_ready(Qmp *q, void *userdata)
{
        HvVm *vm = userdata;
        log_info("vm %s: QMP ready (QEMU %s) %llu ms after %s", vm->id, qmp_version(q) ?: "?",
                 (unsigned long long)(now_ms() - vm->started_ms), vm->adopted ? "adopt" : "spawn");
        if (vm->stopping)
                qmp_command(q, "quit", NULL, NULL, NULL);
        else
                hv_qemu_migrate_qmp_ready(vm);
}

static void vm_on_qmp_event(Qmp *q, const char *event, json_object *data, void *userdata)
{
        HvVm *vm = userdata;
        log_debug("vm %s: event %s", vm->id, event);
        if (vm->cb.on_event && !vm->freed)
                vm->cb.on_event(vm, event, data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN) : "{}",
                                vm->userdata);
        /* A guest power-off leaves QEMU running (paused); a desktop never outlives its guest.
         * (QMP quit itself also emits SHUTDOWN: then there is nothing more to do.) */
        if (strcmp(event, "SHUTDOWN") == 0 && !vm->freed && !vm->stopping && vm->qmp) {
                vm->stopping = true;
                qmp_command(vm->qmp, "quit", NULL, NULL, NULL);
        }
}

static void vm_on_qmp_closed(Qmp *q, int r, void *userdata)
{
        HvVm *vm = userdata;
        if (!vm->exited)
                log_debug("vm %s: QMP connection ended: %s", vm->id, strerror(-r));
        qmp_free(vm->qmp);
        vm->qmp = NULL;
}

static const QmpCallbacks vm_qmp_callbacks = {
        .on_ready = vm_on_qmp_ready,
        .on_event = vm_on_qmp_event,
        .on_closed = vm_on_qmp_closed,
};

static void vm_kill(HvVm *vm, int sig)
{
        if (vm->exited)
                return;
        int r = 0;
        if (vm->proc_open)
                r = uv_process_kill(&vm->proc, sig);
        else if (vm->pidfd >= 0)
                /* By pidfd: an adopted pid could have been reused; the pidfd cannot. */
                r = syscall(SYS_pidfd_send_signal, vm->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
        if (r < 0 && r != UV_ESRCH && r != -ESRCH)
                log_error("vm %s: kill(%d, %d): %s", vm->id, (int)vm->pid, sig, strerror(-r));
}

void hv_qemu_vm_kill(HvVm *vm) { vm_kill(vm, SIGKILL); }

static void vm_on_qmp_timer(uv_timer_t *t)
{
        vm_qmp_try_connect(t->data);
}

static void vm_qmp_try_connect(HvVm *vm)
{
        if (vm->exited || vm->qmp)
                return;
        int fd, r = hv_qemu_connect(vm, HV_QMP_SOCKET, SOCK_NONBLOCK, &fd);
        if (r == 0)
                r = qmp_open_fd(vm->loop, fd, vm->qmp_path, &vm_qmp_callbacks, vm, &vm->qmp);
        if (r == 0 || r == -EPERM)      /* -EPERM: not QEMU's socket, said and killed */
                return;
        uint64_t cpu = 0, waited = now_ms() - vm->started_ms;
        if ((r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN) &&
            hv_qmp_wait_more(proc_cpu_ms(vm->pid, &cpu) == 0 ? cpu - MIN(cpu, vm->qmp_cpu0_ms) : UINT64_MAX, waited)) {
                uv_timer_start(&vm->qmp_timer, vm_on_qmp_timer, HV_QMP_RETRY_MS, 0);
                return;
        }
        /* Without its monitor a desktop cannot be managed (no hot-plug, no clean stop): end it. */
        log_error("vm %s: no QMP on %s after %llu ms, %llu ms of its CPU (%s); killing QEMU", vm->id, vm->qmp_path,
                  (unsigned long long)waited, (unsigned long long)(cpu - MIN(cpu, vm->qmp_cpu0_ms)), strerror(-r));
        vm_kill(vm, SIGKILL);
}

bool hv_qmp_wait_more(uint64_t cpu_ms, uint64_t waited_ms)
{
        return cpu_ms < HV_QMP_DEADLINE_MS && waited_ms < HV_QMP_WALL_MAX_MS;
}

static void vm_qmp_start(HvVm *vm)
{
        if (proc_cpu_ms(vm->pid, &vm->qmp_cpu0_ms) < 0)
                vm->qmp_cpu0_ms = 0;
        vm_qmp_try_connect(vm);
}

/* ---- command line ---- */

typedef struct Argv {
        char *v[HV_ARGV_MAX + 1];
        size_t n;
} Argv;

static void argv_add(Argv *a, char *s)          /* takes s */
{
        if (a->n >= HV_ARGV_MAX)
                abort();                        /* a programming error: raise HV_ARGV_MAX */
        a->v[a->n++] = s;
}

/* An option and its value (value owned, as argv_add takes it). */
static void argv_opt(Argv *a, const char *opt, char *value)
{
        argv_add(a, xstrdup(opt));
        argv_add(a, value);
}

static void argv_clear(Argv *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        a->n = 0;
}

/* QEMU option values separate keys with ','; a literal comma is written ",,". */
static char *qemu_escape(const char *s)
{
        char *out = xmalloc0(strlen(s) * 2 + 1), *o = out;
        for (; *s; s++) {
                *o++ = *s;
                if (*s == ',')
                        *o++ = ',';
        }
        return out;
}

/* QEMU has a session of its own, so (where the kernel groups by session: autogroup, when the
 * processes sit in the root cpu cgroup) a scheduling group of its own, which competes with a
 * user's desktop as an equal whatever its threads' policy: its group goes to nice 19 too. */
static void autogroup_nice(pid_t pid, int nice)
{
        char path[48], v[8];
        snprintf(path, sizeof path, "/proc/%d/autogroup", (int)pid);
        int n = snprintf(v, sizeof v, "%d", nice);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return;                 /* no autogroup in this kernel: the policy is all */
        if (write(fd, v, (size_t)n) < 0 && errno != ESRCH)
                log_debug("%s: %m", path);
        close(fd);
}

static int vm_build_argv(const HvVmSpec *spec, Argv *a)
{
        bool kvm = spec->accel != HV_ACCEL_TCG;
        bool switch_uid = spec->uid != (uid_t)-1 && geteuid() == 0;
        _cleanup_free_ char *dir = qemu_escape(spec->run_dir), *disk = qemu_escape(spec->disk);

        /* Before setpriv: the policy survives both execs, and QEMU's threads inherit it. */
        if (spec->background) {
                argv_add(a, xstrdup(HV_CHRT_PATH));
                argv_add(a, xstrdup("--idle"));
                argv_add(a, xstrdup("0"));
        }
        if (switch_uid) {
                argv_add(a, xstrdup(HV_SETPRIV_PATH));
                argv_add(a, xasprintf("--reuid=%u", (unsigned)spec->uid));
                argv_add(a, xasprintf("--regid=%u", (unsigned)spec->gid));
                /* The kvm group only when KVM is used, the template's group only for a template or
                 * a clone: otherwise the desktop gets no extra group. */
                bool mem = (spec->mem_path || spec->mem_from_fd) && spec->mem_gid != (gid_t)-1;
                if (kvm && mem)
                        argv_add(a, xasprintf("--groups=%u,%u", (unsigned)spec->kvm_gid, (unsigned)spec->mem_gid));
                else if (kvm || mem)
                        argv_add(a, xasprintf("--groups=%u", (unsigned)(kvm ? spec->kvm_gid : spec->mem_gid)));
                else
                        argv_add(a, xstrdup("--clear-groups"));
                argv_add(a, xstrdup("--no-new-privs"));
        }
        argv_add(a, xstrdup(spec->qemu ? spec->qemu : QEMU_SYSTEM_PATH));
        argv_opt(a, "-name", xasprintf("guest=%s,debug-threads=on", spec->id));
        /* Guest memory holds the desktop's plaintext (page cache, keys): never in a core dump. */
        if (spec->mem_path || spec->mem_from_fd) {
                /* The backend's own dump=off: the machine's dump-guest-core does not reach it. */
                _cleanup_free_ char *mp = spec->mem_from_fd ? xasprintf("/dev/fd/%d", HV_MEM_FD)
                                                            : qemu_escape(spec->mem_path);
                argv_opt(a, "-machine", xstrdup("q35,dump-guest-core=off,memory-backend=mem"));
                argv_opt(a, "-object", xasprintf("memory-backend-file,id=mem,size=%lluM,mem-path=%s,share=%s,dump=off",
                                                 (unsigned long long)spec->memory_mb, mp, spec->mem_share ? "on" : "off"));
        } else {
                argv_opt(a, "-machine", xstrdup("q35,dump-guest-core=off"));
        }
        argv_add(a, xstrdup("-accel"));
        /* tb-size bounds TCG's code cache (1.8 → 1 GB RSS on a desktop guest, research §8). */
        argv_add(a, xstrdup(kvm ? "kvm" : "tcg,tb-size=256"));
        if (kvm) {
                argv_opt(a, "-cpu", xstrdup(spec->accel == HV_ACCEL_KVM_COMPAT ? "qemu64" : "host"));
        }
        /* A guest that panics or reboots ends its QEMU: desktops are never reused. */
        argv_add(a, xstrdup("-no-reboot"));
        argv_opt(a, "-m", xasprintf("%llu", (unsigned long long)spec->memory_mb));
        argv_opt(a, "-smp", xasprintf("%u", spec->vcpus));
        argv_add(a, xstrdup("-nodefaults"));
        argv_add(a, xstrdup("-no-user-config"));
        argv_opt(a, "-sandbox", xstrdup("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
        argv_opt(a, "-display", xstrdup("none"));
        argv_opt(a, "-device", xstrdup("VGA"));
        argv_opt(a, "-vnc", xasprintf("unix:%s/%s", dir, HV_VNC_SOCKET));
        argv_opt(a, "-device", xstrdup("virtio-keyboard-pci"));
        argv_opt(a, "-device", xstrdup("virtio-tablet-pci"));
        argv_opt(a, "-chardev", xasprintf("socket,id=agent,path=%s/%s,server=on,wait=off", dir, HV_AGENT_SOCKET));
        argv_opt(a, "-device", xstrdup("virtio-serial-pci,id=vser0"));
        argv_opt(a, "-device", xstrdup("virtserialport,bus=vser0.0,chardev=agent,name=org.slate.agent.0"));
        argv_opt(a, "-chardev", xasprintf("socket,id=qmp,path=%s/%s,server=on,wait=off", dir, HV_QMP_SOCKET));
        argv_opt(a, "-mon", xstrdup("chardev=qmp,mode=control"));
        argv_opt(a, "-pidfile", xasprintf("%s/%s", spec->run_dir, HV_PID_FILE));
        if (spec->disk_secret) {
                /* The key arrives on fd 3, a pipe: never on argv, in the environment or on disk. */
                argv_opt(a, "-object", xstrdup("secret,id=sec0,file=/dev/fd/3,format=raw"));
        }
        argv_add(a, xstrdup("-blockdev"));
        /* O_DIRECT on tmpfs is refused by older kernels; page cache is RAM there anyway. */
        argv_add(a, xasprintf("driver=file,node-name=disk0-file,filename=%s,cache.direct=%s,aio=threads", disk,
                              spec->disk_on_tmpfs ? "off" : "on"));
        argv_add(a, xstrdup("-blockdev"));
        argv_add(a, xasprintf("driver=qcow2,node-name=disk0,file=disk0-file%s",
                              spec->disk_secret ? ",encrypt.format=luks,encrypt.key-secret=sec0" : ""));
        argv_opt(a, "-device", xstrdup("virtio-blk-pci,drive=disk0,id=vd0,bootindex=1"));
        /* The disk slots (hv.h): zeros until a session's disk is put in by blockdev-reopen. After
         * the boot disk, which must stay the guest's first (/dev/vda). */
        for (HvSlot i = 0; i < _HV_SLOT_MAX; i++) {
                const char *n = hv_qemu_slot_name(i), *ro = hv_slot_read_only(i) ? "on" : "off";
                argv_opt(a, "-blockdev", xasprintf("driver=null-co,node-name=slot-%s-null,size=%llu,read-zeroes=on,"
                                                   "read-only=%s", n, HV_SLOT_SIZE, ro));
                argv_opt(a, "-blockdev", xasprintf("driver=raw,node-name=slot-%s,file=slot-%s-null,read-only=%s", n,
                                                   n, ro));
                argv_opt(a, "-device", xasprintf("virtio-blk-pci,drive=slot-%s,id=slot-%s,serial=%s", n, n,
                                                 hv_slot_serial(i)));
        }
        /* Last, so the devices before it keep the addresses a cold boot gives them. */
        if (spec->mem_path || spec->mem_from_fd)
                argv_opt(a, "-device", xstrdup("vmgenid"));
        if (spec->incoming)
                argv_opt(a, "-incoming", xstrdup("defer"));
        if (spec->kernel) {
                argv_opt(a, "-kernel", xstrdup(spec->kernel));
                if (spec->initrd) {
                        argv_opt(a, "-initrd", xstrdup(spec->initrd));
                }
                if (spec->cmdline) {
                        argv_opt(a, "-append", xstrdup(spec->cmdline));
                }
        }
        return 0;
}

static int vm_spec_check(const HvVmSpec *spec)
{
        if (!spec->id || !string_is_name(spec->id, 64))
                return log_error_errno(-EINVAL, "vm: invalid desktop id '%s'", spec->id ? spec->id : "(null)");
        if (!spec->run_dir || spec->run_dir[0] != '/' || !spec->disk || spec->memory_mb == 0 || spec->vcpus == 0)
                return log_error_errno(-EINVAL, "vm %s: incomplete spec (run_dir, disk, memory, vcpus)", spec->id);
        /* sun_path holds 108 bytes: the longest socket name must fit. */
        if (strlen(spec->run_dir) + 1 + strlen(HV_AGENT_SOCKET) >= 108)
                return log_error_errno(-ENAMETOOLONG, "vm %s: run dir path too long for sockets: %s", spec->id,
                                       spec->run_dir);
        if (spec->disk_secret && strlen(spec->disk_secret) > 4096)
                return log_error_errno(-EINVAL, "vm %s: disk secret too long", spec->id);
        if (spec->mem_from_fd && spec->mem_fd < 3)
                return log_error_errno(-EBADF, "vm %s: no fd for its RAM", spec->id);
        return 0;
}

static int vm_start(uv_loop_t *loop, const HvVmSpec *spec, const HvCallbacks *cb, void *userdata, HvVm **ret)
{
        int r = vm_spec_check(spec);
        if (r < 0)
                return r;

        Argv a = { 0 };
        vm_build_argv(spec, &a);

        int secret_pipe[2] = { -1, -1 };
        if (spec->disk_secret) {
                if (pipe2(secret_pipe, O_CLOEXEC) < 0) {
                        argv_clear(&a);
                        return log_error_errno(-errno, "vm %s: pipe: %s", spec->id, strerror(errno));
                }
                /* A fresh pipe holds 64 KiB: this write cannot block. QEMU reads it from fd 3. */
                size_t n = strlen(spec->disk_secret);
                ssize_t k = write(secret_pipe[1], spec->disk_secret, n);
                int e = errno;
                close(secret_pipe[1]);
                /* QEMU opens /dev/fd/3, which checks the pipe's owner: give it to the VM uid. */
                if (k == (ssize_t)n && spec->uid != (uid_t)-1 && geteuid() == 0 &&
                    fchown(secret_pipe[0], spec->uid, spec->gid) < 0)
                        k = -1, e = errno;
                if (k != (ssize_t)n) {
                        close(secret_pipe[0]);
                        argv_clear(&a);
                        return log_error_errno(k < 0 ? -e : -EIO, "vm %s: cannot pass the disk key", spec->id);
                }
        }

        HvVm *vm = vm_new(loop, spec->id, spec->run_dir, cb, userdata);
        uv_pipe_init(loop, &vm->err, 0);
        vm->err.data = vm;
        vm->open_handles++;

        /* Only PATH: nothing of slated's environment (LD_PRELOAD, PAM_WRAPPER*, ...) reaches QEMU. */
        char *env[] = { HV_CHILD_PATH, NULL };
        uv_stdio_container_t stdio[HV_MEM_FD + 1] = {
                { .flags = UV_IGNORE },
                { .flags = UV_IGNORE },
                { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&vm->err },
                { .flags = spec->disk_secret ? UV_INHERIT_FD : UV_IGNORE, .data.fd = secret_pipe[0] },
                { .flags = UV_INHERIT_FD, .data.fd = spec->mem_fd },
        };
        uv_process_options_t opt = {
                .exit_cb = vm_on_process_exit,
                .file = a.v[0],
                .args = a.v,
                .env = env,
                .stdio = stdio,
                .stdio_count = spec->mem_from_fd ? HV_MEM_FD + 1 : spec->disk_secret ? 4 : 3,
                /* Own session: a terminal's Ctrl-C to slated must not take its desktops down. */
                .flags = UV_PROCESS_DETACHED,
        };
        vm->proc.data = vm;
        r = uv_spawn(loop, &vm->proc, &opt);
        if (secret_pipe[0] >= 0)
                close(secret_pipe[0]);
        if (r < 0) {
                log_error("vm %s: cannot run %s: %s", spec->id, a.v[0], uv_strerror(r));
                argv_clear(&a);
                vm->freed = true;
                vm->exit_reported = true;
                /* libuv wants a handle closed even when uv_spawn failed. */
                vm->open_handles++;
                uv_close((uv_handle_t *)&vm->proc, vm_on_handle_closed);
                uv_close((uv_handle_t *)&vm->err, vm_on_handle_closed);
                uv_close((uv_handle_t *)&vm->timer, vm_on_handle_closed);
                uv_close((uv_handle_t *)&vm->qmp_timer, vm_on_handle_closed);
                return r;
        }
        if (spec->background)
                autogroup_nice(vm->proc.pid, 19);
        if (log_get_level() >= LOG_LVL_DEBUG) {         /* argv carries no secret: see vm_build_argv */
                _cleanup_free_ char *line = xstrdup("");
                for (size_t i = 0; i < a.n; i++) {
                        char *l = xasprintf("%s%s%s", line, i ? " " : "", a.v[i]);
                        free(line);
                        line = l;
                }
                log_debug("vm %s: %s", spec->id, line);
        }
        argv_clear(&a);
        vm->open_handles++;
        vm->proc_open = true;
        vm->pid = vm->proc.pid;
        vm->err_open = true;
        uv_read_start((uv_stream_t *)&vm->err, vm_on_err_alloc, vm_on_err_read);
        log_info("vm %s: QEMU started (pid %d, %s)", vm->id, (int)vm->pid,
                 hv_accel_name(spec->accel));
        vm_qmp_start(vm);
        *ret = vm;
        return 0;
}

/* ---- adopt ---- */

/* Is pid this desktop's QEMU? Its argv carries guest=<id> and sockets inside run_dir. */
static int vm_cmdline_matches(pid_t pid, const char *id, const char *run_dir)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", (int)pid), *buf = NULL;
        size_t len;
        int r = read_file_max(path, 256 * 1024, &buf, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        _cleanup_free_ char *name = xasprintf("guest=%s,", id), *qmp = xasprintf("path=%s/%s,", run_dir, HV_QMP_SOCKET);
        bool has_name = false, has_dir = false;
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
                if (strncmp(buf + i, name, strlen(name)) == 0)
                        has_name = true;
                if (strstr(buf + i, qmp))
                        has_dir = true;
        }
        return has_name && has_dir ? 0 : -ESRCH;
}

static int vm_adopt(uv_loop_t *loop, const char *id, const char *run_dir, pid_t pid, const HvCallbacks *cb,
                    void *userdata, HvVm **ret)
{
        if (pid <= 0 || !id || !run_dir)
                return -ESRCH;
        /* pidfd first, then the check: if the pid was reused after this point the pidfd still names
         * the process we checked (or is already readable, if that one is gone). */
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                if (errno == ESRCH)
                        return -ESRCH;
                return log_error_errno(-errno, "vm %s: pidfd_open(%d): %s", id, (int)pid, strerror(errno));
        }
        _cleanup_free_ char *escaped = qemu_escape(run_dir);
        int r = vm_cmdline_matches(pid, id, escaped);
        if (r == -ESRCH) {
                log_info("vm %s: pid %d is not its QEMU (or gone); not adopting", id, (int)pid);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "vm %s: reading /proc/%d/cmdline: %s", id, (int)pid, strerror(-r));
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        if (poll(&p, 1, 0) > 0)
                return -ESRCH;

        HvVm *vm = vm_new(loop, id, run_dir, cb, userdata);
        vm->adopted = true;
        vm->pid = pid;
        vm->pidfd = TAKE_FD(pidfd);
        r = uv_poll_init(loop, &vm->pidfd_poll, vm->pidfd);
        if (r == 0) {
                vm->open_handles++;
                vm->poll_open = true;
                vm->pidfd_poll.data = vm;
                r = uv_poll_start(&vm->pidfd_poll, UV_READABLE, vm_on_pidfd);
        }
        if (r < 0) {
                log_error("vm %s: watching pid %d: %s", id, (int)pid, uv_strerror(r));
                vm->exit_reported = true;
                vm_free(vm);
                return r;
        }
        log_info("vm %s: adopted QEMU pid %d", id, (int)pid);
        vm_qmp_start(vm);
        *ret = vm;
        return 0;
}

/* ---- stop / free ---- */

static void vm_on_grace_timeout(uv_timer_t *t)
{
        HvVm *vm = t->data;
        log_warn("vm %s: QEMU did not quit in time, killing it", vm->id);
        vm_kill(vm, SIGKILL);
}

static int vm_stop(HvVm *vm, unsigned grace_ms)
{
        if (vm->exited || vm->stopping)
                return 0;
        vm->stopping = true;
        if (vm->qmp && qmp_is_ready(vm->qmp))
                qmp_command(vm->qmp, "quit", NULL, NULL, NULL);
        else if (!vm->qmp)
                vm_kill(vm, SIGTERM);   /* QEMU treats SIGTERM as a clean quit */
        /* else: QMP is still negotiating; vm_on_qmp_ready sends quit. */
        uv_timer_stop(&vm->qmp_timer);
        /* The grace counts from this call, not from the loop's cached time (a busy loop or a
         * descheduled process would cut it short). */
        uv_update_time(vm->loop);
        uv_timer_start(&vm->timer, vm_on_grace_timeout, grace_ms, 0);
        return 0;
}

static pid_t vm_pid(HvVm *vm) { return vm->pid; }

/* Each thread has its own policy: walk them all, twice, so a thread created during the first
 * walk by one not yet changed is caught by the second (after it, creators have the new policy). */
static int vm_set_background(HvVm *vm, bool background)
{
        if (vm->exited || vm->pid <= 0)
                return -ESRCH;
        struct sched_param sp = { 0 };
        int policy = background ? SCHED_IDLE : SCHED_OTHER, r = 0;
        _cleanup_free_ char *dir = xasprintf("/proc/%d/task", (int)vm->pid);
        for (int pass = 0; pass < 2; pass++) {
                DIR *d = opendir(dir);
                if (!d)
                        return log_error_errno(-errno, "vm %s: %s: %m", vm->id, dir);
                struct dirent *de;
                while ((de = readdir(d))) {
                        unsigned tid;
                        if (parse_uint(de->d_name, 0x7fffffff, &tid) < 0)
                                continue;
                        if (sched_setscheduler((pid_t)tid, policy, &sp) < 0 && errno != ESRCH && r == 0)
                                r = -errno;
                }
                closedir(d);
        }
        autogroup_nice(vm->pid, background ? 19 : 0);
        if (r < 0)
                return log_error_errno(r, "vm %s: cannot set its CPU priority to %s: %s", vm->id,
                                       background ? "idle" : "normal", strerror(-r));
        log_debug("vm %s: CPU priority %s", vm->id, background ? "idle" : "normal");
        return 0;
}

static int vm_cpu_ms(HvVm *vm, uint64_t *ret_ms)
{
        if (vm->exited || vm->pid <= 0)
                return -ESRCH;
        return proc_cpu_ms(vm->pid, ret_ms);
}

/* Forget the VM. A QEMU still running is left running (so a restarted slated can adopt it): its
 * stderr then goes nowhere and, if we spawned it, nobody reaps it until this process ends. */
static void vm_free(HvVm *vm)
{
        if (!vm || vm->freed)
                return;
        vm->freed = true;
        hv_qemu_disk_cancel(vm);
        hv_qemu_migrate_cancel(vm);
        qmp_free(TAKE_PTR(vm->qmp));
        uv_timer_stop(&vm->timer);
        uv_timer_stop(&vm->qmp_timer);
        if (vm->proc_open) {
                vm->proc_open = false;
                uv_close((uv_handle_t *)&vm->proc, vm_on_handle_closed);
        }
        if (vm->err_open) {
                vm->err_open = false;
                uv_close((uv_handle_t *)&vm->err, vm_on_handle_closed);
        }
        if (vm->poll_open) {
                vm->poll_open = false;
                uv_close((uv_handle_t *)&vm->pidfd_poll, vm_on_handle_closed);
        }
        uv_close((uv_handle_t *)&vm->timer, vm_on_handle_closed);
        uv_close((uv_handle_t *)&vm->qmp_timer, vm_on_handle_closed);
}

const HvDriver hv_qemu_driver = {
        .name = "qemu",
        .vm_start = vm_start,
        .vm_adopt = vm_adopt,
        .vm_stop = vm_stop,
        .vm_pid = vm_pid,
        .vm_set_background = vm_set_background,
        .vm_cpu_ms = vm_cpu_ms,
        .vm_free = vm_free,
        .console_open = hv_qemu_console_open,
        .agent_open = hv_qemu_agent_open,
        .disk_attach = hv_qemu_disk_attach,
        .disk_detach = hv_qemu_disk_detach,
        .vm_save = hv_qemu_vm_save,
        .vm_restore = hv_qemu_vm_restore,
};

