/* Hypervisor interface (after libvirt's driver tables): slated's pool and desktop code talk
 * only to this; broker/hv_qemu.c is the QEMU driver. Drivers run on the caller's libuv loop,
 * never block it, and report a VM's end exactly once through on_exit. Nothing outside a driver
 * names a socket path or speaks the hypervisor's protocol. The interface is kept to what
 * libvirt could implement too: console and agent channel as fds (virDomainOpenConsole /
 * virDomainOpenChannel), disks swapped into slots by path (virDomainUpdateDeviceFlags on a
 * removable device, or a blockdev-reopen through virDomainQemuMonitorCommand), and later
 * dirty bitmaps and block export (virDomainCheckpoint*, virDomainBackupBegin). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct HvVm HvVm;

/* KVM_COMPAT: KVM boots guests only with a generic CPU model (-cpu qemu64). */
typedef enum HvAccel { HV_ACCEL_TCG = 0, HV_ACCEL_KVM = 1, HV_ACCEL_KVM_COMPAT = 2 } HvAccel;

typedef struct HvVmSpec {
        const char *id;            /* desktop id, appears in the QEMU -name (guards pid reuse) */
        const char *run_dir;       /* per-VM dir, created 0700 by the caller, owned by uid */
        const char *disk;          /* overlay path (qcow2) */
        const char *disk_secret;   /* LUKS passphrase for an encrypted overlay, else NULL; never on argv */
        bool disk_on_tmpfs;        /* cache.direct=off on tmpfs */
        const char *kernel;        /* direct kernel boot, or NULL for the disk's own bootloader */
        const char *initrd;
        const char *cmdline;
        uint64_t memory_mb;
        unsigned vcpus;
        HvAccel accel;
        uid_t uid;                 /* run QEMU as this uid/gid when slated is root; (uid_t)-1 = don't switch */
        gid_t gid;
        gid_t kvm_gid;             /* extra group when accel is KVM and uid is switched */
        const char *qemu;          /* qemu-system-x86_64 path */
        bool background;           /* a spare: every thread at the lowest CPU priority (SCHED_IDLE)
                                    * from its first instruction, so its boot only takes CPU time
                                    * no logged-on desktop wants; vm_set_background lifts it */
        /* Instant clones (broker/template.c): guest RAM in a file instead of anonymous memory.
         * The template's VM maps it shared (the guest's RAM is written into the file), a clone
         * privately (copy-on-write: pages it never writes stay the file's, shared with every other
         * clone, and the file never changes). Both get a vmgenid device (a new GUID each start:
         * the guest kernel reseeds its RNG on resume) and the same device line otherwise. */
        const char *mem_path;
        bool mem_from_fd;          /* the RAM from mem_fd instead of mem_path: a clone maps the
                                    * template's RAM from a sealed memfd, which QEMU 7.2 may open
                                    * read-write (it does so even for a private mapping) and still
                                    * never change */
        int mem_fd;
        bool mem_share;
        gid_t mem_gid;             /* extra group for the template's files (the RAM file a template
                                    * VM writes, the disk a clone's overlay is backed by), or -1 */
        bool incoming;             /* a clone: waits for vm_restore instead of booting */
} HvVmSpec;

/* The disk slots every VM has from boot: virtio-blk devices backed by nothing (zeros, 1 TiB)
 * until a disk is put in. Attaching points the slot at an image on the host; the guest sees no
 * new device (a hot-plug costs it ~55 ms per disk under TCG) and is told by its agent where to
 * look. The guest keeps the slot's boot-time size and must drop its page cache (BLKFLSBUF). */
typedef enum HvSlot {
        HV_SLOT_APPS = 0,          /* read-only, serial "slate-apps": the session's app layers */
        HV_SLOT_PROFILE = 1,       /* read-write, serial "slate-profile": the user's profile */
        _HV_SLOT_MAX,
} HvSlot;
#define HV_SLOT_SIZE (1ull << 40)

const char *hv_slot_serial(HvSlot slot);
bool hv_slot_read_only(HvSlot slot);

/* What a slot is pointed at: an app layer stack (vmdk of FLAT extents, read-only) or a profile
 * disk (qcow2, LUKS-encrypted). */
