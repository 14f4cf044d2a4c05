/* slate-agent's session disks end to end: the tiny test guest under real QEMU (TCG here), the two
 * slot disks (slate-apps: app layers back to back in one VMDK of FLAT extents; slate-profile: the
 * profile) filled through the QEMU driver as slated does, SESSION_START with each disk as an extent of its slot, and the
 * test guest's session hook (tests/guest/session-hook) telling what the session saw.
 * Exits 77 with a reason when QEMU, mkfs.ext4 or the guest build is missing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent/proto.h"
#include "broker/hv.h"
#include "broker/hv_qemu.h"
#include "broker/hv_qmp.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

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
        char dir[64];
        HvVm *vm;
        bool exited;
        bool disk_done;
        int disk_r;
        char disk_error[256];
        int agent_fd;
        AgentParser parser;
        uint8_t rbuf[4096];     /* bytes read from agent_fd, not parsed yet: one connection's */
        size_t have, off;
} Ctx;

/* A failed assertion skips the cleanup; QEMU runs in its own session and would outlive the test. */
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

TestSuite(agent_disks, .fini = teardown);

static void on_exit_cb(HvVm *vm, int status, void *ud) { ((Ctx *)ud)->exited = true; }
static void on_event_cb(HvVm *vm, const char *event, const char *data, void *ud) {}
static const HvCallbacks callbacks = { on_exit_cb, on_event_cb };

