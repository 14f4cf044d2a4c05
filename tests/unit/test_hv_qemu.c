/* QEMU driver and accelerator probe against real QEMU (TCG here) and the tiny test guest.
 * Exits 77 with a reason when QEMU or the guest build is missing; never passes silently. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "broker/hv.h"
#include "broker/hv_qemu.h"
#include "broker/hv_qmp.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* 64 hex chars, like the overlay keys slated generates. */
#define SECRET "5f4dcc3b5aa765d61d8327deb882cf99e3b0c44298fc1c149afbf4c8996fb924"

/* Criterion re-executes this binary per test (globals set in main are gone there): ask the env. */
static const char *guest_dir_get(void)
{
        static char dir[512];
        const char *b = getenv("SLATE_BUILDDIR");
        snprintf(dir, sizeof dir, "%s/tests/guest/out", b ? b : ".");
        return dir;
}
#define guest_dir guest_dir_get()

typedef struct Ctx {
        uv_loop_t loop;
        char dir[64], run_dir[128], overlay[192];
        char *kernel, *initrd, *golden, *cmdline;
        HvVm *vm;
        bool exited;
        int exit_count, status;
        uint64_t exit_at;
        char last_event[64];
        /* a QMP reply */
        bool replied;
        int reply_r;
        char reply[65536];
} Ctx;

static void on_exit_cb(HvVm *vm, int status, void *ud)
{
        Ctx *c = ud;
        c->exited = true;
        c->exit_count++;
        c->status = status;
        c->exit_at = now_ms();
}

static void on_event_cb(HvVm *vm, const char *event, const char *data, void *ud)
{
        snprintf(((Ctx *)ud)->last_event, sizeof ((Ctx *)ud)->last_event, "%s", event);
}

static const HvCallbacks callbacks = { on_exit_cb, on_event_cb };

/* A failed assertion skips ctx_done; QEMU runs in its own session and would outlive the test. */
static pid_t live_pid;
static char live_dir[64];

static void teardown(void)
{
        if (live_pid > 0 && waitpid(live_pid, NULL, WNOHANG) == 0) {
                kill(live_pid, SIGKILL);
                waitpid(live_pid, NULL, 0);
        }
        if (live_dir[0])
                rm_rf(live_dir);
}

TestSuite(hv_qemu, .fini = teardown);

static int vm_start_tracked(Ctx *c, const HvVmSpec *spec)
{
        int r = hv_qemu_driver.vm_start(&c->loop, spec, &callbacks, c, &c->vm);
        if (r == 0)
                live_pid = hv_qemu_driver.vm_pid(c->vm);
        return r;
}

static bool run_until(Ctx *c, bool (*cond)(Ctx *), unsigned timeout_ms)
{
        uint64_t deadline = now_ms() + timeout_ms;
        while (!cond(c) && now_ms() < deadline) {
                uv_run(&c->loop, UV_RUN_NOWAIT);
                usleep(2000);
        }
        return cond(c);
}

static bool cond_exited(Ctx *c) { return c->exited; }
static bool cond_qmp_ready(Ctx *c)
{
        Qmp *q = hv_qemu_vm_qmp(c->vm);
        return q && qmp_is_ready(q);
}
static bool cond_replied(Ctx *c) { return c->replied; }

static void ctx_init(Ctx *c)
{
        memset(c, 0, sizeof *c);
        signal(SIGPIPE, SIG_IGN);       /* as slated does: see qmp.h */
        cr_assert_eq(uv_loop_init(&c->loop), 0);
        snprintf(c->dir, sizeof c->dir, "/tmp/slate-hvtest.XXXXXX");
        cr_assert_not_null(mkdtemp(c->dir));
        snprintf(live_dir, sizeof live_dir, "%s", c->dir);
        snprintf(c->run_dir, sizeof c->run_dir, "%s/run", c->dir);
        cr_assert_eq(mkdir(c->run_dir, 0700), 0);
        snprintf(c->overlay, sizeof c->overlay, "%s/overlay.qcow2", c->dir);
        c->kernel = xasprintf("%s/vmlinux", guest_dir);
        c->initrd = xasprintf("%s/initrd.img", guest_dir);
        c->golden = xasprintf("%s/disk.qcow2", guest_dir);
        char *s = NULL;
        _cleanup_free_ char *p = xasprintf("%s/cmdline", guest_dir);
        if (read_file_max(p, 4096, &s, NULL) == 0)
                s[strcspn(s, "\n")] = 0;
        c->cmdline = s ? s : xstrdup("console=ttyS0 quiet");
}

static void ctx_done(Ctx *c)
{
        if (c->vm) {
                pid_t pid = hv_qemu_driver.vm_pid(c->vm);
                if (!c->exited && pid > 0)
                        kill(pid, SIGKILL);
                hv_qemu_driver.vm_free(c->vm);
        }
        for (int i = 0; i < 5; i++)
                uv_run(&c->loop, UV_RUN_NOWAIT);
        cr_assert_eq(uv_loop_close(&c->loop), 0, "driver left libuv handles open");
        rm_rf(c->dir);
        free(c->kernel);
        free(c->initrd);
        free(c->golden);
        free(c->cmdline);
}

