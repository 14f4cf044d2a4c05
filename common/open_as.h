/* Opening a file with another user's rights: root slated acting for an admin who named a path
 * (image publish --kernel /etc/shadow) must read only what that admin could read. A child takes
 * the user's identity (uid, primary and supplementary groups) and opens the path, so the kernel
 * checks every directory on the way and the file itself; the fd comes back over a socketpair,
 * and root reads that very file afterwards (no path looked up twice). */
#pragma once
#include <sys/types.h>

/* fd of path opened O_RDONLY | O_CLOEXEC | extra_flags as uid (gid: its primary group), or a
 * negative errno as the user would have got it (-EACCES, -ENOENT...). Blocking (a fork). */
int open_as(const char *path, uid_t uid, gid_t gid, int extra_flags, int *ret_fd);
