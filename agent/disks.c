/* slate-agent's session disks: each is an extent of a slot disk (virtio-blk, there since boot,
 * found by its serial) that the host pointed at the session's images; the agent drops the slot's
 * stale page cache, maps each extent with a loop device (loopdev.c) and mounts the app layers
 * (read-only, merged over /usr, /opt and /etc with overlayfs) and the profile (/home/USER) before
 * the session starts, and takes them down after it ends. Syscalls only (the agent is static and
 * the guest may have no mount binary). It must never leave a half-mounted set or a bound loop
 * device behind a failed start, nor signal PID 1 or itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent/agent_int.h"
#include "agent/loopdev.h"
#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"

/* The system directories app layers are merged over, bottom of each merge being the system's own. */
static const char *const merged_dirs[] = { "usr", "opt", "etc" };
#define MERGED_ETC 2

/* ext4 superblock fields (1024 bytes in): enough to tell a disk that was not cleanly unmounted. */
#define EXT4_SB_OFFSET 1024
#define EXT4_SB_MAGIC_AT 0x38
#define EXT4_SB_STATE_AT 0x3a
#define EXT4_SB_INCOMPAT_AT 0x60
#define EXT4_SB_BLOCKS_LO_AT 0x04
#define EXT4_SB_LOG_BLOCK_AT 0x18
#define EXT4_SB_BLOCKS_HI_AT 0x150
#define EXT4_INCOMPAT_64BIT 0x0080
/* linux/ext4.h is not a uapi header everywhere: the online resize ioctl, as the kernel has it. */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif
#define EXT4_MAGIC 0xef53
#define EXT4_STATE_VALID 0x0001
#define EXT4_STATE_ERROR 0x0002
#define EXT4_INCOMPAT_RECOVER 0x0004

/* While a start or stop keeps the loop busy (waiting for a disk, e2fsck, a busy home), the host
 * still hears from us: a HEARTBEAT of our own (seq 0) each second. slated treats any message as
 * a sign of life; its own pings queue on the port and are echoed once the loop runs again. */
static void disks_keepalive(Agent *a)
{
        uint64_t now = agent_uptime_ms();
        if (!a->connected || now - a->mounts.keepalive_ms < DISKS_KEEPALIVE_MS)
                return;
        a->mounts.keepalive_ms = now;
        agent_send(a, &(AgentMsg){ .type = AGENT_MSG_HEARTBEAT, .heartbeat = { .seq = 0, .uptime_ms = now } });
}

/* The /dev node of the virtio disk whose serial is serial: 0, -ENOENT (not there yet). */
static int disk_find(const char *serial, char *dev, size_t size)
{
        DIR *d = opendir("/sys/block");
        if (!d)
                return -errno;
        struct dirent *de;
        int r = -ENOENT;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "vd", 2) != 0)
                        continue;
                char path[sizeof "/sys/block//serial" + NAME_MAX], got[64];
                snprintf(path, sizeof path, "/sys/block/%s/serial", de->d_name);
                if (agent_read_line(path, got, sizeof got) < 0 || strcmp(got, serial) != 0)
                        continue;
                /* devtmpfs makes the node a moment after sysfs shows the disk. */
                struct stat st;
                if (snprintf(dev, size, "/dev/%s", de->d_name) < (int)size && stat(dev, &st) == 0 &&
                    S_ISBLK(st.st_mode))
                        r = 0;
                break;
        }
        closedir(d);
        return r;
}

/* "vdb=SERIAL vdc=?": what the guest has, for the message of a disk not found. */
static void disks_seen(char *out, size_t size)
{
        DIR *d = opendir("/sys/block");
        struct dirent *de;
        size_t len = 0;
        out[0] = 0;
        while (d && (de = readdir(d)) && len < size) {
                if (strncmp(de->d_name, "vd", 2) != 0)
                        continue;
                char path[sizeof "/sys/block//serial" + NAME_MAX], got[64];
                snprintf(path, sizeof path, "/sys/block/%s/serial", de->d_name);
                int r = agent_read_line(path, got, sizeof got);
                len += (size_t)snprintf(out + len, size - len, "%s%s=%s", len ? " " : "", de->d_name,
                                        r < 0 ? strerror(-r) : got);
        }
        if (d)
                closedir(d);
}