static int sh(const char *cmd)
{
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void overlay_plain(Ctx *c)
{
        _cleanup_free_ char *cmd = xasprintf(QEMU_IMG_PATH " create -q -f qcow2 -F qcow2 -b %s %s", c->golden,
                                             c->overlay);
        cr_assert_eq(sh(cmd), 0, "%s", cmd);
}

static void overlay_luks(Ctx *c)
{
        _cleanup_free_ char *key = xasprintf("%s/key", c->dir);
        cr_assert_eq(write_file_atomic(key, SECRET, strlen(SECRET), 0600), 0);
        _cleanup_free_ char *cmd = xasprintf(QEMU_IMG_PATH " create -q -f qcow2 -F qcow2 -b %s "
                                             "-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "
                                             "--object secret,id=s,file=%s,format=raw %s",
                                             c->golden, key, c->overlay);
        /* qemu-img fails now and then with "Unable to get accurate CPU usage" (research §3): retry. */
        int r = -1;
        for (int i = 0; i < 10 && r != 0; i++) {
                if (i)
                        usleep(100 * 1000);
                r = sh(cmd);
        }
        cr_assert_eq(r, 0, "%s", cmd);
        unlink(key);
}

static HvVmSpec spec_for(Ctx *c)
{
        return (HvVmSpec){
                .id = "desk-1",
                .run_dir = c->run_dir,
                .disk = c->overlay,
                .kernel = c->kernel,
                .initrd = c->initrd,
                .cmdline = c->cmdline,
                .memory_mb = 128,
                .vcpus = 1,
                .accel = HV_ACCEL_TCG,
                .uid = (uid_t)-1,
                .gid = (gid_t)-1,
        };
}

static void on_reply(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        Ctx *c = ud;
        c->replied = true;
        c->reply_r = r;
        snprintf(c->reply, sizeof c->reply, "%s",
                 ret ? json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN) : desc ? desc : "");
}

static void start_and_wait_qmp(Ctx *c, const HvVmSpec *spec)
{
        uint64_t t0 = now_ms();
        cr_assert_eq(vm_start_tracked(c, spec), 0);
        cr_assert_gt(hv_qemu_driver.vm_pid(c->vm), 0);
        cr_assert(run_until(c, cond_qmp_ready, 10000), "QMP not ready 10 s after spawn");
        cr_log_info("start -> QMP ready: %llu ms", (unsigned long long)(now_ms() - t0));
        cr_assert_not_null(qmp_version(hv_qemu_vm_qmp(c->vm)));
}

static void assert_running(Ctx *c)
{
        c->replied = false;
        cr_assert_eq(qmp_command(hv_qemu_vm_qmp(c->vm), "query-status", NULL, on_reply, c), 0);
        cr_assert(run_until(c, cond_replied, 5000));
        cr_assert_eq(c->reply_r, 0, "query-status: %s", c->reply);
        cr_assert(strstr(c->reply, "\"status\":\"running\""), "query-status: %s", c->reply);
}

static bool proc_file_contains(pid_t pid, const char *file, const char *needle)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/%s", (int)pid, file), *buf = NULL;
        size_t len;
        cr_assert_eq(read_file_max(p, 1 << 20, &buf, &len), 0, "read %s", p);
        return memmem(buf, len, needle, strlen(needle)) != NULL;
}

/* A QEMU starved of CPU (an idle-priority spare on a busy host) is waited for; one that has had
 * its CPU and made no socket, or that waits on something else for two minutes, is not. */
Test(hv_qemu, qmp_wait_counts_cpu_not_the_clock)
{
        cr_assert(hv_qmp_wait_more(100, 30000), "a starved QEMU was given up after 30 s");
        cr_assert(!hv_qmp_wait_more(5000, 6000), "a QEMU that used 5 s of CPU without a socket was waited for");
        cr_assert(!hv_qmp_wait_more(0, 120000), "a QEMU blocked for 2 minutes was waited for");
}

Test(hv_qemu, start_reaches_running_and_kill9_reports_exit_promptly, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);
        assert_running(&c);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);
        cr_assert(proc_file_contains(pid, "cmdline", "guest=desk-1,"));
        cr_assert(proc_file_contains(pid, "cmdline", "dump-guest-core=off"), "guest memory would go into core dumps");
        cr_assert(!proc_file_contains(pid, "environ", "LD_PRELOAD"));
        /* The boot timeout of a spare counts this (desktop_boot_wait_ms). */
        uint64_t cpu = 0;
        cr_assert_eq(hv_qemu_driver.vm_cpu_ms(c.vm, &cpu), 0);
        cr_assert_gt(cpu, 0, "a QEMU that reached QMP has had some CPU");
        uint64_t t0 = now_ms();
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert(run_until(&c, cond_exited, 3000), "on_exit not called after SIGKILL");
        cr_log_info("SIGKILL -> on_exit: %llu ms", (unsigned long long)(c.exit_at - t0));
        cr_assert_lt(c.exit_at - t0, 1000, "on_exit took %llu ms", (unsigned long long)(c.exit_at - t0));
        cr_assert_eq(c.status, -SIGKILL);
        cr_assert_eq(c.exit_count, 1);
        ctx_done(&c);
}

