/* A user's disk (a profile) lent to a desktop's own uid while attached, so that desktop's QEMU,
 * and no other, can open it; given back to vm-user when the desktop lets go. Changes owners only,
 * through an fd of the file itself: never follows a symlink, never spawns. */
#pragma once
#include <sys/types.h>

/* Its owner becomes uid:gid (mode 0600). Regular files only, no symlink followed. */
int diskloan_lend(const char *path, uid_t uid, gid_t gid);
/* Given back to owner:group, only if uid still holds it (another desktop may have it by now). */
int diskloan_return(const char *path, uid_t uid, uid_t owner, gid_t group);
