/* Loop devices over extents of the slot disks (loopdev.h). One LOOP_CONFIGURE binds, sizes and
 * flags a device at once, so nobody sees it half set up, and autoclear makes whoever holds it last
 * (the mount) its owner. It must never leave a device bound behind a failure. */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "agent/loopdev.h"
#include "common/cleanup.h"

/* LOOP_CTL_GET_FREE names a device and LOOP_CONFIGURE claims it: another process may claim it in
 * between (EBUSY), so another free one is asked for, this many times in all. */
#define LOOP_CLAIM_TRIES 4

static int loop_configure(int fd, int slot_fd, uint64_t offset, uint64_t length, unsigned sector_size,
                          bool read_only, bool direct_io)
{
        struct loop_config cfg = {
                .fd = (uint32_t)slot_fd,
                .block_size = sector_size,
                .info = { .lo_offset = offset, .lo_sizelimit = length,
                          .lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0) |
                                      (direct_io ? LO_FLAGS_DIRECT_IO : 0) },
        };
        return ioctl(fd, LOOP_CONFIGURE, &cfg) < 0 ? -errno : 0;
}

int loopdev_bind(int slot_fd, uint64_t offset, uint64_t length, unsigned sector_size, bool read_only, LoopDev *ret,
                 char *err, size_t size)
{
        *ret = (LoopDev){ .fd = -1 };
        _cleanup_close_ int ctl = open(LOOP_CONTROL, O_RDWR | O_CLOEXEC);
        if (ctl < 0) {
                int r = -errno;
                snprintf(err, size, LOOP_CONTROL ": %s", strerror(-r));
                return r;
        }
        int r = -EBUSY;
        for (unsigned tries = 0; r == -EBUSY && tries < LOOP_CLAIM_TRIES; tries++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0) {
                        r = -errno;
                        snprintf(err, size, LOOP_CONTROL ": no free loop device: %s", strerror(-r));
                        return r;
                }
                snprintf(ret->path, sizeof ret->path, "/dev/loop%d", n);
                _cleanup_close_ int fd = open(ret->path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        snprintf(err, size, "%s: %s", ret->path, strerror(-r));
                        return r;
                }
                /* Direct I/O keeps one copy of each block in memory (the filesystem's), not a second
                 * one in the slot's page cache; a kernel that cannot do it here says EINVAL. */
                r = loop_configure(fd, slot_fd, offset, length, sector_size, read_only, true);
                if (r == -EINVAL)
                        r = loop_configure(fd, slot_fd, offset, length, sector_size, read_only, false);
                if (r == 0)
                        ret->fd = TAKE_FD(fd);
        }
        if (r < 0) {
                snprintf(err, size, "%s: LOOP_CONFIGURE: %s", ret->path, strerror(-r));
                return r;
        }
        struct loop_info64 info;
        ret->direct_io = ioctl(ret->fd, LOOP_GET_STATUS64, &info) == 0 && (info.lo_flags & LO_FLAGS_DIRECT_IO);
        return 0;
}

void loopdev_release(LoopDev *l)
{
        if (l->fd >= 0)
                close(TAKE_FD(l->fd));
}

/* Should LOOP_CLR_FD fail (someone opened the device meanwhile), autoclear still unbinds it at
 * their last close. */
void loopdev_unbind(LoopDev *l)
{
        if (l->fd < 0)
                return;
        ioctl(l->fd, LOOP_CLR_FD);
        close(TAKE_FD(l->fd));
}
