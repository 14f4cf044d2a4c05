/* Publishing a directory: a root filesystem tree becomes an ext4 filesystem on a new qcow2
 * (whole disk, no partition table), written through the appliance. Internal to imaging/. */
#pragma once
#include <stdint.h>
#include "imaging/gfs.h"

/* Size for the tree at dir: its contents + 25% + 64 MiB, rounded up to 1 MiB; and its entry
 * count (for the inode count). Refuses more than GFS_ENTRIES_MAX entries or a longer path. */
int pack_measure(const char *dir, uint64_t *ret_size, uint64_t *ret_entries, char **ret_error);
/* On the launched appliance: mkfs ext4 on device, copy the tree in (tar, numeric owners),
 * leave it unmounted. */
int pack_fill(guestfs_h *g, const char *device, const char *dir, uint64_t entries, char **ret_error);