/* The slot of every disk of the message, polled for until DISKS_WAIT_MS: slots are there from
 * boot, but a disk hot-plugged just before SESSION_START (as the tests do) shows up a moment later. */
static int disks_find_all(Agent *a, const AgentDisk *disks, unsigned n, char devs[][32], char *err, size_t size)
{
        uint64_t t0 = agent_uptime_ms();
        for (;;) {
                const char *missing = NULL;
                for (unsigned i = 0; i < n; i++)
                        if (!devs[i][0] && disk_find(disks[i].serial, devs[i], sizeof devs[i]) < 0)
                                missing = disks[i].serial;
                if (!missing)
                        break;
                if (agent_uptime_ms() - t0 >= DISKS_WAIT_MS) {
                        char seen[160];
                        disks_seen(seen, sizeof seen);
                        snprintf(err, size, "disk %s not found in %u s (seen: %s)", missing, DISKS_WAIT_MS / 1000,
                                 seen[0] ? seen : "none");
                        return -ENODEV;
                }
                disks_keepalive(a);
                agent_sleep_ms(DISKS_POLL_MS);
        }
        log_agent("disks found in %llu ms", (unsigned long long)(agent_uptime_ms() - t0));
        return 0;
}

/* The kernel read the slots at boot, when they were zeros, and was not told that the host has
 * pointed them at the session's images since (same size, no event). It drops a disk's page cache
 * at the disk's last close, but something may still hold a slot open (a previous session's busy
 * profile, detached lazily, keeps its loop device and so the slot): drop the cache of each slot,
 * once, before anything reads it. A loop device without direct I/O reads through that cache. */
static int slots_flush(const AgentDisk *disks, unsigned n, char devs[][32], char *err, size_t size)
{
        for (unsigned i = 0; i < n; i++) {
                bool done = false;
                for (unsigned j = 0; j < i; j++)
                        done |= !strcmp(devs[j], devs[i]);
                if (done)
                        continue;
                _cleanup_close_ int fd = open(devs[i], O_RDONLY | O_CLOEXEC);
                if (fd < 0 || ioctl(fd, BLKFLSBUF) < 0) {
                        int e = errno;
                        snprintf(err, size, "slot %s (%s): dropping its page cache: %s", disks[i].serial, devs[i],
                                 strerror(e));
                        return -e;
                }
        }
        return 0;
}

/* "layer hello (slate-apps 0+8388608)": a disk in messages, its extent in bytes. */
static void disk_label(const AgentDisk *d, char *out, size_t size)
{
        snprintf(out, size, "%s%s%s (%s %llu+%llu)", d->kind == AGENT_DISK_LAYER ? "layer" : "profile",
                 d->kind == AGENT_DISK_LAYER ? " " : "", d->kind == AGENT_DISK_LAYER ? d->name : "", d->serial,
                 (unsigned long long)d->offset, (unsigned long long)d->length);
}

/* Maps the disk's extent of its slot (read-only for a layer) with a loop device. The slot is as
 * large as the host made it: an extent past its end is the host's mistake, said as such. */
static int disk_loop(const AgentDisk *d, const char *slot, const char *label, LoopDev *ret, char *err, size_t size)
{
        bool ro = d->kind == AGENT_DISK_LAYER;
        _cleanup_close_ int fd = open(slot, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        uint64_t bytes;
        int sector;
        if (fd < 0 || ioctl(fd, BLKGETSIZE64, &bytes) < 0 || ioctl(fd, BLKSSZGET, &sector) < 0) {
                int e = errno;
                snprintf(err, size, "%s: %s: %s", label, slot, strerror(e));
                return -e;
        }
        /* decode checked that offset + length does not wrap. */
        if (d->offset + d->length > bytes) {
                snprintf(err, size, "%s: extent beyond the end of %s (%llu bytes)", label, slot,
                         (unsigned long long)bytes);
                return -ERANGE;
        }
        /* The slot's own sector size, not 4096: an ext4 made with 1 KiB blocks (mkfs's choice for a
         * small image) mounts only on a device whose sectors are no larger. */
        char why[128];
        int r = loopdev_bind(fd, d->offset, d->length, (unsigned)sector, ro, ret, why, sizeof why);
        if (r < 0)
                snprintf(err, size, "%s: %s", label, why);
        return r;
}

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Copies src to dst (replaced), keeping the mode: dpkg's maintainer scripts must stay executable. */
static int file_copy(const char *src, const char *dst)
{
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
                return -errno;
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
        if (out < 0)
                return -errno;
        char buf[16384];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t)n) != n)
                        return -EIO;
        return n < 0 ? -errno : 0;
}

