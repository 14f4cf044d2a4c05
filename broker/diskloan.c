/* Disk loans (diskloan.h): the owner changes of a disk lent to one desktop's uid. Runs on
 * slated's loop; an open and an fchown of one file, nothing that blocks for long. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/diskloan.h"
#include "common/cleanup.h"
#include "common/log.h"

/* The file itself, never what a symlink put in its place points to. */
static int disk_open(const char *path, struct stat *st)
{
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fstat(fd, st) < 0 ? -errno : !S_ISREG(st->st_mode) ? -EINVAL : 0;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

int diskloan_lend(const char *path, uid_t uid, gid_t gid)
{
        struct stat st;
        _cleanup_close_ int fd = disk_open(path, &st);
        if (fd < 0)
                return log_error_errno(fd, "disk %s: %s", path, strerror(-fd));
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0600) < 0)
                return log_error_errno(-errno, "disk %s: lending it to uid %u: %m", path, (unsigned)uid);
        return 0;
}

int diskloan_return(const char *path, uid_t uid, uid_t owner, gid_t group)
{
        struct stat st;
        _cleanup_close_ int fd = disk_open(path, &st);
        if (fd < 0)
                return fd == -ENOENT ? 0 : log_error_errno(fd, "disk %s: %s", path, strerror(-fd));
        if (st.st_uid != uid)
                return 0;
        if (fchown(fd, owner, group) < 0)
                return log_error_errno(-errno, "disk %s: giving it back from uid %u: %m", path, (unsigned)uid);
        return 0;
}
