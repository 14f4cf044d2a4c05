/* Loop devices for slate-agent's session disks (disks.c): an extent of a slot disk becomes a block
 * device of its own that ext4 can mount. Syscalls only (the agent is static). A device bound here
 * ends up held by a mount (autoclear unbinds it at umount) or unbound again: never left bound. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOP_CONTROL "/dev/loop-control"

typedef struct LoopDev {
        int fd;                 /* the bound device, until loopdev_release or loopdev_unbind; else -1 */
        char path[24];          /* "/dev/loopN" */
        bool direct_io;         /* the kernel took LO_FLAGS_DIRECT_IO: reads bypass the page cache */
} LoopDev;

/* Binds a free loop device to [offset, offset + length) of the open block device slot_fd, with
 * sectors of sector_size bytes, read-only or not, direct I/O if the kernel allows it. 0, or a
 * negative errno with err saying which step failed (e.g. "/dev/loop-control: No such file..."). */
int loopdev_bind(int slot_fd, uint64_t offset, uint64_t length, unsigned sector_size, bool read_only, LoopDev *ret,
                 char *err, size_t size);
/* The mount holds the device now: our fd goes, autoclear unbinds the device at umount. */
void loopdev_release(LoopDev *l);
/* Nothing else holds it (the mount or a check failed): unbinds it now. A no-op after release. */
void loopdev_unbind(LoopDev *l);
