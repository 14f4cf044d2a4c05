/* Per-desktop uids (vmuid.h): a bitmap over the vm-uid range, and the owner changes of a disk
 * lent to one desktop. Runs on slated's loop; nothing here blocks for long (a passwd scan at
 * start, an open and fchown a disk). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/vmuid.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

void vmuid_init(VmUids *u, uid_t base, unsigned count)
{
        *u = (VmUids){ .base = base, .count = count };
        if (count)
                u->used = xmalloc0((count + 7) / 8);
}

void vmuid_done(VmUids *u)
{
        free(u->used);
        *u = (VmUids){ 0 };
}

static bool in_range(uid_t base, unsigned count, uint64_t id)
{
        return id >= base && id < (uint64_t)base + count;
}

int vmuid_check_unused(uid_t base, unsigned count)
{
        if (count == 0)
                return 0;
        if (in_range(base, count, 0))
                return log_error_errno(-EEXIST, "vm-uid-base %u: the range holds uid 0", (unsigned)base);
        int r = 0;
        setpwent();
        for (struct passwd *pw; (pw = getpwent());)
                if (in_range(base, count, pw->pw_uid)) {
                        log_error("vm-uid-base %u, vm-uid-count %u: user %s has uid %u in that range: desktops "
                                  "must not share a uid with anyone (move the range)", (unsigned)base, count,
                                  pw->pw_name, (unsigned)pw->pw_uid);
                        r = -EEXIST;
                        break;
                }
        endpwent();
        if (r < 0)
                return r;
        setgrent();
        for (struct group *gr; (gr = getgrent());)
                if (in_range(base, count, gr->gr_gid)) {
                        log_error("vm-uid-base %u, vm-uid-count %u: group %s has gid %u in that range: desktops "
                                  "must not share a gid with anyone (move the range)", (unsigned)base, count,
                                  gr->gr_name, (unsigned)gr->gr_gid);
                        r = -EEXIST;
                        break;
                }
        endgrent();
        return r;
}

bool vmuid_contains(const VmUids *u, uid_t uid)
{
        return u->count && in_range(u->base, u->count, uid);
}

static bool slot_used(const VmUids *u, unsigned i) { return u->used[i / 8] & (1u << (i % 8)); }

int vmuid_take(VmUids *u, uid_t *ret)
{
        for (unsigned k = 0; k < u->count; k++) {
                unsigned i = (u->next + k) % u->count;
                if (!slot_used(u, i)) {
                        u->used[i / 8] |= (uint8_t)(1u << (i % 8));
                        u->next = (i + 1) % u->count;
                        *ret = u->base + i;
                        return 0;
                }
        }
        return -EAGAIN;
}

int vmuid_claim(VmUids *u, uid_t uid)
{
        if (!vmuid_contains(u, uid))
                return -ERANGE;
        unsigned i = uid - u->base;
        if (slot_used(u, i))
                return -EEXIST;
        u->used[i / 8] |= (uint8_t)(1u << (i % 8));
        /* After a restart new desktops start past the adopted ones, as they would have. */
        if (i >= u->next)
                u->next = (i + 1) % u->count;
        return 0;
}

void vmuid_release(VmUids *u, uid_t uid)
{
        if (!vmuid_contains(u, uid))
                return;
        unsigned i = uid - u->base;
        u->used[i / 8] &= (uint8_t)~(1u << (i % 8));
}

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

int vmuid_disk_lend(const char *path, uid_t uid, gid_t gid)
{
        struct stat st;
        _cleanup_close_ int fd = disk_open(path, &st);
        if (fd < 0)
                return log_error_errno(fd, "disk %s: %s", path, strerror(-fd));
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0600) < 0)
                return log_error_errno(-errno, "disk %s: lending it to uid %u: %m", path, (unsigned)uid);
        return 0;
}

int vmuid_disk_return(const char *path, uid_t uid, uid_t owner, gid_t group)
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
