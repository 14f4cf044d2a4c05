/* The QEMU driver's channels into a running VM: the VNC console and the agent's virtio-serial
 * socket handed out as connected fds, and the disk slots (hv.h) filled and emptied over QMP by
 * blockdev-reopen of the slot's raw node. Nothing here waits for the guest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "broker/hv_qemu.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* The run dir belongs to the VM's uid, so a subverted QEMU can put a symlink to any socket there
 * in place of its own: slated's control socket, say, whose root peer would then take the commands
 * meant for QEMU, or be handed to a session as its console. Only QEMU itself may answer: the peer
 * is checked (SO_PEERCRED) before a byte is sent, and a VM whose socket leads elsewhere is killed. */
int hv_qemu_connect(HvVm *vm, const char *name, int flags, int *ret_fd)
{
        if (vm->exited || vm->refused)
                return -ENOTCONN;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", vm->run_dir, name) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return -errno;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return log_error_errno(-errno, "vm %s: %s: SO_PEERCRED: %s", vm->id, sa.sun_path, strerror(errno));
        if (cred.pid != vm->pid) {
                vm->refused = true;
                log_error("vm %s: %s is answered by pid %d (uid %u), not by its QEMU (pid %d): refused; "
                          "killing the VM", vm->id, sa.sun_path, (int)cred.pid, (unsigned)cred.uid, (int)vm->pid);
                hv_qemu_vm_kill(vm);
                return -EPERM;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int hv_qemu_console_open(HvVm *vm, int *ret_fd)
{
        if (vm->exited)
                return -ENOTCONN;
        int r = hv_qemu_connect(vm, HV_VNC_SOCKET, 0, ret_fd);
        if (r < 0 && r != -EPERM)
                log_error("vm %s: console %s/%s: %s", vm->id, vm->run_dir, HV_VNC_SOCKET, strerror(-r));
        return r;
}

int hv_qemu_agent_open(HvVm *vm, int *ret_fd)
{
        /* Quiet: the socket appears a moment after QEMU starts and callers retry. */
        return hv_qemu_connect(vm, HV_AGENT_SOCKET, 0, ret_fd);
}

static const struct {
        const char *name, *serial;
        bool read_only;
} slots[_HV_SLOT_MAX] = {
        [HV_SLOT_APPS] = { "apps", "slate-apps", true },
        [HV_SLOT_PROFILE] = { "profile", "slate-profile", false },
};

const char *hv_slot_serial(HvSlot slot) { return slots[slot].serial; }
bool hv_slot_read_only(HvSlot slot) { return slots[slot].read_only; }
const char *hv_qemu_slot_name(HvSlot slot) { return slots[slot].name; }

typedef struct SlotOp {
        HvVm *vm;
        HvSlot slot;
} SlotOp;

static SlotOp *op_new(HvVm *vm, HvSlot slot)
{
        SlotOp *op = xmalloc0(sizeof *op);
        op->vm = vm;
        op->slot = slot;
        return op;
}

/* Sends a command on the slot's node or object "slot-NAME<suffix>" whose answer nothing waits
 * for (cleanup: its failure changes nothing). */
static void qmp_forget(HvVm *vm, const char *cmd, const char *key, const char *suffix, HvSlot slot)
{
        char v[48];
        snprintf(v, sizeof v, "slot-%s%s", slots[slot].name, suffix);
        json_object *a = json_object_new_object();
        json_object_object_add(a, key, json_object_new_string(v));
        if (vm->qmp)
                qmp_command(vm->qmp, cmd, a, NULL, NULL);
        else
                json_object_put(a);
}

/* The slot's disk node and secret, gone (a failed attach, or after the slot was emptied). */
static void slot_drop_disk(HvVm *vm, HvSlot slot)
{
        HvQemuDisk *s = &vm->slots[slot];
        qmp_forget(vm, "blockdev-del", "node-name", "-img", slot);
        if (s->has_secret)
                qmp_forget(vm, "object-del", "id", "-sec", slot);
        s->has_secret = false;
        s->attached = false;
}

static void slot_answer(HvVm *vm, HvSlot slot, int r, const char *error)
{
        HvQemuDisk *s = &vm->slots[slot];
        HvDone done = s->done;
        void *ud = s->userdata;
        s->done = NULL;
        s->userdata = NULL;
        if (done)
                done(vm, r, error, ud);
}

/* blockdev-reopen of the slot's raw node onto child: the device keeps its node, the node gets
 * a new file. */
static int slot_reopen(HvVm *vm, HvSlot slot, const char *child, QmpReplyCb reply, void *ud)
{
        char node[32];
        snprintf(node, sizeof node, "slot-%s", slots[slot].name);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "driver", json_object_new_string("raw"));
        json_object_object_add(o, "node-name", json_object_new_string(node));
        json_object_object_add(o, "file", json_object_new_string(child));
        json_object_object_add(o, "read-only", json_object_new_boolean(slots[slot].read_only));
        json_object *list = json_object_new_array();
        json_object_array_add(list, o);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "options", list);
        return vm->qmp ? qmp_command(vm->qmp, "blockdev-reopen", a, reply, ud) : (json_object_put(a), -ENOTCONN);
}