static int sh(const char *cmd)
{
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

static bool cond_qmp_ready(Ctx *c)
{
        Qmp *q = hv_qemu_vm_qmp(c->vm);
        return q && qmp_is_ready(q);
}
static bool cond_disk_done(Ctx *c) { return c->disk_done; }
static bool cond_exited(Ctx *c) { return c->exited; }

static void on_disk_done(HvVm *vm, int r, const char *error, void *ud)
{
        Ctx *c = ud;
        c->disk_done = true;
        c->disk_r = r;
        snprintf(c->disk_error, sizeof c->disk_error, "%s", error ? error : "");
}

/* Boots the guest on a fresh overlay of the test disk and connects to its agent. */
static void boot(Ctx *c)
{
        _cleanup_free_ char *golden = xasprintf("%s/disk.qcow2", guest_dir);
        _cleanup_free_ char *overlay = xasprintf("%s/overlay.qcow2", c->dir);
        _cleanup_free_ char *run_dir = xasprintf("%s/run", c->dir);
        _cleanup_free_ char *cmd = xasprintf(QEMU_IMG_PATH " create -q -f qcow2 -F qcow2 -b %s %s", golden, overlay);
        cr_assert_eq(sh(cmd), 0, "%s", cmd);
        mkdir(run_dir, 0700);
        _cleanup_free_ char *kernel = xasprintf("%s/vmlinux", guest_dir), *initrd = xasprintf("%s/initrd.img", guest_dir);
        _cleanup_free_ char *p = xasprintf("%s/cmdline", guest_dir);
        _cleanup_free_ char *cmdline = NULL;
        cr_assert_eq(read_file_max(p, 4096, &cmdline, NULL), 0);
        cmdline[strcspn(cmdline, "\n")] = 0;
        HvVmSpec spec = { .id = "desk-1", .run_dir = run_dir, .disk = overlay, .kernel = kernel, .initrd = initrd,
                          .cmdline = cmdline, .memory_mb = 128, .vcpus = 1, .accel = HV_ACCEL_TCG,
                          .uid = (uid_t)-1, .gid = (gid_t)-1 };
        c->exited = false;
        cr_assert_eq(hv_qemu_driver.vm_start(&c->loop, &spec, &callbacks, c, &c->vm), 0);
        live_pid = hv_qemu_driver.vm_pid(c->vm);
        cr_assert(run_until(c, cond_qmp_ready, 10000), "QMP not ready 10 s after spawn");
        cr_assert_eq(hv_qemu_driver.agent_open(c->vm, &c->agent_fd), 0);
        agent_parser_init(&c->parser, 0);
        c->have = c->off = 0;   /* nothing of an earlier VM's connection */
}

static void shutdown_vm(Ctx *c)
{
        close(c->agent_fd);
        agent_parser_free(&c->parser);
        cr_assert_eq(hv_qemu_driver.vm_stop(c->vm, 3000), 0);
        cr_assert(run_until(c, cond_exited, 5000));
        hv_qemu_driver.vm_free(c->vm);
        c->vm = NULL;
        for (int i = 0; i < 5; i++)
                uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* The next message from the agent that is not a heartbeat, within timeout_ms. */
static AgentMsg agent_recv(Ctx *c, unsigned timeout_ms)
{
        uint64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                while (c->off < c->have) {
                        size_t used = 0;
                        AgentFrame f;
                        int r = agent_parser_feed(&c->parser, c->rbuf + c->off, c->have - c->off, &used, &f);
                        cr_assert_geq(r, 0, "agent protocol error");
                        c->off += used;
                        if (r == 0)
                                break;
                        AgentMsg m;
                        cr_assert_eq(agent_msg_decode(&f, &m), 0, "malformed %s", agent_msg_type_name(f.type));
                        if (m.type != AGENT_MSG_HEARTBEAT)
                                return m;
                }
                c->have = c->off = 0;
                uint64_t now = now_ms();
                cr_assert_lt(now, deadline, "the agent said nothing more in %u ms", timeout_ms);
                /* The driver's loop runs too: QMP answers (slot fills) arrive meanwhile. */
                uv_run(&c->loop, UV_RUN_NOWAIT);
                struct pollfd pfd = { .fd = c->agent_fd, .events = POLLIN };
                if (poll(&pfd, 1, 20) <= 0)
                        continue;
                ssize_t n = read(c->agent_fd, c->rbuf, sizeof c->rbuf);
                cr_assert_gt(n, 0, "agent socket closed");
                c->have = (size_t)n;
        }
}

static void agent_send_msg(Ctx *c, const AgentMsg *m)
{
        Writer w;
        writer_init(&w, AGENT_HEADER_SIZE + AGENT_FRAME_MAX);
        cr_assert_eq(agent_msg_encode(m, &w), 0);
        cr_assert_eq(write(c->agent_fd, w.data, w.len), (ssize_t)w.len);
        writer_free(&w);
}

/* Puts an image (raw or vmdk) into one of the VM's slots through the QEMU driver, as slated does
 * at logon: the guest is not told, and has the slot's old bytes (zeros) in its page cache. */
static void attach(Ctx *c, HvSlot slot, const char *path, const char *format)
{
        c->disk_done = false;
        HvDisk d = { .slot = slot, .path = path, .format = format };
        cr_assert_eq(hv_qemu_driver.disk_attach(c->vm, &d, on_disk_done, c), 0);
        cr_assert(run_until(c, cond_disk_done, 10000), "attach not answered");
        cr_assert_eq(c->disk_r, 0, "attach %s: %s", path, c->disk_error);
}

/* Points a filled slot at another image, as the next logon on a desktop would. */
static void repoint(Ctx *c, HvSlot slot, const char *path, const char *format)
{
        c->disk_done = false;
        cr_assert_eq(hv_qemu_driver.disk_detach(c->vm, slot, on_disk_done, c), 0);
        cr_assert(run_until(c, cond_disk_done, 10000), "detach not answered");
        cr_assert_eq(c->disk_r, 0, "detach: %s", c->disk_error);
        attach(c, slot, path, format);
}

/* The next session state, past the test desktop's USABLE (it follows each STARTED: the session is
 * drawn), which these tests do not wait for. */
static AgentMsg recv_state(Ctx *c, unsigned timeout_ms)
{
        for (;;) {
                AgentMsg r = agent_recv(c, timeout_ms);
                cr_assert_eq(r.type, AGENT_MSG_SESSION_STATE);
                if (r.session_state.state != AGENT_SESSION_USABLE)
                        return r;
        }
}

static AgentMsg session_start(Ctx *c, const char *user, unsigned n, const AgentDisk *disks, unsigned timeout_ms)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_START,
                       .session_start = { .uid = 1000, .width = 1280, .height = 800, .n_disks = (uint8_t)n } };
        snprintf(m.session_start.user, sizeof m.session_start.user, "%s", user);
        memcpy(m.session_start.disks, disks, n * sizeof *disks);
        uint64_t t0 = now_ms();
        agent_send_msg(c, &m);
        AgentMsg r = recv_state(c, timeout_ms);
        cr_log_info("SESSION_START %s -> %u in %llu ms: %s", user, r.session_state.state,
                    (unsigned long long)(now_ms() - t0), r.session_state.detail);
        return r;
}