Test(hv_qemu, luks_overlay_boots_and_key_stays_off_cmdline_and_environ, .timeout = 90)
{
        Ctx c;
        ctx_init(&c);
        overlay_luks(&c);
        HvVmSpec spec = spec_for(&c);
        spec.disk_secret = SECRET;
        start_and_wait_qmp(&c, &spec);
        assert_running(&c);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);
        cr_assert(!proc_file_contains(pid, "cmdline", SECRET), "secret on the QEMU command line");
        cr_assert(!proc_file_contains(pid, "environ", SECRET), "secret in the QEMU environment");
        cr_assert(proc_file_contains(pid, "cmdline", "encrypt.key-secret=sec0"));
        /* The encrypted node really is open (a wrong key would have stopped QEMU at start). */
        c.replied = false;
        qmp_command(hv_qemu_vm_qmp(c.vm), "query-named-block-nodes", NULL, on_reply, &c);
        cr_assert(run_until(&c, cond_replied, 5000));
        cr_assert(strstr(c.reply, "\"encrypted\":true"), "no encrypted node: %.300s", c.reply);
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0);
        cr_assert(run_until(&c, cond_exited, 5000));
        cr_assert_eq(c.status, 0);
        ctx_done(&c);
}

typedef struct DiskDone {
        bool done;
        int r;
        char error[128];
} DiskDone;

static void on_disk_done(HvVm *vm, int r, const char *error, void *ud)
{
        DiskDone *d = ud;
        d->done = true;
        d->r = r;
        snprintf(d->error, sizeof d->error, "%s", error ? error : "");
}

static DiskDone *disk_waiting;
static bool cond_disk_done(Ctx *c) { return disk_waiting->done; }

static const char *named_nodes(Ctx *c)
{
        c->replied = false;
        qmp_command(hv_qemu_vm_qmp(c->vm), "query-named-block-nodes", NULL, on_reply, c);
        cr_assert(run_until(c, cond_replied, 5000));
        return c->reply;
}

/* The image behind a slot's node, as QEMU names it ("null-co://" while empty, else a json:
 * filename naming the driver and file): the "file" of node slot-NAME in query-named-block-nodes. */
static const char *slot_file(Ctx *c, const char *slot)
{
        static char file[512];
        const char *nodes = named_nodes(c);
        json_object *all = json_tokener_parse(nodes);
        cr_assert(all && json_object_is_type(all, json_type_array), "nodes (r %d, %zu bytes): %.200s", c->reply_r, strlen(nodes), nodes);
        file[0] = 0;
        for (size_t i = 0; i < json_object_array_length(all); i++) {
                json_object *n = json_object_array_get_idx(all, i), *v;
                if (json_object_object_get_ex(n, "node-name", &v) && !strcmp(json_object_get_string(v), slot) &&
                    json_object_object_get_ex(n, "file", &v))
                        snprintf(file, sizeof file, "%s", json_object_get_string(v));
        }
        json_object_put(all);
        cr_assert(file[0], "no node %s", slot);
        return file;
}

static void slot_wait(Ctx *c, DiskDone *d, const char *what)
{
        disk_waiting = d;
        cr_assert(run_until(c, cond_disk_done, 10000), "%s not answered", what);
}

/* A subverted QEMU, as the run dir's owner, can put a symlink to any socket in place of one of
 * its own: here to a socket this test listens on (in slated's case its control socket). */
static int plant_foreign_socket(Ctx *c, const char *name)
{
        _cleanup_free_ char *other = xasprintf("%s/other.sock", c->dir), *own = xasprintf("%s/%s", c->run_dir, name);
        _cleanup_free_ char *moved = xasprintf("%s/%s.moved", c->run_dir, name);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", other);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        cr_assert_geq(lfd, 0);
        cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0, "bind %s: %s", other, strerror(errno));
        cr_assert_eq(listen(lfd, 4), 0);
        cr_assert_eq(rename(own, moved), 0, "%s: %s", own, strerror(errno));
        cr_assert_eq(symlink(other, own), 0);
        return lfd;
}

/* The driver did reach the planted socket, and closed it without writing a byte. */
static void assert_reached_but_told_nothing(int lfd)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        cr_assert_geq(fd, 0, "the planted socket was never connected to: %s", strerror(errno));
        char b[16];
        ssize_t k = read(fd, b, sizeof b);
        cr_assert_eq(k, 0, "the driver sent %zd bytes to a socket that is not QEMU's", k);
        close(fd);
        close(lfd);
}

/* The driver hands out the console and the agent channel as connected fds, and fills the disk
 * slots every VM has from boot: an app layer stack (two images as one disk, read-only) and an
 * encrypted profile, then empties them again: nothing outside the driver needs QMP. */
