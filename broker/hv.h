/* Hypervisor interface (after libvirt's driver tables): slated's pool and desktop code talk
 * only to this; broker/hv_qemu.c is the QEMU driver. Drivers run on the caller's libuv loop,
 * never block it, and report a VM's end exactly once through on_exit. */
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
} HvVmSpec;

typedef struct HvCallbacks {
        /* QEMU is gone (exit, signal, QMP hang-up of an adopted VM). status: exit code, or -signal. */
        void (*on_exit)(HvVm *vm, int status, void *userdata);
        /* A QMP event such as SHUTDOWN, with its "data" object as JSON text (may be "{}"). */
        void (*on_event)(HvVm *vm, const char *event, const char *data_json, void *userdata);
} HvCallbacks;

typedef struct HvDriver {
        const char *name;
        /* Spawn the VM; returns at once. QMP is connected asynchronously; sockets appear in run_dir. */
        int (*vm_start)(uv_loop_t *loop, const HvVmSpec *spec, const HvCallbacks *cb, void *userdata,
                        HvVm **ret);
        /* Take over a VM left running by an earlier slated: check that pid is this desktop's QEMU,
         * connect QMP, watch it with a pidfd. -ESRCH if it is not (or no longer) running. */
        int (*vm_adopt)(uv_loop_t *loop, const char *id, const char *run_dir, pid_t pid, const HvCallbacks *cb,
                        void *userdata, HvVm **ret);
        /* Stop: QMP quit, SIGKILL after grace_ms. on_exit follows. Safe to call twice. */
        int (*vm_stop)(HvVm *vm, unsigned grace_ms);
        pid_t (*vm_pid)(HvVm *vm);
        /* Release the handle after on_exit (or to forget an adopted VM without stopping it). */
        void (*vm_free)(HvVm *vm);
} HvDriver;

extern const HvDriver hv_qemu_driver;

/* Paths of a VM's sockets inside its run dir (same for every driver). */
#define HV_QMP_SOCKET "qmp.sock"
#define HV_VNC_SOCKET "vnc.sock"
#define HV_AGENT_SOCKET "agent.sock"
#define HV_PID_FILE "qemu.pid"

/* Decide KVM or TCG with a real boot of the probe guest (its init prints SLATE-PROBE-OK on the
 * serial console and powers off). mode: "auto", "kvm" or "tcg". The result is cached in
 * cache_file keyed by host boot id + QEMU version. Blocking: call before the loop runs. */
const char *hv_accel_name(HvAccel a);   /* "kvm", "kvm-compat", "tcg" */
int hv_qemu_probe_accel(const char *mode, const char *qemu, const char *kernel, const char *initrd,
                        const char *cache_file, HvAccel *ret, char **ret_reason);
