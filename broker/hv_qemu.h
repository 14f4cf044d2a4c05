/* The QEMU driver's private parts, shared by its files (hv_qemu.c: spawn, adopt, stop;
 * hv_qemu_disk.c: console, agent channel, disk slots) and its own tests. Nothing outside
 * the driver includes this: the rest of slated knows only hv.h. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "broker/hv.h"
#include "broker/hv_qmp.h"

/* Names of a VM's sockets inside its run dir. */
#define HV_QMP_SOCKET "qmp.sock"
#define HV_VNC_SOCKET "vnc.sock"
#define HV_AGENT_SOCKET "agent.sock"
#define HV_PID_FILE "qemu.pid"
/* A QEMU stderr line is logged up to this many bytes (the rest is cut, not buffered). */
#define HV_STDERR_LINE_MAX 512

/* One disk slot (hv.h): what slated put there, and the pending operation. Its QEMU nodes are
 * named after the slot: "slot-NAME" (raw, the device's), "slot-NAME-null" (boot), "slot-NAME-img"
 * (the disk) and the secret "slot-NAME-sec", so a slot can be emptied without this record. */
typedef struct HvQemuDisk {
        bool attached;
        bool has_secret;
        HvDone done;            /* pending operation's answer */
        void *userdata;
} HvQemuDisk;

struct HvVm {
        uv_loop_t *loop;
        char *id, *run_dir, *qmp_path;
        HvCallbacks cb;
        void *userdata;
        pid_t pid;
        bool adopted;
        bool exited, exit_reported, stopping, freed;
        bool refused;                   /* one of its sockets led elsewhere: killed, nothing connects */
        int exit_status;
        int open_handles;               /* released when the last close callback ran and freed */
        uint64_t started_ms, qmp_cpu0_ms;     /* its CPU time when the wait for QMP began */

        uv_process_t proc;
        bool proc_open;
        uv_pipe_t err;
        bool err_open;
        LineBuf errlines;               /* capped at HV_STDERR_LINE_MAX */
        char errbuf[4096];
        uv_poll_t pidfd_poll;
        int pidfd;
        bool poll_open;
        uv_timer_t qmp_timer;           /* QMP connect retries */
        uv_timer_t timer;               /* stop grace → SIGKILL; after exit: stderr drain deadline */
        Qmp *qmp;
        HvQemuDisk slots[_HV_SLOT_MAX]; /* hv_qemu_disk.c */
        struct HvQemuMigrate *mig;      /* hv_qemu_migrate.c: a save or restore under way */
};

/* hv_qemu.c: SIGKILL, by pidfd for an adopted VM. */
void hv_qemu_vm_kill(HvVm *vm);

/* hv_qemu_disk.c */
/* Connects to the socket name in the VM's run dir (flags: SOCK_NONBLOCK or 0). -EPERM (logged,
 * the VM killed) when anyone but the VM's QEMU answers. */
/* Whether to go on waiting for a QEMU's QMP socket, given the CPU it has used and the time since
 * it started. */
bool hv_qmp_wait_more(uint64_t cpu_ms, uint64_t waited_ms);
int hv_qemu_connect(HvVm *vm, const char *name, int flags, int *ret_fd);
int hv_qemu_console_open(HvVm *vm, int *ret_fd);
int hv_qemu_agent_open(HvVm *vm, int *ret_fd);
int hv_qemu_disk_attach(HvVm *vm, const HvDisk *disk, HvDone done, void *userdata);
int hv_qemu_disk_detach(HvVm *vm, HvSlot slot, HvDone done, void *userdata);
/* A slot's name in its QEMU node names: "apps", "profile". */
const char *hv_qemu_slot_name(HvSlot slot);
/* The VM is forgotten (vm_free): pending operations are dropped unanswered, as qmp_free
 * drops pending commands; their QMP replies come back -ECANCELED and free themselves. */
void hv_qemu_disk_cancel(HvVm *vm);

/* hv_qemu_migrate.c: templates and clones (hv.h vm_save, vm_restore). The operation waits
 * for the monitor if it is not connected yet (a clone's restore is asked right after spawn). */
int hv_qemu_vm_save(HvVm *vm, int fd, HvDone done, void *userdata);
int hv_qemu_vm_restore(HvVm *vm, int fd, HvDone done, void *userdata);
/* The monitor is ready (hv_qemu.c): a waiting operation starts. */
void hv_qemu_migrate_qmp_ready(HvVm *vm);
/* vm_free: the operation is dropped unanswered, its fd closed. */
void hv_qemu_migrate_cancel(HvVm *vm);

/* For the driver's own tests: the VM's QMP connection (NULL until connected). */
Qmp *hv_qemu_vm_qmp(HvVm *vm);
