/* The QEMU driver's channels into a running VM: the VNC console and the agent's virtio-serial
 * socket handed out as connected fds, and disks hot-plugged over QMP into the PCIe root ports
 * reserved at boot. Never blocks the loop on the guest: a detach waits for DEVICE_DELETED
 * with a bound, since a guest may ignore the unplug request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "broker/hv_qemu.h"
#include "common/log.h"
#include "common/util.h"

/* A guest answers an unplug request within a second or two (pciehp's 5 s attention button
 * delay is skipped for surprise-capable ports); past this, the caller is told it failed. */
#define HV_DETACH_TIMEOUT_MS 15000

static int unix_connect(const char *dir, const char *name, int *ret_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int hv_qemu_console_open(HvVm *vm, int *ret_fd)
{
        if (vm->exited)
                return -ENOTCONN;
        int r = unix_connect(vm->run_dir, HV_VNC_SOCKET, ret_fd);
        if (r < 0)
                log_error("vm %s: console %s/%s: %s", vm->id, vm->run_dir, HV_VNC_SOCKET, strerror(-r));
        return r;
}

int hv_qemu_agent_open(HvVm *vm, int *ret_fd)
{
        /* Quiet: the socket appears a moment after QEMU starts and callers retry. */
        return vm->exited ? -ENOTCONN : unix_connect(vm->run_dir, HV_AGENT_SOCKET, ret_fd);
}

static bool disk_id_valid(const char *id)
{
        size_t n = strlen(id);
        if (n == 0 || n > 24)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

static HvQemuDisk *disk_find(HvVm *vm, const char *id)
{
        for (unsigned i = 0; i < HV_DISK_SLOTS; i++)
                if (strcmp(vm->disks[i].id, id) == 0)
                        return &vm->disks[i];
        return NULL;
}

static void timer_closed(uv_handle_t *h) { free(h); }

/* Stop the detach bound and drop its DiskOp. */
static void disk_timer_stop(HvQemuDisk *s)
{
        if (s->timer) {
                free(s->timer->data);
                s->timer->data = NULL;
                uv_timer_stop(s->timer);
                uv_close((uv_handle_t *)s->timer, timer_closed);
                s->timer = NULL;
        }
}

/* The disk's secret object goes with it (its answer is not awaited: nothing depends on it). */
static void disk_secret_drop(HvVm *vm, HvQemuDisk *s)
{
        if (!s->has_secret)
                return;
        s->has_secret = false;
        char sec[48];
        snprintf(sec, sizeof sec, "sec-%s", s->id);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(sec));
        if (vm->qmp)
                qmp_command(vm->qmp, "object-del", a, NULL, NULL);
        else
                json_object_put(a);
}

/* Answer the slot's pending operation once. A failed attach frees the slot. */
static void disk_answer(HvVm *vm, HvQemuDisk *s, int r, const char *error, bool free_slot)
{
        HvDone done = s->done;
        void *ud = s->userdata;
        s->done = NULL;
        s->detaching = false;
        disk_timer_stop(s);
        if (free_slot) {
                disk_secret_drop(vm, s);
                s->id[0] = 0;
        }
        if (done)
                done(vm, r, error, ud);
}

typedef struct DiskOp {
        HvVm *vm;
        unsigned slot;
} DiskOp;

static DiskOp *op_new(HvVm *vm, HvQemuDisk *s)
{
        DiskOp *op = xmalloc0(sizeof *op);
        op->vm = vm;
        op->slot = (unsigned)(s - vm->disks);
        return op;
}

static void on_device_added(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        DiskOp *op = ud;
        HvVm *vm = op->vm;
        unsigned slot = op->slot;
        HvQemuDisk *s = &vm->disks[slot];
        free(op);
        if (r == -ECANCELED)
                return;
        if (r < 0) {
                log_error("vm %s: disk %s: device_add: %s", vm->id, s->id, desc ? desc : strerror(-r));
                /* The block node is useless without its device: drop it too. */
                json_object *a = json_object_new_object();
                char node[48];
                snprintf(node, sizeof node, "disk-%s", s->id);
                json_object_object_add(a, "node-name", json_object_new_string(node));
                if (vm->qmp)
                        qmp_command(vm->qmp, "blockdev-del", a, NULL, NULL);
                else
                        json_object_put(a);
                disk_answer(vm, s, -EIO, desc ? desc : "device_add failed", true);
                return;
        }
        log_info("vm %s: disk %s attached in slot rp%u", vm->id, s->id, slot + 1);
        disk_answer(vm, s, 0, NULL, false);
}

static void on_blockdev_added(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        DiskOp *op = ud;
        HvVm *vm = op->vm;
        HvQemuDisk *s = &vm->disks[op->slot];
        if (r == -ECANCELED) {
                free(op);
                return;
        }
        if (r < 0) {
                free(op);
                log_error("vm %s: disk %s: blockdev-add: %s", vm->id, s->id, desc ? desc : strerror(-r));
                disk_answer(vm, s, -EIO, desc ? desc : "blockdev-add failed", true);
                return;
        }
        char node[48], dev[48], bus[16];
        snprintf(node, sizeof node, "disk-%s", s->id);
        snprintf(dev, sizeof dev, "dev-%s", s->id);
        snprintf(bus, sizeof bus, "rp%u", op->slot + 1);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "driver", json_object_new_string("virtio-blk-pci"));
        json_object_object_add(a, "id", json_object_new_string(dev));
        json_object_object_add(a, "drive", json_object_new_string(node));
        json_object_object_add(a, "bus", json_object_new_string(bus));
        if (s->serial[0])
                json_object_object_add(a, "serial", json_object_new_string(s->serial));
        if (!vm->qmp || qmp_command(vm->qmp, "device_add", a, on_device_added, op) < 0) {
                free(op);
                disk_answer(vm, s, -ENOTCONN, "QMP connection lost", true);
        }
}