typedef struct HvDisk {
        HvSlot slot;
        const char *path;          /* image file; the VM's uid must be able to open it (and the
                                    * extents of a vmdk descriptor) */
        const char *format;        /* "qcow2", "raw", or "vmdk" (read-only slots only) */
        const char *secret;        /* LUKS passphrase of an encrypted qcow2 (profile disks), else NULL.
                                    * Goes to QEMU over the monitor socket only, never argv or a file. */
} HvDisk;

/* The answer to an asynchronous disk operation: 0 or a negative errno with a short reason. */
typedef void (*HvDone)(HvVm *vm, int r, const char *error, void *userdata);

typedef struct HvCallbacks {
        /* The VM is gone (exit, signal, monitor hang-up of an adopted VM). status: exit code, or -signal. */
        void (*on_exit)(HvVm *vm, int status, void *userdata);
        /* A monitor event such as SHUTDOWN, with its data as JSON text (may be "{}"). */
        void (*on_event)(HvVm *vm, const char *event, const char *data_json, void *userdata);
} HvCallbacks;

typedef struct HvDriver {
        const char *name;
        /* Spawn the VM; returns at once. The monitor is connected asynchronously. */
        int (*vm_start)(uv_loop_t *loop, const HvVmSpec *spec, const HvCallbacks *cb, void *userdata,
                        HvVm **ret);
        /* Take over a VM left running by an earlier slated: check that pid is this desktop's QEMU,
         * connect its monitor, watch it with a pidfd. -ESRCH if it is not (or no longer) running. */
        int (*vm_adopt)(uv_loop_t *loop, const char *id, const char *run_dir, pid_t pid, const HvCallbacks *cb,
                        void *userdata, HvVm **ret);
        /* Stop: a clean quit, SIGKILL after grace_ms. on_exit follows. Safe to call twice. */
        int (*vm_stop)(HvVm *vm, unsigned grace_ms);
        pid_t (*vm_pid)(HvVm *vm);
        /* Every thread of the VM to the lowest CPU priority (SCHED_IDLE) or back to the normal
         * one (SCHED_OTHER): a desktop leaves the background when a user claims it. */
        int (*vm_set_background)(HvVm *vm, bool background);
        /* CPU time the VM's process has had (user + system, all threads), ms. */
        int (*vm_cpu_ms)(HvVm *vm, uint64_t *ret_ms);
        /* The VM's console (VNC), connected: an fd the caller owns. -ENOTCONN when not listening. */
        int (*console_open)(HvVm *vm, int *ret_fd);
        /* The guest agent's channel (virtio-serial), connected: an fd the caller owns. -ENOTCONN
         * (or -ENOENT) while the VM is not listening yet: callers retry. */
        int (*agent_open)(HvVm *vm, int *ret_fd);
        /* Point a slot at a disk; done() answers. -EBUSY while the slot holds a disk or has an
         * operation pending. */
        int (*disk_attach)(HvVm *vm, const HvDisk *disk, HvDone done, void *userdata);
        /* Point the slot back at nothing and close its disk (the guest must have let go of it:
         * later guest writes are dropped). Also for an adopted VM, whose slots slated did not
         * fill itself. */
        int (*disk_detach)(HvVm *vm, HvSlot slot, HvDone done, void *userdata);
        /* Templates: pause the guest for good and write its device state to fd, RAM left out (it
         * is in mem_path, shared); done() answers once the state is complete. The VM stays paused
         * until stopped: it must never run again (its RAM file is every clone's). fd is taken. */
        int (*vm_save)(HvVm *vm, int fd, HvDone done, void *userdata);
        /* A VM started with incoming: load the device state from fd (RAM from mem_path) and run
         * the guest. fd is taken. On failure QEMU usually exits: on_exit follows. */
        int (*vm_restore)(HvVm *vm, int fd, HvDone done, void *userdata);
        /* Release the handle after on_exit (or to forget an adopted VM without stopping it). */
        void (*vm_free)(HvVm *vm);
} HvDriver;

extern const HvDriver hv_qemu_driver;

/* Decide KVM or TCG with a real boot of the probe guest (its init prints SLATE-PROBE-OK on the
 * serial console and powers off). mode: "auto", "kvm" or "tcg". The result is cached in
 * cache_file keyed by host boot id + QEMU version. Blocking: call before the loop runs. */
const char *hv_accel_name(HvAccel a);   /* "kvm", "kvm-compat", "tcg" */
int hv_qemu_probe_accel(const char *mode, const char *qemu, const char *kernel, const char *initrd,
                        const char *cache_file, HvAccel *ret, char **ret_reason);