static void on_attach_reopened(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        SlotOp *op = ud;
        HvVm *vm = op->vm;
        HvSlot slot = op->slot;
        free(op);
        if (r == -ECANCELED)
                return;
        if (r < 0) {
                log_error("vm %s: slot %s: blockdev-reopen: %s", vm->id, slots[slot].name, desc ? desc : strerror(-r));
                slot_drop_disk(vm, slot);
                slot_answer(vm, slot, -EIO, desc ? desc : "blockdev-reopen failed");
                return;
        }
        log_info("vm %s: slot %s holds its disk", vm->id, slots[slot].name);
        slot_answer(vm, slot, 0, NULL);
}

static void on_attach_added(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        SlotOp *op = ud;
        HvVm *vm = op->vm;
        HvSlot slot = op->slot;
        if (r == -ECANCELED) {
                free(op);
                return;
        }
        if (r < 0) {
                free(op);
                log_error("vm %s: slot %s: blockdev-add: %s", vm->id, slots[slot].name, desc ? desc : strerror(-r));
                HvQemuDisk *s = &vm->slots[slot];
                if (s->has_secret)
                        qmp_forget(vm, "object-del", "id", "-sec", slot);
                s->has_secret = false;
                s->attached = false;
                slot_answer(vm, slot, -EIO, desc ? desc : "blockdev-add failed");
                return;
        }
        char img[32];
        snprintf(img, sizeof img, "slot-%s-img", slots[slot].name);
        if (slot_reopen(vm, slot, img, on_attach_reopened, op) < 0) {
                free(op);
                slot_drop_disk(vm, slot);
                slot_answer(vm, slot, -ENOTCONN, "QMP connection lost");
        }
}