/* Appends src to dst, a blank line between them: dpkg's status is paragraphs. */
static int file_append(const char *src, const char *dst)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_max(src, 64u << 20, &data, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int out = open(dst, O_RDWR | O_APPEND | O_CLOEXEC);
        if (out < 0)
                return -errno;
        char tail[2] = "";
        off_t end = lseek(out, 0, SEEK_END);
        if (end >= 2 && pread(out, tail, 2, end - 2) == 2 && !(tail[0] == '\n' && tail[1] == '\n') &&
            write(out, tail[1] == '\n' ? "\n" : "\n\n", tail[1] == '\n' ? 1 : 2) < 0)
                return -errno;
        return write(out, data, len) == (ssize_t)len ? 0 : -EIO;
}

/* A Debian desktop's dpkg should know the layer's packages: their status paragraphs and files
 * lists. Best-effort: apps work without it, so a failure is only logged. */
static void layer_dpkg_merge(Agent *a, const char *root, const char *name)
{
        char src[PATH_MAX];
        if (snprintf(src, sizeof src, "%s/var/lib/dpkg/status-layer", root) >= (int)sizeof src)
                return;
        if (access(src, R_OK) == 0 && access("/var/lib/dpkg/status", W_OK) == 0) {
                int r = file_append(src, "/var/lib/dpkg/status");
                if (r < 0)
                        log_agent("layer %s: adding to /var/lib/dpkg/status: %s", name, strerror(-r));
        }
        if (snprintf(src, sizeof src, "%s/var/lib/dpkg/info", root) >= (int)sizeof src)
                return;
        if (!is_dir(src) || !is_dir("/var/lib/dpkg/info"))
                return;
        DIR *d = opendir(src);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char from[PATH_MAX], to[PATH_MAX];
                struct stat st;
                if (snprintf(from, sizeof from, "%s/%s", src, de->d_name) >= (int)sizeof from ||
                    lstat(from, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                snprintf(to, sizeof to, "/var/lib/dpkg/info/%s", de->d_name);
                disks_keepalive(a);
                int r = file_copy(from, to);
                if (r < 0)
                        log_agent("layer %s: %s: %s", name, to, strerror(-r));
        }
        if (d)
                closedir(d);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Reads dev's ext4 superblock: -EMEDIUMTYPE when it is not ext4; *recover: the journal needs
 * replaying (the VM died with it mounted); *unclean: that, or not marked clean, or errors. */
static int ext4_state(const char *dev, bool *recover, bool *unclean)
{
        _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
        uint8_t sb[1024];
        if (fd < 0)
                return -errno;
        ssize_t n = pread(fd, sb, sizeof sb, EXT4_SB_OFFSET);
        if (n < 0)
                return -errno;
        if (n != (ssize_t)sizeof sb || le16(sb + EXT4_SB_MAGIC_AT) != EXT4_MAGIC)
                return -EMEDIUMTYPE;
        uint16_t state = le16(sb + EXT4_SB_STATE_AT);
        *recover = le32(sb + EXT4_SB_INCOMPAT_AT) & EXT4_INCOMPAT_RECOVER;
        *unclean = *recover || !(state & EXT4_STATE_VALID) || (state & EXT4_STATE_ERROR);
        return 0;
}

/* The filesystem's size in blocks and its block size, from dev's superblock. */
static int ext4_size(const char *dev, uint64_t *blocks, uint32_t *block_size)
{
        _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
        uint8_t sb[1024];
        if (fd < 0)
                return -errno;
        if (pread(fd, sb, sizeof sb, EXT4_SB_OFFSET) != (ssize_t)sizeof sb || le16(sb + EXT4_SB_MAGIC_AT) != EXT4_MAGIC)
                return -EMEDIUMTYPE;
        uint32_t log = le32(sb + EXT4_SB_LOG_BLOCK_AT);
        if (log > 6)
                return -EMEDIUMTYPE;
        *block_size = 1024u << log;
        *blocks = le32(sb + EXT4_SB_BLOCKS_LO_AT);
        if (le32(sb + EXT4_SB_INCOMPAT_AT) & EXT4_INCOMPAT_64BIT)
                *blocks |= (uint64_t)le32(sb + EXT4_SB_BLOCKS_HI_AT) << 32;
        return 0;
}

/* The host grew the profile disk (a raised quota): the mounted filesystem grows to fill it,
 * online (no resize2fs needed in the guest). A failure keeps the old size and is only noted. */
static void profile_grow(const char *home, const char *dev, uint64_t length, char *note, size_t note_size)
{
        uint64_t blocks = 0;
        uint32_t bs = 4096;
        if (ext4_size(dev, &blocks, &bs) < 0 || length / bs <= blocks)
                return;
        uint64_t want = length / bs;
        _cleanup_close_ int fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        size_t l = strlen(note);
        if (fd < 0 || ioctl(fd, EXT4_IOC_RESIZE_FS, &want) < 0) {
                log_agent("profile %s: growing to %llu blocks: %s", home, (unsigned long long)want, strerror(errno));
                snprintf(note + l, note_size - l, " (not grown: %s)", strerror(errno));
                return;
        }
        log_agent("profile %s grown from %llu to %llu blocks", home, (unsigned long long)blocks, (unsigned long long)want);
        snprintf(note + l, note_size - l, " (grown to %llu MiB)", (unsigned long long)(length >> 20));
}

/* One layer on LAYERS_DIR/NAME, read-only and never replayed (noload): every VM shares its image.
 * Checked before its directory is made, so a layer that is not ext4 leaves nothing behind. */
static int layer_mount(const AgentDisk *d, const char *slot, char *err, size_t size)
{
        char dir[PATH_MAX], label[192];
        snprintf(dir, sizeof dir, LAYERS_DIR "/%s", d->name);
        disk_label(d, label, sizeof label);
        _cleanup_(loopdev_unbind) LoopDev loop = { .fd = -1 };
        int r = disk_loop(d, slot, label, &loop, err, size);
        if (r < 0)
                return r;
        bool recover, unclean;
        r = ext4_state(loop.path, &recover, &unclean);
        if (r < 0) {
                snprintf(err, size, "%s: %s", label, r == -EMEDIUMTYPE ? "not an ext4 filesystem" : strerror(-r));
                return r;
        }
        r = mkdir_p(dir, 0755);
        if (r == 0 && mount(loop.path, dir, "ext4", MS_RDONLY | MS_NODEV | MS_NOSUID, "noload") < 0) {
                r = -errno;
                rmdir(dir);
        }
        if (r < 0) {
                snprintf(err, size, "%s: mount %s on %s: %s", label, loop.path, dir, strerror(-r));
                return r;
        }
        loopdev_release(&loop);
        log_agent("%s: %s on %s%s", label, loop.path, dir, loop.direct_io ? " (direct I/O)" : "");
        return 0;
}

static int layers_mount(Agent *a, const AgentDisk *disks, unsigned n, char devs[][32], char *err, size_t size)
{
        AgentMounts *s = &a->mounts;
        for (unsigned i = 0; i < n; i++) {
                if (disks[i].kind != AGENT_DISK_LAYER)
                        continue;
                const char *name = disks[i].name;
                /* The protocol keeps '/' out; "." and ".." are names made of allowed characters. */
                if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
                        snprintf(err, size, "layer name \"%s\" is not a directory name", name);
                        return -EINVAL;
                }
                for (unsigned j = 0; j < s->n_layers; j++)
                        if (!strcmp(s->layers[j], name)) {
                                snprintf(err, size, "layer %s listed twice", name);
                                return -EINVAL;
                        }
                disks_keepalive(a);
                int r = layer_mount(&disks[i], devs[i], err, size);
                if (r < 0)
                        return r;
                snprintf(s->layers[s->n_layers++], sizeof s->layers[0], "%s", name);
        }
        /* The first layer listed is the top-most: first in lowerdir, above the system's own dir. */
        for (unsigned k = 0; k < ELEMENTSOF(merged_dirs); k++) {
                const char *x = merged_dirs[k];
                char lower[4096] = "lowerdir=", dir[PATH_MAX], target[32];
                size_t len = strlen(lower);
                unsigned used = 0;
                for (unsigned i = 0; i < s->n_layers; i++) {
                        snprintf(dir, sizeof dir, LAYERS_DIR "/%s/%s", s->layers[i], x);
                        if (!is_dir(dir))
                                continue;
                        len += (size_t)snprintf(lower + len, sizeof lower - len, "%s:", dir);
                        used++;
                }
                if (!used)
                        continue;
                snprintf(target, sizeof target, "/%s", x);
                snprintf(lower + len, sizeof lower - len, "%s", target);
                if (mkdir(target, 0755) < 0 && errno != EEXIST) {
                        snprintf(err, size, "%s: %s", target, strerror(errno));
                        return -errno;
                }
                unsigned long flags = MS_RDONLY | MS_NODEV;
                char data[sizeof lower + 128];
                snprintf(data, sizeof data, "%s", lower);
                if (k == MERGED_ETC) {
                        /* The session may still write /etc: into the root fs, which slated erases at logout. */
                        int r = rm_rf(ETC_UPPER_DIR "/etc.upper");
                        if (r == 0)
                                r = rm_rf(ETC_UPPER_DIR "/etc.work");
                        if (r == 0)
                                r = mkdir_p(ETC_UPPER_DIR "/etc.upper", 0755);
                        if (r == 0)
                                r = mkdir_p(ETC_UPPER_DIR "/etc.work", 0700);
                        if (r < 0) {
                                snprintf(err, size, ETC_UPPER_DIR ": %s", strerror(-r));
                                return r;
                        }
                        snprintf(data, sizeof data, "%s,upperdir=" ETC_UPPER_DIR "/etc.upper,workdir=" ETC_UPPER_DIR
                                 "/etc.work", lower);
                        flags = MS_NODEV;
                }
                if (mount("overlay", target, "overlay", flags, data) < 0) {
                        int e = errno;
                        snprintf(err, size, "overlay on %s (%u layer%s): %s", target, used, used == 1 ? "" : "s",
                                 strerror(e));
                        return -e;
                }
                s->overlays |= 1u << k;
                log_agent("%s: %u layer%s merged", target, used, used == 1 ? "" : "s");
        }
        for (unsigned i = 0; i < s->n_layers; i++) {
                char root[PATH_MAX];
                snprintf(root, sizeof root, LAYERS_DIR "/%s", s->layers[i]);
                layer_dpkg_merge(a, root, s->layers[i]);
        }
        return 0;
}

/* A helper program on PATH (or the sbin dirs, where e2fsck and modprobe live), if the guest has it:
 * Debian images do; the busybox test guest has modprobe but no e2fsck. */
static bool helper_find(const char *name, char *path, size_t size)
{
        const char *env = getenv("PATH");
        char dirs[1024];
        snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", env && env[0] ? env : "/usr/bin:/bin");
        for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                snprintf(path, size, "%s/%s", d, name);
                if (d[0] == '/' && access(path, X_OK) == 0)
                        return true;
        }
        return false;
}