static void session_stop(Ctx *c)
{
        uint64_t t0 = now_ms();
        agent_send_msg(c, &(AgentMsg){ .type = AGENT_MSG_SESSION_STOP, .session_stop = { .reason = "logoff" } });
        AgentMsg r = recv_state(c, 15000);
        cr_assert_eq(r.session_state.state, AGENT_SESSION_STOPPED, "stop: %u %s", r.session_state.state,
                     r.session_state.detail);
        cr_log_info("SESSION_STOP -> STOPPED in %llu ms: %s", (unsigned long long)(now_ms() - t0),
                    r.session_state.detail);
}

/* The word after key= in detail, e.g. "home=" → "new:…". */
static void word_after(const char *detail, const char *key, char *out, size_t size)
{
        const char *p = strstr(detail, key);
        cr_assert_not_null(p, "no %s in \"%s\"", key, detail);
        p += strlen(key);
        size_t n = strcspn(p, " ;");
        cr_assert_lt(n, size);
        memcpy(out, p, n);
        out[n] = 0;
}

/* The session's images: two app layers as `slatectl app add` would make them (trees with
 * usr/bin/slate-app-hello, opt/ and etc/; usr/bin/slate-app-two), 1 MiB of zeros (what a slot
 * holds past its data), and a fresh profile disk (ext4, root owned by root). */
typedef struct Images {
        char *layer, *layer2, *zeros, *profile, *apps;  /* apps: the slate-apps VMDK descriptor */
        uint64_t layer_size, layer2_size, zeros_size, profile_size;
} Images;

static uint64_t file_size(const char *path)
{
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
        return (uint64_t)st.st_size;
}

/* The slate-apps slot as slated makes it at logon: the images back to back, a VMDK descriptor with
 * one FLAT extent each (in 512-byte sectors). QEMU takes only RW there; the node is opened read-only. */
static char *apps_vmdk(Ctx *c, const char *const *images, unsigned n)
{
        char *path = xasprintf("%s/apps.vmdk", c->dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                   "createType=\"monolithicFlat\"\n");
        for (unsigned i = 0; i < n; i++) {
                uint64_t size = file_size(images[i]);
                cr_assert_eq(size % AGENT_DISK_ALIGN, 0, "%s: %llu bytes", images[i], (unsigned long long)size);
                fprintf(f, "RW %llu FLAT \"%s\" 0\n", (unsigned long long)(size / 512), images[i]);
        }
        cr_assert_eq(fclose(f), 0);
        return path;
}

static void make_images(Ctx *c, Images *im)
{
        im->layer = xasprintf("%s/layer.img", c->dir);
        im->layer2 = xasprintf("%s/layer2.img", c->dir);
        im->zeros = xasprintf("%s/zeros.img", c->dir);
        im->profile = xasprintf("%s/profile.img", c->dir);
        _cleanup_free_ char *cmd = xasprintf(
                "set -e; t=%s/tree; mkdir -p $t/usr/bin $t/opt/hello/bin $t/etc/hello; "
                "printf '#!/bin/sh\\necho hello from the layer\\n' >$t/usr/bin/slate-app-hello; "
                "printf '#!/bin/sh\\necho opt\\n' >$t/opt/hello/bin/slate-app-opt; "
                "chmod 755 $t/usr/bin/slate-app-hello $t/opt/hello/bin/slate-app-opt; echo 1 >$t/etc/hello/conf; "
                "mkfs.ext4 -q -F -E root_owner=0:0 -d $t %s 8M; "
                "t=%s/tree2; mkdir -p $t/usr/bin; printf '#!/bin/sh\\necho two\\n' >$t/usr/bin/slate-app-two; "
                "chmod 755 $t/usr/bin/slate-app-two; mkfs.ext4 -q -F -E root_owner=0:0 -d $t %s 8M; "
                "truncate -s 1M %s; mkfs.ext4 -q -F -E root_owner=0:0 %s 16M",
                c->dir, im->layer, c->dir, im->layer2, im->zeros, im->profile);
        cr_assert_eq(sh(cmd), 0, "making the images failed");
        im->layer_size = file_size(im->layer);
        im->layer2_size = file_size(im->layer2);
        im->zeros_size = file_size(im->zeros);
        im->profile_size = file_size(im->profile);
        const char *const apps[] = { im->layer, im->layer2, im->zeros };
        im->apps = apps_vmdk(c, apps, ELEMENTSOF(apps));
}