int hv_qemu_disk_attach(HvVm *vm, const HvDisk *disk, HvDone done, void *userdata)
{
        if ((unsigned)disk->slot >= _HV_SLOT_MAX || !disk->path || !disk->format)
                return -EINVAL;
        HvSlot slot = disk->slot;
        bool ro = slots[slot].read_only;
        if ((strcmp(disk->format, "qcow2") != 0 && strcmp(disk->format, "raw") != 0 &&
             !(ro && strcmp(disk->format, "vmdk") == 0)) ||
            (disk->secret && (strcmp(disk->format, "qcow2") != 0 || strlen(disk->secret) > 1024)))
                return -EINVAL;
        if (vm->exited || vm->stopping || !vm->qmp)
                return -ENOTCONN;
        HvQemuDisk *s = &vm->slots[slot];
        if (s->attached || s->done)
                return -EBUSY;
        char img[32], sec[32];
        snprintf(img, sizeof img, "slot-%s-img", slots[slot].name);
        snprintf(sec, sizeof sec, "slot-%s-sec", slots[slot].name);
        if (disk->secret) {
                /* Sent ahead of blockdev-add without waiting: QMP runs commands in order, and a
                 * missing secret makes blockdev-add fail with a message that says so. */
                json_object *o = json_object_new_object();
                json_object_object_add(o, "qom-type", json_object_new_string("secret"));
                json_object_object_add(o, "id", json_object_new_string(sec));
                json_object_object_add(o, "data", json_object_new_string(disk->secret));
                json_object_object_add(o, "format", json_object_new_string("raw"));
                if (qmp_command(vm->qmp, "object-add", o, NULL, NULL) < 0)
                        return -ENOTCONN;
                s->has_secret = true;
        }
        json_object *file = json_object_new_object();
        json_object_object_add(file, "driver", json_object_new_string("file"));
        json_object_object_add(file, "filename", json_object_new_string(disk->path));
        json_object_object_add(file, "read-only", json_object_new_boolean(ro));
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(img));
        json_object_object_add(a, "driver", json_object_new_string(disk->format));
        json_object_object_add(a, "read-only", json_object_new_boolean(ro));
        json_object_object_add(a, "file", file);
        if (disk->secret) {
                json_object *enc = json_object_new_object();
                json_object_object_add(enc, "format", json_object_new_string("luks"));
                json_object_object_add(enc, "key-secret", json_object_new_string(sec));
                json_object_object_add(a, "encrypt", enc);
        }
        SlotOp *op = op_new(vm, slot);
        int r = qmp_command(vm->qmp, "blockdev-add", a, on_attach_added, op);
        if (r < 0) {
                free(op);
                if (s->has_secret)
                        qmp_forget(vm, "object-del", "id", "-sec", slot);
                s->has_secret = false;
                return r;
        }
        s->attached = true;
        s->done = done;
        s->userdata = userdata;
        return 0;
}

static void on_detach_reopened(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        SlotOp *op = ud;
        HvVm *vm = op->vm;
        HvSlot slot = op->slot;
        free(op);
        if (r == -ECANCELED)
                return;
        if (r < 0) {
                /* Still pointed at its disk: the caller learns the detach failed. */
                log_error("vm %s: slot %s: blockdev-reopen: %s", vm->id, slots[slot].name, desc ? desc : strerror(-r));
                slot_answer(vm, slot, -EIO, desc ? desc : "blockdev-reopen failed");
                return;
        }
        /* The disk node is unreferenced now: deleting it closes the image (qcow2 flushes its
         * metadata). An adopted VM's slot may have held nothing: then the delete just fails. */
        if (vm->slots[slot].attached || vm->adopted)
                slot_drop_disk(vm, slot);
        log_info("vm %s: slot %s emptied", vm->id, slots[slot].name);
        slot_answer(vm, slot, 0, NULL);
}

int hv_qemu_disk_detach(HvVm *vm, HvSlot slot, HvDone done, void *userdata)
{
        if ((unsigned)slot >= _HV_SLOT_MAX)
                return -EINVAL;
        HvQemuDisk *s = &vm->slots[slot];
        if (s->done)
                return -EBUSY;
        if (vm->exited || !vm->qmp)
                return -ENOTCONN;
        char null[32];
        snprintf(null, sizeof null, "slot-%s-null", slots[slot].name);
        SlotOp *op = op_new(vm, slot);
        int r = slot_reopen(vm, slot, null, on_detach_reopened, op);
        if (r < 0) {
                free(op);
                return r;
        }
        /* Filled by an earlier slated (an adopted VM): a profile's secret goes with its node. */
        if (vm->adopted)
                s->has_secret = !slots[slot].read_only;
        s->done = done;
        s->userdata = userdata;
        return 0;
}

void hv_qemu_disk_cancel(HvVm *vm)
{
        for (HvSlot i = 0; i < _HV_SLOT_MAX; i++)
                vm->slots[i] = (HvQemuDisk){ 0 };
}

Qmp *hv_qemu_vm_qmp(HvVm *vm) { return vm->qmp; }
