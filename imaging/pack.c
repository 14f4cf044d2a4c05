/* Directory → ext4 for publishing. The tree is read on the host by tar (an administrator's
 * directory, not guest data) and unpacked inside the appliance. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"
#include "imaging/pack.h"

#define MiB (1ull << 20)

/* nftw has no user pointer: the walk's totals live here, one walk per thread. */
static _Thread_local struct {
        uint64_t bytes, entries;
        int error;
} walk;

static int measure_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        if (flag == FTW_NS || flag == FTW_DNR) {
                walk.error = errno ? errno : EACCES;
                return 1;
        }
        if (++walk.entries > GFS_ENTRIES_MAX || strlen(path) >= GFS_PATH_MAX) {
                walk.error = E2BIG;
                return 1;
        }
        /* Data rounded to 4 KiB blocks plus an inode and a directory entry's worth each. */
        uint64_t sz = S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) || S_ISDIR(st->st_mode) ? (uint64_t)st->st_size : 0;
        walk.bytes += ((sz + 4095) & ~4095ull) + 512;
        return 0;
}

int pack_measure(const char *dir, uint64_t *ret_size, uint64_t *ret_entries, char **ret_error)
{
        walk.bytes = walk.entries = 0;
        walk.error = 0;
        int r = nftw(dir, measure_one, 64, FTW_PHYS | FTW_MOUNT);
        if (r < 0 || walk.error) {
                int e = walk.error ? walk.error : errno;
                *ret_error = e == E2BIG ? xasprintf("%s: more than %d entries or a path longer than %d bytes", dir,
                                                    GFS_ENTRIES_MAX, GFS_PATH_MAX)
                                        : xasprintf("%s: reading the tree: %s", dir, strerror(e));
                return -e;
        }
        uint64_t size = walk.bytes + walk.bytes / 4 + 64 * MiB;
        *ret_size = (size + MiB - 1) & ~(MiB - 1);
        *ret_entries = walk.entries;
        return 0;
}

int pack_fill(guestfs_h *g, const char *device, const char *dir, uint64_t entries, char **ret_error)
{
        /* Twice the entries (and at least ext4's usual ratio) so the copy never runs out of inodes. */
        int64_t inodes = (int64_t)(entries * 2 + 4096);
        if (guestfs_mke2fs(g, device, GUESTFS_MKE2FS_FSTYPE, "ext4", GUESTFS_MKE2FS_NUMBEROFINODES, inodes,
                           GUESTFS_MKE2FS_LABEL, "slate-root", -1) < 0)
                return gfs_fail(g, ret_error, "creating the ext4 filesystem");
        if (guestfs_mount(g, device, "/") < 0)
                return gfs_fail(g, ret_error, "mounting the new filesystem");

        /* tar dies of SIGPIPE (slated ignores it) if the appliance stops reading. */
        const char *argv[] = { "tar", "--numeric-owner", "--one-file-system", "-C", dir, "-cf", "-", ".", NULL };
        SpawnOpts so = { .argv = argv, .search_path = true, .stdio = { [1] = SPAWN_STDIO_PIPE }, .fd3 = -1,
                         .default_signals = true };
        SpawnChild tar;
        int r = spawn_start(&so, &tar);
        if (r < 0) {
                *ret_error = xasprintf("copying %s into the image: cannot run tar: %s", dir, strerror(-r));
                return r;
        }
        _cleanup_free_ char *src = xasprintf("/dev/fd/%d", tar.fds[1]);
        r = guestfs_tar_in(g, src, "/");
        int saved = r < 0 ? 0 : 1;
        _cleanup_free_ char *err = r < 0 ? xstrdup(guestfs_last_error(g) ? guestfs_last_error(g) : "") : NULL;
        spawn_child_close(&tar);
        int status = 0;
        spawn_wait(tar.pid, 0, &status);
        if (r < 0) {
                *ret_error = xasprintf("copying %s into the image: %s", dir, err);
                return -EIO;
        }
        if (!saved || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                *ret_error = xasprintf("copying %s into the image: tar %s %d", dir,
                                       WIFEXITED(status) ? "exited with" : "killed by signal",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                return -EIO;
        }
        if (guestfs_umount_all(g) < 0)
                return gfs_fail(g, ret_error, "unmounting the new filesystem");
        return 0;
}