static void images_free(Images *im)
{
        free(im->layer);
        free(im->layer2);
        free(im->zeros);
        free(im->profile);
        free(im->apps);
}

/* One boot: a profile and two layers mounted before the session (the hook sees both layers' apps
 * and a new home), gone after STOP, and a second logon finds the same home and the apps again. A
 * start that cannot be honoured (a bad name, an extent past the slot's end or not ext4) fails
 * with the reason and leaves nothing mounted and no loop device bound. */
Test(agent_disks, profile_and_layers_are_mounted_for_the_session_and_kept_across_logons, .timeout = 120)
{
        Ctx c = { .agent_fd = -1 };
        signal(SIGPIPE, SIG_IGN);
        cr_assert_eq(uv_loop_init(&c.loop), 0);
        snprintf(c.dir, sizeof c.dir, "/tmp/slate-disktest.XXXXXX");
        cr_assert_not_null(mkdtemp(c.dir));
        snprintf(live_dir, sizeof live_dir, "%s", c.dir);
        Images im;
        make_images(&c, &im);

        uint64_t t0 = now_ms();
        boot(&c);
        AgentMsg m = agent_recv(&c, 60000);
        cr_assert_eq(m.type, AGENT_MSG_HELLO);
        cr_assert(m.hello.capabilities & AGENT_CAP_DISKS, "the agent does not announce AGENT_CAP_DISKS");
        cr_assert(m.hello.capabilities & AGENT_CAP_DISK_SLOTS, "the agent does not announce AGENT_CAP_DISK_SLOTS");
        cr_assert_eq(agent_recv(&c, 10000).type, AGENT_MSG_READY);
        cr_log_info("boot -> READY: %llu ms", (unsigned long long)(now_ms() - t0));

        /* The slots, then SESSION_START at once (the agent waits for a disk that is not there yet). */
        attach(&c, HV_SLOT_APPS, im.apps, "vmdk");
        attach(&c, HV_SLOT_PROFILE, im.profile, "raw");
        const AgentDisk disks[] = {
                { AGENT_DISK_LAYER, "slate-apps", "hello", 0, im.layer_size },
                { AGENT_DISK_LAYER, "slate-apps", "two", im.layer_size, im.layer2_size },
                { AGENT_DISK_PROFILE, "slate-profile", "", 0, im.profile_size },
        };
        m = session_start(&c, "alice", 3, disks, 30000);
        const char *d = m.session_state.detail;
        cr_assert_eq(m.session_state.state, AGENT_SESSION_STARTED, "start: %s", d);
        cr_assert(strstr(d, "profile /home/alice (new); layers hello,two; disks "), "detail: %s", d);
        cr_assert(strstr(d, " app:slate-app-hello=hello"), "the first layer's app is not on /usr/bin: %s", d);
        cr_assert(strstr(d, " app:slate-app-two=two"), "the second layer's app is not on /usr/bin: %s", d);
        cr_assert(strstr(d, " app:slate-app-opt=opt"), "the layer's /opt is not merged: %s", d);
        cr_assert(strstr(d, " outside=absent"), "detail: %s", d);
        cr_assert(strstr(d, " loops=3 "), "not one loop device per disk: %s", d);
        char home1[64], home2[64];
        word_after(d, "home=", home1, sizeof home1);
        cr_assert(!strncmp(home1, "new:", 4) && strlen(home1) == 4 + 36, "home=%s: no fresh canary", home1);
        session_stop(&c);

        /* Nothing is left mounted after STOP, and a start that cannot be honoured fails cleanly. */
        const AgentDisk bad_name[] = { { AGENT_DISK_LAYER, "slate-apps", "..", 0, im.layer_size } };
        m = session_start(&c, "alice", 1, bad_name, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_FAILED, "start with layer '..': %s", m.session_state.detail);
        cr_assert(strstr(m.session_state.detail, "not a directory name"), "detail: %s", m.session_state.detail);

        uint64_t apps_size = im.layer_size + im.layer2_size + im.zeros_size;
        const AgentDisk past_end[] = { disks[0], { AGENT_DISK_LAYER, "slate-apps", "far", apps_size, 4096 } };
        m = session_start(&c, "alice", 2, past_end, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_FAILED, "start with an extent past the end: %s",
                     m.session_state.detail);
        /* The slot shows the guest its boot size (1 TiB): past the stack, reads fail. */
        cr_assert(strstr(m.session_state.detail, "layer far (slate-apps ") &&
                  strstr(m.session_state.detail, "Input/output error"), "detail: %s", m.session_state.detail);
        const AgentDisk past_slot[] = { disks[0], { AGENT_DISK_LAYER, "slate-apps", "far", HV_SLOT_SIZE, 4096 } };
        m = session_start(&c, "alice", 2, past_slot, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_FAILED, "start with an extent past the slot: %s",
                     m.session_state.detail);
        cr_assert(strstr(m.session_state.detail, "extent beyond the end of"), "detail: %s", m.session_state.detail);

        /* The first layer is mounted by the time the second turns out not to be ext4: it is undone. */
        const AgentDisk not_ext4[] = { disks[0], { AGENT_DISK_LAYER, "slate-apps", "zeros",
                                                   im.layer_size + im.layer2_size, im.zeros_size } };
        m = session_start(&c, "alice", 2, not_ext4, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_FAILED, "start with zeros for a layer: %s",
                     m.session_state.detail);
        cr_assert(strstr(m.session_state.detail, "layer zeros (slate-apps ") &&
                  strstr(m.session_state.detail, "not an ext4 filesystem"), "detail: %s", m.session_state.detail);

        /* ...and the next logon sees the same home (canary kept on the profile disk), the root fs's
         * file from the first session, the apps again, and no loop device from the failed starts. */
        m = session_start(&c, "alice", 3, disks, 30000);
        d = m.session_state.detail;
        cr_assert_eq(m.session_state.state, AGENT_SESSION_STARTED, "second start: %s", d);
        word_after(d, "home=", home2, sizeof home2);
        cr_assert_str_eq(home2, home1 + 4, "the profile did not keep its canary: %s", d);
        cr_assert(strstr(d, " outside=present"), "detail: %s", d);
        cr_assert(strstr(d, " loops=3 "), "a failed start left a loop device bound: %s", d);
        cr_assert(strstr(d, " app:slate-app-hello=hello"), "detail: %s", d);
        cr_assert(strstr(d, " app:slate-app-two=two"), "detail: %s", d);
        cr_assert_null(strstr(d, "(new)"), "the profile was taken for a new one: %s", d);
        session_stop(&c);

        /* Without disks: exactly the old behaviour (no home, no app), and every loop device gone. */
        m = session_start(&c, "bob", 0, NULL, 30000);
        d = m.session_state.detail;
        cr_assert_eq(m.session_state.state, AGENT_SESSION_STARTED, "start without disks: %s", d);
        cr_assert(!strncmp(d, "1280x800; hook ", 15) && strstr(d, " ms: home=none"), "detail: %s", d);
        cr_assert(strstr(d, " loops=0"), "a loop device outlived its session: %s", d);
        cr_assert_null(strstr(d, "app:slate-app-hello"), "the layer is still merged: %s", d);
        session_stop(&c);

        shutdown_vm(&c);
        uv_loop_close(&c.loop);
        rm_rf(c.dir);
        live_dir[0] = 0;
        images_free(&im);
}