Test(hv_qemu, console_agent_and_disk_slots_through_the_driver, .timeout = 120)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);

        int fd;
        cr_assert_eq(hv_qemu_driver.console_open(c.vm, &fd), 0);
        char greet[12] = "";
        cr_assert_eq(read(fd, greet, sizeof greet), 12);
        cr_assert(memcmp(greet, "RFB 003.", 8) == 0, "not a VNC greeting: %.12s", greet);
        close(fd);
        cr_assert_eq(hv_qemu_driver.agent_open(c.vm, &fd), 0);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, 60000), 1, "the guest agent said nothing in 60 s");
        close(fd);

        /* Empty slots: backed by the null driver. */
        cr_assert(strstr(slot_file(&c, "slot-apps"), "null-co"), "slot-apps: %s", slot_file(&c, "slot-apps"));
        cr_assert(strstr(slot_file(&c, "slot-profile"), "null-co"), "slot-profile: %s", slot_file(&c, "slot-profile"));

        /* Two 4 MiB layers (0x11, 0x22) stacked as one disk. */
        _cleanup_free_ char *l1 = xasprintf("%s/l1.img", c.dir), *l2 = xasprintf("%s/l2.img", c.dir);
        _cleanup_free_ char *stack = xasprintf("%s/apps.vmdk", c.dir);
        _cleanup_free_ char *cmd = xasprintf("head -c 4194304 /dev/zero | tr '\\000' '\\021' >%s && "
                                             "head -c 4194304 /dev/zero | tr '\\000' '\\042' >%s", l1, l2);
        cr_assert_eq(sh(cmd), 0);
        /* As streaming/layer.c's layer_stack_write makes them. */
        _cleanup_free_ char *desc = xasprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                                              "createType=\"monolithicFlat\"\nRW 8192 FLAT \"%s\" 0\n"
                                              "RW 8192 FLAT \"%s\" 0\n", l1, l2);
        cr_assert_eq(write_file_atomic(stack, desc, strlen(desc), 0644), 0);
        HvDisk apps = { .slot = HV_SLOT_APPS, .path = stack, .format = "vmdk" };
        DiskDone d = { 0 };
        uint64_t t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &apps, on_disk_done, &d), 0);
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &apps, on_disk_done, &d), -EBUSY);
        slot_wait(&c, &d, "attach");
        cr_assert_eq(d.r, 0, "attach: %s", d.error);
        cr_log_info("layer stack into its slot: %llu ms", (unsigned long long)(now_ms() - t0));
        cr_assert(strstr(slot_file(&c, "slot-apps"), stack) && strstr(slot_file(&c, "slot-apps"), "\"vmdk\""),
                  "slot-apps: %s", slot_file(&c, "slot-apps"));
        cr_assert(strstr(slot_file(&c, "slot-profile"), "null-co"), "the other slot changed");
        /* The stack is the two images back to back (what the guest reads is test_agent_disks'). */
        free(cmd);
        cmd = xasprintf(QEMU_IMG_PATH " compare -q -f vmdk -F raw %s %s/both.img", stack, c.dir);
        _cleanup_free_ char *cat = xasprintf("cat %s %s >%s/both.img && %s", l1, l2, c.dir, cmd);
        /* qemu-img fails now and then with "Unable to get accurate CPU usage" (research §3): retry. */
        int r = -1;
        for (int i = 0; i < 5 && r != 0; i++)
                r = sh(cat);
        cr_assert_eq(r, 0, "the stack is not the two images back to back");

        /* Bad requests are refused before QEMU sees them. */
        HvDisk bad = { .slot = HV_SLOT_PROFILE, .path = stack, .format = "vmdk" };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &bad, on_disk_done, &d), -EINVAL, "vmdk in a writable slot");
        bad = (HvDisk){ .slot = _HV_SLOT_MAX, .path = l1, .format = "raw" };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &bad, on_disk_done, &d), -EINVAL);
        bad = (HvDisk){ .slot = HV_SLOT_PROFILE, .path = l1, .format = "raw", .secret = SECRET };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &bad, on_disk_done, &d), -EINVAL, "a secret for a raw disk");

        /* An encrypted profile: a wrong key fails and leaves the slot usable; the right one opens. */
        _cleanup_free_ char *prof = xasprintf("%s/profile.qcow2", c.dir), *key = xasprintf("%s/pkey", c.dir);
        cr_assert_eq(write_file_atomic(key, SECRET, strlen(SECRET), 0600), 0);
        free(cmd);
        cmd = xasprintf(QEMU_IMG_PATH " create -q -f qcow2 -o encrypt.format=luks,encrypt.key-secret=s,"
                        "encrypt.iter-time=10 --object secret,id=s,file=%s,format=raw %s 8M", key, prof);
        r = -1;
        for (int i = 0; i < 5 && r != 0; i++)
                r = sh(cmd);
        cr_assert_eq(r, 0);
        HvDisk profile = { .slot = HV_SLOT_PROFILE, .path = prof, .format = "qcow2",
                           .secret = "1111111111111111111111111111111111111111111111111111111111111111" };
        d = (DiskDone){ 0 };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &profile, on_disk_done, &d), 0);
        slot_wait(&c, &d, "attach with a wrong key");
        cr_assert_lt(d.r, 0, "a wrong key opened the profile");
        cr_log_info("wrong key: %s", d.error);
        profile.secret = SECRET;
        d = (DiskDone){ 0 };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &profile, on_disk_done, &d), 0);
        slot_wait(&c, &d, "attach");
        cr_assert_eq(d.r, 0, "attach: %s", d.error);
        const char *nodes = named_nodes(&c);
        cr_assert(strstr(nodes, "\"node-name\":\"slot-profile-img\"") && strstr(nodes, "\"encrypted\":true"),
                  "no encrypted profile node: %.400s", nodes);

        /* Emptied: zeros again, the image's node gone, and the slot takes a disk again. */
        d = (DiskDone){ 0 };
        t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.disk_detach(c.vm, HV_SLOT_APPS, on_disk_done, &d), 0);
        cr_assert_eq(hv_qemu_driver.disk_detach(c.vm, HV_SLOT_APPS, on_disk_done, &d), -EBUSY);
        slot_wait(&c, &d, "detach");
        cr_assert_eq(d.r, 0, "detach: %s", d.error);
        cr_log_info("detach: %llu ms", (unsigned long long)(now_ms() - t0));
        cr_assert(strstr(slot_file(&c, "slot-apps"), "null-co"), "slot-apps: %s", slot_file(&c, "slot-apps"));
        nodes = named_nodes(&c);
        cr_assert_null(strstr(nodes, "\"node-name\":\"slot-apps-img\""), "node still there after detach");
        d = (DiskDone){ 0 };
        cr_assert_eq(hv_qemu_driver.disk_attach(c.vm, &apps, on_disk_done, &d), 0);
        slot_wait(&c, &d, "second attach");
        cr_assert_eq(d.r, 0, "attach into the emptied slot: %s", d.error);
        cr_assert(strstr(slot_file(&c, "slot-apps"), stack) && strstr(slot_file(&c, "slot-apps"), "\"vmdk\""),
                  "slot-apps: %s", slot_file(&c, "slot-apps"));
        /* Emptying a slot this handle never filled (an adopted VM's) works too. */
        d = (DiskDone){ 0 };
        cr_assert_eq(hv_qemu_driver.disk_detach(c.vm, HV_SLOT_PROFILE, on_disk_done, &d), 0);
        slot_wait(&c, &d, "detach");
        cr_assert_eq(d.r, 0, "detach: %s", d.error);
        d = (DiskDone){ 0 };
        cr_assert_eq(hv_qemu_driver.disk_detach(c.vm, HV_SLOT_PROFILE, on_disk_done, &d), 0);
        slot_wait(&c, &d, "detach of an empty slot");
        cr_assert_eq(d.r, 0, "detach of an empty slot: %s", d.error);

        /* vnc.sock now leads to another process's socket: not handed out, and the VM is killed. */
        int lfd = plant_foreign_socket(&c, HV_VNC_SOCKET);
        fd = -1;
        cr_assert_eq(hv_qemu_driver.console_open(c.vm, &fd), -EPERM, "a console that is not QEMU's was handed out");
        cr_assert_eq(fd, -1);
        assert_reached_but_told_nothing(lfd);
        cr_assert(run_until(&c, cond_exited, 5000), "a VM whose console leads elsewhere still runs");
        cr_assert_eq(c.status, -SIGKILL);
        cr_assert_eq(hv_qemu_driver.agent_open(c.vm, &fd), -ENOTCONN);
        ctx_done(&c);
}