/* Runs argv: its exit status, or a negative errno (could not run, timed out: killed). The loop is
 * held meanwhile, with keepalives. */
static int helper_run(Agent *a, const char *const *argv, uint64_t timeout_ms)
{
        static const char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };
        SpawnOpts so = { .argv = argv, .envp = envp, .fd3 = -1, .new_pgroup = true, .default_signals = true,
                         .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_INHERIT, SPAWN_STDIO_INHERIT } };
        SpawnChild child;
        int r = spawn_start(&so, &child);
        if (r < 0)
                return r;
        uint64_t deadline = agent_uptime_ms() + timeout_ms;
        int status;
        while ((r = spawn_wait(child.pid, WNOHANG, &status)) == 0) {
                if (agent_uptime_ms() >= deadline) {
                        kill(-child.pid, SIGKILL);
                        spawn_wait(child.pid, 0, &status);
                        return -ETIMEDOUT;
                }
                disks_keepalive(a);
                agent_sleep_ms(50);
        }
        if (r < 0)
                return r;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The loop driver is a module in Debian's kernel: the guest's init may not have loaded it. One
 * `modprobe loop` then, and a clear message if that does not bring LOOP_CONTROL. */
static int loop_driver_load(Agent *a, char *err, size_t size)
{
        if (access(LOOP_CONTROL, F_OK) == 0)
                return 0;
        char modprobe[PATH_MAX], why[64] = "no modprobe on PATH";
        if (helper_find("modprobe", modprobe, sizeof modprobe)) {
                const char *argv[] = { modprobe, "loop", NULL };
                int r = helper_run(a, argv, DISKS_MODPROBE_TIMEOUT_MS);
                if (r < 0)
                        snprintf(why, sizeof why, "modprobe loop: %s", strerror(-r));
                else
                        snprintf(why, sizeof why, "modprobe loop: exit status %d", r);
                log_agent(LOOP_CONTROL " missing; %s", why);
                if (access(LOOP_CONTROL, F_OK) == 0)
                        return 0;
        }
        snprintf(err, size, LOOP_CONTROL " missing (%s): the guest kernel needs the loop driver "
                 "(CONFIG_BLK_DEV_LOOP)", why);
        return -ENODEV;
}

