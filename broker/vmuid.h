/* One uid per desktop: each desktop's QEMU runs as its own uid and gid, base + a slot of the
 * vm-uid range, so a QEMU that escapes reaches no other desktop's sockets, overlay or disks.
 * This module hands slots out and lends a user's disk to a desktop's uid; it never spawns. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct VmUids {
        uid_t base;
        unsigned count;         /* 0: no range (slated is not root, or vm-uid-count = 0) */
        unsigned next;          /* where the search for a free slot starts */
        uint8_t *used;          /* one bit a slot */
} VmUids;

/* An empty range of count uids from base (count 0: every call below finds nothing). */
void vmuid_init(VmUids *u, uid_t base, unsigned count);
void vmuid_done(VmUids *u);
/* Refuses (-EEXIST, logged) a range holding uid 0 or a uid or gid the passwd or group
 * database names: those belong to someone else, and a desktop must share them with nobody. */
int vmuid_check_unused(uid_t base, unsigned count);
bool vmuid_contains(const VmUids *u, uid_t uid);
/* A free uid, the slot after the last one given first: a freed uid comes back only once the
 * rest of the range was used (what a QEMU left under it in /tmp waits that long). -EAGAIN: full. */
int vmuid_take(VmUids *u, uid_t *ret);
/* Mark uid as held (a desktop adopted at start). -ERANGE: not in the range; -EEXIST: held. */
int vmuid_claim(VmUids *u, uid_t uid);
void vmuid_release(VmUids *u, uid_t uid);

/* A user's disk (a profile) lent to a desktop's uid while attached: its owner becomes uid:gid
 * (mode stays 0600). Regular files only, no symlink followed. */
int vmuid_disk_lend(const char *path, uid_t uid, gid_t gid);
/* Given back to owner:group, only if uid still holds it (another desktop may have it by now). */
int vmuid_disk_return(const char *path, uid_t uid, uid_t owner, gid_t group);