/* The agent channel said something within ms (HELLO, when the guest's agent runs). */
static bool agent_speaks(Ctx *c, unsigned ms)
{
        int fd = -1;
        uint64_t deadline = now_ms() + ms;
        while (hv_qemu_driver.agent_open(c->vm, &fd) < 0 && now_ms() < deadline)
                usleep(20000);
        if (fd < 0)
                return false;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);
        bool spoke = poll(&pfd, 1, left) == 1 && (pfd.revents & POLLIN);
        close(fd);
        return spoke;
}

/* Instant clones (research: instant-clones.md): a template booted with its RAM in a shared file
 * is saved (device state only, x-ignore-shared, over getfd + fd: under the sandbox), and a clone
 * started with -incoming maps the file privately, loads the state and runs: its agent answers.
 * A state that does not load is reported through done() and the clone's QEMU exits. */
Test(hv_qemu, template_saved_and_clone_resumed_through_the_driver, .timeout = 180)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        _cleanup_free_ char *ram = xasprintf("%s/ram", c.dir), *state = xasprintf("%s/state", c.dir);
        int rfd = open(ram, O_RDWR | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(rfd, 0);
        cr_assert_eq(ftruncate(rfd, 128 << 20), 0);
        close(rfd);
        HvVmSpec spec = spec_for(&c);
        spec.mem_path = ram;
        spec.mem_share = true;
        spec.mem_gid = (gid_t)-1;
        start_and_wait_qmp(&c, &spec);
        cr_assert(proc_file_contains(hv_qemu_driver.vm_pid(c.vm), "cmdline", "vmgenid"), "no vmgenid device");
        cr_assert(agent_speaks(&c, 90000), "the template's agent said nothing in 90 s");
        /* No host on the port at the save (pitfall 9), and the guest told so before it. */
        for (uint64_t t = now_ms(); now_ms() < t + 1200;) {
                uv_run(&c.loop, UV_RUN_NOWAIT);
                usleep(10000);
        }
        int sfd = open(state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(sfd, 0);
        DiskDone d = { 0 };
        cr_assert_eq(hv_qemu_driver.vm_save(c.vm, sfd, on_disk_done, &d), 0);
        slot_wait(&c, &d, "save");
        cr_assert_eq(d.r, 0, "save: %s", d.error);
        struct stat st;
        cr_assert_eq(stat(state, &st), 0);
        /* The RAM stayed in the file: the state is the devices and VGA memory, a few MB. */
        cr_assert(st.st_size > 100000 && st.st_size < (32 << 20), "state of %lld bytes", (long long)st.st_size);
        cr_log_info("template state: %lld bytes", (long long)st.st_size);
        hv_qemu_driver.vm_stop(c.vm, 3000);
        cr_assert(run_until(&c, cond_exited, 10000));
        hv_qemu_driver.vm_free(c.vm);
        c.vm = NULL;

        /* The clone: its own overlay over the template's (frozen) one, its own run dir. */
        _cleanup_free_ char *frozen = xasprintf("%s/frozen.qcow2", c.dir);
        cr_assert_eq(rename(c.overlay, frozen), 0);
        _cleanup_free_ char *cmd = xasprintf(QEMU_IMG_PATH " create -q -f qcow2 -F qcow2 -b %s %s", frozen, c.overlay);
        cr_assert_eq(sh(cmd), 0);
        snprintf(c.run_dir, sizeof c.run_dir, "%s/run2", c.dir);
        cr_assert_eq(mkdir(c.run_dir, 0700), 0);
        c.exited = false;
        /* As slated gives it: the RAM as a memfd sealed against writes, opened by QEMU through
         * /dev/fd and mapped privately. */
        int mfd = memfd_create("test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING), in = open(ram, O_RDONLY);
        cr_assert(mfd >= 0 && in >= 0);
        cr_assert_eq(ftruncate(mfd, 128 << 20), 0);
        static char chunk[1 << 16];
        for (off_t off = 0; off < (128 << 20); off += sizeof chunk) {
                cr_assert_eq(pread(in, chunk, sizeof chunk, off), (ssize_t)sizeof chunk);
                cr_assert_eq(pwrite(mfd, chunk, sizeof chunk, off), (ssize_t)sizeof chunk);
        }
        close(in);
        cr_assert_eq(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL), 0);
        cr_assert_eq(pwrite(mfd, "x", 1, 0), -1, "a sealed memfd took a write");
        cr_assert_eq(errno, EPERM);
        spec = spec_for(&c);
        spec.mem_from_fd = true;
        spec.mem_fd = mfd;
        spec.mem_share = false;
        spec.mem_gid = (gid_t)-1;
        spec.incoming = true;
        uint64_t t0 = now_ms();
        cr_assert_eq(vm_start_tracked(&c, &spec), 0);
        sfd = open(state, O_RDONLY | O_CLOEXEC);
        DiskDone d2 = { 0 };
        cr_assert_eq(hv_qemu_driver.vm_restore(c.vm, sfd, on_disk_done, &d2), 0);
        slot_wait(&c, &d2, "restore");
        cr_assert_eq(d2.r, 0, "restore: %s", d2.error);
        cr_log_info("clone: spawn -> running %llu ms", (unsigned long long)(now_ms() - t0));
        assert_running(&c);
        cr_assert(proc_file_contains(hv_qemu_driver.vm_pid(c.vm), "cmdline", "mem-path=/dev/fd/4"),
                  "the clone does not map its RAM from the fd");
        cr_assert(agent_speaks(&c, 10000), "the clone's agent said nothing in 10 s");
        cr_log_info("clone: spawn -> agent %llu ms", (unsigned long long)(now_ms() - t0));
        hv_qemu_driver.vm_stop(c.vm, 3000);
        cr_assert(run_until(&c, cond_exited, 10000));
        hv_qemu_driver.vm_free(c.vm);
        c.vm = NULL;

        /* A state that is not one: done() says so and the QEMU exits (slated boots cold then). */
        snprintf(c.run_dir, sizeof c.run_dir, "%s/run3", c.dir);
        cr_assert_eq(mkdir(c.run_dir, 0700), 0);
        _cleanup_free_ char *bad = xasprintf("%s/bad", c.dir);
        cr_assert_eq(write_file_atomic(bad, "not a migration stream\n", 23, 0600), 0);
        c.exited = false;
        cr_assert_eq(vm_start_tracked(&c, &spec), 0);
        DiskDone d3 = { 0 };
        cr_assert_eq(hv_qemu_driver.vm_restore(c.vm, open(bad, O_RDONLY | O_CLOEXEC), on_disk_done, &d3), 0);
        slot_wait(&c, &d3, "restore of a bad state");
        cr_assert_lt(d3.r, 0, "a bad state loaded");
        cr_assert(run_until(&c, cond_exited, 10000), "QEMU kept running after a failed load");
        close(mfd);
        ctx_done(&c);
}

Test(hv_qemu, wrong_luks_key_fails_with_on_exit, .timeout = 90)
{
        Ctx c;
        ctx_init(&c);
        overlay_luks(&c);
        HvVmSpec spec = spec_for(&c);
        spec.disk_secret = "0000000000000000000000000000000000000000000000000000000000000000";
        cr_assert_eq(vm_start_tracked(&c, &spec), 0);
        cr_assert(run_until(&c, cond_exited, 10000));
        cr_assert_eq(c.status, 1);
        ctx_done(&c);
}

Test(hv_qemu, vm_stop_quits_and_on_exit_comes_once, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);
        uint64_t t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0);
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0, "second stop must be harmless");
        cr_assert(run_until(&c, cond_exited, 5000));
        cr_log_info("vm_stop -> on_exit: %llu ms", (unsigned long long)(c.exit_at - t0));
        cr_assert_eq(c.status, 0, "QMP quit should exit 0");
        cr_assert_lt(c.exit_at - t0, 2500, "quit did not work, the grace kill did");
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0, "stop after exit must be harmless");
        for (int i = 0; i < 20; i++)
                uv_run(&c.loop, UV_RUN_NOWAIT);
        cr_assert_eq(c.exit_count, 1);
        ctx_done(&c);
}