/* A profile that was not cleanly unmounted gets `e2fsck -p` when the guest has it; the kernel
 * replays the journal itself otherwise. note says which for STARTED's summary. */
static int profile_check(Agent *a, const char *dev, const char *label, char *note, size_t note_size, char *err,
                         size_t size)
{
        bool recover = false, unclean = false;
        int r = ext4_state(dev, &recover, &unclean);
        if (r < 0) {
                snprintf(err, size, "%s: %s", label, r == -EMEDIUMTYPE ? "not an ext4 filesystem" : strerror(-r));
                return r;
        }
        note[0] = 0;
        char e2fsck[PATH_MAX];
        if (unclean && helper_find("e2fsck", e2fsck, sizeof e2fsck)) {
                log_agent("%s: not cleanly unmounted; %s -p %s", label, e2fsck, dev);
                const char *argv[] = { e2fsck, "-p", dev, NULL };
                r = helper_run(a, argv, DISKS_FSCK_TIMEOUT_MS);
                if (r < 0 || r >= 4) {
                        if (r < 0)
                                snprintf(err, size, "%s: e2fsck: %s", label, strerror(-r));
                        else
                                snprintf(err, size, "%s: e2fsck -p failed (status %d): needs a manual check", label, r);
                        return r < 0 ? r : -EUCLEAN;
                }
                snprintf(note, note_size, " (%s; e2fsck status %d)", recover ? "journal replayed" : "checked", r);
        } else if (unclean)
                snprintf(note, note_size, " (%s)", recover ? "journal replayed" : "not cleanly unmounted");
        return 0;
}