int hv_qemu_disk_attach(HvVm *vm, const HvDisk *disk, HvDone done, void *userdata)
{
        if (!disk_id_valid(disk->id) || !disk->path || !disk->format ||
            (strcmp(disk->format, "qcow2") != 0 && strcmp(disk->format, "raw") != 0) ||
            (disk->serial && strlen(disk->serial) > 20) ||
            (disk->secret && (strcmp(disk->format, "qcow2") != 0 || strlen(disk->secret) > 1024)))
                return -EINVAL;
        if (vm->exited || vm->stopping || !vm->qmp)
                return -ENOTCONN;
        if (disk_find(vm, disk->id))
                return -EEXIST;
        HvQemuDisk *s = disk_find(vm, "");
        if (!s)
                return -ENOSPC;
        snprintf(s->id, sizeof s->id, "%s", disk->id);
        snprintf(s->serial, sizeof s->serial, "%s", disk->serial ? disk->serial : "");
        s->done = done;
        s->userdata = userdata;
        char node[48], sec[48];
        snprintf(node, sizeof node, "disk-%s", disk->id);
        snprintf(sec, sizeof sec, "sec-%s", disk->id);
        if (disk->secret) {
                /* Sent ahead of blockdev-add without waiting: QMP runs commands in order, and a
                 * missing secret makes blockdev-add fail with a message that says so. */
                json_object *o = json_object_new_object();
                json_object_object_add(o, "qom-type", json_object_new_string("secret"));
                json_object_object_add(o, "id", json_object_new_string(sec));
                json_object_object_add(o, "data", json_object_new_string(disk->secret));
                json_object_object_add(o, "format", json_object_new_string("raw"));
                if (qmp_command(vm->qmp, "object-add", o, NULL, NULL) < 0) {
                        s->id[0] = 0;
                        s->done = NULL;
                        return -ENOTCONN;
                }
                s->has_secret = true;
        }
        json_object *file = json_object_new_object();
        json_object_object_add(file, "driver", json_object_new_string("file"));
        json_object_object_add(file, "filename", json_object_new_string(disk->path));
        json_object_object_add(file, "read-only", json_object_new_boolean(disk->read_only));
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(node));
        json_object_object_add(a, "driver", json_object_new_string(disk->format));
        json_object_object_add(a, "read-only", json_object_new_boolean(disk->read_only));
        json_object_object_add(a, "file", file);
        if (disk->secret) {
                json_object *enc = json_object_new_object();
                json_object_object_add(enc, "format", json_object_new_string("luks"));
                json_object_object_add(enc, "key-secret", json_object_new_string(sec));
                json_object_object_add(a, "encrypt", enc);
        }
        DiskOp *op = op_new(vm, s);
        int r = qmp_command(vm->qmp, "blockdev-add", a, on_blockdev_added, op);
        if (r < 0) {
                free(op);
                s->done = NULL;
                disk_secret_drop(vm, s);
                s->id[0] = 0;
        }
        return r;
}