Test(hv_qemu, stop_kills_a_qemu_that_ignores_quit_after_grace, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);
        cr_assert_eq(kill(pid, SIGSTOP), 0);    /* a wedged QEMU: QMP quit goes unanswered */
        uint64_t t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 500), 0);
        cr_assert(run_until(&c, cond_exited, 5000));
        cr_assert_eq(c.status, -SIGKILL);
        cr_assert_geq(c.exit_at - t0, 450);
        cr_assert_lt(c.exit_at - t0, 2000);
        ctx_done(&c);
}

Test(hv_qemu, guest_poweroff_gives_shutdown_event_and_exit, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        spec.cmdline = "console=ttyS0 slate.probe quiet";     /* the test guest powers off at once */
        start_and_wait_qmp(&c, &spec);
        cr_assert(run_until(&c, cond_exited, 30000), "guest did not power off");
        cr_assert_str_eq(c.last_event, "SHUTDOWN");
        cr_assert_eq(c.status, 0);
        ctx_done(&c);
}

Test(hv_qemu, qemu_failing_at_start_reports_exit, .timeout = 30)
{
        Ctx c;
        ctx_init(&c);
        HvVmSpec spec = spec_for(&c);   /* no overlay created: QEMU cannot open the disk */
        cr_assert_eq(vm_start_tracked(&c, &spec), 0);
        cr_assert(run_until(&c, cond_exited, 10000));
        cr_assert_eq(c.status, 1);
        ctx_done(&c);
}