static int profile_mount(Agent *a, const AgentDisk *d, const char *slot, const char *user, uid_t uid, char *note,
                         size_t note_size, char *err, size_t size)
{
        AgentMounts *s = &a->mounts;
        char home[sizeof s->home], label[192];
        disk_label(d, label, sizeof label);
        /* disks_mount checked the name (user_name_valid): never too long, checked all the same. */
        if (snprintf(home, sizeof home, "/home/%s", user) >= (int)sizeof home) {
                snprintf(err, size, "user name too long");
                return -ENAMETOOLONG;
        }
        _cleanup_(loopdev_unbind) LoopDev loop = { .fd = -1 };
        int r = disk_loop(d, slot, label, &loop, err, size);
        if (r == 0)
                r = profile_check(a, loop.path, label, note, note_size, err, size);
        if (r < 0)
                return r;
        r = mkdir_p(home, 0755);
        if (r == 0 && mount(loop.path, home, "ext4", MS_NODEV | MS_NOSUID, NULL) < 0)
                r = -errno;
        if (r < 0) {
                snprintf(err, size, "%s: mount %s on %s: %s", label, loop.path, home, strerror(-r));
                return r;
        }
        profile_grow(home, loop.path, d->length, note, note_size);
        loopdev_release(&loop);
        log_agent("%s: %s on %s%s", label, loop.path, home, loop.direct_io ? " (direct I/O)" : "");
        s->profile = true;
        s->uid = uid;
        snprintf(s->home, sizeof s->home, "%s", home);
        /* A fresh profile disk's root belongs to root: it becomes the user's on first use. */
        struct stat st;
        if (stat(home, &st) == 0 && st.st_uid == 0 && uid != 0) {
                if (chown(home, uid, uid) < 0 || chmod(home, 0700) < 0) {
                        r = -errno;
                        snprintf(err, size, "profile %s: chown to %u: %s", home, (unsigned)uid, strerror(-r));
                        return r;
                }
                size_t l = strlen(note);
                snprintf(note + l, note_size - l, " (new)");
        }
        return 0;
}