/* s_feature_incompat's RECOVER bit of an ext4 image: set while mounted, cleared by a clean unmount. */
static bool image_needs_recovery(const char *path)
{
        uint8_t sb[4];
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        cr_assert_eq(fseek(f, 1024 + 0x60, SEEK_SET), 0);
        cr_assert_eq(fread(sb, 1, 4, f), 4);
        fclose(f);
        return sb[0] & 0x4;
}

/* The profile slot is plugged in holding zeros, which the guest reads (a start fails: not ext4),
 * then repointed at the profile as slated does at logon: the next start mounts it. The VM dies
 * while the session writes to the profile (the hook's writer churn): the next logon on a new VM
 * replays the journal and finds the home as it was; a stop while the home is busy ends what
 * holds it and leaves the disk clean. */
Test(agent_disks, repointed_profile_slot_survives_a_killed_vm_and_a_busy_home_is_unmounted_cleanly, .timeout = 120)
{
        Ctx c = { .agent_fd = -1 };
        signal(SIGPIPE, SIG_IGN);
        cr_assert_eq(uv_loop_init(&c.loop), 0);
        snprintf(c.dir, sizeof c.dir, "/tmp/slate-disktest.XXXXXX");
        cr_assert_not_null(mkdtemp(c.dir));
        snprintf(live_dir, sizeof live_dir, "%s", c.dir);
        Images im;
        make_images(&c, &im);
        const char *profile = im.profile;
        const AgentDisk disks[] = { { AGENT_DISK_PROFILE, "slate-profile", "", 0, im.profile_size } };
        char home1[64], home2[64];

        boot(&c);
        cr_assert_eq(agent_recv(&c, 60000).type, AGENT_MSG_HELLO);
        cr_assert_eq(agent_recv(&c, 10000).type, AGENT_MSG_READY);
        _cleanup_free_ char *blank = xasprintf("%s/blank.img", c.dir);
        int fd = open(blank, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)im.profile_size), 0);
        close(fd);
        attach(&c, HV_SLOT_PROFILE, blank, "raw");
        AgentMsg m = session_start(&c, "writer1", 1, disks, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_FAILED, "start on zeros: %s", m.session_state.detail);
        cr_assert(strstr(m.session_state.detail, "not an ext4 filesystem"), "detail: %s", m.session_state.detail);
        repoint(&c, HV_SLOT_PROFILE, profile, "raw");
        m = session_start(&c, "writer1", 1, disks, 30000);
        cr_assert_eq(m.session_state.state, AGENT_SESSION_STARTED, "start after the repoint: %s", m.session_state.detail);
        word_after(m.session_state.detail, "home=new:", home1, sizeof home1);
        /* Let the churn write a few rounds, then pull the plug. */
        usleep(1500 * 1000);
        kill(hv_qemu_driver.vm_pid(c.vm), SIGKILL);
        cr_assert(run_until(&c, cond_exited, 5000));
        close(c.agent_fd);
        agent_parser_free(&c.parser);
        hv_qemu_driver.vm_free(c.vm);
        c.vm = NULL;
        cr_assert(image_needs_recovery(profile), "the profile looks cleanly unmounted after the VM was killed");

        /* A new desktop for the next logon, as slated would give. */
        _cleanup_free_ char *run = xasprintf("%s/run", c.dir), *ov = xasprintf("%s/overlay.qcow2", c.dir);
        rm_rf(run);
        unlink(ov);
        boot(&c);
        cr_assert_eq(agent_recv(&c, 60000).type, AGENT_MSG_HELLO);
        cr_assert_eq(agent_recv(&c, 10000).type, AGENT_MSG_READY);
        attach(&c, HV_SLOT_PROFILE, profile, "raw");
        m = session_start(&c, "writer1", 1, disks, 30000);
        const char *d = m.session_state.detail;
        cr_assert_eq(m.session_state.state, AGENT_SESSION_STARTED, "start after the crash: %s", d);
        cr_assert(strstr(d, "profile /home/writer1 (journal replayed)"), "detail: %s", d);
        word_after(d, "home=", home2, sizeof home2);
        cr_assert_str_eq(home2, home1, "the home's canary is lost: %s", d);

        /* The churn runs again with its cwd in the home: STOP must still unmount it cleanly. */
        usleep(500 * 1000);
        session_stop(&c);
        shutdown_vm(&c);
        cr_assert_not(image_needs_recovery(profile), "the profile was not cleanly unmounted at STOP");
        uv_loop_close(&c.loop);
        rm_rf(c.dir);
        live_dir[0] = 0;
        images_free(&im);
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
        if (system("command -v mkfs.ext4 >/dev/null 2>&1") != 0) {
                printf("SKIP: mkfs.ext4 not found (apt-get install e2fsprogs)\n");
                return 77;
        }
        static const char *const files[] = { "vmlinux", "initrd.img", "disk.qcow2" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", guest_dir, files[i]);
                if (access(p, R_OK) < 0) {
                        printf("SKIP: test guest file %s missing (build it: make -C %s guest)\n", p, b);
                        return 77;
                }
        }
        log_set_level(LOG_LVL_WARN);
        struct criterion_test_set *tests = criterion_initialize();
        int ok = 1;
        if (criterion_handle_args(argc, argv, true))
                ok = criterion_run_all_tests(tests);
        criterion_finalize(tests);
        return ok ? 0 : 1;
}