Test(hv_qemu, free_leaves_vm_running_and_adopt_takes_it_over, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);

        /* "slated restarts": forget the VM without stopping it. */
        hv_qemu_driver.vm_free(c.vm);
        c.vm = NULL;
        for (int i = 0; i < 100; i++) {
                uv_run(&c.loop, UV_RUN_NOWAIT);
                usleep(3000);
        }
        cr_assert_eq(kill(pid, 0), 0, "vm_free killed the VM");
        cr_assert(!c.exited, "on_exit after vm_free");

        HvVm *other;
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-2", c.run_dir, pid, &callbacks, &c, &other), -ESRCH,
                     "adopted a VM under the wrong id");
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-1", "/tmp/elsewhere", pid, &callbacks, &c, &other),
                     -ESRCH, "adopted a VM from another run dir");
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-1", c.run_dir, getpid(), &callbacks, &c, &other),
                     -ESRCH, "adopted a process that is not QEMU");

        uint64_t t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-1", c.run_dir, pid, &callbacks, &c, &c.vm), 0);
        cr_assert_eq(hv_qemu_driver.vm_pid(c.vm), pid);
        cr_assert(run_until(&c, cond_qmp_ready, 5000), "no QMP on the adopted VM");
        cr_log_info("adopt -> QMP ready: %llu ms", (unsigned long long)(now_ms() - t0));
        assert_running(&c);
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0);
        cr_assert(run_until(&c, cond_exited, 5000), "no on_exit for the adopted VM");
        cr_assert_eq(c.exit_count, 1);
        cr_assert_eq(kill(pid, 0), -1, "adopted QEMU still running");
        ctx_done(&c);
}

/* After a slated restart the monitor is reached by path again: a qmp.sock that leads to another
 * process's socket is refused before a byte is sent, and the adopted VM is killed (by its pidfd)
 * and reported gone at once. */
Test(hv_qemu, adopted_vm_whose_monitor_leads_elsewhere_is_killed_and_reports_exit, .timeout = 60)
{
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        HvVmSpec spec = spec_for(&c);
        start_and_wait_qmp(&c, &spec);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);
        hv_qemu_driver.vm_free(c.vm);
        int lfd = plant_foreign_socket(&c, HV_QMP_SOCKET);
        uint64_t t0 = now_ms();
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-1", c.run_dir, pid, &callbacks, &c, &c.vm), 0);
        cr_assert(run_until(&c, cond_exited, 3000), "an adopted VM whose monitor leads elsewhere still runs");
        cr_assert_lt(now_ms() - t0, 1000);
        cr_assert_eq(c.status, -SIGKILL);       /* our own child here, so the status is visible */
        cr_assert_null(hv_qemu_vm_qmp(c.vm), "the driver kept a monitor that is not QEMU's");
        assert_reached_but_told_nothing(lfd);
        cr_assert_eq(hv_qemu_driver.vm_adopt(&c.loop, "desk-1", c.run_dir, pid, &callbacks, &c,
                                             &(HvVm *){ NULL }), -ESRCH, "adopted a dead VM");
        ctx_done(&c);
}