bool disks_active(const Agent *a)
{
        return a->mounts.profile || a->mounts.n_layers > 0 || a->mounts.overlays;
}

int disks_mount(Agent *a, const AgentMsg *m, char *err, size_t size)
{
        const AgentDisk *disks = m->session_start.disks;
        unsigned n = m->session_start.n_disks;
        const char *user = m->session_start.user;
        AgentMounts *s = &a->mounts;
        if (n == 0)
                return 0;
        if (!user_name_valid(user)) {
                snprintf(err, size, "invalid user name");
                return -EINVAL;
        }
        /* decode already enforced these; the paths below rely on them. */
        if (agent_disks_check(disks, n) < 0) {
                snprintf(err, size, "invalid disk list");
                return -EINVAL;
        }
        uint64_t t0 = agent_uptime_ms();
        *s = (AgentMounts){ .keepalive_ms = t0 };
        char devs[AGENT_DISKS_MAX][32] = { { 0 } };
        int r = disks_find_all(a, disks, n, devs, err, size);
        uint64_t t_found = agent_uptime_ms();
        if (r == 0)
                r = slots_flush(disks, n, devs, err, size);
        if (r == 0)
                r = loop_driver_load(a, err, size);
        if (r == 0)
                r = layers_mount(a, disks, n, devs, err, size);
        char note[96] = "";
        for (unsigned i = 0; r == 0 && i < n; i++)
                if (disks[i].kind == AGENT_DISK_PROFILE)
                        r = profile_mount(a, &disks[i], devs[i], user, m->session_start.uid, note, sizeof note, err,
                                          size);
        if (r < 0) {
                log_agent("session disks for %s: %s; undoing", user, err);
                disks_unmount(a);
                return r;
        }
        /* "profile /home/alice (journal replayed); layers hello,calc": the start of STARTED's detail. */
        size_t len = 0;
        if (s->profile)
                len += (size_t)snprintf(s->summary, sizeof s->summary, "profile %s%s", s->home, note);
        for (unsigned i = 0; i < s->n_layers && len < sizeof s->summary; i++)
                len += (size_t)snprintf(s->summary + len, sizeof s->summary - len, "%s%s",
                                        i ? "," : s->profile ? "; layers " : "layers ", s->layers[i]);
        /* The host's timeline shows the whole agent step; this says how much of it the disks took
         * (bench/sections/32-layers.sh reads it from the audit). */
        uint64_t t_end = agent_uptime_ms();
        if (len < sizeof s->summary)
                snprintf(s->summary + len, sizeof s->summary - len, "; disks %llu ms (%llu waiting for the devices)",
                         (unsigned long long)(t_end - t0), (unsigned long long)(t_found - t0));
        log_agent("session disks for %s mounted in %llu ms: %s", user, (unsigned long long)(t_end - t0), s->summary);
        return 0;
}

void disks_detail(const Agent *a, const char *backend, char *out, size_t size)
{
        if (!disks_active(a) || !a->mounts.summary[0])
                snprintf(out, size, "%s", backend);
        else
                snprintf(out, size, "%s%s%s", a->mounts.summary, backend[0] ? "; " : "", backend);
}

static bool path_under(const char *p, const char *dir, size_t dlen)
{
        return !strncmp(p, dir, dlen) && (p[dlen] == 0 || p[dlen] == '/');
}

/* Does pid have its cwd, root or an open file under dir? */
static bool proc_uses(const char *pid, const char *dir)
{
        size_t dlen = strlen(dir);
        char path[PATH_MAX], target[PATH_MAX];
        static const char *const links[] = { "cwd", "root" };
        for (unsigned i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(path, sizeof path, "/proc/%s/%s", pid, links[i]);
                ssize_t n = readlink(path, target, sizeof target - 1);
                if (n > 0 && (target[n] = 0, path_under(target, dir, dlen)))
                        return true;
        }
        snprintf(path, sizeof path, "/proc/%s/fd", pid);
        DIR *d = opendir(path);
        struct dirent *de;
        bool uses = false;
        while (d && !uses && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char fd[PATH_MAX];
                if (snprintf(fd, sizeof fd, "%s/%s", path, de->d_name) >= (int)sizeof fd)
                        continue;
                ssize_t n = readlink(fd, target, sizeof target - 1);
                uses = n > 0 && (target[n] = 0, path_under(target, dir, dlen));
        }
        if (d)
                closedir(d);
        return uses;
}