static void on_blockdev_deleted(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        DiskOp *op = ud;
        HvVm *vm = op->vm;
        HvQemuDisk *s = &vm->disks[op->slot];
        free(op);
        if (r == -ECANCELED)
                return;
        if (r < 0)
                log_warn("vm %s: disk %s: blockdev-del: %s", vm->id, s->id, desc ? desc : strerror(-r));
        else
                log_info("vm %s: disk %s detached", vm->id, s->id);
        disk_answer(vm, s, r < 0 ? -EIO : 0, r < 0 ? (desc ? desc : "blockdev-del failed") : NULL, true);
}

static void disk_detach_finish(HvVm *vm, HvQemuDisk *s)
{
        char node[48];
        snprintf(node, sizeof node, "disk-%s", s->id);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(node));
        DiskOp *op = op_new(vm, s);
        if (!vm->qmp || qmp_command(vm->qmp, "blockdev-del", a, on_blockdev_deleted, op) < 0) {
                free(op);
                disk_answer(vm, s, -ENOTCONN, "QMP connection lost", true);
        }
}

static void on_detach_timeout(uv_timer_t *t)
{
        DiskOp *op = t->data;
        HvVm *vm = op->vm;
        HvQemuDisk *s = &vm->disks[op->slot];
        log_warn("vm %s: disk %s: the guest did not release it in %d ms", vm->id, s->id, HV_DETACH_TIMEOUT_MS);
        /* Still plugged: the slot stays taken, the caller learns the detach failed. */
        disk_answer(vm, s, -ETIMEDOUT, "the guest did not release the disk", false);
}

static void on_device_del(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *ud)
{
        DiskOp *op = ud;
        HvVm *vm = op->vm;
        HvQemuDisk *s = &vm->disks[op->slot];
        free(op);
        if (r == -ECANCELED || !s->detaching)
                return;
        if (r < 0) {
                log_error("vm %s: disk %s: device_del: %s", vm->id, s->id, desc ? desc : strerror(-r));
                disk_answer(vm, s, -EIO, desc ? desc : "device_del failed", false);
        }
        /* else: DEVICE_DELETED follows once the guest lets go. */
}

int hv_qemu_disk_detach(HvVm *vm, const char *id, HvDone done, void *userdata)
{
        HvQemuDisk *s = id && *id ? disk_find(vm, id) : NULL;
        if (!s)
                return -ENOENT;
        if (s->done)
                return -EBUSY;
        if (vm->exited || !vm->qmp)
                return -ENOTCONN;
        char dev[48];
        snprintf(dev, sizeof dev, "dev-%s", s->id);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(dev));
        s->done = done;
        s->userdata = userdata;
        s->detaching = true;
        int r = qmp_command(vm->qmp, "device_del", a, on_device_del, op_new(vm, s));
        if (r < 0) {
                s->done = NULL;
                s->detaching = false;
                return r;
        }
        s->timer = xmalloc0(sizeof *s->timer);
        uv_timer_init(vm->loop, s->timer);
        s->timer->data = op_new(vm, s);
        uv_timer_start(s->timer, on_detach_timeout, HV_DETACH_TIMEOUT_MS, 0);
        return 0;
}

void hv_qemu_disk_event(HvVm *vm, const char *event, json_object *data)
{
        if (strcmp(event, "DEVICE_DELETED") != 0 || !data)
                return;
        json_object *dv;
        if (!json_object_object_get_ex(data, "device", &dv) || !json_object_is_type(dv, json_type_string))
                return;
        const char *dev = json_object_get_string(dv);
        if (strncmp(dev, "dev-", 4) != 0)
                return;
        HvQemuDisk *s = disk_find(vm, dev + 4);
        if (!s || !s->detaching)
                return;
        disk_timer_stop(s);
        disk_detach_finish(vm, s);
}

void hv_qemu_disk_cancel(HvVm *vm)
{
        for (unsigned i = 0; i < HV_DISK_SLOTS; i++) {
                HvQemuDisk *s = &vm->disks[i];
                disk_timer_stop(s);
                s->done = NULL;
                s->detaching = false;
                s->has_secret = false;
                s->id[0] = 0;
        }
}

Qmp *hv_qemu_vm_qmp(HvVm *vm) { return vm->qmp; }