Test(hv_qemu, runs_as_the_given_uid_when_root, .timeout = 60)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to switch uid");
        Ctx c;
        ctx_init(&c);
        overlay_plain(&c);
        const uid_t uid = 64123;
        cr_assert_eq(chown(c.run_dir, uid, uid), 0);
        cr_assert_eq(chown(c.overlay, uid, uid), 0);
        cr_assert_eq(chmod(c.dir, 0755), 0);
        HvVmSpec spec = spec_for(&c);
        spec.uid = uid;
        spec.gid = uid;
        start_and_wait_qmp(&c, &spec);
        pid_t pid = hv_qemu_driver.vm_pid(c.vm);
        _cleanup_free_ char *status = xasprintf("/proc/%d/status", (int)pid);
        cr_assert(proc_file_contains(pid, "status", "Uid:\t64123\t64123\t64123"), "QEMU not running as uid");
        cr_assert(proc_file_contains(pid, "status", "NoNewPrivs:\t1"));
        cr_assert(proc_file_contains(pid, "status", "Groups:\t \n"), "supplementary groups kept");
        cr_assert_eq(hv_qemu_driver.vm_stop(c.vm, 3000), 0);
        cr_assert(run_until(&c, cond_exited, 5000));
        ctx_done(&c);
}

Test(hv_probe, forced_modes_do_not_probe)
{
        HvAccel a = HV_ACCEL_KVM;
        _cleanup_free_ char *why = NULL;
        cr_assert_eq(hv_qemu_probe_accel("tcg", NULL, NULL, NULL, NULL, &a, &why), 0);
        cr_assert_eq(a, HV_ACCEL_TCG);
        cr_assert_not_null(why);
        cr_assert_eq(hv_qemu_probe_accel("bogus", NULL, NULL, NULL, NULL, &a, &(char *){ NULL }), -EINVAL);
}

/* This host's KVM hangs guests (research §1): auto must land on TCG, say why, and cache it. */
Test(hv_probe, auto_picks_a_working_accelerator_and_caches_it, .timeout = 120)
{
        char dir[] = "/tmp/slate-probetest.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *cache = xasprintf("%s/accel", dir);
        _cleanup_free_ char *kernel = xasprintf("%s/vmlinux", guest_dir);
        _cleanup_free_ char *initrd = xasprintf("%s/initrd.img", guest_dir);
        HvAccel a;
        char *why = NULL;
        uint64_t t0 = now_ms();
        int r = hv_qemu_probe_accel("auto", NULL, kernel, initrd, cache, &a, &why);
        cr_assert_eq(r, 0, "probe failed: %s", strerror(-r));
        uint64_t dt = now_ms() - t0;
        cr_log_info("probe: %s after %llu ms: %s", a == HV_ACCEL_KVM ? "kvm" : "tcg", (unsigned long long)dt, why);
        cr_assert_not_null(why);
        cr_assert(strstr(why, a == HV_ACCEL_KVM ? "KVM" : "TCG"), "reason does not name the choice: %s", why);
        free(why);
        _cleanup_free_ char *line = NULL;
        cr_assert_eq(read_file_max(cache, 4096, &line, NULL), 0);
        cr_assert(strstr(line, a == HV_ACCEL_KVM ? " kvm\n" : " tcg\n"), "cache: %s", line);

        HvAccel b;
        t0 = now_ms();
        r = hv_qemu_probe_accel("auto", NULL, kernel, initrd, cache, &b, &why);
        cr_assert_eq(r, 0, "cached probe failed: %s", strerror(-r));
        cr_assert_eq(b, a);
        cr_assert_lt(now_ms() - t0, 2000, "cached result not used");
        cr_assert(strstr(why, "cached"), "%s", why);
        free(why);
        rm_rf(dir);
}

int main(int argc, char **argv)
{
        const char *b = getenv("SLATE_BUILDDIR");
        if (access(QEMU_SYSTEM_PATH, X_OK) < 0) {
                printf("SKIP: %s not found (apt-get install qemu-system-x86)\n", QEMU_SYSTEM_PATH);
                return 77;
        }
        if (!b) {
                printf("SKIP: SLATE_BUILDDIR not set (run through make check)\n");
                return 77;
        }
        static const char *const files[] = { "vmlinux", "initrd.img", "disk.qcow2" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", guest_dir, files[i]);
                if (access(p, R_OK) < 0) {
                        printf("SKIP: test guest file %s missing (build it: make -C %s tests/guest)\n", p, b);
                        return 77;
                }
        }
        log_set_level(LOG_LVL_INFO);
        struct criterion_test_set *tests = criterion_initialize();
        int ok = 1;
        if (criterion_handle_args(argc, argv, true))
                ok = criterion_run_all_tests(tests);
        criterion_finalize(tests);
        return ok ? 0 : 1;
}