/* Signals what keeps the home busy: the user's processes (never root's: uid 0 owns the system)
 * and any process with its cwd or a file under it. Never PID 1 or us. Returns how many. */
static unsigned home_users_kill(const char *home, uid_t uid, int sig)
{
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        unsigned n = 0;
        struct dirent *de;
        pid_t self = getpid();
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 1 || pid == self)
                        continue;
                char path[64];
                struct stat st;
                snprintf(path, sizeof path, "/proc/%ld", pid);
                if (stat(path, &st) < 0)
                        continue;
                if ((uid != 0 && st.st_uid == uid) || proc_uses(de->d_name, home))
                        n += kill((pid_t)pid, sig) == 0;
        }
        closedir(d);
        return n;
}

/* Retries umount of path until deadline; true once it is gone. */
static bool umount_retry(Agent *a, const char *path, uint64_t deadline)
{
        for (;;) {
                if (umount2(path, 0) == 0 || errno == EINVAL || errno == ENOENT)
                        return true;
                if (errno != EBUSY || agent_uptime_ms() >= deadline)
                        return false;
                disks_keepalive(a);
                agent_sleep_ms(50);
        }
}

/* The profile must reach the disk before the host unplugs it: everything holding it is ended,
 * and a mount that stays busy is flushed (syncfs) and detached. */
static void profile_unmount(Agent *a)
{
        AgentMounts *s = &a->mounts;
        const char *home = s->home;
        if (umount2(home, 0) == 0 || errno == EINVAL || errno == ENOENT) {
                log_agent("profile %s unmounted", home);
                return;
        }
        if (errno == EBUSY) {
                unsigned n = home_users_kill(home, s->uid, SIGTERM);
                log_agent("profile %s busy: SIGTERM to %u process%s", home, n, n == 1 ? "" : "es");
                if (umount_retry(a, home, agent_uptime_ms() + DISKS_KILL_GRACE_MS)) {
                        log_agent("profile %s unmounted", home);
                        return;
                }
                n = home_users_kill(home, s->uid, SIGKILL);
                log_agent("profile %s still busy: SIGKILL to %u process%s", home, n, n == 1 ? "" : "es");
                if (umount_retry(a, home, agent_uptime_ms() + 1000)) {
                        log_agent("profile %s unmounted", home);
                        return;
                }
        }
        log_agent("profile %s: umount: %s; flushing and detaching it", home, strerror(errno));
        int fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                syncfs(fd);
                close(fd);
        }
        if (umount2(home, MNT_DETACH) < 0)
                log_agent("profile %s: detach: %s", home, strerror(errno));
}

static void umount_best(const char *path)
{
        if (umount2(path, 0) == 0 || errno == EINVAL || errno == ENOENT)
                return;
        int e = errno;
        if (umount2(path, MNT_DETACH) == 0)
                log_agent("%s: umount: %s; detached", path, strerror(e));
        else
                log_agent("%s: umount: %s", path, strerror(errno));
}

void disks_unmount(Agent *a)
{
        AgentMounts *s = &a->mounts;
        if (!disks_active(a))
                return;
        uint64_t t0 = agent_uptime_ms();
        s->keepalive_ms = t0;
        sync();
        if (s->profile)
                profile_unmount(a);
        for (unsigned k = ELEMENTSOF(merged_dirs); k-- > 0;)
                if (s->overlays & 1u << k) {
                        char target[32];
                        snprintf(target, sizeof target, "/%s", merged_dirs[k]);
                        umount_best(target);
                }
        for (unsigned i = s->n_layers; i-- > 0;) {
                char dir[PATH_MAX];
                snprintf(dir, sizeof dir, LAYERS_DIR "/%s", s->layers[i]);
                umount_best(dir);
                rmdir(dir);
        }
        log_agent("session disks unmounted in %llu ms", (unsigned long long)(agent_uptime_ms() - t0));
        *s = (AgentMounts){ 0 };
}
